#include "buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <openssl/crypto.h>

void buf_init(struct buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

void buf_free(struct buf *b)
{
	if (b->data) {
		OPENSSL_cleanse(b->data, b->cap);
		free(b->data);
	}
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

/* Makes room for extra more bytes plus the NUL.  Growth copies into a new
 * block and wipes the old one, so no stale copy of a secret is left behind
 * (realloc could leave one). */
static int buf_reserve(struct buf *b, size_t extra)
{
	size_t need, cap;
	char *p;

	if (extra > b->max || b->len > b->max - extra) {
		buf_free(b);
		return -E2BIG;
	}
	need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap *= 2;
	if (cap > b->max + 1)
		cap = b->max + 1;
	p = malloc(cap);
	if (!p) {
		buf_free(b);
		return -ENOMEM;
	}
	if (b->data) {
		memcpy(p, b->data, b->len + 1);
		OPENSSL_cleanse(b->data, b->cap);
		free(b->data);
	}
	b->data = p;
	b->cap = cap;
	return 0;
}

int buf_append(struct buf *b, const void *data, size_t len)
{
	int r = buf_reserve(b, len);

	if (r)
		return r;
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

int buf_append_str(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n, r;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	r = buf_reserve(b, (size_t)n);
	if (r)
		return r;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

char *buf_steal(struct buf *b)
{
	char *p;

	if (!b->data) {
		p = strdup("");
		return p;
	}
	p = b->data;
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	return p;
}

/* The secure heap's size, 0: none. */
static size_t secret_heap_size;

int secret_heap_init(size_t size)
{
	int r = CRYPTO_secure_malloc_init(size, 64);

	if (r)
		secret_heap_size = size;
	return r;
}

/* Whether a secret of n bytes may go to the secure heap: only while an
 * eighth of it stays free.  OpenSSL takes the temporaries of a private-key
 * operation from the same arena (an ECDSA signature fails outright when
 * it is full), so the secrets a daemon keeps (a token and credentials per
 * role in use) must never crowd out the signing of the next one.  The
 * test counts a block as twice the bytes asked for, since the arena hands
 * out powers of two. */
static int secret_heap_has_room(size_t n)
{
	size_t reserve = secret_heap_size / 8;

	return secret_heap_size &&
	       CRYPTO_secure_used() + 2 * n + reserve <= secret_heap_size;
}

int secret_heap_relock(void)
{
	long page = sysconf(_SC_PAGESIZE);
	char *probe, *lo, *hi;
	int r = -1;

	/* OpenSSL does not say where its arena is; find its page-aligned
	 * bounds from a block inside it (CRYPTO_secure_allocated only
	 * compares addresses). */
	probe = OPENSSL_secure_malloc(1);
	if (!probe)
		return -1;
	if (page > 0 && CRYPTO_secure_allocated(probe)) {
		lo = (char *)((uintptr_t)probe & ~(uintptr_t)(page - 1));
		while (CRYPTO_secure_allocated(lo - page))
			lo -= page;
		hi = lo;
		while (CRYPTO_secure_allocated(hi))
			hi += page;
		/* As OpenSSL locks it: mlock2(MLOCK_ONFAULT), else mlock. */
		r = (int)syscall(SYS_mlock2, lo, (size_t)(hi - lo), MLOCK_ONFAULT);
		if (r && errno == ENOSYS)
			r = mlock(lo, (size_t)(hi - lo));
		r = r ? -1 : 0;
	}
	secret_free_n(probe, 1);
	return r;
}

/* Secure-heap blocks go back to it wiped (OPENSSL_secure_clear_free wipes
 * the whole block); anything else is wiped and freed. */
void secret_free_n(void *p, size_t n)
{
	if (!p)
		return;
	if (CRYPTO_secure_allocated(p)) {
		OPENSSL_secure_clear_free(p, n);
		return;
	}
	OPENSSL_cleanse(p, n);
	free(p);
}

void secret_free(char *s)
{
	if (s)
		secret_free_n(s, strlen(s));
}

char *secret_strndup(const char *s, size_t n)
{
	char *p;

	if (!s)
		return NULL;
	n = strnlen(s, n);
	/* Past the room the secure heap keeps for OpenSSL, ordinary memory
	 * (still wiped on free) is better than no credentials. */
	p = secret_heap_has_room(n + 1) ? OPENSSL_secure_malloc(n + 1) : NULL;
	if (!p)
		p = malloc(n + 1);
	if (!p)
		return NULL;
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *secret_strdup(const char *s)
{
	return s ? secret_strndup(s, strlen(s)) : NULL;
}

void secret_thread_end(void)
{
	OPENSSL_thread_stop();
}
