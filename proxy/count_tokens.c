/* count_tokens: the gateway's estimate of a request's input tokens (Anthropic's POST /v1/messages/count_tokens), from its canonical form. */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "canon.h"
#include "clientapi.h"
#include "util.h"

/* Tokens each message adds besides its text (its role and framing). */
#define MESSAGE_TOKENS 4

/* The tokens of v's text (a string, or the text parts of an array). */
static int64_t
text_tokens(const json_t *v)
{
	struct evbuffer *buf = evbuffer_new();
	int64_t n;

	sy_canon_text(buf, v);
	n = sy_text_tokens((const char *)evbuffer_pullup(buf, -1),
	    evbuffer_get_length(buf));
	evbuffer_free(buf);
	return n;
}

/* The tokens of v's JSON text (tool definitions, tool call arguments). */
static int64_t
json_tokens(const json_t *v)
{
	char *s;
	int64_t n;

	if (v == NULL || (s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY)) ==
	    NULL)
		return 0;
	n = sy_text_tokens(s, strlen(s));
	free(s);
	return n;
}

json_t *
sy_count_canon(const struct sy_client_api *dialect, const char *text,
    size_t len, char **err)
{
	json_t *in, *canon;
	char *body;

	/* A request to count has no max_tokens, which a dialect may need. */
	if ((in = sy_client_body(text, len, err)) == NULL)
		return NULL;
	if (json_object_get(in, "max_tokens") == NULL)
		json_object_set_new(in, "max_tokens", json_integer(1));
	body = json_dumps(in, JSON_COMPACT);
	json_decref(in);
	if (body == NULL) {
		sy_fail(err, "request body could not be read");
		return NULL;
	}
	canon = dialect->request(body, strlen(body), err);
	free(body);
	return canon;
}

int64_t
sy_count_estimate(const json_t *canon)
{
	json_t *m, *call, *fn;
	size_t i, j;
	int64_t n = 0;

	json_array_foreach(json_object_get(canon, "messages"), i, m) {
		n += MESSAGE_TOKENS + text_tokens(json_object_get(m, "content"));
		json_array_foreach(json_object_get(m, "tool_calls"), j, call) {
			fn = json_object_get(call, "function");
			n += json_tokens(json_object_get(fn, "name")) +
			    text_tokens(json_object_get(fn, "arguments"));
		}
	}
	return n + json_tokens(json_object_get(canon, "tools"));
}
