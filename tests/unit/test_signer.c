/*
 * Unit tests of the signer: key generation and loading rules, JWTs that an
 * independent verifier (EVP_DigestVerify on the public key, and on a key
 * rebuilt from the published JWK) accepts, kid, JWKS and discovery.
 * Tokens are never printed, even when a check fails.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "buf.h"
#include "signer.h"
#include "check.h"

#define NOW ((int64_t)1700000000)
#define LIFETIME 3600
#define SKEW 30
#define ISSUER "https://oidc.example.com"
#define AUDIENCE "sts.amazonaws.com"
#define SUBJECT "system:serviceaccount:prod:app"

/* ---- helpers ------------------------------------------------------------ */

static char tmpdir[64];

static void tmp_setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/credfs-signer-XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		exit(1);
	}
}

/* Removes every entry of tmpdir (files and empty directories) and it. */
static void tmp_cleanup(void)
{
	struct dirent *de;
	DIR *d = opendir(tmpdir);

	if (d) {
		while ((de = readdir(d))) {
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			if (unlinkat(dirfd(d), de->d_name, 0))
				unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR);
		}
		closedir(d);
	}
	rmdir(tmpdir);
}

static void tmp_path(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s", tmpdir, name);
}

/* Writes pkey (private, PKCS#8 PEM) to path with the given mode. */
static int write_private(const char *path, EVP_PKEY *pkey, mode_t mode)
{
	FILE *f = fopen(path, "wx");
	int ok;

	if (!f)
		return -1;
	ok = PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL);
	fclose(f);
	return ok && !chmod(path, mode) ? 0 : -1;
}

static int write_public(const char *path, EVP_PKEY *pkey)
{
	FILE *f = fopen(path, "wx");
	int ok;

	if (!f)
		return -1;
	ok = PEM_write_PUBKEY(f, pkey);
	fclose(f);
	return ok ? 0 : -1;
}

static int write_text(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "wx");

	if (!f)
		return -1;
	fputs(text, f);
	fclose(f);
	return chmod(path, mode);
}

/* A hand-built config: [signer] at line 5, key at line 7, previous keys at
 * lines 20, 21, ... (config.c is not linked). */
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
	t->cfg.signer.token_lifetime = LIFETIME;
	t->cfg.signer.clock_skew = SKEW;
	t->cfg.signer.previous_keys = t->prev;
	t->cfg.signer.previous_key_lines = t->prev_lines;
}

static void cfg_add_prev(struct test_cfg *t, const char *path)
{
	size_t i = t->cfg.signer.n_previous_keys++;

	t->prev[i] = (char *)path;
	t->prev_lines[i] = 20 + (int)i;
}

static EVP_PKEY *load_pem_private(const char *path)
{
	FILE *f = fopen(path, "r");
	EVP_PKEY *pkey;

	if (!f)
		return NULL;
	pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	return pkey;
}

static char *read_text(const char *path)
{
	char *p = calloc(1, 4096);
	FILE *f = fopen(path, "r");

	if (!f || !p) {
		if (f)
			fclose(f);
		free(p);
		return NULL;
	}
	if (fread(p, 1, 4095, f) == 0)
		p[0] = '\0';
	fclose(f);
	return p;
}

/* base64url (no padding) decoder written for the test; NULL on bad input. */
static unsigned char *b64url_decode(const char *s, size_t slen, size_t *outlen)
{
	unsigned char *out;
	uint32_t acc = 0;
	size_t o = 0;
	int bits = 0;

	if (slen % 4 == 1)
		return NULL;
	out = malloc(slen * 3 / 4 + 1);
	if (!out)
		return NULL;
	for (size_t i = 0; i < slen; i++) {
		char c = s[i];
		int v;

		if (c >= 'A' && c <= 'Z')
			v = c - 'A';
		else if (c >= 'a' && c <= 'z')
			v = c - 'a' + 26;
		else if (c >= '0' && c <= '9')
			v = c - '0' + 52;
		else if (c == '-')
			v = 62;
		else if (c == '_')
			v = 63;
		else {
			free(out);
			return NULL;
		}
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
		}
	}
	*outlen = o;
	return out;
}

static json_t *decode_json_part(const char *s, size_t len)
{
	size_t n = 0;
	unsigned char *raw = b64url_decode(s, len, &n);
	json_t *j;

	if (!raw)
		return NULL;
	j = json_loadb((const char *)raw, n, JSON_REJECT_DUPLICATES, NULL);
	free(raw);
	return j;
}

static size_t slen(const char *s)
{
	return s ? strlen(s) : 0;
}

/* Independent kid: SHA-256 over i2d_PUBKEY, encoded with EVP_EncodeBlock
 * and translated to base64url (not via b64url_encode). */
static void independent_kid(EVP_PKEY *pkey, char out[64])
{
	unsigned char md[32], *der = NULL;
	unsigned char b64[64];
	int derlen, n;

	out[0] = '\0';
	derlen = i2d_PUBKEY(pkey, &der);
	if (derlen <= 0)
		return;
	if (!EVP_Digest(der, (size_t)derlen, md, NULL, EVP_sha256(), NULL)) {
		OPENSSL_free(der);
		return;
	}
	OPENSSL_free(der);
	n = EVP_EncodeBlock(b64, md, sizeof(md));
	for (int i = 0; i < n && b64[i] != '='; i++) {
		char c = (char)b64[i];

		out[i] = c == '+' ? '-' : c == '/' ? '_' : c;
		out[i + 1] = '\0';
	}
}

/* Verifies a JWS signature over input with pub; alg "ES256" takes raw R||S
 * (rebuilt as DER here), "RS256" PKCS#1 v1.5.  1 if valid. */
static int verify_sig(EVP_PKEY *pub, const char *alg, const char *input,
		      size_t inlen, const unsigned char *sig, size_t siglen)
{
	unsigned char *der = NULL;
	const unsigned char *vsig = sig;
	size_t vlen = siglen;
	EVP_MD_CTX *ctx = NULL;
	ECDSA_SIG *es = NULL;
	int ok = 0, derlen;

	if (!strcmp(alg, "ES256")) {
		BIGNUM *r, *s;

		if (siglen != 64)
			return 0;
		es = ECDSA_SIG_new();
		r = BN_bin2bn(sig, 32, NULL);
		s = BN_bin2bn(sig + 32, 32, NULL);
		if (!es || !r || !s || !ECDSA_SIG_set0(es, r, s)) {
			BN_free(r);
			BN_free(s);
			goto out;
		}
		derlen = i2d_ECDSA_SIG(es, &der);
		if (derlen <= 0)
			goto out;
		vsig = der;
		vlen = (size_t)derlen;
	} else if (siglen != (size_t)EVP_PKEY_get_size(pub)) {
		return 0;
	}
	ctx = EVP_MD_CTX_new();
	if (!ctx || EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pub) != 1)
		goto out;
	ok = EVP_DigestVerify(ctx, vsig, vlen, (const unsigned char *)input,
			      inlen) == 1;
out:
	EVP_MD_CTX_free(ctx);
	ECDSA_SIG_free(es);
	OPENSSL_free(der);
	ERR_clear_error();
	return ok;
}

/* Splits and checks a JWT: three parts, header {alg, kid, typ} as expected,
 * a signature pub accepts.  Returns the claims (caller decrefs) or NULL. */
static json_t *verify_jwt(const char *jwt, EVP_PKEY *pub, const char *alg,
			  const char *kid)
{
	const char *d1, *d2;
	json_t *hdr = NULL, *claims = NULL;
	unsigned char *sig = NULL;
	size_t siglen = 0;
	int good = 0;

	d1 = strchr(jwt, '.');
	d2 = d1 ? strchr(d1 + 1, '.') : NULL;
	CHECK(d1 && d2 && !strchr(d2 + 1, '.'));
	if (!d1 || !d2)
		return NULL;
	hdr = decode_json_part(jwt, (size_t)(d1 - jwt));
	claims = decode_json_part(d1 + 1, (size_t)(d2 - d1 - 1));
	CHECK(hdr && claims);
	if (!hdr || !claims)
		goto out;
	CHECK(json_object_size(hdr) == 3);
	CHECK_STR(json_string_value(json_object_get(hdr, "alg")), alg);
	CHECK_STR(json_string_value(json_object_get(hdr, "kid")), kid);
	CHECK_STR(json_string_value(json_object_get(hdr, "typ")), "JWT");

	sig = b64url_decode(d2 + 1, strlen(d2 + 1), &siglen);
	CHECK(sig != NULL);
	if (!sig)
		goto out;
	good = verify_sig(pub, alg, jwt, (size_t)(d2 - jwt), sig, siglen);
	CHECK(good);
out:
	free(sig);
	json_decref(hdr);
	if (!good) {
		json_decref(claims);
		return NULL;
	}
	return claims;
}

/* Checks the claims of a token signed at NOW for SUBJECT. */
static void check_claims(json_t *c)
{
	const char *names[] = { "iss", "sub", "aud", "iat", "nbf", "exp", "jti" };
	const char *key;
	json_t *v;
	size_t i = 0;

	CHECK(json_object_size(c) == 7);
	json_object_foreach(c, key, v) {
		(void)v;
		if (i < 7)
			CHECK_STR(key, names[i]);	/* order as specified */
		i++;
	}
	CHECK_STR(json_string_value(json_object_get(c, "iss")), ISSUER);
	CHECK_STR(json_string_value(json_object_get(c, "sub")), SUBJECT);
	CHECK_STR(json_string_value(json_object_get(c, "aud")), AUDIENCE);
	CHECK(json_is_integer(json_object_get(c, "iat")));
	CHECK(json_is_integer(json_object_get(c, "exp")));
	CHECK(json_integer_value(json_object_get(c, "iat")) == NOW - SKEW);
	CHECK(json_integer_value(json_object_get(c, "nbf")) == NOW - SKEW);
	CHECK(json_integer_value(json_object_get(c, "exp")) == NOW + LIFETIME);
	key = json_string_value(json_object_get(c, "jti"));
	CHECK(key && strlen(key) == 36 && key[14] == '4');
}

/* Generates a key with EVP_PKEY_Q_keygen into tmpdir/name (mode 0600). */
static EVP_PKEY *gen_key_file(const char *name, const char *type,
			      char *path, size_t plen)
{
	EVP_PKEY *pkey;

	tmp_path(path, plen, name);
	if (!strcmp(type, "P-384"))
		pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	else if (!strcmp(type, "P-256"))
		pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	else
		pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)atoi(type));
	if (pkey && write_private(path, pkey, 0600)) {
		EVP_PKEY_free(pkey);
		pkey = NULL;
	}
	return pkey;
}

/* Signs and fully verifies one token with s against pub. */
static void sign_and_verify(struct signer *s, EVP_PKEY *pub, const char *alg)
{
	char *t1 = NULL, *t2 = NULL;
	json_t *c1, *c2;

	CHECK(signer_sign(s, SUBJECT, NULL, NOW, &t1, NULL, 0) == 0);
	CHECK(signer_sign(s, SUBJECT, NULL, NOW, &t2, NULL, 0) == 0);
	if (!t1 || !t2)
		goto out;
	CHECK_STR(signer_alg(s), alg);
	c1 = verify_jwt(t1, pub, alg, signer_kid(s));
	c2 = verify_jwt(t2, pub, alg, signer_kid(s));
	if (c1)
		check_claims(c1);
	if (c1 && c2) {
		const char *j1 = json_string_value(json_object_get(c1, "jti"));
		const char *j2 = json_string_value(json_object_get(c2, "jti"));

		CHECK(j1 && j2 && strcmp(j1, j2) != 0);
	}
	json_decref(c1);
	json_decref(c2);

	/* A tampered signing input must not verify. */
	t1[1] ^= 0x01;
	{
		const char *d2 = strrchr(t1, '.');
		size_t sl = 0;
		unsigned char *sig = b64url_decode(d2 + 1, strlen(d2 + 1), &sl);

		CHECK(sig && !verify_sig(pub, alg, t1, (size_t)(d2 - t1), sig, sl));
		free(sig);
	}
out:
	secret_free(t1);
	secret_free(t2);
}

/* Builds a public key from a JWK (EC x/y or RSA n/e) with OSSL_PARAM_BLD
 * and EVP_PKEY_fromdata; NULL on any error. */
static EVP_PKEY *key_from_jwk(json_t *jwk)
{
	const char *kty = json_string_value(json_object_get(jwk, "kty"));
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	unsigned char *a = NULL, *b = NULL, *pt = NULL;
	BIGNUM *n = NULL, *e = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pkey = NULL;
	size_t alen = 0, blen = 0;
	const char *fa, *fb;

	if (!kty || !bld)
		goto out;
	fa = json_string_value(json_object_get(jwk, !strcmp(kty, "EC") ? "x" : "n"));
	fb = json_string_value(json_object_get(jwk, !strcmp(kty, "EC") ? "y" : "e"));
	if (!fa || !fb)
		goto out;
	a = b64url_decode(fa, strlen(fa), &alen);
	b = b64url_decode(fb, strlen(fb), &blen);
	if (!a || !b)
		goto out;
	if (!strcmp(kty, "EC")) {
		if (alen != 32 || blen != 32)
			goto out;
		pt = malloc(65);
		if (!pt)
			goto out;
		pt[0] = 0x04;
		memcpy(pt + 1, a, 32);
		memcpy(pt + 33, b, 32);
		if (!OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
						     "prime256v1", 0) ||
		    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY,
						      pt, 65))
			goto out;
	} else {
		n = BN_bin2bn(a, (int)alen, NULL);
		e = BN_bin2bn(b, (int)blen, NULL);
		if (!n || !e || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
		    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
			goto out;
	}
	params = OSSL_PARAM_BLD_to_param(bld);
	ctx = EVP_PKEY_CTX_new_from_name(NULL, kty, NULL);
	if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
		pkey = NULL;
out:
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
	free(pt);
	free(a);
	free(b);
	ERR_clear_error();
	return pkey;
}

/* ---- cases -------------------------------------------------------------- */

static void test_b64url_rfc4648_vectors(void)
{
	static const struct {
		const char *in;
		const char *out;
	} v[] = {
		{ "", "" }, { "f", "Zg" }, { "fo", "Zm8" }, { "foo", "Zm9v" },
		{ "foob", "Zm9vYg" }, { "fooba", "Zm9vYmE" },
		{ "foobar", "Zm9vYmFy" },
	};
	static const unsigned char ff[] = { 0xfb, 0xff };
	char *s;

	for (size_t i = 0; i < ARRAY_SIZE(v); i++) {
		s = b64url_encode((const unsigned char *)v[i].in, strlen(v[i].in));
		CHECK_STR(s, v[i].out);
		free(s);
	}
	s = b64url_encode(ff, sizeof(ff));
	CHECK_STR(s, "-_8");
	free(s);
}

/* keygen type, expected alg: the file is 0600 despite umask 0, and loads. */
static void keygen_and_load(const char *type, const char *alg)
{
	char path[128], err[256] = "";
	struct test_cfg t;
	struct cfg_error cerr;
	struct signer *s = NULL;
	struct stat st;
	mode_t old;
	EVP_PKEY *pkey;

	tmp_setup();
	tmp_path(path, sizeof(path), "new.pem");
	old = umask(0);
	CHECK(signer_keygen(path, type, 0, err, sizeof(err)) == 0);
	umask(old);
	CHECK(stat(path, &st) == 0 && S_ISREG(st.st_mode));
	CHECK((st.st_mode & 07777) == 0600);

	cfg_init(&t, path);
	CHECK(signer_load(&t.cfg, &s, &cerr) == 0);
	if (s) {
		CHECK_STR(signer_alg(s), alg);
		CHECK(signer_token_lifetime(s) == LIFETIME);
		pkey = load_pem_private(path);
		CHECK(pkey != NULL);
		if (pkey) {
			if (!strcmp(alg, "RS256"))
				CHECK(EVP_PKEY_get_bits(pkey) == 2048);
			sign_and_verify(s, pkey, alg);
		}
		EVP_PKEY_free(pkey);
	}
	signer_free(s);
	tmp_cleanup();
}

static void test_keygen_ec_creates_0600_key_that_loads(void)
{
	keygen_and_load("ec", "ES256");
}

static void test_keygen_rsa_creates_0600_key_that_loads(void)
{
	keygen_and_load("rsa", "RS256");
}

static void test_keygen_never_overwrites(void)
{
	char path[128], link[128], err[256] = "", *text;

	tmp_setup();
	tmp_path(path, sizeof(path), "existing.pem");
	CHECK(write_text(path, "precious\n", 0600) == 0);
	CHECK(signer_keygen(path, "ec", 0, err, sizeof(err)) == -1);
	CHECK(strstr(err, "exists; credfs keygen never overwrites a key") != NULL);
	CHECK(strstr(err, path) != NULL);
	text = read_text(path);
	CHECK_STR(text, "precious\n");
	free(text);

	/* A symlink (even a dangling one) is not followed either. */
	tmp_path(link, sizeof(link), "link.pem");
	CHECK(symlink("/tmp/credfs-does-not-exist-ever", link) == 0);
	CHECK(signer_keygen(link, "ec", 0, err, sizeof(err)) == -1);
	CHECK(access("/tmp/credfs-does-not-exist-ever", F_OK) != 0);
	tmp_cleanup();
}

static void test_keygen_refuses_bad_type_and_bits(void)
{
	char path[128], err[256] = "";

	tmp_setup();
	tmp_path(path, sizeof(path), "k.pem");
	CHECK(signer_keygen(path, "rsa", 1024, err, sizeof(err)) == -1);
	CHECK(strstr(err, "2048") != NULL);
	CHECK(access(path, F_OK) != 0);
	CHECK(signer_keygen(path, "rsa", 16385, err, sizeof(err)) == -1);
	CHECK(access(path, F_OK) != 0);
	CHECK(signer_keygen(path, "dsa", 0, err, sizeof(err)) == -1);
	CHECK(strstr(err, "dsa") != NULL);
	CHECK(access(path, F_OK) != 0);
	tmp_cleanup();
}

static void test_load_refuses_group_readable_key(void)
{
	char path[128];
	struct test_cfg t;
	struct cfg_error cerr;
	struct signer *s = NULL;
	EVP_PKEY *pkey;

	tmp_setup();
	pkey = gen_key_file("k.pem", "P-256", path, sizeof(path));
	CHECK(pkey && chmod(path, 0644) == 0);
	cfg_init(&t, path);
	memset(&cerr, 0, sizeof(cerr));
	CHECK(signer_load(&t.cfg, &s, &cerr) == -1);
	CHECK(s == NULL);
	CHECK_STR(cerr.file, "/etc/credfs/test.conf");
	CHECK(cerr.line == 7);
	CHECK(strstr(cerr.text, "readable by group or others") != NULL);
	CHECK(strstr(cerr.text, "mode 0644") != NULL);
	CHECK(strstr(cerr.text, "chmod 600") != NULL);

	/* 0640 too; 0400 is fine. */
	CHECK(chmod(path, 0640) == 0);
	CHECK(signer_load(&t.cfg, &s, &cerr) == -1);
	CHECK(chmod(path, 0400) == 0);
	CHECK(signer_load(&t.cfg, &s, &cerr) == 0);
	signer_free(s);
	EVP_PKEY_free(pkey);
	tmp_cleanup();
}

static void test_load_refuses_what_is_not_a_private_key(void)
{
	char path[128], enc[128];
	struct test_cfg t;
	struct cfg_error cerr;
	struct signer *s = NULL;
	EVP_PKEY *pkey;
	FILE *f;

	tmp_setup();
	/* Not a key at all. */
	tmp_path(path, sizeof(path), "not-a-key.txt");
	CHECK(write_text(path, "region = us-east-1\n", 0600) == 0);
	cfg_init(&t, path);
	CHECK(signer_load(&t.cfg, &s, &cerr) == -1);
	CHECK(cerr.line == 7);
	CHECK(strstr(cerr.text, "not a PEM private key") != NULL);

	/* A public key is not a signing key. */
	cfg_init(&t, TEST_DATA_DIR "/keys/ec-p256.pub.pem");
	CHECK(signer_load(&t.cfg, &s, &cerr) == -1);
	CHECK(strstr(cerr.text, "not a PEM private key") != NULL);

	/* Missing file: strerror in the text. */
	cfg_init(&t, "/nonexistent/credfs/key.pem");
	CHECK(signer_load(&t.cfg, &s, &cerr) == -1);
	CHECK(cerr.line == 7);
	CHECK(strstr(cerr.text, strerror(ENOENT)) != NULL);

	/* A directory is not a regular file. */
	cfg_init(&t, tmpdir);
	CHECK(signer_load(&t.cfg, &s, &cerr) == -1);
	CHECK(strstr(cerr.text, "not a regular file") != NULL);

	/* An encrypted key fails without prompting for a passphrase. */
	tmp_path(enc, sizeof(enc), "enc.pem");
	pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	f = fopen(enc, "wx");
	CHECK(pkey && f);
	if (pkey && f)
		CHECK(PEM_write_PrivateKey(f, pkey, EVP_aes_256_cbc(),
					   (unsigned char *)"pw", 2, NULL, NULL));
	if (f)
		fclose(f);
	CHECK(chmod(enc, 0600) == 0);
	cfg_init(&t, enc);
	CHECK(signer_load(&t.cfg, &s, &cerr) == -1);
	CHECK(strstr(cerr.text, "encrypted") != NULL);
	CHECK(s == NULL);
	EVP_PKEY_free(pkey);
	tmp_cleanup();
}

static void test_load_refuses_p384_and_rsa1024(void)
{
	char p384[128], r1024[128];
	struct test_cfg t;
	struct cfg_error cerr;
	struct signer *s = NULL;
	EVP_PKEY *a, *b;

	tmp_setup();
	a = gen_key_file("p384.pem", "P-384", p384, sizeof(p384));
	b = gen_key_file("rsa1024.pem", "1024", r1024, sizeof(r1024));
	CHECK(a && b);

	cfg_init(&t, p384);
	CHECK(signer_load(&t.cfg, &s, &cerr) == -1);
	CHECK(cerr.line == 7);
	CHECK(strstr(cerr.text, "secp384r1") != NULL);
	CHECK(strstr(cerr.text, "P-256") != NULL);

	cfg_init(&t, r1024);
	CHECK(signer_load(&t.cfg, &s, &cerr) == -1);
	CHECK(cerr.line == 7);
	CHECK(strstr(cerr.text, "1024-bit RSA") != NULL);
	CHECK(s == NULL);
	EVP_PKEY_free(a);
	EVP_PKEY_free(b);
	tmp_cleanup();
}

static void test_previous_key_errors_carry_their_line(void)
{
	char cur[128], bad[128], pub[128];
	struct test_cfg t;
	struct cfg_error cerr;
	struct signer *s = NULL;
	EVP_PKEY *a, *b;

	tmp_setup();
	a = gen_key_file("cur.pem", "P-256", cur, sizeof(cur));
	b = gen_key_file("old384.pem", "P-384", bad, sizeof(bad));
	CHECK(a && b);

	/* A public key readable by everyone is fine as a previous key. */
	tmp_path(pub, sizeof(pub), "old.pub.pem");
	CHECK(write_public(pub, a) == 0 && chmod(pub, 0644) == 0);
	cfg_init(&t, cur);
	cfg_add_prev(&t, pub);
	cfg_add_prev(&t, bad);
	CHECK(signer_load(&t.cfg, &s, &cerr) == -1);
	CHECK(cerr.line == 21);
	CHECK(strstr(cerr.text, "secp384r1") != NULL);

	/* A previous private key gets the permission check. */
	cfg_init(&t, cur);
	{
		char loose[128];
		EVP_PKEY *c = gen_key_file("loose.pem", "P-256", loose,
					   sizeof(loose));

		CHECK(c && chmod(loose, 0604) == 0);
		cfg_add_prev(&t, loose);
		CHECK(signer_load(&t.cfg, &s, &cerr) == -1);
		CHECK(cerr.line == 20);
		CHECK(strstr(cerr.text, "mode 0604") != NULL);
		EVP_PKEY_free(c);
	}

	/* And a previous file that is no key at all. */
	cfg_init(&t, cur);
	cfg_add_prev(&t, pub);
	cfg_add_prev(&t, TEST_DATA_DIR "/keys/not-a-key.txt");
	CHECK(signer_load(&t.cfg, &s, &cerr) == -1);
	CHECK(cerr.line == 21);
	CHECK(strstr(cerr.text, "not a PEM private or public key") != NULL);
	CHECK(s == NULL);
	EVP_PKEY_free(a);
	EVP_PKEY_free(b);
	tmp_cleanup();
}

static void test_kid_is_sha256_of_spki(void)
{
	char path[128], kid[64];
	char *want_ec, *want_rsa;
	struct test_cfg t;
	struct cfg_error cerr;
	struct signer *s = NULL;
	EVP_PKEY *pkey;
	json_t *jwks, *keys;
	char *text;

	tmp_setup();
	pkey = gen_key_file("k.pem", "P-256", path, sizeof(path));
	CHECK(pkey != NULL);
	cfg_init(&t, path);
	/* Fixed public keys whose kid the openssl CLI computed:
	 * openssl pkey -pubin -outform DER | openssl dgst -sha256 -binary |
	 * base64 | tr '+/' '-_' | tr -d '=' */
	cfg_add_prev(&t, TEST_DATA_DIR "/keys/ec-p256.pub.pem");
	cfg_add_prev(&t, TEST_DATA_DIR "/keys/rsa-2048.pub.pem");
	CHECK(signer_load(&t.cfg, &s, &cerr) == 0);
	if (!s || !pkey)
		goto out;
	independent_kid(pkey, kid);
	CHECK(strlen(kid) == 43);
	CHECK_STR(signer_kid(s), kid);

	want_ec = read_text(TEST_DATA_DIR "/keys/ec-p256.kid");
	want_rsa = read_text(TEST_DATA_DIR "/keys/rsa-2048.kid");
	if (want_ec)
		want_ec[strcspn(want_ec, "\n")] = '\0';
	if (want_rsa)
		want_rsa[strcspn(want_rsa, "\n")] = '\0';
	text = signer_jwks(s);
	jwks = text ? json_loads(text, 0, NULL) : NULL;
	keys = json_object_get(jwks, "keys");
	CHECK(json_array_size(keys) == 3);
	CHECK_STR(json_string_value(json_object_get(json_array_get(keys, 1), "kid")),
		  want_ec);
	CHECK_STR(json_string_value(json_object_get(json_array_get(keys, 2), "kid")),
		  want_rsa);
	json_decref(jwks);
	free(text);
	free(want_ec);
	free(want_rsa);
out:
	signer_free(s);
	EVP_PKEY_free(pkey);
	tmp_cleanup();
}

/* Verifies a token of s with the key rebuilt from the JWK at index i. */
static void check_jwk_verifies(json_t *keys, size_t i, struct signer *s)
{
	EVP_PKEY *pub = key_from_jwk(json_array_get(keys, i));
	char *tok = NULL;
	json_t *c;

	CHECK(pub != NULL);
	CHECK(signer_sign(s, SUBJECT, NULL, NOW, &tok, NULL, 0) == 0);
	if (pub && tok) {
		c = verify_jwt(tok, pub, signer_alg(s), signer_kid(s));
		CHECK(c != NULL);
		json_decref(c);
	}
	secret_free(tok);
	EVP_PKEY_free(pub);
}

static void test_jwks_publishes_current_then_previous(void)
{
	char ec[128], rsa[128], ecpub[128];
	struct test_cfg t;
	struct cfg_error cerr;
	struct signer *s_ec = NULL, *s_rsa = NULL;
	EVP_PKEY *a, *b;
	json_t *jwks = NULL, *keys, *k;
	char *text = NULL, kid_a[64], kid_b[64];
	const char *key;
	json_t *v;
	size_t i;

	tmp_setup();
	a = gen_key_file("ec.pem", "P-256", ec, sizeof(ec));
	b = gen_key_file("rsa.pem", "2048", rsa, sizeof(rsa));
	CHECK(a && b);
	if (!a || !b)
		goto out;
	independent_kid(a, kid_a);
	independent_kid(b, kid_b);
	tmp_path(ecpub, sizeof(ecpub), "ec.pub.pem");
	CHECK(write_public(ecpub, a) == 0);

	/* Current EC; previous: RSA private key, the current key again (as a
	 * public PEM: a duplicate kid, skipped), and the RSA key once more. */
	cfg_init(&t, ec);
	cfg_add_prev(&t, rsa);
	cfg_add_prev(&t, ecpub);
	cfg_add_prev(&t, rsa);
	CHECK(signer_load(&t.cfg, &s_ec, &cerr) == 0);
	cfg_init(&t, rsa);
	CHECK(signer_load(&t.cfg, &s_rsa, &cerr) == 0);
	if (!s_ec || !s_rsa)
		goto out;

	text = signer_jwks(s_ec);
	CHECK(text && text[strlen(text) - 1] == '\n');
	jwks = text ? json_loads(text, JSON_REJECT_DUPLICATES, NULL) : NULL;
	CHECK(jwks && json_object_size(jwks) == 1);
	keys = json_object_get(jwks, "keys");
	CHECK(json_array_size(keys) == 2);

	k = json_array_get(keys, 0);
	CHECK(json_object_size(k) == 7);
	CHECK_STR(json_string_value(json_object_get(k, "use")), "sig");
	CHECK_STR(json_string_value(json_object_get(k, "kty")), "EC");
	CHECK_STR(json_string_value(json_object_get(k, "kid")), kid_a);
	CHECK_STR(json_string_value(json_object_get(k, "crv")), "P-256");
	CHECK_STR(json_string_value(json_object_get(k, "alg")), "ES256");
	CHECK(slen(json_string_value(json_object_get(k, "x"))) == 43);
	CHECK(slen(json_string_value(json_object_get(k, "y"))) == 43);
	CHECK(json_object_get(k, "d") == NULL);

	k = json_array_get(keys, 1);
	CHECK(json_object_size(k) == 6);
	CHECK_STR(json_string_value(json_object_get(k, "use")), "sig");
	CHECK_STR(json_string_value(json_object_get(k, "kty")), "RSA");
	CHECK_STR(json_string_value(json_object_get(k, "kid")), kid_b);
	CHECK_STR(json_string_value(json_object_get(k, "alg")), "RS256");
	CHECK_STR(json_string_value(json_object_get(k, "e")), "AQAB");
	CHECK(slen(json_string_value(json_object_get(k, "n"))) == 342);
	json_object_foreach(k, key, v) {
		(void)v;
		CHECK(strcmp(key, "d") && strcmp(key, "p") && strcmp(key, "q"));
	}

	/* The published keys verify tokens of both signers. */
	check_jwk_verifies(keys, 0, s_ec);
	check_jwk_verifies(keys, 1, s_rsa);

	/* And no JWK matches the wrong key. */
	for (i = 0; i < 2; i++) {
		EVP_PKEY *pub = key_from_jwk(json_array_get(keys, i));
		char *tok = NULL;
		unsigned char *sig;
		size_t sl = 0;
		const char *d2;

		CHECK(signer_sign(i ? s_ec : s_rsa, SUBJECT, NULL, NOW, &tok, NULL, 0) == 0);
		if (pub && tok) {
			d2 = strrchr(tok, '.');
			sig = b64url_decode(d2 + 1, strlen(d2 + 1), &sl);
			CHECK(!verify_sig(pub, i ? "RS256" : "ES256", tok,
					  (size_t)(d2 - tok), sig, sl));
			free(sig);
		}
		secret_free(tok);
		EVP_PKEY_free(pub);
	}
out:
	json_decref(jwks);
	free(text);
	signer_free(s_ec);
	signer_free(s_rsa);
	EVP_PKEY_free(a);
	EVP_PKEY_free(b);
	tmp_cleanup();
}

static void test_discovery_document(void)
{
	static const char *claims[] = { "aud", "exp", "sub", "iat", "iss", "sub" };
	static const char *order[] = {
		"issuer", "jwks_uri", "authorization_endpoint",
		"response_types_supported", "subject_types_supported",
		"id_token_signing_alg_values_supported", "claims_supported",
	};
	char ec[128], rsa[128], ec2[128];
	struct test_cfg t;
	struct cfg_error cerr;
	struct signer *s = NULL;
	EVP_PKEY *a, *b, *c;
	json_t *d = NULL, *algs, *v;
	const char *key;
	char *text = NULL;
	size_t i = 0;

	tmp_setup();
	a = gen_key_file("ec.pem", "P-256", ec, sizeof(ec));
	b = gen_key_file("rsa.pem", "2048", rsa, sizeof(rsa));
	c = gen_key_file("ec2.pem", "P-256", ec2, sizeof(ec2));
	CHECK(a && b && c);
	cfg_init(&t, ec);
	cfg_add_prev(&t, ec2);
	cfg_add_prev(&t, rsa);
	CHECK(signer_load(&t.cfg, &s, &cerr) == 0);
	if (!s)
		goto out;
	text = signer_discovery(s);
	CHECK(text && text[strlen(text) - 1] == '\n');
	d = text ? json_loads(text, JSON_REJECT_DUPLICATES, NULL) : NULL;
	CHECK(d != NULL);
	if (!d)
		goto out;
	CHECK(json_object_size(d) == ARRAY_SIZE(order));
	json_object_foreach(d, key, v) {
		(void)v;
		if (i < ARRAY_SIZE(order))
			CHECK_STR(key, order[i]);
		i++;
	}
	CHECK_STR(json_string_value(json_object_get(d, "issuer")), ISSUER);
	CHECK_STR(json_string_value(json_object_get(d, "jwks_uri")),
		  ISSUER "/keys.json");
	CHECK_STR(json_string_value(json_object_get(d, "authorization_endpoint")),
		  "urn:kubernetes:programmatic_authorization");
	v = json_object_get(d, "response_types_supported");
	CHECK(json_array_size(v) == 1);
	CHECK_STR(json_string_value(json_array_get(v, 0)), "id_token");
	v = json_object_get(d, "subject_types_supported");
	CHECK(json_array_size(v) == 1);
	CHECK_STR(json_string_value(json_array_get(v, 0)), "public");
	algs = json_object_get(d, "id_token_signing_alg_values_supported");
	CHECK(json_array_size(algs) == 2);	/* ES256 once, then RS256 */
	CHECK_STR(json_string_value(json_array_get(algs, 0)), "ES256");
	CHECK_STR(json_string_value(json_array_get(algs, 1)), "RS256");
	v = json_object_get(d, "claims_supported");
	CHECK(json_array_size(v) == ARRAY_SIZE(claims));
	for (i = 0; i < ARRAY_SIZE(claims); i++)
		CHECK_STR(json_string_value(json_array_get(v, i)), claims[i]);
out:
	json_decref(d);
	free(text);
	signer_free(s);
	EVP_PKEY_free(a);
	EVP_PKEY_free(b);
	EVP_PKEY_free(c);
	tmp_cleanup();
}

struct thread_arg {
	struct signer *s;
	EVP_PKEY *pub;
	int bad;
};

static void *sign_many(void *p)
{
	struct thread_arg *a = p;

	for (int i = 0; i < 50; i++) {
		char *tok = NULL;
		const char *d2;
		unsigned char *sig;
		size_t sl = 0;

		if (signer_sign(a->s, SUBJECT, NULL, NOW, &tok, NULL, 0)) {
			a->bad++;
			continue;
		}
		d2 = strrchr(tok, '.');
		sig = b64url_decode(d2 + 1, strlen(d2 + 1), &sl);
		if (!sig || !verify_sig(a->pub, signer_alg(a->s), tok,
					(size_t)(d2 - tok), sig, sl))
			a->bad++;
		free(sig);
		secret_free(tok);
	}
	return NULL;
}

static void test_sign_from_many_threads(void)
{
	char path[128];
	struct test_cfg t;
	struct cfg_error cerr;
	struct signer *s = NULL;
	struct thread_arg args[4];
	pthread_t th[4];
	EVP_PKEY *pkey;

	tmp_setup();
	pkey = gen_key_file("k.pem", "P-256", path, sizeof(path));
	cfg_init(&t, path);
	CHECK(pkey && signer_load(&t.cfg, &s, &cerr) == 0);
	if (!s)
		goto out;
	for (int i = 0; i < 4; i++) {
		args[i] = (struct thread_arg){ .s = s, .pub = pkey, .bad = 0 };
		CHECK(pthread_create(&th[i], NULL, sign_many, &args[i]) == 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CHECK(args[i].bad == 0);
	}
out:
	signer_free(s);
	EVP_PKEY_free(pkey);
	tmp_cleanup();
}

/* A role's own audience replaces [signer] audience in that token only. */
static void test_sign_with_an_audience_of_its_own(void)
{
	char path[128], why[256];
	struct test_cfg t;
	struct cfg_error cerr;
	struct signer *s = NULL;
	char *tok = NULL;
	const char *d1, *d2;
	json_t *c = NULL;
	EVP_PKEY *pkey;

	tmp_setup();
	pkey = gen_key_file("k.pem", "P-256", path, sizeof(path));
	cfg_init(&t, path);
	CHECK(pkey && signer_load(&t.cfg, &s, &cerr) == 0);
	if (!s)
		goto out;
	CHECK(signer_uses_tpm(s) == 0);
	CHECK(signer_sign(s, SUBJECT, "api://AzureADTokenExchange", NOW, &tok,
			  why, sizeof(why)) == 0);
	if (tok) {
		c = verify_jwt(tok, pkey, "ES256", signer_kid(s));
		CHECK_STR(json_string_value(json_object_get(c, "aud")),
			  "api://AzureADTokenExchange");
		json_decref(c);
		secret_free(tok);
		tok = NULL;
	}
	/* NULL: the [signer] audience. */
	CHECK(signer_sign(s, SUBJECT, NULL, NOW, &tok, why, sizeof(why)) == 0);
	if (tok) {
		d1 = strchr(tok, '.');
		d2 = d1 ? strchr(d1 + 1, '.') : NULL;
		c = d2 ? decode_json_part(d1 + 1, (size_t)(d2 - d1 - 1)) : NULL;
		CHECK_STR(json_string_value(json_object_get(c, "aud")), AUDIENCE);
		json_decref(c);
	}
out:
	secret_free(tok);
	signer_free(s);
	EVP_PKEY_free(pkey);
	tmp_cleanup();
}

/* A failed signature says why, and hands back no token. */
static void test_sign_failure_says_why(void)
{
	char why[256] = "";
	char *tok = (char *)"untouched";

	CHECK(signer_sign(NULL, SUBJECT, NULL, NOW, &tok, why, sizeof(why)) == -1);
	CHECK(tok == NULL);
	CHECK(why[0] != '\0');
	CHECK(signer_uses_tpm(NULL) == 0);
	/* why may be left out. */
	CHECK(signer_sign(NULL, SUBJECT, NULL, NOW, &tok, NULL, 0) == -1);
}

static void test_load_requires_signer_section(void)
{
	struct test_cfg t;
	struct cfg_error cerr;
	struct signer *s = (struct signer *)&t;

	cfg_init(&t, "/nonexistent");
	t.cfg.signer.present = 0;
	CHECK(signer_load(&t.cfg, &s, &cerr) == -1);
	CHECK(s == NULL);
	CHECK_STR(cerr.file, "/etc/credfs/test.conf");
}

static const struct check_case cases[] = {
	CHECK_CASE(test_b64url_rfc4648_vectors),
	CHECK_CASE(test_keygen_ec_creates_0600_key_that_loads),
	CHECK_CASE(test_keygen_rsa_creates_0600_key_that_loads),
	CHECK_CASE(test_keygen_never_overwrites),
	CHECK_CASE(test_keygen_refuses_bad_type_and_bits),
	CHECK_CASE(test_load_refuses_group_readable_key),
	CHECK_CASE(test_load_refuses_what_is_not_a_private_key),
	CHECK_CASE(test_load_refuses_p384_and_rsa1024),
	CHECK_CASE(test_previous_key_errors_carry_their_line),
	CHECK_CASE(test_kid_is_sha256_of_spki),
	CHECK_CASE(test_jwks_publishes_current_then_previous),
	CHECK_CASE(test_discovery_document),
	CHECK_CASE(test_sign_from_many_threads),
	CHECK_CASE(test_sign_with_an_audience_of_its_own),
	CHECK_CASE(test_sign_failure_says_why),
	CHECK_CASE(test_load_requires_signer_section),
};

int main(void)
{
	return CHECK_RUN(cases);
}
