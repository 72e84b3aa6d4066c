/*
 * The workers: they answer what may have to wait (credentials a role does
 * not hold yet, or holds past their refresh point, which starts a
 * background renewal; metrics, whose text can be large), each request on
 * a suspended connection that is resumed with its answer ready.  Answers
 * that hold a secret are built in wiped buffers and wiped when
 * libmicrohttpd lets go of them.
 */
#include "endpoint_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"

#define ANSWER_MAX (64 * 1024)
#define METRICS_MAX (64 * 1024 * 1024)

/* ---- responses ----------------------------------------------------------- */

static void free_secret_body(void *p)
{
	secret_free(p);
}

/* A response taking b over; secret: wiped when libmicrohttpd frees it.
 * NULL when out of memory (b freed either way). */
static struct MHD_Response *response_of_buf(struct buf *b, const char *ctype,
					    int secret)
{
	size_t len = b->len;
	char *data = buf_steal(b);
	struct MHD_Response *r;

	if (!data)
		return NULL;
	r = MHD_create_response_from_buffer_with_free_callback(
		len, data, secret ? free_secret_body : free);
	if (!r) {
		secret_free(data);
		return NULL;
	}
	if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype) != MHD_YES ||
	    (secret && MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL,
					       "no-store") != MHD_YES)) {
		MHD_destroy_response(r);
		return NULL;
	}
	return r;
}

struct MHD_Response *answer_of_decision(const struct ep_decision *d)
{
	const char *body = d->action == EP_IMDS_TOKEN ? d->token : d->body;
	struct MHD_Response *r;
	char ttl[16];
	int ok;

	r = MHD_create_response_from_buffer(body ? strlen(body) : 0,
					    (void *)(body ? body : ""),
					    MHD_RESPMEM_MUST_COPY);
	if (!r)
		return NULL;
	ok = MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
				     d->content_type ? d->content_type : "text/plain") == MHD_YES;
	if (ok && d->allow)
		ok = MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, d->allow) == MHD_YES;
	if (ok && d->close)
		ok = MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close") == MHD_YES;
	if (ok && d->action == EP_IMDS_TOKEN) {
		snprintf(ttl, sizeof(ttl), "%d", d->ttl);
		ok = MHD_add_response_header(r, "X-aws-ec2-metadata-token-ttl-seconds",
					     ttl) == MHD_YES &&
		     MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL,
					     "no-store") == MHD_YES;
	}
	if (!ok) {
		MHD_destroy_response(r);
		return NULL;
	}
	return r;
}

/* rq's answer is the fixed one for status. */
static void answer_error(struct request *rq, unsigned status)
{
	ep_error(&rq->d, status);
	rq->status = rq->d.status;
	rq->resp = answer_of_decision(&rq->d);
}

/* rq's answer from credentials c, in the format the route asked for. */
static void answer_creds(struct request *rq, const struct creds *c)
{
	struct buf b;
	int r;

	buf_init(&b, ANSWER_MAX);
	r = rq->d.action == EP_IMDS_CREDENTIALS ? ep_imds_json(c, &b) :
						  ep_container_json(c, &b);
	rq->resp = r ? NULL : response_of_buf(&b, rq->d.content_type, 1);
	buf_free(&b);
	if (!rq->resp) {
		answer_error(rq, 500);
		return;
	}
	rq->status = 200;
}

/* ---- answering ----------------------------------------------------------- */

int jobs_answer_at_hand(struct endpoint *ep, struct request *rq)
{
	struct role *role = engine_role(ep->engine, rq->d.role);
	struct creds *c = NULL;
	int r;

	if (!role) {
		/* Removed since the router saw it. */
		answer_error(rq, rq->d.action == EP_CONTAINER ? 403 : 404);
		return 0;
	}
	r = engine_credentials(role, ENGINE_PEEK, &c);
	role_unref(role);
	if (r == -ENOENT) {
		answer_error(rq, rq->d.action == EP_CONTAINER ? 403 : 404);
		return 0;
	}
	/* Past the refresh point a reader starts the renewal: a worker's
	 * job, since it may wait if the credentials expire meanwhile. */
	if (r || clock_wall() >= creds_refresh_at(c)) {
		if (c)
			creds_unref(c);
		return -EAGAIN;
	}
	answer_creds(rq, c);
	creds_unref(c);
	return 0;
}

/* What a worker does: waits for credentials up to the role's
 * wait_timeout, or builds the metrics text. */
static void answer_waiting(struct endpoint *ep, struct request *rq)
{
	struct role *role;
	struct creds *c = NULL;
	struct buf b;
	int r;

	if (rq->d.action == EP_METRICS) {
		buf_init(&b, METRICS_MAX);
		r = metrics_render(ep->engine, &b);
		rq->resp = r ? NULL : response_of_buf(&b, rq->d.content_type, 0);
		buf_free(&b);
		if (!rq->resp)
			answer_error(rq, 500);
		else
			rq->status = 200;
		return;
	}
	role = engine_role(ep->engine, rq->d.role);
	r = role ? engine_credentials(role, ENGINE_WAIT, &c) : -ENOENT;
	if (role)
		role_unref(role);
	if (r == -ENOENT)
		answer_error(rq, rq->d.action == EP_CONTAINER ? 403 : 404);
	else if (r)
		answer_error(rq, 503);
	else
		answer_creds(rq, c);
	if (c)
		creds_unref(c);
}

/* Hands rq back to its connection.  rq belongs to libmicrohttpd once
 * resumed: nothing here touches it after. */
static void give_back(struct request *rq)
{
	struct listener *l = rq->l;

	rq->state = REQ_READY;
	endpoint_stats_waiting(-1);
	MHD_resume_connection(rq->conn);
	atomic_fetch_sub(&l->suspended, 1);
}

static void *worker_main(void *arg)
{
	struct endpoint *ep = arg;

	pthread_mutex_lock(&ep->jobs_lock);
	for (;;) {
		struct request *rq;
		int stopping;

		while (!ep->head && !ep->stopping)
			pthread_cond_wait(&ep->jobs_cond, &ep->jobs_lock);
		rq = ep->head;
		if (!rq)
			break;
		ep->head = rq->next;
		if (!ep->head)
			ep->tail = NULL;
		ep->queued--;
		stopping = ep->stopping;
		pthread_mutex_unlock(&ep->jobs_lock);
		if (stopping)
			answer_error(rq, 503);
		else
			answer_waiting(ep, rq);
		give_back(rq);
		pthread_mutex_lock(&ep->jobs_lock);
	}
	pthread_mutex_unlock(&ep->jobs_lock);
	return NULL;
}

int jobs_push(struct endpoint *ep, struct request *rq)
{
	int r = 0;

	/* Suspended under the lock, before a worker can see it: a worker
	 * resumes only what it took from the queue. */
	pthread_mutex_lock(&ep->jobs_lock);
	if (ep->stopping || ep->queued >= ENDPOINT_QUEUE_MAX) {
		r = -EBUSY;
	} else {
		rq->state = REQ_QUEUED;
		MHD_suspend_connection(rq->conn);
		rq->next = NULL;
		if (ep->tail)
			ep->tail->next = rq;
		else
			ep->head = rq;
		ep->tail = rq;
		ep->queued++;
		endpoint_stats_waiting(1);
		pthread_cond_signal(&ep->jobs_cond);
	}
	pthread_mutex_unlock(&ep->jobs_lock);
	return r;
}

int jobs_start(struct endpoint *ep)
{
	for (size_t i = 0; i < ENDPOINT_WORKERS; i++) {
		int r = pthread_create(&ep->workers[i], NULL, worker_main, ep);

		if (r) {
			jobs_stop(ep);
			return -r;
		}
		ep->n_workers++;
	}
	return 0;
}

void jobs_stop(struct endpoint *ep)
{
	pthread_mutex_lock(&ep->jobs_lock);
	ep->stopping = 1;
	pthread_cond_broadcast(&ep->jobs_cond);
	pthread_mutex_unlock(&ep->jobs_lock);
	for (size_t i = 0; i < ep->n_workers; i++)
		pthread_join(ep->workers[i], NULL);
	ep->n_workers = 0;
}
