/* The prompt cache's L2 in Redis, over the worker's connection (proxy/redis.c): lookups, locks across instances, stores; failing open. */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "cache.h"
#include "confrow.h"
#include "config.h"
#include "redis.h"
#include "util.h"

#define KEY_MAX		(256 + 2 * SY_CACHE_KEY_LEN + 6)	/* prefix, hex, ":lock", NUL */

struct sy_cache_redis {
	struct sy_redis *r;		/* the worker's connection */
	const char *key_prefix;		/* the process's, outlives cr */
	struct sy_redis_stats *stats;
};

/* A command whose reply someone waits for: a lookup (GET) or a lock (SET NX). */
struct sy_cache_get {
	struct sy_redis_cmd *cmd;
	struct sy_cache_redis *cr;
	sy_cache_got_fn got;		/* a lookup's caller, or */
	sy_cache_locked_fn locked;	/* a lock's */
	void *arg;
};

struct sy_cache_redis *
sy_cache_redis_new(struct sy_redis *r, const char *key_prefix,
    struct sy_redis_stats *stats)
{
	struct sy_cache_redis *cr;

	if (r == NULL)
		return NULL;
	cr = sy_xcalloc(1, sizeof *cr);
	cr->r = r;
	cr->key_prefix = key_prefix;
	cr->stats = stats;
	return cr;
}

void
sy_cache_redis_free(struct sy_cache_redis *cr)
{
	free(cr);
}

/*
 * Writes the Redis key of key (prefix and hex, then suffix) into buf;
 * returns its length.
 */
static size_t
redis_key(const struct sy_cache_redis *cr, const unsigned char *key,
    const char *suffix, char buf[KEY_MAX])
{
	char hex[2 * SY_CACHE_KEY_LEN + 1];
	int n;

	sy_cache_key_hex(key, hex);
	n = snprintf(buf, KEY_MAX, "%s%s%s", cr->key_prefix, hex, suffix);
	return (size_t)n;
}

static void
on_get(void *arg, const redisReply *rep)
{
	struct sy_cache_get *g = arg;
	struct sy_cache_value *v = NULL;

	if (rep != NULL && rep->type == REDIS_REPLY_STRING &&
	    (v = sy_cache_value_decode(rep->str, rep->len)) == NULL)
		atomic_fetch_add(&g->cr->stats->errors, 1);	/* not a value of ours */
	g->got(g->arg, v);
	free(g);
}

static void
on_lock(void *arg, const redisReply *rep)
{
	struct sy_cache_get *g = arg;
	int taken = -1;

	if (rep != NULL && rep->type != REDIS_REPLY_ERROR)
		taken = rep->type == REDIS_REPLY_STATUS &&
		    strcmp(rep->str, "OK") == 0;
	g->locked(g->arg, taken);
	free(g);
}

/* A command of cr for arg, told through got or locked; NULL when not sent. */
static struct sy_cache_get *
get_send(struct sy_cache_redis *cr, sy_cache_got_fn got,
    sy_cache_locked_fn locked, void *arg, const char *key, size_t klen,
    unsigned lock_ms)
{
	struct sy_cache_get *g = sy_xcalloc(1, sizeof *g);

	g->cr = cr;
	g->got = got;
	g->locked = locked;
	g->arg = arg;
	g->cmd = got != NULL ?
	    sy_redis_commandf(cr->r, on_get, g, "GET %b", key, klen) :
	    sy_redis_commandf(cr->r, on_lock, g, "SET %b 1 NX PX %u", key,
	    klen, lock_ms);
	if (g->cmd == NULL) {
		free(g);
		return NULL;
	}
	return g;
}

struct sy_cache_get *
sy_cache_redis_get(struct sy_cache_redis *cr,
    const unsigned char key[SY_CACHE_KEY_LEN], sy_cache_got_fn got, void *arg)
{
	char k[KEY_MAX];
	size_t klen = redis_key(cr, key, "", k);

	return get_send(cr, got, NULL, arg, k, klen, 0);
}

struct sy_cache_get *
sy_cache_redis_lock(struct sy_cache_redis *cr,
    const unsigned char key[SY_CACHE_KEY_LEN], unsigned ms,
    sy_cache_locked_fn locked, void *arg)
{
	char k[KEY_MAX];
	size_t klen = redis_key(cr, key, ":lock", k);

	return get_send(cr, NULL, locked, arg, k, klen, ms);
}

void
sy_cache_redis_unlock(struct sy_cache_redis *cr,
    const unsigned char key[SY_CACHE_KEY_LEN])
{
	char k[KEY_MAX];
	size_t klen = redis_key(cr, key, ":lock", k);

	sy_redis_send(cr->r, "DEL %b", k, klen);
}

/*
 * Forgets a lookup or lock whose callback has not been called yet (its
 * reply, when it comes, is dropped; g goes with it).
 */
void
sy_cache_redis_cancel(struct sy_cache_get *g)
{
	sy_redis_cancel(g->cmd);
	free(g);
}

void
sy_cache_redis_set(struct sy_cache_redis *cr,
    const unsigned char key[SY_CACHE_KEY_LEN],
    const struct sy_cache_value *v, unsigned ttl_s)
{
	struct evbuffer *b;
	char k[KEY_MAX];
	size_t klen;

	if (!sy_redis_connected(cr->r))
		return;
	klen = redis_key(cr, key, "", k);
	b = evbuffer_new();
	sy_cache_value_encode(v, b);
	sy_redis_send(cr->r, "SET %b %b EX %u", k, klen,
	    evbuffer_pullup(b, -1), evbuffer_get_length(b), ttl_s);
	evbuffer_free(b);
}

/* ==== Config ==== */

/*
 * Redis is on when the object is given: at host and port, or at a unix
 * socket (not both), 127.0.0.1 when neither is given.
 */
static void
redis_check(struct sy_conf *c, const json_t *obj, const char *path,
    void *base)
{
	struct sy_cache_settings *s = base;
	char p[SY_CONF_PATHLEN];

	if ((s->redis = obj != NULL) == 0)
		return;
	if (s->redis_unix != NULL && (s->redis_host != NULL ||
	    json_object_get(obj, "port") != NULL))
		sy_conf_fail(c, sy_conf_path_key(p, path, "unix"), "give "
		    "either a unix socket or host and port");
	if (s->redis_host == NULL && s->redis_unix == NULL)
		s->redis_host = sy_xstrdup("127.0.0.1");
}

#define REDIS_AT(field) offsetof(struct sy_cache_settings, field)

/* Its fields are the cache store's own (struct sy_cache_settings). */
static const struct sy_conf_row redis_rows[] = {
	{ .name = "host", .type = SY_CONF_STRING, .offset = REDIS_AT(redis_host),
	  .doc = "Redis host; default 127.0.0.1" },
	{ .name = "port", .type = SY_CONF_INT, .offset = REDIS_AT(redis_port),
	  .def.u = 6379, .min = 1, .max = 65535, .doc = "Redis port" },
	{ .name = "unix", .type = SY_CONF_STRING,
	  .offset = REDIS_AT(redis_unix),
	  .doc = "a unix socket instead of host and port" },
	{ .name = "db", .type = SY_CONF_UINT, .offset = REDIS_AT(redis_db),
	  .max = 65535, .doc = "database number (SELECT)" },
	{ .name = "password_env", .type = SY_CONF_SECRET,
	  .offset = REDIS_AT(redis_password), .what = "a password",
	  .doc = "environment variable holding the password (AUTH)" },
	{ .name = "key_prefix", .type = SY_CONF_STRING,
	  .offset = REDIS_AT(key_prefix), .def.s = "sy:cache:", .max = 256,
	  .doc = "prefix of every key" },
	{ .name = "connect_timeout_ms", .type = SY_CONF_MS,
	  .offset = REDIS_AT(connect_timeout_ms), .def.u = 200, .min = 1,
	  .max = 60000, .doc = "longest connect" },
	{ .name = "command_timeout_ms", .type = SY_CONF_MS,
	  .offset = REDIS_AT(command_timeout_ms), .def.u = 50, .min = 1,
	  .max = 60000, .doc = "longest wait for a lookup's reply" },
	{ .name = "lock_ms", .type = SY_CONF_MS, .offset = REDIS_AT(lock_ms),
	  .max = 600000, .doc = "coalescing across instances; 0: off" },
	{ .name = NULL }
};

const struct sy_conf_table sy_redis_table = {
	.path = "cache.redis",
	.rows = redis_rows,
	.size = sizeof(struct sy_cache_settings),
	.check = redis_check
};
