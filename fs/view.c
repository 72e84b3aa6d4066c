#include "view.h"

#include <stdlib.h>

struct view *view_prepare(struct generation *gen)
{
	const struct cfg *cfg = gen->cfg;
	struct view *v = calloc(1, sizeof(*v));

	if (!v)
		return NULL;
	atomic_init(&v->refs, 1);
	v->gen = generation_ref(gen);
	v->roles = calloc(cfg->n_roles + 1, sizeof(*v->roles));
	if (!v->roles)
		goto fail;
	if (gen->signer) {
		v->jwks = signer_jwks(gen->signer);
		v->discovery = signer_discovery(gen->signer);
		if (!v->jwks || !v->discovery)
			goto fail;
	}
	if (tree_init(&v->tree, cfg, gen->signer != NULL))
		goto fail;
	return v;
fail:
	view_unref(v);
	return NULL;
}

int view_bind(struct view *v, struct engine *e)
{
	const struct cfg *cfg = v->gen->cfg;

	for (size_t i = 0; i < cfg->n_roles; i++) {
		v->roles[i] = engine_role(e, cfg->roles[i].name);
		if (!v->roles[i])
			return -1;
	}
	return 0;
}

struct view *view_new(struct engine *e, struct generation *gen)
{
	struct view *v = view_prepare(gen);

	if (v && view_bind(v, e)) {
		view_unref(v);
		return NULL;
	}
	return v;
}

struct view *view_ref(struct view *v)
{
	if (v)
		atomic_fetch_add(&v->refs, 1);
	return v;
}

void view_unref(struct view *v)
{
	if (!v || atomic_fetch_sub(&v->refs, 1) != 1)
		return;
	tree_destroy(&v->tree);
	for (size_t i = 0; v->roles && i < v->gen->cfg->n_roles; i++)
		role_unref(v->roles[i]);
	free(v->roles);
	free(v->jwks);
	free(v->discovery);
	generation_unref(v->gen);
	free(v);
}

void view_slot_init(struct view_slot *s, struct view *v)
{
	pthread_mutex_init(&s->lock, NULL);
	s->current = v;
}

struct view *view_get(struct view_slot *s)
{
	struct view *v;

	pthread_mutex_lock(&s->lock);
	v = view_ref(s->current);
	pthread_mutex_unlock(&s->lock);
	return v;
}

struct view *view_swap(struct view_slot *s, struct view *v)
{
	struct view *old;

	pthread_mutex_lock(&s->lock);
	old = s->current;
	s->current = v;
	pthread_mutex_unlock(&s->lock);
	return old;
}

void view_slot_destroy(struct view_slot *s)
{
	view_unref(s->current);
	s->current = NULL;
	pthread_mutex_destroy(&s->lock);
}
