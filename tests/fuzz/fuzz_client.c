/* Fuzz target: each client dialect's translations — its request into the canonical form, a canonical answer and canonical stream events back into its own shape, and its error bodies. */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "clientapi.h"
#include "framing.h"
#include "fuzz.h"

struct run {
	const struct sy_client_api *api;
	void *state;
	struct evbuffer *out;
};

static int
event(const struct sy_sse_event *ev, void *arg)
{
	struct run *r = arg;

	r->api->stream_event(r->state, ev, r->out);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct sy_client_api *api;
	struct sy_framer f;
	struct run r;
	struct evbuffer *body, *out;
	size_t n = 0;
	char *err = NULL, *text;
	json_t *canon;

	if (size < 2)
		return 0;
	while (sy_client_apis[n] != NULL)
		n++;
	api = sy_client_apis[data[0] % n];
	text = (char *)data + 2;
	size -= 2;
	out = evbuffer_new();
	switch (data[1] % 4) {
	case 0:		/* the client's request */
		if (api->request == NULL)
			break;
		canon = api->request(text, size, &err);
		if ((canon == NULL) == (err == NULL))
			abort();
		json_decref(canon);
		free(err);
		break;
	case 1:		/* a canonical whole answer */
		if (api->response == NULL)
			break;
		body = evbuffer_new();
		evbuffer_add(body, text, size);
		if (api->response(body, "m", NULL, out, &err) != 0) {
			if (err == NULL)
				abort();
			free(err);
		}
		evbuffer_free(body);
		break;
	case 2:		/* canonical stream events, however cut */
		if (api->stream_open == NULL)
			break;
		r.api = api;
		r.out = out;
		r.state = api->stream_open("m", NULL);
		sy_framer_init(&f, &sy_framing_sse, 4096);
		sy_framer_feed(&f, text, size, event, &r);
		sy_framer_finish(&f, event, &r);
		sy_framer_free(&f);
		api->stream_close(r.state);
		break;
	default:	/* an error body of any status and message */
		if (api->error == NULL)
			break;
		body = evbuffer_new();
		evbuffer_add(body, text, size);
		evbuffer_add(body, "", 1);
		api->error(out, 100 + data[1] % 500, "invalid_request_error",
		    NULL, (const char *)evbuffer_pullup(body, -1));
		evbuffer_free(body);
		break;
	}
	evbuffer_free(out);
	return 0;
}
