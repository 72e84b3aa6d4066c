#include "creds.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

struct creds_box {
	atomic_uint refs;
	struct creds c;
};

struct token_box {
	atomic_uint refs;
	struct token t;
};

static atomic_uint_fast64_t last_version;

uint64_t creds_next_version(void)
{
	return atomic_fetch_add(&last_version, 1) + 1;
}

static struct creds_box *creds_box_of(struct creds *c)
{
	return (struct creds_box *)((char *)c - offsetof(struct creds_box, c));
}

static struct token_box *token_box_of(struct token *t)
{
	return (struct token_box *)((char *)t - offsetof(struct token_box, t));
}

struct creds *creds_new(void)
{
	struct creds_box *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	atomic_init(&b->refs, 1);
	b->c.version = creds_next_version();
	return &b->c;
}

struct creds *creds_ref(struct creds *c)
{
	if (c)
		atomic_fetch_add(&creds_box_of(c)->refs, 1);
	return c;
}

void creds_clear(struct creds *c)
{
	secret_free(c->access_key_id);
	secret_free(c->secret_access_key);
	secret_free(c->session_token);
	secret_free(c->assumed_role_arn);
	secret_free(c->access_token);
	memset(c, 0, sizeof(*c));
}

void creds_unref(struct creds *c)
{
	struct creds_box *b;

	if (!c)
		return;
	b = creds_box_of(c);
	if (atomic_fetch_sub(&b->refs, 1) == 1) {
		creds_clear(&b->c);
		free(b);
	}
}

struct creds *creds_publish(struct creds *from)
{
	struct creds *c = creds_new();
	uint64_t version;

	if (!c) {
		creds_clear(from);
		return NULL;
	}
	version = c->version;
	*c = *from;
	c->version = version;
	memset(from, 0, sizeof(*from));
	return c;
}

struct token *token_new(char *jwt, int64_t obtained, int64_t expires)
{
	struct token_box *b = calloc(1, sizeof(*b));

	if (!b) {
		secret_free(jwt);
		return NULL;
	}
	atomic_init(&b->refs, 1);
	b->t.jwt = jwt;
	b->t.len = strlen(jwt);
	b->t.obtained = obtained;
	b->t.expires = expires;
	b->t.version = creds_next_version();
	return &b->t;
}

struct token *token_ref(struct token *t)
{
	if (t)
		atomic_fetch_add(&token_box_of(t)->refs, 1);
	return t;
}

void token_unref(struct token *t)
{
	struct token_box *b;

	if (!t)
		return;
	b = token_box_of(t);
	if (atomic_fetch_sub(&b->refs, 1) == 1) {
		secret_free(b->t.jwt);
		free(b);
	}
}
