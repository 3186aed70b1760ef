/* ollama: Ollama's native API (/api/chat, /api/generate, /api/embed), spoken to OpenAI clients. */
/*
 * Requests: chat → /api/chat {"model","messages","stream","options"};
 * completions → /api/generate {"model","prompt","stream","options"};
 * embeddings → /api/embed {"model","input"}.  "stream" is always sent, as
 * Ollama streams by default.  OpenAI's sampling fields go in "options"
 * (max_tokens → num_predict).  What Ollama cannot take as OpenAI means it
 * (images, tools, several prompts or choices, token ids, logprobs) is a
 * 400 naming the field.
 *
 * Answers become OpenAI's shapes: chat.completion, text_completion and an
 * embeddings list (usage from prompt_eval_count and eval_count; Ollama
 * reports no cached tokens, so they are 0).  A stream (NDJSON, one object
 * a line) becomes OpenAI's SSE chunks, the usage chunk when the client
 * asked for it, and "data: [DONE]".  Errors {"error": "..."} become
 * {"error":{"message","type","code"}} with the status kept.
 *
 * Answers are read with sy_jscan and written by hand: strings and numbers
 * are copied as the backend wrote them, never re-serialised.
 */
#include <stdarg.h>
#include <stdint.h>
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

/* ==== Encoding ==== */

/* The member key of obj, NULL when absent or null. */
static json_t *
member(const json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	return json_is_null(v) ? NULL : v;
}

static const char no_tools[] = "tools are not supported with the ollama "
    "backend";

/* Copies number member key of body into opts as name. */
static int
number_option(const json_t *body, const char *key, json_t *opts,
    const char *name, char **err)
{
	json_t *v = member(body, key);

	if (v == NULL)
		return 0;
	if (!json_is_number(v))
		return sy_fail(err, "'%s' must be a number", key);
	json_object_set(opts, name, v);
	return 0;
}

/*
 * Fills opts (Ollama's "options") from the OpenAI sampling fields of body:
 * max_completion_tokens or max_tokens, temperature, top_p, the penalties,
 * seed and stop.
 */
static int
encode_options(const json_t *body, json_t *opts, char **err)
{
	const char *max_key = "max_completion_tokens";
	json_t *v, *s, *stop;
	size_t i;

	if ((v = member(body, max_key)) == NULL)
		v = member(body, max_key = "max_tokens");
	if (v != NULL) {
		if (!json_is_integer(v))
			return sy_fail(err, "'%s' must be an integer", max_key);
		json_object_set(opts, "num_predict", v);
	}
	if (number_option(body, "temperature", opts, "temperature", err) != 0 ||
	    number_option(body, "top_p", opts, "top_p", err) != 0 ||
	    number_option(body, "frequency_penalty", opts, "frequency_penalty",
	    err) != 0 ||
	    number_option(body, "presence_penalty", opts, "presence_penalty",
	    err) != 0)
		return -1;
	if ((v = member(body, "seed")) != NULL) {
		if (!json_is_integer(v))
			return sy_fail(err, "'seed' must be an integer");
		json_object_set(opts, "seed", v);
	}
	if ((v = member(body, "stop")) == NULL)
		return 0;
	if (json_is_string(v)) {
		stop = json_array();
		json_array_append(stop, v);
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, s) {
			if (!json_is_string(s))
				return sy_fail(err, "'stop' must be a string or "
				    "an array of strings");
		}
		stop = json_incref(v);
	} else
		return sy_fail(err, "'stop' must be a string or an array of "
		    "strings");
	json_object_set_new(opts, "stop", stop);
	return 0;
}

/* Refuses what OpenAI asks of chat and completions that Ollama cannot do. */
static int
encode_refusals(const json_t *body, char **err)
{
	json_t *v;

	if ((v = member(body, "n")) != NULL &&
	    (!json_is_integer(v) || json_integer_value(v) != 1))
		return sy_fail(err, "'n' other than 1 is not supported with the "
		    "ollama backend");
	if ((v = member(body, "best_of")) != NULL &&
	    (!json_is_integer(v) || json_integer_value(v) != 1))
		return sy_fail(err, "'best_of' other than 1 is not supported "
		    "with the ollama backend");
	if (((v = member(body, "logprobs")) != NULL && !json_is_false(v)) ||
	    member(body, "top_logprobs") != NULL)
		return sy_fail(err, "'logprobs' are not supported with the "
		    "ollama backend");
	if ((v = member(body, "echo")) != NULL && !json_is_false(v))
		return sy_fail(err, "'echo' is not supported with the ollama "
		    "backend");
	return 0;
}

/* Whether v (a member of a request) asks for tools: present, not null, not empty. */
static int
has_tools(const json_t *v)
{
	return v != NULL && !json_is_null(v) &&
	    !(json_is_array(v) && json_array_size(v) == 0);
}

/*
 * The content of message i as one string: a string as is, null or absent
 * as "", text parts joined with "\n".  Any other part is refused, naming it.
 */
static json_t *
encode_content(const json_t *content, size_t i, char **err)
{
	json_t *part, *type, *text;
	char *joined = NULL, *grown;
	size_t j, len = 0, n;

	if (content == NULL || json_is_null(content))
		return json_string("");
	if (json_is_string(content))
		return json_incref((json_t *)content);
	if (!json_is_array(content)) {
		sy_fail(err, "'messages[%zu].content' must be a string, an array "
		    "of content parts or null", i);
		return NULL;
	}
	json_array_foreach(content, j, part) {
		type = json_object_get(part, "type");
		text = json_object_get(part, "text");
		if (!json_is_string(type) || !json_is_string(text) ||
		    strcmp(json_string_value(type), "text") != 0) {
			free(joined);
			if (json_is_string(type) &&
			    strcmp(json_string_value(type), "text") != 0)
				sy_fail(err, "'messages[%zu].content[%zu]' is a "
				    "'%.40s' part: only text parts are supported "
				    "with the ollama backend", i, j,
				    json_string_value(type));
			else
				sy_fail(err, "'messages[%zu].content[%zu]' must "
				    "be a text part {\"type\":\"text\",\"text\":"
				    "...}", i, j);
			return NULL;
		}
		n = json_string_length(text);
		grown = realloc(joined, len + n + 2);
		if (grown == NULL) {
			free(joined);
			sy_fail(err, "out of memory");
			return NULL;
		}
		joined = grown;
		if (j > 0)
			joined[len++] = '\n';
		memcpy(joined + len, json_string_value(text), n);
		len += n;
	}
	text = json_stringn(joined != NULL ? joined : "", len);
	free(joined);
	if (text == NULL)
		sy_fail(err, "'messages[%zu].content' is not valid UTF-8", i);
	return text;
}

/* Ollama's messages from OpenAI's, into o. */
static int
encode_messages(const json_t *body, json_t *o, char **err)
{
	json_t *msgs = json_object_get(body, "messages"), *out, *m, *role,
	    *content;
	const char *r;
	size_t i;

	if (json_array_size(msgs) == 0)
		return sy_fail(err, "'messages' must not be empty");
	out = json_array();
	json_object_set_new(o, "messages", out);
	json_array_foreach(msgs, i, m) {
		if (!json_is_object(m))
			return sy_fail(err, "'messages[%zu]' must be an object",
			    i);
		role = json_object_get(m, "role");
		if (!json_is_string(role))
			return sy_fail(err, "'messages[%zu].role' must be a "
			    "string", i);
		r = json_string_value(role);
		if (strcmp(r, "tool") == 0 || strcmp(r, "function") == 0 ||
		    has_tools(json_object_get(m, "tool_calls")) ||
		    has_tools(json_object_get(m, "function_call")))
			return sy_fail(err, "%s ('messages[%zu]')", no_tools, i);
		/* OpenAI's developer messages are system prompts. */
		if (strcmp(r, "developer") == 0)
			r = "system";
		content = encode_content(json_object_get(m, "content"), i, err);
		if (content == NULL)
			return -1;
		json_array_append_new(out, json_pack("{ssso}", "role", r,
		    "content", content));
	}
	return 0;
}

/* response_format: json_object → "json", json_schema → its schema. */
static int
encode_format(const json_t *body, json_t *o, char **err)
{
	json_t *rf = member(body, "response_format"), *schema;
	const char *type;

	if (rf == NULL)
		return 0;
	type = json_string_value(json_object_get(rf, "type"));
	if (type == NULL)
		return sy_fail(err, "'response_format.type' must be a string");
	if (strcmp(type, "text") == 0)
		return 0;
	if (strcmp(type, "json_object") == 0) {
		json_object_set_new(o, "format", json_string("json"));
		return 0;
	}
	schema = json_object_get(json_object_get(rf, "json_schema"), "schema");
	if (strcmp(type, "json_schema") != 0 || !json_is_object(schema))
		return sy_fail(err, "'response_format' must be of type text, "
		    "json_object, or json_schema with a schema object");
	json_object_set(o, "format", schema);
	return 0;
}

static int
encode_chat(const json_t *body, json_t *o, json_t *opts, char **err)
{
	if (has_tools(json_object_get(body, "tools")) ||
	    has_tools(json_object_get(body, "functions")))
		return sy_fail(err, "%s", no_tools);
	if (encode_refusals(body, err) != 0 ||
	    encode_messages(body, o, err) != 0 ||
	    encode_format(body, o, err) != 0)
		return -1;
	return encode_options(body, opts, err);
}

static int
encode_generate(const json_t *body, json_t *o, json_t *opts, char **err)
{
	json_t *prompt = json_object_get(body, "prompt"), *v;

	if (json_is_array(prompt) && json_array_size(prompt) == 1 &&
	    json_is_string(json_array_get(prompt, 0)))
		prompt = json_array_get(prompt, 0);
	if (json_is_array(prompt) && json_array_size(prompt) > 1 &&
	    json_is_string(json_array_get(prompt, 0)))
		return sy_fail(err, "several prompts in 'prompt' are not "
		    "supported with the ollama backend: send one string");
	if (json_is_array(prompt) && json_array_size(prompt) > 0)
		return sy_fail(err, "token ids in 'prompt' are not supported "
		    "with the ollama backend: send a string");
	if (!json_is_string(prompt))
		return sy_fail(err, "'prompt' must be a string");
	json_object_set(o, "prompt", prompt);
	if ((v = member(body, "suffix")) != NULL) {
		if (!json_is_string(v))
			return sy_fail(err, "'suffix' must be a string");
		json_object_set(o, "suffix", v);
	}
	if (encode_refusals(body, err) != 0 ||
	    encode_format(body, o, err) != 0)
		return -1;
	return encode_options(body, opts, err);
}

static int
encode_embed(const json_t *body, json_t *o, char **err)
{
	json_t *input = json_object_get(body, "input"), *v;
	const char *fmt;
	size_t i;

	if (json_is_array(input)) {
		if (json_array_size(input) == 0)
			return sy_fail(err, "'input' must not be empty");
		json_array_foreach(input, i, v) {
			if (json_is_string(v))
				continue;
			if (json_is_integer(v) || json_is_array(v))
				return sy_fail(err, "token ids in 'input' are not "
				    "supported with the ollama backend: send "
				    "strings");
			return sy_fail(err, "'input[%zu]' must be a string", i);
		}
	} else if (!json_is_string(input))
		return sy_fail(err, "'input' must be a string or an array of "
		    "strings");
	json_object_set(o, "input", input);
	if ((v = member(body, "dimensions")) != NULL) {
		if (!json_is_integer(v))
			return sy_fail(err, "'dimensions' must be an integer");
		json_object_set(o, "dimensions", v);
	}
	if ((v = member(body, "encoding_format")) != NULL &&
	    (!(fmt = json_string_value(v)) || (strcmp(fmt, "float") != 0 &&
	    strcmp(fmt, "base64") != 0)))
		return sy_fail(err, "'encoding_format' must be \"float\" or "
		    "\"base64\"");
	return 0;
}

static const char *const api_paths[] = {
	"/api/chat", "/api/generate", "/api/embed"
};

static int
ollama_encode(const struct sy_req *req, const struct sy_endpoint *ep,
    struct evbuffer *out, struct sy_upstream_req *up, char **err)
{
	json_t *o = json_object(), *opts = json_object();
	char *text;
	int rc;

	if (req->api == SY_API_RERANK) {
		json_decref(o);
		json_decref(opts);
		return sy_fail(err, "rerank is not served by ollama backends");
	}
	snprintf(up->path, sizeof up->path, "%s", api_paths[req->api]);
	sy_backend_bearer(ep, up->headers, sizeof up->headers);
	json_object_set_new(o, "model", json_string(req->model));
	switch (req->api) {
	case SY_API_CHAT:
		rc = encode_chat(sy_req_body(req), o, opts, err);
		break;
	case SY_API_COMPLETIONS:
		rc = encode_generate(sy_req_body(req), o, opts, err);
		break;
	default:
		rc = encode_embed(sy_req_body(req), o, err);
		break;
	}
	if (rc == 0 && req->api != SY_API_EMBEDDINGS) {
		/* Ollama streams unless told not to. */
		json_object_set_new(o, "stream", json_boolean(req->stream));
		if (json_object_size(opts) > 0)
			json_object_set(o, "options", opts);
	}
	json_decref(opts);
	if (rc != 0) {
		json_decref(o);
		return -1;
	}
	text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (text == NULL)
		return sy_fail(err, "request could not be encoded");
	evbuffer_add(out, text, strlen(text));
	free(text);
	return 0;
}

/* ==== Decoding ==== */

/* The top-level members of an Ollama answer or stream line. */
enum {
	M_ERROR, M_MODEL, M_CREATED_AT, M_MESSAGE, M_RESPONSE, M_DONE,
	M_DONE_REASON, M_PROMPT_EVAL_COUNT, M_EVAL_COUNT, M_EMBEDDINGS,
	M_COUNT
};

static enum sy_json_kind
scan(const char *text, size_t len, struct sy_jscan_member m[M_COUNT])
{
	static const char *const keys[M_COUNT] = {
		"error", "model", "created_at", "message", "response", "done",
		"done_reason", "prompt_eval_count", "eval_count", "embeddings"
	};
	size_t i;

	for (i = 0; i < M_COUNT; i++)
		m[i].key = keys[i];
	return sy_jscan(text != NULL ? text : "", len, m, M_COUNT);
}

/* An integer member's value, 0 when absent or not an integer. */
static int64_t
count_of(const struct sy_jscan_member *m)
{
	return m->kind == SY_JSON_INTEGER ? sy_jscan_integer(m->value, m->len) :
	    0;
}

/* The text of a string member, or of "" when it is not a string. */
static void
text_of(const struct sy_jscan_member *m, const char **text, size_t *len)
{
	if (m->kind == SY_JSON_STRING) {
		*text = m->value;
		*len = m->len;
	} else {
		*text = "\"\"";
		*len = 2;
	}
}

/*
 * Seconds since the epoch of an RFC 3339 time ("2025-01-01T12:34:56.5Z",
 * or with an offset such as "+02:00") given as JSON string text; now when
 * it is not one.
 */
static long long
created_of(const struct sy_jscan_member *m)
{
	char buf[64], *p;
	struct tm tm;
	int oh, om;
	time_t t;

	if (m->kind != SY_JSON_STRING || m->len < 3 || m->len > sizeof buf)
		return (long long)time(NULL);
	memcpy(buf, m->value + 1, m->len - 2);
	buf[m->len - 2] = '\0';
	memset(&tm, 0, sizeof tm);
	if ((p = strptime(buf, "%Y-%m-%dT%H:%M:%S", &tm)) == NULL)
		return (long long)time(NULL);
	t = timegm(&tm);
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++)
			;
	if ((*p == '+' || *p == '-') && sscanf(p + 1, "%2d:%2d", &oh,
	    &om) == 2)
		t -= (*p == '+' ? 1 : -1) * (time_t)(oh * 3600 + om * 60);
	return (long long)t;
}

/* OpenAI's finish_reason for Ollama's done_reason. */
static const char *
finish_of(const struct sy_jscan_member *m)
{
	return m->kind == SY_JSON_STRING && m->len == 8 &&
	    memcmp(m->value, "\"length\"", 8) == 0 ? "length" : "stop";
}

/*
 * The client's body for an error answer: Ollama's {"error": "..."} in
 * OpenAI's shape, an OpenAI-shaped error passed on, anything else wrapped
 * with a bit of its text.
 */
static void
decode_error(int status, const struct sy_jscan_member *error,
    struct evbuffer *body, struct evbuffer *out)
{
	size_t len = evbuffer_get_length(body);

	if (error->kind == SY_JSON_OBJECT) {
		evbuffer_add_buffer(out, body);
		return;
	}
	SY_ADD_LIT(out, "{\"error\":{\"message\":");
	if (error->kind == SY_JSON_STRING)
		evbuffer_add(out, error->value, error->len);
	else {
		evbuffer_add_printf(out, "\"backend returned HTTP %d", status);
		if (len > 0) {
			SY_ADD_LIT(out, ": ");
			sy_json_escape(out, (const char *)evbuffer_pullup(body,
			    -1), len < 200 ? len : 200);
		}
		SY_ADD_LIT(out, "\"");
	}
	evbuffer_add_printf(out, ",\"type\":\"%s\",\"code\":", sy_canon_error_type(status));
	if (status == 404 && error->kind == SY_JSON_STRING)
		SY_ADD_LIT(out, "\"model_not_found\"}}");
	else
		evbuffer_add_printf(out, "%d}}", status);
	evbuffer_drain(body, len);
}

/* The model as the answer names it, else the one asked for, as JSON text. */
static void
add_model(struct evbuffer *out, const struct sy_req *req,
    const struct sy_jscan_member *model)
{
	if (model->kind == SY_JSON_STRING) {
		evbuffer_add(out, model->value, model->len);
		return;
	}
	SY_ADD_LIT(out, "\"");
	sy_json_escape(out, req->model ? req->model : "",
	    req->model ? strlen(req->model) : 0);
	SY_ADD_LIT(out, "\"");
}

/*
 * Appends the start of an OpenAI answer or chunk up to the opening of its
 * choices: {"id":...,"object":...,"created":...,"model":...,"choices":[
 */
static void
add_head(struct evbuffer *out, const struct sy_req *req, const char *object,
    long long created, const struct sy_jscan_member *model)
{
	evbuffer_add_printf(out, "{\"id\":\"%s", req->api == SY_API_CHAT ?
	    "chatcmpl-" : "cmpl-");
	sy_json_escape(out, req->id, strlen(req->id));
	evbuffer_add_printf(out, "\",\"object\":\"%s\",\"created\":%lld,"
	    "\"model\":", object, created);
	add_model(out, req, model);
	SY_ADD_LIT(out, ",\"choices\":[");
}

/* Appends OpenAI's usage object for the counts u. */
static void
add_usage(struct evbuffer *out, const struct sy_usage *u)
{
	struct sy_usage v = *u;

	v.cached_tokens = 0;	/* Ollama does not say */
	SY_ADD_LIT(out, "\"usage\":");
	sy_canon_usage_put(out, &v, SY_USAGE_DETAILS);
}

/* Reads the counts of a final answer or line into u. */
static void
usage_of(const struct sy_jscan_member m[M_COUNT], struct sy_usage *u)
{
	u->prompt_tokens = count_of(&m[M_PROMPT_EVAL_COUNT]);
	u->completion_tokens = count_of(&m[M_EVAL_COUNT]);
	u->cached_tokens = 0;
}

/* The members of Ollama's message object. */
enum { MSG_CONTENT, MSG_THINKING, MSG_COUNT };

/* Finds content and thinking in message m (absent when not an object). */
static void
scan_message(const struct sy_jscan_member *m,
    struct sy_jscan_member msg[MSG_COUNT])
{
	msg[MSG_CONTENT].key = "content";
	msg[MSG_THINKING].key = "thinking";
	if (m->kind == SY_JSON_OBJECT)
		sy_jscan(m->value, m->len, msg, MSG_COUNT);
	else
		sy_jscan("", 0, msg, MSG_COUNT);
}

/* Whether a string member is there and not "". */
static int
nonempty(const struct sy_jscan_member *m)
{
	return m->kind == SY_JSON_STRING && m->len > 2;
}

static int
decode_chat(const struct sy_req *req, const struct sy_jscan_member m[M_COUNT],
    struct evbuffer *out, struct sy_usage *usage, char **err)
{
	struct sy_jscan_member msg[MSG_COUNT];
	const char *text;
	size_t len;

	if (m[M_MESSAGE].kind != SY_JSON_OBJECT)
		return sy_fail(err, "backend answer has no message object");
	scan_message(&m[M_MESSAGE], msg);
	usage_of(m, usage);
	add_head(out, req, "chat.completion", created_of(&m[M_CREATED_AT]),
	    &m[M_MODEL]);
	SY_ADD_LIT(out, "{\"index\":0,\"message\":{\"role\":\"assistant\","
	    "\"content\":");
	text_of(&msg[MSG_CONTENT], &text, &len);
	evbuffer_add(out, text, len);
	if (nonempty(&msg[MSG_THINKING])) {
		SY_ADD_LIT(out, ",\"reasoning_content\":");
		evbuffer_add(out, msg[MSG_THINKING].value, msg[MSG_THINKING].len);
	}
	evbuffer_add_printf(out, "},\"logprobs\":null,\"finish_reason\":"
	    "\"%s\"}],", finish_of(&m[M_DONE_REASON]));
	add_usage(out, usage);
	SY_ADD_LIT(out, "}");
	return 0;
}

static int
decode_generate(const struct sy_req *req,
    const struct sy_jscan_member m[M_COUNT], struct evbuffer *out,
    struct sy_usage *usage, char **err)
{
	if (m[M_RESPONSE].kind != SY_JSON_STRING)
		return sy_fail(err, "backend answer has no response string");
	usage_of(m, usage);
	add_head(out, req, "text_completion", created_of(&m[M_CREATED_AT]),
	    &m[M_MODEL]);
	SY_ADD_LIT(out, "{\"index\":0,\"text\":");
	evbuffer_add(out, m[M_RESPONSE].value, m[M_RESPONSE].len);
	evbuffer_add_printf(out, ",\"logprobs\":null,\"finish_reason\":\"%s\"}],",
	    finish_of(&m[M_DONE_REASON]));
	add_usage(out, usage);
	SY_ADD_LIT(out, "}");
	return 0;
}

/* Walks the elements of the text of a JSON array that sy_jscan validated. */
struct elements {
	const char *p, *e;	/* next byte; the closing bracket */
};

static void
elements_begin(struct elements *it, const char *text, size_t len)
{
	it->p = text + 1;
	it->e = text + len - 1;
}

/* The next element's text into *v, *n; 0 when there is none left. */
static int
elements_next(struct elements *it, const char **v, size_t *n)
{
	const char *p = it->p;
	int depth = 0, in_string = 0;

	while (p < it->e && (*p == ',' || *p == ' ' || *p == '\t' ||
	    *p == '\n' || *p == '\r'))
		p++;
	if (p >= it->e)
		return 0;
	*v = p;
	for (; p < it->e; p++) {
		if (in_string) {
			if (*p == '\\')
				p++;
			else if (*p == '"')
				in_string = 0;
		} else if (*p == '"')
			in_string = 1;
		else if (*p == '[' || *p == '{')
			depth++;
		else if (*p == ']' || *p == '}')
			depth--;
		else if (*p == ',' && depth == 0)
			break;
	}
	it->p = p;
	while (p > *v && (p[-1] == ' ' || p[-1] == '\t' || p[-1] == '\n' ||
	    p[-1] == '\r'))
		p--;
	*n = (size_t)(p - *v);
	return 1;
}

/* Appends the numbers of vector text v (n bytes) as float32 in base64. */
static int
add_base64(struct evbuffer *out, const char *v, size_t n)
{
	static const char abc[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	struct elements it;
	const char *x;
	unsigned char b[3];
	char num[64], quad[4];
	size_t len, nb = 0;
	uint32_t bits;
	float f;
	int k;

	elements_begin(&it, v, n);
	SY_ADD_LIT(out, "\"");
	while (elements_next(&it, &x, &len)) {
		if (len == 0 || len >= sizeof num || !(*x == '-' ||
		    (*x >= '0' && *x <= '9')))
			return -1;
		memcpy(num, x, len);
		num[len] = '\0';
		f = strtof(num, NULL);
		memcpy(&bits, &f, sizeof bits);
		for (k = 0; k < 4; k++) {
			b[nb++] = (unsigned char)(bits >> (8 * k));
			if (nb < 3)
				continue;
			quad[0] = abc[b[0] >> 2];
			quad[1] = abc[(b[0] & 3) << 4 | b[1] >> 4];
			quad[2] = abc[(b[1] & 15) << 2 | b[2] >> 6];
			quad[3] = abc[b[2] & 63];
			evbuffer_add(out, quad, 4);
			nb = 0;
		}
	}
	if (nb > 0) {
		if (nb == 1)
			b[1] = 0;
		quad[0] = abc[b[0] >> 2];
		quad[1] = abc[(b[0] & 3) << 4 | b[1] >> 4];
		quad[2] = nb == 2 ? abc[(b[1] & 15) << 2] : '=';
		quad[3] = '=';
		evbuffer_add(out, quad, 4);
	}
	SY_ADD_LIT(out, "\"");
	return 0;
}

static int
decode_embed(const struct sy_req *req, const struct sy_jscan_member m[M_COUNT],
    struct evbuffer *out, struct sy_usage *usage, char **err)
{
	const char *fmt = json_string_value(json_object_get(sy_req_body(req),
	    "encoding_format"));
	int base64 = fmt != NULL && strcmp(fmt, "base64") == 0;
	struct evbuffer *data = evbuffer_new();
	struct sy_jscan_member vector = { .key = "" };
	struct elements it;
	const char *v;
	size_t n, i = 0;
	int64_t prompt = count_of(&m[M_PROMPT_EVAL_COUNT]);

	if (m[M_EMBEDDINGS].kind != SY_JSON_ARRAY) {
		evbuffer_free(data);
		return sy_fail(err, "backend answer has no embeddings array");
	}
	elements_begin(&it, m[M_EMBEDDINGS].value, m[M_EMBEDDINGS].len);
	for (i = 0; elements_next(&it, &v, &n); i++) {
		if (sy_jscan(v, n, &vector, 0) != SY_JSON_ARRAY) {
			evbuffer_free(data);
			return sy_fail(err, "backend embedding %zu is not an "
			    "array", i);
		}
		evbuffer_add_printf(data, "%s{\"object\":\"embedding\","
		    "\"index\":%zu,\"embedding\":", i ? "," : "", i);
		if (!base64)
			evbuffer_add(data, v, n);
		else if (add_base64(data, v, n) != 0) {
			evbuffer_free(data);
			return sy_fail(err, "backend embedding %zu is not an "
			    "array of numbers", i);
		}
		SY_ADD_LIT(data, "}");
	}
	usage->prompt_tokens = prompt;
	SY_ADD_LIT(out, "{\"object\":\"list\",\"data\":[");
	evbuffer_add_buffer(out, data);
	evbuffer_free(data);
	SY_ADD_LIT(out, "],\"model\":");
	add_model(out, req, &m[M_MODEL]);
	SY_ADD_LIT(out, ",\"usage\":");
	sy_canon_usage_put(out, usage, SY_USAGE_EMBEDDING);
	SY_ADD_LIT(out, "}");
	return 0;
}

static int
ollama_decode(const struct sy_req *req, int status, struct evbuffer *body,
    struct evbuffer *out, struct sy_usage *usage, char **err)
{
	size_t len = evbuffer_get_length(body);
	struct sy_jscan_member m[M_COUNT];
	enum sy_json_kind kind;
	int rc;

	kind = scan((const char *)evbuffer_pullup(body, -1), len, m);
	if (status >= 400) {
		decode_error(status, &m[M_ERROR], body, out);
		return 0;
	}
	if (kind != SY_JSON_OBJECT)
		return sy_fail(err, "backend returned a body that is not a JSON "
		    "object");
	if (m[M_ERROR].kind == SY_JSON_STRING)
		return sy_fail(err, "backend answered HTTP %d with an error: "
		    "%.*s", status, (int)(m[M_ERROR].len < 200 ?
		    m[M_ERROR].len : 200), m[M_ERROR].value);
	switch (req->api) {
	case SY_API_CHAT:
		rc = decode_chat(req, m, out, usage, err);
		break;
	case SY_API_COMPLETIONS:
		rc = decode_generate(req, m, out, usage, err);
		break;
	default:
		rc = decode_embed(req, m, out, usage, err);
		break;
	}
	if (rc == 0)
		evbuffer_drain(body, len);
	return rc;
}

/* ==== Streams ==== */

struct ollama_stream {
	struct evbuffer *head;	/* "data: " and a chunk up to its choices */
	int started;		/* a chunk went out (the role with it) */
};

static void *
ollama_stream_open(const struct sy_req *req)
{
	return sy_xcalloc(1, sizeof(struct ollama_stream));
}

static void
ollama_stream_close(void *state)
{
	struct ollama_stream *s = state;

	if (s == NULL)
		return;
	if (s->head != NULL)
		evbuffer_free(s->head);
	free(s);
}

/* Appends an OpenAI error event with message, JSON string text. */
static void
add_error_event(struct evbuffer *out, const char *message, size_t len)
{
	SY_ADD_LIT(out, "data: {\"error\":{\"message\":");
	evbuffer_add(out, message, len);
	SY_ADD_LIT(out, ",\"type\":\"server_error\",\"code\":null}}\n\n");
}

/* Appends the start of a chunk: the stream's head, made from the first line. */
static void
add_chunk_head(struct ollama_stream *s, const struct sy_req *req,
    const struct sy_jscan_member m[M_COUNT], struct evbuffer *out)
{
	if (s->head == NULL) {
		s->head = evbuffer_new();
		SY_ADD_LIT(s->head, "data: ");
		add_head(s->head, req, req->api == SY_API_CHAT ?
		    "chat.completion.chunk" : "text_completion",
		    created_of(&m[M_CREATED_AT]), &m[M_MODEL]);
	}
	evbuffer_add(out, evbuffer_pullup(s->head, -1),
	    evbuffer_get_length(s->head));
}

/*
 * Appends a chunk's choice: the delta (the role in the first, the text and
 * thinking when there), and the finish reason when given.
 */
static void
add_choice(struct ollama_stream *s, const struct sy_req *req,
    const struct sy_jscan_member m[M_COUNT], const char *finish,
    struct evbuffer *out)
{
	struct sy_jscan_member msg[MSG_COUNT];
	const char *sep = "";

	if (req->api == SY_API_COMPLETIONS) {
		SY_ADD_LIT(out, "{\"index\":0,\"text\":");
		if (m[M_RESPONSE].kind == SY_JSON_STRING)
			evbuffer_add(out, m[M_RESPONSE].value, m[M_RESPONSE].len);
		else
			SY_ADD_LIT(out, "\"\"");
	} else {
		scan_message(&m[M_MESSAGE], msg);
		SY_ADD_LIT(out, "{\"index\":0,\"delta\":{");
		if (!s->started) {
			SY_ADD_LIT(out, "\"role\":\"assistant\",\"content\":");
			if (nonempty(&msg[MSG_CONTENT]))
				evbuffer_add(out, msg[MSG_CONTENT].value,
				    msg[MSG_CONTENT].len);
			else
				SY_ADD_LIT(out, "\"\"");
			sep = ",";
		} else if (nonempty(&msg[MSG_CONTENT])) {
			SY_ADD_LIT(out, "\"content\":");
			evbuffer_add(out, msg[MSG_CONTENT].value,
			    msg[MSG_CONTENT].len);
			sep = ",";
		}
		if (nonempty(&msg[MSG_THINKING])) {
			evbuffer_add_printf(out, "%s\"reasoning_content\":", sep);
			evbuffer_add(out, msg[MSG_THINKING].value,
			    msg[MSG_THINKING].len);
		}
		SY_ADD_LIT(out, "}");
	}
	SY_ADD_LIT(out, ",\"logprobs\":null,\"finish_reason\":");
	if (finish != NULL)
		evbuffer_add_printf(out, "\"%s\"}]}\n\n", finish);
	else
		SY_ADD_LIT(out, "null}]}\n\n");
	s->started = 1;
}

/* Whether a line carries text (or thinking) worth a chunk. */
static int
has_text(const struct sy_req *req, const struct sy_jscan_member m[M_COUNT])
{
	struct sy_jscan_member msg[MSG_COUNT];

	if (req->api == SY_API_COMPLETIONS)
		return nonempty(&m[M_RESPONSE]);
	scan_message(&m[M_MESSAGE], msg);
	return nonempty(&msg[MSG_CONTENT]) || nonempty(&msg[MSG_THINKING]);
}

static enum sy_stream_verdict
ollama_stream_event(void *state, const struct sy_req *req,
    const struct sy_sse_event *ev, struct evbuffer *out,
    struct sy_usage *usage)
{
	struct ollama_stream *s = state;
	struct sy_jscan_member m[M_COUNT];
	static const char not_json[] = "\"backend sent a stream line that is "
	    "not a JSON object\"";

	if (scan(ev->data, ev->data != NULL ? ev->data_len : 0, m) !=
	    SY_JSON_OBJECT) {
		add_error_event(out, not_json, sizeof not_json - 1);
		return SY_STREAM_ERROR;
	}
	if (m[M_ERROR].kind != SY_JSON_NONE && m[M_ERROR].kind != SY_JSON_NULL) {
		if (m[M_ERROR].kind == SY_JSON_STRING)
			add_error_event(out, m[M_ERROR].value, m[M_ERROR].len);
		else {
			struct evbuffer *msg = evbuffer_new();

			SY_ADD_LIT(msg, "\"backend error: ");
			sy_json_escape(msg, m[M_ERROR].value, m[M_ERROR].len < 200 ?
			    m[M_ERROR].len : 200);
			SY_ADD_LIT(msg, "\"");
			add_error_event(out, (const char *)evbuffer_pullup(msg,
			    -1), evbuffer_get_length(msg));
			evbuffer_free(msg);
		}
		return SY_STREAM_ERROR;
	}
	if (m[M_DONE].kind != SY_JSON_TRUE) {
		if (s->started && !has_text(req, m))
			return SY_STREAM_DROP;
		add_chunk_head(s, req, m, out);
		add_choice(s, req, m, NULL, out);
		return SY_STREAM_FORWARD;
	}
	usage_of(m, usage);
	add_chunk_head(s, req, m, out);
	add_choice(s, req, m, finish_of(&m[M_DONE_REASON]), out);
	if (req->client_wants_usage) {
		add_chunk_head(s, req, m, out);
		SY_ADD_LIT(out, "],");
		add_usage(out, usage);
		SY_ADD_LIT(out, "}\n\n");
	}
	SY_ADD_LIT(out, "data: [DONE]\n\n");
	return SY_STREAM_DONE;
}

const struct sy_backend_kind sy_backend_ollama = {
	.name = "ollama",
	.framing = &sy_framing_ndjson,
	.encode = ollama_encode,
	.decode = ollama_decode,
	.stream_open = ollama_stream_open,
	.stream_event = ollama_stream_event,
	.stream_close = ollama_stream_close,
	.health_path = "/api/version",
	.models_path = "/api/tags"
};
