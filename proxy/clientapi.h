/* Client-facing API dialects and their registry: OpenAI's (the canonical form itself) and the others, whose requests become canonical requests and to which canonical answers, streams and errors are translated back. */
#ifndef SY_CLIENTAPI_H
#define SY_CLIENTAPI_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "req.h"
#include "sse.h"

struct evbuffer;

/* How a dialect's clients are told their rate limits. */
enum sy_ratelimit_headers {
	SY_RATELIMIT_OPENAI,		/* x-ratelimit-{limit,remaining,reset}-* */
	SY_RATELIMIT_ANTHROPIC		/* anthropic-ratelimit-*-{limit,...} */
};

/* A path a dialect serves (POST), and the canonical API it becomes. */
struct sy_client_path {
	const char *path;		/* "/v1/messages"; NULL ends a list */
	enum sy_api api;
};

/*
 * A client-facing API dialect.  The translations are NULL for OpenAI's,
 * which is the canonical form: its requests, answers and streams pass as
 * they are.
 */
struct sy_client_api {
	/* "openai", "anthropic": the access log's client_api. */
	const char *name;
	/* The paths it serves, ending with a NULL path. */
	const struct sy_client_path *paths;
	/*
	 * The client's request body (len bytes of JSON) as a new canonical
	 * OpenAI chat/completions body (the caller owns the reference),
	 * asking for usage in streams (the translation reports it), or NULL
	 * with *err malloc'd: the client gets a 400 in its shape (error
	 * below) with *err as the message.
	 */
	json_t *(*request)(const char *text, size_t len, char **err);
	/*
	 * A canonical whole answer (an OpenAI chat.completion JSON object in
	 * body, status < 400; body is read, not drained) as the client's
	 * body, appended to out; returns 0, or -1 with *err malloc'd and
	 * nothing appended (the client gets a 502).  model: the model name
	 * to report; echo: NULL, or an object of members the answer's
	 * object repeats from the request (the Responses API's store,
	 * instructions, previous_response_id), read during the call.
	 */
	int (*response)(struct evbuffer *body, const char *model,
	    const json_t *echo, struct evbuffer *out, char **err);
	/*
	 * New per-stream translation state for a stream whose model name is
	 * model, with echo as for response (both copied); never NULL.
	 */
	void *(*stream_open)(const char *model, const json_t *echo);
	/*
	 * One canonical SSE event (an OpenAI chat.completion.chunk, the
	 * usage chunk with "choices":[], "[DONE]", a ":" comment/ping (data
	 * NULL), or an OpenAI error event {"error":{...}}) → the client's
	 * events appended to out (possibly none).  After "[DONE]" or an
	 * error event, further events append nothing.
	 */
	void (*stream_event)(void *state, const struct sy_sse_event *ev,
	    struct evbuffer *out);
	/* Frees the state of stream_open. */
	void (*stream_close)(void *state);
	/*
	 * The object a stream that ended well told its client last (the
	 * Responses API's response of response.completed), a new
	 * reference; NULL while it goes on or when it failed.  May be NULL.
	 */
	json_t *(*stream_result)(void *state);
	/*
	 * The client's error body for HTTP status with OpenAI-style type,
	 * code (either may be NULL) and message, appended to out.
	 */
	void (*error)(struct evbuffer *out, int status, const char *type,
	    const char *code, const char *message);
	/*
	 * The response header its SDKs read the request id from, sent
	 * besides X-Request-Id (NULL: none).
	 */
	const char *request_id_header;
	/* The names of its rate-limit headers. */
	enum sy_ratelimit_headers ratelimit_headers;
};

/* OpenAI's chat completions, completions and embeddings: the canonical form. */
extern const struct sy_client_api sy_client_openai;

/* The Anthropic Messages dialect (POST /v1/messages). */
extern const struct sy_client_api sy_client_anthropic;

/* OpenAI's Responses API (POST /v1/responses). */
extern const struct sy_client_api sy_client_responses;

/* Every dialect, OpenAI's first, ending with NULL (proxy/clientapi.c). */
extern const struct sy_client_api *const sy_client_apis[];

/*
 * The dialects in registry order: the one at index i (static, owned by
 * the registry), or NULL past the last one.
 */
const struct sy_client_api *sy_client_api_at(size_t i);

/*
 * The dialect serving path, with the canonical API it becomes in *api,
 * or NULL when no dialect serves it.
 */
const struct sy_client_api *sy_client_api_for(const char *path,
    enum sy_api *api);

/*
 * A client's request body (len bytes) as a new JSON object (the caller
 * owns the reference), or NULL with *err malloc'd (not JSON, or not an
 * object).
 */
json_t *sy_client_body(const char *text, size_t len, char **err);

/*
 * Writes prefix and 24 random base-62 characters into buf (n bytes; ""
 * when it is too short): the ids dialects make up ("msg_...").
 */
void sy_client_random_id(char *buf, size_t n, const char *prefix);

/*
 * A request to count (len bytes at text, in dialect's shape; the dialect
 * must translate requests) in canonical chat form, max_tokens supplied
 * when it has none.  Returns the new tree (the caller owns it), or NULL
 * with *err malloc'd when the request is not valid.  (proxy/count_tokens.c)
 */
json_t *sy_count_canon(const struct sy_client_api *dialect, const char *text,
    size_t len, char **err);

/*
 * The gateway's estimate of canon's input tokens: its messages' texts,
 * tool calls and tool definitions, by sy_text_tokens, and a few tokens a
 * message.  Borrows canon.
 */
int64_t sy_count_estimate(const json_t *canon);

/* Writes the paths every dialect serves, comma separated, into buf. */
void sy_client_api_paths(char *buf, size_t len);

#endif
