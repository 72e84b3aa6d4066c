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

/* A reload in two steps (engine_face): the view of gen, built before the
 * engine moves (NULL, logged, when out of memory); then, once the engine
 * runs gen, that view shown and the kernel told what changed. */
struct view *fs_prepare_generation(struct credfs *fs, struct generation *gen) WUR;
void fs_show_generation(struct credfs *fs, struct fuse_session *se,
			struct view *cur);

#endif
