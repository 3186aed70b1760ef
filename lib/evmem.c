/* libevent's allocator: per-thread caches of the buffer sizes its evbuffers take and give back on every request. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "evmem.h"

/*
 * An evbuffer allocates a chain of 1 KiB or more (a power of two) for each
 * read and each piece added to an empty buffer, and frees it when it is
 * drained: a few per request.  Blocks of 2 KiB and more are past glibc's
 * per-thread cache, so each one takes the allocator's slow path.  Here a
 * block of at most 8 KiB is rounded up to one of four sizes and, when freed,
 * kept on its thread's list of that size for the next allocation.
 */
#define CLASSES		5		/* 512 B, 1, 2, 4, 8 KiB */
#define SMALLEST	512
#define KEPT_MAX	64		/* free blocks kept per thread and size */

/* Before each block: its usable size (16 bytes keep malloc's alignment). */
struct hdr {
	size_t size;
	size_t pad;
};

struct cache {
	struct hdr *free[CLASSES];	/* singly linked through hdr.pad */
	unsigned n[CLASSES];
};

static _Thread_local struct cache cache;
static _Thread_local int cache_registered;
static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

/* The class of a block of n usable bytes, or -1 past the largest. */
static int
class_of(size_t n)
{
	int c = 0;
	size_t size = SMALLEST;

	while (size < n) {
		size <<= 1;
		if (++c == CLASSES)
			return -1;
	}
	return c;
}

/* Frees a thread's kept blocks when the thread ends. */
static void
cache_flush(void *arg)
{
	struct cache *k = arg;
	struct hdr *h;
	int c;

	for (c = 0; c < CLASSES; c++) {
		while ((h = k->free[c]) != NULL) {
			k->free[c] = (struct hdr *)h->pad;
			free(h);
		}
		k->n[c] = 0;
	}
}

static void
cache_key_create(void)
{
	pthread_key_create(&cache_key, cache_flush);
}

void *
sy_evmem_malloc(size_t n)
{
	int c = class_of(n);
	size_t size = c < 0 ? n : (size_t)SMALLEST << c;
	struct hdr *h;

	if (c >= 0 && (h = cache.free[c]) != NULL) {
		cache.free[c] = (struct hdr *)h->pad;
		cache.n[c]--;
		return h + 1;
	}
	if (size > SIZE_MAX - sizeof *h || (h = malloc(sizeof *h + size)) == NULL)
		return NULL;
	h->size = size;
	return h + 1;
}

void
sy_evmem_free(void *p)
{
	struct hdr *h;
	int c;

	if (p == NULL)
		return;
	h = (struct hdr *)p - 1;
	c = class_of(h->size);
	if (c < 0 || ((size_t)SMALLEST << c) != h->size || cache.n[c] >= KEPT_MAX) {
		free(h);
		return;
	}
	if (!cache_registered) {
		/* The thread's blocks are freed when it ends. */
		pthread_once(&cache_once, cache_key_create);
		pthread_setspecific(cache_key, &cache);
		cache_registered = 1;
	}
	h->pad = (size_t)cache.free[c];
	cache.free[c] = h;
	cache.n[c]++;
}

void *
sy_evmem_realloc(void *p, size_t n)
{
	struct hdr *h;
	void *q;

	if (p == NULL)
		return sy_evmem_malloc(n);
	h = (struct hdr *)p - 1;
	if (n <= h->size)
		return p;
	if ((q = sy_evmem_malloc(n)) == NULL)
		return NULL;
	memcpy(q, p, h->size);
	sy_evmem_free(p);
	return q;
}

void
sy_evmem_init(void)
{
#if !defined(__SANITIZE_ADDRESS__)
	event_set_mem_functions(sy_evmem_malloc, sy_evmem_realloc,
	    sy_evmem_free);
#endif
}
