/*
 * Mounting and unmounting, for the supervisor (docs/lifecycle.md).  The
 * mount is made with libfuse (which knows how to mount as root and through
 * fusermount3), but the session libfuse builds for it is only a tool: the
 * descriptor is kept, the session destroyed, and requests are served by
 * workers (session.h).
 *
 * With -o auto_unmount libfuse runs fusermount3, which unmounts once the
 * socket it shares with us is closed by everyone.  libfuse keeps that
 * socket without telling: it is found by comparing the descriptors open
 * before and after mounting, and kept like the fuse descriptor.  Every
 * process that holds the fuse descriptor must hold the socket too, at a
 * lower number (a dying process releases its highest-numbered descriptors
 * first), so that when the last holder dies the connection is already
 * aborted when fusermount3 looks, and it unmounts.
 */
#ifndef CREDFS_MOUNT_H
#define CREDFS_MOUNT_H

#include "compiler.h"

struct fs_mount {
	int fd;			/* /dev/fuse, O_NONBLOCK, close-on-exec */
	int guard;		/* fusermount3's socket, -1 without auto_unmount */
};

/* Mounts at mountpoint (absolute) with the user's -o options (a comma
 * list, may be NULL) after which credfs's own come.  0 and *out, or -1
 * with a message printed. */
int fs_mount(const char *mountpoint, const char *fsname, const char *user_opts,
	     int debug, struct fs_mount *out) WUR;

/* Whether mountpoint is "/dev/fd/N": libfuse's way for a caller that
 * mounted itself and passes the descriptor (a daemon without the right to
 * mount).  Such a mount is the caller's: credfs serves it and never
 * unmounts it. */
int fs_mount_is_passed(const char *mountpoint);

/* Unmounts mountpoint (lazily: readers in flight finish).  0 or -1. */
int fs_unmount(const char *mountpoint);

/* Whether the connection behind fd has ended (unmounted or aborted):
 * poll() reports POLLERR then. */
int fs_connection_ended(int fd);

#endif
