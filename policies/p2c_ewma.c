/* p2c_ewma: power of two choices on peak-EWMA latency × load, as Finagle and Linkerd balance. */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "config.h"
#include "endstats.h"
#include "policy.h"
#include "util.h"

static const char *const p2c_params[] = {
	"decay_ms", "failure_penalty_ms", NULL
};

/*
 * What p2c_ewma learns of an endpoint, in its stats (kept across
 * reloads): the peak-EWMA of the upstream latency in µs (the bits of a
 * double, 0: no sample yet) and the time of its last update.
 */
struct p2c_learn {
	atomic_ullong ewma_bits;
	atomic_ullong at_us;		/* monotonic µs */
};

struct p2c_state {
	double tau_us;			/* decay time constant */
	double penalty_us;		/* latency a failure counts as */
	struct sy_wdraw draw;
	struct p2c_learn **learn;	/* by the endpoint's index */
};

extern const struct sy_route_policy sy_route_p2c_ewma;

static void *
p2c_create(const json_t *params, const struct sy_pool *pool, char **err)
{
	struct p2c_state *st;
	const struct sy_endpoint *ep;
	long long decay_ms, penalty_ms;
	size_t i, n;

	if (sy_params_check(params, "p2c_ewma", p2c_params, err) == -1 ||
	    sy_param_int(params, "p2c_ewma", "decay_ms", 10000, 1, 86400000,
	    &decay_ms, err) == -1 ||
	    sy_param_int(params, "p2c_ewma", "failure_penalty_ms", 5000, 0,
	    86400000, &penalty_ms, err) == -1)
		return NULL;
	if ((st = malloc(sizeof *st)) == NULL)
		return sy_policy_fail(err, "out of memory");
	st->tau_us = (double)decay_ms * 1000;
	st->penalty_us = (double)penalty_ms * 1000;
	for (i = 0, n = 1; i < pool->nendpoints; i++)
		if (pool->endpoints[i]->index >= n)
			n = pool->endpoints[i]->index + 1;
	if ((st->learn = calloc(n, sizeof *st->learn)) == NULL) {
		free(st);
		return sy_policy_fail(err, "out of memory");
	}
	for (i = 0; i < pool->nendpoints; i++) {
		ep = pool->endpoints[i];
		st->learn[ep->index] = sy_endstats_slot(ep->stats,
		    &sy_route_p2c_ewma, sizeof **st->learn);
		if (st->learn[ep->index] == NULL) {
			free(st->learn);
			free(st);
			return sy_policy_fail(err, "p2c_ewma: no room for its "
			    "state in the stats of endpoint %s", ep->name);
		}
	}
	if (sy_wdraw_init(&st->draw, pool, err) == -1) {
		free(st->learn);
		free(st);
		return NULL;
	}
	return st;
}

/* What st learned of ep, an endpoint of its pool. */
static struct p2c_learn *
p2c_learned(const struct p2c_state *st, const struct sy_endpoint *ep)
{
	return st->learn[ep->index];
}

/* The bits of a double, and back: how the EWMA lives in an atomic integer. */
static uint64_t
double_bits(double d)
{
	uint64_t u;

	memcpy(&u, &d, sizeof u);
	return u;
}

static double
bits_double(uint64_t u)
{
	double d;

	memcpy(&d, &u, sizeof d);
	return d;
}

/*
 * The peak EWMA of ep as of now, in µs, or 0 when it has no sample: the
 * stored value decayed towards 0 by exp(-elapsed/tau), so that an endpoint
 * left alone looks cheaper as time passes and gets probed again (Finagle
 * reads its cost the same way).
 */
static double
p2c_ewma_now(const struct p2c_state *st, const struct sy_endpoint *ep,
    uint64_t now)
{
	struct p2c_learn *l = p2c_learned(st, ep);
	uint64_t bits = atomic_load_explicit(&l->ewma_bits,
	    memory_order_relaxed);
	uint64_t at = atomic_load_explicit(&l->at_us, memory_order_relaxed);

	if (bits == 0)
		return 0;
	if (now <= at)
		return bits_double(bits);
	return bits_double(bits) * exp(-(double)(now - at) / st->tau_us);
}

/* The smallest EWMA now of the pool's endpoints that have one, or 0. */
static double
p2c_smallest(const struct p2c_state *st, const struct sy_pool *pool,
    uint64_t now)
{
	double e, best = 0;
	size_t i;

	for (i = 0; i < pool->nendpoints; i++) {
		e = p2c_ewma_now(st, pool->endpoints[i], now);
		if (e > 0 && (best == 0 || e < best))
			best = e;
	}
	return best;
}

/* Cost of ep: EWMA × (in flight + 1) / weight; no sample yet counts as the smallest known. */
static double
p2c_cost(const struct p2c_state *st, const struct sy_pool *pool,
    const struct sy_endpoint *ep, uint64_t now)
{
	double e = p2c_ewma_now(st, ep, now);
	long inflight = atomic_load_explicit(&ep->stats->in_flight,
	    memory_order_relaxed);

	if (e == 0)
		e = p2c_smallest(st, pool, now);
	return e * (double)(inflight + 1) / ep->weight;
}

static struct sy_endpoint *
p2c_pick(void *state, const struct sy_pool *pool, const struct sy_req *req,
    const char **reason)
{
	struct p2c_state *st = state;
	struct sy_endpoint *a, *b;
	uint64_t now;

	if ((a = sy_wdraw_pick(&st->draw, pool, req, NULL)) == NULL) {
		*reason = "all-busy";
		return NULL;
	}
	if ((b = sy_wdraw_pick(&st->draw, pool, req, a)) == NULL) {
		*reason = "only-usable";
		return a;
	}
	*reason = "p2c";
	now = sy_now_us();
	return p2c_cost(st, pool, b, now) < p2c_cost(st, pool, a, now) ? b : a;
}

/*
 * Folds one latency sample into ep's peak EWMA: a sample above the
 * average replaces it at once, else the average moves towards it by
 * 1 - exp(-elapsed/tau).  A failure (transport error or 5xx) counts as
 * the penalty latency, or its own when longer.  Lock-free: a CAS loop on
 * the EWMA's bits, then the time of the update.
 */
static void
p2c_observe(void *state, struct sy_endpoint *ep,
    const struct sy_outcome *outcome)
{
	struct p2c_state *st = state;
	struct p2c_learn *l = p2c_learned(st, ep);
	uint64_t now = sy_now_us(), at;
	unsigned long long old;
	double sample = (double)outcome->latency_us, avg, w, next;

	if ((outcome->status == 0 || outcome->status >= 500) &&
	    sample < st->penalty_us)
		sample = st->penalty_us;
	if (sample < 1)
		sample = 1;		/* 0 means "no sample" */
	old = atomic_load_explicit(&l->ewma_bits, memory_order_relaxed);
	do {
		at = atomic_load_explicit(&l->at_us, memory_order_relaxed);
		avg = bits_double(old);
		if (old == 0 || sample > avg)
			next = sample;
		else {
			w = now > at ? exp(-(double)(now - at) / st->tau_us) : 1;
			next = avg * w + sample * (1 - w);
		}
	} while (!atomic_compare_exchange_weak_explicit(&l->ewma_bits,
	    &old, double_bits(next), memory_order_relaxed,
	    memory_order_relaxed));
	atomic_store_explicit(&l->at_us, now, memory_order_relaxed);
}

static void
p2c_destroy(void *state)
{
	struct p2c_state *st = state;

	sy_wdraw_free(&st->draw);
	free(st->learn);
	free(st);
}

const struct sy_route_policy sy_route_p2c_ewma = {
	.name = "p2c_ewma",
	.create = p2c_create,
	.pick = p2c_pick,
	.observe = p2c_observe,
	.destroy = p2c_destroy
};
