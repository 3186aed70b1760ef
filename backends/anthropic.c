/* anthropic: the Anthropic Messages API (POST /messages), spoken for OpenAI's chat completions, whole answers and streams. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "backend.h"
#include "canon.h"
#include "framing.h"
#include "config.h"
#include "jscan.h"
#include "req.h"
#include "sse.h"
#include "util.h"

/* The version of the API every request names. */
#define ANTHROPIC_VERSION "2023-06-01"

/* Anthropic requires max_tokens: sent when the client set no limit. */
#define DEFAULT_MAX_TOKENS 4096

/* The end of the message for a field this backend cannot express. */
#define UNSUPPORTED " is not supported by the anthropic backend"

/* Whether v is absent or JSON null. */
static int
absent(const json_t *v)
{
	return v == NULL || json_is_null(v);
}

/* ==== Requests ==== */

/*
 * Appends the text blocks of content (a string, an array of OpenAI content
 * parts of type "text", or null) to blocks; where names content in errors.
 * Empty texts are left out, as Anthropic refuses empty text blocks; a
 * part's cache_control (prompt caching) is kept.
 */
static int
text_blocks(json_t *blocks, json_t *content, const char *where, char **err)
{
	json_t *part, *type, *text, *block, *cc;
	size_t i;

	if (absent(content))
		return 0;
	if (json_is_string(content)) {
		if (json_string_length(content) > 0)
			json_array_append_new(blocks, json_pack("{s:s,s:O}",
			    "type", "text", "text", content));
		return 0;
	}
	if (!json_is_array(content))
		return sy_fail(err, "'%s' must be a string or an array of content "
		    "parts", where);
	json_array_foreach(content, i, part) {
		type = json_object_get(part, "type");
		text = json_object_get(part, "text");
		if (!json_is_string(type))
			return sy_fail(err, "'%s[%zu].type' must be a string", where,
			    i);
		if (strcmp(json_string_value(type), "text") != 0)
			return sy_fail(err, "'%s[%zu]' of type '%s'" UNSUPPORTED,
			    where, i, json_string_value(type));
		if (!json_is_string(text))
			return sy_fail(err, "'%s[%zu].text' must be a string", where,
			    i);
		if (json_string_length(text) == 0)
			continue;
		block = json_pack("{s:s,s:O}", "type", "text", "text", text);
		if (!absent(cc = json_object_get(part, "cache_control")))
			json_object_set(block, "cache_control", cc);
		json_array_append_new(blocks, block);
	}
	return 0;
}

/*
 * The content blocks of the message of role that the conversation msgs
 * ends with, or of a new one after it: Anthropic wants user and assistant
 * turns to alternate, so consecutive messages of one role are merged.
 */
static json_t *
turn(json_t *msgs, const char *role)
{
	size_t n = json_array_size(msgs);
	json_t *last = n > 0 ? json_array_get(msgs, n - 1) : NULL;

	if (last == NULL || strcmp(json_string_value(json_object_get(last,
	    "role")), role) != 0) {
		last = json_pack("{s:s,s:[]}", "role", role, "content");
		json_array_append_new(msgs, last);
	}
	return json_object_get(last, "content");
}

/*
 * Appends a tool_use block to blocks for each of calls, the tool_calls of
 * message m: its id and name, and its arguments parsed (the empty string
 * as {}).
 */
static int
tool_use_blocks(json_t *blocks, json_t *calls, size_t m, char **err)
{
	json_t *call, *fn, *id, *name, *args, *input;
	const char *text;
	size_t i;

	if (absent(calls))
		return 0;
	if (!json_is_array(calls))
		return sy_fail(err, "'messages[%zu].tool_calls' must be an array", m);
	json_array_foreach(calls, i, call) {
		fn = json_object_get(call, "function");
		id = json_object_get(call, "id");
		name = json_object_get(fn, "name");
		args = json_object_get(fn, "arguments");
		if (!json_is_string(id) || !json_is_string(name))
			return sy_fail(err, "'messages[%zu].tool_calls[%zu]' needs a "
			    "string 'id' and 'function.name'", m, i);
		if (!absent(args) && !json_is_string(args))
			return sy_fail(err, "'messages[%zu].tool_calls[%zu].function."
			    "arguments' must be a string", m, i);
		text = json_is_string(args) ? json_string_value(args) : "";
		input = text[strspn(text, " \t\r\n")] == '\0' ? json_object() :
		    json_loads(text, 0, NULL);
		if (!json_is_object(input)) {
			json_decref(input);
			return sy_fail(err, "'messages[%zu].tool_calls[%zu].function."
			    "arguments' must be a JSON object", m, i);
		}
		json_array_append_new(blocks, json_pack("{s:s,s:O,s:O,s:o}",
		    "type", "tool_use", "id", id, "name", name, "input", input));
	}
	return 0;
}

/*
 * Appends the blocks of msg, assistant message m, to blocks: its text,
 * then its tool calls.
 */
static int
assistant_blocks(json_t *blocks, json_t *msg, size_t m, char **err)
{
	char where[64];

	if (!absent(json_object_get(msg, "function_call")))
		return sy_fail(err, "'messages[%zu].function_call'" UNSUPPORTED
		    "; use 'tool_calls'", m);
	snprintf(where, sizeof where, "messages[%zu].content", m);
	if (text_blocks(blocks, json_object_get(msg, "content"), where,
	    err) != 0)
		return -1;
	return tool_use_blocks(blocks, json_object_get(msg, "tool_calls"), m,
	    err);
}

/*
 * Appends the tool_result block of msg (message m, of role "tool") to
 * blocks: the result of the call tool_call_id, with msg's content.
 */
static int
tool_result_block(json_t *blocks, json_t *msg, size_t m, char **err)
{
	json_t *id = json_object_get(msg, "tool_call_id");
	json_t *content = json_object_get(msg, "content"), *block, *parts;
	char where[64];

	if (!json_is_string(id))
		return sy_fail(err, "'messages[%zu].tool_call_id' must be a string",
		    m);
	block = json_pack("{s:s,s:O}", "type", "tool_result", "tool_use_id",
	    id);
	json_array_append_new(blocks, block);
	if (json_is_string(content)) {
		if (json_string_length(content) > 0)
			json_object_set(block, "content", content);
		return 0;
	}
	parts = json_array();
	json_object_set_new(block, "content", parts);
	snprintf(where, sizeof where, "messages[%zu].content", m);
	if (text_blocks(parts, content, where, err) != 0)
		return -1;
	if (json_array_size(parts) == 0)
		json_object_del(block, "content");
	return 0;
}

/*
 * Puts the shortest form of message msg's content: one plain text block
 * as its string, no block as "".
 */
static void
content_shorten(json_t *msg)
{
	json_t *blocks = json_object_get(msg, "content");
	json_t *b = json_array_get(blocks, 0);

	if (json_array_size(blocks) == 0)
		json_object_set_new(msg, "content", json_string(""));
	else if (json_array_size(blocks) == 1 && json_object_size(b) == 2 &&
	    json_is_string(json_object_get(b, "text")))
		json_object_set(msg, "content", json_object_get(b, "text"));
}

/*
 * The system prompt of the text blocks of every system message: their
 * texts joined with blank lines, or the blocks themselves when one asks
 * for caching; NULL when there are none.
 */
static json_t *
system_prompt(json_t *blocks)
{
	struct evbuffer *buf;
	json_t *b, *s;
	size_t i;

	if (json_array_size(blocks) == 0)
		return NULL;
	json_array_foreach(blocks, i, b)
		if (json_object_get(b, "cache_control") != NULL)
			return json_incref(blocks);
	buf = evbuffer_new();
	json_array_foreach(blocks, i, b) {
		if (i > 0)
			SY_ADD_LIT(buf, "\n\n");
		s = json_object_get(b, "text");
		evbuffer_add(buf, json_string_value(s), json_string_length(s));
	}
	s = json_stringn((const char *)evbuffer_pullup(buf, -1),
	    evbuffer_get_length(buf));
	evbuffer_free(buf);
	return s;
}

/*
 * Sets system and messages of out from the client's messages: system and
 * developer messages, wherever they are, make the system prompt; tool
 * results are user turns.  *tool_blocks tells whether any tool_use or
 * tool_result block was made.
 */
static int
map_messages(json_t *in, json_t *out, int *tool_blocks, char **err)
{
	json_t *msgs = json_array(), *system = json_array(), *m, *s;
	const char *role;
	char where[64];
	size_t i;
	int rc = 0;

	*tool_blocks = 0;
	json_array_foreach(in, i, m) {
		role = json_string_value(json_object_get(m, "role"));
		snprintf(where, sizeof where, "messages[%zu].content", i);
		if (role == NULL)
			rc = sy_fail(err, "'messages[%zu].role' must be a string", i);
		else if (strcmp(role, "system") == 0 ||
		    strcmp(role, "developer") == 0)
			rc = text_blocks(system, json_object_get(m, "content"),
			    where, err);
		else if (strcmp(role, "user") == 0)
			rc = text_blocks(turn(msgs, "user"),
			    json_object_get(m, "content"), where, err);
		else if (strcmp(role, "assistant") == 0) {
			*tool_blocks |= json_array_size(json_object_get(m,
			    "tool_calls")) > 0;
			rc = assistant_blocks(turn(msgs, "assistant"), m, i, err);
		} else if (strcmp(role, "tool") == 0) {
			*tool_blocks = 1;
			rc = tool_result_block(turn(msgs, "user"), m, i, err);
		} else
			rc = sy_fail(err, "'messages[%zu].role' '%s'" UNSUPPORTED,
			    i, role);
		if (rc != 0)
			break;
	}
	if (rc == 0) {
		json_array_foreach(msgs, i, m)
			content_shorten(m);
		if ((s = system_prompt(system)) != NULL)
			json_object_set_new(out, "system", s);
		json_object_set(out, "messages", msgs);
	}
	json_decref(msgs);
	json_decref(system);
	return rc;
}

/*
 * Sets tools and tool_choice of out from the client's: OpenAI function
 * tools become Anthropic tools; tool_choice "none" leaves the tools out,
 * unless the conversation holds tool blocks (tool_blocks), which Anthropic
 * accepts only with tools: then it is {"type":"none"}.
 * parallel_tool_calls false becomes disable_parallel_tool_use.
 */
static int
map_tools(json_t *body, json_t *out, int tool_blocks, char **err)
{
	json_t *tools = json_object_get(body, "tools");
	json_t *choice = json_object_get(body, "tool_choice");
	json_t *parallel = json_object_get(body, "parallel_tool_calls");
	json_t *list, *tool, *fn, *name, *v, *tc;
	const char *c = json_string_value(choice), *type;
	size_t i;

	if (absent(tools))
		return 0;
	if (!json_is_array(tools))
		return sy_fail(err, "'tools' must be an array");
	if (json_array_size(tools) == 0 ||
	    (c != NULL && strcmp(c, "none") == 0 && !tool_blocks))
		return 0;
	if (absent(choice) || (c != NULL && strcmp(c, "auto") == 0))
		tc = json_pack("{s:s}", "type", "auto");
	else if (c != NULL && strcmp(c, "required") == 0)
		tc = json_pack("{s:s}", "type", "any");
	else if (c != NULL && strcmp(c, "none") == 0)
		tc = json_pack("{s:s}", "type", "none");
	else if (json_is_object(choice) && json_is_string(name =
	    json_object_get(json_object_get(choice, "function"), "name")))
		tc = json_pack("{s:s,s:O}", "type", "tool", "name", name);
	else
		return sy_fail(err, "'tool_choice' must be \"auto\", \"required\", "
		    "\"none\" or {\"type\":\"function\",\"function\":"
		    "{\"name\":...}}");
	if (json_is_false(parallel) && (c == NULL || strcmp(c, "none") != 0))
		json_object_set_new(tc, "disable_parallel_tool_use", json_true());
	list = json_array();
	json_array_foreach(tools, i, tool) {
		type = json_string_value(json_object_get(tool, "type"));
		fn = json_object_get(tool, "function");
		name = json_object_get(fn, "name");
		if (type == NULL || strcmp(type, "function") != 0) {
			json_decref(list);
			json_decref(tc);
			return sy_fail(err, "'tools[%zu]' of type '%s'" UNSUPPORTED,
			    i, type != NULL ? type : "");
		}
		if (!json_is_string(name)) {
			json_decref(list);
			json_decref(tc);
			return sy_fail(err, "'tools[%zu].function.name' must be a "
			    "string", i);
		}
		v = json_pack("{s:O}", "name", name);
		if (json_is_string(json_object_get(fn, "description")))
			json_object_set(v, "description",
			    json_object_get(fn, "description"));
		if (json_is_object(json_object_get(fn, "parameters")))
			json_object_set(v, "input_schema",
			    json_object_get(fn, "parameters"));
		else
			json_object_set_new(v, "input_schema", json_pack(
			    "{s:s,s:{}}", "type", "object", "properties"));
		json_array_append_new(list, v);
	}
	json_object_set_new(out, "tools", list);
	json_object_set_new(out, "tool_choice", tc);
	return 0;
}

/*
 * Sets the sampling and other options of out from the client's body, and
 * refuses those whose loss would change the answer's shape.
 */
static int
map_options(const struct sy_req *req, json_t *out, char **err)
{
	json_t *body = sy_req_body(req), *v, *s;
	const char *limit = "max_completion_tokens", *type;
	size_t i;

	v = json_object_get(body, "n");
	if (!absent(v) && !(json_is_integer(v) && json_integer_value(v) == 1))
		return sy_fail(err, "'n' other than 1" UNSUPPORTED);
	if (json_is_true(json_object_get(body, "logprobs")))
		return sy_fail(err, "'logprobs'" UNSUPPORTED);
	if (!absent(json_object_get(body, "top_logprobs")))
		return sy_fail(err, "'top_logprobs'" UNSUPPORTED);
	v = json_object_get(body, "response_format");
	type = json_string_value(json_object_get(v, "type"));
	if (!absent(v) && (type == NULL || strcmp(type, "text") != 0))
		return sy_fail(err, "'response_format' of type '%s'" UNSUPPORTED,
		    type != NULL ? type : "");

	if (absent(v = json_object_get(body, limit)))
		v = json_object_get(body, limit = "max_tokens");
	if (absent(v))
		json_object_set_new(out, "max_tokens",
		    json_integer(DEFAULT_MAX_TOKENS));
	else if (!json_is_integer(v) || json_integer_value(v) < 1)
		return sy_fail(err, "'%s' must be a positive integer", limit);
	else
		json_object_set(out, "max_tokens", v);

	v = json_object_get(body, "stop");
	if (json_is_string(v))
		json_object_set_new(out, "stop_sequences", json_pack("[O]", v));
	else if (json_is_array(v)) {
		json_array_foreach(v, i, s)
			if (!json_is_string(s))
				return sy_fail(err, "'stop[%zu]' must be a string", i);
		if (json_array_size(v) > 0)
			json_object_set(out, "stop_sequences", v);
	} else if (!absent(v))
		return sy_fail(err, "'stop' must be a string or an array of strings");

	if (!absent(v = json_object_get(body, "temperature"))) {
		if (!json_is_number(v))
			return sy_fail(err, "'temperature' must be a number");
		json_object_set(out, "temperature", v);
	}
	if (!absent(v = json_object_get(body, "top_p"))) {
		if (!json_is_number(v))
			return sy_fail(err, "'top_p' must be a number");
		json_object_set(out, "top_p", v);
	}
	if (json_is_integer(v = json_object_get(body, "top_k")))
		json_object_set(out, "top_k", v);
	if (json_is_string(v = json_object_get(body, "user")))
		json_object_set_new(out, "metadata", json_pack("{s:O}",
		    "user_id", v));
	if (req->stream)
		json_object_set_new(out, "stream", json_true());
	return 0;
}

/*
 * Anthropic's credentials: the key in x-api-key (when ep has one) and the
 * API version in anthropic-version, which every request needs.
 */
static int
anthropic_credentials(const struct sy_endpoint *ep, char *buf, size_t len)
{
	const char *key = ep->api_key;
	int n;

	n = snprintf(buf, len, "%s%s%santhropic-version: " ANTHROPIC_VERSION
	    "\r\n", key != NULL ? "x-api-key: " : "", key != NULL ? key : "",
	    key != NULL ? "\r\n" : "");
	if (n < 0 || (size_t)n >= len) {
		buf[0] = '\0';
		return -1;
	}
	return n;
}

/*
 * The Messages request for the chat request req: path /messages, and the
 * credentials.
 */
static int
anthropic_encode(const struct sy_req *req, const struct sy_endpoint *ep,
    struct evbuffer *out, struct sy_upstream_req *up, char **err)
{
	json_t *body;
	int tool_blocks;

	if (req->api != SY_API_CHAT)
		return sy_fail(err, "the anthropic backend serves chat completions "
		    "only");
	snprintf(up->path, sizeof up->path, "/messages");
	if (anthropic_credentials(ep, up->headers, sizeof up->headers) < 0)
		return sy_fail(err, "the API key of endpoint %s is too long",
		    ep->name);
	body = json_pack("{s:s}", "model", req->model);
	if (map_options(req, body, err) != 0 ||
	    map_messages(json_object_get(sy_req_body(req), "messages"), body,
	    &tool_blocks, err) != 0 ||
	    map_tools(sy_req_body(req), body, tool_blocks, err) != 0) {
		json_decref(body);
		return -1;
	}
	if (sy_json_add(out, body) != 0)
		return sy_fail(err, "request could not be encoded");
	return 0;
}

/* ==== Answers ==== */

/* Whether the len bytes at s are the string name. */
static int
is(const char *s, size_t len, const char *name)
{
	return len == strlen(name) && memcmp(s, name, len) == 0;
}

/* Whether a string member that jscan found (quotes included) is name. */
static int
member_is(const struct sy_jscan_member *m, const char *name)
{
	return m->kind == SY_JSON_STRING && is(m->value + 1, m->len - 2, name);
}

/* OpenAI's finish_reason for Anthropic's stop_reason (len bytes at s). */
static const char *
finish_reason(const char *s, size_t len)
{
	if (is(s, len, "max_tokens") ||
	    is(s, len, "model_context_window_exceeded"))
		return "length";
	if (is(s, len, "tool_use"))
		return "tool_calls";
	if (is(s, len, "refusal"))
		return "content_filter";
	return "stop";
}

/*
 * OpenAI's error type for Anthropic's error type (len bytes at t) of an
 * answer of status: those OpenAI knows are kept, overload and API errors
 * are server errors, an unknown one goes by the status.
 */
static const char *
error_type(const char *t, size_t len, int status)
{
	static const char *const kept[] = {
		"invalid_request_error", "authentication_error",
		"permission_error", "not_found_error", "rate_limit_error"
	};
	size_t i;

	for (i = 0; i < sizeof kept / sizeof kept[0]; i++)
		if (is(t, len, kept[i]))
			return kept[i];
	if (is(t, len, "request_too_large"))
		return "invalid_request_error";
	if (status == 429)
		return "rate_limit_error";
	if (status >= 400 && status < 500)
		return "invalid_request_error";
	return "server_error";
}

/*
 * Appends OpenAI's error object for Anthropic's error object (JSON text,
 * len bytes): {"error":{"message","type","code"}}, Anthropic's type as
 * the code.  Returns -1, appending nothing, when it is not one.
 */
static int
error_translate(const char *text, size_t len, int status,
    struct evbuffer *out)
{
	struct sy_jscan_member m[2] = { { .key = "type" }, { .key = "message" } };

	if (sy_jscan(text, len, m, 2) != SY_JSON_OBJECT ||
	    m[0].kind != SY_JSON_STRING || m[1].kind != SY_JSON_STRING)
		return -1;
	SY_ADD_LIT(out, "{\"error\":{\"message\":");
	evbuffer_add(out, m[1].value, m[1].len);
	evbuffer_add_printf(out, ",\"type\":\"%s\",\"code\":",
	    error_type(m[0].value + 1, m[0].len - 2, status));
	evbuffer_add(out, m[0].value, m[0].len);
	SY_ADD_LIT(out, "}}");
	return 0;
}

/*
 * Appends the client's error for an error answer (status, len bytes at
 * text): Anthropic's {"type":"error","error":{...}} translated, anything
 * else (an HTML page from a proxy, a plain-text 503) wrapped with a bit of
 * its text.
 */
static void
error_decode(int status, const char *text, size_t len, struct evbuffer *out)
{
	struct sy_jscan_member m = { .key = "error" };

	if (sy_jscan(text, len, &m, 1) == SY_JSON_OBJECT &&
	    m.kind == SY_JSON_OBJECT &&
	    error_translate(m.value, m.len, status, out) == 0)
		return;
	evbuffer_add_printf(out, "{\"error\":{\"message\":\"backend returned "
	    "HTTP %d", status);
	if (len > 0) {
		SY_ADD_LIT(out, ": ");
		sy_json_escape(out, text, len < 200 ? len : 200);
	}
	evbuffer_add_printf(out, "\",\"type\":\"%s\",\"code\":%d}}",
	    error_type("", 0, status), status);
}

/* Anthropic's token counts of one message; -1 where not said. */
struct counts {
	int64_t input;			/* prompt tokens not from the cache */
	int64_t cache_read;		/* prompt tokens read from the cache */
	int64_t cache_creation;		/* prompt tokens written to the cache */
	int64_t output;
};

/* Reads the counts an Anthropic usage object (JSON text) says into c. */
static void
counts_read(const char *text, size_t len, struct counts *c)
{
	struct sy_jscan_member m[4] = {
		{ .key = "input_tokens" },
		{ .key = "cache_read_input_tokens" },
		{ .key = "cache_creation_input_tokens" },
		{ .key = "output_tokens" }
	};
	int64_t *to[4] = {
		&c->input, &c->cache_read, &c->cache_creation, &c->output
	};
	size_t i;

	sy_jscan(text, len, m, 4);
	for (i = 0; i < 4; i++)
		if (m[i].kind == SY_JSON_INTEGER)
			*to[i] = sy_jscan_integer(m[i].value, m[i].len);
}

/*
 * The usage of counts c: every prompt token is a prompt token, those read
 * from the cache are also cached tokens.
 */
static void
counts_usage(const struct counts *c, struct sy_usage *u)
{
	if (c->input >= 0) {
		u->prompt_tokens = c->input + (c->cache_read > 0 ?
		    c->cache_read : 0) + (c->cache_creation > 0 ?
		    c->cache_creation : 0);
		u->cached_tokens = c->cache_read > 0 ? c->cache_read : 0;
	}
	if (c->output >= 0)
		u->completion_tokens = c->output;
}

/* Appends OpenAI's "usage" member for u (unknown counts as 0). */
static void
usage_write(struct evbuffer *out, const struct sy_usage *u)
{
	SY_ADD_LIT(out, "\"usage\":");
	sy_canon_usage_put(out, u, SY_USAGE_DETAILS);
}

/* Appends the inside of JSON string s (nothing when s is no string). */
static void
string_escape(struct evbuffer *out, const json_t *s)
{
	if (json_is_string(s))
		sy_json_escape(out, json_string_value(s), json_string_length(s));
}

/*
 * Appends the OpenAI message of Anthropic's content blocks: the texts
 * joined as content (null when there is none but tool calls), the
 * tool_use blocks as tool_calls.
 */
static void
message_write(struct evbuffer *out, json_t *content)
{
	struct evbuffer *text = evbuffer_new(), *calls = evbuffer_new();
	json_t *b, *input;
	const char *type;
	char *args;
	size_t i;

	json_array_foreach(content, i, b) {
		type = json_string_value(json_object_get(b, "type"));
		if (type == NULL)
			continue;
		if (strcmp(type, "text") == 0)
			string_escape(text, json_object_get(b, "text"));
		if (strcmp(type, "tool_use") != 0)
			continue;
		if (evbuffer_get_length(calls) > 0)
			SY_ADD_LIT(calls, ",");
		SY_ADD_LIT(calls, "{\"id\":\"");
		string_escape(calls, json_object_get(b, "id"));
		SY_ADD_LIT(calls, "\",\"type\":\"function\",\"function\":"
		    "{\"name\":\"");
		string_escape(calls, json_object_get(b, "name"));
		SY_ADD_LIT(calls, "\",\"arguments\":\"");
		input = json_object_get(b, "input");
		args = json_is_object(input) ? json_dumps(input, JSON_COMPACT) :
		    NULL;
		if (args != NULL)
			sy_json_escape(calls, args, strlen(args));
		else
			SY_ADD_LIT(calls, "{}");
		free(args);
		SY_ADD_LIT(calls, "\"}}");
	}
	SY_ADD_LIT(out, "{\"role\":\"assistant\",\"content\":");
	if (evbuffer_get_length(text) == 0 && evbuffer_get_length(calls) > 0)
		SY_ADD_LIT(out, "null");
	else {
		SY_ADD_LIT(out, "\"");
		evbuffer_add_buffer(out, text);
		SY_ADD_LIT(out, "\"");
	}
	if (evbuffer_get_length(calls) > 0) {
		SY_ADD_LIT(out, ",\"tool_calls\":[");
		evbuffer_add_buffer(out, calls);
		SY_ADD_LIT(out, "]");
	}
	SY_ADD_LIT(out, "}");
	evbuffer_free(text);
	evbuffer_free(calls);
}

/*
 * A whole answer: an Anthropic message becomes an OpenAI chat completion
 * (the message's id, the served model, created now), an error OpenAI's
 * error with the status kept.
 */
static int
anthropic_decode(const struct sy_req *req, int status, struct evbuffer *body,
    struct evbuffer *out, struct sy_usage *usage, char **err)
{
	size_t len = evbuffer_get_length(body);
	const char *text = (const char *)evbuffer_pullup(body, -1);
	struct sy_jscan_member m = { .key = "usage" };
	struct counts c = { -1, -1, -1, -1 };
	json_t *msg, *content, *v;
	const char *stop;

	if (status >= 400) {
		error_decode(status, text != NULL ? text : "", len, out);
		evbuffer_drain(body, len);
		return 0;
	}
	msg = json_loadb(text != NULL ? text : "", len, 0, NULL);
	content = json_object_get(msg, "content");
	if (!json_is_array(content)) {
		json_decref(msg);
		return sy_fail(err, "backend returned a body that is not an "
		    "Anthropic message");
	}
	sy_jscan(text, len, &m, 1);
	if (m.kind == SY_JSON_OBJECT)
		counts_read(m.value, m.len, &c);
	counts_usage(&c, usage);

	SY_ADD_LIT(out, "{\"id\":\"");
	string_escape(out, json_object_get(msg, "id"));
	evbuffer_add_printf(out, "\",\"object\":\"chat.completion\","
	    "\"created\":%lld,\"model\":\"", (long long)time(NULL));
	sy_json_escape(out, req->model, strlen(req->model));
	SY_ADD_LIT(out, "\",\"choices\":[{\"index\":0,\"message\":");
	message_write(out, content);
	SY_ADD_LIT(out, ",\"logprobs\":null,\"finish_reason\":");
	v = json_object_get(msg, "stop_reason");
	stop = json_string_value(v);
	if (stop != NULL)
		evbuffer_add_printf(out, "\"%s\"",
		    finish_reason(stop, json_string_length(v)));
	else
		SY_ADD_LIT(out, "null");
	/* The stop string, as vLLM names it in the choice. */
	if (json_is_string(v = json_object_get(msg, "stop_sequence"))) {
		SY_ADD_LIT(out, ",\"stop_reason\":\"");
		string_escape(out, v);
		SY_ADD_LIT(out, "\"");
	}
	SY_ADD_LIT(out, "}],");
	usage_write(out, usage);
	SY_ADD_LIT(out, "}");
	json_decref(msg);
	evbuffer_drain(body, len);
	return 0;
}

/* ==== Streams ==== */

/* What a stream's translation keeps between events. */
struct stream {
	struct sy_canon_head head;	/* every chunk's start */
	int tool_open;		/* the open content block is a tool_use */
	int ntools;		/* tool_use blocks so far */
	struct counts counts;
};

/* Sets the start of every chunk of st: id (JSON string text, len bytes), created now, req's served model. */
static void
head_make(struct stream *st, const struct sy_req *req, const char *id,
    size_t len)
{
	sy_canon_head_set(&st->head, id, len, (long long)time(NULL), req->model);
}

static void *
anthropic_stream_open(const struct sy_req *req)
{
	struct stream *st = sy_xcalloc(1, sizeof *st);

	st->counts = (struct counts){ -1, -1, -1, -1 };
	head_make(st, req, "\"\"", 2);
	return st;
}

static void
anthropic_stream_close(void *state)
{
	struct stream *st = state;

	sy_canon_head_free(&st->head);
	free(st);
}

/* Appends a chunk whose delta has member name with value (JSON text). */
static void
chunk_member(const struct stream *st, struct evbuffer *out, const char *name,
    const char *value, size_t len)
{
	sy_canon_chunk_begin(out, &st->head);
	evbuffer_add_printf(out, "{\"%s\":", name);
	evbuffer_add(out, value, len);
	SY_ADD_LIT(out, "}");
	sy_canon_chunk_end(out, NULL);
}

/* The members of a stream event's data, and of the objects in it. */
enum { EV_TYPE, EV_MESSAGE, EV_BLOCK, EV_DELTA, EV_USAGE, EV_ERROR, EV_N };
enum {
	IN_TYPE, IN_ID, IN_NAME, IN_TEXT, IN_JSON, IN_STOP, IN_USAGE,
	IN_STOP_SEQ, IN_N
};

/* Finds the members above of the object text (len bytes) into m. */
static enum sy_json_kind
scan_inner(const char *text, size_t len, struct sy_jscan_member m[IN_N])
{
	static const char *const keys[IN_N] = {
		"type", "id", "name", "text", "partial_json", "stop_reason",
		"usage", "stop_sequence"
	};
	size_t i;

	for (i = 0; i < IN_N; i++)
		m[i].key = keys[i];
	return sy_jscan(text != NULL ? text : "", len, m, IN_N);
}

/* message_start: the message's id, the prompt's counts, the role chunk. */
static void
on_message_start(struct stream *st, const struct sy_req *req,
    const struct sy_jscan_member *message, struct evbuffer *out,
    struct sy_usage *usage)
{
	struct sy_jscan_member in[IN_N];

	scan_inner(message->value, message->len, in);
	if (in[IN_ID].kind == SY_JSON_STRING)
		head_make(st, req, in[IN_ID].value, in[IN_ID].len);
	if (in[IN_USAGE].kind == SY_JSON_OBJECT) {
		counts_read(in[IN_USAGE].value, in[IN_USAGE].len, &st->counts);
		counts_usage(&st->counts, usage);
	}
	chunk_member(st, out, "role", "\"assistant\",\"content\":\"\"",
	    sizeof("\"assistant\",\"content\":\"\"") - 1);
}

/*
 * content_block_start: a tool_use block opens a tool call (its id, its
 * name, no arguments yet); a text block with text starts the content.
 */
static enum sy_stream_verdict
on_block_start(struct stream *st, const struct sy_jscan_member *block,
    struct evbuffer *out)
{
	struct sy_jscan_member in[IN_N];

	scan_inner(block->value, block->len, in);
	st->tool_open = member_is(&in[IN_TYPE], "tool_use");
	if (st->tool_open) {
		sy_canon_chunk_begin(out, &st->head);
		evbuffer_add_printf(out, "{\"tool_calls\":[{\"index\":%d,\"id\":",
		    st->ntools++);
		if (in[IN_ID].kind == SY_JSON_STRING)
			evbuffer_add(out, in[IN_ID].value, in[IN_ID].len);
		else
			SY_ADD_LIT(out, "\"\"");
		SY_ADD_LIT(out, ",\"type\":\"function\",\"function\":{\"name\":");
		if (in[IN_NAME].kind == SY_JSON_STRING)
			evbuffer_add(out, in[IN_NAME].value, in[IN_NAME].len);
		else
			SY_ADD_LIT(out, "\"\"");
		SY_ADD_LIT(out, ",\"arguments\":\"\"}}]}");
		sy_canon_chunk_end(out, NULL);
		return SY_STREAM_FORWARD;
	}
	if (member_is(&in[IN_TYPE], "text") && in[IN_TEXT].kind ==
	    SY_JSON_STRING && in[IN_TEXT].len > 2) {
		chunk_member(st, out, "content", in[IN_TEXT].value,
		    in[IN_TEXT].len);
		return SY_STREAM_FORWARD;
	}
	return SY_STREAM_DROP;
}

/*
 * content_block_delta: text is content, a tool_use block's JSON is its
 * call's arguments; empty pieces and other deltas (thinking) are dropped.
 */
static enum sy_stream_verdict
on_block_delta(struct stream *st, const struct sy_jscan_member *delta,
    struct evbuffer *out)
{
	struct sy_jscan_member in[IN_N];

	scan_inner(delta->value, delta->len, in);
	if (member_is(&in[IN_TYPE], "text_delta") &&
	    in[IN_TEXT].kind == SY_JSON_STRING && in[IN_TEXT].len > 2) {
		chunk_member(st, out, "content", in[IN_TEXT].value,
		    in[IN_TEXT].len);
		return SY_STREAM_FORWARD;
	}
	if (st->tool_open && member_is(&in[IN_TYPE], "input_json_delta") &&
	    in[IN_JSON].kind == SY_JSON_STRING && in[IN_JSON].len > 2) {
		sy_canon_chunk_begin(out, &st->head);
		evbuffer_add_printf(out, "{\"tool_calls\":[{\"index\":%d,"
		    "\"function\":{\"arguments\":", st->ntools - 1);
		evbuffer_add(out, in[IN_JSON].value, in[IN_JSON].len);
		SY_ADD_LIT(out, "}}]}");
		sy_canon_chunk_end(out, NULL);
		return SY_STREAM_FORWARD;
	}
	return SY_STREAM_DROP;
}

/* message_delta: the output's count, and a chunk with the finish reason. */
static void
on_message_delta(struct stream *st, const struct sy_jscan_member *delta,
    const struct sy_jscan_member *usage_member, struct evbuffer *out,
    struct sy_usage *usage)
{
	struct sy_jscan_member in[IN_N];
	const struct sy_jscan_member *stop = &in[IN_STOP];

	if (usage_member->kind == SY_JSON_OBJECT) {
		counts_read(usage_member->value, usage_member->len, &st->counts);
		counts_usage(&st->counts, usage);
	}
	scan_inner(delta->value, delta->len, in);
	sy_canon_chunk_begin(out, &st->head);
	SY_ADD_LIT(out, "{}");
	/* The stop string, as vLLM names it in the choice. */
	if (in[IN_STOP_SEQ].kind == SY_JSON_STRING) {
		SY_ADD_LIT(out, ",\"stop_reason\":");
		evbuffer_add(out, in[IN_STOP_SEQ].value, in[IN_STOP_SEQ].len);
	}
	sy_canon_chunk_end(out, stop->kind == SY_JSON_STRING ?
	    finish_reason(stop->value + 1, stop->len - 2) : NULL);
}

/* message_stop: the usage chunk when the client asked for it, [DONE]. */
static void
on_message_stop(struct stream *st, const struct sy_req *req,
    struct evbuffer *out, const struct sy_usage *usage)
{
	if (req->client_wants_usage) {
		evbuffer_add(out, st->head.text, st->head.len);
		SY_ADD_LIT(out, "[],");
		usage_write(out, usage);
		SY_ADD_LIT(out, "}\n\n");
	}
	SY_ADD_LIT(out, "data: [DONE]\n\n");
}

/*
 * Translates one event of an Anthropic stream into OpenAI's chunks: the
 * event's type is its data's "type" (else its event name); pings, block
 * ends and unknown events are dropped; an error event, or data that is
 * not a JSON object, ends the stream with OpenAI's error event.
 */
static enum sy_stream_verdict
anthropic_stream_event(void *state, const struct sy_req *req,
    const struct sy_sse_event *ev, struct evbuffer *out,
    struct sy_usage *usage)
{
	static const char *const keys[EV_N] = {
		"type", "message", "content_block", "delta", "usage", "error"
	};
	struct stream *st = state;
	struct sy_jscan_member m[EV_N];
	const char *type = ev->event;
	size_t i, len = strlen(ev->event);

	if (ev->data == NULL)
		return SY_STREAM_DROP;
	for (i = 0; i < EV_N; i++)
		m[i].key = keys[i];
	if (sy_jscan(ev->data, ev->data_len, m, EV_N) != SY_JSON_OBJECT) {
		SY_ADD_LIT(out, "data: {\"error\":{\"message\":\"backend sent a "
		    "stream event that is not a JSON object\",\"type\":"
		    "\"server_error\",\"code\":\"bad_gateway\"}}\n\n");
		return SY_STREAM_ERROR;
	}
	if (m[EV_TYPE].kind == SY_JSON_STRING) {
		type = m[EV_TYPE].value + 1;
		len = m[EV_TYPE].len - 2;
	}
	if (is(type, len, "content_block_delta"))
		return on_block_delta(st, &m[EV_DELTA], out);
	if (is(type, len, "content_block_start"))
		return on_block_start(st, &m[EV_BLOCK], out);
	if (is(type, len, "message_start")) {
		on_message_start(st, req, &m[EV_MESSAGE], out, usage);
		return SY_STREAM_FORWARD;
	}
	if (is(type, len, "message_delta")) {
		on_message_delta(st, &m[EV_DELTA], &m[EV_USAGE], out, usage);
		return SY_STREAM_FORWARD;
	}
	if (is(type, len, "message_stop")) {
		on_message_stop(st, req, out, usage);
		return SY_STREAM_DONE;
	}
	if (is(type, len, "error")) {
		SY_ADD_LIT(out, "data: ");
		if (m[EV_ERROR].kind != SY_JSON_OBJECT ||
		    error_translate(m[EV_ERROR].value, m[EV_ERROR].len, 200,
		    out) != 0)
			SY_ADD_LIT(out, "{\"error\":{\"message\":\"backend sent an "
			    "error event\",\"type\":\"server_error\",\"code\":"
			    "\"bad_gateway\"}}");
		SY_ADD_LIT(out, "\n\n");
		return SY_STREAM_ERROR;
	}
	if (is(type, len, "content_block_stop"))
		st->tool_open = 0;
	return SY_STREAM_DROP;
}

const struct sy_backend_kind sy_backend_anthropic = {
	.name = "anthropic",
	.framing = &sy_framing_sse,
	.encode = anthropic_encode,
	.decode = anthropic_decode,
	.stream_open = anthropic_stream_open,
	.stream_event = anthropic_stream_event,
	.stream_close = anthropic_stream_close,
	/*
	 * Anthropic has no cheap health endpoint: GET /models (the Models
	 * API) answers without spending tokens.
	 */
	.credentials = anthropic_credentials,
	.health_path = "/models",
	.models_path = "/models"
};
