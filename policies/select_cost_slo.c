/* cost_slo: the cheapest model whose recent p95 TTFT and latency (the gateway's own measurements) meet the route's SLO; the fastest when none does. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "config.h"
#include "policy.h"
#include "req.h"
#include "select.h"
#include "util.h"

#define MAX_WINDOW	1000
/* The time a failed try counts as (an hour). */
#define FAILED_US	(3600ULL * 1000000)

static const char *const cost_slo_params[] = {
	"models", "p95_ttft_ms", "p95_latency_ms", "window", "window_ms",
	"probe_every", NULL
};

struct sample {
	uint64_t at_us;			/* monotonic µs when observed */
	uint64_t ttft_us;		/* 0: not a stream */
	uint64_t latency_us;
};

/* One candidate model and its recent samples. */
struct candidate {
	const char *model;
	double price;			/* input + output per 1M tokens */
	pthread_mutex_t lock;
	struct sample *ring;		/* the last `window` samples */
	size_t next;
	size_t count;
	char *ok, *miss, *none, *probe;	/* its reasons */
};

struct cost_slo_state {
	struct candidate *c;		/* cheapest first */
	size_t n;
	uint64_t ttft_us;		/* SLO on p95 TTFT of streams; 0: none */
	uint64_t latency_us;		/* SLO on p95 latency; 0: none */
	size_t window;
	uint64_t window_us;
	unsigned probe_every;		/* 0: no probes */
	atomic_ulong requests;
};

static void
cost_slo_destroy(void *state)
{
	struct cost_slo_state *st = state;
	struct candidate *c;
	size_t i;

	for (i = 0; i < st->n; i++) {
		c = &st->c[i];
		pthread_mutex_destroy(&c->lock);
		free(c->ring);
		free(c->ok);
		free(c->miss);
		free(c->none);
		free(c->probe);
	}
	free(st->c);
	free(st);
}

/* A malloc'd "prefix:model". */
static char *
reason(const char *prefix, const char *model)
{
	char *s;

	if (asprintf(&s, "%s:%s", prefix, model) == -1)
		abort();
	return s;
}

static int
by_price(const void *a, const void *b)
{
	const struct candidate *x = a, *y = b;

	return x->price < y->price ? -1 : x->price > y->price;
}

static void *
cost_slo_create(const json_t *params, const struct sy_route *route,
    char **err)
{
	struct cost_slo_state *st;
	const struct sy_price *pr;
	const char **models = NULL;
	long long ttft, latency, window, window_ms, probe;
	size_t i, n;

	if (sy_params_check(params, "cost_slo", cost_slo_params, err) == -1 ||
	    sy_select_named(route, "cost_slo", err) == -1 ||
	    sy_param_int(params, "cost_slo", "p95_ttft_ms", 0, 1, 86400000,
	    &ttft, err) == -1 ||
	    sy_param_int(params, "cost_slo", "p95_latency_ms", 0, 1, 86400000,
	    &latency, err) == -1 ||
	    sy_param_int(params, "cost_slo", "window", 50, 1, MAX_WINDOW,
	    &window, err) == -1 ||
	    sy_param_int(params, "cost_slo", "window_ms", 30000, 1, 86400000,
	    &window_ms, err) == -1 ||
	    sy_param_int(params, "cost_slo", "probe_every", 20, 0, 1000000,
	    &probe, err) == -1)
		return NULL;
	if (ttft == 0 && latency == 0)
		return sy_policy_fail(err, "cost_slo: set the SLO: "
		    "\"p95_ttft_ms\", \"p95_latency_ms\" or both");
	if (sy_select_models(params, "models", route, 2, &models, &n,
	    err) == -1)
		return NULL;
	for (i = 0; i < n; i++) {
		if (sy_config_price(route->cfg, models[i]) == NULL) {
			sy_policy_fail(err, "cost_slo: model \"%s\" has no "
			    "price; add it to \"prices\"", models[i]);
			free(models);
			return NULL;
		}
	}
	st = sy_xcalloc(1, sizeof *st);
	st->c = sy_xcalloc(n, sizeof *st->c);
	for (i = 0; i < n; i++) {
		pr = sy_config_price(route->cfg, models[i]);
		st->c[i].model = models[i];
		st->c[i].price = pr->input + pr->output;
	}
	free(models);
	qsort(st->c, n, sizeof *st->c, by_price);
	for (i = 0; i < n; i++) {
		pthread_mutex_init(&st->c[i].lock, NULL);
		st->c[i].ring = sy_xcalloc((size_t)window, sizeof *st->c[i].ring);
		st->c[i].ok = reason("slo-ok", st->c[i].model);
		st->c[i].miss = reason("slo-miss", st->c[i].model);
		st->c[i].none = reason("slo-none", st->c[i].model);
		st->c[i].probe = reason("probe", st->c[i].model);
		st->n++;
	}
	st->ttft_us = (uint64_t)ttft * 1000;
	st->latency_us = (uint64_t)latency * 1000;
	st->window = (size_t)window;
	st->window_us = (uint64_t)window_ms * 1000;
	st->probe_every = (unsigned)probe;
	atomic_init(&st->requests, 0);
	return st;
}

/*
 * The 95th percentile of v[0..n-1] (reorders v); 0 when n is 0.  The k-th
 * smallest is found by quickselect: linear on average, where a sort of the
 * samples on every request would not be.
 */
static uint64_t
p95(uint64_t *v, size_t n)
{
	size_t k, lo = 0, hi, i, j;
	uint64_t pivot, t;

	if (n == 0)
		return 0;
	k = (n * 95 + 99) / 100 - 1;
	hi = n - 1;
	while (lo < hi) {
		pivot = v[lo + (hi - lo) / 2];
		i = lo;
		j = hi;
		while (i <= j) {
			while (v[i] < pivot)
				i++;
			while (v[j] > pivot)
				j--;
			if (i <= j) {
				t = v[i];
				v[i] = v[j];
				v[j] = t;
				i++;
				if (j == 0)
					break;
				j--;
			}
		}
		if (k <= j)
			hi = j;
		else if (k >= i)
			lo = i;
		else
			break;
	}
	return v[k];
}

/*
 * How far c is from the SLO: the largest of p95 / target over the targets
 * set, from the samples younger than the window; 0 when it has none (a
 * model not measured lately counts as meeting the SLO).
 */
static double
score(struct cost_slo_state *st, struct candidate *c, uint64_t now)
{
	uint64_t ttft[MAX_WINDOW], lat[MAX_WINDOW];
	size_t i, nt = 0, nl = 0;
	double s = 0, r;

	pthread_mutex_lock(&c->lock);
	for (i = 0; i < c->count; i++) {
		if (now - c->ring[i].at_us > st->window_us)
			continue;
		lat[nl++] = c->ring[i].latency_us;
		if (c->ring[i].ttft_us != 0)
			ttft[nt++] = c->ring[i].ttft_us;
	}
	pthread_mutex_unlock(&c->lock);
	if (st->ttft_us != 0 && nt > 0 &&
	    (r = (double)p95(ttft, nt) / (double)st->ttft_us) > s)
		s = r;
	if (st->latency_us != 0 && nl > 0 &&
	    (r = (double)p95(lat, nl) / (double)st->latency_us) > s)
		s = r;
	return s;
}

static const char *
cost_slo_select(void *state, const struct sy_route *route,
    const struct sy_req *req, const char **why)
{
	struct cost_slo_state *st = state;
	uint64_t now = sy_now_us();
	double s, best = 0;
	size_t i, pick = st->n, fastest = 0;

	for (i = 0; i < st->n; i++) {
		/* A model whose endpoints are all down or ejected is slow. */
		s = sy_select_model_up(route, st->c[i].model) ?
		    score(st, &st->c[i], now) : HUGE_VAL;
		if (s <= 1) {
			pick = i;
			break;
		}
		if (i == 0 || s < best) {
			best = s;
			fastest = i;
		}
	}
	/* Now and then a cheaper model that missed is tried again, so
	   that its samples stay fresh and its recovery is noticed. */
	if (st->probe_every != 0 && pick > 0 &&
	    atomic_fetch_add_explicit(&st->requests, 1,
	    memory_order_relaxed) % st->probe_every == st->probe_every - 1) {
		*why = st->c[0].probe;
		return st->c[0].model;
	}
	if (pick == st->n) {
		*why = st->c[fastest].none;
		return st->c[fastest].model;
	}
	*why = pick == 0 ? st->c[0].ok : st->c[pick].miss;
	return st->c[pick].model;
}

static void
cost_slo_observe(void *state, const char *model,
    const struct sy_outcome *outcome)
{
	struct cost_slo_state *st = state;
	struct candidate *c;
	size_t i;

	for (i = 0; i < st->n && strcmp(st->c[i].model, model) != 0; i++)
		;
	if (i == st->n)
		return;
	c = &st->c[i];
	pthread_mutex_lock(&c->lock);
	c->ring[c->next].at_us = sy_now_us();
	if (outcome->status == 0 || outcome->status == 429 ||
	    outcome->status >= 500) {
		/* A failed try misses any SLO. */
		c->ring[c->next].ttft_us = FAILED_US;
		c->ring[c->next].latency_us = FAILED_US;
	} else {
		c->ring[c->next].ttft_us = outcome->ttft_us;
		c->ring[c->next].latency_us = outcome->latency_us;
	}
	c->next = (c->next + 1) % st->window;
	if (c->count < st->window)
		c->count++;
	pthread_mutex_unlock(&c->lock);
}

const struct sy_select_policy sy_select_cost_slo = {
	.name = "cost_slo",
	.create = cost_slo_create,
	.select = cost_slo_select,
	.observe = cost_slo_observe,
	.destroy = cost_slo_destroy
};
