/* The admin listener: a table of routes (metrics, JSON stats, config reload, health, the dashboard), each of an access class that its token and Origin checks follow. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>


#include <event2/buffer.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "admin.h"
#include "admin_reports.h"
#include "config.h"
#include "confrow.h"
#include "dashboard.h"
#include "http1.h"
#include "metrics.h"
#include "server.h"
#include "util.h"
#include "worker.h"

#define AT(field)	offsetof(struct sy_admin_conf, field)

static const struct sy_conf_row admin_rows[] = {
	{ .name = "token_env", .type = SY_CONF_SECRET, .offset = AT(token),
	  .keep_name = 1, .name_at = AT(token_env), .what = "the admin token",
	  .doc = "variable holding the token every write (and read) needs" },
	{ .name = "protect_reads", .type = SY_CONF_BOOL,
	  .offset = AT(protect_reads), .def.u = 1,
	  .doc = "with a token: reads need it too" },
	{ .name = "metrics_open", .type = SY_CONF_BOOL,
	  .offset = AT(metrics_open),
	  .doc = "GET /metrics needs no token" },
	{ .name = "allowed_origins", .type = SY_CONF_STRINGS,
	  .offset = AT(origins), .count = AT(norigins), .what = "an origin",
	  .doc = "browser origins whose requests are taken" },
	{ .name = "max_connections", .type = SY_CONF_UINT,
	  .offset = AT(max_connections), .def.u = 64, .min = 1, .max = 100000,
	  .doc = "open admin connections at most" },
	{ .name = "reports_dir", .type = SY_CONF_STRING,
	  .offset = AT(reports_dir),
	  .doc = "directory of experiment reports served read-only" },
	{ .name = NULL }
};

/* The shortest admin token taken: a guess must not be a short search. */
#define TOKEN_MIN	12

/* A token of at least TOKEN_MIN characters. */
static void
admin_check(struct sy_conf *c, const json_t *obj, const char *path,
    void *base)
{
	const struct sy_admin_conf *a = base;
	char p[SY_CONF_PATHLEN];

	if (a->token != NULL && strlen(a->token) < TOKEN_MIN)
		sy_conf_fail(c, sy_conf_path_key(p, path, "token_env"),
		    "the token in %s has %zu characters; an admin token needs "
		    "at least %d", a->token_env, strlen(a->token), TOKEN_MIN);
}

const struct sy_conf_table sy_admin_conf_table = {
	.path = "admin_api",
	.rows = admin_rows,
	.size = sizeof(struct sy_admin_conf),
	.check = admin_check
};

void
sy_admin_json(struct sy_conn *c, int status, json_t *obj)
{
	struct evbuffer *body = evbuffer_new();
	char *text = json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(10));

	evbuffer_add(body, text, strlen(text));
	evbuffer_add(body, "\n", 1);
	sy_conn_respond(c, status, "application/json", "Cache-Control: no-store\r\n",
	    body);
	evbuffer_free(body);
	free(text);
	json_decref(obj);
}

/* ==== Routes ==== */

static void
get_metrics(struct sy_admin *a, struct sy_conn *c,
    const struct sy_http1_msg *head, struct evbuffer *body)
{
	struct evbuffer *out = evbuffer_new();

	sy_metrics_prometheus(a->metrics, a->current(a->arg), out);
	sy_conn_respond(c, 200, "text/plain; version=0.0.4; charset=utf-8",
	    NULL, out);
	evbuffer_free(out);
}

static void
get_stats(struct sy_admin *a, struct sy_conn *c,
    const struct sy_http1_msg *head, struct evbuffer *body)
{
	sy_admin_json(c, 200, sy_metrics_json(a->metrics, a->current(a->arg)));
}

static void
post_reload(struct sy_admin *a, struct sy_conn *c,
    const struct sy_http1_msg *head, struct evbuffer *body)
{
	char *err = NULL;

	if (a->reload(a->arg, &err) == 0)
		sy_admin_json(c, 200, json_pack("{s:s}", "status", "reloaded"));
	else {
		sy_respond_error(c, 400, "invalid_request_error",
		    "config_invalid", err, NULL);
		free(err);
	}
}

static void
get_health(struct sy_admin *a, struct sy_conn *c,
    const struct sy_http1_msg *head, struct evbuffer *body)
{
	sy_admin_json(c, 200, json_pack("{s:s}", "status", "ok"));
}

/* The tenants' paths (proxy/admin_tenants.c); 405 for a method they lack. */
static void
tenants(struct sy_admin *a, struct sy_conn *c,
    const struct sy_http1_msg *head, struct evbuffer *body)
{
	if (!sy_admin_tenants(a, c, head, body))
		sy_respond_error(c, 405, "invalid_request_error",
		    "method_not_allowed", "admin paths of keys: GET and POST "
		    "/admin/keys, GET, PATCH and DELETE /admin/keys/ID, "
		    "GET /admin/usage", NULL);
}

/*
 * Every admin route.  A new one is a line here: its method, path (a
 * trailing '*' takes every path under it), access class and function.
 */
static const struct sy_admin_route routes[] = {
	{ "GET", "/metrics", SY_ADMIN_METRICS, get_metrics },
	{ "GET", "/admin/stats", SY_ADMIN_READ, get_stats },
	{ "POST", "/admin/reload", SY_ADMIN_WRITE, post_reload },
	{ "GET", "/admin/reports", SY_ADMIN_READ, sy_admin_reports_list },
	{ "GET", "/admin/reports/*", SY_ADMIN_READ, sy_admin_reports_file },
	{ "*", "/admin/keys", SY_ADMIN_BY_METHOD, tenants },
	{ "*", "/admin/keys/*", SY_ADMIN_BY_METHOD, tenants },
	{ "GET", "/admin/usage", SY_ADMIN_READ, tenants },
	{ "GET", "/healthz", SY_ADMIN_OPEN, get_health },
	{ "GET", "/", SY_ADMIN_OPEN, sy_dashboard_page },
	{ "GET", "/dashboard", SY_ADMIN_OPEN, sy_dashboard_page },
};

#define NROUTES	(sizeof routes / sizeof routes[0])

/* Whether route r's path is the target's path (plen bytes). */
static int
path_matches(const struct sy_admin_route *r, const char *target, size_t plen)
{
	size_t n = strlen(r->path);

	if (n > 0 && r->path[n - 1] == '*')
		return plen >= n - 1 && strncmp(target, r->path, n - 1) == 0;
	return plen == n && strncmp(target, r->path, n) == 0;
}

/* Writes "admin paths: METHOD PATH, ..." of every route into buf (len). */
static void
route_list(char *buf, size_t len)
{
	size_t i, at;

	at = (size_t)snprintf(buf, len, "admin paths: ");
	for (i = 0; i < NROUTES && at < len; i++)
		at += (size_t)snprintf(buf + at, len - at, "%s%s %s",
		    i ? ", " : "", routes[i].method, routes[i].path);
}

/*
 * Whether a request's Origin header (NULL: none, as from curl or a
 * same-origin GET) may reach the admin API: one of allowed_origins, or
 * the listener's own address as the browser names it ("http://" + the
 * configured HOST:PORT, and the Host header says the same; a DNS name
 * that points here, as in DNS rebinding, is neither).
 */
static int
origin_allowed(const struct sy_config *cfg, const struct sy_http1_msg *head,
    const char *origin)
{
	const char *host = sy_http1_header(head, "host");
	size_t i;

	if (origin == NULL)
		return 1;
	for (i = 0; i < cfg->admin_api.norigins; i++)
		if (strcmp(origin, cfg->admin_api.origins[i]) == 0)
			return 1;
	return cfg->admin != NULL && host != NULL &&
	    strncmp(origin, "http://", 7) == 0 &&
	    strcmp(origin + 7, cfg->admin) == 0 && strcmp(host, cfg->admin) == 0;
}

/* Whether the request carries "Authorization: Bearer TOKEN" (constant-time). */
static int
token_ok(const struct sy_config *cfg, const struct sy_http1_msg *head)
{
	const char *auth = sy_http1_header(head, "authorization");
	unsigned char want[SHA256_DIGEST_LENGTH], got[SHA256_DIGEST_LENGTH];

	if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0)
		return 0;
	auth += 7;
	while (*auth == ' ')
		auth++;
	/* Digests of equal length: the comparison time says nothing. */
	SHA256((const unsigned char *)cfg->admin_api.token,
	    strlen(cfg->admin_api.token), want);
	SHA256((const unsigned char *)auth, strlen(auth), got);
	return CRYPTO_memcmp(want, got, sizeof want) == 0;
}

/* Whether a route of class access needs the token under cfg. */
static int
needs_token(const struct sy_config *cfg, enum sy_admin_access access)
{
	if (cfg->admin_api.token == NULL)
		return 0;
	switch (access) {
	case SY_ADMIN_OPEN:
		return 0;
	case SY_ADMIN_METRICS:
		return !cfg->admin_api.metrics_open &&
		    cfg->admin_api.protect_reads;
	case SY_ADMIN_READ:
		return cfg->admin_api.protect_reads;
	default:
		return 1;
	}
}

/* Route r's access class for a request of method. */
static enum sy_admin_access
access_of(const struct sy_admin_route *r, const char *method)
{
	if (r->access != SY_ADMIN_BY_METHOD)
		return r->access;
	return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0 ?
	    SY_ADMIN_READ : SY_ADMIN_WRITE;
}

void
sy_admin_handle(struct sy_conn *c, const struct sy_http1_msg *head,
    struct evbuffer *body, void *arg)
{
	struct sy_admin *a = arg;
	const struct sy_config *cfg = a->current(a->arg);
	const char *origin = sy_http1_header(head, "origin");
	size_t plen = strcspn(head->target, "?"), i;
	const struct sy_admin_route *r = NULL;
	int path_known = 0;
	char *msg, list[1024];

	for (i = 0; i < NROUTES && r == NULL; i++) {
		if (!path_matches(&routes[i], head->target, plen))
			continue;
		path_known = 1;
		if (strcmp(routes[i].method, "*") == 0 ||
		    strcmp(routes[i].method, head->method) == 0)
			r = &routes[i];
	}
	if (r == NULL) {
		route_list(list, sizeof list);
		sy_respond_error(c, path_known ? 405 : 404,
		    "invalid_request_error",
		    path_known ? "method_not_allowed" : "not_found", list, NULL);
		return;
	}
	if (!origin_allowed(cfg, head, origin)) {
		msg = sy_xasprintf("requests from the origin %s may not use "
		    "the admin API (admin_api.allowed_origins)", origin);
		sy_respond_error(c, 403, "permission_error", "origin_not_allowed",
		    msg, NULL);
		free(msg);
		return;
	}
	if (needs_token(cfg, access_of(r, head->method)) &&
	    !token_ok(cfg, head)) {
		sy_respond_error(c, 401, "authentication_error",
		    "admin_token_required",
		    sy_http1_header(head, "authorization") == NULL ?
		    "the admin API needs \"Authorization: Bearer TOKEN\" "
		    "(the token of admin_api.token_env)" :
		    "the admin token is not the one of admin_api.token_env",
		    "WWW-Authenticate: Bearer\r\n");
		return;
	}
	r->fn(a, c, head, body);
}
