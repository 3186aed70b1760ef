/* Workers: one thread each, with its own event base, listener, upstream pools and metrics shard. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "batch.h"
#include "accesslog.h"
#include "config.h"
#include "metrics.h"
#include "server.h"
#include "upstream.h"
#include "util.h"
#include "wake.h"
#include "worker.h"

/* How long a stopped worker lets the last answers go out. */
#define STOP_GRACE_MS 200

/* How often a draining worker looks whether its connections are gone. */
#define DRAIN_POLL_MS 20

static void
drain_poll_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sy_worker *w = arg;

	/* Batches this worker sends for others' requests end first, and
	   calls whose client already has its answer. */
	if (sy_server_conns(w->server) == 0 && !sy_batch_port_busy(w->batching) &&
	    !sy_upstream_busy(w->upstream))
		event_base_loopexit(w->base, NULL);
}

/* The listener's limits from w's snapshot. */
static void
server_opts(struct sy_worker *w, struct sy_server_opts *opts)
{
	memset(opts, 0, sizeof *opts);
	opts->max_body = w->cfg->limits.max_body_bytes;
	opts->idle_ms = w->cfg->timeouts.keepalive_ms;
	opts->head_ms = w->cfg->timeouts.client_header_ms;
	opts->body_ms = w->cfg->timeouts.client_body_ms;
	opts->on_reject = sy_pipeline_reject;
	opts->write_ms = w->cfg->timeouts.idle_ms;
	opts->max_conns = w->cfg->limits.max_connections;
	opts->conn_count = &w->rt->conns;
	opts->max_per_peer = w->cfg->limits.max_connections_per_peer;
	opts->peer_counts = w->rt->peers;
	opts->tls = w->cfg->tls.ctx;
}

/* Reads the mailbox: a new snapshot, a drain or a stop. */
static void
wake_cb(void *arg)
{
	struct sy_worker *w = arg;
	struct timeval poll = { 0, DRAIN_POLL_MS * 1000 };
	struct sy_config *next;
	int drain, stop;

	pthread_mutex_lock(&w->lock);
	next = w->next_cfg;
	w->next_cfg = NULL;
	drain = w->drain;
	stop = w->stop;
	pthread_mutex_unlock(&w->lock);
	if (next != NULL) {
		struct sy_server_opts opts;

		sy_config_unref(w->cfg);
		w->cfg = next;
		server_opts(w, &opts);
		sy_server_set_opts(w->server, &opts);
		sy_upstream_sweep(w->upstream, w->cfg);
	}
	if (stop) {
		struct timeval grace = { 0, STOP_GRACE_MS * 1000 };

		/* Every exchange still open is ended, its last bytes sent. */
		sy_server_expire(w->server);
		event_base_loopexit(w->base, &grace);
		return;
	}
	if (drain && w->drain_timer == NULL) {
		sy_server_drain(w->server);
		w->drain_timer = event_new(w->base, -1, EV_PERSIST,
		    drain_poll_cb, w);
		event_add(w->drain_timer, &poll);
	}
}

/* Writes this worker's gathered access-log lines, every flush_ms. */
static void
log_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sy_worker *w = arg;

	sy_accesslog_flush(w->rt->log);
}

static void *
worker_main(void *arg)
{
	struct sy_worker *w = arg;
	unsigned ms = sy_accesslog_flush_ms(w->rt->log);
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	if (ms != 0) {
		w->log_flush = event_new(w->base, -1, EV_PERSIST, log_flush_cb,
		    w);
		event_add(w->log_flush, &tv);
	}
	event_base_dispatch(w->base);
	/* Whatever is still in flight ends here (its client is told nothing more). */
	sy_server_free(w->server);
	w->server = NULL;
	sy_pipeline_worker_stop(w);
	sy_upstream_free(w->upstream);
	w->upstream = NULL;
	sy_pipeline_worker_free(w);
	sy_accesslog_flush(w->rt->log);		/* lines of the last requests */
	atomic_store(&w->done, 1);
	return NULL;
}

int
sy_worker_start(struct sy_worker *w, unsigned index, struct sy_runtime *rt,
    int fd, struct sy_config *cfg, char **err)
{
	struct event_config *ec;
	struct sy_server_opts opts;
	char buf[256];

	w->index = index;
	w->rt = rt;
	w->listen_fd = fd;
	w->cfg = sy_config_ref(cfg);
	w->metrics = sy_metrics_shard(rt->metrics, index);
	atomic_init(&w->done, 0);
	pthread_mutex_init(&w->lock, NULL);
	ec = event_config_new();
	event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK);
	w->base = event_base_new_with_config(ec);
	event_config_free(ec);
	if (w->base == NULL) {
		*err = sy_xstrdup("cannot create an event base");
		return -1;
	}
	server_opts(w, &opts);
	w->server = sy_server_new(w->base, fd, &opts, sy_pipeline_handle, w);
	w->upstream = sy_upstream_new(w->base);
	sy_pipeline_worker_init(w);
	w->wake = sy_wake_new(w->base, wake_cb, w);
	if (w->server == NULL || w->wake == NULL) {
		*err = sy_xstrdup("cannot set up the worker's listener");
		return -1;
	}
	if ((errno = pthread_create(&w->thread, NULL, worker_main, w)) != 0) {
		snprintf(buf, sizeof buf, "cannot start worker thread: %s",
		    strerror(errno));
		*err = sy_xstrdup(buf);
		return -1;
	}
	return 0;
}

void
sy_worker_post_config(struct sy_worker *w, struct sy_config *cfg)
{
	pthread_mutex_lock(&w->lock);
	if (w->next_cfg != NULL)
		sy_config_unref(w->next_cfg);
	w->next_cfg = sy_config_ref(cfg);
	pthread_mutex_unlock(&w->lock);
	sy_wake_post(w->wake);
}

void
sy_worker_post_drain(struct sy_worker *w)
{
	pthread_mutex_lock(&w->lock);
	w->drain = 1;
	pthread_mutex_unlock(&w->lock);
	sy_wake_post(w->wake);
}

void
sy_worker_post_stop(struct sy_worker *w)
{
	pthread_mutex_lock(&w->lock);
	w->stop = 1;
	pthread_mutex_unlock(&w->lock);
	sy_wake_post(w->wake);
}

void
sy_worker_join(struct sy_worker *w)
{
	pthread_join(w->thread, NULL);
	if (w->drain_timer != NULL)
		event_free(w->drain_timer);
	if (w->log_flush != NULL)
		event_free(w->log_flush);
	sy_wake_free(w->wake);
	if (w->next_cfg != NULL)
		sy_config_unref(w->next_cfg);
	sy_config_unref(w->cfg);
	event_base_free(w->base);
	pthread_mutex_destroy(&w->lock);
}
