/* Fuzz target: SSE and NDJSON stream framing, fed in arbitrary pieces; every event it reports lies within what was fed. */
#include <stdlib.h>
#include <string.h>

#include "framing.h"
#include "fuzz.h"

struct run {
	struct sy_framer f;
	size_t fed, seen;
};

static int
event(const struct sy_sse_event *ev, void *arg)
{
	struct run *r = arg;

	/* An event's bytes were fed, and its data is NUL-terminated. */
	r->seen += ev->raw_len;
	if (r->seen > r->fed || (ev->data != NULL &&
	    strlen(ev->data) > ev->data_len))
		abort();
	return 0;
}

static int
piece(const char *p, size_t n, void *arg)
{
	struct run *r = arg;

	r->fed += n;
	return sy_framer_feed(&r->f, p, n, event, r) != 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run r = { .fed = 0, .seen = 0 };

	if (size < 1)
		return 0;
	sy_framer_init(&r.f, data[0] & 1 ? &sy_framing_ndjson :
	    &sy_framing_sse, 2048);
	if (sy_fuzz_pieces(data + 1, size - 1, data[0], piece, &r) == 0)
		sy_framer_finish(&r.f, event, &r);
	sy_framer_free(&r.f);
	return 0;
}
