/* Endpoint statistics: a table of per-endpoint counters shared by name across snapshots, with slots for what policies learn. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "endstats.h"
#include "util.h"

static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sy_endpoint_stats **stats_table;
static size_t stats_n;
static size_t stats_cap;

void
sy_endstats_init(struct sy_endpoint_stats *st, const char *name)
{
	size_t i;

	memset(st, 0, sizeof *st);
	st->name = (char *)name;
	atomic_init(&st->refs, 1);
	atomic_init(&st->in_flight, 0);
	atomic_flag_clear(&st->busy_lock);
	atomic_init(&st->scraped_running, -1);
	atomic_init(&st->scraped_waiting, -1);
	atomic_init(&st->scraped_kv_permille, -1);
	atomic_init(&st->scraped_kv_tokens, -1);
	atomic_init(&st->scraped_at_us, 0);
	atomic_init(&st->unhealthy, 0);
	atomic_init(&st->ejected_until_us, 0);
	atomic_init(&st->consecutive_failures, 0);
	atomic_init(&st->ejections, 0);
	atomic_init(&st->limited_until_us, 0);
	atomic_init(&st->window_start_us, 0);
	atomic_init(&st->window_requests, 0);
	atomic_init(&st->window_failures, 0);
	for (i = 0; i < SY_ENDSTATS_SLOTS; i++)
		atomic_init(&st->slots[i].owner, NULL);
}

struct sy_endpoint_stats *
sy_endstats_acquire(const char *name)
{
	struct sy_endpoint_stats *st;
	size_t i;

	pthread_mutex_lock(&stats_lock);
	for (i = 0; i < stats_n; i++) {
		st = stats_table[i];
		if (strcmp(st->name, name) == 0) {
			atomic_fetch_add(&st->refs, 1);
			pthread_mutex_unlock(&stats_lock);
			return st;
		}
	}
	st = sy_xmalloc(sizeof *st);
	sy_endstats_init(st, NULL);
	st->name = sy_xstrdup(name);
	if (stats_n == stats_cap) {
		stats_cap = stats_cap ? stats_cap * 2 : 16;
		if ((stats_table = reallocarray(stats_table, stats_cap,
		    sizeof *stats_table)) == NULL)
			abort();
	}
	stats_table[stats_n++] = st;
	pthread_mutex_unlock(&stats_lock);
	return st;
}

void
sy_endstats_release(struct sy_endpoint_stats *st)
{
	size_t i;

	pthread_mutex_lock(&stats_lock);
	if (atomic_fetch_sub(&st->refs, 1) == 1) {
		for (i = 0; i < stats_n; i++) {
			if (stats_table[i] == st) {
				stats_table[i] = stats_table[--stats_n];
				break;
			}
		}
		if (stats_n == 0) {
			free(stats_table);
			stats_table = NULL;
			stats_cap = 0;
		}
		free(st->name);
		free(st);
	}
	pthread_mutex_unlock(&stats_lock);
}

/* Holds st's busy lock: a few instructions under it, never a call. */
static void
busy_lock(struct sy_endpoint_stats *st)
{
	while (atomic_flag_test_and_set_explicit(&st->busy_lock,
	    memory_order_acquire))
		;
}

static void
busy_unlock(struct sy_endpoint_stats *st)
{
	atomic_flag_clear_explicit(&st->busy_lock, memory_order_release);
}

long
sy_endstats_enter(struct sy_endpoint_stats *st, uint64_t now_us)
{
	long before;

	busy_lock(st);
	before = atomic_fetch_add(&st->in_flight, 1);
	if (before == 0)
		st->busy_since_us = now_us;
	busy_unlock(st);
	return before;
}

void
sy_endstats_leave(struct sy_endpoint_stats *st, uint64_t now_us)
{
	busy_lock(st);
	if (atomic_fetch_sub(&st->in_flight, 1) == 1 &&
	    now_us > st->busy_since_us)
		st->busy_total_us += now_us - st->busy_since_us;
	busy_unlock(st);
}

uint64_t
sy_endstats_busy_us(struct sy_endpoint_stats *st, uint64_t now_us)
{
	uint64_t busy;

	busy_lock(st);
	busy = st->busy_total_us;
	if (atomic_load(&st->in_flight) > 0 && now_us > st->busy_since_us)
		busy += now_us - st->busy_since_us;
	busy_unlock(st);
	return busy;
}

void *
sy_endstats_slot(struct sy_endpoint_stats *st, const void *owner,
    size_t size)
{
	const void *none;
	size_t i;

	if (size > SY_ENDSTATS_SLOT_BYTES)
		return NULL;
	for (i = 0; i < SY_ENDSTATS_SLOTS; i++)
		if (atomic_load(&st->slots[i].owner) == owner)
			return st->slots[i].data;
	for (i = 0; i < SY_ENDSTATS_SLOTS; i++) {
		none = NULL;
		if (atomic_compare_exchange_strong(&st->slots[i].owner, &none,
		    owner) || none == owner)
			return st->slots[i].data;
	}
	return NULL;
}
