/* Time formats STS and the tree use, and the replaceable clock. */
#include <stdint.h>

#include "check.h"
#include "clock.h"

static void parses_aws_and_moto_expirations(void)
{
	int64_t t = 0;

	CHECK(clock_parse_iso8601("2014-10-24T23:00:23Z", &t) == 0);
	CHECK(t == 1414191623);
	CHECK(clock_parse_iso8601("2026-11-22T11:01:58.460922Z", &t) == 0);
	CHECK(t == 1795345318);
	CHECK(clock_parse_iso8601("2026-11-22T11:01:58+00:00", &t) == 0);
	CHECK(t == 1795345318);
}

static void refuses_what_is_not_a_utc_time(void)
{
	int64_t t;
	const char *bad[] = {
		"", "2026-11-22", "2026-11-22T11:01:58", "2026-11-22T11:01:58+09:00",
		"2026-13-22T11:01:58Z", "2026-11-22T25:01:58Z", "2026-11-22T11:01:58.Z",
		"1.514869445E9", "2026-11-22T11:01:58Zjunk", "abcd-ef-ghTij:kl:mnZ",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(clock_parse_iso8601(bad[i], &t) == -1);
	CHECK(clock_parse_iso8601(NULL, &t) == -1);
}

static void formats_rfc3339(void)
{
	char s[21];

	clock_format_rfc3339(1795345318, s);
	CHECK_STR(s, "2026-11-22T11:01:58Z");
	clock_format_rfc3339(0, s);
	CHECK_STR(s, "1970-01-01T00:00:00Z");
}

static int64_t fake_wall(void) { return 1000; }
static int64_t fake_mono(void) { return 5; }

static void clock_can_be_replaced(void)
{
	clock_set_source(fake_wall, fake_mono);
	CHECK(clock_wall() == 1000);
	CHECK(clock_mono_ms() == 5);
	clock_set_source(NULL, NULL);
	CHECK(clock_wall() > 1700000000);
	CHECK(clock_mono_ms() > 0);
}

static const struct check_case cases[] = {
	CHECK_CASE(parses_aws_and_moto_expirations),
	CHECK_CASE(refuses_what_is_not_a_utc_time),
	CHECK_CASE(formats_rfc3339),
	CHECK_CASE(clock_can_be_replaced),
};

int main(void)
{
	return CHECK_RUN(cases);
}
