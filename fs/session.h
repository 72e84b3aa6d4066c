/*
 * Serving a FUSE connection that outlives the process serving it
 * (docs/lifecycle.md).  The /dev/fuse descriptor is held by the supervisor
 * and handed to each worker; the worker serves it through libfuse's custom
 * io (fuse_session_custom_io), never mounting, cloning or opening one of
 * its own, so requests the kernel resends are always on the description
 * every worker reads.
 *
 *   - The first worker of a mount gets the kernel's FUSE_INIT and hands a
 *     copy of it to its caller (on_init), to give to every later worker.
 *   - A later worker never gets FUSE_INIT (the kernel sends it once per
 *     connection) and libfuse answers EIO to everything until it has seen
 *     one: its session is fed that copy, with an id of its own, and the
 *     answer is swallowed.  Same bytes, same binary: the same negotiation.
 *   - After a worker died, the new one asks the kernel to resend what was
 *     read and never answered (FUSE_NOTIFY_RESEND, kernels 6.9 and later),
 *     before reading anything.  Every credfs operation is idempotent, so a
 *     request answered twice is harmless.
 *   - The description is O_NONBLOCK (shared by everyone holding it); each
 *     serving thread polls it together with a stop eventfd, so a worker
 *     being replaced stops reading at once, finishes what it has read, and
 *     never loses a request it took.
 */
#ifndef CREDFS_SESSION_H
#define CREDFS_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "compiler.h"
#include "credfs.h"

/* The kernel's FUSE_INIT request, as read: in header + init_in. */
#define FS_INIT_MAX 256
struct fs_init_blob {
	unsigned char bytes[FS_INIT_MAX];
	size_t len;
};

typedef void (*fs_init_fn)(void *arg, const struct fs_init_blob *blob);

struct fs_serve_opts {
	int fd;				/* /dev/fuse (taken over: closed by fs_session_free) */
	const struct fs_init_blob *resume;	/* NULL: the kernel's INIT comes */
	int resend;			/* a worker died: ask for a resend */
	int debug;			/* log every request (libfuse -d) */
	fs_init_fn on_init;		/* first worker: the INIT read */
	void *on_init_arg;
	/* Tests: after this many requests read, the worker aborts between
	 * reading the next one and answering it (0: never). */
	unsigned long crash_after;
};

struct fs_session;

/* A session of fs's operations on o->fd.  NULL on failure (o->fd closed). */
struct fs_session *fs_session_new(struct credfs *fs,
				  const struct fs_serve_opts *o) WUR;
/* The INIT phase, single-threaded: the kernel's INIT answered, or the
 * copy replayed; then the resend, if asked and the kernel has it.
 * 0, or -1 (the connection is gone or the INIT failed). */
int fs_session_init(struct fs_session *s) WUR;
/* Serves until fs_session_stop() or the connection ends.  Returns 0 when
 * stopped, 1 when the connection ended (unmounted or aborted), -1 on an
 * error. */
int fs_session_serve(struct fs_session *s);
/* Makes fs_session_serve return once the requests already read are
 * answered.  Async-signal-safe. */
void fs_session_stop(struct fs_session *s);
struct fuse_session *fs_session_fuse(struct fs_session *s);
/* Whether the kernel can resend requests (from the INIT flags). */
int fs_session_has_resend(const struct fs_session *s);
void fs_session_free(struct fs_session *s);

#endif
