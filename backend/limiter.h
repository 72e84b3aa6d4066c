/*
 * The daemon-wide bound on token-endpoint requests (max_sts_rate,
 * max_sts_inflight): one token bucket and one count of requests in flight,
 * shared by every role of every cloud.  It only answers "may a request
 * start now, and if not, when"; who goes first is the engine's queue.
 *
 * Throttling is not failure: when an endpoint says slow down (HTTP 429 or
 * 503, Throttling...), the effective rate is halved (a daemon with no
 * configured rate starts from the rate it was actually sending at), and
 * it recovers by a tenth per second without throttling until it is back
 * at the configured rate (or, with none configured, until it no longer
 * limits anything).  Times are milliseconds on the caller's clock.  Not
 * thread-safe: the caller locks.
 */
#ifndef CREDFS_LIMITER_H
#define CREDFS_LIMITER_H

#include <stdint.h>

#define LIMITER_MIN_RATE 1.0		/* requests per second, at most throttled */

struct limiter {
	double max_rate;		/* configured; 0: none */
	unsigned max_inflight;		/* configured; 0: none */
	double rate;			/* in force; 0: none */
	double tokens;			/* bucket content: 1 to start, at most
					 * 1.5, or 1 + rate / 500 above 250/s
					 * (limiter.c, capacity) */
	int64_t refilled_ms;		/* when tokens was last brought up to date */
	unsigned inflight;
	/* Throttling back-off. */
	int64_t throttled_ms;		/* last throttled answer, 0: never */
	int64_t halved_ms;		/* last time the rate was halved, 0: never */
	int64_t recovered_ms;		/* last recovery step */
	double observed;		/* requests per second recently started */
	int64_t observed_ms;
	unsigned long throttle_events;
};

void limiter_init(struct limiter *l, double max_rate, unsigned max_inflight,
		  int64_t now_ms);
/* Changes the configured bounds (a reload), keeping what is in flight. */
void limiter_configure(struct limiter *l, double max_rate,
		       unsigned max_inflight, int64_t now_ms);
/* Starts a request if the bounds allow it now: returns 0 (the request is
 * counted in flight), or the milliseconds until the rate would allow one,
 * or -1 when only the end of a request in flight can make room. */
int64_t limiter_acquire(struct limiter *l, int64_t now_ms);
/* A request ended; throttled: the endpoint said slow down. */
void limiter_release(struct limiter *l, int64_t now_ms, int throttled);
/* The rate in force (0: none), for status and metrics. */
double limiter_rate(const struct limiter *l, int64_t now_ms);

#endif
