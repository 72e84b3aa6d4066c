/*
 * Whole writes to a descriptor: what the handover of credentials and the
 * sealed memfds need (a write may be cut short, or interrupted).
 */
#ifndef CREDFS_FDIO_H
#define CREDFS_FDIO_H

#include <stddef.h>
#include "compiler.h"

/* Writes all n bytes of p to fd: 0, or -1 with errno. */
int fd_write_all(int fd, const void *p, size_t n) WUR;

#endif
