/*
 * The state the FUSE operations share.  What a reload changes lives in the
 * view (view.h), published whole; the engine and the document cache lock
 * for themselves.
 */
#ifndef CREDFS_FS_H
#define CREDFS_FS_H

#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "docs.h"
#include "engine.h"
#include "view.h"

struct invalidator;
struct endpoint_secret;
struct generation;

struct credfs {
	struct view_slot views;
	struct engine *engine;
	struct docs docs;
	struct invalidator *inval;
	const char *config_path;	/* absolute */
	const char *mountpoint;		/* absolute, as the host sees it */
	uid_t uid;			/* the daemon's: owner of the shared files */
	gid_t gid;
	time_t started;			/* mtime of what never changes */
	int no_push;			/* tests: never push invalidations */
	/* What authorization_token is derived from: held by whoever starts
	 * the daemon (main, for now; a supervising process that keeps it
	 * across restarts later), borrowed here. */
	const struct endpoint_secret *endpoint_secret;
	/* Called by reload once a new generation is in force (after the
	 * engine and the view), so other faces follow; may be NULL. */
	void (*on_reload)(void *arg, struct generation *gen);
	void *on_reload_arg;
};

/* The low-level operations of the mount; userdata is a struct credfs. */
extern const struct fuse_lowlevel_ops credfs_ops;

#endif
