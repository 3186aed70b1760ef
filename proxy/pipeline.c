/* The driver: the request's path as a table of stages (front → auth → thread → route → select → admit → cache → batch → tries → relay → check → store → respond → account), an exchange moved along it by the stages' verdicts, and its end. */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "accesslog.h"
#include "cache.h"
#include "canon.h"
#include "clientapi.h"
#include "config.h"
#include "counters.h"
#include "exchange.h"
#include "respond.h"
#include "http1.h"
#include "metrics.h"
#include "prefix_share.h"
#include "redis.h"
#include "server.h"
#include "upstream.h"
#include "util.h"
#include "worker.h"

/* ==== The tables ==== */

/* A client's request: the whole path, in order. */
static const struct sy_stage *const client_stages[] = {
	&sy_stage_front,	/* path, request id, dialect → canonical */
	&sy_stage_auth,		/* the API key: who asks */
	&sy_stage_thread,	/* Responses: earlier turns; this one kept */
	&sy_stage_route,	/* model name → route; fallbacks come back here */
	&sy_stage_select,	/* the model that answers, its context window */
	&sy_stage_admit,	/* its routes and models, limits and budgets */
	&sy_stage_cache,	/* lookup: a hit is the reply */
	&sy_stage_batch,	/* routes that batch: the batch's answer */
	&sy_stage_tries,	/* pick an endpoint, retry, wait queue */
	&sy_stage_relay,	/* encode, send, decode or stream back */
	&sy_stage_check,	/* escalate (cascade) or fall back */
	&sy_stage_store,	/* cache store */
	&sy_stage_respond,	/* the reply or the stream's end to the client */
	&sy_stage_account	/* the access log and metrics, at the end */
};

/* A batch's call: no client of its own (its members have theirs). */
static const struct sy_stage *const call_stages[] = {
	&sy_stage_route,
	&sy_stage_select,
	&sy_stage_batch,
	&sy_stage_tries,
	&sy_stage_relay,
	&sy_stage_check,
	&sy_stage_respond
};

#define NELEM(a) (sizeof (a) / sizeof (a)[0])

/* Where each verdict that jumps takes an exchange. */
static const struct sy_stage *const jumps[SY_NVERDICTS] = {
	[SY_RETRY] = &sy_stage_tries,
	[SY_FALLBACK] = &sy_stage_route,
	[SY_ESCALATE] = &sy_stage_tries,
	[SY_ANSWER] = &sy_stage_check,
	[SY_RESPOND] = &sy_stage_respond
};

/* The index of stage s in x's table (every jump target is in both). */
static size_t
stage_index(const struct sy_exchange *x, const struct sy_stage *s)
{
	size_t i;

	for (i = 0; i < x->nstages && x->stages[i] != s; i++)
		;
	return i;
}

/* ==== Ending ==== */

/* Every stage's end hook, in table order, then x is freed. */
static void
finish(struct sy_exchange *x)
{
	size_t i;

	for (i = 0; i < x->nstages; i++)
		if (x->stages[i]->end != NULL)
			x->stages[i]->end(x);
	if (x->reply.body != NULL)
		evbuffer_free(x->reply.body);
	sy_req_clear(&x->req);
	free(x);
}

void
sy_exchange_end(struct sy_exchange *x)
{
	finish(x);
}

/* ==== Driving ==== */

void
sy_drive(struct sy_exchange *x, enum sy_verdict v)
{
	if (x->driving) {
		/* A stage's wait ended before it said it waits. */
		x->resumed = 1;
		x->resume = v;
		return;
	}
	x->driving = 1;
	for (;;) {
		switch (v) {
		case SY_WAIT:
			if (!x->resumed) {
				x->driving = 0;
				return;
			}
			x->resumed = 0;
			v = x->resume;
			continue;
		case SY_DONE:
			finish(x);
			return;
		case SY_NEXT:
			x->at++;
			break;
		default:
			x->at = stage_index(x, jumps[v]);
			break;
		}
		if (x->at >= x->nstages) {
			finish(x);
			return;
		}
		v = x->stages[x->at]->enter != NULL ?
		    x->stages[x->at]->enter(x) : SY_NEXT;
	}
}

/* ==== Replies ==== */

void
sy_exchange_error(struct sy_exchange *x, const char *msg)
{
	if (x->req.error == NULL)
		x->req.error = sy_xstrdup(msg);
}

void
sy_exchange_reply(struct sy_exchange *x, int status, struct evbuffer *body,
    const char *headers)
{
	if (x->reply.body != NULL && x->reply.body != body)
		evbuffer_free(x->reply.body);
	x->reply.status = status;
	x->reply.body = body;
	x->reply.failed = 0;
	x->reply.native = 0;
	*sy_put_str(x->reply.headers, headers != NULL &&
	    strlen(headers) < sizeof x->reply.headers ? headers : "") = '\0';
}

enum sy_verdict
sy_exchange_fail(struct sy_exchange *x, int status, const char *type,
    const char *code, const char *message, const char *more_headers)
{
	struct evbuffer *body = evbuffer_new();

	sy_exchange_error(x, message);
	sy_canon_error_body(body, status, type, code, message);
	sy_exchange_reply(x, status, body, more_headers);
	return SY_RESPOND;
}

/* ==== Exchanges ==== */

/* Writes a new request id: the process's boot id, the worker, a counter. */
static void
new_request_id(struct sy_worker *w, char buf[static 21])
{
	char *o = sy_put_hex(buf, w->rt->boot_id, 8);

	o = sy_put_hex(o, w->index & 0xff, 2);
	o = sy_put_hex(o, w->next_id++ & 0xffffffffffULL, 10);
	*o = '\0';
}

struct sy_exchange *
sy_exchange_new(struct sy_worker *w, struct sy_config *cfg,
    enum sy_exchange_kind kind)
{
	struct sy_exchange *x = sy_xcalloc(1, sizeof *x);
	struct sy_req *req = &x->req;

	x->w = w;
	x->client = &sy_client_openai;
	if (kind == SY_EXCHANGE_CLIENT) {
		x->stages = client_stages;
		x->nstages = NELEM(client_stages);
	} else {
		x->stages = call_stages;
		x->nstages = NELEM(call_stages);
	}
	x->at = (size_t)-1;	/* SY_NEXT enters the first stage */
	req->t_arrival = sy_now_us();
	req->wall_arrival = sy_wall_us();
	req->cfg = sy_config_ref(cfg);
	req->client_api = x->client->name;
	req->usage.prompt_tokens = req->usage.completion_tokens =
	    req->usage.cached_tokens = -1;
	req->prior_usage = req->usage;
	req->prior_cost_usd = -1;
	memcpy(req->method, "POST", 5);
	x->respond.cache_word = "bypass";
	new_request_id(w, req->id);
	return x;
}

/* Takes the client's request id when it is sane. */
static void
client_request_id(struct sy_exchange *x, const struct sy_http1_msg *head)
{
	const char *given = sy_http1_header(head, "x-request-id");
	size_t i, n;

	if (given == NULL || (n = strlen(given)) == 0 || n >= sizeof x->req.id)
		return;
	for (i = 0; i < n; i++)
		if (!((given[i] >= 'a' && given[i] <= 'z') ||
		    (given[i] >= 'A' && given[i] <= 'Z') ||
		    (given[i] >= '0' && given[i] <= '9') ||
		    given[i] == '-' || given[i] == '_' || given[i] == '.'))
			return;
	memcpy(x->req.id, given, n + 1);
}

/* ==== The client's connection ==== */

/*
 * The gateway stops at the drain timeout with x unanswered: the client
 * gets a 503, or a stream its last event, an error; the log says why.
 */
static void
stopping(struct sy_exchange *x)
{
	static const char msg[] = "the gateway is stopping: its drain "
	    "timeout ended the request";

	/* What the log says, whatever an earlier try said. */
	free(x->req.error);
	x->req.error = sy_xstrdup("drain timeout");
	if (sy_respond_started(x))
		sy_canon_stream_error(sy_respond_events(x), "drain_timeout", msg);
	else
		sy_exchange_fail(x, 503, "server_error", "drain_timeout", msg,
		    "Retry-After: 1\r\n");
	sy_stage_respond.enter(x);
	finish(x);
}

static void
client_gone(void *owner, int why)
{
	struct sy_exchange *x = owner;

	if (why == SY_GONE_STOPPING) {
		stopping(x);
		return;
	}
	x->conn = NULL;
	x->req.status = 499;
	sy_exchange_error(x, why == SY_GONE_TIMEOUT ? "client stopped reading "
	    "(write timeout)" : "client closed the connection");
	finish(x);
}

static void
client_drained(void *owner)
{
	struct sy_exchange *x = owner;

	if (x->relay.paused && x->relay.call != NULL) {
		x->relay.paused = 0;
		sy_upstream_pause(x->relay.call, 0);
	}
}

void
sy_pipeline_handle(struct sy_conn *c, const struct sy_http1_msg *head,
    struct evbuffer *body, void *arg)
{
	struct sy_worker *w = arg;
	struct sy_exchange *x = sy_exchange_new(w, w->cfg, SY_EXCHANGE_CLIENT);
	struct sy_req *req = &x->req;

	x->conn = c;
	req->head = head;
	req->raw = body;
	req->bytes_in = evbuffer_get_length(body);
	memcpy(req->method, head->method, sizeof req->method);
	req->path = sy_xstrndup(head->target, strcspn(head->target, "?"));
	client_request_id(x, head);
	sy_conn_set_owner(c, x, client_gone, client_drained);
	sy_drive(x, SY_NEXT);
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
	rec.tpot_us = -1;
	rec.bytes_out = bytes_out;
	rec.error = message;
	sy_accesslog_write(w->rt->log, &rec);
	sy_metrics_record(w->metrics, &rec);
}

/* ==== Workers ==== */

void
sy_pipeline_worker_init(struct sy_worker *w)
{
	sy_tries_worker_init(w);
	sy_batch_worker_init(w);
	w->redis = sy_redis_new(w->base, &w->rt->redis, &w->rt->redis_stats);
	/* The count of instances that share limits is learned from this. */
	if (w->index == 0) {
		w->heartbeat = sy_counters_heartbeat(w->base, w->redis,
		    w->cfg->tenancy.redis_prefix, w->rt->boot_id);
		w->prefix_bus = sy_prefix_bus_start(w->base, w->redis,
		    sy_rand64());
	}
	w->cache = sy_cache_worker_new(w->rt->cache, w->base, w->redis);
}

void
sy_pipeline_worker_stop(struct sy_worker *w)
{
	sy_batch_worker_stop(w);
}

void
sy_pipeline_worker_free(struct sy_worker *w)
{
	sy_tries_worker_free(w);
	sy_batch_worker_free(w);
	sy_cache_worker_free(w->cache);
	w->cache = NULL;
	sy_counters_heartbeat_stop(w->heartbeat);
	w->heartbeat = NULL;
	sy_prefix_bus_stop(w->prefix_bus);
	w->prefix_bus = NULL;
	sy_redis_free(w->redis);
	w->redis = NULL;
}
