/*
 * The face's life (start, reload, stop), its listeners, and the request
 * handler libmicrohttpd calls on each listener's epoll thread.
 *
 * Why libmicrohttpd: it is in Debian (libmicrohttpd-dev), small, meant to
 * be embedded, parses HTTP/1.1 strictly with a fixed memory budget per
 * connection, and its epoll mode with suspend/resume is the shape this
 * face needs: one thread holds thousands of idle connections, and a
 * request that must wait is parked without holding that thread.
 */
#include "endpoint_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"

#define FD_RESERVE 512		/* descriptors kept for the rest of the daemon */

/* ---- the request handler ------------------------------------------------- */

static int role_rotation(void *arg, const char *name, unsigned *rotation)
{
	struct endpoint *ep = arg;
	struct role *r = engine_role(ep->engine, name);
	struct generation *gen = NULL;
	const struct cfg_role *c;
	int rc = -ENOENT;

	if (!r)
		return rc;
	c = role_settings(r, &gen);
	if (c && c->x.cloud == CFG_CLOUD_AWS) {
		*rotation = c->pres.authorization_token_rotation;
		rc = 0;
	}
	if (gen)
		generation_unref(gen);
	role_unref(r);
	return rc;
}

/* Header value of name and its length (0 when absent). */
static const char *header(struct MHD_Connection *c, const char *name, size_t *len)
{
	const char *v = NULL;
	size_t n = 0;

	if (MHD_lookup_connection_value_n(c, MHD_HEADER_KIND, name, strlen(name),
					  &v, &n) != MHD_YES)
		v = NULL;
	if (len)
		*len = v ? n : 0;
	return v;
}

static void parse_request(struct MHD_Connection *c, const char *url,
			  const char *method, struct ep_request *rq)
{
	const char *cl = header(c, MHD_HTTP_HEADER_CONTENT_LENGTH, NULL);

	memset(rq, 0, sizeof(*rq));
	rq->method = method;
	rq->path = url;
	rq->host = header(c, MHD_HTTP_HEADER_HOST, NULL);
	rq->authorization = header(c, MHD_HTTP_HEADER_AUTHORIZATION,
				   &rq->authorization_len);
	rq->imds_token = header(c, "X-aws-ec2-metadata-token", &rq->imds_token_len);
	rq->imds_ttl = header(c, "X-aws-ec2-metadata-token-ttl-seconds", NULL);
	rq->forwarded = header(c, "X-Forwarded-For", NULL) != NULL;
	rq->has_body = (cl && strspn(cl, "0") != strlen(cl)) ||
		       header(c, MHD_HTTP_HEADER_TRANSFER_ENCODING, NULL);
}

/* What path asks for, as metrics count it. */
static enum endpoint_route route_of(const char *path)
{
	if (!strncmp(path, "/roles/", 7))
		return ENDPOINT_ROUTE_CONTAINER;
	if (!strcmp(path, "/latest/api/token"))
		return ENDPOINT_ROUTE_IMDS_TOKEN;
	if (!strncmp(path, "/latest/", 8))
		return ENDPOINT_ROUTE_IMDS;
	return strcmp(path, "/metrics") ? ENDPOINT_ROUTE_OTHER : ENDPOINT_ROUTE_METRICS;
}

/* Routes rq with the generation in force. */
static void route(struct listener *l, struct MHD_Connection *c, const char *url,
		  const char *method, struct request *rq)
{
	struct endpoint *ep = l->ep;
	struct ep_request req;
	struct ep_context ctx = {
		.secret = ep->secret, .listen = l->addr.text,
		.now = clock_wall(), .role_rotation = role_rotation, .arg = ep,
	};
	struct generation *gen;

	pthread_mutex_lock(&ep->gen_lock);
	gen = generation_ref(ep->gen);
	pthread_mutex_unlock(&ep->gen_lock);
	ctx.imds_role = gen->cfg->endpoint.imds_role;
	parse_request(c, url, method, &req);
	rq->route = url ? route_of(url) : ENDPOINT_ROUTE_OTHER;
	ep_route(&ctx, &req, &rq->d);
	/* The IMDS role listing points into gen: copy it before letting go. */
	if (rq->d.action == EP_ANSWER && rq->d.body == ctx.imds_role) {
		snprintf(rq->d.role, sizeof(rq->d.role), "%s", ctx.imds_role);
		rq->d.body = rq->d.role;
	}
	generation_unref(gen);
}

/* Queues resp (its reference is taken over).  rq->resp, when it is the
 * one, is cleared: on_completed frees only what was never queued. */
static enum MHD_Result queue(struct request *rq, unsigned status,
			     struct MHD_Response *resp)
{
	enum MHD_Result r;

	if (rq->resp == resp)
		rq->resp = NULL;
	rq->state = REQ_ANSWERED;
	if (!resp)
		return MHD_NO;	/* out of memory: drop the connection */
	endpoint_stats_request(rq->route, status);
	r = MHD_queue_response(rq->conn, status, resp);
	MHD_destroy_response(resp);
	return r;
}

/* Parks rq with the workers, or answers 503 when they cannot take it. */
static enum MHD_Result hand_over(struct listener *l, struct request *rq)
{
	atomic_fetch_add(&l->suspended, 1);
	if (!atomic_load(&l->draining) && !jobs_push(l->ep, rq))
		return MHD_YES;
	atomic_fetch_sub(&l->suspended, 1);
	ep_error(&rq->d, 503);
	return queue(rq, 503, answer_of_decision(&rq->d));
}

/* Answers rq, routed already, on the call that ends its request. */
static enum MHD_Result answer(struct listener *l, struct request *rq)
{
	switch (rq->d.action) {
	case EP_CONTAINER:
	case EP_IMDS_CREDENTIALS:
		if (!jobs_answer_at_hand(l->ep, rq))
			return queue(rq, rq->status, rq->resp);
		return hand_over(l, rq);
	case EP_METRICS:
		return hand_over(l, rq);
	default:
		return queue(rq, rq->d.status, answer_of_decision(&rq->d));
	}
}

/*
 * libmicrohttpd calls this once the headers are in (*req_cls NULL), then
 * once more when the request is complete, and again after a resume.  The
 * request is routed at the first call; a request with a body is refused at
 * once (its connection closes, the body is never read); any other is
 * answered at the second call, which keeps the connection alive.
 */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
				  const char *url, const char *method,
				  const char *version, const char *upload_data,
				  size_t *upload_data_size, void **req_cls)
{
	struct listener *l = cls;
	struct request *rq = *req_cls;

	(void)version;
	(void)upload_data;
	if (!rq) {
		conns_busy(l->ep, c);
		rq = calloc(1, sizeof(*rq));
		if (!rq)
			return MHD_NO;
		rq->l = l;
		rq->conn = c;
		*req_cls = rq;
		route(l, c, url, method, rq);
		if (rq->d.close)
			return queue(rq, rq->d.status, answer_of_decision(&rq->d));
		return MHD_YES;
	}
	if (*upload_data_size) {
		/* A body after a refusal: dropped, the connection closes. */
		*upload_data_size = 0;
		return MHD_YES;
	}
	switch (rq->state) {
	case REQ_NEW:
		return answer(l, rq);
	case REQ_READY:
		return queue(rq, rq->status, rq->resp);
	default:
		return MHD_YES;
	}
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct endpoint *ep = cls;
	struct request *rq = *req_cls;

	(void)toe;
	if (rq) {
		if (rq->resp)
			MHD_destroy_response(rq->resp);
		ep_decision_clear(&rq->d);
		free(rq);
		*req_cls = NULL;
	}
	conns_idle(ep, c);
}

/* libmicrohttpd's messages, at debug level: they say what a client did
 * wrong and never carry a header's value. */
__attribute__((format(printf, 2, 0)))
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];

	(void)cls;
	if (log_get_level() < LOG_LEVEL_DEBUG)
		return;
	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\r\n")] = '\0';
	log_debug("endpoint: %s", line);
}

/* ---- listeners ----------------------------------------------------------- */

/* A listener on addr: on fd when it is a bound socket (taken over), else
 * on a socket libmicrohttpd binds. */
static struct listener *listener_start(struct endpoint *ep,
				       const struct cfg_listen *addr, int fd,
				       char *why, size_t whylen)
{
	struct listener *l = calloc(1, sizeof(*l));
	unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME |
			 MHD_USE_ERROR_LOG;
	struct MHD_OptionItem where[2] = { { MHD_OPTION_END, 0, NULL },
					   { MHD_OPTION_END, 0, NULL } };

	if (!l) {
		snprintf(why, whylen, "out of memory");
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	l->ep = ep;
	l->addr = *addr;
	l->quiesced_fd = -1;
	where[0] = fd >= 0 ?
		(struct MHD_OptionItem){ MHD_OPTION_LISTEN_SOCKET, fd, NULL } :
		(struct MHD_OptionItem){ MHD_OPTION_SOCK_ADDR, 0, &l->addr.addr };
	if (addr->addr.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	l->daemon = MHD_start_daemon(
		flags, 0, NULL, NULL, on_request, l,
		MHD_OPTION_ARRAY, where,
		MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)ENDPOINT_LISTEN_BACKLOG,
		MHD_OPTION_CONNECTION_LIMIT, ep->connection_limit,
		MHD_OPTION_CONNECTION_TIMEOUT,
		(unsigned)(ENDPOINT_REQUEST_DEADLINE_MS / 1000),
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)ENDPOINT_CONNECTION_MEMORY,
		MHD_OPTION_STRICT_FOR_CLIENT, 1,
		MHD_OPTION_NOTIFY_CONNECTION, conns_notify, ep,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, ep,
		MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
		MHD_OPTION_END);
	if (!l->daemon) {
		snprintf(why, whylen, "[endpoint] cannot listen on %s: %s", addr->text,
			 errno ? strerror(errno) : "libmicrohttpd refused");
		/* fd is not closed here: libmicrohttpd may have done so.  Only
		 * a start fails this way with a socket of ours, and the daemon
		 * then exits. */
		free(l);
		return NULL;
	}
	endpoint_stats_activate();
	log_info("endpoint: listening on %s", addr->text);
	return l;
}

/* l accepts no more: connections in its backlog stay there, for the other
 * processes that hold the socket (the supervisor keeps it for the next
 * worker, a takeover's successor serves it already); those it accepted
 * are still answered. */
static void listener_quiesce(struct listener *l)
{
	atomic_store(&l->draining, 1);
	if (l->quiesced_fd < 0)
		l->quiesced_fd = MHD_quiesce_daemon(l->daemon);
}

/* Waits until none of l's requests is with the workers, then stops it.
 * Nothing new is handed over once draining is set, and a request that is
 * (hand_over counts before it looks), so the wait ends within the longest
 * wait_timeout. */
static void listener_stop(struct listener *l)
{
	if (!l)
		return;
	atomic_store(&l->draining, 1);
	while (atomic_load(&l->suspended))
		nanosleep(&(struct timespec){ 0, 5 * 1000 * 1000 }, NULL);
	MHD_stop_daemon(l->daemon);
	/* libmicrohttpd leaves a quiesced socket to us, to close after it. */
	if (l->quiesced_fd >= 0)
		close(l->quiesced_fd);
	free(l);
}

/* Descriptors for as many connections as allowed: the soft limit is
 * raised to the hard one, and the per-listener limit fits in it. */
static unsigned fit_connection_limit(size_t n_listen)
{
	struct rlimit rl;
	rlim_t room;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return 256;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	room = rl.rlim_cur > FD_RESERVE * 2 ? rl.rlim_cur - FD_RESERVE : FD_RESERVE;
	room /= n_listen ? n_listen : 1;
	return room < ENDPOINT_MAX_CONNECTIONS ? (unsigned)room : ENDPOINT_MAX_CONNECTIONS;
}

static int same_address(const struct cfg_listen *a, const struct cfg_listen *b)
{
	return a->addr_len == b->addr_len && !memcmp(&a->addr, &b->addr, a->addr_len);
}

/* Whether addr is among the listen addresses of e. */
static int listed_in(const struct cfg_endpoint *e, const struct cfg_listen *addr)
{
	for (size_t i = 0; e->present && i < e->n_listen; i++)
		if (same_address(&e->listen[i], addr))
			return 1;
	return 0;
}

/* A reload's listeners, made aside: every address of the new generation,
 * the listeners ep has kept and, for the others, a socket bound and
 * listening (connections wait in its backlog until the commit starts
 * answering them with the new generation); and those ep has that it no
 * longer lists. */
struct listener_plan {
	struct listener **next;		/* n: kept, or NULL for a new one */
	const struct cfg_listen *addr;	/* n: the new generation's addresses */
	int *fd;			/* n: the new ones' sockets, else -1 */
	size_t n;
	struct listener **gone;
	size_t n_gone;
};

/* Closes what plan bound and frees it; ep is unchanged. */
static void listeners_discard(struct listener_plan *p)
{
	for (size_t i = 0; p->fd && i < p->n; i++)
		if (p->fd[i] >= 0)
			close(p->fd[i]);
	free(p->next);
	free(p->fd);
	free(p->gone);
	free(p);
}

/* The listeners for every address of e, sockets (may be NULL) used where
 * they have the address, the others bound now; ep is unchanged.  NULL
 * with why filled when an address cannot be bound or out of memory. */
static struct listener_plan *listeners_prepare(struct endpoint *ep,
					       const struct cfg_endpoint *e,
					       struct endpoint_sockets *sockets,
					       char *why, size_t whylen)
{
	size_t n = e->present ? e->n_listen : 0;
	struct listener_plan *p = calloc(1, sizeof(*p));

	snprintf(why, whylen, "out of memory");
	if (!p)
		return NULL;
	p->n = n;
	p->addr = e->listen;
	p->next = calloc(n + 1, sizeof(*p->next));
	p->fd = calloc(n + 1, sizeof(*p->fd));
	p->gone = calloc(ep->n_listeners + 1, sizeof(*p->gone));
	if (!p->next || !p->fd || !p->gone) {
		free(p->fd);
		p->fd = NULL;
		goto fail;
	}
	for (size_t i = 0; i < n; i++)
		p->fd[i] = -1;
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < ep->n_listeners; j++)
			if (same_address(&ep->listeners[j]->addr, &e->listen[i]))
				p->next[i] = ep->listeners[j];
		if (p->next[i])
			continue;
		p->fd[i] = endpoint_sockets_take(sockets, &e->listen[i]);
		if (p->fd[i] < 0 &&
		    (p->fd[i] = endpoint_bind_one(&e->listen[i], why, whylen)) < 0)
			goto fail;
	}
	for (size_t j = 0; j < ep->n_listeners; j++)
		if (!listed_in(e, &ep->listeners[j]->addr))
			p->gone[p->n_gone++] = ep->listeners[j];
	return p;
fail:
	listeners_discard(p);
	return NULL;
}

/* ep listens as plan says: a listener started on each new socket, and
 * the listeners it no longer lists stopped once their requests are
 * answered.  Frees plan.  0, or -1 when a listener could not be started
 * (why filled; the others serve). */
static int listeners_commit(struct endpoint *ep, struct listener_plan *p,
			    char *why, size_t whylen)
{
	size_t k = 0;
	int rc = 0;

	for (size_t i = 0; i < p->n; i++) {
		if (!p->next[i]) {
			p->next[i] = listener_start(ep, &p->addr[i], p->fd[i], why, whylen);
			p->fd[i] = -1;	/* the listener's now, or closed */
			if (!p->next[i]) {
				rc = -1;
				continue;
			}
		}
		p->next[k++] = p->next[i];
	}
	free(ep->listeners);
	ep->listeners = p->next;
	ep->n_listeners = k;
	p->next = NULL;
	for (size_t i = 0; i < p->n_gone; i++) {
		log_info("endpoint: no longer listening on %s", p->gone[i]->addr.text);
		listener_stop(p->gone[i]);
	}
	listeners_discard(p);
	return rc;
}

/* ---- the face ------------------------------------------------------------ */

static void endpoint_free(struct endpoint *ep)
{
	pthread_mutex_destroy(&ep->gen_lock);
	pthread_mutex_destroy(&ep->jobs_lock);
	pthread_cond_destroy(&ep->jobs_cond);
	pthread_mutex_destroy(&ep->conns_lock);
	if (ep->gen)
		generation_unref(ep->gen);
	free(ep->listeners);
	free(ep);
}

struct endpoint *endpoint_start(struct engine *engine, struct generation *gen,
				const struct endpoint_secret *secret,
				struct endpoint_sockets *sockets,
				char *why, size_t whylen)
{
	struct endpoint *ep = calloc(1, sizeof(*ep));
	struct listener_plan *p;

	if (!ep) {
		snprintf(why, whylen, "out of memory");
		endpoint_sockets_close(sockets);
		return NULL;
	}
	ep->engine = engine;
	ep->secret = secret;
	ep->gen = generation_ref(gen);
	pthread_mutex_init(&ep->gen_lock, NULL);
	pthread_mutex_init(&ep->jobs_lock, NULL);
	pthread_cond_init(&ep->jobs_cond, NULL);
	pthread_mutex_init(&ep->conns_lock, NULL);
	ep->connection_limit = fit_connection_limit(gen->cfg->endpoint.n_listen);
	if (conns_start(ep) || jobs_start(ep)) {
		snprintf(why, whylen, "cannot start the endpoint's threads");
		goto fail;
	}
	p = listeners_prepare(ep, &gen->cfg->endpoint, sockets, why, whylen);
	if (!p || listeners_commit(ep, p, why, whylen))
		goto fail;
	endpoint_sockets_close(sockets);
	return ep;
fail:
	endpoint_sockets_close(sockets);
	jobs_stop(ep);
	conns_stop(ep);
	endpoint_free(ep);
	return NULL;
}

/* A reload (engine_reload_faces): the new listen addresses are listened
 * on before anything moves, so one that cannot be had refuses the reload
 * and the configuration in force stays whole. */
struct endpoint_prepared {
	struct generation *gen;
	struct listener_plan *plan;
};

static void *reload_prepare(void *arg, struct generation *gen)
{
	struct endpoint *ep = arg;
	struct endpoint_prepared *pr = calloc(1, sizeof(*pr));
	char why[256];

	if (!pr)
		return NULL;
	pr->plan = listeners_prepare(ep, &gen->cfg->endpoint, NULL, why, sizeof(why));
	if (!pr->plan) {
		log_error("reload refused, the configuration in force is unchanged: %s", why);
		free(pr);
		return NULL;
	}
	pr->gen = generation_ref(gen);
	return pr;
}

static void reload_commit(void *arg, void *prepared)
{
	struct endpoint *ep = arg;
	struct endpoint_prepared *pr = prepared;
	struct generation *old;
	char why[256];

	pthread_mutex_lock(&ep->gen_lock);
	old = ep->gen;
	ep->gen = pr->gen;
	pthread_mutex_unlock(&ep->gen_lock);
	generation_unref(old);
	if (listeners_commit(ep, pr->plan, why, sizeof(why)))
		log_error("reload: %s", why);
	free(pr);
}

static void reload_discard(void *arg, void *prepared)
{
	struct endpoint_prepared *pr = prepared;

	(void)arg;
	listeners_discard(pr->plan);
	generation_unref(pr->gen);
	free(pr);
}

struct engine_face endpoint_reloader(struct endpoint *ep)
{
	return (struct engine_face){ .arg = ep, .prepare = reload_prepare,
				     .commit = reload_commit,
				     .discard = reload_discard };
}

size_t endpoint_listen_fds(const struct endpoint *ep, int *fds, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; ep && i < ep->n_listeners && n < max; i++) {
		const union MHD_DaemonInfo *info =
			MHD_get_daemon_info(ep->listeners[i]->daemon,
					    MHD_DAEMON_INFO_LISTEN_FD);

		if (info && info->listen_fd >= 0)
			fds[n++] = info->listen_fd;
	}
	return n;
}

void endpoint_stop(struct endpoint *ep)
{
	if (!ep)
		return;
	/* Stopping the daemons closes every connection: first nothing more
	 * is accepted, and what was accepted is answered. */
	for (size_t i = 0; i < ep->n_listeners; i++)
		listener_quiesce(ep->listeners[i]);
	jobs_stop(ep);
	conns_settle(ep, ENDPOINT_STOP_GRACE_MS);
	for (size_t i = 0; i < ep->n_listeners; i++)
		listener_stop(ep->listeners[i]);
	ep->n_listeners = 0;
	conns_stop(ep);
	endpoint_free(ep);
}
