/*
 * credfs: cloud credentials as files.  The entry point: the commands that
 * do not mount, and the mount and takeover commands, which make this
 * process the supervisor (daemon.h).  A worker is this same binary started
 * by its supervisor as `credfs --worker`.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cmdline.h"
#include "commands.h"
#include "daemon.h"
#include "log.h"
#include "mount.h"


static const char usage_text[] =
	"usage: credfs [-f] [-d] [-o OPT[,OPT...]] CONFIG MOUNTPOINT\n"
	"       credfs takeover [-f] [-d] CONFIG MOUNTPOINT\n"
	"       credfs keygen [--type ec|rsa] [--bits N] [--tpm] OUTFILE\n"
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
	"takeover  take the mount at MOUNTPOINT over from the credfs serving it\n"
	"          (a new binary, a new pod): no read fails; exit 3 when no\n"
	"          credfs serves MOUNTPOINT\n"
	"keygen    write a new signing key (EC P-256 by default), PEM, mode 0600;\n"
	"          --type rsa --bits N for RSA (2048 by default); --tpm makes the\n"
	"          key inside the TPM and writes its TPM-wrapped form\n"
	"oidc      write OUTDIR/.well-known/openid-configuration and OUTDIR/keys.json\n"
	"check     validate CONFIG and list its roles (exit 2 on a bad config)\n"
	"\n"
	"See credfs(8) and credfs.conf(5).\n";

/* Secrets live in this process: never let them reach a core dump. */
static void forbid_core_dumps(void)
{
	struct rlimit none = {0, 0};

	setrlimit(RLIMIT_CORE, &none);
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

/* CONFIG and MOUNTPOINT made absolute (the daemon changes to "/", and a
 * role's config names files under the mountpoint). */
static int resolve(const struct mount_cmdline *c, struct daemon_opts *o)
{
	if (!realpath(c->config, o->config)) {
		fprintf(stderr, "credfs: %s: %s\n", c->config, strerror(errno));
		return EXIT_USAGE;
	}
	if (fs_mount_is_passed(c->mountpoint)) {
		snprintf(o->mountpoint, sizeof(o->mountpoint), "%s", c->mountpoint);
	} else if (!realpath(c->mountpoint, o->mountpoint)) {
		fprintf(stderr, "credfs: %s: %s\n", c->mountpoint, strerror(errno));
		return EXIT_USAGE;
	}
	if (strchr(o->config, ',')) {
		fprintf(stderr, "credfs: %s: a comma in the config path is not supported\n",
			o->config);
		return EXIT_USAGE;
	}
	return 0;
}

/* credfs [-f] [-d] [-o ...] CONFIG MOUNTPOINT, or credfs takeover ... */
static int mount_command(int argc, char **argv, int takeover)
{
	struct mount_cmdline c;
	struct daemon_opts o = { .takeover = takeover };
	int rc;

	if (mount_cmdline_parse(argc, argv, &c)) {
		fprintf(stderr, "%s", usage_text);
		return EXIT_USAGE;
	}
	o.foreground = c.foreground;
	o.debug = c.debug;
	o.fuse_opts = c.fuse_opts;
	rc = resolve(&c, &o);
	if (!rc)
		rc = supervisor_run(&o);
	mount_cmdline_free(&c);
	return rc;
}

/* Descriptors 0 to 2 are open, on /dev/null if they were not: started
 * with them closed, credfs would hand those numbers to its sockets and
 * memfds, and a worker's control socket would not be where it expects. */
static void stdio_open(void)
{
	int fd;

	while ((fd = open("/dev/null", O_RDWR)) >= 0 && fd <= 2)
		;
	if (fd > 2)
		close(fd);
}

int main(int argc, char **argv)
{
	stdio_open();
	forbid_core_dumps();
	if (argc >= 2 && strcmp(argv[1], "--worker") == 0)
		return worker_main(argc - 1, argv + 1);
	if (argc >= 2) {
		if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
			printf("%s", usage_text);
			return 0;
		}
		if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
			printf("credfs %s (libfuse %s)\n", CREDFS_VERSION,
			       fuse_library_version());
			return 0;
		}
		if (strcmp(argv[1], "keygen") == 0)
			return cmd_keygen(argc - 1, argv + 1);
		if (strcmp(argv[1], "oidc") == 0)
			return cmd_oidc(argc - 1, argv + 1);
		if (strcmp(argv[1], "check") == 0)
			return cmd_check(argc - 1, argv + 1);
		if (strcmp(argv[1], "takeover") == 0)
			return mount_command(argc - 1, argv + 1, 1);
	}
	return mount_command(argc, argv, 0);
}
