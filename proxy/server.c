/* The HTTP/1.1 server side: accepts client connections on a worker's event base, reads requests, writes whole or streamed responses. */
#include <sys/queue.h>
#include <sys/socket.h>

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "canon.h"
#include "config.h"
#include "http1.h"
#include "server.h"
#include "sock.h"
#include "util.h"

/* Input buffered while a request is being handled (pipelining) before reads pause. */
#define BUSY_INPUT_MAX (64 * 1024)
/* After a reject: how long and how much is read away before closing. */
#define LINGER_MS 5000
#define LINGER_MAX (64 * 1024 * 1024)
/* Accepting pauses this long when the process is out of descriptors. */
#define ACCEPT_PAUSE_MS 100

enum conn_state {
	CONN_HEAD,		/* reading a request head */
	CONN_BODY,		/* reading its body */
	CONN_BUSY,		/* a handler owns the exchange */
	CONN_CLOSING		/* flushing the last response, then closing */
};

struct sy_conn {
	struct sy_server *srv;
	struct sy_sock *sock;
	TAILQ_ENTRY(sy_conn) link;
	enum conn_state state;
	struct sy_http1_msg msg;
	struct evbuffer *body;
	struct evbuffer *scratch;	/* a response being put together */
	int keep_alive;		/* of the current exchange */
	int chunked;		/* streamed response uses chunked framing */
	int head_only;		/* response to HEAD: no body bytes */
	int linger;		/* unread request bytes may follow: read them
				   away after the last response before closing,
				   so the client sees the response, not a reset */
	size_t lingered;	/* bytes read away */
	uint64_t sent;		/* bytes sent on the connection */
	atomic_uint *peer;	/* its peer's counter, or NULL */
	int head_started;	/* bytes of the next request have arrived
				   (or it is the first: head_ms from accept) */
	int fresh;		/* accepted, and no byte read yet */
	struct event *timer;	/* idle, head, body or linger deadline */
	void *owner;
	sy_gone_fn gone;
	sy_drained_fn drained;
};

struct sy_server {
	struct event_base *base;
	struct evconnlistener *listener;
	struct sy_server_opts opts;
	sy_handler_fn handler;
	void *arg;
	int draining;
	struct event *accept_pause;
	size_t nconns;
	TAILQ_HEAD(, sy_conn) conns;
};

static void conn_reject(struct sy_conn *c, int status, const char *code,
    const char *message);
static void conn_read_cb(struct sy_sock *sock, void *arg);
static void conn_write_cb(struct sy_sock *sock, void *arg);
static void conn_event_cb(struct sy_sock *sock, enum sy_sock_end why,
    void *arg);

/* Arms c's deadline ms from now; 0 disarms it. */
static void
conn_arm(struct sy_conn *c, unsigned ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	if (ms == 0)
		evtimer_del(c->timer);
	else
		evtimer_add(c->timer, &tv);
}

/* Waits for the next request: idle deadline once the last response is out. */
static void
conn_wait_next(struct sy_conn *c)
{
	c->head_started = 0;
	if (sy_sock_pending(c->sock) == 0)
		conn_arm(c, c->srv->opts.idle_ms);
	else
		conn_arm(c, 0);
}

/* Closes c and frees it; its owner is not told. */
static void
conn_free(struct sy_conn *c)
{
	struct sy_server *s = c->srv;

	TAILQ_REMOVE(&s->conns, c, link);
	s->nconns--;
	if (s->opts.conn_count != NULL)
		atomic_fetch_sub(s->opts.conn_count, 1);
	if (c->peer != NULL)
		atomic_fetch_sub(c->peer, 1);
	sy_sock_free(c->sock);
	event_free(c->timer);
	sy_http1_free(&c->msg);
	evbuffer_free(c->body);
	evbuffer_free(c->scratch);
	free(c);
}

/* A deadline struck: the client was idle, slow, or lingering. */
static void
conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sy_conn *c = arg;

	/* A late request is told so; a connection that sent nothing is not. */
	if ((c->state == CONN_HEAD && c->head_started && !c->fresh) ||
	    c->state == CONN_BODY)
		conn_reject(c, 408, "request_timeout", c->state == CONN_BODY ?
		    "the request body did not arrive in time" :
		    "the request head did not arrive in time");
	else if (c->state != CONN_BUSY)
		conn_free(c);
}

/*
 * The last response is out: close c, or first shut the sending side and
 * read away what the client still sends, for at most LINGER_MS.
 */
static void
conn_close_flushed(struct sy_conn *c)
{
	if (!c->linger) {
		conn_free(c);
		return;
	}
	c->linger = 2;
	sy_sock_shutdown(c->sock);
	conn_arm(c, LINGER_MS);
	sy_sock_read(c->sock, 1, 0);
}

/* Ends the current exchange: the next request may be read, or c closes. */
static void
conn_end_exchange(struct sy_conn *c)
{
	c->owner = NULL;
	c->gone = NULL;
	c->drained = NULL;
	c->chunked = 0;
	c->head_only = 0;
	evbuffer_drain(c->body, evbuffer_get_length(c->body));
	sy_http1_reset(&c->msg);
	if (!c->keep_alive || c->srv->draining) {
		c->state = CONN_CLOSING;
		sy_sock_read(c->sock, 0, 0);
		if (sy_sock_pending(c->sock) == 0)
			conn_close_flushed(c);
		return;
	}
	c->state = CONN_HEAD;
	conn_wait_next(c);
	sy_sock_read(c->sock, 1, 0);
	if (evbuffer_get_length(sy_sock_input(c->sock)) > 0)
		sy_sock_kick(c->sock);
}

/*
 * Sends what c->scratch holds.  When nothing waits before it, it is written
 * at once: the socket's write interest is armed only when the kernel does
 * not take it all (saves two epoll_ctl calls and a loop turn a response).
 */
static void
conn_send(struct sy_conn *c)
{
	c->sent += evbuffer_get_length(c->scratch);
	sy_sock_send(c->sock, c->scratch);
}

/*
 * Puts the status line and the headers every response carries in scratch,
 * then a Content-Length of len unless len is (size_t)-1, then the blank
 * line when it is known.
 */
static void
write_head(struct sy_conn *c, int status, const char *content_type,
    const char *headers, size_t len)
{
	const char *reason = sy_http1_reason(status);
	size_t hlen = headers != NULL ? strlen(headers) : 0;
	struct evbuffer_iovec iov;
	char *o;

	evbuffer_reserve_space(c->scratch, (ev_ssize_t)(strlen(reason) +
	    (content_type ? strlen(content_type) : 0) + hlen + 160), &iov, 1);
	o = SY_PUT_LIT((char *)iov.iov_base, "HTTP/1.1 ");
	o = sy_put_u64(o, (unsigned)status);
	*o++ = ' ';
	o = sy_put_str(o, reason);
	o = SY_PUT_LIT(o, "\r\nServer: switchyard\r\n");
	if (content_type != NULL) {
		o = SY_PUT_LIT(o, "Content-Type: ");
		o = sy_put_str(o, content_type);
		o = SY_PUT_LIT(o, "\r\n");
	}
	if (!c->keep_alive || c->srv->draining)
		o = SY_PUT_LIT(o, "Connection: close\r\n");
	else if (c->msg.version_minor == 0)
		o = SY_PUT_LIT(o, "Connection: keep-alive\r\n");
	if (headers != NULL)
		o = sy_put_bytes(o, headers, hlen);
	if (len != (size_t)-1) {
		o = SY_PUT_LIT(o, "Content-Length: ");
		o = sy_put_u64(o, len);
		o = SY_PUT_LIT(o, "\r\n\r\n");
	}
	iov.iov_len = (size_t)(o - (char *)iov.iov_base);
	evbuffer_commit_space(c->scratch, &iov, 1);
}

void
sy_conn_respond(struct sy_conn *c, int status, const char *content_type,
    const char *headers, struct evbuffer *body)
{
	write_head(c, status, content_type, headers,
	    body != NULL ? evbuffer_get_length(body) : 0);
	if (body != NULL && !c->head_only)
		evbuffer_add_buffer(c->scratch, body);
	conn_send(c);
	conn_end_exchange(c);
}

void
sy_conn_stream_start(struct sy_conn *c, int status, const char *content_type,
    const char *headers)
{
	/* An HTTP/1.0 client cannot take chunks: the stream ends at close. */
	c->chunked = c->msg.version_minor >= 1;
	if (!c->chunked)
		c->keep_alive = 0;
	write_head(c, status, content_type, headers, (size_t)-1);
	if (c->chunked)
		SY_ADD_LIT(c->scratch, "Transfer-Encoding: chunked\r\n");
	SY_ADD_LIT(c->scratch, "Cache-Control: no-cache\r\n\r\n");
	/* Sent with the first chunk. */
}

void
sy_conn_stream_write(struct sy_conn *c, struct evbuffer *data)
{
	if (evbuffer_get_length(data) == 0 || c->head_only)
		evbuffer_drain(data, evbuffer_get_length(data));
	else if (c->chunked)
		sy_http1_write_chunk(c->scratch, data);
	else
		evbuffer_add_buffer(c->scratch, data);
	conn_send(c);
}

void
sy_conn_stream_end(struct sy_conn *c, struct evbuffer *last)
{
	if (last != NULL && evbuffer_get_length(last) > 0 && !c->head_only) {
		if (c->chunked)
			sy_http1_write_chunk(c->scratch, last);
		else
			evbuffer_add_buffer(c->scratch, last);
	}
	if (last != NULL)
		evbuffer_drain(last, evbuffer_get_length(last));
	if (c->chunked && !c->head_only)
		sy_http1_write_last_chunk(c->scratch);
	conn_send(c);
	conn_end_exchange(c);
}

size_t
sy_conn_pending(const struct sy_conn *c)
{
	return sy_sock_pending(c->sock);
}

void
sy_conn_set_owner(struct sy_conn *c, void *owner, sy_gone_fn gone,
    sy_drained_fn drained)
{
	c->owner = owner;
	c->gone = gone;
	c->drained = drained;
}

void
sy_respond_error(struct sy_conn *c, int status, const char *type,
    const char *code, const char *message, const char *headers)
{
	struct evbuffer *body = evbuffer_new();

	sy_canon_error_body(body, status, type, code, message);
	sy_conn_respond(c, status, "application/json", headers, body);
	evbuffer_free(body);
}

/*
 * Answers a request the server itself rejects (bad framing, too large, too
 * many connections), then closes.
 */
static void
conn_reject(struct sy_conn *c, int status, const char *code,
    const char *message)
{
	struct sy_server *s = c->srv;
	size_t before = c->sent;
	char method[sizeof c->msg.method];
	char *target = c->msg.target ? sy_xstrdup(c->msg.target) : NULL;

	memcpy(method, c->msg.method, sizeof method);
	c->keep_alive = 0;
	c->linger = 1;
	c->state = CONN_BUSY;
	sy_respond_error(c, status, status == 503 ? "server_error" :
	    "invalid_request_error", code, message,
	    status == 503 ? "Retry-After: 1\r\n" : NULL);
	if (s->opts.on_reject != NULL)
		s->opts.on_reject(s->arg, status, method, target ? target : "",
		    message, c->sent - before);
	free(target);
}

/* Reads as much of the next request as has arrived; dispatches it when whole. */
static void
conn_process(struct sy_conn *c)
{
	struct evbuffer *in = sy_sock_input(c->sock);
	struct sy_server *s = c->srv;
	int r;

	if (c->state == CONN_HEAD) {
		if (evbuffer_get_length(in) > 0)
			c->fresh = 0;
		if (!c->head_started && evbuffer_get_length(in) > 0) {
			c->head_started = 1;
			conn_arm(c, s->opts.head_ms);
		}
		r = sy_http1_parse_head(&c->msg, in);
		if (r < 0) {
			conn_reject(c, c->msg.error_status ? c->msg.error_status : 400,
			    "bad_request", c->msg.error ? c->msg.error :
			    "malformed request");
			return;
		}
		if (r == 0)
			return;
		c->keep_alive = c->msg.keep_alive;
		c->head_only = strcmp(c->msg.method, "HEAD") == 0;
		if (c->msg.content_length > 0 &&
		    (uint64_t)c->msg.content_length > s->opts.max_body) {
			conn_reject(c, 413, "body_too_large",
			    "request body is larger than the limit");
			return;
		}
		if (c->msg.expect_continue && c->msg.state == SY_HTTP1_BODY) {
			SY_ADD_LIT(c->scratch, "HTTP/1.1 100 Continue\r\n\r\n");
			conn_send(c);
		}
		c->state = CONN_BODY;
		if (c->msg.state == SY_HTTP1_BODY)
			conn_arm(c, s->opts.body_ms);
	}
	if (c->msg.state == SY_HTTP1_BODY) {
		r = sy_http1_read_body(&c->msg, in, c->body);
		/* A chunk declared larger than what is left is refused at once. */
		if (sy_http1_body_declared(&c->msg) > s->opts.max_body) {
			conn_reject(c, 413, "body_too_large",
			    "request body is larger than the limit");
			return;
		}
		if (r < 0) {
			conn_reject(c, 400, "bad_request", c->msg.error ?
			    c->msg.error : "malformed request body");
			return;
		}
		if (r == 0)
			return;
	}
	c->state = CONN_BUSY;
	conn_arm(c, 0);
	/* The handler may end the exchange (and even free c) before returning. */
	s->handler(c, &c->msg, c->body, s->arg);
}

static void
conn_read_cb(struct sy_sock *sock, void *arg)
{
	struct sy_conn *c = arg;
	struct evbuffer *in = sy_sock_input(sock);

	if (c->state == CONN_BUSY) {
		/* Pipelined bytes wait; reading on only to notice a close. */
		if (evbuffer_get_length(in) > BUSY_INPUT_MAX)
			sy_sock_read(sock, 0, 0);
		return;
	}
	if (c->state == CONN_CLOSING) {
		c->lingered += evbuffer_get_length(in);
		evbuffer_drain(in, evbuffer_get_length(in));
		if (c->lingered > LINGER_MAX)
			conn_free(c);
		return;
	}
	conn_process(c);
}

static void
conn_write_cb(struct sy_sock *sock, void *arg)
{
	struct sy_conn *c = arg;

	if (c->state == CONN_CLOSING) {
		if (c->linger != 2)
			conn_close_flushed(c);
		return;
	}
	if (c->state == CONN_BUSY && c->drained != NULL)
		c->drained(c->owner);
	else if (c->state == CONN_HEAD && !c->head_started)
		conn_arm(c, c->srv->opts.idle_ms);
}

static void
conn_event_cb(struct sy_sock *sock, enum sy_sock_end why, void *arg)
{
	struct sy_conn *c = arg;

	if (c->state == CONN_BUSY && c->gone != NULL)
		c->gone(c->owner, why == SY_SOCK_TIMEOUT ? SY_GONE_TIMEOUT :
		    SY_GONE_CLOSED);
	conn_free(c);
}

static const struct sy_sock_cbs conn_cbs = {
	.on_read = conn_read_cb,
	.on_drained = conn_write_cb,
	.on_end = conn_event_cb
};

static void
accept_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sy_server *s = arg;

	if (s->listener != NULL)
		evconnlistener_enable(s->listener);
}

/*
 * accept(2) failed: out of descriptors, pause accepting for a moment rather
 * than spinning on a socket that stays readable.
 */
static void
accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct sy_server *s = arg;
	struct timeval pause = { 0, ACCEPT_PAUSE_MS * 1000 };
	int err = EVUTIL_SOCKET_ERROR();

	if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
		sy_log(SY_LOG_WARN, "accept: %s; pausing %d ms",
		    strerror(err), ACCEPT_PAUSE_MS);
		evconnlistener_disable(l);
		evtimer_add(s->accept_pause, &pause);
	}
}

/* The counter of sa's address (not its port) among SY_PEER_SLOTS. */
static atomic_uint *
peer_slot(atomic_uint *counts, const struct sockaddr *sa)
{
	const unsigned char *a;
	size_t n, i;
	uint32_t h = 2166136261u;	/* FNV-1a */

	if (sa->sa_family == AF_INET6) {
		a = (const unsigned char *)
		    &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
		n = 16;
	} else {
		a = (const unsigned char *)
		    &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
		n = 4;
	}
	for (i = 0; i < n; i++)
		h = (h ^ a[i]) * 16777619u;
	return &counts[h % SY_PEER_SLOTS];
}

static void
accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	struct sy_server *s = arg;
	struct sy_conn *c;
	int one = 1, over = 0;

	if (s->opts.conn_count != NULL)
		over = atomic_fetch_add(s->opts.conn_count, 1) >=
		    s->opts.max_conns && s->opts.max_conns != 0;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	c = sy_xcalloc(1, sizeof *c);
	c->srv = s;
	c->sock = sy_sock_new(s->base, fd, s->opts.write_ms, &conn_cbs, c);
	c->body = evbuffer_new();
	c->scratch = evbuffer_new();
	c->timer = evtimer_new(s->base, conn_timer_cb, c);
	sy_http1_init(&c->msg, SY_HTTP1_REQUEST, 0, 0);
	TAILQ_INSERT_TAIL(&s->conns, c, link);
	s->nconns++;
	if (s->opts.tls != NULL &&
	    sy_sock_accept_tls(c->sock, s->opts.tls) != 0) {
		sy_log(SY_LOG_WARN, "accept: cannot start a TLS session");
		conn_free(c);
		return;
	}
	c->state = CONN_HEAD;
	c->head_started = 1;
	c->fresh = 1;
	conn_arm(c, s->opts.head_ms);
	sy_sock_read(c->sock, 1, 0);
	if (s->opts.peer_counts != NULL && s->opts.max_per_peer != 0) {
		c->peer = peer_slot(s->opts.peer_counts, sa);
		if (atomic_fetch_add(c->peer, 1) >= s->opts.max_per_peer &&
		    !over) {
			conn_reject(c, 503, "too_many_connections",
			    "too many connections from this address");
			return;
		}
	}
	if (over)
		conn_reject(c, 503, "too_many_connections",
		    "too many connections");
}

int
sy_server_listen(const char *hostport)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1;

	if (sy_config_parse_hostport(hostport, &ss, &len) != 0) {
		errno = EINVAL;
		return -1;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 1024) != 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

int
sy_server_port_free(const char *hostport)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1, r;

	if (sy_config_parse_hostport(hostport, &ss, &len) != 0) {
		errno = EINVAL;
		return -1;
	}
	if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	r = bind(fd, (struct sockaddr *)&ss, len);
	close(fd);
	return r == 0 ? 0 : -1;
}

struct sy_server *
sy_server_new(struct event_base *base, int fd, const struct sy_server_opts *opts,
    sy_handler_fn handler, void *arg)
{
	struct sy_server *s = sy_xcalloc(1, sizeof *s);

	s->base = base;
	s->opts = *opts;
	s->handler = handler;
	s->arg = arg;
	TAILQ_INIT(&s->conns);
	s->listener = evconnlistener_new(base, accept_cb, s,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd);
	if (s->listener == NULL) {
		free(s);
		return NULL;
	}
	evconnlistener_set_error_cb(s->listener, accept_error_cb);
	s->accept_pause = evtimer_new(base, accept_resume_cb, s);
	return s;
}

void
sy_server_set_opts(struct sy_server *s, const struct sy_server_opts *opts)
{
	s->opts = *opts;
}

void
sy_server_drain(struct sy_server *s)
{
	struct sy_conn *c, *next;

	s->draining = 1;
	/* Closing the socket makes new connections fail at once, not hang. */
	if (s->listener != NULL) {
		evconnlistener_free(s->listener);
		s->listener = NULL;
	}
	for (c = TAILQ_FIRST(&s->conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, link);
		if (c->state != CONN_HEAD || (c->head_started && !c->fresh))
			continue;
		/* Idle between requests, or never used: close once the last
		   response is out. */
		c->state = CONN_CLOSING;
		sy_sock_read(c->sock, 0, 0);
		conn_arm(c, 0);
		if (sy_sock_pending(c->sock) == 0)
			conn_free(c);
	}
}

size_t
sy_server_conns(const struct sy_server *s)
{
	return s->nconns;
}

void
sy_server_expire(struct sy_server *s)
{
	struct sy_conn *c, *d, *next;
	sy_gone_fn gone;

	s->draining = 1;
	for (c = TAILQ_FIRST(&s->conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, link);
		if (c->state != CONN_BUSY || (gone = c->gone) == NULL)
			continue;
		gone(c->owner, SY_GONE_STOPPING);
		/* The owner's answer may have freed c: look for it, by address
		   only; one still busy (nothing written) just ends. */
		for (d = TAILQ_FIRST(&s->conns); d != NULL && d != c;
		    d = TAILQ_NEXT(d, link))
			;
		if (d != NULL && d->state == CONN_BUSY) {
			d->owner = NULL;
			d->gone = NULL;
			conn_free(d);
		}
	}
}

void
sy_server_free(struct sy_server *s)
{
	struct sy_conn *c;

	while ((c = TAILQ_FIRST(&s->conns)) != NULL) {
		if (c->state == CONN_BUSY && c->gone != NULL)
			c->gone(c->owner, SY_GONE_CLOSED);
		conn_free(c);
	}
	if (s->listener != NULL)
		evconnlistener_free(s->listener);
	event_free(s->accept_pause);
	free(s);
}
