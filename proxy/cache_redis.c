/* The prompt cache's L2: one hiredis async connection per worker on its event base, with connect and command timeouts, reconnection with backoff, and failing open. */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "cache.h"
#include "confrow.h"
#include "config.h"
#include "util.h"

#define BACKOFF_MIN_MS	100	/* first wait before reconnecting */
#define BACKOFF_MAX_MS	5000
#define MAX_TIMEOUTS	3	/* timeouts in a row that drop the connection */
#define MAX_PENDING	4096	/* lookups in flight; more go to the backend */
#define KEY_MAX		(256 + 2 * SY_CACHE_KEY_LEN + 6)	/* prefix, hex, ":lock", NUL */

struct sy_cache_redis {
	struct event_base *base;
	const struct sy_cache_settings *s;	/* the process's, outlives r */
	struct sy_cache_redis_stats *stats;
	redisAsyncContext *ac;		/* NULL while disconnected */
	int connected;
	int ever_connected;
	int closing;			/* in sy_cache_redis_free */
	unsigned backoff_ms;
	unsigned timeouts;		/* in a row */
	unsigned pending;		/* lookups sent, not answered */
	struct event *timer;		/* connect timeout, or reconnect wait */
};

/* A command whose reply someone waits for: a lookup (GET) or a lock (SET NX). */
struct sy_cache_get {
	struct sy_cache_redis *r;
	sy_cache_got_fn got;		/* a lookup's caller, or */
	sy_cache_locked_fn locked;	/* a lock's; both NULL once told or cancelled */
	void *arg;
	struct event *timer;		/* the command timeout */
};

static void connect_start(struct sy_cache_redis *r);

/* Bumps a counter of the shared stats. */
static void
count(atomic_ullong *c)
{
	atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

/* Arms r's timer ms from now. */
static void
arm(struct sy_cache_redis *r, unsigned ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	evtimer_add(r->timer, &tv);
}

/* The connection is gone or useless: forget it and retry after a backoff. */
static void
lost(struct sy_cache_redis *r)
{
	if (r->connected) {
		r->connected = 0;
		atomic_fetch_sub(&r->stats->connected, 1);
	}
	r->ac = NULL;
	r->timeouts = 0;
	if (r->closing)
		return;
	arm(r, r->backoff_ms);
	r->backoff_ms = r->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS :
	    r->backoff_ms * 2;
}

/* Closes the connection on our side (hiredis then fails what is pending). */
static void
drop(struct sy_cache_redis *r)
{
	redisAsyncContext *ac = r->ac;

	if (ac == NULL)
		return;
	count(&r->stats->errors);
	lost(r);
	redisAsyncFree(ac);
}

static void
on_connect(const redisAsyncContext *ac, int status)
{
	struct sy_cache_redis *r = ac->data;

	if (r->ac != ac)
		return;
	evtimer_del(r->timer);
	if (status != REDIS_OK) {
		count(&r->stats->errors);
		sy_log(SY_LOG_DEBUG, "cache: redis connect: %s", ac->errstr);
		lost(r);	/* hiredis frees ac after this call */
		return;
	}
	r->connected = 1;
	atomic_fetch_add(&r->stats->connected, 1);
	if (r->ever_connected)
		count(&r->stats->reconnects);
	r->ever_connected = 1;
	/* The backoff starts again only when Redis answers a command: a
	   server that accepts connections but hangs keeps it growing. */
}

static void
on_disconnect(const redisAsyncContext *ac, int status)
{
	struct sy_cache_redis *r = ac->data;

	if (r->ac != ac)
		return;	/* dropped by us */
	count(&r->stats->errors);
	lost(r);
}

/* Counts a failed reply of a command whose answer nobody waits for. */
static void
on_reply_checked(redisAsyncContext *ac, void *reply, void *arg)
{
	struct sy_cache_redis *r = arg;
	redisReply *rep = reply;

	if (!r->closing && (rep == NULL || rep->type == REDIS_REPLY_ERROR)) {
		count(&r->stats->errors);
		if (rep != NULL)
			sy_log(SY_LOG_WARN, "cache: redis: %s", rep->str);
	}
}

/* The timer: a connect that took too long, or the end of a backoff. */
static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sy_cache_redis *r = arg;

	if (r->ac != NULL && !r->connected) {
		sy_log(SY_LOG_DEBUG, "cache: redis connect timed out");
		drop(r);
		return;
	}
	if (r->ac == NULL)
		connect_start(r);
}

/* Starts a connection; AUTH and SELECT go first, queued until it is up. */
static void
connect_start(struct sy_cache_redis *r)
{
	const struct sy_cache_settings *s = r->s;
	redisAsyncContext *ac;

	ac = s->redis_unix != NULL ? redisAsyncConnectUnix(s->redis_unix) :
	    redisAsyncConnect(s->redis_host, s->redis_port);
	if (ac == NULL || ac->err) {
		count(&r->stats->errors);
		if (ac != NULL)
			redisAsyncFree(ac);
		lost(r);
		return;
	}
	ac->data = r;
	r->ac = ac;
	redisLibeventAttach(ac, r->base);
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	if (s->redis_password != NULL)
		redisAsyncCommand(ac, on_reply_checked, r, "AUTH %s",
		    s->redis_password);
	if (s->redis_db != 0)
		redisAsyncCommand(ac, on_reply_checked, r, "SELECT %u",
		    s->redis_db);
	arm(r, s->connect_timeout_ms);
}

struct sy_cache_redis *
sy_cache_redis_new(struct event_base *base, const struct sy_cache_settings *s,
    struct sy_cache_redis_stats *stats)
{
	struct sy_cache_redis *r;

	if (!s->redis)
		return NULL;
	r = sy_xcalloc(1, sizeof *r);
	r->base = base;
	r->s = s;
	r->stats = stats;
	r->backoff_ms = BACKOFF_MIN_MS;
	r->timer = evtimer_new(base, timer_cb, r);
	connect_start(r);
	return r;
}

void
sy_cache_redis_free(struct sy_cache_redis *r)
{
	redisAsyncContext *ac;

	if (r == NULL)
		return;
	r->closing = 1;
	if ((ac = r->ac) != NULL) {
		lost(r);
		redisAsyncFree(ac);
	}
	event_free(r->timer);
	free(r);
}

/*
 * Writes the Redis key of key (prefix and hex, then suffix) into buf;
 * returns its length.
 */
static size_t
redis_key(const struct sy_cache_redis *r, const unsigned char *key,
    const char *suffix, char buf[KEY_MAX])
{
	char hex[2 * SY_CACHE_KEY_LEN + 1];
	int n;

	sy_cache_key_hex(key, hex);
	n = snprintf(buf, KEY_MAX, "%s%s%s", r->s->key_prefix, hex, suffix);
	return (size_t)n;
}

/*
 * Tells g's caller (once) and stops its timer: v (a reference passed on)
 * to a lookup's, taken to a lock's.
 */
static void
tell(struct sy_cache_get *g, struct sy_cache_value *v, int taken)
{
	sy_cache_got_fn got = g->got;
	sy_cache_locked_fn locked = g->locked;

	g->got = NULL;
	g->locked = NULL;
	if (g->timer != NULL) {
		event_free(g->timer);
		g->timer = NULL;
	}
	if (got != NULL)
		got(g->arg, v);
	else {
		sy_cache_value_unref(v);
		if (locked != NULL)
			locked(g->arg, taken);
	}
}

/* Whether rep is a failure (counted); a reply counts as Redis answering. */
static int
failed(struct sy_cache_redis *r, const redisReply *rep)
{
	r->pending--;
	if (rep == NULL || rep->type == REDIS_REPLY_ERROR) {
		if (!r->closing)
			count(&r->stats->errors);
		return 1;
	}
	r->timeouts = 0;
	r->backoff_ms = BACKOFF_MIN_MS;
	return 0;
}

static void
on_get(redisAsyncContext *ac, void *reply, void *arg)
{
	struct sy_cache_get *g = arg;
	struct sy_cache_redis *r = g->r;
	redisReply *rep = reply;
	struct sy_cache_value *v = NULL;

	if (!failed(r, rep) && rep->type == REDIS_REPLY_STRING &&
	    (v = sy_cache_value_decode(rep->str, rep->len)) == NULL)
		count(&r->stats->errors);	/* not a value of ours */
	tell(g, v, -1);
	free(g);
}

static void
on_lock(redisAsyncContext *ac, void *reply, void *arg)
{
	struct sy_cache_get *g = arg;
	redisReply *rep = reply;
	int taken = -1;

	if (!failed(g->r, rep))
		taken = rep->type == REDIS_REPLY_STATUS &&
		    strcmp(rep->str, "OK") == 0;
	tell(g, NULL, taken);
	free(g);
}

static void
get_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sy_cache_get *g = arg;
	struct sy_cache_redis *r = g->r;

	count(&r->stats->timeouts);
	tell(g, NULL, -1);
	/* A Redis that stopped answering is dropped and tried again later. */
	if (++r->timeouts >= MAX_TIMEOUTS)
		drop(r);
}

/*
 * Sends the command of fmt with its reply to cb for g (filled but for its
 * timer), under the command timeout.  Returns g, or NULL (g freed) when
 * Redis is not connected or the command cannot be sent.
 */
static struct sy_cache_get *
send_waited(struct sy_cache_get *g, redisCallbackFn *cb, const char *fmt, ...)
{
	struct sy_cache_redis *r = g->r;
	unsigned ms = r->s->command_timeout_ms;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	va_list ap;
	int rc;

	if (!r->connected || r->pending >= MAX_PENDING) {
		free(g);
		return NULL;
	}
	va_start(ap, fmt);
	rc = redisvAsyncCommand(r->ac, cb, g, fmt, ap);
	va_end(ap);
	if (rc != REDIS_OK) {
		free(g);
		count(&r->stats->errors);
		return NULL;
	}
	r->pending++;
	g->timer = evtimer_new(r->base, get_timeout_cb, g);
	evtimer_add(g->timer, &tv);
	return g;
}

/* A new command of r for arg, told through got or locked. */
static struct sy_cache_get *
get_new(struct sy_cache_redis *r, sy_cache_got_fn got,
    sy_cache_locked_fn locked, void *arg)
{
	struct sy_cache_get *g = sy_xcalloc(1, sizeof *g);

	g->r = r;
	g->got = got;
	g->locked = locked;
	g->arg = arg;
	return g;
}

struct sy_cache_get *
sy_cache_redis_get(struct sy_cache_redis *r,
    const unsigned char key[SY_CACHE_KEY_LEN], sy_cache_got_fn got, void *arg)
{
	char k[KEY_MAX];
	size_t klen = redis_key(r, key, "", k);

	return send_waited(get_new(r, got, NULL, arg), on_get, "GET %b", k,
	    klen);
}

struct sy_cache_get *
sy_cache_redis_lock(struct sy_cache_redis *r,
    const unsigned char key[SY_CACHE_KEY_LEN], unsigned ms,
    sy_cache_locked_fn locked, void *arg)
{
	char k[KEY_MAX];
	size_t klen = redis_key(r, key, ":lock", k);

	return send_waited(get_new(r, NULL, locked, arg), on_lock,
	    "SET %b 1 NX PX %u", k, klen, ms);
}

void
sy_cache_redis_unlock(struct sy_cache_redis *r,
    const unsigned char key[SY_CACHE_KEY_LEN])
{
	char k[KEY_MAX];
	size_t klen = redis_key(r, key, ":lock", k);

	if (r->connected && redisAsyncCommand(r->ac, on_reply_checked, r,
	    "DEL %b", k, klen) != REDIS_OK)
		count(&r->stats->errors);
}

void
sy_cache_redis_cancel(struct sy_cache_get *g)
{
	g->got = NULL;
	g->locked = NULL;
	if (g->timer != NULL) {
		event_free(g->timer);
		g->timer = NULL;
	}
}

void
sy_cache_redis_set(struct sy_cache_redis *r,
    const unsigned char key[SY_CACHE_KEY_LEN],
    const struct sy_cache_value *v, unsigned ttl_s)
{
	struct evbuffer *b;
	char k[KEY_MAX];
	size_t klen;

	if (!r->connected)
		return;
	klen = redis_key(r, key, "", k);
	b = evbuffer_new();
	sy_cache_value_encode(v, b);
	if (redisAsyncCommand(r->ac, on_reply_checked, r, "SET %b %b EX %u", k,
	    klen, evbuffer_pullup(b, -1), evbuffer_get_length(b),
	    ttl_s) != REDIS_OK)
		count(&r->stats->errors);
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
