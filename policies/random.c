/* random: each request goes to a usable endpoint drawn at random in proportion to its weight. */
#include <stdlib.h>

#include "common.h"
#include "config.h"
#include "policy.h"

static const char *const random_params[] = { NULL };

static void *
random_create(const json_t *params, const struct sy_pool *pool, char **err)
{
	struct sy_wdraw *d;

	if (sy_params_check(params, "random", random_params, err) == -1)
		return NULL;
	if ((d = malloc(sizeof *d)) == NULL)
		return sy_policy_fail(err, "out of memory");
	if (sy_wdraw_init(d, pool, err) == -1) {
		free(d);
		return NULL;
	}
	return d;
}

static struct sy_endpoint *
random_pick(void *state, const struct sy_pool *pool, const struct sy_req *req,
    const char **reason)
{
	struct sy_endpoint *ep = sy_wdraw_pick(state, pool, req, NULL);

	*reason = ep != NULL ? "random" : "all-busy";
	return ep;
}

static void
random_destroy(void *state)
{
	sy_wdraw_free(state);
	free(state);
}

const struct sy_route_policy sy_route_random = {
	.name = "random",
	.create = random_create,
	.pick = random_pick,
	.destroy = random_destroy
};
