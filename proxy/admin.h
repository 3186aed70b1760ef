/* The admin listener: Prometheus metrics, JSON stats, config reload, health. */
#ifndef SY_ADMIN_H
#define SY_ADMIN_H

struct evbuffer;
struct sy_conn;
struct sy_config;
struct sy_http1_msg;
struct sy_metrics;
struct sy_redis;

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
};

/* The rows of the admin_api object (struct sy_admin_conf). */
struct sy_conf_table;
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

/*
 * The admin listener's request handler (arg: struct sy_admin):
 * GET /metrics, GET /admin/stats, POST /admin/reload, the tenants' paths,
 * GET /healthz.  First the snapshot's admin_api says who may: a request
 * whose Origin is neither the listener's own nor allowed gets 403; with
 * a token, a write (any method but GET and HEAD) without it gets 401, and
 * so does a read unless reads are open (protect_reads false, or /metrics
 * with metrics_open); /healthz is always open.
 */
void sy_admin_handle(struct sy_conn *c, const struct sy_http1_msg *head,
    struct evbuffer *body, void *arg);

/*
 * Handles the tenant paths of the admin API: /admin/keys (GET, POST),
 * /admin/keys/ID (GET, PATCH, DELETE) and GET /admin/usage.  Returns 1
 * when the path is one of them (c is answered now or once Redis has
 * replied), else 0 (c untouched).
 */
int sy_admin_tenants(struct sy_admin *a, struct sy_conn *c,
    const struct sy_http1_msg *head, struct evbuffer *body);

#endif
