/*
 * The worker: the process that serves.  It loads the configuration, tells
 * the supervisor (CTL_UP), gets the FUSE descriptor and how to start
 * (CTL_START), builds the engine and the faces over it (the files and,
 * with [endpoint], the HTTP face on the listen sockets the supervisor
 * keeps for it), answers the
 * kernel's INIT or replays the one the supervisor kept, says it is serving
 * (CTL_SERVING), and serves until the supervisor says stop (CTL_STOP: it
 * finishes what it has read and exits) or the connection ends.  Under a
 * service manager's watchdog a heartbeat goes to the supervisor.
 *
 * It runs in a process group of its own (a terminal's ^C is for the
 * supervisor) and dies with its supervisor (PR_SET_PDEATHSIG).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/crypto.h>

#include "buf.h"
#include "control.h"
#include "daemon.h"
#include "endpoint.h"
#include "face.h"
#include "http.h"
#include "log.h"
#include "reload.h"

#define SECRET_HEAP_SIZE (1 << 20)	/* room for a few hundred roles */

#define CTL_FD 3
#define KEPT_CONFIG_FD 4	/* with --kept-config */
#define IMPORT_TIMEOUT_MS 3000

struct worker {
	const char *config;
	const char *mountpoint;
	int debug;
	int detached;			/* log to syslog once serving */
	int fresh;			/* nothing mounted yet: bind before CTL_UP */
	int kept_config;		/* the supervisor's snapshot is at fd 4 */
	int revoked_fd;			/* the supervisor's revoked roles, or -1 */
	size_t n_revoked;		/* the supervisor knows of this many */
	int on_kept;			/* serving the supervisor's snapshot */
	int snapshot;			/* what was parsed, for the supervisor */
	int threads_left;		/* the engine could not stop them all */
	int ctl;
	struct generation *gen;
	struct engine *engine;
	struct fs_face *face;
	struct endpoint_secret *secret;	/* the supervisor's, copied */
	struct endpoint_sockets *sockets;	/* until the endpoint takes them */
	struct endpoint *endpoint;	/* the HTTP face */
	struct reloader *reloader;
	struct ctl_start start;
	int fuse_fd, guard_fd, creds_fd;
	pthread_t ctl_thread;
	int ctl_running;
	atomic_int stopping;
};

/* The kernel's INIT, for the supervisor to give later workers. */
static void on_init(void *arg, const struct fs_init_blob *blob)
{
	struct worker *w = arg;

	if (ctl_send(w->ctl, CTL_INIT, blob->bytes, blob->len, NULL, 0))
		log_warn("cannot hand the FUSE INIT to the supervisor: error %d", errno);
}

/* What the supervisor says while the worker serves; a heartbeat when it
 * says nothing for heartbeat_ms (when it feeds a watchdog).  Its end of
 * the socket closing means it is gone. */
static void *ctl_main(void *arg)
{
	struct worker *w = arg;
	int timeout = w->start.heartbeat_ms ? (int)w->start.heartbeat_ms : -1;
	struct ctl_msg m;

	while (!atomic_load(&w->stopping)) {
		if (ctl_recv(w->ctl, &m, timeout)) {
			if (errno == ETIMEDOUT) {
				if (ctl_send(w->ctl, CTL_HEARTBEAT, NULL, 0, NULL, 0) == 0)
					continue;
			} else if (errno == EINTR || errno == EAGAIN) {
				continue;
			}
			if (!atomic_load(&w->stopping))	/* not our own end */
				log_warn("the supervisor is gone: stopping");
			break;
		}
		if (m.type == CTL_STOP) {
			ctl_close_fds(&m);
			break;
		}
		if (m.type == CTL_RELOAD && m.len == sizeof(uint64_t) && w->reloader) {
			uint64_t n;

			memcpy(&n, m.data, sizeof(n));
			reload_ask(w->reloader, (unsigned long)n);
			continue;
		}
		if (m.type == CTL_HANDOFF && m.nfds == 1) {
			engine_export(w->engine, m.fds[0]);
			ctl_close_fds(&m);
			continue;
		}
		ctl_close_fds(&m);
	}
	atomic_store(&w->stopping, 1);
	fs_face_stop(w->face);
	return NULL;
}

/* SIGTERM to the worker itself: stop serving (the supervisor, unless it
 * asked, starts another). */
static struct worker *signal_worker;

static void on_term(int sig)
{
	(void)sig;
	if (signal_worker && signal_worker->face)
		fs_face_stop(signal_worker->face);
}

static void worker_signals(struct worker *w)
{
	struct sigaction sa;
	sigset_t hup;

	/* SIGHUP waits, blocked, until the reloader is there to take it
	 * (reloader_start): until then it would end the worker. */
	sigemptyset(&hup);
	sigaddset(&hup, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &hup, NULL);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGPIPE, &sa, NULL);
	signal_worker = w;
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
}

/* Waits for CTL_START and takes its descriptors, in the order the
 * supervisor sends them: [guard,] fuse[, creds], listeners. */
static int receive_start(struct worker *w)
{
	struct ctl_msg m;
	size_t i = 0, n_listeners;

	if (ctl_recv(w->ctl, &m, -1) || m.type != CTL_START ||
	    m.len != sizeof(w->start)) {
		log_error("no start from the supervisor");
		return -1;
	}
	memcpy(&w->start, m.data, sizeof(w->start));
	w->guard_fd = w->start.has_guard && i < m.nfds ? m.fds[i++] : -1;
	w->fuse_fd = i < m.nfds ? m.fds[i++] : -1;
	w->creds_fd = w->start.has_creds && i < m.nfds ? m.fds[i++] : -1;
	/* The HTTP face's listen sockets: a fresh worker bound its own (the
	 * same sockets, sent to the supervisor before CTL_UP). */
	n_listeners = m.nfds - i - (w->start.has_revoked && m.nfds > i);
	if (w->start.n_listeners < n_listeners)
		n_listeners = w->start.n_listeners;
	if (w->sockets) {
		for (size_t k = 0; k < n_listeners; k++)
			close(m.fds[i + k]);
	} else {
		w->sockets = endpoint_sockets_adopt(m.fds + i, n_listeners);
	}
	i += n_listeners;
	w->revoked_fd = w->start.has_revoked && i < m.nfds ? m.fds[i++] : -1;
	for (; i < m.nfds; i++)
		close(m.fds[i]);
	w->secret = endpoint_secret_from(w->start.secret, sizeof(w->start.secret));
	OPENSSL_cleanse(w->start.secret, sizeof(w->start.secret));
	if (w->fuse_fd < 0 || w->start.init_len > sizeof(w->start.init)) {
		log_error("the supervisor sent no FUSE descriptor");
		return -1;
	}
	if (!w->secret) {
		log_error("out of memory");
		return -1;
	}
	return 0;
}

/* The HTTP face's listen sockets now, for the supervisor to keep for the
 * next worker (after the start and after each reload). */
static void send_listeners(struct worker *w)
{
	int fds[CTL_FDS_MAX];
	size_t n = endpoint_listen_fds(w->endpoint, fds, CTL_FDS_MAX);

	if (ctl_send(w->ctl, CTL_LISTENERS, NULL, 0, fds, n))
		log_warn("cannot hand the endpoint's sockets to the supervisor: error %d",
			 errno);
}

/* A reload is done: the supervisor keeps what the next worker needs, the
 * listen sockets and the text of the configuration now in force. */
static void after_reload(void *arg, int snapshot)
{
	struct worker *w = arg;
	size_t n = fs_face_revoked_count(w->face);
	int fd = n != w->n_revoked ? fs_face_revoked(w->face) : -1;

	/* Revocations first: a worker that dies between two of these sends
	 * leaves its successor over-protective, never the other way. */
	if (fd >= 0) {
		if (ctl_send(w->ctl, CTL_REVOKED, NULL, 0, &fd, 1))
			log_warn("cannot hand the revoked roles to the supervisor: error %d",
				 errno);
		else
			w->n_revoked = n;
		close(fd);
	}
	if (ctl_send(w->ctl, CTL_CONFIG, NULL, 0, &snapshot, 1))
		log_warn("cannot hand the configuration to the supervisor: error %d", errno);
	send_listeners(w);
}

/* A predecessor's revocations hold here too: what a reader was refused
 * before stays refused.  Without them a reader whose access a reload
 * removed could, through a descriptor opened earlier, read what the
 * kernel caches for the new owner.  Marked before serving; the kernel is
 * told once INIT is done (fs_face_push_revoked), since libfuse drops what
 * it is told before. */
static int restore_revoked(struct worker *w)
{
	int rc;

	if (w->revoked_fd < 0)
		return 0;
	rc = fs_face_restore_revoked(w->face, w->revoked_fd);
	close(w->revoked_fd);
	w->revoked_fd = -1;
	if (rc) {
		log_error("cannot read the revoked roles from the supervisor: error %d", errno);
		return -1;
	}
	w->n_revoked = fs_face_revoked_count(w->face);
	return 0;
}

/* The supervisor's reload number n was made (or refused: it is told all
 * the same, the file was read). */
static void reload_done(void *arg, unsigned long n)
{
	struct worker *w = arg;
	uint64_t number = n;

	if (ctl_send(w->ctl, CTL_RELOADED, &number, sizeof(number), NULL, 0))
		log_warn("cannot tell the supervisor a reload was made: error %d", errno);
}

/* A fresh start binds every listen address before the supervisor mounts:
 * one in use fails the start on the terminal, with nothing mounted. */
static int bind_fresh(struct worker *w)
{
	int fds[CTL_FDS_MAX];
	size_t n = 0;
	char why[256];

	w->sockets = endpoint_bind(&w->gen->cfg->endpoint, why, sizeof(why));
	if (!w->sockets) {
		fprintf(stderr, "credfs: %s\n", why);
		return -1;
	}
	n = endpoint_sockets_fds(w->sockets, fds, CTL_FDS_MAX);
	return n && ctl_send(w->ctl, CTL_LISTENERS, NULL, 0, fds, n) ? -1 : 0;
}

/* The HTTP face over the engine, on the sockets it was given (it binds
 * those it lacks; with no [endpoint] it listens nowhere). */
static int start_endpoint(struct worker *w)
{
	char why[256];

	w->endpoint = endpoint_start(w->engine, w->gen, w->secret, w->sockets,
				     why, sizeof(why));
	w->sockets = NULL;	/* taken, whatever happened */
	if (!w->endpoint) {
		log_error("%s", why);
		return -1;
	}
	send_listeners(w);
	return 0;
}

static int build(struct worker *w)
{
	struct fs_init_blob blob = { .len = w->start.init_len };
	struct fs_face_opts fo = {
		.mountpoint = w->mountpoint,
		.config_path = w->config,
		.serve = {
			.fd = w->fuse_fd,
			.resend = (int)w->start.resend,
			.debug = w->debug,
			.on_init = on_init,
			.on_init_arg = w,
		},
		.no_push = getenv("CREDFS_TEST_NO_PUSH") != NULL,
		.endpoint_secret = w->secret,
	};
	struct engine_options eo = { .listener = fs_face_listener };
	const char *crash = getenv("CREDFS_TEST_CRASH_AFTER");

	memcpy(blob.bytes, w->start.init, blob.len);
	if (w->start.mode == START_RESUME)
		fo.serve.resume = &blob;
	/* Tests: the worker aborts holding a request.  The file makes it
	 * one worker only: the first to find it removes it. */
	if (crash) {
		const char *file = getenv("CREDFS_TEST_CRASH_FILE");

		if (!file || unlink(file) == 0)
			fo.serve.crash_after = strtoul(crash, NULL, 10);
	}
	w->fuse_fd = -1;	/* the face owns it now */
	w->face = fs_face_new(&fo);
	if (!w->face)
		return -1;
	eo.listener_arg = w->face;
	w->engine = engine_new(w->gen, &eo);
	if (!w->engine)
		return -1;
	if (w->creds_fd >= 0) {
		engine_import(w->engine, w->creds_fd, IMPORT_TIMEOUT_MS);
		close(w->creds_fd);
		w->creds_fd = -1;
	}
	if (fs_face_attach(w->face, w->engine, w->gen) || restore_revoked(w))
		return -1;
	return start_endpoint(w);
}

/* Serving: logs go to syslog once detached (stderr was the terminal's
 * until then, for errors at start). */
static void detach_logs(struct worker *w)
{
	int null;

	if (!w->detached)
		return;
	log_open("credfs", 1, w->debug ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO);
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0) {
		dup2(null, 1);
		dup2(null, 2);
		close(null);
	}
}

static int serve(struct worker *w)
{
	struct engine_face faces[] = { fs_face_reloader(w->face),
				       endpoint_reloader(w->endpoint) };
	struct reload_hooks hooks = { .faces = faces, .n_faces = 2,
				      .after = after_reload, .after_arg = w,
				      .done = reload_done };
	int rc;

	if (fs_face_init(w->face))
		return EXIT_RUNTIME;
	fs_face_push_revoked(w->face);
	w->reloader = reloader_start(w->config, w->engine, &hooks);
	if (!w->reloader ||
	    pthread_create(&w->ctl_thread, NULL, ctl_main, w))
		return EXIT_RUNTIME;
	w->ctl_running = 1;
	if (ctl_send(w->ctl, CTL_SERVING, NULL, 0, NULL, 0))
		return EXIT_RUNTIME;
	detach_logs(w);
	log_info("%s %s at %s: %zu role%s%s",
		 w->start.mode == START_FIRST ? "mounted" : "serving again",
		 w->config, w->mountpoint, w->gen->cfg->n_roles,
		 w->gen->cfg->n_roles == 1 ? "" : "s",
		 w->on_kept ? " (the configuration in force, kept by the supervisor)" : "");
	/* The engine and the faces hold what they use of it: a reload that
	 * replaces it (a key rotated away) frees it. */
	generation_unref(w->gen);
	w->gen = NULL;
	rc = fs_face_serve(w->face);
	if (rc == 1) {
		log_info("the mount at %s is gone", w->mountpoint);
		atomic_store(&w->stopping, 1);
		if (ctl_send(w->ctl, CTL_GONE, NULL, 0, NULL, 0)) {
			/* The supervisor sees it itself. */
		}
	}
	return rc < 0 ? EXIT_RUNTIME : 0;
}

/* The stop order: no more reloads; the control thread; the HTTP face
 * (it answers what waits on the engine); the engine's threads (its
 * listener silenced); then the faces it was telling. */
static void teardown(struct worker *w)
{
	reloader_stop(w->reloader);
	atomic_store(&w->stopping, 1);
	if (w->ctl_running) {
		shutdown(w->ctl, SHUT_RD);
		pthread_join(w->ctl_thread, NULL);
	}
	endpoint_stop(w->endpoint);
	if (w->engine)
		engine_stop(w->engine);
	w->threads_left = engine_threads_left(w->engine);
	signal_worker = NULL;
	fs_face_free(w->face);
	engine_free(w->engine);
	generation_unref(w->gen);
	if (w->guard_fd >= 0)
		close(w->guard_fd);
	if (w->fuse_fd >= 0)
		close(w->fuse_fd);
	if (w->creds_fd >= 0)
		close(w->creds_fd);
	endpoint_sockets_close(w->sockets);
	if (w->revoked_fd >= 0)
		close(w->revoked_fd);
	endpoint_secret_free(w->secret);
}

/* Secrets live in the worker alone.  Keys, session tokens and JWTs go to
 * OpenSSL's secure heap: locked in
 * memory where the system allows it (never swapped) and left out of core
 * dumps.  Must run before the configuration (and its keys) is loaded.
 * Failure is not fatal: secrets are still wiped before they are freed. */
static void lock_secret_memory(void)
{
	switch (secret_heap_init(SECRET_HEAP_SIZE)) {
	case 1:
		log_debug("secrets: %d KiB secure heap, locked in memory",
			  SECRET_HEAP_SIZE / 1024);
		break;
	case 2:
		log_debug("secrets: secure heap not locked in memory (RLIMIT_MEMLOCK)");
		break;
	default:
		log_debug("secrets: no secure heap; secrets use ordinary memory");
		break;
	}
}

/* Loads the configuration, and a snapshot of the text for the supervisor
 * to keep.  A worker started again on a mount (after a crash) serves the
 * configuration in force, the supervisor's snapshot, not the file: edits
 * not reloaded yet wait for the next reload, as they would have, and one
 * that would not load, or names an address that cannot be had, does not
 * take the mount down.  The file is read when there is no snapshot (a
 * fresh start, a takeover, a restart by the service manager) or when the
 * snapshot no longer loads (a key file it names is gone).  0 or -1 (said
 * why). */
static int load_config(struct worker *w)
{
	struct cfg_error err;
	char msg[sizeof(err.file) + CFG_ERROR_TEXT_MAX + 32];
	int kept = w->kept_config ? KEPT_CONFIG_FD : -1;

	if (kept >= 0) {
		fcntl(kept, F_SETFD, FD_CLOEXEC);
		if (generation_load_kept(kept, w->config, &w->gen, &err) == 0) {
			w->snapshot = kept;
			w->on_kept = 1;
			return 0;
		}
		cfg_error_format(&err, msg, sizeof(msg));
		log_warn("the configuration in force does not load any more (%s): reading %s",
			 msg, w->config);
		close(kept);
	}
	if (generation_load_snapshot(w->config, &w->gen, &w->snapshot, &err) == 0)
		return 0;
	cfg_error_format(&err, msg, sizeof(msg));
	if (w->fresh)
		fprintf(stderr, "credfs: %s\n", msg);
	else
		log_error("%s", msg);
	return -1;
}

/* credfs --worker [-d] [--detached] [--fresh] [--kept-config] CONFIG MOUNTPOINT */
int worker_main(int argc, char **argv)
{
	struct worker w = { .ctl = CTL_FD, .fuse_fd = -1, .guard_fd = -1, .creds_fd = -1,
			    .snapshot = -1, .revoked_fd = -1 };
	int i = 1, rc;

	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "-d"))
			w.debug = 1;
		else if (!strcmp(argv[i], "--detached"))
			w.detached = 1;
		else if (!strcmp(argv[i], "--fresh"))
			w.fresh = 1;
		else if (!strcmp(argv[i], "--kept-config"))
			w.kept_config = 1;
	}
	if (argc - i != 2)
		return EXIT_USAGE;
	w.config = argv[i];
	w.mountpoint = argv[i + 1];
	fcntl(w.ctl, F_SETFD, FD_CLOEXEC);
	/* A worker started again under a detached supervisor has no terminal:
	 * it logs to syslog from the start. */
	log_open("credfs", w.detached && !w.fresh,
		 w.debug ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO);
	lock_secret_memory();
	worker_signals(&w);
	if (load_config(&w))
		return EXIT_USAGE;
	if (w.fresh && bind_fresh(&w)) {
		teardown(&w);
		return EXIT_RUNTIME;
	}
	rc = ctl_send(w.ctl, CTL_UP, CREDFS_VERSION, strlen(CREDFS_VERSION),
		      &w.snapshot, w.snapshot >= 0);
	if (w.snapshot >= 0)
		close(w.snapshot);
	w.snapshot = -1;
	if (rc || receive_start(&w)) {
		teardown(&w);
		return EXIT_RUNTIME;
	}
	if (http_global_init()) {
		teardown(&w);
		return EXIT_RUNTIME;
	}
	rc = build(&w) ? EXIT_RUNTIME : serve(&w);
	teardown(&w);
	if (w.threads_left) {
		/* A thread is still inside libcurl or OpenSSL: their exit
		 * handlers must not run under it. */
		log_warn("exiting with a request still in flight");
		log_close();
		_exit(rc);
	}
	http_global_cleanup();
	log_close();
	return rc;
}
