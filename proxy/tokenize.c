/*
 * count_tokens answered by the backend's tokenizer: vLLM counts a chat
 * request at POST /tokenize; llama.cpp renders it with POST /apply-template
 * and counts the text at POST /tokenize.  Both paths are at the server's
 * root, beside its /v1.  One endpoint is asked; the caller falls back to
 * the gateway's estimate when it cannot answer.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "backend.h"
#include "config.h"
#include "http1.h"
#include "outlier.h"
#include "tokenize.h"
#include "upstream.h"
#include "util.h"

/* A tokenizer answers fast, or the estimate does. */
#define TOKENIZE_TIMEOUT_MS 5000
/* A count of 100k tokens by llama.cpp lists them: a few hundred kB. */
#define TOKENIZE_BODY_MAX (16 * 1024 * 1024)

const char *const sy_tokenize_words[] = { "none", "vllm", "llama.cpp", NULL };

struct sy_tokenize_ask {
	struct sy_upstream *u;
	struct sy_endpoint *ep;
	struct sy_timeouts t;
	struct sy_upstream_call *call;
	int step;			/* llama.cpp: 0 the template, 1 the count */
	int status;
	struct evbuffer *body;		/* the answer being read */
	sy_tokenize_cb cb;
	void *arg;
};

/* Whether ep can count now. */
static int
can_count(const struct sy_endpoint *ep)
{
	return ep->tokenize != SY_TOKENIZE_NONE && ep->weight > 0 &&
	    !sy_outlier_ejected(ep);
}

/* The served model a client's name stands for on route. */
static const char *
served_name(const struct sy_route *route, const char *name)
{
	size_t i;

	for (i = 0; i < route->naliases; i++)
		if (strcmp(route->aliases[i].from, name) == 0)
			return route->aliases[i].to;
	return name;
}

static const struct sy_upstream_cbs ask_cbs;

/* Sends path (under ep's root) with doc's JSON (taken) as the body. */
static void
send_step(struct sy_tokenize_ask *a, const char *path, json_t *doc)
{
	char target[SY_BASE_PATH_MAX + 32], headers[1024], *o;
	const char *base = a->ep->base_path;
	size_t n = strlen(base);
	struct evbuffer *body = evbuffer_new();
	char *text = json_dumps(doc, JSON_COMPACT);
	int len;

	json_decref(doc);
	/* The tokenizer is at the root: http://h:8000/v1 -> /tokenize. */
	if (n >= 3 && strcmp(base + n - 3, "/v1") == 0)
		n -= 3;
	memcpy(target, base, n);
	*sy_put_str(target + n, path) = '\0';
	o = SY_PUT_LIT(headers, "Content-Type: application/json\r\n");
	len = sy_backend_credentials(a->ep->kind, a->ep, o,
	    sizeof headers - (size_t)(o - headers));
	o[len > 0 ? len : 0] = '\0';
	if (text != NULL)
		evbuffer_add(body, text, strlen(text));
	free(text);
	evbuffer_drain(a->body, evbuffer_get_length(a->body));
	a->status = 0;
	a->call = sy_upstream_send(a->u, a->ep, &a->t, "POST", target, headers,
	    body, &ask_cbs, a);
	evbuffer_free(body);
}

static void
ask_end(struct sy_tokenize_ask *a, int64_t tokens)
{
	a->call = NULL;
	a->cb(a->arg, tokens, a->ep);
	sy_tokenize_cancel(a);
}

/* A step's answer is in: the count, or llama.cpp's next step. */
static void
step_done(struct sy_tokenize_ask *a)
{
	json_t *doc, *v;
	int64_t n = -1;

	a->call = NULL;
	doc = a->status == 200 ? json_loadb((const char *)evbuffer_pullup(
	    a->body, -1), evbuffer_get_length(a->body), 0, NULL) : NULL;
	if (a->ep->tokenize == SY_TOKENIZE_VLLM) {
		v = json_object_get(doc, "count");
		if (json_is_integer(v) && json_integer_value(v) >= 0)
			n = json_integer_value(v);
	} else if (a->step == 0) {
		v = json_object_get(doc, "prompt");
		if (json_is_string(v)) {
			a->step = 1;
			send_step(a, "/tokenize", json_pack("{sOsb}",
			    "content", v, "add_special", 1));
			json_decref(doc);
			return;
		}
	} else if (json_is_array(v = json_object_get(doc, "tokens")))
		n = (int64_t)json_array_size(v);
	json_decref(doc);
	ask_end(a, n);
}

static void
on_head(void *arg, const struct sy_http1_msg *head)
{
	((struct sy_tokenize_ask *)arg)->status = head->status;
}

static void
on_body(void *arg, struct evbuffer *data)
{
	struct sy_tokenize_ask *a = arg;

	if (evbuffer_get_length(a->body) < TOKENIZE_BODY_MAX)
		evbuffer_add_buffer(a->body, data);
	else {
		evbuffer_drain(data, evbuffer_get_length(data));
		a->status = 0;
	}
}

static void
on_done(void *arg)
{
	step_done(arg);
}

static void
on_error(void *arg, enum sy_upstream_error e, const char *msg)
{
	(void)e;
	(void)msg;
	ask_end(arg, -1);
}

static const struct sy_upstream_cbs ask_cbs = {
	.on_head = on_head,
	.on_body = on_body,
	.on_done = on_done,
	.on_error = on_error
};

struct sy_tokenize_ask *
sy_tokenize_start(struct sy_upstream *u, const struct sy_config *cfg,
    const json_t *canon, sy_tokenize_cb cb, void *arg)
{
	const char *name = json_string_value(json_object_get(canon, "model"));
	const json_t *tools = json_object_get(canon, "tools");
	const struct sy_route *route;
	const struct sy_pool *pool;
	struct sy_endpoint *ep = NULL;
	struct sy_tokenize_ask *a;
	const char *model;
	json_t *doc;
	size_t i;

	if (name == NULL || !json_is_array(json_object_get(canon, "messages")) ||
	    (route = sy_config_route(cfg, name)) == NULL)
		return NULL;
	model = served_name(route, name);
	if ((pool = sy_route_pool(route, model)) == NULL)
		return NULL;
	for (i = 0; i < pool->nendpoints && ep == NULL; i++)
		if (can_count(pool->endpoints[i]))
			ep = pool->endpoints[i];
	if (ep == NULL)
		return NULL;
	a = sy_xcalloc(1, sizeof *a);
	a->u = u;
	a->ep = ep;
	a->cb = cb;
	a->arg = arg;
	a->body = evbuffer_new();
	a->t = cfg->timeouts;
	if (a->t.first_byte_ms > TOKENIZE_TIMEOUT_MS)
		a->t.first_byte_ms = TOKENIZE_TIMEOUT_MS;
	if (a->t.total_ms > TOKENIZE_TIMEOUT_MS)
		a->t.total_ms = TOKENIZE_TIMEOUT_MS;
	doc = json_pack("{sO}", "messages", json_object_get(canon, "messages"));
	if (json_is_array(tools) && json_array_size(tools) > 0)
		json_object_set(doc, "tools", (json_t *)tools);
	if (ep->tokenize == SY_TOKENIZE_VLLM) {
		json_object_set_new(doc, "model", json_string(model));
		json_object_set_new(doc, "add_generation_prompt", json_true());
		send_step(a, "/tokenize", doc);
	} else
		send_step(a, "/apply-template", doc);
	return a;
}

void
sy_tokenize_cancel(struct sy_tokenize_ask *a)
{
	if (a == NULL)
		return;
	if (a->call != NULL)
		sy_upstream_cancel(a->call);
	evbuffer_free(a->body);
	free(a);
}
