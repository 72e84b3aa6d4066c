/*
 * The state the FUSE operations share.  What a reload changes lives in the
 * view (view.h), published whole; the engine and the document cache lock
 * for themselves.
 */
#ifndef CREDFS_FS_H
#define CREDFS_FS_H

#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "buf.h"
#include "docs.h"
#include "engine.h"
#include "view.h"

struct endpoint_secret;
struct invalidator;
struct fs_session;

/* Open directories, each holding the view it was opened with.  A handle
 * is this process's nonce and a slot: the kernel keeps handles across
 * workers (docs/lifecycle.md), so one from another worker is recognised
 * as such, never used as a pointer. */
struct dir_handles {
	pthread_mutex_t lock;
	struct view **slots;		/* lock */
	size_t cap;			/* lock */
	uint32_t nonce;
};

struct credfs {
	struct view_slot views;
	struct engine *engine;
	struct docs docs;
	struct invalidator *inval;
	struct fs_session *session;	/* libfuse hands its custom io this
					 * struct: the session is found here */
	struct dir_handles dirs;
	const char *config_path;	/* absolute */
	const char *mountpoint;		/* absolute, as the host sees it */
	uid_t uid;			/* the daemon's: owner of the shared files */
	gid_t gid;
	time_t started;			/* mtime of what never changes */
	int no_push;			/* tests: never push invalidations */
	/* What authorization_token is derived from: the supervisor's, kept
	 * across workers and takeovers (docs/lifecycle.md); borrowed. */
	const struct endpoint_secret *endpoint_secret;
	/* Roles whose owner or mode a reload changed while this mount was
	 * up, "name\0name\0...": their files are refused to readers not
	 * allowed now, in this worker and every later one (the supervisor
	 * keeps the list).  Written by the reload thread only, and at start. */
	struct buf revoked;
	size_t n_revoked;
};

/* Adds name to fs->revoked and marks its files in fs->docs: every read of
 * them reaches the daemon and has its reader checked from now on. */
void fs_mark_revoked(struct credfs *fs, const char *name);

void dir_handles_init(struct dir_handles *d);
void dir_handles_destroy(struct dir_handles *d);

/* The low-level operations of the mount; userdata is a struct credfs. */
extern const struct fuse_lowlevel_ops credfs_ops;

#endif
