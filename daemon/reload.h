/*
 * Live reload in the worker: SIGHUP re-reads the configuration, moves the
 * engine to it and has each face show it (all or nothing:
 * engine_reload_faces).  A configuration that does not
 * load is refused with its error in the log, and the one in force stays.
 * A burst of SIGHUPs makes one reload (they coalesce while one is made).
 */
#ifndef CREDFS_DAEMON_RELOAD_H
#define CREDFS_DAEMON_RELOAD_H

#include "engine.h"
#include "face.h"

struct reloader;

/* What moves with the engine, and what is told once a reload is done. */
struct reload_hooks {
	const struct engine_face *faces;	/* copied */
	size_t n_faces;				/* at most ENGINE_FACES_MAX */
	/* After a reload: snapshot is the text now in force (borrowed:
	 * closed once it returns).  May be NULL. */
	void (*after)(void *arg, int snapshot);
	/* A reload asked with reload_ask was made (or refused): asked is
	 * its number.  May be NULL.  Same arg as after. */
	void (*done)(void *arg, unsigned long asked);
	void *after_arg;
};

/* Starts the thread (after the faces are serving).  NULL on failure. */
struct reloader *reloader_start(const char *config_path, struct engine *e,
				const struct reload_hooks *hooks) WUR;
/* Asks the reload thread for a reload (as SIGHUP does), numbered: done
 * is called with the number once it was made. */
void reload_ask(struct reloader *rl, unsigned long number);
/* Reloads now, on the caller's thread.  0 or -1 (logged). */
int reload_now(struct reloader *rl);
void reloader_stop(struct reloader *rl);

#endif
