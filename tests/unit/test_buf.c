/* Capped buffers: growth, the cap, and freeing on failure. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

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

static void percent_encoding_keeps_only_unreserved(void)
{
	struct buf b;
	const char in[] = "Az09-._~ /+=&%\xff\x01";

	buf_init(&b, 1000);
	CHECK(buf_append_pct(&b, in, sizeof(in) - 1) == 0);
	CHECK_STR(b.data, "Az09-._~%20%2F%2B%3D%26%25%FF%01");
	CHECK(buf_append_pct(&b, "", 0) == 0);
	CHECK(b.len == strlen("Az09-._~%20%2F%2B%3D%26%25%FF%01"));
	buf_free(&b);
	buf_init(&b, 5);
	CHECK(buf_append_pct(&b, "a b ", 4) == -E2BIG);	/* a%20b%20: 8 > 5 */
	CHECK(b.data == NULL);
}

static const struct check_case cases[] = {
	CHECK_CASE(percent_encoding_keeps_only_unreserved),
	CHECK_CASE(grows_and_terminates),
	CHECK_CASE(cap_is_enforced_and_frees),
	CHECK_CASE(steal_hands_over),
};

int main(void)
{
	return CHECK_RUN(cases);
}
