/* The request's path, in one direction: parse → route → select model → cache lookup → batcher → pick endpoint → encode → upstream → decode or relay → cache store → account → respond; with retries, fallbacks and a wait queue on the way. */
#include <sys/queue.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "canon.h"
#include "accesslog.h"
#include "backend.h"
#include "batch.h"
#include "cache.h"
#include "clientapi.h"
#include "config.h"
#include "http1.h"
#include "metrics.h"
#include "models.h"
#include "outlier.h"
#include "policy.h"
#include "req.h"
#include "select.h"
#include "server.h"
#include "framing.h"
#include "upstream.h"
#include "util.h"
#include "worker.h"

/* A streamed response pauses the backend while this much waits for the client. */
#define STREAM_BACKLOG_MAX (1024 * 1024)
/* The largest whole (non-streamed) response body accepted from a backend. */
#define RESPONSE_MAX (64 * 1024 * 1024)
/* Routes one request may visit: its own and its fallbacks. */
#define MAX_ROUTES 9
/* The retry budget's window. */
#define BUDGET_WINDOW_US (10 * 1000000ULL)
/* How often waiting requests look for capacity other workers freed. */
#define QUEUE_POLL_MS 2

/* One client exchange on its way through the pipeline. */
struct exchange {
	struct sy_req req;
	struct sy_worker *w;
	struct sy_conn *conn;		/* NULL once the client is gone */
	struct sy_upstream_call *call;	/* NULL when no backend call runs */
	struct event *timer;		/* a retry's backoff, or the queue deadline */
	TAILQ_ENTRY(exchange) qlink;	/* in the worker's wait queue */
	TAILQ_ENTRY(exchange) blink;	/* a batch's call: in the worker's list */
	int queued;
	uint64_t t_queued;
	uint64_t deadline;		/* monotonic µs: the whole request */
	uint64_t t_try;			/* this try's start */
	char method[sizeof ((struct sy_http1_msg *)0)->method];
	char *path;
	char headers[400];		/* extra response headers: headers_of */
	const char *header_model;	/* for X-Switchyard-Model, or NULL */
	const char *cache_word;		/* for X-Switchyard-Cache, or NULL */
	char answered_model[128];	/* the model its batch's fallback took */
	int batch_answered;		/* its batch's part has arrived */
	struct sy_cache_ctx *cache;	/* the prompt cache's part, or NULL */
	struct evbuffer *replay;	/* a paced cache hit's events still to send */
	struct sy_models_ask *models;	/* GET /v1/models asking the backends */

	/* The current try. */
	int counted;			/* it holds one of the endpoint's slots */
	int upstream_status;
	int transport_failed;		/* it ended in a transport error */
	char retry_after[32];		/* the backend's Retry-After, or "" */
	struct evbuffer *resp;		/* whole response body */
	struct sy_framer framer;	/* splits the backend's stream */
	void *stream_state;		/* the adapter's, for this stream */
	struct evbuffer *out;		/* events translated for the client */
	int streaming;
	int stream_started;
	int stream_ended;		/* terminal or error event relayed */
	int paused;
	int holding;			/* a stream held back until its answer
					   is checked (model selection) */

	/* Why the last try failed, told to the client when nothing else works. */
	int last_status;
	const char *last_code;
	char last_msg[200];

	/* A client speaking another API than OpenAI's (NULL: OpenAI). */
	const struct sy_client_api *client;
	struct evbuffer *canon;		/* its request in the canonical form */
	void *cstate;			/* its stream translation */
	struct sy_sse csse;		/* splits canonical events for it */
	struct evbuffer *cout;		/* its events */

	/* Routes taken: the client's, then fallbacks. */
	struct sy_route *first_route;
	size_t next_fallback;
	const struct sy_route *visited[MAX_ROUTES];
	unsigned nvisited;

	/* Batching (proxy/batch.c). */
	struct sy_batch_member *member;	/* its place in its route's batcher */
	struct sy_batch *batch;		/* the batch this exchange is the call of,
					   until it answers */
	int batch_call;			/* it is a batch's call, not a client's */
};

/* Requests of one worker waiting for a free endpoint, oldest first. */
struct sy_waitq {
	TAILQ_HEAD(, exchange) list;
	size_t n;
	struct event *poll;
	TAILQ_HEAD(, exchange) batch_calls;	/* batches this worker sent */
};

static void try_next(struct exchange *x);
static void batch_done(struct exchange *x, int status, struct evbuffer *body,
    const char *headers);
static void start_route(struct exchange *x, struct sy_route *route,
    const char *name);
static void new_request_id(struct sy_worker *w, char buf[static 21]);
static void batch_delivered(void *owner, const struct sy_batch_result *r);
static void batch_send(void *arg, struct sy_batch *bt);
static void replay_next(struct exchange *x);
static void to_backend(struct exchange *x);
static void use_model(struct exchange *x, const char *model);
static const char *headers_of(struct exchange *x);
static void cache_header(struct exchange *x, const char *word);
static void fallback_or_give_up(struct exchange *x);
static const char *escalation_target(const struct sy_req *req);
static int maybe_escalate(struct exchange *x, int status,
    struct evbuffer *data, int stream);
static void waitq_remove(struct exchange *x);
static void waitq_kick(struct sy_worker *w);

/* ==== Ending an exchange ==== */

/* Whether someone waits for x's answer: its client, or its batch's members. */
static int
waiting(const struct exchange *x)
{
	return x->conn != NULL || x->batch != NULL;
}

/*
 * Ends the current try: gives back the endpoint's slot and tells the
 * routing policy and the outlier detector how it went.
 */
static void
end_try(struct exchange *x)
{
	struct sy_req *req = &x->req;
	int failed = x->transport_failed || x->upstream_status >= 500;
	uint64_t took = sy_now_us() - x->t_try;
	struct sy_outcome outcome = {
		.status = x->transport_failed ? 0 : x->upstream_status,
		.latency_us = took,
		.ttft_us = req->t_first_byte && req->t_first_byte > x->t_try ?
		    req->t_first_byte - x->t_try : 0
	};

	if (!x->counted)
		return;
	x->counted = 0;
	req->upstream_us += took;
	atomic_fetch_sub(&req->endpoint->stats->in_flight, 1);
	if (req->route->policy->observe != NULL)
		req->route->policy->observe(req->pool->policy_state,
		    req->endpoint, &outcome);
	if (req->route->selection->observe != NULL)
		req->route->selection->observe(req->route->selection_state,
		    req->model, &outcome);
	sy_outlier_observe(req->route, req->pool, req->endpoint, failed);
	if (x->upstream_status == 429)
		sy_outlier_rest(req->endpoint, x->retry_after[0] ?
		    (unsigned)atoi(x->retry_after) : 1);
	waitq_kick(x->w);
}

/* Frees the current try's stream relay, if it had one. */
static void
stream_drop(struct exchange *x)
{
	const struct sy_backend_kind *kind;

	if (x->out != NULL) {
		evbuffer_free(x->out);
		x->out = NULL;
	}
	if (!x->streaming)
		return;
	kind = x->req.endpoint->kind;
	sy_framer_free(&x->framer);
	if (kind->stream_close != NULL)
		kind->stream_close(x->stream_state);
	x->stream_state = NULL;
	x->streaming = 0;
}

/* Logs and counts the exchange, releases what it holds, frees it. */
static void
finish(struct exchange *x)
{
	struct sy_req *req = &x->req;
	struct sy_record rec;

	end_try(x);
	if (x->queued)
		waitq_remove(x);
	if (x->timer != NULL)
		event_free(x->timer);
	if (x->member != NULL)
		sy_batch_release(x->member);
	if (x->batch_call)
		TAILQ_REMOVE(&x->w->waitq->batch_calls, x, blink);
	/* A batch's call is logged in its members' lines. */
	if (!x->batch_call) {
		sy_req_record(req, &rec);
		sy_cache_end(x->cache, req, &rec);	/* the cache's accounting */
		rec.method = x->method;
		rec.path = x->path;
		sy_accesslog_write(x->w->rt->log, &rec);
		sy_metrics_record(x->w->metrics, &rec);
	}
	if (x->resp != NULL)
		evbuffer_free(x->resp);
	stream_drop(x);
	if (x->cstate != NULL) {
		x->client->stream_close(x->cstate);
		sy_sse_free(&x->csse);
		evbuffer_free(x->cout);
	}
	if (x->canon != NULL)
		evbuffer_free(x->canon);
	if (x->replay != NULL)
		evbuffer_free(x->replay);
	sy_models_cancel(x->models);
	free(x->path);
	sy_req_clear(req);
	free(x);
}

/* Notes why the exchange failed, for the log (first reason wins). */
static void
set_error(struct exchange *x, const char *msg)
{
	if (x->req.error == NULL)
		x->req.error = sy_xstrdup(msg);
}

/* Answers the client with an error (in its API's shape) and ends the exchange. */
static void
fail(struct exchange *x, int status, const char *type, const char *code,
    const char *message, const char *more_headers)
{
	char headers[512];
	struct evbuffer *body;

	set_error(x, message);
	x->req.status = status;
	if (x->batch != NULL) {
		body = evbuffer_new();
		sy_canon_error_body(body, status, type, code, message);
		batch_done(x, status, body, more_headers);
		evbuffer_free(body);
	} else if (x->conn != NULL) {
		snprintf(headers, sizeof headers, "%s%s", headers_of(x),
		    more_headers ? more_headers : "");
		if (x->client == NULL) {
			x->req.bytes_out = 0;
			sy_respond_error(x->conn, status, type, code, message,
			    headers);
		} else {
			body = evbuffer_new();
			x->client->error(body, status, type, code, message);
			x->req.bytes_out = evbuffer_get_length(body);
			sy_conn_respond(x->conn, status, "application/json",
			    headers, body);
			evbuffer_free(body);
		}
	}
	finish(x);
}

/*
 * Turns a canonical answer body (status) into the client's API: an answer
 * through its response translator, an OpenAI error into its error shape.
 * Returns the body to send (body itself for OpenAI clients), or NULL after
 * answering a 502 when the answer cannot be translated.
 */
static struct evbuffer *
client_body(struct exchange *x, int status, struct evbuffer *body)
{
	struct evbuffer *out;
	json_t *obj, *e;
	char *err = NULL;

	if (x->client == NULL)
		return body;
	out = evbuffer_new();
	if (status < 400) {
		if (x->client->response(body, x->req.client_model, out,
		    &err) == 0)
			return out;
		evbuffer_free(out);
		fail(x, 502, "server_error", "bad_gateway", err, NULL);
		free(err);
		return NULL;
	}
	obj = json_loadb((const char *)evbuffer_pullup(body, -1),
	    evbuffer_get_length(body), 0, NULL);
	e = json_object_get(obj, "error");
	x->client->error(out, status,
	    json_string_value(json_object_get(e, "type")),
	    json_string_value(json_object_get(e, "code")),
	    json_is_string(json_object_get(e, "message")) ?
	    json_string_value(json_object_get(e, "message")) :
	    "the backend returned an error");
	json_decref(obj);
	return out;
}

/* Answers with body (a JSON document, canonical) and ends the exchange. */
static void
respond_body(struct exchange *x, int status, struct evbuffer *body,
    const char *more_headers)
{
	struct evbuffer *out;
	char headers[512];

	if (x->batch != NULL) {
		x->req.status = status;
		batch_done(x, status, body, more_headers);
		finish(x);
		return;
	}
	if ((out = client_body(x, status, body)) == NULL)
		return;
	snprintf(headers, sizeof headers, "%s%s", headers_of(x),
	    more_headers ? more_headers : "");
	x->req.status = status;
	x->req.bytes_out = evbuffer_get_length(out);
	if (x->conn != NULL)
		sy_conn_respond(x->conn, status, "application/json", headers,
		    out);
	if (out != body)
		evbuffer_free(out);
	finish(x);
}

/* ==== Relaying a stream ==== */

static int
on_client_event(const struct sy_sse_event *ev, void *arg)
{
	struct exchange *x = arg;

	x->client->stream_event(x->cstate, ev, x->cout);
	return 0;
}

/*
 * The events to send: x->out as it is for OpenAI clients, else translated
 * into the client's API (x->out drained).
 */
static struct evbuffer *
client_events(struct exchange *x)
{
	size_t len = evbuffer_get_length(x->out);

	if (x->client == NULL)
		return x->out;
	if (x->cstate == NULL) {
		x->cstate = x->client->stream_open(x->req.client_model);
		sy_sse_init(&x->csse, 0);
		x->cout = evbuffer_new();
	}
	if (len > 0)
		sy_sse_feed(&x->csse, (const char *)evbuffer_pullup(x->out, -1),
		    len, on_client_event, x);
	evbuffer_drain(x->out, len);
	return x->cout;
}

/* Sends what x->out holds to the client, starting the response if needed. */
static void
stream_flush(struct exchange *x)
{
	size_t len = evbuffer_get_length(x->out);
	struct evbuffer *out;

	if (x->holding && len > RESPONSE_MAX)
		x->holding = 0;		/* too long to hold: relayed as it is */
	if (len == 0 || x->conn == NULL || x->holding)
		return;
	if (!x->stream_started) {
		x->stream_started = 1;
		x->req.status = 200;
		x->req.t_first_byte = sy_now_us();
		sy_conn_stream_start(x->conn, 200, "text/event-stream",
		    headers_of(x));
	}
	sy_cache_capture(x->cache, &x->req, x->out);	/* cache store, streams */
	out = client_events(x);
	x->req.bytes_out += evbuffer_get_length(out);
	sy_conn_stream_write(x->conn, out);
	if (!x->paused && sy_conn_pending(x->conn) > STREAM_BACKLOG_MAX &&
	    x->call != NULL) {
		x->paused = 1;
		sy_upstream_pause(x->call, 1);
	}
}

/*
 * Ends the client's stream (the exchange may still wait for the backend to
 * end its response, for the connection's sake).
 */
static void
client_end(struct exchange *x)
{
	size_t len = x->out != NULL ? evbuffer_get_length(x->out) : 0;
	struct evbuffer *out;

	if (x->conn == NULL)
		return;
	if (!x->stream_started) {
		x->stream_started = 1;
		x->req.status = 200;
		if (len > 0)
			x->req.t_first_byte = sy_now_us();
		sy_conn_stream_start(x->conn, 200, "text/event-stream",
		    headers_of(x));
	}
	if (x->out != NULL && x->streaming)
		sy_cache_capture(x->cache, &x->req, x->out);	/* cache store */
	out = x->out != NULL ? client_events(x) : NULL;
	x->req.bytes_out += out != NULL ? evbuffer_get_length(out) : 0;
	sy_conn_stream_end(x->conn, out);
	x->conn = NULL;
	x->req.t_end = sy_now_us();
}

/* Ends a relayed stream, whatever state it is in, and the exchange. */
static void
stream_end(struct exchange *x)
{
	client_end(x);
	finish(x);
}

static int
on_sse_event(const struct sy_sse_event *ev, void *arg)
{
	struct exchange *x = arg;
	const struct sy_backend_kind *kind = x->req.endpoint->kind;

	if (x->stream_ended)
		return 0;
	switch (kind->stream_event(x->stream_state, &x->req, ev, x->out,
	    &x->req.usage)) {
	case SY_STREAM_DONE:
		x->stream_ended = 1;
		break;
	case SY_STREAM_ERROR:
		x->stream_ended = 1;
		set_error(x, "backend sent an error event mid-stream");
		break;
	default:
		break;
	}
	return 0;
}

/* ==== Backend callbacks ==== */

static void
on_head(void *arg, const struct sy_http1_msg *head)
{
	struct exchange *x = arg;
	const struct sy_backend_kind *kind = x->req.endpoint->kind;
	const char *ct = sy_http1_header(head, "content-type");
	const char *ra = sy_http1_header(head, "retry-after");

	x->upstream_status = head->status;
	x->holding = 0;
	/* Retry-After in seconds is passed on to the client. */
	if (ra != NULL && *ra != '\0' && strspn(ra, "0123456789") == strlen(ra))
		snprintf(x->retry_after, sizeof x->retry_after, "%s", ra);
	if (x->req.stream && head->status == 200 && ct != NULL &&
	    kind->framing->is_stream(ct)) {
		x->streaming = 1;
		sy_framer_init(&x->framer, kind->framing, 0);
		x->stream_state = kind->stream_open != NULL ?
		    kind->stream_open(&x->req) : NULL;
		x->out = evbuffer_new();
		/* An answer that may escalate is held until it is checked. */
		x->holding = escalation_target(&x->req) != NULL;
	} else
		x->resp = evbuffer_new();
}

/*
 * A held stream's last event arrived: its answer is checked now, not when
 * the backend ends its response (which it may do late).  The call is
 * dropped; the held events go to the client, or the request escalates.
 */
static void
held_stream_end(struct exchange *x)
{
	sy_upstream_cancel(x->call);
	x->call = NULL;
	if (maybe_escalate(x, 200, x->out, 1))
		return;
	x->holding = 0;
	stream_end(x);
}

static void
on_body(void *arg, struct evbuffer *data)
{
	struct exchange *x = arg;
	size_t len = evbuffer_get_length(data);

	if (!x->streaming) {
		evbuffer_add_buffer(x->resp, data);
		if (evbuffer_get_length(x->resp) > RESPONSE_MAX) {
			sy_upstream_cancel(x->call);
			x->call = NULL;
			x->transport_failed = 1;
			fail(x, 502, "server_error", "bad_gateway",
			    "backend response is larger than the limit", NULL);
		}
		return;
	}
	if (sy_framer_feed(&x->framer, (const char *)evbuffer_pullup(data, -1),
	    len, on_sse_event, x) < 0) {
		evbuffer_drain(data, len);
		sy_upstream_cancel(x->call);
		x->call = NULL;
		x->transport_failed = 1;
		set_error(x, "backend stream event is larger than the limit");
		sy_canon_stream_error(x->out, "bad_gateway",
		    "backend stream event is larger than the limit");
		stream_end(x);
		return;
	}
	evbuffer_drain(data, len);
	/* The client has its whole answer at [DONE]; the backend may linger. */
	if (x->stream_ended && x->holding)
		held_stream_end(x);
	else if (x->stream_ended)
		client_end(x);
	else
		stream_flush(x);
}

/*
 * The try failed before anything reached the client (cond: the
 * SY_RETRY_ON_* class of the failure): retry on another endpoint after a
 * jittered backoff when the route allows it, else a fallback, else tell the
 * client.
 */
static void try_failed(struct exchange *x, unsigned cond);

static void
on_done(void *arg)
{
	struct exchange *x = arg;
	struct sy_req *req = &x->req;
	struct evbuffer *out;
	char *err = NULL, ra[64];

	x->call = NULL;
	if (x->streaming) {
		if (!x->stream_ended)
			sy_framer_finish(&x->framer, on_sse_event, x);
		if (!x->stream_ended)
			set_error(x, "backend stream ended without its last event");
		if (x->holding && maybe_escalate(x, 200, x->out, 1))
			return;
		x->holding = 0;
		stream_end(x);
		return;
	}
	/* 529: Anthropic's "overloaded", a 503 by another name. */
	if (x->upstream_status == 429 || (x->upstream_status >= 500 &&
	    x->upstream_status <= 504) || x->upstream_status == 529) {
		try_failed(x, x->upstream_status == 429 ? SY_RETRY_ON_429 :
		    SY_RETRY_ON_5XX);
		return;
	}
	out = evbuffer_new();
	if (req->endpoint->kind->decode(req, x->upstream_status, x->resp, out,
	    &req->usage, &err) != 0) {
		evbuffer_free(out);
		x->transport_failed = 1;
		snprintf(x->last_msg, sizeof x->last_msg, "%s", err);
		free(err);
		x->last_status = 502;
		x->last_code = "bad_gateway";
		try_failed(x, SY_RETRY_ON_5XX);
		return;
	}
	if (x->upstream_status >= 400)
		set_error(x, "backend returned an error");
	if (maybe_escalate(x, x->upstream_status, out, 0)) {
		evbuffer_free(out);
		return;
	}
	if (x->upstream_status == 200)
		sy_cache_store(x->cache, req, out);
	snprintf(ra, sizeof ra, "%s%s%s", x->retry_after[0] ? "Retry-After: " : "",
	    x->retry_after, x->retry_after[0] ? "\r\n" : "");
	respond_body(x, x->upstream_status, out, ra);
	evbuffer_free(out);
}

static void
on_error(void *arg, enum sy_upstream_error e, const char *msg)
{
	struct exchange *x = arg;
	int timeout = e == SY_UP_TIMEOUT;

	x->call = NULL;
	if (x->holding && x->stream_ended) {
		/* A held answer was whole at its last event. */
		on_done(x);
		return;
	}
	x->transport_failed = 1;
	if (x->stream_started) {
		/* After [DONE] the client has its answer: not an error. */
		if (!x->stream_ended) {
			set_error(x, msg);
			sy_canon_stream_error(x->out, timeout ? "gateway_timeout" :
			    "bad_gateway", msg);
		}
		stream_end(x);
		return;
	}
	x->last_status = timeout ? 504 : 502;
	x->last_code = timeout ? "gateway_timeout" : "bad_gateway";
	snprintf(x->last_msg, sizeof x->last_msg, "%s", msg);
	try_failed(x, timeout ? SY_RETRY_ON_TIMEOUT : e == SY_UP_PROTOCOL ?
	    SY_RETRY_ON_5XX : SY_RETRY_ON_CONNECT);
}

static const struct sy_upstream_cbs upstream_cbs = {
	.on_head = on_head,
	.on_body = on_body,
	.on_done = on_done,
	.on_error = on_error
};

/* ==== Client callbacks ==== */

static void
client_gone(void *owner, int timed_out)
{
	struct exchange *x = owner;

	x->conn = NULL;
	if (x->call != NULL) {
		sy_upstream_cancel(x->call);
		x->call = NULL;
	}
	x->req.status = 499;
	set_error(x, timed_out ? "client stopped reading (write timeout)" :
	    "client closed the connection");
	finish(x);
}

static void
client_drained(void *owner)
{
	struct exchange *x = owner;

	if (x->paused && x->call != NULL) {
		x->paused = 0;
		sy_upstream_pause(x->call, 0);
	}
}

/* ==== Tries ==== */

/*
 * Picks an endpoint of req's pool with the route's policy and takes one of
 * its in-flight slots.  Another worker may take the last slot between the
 * policy's look and ours: then the policy picks again without it.
 * Returns the endpoint, or NULL when none can take req.
 */
static struct sy_endpoint *
pick_endpoint(struct sy_req *req)
{
	const struct sy_route_policy *policy = req->route->policy;
	unsigned ntried = req->ntried;
	struct sy_endpoint *ep;
	long before;

	while ((ep = policy->pick(req->pool->policy_state, req->pool, req,
	    &req->pick_reason)) != NULL) {
		before = atomic_fetch_add(&ep->stats->in_flight, 1);
		if (ep->max_concurrency == 0 || before < (long)ep->max_concurrency)
			break;
		atomic_fetch_sub(&ep->stats->in_flight, 1);
		if (req->ntried == SY_MAX_TRIES) {
			ep = NULL;
			break;
		}
		req->tried[req->ntried++] = ep;
	}
	req->ntried = ntried;
	return ep;
}

/* Encodes req for its endpoint (whose slot it holds) and sends it. */
static void
send_try(struct exchange *x)
{
	struct sy_req *req = &x->req;
	struct sy_timeouts t = req->cfg->timeouts;
	struct sy_upstream_req up;
	struct evbuffer *encoded = evbuffer_new();
	char *err = NULL, *o, headers[sizeof up.headers + 128],
	    target[SY_BASE_PATH_MAX + sizeof up.path];
	uint64_t now = sy_now_us();

	x->counted = 1;
	x->upstream_status = 0;
	x->transport_failed = 0;
	x->retry_after[0] = '\0';
	if (x->resp != NULL) {
		evbuffer_free(x->resp);
		x->resp = NULL;
	}
	stream_drop(x);
	memset(&up, 0, sizeof up);
	if (req->endpoint->kind->encode(req, req->endpoint, encoded, &up,
	    &err) != 0) {
		evbuffer_free(encoded);
		atomic_fetch_sub(&req->endpoint->stats->in_flight, 1);
		x->counted = 0;
		fail(x, 400, "invalid_request_error", NULL, err, NULL);
		free(err);
		return;
	}
	/* A try may not outlive the request's deadline. */
	if (x->deadline > now && (x->deadline - now) / 1000 < t.total_ms)
		t.total_ms = (unsigned)((x->deadline - now) / 1000) + 1;
	o = sy_put_str(SY_PUT_LIT(headers, "X-Request-Id: "), req->id);
	o = sy_put_str(SY_PUT_LIT(o, "\r\nAccept: "), !req->stream ?
	    "application/json" : req->endpoint->kind->framing->accept);
	*sy_put_str(SY_PUT_LIT(o, "\r\n"), up.headers) = '\0';
	o = sy_put_str(target, req->endpoint->base_path);
	*sy_put_str(o, up.path) = '\0';
	x->t_try = now;
	if (req->t_upstream == 0)
		req->t_upstream = now;
	x->call = sy_upstream_send(x->w->upstream, req->endpoint, &t, "POST",
	    target, headers, encoded, &upstream_cbs, x);
	evbuffer_free(encoded);
}

/* Whether route's retry budget allows one more retry now (and spends it). */
static int
budget_allows(struct sy_route *route)
{
	uint64_t now = sy_now_us();
	uint64_t start = atomic_load(&route->budget_start_us);
	unsigned long requests, retries;

	if (now - start > BUDGET_WINDOW_US &&
	    atomic_compare_exchange_strong(&route->budget_start_us, &start, now)) {
		atomic_store(&route->requests, 0);
		atomic_store(&route->retries, 0);
	}
	requests = atomic_load(&route->requests);
	retries = atomic_load(&route->retries);
	if ((double)retries + 1 > route->retry.budget * (double)requests +
	    route->retry.min_per_s * (BUDGET_WINDOW_US / 1000000))
		return 0;
	atomic_fetch_add(&route->retries, 1);
	return 1;
}

/* A retry's wait: base × 2^(retry − 1), at most the cap, times 0.5..1.5. */
static unsigned
backoff_ms(const struct sy_retry *r, unsigned retry)
{
	uint64_t ms = r->backoff_ms;
	uint64_t jitter;

	while (--retry > 0 && ms < r->max_backoff_ms)
		ms *= 2;
	if (ms > r->max_backoff_ms)
		ms = r->max_backoff_ms;
	jitter = sy_rand64();
	return (unsigned)(ms / 2 + (ms ? jitter % (ms + 1) : 0));
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct exchange *x = arg;

	if (x->replay != NULL) {
		replay_next(x);	/* a paced cache hit's next event */
		return;
	}
	if (x->member != NULL && !x->batch_answered) {
		/* Its deadline passed while its batch was out. */
		set_error(x, "deadline passed waiting for its batch");
		fail(x, 504, "server_error", "gateway_timeout", "the request's "
		    "deadline passed while its batch was at the backend", NULL);
		return;
	}
	if (!x->queued) {
		try_next(x);	/* a retry's backoff is over */
		return;
	}
	waitq_remove(x);
	x->last_status = 503;
	x->last_code = "queue_timeout";
	snprintf(x->last_msg, sizeof x->last_msg, "every backend endpoint "
	    "stayed busy for the queue's timeout");
	fallback_or_give_up(x);
}

/* Arms x's timer ms from now. */
static void
arm(struct exchange *x, unsigned ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	if (x->timer == NULL)
		x->timer = evtimer_new(x->w->base, timer_cb, x);
	evtimer_add(x->timer, &tv);
}

/* Whether req's pool has an endpoint req has not tried yet. */
static int
pool_has_untried(const struct sy_req *req)
{
	unsigned i, j;

	for (i = 0; i < req->pool->nendpoints; i++) {
		for (j = 0; j < req->ntried &&
		    req->tried[j] != req->pool->endpoints[i]; j++)
			;
		if (j == req->ntried)
			return 1;
	}
	return 0;
}

static void
try_failed(struct exchange *x, unsigned cond)
{
	struct sy_req *req = &x->req;
	const struct sy_retry *r = &req->route->retry;
	struct sy_endpoint *ep = req->endpoint;

	end_try(x);
	if (!waiting(x)) {
		finish(x);
		return;
	}
	if (req->ntried < SY_MAX_TRIES)
		req->tried[req->ntried++] = ep;
	if ((r->on & cond) && req->retries < r->max &&
	    req->ntried < SY_MAX_TRIES && pool_has_untried(req) &&
	    sy_now_us() < x->deadline && budget_allows(req->route)) {
		req->retries++;
		arm(x, backoff_ms(r, req->retries));
		return;
	}
	fallback_or_give_up(x);
}

/* Answers the client with the last failure. */
static void
give_up(struct exchange *x)
{
	struct sy_req *req = &x->req;
	struct evbuffer *out;
	char *err = NULL, ra[64];

	if (x->resp != NULL && x->upstream_status >= 400 && req->endpoint != NULL &&
	    !x->transport_failed) {
		/* The backend's own error (a 5xx or 429 after the last try). */
		out = evbuffer_new();
		if (req->endpoint->kind->decode(req, x->upstream_status, x->resp,
		    out, &req->usage, &err) == 0) {
			set_error(x, "backend returned an error");
			snprintf(ra, sizeof ra, "%s%s%s", x->retry_after[0] ?
			    "Retry-After: " : "", x->retry_after,
			    x->retry_after[0] ? "\r\n" : "");
			respond_body(x, x->upstream_status, out, ra);
			evbuffer_free(out);
			return;
		}
		evbuffer_free(out);
		free(err);
	}
	if (x->last_status == 0) {
		x->last_status = 503;
		x->last_code = "no_endpoint_available";
		snprintf(x->last_msg, sizeof x->last_msg,
		    "no backend endpoint can take the request now");
	}
	/* Say how long until an endpoint of the pool rests no more. */
	snprintf(ra, sizeof ra, "Retry-After: %u\r\n",
	    sy_outlier_retry_after(req->pool));
	fail(x, x->last_status, "server_error", x->last_code, x->last_msg,
	    x->last_status == 503 ? ra : NULL);
}

/* ==== Waiting for a free endpoint ==== */

/*
 * Whether req's pool has an endpoint that is only full: healthy, not
 * ejected or resting, not tried, but at its max_concurrency.
 */
static int
pool_only_full(const struct sy_req *req)
{
	const struct sy_endpoint *ep;
	unsigned i, j;

	for (i = 0; i < req->pool->nendpoints; i++) {
		ep = req->pool->endpoints[i];
		for (j = 0; j < req->ntried && req->tried[j] != ep; j++)
			;
		if (j == req->ntried && ep->max_concurrency != 0 &&
		    atomic_load(&ep->stats->in_flight) >= (long)ep->max_concurrency &&
		    ep->weight > 0 && !atomic_load(&ep->stats->unhealthy) &&
		    !sy_outlier_ejected(ep))
			return 1;
	}
	return 0;
}

/* Puts x in its worker's wait queue when its route has one with room. */
static int
waitq_add(struct exchange *x)
{
	struct sy_waitq *q = x->w->waitq;
	const struct sy_queue *rule = &x->req.route->queue;
	struct timeval poll = { 0, QUEUE_POLL_MS * 1000 };
	uint64_t now = sy_now_us(), left;
	struct exchange *y;
	size_t waiting = 0;

	if (rule->max == 0 || now >= x->deadline || !pool_only_full(&x->req))
		return 0;
	TAILQ_FOREACH(y, &q->list, qlink)
		waiting += y->req.pool == x->req.pool;
	if (waiting >= rule->max) {
		x->last_status = 503;
		x->last_code = "queue_full";
		snprintf(x->last_msg, sizeof x->last_msg, "every backend "
		    "endpoint is busy and the queue is full");
		return 0;
	}
	x->queued = 1;
	x->t_queued = now;
	TAILQ_INSERT_TAIL(&q->list, x, qlink);
	if (q->n++ == 0)
		event_add(q->poll, &poll);
	left = (x->deadline - now) / 1000;
	arm(x, left < rule->timeout_ms ? (unsigned)left + 1 : rule->timeout_ms);
	return 1;
}

static void
waitq_remove(struct exchange *x)
{
	struct sy_waitq *q = x->w->waitq;

	TAILQ_REMOVE(&q->list, x, qlink);
	x->queued = 0;
	x->req.queue_us += sy_now_us() - x->t_queued;
	if (--q->n == 0)
		event_del(q->poll);
	if (x->timer != NULL)
		evtimer_del(x->timer);
}

/* Sends every waiting request that can now have an endpoint, oldest first. */
static void
waitq_poll_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sy_waitq *q = arg;
	struct exchange *x, *next;
	struct sy_endpoint *ep;

	for (x = TAILQ_FIRST(&q->list); x != NULL; x = next) {
		next = TAILQ_NEXT(x, qlink);
		if ((ep = pick_endpoint(&x->req)) == NULL)
			continue;
		waitq_remove(x);
		x->req.endpoint = ep;
		send_try(x);
	}
}

/* A slot was given back on this worker: let the queue look soon. */
static void
waitq_kick(struct sy_worker *w)
{
	if (w->waitq->n > 0)
		event_active(w->waitq->poll, EV_TIMEOUT, 0);
}

void
sy_pipeline_worker_init(struct sy_worker *w)
{
	struct sy_waitq *q = sy_xcalloc(1, sizeof *q);

	w->batching = sy_batch_port_new(w->base, batch_delivered, batch_send,
	    w);
	TAILQ_INIT(&q->list);
	TAILQ_INIT(&q->batch_calls);
	q->poll = event_new(w->base, -1, EV_PERSIST, waitq_poll_cb, q);
	w->waitq = q;
	w->cache = sy_cache_worker_new(w->rt->cache, w->base);
}

void
sy_pipeline_worker_stop(struct sy_worker *w)
{
	struct exchange *x;

	/* No client waits on a batch's call: its members are told here. */
	while ((x = TAILQ_FIRST(&w->waitq->batch_calls)) != NULL) {
		if (x->call != NULL) {
			sy_upstream_cancel(x->call);
			x->call = NULL;
		}
		if (x->batch != NULL)
			fail(x, 503, "server_error", "shutting_down",
			    "switchyard stopped before the batch was answered",
			    "Retry-After: 1\r\n");
		else
			finish(x);
	}
}

void
sy_pipeline_worker_free(struct sy_worker *w)
{
	event_free(w->waitq->poll);
	free(w->waitq);
	w->waitq = NULL;
	sy_batch_port_close(w->batching);
	w->batching = NULL;
	sy_cache_worker_free(w->cache);
	w->cache = NULL;
}

/* ==== Batching ==== */

/*
 * Offers x to its route's batcher.  Returns 1 when the batcher took it
 * (or refused it with an answer), 0 when x goes on alone.
 */
static int
enter_batcher(struct exchange *x)
{
	enum sy_batch_entry e;
	char *msg = NULL, ra[64];
	unsigned after = 1;
	uint64_t now;
	int rc = 1;

	e = sy_batch_enter(x->req.route->batch.batcher, x->w->batching, x,
	    &x->req, &x->deadline, &x->member, &msg, &after);
	snprintf(ra, sizeof ra, "Retry-After: %u\r\n", after);
	x->req.batch_shed = e == SY_BATCH_FULL || e == SY_BATCH_LATE;
	switch (e) {
	case SY_BATCH_QUEUED:
		/* Its own deadline holds while its batch is out. */
		now = sy_now_us();
		arm(x, x->deadline > now ?
		    (unsigned)((x->deadline - now) / 1000) + 1 : 1);
		break;
	case SY_BATCH_ALONE:
		rc = 0;
		break;
	case SY_BATCH_BAD:
		fail(x, 400, "invalid_request_error", NULL, msg, NULL);
		break;
	case SY_BATCH_FULL:
		fail(x, 429, "rate_limit_error", "batch_queue_full", msg, ra);
		break;
	case SY_BATCH_LATE:
		fail(x, 503, "server_error", "deadline_exceeded", msg, ra);
		break;
	}
	free(msg);
	return rc;
}

/*
 * A batch's call answered (status, canonical body; headers: extra header
 * lines or NULL): its members get their parts.
 */
static void
batch_done(struct exchange *x, int status, struct evbuffer *body,
    const char *headers)
{
	struct sy_batch *bt = x->batch;

	end_try(x);
	x->batch = NULL;
	sy_metrics_record_batch(x->w->metrics, bt->route->name, bt->inputs,
	    bt->reason);
	sy_batch_answer(bt, x->w->batching, status, body, headers, &x->req);
}

/* A member's part of its batch arrived, on its own worker. */
static void
batch_delivered(void *owner, const struct sy_batch_result *r)
{
	struct exchange *x = owner;
	struct sy_req *req = &x->req;

	x->batch_answered = 1;
	if (x->timer != NULL)
		evtimer_del(x->timer);	/* the deadline's; tries arm their own */
	req->batch_size = r->batch_size;
	req->batch_wait_us = r->wait_us;
	req->batch_shed = r->shed;
	if (r->alone) {
		try_next(x);
		return;
	}
	req->endpoint = r->endpoint;
	if (r->model[0] != '\0' && strcmp(r->model, req->model) != 0) {
		/* A fallback of the batch's call answered. */
		memcpy(x->answered_model, r->model, sizeof x->answered_model);
		use_model(x, x->answered_model);
	}
	req->pick_reason = r->pick_reason;
	req->retries = r->retries;
	req->fallbacks = r->fallbacks;
	req->upstream_us = r->upstream_us;
	req->usage = r->usage;
	if (r->status >= 400)
		set_error(x, "batch failed");
	else if (r->status == 200)
		sy_cache_store(x->cache, req, r->body);
	respond_body(x, r->status, r->body, r->headers);
}

/*
 * Sends batch bt from this worker: a call of its own through the normal
 * path (pick endpoint, encode, upstream, retries, fallbacks).
 */
static void
batch_send(void *arg, struct sy_batch *bt)
{
	struct sy_worker *w = arg;
	struct exchange *x = sy_xcalloc(1, sizeof *x);
	struct sy_req *req = &x->req;
	const json_t *model;

	x->w = w;
	x->batch = bt;
	x->batch_call = 1;
	TAILQ_INSERT_TAIL(&w->waitq->batch_calls, x, blink);
	req->t_arrival = sy_now_us();
	req->wall_arrival = sy_wall_us();
	req->cfg = bt->cfg;
	bt->cfg = NULL;
	req->client_api = "openai";
	req->api = bt->api;
	req->usage.prompt_tokens = req->usage.completion_tokens =
	    req->usage.cached_tokens = -1;
	memcpy(x->method, "POST", 5);
	x->path = sy_xstrdup(bt->api == SY_API_EMBEDDINGS ? "/v1/embeddings" :
	    "/v1/completions");
	new_request_id(w, req->id);
	x->canon = bt->body;
	bt->body = NULL;
	req->raw = x->canon;
	model = json_object_get(sy_req_body(req), "model");
	req->client_model = json_string_value(model);
	x->first_route = bt->route;
	x->deadline = bt->deadline;
	start_route(x, bt->route, req->client_model);
}

/* ==== Model selection ==== */

/*
 * The extra headers of x's response, written into x->headers as it starts:
 * its request id, the model that answers (X-Switchyard-Model) and what the
 * prompt cache did, when known.
 */
static const char *
headers_of(struct exchange *x)
{
	char *o = sy_put_str(SY_PUT_LIT(x->headers, "X-Request-Id: "),
	    x->req.id);

	o = SY_PUT_LIT(o, "\r\n");
	if (x->client != NULL && x->client->request_id_header != NULL) {
		o = sy_put_str(sy_put_str(o, x->client->request_id_header),
		    ": ");
		o = SY_PUT_LIT(sy_put_str(o, x->req.id), "\r\n");
	}
	if (x->header_model != NULL) {
		o = sy_put_str(SY_PUT_LIT(o, "X-Switchyard-Model: "),
		    x->header_model);
		o = SY_PUT_LIT(o, "\r\n");
	}
	if (x->cache_word != NULL) {
		o = sy_put_str(SY_PUT_LIT(o, "X-Switchyard-Cache: "),
		    x->cache_word);
		o = SY_PUT_LIT(o, "\r\n");
	}
	*o = '\0';
	return x->headers;
}

/*
 * Makes model (NULL: the name being routed) the one that answers req: its
 * pool, and the X-Switchyard-Model header of the response (when the name
 * is fit for a header).
 */
static void
use_model(struct exchange *x, const char *model)
{
	struct sy_req *req = &x->req;
	const char *p;

	req->model = model != NULL ? model : req->lookup_model;
	req->pool = sy_route_pool(req->route, req->route->wildcard ? NULL :
	    req->model);
	for (p = req->model; *p > ' ' && *p < 0x7f; p++)
		;
	x->header_model = *p == '\0' && p - req->model <= 200 ? req->model :
	    NULL;
}

/*
 * The tokens req needs of a context window (estimated prompt and
 * max_tokens), or 0 when model's window (0: unknown) surely holds it: the
 * body's bytes / 4 bound the prompt estimate, so most requests are never
 * parsed into a tree for this.
 */
static uint64_t
context_need(const struct sy_req *req, unsigned window)
{
	uint64_t need = sy_select_max_tokens(req);

	if (window == 0 || need + (evbuffer_get_length(req->raw) + 3) / 4 <=
	    window)
		return 0;
	need += sy_select_prompt_tokens(req);
	return need <= window ? 0 : need;
}

/*
 * Checks that req fits its model's context window: estimated prompt tokens
 * plus max_tokens.  When it does not, the route's model with the smallest
 * window that fits answers instead ("context:overflow").  Returns 0, or -1
 * after answering 400 context_length_exceeded when no model fits.
 */
static int
fit_context(struct exchange *x)
{
	struct sy_req *req = &x->req;
	const struct sy_route *route = req->route;
	unsigned have = sy_config_context_length(req->cfg, req->model), len;
	unsigned best = 0, largest = have;
	const char *to = NULL;
	char msg[256];
	uint64_t need;
	size_t i;

	if (route->wildcard || (need = context_need(req, have)) == 0)
		return 0;
	for (i = 0; i < route->nmodels; i++) {
		len = sy_config_context_length(req->cfg, route->models[i]);
		if (len > largest)
			largest = len;
		if (len >= need && (to == NULL || len < best)) {
			to = route->models[i];
			best = len;
		}
	}
	if (to != NULL) {
		req->select_reason = "context:overflow";
		use_model(x, to);
		return 0;
	}
	snprintf(msg, sizeof msg, "the request needs about %llu tokens (prompt "
	    "and max_tokens), more than the context window of any model "
	    "here (at most %u tokens)", (unsigned long long)need, largest);
	fail(x, 400, "invalid_request_error", "context_length_exceeded", msg,
	    NULL);
	return -1;
}

/*
 * The model a cascade escalates req to: the next one after req's model
 * whose context window holds the request (a cascade only goes forward),
 * or NULL.
 */
static const char *
escalation_target(const struct sy_req *req)
{
	const struct sy_select_policy *sp = req->route->selection;
	const char *next = sy_select_next(req);

	while (next != NULL && !req->route->wildcard &&
	    context_need(req, sy_config_context_length(req->cfg, next)) != 0)
		next = sp->next(req->route->selection_state, next);
	return next;
}

/*
 * The answer (status; data: a canonical body, or held stream events when
 * stream is set; NULL: the try failed) goes through the selection policy's
 * check when req's model may escalate.  When the check fails, the answer
 * is dropped and the request starts again on the next model: its usage
 * and cost are kept for the record.  Returns 1 when it escalated.
 */
static int
maybe_escalate(struct exchange *x, int status, struct evbuffer *data,
    int stream)
{
	struct sy_req *req = &x->req;
	const struct sy_select_policy *sp = req->route->selection;
	const char *next = escalation_target(req), *reason = NULL;
	struct sy_answer a;
	double cost;
	int esc;

	if (next == NULL || x->conn == NULL || sy_now_us() >= x->deadline)
		return 0;
	sy_canon_answer_read(&a, status, data, stream);
	esc = sp->check(req->route->selection_state, req, &a, &reason);
	sy_canon_answer_clear(&a);
	if (!esc)
		return 0;
	end_try(x);
	cost = sy_cost_usd(sy_config_price(req->cfg, req->model), &req->usage);
	if (cost >= 0)
		req->prior_cost_usd = (req->prior_cost_usd > 0 ?
		    req->prior_cost_usd : 0) + cost;
	sy_usage_add(&req->prior_usage, &req->usage);
	req->usage.prompt_tokens = req->usage.completion_tokens =
	    req->usage.cached_tokens = -1;
	req->escalations++;
	req->escalated_from = req->model;
	req->select_reason = reason;
	free(req->error);
	req->error = NULL;
	if (x->resp != NULL) {
		evbuffer_free(x->resp);
		x->resp = NULL;
	}
	stream_drop(x);
	x->stream_ended = 0;
	x->holding = 0;
	x->last_status = 0;
	use_model(x, next);
	req->ntried = 0;
	req->endpoint = NULL;
	try_next(x);
	return 1;
}

/* ==== Prompt cache ==== */

/* Says in X-Switchyard-Cache what the cache did (word: its result). */
static void
cache_header(struct exchange *x, const char *word)
{
	x->cache_word = word;
}
/*
 * The cache lookup's outcome: an answer (a whole canonical body, or the
 * canonical events of a stream) sent as a backend's would be, or NULL: on
 * to the backend.
 */
static void
cache_answered(void *arg, struct evbuffer *answer)
{
	struct exchange *x = arg;

	cache_header(x, sy_cache_result_name(sy_cache_result(x->cache)));
	if (answer == NULL) {
		to_backend(x);
		return;
	}
	if (!x->req.stream) {
		respond_body(x, 200, answer, NULL);
		evbuffer_free(answer);
		return;
	}
	x->out = evbuffer_new();
	x->replay = answer;
	replay_next(x);
}

/*
 * Sends the next event of a cache hit's stream, and the rest one at a time
 * every replay_interval_ms of the route (all at once when 0).
 */
static void
replay_next(struct exchange *x)
{
	unsigned ms = x->req.route->cache.replay_interval_ms;
	struct evbuffer_ptr end;
	size_t n;

	end = evbuffer_search(x->replay, "\n\n", 2, NULL);
	n = ms == 0 || end.pos < 0 ? evbuffer_get_length(x->replay) :
	    (size_t)end.pos + 2;
	evbuffer_remove_buffer(x->replay, x->out, n);
	if (evbuffer_get_length(x->replay) == 0) {
		evbuffer_free(x->replay);
		x->replay = NULL;
		stream_end(x);
		return;
	}
	stream_flush(x);
	arm(x, ms);
}

/* ==== Routes ==== */

/* Routes x by name (the client's model or a fallback) over route. */
static void
start_route(struct exchange *x, struct sy_route *route, const char *name)
{
	struct sy_req *req = &x->req;

	x->visited[x->nvisited++] = route;
	atomic_fetch_add(&route->requests, 1);
	req->route = route;
	req->lookup_model = name;
	if (x->batch_call && x->nvisited == 1)
		use_model(x, x->batch->model);	/* its members' */
	else {
		use_model(x, route->selection->select(route->selection_state,
		    route, req, &req->select_reason));
		if (fit_context(x) == -1)
			return;
	}
	req->ntried = 0;
	req->endpoint = NULL;
	/* Cache lookup: the client's route only, not its fallbacks. */
	if (x->nvisited == 1 && !x->batch_call) {
		sy_cache_lookup(x->w->cache, req, &x->cache, cache_answered, x);
		return;
	}
	to_backend(x);
}

/* After the cache: the route's batcher (routes that batch), else an endpoint. */
static void
to_backend(struct exchange *x)
{
	struct sy_req *req = &x->req;

	if (req->route->batch.batcher != NULL && !x->batch_call &&
	    x->nvisited == 1 && req->pool != NULL && enter_batcher(x))
		return;
	try_next(x);
}

/* Picks an endpoint and sends, or waits for one, or falls back, or gives up. */
static void
try_next(struct exchange *x)
{
	struct sy_req *req = &x->req;
	struct sy_endpoint *ep;

	if (req->pool != NULL && (ep = pick_endpoint(req)) != NULL) {
		req->endpoint = ep;
		send_try(x);
		return;
	}
	if (req->pool != NULL && waitq_add(x))
		return;
	fallback_or_give_up(x);
}

static void
fallback_or_give_up(struct exchange *x)
{
	struct sy_route *first = x->first_route, *route;
	const char *name;
	unsigned i;

	if (maybe_escalate(x, x->last_status, NULL, 0))
		return;
	while (x->next_fallback < first->nfallbacks && waiting(x) &&
	    x->nvisited < MAX_ROUTES && sy_now_us() < x->deadline) {
		name = first->fallbacks[x->next_fallback++];
		if ((route = sy_config_route(x->req.cfg, name)) == NULL)
			continue;
		for (i = 0; i < x->nvisited && x->visited[i] != route; i++)
			;
		if (i < x->nvisited)
			continue;
		x->req.fallbacks++;
		x->last_status = 0;
		if (x->resp != NULL) {
			evbuffer_free(x->resp);
			x->resp = NULL;
		}
		start_route(x, route, name);
		return;
	}
	give_up(x);
}

/* Route, select, pick, encode and send: the way to the backend. */
static void
proxy(struct exchange *x, enum sy_api api, struct evbuffer *body)
{
	struct sy_req *req = &x->req;
	struct sy_config *cfg = req->cfg;
	struct sy_route *route;
	char *err = NULL, msg[1024], *list;
	json_t *names;
	int status;

	req->api = api;
	req->raw = body;
	if (sy_req_parse(req, body, cfg->limits.max_json_depth, &status,
	    &err) != 0) {
		fail(x, status, "invalid_request_error", NULL, err, NULL);
		free(err);
		return;
	}
	if ((route = sy_config_route(cfg, req->client_model)) == NULL) {
		names = sy_config_model_names(cfg);
		list = json_dumps(names, JSON_COMPACT);
		snprintf(msg, sizeof msg, "The model `%s` does not exist or is "
		    "not served here; served models: %s", req->client_model,
		    list ? list : "[]");
		free(list);
		json_decref(names);
		fail(x, 404, "invalid_request_error", "model_not_found", msg,
		    NULL);
		return;
	}
	x->first_route = route;
	x->deadline = req->t_arrival + (uint64_t)route->deadline_ms * 1000;
	start_route(x, route, req->client_model);
}

/*
 * A request in another client API (POST /v1/messages: Anthropic's): turned
 * into the canonical form, which then takes the same way as OpenAI's.
 * Streams ask for usage, which the client's stream translation reports.
 */
static void
proxy_client(struct exchange *x, const struct sy_client_api *client,
    struct evbuffer *body)
{
	size_t len = evbuffer_get_length(body);
	json_t *canon, *opts;
	char *err = NULL, *text;

	x->client = client;
	x->req.client_api = client->name;
	canon = client->request(len ? (const char *)evbuffer_pullup(body, -1) :
	    "", len, &err);
	if (canon == NULL) {
		fail(x, 400, "invalid_request_error", NULL, err, NULL);
		free(err);
		return;
	}
	if (json_is_true(json_object_get(canon, "stream"))) {
		opts = json_object();
		json_object_set_new(opts, "include_usage", json_true());
		json_object_set_new(canon, "stream_options", opts);
	}
	text = json_dumps(canon, JSON_COMPACT);
	json_decref(canon);
	x->canon = evbuffer_new();
	if (text != NULL)
		evbuffer_add(x->canon, text, strlen(text));
	free(text);
	proxy(x, SY_API_CHAT, x->canon);
}

/* Answers names (a JSON array of strings) in OpenAI's list shape. */
static void
models_answer(void *arg, json_t *names)
{
	struct exchange *x = arg;
	struct evbuffer *body = evbuffer_new();
	json_t *v;
	size_t i;

	x->models = NULL;

	SY_ADD_LIT(body, "{\"object\":\"list\",\"data\":[");
	json_array_foreach(names, i, v) {
		if (i > 0)
			SY_ADD_LIT(body, ",");
		SY_ADD_LIT(body, "{\"id\":\"");
		sy_json_escape(body, json_string_value(v),
		    json_string_length(v));
		SY_ADD_LIT(body, "\",\"object\":\"model\",\"created\":0,"
		    "\"owned_by\":\"switchyard\"}");
	}
	SY_ADD_LIT(body, "]}");
	respond_body(x, 200, body, NULL);
	evbuffer_free(body);
}

/*
 * GET /v1/models: the models this config serves, and on routes that take
 * any model those their backends report.
 */
static void
list_models(struct exchange *x)
{
	json_t *names;

	x->models = sy_models_collect(x->w->upstream, x->req.cfg,
	    models_answer, x);
	if (x->models != NULL)
		return;
	names = sy_config_model_names(x->req.cfg);
	models_answer(x, names);
	json_decref(names);
}

/* Answers with a fixed JSON body and ends the exchange. */
static void
respond_text(struct exchange *x, int status, const char *json)
{
	struct evbuffer *body = evbuffer_new();

	evbuffer_add(body, json, strlen(json));
	respond_body(x, status, body, NULL);
	evbuffer_free(body);
}

/* Writes a new request id: the process's boot id, the worker, a counter. */
static void
new_request_id(struct sy_worker *w, char buf[static 21])
{
	char *o = sy_put_hex(buf, w->rt->boot_id, 8);

	o = sy_put_hex(o, w->index & 0xff, 2);
	o = sy_put_hex(o, w->next_id++ & 0xffffffffffULL, 10);
	*o = '\0';
}

/* Fills the request id: the client's when it is sane, else a new one. */
static void
request_id(struct exchange *x, const struct sy_http1_msg *head)
{
	const char *given = sy_http1_header(head, "x-request-id");
	size_t i, n;

	if (given != NULL && (n = strlen(given)) > 0 && n < sizeof x->req.id) {
		for (i = 0; i < n; i++)
			if (!((given[i] >= 'a' && given[i] <= 'z') ||
			    (given[i] >= 'A' && given[i] <= 'Z') ||
			    (given[i] >= '0' && given[i] <= '9') ||
			    given[i] == '-' || given[i] == '_' || given[i] == '.'))
				break;
		if (i == n) {
			memcpy(x->req.id, given, n + 1);
			return;
		}
	}
	new_request_id(x->w, x->req.id);
}

void
sy_pipeline_reject(void *arg, int status, const char *method,
    const char *target, const char *message, uint64_t bytes_out)
{
	struct sy_worker *w = arg;
	struct sy_record rec;
	char id[40];

	memset(&rec, 0, sizeof rec);
	new_request_id(w, id);
	rec.time_us = sy_wall_us();
	rec.request_id = id;
	rec.method = method;
	rec.path = target;
	rec.client_api = "openai";
	rec.status = status;
	rec.usage.prompt_tokens = rec.usage.completion_tokens =
	    rec.usage.cached_tokens = -1;
	rec.cost_usd = -1;
	rec.ttft_us = -1;
	rec.bytes_out = bytes_out;
	rec.error = message;
	sy_accesslog_write(w->rt->log, &rec);
	sy_metrics_record(w->metrics, &rec);
}

static const struct {
	const char *path;
	enum sy_api api;
} api_paths[] = {
	{ "/v1/chat/completions", SY_API_CHAT },
	{ "/v1/completions", SY_API_COMPLETIONS },
	{ "/v1/embeddings", SY_API_EMBEDDINGS }
};

void
sy_pipeline_handle(struct sy_conn *c, const struct sy_http1_msg *head,
    struct evbuffer *body, void *arg)
{
	struct sy_worker *w = arg;
	struct exchange *x = sy_xcalloc(1, sizeof *x);
	struct sy_req *req = &x->req;
	size_t i, plen;
	int get, post;

	x->w = w;
	x->conn = c;
	req->t_arrival = sy_now_us();
	req->wall_arrival = sy_wall_us();
	req->cfg = sy_config_ref(w->cfg);
	req->head = head;
	req->client_api = "openai";
	req->bytes_in = evbuffer_get_length(body);
	req->usage.prompt_tokens = req->usage.completion_tokens =
	    req->usage.cached_tokens = -1;
	req->prior_usage = req->usage;
	req->prior_cost_usd = -1;
	memcpy(x->method, head->method, sizeof x->method);
	plen = strcspn(head->target, "?");
	x->path = strndup(head->target, plen);
	request_id(x, head);
	cache_header(x, "bypass");
	sy_conn_set_owner(c, x, client_gone, client_drained);
	get = strcmp(head->method, "GET") == 0 || strcmp(head->method, "HEAD") == 0;
	post = strcmp(head->method, "POST") == 0;

	for (i = 0; i < sizeof api_paths / sizeof api_paths[0]; i++) {
		if (strcmp(x->path, api_paths[i].path) != 0)
			continue;
		if (!post) {
			fail(x, 405, "invalid_request_error", "method_not_allowed",
			    "use POST for this path", "Allow: POST\r\n");
			return;
		}
		proxy(x, api_paths[i].api, body);
		return;
	}
	if (strcmp(x->path, "/v1/messages") == 0) {
		if (!post) {
			x->client = &sy_client_anthropic;
			fail(x, 405, "invalid_request_error", "method_not_allowed",
			    "use POST for this path", "Allow: POST\r\n");
			return;
		}
		proxy_client(x, &sy_client_anthropic, body);
		return;
	}
	if (strcmp(x->path, "/v1/models") == 0 || strcmp(x->path, "/healthz") == 0) {
		if (!get) {
			fail(x, 405, "invalid_request_error", "method_not_allowed",
			    "use GET for this path", "Allow: GET, HEAD\r\n");
			return;
		}
		if (x->path[1] == 'v') {
			list_models(x);
			return;
		}
		respond_text(x, 200, "{\"status\":\"ok\"}");
		return;
	}
	fail(x, 404, "invalid_request_error", "not_found",
	    "no such path; switchyard serves /v1/chat/completions, "
	    "/v1/completions, /v1/embeddings, /v1/messages and /v1/models",
	    NULL);
}
