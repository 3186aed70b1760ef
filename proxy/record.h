/* What one finished request leaves behind: the fields of its access-log line and its metrics. */
#ifndef SY_RECORD_H
#define SY_RECORD_H

#include <stddef.h>
#include <stdint.h>

struct sy_price;

/* Token counts of one request; a count is -1 when the backend did not say. */
struct sy_usage {
	int64_t prompt_tokens;
	int64_t completion_tokens;
	int64_t cached_tokens;		/* prompt tokens served from a prefix cache */
};

/*
 * One finished request.  Strings are borrowed from the request (valid only
 * during the call that receives the record); NULL means "not applicable".
 */
struct sy_record {
	uint64_t time_us;		/* wall clock at arrival, µs since epoch */
	const char *request_id;
	const char *method;
	const char *path;
	const char *client_api;		/* "openai" */
	const char *key_id;		/* the API key's id (never the key) */
	const char *team;		/* its team */
	int key_series;			/* /metrics keeps a series per key */
	const char *route;		/* NULL when no route matched */
	const char *client_model;	/* the model the client asked for */
	const char *model;		/* the served model selected */
	const char *endpoint;		/* NULL when none was picked */
	const char *backend_kind;	/* "openai", ... */
	const char *policy_reason;	/* routing policy's word, e.g. "round-robin" */
	const char *policy_words;	/* its longer reason for the log
					   ("prefix:37/40"), or NULL */
	const char *select_reason;	/* selection policy's, e.g. "rule:3" */
	const char *escalated_from;	/* the model whose answer a cascade replaced */
	unsigned escalations;		/* answers replaced (usage and cost count them) */
	int status;			/* HTTP status sent to the client */
	int stream;			/* 1 for SSE responses */
	struct sy_usage usage;
	double cost_usd;		/* < 0 when unknown (no price or no usage) */
	const char *cost_source;	/* "price", "hourly" (an estimate), NULL */
	const struct sy_price *hourly_price; /* self-hosted: the endpoint's or its model's */
	struct sy_usage answer_usage;	/* the answer's own, without the answers
					   a cascade replaced (escalations > 0) */
	double answer_cost_usd;
	int64_t ttft_us;		/* first streamed byte; -1 when not a stream */
	const uint32_t *itl_us;		/* gaps between stream writes, µs */
	size_t n_itl;
	int64_t tpot_us;		/* (latency - ttft) / (completion - 1);
					   -1 unless a stream of 2+ tokens */
	uint64_t latency_us;		/* arrival to last byte sent */
	uint64_t upstream_us;		/* time waiting on the backend */
	uint64_t overhead_us;		/* latency_us - upstream_us: time in switchyard */
	uint64_t bytes_in;		/* request body bytes */
	uint64_t bytes_out;		/* response body bytes */
	const char *error;		/* short reason when the request failed */
	unsigned retries;		/* tries after the first, on other endpoints */
	unsigned fallbacks;		/* fallback routes taken */
	const char *hedge;		/* "first_won", "hedge_won"; NULL: not hedged */
	uint64_t queue_us;		/* time waiting for a free endpoint */
	unsigned batch_size;		/* inputs in the request's batch; 0: not batched */
	uint64_t batch_wait_us;		/* time waiting in the batcher */
	int batch_shed;			/* shed by the batcher (429/503) */
	const char *cache;		/* "hit", "miss", "bypass", "coalesced"; NULL: no lookup */
	int64_t saved_tokens;		/* hits: prompt + completion tokens not spent */
	double saved_usd;		/* hits: what the answer cost (< 0: no price) */
};

#endif
