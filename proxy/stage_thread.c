/* The thread stage: the state of a Responses API conversation.  A POST /v1/responses with previous_response_id has the stored turns of that response put before its input (its own instructions apply, not the earlier ones'); GET and DELETE /v1/responses/{id} are answered from the store; at the end, a response answered well is kept with the conversation that led to it (before its client has it), unless the request says store: false.  With API keys, a response is its key's alone: another key finds nothing. */
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

/* Looks n ids up for x; the result now, or SY_RSTORE_PENDING (then got). */
static enum sy_rstore_result
lookup(struct sy_exchange *x, const char *const *ids, size_t n,
    json_t **recs, sy_rstore_got_fn got)
{
	return sy_rstore_get(x->w->rt->rstore, x->w->redis,
	    x->req.cfg->tenancy.redis_prefix, ids, n, recs, got, x,
	    &x->thread.op);
}

/* ==== GET and DELETE /v1/responses/{id} ==== */

/* Forgets the stored response rec of id and its output items. */
static void
forget(struct sy_exchange *x, const char *id, const json_t *rec)
{
	json_t *output = json_object_get(json_object_get(rec, "response"),
	    "output"), *item;
	const char **ids = sy_xcalloc(json_array_size(output) + 1, sizeof *ids);
	size_t i, n = 0;

	ids[n++] = id;
	json_array_foreach(output, i, item)
		if (json_is_string(json_object_get(item, "id")))
			ids[n++] = json_string_value(json_object_get(item, "id"));
	sy_rstore_del(x->w->rt->rstore, x->w->redis,
	    x->req.cfg->tenancy.redis_prefix, ids, n);
	free(ids);
}

/* The stored response the path names was looked up (recs taken). */
static enum sy_verdict
stored(struct sy_exchange *x, enum sy_rstore_result r, json_t *recs)
{
	const char *id = path_id(x);
	json_t *rec = json_array_get(recs, 0);
	enum sy_verdict v;

	if (r == SY_RSTORE_UNAVAILABLE)
		v = unavailable(x);
	else if (!visible(x, rec) || !json_is_object(json_object_get(rec,
	    "response")))
		v = not_found(x, "Response", id, NULL, NULL);
	else if (strcmp(x->req.method, "DELETE") == 0) {
		forget(x, id, rec);
		v = reply_json(x, 200, json_pack("{s:s,s:s,s:b}", "id", id,
		    "object", "response", "deleted", 1));
	} else
		v = reply_json(x, 200, json_incref(json_object_get(rec,
		    "response")));
	json_decref(recs);
	return v;
}

static void
on_stored(void *arg, enum sy_rstore_result r, json_t *recs)
{
	struct sy_exchange *x = arg;

	x->thread.op = NULL;
	sy_drive(x, stored(x, r, recs));
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

/* The previous response's id, or NULL. */
static const char *
previous(const struct sy_exchange *x)
{
	return json_string_value(json_object_get(x->thread.request,
	    "previous_response_id"));
}

/*
 * The records asked for were looked up (recs taken: the previous
 * response's first, when there is one, then those of the input's
 * item_reference items in order): the items referred to take their
 * places, the previous conversation goes first.
 */
static enum sy_verdict
continued(struct sy_exchange *x, enum sy_rstore_result r, json_t *recs)
{
	const char *prev = previous(x), *type;
	json_t *prior = prev != NULL ? json_array_get(recs, 0) : NULL;
	json_t *items, *item, *rec;
	size_t i, k = prev != NULL ? 1 : 0;
	enum sy_verdict v;

	if (r == SY_RSTORE_UNAVAILABLE) {
		json_decref(recs);
		return unavailable(x);
	}
	if (prev != NULL && (!visible(x, prior) ||
	    !json_is_array(json_object_get(prior, "input")))) {
		json_decref(recs);
		return not_found(x, "Previous response", prev,
		    "previous_response_id", "previous_response_not_found");
	}
	json_array_foreach(x->thread.input, i, item) {
		type = json_string_value(json_object_get(item, "type"));
		if (type == NULL || strcmp(type, "item_reference") != 0)
			continue;
		rec = json_array_get(recs, k++);
		if (!visible(x, rec) || !json_is_object(json_object_get(rec,
		    "item"))) {
			v = not_found(x, "Item", json_string_value(
			    json_object_get(item, "id")), "input", NULL);
			json_decref(recs);
			return v;
		}
		json_array_set(x->thread.input, i, json_object_get(rec, "item"));
	}
	if (prior != NULL) {
		items = json_copy(json_object_get(prior, "input"));
		json_array_extend(items, x->thread.input);
		json_decref(x->thread.input);
		x->thread.input = items;
	}
	json_decref(recs);
	return retranslate(x);
}

static void
on_continued(void *arg, enum sy_rstore_result r, json_t *recs)
{
	struct sy_exchange *x = arg;

	x->thread.op = NULL;
	sy_drive(x, continued(x, r, recs));
}

/* The most records one request may refer to. */
#define REFS_MAX 256

/*
 * The ids of what the request refers to, into ids (REFS_MAX): its
 * previous response's first, then its item_reference items'.  Returns
 * their count, or -1 after setting a 400 reply.
 */
static int
references(struct sy_exchange *x, const char **ids)
{
	const char *type;
	json_t *item;
	size_t i, n = 0;
	char msg[96];

	if (previous(x) != NULL)
		ids[n++] = previous(x);
	json_array_foreach(x->thread.input, i, item) {
		type = json_string_value(json_object_get(item, "type"));
		if (type == NULL || strcmp(type, "item_reference") != 0)
			continue;
		if (n == REFS_MAX) {
			sy_exchange_fail(x, 400, "invalid_request_error", NULL,
			    "input: at most 255 item_reference items", NULL);
			return -1;
		}
		if ((ids[n++] = json_string_value(json_object_get(item, "id"))) ==
		    NULL) {
			snprintf(msg, sizeof msg, "input.%zu.id: field required",
			    i);
			sy_exchange_fail(x, 400, "invalid_request_error", NULL, msg,
			    NULL);
			return -1;
		}
	}
	return (int)n;
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

/* ==== Keeping the response ==== */

/* Keeps rec under id for the configured time. */
static void
put(struct sy_exchange *x, const char *id, const json_t *rec)
{
	sy_rstore_put(x->w->rt->rstore, x->w->redis,
	    x->req.cfg->tenancy.redis_prefix, id, rec,
	    x->req.cfg->responses.ttl_s);
}

/*
 * Keeps x's response, answer (the object its client is about to get,
 * saying it is stored; borrowed), if it answered well, under its id: the
 * object, its owner, and the conversation's items with the response's
 * output last; and each output item under its own id.
 */
static void
keep(struct sy_exchange *x, json_t *answer)
{
	json_t *output = json_object_get(answer, "output"), *items, *item, *v;
	const char *type, *status;
	size_t i;

	status = json_string_value(json_object_get(answer, "status"));
	if (!json_is_string(json_object_get(answer, "id")) || status == NULL ||
	    (strcmp(status, "completed") != 0 &&
	    strcmp(status, "incomplete") != 0))
		return;
	items = json_copy(x->thread.input);
	json_array_foreach(output, i, item) {
		type = json_string_value(json_object_get(item, "type"));
		if (type != NULL && (strcmp(type, "message") == 0 ||
		    strcmp(type, "function_call") == 0))
			json_array_append(items, item);
	}
	v = json_pack("{s:s,s:O,s:o}", "owner", owner_of(x), "response",
	    answer, "input", items);
	put(x, json_string_value(json_object_get(answer, "id")), v);
	json_decref(v);
	/* Each output item on its own too, for item_reference. */
	json_array_foreach(output, i, item) {
		if (!json_is_string(json_object_get(item, "id")))
			continue;
		v = json_pack("{s:s,s:O}", "owner", owner_of(x), "item", item);
		put(x, json_string_value(json_object_get(item, "id")), v);
		json_decref(v);
	}
}

/*
 * What the response object repeats of the request: whether it is stored
 * (kept), its instructions and its previous response, and the parameters
 * it was asked with (OpenAI's defaults for those it did not give).
 */
static void
echo(struct sy_exchange *x, int kept)
{
	static const char *const asked[] = {
		"temperature", "top_p", "max_output_tokens", "tools",
		"tool_choice", "text", "metadata", "parallel_tool_calls", "user",
		"truncation", "reasoning", "service_tier", "top_logprobs",
		"max_tool_calls", "prompt_cache_key", "safety_identifier"
	};
	json_t *req = x->thread.request, *v, *members;
	size_t i;

	members = json_pack("{s:f,s:f,s:n,s:s,s:n}", "temperature", 1.0,
	    "top_p", 1.0, "max_output_tokens", "truncation", "disabled",
	    "user");
	for (i = 0; i < sizeof asked / sizeof asked[0]; i++)
		if ((v = json_object_get(req, asked[i])) != NULL)
			json_object_set(members, asked[i], v);
	json_object_set_new(members, "store", json_boolean(kept));
	v = json_object_get(req, "previous_response_id");
	json_object_set_new(members, "previous_response_id", json_is_string(v) ?
	    json_incref(v) : json_null());
	v = json_object_get(req, "instructions");
	json_object_set_new(members, "instructions", json_is_string(v) ?
	    json_incref(v) : json_null());
	sy_respond_echo(x, members);
}

/* ==== The stage ==== */

static enum sy_verdict
thread_enter(struct sy_exchange *x)
{
	struct evbuffer *body = x->front.client;
	const char *ids[REFS_MAX];
	enum sy_rstore_result r;
	json_t *recs;
	int n, keep_it;

	if (x->client != &sy_client_responses)
		return SY_NEXT;
	if ((ids[0] = path_id(x)) != NULL) {
		r = lookup(x, ids, 1, &recs, on_stored);
		return r == SY_RSTORE_PENDING ? SY_WAIT : stored(x, r, recs);
	}
	if (body == NULL || (x->thread.request = json_loadb((const char *)
	    evbuffer_pullup(body, -1), evbuffer_get_length(body), 0,
	    NULL)) == NULL)
		return SY_NEXT;
	x->thread.input = input_items(json_object_get(x->thread.request,
	    "input"));
	keep_it = x->req.cfg->responses.store &&
	    !json_is_false(json_object_get(x->thread.request, "store"));
	if (keep_it)
		sy_respond_watch(x, keep);
	echo(x, keep_it);
	if ((n = references(x, ids)) <= 0)
		return n < 0 ? SY_RESPOND : SY_NEXT;
	r = lookup(x, ids, (size_t)n, &recs, on_continued);
	return r == SY_RSTORE_PENDING ? SY_WAIT : continued(x, r, recs);
}

static void
thread_end(struct sy_exchange *x)
{
	sy_rstore_cancel(x->thread.op);
	x->thread.op = NULL;
	json_decref(x->thread.request);
	json_decref(x->thread.input);
}

const struct sy_stage sy_stage_thread = {
	.name = "thread",
	.enter = thread_enter,
	.end = thread_end
};
