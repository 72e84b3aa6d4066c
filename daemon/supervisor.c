/*
 * The supervisor (daemon.h, docs/lifecycle.md): it holds the mount and
 * runs one worker at a time.  Everything happens in one thread around one
 * poll(): signals (signalfd), the worker's control socket, the handover
 * socket, and the FUSE descriptor itself (POLLERR once the connection
 * ends).  It never reads the FUSE descriptor, never talks to a network,
 * never holds a credential and never parses the configuration: a worker
 * does that, and says whether it loaded.
 */
#include "supervisor.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "clock.h"
#include "control.h"
#include "log.h"
#include "mount.h"
#include "sdnotify.h"

#define STOP_WAIT_MS 10000
#define QUICK_DEATH_MS 1000		/* a worker that dies sooner ... */
#define QUICK_DEATHS_FREE 3		/* ... this many times running backs off */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 10000

/* ---- the worker ------------------------------------------------------- */

/* Starts a worker with its control socket at descriptor 3.  A fresh one
 * (nothing is mounted yet) binds the HTTP face's listen addresses itself,
 * so one in use fails the start before anything is mounted.  0 or -1. */
int supervisor_spawn(struct supervisor *s, int fresh)
{
	int sv[2];
	pid_t parent = getpid(), pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		return -1;
	pid = fork();
	if (pid < 0) {
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	if (pid == 0) {
		char *argv[9];
		int n = 0, kept, ctl;
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(EXIT_RUNTIME);
		/* The control socket goes to 3 and the kept configuration to
		 * 4, each moved out of the way first (either may be 3 or 4). */
		ctl = fcntl(sv[1], F_DUPFD_CLOEXEC, 10);
		kept = s->config_fd >= 0 && !fresh ?
			fcntl(s->config_fd, F_DUPFD_CLOEXEC, 10) : -1;
		if (ctl < 0 || dup2(ctl, 3) < 0 || (kept >= 0 && dup2(kept, 4) < 0))
			_exit(EXIT_RUNTIME);
		argv[n++] = "credfs";
		argv[n++] = "--worker";
		if (s->o->debug)
			argv[n++] = "-d";
		if (!s->o->foreground)
			argv[n++] = "--detached";
		if (fresh)
			argv[n++] = "--fresh";
		if (kept >= 0)
			argv[n++] = "--kept-config";
		argv[n++] = (char *)s->o->config;
		argv[n++] = (char *)s->o->mountpoint;
		argv[n] = NULL;
		execv("/proc/self/exe", argv);
		_exit(EXIT_RUNTIME);
	}
	close(sv[1]);
	s->w = (struct worker_proc){ .pid = pid, .ctl = sv[0],
				     .started_ms = clock_mono_ms() };
	return 0;
}

/* The descriptors a worker starts with, in the order it expects. */
static size_t start_fds(const struct supervisor *s, int creds, int *fds)
{
	size_t n = 0;

	if (s->m.guard >= 0)
		fds[n++] = s->m.guard;
	fds[n++] = s->m.fd;
	if (creds >= 0)
		fds[n++] = creds;
	for (size_t i = 0; i < s->n_listeners; i++)
		fds[n++] = s->listeners[i];
	if (s->revoked_fd >= 0)
		fds[n++] = s->revoked_fd;
	return n;
}

int supervisor_start_worker(struct supervisor *s, int mode, int resend, int creds)
{
	struct ctl_start st = { .mode = (uint32_t)mode, .resend = (uint32_t)resend };
	int fds[CTL_FDS_MAX];
	size_t n = start_fds(s, creds, fds);

	st.has_guard = s->m.guard >= 0;
	st.has_creds = creds >= 0;
	st.has_revoked = s->revoked_fd >= 0;
	st.n_listeners = (uint32_t)s->n_listeners;
	/* Heartbeats only feed the service manager's watchdog: without one
	 * an idle worker and supervisor do not wake at all. */
	st.heartbeat_ms = (uint32_t)(s->watchdog_usec / 4000);
	if (s->watchdog_usec && st.heartbeat_ms == 0)
		st.heartbeat_ms = 1;
	if (s->have_init) {
		st.init_len = (uint32_t)s->init.len;
		memcpy(st.init, s->init.bytes, s->init.len);
	}
	memcpy(st.secret, s->secret, sizeof(st.secret));
	if (ctl_send(s->w.ctl, CTL_START, &st, sizeof(st), fds, n)) {
		OPENSSL_cleanse(&st, sizeof(st));
		return -1;
	}
	OPENSSL_cleanse(&st, sizeof(st));
	s->w.started = 1;
	return 0;
}

/* Waits (blocking, at start) for the worker's next message of type; the
 * worker dying first is reaped here: its exit status in *status, its wait
 * status in s->w.wait_status, its socket closed.  0 or -1. */
int supervisor_wait_worker(struct supervisor *s, uint32_t type, int *status)
{
	struct ctl_msg m;

	*status = EXIT_RUNTIME;
	for (;;) {
		if (ctl_recv(s->w.ctl, &m, -1)) {
			int st = 0;

			if (waitpid(s->w.pid, &st, 0) == s->w.pid)
				*status = WIFEXITED(st) ? WEXITSTATUS(st) : EXIT_RUNTIME;
			close(s->w.ctl);
			s->w.ctl = -1;
			s->w.pid = 0;
			s->w.wait_status = st;
			return -1;
		}
		supervisor_take_message(s, &m);
		if (m.type == type)
			return 0;
	}
}

/* The revoked roles in the service manager's store, replacing what was. */
static void store_revoked(struct supervisor *s)
{
	if (!sd_notify_enabled() || s->revoked_fd < 0)
		return;
	sd_send("FDSTOREREMOVE=1\nFDNAME=revoked", NULL, 0);
	sd_send("FDSTORE=1\nFDNAME=revoked", &s->revoked_fd, 1);
}

/* The listen sockets in the service manager's store, replacing those
 * stored before. */
static void store_listeners(struct supervisor *s)
{
	char msg[64];

	if (!sd_notify_enabled())
		return;
	for (size_t i = 0; i < s->stored_listeners; i++) {
		snprintf(msg, sizeof(msg), "FDSTOREREMOVE=1\nFDNAME=listen%zu", i);
		sd_send(msg, NULL, 0);
	}
	for (size_t i = 0; i < s->n_listeners; i++) {
		snprintf(msg, sizeof(msg), "FDSTORE=1\nFDNAME=listen%zu", i);
		sd_send(msg, &s->listeners[i], 1);
	}
	s->stored_listeners = s->n_listeners;
}

/* Asks a serving worker for the reloads asked and not yet made. */
static void ask_reload(struct supervisor *s)
{
	uint64_t n = s->reload_asked;

	if (n > s->reload_done && s->w.pid && s->w.serving && s->w.ctl >= 0 &&
	    ctl_send(s->w.ctl, CTL_RELOAD, &n, sizeof(n), NULL, 0))
		log_warn("cannot ask the worker for a reload: error %d", errno);
}

/* The one descriptor m carries, in *slot instead of the one there: 1 if
 * it did carry one. */
static int keep_fd(int *slot, struct ctl_msg *m)
{
	if (m->nfds != 1)
		return 0;
	if (*slot >= 0)
		close(*slot);
	*slot = m->fds[0];
	m->fds[0] = -1;
	return 1;
}

void supervisor_take_message(struct supervisor *s, struct ctl_msg *m)
{
	switch (m->type) {
	case CTL_INIT:
		if (m->len <= sizeof(s->init.bytes)) {
			memcpy(s->init.bytes, m->data, m->len);
			s->init.len = m->len;
			s->have_init = 1;
		}
		break;
	case CTL_SERVING:
		s->w.serving = 1;
		s->w.heartbeat_ms = clock_mono_ms();
		ask_reload(s);
		break;
	case CTL_RELOADED:
		if (m->len == sizeof(uint64_t)) {
			uint64_t n;

			memcpy(&n, m->data, sizeof(n));
			if (n > s->reload_done)
				s->reload_done = n;
		}
		break;
	case CTL_HEARTBEAT:
		s->w.heartbeat_ms = clock_mono_ms();
		break;
	case CTL_GONE:
		s->connection_gone = 1;
		break;
	case CTL_UP:
	case CTL_CONFIG:
		/* What the next worker falls back to if the file does not
		 * load then.  The supervisor never reads it. */
		keep_fd(&s->config_fd, m);
		break;
	case CTL_REVOKED:
		if (keep_fd(&s->revoked_fd, m) && s->ready)
			store_revoked(s);
		break;
	case CTL_LISTENERS:
		/* The worker's listen sockets now (after a start or a reload):
		 * the ones it dropped are closed here too, so their ports are
		 * free again. */
		for (size_t i = 0; i < s->n_listeners; i++)
			close(s->listeners[i]);
		s->n_listeners = 0;
		for (size_t i = 0; i < m->nfds && i < LISTENERS_MAX; i++) {
			s->listeners[s->n_listeners++] = m->fds[i];
			m->fds[i] = -1;
		}
		if (s->ready)
			store_listeners(s);
		break;
	default:
		break;
	}
	ctl_close_fds(m);
}

/* Why a worker ended, for the log. */
static void describe_exit(int st, char *out, size_t len)
{
	if (WIFSIGNALED(st))
		snprintf(out, len, "killed by signal %d", WTERMSIG(st));
	else
		snprintf(out, len, "exited with status %d", WEXITSTATUS(st));
}

/* The worker ended with wait status st: what comes next (a restart, with
 * a growing delay if workers keep dying soon; or the end). */
static void worker_ended(struct supervisor *s, int st)
{
	int64_t now = clock_mono_ms(), ran = now - s->w.started_ms;
	char why[64];

	if (s->w.ctl >= 0)
		close(s->w.ctl);
	describe_exit(st, why, sizeof(why));
	s->w = (struct worker_proc){ 0 };
	s->w.ctl = -1;
	if (s->stopping || s->handed_over)
		return;
	if (s->connection_gone || fs_connection_ended(s->m.fd)) {
		log_info("the mount at %s is gone: stopping", s->o->mountpoint);
		s->done = 1;
		return;
	}
	s->quick_deaths = ran < QUICK_DEATH_MS ? s->quick_deaths + 1 : 0;
	s->backoff_ms = s->quick_deaths <= QUICK_DEATHS_FREE ? 0 :
		s->backoff_ms ? s->backoff_ms * 2 : BACKOFF_MIN_MS;
	if (s->backoff_ms > BACKOFF_MAX_MS)
		s->backoff_ms = BACKOFF_MAX_MS;
	s->restart_at_ms = now + s->backoff_ms;
	s->restarts++;
	if (s->backoff_ms)
		log_warn("worker %s after %lld ms, %d times in a row: starting another in %lld ms (see the lines above for why it dies)",
			 why, (long long)ran, s->quick_deaths, (long long)s->backoff_ms);
	else
		log_warn("worker %s after %lld ms; starting another", why, (long long)ran);
}

/* Reaps the worker if it ended. */
static void reap(struct supervisor *s)
{
	int st;

	if (s->w.pid && waitpid(s->w.pid, &st, WNOHANG) == s->w.pid)
		worker_ended(s, st);
}

/* A new worker on the same connection, after the last one died: it
 * replays INIT and asks the kernel to resend what was in flight. */
static void restart(struct supervisor *s)
{
	int status;

	s->restart_at_ms = 0;
	if (supervisor_spawn(s, 0)) {
		s->restart_at_ms = clock_mono_ms() + BACKOFF_MAX_MS;
		log_error("cannot start a worker: error %d", errno);
		return;
	}
	if (supervisor_wait_worker(s, CTL_UP, &status)) {
		/* It died before it was up: reaped already. */
		worker_ended(s, s->w.wait_status);
		return;
	}
	if (supervisor_start_worker(s, START_RESUME, 1, -1)) {
		/* Its socket is gone: SIGCHLD reaps it. */
	}
}

/* ---- stopping ----------------------------------------------------------- */

/* Tells the worker to stop and waits for it (SIGKILL after STOP_WAIT_MS). */
void supervisor_stop_worker(struct supervisor *s)
{
	int64_t deadline = clock_mono_ms() + STOP_WAIT_MS;
	int st;

	if (!s->w.pid)
		return;
	if (ctl_send(s->w.ctl, CTL_STOP, NULL, 0, NULL, 0))
		kill(s->w.pid, SIGTERM);
	while (waitpid(s->w.pid, &st, WNOHANG) == 0) {
		if (clock_mono_ms() > deadline) {
			log_warn("the worker did not stop within %d s: killing it",
				 STOP_WAIT_MS / 1000);
			kill(s->w.pid, SIGKILL);
			waitpid(s->w.pid, &st, 0);
			break;
		}
		usleep(5000);
	}
	close(s->w.ctl);
	s->w = (struct worker_proc){ .ctl = -1 };
}

/* A stop on purpose: the worker finishes, the mount goes. */
static void stop_on_purpose(struct supervisor *s)
{
	s->stopping = 1;
	supervisor_stop_worker(s);
	if (sd_notify_enabled())
		sd_send("STOPPING=1\nFDSTOREREMOVE=1\nFDNAME=fuse", NULL, 0);
	if (fs_mount_is_passed(s->o->mountpoint)) {
		log_info("stopped serving %s (its mount is its maker's)", s->o->mountpoint);
	} else {
		if (!s->connection_gone && fs_unmount(s->o->mountpoint))
			log_warn("unmounting %s failed: error %d", s->o->mountpoint, errno);
		log_info("unmounted %s", s->o->mountpoint);
	}
	s->done = 1;
}

/* ---- the service manager ------------------------------------------------ */

/* The descriptors to keep in the service manager's store, so that the
 * mount survives the supervisor itself (docs/lifecycle.md). */
void supervisor_store_fds(struct supervisor *s)
{
	if (!sd_notify_enabled())
		return;
	if (supervisor_make_state(s))
		log_warn("cannot keep the mount's state with the service manager");
	sd_send("FDSTORE=1\nFDNAME=fuse", &s->m.fd, 1);
	if (s->m.guard >= 0)
		sd_send("FDSTORE=1\nFDNAME=guard", &s->m.guard, 1);
	if (s->state_fd >= 0)
		sd_send("FDSTORE=1\nFDNAME=state", &s->state_fd, 1);
	store_listeners(s);
	store_revoked(s);
}

static void watchdog(struct supervisor *s, int64_t now)
{
	int64_t period = (int64_t)(s->watchdog_usec / 2000);

	if (!s->watchdog_usec || now - s->watchdog_sent_ms < period)
		return;
	/* Only a worker that answers keeps the service manager happy. */
	if (s->w.serving && now - s->w.heartbeat_ms < (int64_t)(s->watchdog_usec / 1000)) {
		sd_send("WATCHDOG=1", NULL, 0);
		s->watchdog_sent_ms = now;
	}
}

/* ---- the main loop ------------------------------------------------------- */

static int make_signalfd(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

static void on_signal(struct supervisor *s)
{
	struct signalfd_siginfo si;

	while (read(s->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGTERM:
		case SIGINT:
			if (s->handed_over) {
				s->done = 1;	/* nothing of ours is mounted */
				break;
			}
			if (s->stopping)
				break;
			log_info("stopping on %s", si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
			stop_on_purpose(s);
			break;
		case SIGHUP:
			/* Numbered and kept until a worker says it was made:
			 * one that dies first, or is not serving yet, leaves it
			 * to the next (which serves the configuration in force,
			 * not the file, until told). */
			s->reload_asked++;
			ask_reload(s);
			break;
		case SIGCHLD:
			reap(s);
			break;
		}
	}
}

static void on_worker_message(struct supervisor *s)
{
	struct ctl_msg m;

	if (ctl_recv(s->w.ctl, &m, 0)) {
		if (errno != ETIMEDOUT && errno != EINTR) {
			/* Its end is closed: stop polling it (it would poll
			 * ready for ever); SIGCHLD, or now, reaps the worker. */
			close(s->w.ctl);
			s->w.ctl = -1;
			reap(s);
		}
		return;
	}
	supervisor_take_message(s, &m);
}

/* The poll timeout: the next restart or watchdog beat, else none. */
static int next_timeout(const struct supervisor *s, int64_t now)
{
	int64_t t = -1;

	if (s->restart_at_ms)
		t = s->restart_at_ms > now ? s->restart_at_ms - now : 0;
	if (s->watchdog_usec) {
		int64_t w = (int64_t)(s->watchdog_usec / 2000);

		if (t < 0 || w < t)
			t = w;
	}
	return t < 0 ? -1 : t > 60000 ? 60000 : (int)t;
}

static void loop(struct supervisor *s)
{
	while (!s->done) {
		struct pollfd p[5];
		int64_t now = clock_mono_ms();
		nfds_t n = 0;
		int iw = -1, ih = -1, ic = -1;

		p[n++] = (struct pollfd){ s->sigfd, POLLIN, 0 };
		if (s->w.ctl >= 0) {
			iw = (int)n;
			p[n++] = (struct pollfd){ s->w.ctl, POLLIN, 0 };
		}
		if (s->handover_fd >= 0) {
			ih = (int)n;
			p[n++] = (struct pollfd){ s->handover_fd, POLLIN, 0 };
		}
		if (s->peer_fd >= 0) {
			ic = (int)n;
			p[n++] = (struct pollfd){ s->peer_fd, POLLIN, 0 };
		}
		if (poll(p, n, next_timeout(s, now)) < 0 && errno != EINTR)
			break;
		if (p[0].revents)
			on_signal(s);
		if (iw >= 0 && p[iw].revents && s->w.ctl >= 0)
			on_worker_message(s);
		if (ih >= 0 && p[ih].revents)
			handover_accept(s);
		if (ic >= 0 && p[ic].revents)
			handover_serve(s);
		now = clock_mono_ms();
		if (!s->done && !s->w.pid && s->restart_at_ms && now >= s->restart_at_ms &&
		    !s->stopping && !s->handed_over)
			restart(s);
		watchdog(s, now);
	}
}

/* ---- start ------------------------------------------------------------- */

/* Detaching: the process that was started waits for the one that serves
 * to say how the start went (like fuse_daemonize), so errors still reach
 * the terminal and the exit status means what it says. */
static int detach(struct supervisor *s)
{
	int p[2];
	pid_t pid;
	char status;

	if (s->o->foreground)
		return 0;
	if (pipe2(p, O_CLOEXEC))
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid > 0) {
		close(p[1]);
		if (read(p[0], &status, 1) != 1)
			status = EXIT_RUNTIME;
		_exit(status);
	}
	close(p[0]);
	setsid();
	s->ready_pipe = p[1];
	return 0;
}

/* Says how the start went: to the waiting parent, the service manager. */
void supervisor_started(struct supervisor *s, int status)
{
	char c = (char)status;
	int null;

	if (s->ready_pipe >= 0) {
		if (write(s->ready_pipe, &c, 1) != 1) {
			/* The parent is gone: nobody to tell. */
		}
		close(s->ready_pipe);
		s->ready_pipe = -1;
		if (!status) {
			log_open("credfs", 1, s->o->debug ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO);
			null = open("/dev/null", O_RDWR | O_CLOEXEC);
			if (null >= 0) {
				dup2(null, 0);
				dup2(null, 1);
				dup2(null, 2);
				close(null);
			}
		}
	}
	s->ready = !status;
	if (!status && sd_notify_enabled()) {
		char msg[PATH_MAX + 64];

		snprintf(msg, sizeof(msg), "READY=1\nMAINPID=%d\nSTATUS=serving %s",
			 (int)getpid(), s->o->mountpoint);
		sd_send(msg, NULL, 0);
		supervisor_store_fds(s);
	}
}

/* A fresh mount: the worker loads the configuration first (a bad one is
 * refused before anything is mounted), then the mount, then the INIT. */
static int start_fresh(struct supervisor *s)
{
	int status;

	if (supervisor_spawn(s, 1))
		return EXIT_RUNTIME;
	if (supervisor_wait_worker(s, CTL_UP, &status))
		return status;
	if (fs_mount(s->o->mountpoint, s->o->config, s->o->fuse_opts, s->o->debug, &s->m)) {
		supervisor_stop_worker(s);
		return EXIT_RUNTIME;
	}
	if (supervisor_start_worker(s, START_FIRST, 0, -1) ||
	    supervisor_wait_worker(s, CTL_SERVING, &status)) {
		if (!fs_mount_is_passed(s->o->mountpoint))
			fs_unmount(s->o->mountpoint);
		return EXIT_RUNTIME;
	}
	return 0;
}

int supervisor_run(const struct daemon_opts *o)
{
	struct supervisor s = {
		.o = o, .m = { -1, -1 }, .w = { .ctl = -1 }, .sigfd = -1,
		.handover_fd = -1, .peer_fd = -1, .ready_pipe = -1, .state_fd = -1,
		.config_fd = -1, .revoked_fd = -1,
	};
	int rc;

	log_open("credfs", 0, o->debug ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO);
	if (detach(&s))
		return EXIT_RUNTIME;
	s.sigfd = make_signalfd();
	s.watchdog_usec = sd_watchdog_usec();
	if (s.sigfd < 0) {
		supervisor_started(&s, EXIT_RUNTIME);
		return EXIT_RUNTIME;
	}
	if (o->takeover)
		rc = takeover_run(&s);
	else if (supervisor_resume_stored(&s) > 0)
		rc = 0;
	else if (RAND_bytes(s.secret, sizeof(s.secret)) != 1)
		rc = EXIT_RUNTIME;
	else
		rc = start_fresh(&s);
	if (!rc)
		rc = handover_listen(&s);
	supervisor_started(&s, rc);
	if (!rc) {
		log_info("supervising %s at %s (worker %d)", o->config, o->mountpoint,
			 (int)s.w.pid);
		loop(&s);
	}
	handover_close(&s);
	if (s.config_fd >= 0)
		close(s.config_fd);
	if (s.revoked_fd >= 0)
		close(s.revoked_fd);
	OPENSSL_cleanse(s.secret, sizeof(s.secret));
	return rc;
}
