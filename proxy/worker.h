/* Workers: one thread each, with its own event base, listener, upstream pools and metrics shard; and the process-wide runtime they share. */
#ifndef SY_WORKER_H
#define SY_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "redis.h"
#include "server.h"

struct event;
struct sy_waitq;
struct sy_batch_port;
struct sy_batch_calls;
struct event_base;
struct sy_config;
struct sy_server;
struct sy_upstream;
struct sy_metrics;
struct sy_metrics_shard;
struct sy_accesslog;
struct sy_cache;
struct sy_cache_worker;
struct sy_rstore;
struct sy_wake;
struct sy_heartbeat;
struct sy_prefix_bus;

/* What every worker shares: set up by main before the workers start. */
struct sy_runtime {
	struct sy_metrics *metrics;
	struct sy_accesslog *log;
	struct sy_cache *cache;		/* the prompt cache's store, or NULL */
	struct sy_rstore *rstore;	/* stored Responses kept in memory */
	struct sy_redis_conf redis;	/* where Redis is (startup settings) */
	struct sy_redis_stats redis_stats;	/* the workers' connections */
	atomic_uint conns;		/* open client connections, all workers */
	atomic_size_t buffered;		/* bytes of whole backend answers held */
	atomic_uint peers[SY_PEER_SLOTS];	/* connections by address hash */
	uint32_t boot_id;		/* random, prefixes request ids */
};

struct sy_worker {
	unsigned index;
	struct sy_runtime *rt;
	pthread_t thread;
	struct event_base *base;
	int listen_fd;
	struct sy_server *server;
	struct sy_upstream *upstream;
	struct sy_metrics_shard *metrics;
	struct sy_config *cfg;		/* snapshot new requests take */
	struct sy_waitq *waitq;		/* requests waiting for a free endpoint */
	struct sy_batch_port *batching;	/* batched answers arrive here */
	struct sy_batch_calls *batch_calls;	/* calls of batches it sent */
	struct sy_redis *redis;		/* its Redis connection, or NULL */
	struct sy_heartbeat *heartbeat;	/* the instance's, on worker 0 */
	struct sy_prefix_bus *prefix_bus;	/* shared prefix placements, on
					   worker 0 */
	struct sy_cache_worker *cache;	/* the prompt cache's mailbox */
	uint64_t next_id;
	atomic_int done;		/* the thread's loop has ended */

	/* Mailbox from the main thread. */
	pthread_mutex_t lock;
	struct sy_wake *wake;
	struct event *drain_timer;
	struct event *log_flush;	/* writes gathered access-log lines */
	struct sy_config *next_cfg;	/* a new snapshot to switch to */
	int drain;			/* stop accepting, exit when idle */
	int stop;			/* exit now */
};

/*
 * Starts worker index on the listening socket fd (taken over) with the
 * snapshot cfg (a reference is taken).  Returns 0, or -1 with *err.
 */
int sy_worker_start(struct sy_worker *w, unsigned index, struct sy_runtime *rt,
    int fd, struct sy_config *cfg, char **err);

/* Hands w a new snapshot (w takes its own reference); any thread. */
void sy_worker_post_config(struct sy_worker *w, struct sy_config *cfg);

/* Asks w to stop accepting and to exit once its requests are done. */
void sy_worker_post_drain(struct sy_worker *w);

/* Asks w to exit now, ending its requests. */
void sy_worker_post_stop(struct sy_worker *w);

/* Waits for w's thread and frees what it holds (not w itself). */
void sy_worker_join(struct sy_worker *w);

/*
 * The request path of the client listener: called by the server for each
 * request with the worker as arg (see proxy/pipeline.c).
 */
struct sy_conn;
struct sy_http1_msg;
struct evbuffer;
void sy_pipeline_handle(struct sy_conn *c, const struct sy_http1_msg *head,
    struct evbuffer *body, void *arg);

/* Sets up and frees the pipeline's per-worker state (wait queue, batch port). */
void sy_pipeline_worker_init(struct sy_worker *w);
void sy_pipeline_worker_free(struct sy_worker *w);

/*
 * At a stop, before the upstream pools go: ends the calls of batches this
 * worker sent (no client of its own waits on them), their members told 503.
 */
void sy_pipeline_worker_stop(struct sy_worker *w);

/* Logs and counts a request the listener rejected itself (arg: the worker). */
void sy_pipeline_reject(void *arg, int status, const char *method,
    const char *target, const char *message, uint64_t bytes_out);

#endif
