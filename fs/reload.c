#include "reload.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

void reload_free_retired(struct credfs *fs, int all)
{
	struct view **p = &fs->retired;
	time_t now = time(NULL);

	while (*p) {
		struct view *v = *p;

		if (all || now - v->retired_at > VIEW_GRACE_SECONDS) {
			*p = v->next_retired;
			view_free(v);
		} else {
			p = &v->next_retired;
		}
	}
}

static void inval_entry(struct fuse_session *se, fuse_ino_t parent,
			const char *name)
{
	int r = fuse_lowlevel_notify_inval_entry(se, parent, name, strlen(name));

	if (r && r != -ENOENT && r != -EBADF && r != -ENODEV && r != -ENOTCONN)
		log_debug("invalidating entry %s: error %d", name, -r);
}

static void inval_inode(struct fuse_session *se, fuse_ino_t ino)
{
	int r = fuse_lowlevel_notify_inval_inode(se, ino, 0, 0);

	if (r && r != -ENOENT && r != -EBADF && r != -ENODEV && r != -ENOTCONN)
		log_debug("invalidating inode %lu: error %d", (unsigned long)ino, -r);
}

/* Tells the kernel what the new view changed in the tree: entries of
 * roles that are gone, the root's attributes, every role directory's
 * attributes and config file (owner, mode and region may have changed),
 * and the issuer documents. */
static void push_tree_changes(struct fuse_session *se, const struct view *old,
			      const struct view *cur)
{
	struct node n = {0}, found;

	for (size_t i = 0; i < old->cfg->n_roles; i++) {
		const char *name = old->cfg->roles[i].name;

		if (tree_lookup(&cur->tree, FUSE_ROOT_ID, name, &found))
			inval_entry(se, FUSE_ROOT_ID, name);
	}
	inval_inode(se, FUSE_ROOT_ID);
	for (size_t i = 0; i < cur->cfg->n_roles; i++) {
		n.kind = NODE_ROLE_DIR;
		n.slot = cur->slot_of_role[i];
		inval_inode(se, tree_ino(&n));
		n.kind = NODE_ROLE_FILE;
		n.file = ROLE_CONFIG;
		inval_inode(se, tree_ino(&n));
		/* A chained role may have become a signing one or back. */
		inval_entry(se, tree_ino(&(struct node){.kind = NODE_ROLE_DIR,
							.slot = n.slot}),
			    "token");
	}
	if (old->signer || cur->signer) {
		inval_entry(se, FUSE_ROOT_ID, "keys.json");
		inval_entry(se, FUSE_ROOT_ID, ".well-known");
		n.kind = NODE_JWKS;
		inval_inode(se, tree_ino(&n));
		n.kind = NODE_DISCOVERY;
		inval_inode(se, tree_ino(&n));
	}
}

int reload_now(struct credfs *fs, struct fuse_session *se)
{
	struct cfg_error err;
	struct cfg *cfg = NULL;
	struct signer *signer = NULL;
	struct view *old, *cur;
	size_t *slots;
	char msg[sizeof(err.file) + CFG_ERROR_TEXT_MAX + 32];

	if (cfg_load(fs->config_path, &cfg, &err) ||
	    (cfg->signer.present && signer_load(cfg, &signer, &err))) {
		cfg_error_format(&err, msg, sizeof(msg));
		log_error("reload refused, the configuration in force is unchanged: %s",
			  msg);
		cfg_free(cfg);
		return -1;
	}
	slots = calloc(cfg->n_roles + 1, sizeof(*slots));
	if (!slots || engine_reload(fs->engine, cfg, signer, slots)) {
		log_error("reload refused: the engine could not take the new roles");
		free(slots);
		signer_free(signer);
		cfg_free(cfg);
		return -1;
	}
	cur = view_new(cfg, signer, slots, engine_slot_count(fs->engine));
	if (!cur) {
		/* The engine already runs the new roles; the tree keeps
		 * showing the old ones until the next reload. */
		log_error("reload: out of memory building the new tree");
		return -1;
	}
	old = atomic_exchange(&fs->view, cur);
	push_tree_changes(se, old, cur);
	old->retired_at = time(NULL);
	reload_free_retired(fs, 0);
	old->next_retired = fs->retired;
	fs->retired = old;
	log_info("reloaded %s: %zu role%s", fs->config_path, cur->cfg->n_roles,
		 cur->cfg->n_roles == 1 ? "" : "s");
	return 0;
}

struct reload_args {
	struct credfs *fs;
	struct fuse_session *se;
};

static struct reload_args args;

static void *reload_main(void *arg)
{
	char buf[64];
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
