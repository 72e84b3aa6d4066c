/*
 * The service manager's notification protocol (sd_notify(3)), written out
 * rather than linking libsystemd for a few datagrams: READY=1, MAINPID=,
 * STATUS=, WATCHDOG=1, and FDSTORE=1 with descriptors, to NOTIFY_SOCKET
 * (a path, or an abstract name after "@").  Without NOTIFY_SOCKET every
 * call does nothing.  Also the other direction: descriptors the manager
 * passes back at start (LISTEN_FDS, LISTEN_FDNAMES, LISTEN_PID).
 */
#ifndef CREDFS_SDNOTIFY_H
#define CREDFS_SDNOTIFY_H

#include <stddef.h>
#include <stdint.h>

#include "compiler.h"

#define SD_LISTEN_FDS_START 3

/* Whether a service manager listens (NOTIFY_SOCKET is set). */
int sd_notify_enabled(void);
/* Sends state ("READY=1\nSTATUS=..."), with descriptors if nfds.
 * 0, or -1 (ignored by callers: the manager may be gone). */
int sd_send(const char *state, const int *fds, size_t nfds);
/* The watchdog interval asked for (WATCHDOG_USEC for this process), in
 * microseconds, or 0. */
uint64_t sd_watchdog_usec(void);

/* The descriptor named name among those passed at start, or -1.  Names
 * come from LISTEN_FDNAMES; only for LISTEN_PID == getpid(). */
int sd_listen_fd(const char *name);
/* Every descriptor passed at start, and the environment variables that
 * named them removed (so a worker does not see them).  Returns how many. */
int sd_listen_count(void);
void sd_listen_forget(void);

#endif
