/* weighted: smooth weighted round robin as nginx does it, from a schedule precomputed at load and shared lock-free by every worker. */
#include <stdlib.h>

#include "common.h"
#include "config.h"
#include "policy.h"
#include "swrr.h"

static void *
weighted_create(const json_t *params, const struct sy_pool *pool, char **err)
{
	return sy_swrr_create(params, "weighted", pool, err);
}

static struct sy_endpoint *
weighted_pick(void *state, const struct sy_pool *pool,
    const struct sy_req *req, const char **reason)
{
	struct sy_endpoint *ep;
	int skipped;

	if ((ep = sy_swrr_pick(state, pool, req, &skipped)) == NULL)
		*reason = "all-busy";
	else
		*reason = skipped ? "skip-unusable" : "weighted";
	return ep;
}

const struct sy_route_policy sy_route_weighted = {
	.name = "weighted",
	.create = weighted_create,
	.pick = weighted_pick,
	.destroy = sy_swrr_destroy
};
