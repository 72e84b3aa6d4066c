/*
 * Listen sockets and where they come from.  The first worker of a fresh
 * start binds every address before anything is mounted (endpoint_bind,
 * from daemon/worker.c bind_fresh, before CTL_UP): an address that cannot
 * be bound (in use, not on any interface) then fails the start on the
 * terminal, with nothing mounted, instead of after the mount is up.  The
 * supervisor keeps copies of the sockets in force (CTL_LISTENERS) and
 * hands them to every later worker, to a successor's supervisor in a
 * takeover and to the descriptor store; a worker given them takes them
 * with endpoint_sockets_adopt, each known by the address it is bound to,
 * and endpoint_start uses those its configuration lists
 * (endpoint_sockets_take) and binds any it lacks.  A reload binds the
 * addresses it adds while it prepares (endpoint_bind_one, from server.c
 * listeners_prepare) and starts their listeners at its commit
 * (listeners_commit).  No SO_REUSEPORT: a second credfs on the same
 * address must fail, not share the port (it would answer with tokens of
 * its own).
 */
#include "endpoint_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int endpoint_bind_one(const struct cfg_listen *l, char *why, size_t whylen)
{
	int fd = socket(l->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int one = 1;

	if (fd < 0)
		goto fail;
	/* SO_REUSEADDR: a restart may bind while old connections linger in
	 * TIME_WAIT; it never lets two listeners share the address. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    (l->addr.ss_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one))) ||
	    bind(fd, (const struct sockaddr *)&l->addr, l->addr_len) ||
	    listen(fd, ENDPOINT_LISTEN_BACKLOG))
		goto fail;
	return fd;
fail:
	snprintf(why, whylen, "[endpoint] cannot listen on %s: %s", l->text,
		 strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

struct endpoint_sockets *endpoint_bind(const struct cfg_endpoint *e, char *why,
				       size_t whylen)
{
	size_t n = e->present ? e->n_listen : 0;
	struct endpoint_sockets *s = calloc(1, sizeof(*s) + n * sizeof(s->s[0]));

	if (!s) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	s->n = n;
	for (size_t i = 0; i < n; i++)
		s->s[i].fd = -1;
	for (size_t i = 0; i < n; i++) {
		s->s[i].addr = e->listen[i];
		s->s[i].fd = endpoint_bind_one(&e->listen[i], why, whylen);
		if (s->s[i].fd < 0) {
			endpoint_sockets_close(s);
			return NULL;
		}
	}
	return s;
}

struct endpoint_sockets *endpoint_sockets_adopt(const int *fds, size_t n)
{
	struct endpoint_sockets *s = calloc(1, sizeof(*s) + n * sizeof(s->s[0]));

	if (!s) {
		for (size_t i = 0; i < n; i++)
			close(fds[i]);
		return NULL;
	}
	s->n = n;
	for (size_t i = 0; i < n; i++) {
		struct cfg_listen *l = &s->s[i].addr;

		memset(l, 0, sizeof(*l));
		l->addr_len = sizeof(l->addr);
		s->s[i].fd = fds[i];
		/* One no address matches stays unused and is closed. */
		if (getsockname(fds[i], (struct sockaddr *)&l->addr, &l->addr_len))
			l->addr_len = 0;
		fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
	}
	return s;
}

int endpoint_sockets_take(struct endpoint_sockets *s, const struct cfg_listen *l)
{
	for (size_t i = 0; s && i < s->n; i++) {
		if (s->s[i].fd >= 0 && s->s[i].addr.addr_len == l->addr_len &&
		    !memcmp(&s->s[i].addr.addr, &l->addr, l->addr_len)) {
			int fd = s->s[i].fd;

			s->s[i].fd = -1;
			return fd;
		}
	}
	return -1;
}

size_t endpoint_sockets_fds(const struct endpoint_sockets *s, int *fds, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; s && i < s->n && n < max; i++)
		if (s->s[i].fd >= 0)
			fds[n++] = s->s[i].fd;
	return n;
}

void endpoint_sockets_close(struct endpoint_sockets *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		if (s->s[i].fd >= 0)
			close(s->s[i].fd);
	free(s);
}
