#include "reload.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "inval.h"
#include "log.h"

static int hup_pipe[2] = {-1, -1};
static pthread_t reload_thread;
static int reload_running;

/* Async-signal-safe: only a write to the pipe the reload thread reads. */
static void on_sighup(int sig)
{
	int saved = errno;
	char c = 'h';

	(void)sig;
	if (write(hup_pipe[1], &c, 1) < 0) {
		/* The pipe is full: a reload is pending anyway. */
	}
	errno = saved;
}

static void inval_entry(struct fuse_session *se, fuse_ino_t parent,
			const char *name)
{
	int r = fuse_lowlevel_notify_inval_entry(se, parent, name, strlen(name));

	if (r && r != -ENOENT && r != -EBADF && r != -ENODEV && r != -ENOTCONN)
		log_debug("invalidating entry %s: error %d", name, -r);
}

/* Whether the owner, group or mode of a role changed. */
static int access_changed(const struct cfg_presentation *a,
			  const struct cfg_presentation *b)
{
	return a->uid != b->uid || a->gid != b->gid || a->mode != b->mode;
}

/* A role whose owner or mode changed: from now on its files' attributes
 * are never kept by the kernel, so each read reaches the daemon and its
 * reader is checked; what the kernel holds now is dropped. */
static void revoke_role(struct credfs *fs, const char *name)
{
	for (int f = 0; f < ROLE_FILE_COUNT; f++) {
		uint64_t ino = tree_role_ino(name, f);

		docs_mark_revoked(&fs->docs, ino);
		docs_forget(&fs->docs, ino);
		inval_ino(fs->inval, ino, 1);
	}
	inval_ino(fs->inval, tree_role_ino(name, ROLE_FILE_COUNT), 0);
	log_info("role %s: owner or mode changed; files opened before are refused from now on",
		 name);
}

/* Tells the kernel what the new view changed in the tree: entries of
 * roles that are gone, the root's attributes, the directories and files
 * whose owner, mode or looks changed, and the issuer documents. */
static void push_tree_changes(struct credfs *fs, struct fuse_session *se,
			      const struct view *old, const struct view *cur)
{
	const struct cfg *oc = old->gen->cfg, *nc = cur->gen->cfg;

	for (size_t i = 0; i < oc->n_roles; i++) {
		const struct cfg_role *was = &oc->roles[i];
		const struct cfg_role *now = cfg_find_role(nc, was->name);

		if (!now) {
			inval_entry(se, FUSE_ROOT_ID, was->name);
			continue;
		}
		if (access_changed(&was->pres, &now->pres))
			revoke_role(fs, was->name);
		else if (!cfg_presentation_equal(&was->pres, &now->pres) ||
			 was->x.cloud != now->x.cloud ||
			 was->x.token_source != now->x.token_source ||
			 nc->endpoint.present != oc->endpoint.present)
			for (int f = 0; f <= ROLE_FILE_COUNT; f++)
				inval_ino(fs->inval, tree_role_ino(was->name, f), 1);
		if (was->x.token_source != now->x.token_source ||
		    was->x.cloud != now->x.cloud ||
		    nc->endpoint.present != oc->endpoint.present)
			for (int f = 0; f < ROLE_FILE_COUNT; f++)
				inval_entry(se, tree_role_ino(was->name, ROLE_FILE_COUNT),
					    tree_role_file_name((enum role_file)f));
	}
	inval_ino(fs->inval, FUSE_ROOT_ID, 0);
	if (old->gen->signer || cur->gen->signer) {
		inval_entry(se, FUSE_ROOT_ID, "keys.json");
		inval_entry(se, FUSE_ROOT_ID, ".well-known");
		static const enum node_kind docs[] = { NODE_DISCOVERY, NODE_JWKS };

		for (size_t k = 0; k < sizeof(docs) / sizeof(docs[0]); k++) {
			fuse_ino_t ino = tree_ino(&cur->tree,
						  &(struct node){ .kind = docs[k] });

			docs_forget(&fs->docs, ino);
			inval_ino(fs->inval, ino, 1);
		}
	}
}

int reload_now(struct credfs *fs, struct fuse_session *se)
{
	struct cfg_error err;
	struct generation *gen;
	struct view *old, *cur;
	char msg[sizeof(err.file) + CFG_ERROR_TEXT_MAX + 32];

	if (generation_load(fs->config_path, &gen, &err)) {
		cfg_error_format(&err, msg, sizeof(msg));
		log_error("reload refused, the configuration in force is unchanged: %s",
			  msg);
		return -1;
	}
	if (engine_reload(fs->engine, gen)) {
		generation_unref(gen);
		return -1;
	}
	cur = view_new(fs->engine, gen);
	generation_unref(gen);
	if (!cur) {
		/* The engine already runs the new roles; the tree keeps
		 * showing the old ones until the next reload succeeds. */
		log_error("reload: out of memory building the new tree; the files show the previous configuration");
		return -1;
	}
	old = view_swap(&fs->views, cur);
	push_tree_changes(fs, se, old, cur);
	view_unref(old);
	if (fs->on_reload)
		fs->on_reload(fs->on_reload_arg, cur->gen);
	log_info("reloaded %s: %zu role%s", fs->config_path, cur->gen->cfg->n_roles,
		 cur->gen->cfg->n_roles == 1 ? "" : "s");
	return 0;
}

struct reload_args {
	struct credfs *fs;
	struct fuse_session *se;
};

static struct reload_args args;

/* One reload per wake-up, however many signals arrived meanwhile: the
 * pipe is drained before reloading. */
static void *reload_main(void *arg)
{
	char buf[256];
	ssize_t n;

	(void)arg;
	while ((n = read(hup_pipe[0], buf, sizeof(buf))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (memchr(buf, 'q', (size_t)n))
			break;
		/* Coalesce: take whatever else is pending without waiting. */
		fcntl(hup_pipe[0], F_SETFL, O_NONBLOCK);
		while ((n = read(hup_pipe[0], buf, sizeof(buf))) > 0)
			if (memchr(buf, 'q', (size_t)n))
				return NULL;
		fcntl(hup_pipe[0], F_SETFL, 0);
		reload_now(args.fs, args.se);
	}
	return NULL;
}

int reload_start(struct credfs *fs, struct fuse_session *se)
{
	struct sigaction sa;

	if (pipe2(hup_pipe, O_CLOEXEC))
		return -1;
	fcntl(hup_pipe[1], F_SETFL, O_NONBLOCK);
	args.fs = fs;
	args.se = se;
	if (pthread_create(&reload_thread, NULL, reload_main, NULL)) {
		close(hup_pipe[0]);
		close(hup_pipe[1]);
		return -1;
	}
	reload_running = 1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sighup;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	return sigaction(SIGHUP, &sa, NULL);
}

void reload_stop(void)
{
	char q = 'q';
	struct sigaction sa;

	if (!reload_running)
		return;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGHUP, &sa, NULL);
	while (write(hup_pipe[1], &q, 1) < 0 && errno == EAGAIN)
		usleep(1000);
	pthread_join(reload_thread, NULL);
	close(hup_pipe[0]);
	close(hup_pipe[1]);
	reload_running = 0;
}
