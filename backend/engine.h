/*
 * The credential engine: the runtime state of every role.  It decides when
 * to renew (refresh_fraction / min_validity), makes sure one renewal per
 * role is in flight however many readers arrive, renews in the background
 * while valid credentials are served, never hands out expired credentials,
 * and bounds every wait by the role's wait_timeout.
 *
 * Locking: each role has its own mutex; no engine call holds two role locks
 * at once, and STS is never called with a lock held.  See docs/engine.md.
 */
#ifndef CREDFS_ENGINE_H
#define CREDFS_ENGINE_H

#include <stddef.h>
#include <stdint.h>
#include "compiler.h"
#include "config.h"
#include "signer.h"
#include "sts.h"

struct engine;

/* A published set of credentials: immutable, reference-counted, wiped when
 * the last reference goes. */
struct creds {
	struct sts_credentials sts;
	int64_t obtained;		/* wall seconds when received */
};

/*
 * Roles live in slots: role i of the first configuration is slot i, and a
 * role keeps its slot across reloads for as long as it is configured, so
 * everything keyed by slot (inode numbers) stays stable.  Every call below
 * that takes i takes a slot.
 *
 * cfg and signer (may be NULL) must outlive the engine, or the next
 * engine_reload() plus the time a renewal can take (see engine_reload).
 */
struct engine *engine_new(const struct cfg *cfg, struct signer *signer) WUR;

/*
 * Moves the engine to a new configuration: roles are matched by name.
 * slot_of_role (cfg->n_roles entries) receives each role's slot: its old
 * one if it was configured before, else a new one.  A role whose settings
 * changed (or, for a signing role, whose signer changed) drops its cached
 * credentials and token and is renewed on its next read; an unchanged role
 * keeps them; a role that is gone is retired and its slot never reused.
 * Readers are never blocked.  The previous cfg and signer must stay alive
 * for as long as a renewal may take (a renewal started before may still
 * read them).  Returns 0, or -1 (nothing changed) when no slot is left.
 */
int engine_reload(struct engine *e, const struct cfg *cfg,
		  struct signer *signer, size_t *slot_of_role) WUR;

/* Slots in use so far (live and retired), and the most there can be. */
size_t engine_slot_count(const struct engine *e);
size_t engine_slot_capacity(const struct engine *e);
/* Waits a bounded time for renewals in flight, then frees everything. */
void engine_free(struct engine *e);

/* Valid credentials for role index i, renewing first if there are none
 * (waiting at most the role's wait_timeout) and in the background if the
 * refresh point has passed.  Returns 0 and a reference (creds_unref it),
 * or -EIO when no unexpired credentials could be had in time. */
int engine_get_credentials(struct engine *e, size_t i, struct creds **out) WUR;
void creds_unref(struct creds *c);

/* The web identity token role i uses: signed (re-signed once its own
 * refresh point passes) or read afresh from web_identity_token_file.
 * Returns 0 and a malloc'd token (secret_free it), -ENOENT for a chained
 * role (it has none), or -EIO (the reason is in status). */
int engine_get_token(struct engine *e, size_t i, char **out) WUR;

/* Role i's state as a JSON document for people and scripts; no secret in
 * it.  malloc'd, NULL on allocation failure. */
char *engine_status(struct engine *e, size_t i) WUR;

/* Role i's credentials if valid ones are cached, without waiting and
 * without starting a renewal (for stat, which must never call STS).
 * 0 and a reference, or -EAGAIN. */
int engine_peek_credentials(struct engine *e, size_t i, struct creds **out) WUR;

/* The cached signed token of role i, if one is fresh: 0 and a malloc'd
 * copy, or -EAGAIN.  Never signs. */
int engine_peek_token(struct engine *e, size_t i, char **out) WUR;

/*
 * Told whenever what role i's files would show may have changed (what:
 * enum engine_change bits): new credentials or token, a renewal starting
 * or failing, and the moments the refresh point or (a second before) the
 * expiry of the current credentials or token pass.  New credentials that
 * replace none do not set ENGINE_CHANGED_CREDS: nobody can hold a copy of
 * what did not exist.  Called from engine threads with no engine lock held; it
 * must not call back into the engine with a wait (queue the work).
 * Setting it starts the engine's timer thread.
 */
enum engine_change {
	ENGINE_CHANGED_STATUS = 1,	/* status */
	ENGINE_CHANGED_CREDS = 2,	/* credentials, env, process.json, expiry */
	ENGINE_CHANGED_TOKEN = 4,	/* token */
};
typedef void (*engine_listener_fn)(void *arg, size_t role, unsigned what);
int engine_set_listener(struct engine *e, engine_listener_fn fn, void *arg) WUR;
/* Stops telling the listener (and the timer thread) before the listener
 * goes away. */
void engine_clear_listener(struct engine *e);

/* The length of role i's signed tokens (constant for a key and subject),
 * learnt once from a throwaway signature that never leaves the process;
 * 0 for a role that does not sign. */
size_t engine_token_size(struct engine *e, size_t i);

/* Total STS requests sent for role i (each HTTP attempt counts). */
unsigned long engine_sts_calls(struct engine *e, size_t i);

/*
 * The refresh rule as plain arithmetic, for the engine and its tests:
 * credentials received at `obtained` that expire at `expires` are due for
 * renewal at the earlier of obtained + fraction * lifetime and
 * expires - min_validity, never before obtained.
 */
int64_t engine_refresh_point(int64_t obtained, int64_t expires,
			     double fraction, int64_t min_validity);

#endif
