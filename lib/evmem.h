/* libevent's allocator: per-thread caches of the buffer sizes its evbuffers take and give back on every request. */
#ifndef SY_EVMEM_H
#define SY_EVMEM_H

#include <stddef.h>

/*
 * Makes libevent allocate through per-thread caches of freed blocks (up to
 * 8 KiB; larger blocks go to malloc as before).  Must be called before any
 * other libevent function; a no-op in a sanitizer build, whose allocator
 * must see every block.
 */
void sy_evmem_init(void);

/* The allocator itself, for tests: as malloc, realloc and free. */
void *sy_evmem_malloc(size_t n);
void *sy_evmem_realloc(void *p, size_t n);
void sy_evmem_free(void *p);

#endif
