/* Client-facing API dialects besides OpenAI's (the canonical form): their requests as canonical requests, canonical answers, streams and errors as theirs. */
#ifndef SY_CLIENTAPI_H
#define SY_CLIENTAPI_H

#include <stddef.h>

#include <jansson.h>

#include "sse.h"

struct evbuffer;

/* Client-facing API dialects besides OpenAI's (the canonical form). */
struct sy_client_api {
	/* "anthropic": the access log's client_api; first, for registries. */
	const char *name;
	/*
	 * The client's request body (len bytes of JSON) as a new canonical
	 * OpenAI chat/completions body (the caller owns the reference), or
	 * NULL with *err malloc'd: the client gets a 400 in its shape
	 * (error below) with *err as the message.
	 */
	json_t *(*request)(const char *text, size_t len, char **err);
	/*
	 * A canonical whole answer (an OpenAI chat.completion JSON object in
	 * body, status < 400; body is read, not drained) as the client's
	 * body, appended to out; returns 0, or -1 with *err malloc'd and
	 * nothing appended (the client gets a 502).  model: the model name
	 * to report.
	 */
	int (*response)(struct evbuffer *body, const char *model,
	    struct evbuffer *out, char **err);
	/* New per-stream translation state for a stream whose model name is model (copied); never NULL. */
	void *(*stream_open)(const char *model);
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
};

/* The Anthropic Messages dialect (POST /v1/messages). */
extern const struct sy_client_api sy_client_anthropic;

#endif
