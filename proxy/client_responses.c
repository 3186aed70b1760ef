/* client_responses: clients speaking OpenAI's Responses API (POST /v1/responses), translated to and from the canonical chat completions, whole answers and streams. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "canon.h"
#include "clientapi.h"
#include "sse.h"
#include "util.h"

/* The end of the message for what switchyard cannot translate. */
#define UNSUPPORTED "is not supported by switchyard"
#define UNSUPPORTED_ARE "are not supported by switchyard"

/* Whether v is absent or JSON null. */
static int
absent(const json_t *v)
{
	return v == NULL || json_is_null(v);
}

/* Whether v is the string s. */
static int
is_str(const json_t *v, const char *s)
{
	return json_is_string(v) && strcmp(json_string_value(v), s) == 0;
}

/* A new JSON string of prefix and 24 random base-62 characters. */
static json_t *
random_id(const char *prefix)
{
	char buf[64];

	sy_client_random_id(buf, sizeof buf, prefix);
	return json_string(buf);
}

/* ==== Errors ==== */

static void
responses_error(struct evbuffer *out, int status, const char *type,
    const char *code, const char *message)
{
	sy_canon_error_body(out, status, type, code, message);
}

/* ==== Requests ==== */

/*
 * The content of a message item (where names it in errors) as chat
 * content: a string as it is; input_text and output_text parts joined
 * when they are all text, else text and image_url parts.
 */
static json_t *
message_content(json_t *content, const char *where, char **err)
{
	json_t *parts, *p, *text, *url;
	struct evbuffer *buf;
	const char *type;
	int only_text = 1;
	size_t i;

	if (json_is_string(content))
		return json_incref(content);
	if (!json_is_array(content)) {
		sy_fail(err, "%s.content: %s", where, absent(content) ?
		    "field required" : "must be a string or an array of parts");
		return NULL;
	}
	parts = json_array();
	json_array_foreach(content, i, p) {
		type = json_string_value(json_object_get(p, "type"));
		text = json_object_get(p, "text");
		if (type != NULL && (strcmp(type, "input_text") == 0 ||
		    strcmp(type, "output_text") == 0 ||
		    strcmp(type, "text") == 0)) {
			if (!json_is_string(text)) {
				sy_fail(err, "%s.content.%zu.text: field required",
				    where, i);
				goto fail;
			}
			json_array_append_new(parts, json_pack("{s:s,s:O}",
			    "type", "text", "text", text));
		} else if (type != NULL && strcmp(type, "input_image") == 0) {
			url = json_object_get(p, "image_url");
			if (!json_is_string(url)) {
				sy_fail(err, "%s.content.%zu.image_url: field "
				    "required (file_id images %s)", where, i,
				    UNSUPPORTED_ARE);
				goto fail;
			}
			json_array_append_new(parts, json_pack("{s:s,s:{s:O}}",
			    "type", "image_url", "image_url", "url", url));
			if (json_is_string(json_object_get(p, "detail")))
				json_object_set(json_object_get(json_array_get(
				    parts, json_array_size(parts) - 1),
				    "image_url"), "detail",
				    json_object_get(p, "detail"));
			only_text = 0;
		} else {
			sy_fail(err, "%s.content.%zu.type: '%s' parts " UNSUPPORTED_ARE,
			    where, i, type != NULL ? type : "?");
			goto fail;
		}
	}
	if (!only_text)
		return parts;
	buf = evbuffer_new();
	json_array_foreach(parts, i, p) {
		if (i > 0)
			SY_ADD_LIT(buf, "\n");
		text = json_object_get(p, "text");
		evbuffer_add(buf, json_string_value(text),
		    json_string_length(text));
	}
	json_decref(parts);
	text = json_stringn((const char *)evbuffer_pullup(buf, -1),
	    evbuffer_get_length(buf));
	evbuffer_free(buf);
	return text;
fail:
	json_decref(parts);
	return NULL;
}

/*
 * A function_call item as a tool call of the assistant message that ends
 * msgs (a new one unless the last message is an assistant's).
 */
static int
function_call(json_t *item, const char *where, json_t *msgs, char **err)
{
	json_t *call_id = json_object_get(item, "call_id");
	json_t *name = json_object_get(item, "name");
	json_t *args = json_object_get(item, "arguments");
	json_t *last = json_array_get(msgs, json_array_size(msgs) - 1);
	json_t *calls;

	if (!json_is_string(call_id) || !json_is_string(name))
		return sy_fail(err, "%s.%s: field required", where,
		    json_is_string(call_id) ? "name" : "call_id");
	if (!absent(args) && !json_is_string(args))
		return sy_fail(err, "%s.arguments: must be a string", where);
	if (!is_str(json_object_get(last, "role"), "assistant")) {
		last = json_pack("{s:s,s:n}", "role", "assistant", "content");
		json_array_append_new(msgs, last);
	}
	if ((calls = json_object_get(last, "tool_calls")) == NULL) {
		calls = json_array();
		json_object_set_new(last, "tool_calls", calls);
		if (is_str(json_object_get(last, "content"), ""))
			json_object_set_new(last, "content", json_null());
	}
	json_array_append_new(calls, json_pack("{s:O,s:s,s:{s:O,s:s}}", "id",
	    call_id, "type", "function", "function", "name", name, "arguments",
	    json_is_string(args) ? json_string_value(args) : "{}"));
	return 0;
}

/* A function_call_output item as a message of role tool. */
static int
function_output(json_t *item, const char *where, json_t *msgs, char **err)
{
	json_t *call_id = json_object_get(item, "call_id");
	json_t *output = json_object_get(item, "output"), *text;
	char w[96];

	if (!json_is_string(call_id))
		return sy_fail(err, "%s.call_id: field required", where);
	snprintf(w, sizeof w, "%s.output", where);
	if (json_is_array(output)) {
		if ((text = message_content(output, w, err)) == NULL)
			return -1;
		if (!json_is_string(text)) {
			json_decref(text);
			return sy_fail(err, "%s: only text parts are allowed here",
			    w);
		}
	} else if (json_is_string(output))
		text = json_incref(output);
	else
		return sy_fail(err, "%s: %s", w, absent(output) ? "field required" :
		    "must be a string or an array of parts");
	json_array_append_new(msgs, json_pack("{s:s,s:O,s:o}", "role", "tool",
	    "tool_call_id", call_id, "content", text));
	return 0;
}

/* input (a string, or a list of items) appended to msgs. */
static int
map_input(json_t *input, json_t *msgs, char **err)
{
	json_t *item, *role, *content;
	const char *type, *r;
	char where[64];
	size_t i;

	if (absent(input))
		return sy_fail(err, "input: field required");
	if (json_is_string(input)) {
		json_array_append_new(msgs, json_pack("{s:s,s:O}", "role", "user",
		    "content", input));
		return 0;
	}
	if (!json_is_array(input))
		return sy_fail(err, "input: must be a string or an array of items");
	if (json_array_size(input) == 0)
		return sy_fail(err, "input: at least one item is required");
	json_array_foreach(input, i, item) {
		snprintf(where, sizeof where, "input.%zu", i);
		if (!json_is_object(item))
			return sy_fail(err, "%s: must be an object", where);
		type = json_string_value(json_object_get(item, "type"));
		role = json_object_get(item, "role");
		if (type == NULL && !absent(json_object_get(item, "type")))
			return sy_fail(err, "%s.type: must be a string", where);
		if (type == NULL || strcmp(type, "message") == 0) {
			r = json_string_value(role);
			if (r == NULL || (strcmp(r, "user") != 0 &&
			    strcmp(r, "assistant") != 0 &&
			    strcmp(r, "system") != 0 &&
			    strcmp(r, "developer") != 0))
				return sy_fail(err, "%s.role: must be \"user\", "
				    "\"assistant\", \"system\" or \"developer\"",
				    where);
			if ((content = message_content(json_object_get(item,
			    "content"), where, err)) == NULL)
				return -1;
			json_array_append_new(msgs, json_pack("{s:s,s:o}", "role",
			    strcmp(r, "developer") == 0 ? "system" : r,
			    "content", content));
		} else if (strcmp(type, "function_call") == 0) {
			if (function_call(item, where, msgs, err) != 0)
				return -1;
		} else if (strcmp(type, "function_call_output") == 0) {
			if (function_output(item, where, msgs, err) != 0)
				return -1;
		} else if (strcmp(type, "item_reference") == 0)
			continue;	/* the thread stage puts the item here */
		else
			return sy_fail(err, "%s.type: '%s' items " UNSUPPORTED_ARE
			    " (only message, function_call, "
			    "function_call_output and item_reference)", where,
			    type);
	}
	return 0;
}

/* tools (function tools only) and tool_choice as chat's. */
static int
map_tools(json_t *in, json_t *out, char **err)
{
	json_t *tools = json_object_get(in, "tools");
	json_t *choice = json_object_get(in, "tool_choice");
	json_t *list, *t, *fn, *v;
	const char *type;
	size_t i;

	if (!absent(tools) && !json_is_array(tools))
		return sy_fail(err, "tools: must be an array");
	if (json_array_size(tools) > 0) {
		list = json_array();
		json_array_foreach(tools, i, t) {
			type = json_string_value(json_object_get(t, "type"));
			if (type == NULL || strcmp(type, "function") != 0) {
				json_decref(list);
				return sy_fail(err, "tools.%zu.type: '%s' tools "
				    UNSUPPORTED_ARE " (only function tools)", i,
				    type != NULL ? type : "?");
			}
			if (!json_is_string(json_object_get(t, "name"))) {
				json_decref(list);
				return sy_fail(err, "tools.%zu.name: field required",
				    i);
			}
			fn = json_pack("{s:O}", "name", json_object_get(t, "name"));
			if (json_is_string(v = json_object_get(t, "description")))
				json_object_set(fn, "description", v);
			if (json_is_object(v = json_object_get(t, "parameters")))
				json_object_set(fn, "parameters", v);
			if (json_is_boolean(v = json_object_get(t, "strict")))
				json_object_set(fn, "strict", v);
			json_array_append_new(list, json_pack("{s:s,s:o}", "type",
			    "function", "function", fn));
		}
		json_object_set_new(out, "tools", list);
	}
	if (absent(choice))
		return 0;
	if (is_str(choice, "auto") || is_str(choice, "none") ||
	    is_str(choice, "required")) {
		json_object_set(out, "tool_choice", choice);
		return 0;
	}
	if (is_str(json_object_get(choice, "type"), "function") &&
	    json_is_string(json_object_get(choice, "name"))) {
		json_object_set_new(out, "tool_choice", json_pack(
		    "{s:s,s:{s:O}}", "type", "function", "function", "name",
		    json_object_get(choice, "name")));
		return 0;
	}
	return sy_fail(err, "tool_choice: must be \"auto\", \"none\", "
	    "\"required\" or {\"type\":\"function\",\"name\"} (other choices "
	    UNSUPPORTED_ARE ")");
}

/* text.format as chat's response_format. */
static int
map_text(json_t *text, json_t *out, char **err)
{
	json_t *format, *schema, *js, *v;
	const char *type;

	if (absent(text))
		return 0;
	if (!json_is_object(text))
		return sy_fail(err, "text: must be an object");
	format = json_object_get(text, "format");
	if (absent(format))
		return 0;
	type = json_string_value(json_object_get(format, "type"));
	if (type != NULL && strcmp(type, "text") == 0)
		return 0;
	if (type != NULL && strcmp(type, "json_object") == 0) {
		json_object_set_new(out, "response_format", json_pack("{s:s}",
		    "type", "json_object"));
		return 0;
	}
	if (type == NULL || strcmp(type, "json_schema") != 0)
		return sy_fail(err, "text.format.type: must be \"text\", "
		    "\"json_object\" or \"json_schema\"");
	schema = json_object_get(format, "schema");
	if (!json_is_string(json_object_get(format, "name")))
		return sy_fail(err, "text.format.name: field required");
	if (!json_is_object(schema))
		return sy_fail(err, "text.format.schema: field required");
	js = json_pack("{s:O,s:O}", "name", json_object_get(format, "name"),
	    "schema", schema);
	if (json_is_boolean(v = json_object_get(format, "strict")))
		json_object_set(js, "strict", v);
	if (json_is_string(v = json_object_get(format, "description")))
		json_object_set(js, "description", v);
	json_object_set_new(out, "response_format", json_pack("{s:s,s:o}",
	    "type", "json_schema", "json_schema", js));
	return 0;
}

/*
 * The members switchyard cannot honour and whose loss would change the
 * answer: refused, naming the field.
 */
static int
refuse_unsupported(json_t *in, char **err)
{
	static const char *const refused[] = {
		"conversation", "prompt", "include"
	};
	json_t *v;
	size_t i;

	for (i = 0; i < sizeof refused / sizeof refused[0]; i++) {
		v = json_object_get(in, refused[i]);
		if (absent(v) || (json_is_array(v) && json_array_size(v) == 0))
			continue;
		return sy_fail(err, "%s: " UNSUPPORTED, refused[i]);
	}
	/* Its turns are prepended by the thread stage (proxy/stage_thread.c). */
	v = json_object_get(in, "previous_response_id");
	if (!absent(v) && !json_is_string(v))
		return sy_fail(err, "previous_response_id: must be a string");
	if (json_is_true(json_object_get(in, "background")))
		return sy_fail(err, "background: background responses "
		    UNSUPPORTED_ARE);
	return 0;
}

/* model, sampling, limits, reasoning effort, user, stream. */
static int
map_options(json_t *in, json_t *out, char **err)
{
	static const char *const numbers[] = { "temperature", "top_p" };
	json_t *v;
	size_t i;

	v = json_object_get(in, "model");
	if (absent(v))
		return sy_fail(err, "model: field required");
	if (!json_is_string(v) || json_string_length(v) == 0)
		return sy_fail(err, "model: must be a non-empty string");
	json_object_set(out, "model", v);
	for (i = 0; i < sizeof numbers / sizeof numbers[0]; i++) {
		if (absent(v = json_object_get(in, numbers[i])))
			continue;
		if (!json_is_number(v))
			return sy_fail(err, "%s: must be a number", numbers[i]);
		json_object_set(out, numbers[i], v);
	}
	v = json_object_get(in, "max_output_tokens");
	if (!absent(v)) {
		if (!json_is_integer(v) || json_integer_value(v) < 1)
			return sy_fail(err, "max_output_tokens: must be a "
			    "positive integer");
		json_object_set(out, "max_tokens", v);
	}
	v = json_object_get(in, "parallel_tool_calls");
	if (json_is_boolean(v))
		json_object_set(out, "parallel_tool_calls", v);
	v = json_object_get(json_object_get(in, "reasoning"), "effort");
	if (json_is_string(v))
		json_object_set(out, "reasoning_effort", v);
	v = json_object_get(in, "user");
	if (json_is_string(v))
		json_object_set(out, "user", v);
	else if (!absent(v))
		return sy_fail(err, "user: must be a string");
	v = json_object_get(in, "metadata");
	if (!absent(v) && !json_is_object(v))
		return sy_fail(err, "metadata: must be an object");
	v = json_object_get(in, "store");
	if (!absent(v) && !json_is_boolean(v))
		return sy_fail(err, "store: must be a boolean");
	v = json_object_get(in, "stream");
	if (!absent(v) && !json_is_boolean(v))
		return sy_fail(err, "stream: must be a boolean");
	if (json_is_true(v)) {
		json_object_set_new(out, "stream", json_true());
		/* The usage chunk gives response.completed its counts. */
		json_object_set_new(out, "stream_options", json_pack("{s:b}",
		    "include_usage", 1));
	}
	return 0;
}

static json_t *
responses_request(const char *text, size_t len, char **err)
{
	json_t *in, *out, *msgs, *instr;

	if ((in = sy_client_body(text, len, err)) == NULL)
		return NULL;
	out = json_object();
	msgs = json_array();
	instr = json_object_get(in, "instructions");
	if (!absent(instr) && !json_is_string(instr))
		sy_fail(err, "instructions: must be a string");
	else if (json_string_length(instr) > 0)
		json_array_append_new(msgs, json_pack("{s:s,s:O}", "role",
		    "system", "content", instr));
	if (*err != NULL || refuse_unsupported(in, err) != 0 ||
	    map_options(in, out, err) != 0 ||
	    map_input(json_object_get(in, "input"), msgs, err) != 0 ||
	    map_tools(in, out, err) != 0 ||
	    map_text(json_object_get(in, "text"), out, err) != 0) {
		json_decref(msgs);
		json_decref(out);
		json_decref(in);
		return NULL;
	}
	json_object_set_new(out, "messages", msgs);
	json_decref(in);
	return out;
}

/* ==== The response object ==== */

/* What the response object says of the answer. */
struct answer {
	json_t *id;		/* "resp_..." */
	json_int_t created;
	const char *finish;	/* chat's finish_reason, or NULL */
	int failed;
	struct sy_usage usage;
	const json_t *echo;	/* members repeated from the request, or NULL */
};

/*
 * A new response object for model with output (the reference is taken):
 * its status from a's finish reason, usage when known (else null).
 */
static json_t *
response_object(const struct answer *a, const char *model, json_t *output,
    const char *status)
{
	json_t *r, *usage = json_null(), *incomplete = json_null();
	json_int_t in, cached, outn;

	if (status == NULL) {
		status = "completed";
		if (a->finish != NULL && strcmp(a->finish, "length") == 0) {
			status = "incomplete";
			incomplete = json_pack("{s:s}", "reason",
			    "max_output_tokens");
		} else if (a->finish != NULL &&
		    strcmp(a->finish, "content_filter") == 0) {
			status = "incomplete";
			incomplete = json_pack("{s:s}", "reason",
			    "content_filter");
		}
	}
	if (a->usage.prompt_tokens >= 0 || a->usage.completion_tokens >= 0) {
		in = a->usage.prompt_tokens > 0 ? a->usage.prompt_tokens : 0;
		outn = a->usage.completion_tokens > 0 ?
		    a->usage.completion_tokens : 0;
		cached = a->usage.cached_tokens > 0 ? a->usage.cached_tokens : 0;
		if (cached > in)
			cached = in;
		usage = json_pack("{s:I,s:{s:I},s:I,s:{s:I},s:I}",
		    "input_tokens", in, "input_tokens_details", "cached_tokens",
		    cached, "output_tokens", outn, "output_tokens_details",
		    "reasoning_tokens", (json_int_t)0, "total_tokens", in + outn);
	}
	r = json_pack("{s:O,s:s,s:I,s:s,s:n,s:o,s:n,s:s,s:o,s:b,s:b,s:o}",
	    "id", a->id, "object", "response", "created_at", a->created,
	    "status", status, "error", "incomplete_details", incomplete,
	    "instructions", "model", model != NULL ? model : "",
	    "output", output, "parallel_tool_calls", 1, "store", 0,
	    "usage", usage);
	json_object_set_new(r, "text", json_pack("{s:{s:s}}", "format", "type",
	    "text"));
	json_object_set_new(r, "tool_choice", json_string("auto"));
	json_object_set_new(r, "tools", json_array());
	json_object_set_new(r, "metadata", json_object());
	if (json_is_object(a->echo))
		json_object_update(r, (json_t *)a->echo);
	return r;
}

/* A new message output item with id (the reference is taken), the text (may be NULL: empty) and status. */
static json_t *
message_item(json_t *id, const char *text, size_t len, const char *status)
{
	json_t *part = json_pack("{s:s,s:s%,s:[]}", "type", "output_text",
	    "text", text != NULL ? text : "", text != NULL ? len : 0,
	    "annotations");

	return json_pack("{s:o,s:s,s:s,s:s,s:[o]}", "id", id, "type", "message",
	    "status", status, "role", "assistant", "content", part);
}

/* A new function_call output item; the references of id and call_id are taken. */
static json_t *
call_item(json_t *id, json_t *call_id, const char *name, const char *args,
    const char *status)
{
	return json_pack("{s:o,s:s,s:s,s:o,s:s,s:s}", "id", id, "type",
	    "function_call", "status", status, "call_id", call_id, "name", name,
	    "arguments", args);
}

/* Appends the JSON text of v (whose reference is taken) to out. */
static int
put_json(struct evbuffer *out, json_t *v)
{
	char *dump = v != NULL ? json_dumps(v, JSON_COMPACT) : NULL;

	json_decref(v);
	if (dump == NULL)
		return -1;
	evbuffer_add(out, dump, strlen(dump));
	free(dump);
	return 0;
}

static int
responses_response(struct evbuffer *body, const char *model,
    const json_t *echo, struct evbuffer *out, char **err)
{
	size_t len = evbuffer_get_length(body);
	const char *text = (const char *)evbuffer_pullup(body, -1);
	json_t *in, *msg, *choice, *output, *calls, *call, *fn, *args, *call_id;
	struct answer a = { .usage = { -1, -1, -1 }, .echo = echo };
	struct evbuffer *buf;
	size_t i;
	int rc;

	*err = NULL;
	in = json_loadb(text != NULL ? text : "", len, 0, NULL);
	choice = json_array_get(json_object_get(in, "choices"), 0);
	msg = json_object_get(choice, "message");
	if (!json_is_object(msg)) {
		json_decref(in);
		return sy_fail(err, "backend answer is not a chat completion");
	}
	output = json_array();
	buf = evbuffer_new();
	sy_canon_text(buf, json_object_get(msg, "content"));
	calls = json_object_get(msg, "tool_calls");
	if (evbuffer_get_length(buf) > 0 || json_array_size(calls) == 0)
		json_array_append_new(output, message_item(random_id("msg_"),
		    (const char *)evbuffer_pullup(buf, -1),
		    evbuffer_get_length(buf), "completed"));
	evbuffer_free(buf);
	json_array_foreach(calls, i, call) {
		fn = json_object_get(call, "function");
		args = json_object_get(fn, "arguments");
		if (!json_is_string(json_object_get(fn, "name"))) {
			json_decref(output);
			json_decref(in);
			return sy_fail(err, "backend answer's tool call %zu has no "
			    "name", i);
		}
		call_id = json_object_get(call, "id");
		call_id = json_is_string(call_id) ? json_incref(call_id) :
		    random_id("call_");
		json_array_append_new(output, call_item(random_id("fc_"),
		    call_id, json_string_value(json_object_get(fn, "name")),
		    json_is_string(args) ? json_string_value(args) : "{}",
		    "completed"));
	}
	a.id = random_id("resp_");	/* unique: it names the stored response */
	a.created = (json_int_t)time(NULL);
	a.finish = json_string_value(json_object_get(choice, "finish_reason"));
	sy_canon_answer_usage(text, len, &a.usage);
	rc = put_json(out, response_object(&a, model, output, NULL));
	json_decref(a.id);
	json_decref(in);
	if (rc != 0)
		return sy_fail(err, "answer could not be encoded");
	return 0;
}

/* ==== Streams ==== */

/* What a stream's translation keeps between events. */
struct stream {
	char *model;
	struct answer a;
	int started;		/* response.created sent */
	int done;		/* the last event sent: nothing more */
	json_int_t seq;		/* the next sequence_number */
	json_t *output;		/* the output items so far */
	json_t *result;		/* response.completed's response, or NULL */
	json_t *open;		/* the open item (in output), or NULL */
	struct evbuffer *text;	/* the open message's text, or its call's
				   arguments */
	json_int_t tool_k;	/* chat's index of the open tool call, -1 */
};

static void *
responses_stream_open(const char *model, const json_t *echo)
{
	struct stream *st = sy_xcalloc(1, sizeof *st);

	st->model = sy_xstrdup(model != NULL ? model : "");
	st->a.echo = json_is_object(echo) ? json_deep_copy(echo) : NULL;
	st->a.usage = (struct sy_usage){ -1, -1, -1 };
	st->a.created = (json_int_t)time(NULL);
	st->output = json_array();
	st->text = evbuffer_new();
	st->tool_k = -1;
	return st;
}

static void
responses_stream_close(void *state)
{
	struct stream *st = state;

	if (st == NULL)
		return;
	free(st->model);
	json_decref((json_t *)st->a.echo);
	json_decref(st->result);
	json_decref(st->a.id);
	json_decref(st->output);
	evbuffer_free(st->text);
	free(st);
}

/* Appends an event of type name whose members are data's (the reference is taken). */
static void
emit(struct stream *st, const char *name, json_t *data, struct evbuffer *out)
{
	json_object_set_new(data, "type", json_string(name));
	json_object_set_new(data, "sequence_number", json_integer(st->seq++));
	evbuffer_add_printf(out, "event: %s\ndata: ", name);
	put_json(out, data);
	SY_ADD_LIT(out, "\n\n");
}

/* A copy of the response object as it stands, with status. */
static json_t *
snapshot(struct stream *st, const char *status)
{
	return response_object(&st->a, st->model, json_deep_copy(st->output),
	    status);
}

/*
 * response.created and response.in_progress, before anything else; the
 * response's id is new (a cached answer's replay is a response of its own).
 */
static void
stream_start(struct stream *st, struct evbuffer *out)
{
	if (st->started)
		return;
	st->started = 1;
	st->a.id = random_id("resp_");
	emit(st, "response.created", json_pack("{s:o}", "response",
	    snapshot(st, "in_progress")), out);
	emit(st, "response.in_progress", json_pack("{s:o}", "response",
	    snapshot(st, "in_progress")), out);
}

/* The events that end the open item, if any. */
static void
item_done(struct stream *st, struct evbuffer *out)
{
	size_t k = json_array_size(st->output) - 1;
	json_t *id, *part;
	const char *s;
	size_t n;

	if (st->open == NULL)
		return;
	id = json_object_get(st->open, "id");
	s = (const char *)evbuffer_pullup(st->text, -1);
	n = evbuffer_get_length(st->text);
	if (is_str(json_object_get(st->open, "type"), "message")) {
		part = json_array_get(json_object_get(st->open, "content"), 0);
		json_object_set_new(part, "text", json_stringn(s != NULL ? s :
		    "", n));
		emit(st, "response.output_text.done", json_pack(
		    "{s:O,s:I,s:i,s:s%,s:[]}", "item_id", id, "output_index",
		    (json_int_t)k, "content_index", 0, "text", s != NULL ? s :
		    "", n, "logprobs"), out);
		emit(st, "response.content_part.done", json_pack(
		    "{s:O,s:I,s:i,s:O}", "item_id", id, "output_index",
		    (json_int_t)k, "content_index", 0, "part", part), out);
	} else {
		json_object_set_new(st->open, "arguments", json_stringn(
		    s != NULL ? s : "", n));
		emit(st, "response.function_call_arguments.done", json_pack(
		    "{s:O,s:I,s:O,s:O}", "item_id", id, "output_index",
		    (json_int_t)k, "name", json_object_get(st->open, "name"),
		    "arguments", json_object_get(st->open, "arguments")), out);
	}
	json_object_set_new(st->open, "status", json_string("completed"));
	emit(st, "response.output_item.done", json_pack("{s:I,s:O}",
	    "output_index", (json_int_t)k, "item", st->open), out);
	st->open = NULL;
	st->tool_k = -1;
	evbuffer_drain(st->text, evbuffer_get_length(st->text));
}

/* Opens item (the reference is taken) as the next output item. */
static void
item_add(struct stream *st, json_t *item, struct evbuffer *out)
{
	item_done(st, out);
	json_array_append_new(st->output, item);
	st->open = item;
	emit(st, "response.output_item.added", json_pack("{s:I,s:O}",
	    "output_index", (json_int_t)json_array_size(st->output) - 1,
	    "item", item), out);
}

/* A text delta of the message. */
static void
on_text(struct stream *st, json_t *delta, struct evbuffer *out)
{
	json_int_t k;

	if (st->open == NULL || !is_str(json_object_get(st->open, "type"),
	    "message")) {
		item_add(st, message_item(random_id("msg_"), NULL, 0,
		    "in_progress"), out);
		emit(st, "response.content_part.added", json_pack(
		    "{s:O,s:I,s:i,s:{s:s,s:s,s:[]}}", "item_id",
		    json_object_get(st->open, "id"), "output_index",
		    (json_int_t)json_array_size(st->output) - 1,
		    "content_index", 0, "part", "type", "output_text", "text",
		    "", "annotations"), out);
	}
	k = (json_int_t)json_array_size(st->output) - 1;
	evbuffer_add(st->text, json_string_value(delta),
	    json_string_length(delta));
	emit(st, "response.output_text.delta", json_pack(
	    "{s:O,s:I,s:i,s:O,s:[]}", "item_id", json_object_get(st->open, "id"),
	    "output_index", k, "content_index", 0, "delta", delta, "logprobs"),
	    out);
}

/* One element of a delta's tool_calls: a new index opens a function_call item. */
static void
on_tool_call(struct stream *st, json_t *call, struct evbuffer *out)
{
	json_t *fn = json_object_get(call, "function"), *v, *call_id;
	const char *name = json_string_value(json_object_get(fn, "name"));
	json_int_t k;

	v = json_object_get(call, "index");
	k = json_is_integer(v) ? json_integer_value(v) : st->tool_k < 0 ? 0 :
	    json_is_string(json_object_get(call, "id")) ? st->tool_k + 1 :
	    st->tool_k;
	if (k != st->tool_k || st->open == NULL) {
		call_id = json_object_get(call, "id");
		call_id = json_is_string(call_id) ? json_incref(call_id) :
		    random_id("call_");
		item_add(st, call_item(random_id("fc_"), call_id, name != NULL ?
		    name : "", "", "in_progress"), out);
		st->tool_k = k;
	}
	v = json_object_get(fn, "arguments");
	if (json_string_length(v) == 0)
		return;
	evbuffer_add(st->text, json_string_value(v), json_string_length(v));
	emit(st, "response.function_call_arguments.delta", json_pack(
	    "{s:O,s:I,s:O}", "item_id", json_object_get(st->open, "id"),
	    "output_index", (json_int_t)json_array_size(st->output) - 1,
	    "delta", v), out);
}

/* "[DONE]": the open item's end, then response.completed (or .incomplete). */
static void
on_done(struct stream *st, struct evbuffer *out)
{
	json_t *r;
	const char *status;

	stream_start(st, out);
	item_done(st, out);
	r = snapshot(st, NULL);
	status = json_string_value(json_object_get(r, "status"));
	st->result = json_incref(r);
	emit(st, strcmp(status, "incomplete") == 0 ? "response.incomplete" :
	    "response.completed", json_pack("{s:o}", "response", r), out);
	st->done = 1;
}

/* An error event (its error object, NULL when it was not JSON): response.failed. */
static void
on_error(struct stream *st, json_t *error, struct evbuffer *out)
{
	json_t *r, *code = json_object_get(error, "code");
	json_t *msg = json_object_get(error, "message");

	stream_start(st, out);
	r = snapshot(st, "failed");
	json_object_set_new(r, "error", json_pack("{s:s,s:s}", "code",
	    json_is_string(code) ? json_string_value(code) : "server_error",
	    "message", json_is_string(msg) ? json_string_value(msg) :
	    error == NULL ? "backend sent a stream event that is not a JSON "
	    "object" : "the stream failed"));
	emit(st, "response.failed", json_pack("{s:o}", "response", r), out);
	st->done = 1;
}

static void
responses_stream_event(void *state, const struct sy_sse_event *ev,
    struct evbuffer *out)
{
	struct stream *st = state;
	json_t *chunk, *choice, *delta, *v, *call;
	size_t i;

	if (st->done || ev->data == NULL)
		return;
	if (ev->data_len == 6 && memcmp(ev->data, "[DONE]", 6) == 0) {
		on_done(st, out);
		return;
	}
	chunk = json_loadb(ev->data, ev->data_len, 0, NULL);
	if (!json_is_object(chunk) || json_is_object(json_object_get(chunk,
	    "error"))) {
		on_error(st, json_object_get(chunk, "error"), out);
		json_decref(chunk);
		return;
	}
	stream_start(st, out);
	choice = json_array_get(json_object_get(chunk, "choices"), 0);
	delta = json_object_get(choice, "delta");
	if (json_string_length(v = json_object_get(delta, "content")) > 0)
		on_text(st, v, out);
	json_array_foreach(json_object_get(delta, "tool_calls"), i, call)
		on_tool_call(st, call, out);
	if (json_is_string(v = json_object_get(choice, "finish_reason")))
		st->a.finish = strcmp(json_string_value(v), "length") == 0 ?
		    "length" : strcmp(json_string_value(v), "content_filter") ==
		    0 ? "content_filter" : "stop";
	if (json_is_object(json_object_get(chunk, "usage")))
		sy_canon_answer_usage(ev->data, ev->data_len, &st->a.usage);
	json_decref(chunk);
}

static json_t *
responses_stream_result(void *state)
{
	struct stream *st = state;

	return json_incref(st->result);
}

static const struct sy_client_path responses_paths[] = {
	{ "/v1/responses", SY_API_CHAT },
	{ NULL, 0 }
};

const struct sy_client_api sy_client_responses = {
	.name = "responses",
	.paths = responses_paths,
	.request = responses_request,
	.response = responses_response,
	.stream_open = responses_stream_open,
	.stream_event = responses_stream_event,
	.stream_close = responses_stream_close,
	.stream_result = responses_stream_result,
	.error = responses_error,
	.ratelimit_headers = SY_RATELIMIT_OPENAI
};
