#include "clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int64_t real_wall(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec;
}

static int64_t real_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t real_boot_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t clock_system_ms(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t (*wall_source)(void) = real_wall;
static int64_t (*mono_source)(void) = real_mono_ms;
static int64_t (*boot_source)(void) = real_boot_ms;

int64_t clock_wall(void)
{
	return wall_source();
}

int64_t clock_mono_ms(void)
{
	return mono_source();
}

int64_t clock_boot_ms(void)
{
	return boot_source();
}

void clock_set_source(int64_t (*wall)(void), int64_t (*mono_ms)(void))
{
	wall_source = wall ? wall : real_wall;
	mono_source = mono_ms ? mono_ms : real_mono_ms;
	boot_source = mono_ms ? mono_ms : real_boot_ms;
}

void clock_set_boot_source(int64_t (*boot_ms)(void))
{
	boot_source = boot_ms ? boot_ms : real_boot_ms;
}

void clock_format_rfc3339(int64_t t, char out[static 21])
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (!gmtime_r(&tt, &tm)) {
		memcpy(out, "1970-01-01T00:00:00Z", 21);
		return;
	}
	if (strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm) != 20)
		memcpy(out, "1970-01-01T00:00:00Z", 21);
}

static int digits(const char *s, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

int clock_parse_iso8601(const char *s, int64_t *t)
{
	int year, mon, day, hour, min, sec;
	struct tm tm;
	const char *p;
	time_t r;

	if (!s || strlen(s) < 20)
		return -1;
	if (digits(s, 4, &year) || s[4] != '-' || digits(s + 5, 2, &mon) ||
	    s[7] != '-' || digits(s + 8, 2, &day) || s[10] != 'T' ||
	    digits(s + 11, 2, &hour) || s[13] != ':' ||
	    digits(s + 14, 2, &min) || s[16] != ':' || digits(s + 17, 2, &sec))
		return -1;
	p = s + 19;
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return -1;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (strcmp(p, "Z") != 0 && strcmp(p, "+00:00") != 0)
		return -1;
	if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 ||
	    min > 59 || sec > 60)
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = year - 1900;
	tm.tm_mon = mon - 1;
	tm.tm_mday = day;
	tm.tm_hour = hour;
	tm.tm_min = min;
	tm.tm_sec = sec;
	r = timegm(&tm);
	if (r == (time_t)-1)
		return -1;
	*t = (int64_t)r;
	return 0;
}

struct timespec clock_deadline_ms(int64_t ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	return ts;
}
