/*
 * The whole-request deadline.  libmicrohttpd's own timeout counts
 * inactivity only, so a client that sends one byte a second would hold a
 * connection forever.  Each connection is listed from the moment it is
 * accepted, and again from the moment its answer is done, until its next
 * request has arrived whole; the list is therefore in deadline order, and
 * a sweeper shuts down (shutdown(2), which libmicrohttpd notices and
 * closes) whatever has been listed for longer than
 * ENDPOINT_REQUEST_DEADLINE_MS.  Idle keep-alive connections are cut the
 * same way, after the same time.
 */
#include "endpoint_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "clock.h"
#include "log.h"

/* Appends c (not listed) to the end of the list: the newest.  The
 * sweeper sleeps for good while the list is empty: it is woken for the
 * first. */
static void list_locked(struct endpoint *ep, struct conn *c)
{
	c->prev = ep->last;
	c->next = NULL;
	if (ep->last)
		ep->last->next = c;
	else {
		ep->first = c;
		pthread_cond_signal(&ep->conns_cond);
	}
	ep->last = c;
	c->listed = 1;
}

static void unlist_locked(struct endpoint *ep, struct conn *c)
{
	if (!c->listed)
		return;
	if (c->prev)
		c->prev->next = c->next;
	else
		ep->first = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		ep->last = c->prev;
	c->prev = c->next = NULL;
	c->listed = 0;
}

static struct conn *conn_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *i =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return i ? i->socket_context : NULL;
}

void conns_notify(void *cls, struct MHD_Connection *c, void **socket_context,
		  enum MHD_ConnectionNotificationCode toe)
{
	struct endpoint *ep = cls;
	struct conn *conn = *socket_context;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *i =
			MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);

		conn = calloc(1, sizeof(*conn));
		if (!conn || !i) {
			/* Untracked, it could outlive its deadline: refuse it. */
			if (i)
				shutdown(i->connect_fd, SHUT_RDWR);
			free(conn);
			return;
		}
		conn->fd = i->connect_fd;
		conn->since_ms = clock_mono_ms();
		pthread_mutex_lock(&ep->conns_lock);
		list_locked(ep, conn);
		ep->n_conns++;
		pthread_mutex_unlock(&ep->conns_lock);
		*socket_context = conn;
		endpoint_stats_connection(1);
		return;
	}
	if (!conn)
		return;
	pthread_mutex_lock(&ep->conns_lock);
	unlist_locked(ep, conn);
	ep->n_conns--;
	pthread_mutex_unlock(&ep->conns_lock);
	free(conn);
	*socket_context = NULL;
	endpoint_stats_connection(-1);
}

void conns_busy(struct endpoint *ep, struct MHD_Connection *c)
{
	struct conn *conn = conn_of(c);

	if (!conn)
		return;
	pthread_mutex_lock(&ep->conns_lock);
	unlist_locked(ep, conn);
	pthread_mutex_unlock(&ep->conns_lock);
}

void conns_idle(struct endpoint *ep, struct MHD_Connection *c)
{
	struct conn *conn = conn_of(c);

	if (!conn)
		return;
	pthread_mutex_lock(&ep->conns_lock);
	unlist_locked(ep, conn);
	conn->since_ms = clock_mono_ms();
	conn->answered = 1;
	list_locked(ep, conn);
	pthread_mutex_unlock(&ep->conns_lock);
}

/* Whether every connection is listed after an answer.  Those not listed
 * have a request being answered; those listed unanswered were accepted
 * and their first request has not arrived whole. */
static int settled_locked(const struct endpoint *ep)
{
	size_t between = 0;

	for (const struct conn *c = ep->first; c; c = c->next) {
		if (!c->answered)
			return 0;
		between++;
	}
	return between == ep->n_conns;
}

void conns_settle(struct endpoint *ep, int64_t timeout_ms)
{
	int64_t deadline = clock_mono_ms() + timeout_ms;

	for (;;) {
		int settled;

		pthread_mutex_lock(&ep->conns_lock);
		settled = settled_locked(ep);
		pthread_mutex_unlock(&ep->conns_lock);
		if (settled || clock_mono_ms() >= deadline)
			return;
		nanosleep(&(struct timespec){ 0, 5 * 1000 * 1000 }, NULL);
	}
}

/* Cuts every listed connection whose deadline has passed: the oldest
 * are first, so it stops at the first that still has time. */
static void sweep_locked(struct endpoint *ep, int64_t now)
{
	while (ep->first &&
	       now - ep->first->since_ms >= ENDPOINT_REQUEST_DEADLINE_MS) {
		struct conn *c = ep->first;

		shutdown(c->fd, SHUT_RDWR);
		unlist_locked(ep, c);
		endpoint_stats_deadline_cut();
	}
}

static void *sweeper_main(void *arg)
{
	struct endpoint *ep = arg;

	pthread_mutex_lock(&ep->conns_lock);
	while (!ep->sweeper_stop) {
		int64_t now = clock_mono_ms(), wait_ms;
		struct timespec ts;

		sweep_locked(ep, now);
		if (!ep->first) {
			/* Nothing to time: an idle daemon does not wake. */
			pthread_cond_wait(&ep->conns_cond, &ep->conns_lock);
			continue;
		}
		/* The oldest is first: sleep until its deadline. */
		wait_ms = ep->first->since_ms + ENDPOINT_REQUEST_DEADLINE_MS - now;
		ts = clock_deadline_ms(wait_ms > 0 ? wait_ms : 1);
		pthread_cond_timedwait(&ep->conns_cond, &ep->conns_lock, &ts);
	}
	pthread_mutex_unlock(&ep->conns_lock);
	return NULL;
}

int conns_start(struct endpoint *ep)
{
	pthread_condattr_t ca;
	int r;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	r = pthread_cond_init(&ep->conns_cond, &ca);
	pthread_condattr_destroy(&ca);
	if (r)
		return -r;
	r = pthread_create(&ep->sweeper, NULL, sweeper_main, ep);
	if (r) {
		pthread_cond_destroy(&ep->conns_cond);
		return -r;
	}
	ep->has_sweeper = 1;
	return 0;
}

void conns_stop(struct endpoint *ep)
{
	if (!ep->has_sweeper)
		return;
	pthread_mutex_lock(&ep->conns_lock);
	ep->sweeper_stop = 1;
	pthread_cond_signal(&ep->conns_cond);
	pthread_mutex_unlock(&ep->conns_lock);
	pthread_join(ep->sweeper, NULL);
	pthread_cond_destroy(&ep->conns_cond);
	ep->has_sweeper = 0;
}
