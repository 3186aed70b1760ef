/* The batcher: one per route that batches, shared by every worker; groups embeddings and completions inputs into one backend call and hands each caller its own slice. */
#ifndef SY_BATCH_H
#define SY_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "policy.h"
#include "record.h"
#include "req.h"

struct event_base;
struct evbuffer;
struct sy_config;
struct sy_endpoint;
struct sy_route;
struct sy_batcher;
struct sy_batch_member;
struct sy_batch_port;

/* One batch that went: the canonical request the pipeline sends for it. */
struct sy_batch {
	struct sy_batcher *batcher;
	struct sy_route *route;
	struct sy_config *cfg;		/* a reference, for the call to take */
	enum sy_api api;
	char *model;			/* the served model its members were
					   selected for */
	json_t *params;			/* its request without the inputs */
	struct evbuffer *body;		/* the request, for the call to take */
	uint64_t deadline;		/* monotonic µs: the latest of its members' */
	unsigned inputs;
	enum sy_flush reason;
	uint64_t t_flush;		/* monotonic µs */
	struct sy_batch_member **members;	/* in the order of their inputs */
	size_t nmembers;
};

/* What one member of a batch receives, on its own worker. */
struct sy_batch_result {
	int alone;			/* the batch failed on a client error:
					   the member goes to the backend alone */
	int shed;			/* its deadline passed while it waited */
	int status;
	struct evbuffer *body;		/* its own answer, or the error (canonical) */
	char headers[64];		/* header lines for it ("Retry-After: ...") */
	struct sy_usage usage;		/* its share of the batch's */
	struct sy_endpoint *endpoint;	/* the batch's (NULL when none answered) */
	char model[128];		/* the model that answered ("": too long) */
	const char *pick_reason;
	unsigned retries;
	unsigned fallbacks;
	uint64_t upstream_us;
	unsigned batch_size;		/* inputs in its batch */
	uint64_t wait_us;		/* its time in the batcher */
};

/* What became of a request offered to its route's batcher. */
enum sy_batch_entry {
	SY_BATCH_QUEUED,	/* it waits; its answer comes through its port */
	SY_BATCH_ALONE,		/* not batchable: it goes on the normal way */
	SY_BATCH_BAD,		/* its input or batching headers are invalid: 400 */
	SY_BATCH_FULL,		/* the batcher's queue is full: 429 */
	SY_BATCH_LATE		/* its deadline cannot be met: 503 */
};

/* A worker's side: where its members' answers arrive, how it sends a batch. */
typedef void (*sy_batch_deliver_fn)(void *owner, const struct sy_batch_result *r);
typedef void (*sy_batch_send_fn)(void *arg, struct sy_batch *bt);

/*
 * Creates the batcher of route (whose batch.policy is set) with its policy
 * state.  Returns it, or NULL with *err malloc'd.
 */
struct sy_batcher *sy_batcher_new(struct sy_route *route, char **err);

/* Frees b (no request may use it any more: its config is being freed). */
void sy_batcher_free(struct sy_batcher *b);

/*
 * Creates a worker's port on base: deliver(owner, result) is called on
 * that worker for each member whose answer arrived (owner as given to
 * sy_batch_enter); send(arg, batch) is called on it for each batch it
 * flushes, and must end in sy_batch_answer.
 */
struct sy_batch_port *sy_batch_port_new(struct event_base *base,
    sy_batch_deliver_fn deliver, sy_batch_send_fn send, void *arg);

/*
 * Closes a port as its worker ends (on that worker): answers that arrive
 * later are dropped.  The memory goes with the last member that used it.
 */
void sy_batch_port_close(struct sy_batch_port *p);

/* Whether batches this port's worker sent are still in flight (a drain waits). */
int sy_batch_port_busy(const struct sy_batch_port *p);

/*
 * Offers req (routed, model selected) to batcher b, on the worker of port.
 * Reads the x-switchyard-priority and x-switchyard-deadline-ms headers;
 * *deadline (monotonic µs) is the route's and may be made earlier.  On
 * SY_BATCH_QUEUED sets *out to the member, which the caller releases with
 * sy_batch_release when its request ends; its result comes through
 * deliver(owner, ...).  On SY_BATCH_BAD, FULL and LATE sets *msg
 * (malloc'd) for the client, and for FULL and LATE *retry_after (s).
 */
enum sy_batch_entry sy_batch_enter(struct sy_batcher *b,
    struct sy_batch_port *port, void *owner, const struct sy_req *req,
    uint64_t *deadline, struct sy_batch_member **out, char **msg,
    unsigned *retry_after);

/*
 * The request of m ended (answered, or its client left); on its worker.
 * A member still waiting leaves the queue; one in a batch in flight is
 * dropped when the batch answers.
 */
void sy_batch_release(struct sy_batch_member *m);

/*
 * The call of bt ended with status and the canonical body (an answer or
 * an OpenAI-shaped error; not taken), headers (extra header lines or
 * NULL), and call (the call's request: usage, endpoint, retries, timings).
 * Splits the answer among the members and posts each its part; a client
 * error of a batch of several is sent back to each member to go alone.
 * Then flushes what the batcher holds back, through port.  Frees bt.
 */
void sy_batch_answer(struct sy_batch *bt, struct sy_batch_port *port,
    int status, struct evbuffer *body, const char *headers,
    const struct sy_req *call);

#endif
