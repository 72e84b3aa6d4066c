/*
 * Live reload: SIGHUP re-reads the configuration.  Added roles appear,
 * removed ones disappear (their files are dropped from the kernel at
 * once), roles whose exchange settings changed are renewed on their next
 * read, unchanged ones keep their credentials, and a role whose owner or
 * mode changed is revoked: the kernel's copies of its files are dropped
 * and every later read of them reaches the daemon, which checks the
 * reader.  A configuration that does not load is refused with its error in
 * the log, and the one in force stays.  Readers are never blocked: the new
 * view is built aside and published at once (view.h).  A burst of SIGHUPs
 * makes one reload (they coalesce while one is being made).
 */
#ifndef CREDFS_RELOAD_H
#define CREDFS_RELOAD_H

#include "credfs.h"

/* Starts the thread that reloads on SIGHUP (after daemonizing; it
 * replaces libfuse's SIGHUP handling).  Returns 0 or -1. */
int reload_start(struct credfs *fs, struct fuse_session *se);
void reload_stop(void);

/* Reloads now.  Returns 0, or -1 with the reason logged. */
int reload_now(struct credfs *fs, struct fuse_session *se);

#endif
