#include "control.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct wire_header {
	uint32_t type;
	uint32_t len;
};

int ctl_send(int sock, uint32_t type, const void *data, size_t len,
	     const int *fds, size_t nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * CTL_FDS_MAX)];
		struct cmsghdr align;
	} u;
	struct wire_header h = { type, (uint32_t)len };
	struct iovec iov[2] = { { &h, sizeof(h) }, { (void *)data, len } };
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = len ? 2 : 1 };
	struct cmsghdr *c;

	if (len > CTL_PAYLOAD_MAX || nfds > CTL_FDS_MAX) {
		errno = EMSGSIZE;
		return -1;
	}
	if (nfds) {
		memset(&u, 0, sizeof(u));
		msg.msg_control = u.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	while (sendmsg(sock, &msg, MSG_NOSIGNAL) < 0) {
		if (errno != EINTR)
			return -1;
	}
	return 0;
}

static void take_fds(struct msghdr *msg, struct ctl_msg *m)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
		size_t n;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (m->nfds < CTL_FDS_MAX)
				m->fds[m->nfds++] = fd;
			else
				close(fd);
		}
	}
}

int ctl_recv(int sock, struct ctl_msg *m, int timeout_ms)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * CTL_FDS_MAX)];
		struct cmsghdr align;
	} u;
	struct wire_header h;
	struct iovec iov[2] = { { &h, sizeof(h) }, { m->data, sizeof(m->data) } };
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 2,
			      .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	struct pollfd p = { .fd = sock, .events = POLLIN };
	ssize_t n;
	int r;

	m->nfds = 0;
	m->len = 0;
	do {
		r = poll(&p, 1, timeout_ms);
	} while (r < 0 && errno == EINTR);
	if (r == 0) {
		errno = ETIMEDOUT;
		return -1;
	}
	if (r < 0)
		return -1;
	do {
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	take_fds(&msg, m);
	if (n == 0) {
		errno = EPIPE;
		return -1;
	}
	if ((size_t)n < sizeof(h) || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ||
	    h.len != (size_t)n - sizeof(h)) {
		ctl_close_fds(m);
		errno = EPROTO;
		return -1;
	}
	m->type = h.type;
	m->len = h.len;
	return 0;
}

void ctl_close_fds(struct ctl_msg *m)
{
	for (size_t i = 0; i < m->nfds; i++)
		if (m->fds[i] >= 0)
			close(m->fds[i]);
	m->nfds = 0;
}

int ctl_peer_uid(int sock, uid_t *uid)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len))
		return -1;
	*uid = cred.uid;
	return 0;
}
