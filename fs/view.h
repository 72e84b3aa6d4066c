/*
 * A view: everything the FUSE operations read that a reload can change (a
 * generation, the engine's handles of its roles, the tree, the issuer
 * documents), built whole and published at once.  A request takes a
 * reference to the current view and uses only it, so it never sees half
 * of an old configuration and half of a new one; the last reference
 * dropped frees the view (and, with it, its reference to the generation).
 * A directory listing holds one for as long as the directory is open, so
 * a listing continued across a reload neither skips nor repeats entries.
 */
#ifndef CREDFS_VIEW_H
#define CREDFS_VIEW_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "engine.h"
#include "generation.h"
#include "tree.h"

struct view {
	atomic_uint refs;
	struct generation *gen;		/* a reference */
	struct role **roles;		/* per cfg role: the engine's handle */
	struct tree tree;
	char *jwks;			/* keys.json, NULL without [signer] */
	char *discovery;		/* .well-known/openid-configuration */
};

/* The current view and the lock that publishes it. */
struct view_slot {
	pthread_mutex_t lock;
	struct view *current;		/* lock */
};

/* A view of gen for engine e (the engine must be running gen).  NULL when
 * out of memory. */
struct view *view_new(struct engine *e, struct generation *gen) WUR;
/* view_new in two steps, for a reload: everything that allocates, before
 * the engine moves to gen; then the engine's roles, once it runs gen
 * (no allocation: -1 only if the engine does not run gen). */
struct view *view_prepare(struct generation *gen) WUR;
int view_bind(struct view *v, struct engine *e) WUR;
struct view *view_ref(struct view *v);
void view_unref(struct view *v);

void view_slot_init(struct view_slot *s, struct view *v);
/* The current view, a reference (view_unref it). */
struct view *view_get(struct view_slot *s) WUR;
/* Publishes v (taking the caller's reference); returns the one replaced,
 * whose reference the caller now holds. */
struct view *view_swap(struct view_slot *s, struct view *v) WUR;
void view_slot_destroy(struct view_slot *s);

#endif
