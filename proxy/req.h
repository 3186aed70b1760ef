/* The request as it travels the pipeline: its canonical form, its route and the decisions so far, its timings. */
#ifndef SY_REQ_H
#define SY_REQ_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "record.h"

struct evbuffer;
struct sy_config;
struct sy_route;
struct sy_pool;
struct sy_endpoint;
struct sy_http1_msg;
struct sy_key;

/* Tries of one request (the first and its retries), at most. */
#define SY_MAX_TRIES 8

/* The client-facing APIs that carry a model. */
enum sy_api {
	SY_API_CHAT,		/* POST /v1/chat/completions */
	SY_API_COMPLETIONS,	/* POST /v1/completions */
	SY_API_EMBEDDINGS,	/* POST /v1/embeddings */
	SY_API_RERANK		/* POST /v1/rerank */
};

struct sy_req {
	struct sy_config *cfg;		/* snapshot held for the request's life */
	char id[40];			/* x-request-id */
	const struct sy_http1_msg *head; /* the client's request head */
	char method[16];		/* the client's method ("POST") */
	char *path;			/* its target without the query, owned */
	enum sy_api api;
	const char *client_api;		/* "openai" */

	/* Canonical form (OpenAI shape), from parse. */
	json_t *body;			/* owned; built on first use: sy_req_body */
	struct evbuffer *raw;		/* body bytes as received, owned */
	const char *client_model;	/* in model_buf, or borrowed from body */
	char model_buf[128];
	const char *lookup_model;	/* the name being routed: the client's
					   model, or a fallback's */
	int stream;
	int client_wants_usage;		/* stream_options.include_usage */
	int64_t max_tokens;		/* max_tokens, else max_completion_tokens;
					   0 when neither is an integer */

	/* Decisions. */
	struct sy_route *route;
	const char *model;		/* served model (never NULL once selected) */
	char *model_owned;		/* owned, when model is none of the
					   config's (a batch's fallback's) */
	const char *select_reason;
	const char *escalated_from;	/* the model whose answer a cascade replaced */
	unsigned escalations;		/* answers replaced */
	struct sy_usage prior_usage;	/* their tokens (-1: unknown) */
	double prior_cost_usd;		/* their cost; < 0: unknown */
	struct sy_pool *pool;
	struct sy_endpoint *endpoint;
	const char *pick_reason;
	/* The routing policy's own part of the request, which its pick may
	   write (see sy_route_policy.pick). */
	char pick_words[32];		/* a longer reason ("prefix:37/40"),
					   logged instead of pick_reason */
	uint64_t pick_note[2];		/* given back with the answer */
	const struct sy_endpoint *tried[SY_MAX_TRIES];	/* endpoints tried so far */
	unsigned ntried;

	/* Resilience. */
	unsigned retries;		/* tries after the first */
	unsigned fallbacks;		/* fallback routes taken */
	const char *hedge;		/* hedged: "first_won" or "hedge_won";
					   NULL: not hedged */
	uint64_t queue_us;		/* time waiting for a free endpoint */

	/* Batching (proxy/batch.c). */
	unsigned batch_size;		/* inputs in its batch; 0: not batched */
	uint64_t batch_wait_us;
	int batch_shed;

	/* Tenant (proxy/stage_auth.c): the key that made the request. */
	struct sy_key *key;		/* a reference; NULL without keys */
	const char *key_id;		/* key->id, for the log */
	const char *team;		/* key->team, or NULL */

	/* Prompt cache (proxy/cache.c). */
	const char *cache;		/* its result's word; NULL: no route */
	int64_t saved_tokens;		/* a hit's: tokens not spent */
	double saved_usd;		/* a hit's: what the answer cost */

	/* Results. */
	struct sy_usage usage;
	uint64_t streamed_events;	/* content events relayed (a cut
					   stream's tokens, about) */
	int budget_warned;		/* a budget passed its soft mark */
	int priority;			/* -100 to 100, higher first in the
					   batch and wait queues: its
					   x-switchyard-priority, else its
					   key's */
	int status;
	char *error;			/* owned; short reason for the log */

	/* Timings, monotonic µs. */
	uint64_t t_arrival;
	uint64_t wall_arrival;		/* wall clock µs */
	uint64_t t_upstream;		/* request sent upstream */
	uint64_t t_first_byte;		/* first body byte to the client (streams) */
	uint64_t t_end;			/* last byte to the client, 0: at finish */
	uint64_t t_last_write;		/* last stream write to the client */
	uint32_t *itl_us;		/* owned: gaps between stream writes */
	size_t n_itl, itl_cap;
	uint64_t upstream_us;		/* time spent waiting on the backend */
	uint64_t bytes_in;
	uint64_t bytes_out;
};

/*
 * Parses body (the client's JSON) for api into req's canonical form: checks
 * depth ≤ max_depth, that it is an object with a string "model" and the
 * API's required member (messages, prompt, input), reads stream and
 * stream_options.include_usage.  Returns 0, or -1 with *err malloc'd and
 * *status (400) for the client.  Takes no ownership of body.
 */
int sy_req_parse(struct sy_req *req, struct evbuffer *body,
    unsigned max_depth, int *status, char **err);

/*
 * The request's JSON tree (owned by req), parsed from its body bytes on
 * first use: most requests are forwarded without one.  NULL only when req
 * has neither.
 */
json_t *sy_req_body(const struct sy_req *req);

/* Whether the JSON text in buf nests deeper than max_depth; linear scan. */
int sy_json_too_deep(const char *buf, size_t len, unsigned max_depth);

/* Adds the counts of u to those of to, where -1 is unknown (none to add). */
void sy_usage_add(struct sy_usage *to, const struct sy_usage *u);

/*
 * Notes a write of stream events to the client at now: the gap since the
 * one before is an inter-token latency.
 */
void sy_req_stream_write(struct sy_req *req, uint64_t now);

/* Fills r from req's fields (strings borrowed from req). */
void sy_req_record(const struct sy_req *req, struct sy_record *r);

/* Frees what req owns (not req itself) and drops its config reference. */
void sy_req_clear(struct sy_req *req);

#endif
