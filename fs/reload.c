#include "reload.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "inval.h"
#include "log.h"

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
void fs_mark_revoked(struct credfs *fs, const char *name)
{
	/* Listed once: a role already marked is in the list (the mark of
	 * its first file says so, without a search of the list). */
	if (docs_is_revoked(&fs->docs, tree_role_ino(name, 0)))
		return;
	if (buf_append(&fs->revoked, name, strlen(name) + 1))
		log_warn("role %s: out of memory keeping its revocation for the next worker",
			 name);
	else
		fs->n_revoked++;
	for (int f = 0; f < ROLE_FILE_COUNT; f++)
		docs_mark_revoked(&fs->docs, tree_role_ino(name, f));
}

static void revoke_role(struct credfs *fs, const char *name)
{
	fs_mark_revoked(fs, name);
	for (int f = 0; f < ROLE_FILE_COUNT; f++) {
		uint64_t ino = tree_role_ino(name, f);

		docs_forget(&fs->docs, ino);
		inval_ino(fs->inval, ino, 1);
	}
	inval_ino(fs->inval, tree_role_ino(name, ROLE_FILE_COUNT), 0);
	log_info("role %s: owner or mode changed; files opened before are refused from now on",
		 name);
}

/* Whether two [endpoint] sections listen on the same addresses, which is
 * what endpoint.env shows. */
static int listen_equal(const struct cfg_endpoint *a, const struct cfg_endpoint *b)
{
	if (a->present != b->present || (a->present && a->n_listen != b->n_listen))
		return 0;
	for (size_t i = 0; a->present && i < a->n_listen; i++)
		if (a->listen[i].addr_len != b->listen[i].addr_len ||
		    memcmp(&a->listen[i].addr, &b->listen[i].addr, a->listen[i].addr_len))
			return 0;
	return 1;
}

/* A role whose files may show something else now (config shows the ARN,
 * region and session name; credentials.json and env the cloud's settings;
 * endpoint.env the listen address): every copy of them is dropped, the
 * kernel's and the one kept for its reads. */
static void shows_changed(struct credfs *fs, const char *name)
{
	for (int f = 0; f <= ROLE_FILE_COUNT; f++) {
		uint64_t ino = tree_role_ino(name, f);

		if (f < ROLE_FILE_COUNT)
			docs_forget(&fs->docs, ino);
		inval_ino(fs->inval, ino, 1);
	}
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
			 !cfg_exchange_equal(&was->x, &now->x) ||
			 !listen_equal(&oc->endpoint, &nc->endpoint))
			shows_changed(fs, was->name);
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

struct view *fs_prepare_generation(struct credfs *fs, struct generation *gen)
{
	struct view *v = view_prepare(gen);

	if (!v)
		log_error("reload: out of memory building the new tree; the configuration in force is unchanged");
	return v;
}

void fs_show_generation(struct credfs *fs, struct fuse_session *se,
			struct view *cur)
{
	struct view *old;

	if (view_bind(cur, fs->engine)) {
		/* Only if the engine does not run cur's generation: a bug. */
		log_error("reload: the engine does not run the configuration shown");
		view_unref(cur);
		return;
	}
	old = view_swap(&fs->views, cur);
	push_tree_changes(fs, se, old, cur);
	view_unref(old);
}
