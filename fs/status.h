/*
 * status: a role's state as a JSON document for people and scripts,
 * rendered from the engine's snapshot.  It never holds a secret.
 */
#ifndef CREDFS_STATUS_H
#define CREDFS_STATUS_H

#include "buf.h"
#include "config.h"
#include "engine.h"

/* Appends role r's status (its settings are cfg) to out.  0 or a negative
 * errno (-ENOENT for a removed role). */
int status_render(struct role *r, const struct cfg_role *cfg, struct buf *out) WUR;

#endif
