/* The batch stage: on a route that batches, a request waits in the route's batcher and gets its part of the batch's answer; the batch itself goes as an exchange of its own (a call without a client) from the worker that flushed it. */
#include <sys/queue.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "batch.h"
#include "canon.h"
#include "config.h"
#include "exchange.h"
#include "metrics.h"
#include "util.h"
#include "worker.h"

/* The calls of batches a worker sent, until they answer. */
struct sy_batch_calls {
	TAILQ_HEAD(, sy_exchange) list;
};

/* ==== Members ==== */

/* The member's deadline passed while its batch was at the backend. */
static void
deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sy_exchange *x = arg;

	(void)fd;
	(void)what;
	sy_exchange_error(x, "deadline passed waiting for its batch");
	sy_drive(x, sy_exchange_fail(x, 504, "server_error",
	    "gateway_timeout", "the request's deadline passed while its batch "
	    "was at the backend", NULL));
}

/* A member's part of its batch arrived, on its own worker. */
static void
delivered(void *owner, const struct sy_batch_result *r)
{
	struct sy_exchange *x = owner;
	struct sy_req *req = &x->req;
	struct evbuffer *body;

	x->batch.answered = 1;
	evtimer_del(x->batch.timer);
	req->batch_size = r->batch_size;
	req->batch_wait_us = r->wait_us;
	req->batch_shed = r->shed;
	if (r->alone) {
		sy_drive(x, SY_NEXT);	/* on to the tries, alone */
		return;
	}
	req->endpoint = r->endpoint;
	if (r->model[0] != '\0' && strcmp(r->model, req->model) != 0) {
		/* A fallback of the batch's call answered. */
		req->model = req->model_owned = sy_xstrdup(r->model);
	}
	req->pick_reason = r->pick_reason;
	req->retries = r->retries;
	req->fallbacks = r->fallbacks;
	req->upstream_us = r->upstream_us;
	req->usage = r->usage;
	if (r->status >= 400)
		sy_exchange_error(x, "batch failed");
	body = evbuffer_new();
	evbuffer_add(body, evbuffer_pullup(r->body, -1),
	    evbuffer_get_length(r->body));
	sy_exchange_reply(x, r->status, body, r->headers);
	sy_drive(x, SY_ANSWER);
}

/* Offers the request to its route's batcher (the client's route only). */
static enum sy_verdict
batch_enter(struct sy_exchange *x)
{
	struct sy_req *req = &x->req;
	enum sy_batch_entry e;
	char *msg = NULL, ra[64];
	unsigned after = 1;
	struct timeval tv;
	uint64_t now;
	enum sy_verdict v = SY_WAIT;

	if (x->batch.batch != NULL || req->route->batch.batcher == NULL ||
	    x->route.nvisited != 1 || req->pool == NULL)
		return SY_NEXT;
	e = sy_batch_enter(req->route->batch.batcher, x->w->batching, x, req,
	    &x->deadline, &x->batch.member, &msg, &after);
	snprintf(ra, sizeof ra, "Retry-After: %u\r\n", after);
	req->batch_shed = e == SY_BATCH_FULL || e == SY_BATCH_LATE;
	switch (e) {
	case SY_BATCH_QUEUED:
		/* Its own deadline holds while its batch is out. */
		now = sy_now_us();
		now = x->deadline > now ? (x->deadline - now) + 1000 : 1000;
		tv.tv_sec = (time_t)(now / 1000000);
		tv.tv_usec = (suseconds_t)(now % 1000000);
		x->batch.timer = evtimer_new(x->w->base, deadline_cb, x);
		evtimer_add(x->batch.timer, &tv);
		break;
	case SY_BATCH_ALONE:
		v = SY_NEXT;
		break;
	case SY_BATCH_BAD:
		v = sy_exchange_fail(x, 400, "invalid_request_error", NULL, msg,
		    NULL);
		break;
	case SY_BATCH_FULL:
		v = sy_exchange_fail(x, 429, "rate_limit_error",
		    "batch_queue_full", msg, ra);
		break;
	case SY_BATCH_LATE:
		v = sy_exchange_fail(x, 503, "server_error",
		    "deadline_exceeded", msg, ra);
		break;
	}
	free(msg);
	return v;
}

/* ==== Calls ==== */

/* A batch's call has its reply: the members get their parts. */
static void
call_answered(struct sy_exchange *x)
{
	struct sy_batch *bt = x->batch.batch;

	x->batch.batch = NULL;
	if (x->reply.body == NULL)
		x->reply.body = evbuffer_new();
	sy_metrics_record_batch(x->w->metrics, bt->route->name, bt->inputs,
	    bt->reason);
	sy_batch_answer(bt, x->w->batching, x->reply.status, x->reply.body,
	    x->reply.headers, &x->req);
}

/*
 * Sends batch bt from this worker: a call of its own through the tries
 * of its route (pick endpoint, encode, upstream, retries, fallbacks), for
 * the model its members were selected for.
 */
static void
batch_send(void *arg, struct sy_batch *bt)
{
	struct sy_worker *w = arg;
	struct sy_exchange *x = sy_exchange_new(w, bt->cfg,
	    SY_EXCHANGE_CALL);
	struct sy_req *req = &x->req;

	sy_config_unref(bt->cfg);
	bt->cfg = NULL;
	x->batch.batch = bt;
	TAILQ_INSERT_TAIL(&w->batch_calls->list, x, batch.link);
	x->sink = call_answered;
	req->api = bt->api;
	x->req.path = sy_xstrdup(bt->api == SY_API_EMBEDDINGS ?
	    "/v1/embeddings" : "/v1/completions");
	x->batch.request = bt->body;
	bt->body = NULL;
	req->raw = x->batch.request;
	req->client_model = json_string_value(json_object_get(sy_req_body(req),
	    "model"));
	x->route.first = bt->route;
	x->deadline = bt->deadline;
	x->select.preset = bt->model;
	sy_drive(x, SY_NEXT);
}

static void
batch_end(struct sy_exchange *x)
{
	struct evbuffer *body;

	if (x->batch.timer != NULL)
		event_free(x->batch.timer);
	if (x->batch.member != NULL)
		sy_batch_release(x->batch.member);
	if (x->sink != call_answered)
		return;
	TAILQ_REMOVE(&x->w->batch_calls->list, x, batch.link);
	evbuffer_free(x->batch.request);
	if (x->batch.batch == NULL)
		return;
	/* Ended without a reply (a stop): its members are told. */
	body = evbuffer_new();
	sy_canon_error_body(body, 503, "server_error", "shutting_down",
	    "switchyard stopped before the batch was answered");
	x->reply.status = 503;
	if (x->reply.body != NULL)
		evbuffer_free(x->reply.body);
	x->reply.body = body;
	snprintf(x->reply.headers, sizeof x->reply.headers,
	    "Retry-After: 1\r\n");
	call_answered(x);
}

const struct sy_stage sy_stage_batch = {
	.name = "batch",
	.enter = batch_enter,
	.end = batch_end
};

/* ==== Workers ==== */

void
sy_batch_worker_init(struct sy_worker *w)
{
	w->batching = sy_batch_port_new(w->base, delivered, batch_send, w);
	w->batch_calls = sy_xcalloc(1, sizeof *w->batch_calls);
	TAILQ_INIT(&w->batch_calls->list);
}

void
sy_batch_worker_stop(struct sy_worker *w)
{
	struct sy_exchange *x;

	while ((x = TAILQ_FIRST(&w->batch_calls->list)) != NULL)
		sy_exchange_end(x);
}

void
sy_batch_worker_free(struct sy_worker *w)
{
	sy_batch_port_close(w->batching);
	w->batching = NULL;
	free(w->batch_calls);
	w->batch_calls = NULL;
}
