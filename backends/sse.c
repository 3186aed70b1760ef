/* Incremental Server-Sent Events parser: finds each block by its blank line, then decodes its fields. */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "sse.h"

#define SSE_DEFAULT_MAX_EVENT	(1024 * 1024)

/*
 * pending holds the bytes since the last reported event, contiguous, and
 * scanned says how many of them have been looked at; the state needed to
 * resume (inside a line or not, whether a block has begun, whether the last
 * byte was a CR) is read back from the few bytes before scanned.  Blank
 * lines before a block stay in pending and become the front of the next
 * event's raw, so the raws of all events plus what is pending are exactly
 * the bytes fed.
 */

/* Whether c ends a line. */
static int
is_eol(char c)
{
	return c == '\r' || c == '\n';
}

/*
 * Whether the line end at s[i] closes a block: the line it ends is empty
 * and the line before it, within s[start..i), is not.
 */
static int
ends_block(const char *s, size_t start, size_t i)
{
	size_t j;

	if (i == start || !is_eol(s[i - 1]))
		return 0;
	j = i - 1;		/* the previous line's end */
	if (s[j] == '\n' && j > start && s[j - 1] == '\r')
		j--;
	return j > start && !is_eol(s[j - 1]);
}

/*
 * Decodes the fields of one event (raw, len bytes through its blank line)
 * and calls cb with it, storing its value in *rc.  Returns 0, or -1 when
 * out of memory.
 */
static int
sse_dispatch(const char *raw, size_t len, sy_sse_cb cb, void *arg, int *rc)
{
	const char *line, *eol, *next, *end = raw + len, *colon, *value;
	const char *event = "", *id = "";
	size_t event_len = 0, id_len = 0, name_len, value_len, n = 0;
	struct sy_sse_event ev;
	char *buf;
	int have_data = 0;

	/* Data, event and id come from distinct lines: they fit in len + 3. */
	if ((buf = malloc(len + 3)) == NULL)
		return -1;
	for (line = raw; line < end; line = next) {
		for (eol = line; eol < end && !is_eol(*eol); eol++)
			;
		next = eol + 1;
		if (*eol == '\r' && next < end && *next == '\n')
			next++;
		if (eol == line || *line == ':')
			continue;
		if ((colon = memchr(line, ':', (size_t)(eol - line))) != NULL) {
			name_len = (size_t)(colon - line);
			value = colon + 1;
			if (value < eol && *value == ' ')
				value++;
		} else {
			name_len = (size_t)(eol - line);
			value = eol;
		}
		value_len = (size_t)(eol - value);
		if (name_len == 4 && memcmp(line, "data", 4) == 0) {
			if (have_data)
				buf[n++] = '\n';
			memcpy(buf + n, value, value_len);
			n += value_len;
			have_data = 1;
		} else if (name_len == 5 && memcmp(line, "event", 5) == 0) {
			event = value;
			event_len = value_len;
		} else if (name_len == 2 && memcmp(line, "id", 2) == 0) {
			id = value;
			id_len = value_len;
		}
	}
	buf[n] = '\0';
	ev.data = have_data ? buf : NULL;
	ev.data_len = n;
	ev.event = memcpy(buf + n + 1, event, event_len);
	buf[n + 1 + event_len] = '\0';
	ev.id = memcpy(buf + n + 2 + event_len, id, id_len);
	buf[n + 2 + event_len + id_len] = '\0';
	ev.raw = raw;
	ev.raw_len = len;
	*rc = cb(&ev, arg);
	free(buf);
	return 0;
}

/* Without a buffer no event fits: p then reports overflow. */
void
sy_sse_init(struct sy_sse *p, size_t max_event)
{
	memset(p, 0, sizeof *p);
	p->max_event = max_event != 0 ? max_event : SSE_DEFAULT_MAX_EVENT;
	if ((p->pending = evbuffer_new()) == NULL)
		p->overflow = 1;
}

void
sy_sse_free(struct sy_sse *p)
{
	if (p->pending != NULL)
		evbuffer_free(p->pending);
	p->pending = NULL;
}

/*
 * Appends buf to pending and scans only the bytes not scanned before, so
 * the work is linear in the input however it is split.  cb must not feed
 * p itself.  An allocation failure is reported like an overflow.
 */
int
sy_sse_feed(struct sy_sse *p, const char *buf, size_t len, sy_sse_cb cb,
    void *arg)
{
	const char *s;
	size_t n, i, start = 0, end;
	int rc = 0;

	if (p->overflow)
		return -1;
	if (len > 0 && evbuffer_add(p->pending, buf, len) == -1)
		goto overflow;
	if ((n = evbuffer_get_length(p->pending)) == 0)
		return 0;
	if ((s = (const char *)evbuffer_pullup(p->pending, -1)) == NULL)
		goto overflow;
	for (i = p->scanned; i < n; i++) {
		if (!is_eol(s[i]))
			continue;
		if (s[i] == '\n' && i > start && s[i - 1] == '\r')
			continue;	/* the LF of a CRLF */
		if (!ends_block(s, start, i))
			continue;
		end = i + 1;
		if (s[i] == '\r' && end < n && s[end] == '\n')
			end++;
		if (end - start > p->max_event)
			goto overflow;
		if (sse_dispatch(s + start, end - start, cb, arg, &rc) == -1)
			goto overflow;
		start = end;
		i = end - 1;
		if (rc != 0)
			break;
	}
	evbuffer_drain(p->pending, start);
	if (rc != 0) {
		p->scanned = 0;
		return rc;
	}
	p->scanned = n - start;
	if (p->scanned > p->max_event)
		goto overflow;
	return 0;

overflow:
	p->overflow = 1;
	p->scanned = 0;
	evbuffer_drain(p->pending, evbuffer_get_length(p->pending));
	return -1;
}

size_t
sy_sse_pending(const struct sy_sse *p)
{
	return p->pending != NULL ? evbuffer_get_length(p->pending) : 0;
}
