/*
 * The backend's one percent-encoder: what RFC 3986 keeps, what it
 * escapes, form bodies, and a buffer that would grow past its cap.
 */
#include <errno.h>
#include <string.h>

#include "buf.h"
#include "check.h"
#include "percent.h"

static char *encoded(const char *s, size_t n)
{
	struct buf b;

	buf_init(&b, 4096);
	if (percent_encode(&b, s, n))
		return NULL;
	return buf_steal(&b);
}

static void test_unreserved_kept(void)
{
	static const char kept[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				   "abcdefghijklmnopqrstuvwxyz0123456789-._~";
	char *e = encoded(kept, strlen(kept));

	CHECK_STR(e, kept);
	secret_free(e);
}

static void test_everything_else_escaped(void)
{
	static const struct {
		const char *in;
		size_t n;
		const char *out;
	} cases[] = {
		{ " ", 1, "%20" },
		{ "+", 1, "%2B" },
		{ "a b+c", 5, "a%20b%2Bc" },
		{ "//iam.googleapis.com/x", 22, "%2F%2Fiam.googleapis.com%2Fx" },
		{ "urn:ietf:params", 15, "urn%3Aietf%3Aparams" },
		{ "\n\r\"'&=%", 7, "%0A%0D%22%27%26%3D%25" },
		{ "\xc3\xa9", 2, "%C3%A9" },
		{ "a\0b", 3, "a%00b" },
		{ "\xff", 1, "%FF" },
		{ "", 0, "" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char *e = encoded(cases[i].in, cases[i].n);

		CHECK_STR(e, cases[i].out);
		secret_free(e);
	}
}

static void test_form_body(void)
{
	struct buf b;

	buf_init(&b, 4096);
	CHECK(!percent_form_add(&b, "grant_type", "client_credentials"));
	CHECK(!percent_form_add(&b, "scope", "https://a/.default b"));
	CHECK(!percent_form_add(&b, "empty", ""));
	CHECK_STR(b.data, "grant_type=client_credentials"
			  "&scope=https%3A%2F%2Fa%2F.default%20b&empty=");
	buf_free(&b);
}

/* Past the cap the append fails and the buffer is gone, not half full. */
static void test_cap(void)
{
	struct buf b;

	buf_init(&b, 8);
	CHECK(!percent_encode(&b, "abc", 3));
	CHECK(percent_encode(&b, "  ", 2) == -E2BIG);
	CHECK(b.data == NULL && b.len == 0);
	buf_free(&b);
}

int main(void)
{
	static const struct check_case cases[] = {
		CHECK_CASE(test_unreserved_kept),
		CHECK_CASE(test_everything_else_escaped),
		CHECK_CASE(test_form_body),
		CHECK_CASE(test_cap),
	};

	return CHECK_RUN(cases);
}
