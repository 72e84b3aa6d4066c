/*
 * Handing a live mount to another credfs (docs/lifecycle.md), and taking
 * one back from the service manager's descriptor store.
 *
 * The running supervisor listens on a unix socket of the mountpoint
 * (handover_path), 0600 in a 0700 directory, and answers only its own
 * user (SO_PEERCRED), one successor at a time:
 *
 *   successor                      running supervisor
 *   (its worker loaded CONFIG)
 *   HELLO versions          ->
 *                           <-     OFFER INIT copy, secret; fds: guard, fuse,
 *                                  listeners        (or REFUSED: why)
 *   NEED_CREDS fd           ->     its worker writes its credentials there
 *   (its worker takes them, replays INIT and serves: both serve now)
 *   RELEASE                 ->     its worker finishes what it read, exits
 *                           <-     RELEASED; it lets go of everything, and
 *                                  exits (or, as a container's PID 1, waits
 *                                  for the SIGTERM of the rollout)
 *
 * Until RELEASE nothing has changed for the running one: a successor that
 * fails or dies midway leaves it serving.  No request is resent in a
 * handover (both workers are alive, and the kernel would hand the old
 * one's requests to the new one twice).
 */
#include "supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <openssl/crypto.h>

#include "log.h"
#include "sdnotify.h"

#define HELLO_MAGIC "CRFSTKV1"
#define PEER_TIMEOUT_MS 15000

enum peer_stage { PEER_NEW, PEER_OFFERED };

static int after_handover_wait(void)
{
	const char *v = getenv("CREDFS_AFTER_HANDOVER");

	return v && !strcmp(v, "wait");
}

static int fuse_abi(void)
{
	const char *t = getenv("CREDFS_TEST_FUSE_ABI");

	return t ? atoi(t) : FUSE_ABI_VERSION;
}

static void fill_addr(struct sockaddr_un *sa, const char *path)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	snprintf(sa->sun_path, sizeof(sa->sun_path), "%s", path);
}

/* ---- the running supervisor's side ------------------------------------- */

/* Beside the socket, MOUNT.owner names the host (a pod's name) whose
 * credfs serves the mount now: what a pod's readiness probe checks
 * (deploy/kubernetes/daemonset.yaml), since during a rollout both pods see
 * the mount and only one of them serves it. */
static void owner_path(const struct supervisor *s, char *out, size_t len)
{
	size_t n = strlen(s->handover_path);

	snprintf(out, len, "%.*s.owner", (int)(n > 5 ? n - 5 : n), s->handover_path);
}

static void write_owner(const struct supervisor *s)
{
	char path[sizeof(s->handover_path) + 8], tmp[sizeof(path) + 8], host[256] = "";
	int fd;

	owner_path(s, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	if (gethostname(host, sizeof(host) - 1))
		return;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	if (write(fd, host, strlen(host)) < 0 || write(fd, "\n", 1) < 0 || close(fd) ||
	    rename(tmp, path))
		unlink(tmp);
}

int handover_listen(struct supervisor *s)
{
	struct sockaddr_un sa;
	int fd;

	if (fs_mount_is_passed(s->o->mountpoint))
		return 0;	/* "/dev/fd/N" names no mount another process could find */
	if (handover_path(s->o->mountpoint, s->handover_path, sizeof(s->handover_path))) {
		log_warn("no handover socket for %s (error %d): takeover will not find this mount",
			 s->o->mountpoint, errno);
		return 0;
	}
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	fill_addr(&sa, s->handover_path);
	unlink(s->handover_path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || chmod(s->handover_path, 0600) ||
	    listen(fd, 4)) {
		log_warn("cannot listen on %s: error %d", s->handover_path, errno);
		close(fd);
		return 0;
	}
	s->handover_fd = fd;
	write_owner(s);
	return 0;
}

static void refuse(int fd, const char *why)
{
	if (ctl_send(fd, CTL_REFUSED, why, strlen(why), NULL, 0)) {
		/* It is gone: nothing to tell. */
	}
}

void handover_accept(struct supervisor *s)
{
	uid_t uid;
	int fd = accept4(s->handover_fd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return;
	if (ctl_peer_uid(fd, &uid) || uid != geteuid()) {
		log_warn("refusing a takeover by uid %d", (int)uid);
		close(fd);
		return;
	}
	if (s->peer_fd >= 0 || s->stopping || !s->w.serving) {
		refuse(fd, s->peer_fd >= 0 ? "busy: another takeover of this mount is in progress" :
					    "busy: this credfs is starting or stopping");
		close(fd);
		return;
	}
	s->peer_fd = fd;
	s->peer_stage = PEER_NEW;
}

static void drop_peer(struct supervisor *s, const char *why)
{
	if (why)
		log_warn("takeover abandoned: %s; still serving", why);
	close(s->peer_fd);
	s->peer_fd = -1;
}

/* HELLO: compatible, and serving: the offer. */
static void offer(struct supervisor *s, const struct ctl_msg *m)
{
	struct ctl_hello h;
	struct ctl_offer of = { 0 };
	int fds[CTL_FDS_MAX];
	size_t n = 0;

	memcpy(&h, m->data, sizeof(h));
	if (memcmp(h.magic, HELLO_MAGIC, 8) || h.handover_version != HANDOVER_VERSION ||
	    (int)h.fuse_abi != fuse_abi()) {
		log_warn("refusing a takeover by an incompatible credfs");
		refuse(s->peer_fd, "incompatible: this credfs cannot hand its mount to that version");
		drop_peer(s, NULL);
		return;
	}
	memcpy(s->peer_version, h.version, sizeof(s->peer_version));
	s->peer_version[sizeof(s->peer_version) - 1] = '\0';
	for (char *c = s->peer_version; *c; c++)	/* it goes to the log */
		if (*c < 0x20 || *c > 0x7e)
			*c = '?';
	of.has_guard = s->m.guard >= 0;
	of.n_listeners = (uint32_t)s->n_listeners;
	of.init_len = (uint32_t)s->init.len;
	memcpy(of.init, s->init.bytes, s->init.len);
	memcpy(of.secret, s->secret, sizeof(of.secret));
	snprintf(of.version, sizeof(of.version), "%s", CREDFS_VERSION);
	if (s->m.guard >= 0)
		fds[n++] = s->m.guard;
	fds[n++] = s->m.fd;
	for (size_t i = 0; i < s->n_listeners; i++)
		fds[n++] = s->listeners[i];
	if (s->revoked_fd >= 0)		/* after the n_listeners listeners */
		fds[n++] = s->revoked_fd;
	if (ctl_send(s->peer_fd, CTL_OFFER, &of, sizeof(of), fds, n))
		drop_peer(s, "the successor went away");
	else
		s->peer_stage = PEER_OFFERED;
	OPENSSL_cleanse(&of, sizeof(of));
}

/* RELEASE: the successor serves.  Ours finishes and goes; so do we. */
static void release(struct supervisor *s)
{
	supervisor_stop_worker(s);
	s->handed_over = 1;
	if (ctl_send(s->peer_fd, CTL_RELEASED, NULL, 0, NULL, 0)) {
		/* It may be gone already; it has everything. */
	}
	drop_peer(s, NULL);
	close(s->handover_fd);	/* the path is the successor's now */
	s->handover_fd = -1;
	close(s->m.fd);
	s->m.fd = -1;
	if (s->m.guard >= 0)
		close(s->m.guard);
	s->m.guard = -1;
	for (size_t i = 0; i < s->n_listeners; i++)
		close(s->listeners[i]);
	s->n_listeners = 0;
	log_info("handed %s over to credfs %s", s->o->mountpoint, s->peer_version);
	/* A container's main process that ended now would be started again
	 * by its pod, and take the mount back: as PID 1, or when told to
	 * (CREDFS_AFTER_HANDOVER=wait), it waits for its SIGTERM instead. */
	if (getpid() != 1 && !after_handover_wait())
		s->done = 1;
}

void handover_serve(struct supervisor *s)
{
	struct ctl_msg m;

	if (ctl_recv(s->peer_fd, &m, 0)) {
		if (errno != ETIMEDOUT && errno != EINTR)
			drop_peer(s, "the successor went away");
		return;
	}
	switch (m.type) {
	case CTL_HELLO:
		if (m.len == sizeof(struct ctl_hello) && s->peer_stage == PEER_NEW)
			offer(s, &m);
		else
			drop_peer(s, "a malformed hello");
		break;
	case CTL_NEED_CREDS:
		if (m.nfds == 1 && s->w.ctl >= 0 &&
		    ctl_send(s->w.ctl, CTL_HANDOFF, NULL, 0, m.fds, 1))
			log_warn("cannot hand the credentials over: error %d", errno);
		break;
	case CTL_RELEASE:
		if (s->peer_stage == PEER_OFFERED)
			release(s);
		break;
	default:
		break;
	}
	ctl_close_fds(&m);
}

void handover_close(struct supervisor *s)
{
	if (s->peer_fd >= 0)
		drop_peer(s, NULL);
	if (s->handover_fd >= 0) {
		char owner[sizeof(s->handover_path) + 8];

		close(s->handover_fd);
		s->handover_fd = -1;
		if (!s->handed_over) {
			owner_path(s, owner, sizeof(owner));
			unlink(s->handover_path);
			unlink(owner);
		}
	}
}

/* ---- the successor's side ---------------------------------------------- */

/* Connects to the supervisor serving the mountpoint: the socket, or -1
 * (none serves it: nothing to take over). */
static int connect_running(struct supervisor *s)
{
	struct sockaddr_un sa;
	uid_t uid;
	int fd;

	if (handover_path(s->o->mountpoint, s->handover_path, sizeof(s->handover_path)))
		return -1;
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	fill_addr(&sa, s->handover_path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    ctl_peer_uid(fd, &uid) || uid != geteuid()) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Takes the offer's descriptors and state.  0, or the exit status. */
static int take_offer(struct supervisor *s, struct ctl_msg *m)
{
	struct ctl_offer of;
	size_t i = 0;

	if (m->type == CTL_REFUSED) {
		fprintf(stderr, "credfs takeover: the credfs serving %s refused: %.*s\n",
			s->o->mountpoint, (int)m->len, (const char *)m->data);
		return strstr((const char *)m->data, "incompatible") ? EXIT_USAGE :
								       EXIT_RUNTIME;
	}
	if (m->type != CTL_OFFER || m->len != sizeof(of))
		return EXIT_RUNTIME;
	memcpy(&of, m->data, sizeof(of));
	s->m.guard = of.has_guard && i < m->nfds ? m->fds[i++] : -1;
	s->m.fd = i < m->nfds ? m->fds[i++] : -1;
	while (i < m->nfds && s->n_listeners < of.n_listeners &&
	       s->n_listeners < LISTENERS_MAX)
		s->listeners[s->n_listeners++] = m->fds[i++];
	if (i < m->nfds)
		s->revoked_fd = m->fds[i++];
	for (; i < m->nfds; i++)
		close(m->fds[i]);
	m->nfds = 0;
	if (s->m.fd < 0 || of.init_len > sizeof(s->init.bytes))
		return EXIT_RUNTIME;
	memcpy(s->init.bytes, of.init, of.init_len);
	s->init.len = of.init_len;
	s->have_init = 1;
	memcpy(s->secret, of.secret, sizeof(s->secret));
	log_info("taking over %s from credfs %.*s", s->o->mountpoint,
		 (int)sizeof(of.version), of.version);
	OPENSSL_cleanse(&of, sizeof(of));
	return 0;
}

/* The handover proper, with the running supervisor on fd. */
static int take_over(struct supervisor *s, int fd)
{
	struct ctl_hello h = { .handover_version = HANDOVER_VERSION,
			       .fuse_abi = (uint32_t)fuse_abi() };
	struct ctl_msg m;
	int sv[2] = { -1, -1 }, status, rc;

	memcpy(h.magic, HELLO_MAGIC, 8);
	snprintf(h.version, sizeof(h.version), "%s", CREDFS_VERSION);
	if (ctl_send(fd, CTL_HELLO, &h, sizeof(h), NULL, 0) ||
	    ctl_recv(fd, &m, PEER_TIMEOUT_MS))
		return EXIT_RUNTIME;
	rc = take_offer(s, &m);
	ctl_close_fds(&m);
	if (rc)
		return rc;
	/* The old worker's credentials go straight to ours. */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0 &&
	    ctl_send(fd, CTL_NEED_CREDS, NULL, 0, &sv[0], 1)) {
		close(sv[1]);
		sv[1] = -1;
	}
	if (sv[0] >= 0)
		close(sv[0]);
	rc = supervisor_start_worker(s, START_RESUME, 0, sv[1]);
	if (sv[1] >= 0)
		close(sv[1]);
	if (rc || supervisor_wait_worker(s, CTL_SERVING, &status))
		return EXIT_RUNTIME;	/* the old one still serves */
	if (ctl_send(fd, CTL_RELEASE, NULL, 0, NULL, 0) ||
	    (ctl_recv(fd, &m, PEER_TIMEOUT_MS) == 0 && (ctl_close_fds(&m), m.type != CTL_RELEASED)))
		log_warn("the previous credfs did not confirm the handover; serving anyway");
	return 0;
}

int takeover_run(struct supervisor *s)
{
	int fd, status, rc;
	char msg[80];

	if (supervisor_spawn(s, 0))
		return EXIT_RUNTIME;
	if (supervisor_wait_worker(s, CTL_UP, &status))
		return status;		/* a bad configuration: nothing changed */
	fd = connect_running(s);
	if (fd < 0) {
		fprintf(stderr, "credfs takeover: no credfs serves %s\n", s->o->mountpoint);
		supervisor_stop_worker(s);
		return EXIT_NO_CREDFS;
	}
	rc = take_over(s, fd);
	close(fd);
	if (rc) {
		supervisor_stop_worker(s);
		return rc;
	}
	if (sd_notify_enabled()) {
		snprintf(msg, sizeof(msg), "MAINPID=%d", (int)getpid());
		sd_send(msg, NULL, 0);
	}
	return 0;
}

/* ---- the service manager's store ---------------------------------------- */

/* The state kept beside the descriptors: the INIT copy and the secret. */
static int read_state(struct supervisor *s, int fd)
{
	uint32_t len;

	if (pread(fd, &len, sizeof(len), 0) != (ssize_t)sizeof(len) ||
	    len > sizeof(s->init.bytes) ||
	    pread(fd, s->init.bytes, len, sizeof(len)) != (ssize_t)len ||
	    pread(fd, s->secret, sizeof(s->secret), sizeof(len) + len) !=
		    (ssize_t)sizeof(s->secret))
		return -1;
	s->init.len = len;
	s->have_init = 1;
	return 0;
}

int supervisor_make_state(struct supervisor *s)
{
	uint32_t len = (uint32_t)s->init.len;
	int fd;

	if (s->state_fd >= 0 || !s->have_init)
		return 0;
	fd = memfd_create("credfs-state", MFD_CLOEXEC);
	if (fd < 0)
		return -1;
	if (write(fd, &len, sizeof(len)) != (ssize_t)sizeof(len) ||
	    write(fd, s->init.bytes, len) != (ssize_t)len ||
	    write(fd, s->secret, sizeof(s->secret)) != (ssize_t)sizeof(s->secret)) {
		close(fd);
		return -1;
	}
	s->state_fd = fd;
	return 0;
}

/* The stored descriptors, made ours: close-on-exec, the FUSE one
 * non-blocking and above the guard (mount.h). */
static int adopt_stored(struct supervisor *s)
{
	char name[32];

	s->m.fd = sd_listen_fd("fuse");
	s->m.guard = sd_listen_fd("guard");
	s->state_fd = sd_listen_fd("state");
	s->revoked_fd = sd_listen_fd("revoked");
	if (s->revoked_fd >= 0)
		fcntl(s->revoked_fd, F_SETFD, FD_CLOEXEC);
	for (size_t i = 0; i < LISTENERS_MAX; i++) {
		int fd;

		snprintf(name, sizeof(name), "listen%zu", i);
		fd = sd_listen_fd(name);
		if (fd < 0)
			break;
		fcntl(fd, F_SETFD, FD_CLOEXEC);
		s->listeners[s->n_listeners++] = fd;
	}
	s->stored_listeners = s->n_listeners;
	sd_listen_forget();
	if (s->m.guard >= 0)
		fcntl(s->m.guard, F_SETFD, FD_CLOEXEC);
	if (s->m.guard > s->m.fd) {
		int fd = fcntl(s->m.fd, F_DUPFD_CLOEXEC, s->m.guard + 1);

		close(s->m.fd);
		s->m.fd = fd;
	}
	if (s->m.fd < 0 || s->state_fd < 0 || read_state(s, s->state_fd))
		return -1;
	fcntl(s->m.fd, F_SETFD, FD_CLOEXEC);
	fcntl(s->state_fd, F_SETFD, FD_CLOEXEC);
	return fcntl(s->m.fd, F_SETFL, fcntl(s->m.fd, F_GETFL) | O_NONBLOCK);
}

int supervisor_resume_stored(struct supervisor *s)
{
	int status;

	if (sd_listen_fd("fuse") < 0)
		return 0;
	if (adopt_stored(s)) {
		log_error("the service manager's stored descriptors are incomplete: mounting anew");
		return -1;
	}
	log_info("resuming %s from the service manager's descriptor store", s->o->mountpoint);
	if (supervisor_spawn(s, 0) || supervisor_wait_worker(s, CTL_UP, &status) ||
	    supervisor_start_worker(s, START_RESUME, 1, -1) ||
	    supervisor_wait_worker(s, CTL_SERVING, &status))
		return -1;
	return 1;
}
