/* The admin listener: Prometheus metrics, JSON stats, config reload, health. */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "admin.h"
#include "http1.h"
#include "metrics.h"
#include "server.h"
#include "util.h"
#include "worker.h"

/* Sends obj (stolen) as a JSON response. */
static void
respond_json(struct sy_conn *c, int status, json_t *obj)
{
	struct evbuffer *body = evbuffer_new();
	char *text = json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(10));

	evbuffer_add(body, text, strlen(text));
	evbuffer_add(body, "\n", 1);
	sy_conn_respond(c, status, "application/json", NULL, body);
	evbuffer_free(body);
	free(text);
	json_decref(obj);
}

void
sy_admin_handle(struct sy_conn *c, const struct sy_http1_msg *head,
    struct evbuffer *body, void *arg)
{
	struct sy_admin *a = arg;
	size_t plen = strcspn(head->target, "?");
	int get = strcmp(head->method, "GET") == 0;
	struct evbuffer *out;
	char *err = NULL;

	if (plen == 8 && strncmp(head->target, "/metrics", 8) == 0 && get) {
		out = evbuffer_new();
		sy_metrics_prometheus(a->metrics, a->current(a->arg), out);
		sy_conn_respond(c, 200, "text/plain; version=0.0.4; charset=utf-8",
		    NULL, out);
		evbuffer_free(out);
	} else if (plen == 12 && strncmp(head->target, "/admin/stats", 12) == 0 &&
	    get)
		respond_json(c, 200, sy_metrics_json(a->metrics, a->current(a->arg)));
	else if (plen == 13 && strncmp(head->target, "/admin/reload", 13) == 0 &&
	    strcmp(head->method, "POST") == 0) {
		if (a->reload(a->arg, &err) == 0)
			respond_json(c, 200, json_pack("{s:s}", "status", "reloaded"));
		else {
			sy_respond_error(c, 400, "invalid_request_error",
			    "config_invalid", err, NULL);
			free(err);
		}
	} else if (sy_admin_tenants(a, c, head, body))
		;
	else if (plen == 8 && strncmp(head->target, "/healthz", 8) == 0 && get)
		respond_json(c, 200, json_pack("{s:s}", "status", "ok"));
	else
		sy_respond_error(c, 404, "invalid_request_error", "not_found",
		    "admin paths: GET /metrics, GET /admin/stats, "
		    "POST /admin/reload, /admin/keys, GET /admin/usage, "
		    "GET /healthz", NULL);
}
