/* round_robin: each request goes to the next available endpoint of the pool, across all workers. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "policy.h"

struct rr_state {
	atomic_ulong next;
};

static void *
rr_create(const json_t *params, const struct sy_pool *pool, char **err)
{
	struct rr_state *st;

	if (json_object_size(params) != 0) {
		*err = strdup("round_robin takes no parameters");
		return NULL;
	}
	if ((st = calloc(1, sizeof *st)) == NULL) {
		*err = strdup("out of memory");
		return NULL;
	}
	atomic_init(&st->next, 0);
	return st;
}

static struct sy_endpoint *
rr_pick(void *state, const struct sy_pool *pool, const struct sy_req *req,
    const char **reason)
{
	struct rr_state *st = state;
	unsigned long start;
	size_t i;

	*reason = "all-busy";
	if (pool->nendpoints == 0)
		return NULL;
	*reason = "round-robin";
	start = atomic_fetch_add_explicit(&st->next, 1, memory_order_relaxed);
	for (i = 0; i < pool->nendpoints; i++) {
		struct sy_endpoint *ep =
		    pool->endpoints[(start + i) % pool->nendpoints];

		if (sy_endpoint_usable(ep, req)) {
			if (i != 0)
				*reason = "skip-full";
			return ep;
		}
	}
	*reason = "all-busy";
	return NULL;
}

static void
rr_destroy(void *state)
{
	free(state);
}

const struct sy_route_policy sy_route_round_robin = {
	.name = "round_robin",
	.create = rr_create,
	.pick = rr_pick,
	.destroy = rr_destroy
};
