/* prefix_aware: the endpoint that holds the longest part of the prompt in its prefix cache, by an index of chained block hashes per endpoint, scored together with load, corrected by the engine's reports of cached tokens and shared with other gateway instances. */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "config.h"
#include "policy.h"
#include "prefix_index.h"
#include "prefix_share.h"
#include "req.h"
#include "ring.h"
#include "util.h"

static const char *const aware_params[] = {
	"block_chars", "max_blocks", "cache_tokens", "max_index_bytes",
	"w_prefix", "w_queue", "w_kv", "w_inflight", "epsilon", "stale_ms",
	"feedback_slack", "share", NULL
};

/* Prompt bytes the index takes for one token (the capacity's unit). */
#define CHARS_PER_TOKEN 4

struct aware_state {
	size_t block_chars;		/* prompt bytes per block */
	size_t max_blocks;		/* most blocks of one prompt */
	double w_prefix, w_queue, w_kv, w_inflight;
	double epsilon;			/* load allowed above the mean */
	uint64_t stale_us;		/* older scrapes are not used */
	double slack;			/* share of a prediction that may go unreported */
	size_t cache_tokens;		/* an endpoint's capacity when unknown */
	size_t n;
	struct sy_endpoint **eps;	/* the pool's, borrowed */
	uint64_t *name_hash;		/* of each endpoint's name */
	struct sy_prefix_set *sets;	/* one per endpoint of the pool */
	atomic_long *kv_tokens;		/* the scraped capacity each set is sized
					   for; 0: its backend's cache_tokens,
					   -1: this policy's */
	size_t bytecap;			/* most blocks of one set, by memory */
	struct sy_prefix_pool *reg;
	atomic_uint turn;		/* who goes first among equals */
};

static void
aware_destroy(void *state)
{
	struct aware_state *st = state;
	size_t i;

	if (st->reg != NULL)
		sy_prefix_pool_leave(st->reg);
	for (i = 0; i < st->n; i++)
		sy_prefix_set_free(&st->sets[i]);
	free(st->sets);
	free(st->kv_tokens);
	free(st->name_hash);
	free(st);
}

/* Reads the boolean parameter key into *out (def when absent). */
static int
param_bool(const json_t *params, const char *key, int def, int *out,
    char **err)
{
	const json_t *v = params != NULL ? json_object_get(params, key) : NULL;

	if (v == NULL) {
		*out = def;
		return 0;
	}
	if (!json_is_boolean(v)) {
		sy_policy_fail(err, "prefix_aware: parameter \"%s\" must be "
		    "true or false", key);
		return -1;
	}
	*out = json_is_true(v);
	return 0;
}

/* The blocks of a set for an endpoint of tokens of capacity, within memory. */
static size_t
set_cap(const struct aware_state *st, size_t tokens)
{
	size_t cap = tokens * CHARS_PER_TOKEN / st->block_chars;

	return cap < st->bytecap ? cap : st->bytecap;
}

/*
 * Sizes the set of endpoint i anew when its backend has no cache_tokens
 * and its scrape gave a capacity other than the one the set has.
 */
static void
follow_capacity(struct aware_state *st, size_t i, const struct sy_endpoint *ep)
{
	long kv = atomic_load_explicit(&ep->stats->scraped_kv_tokens,
	    memory_order_relaxed);
	long was = atomic_load_explicit(&st->kv_tokens[i],
	    memory_order_relaxed);

	if (was == 0 || kv <= 0 || kv == was ||
	    !atomic_compare_exchange_strong(&st->kv_tokens[i], &was, kv))
		return;
	sy_prefix_set_resize(&st->sets[i], set_cap(st, (size_t)kv));
}

static void *
aware_create(const json_t *params, const struct sy_pool *pool, char **err)
{
	static const char P[] = "prefix_aware";
	struct aware_state *st;
	long long block, maxb, cache, maxbytes, stale;
	double wp, wq, wk, wi, eps, slack;
	size_t i;
	int share;

	if (sy_params_check(params, P, aware_params, err) == -1 ||
	    sy_param_int(params, P, "block_chars", 256, 16, 65536, &block,
	    err) == -1 ||
	    sy_param_int(params, P, "max_blocks", 4096, 1, 1048576, &maxb,
	    err) == -1 ||
	    sy_param_int(params, P, "cache_tokens", 65536, 0, 1LL << 40,
	    &cache, err) == -1 ||
	    sy_param_int(params, P, "max_index_bytes", 64LL << 20, 0,
	    1LL << 40, &maxbytes, err) == -1 ||
	    sy_param_number(params, P, "w_prefix", 1, 0, 1e6, &wp, err) == -1 ||
	    sy_param_number(params, P, "w_queue", 0.5, 0, 1e6, &wq, err) == -1 ||
	    sy_param_number(params, P, "w_kv", 0.5, 0, 1e6, &wk, err) == -1 ||
	    sy_param_number(params, P, "w_inflight", 0.5, 0, 1e6, &wi,
	    err) == -1 ||
	    sy_param_number(params, P, "epsilon", 0.5, 0, 100, &eps,
	    err) == -1 ||
	    sy_param_int(params, P, "stale_ms", 2000, 1, 86400000, &stale,
	    err) == -1 ||
	    sy_param_number(params, P, "feedback_slack", 0.5, 0, 1, &slack,
	    err) == -1 ||
	    param_bool(params, "share", 1, &share, err) == -1)
		return NULL;
	if ((st = calloc(1, sizeof *st)) == NULL)
		return sy_policy_fail(err, "out of memory");
	st->block_chars = (size_t)block;
	st->max_blocks = (size_t)maxb;
	st->w_prefix = wp;
	st->w_queue = wq;
	st->w_kv = wk;
	st->w_inflight = wi;
	st->epsilon = eps;
	st->stale_us = (uint64_t)stale * 1000;
	st->slack = slack;
	st->n = pool->nendpoints;
	st->eps = pool->endpoints;
	st->sets = sy_xcalloc(st->n ? st->n : 1, sizeof *st->sets);
	st->kv_tokens = sy_xcalloc(st->n ? st->n : 1, sizeof *st->kv_tokens);
	st->name_hash = sy_xcalloc(st->n ? st->n : 1, sizeof *st->name_hash);
	st->bytecap = st->n ? (size_t)maxbytes / st->n /
	    SY_PREFIX_BLOCK_BYTES : 0;
	st->cache_tokens = (size_t)cache;
	for (i = 0; i < st->n; i++) {
		st->name_hash[i] = sy_hash64(pool->endpoints[i]->name,
		    strlen(pool->endpoints[i]->name));
		atomic_init(&st->kv_tokens[i],
		    pool->endpoints[i]->cache_tokens ? 0 : -1);
		sy_prefix_set_init(&st->sets[i], set_cap(st,
		    pool->endpoints[i]->cache_tokens ?
		    pool->endpoints[i]->cache_tokens : st->cache_tokens));
	}
	st->reg = sy_prefix_pool_join(pool->route != NULL ?
	    pool->route->name : "", pool->model, st->block_chars,
	    pool->endpoints, st->sets,
	    st->n, share);
	return st;
}

/* ==== Scoring ==== */

/* A scraped figure, 0 while unknown (-1). */
static double
known(long v)
{
	return v > 0 ? (double)v : 0;
}

/* What one usable endpoint brings to the pick. */
struct cand {
	size_t i;
	size_t matched;			/* leading blocks it holds */
	double inflight;		/* per unit of weight */
	double load;			/* for the bound: in flight, or what the
					   endpoint runs and queues when a fresh
					   scrape says more (other instances') */
	double waiting;			/* scraped, per unit of weight */
	double kv;			/* scraped usage, 0–1 */
	int over;			/* above the bounded-load guard */
	double score;
};

/* Whether every candidate's scrape is younger than stale_us. */
static int
scrapes_fresh(const struct aware_state *st, const struct sy_pool *pool,
    const struct cand *c, size_t nc)
{
	uint64_t now = sy_now_us(), at;
	size_t k;

	for (k = 0; k < nc; k++) {
		at = atomic_load_explicit(&pool->endpoints[c[k].i]->stats->
		    scraped_at_us, memory_order_relaxed);
		if (at == 0 || (now > at && now - at > st->stale_us))
			return 0;
	}
	return 1;
}

/*
 * The home of a prompt no endpoint holds any of: the candidate its first
 * block's hash ranks highest together with the endpoint's name, weighted
 * (rendezvous hashing), so that a prefix group keeps to a few replicas,
 * and every instance agrees, even once the index has forgotten it.  When
 * the home is above its load bound the next in rank within it is taken,
 * and *moved is set.  NULL when every candidate is above.
 */
static struct cand *
home_of(const struct aware_state *st, const struct sy_pool *pool,
    struct cand *c, size_t nc, uint64_t first, int *moved)
{
	struct cand *best = NULL, *top = NULL;
	struct sy_hash hs;
	double u, rank, best_rank = 0, top_rank = 0;
	size_t k;

	for (k = 0; k < nc; k++) {
		hs.h = first ^ st->name_hash[c[k].i];
		u = ((double)(sy_hash_final(&hs) >> 11) + 0.5) /
		    9007199254740992.0;
		rank = pool->endpoints[c[k].i]->weight / -log(u);
		if (top == NULL || rank > top_rank) {
			top = &c[k];
			top_rank = rank;
		}
		if (!c[k].over && (best == NULL || rank > best_rank)) {
			best = &c[k];
			best_rank = rank;
		}
	}
	*moved = best != top;
	return best;
}

/*
 * The candidate within the load bound with the highest score, then the
 * fewest in flight, then the first from start; NULL when all are over.
 */
static struct cand *
highest(struct cand *c, size_t nc, size_t start)
{
	struct cand *best = NULL, *x;
	size_t k;

	for (k = 0; k < nc; k++) {
		x = &c[(start + k) % nc];
		if (x->over)
			continue;
		if (best == NULL || x->score > best->score + 1e-12 ||
		    (fabs(x->score - best->score) <= 1e-12 &&
		    x->inflight < best->inflight))
			best = x;
	}
	return best;
}

/* Feeds prompt bytes to a chain (a sy_prompt_fn). */
static int
chain_add(void *arg, const char *s, size_t len)
{
	return sy_prefix_chain_add(arg, s, len);
}

/*
 * Scores each usable endpoint: w_prefix × matched/blocks − w_queue ×
 * waiting/max waiting − w_kv × kv usage − w_inflight × in flight/max in
 * flight (loads per unit of weight; scraped figures only while fresh),
 * skipping those above (1 + epsilon) × their share of the load (in
 * flight here, or running and waiting there when a fresh scrape says
 * more: the load other instances send).  A prompt no endpoint holds
 * goes to its home (home_of); else the highest score wins, then the
 * fewest in flight, then the first from a turn that moves on each pick.
 * The prompt's blocks go into the index of the endpoint picked, and to
 * the other instances when that added blocks.
 */
static struct sy_endpoint *
aware_pick(void *state, const struct sy_pool *pool, const struct sy_req *req,
    const char **reason)
{
	struct aware_state *st = state;
	struct sy_req *mreq = (struct sy_req *)req;	/* its pick_* only */
	struct sy_prefix_chain chain;
	struct cand cands[64], *c = cands, *best = NULL, *longest = NULL;
	struct sy_endpoint *ep;
	const struct sy_endpoint_stats *s;
	double total = 0, wsum = 0, maxin = 0, maxwait = 0, cap;
	size_t i, nc = 0, k, start;
	uint64_t stamp;
	int fresh, home, moved;

	*reason = "all-busy";
	if (pool->nendpoints != st->n)
		return NULL;
	if (st->n > sizeof cands / sizeof cands[0])
		c = sy_xcalloc(st->n, sizeof *c);
	sy_prefix_chain_init(&chain, st->block_chars, st->max_blocks);
	sy_prompt_feed(req, chain_add, &chain);
	for (i = 0; i < st->n; i++) {
		ep = pool->endpoints[i];
		if (!sy_endpoint_usable(ep, req))
			continue;
		s = ep->stats;
		follow_capacity(st, i, ep);
		c[nc].i = i;
		c[nc].matched = chain.n ? sy_prefix_set_match(&st->sets[i],
		    chain.hashes, chain.n) : 0;
		c[nc].inflight = known(atomic_load_explicit(&s->in_flight,
		    memory_order_relaxed));
		c[nc].load = known(atomic_load_explicit(&s->scraped_running,
		    memory_order_relaxed)) + known(atomic_load_explicit(
		    &s->scraped_waiting, memory_order_relaxed));
		wsum += ep->weight;
		c[nc].inflight /= ep->weight;
		c[nc].waiting = known(atomic_load_explicit(&s->scraped_waiting,
		    memory_order_relaxed)) / ep->weight;
		c[nc].kv = known(atomic_load_explicit(&s->scraped_kv_permille,
		    memory_order_relaxed)) / 1000;
		if (c[nc].inflight > maxin)
			maxin = c[nc].inflight;
		if (c[nc].waiting > maxwait)
			maxwait = c[nc].waiting;
		nc++;
	}
	if (nc == 0)
		goto out;
	fresh = scrapes_fresh(st, pool, c, nc);
	for (k = 0; k < nc; k++) {
		ep = pool->endpoints[c[k].i];
		if (!fresh || c[k].load < c[k].inflight * ep->weight)
			c[k].load = c[k].inflight * ep->weight;
		total += c[k].load;
	}
	for (k = 0; k < nc; k++) {
		ep = pool->endpoints[c[k].i];
		cap = ceil((1 + st->epsilon) * (total + 1) * ep->weight / wsum -
		    1e-9);
		c[k].over = c[k].load + 1 > cap;
		c[k].score = (chain.n ? st->w_prefix * (double)c[k].matched /
		    (double)chain.n : 0) -
		    (maxin > 0 ? st->w_inflight * c[k].inflight / maxin : 0);
		if (fresh)
			c[k].score -= (maxwait > 0 ? st->w_queue * c[k].waiting /
			    maxwait : 0) + st->w_kv * c[k].kv;
		if (longest == NULL || c[k].matched > longest->matched)
			longest = &c[k];
	}
	start = atomic_fetch_add_explicit(&st->turn, 1,
	    memory_order_relaxed) % nc;
	home = chain.n > 0 && longest->matched == 0 && st->w_prefix > 0;
	moved = 0;
	if (home)
		best = home_of(st, pool, c, nc, chain.hashes[0], &moved);
	if (best == NULL)
		best = highest(c, nc, start);
	if (best == NULL)	/* loads moved under us: the least loaded */
		for (k = 0; k < nc; k++)
			if (best == NULL || c[k].inflight < best->inflight)
				best = &c[k];
	ep = pool->endpoints[best->i];
	if (chain.n == 0)
		*reason = "no-prefix";
	else if ((longest->matched > best->matched && longest->over) ||
	    (home && moved))
		*reason = "overflow";
	else if (best->matched > 0) {
		*reason = "prefix";
		snprintf(mreq->pick_words, sizeof mreq->pick_words,
		    "prefix:%u/%u", (unsigned)best->matched, (unsigned)chain.n);
	} else if (home && !best->over)
		*reason = "home";
	else
		*reason = "load";
	stamp = sy_prefix_set_insert(&st->sets[best->i], chain.hashes, chain.n);
	if (best->matched < chain.n)
		sy_prefix_pool_publish(st->reg, best->i, chain.hashes, chain.n);
	mreq->pick_note[0] = stamp;
	mreq->pick_note[1] = sy_prefix_chain_tokens(&chain, best->matched);
out:
	sy_prefix_chain_free(&chain);
	if (c != cands)
		free(c);
	return nc ? ep : NULL;
}

/* ==== The engine's reports ==== */

/*
 * The answer says how many prompt tokens the engine found cached; fewer
 * than the index predicted (beyond the slack) means the engine lost
 * blocks: under LRU every block older than this request's, so those are
 * evicted from the endpoint's index.
 */
static void
aware_answered(void *state, struct sy_endpoint *ep, const struct sy_req *req)
{
	struct aware_state *st = state;
	uint64_t predicted = req->pick_note[1];
	int64_t reported = req->usage.cached_tokens;
	size_t i;

	if (reported < 0 || req->pick_note[0] == 0)
		return;
	for (i = 0; i < st->n && st->eps[i] != ep; i++)
		;
	if (i == st->n)
		return;
	atomic_fetch_add(&st->reg->counts[i].predicted, predicted);
	atomic_fetch_add(&st->reg->counts[i].reported, (uint64_t)reported);
	if ((double)reported < (double)predicted * (1 - st->slack))
		atomic_fetch_add(&st->reg->counts[i].evicted,
		    sy_prefix_set_evict_before(&st->sets[i], req->pick_note[0]));
}

const struct sy_route_policy sy_route_prefix_aware = {
	.name = "prefix_aware",
	.create = aware_create,
	.pick = aware_pick,
	.answered = aware_answered,
	.destroy = aware_destroy
};
