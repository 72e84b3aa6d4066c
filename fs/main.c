/*
 * credfs: cloud credentials as files.  This is the entry point: the
 * commands that do not mount, option parsing, and the mount's life from
 * start to clean unmount.
 */
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "commands.h"
#include "credfs.h"
#include "endpoint.h"
#include "http.h"
#include "inval.h"
#include "log.h"
#include "reload.h"

#define CREDFS_MAX_THREADS 512
#define SECRET_HEAP_SIZE (1 << 20)	/* room for a few hundred roles */

static const char usage_text[] =
	"usage: credfs [-f] [-d] [-o OPT[,OPT...]] CONFIG MOUNTPOINT\n"
	"       credfs keygen [--tpm] [--type ec|rsa] [--bits N] OUTFILE\n"
	"       credfs oidc CONFIG OUTDIR\n"
	"       credfs check CONFIG\n"
	"       credfs --version | --help\n"
	"\n"
	"Mounts the roles of CONFIG at MOUNTPOINT: each role is a directory of\n"
	"credentials, config, token, expiry, process.json, env and status.\n"
	"\n"
	"  -f          stay in the foreground, log to stderr (else syslog)\n"
	"  -d          debug: log every request (implies -f)\n"
	"  -o OPT      FUSE mount options: allow_other, auto_unmount, ...\n"
	"  --version   print the versions of credfs and libfuse\n"
	"  --help, -h  print this text\n"
	"\n"
	"keygen   write a new signing key (EC P-256 by default), PEM, mode 0600;\n"
	"         --type rsa --bits N for RSA (2048 by default); --tpm makes it\n"
	"         inside the TPM (TPM2OPENSSL_TCTI, else /dev/tpmrm0) and writes\n"
	"         its TPM-wrapped form, useless on any other machine\n"
	"oidc     write OUTDIR/.well-known/openid-configuration and OUTDIR/keys.json\n"
	"check    validate CONFIG and list its roles (exit 2 on a bad config)\n"
	"\n"
	"See credfs(8) and credfs.conf(5).\n";

/* The mount command line, bound to a fuse_opt table (STYLE: sshfs). */
struct mount_opts {
	int foreground;
	int debug;
	char *config;			/* as given */
	char *mountpoint;		/* as given */
	int bad;			/* an unknown option or extra argument */
};

#define MOUNT_OPT(t, p, v) { t, offsetof(struct mount_opts, p), v }

static const struct fuse_opt mount_opt_spec[] = {
	MOUNT_OPT("-f", foreground, 1),
	MOUNT_OPT("-d", debug, 1),
	MOUNT_OPT("debug", debug, 1),
	FUSE_OPT_END
};

/* Positional arguments are CONFIG then MOUNTPOINT; every -o option is
 * kept for the session; anything else is refused. */
static int mount_opt_proc(void *data, const char *arg, int key,
			  struct fuse_args *outargs)
{
	struct mount_opts *o = data;

	(void)outargs;
	if (key == FUSE_OPT_KEY_NONOPT) {
		char **slot = !o->config ? &o->config :
			      !o->mountpoint ? &o->mountpoint : NULL;

		if (!slot) {
			fprintf(stderr, "credfs: unexpected argument %s\n", arg);
			o->bad = 1;
			return 0;
		}
		*slot = strdup(arg);
		return 0;
	}
	if (arg[0] == '-') {
		fprintf(stderr, "credfs: unknown option %s\n", arg);
		o->bad = 1;
		return 0;
	}
	return 1;	/* a -o option: for the session */
}

/* Everything a mount holds, released in reverse order by run_mount. */
struct mount {
	struct mount_opts opts;
	struct fuse_args args;		/* for fuse_session_new */
	char config_abs[PATH_MAX];
	char mount_abs[PATH_MAX];
	struct generation *gen;
	struct credfs fs;
	struct fuse_session *se;
	int mounted, signals, docs;
	/* The endpoint's secret: this process owns it and makes it afresh at
	 * every start, so tokens change with each start; issue 11's
	 * supervisor will own it instead and hand it over, so that tokens
	 * survive restarts and takeovers. */
	struct endpoint_secret *secret;
	struct endpoint_sockets *sockets;	/* bound before mounting */
	struct endpoint *endpoint;	/* the HTTP face */
};

/* Secrets live in this process: never let them reach a core dump. */
static void forbid_core_dumps(void)
{
	struct rlimit none = {0, 0};

	setrlimit(RLIMIT_CORE, &none);
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

/* Keys, session tokens and JWTs go to OpenSSL's secure heap: locked in
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

/* CONFIG and MOUNTPOINT made absolute: the daemon changes to "/", and the
 * role's config names files under the mountpoint. */
static int resolve_paths(struct mount *m)
{
	if (!realpath(m->opts.config, m->config_abs)) {
		fprintf(stderr, "credfs: %s: %s\n", m->opts.config, strerror(errno));
		return EXIT_USAGE;
	}
	/* libfuse's /dev/fd/N: a descriptor of a mount made by someone else. */
	if (!strncmp(m->opts.mountpoint, "/dev/fd/", 8)) {
		snprintf(m->mount_abs, sizeof(m->mount_abs), "%s", m->opts.mountpoint);
	} else if (!realpath(m->opts.mountpoint, m->mount_abs)) {
		fprintf(stderr, "credfs: %s: %s\n", m->opts.mountpoint,
			strerror(errno));
		return EXIT_USAGE;
	}
	if (strchr(m->config_abs, ',')) {
		fprintf(stderr, "credfs: %s: a comma in the config path is not supported\n",
			m->config_abs);
		return EXIT_USAGE;
	}
	return 0;
}

/* ro: the kernel refuses writes itself; default_permissions: the kernel
 * enforces each role's uid, gid and mode.  They come after the user's
 * options, where the last word wins: mount.fuse3 (fstab) passes
 * "rw,dev,suid", which must not undo them. */
static int make_session(struct mount *m)
{
	char fsopt[PATH_MAX + 128];

	snprintf(fsopt, sizeof(fsopt),
		 "-oro,nosuid,nodev,noatime,default_permissions,fsname=%s,subtype=credfs",
		 m->config_abs);
	if (fuse_opt_add_arg(&m->args, fsopt) ||
	    (m->opts.debug && fuse_opt_add_arg(&m->args, "-d")))
		return EXIT_RUNTIME;
	m->se = fuse_session_new(&m->args, &credfs_ops, sizeof(credfs_ops), &m->fs);
	if (!m->se) {
		fprintf(stderr, "credfs: bad mount options\n");
		return EXIT_USAGE;
	}
	return 0;
}

static int mount_session(struct mount *m)
{
	if (fuse_set_signal_handlers(m->se))
		return EXIT_RUNTIME;
	m->signals = 1;
	/* The absolute path: unmounting happens after the change to "/". */
	if (fuse_session_mount(m->se, m->mount_abs)) {
		fprintf(stderr, "credfs: cannot mount at %s\n", m->mount_abs);
		return EXIT_RUNTIME;
	}
	m->mounted = 1;
	return 0;
}

static int detach(struct mount *m)
{
	if (fuse_daemonize(m->opts.foreground))
		return EXIT_RUNTIME;
	if (!m->opts.foreground) {
		log_open("credfs", 1, LOG_LEVEL_INFO);
		/* Memory locks do not survive fork(). */
		if (secret_heap_relock())
			log_debug("secrets: cannot lock the secure heap again after fork");
	}
	return 0;
}

/* Threads start only now: fuse_daemonize() forks.  The invalidator first
 * (the engine tells it), then the engine, the view and the reloader. */
static int start_serving(struct mount *m)
{
	struct credfs *fs = &m->fs;
	struct engine_options eo = { .listener = inval_role };
	struct view *v;
	char why[256];

	fs->inval = inval_start(m->se, fs);
	if (!fs->inval)
		return EXIT_RUNTIME;
	eo.listener_arg = fs->inval;
	fs->engine = engine_new(m->gen, &eo);
	if (!fs->engine)
		return EXIT_RUNTIME;
	v = view_new(fs->engine, m->gen);
	if (!v)
		return EXIT_RUNTIME;
	view_slot_init(&fs->views, v);
	m->endpoint = endpoint_start(fs->engine, m->gen, m->secret, m->sockets,
				     why, sizeof(why));
	m->sockets = NULL;
	if (!m->endpoint) {
		log_error("%s", why);
		return EXIT_RUNTIME;
	}
	fs->on_reload = endpoint_reload;
	fs->on_reload_arg = m->endpoint;
	if (reload_start(fs, m->se))
		return EXIT_RUNTIME;
	/* Parsing a large file leaves freed memory behind: give it back. */
	malloc_trim(0);
	log_info("mounted %s at %s: %zu role%s", m->config_abs, m->mount_abs,
		 m->gen->cfg->n_roles, m->gen->cfg->n_roles == 1 ? "" : "s");
	return 0;
}

static int serve(struct mount *m)
{
	struct fuse_loop_config *loop = fuse_loop_cfg_create();
	int rc;

	if (!loop)
		return EXIT_RUNTIME;
	fuse_loop_cfg_set_max_threads(loop, CREDFS_MAX_THREADS);
	fuse_loop_cfg_set_idle_threads(loop, 8);
	rc = fuse_session_loop_mt(m->se, loop);
	fuse_loop_cfg_destroy(loop);
	/* libfuse answers with the signal that ended the loop: SIGTERM and
	 * SIGINT are a clean stop. */
	rc = rc == 0 || rc == SIGTERM || rc == SIGINT ? 0 : EXIT_RUNTIME;
	log_info("unmounting %s", m->mount_abs);
	return rc;
}

/* The stop order matters: no more reloads; the engine's threads stopped
 * and its listener silenced; only then the invalidator it was telling;
 * then the kernel side. */
static void stop_serving(struct mount *m)
{
	struct credfs *fs = &m->fs;

	reload_stop();
	endpoint_stop(m->endpoint);
	if (fs->engine)
		engine_stop(fs->engine);
	inval_stop(fs->inval);
	fs->inval = NULL;
	if (m->mounted)
		fuse_session_unmount(m->se);
	if (m->signals)
		fuse_remove_signal_handlers(m->se);
	if (m->se)
		fuse_session_destroy(m->se);
	if (fs->views.current)
		view_slot_destroy(&fs->views);
	engine_free(fs->engine);
	if (m->docs)
		docs_destroy(&fs->docs);
	generation_unref(m->gen);
	endpoint_sockets_close(m->sockets);
	endpoint_secret_free(m->secret);
}

/* The endpoint's addresses, bound before mounting: one in use fails the
 * start on the terminal, with nothing mounted. */
static int bind_endpoint(struct mount *m)
{
	char why[256];

	m->sockets = endpoint_bind(&m->gen->cfg->endpoint, why, sizeof(why));
	if (m->sockets)
		return 0;
	fprintf(stderr, "credfs: %s\n", why);
	return EXIT_RUNTIME;
}

static int run_mount(struct mount *m)
{
	int rc;

	log_open("credfs", 0, m->opts.debug ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO);
	lock_secret_memory();
	rc = resolve_paths(m);
	if (!rc)
		rc = load_config(m->config_abs, &m->gen);
	if (rc)
		return rc;
	m->fs.uid = getuid();
	m->fs.gid = getgid();
	m->fs.started = time(NULL);
	m->fs.mountpoint = m->mount_abs;
	m->fs.config_path = m->config_abs;
	m->fs.no_push = getenv("CREDFS_TEST_NO_PUSH") != NULL;
	m->secret = endpoint_secret_random();
	m->fs.endpoint_secret = m->secret;
	rc = docs_init(&m->fs.docs) ? EXIT_RUNTIME : 0;
	m->docs = !rc;
	if (!rc && !m->secret)
		rc = EXIT_RUNTIME;
	if (!rc)
		rc = bind_endpoint(m);
	if (!rc && http_global_init())
		rc = EXIT_RUNTIME;
	if (!rc)
		rc = make_session(m);
	if (!rc)
		rc = mount_session(m);
	if (!rc)
		rc = detach(m);
	if (!rc)
		rc = start_serving(m);
	if (!rc)
		rc = serve(m);
	stop_serving(m);
	http_global_cleanup();
	log_close();
	return rc;
}

static int parse_mount_args(int argc, char **argv, struct mount *m)
{
	m->args = (struct fuse_args)FUSE_ARGS_INIT(argc, argv);
	if (fuse_opt_parse(&m->args, &m->opts, mount_opt_spec, mount_opt_proc) ||
	    m->opts.bad) {
		fprintf(stderr, "%s", usage_text);
		return EXIT_USAGE;
	}
	if (m->opts.debug)
		m->opts.foreground = 1;
	if (!m->opts.config || !m->opts.mountpoint) {
		fprintf(stderr, "%s", usage_text);
		return EXIT_USAGE;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct mount m;
	int rc;

	forbid_core_dumps();
	if (argc >= 2) {
		if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
			printf("%s", usage_text);
			return 0;
		}
		if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
			printf("credfs %s (libfuse %s)\n", CREDFS_VERSION,
			       fuse_pkgversion());
			return 0;
		}
		if (strcmp(argv[1], "keygen") == 0)
			return cmd_keygen(argc - 1, argv + 1);
		if (strcmp(argv[1], "oidc") == 0)
			return cmd_oidc(argc - 1, argv + 1);
		if (strcmp(argv[1], "check") == 0)
			return cmd_check(argc - 1, argv + 1);
	}
	memset(&m, 0, sizeof(m));
	rc = parse_mount_args(argc, argv, &m);
	if (!rc)
		rc = run_mount(&m);
	fuse_opt_free_args(&m.args);
	free(m.opts.config);
	free(m.opts.mountpoint);
	return rc;
}
