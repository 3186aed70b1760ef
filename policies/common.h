/* Building blocks shared by the routing policies: parameter checks, a thread-local PRNG, weighted draws, lowest-score scans. */
#ifndef SY_POLICY_COMMON_H
#define SY_POLICY_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct sy_pool;
struct sy_req;
struct sy_endpoint;

/* ==== Parameters ==== */

/*
 * Checks that params (NULL counts as empty) is an object whose keys are all
 * in known (a NULL-terminated list, maybe empty).  Returns 0, or -1 with
 * *err malloc'd: "POLICY takes no parameters" or
 * "POLICY: unknown parameter "x"; known: a, b".
 */
int sy_params_check(const json_t *params, const char *policy,
    const char *const *known, char **err);

/*
 * Reads the integer parameter key into *out: def when absent, else a JSON
 * integer from min to max.  Returns 0, or -1 with *err malloc'd naming the
 * policy and the parameter.
 */
int sy_param_int(const json_t *params, const char *policy, const char *key,
    long long def, long long min, long long max, long long *out, char **err);

/* As sy_param_int for a number (integer or real) from min to max. */
int sy_param_number(const json_t *params, const char *policy, const char *key,
    double def, double min, double max, double *out, char **err);

/*
 * Reads the string parameter key into *out (borrowed from params, or def):
 * a non-empty string of at most maxlen bytes.  Returns 0 or -1 with *err.
 */
int sy_param_string(const json_t *params, const char *policy, const char *key,
    const char *def, size_t maxlen, const char **out, char **err);

/* Sets *err to a malloc'd printf-style message; returns NULL (for create). */
void *sy_policy_fail(char **err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ==== Session keys ==== */

/*
 * The session key of req: the value of header (NULL: none) when it is
 * non-empty, else the body's "user" when it is a non-empty string; sets
 * *len.  Returns it (borrowed from req), or NULL when req has neither.
 */
const char *sy_policy_session_key(const struct sy_req *req,
    const char *header, size_t *len);

/* ==== Weighted random draws ==== */

/*
 * A pool's static weights as an alias table (Walker, Vose), built at
 * create: a draw is one slot at random, then the slot's endpoint or its
 * alias; the same two reads for 4 endpoints as for 1,000.
 */
struct sy_wdraw_slot {
	uint64_t keep;			/* below this (of total): the slot's own */
	uint32_t alias;			/* else this endpoint */
};

struct sy_wdraw {
	struct sy_wdraw_slot *slot;	/* one per endpoint */
	size_t n;
	uint64_t total;
};

/* Builds d from pool's endpoints and weights.  Returns 0 or -1 with *err. */
int sy_wdraw_init(struct sy_wdraw *d, const struct sy_pool *pool, char **err);

/* Frees what d holds. */
void sy_wdraw_free(struct sy_wdraw *d);

/*
 * Draws a usable endpoint of pool other than except (NULL: none excluded),
 * with probability proportional to its weight among those; NULL when there
 * is none.  One draw when the drawn endpoint is usable, else one pass over
 * the pool.
 */
struct sy_endpoint *sy_wdraw_pick(const struct sy_wdraw *d,
    const struct sy_pool *pool, const struct sy_req *req,
    const struct sy_endpoint *except);

/* ==== Lowest-score scans ==== */

/* A score of ep (lower is better), already divided by its weight. */
typedef double (*sy_score_fn)(const struct sy_endpoint *ep, void *arg);

/*
 * The usable endpoint of pool with the lowest score(ep, arg), scanning from
 * index start cyclically, so that of equal scores the first from start
 * wins; NULL when none is usable.
 */
struct sy_endpoint *sy_policy_lowest(const struct sy_pool *pool,
    const struct sy_req *req, size_t start, sy_score_fn score, void *arg);

/* in_flight / weight: the gateway's own live load of ep. */
double sy_score_in_flight(const struct sy_endpoint *ep, void *arg);

#endif
