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
struct sy_conf_table;

/* The "admin" object of the config (rows: sy_admin_table). */
struct sy_admin_conf {
	char *listen;			/* "host:port", or NULL: off */
	char *token;			/* from token_env at load, or NULL */
	char *token_env;		/* the variable's name, or NULL */
	int protect_reads;		/* with a token: reads need it too */
	int metrics_open;		/* GET /metrics without the token */
	char **origins;			/* allowed_origins */
	size_t norigins;
	unsigned max_connections;	/* open admin connections at most */
	char *reports_dir;		/* experiment reports served, or NULL */
};

/* The rows of the "admin" object (admin.c). */
extern const struct sy_conf_table sy_admin_table;

struct sy_admin {
	struct sy_metrics *metrics;
	/* The snapshot in force (borrowed). */
	struct sy_config *(*current)(void *arg);
	/* Reloads the config; 0, or -1 with *err malloc'd. */
	int (*reload)(void *arg, char **err);
	void *arg;
};

/* Who may call an admin route. */
enum sy_admin_access {
	SY_ADMIN_OPEN,		/* anyone (health, the dashboard's page) */
	SY_ADMIN_METRICS,	/* a read, unless metrics_open */
	SY_ADMIN_READ,		/* the token when protect_reads */
	SY_ADMIN_WRITE		/* the token whenever one is set */
};

/*
 * Answers one admin request that passed its checks: a (the listener),
 * c (the exchange to end), head and body (borrowed).
 */
typedef void (*sy_admin_fn)(struct sy_admin *a, struct sy_conn *c,
    const struct sy_http1_msg *head, struct evbuffer *body);

/* One admin route: method and path (ending in '*': a prefix). */
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
 * Logs a warning when cfg's admin listener is on an address other than
 * loopback (louder without a token).  Returns 1 when it warned, else 0.
 */
int sy_admin_warn_exposed(const struct sy_config *cfg);

#endif
