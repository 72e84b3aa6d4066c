/*
 * The credential engine: the runtime state of every configured role, for
 * every cloud.  It decides when to renew (refresh_fraction, min_validity,
 * refresh_jitter), makes sure one renewal per role is in flight however
 * many readers arrive, renews in the background while valid credentials
 * are served, never hands out expired credentials, bounds every wait by
 * the role's wait_timeout, and keeps the whole daemon within max_sts_rate
 * and max_sts_inflight.  It answers questions about credentials; how they
 * look as files or HTTP answers is for the faces (fs/, endpoint/).
 *
 * Threads (docs/engine.md): the callers (a face's request threads) only
 * take locks and wait; requests to token endpoints and signing run on the
 * engine's worker threads; token files are read on threads of their own
 * (a read can hang in the kernel); one timer thread wakes at the earliest
 * deadline.  Locking: each role has its own mutex; the engine's scheduler
 * lock may be taken while holding a role's, never the other way round; no
 * call into a token endpoint or a file holds either.
 */
#ifndef CREDFS_ENGINE_H
#define CREDFS_ENGINE_H

#include <stddef.h>
#include <stdint.h>
#include "compiler.h"
#include "creds.h"
#include "exchange.h"
#include "generation.h"

struct engine;
/* A configured role: a handle the faces hold (reference-counted).  A role
 * keeps its handle across reloads for as long as it is configured; a
 * removed role's handle stays valid for whoever still holds it, but every
 * question about it is answered with -ENOENT. */
struct role;

/*
 * What a listener is told (bits): whatever a role's documents show may
 * have changed.  version, when not 0, is the version of the new
 * credentials or token that caused it (creds.h): a face that has already
 * shown that version (or a newer one) holds nothing older and need not
 * drop anything.  0: a time point passed, a reload, a failure: always
 * act.  Called from engine threads with no engine lock held; it must not
 * wait on the engine (queue the work).
 */
enum engine_change {
	ENGINE_CHANGED_STATUS = 1,	/* state, errors, counters */
	ENGINE_CHANGED_CREDS = 2,	/* new credentials, a refresh point or an
					 * expiry passed, credentials dropped */
	ENGINE_CHANGED_TOKEN = 4,	/* new token, or its refresh point passed */
	ENGINE_CHANGED_PRESENTATION = 8, /* a reload changed owner, mode or looks */
	ENGINE_CHANGED_REMOVED = 16,	/* a reload removed the role */
};
typedef void (*engine_listener_fn)(void *arg, struct role *r, unsigned what,
				   uint64_t version);

struct engine_options {
	engine_listener_fn listener;	/* may be NULL */
	void *listener_arg;
	int no_timer_thread;		/* tests: they call engine_run_timers() */
};

/* An engine for gen (it takes its own reference).  NULL on failure. */
struct engine *engine_new(struct generation *gen,
			  const struct engine_options *opt) WUR;

/*
 * Moves the engine to gen: roles are matched by name.  A role whose
 * exchange settings changed (or, when it signs, whose signer makes other
 * tokens) drops its credentials and token and renews on its next read; a
 * renewal in flight for the old settings is discarded.  A role whose
 * schedule changed keeps its credentials, with the refresh point moved.  A
 * role whose presentation changed keeps everything and its listener is
 * told ENGINE_CHANGED_PRESENTATION.  A removed role drops everything and
 * its listener is told ENGINE_CHANGED_REMOVED.  Readers are never blocked.
 * 0, or -ENOMEM with nothing changed.
 */
int engine_reload(struct engine *e, struct generation *gen) WUR;

/*
 * A face's part in a reload.  Every face shows the generation the engine
 * runs, so a reload moves them together, all or nothing
 * (engine_reload_faces): each face builds what it will show, then the
 * engine moves, then each face shows what it built.
 */
#define ENGINE_FACES_MAX 4
struct engine_face {
	void *arg;
	/* What the face will show for gen, built aside: nothing it shows
	 * changes yet.  NULL when it cannot be built (then nothing moves). */
	void *(*prepare)(void *arg, struct generation *gen);
	/* Shows it: the engine runs gen now.  Never fails. */
	void (*commit)(void *arg, void *prepared);
	/* Drops it: the reload did not happen. */
	void (*discard)(void *arg, void *prepared);
};

/* engine_reload of e, and every face moved with it.  0, or -ENOMEM with
 * nothing changed anywhere. */
int engine_reload_faces(struct engine *e, struct generation *gen,
			const struct engine_face *faces, size_t n) WUR;

/* The generation in force (a reference: generation_unref it). */
struct generation *engine_generation(struct engine *e) WUR;

/* Stops the engine's threads: after it returns the listener is never
 * called again.  Requests in flight are abandoned (their results
 * dropped).  Idempotent. */
void engine_stop(struct engine *e);
/* Whether engine_stop gave up waiting for a thread still inside a
 * request: the process must then end with _exit, since exit's handlers
 * (OpenSSL's, libcurl's) would free what that thread is using. */
int engine_threads_left(const struct engine *e);
/* Stops, then frees.  Roles still referenced stay valid as handles. */
void engine_free(struct engine *e);

/* The configured role called name (a reference: role_unref it), or NULL. */
struct role *engine_role(struct engine *e, const char *name) WUR;
struct role *role_ref(struct role *r);
void role_unref(struct role *r);
const char *role_name(const struct role *r);
/* The settings in force for r (a reference to their generation in *gen;
 * the returned pointer lives as long as that reference).  NULL for a
 * removed role. */
const struct cfg_role *role_settings(struct role *r, struct generation **gen) WUR;

enum engine_wait {
	ENGINE_WAIT,	/* renew or sign as needed, waiting up to wait_timeout */
	ENGINE_PEEK,	/* only what is at hand: never a request, never a wait */
};

/* Valid credentials for r: 0 and a reference (creds_unref it); -EIO when
 * none could be had in time (the reason is in the snapshot); -EAGAIN in
 * PEEK mode when there are none at hand; -ENOENT for a removed role.  In
 * WAIT mode, credentials past their refresh point start a background
 * renewal and are returned at once. */
int engine_credentials(struct role *r, enum engine_wait w,
		       struct creds **out) WUR;

/* The web identity token r uses: signed (re-signed after its refresh
 * point) or read from web_identity_token_file (read again for every WAIT;
 * a renewal takes a copy read within the last second).  0 and a reference (token_unref it);
 * -ENOENT for a chained role or a removed one; -EIO (the reason is in the
 * snapshot); -EAGAIN in PEEK mode. */
int engine_token(struct role *r, enum engine_wait w, struct token **out) WUR;

/* What a role is doing, for status and metrics.  Strings are copies. */
enum role_state {
	ROLE_IDLE,		/* nothing obtained yet, nothing going on */
	ROLE_VALID,
	ROLE_RENEWING,		/* a renewal is in progress */
	ROLE_STALE,		/* valid credentials, but the last renewal failed */
	ROLE_ERROR,		/* no valid credentials; the last renewal failed */
	ROLE_EXPIRED,		/* what it had expired; not renewed since */
};

enum role_waiting {
	WAITING_NOTHING,
	WAITING_TOKEN,		/* signing, or reading the token file */
	WAITING_SOURCE,		/* the source role's credentials */
	WAITING_LIMITER,	/* queued behind the daemon-wide bounds */
	WAITING_ENDPOINT,	/* a request is in flight */
	WAITING_RETRY,		/* backing off before the next attempt */
};

#define ENGINE_OUTCOMES 8	/* distinct request outcomes counted per role */

struct role_outcome {
	char code[40];		/* "200", an error code, "Transport" */
	unsigned long count;
};

struct role_snapshot {
	enum role_state state;
	int64_t expiration;		/* wall seconds, 0: none */
	int64_t next_refresh;		/* wall seconds, 0: none */
	int64_t last_refresh;		/* wall seconds, 0: never */
	int64_t last_attempt;		/* wall seconds, 0: never */
	char *assumed_role_arn;		/* NULL: none */
	int has_error;
	struct exchange_error error;	/* the last failure, when has_error */
	enum role_waiting waiting;
	int64_t waiting_since;		/* wall seconds, when waiting */
	int attempt;			/* of the renewal in progress, 1-based */
	unsigned in_flight;		/* requests of this role in flight */
	unsigned readers_waiting;
	int behind;			/* queued past its min_validity point */
	int64_t last_failed_read;	/* wall seconds, 0: none */
	char failed_read_reason[160];
	unsigned long renewals;		/* successful */
	unsigned long renewal_failures;
	unsigned long requests;		/* requests sent to the token endpoint */
	struct role_outcome outcomes[ENGINE_OUTCOMES];
	size_t n_outcomes;
	unsigned long other_outcomes;	/* beyond ENGINE_OUTCOMES distinct ones */
};

/* Fills s (free with role_snapshot_clear).  -ENOENT for a removed role,
 * -ENOMEM. */
int engine_snapshot(struct role *r, struct role_snapshot *s) WUR;
void role_snapshot_clear(struct role_snapshot *s);
const char *role_state_name(enum role_state s);
const char *role_waiting_name(enum role_waiting w);

/* Daemon-wide figures for metrics. */
#define ENGINE_LATENCY_BUCKETS 12
struct engine_stats {
	size_t roles_configured;
	size_t roles_in_use;		/* holding credentials or a token */
	size_t queued;			/* requests waiting for the limiter */
	size_t behind;			/* of them, past their min_validity point */
	unsigned in_flight;
	double rate_in_force;		/* requests per second, 0: none */
	unsigned long throttle_events;
	/* Latency of token-endpoint requests, cumulative buckets (seconds,
	 * upper bounds in engine_latency_bounds), plus sum and count. */
	unsigned long latency_buckets[ENGINE_LATENCY_BUCKETS];
	double latency_sum;
	unsigned long latency_count;
};
extern const double engine_latency_bounds[ENGINE_LATENCY_BUCKETS];
void engine_stats(struct engine *e, struct engine_stats *out);

/* Calls fn for every configured role, in configuration order, holding a
 * reference for the call (metrics).  fn must not reload. */
void engine_each_role(struct engine *e, void (*fn)(void *arg, struct role *r),
		      void *arg);

/*
 * The refresh rule as plain arithmetic.  Credentials received at
 * `obtained` that expire at `expires` (lifetime L) are due at
 *     base  = min(obtained + fraction * L, expires - min_validity)
 *     point = base - jitter * u * L
 * where u in [0, 1) is this host's and this role's own number
 * (engine_jitter_u), so a fleet started together does not renew together.
 * Moving the point earlier can never break the min_validity rule.  The
 * point is never earlier than obtained + L/20 (unless base itself is),
 * so jitter cannot make a role renew as soon as it got its credentials.
 */
int64_t engine_refresh_point(int64_t obtained, int64_t expires, double fraction,
			     int64_t min_validity, double jitter, double u);

/* u for a role on a host: the first 64 bits of HMAC-SHA256(host, role
 * name), as a fraction of 2^64.  Stable for a host and role. */
double engine_jitter_u(const char *host_id, const char *role_name);

/* A takeover (engine_handoff.c): the valid credentials of every role,
 * written to fd for the successor.  Returns how many roles, or -1. */
int engine_export(struct engine *e, int fd);
/* Takes what a predecessor wrote to fd (within timeout_ms): a role keeps a
 * set only if its exchange settings are the same and it has none yet.
 * Returns how many roles kept one, or -1 (a broken stream: what was kept
 * stays). */
int engine_import(struct engine *e, int fd, int timeout_ms);

/* Tests: runs the timers that are due now (with no_timer_thread). */
void engine_run_timers(struct engine *e);

/* Tests: the engine's own idea of how many requests it has queued, in
 * flight and idle workers, to wait for quiet. */
int engine_busy(struct engine *e);

#endif
