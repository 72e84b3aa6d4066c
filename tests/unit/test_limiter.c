/*
 * The daemon-wide limiter with made-up times (milliseconds): the bucket
 * spaces requests at the configured rate and its wait times are right,
 * the in-flight cap holds, throttling halves the rate at most once a
 * second (and again each second it goes on), and recovery brings it back
 * to the configured rate or, with none configured, lifts the limit.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "compiler.h"
#include "limiter.h"

/* Far from 0, which the limiter may take for "never". */
#define T0 ((int64_t)1000000)

static int near(double a, double b)
{
	return fabs(a - b) < 1e-9 * (fabs(b) > 1 ? fabs(b) : 1);
}

/* Starts and at once ends a request if the limiter allows it at t. */
static int64_t try_start(struct limiter *l, int64_t t)
{
	int64_t w = limiter_acquire(l, t);

	if (w == 0)
		limiter_release(l, t, 0);
	return w;
}

static void unlimited_never_waits(void)
{
	struct limiter l;

	limiter_init(&l, 0, 0, T0);
	CHECK(limiter_rate(&l, T0) == 0);
	for (int i = 0; i < 10000; i++)
		CHECK(limiter_acquire(&l, T0) == 0);
	CHECK(l.inflight == 10000);
	for (int i = 0; i < 10000; i++)
		limiter_release(&l, T0, 0);
	CHECK(l.inflight == 0);
	/* Releasing more than was started does not wrap. */
	limiter_release(&l, T0, 0);
	CHECK(l.inflight == 0);
}

/* One token to start with, then one every 1000 / rate ms; the wait
 * returned is enough and not much more. */
static void bucket_spacing(void)
{
	struct limiter l;
	int64_t w, last = -1, t;
	int started = 0;

	limiter_init(&l, 10, 0, T0);
	CHECK(limiter_rate(&l, T0) == 10);
	CHECK(try_start(&l, T0) == 0);		/* the bucket starts full */
	w = limiter_acquire(&l, T0);
	CHECK(w >= 100 && w <= 101);
	w = limiter_acquire(&l, T0 + 50);
	CHECK(w >= 50 && w <= 51);
	CHECK(try_start(&l, T0 + 99) > 0);
	CHECK(try_start(&l, T0 + 100) == 0);

	/* Every millisecond for ten seconds: one start per 100 ms. */
	limiter_init(&l, 10, 0, T0);
	for (t = T0; t <= T0 + 10000; t++) {
		if (try_start(&l, t) == 0) {
			if (last >= 0)
				CHECK(t - last >= 100);
			last = t;
			started++;
		}
	}
	CHECK(started == 101);

	/* Sleeping exactly the wait returned always succeeds. */
	limiter_init(&l, 3, 0, T0);
	t = T0;
	started = 0;
	for (int i = 0; i < 300; i++) {
		w = try_start(&l, t);
		if (w == 0) {
			started++;
			continue;
		}
		CHECK(w > 0 && w <= 1000 / 3 + 1);
		t += w;
		CHECK(try_start(&l, t) == 0);
		started++;
	}
	CHECK(started == 300);
	/* 300 starts at 3 per second take about 100 s, never less. */
	CHECK(t - T0 >= 299 * 1000 / 3);
	CHECK(t - T0 <= 299 * (1000 / 3 + 1));

	/* A long idle time fills the bucket to one and a half, not more:
	 * two starts half an interval apart, then the rate. */
	limiter_init(&l, 10, 0, T0);
	CHECK(try_start(&l, T0 + 100000) == 0);
	CHECK(try_start(&l, T0 + 100000) > 0);
	CHECK(try_start(&l, T0 + 100049) > 0);
	CHECK(try_start(&l, T0 + 100050) == 0);
	CHECK(try_start(&l, T0 + 100149) > 0);
	CHECK(try_start(&l, T0 + 100150) == 0);
}

/* What a worker sees: it sleeps the wait it was given, wakes up late by
 * 0 to `late_ms`, and starts.  Returns the starts in `seconds`; *peak is
 * the most starts in any one-second window. */
static int late_worker(double rate, int64_t late_ms, int seconds, int *peak)
{
	struct limiter l;
	static int64_t starts[200000];
	int64_t t = T0, w;
	unsigned seed = 12345;
	int n = 0, lo = 0;

	limiter_init(&l, rate, 0, T0);
	*peak = 0;
	while (t < T0 + seconds * 1000 && n < (int)ARRAY_SIZE(starts)) {
		w = try_start(&l, t);
		if (w == 0) {
			starts[n++] = t;
			while (starts[n - 1] - starts[lo] >= 1000)
				lo++;
			if (n - lo > *peak)
				*peak = n - lo;
			continue;
		}
		seed = seed * 1103515245 + 12345;
		t += w + (late_ms ? (int64_t)((seed >> 16) % (unsigned)(late_ms + 1)) : 0);
	}
	return n;
}

/* The configured rate is what the endpoint gets, at any rate, however
 * late a worker wakes up (within half an interval, or 2 ms), and no
 * second sees more than rate + 1 starts (rate + rate / 500 above 250 per
 * second).  A bucket of exactly one request lost what a late wake-up
 * earned: with waits rounded up to the next millisecond plus one it gave
 * 166 of 200 per second, and at most 500 per second at any rate above. */
static void late_wakeups_keep_the_rate(void)
{
	static const struct {
		double rate;
		int64_t late_ms;
	} c[] = {
		{ 10, 0 }, { 10, 40 }, { 200, 0 }, { 200, 2 }, { 1000, 0 },
		{ 1000, 2 }, { 5000, 1 }, { 20000, 1 },
	};

	for (size_t i = 0; i < ARRAY_SIZE(c); i++) {
		int peak, n = late_worker(c[i].rate, c[i].late_ms, 10, &peak);
		double bound = c[i].rate <= 250 ? c[i].rate + 1 :
			       c[i].rate * 1.002 + 1;

		if (n < 10 * c[i].rate * 0.99 || n > 10 * c[i].rate + 2 ||
		    peak > bound) {
			fprintf(stderr, "    rate %g, up to %lld ms late: %d starts in 10 s, "
				"peak %d in a second\n", c[i].rate,
				(long long)c[i].late_ms, n, peak);
			CHECK(!"the configured rate, never more");
		}
	}
}

static void inflight_cap(void)
{
	struct limiter l;

	limiter_init(&l, 0, 2, T0);
	CHECK(limiter_acquire(&l, T0) == 0);
	CHECK(limiter_acquire(&l, T0) == 0);
	CHECK(limiter_acquire(&l, T0) == -1);
	CHECK(limiter_acquire(&l, T0 + 60000) == -1);	/* time does not help */
	limiter_release(&l, T0 + 1, 0);
	CHECK(limiter_acquire(&l, T0 + 1) == 0);
	CHECK(limiter_acquire(&l, T0 + 1) == -1);
	CHECK(l.inflight == 2);

	/* With a rate too: a request refused for the cap takes no token. */
	limiter_init(&l, 1, 1, T0);
	CHECK(limiter_acquire(&l, T0) == 0);
	CHECK(limiter_acquire(&l, T0 + 5000) == -1);
	limiter_release(&l, T0 + 5000, 0);
	CHECK(limiter_acquire(&l, T0 + 5000) == 0);
	limiter_release(&l, T0 + 5000, 0);
	CHECK(limiter_acquire(&l, T0 + 5000) > 0);	/* now the rate */

	/* A reload changes the bounds and keeps what is in flight. */
	limiter_init(&l, 0, 1, T0);
	CHECK(limiter_acquire(&l, T0) == 0);
	limiter_configure(&l, 0, 3, T0);
	CHECK(l.inflight == 1);
	CHECK(limiter_acquire(&l, T0) == 0);
	CHECK(limiter_acquire(&l, T0) == 0);
	CHECK(limiter_acquire(&l, T0) == -1);
	limiter_configure(&l, 0, 1, T0);
	limiter_release(&l, T0, 0);
	limiter_release(&l, T0, 0);
	CHECK(limiter_acquire(&l, T0) == -1);	/* still one in flight */
	limiter_release(&l, T0, 0);
	CHECK(limiter_acquire(&l, T0) == 0);
}

/* Throttled answers to requests sent together are one signal: the rate
 * halves once.  Throttling that goes on halves it again each second,
 * down to LIMITER_MIN_RATE. */
static void throttle_halves_at_most_once_a_second(void)
{
	static const struct {
		int64_t at;
		double rate;
	} t[] = {
		{ 0, 5 }, { 10, 5 }, { 500, 5 }, { 999, 5 },
		{ 1000, 2.5 }, { 1500, 2.5 }, { 1999, 2.5 },
		{ 2000, 1.25 }, { 2500, 1.25 },
		{ 3000, LIMITER_MIN_RATE }, { 3500, LIMITER_MIN_RATE },
		{ 4000, LIMITER_MIN_RATE }, { 9000, LIMITER_MIN_RATE },
	};
	struct limiter l;

	limiter_init(&l, 10, 0, T0);
	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		l.inflight = 1;
		limiter_release(&l, T0 + t[i].at, 1);
		if (!near(limiter_rate(&l, T0 + t[i].at), t[i].rate)) {
			fprintf(stderr, "    at +%lld ms: rate %g, want %g\n",
				(long long)t[i].at,
				limiter_rate(&l, T0 + t[i].at), t[i].rate);
			CHECK(!"rate after throttling");
		}
	}
	CHECK(l.throttle_events == ARRAY_SIZE(t));
	CHECK(l.inflight == 0);

	/* After throttling the bucket is empty: the next start waits a
	 * full interval at the new rate. */
	limiter_init(&l, 10, 0, T0);
	CHECK(limiter_acquire(&l, T0) == 0);
	limiter_release(&l, T0, 1);
	CHECK(near(limiter_rate(&l, T0), 5));
	{
		int64_t w = limiter_acquire(&l, T0);

		CHECK(w >= 200 && w <= 201);
	}
}

/* A tenth more per second without throttling, back to the configured
 * rate and never beyond it. */
static void recovery_to_the_configured_rate(void)
{
	struct limiter l;
	double prev;

	limiter_init(&l, 10, 0, T0);
	CHECK(limiter_acquire(&l, T0) == 0);
	limiter_release(&l, T0, 1);
	CHECK(near(limiter_rate(&l, T0), 5));
	/* Nothing within the first second. */
	CHECK(near(limiter_rate(&l, T0 + 999), 5));
	CHECK(near(limiter_rate(&l, T0 + 1000), 5.5));
	CHECK(near(limiter_rate(&l, T0 + 2000), 6.05));
	prev = 5;
	for (int64_t s = 1; s <= 20; s++) {
		double r = limiter_rate(&l, T0 + s * 1000);

		CHECK(r >= prev && r <= 10);
		prev = r;
	}
	CHECK(near(limiter_rate(&l, T0 + 7000), 5 * pow(1.1, 7)));
	CHECK(near(limiter_rate(&l, T0 + 8000), 10));
	/* Asking the rate changes nothing: requests see the same. */
	for (int64_t t = T0 + 1000; t <= T0 + 12000; t += 1000) {
		double asked = limiter_rate(&l, t);

		try_start(&l, t);
		CHECK(near(l.rate, asked));
	}
	CHECK(near(limiter_rate(&l, T0 + 12000), 10));
	CHECK(l.throttled_ms == 0);
	/* Recovered: the bucket spaces at the configured rate again (after
	 * the half request an idle bucket holds beyond the first). */
	{
		int64_t t = T0 + 20000;

		CHECK(try_start(&l, t) == 0);
		CHECK(try_start(&l, t + 49) > 0);
		CHECK(try_start(&l, t + 50) == 0);
		CHECK(try_start(&l, t + 149) > 0);
		CHECK(try_start(&l, t + 150) == 0);
	}

	/* Throttling during recovery starts it again from the new half. */
	limiter_init(&l, 10, 0, T0);
	l.inflight = 1;
	limiter_release(&l, T0, 1);				/* 5 */
	CHECK(try_start(&l, T0 + 3000) == 0);			/* 6.655 */
	l.inflight = 1;
	limiter_release(&l, T0 + 3000, 1);
	CHECK(near(limiter_rate(&l, T0 + 3000), 5 * pow(1.1, 3) / 2));
	CHECK(near(limiter_rate(&l, T0 + 3999), 5 * pow(1.1, 3) / 2));
	CHECK(near(limiter_rate(&l, T0 + 4000), 5 * pow(1.1, 3) / 2 * 1.1));
}

/* With no configured rate, throttling starts from the rate actually
 * sent at, and recovery lifts the limit altogether. */
static void recovery_lifts_an_unconfigured_limit(void)
{
	struct limiter l;
	int64_t t = T0, w;
	double observed;
	int waited = 0;

	limiter_init(&l, 0, 0, T0);
	/* Five requests a second for half a minute. */
	for (; t < T0 + 30000; t += 200)
		CHECK(try_start(&l, t) == 0);
	observed = l.observed;
	CHECK(observed > 4 && observed < 5.5);
	CHECK(limiter_acquire(&l, t) == 0);
	limiter_release(&l, t, 1);
	CHECK(l.rate > 0);
	CHECK(near(limiter_rate(&l, t), l.rate));
	CHECK(l.rate >= LIMITER_MIN_RATE && l.rate <= observed);
	CHECK(l.throttle_events == 1);

	/* Limited now: back-to-back starts wait. */
	w = limiter_acquire(&l, t);
	CHECK(w > 0);

	/* Two requests a second from here on, no more throttling. */
	for (int64_t end = t + 120000; t < end; t += 500) {
		if (try_start(&l, t) != 0)
			waited++;
	}
	CHECK(limiter_rate(&l, t) == 0);
	CHECK(l.throttled_ms == 0);
	CHECK(waited < 20);
	for (int i = 0; i < 1000; i++)
		CHECK(limiter_acquire(&l, t) == 0);

	/* Immediately after a throttled answer, even a daemon that never
	 * sent anything gets a rate (the floor). */
	limiter_init(&l, 0, 0, T0);
	l.inflight = 1;
	limiter_release(&l, T0, 1);
	CHECK(near(limiter_rate(&l, T0), LIMITER_MIN_RATE));
}

/* A reload during throttling: a lower configured rate takes over at
 * once, a higher one is reached by recovery. */
static void reload_while_throttled(void)
{
	struct limiter l;

	limiter_init(&l, 10, 0, T0);
	l.inflight = 1;
	limiter_release(&l, T0, 1);			/* 5 */
	limiter_configure(&l, 20, 0, T0 + 10);
	CHECK(near(limiter_rate(&l, T0 + 10), 5));
	limiter_configure(&l, 2, 0, T0 + 20);
	CHECK(near(limiter_rate(&l, T0 + 20), 2));
	CHECK(near(limiter_rate(&l, T0 + 60000), 2));

	/* Not throttled: the new rate at once. */
	limiter_init(&l, 10, 0, T0);
	limiter_configure(&l, 4, 0, T0);
	CHECK(near(limiter_rate(&l, T0), 4));
	limiter_configure(&l, 0, 0, T0);
	CHECK(limiter_rate(&l, T0) == 0);
}

static const struct check_case cases[] = {
	CHECK_CASE(unlimited_never_waits),
	CHECK_CASE(bucket_spacing),
	CHECK_CASE(late_wakeups_keep_the_rate),
	CHECK_CASE(inflight_cap),
	CHECK_CASE(throttle_halves_at_most_once_a_second),
	CHECK_CASE(recovery_to_the_configured_rate),
	CHECK_CASE(recovery_lifts_an_unconfigured_limit),
	CHECK_CASE(reload_while_throttled),
};

int main(void)
{
	return CHECK_RUN(cases);
}
