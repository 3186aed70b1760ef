/* A worker's connection to Redis: one hiredis async context on its event base, shared by the features that use Redis (the prompt cache, rate limits and budgets, keys), with connect and command timeouts, reconnection with backoff, and failing fast when Redis is away. */
#ifndef SY_REDIS_H
#define SY_REDIS_H

#include <stdatomic.h>
#include <stddef.h>

struct event_base;
struct redisReply;

/* Where Redis is and how long to wait for it (startup settings). */
struct sy_redis_conf {
	int enabled;			/* a Redis is configured */
	char *host;			/* default 127.0.0.1 */
	int port;			/* default 6379 */
	char *unix_path;		/* a socket path instead of host and port */
	unsigned db;			/* default 0 */
	char *password;			/* read from an environment variable, or NULL */
	unsigned connect_timeout_ms;	/* default 200 */
	unsigned command_timeout_ms;	/* default 50 */
};

/* Process-wide counts of the workers' connections, for /metrics. */
struct sy_redis_stats {
	atomic_ullong errors;		/* failed commands and connections */
	atomic_ullong timeouts;		/* commands that gave up waiting */
	atomic_ullong reconnects;	/* connections made after a loss */
	atomic_int connected;		/* workers connected now */
};

struct sy_redis;
struct sy_redis_cmd;

/* The rows of the top-level "redis" object (struct sy_redis_conf). */
struct sy_conf_table;
extern const struct sy_conf_table sy_redis_conf_table;

/* Copies src into dst (its strings duplicated); dst owns them. */
void sy_redis_conf_copy(struct sy_redis_conf *dst,
    const struct sy_redis_conf *src);

/* Frees the strings of a conf made by sy_redis_conf_copy. */
void sy_redis_conf_clear(struct sy_redis_conf *c);

/*
 * Told a command's reply once: reply is NULL when Redis failed, was not
 * connected, or the command timeout struck; else the reply (an error
 * reply too), valid only during the call.
 */
typedef void (*sy_redis_fn)(void *arg, const struct redisReply *reply);

/*
 * A connection of one worker to the Redis of conf (borrowed, outlives it)
 * on base, counting in *stats; it connects at once and reconnects with
 * backoff.  Returns NULL when conf has no Redis.
 */
struct sy_redis *sy_redis_new(struct event_base *base,
    const struct sy_redis_conf *conf, struct sy_redis_stats *stats);

/* Closes r (pending commands are told nothing: cancel them first) and frees it. */
void sy_redis_free(struct sy_redis *r);

/* Whether r is connected now (a command would be sent). */
int sy_redis_connected(const struct sy_redis *r);

/*
 * Sends the command of argc arguments (argv[i], lens[i] bytes each) and
 * calls fn with its reply later (never during this call), under the
 * command timeout, unless cancelled first.  Returns the command, or NULL
 * when Redis is not connected or too many commands are in flight (fn is
 * never called: fail fast).
 */
struct sy_redis_cmd *sy_redis_command(struct sy_redis *r, sy_redis_fn fn,
    void *arg, int argc, const char **argv, const size_t *lens);

/* As sy_redis_command, with hiredis' printf-like format. */
struct sy_redis_cmd *sy_redis_commandf(struct sy_redis *r, sy_redis_fn fn,
    void *arg, const char *fmt, ...);

/* Sends a command whose reply nobody waits for (failures are counted). */
void sy_redis_send(struct sy_redis *r, const char *fmt, ...);

/* As sy_redis_send, with an argument vector as for sy_redis_command. */
void sy_redis_sendv(struct sy_redis *r, int argc, const char **argv,
    const size_t *lens);

/* Forgets a command whose callback has not been called yet. */
void sy_redis_cancel(struct sy_redis_cmd *c);

#endif
