/* Capped buffers: growth, the cap, and freeing on failure. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "buf.h"
#include "check.h"

static void grows_and_terminates(void)
{
	struct buf b;

	buf_init(&b, 1 << 20);
	for (int i = 0; i < 1000; i++)
		CHECK(buf_append_str(&b, "abc") == 0);
	CHECK(b.len == 3000);
	CHECK(b.data[3000] == '\0');
	CHECK(buf_printf(&b, "%d-%s", 42, "x") == 0);
	CHECK_STR(b.data + 3000, "42-x");
	buf_free(&b);
	CHECK(b.data == NULL && b.len == 0);
}

static void cap_is_enforced_and_frees(void)
{
	struct buf b;

	buf_init(&b, 10);
	CHECK(buf_append(&b, "0123456789", 10) == 0);
	CHECK(buf_append(&b, "x", 1) == -E2BIG);
	CHECK(b.data == NULL && b.len == 0);
	CHECK(buf_printf(&b, "%s", "01234567890") == -E2BIG);
	CHECK(b.data == NULL);
}

static void steal_hands_over(void)
{
	struct buf b;
	char *s;

	buf_init(&b, 100);
	s = buf_steal(&b);
	CHECK_STR(s, "");
	free(s);
	CHECK(buf_append_str(&b, "secret") == 0);
	s = buf_steal(&b);
	CHECK_STR(s, "secret");
	CHECK(b.data == NULL);
	secret_free(s);
	secret_free(NULL);
}

/* One ECDSA P-256 signature with key; 0 when it worked. */
static int ecdsa_signs(EVP_PKEY *key)
{
	unsigned char sig[128];
	size_t len = sizeof(sig);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok = ctx && EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) == 1 &&
		 EVP_DigestSign(ctx, sig, &len, (const unsigned char *)"abc", 3) == 1;

	EVP_MD_CTX_free(ctx);
	return ok ? 0 : -1;
}

/* However many secrets are kept (a token and credentials for every role
 * in use), the secure heap keeps room for OpenSSL: an ES256 signature
 * takes its temporaries from there and failed once the daemon's secrets
 * had filled it (after about 3 300 roles in use with the daemon's 1 MiB). */
static void secure_heap_keeps_room_for_signing(void)
{
	enum { SIZE = 64 * 1024, N = 2000 };
	/* The sizes of what a role keeps: an access key id, a secret key,
	 * an assumed role ARN, a session token, a token. */
	static const size_t sizes[] = { 20, 40, 90, 400, 900 };
	static char *kept[N];
	char value[901];
	EVP_PKEY *key;
	int in_heap = 0;

	CHECK(secret_heap_init(SIZE) != 0);
	key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	CHECK(key != NULL);
	memset(value, 'k', sizeof(value) - 1);
	value[sizeof(value) - 1] = '\0';
	for (int i = 0; i < N; i++) {
		kept[i] = secret_strdup(value + sizeof(value) - 1 -
					sizes[i % ARRAY_SIZE(sizes)]);
		CHECK(kept[i] != NULL);
		in_heap += kept[i] && CRYPTO_secure_allocated(kept[i]);
	}
	/* The first ones went to the secure heap, the rest elsewhere. */
	CHECK(in_heap > 0 && in_heap < N);
	CHECK(CRYPTO_secure_used() <= SIZE - SIZE / 8);
	for (int i = 0; i < 8; i++)
		CHECK(key && ecdsa_signs(key) == 0);
	for (int i = 0; i < N; i++)
		secret_free(kept[i]);
	EVP_PKEY_free(key);
}

static const struct check_case cases[] = {
	CHECK_CASE(grows_and_terminates),
	CHECK_CASE(cap_is_enforced_and_frees),
	CHECK_CASE(steal_hands_over),
	CHECK_CASE(secure_heap_keeps_room_for_signing),
};

int main(void)
{
	return CHECK_RUN(cases);
}
