/* Plug point for backend wire protocols: one adapter per protocol, found by kind name. */
#ifndef SY_BACKEND_H
#define SY_BACKEND_H

#include <stddef.h>

#include <jansson.h>

#include "record.h"

struct evbuffer;
struct sy_req;
struct sy_sse_event;

/* What an adapter makes of one stream event. */
enum sy_stream_verdict {
	SY_STREAM_FORWARD,	/* event appended to out: send it */
	SY_STREAM_DROP,		/* nothing to send for this event */
	SY_STREAM_DONE,		/* the terminal event ([DONE]); out holds it */
	SY_STREAM_ERROR		/* an error event; out holds it for the client */
};

struct sy_backend_kind {
	const char *name;
	/*
	 * Encodes req (canonical form, selected model) for this backend:
	 * appends the body to out and sets *path to the API path appended to
	 * the endpoint's base path.  Asks for usage in streams.  Returns 0, or
	 * -1 with *err malloc'd (sent to the client as a 400).
	 */
	int (*encode)(const struct sy_req *req, struct evbuffer *out,
	    const char **path, char **err);
	/*
	 * Decodes a complete response (status, body) into the canonical form:
	 * appends the client's body to out and fills *usage.  Returns 0, or -1
	 * with *err malloc'd when the body is not what the protocol promises
	 * (the client gets a 502).
	 */
	int (*decode)(const struct sy_req *req, int status,
	    struct evbuffer *body, struct evbuffer *out,
	    struct sy_usage *usage, char **err);
	/*
	 * Translates one stream event: appends what the client must see (in
	 * SSE framing) to out, updates *usage, and says what the event was.
	 */
	enum sy_stream_verdict (*stream_event)(const struct sy_req *req,
	    const struct sy_sse_event *ev, struct evbuffer *out,
	    struct sy_usage *usage);
	/* Path probed by health checks, relative to the base path. */
	const char *health_path;
};

/* The adapter for kind name ("openai", ...), or NULL. */
const struct sy_backend_kind *sy_backend_kind_find(const char *name);

/* Writes the known kind names, comma separated, into buf. */
void sy_backend_kind_names(char *buf, size_t len);

/*
 * Reads OpenAI's "usage" member of obj (prompt_tokens, completion_tokens,
 * prompt_tokens_details.cached_tokens) into u, leaving counts it lacks
 * untouched.  Returns 1 when obj had a usage object, else 0.
 */
int sy_openai_usage(const json_t *obj, struct sy_usage *u);

#endif
