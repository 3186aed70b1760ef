/* Counters of rate limits and budgets that hold across gateway instances: a request's counters are reserved together in one Redis round trip (a Lua script that checks them all, then adds to them all) and settled with the real usage after; in memory when there is no Redis, or each instance its share while Redis is away. */
#ifndef SY_COUNTERS_H
#define SY_COUNTERS_H

#include <stddef.h>
#include <stdint.h>

#include "tenants.h"

struct sy_redis;
struct event_base;

/* Counters of one request, at most. */
#define SY_MAX_COUNTERS 32

/* What a counter counts, for the headers that tell clients their limits. */
enum sy_counter_unit {
	SY_UNIT_REQUESTS,
	SY_UNIT_TOKENS,			/* tokens of any kind */
	SY_UNIT_MICRO_USD		/* a budget's spend */
};

/* One counter of a request: a window of a rate limit, or a budget's period. */
struct sy_counter {
	char key[200];			/* its name, Redis key included */
	enum sy_counter_unit unit;
	enum sy_limit_kind kind;	/* of a rate limit */
	int64_t limit;			/* what it may reach */
	int64_t soft;			/* a budget's warning mark; 0: none */
	int64_t amount;			/* what the request reserved */
	int64_t value;			/* the count with the reservation */
	unsigned ttl_s;			/* 0: kept (a total budget) */
	uint64_t reset_ms;		/* wall clock: the window's end; 0: never */
	const char *scope;		/* "key", "team", "route", "gateway" */
};

/* A request's counters, reserved together. */
struct sy_reservation {
	struct sy_counter c[SY_MAX_COUNTERS];
	size_t n;
	int local;			/* counted in this instance's memory */
	size_t refused;			/* the counter over its limit (when refused) */
};

/* What a reservation came to. */
enum sy_reserve_result {
	SY_RESERVE_ADMITTED,
	SY_RESERVE_REFUSED,		/* res->refused is over its limit */
	SY_RESERVE_UNAVAILABLE,		/* Redis away and the limits fail closed */
	SY_RESERVE_PENDING		/* Redis will tell: cb later */
};

/*
 * Adds to res the counters of limits (of scope and name: "key" and its
 * id, ...) at wall-clock now_ms, with what the request reserves: 1 request,
 * tokens (input and output estimates) and cost in micro-USD.  prefix
 * starts every Redis key ("sy:").  Counters beyond SY_MAX_COUNTERS are
 * left out.
 */
void sy_reservation_add(struct sy_reservation *res, const char *prefix,
    const char *scope, const char *name, const struct sy_quota *limits,
    uint64_t now_ms, int64_t input_tokens, int64_t output_tokens,
    int64_t micro_usd);

/* Told the result of a pending reservation (never SY_RESERVE_PENDING). */
typedef void (*sy_reserve_fn)(void *arg, enum sy_reserve_result result);

struct sy_reserve_op;

/*
 * Reserves every counter of res or none: through r (NULL: no Redis, in
 * memory), or when r cannot answer (not connected, or past its command
 * timeout) in memory with each limit divided by the gateway's instances
 * (share ≥ 1), unless fail_closed.  Returns the result, or
 * SY_RESERVE_PENDING with *op set: cb(arg, result) comes later unless
 * sy_reserve_cancel first.  res must live until then.
 */
enum sy_reserve_result sy_reserve(struct sy_redis *r,
    struct sy_reservation *res, int fail_closed, unsigned share,
    sy_reserve_fn cb, void *arg, struct sy_reserve_op **op);

/* Forgets a pending reservation (its counters may still be reserved). */
void sy_reserve_cancel(struct sy_reserve_op *op);

/*
 * Settles an admitted reservation with what the request really used:
 * each counter gets the difference between the real amount (tokens and
 * micro-USD as for sy_reservation_add; requests stay) and what it
 * reserved, without waiting.
 */
void sy_reservation_settle(struct sy_redis *r, struct sy_reservation *res,
    int64_t input_tokens, int64_t output_tokens, int64_t micro_usd);

/*
 * The gateway's instances seen through Redis lately (each instance's
 * heartbeat), at least 1; what fail-open limits are shared by when the
 * config does not say.
 */
unsigned sy_counters_instances(void);

/*
 * Starts the heartbeat of this instance (boot id) through r on base,
 * once a second; one worker does it.  Returns the timer's owner, freed
 * with sy_counters_heartbeat_stop.
 */
struct sy_heartbeat *sy_counters_heartbeat(struct event_base *base,
    struct sy_redis *r, const char *prefix, uint32_t boot_id);
void sy_counters_heartbeat_stop(struct sy_heartbeat *h);

/* What the limits said of a request, as /metrics counts it. */
enum sy_limit_outcome {
	SY_LIMIT_ADMITTED,		/* within every limit */
	SY_LIMIT_REFUSED,		/* over a rate limit: 429 */
	SY_LIMIT_SPENT,			/* over a budget: 429 */
	SY_LIMIT_IN_MEMORY,		/* Redis away: admitted on this
					   instance's share */
	SY_LIMIT_UNAVAILABLE,		/* Redis away, failing closed: 503 */
	SY_LIMIT_SOFT,			/* admitted past a budget's soft mark
					   (counted besides admitted) */
	SY_LIMIT_NOUTCOMES
};

/* Counts one request's outcome (any thread). */
void sy_limits_note(enum sy_limit_outcome o);

/* Appends switchyard_limit_decisions_total{result} to out (Prometheus text). */
struct evbuffer;
void sy_limits_prometheus(struct evbuffer *out);

/* ==== Usage of keys and teams, per day of UTC ==== */

/* What one key or team used. */
struct sy_usage_total {
	int64_t requests;
	int64_t input_tokens;
	int64_t output_tokens;
	int64_t micro_usd;
};

/* The names of struct sy_usage_total's fields, in order, as kept. */
extern const char *const sy_usage_fields[4];

/* How long a day's usage is kept (in Redis, and in memory). */
#define SY_USAGE_KEEP_DAYS 400

/*
 * Adds one finished request (in and out tokens, micro_usd) to the usage of
 * its key (key_id) and team (NULL: none) on the UTC day of now_ms: in
 * Redis through r (the hash {prefix}usage:YYYYMMDD, without waiting), or
 * in this process's memory when r is NULL.
 */
void sy_usage_count(struct sy_redis *r, const char *prefix, const char *key_id,
    const char *team, uint64_t now_ms, int64_t in, int64_t out,
    int64_t micro_usd);

/*
 * Calls fn with each field ("key:ID:requests", ...) and value that this
 * process's memory keeps for the UTC day (YYYYMMDD).
 */
void sy_usage_local(const char *day, void (*fn)(void *arg, const char *field,
    int64_t value), void *arg);

#endif
