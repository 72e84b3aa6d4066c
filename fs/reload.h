/*
 * Live reload: SIGHUP re-reads the configuration.  Added roles appear,
 * removed ones disappear, changed ones are renewed on their next read, and
 * unchanged ones keep their credentials.  A configuration that does not
 * load is refused with its error in the log, and the old one stays in
 * force.  Readers are never blocked: the new state is built aside and
 * published with one pointer swap (view.h).
 */
#ifndef CREDFS_RELOAD_H
#define CREDFS_RELOAD_H

#include "credfs.h"

/* Starts the thread that reloads on SIGHUP (after fuse_daemonize, and
 * after fuse_set_signal_handlers, whose SIGHUP handling it replaces).
 * Returns 0 or -1. */
int reload_start(struct credfs *fs, struct fuse_session *se);
void reload_stop(void);

/* Reloads now.  Returns 0, or -1 with the reason logged. */
int reload_now(struct credfs *fs, struct fuse_session *se);

/* Frees replaced views older than the grace period (all of them: all). */
void reload_free_retired(struct credfs *fs, int all);

#endif
