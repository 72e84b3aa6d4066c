/*
 * credfs: cloud credentials as files.  This is the entry point: the
 * commands that do not mount, option parsing, and the mount's life from
 * start to clean unmount.
 */
#include <errno.h>
#include <stdatomic.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
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
#include "http.h"
#include "inval.h"
#include "reload.h"
#include "log.h"

#define CREDFS_MAX_THREADS 512

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

struct mount_opts {
	int foreground;
	int debug;
	const char *config;
	const char *mountpoint;
	struct buf fuse_opts;		/* comma-joined -o options */
};

/* Parses the mount command line.  Options may follow the positional
 * arguments, as mount.fuse3 passes them.  Returns 0 or EXIT_USAGE. */
static int parse_mount_args(int argc, char **argv, struct mount_opts *o)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *opt = NULL;

		if (strcmp(a, "-f") == 0) {
			o->foreground = 1;
		} else if (strcmp(a, "-d") == 0) {
			o->debug = 1;
			o->foreground = 1;
		} else if (strcmp(a, "-o") == 0) {
			if (i + 1 >= argc) {
				fprintf(stderr, "credfs: -o needs an argument\n");
				return EXIT_USAGE;
			}
			opt = argv[++i];
		} else if (strncmp(a, "-o", 2) == 0) {
			opt = a + 2;
		} else if (a[0] == '-') {
			fprintf(stderr, "credfs: unknown option %s\n%s", a, usage_text);
			return EXIT_USAGE;
		} else if (!o->config) {
			o->config = a;
		} else if (!o->mountpoint) {
			o->mountpoint = a;
		} else {
			fprintf(stderr, "credfs: unexpected argument %s\n%s", a, usage_text);
			return EXIT_USAGE;
		}
		if (opt && (buf_printf(&o->fuse_opts, ",%s", opt))) {
			fprintf(stderr, "credfs: -o options too long\n");
			return EXIT_USAGE;
		}
	}
	if (!o->config || !o->mountpoint) {
		fprintf(stderr, "%s", usage_text);
		return EXIT_USAGE;
	}
	return 0;
}

/* Secrets live in this process: never let them reach a core dump. */
static void forbid_core_dumps(void)
{
	struct rlimit none = {0, 0};

	setrlimit(RLIMIT_CORE, &none);
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

#define SECRET_HEAP_SIZE (1 << 20)	/* room for a few hundred roles */

/* Keys, session tokens and JWTs go to OpenSSL's secure heap: locked in
 * memory where the system allows it (never swapped) and left out of core
 * dumps.  Must run before the config (and its keys) is loaded.  Failure is
 * not fatal: secrets are still wiped before they are freed. */
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

static int run_mount(struct mount_opts *o)
{
	struct credfs fs = {0};
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_session *se = NULL;
	struct fuse_loop_config *loop = NULL;
	struct invalidator *iv = NULL;
	struct cfg *cfg;
	struct signer *signer;
	struct view *view;
	size_t *slots, n_roles;
	char config_abs[PATH_MAX], mount_abs[PATH_MAX], fsopt[PATH_MAX + 128];
	int rc = EXIT_RUNTIME;

	log_open("credfs", 0, o->debug ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO);
	lock_secret_memory();
	if (!realpath(o->config, config_abs)) {
		fprintf(stderr, "credfs: %s: %s\n", o->config, strerror(errno));
		return EXIT_USAGE;
	}
	/* The role's config names files under the mountpoint: make it
	 * absolute now, before the daemon changes to "/". */
	if (!realpath(o->mountpoint, mount_abs)) {
		fprintf(stderr, "credfs: %s: %s\n", o->mountpoint, strerror(errno));
		return EXIT_USAGE;
	}
	if (strchr(config_abs, ',')) {
		fprintf(stderr, "credfs: %s: a comma in the config path is not supported\n",
			config_abs);
		return EXIT_USAGE;
	}
	rc = load_config(config_abs, &cfg, &signer);
	if (rc)
		return rc;
	rc = EXIT_RUNTIME;
	fs.uid = getuid();
	fs.gid = getgid();
	fs.started = time(NULL);
	fs.mountpoint = mount_abs;
	fs.config_path = config_abs;
	n_roles = cfg->n_roles;
	if (http_global_init()) {
		signer_free(signer);
		cfg_free(cfg);
		goto out_http;
	}
	fs.engine = engine_new(cfg, signer);
	slots = calloc(n_roles + 1, sizeof(*slots));
	if (!fs.engine || !slots) {
		free(slots);
		signer_free(signer);
		cfg_free(cfg);
		goto out_engine;
	}
	for (size_t i = 0; i < n_roles; i++)
		slots[i] = i;
	/* The view owns cfg, signer and slots from here on. */
	view = view_new(cfg, signer, slots, n_roles);
	if (!view)
		goto out_engine;
	/* Parsing a large file leaves freed memory behind: give it back. */
	malloc_trim(0);
	atomic_init(&fs.view, view);
	fs.pad_to = calloc(engine_slot_capacity(fs.engine) * ROLE_FILE_COUNT,
			   sizeof(*fs.pad_to));
	if (!fs.pad_to)
		goto out_engine;

	/* ro: the kernel refuses writes itself; default_permissions: the
	 * kernel enforces each role's uid, gid and mode.  They come after
	 * the user's options, where the last word wins: mount.fuse3 (fstab)
	 * passes "rw,dev,suid", which must not undo them. */
	snprintf(fsopt, sizeof(fsopt),
		 "-oro,nosuid,nodev,noatime,default_permissions,fsname=%s,subtype=credfs",
		 config_abs);
	if (fuse_opt_add_arg(&args, "credfs"))
		goto out_engine;
	if (o->fuse_opts.len && (fuse_opt_add_arg(&args, "-o") ||
				 fuse_opt_add_arg(&args, o->fuse_opts.data + 1)))
		goto out_engine;
	if (fuse_opt_add_arg(&args, fsopt))
		goto out_engine;
	if (o->debug && fuse_opt_add_arg(&args, "-d"))
		goto out_engine;

	se = fuse_session_new(&args, &credfs_ops, sizeof(credfs_ops), &fs);
	if (!se) {
		fprintf(stderr, "credfs: bad mount options\n");
		rc = EXIT_USAGE;
		goto out_engine;
	}
	if (fuse_set_signal_handlers(se))
		goto out_session;
	if (fuse_session_mount(se, o->mountpoint)) {
		fprintf(stderr, "credfs: cannot mount at %s\n", o->mountpoint);
		goto out_signals;
	}
	if (fuse_daemonize(o->foreground))
		goto out_unmount;
	if (!o->foreground) {
		log_open("credfs", 1, LOG_LEVEL_INFO);
		/* Memory locks do not survive fork(). */
		if (secret_heap_relock())
			log_debug("secrets: cannot lock the secure heap again after fork");
	}
	/* Threads start only now: fuse_daemonize() forks. */
	iv = inval_start(se);
	if (!iv || engine_set_listener(fs.engine, inval_role, iv))
		goto out_unmount;
	if (reload_start(&fs, se))
		goto out_unmount;
	log_info("mounted %s at %s: %zu role%s", config_abs, o->mountpoint,
		 n_roles, n_roles == 1 ? "" : "s");

	loop = fuse_loop_cfg_create();
	if (!loop)
		goto out_unmount;
	fuse_loop_cfg_set_max_threads(loop, CREDFS_MAX_THREADS);
	fuse_loop_cfg_set_idle_threads(loop, 8);
	rc = fuse_session_loop_mt(se, loop);
	/* libfuse answers with the signal that ended the loop: SIGTERM and
	 * SIGINT are a clean stop. */
	rc = rc == 0 || rc == SIGTERM || rc == SIGINT ? 0 : EXIT_RUNTIME;
	fuse_loop_cfg_destroy(loop);
	log_info("unmounting %s", o->mountpoint);

out_unmount:
	reload_stop();
	if (iv) {
		engine_clear_listener(fs.engine);
		inval_stop(iv);
	}
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
out_engine:
	engine_free(fs.engine);
	free(fs.pad_to);
	view_free(fs.view);
	reload_free_retired(&fs, 1);
out_http:
	http_global_cleanup();
	fuse_opt_free_args(&args);
	log_close();
	return rc;
}

int main(int argc, char **argv)
{
	struct mount_opts o = {0};
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
	buf_init(&o.fuse_opts, 4096);
	rc = parse_mount_args(argc, argv, &o);
	if (!rc)
		rc = run_mount(&o);
	buf_free(&o.fuse_opts);
	return rc;
}
