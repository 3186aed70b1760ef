/* least_outstanding: the endpoint with the fewest requests in flight (all workers) per unit of weight; equals take turns by weight. */
#include <stdlib.h>

#include "common.h"
#include "config.h"
#include "policy.h"
#include "swrr.h"

static void *
lo_create(const json_t *params, const struct sy_pool *pool, char **err)
{
	return sy_swrr_create(params, "least_outstanding", pool, err);
}

static struct sy_endpoint *
lo_pick(void *state, const struct sy_pool *pool, const struct sy_req *req,
    const char **reason)
{
	struct sy_endpoint *ep;

	ep = sy_policy_lowest(pool, req, sy_swrr_next(state),
	    sy_score_in_flight, NULL);
	*reason = ep != NULL ? "least-loaded" : "all-busy";
	return ep;
}

const struct sy_route_policy sy_route_least_outstanding = {
	.name = "least_outstanding",
	.create = lo_create,
	.pick = lo_pick,
	.destroy = sy_swrr_destroy
};
