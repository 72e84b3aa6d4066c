/*
 * Capped, growable byte buffers (after curl's dynbuf).  A buffer never
 * grows beyond the maximum given to buf_init(); an append that would is
 * refused, the buffer is wiped and freed, and the call fails.  Contents are
 * always NUL-terminated so text can be used directly.  Every free wipes the
 * memory first, so buffers may hold secrets.
 */
#ifndef CREDFS_BUF_H
#define CREDFS_BUF_H

#include <stddef.h>
#include "compiler.h"

struct buf {
	char *data;	/* NULL until the first append */
	size_t len;	/* bytes used, not counting the terminating NUL */
	size_t cap;	/* bytes allocated */
	size_t max;	/* largest len allowed */
};

void buf_init(struct buf *b, size_t max);

/* 0 on success; -ENOMEM or -E2BIG (buffer freed) on failure. */
int buf_append(struct buf *b, const void *data, size_t len) WUR;
int buf_append_str(struct buf *b, const char *s) WUR;
int buf_printf(struct buf *b, const char *fmt, ...) PRINTF_LIKE(2, 3) WUR;

/* Wipes, frees and resets to empty (keeps max). */
void buf_free(struct buf *b);

/* Hands the NUL-terminated data to the caller ("" if empty) and resets b.
 * Returns NULL only on allocation failure. */
char *buf_steal(struct buf *b) WUR;

/*
 * Secrets (keys, session tokens, JWTs) live in OpenSSL's secure heap when
 * the process has one: an arena locked in memory (mlock, so never swapped)
 * and left out of core dumps (MADV_DONTDUMP).  secret_heap_init() creates
 * it once, at daemon start; without it, or once only an eighth of it is
 * left (OpenSSL's own private-key operations need that room), secrets live
 * in ordinary memory.  Either way they are wiped before being freed.
 */

/* Creates the secure heap (size: a power of two).  Returns 1 when it is
 * locked in memory, 2 when it exists but the system refused the lock
 * (RLIMIT_MEMLOCK), 0 when it could not be created.  Call before any
 * secret is allocated, once. */
int secret_heap_init(size_t size);
/* Frees the calling thread's OpenSSL state (its error queue, its random
 * generators).  A detached thread calls it before it tells anyone it is
 * done: its exit destructors could otherwise still be running when the
 * process exits, and free under OpenSSL's own cleanup. */
void secret_thread_end(void);
/* Locks the secure heap in memory again (a child of fork() does not
 * inherit memory locks).  0 on success, -1 if there is none or the system
 * refused. */
int secret_heap_relock(void);
/* Wipe then free a NUL-terminated secret string; NULL is fine. */
void secret_free(char *s);
/* Wipe then free n bytes (from secret_strdup or plain malloc). */
void secret_free_n(void *p, size_t n);
/* Copies of s (at most n bytes of it) in the secure heap if there is room,
 * else in ordinary memory.  NULL for a NULL s or when out of memory.  Free
 * with secret_free. */
char *secret_strdup(const char *s) WUR;
char *secret_strndup(const char *s, size_t n) WUR;

#endif
