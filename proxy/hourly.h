/* Self-hosted cost: an endpoint's $/hour and power over each accounting interval, spread over the tokens it served in it. */
#ifndef SY_HOURLY_H
#define SY_HOURLY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct sy_endpoint_stats;
struct sy_price;
struct sy_record;
struct sy_usage;

/* What one self-hosted endpoint costs and draws. */
struct sy_hourly_rate {
	double usd_per_hour;		/* the endpoint: GPUs, host, rack share */
	double watts;			/* at full load; 0: unknown */
	double idle_share;		/* of watts drawn while idle, 0..1 */
	double prompt_weight;		/* units per uncached prompt token */
	double completion_weight;	/* units per completion token */
	double cached_weight;		/* units per cached prompt token */
};

/*
 * The weighted token units of usage u under rate r (uncached prompt,
 * cached prompt and completion tokens, each by its weight); 0 when u has
 * no counts.
 */
double sy_hourly_units(const struct sy_hourly_rate *r,
    const struct sy_usage *u);

/*
 * The rate of price p into *r.  Returns 0, or -1 when p is NULL or a
 * price per token.
 */
int sy_hourly_rate_of(const struct sy_price *p, struct sy_hourly_rate *r);

/*
 * Publishes usd_per_unit as the last rate of the endpoint whose shared
 * stats are st, for sy_hourly_estimate on any thread (lock-free).
 */
void sy_hourly_publish(struct sy_endpoint_stats *st, double usd_per_unit);

/*
 * What usage u costs on the endpoint of st at the self-hosted price p:
 * its weighted units at the endpoint's last published rate; -1 when p is
 * not hourly or no rate is published yet.
 */
double sy_hourly_estimate(struct sy_endpoint_stats *st,
    const struct sy_price *p, const struct sy_usage *u);

/*
 * Sums of one endpoint, or of one (endpoint, route, model) share.  Money
 * and energy are counted in whole nano-dollars and millijoules, so that
 * the shares' sums and the idle sums add up to the endpoint's exactly.
 */
struct sy_hourly_sums {
	int64_t nano_usd;	/* cost charged */
	int64_t millijoules;	/* energy charged */
	int64_t idle_nano_usd;	/* endpoints: cost of intervals without tokens */
	int64_t idle_millijoules;
	double usd;		/* nano_usd / 1e9 */
	double joules;		/* millijoules / 1e3 */
	double units;		/* weighted tokens served */
	double idle_usd;	/* idle_nano_usd / 1e9 */
	double idle_joules;	/* idle_millijoules / 1e3 */
	double busy_s;		/* endpoints: time with a request in flight */
	double elapsed_s;	/* endpoints: accounted time in all */
};

/*
 * The accountant.  Not thread safe: its owner (the metrics) serialises
 * the calls.
 */
struct sy_hourly;

/* A new accountant; aborts when out of memory. */
struct sy_hourly *sy_hourly_new(void);

/* Frees h (NULL is fine). */
void sy_hourly_free(struct sy_hourly *h);

/*
 * Declares that endpoint (copied) costs rate from now_us on; its first
 * interval opens then.  A later call updates the rate (a reload).
 */
void sy_hourly_endpoint(struct sy_hourly *h, const char *endpoint,
    const struct sy_hourly_rate *rate, uint64_t now_us);

/*
 * Reports that the share (endpoint, route, model) has served units in
 * all so far, as counted by one of several counters (one per worker):
 * sy_hourly_close sums the reports since the last close and charges the
 * difference from the sum it saw then.  The endpoint must be declared.
 */
void sy_hourly_report(struct sy_hourly *h, const char *endpoint,
    const char *route, const char *model, double units);

/*
 * Reports that endpoint has been busy (a request in flight on any
 * worker) for seconds in all so far; sy_hourly_close charges the gain
 * since the last close (at most the interval's length), and several
 * reports before one close are summed.
 */
void sy_hourly_report_busy(struct sy_hourly *h, const char *endpoint,
    double seconds);

/*
 * Closes the interval of every endpoint at now_us: its cost (usd_per_hour
 * × the interval) and energy (watts × the interval × (idle_share + (1 −
 * idle_share) × the busy share of it)) go to its shares in proportion to
 * the units each gained, so that the shares' sums and the idle sums add
 * up to the endpoint's exactly; an interval without tokens is idle.
 * Starts the next interval.
 */
void sy_hourly_close(struct sy_hourly *h, uint64_t now_us);

/* Number of endpoints declared. */
size_t sy_hourly_nendpoints(const struct sy_hourly *h);

/* Endpoint i's name, and its sums into *s. */
const char *sy_hourly_endpoint_sums(const struct sy_hourly *h, size_t i,
    struct sy_hourly_sums *s);

/*
 * USD per unit over endpoint's last interval with tokens, or -1 before
 * it had one.
 */
double sy_hourly_usd_per_unit(const struct sy_hourly *h,
    const char *endpoint);

/* Number of shares. */
size_t sy_hourly_nshares(const struct sy_hourly *h);

/* Share i: its endpoint, route and model, and its sums into *s. */
void sy_hourly_share_sums(const struct sy_hourly *h, size_t i,
    const char **endpoint, const char **route, const char **model,
    struct sy_hourly_sums *s);

/* ==== Counting and metering, for the metrics ==== */

/* µs of an accounting interval when requests keep coming, by default. */
#define SY_HOURLY_INTERVAL_US 10000000ULL

/* One worker's units of one (endpoint, route, model) share. */
struct sy_hourly_count {
	struct sy_hourly_count *next;
	char *endpoint, *route, *model;
	struct sy_hourly_rate rate;	/* its price's when first counted */
	uint64_t t_first_us;		/* when first counted */
	struct sy_endpoint_stats *stats; /* the endpoint's, by name (a ref) */
	_Atomic double units;		/* in all; only the worker writes */
};

/*
 * One worker's counts: the worker adds to them without a lock; the meter
 * reads them on any thread.
 */
struct sy_hourly_counts {
	_Atomic(struct sy_hourly_count *) head;
};

/*
 * Counts r's weighted units when its model is self-hosted and an
 * endpoint served it.  Only the owner of c may call it.
 */
void sy_hourly_count(struct sy_hourly_counts *c, const struct sy_record *r,
    uint64_t now_us);

/* Frees c's counts (no thread may use them any more). */
void sy_hourly_counts_free(struct sy_hourly_counts *c);

/* The accountant over every worker's counts, and when it next closes. */
struct sy_hourly_meter {
	pthread_mutex_t lock;
	struct sy_hourly *h;
	atomic_ullong next_close_us;
	atomic_ullong interval_us;	/* SY_HOURLY_INTERVAL_US by default */
};

/* Initialises m (nothing accounted yet). */
void sy_hourly_meter_init(struct sy_hourly_meter *m);

/* Sets m's interval (µs > 0) from the next one on; any thread. */
void sy_hourly_meter_set_interval(struct sy_hourly_meter *m,
    uint64_t interval_us);

/* Frees what m holds. */
void sy_hourly_meter_free(struct sy_hourly_meter *m);

/*
 * Whether an interval of m has ended by now_us (one atomic load); the
 * first call starts the first interval.
 */
int sy_hourly_meter_due(struct sy_hourly_meter *m, uint64_t now_us);

/*
 * Closes m's interval at now_us over the counts of n workers (counts(arg,
 * i) is worker i's): declares the endpoints seen, reports every count,
 * reports each endpoint's busy time from its stats (sy_endstats_busy_us),
 * closes, publishes each endpoint's rate.  With wait 0 it gives up when
 * another thread is closing, and returns unlocked; with wait 1 it returns
 * with m->lock held, for the caller to read m->h and then unlock.
 */
void sy_hourly_meter_close(struct sy_hourly_meter *m,
    struct sy_hourly_counts *(*counts)(void *arg, unsigned i), unsigned n,
    void *arg, uint64_t now_us, int wait);

#endif
