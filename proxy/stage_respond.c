/* The respond stage: the reply or the stream to the client, translated into its dialect, with the headers switchyard adds (request id, model, cache); a batch's call hands its reply to its batch instead. */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "cache.h"
#include "clientapi.h"
#include "config.h"
#include "cors.h"
#include "exchange.h"
#include "http1.h"
#include "respond.h"
#include "server.h"
#include "util.h"

/* A streamed answer asks its sender to pause while this much waits for the client. */
#define STREAM_BACKLOG_MAX (1024 * 1024)
/* The longest answer held back for its check before it is sent as it is. */
#define HOLD_MAX (64 * 1024 * 1024)
/* The extra header lines of a response, at most. */
#define HEADERS_MAX 1280

/*
 * The extra headers of x's response, written once as it starts: its
 * request id (also under the dialect's own name), the model that answers
 * (X-Switchyard-Model, when the name is fit for a header), what the
 * prompt cache did, and CORS's headers for an allowed browser origin.
 */
static const char *
headers_of(struct sy_exchange *x)
{
	char *o = sy_put_str(SY_PUT_LIT(x->respond.headers, "X-Request-Id: "),
	    x->req.id);
	const char *model = x->req.model, *p;

	o = SY_PUT_LIT(o, "\r\n");
	if (x->client->request_id_header != NULL) {
		o = sy_put_str(sy_put_str(o, x->client->request_id_header),
		    ": ");
		o = SY_PUT_LIT(sy_put_str(o, x->req.id), "\r\n");
	}
	for (p = model; p != NULL && *p > ' ' && *p < 0x7f; p++)
		;
	if (p != NULL && *p == '\0' && p - model <= 200) {
		o = sy_put_str(SY_PUT_LIT(o, "X-Switchyard-Model: "), model);
		o = SY_PUT_LIT(o, "\r\n");
	}
	if (x->respond.cache_word != NULL) {
		o = sy_put_str(SY_PUT_LIT(o, "X-Switchyard-Cache: "),
		    x->respond.cache_word);
		o = SY_PUT_LIT(o, "\r\n");
	}
	*o = '\0';
	if (x->req.head != NULL)
		sy_cors_headers(&x->req.cfg->cors, sy_http1_header(x->req.head,
		    "Origin"), o, sizeof x->respond.headers -
		    (size_t)(o - x->respond.headers));
	return x->respond.headers;
}

/* The headers of headers_of and those stages added, in buf (len bytes). */
static const char *
all_headers(struct sy_exchange *x, char *buf, size_t len, const char *more)
{
	snprintf(buf, len, "%s%s%s", headers_of(x), x->respond.more_headers ?
	    x->respond.more_headers : "", more != NULL ? more : "");
	return buf;
}

/* ==== Streams ==== */

/* Tells x's watcher the answer obj (the reference is taken), once. */
static void
tell(struct sy_exchange *x, json_t *obj)
{
	void (*fn)(struct sy_exchange *, json_t *) = x->respond.watch;

	x->respond.watch = NULL;
	if (fn != NULL && obj != NULL)
		fn(x, obj);
	json_decref(obj);
}

/* A stream's result, once its dialect knows it, to x's watcher. */
static void
tell_result(struct sy_exchange *x)
{
	json_t *obj;

	if (x->respond.watch == NULL || x->respond.cstate == NULL ||
	    x->client->stream_result == NULL ||
	    (obj = x->client->stream_result(x->respond.cstate)) == NULL)
		return;
	tell(x, obj);
}

struct evbuffer *
sy_respond_events(struct sy_exchange *x)
{
	if (x->respond.out == NULL)
		x->respond.out = evbuffer_new();
	return x->respond.out;
}

int
sy_respond_started(const struct sy_exchange *x)
{
	return x->respond.started;
}

static int
on_client_event(const struct sy_sse_event *ev, void *arg)
{
	struct sy_exchange *x = arg;

	x->client->stream_event(x->respond.cstate, ev, x->respond.cout);
	return 0;
}

/*
 * The events to send: the canonical ones as they are for OpenAI's
 * dialect, else translated into the client's (the canonical ones drained).
 */
static struct evbuffer *
client_events(struct sy_exchange *x)
{
	struct evbuffer *out = x->respond.out;
	size_t len = evbuffer_get_length(out);

	if (x->client->stream_event == NULL)
		return out;
	if (x->respond.cstate == NULL) {
		x->respond.cstate = x->client->stream_open(x->req.client_model,
		    x->respond.echo);
		sy_sse_init(&x->respond.csse, 0);
		x->respond.cout = evbuffer_new();
	}
	if (len > 0)
		sy_sse_feed(&x->respond.csse, (const char *)evbuffer_pullup(out,
		    -1), len, on_client_event, x);
	evbuffer_drain(out, len);
	return x->respond.cout;
}

/* Starts the client's stream, once. */
static void
stream_start(struct sy_exchange *x)
{
	char headers[HEADERS_MAX];

	if (x->respond.started)
		return;
	x->respond.started = 1;
	x->req.status = 200;
	sy_conn_stream_start(x->conn, 200, "text/event-stream",
	    all_headers(x, headers, sizeof headers, NULL));
}

int
sy_respond_flush(struct sy_exchange *x)
{
	struct evbuffer *out;
	size_t len = x->respond.out != NULL ?
	    evbuffer_get_length(x->respond.out) : 0;

	if (x->select.hold && len > HOLD_MAX)
		x->select.hold = 0;	/* too long to hold: sent as it is */
	if (len == 0 || x->conn == NULL || x->select.hold)
		return 0;
	if (!x->respond.started)
		x->req.t_first_byte = sy_now_us();
	sy_req_stream_write(&x->req, sy_now_us());
	stream_start(x);
	sy_cache_capture(x->cache.ctx, &x->req, x->respond.out);
	out = client_events(x);
	tell_result(x);
	x->req.bytes_out += evbuffer_get_length(out);
	sy_conn_stream_write(x->conn, out);
	return sy_conn_pending(x->conn) > STREAM_BACKLOG_MAX;
}

void
sy_respond_end(struct sy_exchange *x)
{
	struct evbuffer *out;

	if (x->conn == NULL)
		return;
	if (!x->respond.started && x->respond.out != NULL &&
	    evbuffer_get_length(x->respond.out) > 0)
		x->req.t_first_byte = sy_now_us();
	stream_start(x);
	out = NULL;
	if (x->respond.out != NULL) {
		sy_cache_capture(x->cache.ctx, &x->req, x->respond.out);
		out = client_events(x);
		tell_result(x);
		x->req.bytes_out += evbuffer_get_length(out);
	}
	sy_conn_stream_end(x->conn, out);
	x->conn = NULL;
	x->req.t_end = sy_now_us();
}

/* ==== Whole replies ==== */

struct evbuffer *
sy_respond_body(struct sy_exchange *x)
{
	struct sy_reply *r = &x->reply;
	struct evbuffer *out;
	json_t *obj, *e;
	char *err = NULL;

	if (x->client->response == NULL || r->native)
		return r->body;
	out = evbuffer_new();
	if (r->status < 400) {
		if (x->client->response(r->body, x->req.client_model,
		    x->respond.echo, out, &err) == 0)
			return out;
		evbuffer_free(out);
		sy_exchange_fail(x, 502, "server_error", "bad_gateway", err,
		    NULL);
		free(err);
		return NULL;
	}
	obj = json_loadb((const char *)evbuffer_pullup(r->body, -1),
	    evbuffer_get_length(r->body), 0, NULL);
	e = json_object_get(obj, "error");
	x->client->error(out, r->status,
	    json_string_value(json_object_get(e, "type")),
	    json_string_value(json_object_get(e, "code")),
	    json_is_string(json_object_get(e, "message")) ?
	    json_string_value(json_object_get(e, "message")) :
	    "the backend returned an error");
	json_decref(obj);
	return out;
}

/* Sends the whole reply. */
static void
reply_send(struct sy_exchange *x)
{
	struct evbuffer *out;
	char headers[HEADERS_MAX];

	if ((out = sy_respond_body(x)) == NULL)
		out = sy_respond_body(x);	/* the 502 it became */
	x->req.status = x->reply.status;
	x->req.bytes_out = evbuffer_get_length(out);
	if (x->reply.status == 200 && x->respond.watch != NULL)
		tell(x, json_loadb((const char *)evbuffer_pullup(out, -1),
		    evbuffer_get_length(out), 0, NULL));
	if (x->conn != NULL) {
		sy_conn_respond(x->conn, x->reply.status, "application/json",
		    all_headers(x, headers, sizeof headers, x->reply.headers),
		    out);
		x->conn = NULL;
	}
	if (out != x->reply.body)
		evbuffer_free(out);
}

void
sy_respond_echo(struct sy_exchange *x, json_t *members)
{
	json_decref(x->respond.echo);
	x->respond.echo = members;
}

void
sy_respond_watch(struct sy_exchange *x,
    void (*fn)(struct sy_exchange *, json_t *))
{
	x->respond.watch = fn;
}

static enum sy_verdict
respond_enter(struct sy_exchange *x)
{
	if (x->sink != NULL) {
		x->req.status = x->reply.status;
		x->sink(x);
		return SY_DONE;
	}
	x->select.hold = 0;
	if (x->reply.body != NULL && !x->respond.started)
		reply_send(x);
	else
		sy_respond_end(x);
	return SY_DONE;
}

static void
respond_end(struct sy_exchange *x)
{
	if (x->respond.cstate != NULL) {
		x->client->stream_close(x->respond.cstate);
		sy_sse_free(&x->respond.csse);
		evbuffer_free(x->respond.cout);
	}
	if (x->respond.out != NULL)
		evbuffer_free(x->respond.out);
	free(x->respond.more_headers);
	json_decref(x->respond.echo);
}

const struct sy_stage sy_stage_respond = {
	.name = "respond",
	.enter = respond_enter,
	.end = respond_end
};
