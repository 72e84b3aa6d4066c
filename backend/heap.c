#include "heap.h"

#include <errno.h>
#include <stdlib.h>

void heap_node_init(struct heap_node *node)
{
	node->key = 0;
	node->pos = HEAP_NOWHERE;
}

static void place(struct heap *h, size_t i, struct heap_node *node)
{
	h->items[i] = node;
	node->pos = i;
}

static void sift_up(struct heap *h, size_t i)
{
	struct heap_node *node = h->items[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (h->items[parent]->key <= node->key)
			break;
		place(h, i, h->items[parent]);
		i = parent;
	}
	place(h, i, node);
}

static void sift_down(struct heap *h, size_t i)
{
	struct heap_node *node = h->items[i];

	for (;;) {
		size_t child = 2 * i + 1;

		if (child >= h->n)
			break;
		if (child + 1 < h->n &&
		    h->items[child + 1]->key < h->items[child]->key)
			child++;
		if (node->key <= h->items[child]->key)
			break;
		place(h, i, h->items[child]);
		i = child;
	}
	place(h, i, node);
}

/* Whether node is in h itself (heap_contains only says it is in some
 * heap: a node moves between the engine's queues). */
static int member(const struct heap *h, const struct heap_node *node)
{
	return node->pos < h->n && h->items[node->pos] == node;
}

int heap_set(struct heap *h, struct heap_node *node, int64_t key)
{
	if (heap_contains(node) && !member(h, node))
		return -EINVAL;		/* in another heap: take it out first */
	if (heap_contains(node)) {
		int64_t old = node->key;

		node->key = key;
		if (key < old)
			sift_up(h, node->pos);
		else
			sift_down(h, node->pos);
		return 0;
	}
	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 64;
		struct heap_node **items = realloc(h->items, cap * sizeof(*items));

		if (!items)
			return -ENOMEM;
		h->items = items;
		h->cap = cap;
	}
	node->key = key;
	place(h, h->n++, node);
	sift_up(h, node->pos);
	return 0;
}

void heap_remove(struct heap *h, struct heap_node *node)
{
	struct heap_node *last;
	size_t i = node->pos;

	if (!member(h, node))
		return;
	node->pos = HEAP_NOWHERE;
	last = h->items[--h->n];
	if (last == node)
		return;
	place(h, i, last);
	sift_down(h, i);
	sift_up(h, last->pos);
}

struct heap_node *heap_top(const struct heap *h)
{
	return h->n ? h->items[0] : NULL;
}

struct heap_node *heap_pop_upto(struct heap *h, int64_t limit)
{
	struct heap_node *node = heap_top(h);

	if (!node || node->key > limit)
		return NULL;
	heap_remove(h, node);
	return node;
}

void heap_free(struct heap *h)
{
	for (size_t i = 0; i < h->n; i++)
		h->items[i]->pos = HEAP_NOWHERE;
	free(h->items);
	h->items = NULL;
	h->n = h->cap = 0;
}
