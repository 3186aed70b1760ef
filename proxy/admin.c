/* The admin listener: Prometheus metrics, JSON stats, config reload, health. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "admin.h"
#include "config.h"
#include "confrow.h"
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

/* ==== Its keys ==== */

#define CONF_AT(field) offsetof(struct sy_admin_conf, field)

static const struct sy_conf_row admin_rows[] = {
	{ .name = "token_env", .type = SY_CONF_SECRET, .offset = CONF_AT(token),
	  .what = "the admin token", .keep_name = 1,
	  .name_at = CONF_AT(token_env),
	  .doc = "environment variable holding the admin token" },
	{ .name = "protect_reads", .type = SY_CONF_BOOL,
	  .offset = CONF_AT(protect_reads), .def.u = 1,
	  .doc = "with a token, reads need it too" },
	{ .name = "metrics_open", .type = SY_CONF_BOOL,
	  .offset = CONF_AT(metrics_open),
	  .doc = "GET /metrics needs no token" },
	{ .name = "allowed_origins", .type = SY_CONF_STRINGS,
	  .offset = CONF_AT(origins), .count = CONF_AT(norigins),
	  .what = "an origin", .doc = "browser origins allowed besides the "
	  "listener's own" },
	{ .name = "max_connections", .type = SY_CONF_UINT,
	  .offset = CONF_AT(max_connections), .def.u = 64, .min = 1,
	  .max = 100000, .doc = "connections the admin listener holds open" },
	{ .name = NULL }
};

const struct sy_conf_table sy_admin_conf_table = {
	.path = "admin_api",
	.rows = admin_rows,
	.size = sizeof(struct sy_admin_conf)
};

/* ==== Who may ==== */

/* Whether the Authorization header of head carries token (constant time). */
static int
has_token(const struct sy_http1_msg *head, const char *token)
{
	const char *v = sy_http1_header(head, "authorization");
	unsigned char a[32], b[32];
	unsigned int n = 32;

	if (v == NULL || strncasecmp(v, "Bearer ", 7) != 0)
		return 0;
	v += 7;
	/* Hashes of equal length: the comparison says nothing of the token. */
	EVP_Digest(v, strlen(v), a, &n, EVP_sha256(), NULL);
	EVP_Digest(token, strlen(token), b, &n, EVP_sha256(), NULL);
	return CRYPTO_memcmp(a, b, 32) == 0;
}

/* Whether the request's Origin (if any) may use the API: its own, or allowed. */
static int
origin_ok(const struct sy_http1_msg *head, const struct sy_admin_conf *ac)
{
	const char *o = sy_http1_header(head, "origin");
	const char *host = sy_http1_header(head, "host");
	size_t i;

	if (o == NULL)
		return 1;
	for (i = 0; i < ac->norigins; i++)
		if (strcmp(o, ac->origins[i]) == 0)
			return 1;
	return host != NULL && strncmp(o, "http://", 7) == 0 &&
	    strcmp(o + 7, host) == 0;
}

/*
 * Whether the request may go on; else it is answered (403 or 401) and 0
 * is returned.
 */
static int
allowed(struct sy_conn *c, const struct sy_http1_msg *head,
    const struct sy_admin_conf *ac, size_t plen)
{
	int read = strcmp(head->method, "GET") == 0 ||
	    strcmp(head->method, "HEAD") == 0;

	if (!origin_ok(head, ac)) {
		sy_respond_error(c, 403, "permission_error", "origin_not_allowed",
		    "this Origin may not use the admin API (admin_api."
		    "allowed_origins)", NULL);
		return 0;
	}
	if (ac->token == NULL || has_token(head, ac->token))
		return 1;
	if (plen == 8 && strncmp(head->target, "/healthz", 8) == 0)
		return 1;
	if (read && (!ac->protect_reads || (ac->metrics_open && plen == 8 &&
	    strncmp(head->target, "/metrics", 8) == 0)))
		return 1;
	sy_respond_error(c, 401, "authentication_error", "admin_token_required",
	    "the admin API needs its token: Authorization: Bearer TOKEN "
	    "(admin_api.token_env)", "WWW-Authenticate: Bearer\r\n");
	return 0;
}

/* ==== Paths ==== */

void
sy_admin_handle(struct sy_conn *c, const struct sy_http1_msg *head,
    struct evbuffer *body, void *arg)
{
	struct sy_admin *a = arg;
	const struct sy_config *cfg = a->current(a->arg);
	size_t plen = strcspn(head->target, "?");
	int get = strcmp(head->method, "GET") == 0;
	struct evbuffer *out;
	char *err = NULL;

	if (!allowed(c, head, &cfg->admin_api, plen))
		return;
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
