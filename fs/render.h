/*
 * What each file of the tree says.  Every call renders one whole document
 * from one snapshot of a role's state and says how long the kernel may
 * keep it (docs.h: struct doc): a document never outlives the credentials
 * it shows, and its attribute timeout ends no later than their refresh
 * point, so even with no invalidation pushed at all (a daemon gone, a
 * missed notification) the kernel asks again in time.  Its mtime changes
 * with every generation of what it shows, so the kernel (auto_inval_data)
 * drops pages of an older one when it asks.
 */
#ifndef CREDFS_RENDER_H
#define CREDFS_RENDER_H

#include "credfs.h"
#include "docs.h"
#include "tree.h"
#include "view.h"

#define RENDER_MAX (64 * 1024)		/* any document but metrics */
#define RENDER_METRICS_MAX (64 * 1024 * 1024)
/* Attributes of what never changes but by a reload (which pushes). */
#define TIMEOUT_STEADY 3600.0
/* status is looked at afresh once a second. */
#define TIMEOUT_STATUS 1.0
/* So is a mirrored token file (render.c). */
#define TIMEOUT_TOKEN_FILE 1.0

enum render_mode {
	RENDER_WAIT,	/* a read: renew or sign as needed, waiting */
	RENDER_PEEK,	/* a stat: only what is at hand, never a request */
};

/* Produces the document of node n (a file) of view v.  0 and *out
 * (doc_unref it); -EAGAIN in RENDER_PEEK mode when it would need a
 * request or a signature; -EIO when no valid credentials or token could be
 * had (the reason is in status); -ENOENT for a role that is gone;
 * -ENOMEM. */
int render_node(struct credfs *fs, struct view *v, const struct node *n,
		fuse_ino_t ino, enum render_mode mode, struct doc **out) WUR;

/* Whether file f is padded to a steady size. */
int render_is_padded(enum role_file f);

#endif
