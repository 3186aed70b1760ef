/* Requests for the adapter unit tests: parsed from text as the pipeline parses them. */
#ifndef SY_TEST_REQ_H
#define SY_TEST_REQ_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "backend.h"
#include "req.h"
#include "sse.h"

/*
 * A request of api parsed from text (an OpenAI-shaped body), with the
 * served model given (NULL: the client's) and id "r42".  The request is
 * static: each call replaces the last.  Exits 2 when text does not parse.
 */
static inline struct sy_req *
sy_test_req(enum sy_api api, const char *text, const char *model)
{
	static struct sy_req req;
	static struct evbuffer *raw;
	char *err = NULL;
	int status;

	if (req.body != NULL)
		json_decref(req.body);
	memset(&req, 0, sizeof req);
	if (raw == NULL)
		raw = evbuffer_new();
	evbuffer_drain(raw, evbuffer_get_length(raw));
	evbuffer_add(raw, text, strlen(text));
	req.api = api;
	req.raw = raw;
	if (sy_req_parse(&req, raw, 64, &status, &err) != 0) {
		printf("# parse failed: %s\n", err);
		exit(2);
	}
	req.model = model ? model : req.client_model;
	snprintf(req.id, sizeof req.id, "r42");
	return &req;
}

/* The member of obj at a path like "messages.0.role" (array indexes as numbers), or NULL. */
static inline json_t *
sy_test_at(json_t *obj, const char *path)
{
	char buf[256], *tok, *save;

	snprintf(buf, sizeof buf, "%s", path);
	for (tok = strtok_r(buf, ".", &save); tok != NULL && obj != NULL;
	    tok = strtok_r(NULL, ".", &save))
		obj = json_is_array(obj) ? json_array_get(obj, atoi(tok)) :
		    json_object_get(obj, tok);
	return obj;
}

/* The string at path in obj, or NULL. */
static inline const char *
sy_test_str_at(json_t *obj, const char *path)
{
	return json_string_value(sy_test_at(obj, path));
}

/* A stream relayed through an adapter, as the pipeline relays it. */
struct sy_test_relay {
	const struct sy_backend_kind *kind;
	struct sy_req *req;
	void *state;			/* the adapter's stream state */
	struct evbuffer *out;		/* what the client would receive */
	struct sy_usage usage;
	int forwarded, dropped, done, errors;	/* verdicts */
};

/* An SSE/NDJSON callback: one event through r->kind, its verdict counted. */
static inline int
sy_test_relay_event(const struct sy_sse_event *ev, void *arg)
{
	struct sy_test_relay *r = arg;

	switch (r->kind->stream_event(r->state, r->req, ev, r->out,
	    &r->usage)) {
	case SY_STREAM_FORWARD: r->forwarded++; break;
	case SY_STREAM_DROP: r->dropped++; break;
	case SY_STREAM_DONE: r->done++; break;
	case SY_STREAM_ERROR: r->errors++; break;
	}
	return 0;
}

#endif
