/*
 * The role-name index: one open-addressing hash table from a role's name to
 * a number (its index in a configuration, usually), shared by the
 * configuration parser, the engine and the FUSE tree, so a name is looked
 * up the same way everywhere in time independent of the number of roles.
 *
 * The index does not copy names: each name added must stay alive, at the
 * same address, for as long as the index is used.
 *
 * name_id() is the stable identity of a name: the same 58-bit number for
 * the same name in every process and every version of credfs.  It is the
 * top 58 bits of name_hash(): FNV-1a over the bytes, with the offset basis
 * 1469598103934665603 (a digit shorter than FNV's published one; as good a
 * start, and the one inode numbers have always been derived from).  Inode
 * numbers are derived from it, which is why it must never change:
 * tests/unit/test_names.c pins its values.
 */
#ifndef CREDFS_NAMES_H
#define CREDFS_NAMES_H

#include <stddef.h>
#include <stdint.h>
#include "compiler.h"

#define NAME_ID_BITS 58

struct name_entry {
	const char *name;	/* NULL: empty */
	size_t value;
};

struct name_index {
	struct name_entry *tab;
	size_t cap;		/* a power of two, or 0 */
	size_t n;
};

/* An empty index; it grows as names are added. */
void name_index_init(struct name_index *ix);
/* Adds name -> value.  0; -EEXIST (with *existing set when not NULL) if
 * the name is there already; -ENOMEM. */
int name_index_add(struct name_index *ix, const char *name, size_t value,
		   size_t *existing) WUR;
/* 0 and *value, or -ENOENT. */
int name_index_find(const struct name_index *ix, const char *name,
		    size_t *value) WUR;
void name_index_free(struct name_index *ix);

/* 64-bit FNV-1a of name (see above for its offset basis). */
uint64_t name_hash(const char *name);
/* The stable NAME_ID_BITS-bit identity of name. */
uint64_t name_id(const char *name);

#endif
