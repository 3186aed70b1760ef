/* Smooth weighted round robin (as nginx does it), precomputed as a schedule and walked lock-free. */
#ifndef SY_SWRR_H
#define SY_SWRR_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct sy_pool;
struct sy_req;
struct sy_endpoint;

/* Longest schedule; longer ones are scaled down to about this length. */
#define SY_SWRR_MAX 4096

/*
 * The turns of one SWRR cycle over a pool's static weights: seq[k] is the
 * index in the pool of the endpoint whose turn k is.  Shared by every
 * worker; the position is one atomic counter.
 */
struct sy_swrr {
	uint32_t *seq;
	size_t len;			/* 0 when no endpoint has a weight */
	size_t nendpoints;		/* pool->nendpoints at build */
	size_t nweighted;		/* endpoints with a weight */
	atomic_ulong next;
};

/*
 * Builds the schedule of pool: weights divided by their greatest common
 * divisor, scaled down when they add up to more than SY_SWRR_MAX (every
 * endpoint with a weight keeps at least one turn), then nginx's smooth
 * weighted round robin run for one cycle.  Returns 0 or -1 with *err.
 */
int sy_swrr_init(struct sy_swrr *s, const struct sy_pool *pool, char **err);

/* Frees what s holds. */
void sy_swrr_free(struct sy_swrr *s);

/*
 * The whole state of a policy that takes no parameters and keeps only a
 * schedule (weighted, least_outstanding): checks that params is empty for
 * policy, then builds a malloc'd schedule of pool.  NULL with *err on error.
 */
struct sy_swrr *sy_swrr_create(const json_t *params, const char *policy,
    const struct sy_pool *pool, char **err);

/* Frees a state made by sy_swrr_create. */
void sy_swrr_destroy(void *state);

/* Takes the next turn: the index in the pool of its endpoint (0 when empty). */
size_t sy_swrr_next(struct sy_swrr *s);

/*
 * Takes the next turn and returns its endpoint when usable, else walks the
 * schedule forward to the first usable one (*skipped set to 1); NULL when
 * none is usable.
 */
struct sy_endpoint *sy_swrr_pick(struct sy_swrr *s, const struct sy_pool *pool,
    const struct sy_req *req, int *skipped);

#endif
