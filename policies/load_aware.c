/* load_aware: the endpoint with the least load as it reports it on its own /metrics (queue, running, KV cache), plus the gateway's own in-flight requests. */
#include <stdatomic.h>
#include <stdlib.h>

#include "common.h"
#include "config.h"
#include "policy.h"
#include "swrr.h"
#include "util.h"

static const char *const load_params[] = {
	"queue_weight", "kv_weight", "stale_ms", NULL
};

struct load_state {
	double queue_weight;		/* per waiting request */
	double kv_weight;		/* for a full KV cache */
	uint64_t stale_us;		/* a scrape older than this is not used */
	struct sy_swrr rr;		/* who goes first among equals */
};

static void *
load_create(const json_t *params, const struct sy_pool *pool, char **err)
{
	struct load_state *st;
	long long stale_ms;
	double qw, kvw;

	if (sy_params_check(params, "load_aware", load_params, err) == -1 ||
	    sy_param_number(params, "load_aware", "queue_weight", 4, 0, 1e6,
	    &qw, err) == -1 ||
	    sy_param_number(params, "load_aware", "kv_weight", 8, 0, 1e6,
	    &kvw, err) == -1 ||
	    sy_param_int(params, "load_aware", "stale_ms", 2000, 1, 86400000,
	    &stale_ms, err) == -1)
		return NULL;
	if ((st = malloc(sizeof *st)) == NULL)
		return sy_policy_fail(err, "out of memory");
	st->queue_weight = qw;
	st->kv_weight = kvw;
	st->stale_us = (uint64_t)stale_ms * 1000;
	if (sy_swrr_init(&st->rr, pool, err) == -1) {
		free(st);
		return NULL;
	}
	return st;
}

/* A figure as scraped, 0 while unknown (-1). */
static double
known(long v)
{
	return v > 0 ? (double)v : 0;
}

/*
 * (waiting × queue_weight + running + kv usage × kv_weight + in flight
 * from this gateway) / weight.  Unknown figures count as 0.
 */
static double
load_score(const struct sy_endpoint *ep, void *arg)
{
	const struct load_state *st = arg;
	const struct sy_endpoint_stats *s = ep->stats;
	double waiting, running, kv, inflight;

	waiting = known(atomic_load_explicit(&s->scraped_waiting,
	    memory_order_relaxed));
	running = known(atomic_load_explicit(&s->scraped_running,
	    memory_order_relaxed));
	kv = known(atomic_load_explicit(&s->scraped_kv_permille,
	    memory_order_relaxed)) / 1000;
	inflight = known(atomic_load_explicit(&s->in_flight,
	    memory_order_relaxed));
	return (waiting * st->queue_weight + running + kv * st->kv_weight +
	    inflight) / ep->weight;
}

/* Whether every usable endpoint of pool has a scrape younger than stale_us. */
static int
load_fresh(const struct load_state *st, const struct sy_pool *pool,
    const struct sy_req *req)
{
	uint64_t now = sy_now_us(), at;
	size_t i;

	for (i = 0; i < pool->nendpoints; i++) {
		if (!sy_endpoint_usable(pool->endpoints[i], req))
			continue;
		at = atomic_load_explicit(&pool->endpoints[i]->stats->scraped_at_us,
		    memory_order_relaxed);
		if (at == 0 || (now > at && now - at > st->stale_us))
			return 0;
	}
	return 1;
}

static struct sy_endpoint *
load_pick(void *state, const struct sy_pool *pool, const struct sy_req *req,
    const char **reason)
{
	struct load_state *st = state;
	struct sy_endpoint *ep;
	size_t start = sy_swrr_next(&st->rr);

	if (load_fresh(st, pool, req)) {
		ep = sy_policy_lowest(pool, req, start, load_score, st);
		*reason = "scraped";
	} else {
		ep = sy_policy_lowest(pool, req, start, sy_score_in_flight,
		    NULL);
		*reason = "in-flight-fallback";
	}
	if (ep == NULL)
		*reason = "all-busy";
	return ep;
}

static void
load_destroy(void *state)
{
	struct load_state *st = state;

	sy_swrr_free(&st->rr);
	free(st);
}

const struct sy_route_policy sy_route_load_aware = {
	.name = "load_aware",
	.create = load_create,
	.pick = load_pick,
	.destroy = load_destroy
};
