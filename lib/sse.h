/* Incremental Server-Sent Events parser: splits a byte stream into events, whatever the chunking. */
#ifndef SY_SSE_H
#define SY_SSE_H

#include <stddef.h>

struct evbuffer;

struct sy_sse_event {
	const char *event;	/* "event:" field, "" when absent */
	const char *data;	/* "data:" lines joined with '\n', NUL-terminated */
	size_t data_len;
	const char *id;		/* "id:" field, "" when absent */
	const char *raw;	/* the event's bytes exactly as received,
				   through its terminating blank line */
	size_t raw_len;
};

/*
 * Called once per complete event, in order.  The event's strings are valid
 * only during the call.  Return 0 to go on, non-zero to stop feeding.
 */
typedef int (*sy_sse_cb)(const struct sy_sse_event *ev, void *arg);

struct sy_sse {
	struct evbuffer *pending;	/* bytes of the event being read */
	size_t scanned;			/* bytes of pending already scanned */
	size_t max_event;		/* bytes; 0 means 1 MiB */
	int overflow;			/* an event exceeded max_event */
};

/* Initialises p; max_event bounds one event's size in bytes (0: 1 MiB). */
void sy_sse_init(struct sy_sse *p, size_t max_event);

/* Frees what p holds. */
void sy_sse_free(struct sy_sse *p);

/*
 * Feeds len bytes.  Lines end in CRLF, LF or CR (a CR at the end of one feed
 * followed by LF at the start of the next counts once).  Every block of
 * lines ended by a blank line is reported as one event, in order; data is
 * NULL (data_len 0) when the block had no "data:" line, e.g. a block of
 * ":" comment lines only (pings), which a relay still forwards from raw.
 * "data:" and other fields drop one leading space after the colon.
 * Blank lines with no block before them are skipped.
 * Returns 0 when all bytes were consumed, the callback's non-zero value when
 * it stopped, or -1 when an event exceeded max_event (p->overflow set).
 */
int sy_sse_feed(struct sy_sse *p, const char *buf, size_t len,
    sy_sse_cb cb, void *arg);

/* Number of bytes held for an event not yet complete. */
size_t sy_sse_pending(const struct sy_sse *p);

#endif
