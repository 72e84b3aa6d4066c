/*
 * The engine's roles: their life across reloads, the questions the faces
 * ask (credentials, tokens, snapshots), and the refresh rule.  Renewals
 * themselves are in engine_renew.c, tokens in engine_token.c, time in
 * engine_timers.c.
 */
#include "engine_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "buf.h"
#include "clock.h"
#include "http.h"
#include "log.h"

#define MACHINE_ID_FILE "/etc/machine-id"
/* The longest host identity: host_id's limit (a machine id or a host name
 * is shorter). */
#define HOST_ID_MAX 256

const double engine_latency_bounds[ENGINE_LATENCY_BUCKETS] = {
	0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
};

/* ---- the refresh rule ------------------------------------------------ */

int64_t engine_refresh_point(int64_t obtained, int64_t expires, double fraction,
			     int64_t min_validity, double jitter, double u)
{
	int64_t lifetime = expires - obtained, base, point, floor_at;

	if (lifetime <= 0)
		return obtained;
	base = obtained + (int64_t)((double)lifetime * fraction);
	if (expires - min_validity < base)
		base = expires - min_validity;
	if (base < obtained)
		base = obtained;
	point = base - (int64_t)((double)lifetime * jitter * u);
	floor_at = obtained + lifetime / 20;
	if (point < floor_at)
		point = base < floor_at ? base : floor_at;
	return point;
}

double engine_jitter_u(const char *host_id, const char *role_name)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	uint64_t v = 0;

	if (!HMAC(EVP_sha256(), host_id, (int)strlen(host_id),
		  (const unsigned char *)role_name, strlen(role_name), mac, &len) ||
	    len < 8)
		return 0.5;
	for (int i = 0; i < 8; i++)
		v = v << 8 | mac[i];
	return (double)(v >> 11) / 9007199254740992.0;	/* 53 bits / 2^53 */
}

/* The host's identity for jitter: host_id, else /etc/machine-id, else
 * the host name.  malloc'd, NULL when out of memory. */
static char *host_identity(const struct cfg *cfg)
{
	char buf[256] = "";
	ssize_t n = -1;
	int fd;

	if (cfg->fleet.host_id)
		return strdup(cfg->fleet.host_id);
	fd = open(MACHINE_ID_FILE, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
	}
	if (n > 0) {
		buf[n] = '\0';
		buf[strcspn(buf, "\r\n")] = '\0';
	}
	if (!buf[0] && gethostname(buf, sizeof(buf) - 1))
		buf[0] = '\0';
	return strdup(buf);
}

/* ---- roles ------------------------------------------------------------ */

void role_tell_version(struct role *r, unsigned what, uint64_t version)
{
	struct engine *e = r->engine;

	if (!e || !what || !e->listener || atomic_load(&e->silenced))
		return;
	atomic_fetch_add(&e->telling, 1);
	if (!atomic_load(&e->silenced))
		e->listener(e->listener_arg, r, what, version);
	atomic_fetch_sub(&e->telling, 1);
}

void role_tell(struct role *r, unsigned what)
{
	role_tell_version(r, what, 0);
}

int role_valid_locked(const struct role *r, int64_t now_boot)
{
	return r->current && now_boot + EXPIRY_MARGIN_MS < r->expires_boot &&
	       clock_wall() < r->current->expires;
}

void role_set_error_locked(struct role *r, const struct exchange_error *err)
{
	r->use->error = *err;
	r->use->has_error = 1;
}

void role_count_outcome_locked(struct role *r, const char *code)
{
	for (size_t i = 0; i < r->use->n_outcomes; i++) {
		if (!strcmp(r->use->outcomes[i].code, code)) {
			r->use->outcomes[i].count++;
			return;
		}
	}
	if (r->use->n_outcomes == ENGINE_OUTCOMES) {
		r->use->other_outcomes++;
		return;
	}
	snprintf(r->use->outcomes[r->use->n_outcomes].code,
		 sizeof(r->use->outcomes[r->use->n_outcomes].code), "%s", code);
	r->use->outcomes[r->use->n_outcomes++].count = 1;
}

static struct role *role_new(struct engine *e, struct generation *gen,
			     size_t index)
{
	const struct cfg_role *c = &gen->cfg->roles[index];
	struct role *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	atomic_init(&r->refs, 1);
	memcpy(r->name, c->name, sizeof(r->name));
	pthread_mutex_init(&r->lock, NULL);
	r->engine = e;
	r->gen = generation_ref(gen);
	r->cfg = c;
	r->index = index;
	return r;
}

/* The host identity of r's engine, copied into out. */
static void host_of(struct role *r, char *out, size_t len)
{
	struct engine *e = r->engine;

	out[0] = '\0';
	if (!e)
		return;
	pthread_mutex_lock(&e->sched_lock);
	snprintf(out, len, "%s", e->host_id ? e->host_id : "");
	pthread_mutex_unlock(&e->sched_lock);
}

int role_use_locked(struct role *r)
{
	struct role_use *u;
	pthread_condattr_t ca;
	char host[HOST_ID_MAX + 1];

	if (r->use)
		return 0;
	u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->role = r;
	/* The jitter is worked out here, not for every configured role: an
	 * HMAC each cost 0.2 s of a 100 000-role start. */
	host_of(r, host, sizeof(host));
	u->jitter_u = engine_jitter_u(host, r->name);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&u->changed, &ca);
	pthread_condattr_destroy(&ca);
	heap_node_init(&u->job.node);
	heap_node_init(&u->tok.node);
	for (int k = 0; k < RT_COUNT; k++) {
		heap_node_init(&u->timers[k].node);
		u->timers[k].role = r;
		u->timers[k].kind = (enum role_timer_kind)k;
	}
	r->use = u;
	return 0;
}

/* Frees what r->use holds, and it.  The last reference is gone: nothing
 * can be queued or armed any more. */
static void role_use_free(struct role *r)
{
	struct role_use *u = r->use;

	if (!u)
		return;
	token_unref(u->tok.current);
	token_unref(u->job.token);
	creds_unref(u->job.source);
	secret_free(u->job.carry);
	generation_unref(u->job.gen);
	for (size_t i = 0; i < u->n_dependents; i++)
		role_unref(u->dependents[i]);
	free(u->dependents);
	pthread_cond_destroy(&u->changed);
	free(u);
	r->use = NULL;
}

struct role *role_ref(struct role *r)
{
	if (r)
		atomic_fetch_add(&r->refs, 1);
	return r;
}

void role_unref(struct role *r)
{
	if (!r || atomic_fetch_sub(&r->refs, 1) != 1)
		return;
	/* The last reference: nothing can be queued or armed any more
	 * (queues and timers hold references). */
	creds_unref(r->current);
	role_use_free(r);
	generation_unref(r->gen);
	role_unref(r->source);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

const char *role_name(const struct role *r)
{
	return r->name;
}

const struct cfg_role *role_settings(struct role *r, struct generation **gen)
{
	const struct cfg_role *c = NULL;

	*gen = NULL;
	pthread_mutex_lock(&r->lock);
	if (!r->removed) {
		*gen = generation_ref(r->gen);
		c = r->cfg;
	}
	pthread_mutex_unlock(&r->lock);
	return c;
}

/* Drops what r obtained with settings that are gone: credentials, token,
 * the renewal in flight (its result will be discarded), the hold-off. */
static void role_reset_locked(struct role *r)
{
	r->settings_gen++;
	if (!r->use)
		return;		/* never used: nothing obtained */
	renew_cancel_locked(r);
	token_drop_locked(r);
	creds_unref(r->current);
	r->current = NULL;
	timers_cancel_locked(r, RT_REFRESH);
	timers_cancel_locked(r, RT_EXPIRY);
	r->use->has_error = 0;
	r->use->failures = 0;
	r->use->holdoff_until_boot = 0;
	pthread_cond_broadcast(&r->use->changed);
}

/* Moves the refresh point of the current credentials to the role's
 * schedule (after a reload changed it). */
static void role_reschedule_locked(struct role *r)
{
	const struct cfg_schedule *s = &r->cfg->sched;
	int64_t now_wall = clock_wall(), now_boot = clock_boot_ms(), point;

	if (!r->current)
		return;
	point = engine_refresh_point(r->current->obtained, r->current->expires,
				     s->refresh_fraction, s->min_validity,
				     s->refresh_jitter, r->use->jitter_u);
	r->refresh_wall = point;
	r->refresh_boot = now_boot + (point - now_wall) * 1000;
	creds_set_refresh_at(r->current, point);
	timers_arm_locked(r, RT_REFRESH, r->refresh_boot);
}

/* ---- the public questions ---------------------------------------------- */

struct role *engine_role(struct engine *e, const char *name)
{
	struct role *r = NULL;
	size_t i;

	pthread_mutex_lock(&e->roles_lock);
	if (!name_index_find(&e->names, name, &i))
		r = role_ref(e->roles[i]);
	pthread_mutex_unlock(&e->roles_lock);
	return r;
}

struct generation *engine_generation(struct engine *e)
{
	struct generation *g;

	pthread_mutex_lock(&e->roles_lock);
	g = generation_ref(e->gen);
	pthread_mutex_unlock(&e->roles_lock);
	return g;
}

/* Why a reader gave up waiting, for status. */
static void note_failed_read_locked(struct role *r)
{
	const char *why;

	switch (r->use->job.stage) {
	case JOB_PREP:
	case JOB_WAIT_TOKEN:
		why = "the web identity token was not ready within wait_timeout";
		break;
	case JOB_WAIT_SOURCE:
		why = "the source role had no credentials within wait_timeout";
		break;
	case JOB_QUEUED:
		why = "the request was still queued behind max_sts_rate or max_sts_inflight when wait_timeout passed";
		break;
	case JOB_RUNNING:
	case JOB_WAIT_RETRY:
		why = "the token endpoint did not answer within wait_timeout";
		break;
	default:
		why = r->use->has_error ? "the last renewal failed (see last_error)" :
				     "no credentials could be had";
		r->use->last_failed_read = clock_wall();
		snprintf(r->use->failed_read_reason, sizeof(r->use->failed_read_reason),
			 "%s", why);
		return;
	}
	r->use->last_failed_read = clock_wall();
	snprintf(r->use->failed_read_reason, sizeof(r->use->failed_read_reason), "%s (%d s)",
		 why, r->cfg->sched.wait_timeout);
}

static int in_holdoff_locked(const struct role *r, int64_t now_boot)
{
	return r->use && r->use->failures && now_boot < r->use->holdoff_until_boot;
}

/* Waits for a renewal to give r valid credentials; 0 or -EIO.  Called
 * with r->lock held, returns with it held. */
static int wait_for_credentials_locked(struct role *r)
{
	struct timespec ts = clock_deadline_ms((int64_t)r->cfg->sched.wait_timeout * 1000);
	unsigned long seq, sgen = r->settings_gen;
	int waited = 0, rc = -EIO;

	if (role_use_locked(r)) {
		log_error("role %s: out of memory for its first use", r->name);
		return -EIO;
	}
	seq = r->use->renewal_seq;
	r->use->readers_waiting++;
	for (;;) {
		int64_t now = clock_boot_ms();

		if (role_valid_locked(r, now)) {
			rc = 0;
			break;
		}
		if (r->removed) {
			rc = -ENOENT;
			break;
		}
		/* A reload discarded the renewal (it did not fail): wait, within
		 * the same deadline, for one with the new settings. */
		if (r->settings_gen != sgen) {
			sgen = r->settings_gen;
			seq = r->use->renewal_seq;
			waited = 0;
		}
		/* The renewal this reader waited for ended without them. */
		if (waited && r->use->renewal_seq != seq && r->use->job.stage == JOB_NONE) {
			note_failed_read_locked(r);
			break;
		}
		if (r->use->job.stage == JOB_NONE) {
			if (in_holdoff_locked(r, now)) {
				note_failed_read_locked(r);
				break;
			}
			renew_start_locked(r, 1);
		} else if (!r->use->job.cold) {
			renew_start_locked(r, 1);	/* jumps the queue */
		}
		waited = 1;
		if (pthread_cond_timedwait(&r->use->changed, &r->lock, &ts) == ETIMEDOUT) {
			if (role_valid_locked(r, clock_boot_ms()))
				rc = 0;
			else
				note_failed_read_locked(r);
			break;
		}
	}
	r->use->readers_waiting--;
	return rc;
}

int engine_credentials(struct role *r, enum engine_wait w, struct creds **out)
{
	int64_t now;
	int rc = 0;

	*out = NULL;
	pthread_mutex_lock(&r->lock);
	if (r->removed || !r->engine) {
		pthread_mutex_unlock(&r->lock);
		return -ENOENT;
	}
	now = clock_boot_ms();
	if (role_valid_locked(r, now)) {
		/* (Credentials at hand imply r->use.) */
		if (w == ENGINE_WAIT && now >= r->refresh_boot &&
		    r->use->job.stage == JOB_NONE && !in_holdoff_locked(r, now))
			renew_start_locked(r, 0);
	} else if (w == ENGINE_PEEK) {
		rc = -EAGAIN;
	} else {
		rc = wait_for_credentials_locked(r);
	}
	if (!rc)
		*out = creds_ref(r->current);
	pthread_mutex_unlock(&r->lock);
	return rc;
}

/* ---- snapshots and statistics ------------------------------------------ */

/* With r->use (engine_snapshot answers for a role never used). */
static enum role_state state_locked(const struct role *r, int64_t now)
{
	int busy = r->use->job.stage != JOB_NONE;

	if (role_valid_locked(r, now))
		return busy ? ROLE_RENEWING : r->use->has_error ? ROLE_STALE : ROLE_VALID;
	if (busy)
		return ROLE_RENEWING;
	if (r->use->has_error)
		return ROLE_ERROR;
	return r->current ? ROLE_EXPIRED : ROLE_IDLE;
}

/* With r->use. */
static enum role_waiting waiting_locked(const struct role *r)
{
	switch (r->use->job.stage) {
	case JOB_PREP:
	case JOB_WAIT_TOKEN:
		return WAITING_TOKEN;
	case JOB_WAIT_SOURCE:
		return WAITING_SOURCE;
	case JOB_QUEUED:
		return WAITING_LIMITER;
	case JOB_RUNNING:
		return WAITING_ENDPOINT;
	case JOB_WAIT_RETRY:
		return WAITING_RETRY;
	case JOB_NONE:
		break;
	}
	return r->use->tok.busy ? WAITING_TOKEN : WAITING_NOTHING;
}

int engine_snapshot(struct role *r, struct role_snapshot *s)
{
	int rc = 0;

	memset(s, 0, sizeof(*s));
	pthread_mutex_lock(&r->lock);
	if (r->removed) {
		rc = -ENOENT;
		goto out;
	}
	if (!r->use)
		goto out;	/* never used: idle, all zero */
	s->state = state_locked(r, clock_boot_ms());
	if (r->current) {
		s->expiration = r->current->expires;
		s->next_refresh = r->refresh_wall;
		if (r->current->assumed_role_arn &&
		    !(s->assumed_role_arn = strdup(r->current->assumed_role_arn)))
			rc = -ENOMEM;
	}
	s->last_refresh = r->use->last_refresh;
	s->last_attempt = r->use->last_attempt;
	s->has_error = r->use->has_error;
	s->error = r->use->error;
	s->waiting = waiting_locked(r);
	s->waiting_since = r->use->job.stage != JOB_NONE ? r->use->job.since_wall :
			   r->use->tok.busy ? r->use->tok.busy_since_wall : 0;
	s->attempt = r->use->job.stage != JOB_NONE ? r->use->job.attempt : 0;
	s->in_flight = r->use->job.stage == JOB_RUNNING;
	s->readers_waiting = r->use->readers_waiting;
	s->behind = r->use->job.behind;
	s->last_failed_read = r->use->last_failed_read;
	memcpy(s->failed_read_reason, r->use->failed_read_reason,
	       sizeof(s->failed_read_reason));
	s->renewals = r->use->renewals;
	s->renewal_failures = r->use->renewal_failures;
	s->requests = r->use->requests;
	memcpy(s->outcomes, r->use->outcomes, sizeof(s->outcomes));
	s->n_outcomes = r->use->n_outcomes;
	s->other_outcomes = r->use->other_outcomes;
out:
	pthread_mutex_unlock(&r->lock);
	if (rc)
		role_snapshot_clear(s);
	return rc;
}

void role_snapshot_clear(struct role_snapshot *s)
{
	free(s->assumed_role_arn);
	memset(s, 0, sizeof(*s));
}

const char *role_state_name(enum role_state s)
{
	static const char *const names[] = {
		[ROLE_IDLE] = "idle", [ROLE_VALID] = "valid",
		[ROLE_RENEWING] = "renewing", [ROLE_STALE] = "stale",
		[ROLE_ERROR] = "error", [ROLE_EXPIRED] = "expired",
	};

	return names[s];
}

const char *role_waiting_name(enum role_waiting w)
{
	static const char *const names[] = {
		[WAITING_NOTHING] = "nothing", [WAITING_TOKEN] = "token",
		[WAITING_SOURCE] = "source_role", [WAITING_LIMITER] = "limiter",
		[WAITING_ENDPOINT] = "endpoint", [WAITING_RETRY] = "retry",
	};

	return names[w];
}

void engine_stats(struct engine *e, struct engine_stats *out)
{
	size_t in_use = 0;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&e->roles_lock);
	out->roles_configured = e->n_roles;
	for (size_t i = 0; i < e->n_roles; i++) {
		struct role *r = e->roles[i];

		pthread_mutex_lock(&r->lock);
		in_use += r->current || (r->use && r->use->tok.current);
		pthread_mutex_unlock(&r->lock);
	}
	pthread_mutex_unlock(&e->roles_lock);
	out->roles_in_use = in_use;
	pthread_mutex_lock(&e->sched_lock);
	out->queued = e->queue.n;
	out->behind = e->behind;
	out->in_flight = e->limiter.inflight;
	out->rate_in_force = limiter_rate(&e->limiter, clock_boot_ms());
	out->throttle_events = e->limiter.throttle_events;
	memcpy(out->latency_buckets, e->latency_buckets,
	       sizeof(out->latency_buckets));
	out->latency_sum = e->latency_sum;
	out->latency_count = e->latency_count;
	pthread_mutex_unlock(&e->sched_lock);
}

void engine_each_role(struct engine *e, void (*fn)(void *arg, struct role *r),
		      void *arg)
{
	struct role **copy;
	size_t n;

	pthread_mutex_lock(&e->roles_lock);
	n = e->n_roles;
	copy = malloc((n + 1) * sizeof(*copy));
	for (size_t i = 0; copy && i < n; i++)
		copy[i] = role_ref(e->roles[i]);
	pthread_mutex_unlock(&e->roles_lock);
	if (!copy)
		return;
	for (size_t i = 0; i < n; i++) {
		fn(arg, copy[i]);
		role_unref(copy[i]);
	}
	free(copy);
}

/* ---- life and reload --------------------------------------------------- */

/* What a reload must do to role r (already in the new table at index i). */
static unsigned apply_settings(struct role *r, struct generation *gen,
			       size_t i, const struct signer *old_signer)
{
	const struct cfg_role *c = &gen->cfg->roles[i], *old;
	struct generation *old_gen;
	unsigned what = 0;
	int renew, reschedule;

	pthread_mutex_lock(&r->lock);
	old_gen = r->gen;
	old = r->cfg;
	renew = !cfg_exchange_equal(&old->x, &c->x) ||
		(c->x.token_source == CFG_TOKEN_SIGNED &&
		 !signer_same_tokens(gen->signer, old_signer));
	reschedule = !cfg_schedule_equal(&old->sched, &c->sched);
	if (!cfg_presentation_equal(&old->pres, &c->pres))
		what |= ENGINE_CHANGED_PRESENTATION;
	r->gen = generation_ref(gen);
	r->cfg = c;
	r->index = i;
	if (renew) {
		role_reset_locked(r);
		what |= ENGINE_CHANGED_CREDS | ENGINE_CHANGED_TOKEN |
			ENGINE_CHANGED_STATUS;
	} else if (reschedule) {
		role_reschedule_locked(r);
	}
	pthread_mutex_unlock(&r->lock);
	generation_unref(old_gen);
	if (renew) {
		/* Its renewal was discarded: whoever waited on it asks again. */
		renew_release_dependents(r);
		log_info("role %s: exchange settings changed; renewed on its next read",
			 r->name);
	}
	return what;
}

/* Points each chained role of the table at its source. */
static void link_sources(struct role **roles, const struct cfg *cfg)
{
	for (size_t i = 0; i < cfg->n_roles; i++) {
		struct role *r = roles[i], *old;

		pthread_mutex_lock(&r->lock);
		old = r->source;
		r->source = cfg->roles[i].x.token_source == CFG_TOKEN_CHAINED ?
				    role_ref(roles[cfg->roles[i].source_index]) :
				    NULL;
		pthread_mutex_unlock(&r->lock);
		role_unref(old);
	}
}

/* Retires r: it answers -ENOENT from now on. */
static void retire(struct role *r)
{
	struct role *source;

	pthread_mutex_lock(&r->lock);
	r->removed = 1;
	role_reset_locked(r);
	source = r->source;
	r->source = NULL;
	pthread_mutex_unlock(&r->lock);
	renew_release_dependents(r);
	role_unref(source);
	role_tell(r, ENGINE_CHANGED_REMOVED | ENGINE_CHANGED_CREDS |
		  ENGINE_CHANGED_TOKEN | ENGINE_CHANGED_STATUS);
	log_info("role %s: removed", r->name);
}

struct reload_plan {
	struct role **roles;		/* the new table */
	struct name_index names;
	unsigned char *kept;		/* per old role */
	unsigned char *fresh;		/* per new role: created by this reload */
	char *host_id;
};

static void plan_free(struct reload_plan *p, size_t n_new)
{
	for (size_t i = 0; p->roles && p->fresh && i < n_new; i++)
		if (p->fresh[i] && p->roles[i]) {
			p->roles[i]->engine = NULL;
			role_unref(p->roles[i]);
		}
	free(p->roles);
	name_index_free(&p->names);
	free(p->kept);
	free(p->fresh);
	free(p->host_id);
}

/* Builds the new table without changing anything.  0 or -ENOMEM. */
static int plan_reload(struct engine *e, struct generation *gen,
		       struct reload_plan *p)
{
	const struct cfg *cfg = gen->cfg;
	size_t i, old;

	memset(p, 0, sizeof(*p));
	p->roles = calloc(cfg->n_roles + 1, sizeof(*p->roles));
	p->kept = calloc(e->n_roles + 1, 1);
	p->fresh = calloc(cfg->n_roles + 1, 1);
	p->host_id = host_identity(cfg);
	if (!p->roles || !p->kept || !p->fresh || !p->host_id)
		return -ENOMEM;
	for (i = 0; i < cfg->n_roles; i++) {
		const char *name = cfg->roles[i].name;

		if (!name_index_find(&e->names, name, &old)) {
			p->roles[i] = e->roles[old];
			p->kept[old] = 1;
		} else {
			p->roles[i] = role_new(e, gen, i);
			p->fresh[i] = 1;
			if (!p->roles[i])
				return -ENOMEM;
		}
		if (name_index_add(&p->names, p->roles[i]->name, i, NULL))
			return -ENOMEM;
	}
	return 0;
}

int engine_reload(struct engine *e, struct generation *gen)
{
	struct reload_plan p = { 0 };
	struct signer *old_signer;
	struct generation *old_gen;
	struct role **old_roles, **told;
	unsigned *what;
	size_t n_old, n_new = gen->cfg->n_roles;
	int host_changed;

	pthread_mutex_lock(&e->roles_lock);
	what = calloc(n_new + 1, sizeof(*what));
	told = calloc(n_new + 1, sizeof(*told));
	if (!what || !told || plan_reload(e, gen, &p)) {
		plan_free(&p, n_new);
		pthread_mutex_unlock(&e->roles_lock);
		free(what);
		free(told);
		log_error("reload: out of memory; the configuration in force is unchanged");
		return -ENOMEM;
	}
	/* From here on nothing fails. */
	old_gen = e->gen;
	old_signer = old_gen->signer;
	host_changed = strcmp(p.host_id, e->host_id) != 0;
	/* The new identity first: a role used from now on takes it. */
	pthread_mutex_lock(&e->sched_lock);
	free(e->host_id);
	e->host_id = p.host_id;
	p.host_id = NULL;
	pthread_mutex_unlock(&e->sched_lock);
	for (size_t i = 0; i < n_new; i++) {
		struct role *r = p.roles[i];

		if (!p.fresh[i]) {
			what[i] = apply_settings(r, gen, i, old_signer);
			pthread_mutex_lock(&r->lock);
			if (host_changed && r->use) {
				/* Another host identity: other refresh points. */
				r->use->jitter_u = engine_jitter_u(e->host_id, r->name);
				role_reschedule_locked(r);
			}
			pthread_mutex_unlock(&r->lock);
		}
		told[i] = role_ref(r);
	}
	link_sources(p.roles, gen->cfg);
	old_roles = e->roles;
	n_old = e->n_roles;
	e->roles = p.roles;
	e->n_roles = n_new;
	name_index_free(&e->names);
	e->names = p.names;
	e->gen = generation_ref(gen);
	pthread_mutex_unlock(&e->roles_lock);

	pthread_mutex_lock(&e->sched_lock);
	limiter_configure(&e->limiter, gen->cfg->fleet.max_sts_rate,
			  gen->cfg->fleet.max_sts_inflight, clock_boot_ms());
	pthread_mutex_unlock(&e->sched_lock);
	sched_wake_workers(e);

	for (size_t i = 0; i < n_new; i++) {
		role_tell(told[i], what[i]);
		role_unref(told[i]);
	}
	for (size_t k = 0; k < n_old; k++) {
		if (!p.kept[k]) {
			retire(old_roles[k]);
			role_unref(old_roles[k]);
		}
	}
	free(p.kept);
	free(p.fresh);
	free(old_roles);
	free(what);
	free(told);
	generation_unref(old_gen);
	return 0;
}

static int engine_init_table(struct engine *e, struct generation *gen)
{
	const struct cfg *cfg = gen->cfg;

	e->host_id = host_identity(cfg);
	e->roles = calloc(cfg->n_roles + 1, sizeof(*e->roles));
	if (!e->host_id || !e->roles)
		return -ENOMEM;
	for (size_t i = 0; i < cfg->n_roles; i++) {
		e->roles[i] = role_new(e, gen, i);
		if (!e->roles[i])
			return -ENOMEM;
		e->n_roles++;
		if (name_index_add(&e->names, e->roles[i]->name, i, NULL))
			return -ENOMEM;
	}
	link_sources(e->roles, cfg);
	e->gen = generation_ref(gen);
	return 0;
}

struct engine *engine_new(struct generation *gen, const struct engine_options *opt)
{
	struct engine *e = calloc(1, sizeof(*e));
	pthread_condattr_t ca;

	if (!e)
		return NULL;
	pthread_mutex_init(&e->roles_lock, NULL);
	pthread_mutex_init(&e->sched_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&e->work, &ca);
	pthread_cond_init(&e->quiet, &ca);
	pthread_condattr_destroy(&ca);
	e->wake_fd = e->step_fd = e->boot_fd = -1;
	if (opt) {
		e->listener = opt->listener;
		e->listener_arg = opt->listener_arg;
	}
	limiter_init(&e->limiter, gen->cfg->fleet.max_sts_rate,
		     gen->cfg->fleet.max_sts_inflight, clock_boot_ms());
	if (engine_init_table(e, gen) ||
	    (!(opt && opt->no_timer_thread) && timers_start(e))) {
		engine_free(e);
		return NULL;
	}
	return e;
}

void engine_stop(struct engine *e)
{
	if (e->stop_called)
		return;
	e->stop_called = 1;
	timers_stop(e);
	http_abort_all();
	e->stuck_workers = engine_workers_stop(e) != 0;
	/* The listener goes quiet only once no engine thread can call it;
	 * a worker still stuck in a request when the wait ends is silenced
	 * here too (it checks before calling). */
	atomic_store(&e->silenced, 1);
	while (atomic_load(&e->telling))
		usleep(1000);
}

int engine_threads_left(const struct engine *e)
{
	return e && e->stuck_workers;
}

void engine_free(struct engine *e)
{
	if (!e)
		return;
	engine_stop(e);
	if (e->stuck_workers)
		return;	/* they still point into the engine */
	pthread_mutex_lock(&e->roles_lock);
	for (size_t i = 0; i < e->n_roles; i++) {
		struct role *r = e->roles[i];

		pthread_mutex_lock(&r->lock);
		role_reset_locked(r);
		r->engine = NULL;
		pthread_mutex_unlock(&r->lock);
	}
	pthread_mutex_unlock(&e->roles_lock);
	for (size_t i = 0; i < e->n_roles; i++)
		renew_release_dependents(e->roles[i]);
	for (size_t i = 0; i < e->n_roles; i++) {
		struct role *source = e->roles[i]->source;

		e->roles[i]->source = NULL;
		role_unref(source);
	}
	for (size_t i = 0; i < e->n_roles; i++)
		role_unref(e->roles[i]);
	free(e->roles);
	name_index_free(&e->names);
	heap_free(&e->timers);
	heap_free(&e->signing);
	heap_free(&e->prep);
	heap_free(&e->queue);
	generation_unref(e->gen);
	free(e->host_id);
	pthread_cond_destroy(&e->work);
	pthread_cond_destroy(&e->quiet);
	pthread_mutex_destroy(&e->sched_lock);
	pthread_mutex_destroy(&e->roles_lock);
	free(e);
}

int engine_reload_faces(struct engine *e, struct generation *gen,
			const struct engine_face *faces, size_t n)
{
	void *prepared[ENGINE_FACES_MAX];
	size_t i;
	int r = -ENOMEM;

	if (n > ENGINE_FACES_MAX)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		prepared[i] = faces[i].prepare(faces[i].arg, gen);
		if (!prepared[i])
			goto undo;
	}
	r = engine_reload(e, gen);
	if (r)
		goto undo;
	for (i = 0; i < n; i++)
		faces[i].commit(faces[i].arg, prepared[i]);
	return 0;
undo:
	while (i-- > 0)
		faces[i].discard(faces[i].arg, prepared[i]);
	return r;
}
