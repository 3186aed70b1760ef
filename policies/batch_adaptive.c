/* adaptive: no waiting while the backend has room and arrivals are sparse; under load, batches as full as the arrivals during one service time. */
#include <stdlib.h>

#include "common.h"
#include "policy.h"

/* Weight of a new sample in the moving averages. */
#define ALPHA 0.2

/* Called under the batcher's lock: plain fields. */
struct adaptive {
	struct sy_batch_bounds b;
	unsigned max_in_flight;		/* batches at the backend before holding */
	double service_us;		/* EWMA of a batch's service time, 0: none yet */
	double gap_us;			/* EWMA of the time between inputs, 0: none yet */
	uint64_t last_arrival_us;
};

static void *
adaptive_create(const json_t *params, const struct sy_batch_bounds *b,
    size_t nendpoints, char **err)
{
	static const char *const known[] = { "max_in_flight", NULL };
	struct adaptive *st;
	long long in_flight;

	if (sy_params_check(params, "adaptive", known, err) != 0 ||
	    sy_param_int(params, "adaptive", "max_in_flight",
	    nendpoints > 0 ? (long long)nendpoints : 1, 1, 100000, &in_flight,
	    err) != 0)
		return NULL;
	if ((st = calloc(1, sizeof *st)) == NULL)
		return sy_policy_fail(err, "out of memory");
	st->b = *b;
	st->max_in_flight = (unsigned)in_flight;
	return st;
}

/*
 * The batch worth waiting for: the inputs that arrive during one service
 * time (a batch that size, sent every service time, keeps pace with the
 * arrivals), at least 1 and at most max_batch_size.
 */
static double
target_inputs(const struct adaptive *st)
{
	double n;

	if (st->service_us <= 0 || st->gap_us <= 0)
		return 1;
	n = st->service_us / st->gap_us;
	if (n < 1)
		return 1;
	return n > st->b.max_batch_size ? st->b.max_batch_size : n;
}

static enum sy_flush
adaptive_decide(void *state, const struct sy_batch_view *v, uint64_t *due_us)
{
	struct adaptive *st = state;
	enum sy_flush bound;
	double target, fill_us;

	*due_us = st->b.max_wait_us;
	if ((bound = sy_batch_bound_reached(&st->b, v)) != SY_FLUSH_HOLD)
		return bound;
	/* The backend is busy: the batch fills while it works. */
	if (v->in_flight >= st->max_in_flight)
		return SY_FLUSH_HOLD;
	target = target_inputs(st);
	if ((double)v->inputs >= target)
		return SY_FLUSH_READY;
	/* The backend has room: wait only as long as the target takes to fill. */
	fill_us = (target - (double)v->inputs) * st->gap_us;
	if (fill_us < (double)*due_us)
		*due_us = (uint64_t)fill_us;
	if (v->age_us >= *due_us)
		return SY_FLUSH_READY;
	return SY_FLUSH_HOLD;
}

static void
adaptive_arrive(void *state, unsigned inputs, uint64_t now_us)
{
	struct adaptive *st = state;
	double gap;

	if (st->last_arrival_us != 0 && now_us >= st->last_arrival_us &&
	    inputs > 0) {
		gap = (double)(now_us - st->last_arrival_us) / inputs;
		st->gap_us = st->gap_us > 0 ?
		    st->gap_us * (1 - ALPHA) + gap * ALPHA : gap;
	}
	st->last_arrival_us = now_us;
}

static void
adaptive_observe(void *state, unsigned inputs, uint64_t service_us)
{
	struct adaptive *st = state;

	st->service_us = st->service_us > 0 ?
	    st->service_us * (1 - ALPHA) + (double)service_us * ALPHA :
	    (double)service_us;
}

static void
adaptive_destroy(void *state)
{
	free(state);
}

const struct sy_batch_policy sy_batch_adaptive = {
	.name = "adaptive",
	.create = adaptive_create,
	.decide = adaptive_decide,
	.arrive = adaptive_arrive,
	.observe = adaptive_observe,
	.destroy = adaptive_destroy
};
