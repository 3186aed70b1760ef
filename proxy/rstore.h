/* Stored Responses: the responses of POST /v1/responses kept by id with the conversation that led to them, in Redis with a TTL when Redis is configured (every instance sees them), else in a memory LRU bounded in bytes; for previous_response_id and GET/DELETE /v1/responses/{id}. */
#ifndef SY_RSTORE_H
#define SY_RSTORE_H

#include <stddef.h>

#include <jansson.h>

struct sy_redis;
struct sy_rstore;
struct sy_rstore_op;

/* The top-level "responses" object. */
struct sy_responses_conf {
	int store;			/* default 1: kept unless a request says
					   store: false; 0: none kept */
	unsigned ttl_s;			/* how long one is kept; default 30 days */
	size_t memory_bytes;		/* the memory store's bound, without
					   Redis (read at start); default 64 MiB */
};

/* Its rows (proxy/rstore.c). */
struct sy_conf_table;
extern const struct sy_conf_table sy_responses_table;

/*
 * The process's memory store of at most memory_bytes (0: nothing is kept
 * in memory), shared by the workers; used for what is not in Redis.
 */
struct sy_rstore *sy_rstore_new(size_t memory_bytes);

/* Frees s and what it holds; NULL is ignored. */
void sy_rstore_free(struct sy_rstore *s);

/* What a lookup came to. */
enum sy_rstore_result {
	SY_RSTORE_FOUND,		/* *recs set: what was found */
	SY_RSTORE_UNAVAILABLE,		/* Redis failed, or is not connected */
	SY_RSTORE_PENDING		/* Redis will tell: got later */
};

/*
 * Told the result of a pending lookup (recs: a reference to an array as
 * sy_rstore_get's, or NULL).
 */
typedef void (*sy_rstore_got_fn)(void *arg, enum sy_rstore_result r,
    json_t *recs);

/*
 * Whether id may name a stored record: 1 to 200 letters, digits, '_' and
 * '-'.
 */
int sy_rstore_id_valid(const char *id);

/*
 * Looks up the records of n ids (responses "resp_...", their output items
 * "msg_...", "fc_...": one key space) at once: in Redis through r (keys
 * under prefix, then "resp:" and the id; one MGET) when r is not NULL,
 * else in s.  Returns SY_RSTORE_FOUND with *recs a new array of n, each
 * the record (an object) or null (absent, expired, or a bad id); or
 * SY_RSTORE_UNAVAILABLE; or SY_RSTORE_PENDING with *op set (got comes
 * later unless cancelled).
 */
enum sy_rstore_result sy_rstore_get(struct sy_rstore *s, struct sy_redis *r,
    const char *prefix, const char *const *ids, size_t n, json_t **recs,
    sy_rstore_got_fn got, void *arg, struct sy_rstore_op **op);

/* Forgets a pending lookup; NULL is ignored. */
void sy_rstore_cancel(struct sy_rstore_op *op);

/*
 * Keeps rec (a JSON object, serialised; not taken) under id for ttl_s
 * seconds, where sy_rstore_get looks, without waiting (a failure is
 * counted by the connection).
 */
void sy_rstore_put(struct sy_rstore *s, struct sy_redis *r,
    const char *prefix, const char *id, const json_t *rec, unsigned ttl_s);

/* Forgets the records of n ids, without waiting. */
void sy_rstore_del(struct sy_rstore *s, struct sy_redis *r,
    const char *prefix, const char *const *ids, size_t n);

#endif
