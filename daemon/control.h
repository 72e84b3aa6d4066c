/*
 * Messages between credfs's own processes: the supervisor and its worker
 * (a socketpair), and a supervisor and its successor during a takeover
 * (the handover socket).  Each message is one SOCK_SEQPACKET datagram: a
 * type, a payload of at most CTL_PAYLOAD_MAX bytes, and descriptors
 * (SCM_RIGHTS).  The peers are credfs processes of the same user (the
 * handover socket checks SO_PEERCRED); nothing here parses outside input.
 */
#ifndef CREDFS_CONTROL_H
#define CREDFS_CONTROL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "compiler.h"

#define CTL_PAYLOAD_MAX 4096
#define CTL_FDS_MAX 24

enum ctl_type {
	/* worker -> supervisor */
	CTL_UP = 1,		/* the configuration loaded; payload: version */
	CTL_INIT,		/* the kernel's FUSE_INIT (first worker) */
	CTL_SERVING,		/* requests are being answered */
	CTL_HEARTBEAT,		/* still serving (the watchdog) */
	CTL_LISTENERS,		/* fds: listening sockets to keep */
	CTL_CONFIG,		/* fd: the text of the configuration in force
				 * (also on CTL_UP), for the next worker */
	CTL_REVOKED,		/* fd: the roles whose access a reload revoked */
	CTL_RELOADED,		/* uint64: the CTL_RELOAD it answers */
	CTL_GONE,		/* the connection ended (unmounted) */
	/* supervisor -> worker */
	CTL_START = 32,		/* struct ctl_start; fds: see below */
	CTL_STOP,		/* finish what was read, then exit */
	CTL_HANDOFF,		/* fd: write the cached credentials there */
	CTL_RELOAD,		/* uint64: a number; read the file again */
	/* successor -> supervisor (the handover socket) */
	CTL_HELLO = 64,		/* struct ctl_hello */
	CTL_NEED_CREDS,		/* fd: where the worker's cache goes */
	CTL_RELEASE,		/* the successor serves: stop */
	/* supervisor -> successor */
	CTL_OFFER = 96,		/* struct ctl_offer; fds: see below */
	CTL_REFUSED,		/* payload: a sentence; ctl_refused.why */
	CTL_RELEASED,		/* the old worker is gone */
};

struct ctl_msg {
	uint32_t type;
	size_t len;
	unsigned char data[CTL_PAYLOAD_MAX];
	int fds[CTL_FDS_MAX];
	size_t nfds;
};

/* Sends one message.  0 or -1 (errno). */
int ctl_send(int sock, uint32_t type, const void *data, size_t len,
	     const int *fds, size_t nfds) WUR;
/* Receives one message within timeout_ms (-1: no limit).  0; -1 with
 * errno (ETIMEDOUT, EPIPE at the peer's end, EPROTO for a message that
 * does not fit).  Received descriptors are close-on-exec; the caller owns
 * them (ctl_close_fds). */
int ctl_recv(int sock, struct ctl_msg *m, int timeout_ms) WUR;
void ctl_close_fds(struct ctl_msg *m);

/* The uid of the process at the other end of a unix socket, or -1. */
int ctl_peer_uid(int sock, uid_t *uid) WUR;

#endif
