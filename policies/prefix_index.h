/* The prefix index of prefix_aware routing: a prompt cut into chained block hashes, and per endpoint an LRU set of the blocks it is believed to hold. */
#ifndef SY_PREFIX_INDEX_H
#define SY_PREFIX_INDEX_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

struct sy_req;

/* ==== Chained block hashes ==== */

/*
 * A prompt cut into blocks of block_chars bytes, block i's hash standing
 * for the whole prefix up to its end (it is seeded with block i − 1's).
 * A last, partial block is not hashed (an engine caches whole blocks only).
 */
struct sy_prefix_chain {
	uint64_t *hashes;		/* n of them, owned */
	size_t n;
	size_t alloc;			/* room in hashes */
	uint64_t sample_tokens;		/* estimated tokens (sy_text_tokens)
					   of its first SY_PREFIX_SAMPLE blocks */
	size_t max;			/* most blocks hashed */
	size_t block_chars;
	unsigned char *buf;		/* the block being filled, owned */
	size_t fill;
	uint64_t prev;			/* the last block's hash */
};

/* Blocks whose tokens are counted: the rest are estimated at their rate. */
#define SY_PREFIX_SAMPLE 8

/* Starts an empty chain of at most max blocks of block_chars bytes. */
void sy_prefix_chain_init(struct sy_prefix_chain *c, size_t block_chars,
    size_t max);

/*
 * Feeds len bytes at data.  Returns 1 while the chain takes more, 0 once
 * it holds its max blocks (the rest of the prompt is not looked at).
 */
int sy_prefix_chain_add(struct sy_prefix_chain *c, const void *data,
    size_t len);

/*
 * The estimated tokens of the first k blocks of c: those of its first
 * SY_PREFIX_SAMPLE blocks, counted, at the same rate per block for the
 * rest (a bounded cost for a long prompt).
 */
uint64_t sy_prefix_chain_tokens(const struct sy_prefix_chain *c, size_t k);

/* Frees what c holds. */
void sy_prefix_chain_free(struct sy_prefix_chain *c);

/*
 * Feeds the prompt of req's canonical form to fn(arg, bytes, len) until
 * fn returns 0: chat messages in order, each its role, '\n', its text
 * (the content string, or its text parts), '\n'; a completions prompt or
 * an embeddings input (a string, or the first element of an array; token
 * ids as decimal numbers each followed by ',').  Returns the bytes fed.
 */
typedef int (*sy_prompt_fn)(void *arg, const char *s, size_t len);
size_t sy_prompt_feed(const struct sy_req *req, sy_prompt_fn fn, void *arg);

/* ==== The blocks one endpoint holds ==== */

/*
 * An LRU set of block hashes with its own lock.  A prompt's blocks are
 * touched last to first, so a block is never older than the blocks of its
 * prefix, and evicting the oldest keeps every chain's held part a prefix:
 * the longest held prefix is found by binary search.
 */
struct sy_prefix_set {
	pthread_mutex_t lock;
	size_t cap;			/* most blocks held */
	size_t used;
	size_t alloc;			/* blocks the arrays have room for */
	uint64_t *key;
	uint64_t *stamp;		/* the insert that last touched it */
	uint32_t *prev;
	uint32_t *next;
	uint32_t head;			/* most recent */
	uint32_t tail;
	uint32_t *table;		/* index + 1, 0: empty; linear probing */
	size_t mask;
	uint64_t clock;			/* inserts so far */
};

/* An empty set of at most cap blocks (0: it holds none). */
void sy_prefix_set_init(struct sy_prefix_set *s, size_t cap);

/* Frees what s holds. */
void sy_prefix_set_free(struct sy_prefix_set *s);

/*
 * The number of leading blocks of hashes[0..n) that s holds (the longest
 * held prefix).  Takes the set's lock.
 */
size_t sy_prefix_set_match(struct sy_prefix_set *s, const uint64_t *hashes,
    size_t n);

/*
 * Touches hashes[0..n) (adding the missing ones, evicting the oldest
 * beyond cap), last to first.  Returns the insert's stamp: every block
 * with an older stamp was held before it.  Takes the set's lock.
 */
uint64_t sy_prefix_set_insert(struct sy_prefix_set *s,
    const uint64_t *hashes, size_t n);

/*
 * Evicts every block last touched before the insert of stamp (the engine
 * was found to have lost them: under LRU all that is older went too).
 * Returns the blocks evicted.  Takes the set's lock.
 */
size_t sy_prefix_set_evict_before(struct sy_prefix_set *s, uint64_t stamp);

/*
 * Fills dst, an unshared new set, with the blocks src holds, in src's
 * order of recency, as many as dst's capacity takes (the most recent).
 * Takes src's lock.
 */
void sy_prefix_set_copy(struct sy_prefix_set *dst, struct sy_prefix_set *src);

/* Changes the most blocks s holds (evicting the oldest beyond it). */
void sy_prefix_set_resize(struct sy_prefix_set *s, size_t cap);

/* Blocks held now, and the bytes the set takes. */
size_t sy_prefix_set_blocks(struct sy_prefix_set *s);
size_t sy_prefix_set_bytes(struct sy_prefix_set *s);

/* Bytes one held block takes (its node and its table cells). */
#define SY_PREFIX_BLOCK_BYTES	(8 + 8 + 4 + 4 + 2 * 4)

#endif
