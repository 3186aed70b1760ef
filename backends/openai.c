/* openai: OpenAI-compatible servers (vLLM, SGLang, llama.cpp, LM Studio, OpenAI), forwarded with the fewest changes. */
#include <string.h>

#include <event2/buffer.h>

#include "backend.h"
#include "req.h"
#include "sse.h"
#include "util.h"

static const char *api_paths[] = {
	"/chat/completions", "/completions", "/embeddings"
};

int
sy_openai_usage(const json_t *obj, struct sy_usage *u)
{
	json_t *usage, *v, *details;

	usage = json_object_get(obj, "usage");
	if (!json_is_object(usage))
		return 0;
	if (json_is_integer(v = json_object_get(usage, "prompt_tokens")))
		u->prompt_tokens = json_integer_value(v);
	if (json_is_integer(v = json_object_get(usage, "completion_tokens")))
		u->completion_tokens = json_integer_value(v);
	details = json_object_get(usage, "prompt_tokens_details");
	if (json_is_integer(v = json_object_get(details, "cached_tokens")))
		u->cached_tokens = json_integer_value(v);
	return 1;
}

/*
 * The body goes out as the client sent it unless the model was renamed or
 * a stream lacks include_usage; then a shallow copy is re-serialised.
 */
static int
openai_encode(const struct sy_req *req, struct evbuffer *out,
    const char **path, char **err)
{
	int rename = strcmp(req->model, req->client_model) != 0;
	int add_usage = req->stream && !req->client_wants_usage;
	json_t *copy, *opts;
	char *text;

	*path = api_paths[req->api];
	if (!rename && !add_usage) {
		evbuffer_add(out, evbuffer_pullup(req->raw, -1),
		    evbuffer_get_length(req->raw));
		return 0;
	}
	copy = json_copy(req->body);
	if (rename)
		json_object_set_new(copy, "model", json_string(req->model));
	if (add_usage) {
		opts = json_object_get(copy, "stream_options");
		opts = json_is_object(opts) ? json_copy(opts) : json_object();
		json_object_set_new(opts, "include_usage", json_true());
		json_object_set_new(copy, "stream_options", opts);
	}
	text = json_dumps(copy, JSON_COMPACT);
	json_decref(copy);
	if (text == NULL) {
		*err = sy_xstrdup("request could not be encoded");
		return -1;
	}
	evbuffer_add(out, text, strlen(text));
	free(text);
	return 0;
}

/* Whether obj is OpenAI's error shape: {"error": {...}}. */
static int
is_error_body(const json_t *obj)
{
	return json_is_object(json_object_get(obj, "error"));
}

/*
 * Wraps a backend error that is not in OpenAI's shape (an HTML page from a
 * proxy, a plain-text 503) into one, keeping a bit of its text.
 */
static void
wrap_error(int status, struct evbuffer *body, struct evbuffer *out)
{
	size_t len = evbuffer_get_length(body);
	const char *type = status == 429 ? "rate_limit_error" :
	    status >= 500 ? "server_error" : "invalid_request_error";

	evbuffer_add_printf(out, "{\"error\":{\"message\":\"backend returned "
	    "HTTP %d", status);
	if (len > 0) {
		SY_ADD_LIT(out, ": ");
		sy_json_escape(out, (const char *)evbuffer_pullup(body, -1),
		    len < 200 ? len : 200);
	}
	evbuffer_add_printf(out, "\",\"type\":\"%s\",\"code\":%d}}", type,
	    status);
	evbuffer_drain(body, len);
}

static int
openai_decode(const struct sy_req *req, int status, struct evbuffer *body,
    struct evbuffer *out, struct sy_usage *usage, char **err)
{
	size_t len = evbuffer_get_length(body);
	json_t *obj;

	obj = json_loadb((const char *)evbuffer_pullup(body, -1), len, 0, NULL);
	if (status >= 400 && !is_error_body(obj)) {
		json_decref(obj);
		wrap_error(status, body, out);
		return 0;
	}
	if (obj == NULL || !json_is_object(obj)) {
		json_decref(obj);
		*err = sy_xstrdup("backend returned a body that is not a JSON object");
		return -1;
	}
	if (status < 400)
		sy_openai_usage(obj, usage);
	json_decref(obj);
	evbuffer_add_buffer(out, body);
	return 0;
}

/*
 * Whether an event's data may hold usage or an error: most chunks carry
 * one token and neither, and are relayed without being parsed.
 */
static int
mentions_usage_or_error(const struct sy_sse_event *ev)
{
	return memmem(ev->data, ev->data_len, "\"usage\"", 7) != NULL ||
	    memmem(ev->data, ev->data_len, "\"error\"", 7) != NULL;
}

static enum sy_stream_verdict
openai_stream_event(const struct sy_req *req, const struct sy_sse_event *ev,
    struct evbuffer *out, struct sy_usage *usage)
{
	enum sy_stream_verdict verdict = SY_STREAM_FORWARD;
	json_t *obj, *choices;

	if (ev->data != NULL && strcmp(ev->data, "[DONE]") == 0)
		verdict = SY_STREAM_DONE;
	else if (ev->data != NULL && mentions_usage_or_error(ev) &&
	    (obj = json_loadb(ev->data, ev->data_len, 0, NULL)) != NULL) {
		if (is_error_body(obj))
			verdict = SY_STREAM_ERROR;
		else if (sy_openai_usage(obj, usage)) {
			choices = json_object_get(obj, "choices");
			/* The usage chunk we asked for on the client's behalf. */
			if (!req->client_wants_usage && json_is_array(choices) &&
			    json_array_size(choices) == 0)
				verdict = SY_STREAM_DROP;
		}
		json_decref(obj);
	}
	if (verdict != SY_STREAM_DROP)
		evbuffer_add(out, ev->raw, ev->raw_len);
	return verdict;
}

const struct sy_backend_kind sy_backend_openai = {
	.name = "openai",
	.encode = openai_encode,
	.decode = openai_decode,
	.stream_event = openai_stream_event,
	.health_path = "/models"
};
