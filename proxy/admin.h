/* The admin listener: a table of routes (metrics, JSON stats, config reload, health, the dashboard), each of an access class that its token and Origin checks follow. */
#ifndef SY_ADMIN_H
#define SY_ADMIN_H

#include <stddef.h>

#include <jansson.h>

struct evbuffer;
struct sy_conn;
struct sy_config;
struct sy_http1_msg;
struct sy_metrics;
struct sy_redis;
struct sy_conf_table;

/* Who may use the admin API: the top-level "admin_api" object. */
struct sy_admin_conf {
	char *token;			/* from the variable token_env names, or
					   NULL: the API is open */
	char *token_env;		/* that variable's name */
	int protect_reads;		/* with a token, reads need it too */
	int metrics_open;		/* GET /metrics needs no token */
	char **origins;			/* Origin values allowed besides the
					   listener's own */
	size_t norigins;
	unsigned max_connections;	/* of the admin listener */
	char *reports_dir;		/* experiment reports served, or NULL */
};

/* The rows of the admin_api object (struct sy_admin_conf). */
extern const struct sy_conf_table sy_admin_conf_table;

struct sy_admin {
	struct sy_metrics *metrics;
	/* The snapshot in force (borrowed). */
	struct sy_config *(*current)(void *arg);
	/* Reloads the config; 0, or -1 with *err malloc'd. */
	int (*reload)(void *arg, char **err);
	void *arg;
	/* The main thread's Redis connection (dynamic keys, usage), or NULL. */
	struct sy_redis *redis;
};

/* Who may call an admin route. */
enum sy_admin_access {
	SY_ADMIN_OPEN,		/* anyone (health, the dashboard's page) */
	SY_ADMIN_METRICS,	/* a read, unless metrics_open */
	SY_ADMIN_READ,		/* the token when protect_reads */
	SY_ADMIN_WRITE,		/* the token whenever one is set */
	SY_ADMIN_BY_METHOD	/* GET and HEAD a read, the others a write */
};

/*
 * Answers one admin request that passed its checks: a (the listener),
 * c (the exchange to end), head and body (borrowed).
 */
typedef void (*sy_admin_fn)(struct sy_admin *a, struct sy_conn *c,
    const struct sy_http1_msg *head, struct evbuffer *body);

/* One admin route: method ("*": any) and path (ending in '*': a prefix). */
struct sy_admin_route {
	const char *method;
	const char *path;
	enum sy_admin_access access;
	sy_admin_fn fn;
};

/*
 * The admin listener's request handler (arg: struct sy_admin): finds the
 * route in the table of admin.c, refuses a foreign Origin (403) and a
 * missing or wrong token (401) as the route's access class says, then
 * calls it.
 */
void sy_admin_handle(struct sy_conn *c, const struct sy_http1_msg *head,
    struct evbuffer *body, void *arg);

/*
 * Sends obj (stolen) as a JSON response with status on c; ends the
 * exchange.
 */
void sy_admin_json(struct sy_conn *c, int status, json_t *obj);

/*
 * Handles the tenant paths of the admin API: /admin/keys (GET, POST),
 * /admin/keys/ID (GET, PATCH, DELETE) and GET /admin/usage.  Returns 1
 * when the path is one of them (c is answered now or once Redis has
 * replied), else 0 (c untouched).
 */
int sy_admin_tenants(struct sy_admin *a, struct sy_conn *c,
    const struct sy_http1_msg *head, struct evbuffer *body);

#endif
