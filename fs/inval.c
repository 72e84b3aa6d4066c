#include "inval.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "clock.h"
#include "engine.h"
#include "log.h"

struct pending {
	size_t role;
	unsigned what;		/* enum engine_change bits */
	int64_t due_ms;		/* monotonic */
	int echo;		/* this is the repeat; do not repeat again */
};

struct invalidator {
	struct fuse_session *se;
	pthread_t thread;

	pthread_mutex_t lock;
	pthread_cond_t wake;
	/* Protected by lock. */
	struct pending *queue;
	size_t len, cap;
	int stop;
};

static int64_t real_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Appends to the queue; called with lock held.  On allocation failure the
 * entry is dropped and the echo (or the next event) covers for it. */
static void push_locked(struct invalidator *iv, size_t role, unsigned what,
			int64_t due, int echo)
{
	if (iv->len == iv->cap) {
		size_t cap = iv->cap ? iv->cap * 2 : 64;
		struct pending *q = realloc(iv->queue, cap * sizeof(*q));

		if (!q)
			return;
		iv->queue = q;
		iv->cap = cap;
	}
	iv->queue[iv->len++] = (struct pending){role, what, due, echo};
}

void inval_role(void *arg, size_t role, unsigned what)
{
	struct invalidator *iv = arg;

	pthread_mutex_lock(&iv->lock);
	push_locked(iv, role, what, real_mono_ms(), 0);
	pthread_cond_signal(&iv->wake);
	pthread_mutex_unlock(&iv->lock);
}

/* Which change touches which file. */
static unsigned file_changes(enum role_file f)
{
	switch (f) {
	case ROLE_STATUS:
		return ENGINE_CHANGED_STATUS;
	case ROLE_TOKEN:
		return ENGINE_CHANGED_TOKEN;
	case ROLE_CONFIG:
		return 0;
	default:
		return ENGINE_CHANGED_CREDS;
	}
}

/* Drops the kernel's cached content and attributes of role's files named
 * by what.  -ENOENT (the kernel never looked the file up) and -EBADF/
 * -ENODEV/-ENOTCONN (unmounting) are not errors. */
static void invalidate(struct invalidator *iv, size_t role, unsigned what)
{
	for (int f = 0; f < ROLE_FILE_COUNT; f++) {
		struct node n = {.kind = NODE_ROLE_FILE, .slot = role,
				 .file = (enum role_file)f};
		int r;

		if (!(file_changes((enum role_file)f) & what))
			continue;
		r = fuse_lowlevel_notify_inval_inode(iv->se, tree_ino(&n), 0, 0);
		if (r && r != -ENOENT && r != -EBADF && r != -ENODEV &&
		    r != -ENOTCONN)
			log_warn("invalidating a file of role %zu: error %d", role, -r);
	}
}

static void *inval_main(void *arg)
{
	struct invalidator *iv = arg;

	pthread_mutex_lock(&iv->lock);
	while (!iv->stop) {
		int64_t now = real_mono_ms(), next = now + 60000;
		size_t i = 0;

		while (i < iv->len) {
			struct pending p = iv->queue[i];

			if (p.due_ms > now) {
				if (p.due_ms < next)
					next = p.due_ms;
				i++;
				continue;
			}
			iv->queue[i] = iv->queue[--iv->len];
			if (!p.echo) {
				push_locked(iv, p.role, p.what, now + INVAL_ECHO_MS, 1);
				if (now + INVAL_ECHO_MS < next)
					next = now + INVAL_ECHO_MS;
			}
			pthread_mutex_unlock(&iv->lock);
			invalidate(iv, p.role, p.what);
			pthread_mutex_lock(&iv->lock);
			now = real_mono_ms();
		}
		if (iv->stop)
			break;
		struct timespec ts = clock_deadline_ms(next > now ? next - now : 1);

		pthread_cond_timedwait(&iv->wake, &iv->lock, &ts);
	}
	pthread_mutex_unlock(&iv->lock);
	return NULL;
}

struct invalidator *inval_start(struct fuse_session *se)
{
	struct invalidator *iv = calloc(1, sizeof(*iv));
	pthread_condattr_t ca;

	if (!iv)
		return NULL;
	iv->se = se;
	pthread_mutex_init(&iv->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&iv->wake, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&iv->thread, NULL, inval_main, iv)) {
		pthread_cond_destroy(&iv->wake);
		pthread_mutex_destroy(&iv->lock);
		free(iv);
		return NULL;
	}
	return iv;
}

void inval_stop(struct invalidator *iv)
{
	if (!iv)
		return;
	pthread_mutex_lock(&iv->lock);
	iv->stop = 1;
	pthread_cond_signal(&iv->wake);
	pthread_mutex_unlock(&iv->lock);
	pthread_join(iv->thread, NULL);
	pthread_cond_destroy(&iv->wake);
	pthread_mutex_destroy(&iv->lock);
	free(iv->queue);
	free(iv);
}
