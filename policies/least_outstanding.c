/* least_outstanding: the endpoint with the fewest requests in flight (all workers) per unit of weight; equals take turns by weight. */
#include <stdlib.h>

#include "common.h"
#include "config.h"
#include "policy.h"
#include "swrr.h"

static const char *const lo_params[] = { NULL };

static void *
lo_create(const json_t *params, const struct sy_pool *pool, char **err)
{
	struct sy_swrr *s;

	if (sy_params_check(params, "least_outstanding", lo_params, err) == -1)
		return NULL;
	if ((s = malloc(sizeof *s)) == NULL)
		return sy_policy_fail(err, "out of memory");
	if (sy_swrr_init(s, pool, err) == -1) {
		free(s);
		return NULL;
	}
	return s;
}

/*
 * Scans from the endpoint whose weighted round-robin turn it is, so that
 * of equally loaded endpoints each gets its share by weight (nginx's
 * least_conn does the same).
 */
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

static void
lo_destroy(void *state)
{
	sy_swrr_free(state);
	free(state);
}

const struct sy_route_policy sy_route_least_outstanding = {
	.name = "least_outstanding",
	.create = lo_create,
	.pick = lo_pick,
	.destroy = lo_destroy
};
