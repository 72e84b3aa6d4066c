/*
 * A very small unit-test harness.  Each test is a function; CHECK records a
 * failure with its place and lets the test go on.  check_main() prints one
 * line per test and a closing "N passed, N failed" line that scripts/test
 * adds up; the exit status is 1 if anything failed.
 */
#ifndef CREDFS_CHECK_H
#define CREDFS_CHECK_H

#include <stdio.h>
#include <string.h>

#include "buf.h"

static int check_failures_in_test;

#define CHECK(cond)                                                          \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "    %s:%d: CHECK(%s) failed\n",     \
				__FILE__, __LINE__, #cond);                  \
			check_failures_in_test++;                            \
		}                                                            \
	} while (0)

#define CHECK_STR(a, b)                                                      \
	do {                                                                 \
		const char *check_a_ = (a), *check_b_ = (b);                 \
		if (!check_a_ || !check_b_ || strcmp(check_a_, check_b_)) { \
			fprintf(stderr, "    %s:%d: \"%s\" != \"%s\"\n",     \
				__FILE__, __LINE__,                          \
				check_a_ ? check_a_ : "(null)",              \
				check_b_ ? check_b_ : "(null)");             \
			check_failures_in_test++;                            \
		}                                                            \
	} while (0)

struct check_case {
	const char *name;
	void (*fn)(void);
};

#define CHECK_CASE(fn) { #fn, fn }

static inline int check_main(const struct check_case *cases, size_t n)
{
	int passed = 0, failed = 0;

	for (size_t i = 0; i < n; i++) {
		check_failures_in_test = 0;
		cases[i].fn();
		if (check_failures_in_test) {
			printf("FAIL %s\n", cases[i].name);
			failed++;
		} else {
			printf("ok   %s\n", cases[i].name);
			passed++;
		}
		fflush(stdout);
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}

#define CHECK_RUN(cases) check_main(cases, sizeof(cases) / sizeof((cases)[0]))

/* A whole file (test data) as a NUL-terminated string, its length in *len
 * when len is not NULL; NULL if it cannot be read. */
static inline char *check_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	struct buf b;
	char chunk[4096];
	size_t n;

	if (len)
		*len = 0;
	if (!f)
		return NULL;
	buf_init(&b, 1024 * 1024);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (buf_append(&b, chunk, n)) {
			fclose(f);
			return NULL;
		}
	}
	fclose(f);
	if (len)
		*len = b.len;
	return buf_steal(&b);
}

#endif
