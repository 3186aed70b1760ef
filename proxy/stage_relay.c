/* The relay stage: the backend adapter encodes the request, the upstream pool sends it, and what comes back is decoded (a whole answer) or translated event by event to the client (a stream), with backpressure; a failure before anything reached the client goes back to the tries. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "backend.h"
#include "canon.h"
#include "config.h"
#include "exchange.h"
#include "http1.h"
#include "respond.h"
#include "upstream.h"
#include "util.h"
#include "worker.h"

/* The largest whole (non-streamed) response body accepted from a backend. */
#define RESPONSE_MAX (64 * 1024 * 1024)

static void lost(struct sy_exchange *x, unsigned cond);
static void resp_free(struct sy_exchange *x);
static void hedge_stop(struct sy_exchange *x);
static void hedge_drop(struct sy_exchange *x, int failed);

/* Frees the current try's stream translation, if it had one. */
static void
stream_drop(struct sy_exchange *x)
{
	struct sy_relay_slice *r = &x->relay;
	const struct sy_backend_kind *kind;

	if (!r->streaming)
		return;
	kind = x->req.endpoint->kind;
	sy_framer_free(&r->framer);
	if (kind->stream_close != NULL)
		kind->stream_close(r->stream_state);
	r->stream_state = NULL;
	r->streaming = 0;
	r->stream_ended = 0;
}

/* Forgets what a try left for the client: held stream events, a reply. */
static void
drop_held(struct sy_exchange *x)
{
	if (x->respond.out != NULL)
		evbuffer_drain(x->respond.out,
		    evbuffer_get_length(x->respond.out));
	if (x->reply.body != NULL) {
		evbuffer_free(x->reply.body);
		x->reply.body = NULL;
	}
}

/* Abandons the call under way, if any. */
static void
cancel(struct sy_exchange *x)
{
	if (x->relay.call != NULL) {
		sy_upstream_cancel(x->relay.call);
		x->relay.call = NULL;
	}
}

/* The try failed before anything reached the client (cond: its SY_RETRY_ON_* class). */
static enum sy_verdict
failed(struct sy_exchange *x, unsigned cond)
{
	x->relay.failed = cond;
	return SY_RETRY;
}

/* Notes a transport failure for the client, should nothing else answer. */
static void
note_failure(struct sy_exchange *x, int status, const char *code,
    const char *msg)
{
	x->relay.transport_failed = 1;
	x->last.status = status;
	x->last.code = code;
	snprintf(x->last.msg, sizeof x->last.msg, "%s", msg);
}

/* The header line of the backend's Retry-After, or "". */
static const char *
retry_after(struct sy_exchange *x, char buf[static 64])
{
	snprintf(buf, 64, "%s%s%s", x->relay.retry_after[0] ?
	    "Retry-After: " : "", x->relay.retry_after,
	    x->relay.retry_after[0] ? "\r\n" : "");
	return buf;
}

/* ==== Before the first content ==== */

/* Stops the wait for the stream's first content, if it runs. */
static void
first_token_stop(struct sy_exchange *x)
{
	if (x->relay.first_token != NULL)
		evtimer_del(x->relay.first_token);
}

/*
 * The stream's try failed before anything of the answer reached the
 * client (x->last says how): its call ends, the events it held (the
 * head, a role-only chunk) are dropped, and the tries may send the
 * request elsewhere (cond: the failure's SY_RETRY_ON_* class).  The
 * client sees nothing of it.
 */
static void
fail_before_content(struct sy_exchange *x, unsigned cond)
{
	cancel(x);
	first_token_stop(x);
	sy_tries_done(x);
	drop_held(x);
	lost(x, cond);
}

/* retries.first_token_ms ran out before the stream told anything. */
static void
first_token_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sy_exchange *x = arg;
	char msg[128];

	(void)fd;
	(void)what;
	if (x->relay.call == NULL || x->relay.content || sy_respond_started(x))
		return;
	snprintf(msg, sizeof msg, "no first token from the backend within "
	    "retries.first_token_ms (%u ms)", x->req.route->retry.first_token_ms);
	note_failure(x, 504, "gateway_timeout", msg);
	fail_before_content(x, SY_RETRY_ON_FIRST_TOKEN);
}

/* Starts the wait for a stream's first content, when its route sets one. */
static void
first_token_start(struct sy_exchange *x)
{
	unsigned ms = x->req.route->retry.first_token_ms;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	if (!x->req.stream || ms == 0)
		return;
	if (x->relay.first_token == NULL)
		x->relay.first_token = evtimer_new(x->w->base, first_token_cb,
		    x);
	evtimer_add(x->relay.first_token, &tv);
}

/* ==== Streams ==== */

/* Whether the canonical events out gained past its first before bytes tell content. */
static int
gained_content(struct evbuffer *out, size_t before)
{
	size_t n = evbuffer_get_length(out) - before;

	return n > 0 && sy_canon_stream_content((const char *)evbuffer_pullup(
	    out, -1) + before, n, NULL, 0);
}

/*
 * One event of the backend's stream, translated into the canonical
 * events the client is to get.  Until the stream's first content they
 * are held; an error event then fails the try instead of reaching the
 * client.
 */
static int
on_event(const struct sy_sse_event *ev, void *arg)
{
	struct sy_exchange *x = arg;
	struct sy_relay_slice *r = &x->relay;
	struct evbuffer *out = sy_respond_events(x);
	size_t before = evbuffer_get_length(out), n;
	const char *added;
	char what[120], msg[200];

	if (r->stream_ended)
		return 0;
	switch (x->req.endpoint->kind->stream_event(r->stream_state,
	    &x->req, ev, out, &x->req.usage)) {
	case SY_STREAM_DONE:
		r->stream_ended = 1;
		break;
	case SY_STREAM_ERROR:
		r->stream_ended = 1;
		if (r->content || sy_respond_started(x)) {
			sy_exchange_error(x, "backend sent an error event "
			    "mid-stream");
			break;
		}
		n = evbuffer_get_length(out) - before;
		added = (const char *)evbuffer_pullup(out, -1) + before;
		sy_canon_stream_content(added, n, what, sizeof what);
		snprintf(msg, sizeof msg, "backend stream failed before its "
		    "first token: %s", what[0] ? what : "an error event");
		note_failure(x, 502, "bad_gateway", msg);
		r->early_error = 1;
		break;
	case SY_STREAM_FORWARD:
		x->req.streamed_events += ev->data != NULL;
		if (!r->content && gained_content(out, before))
			r->content = 1;
		break;
	default:
		break;
	}
	return 0;
}

/* Sends the events translated so far, pausing the backend for a slow client. */
static void
flush(struct sy_exchange *x)
{
	if (sy_respond_flush(x) && !x->relay.paused && x->relay.call != NULL) {
		x->relay.paused = 1;
		sy_upstream_pause(x->relay.call, 1);
	}
}

/*
 * The stream ended without its last event (the backend closed early, or
 * a read failed): the client is told with an error event, and the log.
 */
static void
stream_cut(struct sy_exchange *x, const char *code, const char *msg)
{
	sy_exchange_error(x, msg);
	sy_canon_stream_error(sy_respond_events(x), code, msg);
	x->relay.stream_ended = 1;
}

/* ==== Backend callbacks ==== */

static void
on_head(void *arg, const struct sy_http1_msg *head)
{
	struct sy_exchange *x = arg;
	struct sy_relay_slice *r = &x->relay;
	const struct sy_backend_kind *kind = x->req.endpoint->kind;
	const char *ct = sy_http1_header(head, "content-type");
	const char *ra = sy_http1_header(head, "retry-after");

	r->status = head->status;
	/* Retry-After in seconds is passed on to the client. */
	if (ra != NULL && *ra != '\0' && strspn(ra, "0123456789") == strlen(ra))
		snprintf(r->retry_after, sizeof r->retry_after, "%s", ra);
	if (x->req.stream && head->status == 200 && ct != NULL &&
	    kind->framing->is_stream(ct)) {
		r->streaming = 1;
		sy_framer_init(&r->framer, kind->framing, 0);
		r->stream_state = kind->stream_open != NULL ?
		    kind->stream_open(&x->req) : NULL;
		sy_respond_events(x);
	} else
		r->resp = evbuffer_new();
}

static void stream_fed(struct sy_exchange *x);

static void
on_body(void *arg, struct evbuffer *data)
{
	struct sy_exchange *x = arg;
	struct sy_relay_slice *r = &x->relay;
	size_t len = evbuffer_get_length(data);

	if (!r->streaming) {
		evbuffer_add_buffer(r->resp, data);
		r->held += len;
		if (atomic_fetch_add(&x->w->rt->buffered, len) + len >
		    x->req.cfg->limits.max_buffered_bytes) {
			cancel(x);
			r->transport_failed = 1;
			sy_drive(x, sy_exchange_fail(x, 503, "server_error",
			    "overloaded", "the gateway holds too many answers "
			    "now (limits.max_buffered_bytes)", "Retry-After: 1\r\n"));
		} else if (evbuffer_get_length(r->resp) > RESPONSE_MAX) {
			cancel(x);
			r->transport_failed = 1;
			sy_drive(x, sy_exchange_fail(x, 502, "server_error",
			    "bad_gateway", "backend response is larger than "
			    "the limit", NULL));
		}
		return;
	}
	if (sy_framer_feed(&r->framer, (const char *)evbuffer_pullup(data, -1),
	    len, on_event, x) < 0) {
		evbuffer_drain(data, len);
		cancel(x);
		r->transport_failed = 1;
		stream_cut(x, "bad_gateway",
		    "backend stream event is larger than the limit");
		sy_drive(x, SY_RESPOND);
		return;
	}
	evbuffer_drain(data, len);
	stream_fed(x);
}

/*
 * The stream's events so far are translated: held while they tell
 * nothing, sent to the client from the first content on, checked at the
 * end of a held answer.
 */
static void
stream_fed(struct sy_exchange *x)
{
	struct sy_relay_slice *r = &x->relay;

	if (r->early_error) {
		fail_before_content(x, SY_RETRY_ON_5XX);
		return;
	}
	if (r->content || r->stream_ended) {
		first_token_stop(x);
		hedge_stop(x);	/* this try won the race, if there was one */
	}
	if (r->stream_ended && x->select.hold) {
		/* A held answer is checked at its last event, not when the
		   backend ends its response (which it may do late). */
		cancel(x);
		sy_tries_done(x);
		sy_drive(x, SY_ANSWER);
		return;
	}
	/* Nothing of the answer yet: the client gets nothing either. */
	if (!r->content && !r->stream_ended)
		return;
	flush(x);
	/* The client has its whole answer now; the backend may linger. */
	if (r->stream_ended)
		sy_respond_end(x);
}

/* A whole response arrived: decoded, or a failure the tries may retry. */
static enum sy_verdict
whole(struct sy_exchange *x)
{
	struct sy_relay_slice *r = &x->relay;
	struct sy_req *req = &x->req;
	struct evbuffer *out;
	char *err = NULL, ra[64];
	int retryable;

	/* The backend refused the gateway's own credentials: its body may
	   echo them, so the client hears only that (with the client's own
	   key, forward_client_key, the refusal is the client's to read). */
	if ((r->status == 401 || r->status == 403) &&
	    !req->endpoint->forward_client_key) {
		snprintf(ra, sizeof ra, "backend refused the gateway's "
		    "credentials (%d)", r->status);
		note_failure(x, 502, "bad_gateway", ra);
		return failed(x, SY_RETRY_ON_5XX);
	}
	out = evbuffer_new();
	/* 529: Anthropic's "overloaded", a 503 by another name. */
	retryable = r->status == 429 || (r->status >= 500 && r->status <= 504) ||
	    r->status == 529;
	if (req->endpoint->kind->decode(req, r->status, r->resp, out,
	    &req->usage, &err) != 0) {
		evbuffer_free(out);
		note_failure(x, 502, "bad_gateway", err);
		free(err);
		return failed(x, SY_RETRY_ON_5XX);
	}
	sy_exchange_reply(x, r->status, out, retry_after(x, ra));
	if (retryable)
		return failed(x, r->status == 429 ? SY_RETRY_ON_429 :
		    SY_RETRY_ON_5XX);
	if (r->status >= 400)
		sy_exchange_error(x, "backend returned an error");
	return SY_ANSWER;
}

static void
on_done(void *arg)
{
	struct sy_exchange *x = arg;
	struct sy_relay_slice *r = &x->relay;
	enum sy_verdict v;

	r->call = NULL;
	first_token_stop(x);
	if (!r->streaming) {
		sy_tries_done(x);
		if ((v = whole(x)) == SY_RETRY && r->hedge != NULL) {
			r->failed = 0;
			lost(x, 0);
			return;
		}
		hedge_stop(x);
		sy_drive(x, v);
		return;
	}
	if (!r->stream_ended)
		sy_framer_finish(&r->framer, on_event, x);
	if (r->early_error || (!r->stream_ended && !r->content &&
	    !sy_respond_started(x))) {
		if (!r->early_error)
			note_failure(x, 502, "bad_gateway", "backend stream "
			    "ended before its first token");
		fail_before_content(x, SY_RETRY_ON_5XX);
		return;
	}
	sy_tries_done(x);
	if (!r->stream_ended)
		stream_cut(x, "bad_gateway",
		    "backend stream ended without its last event");
	sy_drive(x, SY_ANSWER);
}

static void
on_error(void *arg, enum sy_upstream_error e, const char *msg)
{
	struct sy_exchange *x = arg;
	struct sy_relay_slice *r = &x->relay;
	int timeout = e == SY_UP_TIMEOUT;

	r->call = NULL;
	first_token_stop(x);
	r->transport_failed = !(x->select.hold && r->stream_ended);
	sy_tries_done(x);
	if (x->select.hold && r->stream_ended) {
		/* A held answer was whole at its last event. */
		sy_drive(x, SY_ANSWER);
		return;
	}
	if (sy_respond_started(x)) {
		/* After [DONE] the client has its answer: not an error. */
		if (!r->stream_ended)
			stream_cut(x, timeout ? "gateway_timeout" :
			    "bad_gateway", msg);
		sy_drive(x, SY_RESPOND);
		return;
	}
	note_failure(x, timeout ? 504 : 502, timeout ? "gateway_timeout" :
	    "bad_gateway", msg);
	lost(x, timeout ? SY_RETRY_ON_TIMEOUT : e == SY_UP_PROTOCOL ?
	    SY_RETRY_ON_5XX : SY_RETRY_ON_CONNECT);
}

static const struct sy_upstream_cbs upstream_cbs = {
	.on_head = on_head,
	.on_body = on_body,
	.on_done = on_done,
	.on_error = on_error
};

/* ==== Hedging ==== */

static struct sy_upstream_call *send_to(struct sy_exchange *x,
    struct sy_endpoint *ep, const struct sy_upstream_cbs *cbs, void *arg,
    char **err);

/*
 * Ends the hedge, if one runs, without its answer (failed: it failed,
 * rather than lost the race): its connection is closed and its endpoint's
 * slot goes back.
 */
static void
hedge_drop(struct sy_exchange *x, int failed)
{
	struct sy_hedge *h = x->relay.hedge;
	const struct sy_backend_kind *kind;

	if (h == NULL)
		return;
	x->relay.hedge = NULL;
	kind = h->endpoint->kind;
	if (h->call != NULL)
		sy_upstream_cancel(h->call);
	sy_tries_hedge_done(x, h->endpoint, h->t_try, h->status, failed);
	/* A retry goes elsewhere than a hedge that failed. */
	if (failed && x->req.ntried < SY_MAX_TRIES)
		x->req.tried[x->req.ntried++] = h->endpoint;
	if (h->streaming) {
		sy_framer_free(&h->framer);
		if (kind->stream_close != NULL)
			kind->stream_close(h->stream_state);
	}
	evbuffer_free(h->out);
	free(h);
}

/* The first try answers: no hedge is sent, a running one is cancelled. */
static void
hedge_stop(struct sy_exchange *x)
{
	if (x->relay.hedge_timer != NULL)
		evtimer_del(x->relay.hedge_timer);
	hedge_drop(x, 0);
}

/*
 * The hedge answers: the first try's call is cancelled (its connection
 * closed), and the hedge becomes the exchange's try, its call, stream and
 * held events the relay's own; with feed, its events so far go on as a
 * stream's do.
 */
static void
hedge_adopt(struct sy_exchange *x, int feed)
{
	struct sy_relay_slice *r = &x->relay;
	struct sy_hedge *h = r->hedge;
	struct sy_req *req = &x->req;

	r->hedge = NULL;
	if (r->hedge_timer != NULL)
		evtimer_del(r->hedge_timer);
	cancel(x);
	first_token_stop(x);
	sy_tries_done(x);
	if (req->ntried < SY_MAX_TRIES)
		req->tried[req->ntried++] = req->endpoint;
	resp_free(x);
	stream_drop(x);
	drop_held(x);
	req->endpoint = h->endpoint;
	req->usage = h->usage;
	req->hedge = "hedge_won";
	x->tries.counted = 1;
	x->tries.t_try = h->t_try;
	r->status = h->status;
	r->transport_failed = 0;
	r->retry_after[0] = '\0';
	r->failed = 0;
	/* A hedge without its head yet gets it through on_head now. */
	if ((r->streaming = h->streaming)) {
		r->framer = h->framer;
		r->stream_state = h->stream_state;
	}
	r->stream_ended = h->ended;
	r->content = h->content;
	r->early_error = 0;
	r->paused = 0;
	if ((r->call = h->call) != NULL)
		sy_upstream_rebind(r->call, &upstream_cbs, x);
	evbuffer_add_buffer(sy_respond_events(x), h->out);
	evbuffer_free(h->out);
	free(h);
	if (!r->content)
		first_token_start(x);
	else if (feed)
		stream_fed(x);
}

/*
 * The try failed before anything reached the client (its SY_RETRY_ON_*
 * class cond; x->last says how): a hedge that runs takes over, else the
 * tries may retry elsewhere.
 */
static void
lost(struct sy_exchange *x, unsigned cond)
{
	if (x->relay.hedge != NULL) {
		hedge_adopt(x, 1);
		return;
	}
	sy_drive(x, failed(x, cond));
}

static void
hedge_on_head(void *arg, const struct sy_http1_msg *head)
{
	struct sy_hedge *h = arg;
	const struct sy_backend_kind *kind = h->endpoint->kind;
	const char *ct = sy_http1_header(head, "content-type");

	h->status = head->status;
	if (head->status != 200 || ct == NULL || !kind->framing->is_stream(ct)) {
		/* Only a stream races: an error or a whole answer is out. */
		hedge_drop(h->x, head->status >= 500);
		return;
	}
	h->streaming = 1;
	sy_framer_init(&h->framer, kind->framing, 0);
	h->stream_state = kind->stream_open != NULL ?
	    kind->stream_open(&h->x->req) : NULL;
}

static int
hedge_on_event(const struct sy_sse_event *ev, void *arg)
{
	struct sy_hedge *h = arg;
	size_t before = evbuffer_get_length(h->out);

	if (h->ended)
		return 0;
	switch (h->endpoint->kind->stream_event(h->stream_state, &h->x->req,
	    ev, h->out, &h->usage)) {
	case SY_STREAM_DONE:
		h->ended = h->content = 1;
		break;
	case SY_STREAM_ERROR:
		h->ended = 1;
		if (!h->content)
			h->failed = 1;
		else
			sy_exchange_error(h->x, "backend sent an error event "
			    "mid-stream");
		break;
	case SY_STREAM_FORWARD:
		if (!h->content && gained_content(h->out, before))
			h->content = 1;
		break;
	default:
		break;
	}
	return 0;
}

static void
hedge_on_body(void *arg, struct evbuffer *data)
{
	struct sy_hedge *h = arg;
	size_t len = evbuffer_get_length(data);

	if (sy_framer_feed(&h->framer, (const char *)evbuffer_pullup(data, -1),
	    len, hedge_on_event, h) < 0)
		h->failed = 1;
	evbuffer_drain(data, len);
	if (h->failed)
		hedge_drop(h->x, 1);
	else if (h->content)
		hedge_adopt(h->x, 1);
}

static void
hedge_on_done(void *arg)
{
	struct sy_hedge *h = arg;
	struct sy_exchange *x = h->x;

	h->call = NULL;
	if (h->streaming && !h->ended)
		sy_framer_finish(&h->framer, hedge_on_event, h);
	if (!h->content || h->failed) {
		hedge_drop(x, 1);
		return;
	}
	/* It told content at its very end: it answers, and is over. */
	hedge_adopt(x, 0);
	on_done(x);
}

static void
hedge_on_error(void *arg, enum sy_upstream_error e, const char *msg)
{
	struct sy_hedge *h = arg;

	(void)e;
	(void)msg;
	h->call = NULL;
	hedge_drop(h->x, 1);
}

static const struct sy_upstream_cbs hedge_cbs = {
	.on_head = hedge_on_head,
	.on_body = hedge_on_body,
	.on_done = hedge_on_done,
	.on_error = hedge_on_error
};

/* retries.hedge_after_ms passed without content: a second try, beside. */
static void
hedge_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sy_exchange *x = arg;
	struct sy_relay_slice *r = &x->relay;
	struct sy_endpoint *ep;
	struct sy_hedge *h;
	char *err = NULL;

	(void)fd;
	(void)what;
	if (r->call == NULL || r->content || r->hedge != NULL ||
	    sy_respond_started(x) || (ep = sy_tries_hedge_pick(x)) == NULL)
		return;
	h = sy_xcalloc(1, sizeof *h);
	h->x = x;
	h->endpoint = ep;
	h->t_try = sy_now_us();
	h->out = evbuffer_new();
	h->usage.prompt_tokens = h->usage.completion_tokens =
	    h->usage.cached_tokens = -1;
	r->hedge = h;
	x->req.hedge = "first_won";
	if ((h->call = send_to(x, ep, &hedge_cbs, h, &err)) == NULL) {
		free(err);
		hedge_drop(x, 0);
		x->req.hedge = NULL;
	}
}

/* Starts the wait for a hedge, when the route hedges and none was sent. */
static void
hedge_start(struct sy_exchange *x)
{
	unsigned ms = x->req.route->retry.hedge_after_ms;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	if (!x->req.stream || ms == 0 || x->req.hedge != NULL)
		return;
	if (x->relay.hedge_timer == NULL)
		x->relay.hedge_timer = evtimer_new(x->w->base, hedge_cb, x);
	evtimer_add(x->relay.hedge_timer, &tv);
}

/* ==== Sending ==== */

/* Bytes of client headers passed on to a backend, at most. */
#define FORWARD_MAX 2048

/* The API key the client presented (Bearer or x-api-key), or NULL. */
static const char *
client_key(const struct sy_http1_msg *head)
{
	const char *v;

	if (head == NULL)
		return NULL;
	if ((v = sy_http1_header(head, "authorization")) != NULL &&
	    strncasecmp(v, "Bearer ", 7) == 0)
		return v + 7;
	return sy_http1_header(head, "x-api-key");
}

/*
 * Appends the client's headers that ep passes on (its forward_headers)
 * at o, within len bytes (those that do not fit are left out); returns
 * the end.
 */
static char *
forwarded(const struct sy_endpoint *ep, const struct sy_http1_msg *head,
    char *o, size_t len)
{
	const char *v;
	size_t i, n;

	for (i = 0; head != NULL && i < ep->nforward_headers; i++) {
		if ((v = sy_http1_header(head, ep->forward_headers[i])) == NULL)
			continue;
		n = strlen(ep->forward_headers[i]) + 2 + strlen(v) + 2;
		if (n + 1 > len)
			break;
		o = sy_put_str(o, ep->forward_headers[i]);
		o = sy_put_str(SY_PUT_LIT(o, ": "), v);
		o = SY_PUT_LIT(o, "\r\n");
		len -= n;
	}
	return o;
}

/* Frees a whole response's body and gives its bytes back to the global cap. */
static void
resp_free(struct sy_exchange *x)
{
	struct sy_relay_slice *r = &x->relay;

	if (r->resp == NULL)
		return;
	atomic_fetch_sub(&x->w->rt->buffered, r->held);
	r->held = 0;
	evbuffer_free(r->resp);
	r->resp = NULL;
}

/* Forgets what an earlier try left. */
static void
try_reset(struct sy_exchange *x)
{
	struct sy_relay_slice *r = &x->relay;

	r->status = 0;
	r->transport_failed = 0;
	r->retry_after[0] = '\0';
	r->content = 0;
	r->early_error = 0;
	first_token_stop(x);
	hedge_stop(x);
	resp_free(x);
	stream_drop(x);
	/* What a try that failed before its first token counted. */
	x->req.streamed_events = 0;
	x->req.usage.prompt_tokens = x->req.usage.completion_tokens =
	    x->req.usage.cached_tokens = -1;
	drop_held(x);
}

/*
 * Encodes x's request for ep and sends it, its callbacks cbs with arg.
 * Returns the call, or NULL with *err (malloc'd) when ep's kind cannot
 * express the request.
 */
static struct sy_upstream_call *
send_to(struct sy_exchange *x, struct sy_endpoint *ep,
    const struct sy_upstream_cbs *cbs, void *arg, char **err)
{
	struct sy_req *req = &x->req;
	struct sy_endpoint byok;
	const struct sy_endpoint *enc = ep;	/* whose key encode sends */
	struct sy_timeouts t = req->cfg->timeouts;
	struct sy_upstream_req up;
	struct sy_upstream_call *call;
	struct evbuffer *encoded = evbuffer_new();
	char *o, headers[sizeof up.headers + 128 + FORWARD_MAX],
	    target[SY_BASE_PATH_MAX + sizeof up.path];
	uint64_t now = sy_now_us();

	memset(&up, 0, sizeof up);
	if (ep->forward_client_key) {
		/* Bring your own key: the client's, in the kind's header. */
		byok = *ep;
		byok.api_key = (char *)client_key(req->head);
		enc = &byok;
	}
	if (ep->kind->encode(req, enc, encoded, &up, err) != 0) {
		evbuffer_free(encoded);
		return NULL;
	}
	/* A try may not outlive the request's deadline. */
	if (x->deadline > now && (x->deadline - now) / 1000 < t.total_ms)
		t.total_ms = (unsigned)((x->deadline - now) / 1000) + 1;
	o = sy_put_str(SY_PUT_LIT(headers, "X-Request-Id: "), req->id);
	o = sy_put_str(SY_PUT_LIT(o, "\r\nAccept: "), !req->stream ?
	    "application/json" : ep->kind->framing->accept);
	o = sy_put_str(SY_PUT_LIT(o, "\r\n"), up.headers);
	*forwarded(ep, req->head, o, headers + sizeof headers - o) = '\0';
	o = sy_put_str(target, ep->base_path);
	*sy_put_str(o, up.path) = '\0';
	if (req->t_upstream == 0)
		req->t_upstream = now;
	call = sy_upstream_send(x->w->upstream, ep, &t, "POST", target,
	    headers, encoded, cbs, arg);
	evbuffer_free(encoded);
	return call;
}

/* Encodes the request for its endpoint (whose slot it holds) and sends it. */
static enum sy_verdict
relay_enter(struct sy_exchange *x)
{
	struct sy_endpoint *ep = x->req.endpoint;
	char *err = NULL;

	try_reset(x);
	if ((x->relay.call = send_to(x, ep, &upstream_cbs, x, &err)) == NULL) {
		/* Not a try: the endpoint's slot goes back untold. */
		sy_endstats_leave(ep->stats, sy_now_us());
		x->tries.counted = 0;
		sy_exchange_fail(x, 400, "invalid_request_error", NULL, err,
		    NULL);
		free(err);
		return SY_RESPOND;
	}
	first_token_start(x);
	hedge_start(x);
	return SY_WAIT;
}

static void
relay_end(struct sy_exchange *x)
{
	cancel(x);
	resp_free(x);
	stream_drop(x);
	if (x->relay.first_token != NULL)
		event_free(x->relay.first_token);
	hedge_drop(x, 0);
	if (x->relay.hedge_timer != NULL)
		event_free(x->relay.hedge_timer);
}

const struct sy_stage sy_stage_relay = {
	.name = "relay",
	.enter = relay_enter,
	.end = relay_end
};
