/* prefix_affinity: requests that share a prompt prefix go to the same replica (its prefix cache), by consistent hashing with bounded loads. */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "config.h"
#include "policy.h"
#include "prefix_index.h"
#include "req.h"
#include "ring.h"
#include "swrr.h"

static const char *const prefix_params[] = {
	"prefix_chars", "epsilon", "vnodes", NULL
};

struct prefix_state {
	size_t prefix_chars;		/* bytes of the prompt hashed */
	double epsilon;			/* load allowed above the mean */
	struct sy_ring ring;
	struct sy_swrr rr;		/* for requests without a prompt */
};

static void
prefix_destroy(void *state)
{
	struct prefix_state *st = state;

	sy_ring_free(&st->ring);
	sy_swrr_free(&st->rr);
	free(st);
}

static void *
prefix_create(const json_t *params, const struct sy_pool *pool, char **err)
{
	struct prefix_state *st;
	long long chars, vnodes;
	double eps;

	if (sy_params_check(params, "prefix_affinity", prefix_params,
	    err) == -1 ||
	    sy_param_int(params, "prefix_affinity", "prefix_chars", 1024, 1,
	    1048576, &chars, err) == -1 ||
	    sy_param_number(params, "prefix_affinity", "epsilon", 0.25, 0, 100,
	    &eps, err) == -1 ||
	    sy_param_int(params, "prefix_affinity", "vnodes", 100, 1, 1000,
	    &vnodes, err) == -1)
		return NULL;
	if ((st = calloc(1, sizeof *st)) == NULL)
		return sy_policy_fail(err, "out of memory");
	st->prefix_chars = (size_t)chars;
	st->epsilon = eps;
	if (sy_swrr_init(&st->rr, pool, err) == -1) {
		free(st);
		return NULL;
	}
	if (sy_ring_build(&st->ring, pool, (unsigned)vnodes, err) == -1) {
		prefix_destroy(st);
		return NULL;
	}
	return st;
}

/* ==== The prompt's prefix ==== */

/* A hash over the first bytes of the prompt's text, at most left more. */
struct prefix_hash {
	struct sy_hash hs;
	size_t left;
};

/* Feeds up to the prefix's remaining length of len bytes at s (a sy_prompt_fn). */
static int
prefix_add(void *arg, const char *s, size_t len)
{
	struct prefix_hash *p = arg;

	if (len > p->left)
		len = p->left;
	sy_hash_add(&p->hs, s, len);
	p->left -= len;
	return p->left > 0;
}

/* Hashes the prompt's first prefix_chars bytes into *hash; 0 when the request has no prompt text. */
static int
prefix_of(const struct prefix_state *st, const struct sy_req *req,
    uint64_t *hash)
{
	struct prefix_hash p;
	size_t fed;

	sy_hash_init(&p.hs);
	p.left = st->prefix_chars;
	fed = sy_prompt_feed(req, prefix_add, &p);
	*hash = sy_hash_final(&p.hs);
	return fed > 0;
}

/* ==== Placement ==== */

/*
 * Walks the ring clockwise from the prompt's hash and takes the first
 * usable endpoint whose load stays within its bound: in_flight + 1 ≤
 * ceil((1 + epsilon) × (total in flight + 1) × weight / total weight),
 * totals over the usable endpoints (Mirrokni, Thorup, Zadimoghaddam:
 * consistent hashing with bounded loads).
 */
static struct sy_endpoint *
prefix_pick(void *state, const struct sy_pool *pool, const struct sy_req *req,
    const char **reason)
{
	struct prefix_state *st = state;
	struct sy_endpoint *ep, *fallback = NULL;
	struct sy_ring_iter it;
	uint64_t hash, total_w = 0;
	long total = 0, inflight;
	double cap;
	size_t i, idx;
	int skipped, first = 1;

	if (!prefix_of(st, req, &hash)) {
		ep = sy_swrr_pick(&st->rr, pool, req, &skipped);
		*reason = ep != NULL ? "no-prefix" : "all-busy";
		return ep;
	}
	*reason = "all-busy";
	if (pool->nendpoints != st->ring.nendpoints)
		return NULL;
	for (i = 0; i < pool->nendpoints; i++) {
		ep = pool->endpoints[i];
		if (!sy_endpoint_usable(ep, req))
			continue;
		inflight = atomic_load_explicit(&ep->stats->in_flight,
		    memory_order_relaxed);
		total += inflight > 0 ? inflight : 0;
		total_w += ep->weight;
	}
	if (total_w == 0)
		return NULL;
	sy_ring_iter_start(&it, &st->ring, hash);
	while (sy_ring_iter_next(&it, &idx)) {
		ep = pool->endpoints[idx];
		if (sy_endpoint_usable(ep, req)) {
			inflight = atomic_load_explicit(&ep->stats->in_flight,
			    memory_order_relaxed);
			cap = ceil((1 + st->epsilon) * (double)(total + 1) *
			    ep->weight / (double)total_w - 1e-9);
			if ((double)(inflight + 1) <= cap) {
				*reason = first ? "prefix-hit" : "overflow";
				sy_ring_iter_end(&it);
				return ep;
			}
			if (fallback == NULL)
				fallback = ep;
		}
		first = 0;
	}
	sy_ring_iter_end(&it);
	/* Loads moved while we read them: the first usable one will do. */
	if (fallback != NULL)
		*reason = "overflow";
	return fallback;
}

const struct sy_route_policy sy_route_prefix_affinity = {
	.name = "prefix_affinity",
	.create = prefix_create,
	.pick = prefix_pick,
	.destroy = prefix_destroy
};
