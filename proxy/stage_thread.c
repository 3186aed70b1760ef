/* The thread stage: the state of a Responses API conversation.  A POST /v1/responses with previous_response_id has the stored turns of that response put before its input (its own instructions apply, not the earlier ones'); GET and DELETE /v1/responses/{id} are answered from the store; at the end, a response answered well is kept with the conversation that led to it, unless the request says store: false.  With API keys, a response is its key's alone: another key finds nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "clientapi.h"
#include "config.h"
#include "exchange.h"
#include "respond.h"
#include "rstore.h"
#include "util.h"
#include "worker.h"

#define PATH_PREFIX "/v1/responses/"

/* The id a GET or DELETE of a stored response names, or NULL. */
static const char *
path_id(const struct sy_exchange *x)
{
	if (strncmp(x->req.path, PATH_PREFIX, sizeof PATH_PREFIX - 1) != 0)
		return NULL;
	return x->req.path + sizeof PATH_PREFIX - 1;
}

/* Who owns what x keeps, and may see it: its key's id; "" without keys. */
static const char *
owner_of(const struct sy_exchange *x)
{
	return x->req.key_id != NULL ? x->req.key_id : "";
}

/* Whether the stored record rec is x's to see. */
static int
visible(const struct sy_exchange *x, const json_t *rec)
{
	const char *owner = json_string_value(json_object_get(rec, "owner"));

	return owner != NULL && strcmp(owner, owner_of(x)) == 0;
}

/* Sets x's reply to status and v (the reference is taken), sent as it is. */
static enum sy_verdict
reply_json(struct sy_exchange *x, int status, json_t *v)
{
	struct evbuffer *body = evbuffer_new();
	char *text = json_dumps(v, JSON_COMPACT);

	json_decref(v);
	if (text != NULL)
		evbuffer_add(body, text, strlen(text));
	free(text);
	sy_exchange_reply(x, status, body, NULL);
	x->reply.native = 1;
	return SY_RESPOND;
}

/* A 404 in OpenAI's shape: what (an id, quoted in the message) was not found. */
static enum sy_verdict
not_found(struct sy_exchange *x, const char *what, const char *id,
    const char *param, const char *code)
{
	char msg[320];

	snprintf(msg, sizeof msg, "%s with id '%.200s' not found.", what, id);
	sy_exchange_error(x, msg);
	return reply_json(x, 404, json_pack("{s:{s:s,s:s,s:o,s:o}}", "error",
	    "message", msg, "type", "invalid_request_error", "param",
	    param != NULL ? json_string(param) : json_null(), "code",
	    code != NULL ? json_string(code) : json_null()));
}

/* The store cannot be reached (Redis is away). */
static enum sy_verdict
unavailable(struct sy_exchange *x)
{
	return sy_exchange_fail(x, 503, "server_error",
	    "response_store_unavailable", "the response store cannot be "
	    "reached; retry later", "Retry-After: 1\r\n");
}

/* Looks id up for x; the result now, or SY_RSTORE_PENDING (then got). */
static enum sy_rstore_result
lookup(struct sy_exchange *x, const char *id, json_t **rec,
    sy_rstore_got_fn got)
{
	return sy_rstore_get(x->w->rt->rstore, x->w->redis,
	    x->req.cfg->tenancy.redis_prefix, id, rec, got, x, &x->thread.op);
}

/* ==== GET and DELETE /v1/responses/{id} ==== */

/* The stored response the path names was looked up (rec taken). */
static enum sy_verdict
stored(struct sy_exchange *x, enum sy_rstore_result r, json_t *rec)
{
	const char *id = path_id(x);
	enum sy_verdict v;

	if (r == SY_RSTORE_UNAVAILABLE)
		v = unavailable(x);
	else if (r != SY_RSTORE_FOUND || !visible(x, rec))
		v = not_found(x, "Response", id, NULL, NULL);
	else if (strcmp(x->req.method, "DELETE") == 0) {
		sy_rstore_del(x->w->rt->rstore, x->w->redis,
		    x->req.cfg->tenancy.redis_prefix, id);
		v = reply_json(x, 200, json_pack("{s:s,s:s,s:b}", "id", id,
		    "object", "response", "deleted", 1));
	} else
		v = reply_json(x, 200, json_incref(json_object_get(rec,
		    "response")));
	json_decref(rec);
	return v;
}

static void
on_stored(void *arg, enum sy_rstore_result r, json_t *rec)
{
	struct sy_exchange *x = arg;

	x->thread.op = NULL;
	sy_drive(x, stored(x, r, rec));
}

/* ==== previous_response_id ==== */

/*
 * The request translated again with the conversation's items as its
 * input, as the canonical request of x.
 */
static enum sy_verdict
retranslate(struct sy_exchange *x)
{
	json_t *body = json_copy(x->thread.request), *canon;
	char *text, *err = NULL;
	int status;

	json_object_set(body, "input", x->thread.input);
	json_object_del(body, "previous_response_id");
	text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	canon = text != NULL ? x->client->request(text, strlen(text), &err) :
	    NULL;
	free(text);
	if (canon == NULL) {
		sy_exchange_fail(x, 400, "invalid_request_error", NULL,
		    err != NULL ? err : "the conversation cannot be encoded",
		    NULL);
		free(err);
		return SY_RESPOND;
	}
	text = json_dumps(canon, JSON_COMPACT);
	json_decref(canon);
	evbuffer_drain(x->front.canon, evbuffer_get_length(x->front.canon));
	if (text != NULL)
		evbuffer_add(x->front.canon, text, strlen(text));
	free(text);
	if (x->req.body != NULL) {
		json_decref(x->req.body);
		x->req.body = NULL;
	}
	if (sy_req_parse(&x->req, x->front.canon,
	    x->req.cfg->limits.max_json_depth, &status, &err) != 0) {
		sy_exchange_fail(x, status, "invalid_request_error", NULL, err,
		    NULL);
		free(err);
		return SY_RESPOND;
	}
	return SY_NEXT;
}

/* The previous response was looked up (rec taken): its turns go first. */
static enum sy_verdict
continued(struct sy_exchange *x, enum sy_rstore_result r, json_t *rec)
{
	json_t *items;

	if (r == SY_RSTORE_UNAVAILABLE)
		return unavailable(x);
	if (r != SY_RSTORE_FOUND || !visible(x, rec) ||
	    !json_is_array(json_object_get(rec, "input"))) {
		json_decref(rec);
		return not_found(x, "Previous response", json_string_value(
		    json_object_get(x->thread.request, "previous_response_id")),
		    "previous_response_id", "previous_response_not_found");
	}
	items = json_copy(json_object_get(rec, "input"));
	json_array_extend(items, x->thread.input);
	json_decref(x->thread.input);
	x->thread.input = items;
	json_decref(rec);
	return retranslate(x);
}

static void
on_continued(void *arg, enum sy_rstore_result r, json_t *rec)
{
	struct sy_exchange *x = arg;

	x->thread.op = NULL;
	sy_drive(x, continued(x, r, rec));
}

/* The request's input as a list of items (a string is the user's message). */
static json_t *
input_items(json_t *input)
{
	if (json_is_string(input))
		return json_pack("[{s:s,s:s,s:O}]", "type", "message", "role",
		    "user", "content", input);
	return json_is_array(input) ? json_copy(input) : json_array();
}

static enum sy_verdict
thread_enter(struct sy_exchange *x)
{
	struct evbuffer *body = x->front.client;
	enum sy_rstore_result r;
	const char *prev;
	json_t *rec;

	if (x->client != &sy_client_responses)
		return SY_NEXT;
	if (path_id(x) != NULL) {
		r = lookup(x, path_id(x), &rec, on_stored);
		return r == SY_RSTORE_PENDING ? SY_WAIT : stored(x, r, rec);
	}
	if (body == NULL || (x->thread.request = json_loadb((const char *)
	    evbuffer_pullup(body, -1), evbuffer_get_length(body), 0,
	    NULL)) == NULL)
		return SY_NEXT;
	x->thread.input = input_items(json_object_get(x->thread.request,
	    "input"));
	x->thread.keep = x->req.cfg->responses.store &&
	    !json_is_false(json_object_get(x->thread.request, "store"));
	if (x->thread.keep)
		sy_respond_keep(x);
	prev = json_string_value(json_object_get(x->thread.request,
	    "previous_response_id"));
	if (prev == NULL)
		return SY_NEXT;
	r = lookup(x, prev, &rec, on_continued);
	return r == SY_RSTORE_PENDING ? SY_WAIT : continued(x, r, rec);
}

/* ==== Keeping the response ==== */

/* The response object x's client got in the end, a new reference, or NULL. */
static json_t *
answered(struct sy_exchange *x)
{
	struct evbuffer *sent;
	json_t *resp = sy_respond_stream_result(x);
	const char *status;

	if (resp == NULL && (sent = sy_respond_sent(x)) != NULL)
		resp = json_loadb((const char *)evbuffer_pullup(sent, -1),
		    evbuffer_get_length(sent), 0, NULL);
	status = json_string_value(json_object_get(resp, "status"));
	if (!json_is_string(json_object_get(resp, "id")) || status == NULL ||
	    (strcmp(status, "completed") != 0 &&
	    strcmp(status, "incomplete") != 0)) {
		json_decref(resp);
		return NULL;
	}
	return resp;
}

/*
 * Keeps x's response under its id: the object as answered (saying it is
 * stored, with the request's instructions and previous response), its
 * owner, and the conversation's items with the response's output last.
 */
static void
keep(struct sy_exchange *x)
{
	json_t *resp = answered(x), *req = x->thread.request, *items, *item;
	json_t *v;
	const char *type;
	size_t i;

	if (resp == NULL)
		return;
	json_object_set_new(resp, "store", json_true());
	v = json_object_get(req, "previous_response_id");
	json_object_set_new(resp, "previous_response_id", json_is_string(v) ?
	    json_incref(v) : json_null());
	v = json_object_get(req, "instructions");
	json_object_set_new(resp, "instructions", json_is_string(v) ?
	    json_incref(v) : json_null());
	items = json_copy(x->thread.input);
	json_array_foreach(json_object_get(resp, "output"), i, item) {
		type = json_string_value(json_object_get(item, "type"));
		if (type != NULL && (strcmp(type, "message") == 0 ||
		    strcmp(type, "function_call") == 0))
			json_array_append(items, item);
	}
	v = json_pack("{s:s,s:O,s:o}", "owner", owner_of(x), "response", resp,
	    "input", items);
	sy_rstore_put(x->w->rt->rstore, x->w->redis,
	    x->req.cfg->tenancy.redis_prefix,
	    json_string_value(json_object_get(resp, "id")), v,
	    x->req.cfg->responses.ttl_s);
	json_decref(v);
	json_decref(resp);
}

static void
thread_end(struct sy_exchange *x)
{
	sy_rstore_cancel(x->thread.op);
	x->thread.op = NULL;
	if (x->thread.keep && x->req.status == 200)
		keep(x);
	json_decref(x->thread.request);
	json_decref(x->thread.input);
}

const struct sy_stage sy_stage_thread = {
	.name = "thread",
	.enter = thread_enter,
	.end = thread_end
};
