/*
 * A view: everything the FUSE operations read that a reload can change,
 * built whole and published with one atomic pointer swap.  A request
 * handler loads the current view once and uses only it, so it never sees
 * half of an old configuration and half of a new one.  A replaced view is
 * freed only after VIEW_GRACE_SECONDS, longer than any request or renewal
 * can hold on to it.
 */
#ifndef CREDFS_VIEW_H
#define CREDFS_VIEW_H

#include <stddef.h>
#include <time.h>

#include "config.h"
#include "signer.h"
#include "tree.h"

#define VIEW_GRACE_SECONDS 900

struct view {
	struct cfg *cfg;
	struct signer *signer;		/* NULL without [signer] */
	char *jwks;			/* keys.json */
	char *discovery;		/* .well-known/openid-configuration */
	struct tree tree;
	size_t *slot_of_role;		/* cfg->n_roles entries */
	size_t *role_of_slot;		/* n_slots entries, SIZE_MAX: none */
	size_t n_slots;

	time_t retired_at;		/* when it was replaced */
	struct view *next_retired;
};

/* A view of cfg and signer, taking them and slot_of_role over (also on
 * failure, when they are freed).  n_slots: the engine's slot count. */
struct view *view_new(struct cfg *cfg, struct signer *signer,
		      size_t *slot_of_role, size_t n_slots);
void view_free(struct view *v);

#endif
