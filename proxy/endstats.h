/* Endpoint statistics: per-endpoint counters shared by every worker and kept across reloads by the endpoint's name. */
#ifndef SY_ENDSTATS_H
#define SY_ENDSTATS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Learning states a policy may keep in one endpoint's stats, and their size. */
#define SY_ENDSTATS_SLOTS	4
#define SY_ENDSTATS_SLOT_BYTES	32

/* A policy's learning state about one endpoint (see sy_endstats_slot). */
struct sy_endstats_slot {
	_Atomic(const void *) owner;	/* the policy it belongs to, or NULL */
	_Alignas(16) unsigned char data[SY_ENDSTATS_SLOT_BYTES];
};

struct sy_endpoint_stats {
	char *name;
	atomic_int refs;
	atomic_long in_flight;		/* requests in flight, all workers */

	/* Busy time, the time with a request in flight, over every worker
	   (sy_endstats_enter and _leave keep it, under busy_lock). */
	atomic_flag busy_lock;
	uint64_t busy_since_us;		/* when in_flight last left 0 */
	uint64_t busy_total_us;		/* busy time before that */

	/* Load read from the endpoint's own /metrics by the probe; -1
	   while unknown.  kv_permille is KV-cache usage × 1000. */
	atomic_long scraped_running;
	atomic_long scraped_waiting;
	atomic_int scraped_kv_permille;
	atomic_long scraped_kv_tokens;	/* KV-cache capacity in tokens */
	atomic_ullong scraped_at_us;	/* monotonic µs of the last scrape, 0: never */

	/* Health: active checks and passive outlier ejection. */
	atomic_int unhealthy;		/* active checks say it is down */
	atomic_ullong ejected_until_us;	/* monotonic µs; 0 or past: not ejected */
	atomic_int consecutive_failures;
	atomic_int ejections;		/* ejections in a row (cooldown grows) */
	atomic_ullong limited_until_us;	/* answered 429 with Retry-After until */
	atomic_ullong window_start_us;	/* error-rate window of the ejection */
	atomic_uint window_requests;
	atomic_uint window_failures;

	/* What learning policies keep of this endpoint, opaque here. */
	struct sy_endstats_slot slots[SY_ENDSTATS_SLOTS];
};

/*
 * The stats of the endpoint called name, with one more reference: those
 * a snapshot before had under that name, or fresh ones (nothing in
 * flight, no scrape, healthy).  Thread safe.
 */
struct sy_endpoint_stats *sy_endstats_acquire(const char *name);

/* Drops a reference to st, freeing it when no snapshot uses it; thread safe. */
void sy_endstats_release(struct sy_endpoint_stats *st);

/* Gives st (any memory) the state of fresh stats called name (borrowed). */
void sy_endstats_init(struct sy_endpoint_stats *st, const char *name);

/*
 * Takes one of st's in-flight slots at now_us (monotonic µs), starting
 * its busy time when none was taken.  Returns the slots taken before.
 * Thread safe.
 */
long sy_endstats_enter(struct sy_endpoint_stats *st, uint64_t now_us);

/* Gives back one of st's in-flight slots at now_us; thread safe. */
void sy_endstats_leave(struct sy_endpoint_stats *st, uint64_t now_us);

/*
 * µs st has had a request in flight, since its stats were made, up to
 * now_us: the union over every worker's requests.  Thread safe.
 */
uint64_t sy_endstats_busy_us(struct sy_endpoint_stats *st, uint64_t now_us);

/*
 * The learning state of owner (a policy's address) in st: size bytes
 * (at most SY_ENDSTATS_SLOT_BYTES, 16-byte aligned), zero until owner
 * writes it, kept as long as st (across reloads).  Returns NULL when size
 * is too large or every slot belongs to another owner.  Lock-free.
 */
void *sy_endstats_slot(struct sy_endpoint_stats *st, const void *owner,
    size_t size);

#endif
