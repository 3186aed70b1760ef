/* Incremental NDJSON splitter: one JSON document a line, whatever the chunking (Ollama's streams). */
#ifndef SY_NDJSON_H
#define SY_NDJSON_H

#include <stddef.h>

#include "sse.h"

struct evbuffer;

struct sy_ndjson {
	struct evbuffer *pending;	/* bytes of the line being read */
	char *line;			/* the line reported, NUL-terminated */
	size_t cap;
	size_t max_line;		/* bytes; 0 means 1 MiB */
	int overflow;
};

/* Initialises p; max_line bounds one line in bytes (0: 1 MiB). */
void sy_ndjson_init(struct sy_ndjson *p, size_t max_line);

/* Frees what p holds. */
void sy_ndjson_free(struct sy_ndjson *p);

/*
 * Feeds len bytes; calls cb once per complete non-blank line, in order,
 * as an event with event "", data the line without its line end
 * (NUL-terminated), raw the line with its end.  A line ends at LF (a CR
 * before it is dropped from data).  Returns 0, the callback's non-zero
 * value when it stopped, or -1 when a line exceeded max_line.
 */
int sy_ndjson_feed(struct sy_ndjson *p, const char *buf, size_t len,
    sy_sse_cb cb, void *arg);

/*
 * Ends the input: a last line without its LF is reported.  Returns as
 * sy_ndjson_feed.
 */
int sy_ndjson_finish(struct sy_ndjson *p, sy_sse_cb cb, void *arg);

#endif
