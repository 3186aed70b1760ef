/* Unit tests of the incremental HTTP/1.x parser and the chunk writers. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "http1.h"
#include "sy_test.h"
#include "util.h"

/* How a connection runs the parser over its input. */
struct run {
	enum sy_http1_kind kind;
	size_t max_head;
	size_t max_headers;
	int no_body;		/* every message answers a HEAD */
	int eof;		/* the peer closes after the last byte */
};

static const struct run request = { SY_HTTP1_REQUEST, 0, 0, 0, 0 };
static const struct run response = { SY_HTTP1_RESPONSE, 0, 0, 0, 0 };
static const struct run response_then_eof = { SY_HTTP1_RESPONSE, 0, 0, 0, 1 };
static const struct run response_to_head = { SY_HTTP1_RESPONSE, 0, 0, 1, 0 };

/* Appends to out what a complete message m and its body look like. */
static void
describe(struct evbuffer *out, const struct sy_http1_msg *m,
    struct evbuffer *body)
{
	size_t i, n = evbuffer_get_length(body);

	if (m->kind == SY_HTTP1_REQUEST)
		evbuffer_add_printf(out, "%s %s 1.%d", m->method, m->target,
		    m->version_minor);
	else
		evbuffer_add_printf(out, "%d [%s] 1.%d", m->status, m->reason,
		    m->version_minor);
	evbuffer_add_printf(out,
	    " ka=%d chunked=%d len=%lld close=%d expect=%d\n", m->keep_alive,
	    m->chunked, (long long)m->content_length, m->until_close,
	    m->expect_continue);
	for (i = 0; i < m->nheaders; i++)
		evbuffer_add_printf(out, "  %s: [%s]\n", m->headers[i].name,
		    m->headers[i].value);
	SY_CHECK_INT(m->body_bytes, n);
	evbuffer_add_printf(out, "  body %zu [", n);
	evbuffer_add_buffer(out, body);
	evbuffer_add(out, "]\n", 2);
}

/*
 * Runs m over what buf holds.  Returns 1 when a message is complete, 0 when
 * more bytes are needed, -1 on error.
 */
static int
step(struct sy_http1_msg *m, struct evbuffer *buf, struct evbuffer *body)
{
	int rc;

	if (m->state == SY_HTTP1_HEAD &&
	    (rc = sy_http1_parse_head(m, buf)) != 1)
		return rc;
	if (m->state == SY_HTTP1_BODY &&
	    (rc = sy_http1_read_body(m, buf, body)) != 1)
		return rc;
	return 1;
}

/*
 * Feeds in (len bytes) to a parser cut at the offset cut (0: whole), or one
 * byte per evbuffer chain when bytewise.  Returns, newly allocated, the
 * description of every message seen and of how the input ended.
 */
static char *
transcript(const struct run *r, const char *in, size_t len, size_t cut,
    int bytewise)
{
	struct evbuffer *buf = evbuffer_new(), *body = evbuffer_new();
	struct evbuffer *out = evbuffer_new();
	struct sy_http1_msg m;
	size_t from = 0, to, n;
	int rc = 0, done;
	char *s;

	sy_http1_init(&m, r->kind, r->max_head, r->max_headers);
	m.no_body = r->no_body;
	while (rc != -1 && from < len) {
		if (bytewise) {
			to = from + 1;
			evbuffer_add_reference(buf, in + from, 1, NULL, NULL);
		} else {
			to = from < cut ? cut : len;
			evbuffer_add(buf, in + from, to - from);
		}
		from = to;
		while ((rc = step(&m, buf, body)) == 1) {
			describe(out, &m, body);
			sy_http1_reset(&m);
			m.no_body = r->no_body;
		}
	}
	if (rc == -1)
		evbuffer_add_printf(out, "error %d\n", m.error_status);
	else if (r->eof) {
		done = sy_http1_eof(&m);
		evbuffer_add_printf(out, "eof %d\n", done);
		if (done)
			describe(out, &m, body);
	} else
		evbuffer_add_printf(out, "left %zu\n", evbuffer_get_length(buf));
	sy_http1_free(&m);

	n = evbuffer_get_length(out);
	s = malloc(n + 1);
	evbuffer_remove(out, s, n);
	s[n] = '\0';
	evbuffer_free(buf);
	evbuffer_free(body);
	evbuffer_free(out);
	return s;
}

/*
 * Checks that in (len bytes) gives the transcript want fed whole, cut in two
 * at every offset, and one byte at a time.
 */
static void
check_bytes(const struct run *r, const char *in, size_t len, const char *want)
{
	size_t cut;
	char *got;

	got = transcript(r, in, len, 0, 0);
	SY_CHECK_STR(got, want);
	free(got);
	for (cut = 1; cut < len; cut++) {
		got = transcript(r, in, len, cut, 0);
		if (strcmp(got, want) != 0) {
			printf("# cut at byte %zu:\n", cut);
			SY_CHECK_STR(got, want);
			free(got);
			break;
		}
		free(got);
	}
	got = transcript(r, in, len, 0, 1);
	if (strcmp(got, want) != 0) {
		printf("# one byte at a time:\n");
		SY_CHECK_STR(got, want);
	}
	free(got);
}

/* check_bytes for a NUL-terminated input. */
static void
check_splits(const struct run *r, const char *in, const char *want)
{
	check_bytes(r, in, strlen(in), want);
}

/* Checks that in fails with the given error status, however it is split. */
static void
check_error(const struct run *r, const char *in, int status)
{
	char want[32];

	snprintf(want, sizeof want, "error %d\n", status);
	check_splits(r, in, want);
}

/* Parses the head in text with m (initialised); returns the parser's result. */
static int
parse_text(struct sy_http1_msg *m, const char *text)
{
	struct evbuffer *buf = evbuffer_new();
	int rc;

	evbuffer_add(buf, text, strlen(text));
	rc = sy_http1_parse_head(m, buf);
	evbuffer_free(buf);
	return rc;
}

/* Copies what buf holds into a NUL-terminated string, leaving buf as is. */
static char *
contents(struct evbuffer *buf)
{
	size_t n = evbuffer_get_length(buf);
	char *s = malloc(n + 1);

	evbuffer_copyout(buf, s, n);
	s[n] = '\0';
	return s;
}

/* ==== Requests ==== */

SY_TEST(request_head_is_parsed_with_trimmed_values)
{
	check_splits(&request,
	    "GET /v1/models?x=1 HTTP/1.1\r\n"
	    "Host: gw.example\r\n"
	    "User-Agent:   curl/8.5 \t\r\n"
	    "X-Empty:\r\n"
	    "\r\n",
	    "GET /v1/models?x=1 1.1 ka=1 chunked=0 len=-1 close=0 expect=0\n"
	    "  Host: [gw.example]\n"
	    "  User-Agent: [curl/8.5]\n"
	    "  X-Empty: []\n"
	    "  body 0 []\n"
	    "left 0\n");
}

SY_TEST(content_length_body_then_pipelined_request)
{
	check_splits(&request,
	    "POST /v1/chat/completions HTTP/1.1\r\n"
	    "Content-Length: 11\r\n"
	    "\r\n"
	    "{\"a\":\"b c\"}"
	    "GET /health HTTP/1.1\r\n\r\n"
	    "GET /partial HT",
	    "POST /v1/chat/completions 1.1 ka=1 chunked=0 len=11 close=0 expect=0\n"
	    "  Content-Length: [11]\n"
	    "  body 11 [{\"a\":\"b c\"}]\n"
	    "GET /health 1.1 ka=1 chunked=0 len=-1 close=0 expect=0\n"
	    "  body 0 []\n"
	    "left 15\n");
}

SY_TEST(chunked_body_drops_extensions_and_trailers)
{
	check_splits(&request,
	    "POST /up HTTP/1.1\r\n"
	    "Transfer-Encoding: Chunked\r\n"
	    "\r\n"
	    "5;name=value\r\nhello\r\n"
	    "1A ; a=\"q\"\r\nabcdefghijklmnopqrstuvwxyz\r\n"
	    "0;last\r\n"
	    "X-Trailer: 1\r\n"
	    "X-Other: 2\r\n"
	    "\r\n"
	    "GET /next HTTP/1.1\r\n\r\n",
	    "POST /up 1.1 ka=1 chunked=1 len=-1 close=0 expect=0\n"
	    "  Transfer-Encoding: [Chunked]\n"
	    "  body 31 [helloabcdefghijklmnopqrstuvwxyz]\n"
	    "GET /next 1.1 ka=1 chunked=0 len=-1 close=0 expect=0\n"
	    "  body 0 []\n"
	    "left 0\n");
}

SY_TEST(bare_lf_line_ends_are_accepted)
{
	check_splits(&request,
	    "POST /a HTTP/1.1\n"
	    "Transfer-Encoding: chunked\n"
	    "\n"
	    "3\nabc\n"
	    "0\n"
	    "\n"
	    "GET /b HTTP/1.0\nHost: x\n\n",
	    "POST /a 1.1 ka=1 chunked=1 len=-1 close=0 expect=0\n"
	    "  Transfer-Encoding: [chunked]\n"
	    "  body 3 [abc]\n"
	    "GET /b 1.0 ka=0 chunked=0 len=-1 close=0 expect=0\n"
	    "  Host: [x]\n"
	    "  body 0 []\n"
	    "left 0\n");
}

SY_TEST(blank_lines_before_a_request_are_skipped)
{
	check_splits(&request,
	    "\r\n\nPOST /a HTTP/1.1\r\nContent-Length: 2\r\n\r\nok"
	    "\r\nGET /b HTTP/1.1\r\n\r\n",
	    "POST /a 1.1 ka=1 chunked=0 len=2 close=0 expect=0\n"
	    "  Content-Length: [2]\n"
	    "  body 2 [ok]\n"
	    "GET /b 1.1 ka=1 chunked=0 len=-1 close=0 expect=0\n"
	    "  body 0 []\n"
	    "left 0\n");
}

SY_TEST(request_without_length_has_no_body)
{
	check_splits(&request,
	    "DELETE /x HTTP/1.1\r\n\r\nbytes",
	    "DELETE /x 1.1 ka=1 chunked=0 len=-1 close=0 expect=0\n"
	    "  body 0 []\n"
	    "left 5\n");
}

SY_TEST(equal_content_lengths_are_one_length)
{
	check_splits(&request,
	    "PUT /a HTTP/1.1\r\nContent-Length: 3, 3\r\n"
	    "content-length: 3\r\n\r\nabc",
	    "PUT /a 1.1 ka=1 chunked=0 len=3 close=0 expect=0\n"
	    "  Content-Length: [3, 3]\n"
	    "  content-length: [3]\n"
	    "  body 3 [abc]\n"
	    "left 0\n");
}

SY_TEST(method_of_fifteen_characters_is_accepted)
{
	struct sy_http1_msg m;

	sy_http1_init(&m, SY_HTTP1_REQUEST, 0, 0);
	SY_CHECK_INT(parse_text(&m, "ABCDEFGHIJKLMNO * HTTP/1.1\r\n\r\n"), 1);
	SY_CHECK_STR(m.method, "ABCDEFGHIJKLMNO");
	SY_CHECK_STR(m.target, "*");
	SY_CHECK_INT(m.state, SY_HTTP1_DONE);
	sy_http1_free(&m);
}

SY_TEST(content_length_up_to_two_to_the_62_is_accepted)
{
	check_splits(&request,
	    "POST /a HTTP/1.1\r\nContent-Length: 4611686018427387904\r\n\r\n",
	    "left 0\n");
	check_splits(&request,
	    "POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "4000000000000000\r\n",
	    "left 0\n");
}

SY_TEST(head_of_exactly_max_head_bytes_is_accepted)
{
	static const struct run small = { SY_HTTP1_REQUEST, 32, 0, 0, 0 };

	/* 32 bytes with the blank line. */
	check_splits(&small, "GET / HTTP/1.1\r\nX-Pad: 12345\r\n\r\n",
	    "GET / 1.1 ka=1 chunked=0 len=-1 close=0 expect=0\n"
	    "  X-Pad: [12345]\n"
	    "  body 0 []\n"
	    "left 0\n");
	check_error(&small, "GET / HTTP/1.1\r\nX-Pad: 123456\r\n\r\n", 431);
}

SY_TEST(limits_survive_reset_between_pipelined_requests)
{
	static const struct run small = { SY_HTTP1_REQUEST, 32, 1, 0, 0 };

	check_splits(&small,
	    "GET /a HTTP/1.1\r\nA: 1\r\n\r\n"
	    "GET /b HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n",
	    "GET /a 1.1 ka=1 chunked=0 len=-1 close=0 expect=0\n"
	    "  A: [1]\n"
	    "  body 0 []\n"
	    "error 431\n");
}

/* ==== Keep-alive and Expect ==== */

SY_TEST(keep_alive_follows_version_and_connection)
{
	static const struct {
		const char *head;
		int keep_alive;
	} cases[] = {
		{ "GET / HTTP/1.1\r\n\r\n", 1 },
		{ "GET / HTTP/1.1\r\nConnection: close\r\n\r\n", 0 },
		{ "GET / HTTP/1.1\r\nConnection: Upgrade , CLOSE\r\n\r\n", 0 },
		{ "GET / HTTP/1.1\r\nConnection: te\r\nConnection: close\r\n\r\n", 0 },
		{ "GET / HTTP/1.1\r\nConnection: closed\r\n\r\n", 1 },
		{ "GET / HTTP/1.0\r\n\r\n", 0 },
		{ "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", 1 },
		{ "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", 0 },
		{ "GET / HTTP/1.0\r\nKeep-Alive: timeout=5\r\n\r\n", 0 },
	};
	struct sy_http1_msg m;
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		sy_http1_init(&m, SY_HTTP1_REQUEST, 0, 0);
		SY_CHECK_INT(parse_text(&m, cases[i].head), 1);
		if (m.keep_alive != cases[i].keep_alive)
			printf("# case %zu\n", i);
		SY_CHECK_INT(m.keep_alive, cases[i].keep_alive);
		sy_http1_free(&m);
	}
}

SY_TEST(response_keep_alive_follows_version_and_connection)
{
	check_splits(&response,
	    "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n"
	    "Content-Length: 1\r\n\r\nx"
	    "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
	    "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
	    "200 [OK] 1.0 ka=1 chunked=0 len=1 close=0 expect=0\n"
	    "  Connection: [keep-alive]\n"
	    "  Content-Length: [1]\n"
	    "  body 1 [x]\n"
	    "200 [OK] 1.1 ka=0 chunked=0 len=0 close=0 expect=0\n"
	    "  Connection: [close]\n"
	    "  Content-Length: [0]\n"
	    "  body 0 []\n"
	    "200 [OK] 1.0 ka=0 chunked=0 len=0 close=0 expect=0\n"
	    "  Content-Length: [0]\n"
	    "  body 0 []\n"
	    "left 0\n");
}

SY_TEST(expect_100_continue_is_flagged_for_http_1_1_only)
{
	static const struct {
		const char *head;
		int expect;
	} cases[] = {
		{ "POST / HTTP/1.1\r\nExpect: 100-continue\r\n"
		  "Content-Length: 1\r\n\r\n", 1 },
		{ "POST / HTTP/1.1\r\nexpect: 100-Continue\r\n"
		  "Content-Length: 1\r\n\r\n", 1 },
		{ "POST / HTTP/1.0\r\nExpect: 100-continue\r\n"
		  "Content-Length: 1\r\n\r\n", 0 },
		{ "POST / HTTP/1.1\r\nContent-Length: 1\r\n\r\n", 0 },
	};
	struct sy_http1_msg m;
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		sy_http1_init(&m, SY_HTTP1_REQUEST, 0, 0);
		SY_CHECK_INT(parse_text(&m, cases[i].head), 1);
		SY_CHECK_INT(m.state, SY_HTTP1_BODY);
		SY_CHECK_INT(m.expect_continue, cases[i].expect);
		sy_http1_free(&m);
	}
}

/* ==== Responses ==== */

SY_TEST(response_with_content_length)
{
	check_splits(&response,
	    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
	    "Content-Length: 2\r\n\r\n{}",
	    "200 [OK] 1.1 ka=1 chunked=0 len=2 close=0 expect=0\n"
	    "  Content-Type: [application/json]\n"
	    "  Content-Length: [2]\n"
	    "  body 2 [{}]\n"
	    "left 0\n");
}

SY_TEST(a_status_outside_100_to_599_is_a_malformed_response)
{
	check_splits(&response, "HTTP/1.1 999 Unknown\r\nContent-Length: 0\r\n\r\n",
	    "error 502\n");
	check_splits(&response, "HTTP/1.1 600 X\r\nContent-Length: 0\r\n\r\n",
	    "error 502\n");
	check_splits(&response, "HTTP/1.1 099 X\r\nContent-Length: 0\r\n\r\n",
	    "error 502\n");
	check_splits(&response, "HTTP/1.1 599 X\r\nContent-Length: 0\r\n\r\n",
	    "599 [X] 1.1 ka=1 chunked=0 len=0 close=0 expect=0\n"
	    "  Content-Length: [0]\n"
	    "  body 0 []\n"
	    "left 0\n");
}

SY_TEST(chunked_response_after_100_continue)
{
	check_splits(&response,
	    "HTTP/1.1 100 Continue\r\n\r\n"
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "6\r\ndata: \r\n3\r\nabc\r\n0\r\n\r\n",
	    "100 [Continue] 1.1 ka=1 chunked=0 len=-1 close=0 expect=0\n"
	    "  body 0 []\n"
	    "200 [OK] 1.1 ka=1 chunked=1 len=-1 close=0 expect=0\n"
	    "  Transfer-Encoding: [chunked]\n"
	    "  body 9 [data: abc]\n"
	    "left 0\n");
}

SY_TEST(response_without_length_runs_until_close)
{
	check_splits(&response_then_eof,
	    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n"
	    "data: a\n\ndata: b\n\n",
	    "eof 1\n"
	    "200 [OK] 1.1 ka=0 chunked=0 len=-1 close=1 expect=0\n"
	    "  Content-Type: [text/event-stream]\n"
	    "  body 18 [data: a\n\ndata: b\n\n]\n");
}

SY_TEST(eof_inside_a_framed_body_is_truncation)
{
	check_splits(&response_then_eof,
	    "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
	    "eof 0\n");
	check_splits(&response_then_eof,
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
	    "eof 0\n");
	check_splits(&response_then_eof, "HTTP/1.1 200 OK\r\n", "eof 0\n");
}

SY_TEST(response_to_head_has_no_body)
{
	check_splits(&response_to_head,
	    "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "HTTP/1.1 200 OK\r\n\r\n",
	    "200 [OK] 1.1 ka=1 chunked=0 len=1234 close=0 expect=0\n"
	    "  Content-Length: [1234]\n"
	    "  body 0 []\n"
	    "200 [OK] 1.1 ka=1 chunked=1 len=-1 close=0 expect=0\n"
	    "  Transfer-Encoding: [chunked]\n"
	    "  body 0 []\n"
	    "200 [OK] 1.1 ka=1 chunked=0 len=-1 close=0 expect=0\n"
	    "  body 0 []\n"
	    "left 0\n");
}

SY_TEST(no_body_set_after_the_head_ends_the_message)
{
	struct evbuffer *in = evbuffer_new(), *body = evbuffer_new();
	struct sy_http1_msg m;
	char *s;

	sy_http1_init(&m, SY_HTTP1_RESPONSE, 0, 0);
	evbuffer_add_printf(in, "HTTP/1.1 200 OK\r\n\r\nHTTP/1.1 204 x\r\n\r\n");
	SY_CHECK_INT(sy_http1_parse_head(&m, in), 1);
	SY_CHECK_INT(m.state, SY_HTTP1_BODY);
	SY_CHECK_INT(m.until_close, 1);
	m.no_body = 1;
	SY_CHECK_INT(sy_http1_read_body(&m, in, body), 1);
	SY_CHECK_INT(m.state, SY_HTTP1_DONE);
	SY_CHECK_INT(m.until_close, 0);
	SY_CHECK_INT(m.keep_alive, 1);
	SY_CHECK_INT(evbuffer_get_length(body), 0);
	SY_CHECK_STR(s = contents(in), "HTTP/1.1 204 x\r\n\r\n");
	free(s);
	sy_http1_free(&m);
	evbuffer_free(in);
	evbuffer_free(body);
}

SY_TEST(status_204_304_and_1xx_have_no_body)
{
	check_splits(&response,
	    "HTTP/1.1 204 No Content\r\n\r\n"
	    "HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n"
	    "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
	    "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
	    "204 [No Content] 1.1 ka=1 chunked=0 len=-1 close=0 expect=0\n"
	    "  body 0 []\n"
	    "304 [Not Modified] 1.1 ka=1 chunked=0 len=50 close=0 expect=0\n"
	    "  Content-Length: [50]\n"
	    "  body 0 []\n"
	    "103 [Early Hints] 1.1 ka=1 chunked=0 len=-1 close=0 expect=0\n"
	    "  Link: [</a>]\n"
	    "  body 0 []\n"
	    "200 [] 1.1 ka=1 chunked=0 len=0 close=0 expect=0\n"
	    "  Content-Length: [0]\n"
	    "  body 0 []\n"
	    "left 0\n");
}

SY_TEST(response_with_length_and_chunked_uses_chunked_and_closes)
{
	check_splits(&response,
	    "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
	    "200 [OK] 1.1 ka=0 chunked=1 len=-1 close=0 expect=0\n"
	    "  Content-Length: [100]\n"
	    "  Transfer-Encoding: [chunked]\n"
	    "  body 2 [ok]\n"
	    "left 0\n");
}

/* ==== Errors ==== */

SY_TEST(unsupported_versions_are_505)
{
	check_error(&request, "GET / HTTP/2.0\r\n\r\n", 505);
	check_error(&request, "GET / HTTP/1.2\r\n\r\n", 505);
	check_error(&request, "GET / HTTP/0.9\r\n\r\n", 505);
	check_error(&request, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505);
}

SY_TEST(malformed_request_lines_are_400)
{
	check_error(&request, "GET / HTTP/1.1x\r\n\r\n", 400);
	check_error(&request, "GET / http/1.1\r\n\r\n", 400);
	check_error(&request, "GET / HTTP/11\r\n\r\n", 400);
	check_error(&request, "GET /\r\n\r\n", 400);
	check_error(&request, "GET  / HTTP/1.1\r\n\r\n", 400);
	check_error(&request, "GET / HTTP/1.1 \r\n\r\n", 400);
	check_error(&request, " GET / HTTP/1.1\r\n\r\n", 400);
	check_error(&request, "G(T / HTTP/1.1\r\n\r\n", 400);
	check_error(&request, "GET /a\x01" "b HTTP/1.1\r\n\r\n", 400);
	check_error(&request, "GET / HTTP/1.1\r\r\n\r\n", 400);
}

SY_TEST(method_longer_than_15_is_501)
{
	check_error(&request, "ABCDEFGHIJKLMNOP / HTTP/1.1\r\n\r\n", 501);
}

SY_TEST(oversized_head_is_431)
{
	static const struct run small = { SY_HTTP1_REQUEST, 64, 0, 0, 0 };
	char head[256];

	snprintf(head, sizeof head, "GET / HTTP/1.1\r\nX-Long: %0100d\r\n\r\n",
	    0);
	check_error(&small, head, 431);
	/* Found before the head ends. */
	snprintf(head, sizeof head, "GET / HTTP/1.1\r\nX-Long: %0100d", 0);
	check_error(&small, head, 431);
}

SY_TEST(too_many_headers_is_431)
{
	static const struct run two = { SY_HTTP1_REQUEST, 0, 2, 0, 0 };

	check_error(&two, "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", 431);
	check_splits(&two, "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n",
	    "GET / 1.1 ka=1 chunked=0 len=-1 close=0 expect=0\n"
	    "  A: [1]\n"
	    "  B: [2]\n"
	    "  body 0 []\n"
	    "left 0\n");
}

SY_TEST(invalid_or_conflicting_content_length_is_400)
{
	static const char *values[] = {
		"abc", "-1", "+1", "1 2", "", "1,", "0x10", "1, 2", "3,,3",
	};
	char head[128];
	size_t i;

	for (i = 0; i < sizeof values / sizeof values[0]; i++) {
		snprintf(head, sizeof head,
		    "POST / HTTP/1.1\r\nContent-Length: %s\r\n\r\n", values[i]);
		check_error(&request, head, 400);
	}
	check_error(&request, "POST / HTTP/1.1\r\nContent-Length: 3\r\n"
	    "Content-Length: 4\r\n\r\n", 400);
}

SY_TEST(content_length_above_two_to_the_62_is_413)
{
	check_error(&request, "POST / HTTP/1.1\r\n"
	    "Content-Length: 4611686018427387905\r\n\r\n", 413);
	check_error(&request, "POST / HTTP/1.1\r\n"
	    "Content-Length: 99999999999999999999999999\r\n\r\n", 413);
}

SY_TEST(transfer_codings_other_than_chunked_are_501)
{
	check_error(&request, "POST / HTTP/1.1\r\n"
	    "Transfer-Encoding: gzip\r\n\r\n", 501);
	check_error(&request, "POST / HTTP/1.1\r\n"
	    "Transfer-Encoding: gzip, chunked\r\n\r\n", 501);
	check_error(&request, "POST / HTTP/1.1\r\n"
	    "Transfer-Encoding: chunked;x=1\r\n\r\n", 501);
}

SY_TEST(malformed_transfer_encoding_is_400)
{
	check_error(&request, "POST / HTTP/1.1\r\n"
	    "Transfer-Encoding: chunked, chunked\r\n\r\n", 400);
	check_error(&request, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n", 400);
	check_error(&request, "POST / HTTP/1.1\r\n"
	    "Transfer-Encoding: \r\n\r\n", 400);
	check_error(&request, "POST / HTTP/1.0\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n", 400);
}

SY_TEST(request_with_length_and_transfer_encoding_is_400)
{
	check_error(&request, "POST / HTTP/1.1\r\nContent-Length: 5\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400);
	check_error(&request, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
	    "Content-Length: 0\r\n\r\n", 400);
}

SY_TEST(obs_fold_is_400)
{
	check_error(&request, "GET / HTTP/1.1\r\nX-A: 1\r\n  more\r\n\r\n", 400);
	check_error(&request, "GET / HTTP/1.1\r\nX-A: 1\r\n\tmore\r\n\r\n", 400);
	check_error(&request, "GET / HTTP/1.1\r\n folded: 1\r\n\r\n", 400);
}

SY_TEST(bad_header_names_and_values_are_400)
{
	static const char nul[] = "GET / HTTP/1.1\r\nX\0A: 1\r\n\r\n";
	static const char nul_value[] = "GET / HTTP/1.1\r\nXA: 1\0\r\n\r\n";

	check_bytes(&request, nul, sizeof nul - 1, "error 400\n");
	check_bytes(&request, nul_value, sizeof nul_value - 1, "error 400\n");
	check_error(&request, "GET / HTTP/1.1\r\nX\x01" "A: 1\r\n\r\n", 400);
	check_error(&request, "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400);
	check_error(&request, "GET / HTTP/1.1\r\n: a\r\n\r\n", 400);
	check_error(&request, "GET / HTTP/1.1\r\nHost a\r\n\r\n", 400);
	check_error(&request, "GET / HTTP/1.1\r\nX(y): a\r\n\r\n", 400);
	check_error(&request, "GET / HTTP/1.1\r\nX-A: a\x01" "b\r\n\r\n", 400);
	check_error(&request, "GET / HTTP/1.1\r\nX-A: a\rb\r\n\r\n", 400);
	check_error(&request, "GET / HTTP/1.1\r\nX-A: a\x7f\r\n\r\n", 400);
}

SY_TEST(malformed_chunks_are_400)
{
	static const char *bodies[] = {
		"zz\r\n",
		"\r\n",
		"5 x\r\nhello\r\n",
		"-5\r\nhello\r\n",
		"5\r\nhelloX",
		"5\r\nhello\r0\r\n\r\n",
		"5;a\x01\r\nhello\r\n",
		"5\r\r\nhello\r\n",
	};
	char req[128];
	size_t i;

	for (i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
		snprintf(req, sizeof req, "POST / HTTP/1.1\r\n"
		    "Transfer-Encoding: chunked\r\n\r\n%s", bodies[i]);
		check_error(&request, req, 400);
	}
}

SY_TEST(chunk_size_above_two_to_the_62_is_413)
{
	check_error(&request, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
	    "\r\n4000000000000001\r\n", 413);
	check_error(&request, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
	    "\r\nffffffffffffffffffffffff\r\n", 413);
}

SY_TEST(malformed_responses_are_502)
{
	static const struct run small = { SY_HTTP1_RESPONSE, 32, 0, 0, 0 };

	check_error(&response, "HTTP/1.1 2000 OK\r\n\r\n", 502);
	check_error(&response, "HTTP/1.1 20 OK\r\n\r\n", 502);
	check_error(&response, "HTTP/1.1 099 Low\r\n\r\n", 502);
	check_error(&response, "HTTP/2 200 OK\r\n\r\n", 502);
	check_error(&response, "HTTP/2.0 200 OK\r\n\r\n", 502);
	check_error(&response, "HTTP/1.1\r\n\r\n", 502);
	check_error(&response, "HTTP/1.1 200 OK\r\n"
	    "Transfer-Encoding: gzip\r\n\r\n", 502);
	check_error(&response, "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
	    502);
	check_error(&response, "HTTP/1.1 200 OK\r\n"
	    "Transfer-Encoding: chunked\r\n\r\nq\r\n", 502);
	check_error(&small, "HTTP/1.1 200 OK\r\nServer: a-long-name\r\n\r\n",
	    502);
}

SY_TEST(a_response_that_is_not_http_fails_at_its_first_bytes)
{
	struct sy_http1_msg m;

	/* A banner without its line end yet: the first bytes tell. */
	sy_http1_init(&m, SY_HTTP1_RESPONSE, 0, 0);
	SY_CHECK_INT(parse_text(&m, "SSH-2.0-Open"), -1);
	SY_CHECK_INT(m.error_status, 502);
	sy_http1_free(&m);
	sy_http1_init(&m, SY_HTTP1_RESPONSE, 0, 0);
	SY_CHECK_INT(parse_text(&m, "\r\nX"), -1);
	sy_http1_free(&m);
	/* A beginning of "HTTP/" waits for more. */
	sy_http1_init(&m, SY_HTTP1_RESPONSE, 0, 0);
	SY_CHECK_INT(parse_text(&m, "HTT"), 0);
	sy_http1_free(&m);
	check_error(&response, "220 smtp.example.com ESMTP\r\n", 502);
}

SY_TEST(a_bad_status_line_fails_before_the_rest_of_the_head)
{
	struct sy_http1_msg m;

	sy_http1_init(&m, SY_HTTP1_RESPONSE, 0, 0);
	SY_CHECK_INT(parse_text(&m, "HTTP/1.1 700 Odd\r\nServer: x"), -1);
	SY_CHECK_INT(m.error_status, 502);
	sy_http1_free(&m);
	sy_http1_init(&m, SY_HTTP1_RESPONSE, 0, 0);
	SY_CHECK_INT(parse_text(&m, "HTTP/1.1 200 OK\r\nServer: x"), 0);
	sy_http1_free(&m);
	check_error(&response, "HTTP/1.1 20x OK\r\nServer: x\r\n", 502);
}

SY_TEST(a_chunk_counts_as_declared_before_it_arrives)
{
	struct sy_http1_msg m;
	struct evbuffer *in = evbuffer_new(), *out = evbuffer_new();

	sy_http1_init(&m, SY_HTTP1_REQUEST, 0, 0);
	SY_ADD_LIT(in, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "3\r\nabc\r\n10");
	SY_CHECK_INT(sy_http1_parse_head(&m, in), 1);
	SY_CHECK_INT(sy_http1_read_body(&m, in, out), 0);
	SY_CHECK_INT((int)sy_http1_body_declared(&m), 3);	/* a partial size line */
	SY_ADD_LIT(in, "0\r\nx");
	SY_CHECK_INT(sy_http1_read_body(&m, in, out), 0);
	SY_CHECK_INT((int)sy_http1_body_declared(&m), 3 + 0x100);
	sy_http1_free(&m);
	evbuffer_free(in);
	evbuffer_free(out);
}

SY_TEST(an_absolute_form_target_is_read_as_its_path)
{
	static const struct { const char *line, *target; } cases[] = {
		{ "POST http://gw:8080/v1/chat/completions?a=1 HTTP/1.1",
		  "/v1/chat/completions?a=1" },
		{ "GET HTTPS://gw/healthz HTTP/1.1", "/healthz" },
		{ "GET http://gw HTTP/1.1", "/" },
		{ "GET http://gw?x=1 HTTP/1.1", "/?x=1" },
		{ "GET /plain HTTP/1.1", "/plain" }
	};
	struct sy_http1_msg m;
	struct evbuffer *in = evbuffer_new();
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		sy_http1_init(&m, SY_HTTP1_REQUEST, 0, 0);
		evbuffer_add_printf(in, "%s\r\nHost: gw\r\n\r\n", cases[i].line);
		SY_CHECK_INT(sy_http1_parse_head(&m, in), 1);
		SY_CHECK_STR(m.target, cases[i].target);
		sy_http1_free(&m);
	}
	sy_http1_init(&m, SY_HTTP1_REQUEST, 0, 0);
	SY_ADD_LIT(in, "GET http:///x HTTP/1.1\r\n\r\n");
	SY_CHECK_INT(sy_http1_parse_head(&m, in), -1);
	SY_CHECK_INT(m.error_status, 400);
	sy_http1_free(&m);
	evbuffer_free(in);
}

SY_TEST(errors_carry_a_message)
{
	struct sy_http1_msg m;

	sy_http1_init(&m, SY_HTTP1_REQUEST, 0, 0);
	SY_CHECK_INT(parse_text(&m, "GET / HTTP/1.1\r\nA: 1\r\n b\r\n\r\n"), -1);
	SY_CHECK_INT(m.state, SY_HTTP1_ERROR);
	SY_CHECK_INT(m.error_status, 400);
	SY_CHECK_STR(m.error, "obsolete line folding");
	SY_CHECK_INT(parse_text(&m, "GET / HTTP/1.1\r\n\r\n"), -1);
	sy_http1_free(&m);
}

/* ==== Body reading ==== */

SY_TEST(read_body_leaves_the_next_message_in_place)
{
	struct evbuffer *in = evbuffer_new(), *body = evbuffer_new();
	struct sy_http1_msg m;
	char *s;

	sy_http1_init(&m, SY_HTTP1_REQUEST, 0, 0);
	evbuffer_add_printf(in, "POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\n"
	    "abcGET /b HTTP/1.1\r\n\r\n");
	SY_CHECK_INT(sy_http1_parse_head(&m, in), 1);
	SY_CHECK_INT(sy_http1_read_body(&m, in, body), 1);
	SY_CHECK_STR(s = contents(body), "abc");
	free(s);
	SY_CHECK_STR(s = contents(in), "GET /b HTTP/1.1\r\n\r\n");
	free(s);
	SY_CHECK_INT(sy_http1_read_body(&m, in, body), 1);
	SY_CHECK_INT(evbuffer_get_length(in), 19);

	sy_http1_reset(&m);
	evbuffer_drain(in, evbuffer_get_length(in));
	evbuffer_drain(body, evbuffer_get_length(body));
	evbuffer_add_printf(in, "POST /a HTTP/1.1\r\nTransfer-Encoding: chunked"
	    "\r\n\r\n3\r\nabc\r\n0\r\nT: 1\r\n\r\n0\r\n\r\n");
	SY_CHECK_INT(sy_http1_parse_head(&m, in), 1);
	SY_CHECK_INT(sy_http1_read_body(&m, in, body), 1);
	SY_CHECK_STR(s = contents(body), "abc");
	free(s);
	SY_CHECK_STR(s = contents(in), "0\r\n\r\n");
	free(s);
	sy_http1_free(&m);
	evbuffer_free(in);
	evbuffer_free(body);
}

SY_TEST(read_body_waits_on_a_partial_chunk_size)
{
	struct evbuffer *in = evbuffer_new(), *body = evbuffer_new();
	struct sy_http1_msg m;
	char *s;

	sy_http1_init(&m, SY_HTTP1_RESPONSE, 0, 0);
	evbuffer_add_printf(in, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked"
	    "\r\n\r\n5;x=1\r\nhello\r\n1");
	SY_CHECK_INT(sy_http1_parse_head(&m, in), 1);
	SY_CHECK_INT(sy_http1_read_body(&m, in, body), 0);
	SY_CHECK_STR(s = contents(body), "hello");
	free(s);
	/* "1" then "0": one chunk of 0x10 bytes, not one of 1. */
	evbuffer_add_printf(in, "0\r\n0123456789abcdef\r\n0\r\n\r\n");
	SY_CHECK_INT(sy_http1_read_body(&m, in, body), 1);
	SY_CHECK_STR(s = contents(body), "hello0123456789abcdef");
	free(s);
	SY_CHECK_INT(evbuffer_get_length(in), 0);
	SY_CHECK_INT(m.body_bytes, 21);
	sy_http1_free(&m);
	evbuffer_free(in);
	evbuffer_free(body);
}

SY_TEST(eof_reports_only_until_close_and_complete_messages)
{
	struct evbuffer *in = evbuffer_new(), *body = evbuffer_new();
	struct sy_http1_msg m;

	sy_http1_init(&m, SY_HTTP1_RESPONSE, 0, 0);
	SY_CHECK_INT(sy_http1_eof(&m), 0);
	evbuffer_add_printf(in, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
	SY_CHECK_INT(sy_http1_parse_head(&m, in), 1);
	SY_CHECK_INT(sy_http1_eof(&m), 0);
	SY_CHECK_INT(sy_http1_read_body(&m, in, body), 1);
	SY_CHECK_INT(sy_http1_eof(&m), 1);
	sy_http1_free(&m);
	evbuffer_free(in);
	evbuffer_free(body);
}

SY_TEST(large_head_fed_one_byte_at_a_time_parses_in_linear_time)
{
	struct evbuffer *text = evbuffer_new(), *in = evbuffer_new();
	struct sy_http1_msg m;
	const char *s;
	char want[81];
	clock_t start;
	size_t i, n;
	int rc = 0;

	evbuffer_add_printf(text, "POST /big HTTP/1.1\r\nX-Long: ");
	for (i = 0; i < 300000; i++)
		evbuffer_add(text, "x", 1);
	evbuffer_add_printf(text, "\r\n");
	for (i = 0; i < 4000; i++)
		evbuffer_add_printf(text, "X-Header-%04zu: %080zu\r\n", i, i);
	evbuffer_add_printf(text, "\r\n");
	n = evbuffer_get_length(text);
	s = (const char *)evbuffer_pullup(text, -1);

	sy_http1_init(&m, SY_HTTP1_REQUEST, 1 << 20, 5000);
	start = clock();
	for (i = 0; i < n && rc == 0; i++) {
		evbuffer_add(in, s + i, 1);
		rc = sy_http1_parse_head(&m, in);
	}
	SY_CHECK_INT(rc, 1);
	SY_CHECK_INT(i, n);
	SY_CHECK_INT(m.nheaders, 4001);
	SY_CHECK_INT(strlen(sy_http1_header(&m, "X-Long")), 300000);
	snprintf(want, sizeof want, "%080d", 3999);
	SY_CHECK_STR(sy_http1_header(&m, "x-header-3999"), want);
	/* Rescanning from the start on every byte would take minutes. */
	SY_CHECK((clock() - start) / CLOCKS_PER_SEC < 10);
	sy_http1_free(&m);
	evbuffer_free(text);
	evbuffer_free(in);
}

/* ==== Header lookup ==== */

SY_TEST(header_lookup_is_case_insensitive_and_by_token)
{
	struct sy_http1_msg m;

	sy_http1_init(&m, SY_HTTP1_REQUEST, 0, 0);
	SY_CHECK_INT(parse_text(&m, "GET / HTTP/1.1\r\n"
	    "Host: a\r\n"
	    "connection: Keep-Alive\r\n"
	    "X-Dup: 1\r\n"
	    "x-dup: 2\r\n"
	    "Accept: text/html ,\tapplication/json;q=0.9,, \r\n"
	    "\r\n"), 1);
	SY_CHECK_STR(sy_http1_header(&m, "HOST"), "a");
	SY_CHECK_STR(sy_http1_header(&m, "X-DUP"), "1");
	SY_CHECK(sy_http1_header(&m, "X-Missing") == NULL);
	SY_CHECK(sy_http1_header(&m, "Hos") == NULL);
	SY_CHECK_INT(sy_http1_header_has(&m, "Connection", "keep-alive"), 1);
	SY_CHECK_INT(sy_http1_header_has(&m, "x-dup", "2"), 1);
	SY_CHECK_INT(sy_http1_header_has(&m, "Accept", "TEXT/HTML"), 1);
	SY_CHECK_INT(sy_http1_header_has(&m, "Accept",
	    "application/json;q=0.9"), 1);
	SY_CHECK_INT(sy_http1_header_has(&m, "Accept", "text"), 0);
	SY_CHECK_INT(sy_http1_header_has(&m, "Accept", "application/json"), 0);
	SY_CHECK_INT(sy_http1_header_has(&m, "Connection", "keep"), 0);
	SY_CHECK_INT(sy_http1_header_has(&m, "Upgrade", "h2c"), 0);
	sy_http1_free(&m);
}

/* ==== Writers ==== */

SY_TEST(write_chunk_frames_and_moves_the_data)
{
	struct evbuffer *out = evbuffer_new(), *data = evbuffer_new();
	char big[255], *s;

	evbuffer_add(data, "hello", 5);
	sy_http1_write_chunk(out, data);
	SY_CHECK_INT(evbuffer_get_length(data), 0);
	SY_CHECK_STR(s = contents(out), "5\r\nhello\r\n");
	free(s);
	evbuffer_drain(out, evbuffer_get_length(out));

	sy_http1_write_chunk(out, data);
	SY_CHECK_INT(evbuffer_get_length(out), 0);

	memset(big, 'x', sizeof big);
	evbuffer_add(data, big, sizeof big);
	sy_http1_write_chunk(out, data);
	s = contents(out);
	SY_CHECK_INT(strlen(s), 4 + 255 + 2);
	SY_CHECK(strncmp(s, "ff\r\nxxx", 7) == 0);
	SY_CHECK(strcmp(s + 4 + 255, "\r\n") == 0);
	free(s);
	evbuffer_drain(out, evbuffer_get_length(out));

	sy_http1_write_last_chunk(out);
	SY_CHECK_STR(s = contents(out), "0\r\n\r\n");
	free(s);
	evbuffer_free(out);
	evbuffer_free(data);
}

SY_TEST(written_chunks_parse_back_to_the_same_body)
{
	struct evbuffer *wire = evbuffer_new(), *data = evbuffer_new();
	struct evbuffer *body = evbuffer_new();
	struct sy_http1_msg m;
	char *s;
	int i;

	evbuffer_add_printf(wire, "HTTP/1.1 200 OK\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n");
	for (i = 0; i < 40; i++) {
		evbuffer_add_printf(data, "event %d;", i);
		sy_http1_write_chunk(wire, data);
	}
	sy_http1_write_last_chunk(wire);
	s = contents(wire);
	sy_http1_init(&m, SY_HTTP1_RESPONSE, 0, 0);
	SY_CHECK_INT(sy_http1_parse_head(&m, wire), 1);
	SY_CHECK_INT(sy_http1_read_body(&m, wire, body), 1);
	SY_CHECK_INT(evbuffer_get_length(wire), 0);
	free(s);
	s = contents(body);
	SY_CHECK(strncmp(s, "event 0;event 1;event 2;", 24) == 0);
	SY_CHECK(strstr(s, "event 39;") != NULL);
	SY_CHECK_INT(strlen(s), 10 * 8 + 30 * 9);
	free(s);
	sy_http1_free(&m);
	evbuffer_free(wire);
	evbuffer_free(data);
	evbuffer_free(body);
}

SY_TEST(reason_phrases_cover_common_codes)
{
	SY_CHECK_STR(sy_http1_reason(100), "Continue");
	SY_CHECK_STR(sy_http1_reason(200), "OK");
	SY_CHECK_STR(sy_http1_reason(204), "No Content");
	SY_CHECK_STR(sy_http1_reason(304), "Not Modified");
	SY_CHECK_STR(sy_http1_reason(400), "Bad Request");
	SY_CHECK_STR(sy_http1_reason(404), "Not Found");
	SY_CHECK_STR(sy_http1_reason(413), "Content Too Large");
	SY_CHECK_STR(sy_http1_reason(429), "Too Many Requests");
	SY_CHECK_STR(sy_http1_reason(431), "Request Header Fields Too Large");
	SY_CHECK_STR(sy_http1_reason(500), "Internal Server Error");
	SY_CHECK_STR(sy_http1_reason(501), "Not Implemented");
	SY_CHECK_STR(sy_http1_reason(502), "Bad Gateway");
	SY_CHECK_STR(sy_http1_reason(503), "Service Unavailable");
	SY_CHECK_STR(sy_http1_reason(504), "Gateway Timeout");
	SY_CHECK_STR(sy_http1_reason(505), "HTTP Version Not Supported");
	SY_CHECK_STR(sy_http1_reason(299), "Unknown");
}

int
main(void)
{
	SY_RUN(request_head_is_parsed_with_trimmed_values);
	SY_RUN(content_length_body_then_pipelined_request);
	SY_RUN(chunked_body_drops_extensions_and_trailers);
	SY_RUN(bare_lf_line_ends_are_accepted);
	SY_RUN(blank_lines_before_a_request_are_skipped);
	SY_RUN(request_without_length_has_no_body);
	SY_RUN(equal_content_lengths_are_one_length);
	SY_RUN(method_of_fifteen_characters_is_accepted);
	SY_RUN(content_length_up_to_two_to_the_62_is_accepted);
	SY_RUN(head_of_exactly_max_head_bytes_is_accepted);
	SY_RUN(limits_survive_reset_between_pipelined_requests);
	SY_RUN(keep_alive_follows_version_and_connection);
	SY_RUN(response_keep_alive_follows_version_and_connection);
	SY_RUN(expect_100_continue_is_flagged_for_http_1_1_only);
	SY_RUN(response_with_content_length);
	SY_RUN(a_status_outside_100_to_599_is_a_malformed_response);
	SY_RUN(a_response_that_is_not_http_fails_at_its_first_bytes);
	SY_RUN(a_bad_status_line_fails_before_the_rest_of_the_head);
	SY_RUN(chunked_response_after_100_continue);
	SY_RUN(response_without_length_runs_until_close);
	SY_RUN(eof_inside_a_framed_body_is_truncation);
	SY_RUN(response_to_head_has_no_body);
	SY_RUN(no_body_set_after_the_head_ends_the_message);
	SY_RUN(status_204_304_and_1xx_have_no_body);
	SY_RUN(response_with_length_and_chunked_uses_chunked_and_closes);
	SY_RUN(unsupported_versions_are_505);
	SY_RUN(malformed_request_lines_are_400);
	SY_RUN(method_longer_than_15_is_501);
	SY_RUN(oversized_head_is_431);
	SY_RUN(too_many_headers_is_431);
	SY_RUN(invalid_or_conflicting_content_length_is_400);
	SY_RUN(content_length_above_two_to_the_62_is_413);
	SY_RUN(transfer_codings_other_than_chunked_are_501);
	SY_RUN(malformed_transfer_encoding_is_400);
	SY_RUN(request_with_length_and_transfer_encoding_is_400);
	SY_RUN(obs_fold_is_400);
	SY_RUN(bad_header_names_and_values_are_400);
	SY_RUN(malformed_chunks_are_400);
	SY_RUN(chunk_size_above_two_to_the_62_is_413);
	SY_RUN(malformed_responses_are_502);
	SY_RUN(a_chunk_counts_as_declared_before_it_arrives);
	SY_RUN(an_absolute_form_target_is_read_as_its_path);
	SY_RUN(errors_carry_a_message);
	SY_RUN(read_body_leaves_the_next_message_in_place);
	SY_RUN(read_body_waits_on_a_partial_chunk_size);
	SY_RUN(eof_reports_only_until_close_and_complete_messages);
	SY_RUN(large_head_fed_one_byte_at_a_time_parses_in_linear_time);
	SY_RUN(header_lookup_is_case_insensitive_and_by_token);
	SY_RUN(write_chunk_frames_and_moves_the_data);
	SY_RUN(written_chunks_parse_back_to_the_same_body);
	SY_RUN(reason_phrases_cover_common_codes);
	return sy_test_done();
}
