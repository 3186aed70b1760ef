/* Metrics: per-worker shards of per-route and per-endpoint series, merged into Prometheus text or JSON. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "cache.h"
#include "config.h"
#include "hist.h"
#include "counters.h"
#include "hourly.h"
#include "metrics.h"
#include "outlier.h"
#include "policy.h"
#include "prefix_share.h"
#include "record.h"
#include "util.h"

#define NSLOTS 128		/* hash slots of a table */
#define NCODES 600		/* status codes 100..599; 0 counts any other */
#define NREASONS 24		/* distinct policy reasons counted per series */

enum { TOK_PROMPT, TOK_COMPLETION, TOK_CACHED, NTOK };

static const char *const tok_names[NTOK] = { "prompt", "completion", "cached" };

/* The cache's results, as the access log names them (record.h). */
enum { CACHE_BYPASS, CACHE_MISS, CACHE_HIT, CACHE_COALESCED, NCACHE };

static const char *const cache_names[NCACHE] = {
	"bypass", "miss", "hit", "coalesced"
};

/*
 * The counters of one route or endpoint.  In a shard only the owning worker
 * writes them (relaxed load then store); scrapes read them with atomic
 * loads.
 */
struct series {
	char *name;
	struct series *next;		/* in the same hash slot */
	atomic_ullong requests;
	atomic_ullong errors;
	atomic_ullong codes[NCODES];
	atomic_ullong tokens[NTOK];
	_Atomic double cost_usd;
	atomic_ullong retries;
	atomic_ullong fallbacks;
	atomic_ullong escalations;	/* answers replaced by another model's */
	struct {
		const char *_Atomic word;	/* a policy's static word */
		atomic_ullong n;
	} reasons[NREASONS];
	struct sy_hist latency;
	struct sy_hist ttft;
	struct sy_hist overhead;
	struct sy_hist queue;		/* waits for a free endpoint */
	struct sy_hist batch_size;	/* inputs per batch (one per batch) */
	struct sy_hist batch_wait;	/* each batched request's wait */
	atomic_ullong flushes[SY_FLUSH_NREASONS];	/* batches by reason */
	atomic_ullong shed;		/* requests the batcher shed */
	atomic_ullong cache[NCACHE];	/* requests by cache result */
	atomic_ullong saved_tokens;	/* tokens hits did not spend */
	_Atomic double saved_usd;
	struct sy_hist cache_hit;	/* latency of cache hits */
	struct sy_hist itl;		/* gaps between stream writes */
	struct sy_hist tpot;		/* time per output token */
};

/*
 * Series by name.  The owner looks names up through the slots without a
 * lock; adding a series, and walking all[], happen under the shard's lock.
 */
struct table {
	struct series *slots[NSLOTS];
	struct series **all;		/* in the order they were added */
	size_t n;
	size_t cap;
};

/* What series are kept by: a request counts once in each it has a name in. */
enum dim { DIM_ROUTE, DIM_ENDPOINT, DIM_MODEL, DIM_TEAM, DIM_KEY, NDIMS };

struct sy_metrics_shard {
	pthread_mutex_t lock;
	struct table dims[NDIMS];
	struct sy_hourly_counts hourly;	/* self-hosted units (hourly.h) */
	struct sy_metrics *owner;
};

struct sy_metrics {
	unsigned nshards;
	struct sy_metrics_shard *shards;
	struct sy_hourly_meter hourly;	/* self-hosted cost over the shards */
	atomic_uint *conns;		/* open client connections, or NULL */
};

/* Every series merged over the shards, at one scrape. */
struct snapshot {
	struct table dims[NDIMS];
};

/* ==== Series and tables ==== */

/* Adds n to a counter that only the calling thread writes. */
static void
bump(atomic_ullong *a, uint64_t n)
{
	atomic_store_explicit(a,
	    atomic_load_explicit(a, memory_order_relaxed) + n,
	    memory_order_relaxed);
}

/* Reads a counter that another thread may be writing. */
static uint64_t
get(const atomic_ullong *a)
{
	return atomic_load_explicit(a, memory_order_relaxed);
}

/* Reads a sum of USD (a cost, or savings). */
static double
get_usd(const _Atomic double *a)
{
	return atomic_load_explicit(a, memory_order_relaxed);
}

/* Adds usd to a sum that only the calling thread writes. */
static void
add_usd(_Atomic double *a, double usd)
{
	atomic_store_explicit(a, get_usd(a) + usd, memory_order_relaxed);
}

/* FNV-1a of s, reduced to a slot. */
static unsigned
slot_of(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h % NSLOTS;
}

/* A new zeroed series called name (copied), or NULL when out of memory. */
static struct series *
series_new(const char *name)
{
	struct series *se;
	size_t i;

	if ((se = calloc(1, sizeof *se)) == NULL)
		return NULL;
	if ((se->name = strdup(name)) == NULL) {
		free(se);
		return NULL;
	}
	atomic_init(&se->requests, 0);
	atomic_init(&se->errors, 0);
	for (i = 0; i < NCODES; i++)
		atomic_init(&se->codes[i], 0);
	for (i = 0; i < NTOK; i++)
		atomic_init(&se->tokens[i], 0);
	atomic_init(&se->cost_usd, 0.0);
	atomic_init(&se->saved_usd, 0.0);
	sy_hist_init(&se->cache_hit);
	sy_hist_init(&se->latency);
	sy_hist_init(&se->ttft);
	sy_hist_init(&se->overhead);
	return se;
}

/* The series called name in slot of t, or NULL. */
static struct series *
table_find(const struct table *t, const char *name, unsigned slot)
{
	struct series *se;

	for (se = t->slots[slot]; se != NULL; se = se->next)
		if (strcmp(se->name, name) == 0)
			return se;
	return NULL;
}

/* Links se into t; 0, or -1 when out of memory (se is left alone). */
static int
table_link(struct table *t, struct series *se, unsigned slot)
{
	struct series **all;
	size_t cap;

	if (t->n == t->cap) {
		cap = t->cap ? t->cap * 2 : 16;
		if ((all = realloc(t->all, cap * sizeof *all)) == NULL)
			return -1;
		t->all = all;
		t->cap = cap;
	}
	t->all[t->n++] = se;
	se->next = t->slots[slot];
	t->slots[slot] = se;
	return 0;
}

/* The series called name in t, added when missing; NULL when out of memory. */
static struct series *
table_get(struct table *t, const char *name, pthread_mutex_t *lock)
{
	unsigned slot = slot_of(name);
	struct series *se;
	int rc;

	if ((se = table_find(t, name, slot)) != NULL)
		return se;
	if ((se = series_new(name)) == NULL)
		return NULL;
	if (lock != NULL)
		pthread_mutex_lock(lock);
	rc = table_link(t, se, slot);
	if (lock != NULL)
		pthread_mutex_unlock(lock);
	if (rc != 0) {
		free(se->name);
		free(se);
		return NULL;
	}
	return se;
}

/* Frees every series of t and its list (not t itself). */
static void
table_free(struct table *t)
{
	size_t i;

	for (i = 0; i < t->n; i++) {
		free(t->all[i]->name);
		free(t->all[i]);
	}
	free(t->all);
}

/* Orders series pointers by name, for qsort. */
static int
series_cmp(const void *a, const void *b)
{
	const struct series *x = *(struct series *const *)a;
	const struct series *y = *(struct series *const *)b;

	return strcmp(x->name, y->name);
}

/*
 * Adds n to the count of reason in se (words are compared by content;
 * beyond NREASONS distinct words the rest are not counted).
 */
static void
count_reason(struct series *se, const char *reason, uint64_t n)
{
	const char *w;
	size_t i;

	for (i = 0; i < NREASONS; i++) {
		w = atomic_load(&se->reasons[i].word);
		if (w == NULL) {
			atomic_store(&se->reasons[i].word, reason);
			w = reason;
		}
		if (w == reason || strcmp(w, reason) == 0) {
			bump(&se->reasons[i].n, n);
			return;
		}
	}
}

/* Counts r's batching in se: its wait, or that it was shed. */
static void
series_count_batch(struct series *se, const struct sy_record *r)
{
	if (r->batch_shed)
		bump(&se->shed, 1);
	if (r->batch_size != 0)
		sy_hist_add(&se->batch_wait, r->batch_wait_us);
}

void
sy_metrics_record_batch(struct sy_metrics_shard *s, const char *route,
    unsigned inputs, enum sy_flush reason)
{
	struct series *se = table_get(&s->dims[DIM_ROUTE], route, &s->lock);

	if (se == NULL)
		return;
	sy_hist_add(&se->batch_size, inputs);
	if (reason < SY_FLUSH_NREASONS)
		bump(&se->flushes[reason], 1);
}

/* Counts the cache's part of r in se. */
static void
count_cache(struct series *se, const struct sy_record *r)
{
	size_t i;

	for (i = 0; i < NCACHE && strcmp(cache_names[i], r->cache) != 0; i++)
		;
	if (i == NCACHE)
		return;
	bump(&se->cache[i], 1);
	if (r->saved_tokens > 0)
		bump(&se->saved_tokens, (uint64_t)r->saved_tokens);
	if (r->saved_usd > 0 && isfinite(r->saved_usd))
		add_usd(&se->saved_usd, r->saved_usd);
	if (i == CACHE_HIT)
		sy_hist_add(&se->cache_hit, r->latency_us);
}

/* Counts r's inter-token gaps and time per output token in se. */
static void
count_tokens_pace(struct series *se, const struct sy_record *r)
{
	size_t i;

	for (i = 0; i < r->n_itl; i++)
		sy_hist_add(&se->itl, r->itl_us[i]);
	if (r->tpot_us >= 0)
		sy_hist_add(&se->tpot, (uint64_t)r->tpot_us);
}

/* Counts r in se. */
static void
series_count(struct series *se, const struct sy_record *r)
{
	const struct sy_usage *u = &r->usage;
	int code = r->status;

	bump(&se->requests, 1);
	bump(&se->codes[code >= 100 && code < NCODES ? code : 0], 1);
	if (code >= 400)
		bump(&se->errors, 1);
	if (u->prompt_tokens > 0)
		bump(&se->tokens[TOK_PROMPT], (uint64_t)u->prompt_tokens);
	if (u->completion_tokens > 0)
		bump(&se->tokens[TOK_COMPLETION],
		    (uint64_t)u->completion_tokens);
	if (u->cached_tokens > 0)
		bump(&se->tokens[TOK_CACHED], (uint64_t)u->cached_tokens);
	if (r->cost_usd > 0 && isfinite(r->cost_usd) && r->hourly_price == NULL)
		add_usd(&se->cost_usd, r->cost_usd);
	sy_hist_add(&se->latency, r->latency_us);
	sy_hist_add(&se->overhead, r->overhead_us);
	if (r->stream && r->ttft_us >= 0)
		sy_hist_add(&se->ttft, (uint64_t)r->ttft_us);
	if (r->retries > 0)
		bump(&se->retries, r->retries);
	if (r->fallbacks > 0)
		bump(&se->fallbacks, r->fallbacks);
	if (r->escalations > 0)
		bump(&se->escalations, r->escalations);
	if (r->queue_us > 0)
		sy_hist_add(&se->queue, r->queue_us);
	count_tokens_pace(se, r);
	if (r->policy_reason != NULL)
		count_reason(se, r->policy_reason, 1);
	series_count_batch(se, r);
	if (r->cache != NULL)
		count_cache(se, r);
}

/* Adds src's counts to dst (private to the caller). */
static void
series_merge(struct series *dst, const struct series *src)
{
	size_t i;

	bump(&dst->requests, get(&src->requests));
	bump(&dst->errors, get(&src->errors));
	for (i = 0; i < NCODES; i++)
		bump(&dst->codes[i], get(&src->codes[i]));
	for (i = 0; i < NTOK; i++)
		bump(&dst->tokens[i], get(&src->tokens[i]));
	add_usd(&dst->cost_usd, get_usd(&src->cost_usd));
	for (i = 0; i < NCACHE; i++)
		bump(&dst->cache[i], get(&src->cache[i]));
	bump(&dst->saved_tokens, get(&src->saved_tokens));
	add_usd(&dst->saved_usd, get_usd(&src->saved_usd));
	sy_hist_merge(&dst->cache_hit, &src->cache_hit);
	bump(&dst->retries, get(&src->retries));
	bump(&dst->escalations, get(&src->escalations));
	bump(&dst->fallbacks, get(&src->fallbacks));
	for (i = 0; i < NREASONS; i++) {
		const char *w = atomic_load(&src->reasons[i].word);

		if (w != NULL)
			count_reason(dst, w, get(&src->reasons[i].n));
	}
	sy_hist_merge(&dst->latency, &src->latency);
	sy_hist_merge(&dst->ttft, &src->ttft);
	sy_hist_merge(&dst->overhead, &src->overhead);
	sy_hist_merge(&dst->queue, &src->queue);
	sy_hist_merge(&dst->batch_size, &src->batch_size);
	sy_hist_merge(&dst->batch_wait, &src->batch_wait);
	sy_hist_merge(&dst->itl, &src->itl);
	sy_hist_merge(&dst->tpot, &src->tpot);
	for (i = 0; i < SY_FLUSH_NREASONS; i++)
		bump(&dst->flushes[i], get(&src->flushes[i]));
	bump(&dst->shed, get(&src->shed));
}

/* ==== Shards ==== */

/* Allocates m and its shards (at least one); aborts when out of memory. */
struct sy_metrics *
sy_metrics_new(unsigned nshards)
{
	struct sy_metrics *m;
	unsigned i;

	if (nshards == 0)
		nshards = 1;
	m = sy_xcalloc(1, sizeof *m);
	m->nshards = nshards;
	m->shards = sy_xcalloc(nshards, sizeof *m->shards);
	for (i = 0; i < nshards; i++) {
		pthread_mutex_init(&m->shards[i].lock, NULL);
		m->shards[i].owner = m;
	}
	sy_hourly_meter_init(&m->hourly);
	return m;
}

/* Frees every shard's series, then m. */
void
sy_metrics_free(struct sy_metrics *m)
{
	unsigned i, d;

	if (m == NULL)
		return;
	for (i = 0; i < m->nshards; i++) {
		for (d = 0; d < NDIMS; d++)
			table_free(&m->shards[i].dims[d]);
		sy_hourly_counts_free(&m->shards[i].hourly);
		pthread_mutex_destroy(&m->shards[i].lock);
	}
	sy_hourly_meter_free(&m->hourly);
	free(m->shards);
	free(m);
}

/* Shard i of m (i < nshards; taken modulo nshards). */
struct sy_metrics_shard *
sy_metrics_shard(struct sy_metrics *m, unsigned i)
{
	return &m->shards[i % m->nshards];
}

/*
 * Takes the shard's lock only to add a name it has not seen; a record that
 * cannot get memory for a new name is not counted.
 */
/* Worker i's self-hosted counts in m (for the meter). */
static struct sy_hourly_counts *
hourly_counts(void *arg, unsigned i)
{
	struct sy_metrics *m = arg;

	return &m->shards[i].hourly;
}

/* Closes m's self-hosted accounting interval (see hourly.h). */
static void
hourly_close(struct sy_metrics *m, int wait)
{
	sy_hourly_meter_close(&m->hourly, hourly_counts, m->nshards, m,
	    sy_now_us(), wait);
}

void
sy_metrics_record(struct sy_metrics_shard *s, const struct sy_record *r)
{
	struct series *se;
	struct sy_record own;

	if (r->hourly_price != NULL) {
		sy_hourly_count(&s->hourly, r, sy_now_us());
		if (sy_hourly_meter_due(&s->owner->hourly, sy_now_us()))
			hourly_close(s->owner, 0);
	}

	se = table_get(&s->dims[DIM_ROUTE], r->route != NULL ? r->route : "-",
	    &s->lock);
	if (se != NULL)
		series_count(se, r);
	if (r->model != NULL &&
	    (se = table_get(&s->dims[DIM_MODEL], r->model, &s->lock)) != NULL)
		series_count(se, r);
	if (r->team != NULL &&
	    (se = table_get(&s->dims[DIM_TEAM], r->team, &s->lock)) != NULL)
		series_count(se, r);
	if (r->key_series && r->key_id != NULL &&
	    (se = table_get(&s->dims[DIM_KEY], r->key_id, &s->lock)) != NULL)
		series_count(se, r);
	if (r->endpoint == NULL ||
	    (se = table_get(&s->dims[DIM_ENDPOINT], r->endpoint, &s->lock)) ==
	    NULL)
		return;
	if (r->escalations == 0) {
		series_count(se, r);
		return;
	}
	/* The endpoint that answered is charged with its own answer only. */
	own = *r;
	own.usage = r->answer_usage;
	own.cost_usd = r->answer_cost_usd;
	own.escalations = 0;
	series_count(se, &own);
}

/* ==== Snapshots ==== */

/* Adds each series of src into the series of the same name in dst. */
static void
merge_table(struct table *dst, const struct table *src)
{
	struct series *se;
	size_t i;

	for (i = 0; i < src->n; i++)
		if ((se = table_get(dst, src->all[i]->name, NULL)) != NULL)
			series_merge(se, src->all[i]);
}

/*
 * Merges every shard of m into snap, with a series (maybe empty) for each
 * route and endpoint of cfg, sorted by name.
 */
static void
snapshot_take(struct sy_metrics *m, const struct sy_config *cfg,
    struct snapshot *snap)
{
	struct sy_metrics_shard *s;
	struct table *t;
	size_t i, d;

	memset(snap, 0, sizeof *snap);
	for (i = 0; cfg != NULL && i < cfg->nroutes; i++)
		table_get(&snap->dims[DIM_ROUTE], cfg->routes[i].name, NULL);
	for (i = 0; cfg != NULL && i < cfg->nendpoints; i++)
		table_get(&snap->dims[DIM_ENDPOINT], cfg->endpoints[i].name,
		    NULL);
	for (i = 0; cfg != NULL && i < cfg->tenancy.nteams; i++)
		table_get(&snap->dims[DIM_TEAM], cfg->tenancy.teams[i].name,
		    NULL);
	for (i = 0; i < m->nshards; i++) {
		s = &m->shards[i];
		pthread_mutex_lock(&s->lock);
		for (d = 0; d < NDIMS; d++)
			merge_table(&snap->dims[d], &s->dims[d]);
		pthread_mutex_unlock(&s->lock);
	}
	for (d = 0; d < NDIMS; d++) {
		t = &snap->dims[d];
		if (t->n > 1)
			qsort(t->all, t->n, sizeof *t->all, series_cmp);
	}
}

/* Frees the series of snap. */
static void
snapshot_free(struct snapshot *snap)
{
	size_t d;

	for (d = 0; d < NDIMS; d++)
		table_free(&snap->dims[d]);
}

/* The requests in flight to ep, all workers; 0 when it has no stats. */
static long
ep_in_flight(const struct sy_endpoint *ep)
{
	if (ep->stats == NULL)
		return 0;
	return atomic_load_explicit(&ep->stats->in_flight,
	    memory_order_relaxed);
}

/* cfg's endpoint called name, or NULL. */
static const struct sy_endpoint *
find_endpoint(const struct sy_config *cfg, const char *name)
{
	size_t i;

	for (i = 0; i < cfg->nendpoints; i++)
		if (strcmp(cfg->endpoints[i].name, name) == 0)
			return &cfg->endpoints[i];
	return NULL;
}

/* ==== Prometheus text ==== */

enum fam_kind {
	FAM_REQUESTS, FAM_ERRORS, FAM_TOKENS, FAM_COST, FAM_RETRIES,
	FAM_FALLBACKS, FAM_ESCALATIONS, FAM_REASONS, FAM_FLUSHES, FAM_SHED,
	FAM_CACHE, FAM_SAVED_TOKENS, FAM_SAVED_USD,
	FAM_LATENCY, FAM_TTFT, FAM_OVERHEAD, FAM_QUEUE,	/* histograms */
	FAM_BATCH_SIZE, FAM_BATCH_WAIT, FAM_CACHE_HIT, FAM_ITL, FAM_TPOT
};

struct family {
	const char *name;
	enum fam_kind kind;
	const char *help;
};

/* A histogram bucket: its le label and its bound in µs. */
struct bound {
	const char *le;
	uint64_t us;
};

static const struct family route_families[] = {
	{ "switchyard_requests_total", FAM_REQUESTS,
	  "Finished requests by route and HTTP status code." },
	{ "switchyard_request_errors_total", FAM_ERRORS,
	  "Finished requests with an HTTP status >= 400, by route." },
	{ "switchyard_tokens_total", FAM_TOKENS,
	  "Tokens by route and type (prompt, completion, cached prompt)." },
	{ "switchyard_cost_usd_total", FAM_COST,
	  "Cost of the requests in USD by route, where a price is known." },
	{ "switchyard_request_duration_seconds", FAM_LATENCY,
	  "Time from a request's arrival to its last byte sent, by route." },
	{ "switchyard_ttft_seconds", FAM_TTFT,
	  "Time to the first byte of streaming requests, by route." },
	{ "switchyard_itl_seconds", FAM_ITL,
	  "Inter-token latency: time between two writes of a stream, by route." },
	{ "switchyard_tpot_seconds", FAM_TPOT,
	  "Time per output token after the first of streams, by route." },
	{ "switchyard_overhead_seconds", FAM_OVERHEAD,
	  "Time a request spent in switchyard, not upstream, by route." },
	{ "switchyard_retries_total", FAM_RETRIES,
	  "Tries after the first, on other endpoints, by route." },
	{ "switchyard_fallbacks_total", FAM_FALLBACKS,
	  "Fallback routes taken, by route." },
	{ "switchyard_escalations_total", FAM_ESCALATIONS,
	  "Answers a model-selection cascade escalated to the next model, by route." },
	{ "switchyard_policy_decisions_total", FAM_REASONS,
	  "The routing policy's reason for each request's endpoint, by route." },
	{ "switchyard_queue_wait_seconds", FAM_QUEUE,
	  "Time requests waited for a free endpoint, by route." },
	{ "switchyard_batch_size", FAM_BATCH_SIZE,
	  "Inputs in each batch the route's batcher sent." },
	{ "switchyard_batch_queue_wait_seconds", FAM_BATCH_WAIT,
	  "Time batched requests waited in the route's batcher." },
	{ "switchyard_batch_flushes_total", FAM_FLUSHES,
	  "Batches the route's batcher sent, by the reason they went." },
	{ "switchyard_batch_shed_total", FAM_SHED,
	  "Requests the route's batcher shed (queue full or deadline)." },
	{ "switchyard_cache_requests_total", FAM_CACHE,
	  "Requests by route and prompt cache result (hit, miss, bypass, coalesced)." },
	{ "switchyard_cache_saved_tokens_total", FAM_SAVED_TOKENS,
	  "Prompt and completion tokens that cache hits did not spend, by route." },
	{ "switchyard_cache_saved_usd_total", FAM_SAVED_USD,
	  "What the answers served from the cache cost, in USD, by route." },
	{ "switchyard_cache_hit_duration_seconds", FAM_CACHE_HIT,
	  "Time from arrival to last byte of requests answered from the cache, by route." },
};

static const struct family model_families[] = {
	{ "switchyard_model_requests_total", FAM_REQUESTS,
	  "Finished requests by served model and HTTP status code." },
	{ "switchyard_model_tokens_total", FAM_TOKENS,
	  "Tokens by served model and type (prompt, completion, cached prompt)." },
	{ "switchyard_model_cost_usd_total", FAM_COST,
	  "Cost of the requests in USD by served model, where a price per token "
	  "is known." },
	{ "switchyard_model_request_duration_seconds", FAM_LATENCY,
	  "Time from a request's arrival to its last byte sent, by served model." },
	{ "switchyard_model_ttft_seconds", FAM_TTFT,
	  "Time to the first byte of streaming requests, by served model." },
	{ "switchyard_model_itl_seconds", FAM_ITL,
	  "Inter-token latency of streams, by served model." },
	{ "switchyard_model_tpot_seconds", FAM_TPOT,
	  "Time per output token after the first of streams, by served model." },
};

static const struct family endpoint_families[] = {
	{ "switchyard_endpoint_requests_total", FAM_REQUESTS,
	  "Finished requests by endpoint and HTTP status code." },
	{ "switchyard_endpoint_errors_total", FAM_ERRORS,
	  "Finished requests with an HTTP status >= 400, by endpoint." },
	{ "switchyard_endpoint_tokens_total", FAM_TOKENS,
	  "Tokens by endpoint and type (prompt, completion, cached prompt)." },
	{ "switchyard_endpoint_cost_usd_total", FAM_COST,
	  "Cost of the requests in USD by endpoint, where a price is known." },
	{ "switchyard_endpoint_request_duration_seconds", FAM_LATENCY,
	  "Time from a request's arrival to its last byte sent, by endpoint." },
	{ "switchyard_endpoint_ttft_seconds", FAM_TTFT,
	  "Time to the first byte of streaming requests, by endpoint." },
};

static const struct family team_families[] = {
	{ "switchyard_team_requests_total", FAM_REQUESTS,
	  "Finished requests by team (of the API key) and HTTP status code." },
	{ "switchyard_team_errors_total", FAM_ERRORS,
	  "Finished requests with an HTTP status >= 400, by team." },
	{ "switchyard_team_tokens_total", FAM_TOKENS,
	  "Tokens by team and type (prompt, completion, cached prompt)." },
	{ "switchyard_team_cost_usd_total", FAM_COST,
	  "Cost of the requests in USD by team, where a price is known." },
	{ "switchyard_team_request_duration_seconds", FAM_LATENCY,
	  "Time from a request's arrival to its last byte sent, by team." },
};

static const struct family key_families[] = {
	{ "switchyard_key_requests_total", FAM_REQUESTS,
	  "Finished requests by API key id and HTTP status code." },
	{ "switchyard_key_errors_total", FAM_ERRORS,
	  "Finished requests with an HTTP status >= 400, by API key id." },
	{ "switchyard_key_tokens_total", FAM_TOKENS,
	  "Tokens by API key id and type (prompt, completion, cached prompt)." },
	{ "switchyard_key_cost_usd_total", FAM_COST,
	  "Cost of the requests in USD by API key id, where a price is known." },
};

#define NFAMS(a) (sizeof (a) / sizeof (a)[0])

/* Each dimension's label, its name in /admin/stats, and its families. */
static const struct {
	const char *label;
	const char *json;
	const struct family *fams;
	size_t nfams;
} dims[NDIMS] = {
	[DIM_ROUTE] = { "route", "routes", route_families,
	    NFAMS(route_families) },
	[DIM_ENDPOINT] = { "endpoint", "endpoints", endpoint_families,
	    NFAMS(endpoint_families) },
	[DIM_MODEL] = { "model", "models", model_families,
	    NFAMS(model_families) },
	[DIM_TEAM] = { "team", "teams", team_families, NFAMS(team_families) },
	[DIM_KEY] = { "key", "keys", key_families, NFAMS(key_families) },
};

static const struct bound latency_bounds[] = {
	{ "0.005", 5000 }, { "0.01", 10000 }, { "0.025", 25000 },
	{ "0.05", 50000 }, { "0.1", 100000 }, { "0.25", 250000 },
	{ "0.5", 500000 }, { "1", 1000000 }, { "2.5", 2500000 },
	{ "5", 5000000 }, { "10", 10000000 }, { "30", 30000000 },
	{ "60", 60000000 }, { "120", 120000000 }, { "300", 300000000 },
	{ NULL, 0 }
};

/* Batch sizes, in inputs (the same struct: "us" holds a count). */
static const struct bound size_bounds[] = {
	{ "1", 1 }, { "2", 2 }, { "4", 4 }, { "8", 8 }, { "16", 16 },
	{ "32", 32 }, { "64", 64 }, { "128", 128 }, { "256", 256 },
	{ "512", 512 }, { "1024", 1024 }, { "2048", 2048 },
	{ NULL, 0 }
};

static const struct bound overhead_bounds[] = {
	{ "0.00005", 50 }, { "0.0001", 100 }, { "0.00025", 250 },
	{ "0.0005", 500 }, { "0.001", 1000 }, { "0.0025", 2500 },
	{ "0.005", 5000 }, { "0.01", 10000 }, { "0.025", 25000 },
	{ "0.05", 50000 }, { "0.1", 100000 },
	{ NULL, 0 }
};

/* Appends s as a label value: backslash, quote and newline escaped. */
static void
put_label_value(struct evbuffer *out, const char *s)
{
	const char *p;

	for (p = s; *p != '\0'; p++) {
		switch (*p) {
		case '\\': evbuffer_add(out, "\\\\", 2); break;
		case '"': evbuffer_add(out, "\\\"", 2); break;
		case '\n': evbuffer_add(out, "\\n", 2); break;
		default: evbuffer_add(out, p, 1); break;
		}
	}
}

void
sy_metrics_put_label(struct evbuffer *out, const char *s)
{
	put_label_value(out, s);
}

/* Appends `name{label="value"` (the caller closes the braces). */
static void
put_start(struct evbuffer *out, const char *name, const char *suffix,
    const char *label, const char *value)
{
	evbuffer_add_printf(out, "%s%s{%s=\"", name, suffix, label);
	put_label_value(out, value);
	evbuffer_add(out, "\"", 1);
}

/*
 * Appends the _bucket (at bounds, then +Inf), _sum and _count samples of h
 * (of µs as seconds, or of counts when bounds is size_bounds).
 */
static void
put_histogram(struct evbuffer *out, const char *name, const char *label,
    const char *value, const struct sy_hist *h, const struct bound *bounds)
{
	int counts = bounds == size_bounds;

	uint64_t count = get(&h->count), sum = get(&h->sum_us);

	for (; bounds->le != NULL; bounds++) {
		put_start(out, name, "_bucket", label, value);
		evbuffer_add_printf(out, ",le=\"%s\"} %llu\n", bounds->le,
		    (unsigned long long)sy_hist_count_le(h, bounds->us));
	}
	put_start(out, name, "_bucket", label, value);
	evbuffer_add_printf(out, ",le=\"+Inf\"} %llu\n",
	    (unsigned long long)count);
	put_start(out, name, "_sum", label, value);
	if (counts)
		evbuffer_add_printf(out, "} %llu\n", (unsigned long long)sum);
	else
		evbuffer_add_printf(out, "} %llu.%06llu\n",
		    (unsigned long long)(sum / 1000000),
		    (unsigned long long)(sum % 1000000));
	put_start(out, name, "_count", label, value);
	evbuffer_add_printf(out, "} %llu\n", (unsigned long long)count);
}

/* Appends the samples of family f for series se, labelled label=se->name. */
static void
put_series(struct evbuffer *out, const struct family *f, const char *label,
    const struct series *se)
{
	uint64_t n;
	size_t i;

	switch (f->kind) {
	case FAM_REQUESTS:
		for (i = 0; i < NCODES; i++) {
			if ((n = get(&se->codes[i])) == 0)
				continue;
			put_start(out, f->name, "", label, se->name);
			evbuffer_add_printf(out, ",code=\"%zu\"} %llu\n", i,
			    (unsigned long long)n);
		}
		break;
	case FAM_ERRORS:
		put_start(out, f->name, "", label, se->name);
		evbuffer_add_printf(out, "} %llu\n",
		    (unsigned long long)get(&se->errors));
		break;
	case FAM_TOKENS:
		for (i = 0; i < NTOK; i++) {
			put_start(out, f->name, "", label, se->name);
			evbuffer_add_printf(out, ",type=\"%s\"} %llu\n",
			    tok_names[i],
			    (unsigned long long)get(&se->tokens[i]));
		}
		break;
	case FAM_COST:
		put_start(out, f->name, "", label, se->name);
		evbuffer_add_printf(out, "} %.17g\n", get_usd(&se->cost_usd));
		break;
	case FAM_LATENCY:
		put_histogram(out, f->name, label, se->name, &se->latency,
		    latency_bounds);
		break;
	case FAM_TTFT:
		put_histogram(out, f->name, label, se->name, &se->ttft,
		    latency_bounds);
		break;
	case FAM_ITL:
		put_histogram(out, f->name, label, se->name, &se->itl,
		    overhead_bounds);
		break;
	case FAM_TPOT:
		put_histogram(out, f->name, label, se->name, &se->tpot,
		    overhead_bounds);
		break;
	case FAM_OVERHEAD:
		put_histogram(out, f->name, label, se->name, &se->overhead,
		    overhead_bounds);
		break;
	case FAM_RETRIES:
	case FAM_FALLBACKS:
	case FAM_ESCALATIONS:
		put_start(out, f->name, "", label, se->name);
		evbuffer_add_printf(out, "} %llu\n", (unsigned long long)get(
		    f->kind == FAM_RETRIES ? &se->retries :
		    f->kind == FAM_FALLBACKS ? &se->fallbacks :
		    &se->escalations));
		break;
	case FAM_REASONS:
		for (i = 0; i < NREASONS; i++) {
			const char *w = atomic_load(&se->reasons[i].word);

			if (w == NULL)
				break;
			put_start(out, f->name, "", label, se->name);
			SY_ADD_LIT(out, ",reason=\"");
			put_label_value(out, w);
			evbuffer_add_printf(out, "\"} %llu\n",
			    (unsigned long long)get(&se->reasons[i].n));
		}
		break;
	case FAM_QUEUE:
		put_histogram(out, f->name, label, se->name, &se->queue,
		    latency_bounds);
		break;
	case FAM_BATCH_SIZE:
		put_histogram(out, f->name, label, se->name, &se->batch_size,
		    size_bounds);
		break;
	case FAM_BATCH_WAIT:
		put_histogram(out, f->name, label, se->name, &se->batch_wait,
		    overhead_bounds);
		break;
	case FAM_FLUSHES:
		for (i = SY_FLUSH_SIZE; i < SY_FLUSH_NREASONS; i++) {
			put_start(out, f->name, "", label, se->name);
			evbuffer_add_printf(out, ",reason=\"%s\"} %llu\n",
			    sy_flush_word((enum sy_flush)i),
			    (unsigned long long)get(&se->flushes[i]));
		}
		break;
	case FAM_SHED:
		put_start(out, f->name, "", label, se->name);
		evbuffer_add_printf(out, "} %llu\n",
		    (unsigned long long)get(&se->shed));
		break;
	case FAM_CACHE:
		for (i = 0; i < NCACHE; i++) {
			put_start(out, f->name, "", label, se->name);
			evbuffer_add_printf(out, ",result=\"%s\"} %llu\n",
			    cache_names[i],
			    (unsigned long long)get(&se->cache[i]));
		}
		break;
	case FAM_SAVED_TOKENS:
		put_start(out, f->name, "", label, se->name);
		evbuffer_add_printf(out, "} %llu\n",
		    (unsigned long long)get(&se->saved_tokens));
		break;
	case FAM_SAVED_USD:
		put_start(out, f->name, "", label, se->name);
		evbuffer_add_printf(out, "} %.17g\n", get_usd(&se->saved_usd));
		break;
	case FAM_CACHE_HIT:
		put_histogram(out, f->name, label, se->name, &se->cache_hit,
		    overhead_bounds);
		break;
	}
}

/* Appends HELP, TYPE and the samples of each family for every series of t. */
static void
put_families(struct evbuffer *out, const struct family *fams, size_t nfams,
    const char *label, const struct table *t)
{
	size_t i, j;

	for (i = 0; i < nfams; i++) {
		evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n",
		    fams[i].name, fams[i].help, fams[i].name,
		    fams[i].kind >= FAM_LATENCY ? "histogram" : "counter");
		for (j = 0; j < t->n; j++)
			put_series(out, &fams[i], label, t->all[j]);
	}
}

/* 1 unless health checks marked ep down. */
static int
ep_healthy(const struct sy_endpoint *ep)
{
	return ep->stats == NULL || !atomic_load(&ep->stats->unhealthy);
}

/* Appends a 0/1 gauge family of cfg's endpoints, valued by state(ep). */
static void
put_state_gauge(struct evbuffer *out, const struct sy_config *cfg,
    const char *name, const char *help,
    int (*state)(const struct sy_endpoint *))
{
	size_t i;

	evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s gauge\n", name, help,
	    name);
	for (i = 0; i < cfg->nendpoints; i++) {
		put_start(out, name, "", "endpoint", cfg->endpoints[i].name);
		evbuffer_add_printf(out, "} %d\n",
		    cfg->endpoints[i].stats != NULL && state(&cfg->endpoints[i]));
	}
}

/* Appends the GPUs of cfg's endpoints that say theirs (backends' gpus). */
static void
put_gpus(struct evbuffer *out, const struct sy_config *cfg)
{
	static const char name[] = "switchyard_endpoint_gpus";
	size_t i;

	evbuffer_add_printf(out, "# HELP %s GPUs of the endpoint (its "
	    "backend's gpus), for per-GPU throughput and cost.\n# TYPE %s "
	    "gauge\n", name, name);
	for (i = 0; i < cfg->nendpoints; i++) {
		if (cfg->endpoints[i].gpus == 0)
			continue;
		put_start(out, name, "", "endpoint", cfg->endpoints[i].name);
		evbuffer_add_printf(out, "} %u\n", cfg->endpoints[i].gpus);
	}
}

/* ==== Self-hosted cost ==== */

/* A family of the self-hosted sums: which double of sy_hourly_sums. */
struct hourly_family {
	const char *name;
	size_t offset;
	const char *help;
};

#define HOURLY_SUM(v) offsetof(struct sy_hourly_sums, v)

static const struct hourly_family hourly_endpoint_families[] = {
	{ "switchyard_endpoint_hourly_cost_usd_total", HOURLY_SUM(usd),
	  "What the self-hosted endpoint cost by the hour, busy or idle, USD." },
	{ "switchyard_endpoint_hourly_idle_cost_usd_total",
	  HOURLY_SUM(idle_usd), "The part of it in intervals without tokens." },
	{ "switchyard_endpoint_energy_joules_total", HOURLY_SUM(joules),
	  "Energy of the self-hosted endpoint (power_watts over the time)." },
	{ "switchyard_endpoint_busy_seconds_total", HOURLY_SUM(busy_s),
	  "Seconds the self-hosted endpoint had a request upstream." },
	{ "switchyard_endpoint_accounted_seconds_total", HOURLY_SUM(elapsed_s),
	  "Seconds of the self-hosted endpoint accounted in all." },
	{ "switchyard_endpoint_token_units_total", HOURLY_SUM(units),
	  "Weighted tokens the self-hosted endpoint served." },
};

static const struct hourly_family hourly_share_families[] = {
	{ "switchyard_hourly_cost_usd_total", HOURLY_SUM(usd),
	  "Self-hosted cost spread over the tokens served, by endpoint, route "
	  "and model, USD." },
	{ "switchyard_hourly_energy_joules_total", HOURLY_SUM(joules),
	  "Self-hosted energy spread over the tokens served, by endpoint, "
	  "route and model." },
	{ "switchyard_hourly_token_units_total", HOURLY_SUM(units),
	  "Weighted tokens served by self-hosted endpoints, by endpoint, route "
	  "and model." },
};

#define NHOURLY_EP (sizeof hourly_endpoint_families / \
	sizeof hourly_endpoint_families[0])
#define NHOURLY_SHARE (sizeof hourly_share_families / \
	sizeof hourly_share_families[0])

/* The double at offset of s. */
static double
hourly_value(const struct sy_hourly_sums *s, size_t offset)
{
	double v;

	memcpy(&v, (const char *)s + offset, sizeof v);
	return v;
}

/*
 * Appends the self-hosted families, after closing the interval: per
 * endpoint, and per (endpoint, route, model) share.
 */
static void
put_hourly(struct evbuffer *out, struct sy_metrics *m)
{
	const struct sy_hourly *h;
	struct sy_hourly_sums s;
	const char *ep, *route, *model;
	size_t f, i;

	hourly_close(m, 1);
	h = m->hourly.h;
	for (f = 0; f < NHOURLY_EP; f++) {
		evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s counter\n",
		    hourly_endpoint_families[f].name,
		    hourly_endpoint_families[f].help,
		    hourly_endpoint_families[f].name);
		for (i = 0; i < sy_hourly_nendpoints(h); i++) {
			ep = sy_hourly_endpoint_sums(h, i, &s);
			put_start(out, hourly_endpoint_families[f].name, "",
			    "endpoint", ep);
			evbuffer_add_printf(out, "} %.17g\n", hourly_value(&s,
			    hourly_endpoint_families[f].offset));
		}
	}
	for (f = 0; f < NHOURLY_SHARE; f++) {
		evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s counter\n",
		    hourly_share_families[f].name,
		    hourly_share_families[f].help,
		    hourly_share_families[f].name);
		for (i = 0; i < sy_hourly_nshares(h); i++) {
			sy_hourly_share_sums(h, i, &ep, &route, &model, &s);
			put_start(out, hourly_share_families[f].name, "",
			    "endpoint", ep);
			SY_ADD_LIT(out, ",route=\"");
			put_label_value(out, route);
			SY_ADD_LIT(out, "\",model=\"");
			put_label_value(out, model);
			evbuffer_add_printf(out, "\"} %.17g\n", hourly_value(&s,
			    hourly_share_families[f].offset));
		}
	}
	pthread_mutex_unlock(&m->hourly.lock);
}

/* Tokens (prompt and completion) of the series called name in t. */
static double
table_tokens(const struct table *t, const char *name)
{
	const struct series *se = table_find(t, name, slot_of(name));

	return se == NULL ? 0 : (double)(get(&se->tokens[TOK_PROMPT]) +
	    get(&se->tokens[TOK_COMPLETION]));
}

/* x / y * scale, or null when y is 0. */
static json_t *
ratio(double x, double y, double scale)
{
	return y > 0 ? json_real(x / y * scale) : json_null();
}

/*
 * The self-hosted sums as JSON, after closing the interval: per endpoint
 * (with its utilisation, $/1M tokens and tokens per joule over snap's
 * tokens), per route and per model.
 */
static json_t *
hourly_json(struct sy_metrics *m, const struct snapshot *snap)
{
	json_t *eps = json_object(), *routes = json_object(), *models =
	    json_object(), *o, *by;
	const struct sy_hourly *h;
	struct sy_hourly_sums s;
	const char *ep, *route, *model, *key;
	double tokens;
	size_t i, k;

	hourly_close(m, 1);
	h = m->hourly.h;
	for (i = 0; i < sy_hourly_nendpoints(h); i++) {
		ep = sy_hourly_endpoint_sums(h, i, &s);
		tokens = table_tokens(&snap->dims[DIM_ENDPOINT], ep);
		json_object_set_new(eps, ep, json_pack("{s:f,s:f,s:f,s:f,s:f,"
		    "s:f,s:o,s:o,s:o}", "cost_usd", s.usd, "idle_cost_usd",
		    s.idle_usd, "energy_joules", s.joules, "busy_s", s.busy_s,
		    "accounted_s", s.elapsed_s, "token_units", s.units,
		    "utilization", ratio(s.busy_s, s.elapsed_s, 1),
		    "usd_per_mtok", ratio(s.usd, tokens, 1e6),
		    "tokens_per_joule", ratio(tokens, s.joules, 1)));
	}
	for (i = 0; i < sy_hourly_nshares(h); i++) {
		sy_hourly_share_sums(h, i, &ep, &route, &model, &s);
		for (k = 0; k < 2; k++) {
			by = k == 0 ? routes : models;
			key = k == 0 ? route : model;
			if ((o = json_object_get(by, key)) == NULL) {
				o = json_pack("{s:f,s:f,s:f}", "cost_usd", 0.0,
				    "energy_joules", 0.0, "token_units", 0.0);
				json_object_set_new(by, key, o);
			}
			json_object_set_new(o, "cost_usd", json_real(
			    json_real_value(json_object_get(o, "cost_usd")) +
			    s.usd));
			json_object_set_new(o, "energy_joules", json_real(
			    json_real_value(json_object_get(o,
			    "energy_joules")) + s.joules));
			json_object_set_new(o, "token_units", json_real(
			    json_real_value(json_object_get(o,
			    "token_units")) + s.units));
		}
	}
	pthread_mutex_unlock(&m->hourly.lock);
	json_object_foreach(routes, key, o) {
		tokens = table_tokens(&snap->dims[DIM_ROUTE], key);
		json_object_set_new(o, "usd_per_mtok", ratio(json_real_value(
		    json_object_get(o, "cost_usd")), tokens, 1e6));
		json_object_set_new(o, "tokens_per_joule", ratio(tokens,
		    json_real_value(json_object_get(o, "energy_joules")), 1));
	}
	return json_pack("{s:o,s:o,s:o}", "endpoints", eps, "routes", routes,
	    "models", models);
}

void
sy_metrics_set_accounting_interval(struct sy_metrics *m, unsigned interval_ms)
{
	sy_hourly_meter_set_interval(&m->hourly, (uint64_t)interval_ms * 1000);
}

void
sy_metrics_set_conns(struct sy_metrics *m, atomic_uint *conns)
{
	m->conns = conns;
}

/*
 * Label values are escaped; a series exists for each name ever recorded and
 * each name of cfg.  Histogram buckets count whole internal buckets, so a
 * bucket may under-count values just below its bound by up to 6.25%.
 */
void
sy_metrics_prometheus(struct sy_metrics *m, const struct sy_config *cfg,
    struct evbuffer *out)
{
	static const char gauge[] = "switchyard_endpoint_in_flight";
	struct snapshot snap;
	size_t i, d;

	snapshot_take(m, cfg, &snap);
	for (d = 0; d < NDIMS; d++)
		if (d <= DIM_MODEL || snap.dims[d].n > 0)
			put_families(out, dims[d].fams, dims[d].nfams,
			    dims[d].label, &snap.dims[d]);
	put_hourly(out, m);
	if (cfg != NULL) {
		evbuffer_add_printf(out, "# HELP %s Requests in flight to the "
		    "endpoint, all workers.\n# TYPE %s gauge\n", gauge, gauge);
		for (i = 0; i < cfg->nendpoints; i++) {
			put_start(out, gauge, "", "endpoint",
			    cfg->endpoints[i].name);
			evbuffer_add_printf(out, "} %ld\n",
			    ep_in_flight(&cfg->endpoints[i]));
		}
		put_state_gauge(out, cfg, "switchyard_endpoint_healthy",
		    "1 unless active health checks marked the endpoint down.",
		    ep_healthy);
		put_state_gauge(out, cfg, "switchyard_endpoint_ejected",
		    "1 while the endpoint is ejected for failing.",
		    sy_outlier_ejected);
		put_gpus(out, cfg);
	}
	if (m->conns != NULL)
		evbuffer_add_printf(out, "# HELP switchyard_client_connections "
		    "Open client connections, all workers.\n# TYPE "
		    "switchyard_client_connections gauge\n"
		    "switchyard_client_connections %u\n", atomic_load(m->conns));
	sy_cache_prometheus(out);
	sy_limits_prometheus(out);
	sy_prefix_prometheus(out);
	snapshot_free(&snap);
}

/* ==== JSON ==== */

/* {"p50": ms, "p90": ms, "p99": ms}, or null when h is empty. */
static json_t *
quantiles_json(const struct sy_hist *h)
{
	if (get(&h->count) == 0)
		return json_null();
	return json_pack("{s:f, s:f, s:f}",
	    "p50", (double)sy_hist_quantile(h, 0.50) / 1000.0,
	    "p90", (double)sy_hist_quantile(h, 0.90) / 1000.0,
	    "p99", (double)sy_hist_quantile(h, 0.99) / 1000.0);
}

/*
 * {"batches", "inputs", "size_p50", "wait_ms": quantiles, "flushes":
 * {reason: n}, "shed"}: the batching of se.
 */
static json_t *
batch_json(const struct series *se)
{
	json_t *o = json_object(), *flushes = json_object();
	size_t i;

	for (i = SY_FLUSH_SIZE; i < SY_FLUSH_NREASONS; i++)
		json_object_set_new(flushes, sy_flush_word((enum sy_flush)i),
		    json_integer((json_int_t)get(&se->flushes[i])));
	json_object_set_new(o, "batches",
	    json_integer((json_int_t)get(&se->batch_size.count)));
	json_object_set_new(o, "inputs",
	    json_integer((json_int_t)get(&se->batch_size.sum_us)));
	json_object_set_new(o, "size_p50", get(&se->batch_size.count) == 0 ?
	    json_null() : json_integer((json_int_t)sy_hist_quantile(
	    &se->batch_size, 0.5)));
	json_object_set_new(o, "wait_ms", quantiles_json(&se->batch_wait));
	json_object_set_new(o, "flushes", flushes);
	json_object_set_new(o, "shed", json_integer((json_int_t)get(&se->shed)));
	return o;
}

/*
 * {"hit": n, "miss": n, "bypass": n, "coalesced": n, "hit_ratio": hits and
 * coalesced over lookups (null before any), "saved_tokens", "saved_usd",
 * "hit_latency_ms": quantiles} of se.
 */
static json_t *
cache_json(const struct series *se)
{
	uint64_t served = get(&se->cache[CACHE_HIT]) +
	    get(&se->cache[CACHE_COALESCED]);
	uint64_t looked = served + get(&se->cache[CACHE_MISS]);
	json_t *o = json_object();
	size_t i;

	for (i = 0; i < NCACHE; i++)
		json_object_set_new(o, cache_names[i],
		    json_integer((json_int_t)get(&se->cache[i])));
	json_object_set_new(o, "hit_ratio", looked ?
	    json_real((double)served / (double)looked) : json_null());
	json_object_set_new(o, "saved_tokens",
	    json_integer((json_int_t)get(&se->saved_tokens)));
	json_object_set_new(o, "saved_usd", json_real(get_usd(&se->saved_usd)));
	json_object_set_new(o, "hit_latency_ms", quantiles_json(&se->cache_hit));
	return o;
}

/* A new JSON object with the counts, tokens, cost and quantiles of se. */
static json_t *
series_json(const struct series *se)
{
	json_t *o, *status, *tokens, *reasons;
	char code[16];
	uint64_t n;
	size_t i;

	status = json_object();
	for (i = 0; i < NCODES; i++) {
		if ((n = get(&se->codes[i])) == 0)
			continue;
		snprintf(code, sizeof code, "%zu", i);
		json_object_set_new(status, code, json_integer((json_int_t)n));
	}
	tokens = json_object();
	for (i = 0; i < NTOK; i++)
		json_object_set_new(tokens, tok_names[i],
		    json_integer((json_int_t)get(&se->tokens[i])));
	o = json_object();
	json_object_set_new(o, "requests",
	    json_integer((json_int_t)get(&se->requests)));
	json_object_set_new(o, "errors",
	    json_integer((json_int_t)get(&se->errors)));
	json_object_set_new(o, "status", status);
	json_object_set_new(o, "tokens", tokens);
	json_object_set_new(o, "cost_usd", json_real(get_usd(&se->cost_usd)));
	json_object_set_new(o, "latency_ms", quantiles_json(&se->latency));
	json_object_set_new(o, "ttft_ms", quantiles_json(&se->ttft));
	json_object_set_new(o, "itl_ms", quantiles_json(&se->itl));
	json_object_set_new(o, "tpot_ms", quantiles_json(&se->tpot));
	json_object_set_new(o, "overhead_ms", quantiles_json(&se->overhead));
	json_object_set_new(o, "queue_ms", quantiles_json(&se->queue));
	json_object_set_new(o, "retries",
	    json_integer((json_int_t)get(&se->retries)));
	json_object_set_new(o, "fallbacks",
	    json_integer((json_int_t)get(&se->fallbacks)));
	json_object_set_new(o, "escalations",
	    json_integer((json_int_t)get(&se->escalations)));
	reasons = json_object();
	for (i = 0; i < NREASONS; i++) {
		const char *w = atomic_load(&se->reasons[i].word);

		if (w == NULL)
			break;
		json_object_set_new(reasons, w,
		    json_integer((json_int_t)get(&se->reasons[i].n)));
	}
	json_object_set_new(o, "reasons", reasons);
	json_object_set_new(o, "batch", batch_json(se));
	json_object_set_new(o, "cache", cache_json(se));
	return o;
}

/* Adds cfg's state of the endpoint called name to its object o (cfg: may be NULL). */
static void
endpoint_json(json_t *o, const struct sy_config *cfg, const char *name)
{
	const struct sy_endpoint *ep;

	if (cfg == NULL)
		return;
	ep = find_endpoint(cfg, name);
	json_object_set_new(o, "in_flight",
	    json_integer(ep ? ep_in_flight(ep) : 0));
	json_object_set_new(o, "healthy", json_boolean(ep == NULL ||
	    ep_healthy(ep)));
	json_object_set_new(o, "ejected", json_boolean(ep != NULL &&
	    ep->stats != NULL && sy_outlier_ejected(ep)));
	json_object_set_new(o, "gpus", ep != NULL && ep->gpus > 0 ?
	    json_integer(ep->gpus) : json_null());
	json_object_set_new(o, "cost_per_hour", ep != NULL &&
	    ep->hourly.hourly_usd > 0 ? json_real(ep->hourly.hourly_usd) :
	    json_null());
}

/*
 * Quantiles are null when nothing was measured; "in_flight" is present when
 * cfg is given.
 */
json_t *
sy_metrics_json(struct sy_metrics *m, const struct sy_config *cfg)
{
	json_t *root, *all, *o;
	struct snapshot snap;
	const struct series *se;
	size_t i, d;

	snapshot_take(m, cfg, &snap);
	root = json_object();
	for (d = 0; d < NDIMS; d++) {
		if (d > DIM_MODEL && snap.dims[d].n == 0)
			continue;
		all = json_object();
		for (i = 0; i < snap.dims[d].n; i++) {
			se = snap.dims[d].all[i];
			o = series_json(se);
			if (d == DIM_ENDPOINT)
				endpoint_json(o, cfg, se->name);
			json_object_set_new(all, se->name, o);
		}
		json_object_set_new(root, dims[d].json, all);
	}
	json_object_set_new(root, "hourly", hourly_json(m, &snap));
	snapshot_free(&snap);
	return root;
}

