/* The admin listener: Prometheus metrics, JSON stats, config reload, health. */
#ifndef SY_ADMIN_H
#define SY_ADMIN_H

struct evbuffer;
struct sy_conn;
struct sy_config;
struct sy_http1_msg;
struct sy_metrics;
struct sy_redis;

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
 * GET /metrics, GET /admin/stats, POST /admin/reload, GET /healthz.
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
