/* Configuration: load and validate a JSON config into an immutable, reference-counted snapshot. */
#ifndef SY_CONFIG_H
#define SY_CONFIG_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <jansson.h>

#include "cors.h"
#include "endstats.h"
#include "admin.h"
#include "redis.h"
#include "rstore.h"
#include "tenants.h"
#include "tls.h"

struct sy_route_policy;
struct sy_select_policy;
struct sy_batch_policy;
struct sy_batcher;
struct sy_backend_kind;

/* Active health checks of an endpoint; off when interval_ms is 0. */
struct sy_health_check {
	char *path;			/* after the base path; default: the kind's health_path */
	unsigned interval_ms;		/* default 0 (off) */
	unsigned timeout_ms;		/* default 2000 */
	unsigned healthy;		/* successes in a row to come back; default 2 */
	unsigned unhealthy;		/* failures in a row to go down; default 3 */
};

/* Reading an endpoint's load from its /metrics; off when interval_ms is 0. */
struct sy_scrape {
	char *path;			/* from the URL's root; default "/metrics" */
	unsigned interval_ms;		/* default 0 (off) */
	unsigned timeout_ms;		/* default 1000 */
};

/* The longest path a base URL may have. */
#define SY_BASE_PATH_MAX 500

/*
 * Prices of one model, in USD per 1M tokens; or, for a self-hosted model,
 * what each endpoint serving it costs per hour (proxy/hourly.h); a
 * backend's own cost_per_hour fills the same struct (sy_endpoint.hourly).
 */
struct sy_price {
	char *model;
	double input;
	double output;
	double cached_input;		/* defaults to input when absent */
	double hourly_usd;		/* > 0: self-hosted, input/output unused */
	double power_watts;
	double idle_power_share;
	double prompt_weight;
	double completion_weight;
	double cached_weight;
};

/* A backend endpoint: one replica reached at one base URL. */
struct sy_endpoint {
	size_t index;			/* position in sy_config.endpoints */
	char *name;
	char *url;			/* base URL as written, e.g. http://h:8000/v1 */
	int tls;			/* https */
	char *host;			/* host part (Host header, SNI, verification) */
	int port;			/* explicit or 80/443 */
	char *base_path;		/* path part without trailing '/', maybe "",
					   at most SY_BASE_PATH_MAX bytes */
	struct sockaddr_storage addr;	/* resolved at load */
	socklen_t addrlen;
	const struct sy_backend_kind *kind;
	char **models;			/* models served; nmodels 0 means any */
	size_t nmodels;
	unsigned weight;		/* default 1; 0 takes no traffic */
	unsigned max_concurrency;	/* 0: unlimited */
	unsigned cache_tokens;		/* its prefix cache's size; 0: unknown */
	unsigned tokenize;		/* enum sy_tokenizer: count_tokens asks it */
	struct sy_price hourly;		/* self-hosted: cost_per_hour and power;
					   hourly_usd 0: none */
	unsigned gpus;			/* its GPUs, for per-GPU figures; 0: not said */
	char *api_key_env;		/* NULL or the variable's name */
	char *api_key;			/* its value at load time, or NULL */
	char **forward_headers;		/* client headers passed on */
	size_t nforward_headers;
	int forward_client_key;		/* the client's key, not api_key */
	char *ca_file;			/* NULL: the system's CA store */
	int tls_verify;			/* default 1 */
	struct sy_health_check health;
	struct sy_scrape scrape;
	void *params;			/* the kind's own keys (kind->params),
					   or NULL */
	struct sy_endpoint_stats *stats;
};

struct sy_route;

/* The endpoints of one route that serve one model, with the routing policy's state. */
struct sy_pool {
	struct sy_route *route;
	const char *model;		/* served model, NULL on a wildcard route */
	struct sy_endpoint **endpoints;
	size_t nendpoints;
	void *policy_state;		/* from route->policy->create */
};

struct sy_alias {
	char *from;			/* name a client may send */
	char *to;			/* served model it maps to */
};

/* Retries of a route's requests on other endpoints. */
struct sy_retry {
	unsigned max;			/* retries per request; default 2, ≤ SY_MAX_TRIES - 1 */
	double budget;			/* retries ≤ budget × requests (+ min_per_s); default 0.2 */
	unsigned min_per_s;		/* retries always allowed per second; default 5 */
	unsigned backoff_ms;		/* base of the jittered exponential backoff; default 25 */
	unsigned max_backoff_ms;	/* default 1000 */
	unsigned on;			/* SY_RETRY_ON_* bits; default connect | 5xx |
					   429 | first_token */
	unsigned first_token_ms;	/* a stream's try without content by then
					   fails; default 0: no limit */
	unsigned hedge_after_ms;	/* a stream without content by then gets
					   a second try beside; default 0: off */
};
#define SY_RETRY_ON_CONNECT	0x1	/* refused, reset before any byte, TLS failure */
#define SY_RETRY_ON_5XX		0x2	/* 500, 502, 503, 504 from the backend */
#define SY_RETRY_ON_429		0x4	/* 429 (the endpoint rests for its Retry-After) */
#define SY_RETRY_ON_TIMEOUT	0x8	/* connect or first-byte timeout */
#define SY_RETRY_ON_FIRST_TOKEN	0x10	/* no content within first_token_ms */

/* Passive outlier ejection of a route's endpoints. */
struct sy_ejection {
	unsigned consecutive_failures;	/* failures in a row that eject; default 5, 0: off */
	double error_rate;		/* failure share over window_ms that ejects; default 0 (off) */
	unsigned min_requests;		/* requests in the window before error_rate counts; default 20 */
	unsigned window_ms;		/* default 10000 */
	unsigned cooldown_ms;		/* first ejection; doubles on each repeat; default 10000 */
	unsigned max_cooldown_ms;	/* default 300000 */
	double min_available;		/* never eject below this share of the pool; default 0.5 */
};

/* The queue a request waits in when every endpoint of its pool is full. */
struct sy_queue {
	unsigned max;			/* waiting requests per worker and pool; default 0: no queue */
	unsigned timeout_ms;		/* longest wait, then 503 with Retry-After; default 5000 */
};

/* Gateway-level batching of a route's embeddings and completions. */
struct sy_batching {
	const struct sy_batch_policy *policy;	/* NULL: the route does not batch */
	json_t *params;			/* the policy's parameters (object), owned */
	unsigned max_batch_size;	/* inputs in one batch; default 32 */
	uint64_t max_batch_tokens;	/* estimated tokens in one batch; default 0: no limit */
	uint64_t max_wait_us;		/* longest wait of a batch's first input; default 2000 */
	unsigned max_queue;		/* requests waiting in the batcher, all workers; default 1024 */
	struct sy_batcher *batcher;	/* shared by every worker; NULL when off */
};

/* The prompt cache of a route (see proxy/cache.h). */
struct sy_route_cache {
	int enabled;			/* default 0 */
	unsigned ttl_s;			/* default 3600 */
	size_t max_entry_bytes;		/* largest answer stored; default 1 MiB */
	int deterministic_only;		/* default 1: temperature 0, a seed, or embeddings */
	unsigned replay_chunk_tokens;	/* words per replayed stream chunk; default 4 */
	unsigned replay_interval_ms;	/* between replayed chunks; default 0: at once */
	char *namespace;		/* default: the route's name */
};

/* A route: which model names go to which endpoints, under which policies. */
struct sy_route {
	const struct sy_config *cfg;	/* the snapshot it belongs to */
	size_t index;
	char *name;
	char **models;			/* served model names; "*" alone: any */
	size_t nmodels;
	int wildcard;
	struct sy_alias *aliases;
	size_t naliases;
	struct sy_endpoint **endpoints;	/* default: every backend serving a model */
	size_t nendpoints;
	const struct sy_route_policy *policy;
	json_t *policy_params;		/* object (maybe empty), owned */
	const struct sy_select_policy *selection;
	json_t *selection_params;	/* object (maybe empty), owned */
	void *selection_state;
	struct sy_pool *pools;		/* one per model (one for a wildcard route) */
	size_t npools;
	struct sy_retry retry;
	struct sy_ejection ejection;
	struct sy_queue queue;
	char **fallbacks;		/* model names (served or alias) tried in order
					   when this route cannot answer; a route's
					   name stands for its first model */
	size_t nfallbacks;
	unsigned deadline_ms;		/* whole request across tries, queue and
					   fallbacks; default: timeouts.total_ms */
	struct sy_batching batch;	/* off unless the route has a batch object */
	struct sy_route_cache cache;
	struct sy_quota rate_limits;	/* the route's own, every key's together */
	unsigned limits_fail;		/* 0: the tenancy's; 1: open; 2: closed */
	atomic_ullong budget_start_us;	/* the retry budget's current window */
	atomic_ulong requests;		/* requests and retries in that window */
	atomic_ulong retries;
};

/* What is known of one served model (the top-level "models"). */
struct sy_model_info {
	char *model;
	unsigned context_length;	/* tokens, prompt and answer; 0: unknown */
};

struct sy_timeouts {
	unsigned connect_ms;		/* default 5000 */
	unsigned first_byte_ms;		/* default 300000 */
	unsigned idle_ms;		/* between stream events; default 60000 */
	unsigned total_ms;		/* default 600000 */
	unsigned drain_ms;		/* on SIGTERM; default 30000 */
	unsigned client_header_ms;	/* a request head, from its first byte; 30000 */
	unsigned client_body_ms;	/* a request body, after its head; 120000 */
	unsigned keepalive_ms;		/* an idle client connection; 75000 */
};

struct sy_limits {
	size_t max_body_bytes;		/* default 8 MiB */
	unsigned max_json_depth;	/* default 64 */
	unsigned max_connections;	/* client connections, all workers; default 4096 */
	unsigned max_connections_per_peer;	/* from one address; 0: any */
	size_t max_buffered_bytes;	/* whole answers held, all workers; 256 MiB */
	unsigned max_inflate_ratio;	/* decoded/encoded body size; default 200 */
};

/* The process's prompt cache store: the memory L1 and Redis (startup only). */
struct sy_cache_settings {
	size_t l1_max_bytes;		/* default 64 MiB; 0: no L1 */
	int coalesce;			/* default 1 */
	int redis;			/* a "redis" object is given */
	char *redis_host;		/* default 127.0.0.1 */
	int redis_port;			/* default 6379 */
	char *redis_unix;		/* a socket path instead of host and port */
	unsigned redis_db;		/* default 0 */
	char *redis_password;		/* from password_env at load, or NULL */
	char *key_prefix;		/* default "sy:cache:" */
	unsigned connect_timeout_ms;	/* default 200 */
	unsigned command_timeout_ms;	/* default 50 */
	unsigned lock_ms;		/* coalescing across instances; default 0: off */
};

struct sy_config {
	atomic_int refs;
	char *path;			/* file it came from; NULL in zero-config mode */
	char *listen;			/* "host:port" */
	char *admin;			/* "host:port", or NULL when disabled */
	struct sy_admin_conf admin_api;	/* who may use it */
	unsigned workers;		/* 0 in the file means: number of cores */
	char *access_log;		/* path, "stdout", or "off" */
	unsigned access_log_flush_ms;	/* 0: each line written at once; else
					   gathered per worker, written within */
	unsigned accounting_interval_ms; /* self-hosted cost's interval */
	struct sy_timeouts timeouts;
	struct sy_limits limits;
	struct sy_endpoint *endpoints;
	size_t nendpoints;
	struct sy_route *routes;
	size_t nroutes;
	struct sy_price *prices;
	size_t nprices;
	struct sy_model_info *models;
	size_t nmodels;
	struct sy_cache_settings cache;
	struct sy_tenancy tenancy;	/* keys, teams, limits and budgets */
	struct sy_cors cors;		/* browser origins allowed (proxy/cors.c) */
	struct sy_tls_conf tls;		/* the client listener's TLS (proxy/tls.c) */
	struct sy_responses_conf responses;	/* stored Responses (proxy/rstore.c) */
	struct sy_redis_conf redis;	/* the Redis every feature uses; with
					   none, cache.redis's */
	json_t *model_index;		/* private: client model name → route index */
};

/*
 * Loads and validates the config file at path.  Returns 0 and a snapshot
 * with one reference in *out, or -1 with *err (malloc'd, caller frees) of the
 * form "FILE:LINE:COL: json.path: message" (one error per line when there
 * are several).  Resolves endpoint host names, reads API keys from the
 * environment, and creates each pool's policy state.
 */
int sy_config_load_file(const char *path, struct sy_config **out, char **err);

/* As sy_config_load_file, from text; name stands for the file in errors. */
int sy_config_load_string(const char *text, const char *name,
    struct sy_config **out, char **err);

/*
 * Builds the zero-config snapshot: one openai endpoint per URL (named u0,
 * u1, ...), one wildcard route, round robin; listen, admin and access_log
 * may be NULL for the defaults (127.0.0.1:8080, 127.0.0.1:8081, stdout);
 * with tls_cert or tls_key (PEM files) the client listener speaks TLS.
 * Returns 0 or -1 with *err as above.
 */
int sy_config_from_upstreams(const char *const *urls, size_t nurls,
    const char *listen, const char *admin, const char *access_log,
    const char *tls_cert, const char *tls_key, struct sy_config **out,
    char **err);

/* Takes a reference; thread safe. */
struct sy_config *sy_config_ref(struct sy_config *cfg);

/* Drops a reference, freeing the snapshot at the last one; thread safe. */
void sy_config_unref(struct sy_config *cfg);

/*
 * The route serving the model name a client sent (a served model or an
 * alias; else the wildcard route), or NULL.
 */
struct sy_route *sy_config_route(const struct sy_config *cfg, const char *model);

/* The pool of route for served model (NULL: the wildcard pool), or NULL. */
struct sy_pool *sy_route_pool(const struct sy_route *route, const char *model);

/* The price of model, or NULL when the config has none. */
const struct sy_price *sy_config_price(const struct sy_config *cfg,
    const char *model);

/* The context length of served model in tokens, or 0 when unknown. */
unsigned sy_config_context_length(const struct sy_config *cfg,
    const char *model);

/*
 * Writes the model names clients may use (served models and aliases, in
 * config order, without duplicates) into a new JSON array of strings.
 */
json_t *sy_config_model_names(const struct sy_config *cfg);

/* Splits "host:port" (or "[v6]:port") into a socket address; 0 or -1. */
int sy_config_parse_hostport(const char *s, struct sockaddr_storage *ss,
    socklen_t *len);

#endif
