/*
 * The FUSE face: the mounted tree over the engine, served on a /dev/fuse
 * descriptor that the supervisor holds (session.h, docs/lifecycle.md).
 * The daemon composes it with the engine and the other faces; this is the
 * one header of fs/ the worker includes (with session.h's struct
 * fs_serve_opts and struct fs_init_blob, which come through it).  None of
 * its functions takes or returns a FUSE type, but it does not keep FUSE
 * headers out: session.h reaches <fuse_lowlevel.h> through credfs.h ->
 * view.h -> tree.h.
 *
 * Order of life: fs_face_new (the session and the invalidator, not yet
 * serving) -> engine_new with fs_face_listener -> fs_face_attach (the tree
 * over the engine's roles) -> fs_face_init (the INIT phase) ->
 * fs_face_serve (blocks) ... fs_face_stop from anywhere -> engine_stop ->
 * fs_face_free -> engine_free.  The engine is stopped before the face is
 * freed, so the listener is never called once the invalidator is gone.
 */
#ifndef CREDFS_FACE_H
#define CREDFS_FACE_H

#include <stdint.h>

#include "compiler.h"
#include "engine.h"
#include "generation.h"
#include "session.h"

struct fs_face;
struct credfs;
struct endpoint_secret;

struct fs_face_opts {
	const char *mountpoint;		/* absolute, as the host sees it */
	const char *config_path;	/* absolute */
	struct fs_serve_opts serve;	/* the descriptor and how to start */
	int no_push;			/* tests: never push invalidations */
	/* What NAME/authorization_token derives from (borrowed: it outlives
	 * the face); NULL shows no token. */
	const struct endpoint_secret *endpoint_secret;
};

struct fs_face *fs_face_new(const struct fs_face_opts *o) WUR;
/* The engine's listener: arg is the face. */
void fs_face_listener(void *arg, struct role *r, unsigned what, uint64_t version);
/* Builds the tree of gen over engine e.  0 or -1. */
int fs_face_attach(struct fs_face *f, struct engine *e, struct generation *gen) WUR;
/* The INIT phase (session.h).  0 or -1. */
int fs_face_init(struct fs_face *f) WUR;
/* Serves until stopped (0) or until the connection ends (1); -1 on error. */
int fs_face_serve(struct fs_face *f);
/* Async-signal-safe. */
void fs_face_stop(struct fs_face *f);
/* The face's part in a reload (engine_reload_faces): the tree of the new
 * generation built aside, then shown and the kernel told what changed. */
struct engine_face fs_face_reloader(struct fs_face *f);
/* The roles whose owner or mode a reload changed while the mount was up
 * (files opened before are refused to readers not allowed now): how many,
 * and a sealed memfd of their names for the supervisor to keep (-1 when
 * there are none).  fs_face_restore_revoked marks those of a predecessor
 * (fd: such a memfd, borrowed) after fs_face_attach: 0 or -1. */
size_t fs_face_revoked_count(const struct fs_face *f);
/* Drops what the kernel holds of the revoked roles' files (after
 * fs_face_init: libfuse drops a notification sent before INIT). */
void fs_face_push_revoked(struct fs_face *f);
int fs_face_revoked(struct fs_face *f) WUR;
int fs_face_restore_revoked(struct fs_face *f, int fd) WUR;
void fs_face_free(struct fs_face *f);
/* Tests: what the operations share (credfs.h). */
struct credfs *fs_face_credfs(struct fs_face *f);

#endif
