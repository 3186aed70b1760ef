/* Stream framings behind one interface: Server-Sent Events and NDJSON split a byte stream into events, whatever the chunking. */
#include <string.h>
#include <strings.h>

#include "framing.h"

/* ==== Server-Sent Events ==== */

static int
sse_is_stream(const char *ct)
{
	return strncasecmp(ct, "text/event-stream", 17) == 0;
}

static void
sse_init(struct sy_framer *f, size_t max_event)
{
	sy_sse_init(&f->u.sse, max_event);
}

static int
sse_feed(struct sy_framer *f, const char *buf, size_t len, sy_sse_cb cb,
    void *arg)
{
	return sy_sse_feed(&f->u.sse, buf, len, cb, arg);
}

/* An event without its blank line is dropped, as the SSE standard says. */
static int
sse_finish(struct sy_framer *f, sy_sse_cb cb, void *arg)
{
	(void)f;
	(void)cb;
	(void)arg;
	return 0;
}

static void
sse_free(struct sy_framer *f)
{
	sy_sse_free(&f->u.sse);
}

const struct sy_framing sy_framing_sse = {
	.name = "sse",
	.accept = "text/event-stream",
	.is_stream = sse_is_stream,
	.init = sse_init,
	.feed = sse_feed,
	.finish = sse_finish,
	.free = sse_free
};

/* ==== NDJSON ==== */

/* application/x-ndjson, or application/json as some servers say. */
static int
nd_is_stream(const char *ct)
{
	return strstr(ct, "json") != NULL;
}

static void
nd_init(struct sy_framer *f, size_t max_event)
{
	sy_ndjson_init(&f->u.nd, max_event);
}

static int
nd_feed(struct sy_framer *f, const char *buf, size_t len, sy_sse_cb cb,
    void *arg)
{
	return sy_ndjson_feed(&f->u.nd, buf, len, cb, arg);
}

static int
nd_finish(struct sy_framer *f, sy_sse_cb cb, void *arg)
{
	return sy_ndjson_finish(&f->u.nd, cb, arg);
}

static void
nd_free(struct sy_framer *f)
{
	sy_ndjson_free(&f->u.nd);
}

const struct sy_framing sy_framing_ndjson = {
	.name = "ndjson",
	.accept = "application/x-ndjson",
	.is_stream = nd_is_stream,
	.init = nd_init,
	.feed = nd_feed,
	.finish = nd_finish,
	.free = nd_free
};

/* ==== One stream's splitter ==== */

void
sy_framer_init(struct sy_framer *f, const struct sy_framing *framing,
    size_t max_event)
{
	f->framing = framing;
	framing->init(f, max_event);
}

int
sy_framer_feed(struct sy_framer *f, const char *buf, size_t len,
    sy_sse_cb cb, void *arg)
{
	return f->framing->feed(f, buf, len, cb, arg);
}

int
sy_framer_finish(struct sy_framer *f, sy_sse_cb cb, void *arg)
{
	return f->framing->finish(f, cb, arg);
}

void
sy_framer_free(struct sy_framer *f)
{
	f->framing->free(f);
}
