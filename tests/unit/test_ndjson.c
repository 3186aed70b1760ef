/* Unit tests of the NDJSON splitter: lines whatever the chunking. */
#include <string.h>

#include <event2/buffer.h>

#include "ndjson.h"
#include "sy_test.h"

/* What the callback saw: data joined with '|', raw concatenated. */
struct seen {
	char data[4096];
	char raw[4096];
	int n;
	int stop_after;
};

static int
collect(const struct sy_sse_event *ev, void *arg)
{
	struct seen *s = arg;

	SY_CHECK(strlen(ev->data) == ev->data_len);
	strncat(s->data, ev->data, sizeof s->data - strlen(s->data) - 2);
	strcat(s->data, "|");
	strncat(s->raw, ev->raw, ev->raw_len);
	s->n++;
	return s->stop_after != 0 && s->n == s->stop_after;
}

/* Feeds text in two pieces cut at cut, then finishes. */
static void
feed_split(const char *text, size_t cut, struct seen *s)
{
	struct sy_ndjson p;

	memset(s, 0, sizeof *s);
	sy_ndjson_init(&p, 0);
	SY_CHECK_INT(sy_ndjson_feed(&p, text, cut, collect, s), 0);
	SY_CHECK_INT(sy_ndjson_feed(&p, text + cut, strlen(text) - cut, collect, s), 0);
	SY_CHECK_INT(sy_ndjson_finish(&p, collect, s), 0);
	sy_ndjson_free(&p);
}

SY_TEST(lines_are_reported_whole_at_every_cut)
{
	const char *text = "{\"a\":1}\n{\"b\":\"x y\"}\r\n\n  \n{\"done\":true}\n";
	struct seen s;
	size_t cut;

	for (cut = 0; cut <= strlen(text); cut++) {
		feed_split(text, cut, &s);
		SY_CHECK_STR(s.data, "{\"a\":1}|{\"b\":\"x y\"}|{\"done\":true}|");
		SY_CHECK_INT(s.n, 3);
	}
}

SY_TEST(raw_keeps_each_line_with_its_end)
{
	struct seen s;

	feed_split("{\"a\":1}\r\n{\"b\":2}\n", 5, &s);
	SY_CHECK_STR(s.raw, "{\"a\":1}\r\n{\"b\":2}\n");
}

SY_TEST(a_last_line_without_its_end_comes_at_finish)
{
	struct seen s;

	feed_split("{\"a\":1}\n{\"b\":2}", 3, &s);
	SY_CHECK_STR(s.data, "{\"a\":1}|{\"b\":2}|");
}

SY_TEST(the_callback_can_stop_the_feed)
{
	struct sy_ndjson p;
	struct seen s;
	const char *text = "1\n2\n3\n";

	memset(&s, 0, sizeof s);
	s.stop_after = 2;
	sy_ndjson_init(&p, 0);
	SY_CHECK_INT(sy_ndjson_feed(&p, text, strlen(text), collect, &s), 1);
	SY_CHECK_INT(s.n, 2);
	sy_ndjson_free(&p);
}

SY_TEST(a_line_longer_than_the_limit_is_refused)
{
	struct sy_ndjson p;
	struct seen s;
	char big[100];

	memset(&s, 0, sizeof s);
	memset(big, 'x', sizeof big);
	sy_ndjson_init(&p, 64);
	SY_CHECK_INT(sy_ndjson_feed(&p, big, sizeof big, collect, &s), -1);
	SY_CHECK(p.overflow);
	SY_CHECK_INT(s.n, 0);
	sy_ndjson_free(&p);
}

int
main(void)
{
	SY_RUN(lines_are_reported_whole_at_every_cut);
	SY_RUN(raw_keeps_each_line_with_its_end);
	SY_RUN(a_last_line_without_its_end_comes_at_finish);
	SY_RUN(the_callback_can_stop_the_feed);
	SY_RUN(a_line_longer_than_the_limit_is_refused);
	return sy_test_done();
}
