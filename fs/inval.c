#include "inval.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "clock.h"
#include "engine.h"
#include "log.h"

#define SWEEP_EVERY_MS 1000

struct pending {
	uint64_t ino;
	int echo;		/* this is the repeat */
	int64_t due_ms;		/* monotonic */
	uint64_t version;	/* what caused it (engine_listener_fn); 0: none */
};

/* One thread and its queue.  Attributes and pages have a lane each, so
 * that a page invalidation waiting in the kernel for a page lock (a read
 * the kernel sent but no worker has picked up yet) never holds up the
 * attribute invalidations, which alone keep read() fresh: a reader whose
 * attributes are gone asks for them, sees a new mtime and drops the old
 * pages itself (auto_inval_data). */
struct lane {
	struct invalidator *iv;
	int pages;		/* this lane invalidates pages */
	pthread_t thread;
	int running;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct pending *queue;	/* lock */
	size_t len, cap;	/* lock */
	int stop;		/* lock */
};

struct invalidator {
	struct fuse_session *se;
	struct credfs *fs;
	struct lane attrs, pages;
};

/* Which engine changes touch which file. */
static unsigned file_changes(enum role_file f)
{
	switch (f) {
	case ROLE_STATUS:
		return ENGINE_CHANGED_STATUS;
	case ROLE_TOKEN:
		return ENGINE_CHANGED_TOKEN;
	case ROLE_CONFIG:
	case ROLE_AUTHORIZATION_TOKEN:
	case ROLE_ENDPOINT_ENV:
	case ROLE_CREDENTIALS_JSON:
		return 0;
	default:
		return ENGINE_CHANGED_CREDS;
	}
}

/* Appends to the queue; with lock.  On allocation failure the entry is
 * dropped: the attribute timeouts still bound what the kernel keeps. */
static void push_locked(struct lane *l, struct pending p)
{
	if (l->len == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct pending *q = realloc(l->queue, cap * sizeof(*q));

		if (!q)
			return;
		l->queue = q;
		l->cap = cap;
	}
	l->queue[l->len++] = p;
}

static void push(struct lane *l, const uint64_t *inos, size_t n,
		 uint64_t version)
{
	int64_t now = clock_mono_ms();

	pthread_mutex_lock(&l->lock);
	for (size_t i = 0; i < n; i++)
		push_locked(l, (struct pending){ inos[i], 0, now, version });
	pthread_cond_signal(&l->wake);
	pthread_mutex_unlock(&l->lock);
}

void inval_docs_kept(struct invalidator *iv)
{
	if (!iv)
		return;
	pthread_mutex_lock(&iv->attrs.lock);
	pthread_cond_signal(&iv->attrs.wake);
	pthread_mutex_unlock(&iv->attrs.lock);
}

void inval_ino(struct invalidator *iv, uint64_t ino, int pages)
{
	push(&iv->attrs, &ino, 1, 0);
	if (pages)
		push(&iv->pages, &ino, 1, 0);
}

void inval_due(struct invalidator *iv, uint64_t ino, unsigned what, uint64_t version)
{
	if (what & DOCS_ATTRS)
		push(&iv->attrs, &ino, 1, version);
	if (what & DOCS_PAGES)
		push(&iv->pages, &ino, 1, version);
}

void inval_role(void *arg, struct role *r, unsigned what, uint64_t version)
{
	struct invalidator *iv = arg;
	const char *name = role_name(r);
	unsigned all = ENGINE_CHANGED_PRESENTATION | ENGINE_CHANGED_REMOVED;
	uint64_t inos[ROLE_FILE_COUNT + 1];
	size_t n = 0;

	for (int f = 0; f < ROLE_FILE_COUNT; f++)
		if ((what & all) || (file_changes((enum role_file)f) & what))
			inos[n++] = tree_role_ino(name, f);
	if (what & ENGINE_CHANGED_REMOVED)
		for (size_t i = 0; i < n; i++)
			docs_forget(&iv->fs->docs, inos[i]);
	push(&iv->pages, inos, n, version);
	if (what & all)
		inos[n++] = tree_role_ino(name, ROLE_FILE_COUNT);
	push(&iv->attrs, inos, n, version);
}

static int expected(int r)
{
	/* -ENOENT: the kernel never looked it up; the others: unmounting. */
	return r == 0 || r == -ENOENT || r == -EBADF || r == -ENODEV ||
	       r == -ENOTCONN;
}

/* Invalidates what lane l is for.  Returns 1 if pages were invalidated
 * (worth an echo). */
static int invalidate(struct lane *l, const struct pending *p)
{
	struct invalidator *iv = l->iv;
	int r;

	if (iv->fs->no_push)
		return 0;
	/* The kernel was already told of this version or a newer one: it
	 * holds nothing older, and an invalidation now could only make it
	 * drop an answer it is about to apply. */
	if (p->version && docs_shown(&iv->fs->docs, p->ino, p->version))
		return 0;
	if (!l->pages) {
		if (docs_defer(&iv->fs->docs, p->ino, DOCS_ATTRS, p->version))
			return 0;	/* queued again when its requests end */
		/* A negative offset: attributes only, no page is touched. */
		r = fuse_lowlevel_notify_inval_inode(iv->se, p->ino, -1, 0);
		if (!expected(r))
			log_warn("invalidating the attributes of inode %llu: error %d",
				 (unsigned long long)p->ino, -r);
		return 0;
	}
	if (docs_defer(&iv->fs->docs, p->ino, DOCS_PAGES, p->version))
		return 0;	/* queued again when its requests end */
	r = fuse_lowlevel_notify_inval_inode(iv->se, p->ino, 0, 0);
	if (!expected(r))
		log_warn("invalidating the pages of inode %llu: error %d",
			 (unsigned long long)p->ino, -r);
	return r == 0;
}

/* Runs the due entries; returns the next due time.  With lock, dropped
 * while calling the kernel. */
static int64_t run_due_locked(struct lane *l)
{
	int64_t now = clock_mono_ms(), next = INT64_MAX;
	size_t i = 0;

	while (i < l->len && !l->stop) {
		struct pending p = l->queue[i];
		int echo;

		if (p.due_ms > now) {
			if (p.due_ms < next)
				next = p.due_ms;
			i++;
			continue;
		}
		l->queue[i] = l->queue[--l->len];
		pthread_mutex_unlock(&l->lock);
		echo = invalidate(l, &p) && !p.echo;
		pthread_mutex_lock(&l->lock);
		now = clock_mono_ms();
		if (echo) {
			push_locked(l, (struct pending){ p.ino, 1, now + INVAL_ECHO_MS, 0 });
			if (now + INVAL_ECHO_MS < next)
				next = now + INVAL_ECHO_MS;
		}
	}
	return next;
}

static void *lane_main(void *arg)
{
	struct lane *l = arg;
	int64_t last_sweep = clock_mono_ms();

	pthread_mutex_lock(&l->lock);
	while (!l->stop) {
		int64_t next = run_due_locked(l), now;
		struct timespec ts;

		/* The attribute lane also forgets documents nobody reads. */
		if (!l->pages && clock_mono_ms() - last_sweep >= SWEEP_EVERY_MS) {
			pthread_mutex_unlock(&l->lock);
			docs_sweep(&l->iv->fs->docs, clock_boot_ms());
			pthread_mutex_lock(&l->lock);
			last_sweep = clock_mono_ms();
		}
		if (l->stop)
			break;
		/* Idle means asleep: nothing queued, and (attribute lane)
		 * no document kept to forget; inval_docs_kept wakes it. */
		if (!l->pages && docs_kept(&l->iv->fs->docs) &&
		    next > last_sweep + SWEEP_EVERY_MS)
			next = last_sweep + SWEEP_EVERY_MS;
		if (next == INT64_MAX) {
			pthread_cond_wait(&l->wake, &l->lock);
			continue;
		}
		now = clock_mono_ms();
		ts = clock_deadline_ms(next > now ? next - now : 1);
		pthread_cond_timedwait(&l->wake, &l->lock, &ts);
	}
	pthread_mutex_unlock(&l->lock);
	return NULL;
}

static int lane_start(struct lane *l, struct invalidator *iv, int pages)
{
	pthread_condattr_t ca;

	l->iv = iv;
	l->pages = pages;
	pthread_mutex_init(&l->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&l->wake, &ca);
	pthread_condattr_destroy(&ca);
	l->running = pthread_create(&l->thread, NULL, lane_main, l) == 0;
	return l->running ? 0 : -1;
}

static void lane_stop(struct lane *l)
{
	if (l->running) {
		pthread_mutex_lock(&l->lock);
		l->stop = 1;
		pthread_cond_signal(&l->wake);
		pthread_mutex_unlock(&l->lock);
		pthread_join(l->thread, NULL);
	}
	pthread_cond_destroy(&l->wake);
	pthread_mutex_destroy(&l->lock);
	free(l->queue);
}

struct invalidator *inval_start(struct fuse_session *se, struct credfs *fs)
{
	struct invalidator *iv = calloc(1, sizeof(*iv));

	if (!iv)
		return NULL;
	iv->se = se;
	iv->fs = fs;
	if (lane_start(&iv->attrs, iv, 0) || lane_start(&iv->pages, iv, 1)) {
		inval_stop(iv);
		return NULL;
	}
	return iv;
}

void inval_stop(struct invalidator *iv)
{
	if (!iv)
		return;
	lane_stop(&iv->attrs);
	lane_stop(&iv->pages);
	free(iv);
}
