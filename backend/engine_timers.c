/*
 * The timer thread.  Deadlines are on CLOCK_BOOTTIME, which keeps counting
 * while the machine is suspended, so credentials that expired during a
 * suspend are known to be expired at resume.  The thread sleeps in poll()
 * on three descriptors:
 *   - a timerfd on CLOCK_BOOTTIME set to the earliest deadline (glibc's
 *     condition variables refuse CLOCK_BOOTTIME, hence a timerfd);
 *   - an eventfd written when the earliest deadline moves;
 *   - a CLOCK_REALTIME timerfd with TFD_TIMER_CANCEL_ON_SET, which the
 *     kernel cancels whenever the wall clock is set (and when the offset
 *     between the wall clock and the monotonic clock changes, as at a
 *     resume).
 * When the wall clock steps or the machine resumed (the distance between
 * CLOCK_BOOTTIME and CLOCK_MONOTONIC grew), every role holding anything
 * is reported changed: the faces drop every cached copy, because the
 * kernel's own cache timeouts count jiffies, which stand still in a
 * suspend and know nothing of the wall clock.
 */
#include "engine_internal.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"

#define FIRE_BATCH 64
#define SUSPEND_NOTICE_MS 2000

static void wake_timer_thread(struct engine *e)
{
	uint64_t one = 1;

	if (e->wake_fd >= 0 && write(e->wake_fd, &one, sizeof(one)) < 0) {
		/* The counter is full: the thread is awake anyway. */
	}
}

void timers_arm_locked(struct role *r, enum role_timer_kind k, int64_t at)
{
	struct engine *e = r->engine;
	int top;

	if (!e || !r->use)
		return;
	pthread_mutex_lock(&e->sched_lock);
	if (heap_set(&e->timers, &r->use->timers[k].node, at))
		log_error("role %s: out of memory arming a timer", r->name);
	top = heap_top(&e->timers) == &r->use->timers[k].node;
	pthread_mutex_unlock(&e->sched_lock);
	if (top)
		wake_timer_thread(e);
}

void timers_cancel_locked(struct role *r, enum role_timer_kind k)
{
	struct engine *e = r->engine;

	if (!e || !r->use || !heap_contains(&r->use->timers[k].node))
		return;
	pthread_mutex_lock(&e->sched_lock);
	heap_remove(&e->timers, &r->use->timers[k].node);
	pthread_mutex_unlock(&e->sched_lock);
}

void timers_fire(struct engine *e, struct role *r, enum role_timer_kind k)
{
	unsigned what = 0;
	unsigned long seq;
	int ended;

	(void)e;
	pthread_mutex_lock(&r->lock);
	seq = r->use->renewal_seq;
	switch (k) {
	case RT_REFRESH:
		what = ENGINE_CHANGED_CREDS;
		break;
	case RT_EXPIRY:
		what = ENGINE_CHANGED_CREDS | ENGINE_CHANGED_STATUS;
		break;
	case RT_TOKEN:
		what = ENGINE_CHANGED_TOKEN;
		break;
	case RT_JOB:
		renew_timer_locked(r);
		what = ENGINE_CHANGED_STATUS;
		break;
	case RT_COUNT:
		break;
	}
	ended = r->use->renewal_seq != seq;	/* the token took too long */
	pthread_mutex_unlock(&r->lock);
	if (ended)
		renew_release_dependents(r);
	role_tell(r, what);
}

/* Runs what is due; returns the earliest deadline left (INT64_MAX: none). */
static int64_t fire_due(struct engine *e)
{
	struct role_timer *due[FIRE_BATCH];
	struct role *roles[FIRE_BATCH];
	size_t n;
	int64_t next;

	do {
		int64_t now = clock_boot_ms();
		struct heap_node *node;

		n = 0;
		pthread_mutex_lock(&e->sched_lock);
		while (n < FIRE_BATCH && (node = heap_pop_upto(&e->timers, now))) {
			due[n] = (struct role_timer *)node;
			roles[n] = role_ref(due[n]->role);
			n++;
		}
		node = heap_top(&e->timers);
		next = node ? node->key : INT64_MAX;
		pthread_mutex_unlock(&e->sched_lock);
		for (size_t i = 0; i < n; i++) {
			timers_fire(e, roles[i], due[i]->kind);
			role_unref(roles[i]);
		}
	} while (n == FIRE_BATCH);
	return next;
}

void engine_run_timers(struct engine *e)
{
	fire_due(e);
}

/* Every role holding something may now show what the kernel must not
 * keep: tell them all. */
static void tell_everyone(void *arg, struct role *r)
{
	int holding;

	(void)arg;
	pthread_mutex_lock(&r->lock);
	holding = r->current || (r->use && r->use->tok.current);
	pthread_mutex_unlock(&r->lock);
	if (holding)
		role_tell(r, ENGINE_CHANGED_CREDS | ENGINE_CHANGED_TOKEN |
			  ENGINE_CHANGED_STATUS);
}

static void arm_step_watch(struct engine *e)
{
	struct itimerspec its = {0};

	/* Far in the future: only the cancellation matters. */
	its.it_value.tv_sec = clock_system_ms(CLOCK_REALTIME) / 1000 + 10L * 365 * 86400;
	timerfd_settime(e->step_fd, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET,
			&its, NULL);
}

static void set_wakeup(struct engine *e, int64_t next)
{
	struct itimerspec its = {0};

	if (next != INT64_MAX) {
		/* clock_boot_ms() is CLOCK_BOOTTIME outside tests. */
		if (next < 1)
			next = 1;
		its.it_value.tv_sec = next / 1000;
		its.it_value.tv_nsec = (next % 1000) * 1000000L;
	}
	timerfd_settime(e->boot_fd, TFD_TIMER_ABSTIME, &its, NULL);
}

/* Handles the descriptors poll() found ready; returns 1 if the clock
 * stepped or the machine resumed. */
static int drain(struct engine *e, const struct pollfd *fds)
{
	uint64_t v;
	int jumped = 0;
	int64_t gap;

	if (fds[0].revents && read(e->wake_fd, &v, sizeof(v)) < 0) {
		/* Nothing to read: fine. */
	}
	if (fds[1].revents && read(e->boot_fd, &v, sizeof(v)) < 0) {
		/* EAGAIN after a re-arm: fine. */
	}
	if (fds[2].revents) {
		if (read(e->step_fd, &v, sizeof(v)) < 0 && errno == ECANCELED)
			jumped = 1;
		arm_step_watch(e);
	}
	gap = clock_system_ms(CLOCK_BOOTTIME) - clock_system_ms(CLOCK_MONOTONIC);
	if (gap - e->boot_minus_mono > SUSPEND_NOTICE_MS)
		jumped = 1;
	e->boot_minus_mono = gap;
	return jumped;
}

static void *timer_main(void *arg)
{
	struct engine *e = arg;
	struct pollfd fds[3] = {
		{ .fd = e->wake_fd, .events = POLLIN },
		{ .fd = e->boot_fd, .events = POLLIN },
		{ .fd = e->step_fd, .events = POLLIN },
	};

	for (;;) {
		int stop;

		set_wakeup(e, fire_due(e));
		pthread_mutex_lock(&e->sched_lock);
		stop = e->stopping;
		pthread_mutex_unlock(&e->sched_lock);
		if (stop)
			break;
		if (poll(fds, 3, -1) < 0 && errno != EINTR)
			break;
		if (drain(e, fds)) {
			log_info("the wall clock was set or the machine resumed: dropping every cached copy");
			engine_each_role(e, tell_everyone, NULL);
		}
	}
	return NULL;
}

int timers_start(struct engine *e)
{
	e->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	e->boot_fd = timerfd_create(CLOCK_BOOTTIME, TFD_CLOEXEC | TFD_NONBLOCK);
	e->step_fd = timerfd_create(CLOCK_REALTIME, TFD_CLOEXEC | TFD_NONBLOCK);
	if (e->wake_fd < 0 || e->boot_fd < 0 || e->step_fd < 0)
		goto fail;
	arm_step_watch(e);
	e->boot_minus_mono = clock_system_ms(CLOCK_BOOTTIME) - clock_system_ms(CLOCK_MONOTONIC);
	if (pthread_create(&e->timer_thread, NULL, timer_main, e))
		goto fail;
	e->timer_running = 1;
	return 0;
fail:
	timers_stop(e);
	return -1;
}

void timers_stop(struct engine *e)
{
	if (e->timer_running) {
		pthread_mutex_lock(&e->sched_lock);
		e->stopping = 1;
		pthread_mutex_unlock(&e->sched_lock);
		wake_timer_thread(e);
		pthread_join(e->timer_thread, NULL);
		e->timer_running = 0;
	}
	if (e->wake_fd >= 0)
		close(e->wake_fd);
	if (e->boot_fd >= 0)
		close(e->boot_fd);
	if (e->step_fd >= 0)
		close(e->step_fd);
	e->wake_fd = e->boot_fd = e->step_fd = -1;
}
