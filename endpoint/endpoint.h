/*
 * The HTTP face: credentials over HTTP for SDKs that refresh themselves
 * (the container credentials endpoint and IMDSv2), and /metrics, served
 * from the same engine as the files (docs/endpoint.md).
 *
 * It never includes FUSE and the FUSE face never includes it; the worker
 * creates both over one engine (daemon/worker.c).  It listens on every
 * [endpoint] listen address of the generation in force, one libmicrohttpd
 * daemon each with an epoll thread of its own; a request that has to wait
 * (for STS, or for a metrics scrape to be built) is suspended and answered
 * from a small pool of threads (ENDPOINT_WORKERS), so the event threads
 * never wait and thousands of idle or slow connections cost only their
 * memory.  Each request must arrive whole within
 * ENDPOINT_REQUEST_DEADLINE_MS of its connection being accepted or
 * answered, however slowly it trickles in.
 *
 * The listening sockets outlive the worker.  The first worker of a fresh
 * start binds them before anything is mounted (endpoint_bind), so an
 * address that cannot be had fails the start with nothing mounted.  The
 * supervisor keeps copies (CTL_LISTENERS: sent by that first worker as
 * soon as it has bound them, and by every worker once it has started the
 * face and after each reload, endpoint_listen_fds) and hands them to every
 * later worker, to a successor's supervisor in a takeover and to the
 * descriptor store; a worker given them takes them with
 * endpoint_sockets_adopt.  Connections made while no worker serves wait in
 * the listen backlog.  A reload binds the addresses it adds while it
 * prepares (nothing answers on them yet) and starts their listeners at its
 * commit.
 */
#ifndef CREDFS_ENDPOINT_H
#define CREDFS_ENDPOINT_H

#include <stddef.h>

#include "compiler.h"
#include "endpoint_token.h"
#include "engine.h"
#include "generation.h"

#define ENDPOINT_REQUEST_DEADLINE_MS 10000
#define ENDPOINT_MAX_CONNECTIONS 8192	/* per listen address */
#define ENDPOINT_CONNECTION_MEMORY 8192	/* bytes: request line, headers, reply headers */
#define ENDPOINT_WORKERS 8
#define ENDPOINT_QUEUE_MAX 4096		/* waiting requests beyond: 503 */
#define ENDPOINT_STOP_GRACE_MS 1000	/* a stop waits at most this for requests accepted */

struct endpoint;
struct endpoint_sockets;

/* Binds every listen address of e and listens.  The first worker of a
 * fresh start calls it before CTL_UP, so before the supervisor mounts
 * (daemon/worker.c bind_fresh): an address that cannot be had fails the
 * start on the terminal, with nothing mounted.  NULL with the reason in
 * why.  Free with endpoint_sockets_close, or give to endpoint_start. */
struct endpoint_sockets *endpoint_bind(const struct cfg_endpoint *e, char *why,
				       size_t whylen) WUR;
/* Sockets a predecessor listened on, as the supervisor keeps them and
 * hands them over in CTL_START (fds: listening sockets, taken over
 * and closed by endpoint_sockets_close if endpoint_start does not use
 * them), each known by the address it is bound to.  NULL when out of
 * memory (the fds are closed then). */
struct endpoint_sockets *endpoint_sockets_adopt(const int *fds, size_t n) WUR;
/* The descriptors of s (borrowed: still s's), at most max. */
size_t endpoint_sockets_fds(const struct endpoint_sockets *s, int *fds, size_t max);
void endpoint_sockets_close(struct endpoint_sockets *s);

/* Starts the face over engine for gen, authorising with secret (borrowed:
 * it must outlive the face), serving on the sockets of endpoint_bind or
 * endpoint_sockets_adopt (taken over and freed, whatever happens; an
 * address they lack is bound now).  Without [endpoint] it listens
 * nowhere until a reload brings one.  NULL when a listen address cannot
 * be bound or out of memory, with the reason in why (no secret in it). */
struct endpoint *endpoint_start(struct engine *engine, struct generation *gen,
				const struct endpoint_secret *secret,
				struct endpoint_sockets *sockets,
				char *why, size_t whylen) WUR;

/* The face's part in a reload (engine_reload_faces): at the prepare,
 * addresses that were added are bound and listening before anything moves
 * (connections wait in the backlog; one that cannot be had refuses the
 * reload); at the commit the face takes the new generation (the IMDS
 * role, the roles' tokens), starts listeners on the added sockets, and
 * stops those of addresses that went away once their requests are
 * answered. */
struct engine_face endpoint_reloader(struct endpoint *ep);

/* The listening descriptors of ep now (borrowed: still ep's), at most max,
 * for the supervisor to keep for the next worker.  Call from the thread
 * that starts, reloads and stops the face. */
size_t endpoint_listen_fds(const struct endpoint *ep, int *fds, size_t max);

/* Stops accepting (connections in the backlog stay there, for the next
 * process that holds the sockets), answers what is still waiting (a request
 * waiting on STS is answered when its wait ends, at most wait_timeout
 * later) and the requests of the connections it accepted (waiting at most
 * ENDPOINT_STOP_GRACE_MS for one still arriving), then frees.  NULL is
 * fine.  Call before the engine stops. */
void endpoint_stop(struct endpoint *ep);

#endif
