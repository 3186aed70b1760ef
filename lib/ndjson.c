/* Incremental NDJSON splitter: one JSON document a line, whatever the chunking (Ollama's streams). */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "ndjson.h"

/* Default bound of one line. */
#define NDJSON_MAX_LINE (1024 * 1024)

void
sy_ndjson_init(struct sy_ndjson *p, size_t max_line)
{
	p->pending = evbuffer_new();
	p->line = NULL;
	p->cap = 0;
	p->max_line = max_line ? max_line : NDJSON_MAX_LINE;
	p->overflow = 0;
}

void
sy_ndjson_free(struct sy_ndjson *p)
{
	if (p->pending != NULL)
		evbuffer_free(p->pending);
	p->pending = NULL;
	free(p->line);
	p->line = NULL;
}

/*
 * Reports the first n bytes of p->pending (a line, with its LF when lf) as
 * an event, unless blank, and drains them.  Returns the callback's value.
 */
static int
report(struct sy_ndjson *p, size_t n, int lf, sy_sse_cb cb, void *arg)
{
	struct sy_sse_event ev;
	size_t len = n - (lf ? 1 : 0), i;
	char *line;

	/* raw (the line as read) then data (without its end, NUL-ended). */
	if (2 * n + 2 > p->cap) {
		if ((line = realloc(p->line, 2 * n + 2)) == NULL)
			return -1;
		p->line = line;
		p->cap = 2 * n + 2;
	}
	line = p->line;
	evbuffer_remove(p->pending, line, n);
	line[n] = '\0';
	if (len > 0 && line[len - 1] == '\r')
		len--;
	for (i = 0; i < len && (line[i] == ' ' || line[i] == '\t'); i++)
		;
	if (i == len)
		return 0;
	memcpy(line + n + 1, line, len);
	line[n + 1 + len] = '\0';
	memset(&ev, 0, sizeof ev);
	ev.event = "";
	ev.id = "";
	ev.raw = line;
	ev.raw_len = n;
	ev.data = line + n + 1;
	ev.data_len = len;
	return cb(&ev, arg);
}

int
sy_ndjson_feed(struct sy_ndjson *p, const char *buf, size_t len,
    sy_sse_cb cb, void *arg)
{
	struct evbuffer_ptr at;
	int r;

	evbuffer_add(p->pending, buf, len);
	while ((at = evbuffer_search(p->pending, "\n", 1, NULL)).pos >= 0)
		if ((r = report(p, (size_t)at.pos + 1, 1, cb, arg)) != 0)
			return r;
	if (evbuffer_get_length(p->pending) > p->max_line) {
		p->overflow = 1;
		return -1;
	}
	return 0;
}

int
sy_ndjson_finish(struct sy_ndjson *p, sy_sse_cb cb, void *arg)
{
	size_t n = evbuffer_get_length(p->pending);

	return n == 0 ? 0 : report(p, n, 0, cb, arg);
}
