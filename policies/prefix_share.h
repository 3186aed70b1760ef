/* The prefix indexes of prefix_aware pools, process-wide: their registry, their counters in /metrics, and the placements they share with other gateway instances through a Redis stream. */
#ifndef SY_PREFIX_SHARE_H
#define SY_PREFIX_SHARE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "prefix_index.h"

struct evbuffer;
struct event_base;
struct sy_redis;
struct sy_endpoint;

/* The Redis stream placements go through, and the entries it keeps. */
#define SY_PREFIX_STREAM	"sy:prefix:placements"
#define SY_PREFIX_STREAM_MAX	10000

/* Counters of one endpoint of a pool's index, for /metrics. */
struct sy_prefix_counts {
	atomic_ullong predicted;	/* prompt tokens the index said were cached */
	atomic_ullong reported;		/* prompt tokens the engine said were */
	atomic_ullong evicted;		/* blocks evicted on its reports */
	atomic_ullong applied;		/* blocks placed by other instances */
};

/* One pool's index as the registry knows it. */
struct sy_prefix_pool {
	char *key;			/* "route/model" (model "*": a wildcard pool) */
	char *route;
	char *model;
	size_t n;
	char **names;			/* endpoint names, owned */
	struct sy_prefix_set *sets;	/* borrowed from the policy */
	struct sy_prefix_counts *counts;	/* n, owned */
	size_t block_chars;		/* of its chains */
	int share;			/* publishes and applies placements */
	uint64_t generation;		/* newer pools of a key win in /metrics */
	struct sy_prefix_pool *next;
};

/*
 * Registers the index of a pool (route and model: NULL for a wildcard
 * pool) of chains of block_chars bytes, whose endpoints eps[0..n) hold
 * sets[0..n) (borrowed until sy_prefix_pool_leave).  Each set, new, is
 * first given the blocks the newest registered pool of the same route,
 * model and block_chars holds for the endpoint of the same name (a
 * reload keeps the index).  share: publish its placements and apply
 * those of other instances.  Returns the registration.  Thread safe.
 */
struct sy_prefix_pool *sy_prefix_pool_join(const char *route,
    const char *model, size_t block_chars, struct sy_endpoint *const *eps,
    struct sy_prefix_set *sets, size_t n, int share);

/* Unregisters p and frees it; thread safe. */
void sy_prefix_pool_leave(struct sy_prefix_pool *p);

/*
 * Queues the placement of hashes[0..n) on endpoint ep of p for other
 * instances (copied; nothing when p does not share or no bus runs; the
 * oldest queued placement is dropped beyond the bound).  Thread safe.
 */
void sy_prefix_pool_publish(struct sy_prefix_pool *p, size_t ep,
    const uint64_t *hashes, size_t n);

/* A connection of the registry to Redis, run on one worker. */
struct sy_prefix_bus;

/*
 * Starts the bus on base with the worker's Redis connection r (borrowed;
 * NULL: no bus): every few milliseconds it sends the queued placements
 * (XADD, the stream capped at SY_PREFIX_STREAM_MAX) and, while a pool
 * that shares is registered, reads those other instances added (XREAD
 * from the oldest kept), applying them to the registered pools of their
 * key.  instance tells its own entries apart.
 */
struct sy_prefix_bus *sy_prefix_bus_start(struct event_base *base,
    struct sy_redis *r, uint64_t instance);

/* Stops and frees the bus (NULL: nothing). */
void sy_prefix_bus_stop(struct sy_prefix_bus *b);

/*
 * Appends the registry's families to out: per route, model and endpoint,
 * predicted and reported cached tokens, blocks evicted on reports and
 * applied from other instances, blocks held and the index's bytes.
 */
void sy_prefix_prometheus(struct evbuffer *out);

#endif
