#include "mount.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tree.h"

#define FD_SET_MAX 1024

/* Which descriptors are open now (bit per number below FD_SET_MAX). */
static void open_fds(unsigned char *set)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	memset(set, 0, FD_SET_MAX / 8);
	if (!d)
		return;
	while ((e = readdir(d))) {
		int fd = atoi(e->d_name);

		if (e->d_name[0] >= '0' && e->d_name[0] <= '9' && fd < FD_SET_MAX)
			set[fd / 8] |= (unsigned char)(1u << (fd % 8));
	}
	closedir(d);
}

/* The socket that appeared between before and now, other than skip. */
static int new_socket(const unsigned char *before, int skip)
{
	unsigned char now[FD_SET_MAX / 8];
	struct stat st;

	open_fds(now);
	for (int fd = 0; fd < FD_SET_MAX; fd++) {
		int was = before[fd / 8] & (1u << (fd % 8));
		int is = now[fd / 8] & (1u << (fd % 8));

		if (is && !was && fd != skip && !fstat(fd, &st) && S_ISSOCK(st.st_mode))
			return fd;
	}
	return -1;
}

static const struct fuse_lowlevel_ops no_ops;

/* The arguments of the mount's session: the user's options first, then
 * ro (the kernel refuses writes), default_permissions (the kernel checks
 * each role's uid, gid and mode) and the rest, where the last word wins:
 * mount.fuse3 (fstab) passes "rw,dev,suid", which must not undo them. */
static int mount_args(struct fuse_args *args, const char *fsname,
		      const char *user_opts, int debug)
{
	char fsopt[PATH_MAX + 128];

	snprintf(fsopt, sizeof(fsopt),
		 "-oro,nosuid,nodev,noatime,default_permissions,fsname=%s,subtype=credfs",
		 fsname);
	return fuse_opt_add_arg(args, "credfs") ||
	       (user_opts && *user_opts &&
		(fuse_opt_add_arg(args, "-o") || fuse_opt_add_arg(args, user_opts))) ||
	       fuse_opt_add_arg(args, fsopt) || (debug && fuse_opt_add_arg(args, "-d"));
}

int fs_mount(const char *mountpoint, const char *fsname, const char *user_opts,
	     int debug, struct fs_mount *out)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	unsigned char before[FD_SET_MAX / 8];
	struct fuse_session *se = NULL;
	int fd, rc = -1;

	out->fd = out->guard = -1;
	if (mount_args(&args, fsname, user_opts, debug))
		goto out;
	se = fuse_session_new(&args, &no_ops, sizeof(no_ops), NULL);
	if (!se) {
		fprintf(stderr, "credfs: bad mount options\n");
		goto out;
	}
	open_fds(before);
	if (fuse_session_mount(se, mountpoint)) {
		fprintf(stderr, "credfs: cannot mount at %s\n", mountpoint);
		goto out;
	}
	fd = fuse_session_fd(se);
	out->guard = new_socket(before, fd);
	if (out->guard >= 0)
		fcntl(out->guard, F_SETFD, FD_CLOEXEC);
	/* Above the guard, for the order of release described in mount.h. */
	out->fd = fcntl(fd, F_DUPFD_CLOEXEC, out->guard + 1);
	if (out->fd < 0 || fcntl(out->fd, F_SETFL, fcntl(out->fd, F_GETFL) | O_NONBLOCK)) {
		fprintf(stderr, "credfs: cannot keep the FUSE descriptor: %s\n",
			strerror(errno));
		fs_unmount(mountpoint);
		goto out;
	}
	rc = 0;
out:
	if (se)
		fuse_session_destroy(se);	/* closes libfuse's copy only */
	fuse_opt_free_args(&args);
	if (rc) {
		if (out->fd >= 0)
			close(out->fd);
		if (out->guard >= 0)
			close(out->guard);
		out->fd = out->guard = -1;
	}
	return rc;
}

int fs_mount_is_passed(const char *mountpoint)
{
	const char *n = mountpoint;

	if (strncmp(n, "/dev/fd/", 8))
		return 0;
	n += 8;
	if (!*n)
		return 0;
	for (; *n; n++)
		if (*n < '0' || *n > '9')
			return 0;
	return 1;
}

int fs_unmount(const char *mountpoint)
{
	pid_t pid;
	int status;

	if (geteuid() == 0)
		return umount2(mountpoint, MNT_DETACH) && errno != EINVAL ? -1 : 0;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		execlp("fusermount3", "fusermount3", "-u", "-q", "-z", "--", mountpoint,
		       (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

int fs_connection_ended(int fd)
{
	struct pollfd p = { .fd = fd, .events = 0 };

	return poll(&p, 1, 0) == 1 && (p.revents & (POLLERR | POLLHUP | POLLNVAL));
}
