/*
 * The FUSE low-level operations.  Each handler asks a worker for the
 * answer (0 or an errno) and only then chooses the reply.
 *
 * Caching (docs/caching.md): the kernel keeps every file's content and
 * attributes; open() answers ENOSYS once, so the kernel stops sending opens
 * at all, and a warm read never reaches this process.  A document is
 * produced only when the kernel has no copy: at getattr from a reader (the
 * request carries a file handle) or at read.  The invalidator (inval.c)
 * drops the kernel's copies whenever the engine says a role changed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "buf.h"
#include "credfs.h"
#include "log.h"
#include "render.h"
#include "view.h"

/* Entries and attributes stay cached this long: changes are pushed. */
#define TIMEOUT_STEADY 3600.0
/* A mirrored token file is looked at on every read: the kernel compares
 * its size and mtime (auto_inval_data) and drops its copy when they move. */
#define TIMEOUT_TOKEN_FILE 0.0
/* The size shown for a document not produced yet: one page.  The first
 * read asks for page 0 alone and learns the real size from its short
 * answer (docs/caching.md). */
#define SIZE_UNKNOWN 4096
/* Padded sizes grow in these steps, with this much headroom. */
#define PAD_STEP 512
#define PAD_HEADROOM 256

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
		st->st_nlink = 2 + v->cfg->n_roles + (v->signer ? 1 : 0);
		break;
	case NODE_WELL_KNOWN:
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
		break;
	case NODE_DISCOVERY:
		st->st_mode = S_IFREG | 0444;
		st->st_size = (off_t)strlen(v->discovery);
		break;
	case NODE_JWKS:
		st->st_mode = S_IFREG | 0444;
		st->st_size = (off_t)strlen(v->jwks);
		break;
	case NODE_ROLE_DIR:
		role = &v->cfg->roles[n->role];
		st->st_mode = S_IFDIR | (role->pres.mode == 0440 ? 0550 : 0500);
		st->st_nlink = 2;
		st->st_uid = role->pres.uid;
		st->st_gid = role->pres.gid;
		break;
	case NODE_ROLE_FILE:
		/* The size is filled in by file_attr(). */
		role = &v->cfg->roles[n->role];
		st->st_mode = S_IFREG | role->pres.mode;
		st->st_uid = role->pres.uid;
		st->st_gid = role->pres.gid;
		break;
	}
}

/* The steady size of file n: the largest document seen so far, rounded up
 * with headroom, so renewals (whose session tokens differ a little in
 * length) keep the size the kernel knows. */
static size_t pad_size(struct credfs *fs, const struct node *n, size_t len)
{
	_Atomic uint32_t *slot = &fs->pad_to[n->slot * ROLE_FILE_COUNT + n->file];
	uint32_t cur = atomic_load(slot), want;

	if (len <= cur)
		return cur;
	want = (uint32_t)((len + PAD_HEADROOM + PAD_STEP - 1) / PAD_STEP * PAD_STEP);
	while (cur < want && !atomic_compare_exchange_weak(slot, &cur, want))
		;
	return cur > want ? cur : want;
}

/* The size to show for a document that cannot be produced now: the size
 * it had before if it was padded, the fixed size of expiry, else a page. */
static off_t unknown_size(struct credfs *fs, const struct node *n)
{
	uint32_t pad = atomic_load(&fs->pad_to[n->slot * ROLE_FILE_COUNT + n->file]);

	size_t token;

	if (n->file == ROLE_EXPIRY)
		return 21;
	if (n->file == ROLE_TOKEN) {
		token = engine_token_size(fs->engine, n->slot);
		if (token)
			return (off_t)token;
	}
	return pad > SIZE_UNKNOWN ? (off_t)pad : SIZE_UNKNOWN;
}

/* Produces the whole document behind n into b (initialised by the caller
 * with RENDER_MAX).  Returns 0 or a negative errno; -EAGAIN in
 * RENDER_PEEK mode when it would need STS or signing. */
static int file_render(struct credfs *fs, const struct view *v,
		       const struct node *n, enum render_mode mode,
		       struct buf *b)
{
	int r;

	switch (n->kind) {
	case NODE_DISCOVERY:
		return buf_append_str(b, v->discovery);
	case NODE_JWKS:
		return buf_append_str(b, v->jwks);
	case NODE_ROLE_FILE:
		r = render_role_file(fs->engine, &v->cfg->roles[n->role],
				     n->slot, n->file, fs->mountpoint, mode, b);
		if (r || !render_is_padded(n->file))
			return r;
		return render_pad(n->file, b, pad_size(fs, n, b->len));
	default:
		return -EISDIR;
	}
}

/* Attributes of n and how long the kernel may keep them.  reading: the
 * request comes from an open file (someone is reading it), so the document
 * may be produced, waiting on STS; otherwise (ls, stat) only what is at
 * hand is used, and a file that has no document yet shows SIZE_UNKNOWN.
 * Returns 0 or an errno. */
static int file_attr(struct credfs *fs, const struct view *v,
		     const struct node *n, fuse_ino_t ino, int reading,
		     struct stat *st, double *timeout)
{
	const struct cfg_role *role;
	struct stat ts;
	struct buf b;
	int r;

	node_attr(fs, v, n, ino, st);
	*timeout = TIMEOUT_STEADY;
	if (n->kind != NODE_ROLE_FILE)
		return 0;
	role = &v->cfg->roles[n->role];
	if (n->file == ROLE_TOKEN && role->x.token_source == CFG_TOKEN_FILE) {
		/* Mirror the token file: its size and mtime tell the kernel
		 * (auto_inval_data) when to drop its copy. */
		*timeout = TIMEOUT_TOKEN_FILE;
		if (stat(role->x.web_identity_token_file, &ts) == 0 &&
		    ts.st_size >= 4) {
			st->st_size = ts.st_size;
			st->st_mtim = ts.st_mtim;
			st->st_ctim = ts.st_ctim;
		} else {
			/* Missing or empty: let the read fail with EIO and
			 * status say why. */
			st->st_size = SIZE_UNKNOWN;
		}
		return 0;
	}
	buf_init(&b, RENDER_MAX);
	r = file_render(fs, v, n, reading ? RENDER_WAIT : RENDER_PEEK, &b);
	if (r == -EAGAIN) {
		/* No document yet: an upper bound.  The first read gets
		 * the document in one piece and the kernel shrinks the size
		 * to what it got; the change that follows (new credentials)
		 * makes the kernel ask again and learn the exact size. */
		st->st_size = unknown_size(fs, n);
		r = 0;
	} else if (r == 0) {
		st->st_size = (off_t)b.len;
	}
	buf_free(&b);
	return -r;
}

static int do_lookup(struct credfs *fs, fuse_ino_t parent, const char *name,
		     struct fuse_entry_param *e)
{
	struct view *v = fs->view;
	struct node n;
	int r = tree_lookup(&v->tree, parent, name, &n);

	if (r)
		return -r;
	memset(e, 0, sizeof(*e));
	e->ino = tree_ino(&n);
	e->entry_timeout = TIMEOUT_STEADY;
	return file_attr(fs, v, &n, e->ino, 0, &e->attr, &e->attr_timeout);
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

static void credfs_getattr(fuse_req_t req, fuse_ino_t ino,
			   struct fuse_file_info *fi)
{
	struct credfs *fs = fs_of(req);
	struct view *v = fs->view;
	struct stat st;
	struct node n;
	double timeout;
	int err = -tree_node(&v->tree, ino, &n);

	if (!err)
		err = file_attr(fs, v, &n, ino, fi != NULL, &st, &timeout);
	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_attr(req, &st, timeout);
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

/* A read reaches here only when the kernel has no copy of the page: the
 * document is produced whole, from one snapshot of the role's state, and
 * the requested range of it is returned.  Documents fit in the first read
 * (they are far smaller than the kernel's read size). */
static void credfs_read(fuse_req_t req, fuse_ino_t ino, size_t size,
			off_t off, struct fuse_file_info *fi)
{
	struct credfs *fs = fs_of(req);
	struct view *v = fs->view;
	struct node n;
	struct buf b;
	int err = -tree_node(&v->tree, ino, &n);

	buf_init(&b, RENDER_MAX);
	if (!err)
		err = -file_render(fs, v, &n, RENDER_WAIT, &b);
	if (err) {
		fuse_reply_err(req, err);
	} else if (off < 0 || (size_t)off >= b.len) {
		fuse_reply_buf(req, NULL, 0);
	} else {
		if (size > b.len - (size_t)off)
			size = b.len - (size_t)off;
		fuse_reply_buf(req, b.data + off, size);
	}
	buf_free(&b);
}

static void credfs_release(fuse_req_t req, fuse_ino_t ino,
			   struct fuse_file_info *fi)
{
	fuse_reply_err(req, 0);
}

static void credfs_opendir(fuse_req_t req, fuse_ino_t ino,
			   struct fuse_file_info *fi)
{
	struct credfs *fs = fs_of(req);
	struct view *v = fs->view;
	struct node n;
	int r = tree_node(&v->tree, ino, &n);

	if (r)
		fuse_reply_err(req, -r);
	else if (n.kind != NODE_ROOT && n.kind != NODE_WELL_KNOWN &&
		 n.kind != NODE_ROLE_DIR)
		fuse_reply_err(req, ENOTDIR);
	else if (fi->flags & O_ACCMODE)
		fuse_reply_err(req, EROFS);
	else
		fuse_reply_open(req, fi);
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
			node_attr(fs, v, &child, tree_ino(&child), &st);
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
	struct view *v = fs->view;
	struct node dir;
	char *buf;
	int r = tree_node(&v->tree, ino, &dir);

	if (r) {
		fuse_reply_err(req, -r);
		return;
	}
	buf = malloc(size);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fuse_reply_buf(req, buf, fill_dir(fs, v, req, ino, &dir, buf, size, off));
	free(buf);
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
	/* Renders can wait on STS; let the kernel send reads of other
	 * files meanwhile. */
	if (conn->capable & FUSE_CAP_ASYNC_READ)
		conn->want |= FUSE_CAP_ASYNC_READ;
	/* A changed mtime or size drops the kernel's copy of a file (the
	 * mirrored token files rely on it). */
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
};
