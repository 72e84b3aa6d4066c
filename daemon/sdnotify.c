#include "sdnotify.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int sd_notify_enabled(void)
{
	const char *p = getenv("NOTIFY_SOCKET");

	return p && (p[0] == '/' || p[0] == '@');
}

int sd_send(const char *state, const int *fds, size_t nfds)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	union {
		char buf[CMSG_SPACE(sizeof(int) * 32)];
		struct cmsghdr align;
	} u;
	struct iovec iov = { (void *)state, strlen(state) };
	struct msghdr msg = { .msg_name = &sa, .msg_iov = &iov, .msg_iovlen = 1 };
	size_t plen;
	int s, rc;

	if (!sd_notify_enabled() || nfds > 32)
		return -1;
	plen = strlen(path);
	if (plen >= sizeof(sa.sun_path))
		return -1;
	memcpy(sa.sun_path, path, plen);
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = '\0';
	msg.msg_namelen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen);
	if (nfds) {
		struct cmsghdr *c;

		memset(&u, 0, sizeof(u));
		msg.msg_control = u.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -1;
	rc = sendmsg(s, &msg, MSG_NOSIGNAL) < 0 ? -1 : 0;
	close(s);
	return rc;
}

uint64_t sd_watchdog_usec(void)
{
	const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");

	if (!usec || (pid && (pid_t)strtol(pid, NULL, 10) != getpid()))
		return 0;
	return strtoull(usec, NULL, 10);
}

static int listen_ours(void)
{
	const char *pid = getenv("LISTEN_PID");

	return pid && (pid_t)strtol(pid, NULL, 10) == getpid();
}

int sd_listen_count(void)
{
	const char *n = getenv("LISTEN_FDS");

	return listen_ours() && n ? atoi(n) : 0;
}

int sd_listen_fd(const char *name)
{
	const char *names = getenv("LISTEN_FDNAMES");
	int count = sd_listen_count(), i = 0;
	size_t len = strlen(name);

	if (!names)
		return -1;
	for (const char *p = names; *p && i < count; i++) {
		size_t n = strcspn(p, ":");

		if (n == len && !strncmp(p, name, len))
			return SD_LISTEN_FDS_START + i;
		p += n;
		if (*p == ':')
			p++;
	}
	return -1;
}

void sd_listen_forget(void)
{
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
}
