/* The policy registry: every routing, model-selection and batching policy, found by name. */
#include "config.h"
#include "req.h"
#include "policy.h"
#include "util.h"

extern const struct sy_route_policy sy_route_round_robin;
extern const struct sy_route_policy sy_route_weighted;
extern const struct sy_route_policy sy_route_random;
extern const struct sy_route_policy sy_route_least_outstanding;
extern const struct sy_route_policy sy_route_p2c_ewma;
extern const struct sy_route_policy sy_route_session_affinity;
extern const struct sy_route_policy sy_route_prefix_affinity;
extern const struct sy_route_policy sy_route_load_aware;
extern const struct sy_route_policy sy_route_prefix_aware;
extern const struct sy_select_policy sy_select_alias;
extern const struct sy_select_policy sy_select_rules;
extern const struct sy_select_policy sy_select_weighted;
extern const struct sy_select_policy sy_select_cascade;
extern const struct sy_select_policy sy_select_cost_slo;
extern const struct sy_batch_policy sy_batch_window;
extern const struct sy_batch_policy sy_batch_adaptive;

static const void *const route_policies[] = {
	&sy_route_round_robin,
	&sy_route_weighted,
	&sy_route_random,
	&sy_route_least_outstanding,
	&sy_route_p2c_ewma,
	&sy_route_session_affinity,
	&sy_route_prefix_affinity,
	&sy_route_load_aware,
	&sy_route_prefix_aware,
	NULL
};

static const void *const select_policies[] = {
	&sy_select_alias,
	&sy_select_rules,
	&sy_select_weighted,
	&sy_select_cascade,
	&sy_select_cost_slo,
	NULL
};

static const void *const batch_policies[] = {
	&sy_batch_window,
	&sy_batch_adaptive,
	NULL
};

static const char *const flush_words[SY_FLUSH_NREASONS] = {
	"hold", "size", "tokens", "wait", "ready", "deadline"
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

const struct sy_batch_policy *
sy_batch_policy_find(const char *name)
{
	return sy_registry_find(batch_policies, name);
}

void
sy_batch_policy_names(char *buf, size_t len)
{
	sy_registry_names(batch_policies, buf, len);
}

const char *
sy_flush_word(enum sy_flush reason)
{
	return reason < SY_FLUSH_NREASONS ? flush_words[reason] : "hold";
}

enum sy_flush
sy_batch_bound_reached(const struct sy_batch_bounds *b,
    const struct sy_batch_view *v)
{
	if (v->inputs >= b->max_batch_size)
		return SY_FLUSH_SIZE;
	if (b->max_batch_tokens != 0 && v->tokens >= b->max_batch_tokens)
		return SY_FLUSH_TOKENS;
	if (v->age_us >= b->max_wait_us)
		return SY_FLUSH_WAIT;
	return SY_FLUSH_HOLD;
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
	const struct sy_endpoint_stats *st = ep->stats;
	uint64_t now;

	if (ep->weight == 0 || atomic_load_explicit(&st->unhealthy,
	    memory_order_relaxed))
		return 0;
	if (ep->max_concurrency != 0 && atomic_load_explicit(&st->in_flight,
	    memory_order_relaxed) >= (long)ep->max_concurrency)
		return 0;
	if (atomic_load_explicit(&st->ejected_until_us, memory_order_relaxed) == 0 &&
	    atomic_load_explicit(&st->limited_until_us, memory_order_relaxed) == 0)
		return 1;
	now = sy_now_us();
	return atomic_load_explicit(&st->ejected_until_us,
	    memory_order_relaxed) <= now &&
	    atomic_load_explicit(&st->limited_until_us,
	    memory_order_relaxed) <= now;
}

int
sy_endpoint_usable(const struct sy_endpoint *ep, const struct sy_req *req)
{
	unsigned i;

	for (i = 0; i < req->ntried; i++)
		if (req->tried[i] == ep)
			return 0;
	return sy_endpoint_available(ep);
}

const struct sy_route_policy *
sy_route_policy_at(size_t i)
{
	return sy_registry_at(route_policies, i);
}

const struct sy_select_policy *
sy_select_policy_at(size_t i)
{
	return sy_registry_at(select_policies, i);
}

const struct sy_batch_policy *
sy_batch_policy_at(size_t i)
{
	return sy_registry_at(batch_policies, i);
}
