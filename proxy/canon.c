/* The canonical form (OpenAI's chat/completions/embeddings shapes): reading and writing its usage, finish details and errors, for adapters and client dialects alike. */
#include <inttypes.h>
#include <string.h>

#include <event2/buffer.h>

#include "canon.h"
#include "jscan.h"
#include "util.h"

/* The integer member m found, or -1 when it is not an integer ≥ 0. */
static int64_t
count_of(const struct sy_jscan_member *m)
{
	int64_t v;

	if (m->kind != SY_JSON_INTEGER)
		return -1;
	v = sy_jscan_integer(m->value, m->len);
	return v >= 0 ? v : -1;
}

int
sy_canon_usage_read(const char *usage, size_t ulen, const char *timings,
    size_t tlen, struct sy_usage *u)
{
	enum { U_PROMPT, U_COMPLETION, U_DETAILS, U_N };
	enum { T_CACHE, T_PROMPT, T_N };
	struct sy_jscan_member m[U_N] = {
		{ .key = "prompt_tokens" }, { .key = "completion_tokens" },
		{ .key = "prompt_tokens_details" }
	};
	struct sy_jscan_member t[T_N] = {
		{ .key = "cache_n" }, { .key = "prompt_n" }
	};
	struct sy_jscan_member cached = { .key = "cached_tokens" };
	int64_t v, computed;

	if (usage == NULL || sy_jscan(usage, ulen, m, U_N) != SY_JSON_OBJECT)
		return 0;
	if ((v = count_of(&m[U_PROMPT])) >= 0)
		u->prompt_tokens = v;
	if ((v = count_of(&m[U_COMPLETION])) >= 0)
		u->completion_tokens = v;
	if (m[U_DETAILS].kind == SY_JSON_OBJECT) {
		sy_jscan(m[U_DETAILS].value, m[U_DETAILS].len, &cached, 1);
		if ((v = count_of(&cached)) >= 0) {
			u->cached_tokens = v;
			return 1;
		}
	}
	if (timings == NULL || sy_jscan(timings, tlen, t, T_N) !=
	    SY_JSON_OBJECT)
		return 1;
	if ((v = count_of(&t[T_CACHE])) >= 0)
		u->cached_tokens = v;
	else if ((computed = count_of(&t[T_PROMPT])) >= 0 &&
	    u->prompt_tokens >= computed)
		u->cached_tokens = u->prompt_tokens - computed;
	return 1;
}

int
sy_canon_answer_usage(const char *text, size_t len, struct sy_usage *u)
{
	struct sy_jscan_member m[2] = {
		{ .key = "usage" }, { .key = "timings" }
	};

	if (sy_jscan(text, len, m, 2) != SY_JSON_OBJECT ||
	    m[0].kind != SY_JSON_OBJECT)
		return 0;
	return sy_canon_usage_read(m[0].value, m[0].len,
	    m[1].kind == SY_JSON_OBJECT ? m[1].value : NULL, m[1].len, u);
}

int
sy_canon_stop_string(const char *choice, size_t len, const char *answer,
    size_t alen, const char **s, size_t *slen)
{
	struct sy_jscan_member m[3] = {
		{ .key = "stop_reason" }, { .key = "matched_stop" },
		{ .key = "stopping_word" }
	};
	struct sy_jscan_member top = { .key = "stopping_word" };
	size_t i;

	sy_jscan(choice, len, m, 3);
	for (i = 0; i < 3; i++)
		if (m[i].kind == SY_JSON_STRING && m[i].len > 2) {
			*s = m[i].value;
			*slen = m[i].len;
			return 1;
		}
	if (answer != NULL && sy_jscan(answer, alen, &top, 1) ==
	    SY_JSON_OBJECT && top.kind == SY_JSON_STRING && top.len > 2) {
		*s = top.value;
		*slen = top.len;
		return 1;
	}
	return 0;
}

void
sy_canon_error_event(struct evbuffer *out, const char *error, size_t elen)
{
	SY_ADD_LIT(out, "data: {\"error\":");
	evbuffer_add(out, error, elen);
	SY_ADD_LIT(out, "}\n\n");
}

/* ==== Usage ==== */

/* Appends count n, or its stand-in when unknown (< 0). */
static void
count_put(struct evbuffer *out, int64_t n, unsigned flags)
{
	if (n >= 0)
		evbuffer_add_printf(out, "%" PRId64, n);
	else if (flags & SY_USAGE_NULLS)
		SY_ADD_LIT(out, "null");
	else
		SY_ADD_LIT(out, "0");
}

void
sy_canon_usage_put(struct evbuffer *out, const struct sy_usage *u,
    unsigned flags)
{
	int64_t p = u->prompt_tokens, c = u->completion_tokens, t;

	if (flags & SY_USAGE_EMBEDDING)
		t = p;
	else if (flags & SY_USAGE_NULLS)
		t = p < 0 || c < 0 ? -1 : p + c;
	else
		t = (p > 0 ? p : 0) + (c > 0 ? c : 0);
	SY_ADD_LIT(out, "{\"prompt_tokens\":");
	count_put(out, p, flags);
	if (!(flags & SY_USAGE_EMBEDDING)) {
		SY_ADD_LIT(out, ",\"completion_tokens\":");
		count_put(out, c, flags);
	}
	SY_ADD_LIT(out, ",\"total_tokens\":");
	count_put(out, t, flags);
	if (flags & SY_USAGE_DETAILS) {
		SY_ADD_LIT(out, ",\"prompt_tokens_details\":{\"cached_tokens\":");
		count_put(out, u->cached_tokens, flags);
		SY_ADD_LIT(out, "}");
	}
	SY_ADD_LIT(out, "}");
}

json_t *
sy_canon_usage_json(const struct sy_usage *u, unsigned flags)
{
	struct evbuffer *b = evbuffer_new();
	json_t *o;

	sy_canon_usage_put(b, u, flags);
	o = json_loadb((const char *)evbuffer_pullup(b, -1),
	    evbuffer_get_length(b), 0, NULL);
	evbuffer_free(b);
	return o;
}

/* ==== Errors ==== */

const char *
sy_canon_error_type(int status)
{
	switch (status) {
	case 401:
		return "authentication_error";
	case 403:
		return "permission_error";
	case 429:
		return "rate_limit_error";
	default:
		return status >= 500 ? "server_error" : "invalid_request_error";
	}
}

void
sy_canon_error_body(struct evbuffer *out, int status, const char *type,
    const char *code, const char *message)
{
	SY_ADD_LIT(out, "{\"error\":{\"message\":\"");
	sy_json_escape(out, message, strlen(message));
	SY_ADD_LIT(out, "\",\"type\":\"");
	sy_json_escape(out, type != NULL ? type : sy_canon_error_type(status),
	    strlen(type != NULL ? type : sy_canon_error_type(status)));
	SY_ADD_LIT(out, "\",\"code\":");
	if (code != NULL) {
		SY_ADD_LIT(out, "\"");
		sy_json_escape(out, code, strlen(code));
		SY_ADD_LIT(out, "\"}}");
	} else
		SY_ADD_LIT(out, "null}}");
}

void
sy_canon_stream_error(struct evbuffer *out, const char *code,
    const char *message)
{
	SY_ADD_LIT(out, "data: ");
	sy_canon_error_body(out, 500, "server_error", code, message);
	SY_ADD_LIT(out, "\n\n");
}
