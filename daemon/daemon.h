/*
 * The process model (docs/lifecycle.md).  The process a person or a
 * service manager starts is the supervisor: it mounts, holds the FUSE
 * descriptor and nothing else of value (no network, no credentials, no
 * parsing of outside input), and runs one worker at a time, which serves
 * the mount (and the HTTP endpoint) from the engine.  When the worker dies
 * for any reason, the supervisor starts another on the same connection.
 * `credfs takeover` is a new supervisor that asks the running one for the
 * connection, over a unix socket only the same user may use.
 */
#ifndef CREDFS_DAEMON_H
#define CREDFS_DAEMON_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "compiler.h"
#include "endpoint_token.h"	/* ENDPOINT_SECRET_LEN */

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2
#define EXIT_NO_CREDFS 3	/* takeover: no credfs serves the mountpoint */

/* Bumped when what a worker negotiates with the kernel or the handover
 * protocol changes: a takeover between different numbers is refused. */
#define HANDOVER_VERSION 1
#define FUSE_ABI_VERSION 1

/* The payloads of the control messages (control.h). */
enum start_mode {
	START_FIRST,		/* the kernel's INIT comes */
	START_RESUME,		/* replay init; resend if asked */
};

#define INIT_BLOB_MAX 256

struct ctl_start {
	uint32_t mode;
	uint32_t resend;
	uint32_t has_guard;	/* fds: [guard,] fuse[, creds], listeners[, revoked] */
	uint32_t has_creds;	/* a predecessor's credentials come on an fd */
	uint32_t has_revoked;	/* the revoked roles, after the listeners */
	uint32_t n_listeners;
	uint32_t heartbeat_ms;	/* 0: none (no watchdog to feed) */
	uint32_t init_len;
	unsigned char init[INIT_BLOB_MAX];
	unsigned char secret[ENDPOINT_SECRET_LEN];
};

struct ctl_hello {
	char magic[8];		/* "CRFSTKV1" */
	uint32_t handover_version;
	uint32_t fuse_abi;
	char version[64];
};

struct ctl_offer {
	uint32_t has_guard;	/* fds: [guard,] fuse, listeners */
	uint32_t n_listeners;
	uint32_t init_len;
	unsigned char init[INIT_BLOB_MAX];
	unsigned char secret[ENDPOINT_SECRET_LEN];
	char version[64];
};

struct daemon_opts {
	int foreground;
	int debug;
	int takeover;			/* credfs takeover */
	char config[PATH_MAX];		/* absolute */
	char mountpoint[PATH_MAX];	/* absolute */
	char *fuse_opts;		/* the -o options, comma-joined, or NULL */
};

/* The supervisor: returns the process exit status. */
int supervisor_run(const struct daemon_opts *o);

/* The worker (credfs --worker ...), started by the supervisor with its
 * control socket at descriptor 3. */
int worker_main(int argc, char **argv);

/* The handover socket of a mountpoint: CREDFS_RUNTIME_DIR, else
 * /run/credfs-takeover (root) or $XDG_RUNTIME_DIR/credfs (others), made
 * 0700; the name is derived from the mountpoint.  0, or -1 with errno. */
int handover_path(const char *mountpoint, char *out, size_t len) WUR;

#endif
