/* Fuzz target: the HTTP/1 request and response parsers, fed in arbitrary pieces, pipelined messages included. */
#include <event2/buffer.h>

#include "fuzz.h"
#include "http1.h"

struct run {
	struct sy_http1_msg m;
	struct evbuffer *in, *body;
	int dead;
};

/* Parses what in holds: heads, bodies, the messages after them. */
static int
piece(const char *p, size_t n, void *arg)
{
	struct run *r = arg;
	int rc;

	evbuffer_add(r->in, p, n);
	while (!r->dead) {
		if (r->m.state == SY_HTTP1_HEAD) {
			if ((rc = sy_http1_parse_head(&r->m, r->in)) <= 0) {
				r->dead = rc < 0;
				return r->dead;
			}
			(void)sy_http1_header(&r->m, "content-type");
			(void)sy_http1_header_has(&r->m, "connection", "close");
		}
		if (r->m.state == SY_HTTP1_BODY) {
			if ((rc = sy_http1_read_body(&r->m, r->in, r->body)) <= 0) {
				r->dead = rc < 0;
				return r->dead;
			}
		}
		evbuffer_drain(r->body, evbuffer_get_length(r->body));
		if (!r->m.keep_alive || evbuffer_get_length(r->in) == 0) {
			if (!r->m.keep_alive)
				r->dead = 1;
			else
				sy_http1_reset(&r->m);
			return r->dead;
		}
		sy_http1_reset(&r->m);
	}
	return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run r = { .dead = 0 };

	if (size < 1)
		return 0;
	sy_http1_init(&r.m, data[0] & 1 ? SY_HTTP1_RESPONSE : SY_HTTP1_REQUEST,
	    4096, 32);
	r.in = evbuffer_new();
	r.body = evbuffer_new();
	sy_fuzz_pieces(data + 1, size - 1, data[0], piece, &r);
	if (!r.dead)
		(void)sy_http1_eof(&r.m);
	sy_http1_free(&r.m);
	evbuffer_free(r.in);
	evbuffer_free(r.body);
	return 0;
}
