/* The policy registry: every routing and model-selection policy, found by name. */
#include "config.h"
#include "policy.h"
#include "util.h"

extern const struct sy_route_policy sy_route_round_robin;
extern const struct sy_select_policy sy_select_alias;

static const void *const route_policies[] = {
	&sy_route_round_robin,
	NULL
};

static const void *const select_policies[] = {
	&sy_select_alias,
	NULL
};

const struct sy_route_policy *
sy_route_policy_find(const char *name)
{
	return sy_registry_find(route_policies, name);
}

const struct sy_select_policy *
sy_select_policy_find(const char *name)
{
	return sy_registry_find(select_policies, name);
}

void
sy_route_policy_names(char *buf, size_t len)
{
	sy_registry_names(route_policies, buf, len);
}

void
sy_select_policy_names(char *buf, size_t len)
{
	sy_registry_names(select_policies, buf, len);
}

int
sy_endpoint_available(const struct sy_endpoint *ep)
{
	if (ep->weight == 0)
		return 0;
	if (ep->max_concurrency == 0)
		return 1;
	return atomic_load_explicit(&ep->stats->in_flight,
	    memory_order_relaxed) < (long)ep->max_concurrency;
}
