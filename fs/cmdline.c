#include "cmdline.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "tree.h"

/* The table's offsets are those of struct mount_cmdline, at the start of
 * the parser's state. */
struct parse {
	struct mount_cmdline c;
	struct buf opts;		/* comma-joined -o options */
	int bad;
};

#define CMD_OPT(t, p, v) { t, offsetof(struct mount_cmdline, p), v }

static const struct fuse_opt spec[] = {
	CMD_OPT("-f", foreground, 1),
	CMD_OPT("-d", debug, 1),
	CMD_OPT("debug", debug, 1),
	FUSE_OPT_END
};

/* Positional arguments are CONFIG then MOUNTPOINT; every -o option is
 * collected for the mount; anything else is refused. */
static int proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct parse *p = data;
	struct mount_cmdline *c = &p->c;

	(void)outargs;
	if (key == FUSE_OPT_KEY_NONOPT) {
		char **slot = !c->config ? &c->config : !c->mountpoint ? &c->mountpoint :
									 NULL;

		if (!slot) {
			fprintf(stderr, "credfs: unexpected argument %s\n", arg);
			p->bad = 1;
		} else {
			*slot = strdup(arg);
		}
		return 0;
	}
	if (arg[0] == '-') {
		fprintf(stderr, "credfs: unknown option %s\n", arg);
		p->bad = 1;
		return 0;
	}
	if (buf_printf(&p->opts, "%s%s", p->opts.len ? "," : "", arg)) {
		fprintf(stderr, "credfs: -o options too long\n");
		p->bad = 1;
	}
	return 0;
}

int mount_cmdline_parse(int argc, char **argv, struct mount_cmdline *c)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct parse p = { .bad = 0 };
	int rc = 0;

	buf_init(&p.opts, 16384);
	if (fuse_opt_parse(&args, &p, spec, proc) || p.bad)
		rc = -1;
	if (p.c.debug)
		p.c.foreground = 1;
	if (!rc && (!p.c.config || !p.c.mountpoint))
		rc = -1;
	if (!rc && p.opts.len)
		p.c.fuse_opts = buf_steal(&p.opts);
	buf_free(&p.opts);
	fuse_opt_free_args(&args);
	*c = p.c;
	if (rc)
		mount_cmdline_free(c);
	return rc;
}

void mount_cmdline_free(struct mount_cmdline *c)
{
	free(c->config);
	free(c->mountpoint);
	free(c->fuse_opts);
	memset(c, 0, sizeof(*c));
}

const char *fuse_library_version(void)
{
	return fuse_pkgversion();
}
