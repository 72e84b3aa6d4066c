/* The state the FUSE operations share: built in main; what a reload changes
 * lives in the view (view.h), swapped whole; the engine locks for itself. */
#ifndef CREDFS_FS_H
#define CREDFS_FS_H

#include <stdint.h>

#include "config.h"
#include "engine.h"
#include "signer.h"
#include "tree.h"
#include "view.h"

struct credfs {
	_Atomic(struct view *) view;	/* the current one; see view.h */
	struct engine *engine;
	const char *config_path;	/* absolute */
	const char *mountpoint;		/* absolute, as the host sees it */
	uid_t uid;			/* the daemon's, owner of the shared files */
	gid_t gid;
	time_t started;			/* mtime of everything: the mount's start */
	_Atomic uint32_t *pad_to;	/* steady size per slot and file, ops.c */
	struct view *retired;		/* replaced views, freed after a grace */
};

/* The low-level operations of the mount; userdata is a struct credfs. */
extern const struct fuse_lowlevel_ops credfs_ops;

#endif
