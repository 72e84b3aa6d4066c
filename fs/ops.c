/*
 * The FUSE low-level operations.  Each handler asks a worker for the
 * answer (0 or an errno) and only then chooses the reply.  Files are
 * rendered whole at open() and served from that snapshot until release(),
 * so every read of one open file sees one consistent document.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "buf.h"
#include "credfs.h"
#include "log.h"
#include "render.h"

/* What an open file serves: the document rendered at open(). */
struct open_file {
	size_t len;
	char data[];
};

static struct credfs *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static void node_attr(const struct credfs *fs, const struct node *n,
		      fuse_ino_t ino, struct stat *st)
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
		st->st_nlink = 2 + fs->cfg->n_roles + (fs->signer ? 1 : 0);
		break;
	case NODE_WELL_KNOWN:
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
		break;
	case NODE_DISCOVERY:
		st->st_mode = S_IFREG | 0444;
		st->st_size = (off_t)strlen(fs->discovery);
		break;
	case NODE_JWKS:
		st->st_mode = S_IFREG | 0444;
		st->st_size = (off_t)strlen(fs->jwks);
		break;
	case NODE_ROLE_DIR:
		role = &fs->cfg->roles[n->role];
		st->st_mode = S_IFDIR | (role->mode == 0440 ? 0550 : 0500);
		st->st_nlink = 2;
		st->st_uid = role->uid;
		st->st_gid = role->gid;
		break;
	case NODE_ROLE_FILE:
		/* Sizes of generated files are not known without producing
		 * them (ls must not call STS): 0, as in /proc; open() uses
		 * direct I/O so readers still get every byte. */
		role = &fs->cfg->roles[n->role];
		st->st_mode = S_IFREG | role->mode;
		st->st_uid = role->uid;
		st->st_gid = role->gid;
		break;
	}
}

static int do_lookup(struct credfs *fs, fuse_ino_t parent, const char *name,
		     struct fuse_entry_param *e)
{
	struct node n;
	int r = tree_lookup(&fs->tree, parent, name, &n);

	if (r)
		return -r;
	memset(e, 0, sizeof(*e));
	e->ino = tree_ino(&n);
	e->attr_timeout = fs->timeout;
	e->entry_timeout = fs->timeout;
	node_attr(fs, &n, e->ino, &e->attr);
	return 0;
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
	struct stat st;
	struct node n;
	int r = tree_node(&fs->tree, ino, &n);

	if (r) {
		fuse_reply_err(req, -r);
		return;
	}
	node_attr(fs, &n, ino, &st);
	fuse_reply_attr(req, &st, fs->timeout);
}

/* Renders the document behind n.  Returns 0 with *out, or an errno. */
static int do_open(struct credfs *fs, const struct node *n,
		   struct open_file **out)
{
	struct open_file *of;
	struct buf b;
	int r = 0;

	buf_init(&b, RENDER_MAX);
	switch (n->kind) {
	case NODE_DISCOVERY:
		r = buf_append_str(&b, fs->discovery);
		break;
	case NODE_JWKS:
		r = buf_append_str(&b, fs->jwks);
		break;
	case NODE_ROLE_FILE:
		r = render_role_file(fs->engine, &fs->cfg->roles[n->role],
				     n->role, n->file, &b);
		break;
	default:
		return EISDIR;
	}
	if (r) {
		buf_free(&b);
		return -r;
	}
	of = malloc(sizeof(*of) + b.len + 1);
	if (!of) {
		buf_free(&b);
		return ENOMEM;
	}
	of->len = b.len;
	memcpy(of->data, b.data ? b.data : "", b.len + 1);
	buf_free(&b);
	*out = of;
	return 0;
}

static void credfs_open(fuse_req_t req, fuse_ino_t ino,
			struct fuse_file_info *fi)
{
	struct credfs *fs = fs_of(req);
	struct open_file *of = NULL;
	struct node n;
	int err;

	if ((fi->flags & O_ACCMODE) != O_RDONLY ||
	    (fi->flags & (O_TRUNC | O_APPEND))) {
		fuse_reply_err(req, EROFS);
		return;
	}
	err = -tree_node(&fs->tree, ino, &n);
	if (!err)
		err = do_open(fs, &n, &of);
	if (err) {
		fuse_reply_err(req, err);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)of;
	if (n.kind == NODE_ROLE_FILE)
		fi->direct_io = 1;
	else
		fi->keep_cache = 1;
	if (fuse_reply_open(req, fi) == -ENOENT) {
		/* The opener was interrupted: nobody will release this. */
		secret_free_n(of, sizeof(*of) + of->len + 1);
	}
}

static void credfs_read(fuse_req_t req, fuse_ino_t ino, size_t size,
			off_t off, struct fuse_file_info *fi)
{
	struct open_file *of = (struct open_file *)(uintptr_t)fi->fh;

	if (off < 0 || (size_t)off >= of->len) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (size > of->len - (size_t)off)
		size = of->len - (size_t)off;
	fuse_reply_buf(req, of->data + off, size);
}

static void credfs_release(fuse_req_t req, fuse_ino_t ino,
			   struct fuse_file_info *fi)
{
	struct open_file *of = (struct open_file *)(uintptr_t)fi->fh;

	secret_free_n(of, sizeof(*of) + of->len + 1);
	fuse_reply_err(req, 0);
}

static void credfs_opendir(fuse_req_t req, fuse_ino_t ino,
			   struct fuse_file_info *fi)
{
	struct credfs *fs = fs_of(req);
	struct node n;
	int r = tree_node(&fs->tree, ino, &n);

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
static size_t fill_dir(struct credfs *fs, fuse_req_t req, fuse_ino_t ino,
		       const struct node *dir, char *buf, size_t size,
		       off_t off)
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
			if (tree_child(&fs->tree, dir, idx - 2, &name, &child))
				break;
			node_attr(fs, &child, tree_ino(&child), &st);
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
	struct node dir;
	char *buf;
	int r = tree_node(&fs->tree, ino, &dir);

	if (r) {
		fuse_reply_err(req, -r);
		return;
	}
	buf = malloc(size);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fuse_reply_buf(req, buf, fill_dir(fs, req, ino, &dir, buf, size, off));
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
	.read = credfs_read,
	.write = credfs_write,
	.release = credfs_release,
	.opendir = credfs_opendir,
	.readdir = credfs_readdir,
};
