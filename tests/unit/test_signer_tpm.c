/*
 * Unit tests of TPM-wrapped keys that need no TPM: recognising the file,
 * reading its public half (from files a software TPM made, and from files
 * built here around keys OpenSSL generated, so the parse is checked
 * against an independent kid), refusing what credfs cannot sign with, and
 * signer_load's rules: a previous TPM key needs no TPM, a current one that
 * the TPM cannot load is a configuration error on the key's line.
 * The integration tests (tests/integration/test_tpm.py) sign with swtpm.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "buf.h"
#include "signer.h"
#include "signer_tpm.h"
#include "check.h"

#define ISSUER "https://oidc.example.com"
#define AUDIENCE "sts.amazonaws.com"
/* Nothing listens here: any attempt to reach a TPM fails at once. */
#define DEAD_TCTI "swtpm:host=127.0.0.1,port=9"

/*
 * Two keys that `credfs keygen --tpm` made in a software TPM (swtpm) whose
 * state is long gone: the files are useless for signing, but their public
 * halves are real.  The kids were computed by OpenSSL itself through the
 * tpm2 provider: openssl pkey -provider tpm2 -provider base -in KEY
 * -pubout -outform DER | openssl dgst -sha256 -binary | base64url.
 */
static const char swtpm_ec_key[] =
	"-----BEGIN TSS2 PRIVATE KEY-----\n"
	"MIHwBgZngQUKAQOgAwEBAQIEQAAAAQRYAFYAIwALAAYAcgAAABAAEAADABAAIEOz\n"
	"Tc8pwVzieMISKYunxpir7XFq/xcb6Zke7IyFV14iACBDNEGoCBxWcOzndeZw4TQt\n"
	"kno6QRtU4rjybqCOXWTb+QSBgAB+ACBrASRs7g4G0zOQjvkUJOYwTK9VjGJD+t1g\n"
	"aIixJsN4gAAQ8fqAmcsE1O1zu8JKU8JAE51kt0vsNlBvJ9KN0oW0QB2PpD/saPy9\n"
	"lgrLBW4B4XbODLQxCtfpGJoVqgI16/69ivs9h7O320ywXhs/80TPuEq3cHHNLHPb\n"
	"DG8A\n"
	"-----END TSS2 PRIVATE KEY-----\n";
static const char swtpm_ec_kid[] = "eTrFaJNQODx5F1jS3RL2Tn5hqY4AqK7Ej1aFTWjaiEY";

static const char swtpm_rsa_key[] =
	"-----BEGIN TSS2 PRIVATE KEY-----\n"
	"MIICEgYGZ4EFCgEDoAMBAQECBEAAAAEEggEYARYAAQALAAYAcgAAABAAEAgAAAAA\n"
	"AAEAw6oC+Wlgua4vwnAN3JPsvm0mWDP5C5lBCppxBYkcxt71admS3o1iGt53anK4\n"
	"Jxmw3Q4CS2Y+gRNpmj2OldM8DN47z0Bnlek1OodHEvRNIB9lEoDDAw86pPvfIhKs\n"
	"L0gtA18dF3fzRnw0lLwS/fZT+bCnh44jjrKcRKJCT6quE7JuCEWqxbIeuZETaB99\n"
	"nY6dN8FScIwbrHUVROeOtfCUbGbqyV/xs3+7i/GRYPopGBM344MhJ2+4xumGFNdN\n"
	"9l511xM4LeJ/i/zNI3CL08vZoFw66KdFlrUeqpqmdUIHY8Vhy2oNZFFC4cXk3UKA\n"
	"i5B7FNAuxrqOdxQzbc7kvReGJQSB4ADeACCYnSF36WJ0R4KQKUS8vlP34exAxuar\n"
	"8LQaQU/9af8eygAQMTcTPvF5G+YrlsRhB3l9NPciSKeNWleKsw+/Bd3ZBbgMRc2t\n"
	"fes07roiwElmzQ68l2ClmiWC1DNnEA4vxcHTatH8gNQ0fkcBkUU+OQtMjGkfR7uS\n"
	"9/YYZhXHBxWl9KCGiNgHduUibENlAWEh7XojhN1J9q1DYftJtB7ZtEPzVoc7xnKP\n"
	"x4p6VR8M+08c+abEmJ23wHFjDgQt7WvcTiH/Fy6Rf3rJv/0ZzdblFkpLcGu39lpV\n"
	"NpBMHJQh\n"
	"-----END TSS2 PRIVATE KEY-----\n";
static const char swtpm_rsa_kid[] = "nGl2VCXLzI09cq7GyWpdlX2KiU4XO2TqCJG-eUQQcI8";

/* ---- helpers ------------------------------------------------------------ */

static char tmpdir[64];

static void tmp_setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/credfs-signer-tpm-XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		exit(1);
	}
}

static void tmp_cleanup(void)
{
	struct dirent *de;
	DIR *d = opendir(tmpdir);

	if (d) {
		while ((de = readdir(d))) {
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
				unlinkat(dirfd(d), de->d_name, 0);
		}
		closedir(d);
	}
	rmdir(tmpdir);
}

/* Writes text to tmpdir/name with mode; the path goes to out. */
static int write_file(const char *name, const char *text, size_t len,
		      mode_t mode, char *out, size_t outlen)
{
	FILE *f;
	int ok;

	snprintf(out, outlen, "%s/%s", tmpdir, name);
	f = fopen(out, "wx");
	if (!f)
		return -1;
	ok = fwrite(text, 1, len, f) == len;
	fclose(f);
	return ok && !chmod(out, mode) ? 0 : -1;
}

/* A hand-built config: [signer] at line 5, key at line 7, previous keys at
 * lines 20, 21, ... */
struct test_cfg {
	struct cfg cfg;
	char *prev[8];
	int prev_lines[8];
};

static void cfg_init(struct test_cfg *t, const char *key)
{
	memset(t, 0, sizeof(*t));
	t->cfg.path = (char *)"/etc/credfs/test.conf";
	t->cfg.signer.present = 1;
	t->cfg.signer.line = 5;
	t->cfg.signer.key = (char *)key;
	t->cfg.signer.key_line = 7;
	t->cfg.signer.issuer = (char *)ISSUER;
	t->cfg.signer.audience = (char *)AUDIENCE;
	t->cfg.signer.token_lifetime = 3600;
	t->cfg.signer.clock_skew = 30;
	t->cfg.signer.previous_keys = t->prev;
	t->cfg.signer.previous_key_lines = t->prev_lines;
}

static void cfg_add_prev(struct test_cfg *t, const char *path)
{
	size_t i = t->cfg.signer.n_previous_keys++;

	t->prev[i] = (char *)path;
	t->prev_lines[i] = 20 + (int)i;
}

/* kid of pkey computed here: SHA-256 of i2d_PUBKEY, EVP_EncodeBlock, then
 * base64url by hand. */
static void independent_kid(EVP_PKEY *pkey, char out[64])
{
	unsigned char md[32], *der = NULL, b64[64];
	int derlen, n, o = 0;

	out[0] = '\0';
	derlen = i2d_PUBKEY(pkey, &der);
	if (derlen <= 0)
		return;
	EVP_Digest(der, (size_t)derlen, md, NULL, EVP_sha256(), NULL);
	OPENSSL_free(der);
	n = EVP_EncodeBlock(b64, md, sizeof(md));
	for (int i = 0; i < n && b64[i] != '='; i++)
		out[o++] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : (char)b64[i];
	out[o] = '\0';
}

/* A small DER writer, enough for the TSS2 key structure. */
struct der {
	unsigned char b[4096];
	size_t n;
};

static void der_put(struct der *d, const void *p, size_t n)
{
	if (d->n + n <= sizeof(d->b)) {
		memcpy(d->b + d->n, p, n);
		d->n += n;
	}
}

static void der_tlv(struct der *d, unsigned char tag, const void *p,
		    size_t n)
{
	unsigned char hdr[4] = { tag };
	size_t h = 1;

	if (n < 0x80) {
		hdr[h++] = (unsigned char)n;
	} else if (n < 0x100) {
		hdr[h++] = 0x81;
		hdr[h++] = (unsigned char)n;
	} else {
		hdr[h++] = 0x82;
		hdr[h++] = (unsigned char)(n >> 8);
		hdr[h++] = (unsigned char)n;
	}
	der_put(d, hdr, h);
	der_put(d, p, n);
}

static void put16(struct der *d, unsigned int v)
{
	unsigned char b[2] = { (unsigned char)(v >> 8), (unsigned char)v };

	der_put(d, b, 2);
}

static void put32(struct der *d, uint32_t v)
{
	put16(d, v >> 16);
	put16(d, v & 0xffff);
}

/* What a built key is made of. */
struct spec {
	int empty_auth;		/* write emptyAuth TRUE */
	int oid_last;		/* last arc of 2.23.133.10.1.N (3: loadable) */
	uint32_t attributes;	/* 0x00060072 is what tpm2-openssl makes */
	unsigned int scheme, scheme_hash;
	unsigned int curve;	/* EC: TPM curve id */
	int rsa_bits;		/* 0: EC */
	int truncate;		/* drop this many bytes off the public area */
};

/* A TPMT_PUBLIC for pkey as spec says, as a TPM2B, into d. */
static void build_public(struct der *d, EVP_PKEY *pkey, const struct spec *sp)
{
	struct der t = { .n = 0 };
	BIGNUM *x = NULL, *y = NULL, *n = NULL;
	unsigned char buf[512];
	int len;

	put16(&t, sp->rsa_bits ? 0x0001 : 0x0023);	/* type */
	put16(&t, 0x000b);				/* nameAlg sha256 */
	put32(&t, sp->attributes);
	put16(&t, 0);					/* authPolicy */
	put16(&t, 0x0010);				/* symmetric NULL */
	put16(&t, sp->scheme);
	if (sp->scheme != 0x0010)
		put16(&t, sp->scheme_hash);
	if (sp->rsa_bits) {
		put16(&t, (unsigned int)sp->rsa_bits);
		put32(&t, 0);				/* exponent: default */
		EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &n);
		len = BN_bn2bin(n, buf);
		put16(&t, (unsigned int)len);
		der_put(&t, buf, (size_t)len);
	} else {
		put16(&t, sp->curve);
		put16(&t, 0x0010);			/* kdf NULL */
		EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_X, &x);
		EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &y);
		len = BN_bn2bin(x, buf);	/* minimal: no padding */
		put16(&t, (unsigned int)len);
		der_put(&t, buf, (size_t)len);
		len = BN_bn2bin(y, buf);
		put16(&t, (unsigned int)len);
		der_put(&t, buf, (size_t)len);
	}
	BN_free(x);
	BN_free(y);
	BN_free(n);
	t.n -= (size_t)sp->truncate;
	put16(d, (unsigned int)t.n);
	der_put(d, t.b, t.n);
}

/* A TSS2 PRIVATE KEY PEM around pkey's public half (and a dummy private
 * blob: nothing here ever reaches a TPM that could unwrap it); malloc'd. */
static char *build_wrapped(EVP_PKEY *pkey, const struct spec *sp)
{
	static const unsigned char yes[] = { 0x01, 0x01, 0x01 };
	static const unsigned char parent[] = { 0x40, 0x00, 0x00, 0x01 };
	unsigned char oid[] = { 0x67, 0x81, 0x05, 0x0a, 0x01, 0x03 };
	struct der body = { .n = 0 }, pub = { .n = 0 }, all = { .n = 0 };
	unsigned char priv[64];
	char *pem = NULL, *data;
	BIO *bio;
	long n;

	oid[5] = (unsigned char)sp->oid_last;
	der_tlv(&body, 0x06, oid, sizeof(oid));
	if (sp->empty_auth)
		der_tlv(&body, 0xa0, yes, sizeof(yes));
	der_tlv(&body, 0x02, parent, sizeof(parent));
	build_public(&pub, pkey, sp);
	der_tlv(&body, 0x04, pub.b, pub.n);
	memset(priv, 0x5a, sizeof(priv));
	der_tlv(&body, 0x04, priv, sizeof(priv));
	der_tlv(&all, 0x30, body.b, body.n);

	bio = BIO_new(BIO_s_mem());
	if (bio && PEM_write_bio(bio, TPM_KEY_PEM_LABEL, "", all.b,
				 (long)all.n) > 0 &&
	    (n = BIO_get_mem_data(bio, &data)) > 0) {
		pem = calloc(1, (size_t)n + 1);
		if (pem)
			memcpy(pem, data, (size_t)n);
	}
	BIO_free(bio);
	return pem;
}

static const struct spec ec_spec = {
	.empty_auth = 1, .oid_last = 3, .attributes = 0x00060072,
	.scheme = 0x0010, .curve = 0x0003,
};

/* ---- cases -------------------------------------------------------------- */

static void test_wrapped_keys_are_told_from_pem_keys(void)
{
	EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	BIO *bio = BIO_new(BIO_s_mem());
	char *data = NULL;
	long n = 0;

	CHECK(tpm_key_is_wrapped(swtpm_ec_key, strlen(swtpm_ec_key)));
	CHECK(tpm_key_is_wrapped(swtpm_rsa_key, strlen(swtpm_rsa_key)));
	CHECK(pkey && bio && PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0,
						      NULL, NULL));
	n = BIO_get_mem_data(bio, &data);
	CHECK(n > 0 && !tpm_key_is_wrapped(data, (size_t)n));
	CHECK(!tpm_key_is_wrapped("", 0));
	CHECK(!tpm_key_is_wrapped(NULL, 0));
	/* The label alone, cut short, is not enough. */
	CHECK(!tpm_key_is_wrapped(swtpm_ec_key, 20));
	BIO_free(bio);
	EVP_PKEY_free(pkey);
}

/* The public half of files a TPM made: the kid OpenSSL's tpm2 provider
 * computed, P-256 and RSA 2048 / e 65537. */
static void test_public_half_of_swtpm_keys_without_a_tpm(void)
{
	char why[256] = "", kid[64];
	EVP_PKEY *ec, *rsa;
	BIGNUM *e = NULL;

	ec = tpm_key_public(swtpm_ec_key, strlen(swtpm_ec_key), why, sizeof(why));
	CHECK(ec != NULL);
	if (ec) {
		independent_kid(ec, kid);
		CHECK_STR(kid, swtpm_ec_kid);
		CHECK(EVP_PKEY_get_base_id(ec) == EVP_PKEY_EC);
		CHECK(EVP_PKEY_get_bits(ec) == 256);
	}
	rsa = tpm_key_public(swtpm_rsa_key, strlen(swtpm_rsa_key), why,
			     sizeof(why));
	CHECK(rsa != NULL);
	if (rsa) {
		independent_kid(rsa, kid);
		CHECK_STR(kid, swtpm_rsa_kid);
		CHECK(EVP_PKEY_get_base_id(rsa) == EVP_PKEY_RSA);
		CHECK(EVP_PKEY_get_bits(rsa) == 2048);
		CHECK(EVP_PKEY_get_bn_param(rsa, OSSL_PKEY_PARAM_RSA_E, &e) == 1);
		CHECK(e && BN_get_word(e) == 65537);
	}
	BN_free(e);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(rsa);
}

/* Files built around keys OpenSSL generated: the parsed public key is the
 * generated one, coordinates not padded to full length included. */
static void test_public_half_matches_the_key_it_was_built_from(void)
{
	struct spec rsa_spec = ec_spec;
	char why[256] = "", want[64], got[64];

	rsa_spec.rsa_bits = 2048;
	for (int i = 0; i < 12; i++) {
		const struct spec *sp = i < 10 ? &ec_spec : &rsa_spec;
		EVP_PKEY *key = sp->rsa_bits ?
				EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048) :
				EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
		char *pem = key ? build_wrapped(key, sp) : NULL;
		EVP_PKEY *pub = pem ? tpm_key_public(pem, strlen(pem), why,
						     sizeof(why)) : NULL;

		CHECK(pub != NULL);
		if (pub) {
			independent_kid(key, want);
			independent_kid(pub, got);
			CHECK_STR(got, want);
		}
		EVP_PKEY_free(pub);
		EVP_PKEY_free(key);
		free(pem);
	}
}

/* One refused variant: tpm_key_public fails and why holds text. */
static void refused(EVP_PKEY *key, const struct spec *sp, const char *text)
{
	char why[256] = "", *pem = build_wrapped(key, sp);
	EVP_PKEY *pub;

	CHECK(pem != NULL);
	if (!pem)
		return;
	pub = tpm_key_public(pem, strlen(pem), why, sizeof(why));
	CHECK(pub == NULL);
	if (!strstr(why, text)) {
		fprintf(stderr, "    want \"%s\" in \"%s\"\n", text, why);
		CHECK(strstr(why, text) != NULL);
	}
	EVP_PKEY_free(pub);
	free(pem);
}

static void test_keys_credfs_cannot_sign_with_are_refused(void)
{
	EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	struct spec sp;

	CHECK(ec != NULL);
	if (!ec)
		return;
	sp = ec_spec;
	sp.empty_auth = 0;
	refused(ec, &sp, "needs a password");
	sp = ec_spec;
	sp.oid_last = 5;			/* a sealed object */
	refused(ec, &sp, "not a loadable TPM key");
	sp = ec_spec;
	sp.attributes = 0x00020072;		/* decrypt, no sign */
	refused(ec, &sp, "not a signing key");
	sp = ec_spec;
	sp.scheme = 0x0018;			/* ECDSA with SHA-384 */
	sp.scheme_hash = 0x000c;
	refused(ec, &sp, "bound to scheme");
	sp = ec_spec;
	sp.curve = 0x0020;			/* SM2 */
	refused(ec, &sp, "curve 0x0020");
	for (int cut = 1; cut < 40; cut++) {
		sp = ec_spec;
		sp.truncate = cut;
		refused(ec, &sp, "");
	}
	/* ECDSA with SHA-256 as a fixed scheme is fine. */
	sp = ec_spec;
	sp.scheme = 0x0018;
	sp.scheme_hash = 0x000b;
	{
		char why[256], *pem = build_wrapped(ec, &sp);
		EVP_PKEY *pub = pem ? tpm_key_public(pem, strlen(pem), why,
						     sizeof(why)) : NULL;

		CHECK(pub != NULL);
		EVP_PKEY_free(pub);
		free(pem);
	}
	EVP_PKEY_free(ec);
}

static void test_garbage_is_refused(void)
{
	static const char bad_pem[] =
		"-----BEGIN " TPM_KEY_PEM_LABEL "-----\n"
		"!!!! not base64 !!!!\n"
		"-----END " TPM_KEY_PEM_LABEL "-----\n";
	static const char not_tss2[] =
		"-----BEGIN " TPM_KEY_PEM_LABEL "-----\n"
		"MAMCAQE=\n"
		"-----END " TPM_KEY_PEM_LABEL "-----\n";
	char why[256] = "";
	size_t len = strlen(swtpm_ec_key);

	CHECK(tpm_key_public(bad_pem, strlen(bad_pem), why, sizeof(why)) == NULL);
	CHECK(why[0] != '\0');
	CHECK(tpm_key_public(not_tss2, strlen(not_tss2), why, sizeof(why)) == NULL);
	CHECK(strstr(why, "TSS2") != NULL || strstr(why, "loadable") != NULL);
	/* Every prefix of a real file fails cleanly (or, cut inside the END
	 * line, still parses). */
	for (size_t n = 0; n < len; n++) {
		EVP_PKEY *p = tpm_key_public(swtpm_ec_key, n, why, sizeof(why));

		EVP_PKEY_free(p);
	}
}

/* previous_keys: the public half of a TPM-wrapped key is published with
 * no TPM anywhere (it may be another host's). */
static void test_previous_tpm_key_needs_no_tpm(void)
{
	char cur[128], prev_ec[128], prev_rsa[128];
	EVP_PKEY *ckey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	struct cfg_error cerr;
	struct signer *s = NULL;
	struct test_cfg t;
	BIO *bio = BIO_new(BIO_s_mem());
	json_t *jwks = NULL, *keys;
	char *data = NULL, *text = NULL, *disc = NULL;
	long n;

	setenv("TPM2OPENSSL_TCTI", DEAD_TCTI, 1);
	tmp_setup();
	CHECK(ckey && bio && PEM_write_bio_PrivateKey(bio, ckey, NULL, NULL, 0,
						      NULL, NULL));
	n = BIO_get_mem_data(bio, &data);
	CHECK(write_file("cur.pem", data, (size_t)n, 0600, cur, sizeof(cur)) == 0);
	CHECK(write_file("ec.tpm", swtpm_ec_key, strlen(swtpm_ec_key), 0600,
			 prev_ec, sizeof(prev_ec)) == 0);
	CHECK(write_file("rsa.tpm", swtpm_rsa_key, strlen(swtpm_rsa_key), 0600,
			 prev_rsa, sizeof(prev_rsa)) == 0);
	cfg_init(&t, cur);
	cfg_add_prev(&t, prev_ec);
	cfg_add_prev(&t, prev_rsa);
	CHECK(signer_load(&t.cfg, &s, &cerr) == 0);
	if (!s) {
		fprintf(stderr, "    %s\n", cerr.text);
		goto out;
	}
	CHECK(signer_uses_tpm(s) == 0);
	text = signer_jwks(s);
	jwks = text ? json_loads(text, 0, NULL) : NULL;
	keys = json_object_get(jwks, "keys");
	CHECK(json_array_size(keys) == 3);
	CHECK_STR(json_string_value(json_object_get(json_array_get(keys, 1), "kid")),
		  swtpm_ec_kid);
	CHECK_STR(json_string_value(json_object_get(json_array_get(keys, 2), "kid")),
		  swtpm_rsa_kid);
	CHECK_STR(json_string_value(json_object_get(json_array_get(keys, 2), "alg")),
		  "RS256");
	disc = signer_discovery(s);
	CHECK(disc && strstr(disc, "\"RS256\"") != NULL);

	/* A group-readable wrapped key is refused like a PEM private key. */
	CHECK(chmod(prev_rsa, 0640) == 0);
	signer_free(s);
	s = NULL;
	CHECK(signer_load(&t.cfg, &s, &cerr) == -1);
	CHECK(cerr.line == 21);
	CHECK(strstr(cerr.text, "mode 0640") != NULL);
out:
	json_decref(jwks);
	free(text);
	free(disc);
	signer_free(s);
	BIO_free(bio);
	EVP_PKEY_free(ckey);
	tmp_cleanup();
	unsetenv("TPM2OPENSSL_TCTI");
}

/* The current key: the TPM must load it now, else a configuration error
 * on the key's line that says why (credfs check exits 2 with it). */
static void test_current_tpm_key_without_its_tpm_is_a_config_error(void)
{
	char path[128];
	struct cfg_error cerr;
	struct signer *s = NULL;
	struct test_cfg t;

	setenv("TPM2OPENSSL_TCTI", DEAD_TCTI, 1);
	tmp_setup();
	CHECK(write_file("signer.tpm", swtpm_ec_key, strlen(swtpm_ec_key), 0600,
			 path, sizeof(path)) == 0);
	cfg_init(&t, path);
	memset(&cerr, 0, sizeof(cerr));
	CHECK(signer_load(&t.cfg, &s, &cerr) == -1);
	CHECK(s == NULL);
	CHECK_STR(cerr.file, "/etc/credfs/test.conf");
	CHECK(cerr.line == 7);
	CHECK(strstr(cerr.text, "cannot be loaded") != NULL);
	CHECK(strstr(cerr.text, path) != NULL);
	CHECK(strstr(cerr.text, "TPM") != NULL);
	fprintf(stderr, "    (reason: %s)\n", cerr.text);
	tmp_cleanup();
	unsetenv("TPM2OPENSSL_TCTI");
}

static void test_keygen_tpm_refuses_bad_arguments(void)
{
	char path[128], err[256] = "";

	tmp_setup();
	snprintf(path, sizeof(path), "%s/k.tpm", tmpdir);
	CHECK(signer_keygen_tpm(path, "dsa", 0, err, sizeof(err)) == -1);
	CHECK(strstr(err, "dsa") != NULL);
	CHECK(signer_keygen_tpm(path, "rsa", 4096, err, sizeof(err)) == -1);
	CHECK(strstr(err, "2048") != NULL);
	CHECK(access(path, F_OK) != 0);
	/* Without a TPM: an error, and nothing left behind. */
	setenv("TPM2OPENSSL_TCTI", DEAD_TCTI, 1);
	CHECK(signer_keygen_tpm(path, "ec", 0, err, sizeof(err)) == -1);
	CHECK(strstr(err, "TPM") != NULL);
	CHECK(access(path, F_OK) != 0);
	unsetenv("TPM2OPENSSL_TCTI");
	/* An existing file is never overwritten, TPM or not. */
	CHECK(write_file("k.tpm", "precious\n", 9, 0600, path, sizeof(path)) == 0);
	CHECK(signer_keygen_tpm(path, "ec", 0, err, sizeof(err)) == -1);
	CHECK(strstr(err, "never overwrites") != NULL);
	tmp_cleanup();
}

static const struct check_case cases[] = {
	CHECK_CASE(test_wrapped_keys_are_told_from_pem_keys),
	CHECK_CASE(test_public_half_of_swtpm_keys_without_a_tpm),
	CHECK_CASE(test_public_half_matches_the_key_it_was_built_from),
	CHECK_CASE(test_keys_credfs_cannot_sign_with_are_refused),
	CHECK_CASE(test_garbage_is_refused),
	CHECK_CASE(test_previous_tpm_key_needs_no_tpm),
	CHECK_CASE(test_current_tpm_key_without_its_tpm_is_a_config_error),
	CHECK_CASE(test_keygen_tpm_refuses_bad_arguments),
};

int main(void)
{
	return CHECK_RUN(cases);
}
