/* openai_responses: servers that speak OpenAI's Responses API (POST /responses: hosted OpenAI, and engines that serve it), spoken for the canonical chat completions, whole answers and streams. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "backend.h"
#include "canon.h"
#include "config.h"
#include "framing.h"
#include "jscan.h"
#include "req.h"
#include "sse.h"
#include "util.h"

/* The end of the message for a field this backend cannot express. */
#define UNSUPPORTED " is not supported by the openai_responses backend"

/* Whether v is absent or JSON null. */
static int
absent(const json_t *v)
{
	return v == NULL || json_is_null(v);
}

/* ==== Requests ==== */

/*
 * The Responses content of a chat message's content v (a string, or an
 * array of text and image_url parts) for role: a string stays a string,
 * parts become input_text / input_image (output_text for the assistant).
 * Returns a new reference, or NULL with *err set; m names the message.
 */
static json_t *
content_of(const json_t *v, const char *role, size_t m, char **err)
{
	int assistant = strcmp(role, "assistant") == 0;
	json_t *parts, *p, *url, *detail, *out;
	const char *type;
	size_t i;

	if (json_is_string(v))
		return json_incref((json_t *)v);
	if (absent(v))
		return json_string("");
	if (!json_is_array(v)) {
		sy_fail(err, "'messages[%zu].content' must be a string or an "
		    "array of content parts", m);
		return NULL;
	}
	parts = json_array();
	json_array_foreach(v, i, p) {
		type = json_string_value(json_object_get(p, "type"));
		if (type != NULL && strcmp(type, "text") == 0 &&
		    json_is_string(json_object_get(p, "text"))) {
			json_array_append_new(parts, json_pack("{s:s,s:O}",
			    "type", assistant ? "output_text" : "input_text",
			    "text", json_object_get(p, "text")));
			continue;
		}
		url = json_object_get(json_object_get(p, "image_url"), "url");
		if (type != NULL && strcmp(type, "image_url") == 0 &&
		    json_is_string(url) && !assistant) {
			out = json_pack("{s:s,s:O}", "type", "input_image",
			    "image_url", url);
			detail = json_object_get(json_object_get(p, "image_url"),
			    "detail");
			if (json_is_string(detail))
				json_object_set(out, "detail", detail);
			json_array_append_new(parts, out);
			continue;
		}
		json_decref(parts);
		sy_fail(err, "'messages[%zu].content[%zu]' of type '%s'"
		    UNSUPPORTED, m, i, type != NULL ? type : "");
		return NULL;
	}
	return parts;
}

/* The text of a tool message's content v, for function_call_output. */
static json_t *
tool_output(const json_t *v)
{
	struct evbuffer *b;
	json_t *s;

	if (json_is_string(v))
		return json_incref((json_t *)v);
	b = evbuffer_new();
	sy_canon_text(b, v);
	s = json_stringn((const char *)evbuffer_pullup(b, -1),
	    evbuffer_get_length(b));
	evbuffer_free(b);
	return s;
}

/* Appends the function_call items of an assistant message's tool_calls. */
static int
call_items(json_t *input, const json_t *calls, size_t m, char **err)
{
	json_t *call, *fn, *id, *name, *args;
	size_t i;

	json_array_foreach(calls, i, call) {
		fn = json_object_get(call, "function");
		id = json_object_get(call, "id");
		name = json_object_get(fn, "name");
		args = json_object_get(fn, "arguments");
		if (!json_is_string(id) || !json_is_string(name))
			return sy_fail(err, "'messages[%zu].tool_calls[%zu]' "
			    "needs a string 'id' and 'function.name'", m, i);
		json_array_append_new(input, json_pack("{s:s,s:O,s:O,s:o}",
		    "type", "function_call", "call_id", id, "name", name,
		    "arguments", json_is_string(args) ? json_incref(args) :
		    json_string("{}")));
	}
	return 0;
}

/* The input items of the chat messages msgs; NULL with *err set. */
static json_t *
input_items(const json_t *msgs, char **err)
{
	json_t *input = json_array(), *msg, *content, *calls;
	const char *role;
	size_t i;

	json_array_foreach(msgs, i, msg) {
		role = json_string_value(json_object_get(msg, "role"));
		if (role == NULL) {
			sy_fail(err, "'messages[%zu].role' must be a string", i);
			goto fail;
		}
		if (strcmp(role, "tool") == 0) {
			if (!json_is_string(json_object_get(msg, "tool_call_id"))) {
				sy_fail(err, "'messages[%zu].tool_call_id' must "
				    "be a string", i);
				goto fail;
			}
			json_array_append_new(input, json_pack("{s:s,s:O,s:o}",
			    "type", "function_call_output", "call_id",
			    json_object_get(msg, "tool_call_id"), "output",
			    tool_output(json_object_get(msg, "content"))));
			continue;
		}
		if (strcmp(role, "user") != 0 && strcmp(role, "assistant") != 0 &&
		    strcmp(role, "system") != 0 && strcmp(role, "developer") != 0) {
			sy_fail(err, "'messages[%zu].role' '%s'" UNSUPPORTED, i,
			    role);
			goto fail;
		}
		calls = json_object_get(msg, "tool_calls");
		content = json_object_get(msg, "content");
		/* An assistant turn of tool calls alone has no message item. */
		if (!(json_array_size(calls) > 0 && (absent(content) ||
		    (json_is_string(content) && json_string_length(content) ==
		    0)))) {
			if ((content = content_of(content, role, i, err)) == NULL)
				goto fail;
			json_array_append_new(input, json_pack("{s:s,s:s,s:o}",
			    "type", "message", "role", role, "content", content));
		}
		if (call_items(input, calls, i, err) != 0)
			goto fail;
	}
	return input;
fail:
	json_decref(input);
	return NULL;
}

/* Function tools in the Responses shape (name at the top); -1 on others. */
static int
map_tools(const json_t *body, json_t *out, char **err)
{
	json_t *tools = json_object_get(body, "tools");
	json_t *choice = json_object_get(body, "tool_choice"), *list, *t, *fn,
	    *v, *name;
	const char *type;
	size_t i;

	if (json_array_size(tools) > 0) {
		list = json_array();
		json_array_foreach(tools, i, t) {
			type = json_string_value(json_object_get(t, "type"));
			fn = json_object_get(t, "function");
			if (type == NULL || strcmp(type, "function") != 0 ||
			    !json_is_string(json_object_get(fn, "name"))) {
				json_decref(list);
				return sy_fail(err, "'tools[%zu]' of type '%s'"
				    UNSUPPORTED, i, type != NULL ? type : "");
			}
			v = json_pack("{s:s,s:O}", "type", "function", "name",
			    json_object_get(fn, "name"));
			if (!absent(json_object_get(fn, "description")))
				json_object_set(v, "description",
				    json_object_get(fn, "description"));
			if (!absent(json_object_get(fn, "parameters")))
				json_object_set(v, "parameters",
				    json_object_get(fn, "parameters"));
			if (!absent(json_object_get(fn, "strict")))
				json_object_set(v, "strict",
				    json_object_get(fn, "strict"));
			json_array_append_new(list, v);
		}
		json_object_set_new(out, "tools", list);
	}
	if (json_is_string(choice))
		json_object_set(out, "tool_choice", choice);
	else if (json_is_object(choice)) {
		name = json_object_get(json_object_get(choice, "function"),
		    "name");
		if (!json_is_string(name))
			return sy_fail(err, "'tool_choice.function.name' must be "
			    "a string");
		json_object_set_new(out, "tool_choice", json_pack("{s:s,s:O}",
		    "type", "function", "name", name));
	}
	if (json_is_boolean(v = json_object_get(body, "parallel_tool_calls")))
		json_object_set(out, "parallel_tool_calls", v);
	return 0;
}

/* response_format as text.format: json_schema flattened, json_object as is. */
static int
map_format(const json_t *body, json_t *out, char **err)
{
	json_t *rf = json_object_get(body, "response_format"), *js, *f;
	const char *type = json_string_value(json_object_get(rf, "type"));
	const char *keys[] = { "name", "schema", "strict", "description" };
	size_t i;

	if (absent(rf) || (type != NULL && strcmp(type, "text") == 0))
		return 0;
	if (type != NULL && strcmp(type, "json_object") == 0) {
		json_object_set_new(out, "text", json_pack("{s:{s:s}}",
		    "format", "type", "json_object"));
		return 0;
	}
	js = json_object_get(rf, "json_schema");
	if (type == NULL || strcmp(type, "json_schema") != 0 ||
	    !json_is_object(js))
		return sy_fail(err, "'response_format' of type '%s'"
		    UNSUPPORTED, type != NULL ? type : "");
	f = json_pack("{s:s}", "type", "json_schema");
	for (i = 0; i < sizeof keys / sizeof keys[0]; i++)
		if (!absent(json_object_get(js, keys[i])))
			json_object_set(f, keys[i], json_object_get(js, keys[i]));
	json_object_set_new(out, "text", json_pack("{s:o}", "format", f));
	return 0;
}

/* The sampling and other options; refuses those that change the answer's shape. */
static int
map_options(const json_t *body, json_t *out, char **err)
{
	static const char *const same[] = {
		"temperature", "top_p", "user", "metadata", "service_tier",
		"prompt_cache_key", "safety_identifier"
	};
	json_t *v;
	size_t i;

	v = json_object_get(body, "n");
	if (!absent(v) && !(json_is_integer(v) && json_integer_value(v) == 1))
		return sy_fail(err, "'n' other than 1" UNSUPPORTED);
	if (json_is_true(json_object_get(body, "logprobs")) ||
	    !absent(json_object_get(body, "top_logprobs")))
		return sy_fail(err, "'logprobs'" UNSUPPORTED);
	if (!absent(json_object_get(body, "stop")))
		return sy_fail(err, "'stop'" UNSUPPORTED);
	if (absent(v = json_object_get(body, "max_completion_tokens")))
		v = json_object_get(body, "max_tokens");
	if (!absent(v))
		json_object_set(out, "max_output_tokens", v);
	for (i = 0; i < sizeof same / sizeof same[0]; i++)
		if (!absent(v = json_object_get(body, same[i])))
			json_object_set(out, same[i], v);
	if (json_is_string(v = json_object_get(body, "reasoning_effort")))
		json_object_set_new(out, "reasoning", json_pack("{s:O}",
		    "effort", v));
	return 0;
}

/*
 * The canonical chat request as a Responses request: the messages as input
 * items, the served model, store false (the gateway keeps no state on the
 * backend), and stream when streamed (Responses streams carry usage).
 */
static int
responses_encode(const struct sy_req *req, const struct sy_endpoint *ep,
    struct evbuffer *out, struct sy_upstream_req *up, char **err)
{
	json_t *body = sy_req_body(req), *doc, *input;

	*sy_put_str(up->path, "/responses") = '\0';
	sy_backend_bearer(ep, up->headers, sizeof up->headers);
	if (req->api != SY_API_CHAT)
		return sy_fail(err, "only chat requests are served by the "
		    "openai_responses backend");
	if ((input = input_items(json_object_get(body, "messages"), err)) ==
	    NULL)
		return -1;
	doc = json_pack("{s:s,s:o,s:b}", "model", req->model, "input", input,
	    "store", 0);
	if (map_tools(body, doc, err) != 0 || map_format(body, doc, err) != 0 ||
	    map_options(body, doc, err) != 0) {
		json_decref(doc);
		return -1;
	}
	if (req->stream)
		json_object_set_new(doc, "stream", json_true());
	if (sy_json_add(out, doc) != 0)
		return sy_fail(err, "request could not be encoded");
	return 0;
}

/* ==== Answers ==== */

/* The usage of a Responses usage object into u. */
static void
usage_read(const json_t *usage, struct sy_usage *u)
{
	json_t *v;

	if (json_is_integer(v = json_object_get(usage, "input_tokens")))
		u->prompt_tokens = json_integer_value(v);
	if (json_is_integer(v = json_object_get(usage, "output_tokens")))
		u->completion_tokens = json_integer_value(v);
	v = json_object_get(json_object_get(usage, "input_tokens_details"),
	    "cached_tokens");
	if (json_is_integer(v))
		u->cached_tokens = json_integer_value(v);
}

/* The chat finish reason of a response object resp. */
static const char *
finish_of(const json_t *resp, int calls)
{
	const char *status = json_string_value(json_object_get(resp, "status"));
	const char *why = json_string_value(json_object_get(json_object_get(
	    resp, "incomplete_details"), "reason"));

	if (status != NULL && strcmp(status, "incomplete") == 0)
		return why != NULL && strcmp(why, "content_filter") == 0 ?
		    "content_filter" : "length";
	return calls ? "tool_calls" : "stop";
}

/* The error object of a failed response, as OpenAI's chat error. */
static json_t *
error_of(const json_t *resp)
{
	const json_t *e = json_object_get(resp, "error");
	const char *msg = json_string_value(json_object_get(e, "message"));
	const char *code = json_string_value(json_object_get(e, "code"));

	return json_pack("{s:s,s:s,s:s?}", "message", msg != NULL ? msg :
	    "the backend's response failed", "type", "server_error", "code",
	    code);
}

/*
 * The assistant message of a response's output items: the output_text of
 * its message items joined, refusals as refusal, function calls as
 * tool_calls; *calls says how many.  Returns a new object.
 */
static json_t *
message_of(const json_t *output, int *calls)
{
	struct evbuffer *text = evbuffer_new(), *refusal = evbuffer_new();
	json_t *msg = json_pack("{s:s}", "role", "assistant"), *tools =
	    json_array(), *item, *part, *v;
	const char *type, *ptype;
	size_t i, j;

	json_array_foreach(output, i, item) {
		type = json_string_value(json_object_get(item, "type"));
		if (type != NULL && strcmp(type, "function_call") == 0) {
			v = json_object_get(item, "arguments");
			json_array_append_new(tools, json_pack(
			    "{s:O,s:s,s:{s:O,s:o}}", "id", json_object_get(item,
			    "call_id"), "type", "function", "function", "name",
			    json_object_get(item, "name"), "arguments",
			    json_is_string(v) ? json_incref(v) :
			    json_string("{}")));
			continue;
		}
		if (type == NULL || strcmp(type, "message") != 0)
			continue;
		json_array_foreach(json_object_get(item, "content"), j, part) {
			ptype = json_string_value(json_object_get(part, "type"));
			if (ptype != NULL && strcmp(ptype, "output_text") == 0 &&
			    json_is_string(v = json_object_get(part, "text")))
				evbuffer_add(text, json_string_value(v),
				    json_string_length(v));
			else if (ptype != NULL && strcmp(ptype, "refusal") == 0 &&
			    json_is_string(v = json_object_get(part, "refusal")))
				evbuffer_add(refusal, json_string_value(v),
				    json_string_length(v));
		}
	}
	*calls = (int)json_array_size(tools);
	if (evbuffer_get_length(text) == 0 && *calls > 0)
		json_object_set_new(msg, "content", json_null());
	else
		json_object_set_new(msg, "content", json_stringn((const char *)
		    evbuffer_pullup(text, -1), evbuffer_get_length(text)));
	if (evbuffer_get_length(refusal) > 0)
		json_object_set_new(msg, "refusal", json_stringn((const char *)
		    evbuffer_pullup(refusal, -1), evbuffer_get_length(refusal)));
	if (*calls > 0)
		json_object_set_new(msg, "tool_calls", tools);
	else
		json_decref(tools);
	evbuffer_free(text);
	evbuffer_free(refusal);
	return msg;
}

/*
 * A whole answer: a response object becomes a chat completion (its id, the
 * served model, its created_at); an error status is relayed as the openai
 * kind relays it (the Responses API's errors are OpenAI's); a response
 * that failed is the backend's failure.
 */
static int
responses_decode(const struct sy_req *req, int status, struct evbuffer *body,
    struct evbuffer *out, struct sy_usage *usage, char **err)
{
	json_t *resp, *msg, *v, *e;
	const char *st;
	int calls;

	if (status >= 400)
		return sy_openai_decode(req, status, body, out, usage, err);
	resp = json_loadb((const char *)evbuffer_pullup(body, -1),
	    evbuffer_get_length(body), 0, NULL);
	if (!json_is_array(json_object_get(resp, "output"))) {
		json_decref(resp);
		return sy_fail(err, "backend returned a body that is not a "
		    "Responses API response");
	}
	st = json_string_value(json_object_get(resp, "status"));
	if (st != NULL && strcmp(st, "failed") == 0) {
		e = error_of(resp);
		sy_fail(err, "backend's response failed: %s",
		    json_string_value(json_object_get(e, "message")));
		json_decref(e);
		json_decref(resp);
		return -1;
	}
	usage_read(json_object_get(resp, "usage"), usage);
	msg = message_of(json_object_get(resp, "output"), &calls);
	v = json_object_get(resp, "created_at");
	sy_json_add(out, json_pack("{s:O?,s:s,s:I,s:s,s:[{s:i,s:o,s:n,s:s}],s:o}",
	    "id", json_object_get(resp, "id"), "object", "chat.completion",
	    "created", json_is_integer(v) ? json_integer_value(v) :
	    (json_int_t)time(NULL),
	    "model", req->model, "choices", "index", 0, "message", msg,
	    "logprobs", "finish_reason", finish_of(resp, calls),
	    "usage", sy_canon_usage_json(usage, SY_USAGE_DETAILS)));
	json_decref(resp);
	evbuffer_drain(body, evbuffer_get_length(body));
	return 0;
}

/* ==== Streams ==== */

/* What a stream's translation keeps between events. */
struct stream {
	json_t *id;			/* the response's id, or "" */
	json_int_t created;		/* every chunk's, when the stream opened */
	struct sy_canon_head head;	/* every chunk's start */
	int ntools;			/* function calls opened so far */
	/* Per output item (by output_index): its tool call index, or -1,
	   and whether deltas brought its text or arguments. */
	int *tool;
	unsigned char *said;
	size_t nitems;
};

/* Sets the start of every chunk of st: its id, created and the served model. */
static void
head_make(struct stream *st, const struct sy_req *req)
{
	char *id = json_dumps(st->id, JSON_ENCODE_ANY);

	sy_canon_head_set(&st->head, id != NULL ? id : "\"\"", id != NULL ?
	    strlen(id) : 2, (long long)st->created, req->model);
	free(id);
}

static void *
responses_stream_open(const struct sy_req *req)
{
	struct stream *st = sy_xcalloc(1, sizeof *st);

	st->id = json_string("");
	st->created = (json_int_t)time(NULL);
	head_make(st, req);
	return st;
}

static void
responses_stream_close(void *state)
{
	struct stream *st = state;

	json_decref(st->id);
	sy_canon_head_free(&st->head);
	free(st->tool);
	free(st->said);
	free(st);
}

/* The slot of output item index (grown as needed); -1 past a sane bound. */
static int
slot_at(struct stream *st, int64_t index, size_t *at)
{
	size_t i, n;

	if (index < 0 || index >= 4096)
		return -1;
	i = (size_t)index;
	if (i >= st->nitems) {
		n = i + 8;
		st->tool = sy_xrealloc(st->tool, n * sizeof *st->tool);
		st->said = sy_xrealloc(st->said, n);
		for (; st->nitems < n; st->nitems++) {
			st->tool[st->nitems] = -1;
			st->said[st->nitems] = 0;
		}
	}
	*at = i;
	return 0;
}

/* As slot_at, for an event's output_index member (a JSON integer). */
static int
item_slot(struct stream *st, const json_t *index, size_t *at)
{
	return json_is_integer(index) ? slot_at(st, json_integer_value(index),
	    at) : -1;
}

/* Appends a chunk with delta (taken) and finish reason (NULL: null). */
static void
chunk(const struct stream *st, json_t *delta, const char *finish,
    struct evbuffer *out)
{
	sy_canon_chunk_begin(out, &st->head);
	sy_json_add(out, delta);
	sy_canon_chunk_end(out, finish);
}

/*
 * The chunk of a text or arguments delta whose JSON string literal is the
 * len bytes at text, for output item at: most events of a stream, written
 * without a tree.
 */
static void
piece_chunk(const struct stream *st, size_t at, const char *text,
    size_t len, struct evbuffer *out)
{
	sy_canon_chunk_begin(out, &st->head);
	if (st->tool[at] >= 0)
		evbuffer_add_printf(out, "{\"tool_calls\":[{\"index\":%d,"
		    "\"function\":{\"arguments\":", st->tool[at]);
	else
		SY_ADD_LIT(out, "{\"content\":");
	evbuffer_add(out, text, len);
	if (st->tool[at] >= 0)
		SY_ADD_LIT(out, "}}]}");
	else
		SY_ADD_LIT(out, "}");
	sy_canon_chunk_end(out, NULL);
}

/* A chunk with a tool call's arguments text args. */
static void
args_chunk(const struct stream *st, int tool, json_t *args,
    struct evbuffer *out)
{
	chunk(st, json_pack("{s:[{s:i,s:{s:O}}]}", "tool_calls", "index",
	    tool, "function", "arguments", args), NULL, out);
}

/* response.output_item.added: a function call opens its tool call. */
static enum sy_stream_verdict
on_item_added(struct stream *st, const json_t *ev, struct evbuffer *out)
{
	const json_t *item = json_object_get(ev, "item");
	const char *type = json_string_value(json_object_get(item, "type"));
	json_t *args = json_object_get(item, "arguments");
	size_t at;

	if (type == NULL || strcmp(type, "function_call") != 0 ||
	    item_slot(st, json_object_get(ev, "output_index"), &at) != 0)
		return SY_STREAM_DROP;
	st->tool[at] = st->ntools++;
	chunk(st, json_pack("{s:[{s:i,s:O?,s:s,s:{s:O?,s:s}}]}",
	    "tool_calls", "index", st->tool[at], "id", json_object_get(item,
	    "call_id"), "type", "function", "function", "name",
	    json_object_get(item, "name"), "arguments", ""), NULL, out);
	if (json_is_string(args) && json_string_length(args) > 0) {
		st->said[at] = 1;
		args_chunk(st, st->tool[at], args, out);
	}
	return SY_STREAM_FORWARD;
}

/*
 * A delta of output text or of a call's arguments; *.done events bring the
 * whole text, sent only when no delta did (a server that sends no deltas).
 */
static enum sy_stream_verdict
on_piece(struct stream *st, const json_t *ev, const char *member, int done,
    struct evbuffer *out)
{
	json_t *v = json_object_get(ev, member);
	size_t at;

	if (!json_is_string(v) || json_string_length(v) == 0 ||
	    item_slot(st, json_object_get(ev, "output_index"), &at) != 0)
		return SY_STREAM_DROP;
	if (done && st->said[at])
		return SY_STREAM_DROP;
	st->said[at] = 1;
	if (st->tool[at] >= 0)
		args_chunk(st, st->tool[at], v, out);
	else
		chunk(st, json_pack("{s:O}", "content", v), NULL, out);
	return SY_STREAM_FORWARD;
}

/* The last event: the finish chunk, the usage chunk when asked, [DONE]. */
static void
on_end(struct stream *st, const struct sy_req *req, const json_t *resp,
    struct evbuffer *out, struct sy_usage *usage)
{
	usage_read(json_object_get(resp, "usage"), usage);
	chunk(st, json_object(), finish_of(resp, st->ntools > 0), out);
	if (req->client_wants_usage) {
		evbuffer_add(out, st->head.text, st->head.len);
		SY_ADD_LIT(out, "[],\"usage\":");
		sy_canon_usage_put(out, usage, SY_USAGE_DETAILS);
		SY_ADD_LIT(out, "}\n\n");
	}
	SY_ADD_LIT(out, "data: [DONE]\n\n");
}

/* An error event for the client: error (taken). */
static enum sy_stream_verdict
on_error(json_t *error, struct evbuffer *out)
{
	SY_ADD_LIT(out, "data: ");
	sy_json_add(out, json_pack("{s:o}", "error", error));
	SY_ADD_LIT(out, "\n\n");
	return SY_STREAM_ERROR;
}

/* Whether the JSON string literal m holds exactly word. */
static int
literal_is(const struct sy_jscan_member *m, const char *word)
{
	size_t n = strlen(word);

	return m->kind == SY_JSON_STRING && m->len == n + 2 &&
	    memcmp(m->value + 1, word, n) == 0;
}

/*
 * The events most of a stream is, read with the JSON scanner and written
 * without a tree: a text or an arguments delta, an event the translation
 * drops (in_progress, content parts, items done), a .done whose text a
 * delta already brought.  Returns 1 with *v set when ev is one of them (or
 * its data is not a JSON object: an error), 0 when the tree reads it.
 */
static int
fast_event(struct stream *st, const struct sy_sse_event *ev,
    struct evbuffer *out, enum sy_stream_verdict *v)
{
	static const char *const dropped[] = {
		"response.in_progress", "response.content_part.added",
		"response.content_part.done", "response.output_item.done"
	};
	struct sy_jscan_member m[3] = {
		{ .key = "type" }, { .key = "delta" }, { .key = "output_index" }
	};
	size_t at, i;
	int have;

	if (sy_jscan(ev->data, ev->data_len, m, 3) != SY_JSON_OBJECT) {
		sy_canon_stream_error(out, "bad_backend_event", "the backend "
		    "sent a stream event that is not a JSON object");
		*v = SY_STREAM_ERROR;
		return 1;
	}
	*v = SY_STREAM_DROP;
	for (i = 0; i < sizeof dropped / sizeof dropped[0]; i++)
		if (literal_is(&m[0], dropped[i]))
			return 1;
	have = m[2].kind == SY_JSON_INTEGER && slot_at(st,
	    sy_jscan_integer(m[2].value, m[2].len), &at) == 0;
	if (have && st->said[at] &&
	    (literal_is(&m[0], "response.output_text.done") ||
	    literal_is(&m[0], "response.function_call_arguments.done")))
		return 1;
	if (!have || m[1].kind != SY_JSON_STRING || m[1].len <= 2 ||
	    (!literal_is(&m[0], "response.output_text.delta") &&
	    !literal_is(&m[0], "response.function_call_arguments.delta")))
		return 0;
	st->said[at] = 1;
	piece_chunk(st, at, m[1].value, m[1].len, out);
	*v = SY_STREAM_FORWARD;
	return 1;
}

/*
 * Translates one event of a Responses stream (its type is its data's
 * "type", else its event name) into canonical chunks: created opens the
 * role chunk, text and argument deltas become content and tool call
 * deltas, completed and incomplete end the stream with its usage, failed
 * and error events end it with an error; the rest is dropped.
 */
static enum sy_stream_verdict
responses_stream_event(void *state, const struct sy_req *req,
    const struct sy_sse_event *ev, struct evbuffer *out,
    struct sy_usage *usage)
{
	struct stream *st = state;
	enum sy_stream_verdict v = SY_STREAM_DROP;
	json_t *doc, *resp, *msg;
	const char *type;

	if (ev->data == NULL)
		return SY_STREAM_DROP;
	if (fast_event(st, ev, out, &v))
		return v;
	/* fast_event found a JSON object, which jansson reads as jscan does. */
	doc = json_loadb(ev->data, ev->data_len, 0, NULL);
	type = json_string_value(json_object_get(doc, "type"));
	if (type == NULL)
		type = ev->event;
	resp = json_object_get(doc, "response");
	if (strcmp(type, "response.output_text.delta") == 0 ||
	    strcmp(type, "response.function_call_arguments.delta") == 0)
		v = on_piece(st, doc, "delta", 0, out);
	else if (strcmp(type, "response.output_text.done") == 0)
		v = on_piece(st, doc, "text", 1, out);
	else if (strcmp(type, "response.function_call_arguments.done") == 0)
		v = on_piece(st, doc, "arguments", 1, out);
	else if (strcmp(type, "response.output_item.added") == 0)
		v = on_item_added(st, doc, out);
	else if (strcmp(type, "response.refusal.delta") == 0 &&
	    json_is_string(json_object_get(doc, "delta"))) {
		chunk(st, json_pack("{s:O}", "refusal", json_object_get(doc,
		    "delta")), NULL, out);
		v = SY_STREAM_FORWARD;
	} else if (strcmp(type, "response.created") == 0) {
		if (json_is_string(json_object_get(resp, "id"))) {
			json_decref(st->id);
			st->id = json_incref(json_object_get(resp, "id"));
			head_make(st, req);
		}
		chunk(st, json_pack("{s:s,s:s}", "role", "assistant",
		    "content", ""), NULL, out);
		v = SY_STREAM_FORWARD;
	} else if (strcmp(type, "response.completed") == 0 ||
	    strcmp(type, "response.incomplete") == 0) {
		on_end(st, req, resp, out, usage);
		v = SY_STREAM_DONE;
	} else if (strcmp(type, "response.failed") == 0) {
		usage_read(json_object_get(resp, "usage"), usage);
		v = on_error(error_of(resp), out);
	} else if (strcmp(type, "error") == 0) {
		msg = json_object_get(doc, "message");
		if (!json_is_string(msg))
			msg = json_object_get(json_object_get(doc, "error"),
			    "message");
		v = on_error(json_pack("{s:s,s:s,s:O?}", "message",
		    json_is_string(msg) ? json_string_value(msg) :
		    "the backend sent an error event", "type", "server_error",
		    "code", json_object_get(doc, "code")), out);
	}
	json_decref(doc);
	return v;
}

const struct sy_backend_kind sy_backend_openai_responses = {
	.name = "openai_responses",
	.framing = &sy_framing_sse,
	.encode = responses_encode,
	.decode = responses_decode,
	.stream_open = responses_stream_open,
	.stream_event = responses_stream_event,
	.stream_close = responses_stream_close,
	.health_path = "/models",
	.models_path = "/models"
};
