#include "docs.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

#define PAD_HEADROOM 256

struct doc_box {
	atomic_uint refs;
	struct doc d;
};

struct doc_entry {
	uint64_t ino;
	struct doc *last;		/* NULL: none kept */
	int64_t last_used_boot;
	uint32_t steady;		/* 0: none yet */
	unsigned busy;			/* requests being answered */
	unsigned due;			/* DOCS_ATTRS | DOCS_PAGES waiting for them */
	uint64_t due_version;		/* what caused them; 0: unconditional */
	int revoked;
	uint64_t shown;			/* highest version the kernel was told of */
};

struct doc *doc_new(char *data, size_t len)
{
	struct doc_box *b = calloc(1, sizeof(*b));

	if (!b) {
		secret_free_n(data, len);
		return NULL;
	}
	atomic_init(&b->refs, 1);
	b->d.data = data;
	b->d.len = len;
	b->d.valid_until_boot = INT64_MAX;
	return &b->d;
}

struct doc *doc_ref(struct doc *d)
{
	if (d)
		atomic_fetch_add(&((struct doc_box *)((char *)d -
			offsetof(struct doc_box, d)))->refs, 1);
	return d;
}

void doc_unref(struct doc *d)
{
	struct doc_box *b;

	if (!d)
		return;
	b = (struct doc_box *)((char *)d - offsetof(struct doc_box, d));
	if (atomic_fetch_sub(&b->refs, 1) == 1) {
		secret_free_n(b->d.data, b->d.len);
		free(b);
	}
}

int docs_init(struct docs *ds)
{
	memset(ds, 0, sizeof(*ds));
	pthread_mutex_init(&ds->lock, NULL);
	ds->cap = 64;
	ds->tab = calloc(ds->cap, sizeof(*ds->tab));
	return ds->tab ? 0 : -ENOMEM;
}

void docs_destroy(struct docs *ds)
{
	for (size_t i = 0; i < ds->cap; i++) {
		if (ds->tab[i]) {
			doc_unref(ds->tab[i]->last);
			free(ds->tab[i]);
		}
	}
	free(ds->tab);
	ds->tab = NULL;
	pthread_mutex_destroy(&ds->lock);
}

static size_t slot_of(uint64_t ino, size_t cap)
{
	ino ^= ino >> 29;
	ino *= 0xbf58476d1ce4e5b9ULL;
	ino ^= ino >> 32;
	return (size_t)ino & (cap - 1);
}

/* The entry of ino, or NULL.  With ds->lock. */
static struct doc_entry *find(struct docs *ds, uint64_t ino)
{
	for (size_t s = slot_of(ino, ds->cap); ds->tab[s]; s = (s + 1) & (ds->cap - 1))
		if (ds->tab[s]->ino == ino)
			return ds->tab[s];
	return NULL;
}

static int grow(struct docs *ds)
{
	size_t cap = ds->cap * 2;
	struct doc_entry **tab = calloc(cap, sizeof(*tab));

	if (!tab)
		return -ENOMEM;
	for (size_t i = 0; i < ds->cap; i++) {
		struct doc_entry *e = ds->tab[i];
		size_t s;

		if (!e)
			continue;
		for (s = slot_of(e->ino, cap); tab[s]; s = (s + 1) & (cap - 1))
			;
		tab[s] = e;
	}
	free(ds->tab);
	ds->tab = tab;
	ds->cap = cap;
	return 0;
}

/* The entry of ino, made if missing; NULL when out of memory.  Entries
 * are never removed: they last as long as the face, that is as long as
 * the worker process (fs_face_free frees them in its teardown), one per
 * inode ever kept, sized, marked revoked or asked about in getattr or
 * read. */
static struct doc_entry *entry(struct docs *ds, uint64_t ino)
{
	struct doc_entry *e = find(ds, ino);
	size_t s;

	if (e)
		return e;
	if ((ds->n + 1) * 2 > ds->cap && grow(ds))
		return NULL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->ino = ino;
	for (s = slot_of(ino, ds->cap); ds->tab[s]; s = (s + 1) & (ds->cap - 1))
		;
	ds->tab[s] = e;
	ds->n++;
	return e;
}

struct doc *docs_get(struct docs *ds, uint64_t ino, int64_t now_boot)
{
	struct doc_entry *e;
	struct doc *d = NULL;

	pthread_mutex_lock(&ds->lock);
	e = find(ds, ino);
	if (e && e->last && now_boot < e->last->valid_until_boot) {
		d = doc_ref(e->last);
		e->last_used_boot = now_boot;
	}
	pthread_mutex_unlock(&ds->lock);
	return d;
}

int docs_put(struct docs *ds, uint64_t ino, struct doc *d)
{
	struct doc_entry *e;
	struct doc *old = NULL;

	int first = 0;

	pthread_mutex_lock(&ds->lock);
	e = entry(ds, ino);
	if (e) {
		old = e->last;
		e->last = doc_ref(d);
		e->last_used_boot = 0;
		if (d->version > e->shown)
			e->shown = d->version;
		if (!old)
			first = ds->kept++ == 0;
	}
	pthread_mutex_unlock(&ds->lock);
	doc_unref(old);
	return first;
}

size_t docs_kept(struct docs *ds)
{
	size_t n;

	pthread_mutex_lock(&ds->lock);
	n = ds->kept;
	pthread_mutex_unlock(&ds->lock);
	return n;
}

int docs_shown(struct docs *ds, uint64_t ino, uint64_t version)
{
	struct doc_entry *e;
	int shown;

	pthread_mutex_lock(&ds->lock);
	e = find(ds, ino);
	shown = e && e->shown >= version;
	pthread_mutex_unlock(&ds->lock);
	return shown;
}

void docs_forget(struct docs *ds, uint64_t ino)
{
	struct doc_entry *e;
	struct doc *old = NULL;

	pthread_mutex_lock(&ds->lock);
	e = find(ds, ino);
	if (e) {
		old = e->last;
		e->last = NULL;
		if (old)
			ds->kept--;
	}
	pthread_mutex_unlock(&ds->lock);
	doc_unref(old);
}

size_t docs_steady_size(struct docs *ds, uint64_t ino, size_t len, size_t step)
{
	struct doc_entry *e;
	size_t want;

	if (!step)
		return len;
	pthread_mutex_lock(&ds->lock);
	e = entry(ds, ino);
	if (e && e->steady >= len) {
		want = e->steady;
	} else {
		want = (len + PAD_HEADROOM + step - 1) / step * step;
		if (e && want <= UINT32_MAX)
			e->steady = (uint32_t)want;
	}
	pthread_mutex_unlock(&ds->lock);
	return want;
}

size_t docs_known_size(struct docs *ds, uint64_t ino)
{
	struct doc_entry *e;
	size_t n = 0;

	pthread_mutex_lock(&ds->lock);
	e = find(ds, ino);
	if (e)
		n = e->steady;
	pthread_mutex_unlock(&ds->lock);
	return n;
}

void docs_busy_begin(struct docs *ds, uint64_t ino)
{
	struct doc_entry *e;

	pthread_mutex_lock(&ds->lock);
	e = entry(ds, ino);
	if (e)
		e->busy++;
	pthread_mutex_unlock(&ds->lock);
}

unsigned docs_busy_end(struct docs *ds, uint64_t ino, uint64_t *version)
{
	struct doc_entry *e;
	unsigned due = 0;

	*version = 0;
	pthread_mutex_lock(&ds->lock);
	e = find(ds, ino);
	if (e && e->busy && --e->busy == 0) {
		due = e->due;
		*version = e->due_version;
		e->due = 0;
		e->due_version = 0;
	}
	pthread_mutex_unlock(&ds->lock);
	return due;
}

int docs_defer(struct docs *ds, uint64_t ino, unsigned what, uint64_t version)
{
	struct doc_entry *e;
	int deferred = 0;

	pthread_mutex_lock(&ds->lock);
	e = find(ds, ino);
	if (e && e->busy) {
		/* Unconditional wins; else the newest version decides. */
		if (!e->due)
			e->due_version = version;
		else if (e->due_version && (!version || version > e->due_version))
			e->due_version = version;
		e->due |= what;
		deferred = 1;
	}
	pthread_mutex_unlock(&ds->lock);
	return deferred;
}

void docs_mark_revoked(struct docs *ds, uint64_t ino)
{
	struct doc_entry *e;

	pthread_mutex_lock(&ds->lock);
	e = entry(ds, ino);
	if (e)
		e->revoked = 1;
	pthread_mutex_unlock(&ds->lock);
}

int docs_is_revoked(struct docs *ds, uint64_t ino)
{
	struct doc_entry *e;
	int revoked = 0;

	pthread_mutex_lock(&ds->lock);
	e = find(ds, ino);
	if (e)
		revoked = e->revoked;
	pthread_mutex_unlock(&ds->lock);
	return revoked;
}

void docs_sweep(struct docs *ds, int64_t now_boot)
{
	pthread_mutex_lock(&ds->lock);
	for (size_t i = 0; i < ds->cap; i++) {
		struct doc_entry *e = ds->tab[i];

		if (!e || !e->last)
			continue;
		if (!e->last_used_boot)
			e->last_used_boot = now_boot;
		if (now_boot >= e->last->valid_until_boot ||
		    now_boot - e->last_used_boot >= DOCS_KEEP_MS) {
			doc_unref(e->last);
			e->last = NULL;
			ds->kept--;
		}
	}
	pthread_mutex_unlock(&ds->lock);
}
