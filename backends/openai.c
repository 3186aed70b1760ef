/* openai: OpenAI-compatible servers (vLLM, SGLang, llama.cpp, LM Studio, OpenAI), forwarded with the fewest changes. */
#include <stdio.h>
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include <event2/buffer.h>

#include "backend.h"
#include "framing.h"
#include "canon.h"
#include "config.h"
#include "jscan.h"
#include "req.h"
#include "sse.h"
#include "util.h"

static const char *const api_paths[] = {
	"/chat/completions", "/completions", "/embeddings", "/rerank"
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

/* The top-level members of an answer or a stream chunk that matter here. */
enum { MEMBER_USAGE, MEMBER_ERROR, MEMBER_CHOICES, MEMBER_TIMINGS, MEMBERS };

/*
 * The members above of the JSON text (len bytes) into m; returns the kind
 * of the text, SY_JSON_NONE when it is not JSON.
 */
static enum sy_json_kind
scan_members(const char *text, size_t len, struct sy_jscan_member m[MEMBERS])
{
	m[MEMBER_USAGE].key = "usage";
	m[MEMBER_ERROR].key = "error";
	m[MEMBER_CHOICES].key = "choices";
	m[MEMBER_TIMINGS].key = "timings";
	return sy_jscan(text != NULL ? text : "", len, m, MEMBERS);
}

/* Reads the usage (and llama.cpp's timings) that scan_members found. */
static void
usage_read(const struct sy_jscan_member m[MEMBERS], struct sy_usage *u)
{
	sy_canon_usage_read(m[MEMBER_USAGE].value, m[MEMBER_USAGE].len,
	    m[MEMBER_TIMINGS].kind == SY_JSON_OBJECT ?
	    m[MEMBER_TIMINGS].value : NULL, m[MEMBER_TIMINGS].len, u);
}

/*
 * The body goes out as the client sent it unless the model was renamed or
 * a stream lacks include_usage; then a shallow copy is re-serialised.
 */
/*
 * The common edits done on the client's bytes, without a tree: the model
 * value replaced, and stream_options inserted first when the request has
 * none.  Returns 0 when done, -1 when the tree must do it (stream_options
 * present without include_usage); out is untouched then.
 */
static int
edit_bytes(const struct sy_req *req, int rename, int add_usage,
    struct evbuffer *out)
{
	static const char opts[] = "\"stream_options\":{\"include_usage\":true},";
	struct sy_jscan_member m[] = {
		{ .key = "model" }, { .key = "stream_options" }
	};
	size_t len = evbuffer_get_length(req->raw), brace, at, end;
	const char *text = (const char *)evbuffer_pullup(req->raw, -1);

	if (sy_jscan(text, len, m, 2) != SY_JSON_OBJECT ||
	    m[0].kind != SY_JSON_STRING ||
	    (add_usage && m[1].kind != SY_JSON_NONE))
		return -1;
	brace = (size_t)((const char *)memchr(text, '{', len) - text) + 1;
	at = (size_t)(m[0].value - text);
	end = at + m[0].len;
	evbuffer_add(out, text, brace);
	if (add_usage)
		SY_ADD_LIT(out, opts);
	if (!rename) {
		evbuffer_add(out, text + brace, len - brace);
		return 0;
	}
	evbuffer_add(out, text + brace, at - brace);
	SY_ADD_LIT(out, "\"");
	sy_json_escape(out, req->model, strlen(req->model));
	SY_ADD_LIT(out, "\"");
	evbuffer_add(out, text + end, len - end);
	return 0;
}

const char *
sy_openai_path(int api)
{
	return api_paths[api];
}

int
sy_openai_body(const struct sy_req *req, struct evbuffer *out, char **err)
{
	int rename = strcmp(req->model, req->client_model) != 0;
	int add_usage = req->stream && !req->client_wants_usage;
	json_t *copy, *opts;
	char *text;

	if (!rename && !add_usage) {
		evbuffer_add(out, evbuffer_pullup(req->raw, -1),
		    evbuffer_get_length(req->raw));
		return 0;
	}
	if (edit_bytes(req, rename, add_usage, out) == 0)
		return 0;
	copy = json_copy(sy_req_body(req));
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

/* The API path after the base path, and the key as a Bearer token. */
static int
openai_encode(const struct sy_req *req, const struct sy_endpoint *ep,
    struct evbuffer *out, struct sy_upstream_req *up, char **err)
{
	*sy_put_str(up->path, sy_openai_path(req->api)) = '\0';
	sy_backend_bearer(ep, up->headers, sizeof up->headers);
	return sy_openai_body(req, out, err);
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

/*
 * The body is validated and its usage read by sy_jscan, which builds no
 * tree: an error status without OpenAI's error shape is wrapped into it,
 * a success that is not a JSON object is refused.
 */
int
sy_openai_decode(const struct sy_req *req, int status, struct evbuffer *body,
    struct evbuffer *out, struct sy_usage *usage, char **err)
{
	size_t len = evbuffer_get_length(body);
	struct sy_jscan_member m[MEMBERS];
	enum sy_json_kind kind;

	kind = scan_members((const char *)evbuffer_pullup(body, -1), len, m);
	if (status >= 400 && m[MEMBER_ERROR].kind != SY_JSON_OBJECT) {
		wrap_error(status, body, out);
		return 0;
	}
	if (kind != SY_JSON_OBJECT) {
		*err = sy_xstrdup("backend returned a body that is not a JSON object");
		return -1;
	}
	if (status < 400 && m[MEMBER_USAGE].kind == SY_JSON_OBJECT)
		usage_read(m, usage);
	evbuffer_add_buffer(out, body);
	return 0;
}

/* Whether s (n bytes from a quote) opens the key "usage" or "error". */
static int
usage_or_error_at(const char *s, size_t n)
{
	return n >= 7 && (memcmp(s + 1, "usage\"", 6) == 0 ||
	    memcmp(s + 1, "error\"", 6) == 0);
}

/*
 * Whether an event's data may hold usage or an error: most chunks carry
 * one token and neither, and are relayed without being parsed.  A chunk
 * holds some thirty quotes; with SSE2 sixteen bytes are looked at at once
 * for a quote followed by 'u' or 'e', the only places worth a comparison.
 */
static int
mentions_usage_or_error(const struct sy_sse_event *ev)
{
	const char *s = ev->data;
	size_t n = ev->data_len, i = 0;
#ifdef __SSE2__
	const __m128i quote = _mm_set1_epi8('"'), u = _mm_set1_epi8('u'),
	    e = _mm_set1_epi8('e');
	__m128i here, next;
	unsigned mask;

	for (; i + 17 <= n; i += 16) {
		here = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
		next = _mm_loadu_si128((const __m128i *)(const void *)(s + i + 1));
		mask = (unsigned)_mm_movemask_epi8(_mm_and_si128(
		    _mm_cmpeq_epi8(here, quote), _mm_or_si128(
		    _mm_cmpeq_epi8(next, u), _mm_cmpeq_epi8(next, e))));
		for (; mask != 0; mask &= mask - 1) {
			size_t at = i + (size_t)__builtin_ctz(mask);

			if (usage_or_error_at(s + at, n - at))
				return 1;
		}
	}
#endif
	for (; i < n; i++)
		if (s[i] == '"' && usage_or_error_at(s + i, n - i))
			return 1;
	return 0;
}

/*
 * llama.cpp ends a failed stream with a line "error: {...}" (not a data
 * event): ev, an event without data, as OpenAI's error event in out.
 * Returns 1 when ev was such a line.
 */
static int
error_line(const struct sy_sse_event *ev, struct evbuffer *out)
{
	const char *p = ev->raw, *end = ev->raw + ev->raw_len, *eol;

	if (ev->raw_len < 6 || memcmp(p, "error:", 6) != 0)
		return 0;
	for (p += 6; p < end && *p == ' '; p++)
		;
	for (eol = p; eol < end && *eol != '\r' && *eol != '\n'; eol++)
		;
	if (sy_jscan(p, (size_t)(eol - p), NULL, 0) == SY_JSON_OBJECT)
		sy_canon_error_event(out, p, (size_t)(eol - p));
	else {
		SY_ADD_LIT(out, "data: {\"error\":{\"message\":\"");
		sy_json_escape(out, p, (size_t)(eol - p));
		SY_ADD_LIT(out, "\",\"type\":\"server_error\",\"code\":null}}\n\n");
	}
	return 1;
}

/*
 * A chunk that carries usage the client did not ask for, beside choices
 * (llama.cpp puts it on the finish chunk, and on every completions
 * stream's last text chunk): the chunk without its usage member.
 */
static void
without_usage(const struct sy_sse_event *ev, const struct sy_jscan_member *usage,
    struct evbuffer *out)
{
	size_t from, to, i;
	const char *d = ev->data;

	sy_jscan_cut(d, ev->data_len, usage, &from, &to);
	SY_ADD_LIT(out, "data: ");
	/* Data of several lines: JSON whitespace, a space will do. */
	for (i = 0; i < ev->data_len; i++) {
		if (i == from)
			i = to;
		if (i == ev->data_len)
			break;
		if (d[i] == '\n')
			SY_ADD_LIT(out, " ");
		else
			evbuffer_add(out, d + i, 1);
	}
	SY_ADD_LIT(out, "\n\n");
}

/* An event whose data is not a JSON object: the stream fails there. */
static enum sy_stream_verdict
malformed(struct evbuffer *out)
{
	sy_canon_stream_error(out, "bad_backend_event", "the backend sent a "
	    "stream event that is not a JSON object");
	return SY_STREAM_ERROR;
}

enum sy_stream_verdict
sy_openai_stream_event(void *state, const struct sy_req *req,
    const struct sy_sse_event *ev,
    struct evbuffer *out, struct sy_usage *usage)
{
	struct sy_jscan_member m[MEMBERS];

	if (ev->data == NULL) {
		if (error_line(ev, out))
			return SY_STREAM_ERROR;
	} else if (strcmp(ev->data, "[DONE]") == 0) {
		evbuffer_add(out, ev->raw, ev->raw_len);
		return SY_STREAM_DONE;
	} else if (mentions_usage_or_error(ev)) {
		if (scan_members(ev->data, ev->data_len, m) != SY_JSON_OBJECT)
			return malformed(out);
		if (m[MEMBER_ERROR].kind == SY_JSON_OBJECT) {
			evbuffer_add(out, ev->raw, ev->raw_len);
			return SY_STREAM_ERROR;
		}
		if (m[MEMBER_USAGE].kind == SY_JSON_OBJECT) {
			usage_read(m, usage);
			/* The usage switchyard asked for on the client's behalf. */
			if (!req->client_wants_usage) {
				if (m[MEMBER_CHOICES].kind == SY_JSON_ARRAY &&
				    sy_jscan_empty(m[MEMBER_CHOICES].value,
				    m[MEMBER_CHOICES].len))
					return SY_STREAM_DROP;
				without_usage(ev, &m[MEMBER_USAGE], out);
				return SY_STREAM_FORWARD;
			}
		}
	} else if (sy_jscan(ev->data, ev->data_len, NULL, 0) != SY_JSON_OBJECT)
		return malformed(out);
	evbuffer_add(out, ev->raw, ev->raw_len);
	return SY_STREAM_FORWARD;
}

const struct sy_backend_kind sy_backend_openai = {
	.name = "openai",
	.framing = &sy_framing_sse,
	.encode = openai_encode,
	.decode = sy_openai_decode,
	.stream_event = sy_openai_stream_event,
	.health_path = "/models",
	.models_path = "/models"
};
