/* The request's path, in one direction: parse → route → select model → pick endpoint → encode → upstream → decode or relay → account → respond. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "accesslog.h"
#include "backend.h"
#include "config.h"
#include "http1.h"
#include "metrics.h"
#include "policy.h"
#include "req.h"
#include "server.h"
#include "sse.h"
#include "upstream.h"
#include "util.h"
#include "worker.h"

/* A streamed response pauses the backend while this much waits for the client. */
#define STREAM_BACKLOG_MAX (1024 * 1024)
/* The largest whole (non-streamed) response body accepted from a backend. */
#define RESPONSE_MAX (64 * 1024 * 1024)

/* One client exchange on its way through the pipeline. */
struct exchange {
	struct sy_req req;
	struct sy_worker *w;
	struct sy_conn *conn;		/* NULL once the client is gone */
	struct sy_upstream_call *call;	/* NULL when no backend call runs */
	char method[16];
	char *path;
	char headers[128];		/* extra response headers */
	int counted;			/* endpoint's in_flight was raised */
	int upstream_status;
	struct evbuffer *resp;		/* whole response body */
	struct sy_sse sse;		/* SSE relay */
	struct evbuffer *out;		/* events translated for the client */
	int streaming;
	int stream_started;
	int stream_ended;		/* terminal or error event relayed */
	char retry_after[32];		/* the backend's Retry-After, or "" */
	int paused;
};

/* ==== Ending an exchange ==== */

/* Logs and counts the exchange, releases what it holds, frees it. */
static void
finish(struct exchange *x)
{
	struct sy_req *req = &x->req;
	struct sy_record rec;

	if (x->counted) {
		struct sy_outcome outcome = {
			.status = x->upstream_status,
			.latency_us = req->upstream_us,
			.ttft_us = req->t_first_byte ?
			    req->t_first_byte - req->t_upstream : 0
		};

		atomic_fetch_sub(&req->endpoint->stats->in_flight, 1);
		if (req->route->policy->observe != NULL)
			req->route->policy->observe(req->pool->policy_state,
			    req->endpoint, &outcome);
	}
	sy_req_record(req, &rec);
	rec.method = x->method;
	rec.path = x->path;
	sy_accesslog_write(x->w->rt->log, &rec);
	sy_metrics_record(x->w->metrics, &rec);
	if (x->resp != NULL)
		evbuffer_free(x->resp);
	if (x->out != NULL)
		evbuffer_free(x->out);
	if (x->streaming)
		sy_sse_free(&x->sse);
	free(x->path);
	sy_req_clear(req);
	free(x);
}

/* Notes why the exchange failed, for the log (first reason wins). */
static void
set_error(struct exchange *x, const char *msg)
{
	if (x->req.error == NULL)
		x->req.error = sy_xstrdup(msg);
}

/* Answers the client with an error and ends the exchange. */
static void
fail(struct exchange *x, int status, const char *type, const char *code,
    const char *message, const char *more_headers)
{
	char headers[256];

	set_error(x, message);
	x->req.status = status;
	if (x->conn != NULL) {
		snprintf(headers, sizeof headers, "%s%s", x->headers,
		    more_headers ? more_headers : "");
		x->req.bytes_out = 0;
		sy_respond_error(x->conn, status, type, code, message, headers);
	}
	finish(x);
}

/* ==== Relaying a stream ==== */

/* Sends what x->out holds to the client, starting the response if needed. */
static void
stream_flush(struct exchange *x)
{
	size_t len = evbuffer_get_length(x->out);

	if (len == 0 || x->conn == NULL)
		return;
	if (!x->stream_started) {
		x->stream_started = 1;
		x->req.status = 200;
		x->req.t_first_byte = sy_now_us();
		sy_conn_stream_start(x->conn, 200, "text/event-stream", x->headers);
	}
	x->req.bytes_out += len;
	sy_conn_stream_write(x->conn, x->out);
	if (!x->paused && sy_conn_pending(x->conn) > STREAM_BACKLOG_MAX &&
	    x->call != NULL) {
		x->paused = 1;
		sy_upstream_pause(x->call, 1);
	}
}

/* Appends an OpenAI-shaped error event for the client. */
static void
stream_error_event(struct exchange *x, const char *code, const char *message)
{
	SY_ADD_LIT(x->out, "data: {\"error\":{\"message\":\"");
	sy_json_escape(x->out, message, strlen(message));
	evbuffer_add_printf(x->out, "\",\"type\":\"server_error\","
	    "\"code\":\"%s\"}}\n\n", code);
}

/*
 * Ends the client's stream (the exchange may still wait for the backend to
 * end its response, for the connection's sake).
 */
static void
client_end(struct exchange *x)
{
	stream_flush(x);
	if (x->conn == NULL)
		return;
	if (!x->stream_started) {
		x->req.status = 200;
		sy_conn_stream_start(x->conn, 200, "text/event-stream",
		    x->headers);
	}
	sy_conn_stream_end(x->conn);
	x->conn = NULL;
	x->req.t_end = sy_now_us();
}

/* Ends a relayed stream, whatever state it is in, and the exchange. */
static void
stream_end(struct exchange *x)
{
	client_end(x);
	finish(x);
}

static int
on_sse_event(const struct sy_sse_event *ev, void *arg)
{
	struct exchange *x = arg;
	const struct sy_backend_kind *kind = x->req.endpoint->kind;

	if (x->stream_ended)
		return 0;
	switch (kind->stream_event(&x->req, ev, x->out, &x->req.usage)) {
	case SY_STREAM_DONE:
		x->stream_ended = 1;
		break;
	case SY_STREAM_ERROR:
		x->stream_ended = 1;
		set_error(x, "backend sent an error event mid-stream");
		break;
	default:
		break;
	}
	return 0;
}

/* ==== Backend callbacks ==== */

static void
on_head(void *arg, const struct sy_http1_msg *head)
{
	struct exchange *x = arg;
	const char *ct = sy_http1_header(head, "content-type");
	const char *ra = sy_http1_header(head, "retry-after");

	x->upstream_status = head->status;
	/* Retry-After in seconds is passed on to the client. */
	if (ra != NULL && *ra != '\0' && strspn(ra, "0123456789") == strlen(ra))
		snprintf(x->retry_after, sizeof x->retry_after, "%s", ra);
	if (x->req.stream && head->status == 200 && ct != NULL &&
	    strncasecmp(ct, "text/event-stream", 17) == 0) {
		x->streaming = 1;
		sy_sse_init(&x->sse, 0);
		x->out = evbuffer_new();
	} else
		x->resp = evbuffer_new();
}

static void
on_body(void *arg, struct evbuffer *data)
{
	struct exchange *x = arg;
	size_t len = evbuffer_get_length(data);

	if (!x->streaming) {
		evbuffer_add_buffer(x->resp, data);
		if (evbuffer_get_length(x->resp) > RESPONSE_MAX) {
			sy_upstream_cancel(x->call);
			x->call = NULL;
			x->req.upstream_us = sy_now_us() - x->req.t_upstream;
			fail(x, 502, "server_error", "bad_gateway",
			    "backend response is larger than the limit", NULL);
		}
		return;
	}
	if (sy_sse_feed(&x->sse, (const char *)evbuffer_pullup(data, -1), len,
	    on_sse_event, x) < 0) {
		evbuffer_drain(data, len);
		sy_upstream_cancel(x->call);
		x->call = NULL;
		x->req.upstream_us = sy_now_us() - x->req.t_upstream;
		set_error(x, "backend stream event is larger than the limit");
		stream_error_event(x, "bad_gateway",
		    "backend stream event is larger than the limit");
		stream_end(x);
		return;
	}
	evbuffer_drain(data, len);
	/* The client has its whole answer at [DONE]; the backend may linger. */
	if (x->stream_ended)
		client_end(x);
	else
		stream_flush(x);
}

static void
on_done(void *arg)
{
	struct exchange *x = arg;
	struct sy_req *req = &x->req;
	struct evbuffer *out;
	char *err = NULL;

	x->call = NULL;
	req->upstream_us = sy_now_us() - req->t_upstream;
	if (x->streaming) {
		if (!x->stream_ended)
			set_error(x, "backend stream ended without [DONE]");
		stream_end(x);
		return;
	}
	out = evbuffer_new();
	if (req->endpoint->kind->decode(req, x->upstream_status, x->resp, out,
	    &req->usage, &err) != 0) {
		evbuffer_free(out);
		fail(x, 502, "server_error", "bad_gateway", err, NULL);
		free(err);
		return;
	}
	req->status = x->upstream_status;
	if (x->upstream_status >= 400)
		set_error(x, "backend returned an error");
	req->bytes_out = evbuffer_get_length(out);
	if (x->conn != NULL) {
		char headers[sizeof x->headers + sizeof x->retry_after + 16];

		snprintf(headers, sizeof headers, "%s%s%s%s", x->headers,
		    x->retry_after[0] ? "Retry-After: " : "", x->retry_after,
		    x->retry_after[0] ? "\r\n" : "");
		sy_conn_respond(x->conn, x->upstream_status, "application/json",
		    headers, out);
	}
	evbuffer_free(out);
	finish(x);
}

static void
on_error(void *arg, enum sy_upstream_error e, const char *msg)
{
	struct exchange *x = arg;
	int timeout = e == SY_UP_TIMEOUT;

	x->call = NULL;
	x->req.upstream_us = sy_now_us() - x->req.t_upstream;
	if (x->stream_started) {
		/* After [DONE] the client has its answer: not an error. */
		if (!x->stream_ended) {
			set_error(x, msg);
			stream_error_event(x, timeout ? "gateway_timeout" :
			    "bad_gateway", msg);
		}
		stream_end(x);
		return;
	}
	fail(x, timeout ? 504 : 502, "server_error",
	    timeout ? "gateway_timeout" : "bad_gateway", msg, NULL);
}

static const struct sy_upstream_cbs upstream_cbs = {
	.on_head = on_head,
	.on_body = on_body,
	.on_done = on_done,
	.on_error = on_error
};

/* ==== Client callbacks ==== */

static void
client_gone(void *owner, int timed_out)
{
	struct exchange *x = owner;

	x->conn = NULL;
	if (x->call != NULL) {
		sy_upstream_cancel(x->call);
		x->call = NULL;
		x->req.upstream_us = sy_now_us() - x->req.t_upstream;
	}
	x->req.status = 499;
	set_error(x, timed_out ? "client stopped reading (write timeout)" :
	    "client closed the connection");
	finish(x);
}

static void
client_drained(void *owner)
{
	struct exchange *x = owner;

	if (x->paused && x->call != NULL) {
		x->paused = 0;
		sy_upstream_pause(x->call, 0);
	}
}

/* ==== The stages ==== */

/*
 * Picks an endpoint of req's pool with the route's policy and takes one of
 * its in-flight slots.  Another worker may take the last slot between the
 * policy's look and ours: then the policy picks again without it.
 * Returns the endpoint, or NULL when none can take req.
 */
static struct sy_endpoint *
pick_endpoint(struct sy_req *req)
{
	const struct sy_route_policy *policy = req->route->policy;
	unsigned ntried = req->ntried;
	struct sy_endpoint *ep;
	long before;

	while ((ep = policy->pick(req->pool->policy_state, req->pool, req,
	    &req->pick_reason)) != NULL) {
		before = atomic_fetch_add(&ep->stats->in_flight, 1);
		if (ep->max_concurrency == 0 || before < (long)ep->max_concurrency)
			break;
		atomic_fetch_sub(&ep->stats->in_flight, 1);
		if (req->ntried == SY_MAX_TRIES) {
			ep = NULL;
			break;
		}
		req->tried[req->ntried++] = ep;
	}
	req->ntried = ntried;
	return ep;
}

/* Route, select, pick, encode and send: the way to the backend. */
static void
proxy(struct exchange *x, enum sy_api api, struct evbuffer *body)
{
	struct sy_req *req = &x->req;
	struct sy_config *cfg = req->cfg;
	struct evbuffer *encoded;
	char *err = NULL, msg[1024], upstream_headers[128];
	const char *path;
	json_t *names;
	int status;

	req->api = api;
	req->raw = body;
	if (sy_req_parse(req, body, cfg->limits.max_json_depth, &status,
	    &err) != 0) {
		fail(x, status, "invalid_request_error", NULL, err, NULL);
		free(err);
		return;
	}
	if ((req->route = sy_config_route(cfg, req->client_model)) == NULL) {
		char *list;

		names = sy_config_model_names(cfg);
		list = json_dumps(names, JSON_COMPACT);
		snprintf(msg, sizeof msg, "The model `%s` does not exist or is "
		    "not served here; served models: %s", req->client_model,
		    list ? list : "[]");
		free(list);
		json_decref(names);
		fail(x, 404, "invalid_request_error", "model_not_found", msg,
		    NULL);
		return;
	}
	req->model = req->route->selection->select(req->route->selection_state,
	    req->route, req, &req->select_reason);
	if (req->model == NULL)
		req->model = req->client_model;
	req->pool = sy_route_pool(req->route,
	    req->route->wildcard ? NULL : req->model);
	if (req->pool == NULL || (req->endpoint = pick_endpoint(req)) == NULL) {
		fail(x, 503, "server_error", "no_endpoint_available",
		    "no backend endpoint can take the request now", "Retry-After: 1\r\n");
		return;
	}
	x->counted = 1;
	encoded = evbuffer_new();
	if (req->endpoint->kind->encode(req, encoded, &path, &err) != 0) {
		evbuffer_free(encoded);
		atomic_fetch_sub(&req->endpoint->stats->in_flight, 1);
		x->counted = 0;
		req->endpoint = NULL;
		fail(x, 400, "invalid_request_error", NULL, err, NULL);
		free(err);
		return;
	}
	snprintf(upstream_headers, sizeof upstream_headers,
	    "X-Request-Id: %s\r\nAccept: %s\r\n", req->id,
	    req->stream ? "text/event-stream" : "application/json");
	req->t_upstream = sy_now_us();
	x->call = sy_upstream_send(x->w->upstream, req->endpoint,
	    &cfg->timeouts, path, upstream_headers, encoded, &upstream_cbs, x);
	evbuffer_free(encoded);
}

/* GET /v1/models: the models this config serves, in OpenAI's list shape. */
static void
list_models(struct exchange *x)
{
	struct evbuffer *body = evbuffer_new();
	json_t *names = sy_config_model_names(x->req.cfg), *v;
	size_t i;

	SY_ADD_LIT(body, "{\"object\":\"list\",\"data\":[");
	json_array_foreach(names, i, v) {
		if (i > 0)
			SY_ADD_LIT(body, ",");
		SY_ADD_LIT(body, "{\"id\":\"");
		sy_json_escape(body, json_string_value(v),
		    json_string_length(v));
		SY_ADD_LIT(body, "\",\"object\":\"model\",\"created\":0,"
		    "\"owned_by\":\"switchyard\"}");
	}
	SY_ADD_LIT(body, "]}");
	json_decref(names);
	x->req.status = 200;
	x->req.bytes_out = evbuffer_get_length(body);
	sy_conn_respond(x->conn, 200, "application/json", x->headers, body);
	evbuffer_free(body);
	finish(x);
}

/* Answers with a fixed JSON body and ends the exchange. */
static void
respond_text(struct exchange *x, int status, const char *json)
{
	struct evbuffer *body = evbuffer_new();

	evbuffer_add(body, json, strlen(json));
	x->req.status = status;
	x->req.bytes_out = evbuffer_get_length(body);
	sy_conn_respond(x->conn, status, "application/json", x->headers, body);
	evbuffer_free(body);
	finish(x);
}

/* Writes a new request id: the process's boot id, the worker, a counter. */
static void
new_request_id(struct sy_worker *w, char *buf, size_t len)
{
	snprintf(buf, len, "%08x%02x%010llx", w->rt->boot_id, w->index & 0xff,
	    (unsigned long long)w->next_id++);
}

/* Fills the request id: the client's when it is sane, else a new one. */
static void
request_id(struct exchange *x, const struct sy_http1_msg *head)
{
	const char *given = sy_http1_header(head, "x-request-id");
	size_t i, n;

	if (given != NULL && (n = strlen(given)) > 0 && n < sizeof x->req.id) {
		for (i = 0; i < n; i++)
			if (!((given[i] >= 'a' && given[i] <= 'z') ||
			    (given[i] >= 'A' && given[i] <= 'Z') ||
			    (given[i] >= '0' && given[i] <= '9') ||
			    given[i] == '-' || given[i] == '_' || given[i] == '.'))
				break;
		if (i == n) {
			memcpy(x->req.id, given, n + 1);
			return;
		}
	}
	new_request_id(x->w, x->req.id, sizeof x->req.id);
}

void
sy_pipeline_reject(void *arg, int status, const char *method,
    const char *target, const char *message, uint64_t bytes_out)
{
	struct sy_worker *w = arg;
	struct sy_record rec;
	char id[40];

	memset(&rec, 0, sizeof rec);
	new_request_id(w, id, sizeof id);
	rec.time_us = sy_wall_us();
	rec.request_id = id;
	rec.method = method;
	rec.path = target;
	rec.client_api = "openai";
	rec.status = status;
	rec.usage.prompt_tokens = rec.usage.completion_tokens =
	    rec.usage.cached_tokens = -1;
	rec.cost_usd = -1;
	rec.ttft_us = -1;
	rec.bytes_out = bytes_out;
	rec.error = message;
	sy_accesslog_write(w->rt->log, &rec);
	sy_metrics_record(w->metrics, &rec);
}

static const struct {
	const char *path;
	enum sy_api api;
} api_paths[] = {
	{ "/v1/chat/completions", SY_API_CHAT },
	{ "/v1/completions", SY_API_COMPLETIONS },
	{ "/v1/embeddings", SY_API_EMBEDDINGS }
};

void
sy_pipeline_handle(struct sy_conn *c, const struct sy_http1_msg *head,
    struct evbuffer *body, void *arg)
{
	struct sy_worker *w = arg;
	struct exchange *x = sy_xcalloc(1, sizeof *x);
	struct sy_req *req = &x->req;
	size_t i, plen;
	int get, post;

	x->w = w;
	x->conn = c;
	req->t_arrival = sy_now_us();
	req->wall_arrival = sy_wall_us();
	req->cfg = sy_config_ref(w->cfg);
	req->head = head;
	req->client_api = "openai";
	req->bytes_in = evbuffer_get_length(body);
	req->usage.prompt_tokens = req->usage.completion_tokens =
	    req->usage.cached_tokens = -1;
	snprintf(x->method, sizeof x->method, "%s", head->method);
	plen = strcspn(head->target, "?");
	x->path = strndup(head->target, plen);
	request_id(x, head);
	snprintf(x->headers, sizeof x->headers, "X-Request-Id: %s\r\n", req->id);
	sy_conn_set_owner(c, x, client_gone, client_drained);
	get = strcmp(head->method, "GET") == 0 || strcmp(head->method, "HEAD") == 0;
	post = strcmp(head->method, "POST") == 0;

	for (i = 0; i < sizeof api_paths / sizeof api_paths[0]; i++) {
		if (strcmp(x->path, api_paths[i].path) != 0)
			continue;
		if (!post) {
			fail(x, 405, "invalid_request_error", "method_not_allowed",
			    "use POST for this path", "Allow: POST\r\n");
			return;
		}
		proxy(x, api_paths[i].api, body);
		return;
	}
	if (strcmp(x->path, "/v1/models") == 0 || strcmp(x->path, "/healthz") == 0) {
		if (!get) {
			fail(x, 405, "invalid_request_error", "method_not_allowed",
			    "use GET for this path", "Allow: GET, HEAD\r\n");
			return;
		}
		if (x->path[1] == 'v') {
			list_models(x);
			return;
		}
		respond_text(x, 200, "{\"status\":\"ok\"}");
		return;
	}
	fail(x, 404, "invalid_request_error", "not_found",
	    "no such path; switchyard serves /v1/chat/completions, "
	    "/v1/completions, /v1/embeddings and /v1/models", NULL);
}
