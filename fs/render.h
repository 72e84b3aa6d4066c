/*
 * What each file of a role directory says.  Every call renders one whole
 * document from one snapshot of the role's state, so a reader never sees
 * half of an old and half of a new document.
 */
#ifndef CREDFS_RENDER_H
#define CREDFS_RENDER_H

#include "buf.h"
#include "engine.h"
#include "tree.h"

#define RENDER_MAX (64 * 1024)

/* Renders file f of role i into out (initialised by the caller with
 * RENDER_MAX).  config and status never wait on STS; credentials, expiry,
 * process.json and env may, for up to the role's wait_timeout.
 * Returns 0 or a negative errno (-EIO when no valid credentials). */
int render_role_file(struct engine *e, const struct cfg_role *role, size_t i,
		     enum role_file f, struct buf *out);

#endif
