/*
 * Web identity tokens.  A signing role's token is signed on a worker
 * thread and re-signed once its own refresh point passes (the refresh rule
 * against token_lifetime, with min_validity held to half the lifetime so
 * a short-lived token is not re-signed on every read).  A token-file role
 * reads its file on a thread of its own, because a read can block in the
 * kernel for good (a FIFO is refused without blocking, but a file on a
 * hung FUSE or NFS mount is not); at most one read per role is in flight,
 * and a read that never returns only ever costs that one thread.  Readers
 * wait for either with their wait_timeout.
 */
#include "engine_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "clock.h"
#include "log.h"
#include "tokenfile.h"

#define FILE_READ_STACK (256 * 1024)

struct file_read {
	struct role *role;		/* a reference */
	unsigned long settings_gen;
	char path[PATH_MAX];
};

int token_fresh_locked(const struct role *r, int64_t now_boot)
{
	const struct token *t = r->use ? r->use->tok.current : NULL;

	if (!t || now_boot >= r->use->tok.refresh_boot)
		return 0;
	return !t->expires || clock_wall() < t->expires;
}

/* Ends a token attempt: wakes readers and a renewal waiting for it. */
static void attempt_ended_locked(struct role *r)
{
	r->use->tok.busy = 0;
	r->use->tok.seq++;
	pthread_cond_broadcast(&r->use->changed);
	if (r->engine)
		renew_token_ready_locked(r);
}

static void *file_read_main(void *arg)
{
	struct file_read *fr = arg;
	struct role *r = fr->role;
	struct exchange_error err;
	struct token *t = NULL;
	unsigned long seq;
	char *jwt = NULL;
	int rc, ended;

	rc = tokenfile_read(fr->path, &jwt, &err);
	if (!rc && !(t = token_new(jwt, clock_wall(), 0))) {
		exchange_error_set(&err, "NoMemory", "out of memory");
		rc = -1;
	}
	secret_thread_end();	/* detached: done with OpenSSL */
	pthread_mutex_lock(&r->lock);
	seq = r->use->renewal_seq;
	if (r->use->tok.read == fr && r->settings_gen == fr->settings_gen) {
		r->use->tok.read = NULL;
		if (!rc) {
			struct token *cur = r->use->tok.current;

			/* The same content as before keeps its version, so
			 * the kernel keeps its copy. */
			if (cur && cur->len == t->len && !memcmp(cur->jwt, t->jwt, t->len)) {
				token_unref(t);
			} else {
				token_unref(cur);
				r->use->tok.current = t;
			}
			t = NULL;
			r->use->tok.refresh_boot = clock_boot_ms() + TOKEN_FILE_FRESH_MS;
			token_set_refresh_at(r->use->tok.current,
					     clock_wall() + TOKEN_FILE_FRESH_MS / 1000);
			r->use->tok.failed = 0;
		} else {
			r->use->tok.failed = 1;
			role_set_error_locked(r, &err);
		}
		attempt_ended_locked(r);
	}
	ended = r->use->renewal_seq != seq;	/* a renewal failed for want of it */
	pthread_mutex_unlock(&r->lock);
	if (ended)
		renew_release_dependents(r);
	if (rc)
		log_warn("role %s: token unavailable: %s: %s", r->name, err.code,
			 err.message);
	token_unref(t);
	role_unref(r);
	free(fr);
	return NULL;
}

static void start_file_read_locked(struct role *r)
{
	struct file_read *fr = calloc(1, sizeof(*fr));
	struct exchange_error err;
	pthread_attr_t attr;
	pthread_t tid;
	int rc = -1;

	if (fr) {
		fr->role = role_ref(r);
		fr->settings_gen = r->settings_gen;
		snprintf(fr->path, sizeof(fr->path), "%s",
			 r->cfg->x.web_identity_token_file);
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		pthread_attr_setstacksize(&attr, FILE_READ_STACK);
		r->use->tok.read = fr;
		rc = pthread_create(&tid, &attr, file_read_main, fr);
		pthread_attr_destroy(&attr);
	}
	if (rc) {
		r->use->tok.read = NULL;
		if (fr)
			role_unref(fr->role);
		free(fr);
		exchange_error_set(&err, "NoThread",
				   "cannot start a thread to read the token file");
		r->use->tok.failed = 1;
		role_set_error_locked(r, &err);
		attempt_ended_locked(r);
	}
}

void token_start_locked(struct role *r)
{
	struct engine *e = r->engine;
	int rc;

	if (!e || !r->use || r->use->tok.busy)
		return;
	r->use->tok.busy = 1;
	r->use->tok.busy_since_wall = clock_wall();
	if (r->cfg->x.token_source == CFG_TOKEN_FILE) {
		start_file_read_locked(r);
		return;
	}
	pthread_mutex_lock(&e->sched_lock);
	rc = heap_set(&e->signing, &r->use->tok.node, e->next_seq++);
	if (!rc)
		ensure_worker_sched(e);
	pthread_mutex_unlock(&e->sched_lock);
	if (rc) {
		struct exchange_error err;

		exchange_error_set(&err, "NoMemory", "out of memory");
		r->use->tok.failed = 1;
		role_set_error_locked(r, &err);
		attempt_ended_locked(r);
	}
}

/* The refresh point of a token signed at now, as boot ms. */
static int64_t token_refresh_boot(const struct cfg_schedule *s, int64_t now,
				  int64_t lifetime)
{
	int64_t validity = s->min_validity < lifetime / 2 ? s->min_validity :
							    lifetime / 2;
	int64_t point = engine_refresh_point(now, now + lifetime,
					     s->refresh_fraction, validity, 0, 0);

	return clock_boot_ms() + (point - now) * 1000;
}

void token_sign_run(struct role *r)
{
	struct exchange_error err;
	struct generation *gen;
	const struct cfg_role *c;
	struct token *t = NULL;
	unsigned long sgen;
	char why[256], *jwt = NULL;
	int64_t now = clock_wall();
	unsigned long seq;
	unsigned what = 0;
	uint64_t version = 0;
	int ended;

	pthread_mutex_lock(&r->lock);
	if (!r->use->tok.busy || r->removed || !r->engine) {
		pthread_mutex_unlock(&r->lock);
		return;
	}
	gen = generation_ref(r->gen);
	c = r->cfg;
	sgen = r->settings_gen;
	pthread_mutex_unlock(&r->lock);

	if (!gen->signer) {
		exchange_error_set(&err, "Signer", "no [signer] is configured");
	} else if (signer_sign(gen->signer, c->x.subject, c->x.audience, now,
			       &jwt, why, sizeof(why))) {
		exchange_error_set(&err, "Signer", "signing the token failed: %s",
				   why);
	} else if (!(t = token_new(jwt, now, now + signer_token_lifetime(gen->signer)))) {
		exchange_error_set(&err, "NoMemory", "out of memory");
	}

	pthread_mutex_lock(&r->lock);
	seq = r->use->renewal_seq;
	if (r->settings_gen == sgen && r->use->tok.busy) {
		if (t) {
			token_unref(r->use->tok.current);
			r->use->tok.current = t;
			t = NULL;
			r->use->tok.refresh_boot = token_refresh_boot(
				&c->sched, now, signer_token_lifetime(gen->signer));
			token_set_refresh_at(r->use->tok.current,
					     now + (r->use->tok.refresh_boot - clock_boot_ms()) / 1000);
			r->use->tok.failed = 0;
			timers_arm_locked(r, RT_TOKEN, r->use->tok.refresh_boot);
			what = ENGINE_CHANGED_TOKEN;
			version = r->use->tok.current->version;
		} else {
			r->use->tok.failed = 1;
			role_set_error_locked(r, &err);
			what = ENGINE_CHANGED_STATUS;
			log_warn("role %s: token unavailable: %s: %s", r->name,
				 err.code, err.message);
		}
		attempt_ended_locked(r);
	}
	ended = r->use->renewal_seq != seq;
	pthread_mutex_unlock(&r->lock);
	if (ended)
		renew_release_dependents(r);
	token_unref(t);
	generation_unref(gen);
	role_tell_version(r, what, version);
}

void token_drop_locked(struct role *r)
{
	struct engine *e = r->engine;

	token_unref(r->use->tok.current);
	r->use->tok.current = NULL;
	if (e) {
		pthread_mutex_lock(&e->sched_lock);
		heap_remove(&e->signing, &r->use->tok.node);
		pthread_mutex_unlock(&e->sched_lock);
	}
	/* A read in flight is for settings that are gone: it will find it is
	 * no longer the role's read and drop what it got. */
	r->use->tok.read = NULL;
	r->use->tok.busy = 0;
	r->use->tok.failed = 0;
	r->use->tok.seq++;
	timers_cancel_locked(r, RT_TOKEN);
}

int engine_token(struct role *r, enum engine_wait w, struct token **out)
{
	struct timespec ts;
	unsigned long seq;
	int rc = -EIO;

	*out = NULL;
	pthread_mutex_lock(&r->lock);
	if (r->removed || !r->engine ||
	    r->cfg->x.token_source == CFG_TOKEN_CHAINED) {
		pthread_mutex_unlock(&r->lock);
		return -ENOENT;
	}
	/* A reader of a token file sees the file as it is now (the read is
	 * still made on the token's own thread, and waited for). */
	if (token_fresh_locked(r, clock_boot_ms()) &&
	    (w == ENGINE_PEEK || r->cfg->x.token_source != CFG_TOKEN_FILE)) {
		rc = 0;
	} else if (w == ENGINE_PEEK) {
		rc = r->use && r->use->tok.current && (!r->use->tok.current->expires ||
					clock_wall() < r->use->tok.current->expires) ?
			     0 : -EAGAIN;
	} else if (role_use_locked(r)) {
		log_error("role %s: out of memory for its first use", r->name);
	} else {
		ts = clock_deadline_ms((int64_t)r->cfg->sched.wait_timeout * 1000);
		seq = r->use->tok.seq;
		token_start_locked(r);
		r->use->readers_waiting++;
		while (r->use->tok.seq == seq && !r->removed) {
			if (pthread_cond_timedwait(&r->use->changed, &r->lock, &ts) ==
			    ETIMEDOUT) {
				r->use->last_failed_read = clock_wall();
				snprintf(r->use->failed_read_reason,
					 sizeof(r->use->failed_read_reason),
					 "the token was not ready within wait_timeout (%d s)",
					 r->cfg->sched.wait_timeout);
				break;
			}
		}
		r->use->readers_waiting--;
		if (r->use->tok.seq != seq && !r->use->tok.failed && r->use->tok.current)
			rc = 0;
	}
	if (!rc)
		*out = token_ref(r->use->tok.current);
	pthread_mutex_unlock(&r->lock);
	return rc;
}
