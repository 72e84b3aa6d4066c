/*
 * Pushing changes to the kernel.  The kernel caches every file of the tree
 * (content and attributes); when the engine says a role's files may show
 * something new, the invalidator drops the kernel's copies of that role's
 * files with fuse_lowlevel_notify_inval_inode, from its own thread (never
 * from a request handler: an invalidation may wait for a read in flight).
 * Every invalidation is repeated once INVAL_ECHO_MS later, to catch a read
 * that was being answered with the old document while the first one ran.
 * See docs/caching.md.
 */
#ifndef CREDFS_INVAL_H
#define CREDFS_INVAL_H

#include <stddef.h>

#include "tree.h"

#define INVAL_ECHO_MS 500

struct invalidator;

/* Starts the thread.  se must outlive it.  NULL on failure.  Roles are
 * named by engine slot. */
struct invalidator *inval_start(struct fuse_session *se);
/* Queues the files of role named by what (enum engine_change bits) for
 * invalidation; never blocks on the kernel, safe from any thread.  Matches
 * engine_listener_fn (arg is the invalidator). */
void inval_role(void *invalidator, size_t role, unsigned what);
/* Stops the thread and frees it; pending work is dropped. */
void inval_stop(struct invalidator *iv);

#endif
