/* Building blocks shared by the routing policies: parameter checks, a thread-local PRNG, weighted draws, lowest-score scans. */
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "config.h"
#include "http1.h"
#include "policy.h"
#include "req.h"
#include "util.h"

/* ==== Parameters ==== */

void *
sy_policy_fail(char **err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(err, fmt, ap) == -1)
		*err = sy_xstrdup("out of memory");
	va_end(ap);
	return NULL;
}

int
sy_params_check(const json_t *params, const char *policy,
    const char *const *known, char **err)
{
	const char *key;
	json_t *v;
	char names[256];
	size_t i, len;

	if (params == NULL)
		return 0;
	if (!json_is_object(params)) {
		sy_policy_fail(err, "%s: parameters must be an object", policy);
		return -1;
	}
	json_object_foreach((json_t *)params, key, v) {
		for (i = 0; known[i] != NULL; i++)
			if (strcmp(known[i], key) == 0)
				break;
		if (known[i] != NULL)
			continue;
		if (known[0] == NULL) {
			sy_policy_fail(err, "%s takes no parameters (got \"%s\")",
			    policy, key);
			return -1;
		}
		names[0] = '\0';
		for (i = 0, len = 0; known[i] != NULL && len < sizeof names; i++)
			len += (size_t)snprintf(names + len, sizeof names - len,
			    "%s%s", i ? ", " : "", known[i]);
		sy_policy_fail(err, "%s: unknown parameter \"%s\"; known: %s",
		    policy, key, names);
		return -1;
	}
	return 0;
}

int
sy_param_int(const json_t *params, const char *policy, const char *key,
    long long def, long long min, long long max, long long *out, char **err)
{
	json_t *v = params != NULL ? json_object_get(params, key) : NULL;

	if (v == NULL) {
		*out = def;
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < min ||
	    json_integer_value(v) > max) {
		sy_policy_fail(err, "%s: parameter \"%s\" must be an integer "
		    "from %lld to %lld", policy, key, min, max);
		return -1;
	}
	*out = json_integer_value(v);
	return 0;
}

int
sy_param_number(const json_t *params, const char *policy, const char *key,
    double def, double min, double max, double *out, char **err)
{
	json_t *v = params != NULL ? json_object_get(params, key) : NULL;

	if (v == NULL) {
		*out = def;
		return 0;
	}
	if (!json_is_number(v) || !(json_number_value(v) >= min &&
	    json_number_value(v) <= max)) {
		sy_policy_fail(err, "%s: parameter \"%s\" must be a number "
		    "from %g to %g", policy, key, min, max);
		return -1;
	}
	*out = json_number_value(v);
	return 0;
}

int
sy_param_string(const json_t *params, const char *policy, const char *key,
    const char *def, size_t maxlen, const char **out, char **err)
{
	json_t *v = params != NULL ? json_object_get(params, key) : NULL;

	if (v == NULL) {
		*out = def;
		return 0;
	}
	if (!json_is_string(v) || json_string_length(v) == 0 ||
	    json_string_length(v) > maxlen ||
	    strlen(json_string_value(v)) != json_string_length(v)) {
		sy_policy_fail(err, "%s: parameter \"%s\" must be a non-empty "
		    "string of at most %zu bytes", policy, key, maxlen);
		return -1;
	}
	*out = json_string_value(v);
	return 0;
}

/* ==== Session keys ==== */

const char *
sy_policy_session_key(const struct sy_req *req, const char *header,
    size_t *len)
{
	const char *key = NULL;
	json_t *user;

	if (header != NULL && req->head != NULL)
		key = sy_http1_header(req->head, header);
	if (key != NULL && *key != '\0') {
		*len = strlen(key);
		return key;
	}
	user = json_object_get(sy_req_body(req), "user");
	if (json_is_string(user) && json_string_length(user) > 0) {
		*len = json_string_length(user);
		return json_string_value(user);
	}
	return NULL;
}

/* ==== Weighted random draws ==== */

int
sy_wdraw_init(struct sy_wdraw *d, const struct sy_pool *pool, char **err)
{
	uint64_t *scaled;
	size_t *small, *large, ns = 0, nl = 0, i, l, g;

	d->n = pool->nendpoints;
	d->total = 0;
	d->slot = NULL;
	if (d->n == 0)
		return 0;
	d->slot = calloc(d->n, sizeof *d->slot);
	scaled = calloc(d->n, sizeof *scaled);
	small = calloc(d->n, sizeof *small);
	large = calloc(d->n, sizeof *large);
	if (d->slot == NULL || scaled == NULL || small == NULL ||
	    large == NULL) {
		free(scaled);
		free(small);
		free(large);
		sy_wdraw_free(d);
		sy_policy_fail(err, "out of memory");
		return -1;
	}
	for (i = 0; i < d->n; i++)
		d->total += pool->endpoints[i]->weight;
	/* Each slot holds total units: an endpoint's share is weight × n. */
	for (i = 0; i < d->n; i++) {
		scaled[i] = (uint64_t)pool->endpoints[i]->weight * d->n;
		if (scaled[i] < d->total)
			small[ns++] = i;
		else
			large[nl++] = i;
	}
	while (ns > 0 && nl > 0) {
		l = small[--ns];
		g = large[nl - 1];
		d->slot[l].keep = scaled[l];
		d->slot[l].alias = (uint32_t)g;
		scaled[g] -= d->total - scaled[l];
		if (scaled[g] < d->total) {
			nl--;
			small[ns++] = g;
		}
	}
	/* What is left fills its own slot (rounding leaves no other). */
	while (nl > 0) {
		g = large[--nl];
		d->slot[g].keep = d->total;
		d->slot[g].alias = (uint32_t)g;
	}
	while (ns > 0) {
		l = small[--ns];
		d->slot[l].keep = d->total;
		d->slot[l].alias = (uint32_t)l;
	}
	free(scaled);
	free(small);
	free(large);
	return 0;
}

void
sy_wdraw_free(struct sy_wdraw *d)
{
	free(d->slot);
	d->slot = NULL;
}

struct sy_endpoint *
sy_wdraw_pick(const struct sy_wdraw *d, const struct sy_pool *pool,
    const struct sy_req *req, const struct sy_endpoint *except)
{
	const struct sy_wdraw_slot *s;
	struct sy_endpoint *ep, *choice = NULL;
	uint64_t seen = 0;
	size_t i;

	if (d->total == 0 || pool->nendpoints != d->n)
		return NULL;
	/* Fast path: a slot at random, its endpoint or its alias. */
	s = &d->slot[sy_rand64() % d->n];
	ep = pool->endpoints[sy_rand64() % d->total < s->keep ?
	    (size_t)(s - d->slot) : s->alias];
	if (ep != except && sy_endpoint_usable(ep, req))
		return ep;
	/* Slow path: a weighted reservoir over the usable ones, which keeps
	   the draw proportional to weight among them. */
	for (i = 0; i < pool->nendpoints; i++) {
		ep = pool->endpoints[i];
		if (ep == except || !sy_endpoint_usable(ep, req))
			continue;
		seen += ep->weight;
		if (sy_rand64() % seen < ep->weight)
			choice = ep;
	}
	return choice;
}

/* ==== Lowest-score scans ==== */

struct sy_endpoint *
sy_policy_lowest(const struct sy_pool *pool, const struct sy_req *req,
    size_t start, sy_score_fn score, void *arg)
{
	struct sy_endpoint *ep, *best = NULL;
	double s, best_score = INFINITY;
	size_t i, n = pool->nendpoints;

	for (i = 0; i < n; i++) {
		ep = pool->endpoints[(start + i) % n];
		if (!sy_endpoint_usable(ep, req))
			continue;
		s = score(ep, arg);
		if (best == NULL || s < best_score) {
			best = ep;
			best_score = s;
		}
	}
	return best;
}

double
sy_score_in_flight(const struct sy_endpoint *ep, void *arg)
{
	return (double)atomic_load_explicit(&ep->stats->in_flight,
	    memory_order_relaxed) / ep->weight;
}
