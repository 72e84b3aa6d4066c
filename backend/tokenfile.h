/*
 * Reading a web_identity_token_file without trusting the file system.
 *
 * The daemon runs as root and the file is often in a directory that other
 * users can write, so:
 *   - The path is walked one component at a time from "/", each directory
 *     opened with O_PATH | O_NOFOLLOW.  A symbolic link is followed only
 *     where the link itself and every directory walked to reach it are
 *     owned by root or the daemon's user and are not group- or
 *     world-writable: a link planted by someone else is refused, and so is
 *     any link under /tmp.  At most 40 links are followed.
 *   - The file is opened O_RDONLY | O_NONBLOCK | O_NOFOLLOW (a FIFO opens
 *     without a writer and is then refused), must be a regular file
 *     (fstat of the same descriptor), and its size and bytes come from that
 *     one descriptor, read to the end, at most TOKENFILE_MAX bytes.
 *   - The content must be a JWT: three base64url parts separated by dots,
 *     with at most one trailing newline (kept: the token is used as is, as
 *     the AWS SDKs do).  Anything else is refused without quoting it.
 *
 * A read can still block in the kernel on a file system that does not
 * answer (a hung FUSE or NFS mount); the engine therefore never calls this
 * on a thread that serves a reader, and bounds its wait (engine.c).
 */
#ifndef CREDFS_TOKENFILE_H
#define CREDFS_TOKENFILE_H

#include <stddef.h>
#include "compiler.h"
#include "exchange_error.h"

#define TOKENFILE_MAX 20000	/* STS takes tokens of up to 20,000 bytes */
#define TOKENFILE_MIN 4

/* Reads path.  0 and a secret copy in *out (secret_free it), or -1 with
 * err filled (code "TokenFile"; the message names the path, never the
 * content). */
int tokenfile_read(const char *path, char **out, struct exchange_error *err) WUR;

/* Whether text (len bytes) is acceptable as a web identity token. */
int tokenfile_valid(const char *text, size_t len);

#endif
