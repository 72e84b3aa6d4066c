/*
 * Percent-encoding (RFC 3986), the one encoder of the backend: what SigV4
 * signs (sigv4.c), the form bodies of the token endpoints (sts.c and the
 * other clouds' kinds) and the parts of a URL a kind builds.  Unreserved
 * characters (ALPHA DIGIT - . _ ~) are kept; every other byte becomes %XX
 * with upper-case hex, so a space is %20, never '+'.
 */
#ifndef CREDFS_PERCENT_H
#define CREDFS_PERCENT_H

#include <stddef.h>
#include "buf.h"
#include "compiler.h"

/* Appends n bytes of s, encoded, to b.  0, or -ENOMEM / -E2BIG (b is then
 * wiped and freed, as buf_append does). */
int percent_encode(struct buf *b, const char *s, size_t n) WUR;

/* Appends "key=value" to an application/x-www-form-urlencoded body, with a
 * '&' before it unless b is empty; key and value are both encoded.  0 or
 * -errno as percent_encode. */
int percent_form_add(struct buf *b, const char *key, const char *value) WUR;

#endif
