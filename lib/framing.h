/* Stream framings behind one interface: Server-Sent Events and NDJSON split a byte stream into events, whatever the chunking. */
#ifndef SY_FRAMING_H
#define SY_FRAMING_H

#include <stddef.h>

#include "ndjson.h"
#include "sse.h"

struct sy_framer;

/* A stream framing: how a backend cuts its streamed answer into events. */
struct sy_framing {
	const char *name;		/* "sse", "ndjson" */
	const char *accept;		/* the Accept header that asks for it */
	/* Whether a response's Content-Type (not NULL) is such a stream. */
	int (*is_stream)(const char *content_type);
	/* Starts f; max_event bounds an event's bytes (0: 1 MiB). */
	void (*init)(struct sy_framer *f, size_t max_event);
	/*
	 * Feeds len bytes; cb gets each complete event in order (for NDJSON
	 * a line as data, event "").  Returns 0, cb's non-zero value when it
	 * stopped, or -1 when an event exceeded the bound.
	 */
	int (*feed)(struct sy_framer *f, const char *buf, size_t len,
	    sy_sse_cb cb, void *arg);
	/* The input ended: a last unterminated event is reported when the framing allows it.  Returns as feed. */
	int (*finish)(struct sy_framer *f, sy_sse_cb cb, void *arg);
	void (*free)(struct sy_framer *f);
};

/* One stream's splitter. */
struct sy_framer {
	const struct sy_framing *framing;
	union {
		struct sy_sse sse;
		struct sy_ndjson nd;
	} u;
};

extern const struct sy_framing sy_framing_sse;
extern const struct sy_framing sy_framing_ndjson;

/* Starts f for framing (max_event as for init). */
void sy_framer_init(struct sy_framer *f, const struct sy_framing *framing,
    size_t max_event);

/* As the framing's feed, finish and free. */
int sy_framer_feed(struct sy_framer *f, const char *buf, size_t len,
    sy_sse_cb cb, void *arg);
int sy_framer_finish(struct sy_framer *f, sy_sse_cb cb, void *arg);
void sy_framer_free(struct sy_framer *f);

#endif
