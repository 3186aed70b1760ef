/* alias: the client's model name, or the served model it is an alias of. */
#include <string.h>

#include "config.h"
#include "policy.h"
#include "req.h"

static void *
alias_create(const json_t *params, const struct sy_route *route, char **err)
{
	if (json_object_size(params) != 0)
		*err = strdup("alias takes no parameters (aliases are the route's \"aliases\")");
	return NULL;
}

static const char *
alias_select(void *state, const struct sy_route *route,
    const struct sy_req *req, const char **reason)
{
	size_t i;

	for (i = 0; i < route->naliases; i++) {
		if (strcmp(route->aliases[i].from, req->lookup_model) == 0) {
			*reason = "alias";
			return route->aliases[i].to;
		}
	}
	*reason = "direct";
	for (i = 0; i < route->nmodels; i++)
		if (strcmp(route->models[i], req->lookup_model) == 0)
			return route->models[i];
	return NULL;
}

const struct sy_select_policy sy_select_alias = {
	.name = "alias",
	.create = alias_create,
	.select = alias_select
};
