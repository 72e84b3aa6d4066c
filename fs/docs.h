/*
 * What the kernel was last told about each file, so that what it reads
 * matches.  The kernel learns a file's size from getattr and then reads
 * its pages with separate requests; if a renewal came in between and the
 * document were produced again for the read, its bytes could belong to
 * another generation than the size the kernel holds.  So the document
 * produced for getattr (or for the first read) is kept here and served to
 * the reads that follow, for as long as it is valid (never past the expiry
 * of the credentials it shows) and at most DOCS_KEEP_MS after it was last
 * used.  A document is replaced when the kernel asks for attributes
 * again (after an invalidation, or when its attribute timeout ends): what
 * getattr answers is always produced afresh, and kept.
 *
 * Also kept per file: whether its role's access was revoked, its steady size (render.h: documents are padded so
 * that renewals keep the size the kernel knows) and how many reads of it
 * are being answered (an invalidation of its pages must not wait behind
 * them: inval.c defers it until they are done).
 */
#ifndef CREDFS_DOCS_H
#define CREDFS_DOCS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "compiler.h"

#define DOCS_KEEP_MS 5000

/* A produced document: immutable, reference-counted, wiped when freed. */
struct doc {
	char *data;
	size_t len;
	struct timespec mtime;		/* changes with every generation */
	uint64_t version;		/* of the credentials or token shown; 0: none */
	int64_t valid_until_boot;	/* never served after; INT64_MAX: always */
	double attr_timeout;		/* how long the kernel may keep its attributes */
};

struct doc_entry;

struct docs {
	pthread_mutex_t lock;
	struct doc_entry **tab;		/* open addressing by inode number */
	size_t cap, n;
	size_t kept;			/* entries holding a document */
};

/* A document taking data (len bytes, malloc'd; wiped when freed) over. */
struct doc *doc_new(char *data, size_t len) WUR;
struct doc *doc_ref(struct doc *d);
void doc_unref(struct doc *d);

int docs_init(struct docs *ds) WUR;
void docs_destroy(struct docs *ds);

/* The document last kept for ino if it may still be served: a reference,
 * or NULL. */
struct doc *docs_get(struct docs *ds, uint64_t ino, int64_t now_boot) WUR;
/* Keeps d (a reference is taken) as what the kernel was told about ino;
 * 1 when it is the only document kept now. */
int docs_put(struct docs *ds, uint64_t ino, struct doc *d);
/* How many documents are kept now (docs_put: 1 when d is the only one, so
 * that the sweeper, idle while there are none, can be woken). */
size_t docs_kept(struct docs *ds);
/* Whether the kernel was last told about a document of ino showing
 * version or a newer one (then it holds nothing older). */
int docs_shown(struct docs *ds, uint64_t ino, uint64_t version);
/* Forgets the document of ino (its steady size stays). */
void docs_forget(struct docs *ds, uint64_t ino);
/* The steady size for a document of len bytes of ino: the largest seen,
 * grown in steps with headroom.  step 0: no padding (returns len). */
size_t docs_steady_size(struct docs *ds, uint64_t ino, size_t len, size_t step);
/* The steady size ino had, 0 if none. */
size_t docs_known_size(struct docs *ds, uint64_t ino);

/* Requests about ino being answered (a getattr that produces its document,
 * a read).  While one is, an invalidation of ino waits: of its pages,
 * because the kernel holds them locked for a read; of its attributes,
 * because the kernel drops an answer to a request that an invalidation
 * overtook (its attr_version moved), keeping a size it was told before
 * and filling the rest of a short read with zeros.  docs_busy_end
 * returns what was deferred and is now due (DOCS_ATTRS | DOCS_PAGES; the
 * caller queues it). */
#define DOCS_ATTRS 1
#define DOCS_PAGES 2
void docs_busy_begin(struct docs *ds, uint64_t ino);
unsigned docs_busy_end(struct docs *ds, uint64_t ino, uint64_t *version);
/* 0 if what (DOCS_ATTRS or DOCS_PAGES) of ino may be invalidated now;
 * else 1, and it is remembered for docs_busy_end with the version that
 * caused it (0: unconditional).  The version matters: the request that
 * held it up has usually just told the kernel of that very version, and
 * an invalidation sent then would land between the answer and the
 * moment the kernel applies it (in the asking task, later), which drops
 * the answer. */
int docs_defer(struct docs *ds, uint64_t ino, unsigned what, uint64_t version) WUR;

/* Files whose role's owner or mode a reload changed: the kernel may keep
 * their attributes no time at all from then on, so every read of them
 * reaches the daemon, which checks the reader (ops.c).  For the life of
 * the process. */
void docs_mark_revoked(struct docs *ds, uint64_t ino);
int docs_is_revoked(struct docs *ds, uint64_t ino);

/* Drops documents not used for DOCS_KEEP_MS or no longer valid. */
void docs_sweep(struct docs *ds, int64_t now_boot);

#endif
