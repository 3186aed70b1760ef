/* The front stage: the path and method, the client's dialect, its request in the canonical form; and the paths that are answered here (models, health). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "clientapi.h"
#include "config.h"
#include "exchange.h"
#include "http1.h"
#include "inflate.h"
#include "models.h"
#include "tokenize.h"
#include "util.h"
#include "worker.h"

/* Paths answered without a backend's answer to the request itself. */
enum front_path { PATH_MODELS, PATH_HEALTH };

static const struct {
	const char *path;
	enum front_path what;
} get_paths[] = {
	{ "/v1/models", PATH_MODELS },
	{ "/healthz", PATH_HEALTH }
};

/* Where the path names one model (GET /v1/models/{id}): the id, else NULL. */
static const char *
model_id(const struct sy_exchange *x)
{
	static const char prefix[] = "/v1/models/";

	if (strncmp(x->req.path, prefix, sizeof prefix - 1) != 0 ||
	    x->req.path[sizeof prefix - 1] == '\0')
		return NULL;
	return x->req.path + sizeof prefix - 1;
}

/* Appends the model object of name (len bytes) in OpenAI's or Anthropic's shape. */
static void
model_object(struct evbuffer *out, const char *name, size_t len,
    int anthropic)
{
	if (anthropic) {
		SY_ADD_LIT(out, "{\"type\":\"model\",\"id\":\"");
		sy_json_escape(out, name, len);
		SY_ADD_LIT(out, "\",\"display_name\":\"");
		sy_json_escape(out, name, len);
		SY_ADD_LIT(out, "\",\"created_at\":\"1970-01-01T00:00:00Z\"}");
		return;
	}
	SY_ADD_LIT(out, "{\"id\":\"");
	sy_json_escape(out, name, len);
	SY_ADD_LIT(out, "\",\"object\":\"model\",\"created\":0,"
	    "\"owned_by\":\"switchyard\"}");
}

/*
 * The reply to GET /v1/models (names, a JSON array, as a list) or to GET
 * /v1/models/{id} (the one model, or a 404), in Anthropic's shape for
 * clients that send anthropic-version, else OpenAI's.
 */
static void
models_reply(struct sy_exchange *x, json_t *names)
{
	int anthropic = x->client == &sy_client_anthropic;
	const char *id = model_id(x);
	struct evbuffer *body = evbuffer_new();
	json_t *v;
	size_t i, n = json_array_size(names);
	char msg[400];

	if (id != NULL) {
		json_array_foreach(names, i, v)
			if (strcmp(json_string_value(v), id) == 0)
				break;
		if (i == n) {
			evbuffer_free(body);
			snprintf(msg, sizeof msg, "The model '%.300s' does not "
			    "exist", id);
			sy_exchange_fail(x, 404, "invalid_request_error",
			    "model_not_found", msg, NULL);
			return;
		}
		model_object(body, id, strlen(id), anthropic);
		sy_exchange_reply(x, 200, body, NULL);
		x->reply.native = 1;
		return;
	}
	if (anthropic)
		SY_ADD_LIT(body, "{\"data\":[");
	else
		SY_ADD_LIT(body, "{\"object\":\"list\",\"data\":[");
	json_array_foreach(names, i, v) {
		if (i > 0)
			SY_ADD_LIT(body, ",");
		model_object(body, json_string_value(v), json_string_length(v),
		    anthropic);
	}
	SY_ADD_LIT(body, "]");
	if (anthropic) {
		SY_ADD_LIT(body, ",\"has_more\":false,\"first_id\":");
		for (i = 0; i < 2; i++) {
			v = json_array_get(names, i == 0 ? 0 : n - 1);
			if (v == NULL)
				SY_ADD_LIT(body, "null");
			else {
				SY_ADD_LIT(body, "\"");
				sy_json_escape(body, json_string_value(v),
				    json_string_length(v));
				SY_ADD_LIT(body, "\"");
			}
			if (i == 0)
				SY_ADD_LIT(body, ",\"last_id\":");
		}
	}
	SY_ADD_LIT(body, "}");
	sy_exchange_reply(x, 200, body, NULL);
	x->reply.native = 1;
}

/* The backends told their models (sy_models_collect's callback). */
static void
models_told(void *arg, json_t *names)
{
	struct sy_exchange *x = arg;

	x->front.models = NULL;
	models_reply(x, names);
	sy_drive(x, SY_RESPOND);
}

/*
 * GET /v1/models: the models this config serves, and on routes that take
 * any model those their backends report (then the stage waits for them).
 */
static enum sy_verdict
list_models(struct sy_exchange *x)
{
	json_t *names;

	x->front.models = sy_models_collect(x->w->upstream, x->req.cfg,
	    models_told, x);
	if (x->front.models != NULL)
		return SY_WAIT;
	names = sy_config_model_names(x->req.cfg);
	models_reply(x, names);
	json_decref(names);
	return SY_RESPOND;
}

/* A path answered here; *verdict set when path is one. */
static int
get_path(struct sy_exchange *x, const char *path, enum sy_verdict *verdict)
{
	const char *m = x->req.method;
	struct evbuffer *body;
	size_t i;

	for (i = 0; i < sizeof get_paths / sizeof get_paths[0]; i++) {
		if (strcmp(path, get_paths[i].path) != 0 &&
		    (get_paths[i].what != PATH_MODELS || model_id(x) == NULL))
			continue;
		if (get_paths[i].what == PATH_MODELS &&
		    sy_http1_header(x->req.head, "anthropic-version") != NULL) {
			x->client = &sy_client_anthropic;
			x->req.client_api = x->client->name;
		}
		if (strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0)
			*verdict = sy_exchange_fail(x, 405, NULL,
			    "method_not_allowed", "use GET for this path",
			    "Allow: GET, HEAD\r\n");
		else if (get_paths[i].what == PATH_MODELS)
			*verdict = list_models(x);
		else {
			body = evbuffer_new();
			SY_ADD_LIT(body, "{\"status\":\"ok\"}");
			sy_exchange_reply(x, 200, body, NULL);
			*verdict = SY_RESPOND;
		}
		return 1;
	}
	return 0;
}

/*
 * Decodes a body sent with a Content-Encoding, in place, under the limits'
 * size and ratio caps.  Returns 0, or -1 after setting the client's error
 * (415 for another encoding, 413 past a cap, 400 for a corrupt body).
 */
static int
decode_body(struct sy_exchange *x)
{
	const struct sy_limits *lim = &x->req.cfg->limits;

	switch (sy_inflate_body(x->req.raw, sy_http1_header(x->req.head,
	    "content-encoding"), lim->max_body_bytes, lim->max_inflate_ratio)) {
	case SY_INFLATE_OK:
		return 0;
	case SY_INFLATE_UNSUPPORTED:
		sy_exchange_fail(x, 415, "invalid_request_error",
		    "unsupported_content_encoding", lim->max_inflate_ratio ?
		    "Content-Encoding must be gzip, deflate or identity" :
		    "encoded request bodies are not accepted (send identity)",
		    NULL);
		return -1;
	case SY_INFLATE_TOO_LARGE:
		sy_exchange_fail(x, 413, "invalid_request_error",
		    "body_too_large", "decompressed request body is larger "
		    "than the limit (max_body_bytes or max_inflate_ratio)",
		    NULL);
		return -1;
	case SY_INFLATE_CORRUPT:
		break;
	}
	sy_exchange_fail(x, 400, "invalid_request_error", "bad_request",
	    "request body is not valid for its Content-Encoding", NULL);
	return -1;
}

/* The count_tokens answer: tokens, counted by source ("backend", "estimate"). */
static void
count_reply(struct sy_exchange *x, int64_t tokens, const char *source)
{
	struct evbuffer *out = evbuffer_new();
	char headers[64];

	evbuffer_add_printf(out, "{\"input_tokens\":%lld}", (long long)tokens);
	snprintf(headers, sizeof headers, "x-switchyard-token-count: %s\r\n",
	    source);
	sy_exchange_reply(x, 200, out, headers);
	x->reply.native = 1;
}

/* The backend's tokenizer answered (sy_tokenize_start's callback). */
static void
counted(void *arg, int64_t tokens, const struct sy_endpoint *ep)
{
	struct sy_exchange *x = arg;
	char msg[300];

	x->front.tokenize = NULL;
	if (tokens >= 0)
		count_reply(x, tokens, "backend");
	else {
		snprintf(msg, sizeof msg, "tokenizer of %s did not answer: "
		    "the estimate instead", ep->name);
		sy_exchange_error(x, msg);
		count_reply(x, x->front.estimate, "estimate");
	}
	sy_drive(x, SY_RESPOND);
}

/*
 * POST /v1/messages/count_tokens: the input tokens of an Anthropic
 * request, counted by the tokenizer of a backend serving its model when
 * one has one (the stage waits for it), else the gateway's estimate; a
 * header says which.
 */
static enum sy_verdict
count_tokens(struct sy_exchange *x)
{
	struct evbuffer *body = x->req.raw;
	size_t len;
	char *err = NULL;
	json_t *canon;

	x->client = &sy_client_anthropic;
	x->req.client_api = x->client->name;
	if (strcmp(x->req.method, "POST") != 0)
		return sy_exchange_fail(x, 405, "invalid_request_error",
		    "method_not_allowed", "use POST for this path",
		    "Allow: POST\r\n");
	if (decode_body(x) != 0)
		return SY_RESPOND;
	len = evbuffer_get_length(body);
	canon = sy_count_canon(x->client, len ? (const char *)evbuffer_pullup(
	    body, -1) : "", len, &err);
	if (canon == NULL) {
		sy_exchange_fail(x, 400, "invalid_request_error", NULL, err,
		    NULL);
		free(err);
		return SY_RESPOND;
	}
	x->front.estimate = sy_count_estimate(canon);
	x->front.tokenize = sy_tokenize_start(x->w->upstream, x->req.cfg,
	    canon, counted, x);
	json_decref(canon);
	if (x->front.tokenize != NULL)
		return SY_WAIT;
	count_reply(x, x->front.estimate, "estimate");
	return SY_RESPOND;
}

/*
 * The request in the client's dialect as the canonical form: the body
 * itself for OpenAI's, a translation for the others.  Returns 0, or -1
 * after setting a 400 reply.
 */
static int
to_canonical(struct sy_exchange *x, struct evbuffer *body)
{
	size_t len = evbuffer_get_length(body);
	json_t *canon;
	char *err = NULL, *text;

	if (x->client->request == NULL)
		return 0;
	canon = x->client->request(len ? (const char *)evbuffer_pullup(body,
	    -1) : "", len, &err);
	if (canon == NULL) {
		sy_exchange_fail(x, 400, "invalid_request_error", NULL, err,
		    NULL);
		free(err);
		return -1;
	}
	text = json_dumps(canon, JSON_COMPACT);
	json_decref(canon);
	x->front.canon = evbuffer_new();
	if (text != NULL)
		evbuffer_add(x->front.canon, text, strlen(text));
	free(text);
	x->req.raw = x->front.canon;
	return 0;
}

/*
 * A CORS preflight (OPTIONS from an allowed origin): a 204 with the
 * methods, headers and max age allowed (the origin's headers come with
 * every answer).  SY_NEXT when CORS does not allow it.
 */
static enum sy_verdict
preflight(struct sy_exchange *x)
{
	char *lines = sy_cors_preflight(&x->req.cfg->cors,
	    sy_http1_header(x->req.head, "Origin"),
	    sy_http1_header(x->req.head, "Access-Control-Request-Headers"));

	if (lines == NULL)
		return SY_NEXT;
	free(x->respond.more_headers);
	x->respond.more_headers = lines;
	sy_exchange_reply(x, 204, evbuffer_new(), NULL);
	x->reply.native = 1;
	return SY_RESPOND;
}

static enum sy_verdict
front_enter(struct sy_exchange *x)
{
	struct sy_req *req = &x->req;
	struct evbuffer *body = req->raw;
	const struct sy_client_api *client;
	enum sy_verdict v;
	enum sy_api api;
	char *err = NULL, paths[256], msg[400];
	int status;

	if (strcmp(x->req.method, "OPTIONS") == 0 && (v = preflight(x)) !=
	    SY_NEXT)
		return v;
	if (get_path(x, x->req.path, &v))
		return v;
	if (strcmp(x->req.path, "/v1/messages/count_tokens") == 0)
		return count_tokens(x);
	if (strncmp(x->req.path, "/v1/responses/", 14) == 0 &&
	    x->req.path[14] != '\0') {
		/* A stored response: the thread stage answers, after auth. */
		x->client = &sy_client_responses;
		req->client_api = x->client->name;
		if (strcmp(x->req.method, "GET") != 0 &&
		    strcmp(x->req.method, "DELETE") != 0)
			return sy_exchange_fail(x, 405, "invalid_request_error",
			    "method_not_allowed", "use GET or DELETE for this "
			    "path", "Allow: GET, DELETE\r\n");
		return SY_NEXT;
	}
	if ((client = sy_client_api_for(x->req.path, &api)) == NULL) {
		sy_client_api_paths(paths, sizeof paths);
		snprintf(msg, sizeof msg, "no such path; switchyard serves %s, "
		    "/v1/messages/count_tokens and /v1/models", paths);
		return sy_exchange_fail(x, 404, "invalid_request_error",
		    "not_found", msg, NULL);
	}
	x->client = client;
	req->client_api = client->name;
	if (strcmp(x->req.method, "POST") != 0)
		return sy_exchange_fail(x, 405, "invalid_request_error",
		    "method_not_allowed", "use POST for this path",
		    "Allow: POST\r\n");
	req->api = api;
	if (decode_body(x) != 0)
		return SY_RESPOND;
	x->front.client = body;
	if (to_canonical(x, body) != 0)
		return SY_RESPOND;
	if (sy_req_parse(req, req->raw, req->cfg->limits.max_json_depth,
	    &status, &err) != 0) {
		sy_exchange_fail(x, status, "invalid_request_error", NULL, err,
		    NULL);
		free(err);
		return SY_RESPOND;
	}
	return SY_NEXT;
}

static void
front_end(struct sy_exchange *x)
{
	sy_models_cancel(x->front.models);
	sy_tokenize_cancel(x->front.tokenize);
	if (x->front.canon != NULL)
		evbuffer_free(x->front.canon);
}

const struct sy_stage sy_stage_front = {
	.name = "front",
	.enter = front_enter,
	.end = front_end
};
