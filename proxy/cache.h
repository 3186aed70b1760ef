/* The prompt cache: exact-match answers by a key over the canonical request, in a memory L1 before Redis, with coalescing of identical requests in flight. */
#ifndef SY_CACHE_H
#define SY_CACHE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "record.h"

struct evbuffer;
struct event_base;
struct sy_req;
struct sy_cache_settings;
struct sy_route_cache;

#define SY_CACHE_KEY_LEN	32	/* SHA-256 */

/* What the cache did for a request: x-switchyard-cache and the log's "cache". */
enum sy_cache_result {
	SY_CACHE_BYPASS,	/* not cacheable, or the route has no cache */
	SY_CACHE_MISS,		/* looked up (or no-cache), answered by a backend */
	SY_CACHE_HIT,		/* answered from the cache */
	SY_CACHE_COALESCED	/* answered with an identical request's answer */
};

/* "bypass", "miss", "hit" or "coalesced". */
const char *sy_cache_result_name(enum sy_cache_result r);

/* ==== Pure pieces (proxy/cache_key.c) ==== */

/* A Cache-Control request header, read. */
struct sy_cache_control {
	int no_cache;		/* skip the lookup, refresh the entry */
	int no_store;		/* do not store the answer */
	long max_age;		/* accept only entries younger (s); -1: any */
};

/*
 * Reads the directives of a Cache-Control header value (NULL: none) into
 * *cc: no-cache, no-store, max-age=N (case-insensitive, comma-separated;
 * unknown directives and a malformed max-age are ignored).
 */
void sy_cache_control_parse(const char *value, struct sy_cache_control *cc);

/*
 * Whether a request body (the canonical form, an object) may be answered
 * from the cache when only deterministic requests are: embeddings always,
 * else when temperature is 0 or a seed is given.
 */
int sy_cache_deterministic(int api, const json_t *body);

/*
 * Computes the key of a request: SHA-256 over the namespace ns, the API
 * (api, an enum sy_api), the selected model, and body (the canonical
 * request object) without model, stream and stream_options, serialised
 * with object keys sorted at every level.  Fills key; returns 0, or -1
 * when body is not an object or cannot be serialised.
 */
int sy_cache_key(const char *ns, int api, const char *model,
    const json_t *body, unsigned char key[SY_CACHE_KEY_LEN]);

/* Writes key as 64 lowercase hex digits and a NUL into hex. */
void sy_cache_key_hex(const unsigned char key[SY_CACHE_KEY_LEN],
    char hex[2 * SY_CACHE_KEY_LEN + 1]);

/*
 * A stored answer: immutable once made, shared by reference between the
 * L1, coalesced requests and replays.
 */
struct sy_cache_value {
	atomic_int refs;
	uint64_t stored_ms;	/* wall clock, ms since the epoch */
	struct sy_usage usage;	/* of the original answer */
	size_t len;
	char body[];		/* the canonical whole answer, NUL-terminated */
};

/* A new value (one reference) holding a copy of body; aborts when out of memory. */
struct sy_cache_value *sy_cache_value_new(const char *body, size_t len,
    const struct sy_usage *usage, uint64_t stored_ms);

/* Takes a reference to v; returns v.  Thread safe. */
struct sy_cache_value *sy_cache_value_ref(struct sy_cache_value *v);

/* Drops a reference, freeing v at the last; NULL is ignored.  Thread safe. */
void sy_cache_value_unref(struct sy_cache_value *v);

/*
 * Appends v in its stored form to out: a line "SYC1 STORED_MS PROMPT
 * COMPLETION CACHED" and the body.
 */
void sy_cache_value_encode(const struct sy_cache_value *v,
    struct evbuffer *out);

/*
 * The value stored as len bytes at buf (one reference), or NULL when
 * malformed: a bad header line, or a body that is not a JSON object.
 */
struct sy_cache_value *sy_cache_value_decode(const char *buf, size_t len);

/* ==== The memory L1 (proxy/cache_lru.c) ==== */

struct sy_cache_lru;

/* A new L1 holding at most max_bytes (entries and values together). */
struct sy_cache_lru *sy_cache_lru_new(size_t max_bytes);

/* Frees l and drops its references to values. */
void sy_cache_lru_free(struct sy_cache_lru *l);

/*
 * The value under key (a new reference, the caller unrefs) when it has not
 * expired by now_ms (wall clock), marking it recently used; NULL
 * otherwise (an expired entry is removed).  Thread safe.
 */
struct sy_cache_value *sy_cache_lru_get(struct sy_cache_lru *l,
    const unsigned char key[SY_CACHE_KEY_LEN], uint64_t now_ms);

/*
 * Stores v (l takes its own reference) under key until expires_ms,
 * replacing an older entry, evicting the least recently used entries to
 * stay within the bound.  A value larger than the whole bound is not
 * stored.  Thread safe.
 */
void sy_cache_lru_put(struct sy_cache_lru *l,
    const unsigned char key[SY_CACHE_KEY_LEN], struct sy_cache_value *v,
    uint64_t expires_ms);

/* Removes the entry of key, if any.  Thread safe. */
void sy_cache_lru_remove(struct sy_cache_lru *l,
    const unsigned char key[SY_CACHE_KEY_LEN]);

/* Counts of the L1 now. */
struct sy_cache_lru_stats {
	uint64_t entries;
	uint64_t bytes;
	uint64_t evictions;	/* entries pushed out by the bound */
};

/* Fills *st; thread safe. */
void sy_cache_lru_stats(struct sy_cache_lru *l, struct sy_cache_lru_stats *st);

/* ==== Redis, one connection per worker (proxy/cache_redis.c) ==== */

struct sy_cache_redis;
struct sy_cache_get;

struct sy_redis;
struct sy_redis_stats;

/*
 * The cache's side of a worker's Redis connection r (NULL: no Redis, and
 * NULL is returned), its keys prefixed with key_prefix (borrowed, outlives
 * it); values that are not answers count in stats' errors.
 */
struct sy_cache_redis *sy_cache_redis_new(struct sy_redis *r,
    const char *key_prefix, struct sy_redis_stats *stats);

/* Frees cr (pending lookups are told nothing: cancel them first); NULL is ignored. */
void sy_cache_redis_free(struct sy_cache_redis *cr);

/*
 * Called once with the value found (a reference passed to the callee) or
 * NULL: absent, malformed, Redis failed or the command timeout struck.
 */
typedef void (*sy_cache_got_fn)(void *arg, struct sy_cache_value *v);

/*
 * Looks key up; got is called later (never during this call), unless the
 * lookup is cancelled first.  Returns the lookup, or NULL when Redis is not
 * connected now (got is never called: fail open at once).
 */
struct sy_cache_get *sy_cache_redis_get(struct sy_cache_redis *r,
    const unsigned char key[SY_CACHE_KEY_LEN], sy_cache_got_fn got,
    void *arg);

/*
 * Called once with whether the lock was taken: 1, 0 when another holds
 * it, -1 when Redis failed or the command timeout struck.
 */
typedef void (*sy_cache_locked_fn)(void *arg, int taken);

/*
 * Takes the lock of key for ms (SET KEY:lock NX PX ms), so that gateway
 * instances that share Redis send one request for key to a backend.
 * locked is called as got is for sy_cache_redis_get; returns as it does.
 */
struct sy_cache_get *sy_cache_redis_lock(struct sy_cache_redis *r,
    const unsigned char key[SY_CACHE_KEY_LEN], unsigned ms,
    sy_cache_locked_fn locked, void *arg);

/* Gives back the lock of key, without waiting. */
void sy_cache_redis_unlock(struct sy_cache_redis *r,
    const unsigned char key[SY_CACHE_KEY_LEN]);

/* Forgets a lookup or lock whose callback has not been called yet (and frees it). */
void sy_cache_redis_cancel(struct sy_cache_get *g);

/* Stores v under key for ttl_s seconds, without waiting; failures are counted. */
void sy_cache_redis_set(struct sy_cache_redis *r,
    const unsigned char key[SY_CACHE_KEY_LEN],
    const struct sy_cache_value *v, unsigned ttl_s);

/* ==== The stage (proxy/cache.c) ==== */

struct sy_cache;		/* process-wide: L1, in-flight table, counters */
struct sy_cache_worker;		/* a worker's: its Redis connection, its mailbox */
struct sy_cache_ctx;		/* one request's */

/*
 * The process's cache from the startup config's settings s (copied in
 * part); the workers' Redis connections count in redis_stats (borrowed,
 * outlives it), which its metrics show.
 */
struct sy_cache *sy_cache_new(const struct sy_cache_settings *s,
    struct sy_redis_stats *redis_stats);

/* Whether two cache settings differ (a reload cannot change them). */
int sy_cache_settings_differ(const struct sy_cache_settings *a,
    const struct sy_cache_settings *b);

/* Frees c (after every worker's part is freed). */
void sy_cache_free(struct sy_cache *c);

/*
 * A worker's part of c on its event base, using the worker's Redis
 * connection r (NULL: no Redis); c NULL: NULL, no cache.
 */
struct sy_cache_worker *sy_cache_worker_new(struct sy_cache *c,
    struct event_base *base, struct sy_redis *r);

/* Frees a worker's part (after its requests ended); NULL is ignored. */
void sy_cache_worker_free(struct sy_cache_worker *cw);

/*
 * Called once by sy_cache_lookup with the answer to send (the caller owns
 * the buffer): a canonical whole answer for a request that is not a
 * stream, canonical SSE events for a stream; or NULL: go to a backend.
 */
typedef void (*sy_cache_answer_fn)(void *arg, struct evbuffer *answer);

/*
 * The lookup stage for req on its route (model selected): decides whether
 * it may use the cache (route, determinism, Cache-Control), looks in the
 * L1, joins an identical request in flight or leads one, then asks Redis
 * (bounded by its command timeout).  Sets *ctx (owned by the caller, freed
 * with sy_cache_end; NULL when the route has no cache: a bypass) and then
 * calls answer exactly once, now or later, as the last thing it does; not
 * at all if sy_cache_end comes first.  cw NULL: bypass.
 */
void sy_cache_lookup(struct sy_cache_worker *cw, struct sy_req *req,
    struct sy_cache_ctx **ctx, sy_cache_answer_fn answer, void *arg);

/* What the cache did for the request so far (ctx NULL: bypass). */
enum sy_cache_result sy_cache_result(const struct sy_cache_ctx *ctx);

/*
 * Captures a streamed miss's canonical events as they pass (events not
 * drained); once they end with [DONE] (a stream that completed normally),
 * stores the whole answer they tell, with req's usage, and hands it to the
 * requests waiting for it.  ctx NULL: nothing.
 */
void sy_cache_capture(struct sy_cache_ctx *ctx, const struct sy_req *req,
    struct evbuffer *events);

/*
 * Stores a whole answer (body: canonical, status 200) of req when it may,
 * and hands it to the requests waiting for it.  ctx NULL: nothing.
 */
void sy_cache_store(struct sy_cache_ctx *ctx, const struct sy_req *req,
    struct evbuffer *body);

/*
 * Ends the request's part: lets requests still waiting for it go on to a
 * backend, leaves the cache's fields on req for its log line (result,
 * saved tokens and USD; a hit's usage becomes 0: nothing was spent), and
 * frees ctx.  ctx NULL: a bypass when req has a route.
 */
void sy_cache_end(struct sy_cache_ctx *ctx, struct sy_req *req);

/*
 * Appends the process-wide cache metrics (L1 size, evictions, Redis
 * errors, timeouts, reconnects, connections) in the Prometheus text
 * format; nothing when no cache was made.  Any thread.
 */
void sy_cache_prometheus(struct evbuffer *out);

#endif
