#include "names.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

uint64_t name_hash(const char *name)
{
	uint64_t h = 1469598103934665603ULL;

	while (*name) {
		h ^= (unsigned char)*name++;
		h *= 1099511628211ULL;
	}
	return h;
}

uint64_t name_id(const char *name)
{
	/* The high bits of FNV-1a mix best; keep NAME_ID_BITS of them. */
	return name_hash(name) >> (64 - NAME_ID_BITS);
}

void name_index_init(struct name_index *ix)
{
	memset(ix, 0, sizeof(*ix));
}

/* The slot holding name, or the empty slot where it would go. */
static struct name_entry *probe(const struct name_index *ix, const char *name)
{
	size_t mask = ix->cap - 1, i = (size_t)name_hash(name) & mask;

	while (ix->tab[i].name && strcmp(ix->tab[i].name, name))
		i = (i + 1) & mask;
	return &ix->tab[i];
}

/* Doubles the table (kept at most half full).  0 or -ENOMEM. */
static int grow(struct name_index *ix)
{
	struct name_index bigger = { .cap = ix->cap ? ix->cap * 2 : 64 };

	bigger.tab = calloc(bigger.cap, sizeof(*bigger.tab));
	if (!bigger.tab)
		return -ENOMEM;
	for (size_t i = 0; i < ix->cap; i++)
		if (ix->tab[i].name)
			*probe(&bigger, ix->tab[i].name) = ix->tab[i];
	bigger.n = ix->n;
	free(ix->tab);
	*ix = bigger;
	return 0;
}

int name_index_add(struct name_index *ix, const char *name, size_t value,
		   size_t *existing)
{
	struct name_entry *e;

	if ((ix->n + 1) * 2 > ix->cap && grow(ix))
		return -ENOMEM;
	e = probe(ix, name);
	if (e->name) {
		if (existing)
			*existing = e->value;
		return -EEXIST;
	}
	e->name = name;
	e->value = value;
	ix->n++;
	return 0;
}

int name_index_find(const struct name_index *ix, const char *name,
		    size_t *value)
{
	const struct name_entry *e;

	if (!ix->cap)
		return -ENOENT;
	e = probe(ix, name);
	if (!e->name)
		return -ENOENT;
	*value = e->value;
	return 0;
}

void name_index_free(struct name_index *ix)
{
	free(ix->tab);
	memset(ix, 0, sizeof(*ix));
}
