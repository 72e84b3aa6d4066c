#include "endpoint_token.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#define ROLE_LABEL "credfs endpoint v1"
#define IMDS_LABEL "credfs imds v1"
#define MAC_LEN 32
#define MSG_MAX (sizeof(ROLE_LABEL) + CFG_ROLE_NAME_MAX + 1 + 4)

static const char b64url[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* ---- the secret ---------------------------------------------------------- */

struct endpoint_secret *endpoint_secret_from(const void *key, size_t len)
{
	struct endpoint_secret *s;

	if (len != ENDPOINT_SECRET_LEN)
		return NULL;
	s = OPENSSL_secure_zalloc(sizeof(*s));
	if (s)
		memcpy(s->key, key, len);
	return s;
}

struct endpoint_secret *endpoint_secret_random(void)
{
	struct endpoint_secret *s = OPENSSL_secure_zalloc(sizeof(*s));

	if (s && RAND_priv_bytes(s->key, sizeof(s->key)) != 1) {
		endpoint_secret_free(s);
		return NULL;
	}
	return s;
}

void endpoint_secret_free(struct endpoint_secret *s)
{
	if (s)
		OPENSSL_secure_clear_free(s, sizeof(*s));
}

/* ---- encoding ------------------------------------------------------------ */

/* base64url of len bytes of in, unpadded, into out (4 * len / 3 + 2
 * bytes at least), NUL-terminated. */
static void encode(const unsigned char *in, size_t len, char *out)
{
	size_t o = 0, i;

	for (i = 0; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

		out[o++] = b64url[v >> 18 & 63];
		out[o++] = b64url[v >> 12 & 63];
		out[o++] = b64url[v >> 6 & 63];
		out[o++] = b64url[v & 63];
	}
	if (len - i) {
		uint32_t v = (uint32_t)in[i] << 16 |
			     (len - i == 2 ? (uint32_t)in[i + 1] << 8 : 0);

		out[o++] = b64url[v >> 18 & 63];
		out[o++] = b64url[v >> 12 & 63];
		if (len - i == 2)
			out[o++] = b64url[v >> 6 & 63];
	}
	out[o] = '\0';
}

/* The value of base64url character c, or -1. */
static int b64_value(unsigned char c)
{
	const char *p = c ? strchr(b64url, c) : NULL;

	return p ? (int)(p - b64url) : -1;
}

/* Decodes exactly ENDPOINT_IMDS_TOKEN_LEN characters into 40 bytes.  0, or
 * -1 if in is not such a text. */
static int decode_imds(const char *in, unsigned char out[static 8 + MAC_LEN])
{
	size_t o = 0;
	uint32_t v = 0;
	int bits = 0;

	for (size_t i = 0; i < ENDPOINT_IMDS_TOKEN_LEN; i++) {
		int d = b64_value((unsigned char)in[i]);

		if (d < 0)
			return -1;
		v = v << 6 | (uint32_t)d;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(v >> bits);
		}
	}
	/* The 4 bits left over must be zero for the text to be canonical. */
	return o == 8 + MAC_LEN && !(v & ((1u << bits) - 1)) ? 0 : -1;
}

/* ---- MACs ---------------------------------------------------------------- */

static int mac(const struct endpoint_secret *s, const unsigned char *msg,
	       size_t len, unsigned char out[static MAC_LEN])
{
	size_t outlen = 0;

	if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, s->key,
		       sizeof(s->key), msg, len, out, MAC_LEN, &outlen) ||
	    outlen != MAC_LEN)
		return -EIO;
	return 0;
}

/* The MAC of name's token at rotation.  A name longer than a role name
 * can be is cut to that length: it matches no role either way. */
static int role_mac(const struct endpoint_secret *s, const char *name,
		    unsigned rotation, unsigned char out[static MAC_LEN])
{
	unsigned char msg[MSG_MAX];
	size_t n = strnlen(name, CFG_ROLE_NAME_MAX), o = sizeof(ROLE_LABEL);

	memcpy(msg, ROLE_LABEL, sizeof(ROLE_LABEL));	/* with its NUL */
	memcpy(msg + o, name, n);
	o += n;
	msg[o++] = 0;
	msg[o++] = (unsigned char)(rotation >> 24);
	msg[o++] = (unsigned char)(rotation >> 16);
	msg[o++] = (unsigned char)(rotation >> 8);
	msg[o++] = (unsigned char)rotation;
	return mac(s, msg, o, out);
}

int endpoint_role_token(const struct endpoint_secret *s, const char *name,
			unsigned rotation,
			char out[static ENDPOINT_ROLE_TOKEN_LEN + 1])
{
	unsigned char m[MAC_LEN];
	int r = role_mac(s, name, rotation, m);

	out[0] = '\0';
	if (!r)
		encode(m, sizeof(m), out);
	OPENSSL_cleanse(m, sizeof(m));
	return r;
}

/* Whether given (len bytes) equals want (a NUL-terminated text of wlen
 * characters), in a time that depends on wlen only. */
static int same_text(const char *want, size_t wlen, const char *given,
		     size_t len)
{
	char copy[ENDPOINT_IMDS_TOKEN_LEN + 1] = { 0 };
	int differ;

	memcpy(copy, given, len < wlen ? len : wlen);
	differ = CRYPTO_memcmp(copy, want, wlen);
	OPENSSL_cleanse(copy, sizeof(copy));
	return !differ && len == wlen;
}

int endpoint_role_token_matches(const struct endpoint_secret *s,
				const char *name, unsigned rotation,
				const char *given, size_t len)
{
	char want[ENDPOINT_ROLE_TOKEN_LEN + 1];
	int ok = 0;

	if (!endpoint_role_token(s, name, rotation, want))
		ok = same_text(want, ENDPOINT_ROLE_TOKEN_LEN, given, len);
	OPENSSL_cleanse(want, sizeof(want));
	return ok;
}

/* The 8-byte big-endian form of t and its MAC. */
static int imds_mac(const struct endpoint_secret *s, uint64_t t,
		    unsigned char when[static 8], unsigned char out[static MAC_LEN])
{
	unsigned char msg[sizeof(IMDS_LABEL) + 8];

	for (int i = 0; i < 8; i++)
		when[i] = (unsigned char)(t >> (56 - 8 * i));
	memcpy(msg, IMDS_LABEL, sizeof(IMDS_LABEL));
	memcpy(msg + sizeof(IMDS_LABEL), when, 8);
	return mac(s, msg, sizeof(msg), out);
}

int endpoint_imds_token(const struct endpoint_secret *s, int64_t expires,
			char out[static ENDPOINT_IMDS_TOKEN_LEN + 1])
{
	unsigned char raw[8 + MAC_LEN];
	int r = imds_mac(s, (uint64_t)expires, raw, raw + 8);

	out[0] = '\0';
	if (!r)
		encode(raw, sizeof(raw), out);
	OPENSSL_cleanse(raw, sizeof(raw));
	return r;
}

int endpoint_imds_token_valid(const struct endpoint_secret *s,
			      const char *given, size_t len, int64_t now)
{
	unsigned char raw[8 + MAC_LEN], when[8], want[MAC_LEN];
	uint64_t t = 0;
	int ok;

	if (len != ENDPOINT_IMDS_TOKEN_LEN || decode_imds(given, raw))
		return 0;
	for (int i = 0; i < 8; i++)
		t = t << 8 | raw[i];
	ok = !imds_mac(s, t, when, want) &&
	     !CRYPTO_memcmp(want, raw + 8, MAC_LEN);
	OPENSSL_cleanse(want, sizeof(want));
	OPENSSL_cleanse(raw, sizeof(raw));
	return ok && t <= (uint64_t)INT64_MAX && (int64_t)t > now &&
	       (int64_t)t - now <= ENDPOINT_IMDS_TTL_MAX;
}

/* ---- where consumers find it --------------------------------------------- */

int endpoint_listen_for_every_sdk(const struct cfg_listen *l)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&l->addr;
	uint32_t a;

	if (l->addr.ss_family != AF_INET)
		return 0;
	a = ntohl(sin->sin_addr.s_addr);
	return a == 0x7f000001u || a == 0xa9feaa02u;	/* 127.0.0.1, 169.254.170.2 */
}

int endpoint_credentials_url(const struct cfg_endpoint *e, const char *name,
			     struct buf *out)
{
	const struct cfg_listen *pick = e->n_listen ? &e->listen[0] : NULL;

	for (size_t i = 0; i < e->n_listen; i++) {
		if (endpoint_listen_for_every_sdk(&e->listen[i])) {
			pick = &e->listen[i];
			break;
		}
	}
	if (!pick)
		return -ENOENT;
	return buf_printf(out, "http://%s/roles/%s/credentials", pick->text, name);
}
