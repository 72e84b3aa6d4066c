#include "limiter.h"

#include <string.h>

#define RECOVERY_STEP_MS 1000
#define RECOVERY_FACTOR 1.1
/* With no configured rate, a throttling limit is lifted once recovery
 * takes it this far above what was being sent. */
#define UNLIMITED_LIFT 4.0
#define TOKEN_EPSILON 1e-9

void limiter_init(struct limiter *l, double max_rate, unsigned max_inflight,
		  int64_t now_ms)
{
	memset(l, 0, sizeof(*l));
	l->max_rate = max_rate;
	l->max_inflight = max_inflight;
	l->rate = max_rate;
	l->tokens = 1.0;
	l->refilled_ms = now_ms;
	l->observed_ms = now_ms;
}

/* How many requests the bucket holds at rate: one, plus what a request
 * that starts late earned meanwhile, so that a worker waking up late (a
 * timed wait oversleeps, the clock counts whole milliseconds) costs no
 * throughput.  The lateness forgiven is half an interval, and at least
 * 2 ms: up to 250 requests per second the bucket holds 1.5 and no
 * one-second window ever sees more than rate + 1 starts; above, the
 * bucket holds 1 + rate / 500 (0.2% of a second's worth more). */
static double capacity(double rate)
{
	double slack_ms = 500.0 / rate;

	if (slack_ms < 2.0)
		slack_ms = 2.0;
	return 1.0 + slack_ms * rate / 1000.0;
}

static void refill(struct limiter *l, int64_t now_ms)
{
	if (l->rate > 0 && now_ms > l->refilled_ms) {
		double cap = capacity(l->rate);

		l->tokens += (double)(now_ms - l->refilled_ms) * l->rate / 1000.0;
		if (l->tokens > cap)
			l->tokens = cap;
	}
	l->refilled_ms = now_ms;
}

void limiter_configure(struct limiter *l, double max_rate,
		       unsigned max_inflight, int64_t now_ms)
{
	refill(l, now_ms);	/* what was earned at the old rate stays earned */
	l->max_rate = max_rate;
	l->max_inflight = max_inflight;
	if (!l->throttled_ms || (max_rate > 0 && l->rate > max_rate) ||
	    (max_rate > 0 && l->rate == 0))
		l->rate = max_rate;
}

/* Recovery after throttling: a tenth more per quiet second. */
static void recover(struct limiter *l, int64_t now_ms)
{
	double ceiling;

	if (!l->throttled_ms)
		return;
	while (now_ms - l->recovered_ms >= RECOVERY_STEP_MS &&
	       now_ms - l->throttled_ms >= RECOVERY_STEP_MS) {
		l->recovered_ms += RECOVERY_STEP_MS;
		l->rate *= RECOVERY_FACTOR;
		ceiling = l->max_rate > 0 ? l->max_rate :
					    l->observed * UNLIMITED_LIFT;
		if (l->rate >= ceiling || (l->max_rate == 0 && l->rate > 1e6)) {
			l->rate = l->max_rate;
			l->throttled_ms = 0;
			return;
		}
	}
}

/* An exponentially weighted rate of request starts, for throttling a
 * daemon that has no configured rate. */
static void observe_start(struct limiter *l, int64_t now_ms)
{
	double dt = (double)(now_ms - l->observed_ms) / 1000.0;

	if (dt > 0) {
		double decay = dt >= 10.0 ? 0.0 : 1.0 - dt / 10.0;

		l->observed *= decay;
		l->observed_ms = now_ms;
	}
	l->observed += 0.1;	/* one start, over the 10 s window */
}

int64_t limiter_acquire(struct limiter *l, int64_t now_ms)
{
	recover(l, now_ms);
	if (l->max_inflight && l->inflight >= l->max_inflight)
		return -1;
	if (l->rate > 0) {
		refill(l, now_ms);
		/* (Rounding must not make a wait that was long enough fall
		 * short by a hair.) */
		if (l->tokens < 1.0 - TOKEN_EPSILON) {
			/* The clock counts whole milliseconds: waiting the
			 * rounded-up interval always finds the token. */
			double exact = (1.0 - l->tokens) * 1000.0 / l->rate;
			int64_t ms = (int64_t)exact;

			if ((double)ms < exact)
				ms++;
			return ms > 0 ? ms : 1;
		}
		l->tokens -= 1.0;
	}
	l->inflight++;
	observe_start(l, now_ms);
	return 0;
}

void limiter_release(struct limiter *l, int64_t now_ms, int throttled)
{
	if (l->inflight)
		l->inflight--;
	if (!throttled)
		return;
	l->throttle_events++;
	if (l->rate <= 0)
		l->rate = l->observed > 0 ? l->observed : 1.0;
	/* Halve at most once a second: a burst of throttled answers to
	 * requests that were sent together is one signal, not many.  The
	 * second counts from the last halving, not the last throttled
	 * answer, so throttling that goes on keeps halving. */
	if (!l->halved_ms || now_ms - l->halved_ms >= RECOVERY_STEP_MS) {
		l->rate /= 2.0;
		l->halved_ms = now_ms;
	}
	if (l->rate < LIMITER_MIN_RATE)
		l->rate = LIMITER_MIN_RATE;
	if (l->tokens > 0)
		l->tokens = 0;
	l->throttled_ms = now_ms;
	l->recovered_ms = now_ms;
	l->refilled_ms = now_ms;
}

double limiter_rate(const struct limiter *l, int64_t now_ms)
{
	struct limiter at = *l;

	/* The rate the next request would meet: recovery since the last
	 * request counts, though only a request applies it. */
	recover(&at, now_ms);
	return at.rate;
}
