/*
 * TPM-resident signing keys through the tpm2-openssl provider (see
 * signer_tpm.h for the contract).  Two halves:
 *
 *  - reading a wrapped key file without a TPM: the TSS2 PRIVATE KEY ASN.1
 *    (draft-bottomley-tpm2-keys) and the TPM2B_PUBLIC inside it, enough to
 *    publish the public key, compute its kid and refuse keys credfs cannot
 *    sign JWTs with;
 *  - the session: one connection to the TPM at a time, in its own
 *    OSSL_LIB_CTX holding only the tpm2 and base providers, opened for
 *    work and closed when no more work waits.
 *
 * Nothing here prints, logs or returns key material.
 */
#include "signer_tpm.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/encoder.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/store.h>
#include <openssl/ui.h>
#include <openssl/x509.h>

#include "clock.h"

/* TPM 2.0 constants (TCG Algorithm Registry, TPM 2.0 Part 2). */
#define TPM2_ALG_RSA 0x0001
#define TPM2_ALG_SHA256 0x000B
#define TPM2_ALG_NULL 0x0010
#define TPM2_ALG_RSASSA 0x0014
#define TPM2_ALG_ECDSA 0x0018
#define TPM2_ALG_ECDAA 0x001A
#define TPM2_ALG_ECC 0x0023
#define TPM2_ECC_NIST_P256 0x0003
#define TPM2_ECC_NIST_P384 0x0004
#define TPM2_ECC_NIST_P521 0x0005
#define TPMA_OBJECT_SIGN_ENCRYPT 0x00040000u
#define RSA_DEFAULT_EXPONENT 65537u

/* OID of a loadable key in the TSS2 key format. */
#define TSS2_LOADABLE_KEY_OID "2.23.133.10.1.3"
#define WRAPPED_KEY_MAX (16 * 1024)

/* The property query that makes OpenSSL take the TPM's implementation of
 * an operation when there is one (else it picks the base provider's, or
 * none, and fails with "missing private key"). */
#define TPM_PROPQ "?provider=tpm2"

#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 8000
#define TPM_WHY_MAX 320

struct tpm_key {
	char *path;		/* for messages */
	char *data;		/* the wrapped key, len bytes; wiped at free */
	size_t len;
	unsigned char *pub_der;	/* SubjectPublicKeyInfo of the key */
	int pub_der_len;
	uint64_t id;		/* which key tpm.loaded is */
};

/*
 * The one session with the TPM.  lock serialises all TPM use and guards
 * every field but waiting, which counts the threads queued on lock (they
 * keep the session open for each other).
 */
static struct {
	pthread_mutex_t lock;
	atomic_int waiting;
	OSSL_LIB_CTX *libctx;		/* NULL: not connected */
	OSSL_PROVIDER *tpm2;
	OSSL_PROVIDER *base;
	EVP_PKEY *loaded;		/* the key of loaded_id, in the TPM */
	uint64_t loaded_id;
	uint64_t next_id;
	int64_t retry_mono_ms;		/* no signing before this (0: none) */
	int64_t backoff_ms;		/* the last back-off (0: none) */
	char failure[TPM_WHY_MAX];	/* why the last signature failed */
	sigset_t sigmask;		/* the lock holder's, to restore */
	int sigpipe_pending;		/* a SIGPIPE was pending before */
} tpm = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.next_id = 1,
};

static void PRINTF_LIKE(3, 4) set_why(char *why, size_t whylen,
				      const char *fmt, ...)
{
	va_list ap;

	if (!why || !whylen)
		return;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

/* ---- reading a wrapped key without the TPM ------------------------------ */

/* A bounded reader of TPM marshalled (big-endian) data.  Once a read runs
 * past the end, bad is set and every later read yields 0. */
struct tpm_reader {
	const unsigned char *p;
	size_t left;
	int bad;
};

static unsigned int rd_u16(struct tpm_reader *r)
{
	unsigned int v;

	if (r->bad || r->left < 2) {
		r->bad = 1;
		return 0;
	}
	v = (unsigned int)r->p[0] << 8 | r->p[1];
	r->p += 2;
	r->left -= 2;
	return v;
}

static uint32_t rd_u32(struct tpm_reader *r)
{
	uint32_t hi = rd_u16(r);

	return hi << 16 | rd_u16(r);
}

/* A TPM2B: a 16-bit size and that many bytes; *len set, pointer into the
 * input returned (NULL with bad set when it does not fit). */
static const unsigned char *rd_tpm2b(struct tpm_reader *r, size_t *len)
{
	const unsigned char *p;
	size_t n = rd_u16(r);

	if (r->bad || r->left < n) {
		r->bad = 1;
		return NULL;
	}
	p = r->p;
	r->p += n;
	r->left -= n;
	*len = n;
	return p;
}

/* What credfs needs of a TPMT_PUBLIC. */
struct tpm_public {
	unsigned int type;		/* TPM2_ALG_RSA or TPM2_ALG_ECC */
	uint32_t attributes;
	unsigned int scheme, scheme_hash;
	unsigned int rsa_bits;
	uint32_t exponent;
	unsigned int curve;
	const unsigned char *a, *b;	/* RSA: n; ECC: x, y */
	size_t alen, blen;
};

/* Parses a TPM2B_PUBLIC (TPM 2.0 Part 2, 12.2.5) of an RSA or ECC key.
 * Returns 0, or -1 with why. */
static int parse_tpm2b_public(const unsigned char *data, size_t len,
			      struct tpm_public *pub, char *why, size_t whylen)
{
	struct tpm_reader r = { data, len, 0 };
	size_t size, n;

	memset(pub, 0, sizeof(*pub));
	size = rd_u16(&r);
	if (r.bad || size != r.left) {
		set_why(why, whylen, "its public area has a bad size");
		return -1;
	}
	pub->type = rd_u16(&r);
	(void)rd_u16(&r);			/* nameAlg */
	pub->attributes = rd_u32(&r);
	(void)rd_tpm2b(&r, &n);			/* authPolicy */
	if (pub->type != TPM2_ALG_RSA && pub->type != TPM2_ALG_ECC) {
		set_why(why, whylen,
			"it is a TPM key of type 0x%04x; credfs signs with EC P-256 or RSA keys",
			pub->type);
		return -1;
	}
	if (rd_u16(&r) != TPM2_ALG_NULL) {	/* symmetric: storage keys */
		(void)rd_u16(&r);
		(void)rd_u16(&r);
	}
	pub->scheme = rd_u16(&r);
	if (pub->scheme != TPM2_ALG_NULL) {
		pub->scheme_hash = rd_u16(&r);
		if (pub->scheme == TPM2_ALG_ECDAA)
			(void)rd_u16(&r);	/* count */
	}
	if (pub->type == TPM2_ALG_RSA) {
		pub->rsa_bits = rd_u16(&r);
		pub->exponent = rd_u32(&r);
		pub->a = rd_tpm2b(&r, &pub->alen);
	} else {
		pub->curve = rd_u16(&r);
		if (rd_u16(&r) != TPM2_ALG_NULL)	/* kdf */
			(void)rd_u16(&r);
		pub->a = rd_tpm2b(&r, &pub->alen);
		pub->b = rd_tpm2b(&r, &pub->blen);
	}
	if (r.bad || r.left) {
		set_why(why, whylen, "its public area is malformed");
		return -1;
	}
	return 0;
}

/* The DER of the "TSS2 PRIVATE KEY" PEM block of data; OPENSSL_malloc'd
 * into *der, or -1 with why. */
static int wrapped_der(const char *data, size_t len, unsigned char **der,
		       long *derlen, char *why, size_t whylen)
{
	char *name = NULL, *header = NULL;
	BIO *bio;
	int ret = -1;

	*der = NULL;
	if (len > WRAPPED_KEY_MAX) {
		set_why(why, whylen, "it is too large for a TPM-wrapped key");
		return -1;
	}
	bio = BIO_new_mem_buf(data, (int)len);
	if (!bio) {
		set_why(why, whylen, "out of memory");
		return -1;
	}
	while (PEM_read_bio(bio, &name, &header, der, derlen) == 1) {
		int match = strcmp(name, TPM_KEY_PEM_LABEL) == 0;

		OPENSSL_free(name);
		OPENSSL_free(header);
		name = header = NULL;
		if (match) {
			ret = 0;
			break;
		}
		OPENSSL_free(*der);
		*der = NULL;
	}
	BIO_free(bio);
	ERR_clear_error();
	if (ret)
		set_why(why, whylen, "its " TPM_KEY_PEM_LABEL " block is not valid PEM");
	return ret;
}

/* 1 if t is "[0] EXPLICIT BOOLEAN TRUE", the emptyAuth field.  Any
 * non-zero octet is TRUE: tpm2-openssl writes 0x01, DER would be 0xff. */
static int is_empty_auth_true(const ASN1_TYPE *t)
{
	static const unsigned char tag[] = { 0xa0, 0x03, 0x01, 0x01 };
	const unsigned char *p;
	const ASN1_STRING *s;

	if (t->type != V_ASN1_OTHER)
		return 0;
	s = t->value.asn1_string;
	if (!s || ASN1_STRING_length(s) != (int)sizeof(tag) + 1)
		return 0;
	p = ASN1_STRING_get0_data(s);
	return memcmp(p, tag, sizeof(tag)) == 0 && p[sizeof(tag)] != 0;
}

/* Finds the public area of a TSS2 PRIVATE KEY:
 *   SEQUENCE { type OID, emptyAuth [0] EXPLICIT BOOLEAN OPTIONAL,
 *              (other tagged fields) OPTIONAL, parent INTEGER,
 *              pubkey OCTET STRING, privkey OCTET STRING }
 * Copies pubkey (malloc'd) to *pubkey.  Returns 0, or -1 with why. */
static int wrapped_pubkey(const unsigned char *der, long derlen,
			  unsigned char **pubkey, size_t *publen, char *why,
			  size_t whylen)
{
	STACK_OF(ASN1_TYPE) *seq;
	const unsigned char *p = der;
	ASN1_OBJECT *want = NULL;
	const ASN1_TYPE *t;
	int n, i = 1, empty_auth = 0, ret = -1;

	*pubkey = NULL;
	seq = d2i_ASN1_SEQUENCE_ANY(NULL, &p, derlen);
	if (!seq || p != der + derlen) {
		set_why(why, whylen, "it is not a TSS2 key structure");
		goto out;
	}
	n = sk_ASN1_TYPE_num(seq);
	want = OBJ_txt2obj(TSS2_LOADABLE_KEY_OID, 1);
	t = n > 0 ? sk_ASN1_TYPE_value(seq, 0) : NULL;
	if (!want || !t || t->type != V_ASN1_OBJECT ||
	    OBJ_cmp(t->value.object, want)) {
		set_why(why, whylen, "it is not a loadable TPM key (OID %s)",
			TSS2_LOADABLE_KEY_OID);
		goto out;
	}
	for (; i < n; i++) {
		t = sk_ASN1_TYPE_value(seq, i);
		if (t->type == V_ASN1_INTEGER)
			break;
		empty_auth |= is_empty_auth_true(t);
	}
	if (i + 3 != n ||
	    sk_ASN1_TYPE_value(seq, i + 1)->type != V_ASN1_OCTET_STRING ||
	    sk_ASN1_TYPE_value(seq, i + 2)->type != V_ASN1_OCTET_STRING) {
		set_why(why, whylen, "it is not a TSS2 key structure");
		goto out;
	}
	if (!empty_auth) {
		set_why(why, whylen,
			"the TPM key needs a password; credfs uses keys without one (credfs keygen --tpm)");
		goto out;
	}
	{
		const ASN1_OCTET_STRING *os =
			sk_ASN1_TYPE_value(seq, i + 1)->value.octet_string;

		*publen = (size_t)ASN1_STRING_length(os);
		*pubkey = malloc(*publen ? *publen : 1);
		if (!*pubkey) {
			set_why(why, whylen, "out of memory");
			goto out;
		}
		memcpy(*pubkey, ASN1_STRING_get0_data(os), *publen);
	}
	ret = 0;
out:
	ASN1_OBJECT_free(want);
	sk_ASN1_TYPE_pop_free(seq, ASN1_TYPE_free);
	ERR_clear_error();
	return ret;
}

/* Refuses a key credfs cannot sign RS256 or ES256 with.  0, or -1. */
static int check_usable(const struct tpm_public *pub, char *why,
			size_t whylen)
{
	unsigned int want = pub->type == TPM2_ALG_RSA ? TPM2_ALG_RSASSA
						      : TPM2_ALG_ECDSA;

	if (!(pub->attributes & TPMA_OBJECT_SIGN_ENCRYPT)) {
		set_why(why, whylen, "the TPM key is not a signing key");
		return -1;
	}
	if (pub->scheme != TPM2_ALG_NULL &&
	    (pub->scheme != want || pub->scheme_hash != TPM2_ALG_SHA256)) {
		set_why(why, whylen,
			"the TPM key is bound to scheme 0x%04x with hash 0x%04x; credfs signs %s with SHA-256",
			pub->scheme, pub->scheme_hash,
			pub->type == TPM2_ALG_RSA ? "RSASSA-PKCS1-v1_5" : "ECDSA");
		return -1;
	}
	return 0;
}

/* An EVP_PKEY (default library context) from OSSL_PARAMs built by bld. */
static EVP_PKEY *pkey_from_params(const char *type, OSSL_PARAM_BLD *bld)
{
	OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pkey = NULL;

	if (params)
		ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	if (ctx && (EVP_PKEY_fromdata_init(ctx) != 1 ||
		    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY,
				      params) != 1))
		pkey = NULL;
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	return pkey;
}

static EVP_PKEY *rsa_public(const struct tpm_public *pub)
{
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	BIGNUM *n = BN_bin2bn(pub->a, (int)pub->alen, NULL);
	BIGNUM *e = BN_new();
	EVP_PKEY *pkey = NULL;

	if (bld && n && e &&
	    BN_set_word(e, pub->exponent ? pub->exponent
				     : RSA_DEFAULT_EXPONENT) &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
		pkey = pkey_from_params("RSA", bld);
	BN_free(n);
	BN_free(e);
	OSSL_PARAM_BLD_free(bld);
	return pkey;
}

static EVP_PKEY *ec_public(const struct tpm_public *pub, char *why,
			   size_t whylen)
{
	unsigned char point[1 + 2 * 66];
	OSSL_PARAM_BLD *bld;
	EVP_PKEY *pkey = NULL;
	const char *group;
	size_t coord;

	switch (pub->curve) {
	case TPM2_ECC_NIST_P256:
		group = "prime256v1";
		coord = 32;
		break;
	case TPM2_ECC_NIST_P384:
		group = "secp384r1";
		coord = 48;
		break;
	case TPM2_ECC_NIST_P521:
		group = "secp521r1";
		coord = 66;
		break;
	default:
		set_why(why, whylen,
			"it is an EC key on TPM curve 0x%04x; credfs needs P-256",
			pub->curve);
		return NULL;
	}
	if (pub->alen > coord || pub->blen > coord) {
		set_why(why, whylen, "its public point is malformed");
		return NULL;
	}
	/* Uncompressed point 04 || X || Y, coordinates padded on the left. */
	memset(point, 0, sizeof(point));
	point[0] = 0x04;
	memcpy(point + 1 + coord - pub->alen, pub->a, pub->alen);
	memcpy(point + 1 + 2 * coord - pub->blen, pub->b, pub->blen);
	bld = OSSL_PARAM_BLD_new();
	if (bld &&
	    OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
					    group, 0) &&
	    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY,
					     point, 1 + 2 * coord))
		pkey = pkey_from_params("EC", bld);
	OSSL_PARAM_BLD_free(bld);
	if (!pkey)
		set_why(why, whylen, "its public point is not on the curve");
	return pkey;
}

int tpm_key_is_wrapped(const char *data, size_t len)
{
	static const char begin[] = "-----BEGIN " TPM_KEY_PEM_LABEL "-----";

	return data && memmem(data, len, begin, sizeof(begin) - 1) != NULL;
}

EVP_PKEY *tpm_key_public(const char *data, size_t len, char *why,
			 size_t whylen)
{
	unsigned char *der = NULL, *pubarea = NULL;
	struct tpm_public pub;
	EVP_PKEY *pkey = NULL;
	size_t publen = 0;
	long derlen = 0;

	if (wrapped_der(data, len, &der, &derlen, why, whylen))
		return NULL;
	if (wrapped_pubkey(der, derlen, &pubarea, &publen, why, whylen))
		goto out;
	if (parse_tpm2b_public(pubarea, publen, &pub, why, whylen) ||
	    check_usable(&pub, why, whylen))
		goto out;
	if (pub.type == TPM2_ALG_RSA) {
		if (pub.alen * 8 != pub.rsa_bits) {
			set_why(why, whylen, "its RSA modulus is malformed");
			goto out;
		}
		pkey = rsa_public(&pub);
		if (!pkey)
			set_why(why, whylen, "its RSA public key is malformed");
	} else {
		pkey = ec_public(&pub, why, whylen);
	}
out:
	free(pubarea);
	OPENSSL_clear_free(der, (size_t)derlen);
	ERR_clear_error();
	return pkey;
}

/* ---- the session -------------------------------------------------------- */

/* Names the TPM credfs talks to, for messages. */
static void tcti_name(char *out, size_t n)
{
	const char *t = getenv("TPM2OPENSSL_TCTI");

	if (t && *t)
		snprintf(out, n, "%.120s", t);
	else
		snprintf(out, n, "the TSS default, /dev/tpmrm0 first");
}

/* The most telling error of OpenSSL's queue: the TSS's own text where the
 * provider gave one ("tcti:IO failure", with its return code), else the
 * first reason string.  Clears the queue.  *dso is set when the provider
 * module itself could not be loaded. */
static void error_detail(char *out, size_t n, int *dso)
{
	const char *file, *func, *data, *first = NULL;
	int line, flags, got = 0;
	unsigned long e;

	if (dso)
		*dso = 0;
	snprintf(out, n, "no detail from OpenSSL");
	while ((e = ERR_get_error_all(&file, &line, &func, &data, &flags))) {
		if (ERR_GET_LIB(e) == ERR_LIB_DSO && dso)
			*dso = 1;
		if (!got && (flags & ERR_TXT_STRING) && data &&
		    data[0] >= '0' && data[0] <= '9') {
			char *end;
			unsigned long rc = strtoul(data, &end, 10);

			if (*end == ' ' && end[1]) {
				snprintf(out, n, "%.200s (TSS2 rc 0x%lx)", end + 1,
					 rc);
				got = 1;
			}
		}
		if (!first)
			first = ERR_reason_error_string(e);
	}
	if (!got && first)
		snprintf(out, n, "%.200s", first);
	ERR_clear_error();
}

/* Takes the session lock, waiting at most TPM_WAIT_MS; while waiting the
 * caller counts in tpm.waiting.  The holder runs with SIGPIPE blocked: the
 * TSS writes to its socket with write(), and a TPM that went away must
 * fail the call, not end the process.  Returns 0, or -1 with why. */
static int session_lock(char *why, size_t whylen)
{
	struct timespec deadline = clock_deadline_ms(TPM_WAIT_MS);
	sigset_t pipe, pending;
	int rc;

	atomic_fetch_add(&tpm.waiting, 1);
	rc = pthread_mutex_clocklock(&tpm.lock, CLOCK_MONOTONIC, &deadline);
	atomic_fetch_sub(&tpm.waiting, 1);
	if (rc) {
		set_why(why, whylen,
			"the TPM is busy: another TPM operation has taken more than %d s",
			TPM_WAIT_MS / 1000);
		return -1;
	}
	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	sigemptyset(&pending);
	tpm.sigpipe_pending = sigpending(&pending) == 0 &&
			      sigismember(&pending, SIGPIPE) == 1;
	pthread_sigmask(SIG_BLOCK, &pipe, &tpm.sigmask);
	return 0;
}

/* Releases the session lock: a SIGPIPE the TPM work raised is consumed,
 * then the holder's signal mask is restored. */
static void session_unlock(void)
{
	static const struct timespec now = { 0, 0 };
	sigset_t pipe, mask = tpm.sigmask;

	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	if (!tpm.sigpipe_pending)
		while (sigtimedwait(&pipe, NULL, &now) == SIGPIPE)
			;
	pthread_mutex_unlock(&tpm.lock);
	pthread_sigmask(SIG_SETMASK, &mask, NULL);
}

/* Flushes the loaded key from the TPM and disconnects.  Lock held. */
static void session_close(void)
{
	EVP_PKEY_free(tpm.loaded);
	tpm.loaded = NULL;
	tpm.loaded_id = 0;
	if (tpm.tpm2)
		OSSL_PROVIDER_unload(tpm.tpm2);
	if (tpm.base)
		OSSL_PROVIDER_unload(tpm.base);
	OSSL_LIB_CTX_free(tpm.libctx);
	tpm.tpm2 = tpm.base = NULL;
	tpm.libctx = NULL;
	ERR_clear_error();
}

/* Closes the session unless another thread waits to use it.  Lock held. */
static void session_release(void)
{
	if (atomic_load(&tpm.waiting) == 0)
		session_close();
}

/* Connects: a library context with the base provider (file store, PEM)
 * and the tpm2 provider, whose start reaches the TPM.  Lock held.  Returns
 * 0, or -1 with why (and the session closed). */
static int session_connect(char *why, size_t whylen)
{
	char detail[256], tcti[160];
	int dso = 0;

	if (tpm.libctx)
		return 0;
	tpm.libctx = OSSL_LIB_CTX_new();
	if (!tpm.libctx) {
		set_why(why, whylen, "out of memory for the TPM's OpenSSL context");
		return -1;
	}
	tpm.base = OSSL_PROVIDER_load(tpm.libctx, "base");
	if (tpm.base)
		tpm.tpm2 = OSSL_PROVIDER_load(tpm.libctx, "tpm2");
	if (!tpm.base || !tpm.tpm2 ||
	    !EVP_set_default_properties(tpm.libctx, TPM_PROPQ)) {
		error_detail(detail, sizeof(detail), &dso);
		tcti_name(tcti, sizeof(tcti));
		if (dso)
			set_why(why, whylen,
				"the TPM cannot be used: OpenSSL's tpm2 provider is not installed (package tpm2-openssl): %s",
				detail);
		else
			set_why(why, whylen, "the TPM did not answer (%s): %s",
				tcti, detail);
		session_close();
		return -1;
	}
	return 0;
}

/* Loads k into the TPM through OSSL_STORE (the provider's TSS2 decoder
 * creates the owner's storage primary, loads the key under it, flushes the
 * primary).  Lock held, connected.  Returns 0, or -1 with why. */
static int session_load(const struct tpm_key *k, char *why, size_t whylen)
{
	OSSL_STORE_CTX *store = NULL;
	OSSL_STORE_INFO *info;
	EVP_PKEY *pkey = NULL;
	char detail[256];
	BIO *bio;

	if (tpm.loaded && tpm.loaded_id == k->id)
		return 0;
	EVP_PKEY_free(tpm.loaded);
	tpm.loaded = NULL;
	tpm.loaded_id = 0;

	bio = BIO_new_mem_buf(k->data, (int)k->len);
	if (bio)
		store = OSSL_STORE_attach(bio, "file", tpm.libctx, TPM_PROPQ,
					  UI_null(), NULL, NULL, NULL, NULL);
	if (store && OSSL_STORE_expect(store, OSSL_STORE_INFO_PKEY) == 1) {
		while (!pkey && !OSSL_STORE_eof(store)) {
			info = OSSL_STORE_load(store);
			if (!info) {
				if (OSSL_STORE_error(store))
					break;
				continue;
			}
			if (OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY)
				pkey = OSSL_STORE_INFO_get1_PKEY(info);
			OSSL_STORE_INFO_free(info);
		}
	}
	if (!pkey)
		error_detail(detail, sizeof(detail), NULL);
	OSSL_STORE_close(store);
	BIO_free(bio);
	if (!pkey) {
		set_why(why, whylen, "the TPM cannot load the key %s: %s",
			k->path, detail);
		return -1;
	}
	ERR_clear_error();
	tpm.loaded = pkey;
	tpm.loaded_id = k->id;
	return 0;
}

/* Signs in with the loaded key.  Lock held.  0, or -1 with why. */
static int session_sign(const unsigned char *in, size_t inlen,
			unsigned char **sig, size_t *siglen, char *why,
			size_t whylen)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char *out = NULL;
	char detail[256];
	size_t len = 0;

	if (!ctx ||
	    EVP_DigestSignInit_ex(ctx, NULL, "SHA256", tpm.libctx, TPM_PROPQ,
				  tpm.loaded, NULL) != 1 ||
	    EVP_DigestSign(ctx, NULL, &len, in, inlen) != 1)
		goto fail;
	out = OPENSSL_malloc(len);
	if (!out || EVP_DigestSign(ctx, out, &len, in, inlen) != 1)
		goto fail;
	EVP_MD_CTX_free(ctx);
	*sig = out;
	*siglen = len;
	return 0;
fail:
	error_detail(detail, sizeof(detail), NULL);
	set_why(why, whylen, "the TPM failed to sign: %s", detail);
	OPENSSL_clear_free(out, len);
	EVP_MD_CTX_free(ctx);
	return -1;
}

/* Records a failed signature: its reason, and a back-off (1 s doubling to
 * 8 s) before the TPM is tried again.  Drops the session: the next try
 * reconnects and reloads the key.  Lock held. */
static void session_failed(const char *why)
{
	int64_t now = clock_mono_ms();

	tpm.backoff_ms = tpm.backoff_ms ? tpm.backoff_ms * 2 : BACKOFF_MIN_MS;
	if (tpm.backoff_ms > BACKOFF_MAX_MS)
		tpm.backoff_ms = BACKOFF_MAX_MS;
	tpm.retry_mono_ms = now + tpm.backoff_ms;
	snprintf(tpm.failure, sizeof(tpm.failure), "%s", why);
	session_close();
}

static void session_succeeded(void)
{
	tpm.backoff_ms = 0;
	tpm.retry_mono_ms = 0;
	tpm.failure[0] = '\0';
}

/* ---- the API ------------------------------------------------------------ */

struct tpm_key *tpm_key_open(const char *path, const char *data, size_t len,
			     EVP_PKEY *pub, char *why, size_t whylen)
{
	struct tpm_key *k = calloc(1, sizeof(*k));
	unsigned char *der = NULL;
	int derlen, same;

	if (!k || !(k->path = strdup(path)) || !(k->data = malloc(len + 1))) {
		set_why(why, whylen, "out of memory");
		goto fail;
	}
	memcpy(k->data, data, len);
	k->data[len] = '\0';
	k->len = len;
	k->pub_der_len = i2d_PUBKEY(pub, &k->pub_der);
	if (k->pub_der_len <= 0) {
		ERR_clear_error();
		set_why(why, whylen, "cannot encode the public key of %s", path);
		goto fail;
	}
	if (session_lock(why, whylen))
		goto fail;
	k->id = tpm.next_id++;
	if (session_connect(why, whylen) || session_load(k, why, whylen)) {
		session_close();
		session_unlock();
		goto fail;
	}
	/* The TPM's view of the public key must be the file's. */
	derlen = i2d_PUBKEY(tpm.loaded, &der);
	same = derlen == k->pub_der_len &&
	       memcmp(der, k->pub_der, (size_t)derlen) == 0;
	OPENSSL_free(der);
	ERR_clear_error();
	if (!same) {
		set_why(why, whylen,
			"the TPM's public key for %s differs from the one in the file",
			path);
		session_close();
		session_unlock();
		goto fail;
	}
	session_succeeded();
	session_release();
	session_unlock();
	return k;
fail:
	tpm_key_free(k);
	return NULL;
}

void tpm_key_free(struct tpm_key *k)
{
	if (!k)
		return;
	free(k->path);
	if (k->data)
		OPENSSL_cleanse(k->data, k->len);
	free(k->data);
	OPENSSL_free(k->pub_der);
	free(k);
}

int tpm_key_sign(struct tpm_key *k, const unsigned char *in, size_t inlen,
		 unsigned char **sig, size_t *siglen, char *why, size_t whylen)
{
	char reason[TPM_WHY_MAX];
	int64_t now;

	*sig = NULL;
	*siglen = 0;
	if (session_lock(why, whylen))
		return -1;
	now = clock_mono_ms();
	if (tpm.retry_mono_ms && now < tpm.retry_mono_ms) {
		set_why(why, whylen, "%s; credfs tries the TPM again in %lld s",
			tpm.failure,
			(long long)((tpm.retry_mono_ms - now + 999) / 1000));
		session_unlock();
		return -1;
	}
	if (session_connect(reason, sizeof(reason)) ||
	    session_load(k, reason, sizeof(reason)) ||
	    session_sign(in, inlen, sig, siglen, reason, sizeof(reason))) {
		session_failed(reason);
		set_why(why, whylen, "%s", reason);
		session_unlock();
		return -1;
	}
	session_succeeded();
	session_release();
	session_unlock();
	return 0;
}

/* Generates a key of type in the TPM.  Lock held, connected.  NULL with
 * why on error. */
static EVP_PKEY *generate(const char *type, char *why, size_t whylen)
{
	int ec = strcmp(type, "ec") == 0;
	EVP_PKEY_CTX *ctx;
	EVP_PKEY *pkey = NULL;
	char detail[256];

	ctx = EVP_PKEY_CTX_new_from_name(tpm.libctx, ec ? "EC" : "RSA",
					 "provider=tpm2");
	if (!ctx || EVP_PKEY_keygen_init(ctx) != 1 ||
	    (ec ? EVP_PKEY_CTX_set_group_name(ctx, "P-256")
		: EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, 2048)) != 1 ||
	    EVP_PKEY_keygen(ctx, &pkey) != 1) {
		error_detail(detail, sizeof(detail), NULL);
		set_why(why, whylen, "the TPM cannot create %s key: %s",
			ec ? "an EC P-256" : "an RSA 2048", detail);
		EVP_PKEY_free(pkey);
		pkey = NULL;
	}
	EVP_PKEY_CTX_free(ctx);
	return pkey;
}

/* The wrapped form of pkey (a TPM key) as PEM, by the provider's encoder:
 * malloc'd into *pem.  Returns 0, or -1 with why. */
static int encode_wrapped(EVP_PKEY *pkey, char **pem, size_t *len,
			  char *why, size_t whylen)
{
	OSSL_ENCODER_CTX *enc;
	BIO *bio = BIO_new(BIO_s_mem());
	char *data = NULL, detail[256];
	long n = 0;
	int ret = -1;

	enc = OSSL_ENCODER_CTX_new_for_pkey(pkey, OSSL_KEYMGMT_SELECT_ALL,
					    "PEM", "PrivateKeyInfo",
					    "provider=tpm2");
	if (!bio || !enc || OSSL_ENCODER_to_bio(enc, bio) != 1 ||
	    (n = BIO_get_mem_data(bio, &data)) <= 0) {
		error_detail(detail, sizeof(detail), NULL);
		set_why(why, whylen, "cannot write the TPM-wrapped key: %s",
			detail);
		goto out;
	}
	*pem = malloc((size_t)n + 1);
	if (!*pem) {
		set_why(why, whylen, "out of memory");
		goto out;
	}
	memcpy(*pem, data, (size_t)n);
	(*pem)[n] = '\0';
	*len = (size_t)n;
	ret = 0;
out:
	OSSL_ENCODER_CTX_free(enc);
	BIO_free(bio);
	ERR_clear_error();
	return ret;
}

int tpm_keygen(const char *type, char **pem, size_t *len, char *why,
	       size_t whylen)
{
	EVP_PKEY *pkey;
	int ret = -1;

	*pem = NULL;
	*len = 0;
	if (!type || (strcmp(type, "ec") && strcmp(type, "rsa"))) {
		set_why(why, whylen, "unknown key type \"%s\"; use ec or rsa",
			type ? type : "");
		return -1;
	}
	if (session_lock(why, whylen))
		return -1;
	if (session_connect(why, whylen))
		goto out;
	pkey = generate(type, why, whylen);
	if (pkey) {
		ret = encode_wrapped(pkey, pem, len, why, whylen);
		EVP_PKEY_free(pkey);	/* flushes it from the TPM */
	}
	session_close();
out:
	session_unlock();
	return ret;
}
