/* The tries stage: the routing policy picks an endpoint and the try takes one of its slots; a try that failed before anything reached the client is retried elsewhere after a backoff, within the route's retry budget; when every endpoint is only full the request waits in a bounded queue. */
#include <sys/queue.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "confrow.h"
#include "config.h"
#include "exchange.h"
#include "outlier.h"
#include "policy.h"
#include "util.h"
#include "worker.h"

/* The retry budget's window. */
#define BUDGET_WINDOW_US (10 * 1000000ULL)
/* How often waiting requests look for capacity other workers freed. */
#define QUEUE_POLL_MS 2

/* ==== Its keys: retries and the queue ==== */

#define DAY_MS	86400000	/* largest duration */

/* The conditions a route may retry on: bit i of sy_retry.on is word i. */
static const char *const retry_conditions[] = {
	"connect", "5xx", "429", "timeout", "first_token", NULL
};

/* Backoff at most its largest value. */
static void
retry_check(struct sy_conf *c, const json_t *obj, const char *path,
    void *base)
{
	const struct sy_retry *rt = base;

	if (obj != NULL)
		sy_conf_order(c, obj, path, "backoff_ms", rt->backoff_ms,
		    "max_backoff_ms", rt->max_backoff_ms, 0);
}

static const struct sy_conf_row retry_rows[] = {
	{ .name = "max", .type = SY_CONF_UINT,
	  .offset = offsetof(struct sy_retry, max), .def.u = 2,
	  .max = SY_MAX_TRIES - 1, .doc = "retries per request" },
	{ .name = "budget", .type = SY_CONF_FRACTION,
	  .offset = offsetof(struct sy_retry, budget), .def.d = 0.2,
	  .doc = "share of the requests that may be retries" },
	{ .name = "min_per_s", .type = SY_CONF_UINT,
	  .offset = offsetof(struct sy_retry, min_per_s), .def.u = 5,
	  .max = 1000000, .doc = "retries per second always allowed" },
	{ .name = "backoff_ms", .type = SY_CONF_MS,
	  .offset = offsetof(struct sy_retry, backoff_ms), .def.u = 25,
	  .max = DAY_MS, .doc = "wait before the first retry, doubling" },
	{ .name = "max_backoff_ms", .type = SY_CONF_MS,
	  .offset = offsetof(struct sy_retry, max_backoff_ms), .def.u = 1000,
	  .max = DAY_MS, .doc = "longest wait between two tries" },
	{ .name = "on", .type = SY_CONF_FLAGS,
	  .offset = offsetof(struct sy_retry, on),
	  .def.u = SY_RETRY_ON_CONNECT | SY_RETRY_ON_5XX | SY_RETRY_ON_429 |
	  SY_RETRY_ON_FIRST_TOKEN,
	  .words = retry_conditions, .what = "retry condition",
	  .doc = "failures that are retried" },
	{ .name = "first_token_ms", .type = SY_CONF_MS,
	  .offset = offsetof(struct sy_retry, first_token_ms),
	  .max = DAY_MS, .doc = "a stream's longest wait for its first "
	  "content; 0: none" },
	{ .name = "hedge_after_ms", .type = SY_CONF_MS,
	  .offset = offsetof(struct sy_retry, hedge_after_ms),
	  .max = DAY_MS, .doc = "a stream without content by then gets a "
	  "second try on another endpoint; 0: off" },
	{ .name = NULL }
};

const struct sy_conf_table sy_retry_table = {
	.path = "routes[].retries",
	.rows = retry_rows,
	.size = sizeof(struct sy_retry),
	.check = retry_check
};

static const struct sy_conf_row queue_rows[] = {
	{ .name = "max", .type = SY_CONF_UINT,
	  .offset = offsetof(struct sy_queue, max), .max = 100000,
	  .doc = "requests waiting per worker and pool; 0: no queue" },
	{ .name = "timeout_ms", .type = SY_CONF_MS,
	  .offset = offsetof(struct sy_queue, timeout_ms), .def.u = 5000,
	  .min = 1, .max = DAY_MS, .doc = "longest wait" },
	{ .name = NULL }
};

const struct sy_conf_table sy_queue_table = {
	.path = "routes[].queue",
	.rows = queue_rows,
	.size = sizeof(struct sy_queue)
};

/* Requests of one worker waiting for a free endpoint, oldest first. */
struct sy_waitq {
	TAILQ_HEAD(, sy_exchange) list;
	size_t n;
	struct event *poll;
};

/* A slot was given back on this worker: let the queue look soon. */
static void
waitq_kick(struct sy_worker *w)
{
	if (w->waitq->n > 0)
		event_active(w->waitq->poll, EV_TIMEOUT, 0);
}

/*
 * A try of x on ep that began at t_try is over (status: the backend's, 0
 * after a transport failure; failed: it failed): the endpoint's slot goes
 * back and the routing and selection policies and the outlier detector
 * hear how it went.
 */
static void
try_over(struct sy_exchange *x, struct sy_endpoint *ep, uint64_t t_try,
    int status, int failed)
{
	struct sy_req *req = &x->req;
	uint64_t now = sy_now_us();
	struct sy_outcome outcome = {
		.status = status,
		.latency_us = now - t_try,
		.ttft_us = req->t_first_byte && req->t_first_byte > t_try ?
		    req->t_first_byte - t_try : 0
	};

	sy_endstats_leave(ep->stats, now);
	if (req->route->policy->observe != NULL)
		req->route->policy->observe(req->pool->policy_state, ep,
		    &outcome);
	if (req->route->selection->observe != NULL)
		req->route->selection->observe(req->route->selection_state,
		    req->model, &outcome);
	sy_outlier_observe(req->route, req->pool, ep, failed);
	waitq_kick(x->w);
}

void
sy_tries_done(struct sy_exchange *x)
{
	struct sy_req *req = &x->req;
	const struct sy_relay_slice *r = &x->relay;

	if (!x->tries.counted)
		return;
	x->tries.counted = 0;
	req->upstream_us += sy_now_us() - x->tries.t_try;
	try_over(x, req->endpoint, x->tries.t_try, r->transport_failed ? 0 :
	    r->status, r->transport_failed || r->status >= 500);
	if (r->status == 429)
		sy_outlier_rest(req->endpoint, r->retry_after[0] ?
		    (unsigned)atoi(r->retry_after) : 1);
}

/*
 * Picks an endpoint of req's pool with the route's policy and takes one of
 * its in-flight slots.  Another worker may take the last slot between the
 * policy's look and ours: then the policy picks again without it.
 * Returns the endpoint, or NULL when none can take req.
 */
static struct sy_endpoint *
pick_endpoint(struct sy_req *req)
{
	const struct sy_route_policy *policy = req->route->policy;
	unsigned ntried = req->ntried;
	struct sy_endpoint *ep;
	long before;

	if (req->pool == NULL)
		return NULL;
	req->pick_words[0] = '\0';
	while ((ep = policy->pick(req->pool->policy_state, req->pool, req,
	    &req->pick_reason)) != NULL) {
		before = sy_endstats_enter(ep->stats, sy_now_us());
		if (ep->max_concurrency == 0 || before < (long)ep->max_concurrency)
			break;
		sy_endstats_leave(ep->stats, sy_now_us());
		if (req->ntried == SY_MAX_TRIES) {
			ep = NULL;
			break;
		}
		req->tried[req->ntried++] = ep;
	}
	req->ntried = ntried;
	return ep;
}

/* The endpoint chosen: the try begins (it holds the endpoint's slot). */
static enum sy_verdict
begin(struct sy_exchange *x, struct sy_endpoint *ep)
{
	x->req.endpoint = ep;
	x->tries.counted = 1;
	x->tries.t_try = sy_now_us();
	return SY_NEXT;
}

/* Whether route's retry budget allows one more retry now (and spends it). */
static int
budget_allows(struct sy_route *route)
{
	uint64_t now = sy_now_us();
	unsigned long long start = atomic_load(&route->budget_start_us);
	unsigned long requests, retries;

	if (now - start > BUDGET_WINDOW_US &&
	    atomic_compare_exchange_strong(&route->budget_start_us, &start, now)) {
		atomic_store(&route->requests, 0);
		atomic_store(&route->retries, 0);
	}
	requests = atomic_load(&route->requests);
	retries = atomic_load(&route->retries);
	if ((double)retries + 1 > route->retry.budget * (double)requests +
	    route->retry.min_per_s * (BUDGET_WINDOW_US / 1000000))
		return 0;
	atomic_fetch_add(&route->retries, 1);
	return 1;
}

struct sy_endpoint *
sy_tries_hedge_pick(struct sy_exchange *x)
{
	struct sy_req *req = &x->req;
	const char *reason = req->pick_reason;
	char words[sizeof req->pick_words];
	uint64_t note[2];
	struct sy_endpoint *ep;

	if (req->ntried + 1 >= SY_MAX_TRIES)
		return NULL;
	/* The log and the policy's answer keep the first try's pick. */
	memcpy(words, req->pick_words, sizeof words);
	memcpy(note, req->pick_note, sizeof note);
	req->tried[req->ntried++] = req->endpoint;
	ep = pick_endpoint(req);
	req->ntried--;
	req->pick_reason = reason;
	memcpy(req->pick_words, words, sizeof words);
	memcpy(req->pick_note, note, sizeof note);
	if (ep != NULL && !budget_allows(req->route)) {
		sy_endstats_leave(ep->stats, sy_now_us());
		ep = NULL;
	}
	return ep;
}

void
sy_tries_hedge_done(struct sy_exchange *x, struct sy_endpoint *ep,
    uint64_t t_try, int status, int failed)
{
	try_over(x, ep, t_try, status, failed);
}

/* A retry's wait: base × 2^(retry − 1), at most the cap, times 0.5..1.5. */
static unsigned
backoff_ms(const struct sy_retry *r, unsigned retry)
{
	uint64_t ms = r->backoff_ms;
	uint64_t jitter;

	while (--retry > 0 && ms < r->max_backoff_ms)
		ms *= 2;
	if (ms > r->max_backoff_ms)
		ms = r->max_backoff_ms;
	jitter = sy_rand64();
	return (unsigned)(ms / 2 + (ms ? jitter % (ms + 1) : 0));
}

/* ==== Waiting for a free endpoint ==== */

/*
 * Whether req's pool has an endpoint that is only full: healthy, not
 * ejected or resting, not tried, but at its max_concurrency.
 */
static int
pool_only_full(const struct sy_req *req)
{
	const struct sy_endpoint *ep;
	unsigned i, j;

	for (i = 0; i < req->pool->nendpoints; i++) {
		ep = req->pool->endpoints[i];
		for (j = 0; j < req->ntried && req->tried[j] != ep; j++)
			;
		if (j == req->ntried && ep->max_concurrency != 0 &&
		    atomic_load(&ep->stats->in_flight) >= (long)ep->max_concurrency &&
		    ep->weight > 0 && !atomic_load(&ep->stats->unhealthy) &&
		    !sy_outlier_ejected(ep))
			return 1;
	}
	return 0;
}

static void timer_cb(evutil_socket_t fd, short what, void *arg);

/* Arms x's timer ms from now. */
static void
arm(struct sy_exchange *x, unsigned ms, int backoff)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	if (x->tries.timer == NULL)
		x->tries.timer = evtimer_new(x->w->base, timer_cb, x);
	x->tries.backoff = backoff;
	evtimer_add(x->tries.timer, &tv);
}

/* Puts x in its worker's wait queue when its route has one with room. */
static int
waitq_add(struct sy_exchange *x)
{
	struct sy_waitq *q = x->w->waitq;
	const struct sy_queue *rule = &x->req.route->queue;
	struct timeval poll = { 0, QUEUE_POLL_MS * 1000 };
	uint64_t now = sy_now_us(), left;
	struct sy_exchange *y;
	size_t waiting = 0;

	if (rule->max == 0 || now >= x->deadline || !pool_only_full(&x->req))
		return 0;
	TAILQ_FOREACH(y, &q->list, tries.qlink)
		waiting += y->req.pool == x->req.pool;
	if (waiting >= rule->max) {
		x->last.status = 503;
		x->last.code = "queue_full";
		snprintf(x->last.msg, sizeof x->last.msg, "every backend "
		    "endpoint is busy and the queue is full");
		return 0;
	}
	x->tries.queued = 1;
	x->tries.t_queued = now;
	/* Higher priority first; equal ones in arrival order. */
	TAILQ_FOREACH(y, &q->list, tries.qlink)
		if (y->req.priority < x->req.priority)
			break;
	if (y != NULL)
		TAILQ_INSERT_BEFORE(y, x, tries.qlink);
	else
		TAILQ_INSERT_TAIL(&q->list, x, tries.qlink);
	if (q->n++ == 0)
		event_add(q->poll, &poll);
	left = (x->deadline - now) / 1000;
	arm(x, left < rule->timeout_ms ? (unsigned)left + 1 : rule->timeout_ms,
	    0);
	return 1;
}

static void
waitq_remove(struct sy_exchange *x)
{
	struct sy_waitq *q = x->w->waitq;

	TAILQ_REMOVE(&q->list, x, tries.qlink);
	x->tries.queued = 0;
	x->req.queue_us += sy_now_us() - x->tries.t_queued;
	if (--q->n == 0)
		event_del(q->poll);
	if (x->tries.timer != NULL)
		evtimer_del(x->tries.timer);
}

/* Sends every waiting request that can now have an endpoint, in queue order. */
static void
waitq_poll_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sy_waitq *q = arg;
	struct sy_exchange *x, *next;
	struct sy_endpoint *ep;

	(void)fd;
	(void)what;
	for (x = TAILQ_FIRST(&q->list); x != NULL; x = next) {
		next = TAILQ_NEXT(x, tries.qlink);
		if ((ep = pick_endpoint(&x->req)) == NULL)
			continue;
		waitq_remove(x);
		sy_drive(x, begin(x, ep));
	}
}

/*
 * Whether every endpoint of pool that could serve rests after a 429 (the
 * backend's own rate limit): the client hears that, not "unavailable".
 */
static int
pool_rate_limited(const struct sy_pool *pool)
{
	const struct sy_endpoint_stats *st;
	uint64_t now = sy_now_us();
	unsigned i, limited = 0;

	for (i = 0; pool != NULL && i < pool->nendpoints; i++) {
		st = pool->endpoints[i]->stats;
		if (pool->endpoints[i]->weight == 0 ||
		    atomic_load(&st->unhealthy))
			continue;
		if (atomic_load(&st->limited_until_us) <= now ||
		    atomic_load(&st->ejected_until_us) > now)
			return 0;
		limited++;
	}
	return limited > 0;
}

/* The pool cannot take the request: its route's tries have failed. */
static enum sy_verdict
pool_failed(struct sy_exchange *x)
{
	if (x->last.status == 0 && x->reply.body == NULL &&
	    pool_rate_limited(x->req.pool)) {
		x->last.status = 429;
		x->last.code = "rate_limited";
		snprintf(x->last.msg, sizeof x->last.msg, "the backend is "
		    "rate-limiting this gateway; retry after the time "
		    "Retry-After says");
	}
	x->reply.failed = 1;
	return SY_ANSWER;
}

/* A retry's backoff is over, or the queue's timeout struck. */
static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sy_exchange *x = arg;

	(void)fd;
	(void)what;
	if (x->tries.backoff) {
		sy_drive(x, SY_RETRY);
		return;
	}
	waitq_remove(x);
	x->last.status = 503;
	x->last.code = "queue_timeout";
	snprintf(x->last.msg, sizeof x->last.msg, "every backend endpoint "
	    "stayed busy for the queue's timeout");
	sy_drive(x, pool_failed(x));
}

/* Picks an endpoint, or waits for one, or says the pool cannot answer. */
static enum sy_verdict
try_next(struct sy_exchange *x)
{
	struct sy_endpoint *ep;

	if ((ep = pick_endpoint(&x->req)) != NULL)
		return begin(x, ep);
	if (x->req.pool != NULL && waitq_add(x))
		return SY_WAIT;
	return pool_failed(x);
}

/*
 * Whether req's pool has an endpoint a retry could go to now: one it has
 * not tried that is usable (not drained, ejected, down or resting).
 */
static int
pool_has_untried(const struct sy_req *req)
{
	unsigned i;

	for (i = 0; i < req->pool->nendpoints; i++)
		if (sy_endpoint_usable(req->pool->endpoints[i], req))
			return 1;
	return 0;
}

/*
 * The try failed before anything reached the client (its SY_RETRY_ON_*
 * class in x->relay.failed, which the relay set): a retry on another endpoint after a jittered
 * backoff when the route allows it, else the pool has failed.
 */
static enum sy_verdict
try_failed(struct sy_exchange *x)
{
	struct sy_req *req = &x->req;
	const struct sy_retry *r = &req->route->retry;

	unsigned cond = x->relay.failed;

	x->relay.failed = 0;
	sy_tries_done(x);
	if (req->ntried < SY_MAX_TRIES)
		req->tried[req->ntried++] = req->endpoint;
	if ((r->on & cond) && req->retries < r->max &&
	    req->ntried < SY_MAX_TRIES && pool_has_untried(req) &&
	    sy_now_us() < x->deadline && budget_allows(req->route)) {
		req->retries++;
		arm(x, backoff_ms(r, req->retries), 1);
		return SY_WAIT;
	}
	return pool_failed(x);
}

static enum sy_verdict
tries_enter(struct sy_exchange *x)
{
	if (x->relay.failed != 0)
		return try_failed(x);
	sy_tries_done(x);	/* an escalation's first try */
	return try_next(x);
}

static void
tries_end(struct sy_exchange *x)
{
	const struct sy_req *req = &x->req;

	sy_tries_done(x);
	if (req->endpoint != NULL && req->pool != NULL &&
	    x->relay.status == 200 && req->route->policy->answered != NULL)
		req->route->policy->answered(req->pool->policy_state,
		    req->endpoint, req);
	if (x->tries.queued)
		waitq_remove(x);
	if (x->tries.timer != NULL)
		event_free(x->tries.timer);
}

const struct sy_stage sy_stage_tries = {
	.name = "tries",
	.enter = tries_enter,
	.end = tries_end
};

void
sy_tries_worker_init(struct sy_worker *w)
{
	struct sy_waitq *q = sy_xcalloc(1, sizeof *q);

	TAILQ_INIT(&q->list);
	q->poll = event_new(w->base, -1, EV_PERSIST, waitq_poll_cb, q);
	w->waitq = q;
}

void
sy_tries_worker_free(struct sy_worker *w)
{
	event_free(w->waitq->poll);
	free(w->waitq);
	w->waitq = NULL;
}
