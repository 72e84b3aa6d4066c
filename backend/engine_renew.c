/*
 * Renewals.  A role has at most one renewal (its job) at a time; a job goes
 *
 *   PREP -> (WAIT_TOKEN | WAIT_SOURCE) -> QUEUED -> RUNNING -> done
 *                                           ^          |
 *                                           +- WAIT_RETRY (backoff) / next step
 *
 * PREP gets what the request needs: the role's token (signed or read from
 * its file, engine_token.c) or, for a chained role, its source's
 * credentials (renewing the source first if needed; the job waits, parked
 * on the source, and is woken when the source's renewal ends).  QUEUED
 * jobs wait in one daemon-wide queue for the limiter (max_sts_rate,
 * max_sts_inflight): cold jobs (a reader is waiting, there are no valid
 * credentials) first, in arrival order, then background renewals by how
 * soon their credentials expire.  Worker threads take prep work (which
 * needs no permit) first, then the queue as the limiter allows; they start
 * on demand and exit when idle.  Retries follow the AWS SDKs' standard
 * mode (docs/engine.md, "A renewal"): 3 attempts
 * per request, full-jitter backoff, on a timer rather than a sleep, so a
 * backing-off job holds no thread and no permit.
 */
#include "engine_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/rand.h>

#include "buf.h"
#include "clock.h"
#include "log.h"
#include "sts.h"

#define ATTEMPTS_MAX 3
#define BEHIND_LOG_EVERY_MS 10000

static struct role *role_of_job(struct heap_node *n)
{
	return ((struct role_use *)((char *)n -
				    offsetof(struct role_use, job.node)))->role;
}

static struct role *role_of_token(struct heap_node *n)
{
	return ((struct role_use *)((char *)n -
				    offsetof(struct role_use, tok.node)))->role;
}

static int64_t holdoff_ms(unsigned failures)
{
	int64_t ms = HOLDOFF_MIN_MS;

	while (failures-- > 1 && ms < HOLDOFF_MAX_MS)
		ms *= 2;
	return ms < HOLDOFF_MAX_MS ? ms : HOLDOFF_MAX_MS;
}

/* Uniform in [0, 1) from the OpenSSL DRBG; 0.5 if it fails. */
static double random01(void)
{
	uint32_t v;

	if (RAND_bytes((unsigned char *)&v, sizeof(v)) != 1)
		return 0.5;
	return (double)v / 4294967296.0;
}

/* ---- workers ------------------------------------------------------------ */

static void *worker_main(void *arg);

static unsigned workers_cap(const struct engine *e)
{
	unsigned inflight = e->limiter.max_inflight;

	/* With a bound on requests in flight, a couple more threads keep
	 * signing and other prep work going while they all wait on the
	 * network. */
	if (inflight && inflight + 2 < WORKERS_MAX)
		return inflight + 2;
	return WORKERS_MAX;
}

/* Makes sure a worker will look at the queues.  Called with sched_lock. */
void ensure_worker_sched(struct engine *e)
{
	pthread_attr_t attr;
	pthread_t tid;

	if (e->stopping)
		return;
	pthread_cond_signal(&e->work);
	if (e->idle_workers || e->workers >= workers_cap(e))
		return;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&tid, &attr, worker_main, e) == 0)
		e->workers++;
	else if (!e->workers)
		log_error("cannot start a worker thread; renewals are stuck");
	pthread_attr_destroy(&attr);
}

void sched_wake_workers(struct engine *e)
{
	pthread_mutex_lock(&e->sched_lock);
	if (e->signing.n || e->prep.n || e->queue.n)
		ensure_worker_sched(e);
	pthread_cond_broadcast(&e->work);
	pthread_mutex_unlock(&e->sched_lock);
}

/* Puts r's job in heap h with key.  -ENOMEM leaves it out. */
static int push_locked(struct role *r, struct heap *h, int64_t key)
{
	struct engine *e = r->engine;
	int rc;

	pthread_mutex_lock(&e->sched_lock);
	rc = heap_set(h, &r->use->job.node, key);
	if (!rc)
		ensure_worker_sched(e);
	pthread_mutex_unlock(&e->sched_lock);
	return rc;
}

/* The job's place in the queue: cold first, in arrival order, then by
 * expiry. */
static int64_t job_key_locked(struct role *r)
{
	struct engine *e = r->engine;
	int64_t key;

	if (!r->use->job.cold && r->current)
		return r->expires_boot;
	pthread_mutex_lock(&e->sched_lock);
	key = INT64_MIN / 2 + e->next_seq++;
	pthread_mutex_unlock(&e->sched_lock);
	return key;
}

/* ---- the job's life ----------------------------------------------------- */

static void job_release_locked(struct role *r)
{
	struct job *j = &r->use->job;

	token_unref(j->token);
	creds_unref(j->source);
	secret_free(j->carry);
	generation_unref(j->gen);
	j->token = NULL;
	j->source = NULL;
	j->carry = NULL;
	j->gen = NULL;
	j->cfg = NULL;
}

/* Takes r's job out of every queue and its timer (the behind count with
 * it).  With r->lock. */
static void job_unqueue_locked(struct role *r)
{
	struct engine *e = r->engine;

	if (!e)
		return;
	pthread_mutex_lock(&e->sched_lock);
	heap_remove(&e->prep, &r->use->job.node);
	heap_remove(&e->queue, &r->use->job.node);
	if (r->use->job.behind) {
		r->use->job.behind = 0;
		e->behind--;
	}
	pthread_mutex_unlock(&e->sched_lock);
	timers_cancel_locked(r, RT_JOB);
}

/* Ends the job: success already published, or err.  Wakes readers.  The
 * caller wakes dependents (renew_release_dependents) after unlocking. */
static void job_finish_locked(struct role *r, const struct exchange_error *err)
{
	int64_t now = clock_boot_ms();

	job_unqueue_locked(r);
	job_release_locked(r);
	r->use->job.stage = JOB_NONE;
	r->use->job.cold = 0;
	r->use->renewal_seq++;
	if (err) {
		r->use->failures++;
		r->use->holdoff_until_boot = now + holdoff_ms(r->use->failures);
		r->use->renewal_failures++;
		role_set_error_locked(r, err);
	}
	pthread_cond_broadcast(&r->use->changed);
}

void renew_cancel_locked(struct role *r)
{
	if (!r->use || r->use->job.stage == JOB_NONE)
		return;
	job_unqueue_locked(r);
	job_release_locked(r);
	r->use->job.stage = JOB_NONE;
	r->use->job.cold = 0;
	r->use->renewal_seq++;
	pthread_cond_broadcast(&r->use->changed);
}

static void job_fail_locked(struct role *r, const char *code, const char *msg)
{
	struct exchange_error err;

	exchange_error_set(&err, code, "%s", msg);
	log_warn("role %s: renewal failed: %s: %s", r->name, code, msg);
	job_finish_locked(r, &err);
}

void renew_start_locked(struct role *r, int cold)
{
	struct job *j;

	/* Callers have made r->use; this is a last guard. */
	if (!r->engine || r->removed || !r->use)
		return;
	j = &r->use->job;
	if (j->stage != JOB_NONE) {
		/* A reader now waits: a queued background job jumps ahead. */
		if (cold && !j->cold) {
			j->cold = 1;
			if (j->stage == JOB_QUEUED &&
			    push_locked(r, &r->engine->queue, job_key_locked(r)))
				job_fail_locked(r, "NoMemory", "out of memory");
		}
		return;
	}
	memset(j, 0, offsetof(struct job, node));
	j->stage = JOB_PREP;
	j->cold = cold || !r->current;
	j->attempt = 1;
	j->gen = generation_ref(r->gen);
	j->cfg = r->cfg;
	j->settings_gen = r->settings_gen;
	j->since_wall = clock_wall();
	if (push_locked(r, &r->engine->prep, job_key_locked(r)))
		job_fail_locked(r, "NoMemory", "out of memory");
}

/* The job has what it needs: into the limiter's queue.  A background job
 * gets a deadline at its min_validity point, to notice when the queue
 * cannot keep up. */
static void job_queue_locked(struct role *r)
{
	struct job *j = &r->use->job;

	j->stage = JOB_QUEUED;
	j->queued_boot = clock_boot_ms();
	if (push_locked(r, &r->engine->queue, job_key_locked(r))) {
		job_fail_locked(r, "NoMemory", "out of memory");
		return;
	}
	if (!j->cold && r->current)
		timers_arm_locked(r, RT_JOB, r->expires_boot -
				  (int64_t)j->cfg->sched.min_validity * 1000);
}

void renew_token_ready_locked(struct role *r)
{
	if (r->use->job.stage != JOB_WAIT_TOKEN)
		return;
	timers_cancel_locked(r, RT_JOB);
	if (!token_fresh_locked(r, clock_boot_ms()) || !r->use->tok.current) {
		struct exchange_error err = r->use->error;

		log_warn("role %s: renewal failed: %s: %s", r->name, err.code,
			 err.message);
		job_finish_locked(r, &err);
		return;
	}
	r->use->job.token = token_ref(r->use->tok.current);
	job_queue_locked(r);
}

/* Adds d (a reference is taken) to the jobs woken when source's renewal
 * ends.  0 or -ENOMEM.  With source->lock. */
static int add_dependent_locked(struct role *source, struct role *d)
{
	if (source->use->n_dependents == source->use->cap_dependents) {
		size_t cap = source->use->cap_dependents ? source->use->cap_dependents * 2 : 4;
		struct role **grown = realloc(source->use->dependents, cap * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		source->use->dependents = grown;
		source->use->cap_dependents = cap;
	}
	for (size_t i = 0; i < source->use->n_dependents; i++)
		if (source->use->dependents[i] == d)
			return 0;
	source->use->dependents[source->use->n_dependents++] = role_ref(d);
	return 0;
}

/* Chained prep: r's job is WAIT_SOURCE; look at the source without r's
 * lock (no two role locks at once).  Returns the source's credentials, or
 * NULL with *failed set when the source cannot have any now. */
static struct creds *source_credentials(struct role *r, struct role *src,
					int *failed)
{
	struct creds *c = NULL;
	int64_t now;

	*failed = 0;
	pthread_mutex_lock(&src->lock);
	now = clock_boot_ms();
	if (role_valid_locked(src, now)) {
		c = creds_ref(src->current);
	} else if (src->removed || role_use_locked(src) ||
		   (src->use->job.stage == JOB_NONE && src->use->failures &&
		    now < src->use->holdoff_until_boot)) {
		*failed = 1;
	} else if (add_dependent_locked(src, r)) {
		*failed = 1;
	} else {
		renew_start_locked(src, 1);
	}
	pthread_mutex_unlock(&src->lock);
	return c;
}

static void prep_chained(struct role *r)
{
	struct role *src;
	unsigned long gen;
	struct creds *c;
	int failed;
	char msg[160];

	r->use->job.stage = JOB_WAIT_SOURCE;
	gen = r->settings_gen;
	src = role_ref(r->source);
	pthread_mutex_unlock(&r->lock);
	c = src ? source_credentials(r, src, &failed) : NULL;
	if (!src)
		failed = 1;
	pthread_mutex_lock(&r->lock);
	if (r->use->job.stage != JOB_WAIT_SOURCE || r->settings_gen != gen) {
		creds_unref(c);
	} else if (c) {
		r->use->job.source = c;
		job_queue_locked(r);
	} else if (failed) {
		snprintf(msg, sizeof(msg),
			 "source role %s has no valid credentials (see its status)",
			 r->cfg->x.source_role);
		job_fail_locked(r, "SourceRole", msg);
	}
	role_unref(src);
}

/* PREP: get the job's token or source.  With r->lock (it may be dropped
 * and taken again). */
static void job_prep_locked(struct role *r)
{
	if (r->use->job.stage != JOB_PREP)
		return;
	if (r->use->job.cfg->x.token_source == CFG_TOKEN_CHAINED) {
		prep_chained(r);
		return;
	}
	if (token_fresh_locked(r, clock_boot_ms()) && r->use->tok.current) {
		r->use->job.token = token_ref(r->use->tok.current);
		job_queue_locked(r);
		return;
	}
	r->use->job.stage = JOB_WAIT_TOKEN;
	/* A token file that never answers must not hold the job forever. */
	timers_arm_locked(r, RT_JOB, clock_boot_ms() +
			  (int64_t)r->use->job.cfg->sched.wait_timeout * 1000);
	if (!r->use->tok.busy)
		token_start_locked(r);
}

void renew_release_dependents(struct role *r)
{
	struct role **deps;
	size_t n;

	pthread_mutex_lock(&r->lock);
	if (!r->use) {
		pthread_mutex_unlock(&r->lock);
		return;		/* never used: nobody waits on it */
	}
	deps = r->use->dependents;
	n = r->use->n_dependents;
	r->use->dependents = NULL;
	r->use->n_dependents = r->use->cap_dependents = 0;
	pthread_mutex_unlock(&r->lock);
	for (size_t i = 0; i < n; i++) {
		struct role *d = deps[i];

		pthread_mutex_lock(&d->lock);
		if (d->use->job.stage == JOB_WAIT_SOURCE && d->engine) {
			d->use->job.stage = JOB_PREP;
			if (push_locked(d, &d->engine->prep, job_key_locked(d)))
				job_fail_locked(d, "NoMemory", "out of memory");
		}
		pthread_mutex_unlock(&d->lock);
		role_unref(d);
	}
	free(deps);
}

/* ---- results ------------------------------------------------------------ */

/* Publishes new credentials.  Returns what changed, or 0 with *err filled
 * when they cannot be used. */
static unsigned publish_locked(struct role *r, struct creds *got,
			       struct exchange_error *err)
{
	const struct cfg_schedule *s = &r->use->job.cfg->sched;
	int64_t wall = clock_wall(), boot = clock_boot_ms(), point;
	struct creds *c, *old;
	unsigned what = ENGINE_CHANGED_STATUS | ENGINE_CHANGED_CREDS;

	if (got->expires <= wall + 1) {
		creds_clear(got);
		exchange_error_set(err, "Expired",
				   "the token endpoint returned credentials that have already expired (check the clock)");
		return 0;
	}
	got->obtained = wall;
	c = creds_publish(got);
	if (!c) {
		exchange_error_set(err, "NoMemory", "out of memory");
		return 0;
	}
	point = engine_refresh_point(wall, c->expires, s->refresh_fraction,
				     s->min_validity, s->refresh_jitter,
				     r->use->jitter_u);
	creds_set_refresh_at(c, point);
	old = r->current;
	r->current = c;
	r->expires_boot = boot + (c->expires - wall) * 1000;
	r->refresh_boot = boot + (point - wall) * 1000;
	r->refresh_wall = point;
	r->use->renewals++;
	r->use->failures = 0;
	r->use->has_error = 0;
	r->use->last_refresh = wall;
	timers_arm_locked(r, RT_REFRESH, r->refresh_boot);
	timers_arm_locked(r, RT_EXPIRY, r->expires_boot - EXPIRY_MARGIN_MS);
	creds_unref(old);
	return what;
}

static void log_renewed(struct role *r, unsigned requests)
{
	const char *what = r->cfg->x.cloud == CFG_CLOUD_AWS ? "STS call" : "request";
	char when[21], next[21];

	clock_format_rfc3339(r->current->expires, when);
	clock_format_rfc3339(r->refresh_wall, next);
	log_info("role %s: renewed (%u %s%s), expires %s, next refresh %s",
		 r->name, requests, what, requests == 1 ? "" : "s", when, next);
}

/* What to do after one request.  Returns the change to tell. */
static unsigned after_request_locked(struct role *r, enum kind_result res,
				     struct kind_request *req, struct creds *got,
				     struct exchange_error *err)
{
	struct job *j = &r->use->job;
	unsigned what = ENGINE_CHANGED_STATUS;

	switch (res) {
	case KIND_DONE: {
		unsigned requests = j->requests;

		what = publish_locked(r, got, err);
		if (!what)
			break;
		job_finish_locked(r, NULL);
		log_renewed(r, requests);
		return what;
	}
	case KIND_NEXT:
		secret_free(j->carry);
		j->carry = req->carry;
		req->carry = NULL;
		j->step++;
		j->attempt = 1;
		job_queue_locked(r);
		return 0;
	case KIND_FAILED:
		break;
	}
	log_warn("role %s: request %d, attempt %d of %d: %s: %s%s", r->name,
		 j->step + 1, j->attempt, ATTEMPTS_MAX, err->code, err->message,
		 err->retryable && j->attempt < ATTEMPTS_MAX ? " (will retry)" : "");
	if (err->retryable && j->attempt < ATTEMPTS_MAX) {
		/* The retry repeats this step: it needs what the step
		 * before produced (Google's exchanged token) again. */
		secret_free(j->carry);
		j->carry = req->carry;
		req->carry = NULL;
		j->stage = JOB_WAIT_RETRY;
		timers_arm_locked(r, RT_JOB, clock_boot_ms() +
				  sts_backoff_ms(j->attempt, random01()));
		j->attempt++;
		return what;
	}
	job_finish_locked(r, err);
	return what;
}

struct request_outcome {
	int sent;
	int throttled;
	double seconds;
};

/* Makes the request of r's job (a permit is held).  With no lock held. */
static struct request_outcome job_run(struct role *r)
{
	struct request_outcome o = {0};
	struct kind_request req = {0};
	struct exchange_error err = {0};
	struct creds got = {0};
	struct generation *gen;
	struct token *tok;
	struct creds *src;
	const struct kind_ops *kind;
	enum kind_result res;
	unsigned long sgen;
	uint64_t version = 0;
	unsigned what = 0;
	int64_t t0;

	pthread_mutex_lock(&r->lock);
	if (r->use->job.stage != JOB_QUEUED) {
		pthread_mutex_unlock(&r->lock);
		return o;
	}
	timers_cancel_locked(r, RT_JOB);
	r->use->job.stage = JOB_RUNNING;
	r->use->job.requests++;
	r->use->requests++;
	r->use->last_attempt = clock_wall();
	sgen = r->settings_gen;
	gen = generation_ref(r->use->job.gen);
	tok = token_ref(r->use->job.token);
	src = creds_ref(r->use->job.source);
	req = (struct kind_request){
		.role = r->use->job.cfg, .token = tok ? tok->jwt : NULL,
		.source = src, .step = r->use->job.step, .carry = r->use->job.carry,
		.connect_timeout_ms = CONNECT_TIMEOUT_MS,
		.timeout_ms = r->use->job.cfg->sched.wait_timeout > 2 ?
				      r->use->job.cfg->sched.wait_timeout * 1000L : 2000L,
	};
	r->use->job.carry = NULL;
	kind = kind_of(req.role->x.cloud);
	pthread_mutex_unlock(&r->lock);

	o.sent = 1;
	t0 = clock_mono_ms();
	res = kind ? kind->request(&req, &got, &err) : KIND_FAILED;
	if (!kind)
		exchange_error_set(&err, "Internal", "no such role kind");
	o.seconds = (double)(clock_mono_ms() - t0) / 1000.0;
	o.throttled = res == KIND_FAILED &&
		      (err.throttled || exchange_is_throttling(err.http_status, err.code));

	pthread_mutex_lock(&r->lock);
	role_count_outcome_locked(r, res == KIND_FAILED ? err.code : "200");
	if (r->use->job.stage == JOB_RUNNING && r->settings_gen == sgen)
		what = after_request_locked(r, res, &req, &got, &err);
	else
		what = ENGINE_CHANGED_STATUS;	/* settings changed meanwhile */
	if ((what & ENGINE_CHANGED_CREDS) && r->current)
		version = r->current->version;
	pthread_mutex_unlock(&r->lock);
	creds_clear(&got);
	secret_free(req.carry);
	token_unref(tok);
	creds_unref(src);
	generation_unref(gen);
	renew_release_dependents(r);
	role_tell_version(r, what & ENGINE_CHANGED_CREDS, version);
	role_tell(r, what & ~ENGINE_CHANGED_CREDS);
	return o;
}

/* ---- timers ------------------------------------------------------------- */

/* RT_JOB fired: a retry is due, a token took too long, or a queued
 * background renewal passed its min_validity point.  With r->lock. */
void renew_timer_locked(struct role *r)
{
	struct engine *e = r->engine;
	char msg[160];

	switch (r->use->job.stage) {
	case JOB_WAIT_RETRY:
		job_queue_locked(r);
		break;
	case JOB_WAIT_TOKEN:
		snprintf(msg, sizeof(msg),
			 "the web identity token was not ready within %d s",
			 r->use->job.cfg->sched.wait_timeout);
		job_fail_locked(r, r->use->tok.read ? "TokenFile" : "Signer", msg);
		break;
	case JOB_QUEUED:
		pthread_mutex_lock(&e->sched_lock);
		if (!r->use->job.behind) {
			r->use->job.behind = 1;
			e->behind++;
		}
		if (clock_boot_ms() - e->behind_logged_boot >= BEHIND_LOG_EVERY_MS ||
		    !e->behind_logged_boot) {
			e->behind_logged_boot = clock_boot_ms();
			log_warn("renewals cannot keep up: %zu queued past their min_validity point (max_sts_rate %.3g, max_sts_inflight %u); role %s is one",
				 e->behind, e->limiter.max_rate,
				 e->limiter.max_inflight, r->name);
		}
		pthread_mutex_unlock(&e->sched_lock);
		break;
	default:
		break;
	}
}

/* ---- the worker loop ---------------------------------------------------- */

static void record_latency_sched(struct engine *e, double seconds)
{
	for (int i = 0; i < ENGINE_LATENCY_BUCKETS; i++)
		if (seconds <= engine_latency_bounds[i])
			e->latency_buckets[i]++;
	e->latency_sum += seconds;
	e->latency_count++;
}

/* One piece of work, with sched_lock held (dropped while working).
 * Returns 1 if it did something, 0 if there was nothing it may do; then
 * *wait_ms says how long until the limiter may allow (-1: until woken). */
static int work_once_sched(struct engine *e, int64_t *wait_ms)
{
	struct heap_node *n;
	struct role *r;

	if ((n = heap_pop_upto(&e->signing, INT64_MAX))) {
		r = role_of_token(n);
		role_ref(r);
		pthread_mutex_unlock(&e->sched_lock);
		token_sign_run(r);
		role_unref(r);
		pthread_mutex_lock(&e->sched_lock);
		return 1;
	}
	if ((n = heap_pop_upto(&e->prep, INT64_MAX))) {
		unsigned long seq;
		int ended;

		r = role_of_job(n);
		role_ref(r);
		pthread_mutex_unlock(&e->sched_lock);
		pthread_mutex_lock(&r->lock);
		seq = r->use->renewal_seq;
		job_prep_locked(r);	/* may fail the job: SourceRole */
		ended = r->use->renewal_seq != seq;
		pthread_mutex_unlock(&r->lock);
		if (ended)
			renew_release_dependents(r);
		role_unref(r);
		pthread_mutex_lock(&e->sched_lock);
		return 1;
	}
	*wait_ms = -1;
	if (!heap_top(&e->queue))
		return 0;
	*wait_ms = limiter_acquire(&e->limiter, clock_boot_ms());
	if (*wait_ms)
		return 0;
	n = heap_pop_upto(&e->queue, INT64_MAX);
	r = role_of_job(n);
	if (r->use->job.behind) {
		r->use->job.behind = 0;
		e->behind--;
	}
	role_ref(r);
	pthread_mutex_unlock(&e->sched_lock);
	{
		struct request_outcome o = job_run(r);

		role_unref(r);
		pthread_mutex_lock(&e->sched_lock);
		limiter_release(&e->limiter, clock_boot_ms(), o.throttled);
		if (o.sent)
			record_latency_sched(e, o.seconds);
	}
	/* A permit came free: another worker may go. */
	pthread_cond_signal(&e->work);
	return 1;
}

static void *worker_main(void *arg)
{
	struct engine *e = arg;

	pthread_mutex_lock(&e->sched_lock);
	while (!e->stopping) {
		int64_t wait_ms;
		struct timespec ts;

		if (work_once_sched(e, &wait_ms))
			continue;
		if (wait_ms > 0) {
			ts = clock_deadline_ms(wait_ms);
			pthread_cond_timedwait(&e->work, &e->sched_lock, &ts);
			continue;
		}
		e->idle_workers++;
		ts = clock_deadline_ms(WORKER_IDLE_MS);
		if (pthread_cond_timedwait(&e->work, &e->sched_lock, &ts) == ETIMEDOUT &&
		    !e->signing.n && !e->prep.n && !e->queue.n) {
			e->idle_workers--;
			break;
		}
		e->idle_workers--;
	}
	pthread_mutex_unlock(&e->sched_lock);
	/* This thread's OpenSSL state (its random generators, its error
	 * queue) is freed here, while it still counts as a worker: a
	 * detached thread's exit destructors could otherwise still run once
	 * engine_stop has returned and the process is exiting. */
	secret_thread_end();
	pthread_mutex_lock(&e->sched_lock);
	e->workers--;
	pthread_cond_broadcast(&e->quiet);
	/* Work queued while this thread was leaving may have found every
	 * slot taken and started nobody: look again. */
	if (e->signing.n || e->prep.n || e->queue.n)
		ensure_worker_sched(e);
	pthread_mutex_unlock(&e->sched_lock);
	return NULL;
}

int engine_workers_stop(struct engine *e)
{
	struct timespec ts = clock_deadline_ms(STOP_WAIT_MS);
	unsigned busy;

	pthread_mutex_lock(&e->sched_lock);
	e->stopping = 1;
	pthread_cond_broadcast(&e->work);
	while (e->workers) {
		if (pthread_cond_timedwait(&e->quiet, &e->sched_lock, &ts) == ETIMEDOUT)
			break;
	}
	busy = e->workers;
	if (busy)
		log_warn("%u worker(s) still busy at shutdown", busy);
	pthread_mutex_unlock(&e->sched_lock);
	return busy ? -EBUSY : 0;
}

int engine_busy(struct engine *e)
{
	int busy;

	pthread_mutex_lock(&e->sched_lock);
	busy = e->signing.n || e->prep.n || e->queue.n || e->limiter.inflight ||
	       e->workers > e->idle_workers;
	pthread_mutex_unlock(&e->sched_lock);
	return busy;
}
