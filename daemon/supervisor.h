/*
 * The supervisor's state, shared by supervisor.c (the worker, signals,
 * the loop) and takeover.c (the handover socket, both ends, and the
 * service manager's descriptor store).
 */
#ifndef CREDFS_SUPERVISOR_H
#define CREDFS_SUPERVISOR_H

#include <stdint.h>
#include <sys/types.h>

#include "control.h"
#include "daemon.h"
#include "mount.h"

#define LISTENERS_MAX 16

struct worker_proc {
	pid_t pid;			/* 0: none */
	int ctl;			/* its control socket, -1: none */
	int64_t started_ms;
	int started;			/* CTL_START sent */
	int serving;			/* CTL_SERVING received */
	int64_t heartbeat_ms;
	int wait_status;		/* after supervisor_wait_worker reaped it */
};

struct init_copy {
	unsigned char bytes[INIT_BLOB_MAX];
	size_t len;
};

struct supervisor {
	const struct daemon_opts *o;
	struct fs_mount m;		/* the FUSE descriptor and the guard */
	struct init_copy init;		/* the kernel's INIT, from the first worker */
	int have_init;
	unsigned char secret[ENDPOINT_SECRET_LEN];	/* the HTTP face's */
	int listeners[LISTENERS_MAX];	/* the HTTP face's, kept for the next */
	size_t n_listeners;
	size_t stored_listeners;	/* listen0.. in the descriptor store */
	int ready;			/* the start was reported */
	int state_fd;			/* memfd for the descriptor store */
	int config_fd;			/* the configuration in force (a sealed
					 * memfd, never read here), or -1 */
	int revoked_fd;			/* the roles whose access a reload
					 * revoked (a sealed memfd, never read
					 * here: it goes to every worker and
					 * successor), or -1 */

	struct worker_proc w;
	int restarts;
	int quick_deaths;		/* workers in a row that died soon */
	int64_t backoff_ms;
	int64_t restart_at_ms;		/* 0: no restart pending */

	int sigfd;
	int ready_pipe;			/* the detaching parent waits on it */
	uint64_t watchdog_usec;
	int64_t watchdog_sent_ms;

	int handover_fd;		/* listening */
	char handover_path[108];
	int peer_fd;			/* a successor talking to us */
	int peer_stage;
	char peer_version[64];	/* the successor's, from its HELLO */

	uint64_t reload_asked;		/* SIGHUPs so far */
	uint64_t reload_done;		/* the last a worker said it made */
	int connection_gone;
	int stopping;
	int handed_over;
	int done;
};

/* supervisor.c */
int supervisor_start_worker(struct supervisor *s, int mode, int resend,
			    int creds) WUR;
int supervisor_wait_worker(struct supervisor *s, uint32_t type, int *status) WUR;
void supervisor_take_message(struct supervisor *s, struct ctl_msg *m);
void supervisor_stop_worker(struct supervisor *s);
void supervisor_started(struct supervisor *s, int status);
void supervisor_store_fds(struct supervisor *s);

/* takeover.c */
int handover_listen(struct supervisor *s) WUR;
void handover_accept(struct supervisor *s);
void handover_serve(struct supervisor *s);
void handover_close(struct supervisor *s);
int takeover_run(struct supervisor *s) WUR;
/* The service manager gave back a mount it kept: resume it.  1 if it did,
 * 0 if there was none, -1 on failure. */
int supervisor_resume_stored(struct supervisor *s) WUR;
int supervisor_spawn(struct supervisor *s, int fresh) WUR;
/* The memfd of state (INIT copy, secret) for the descriptor store. */
int supervisor_make_state(struct supervisor *s) WUR;

#endif
