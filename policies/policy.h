/* Plug points for policies: routing (pick an endpoint) and model selection (pick a model), with their registry. */
#ifndef SY_POLICY_H
#define SY_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct sy_req;
struct sy_pool;
struct sy_route;
struct sy_endpoint;

/* What happened to a request sent to an endpoint, for policies that learn. */
struct sy_outcome {
	int status;			/* HTTP status, 0 on a transport failure */
	uint64_t latency_us;		/* total upstream time */
	uint64_t ttft_us;		/* first byte, 0 when unknown */
};

/* A routing policy: picks one endpoint of a pool for a request. */
struct sy_route_policy {
	const char *name;
	/*
	 * Called once per pool at config load with the route's policy
	 * parameters (an object).  Returns the state (NULL is a valid state
	 * only when the policy keeps none: then *err stays NULL), or NULL
	 * with *err malloc'd.
	 */
	void *(*create)(const json_t *params, const struct sy_pool *pool,
	    char **err);
	/*
	 * Picks an endpoint of pool that can take req (not at its
	 * max_concurrency, weight > 0), or NULL when none can.  Sets *reason
	 * to a static word for the access log.  Called on any worker thread.
	 */
	struct sy_endpoint *(*pick)(void *state, const struct sy_pool *pool,
	    const struct sy_req *req, const char **reason);
	/* Told the outcome of each request it picked for; may be NULL. */
	void (*observe)(void *state, struct sy_endpoint *ep,
	    const struct sy_outcome *outcome);
	/* Frees the state; may be NULL. */
	void (*destroy)(void *state);
};

/* A model's finished answer, for a selection policy that checks answers. */
struct sy_answer {
	int status;			/* HTTP status; 0 when the try failed
					   without one (refused, reset, timeout) */
	int error;			/* an error status, a failed try, an
					   error event or a cut stream */
	const char *finish_reason;	/* the first choice's, NULL when none */
	const char *text;		/* the first choice's text ("" when none) */
	size_t len;
};

/*
 * A model-selection policy: picks the served model that answers a request.
 * A policy's create may start *err with the path of the offending
 * parameter, relative to the policy's object and beginning with '.' or
 * '[' (".rules[2].model: ..."): the config loader reports it there.
 */
struct sy_select_policy {
	const char *name;
	/* Called once per route at config load; as sy_route_policy.create. */
	void *(*create)(const json_t *params, const struct sy_route *route,
	    char **err);
	/*
	 * Returns the served model for req (a string owned by the config;
	 * NULL on a wildcard route means the client's name unchanged) and
	 * sets *reason to a word for the access log (static, or owned by
	 * the state).  Called on any worker thread.
	 */
	const char *(*select)(void *state, const struct sy_route *route,
	    const struct sy_req *req, const char **reason);
	/*
	 * Optional: told how each try on a model of the route went (the
	 * gateway's own TTFT and latency).  Called on any worker thread.
	 */
	void (*observe)(void *state, const char *model,
	    const struct sy_outcome *outcome);
	/*
	 * Optional: the model (owned by the config) that an answer of model
	 * may escalate to, or NULL when model's answers are final.  The
	 * pipeline holds back (buffers) an answer that may escalate.
	 */
	const char *(*next)(void *state, const char *model);
	/*
	 * Optional, with next: whether answer, from a model that has a next,
	 * is replaced by the next model's answer to req; then sets *reason
	 * (static, e.g. "escalated:length").
	 */
	int (*check)(void *state, const struct sy_req *req,
	    const struct sy_answer *answer, const char **reason);
	/* Frees the state; may be NULL. */
	void (*destroy)(void *state);
};

/* The routing policy called name, or NULL. */
const struct sy_route_policy *sy_route_policy_find(const char *name);

/* The selection policy called name, or NULL. */
const struct sy_select_policy *sy_select_policy_find(const char *name);

/* Writes the known routing policy names, comma separated, into buf. */
void sy_route_policy_names(char *buf, size_t len);

/* Writes the known selection policy names, comma separated, into buf. */
void sy_select_policy_names(char *buf, size_t len);

/*
 * Whether ep can take one more request now: weight > 0, fewer than
 * max_concurrency requests in flight across all workers, not marked down
 * by health checks, not ejected, not rate-limited (429 Retry-After).
 */
int sy_endpoint_available(const struct sy_endpoint *ep);

/*
 * Whether ep may get req: available, and not an endpoint req already
 * tried (a retry goes to a different endpoint).  Every policy picks only
 * usable endpoints.
 */
int sy_endpoint_usable(const struct sy_endpoint *ep, const struct sy_req *req);

#endif
