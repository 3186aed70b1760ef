/* Plug points for policies: routing (pick an endpoint), model selection (pick a model) and batching (when to flush), with their registry. */
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
	 * It may also write req->pick_words (a longer reason, logged instead
	 * of *reason, which metrics count; "" leaves *reason) and
	 * req->pick_note (given back to answered): the only parts of req a
	 * policy writes.
	 */
	struct sy_endpoint *(*pick)(void *state, const struct sy_pool *pool,
	    const struct sy_req *req, const char **reason);
	/* Told the outcome of each request it picked for; may be NULL. */
	void (*observe)(void *state, struct sy_endpoint *ep,
	    const struct sy_outcome *outcome);
	/*
	 * Optional: told, once the exchange ends, the answer ep gave to req
	 * (req->usage as the backend reported it, req->pick_note as its last
	 * pick left it).  Only for an answer with status 200.
	 */
	void (*answered)(void *state, struct sy_endpoint *ep,
	    const struct sy_req *req);
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

/* Why a batch went (SY_FLUSH_HOLD: it waits); sy_flush_word names each. */
enum sy_flush {
	SY_FLUSH_HOLD,		/* not yet */
	SY_FLUSH_SIZE,		/* max_batch_size inputs */
	SY_FLUSH_TOKENS,	/* max_batch_tokens estimated tokens */
	SY_FLUSH_WAIT,		/* the longest wait since its first input */
	SY_FLUSH_READY,		/* the policy judged it full enough (adaptive) */
	SY_FLUSH_DEADLINE,	/* a member's deadline would pass waiting longer */
	SY_FLUSH_NREASONS
};

/* The limits of a route's batches, from its batch object. */
struct sy_batch_bounds {
	unsigned max_batch_size;	/* inputs in one batch */
	uint64_t max_batch_tokens;	/* estimated tokens in one batch; 0: no limit */
	uint64_t max_wait_us;		/* longest wait of a batch's first input */
};

/* What a batching policy sees of the batch being filled. */
struct sy_batch_view {
	unsigned inputs;		/* inputs waiting for this batch */
	uint64_t tokens;		/* their estimated tokens */
	uint64_t age_us;		/* since the first of them arrived */
	unsigned in_flight;		/* batches of this batcher at the backend */
};

/* A batching policy: decides when a route's batch goes to the backend. */
struct sy_batch_policy {
	const char *name;
	/*
	 * Called once per route at config load with the policy's parameters
	 * (an object), the route's bounds and its number of endpoints.
	 * Returns the state, or NULL with *err malloc'd.
	 */
	void *(*create)(const json_t *params, const struct sy_batch_bounds *b,
	    size_t nendpoints, char **err);
	/*
	 * Whether the batch in v goes now (and why), or SY_FLUSH_HOLD with
	 * *due_us set to the age at which to ask again (a batch returning
	 * asks too).  Called under the batcher's lock, on any worker.
	 */
	enum sy_flush (*decide)(void *state, const struct sy_batch_view *v,
	    uint64_t *due_us);
	/* Told each arrival (inputs, at now_us); may be NULL. */
	void (*arrive)(void *state, unsigned inputs, uint64_t now_us);
	/* Told each batch's size and service time; may be NULL. */
	void (*observe)(void *state, unsigned inputs, uint64_t service_us);
	void (*destroy)(void *state);
};

/* The word for a flush reason ("size", "tokens", "wait", "ready"). */
const char *sy_flush_word(enum sy_flush reason);

/*
 * The decision every batching policy takes first: SY_FLUSH_SIZE,
 * SY_FLUSH_TOKENS or SY_FLUSH_WAIT when v reached a bound of b, else
 * SY_FLUSH_HOLD.
 */
enum sy_flush sy_batch_bound_reached(const struct sy_batch_bounds *b,
    const struct sy_batch_view *v);

/* The batching policy called name, or NULL. */
const struct sy_batch_policy *sy_batch_policy_find(const char *name);

/* Writes the known batching policy names, comma separated, into buf. */
void sy_batch_policy_names(char *buf, size_t len);

/* The routing policy called name, or NULL. */
const struct sy_route_policy *sy_route_policy_find(const char *name);

/* The selection policy called name, or NULL. */
const struct sy_select_policy *sy_select_policy_find(const char *name);

/* Writes the known routing policy names, comma separated, into buf. */
void sy_route_policy_names(char *buf, size_t len);

/* Writes the known selection policy names, comma separated, into buf. */
void sy_select_policy_names(char *buf, size_t len);

/*
 * The registries in order, for whatever must visit every entry (the
 * tests): the policy at index i (static, owned by the registry), or NULL
 * past the last one.  for (i = 0; (p = sy_route_policy_at(i)); i++) ...
 */
const struct sy_route_policy *sy_route_policy_at(size_t i);
const struct sy_select_policy *sy_select_policy_at(size_t i);
const struct sy_batch_policy *sy_batch_policy_at(size_t i);

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
