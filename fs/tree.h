/*
 * The shape of the mounted tree and its inode numbers.  The tree is fixed
 * by the configuration, so inode numbers are computed, not allocated: a
 * role's numbers derive from its name alone (name_id(), backend/names.h),
 * so the same role has the same numbers in every process, across reloads,
 * restarts and takeovers, whatever else the configuration adds, removes
 * or reorders.  The kernel and every bind mount hold these numbers; they
 * must never change for a name.
 *
 *   1                              /
 *   2                              /.well-known
 *   3                              /.well-known/openid-configuration
 *   4                              /keys.json
 *   5                              /metrics
 *   D = (2^58 | name_id) << 4      /NAME
 *   D + 1 + k                      /NAME/FILE, file k of enum role_file
 */
#ifndef CREDFS_TREE_H
#define CREDFS_TREE_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "names.h"

enum node_kind {
	NODE_ROOT,
	NODE_WELL_KNOWN,
	NODE_DISCOVERY,
	NODE_JWKS,
	NODE_METRICS,
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
	ROLE_AUTHORIZATION_TOKEN,
	ROLE_ENDPOINT_ENV,
	ROLE_CREDENTIALS_JSON,
	ROLE_ACCESS_TOKEN,
	ROLE_FILE_COUNT,	/* at most 15 */
};

struct node {
	enum node_kind kind;
	size_t role;			/* NODE_ROLE_*: index in cfg->roles */
	enum role_file file;		/* NODE_ROLE_FILE */
};

struct tree {
	const struct cfg *cfg;
	int has_signer;
	int has_endpoint;
	/* role id -> index in cfg->roles, open addressing (index + 1; 0 empty) */
	uint64_t *ids;
	size_t *slots;
	size_t cap;
};

/* A tree for cfg (which must outlive it).  0 or -ENOMEM. */
int tree_init(struct tree *t, const struct cfg *cfg, int has_signer);
void tree_destroy(struct tree *t);

/* The node behind ino, or -ENOENT. */
int tree_node(const struct tree *t, fuse_ino_t ino, struct node *out);
fuse_ino_t tree_ino(const struct tree *t, const struct node *n);
/* The inode number of file f (or, for ROLE_FILE_COUNT, the directory) of
 * the role called name: the same in every process. */
fuse_ino_t tree_role_ino(const char *name, int f);
/* The child called name of directory parent: 0 and *out, or -ENOENT /
 * -ENOTDIR. */
int tree_lookup(const struct tree *t, fuse_ino_t parent, const char *name,
		struct node *out);
/* The idx-th entry of a directory (no "." and ".."): 0, or -ENOENT past
 * the end. */
int tree_child(const struct tree *t, const struct node *dir, size_t idx,
	       const char **name, struct node *out);

const char *tree_role_file_name(enum role_file f);
/* Whether file f exists for role i (by its cloud, its token source and
 * whether [endpoint] is configured). */
int tree_role_has_file(const struct tree *t, size_t role, enum role_file f);

#endif
