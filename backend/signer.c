/*
 * credfs as an OIDC issuer.  Keys are loaded once; signing only reads them,
 * so signer_sign() may run on several threads at once (each call has its
 * own EVP_MD_CTX; a provider-native EVP_PKEY is safe to share for signing
 * in OpenSSL 3).  A key in a TPM signs through signer_tpm.c, which
 * serialises its callers.  Nothing here prints or logs key material or
 * tokens.
 */
#include "signer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "buf.h"
#include "jsonout.h"
#include "signer_tpm.h"

#define KEY_FILE_MAX (64 * 1024)	/* a PEM key larger than this is not one */
#define JWT_MAX (64 * 1024)
#define ES256_COORD_LEN 32
#define RSA_MIN_BITS 2048
#define RSA_MAX_BITS 16384

enum signer_alg_id {
	ALG_ES256,
	ALG_RS256,
};

struct signer_key {
	EVP_PKEY *pkey;		/* current file key: private; else public */
	struct tpm_key *tpm;	/* current key in a TPM: signs; else NULL */
	enum signer_alg_id alg;
	char *kid;
};

struct signer {
	struct signer_key cur;
	struct signer_key *prev;
	size_t n_prev;
	char *issuer;
	char *audience;
	int token_lifetime;
	int clock_skew;
};

static const char *alg_name(enum signer_alg_id alg)
{
	return alg == ALG_ES256 ? "ES256" : "RS256";
}

/* ---- base64url ---------------------------------------------------------- */

char *b64url_encode(const unsigned char *data, size_t len)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t i, o = 0;
	char *out;

	if (len > (SIZE_MAX - 4) / 4 * 3)
		return NULL;
	out = malloc(len / 3 * 4 + 4);
	if (!out)
		return NULL;
	for (i = 0; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 |
			     data[i + 2];

		out[o++] = tab[v >> 18 & 63];
		out[o++] = tab[v >> 12 & 63];
		out[o++] = tab[v >> 6 & 63];
		out[o++] = tab[v & 63];
	}
	if (len - i == 1) {
		uint32_t v = (uint32_t)data[i] << 16;

		out[o++] = tab[v >> 18 & 63];
		out[o++] = tab[v >> 12 & 63];
	} else if (len - i == 2) {
		uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8;

		out[o++] = tab[v >> 18 & 63];
		out[o++] = tab[v >> 12 & 63];
		out[o++] = tab[v >> 6 & 63];
	}
	out[o] = '\0';
	return out;
}

/* ---- keygen ------------------------------------------------------------- */

static void PRINTF_LIKE(3, 4) set_err(char *err, size_t errlen,
				      const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Generates a fresh key of the requested kind; NULL with err set on error. */
static EVP_PKEY *keygen_generate(const char *type, int bits, char *err,
				 size_t errlen)
{
	EVP_PKEY *pkey;

	if (!strcmp(type, "ec"))
		pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	else
		pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
	if (!pkey)
		set_err(err, errlen, "generating the %s key failed in OpenSSL",
			type);
	ERR_clear_error();
	return pkey;
}

/* Creates path for a new key: mode 0600, never an existing file or a
 * symlink.  Returns the descriptor, or -1 with err set. */
static int keyfile_create(const char *path, char *err, size_t errlen)
{
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	if (fd < 0) {
		if (errno == EEXIST)
			set_err(err, errlen,
				"%s exists; credfs keygen never overwrites a key",
				path);
		else
			set_err(err, errlen, "cannot create %s: %s", path,
				strerror(errno));
		return -1;
	}
	if (fchmod(fd, 0600)) {
		set_err(err, errlen, "cannot chmod %s: %s", path,
			strerror(errno));
		close(fd);
		unlink(path);
		return -1;
	}
	return fd;
}

/* Writes len bytes of data to fd (the new key file path), syncs and
 * closes it.  Returns 0, or -1 with err set (fd closed either way). */
static int keyfile_write(int fd, const char *path, const char *data,
			 size_t len, char *err, size_t errlen)
{
	size_t off = 0;
	ssize_t n;

	while (off < len) {
		n = write(fd, data + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			set_err(err, errlen, "cannot write %s: %s", path,
				n < 0 ? strerror(errno) : "short write");
			close(fd);
			return -1;
		}
		off += (size_t)n;
	}
	if (fsync(fd)) {
		set_err(err, errlen, "cannot write %s: %s", path,
			strerror(errno));
		close(fd);
		return -1;
	}
	if (close(fd)) {
		set_err(err, errlen, "cannot write %s: %s", path,
			strerror(errno));
		return -1;
	}
	return 0;
}

int signer_keygen_tpm(const char *path, const char *type, int bits,
		      char *err, size_t errlen)
{
	char *pem = NULL;
	size_t len = 0;
	int fd;

	if (!type || (strcmp(type, "ec") && strcmp(type, "rsa"))) {
		set_err(err, errlen, "unknown key type \"%s\"; use ec or rsa",
			type ? type : "");
		return -1;
	}
	if (!strcmp(type, "rsa") && bits && bits != RSA_MIN_BITS) {
		set_err(err, errlen,
			"RSA keys in a TPM have %d bits, not %d", RSA_MIN_BITS,
			bits);
		return -1;
	}
	fd = keyfile_create(path, err, errlen);
	if (fd < 0)
		return -1;
	if (tpm_keygen(type, &pem, &len, err, errlen)) {
		close(fd);
		unlink(path);
		return -1;
	}
	if (keyfile_write(fd, path, pem, len, err, errlen)) {
		unlink(path);
		secret_free_n(pem, len);
		return -1;
	}
	secret_free_n(pem, len);
	return 0;
}

int signer_keygen(const char *path, const char *type, int bits, char *err,
		  size_t errlen)
{
	EVP_PKEY *pkey = NULL;
	FILE *f = NULL;
	int fd = -1, ret = -1;

	if (!type || (strcmp(type, "ec") && strcmp(type, "rsa"))) {
		set_err(err, errlen, "unknown key type \"%s\"; use ec or rsa",
			type ? type : "");
		return -1;
	}
	if (!strcmp(type, "rsa")) {
		if (bits == 0)
			bits = RSA_MIN_BITS;
		if (bits < RSA_MIN_BITS || bits > RSA_MAX_BITS) {
			set_err(err, errlen,
				"RSA keys must have %d to %d bits, not %d",
				RSA_MIN_BITS, RSA_MAX_BITS, bits);
			return -1;
		}
	}

	fd = keyfile_create(path, err, errlen);
	if (fd < 0)
		return -1;

	pkey = keygen_generate(type, bits, err, errlen);
	if (!pkey)
		goto out_unlink;

	f = fdopen(fd, "w");
	if (!f) {
		set_err(err, errlen, "cannot write %s: %s", path,
			strerror(errno));
		goto out_unlink;
	}
	fd = -1;	/* owned by f now */
	if (!PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL)) {
		ERR_clear_error();
		set_err(err, errlen, "cannot write the key to %s", path);
		goto out_unlink;
	}
	if (fflush(f) || fsync(fileno(f))) {
		set_err(err, errlen, "cannot write %s: %s", path,
			strerror(errno));
		goto out_unlink;
	}
	if (fclose(f)) {
		f = NULL;
		set_err(err, errlen, "cannot write %s: %s", path,
			strerror(errno));
		goto out_unlink;
	}
	f = NULL;
	ret = 0;
	goto out;

out_unlink:
	unlink(path);
out:
	if (f)
		fclose(f);
	if (fd >= 0)
		close(fd);
	EVP_PKEY_free(pkey);
	return ret;
}

/* ---- loading ------------------------------------------------------------ */

static void PRINTF_LIKE(4, 5) cfg_err(struct cfg_error *err,
				      const struct cfg *cfg, int line,
				      const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return;
	snprintf(err->file, sizeof(err->file), "%s",
		 cfg->path ? cfg->path : "");
	err->line = line;
	va_start(ap, fmt);
	vsnprintf(err->text, sizeof(err->text), fmt, ap);
	va_end(ap);
}

/* Never prompts for a passphrase: encrypted keys simply fail to load. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

/* Reads path into a malloc'd buffer (wiped and freed by the caller with
 * secret_free_n(*data, cap)), after checking with fstat on the same
 * descriptor that it is a regular file.  *mode gets its permission bits.
 * Returns 0, or -1 with err filled. */
static int read_key_file(const struct cfg *cfg, const char *path, int line,
			 char **data, size_t *len, size_t *cap, mode_t *mode,
			 struct cfg_error *err)
{
	struct stat st;
	size_t n = 0;
	char *p = NULL;
	FILE *f;
	int fd;

	/* O_NONBLOCK: a FIFO must not hang the open before fstat refuses it. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		cfg_err(err, cfg, line, "cannot open key %s: %s", path,
			strerror(errno));
		return -1;
	}
	if (fstat(fd, &st)) {
		cfg_err(err, cfg, line, "cannot stat key %s: %s", path,
			strerror(errno));
		close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		cfg_err(err, cfg, line, "key %s is not a regular file", path);
		close(fd);
		return -1;
	}
	if (st.st_size > KEY_FILE_MAX) {
		cfg_err(err, cfg, line,
			"key %s is larger than %d bytes; not a PEM key", path,
			KEY_FILE_MAX);
		close(fd);
		return -1;
	}
	f = fdopen(fd, "r");
	if (!f) {
		cfg_err(err, cfg, line, "cannot read key %s: %s", path,
			strerror(errno));
		close(fd);
		return -1;
	}
	p = malloc(KEY_FILE_MAX + 1);
	if (!p) {
		cfg_err(err, cfg, line, "out of memory reading key %s", path);
		fclose(f);
		return -1;
	}
	n = fread(p, 1, KEY_FILE_MAX + 1, f);
	if (ferror(f) || n > KEY_FILE_MAX) {
		cfg_err(err, cfg, line, "cannot read key %s%s", path,
			n > KEY_FILE_MAX ? ": file too large" : "");
		fclose(f);
		secret_free_n(p, KEY_FILE_MAX + 1);
		return -1;
	}
	fclose(f);
	*data = p;
	*len = n;
	*cap = KEY_FILE_MAX + 1;
	*mode = st.st_mode & 07777;
	return 0;
}

/* Checks the key is one credfs signs with and sets *alg.  Returns 0, or -1
 * with err filled. */
static int check_key_type(const struct cfg *cfg, const char *path, int line,
			  EVP_PKEY *pkey, enum signer_alg_id *alg,
			  struct cfg_error *err)
{
	char group[64];
	size_t glen = 0;
	int bits;

	switch (EVP_PKEY_get_base_id(pkey)) {
	case EVP_PKEY_EC:
		if (!EVP_PKEY_get_utf8_string_param(pkey,
						    OSSL_PKEY_PARAM_GROUP_NAME,
						    group, sizeof(group), &glen)) {
			ERR_clear_error();
			cfg_err(err, cfg, line,
				"key %s is an EC key without a named curve; credfs needs P-256",
				path);
			return -1;
		}
		if (strcmp(group, "prime256v1") && strcmp(group, "P-256")) {
			cfg_err(err, cfg, line,
				"key %s is an EC key on curve %s; credfs needs P-256 (ES256) or RSA >= 2048 bits (RS256)",
				path, group);
			return -1;
		}
		*alg = ALG_ES256;
		return 0;
	case EVP_PKEY_RSA:
		bits = EVP_PKEY_get_bits(pkey);
		if (bits < RSA_MIN_BITS) {
			cfg_err(err, cfg, line,
				"key %s is a %d-bit RSA key; credfs needs at least %d bits",
				path, bits, RSA_MIN_BITS);
			return -1;
		}
		*alg = ALG_RS256;
		return 0;
	default:
		cfg_err(err, cfg, line,
			"key %s is a %s key; credfs signs with EC P-256 (ES256) or RSA >= 2048 bits (RS256)",
			path, EVP_PKEY_get0_type_name(pkey) ?
			EVP_PKEY_get0_type_name(pkey) : "unsupported");
		return -1;
	}
}

/* kid = base64url(SHA-256(DER SubjectPublicKeyInfo)); malloc'd or NULL. */
static char *compute_kid(EVP_PKEY *pkey)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned char *der = NULL;
	unsigned int mdlen = 0;
	char *kid = NULL;
	int derlen;

	derlen = i2d_PUBKEY(pkey, &der);
	if (derlen <= 0)
		goto out;
	if (!EVP_Digest(der, (size_t)derlen, md, &mdlen, EVP_sha256(), NULL))
		goto out;
	kid = b64url_encode(md, mdlen);
out:
	OPENSSL_free(der);
	ERR_clear_error();
	return kid;
}

/* A new EVP_PKEY holding only the public half of pkey, or NULL. */
static EVP_PKEY *public_only(EVP_PKEY *pkey)
{
	unsigned char *der = NULL;
	const unsigned char *p;
	EVP_PKEY *pub = NULL;
	int derlen;

	derlen = i2d_PUBKEY(pkey, &der);
	if (derlen > 0) {
		p = der;
		pub = d2i_PUBKEY(NULL, &p, derlen);
	}
	OPENSSL_free(der);
	ERR_clear_error();
	return pub;
}

/* Loads a TPM-wrapped key (data, len: the file's content; mode: its
 * permission bits).  Its public half comes from the file; as the current
 * key (!allow_public) it is also loaded into the TPM once to prove it
 * can sign here, and k->tpm signs with it.  A previous key needs no TPM:
 * it may come from another host's.  Returns 0, or -1 with err filled. */
static int load_tpm_key(const struct cfg *cfg, const char *path, int line,
			int allow_public, const char *data, size_t len,
			mode_t mode, struct signer_key *k,
			struct cfg_error *err)
{
	char why[384];
	EVP_PKEY *pub;

	/* Anyone who can reach this TPM can sign with the file. */
	if (mode & 077) {
		cfg_err(err, cfg, line,
			"TPM-wrapped key %s is readable by group or others (mode %04o); chmod 600 it",
			path, (unsigned int)mode);
		return -1;
	}
	pub = tpm_key_public(data, len, why, sizeof(why));
	if (!pub) {
		cfg_err(err, cfg, line, "%s is not a usable TPM-wrapped key: %s",
			path, why);
		return -1;
	}
	if (check_key_type(cfg, path, line, pub, &k->alg, err))
		goto fail;
	k->kid = compute_kid(pub);
	if (!k->kid) {
		cfg_err(err, cfg, line, "cannot compute the key id of %s", path);
		goto fail;
	}
	if (!allow_public) {
		k->tpm = tpm_key_open(path, data, len, pub, why, sizeof(why));
		if (!k->tpm) {
			cfg_err(err, cfg, line, "TPM key %s cannot be loaded: %s",
				path, why);
			goto fail;
		}
	}
	k->pkey = pub;
	return 0;
fail:
	free(k->kid);
	k->kid = NULL;
	EVP_PKEY_free(pub);
	return -1;
}

/* Loads one key file.  allow_public: a public-key PEM is accepted too
 * (previous_keys); otherwise the file must hold a private key.  The
 * permission check applies to private keys only.  A TPM-wrapped key is
 * accepted wherever a private PEM key is.  On success k holds the key
 * (only its public half for a previous key), its alg and kid. */
static int load_key(const struct cfg *cfg, const char *path, int line,
		    int allow_public, struct signer_key *k,
		    struct cfg_error *err)
{
	EVP_PKEY *pkey = NULL, *pub;
	size_t len = 0, cap = 0;
	char *data = NULL;
	mode_t mode = 0;
	int is_private = 1, ret = -1;
	BIO *bio;

	if (read_key_file(cfg, path, line, &data, &len, &cap, &mode, err))
		return -1;
	if (tpm_key_is_wrapped(data, len)) {
		ret = load_tpm_key(cfg, path, line, allow_public, data, len,
				   mode, k, err);
		secret_free_n(data, cap);
		return ret;
	}

	bio = BIO_new_mem_buf(data, (int)len);
	if (!bio) {
		cfg_err(err, cfg, line, "out of memory reading key %s", path);
		goto out;
	}
	pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
	if (!pkey && allow_public) {
		ERR_clear_error();
		if (BIO_reset(bio) == 1)
			pkey = PEM_read_bio_PUBKEY(bio, NULL, no_passphrase,
						   NULL);
		is_private = 0;
	}
	BIO_free(bio);
	ERR_clear_error();
	if (!pkey) {
		if (allow_public)
			cfg_err(err, cfg, line,
				"%s is not a PEM private or public key (encrypted keys are not supported)",
				path);
		else
			cfg_err(err, cfg, line,
				"%s is not a PEM private key (encrypted keys are not supported)",
				path);
		goto out;
	}
	if (is_private && (mode & 077)) {
		cfg_err(err, cfg, line,
			"private key %s is readable by group or others (mode %04o); chmod 600 it",
			path, (unsigned int)mode);
		goto out;
	}
	if (check_key_type(cfg, path, line, pkey, &k->alg, err))
		goto out;

	if (allow_public && is_private) {
		/* Only the public half of a previous key is ever used. */
		pub = public_only(pkey);
		if (!pub) {
			cfg_err(err, cfg, line,
				"cannot extract the public key of %s", path);
			goto out;
		}
		EVP_PKEY_free(pkey);
		pkey = pub;
	}
	k->kid = compute_kid(pkey);
	if (!k->kid) {
		cfg_err(err, cfg, line, "cannot compute the key id of %s", path);
		goto out;
	}
	k->pkey = pkey;
	pkey = NULL;
	ret = 0;
out:
	EVP_PKEY_free(pkey);
	secret_free_n(data, cap);
	return ret;
}

static void key_clear(struct signer_key *k)
{
	EVP_PKEY_free(k->pkey);
	tpm_key_free(k->tpm);
	free(k->kid);
	k->pkey = NULL;
	k->tpm = NULL;
	k->kid = NULL;
}

/* 1 if kid already belongs to the current key or an earlier previous key. */
static int kid_seen(const struct signer *s, const char *kid)
{
	if (s->cur.kid && !strcmp(s->cur.kid, kid))
		return 1;
	for (size_t i = 0; i < s->n_prev; i++)
		if (!strcmp(s->prev[i].kid, kid))
			return 1;
	return 0;
}

int signer_load(const struct cfg *cfg, struct signer **out,
		struct cfg_error *err)
{
	const struct cfg_signer *cs = &cfg->signer;
	struct signer *s;

	*out = NULL;
	if (!cs->present) {
		cfg_err(err, cfg, 0, "there is no [signer] section");
		return -1;
	}
	if (!cs->key || !cs->issuer || !cs->audience) {
		cfg_err(err, cfg, cs->line,
			"[signer] needs key, issuer and audience");
		return -1;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		goto oom;
	s->token_lifetime = cs->token_lifetime;
	s->clock_skew = cs->clock_skew;
	s->issuer = strdup(cs->issuer);
	s->audience = strdup(cs->audience);
	if (!s->issuer || !s->audience)
		goto oom;

	if (load_key(cfg, cs->key, cs->key_line, 0, &s->cur, err))
		goto fail;

	if (cs->n_previous_keys) {
		s->prev = calloc(cs->n_previous_keys, sizeof(*s->prev));
		if (!s->prev)
			goto oom;
	}
	for (size_t i = 0; i < cs->n_previous_keys; i++) {
		struct signer_key k = { 0 };
		int line = cs->previous_key_lines ?
			   cs->previous_key_lines[i] : cs->line;

		if (load_key(cfg, cs->previous_keys[i], line, 1, &k, err))
			goto fail;
		if (kid_seen(s, k.kid)) {
			key_clear(&k);
			continue;
		}
		s->prev[s->n_prev++] = k;
	}
	*out = s;
	return 0;

oom:
	cfg_err(err, cfg, cs->line, "out of memory loading [signer]");
fail:
	signer_free(s);
	return -1;
}

void signer_free(struct signer *s)
{
	if (!s)
		return;
	key_clear(&s->cur);
	for (size_t i = 0; i < s->n_prev; i++)
		key_clear(&s->prev[i]);
	free(s->prev);
	free(s->issuer);
	free(s->audience);
	free(s);
}

int signer_same_tokens(const struct signer *a, const struct signer *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a->cur.kid, b->cur.kid) == 0 &&
	       strcmp(a->issuer, b->issuer) == 0 &&
	       strcmp(a->audience, b->audience) == 0 &&
	       a->token_lifetime == b->token_lifetime &&
	       a->clock_skew == b->clock_skew;
}

const char *signer_alg(const struct signer *s)
{
	return alg_name(s->cur.alg);
}

const char *signer_kid(const struct signer *s)
{
	return s->cur.kid;
}

int signer_token_lifetime(const struct signer *s)
{
	return s->token_lifetime;
}

int signer_uses_tpm(const struct signer *s)
{
	return s && s->cur.tpm != NULL;
}

/* ---- signing ------------------------------------------------------------ */

/* A random RFC 4122 version 4 UUID into out; 0, or -1 if RAND_bytes fails. */
static int uuid_v4(char out[static 37])
{
	unsigned char b[16];

	if (RAND_bytes(b, sizeof(b)) != 1) {
		ERR_clear_error();
		return -1;
	}
	b[6] = (b[6] & 0x0f) | 0x40;
	b[8] = (b[8] & 0x3f) | 0x80;
	snprintf(out, 37,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9],
		 b[10], b[11], b[12], b[13], b[14], b[15]);
	return 0;
}

/* base64url of the compact serialization of j; malloc'd or NULL.  Steals
 * the reference to j. */
static char *b64url_json(json_t *j)
{
	char *text, *enc = NULL;

	if (!j)
		return NULL;
	text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(j);
	if (text) {
		enc = b64url_encode((const unsigned char *)text, strlen(text));
		free(text);
	}
	return enc;
}

/* Converts a DER ECDSA signature to the JWS form R||S (2 x 32 bytes). */
static int ecdsa_der_to_raw(const unsigned char *der, size_t derlen,
			    unsigned char raw[static 2 * ES256_COORD_LEN])
{
	const unsigned char *p = der;
	const BIGNUM *r, *sv;
	ECDSA_SIG *sig;
	int ret = -1;

	sig = d2i_ECDSA_SIG(NULL, &p, (long)derlen);
	if (!sig)
		goto out;
	ECDSA_SIG_get0(sig, &r, &sv);
	if (BN_bn2binpad(r, raw, ES256_COORD_LEN) != ES256_COORD_LEN ||
	    BN_bn2binpad(sv, raw + ES256_COORD_LEN, ES256_COORD_LEN) !=
	    ES256_COORD_LEN)
		goto out;
	ret = 0;
out:
	ECDSA_SIG_free(sig);
	ERR_clear_error();
	return ret;
}

/* Signs input with the current file key: a DER ECDSA or a PKCS#1 v1.5
 * RSA signature, OPENSSL_malloc'd into *sig.  Returns 0, or -1 with why. */
static int sign_with_file_key(const struct signer *s, const char *input,
			      unsigned char **sig, size_t *siglen, char *why,
			      size_t whylen)
{
	size_t inlen = strlen(input), len = 0;
	unsigned char *out = NULL;
	EVP_MD_CTX *ctx;

	*sig = NULL;
	ctx = EVP_MD_CTX_new();
	if (!ctx ||
	    EVP_DigestSignInit_ex(ctx, NULL, "SHA256", NULL, NULL, s->cur.pkey,
				  NULL) != 1 ||
	    EVP_DigestSign(ctx, NULL, &len, (const unsigned char *)input,
			   inlen) != 1)
		goto fail;
	out = OPENSSL_malloc(len);
	if (!out || EVP_DigestSign(ctx, out, &len, (const unsigned char *)input,
				   inlen) != 1)
		goto fail;
	EVP_MD_CTX_free(ctx);
	*sig = out;
	*siglen = len;
	return 0;
fail:
	set_err(why, whylen, "OpenSSL failed to sign with the key");
	OPENSSL_clear_free(out, len);
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	return -1;
}

/* Signs input with the current key (in the TPM or from its file); returns
 * the base64url JWS signature (malloc'd; free with secret_free) or NULL
 * with why.  Every copy of the signature is wiped before it is freed. */
static char *sign_input(const struct signer *s, const char *input, char *why,
			size_t whylen)
{
	unsigned char raw[2 * ES256_COORD_LEN];
	unsigned char *sig = NULL;
	size_t siglen = 0;
	char *enc = NULL;
	int rc;

	if (s->cur.tpm)
		rc = tpm_key_sign(s->cur.tpm, (const unsigned char *)input,
				  strlen(input), &sig, &siglen, why, whylen);
	else
		rc = sign_with_file_key(s, input, &sig, &siglen, why, whylen);
	if (rc)
		return NULL;
	if (s->cur.alg == ALG_ES256) {
		if (ecdsa_der_to_raw(sig, siglen, raw) == 0)
			enc = b64url_encode(raw, sizeof(raw));
		OPENSSL_cleanse(raw, sizeof(raw));
	} else {
		enc = b64url_encode(sig, siglen);
	}
	OPENSSL_clear_free(sig, siglen);
	ERR_clear_error();
	if (!enc)
		set_err(why, whylen, "out of memory encoding the signature");
	return enc;
}

int signer_sign(struct signer *s, const char *subject, const char *audience,
		int64_t now, char **jwt_out, char *why, size_t whylen)
{
	char *hdr = NULL, *claims = NULL, *sig = NULL;
	json_int_t iat, exp;
	char jti[37];
	struct buf b;
	int ret = -1;

	*jwt_out = NULL;
	if (!s || !subject) {
		set_err(why, whylen, "no signer or no subject");
		return -1;
	}
	if (uuid_v4(jti)) {
		set_err(why, whylen, "no random bytes for the token's jti");
		return -1;
	}
	iat = (json_int_t)(now - s->clock_skew);
	exp = (json_int_t)(now + s->token_lifetime);

	hdr = b64url_json(json_pack("{s:s, s:s, s:s}", "alg",
				    alg_name(s->cur.alg), "kid", s->cur.kid,
				    "typ", "JWT"));
	claims = b64url_json(json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:s}",
				       "iss", s->issuer, "sub", subject,
				       "aud", audience ? audience : s->audience,
				       "iat", iat, "nbf", iat, "exp", exp,
				       "jti", jti));
	if (!hdr || !claims)
		goto oom;

	buf_init(&b, JWT_MAX);
	if (buf_printf(&b, "%s.%s", hdr, claims))
		goto oom;
	sig = sign_input(s, b.data, why, whylen);
	if (!sig) {
		buf_free(&b);
		goto out;
	}
	if (buf_printf(&b, ".%s", sig))
		goto oom;
	*jwt_out = buf_steal(&b);
	if (!*jwt_out)
		goto oom;
	ret = 0;
	goto out;
oom:
	set_err(why, whylen, "out of memory building the token");
out:
	free(hdr);
	free(claims);
	secret_free(sig);
	return ret;
}

/* ---- JWKS and discovery ------------------------------------------------- */

/* base64url of a BIGNUM parameter of pkey: padded to pad bytes, or minimal
 * big-endian when pad is 0.  malloc'd or NULL. */
static char *b64url_bn_param(EVP_PKEY *pkey, const char *name, int pad)
{
	unsigned char *bytes = NULL;
	BIGNUM *bn = NULL;
	char *enc = NULL;
	int n;

	if (!EVP_PKEY_get_bn_param(pkey, name, &bn))
		goto out;
	n = pad ? pad : BN_num_bytes(bn);
	if (n <= 0 || BN_num_bytes(bn) > n)
		goto out;
	bytes = malloc((size_t)n);
	if (!bytes)
		goto out;
	if (BN_bn2binpad(bn, bytes, n) != n)
		goto out;
	enc = b64url_encode(bytes, (size_t)n);
out:
	free(bytes);
	BN_free(bn);
	ERR_clear_error();
	return enc;
}

/* The public JWK of k, or NULL. */
static json_t *key_jwk(const struct signer_key *k)
{
	char *a = NULL, *b = NULL;
	json_t *jwk = NULL;

	if (k->alg == ALG_ES256) {
		a = b64url_bn_param(k->pkey, OSSL_PKEY_PARAM_EC_PUB_X,
				    ES256_COORD_LEN);
		b = b64url_bn_param(k->pkey, OSSL_PKEY_PARAM_EC_PUB_Y,
				    ES256_COORD_LEN);
		if (a && b)
			jwk = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
					"use", "sig", "kty", "EC", "kid", k->kid,
					"crv", "P-256", "alg", "ES256",
					"x", a, "y", b);
	} else {
		a = b64url_bn_param(k->pkey, OSSL_PKEY_PARAM_RSA_N, 0);
		b = b64url_bn_param(k->pkey, OSSL_PKEY_PARAM_RSA_E, 0);
		if (a && b)
			jwk = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}",
					"use", "sig", "kty", "RSA", "kid", k->kid,
					"alg", "RS256", "n", a, "e", b);
	}
	free(a);
	free(b);
	return jwk;
}

char *signer_jwks(const struct signer *s)
{
	json_t *keys, *root;

	keys = json_array();
	root = json_pack("{s:o}", "keys", keys);
	if (!root)
		return NULL;
	if (json_array_append_new(keys, key_jwk(&s->cur)))
		goto fail;
	for (size_t i = 0; i < s->n_prev; i++)
		if (json_array_append_new(keys, key_jwk(&s->prev[i])))
			goto fail;
	return json_document(root);
fail:
	json_decref(root);
	return NULL;
}

char *signer_discovery(const struct signer *s)
{
	json_t *algs, *root;
	char *jwks_uri = NULL;
	struct buf b;
	int seen[2] = { 0, 0 };

	buf_init(&b, 8192);
	if (buf_printf(&b, "%s/keys.json", s->issuer))
		return NULL;
	jwks_uri = buf_steal(&b);
	if (!jwks_uri)
		return NULL;

	algs = json_array();
	if (!algs)
		goto fail;
	seen[s->cur.alg] = 1;
	if (json_array_append_new(algs, json_string(alg_name(s->cur.alg))))
		goto fail_algs;
	for (size_t i = 0; i < s->n_prev; i++) {
		if (seen[s->prev[i].alg])
			continue;
		seen[s->prev[i].alg] = 1;
		if (json_array_append_new(algs,
					  json_string(alg_name(s->prev[i].alg))))
			goto fail_algs;
	}
	/* claims_supported as ccoctl publishes it, "sub" twice included. */
	root = json_pack("{s:s, s:s, s:s, s:[s], s:[s], s:o, s:[s,s,s,s,s,s]}",
			 "issuer", s->issuer,
			 "jwks_uri", jwks_uri,
			 "authorization_endpoint",
			 "urn:kubernetes:programmatic_authorization",
			 "response_types_supported", "id_token",
			 "subject_types_supported", "public",
			 "id_token_signing_alg_values_supported", algs,
			 "claims_supported",
			 "aud", "exp", "sub", "iat", "iss", "sub");
	free(jwks_uri);
	return json_document(root);

fail_algs:
	json_decref(algs);
fail:
	free(jwks_uri);
	return NULL;
}
