/*
 * Sealed memfds: bytes that one credfs process hands another (the text of
 * the configuration in force, the roles whose access a reload revoked) and
 * that nobody can change once made.  The receiver keeps the descriptor;
 * the bytes live in memory only.
 */
#ifndef CREDFS_MEMFD_H
#define CREDFS_MEMFD_H

#include <stddef.h>
#include "compiler.h"

/* A sealed memfd (close-on-exec) holding len bytes of data.  -1 with
 * errno on failure. */
int memfd_sealed(const char *name, const void *data, size_t len) WUR;
/* The same holding what fd holds from where it is to its end; fd is
 * closed either way. */
int memfd_sealed_copy(const char *name, int fd) WUR;
/* What a memfd holds, at most max bytes, into a malloc'd buffer (NUL
 * appended, not counted in *len).  0, or -1 with errno (EFBIG past max). */
int memfd_read(int fd, size_t max, char **data, size_t *len) WUR;

#endif
