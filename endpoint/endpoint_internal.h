/*
 * The parts of the HTTP face and the rules between them.
 *
 * Threads: one libmicrohttpd epoll thread per listen address (calls
 * on_request and the notifications; never waits on anything but short
 * locks), ENDPOINT_WORKERS workers (answer suspended requests; they may
 * wait on the engine up to a role's wait_timeout), one sweeper (cuts
 * connections past their deadline), and the daemon's thread that starts,
 * reloads and stops the face.
 *
 * Locking: gen_lock guards ep->gen (taken briefly per request); jobs_lock
 * the job queue and the stop flag; conns_lock the list of connections
 * waiting for a request.  None is taken while holding another, and none is
 * held across a call into the engine or libmicrohttpd, except that
 * jobs_push suspends a connection holding jobs_lock (so no worker resumes
 * what is not suspended yet), and the sweeper shuts sockets down holding
 * conns_lock (which is what keeps a
 * socket from being closed, and its number reused, under it: a connection
 * leaves the list, in its CLOSED notification, before libmicrohttpd
 * closes its socket).
 */
#ifndef CREDFS_ENDPOINT_INTERNAL_H
#define CREDFS_ENDPOINT_INTERNAL_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "endpoint.h"
#include "endpoint_stats.h"
#include "router.h"

/* A connection of a listener (libmicrohttpd's socket context). */
struct conn {
	struct conn *prev, *next;	/* in ep->conns while listed */
	int fd;
	int listed;			/* waiting for a request */
	int answered;			/* listed after an answer: between requests */
	int64_t since_ms;		/* monotonic: accepted or last answered */
};

/* One listen address and its libmicrohttpd daemon. */
struct listener {
	struct endpoint *ep;
	struct cfg_listen addr;
	struct MHD_Daemon *daemon;
	atomic_uint suspended;		/* its requests handed to workers */
	atomic_int draining;		/* closing: hand nothing more over */
	int quiesced_fd;		/* accepting no more: the listen socket, else -1 */
};

enum request_state {
	REQ_NEW,
	REQ_QUEUED,			/* suspended, with the workers */
	REQ_READY,			/* a worker prepared the answer */
	REQ_ANSWERED,
};

/* One request (libmicrohttpd's request context), freed when completed. */
struct request {
	struct request *next;		/* in the job queue */
	struct listener *l;
	struct MHD_Connection *conn;
	enum request_state state;
	enum endpoint_route route;	/* as counted in metrics */
	struct ep_decision d;
	unsigned status;		/* REQ_READY: the answer */
	struct MHD_Response *resp;
};

struct endpoint {
	struct engine *engine;
	const struct endpoint_secret *secret;

	pthread_mutex_t gen_lock;
	struct generation *gen;		/* gen_lock */

	/* Changed only by the daemon's thread (start, reload, stop). */
	struct listener **listeners;
	size_t n_listeners;
	unsigned connection_limit;	/* per listener */

	pthread_mutex_t jobs_lock;
	pthread_cond_t jobs_cond;
	struct request *head, *tail;	/* jobs_lock */
	size_t queued;			/* jobs_lock */
	int stopping;			/* jobs_lock */
	pthread_t workers[ENDPOINT_WORKERS];
	size_t n_workers;

	pthread_mutex_t conns_lock;
	pthread_cond_t conns_cond;	/* wakes the sweeper to stop */
	struct conn *first, *last;	/* conns_lock: oldest first */
	size_t n_conns;			/* conns_lock: tracked, listed or not */
	int sweeper_stop;		/* conns_lock */
	pthread_t sweeper;
	int has_sweeper;
};

#define ENDPOINT_LISTEN_BACKLOG 1024

/* ---- listen.c: sockets bound by the first worker, kept by the supervisor -- */
struct endpoint_socket {
	struct cfg_listen addr;
	int fd;				/* -1: taken */
};

struct endpoint_sockets {
	size_t n;
	struct endpoint_socket s[];
};

/* A listening, non-blocking socket on l, or -1 with why filled. */
int endpoint_bind_one(const struct cfg_listen *l, char *why, size_t whylen) WUR;

/* The socket bound for l, taken out of s (the caller owns it now), or -1
 * when s has none for l. */
int endpoint_sockets_take(struct endpoint_sockets *s, const struct cfg_listen *l);

/* ---- conns.c: connections and their deadline ---------------------------- */
int conns_start(struct endpoint *ep) WUR;
void conns_stop(struct endpoint *ep);
void conns_notify(void *cls, struct MHD_Connection *c, void **socket_context,
		  enum MHD_ConnectionNotificationCode toe);
/* The connection's request is being answered: no deadline meanwhile. */
void conns_busy(struct endpoint *ep, struct MHD_Connection *c);
/* Answered: the connection waits for its next request from now on. */
void conns_idle(struct endpoint *ep, struct MHD_Connection *c);
/* Waits, at most timeout_ms, until every connection is between requests
 * (answered, its next request not begun): what a stop may close without
 * cutting a request off.  Call once nothing new is accepted. */
void conns_settle(struct endpoint *ep, int64_t timeout_ms);

/* ---- jobs.c: the workers and what they answer ---------------------------- */
int jobs_start(struct endpoint *ep) WUR;
/* Answers every job still queued, then joins the workers. */
void jobs_stop(struct endpoint *ep);
/* Suspends rq's connection and hands rq to the workers: 0, or -EBUSY
 * (nothing done) when the queue is full or the face is stopping: the
 * caller answers. */
int jobs_push(struct endpoint *ep, struct request *rq) WUR;
/* Answers the credentials request rq from what the engine has at hand
 * (never waits): 0 with rq->status and rq->resp, or -EAGAIN when it
 * would have to wait or renew (a worker must). */
int jobs_answer_at_hand(struct endpoint *ep, struct request *rq) WUR;
/* A response for the fixed or router-made answer of d; NULL when out of
 * memory. */
struct MHD_Response *answer_of_decision(const struct ep_decision *d);

#endif
