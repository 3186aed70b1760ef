/* tgi: Hugging Face text-generation-inference's own API (/generate, /generate_stream), from and to OpenAI's completions and chat. */
#include <inttypes.h>
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

/* max_new_tokens when the client sets no limit (TGI's own default is 100). */
#define TGI_DEFAULT_MAX_NEW_TOKENS 256

/* ==== Encoding ==== */

/* Whether v asks for something: not absent, null, false, 0 or empty. */
static int
truthy(const json_t *v)
{
	if (v == NULL || json_is_null(v) || json_is_false(v))
		return 0;
	if (json_is_number(v))
		return json_number_value(v) != 0;
	if (json_is_string(v))
		return json_string_length(v) != 0;
	if (json_is_array(v))
		return json_array_size(v) != 0;
	if (json_is_object(v))
		return json_object_size(v) != 0;
	return 1;
}

/* Whether v asks for more than one answer. */
static int
above_one(const json_t *v)
{
	if (v == NULL || json_is_null(v))
		return 0;
	return !json_is_integer(v) || json_integer_value(v) > 1;
}

/* Whether v (response_format) asks for anything but plain text. */
static int
not_text(const json_t *v)
{
	const char *type;

	if (v == NULL || json_is_null(v))
		return 0;
	type = json_string_value(json_object_get(v, "type"));
	return type == NULL || strcmp(type, "text") != 0;
}

/*
 * Members of an OpenAI request that would change the answer and that
 * /generate cannot express: refused rather than silently dropped.
 */
static const struct {
	const char *key;
	int (*asks)(const json_t *);
	const char *what;		/* qualifies the key in the message */
} unsupported[] = {
	{ "tools", truthy, "" },
	{ "functions", truthy, "" },
	{ "n", above_one, " > 1" },
	{ "best_of", above_one, " > 1" },
	{ "logprobs", truthy, "" },
	{ "top_logprobs", truthy, "" },
	{ "echo", truthy, "" },
	{ "suffix", truthy, "" },
	{ "logit_bias", truthy, "" },
	{ "response_format", not_text, " other than text" }
};

/* Refuses body when it asks for what TGI cannot do; returns 0 or -1. */
static int
check_unsupported(const json_t *body, char **err)
{
	size_t i;

	for (i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++)
		if (unsupported[i].asks(json_object_get(body, unsupported[i].key)))
			return sy_fail(err, "'%s'%s is not supported by tgi "
			    "backends", unsupported[i].key, unsupported[i].what);
	return 0;
}

/* The prompt of a completions request: a string, or an array of one. */
static json_t *
completion_inputs(const json_t *body, char **err)
{
	json_t *prompt = json_object_get(body, "prompt");

	if (json_is_array(prompt)) {
		/* One prompt of token ids, not several prompts. */
		if (json_is_integer(json_array_get(prompt, 0)))
			prompt = NULL;
		else if (json_array_size(prompt) > 1) {
			sy_fail(err, "tgi takes one prompt per request");
			return NULL;
		} else
			prompt = json_array_get(prompt, 0);
	}
	if (!json_is_string(prompt)) {
		sy_fail(err, "'prompt' must be a string (tgi takes text, not "
		    "token ids)");
		return NULL;
	}
	return json_incref(prompt);
}

/* The tag a message of role gets in the prompt, or NULL when unknown. */
static const char *
role_tag(const char *role)
{
	static const char *const roles[][2] = {
		{ "system", "<|system|>\n" },
		{ "developer", "<|system|>\n" },
		{ "user", "<|user|>\n" },
		{ "assistant", "<|assistant|>\n" },
		{ "tool", "<|tool|>\n" }
	};
	size_t i;

	for (i = 0; role != NULL && i < sizeof roles / sizeof roles[0]; i++)
		if (strcmp(role, roles[i][0]) == 0)
			return roles[i][1];
	return NULL;
}

/*
 * Appends the text of message i's content (a string, null, or an array of
 * text parts, joined as they are) to p.  Returns 0, or -1 with *err.
 */
static int
content_text(const json_t *content, size_t i, struct evbuffer *p,
    char **err)
{
	const json_t *part, *text;
	const char *type;
	size_t j;

	if (content == NULL || json_is_null(content))
		return 0;
	if (json_is_string(content)) {
		evbuffer_add(p, json_string_value(content),
		    json_string_length(content));
		return 0;
	}
	if (!json_is_array(content))
		return sy_fail(err, "'messages[%zu].content' must be a string or "
		    "an array of parts", i);
	json_array_foreach(content, j, part) {
		type = json_string_value(json_object_get(part, "type"));
		text = json_object_get(part, "text");
		if (type == NULL || strcmp(type, "text") != 0 ||
		    !json_is_string(text))
			return sy_fail(err, "'messages[%zu].content[%zu]' is not "
			    "a text part; tgi backends take text only", i, j);
		evbuffer_add(p, json_string_value(text),
		    json_string_length(text));
	}
	return 0;
}

/*
 * Renders messages into one prompt with switchyard's own template (not the
 * model's): "<|role|>\n" content "\n" for each message, then
 * "<|assistant|>\n".  Returns the prompt, or NULL with *err.
 */
static json_t *
chat_inputs(const json_t *body, char **err)
{
	const json_t *messages = json_object_get(body, "messages"), *m;
	struct evbuffer *p;
	const char *tag;
	json_t *inputs = NULL;
	size_t i;

	if (json_array_size(messages) == 0) {
		sy_fail(err, "'messages' must not be empty");
		return NULL;
	}
	p = evbuffer_new();
	json_array_foreach(messages, i, m) {
		if (!json_is_object(m)) {
			sy_fail(err, "'messages[%zu]' must be an object", i);
			goto out;
		}
		tag = role_tag(json_string_value(json_object_get(m, "role")));
		if (tag == NULL) {
			sy_fail(err, "'messages[%zu].role' must be system, "
			    "developer, user, assistant or tool", i);
			goto out;
		}
		if (truthy(json_object_get(m, "tool_calls"))) {
			sy_fail(err, "'messages[%zu].tool_calls' is not supported "
			    "by tgi backends", i);
			goto out;
		}
		evbuffer_add(p, tag, strlen(tag));
		if (content_text(json_object_get(m, "content"), i, p, err) != 0)
			goto out;
		SY_ADD_LIT(p, "\n");
	}
	SY_ADD_LIT(p, "<|assistant|>\n");
	inputs = json_stringn((const char *)evbuffer_pullup(p, -1),
	    evbuffer_get_length(p));
	if (inputs == NULL)
		sy_fail(err, "'messages' must be valid UTF-8");
out:
	evbuffer_free(p);
	return inputs;
}

/* Sets TGI's stop (an array) from OpenAI's (a string or an array). */
static int
stop_param(const json_t *stop, json_t *params, char **err)
{
	const json_t *s;
	json_t *list;
	size_t i;

	if (stop == NULL || json_is_null(stop))
		return 0;
	if (json_is_string(stop)) {
		json_object_set_new(params, "stop",
		    json_pack("[O]", stop));
		return 0;
	}
	if (!json_is_array(stop))
		return sy_fail(err, "'stop' must be a string or an array of "
		    "strings");
	json_array_foreach(stop, i, s)
		if (!json_is_string(s))
			return sy_fail(err, "'stop' must be a string or an array "
			    "of strings");
	if (json_array_size(stop) == 0)
		return 0;
	list = json_copy((json_t *)stop);
	json_object_set_new(params, "stop", list);
	return 0;
}

/*
 * Fills TGI's parameters from the request body: the length cap, sampling
 * (TGI refuses temperature 0 and top_p outside (0, 1), so greedy decoding
 * is do_sample false), stop sequences, seed, and the details that carry
 * the finish reason and the token counts.  Returns 0, or -1 with *err.
 */
static int
parameters(const struct sy_req *req, json_t *params, char **err)
{
	const json_t *body = sy_req_body(req), *v, *max = NULL;
	const char *max_key = "max_tokens";
	int sample = 1;
	double x;

	if (req->api == SY_API_CHAT && (v = json_object_get(body,
	    "max_completion_tokens")) != NULL && !json_is_null(v)) {
		max = v;
		max_key = "max_completion_tokens";
	} else if ((v = json_object_get(body, "max_tokens")) != NULL &&
	    !json_is_null(v))
		max = v;
	if (max != NULL && (!json_is_integer(max) ||
	    json_integer_value(max) < 1))
		return sy_fail(err, "'%s' must be a positive integer", max_key);
	json_object_set_new(params, "max_new_tokens", json_integer(max != NULL ?
	    json_integer_value(max) : TGI_DEFAULT_MAX_NEW_TOKENS));

	if ((v = json_object_get(body, "temperature")) != NULL &&
	    !json_is_null(v)) {
		if (!json_is_number(v) || (x = json_number_value(v)) < 0)
			return sy_fail(err, "'temperature' must be a number, at "
			    "least 0");
		if (x == 0)
			sample = 0;
		else
			json_object_set_new(params, "temperature", json_real(x));
	}
	if ((v = json_object_get(body, "top_p")) != NULL && !json_is_null(v)) {
		if (!json_is_number(v) || (x = json_number_value(v)) < 0 || x > 1)
			return sy_fail(err, "'top_p' must be a number from 0 to 1");
		if (x == 0)
			sample = 0;
		else if (x < 1)
			json_object_set_new(params, "top_p", json_real(x));
	}
	if (!sample) {
		json_object_del(params, "temperature");
		json_object_del(params, "top_p");
	}
	json_object_set_new(params, "do_sample", json_boolean(sample));

	if ((v = json_object_get(body, "frequency_penalty")) != NULL &&
	    !json_is_null(v)) {
		if (!json_is_number(v))
			return sy_fail(err, "'frequency_penalty' must be a number");
		if (json_number_value(v) != 0)
			json_object_set_new(params, "frequency_penalty",
			    json_real(json_number_value(v)));
	}
	if (stop_param(json_object_get(body, "stop"), params, err) != 0)
		return -1;
	if ((v = json_object_get(body, "seed")) != NULL && !json_is_null(v)) {
		if (!json_is_integer(v) || json_integer_value(v) < 0)
			return sy_fail(err, "'seed' must be an integer, at least 0");
		json_object_set_new(params, "seed",
		    json_integer(json_integer_value(v)));
	}
	json_object_set_new(params, "details", json_true());
	json_object_set_new(params, "decoder_input_details", json_false());
	return 0;
}

/*
 * Builds {"inputs", "parameters"} from the canonical request: a
 * completion's prompt as it is, a chat's messages rendered into one
 * prompt.  Refuses (400) embeddings and whatever TGI cannot express.
 */
static int
tgi_encode(const struct sy_req *req, const struct sy_endpoint *ep,
    struct evbuffer *out, struct sy_upstream_req *up, char **err)
{
	json_t *inputs, *params, *body;
	char *text;

	if (req->api == SY_API_EMBEDDINGS || req->api == SY_API_RERANK)
		return sy_fail(err, "embeddings and rerank are not served by tgi "
		    "backends");
	if (check_unsupported(sy_req_body(req), err) != 0)
		return -1;
	inputs = req->api == SY_API_CHAT ? chat_inputs(sy_req_body(req), err) :
	    completion_inputs(sy_req_body(req), err);
	if (inputs == NULL)
		return -1;
	params = json_object();
	if (parameters(req, params, err) != 0) {
		json_decref(inputs);
		json_decref(params);
		return -1;
	}
	body = json_pack("{soso}", "inputs", inputs, "parameters", params);
	text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	if (text == NULL)
		return sy_fail(err, "request could not be encoded");
	evbuffer_add(out, text, strlen(text));
	free(text);
	snprintf(up->path, sizeof up->path, "%s", req->stream ?
	    "/generate_stream" : "/generate");
	sy_backend_bearer(ep, up->headers, sizeof up->headers);
	return 0;
}

/* ==== Answers ==== */

/* Whether member m is the JSON string word (written without escapes). */
static int
string_is(const struct sy_jscan_member *m, const char *word)
{
	size_t n = strlen(word);

	return m->kind == SY_JSON_STRING && m->len == n + 2 &&
	    memcmp(m->value + 1, word, n) == 0;
}

/* The elements of a JSON array's text, which sy_jscan validated. */
static int64_t
array_length(const char *text, size_t len)
{
	unsigned depth = 0;
	int64_t n = 1;
	size_t i;

	if (sy_jscan_empty(text, len))
		return 0;
	for (i = 0; i < len; i++) {
		switch (text[i]) {
		case '"':
			for (i++; i < len && text[i] != '"'; i++)
				if (text[i] == '\\')
					i++;
			break;
		case '[':
		case '{':
			depth++;
			break;
		case ']':
		case '}':
			depth--;
			break;
		case ',':
			if (depth == 1)
				n++;
			break;
		}
	}
	return n;
}

/*
 * Reads TGI's details (their text, len bytes): the OpenAI finish reason
 * into *finish (NULL when unknown), generated_tokens as completion tokens,
 * and the prompt's tokens from a non-empty prefill, else input_length,
 * else prompt_tokens (counts not there stay as they are).
 */
static void
details_read(const char *text, size_t len, struct sy_usage *u,
    const char **finish)
{
	enum { D_FINISH, D_GENERATED, D_PREFILL, D_INPUT, D_PROMPT };
	struct sy_jscan_member m[5] = {
		{ .key = "finish_reason" },
		{ .key = "generated_tokens" },
		{ .key = "prefill" },
		{ .key = "input_length" },
		{ .key = "prompt_tokens" }
	};
	int64_t prefill;

	sy_jscan(text, len, m, 5);
	if (string_is(&m[D_FINISH], "length"))
		*finish = "length";
	else if (string_is(&m[D_FINISH], "eos_token") ||
	    string_is(&m[D_FINISH], "stop_sequence"))
		*finish = "stop";
	if (m[D_GENERATED].kind == SY_JSON_INTEGER)
		u->completion_tokens = sy_jscan_integer(m[D_GENERATED].value,
		    m[D_GENERATED].len);
	prefill = m[D_PREFILL].kind == SY_JSON_ARRAY ?
	    array_length(m[D_PREFILL].value, m[D_PREFILL].len) : 0;
	if (prefill > 0)
		u->prompt_tokens = prefill;
	else if (m[D_INPUT].kind == SY_JSON_INTEGER)
		u->prompt_tokens = sy_jscan_integer(m[D_INPUT].value,
		    m[D_INPUT].len);
	else if (m[D_PROMPT].kind == SY_JSON_INTEGER)
		u->prompt_tokens = sy_jscan_integer(m[D_PROMPT].value,
		    m[D_PROMPT].len);
}

/* Appends a finish reason, quoted, or null. */
static void
finish_put(struct evbuffer *out, const char *finish)
{
	if (finish == NULL)
		SY_ADD_LIT(out, "null");
	else
		evbuffer_add_printf(out, "\"%s\"", finish);
}

/*
 * Appends the members an answer or a chunk starts with: id (the request's
 * id after OpenAI's prefix), object, created, model.
 */
static void
identity_put(struct evbuffer *out, const struct sy_req *req, int chunk)
{
	int chat = req->api == SY_API_CHAT;

	evbuffer_add_printf(out, "{\"id\":\"%s", chat ? "chatcmpl-" : "cmpl-");
	sy_json_escape(out, req->id, strlen(req->id));
	evbuffer_add_printf(out, "\",\"object\":\"%s\",\"created\":%lld,"
	    "\"model\":\"", !chat ? "text_completion" : chunk ?
	    "chat.completion.chunk" : "chat.completion",
	    (long long)time(NULL));
	sy_json_escape(out, req->model, strlen(req->model));
	SY_ADD_LIT(out, "\"");
}

/*
 * Appends OpenAI's error object for TGI's error: msg and etype are the
 * "error" and "error_type" members sy_jscan found (etype may be absent),
 * status the HTTP status (200 for an event in a stream).  A validation
 * error is an invalid_request_error, the others server errors; the
 * error_type becomes the code.
 */
static void
error_put(struct evbuffer *out, int status,
    const struct sy_jscan_member *msg, const struct sy_jscan_member *etype)
{
	const char *type;

	if (string_is(etype, "validation"))
		type = "invalid_request_error";
	else if (etype->kind == SY_JSON_STRING)
		type = "server_error";
	else if (status == 429)
		type = "rate_limit_error";
	else if (status >= 400 && status < 500)
		type = "invalid_request_error";
	else
		type = "server_error";
	SY_ADD_LIT(out, "{\"error\":{\"message\":");
	evbuffer_add(out, msg->value, msg->len);
	evbuffer_add_printf(out, ",\"type\":\"%s\",\"code\":", type);
	if (etype->kind == SY_JSON_STRING)
		evbuffer_add(out, etype->value, etype->len);
	else if (status >= 400)
		evbuffer_add_printf(out, "%d", status);
	else
		SY_ADD_LIT(out, "null");
	SY_ADD_LIT(out, "}}");
}

/*
 * Wraps an error body that is not TGI's (an HTML page from a proxy, a
 * plain-text 503) into OpenAI's shape, keeping a bit of its text.
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
}

/* The top-level members of an answer or a stream event that matter here. */
enum { M_TEXT, M_DETAILS, M_ERROR, M_ERROR_TYPE, M_TOKEN, M_COUNT };

/* Finds the members above in the JSON text; returns the text's kind. */
static enum sy_json_kind
scan_members(const char *text, size_t len,
    struct sy_jscan_member m[M_COUNT])
{
	m[M_TEXT].key = "generated_text";
	m[M_DETAILS].key = "details";
	m[M_ERROR].key = "error";
	m[M_ERROR_TYPE].key = "error_type";
	m[M_TOKEN].key = "token";
	return sy_jscan(text != NULL ? text : "", len, m, M_COUNT);
}

/*
 * A TGI answer {"generated_text", "details"} becomes an OpenAI completion
 * or chat completion, its usage read from details; TGI's error
 * {"error", "error_type"} becomes OpenAI's (status kept).
 */
static int
tgi_decode(const struct sy_req *req, int status, struct evbuffer *body,
    struct evbuffer *out, struct sy_usage *usage, char **err)
{
	size_t len = evbuffer_get_length(body);
	const char *text = (const char *)evbuffer_pullup(body, -1);
	struct sy_jscan_member m[M_COUNT];
	struct sy_usage u = { -1, -1, 0 };
	enum sy_json_kind kind;
	const char *finish = NULL;

	kind = scan_members(text, len, m);
	if (status >= 400) {
		if (m[M_ERROR].kind == SY_JSON_STRING)
			error_put(out, status, &m[M_ERROR], &m[M_ERROR_TYPE]);
		else if (m[M_ERROR].kind == SY_JSON_OBJECT)
			evbuffer_add(out, text, len);	/* OpenAI's shape already */
		else
			wrap_error(status, body, out);
		evbuffer_drain(body, len);
		return 0;
	}
	if (kind != SY_JSON_OBJECT || m[M_TEXT].kind != SY_JSON_STRING)
		return sy_fail(err, "backend returned a body that is not a TGI "
		    "answer (no generated_text)");
	if (m[M_DETAILS].kind == SY_JSON_OBJECT)
		details_read(m[M_DETAILS].value, m[M_DETAILS].len, &u, &finish);
	identity_put(out, req, 0);
	if (req->api == SY_API_CHAT)
		SY_ADD_LIT(out, ",\"choices\":[{\"index\":0,\"message\":"
		    "{\"role\":\"assistant\",\"content\":");
	else
		SY_ADD_LIT(out, ",\"choices\":[{\"index\":0,\"text\":");
	evbuffer_add(out, m[M_TEXT].value, m[M_TEXT].len);
	if (req->api == SY_API_CHAT)
		SY_ADD_LIT(out, "}");
	SY_ADD_LIT(out, ",\"logprobs\":null,\"finish_reason\":");
	finish_put(out, finish);
	SY_ADD_LIT(out, "}],\"usage\":");
	sy_canon_usage_put(out, &u, SY_USAGE_NULLS);
	SY_ADD_LIT(out, "}");
	evbuffer_drain(body, len);
	*usage = u;
	return 0;
}

/* ==== Streams ==== */

/* What a stream's translation keeps between events. */
struct tgi_stream {
	char *head;		/* every chunk's start, through "choices":[ */
	size_t head_len;
	int chat;
	int wants_usage;	/* the client asked for a usage chunk */
	int role_sent;		/* chat: a delta carried the role already */
	int64_t tokens;		/* token events seen */
};

/* Keeps what every chunk repeats: id, object, created, model. */
static void *
tgi_stream_open(const struct sy_req *req)
{
	struct tgi_stream *st = sy_xcalloc(1, sizeof *st);
	struct evbuffer *b = evbuffer_new();

	SY_ADD_LIT(b, "data: ");
	identity_put(b, req, 1);
	SY_ADD_LIT(b, ",\"choices\":[");
	st->head_len = evbuffer_get_length(b);
	st->head = sy_xmalloc(st->head_len);
	evbuffer_remove(b, st->head, st->head_len);
	evbuffer_free(b);
	st->chat = req->api == SY_API_CHAT;
	st->wants_usage = req->client_wants_usage;
	return st;
}

static void
tgi_stream_close(void *state)
{
	struct tgi_stream *st = state;

	if (st == NULL)
		return;
	free(st->head);
	free(st);
}

/*
 * Appends the chunk of one piece of text (its JSON string text), or with
 * text NULL the last chunk, with finish.
 */
static void
chunk_put(struct tgi_stream *st, struct evbuffer *out, const char *text,
    size_t len, const char *finish)
{
	evbuffer_add(out, st->head, st->head_len);
	if (!st->chat) {
		SY_ADD_LIT(out, "{\"index\":0,\"text\":");
		if (text != NULL)
			evbuffer_add(out, text, len);
		else
			SY_ADD_LIT(out, "\"\"");
	} else {
		SY_ADD_LIT(out, "{\"index\":0,\"delta\":{");
		if (!st->role_sent) {
			SY_ADD_LIT(out, "\"role\":\"assistant\",\"content\":");
			if (text == NULL)
				SY_ADD_LIT(out, "\"\"");
			st->role_sent = 1;
		} else if (text != NULL)
			SY_ADD_LIT(out, "\"content\":");
		if (text != NULL)
			evbuffer_add(out, text, len);
		SY_ADD_LIT(out, "}");
	}
	SY_ADD_LIT(out, ",\"logprobs\":null,\"finish_reason\":");
	finish_put(out, finish);
	SY_ADD_LIT(out, "}]}\n\n");
}

/* Appends a chunk for the token object (its text, len bytes) unless special or empty. */
static void
token_put(struct tgi_stream *st, struct evbuffer *out, const char *text,
    size_t len)
{
	struct sy_jscan_member m[2] = {
		{ .key = "text" },
		{ .key = "special" }
	};

	sy_jscan(text, len, m, 2);
	if (m[1].kind == SY_JSON_TRUE || m[0].kind != SY_JSON_STRING ||
	    m[0].len == 2)
		return;
	chunk_put(st, out, m[0].value, m[0].len, NULL);
}

/*
 * One TGI event: a token becomes a chunk; the last event (with
 * generated_text) also a chunk with the finish reason, the usage chunk
 * when the client asked for it, and [DONE]; an error event OpenAI's error
 * event.  Comments (pings) are relayed as they are.
 */
static enum sy_stream_verdict
tgi_stream_event(void *state, const struct sy_req *req,
    const struct sy_sse_event *ev, struct evbuffer *out,
    struct sy_usage *usage)
{
	struct tgi_stream *st = state;
	struct sy_jscan_member m[M_COUNT];
	struct sy_usage u = { -1, -1, 0 };
	const char *finish = NULL;
	size_t before = evbuffer_get_length(out);

	(void)req;
	if (ev->data == NULL) {
		evbuffer_add(out, ev->raw, ev->raw_len);
		return SY_STREAM_FORWARD;
	}
	if (scan_members(ev->data, ev->data_len, m) != SY_JSON_OBJECT) {
		SY_ADD_LIT(out, "data: {\"error\":{\"message\":\"backend sent "
		    "a stream event that is not a JSON object\",\"type\":"
		    "\"server_error\",\"code\":\"bad_gateway\"}}\n\n");
		return SY_STREAM_ERROR;
	}
	if (m[M_ERROR].kind == SY_JSON_STRING) {
		SY_ADD_LIT(out, "data: ");
		error_put(out, 200, &m[M_ERROR], &m[M_ERROR_TYPE]);
		SY_ADD_LIT(out, "\n\n");
		return SY_STREAM_ERROR;
	}
	if (m[M_ERROR].kind == SY_JSON_OBJECT) {
		evbuffer_add(out, ev->raw, ev->raw_len);
		return SY_STREAM_ERROR;
	}
	if (m[M_TOKEN].kind == SY_JSON_OBJECT) {
		st->tokens++;
		token_put(st, out, m[M_TOKEN].value, m[M_TOKEN].len);
	}
	if (m[M_TEXT].kind != SY_JSON_STRING)
		return evbuffer_get_length(out) > before ? SY_STREAM_FORWARD :
		    SY_STREAM_DROP;
	u.completion_tokens = st->tokens;
	if (m[M_DETAILS].kind == SY_JSON_OBJECT)
		details_read(m[M_DETAILS].value, m[M_DETAILS].len, &u, &finish);
	*usage = u;
	chunk_put(st, out, NULL, 0, finish);
	if (st->wants_usage) {
		evbuffer_add(out, st->head, st->head_len);
		SY_ADD_LIT(out, "],\"usage\":");
		sy_canon_usage_put(out, &u, SY_USAGE_NULLS);
		SY_ADD_LIT(out, "}\n\n");
	}
	SY_ADD_LIT(out, "data: [DONE]\n\n");
	return SY_STREAM_DONE;
}

const struct sy_backend_kind sy_backend_tgi = {
	.name = "tgi",
	.framing = &sy_framing_sse,
	.encode = tgi_encode,
	.decode = tgi_decode,
	.stream_open = tgi_stream_open,
	.stream_event = tgi_stream_event,
	.stream_close = tgi_stream_close,
	.health_path = "/health",
	.models_path = "/info"
};
