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

/* Wipe then free a NUL-terminated secret string; NULL is fine. */
void secret_free(char *s);
/* Wipe then free n bytes. */
void secret_free_n(void *p, size_t n);
/* strdup that never returns NULL for a non-NULL input unless out of memory. */
char *secret_strdup(const char *s) WUR;

#endif
