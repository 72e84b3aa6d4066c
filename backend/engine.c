#include "engine.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdarg.h>

#include "buf.h"
#include "clock.h"
#include "log.h"

/* Credentials with less than this left are treated as expired: a consumer
 * needs a moment to use them. */
#define EXPIRY_MARGIN_MS 1000
/* After a failed renewal, readers without valid credentials get EIO at once
 * and no new exchange starts for this long (doubling, capped), so a broken
 * STS is not hammered by a read loop. */
#define RETRY_HOLDOFF_MIN_MS 1000
#define RETRY_HOLDOFF_MAX_MS 8000
#define CONNECT_TIMEOUT_MS 5000
#define TOKEN_FILE_MAX 20000
/* engine_free waits this long for renewals in flight. */
#define SHUTDOWN_WAIT_MS 3000

struct creds_box {
	atomic_int refs;
	struct creds c;
};

struct role_state {
	struct engine *engine;
	size_t index;			/* its slot */
	/* Swapped by engine_reload; the old one stays alive a while. */
	_Atomic(const struct cfg_role *) cfg;
	_Atomic size_t source_slot;	/* CFG_TOKEN_CHAINED */
	atomic_int retired;		/* no longer configured */

	pthread_mutex_t lock;
	pthread_cond_t renewed;		/* broadcast when a renewal ends */

	/* Everything below is protected by lock. */
	struct creds_box *current;	/* NULL until the first success */
	int64_t expires_mono;		/* current's expiry, monotonic ms */
	int64_t refresh_mono;		/* current's refresh point, monotonic ms */
	int64_t refresh_wall;		/* the same, wall seconds, for status */
	int renewing;			/* a renewal thread is running */
	unsigned long settings_gen;	/* bumped by a reload that changes the role */
	unsigned long renewal_seq;	/* renewals ended, success or not */
	unsigned long renewals;		/* successful renewals */
	unsigned long sts_calls;	/* HTTP requests sent to STS */
	unsigned failures;		/* consecutive failed renewals */
	int64_t holdoff_until_mono;	/* no reader-started renewal before */
	int64_t last_refresh;		/* wall seconds, 0 never */
	int64_t last_attempt;		/* wall seconds, 0 never */
	int has_error;			/* the last renewal failed */
	struct sts_error last_error;

	char *token;			/* signed token cache (CFG_TOKEN_SIGNED) */
	int64_t token_exp;		/* wall seconds */
	int64_t token_refresh_mono;
	size_t token_size;		/* length of its signed tokens, 0 unknown */

	/* Time events already told to the listener for the current
	 * credentials / token (reset when they are replaced). */
	int refresh_told;
	int expiry_told;
	int token_told;
};

static int valid_locked(const struct role_state *r, int64_t now_mono);

struct engine {
	_Atomic(struct signer *) signer;
	/* slots[0 .. n_slots) are allocated; slots are never freed or
	 * reused while the engine lives.  The array is sized once. */
	struct role_state **slots;
	_Atomic size_t n_slots;
	size_t cap_slots;
	pthread_mutex_t reload_lock;	/* one reload at a time */

	pthread_mutex_t workers_lock;
	pthread_cond_t workers_done;
	unsigned workers;		/* renewal threads running */

	/* The timer thread tells the listener when time points pass. */
	engine_listener_fn listener;	/* set once, before any read */
	void *listener_arg;
	pthread_t timer;
	int timer_running;
	pthread_mutex_t timer_lock;
	pthread_cond_t timer_wake;	/* new deadlines, or stop */
	int timer_stop;			/* protected by timer_lock */
};

/* Tells the listener that role r's files may show something new.  Never
 * called with a role lock held. */
static void tell(struct role_state *r, unsigned what)
{
	struct engine *e = r->engine;

	if (e->listener)
		e->listener(e->listener_arg, r->index, what);
}

/* New deadlines exist: let the timer thread recompute its sleep. */
static void wake_timer(struct engine *e)
{
	if (!e->timer_running)
		return;
	pthread_mutex_lock(&e->timer_lock);
	pthread_cond_signal(&e->timer_wake);
	pthread_mutex_unlock(&e->timer_lock);
}

static struct creds_box *box_of(struct creds *c)
{
	return (struct creds_box *)((char *)c - offsetof(struct creds_box, c));
}

void creds_unref(struct creds *c)
{
	struct creds_box *b;

	if (!c)
		return;
	b = box_of(c);
	if (atomic_fetch_sub(&b->refs, 1) == 1) {
		sts_credentials_clear(&b->c.sts);
		free(b);
	}
}

int64_t engine_refresh_point(int64_t obtained, int64_t expires,
			     double fraction, int64_t min_validity)
{
	int64_t lifetime = expires - obtained;
	int64_t by_fraction, by_validity, point;

	if (lifetime <= 0)
		return obtained;
	by_fraction = obtained + (int64_t)((double)lifetime * fraction);
	by_validity = expires - min_validity;
	point = by_fraction < by_validity ? by_fraction : by_validity;
	return point < obtained ? obtained : point;
}

static int64_t holdoff_ms(unsigned failures)
{
	int64_t ms = RETRY_HOLDOFF_MIN_MS;

	while (failures-- > 1 && ms < RETRY_HOLDOFF_MAX_MS)
		ms *= 2;
	return ms < RETRY_HOLDOFF_MAX_MS ? ms : RETRY_HOLDOFF_MAX_MS;
}

static void set_error(struct sts_error *err, const char *code,
		      const char *fmt, ...) PRINTF_LIKE(3, 4);

static void set_error(struct sts_error *err, const char *code,
		      const char *fmt, ...)
{
	va_list ap;

	memset(err, 0, sizeof(*err));
	snprintf(err->code, sizeof(err->code), "%s", code);
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
}

/* ---- tokens ---------------------------------------------------------- */

/* Reads a web identity token file afresh.  Returns a malloc'd token or
 * NULL with err filled.  The content is used as is, as botocore does. */
static char *read_token_file(const char *path, struct sts_error *err)
{
	struct buf b;
	char chunk[4096];
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		set_error(err, "TokenFile", "cannot read web_identity_token_file %s: %s",
			  path, strerror(errno));
		return NULL;
	}
	buf_init(&b, TOKEN_FILE_MAX);
	while ((n = read(fd, chunk, sizeof(chunk))) > 0) {
		if (buf_append(&b, chunk, (size_t)n)) {
			OPENSSL_cleanse(chunk, sizeof(chunk));
			close(fd);
			set_error(err, "TokenFile",
				  "web_identity_token_file %s is larger than %d bytes",
				  path, TOKEN_FILE_MAX);
			return NULL;
		}
	}
	OPENSSL_cleanse(chunk, sizeof(chunk));
	close(fd);
	if (n < 0) {
		buf_free(&b);
		set_error(err, "TokenFile", "cannot read web_identity_token_file %s: %s",
			  path, strerror(errno));
		return NULL;
	}
	if (b.len < 4) {
		buf_free(&b);
		set_error(err, "TokenFile", "web_identity_token_file %s is empty",
			  path);
		return NULL;
	}
	return buf_steal(&b);
}

/* The signed token of r, re-signed once its refresh point has passed.
 * Called with r->lock held.  Returns a malloc'd copy or NULL with err. */
static char *signed_token_locked(struct role_state *r, struct sts_error *err)
{
	struct engine *e = r->engine;
	struct signer *signer = e->signer;
	int64_t now_mono = clock_mono_ms(), now, lifetime, point, validity;
	char *jwt, why[384];

	if (r->token && now_mono < r->token_refresh_mono)
		return secret_strdup(r->token);
	if (!signer) {
		set_error(err, "Signer", "no [signer] is configured");
		return NULL;
	}
	now = clock_wall();
	if (signer_sign(signer, r->cfg->subject, NULL, now, &jwt, why,
			sizeof(why))) {
		set_error(err, "Signer", "signing the token for role %s failed: %s",
			  r->cfg->name, why);
		return NULL;
	}
	lifetime = signer_token_lifetime(signer);
	/* The same rule as for credentials, with min_validity held to half
	 * the token's lifetime so a short-lived token is not re-signed on
	 * every read. */
	validity = r->cfg->min_validity < lifetime / 2 ? r->cfg->min_validity
						       : lifetime / 2;
	point = engine_refresh_point(now, now + lifetime,
				     r->cfg->refresh_fraction, validity);
	secret_free(r->token);
	r->token = jwt;
	r->token_exp = now + lifetime;
	r->token_refresh_mono = now_mono + (point - now) * 1000;
	r->token_told = 0;
	wake_timer(e);
	return secret_strdup(r->token);
}

int engine_get_token(struct engine *e, size_t i, char **out)
{
	struct role_state *r = e->slots[i];
	struct sts_error err;
	char *tok = NULL;

	*out = NULL;
	switch (r->cfg->token_source) {
	case CFG_TOKEN_CHAINED:
		return -ENOENT;
	case CFG_TOKEN_FILE:
		tok = read_token_file(r->cfg->web_identity_token_file, &err);
		break;
	case CFG_TOKEN_SIGNED:
		pthread_mutex_lock(&r->lock);
		tok = signed_token_locked(r, &err);
		pthread_mutex_unlock(&r->lock);
		break;
	}
	if (!tok) {
		log_warn("role %s: token unavailable: %s: %s", r->cfg->name,
			 err.code, err.message);
		pthread_mutex_lock(&r->lock);
		r->last_error = err;
		r->has_error = 1;
		pthread_mutex_unlock(&r->lock);
		return -EIO;
	}
	*out = tok;
	return 0;
}

/* ---- renewal --------------------------------------------------------- */

/* One exchange for r, no lock held.  Returns 0 with *got, or -1 with err. */
static int exchange(struct role_state *r, struct sts_credentials *got,
		    struct sts_error *err, unsigned long *calls)
{
	const struct cfg_role *c = r->cfg;
	struct sts_request req = {
		.endpoint = c->sts_endpoint,
		.region = c->region,
		.ca_file = c->ca_file,
		.role_arn = c->role_arn,
		.session_name = c->session_name,
		.duration_seconds = c->duration_seconds,
		.extras = c,
		.connect_timeout_ms = CONNECT_TIMEOUT_MS,
		.timeout_ms = c->wait_timeout > 2 ? c->wait_timeout * 1000L : 2000L,
	};
	struct creds *source = NULL;
	char *token = NULL;
	int rc;

	if (c->token_source == CFG_TOKEN_CHAINED) {
		if (engine_get_credentials(r->engine, r->source_slot, &source)) {
			set_error(err, "SourceRole",
				  "source role %s has no valid credentials (see its status)",
				  c->source_role);
			return -1;
		}
		req.action = STS_ASSUME_ROLE;
		req.source = &source->sts;
	} else {
		if (c->token_source == CFG_TOKEN_FILE) {
			token = read_token_file(c->web_identity_token_file, err);
		} else {
			pthread_mutex_lock(&r->lock);
			token = signed_token_locked(r, err);
			pthread_mutex_unlock(&r->lock);
		}
		if (!token)
			return -1;
		req.action = STS_ASSUME_ROLE_WITH_WEB_IDENTITY;
		req.web_identity_token = token;
	}
	rc = sts_exchange(&req, got, err, calls);
	secret_free(token);
	creds_unref(source);
	return rc;
}

static void worker_exit(struct engine *e)
{
	pthread_mutex_lock(&e->workers_lock);
	e->workers--;
	pthread_cond_broadcast(&e->workers_done);
	pthread_mutex_unlock(&e->workers_lock);
}

/* The renewal thread: one exchange, then publish the result and wake
 * every reader waiting on the role. */
static void *renewal_main(void *arg)
{
	struct role_state *r = arg;
	struct engine *e = r->engine;
	struct sts_credentials got = {0};
	struct sts_error err = {0};
	struct creds_box *box = NULL, *old = NULL;
	unsigned long calls = 0;
	int64_t wall, mono, point;
	char when[21], next[21];
	unsigned what = ENGINE_CHANGED_STATUS;
	int rc;

	unsigned long gen;

	pthread_mutex_lock(&r->lock);
	gen = r->settings_gen;
	pthread_mutex_unlock(&r->lock);
	tell(r, ENGINE_CHANGED_STATUS);	/* status shows "renewing" */
	rc = exchange(r, &got, &err, &calls);
	wall = clock_wall();
	mono = clock_mono_ms();
	if (rc == 0 && got.expiration <= wall) {
		set_error(&err, "Expired",
			  "STS returned credentials that have already expired (check the clock)");
		sts_credentials_clear(&got);
		rc = -1;
	}
	if (rc == 0) {
		box = calloc(1, sizeof(*box));
		if (!box) {
			set_error(&err, "NoMemory", "out of memory");
			sts_credentials_clear(&got);
			rc = -1;
		}
	}

	pthread_mutex_lock(&r->lock);
	r->sts_calls += calls;
	r->last_attempt = wall;
	if (gen != r->settings_gen) {
		/* The role was changed or removed meanwhile: this result
		 * answers settings that are gone. */
		if (rc == 0)
			sts_credentials_clear(&got);
		free(box);
		box = NULL;
		rc = -1;
		set_error(&err, "Reloaded", "the role changed during the renewal");
	} else if (rc == 0) {
		atomic_init(&box->refs, 1);
		box->c.sts = got;
		box->c.obtained = wall;
		point = engine_refresh_point(wall, got.expiration,
					     r->cfg->refresh_fraction,
					     r->cfg->min_validity);
		old = r->current;
		if (valid_locked(r, mono))
			what |= ENGINE_CHANGED_CREDS;
		if (r->cfg->token_source == CFG_TOKEN_SIGNED)
			what |= ENGINE_CHANGED_TOKEN;
		r->current = box;
		r->expires_mono = mono + (got.expiration - wall) * 1000;
		r->refresh_mono = mono + (point - wall) * 1000;
		r->refresh_wall = point;
		r->renewals++;
		r->refresh_told = 0;
		r->expiry_told = 0;
		r->failures = 0;
		r->has_error = 0;
		r->last_refresh = wall;
		clock_format_rfc3339(got.expiration, when);
		clock_format_rfc3339(point, next);
	} else {
		r->failures++;
		r->holdoff_until_mono = mono + holdoff_ms(r->failures);
		r->has_error = 1;
		r->last_error = err;
	}
	r->renewing = 0;
	r->renewal_seq++;
	pthread_cond_broadcast(&r->renewed);
	pthread_mutex_unlock(&r->lock);

	if (rc == 0)
		log_info("role %s: renewed (%lu STS call%s), expires %s, next refresh %s",
			 r->cfg->name, calls, calls == 1 ? "" : "s", when, next);
	else
		log_warn("role %s: renewal failed: %s: %s", r->cfg->name,
			 err.code, err.message);
	if (old)
		creds_unref(&old->c);
	wake_timer(e);
	tell(r, what);
	worker_exit(e);
	return NULL;
}

/* Starts the renewal thread unless one runs.  Called with r->lock held. */
static void start_renewal_locked(struct role_state *r)
{
	struct engine *e = r->engine;
	pthread_attr_t attr;
	pthread_t tid;

	if (r->renewing)
		return;
	r->renewing = 1;
	pthread_mutex_lock(&e->workers_lock);
	e->workers++;
	pthread_mutex_unlock(&e->workers_lock);

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&tid, &attr, renewal_main, r) != 0) {
		r->renewing = 0;
		r->has_error = 1;
		set_error(&r->last_error, "NoThread", "cannot start a renewal thread");
		worker_exit(e);
	}
	pthread_attr_destroy(&attr);
}

static int valid_locked(const struct role_state *r, int64_t now_mono)
{
	return r->current && now_mono + EXPIRY_MARGIN_MS < r->expires_mono &&
	       clock_wall() < r->current->c.sts.expiration;
}

int engine_get_credentials(struct engine *e, size_t i, struct creds **out)
{
	struct role_state *r = e->slots[i];
	int64_t now = clock_mono_ms();
	int64_t deadline = now + (int64_t)r->cfg->wait_timeout * 1000;
	struct timespec ts = clock_deadline_ms(deadline - now);
	unsigned long seq;
	int waited = 0;

	*out = NULL;
	pthread_mutex_lock(&r->lock);
	seq = r->renewal_seq;
	for (;;) {
		if (valid_locked(r, now)) {
			/* Background renewals respect the failure hold-off
			 * too, so a read loop cannot hammer a failing STS. */
			if (now >= r->refresh_mono &&
			    !(r->failures && now < r->holdoff_until_mono))
				start_renewal_locked(r);
			atomic_fetch_add(&r->current->refs, 1);
			*out = &r->current->c;
			pthread_mutex_unlock(&r->lock);
			return 0;
		}
		/* A renewal we waited for ended without valid credentials. */
		if (waited && r->renewal_seq != seq && !r->renewing)
			break;
		if (!r->renewing) {
			if (r->failures && now < r->holdoff_until_mono)
				break;
			start_renewal_locked(r);
		}
		if (now >= deadline)
			break;
		waited = 1;
		if (pthread_cond_timedwait(&r->renewed, &r->lock, &ts) == ETIMEDOUT)
			now = deadline;
		else
			now = clock_mono_ms();
	}
	pthread_mutex_unlock(&r->lock);
	return -EIO;
}

int engine_peek_credentials(struct engine *e, size_t i, struct creds **out)
{
	struct role_state *r = e->slots[i];
	int rc = -EAGAIN;

	*out = NULL;
	pthread_mutex_lock(&r->lock);
	if (valid_locked(r, clock_mono_ms())) {
		atomic_fetch_add(&r->current->refs, 1);
		*out = &r->current->c;
		rc = 0;
	}
	pthread_mutex_unlock(&r->lock);
	return rc;
}

int engine_peek_token(struct engine *e, size_t i, char **out)
{
	struct role_state *r = e->slots[i];
	int rc = -EAGAIN;

	*out = NULL;
	pthread_mutex_lock(&r->lock);
	if (r->token && clock_mono_ms() < r->token_refresh_mono) {
		*out = secret_strdup(r->token);
		rc = *out ? 0 : -ENOMEM;
	}
	pthread_mutex_unlock(&r->lock);
	return rc;
}

/* ---- time events ----------------------------------------------------- */

/* The time points of r not yet told: due ones are marked told and make
 * *due true; *next is lowered to the earliest one still ahead. */
static void role_time_points(struct role_state *r, int64_t now,
			     unsigned *due, int64_t *next)
{
	struct {
		int *told;
		int64_t at;
		int armed;
		unsigned what;
	} points[] = {
		{&r->refresh_told, r->refresh_mono, r->current != NULL,
		 ENGINE_CHANGED_CREDS},
		{&r->expiry_told, r->expires_mono - EXPIRY_MARGIN_MS,
		 r->current != NULL, ENGINE_CHANGED_CREDS | ENGINE_CHANGED_STATUS},
		{&r->token_told, r->token_refresh_mono, r->token != NULL,
		 ENGINE_CHANGED_TOKEN},
	};

	*due = 0;
	for (size_t k = 0; k < ARRAY_SIZE(points); k++) {
		if (!points[k].armed || *points[k].told)
			continue;
		if (now >= points[k].at) {
			*points[k].told = 1;
			*due |= points[k].what;
		} else if (points[k].at < *next) {
			*next = points[k].at;
		}
	}
}

/* Tells the listener about refresh points and expiries as they pass, so
 * cached copies of the files (the kernel's page cache) never outlive the
 * credentials they show.  Sleeps until the earliest pending point, at most
 * a second at a time. */
static void *timer_main(void *arg)
{
	struct engine *e = arg;

	for (;;) {
		int64_t now = clock_mono_ms(), next = now + 1000;
		struct timespec ts;

		size_t n = e->n_slots;

		for (size_t i = 0; i < n; i++) {
			struct role_state *r = e->slots[i];
			unsigned due;

			if (r->retired)
				continue;
			pthread_mutex_lock(&r->lock);
			role_time_points(r, now, &due, &next);
			pthread_mutex_unlock(&r->lock);
			if (due)
				tell(r, due);
		}
		ts = clock_deadline_ms(next > now ? next - now : 1);
		pthread_mutex_lock(&e->timer_lock);
		if (!e->timer_stop)
			pthread_cond_timedwait(&e->timer_wake, &e->timer_lock, &ts);
		if (e->timer_stop) {
			pthread_mutex_unlock(&e->timer_lock);
			return NULL;
		}
		pthread_mutex_unlock(&e->timer_lock);
	}
}

int engine_set_listener(struct engine *e, engine_listener_fn fn, void *arg)
{
	e->listener = fn;
	e->listener_arg = arg;
	if (e->timer_running)
		return 0;
	if (pthread_create(&e->timer, NULL, timer_main, e))
		return -1;
	e->timer_running = 1;
	return 0;
}

size_t engine_token_size(struct engine *e, size_t i)
{
	struct role_state *r = e->slots[i];
	size_t n;
	char *jwt;

	struct signer *signer = e->signer;

	if (r->cfg->token_source != CFG_TOKEN_SIGNED || !signer)
		return 0;
	pthread_mutex_lock(&r->lock);
	if (!r->token_size && r->token) {
		r->token_size = strlen(r->token);
	} else if (!r->token_size &&
		   signer_sign(signer, r->cfg->subject, NULL, clock_wall(), &jwt,
			       NULL, 0) == 0) {
		r->token_size = strlen(jwt);
		secret_free(jwt);
	}
	n = r->token_size;
	pthread_mutex_unlock(&r->lock);
	return n;
}

unsigned long engine_sts_calls(struct engine *e, size_t i)
{
	struct role_state *r = e->slots[i];
	unsigned long n;

	pthread_mutex_lock(&r->lock);
	n = r->sts_calls;
	pthread_mutex_unlock(&r->lock);
	return n;
}

/* ---- status ---------------------------------------------------------- */

static json_t *time_or_null(int64_t t)
{
	char s[21];

	if (!t)
		return json_null();
	clock_format_rfc3339(t, s);
	return json_string(s);
}

static const char *source_name(enum cfg_token_source s)
{
	switch (s) {
	case CFG_TOKEN_SIGNED:
		return "signed";
	case CFG_TOKEN_FILE:
		return "token_file";
	case CFG_TOKEN_CHAINED:
		return "source_role";
	}
	return "unknown";
}

char *engine_status(struct engine *e, size_t i)
{
	struct role_state *r = e->slots[i];
	int64_t now_mono = clock_mono_ms();
	const char *state;
	json_t *o, *err = NULL;
	char *text = NULL;
	int64_t expiration = 0, next = 0;

	o = json_object();
	if (!o)
		return NULL;
	pthread_mutex_lock(&r->lock);
	if (valid_locked(r, now_mono))
		state = r->renewing ? "renewing" : r->has_error ? "stale" : "valid";
	else if (r->renewing)
		state = "renewing";
	else if (r->has_error)
		state = "error";
	else if (r->current)
		state = "expired";
	else
		state = "idle";
	if (r->current) {
		expiration = r->current->c.sts.expiration;
		next = r->refresh_wall;
	}
	if (r->has_error) {
		err = json_pack("{s:s, s:s, s:i}", "code", r->last_error.code,
				"message", r->last_error.message, "http_status",
				r->last_error.http_status);
	}
	json_object_set_new(o, "role", json_string(r->cfg->name));
	json_object_set_new(o, "state", json_string(state));
	json_object_set_new(o, "role_arn", json_string(r->cfg->role_arn));
	json_object_set_new(o, "token_source",
			    json_string(source_name(r->cfg->token_source)));
	if (r->cfg->token_source == CFG_TOKEN_CHAINED)
		json_object_set_new(o, "source_role",
				    json_string(r->cfg->source_role));
	json_object_set_new(o, "session_name", json_string(r->cfg->session_name));
	json_object_set_new(o, "sts_endpoint", json_string(r->cfg->sts_endpoint));
	json_object_set_new(o, "duration_seconds",
			    json_integer(r->cfg->duration_seconds));
	if (r->cfg->token_source == CFG_TOKEN_CHAINED)
		json_object_set_new(o, "note", json_string(
			"role chaining: STS caps chained sessions at 3600 seconds"));
	if (r->current && r->current->c.sts.assumed_role_arn)
		json_object_set_new(o, "assumed_role_arn",
				    json_string(r->current->c.sts.assumed_role_arn));
	json_object_set_new(o, "expiration", time_or_null(expiration));
	json_object_set_new(o, "next_refresh", time_or_null(next));
	json_object_set_new(o, "last_refresh", time_or_null(r->last_refresh));
	json_object_set_new(o, "last_attempt", time_or_null(r->last_attempt));
	json_object_set_new(o, "last_error", err ? err : json_null());
	json_object_set_new(o, "renewals", json_integer((json_int_t)r->renewals));
	json_object_set_new(o, "sts_calls", json_integer((json_int_t)r->sts_calls));
	pthread_mutex_unlock(&r->lock);

	text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (text) {
		size_t n = strlen(text);
		char *t = realloc(text, n + 2);

		if (!t) {
			free(text);
			return NULL;
		}
		t[n] = '\n';
		t[n + 1] = '\0';
		text = t;
	}
	return text;
}

/* ---- life ------------------------------------------------------------ */

/* A fresh role in slot i; NULL when out of memory. */
static struct role_state *role_new(struct engine *e, size_t i,
				   const struct cfg_role *c)
{
	struct role_state *r = calloc(1, sizeof(*r));
	pthread_condattr_t ca;

	if (!r)
		return NULL;
	r->engine = e;
	r->index = i;
	atomic_init(&r->cfg, c);
	atomic_init(&r->source_slot, 0);
	atomic_init(&r->retired, 0);
	pthread_mutex_init(&r->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->renewed, &ca);
	pthread_condattr_destroy(&ca);
	return r;
}

static void role_free(struct role_state *r)
{
	if (r->current)
		creds_unref(&r->current->c);
	secret_free(r->token);
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->renewed);
	free(r);
}

struct engine *engine_new(const struct cfg *cfg, struct signer *signer)
{
	struct engine *e = calloc(1, sizeof(*e));
	pthread_condattr_t ca;

	if (!e)
		return NULL;
	atomic_init(&e->signer, signer);
	/* Room for the roles of this configuration and as many more
	 * added by reloads, plus some. */
	e->cap_slots = cfg->n_roles * 2 + 1024;
	e->slots = calloc(e->cap_slots, sizeof(*e->slots));
	if (!e->slots) {
		free(e);
		return NULL;
	}
	for (size_t i = 0; i < cfg->n_roles; i++) {
		e->slots[i] = role_new(e, i, &cfg->roles[i]);
		if (!e->slots[i]) {
			while (i--)
				role_free(e->slots[i]);
			free(e->slots);
			free(e);
			return NULL;
		}
		atomic_store(&e->slots[i]->source_slot, cfg->roles[i].source_index);
	}
	atomic_init(&e->n_slots, cfg->n_roles);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&e->workers_lock, NULL);
	pthread_cond_init(&e->workers_done, &ca);
	pthread_mutex_init(&e->timer_lock, NULL);
	pthread_cond_init(&e->timer_wake, &ca);
	pthread_mutex_init(&e->reload_lock, NULL);
	pthread_condattr_destroy(&ca);
	return e;
}

size_t engine_slot_count(const struct engine *e)
{
	return e->n_slots;
}

size_t engine_slot_capacity(const struct engine *e)
{
	return e->cap_slots;
}

struct name_slot {
	const char *name;
	size_t slot;
};

static int cmp_name_slot(const void *a, const void *b)
{
	return strcmp(((const struct name_slot *)a)->name,
		      ((const struct name_slot *)b)->name);
}

/* Forgets everything role r had: it is renewed on its next read. */
static void role_reset(struct role_state *r)
{
	struct creds_box *old;
	char *token;

	pthread_mutex_lock(&r->lock);
	old = r->current;
	r->current = NULL;
	token = r->token;
	r->token = NULL;
	r->token_size = 0;
	r->has_error = 0;
	r->failures = 0;
	r->holdoff_until_mono = 0;
	r->settings_gen++;
	pthread_mutex_unlock(&r->lock);
	if (old)
		creds_unref(&old->c);
	secret_free(token);
}

int engine_reload(struct engine *e, const struct cfg *cfg,
		  struct signer *signer, size_t *slot_of_role)
{
	size_t n_old, n_new = 0, live = 0;
	struct name_slot *index;
	struct signer *old_signer;
	unsigned char *kept;
	int rc = -1;

	pthread_mutex_lock(&e->reload_lock);
	n_old = e->n_slots;
	index = calloc(n_old + 1, sizeof(*index));
	kept = calloc(n_old + 1, 1);
	if (!index || !kept)
		goto out;
	for (size_t s = 0; s < n_old; s++)
		if (!e->slots[s]->retired)
			index[live++] = (struct name_slot){e->slots[s]->cfg->name, s};
	qsort(index, live, sizeof(*index), cmp_name_slot);

	/* Slots first, so that a failure changes nothing. */
	for (size_t i = 0; i < cfg->n_roles; i++) {
		struct name_slot key = {cfg->roles[i].name, 0};
		struct name_slot *hit = bsearch(&key, index, live, sizeof(*index),
						cmp_name_slot);

		if (hit) {
			slot_of_role[i] = hit->slot;
			kept[hit->slot] = 1;
		} else if (n_old + n_new < e->cap_slots) {
			slot_of_role[i] = n_old + n_new++;
		} else {
			log_error("reload: no room for more roles; restart credfs");
			goto out;
		}
	}
	for (size_t i = 0; i < cfg->n_roles; i++) {
		size_t s = slot_of_role[i];

		if (s < n_old)
			continue;
		e->slots[s] = role_new(e, s, &cfg->roles[i]);
		if (!e->slots[s]) {
			for (size_t k = n_old; k < n_old + n_new; k++) {
				if (e->slots[k])
					role_free(e->slots[k]);
				e->slots[k] = NULL;
			}
			goto out;
		}
	}

	old_signer = e->signer;
	atomic_store(&e->signer, signer);
	for (size_t i = 0; i < cfg->n_roles; i++) {
		const struct cfg_role *c = &cfg->roles[i];
		struct role_state *r = e->slots[slot_of_role[i]];

		atomic_store(&r->source_slot, c->token_source == CFG_TOKEN_CHAINED
				? slot_of_role[c->source_index] : 0);
		if (slot_of_role[i] >= n_old)
			continue;
		if (cfg_role_equal(r->cfg, c) &&
		    !(c->token_source == CFG_TOKEN_SIGNED &&
		      !signer_same_tokens(signer, old_signer))) {
			atomic_store(&r->cfg, c);
			continue;
		}
		atomic_store(&r->cfg, c);
		role_reset(r);
		log_info("role %s: settings changed; renewed on its next read",
			 c->name);
		tell(r, ENGINE_CHANGED_CREDS | ENGINE_CHANGED_STATUS |
			ENGINE_CHANGED_TOKEN);
	}
	for (size_t s = 0; s < n_old; s++) {
		struct role_state *r = e->slots[s];

		if (!kept[s] && !r->retired) {
			atomic_store(&r->retired, 1);
			role_reset(r);
			log_info("role %s: removed", r->cfg->name);
		}
	}
	atomic_store(&e->n_slots, n_old + n_new);
	wake_timer(e);
	rc = 0;
out:
	pthread_mutex_unlock(&e->reload_lock);
	free(index);
	free(kept);
	return rc;
}

void engine_clear_listener(struct engine *e)
{
	if (e->timer_running) {
		pthread_mutex_lock(&e->timer_lock);
		e->timer_stop = 1;
		pthread_cond_signal(&e->timer_wake);
		pthread_mutex_unlock(&e->timer_lock);
		pthread_join(e->timer, NULL);
		e->timer_running = 0;
	}
	e->listener = NULL;
}

void engine_free(struct engine *e)
{
	struct timespec ts;

	if (!e)
		return;
	engine_clear_listener(e);
	ts = clock_deadline_ms(SHUTDOWN_WAIT_MS);
	pthread_mutex_lock(&e->workers_lock);
	while (e->workers) {
		if (pthread_cond_timedwait(&e->workers_done, &e->workers_lock,
					   &ts) == ETIMEDOUT)
			break;
	}
	if (e->workers) {
		/* A renewal is stuck on the network; it still points into
		 * the engine, so leave the memory to process exit. */
		pthread_mutex_unlock(&e->workers_lock);
		log_warn("%u renewal(s) still in flight at shutdown", e->workers);
		return;
	}
	pthread_mutex_unlock(&e->workers_lock);
	for (size_t i = 0; i < e->n_slots; i++)
		role_free(e->slots[i]);
	pthread_mutex_destroy(&e->reload_lock);
	pthread_mutex_destroy(&e->workers_lock);
	pthread_cond_destroy(&e->workers_done);
	pthread_mutex_destroy(&e->timer_lock);
	pthread_cond_destroy(&e->timer_wake);
	free(e->slots);
	free(e);
}
