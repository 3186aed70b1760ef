/* Parse: the client's JSON body into the request's canonical form, and the request's record when it ends. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "accesslog.h"
#include "backend.h"
#include "config.h"
#include "jscan.h"
#include "hourly.h"
#include "req.h"
#include "tenants.h"
#include "util.h"

int
sy_json_too_deep(const char *buf, size_t len, unsigned max_depth)
{
	unsigned depth = 0;
	int in_string = 0;
	size_t i;

	for (i = 0; i < len; i++) {
		char c = buf[i];

		if (in_string) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = 0;
			continue;
		}
		if (c == '"')
			in_string = 1;
		else if (c == '{' || c == '[') {
			if (++depth > max_depth)
				return 1;
		} else if ((c == '}' || c == ']') && depth > 0)
			depth--;
	}
	return 0;
}

json_t *
sy_req_body(const struct sy_req *req)
{
	struct sy_req *r = (struct sy_req *)req;	/* a cache, not a change */

	if (r->body == NULL && r->raw != NULL && evbuffer_get_length(r->raw) > 0)
		r->body = json_loadb((const char *)evbuffer_pullup(r->raw, -1),
		    evbuffer_get_length(r->raw), 0, NULL);
	return r->body;
}

/*
 * The client's model name from the text of a JSON string (quotes
 * included): copied into req when it is plain, else read from the tree.
 */
static int
read_model(struct sy_req *req, const char *text, size_t len, char **err)
{
	json_t *model;

	if (len <= 2)
		return sy_fail(err, "%s", "'model' must be a non-empty string");
	if (memchr(text, '\\', len) == NULL && len - 2 < sizeof req->model_buf) {
		memcpy(req->model_buf, text + 1, len - 2);
		req->model_buf[len - 2] = '\0';
		req->client_model = req->model_buf;
		return 0;
	}
	model = json_object_get(sy_req_body(req), "model");
	if (json_string_length(model) == 0)
		return sy_fail(err, "%s", "'model' must be a non-empty string");
	req->client_model = json_string_value(model);
	return 0;
}

/*
 * Whether text (len bytes, a JSON object) has an object with a name twice
 * (routing and a backend could read different values of it).  The tree is
 * built only when a name the gateway reads (n members m) appears more than
 * once as text; the message is jansson's.
 */
static int
has_duplicate_key(const char *text, size_t len,
    const struct sy_jscan_member *m, size_t n, json_error_t *jerr)
{
	char quoted[40];
	const char *p, *end = text + len;
	size_t i, qlen;
	int seen;
	json_t *tree;

	for (i = 0; i < n; i++) {
		qlen = (size_t)snprintf(quoted, sizeof quoted, "\"%s\"",
		    m[i].key);
		for (seen = 0, p = text; p < end && seen < 2; p += qlen) {
			if ((p = memmem(p, (size_t)(end - p), quoted, qlen)) == NULL)
				break;
			seen++;
		}
		if (seen < 2)
			continue;
		if ((tree = json_loadb(text, len, JSON_REJECT_DUPLICATES,
		    jerr)) == NULL)
			return 1;
		json_decref(tree);
		return 0;
	}
	return 0;
}

/*
 * Checks the request with the JSON scanner, without building a tree:
 * most requests go out as their bytes.
 */
int
sy_req_parse(struct sy_req *req, struct evbuffer *body, unsigned max_depth,
    int *status, char **err)
{
	static const char *required[] = { "messages", "prompt", "input",
	    "query" };
	struct sy_jscan_member m[] = {
		{ .key = "model" }, { .key = "stream" },
		{ .key = "stream_options" }, { .key = required[req->api] },
		{ .key = "max_tokens" }, { .key = "max_completion_tokens" }
	};
	struct sy_jscan_member usage = { .key = "include_usage" };
	size_t len = evbuffer_get_length(body);
	enum sy_json_kind kind;
	const char *text;
	json_error_t jerr;
	json_t *tree;

	*status = 400;
	req->raw = body;
	if (len == 0)
		return sy_fail(err, "%s", "request body is empty; expected a JSON object");
	text = (const char *)evbuffer_pullup(body, -1);
	if (sy_json_too_deep(text, len, max_depth)) {
		return sy_fail(err, "request JSON nests deeper than %u levels",
		    max_depth);
	}
	kind = sy_jscan(text, len, m, sizeof m / sizeof m[0]);
	if (kind == SY_JSON_NONE) {
		/* Only for the message: where jansson stops. */
		if ((tree = json_loadb(text, len, 0, &jerr)) != NULL) {
			json_decref(tree);
			return sy_fail(err, "%s", "invalid JSON: a NUL byte");
		}
		return sy_fail(err, "invalid JSON at line %d column %d: %s",
		    jerr.line, jerr.column, jerr.text);
	}
	if (kind != SY_JSON_OBJECT)
		return sy_fail(err, "%s", "request body must be a JSON object");
	if (has_duplicate_key(text, len, m, sizeof m / sizeof m[0], &jerr))
		return sy_fail(err, "invalid JSON: %s", jerr.text);
	if (m[0].kind == SY_JSON_NONE)
		return sy_fail(err, "%s", "'model' is required");
	if (m[0].kind != SY_JSON_STRING)
		return sy_fail(err, "%s", "'model' must be a non-empty string");
	if (read_model(req, m[0].value, m[0].len, err) != 0)
		return -1;
	req->lookup_model = req->client_model;
	if (m[3].kind == SY_JSON_NONE)
		return sy_fail(err, "'%s' is required", m[3].key);
	if (req->api == SY_API_CHAT && m[3].kind != SY_JSON_ARRAY)
		return sy_fail(err, "%s", "'messages' must be an array");
	if (m[1].kind != SY_JSON_NONE && m[1].kind != SY_JSON_TRUE &&
	    m[1].kind != SY_JSON_FALSE && m[1].kind != SY_JSON_NULL)
		return sy_fail(err, "%s", "'stream' must be a boolean");
	req->stream = m[1].kind == SY_JSON_TRUE;
	/* max_tokens, else max_completion_tokens (as the context check reads it). */
	if (m[4].kind == SY_JSON_INTEGER)
		req->max_tokens = sy_jscan_integer(m[4].value, m[4].len);
	else if (m[5].kind == SY_JSON_INTEGER)
		req->max_tokens = sy_jscan_integer(m[5].value, m[5].len);
	if (req->max_tokens < 0)
		req->max_tokens = 0;
	if (req->stream && req->api == SY_API_EMBEDDINGS)
		return sy_fail(err, "%s", "embeddings cannot be streamed");
	if (req->stream && req->api == SY_API_RERANK)
		return sy_fail(err, "%s", "rerank cannot be streamed");
	if (m[2].kind != SY_JSON_NONE && m[2].kind != SY_JSON_NULL) {
		if (m[2].kind != SY_JSON_OBJECT)
			return sy_fail(err, "%s", "'stream_options' must be an object");
		sy_jscan(m[2].value, m[2].len, &usage, 1);
		req->client_wants_usage = usage.kind == SY_JSON_TRUE;
	}
	*status = 0;
	return 0;
}

void
sy_usage_add(struct sy_usage *to, const struct sy_usage *u)
{
	int64_t *t[] = { &to->prompt_tokens, &to->completion_tokens,
	    &to->cached_tokens };
	const int64_t f[] = { u->prompt_tokens, u->completion_tokens,
	    u->cached_tokens };
	size_t i;

	for (i = 0; i < 3; i++)
		if (f[i] >= 0)
			*t[i] = *t[i] < 0 ? f[i] : *t[i] + f[i];
}

/* The answers a cascade replaced, added to r's usage and cost. */
static void
record_escalations(const struct sy_req *req, struct sy_record *r)
{
	r->escalated_from = req->escalated_from;
	r->escalations = req->escalations;
	if (req->escalations == 0)
		return;
	r->answer_usage = r->usage;
	r->answer_cost_usd = r->cost_usd;
	sy_usage_add(&r->usage, &req->prior_usage);
	if (req->prior_cost_usd >= 0)
		r->cost_usd = r->cost_usd >= 0 ? r->cost_usd +
		    req->prior_cost_usd : req->prior_cost_usd;
}

void
sy_req_stream_write(struct sy_req *req, uint64_t now)
{
	uint64_t gap;

	if (req->t_last_write != 0 && now >= req->t_last_write) {
		if (req->n_itl == req->itl_cap) {
			req->itl_cap = req->itl_cap ? req->itl_cap * 2 : 64;
			req->itl_us = realloc(req->itl_us, req->itl_cap *
			    sizeof *req->itl_us);
			if (req->itl_us == NULL)
				abort();
		}
		gap = now - req->t_last_write;
		req->itl_us[req->n_itl++] = gap > UINT32_MAX ? UINT32_MAX :
		    (uint32_t)gap;
	}
	req->t_last_write = now;
}

/* Time per output token after the first, µs: -1 unless it streamed two. */
static int64_t
tpot_us(const struct sy_req *req, const struct sy_record *r)
{
	if (r->ttft_us < 0 || req->usage.completion_tokens < 2 ||
	    r->latency_us < (uint64_t)r->ttft_us)
		return -1;
	return (int64_t)(r->latency_us - (uint64_t)r->ttft_us) /
	    (req->usage.completion_tokens - 1);
}

void
sy_req_record(const struct sy_req *req, struct sy_record *r)
{
	const struct sy_price *price;
	uint64_t now = req->t_end ? req->t_end : sy_now_us();

	memset(r, 0, sizeof *r);
	r->time_us = req->wall_arrival;
	r->request_id = req->id;
	r->method = req->method;
	r->path = req->path;
	r->client_api = req->client_api;
	r->route = req->route ? req->route->name : NULL;
	r->client_model = req->client_model;
	r->model = req->model;
	r->endpoint = req->endpoint ? req->endpoint->name : NULL;
	r->backend_kind = req->endpoint ? req->endpoint->kind->name : NULL;
	r->policy_reason = req->pick_reason;
	r->policy_words = req->pick_words[0] != '\0' ? req->pick_words : NULL;
	r->select_reason = req->select_reason;
	r->status = req->status;
	r->stream = req->stream;
	r->usage = req->usage;
	price = req->model ? sy_config_price(req->cfg, req->model) : NULL;
	/* The endpoint's own cost per hour comes first, then its model's. */
	if (req->endpoint != NULL && req->endpoint->hourly.hourly_usd > 0)
		price = &req->endpoint->hourly;
	if (price != NULL && price->hourly_usd > 0) {
		r->hourly_price = price;
		r->cost_source = "hourly";
		r->cost_usd = req->endpoint != NULL ? sy_hourly_estimate(
		    req->endpoint->stats, price, &req->usage) : -1;
	} else {
		r->cost_usd = sy_cost_usd(price, &req->usage);
		r->cost_source = r->cost_usd >= 0 ? "price" : NULL;
	}
	r->ttft_us = req->stream && req->t_first_byte ?
	    (int64_t)(req->t_first_byte - req->t_arrival) : -1;
	r->latency_us = now - req->t_arrival;
	r->itl_us = req->itl_us;
	r->n_itl = req->n_itl;
	r->tpot_us = tpot_us(req, r);
	r->upstream_us = req->upstream_us;
	r->overhead_us = r->latency_us > r->upstream_us ?
	    r->latency_us - r->upstream_us : 0;
	r->bytes_in = req->bytes_in;
	r->bytes_out = req->bytes_out;
	r->error = req->error;
	r->retries = req->retries;
	r->fallbacks = req->fallbacks;
	r->hedge = req->hedge;
	r->queue_us = req->queue_us;
	record_escalations(req, r);
	r->batch_size = req->batch_size;
	r->batch_wait_us = req->batch_wait_us;
	r->batch_shed = req->batch_shed;
	r->cache = req->cache;
	r->key_id = req->key_id;
	r->team = req->team;
	r->key_series = req->key_id != NULL && req->cfg != NULL &&
	    req->cfg->tenancy.metrics_per_key;
	r->saved_tokens = req->saved_tokens;
	r->saved_usd = req->saved_usd;
}

void
sy_req_clear(struct sy_req *req)
{
	if (req->body != NULL)
		json_decref(req->body);
	free(req->error);
	free(req->path);
	free(req->model_owned);
	free(req->itl_us);
	sy_key_unref(req->key);
	if (req->cfg != NULL)
		sy_config_unref(req->cfg);
	memset(req, 0, sizeof *req);
}
