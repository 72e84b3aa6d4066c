/*
 * Pushing changes to the kernel.  The kernel caches every file of the tree
 * (content and attributes); when the engine says a role's files may show
 * something new, the invalidator drops the kernel's copies from a thread
 * of its own (never from a request handler: an invalidation of pages
 * waits for reads of them in flight).
 *
 * No invalidation ever waits behind a read, or overtakes an answer being
 * made: attributes are dropped with a negative offset
 * (fuse_lowlevel_notify_inval_inode then touches no page), pages on a lane
 * of their own, and either only once no request about that file is being
 * answered (docs.h); a request that ends queues what it held up.  Every page
 * invalidation is repeated INVAL_ECHO_MS later, to catch a page that was
 * being filled with the previous document while the first one ran.  The
 * pushes only make changes visible sooner: without any (a test hook turns
 * them off) the attribute timeouts and mtimes of render.h still keep the
 * kernel from serving anything past its refresh point.  See
 * docs/caching.md.
 */
#ifndef CREDFS_INVAL_H
#define CREDFS_INVAL_H

#include <stdint.h>

#include "credfs.h"
#include "tree.h"

#define INVAL_ECHO_MS 500

struct invalidator;

/* Starts the thread (se and fs must outlive it).  NULL on failure. */
struct invalidator *inval_start(struct fuse_session *se, struct credfs *fs);
/* The engine's listener (arg is the invalidator): queues the files of r
 * named by what (enum engine_change); never blocks.  An invalidation
 * caused by a version the kernel was already told of is skipped. */
void inval_role(void *arg, struct role *r, unsigned what, uint64_t version);
/* Queues an invalidation of ino: its attributes, and its pages if pages. */
void inval_ino(struct invalidator *iv, uint64_t ino, int pages);
/* Queues what docs_busy_end() said is due for ino, and why (version). */
void inval_due(struct invalidator *iv, uint64_t ino, unsigned what, uint64_t version);
/* Stops the thread and frees it; pending work is dropped. */
/* A document is kept again after none was: the attribute lane, asleep
 * while there are none, sweeps them again. */
void inval_docs_kept(struct invalidator *iv);
void inval_stop(struct invalidator *iv);

#endif
