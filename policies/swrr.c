/* Smooth weighted round robin (as nginx does it), precomputed as a schedule and walked lock-free. */
#include <stdlib.h>

#include "common.h"
#include "config.h"
#include "policy.h"
#include "swrr.h"

/* Pools up to this size remember, while walking, which endpoints they found unusable. */
#define SWRR_BITMAP 512

/* Greatest common divisor; gcd(0, b) is b. */
static uint64_t
gcd(uint64_t a, uint64_t b)
{
	uint64_t t;

	while (b != 0) {
		t = a % b;
		a = b;
		b = t;
	}
	return a;
}

int
sy_swrr_init(struct sy_swrr *s, const struct sy_pool *pool, char **err)
{
	size_t n = pool->nendpoints, i, k, best;
	uint64_t *w = NULL, g = 0, total = 0;
	int64_t *cur = NULL;

	s->seq = NULL;
	s->len = 0;
	s->nendpoints = n;
	s->nweighted = 0;
	atomic_init(&s->next, 0);
	if (n == 0)
		return 0;
	if ((w = calloc(n, sizeof *w)) == NULL ||
	    (cur = calloc(n, sizeof *cur)) == NULL)
		goto oom;
	for (i = 0; i < n; i++)
		g = gcd(g, pool->endpoints[i]->weight);
	for (i = 0; g != 0 && i < n; i++) {
		w[i] = pool->endpoints[i]->weight / g;
		total += w[i];
		s->nweighted += w[i] != 0;
	}
	if (total > SY_SWRR_MAX) {
		uint64_t scaled = 0;

		for (i = 0; i < n; i++) {
			if (w[i] == 0)
				continue;
			w[i] = w[i] * SY_SWRR_MAX / total;
			if (w[i] == 0)
				w[i] = 1;
			scaled += w[i];
		}
		total = scaled;
	}
	if (total != 0 && (s->seq = calloc(total, sizeof *s->seq)) == NULL)
		goto oom;
	/* nginx: every endpoint gains its weight, the richest gets the turn
	   (the first of equals) and pays the total. */
	for (k = 0; k < total; k++) {
		best = n;
		for (i = 0; i < n; i++) {
			if (w[i] == 0)
				continue;
			cur[i] += (int64_t)w[i];
			if (best == n || cur[i] > cur[best])
				best = i;
		}
		cur[best] -= (int64_t)total;
		s->seq[k] = (uint32_t)best;
	}
	s->len = total;
	free(w);
	free(cur);
	return 0;
oom:
	free(w);
	free(cur);
	sy_policy_fail(err, "out of memory");
	return -1;
}

void
sy_swrr_free(struct sy_swrr *s)
{
	free(s->seq);
	s->seq = NULL;
}

struct sy_swrr *
sy_swrr_create(const json_t *params, const char *policy,
    const struct sy_pool *pool, char **err)
{
	static const char *const no_params[] = { NULL };
	struct sy_swrr *s;

	if (sy_params_check(params, policy, no_params, err) == -1)
		return NULL;
	if ((s = malloc(sizeof *s)) == NULL)
		return sy_policy_fail(err, "out of memory");
	if (sy_swrr_init(s, pool, err) == -1) {
		free(s);
		return NULL;
	}
	return s;
}

void
sy_swrr_destroy(void *state)
{
	sy_swrr_free(state);
	free(state);
}

size_t
sy_swrr_next(struct sy_swrr *s)
{
	if (s->len == 0)
		return 0;
	return s->seq[atomic_fetch_add_explicit(&s->next, 1,
	    memory_order_relaxed) % s->len];
}

struct sy_endpoint *
sy_swrr_pick(struct sy_swrr *s, const struct sy_pool *pool,
    const struct sy_req *req, int *skipped)
{
	uint64_t bad[SWRR_BITMAP / 64] = { 0 };
	size_t start, k, idx, nbad = 0;
	int track = s->nendpoints <= SWRR_BITMAP;
	struct sy_endpoint *ep;

	*skipped = 0;
	if (s->len == 0 || pool->nendpoints != s->nendpoints)
		return NULL;
	start = atomic_fetch_add_explicit(&s->next, 1, memory_order_relaxed) %
	    s->len;
	for (k = 0; k < s->len; k++) {
		idx = s->seq[(start + k) % s->len];
		if (track && (bad[idx / 64] >> (idx % 64) & 1))
			continue;
		ep = pool->endpoints[idx];
		if (sy_endpoint_usable(ep, req)) {
			*skipped = k != 0;
			return ep;
		}
		if (!track)
			continue;
		/* Stop as soon as every endpoint of the schedule let us down. */
		bad[idx / 64] |= (uint64_t)1 << (idx % 64);
		if (++nbad == s->nweighted)
			break;
	}
	return NULL;
}
