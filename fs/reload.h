/*
 * What a reload changes in the tree.  The daemon loads the new generation
 * and moves the engine to it (daemon/reload.c); then the tree shows it:
 * added roles appear, removed ones disappear (their files are dropped from
 * the kernel at once), and a role whose owner or mode changed is revoked:
 * the kernel's copies of its files are dropped and every later read of
 * them reaches the daemon, which checks the reader.  Readers are never
 * blocked: the new view is built aside and published at once (view.h).
 */
#ifndef CREDFS_RELOAD_H
#define CREDFS_RELOAD_H

#include "credfs.h"

/* Shows gen (in force in fs->engine already).  0, or -1 with the reason
 * logged (the previous view stays). */
int fs_show_generation(struct credfs *fs, struct fuse_session *se,
		       struct generation *gen);

#endif
