#include "tree.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define INO_ROOT 1
#define INO_WELL_KNOWN 2
#define INO_DISCOVERY 3
#define INO_JWKS 4
#define INO_METRICS 5
#define ROLE_SHIFT 4
#define ROLE_BIT (1ULL << NAME_ID_BITS)

static const char *const role_file_names[ROLE_FILE_COUNT] = {
	[ROLE_CREDENTIALS] = "credentials",
	[ROLE_CONFIG] = "config",
	[ROLE_TOKEN] = "token",
	[ROLE_EXPIRY] = "expiry",
	[ROLE_PROCESS_JSON] = "process.json",
	[ROLE_ENV] = "env",
	[ROLE_STATUS] = "status",
	[ROLE_AUTHORIZATION_TOKEN] = "authorization_token",
	[ROLE_ENDPOINT_ENV] = "endpoint.env",
	[ROLE_CREDENTIALS_JSON] = "credentials.json",
	[ROLE_ACCESS_TOKEN] = "access_token",
};

/* The files of each cloud's role directory. */
static const unsigned files_of_cloud[] = {
	[CFG_CLOUD_AWS] = 1u << ROLE_CREDENTIALS | 1u << ROLE_CONFIG |
			  1u << ROLE_TOKEN | 1u << ROLE_EXPIRY |
			  1u << ROLE_PROCESS_JSON | 1u << ROLE_ENV |
			  1u << ROLE_STATUS | 1u << ROLE_AUTHORIZATION_TOKEN |
			  1u << ROLE_ENDPOINT_ENV,
	[CFG_CLOUD_GCP] = 1u << ROLE_TOKEN | 1u << ROLE_CREDENTIALS_JSON |
			  1u << ROLE_ACCESS_TOKEN | 1u << ROLE_EXPIRY |
			  1u << ROLE_STATUS,
	[CFG_CLOUD_AZURE] = 1u << ROLE_TOKEN | 1u << ROLE_ENV |
			    1u << ROLE_ACCESS_TOKEN | 1u << ROLE_EXPIRY |
			    1u << ROLE_STATUS,
};

const char *tree_role_file_name(enum role_file f)
{
	return role_file_names[f];
}

static size_t id_slot(uint64_t id, size_t cap)
{
	/* name_id is already a hash: its low bits spread well. */
	return (size_t)id & (cap - 1);
}

int tree_init(struct tree *t, const struct cfg *cfg, int has_signer)
{
	size_t cap = 16;

	memset(t, 0, sizeof(*t));
	while (cap < cfg->n_roles * 2 + 2)
		cap *= 2;
	t->cfg = cfg;
	t->has_signer = has_signer;
	t->has_endpoint = cfg->endpoint.present;
	t->cap = cap;
	t->ids = calloc(cap, sizeof(*t->ids));
	t->slots = calloc(cap, sizeof(*t->slots));
	if (!t->ids || !t->slots) {
		tree_destroy(t);
		return -ENOMEM;
	}
	for (size_t i = 0; i < cfg->n_roles; i++) {
		uint64_t id = name_id(cfg->roles[i].name);
		size_t s = id_slot(id, cap);

		/* The configuration refuses colliding ids. */
		while (t->slots[s])
			s = (s + 1) & (cap - 1);
		t->ids[s] = id;
		t->slots[s] = i + 1;
	}
	return 0;
}

void tree_destroy(struct tree *t)
{
	free(t->ids);
	free(t->slots);
	t->ids = NULL;
	t->slots = NULL;
}

/* The role whose id is id, or -ENOENT. */
static int find_id(const struct tree *t, uint64_t id, size_t *role)
{
	for (size_t s = id_slot(id, t->cap); t->slots[s]; s = (s + 1) & (t->cap - 1)) {
		if (t->ids[s] == id) {
			*role = t->slots[s] - 1;
			return 0;
		}
	}
	return -ENOENT;
}

int tree_role_has_file(const struct tree *t, size_t role, enum role_file f)
{
	const struct cfg_role *r = &t->cfg->roles[role];

	if (!(files_of_cloud[r->x.cloud] & (1u << f)))
		return 0;
	if (f == ROLE_TOKEN)
		return r->x.token_source != CFG_TOKEN_CHAINED;
	if (f == ROLE_AUTHORIZATION_TOKEN || f == ROLE_ENDPOINT_ENV)
		return t->has_endpoint;
	return 1;
}

fuse_ino_t tree_role_ino(const char *name, int f)
{
	fuse_ino_t dir = (fuse_ino_t)(ROLE_BIT | name_id(name)) << ROLE_SHIFT;

	return f >= ROLE_FILE_COUNT ? dir : dir + 1 + (fuse_ino_t)f;
}

fuse_ino_t tree_ino(const struct tree *t, const struct node *n)
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
	case NODE_METRICS:
		return INO_METRICS;
	case NODE_ROLE_DIR:
		return tree_role_ino(t->cfg->roles[n->role].name, ROLE_FILE_COUNT);
	case NODE_ROLE_FILE:
		return tree_role_ino(t->cfg->roles[n->role].name, (int)n->file);
	}
	return 0;
}

int tree_node(const struct tree *t, fuse_ino_t ino, struct node *out)
{
	unsigned low = (unsigned)(ino & ((1u << ROLE_SHIFT) - 1));

	memset(out, 0, sizeof(*out));
	switch (ino) {
	case INO_ROOT:
		out->kind = NODE_ROOT;
		return 0;
	case INO_METRICS:
		out->kind = NODE_METRICS;
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
	if (!((ino >> ROLE_SHIFT) & ROLE_BIT) ||
	    find_id(t, (ino >> ROLE_SHIFT) & (ROLE_BIT - 1), &out->role))
		return -ENOENT;
	if (low == 0) {
		out->kind = NODE_ROLE_DIR;
		return 0;
	}
	if (low - 1 >= ROLE_FILE_COUNT)
		return -ENOENT;
	out->kind = NODE_ROLE_FILE;
	out->file = (enum role_file)(low - 1);
	return tree_role_has_file(t, out->role, out->file) ? 0 : -ENOENT;
}

static int lookup_in_root(const struct tree *t, const char *name,
			  struct node *out)
{
	size_t i;

	if (t->has_signer && strcmp(name, ".well-known") == 0) {
		out->kind = NODE_WELL_KNOWN;
		return 0;
	}
	if (t->has_signer && strcmp(name, "keys.json") == 0) {
		out->kind = NODE_JWKS;
		return 0;
	}
	if (strcmp(name, "metrics") == 0) {
		out->kind = NODE_METRICS;
		return 0;
	}
	if (name_index_find(&t->cfg->names, name, &i))
		return -ENOENT;
	out->kind = NODE_ROLE_DIR;
	out->role = i;
	return 0;
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
		return lookup_in_root(t, name, out);
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
				out->file = (enum role_file)f;
				return 0;
			}
		}
		return -ENOENT;
	default:
		return -ENOTDIR;
	}
}

/* The fixed entries of the root, before the roles. */
static size_t root_fixed(const struct tree *t, size_t idx, const char **name,
			 struct node *out)
{
	static const struct {
		const char *name;
		enum node_kind kind;
		int needs_signer;
	} fixed[] = {
		{ ".well-known", NODE_WELL_KNOWN, 1 },
		{ "keys.json", NODE_JWKS, 1 },
		{ "metrics", NODE_METRICS, 0 },
	};
	size_t n = 0;

	for (size_t k = 0; k < sizeof(fixed) / sizeof(fixed[0]); k++) {
		if (fixed[k].needs_signer && !t->has_signer)
			continue;
		if (n++ == idx) {
			*name = fixed[k].name;
			out->kind = fixed[k].kind;
		}
	}
	return n;
}

int tree_child(const struct tree *t, const struct node *dir, size_t idx,
	       const char **name, struct node *out)
{
	size_t n_fixed;

	memset(out, 0, sizeof(*out));
	switch (dir->kind) {
	case NODE_ROOT:
		n_fixed = root_fixed(t, idx, name, out);
		if (idx < n_fixed)
			return 0;
		idx -= n_fixed;
		if (idx >= t->cfg->n_roles)
			return -ENOENT;
		*name = t->cfg->roles[idx].name;
		out->kind = NODE_ROLE_DIR;
		out->role = idx;
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
				out->file = (enum role_file)f;
				return 0;
			}
		}
		return -ENOENT;
	default:
		return -ENOTDIR;
	}
}
