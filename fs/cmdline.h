/*
 * The mount command line (credfs [-f] [-d] [-o OPT[,OPT...]] CONFIG
 * MOUNTPOINT, and credfs takeover with the same arguments), parsed with
 * libfuse's option parser bound to a struct (STYLE: sshfs).  Options may
 * follow the positional arguments, as mount.fuse3 passes them.
 */
#ifndef CREDFS_CMDLINE_H
#define CREDFS_CMDLINE_H

#include "compiler.h"

struct mount_cmdline {
	int foreground;
	int debug;			/* implies foreground */
	char *config;			/* as given */
	char *mountpoint;		/* as given */
	char *fuse_opts;		/* the -o options, comma-joined, or NULL */
};

/* 0, or -1 with a message printed (a usage error). */
int mount_cmdline_parse(int argc, char **argv, struct mount_cmdline *c) WUR;
void mount_cmdline_free(struct mount_cmdline *c);

/* The version of the FUSE library credfs runs with. */
const char *fuse_library_version(void);

#endif
