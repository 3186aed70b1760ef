/* A worker's connection to Redis: one hiredis async context on its event base, shared by the features that use Redis (the prompt cache, rate limits and budgets, keys), with connect and command timeouts, reconnection with backoff, and failing fast when Redis is away. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "confrow.h"
#include "redis.h"
#include "util.h"

#define BACKOFF_MIN_MS	100	/* first wait before reconnecting */
#define BACKOFF_MAX_MS	5000
#define MAX_TIMEOUTS	3	/* timeouts in a row that drop the connection */
#define MAX_PENDING	4096	/* commands in flight; more fail at once */

struct sy_redis {
	struct event_base *base;
	const struct sy_redis_conf *conf;	/* the process's, outlives r */
	struct sy_redis_stats *stats;
	redisAsyncContext *ac;		/* NULL while disconnected */
	int connected;
	int ever_connected;
	int closing;			/* in sy_redis_free */
	unsigned backoff_ms;
	unsigned timeouts;		/* in a row */
	unsigned pending;		/* commands sent, not answered */
	struct event *timer;		/* connect timeout, or reconnect wait */
};

/* A command whose reply someone waits for. */
struct sy_redis_cmd {
	struct sy_redis *r;
	sy_redis_fn fn;			/* NULL once told or cancelled */
	void *arg;
	struct event *timer;		/* the command timeout */
};

static void connect_start(struct sy_redis *r);

/* Bumps a counter of the shared stats. */
static void
count(atomic_ullong *c)
{
	atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

/* Arms r's timer ms from now. */
static void
arm(struct sy_redis *r, unsigned ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	evtimer_add(r->timer, &tv);
}

/* The connection is gone or useless: forget it and retry after a backoff. */
static void
lost(struct sy_redis *r)
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
drop(struct sy_redis *r)
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
	struct sy_redis *r = ac->data;

	if (r->ac != ac)
		return;
	evtimer_del(r->timer);
	if (status != REDIS_OK) {
		count(&r->stats->errors);
		sy_log(SY_LOG_DEBUG, "redis: connect: %s", ac->errstr);
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
	struct sy_redis *r = ac->data;

	if (r->ac != ac)
		return;	/* dropped by us */
	count(&r->stats->errors);
	lost(r);
}

/* Counts a failed reply of a command whose answer nobody waits for. */
static void
on_reply_checked(redisAsyncContext *ac, void *reply, void *arg)
{
	struct sy_redis *r = arg;
	redisReply *rep = reply;

	if (!r->closing && (rep == NULL || rep->type == REDIS_REPLY_ERROR)) {
		count(&r->stats->errors);
		if (rep != NULL)
			sy_log(SY_LOG_WARN, "redis: %s", rep->str);
	}
}

/* The timer: a connect that took too long, or the end of a backoff. */
static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sy_redis *r = arg;

	if (r->ac != NULL && !r->connected) {
		sy_log(SY_LOG_DEBUG, "redis: connect timed out");
		drop(r);
		return;
	}
	if (r->ac == NULL)
		connect_start(r);
}

/* Starts a connection; AUTH and SELECT go first, queued until it is up. */
static void
connect_start(struct sy_redis *r)
{
	const struct sy_redis_conf *s = r->conf;
	redisAsyncContext *ac;

	ac = s->unix_path != NULL ? redisAsyncConnectUnix(s->unix_path) :
	    redisAsyncConnect(s->host, s->port);
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
	if (s->password != NULL)
		redisAsyncCommand(ac, on_reply_checked, r, "AUTH %s",
		    s->password);
	if (s->db != 0)
		redisAsyncCommand(ac, on_reply_checked, r, "SELECT %u",
		    s->db);
	arm(r, s->connect_timeout_ms);
}

/* ==== Config: the top-level "redis" object ==== */

/* Redis is on when the object is given: at host and port, or a unix socket. */
static void
conf_check(struct sy_conf *c, const json_t *obj, const char *path, void *base)
{
	struct sy_redis_conf *r = base;
	char p[SY_CONF_PATHLEN];

	if ((r->enabled = obj != NULL) == 0)
		return;
	if (r->unix_path != NULL && (r->host != NULL ||
	    json_object_get(obj, "port") != NULL))
		sy_conf_fail(c, sy_conf_path_key(p, path, "unix"), "give "
		    "either a unix socket or host and port");
	if (r->host == NULL && r->unix_path == NULL)
		r->host = sy_xstrdup("127.0.0.1");
}

#define CONF_AT(field) offsetof(struct sy_redis_conf, field)

static const struct sy_conf_row conf_rows[] = {
	{ .name = "host", .type = SY_CONF_STRING, .offset = CONF_AT(host),
	  .doc = "Redis host; default 127.0.0.1" },
	{ .name = "port", .type = SY_CONF_INT, .offset = CONF_AT(port),
	  .def.u = 6379, .min = 1, .max = 65535, .doc = "Redis port" },
	{ .name = "unix", .type = SY_CONF_STRING, .offset = CONF_AT(unix_path),
	  .doc = "a unix socket instead of host and port" },
	{ .name = "db", .type = SY_CONF_UINT, .offset = CONF_AT(db),
	  .max = 65535, .doc = "database number (SELECT)" },
	{ .name = "password_env", .type = SY_CONF_SECRET,
	  .offset = CONF_AT(password), .what = "a password",
	  .doc = "environment variable holding the password (AUTH)" },
	{ .name = "connect_timeout_ms", .type = SY_CONF_MS,
	  .offset = CONF_AT(connect_timeout_ms), .def.u = 200, .min = 1,
	  .max = 60000, .doc = "longest connect" },
	{ .name = "command_timeout_ms", .type = SY_CONF_MS,
	  .offset = CONF_AT(command_timeout_ms), .def.u = 50, .min = 1,
	  .max = 60000, .doc = "longest wait for a reply" },
	{ .name = NULL }
};

const struct sy_conf_table sy_redis_conf_table = {
	.path = "redis",
	.rows = conf_rows,
	.size = sizeof(struct sy_redis_conf),
	.check = conf_check
};

void
sy_redis_conf_copy(struct sy_redis_conf *dst, const struct sy_redis_conf *src)
{
	sy_conf_copy(&sy_redis_conf_table, dst, src);
	dst->enabled = src->enabled;
}

void
sy_redis_conf_clear(struct sy_redis_conf *c)
{
	sy_conf_free(&sy_redis_conf_table, c);
}

struct sy_redis *
sy_redis_new(struct event_base *base, const struct sy_redis_conf *conf,
    struct sy_redis_stats *stats)
{
	struct sy_redis *r;

	if (!conf->enabled)
		return NULL;
	r = sy_xcalloc(1, sizeof *r);
	r->base = base;
	r->conf = conf;
	r->stats = stats;
	r->backoff_ms = BACKOFF_MIN_MS;
	r->timer = evtimer_new(base, timer_cb, r);
	connect_start(r);
	return r;
}

void
sy_redis_free(struct sy_redis *r)
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

int
sy_redis_connected(const struct sy_redis *r)
{
	return r != NULL && r->connected;
}

/* Tells c's caller (once) and stops its timer. */
static void
tell(struct sy_redis_cmd *c, const redisReply *reply)
{
	sy_redis_fn fn = c->fn;

	c->fn = NULL;
	if (c->timer != NULL) {
		event_free(c->timer);
		c->timer = NULL;
	}
	if (fn != NULL)
		fn(c->arg, reply);
}

static void
on_reply(redisAsyncContext *ac, void *reply, void *arg)
{
	struct sy_redis_cmd *c = arg;
	struct sy_redis *r = c->r;
	redisReply *rep = reply;

	(void)ac;
	r->pending--;
	if (rep == NULL || rep->type == REDIS_REPLY_ERROR) {
		if (!r->closing)
			count(&r->stats->errors);
	} else {
		/* A reply counts as Redis answering. */
		r->timeouts = 0;
		r->backoff_ms = BACKOFF_MIN_MS;
	}
	tell(c, rep);
	free(c);
}

static void
cmd_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sy_redis_cmd *c = arg;
	struct sy_redis *r = c->r;

	(void)fd;
	(void)what;
	count(&r->stats->timeouts);
	tell(c, NULL);
	/* A Redis that stopped answering is dropped and tried again later. */
	if (++r->timeouts >= MAX_TIMEOUTS)
		drop(r);
}

/* A new command of r for fn, its reply to come: NULL when it cannot be sent now. */
static struct sy_redis_cmd *
cmd_new(struct sy_redis *r, sy_redis_fn fn, void *arg)
{
	struct sy_redis_cmd *c;

	if (r == NULL || !r->connected || r->pending >= MAX_PENDING)
		return NULL;
	c = sy_xcalloc(1, sizeof *c);
	c->r = r;
	c->fn = fn;
	c->arg = arg;
	return c;
}

/* The command c was sent (rc): its timeout runs; NULL (c freed) when it could not be. */
static struct sy_redis_cmd *
cmd_sent(struct sy_redis_cmd *c, int rc)
{
	struct sy_redis *r = c->r;
	unsigned ms = r->conf->command_timeout_ms;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	if (rc != REDIS_OK) {
		free(c);
		count(&r->stats->errors);
		return NULL;
	}
	r->pending++;
	c->timer = evtimer_new(r->base, cmd_timeout_cb, c);
	evtimer_add(c->timer, &tv);
	return c;
}

struct sy_redis_cmd *
sy_redis_command(struct sy_redis *r, sy_redis_fn fn, void *arg, int argc,
    const char **argv, const size_t *lens)
{
	struct sy_redis_cmd *c = cmd_new(r, fn, arg);

	if (c == NULL)
		return NULL;
	return cmd_sent(c, redisAsyncCommandArgv(r->ac, on_reply, c, argc,
	    argv, lens));
}

struct sy_redis_cmd *
sy_redis_commandf(struct sy_redis *r, sy_redis_fn fn, void *arg,
    const char *fmt, ...)
{
	struct sy_redis_cmd *c = cmd_new(r, fn, arg);
	va_list ap;
	int rc;

	if (c == NULL)
		return NULL;
	va_start(ap, fmt);
	rc = redisvAsyncCommand(r->ac, on_reply, c, fmt, ap);
	va_end(ap);
	return cmd_sent(c, rc);
}

void
sy_redis_send(struct sy_redis *r, const char *fmt, ...)
{
	va_list ap;
	int rc;

	if (r == NULL || !r->connected)
		return;
	va_start(ap, fmt);
	rc = redisvAsyncCommand(r->ac, on_reply_checked, r, fmt, ap);
	va_end(ap);
	if (rc != REDIS_OK)
		count(&r->stats->errors);
}

void
sy_redis_sendv(struct sy_redis *r, int argc, const char **argv,
    const size_t *lens)
{
	if (r == NULL || !r->connected)
		return;
	if (redisAsyncCommandArgv(r->ac, on_reply_checked, r, argc, argv,
	    lens) != REDIS_OK)
		count(&r->stats->errors);
}

void
sy_redis_cancel(struct sy_redis_cmd *c)
{
	c->fn = NULL;
	if (c->timer != NULL) {
		event_free(c->timer);
		c->timer = NULL;
	}
}
