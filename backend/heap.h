/*
 * A binary min-heap keyed by a 64-bit number.  Nodes are embedded in their
 * owners (struct heap_node), know their position, and so can be moved or
 * removed in O(log n).  The engine keeps its timers in one (the key is a
 * deadline) and its queue of requests waiting for the limiter in another
 * (the key is the priority).  The timer heap holds only armed timers,
 * which is what makes an idle daemon cost nothing however many roles it
 * has: the timer thread sleeps until the earliest deadline, and there is
 * none for a role that has nothing pending.  Not thread-safe: the caller
 * locks.
 */
#ifndef CREDFS_HEAP_H
#define CREDFS_HEAP_H

#include <stddef.h>
#include <stdint.h>
#include "compiler.h"

#define HEAP_NOWHERE ((size_t)-1)

struct heap_node {
	int64_t key;		/* valid while in a heap */
	size_t pos;		/* index in the heap, HEAP_NOWHERE when out */
};

struct heap {
	struct heap_node **items;
	size_t n, cap;
};

void heap_node_init(struct heap_node *node);
static inline int heap_contains(const struct heap_node *node)
{
	return node->pos != HEAP_NOWHERE;
}

/* Puts node in h with key (moving it if it is in h already).  0, or
 * -ENOMEM, or -EINVAL when node is in another heap (node unchanged). */
int heap_set(struct heap *h, struct heap_node *node, int64_t key) WUR;
/* Takes node out of h; nothing if it is not in h (also when it is in
 * another heap). */
void heap_remove(struct heap *h, struct heap_node *node);
/* The node with the smallest key, or NULL. */
struct heap_node *heap_top(const struct heap *h);
/* Removes and returns the top node if its key is <= limit, else NULL. */
struct heap_node *heap_pop_upto(struct heap *h, int64_t limit);
void heap_free(struct heap *h);

#endif
