/* The model names a gateway serves: its config's, and on routes that take any model the names its backends report (GET /v1/models, asked of every endpoint at once). */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "backend.h"
#include "confrow.h"
#include "config.h"
#include "http1.h"
#include "models.h"
#include "upstream.h"
#include "util.h"

/* How long a backend may take to list its models. */
#define MODELS_TIMEOUT_MS 2000
/* Endpoints asked at most, whatever the config. */
#define MODELS_MAX_ASKED 64

struct ask;

/* A collection: its calls, and the names gathered so far. */
struct sy_models_ask {
	json_t *names;			/* the answer being built */
	size_t pending;			/* calls not ended */
	sy_models_cb cb;
	void *arg;
	struct ask *asks;
	size_t nasks;
};

/* One endpoint's call. */
struct ask {
	struct sy_models_ask *a;
	struct sy_upstream_call *call;	/* NULL once ended */
	int status;
	struct evbuffer *body;
};

/* Appends name to names unless it is there already. */
static void
add_name(json_t *names, const char *name)
{
	json_t *v;
	size_t i;

	if (name == NULL || *name == '\0')
		return;
	json_array_foreach(names, i, v)
		if (strcmp(json_string_value(v), name) == 0)
			return;
	json_array_append_new(names, json_string(name));
}

/*
 * The names in a backend's list of models: OpenAI's and Anthropic's
 * {"data":[{"id"}]}, Ollama's {"models":[{"name"}]}, TGI's {"model_id"}.
 */
static void
add_reported(json_t *names, struct evbuffer *body)
{
	json_t *doc, *v;
	size_t i;

	doc = json_loadb((const char *)evbuffer_pullup(body, -1),
	    evbuffer_get_length(body), 0, NULL);
	json_array_foreach(json_object_get(doc, "data"), i, v)
		add_name(names, json_string_value(json_object_get(v, "id")));
	json_array_foreach(json_object_get(doc, "models"), i, v)
		add_name(names, json_string_value(json_object_get(v, "name")));
	add_name(names, json_string_value(json_object_get(doc, "model_id")));
	json_decref(doc);
}

/* An endpoint's call ended: the last one answers. */
static void
ask_end(struct ask *k)
{
	struct sy_models_ask *a = k->a;

	k->call = NULL;
	if (k->status == 200)
		add_reported(a->names, k->body);
	if (--a->pending > 0)
		return;
	a->cb(a->arg, a->names);
	sy_models_cancel(a);
}

static void
on_head(void *arg, const struct sy_http1_msg *head)
{
	struct ask *k = arg;

	k->status = head->status;
}

static void
on_body(void *arg, struct evbuffer *data)
{
	struct ask *k = arg;

	/* A list of models is small; a larger one is not read. */
	if (evbuffer_get_length(k->body) < 4 * 1024 * 1024)
		evbuffer_add_buffer(k->body, data);
	else
		evbuffer_drain(data, evbuffer_get_length(data));
}

static void
on_done(void *arg)
{
	ask_end(arg);
}

static void
on_error(void *arg, enum sy_upstream_error e, const char *msg)
{
	struct ask *k = arg;

	(void)e;
	(void)msg;
	k->status = 0;
	ask_end(k);
}

static const struct sy_upstream_cbs ask_cbs = {
	.on_head = on_head,
	.on_body = on_body,
	.on_done = on_done,
	.on_error = on_error
};

/* Whether ep (of a wildcard route) can list its models, and is new in eps. */
static int
askable(struct sy_endpoint *ep, struct sy_endpoint **eps, size_t n)
{
	size_t i;

	if (ep->kind->models_path == NULL || ep->weight == 0)
		return 0;
	for (i = 0; i < n; i++)
		if (eps[i] == ep)
			return 0;
	return 1;
}

struct sy_models_ask *
sy_models_collect(struct sy_upstream *u, const struct sy_config *cfg,
    sy_models_cb cb, void *arg)
{
	struct sy_endpoint *eps[MODELS_MAX_ASKED], *ep;
	struct sy_timeouts t = cfg->timeouts;
	struct sy_models_ask *a;
	char headers[1024], target[SY_BASE_PATH_MAX + 64], *o;
	size_t i, j, n = 0;
	int len;

	for (i = 0; i < cfg->nroutes; i++) {
		if (!cfg->routes[i].wildcard)
			continue;
		for (j = 0; j < cfg->routes[i].nendpoints &&
		    n < MODELS_MAX_ASKED; j++)
			if (askable(ep = cfg->routes[i].endpoints[j], eps, n))
				eps[n++] = ep;
	}
	if (n == 0)
		return NULL;
	a = sy_xcalloc(1, sizeof *a);
	a->names = sy_config_model_names(cfg);
	a->cb = cb;
	a->arg = arg;
	a->asks = sy_xcalloc(n, sizeof *a->asks);
	a->nasks = n;
	a->pending = n;
	if (t.first_byte_ms > MODELS_TIMEOUT_MS)
		t.first_byte_ms = MODELS_TIMEOUT_MS;
	if (t.total_ms > MODELS_TIMEOUT_MS)
		t.total_ms = MODELS_TIMEOUT_MS;
	for (i = 0; i < n; i++) {
		a->asks[i].a = a;
		a->asks[i].body = evbuffer_new();
		o = SY_PUT_LIT(headers, "Accept: application/json\r\n");
		len = sy_backend_credentials(eps[i]->kind, eps[i], o,
		    sizeof headers - (size_t)(o - headers));
		o[len > 0 ? len : 0] = '\0';
		*sy_put_str(sy_put_str(target, eps[i]->base_path),
		    eps[i]->kind->models_path) = '\0';
		a->asks[i].call = sy_upstream_send(u, eps[i], &t, "GET", target,
		    headers, NULL, &ask_cbs, &a->asks[i]);
	}
	return a;
}

void
sy_models_cancel(struct sy_models_ask *a)
{
	size_t i;

	if (a == NULL)
		return;
	for (i = 0; i < a->nasks; i++) {
		if (a->asks[i].call != NULL)
			sy_upstream_cancel(a->asks[i].call);
		evbuffer_free(a->asks[i].body);
	}
	free(a->asks);
	json_decref(a->names);
	free(a);
}

/* ==== Config ==== */

static const struct sy_conf_row model_info_rows[] = {
	{ .name = "context_length", .type = SY_CONF_UINT, .required = 1,
	  .offset = offsetof(struct sy_model_info, context_length),
	  .min = 1, .max = 1000000000,
	  .doc = "tokens of prompt and answer in one request" },
	{ .name = NULL }
};

const struct sy_conf_table sy_model_info_table = {
	.path = "models.*",
	.rows = model_info_rows,
	.size = sizeof(struct sy_model_info)
};
