/*
 * The engine's own structures, shared by its modules:
 *   engine.c         roles, reload, the public questions, snapshots
 *   engine_renew.c   renewals: the queues, the workers, the limiter
 *   engine_token.c   web identity tokens: signing and token-file reads
 *   engine_timers.c  the timer thread, clock steps and suspend
 * Nothing outside backend/engine*.c includes this.
 *
 * Locking rules (docs/engine.md):
 *   - role->lock protects everything in struct role marked (r).
 *   - engine->sched_lock protects the heaps, the limiter, the worker
 *     counts and the statistics (marked (s)).  It may be taken while
 *     holding a role lock, never the other way round.
 *   - engine->roles_lock protects the role table and the generation in
 *     force (marked (t)); it is taken alone, or before a role lock.
 *   - No lock is held across a request, a signature or a file read, and
 *     the listener is called with no lock held.
 */
#ifndef CREDFS_ENGINE_INTERNAL_H
#define CREDFS_ENGINE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "engine.h"
#include "heap.h"
#include "limiter.h"
#include "names.h"

/* Credentials with less than this left are treated as expired: a consumer
 * needs a moment to use them. */
#define EXPIRY_MARGIN_MS 1000
/* After a failed renewal no new one starts for this long (doubling per
 * consecutive failure, capped), so a read loop cannot hammer an endpoint. */
#define HOLDOFF_MIN_MS 1000
#define HOLDOFF_MAX_MS 8000
/* A token file is read again when the copy at hand is older than this. */
#define TOKEN_FILE_FRESH_MS 1000
#define CONNECT_TIMEOUT_MS 5000
/* Worker threads: at most this many even with no max_sts_inflight; an
 * idle worker exits after WORKER_IDLE_MS. */
#define WORKERS_MAX 256
#define WORKER_IDLE_MS 30000
/* engine_stop waits this long for requests in flight to be abandoned. */
#define STOP_WAIT_MS 5000

enum role_timer_kind {
	RT_REFRESH,		/* the refresh point of the current credentials */
	RT_EXPIRY,		/* a margin before they expire */
	RT_TOKEN,		/* the signed token's refresh point */
	RT_JOB,			/* the renewal's next attempt, or a deadline */
	RT_COUNT,
};

struct role_timer {
	struct heap_node node;	/* in engine->timers (s) */
	struct role *role;
	enum role_timer_kind kind;
};

enum job_stage {
	JOB_NONE,
	JOB_PREP,		/* in engine->prep: needs its token or source */
	JOB_WAIT_TOKEN,		/* waiting for the role's token */
	JOB_WAIT_SOURCE,	/* waiting for the source role's renewal */
	JOB_QUEUED,		/* in engine->queue, waiting for the limiter */
	JOB_RUNNING,		/* a request in flight */
	JOB_WAIT_RETRY,		/* RT_JOB armed for the next attempt */
};

/* A renewal: at most one per role.  (r) */
struct job {
	enum job_stage stage;
	int cold;		/* started with no valid credentials */
	int attempt;		/* of the current step, 1-based */
	int step;		/* request number within the renewal */
	unsigned requests;	/* requests sent for this renewal */
	char *carry;		/* what the previous step produced (secret) */
	struct generation *gen;	/* the settings it was started with */
	const struct cfg_role *cfg;
	unsigned long settings_gen;
	struct token *token;	/* the token it sends */
	struct creds *source;	/* chained: what it signs with */
	int64_t since_wall;
	int64_t queued_boot;
	int behind;		/* queued past its min_validity point */
	struct heap_node node;	/* in engine->prep or engine->queue (s) */
};

struct file_read;

/* The role's web identity token.  (r) */
struct token_state {
	struct token *current;
	int64_t refresh_boot;	/* signed: re-sign after; file: read again after */
	int busy;		/* a signing queued or running, or a read in flight */
	int64_t busy_since_wall;
	struct file_read *read;	/* the read in flight (its own thread) */
	unsigned long seq;	/* bumped whenever an attempt ends */
	int failed;		/* the last attempt failed: error in role->error */
	struct heap_node node;	/* in engine->signing (s) */
};

/*
 * A role costs what it is used for.  struct role is what every configured
 * role needs (its name, settings and credentials); everything a renewal,
 * a token, a timer or a reader needs is in struct role_use, made the
 * first time the role is used (role_use_locked) and kept until the role
 * is freed, so that 100 000 configured roles nobody reads stay small.
 * Invariants: r->current, an armed timer, a queued or running job and a
 * token held all imply r->use.
 */
struct role_use {
	struct role *role;	/* the owner (no reference) */
	pthread_cond_t changed;	/* credentials or token attempts ended */
	double jitter_u;	/* engine_jitter_u for the engine's host */

	/* Everything below is (r), like the role's own fields. */
	struct role **dependents;	/* jobs waiting for this role: references */
	size_t n_dependents, cap_dependents;
	struct job job;
	struct token_state tok;
	unsigned readers_waiting;
	unsigned long renewal_seq;	/* renewals ended, success or not */
	unsigned failures;		/* consecutive failed renewals */
	int64_t holdoff_until_boot;
	int has_error;
	struct exchange_error error;
	int64_t last_refresh, last_attempt;
	unsigned long renewals, renewal_failures, requests;
	struct role_outcome outcomes[ENGINE_OUTCOMES];
	size_t n_outcomes;
	unsigned long other_outcomes;
	int64_t last_failed_read;
	char failed_read_reason[160];

	struct role_timer timers[RT_COUNT];
};

struct role {
	atomic_uint refs;
	char name[CFG_ROLE_NAME_MAX + 1];
	pthread_mutex_t lock;

	/* Everything below is (r). */
	struct engine *engine;	/* NULL once the engine is freed */
	struct generation *gen;	/* the settings in force */
	const struct cfg_role *cfg;
	int removed;
	size_t index;		/* in engine->roles */
	struct role *source;	/* chained: a reference */
	unsigned long settings_gen;	/* bumped when exchange settings change */

	struct creds *current;
	int64_t expires_boot;	/* the current's expiry, boot ms */
	int64_t refresh_boot;	/* its refresh point, boot ms */
	int64_t refresh_wall;	/* the same, wall seconds */

	struct role_use *use;	/* NULL until the role is first used */
};

struct engine {
	pthread_mutex_t roles_lock;
	struct generation *gen;		/* (t) */
	struct role **roles;		/* (t) configured roles, in file order */
	size_t n_roles;			/* (t) */
	struct name_index names;	/* (t) name -> index in roles */
	char *host_id;			/* (t) and (s): written holding both */

	pthread_mutex_t sched_lock;
	pthread_cond_t work;		/* wakes workers (s) */
	pthread_cond_t quiet;		/* a worker exited (s) */
	struct heap timers;		/* (s) role_timer nodes */
	struct heap signing;		/* (s) tokens to sign (token_state nodes) */
	struct heap prep;		/* (s) jobs getting their token or source */
	struct heap queue;		/* (s) jobs waiting for the limiter */
	struct limiter limiter;		/* (s) */
	unsigned workers, idle_workers;	/* (s) */
	int64_t next_seq;		/* (s) FIFO order among the cold */
	int stopping;			/* (s) */
	int stuck_workers;		/* engine_stop gave up waiting for some */
	int stop_called;		/* engine_stop ran (its caller's thread) */
	size_t behind;			/* (s) jobs queued past their point */
	int64_t behind_logged_boot;	/* (s) */
	unsigned long latency_buckets[ENGINE_LATENCY_BUCKETS];	/* (s) */
	double latency_sum;		/* (s) */
	unsigned long latency_count;	/* (s) */

	/* The timer thread. */
	pthread_t timer_thread;
	int timer_running;
	int wake_fd;			/* eventfd: the earliest deadline moved */
	int step_fd;			/* timerfd: the wall clock was set */
	int boot_fd;			/* timerfd on CLOCK_BOOTTIME */
	int64_t boot_minus_mono;	/* to notice a suspend */

	/* The listener: never called once silenced. */
	engine_listener_fn listener;
	void *listener_arg;
	atomic_int telling;
	atomic_int silenced;
};

/* engine.c */
/* Makes r->use if the role has none yet.  0, or -ENOMEM (nothing
 * changed).  With r->lock. */
int role_use_locked(struct role *r) WUR;
void role_tell(struct role *r, unsigned what);
/* The same, for what new credentials or a new token of version caused. */
void role_tell_version(struct role *r, unsigned what, uint64_t version);
int role_valid_locked(const struct role *r, int64_t now_boot);
void role_set_error_locked(struct role *r, const struct exchange_error *err);
void role_count_outcome_locked(struct role *r, const char *code);

/* engine_renew.c */
void renew_start_locked(struct role *r, int cold);
void renew_cancel_locked(struct role *r);
void renew_token_ready_locked(struct role *r);
void renew_timer_locked(struct role *r);
/* Wakes the jobs parked on r's renewal.  Call it, with no lock held,
 * after anything that may have ended r's job (renewal_seq moved): a job
 * that ends without waking its dependents strands them for good. */
void renew_release_dependents(struct role *r);
/* Stops the workers: 0, or -EBUSY if some are still stuck in a request
 * after STOP_WAIT_MS (their memory is then left to process exit). */
int engine_workers_stop(struct engine *e);
void sched_wake_workers(struct engine *e);
void ensure_worker_sched(struct engine *e);

/* engine_token.c */
int token_fresh_locked(const struct role *r, int64_t now_boot);
void token_start_locked(struct role *r);
void token_sign_run(struct role *r);
void token_drop_locked(struct role *r);

/* engine_timers.c */
void timers_arm_locked(struct role *r, enum role_timer_kind k, int64_t at);
void timers_cancel_locked(struct role *r, enum role_timer_kind k);
int timers_start(struct engine *e);
void timers_stop(struct engine *e);
void timers_fire(struct engine *e, struct role *r, enum role_timer_kind k);

#endif
