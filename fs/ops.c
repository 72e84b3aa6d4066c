/*
 * The FUSE low-level operations.  Each handler asks a worker for the
 * answer (0 or a positive errno) and only then chooses the reply.
 *
 * Caching (docs/caching.md): the kernel keeps every file's content and
 * attributes; open() answers ENOSYS once, so the kernel stops sending opens
 * at all, and a warm read never reaches this process.  A document is
 * produced only when the kernel has no copy: at getattr from a reader (the
 * request carries a file handle) or at read, and kept (docs.h) so that the
 * reads which follow match the size the kernel was told.
 *
 * Access: the kernel checks each role's uid, gid and mode at open
 * (default_permissions).  Since opens never reach the daemon, every read
 * that does (and every getattr made by a reader) checks the caller again,
 * against the configuration in force: a descriptor opened before a reload
 * took the role away from its owner gets EACCES from the daemon.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "credfs.h"
#include "inval.h"
#include "log.h"
#include "render.h"

/* The size shown for a document not produced yet, with no attribute
 * timeout, so the first reader's getattr produces it and learns its size. */
#define SIZE_UNKNOWN 4096
#define GROUPS_MAX 64

static struct credfs *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static void node_attr(const struct credfs *fs, const struct view *v,
		      const struct node *n, fuse_ino_t ino, struct stat *st)
{
	const struct cfg_role *role;

	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_nlink = 1;
	st->st_atime = st->st_mtime = st->st_ctime = fs->started;
	switch (n->kind) {
	case NODE_ROOT:
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2 + v->gen->cfg->n_roles + (v->gen->signer ? 1 : 0);
		break;
	case NODE_WELL_KNOWN:
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
		break;
	case NODE_DISCOVERY:
	case NODE_JWKS:
	case NODE_METRICS:
		st->st_mode = S_IFREG | 0444;
		break;
	case NODE_ROLE_DIR:
		role = &v->gen->cfg->roles[n->role];
		st->st_mode = S_IFDIR | (role->pres.mode == 0440 ? 0550 : 0500);
		st->st_nlink = 2;
		st->st_uid = role->pres.uid;
		st->st_gid = role->pres.gid;
		break;
	case NODE_ROLE_FILE:
		role = &v->gen->cfg->roles[n->role];
		st->st_mode = S_IFREG | role->pres.mode;
		st->st_uid = role->pres.uid;
		st->st_gid = role->pres.gid;
		break;
	}
}

/* Whether the caller of req may read what the role's presentation allows
 * (root always may, as the kernel lets it). */
static int caller_may_read(fuse_req_t req, const struct cfg_presentation *p)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	gid_t groups[GROUPS_MAX];
	int n;

	if (ctx->uid == 0 || ctx->uid == p->uid)
		return 1;
	if (p->mode != 0440)
		return 0;
	if (ctx->gid == p->gid)
		return 1;
	n = fuse_req_getgroups(req, GROUPS_MAX, groups);
	for (int i = 0; i < n && i < GROUPS_MAX; i++)
		if (groups[i] == p->gid)
			return 1;
	return 0;
}

/* The document of file n.  For getattr (kept 0) a new one, which the
 * kernel is about to be told about; for a read (kept 1) the one the
 * kernel was last told about, if it may still be served, else a new one.
 * A new one is kept from now on.  0 or a negative errno. */
static int file_doc(struct credfs *fs, struct view *v, const struct node *n,
		    fuse_ino_t ino, enum render_mode mode, int kept,
		    struct doc **out)
{
	int r;

	*out = kept ? docs_get(&fs->docs, ino, clock_boot_ms()) : NULL;
	if (*out)
		return 0;
	r = render_node(fs, v, n, ino, mode, out);
	if (!r && docs_put(&fs->docs, ino, *out))
		inval_docs_kept(fs->inval);
	return r;
}

/* Attributes of n and how long the kernel may keep them.  req: the
 * request is a reader's (a getattr on an open file, or a read), so the
 * document may be produced, waiting, and the caller is checked; otherwise
 * (ls, stat, lookup) only what is at hand is used.  0 or an errno. */
static int node_attrs(struct credfs *fs, struct view *v, const struct node *n,
		      fuse_ino_t ino, fuse_req_t reader, struct stat *st,
		      double *timeout)
{
	struct doc *d = NULL;
	int r;

	node_attr(fs, v, n, ino, st);
	*timeout = TIMEOUT_STEADY;
	if (n->kind == NODE_ROOT || n->kind == NODE_WELL_KNOWN ||
	    n->kind == NODE_ROLE_DIR)
		return 0;
	if (reader && n->kind == NODE_ROLE_FILE &&
	    !caller_may_read(reader, &v->gen->cfg->roles[n->role].pres))
		return EACCES;
	r = file_doc(fs, v, n, ino, reader ? RENDER_WAIT : RENDER_PEEK, 0, &d);
	if (r == -EAGAIN) {
		size_t known = docs_known_size(&fs->docs, ino);

		st->st_size = (off_t)(known ? known : SIZE_UNKNOWN);
		*timeout = 0.0;
		return 0;
	}
	if (r)
		return -r;
	st->st_size = (off_t)d->len;
	st->st_mtim = d->mtime;
	st->st_ctim = d->mtime;
	*timeout = d->attr_timeout;
	doc_unref(d);
	if (n->kind == NODE_ROLE_FILE && docs_is_revoked(&fs->docs, ino))
		*timeout = 0.0;
	return 0;
}

static int do_lookup(struct credfs *fs, fuse_ino_t parent, const char *name,
		     struct fuse_entry_param *e)
{
	struct view *v = view_get(&fs->views);
	struct node n;
	int r = -tree_lookup(&v->tree, parent, name, &n);

	if (!r) {
		memset(e, 0, sizeof(*e));
		e->ino = tree_ino(&v->tree, &n);
		e->entry_timeout = TIMEOUT_STEADY;
		r = node_attrs(fs, v, &n, e->ino, NULL, &e->attr, &e->attr_timeout);
	}
	view_unref(v);
	return r;
}

static void credfs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	int err = do_lookup(fs_of(req), parent, name, &e);

	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_entry(req, &e);
}

/* A request about ino ended: queue the invalidations it held up. */
static void busy_end(struct credfs *fs, fuse_ino_t ino)
{
	uint64_t version;
	unsigned due = docs_busy_end(&fs->docs, ino, &version);

	if (due && fs->inval)
		inval_due(fs->inval, ino, due, version);
}

static int do_getattr(struct credfs *fs, fuse_ino_t ino, fuse_req_t reader,
		      struct stat *st, double *timeout)
{
	struct view *v = view_get(&fs->views);
	struct node n;
	int r = -tree_node(&v->tree, ino, &n);

	if (!r)
		r = node_attrs(fs, v, &n, ino, reader, st, timeout);
	view_unref(v);
	return r;
}

static void credfs_getattr(fuse_req_t req, fuse_ino_t ino,
			   struct fuse_file_info *fi)
{
	struct credfs *fs = fs_of(req);
	struct stat st;
	double timeout;
	int err;

	docs_busy_begin(&fs->docs, ino);
	err = do_getattr(fs, ino, fi ? req : NULL, &st, &timeout);
	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_attr(req, &st, timeout);
	busy_end(fs, ino);
}

/* Opens are not needed: answering ENOSYS once makes the kernel stop
 * sending them (FUSE no_open) and keep file contents cached, so a warm
 * open + read + close costs no round trip to this process. */
static void credfs_open(fuse_req_t req, fuse_ino_t ino,
			struct fuse_file_info *fi)
{
	fuse_reply_err(req, ENOSYS);
}

/* Likewise for flush on close (FUSE no_flush). */
static void credfs_flush(fuse_req_t req, fuse_ino_t ino,
			 struct fuse_file_info *fi)
{
	fuse_reply_err(req, ENOSYS);
}

/* The document for a read of ino, the caller checked.  0 or an errno. */
static int do_read(struct credfs *fs, fuse_req_t req, fuse_ino_t ino,
		   struct doc **out)
{
	struct view *v = view_get(&fs->views);
	struct node n;
	int r = -tree_node(&v->tree, ino, &n);

	*out = NULL;
	if (!r && n.kind == NODE_ROLE_FILE &&
	    !caller_may_read(req, &v->gen->cfg->roles[n.role].pres))
		r = EACCES;
	if (!r)
		r = -file_doc(fs, v, &n, ino, RENDER_WAIT, 1, out);
	view_unref(v);
	return r;
}

/* A read reaches here only when the kernel has no copy of the page: the
 * document the kernel was last told about is served, or produced whole
 * from one snapshot of the role's state. */
static void credfs_read(fuse_req_t req, fuse_ino_t ino, size_t size,
			off_t off, struct fuse_file_info *fi)
{
	struct credfs *fs = fs_of(req);
	struct doc *d;
	int err;

	docs_busy_begin(&fs->docs, ino);
	err = do_read(fs, req, ino, &d);
	if (err) {
		fuse_reply_err(req, err);
	} else if (off < 0 || (size_t)off >= d->len) {
		fuse_reply_buf(req, NULL, 0);
	} else {
		if (size > d->len - (size_t)off)
			size = d->len - (size_t)off;
		fuse_reply_buf(req, d->data + off, size);
	}
	doc_unref(d);
	busy_end(fs, ino);
}

static void credfs_release(fuse_req_t req, fuse_ino_t ino,
			   struct fuse_file_info *fi)
{
	fuse_reply_err(req, 0);
}

/* ---- directory handles -------------------------------------------- */

void dir_handles_init(struct dir_handles *d)
{
	memset(d, 0, sizeof(*d));
	pthread_mutex_init(&d->lock, NULL);
	d->nonce = (uint32_t)(clock_mono_ms() ^ ((uint64_t)getpid() << 16)) | 1;
}

void dir_handles_destroy(struct dir_handles *d)
{
	for (size_t i = 0; i < d->cap; i++)
		view_unref(d->slots[i]);
	free(d->slots);
	pthread_mutex_destroy(&d->lock);
}

/* Keeps v (the caller's reference) under a new handle; 0 when full. */
static uint64_t dir_handle_new(struct dir_handles *d, struct view *v)
{
	uint64_t fh = 0;
	size_t i;

	pthread_mutex_lock(&d->lock);
	for (i = 0; i < d->cap && d->slots[i]; i++)
		;
	if (i == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 16;
		struct view **grown = cap <= UINT32_MAX ?
			realloc(d->slots, cap * sizeof(*grown)) : NULL;

		if (grown) {
			memset(grown + d->cap, 0, (cap - d->cap) * sizeof(*grown));
			d->slots = grown;
			d->cap = cap;
		}
	}
	if (i < d->cap) {
		d->slots[i] = v;
		fh = (uint64_t)d->nonce << 32 | (uint64_t)(i + 1);
	}
	pthread_mutex_unlock(&d->lock);
	return fh;
}

/* The view of handle fh (a reference), or NULL for a handle of another
 * process. */
static struct view *dir_handle_view(struct dir_handles *d, uint64_t fh)
{
	size_t i = (size_t)(fh & 0xffffffffu);
	struct view *v = NULL;

	pthread_mutex_lock(&d->lock);
	if ((uint32_t)(fh >> 32) == d->nonce && i >= 1 && i <= d->cap)
		v = view_ref(d->slots[i - 1]);
	pthread_mutex_unlock(&d->lock);
	return v;
}

static void dir_handle_drop(struct dir_handles *d, uint64_t fh)
{
	size_t i = (size_t)(fh & 0xffffffffu);
	struct view *v = NULL;

	pthread_mutex_lock(&d->lock);
	if ((uint32_t)(fh >> 32) == d->nonce && i >= 1 && i <= d->cap) {
		v = d->slots[i - 1];
		d->slots[i - 1] = NULL;
	}
	pthread_mutex_unlock(&d->lock);
	view_unref(v);
}

/* A directory handle holds the view it was opened with, so one listing
 * is of one configuration. */
static void credfs_opendir(fuse_req_t req, fuse_ino_t ino,
			   struct fuse_file_info *fi)
{
	struct credfs *fs = fs_of(req);
	struct view *v = view_get(&fs->views);
	struct node n;
	int err = -tree_node(&v->tree, ino, &n);

	if (!err && n.kind != NODE_ROOT && n.kind != NODE_WELL_KNOWN &&
	    n.kind != NODE_ROLE_DIR)
		err = ENOTDIR;
	else if (!err && (fi->flags & O_ACCMODE))
		err = EROFS;
	if (err) {
		view_unref(v);
		fuse_reply_err(req, err);
		return;
	}
	fi->fh = dir_handle_new(&fs->dirs, v);
	if (!fi->fh) {
		view_unref(v);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (fuse_reply_open(req, fi))
		dir_handle_drop(&fs->dirs, fi->fh);
}

static void credfs_releasedir(fuse_req_t req, fuse_ino_t ino,
			      struct fuse_file_info *fi)
{
	dir_handle_drop(&fs_of(req)->dirs, fi->fh);
	fuse_reply_err(req, 0);
}

/* Fills buf with entries from offset off on: "." and ".." first, then the
 * directory's children.  An entry's offset is its index + 1.  Returns the
 * bytes used. */
static size_t fill_dir(struct credfs *fs, const struct view *v,
		       fuse_req_t req, fuse_ino_t ino, const struct node *dir,
		       char *buf, size_t size, off_t off)
{
	size_t used = 0;

	for (size_t idx = (size_t)off;; idx++) {
		struct stat st = {0};
		struct node child;
		const char *name;
		size_t len;

		if (idx == 0) {
			name = ".";
			st.st_ino = ino;
			st.st_mode = S_IFDIR;
		} else if (idx == 1) {
			name = "..";
			st.st_ino = FUSE_ROOT_ID;
			st.st_mode = S_IFDIR;
		} else {
			if (tree_child(&v->tree, dir, idx - 2, &name, &child))
				break;
			node_attr(fs, v, &child, tree_ino(&v->tree, &child), &st);
		}
		len = fuse_add_direntry(req, buf + used, size - used, name,
					&st, (off_t)idx + 1);
		if (len > size - used)
			break;
		used += len;
	}
	return used;
}

static void credfs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size,
			   off_t off, struct fuse_file_info *fi)
{
	struct credfs *fs = fs_of(req);
	/* A directory opened under the previous worker: the listing goes on
	 * with the view in force. */
	struct view *v = dir_handle_view(&fs->dirs, fi->fh);
	struct node dir;
	char *buf = NULL;
	int r;

	if (!v)
		v = view_get(&fs->views);
	r = tree_node(&v->tree, ino, &dir);
	if (!r && !(buf = malloc(size)))
		r = -ENOMEM;
	if (r)
		fuse_reply_err(req, -r);
	else
		fuse_reply_buf(req, buf, fill_dir(fs, v, req, ino, &dir, buf, size, off));
	free(buf);
	view_unref(v);
}

/* Everything that would change the tree: the filesystem is read-only. */
static void credfs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
			   int to_set, struct fuse_file_info *fi)
{
	fuse_reply_err(req, EROFS);
}

static void credfs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
			 mode_t mode, dev_t rdev)
{
	fuse_reply_err(req, EROFS);
}

static void credfs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
			 mode_t mode)
{
	fuse_reply_err(req, EROFS);
}

static void credfs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, EROFS);
}

static void credfs_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
			  fuse_ino_t newparent, const char *newname,
			  unsigned int flags)
{
	fuse_reply_err(req, EROFS);
}

static void credfs_create(fuse_req_t req, fuse_ino_t parent, const char *name,
			  mode_t mode, struct fuse_file_info *fi)
{
	fuse_reply_err(req, EROFS);
}

static void credfs_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
			 size_t size, off_t off, struct fuse_file_info *fi)
{
	fuse_reply_err(req, EROFS);
}

static void credfs_init(void *userdata, struct fuse_conn_info *conn)
{
	/* Renders can wait on a token endpoint; let the kernel send reads
	 * of other files meanwhile. */
	if (conn->capable & FUSE_CAP_ASYNC_READ)
		conn->want |= FUSE_CAP_ASYNC_READ;
	/* A changed mtime or size drops the kernel's copy of a file. */
	if (conn->capable & FUSE_CAP_AUTO_INVAL_DATA)
		conn->want |= FUSE_CAP_AUTO_INVAL_DATA;
}

const struct fuse_lowlevel_ops credfs_ops = {
	.init = credfs_init,
	.lookup = credfs_lookup,
	.getattr = credfs_getattr,
	.setattr = credfs_setattr,
	.mknod = credfs_mknod,
	.mkdir = credfs_mkdir,
	.unlink = credfs_unlink,
	.rmdir = credfs_unlink,
	.rename = credfs_rename,
	.create = credfs_create,
	.open = credfs_open,
	.flush = credfs_flush,
	.read = credfs_read,
	.write = credfs_write,
	.release = credfs_release,
	.opendir = credfs_opendir,
	.readdir = credfs_readdir,
	.releasedir = credfs_releasedir,
};
