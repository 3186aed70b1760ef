/* sy-sim: the prefix cache, an LRU set of chained token-block hashes. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define NIL UINT_MAX

/*
 * Blocks live in arrays indexed 0..cap-1, on a doubly linked LRU list (head
 * most recent) and in an open-addressing table with linear probing, whose
 * cells hold index + 1 (0: empty).
 */
struct sim_cache {
	unsigned	 cap;
	unsigned	 used;
	uint64_t	*key;
	unsigned	*prev;
	unsigned	*next;
	unsigned	 head;
	unsigned	 tail;
	unsigned	*table;
	unsigned	 mask;
};

/* A cache of at most nblocks blocks; with 0 blocks it never hits. */
struct sim_cache *
sim_cache_new(unsigned nblocks)
{
	struct sim_cache	*c = sim_xcalloc(1, sizeof *c);
	unsigned		 size = 16;

	c->cap = nblocks;
	while (size < 2 * (uint64_t)nblocks)
		size *= 2;
	c->mask = size - 1;
	c->key = sim_xcalloc(nblocks, sizeof *c->key);
	c->prev = sim_xcalloc(nblocks, sizeof *c->prev);
	c->next = sim_xcalloc(nblocks, sizeof *c->next);
	c->table = sim_xcalloc(size, sizeof *c->table);
	c->head = c->tail = NIL;
	return (c);
}

/* Frees c. */
void
sim_cache_free(struct sim_cache *c)
{
	if (c == NULL)
		return;
	free(c->key);
	free(c->prev);
	free(c->next);
	free(c->table);
	free(c);
}

/* Forgets every block of c. */
void
sim_cache_clear(struct sim_cache *c)
{
	memset(c->table, 0, (c->mask + 1) * sizeof *c->table);
	c->used = 0;
	c->head = c->tail = NIL;
}

/* The number of blocks c holds. */
unsigned
sim_cache_blocks(const struct sim_cache *c)
{
	return (c->used);
}

/* Table cell where key lives or would go. */
static unsigned
cache_cell(const struct sim_cache *c, uint64_t key)
{
	unsigned	i = (unsigned)key & c->mask;

	while (c->table[i] != 0 && c->key[c->table[i] - 1] != key)
		i = (i + 1) & c->mask;
	return (i);
}

/* Removes the block in cell i from the table (backward-shift deletion). */
static void
cache_unhash(struct sim_cache *c, unsigned i)
{
	unsigned	j = i, home;

	for (;;) {
		j = (j + 1) & c->mask;
		if (c->table[j] == 0)
			break;
		home = (unsigned)c->key[c->table[j] - 1] & c->mask;
		if (((j - home) & c->mask) >= ((j - i) & c->mask)) {
			c->table[i] = c->table[j];
			i = j;
		}
	}
	c->table[i] = 0;
}

/* Takes block idx off the LRU list. */
static void
cache_unlink(struct sim_cache *c, unsigned idx)
{
	if (c->prev[idx] != NIL)
		c->next[c->prev[idx]] = c->next[idx];
	else
		c->head = c->next[idx];
	if (c->next[idx] != NIL)
		c->prev[c->next[idx]] = c->prev[idx];
	else
		c->tail = c->prev[idx];
}

/* Puts block idx at the head (most recent end) of the LRU list. */
static void
cache_link(struct sim_cache *c, unsigned idx)
{
	c->prev[idx] = NIL;
	c->next[idx] = c->head;
	if (c->head != NIL)
		c->prev[c->head] = idx;
	c->head = idx;
	if (c->tail == NIL)
		c->tail = idx;
}

/* Adds key, which c does not hold, evicting the least recent block if full. */
static void
cache_insert(struct sim_cache *c, uint64_t key, unsigned cell)
{
	unsigned	idx;

	if (c->used < c->cap)
		idx = c->used++;
	else {
		idx = c->tail;
		cache_unlink(c, idx);
		cache_unhash(c, cache_cell(c, c->key[idx]));
		cell = cache_cell(c, key);
	}
	c->key[idx] = key;
	c->table[cell] = idx + 1;
	cache_link(c, idx);
}

/*
 * Looks up the n chained block hashes of one prompt, makes each one the
 * most recent, and adds those missing.  Returns how many leading blocks were
 * already there: a block counts only when its whole prefix did.
 */
unsigned
sim_cache_use(struct sim_cache *c, const uint64_t *blocks, unsigned n)
{
	unsigned	i, cell, hits = 0;
	int		matching = 1;

	if (c->cap == 0)
		return (0);
	for (i = 0; i < n; i++) {
		cell = cache_cell(c, blocks[i]);
		if (c->table[cell] != 0) {
			cache_unlink(c, c->table[cell] - 1);
			cache_link(c, c->table[cell] - 1);
			if (matching)
				hits++;
			continue;
		}
		matching = 0;
		cache_insert(c, blocks[i], cell);
	}
	return (hits);
}
