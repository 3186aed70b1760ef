/* Fuzz target: each backend adapter's decode of a whole answer (any status) and its translation of a stream, however the bytes are cut. */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "backend.h"
#include "framing.h"
#include "fuzz.h"
#include "sy_test_req.h"

static const int statuses[] = { 200, 200, 200, 400, 404, 429, 500, 503 };

struct run {
	const struct sy_backend_kind *kind;
	const struct sy_req *req;
	void *state;
	struct sy_framer f;
	struct evbuffer *out;
	struct sy_usage usage;
	int over;
};

static int
event(const struct sy_sse_event *ev, void *arg)
{
	struct run *r = arg;
	enum sy_stream_verdict v;

	if (r->over)
		return 1;
	v = r->kind->stream_event(r->state, r->req, ev, r->out, &r->usage);
	r->over = v == SY_STREAM_DONE || v == SY_STREAM_ERROR;
	return 0;
}

static int
piece(const char *p, size_t n, void *arg)
{
	struct run *r = arg;

	return sy_framer_feed(&r->f, p, n, event, r) != 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const bodies[] = {
		"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":8}",
		"{\"model\":\"m\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
		"{\"model\":\"m\",\"prompt\":\"hi\",\"stream\":true}",
		"{\"model\":\"m\",\"input\":[\"a\",\"b\"]}"
	};
	static const enum sy_api apis[] = {
		SY_API_CHAT, SY_API_CHAT, SY_API_COMPLETIONS, SY_API_EMBEDDINGS
	};
	struct run r;
	struct evbuffer *body;
	char *err = NULL;
	unsigned which;
	size_t nkinds = 0;

	if (size < 2)
		return 0;
	while (sy_backend_kind_at(nkinds) != NULL)
		nkinds++;
	memset(&r, 0, sizeof r);
	/* The first byte: the kind in registry order (low four bits), the request. */
	r.kind = sy_backend_kind_at((data[0] & 15) % nkinds);
	which = (data[0] >> 4) % 4;
	r.req = sy_test_req(apis[which], bodies[which], NULL);
	r.out = evbuffer_new();
	r.usage.prompt_tokens = r.usage.completion_tokens =
	    r.usage.cached_tokens = -1;
	if (data[1] & 1 && r.kind->stream_event != NULL) {
		r.state = r.kind->stream_open != NULL ?
		    r.kind->stream_open(r.req) : NULL;
		sy_framer_init(&r.f, r.kind->framing, 4096);
		if (sy_fuzz_pieces(data + 2, size - 2, data[1], piece, &r) == 0)
			sy_framer_finish(&r.f, event, &r);
		sy_framer_free(&r.f);
		if (r.kind->stream_close != NULL)
			r.kind->stream_close(r.state);
	} else {
		body = evbuffer_new();
		evbuffer_add(body, data + 2, size - 2);
		if (r.kind->decode(r.req, statuses[(data[1] >> 1) % 8], body,
		    r.out, &r.usage, &err) != 0) {
			if (err == NULL)
				abort();
			free(err);
		}
		evbuffer_free(body);
	}
	evbuffer_free(r.out);
	return 0;
}
