#include "tokenfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/crypto.h>

#include "buf.h"

#define LINKS_MAX 40

struct walk {
	const char *path;		/* as configured, for messages */
	int dirfd;			/* the directory reached so far */
	int trusted;			/* every directory walked is trusted */
	int links;
	struct exchange_error *err;
};

static void PRINTF_LIKE(2, 3) fail(struct walk *w, const char *fmt, ...)
{
	va_list ap;

	memset(w->err, 0, sizeof(*w->err));
	snprintf(w->err->code, sizeof(w->err->code), "TokenFile");
	va_start(ap, fmt);
	vsnprintf(w->err->message, sizeof(w->err->message), fmt, ap);
	va_end(ap);
}

/* "cannot read web_identity_token_file PATH: why" for errno e. */
static void fail_errno(struct walk *w, int e)
{
	char eb[128];

	fail(w, "cannot read web_identity_token_file %s: %s", w->path,
	     strerror_r(e, eb, sizeof(eb)));
}

/* Owned by root or by us, and writable by no one else. */
static int trusted(const struct stat *st)
{
	return (st->st_uid == 0 || st->st_uid == geteuid()) &&
	       !(st->st_mode & (S_IWGRP | S_IWOTH));
}

/* Moves the walk to the directory fd (taken over). */
static int enter(struct walk *w, int fd)
{
	struct stat st;

	if (fd < 0 || fstat(fd, &st)) {
		if (fd >= 0)
			close(fd);
		fail_errno(w, errno);
		return -1;
	}
	if (w->dirfd >= 0)
		close(w->dirfd);
	w->dirfd = fd;
	w->trusted = w->trusted && trusted(&st);
	return 0;
}

static int start_at_root(struct walk *w)
{
	return enter(w, open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
}

/* Reads the whole of the regular file comp in the current directory. */
static int read_file(struct walk *w, const char *comp, char **out)
{
	struct stat st;
	struct buf b;
	char chunk[4096];
	ssize_t n;
	int fd, rc = -1;

	fd = openat(w->dirfd, comp,
		    O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		fail_errno(w, errno);
		return -1;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		fail(w, "web_identity_token_file %s is not a regular file",
		     w->path);
		close(fd);
		return -1;
	}
	buf_init(&b, TOKENFILE_MAX + 1);
	while ((n = read(fd, chunk, sizeof(chunk))) > 0) {
		if (buf_append(&b, chunk, (size_t)n)) {
			fail(w, "web_identity_token_file %s is larger than %d bytes",
			     w->path, TOKENFILE_MAX);
			goto out;
		}
	}
	if (n < 0) {
		fail_errno(w, errno);
		goto out;
	}
	if (!tokenfile_valid(b.data, b.len)) {
		if (b.len < TOKENFILE_MIN)
			fail(w, "web_identity_token_file %s is empty", w->path);
		else
			fail(w, "web_identity_token_file %s does not hold a JWT",
			     w->path);
		goto out;
	}
	*out = secret_strndup(b.data, b.len);
	rc = *out ? 0 : -1;
	if (rc)
		fail(w, "out of memory reading %s", w->path);
out:
	OPENSSL_cleanse(chunk, sizeof(chunk));
	buf_free(&b);
	close(fd);
	return rc;
}

/* Replaces the rest of the walk with the target of link comp followed by
 * rest.  Only where the link is trusted (see tokenfile.h). */
static int follow(struct walk *w, const char *comp, const struct stat *st,
		  const char *rest, char *path, size_t size)
{
	char target[PATH_MAX];
	ssize_t n;

	if (!w->trusted || !(st->st_uid == 0 || st->st_uid == geteuid())) {
		fail(w, "refusing web_identity_token_file %s: a symbolic link on its path can be changed by other users",
		     w->path);
		return -1;
	}
	if (++w->links > LINKS_MAX) {
		fail(w, "web_identity_token_file %s: too many symbolic links",
		     w->path);
		return -1;
	}
	n = readlinkat(w->dirfd, comp, target, sizeof(target) - 1);
	if (n <= 0) {
		if (n < 0)
			fail_errno(w, errno);
		else
			fail(w, "web_identity_token_file %s: an empty symbolic link",
			     w->path);
		return -1;
	}
	target[n] = '\0';
	if ((size_t)snprintf(path, size, "%s%s%s", target, *rest ? "/" : "",
			     rest) >= size) {
		fail(w, "web_identity_token_file %s: path too long", w->path);
		return -1;
	}
	return target[0] == '/' ? start_at_root(w) : 0;
}

/* Walks path (absolute) to its last component and reads it. */
static int walk(struct walk *w, char *path, size_t size, char **out)
{
	char comp[NAME_MAX + 1];
	struct stat st;

	for (;;) {
		const char *p = path + strspn(path, "/"), *rest;
		size_t len = strcspn(p, "/");

		rest = p + len + strspn(p + len, "/");
		if (len == 0 || len > NAME_MAX) {
			fail(w, "web_identity_token_file %s is not a file path",
			     w->path);
			return -1;
		}
		memcpy(comp, p, len);
		comp[len] = '\0';
		memmove(path, rest, strlen(rest) + 1);
		if (fstatat(w->dirfd, comp, &st, AT_SYMLINK_NOFOLLOW)) {
			fail_errno(w, errno);
			return -1;
		}
		if (S_ISLNK(st.st_mode)) {
			char rest_copy[PATH_MAX];

			snprintf(rest_copy, sizeof(rest_copy), "%s", path);
			if (follow(w, comp, &st, rest_copy, path, size))
				return -1;
			continue;
		}
		if (!*path)
			return read_file(w, comp, out);
		if (!S_ISDIR(st.st_mode)) {
			fail_errno(w, ENOTDIR);
			return -1;
		}
		if (enter(w, openat(w->dirfd, comp, O_PATH | O_DIRECTORY |
				    O_NOFOLLOW | O_CLOEXEC)))
			return -1;
	}
}

int tokenfile_read(const char *path, char **out, struct exchange_error *err)
{
	struct walk w = { .path = path, .dirfd = -1, .trusted = 1, .err = err };
	char work[PATH_MAX];
	int rc;

	*out = NULL;
	if (path[0] != '/' || strlen(path) >= sizeof(work)) {
		exchange_error_set(err, "TokenFile",
				   "web_identity_token_file %s is not an absolute path",
				   path);
		return -1;
	}
	snprintf(work, sizeof(work), "%s", path);
	rc = start_at_root(&w);
	if (!rc)
		rc = walk(&w, work, sizeof(work), out);
	if (w.dirfd >= 0)
		close(w.dirfd);
	return rc;
}

int tokenfile_valid(const char *text, size_t len)
{
	static const char b64url[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=";
	size_t dots = 0, part = 0;

	if (len && text[len - 1] == '\n')
		len--;
	if (len && text[len - 1] == '\r')
		len--;
	if (len < TOKENFILE_MIN || len > TOKENFILE_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		if (text[i] == '.') {
			if (!part)
				return 0;
			dots++;
			part = 0;
		} else if (text[i] && strchr(b64url, text[i])) {
			part++;
		} else {
			return 0;
		}
	}
	return dots == 2 && part;
}
