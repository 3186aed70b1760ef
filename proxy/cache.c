/* The prompt cache stage: whether a request may use the cache, its lookup (L1, then Redis), coalescing of identical requests in flight across workers, storing answers, and the cache's accounting. */
#include <sys/queue.h>

#include <errno.h>
#include <stddef.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "accesslog.h"
#include "cache.h"
#include "redis.h"
#include "canon.h"
#include "wake.h"
#include "jscan.h"
#include "confrow.h"
#include "config.h"
#include "http1.h"
#include "req.h"
#include "util.h"

#define FLIGHT_SLOTS	256	/* hash slots of the in-flight table */
#define LOCK_POLL_MS	10	/* looks for another instance's answer this often */

/* Requests in flight for one key: the one that went ahead and those waiting for it. */
struct flight {
	unsigned char key[SY_CACHE_KEY_LEN];
	TAILQ_HEAD(, sy_cache_ctx) waiters;
	struct flight *next;		/* in its slot */
};

struct sy_cache {
	struct sy_cache_settings s;	/* a copy of the startup config's */
	struct sy_cache_lru *l1;	/* NULL without an L1 */
	pthread_mutex_t lock;		/* flights and every worker's mailbox */
	struct flight *flights[FLIGHT_SLOTS];
	struct sy_redis_stats *redis;	/* the workers' connections' */
};

struct sy_cache_worker {
	struct sy_cache *c;
	struct event_base *base;
	struct sy_cache_redis *redis;	/* NULL without Redis */
	struct sy_wake *wake;		/* the mailbox has mail */
	TAILQ_HEAD(, sy_cache_ctx) mailbox;	/* answered waiters, under c->lock */
};

/* Where a request waits for an identical one (under c->lock). */
enum wait_state {
	WAIT_NONE,
	WAIT_FLIGHT,		/* in flight->waiters */
	WAIT_MAIL		/* in its worker's mailbox, with mail */
};

struct sy_cache_ctx {
	struct sy_cache_worker *cw;
	const struct sy_route_cache *rc;
	enum sy_cache_result result;
	unsigned char key[SY_CACHE_KEY_LEN];
	int api;
	int stream;
	int with_usage;
	long max_age;			/* Cache-Control max-age, -1: any */
	int may_store;
	struct flight *lead;		/* the flight it leads, or NULL */
	enum wait_state wait;
	struct flight *flight;		/* WAIT_FLIGHT: the flight waited for */
	TAILQ_ENTRY(sy_cache_ctx) link;
	struct sy_cache_value *mail;	/* WAIT_MAIL: the answer, or NULL */
	struct sy_cache_get *get;	/* a Redis lookup or lock in flight */
	int locked;			/* it holds the Redis lock of its key */
	struct event *poll;		/* waiting for another instance's answer */
	uint64_t poll_until_us;		/* until the lock expires */
	uint64_t deadline_us;		/* half of the request's deadline: the
					   longest it polls another instance */
	struct sy_canon_capture *cap;	/* a streamed miss being captured */
	struct sy_cache_value *served;	/* the value answered with */
	sy_cache_answer_fn answer;
	void *arg;
};

/* The process's cache, for its metrics. */
static struct sy_cache *_Atomic process_cache;

const char *
sy_cache_result_name(enum sy_cache_result r)
{
	static const char *const names[] = {
		"bypass", "miss", "hit", "coalesced"
	};

	return names[r];
}

/* Wall clock in ms. */
static uint64_t
now_ms(void)
{
	return sy_wall_us() / 1000;
}

/* ==== Process and workers ==== */

struct sy_cache *
sy_cache_new(const struct sy_cache_settings *s,
    struct sy_redis_stats *redis_stats)
{
	struct sy_cache *c = sy_xcalloc(1, sizeof *c);

	c->redis = redis_stats;
	sy_conf_copy(&sy_cache_table, &c->s, s);
	c->s.redis = s->redis;
	if (s->l1_max_bytes > 0)
		c->l1 = sy_cache_lru_new(s->l1_max_bytes);
	pthread_mutex_init(&c->lock, NULL);
	atomic_store(&process_cache, c);
	return c;
}

void
sy_cache_free(struct sy_cache *c)
{
	if (c == NULL)
		return;
	atomic_store(&process_cache, NULL);
	sy_cache_lru_free(c->l1);
	sy_conf_free(&sy_cache_table, &c->s);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

int
sy_cache_settings_differ(const struct sy_cache_settings *a,
    const struct sy_cache_settings *b)
{
	return a->redis != b->redis || sy_conf_differ(&sy_cache_table, a, b);
}

static void deliver(struct sy_cache_ctx *ctx, struct sy_cache_value *v);

/* Hands the worker's answered waiters their answers, one at a time. */
static void
mailbox_cb(void *arg)
{
	struct sy_cache_worker *cw = arg;
	struct sy_cache_ctx *ctx;
	struct sy_cache_value *v;

	for (;;) {
		pthread_mutex_lock(&cw->c->lock);
		if ((ctx = TAILQ_FIRST(&cw->mailbox)) != NULL) {
			TAILQ_REMOVE(&cw->mailbox, ctx, link);
			ctx->wait = WAIT_NONE;
			v = ctx->mail;
			ctx->mail = NULL;
		}
		pthread_mutex_unlock(&cw->c->lock);
		if (ctx == NULL)
			break;
		deliver(ctx, v);
	}
}

struct sy_cache_worker *
sy_cache_worker_new(struct sy_cache *c, struct event_base *base,
    struct sy_redis *r)
{
	struct sy_cache_worker *cw;

	if (c == NULL)
		return NULL;
	cw = sy_xcalloc(1, sizeof *cw);
	cw->c = c;
	cw->base = base;
	TAILQ_INIT(&cw->mailbox);
	if ((cw->wake = sy_wake_new(base, mailbox_cb, cw)) == NULL) {
		sy_log(SY_LOG_ERROR, "cache: mailbox: %s", strerror(errno));
		abort();
	}
	cw->redis = sy_cache_redis_new(r, c->s.key_prefix, c->redis);
	return cw;
}

void
sy_cache_worker_free(struct sy_cache_worker *cw)
{
	if (cw == NULL)
		return;
	sy_cache_redis_free(cw->redis);
	sy_wake_free(cw->wake);
	free(cw);
}

/* ==== Coalescing ==== */

/* The slot of key in the flight table. */
static struct flight **
flight_slot(struct sy_cache *c, const unsigned char *key)
{
	struct flight **pf = &c->flights[key[0]];

	while (*pf != NULL && memcmp((*pf)->key, key, SY_CACHE_KEY_LEN) != 0)
		pf = &(*pf)->next;
	return pf;
}

/*
 * Joins the flight of ctx's key when there is one (1: ctx waits), else
 * starts one that ctx leads (0).
 */
static int
flight_join_or_lead(struct sy_cache_ctx *ctx)
{
	struct sy_cache *c = ctx->cw->c;
	struct flight **pf, *f;

	pthread_mutex_lock(&c->lock);
	if ((f = *(pf = flight_slot(c, ctx->key))) != NULL && ctx->stream) {
		/* A stream does not wait for the whole of another answer: it
		   would see no token before that one ended. */
		pthread_mutex_unlock(&c->lock);
		return 0;
	}
	if (f != NULL) {
		TAILQ_INSERT_TAIL(&f->waiters, ctx, link);
		ctx->wait = WAIT_FLIGHT;
		ctx->flight = f;
		pthread_mutex_unlock(&c->lock);
		return 1;
	}
	f = sy_xcalloc(1, sizeof *f);
	memcpy(f->key, ctx->key, SY_CACHE_KEY_LEN);
	TAILQ_INIT(&f->waiters);
	*pf = f;
	ctx->lead = f;
	pthread_mutex_unlock(&c->lock);
	return 0;
}

/* Under c->lock: puts w in its worker's mailbox with v (taken) and wakes it. */
static void
mail_locked(struct sy_cache_ctx *w, struct sy_cache_value *v)
{
	w->wait = WAIT_MAIL;
	w->flight = NULL;
	w->mail = v;
	TAILQ_INSERT_TAIL(&w->cw->mailbox, w, link);
	sy_wake_post(w->cw->wake);
}

/*
 * Under c->lock: f's leader is gone without an answer.  Its first waiter
 * leads it now (told through its mailbox to go to a backend), the others
 * go on waiting; without waiters the flight ends.
 */
static void
flight_pass(struct sy_cache *c, struct flight *f)
{
	struct sy_cache_ctx *w;
	struct flight **pf;

	if ((w = TAILQ_FIRST(&f->waiters)) != NULL) {
		TAILQ_REMOVE(&f->waiters, w, link);
		w->lead = f;
		mail_locked(w, NULL);
		return;
	}
	pf = flight_slot(c, f->key);
	*pf = f->next;
	free(f);
}

/*
 * Ends the flight ctx leads: each waiter gets v (a reference each; NULL: an
 * answer that is not for the cache, so each goes to a backend) in its
 * worker's mailbox.
 */
static void
flight_end(struct sy_cache_ctx *ctx, struct sy_cache_value *v)
{
	struct sy_cache *c = ctx->cw->c;
	struct flight *f, **pf;
	struct sy_cache_ctx *w;

	pthread_mutex_lock(&c->lock);
	/* Under the lock: a waiter's lead is set by the thread that passes
	   a flight to it. */
	if ((f = ctx->lead) == NULL) {
		pthread_mutex_unlock(&c->lock);
		return;
	}
	ctx->lead = NULL;
	pf = flight_slot(c, f->key);
	*pf = f->next;
	while ((w = TAILQ_FIRST(&f->waiters)) != NULL) {
		TAILQ_REMOVE(&f->waiters, w, link);
		mail_locked(w, v != NULL ? sy_cache_value_ref(v) : NULL);
	}
	pthread_mutex_unlock(&c->lock);
	free(f);
}

/*
 * The request leading a flight failed or its client left: the flight
 * passes to its first waiter, the others go on waiting (one backend call
 * at a time, not one each).
 */
static void
flight_abandon(struct sy_cache_ctx *ctx)
{
	struct sy_cache *c = ctx->cw->c;
	struct flight *f;

	pthread_mutex_lock(&c->lock);
	if ((f = ctx->lead) != NULL) {
		ctx->lead = NULL;
		flight_pass(c, f);
	}
	pthread_mutex_unlock(&c->lock);
}

/* Takes ctx out of whatever it waits in. */
static void
wait_leave(struct sy_cache_ctx *ctx)
{
	struct sy_cache *c = ctx->cw->c;
	struct flight *f;

	pthread_mutex_lock(&c->lock);
	if (ctx->wait == WAIT_FLIGHT)
		TAILQ_REMOVE(&ctx->flight->waiters, ctx, link);
	else if (ctx->wait == WAIT_MAIL) {
		TAILQ_REMOVE(&ctx->cw->mailbox, ctx, link);
		sy_cache_value_unref(ctx->mail);
		ctx->mail = NULL;
	}
	ctx->wait = WAIT_NONE;
	/* A flight passed to ctx that it will not lead: to the next. */
	if ((f = ctx->lead) != NULL) {
		ctx->lead = NULL;
		flight_pass(c, f);
	}
	pthread_mutex_unlock(&c->lock);
}

/* ==== Lookup ==== */

/* Whether v is young enough for ctx's max-age. */
static int
fresh(const struct sy_cache_ctx *ctx, const struct sy_cache_value *v)
{
	uint64_t now = now_ms();

	return ctx->max_age < 0 || v->stored_ms >= now ||
	    now - v->stored_ms <= (uint64_t)ctx->max_age * 1000;
}

/* Keeps v in the L1 until its time to live (from when it was stored) is over. */
static void
l1_put(struct sy_cache_ctx *ctx, struct sy_cache_value *v)
{
	if (ctx->cw->c->l1 != NULL)
		sy_cache_lru_put(ctx->cw->c->l1, ctx->key, v,
		    v->stored_ms + (uint64_t)ctx->rc->ttl_s * 1000);
}

/*
 * Answers with v (result: hit or coalesced) when it suits the request (a
 * stream needs an answer that replays as one); a flight ctx leads gets v
 * too.  Returns 1 when answered (ctx may be gone), else 0.
 */
static int
serve(struct sy_cache_ctx *ctx, struct sy_cache_value *v,
    enum sy_cache_result result)
{
	struct evbuffer *out = evbuffer_new();

	if (!fresh(ctx, v) || (ctx->stream ? sy_canon_replay(v->body, v->len, ctx->api,
	    ctx->rc->replay_chunk_tokens, ctx->with_usage, out) :
	    evbuffer_add(out, v->body, v->len)) != 0) {
		evbuffer_free(out);
		return 0;
	}
	ctx->result = result;
	ctx->served = sy_cache_value_ref(v);
	sy_canon_capture_free(ctx->cap);
	ctx->cap = NULL;
	flight_end(ctx, v);
	ctx->answer(ctx->arg, out);
	return 1;
}

/* The request goes to a backend. */
static void
go_on(struct sy_cache_ctx *ctx)
{
	ctx->answer(ctx->arg, NULL);
}

/* A waiter's answer arrived (v: a reference, or NULL). */
static void
deliver(struct sy_cache_ctx *ctx, struct sy_cache_value *v)
{
	int served = v != NULL && serve(ctx, v, SY_CACHE_COALESCED);

	sy_cache_value_unref(v);
	if (!served)
		go_on(ctx);
}

/*
 * Answers with v, found in Redis (a reference), as result; else (v NULL,
 * or not suitable) returns 0.
 */
static int
serve_found(struct sy_cache_ctx *ctx, struct sy_cache_value *v,
    enum sy_cache_result result)
{
	int served;

	if (v == NULL)
		return 0;
	l1_put(ctx, v);
	served = serve(ctx, v, result);
	sy_cache_value_unref(v);
	return served;
}

static void poll_cb(evutil_socket_t fd, short what, void *arg);
static void on_redis(void *arg, struct sy_cache_value *v);

/* Looks for the answer again LOCK_POLL_MS from now. */
static void
poll_arm(struct sy_cache_ctx *ctx)
{
	struct timeval tv = { 0, LOCK_POLL_MS * 1000 };

	if (ctx->poll == NULL)
		ctx->poll = evtimer_new(ctx->cw->base, poll_cb, ctx);
	evtimer_add(ctx->poll, &tv);
}

static void
poll_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sy_cache_ctx *ctx = arg;

	if ((ctx->get = sy_cache_redis_get(ctx->cw->redis, ctx->key, on_redis,
	    ctx)) == NULL)
		go_on(ctx);
}

/*
 * The Redis lock of the key: taken (1) or failed (-1), on to a backend;
 * held by another instance (0), look for its answer every LOCK_POLL_MS,
 * for lock_ms at most.
 */
static void
on_locked(void *arg, int taken)
{
	struct sy_cache_ctx *ctx = arg;
	uint64_t now = sy_now_us();

	ctx->get = NULL;
	if (taken == 0 && ctx->poll_until_us == 0) {
		ctx->poll_until_us = now +
		    (uint64_t)ctx->cw->c->s.lock_ms * 1000;
		/* Not past half of the request's own deadline. */
		if (ctx->poll_until_us > ctx->deadline_us)
			ctx->poll_until_us = ctx->deadline_us;
	}
	if (taken != 0 || now >= ctx->poll_until_us) {
		ctx->locked = taken == 1;
		go_on(ctx);
		return;
	}
	poll_arm(ctx);
}

/*
 * Redis answered a lookup, or a poll for another instance's answer (v: a
 * reference, or NULL).  On a miss, with lock_ms, the request that leads
 * its key here tries the Redis lock (again, when polling: it is free when
 * that instance gave up), so that one instance goes to a backend.
 */
static void
on_redis(void *arg, struct sy_cache_value *v)
{
	struct sy_cache_ctx *ctx = arg;
	struct sy_cache_worker *cw = ctx->cw;
	int found = v != NULL;

	ctx->get = NULL;
	if (serve_found(ctx, v, ctx->poll_until_us != 0 ? SY_CACHE_COALESCED :
	    SY_CACHE_HIT))
		return;
	if (!found && ctx->lead != NULL && cw->c->s.lock_ms > 0 &&
	    (ctx->get = sy_cache_redis_lock(cw->redis, ctx->key,
	    cw->c->s.lock_ms, on_locked, ctx)) != NULL)
		return;
	go_on(ctx);
}

/* Fills the decision of ctx for req; 0 when it may use the cache, -1: bypass. */
static int
decide(struct sy_cache_ctx *ctx, struct sy_req *req,
    struct sy_cache_control *cc)
{
	const struct sy_route_cache *rc = &req->route->cache;
	const json_t *body;
	const char *ns;
	char team_ns[512];

	if (ctx->cw == NULL || !rc->enabled ||
	    (body = sy_req_body(req)) == NULL)
		return -1;
	if (rc->deterministic_only && !sy_cache_deterministic(req->api, body))
		return -1;
	/* Each team's entries are its own unless teams share them. */
	ns = rc->namespace != NULL ? rc->namespace : req->route->name;
	if (req->team != NULL && !req->cfg->tenancy.cache_shared) {
		snprintf(team_ns, sizeof team_ns, "%s\nteam:%s", ns, req->team);
		ns = team_ns;
	}
	if (sy_cache_key(ns, req->api, req->model, body, ctx->key) != 0)
		return -1;
	sy_cache_control_parse(req->head != NULL ?
	    sy_http1_header(req->head, "cache-control") : NULL, cc);
	ctx->max_age = cc->max_age;
	ctx->may_store = !cc->no_store;
	ctx->result = SY_CACHE_MISS;
	if (req->stream && ctx->may_store)
		ctx->cap = sy_canon_capture_new(req->api);
	return 0;
}

void
sy_cache_lookup(struct sy_cache_worker *cw, struct sy_req *req,
    struct sy_cache_ctx **ctxp, sy_cache_answer_fn answer, void *arg)
{
	struct sy_cache_ctx *ctx;
	struct sy_cache_control cc;
	struct sy_cache_value *v;

	if (cw == NULL || req->route == NULL || !req->route->cache.enabled) {
		*ctxp = NULL;	/* bypass, at no cost */
		answer(arg, NULL);
		return;
	}
	ctx = sy_xcalloc(1, sizeof *ctx);
	*ctxp = ctx;
	ctx->cw = cw;
	ctx->rc = req->route ? &req->route->cache : NULL;
	ctx->api = req->api;
	ctx->stream = req->stream;
	ctx->with_usage = req->client_wants_usage;
	ctx->answer = answer;
	ctx->arg = arg;
	ctx->result = SY_CACHE_BYPASS;
	if (req->route != NULL)
		ctx->deadline_us = req->t_arrival +
		    (uint64_t)req->route->deadline_ms * 500;
	if (ctx->rc == NULL || decide(ctx, req, &cc) != 0 || cc.no_cache) {
		go_on(ctx);
		return;
	}
	if (cw->c->l1 != NULL &&
	    (v = sy_cache_lru_get(cw->c->l1, ctx->key, now_ms())) != NULL) {
		if (serve(ctx, v, SY_CACHE_HIT)) {
			sy_cache_value_unref(v);
			return;
		}
		sy_cache_value_unref(v);
	}
	if (cw->c->s.coalesce && ctx->may_store && flight_join_or_lead(ctx))
		return;
	if (cw->redis != NULL &&
	    (ctx->get = sy_cache_redis_get(cw->redis, ctx->key, on_redis,
	    ctx)) != NULL)
		return;
	go_on(ctx);
}

enum sy_cache_result
sy_cache_result(const struct sy_cache_ctx *ctx)
{
	return ctx != NULL ? ctx->result : SY_CACHE_BYPASS;
}

/* ==== Storing ==== */

/* Gives back the Redis lock ctx holds, if it does. */
static void
unlock(struct sy_cache_ctx *ctx)
{
	if (ctx->locked)
		sy_cache_redis_unlock(ctx->cw->redis, ctx->key);
	ctx->locked = 0;
}

/* Stores the answer body (len bytes) of req and hands it to the flight ctx leads. */
static void
store(struct sy_cache_ctx *ctx, const struct sy_req *req, const char *body,
    size_t len)
{
	struct sy_jscan_member m[] = {
		{ .key = "error" }, { .key = "choices" }, { .key = "data" }
	};
	struct sy_cache_value *v;

	/* Not another route's answer, nor another model's (a cascade's),
	   nor an error a backend sent with status 200. */
	if (req->fallbacks > 0 || req->escalations > 0 ||
	    sy_jscan(body, len, m, 3) != SY_JSON_OBJECT ||
	    (m[0].kind != SY_JSON_NONE && m[0].kind != SY_JSON_NULL) ||
	    (m[1].kind != SY_JSON_ARRAY && m[2].kind != SY_JSON_ARRAY)) {
		unlock(ctx);
		flight_end(ctx, NULL);
		return;
	}
	v = sy_cache_value_new(body, len, &req->usage, now_ms());
	if (len <= ctx->rc->max_entry_bytes) {
		l1_put(ctx, v);
		if (ctx->cw->redis != NULL)
			sy_cache_redis_set(ctx->cw->redis, ctx->key, v,
			    ctx->rc->ttl_s);
	}
	unlock(ctx);
	flight_end(ctx, v);
	sy_cache_value_unref(v);
}

void
sy_cache_capture(struct sy_cache_ctx *ctx, const struct sy_req *req,
    struct evbuffer *events)
{
	char *answer;
	size_t len;

	if (ctx == NULL || ctx->cap == NULL ||
	    (len = evbuffer_get_length(events)) == 0)
		return;
	sy_canon_capture_feed(ctx->cap,
	    (const char *)evbuffer_pullup(events, -1), len);
	if (!sy_canon_capture_done(ctx->cap))
		return;
	if ((answer = sy_canon_capture_answer(ctx->cap, &req->usage,
	    &len)) != NULL) {
		store(ctx, req, answer, len);
		free(answer);
	} else {
		/* Not storable: those waiting for it go on at once. */
		unlock(ctx);
		flight_end(ctx, NULL);
	}
	sy_canon_capture_free(ctx->cap);
	ctx->cap = NULL;
}

void
sy_cache_store(struct sy_cache_ctx *ctx, const struct sy_req *req,
    struct evbuffer *body)
{
	if (ctx == NULL || ctx->result != SY_CACHE_MISS || !ctx->may_store)
		return;
	store(ctx, req, (const char *)evbuffer_pullup(body, -1),
	    evbuffer_get_length(body));
}

void
sy_cache_end(struct sy_cache_ctx *ctx, struct sy_req *req)
{
	const struct sy_price *price;
	const struct sy_usage *u;

	if (ctx == NULL) {
		/* A route without a cache: a bypass. */
		if (req->route != NULL)
			req->cache = sy_cache_result_name(SY_CACHE_BYPASS);
		return;
	}
	sy_canon_capture_free(ctx->cap);
	flight_abandon(ctx);	/* it still leads one: it failed or left */
	unlock(ctx);
	if (ctx->poll != NULL)
		event_free(ctx->poll);
	if (ctx->get != NULL)
		sy_cache_redis_cancel(ctx->get);
	wait_leave(ctx);	/* under the lock: a flight may pass to ctx now */
	req->cache = sy_cache_result_name(ctx->result);
	if (ctx->served != NULL) {
		/* Nothing was spent; what the answer cost is saved. */
		u = &ctx->served->usage;
		price = req->model ? sy_config_price(req->cfg, req->model) :
		    NULL;
		req->saved_tokens = (u->prompt_tokens > 0 ? u->prompt_tokens :
		    0) + (u->completion_tokens > 0 ? u->completion_tokens : 0);
		req->saved_usd = sy_cost_usd(price, u);
		req->usage.prompt_tokens = req->usage.completion_tokens =
		    req->usage.cached_tokens = 0;
		sy_cache_value_unref(ctx->served);
	}
	free(ctx);
}

/* ==== Metrics ==== */

void
sy_cache_prometheus(struct evbuffer *out)
{
	static const struct {
		const char *name, *type, *help;
	} fams[] = {
		{ "switchyard_cache_l1_entries", "gauge",
		  "Answers held in the memory cache." },
		{ "switchyard_cache_l1_bytes", "gauge",
		  "Bytes the memory cache holds, counted against l1_max_bytes." },
		{ "switchyard_cache_l1_evictions_total", "counter",
		  "Answers the memory cache dropped to stay within its bound." },
		{ "switchyard_cache_redis_errors_total", "counter",
		  "Failed Redis commands and connections, and values that were not answers." },
		{ "switchyard_cache_redis_timeouts_total", "counter",
		  "Redis lookups that gave up waiting (the request went on as a miss)." },
		{ "switchyard_cache_redis_reconnects_total", "counter",
		  "Redis connections made again after a loss." },
		{ "switchyard_cache_redis_connected", "gauge",
		  "Workers connected to Redis now." }
	};
	struct sy_cache *c = atomic_load(&process_cache);
	struct sy_cache_lru_stats st;
	uint64_t v[7];
	size_t i;

	if (c == NULL)
		return;
	memset(&st, 0, sizeof st);
	if (c->l1 != NULL)
		sy_cache_lru_stats(c->l1, &st);
	v[0] = st.entries;
	v[1] = st.bytes;
	v[2] = st.evictions;
	v[3] = atomic_load(&c->redis->errors);
	v[4] = atomic_load(&c->redis->timeouts);
	v[5] = atomic_load(&c->redis->reconnects);
	v[6] = (uint64_t)atomic_load(&c->redis->connected);
	for (i = 0; i < sizeof fams / sizeof fams[0]; i++)
		evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n",
		    fams[i].name, fams[i].help, fams[i].name, fams[i].type,
		    fams[i].name, (unsigned long long)v[i]);
}

/* ==== Config ==== */

/* A route's cache is off unless its object is given. */
static void
route_cache_check(struct sy_conf *c, const json_t *obj, const char *path,
    void *base)
{
	struct sy_route_cache *rc = base;

	if (obj == NULL)
		rc->enabled = 0;
}

static const struct sy_conf_row route_cache_rows[] = {
	{ .name = "enabled", .type = SY_CONF_BOOL,
	  .offset = offsetof(struct sy_route_cache, enabled), .def.u = 1,
	  .doc = "false keeps the object but turns the cache off" },
	{ .name = "ttl_s", .type = SY_CONF_UINT,
	  .offset = offsetof(struct sy_route_cache, ttl_s), .def.u = 3600,
	  .min = 1, .max = 31536000, .doc = "time to live of an entry" },
	{ .name = "max_entry_bytes", .type = SY_CONF_SIZE,
	  .offset = offsetof(struct sy_route_cache, max_entry_bytes),
	  .def.u = 1048576, .min = 1, .max = 67108864,
	  .doc = "largest answer stored" },
	{ .name = "deterministic_only", .type = SY_CONF_BOOL,
	  .offset = offsetof(struct sy_route_cache, deterministic_only),
	  .def.u = 1, .doc = "only requests that ask for one answer" },
	{ .name = "replay_chunk_tokens", .type = SY_CONF_UINT,
	  .offset = offsetof(struct sy_route_cache, replay_chunk_tokens),
	  .def.u = 4, .min = 1, .max = 4096,
	  .doc = "words per chunk of a replayed stream" },
	{ .name = "replay_interval_ms", .type = SY_CONF_MS,
	  .offset = offsetof(struct sy_route_cache, replay_interval_ms),
	  .max = 10000, .doc = "time between replayed chunks" },
	{ .name = "namespace", .type = SY_CONF_STRING,
	  .offset = offsetof(struct sy_route_cache, namespace),
	  .doc = "key space of the entries; default: the route's name" },
	{ .name = NULL }
};

const struct sy_conf_table sy_route_cache_table = {
	.path = "routes[].cache",
	.rows = route_cache_rows,
	.size = sizeof(struct sy_route_cache),
	.check = route_cache_check
};

static const struct sy_conf_row cache_rows[] = {
	{ .name = "l1_max_bytes", .type = SY_CONF_SIZE,
	  .offset = offsetof(struct sy_cache_settings, l1_max_bytes),
	  .def.u = 64 * 1024 * 1024, .max = (long long)1 << 40,
	  .doc = "bytes of the memory L1; 0: no L1" },
	{ .name = "coalesce", .type = SY_CONF_BOOL,
	  .offset = offsetof(struct sy_cache_settings, coalesce), .def.u = 1,
	  .doc = "identical requests in flight wait for the first" },
	{ .name = "redis", .type = SY_CONF_OBJECT, .table = &sy_redis_table,
	  .doc = "the L2 shared by gateway instances; absent: none" },
	{ .name = NULL }
};

const struct sy_conf_table sy_cache_table = {
	.path = "cache",
	.rows = cache_rows,
	.size = sizeof(struct sy_cache_settings)
};
