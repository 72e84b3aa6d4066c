/* The state the FUSE operations share: built once in main, read-only after
 * the mount starts except inside the engine (which locks for itself). */
#ifndef CREDFS_FS_H
#define CREDFS_FS_H

#include <stdint.h>

#include "config.h"
#include "engine.h"
#include "signer.h"
#include "tree.h"

struct credfs {
	struct cfg *cfg;
	struct signer *signer;		/* NULL without [signer] */
	struct engine *engine;
	struct tree tree;
	char *jwks;			/* keys.json, fixed while mounted */
	char *discovery;		/* .well-known/openid-configuration */
	const char *mountpoint;		/* absolute, as the host sees it */
	uid_t uid;			/* the daemon's, owner of the shared files */
	gid_t gid;
	time_t started;			/* mtime of everything: the mount's start */
	_Atomic uint32_t *pad_to;	/* steady size per role file, see ops.c */
};

/* The low-level operations of the mount; userdata is a struct credfs. */
extern const struct fuse_lowlevel_ops credfs_ops;

#endif
