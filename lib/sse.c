/* Incremental Server-Sent Events parser: one memchr-driven pass, events reported in place when they arrive whole. */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "sse.h"

#define SSE_DEFAULT_MAX_EVENT	(1024 * 1024)
#define SSE_SCRATCH_SIZE	16384

/*
 * The bytes of a feed are scanned where they are, line by line, each line
 * end found by memchr, and each line's field decoded as it is passed.  An
 * event that arrives whole within one feed is reported with raw pointing
 * into the caller's buffer; its data, event and id are copied only to be
 * NUL-terminated, into a per-thread scratch buffer (or, for an event too
 * large for it, a buffer of its own).
 *
 * The bytes since the last reported event that no feed completed wait in
 * pending (scanned says how many of them have been looked at: all, except
 * after a callback stopped a feed).  The next feed looks in its own bytes
 * for that event's end only, resuming from the state the last bytes of
 * pending tell (inside a line or not, whether a block has begun, whether
 * the last byte was a CR), then completes the event in pending and
 * reports it from there.  Blank lines before a block stay with it and
 * become the front of its raw, so the raws of all events plus what is
 * pending are exactly the bytes fed.
 */

/* Scratch for the decoded fields; busy while a callback holds them. */
static _Thread_local char sse_scratch[SSE_SCRATCH_SIZE];
static _Thread_local int sse_scratch_busy;

/* The fields of the block being read, as found in its lines. */
struct sse_fields {
	int lines;			/* non-blank lines */
	int ndata;			/* "data" lines */
	const char *data;		/* the first data line's value */
	size_t data_len;
	const char *event, *id;		/* the last event and id values */
	size_t event_len, id_len;
};

/* Finds line ends in s[0..n), each of CR and LF looked for once. */
struct sse_eol {
	const char *s;
	size_t n;
	size_t cr, lf;			/* the next CR and LF seen, n for none */
};

/* Whether c ends a line. */
static int
is_eol(char c)
{
	return c == '\r' || c == '\n';
}

/* Offset of the first c in s[from..n), or n. */
static size_t
find_byte(const char *s, size_t from, size_t n, char c)
{
	const char *hit;

	if (from >= n)
		return n;
	hit = memchr(s + from, c, n - from);
	return hit != NULL ? (size_t)(hit - s) : n;
}

static void
eol_init(struct sse_eol *f, const char *s, size_t n)
{
	f->s = s;
	f->n = n;
	f->cr = find_byte(s, 0, n, '\r');
	f->lf = find_byte(s, 0, n, '\n');
}

/* Offset of the first line end at or after from, or n. */
static size_t
eol_next(struct sse_eol *f, size_t from)
{
	if (f->cr < from)
		f->cr = find_byte(f->s, from, f->n, '\r');
	if (f->lf < from)
		f->lf = find_byte(f->s, from, f->n, '\n');
	return f->cr < f->lf ? f->cr : f->lf;
}

/* Offset after the line end at s[eol]: a CRLF counts once when whole. */
static size_t
eol_skip(const char *s, size_t eol, size_t n)
{
	return s[eol] == '\r' && eol + 1 < n && s[eol + 1] == '\n' ?
	    eol + 2 : eol + 1;
}

/*
 * Splits a non-blank line (len bytes, no line end) into its field name's
 * length and its value: after the colon and one space, or empty.
 */
static size_t
split_field(const char *line, size_t len, const char **value,
    size_t *value_len)
{
	const char *colon = memchr(line, ':', len), *v;
	size_t name_len;

	if (colon == NULL) {
		*value = line + len;
		*value_len = 0;
		return len;
	}
	name_len = (size_t)(colon - line);
	v = colon + 1;
	if (v < line + len && *v == ' ')
		v++;
	*value = v;
	*value_len = (size_t)(line + len - v);
	return name_len;
}

/* Records the field of one non-blank line (len bytes) into f. */
static void
fields_add(struct sse_fields *f, const char *line, size_t len)
{
	const char *value;
	size_t name_len, value_len;

	f->lines++;
	if (*line == ':')
		return;
	name_len = split_field(line, len, &value, &value_len);
	if (name_len == 4 && memcmp(line, "data", 4) == 0) {
		if (f->ndata++ == 0) {
			f->data = value;
			f->data_len = value_len;
		}
	} else if (name_len == 5 && memcmp(line, "event", 5) == 0) {
		f->event = value;
		f->event_len = value_len;
	} else if (name_len == 2 && memcmp(line, "id", 2) == 0) {
		f->id = value;
		f->id_len = value_len;
	}
}

/*
 * Writes the values of every data line of raw (len bytes) into buf,
 * joined with '\n'; returns their length.  For events of several data
 * lines only, which are rare.
 */
static size_t
join_data(const char *raw, size_t len, char *buf)
{
	const char *value;
	size_t line, eol, value_len, n = 0;
	int first = 1;

	for (line = 0; line < len; line = eol_skip(raw, eol, len)) {
		for (eol = line; eol < len && !is_eol(raw[eol]); eol++)
			;
		if (eol == line || raw[line] == ':')
			continue;
		if (split_field(raw + line, eol - line, &value, &value_len) !=
		    4 || memcmp(raw + line, "data", 4) != 0)
			continue;
		if (!first)
			buf[n++] = '\n';
		memcpy(buf + n, value, value_len);
		n += value_len;
		first = 0;
	}
	return n;
}

/* Copies s (len bytes) to buf, NUL-terminated; returns buf's copy. */
static const char *
put_string(char *buf, const char *s, size_t len)
{
	if (len > 0)
		memcpy(buf, s, len);
	buf[len] = '\0';
	return buf;
}

/*
 * Reports the event raw (len bytes, through its blank line) whose fields
 * are f, storing the callback's value in *rc.  Returns 0, or -1 when out
 * of memory.
 */
static int
sse_report(const char *raw, size_t len, const struct sse_fields *f,
    sy_sse_cb cb, void *arg, int *rc)
{
	struct sy_sse_event ev;
	char *buf, *own = NULL;
	size_t n;

	/* Data, event and id come from distinct lines: they fit in len + 3. */
	if (len + 3 <= sizeof sse_scratch && !sse_scratch_busy)
		buf = sse_scratch;
	else if ((buf = own = malloc(len + 3)) == NULL)
		return -1;
	if (f->ndata > 1) {
		n = join_data(raw, len, buf);
		buf[n] = '\0';
	} else
		put_string(buf, f->data, n = f->data_len);
	ev.data = f->ndata > 0 ? buf : NULL;
	ev.data_len = n;
	ev.event = put_string(buf + n + 1, f->event, f->event_len);
	ev.id = put_string(buf + n + 2 + f->event_len, f->id, f->id_len);
	ev.raw = raw;
	ev.raw_len = len;
	if (own == NULL)
		sse_scratch_busy = 1;
	*rc = cb(&ev, arg);
	if (own == NULL)
		sse_scratch_busy = 0;
	free(own);
	return 0;
}

/*
 * Reports, in order, the events that end within s[0..n), which starts
 * where an event does.  Sets *used to the offset after the last one
 * reported and *rc to the callback's value (it stops at the first
 * non-zero one).  Returns 0, or -1 when an event exceeds p->max_event or
 * memory runs out.
 */
static int
sse_scan(const struct sy_sse *p, const char *s, size_t n, sy_sse_cb cb,
    void *arg, size_t *used, int *rc)
{
	struct sse_fields f;
	struct sse_eol eols;
	size_t start = 0, line = 0, eol, next;

	*rc = 0;
	memset(&f, 0, sizeof f);
	eol_init(&eols, s, n);
	while ((eol = eol_next(&eols, line)) < n) {
		next = eol_skip(s, eol, n);
		if (eol > line)
			fields_add(&f, s + line, eol - line);
		else if (f.lines > 0) {
			if (next - start > p->max_event ||
			    sse_report(s + start, next - start, &f, cb, arg,
			    rc) == -1)
				return -1;
			start = next;
			memset(&f, 0, sizeof f);
			if (*rc != 0)
				break;
		}
		line = next;
	}
	*used = start;
	return 0;
}

/*
 * Where the event held in pending (plen bytes at s) ends in buf: the
 * offset after its blank line, or 0 when it does not end in buf.
 */
static size_t
pending_end(const char *s, size_t plen, const char *buf, size_t len)
{
	struct sse_eol eols;
	char last = s[plen - 1];
	size_t pos = 0, eol, i;
	int in_line = !is_eol(last), begun = in_line;

	if (!in_line) {
		/* Pending ends a line: a block has begun if it was not blank. */
		i = plen - 1;
		if (last == '\n' && i > 0 && s[i - 1] == '\r')
			i--;
		begun = i > 0 && !is_eol(s[i - 1]);
	}
	if (last == '\r' && len > 0 && buf[0] == '\n')
		pos = 1;		/* the LF of a CRLF */
	eol_init(&eols, buf, len);
	while ((eol = eol_next(&eols, pos)) < len) {
		if (eol > pos || in_line)
			begun = 1;
		else if (begun)
			return eol_skip(buf, eol, len);
		in_line = 0;
		pos = eol_skip(buf, eol, len);
	}
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
 * Keeps buf (len bytes), unscanned, after a callback stopped the feed.
 * Returns 0, or -1 when out of memory.
 */
static int
keep_unscanned(struct sy_sse *p, const char *buf, size_t len)
{
	if (len > 0 && evbuffer_add(p->pending, buf, len) == -1)
		return -1;
	p->scanned = 0;
	return 0;
}

/*
 * Completes and reports the event pending when buf (len bytes) ends it,
 * else keeps all of buf pending.  Sets *took to the bytes of buf the
 * event took (0 when it did not end) and *rc to the callback's value.
 * Returns 0, or -1 on overflow.
 */
static int
finish_pending(struct sy_sse *p, const char *buf, size_t len, sy_sse_cb cb,
    void *arg, size_t *took, int *rc)
{
	size_t plen = evbuffer_get_length(p->pending), end, used;
	const char *s;

	if ((s = (const char *)evbuffer_pullup(p->pending, -1)) == NULL)
		return -1;
	*took = end = pending_end(s, plen, buf, len);
	if (end == 0) {
		if (plen + len > p->max_event ||
		    (len > 0 && evbuffer_add(p->pending, buf, len) == -1))
			return -1;
		p->scanned = plen + len;
		return 0;
	}
	if (plen + end > p->max_event ||
	    evbuffer_add(p->pending, buf, end) == -1 ||
	    (s = (const char *)evbuffer_pullup(p->pending, -1)) == NULL ||
	    sse_scan(p, s, plen + end, cb, arg, &used, rc) == -1)
		return -1;
	evbuffer_drain(p->pending, used);
	p->scanned = 0;
	return 0;
}

/*
 * Feeds pending (after a callback stopped) and then buf through pending,
 * rescanning what was not looked at.
 */
static int
feed_unscanned(struct sy_sse *p, const char *buf, size_t len, sy_sse_cb cb,
    void *arg)
{
	size_t n, used;
	const char *s;
	int rc;

	if (len > 0 && evbuffer_add(p->pending, buf, len) == -1)
		return -1;
	n = evbuffer_get_length(p->pending);
	if ((s = (const char *)evbuffer_pullup(p->pending, -1)) == NULL ||
	    sse_scan(p, s, n, cb, arg, &used, &rc) == -1)
		return -1;
	evbuffer_drain(p->pending, used);
	if (rc != 0) {
		p->scanned = 0;
		return rc;
	}
	p->scanned = n - used;
	return p->scanned > p->max_event ? -1 : 0;
}

/*
 * The event pending is completed first; the rest of buf is scanned in
 * place and only its incomplete tail is copied to pending.  cb must not
 * feed p itself.  An allocation failure is reported like an overflow.
 */
int
sy_sse_feed(struct sy_sse *p, const char *buf, size_t len, sy_sse_cb cb,
    void *arg)
{
	size_t pending, used, took;
	int rc = 0;

	if (p->overflow)
		return -1;
	pending = evbuffer_get_length(p->pending);
	if (pending > p->scanned) {
		if ((rc = feed_unscanned(p, buf, len, cb, arg)) == -1)
			goto overflow;
		return rc;
	}
	if (pending > 0) {
		if (finish_pending(p, buf, len, cb, arg, &took, &rc) == -1)
			goto overflow;
		if (took == 0)
			return 0;
		buf += took;
		len -= took;
		if (rc != 0) {
			if (keep_unscanned(p, buf, len) == -1)
				goto overflow;
			return rc;
		}
	}
	if (len == 0)
		return 0;
	if (sse_scan(p, buf, len, cb, arg, &used, &rc) == -1)
		goto overflow;
	if (rc != 0) {
		if (keep_unscanned(p, buf + used, len - used) == -1)
			goto overflow;
		return rc;
	}
	if (len - used > p->max_event ||
	    (used < len && evbuffer_add(p->pending, buf + used,
	    len - used) == -1))
		goto overflow;
	p->scanned = len - used;
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
