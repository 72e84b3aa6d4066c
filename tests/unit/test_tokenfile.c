/*
 * Reading web_identity_token_file without trusting the file system: a
 * regular file is read whole (a trailing newline kept), anything that is
 * not a JWT, is empty or too large is refused, and so are FIFOs (without
 * blocking), devices and directories; a symbolic link is followed only
 * where no one else could have planted or changed it (the Kubernetes
 * ..data layout is), loops end; every message names the path, never the
 * content.
 *
 * Links are tried in a directory whose every ancestor is trusted (owned
 * by root or us, not group- or world-writable): the build directory, or
 * /run.  The planted-link case needs root (lchown to another user).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "check.h"
#include "tokenfile.h"

#define JWT "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
#define JWT2 "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ5In0.b3RoZXItc2ln"
#define OTHER_UID 12345

static char tmp[PATH_MAX];	/* under /tmp: no link is followed there */
static char safe[PATH_MAX];	/* trusted all the way up, or "" */

/* ---- helpers ------------------------------------------------------------ */

/* out = dir/name (out has PATH_MAX bytes). */
static void path_in(char *out, const char *dir, const char *name)
{
	if ((size_t)snprintf(out, PATH_MAX, "%s/%s", dir, name) >= PATH_MAX)
		abort();
}

static int write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, data, len);
	close(fd);
	return n == (ssize_t)len ? 0 : -1;
}

static int write_str(const char *path, const char *s)
{
	return write_file(path, s, strlen(s));
}

/* Whether dir and every directory above it are owned by root or us and
 * writable by no one else. */
static int trusted_chain(const char *dir)
{
	char p[PATH_MAX];
	struct stat st;

	if (!realpath(dir, p))
		return 0;
	for (;;) {
		char *slash;

		if (stat(p, &st) || !S_ISDIR(st.st_mode) ||
		    (st.st_uid != 0 && st.st_uid != geteuid()) ||
		    (st.st_mode & (S_IWGRP | S_IWOTH)))
			return 0;
		if (!strcmp(p, "/"))
			return 1;
		slash = strrchr(p, '/');
		if (slash == p)
			slash[1] = '\0';
		else
			*slash = '\0';
	}
}

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void rm_tree(const char *dir)
{
	if (dir[0])
		nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void setup(void)
{
	static const char *const bases[] = { TEST_BUILD_DIR, "/run" };

	snprintf(tmp, sizeof(tmp), "/tmp/credfs-tokenfile-XXXXXX");
	if (!mkdtemp(tmp)) {
		perror("mkdtemp");
		exit(1);
	}
	safe[0] = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(bases); i++) {
		char d[PATH_MAX], real[PATH_MAX];

		if (!trusted_chain(bases[i]) || !realpath(bases[i], real))
			continue;
		path_in(d, real, "credfs-tokenfile-XXXXXX");
		if (mkdtemp(d)) {
			snprintf(safe, sizeof(safe), "%s", d);
			break;
		}
	}
	if (!safe[0])
		fprintf(stderr, "    no trusted directory: link cases skipped\n");
}

static void teardown(void)
{
	rm_tree(tmp);
	rm_tree(safe);
}

/* Reads path expecting success with exactly want. */
static void read_ok(const char *path, const char *want)
{
	struct exchange_error err;
	char *out = (char *)"unset";
	int rc = tokenfile_read(path, &out, &err);

	CHECK(rc == 0);
	if (rc) {
		fprintf(stderr, "    %s: %s: %s\n", path, err.code, err.message);
		return;
	}
	CHECK(out && !strcmp(out, want));
	secret_free(out);
}

/* Reads path expecting a refusal whose message names path and holds
 * words; returns how long the call took in ms. */
static long read_refused(const char *path, const char *words)
{
	struct exchange_error err;
	struct timespec a, b;
	char *out = (char *)"unset";
	int rc;

	clock_gettime(CLOCK_MONOTONIC, &a);
	rc = tokenfile_read(path, &out, &err);
	clock_gettime(CLOCK_MONOTONIC, &b);
	CHECK(rc == -1);
	CHECK(out == NULL);
	if (rc == 0) {
		secret_free(out);
		fprintf(stderr, "    %s was read\n", path);
		return 0;
	}
	CHECK_STR(err.code, "TokenFile");
	CHECK(strstr(err.message, path) != NULL);
	if (words && !strstr(err.message, words)) {
		fprintf(stderr, "    \"%s\" lacks \"%s\"\n", err.message, words);
		CHECK(!"the reason");
	}
	CHECK(err.retryable == 0 && err.http_status == 0);
	return (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
}

/* ---- content ------------------------------------------------------------ */

static void reads_a_regular_file(void)
{
	char p[PATH_MAX];

	path_in(p, tmp, "token");
	CHECK(write_str(p, JWT) == 0);
	read_ok(p, JWT);
	/* Read afresh each time. */
	CHECK(write_str(p, JWT2) == 0);
	read_ok(p, JWT2);
	/* The mode of the file is not ours to judge: 0644 reads too. */
	CHECK(chmod(p, 0644) == 0);
	read_ok(p, JWT2);
	/* Slashes doubled are still the same path. */
	path_in(p, tmp, "/token");
	read_ok(p, JWT2);
}

static void jwt_shape(void)
{
	static const struct {
		const char *text;
		int ok;
	} t[] = {
		{ JWT, 1 },
		{ JWT "\n", 1 },
		{ JWT "\r\n", 1 },
		{ "a.b.c", 1 },
		{ "a-_.b=.c", 1 },
		{ "a.b.c\n\n", 0 },
		{ "a.b.c\n ", 0 },
		{ "a.b", 0 },
		{ "a.b.c.d", 0 },
		{ ".b.c", 0 },
		{ "a..c", 0 },
		{ "a.b.", 0 },
		{ "a.b.c ", 0 },
		{ " a.b.c", 0 },
		{ "a.b+.c", 0 },	/* base64, not base64url */
		{ "a.b/.c", 0 },
		{ "a.b.c\"", 0 },
		{ "a.$(id).c", 0 },
		{ "a.b\n.c", 0 },
		{ "", 0 },
		{ "\n", 0 },
		{ "...", 0 },
	};

	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		if (tokenfile_valid(t[i].text, strlen(t[i].text)) != t[i].ok) {
			fprintf(stderr, "    \"%s\"\n", t[i].text);
			CHECK(!"tokenfile_valid");
		}
	}
	/* A NUL inside is not a JWT either (len counts it). */
	CHECK(!tokenfile_valid("a.b\0.c", 6));
	/* The length bounds, without the newline. */
	{
		static char big[TOKENFILE_MAX + 3];

		memset(big, 'A', sizeof(big));
		big[1] = '.';
		big[3] = '.';
		CHECK(tokenfile_valid(big, TOKENFILE_MAX));
		big[TOKENFILE_MAX] = '\n';
		CHECK(tokenfile_valid(big, TOKENFILE_MAX + 1));
		big[TOKENFILE_MAX] = 'A';
		CHECK(!tokenfile_valid(big, TOKENFILE_MAX + 1));
		CHECK(!tokenfile_valid("a.b", 3));
		CHECK(TOKENFILE_MIN == 4);
	}
}

/* The SDKs use the file as is; so does credfs. */
static void trailing_newline_kept(void)
{
	char p[PATH_MAX];

	path_in(p, tmp, "nl");
	CHECK(write_str(p, JWT "\n") == 0);
	read_ok(p, JWT "\n");
	CHECK(write_str(p, JWT "\r\n") == 0);
	read_ok(p, JWT "\r\n");
	CHECK(write_str(p, JWT "\n\n") == 0);
	read_refused(p, "does not hold a JWT");
}

static void empty_and_oversized_refused(void)
{
	char p[PATH_MAX];
	struct buf b;

	path_in(p, tmp, "empty");
	CHECK(write_str(p, "") == 0);
	read_refused(p, "is empty");
	CHECK(write_str(p, "\n") == 0);
	read_refused(p, "is empty");

	/* Exactly the largest token STS takes, with and without its
	 * newline, then one byte more, then far more. */
	path_in(p, tmp, "big");
	buf_init(&b, 2 * 1024 * 1024);
	CHECK(!buf_append_str(&b, "eyJh.eyJz."));
	while (b.len < TOKENFILE_MAX)
		CHECK(!buf_append(&b, "A", 1));
	CHECK(write_file(p, b.data, b.len) == 0);
	{
		struct exchange_error err;
		char *out = NULL;

		CHECK(tokenfile_read(p, &out, &err) == 0);
		CHECK(out && strlen(out) == TOKENFILE_MAX);
		secret_free(out);
	}
	CHECK(!buf_append(&b, "\n", 1));
	CHECK(write_file(p, b.data, b.len) == 0);
	{
		struct exchange_error err;
		char *out = NULL;

		CHECK(tokenfile_read(p, &out, &err) == 0);
		CHECK(out && strlen(out) == TOKENFILE_MAX + 1);
		secret_free(out);
	}
	b.data[b.len - 1] = 'A';
	CHECK(write_file(p, b.data, b.len) == 0);
	read_refused(p, NULL);
	while (b.len < 1024 * 1024)
		CHECK(!buf_append(&b, "AAAAAAAAAAAAAAAA", 16));
	CHECK(write_file(p, b.data, b.len) == 0);
	read_refused(p, "larger than 20000 bytes");
	buf_free(&b);
}

/* ---- what is not a regular file ------------------------------------------- */

static void fifo_refused_without_blocking(void)
{
	char p[PATH_MAX];
	long ms;

	path_in(p, tmp, "fifo");
	CHECK(mkfifo(p, 0600) == 0);
	ms = read_refused(p, "not a regular file");
	CHECK(ms < 1000);
	/* Also when it is opened for writing elsewhere (reads would wait
	 * for data). */
	{
		int w, r = open(p, O_RDONLY | O_NONBLOCK);

		w = open(p, O_WRONLY | O_NONBLOCK);
		CHECK(r >= 0 && w >= 0);
		ms = read_refused(p, "not a regular file");
		CHECK(ms < 1000);
		if (w >= 0)
			close(w);
		if (r >= 0)
			close(r);
	}
}

static void devices_and_directories_refused(void)
{
	char p[PATH_MAX];

	read_refused("/dev/zero", "not a regular file");
	read_refused("/dev/null", "not a regular file");
	read_refused(tmp, "not a regular file");
	path_in(p, tmp, "");
	read_refused(p, NULL);
	read_refused("/", "not a file path");
}

static void bad_paths_refused(void)
{
	char p[PATH_MAX];

	read_refused("relative/token", "not an absolute path");
	read_refused("", "not an absolute path");
	path_in(p, tmp, "missing");
	read_refused(p, "No such file or directory");
	/* Through a file as if it were a directory. */
	path_in(p, tmp, "plain");
	CHECK(write_str(p, JWT) == 0);
	path_in(p, tmp, "plain/token");
	read_refused(p, "Not a directory");
	/* A component longer than NAME_MAX. */
	{
		char name[NAME_MAX + 2];

		memset(name, 'n', sizeof(name) - 1);
		name[sizeof(name) - 1] = '\0';
		path_in(p, tmp, name);
		read_refused(p, NULL);
	}
}

/* ---- symbolic links --------------------------------------------------------- */

/* Any link under /tmp (world-writable) is refused, wherever it points. */
static void links_under_tmp_refused(void)
{
	char real[PATH_MAX], link[PATH_MAX];

	path_in(real, tmp, "real");
	path_in(link, tmp, "link");
	CHECK(write_str(real, JWT) == 0);
	CHECK(symlink("real", link) == 0);
	read_refused(link, "can be changed by other users");
	read_ok(real, JWT);
}

/* A link owned by another user, or in a directory others can write, is
 * refused; a plain file in such a directory is read (only links are a
 * way to be sent elsewhere). */
static void planted_links_refused(void)
{
	char real[PATH_MAX], link[PATH_MAX], open_dir[PATH_MAX];

	if (!safe[0])
		return;
	path_in(real, safe, "real");
	CHECK(write_str(real, JWT) == 0);

	path_in(link, safe, "theirs");
	CHECK(symlink("real", link) == 0);
	if (geteuid() == 0) {
		CHECK(lchown(link, OTHER_UID, OTHER_UID) == 0);
		read_refused(link, "can be changed by other users");
	} else {
		fprintf(stderr, "    not root: the lchown case is skipped\n");
	}

	/* Directories writable by others: 0777 and 1777. */
	for (int sticky = 0; sticky <= 1; sticky++) {
		char l[PATH_MAX], f[PATH_MAX];

		path_in(open_dir, safe, sticky ? "sticky" : "open");
		CHECK(mkdir(open_dir, 0700) == 0);
		CHECK(chmod(open_dir, sticky ? 01777 : 0777) == 0);
		path_in(l, open_dir, "link");
		CHECK(symlink("../real", l) == 0);
		read_refused(l, "can be changed by other users");
		path_in(f, open_dir, "file");
		CHECK(write_str(f, JWT2) == 0);
		read_ok(f, JWT2);
		/* A trusted link pointing into such a directory is
		 * followed: nothing after it is a link. */
		path_in(l, safe, sticky ? "to-sticky" : "to-open");
		CHECK(symlink(f, l) == 0);
		read_ok(l, JWT2);
	}

	/* Nor a directory another user owns, even one only they can
	 * write: they can replace the link. */
	if (geteuid() == 0) {
		path_in(open_dir, safe, "someone-elses");
		CHECK(mkdir(open_dir, 0755) == 0);
		path_in(link, open_dir, "link");
		CHECK(symlink("../real", link) == 0);
		CHECK(chown(open_dir, OTHER_UID, OTHER_UID) == 0);
		read_refused(link, "can be changed by other users");
	}

	/* A group-writable directory is no better. */
	path_in(open_dir, safe, "group");
	CHECK(mkdir(open_dir, 0700) == 0);
	CHECK(chmod(open_dir, 0770) == 0);
	path_in(link, open_dir, "link");
	CHECK(symlink("../real", link) == 0);
	read_refused(link, "can be changed by other users");
}

/* What a projected service account token looks like:
 *   token -> ..data/token, ..data -> ..2026_11_23_10_00_00.000000001/
 * and the kubelet swaps ..data with a rename. */
static void kubernetes_layout_followed(void)
{
	char p[PATH_MAX], q[PATH_MAX], abs_link[PATH_MAX], token[PATH_MAX];

	if (!safe[0])
		return;
	path_in(p, safe, "..2026_11_23_10_00_00.000000001");
	CHECK(mkdir(p, 0755) == 0);
	path_in(q, p, "token");
	CHECK(write_str(q, JWT "\n") == 0);
	path_in(p, safe, "..data");
	CHECK(symlink("..2026_11_23_10_00_00.000000001", p) == 0);
	path_in(token, safe, "token");
	CHECK(symlink("..data/token", token) == 0);
	read_ok(token, JWT "\n");

	/* The swap: a new directory, a new link renamed over ..data. */
	path_in(p, safe, "..2026_11_23_10_48_00.000000002");
	CHECK(mkdir(p, 0755) == 0);
	path_in(q, p, "token");
	CHECK(write_str(q, JWT2) == 0);
	path_in(p, safe, "..data_tmp");
	CHECK(symlink("..2026_11_23_10_48_00.000000002", p) == 0);
	path_in(q, safe, "..data");
	CHECK(rename(p, q) == 0);
	read_ok(token, JWT2);

	/* An absolute target and a ".." on the way are fine too. */
	path_in(abs_link, safe, "abs");
	path_in(p, safe, "..data/../token");
	CHECK(symlink(p, abs_link) == 0);
	read_ok(abs_link, JWT2);

	/* A link to a FIFO is still refused, and does not block. */
	path_in(p, safe, "fifo");
	CHECK(mkfifo(p, 0600) == 0);
	path_in(q, safe, "to-fifo");
	CHECK(symlink("fifo", q) == 0);
	CHECK(read_refused(q, "not a regular file") < 1000);
	/* A dangling link names the path it was given. */
	path_in(q, safe, "dangling");
	CHECK(symlink("nowhere", q) == 0);
	read_refused(q, "No such file or directory");
}

static void link_loops_refused(void)
{
	char a[PATH_MAX], b[PATH_MAX], p[PATH_MAX], real[PATH_MAX];

	if (!safe[0])
		return;
	path_in(a, safe, "loop-a");
	path_in(b, safe, "loop-b");
	CHECK(symlink("loop-b", a) == 0);
	CHECK(symlink("loop-a", b) == 0);
	read_refused(a, "too many symbolic links");
	path_in(p, safe, "self");
	CHECK(symlink("self", p) == 0);
	read_refused(p, "too many symbolic links");
	path_in(p, safe, "self-dir");
	CHECK(symlink("self-dir/token", p) == 0);
	read_refused(p, "too many symbolic links");

	/* Forty links in a row are followed, forty-one are not. */
	path_in(real, safe, "chain-end");
	CHECK(write_str(real, JWT) == 0);
	for (int i = 40; i >= 0; i--) {
		char name[32], target[32];

		snprintf(name, sizeof(name), "chain-%d", i);
		if (i == 40)
			snprintf(target, sizeof(target), "chain-end");
		else
			snprintf(target, sizeof(target), "chain-%d", i + 1);
		path_in(p, safe, name);
		CHECK(symlink(target, p) == 0);
	}
	path_in(p, safe, "chain-1");
	read_ok(p, JWT);
	path_in(p, safe, "chain-0");
	read_refused(p, "too many symbolic links");
}

/* ---- messages ----------------------------------------------------------------- */

static void messages_name_the_path_never_the_content(void)
{
	static const char *const contents[] = {
		"SECRETMARKER",
		"SECRETMARKER.SECRETMARKER",
		"SECRETMARKER.SECRET MARKER.x",
		"eyJhbGciOiJSUzI1NiJ9.SECRETMARKER.c2ln.SECRETMARKER",
		"SECRETMARKER\n\n",
	};
	char p[PATH_MAX];
	struct exchange_error err;
	char *out;

	path_in(p, tmp, "not-a-jwt");
	for (size_t i = 0; i < ARRAY_SIZE(contents); i++) {
		CHECK(write_str(p, contents[i]) == 0);
		out = NULL;
		CHECK(tokenfile_read(p, &out, &err) == -1);
		CHECK(out == NULL);
		CHECK(strstr(err.message, p) != NULL);
		CHECK(!strstr(err.message, "SECRETMARKER"));
		CHECK(!strstr(err.message, "MARKER"));
	}
	/* Oversized, with the marker all over it. */
	{
		struct buf b;

		buf_init(&b, 1024 * 1024);
		while (b.len < 100000)
			CHECK(!buf_append_str(&b, "SECRETMARKER."));
		CHECK(write_file(p, b.data, b.len) == 0);
		buf_free(&b);
		CHECK(tokenfile_read(p, &out, &err) == -1);
		CHECK(strstr(err.message, p) && !strstr(err.message, "MARKER"));
	}
}

static const struct check_case cases[] = {
	CHECK_CASE(reads_a_regular_file),
	CHECK_CASE(jwt_shape),
	CHECK_CASE(trailing_newline_kept),
	CHECK_CASE(empty_and_oversized_refused),
	CHECK_CASE(fifo_refused_without_blocking),
	CHECK_CASE(devices_and_directories_refused),
	CHECK_CASE(bad_paths_refused),
	CHECK_CASE(links_under_tmp_refused),
	CHECK_CASE(planted_links_refused),
	CHECK_CASE(kubernetes_layout_followed),
	CHECK_CASE(link_loops_refused),
	CHECK_CASE(messages_name_the_path_never_the_content),
};

int main(void)
{
	int rc;

	umask(022);
	setup();
	rc = CHECK_RUN(cases);
	teardown();
	return rc;
}
