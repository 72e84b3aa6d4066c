#include "face.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "credfs.h"
#include "inval.h"
#include "log.h"
#include "memfd.h"
#include "reload.h"

#define REVOKED_MAX (4u << 20)	/* bytes of role names */

struct fs_face {
	struct credfs fs;		/* what the operations share */
	struct fs_session *session;
	char *mountpoint;
	char *config_path;
	int docs_ready;
};

struct fs_face *fs_face_new(const struct fs_face_opts *o)
{
	struct fs_face *f = calloc(1, sizeof(*f));

	if (!f) {
		if (o->serve.fd >= 0)
			close(o->serve.fd);
		return NULL;
	}
	f->mountpoint = strdup(o->mountpoint);
	f->config_path = strdup(o->config_path);
	f->fs.uid = getuid();
	f->fs.gid = getgid();
	f->fs.started = (time_t)clock_wall();
	f->fs.mountpoint = f->mountpoint;
	f->fs.config_path = f->config_path;
	f->fs.no_push = o->no_push;
	f->fs.endpoint_secret = o->endpoint_secret;
	buf_init(&f->fs.revoked, REVOKED_MAX);
	dir_handles_init(&f->fs.dirs);
	f->session = fs_session_new(&f->fs, &o->serve);
	if (!f->mountpoint || !f->config_path || !f->session)
		goto fail;
	if (docs_init(&f->fs.docs))
		goto fail;
	f->docs_ready = 1;
	f->fs.inval = inval_start(fs_session_fuse(f->session), &f->fs);
	if (!f->fs.inval)
		goto fail;
	return f;
fail:
	fs_face_free(f);
	return NULL;
}

void fs_face_listener(void *arg, struct role *r, unsigned what, uint64_t version)
{
	struct fs_face *f = arg;

	inval_role(f->fs.inval, r, what, version);
}

int fs_face_attach(struct fs_face *f, struct engine *e, struct generation *gen)
{
	struct view *v = view_new(e, gen);

	if (!v)
		return -1;
	f->fs.engine = e;
	view_slot_init(&f->fs.views, v);
	return 0;
}

int fs_face_init(struct fs_face *f)
{
	return fs_session_init(f->session);
}

int fs_face_serve(struct fs_face *f)
{
	return fs_session_serve(f->session);
}

void fs_face_stop(struct fs_face *f)
{
	fs_session_stop(f->session);
}

static void *face_prepare(void *arg, struct generation *gen)
{
	struct fs_face *f = arg;

	return fs_prepare_generation(&f->fs, gen);
}

static void face_commit(void *arg, void *prepared)
{
	struct fs_face *f = arg;

	fs_show_generation(&f->fs, fs_session_fuse(f->session), prepared);
}

static void face_discard(void *arg, void *prepared)
{
	view_unref(prepared);
}

struct engine_face fs_face_reloader(struct fs_face *f)
{
	return (struct engine_face){ f, face_prepare, face_commit, face_discard };
}

void fs_face_free(struct fs_face *f)
{
	if (!f)
		return;
	inval_stop(f->fs.inval);
	f->fs.inval = NULL;
	fs_session_free(f->session);
	dir_handles_destroy(&f->fs.dirs);
	if (f->fs.views.current)
		view_slot_destroy(&f->fs.views);
	if (f->docs_ready)
		docs_destroy(&f->fs.docs);
	buf_free(&f->fs.revoked);
	free(f->mountpoint);
	free(f->config_path);
	free(f);
}

size_t fs_face_revoked_count(const struct fs_face *f)
{
	return f->fs.n_revoked;
}

int fs_face_revoked(struct fs_face *f)
{
	if (!f->fs.n_revoked)
		return -1;
	return memfd_sealed("credfs-revoked", f->fs.revoked.data, f->fs.revoked.len);
}

int fs_face_restore_revoked(struct fs_face *f, int fd)
{
	char *names;
	size_t len;

	if (memfd_read(fd, REVOKED_MAX, &names, &len))
		return -1;
	/* Each name is whole: the last one ends with its NUL too. */
	for (size_t at = 0; at < len; at += strlen(names + at) + 1)
		fs_mark_revoked(&f->fs, names + at);
	free(names);
	return 0;
}

void fs_face_push_revoked(struct fs_face *f)
{
	const struct buf *b = &f->fs.revoked;

	for (size_t at = 0; at < b->len; at += strlen(b->data + at) + 1)
		for (int k = 0; k < ROLE_FILE_COUNT; k++)
			inval_ino(f->fs.inval, tree_role_ino(b->data + at, k), 1);
}

struct credfs *fs_face_credfs(struct fs_face *f)
{
	return &f->fs;
}
