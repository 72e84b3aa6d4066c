/*
 * The min-heap: random inserts, key moves and removals checked against a
 * plain array after every step (the top, each node's recorded position,
 * the heap property), then everything popped in key order.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "heap.h"

#define NODES 512

struct item {
	struct heap_node node;
	int in;			/* the reference: in the heap or not */
	int64_t key;		/* the reference key */
};

static struct item items[NODES];

/* A small, seeded generator so every run sees the same sequence. */
static uint64_t rng_state;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static int64_t random_key(void)
{
	/* Few distinct keys, so equal keys are common; some negative. */
	return (int64_t)(rng() % 200) - 50;
}

static void reset(void)
{
	for (size_t i = 0; i < NODES; i++) {
		heap_node_init(&items[i].node);
		items[i].in = 0;
		items[i].key = 0;
	}
}

/* The heap agrees with the reference: same members, positions recorded
 * right, every parent no greater than its children, top the smallest. */
static int consistent(const struct heap *h)
{
	size_t members = 0;
	int64_t min = INT64_MAX;

	for (size_t i = 0; i < NODES; i++) {
		const struct item *it = &items[i];

		if (it->in != heap_contains(&it->node))
			return 0;
		if (!it->in)
			continue;
		members++;
		if (it->node.pos >= h->n || h->items[it->node.pos] != &it->node ||
		    it->node.key != it->key)
			return 0;
		if (it->key < min)
			min = it->key;
	}
	if (members != h->n)
		return 0;
	for (size_t i = 1; i < h->n; i++)
		if (h->items[(i - 1) / 2]->key > h->items[i]->key)
			return 0;
	if (h->n == 0)
		return heap_top(h) == NULL;
	return heap_top(h) && heap_top(h)->key == min;
}

static void empty_heap(void)
{
	struct heap h = { 0 };
	struct heap_node n;

	heap_node_init(&n);
	CHECK(!heap_contains(&n));
	CHECK(heap_top(&h) == NULL);
	CHECK(heap_pop_upto(&h, INT64_MAX) == NULL);
	/* Removing what is not in the heap does nothing. */
	heap_remove(&h, &n);
	CHECK(h.n == 0);
	heap_free(&h);
}

static void set_moves_a_member(void)
{
	struct heap h = { 0 };
	struct heap_node a, b, c;

	heap_node_init(&a);
	heap_node_init(&b);
	heap_node_init(&c);
	CHECK(heap_set(&h, &a, 10) == 0);
	CHECK(heap_set(&h, &b, 20) == 0);
	CHECK(heap_set(&h, &c, 30) == 0);
	CHECK(heap_top(&h) == &a);
	/* Setting a member again moves it; it is not added twice. */
	CHECK(heap_set(&h, &c, 5) == 0);
	CHECK(h.n == 3);
	CHECK(heap_top(&h) == &c);
	CHECK(heap_set(&h, &c, 40) == 0);
	CHECK(h.n == 3);
	CHECK(heap_top(&h) == &a);
	CHECK(heap_set(&h, &a, 10) == 0);	/* same key: still there */
	CHECK(heap_top(&h) == &a && h.n == 3);
	heap_free(&h);
	/* heap_free leaves every node out. */
	CHECK(!heap_contains(&a) && !heap_contains(&b) && !heap_contains(&c));
	CHECK(h.items == NULL && h.n == 0);
}

static void pop_upto_respects_the_limit(void)
{
	struct heap h = { 0 };
	struct heap_node n[4];
	static const int64_t keys[] = { 300, 100, 400, 200 };

	for (int i = 0; i < 4; i++) {
		heap_node_init(&n[i]);
		CHECK(heap_set(&h, &n[i], keys[i]) == 0);
	}
	CHECK(heap_pop_upto(&h, 99) == NULL);
	CHECK(h.n == 4);
	CHECK(heap_pop_upto(&h, 100) == &n[1]);	/* the limit is inclusive */
	CHECK(!heap_contains(&n[1]));
	CHECK(heap_pop_upto(&h, 250) == &n[3]);
	CHECK(heap_pop_upto(&h, 250) == NULL);
	CHECK(heap_pop_upto(&h, INT64_MAX) == &n[0]);
	CHECK(heap_pop_upto(&h, INT64_MAX) == &n[2]);
	CHECK(heap_pop_upto(&h, INT64_MAX) == NULL);
	/* Extreme keys. */
	CHECK(heap_set(&h, &n[0], INT64_MAX) == 0);
	CHECK(heap_set(&h, &n[1], INT64_MIN) == 0);
	CHECK(heap_pop_upto(&h, INT64_MIN) == &n[1]);
	CHECK(heap_pop_upto(&h, INT64_MAX - 1) == NULL);
	CHECK(heap_pop_upto(&h, INT64_MAX) == &n[0]);
	heap_free(&h);
}

/* Random operations against the reference, checked after each one. */
static void random_against_reference(void)
{
	struct heap h = { 0 };
	int broken = 0;

	for (int round = 0; round < 4 && !broken; round++) {
		rng_state = 0x9E3779B97F4A7C15ULL + (uint64_t)round;
		reset();
		for (int step = 0; step < 20000; step++) {
			struct item *it = &items[rng() % NODES];
			unsigned op = (unsigned)(rng() % 10);

			if (op < 6) {		/* insert or move */
				int64_t k = random_key();

				if (heap_set(&h, &it->node, k)) {
					CHECK(!"heap_set");
					broken = 1;
					break;
				}
				it->in = 1;
				it->key = k;
			} else if (op < 9) {	/* remove (maybe absent) */
				heap_remove(&h, &it->node);
				it->in = 0;
			} else {		/* pop the top */
				struct heap_node *top = heap_pop_upto(&h, INT64_MAX);

				if (top) {
					struct item *t = (struct item *)top;

					t->in = 0;
				}
			}
			if (!consistent(&h)) {
				fprintf(stderr, "    round %d step %d op %u\n",
					round, step, op);
				CHECK(!"heap consistent with the reference");
				broken = 1;
				break;
			}
		}
		/* Popping everything gives the keys in order. */
		{
			int64_t last = INT64_MIN;
			size_t popped = 0, want = h.n;
			struct heap_node *n;

			while ((n = heap_pop_upto(&h, INT64_MAX))) {
				struct item *t = (struct item *)n;

				CHECK(n->key >= last);
				CHECK(n->key == t->key);
				last = n->key;
				t->in = 0;
				popped++;
			}
			CHECK(popped == want);
			CHECK(h.n == 0);
			CHECK(consistent(&h));
		}
	}
	heap_free(&h);
}

/* Growth past the first allocation, then removal from the middle. */
static void large(void)
{
	enum { N = 10000 };
	static struct heap_node n[N];
	struct heap h = { 0 };
	int64_t last = INT64_MIN;
	size_t count = 0;

	for (size_t i = 0; i < N; i++) {
		heap_node_init(&n[i]);
		CHECK(heap_set(&h, &n[i], (int64_t)((i * 7919) % N)) == 0);
	}
	CHECK(h.n == N);
	for (size_t i = 0; i < N; i += 2)
		heap_remove(&h, &n[i]);
	CHECK(h.n == N / 2);
	for (struct heap_node *t; (t = heap_pop_upto(&h, INT64_MAX)); count++) {
		CHECK(t->key >= last);
		CHECK((size_t)(t - n) % 2 == 1);
		last = t->key;
	}
	CHECK(count == N / 2);
	heap_free(&h);
}

/* Removing a node from a heap it is not in leaves both heaps as they
 * were, also when it is in another one (the engine's jobs move between
 * its preparation queue and the limiter's queue, and taking a job out
 * tries both).  It used to take the last item out of the wrong heap: an
 * empty one wrapped its count around and wrote before its array. */
static void remove_from_the_other_heap(void)
{
	struct heap a = {0}, b = {0};
	struct heap_node x, y, z;

	heap_node_init(&x);
	heap_node_init(&y);
	heap_node_init(&z);
	CHECK(heap_set(&a, &x, 5) == 0);
	CHECK(heap_set(&a, &y, 7) == 0);
	heap_remove(&b, &x);			/* b is empty */
	CHECK(b.n == 0 && heap_top(&b) == NULL);
	CHECK(a.n == 2 && heap_top(&a) == &x && heap_contains(&x));
	CHECK(heap_set(&b, &z, 1) == 0);
	heap_remove(&b, &y);			/* y is in a, at a position b has */
	CHECK(b.n == 1 && heap_top(&b) == &z);
	CHECK(a.n == 2 && heap_contains(&y));
	heap_remove(&a, &y);
	CHECK(a.n == 1 && !heap_contains(&y) && heap_top(&a) == &x);
	heap_remove(&a, &y);			/* in no heap now */
	CHECK(a.n == 1);
	/* Setting a key through the wrong heap is refused, not done. */
	CHECK(heap_set(&b, &x, 0) == -EINVAL);
	CHECK(heap_top(&a) == &x && x.key == 5 && b.n == 1);
	heap_free(&a);
	heap_free(&b);
}

static const struct check_case cases[] = {
	CHECK_CASE(empty_heap),
	CHECK_CASE(set_moves_a_member),
	CHECK_CASE(pop_upto_respects_the_limit),
	CHECK_CASE(random_against_reference),
	CHECK_CASE(large),
	CHECK_CASE(remove_from_the_other_heap),
};

int main(void)
{
	return CHECK_RUN(cases);
}
