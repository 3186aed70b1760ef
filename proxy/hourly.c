/* Self-hosted cost: each endpoint's $/hour and power over each accounting interval, spread over the tokens it served in it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <stdatomic.h>

#include "config.h"
#include "endstats.h"
#include "hourly.h"
#include "record.h"
#include "util.h"

/* The owner of the endpoint stats slot that holds the published rate. */
static const char rate_slot_owner;

/* The published rate: a double's bits, 0 while none. */
struct published {
	atomic_ullong bits;
};

struct endpoint {
	char *name;
	struct sy_hourly_rate rate;
	uint64_t t_open_us;		/* the open interval's start */
	double rate_usd_s;		/* usd_per_hour seconds of the rate so far */
	int64_t charged_nusd;		/* what they came to, rounded */
	double busy_seen;		/* busy seconds charged so far */
	double busy_reported;		/* reported since the last close */
	int busy_fresh;			/* whether anything was */
	double usd_per_unit;		/* last interval with tokens; -1: none */
	struct sy_hourly_sums sums;
};

struct share {
	size_t ep;			/* index in endpoints */
	char *route, *model;
	double seen;			/* units charged up to the last close */
	double reported;		/* units reported since then */
	struct sy_hourly_sums sums;
};

struct sy_hourly {
	struct endpoint *eps;
	size_t neps;
	struct share *shares;
	size_t nshares;
};

/* realloc that aborts when out of memory. */
static void *
grow(void *p, size_t n)
{
	if ((p = realloc(p, n)) == NULL)
		abort();
	return p;
}

double
sy_hourly_units(const struct sy_hourly_rate *r, const struct sy_usage *u)
{
	double prompt = u->prompt_tokens > 0 ? (double)u->prompt_tokens : 0;
	double cached = u->cached_tokens > 0 ? (double)u->cached_tokens : 0;
	double completion = u->completion_tokens > 0 ?
	    (double)u->completion_tokens : 0;

	if (cached > prompt)
		cached = prompt;
	return (prompt - cached) * r->prompt_weight + cached *
	    r->cached_weight + completion * r->completion_weight;
}

int
sy_hourly_rate_of(const struct sy_price *p, struct sy_hourly_rate *r)
{
	if (p == NULL || !(p->hourly_usd > 0))
		return -1;
	r->usd_per_hour = p->hourly_usd;
	r->watts = p->power_watts;
	r->idle_share = p->idle_power_share;
	r->prompt_weight = p->prompt_weight;
	r->completion_weight = p->completion_weight;
	r->cached_weight = p->cached_weight;
	return 0;
}

void
sy_hourly_publish(struct sy_endpoint_stats *st, double usd_per_unit)
{
	struct published *pub;
	unsigned long long bits;

	if (st == NULL || !(usd_per_unit > 0) ||
	    (pub = sy_endstats_slot(st, &rate_slot_owner, sizeof *pub)) ==
	    NULL)
		return;
	memcpy(&bits, &usd_per_unit, sizeof bits);
	atomic_store_explicit(&pub->bits, bits, memory_order_relaxed);
}

double
sy_hourly_estimate(struct sy_endpoint_stats *st, const struct sy_price *p,
    const struct sy_usage *u)
{
	struct sy_hourly_rate r;
	struct published *pub;
	unsigned long long bits;
	double rate;

	if (st == NULL || sy_hourly_rate_of(p, &r) < 0 ||
	    (pub = sy_endstats_slot(st, &rate_slot_owner, sizeof *pub)) ==
	    NULL)
		return -1;
	bits = atomic_load_explicit(&pub->bits, memory_order_relaxed);
	if (bits == 0)
		return -1;
	memcpy(&rate, &bits, sizeof rate);
	return sy_hourly_units(&r, u) * rate;
}

struct sy_hourly *
sy_hourly_new(void)
{
	return sy_xcalloc(1, sizeof(struct sy_hourly));
}

void
sy_hourly_free(struct sy_hourly *h)
{
	size_t i;

	if (h == NULL)
		return;
	for (i = 0; i < h->neps; i++)
		free(h->eps[i].name);
	for (i = 0; i < h->nshares; i++) {
		free(h->shares[i].route);
		free(h->shares[i].model);
	}
	free(h->eps);
	free(h->shares);
	free(h);
}

/* Index of endpoint name in h, or h->neps. */
static size_t
find_endpoint(const struct sy_hourly *h, const char *name)
{
	size_t i;

	for (i = 0; i < h->neps && strcmp(h->eps[i].name, name) != 0; i++)
		;
	return i;
}

void
sy_hourly_endpoint(struct sy_hourly *h, const char *endpoint,
    const struct sy_hourly_rate *rate, uint64_t now_us)
{
	size_t i = find_endpoint(h, endpoint);
	struct endpoint *ep;

	if (i == h->neps) {
		h->eps = grow(h->eps, (h->neps + 1) * sizeof *h->eps);
		ep = &h->eps[h->neps++];
		memset(ep, 0, sizeof *ep);
		ep->name = sy_xstrdup(endpoint);
		ep->t_open_us = now_us;
		ep->usd_per_unit = -1;
	} else
		ep = &h->eps[i];
	ep->rate = *rate;
}

/* "" for a NULL name. */
static const char *
name_or_empty(const char *s)
{
	return s != NULL ? s : "";
}

void
sy_hourly_report(struct sy_hourly *h, const char *endpoint,
    const char *route, const char *model, double units)
{
	size_t ep = find_endpoint(h, endpoint), i;
	struct share *sh;

	if (ep == h->neps)
		return;
	route = name_or_empty(route);
	model = name_or_empty(model);
	for (i = 0; i < h->nshares; i++) {
		sh = &h->shares[i];
		if (sh->ep == ep && strcmp(sh->route, route) == 0 &&
		    strcmp(sh->model, model) == 0) {
			sh->reported += units;
			return;
		}
	}
	h->shares = grow(h->shares, (h->nshares + 1) *
	    sizeof *h->shares);
	sh = &h->shares[h->nshares++];
	memset(sh, 0, sizeof *sh);
	sh->ep = ep;
	sh->route = sy_xstrdup(route);
	sh->model = sy_xstrdup(model);
	sh->reported = units;
}

/* Adds part's nano-dollars and millijoules to s. */
static void
charge(struct sy_hourly_sums *s, int64_t nusd, int64_t mj)
{
	s->nano_usd += nusd;
	s->millijoules += mj;
	s->usd = (double)s->nano_usd / 1e9;
	s->joules = (double)s->millijoules / 1e3;
}

void
sy_hourly_close(struct sy_hourly *h, uint64_t now_us)
{
	struct endpoint *ep;
	struct share *sh;
	double secs, units, gain, busy;
	int64_t nusd, mj, left_nusd, left_mj, part_nusd, part_mj, total;
	size_t i, j, last;

	for (i = 0; i < h->neps; i++) {
		ep = &h->eps[i];
		secs = now_us > ep->t_open_us ?
		    (double)(now_us - ep->t_open_us) / 1e6 : 0;
		ep->t_open_us = now_us;
		/* Rounded from the running total, so that rounding does not
		   add up over the intervals. */
		ep->rate_usd_s += ep->rate.usd_per_hour * secs;
		total = (int64_t)llround(ep->rate_usd_s / 3600 * 1e9);
		nusd = total - ep->charged_nusd;
		ep->charged_nusd = total;
		units = 0;
		last = h->nshares;
		for (j = 0; j < h->nshares; j++) {
			sh = &h->shares[j];
			if (sh->ep == i && sh->reported > sh->seen) {
				units += sh->reported - sh->seen;
				last = j;
			}
		}
		/* A total below the last one: the endpoint's stats are new
		   (it left the config and came back), counting from 0. */
		busy = 0;
		if (ep->busy_fresh) {
			busy = ep->busy_reported > ep->busy_seen ?
			    ep->busy_reported - ep->busy_seen : 0;
			ep->busy_seen = ep->busy_reported;
		}
		ep->busy_reported = 0;
		ep->busy_fresh = 0;
		if (busy > secs)
			busy = secs;
		mj = (int64_t)llround(ep->rate.watts * secs * 1e3 *
		    (ep->rate.idle_share + (1 - ep->rate.idle_share) *
		    (secs > 0 ? busy / secs : 0)));
		charge(&ep->sums, nusd, mj);
		ep->sums.elapsed_s += secs;
		ep->sums.busy_s += busy;
		if (units <= 0) {
			ep->sums.idle_nano_usd += nusd;
			ep->sums.idle_millijoules += mj;
			ep->sums.idle_usd = (double)ep->sums.idle_nano_usd / 1e9;
			ep->sums.idle_joules =
			    (double)ep->sums.idle_millijoules / 1e3;
		} else {
			ep->sums.units += units;
			ep->usd_per_unit = (double)nusd / 1e9 / units;
		}
		/* Each share its part by units; the last gets what is left,
		   so that the parts add up to the whole exactly. */
		left_nusd = nusd;
		left_mj = mj;
		for (j = 0; j < h->nshares; j++) {
			sh = &h->shares[j];
			if (sh->ep != i)
				continue;
			gain = sh->reported > sh->seen ?
			    sh->reported - sh->seen : 0;
			sh->reported = 0;
			if (gain <= 0)
				continue;
			sh->seen += gain;
			sh->sums.units += gain;
			part_nusd = j == last ? left_nusd :
			    (int64_t)((double)nusd * (gain / units));
			part_mj = j == last ? left_mj :
			    (int64_t)((double)mj * (gain / units));
			charge(&sh->sums, part_nusd, part_mj);
			left_nusd -= part_nusd;
			left_mj -= part_mj;
		}
	}
}

void
sy_hourly_report_busy(struct sy_hourly *h, const char *endpoint,
    double seconds)
{
	size_t i = find_endpoint(h, endpoint);

	if (i < h->neps) {
		h->eps[i].busy_reported += seconds;
		h->eps[i].busy_fresh = 1;
	}
}

size_t
sy_hourly_nendpoints(const struct sy_hourly *h)
{
	return h->neps;
}

const char *
sy_hourly_endpoint_sums(const struct sy_hourly *h, size_t i,
    struct sy_hourly_sums *s)
{
	*s = h->eps[i].sums;
	return h->eps[i].name;
}

double
sy_hourly_usd_per_unit(const struct sy_hourly *h, const char *endpoint)
{
	size_t i = find_endpoint(h, endpoint);

	return i < h->neps ? h->eps[i].usd_per_unit : -1;
}

size_t
sy_hourly_nshares(const struct sy_hourly *h)
{
	return h->nshares;
}

void
sy_hourly_share_sums(const struct sy_hourly *h, size_t i,
    const char **endpoint, const char **route, const char **model,
    struct sy_hourly_sums *s)
{
	const struct share *sh = &h->shares[i];

	*endpoint = h->eps[sh->ep].name;
	*route = sh->route;
	*model = sh->model;
	*s = sh->sums;
}

/* ==== Counting and metering ==== */

/* c's count of (endpoint, route, model), or NULL. */
static struct sy_hourly_count *
count_find(struct sy_hourly_counts *c, const char *endpoint,
    const char *route, const char *model)
{
	struct sy_hourly_count *n;

	for (n = atomic_load_explicit(&c->head, memory_order_acquire);
	    n != NULL; n = n->next)
		if (strcmp(n->endpoint, endpoint) == 0 &&
		    strcmp(n->route, route) == 0 &&
		    strcmp(n->model, model) == 0)
			return n;
	return NULL;
}

void
sy_hourly_count(struct sy_hourly_counts *c, const struct sy_record *r,
    uint64_t now_us)
{
	struct sy_hourly_rate rate;
	struct sy_hourly_count *n;
	const char *route, *model;
	double units;

	if (r->endpoint == NULL ||
	    sy_hourly_rate_of(r->hourly_price, &rate) < 0)
		return;
	route = name_or_empty(r->route);
	model = name_or_empty(r->model);
	units = sy_hourly_units(&rate, &r->usage);
	if ((n = count_find(c, r->endpoint, route, model)) == NULL) {
		n = sy_xcalloc(1, sizeof *n);
		n->endpoint = sy_xstrdup(r->endpoint);
		n->route = sy_xstrdup(route);
		n->model = sy_xstrdup(model);
		n->rate = rate;
		n->t_first_us = now_us;
		n->stats = sy_endstats_acquire(r->endpoint);
		atomic_init(&n->units, 0.0);
		n->next = atomic_load_explicit(&c->head, memory_order_relaxed);
		atomic_store_explicit(&c->head, n, memory_order_release);
	}
	atomic_store_explicit(&n->units, atomic_load_explicit(&n->units,
	    memory_order_relaxed) + units, memory_order_relaxed);
}

void
sy_hourly_counts_free(struct sy_hourly_counts *c)
{
	struct sy_hourly_count *n, *next;

	for (n = atomic_load(&c->head); n != NULL; n = next) {
		next = n->next;
		if (n->stats != NULL)
			sy_endstats_release(n->stats);
		free(n->endpoint);
		free(n->route);
		free(n->model);
		free(n);
	}
	atomic_store(&c->head, NULL);
}

void
sy_hourly_meter_init(struct sy_hourly_meter *m)
{
	pthread_mutex_init(&m->lock, NULL);
	m->h = sy_hourly_new();
	atomic_init(&m->next_close_us, 0);
	atomic_init(&m->interval_us, SY_HOURLY_INTERVAL_US);
}

void
sy_hourly_meter_set_interval(struct sy_hourly_meter *m, uint64_t interval_us)
{
	if (interval_us > 0)
		atomic_store_explicit(&m->interval_us, interval_us,
		    memory_order_relaxed);
}

void
sy_hourly_meter_free(struct sy_hourly_meter *m)
{
	sy_hourly_free(m->h);
	pthread_mutex_destroy(&m->lock);
}

int
sy_hourly_meter_due(struct sy_hourly_meter *m, uint64_t now_us)
{
	unsigned long long next = atomic_load_explicit(&m->next_close_us,
	    memory_order_relaxed);

	/* The first interval ends one interval after the first request. */
	if (next == 0) {
		atomic_compare_exchange_strong(&m->next_close_us, &next,
		    now_us + atomic_load_explicit(&m->interval_us,
		    memory_order_relaxed));
		return 0;
	}
	return now_us >= next;
}

/* A count of endpoint with its stats, of any of the n workers, or NULL. */
static struct sy_hourly_count *
count_of(struct sy_hourly_counts *(*counts)(void *arg, unsigned i),
    unsigned n, void *arg, const char *endpoint)
{
	struct sy_hourly_count *c;
	unsigned i;

	for (i = 0; i < n; i++)
		for (c = atomic_load_explicit(&counts(arg, i)->head,
		    memory_order_acquire); c != NULL; c = c->next)
			if (c->stats != NULL &&
			    strcmp(c->endpoint, endpoint) == 0)
				return c;
	return NULL;
}

void
sy_hourly_meter_close(struct sy_hourly_meter *m,
    struct sy_hourly_counts *(*counts)(void *arg, unsigned i), unsigned n,
    void *arg, uint64_t now_us, int wait)
{
	struct sy_hourly_count *c;
	unsigned i;
	size_t k;

	if (wait)
		pthread_mutex_lock(&m->lock);
	else if (pthread_mutex_trylock(&m->lock) != 0)
		return;
	for (i = 0; i < n; i++)
		for (c = atomic_load_explicit(&counts(arg, i)->head,
		    memory_order_acquire); c != NULL; c = c->next) {
			if (find_endpoint(m->h, c->endpoint) == m->h->neps)
				sy_hourly_endpoint(m->h, c->endpoint, &c->rate,
				    c->t_first_us < now_us ? c->t_first_us :
				    now_us);
			sy_hourly_report(m->h, c->endpoint, c->route, c->model,
			    atomic_load_explicit(&c->units,
			    memory_order_relaxed));
		}
	/* Busy time is the endpoint's, over every worker: read once. */
	for (k = 0; k < m->h->neps; k++)
		if ((c = count_of(counts, n, arg, m->h->eps[k].name)) !=
		    NULL)
			sy_hourly_report_busy(m->h, c->endpoint,
			    (double)sy_endstats_busy_us(c->stats, now_us) / 1e6);
	if (m->h->neps > 0) {
		sy_hourly_close(m->h, now_us);
		atomic_store_explicit(&m->next_close_us, now_us +
		    atomic_load_explicit(&m->interval_us, memory_order_relaxed),
		    memory_order_relaxed);
	}
	/* Every endpoint's rate, through its stats. */
	for (k = 0; k < m->h->neps; k++)
		if ((c = count_of(counts, n, arg, m->h->eps[k].name)) !=
		    NULL)
			sy_hourly_publish(c->stats, m->h->eps[k].usd_per_unit);
	if (!wait)
		pthread_mutex_unlock(&m->lock);
}
