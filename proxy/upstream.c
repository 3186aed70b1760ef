/* The upstream client: per-worker keep-alive connection pools to backend endpoints (HTTP/1.1, TLS), one request per connection at a time. */
#include <sys/queue.h>
#include <sys/socket.h>

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "config.h"
#include "http1.h"
#include "upstream.h"
#include "sock.h"
#include "util.h"

/* Idle connections kept per endpoint, and how long an idle one is kept. */
#define POOL_MAX_IDLE 128
#define POOL_IDLE_SEC 60

struct upconn;

/* The connections of one worker to one endpoint (by URL and TLS settings). */
struct pool {
	LIST_ENTRY(pool) link;
	struct sy_upstream *u;
	char *key;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char *host;			/* for SNI and verification */
	char *host_header;		/* "host[:port]" */
	int tls;
	SSL_CTX *ssl_ctx;		/* NULL for plain http */
	int verify;
	size_t active;			/* calls using the pool */
	LIST_HEAD(, upconn) idle;
	size_t nidle;
};

/* A connection: a plain socket, or a TLS bufferevent. */
struct upconn {
	struct pool *pool;
	struct sy_sock *sock;		/* plain http */
	struct bufferevent *bev;	/* https */
	LIST_ENTRY(upconn) link;	/* in pool->idle while idle */
	struct sy_upstream_call *call;	/* NULL while idle */
	int reused;			/* carried a request before */
};

enum call_phase { PHASE_CONNECT, PHASE_WAIT, PHASE_READ };

struct sy_upstream_call {
	struct sy_upstream *u;
	LIST_ENTRY(sy_upstream_call) link;
	struct pool *pool;
	struct upconn *conn;
	struct sy_timeouts t;
	struct evbuffer *request;	/* the whole request, kept for one retry */
	struct sy_http1_msg msg;
	struct evbuffer *data;		/* decoded body bytes for on_body */
	const struct sy_upstream_cbs *cbs;
	void *arg;
	struct event *timer;
	enum call_phase phase;
	uint64_t t_start;
	uint64_t t_phase;		/* start of the current phase */
	uint64_t t_last;		/* last byte read */
	int got_bytes;
	int head_done;
	int retried;
	int paused;
	int in_cb;
	int cancelled;
	char early_error[256];		/* failure found while starting */
};

struct sy_upstream {
	struct event_base *base;
	struct evbuffer *scratch;	/* a request being written at once */
	LIST_HEAD(, pool) pools;
	LIST_HEAD(, sy_upstream_call) calls;
};

static void call_start(struct sy_upstream_call *call);
static const struct sy_sock_cbs call_sock_cbs, idle_sock_cbs;
static void call_read_cb(struct bufferevent *bev, void *arg);
static void call_event_cb(struct bufferevent *bev, short what, void *arg);

/* ==== Pools ==== */

/* A new TLS client context verifying peers against ca_file or the system store. */
static SSL_CTX *
tls_context(const struct sy_endpoint *ep)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (ep->tls_verify) {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
		if (ep->ca_file != NULL) {
			if (SSL_CTX_load_verify_locations(ctx, ep->ca_file,
			    NULL) != 1)
				sy_log(SY_LOG_WARN, "endpoint %s: cannot load CA "
				    "file %s", ep->name, ep->ca_file);
		} else
			SSL_CTX_set_default_verify_paths(ctx);
	} else
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	return ctx;
}

/* Writes the key that tells pools apart: URL, TLS settings. */
static void
pool_key(const struct sy_endpoint *ep, char *key, size_t len)
{
	snprintf(key, len, "%s|%s|%d", ep->url, ep->ca_file ? ep->ca_file : "",
	    ep->tls_verify);
}

/* Whether p serves ep (same key and resolved address). */
static int
pool_serves(const struct pool *p, const struct sy_endpoint *ep)
{
	char key[2048];

	pool_key(ep, key, sizeof key);
	return strcmp(p->key, key) == 0 && p->addrlen == ep->addrlen &&
	    memcmp(&p->addr, &ep->addr, ep->addrlen) == 0;
}

/* The pool for ep on u, created at first use. */
static struct pool *
pool_get(struct sy_upstream *u, const struct sy_endpoint *ep)
{
	struct pool *p;
	char key[2048];
	int v6 = strchr(ep->host, ':') != NULL;
	int default_port = ep->port == (ep->tls ? 443 : 80);

	LIST_FOREACH(p, &u->pools, link)
		if (pool_serves(p, ep))
			return p;
	pool_key(ep, key, sizeof key);
	p = sy_xcalloc(1, sizeof *p);
	p->u = u;
	p->key = sy_xstrdup(key);
	memcpy(&p->addr, &ep->addr, ep->addrlen);
	p->addrlen = ep->addrlen;
	p->host = sy_xstrdup(ep->host);
	if (default_port)
		snprintf(key, sizeof key, "%s%s%s", v6 ? "[" : "", ep->host,
		    v6 ? "]" : "");
	else
		snprintf(key, sizeof key, "%s%s%s:%d", v6 ? "[" : "", ep->host,
		    v6 ? "]" : "", ep->port);
	p->host_header = sy_xstrdup(key);
	p->verify = ep->tls_verify;
	p->tls = ep->tls;
	if (ep->tls && (p->ssl_ctx = tls_context(ep)) == NULL)
		sy_log(SY_LOG_ERROR, "endpoint %s: cannot create a TLS context",
		    ep->name);
	LIST_INIT(&p->idle);
	LIST_INSERT_HEAD(&u->pools, p, link);
	return p;
}

/* ==== Connections ==== */

/* What c has read and not consumed. */
static struct evbuffer *
conn_input(struct upconn *c)
{
	return c->sock != NULL ? sy_sock_input(c->sock) :
	    bufferevent_get_input(c->bev);
}

/* Reads on c or stops; while idle, read_ms of silence closes it. */
static void
conn_reading(struct upconn *c, int on, unsigned read_ms)
{
	struct timeval tv = { read_ms / 1000, (read_ms % 1000) * 1000 };

	if (c->sock != NULL) {
		sy_sock_read(c->sock, on, read_ms);
		return;
	}
	bufferevent_set_timeouts(c->bev, read_ms != 0 ? &tv : NULL, NULL);
	if (on)
		bufferevent_enable(c->bev, EV_READ);
	else
		bufferevent_disable(c->bev, EV_READ);
}

/* Closes c's socket and frees c. */
static void
conn_close(struct upconn *c)
{
	if (c->sock != NULL)
		sy_sock_free(c->sock);
	else
		bufferevent_free(c->bev);
	free(c);
}

static void
conn_free(struct upconn *c)
{
	if (c->call == NULL) {
		LIST_REMOVE(c, link);
		c->pool->nidle--;
	}
	conn_close(c);
}

/* An idle connection heard something (close, error, stray bytes): drop it. */
static void
idle_read_cb(struct bufferevent *bev, void *arg)
{
	conn_free(arg);
}

static void
idle_event_cb(struct bufferevent *bev, short what, void *arg)
{
	conn_free(arg);
}

static void
idle_sock_read(struct sy_sock *s, void *arg)
{
	conn_free(arg);
}

static void
idle_sock_end(struct sy_sock *s, enum sy_sock_end why, void *arg)
{
	conn_free(arg);
}

static const struct sy_sock_cbs idle_sock_cbs = {
	.on_read = idle_sock_read,
	.on_end = idle_sock_end
};

/* Puts c back in its pool for the next request, or closes it when the pool is full. */
static void
conn_release(struct upconn *c)
{
	struct pool *p = c->pool;

	c->call = NULL;
	if (p->nidle >= POOL_MAX_IDLE) {
		conn_close(c);
		return;
	}
	c->reused = 1;
	LIST_INSERT_HEAD(&p->idle, c, link);
	p->nidle++;
	if (c->sock != NULL)
		sy_sock_set_cbs(c->sock, &idle_sock_cbs, c);
	else
		bufferevent_setcb(c->bev, idle_read_cb, NULL, idle_event_cb, c);
	conn_reading(c, 1, POOL_IDLE_SEC * 1000);
}

/*
 * A new connection to p's endpoint for call, connecting, or NULL with a
 * reason in buf.  A plain one is a socket; a TLS one a bufferevent.
 */
static struct upconn *
conn_new(struct pool *p, struct sy_upstream_call *call, char *buf, size_t len)
{
	struct event_base *base = p->u->base;
	struct upconn *c = sy_xcalloc(1, sizeof *c);
	SSL *ssl;

	c->pool = p;
	snprintf(buf, len, "cannot create a connection");
	if (!p->tls) {
		c->sock = sy_sock_connect(base, (struct sockaddr *)&p->addr,
		    p->addrlen, &call_sock_cbs, call);
		if (c->sock == NULL) {
			snprintf(buf, len, "cannot connect to backend: %s",
			    strerror(errno));
			goto fail;
		}
		return c;
	}
	if (p->ssl_ctx == NULL) {
		/* Never fall back to plain text. */
		snprintf(buf, len, "cannot create a TLS context for the backend");
		goto fail;
	}
	if ((ssl = SSL_new(p->ssl_ctx)) == NULL)
		goto fail;
	SSL_set_tlsext_host_name(ssl, p->host);
	if (p->verify)
		SSL_set1_host(ssl, p->host);
	c->bev = bufferevent_openssl_socket_new(base, -1, ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		SSL_free(ssl);
		goto fail;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
	bufferevent_setcb(c->bev, call_read_cb, NULL, call_event_cb, call);
	if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&p->addr,
	    (int)p->addrlen) != 0) {
		snprintf(buf, len, "cannot connect to backend: %s",
		    strerror(errno));
		bufferevent_free(c->bev);
		goto fail;
	}
	return c;
fail:
	free(c);
	return NULL;
}

/* ==== Calls ==== */

/* Frees call and its connection (closed unless released before). */
static void
call_destroy(struct sy_upstream_call *call)
{
	if (call->conn != NULL) {
		call->conn->call = NULL;
		conn_close(call->conn);
	}
	LIST_REMOVE(call, link);
	call->pool->active--;
	event_free(call->timer);
	if (call->request != NULL)
		evbuffer_free(call->request);
	evbuffer_free(call->data);
	sy_http1_free(&call->msg);
	free(call);
}

/* Milliseconds of the current phase's timeout. */
static unsigned
phase_ms(const struct sy_upstream_call *call)
{
	switch (call->phase) {
	case PHASE_CONNECT:
		return call->t.connect_ms;
	case PHASE_WAIT:
		return call->t.first_byte_ms;
	default:
		return call->t.idle_ms;
	}
}

/* Arms the timer for the earlier of the phase's and the total deadline. */
static void
call_arm(struct sy_upstream_call *call)
{
	uint64_t now = sy_now_us(), total, phase, at;
	struct timeval tv;

	total = call->t_start + (uint64_t)call->t.total_ms * 1000;
	phase = (call->phase == PHASE_READ ? call->t_last : call->t_phase) +
	    (uint64_t)phase_ms(call) * 1000;
	at = phase < total ? phase : total;
	if (call->paused)
		at = total;
	at = at > now ? at - now : 0;
	tv.tv_sec = at / 1000000;
	tv.tv_usec = at % 1000000;
	evtimer_add(call->timer, &tv);
}

/* Ends call with an error reported to its owner. */
static void
call_fail(struct sy_upstream_call *call, enum sy_upstream_error err,
    const char *msg)
{
	const struct sy_upstream_cbs *cbs = call->cbs;
	void *arg = call->arg;

	call_destroy(call);
	cbs->on_error(arg, err, msg);
}

static void
call_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sy_upstream_call *call = arg;
	uint64_t now = sy_now_us();
	static const char *names[] = {
		"connect timeout", "first byte timeout", "idle timeout"
	};

	if (call->early_error[0] != '\0') {
		call_fail(call, SY_UP_CONNECT, call->early_error);
		return;
	}
	if (now >= call->t_start + (uint64_t)call->t.total_ms * 1000) {
		call_fail(call, SY_UP_TIMEOUT, "total timeout");
		return;
	}
	if (!call->paused && now >= (call->phase == PHASE_READ ? call->t_last :
	    call->t_phase) + (uint64_t)phase_ms(call) * 1000) {
		call_fail(call, SY_UP_TIMEOUT, names[call->phase]);
		return;
	}
	call_arm(call);
}

/* The response ended properly: keep the connection if it may carry another. */
static void
call_finish(struct sy_upstream_call *call)
{
	const struct sy_upstream_cbs *cbs = call->cbs;
	struct upconn *c = call->conn;
	void *arg = call->arg;

	if (c != NULL && call->msg.keep_alive && !call->msg.until_close &&
	    evbuffer_get_length(conn_input(c)) == 0) {
		call->conn = NULL;
		conn_release(c);
	}
	call_destroy(call);
	cbs->on_done(arg);
}

/*
 * Hands what was read to the owner.  Returns -1 when the call ended inside
 * (finished, failed or cancelled), 0 to read on.
 */
static int
call_deliver(struct sy_upstream_call *call)
{
	struct evbuffer *in = conn_input(call->conn);
	int r;

	while (!call->head_done) {
		r = sy_http1_parse_head(&call->msg, in);
		if (r < 0) {
			call_fail(call, SY_UP_PROTOCOL, "invalid HTTP response");
			return -1;
		}
		if (r == 0)
			return 0;
		if (call->msg.status >= 100 && call->msg.status < 200) {
			sy_http1_reset(&call->msg);
			continue;
		}
		call->head_done = 1;
		if (call->msg.status == 204 || call->msg.status == 304)
			call->msg.no_body = 1;
		call->in_cb = 1;
		call->cbs->on_head(call->arg, &call->msg);
		call->in_cb = 0;
		if (call->cancelled) {
			call_destroy(call);
			return -1;
		}
		if (call->msg.no_body) {
			call_finish(call);
			return -1;
		}
	}
	if (call->msg.state == SY_HTTP1_DONE) {
		call_finish(call);
		return -1;
	}
	r = sy_http1_read_body(&call->msg, in, call->data);
	if (evbuffer_get_length(call->data) > 0) {
		call->in_cb = 1;
		call->cbs->on_body(call->arg, call->data);
		call->in_cb = 0;
		if (call->cancelled) {
			call_destroy(call);
			return -1;
		}
	}
	if (r < 0) {
		call_fail(call, SY_UP_PROTOCOL, "invalid HTTP response body");
		return -1;
	}
	if (r == 1) {
		call_finish(call);
		return -1;
	}
	return 0;
}

/* Response bytes arrived. */
static void
call_readable(struct sy_upstream_call *call)
{
	/* The request was kept for a retry on a new connection, which only a
	   connection closed before any response byte makes: no more. */
	if (!call->got_bytes && call->request != NULL) {
		evbuffer_free(call->request);
		call->request = NULL;
	}
	call->got_bytes = 1;
	call->t_last = sy_now_us();
	if (call->phase != PHASE_READ) {
		call->phase = PHASE_READ;
		call_arm(call);
	}
	call_deliver(call);
}

/* The connection (and TLS handshake) is up: the request is on its way. */
static void
call_connected(struct sy_upstream_call *call, evutil_socket_t fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	call->phase = PHASE_WAIT;
	call->t_phase = sy_now_us();
	call_arm(call);
}

/*
 * The connection ended (eof: the backend closed it; why: the connect
 * failure's description while connecting).
 */
static void
call_closed(struct sy_upstream_call *call, int eof, const char *why)
{
	if (call->phase == PHASE_CONNECT) {
		call_fail(call, SY_UP_CONNECT, why);
		return;
	}
	/* Whatever is still buffered belongs to the response. */
	if (evbuffer_get_length(conn_input(call->conn)) > 0 &&
	    call_deliver(call) < 0)
		return;
	if (eof && call->head_done && sy_http1_eof(&call->msg)) {
		call_finish(call);
		return;
	}
	if (!call->got_bytes && call->conn->reused && !call->retried) {
		/* A keep-alive connection the backend closed as we reused it. */
		call->retried = 1;
		conn_close(call->conn);
		call->conn = NULL;
		call_start(call);
		return;
	}
	call_fail(call, SY_UP_RESET, call->got_bytes ?
	    "backend closed the connection before the response ended" :
	    "backend closed the connection without answering");
}

/* Describes a connect failure (errno err, 0: closed) into buf. */
static const char *
connect_error(int err, char *buf, size_t len)
{
	snprintf(buf, len, "cannot connect to backend: %s",
	    err ? evutil_socket_error_to_string(err) : "connection closed");
	return buf;
}

/* Plain connections. */
static void
call_sock_read(struct sy_sock *s, void *arg)
{
	call_readable(arg);
}

static void
call_sock_connected(struct sy_sock *s, void *arg)
{
	call_connected(arg, sy_sock_fd(s));
}

static void
call_sock_end(struct sy_sock *s, enum sy_sock_end why, void *arg)
{
	char buf[512];

	call_closed(arg, why == SY_SOCK_EOF,
	    connect_error(sy_sock_error(s), buf, sizeof buf));
}

static const struct sy_sock_cbs call_sock_cbs = {
	.on_read = call_sock_read,
	.on_end = call_sock_end,
	.on_connected = call_sock_connected
};

/* TLS connections. */
static void
call_read_cb(struct bufferevent *bev, void *arg)
{
	call_readable(arg);
}

static void
call_event_cb(struct bufferevent *bev, short what, void *arg)
{
	char buf[512], tls[256];
	unsigned long e;

	if (what & BEV_EVENT_CONNECTED) {
		call_connected(arg, bufferevent_getfd(bev));
		return;
	}
	if ((e = bufferevent_get_openssl_error(bev)) != 0) {
		ERR_error_string_n(e, tls, sizeof tls);
		snprintf(buf, sizeof buf, "TLS handshake with backend failed: %s",
		    tls);
	} else
		connect_error(EVUTIL_SOCKET_ERROR(), buf, sizeof buf);
	call_closed(arg, (what & BEV_EVENT_EOF) != 0, buf);
}

/*
 * Fails call from the next loop turn, so that sy_upstream_send never calls
 * back before it returned.
 */
static void
call_fail_later(struct sy_upstream_call *call, const char *msg)
{
	struct timeval now = { 0, 0 };

	snprintf(call->early_error, sizeof call->early_error, "%s", msg);
	evtimer_add(call->timer, &now);
}

/*
 * Sends call's request (kept whole for a retry) on its connection: on a
 * plain socket it is written at once when connected (what the kernel does
 * not take waits), which saves arming write interest on most requests.
 */
static void
conn_send_request(struct sy_upstream_call *call)
{
	struct upconn *c = call->conn;

	if (c->sock != NULL) {
		/* A copy: a reference would keep a chain of its own (1 KiB or
		   more) for every request the socket's output ever held. */
		evbuffer_add(call->u->scratch, evbuffer_pullup(call->request, -1),
		    evbuffer_get_length(call->request));
		sy_sock_set_cbs(c->sock, &call_sock_cbs, call);
		sy_sock_send(c->sock, call->u->scratch);
		sy_sock_read(c->sock, 1, 0);
		return;
	}
	bufferevent_setcb(c->bev, call_read_cb, NULL, call_event_cb, call);
	bufferevent_set_timeouts(c->bev, NULL, NULL);
	evbuffer_add_buffer_reference(bufferevent_get_output(c->bev),
	    call->request);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

/* Puts call on an idle connection or a new one and writes the request. */
static void
call_start(struct sy_upstream_call *call)
{
	struct pool *p = call->pool;
	struct upconn *c = call->retried ? NULL : LIST_FIRST(&p->idle);
	char buf[256];

	if (c != NULL) {
		LIST_REMOVE(c, link);
		p->nidle--;
		call->phase = PHASE_WAIT;
	} else {
		if ((c = conn_new(p, call, buf, sizeof buf)) == NULL) {
			call_fail_later(call, buf);
			return;
		}
		call->phase = PHASE_CONNECT;
	}
	c->call = call;
	call->conn = c;
	call->t_phase = sy_now_us();
	conn_send_request(call);
	call_arm(call);
}

struct sy_upstream_call *
sy_upstream_send(struct sy_upstream *u, struct sy_endpoint *ep,
    const struct sy_timeouts *t, const char *method, const char *target,
    const char *headers, struct evbuffer *body,
    const struct sy_upstream_cbs *cbs, void *arg)
{
	struct sy_upstream_call *call = sy_xcalloc(1, sizeof *call);
	size_t len = body != NULL ? evbuffer_get_length(body) : 0;
	struct evbuffer_iovec iov;
	size_t hlen, room;
	char *o;

	call->u = u;
	call->pool = pool_get(u, ep);
	call->pool->active++;
	call->t = *t;
	call->cbs = cbs;
	call->arg = arg;
	call->t_start = sy_now_us();
	call->request = evbuffer_new();
	call->data = evbuffer_new();
	call->timer = evtimer_new(u->base, call_timer_cb, call);
	sy_http1_init(&call->msg, SY_HTTP1_RESPONSE, 64 * 1024, 200);
	/* The head, written at once: "POST target HTTP/1.1", Host, body framing. */
	hlen = headers != NULL ? strlen(headers) : 0;
	room = strlen(method) + strlen(target) + strlen(call->pool->host_header) +
	    hlen + 128;
	evbuffer_reserve_space(call->request, (ev_ssize_t)room, &iov, 1);
	o = iov.iov_base;
	o = sy_put_str(o, method);
	*o++ = ' ';
	o = sy_put_str(o, target);
	o = SY_PUT_LIT(o, " HTTP/1.1\r\nHost: ");
	o = sy_put_str(o, call->pool->host_header);
	if (body != NULL) {
		o = SY_PUT_LIT(o, "\r\nContent-Type: application/json\r\n"
		    "Content-Length: ");
		o = sy_put_u64(o, len);
	}
	o = SY_PUT_LIT(o, "\r\n");
	if (headers != NULL)
		o = sy_put_bytes(o, headers, hlen);
	o = SY_PUT_LIT(o, "\r\n");
	iov.iov_len = (size_t)(o - (char *)iov.iov_base);
	evbuffer_commit_space(call->request, &iov, 1);
	if (body != NULL)
		evbuffer_add_buffer(call->request, body);
	LIST_INSERT_HEAD(&u->calls, call, link);
	call_start(call);
	return call;
}

void
sy_upstream_cancel(struct sy_upstream_call *call)
{
	if (call->in_cb)
		call->cancelled = 1;
	else
		call_destroy(call);
}

void
sy_upstream_rebind(struct sy_upstream_call *call,
    const struct sy_upstream_cbs *cbs, void *arg)
{
	call->cbs = cbs;
	call->arg = arg;
}

void
sy_upstream_pause(struct sy_upstream_call *call, int paused)
{
	if (call->conn == NULL || call->paused == paused)
		return;
	call->paused = paused;
	if (!paused)
		call->t_last = sy_now_us();
	conn_reading(call->conn, !paused, 0);
	call_arm(call);
}

/* Closes p's idle connections and frees it (no call may use it). */
static void
pool_free(struct pool *p)
{
	while (!LIST_EMPTY(&p->idle))
		conn_free(LIST_FIRST(&p->idle));
	LIST_REMOVE(p, link);
	if (p->ssl_ctx != NULL)
		SSL_CTX_free(p->ssl_ctx);
	free(p->key);
	free(p->host);
	free(p->host_header);
	free(p);
}

void
sy_upstream_sweep(struct sy_upstream *u, const struct sy_config *cfg)
{
	struct pool *p, *next;
	size_t i;

	for (p = LIST_FIRST(&u->pools); p != NULL; p = next) {
		next = LIST_NEXT(p, link);
		if (p->active > 0)
			continue;
		for (i = 0; i < cfg->nendpoints; i++)
			if (pool_serves(p, &cfg->endpoints[i]))
				break;
		if (i == cfg->nendpoints)
			pool_free(p);
	}
}

struct sy_upstream *
sy_upstream_new(struct event_base *base)
{
	struct sy_upstream *u = sy_xcalloc(1, sizeof *u);

	u->base = base;
	u->scratch = evbuffer_new();
	LIST_INIT(&u->pools);
	LIST_INIT(&u->calls);
	return u;
}

int
sy_upstream_busy(const struct sy_upstream *u)
{
	return !LIST_EMPTY(&u->calls);
}

void
sy_upstream_free(struct sy_upstream *u)
{
	struct sy_upstream_call *call;
	struct pool *p;

	while ((call = LIST_FIRST(&u->calls)) != NULL)
		call_destroy(call);
	while ((p = LIST_FIRST(&u->pools)) != NULL)
		pool_free(p);
	evbuffer_free(u->scratch);
	free(u);
}
