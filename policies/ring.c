/* A consistent-hash ring over a pool's endpoints (virtual nodes by weight), and the 64-bit hash it places keys with. */
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "config.h"
#include "ring.h"

/* ==== Hashing ==== */

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

void
sy_hash_init(struct sy_hash *hs)
{
	hs->h = FNV_OFFSET;
}

void
sy_hash_add(struct sy_hash *hs, const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t h = hs->h;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= p[i];
		h *= FNV_PRIME;
	}
	hs->h = h;
}

uint64_t
sy_hash_final(const struct sy_hash *hs)
{
	uint64_t x = hs->h;

	/* MurmurHash3 fmix64: every input bit reaches every output bit. */
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

uint64_t
sy_hash64(const void *data, size_t len)
{
	struct sy_hash hs;

	sy_hash_init(&hs);
	sy_hash_add(&hs, data, len);
	return sy_hash_final(&hs);
}

/* ==== The ring ==== */

/* Orders points by position, then by endpoint (a stable order for equal positions). */
static int
point_cmp(const void *a, const void *b)
{
	const struct sy_ring_point *x = a, *y = b;

	if (x->pos != y->pos)
		return x->pos < y->pos ? -1 : 1;
	return (x->ep > y->ep) - (x->ep < y->ep);
}

/* Points of an endpoint of weight w: w × vnodes, scaled by max/total when total exceeds max. */
static uint64_t
ring_points(unsigned w, unsigned vnodes, uint64_t total)
{
	uint64_t k = (uint64_t)w * vnodes;

	if (w == 0)
		return 0;
	if (total > SY_RING_MAX_POINTS) {
		k = k * SY_RING_MAX_POINTS / total;
		if (k == 0)
			k = 1;
	}
	return k;
}

int
sy_ring_build(struct sy_ring *ring, const struct sy_pool *pool,
    unsigned vnodes, char **err)
{
	size_t n = pool->nendpoints, i, at = 0;
	uint64_t total = 0, k, j;
	struct sy_hash name, hs;
	unsigned char le[4];

	memset(ring, 0, sizeof *ring);
	ring->nendpoints = n;
	for (i = 0; i < n; i++)
		total += (uint64_t)pool->endpoints[i]->weight * vnodes;
	for (i = 0, k = 0; i < n; i++) {
		k += ring_points(pool->endpoints[i]->weight, vnodes, total);
		ring->ndistinct += pool->endpoints[i]->weight != 0;
	}
	if (k == 0)
		return 0;
	if ((ring->points = calloc(k, sizeof *ring->points)) == NULL) {
		sy_policy_fail(err, "out of memory");
		return -1;
	}
	for (i = 0; i < n; i++) {
		const char *nm = pool->endpoints[i]->name;

		sy_hash_init(&name);
		sy_hash_add(&name, nm, strlen(nm));
		k = ring_points(pool->endpoints[i]->weight, vnodes, total);
		for (j = 0; j < k; j++) {
			/* The point j of an endpoint: the hash of its name
			   followed by j as 4 little-endian bytes. */
			le[0] = (unsigned char)j;
			le[1] = (unsigned char)(j >> 8);
			le[2] = (unsigned char)(j >> 16);
			le[3] = (unsigned char)(j >> 24);
			hs = name;
			sy_hash_add(&hs, le, sizeof le);
			ring->points[at].pos = sy_hash_final(&hs);
			ring->points[at].ep = (uint32_t)i;
			at++;
		}
	}
	ring->npoints = at;
	qsort(ring->points, ring->npoints, sizeof *ring->points, point_cmp);
	return 0;
}

void
sy_ring_free(struct sy_ring *ring)
{
	free(ring->points);
	ring->points = NULL;
	ring->npoints = 0;
}

void
sy_ring_iter_start(struct sy_ring_iter *it, const struct sy_ring *ring,
    uint64_t hash)
{
	size_t lo = 0, hi = ring->npoints, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (ring->points[mid].pos < hash)
			lo = mid + 1;
		else
			hi = mid;
	}
	it->ring = ring;
	it->at = lo == ring->npoints ? 0 : lo;
	it->steps = 0;
	it->yielded = 0;
	memset(it->small, 0, sizeof it->small);
	it->seen = it->small;
	if (ring->nendpoints > 64 * (sizeof it->small / sizeof it->small[0]) &&
	    (it->seen = calloc((ring->nendpoints + 63) / 64,
	    sizeof *it->seen)) == NULL)
		it->steps = ring->npoints;	/* no memory: yields nothing */
}

int
sy_ring_iter_next(struct sy_ring_iter *it, size_t *idx)
{
	const struct sy_ring *ring = it->ring;
	uint32_t ep;

	while (it->yielded < ring->ndistinct && it->steps < ring->npoints) {
		ep = ring->points[it->at].ep;
		it->steps++;
		if (++it->at == ring->npoints)
			it->at = 0;
		if (it->seen[ep / 64] >> (ep % 64) & 1)
			continue;
		it->seen[ep / 64] |= (uint64_t)1 << (ep % 64);
		it->yielded++;
		*idx = ep;
		return 1;
	}
	return 0;
}

void
sy_ring_iter_end(struct sy_ring_iter *it)
{
	if (it->seen != it->small)
		free(it->seen);
	it->seen = it->small;
}
