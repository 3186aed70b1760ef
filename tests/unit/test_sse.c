/* Unit tests of the incremental Server-Sent Events parser, on recorded llama-server streams and edge cases. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "sse.h"
#include "sy_test.h"

/* What the callback saw. */
struct seen {
	struct evbuffer *fields;	/* "[event] [id] len [data]" per event */
	struct evbuffer *raws;		/* the events' raw bytes, concatenated */
	struct evbuffer *lens;		/* "raw_len," per event */
	int n;				/* events */
	int json;			/* events whose data is a JSON object */
	int stop_at;			/* return 7 after this many events (0: never) */
};

static void
seen_init(struct seen *s)
{
	memset(s, 0, sizeof *s);
	s->fields = evbuffer_new();
	s->raws = evbuffer_new();
	s->lens = evbuffer_new();
}

static void
seen_free(struct seen *s)
{
	evbuffer_free(s->fields);
	evbuffer_free(s->raws);
	evbuffer_free(s->lens);
}

/* Copies what buf holds into a NUL-terminated string; caller frees. */
static char *
contents(struct evbuffer *buf)
{
	size_t n = evbuffer_get_length(buf);
	char *s = malloc(n + 1);

	evbuffer_copyout(buf, s, n);
	s[n] = '\0';
	return s;
}

/* sy_sse_cb recording every event into the struct seen at arg. */
static int
record(const struct sy_sse_event *ev, void *arg)
{
	struct seen *s = arg;
	json_t *j;

	evbuffer_add_printf(s->fields, "[%s] [%s] ", ev->event, ev->id);
	if (ev->data == NULL) {
		SY_CHECK_INT(ev->data_len, 0);
		evbuffer_add_printf(s->fields, "-\n");
	} else {
		SY_CHECK(ev->data[ev->data_len] == '\0');
		evbuffer_add_printf(s->fields, "%zu [", ev->data_len);
		evbuffer_add(s->fields, ev->data, ev->data_len);
		evbuffer_add(s->fields, "]\n", 2);
		if ((j = json_loadb(ev->data, ev->data_len, 0, NULL)) != NULL) {
			s->json += json_is_object(j);
			json_decref(j);
		}
	}
	evbuffer_add(s->raws, ev->raw, ev->raw_len);
	evbuffer_add_printf(s->lens, "%zu,", ev->raw_len);
	s->n++;
	return s->n == s->stop_at ? 7 : 0;
}

/*
 * Feeds in (len bytes) to a fresh parser: whole when cut is 0, else in two
 * pieces cut there, or one byte per call when bytewise.  Returns the first
 * non-zero result of sy_sse_feed (it stops there), or 0; *pending gets
 * what the parser holds at the end.
 */
static int
feed(const char *in, size_t len, size_t cut, int bytewise, size_t max_event,
    struct seen *s, size_t *pending)
{
	struct sy_sse p;
	size_t from = 0, to;
	int rc = 0;

	sy_sse_init(&p, max_event);
	while (rc == 0 && from < len) {
		if (bytewise)
			to = from + 1;
		else
			to = from < cut ? cut : len;
		rc = sy_sse_feed(&p, in + from, to - from, record, s);
		from = to;
	}
	*pending = sy_sse_pending(&p);
	sy_sse_free(&p);
	return rc;
}

/*
 * Checks that the raws seen plus what is pending are exactly the bytes fed.
 */
static void
check_raws_cover_input(struct seen *s, const char *in, size_t len,
    size_t pending)
{
	size_t n = evbuffer_get_length(s->raws);
	char *raws = contents(s->raws);

	SY_CHECK_INT(n + pending, len);
	SY_CHECK(n <= len && memcmp(raws, in, n) == 0);
	free(raws);
}

/*
 * Checks that in gives the same events, fields and result fed whole, cut in
 * two at every offset and one byte at a time, and that the raws always add
 * up to the input.  When same_raws, every event's raw length must match
 * too, and so must what is left pending (not so with CR line ends: the LF
 * of a CRLF arriving after its event was reported opens the next raw).
 * Returns the whole feed's fields; caller frees.
 */
static char *
check_stream(const char *in, size_t len, size_t max_event, int same_raws,
    int *events, size_t *pending_whole)
{
	struct seen whole, part;
	char *want, *want_lens, *got, *got_lens;
	size_t cut, pending;
	int rc_whole, rc, bytewise, failed = 0;

	seen_init(&whole);
	rc_whole = feed(in, len, 0, 0, max_event, &whole, pending_whole);
	if (rc_whole == 0)
		check_raws_cover_input(&whole, in, len, *pending_whole);
	want = contents(whole.fields);
	want_lens = contents(whole.lens);
	*events = whole.n;

	for (cut = 1; cut <= len && !failed; cut++) {
		bytewise = cut == len;
		seen_init(&part);
		rc = feed(in, len, cut, bytewise, max_event, &part, &pending);
		got = contents(part.fields);
		got_lens = contents(part.lens);
		if (rc != rc_whole || strcmp(got, want) != 0 ||
		    (same_raws && strcmp(got_lens, want_lens) != 0)) {
			failed = 1;
			if (bytewise)
				printf("# one byte at a time:\n");
			else
				printf("# cut at byte %zu:\n", cut);
			SY_CHECK_INT(rc, rc_whole);
			SY_CHECK_STR(got, want);
			if (same_raws)
				SY_CHECK_STR(got_lens, want_lens);
		}
		if (rc == 0) {
			if (same_raws)
				SY_CHECK_INT(pending, *pending_whole);
			check_raws_cover_input(&part, in, len, pending);
		}
		free(got);
		free(got_lens);
		seen_free(&part);
	}
	free(want_lens);
	seen_free(&whole);
	return want;
}

/* check_stream on a NUL-terminated input, comparing the fields with want. */
static void
check_text(const char *in, int same_raws, const char *want, size_t want_pending)
{
	size_t pending;
	int events;
	char *got;

	got = check_stream(in, strlen(in), 0, same_raws, &events, &pending);
	SY_CHECK_STR(got, want);
	SY_CHECK_INT(pending, want_pending);
	free(got);
}

/*
 * Checks a recorded stream: nevents events, every data but the final
 * "[DONE]" a JSON object, identical however the bytes arrive.
 */
static void
check_fixture(const char *name, int nevents)
{
	struct seen s;
	size_t len, pending;
	char *in, *fields;
	int events;

	in = sy_test_fixture(name, &len);
	fields = check_stream(in, len, 0, 1, &events, &pending);
	SY_CHECK_INT(events, nevents);
	SY_CHECK_INT(pending, 0);
	SY_CHECK(strstr(fields, "[] [] 6 [[DONE]]\n") != NULL);
	SY_CHECK(strncmp(fields, "[] [] ", 6) == 0);

	seen_init(&s);
	SY_CHECK_INT(feed(in, len, 0, 0, 0, &s, &pending), 0);
	SY_CHECK_INT(s.json, nevents - 1);
	seen_free(&s);
	free(fields);
	free(in);
}

/* ==== Recorded streams ==== */

SY_TEST(chat_stream_fixture)
{
	check_fixture("llama-server/chat_stream.sse", 9);
}

SY_TEST(chat_stream_with_usage_fixture)
{
	check_fixture("llama-server/chat_stream_usage.sse", 10);
}

SY_TEST(completion_stream_fixture)
{
	check_fixture("llama-server/completion_stream.sse", 6);
}

SY_TEST(error_midstream_fixture)
{
	struct seen s;
	size_t len, sse_len, pending;
	char *in, *fields, *tail;
	int events;

	/* The recording ends with a blank line and "HTTP 200": not SSE. */
	in = sy_test_fixture("llama-server/error_midstream.sse", &len);
	tail = strstr(in, "\nHTTP 200\n");
	SY_CHECK(tail != NULL && tail + 10 == in + len);
	if (tail == NULL) {
		free(in);
		return;
	}
	sse_len = (size_t)(tail - in);
	fields = check_stream(in, sse_len, 0, 1, &events, &pending);
	SY_CHECK_INT(events, 2);
	SY_CHECK_INT(pending, 0);
	SY_CHECK(strstr(fields, "[{\"error\":{\"code\":500,") != NULL);
	free(fields);

	seen_init(&s);
	SY_CHECK_INT(feed(in, len, 0, 0, 0, &s, &pending), 0);
	SY_CHECK_INT(s.n, 2);
	SY_CHECK_INT(s.json, 2);
	SY_CHECK_INT(pending, 10);
	seen_free(&s);
	free(in);
}

/* ==== Line ends ==== */

SY_TEST(crlf_line_ends)
{
	check_text("event: delta\r\nid: 7\r\ndata: a\r\ndata: b\r\n\r\n"
	    ": ping\r\n\r\n"
	    "data: [DONE]\r\n\r\n", 0,
	    "[delta] [7] 3 [a\nb]\n"
	    "[] [] -\n"
	    "[] [] 6 [[DONE]]\n", 0);
}

SY_TEST(cr_line_ends)
{
	check_text("event: delta\rid: 7\rdata: a\rdata: b\r\r"
	    ": ping\r\r"
	    "data: [DONE]\r\r", 0,
	    "[delta] [7] 3 [a\nb]\n"
	    "[] [] -\n"
	    "[] [] 6 [[DONE]]\n", 0);
}

SY_TEST(mixed_line_ends)
{
	check_text("data: a\r\ndata: b\rdata: c\n\r\n"
	    "data: d\n\r"
	    "data: e\r\r\n"
	    "data: f", 0,
	    "[] [] 5 [a\nb\nc]\n"
	    "[] [] 1 [d]\n"
	    "[] [] 1 [e]\n", 7);
}

SY_TEST(cr_then_lf_in_the_next_feed_counts_once)
{
	struct sy_sse p;
	struct seen s;
	char *f;

	seen_init(&s);
	sy_sse_init(&p, 0);
	SY_CHECK_INT(sy_sse_feed(&p, "data: a\r", 8, record, &s), 0);
	SY_CHECK_INT(sy_sse_feed(&p, "\ndata: b\r", 9, record, &s), 0);
	SY_CHECK_INT(sy_sse_feed(&p, "\n\r", 2, record, &s), 0);
	SY_CHECK_INT(s.n, 1);
	SY_CHECK_STR(f = contents(s.fields), "[] [] 3 [a\nb]\n");
	free(f);
	SY_CHECK_STR(f = contents(s.raws), "data: a\r\ndata: b\r\n\r");
	free(f);
	sy_sse_free(&p);
	seen_free(&s);
}

SY_TEST(event_ended_by_cr_is_reported_without_waiting)
{
	struct sy_sse p;
	struct seen s;
	char *f;

	seen_init(&s);
	sy_sse_init(&p, 0);
	SY_CHECK_INT(sy_sse_feed(&p, "data: a\r\r", 9, record, &s), 0);
	SY_CHECK_INT(s.n, 1);
	SY_CHECK_INT(sy_sse_pending(&p), 0);
	/* The LF completing the CRLF opens the next event's raw. */
	SY_CHECK_INT(sy_sse_feed(&p, "\ndata: b\r\n\r\n", 12, record, &s), 0);
	SY_CHECK_INT(s.n, 2);
	SY_CHECK_STR(f = contents(s.fields), "[] [] 1 [a]\n[] [] 1 [b]\n");
	free(f);
	SY_CHECK_STR(f = contents(s.lens), "9,12,");
	free(f);
	sy_sse_free(&p);
	seen_free(&s);
}

/* ==== Fields ==== */

SY_TEST(comment_only_block_is_an_event_without_data)
{
	check_text(": ping\n\n:\n: keep-alive\n\n", 1,
	    "[] [] -\n"
	    "[] [] -\n", 0);
}

SY_TEST(data_lines_are_joined_with_lf)
{
	check_text("data: {\"a\":\ndata:  1}\ndata\ndata:\ndata:x\n\n", 1,
	    "[] [] 13 [{\"a\":\n 1}\n\n\nx]\n", 0);
}

SY_TEST(empty_data_is_not_missing_data)
{
	check_text("data\n\ndata:\n\ndata: \n\nevent: e\n\n", 1,
	    "[] [] 0 []\n"
	    "[] [] 0 []\n"
	    "[] [] 0 []\n"
	    "[e] [] -\n", 0);
}

SY_TEST(event_and_id_fields_last_one_wins)
{
	check_text("event: message\nid: 42\nretry: 1000\nfoo: bar\n"
	    "data: {}\n\n"
	    "event: a\nevent:b\nid:1\nid\ndata: x\n\n"
	    "Data: not data\nDATA: nor this\n\n", 1,
	    "[message] [42] 2 [{}]\n"
	    "[b] [] 1 [x]\n"
	    "[] [] -\n", 0);
}

SY_TEST(blank_lines_outside_blocks_are_skipped)
{
	check_text("\n\r\n\rdata: a\n\n\n\n\ndata: b\n\n\n", 0,
	    "[] [] 1 [a]\n"
	    "[] [] 1 [b]\n", 1);
}

SY_TEST(incomplete_event_stays_pending)
{
	struct sy_sse p;
	struct seen s;

	seen_init(&s);
	sy_sse_init(&p, 0);
	SY_CHECK_INT(sy_sse_feed(&p, "data: a\n\ndata: partial\n", 23,
	    record, &s), 0);
	SY_CHECK_INT(s.n, 1);
	SY_CHECK_INT(sy_sse_pending(&p), 14);
	SY_CHECK_INT(sy_sse_feed(&p, "\n", 1, record, &s), 0);
	SY_CHECK_INT(s.n, 2);
	SY_CHECK_INT(sy_sse_pending(&p), 0);
	sy_sse_free(&p);
	seen_free(&s);
}

/* ==== Limits and control ==== */

SY_TEST(event_larger_than_max_event_is_an_overflow)
{
	static const char in[] =
	    "data: 0123456789abcdefghijklm\n\n"		/* 31 bytes */
	    "data: 0123456789abcdefghijklmn\n\n"	/* 32 bytes */
	    "data: 0123456789abcdefghijklmno\n\n"	/* 33 bytes */
	    "data: never\n\n";
	struct sy_sse p;
	struct seen s;
	size_t pending;
	int events;
	char *fields;

	fields = check_stream(in, sizeof in - 1, 32, 1, &events, &pending);
	SY_CHECK_INT(events, 2);
	SY_CHECK(strstr(fields, "never") == NULL);
	free(fields);

	seen_init(&s);
	sy_sse_init(&p, 32);
	SY_CHECK_INT(sy_sse_feed(&p, in, sizeof in - 1, record, &s), -1);
	SY_CHECK_INT(p.overflow, 1);
	SY_CHECK_INT(s.n, 2);
	SY_CHECK_INT(sy_sse_feed(&p, "data: x\n\n", 9, record, &s), -1);
	SY_CHECK_INT(s.n, 2);
	sy_sse_free(&p);
	seen_free(&s);
}

SY_TEST(unterminated_event_overflows_before_it_ends)
{
	struct sy_sse p;
	struct seen s;
	char line[64];
	int i, rc = 0;

	seen_init(&s);
	sy_sse_init(&p, 1000);
	for (i = 0; i < 100 && rc == 0; i++) {
		snprintf(line, sizeof line, "data: line %d\n", i);
		rc = sy_sse_feed(&p, line, strlen(line), record, &s);
	}
	SY_CHECK_INT(rc, -1);
	SY_CHECK(i < 100);
	SY_CHECK_INT(p.overflow, 1);
	SY_CHECK_INT(s.n, 0);
	sy_sse_free(&p);
	seen_free(&s);
}

SY_TEST(callback_can_stop_the_feed)
{
	struct sy_sse p;
	struct seen s;
	char *f;

	seen_init(&s);
	s.stop_at = 1;
	sy_sse_init(&p, 0);
	SY_CHECK_INT(sy_sse_feed(&p, "data: 1\n\ndata: 2\n\ndata: 3\n\n", 27,
	    record, &s), 7);
	SY_CHECK_INT(s.n, 1);
	SY_CHECK_INT(sy_sse_pending(&p), 18);
	SY_CHECK_INT(sy_sse_feed(&p, NULL, 0, record, &s), 0);
	SY_CHECK_INT(s.n, 3);
	SY_CHECK_INT(sy_sse_pending(&p), 0);
	SY_CHECK_STR(f = contents(s.fields),
	    "[] [] 1 [1]\n[] [] 1 [2]\n[] [] 1 [3]\n");
	free(f);
	sy_sse_free(&p);
	seen_free(&s);
}

SY_TEST(default_max_event_is_one_mebibyte)
{
	size_t size = 1024 * 1024, pending;
	struct seen s;
	char *in;

	/* "data: " x "\n\n": one event of exactly size bytes, then one more. */
	in = malloc(size + 1);
	memcpy(in, "data: ", 6);
	memset(in + 6, 'x', size - 8);
	memcpy(in + size - 2, "\n\n", 2);
	seen_init(&s);
	SY_CHECK_INT(feed(in, size, 0, 0, 0, &s, &pending), 0);
	SY_CHECK_INT(s.n, 1);
	seen_free(&s);

	memcpy(in + size - 2, "x\n\n", 3);
	seen_init(&s);
	SY_CHECK_INT(feed(in, size + 1, 0, 0, 0, &s, &pending), -1);
	SY_CHECK_INT(s.n, 0);
	seen_free(&s);
	free(in);
}

SY_TEST(byte_at_a_time_feeding_is_linear)
{
	struct evbuffer *text = evbuffer_new();
	struct sy_sse p;
	struct seen s;
	const char *in;
	clock_t start;
	size_t i, n;
	int rc = 0;

	evbuffer_add_printf(text, "data: ");
	for (i = 0; i < 100000; i++)
		evbuffer_add_printf(text, "%09zu ", i);
	evbuffer_add_printf(text, "\n\n");
	for (i = 0; i < 20000; i++)
		evbuffer_add_printf(text, "data: {\"n\":%zu}\n\n", i);
	n = evbuffer_get_length(text);
	in = (const char *)evbuffer_pullup(text, -1);

	seen_init(&s);
	sy_sse_init(&p, 0);
	start = clock();
	for (i = 0; i < n && rc == 0; i++)
		rc = sy_sse_feed(&p, in + i, 1, record, &s);
	SY_CHECK_INT(rc, 0);
	SY_CHECK_INT(s.n, 20001);
	SY_CHECK_INT(s.json, 20000);
	SY_CHECK_INT(evbuffer_get_length(s.raws), n);
	/* Rescanning what is pending on every byte would take minutes. */
	SY_CHECK((clock() - start) / CLOCKS_PER_SEC < 10);
	sy_sse_free(&p);
	seen_free(&s);
	evbuffer_free(text);
}

int
main(void)
{
	SY_RUN(chat_stream_fixture);
	SY_RUN(chat_stream_with_usage_fixture);
	SY_RUN(completion_stream_fixture);
	SY_RUN(error_midstream_fixture);
	SY_RUN(crlf_line_ends);
	SY_RUN(cr_line_ends);
	SY_RUN(mixed_line_ends);
	SY_RUN(cr_then_lf_in_the_next_feed_counts_once);
	SY_RUN(event_ended_by_cr_is_reported_without_waiting);
	SY_RUN(comment_only_block_is_an_event_without_data);
	SY_RUN(data_lines_are_joined_with_lf);
	SY_RUN(empty_data_is_not_missing_data);
	SY_RUN(event_and_id_fields_last_one_wins);
	SY_RUN(blank_lines_outside_blocks_are_skipped);
	SY_RUN(incomplete_event_stays_pending);
	SY_RUN(event_larger_than_max_event_is_an_overflow);
	SY_RUN(unterminated_event_overflows_before_it_ends);
	SY_RUN(callback_can_stop_the_feed);
	SY_RUN(default_max_event_is_one_mebibyte);
	SY_RUN(byte_at_a_time_feeding_is_linear);
	return sy_test_done();
}
