#include "tree.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define INO_ROOT 1
#define INO_WELL_KNOWN 2
#define INO_DISCOVERY 3
#define INO_JWKS 4
#define INO_ROLE_STRIDE 16

static const char *const role_file_names[ROLE_FILE_COUNT] = {
	[ROLE_CREDENTIALS] = "credentials",
	[ROLE_CONFIG] = "config",
	[ROLE_TOKEN] = "token",
	[ROLE_EXPIRY] = "expiry",
	[ROLE_PROCESS_JSON] = "process.json",
	[ROLE_ENV] = "env",
	[ROLE_STATUS] = "status",
};

const char *tree_role_file_name(enum role_file f)
{
	return role_file_names[f];
}

int tree_init(struct tree *t, const struct cfg *cfg, int has_signer,
	      const size_t *slot_of_role, const size_t *role_of_slot,
	      size_t n_slots)
{
	size_t n = 16;

	t->slot_of_role = slot_of_role;
	t->role_of_slot = role_of_slot;
	t->n_slots = n_slots;
	while (n < cfg->n_roles * 2)
		n *= 2;
	t->cfg = cfg;
	t->has_signer = has_signer;
	t->n_hash = n;
	t->hash = calloc(n, sizeof(*t->hash));
	if (!t->hash)
		return -ENOMEM;
	for (size_t i = 0; i < cfg->n_roles; i++) {
		size_t s = name_hash(cfg->roles[i].name) & (n - 1);

		while (t->hash[s])
			s = (s + 1) & (n - 1);
		t->hash[s] = i + 1;
	}
	return 0;
}

void tree_destroy(struct tree *t)
{
	free(t->hash);
	t->hash = NULL;
}

static int find_role(const struct tree *t, const char *name, size_t *role)
{
	size_t s = name_hash(name) & (t->n_hash - 1);

	while (t->hash[s]) {
		size_t i = t->hash[s] - 1;

		if (strcmp(t->cfg->roles[i].name, name) == 0) {
			*role = i;
			return 0;
		}
		s = (s + 1) & (t->n_hash - 1);
	}
	return -ENOENT;
}

int tree_role_has_file(const struct tree *t, size_t role, enum role_file f)
{
	return !(f == ROLE_TOKEN &&
		 t->cfg->roles[role].x.token_source == CFG_TOKEN_CHAINED);
}

fuse_ino_t tree_ino(const struct node *n)
{
	switch (n->kind) {
	case NODE_ROOT:
		return INO_ROOT;
	case NODE_WELL_KNOWN:
		return INO_WELL_KNOWN;
	case NODE_DISCOVERY:
		return INO_DISCOVERY;
	case NODE_JWKS:
		return INO_JWKS;
	case NODE_ROLE_DIR:
		return (fuse_ino_t)INO_ROLE_STRIDE * (n->slot + 1);
	case NODE_ROLE_FILE:
		return (fuse_ino_t)INO_ROLE_STRIDE * (n->slot + 1) + 1 + n->file;
	}
	return 0;
}

int tree_node(const struct tree *t, fuse_ino_t ino, struct node *out)
{
	memset(out, 0, sizeof(*out));
	switch (ino) {
	case INO_ROOT:
		out->kind = NODE_ROOT;
		return 0;
	case INO_WELL_KNOWN:
	case INO_DISCOVERY:
	case INO_JWKS:
		if (!t->has_signer)
			return -ENOENT;
		out->kind = ino == INO_WELL_KNOWN ? NODE_WELL_KNOWN :
			    ino == INO_DISCOVERY ? NODE_DISCOVERY : NODE_JWKS;
		return 0;
	}
	if (ino < INO_ROLE_STRIDE)
		return -ENOENT;
	out->slot = ino / INO_ROLE_STRIDE - 1;
	if (out->slot >= t->n_slots || t->role_of_slot[out->slot] == SIZE_MAX)
		return -ENOENT;
	out->role = t->role_of_slot[out->slot];
	if (ino % INO_ROLE_STRIDE == 0) {
		out->kind = NODE_ROLE_DIR;
		return 0;
	}
	if (ino % INO_ROLE_STRIDE - 1 >= ROLE_FILE_COUNT)
		return -ENOENT;
	out->kind = NODE_ROLE_FILE;
	out->file = (enum role_file)(ino % INO_ROLE_STRIDE - 1);
	return tree_role_has_file(t, out->role, out->file) ? 0 : -ENOENT;
}

int tree_lookup(const struct tree *t, fuse_ino_t parent, const char *name,
		struct node *out)
{
	struct node dir;
	int r = tree_node(t, parent, &dir);

	if (r)
		return r;
	memset(out, 0, sizeof(*out));
	switch (dir.kind) {
	case NODE_ROOT:
		if (t->has_signer && strcmp(name, ".well-known") == 0) {
			out->kind = NODE_WELL_KNOWN;
			return 0;
		}
		if (t->has_signer && strcmp(name, "keys.json") == 0) {
			out->kind = NODE_JWKS;
			return 0;
		}
		out->kind = NODE_ROLE_DIR;
		r = find_role(t, name, &out->role);
		if (!r)
			out->slot = t->slot_of_role[out->role];
		return r;
	case NODE_WELL_KNOWN:
		if (strcmp(name, "openid-configuration") != 0)
			return -ENOENT;
		out->kind = NODE_DISCOVERY;
		return 0;
	case NODE_ROLE_DIR:
		for (int f = 0; f < ROLE_FILE_COUNT; f++) {
			if (strcmp(name, role_file_names[f]) == 0 &&
			    tree_role_has_file(t, dir.role, (enum role_file)f)) {
				out->kind = NODE_ROLE_FILE;
				out->role = dir.role;
				out->slot = dir.slot;
				out->file = (enum role_file)f;
				return 0;
			}
		}
		return -ENOENT;
	default:
		return -ENOTDIR;
	}
}

int tree_child(const struct tree *t, const struct node *dir, size_t idx,
	       const char **name, struct node *out)
{
	memset(out, 0, sizeof(*out));
	switch (dir->kind) {
	case NODE_ROOT:
		if (t->has_signer) {
			if (idx == 0) {
				*name = ".well-known";
				out->kind = NODE_WELL_KNOWN;
				return 0;
			}
			if (idx == 1) {
				*name = "keys.json";
				out->kind = NODE_JWKS;
				return 0;
			}
			idx -= 2;
		}
		if (idx >= t->cfg->n_roles)
			return -ENOENT;
		*name = t->cfg->roles[idx].name;
		out->kind = NODE_ROLE_DIR;
		out->role = idx;
		out->slot = t->slot_of_role[idx];
		return 0;
	case NODE_WELL_KNOWN:
		if (idx != 0)
			return -ENOENT;
		*name = "openid-configuration";
		out->kind = NODE_DISCOVERY;
		return 0;
	case NODE_ROLE_DIR:
		for (int f = 0; f < ROLE_FILE_COUNT; f++) {
			if (!tree_role_has_file(t, dir->role, (enum role_file)f))
				continue;
			if (idx-- == 0) {
				*name = role_file_names[f];
				out->kind = NODE_ROLE_FILE;
				out->role = dir->role;
				out->slot = dir->slot;
				out->file = (enum role_file)f;
				return 0;
			}
		}
		return -ENOENT;
	default:
		return -ENOTDIR;
	}
}
