/*
 * The role-name index: add, find, duplicates, growth well past the first
 * table, and name_id pinned to exact values (inode numbers are derived
 * from it, so any change of the function must fail here first).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "names.h"

static void empty_index_finds_nothing(void)
{
	struct name_index ix;
	size_t v = 77;

	name_index_init(&ix);
	CHECK(name_index_find(&ix, "app", &v) == -ENOENT);
	CHECK(name_index_find(&ix, "", &v) == -ENOENT);
	CHECK(v == 77);
	CHECK(ix.n == 0);
	name_index_free(&ix);
	/* Freeing twice (an index left empty) is harmless. */
	name_index_free(&ix);
}

static void add_and_find(void)
{
	static const char *const names[] = { "app", "db", "prod-db", "a", "" };
	struct name_index ix;
	size_t v;

	name_index_init(&ix);
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		CHECK(name_index_add(&ix, names[i], i * 10, NULL) == 0);
	CHECK(ix.n == ARRAY_SIZE(names));
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		v = 12345;
		CHECK(name_index_find(&ix, names[i], &v) == 0);
		CHECK(v == i * 10);
	}
	/* Names are compared whole, case and all. */
	CHECK(name_index_find(&ix, "App", &v) == -ENOENT);
	CHECK(name_index_find(&ix, "ap", &v) == -ENOENT);
	CHECK(name_index_find(&ix, "app ", &v) == -ENOENT);
	CHECK(name_index_find(&ix, "prod-db2", &v) == -ENOENT);
	name_index_free(&ix);
}

/* The index keeps the caller's pointer: a different buffer holding the
 * same text is the same name. */
static void found_by_content(void)
{
	struct name_index ix;
	char stored[] = "web", probe[] = "web";
	size_t v = 0;

	name_index_init(&ix);
	CHECK(name_index_add(&ix, stored, 3, NULL) == 0);
	CHECK(name_index_find(&ix, probe, &v) == 0 && v == 3);
	CHECK(ix.tab != NULL);
	for (size_t i = 0; i < ix.cap; i++)
		if (ix.tab[i].name)
			CHECK(ix.tab[i].name == stored);
	name_index_free(&ix);
}

static void duplicates_refused(void)
{
	struct name_index ix;
	char copy[] = "app";
	size_t existing = 999, v;

	name_index_init(&ix);
	CHECK(name_index_add(&ix, "app", 1, NULL) == 0);
	CHECK(name_index_add(&ix, "db", 2, NULL) == 0);
	CHECK(name_index_add(&ix, copy, 5, &existing) == -EEXIST);
	CHECK(existing == 1);
	CHECK(name_index_add(&ix, "db", 6, NULL) == -EEXIST);
	/* The first value stays. */
	CHECK(name_index_find(&ix, "app", &v) == 0 && v == 1);
	CHECK(name_index_find(&ix, "db", &v) == 0 && v == 2);
	CHECK(ix.n == 2);
	name_index_free(&ix);
}

/* Thousands of names: the table grows (staying at most half full, a
 * power of two) and every name is still found with its value. */
static void grows(void)
{
	enum { N = 20000 };
	static char names[N][24];
	struct name_index ix;
	size_t v, last_cap = 0, growths = 0;

	name_index_init(&ix);
	for (size_t i = 0; i < N; i++) {
		snprintf(names[i], sizeof(names[i]), "role-%zu", i);
		CHECK(name_index_add(&ix, names[i], i, NULL) == 0);
		if (ix.cap != last_cap) {
			growths++;
			last_cap = ix.cap;
		}
		CHECK(ix.n * 2 <= ix.cap);
	}
	CHECK(ix.n == N);
	CHECK(growths >= 9);
	CHECK((ix.cap & (ix.cap - 1)) == 0);
	for (size_t i = 0; i < N; i++) {
		v = (size_t)-1;
		CHECK(name_index_find(&ix, names[i], &v) == 0);
		if (v != i) {
			CHECK(v == i);
			break;
		}
	}
	CHECK(name_index_find(&ix, "role-20000", &v) == -ENOENT);
	CHECK(name_index_find(&ix, "role-", &v) == -ENOENT);
	/* Duplicates are still caught after growing. */
	CHECK(name_index_add(&ix, "role-12345", 0, &v) == -EEXIST && v == 12345);
	name_index_free(&ix);
	CHECK(ix.tab == NULL && ix.cap == 0 && ix.n == 0);
}

/* The exact values today.  If one of these changes, every inode number
 * of every mount changes with it: that must be a decision, not an
 * accident. */
static void name_id_is_pinned(void)
{
	static const struct {
		const char *name;
		uint64_t hash, id;
	} t[] = {
		{ "", 0x14650fb0739d0383ULL, 0x51943ec1ce740eULL },
		{ "a", 0x44bd8ad473cd9906ULL, 0x112f62b51cf3664ULL },
		{ "app", 0xe1a5fa510dedf436ULL, 0x38697e94437b7d0ULL },
		{ "prod-db", 0x20467b3c9db5d923ULL, 0x8119ecf276d764ULL },
		{ "role-with-a-long-name_0123456789", 0xa224bb95cb0acc47ULL,
		  0x28892ee572c2b31ULL },
		{ "caf\xc3\xa9", 0x8385b6459d53dff7ULL, 0x20e16d916754f7fULL },
	};

	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		if (name_hash(t[i].name) != t[i].hash ||
		    name_id(t[i].name) != t[i].id) {
			fprintf(stderr, "    \"%s\": hash %#llx id %#llx\n",
				t[i].name,
				(unsigned long long)name_hash(t[i].name),
				(unsigned long long)name_id(t[i].name));
			CHECK(!"name_hash and name_id unchanged");
		}
	}
}

/* NAME_ID_BITS wide, the same on every call, and different for the
 * names of a large configuration. */
static void name_id_range_and_spread(void)
{
	enum { N = 5000 };
	static uint64_t ids[N];
	char name[32];
	size_t same = 0;

	CHECK(NAME_ID_BITS == 58);
	for (size_t i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "team-%zu", i);
		ids[i] = name_id(name);
		CHECK(ids[i] >> NAME_ID_BITS == 0);
		CHECK(name_id(name) == ids[i]);
		CHECK(ids[i] == name_hash(name) >> (64 - NAME_ID_BITS));
	}
	for (size_t i = 0; i < N; i++)
		for (size_t j = i + 1; j < N; j++)
			same += ids[i] == ids[j];
	CHECK(same == 0);
	/* The top bits are used too. */
	{
		size_t high = 0;

		for (size_t i = 0; i < N; i++)
			high += ids[i] >> (NAME_ID_BITS - 1);
		CHECK(high > N / 4 && high < 3 * N / 4);
	}
}

static const struct check_case cases[] = {
	CHECK_CASE(empty_index_finds_nothing),
	CHECK_CASE(add_and_find),
	CHECK_CASE(found_by_content),
	CHECK_CASE(duplicates_refused),
	CHECK_CASE(grows),
	CHECK_CASE(name_id_is_pinned),
	CHECK_CASE(name_id_range_and_spread),
};

int main(void)
{
	return CHECK_RUN(cases);
}
