/*
 * The shape of the mounted tree and its inode numbers.  The tree is fixed
 * by the configuration, so inode numbers are computed, not allocated, from
 * the role's engine slot, which a role keeps across reloads: the same role
 * always has the same numbers, which keeps a bind-mounted single file
 * pointing at fresh content, and a removed role's numbers are never reused.
 *
 *   1                    /
 *   2                    /.well-known
 *   3                    /.well-known/openid-configuration
 *   4                    /keys.json
 *   16 * (s + 1)         /NAME            the role in slot s
 *   16 * (s + 1) + 1 + k /NAME/FILE       file k of enum role_file
 */
#ifndef CREDFS_TREE_H
#define CREDFS_TREE_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <stddef.h>

#include "config.h"

enum node_kind {
	NODE_ROOT,
	NODE_WELL_KNOWN,
	NODE_DISCOVERY,
	NODE_JWKS,
	NODE_ROLE_DIR,
	NODE_ROLE_FILE,
};

enum role_file {
	ROLE_CREDENTIALS,
	ROLE_CONFIG,
	ROLE_TOKEN,
	ROLE_EXPIRY,
	ROLE_PROCESS_JSON,
	ROLE_ENV,
	ROLE_STATUS,
	ROLE_FILE_COUNT,
};

struct node {
	enum node_kind kind;
	size_t role;			/* NODE_ROLE_DIR, NODE_ROLE_FILE: index in cfg */
	enum role_file file;		/* NODE_ROLE_FILE */
	size_t slot;			/* NODE_ROLE_DIR, NODE_ROLE_FILE: engine slot */
};

struct tree {
	const struct cfg *cfg;
	int has_signer;
	const size_t *slot_of_role;	/* cfg->n_roles entries */
	const size_t *role_of_slot;	/* n_slots entries, SIZE_MAX: none */
	size_t n_slots;
	size_t *hash;			/* open-addressing name index: role + 1, 0 empty */
	size_t n_hash;
};

/* The maps are the caller's and must outlive the tree. */
int tree_init(struct tree *t, const struct cfg *cfg, int has_signer,
	      const size_t *slot_of_role, const size_t *role_of_slot,
	      size_t n_slots);
void tree_destroy(struct tree *t);

/* The node behind ino, or -ENOENT. */
int tree_node(const struct tree *t, fuse_ino_t ino, struct node *out);
fuse_ino_t tree_ino(const struct node *n);
/* The child called name of directory parent: 0 and *out, or -ENOENT /
 * -ENOTDIR. */
int tree_lookup(const struct tree *t, fuse_ino_t parent, const char *name,
		struct node *out);
/* The idx-th entry of a directory (no "." and ".."): 0, or -ENOENT past
 * the end. */
int tree_child(const struct tree *t, const struct node *dir, size_t idx,
	       const char **name, struct node *out);

const char *tree_role_file_name(enum role_file f);
/* Whether file f exists for role i (a chained role has no token). */
int tree_role_has_file(const struct tree *t, size_t role, enum role_file f);

#endif
