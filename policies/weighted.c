/* weighted: smooth weighted round robin as nginx does it, from a schedule precomputed at load and shared lock-free by every worker. */
#include <stdlib.h>

#include "common.h"
#include "config.h"
#include "policy.h"
#include "swrr.h"

static const char *const weighted_params[] = { NULL };

static void *
weighted_create(const json_t *params, const struct sy_pool *pool, char **err)
{
	struct sy_swrr *s;

	if (sy_params_check(params, "weighted", weighted_params, err) == -1)
		return NULL;
	if ((s = malloc(sizeof *s)) == NULL)
		return sy_policy_fail(err, "out of memory");
	if (sy_swrr_init(s, pool, err) == -1) {
		free(s);
		return NULL;
	}
	return s;
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

static void
weighted_destroy(void *state)
{
	sy_swrr_free(state);
	free(state);
}

const struct sy_route_policy sy_route_weighted = {
	.name = "weighted",
	.create = weighted_create,
	.pick = weighted_pick,
	.destroy = weighted_destroy
};
