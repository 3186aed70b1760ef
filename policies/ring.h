/* A consistent-hash ring over a pool's endpoints (virtual nodes by weight), and the 64-bit hash it places keys with. */
#ifndef SY_RING_H
#define SY_RING_H

#include <stddef.h>
#include <stdint.h>

struct sy_pool;

/* ==== Hashing ==== */

/* A 64-bit hash fed piece by piece: FNV-1a, then MurmurHash3's finalizer. */
struct sy_hash {
	uint64_t h;
};

void sy_hash_init(struct sy_hash *hs);
void sy_hash_add(struct sy_hash *hs, const void *data, size_t len);
uint64_t sy_hash_final(const struct sy_hash *hs);

/* The hash of len bytes at data, in one call. */
uint64_t sy_hash64(const void *data, size_t len);

/* ==== The ring ==== */

/* Most points a ring holds; more vnodes are scaled down to fit. */
#define SY_RING_MAX_POINTS 65536

struct sy_ring_point {
	uint64_t pos;
	uint32_t ep;			/* index in the pool */
};

struct sy_ring {
	struct sy_ring_point *points;	/* sorted by pos */
	size_t npoints;
	size_t nendpoints;		/* pool->nendpoints at build */
	size_t ndistinct;		/* endpoints with points */
};

/*
 * Builds the ring of pool: weight × vnodes points per endpoint (none for a
 * weight of 0), the point i of an endpoint at the hash of its name and i,
 * so that an endpoint keeps its points whatever the other endpoints are.
 * When the points would exceed SY_RING_MAX_POINTS, every endpoint's count
 * is scaled down (at least one each).  Returns 0 or -1 with *err.
 */
int sy_ring_build(struct sy_ring *ring, const struct sy_pool *pool,
    unsigned vnodes, char **err);

/* Frees what ring holds. */
void sy_ring_free(struct sy_ring *ring);

/* Walks the distinct endpoints of a ring clockwise from a hash. */
struct sy_ring_iter {
	const struct sy_ring *ring;
	size_t at;			/* next point to look at */
	size_t steps;			/* points looked at */
	size_t yielded;
	uint64_t small[8];		/* seen endpoints, pools up to 512 */
	uint64_t *seen;			/* small, or allocated */
};

/*
 * Starts at the first point at or after hash (wrapping to the first point),
 * found by binary search.
 */
void sy_ring_iter_start(struct sy_ring_iter *it, const struct sy_ring *ring,
    uint64_t hash);

/*
 * Sets *idx to the pool index of the next endpoint clockwise that was not
 * yielded yet and returns 1; returns 0 once every endpoint of the ring was.
 */
int sy_ring_iter_next(struct sy_ring_iter *it, size_t *idx);

/* Frees what it holds. */
void sy_ring_iter_end(struct sy_ring_iter *it);

#endif
