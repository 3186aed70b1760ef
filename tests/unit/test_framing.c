/* Unit tests of lib/framing.c: every framing, through the one interface, cuts a stream into the same events whatever the chunking. */
#include <string.h>

#include "framing.h"
#include "sy_test.h"

/* A sample stream of each framing, and the data of its events. */
static const struct {
	const struct sy_framing *framing;
	const char *stream;
	const char *ct_yes, *ct_no;
	const char *data[4];
} samples[] = {
	{ &sy_framing_sse,
	  "data: {\"a\":1}\n\n: ping\n\ndata: {\"b\":\"\xc3\xa9\"}\r\n\r\n"
	  "data: [DONE]\n\n",
	  "text/event-stream; charset=utf-8", "application/json",
	  { "{\"a\":1}", NULL, "{\"b\":\"\xc3\xa9\"}", "[DONE]" } },
	{ &sy_framing_ndjson,
	  "{\"a\":1}\n{\"b\":2}\r\n\n{\"done\":true}",
	  "application/x-ndjson", "text/event-stream",
	  { "{\"a\":1}", "{\"b\":2}", "{\"done\":true}", NULL } },
};

struct seen {
	char data[4][64];
	int null[4];
	int n;
};

static int
on_event(const struct sy_sse_event *ev, void *arg)
{
	struct seen *s = arg;

	if (s->n < 4) {
		s->null[s->n] = ev->data == NULL;
		snprintf(s->data[s->n], sizeof s->data[0], "%s",
		    ev->data != NULL ? ev->data : "");
	}
	s->n++;
	return 0;
}

/* Feeds stream in two pieces cut at `at`, then finishes. */
static void
split_feed(const struct sy_framing *fr, const char *stream, size_t at,
    struct seen *s)
{
	struct sy_framer f;
	size_t len = strlen(stream);

	memset(s, 0, sizeof *s);
	sy_framer_init(&f, fr, 0);
	sy_framer_feed(&f, stream, at, on_event, s);
	sy_framer_feed(&f, stream + at, len - at, on_event, s);
	sy_framer_finish(&f, on_event, s);
	sy_framer_free(&f);
}

SY_TEST(every_framing_gives_the_same_events_at_every_cut)
{
	struct seen s;
	size_t i, at, k, want;

	for (i = 0; i < sizeof samples / sizeof samples[0]; i++) {
		for (want = 0; want < 4 && (samples[i].data[want] != NULL ||
		    samples[i].framing == &sy_framing_sse); want++)
			;
		for (at = 0; at <= strlen(samples[i].stream); at++) {
			split_feed(samples[i].framing, samples[i].stream, at, &s);
			SY_CHECK_INT(s.n, want);
			for (k = 0; k < want && k < 4; k++) {
				if (samples[i].data[k] == NULL)
					SY_CHECK(s.null[k]);
				else
					SY_CHECK_STR(s.data[k], samples[i].data[k]);
			}
		}
	}
}

SY_TEST(every_framing_knows_its_content_type_and_accept)
{
	size_t i;

	for (i = 0; i < sizeof samples / sizeof samples[0]; i++) {
		SY_CHECK(samples[i].framing->is_stream(samples[i].ct_yes));
		SY_CHECK(!samples[i].framing->is_stream(samples[i].ct_no));
		SY_CHECK(samples[i].framing->accept != NULL);
	}
}

int
main(void)
{
	SY_RUN(every_framing_gives_the_same_events_at_every_cut);
	SY_RUN(every_framing_knows_its_content_type_and_accept);
	return sy_test_done();
}
