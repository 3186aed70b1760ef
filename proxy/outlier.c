/* Passive outlier ejection: endpoints that keep failing get no traffic for a growing cooldown. */
#include <math.h>
#include <stdatomic.h>
#include <stddef.h>

#include "confrow.h"
#include "config.h"
#include "outlier.h"
#include "util.h"

int
sy_outlier_ejected(const struct sy_endpoint *ep)
{
	uint64_t until = atomic_load_explicit(&ep->stats->ejected_until_us,
	    memory_order_relaxed);

	return until != 0 && until > sy_now_us();
}

/* Whether ejecting one more endpoint of pool leaves min_available of it. */
static int
may_eject(const struct sy_ejection *rule, const struct sy_pool *pool)
{
	size_t i, ejected = 0;
	double keep = ceil(rule->min_available * (double)pool->nendpoints);

	for (i = 0; i < pool->nendpoints; i++)
		ejected += sy_outlier_ejected(pool->endpoints[i]);
	return (double)(pool->nendpoints - ejected - 1) >= keep;
}

/* Ejects ep for its next cooldown. */
static void
eject(const struct sy_ejection *rule, struct sy_endpoint *ep, uint64_t now)
{
	struct sy_endpoint_stats *st = ep->stats;
	int n = atomic_fetch_add(&st->ejections, 1);
	uint64_t cooldown = (uint64_t)rule->cooldown_ms * 1000;

	while (n-- > 0 && cooldown < (uint64_t)rule->max_cooldown_ms * 1000)
		cooldown *= 2;
	if (cooldown > (uint64_t)rule->max_cooldown_ms * 1000)
		cooldown = (uint64_t)rule->max_cooldown_ms * 1000;
	atomic_store(&st->ejected_until_us, now + cooldown);
	atomic_store(&st->consecutive_failures, 0);
	atomic_store(&st->window_requests, 0);
	atomic_store(&st->window_failures, 0);
	sy_log(SY_LOG_WARN, "endpoint %s ejected for %llu ms", ep->name,
	    (unsigned long long)(cooldown / 1000));
}

/* Counts the outcome in ep's error-rate window; returns whether the rate trips. */
static int
window_trips(const struct sy_ejection *rule, struct sy_endpoint_stats *st,
    int failed, uint64_t now)
{
	unsigned long long start = atomic_load(&st->window_start_us);
	unsigned requests, failures;

	if (now - start > (uint64_t)rule->window_ms * 1000 &&
	    atomic_compare_exchange_strong(&st->window_start_us, &start, now)) {
		atomic_store(&st->window_requests, 0);
		atomic_store(&st->window_failures, 0);
	}
	requests = atomic_fetch_add(&st->window_requests, 1) + 1;
	failures = failed ? atomic_fetch_add(&st->window_failures, 1) + 1 :
	    atomic_load(&st->window_failures);
	return rule->error_rate > 0 && requests >= rule->min_requests &&
	    (double)failures >= rule->error_rate * (double)requests;
}

int
sy_outlier_observe(const struct sy_route *route, const struct sy_pool *pool,
    struct sy_endpoint *ep, int failed)
{
	const struct sy_ejection *rule = &route->ejection;
	struct sy_endpoint_stats *st = ep->stats;
	uint64_t now = sy_now_us();
	int in_a_row = 0, rate;

	if (rule->consecutive_failures == 0 && rule->error_rate <= 0)
		return 0;
	rate = window_trips(rule, st, failed, now);
	if (!failed) {
		atomic_store(&st->consecutive_failures, 0);
		/* Back from an ejection and answering: the next one starts short. */
		if (atomic_load(&st->ejections) != 0 && !sy_outlier_ejected(ep))
			atomic_store(&st->ejections, 0);
		return 0;
	}
	in_a_row = atomic_fetch_add(&st->consecutive_failures, 1) + 1;
	if (sy_outlier_ejected(ep))
		return 0;
	if (((rule->consecutive_failures != 0 &&
	    (unsigned)in_a_row >= rule->consecutive_failures) || rate) &&
	    may_eject(rule, pool)) {
		eject(rule, ep, now);
		return 1;
	}
	return 0;
}

void
sy_outlier_rest(struct sy_endpoint *ep, unsigned seconds)
{
	atomic_store(&ep->stats->limited_until_us,
	    sy_now_us() + (uint64_t)seconds * 1000000);
}

unsigned
sy_outlier_retry_after(const struct sy_pool *pool)
{
	uint64_t now = sy_now_us(), soonest = UINT64_MAX, until, e;
	const struct sy_endpoint_stats *st;
	size_t i;

	for (i = 0; pool != NULL && i < pool->nendpoints; i++) {
		st = pool->endpoints[i]->stats;
		until = atomic_load(&st->limited_until_us);
		e = atomic_load(&st->ejected_until_us);
		if (e > until)
			until = e;
		if (until <= now)
			return 1;
		if (until < soonest)
			soonest = until;
	}
	if (soonest == UINT64_MAX)
		return 1;
	return (unsigned)((soonest - now + 999999) / 1000000);
}

/* ==== Config ==== */

#define DAY_MS	86400000	/* largest duration */

/* The first cooldown at most the longest. */
static void
ejection_check(struct sy_conf *c, const json_t *obj, const char *path,
    void *base)
{
	const struct sy_ejection *e = base;

	if (obj != NULL)
		sy_conf_order(c, obj, path, "cooldown_ms", e->cooldown_ms,
		    "max_cooldown_ms", e->max_cooldown_ms, 0);
}

static const struct sy_conf_row ejection_rows[] = {
	{ .name = "consecutive_failures", .type = SY_CONF_UINT,
	  .offset = offsetof(struct sy_ejection, consecutive_failures),
	  .def.u = 5, .max = 1000000,
	  .doc = "failures in a row that eject; 0: off" },
	{ .name = "error_rate", .type = SY_CONF_FRACTION,
	  .offset = offsetof(struct sy_ejection, error_rate),
	  .doc = "failed share of the window that ejects; 0: off" },
	{ .name = "min_requests", .type = SY_CONF_UINT,
	  .offset = offsetof(struct sy_ejection, min_requests),
	  .def.u = 20, .min = 1, .max = 1000000,
	  .doc = "requests in the window before error_rate counts" },
	{ .name = "window_ms", .type = SY_CONF_MS,
	  .offset = offsetof(struct sy_ejection, window_ms),
	  .def.u = 10000, .min = 1, .max = DAY_MS,
	  .doc = "length of the error-rate window" },
	{ .name = "cooldown_ms", .type = SY_CONF_MS,
	  .offset = offsetof(struct sy_ejection, cooldown_ms),
	  .def.u = 10000, .min = 1, .max = DAY_MS,
	  .doc = "time out of the first ejection, doubling" },
	{ .name = "max_cooldown_ms", .type = SY_CONF_MS,
	  .offset = offsetof(struct sy_ejection, max_cooldown_ms),
	  .def.u = 300000, .min = 1, .max = DAY_MS,
	  .doc = "longest time out" },
	{ .name = "min_available", .type = SY_CONF_FRACTION,
	  .offset = offsetof(struct sy_ejection, min_available),
	  .def.d = 0.5, .doc = "share of the pool never ejected" },
	{ .name = NULL }
};

const struct sy_conf_table sy_ejection_table = {
	.path = "routes[].ejection",
	.rows = ejection_rows,
	.size = sizeof(struct sy_ejection),
	.check = ejection_check
};
