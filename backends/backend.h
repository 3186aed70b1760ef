/* Plug point for backend wire protocols: one adapter per protocol, found by kind name. */
#ifndef SY_BACKEND_H
#define SY_BACKEND_H

#include <stddef.h>

#include <jansson.h>

#include "record.h"

struct evbuffer;
struct sy_req;
struct sy_endpoint;
struct sy_sse_event;
struct sy_framing;
struct sy_conf_table;

/* What an adapter makes of one stream event. */
enum sy_stream_verdict {
	SY_STREAM_FORWARD,	/* event appended to out: send it */
	SY_STREAM_DROP,		/* nothing to send for this event */
	SY_STREAM_DONE,		/* the terminal event ([DONE]); out holds it */
	SY_STREAM_ERROR		/* an error event; out holds it for the client */
};

/* What an adapter decides about the upstream request besides its body. */
struct sy_upstream_req {
	char path[512];		/* appended to the endpoint's base path; may
				   carry a query string */
	char headers[512];	/* extra header lines ("Name: value\r\n"...),
				   credentials included */
};

struct sy_backend_kind {
	const char *name;
	/* How its streams are cut into events (lib/framing.h). */
	const struct sy_framing *framing;
	/*
	 * Encodes req (canonical form, selected model) for this backend at
	 * ep: appends the body to out and fills *up (zeroed by the caller):
	 * the API path, and header lines such as the endpoint's API key in the
	 * protocol's own header (ep->api_key, NULL when none).  Asks for usage
	 * in streams.  Returns 0, or -1 with *err malloc'd naming the field
	 * the backend cannot express (sent to the client as a 400).
	 */
	int (*encode)(const struct sy_req *req, const struct sy_endpoint *ep,
	    struct evbuffer *out, struct sy_upstream_req *up, char **err);
	/*
	 * Decodes a complete response (status, body) into the canonical form:
	 * appends the client's body to out and fills *usage; a backend error
	 * becomes OpenAI's error shape {"error":{"message","type","code"}}
	 * (the status is kept).  Returns 0, or -1 with *err malloc'd when the
	 * body is not what the protocol promises (the client gets a 502).
	 */
	int (*decode)(const struct sy_req *req, int status,
	    struct evbuffer *body, struct evbuffer *out,
	    struct sy_usage *usage, char **err);
	/*
	 * Per-stream translation state (NULL when the adapter keeps none);
	 * may be NULL.  Freed with stream_close.
	 */
	void *(*stream_open)(const struct sy_req *req);
	/*
	 * Translates one stream event (an SSE event, or for NDJSON one line
	 * as data, event ""): appends what the client must see (OpenAI's SSE
	 * chunks, ending with "data: [DONE]") to out, updates *usage, and says
	 * what the event was.
	 */
	enum sy_stream_verdict (*stream_event)(void *state,
	    const struct sy_req *req, const struct sy_sse_event *ev,
	    struct evbuffer *out, struct sy_usage *usage);
	/* Frees what stream_open made; may be NULL. */
	void (*stream_close)(void *state);
	/*
	 * Writes the header lines that authenticate a request to ep (its API
	 * key in the protocol's own header, and any header every request
	 * needs) into buf; returns the bytes written, or -1 when they do not
	 * fit.  encode uses it, and so do health checks.  NULL means
	 * sy_backend_bearer.
	 */
	int (*credentials)(const struct sy_endpoint *ep, char *buf, size_t len);
	/* Path probed by health checks, relative to the base path. */
	const char *health_path;
	/*
	 * Path that lists the models the backend serves, relative to the
	 * base path (GET /v1/models on a route that takes any model asks
	 * it), or NULL when the protocol has none.
	 */
	const char *models_path;
	/*
	 * The kind's own keys on a backend object, beside the common ones
	 * (path "backends[]", owner: the kind's name), read into a struct of
	 * params->size bytes at ep->params; NULL when it takes none.
	 */
	const struct sy_conf_table *params;
};

/*
 * Writes "Authorization: Bearer <key>\r\n" into buf when ep has an API key
 * ("" otherwise); returns the bytes written, or -1 when it does not fit.
 */
int sy_backend_bearer(const struct sy_endpoint *ep, char *buf, size_t len);

/*
 * Writes "<name><key>\r\n" into buf when ep has an API key ("" otherwise),
 * name being the header's name and what precedes the key ("api-key: ");
 * returns the bytes written, or -1 when it does not fit.
 */
int sy_backend_key_header(const struct sy_endpoint *ep, const char *name,
    char *buf, size_t len);

/* Writes the credential header lines of kind for ep into buf (see credentials). */
int sy_backend_credentials(const struct sy_backend_kind *kind,
    const struct sy_endpoint *ep, char *buf, size_t len);

/* The adapter for kind name ("openai", ...), or NULL. */
const struct sy_backend_kind *sy_backend_kind_find(const char *name);

/* Writes the known kind names, comma separated, into buf. */
void sy_backend_kind_names(char *buf, size_t len);

/*
 * The kinds in registry order: the adapter at index i (static, owned by
 * the registry), or NULL past the last one.
 */
const struct sy_backend_kind *sy_backend_kind_at(size_t i);

/* Writes the params tables of the kinds that have one into out (at most max); how many. */
size_t sy_backend_kind_params(const struct sy_conf_table **out, size_t max);

/* ==== Shared by the OpenAI-shaped kinds (openai, azure) ==== */

/* The API path of api (enum sy_api): "/chat/completions", ... */
const char *sy_openai_path(int api);

/*
 * Appends req's body for an OpenAI-shaped backend: the client's bytes when
 * nothing needs changing, else with the served model and include_usage.
 * Returns 0, or -1 with *err malloc'd.
 */
int sy_openai_body(const struct sy_req *req, struct evbuffer *out, char **err);

/* The openai kind's decode and stream_event (see struct sy_backend_kind). */
int sy_openai_decode(const struct sy_req *req, int status,
    struct evbuffer *body, struct evbuffer *out, struct sy_usage *usage,
    char **err);
enum sy_stream_verdict sy_openai_stream_event(void *state,
    const struct sy_req *req, const struct sy_sse_event *ev,
    struct evbuffer *out, struct sy_usage *usage);

/*
 * Reads OpenAI's "usage" member of obj (prompt_tokens, completion_tokens,
 * prompt_tokens_details.cached_tokens) into u, leaving counts it lacks
 * untouched.  Returns 1 when obj had a usage object, else 0.
 */
int sy_openai_usage(const json_t *obj, struct sy_usage *u);

#endif
