/* The prompt cache's memory L1: a hash table of values in least-recently-used order, bounded in bytes, entries expiring, shared by the workers under one mutex held briefly. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "util.h"

struct entry {
	unsigned char key[SY_CACHE_KEY_LEN];
	struct sy_cache_value *v;
	uint64_t expires_ms;
	size_t charge;			/* bytes counted against the bound */
	struct entry *next;		/* in its bucket */
	struct entry *newer, *older;	/* in use order */
};

struct sy_cache_lru {
	pthread_mutex_t lock;
	struct entry **buckets;
	size_t nbuckets;		/* a power of two */
	size_t n;
	size_t bytes;
	size_t max_bytes;
	uint64_t evictions;
	struct entry *newest, *oldest;
};

struct sy_cache_lru *
sy_cache_lru_new(size_t max_bytes)
{
	struct sy_cache_lru *l = sy_xcalloc(1, sizeof *l);

	pthread_mutex_init(&l->lock, NULL);
	l->nbuckets = 1024;
	l->buckets = sy_xcalloc(l->nbuckets, sizeof *l->buckets);
	l->max_bytes = max_bytes;
	return l;
}

void
sy_cache_lru_free(struct sy_cache_lru *l)
{
	struct entry *e, *next;

	if (l == NULL)
		return;
	for (e = l->newest; e != NULL; e = next) {
		next = e->older;
		sy_cache_value_unref(e->v);
		free(e);
	}
	free(l->buckets);
	pthread_mutex_destroy(&l->lock);
	free(l);
}

/* The bucket of key: the key is a hash already. */
static size_t
bucket_of(const struct sy_cache_lru *l, const unsigned char *key)
{
	uint64_t h;

	memcpy(&h, key, sizeof h);
	return (size_t)(h & (l->nbuckets - 1));
}

/* Unlinks e from the use order. */
static void
order_unlink(struct sy_cache_lru *l, struct entry *e)
{
	if (e->newer != NULL)
		e->newer->older = e->older;
	else
		l->newest = e->older;
	if (e->older != NULL)
		e->older->newer = e->newer;
	else
		l->oldest = e->newer;
	e->newer = e->older = NULL;
}

/* Links e as the most recently used. */
static void
order_push(struct sy_cache_lru *l, struct entry *e)
{
	e->older = l->newest;
	e->newer = NULL;
	if (l->newest != NULL)
		l->newest->newer = e;
	l->newest = e;
	if (l->oldest == NULL)
		l->oldest = e;
}

/* The slot that points at the entry of key (or at NULL). */
static struct entry **
find_slot(struct sy_cache_lru *l, const unsigned char *key)
{
	struct entry **pe = &l->buckets[bucket_of(l, key)];

	while (*pe != NULL && memcmp((*pe)->key, key, SY_CACHE_KEY_LEN) != 0)
		pe = &(*pe)->next;
	return pe;
}

/* Removes the entry *pe points at, and frees it. */
static void
remove_at(struct sy_cache_lru *l, struct entry **pe)
{
	struct entry *e = *pe;

	*pe = e->next;
	order_unlink(l, e);
	l->n--;
	l->bytes -= e->charge;
	sy_cache_value_unref(e->v);
	free(e);
}

/* Doubles the buckets when entries outnumber them. */
static void
grow(struct sy_cache_lru *l)
{
	struct entry **old = l->buckets, *e, *next;
	size_t i, n = l->nbuckets, b;

	if (l->n < n)
		return;
	l->nbuckets = n * 2;
	l->buckets = sy_xcalloc(l->nbuckets, sizeof *l->buckets);
	for (i = 0; i < n; i++)
		for (e = old[i]; e != NULL; e = next) {
			next = e->next;
			b = bucket_of(l, e->key);
			e->next = l->buckets[b];
			l->buckets[b] = e;
		}
	free(old);
}

struct sy_cache_value *
sy_cache_lru_get(struct sy_cache_lru *l,
    const unsigned char key[SY_CACHE_KEY_LEN], uint64_t now_ms)
{
	struct sy_cache_value *v = NULL;
	struct entry **pe;

	pthread_mutex_lock(&l->lock);
	pe = find_slot(l, key);
	if (*pe != NULL && (*pe)->expires_ms <= now_ms)
		remove_at(l, pe);
	else if (*pe != NULL) {
		v = sy_cache_value_ref((*pe)->v);
		order_unlink(l, *pe);
		order_push(l, *pe);
	}
	pthread_mutex_unlock(&l->lock);
	return v;
}

void
sy_cache_lru_put(struct sy_cache_lru *l,
    const unsigned char key[SY_CACHE_KEY_LEN], struct sy_cache_value *v,
    uint64_t expires_ms)
{
	size_t charge = sizeof(struct entry) + sizeof *v + v->len + 1;
	struct entry **pe, *e;

	if (charge > l->max_bytes)
		return;
	e = sy_xcalloc(1, sizeof *e);
	memcpy(e->key, key, SY_CACHE_KEY_LEN);
	e->v = sy_cache_value_ref(v);
	e->expires_ms = expires_ms;
	e->charge = charge;
	pthread_mutex_lock(&l->lock);
	if (*(pe = find_slot(l, key)) != NULL)
		remove_at(l, pe);
	while (l->bytes + charge > l->max_bytes && l->oldest != NULL) {
		remove_at(l, find_slot(l, l->oldest->key));
		l->evictions++;
	}
	grow(l);
	pe = &l->buckets[bucket_of(l, key)];
	e->next = *pe;
	*pe = e;
	order_push(l, e);
	l->n++;
	l->bytes += charge;
	pthread_mutex_unlock(&l->lock);
}

void
sy_cache_lru_remove(struct sy_cache_lru *l,
    const unsigned char key[SY_CACHE_KEY_LEN])
{
	struct entry **pe;

	pthread_mutex_lock(&l->lock);
	if (*(pe = find_slot(l, key)) != NULL)
		remove_at(l, pe);
	pthread_mutex_unlock(&l->lock);
}

void
sy_cache_lru_stats(struct sy_cache_lru *l, struct sy_cache_lru_stats *st)
{
	pthread_mutex_lock(&l->lock);
	st->entries = l->n;
	st->bytes = l->bytes;
	st->evictions = l->evictions;
	pthread_mutex_unlock(&l->lock);
}
