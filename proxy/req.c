/* Parse: the client's JSON body into the request's canonical form, and the request's record when it ends. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "accesslog.h"
#include "backend.h"
#include "config.h"
#include "req.h"
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

int
sy_req_parse(struct sy_req *req, struct evbuffer *body, unsigned max_depth,
    int *status, char **err)
{
	static const char *required[] = { "messages", "prompt", "input" };
	const char *member = required[req->api];
	size_t len = evbuffer_get_length(body);
	const char *text;
	json_error_t jerr;
	json_t *model, *stream, *opts, *v;

	*status = 400;
	if (len == 0)
		return sy_fail(err, "%s", "request body is empty; expected a JSON object");
	text = (const char *)evbuffer_pullup(body, -1);
	if (sy_json_too_deep(text, len, max_depth)) {
		return sy_fail(err, "request JSON nests deeper than %u levels",
		    max_depth);
	}
	req->body = json_loadb(text, len, 0, &jerr);
	if (req->body == NULL) {
		return sy_fail(err, "invalid JSON at line %d column %d: %s",
		    jerr.line, jerr.column, jerr.text);
	}
	if (!json_is_object(req->body))
		return sy_fail(err, "%s", "request body must be a JSON object");
	model = json_object_get(req->body, "model");
	if (model == NULL)
		return sy_fail(err, "%s", "'model' is required");
	if (!json_is_string(model) || json_string_length(model) == 0)
		return sy_fail(err, "%s", "'model' must be a non-empty string");
	req->client_model = json_string_value(model);
	req->lookup_model = req->client_model;
	if ((v = json_object_get(req->body, member)) == NULL)
		return sy_fail(err, "'%s' is required", member);
	if (req->api == SY_API_CHAT && !json_is_array(v))
		return sy_fail(err, "%s", "'messages' must be an array");
	stream = json_object_get(req->body, "stream");
	if (stream != NULL && !json_is_boolean(stream) && !json_is_null(stream))
		return sy_fail(err, "%s", "'stream' must be a boolean");
	req->stream = json_is_true(stream);
	if (req->stream && req->api == SY_API_EMBEDDINGS)
		return sy_fail(err, "%s", "embeddings cannot be streamed");
	opts = json_object_get(req->body, "stream_options");
	if (opts != NULL && !json_is_null(opts)) {
		if (!json_is_object(opts))
			return sy_fail(err, "%s", "'stream_options' must be an object");
		req->client_wants_usage =
		    json_is_true(json_object_get(opts, "include_usage"));
	}
	*status = 0;
	return 0;
}

void
sy_req_record(const struct sy_req *req, struct sy_record *r)
{
	const struct sy_price *price;
	uint64_t now = req->t_end ? req->t_end : sy_now_us();

	memset(r, 0, sizeof *r);
	r->time_us = req->wall_arrival;
	r->request_id = req->id;
	r->client_api = req->client_api;
	r->route = req->route ? req->route->name : NULL;
	r->client_model = req->client_model;
	r->model = req->model;
	r->endpoint = req->endpoint ? req->endpoint->name : NULL;
	r->backend_kind = req->endpoint ? req->endpoint->kind->name : NULL;
	r->policy_reason = req->pick_reason;
	r->status = req->status;
	r->stream = req->stream;
	r->usage = req->usage;
	price = req->model ? sy_config_price(req->cfg, req->model) : NULL;
	r->cost_usd = sy_cost_usd(price, &req->usage);
	r->ttft_us = req->stream && req->t_first_byte ?
	    (int64_t)(req->t_first_byte - req->t_arrival) : -1;
	r->latency_us = now - req->t_arrival;
	r->upstream_us = req->upstream_us;
	r->overhead_us = r->latency_us > r->upstream_us ?
	    r->latency_us - r->upstream_us : 0;
	r->bytes_in = req->bytes_in;
	r->bytes_out = req->bytes_out;
	r->error = req->error;
	r->retries = req->retries;
	r->fallbacks = req->fallbacks;
	r->queue_us = req->queue_us;
}

void
sy_req_clear(struct sy_req *req)
{
	if (req->body != NULL)
		json_decref(req->body);
	free(req->error);
	if (req->cfg != NULL)
		sy_config_unref(req->cfg);
	memset(req, 0, sizeof *req);
}
