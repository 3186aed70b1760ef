/* The admin listener: Prometheus metrics, JSON stats, config reload, health. */
#ifndef SY_ADMIN_H
#define SY_ADMIN_H

struct evbuffer;
struct sy_conn;
struct sy_config;
struct sy_http1_msg;
struct sy_metrics;

struct sy_admin {
	struct sy_metrics *metrics;
	/* The snapshot in force (borrowed). */
	struct sy_config *(*current)(void *arg);
	/* Reloads the config; 0, or -1 with *err malloc'd. */
	int (*reload)(void *arg, char **err);
	void *arg;
};

/*
 * The admin listener's request handler (arg: struct sy_admin):
 * GET /metrics, GET /admin/stats, POST /admin/reload, GET /healthz.
 */
void sy_admin_handle(struct sy_conn *c, const struct sy_http1_msg *head,
    struct evbuffer *body, void *arg);

#endif
