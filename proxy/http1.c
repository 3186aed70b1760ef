/* Incremental HTTP/1.x parser and writer: start line, headers, Content-Length, chunked and until-close bodies. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "http1.h"

#define HTTP1_DEFAULT_MAX_HEAD		16384
#define HTTP1_DEFAULT_MAX_HEADERS	100
#define HTTP1_MAX_LENGTH		(INT64_C(1) << 62)

/*
 * Where a chunked body stands (m->chunk_state).  While a line is awaited
 * (the head, a chunk-size line, a trailer line) m->body_left holds how many
 * bytes of the input have already been searched for its LF, so a line fed
 * in small pieces is searched once.
 */
enum {
	CHUNK_SIZE,		/* reading a chunk-size line */
	CHUNK_DATA,		/* m->body_left bytes of chunk data to go */
	CHUNK_DATA_END,		/* reading the line end after chunk data */
	CHUNK_TRAILER		/* reading trailer lines up to the blank line */
};

/* ==== Characters ==== */

/* Whether c is an ASCII digit. */
static int
is_digit(int c)
{
	return c >= '0' && c <= '9';
}

/* Value of the hex digit c, or -1. */
static int
hex_value(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Whether c may appear in a token such as a method or header name. */
static int
is_tchar(int c)
{
	if (is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Whether c is a control character other than HTAB (not allowed in values). */
static int
is_ctl(int c)
{
	return (c < 0x20 && c != '\t') || c == 0x7f;
}

/* ==== Errors and lines ==== */

/*
 * Marks m as malformed with a static message and returns -1.  status is
 * what a client earns for such a request; a malformed response always earns
 * 502, the answer the gateway gives its own client.
 */
static int
http1_fail(struct sy_http1_msg *m, int status, const char *error)
{
	m->state = SY_HTTP1_ERROR;
	m->error = error;
	m->error_status = m->kind == SY_HTTP1_REQUEST ? status : 502;
	return -1;
}

/*
 * Finds the next LF in in at or after offset m->body_left.  Returns its
 * offset, or -1 when there is none yet (m->body_left then covers all of in).
 */
static ev_ssize_t
find_lf(struct sy_http1_msg *m, struct evbuffer *in)
{
	size_t len = evbuffer_get_length(in);
	struct evbuffer_ptr p;

	if ((size_t)m->body_left >= len)
		return -1;
	if (evbuffer_ptr_set(in, &p, (size_t)m->body_left,
	    EVBUFFER_PTR_SET) == -1)
		return -1;
	p = evbuffer_search_eol(in, &p, NULL, EVBUFFER_EOL_LF);
	if (p.pos == -1) {
		m->body_left = (int64_t)len;
		return -1;
	}
	return p.pos;
}

/*
 * Whether the LF at offset nl of in ends an empty line (or a lone CR): the
 * byte before it is the start of in or another line's end.
 */
static int
lf_ends_blank_line(struct evbuffer *in, size_t nl)
{
	struct evbuffer_ptr p;
	unsigned char b[2];
	size_t n = nl < 2 ? nl : 2;

	if (n == 0)
		return 1;
	if (evbuffer_ptr_set(in, &p, nl - n, EVBUFFER_PTR_SET) == -1 ||
	    evbuffer_copyout_from(in, &p, b, n) != (ev_ssize_t)n)
		return 0;
	if (b[n - 1] == '\n')
		return 1;
	return b[n - 1] == '\r' && (n == 1 || b[0] == '\n');
}

/*
 * Reads the line at the front of in (a chunk-size or trailer line).  On 1,
 * *line points at it inside in, *len is its length without the line end and
 * *total its length through the LF; the caller drains *total bytes.
 * Returns 0 when the line is incomplete, -1 when it is too long.
 */
static int
next_line(struct sy_http1_msg *m, struct evbuffer *in, const char **line,
    size_t *len, size_t *total)
{
	ev_ssize_t nl;

	if ((nl = find_lf(m, in)) == -1) {
		if (evbuffer_get_length(in) > m->max_head)
			return http1_fail(m, 400, "chunk line too long");
		return 0;
	}
	if ((size_t)nl >= m->max_head)
		return http1_fail(m, 400, "chunk line too long");
	if ((*line = (const char *)evbuffer_pullup(in, nl + 1)) == NULL)
		return http1_fail(m, 500, "out of memory");
	*total = (size_t)nl + 1;
	*len = (size_t)nl;
	if (*len > 0 && (*line)[*len - 1] == '\r')
		(*len)--;
	m->body_left = 0;
	return 1;
}

/*
 * Cuts the line starting at line (which ends in an LF) at its line end.
 * Returns the start of the next line.
 */
static char *
cut_line(char *line)
{
	char *lf = strchr(line, '\n');

	*lf = '\0';
	if (lf > line && lf[-1] == '\r')
		lf[-1] = '\0';
	return lf + 1;
}

/* ==== Head ==== */

/*
 * Parses "HTTP/1.x" (the whole string s) into m->version_minor.  Returns 0,
 * or -1 for a malformed version (400) or one other than 1.0 and 1.1 (505).
 */
static int
parse_version(struct sy_http1_msg *m, const char *s)
{
	if (strncmp(s, "HTTP/", 5) != 0 || !is_digit(s[5]) || s[6] != '.' ||
	    !is_digit(s[7]) || s[8] != '\0')
		return http1_fail(m, 400, "malformed HTTP version");
	if (s[5] != '1' || (s[7] != '0' && s[7] != '1'))
		return http1_fail(m, 505, "HTTP version not supported");
	m->version_minor = s[7] - '0';
	return 0;
}

/*
 * The origin-form part of a request target: the target itself, or for an
 * absolute-form one ("http://host:port/path?q", RFC 9112 3.2.2) its path
 * and query ("/" when it has none), written in place.  NULL when the
 * absolute form has no authority.
 */
static char *
absolute_form_path(char *target)
{
	char *p;
	size_t n;

	if (strncasecmp(target, "http://", 7) == 0)
		n = 7;
	else if (strncasecmp(target, "https://", 8) == 0)
		n = 8;
	else
		return target;
	p = target + n + strcspn(target + n, "/?");
	if (p == target + n)
		return NULL;
	if (*p == '/')
		return p;
	/* "http://host" or "http://host?q": the authority's last byte
	   becomes the path's slash. */
	p[-1] = '/';
	return p - 1;
}

/* Parses a request line: method SP request-target SP HTTP-version. */
static int
parse_request_line(struct sy_http1_msg *m, char *line)
{
	char *sp, *target, *p;
	size_t n;

	if ((sp = strchr(line, ' ')) == NULL || sp == line)
		return http1_fail(m, 400, "malformed request line");
	for (p = line; p < sp; p++) {
		if (!is_tchar((unsigned char)*p))
			return http1_fail(m, 400, "invalid method");
	}
	n = (size_t)(sp - line);
	if (n >= sizeof m->method)
		return http1_fail(m, 501, "method too long");
	memcpy(m->method, line, n);
	m->method[n] = '\0';

	target = sp + 1;
	if ((sp = strchr(target, ' ')) == NULL || sp == target)
		return http1_fail(m, 400, "malformed request line");
	*sp = '\0';
	for (p = target; *p != '\0'; p++) {
		if ((unsigned char)*p <= 0x20 || *p == 0x7f)
			return http1_fail(m, 400, "invalid request target");
	}
	m->target = absolute_form_path(target);
	if (m->target == NULL)
		return http1_fail(m, 400, "invalid request target");
	return parse_version(m, sp + 1);
}

/* Parses a status line: HTTP-version SP 3DIGIT [SP reason], the code 100 to 599. */
static int
parse_status_line(struct sy_http1_msg *m, char *line)
{
	char *sp, *code, *p;

	if ((sp = strchr(line, ' ')) == NULL)
		return http1_fail(m, 400, "malformed status line");
	*sp = '\0';
	if (parse_version(m, line) == -1)
		return -1;
	code = sp + 1;
	if (!is_digit(code[0]) || !is_digit(code[1]) || !is_digit(code[2]) ||
	    (code[3] != ' ' && code[3] != '\0') || code[0] < '1' ||
	    code[0] > '5')
		return http1_fail(m, 400, "malformed status code");
	m->status = (code[0] - '0') * 100 + (code[1] - '0') * 10 +
	    (code[2] - '0');
	m->reason = code[3] == ' ' ? code + 4 : code + 3;
	for (p = m->reason; *p != '\0'; p++) {
		if (is_ctl((unsigned char)*p))
			return http1_fail(m, 400, "invalid reason phrase");
	}
	return 0;
}

/*
 * Parses one header line into the next slot of m->headers: name, colon,
 * value with blanks trimmed.  Rejects obs-fold and invalid characters.
 */
static int
parse_header_line(struct sy_http1_msg *m, char *line)
{
	char *p, *value, *end;

	if (*line == ' ' || *line == '\t')
		return http1_fail(m, 400, "obsolete line folding");
	for (p = line; is_tchar((unsigned char)*p); p++)
		;
	if (p == line || *p != ':')
		return http1_fail(m, 400, "invalid header name");
	*p++ = '\0';
	while (*p == ' ' || *p == '\t')
		p++;
	value = p;
	end = value + strlen(value);
	while (end > value && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	*end = '\0';
	for (p = value; p < end; p++) {
		if (is_ctl((unsigned char)*p))
			return http1_fail(m, 400, "invalid header value");
	}
	m->headers[m->nheaders].name = line;
	m->headers[m->nheaders].value = value;
	m->nheaders++;
	return 0;
}

/*
 * Folds one Content-Length value (a comma-separated list of equal numbers)
 * into m->content_length.  Returns 0, or -1 when invalid or conflicting
 * (400) or above 2^62 (413).
 */
static int
parse_content_length(struct sy_http1_msg *m, const char *p)
{
	int64_t v;
	int d;

	for (;;) {
		if (!is_digit(*p))
			return http1_fail(m, 400, "invalid Content-Length");
		for (v = 0; is_digit(*p); p++) {
			d = *p - '0';
			if (v > (HTTP1_MAX_LENGTH - d) / 10)
				return http1_fail(m, 413,
				    "Content-Length too large");
			v = v * 10 + d;
		}
		if (m->content_length != -1 && m->content_length != v)
			return http1_fail(m, 400, "conflicting Content-Length");
		m->content_length = v;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			return 0;
		if (*p++ != ',')
			return http1_fail(m, 400, "invalid Content-Length");
		while (*p == ' ' || *p == '\t')
			p++;
	}
}

/*
 * Folds one Transfer-Encoding value into m->chunked.  Only "chunked", once,
 * is supported.  Returns 0, or -1 for another coding (501) or a repeated or
 * empty one (400).
 */
static int
parse_transfer_encoding(struct sy_http1_msg *m, const char *p)
{
	const char *start, *end;
	int seen = 0;

	while (*p != '\0') {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		start = p;
		while (*p != '\0' && *p != ',')
			p++;
		end = p;
		while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		if (end == start)
			continue;
		if (end - start != 7 || strncasecmp(start, "chunked", 7) != 0)
			return http1_fail(m, 501, "unsupported transfer coding");
		if (m->chunked)
			return http1_fail(m, 400, "chunked applied twice");
		m->chunked = 1;
		seen = 1;
	}
	if (!seen)
		return http1_fail(m, 400, "empty Transfer-Encoding");
	return 0;
}

/* Whether the connection may carry another message (version, Connection). */
static int
connection_keep_alive(const struct sy_http1_msg *m)
{
	if (sy_http1_header_has(m, "Connection", "close"))
		return 0;
	if (m->version_minor >= 1)
		return 1;
	return sy_http1_header_has(m, "Connection", "keep-alive");
}

/*
 * Derives the framing from the parsed headers and moves m to BODY or DONE.
 * Returns 1, or -1 on conflicting or unsupported framing.
 */
static int
head_framing(struct sy_http1_msg *m)
{
	struct sy_http1_header *h;
	int te = 0, both;
	size_t i;

	for (i = 0; i < m->nheaders; i++) {
		h = &m->headers[i];
		if (strcasecmp(h->name, "Content-Length") == 0) {
			if (parse_content_length(m, h->value) == -1)
				return -1;
		} else if (strcasecmp(h->name, "Transfer-Encoding") == 0) {
			if (parse_transfer_encoding(m, h->value) == -1)
				return -1;
			te = 1;
		}
	}
	both = te && m->content_length != -1;
	if (m->kind == SY_HTTP1_REQUEST && both)
		return http1_fail(m, 400,
		    "both Content-Length and Transfer-Encoding");
	if (m->kind == SY_HTTP1_REQUEST && te && m->version_minor == 0)
		return http1_fail(m, 400, "Transfer-Encoding in HTTP/1.0");
	if (te)
		m->content_length = -1;	/* chunked framing overrides it */

	/* A response framed both ways, or chunked in 1.0, is not reused. */
	m->keep_alive = connection_keep_alive(m) &&
	    !(te && (both || m->version_minor == 0));
	if (m->kind == SY_HTTP1_REQUEST)
		m->expect_continue = m->version_minor >= 1 &&
		    sy_http1_header_has(m, "Expect", "100-continue");
	else if (m->status < 200 || m->status == 204 || m->status == 304)
		m->no_body = 1;

	m->body_left = 0;
	if (m->kind == SY_HTTP1_RESPONSE && m->no_body)
		m->state = SY_HTTP1_DONE;
	else if (m->chunked)
		m->state = SY_HTTP1_BODY;
	else if (m->content_length > 0) {
		m->body_left = m->content_length;
		m->state = SY_HTTP1_BODY;
	} else if (m->content_length == 0 || m->kind == SY_HTTP1_REQUEST)
		m->state = SY_HTTP1_DONE;
	else {
		m->until_close = 1;
		m->keep_alive = 0;
		m->state = SY_HTTP1_BODY;
	}
	return 1;
}

/*
 * Moves the complete head (len bytes at the front of in) out of in and
 * parses it.  The head is kept in one allocation owned through m->headers:
 * the header array followed by the head's text, which target, reason and
 * every name and value point into.  Returns 1, or -1 when malformed.
 */
static int
head_parse(struct sy_http1_msg *m, struct evbuffer *in, size_t len)
{
	const unsigned char *raw;
	size_t i, nlines = 0;
	char *text, *line, *next;

	if ((raw = evbuffer_pullup(in, len)) == NULL)
		return http1_fail(m, 500, "out of memory");
	if (memchr(raw, '\0', len) != NULL)
		return http1_fail(m, 400, "NUL in head");
	for (i = 0; i < len; i++) {
		if (raw[i] == '\n')
			nlines++;
	}
	/* Every line but the start line and the final blank one is a header. */
	if (nlines - 2 > m->max_headers)
		return http1_fail(m, 431, "too many headers");
	m->headers = malloc((nlines - 2) * sizeof *m->headers + len + 1);
	if (m->headers == NULL)
		return http1_fail(m, 500, "out of memory");
	text = (char *)(m->headers + (nlines - 2));
	memcpy(text, raw, len);
	text[len] = '\0';
	evbuffer_drain(in, len);

	next = cut_line(text);
	if (m->kind == SY_HTTP1_REQUEST) {
		if (parse_request_line(m, text) == -1)
			return -1;
	} else if (parse_status_line(m, text) == -1)
		return -1;
	for (line = next;; line = next) {
		next = cut_line(line);
		if (*line == '\0')
			return head_framing(m);
		if (parse_header_line(m, line) == -1)
			return -1;
	}
}

void
sy_http1_init(struct sy_http1_msg *m, enum sy_http1_kind kind,
    size_t max_head, size_t max_headers)
{
	memset(m, 0, sizeof *m);
	m->kind = kind;
	m->state = SY_HTTP1_HEAD;
	m->content_length = -1;
	m->max_head = max_head != 0 ? max_head : HTTP1_DEFAULT_MAX_HEAD;
	m->max_headers = max_headers != 0 ? max_headers :
	    HTTP1_DEFAULT_MAX_HEADERS;
}

void
sy_http1_reset(struct sy_http1_msg *m)
{
	sy_http1_free(m);
	sy_http1_init(m, m->kind, m->max_head, m->max_headers);
}

void
sy_http1_free(struct sy_http1_msg *m)
{
	free(m->headers);
	m->headers = NULL;
	m->nheaders = 0;
	m->target = NULL;
	m->reason = NULL;
}

/*
 * Whether the response that begins in in cannot be HTTP: its first bytes
 * (after blank lines) are not a beginning of "HTTP/".  A server that
 * speaks another protocol (an SSH or SMTP banner, garbage) fails at its
 * first bytes, not when a head that never comes times out.
 */
static int
not_http(struct evbuffer *in)
{
	static const char proto[] = "HTTP/";
	char b[16];
	ev_ssize_t n = evbuffer_copyout(in, b, sizeof b);
	ev_ssize_t i = 0, j;

	while (i < n && (b[i] == '\r' || b[i] == '\n'))
		i++;
	for (j = 0; i + j < n && j < (ev_ssize_t)sizeof proto - 1; j++)
		if (b[i + j] != proto[j])
			return 1;
	return 0;
}

/*
 * Checks a response's status line (the nl bytes at the front of in, before
 * its LF) as soon as it is whole, before the rest of the head arrives.
 * Returns 0, or -1 when it is malformed (state ERROR).
 */
static int
status_line_check(struct sy_http1_msg *m, struct evbuffer *in, size_t nl)
{
	char *line = malloc(nl + 1);
	int rc;

	if (line == NULL)
		return http1_fail(m, 500, "out of memory");
	evbuffer_copyout(in, line, nl);
	line[nl] = '\0';
	if (memchr(line, '\0', nl) != NULL)
		rc = http1_fail(m, 400, "NUL in head");
	else {
		if (nl > 0 && line[nl - 1] == '\r')
			line[nl - 1] = '\0';
		rc = parse_status_line(m, line);
	}
	m->reason = NULL;	/* into line: head_parse sets it again */
	free(line);
	m->start_checked = 1;
	return rc;
}

/*
 * Searches for the blank line ending the head, resuming where the previous
 * call stopped; blank lines before the start line are dropped.  Only a
 * complete head is copied and parsed; a response's start line is checked
 * as soon as its first bytes arrive and again when its line is whole.
 */
int
sy_http1_parse_head(struct sy_http1_msg *m, struct evbuffer *in)
{
	ev_ssize_t nl;

	if (m->state != SY_HTTP1_HEAD)
		return m->state == SY_HTTP1_ERROR ? -1 : 1;
	for (;;) {
		if (m->kind == SY_HTTP1_RESPONSE && !m->start_checked &&
		    not_http(in))
			return http1_fail(m, 400, "not an HTTP response");
		if ((nl = find_lf(m, in)) == -1) {
			if (evbuffer_get_length(in) > m->max_head)
				return http1_fail(m, 431, "head too large");
			return 0;
		}
		if ((size_t)nl >= m->max_head)
			return http1_fail(m, 431, "head too large");
		if (!lf_ends_blank_line(in, (size_t)nl)) {
			if (m->kind == SY_HTTP1_RESPONSE && !m->start_checked &&
			    status_line_check(m, in, (size_t)nl) == -1)
				return -1;
			m->body_left = nl + 1;
		} else if (nl <= 1) {
			evbuffer_drain(in, (size_t)nl + 1);
			m->body_left = 0;
		} else
			return head_parse(m, in, (size_t)nl + 1);
	}
}

/* ==== Body ==== */

/*
 * Moves up to m->body_left bytes from in to out.  Returns 1 when body_left
 * reached 0, else 0.
 */
static int
move_body(struct sy_http1_msg *m, struct evbuffer *in, struct evbuffer *out)
{
	size_t n = evbuffer_get_length(in);

	if ((uint64_t)n > (uint64_t)m->body_left)
		n = (size_t)m->body_left;
	if (n > 0) {
		evbuffer_remove_buffer(in, out, n);
		m->body_left -= (int64_t)n;
		m->body_bytes += n;
	}
	return m->body_left == 0;
}

/*
 * Parses a chunk-size line (len bytes, without its line end): hex digits,
 * optional blanks, optional extensions after ';'.  Returns 0 with *size set,
 * or -1 when malformed (400) or above 2^62 (413).
 */
static int
parse_chunk_size(struct sy_http1_msg *m, const char *s, size_t len,
    int64_t *size)
{
	int64_t v = 0;
	size_t i;
	int d;

	for (i = 0; i < len && (d = hex_value((unsigned char)s[i])) != -1; i++) {
		if (v > (HTTP1_MAX_LENGTH - d) / 16)
			return http1_fail(m, 413, "chunk too large");
		v = v * 16 + d;
	}
	if (i == 0)
		return http1_fail(m, 400, "invalid chunk size");
	while (i < len && (s[i] == ' ' || s[i] == '\t'))
		i++;
	if (i < len && s[i] != ';')
		return http1_fail(m, 400, "invalid chunk size");
	for (; i < len; i++) {
		if (is_ctl((unsigned char)s[i]))
			return http1_fail(m, 400, "invalid chunk extension");
	}
	*size = v;
	return 0;
}

/* Decodes what in holds of a chunked body; returns as sy_http1_read_body. */
static int
read_chunked(struct sy_http1_msg *m, struct evbuffer *in, struct evbuffer *out)
{
	const char *line;
	unsigned char crlf[2];
	size_t len, total;
	ev_ssize_t n;
	int64_t size;
	int r;

	for (;;) {
		switch (m->chunk_state) {
		case CHUNK_SIZE:
			if ((r = next_line(m, in, &line, &len, &total)) != 1)
				return r;
			if (parse_chunk_size(m, line, len, &size) == -1)
				return -1;
			evbuffer_drain(in, total);
			if (size == 0)
				m->chunk_state = CHUNK_TRAILER;
			else {
				m->body_left = size;
				m->chunk_state = CHUNK_DATA;
			}
			break;
		case CHUNK_DATA:
			if (!move_body(m, in, out))
				return 0;
			m->chunk_state = CHUNK_DATA_END;
			break;
		case CHUNK_DATA_END:
			if ((n = evbuffer_copyout(in, crlf, 2)) < 1)
				return 0;
			if (crlf[0] == '\n')
				evbuffer_drain(in, 1);
			else if (crlf[0] != '\r')
				return http1_fail(m, 400, "chunk data too long");
			else if (n < 2)
				return 0;
			else if (crlf[1] != '\n')
				return http1_fail(m, 400, "chunk data too long");
			else
				evbuffer_drain(in, 2);
			m->chunk_state = CHUNK_SIZE;
			break;
		case CHUNK_TRAILER:
			if ((r = next_line(m, in, &line, &len, &total)) != 1)
				return r;
			evbuffer_drain(in, total);
			if (len == 0) {
				m->state = SY_HTTP1_DONE;
				return 1;
			}
			break;
		}
	}
}

uint64_t
sy_http1_body_declared(const struct sy_http1_msg *m)
{
	/* Elsewhere body_left is a line scan's offset, not a promise. */
	if (m->state == SY_HTTP1_BODY && (!m->chunked ||
	    m->chunk_state == CHUNK_DATA))
		return m->body_bytes + (uint64_t)m->body_left;
	return m->body_bytes;
}

/* A message whose head is not parsed yet has no body to read: -1. */
int
sy_http1_read_body(struct sy_http1_msg *m, struct evbuffer *in,
    struct evbuffer *out)
{
	if (m->state == SY_HTTP1_DONE)
		return 1;
	if (m->state != SY_HTTP1_BODY)
		return -1;
	if (m->no_body) {
		/* The caller learnt after the head that there is no body. */
		if (m->until_close) {
			m->until_close = 0;
			m->keep_alive = connection_keep_alive(m);
		}
		m->state = SY_HTTP1_DONE;
		return 1;
	}
	if (m->until_close) {
		m->body_bytes += evbuffer_get_length(in);
		evbuffer_remove_buffer(in, out, evbuffer_get_length(in));
		return 0;
	}
	if (m->chunked)
		return read_chunked(m, in, out);
	if (!move_body(m, in, out))
		return 0;
	m->state = SY_HTTP1_DONE;
	return 1;
}

int
sy_http1_eof(struct sy_http1_msg *m)
{
	if (m->state == SY_HTTP1_BODY && m->until_close)
		m->state = SY_HTTP1_DONE;
	return m->state == SY_HTTP1_DONE;
}

/* ==== Headers ==== */

const char *
sy_http1_header(const struct sy_http1_msg *m, const char *name)
{
	size_t i;

	for (i = 0; i < m->nheaders; i++) {
		if (strcasecmp(m->headers[i].name, name) == 0)
			return m->headers[i].value;
	}
	return NULL;
}

/* Looks through every header called name, element by element. */
int
sy_http1_header_has(const struct sy_http1_msg *m, const char *name,
    const char *token)
{
	size_t i, tlen = strlen(token);
	const char *p, *start, *end;

	for (i = 0; i < m->nheaders; i++) {
		if (strcasecmp(m->headers[i].name, name) != 0)
			continue;
		for (p = m->headers[i].value; *p != '\0';) {
			while (*p == ' ' || *p == '\t' || *p == ',')
				p++;
			start = p;
			while (*p != '\0' && *p != ',')
				p++;
			end = p;
			while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
				end--;
			if (end > start && (size_t)(end - start) == tlen &&
			    strncasecmp(start, token, tlen) == 0)
				return 1;
		}
	}
	return 0;
}

/* ==== Writers ==== */

/* An empty data writes nothing: a zero-size chunk would end the body. */
void
sy_http1_write_chunk(struct evbuffer *out, struct evbuffer *data)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = evbuffer_get_length(data);
	char size[2 * sizeof n + 2], *p = size + sizeof size;

	if (n == 0)
		return;
	/* The size in hex, then CRLF, written backwards. */
	*--p = '\n';
	*--p = '\r';
	do
		*--p = hex[n & 0xf];
	while ((n >>= 4) != 0);
	evbuffer_add(out, p, (size_t)(size + sizeof size - p));
	evbuffer_add_buffer(out, data);
	evbuffer_add(out, "\r\n", 2);
}

void
sy_http1_write_last_chunk(struct evbuffer *out)
{
	evbuffer_add(out, "0\r\n\r\n", 5);
}

/* Unknown codes get "Unknown". */
const char *
sy_http1_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 101: return "Switching Protocols";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 203: return "Non-Authoritative Information";
	case 204: return "No Content";
	case 205: return "Reset Content";
	case 206: return "Partial Content";
	case 300: return "Multiple Choices";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 303: return "See Other";
	case 304: return "Not Modified";
	case 307: return "Temporary Redirect";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 402: return "Payment Required";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 406: return "Not Acceptable";
	case 407: return "Proxy Authentication Required";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 411: return "Length Required";
	case 412: return "Precondition Failed";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 416: return "Range Not Satisfiable";
	case 417: return "Expectation Failed";
	case 421: return "Misdirected Request";
	case 422: return "Unprocessable Content";
	case 425: return "Too Early";
	case 426: return "Upgrade Required";
	case 428: return "Precondition Required";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 451: return "Unavailable For Legal Reasons";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: return "Unknown";
	}
}
