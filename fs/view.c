#include "view.h"

#include <stdint.h>
#include <stdlib.h>

struct view *view_new(struct cfg *cfg, struct signer *signer,
		      size_t *slot_of_role, size_t n_slots)
{
	struct view *v = calloc(1, sizeof(*v));

	if (!v)
		goto fail;
	v->cfg = cfg;
	v->signer = signer;
	v->slot_of_role = slot_of_role;
	v->n_slots = n_slots;
	cfg = NULL;
	signer = NULL;
	slot_of_role = NULL;
	v->role_of_slot = malloc((n_slots + 1) * sizeof(*v->role_of_slot));
	if (!v->role_of_slot)
		goto fail_view;
	for (size_t s = 0; s < n_slots; s++)
		v->role_of_slot[s] = SIZE_MAX;
	for (size_t i = 0; i < v->cfg->n_roles; i++)
		v->role_of_slot[v->slot_of_role[i]] = i;
	if (v->signer) {
		v->jwks = signer_jwks(v->signer);
		v->discovery = signer_discovery(v->signer);
		if (!v->jwks || !v->discovery)
			goto fail_view;
	}
	if (tree_init(&v->tree, v->cfg, v->signer != NULL, v->slot_of_role,
		      v->role_of_slot, n_slots))
		goto fail_view;
	return v;

fail_view:
	view_free(v);
fail:
	free(slot_of_role);
	signer_free(signer);
	cfg_free(cfg);
	return NULL;
}

void view_free(struct view *v)
{
	if (!v)
		return;
	tree_destroy(&v->tree);
	free(v->discovery);
	free(v->jwks);
	free(v->role_of_slot);
	free(v->slot_of_role);
	signer_free(v->signer);
	cfg_free(v->cfg);
	free(v);
}
