/* client_anthropic: clients speaking Anthropic's Messages API (POST /v1/messages), translated to and from the canonical OpenAI chat completions, whole answers and streams. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "canon.h"
#include "clientapi.h"
#include "jscan.h"
#include "sse.h"
#include "util.h"

/* The end of the message for what switchyard cannot translate. */
#define UNSUPPORTED "is not supported by switchyard"

/* Whether v is absent or JSON null. */
static int
absent(const json_t *v)
{
	return v == NULL || json_is_null(v);
}

/* Whether the len bytes at s are the string name. */
static int
is(const char *s, size_t len, const char *name)
{
	return s != NULL && len == strlen(name) && memcmp(s, name, len) == 0;
}

/*
 * Writes the message id for the canonical answer's id (len bytes at id,
 * may be NULL) into buf (n bytes): an id already "msg_..." is kept, else
 * "msg_" and the id after its first '-' ("chatcmpl-abc" is "msg_abc");
 * a missing, odd or long id gets a random one.
 */
static void
message_id(const char *id, size_t len, char *buf, size_t n)
{
	const char *dash;
	size_t i;

	for (i = 0; id != NULL && i < len; i++)
		if (strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		    "0123456789-_.", id[i]) == NULL || id[i] == '\0')
			break;
	if (id == NULL || len == 0 || i < len || len + 5 > n) {
		sy_client_random_id(buf, n, "msg_");
		return;
	}
	if (len > 4 && memcmp(id, "msg_", 4) == 0) {
		memcpy(buf, id, len);
		buf[len] = '\0';
		return;
	}
	dash = memchr(id, '-', len);
	if (dash != NULL && dash + 1 < id + len) {
		len -= (size_t)(dash + 1 - id);
		id = dash + 1;
	}
	snprintf(buf, n, "msg_%.*s", (int)len, id);
}

/* Anthropic's stop_reason for OpenAI's finish_reason (len bytes at s). */
static const char *
stop_reason(const char *s, size_t len, int had_tools)
{
	if (is(s, len, "length"))
		return "max_tokens";
	if (is(s, len, "tool_calls") || is(s, len, "function_call"))
		return "tool_use";
	if (is(s, len, "content_filter"))
		return "refusal";
	/* Some servers end a turn of tool calls with "stop". */
	return had_tools ? "tool_use" : "end_turn";
}

/* ==== Errors ==== */

/* Whether the len bytes at t are one of Anthropic's error types. */
static const char *
anthropic_type(const char *t, size_t len)
{
	static const char *const types[] = {
		"invalid_request_error", "authentication_error",
		"billing_error", "permission_error", "not_found_error",
		"request_too_large", "rate_limit_error", "api_error",
		"timeout_error", "overloaded_error"
	};
	size_t i;

	for (i = 0; i < sizeof types / sizeof types[0]; i++)
		if (is(t, len, types[i]))
			return types[i];
	return NULL;
}

/*
 * Anthropic's error type for an error of HTTP status (0 within a stream)
 * with OpenAI's type and code (len bytes each, may be NULL): a code that
 * is already an Anthropic type (the anthropic backend keeps the original
 * there), billing_error for a spent budget, else the status's, else a type that is already Anthropic's,
 * else by the class of the status.
 */
static const char *
error_type(int status, const char *type, size_t tlen, const char *code,
    size_t clen)
{
	const char *t;

	if ((t = anthropic_type(code, clen)) != NULL)
		return t;
	/* A spent budget: OpenAI's insufficient_quota is Anthropic's billing error. */
	if (is(code, clen, "insufficient_quota"))
		return "billing_error";
	switch (status) {
	case 400: return "invalid_request_error";
	case 401: return "authentication_error";
	case 403: return "permission_error";
	case 404: return "not_found_error";
	case 413: return "request_too_large";
	case 429: return "rate_limit_error";
	case 500: case 502: case 504: return "api_error";
	case 503: case 529: return "overloaded_error";
	}
	if ((t = anthropic_type(type, tlen)) != NULL)
		return t;
	if (status == 0 && (is(code, clen, "rate_limit_exceeded") ||
	    is(type, tlen, "rate_limit_exceeded")))
		return "rate_limit_error";
	if (status >= 400 && status < 500)
		return "invalid_request_error";
	return "api_error";
}

static void
anthropic_error(struct evbuffer *out, int status, const char *type,
    const char *code, const char *message)
{
	evbuffer_add_printf(out, "{\"type\":\"error\",\"error\":{\"type\":\"%s\","
	    "\"message\":\"", error_type(status, type, type != NULL ?
	    strlen(type) : 0, code, code != NULL ? strlen(code) : 0));
	if (message != NULL)
		sy_json_escape(out, message, strlen(message));
	SY_ADD_LIT(out, "\"}}");
}

/* ==== Requests ==== */

/*
 * The text of text blocks joined with sep, as a new JSON string; where
 * names blocks in errors.  Non-text blocks are refused.
 */
static json_t *
joined_text(json_t *blocks, const char *sep, const char *where, char **err)
{
	struct evbuffer *buf = evbuffer_new();
	json_t *b, *text, *s = NULL;
	const char *type;
	size_t i;

	json_array_foreach(blocks, i, b) {
		type = json_string_value(json_object_get(b, "type"));
		text = json_object_get(b, "text");
		if (type == NULL || strcmp(type, "text") != 0) {
			sy_fail(err, "%s.%zu.type: only text blocks are allowed here",
			    where, i);
			goto out;
		}
		if (!json_is_string(text)) {
			sy_fail(err, "%s.%zu.text: field required", where, i);
			goto out;
		}
		if (i > 0)
			evbuffer_add(buf, sep, strlen(sep));
		evbuffer_add(buf, json_string_value(text),
		    json_string_length(text));
	}
	s = json_stringn((const char *)evbuffer_pullup(buf, -1),
	    evbuffer_get_length(buf));
	if (s == NULL)
		sy_fail(err, "%s: text is not valid UTF-8", where);
out:
	evbuffer_free(buf);
	return s;
}

/* The system prompt (string, or text blocks joined with a blank line) as the first message of msgs. */
static int
map_system(json_t *system, json_t *msgs, char **err)
{
	json_t *s;

	if (absent(system))
		return 0;
	if (json_is_string(system))
		s = json_incref(system);
	else if (json_is_array(system)) {
		if ((s = joined_text(system, "\n\n", "system", err)) == NULL)
			return -1;
	} else
		return sy_fail(err, "system: must be a string or an array of text "
		    "blocks");
	if (json_string_length(s) > 0)
		json_array_append_new(msgs, json_pack("{s:s,s:o}", "role",
		    "system", "content", s));
	else
		json_decref(s);
	return 0;
}

/* An image block as an OpenAI image_url part: base64 data as a data URL, or the URL. */
static json_t *
image_part(json_t *block, const char *where, char **err)
{
	json_t *src = json_object_get(block, "source");
	const char *type = json_string_value(json_object_get(src, "type"));
	const char *media = json_string_value(json_object_get(src,
	    "media_type"));
	const char *data = json_string_value(json_object_get(src, "data"));
	const char *url = json_string_value(json_object_get(src, "url"));
	json_t *part;
	char *s;
	size_t n;

	if (type != NULL && strcmp(type, "base64") == 0 && media != NULL &&
	    data != NULL) {
		n = strlen(media) + strlen(data) + sizeof "data:;base64,";
		s = sy_xmalloc(n);
		snprintf(s, n, "data:%s;base64,%s", media, data);
		part = json_pack("{s:s,s:{s:s}}", "type", "image_url",
		    "image_url", "url", s);
		free(s);
		return part;
	}
	if (type != NULL && strcmp(type, "url") == 0 && url != NULL)
		return json_pack("{s:s,s:{s:s}}", "type", "image_url",
		    "image_url", "url", url);
	sy_fail(err, "%s.source: must be {\"type\":\"base64\",\"media_type\","
	    "\"data\"} or {\"type\":\"url\",\"url\"}", where);
	return NULL;
}

/*
 * A tool_result block (message m, block b) as a message of role tool: its
 * content a string, or text blocks joined.
 */
static json_t *
tool_message(json_t *block, size_t m, size_t b, char **err)
{
	json_t *id = json_object_get(block, "tool_use_id");
	json_t *content = json_object_get(block, "content"), *text;
	char where[96];

	if (!json_is_string(id)) {
		sy_fail(err, "messages.%zu.content.%zu.tool_use_id: field required",
		    m, b);
		return NULL;
	}
	snprintf(where, sizeof where, "messages.%zu.content.%zu.content", m, b);
	if (absent(content))
		text = json_string("");
	else if (json_is_string(content))
		text = json_incref(content);
	else if (json_is_array(content)) {
		if ((text = joined_text(content, "\n", where, err)) == NULL)
			return NULL;
	} else {
		sy_fail(err, "%s: must be a string or an array of text blocks",
		    where);
		return NULL;
	}
	return json_pack("{s:s,s:O,s:o}", "role", "tool", "tool_call_id", id,
	    "content", text);
}

/*
 * The content of parts (OpenAI content parts): one string of the texts
 * joined with "\n" when they are all text, else the parts themselves.
 */
static json_t *
user_content(json_t *parts, int only_text)
{
	json_t *p, *s;
	struct evbuffer *buf;
	size_t i;

	if (!only_text)
		return json_incref(parts);
	buf = evbuffer_new();
	json_array_foreach(parts, i, p) {
		if (i > 0)
			SY_ADD_LIT(buf, "\n");
		s = json_object_get(p, "text");
		evbuffer_add(buf, json_string_value(s), json_string_length(s));
	}
	s = json_stringn((const char *)evbuffer_pullup(buf, -1),
	    evbuffer_get_length(buf));
	evbuffer_free(buf);
	return s;
}

/*
 * The blocks of user message m appended to msgs: its tool results first,
 * as tool messages, then its text and images as one user message.
 */
static int
user_blocks(json_t *blocks, size_t m, json_t *msgs, char **err)
{
	json_t *parts = json_array(), *b, *v;
	const char *type;
	char where[96];
	int only_text = 1, results = 0;
	size_t i;

	json_array_foreach(blocks, i, b) {
		snprintf(where, sizeof where, "messages.%zu.content.%zu", m, i);
		type = json_string_value(json_object_get(b, "type"));
		if (type == NULL) {
			sy_fail(err, "%s.type: field required", where);
			goto fail;
		}
		if (strcmp(type, "text") == 0) {
			if (!json_is_string(v = json_object_get(b, "text"))) {
				sy_fail(err, "%s.text: field required", where);
				goto fail;
			}
			json_array_append_new(parts, json_pack("{s:s,s:O}",
			    "type", "text", "text", v));
		} else if (strcmp(type, "image") == 0) {
			if ((v = image_part(b, where, err)) == NULL)
				goto fail;
			json_array_append_new(parts, v);
			only_text = 0;
		} else if (strcmp(type, "tool_result") == 0) {
			if ((v = tool_message(b, m, i, err)) == NULL)
				goto fail;
			json_array_append_new(msgs, v);
			results++;
		} else {
			sy_fail(err, "%s.type: '%s' blocks in user messages "
			    UNSUPPORTED, where, type);
			goto fail;
		}
	}
	if (json_array_size(parts) > 0 || results == 0)
		json_array_append_new(msgs, json_pack("{s:s,s:o}", "role", "user",
		    "content", user_content(parts, only_text)));
	json_decref(parts);
	return 0;
fail:
	json_decref(parts);
	return -1;
}

/*
 * The blocks of assistant message m as one assistant message appended to
 * msgs: its texts joined with "\n" as content (null when it only calls
 * tools), its tool_use blocks as tool_calls; thinking blocks of earlier
 * turns are left out.
 */
static int
assistant_blocks(json_t *blocks, size_t m, json_t *msgs, char **err)
{
	struct evbuffer *text = evbuffer_new();
	json_t *calls = json_array(), *msg, *b, *v, *id, *name, *input;
	const char *type;
	char where[96], *args;
	size_t i, ntext = 0;

	json_array_foreach(blocks, i, b) {
		snprintf(where, sizeof where, "messages.%zu.content.%zu", m, i);
		type = json_string_value(json_object_get(b, "type"));
		if (type == NULL) {
			sy_fail(err, "%s.type: field required", where);
			goto fail;
		}
		if (strcmp(type, "text") == 0) {
			if (!json_is_string(v = json_object_get(b, "text"))) {
				sy_fail(err, "%s.text: field required", where);
				goto fail;
			}
			if (ntext++ > 0)
				SY_ADD_LIT(text, "\n");
			evbuffer_add(text, json_string_value(v),
			    json_string_length(v));
		} else if (strcmp(type, "tool_use") == 0) {
			id = json_object_get(b, "id");
			name = json_object_get(b, "name");
			input = json_object_get(b, "input");
			if (!json_is_string(id) || !json_is_string(name)) {
				sy_fail(err, "%s.%s: field required", where,
				    json_is_string(id) ? "name" : "id");
				goto fail;
			}
			if (!absent(input) && !json_is_object(input)) {
				sy_fail(err, "%s.input: must be an object", where);
				goto fail;
			}
			args = absent(input) ? NULL : json_dumps(input,
			    JSON_COMPACT);
			json_array_append_new(calls, json_pack(
			    "{s:O,s:s,s:{s:O,s:s}}", "id", id, "type", "function",
			    "function", "name", name, "arguments",
			    args != NULL ? args : "{}"));
			free(args);
		} else if (strcmp(type, "thinking") != 0 &&
		    strcmp(type, "redacted_thinking") != 0) {
			sy_fail(err, "%s.type: '%s' blocks in assistant messages "
			    UNSUPPORTED, where, type);
			goto fail;
		}
	}
	msg = json_pack("{s:s}", "role", "assistant");
	if (ntext == 0 && json_array_size(calls) > 0)
		json_object_set_new(msg, "content", json_null());
	else
		json_object_set_new(msg, "content", json_stringn(
		    (const char *)evbuffer_pullup(text, -1),
		    evbuffer_get_length(text)));
	if (json_array_size(calls) > 0)
		json_object_set(msg, "tool_calls", calls);
	json_array_append_new(msgs, msg);
	json_decref(calls);
	evbuffer_free(text);
	return 0;
fail:
	json_decref(calls);
	evbuffer_free(text);
	return -1;
}

/* The conversation appended to msgs, after the system message. */
static int
map_messages(json_t *in, json_t *msgs, char **err)
{
	json_t *m, *content;
	const char *role;
	size_t i;

	if (absent(in))
		return sy_fail(err, "messages: field required");
	if (!json_is_array(in))
		return sy_fail(err, "messages: must be an array");
	if (json_array_size(in) == 0)
		return sy_fail(err, "messages: at least one message is required");
	json_array_foreach(in, i, m) {
		if (!json_is_object(m))
			return sy_fail(err, "messages.%zu: must be an object", i);
		role = json_string_value(json_object_get(m, "role"));
		if (role == NULL || (strcmp(role, "user") != 0 &&
		    strcmp(role, "assistant") != 0))
			return sy_fail(err, "messages.%zu.role: must be \"user\" or "
			    "\"assistant\"", i);
		content = json_object_get(m, "content");
		if (json_is_string(content))
			json_array_append_new(msgs, json_pack("{s:s,s:O}",
			    "role", role, "content", content));
		else if (!json_is_array(content))
			return sy_fail(err, "messages.%zu.content: %s", i,
			    absent(content) ? "field required" :
			    "must be a string or an array of blocks");
		else if (strcmp(role, "user") == 0) {
			if (user_blocks(content, i, msgs, err) != 0)
				return -1;
		} else if (assistant_blocks(content, i, msgs, err) != 0)
			return -1;
	}
	return 0;
}

/*
 * Anthropic's tools as OpenAI function tools, and tool_choice; only
 * client tools (type absent or "custom") can be translated.
 */
static int
map_tools(json_t *in, json_t *out, char **err)
{
	json_t *tools = json_object_get(in, "tools");
	json_t *choice = json_object_get(in, "tool_choice");
	json_t *list, *t, *fn, *name, *desc, *schema, *tc;
	const char *type;
	size_t i;

	if (!absent(choice)) {
		type = json_string_value(json_object_get(choice, "type"));
		name = json_object_get(choice, "name");
		if (type == NULL || (strcmp(type, "auto") != 0 &&
		    strcmp(type, "any") != 0 && strcmp(type, "tool") != 0 &&
		    strcmp(type, "none") != 0))
			return sy_fail(err, "tool_choice.type: must be \"auto\", "
			    "\"any\", \"tool\" or \"none\"");
		if (strcmp(type, "tool") == 0 && !json_is_string(name))
			return sy_fail(err, "tool_choice.name: field required");
	}
	if (absent(tools))
		return 0;
	if (!json_is_array(tools))
		return sy_fail(err, "tools: must be an array");
	if (json_array_size(tools) == 0)
		return 0;
	list = json_array();
	json_array_foreach(tools, i, t) {
		type = json_string_value(json_object_get(t, "type"));
		name = json_object_get(t, "name");
		desc = json_object_get(t, "description");
		schema = json_object_get(t, "input_schema");
		if (!json_is_object(t) || (!absent(json_object_get(t, "type")) &&
		    (type == NULL || strcmp(type, "custom") != 0))) {
			json_decref(list);
			return sy_fail(err, "tools.%zu.type: '%s' tools " UNSUPPORTED
			    " (only client tools with an input_schema)", i,
			    type != NULL ? type : "?");
		}
		if (!json_is_string(name)) {
			json_decref(list);
			return sy_fail(err, "tools.%zu.name: field required", i);
		}
		if (!json_is_object(schema)) {
			json_decref(list);
			return sy_fail(err, "tools.%zu.input_schema: field required",
			    i);
		}
		fn = json_pack("{s:O}", "name", name);
		if (json_is_string(desc))
			json_object_set(fn, "description", desc);
		json_object_set(fn, "parameters", schema);
		json_array_append_new(list, json_pack("{s:s,s:o}", "type",
		    "function", "function", fn));
	}
	json_object_set_new(out, "tools", list);
	if (absent(choice))
		return 0;
	type = json_string_value(json_object_get(choice, "type"));
	if (strcmp(type, "auto") == 0)
		tc = json_string("auto");
	else if (strcmp(type, "any") == 0)
		tc = json_string("required");
	else if (strcmp(type, "none") == 0)
		tc = json_string("none");
	else
		tc = json_pack("{s:s,s:{s:O}}", "type", "function", "function",
		    "name", json_object_get(choice, "name"));
	json_object_set_new(out, "tool_choice", tc);
	if (json_is_true(json_object_get(choice, "disable_parallel_tool_use")) &&
	    strcmp(type, "none") != 0)
		json_object_set_new(out, "parallel_tool_calls", json_false());
	return 0;
}

/*
 * The top-level members Anthropic offers that switchyard cannot honour
 * and whose loss would change the answer: refused, naming the field.
 */
static int
refuse_unsupported(json_t *in, char **err)
{
	static const char *const refused[] = {
		"mcp_servers", "container", "output_format"
	};
	json_t *v = json_object_get(in, "thinking");
	const char *type = json_string_value(json_object_get(v, "type"));
	size_t i;

	if (!absent(v) && (type == NULL || strcmp(type, "disabled") != 0))
		return sy_fail(err, "thinking: extended thinking " UNSUPPORTED);
	for (i = 0; i < sizeof refused / sizeof refused[0]; i++)
		if (!absent(json_object_get(in, refused[i])))
			return sy_fail(err, "%s: " UNSUPPORTED, refused[i]);
	return 0;
}

/* model, max_tokens, sampling, stop sequences, stream and metadata. */
static int
map_options(json_t *in, json_t *out, char **err)
{
	static const char *const numbers[] = { "temperature", "top_p" };
	json_t *v, *s;
	size_t i;

	v = json_object_get(in, "model");
	if (absent(v))
		return sy_fail(err, "model: field required");
	if (!json_is_string(v) || json_string_length(v) == 0)
		return sy_fail(err, "model: must be a non-empty string");
	json_object_set(out, "model", v);

	v = json_object_get(in, "max_tokens");
	if (absent(v))
		return sy_fail(err, "max_tokens: field required");
	if (!json_is_integer(v) || json_integer_value(v) < 1)
		return sy_fail(err, "max_tokens: must be a positive integer");
	json_object_set(out, "max_tokens", v);

	for (i = 0; i < sizeof numbers / sizeof numbers[0]; i++) {
		if (absent(v = json_object_get(in, numbers[i])))
			continue;
		if (!json_is_number(v))
			return sy_fail(err, "%s: must be a number", numbers[i]);
		json_object_set(out, numbers[i], v);
	}
	/* top_k has no canonical field: dropped. */

	v = json_object_get(in, "stop_sequences");
	if (!absent(v)) {
		if (!json_is_array(v))
			return sy_fail(err, "stop_sequences: must be an array of "
			    "strings");
		json_array_foreach(v, i, s)
			if (!json_is_string(s))
				return sy_fail(err, "stop_sequences.%zu: must be a "
				    "string", i);
		if (json_array_size(v) > 0)
			json_object_set(out, "stop", v);
	}

	v = json_object_get(in, "stream");
	if (!absent(v) && !json_is_boolean(v))
		return sy_fail(err, "stream: must be a boolean");
	if (json_is_true(v)) {
		json_object_set_new(out, "stream", json_true());
		/* The usage chunk gives message_delta its counts. */
		json_object_set_new(out, "stream_options", json_pack("{s:b}",
		    "include_usage", 1));
	}

	v = json_object_get(in, "metadata");
	if (!absent(v)) {
		if (!json_is_object(v))
			return sy_fail(err, "metadata: must be an object");
		s = json_object_get(v, "user_id");
		if (json_is_string(s))
			json_object_set(out, "user", s);
		else if (!absent(s))
			return sy_fail(err, "metadata.user_id: must be a string");
	}
	return 0;
}

static json_t *
anthropic_request(const char *text, size_t len, char **err)
{
	json_t *in, *out, *msgs;

	if ((in = sy_client_body(text, len, err)) == NULL)
		return NULL;
	out = json_object();
	msgs = json_array();
	if (refuse_unsupported(in, err) != 0 ||
	    map_options(in, out, err) != 0 ||
	    map_system(json_object_get(in, "system"), msgs, err) != 0 ||
	    map_messages(json_object_get(in, "messages"), msgs, err) != 0 ||
	    map_tools(in, out, err) != 0) {
		json_decref(msgs);
		json_decref(out);
		json_decref(in);
		return NULL;
	}
	json_object_set_new(out, "messages", msgs);
	json_decref(in);
	/* The usage for message_delta comes in a last chunk. */
	if (json_is_true(json_object_get(out, "stream")))
		json_object_set_new(out, "stream_options",
		    json_pack("{s:b}", "include_usage", 1));
	return out;
}

/* ==== Whole answers ==== */

/*
 * The stop string that ended a whole answer's choice, when its backend
 * said which (a new JSON string), or NULL.  answer: the answer's text.
 */
static json_t *
stop_sequence(json_t *choice, const char *answer, size_t len)
{
	const char *lit, *finish;
	char *ctext;
	size_t n;
	json_t *v = NULL;

	finish = json_string_value(json_object_get(choice, "finish_reason"));
	if (finish == NULL || strcmp(finish, "stop") != 0 ||
	    (ctext = json_dumps(choice, JSON_COMPACT)) == NULL)
		return NULL;
	if (sy_canon_stop_string(ctext, strlen(ctext), answer, len, &lit, &n))
		v = json_loadb(lit, n, JSON_DECODE_ANY, NULL);
	free(ctext);
	return v;
}

/* The text of a message's content: a string, or the texts of its parts. */
static void
content_text(json_t *content, struct evbuffer *out)
{
	json_t *p, *t;
	size_t i;

	if (json_is_string(content)) {
		evbuffer_add(out, json_string_value(content),
		    json_string_length(content));
		return;
	}
	json_array_foreach(content, i, p)
		if (json_is_string(t = json_object_get(p, "text")))
			evbuffer_add(out, json_string_value(t),
			    json_string_length(t));
}

/* The tool_use block of OpenAI's tool call i, or NULL (*err set). */
static json_t *
tool_use_block(json_t *call, size_t i, char **err)
{
	json_t *fn = json_object_get(call, "function");
	json_t *args = json_object_get(fn, "arguments"), *input, *id;
	const char *name = json_string_value(json_object_get(fn, "name"));
	const char *text = json_is_string(args) ? json_string_value(args) : "";
	char buf[64];

	if (name == NULL) {
		sy_fail(err, "backend answer's tool call %zu has no name", i);
		return NULL;
	}
	input = text[strspn(text, " \t\r\n")] == '\0' ? json_object() :
	    json_loads(text, 0, NULL);
	if (!json_is_object(input)) {
		json_decref(input);
		sy_fail(err, "backend answer's tool call %zu (%s) has arguments "
		    "that are not a JSON object", i, name);
		return NULL;
	}
	if (json_is_string(id = json_object_get(call, "id")))
		json_incref(id);
	else {
		sy_client_random_id(buf, sizeof buf, "toolu_");
		id = json_string(buf);
	}
	return json_pack("{s:s,s:o,s:s,s:o}", "type", "tool_use", "id", id,
	    "name", name, "input", input);
}

static int
anthropic_response(struct evbuffer *body, const char *model,
    const json_t *echo, struct evbuffer *out, char **err)
{
	size_t len = evbuffer_get_length(body);
	const char *text = (const char *)evbuffer_pullup(body, -1);
	json_t *in, *msg, *choice, *content, *calls, *call, *block, *res, *stop;
	struct sy_usage u = { -1, -1, -1 };
	struct evbuffer *buf;
	const char *finish, *id;
	char idbuf[128], *dump;
	json_int_t prompt, cached;
	size_t i;

	*err = NULL;
	in = json_loadb(text != NULL ? text : "", len, 0, NULL);
	choice = json_array_get(json_object_get(in, "choices"), 0);
	msg = json_object_get(choice, "message");
	if (!json_is_object(msg)) {
		json_decref(in);
		return sy_fail(err, "backend answer is not a chat completion");
	}
	content = json_array();
	buf = evbuffer_new();
	content_text(json_object_get(msg, "content"), buf);
	if (evbuffer_get_length(buf) > 0)
		json_array_append_new(content, json_pack("{s:s,s:s%}", "type",
		    "text", "text", (const char *)evbuffer_pullup(buf, -1),
		    evbuffer_get_length(buf)));
	evbuffer_free(buf);
	calls = json_object_get(msg, "tool_calls");
	json_array_foreach(calls, i, call) {
		if ((block = tool_use_block(call, i, err)) == NULL) {
			json_decref(content);
			json_decref(in);
			return -1;
		}
		json_array_append_new(content, block);
	}

	id = json_string_value(json_object_get(in, "id"));
	message_id(id, id != NULL ? strlen(id) : 0, idbuf, sizeof idbuf);
	finish = json_string_value(json_object_get(choice, "finish_reason"));
	sy_canon_answer_usage(text, len, &u);
	prompt = u.prompt_tokens > 0 ? u.prompt_tokens : 0;
	cached = u.cached_tokens > 0 ? u.cached_tokens : 0;
	if (cached > prompt)
		cached = prompt;
	stop = stop_sequence(choice, text, len);
	res = json_pack("{s:s,s:s,s:s,s:s,s:o,s:s,s:o,s:{s:I,s:I,s:I,s:I}}",
	    "id", idbuf, "type", "message", "role", "assistant",
	    "model", model != NULL ? model : "", "content", content,
	    "stop_reason", stop != NULL ? "stop_sequence" : stop_reason(finish,
	    finish != NULL ? strlen(finish) : 0, json_array_size(calls) > 0),
	    "stop_sequence", stop != NULL ? stop : json_null(),
	    "usage", "input_tokens", prompt - cached,
	    "output_tokens", (json_int_t)(u.completion_tokens > 0 ?
	    u.completion_tokens : 0),
	    "cache_read_input_tokens", cached,
	    "cache_creation_input_tokens", (json_int_t)0);
	json_decref(in);
	dump = res != NULL ? json_dumps(res, JSON_COMPACT) : NULL;
	json_decref(res);
	if (dump == NULL)
		return sy_fail(err, "answer could not be encoded");
	evbuffer_add(out, dump, strlen(dump));
	free(dump);
	return 0;
}

/* ==== Streams ==== */

/* The kind of the content block open in a stream. */
enum block { BLOCK_NONE, BLOCK_TEXT, BLOCK_TOOL };

/* What a stream's translation keeps between events. */
struct stream {
	char *model;
	int started;		/* message_start sent */
	int done;		/* message_stop or an error sent: nothing more */
	enum block open;	/* the open content block */
	int nblocks;		/* content blocks started */
	int64_t tool_k;		/* OpenAI index of the open tool call */
	int64_t max_k;		/* highest OpenAI tool index started, -1 */
	char tool_id[128];	/* its id's JSON text, "" when it had none */
	char stop[24];		/* Anthropic's stop_reason, "" until known */
	char *stop_seq;		/* JSON string of the stop string that ended
				   it, when the backend said; or NULL */
	int64_t prompt, completion, cached;
};

static void *
anthropic_stream_open(const char *model, const json_t *echo)
{
	struct stream *st = sy_xcalloc(1, sizeof *st);

	st->model = sy_xstrdup(model != NULL ? model : "");
	st->max_k = -1;
	return st;
}

static void
anthropic_stream_close(void *state)
{
	struct stream *st = state;

	if (st == NULL)
		return;
	free(st->model);
	free(st->stop_seq);
	free(st);
}

/* Appends an event's start through its data's "type" member. */
static void
event_begin(struct evbuffer *out, const char *name)
{
	evbuffer_add_printf(out, "event: %s\ndata: {\"type\":\"%s\"", name, name);
}

/* Appends the end of an event begun with event_begin. */
static void
event_end(struct evbuffer *out)
{
	SY_ADD_LIT(out, "}\n\n");
}

/*
 * The next element of a JSON array that jscan validated: *p is after the
 * '[' or the last element; sets *v and *len to the element's text.
 * Returns 0 at the array's end.
 */
static int
element_next(const char **p, const char *end, const char **v, size_t *len)
{
	const char *s = *p;
	int depth = 0;

	while (s < end && strchr(" \t\r\n,", *s) != NULL)
		s++;
	if (s >= end || *s == ']')
		return 0;
	*v = s;
	for (; s < end; s++) {
		if (*s == '"') {
			for (s++; s < end && *s != '"'; s++)
				if (*s == '\\')
					s++;
			if (depth == 0) {
				s++;
				break;
			}
		} else if (*s == '{' || *s == '[')
			depth++;
		else if (*s == '}' || *s == ']') {
			if (depth == 0)
				break;
			if (--depth == 0) {
				s++;
				break;
			}
		} else if (depth == 0 && strchr(" \t\r\n,", *s) != NULL)
			break;
	}
	*len = (size_t)(s - *v);
	*p = s;
	return 1;
}

/* message_start, before anything else of the stream; id: the chunk's id member. */
static void
stream_start(struct stream *st, const struct sy_jscan_member *id,
    struct evbuffer *out)
{
	char buf[128];

	if (st->started)
		return;
	st->started = 1;
	if (id != NULL && id->kind == SY_JSON_STRING)
		message_id(id->value + 1, id->len - 2, buf, sizeof buf);
	else
		message_id(NULL, 0, buf, sizeof buf);
	event_begin(out, "message_start");
	evbuffer_add_printf(out, ",\"message\":{\"id\":\"%s\",\"type\":"
	    "\"message\",\"role\":\"assistant\",\"model\":\"", buf);
	sy_json_escape(out, st->model, strlen(st->model));
	SY_ADD_LIT(out, "\",\"content\":[],\"stop_reason\":null,"
	    "\"stop_sequence\":null,\"usage\":{\"input_tokens\":0,"
	    "\"output_tokens\":0}}");
	event_end(out);
}

/* content_block_stop for the open block, if any. */
static void
block_stop(struct stream *st, struct evbuffer *out)
{
	if (st->open == BLOCK_NONE)
		return;
	event_begin(out, "content_block_stop");
	evbuffer_add_printf(out, ",\"index\":%d", st->nblocks - 1);
	event_end(out);
	st->open = BLOCK_NONE;
}

/* A text delta (a JSON string's text, quotes included). */
static void
on_text(struct stream *st, const char *lit, size_t len, struct evbuffer *out)
{
	if (st->open != BLOCK_TEXT) {
		block_stop(st, out);
		event_begin(out, "content_block_start");
		evbuffer_add_printf(out, ",\"index\":%d,\"content_block\":"
		    "{\"type\":\"text\",\"text\":\"\"}", st->nblocks++);
		event_end(out);
		st->open = BLOCK_TEXT;
	}
	event_begin(out, "content_block_delta");
	evbuffer_add_printf(out, ",\"index\":%d,\"delta\":{\"type\":"
	    "\"text_delta\",\"text\":", st->nblocks - 1);
	evbuffer_add(out, lit, len);
	SY_ADD_LIT(out, "}");
	event_end(out);
}

/*
 * One element of a delta's tool_calls: a new call (a higher index, or a
 * different id) opens a tool_use block; its arguments pieces are
 * input_json_delta events.  Pieces of a call whose block was closed
 * already cannot be sent and are dropped.
 */
static void
on_tool_call(struct stream *st, const char *text, size_t len,
    struct evbuffer *out)
{
	enum { T_INDEX, T_ID, T_FUNCTION, T_N };
	enum { F_NAME, F_ARGS, F_N };
	struct sy_jscan_member t[T_N] = {
		{ .key = "index" }, { .key = "id" }, { .key = "function" }
	};
	struct sy_jscan_member f[F_N] = {
		{ .key = "name" }, { .key = "arguments" }
	};
	int64_t k;
	int has_id, fresh;
	char buf[64];

	if (sy_jscan(text, len, t, T_N) != SY_JSON_OBJECT)
		return;
	if (t[T_FUNCTION].kind == SY_JSON_OBJECT)
		sy_jscan(t[T_FUNCTION].value, t[T_FUNCTION].len, f, F_N);
	has_id = t[T_ID].kind == SY_JSON_STRING && t[T_ID].len > 2;
	if (t[T_INDEX].kind == SY_JSON_INTEGER)
		k = sy_jscan_integer(t[T_INDEX].value, t[T_INDEX].len);
	else
		k = st->max_k < 0 ? 0 : has_id ? st->max_k + 1 : st->max_k;
	fresh = k > st->max_k || (has_id && k == st->tool_k &&
	    (t[T_ID].len != strlen(st->tool_id) ||
	    memcmp(t[T_ID].value, st->tool_id, t[T_ID].len) != 0));
	if (fresh) {
		block_stop(st, out);
		event_begin(out, "content_block_start");
		evbuffer_add_printf(out, ",\"index\":%d,\"content_block\":"
		    "{\"type\":\"tool_use\",\"id\":", st->nblocks++);
		if (has_id)
			evbuffer_add(out, t[T_ID].value, t[T_ID].len);
		else {
			sy_client_random_id(buf, sizeof buf, "toolu_");
			evbuffer_add_printf(out, "\"%s\"", buf);
		}
		SY_ADD_LIT(out, ",\"name\":");
		if (f[F_NAME].kind == SY_JSON_STRING)
			evbuffer_add(out, f[F_NAME].value, f[F_NAME].len);
		else
			SY_ADD_LIT(out, "\"\"");
		SY_ADD_LIT(out, ",\"input\":{}}");
		event_end(out);
		st->open = BLOCK_TOOL;
		st->tool_k = k;
		if (k > st->max_k)
			st->max_k = k;
		st->tool_id[0] = '\0';
		if (has_id && t[T_ID].len < sizeof st->tool_id) {
			memcpy(st->tool_id, t[T_ID].value, t[T_ID].len);
			st->tool_id[t[T_ID].len] = '\0';
		}
	} else if (st->open != BLOCK_TOOL || k != st->tool_k)
		return;
	if (f[F_ARGS].kind == SY_JSON_STRING && f[F_ARGS].len > 2) {
		event_begin(out, "content_block_delta");
		evbuffer_add_printf(out, ",\"index\":%d,\"delta\":{\"type\":"
		    "\"input_json_delta\",\"partial_json\":", st->nblocks - 1);
		evbuffer_add(out, f[F_ARGS].value, f[F_ARGS].len);
		SY_ADD_LIT(out, "}");
		event_end(out);
	}
}

/* The first choice of a chunk: its delta's text and tool calls, its finish reason. */
static void
on_choice(struct stream *st, const char *text, size_t len,
    const char *chunk, size_t chunk_len, struct evbuffer *out)
{
	enum { C_DELTA, C_FINISH, C_N };
	enum { D_CONTENT, D_TOOLS, D_N };
	struct sy_jscan_member c[C_N] = {
		{ .key = "delta" }, { .key = "finish_reason" }
	};
	struct sy_jscan_member d[D_N] = {
		{ .key = "content" }, { .key = "tool_calls" }
	};
	const char *p, *end, *v;
	size_t n;

	if (sy_jscan(text, len, c, C_N) != SY_JSON_OBJECT)
		return;
	if (c[C_DELTA].kind == SY_JSON_OBJECT) {
		sy_jscan(c[C_DELTA].value, c[C_DELTA].len, d, D_N);
		if (d[D_CONTENT].kind == SY_JSON_STRING && d[D_CONTENT].len > 2)
			on_text(st, d[D_CONTENT].value, d[D_CONTENT].len, out);
		if (d[D_TOOLS].kind == SY_JSON_ARRAY) {
			p = d[D_TOOLS].value + 1;
			end = d[D_TOOLS].value + d[D_TOOLS].len;
			while (element_next(&p, end, &v, &n))
				on_tool_call(st, v, n, out);
		}
	}
	if (c[C_FINISH].kind != SY_JSON_STRING)
		return;
	snprintf(st->stop, sizeof st->stop, "%s", stop_reason(
	    c[C_FINISH].value + 1, c[C_FINISH].len - 2, st->max_k >= 0));
	if (is(c[C_FINISH].value + 1, c[C_FINISH].len - 2, "stop") &&
	    sy_canon_stop_string(text, len, chunk, chunk_len, &p, &n)) {
		snprintf(st->stop, sizeof st->stop, "stop_sequence");
		free(st->stop_seq);
		st->stop_seq = sy_xstrndup(p, n);
	}
}

/* The counts of an OpenAI usage object and llama.cpp's timings (JSON texts). */
static void
on_usage(struct stream *st, const struct sy_jscan_member *usage,
    const struct sy_jscan_member *timings)
{
	struct sy_usage u = { -1, -1, -1 };

	sy_canon_usage_read(usage->value, usage->len,
	    timings->kind == SY_JSON_OBJECT ? timings->value : NULL,
	    timings->len, &u);
	st->prompt = u.prompt_tokens > 0 ? u.prompt_tokens : 0;
	st->completion = u.completion_tokens > 0 ? u.completion_tokens : 0;
	st->cached = u.cached_tokens > 0 ? u.cached_tokens : 0;
	if (st->cached > st->prompt)
		st->cached = st->prompt;
}

/* "[DONE]": the open block's end, message_delta, message_stop. */
static void
on_done(struct stream *st, struct evbuffer *out)
{
	stream_start(st, NULL, out);
	block_stop(st, out);
	event_begin(out, "message_delta");
	evbuffer_add_printf(out, ",\"delta\":{\"stop_reason\":\"%s\","
	    "\"stop_sequence\":", st->stop[0] != '\0' ? st->stop :
	    stop_reason(NULL, 0, st->max_k >= 0));
	if (st->stop_seq != NULL)
		evbuffer_add(out, st->stop_seq, strlen(st->stop_seq));
	else
		SY_ADD_LIT(out, "null");
	evbuffer_add_printf(out, "},\"usage\":{\"input_tokens\":%lld,"
	    "\"output_tokens\":%lld,\"cache_read_input_tokens\":%lld,"
	    "\"cache_creation_input_tokens\":0}",
	    (long long)(st->prompt - st->cached), (long long)st->completion,
	    (long long)st->cached);
	event_end(out);
	event_begin(out, "message_stop");
	event_end(out);
	st->done = 1;
}

/*
 * An OpenAI error event (its "error" object's text, NULL when the event
 * was no JSON object) as Anthropic's error event; the stream ends.
 */
static void
on_error(struct stream *st, const char *text, size_t len,
    struct evbuffer *out)
{
	enum { E_MESSAGE, E_TYPE, E_CODE, E_N };
	struct sy_jscan_member e[E_N] = {
		{ .key = "message" }, { .key = "type" }, { .key = "code" }
	};
	const struct sy_jscan_member *t = &e[E_TYPE], *c = &e[E_CODE];

	if (text != NULL)
		sy_jscan(text, len, e, E_N);
	event_begin(out, "error");
	evbuffer_add_printf(out, ",\"error\":{\"type\":\"%s\",\"message\":",
	    error_type(0, t->kind == SY_JSON_STRING ? t->value + 1 : NULL,
	    t->kind == SY_JSON_STRING ? t->len - 2 : 0,
	    c->kind == SY_JSON_STRING ? c->value + 1 : NULL,
	    c->kind == SY_JSON_STRING ? c->len - 2 : 0));
	if (e[E_MESSAGE].kind == SY_JSON_STRING)
		evbuffer_add(out, e[E_MESSAGE].value, e[E_MESSAGE].len);
	else if (text == NULL)
		SY_ADD_LIT(out, "\"backend sent a stream event that is not a "
		    "JSON object\"");
	else
		SY_ADD_LIT(out, "\"the stream failed\"");
	SY_ADD_LIT(out, "}");
	event_end(out);
	st->done = 1;
}

static void
anthropic_stream_event(void *state, const struct sy_sse_event *ev,
    struct evbuffer *out)
{
	enum { K_ID, K_CHOICES, K_USAGE, K_ERROR, K_TIMINGS, K_N };
	struct stream *st = state;
	struct sy_jscan_member m[K_N] = {
		{ .key = "id" }, { .key = "choices" }, { .key = "usage" },
		{ .key = "error" }, { .key = "timings" }
	};
	const char *p, *end, *v;
	size_t n;

	if (st->done)
		return;
	if (ev->data == NULL) {
		event_begin(out, "ping");
		event_end(out);
		return;
	}
	if (is(ev->data, ev->data_len, "[DONE]")) {
		on_done(st, out);
		return;
	}
	if (sy_jscan(ev->data, ev->data_len, m, K_N) != SY_JSON_OBJECT) {
		on_error(st, NULL, 0, out);
		return;
	}
	if (m[K_ERROR].kind == SY_JSON_OBJECT) {
		on_error(st, m[K_ERROR].value, m[K_ERROR].len, out);
		return;
	}
	stream_start(st, &m[K_ID], out);
	if (m[K_CHOICES].kind == SY_JSON_ARRAY) {
		p = m[K_CHOICES].value + 1;
		end = m[K_CHOICES].value + m[K_CHOICES].len;
		/* n is always 1: only the first choice is the message. */
		if (element_next(&p, end, &v, &n))
			on_choice(st, v, n, ev->data, ev->data_len, out);
	}
	if (m[K_USAGE].kind == SY_JSON_OBJECT)
		on_usage(st, &m[K_USAGE], &m[K_TIMINGS]);
}

static const struct sy_client_path anthropic_paths[] = {
	{ "/v1/messages", SY_API_CHAT },
	{ NULL, 0 }
};

const struct sy_client_api sy_client_anthropic = {
	.name = "anthropic",
	.paths = anthropic_paths,
	.request = anthropic_request,
	.response = anthropic_response,
	.stream_open = anthropic_stream_open,
	.stream_event = anthropic_stream_event,
	.stream_close = anthropic_stream_close,
	.error = anthropic_error,
	.request_id_header = "request-id",
	.ratelimit_headers = SY_RATELIMIT_ANTHROPIC
};
