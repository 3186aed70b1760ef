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
