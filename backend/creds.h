/*
 * What the engine hands out: credentials and web identity tokens.  Both
 * are immutable once published, reference-counted, and wiped when the last
 * reference goes.  Every set received gets a version, distinct across the
 * process and increasing, which is what documents derived from it carry
 * as their mtime (so the kernel can tell one generation from another).
 */
#ifndef CREDFS_CREDS_H
#define CREDFS_CREDS_H

#include <stddef.h>
#include <stdint.h>
#include "compiler.h"

/* Credentials of any cloud: only the fields of the role's cloud are set.
 * Secrets are in secure memory (secret_strdup). */
struct creds {
	int64_t obtained;		/* wall seconds when received */
	int64_t expires;		/* wall seconds */
	uint64_t version;
	/* The refresh point in force (wall seconds): the one field that may
	 * change after publication (a reload can move it), so it is read and
	 * written with creds_refresh_at() and creds_set_refresh_at(). */
	int64_t refresh_at;
	/* AWS */
	char *access_key_id;
	char *secret_access_key;	/* secret */
	char *session_token;		/* secret */
	char *assumed_role_arn;		/* may be NULL */
	/* Google Cloud, Azure: a bearer token */
	char *access_token;		/* secret */
};

/* A web identity token: signed by credfs, or read from a token file. */
struct token {
	char *jwt;			/* secret, NUL-terminated */
	size_t len;
	int64_t obtained;		/* wall seconds when signed or read */
	int64_t expires;		/* wall seconds; 0: unknown (a token file) */
	int64_t refresh_at;		/* wall seconds: when it is produced again;
					 * token_refresh_at() reads it */
	uint64_t version;
};

/* A fresh, empty set with one reference; NULL when out of memory. */
struct creds *creds_new(void) WUR;
struct creds *creds_ref(struct creds *c);
void creds_unref(struct creds *c);
/* Wipes and frees the fields of c, leaving it empty (for a struct creds
 * that was never published, such as a kind's scratch copy). */
void creds_clear(struct creds *c);
/* Moves the fields of from into a new published set (from is left empty).
 * NULL when out of memory (from is cleared). */
struct creds *creds_publish(struct creds *from) WUR;

static inline int64_t creds_refresh_at(const struct creds *c)
{
	return __atomic_load_n(&c->refresh_at, __ATOMIC_RELAXED);
}

static inline void creds_set_refresh_at(struct creds *c, int64_t t)
{
	__atomic_store_n(&c->refresh_at, t, __ATOMIC_RELAXED);
}

static inline int64_t token_refresh_at(const struct token *t)
{
	return __atomic_load_n(&t->refresh_at, __ATOMIC_RELAXED);
}

static inline void token_set_refresh_at(struct token *t, int64_t at)
{
	__atomic_store_n(&t->refresh_at, at, __ATOMIC_RELAXED);
}

/* A token taking jwt over (NULL: out of memory, jwt wiped). */
struct token *token_new(char *jwt, int64_t obtained, int64_t expires) WUR;
struct token *token_ref(struct token *t);
void token_unref(struct token *t);

/* A new version number: process-wide, increasing, never 0. */
uint64_t creds_next_version(void);

#endif
