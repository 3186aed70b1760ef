/* sy-load: HTTP/1.1 client connections on bufferevents, one request in flight each, kept alive in a pool. */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "load.h"

/* Longest head line, chunk-size line or SSE line accepted. */
#define LINE_MAX_BYTES (256 * 1024)

enum conn_state {
	CONN_IDLE,		/* no request in flight */
	CONN_HEAD,		/* status line and headers */
	CONN_BODY,		/* Content-Length body */
	CONN_CHUNK_SIZE,	/* chunked: size line */
	CONN_CHUNK_DATA,	/* chunked: chunk bytes */
	CONN_CHUNK_END,		/* chunked: CRLF after the bytes */
	CONN_TRAILER,		/* chunked: trailer lines */
	CONN_UNTIL_EOF		/* body ends when the server closes */
};

struct sy_load_conn {
	struct sy_load_pool *pool;
	struct bufferevent *bev;	/* NULL when it could not be made */
	struct event *timer;		/* the request's timeout */
	struct sy_load_req *req;
	int sync_errno;			/* failed before any I/O */
	int connected;
	int idle;
	struct sy_load_conn *next_idle;
	struct sy_load_conn *prev, *next; /* pool->all */

	/* The answer being read. */
	enum conn_state state;
	int got_status;
	int status;
	int keep_alive;
	int chunked;
	int sse;
	int64_t length;			/* Content-Length, or -1 */
	int64_t left;			/* left in the body or chunk */
	uint64_t now;			/* arrival of the bytes read */
	struct evbuffer *body;		/* JSON, or SSE bytes unread */

	/* The SSE event being read. */
	struct evbuffer *data;		/* its data lines, joined by \n */
	int ndata;
	int in_event;
	char event[32];
};

/* The line read last by read_line (single-threaded program). */
static char line[LINE_MAX_BYTES + 1];

/*
 * Takes one line ending in LF or CRLF from the front of in into line
 * (NUL-terminated, without its end) and its length into *len.  Returns 1,
 * 0 when no whole line is there yet, -1 when it is too long.
 */
static int
read_line(struct evbuffer *in, size_t *len)
{
	struct evbuffer_ptr eol;
	size_t eol_len = 0;

	eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_CRLF);
	if (eol.pos < 0)
		return evbuffer_get_length(in) > LINE_MAX_BYTES ? -1 : 0;
	if ((size_t)eol.pos > LINE_MAX_BYTES)
		return -1;
	evbuffer_remove(in, line, (size_t)eol.pos);
	evbuffer_drain(in, eol_len);
	line[eol.pos] = '\0';
	*len = (size_t)eol.pos;
	return 1;
}

/* Parses "HTTP/1.x NNN reason" into c.  Returns 0 or -1. */
static int
parse_status(struct sy_load_conn *c, const char *l, size_t n)
{
	int i;

	if (n < 12 || strncmp(l, "HTTP/1.", 7) != 0 ||
	    (l[7] != '0' && l[7] != '1') || l[8] != ' ' ||
	    (n > 12 && l[12] != ' '))
		return -1;
	c->status = 0;
	for (i = 9; i < 12; i++) {
		if (l[i] < '0' || l[i] > '9')
			return -1;
		c->status = c->status * 10 + (l[i] - '0');
	}
	c->keep_alive = l[7] == '1';
	return 0;
}

/* Whether the comma-separated list v holds token (case-insensitive). */
static int
has_token(const char *v, const char *token)
{
	size_t n = strlen(token), k;

	while (*v != '\0') {
		while (*v == ' ' || *v == '\t' || *v == ',')
			v++;
		k = strcspn(v, ", \t");
		if (k == n && strncasecmp(v, token, n) == 0)
			return 1;
		v += k;
	}
	return 0;
}

/* Parses one header line l (n bytes, modified) into c.  Returns 0 or -1. */
static int
parse_header(struct sy_load_conn *c, char *l, size_t n)
{
	char *colon, *v, *end, *last;
	unsigned long long len;

	colon = memchr(l, ':', n);
	if (colon == NULL || colon == l)
		return -1;
	*colon = '\0';
	v = colon + 1;
	end = l + n;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		*--end = '\0';

	if (strcasecmp(l, "content-length") == 0) {
		if (*v < '0' || *v > '9')
			return -1;
		errno = 0;
		len = strtoull(v, &last, 10);
		if (errno != 0 || *last != '\0' || len > INT64_MAX ||
		    (c->length >= 0 && (unsigned long long)c->length != len))
			return -1;
		c->length = (int64_t)len;
	} else if (strcasecmp(l, "transfer-encoding") == 0) {
		if (end - v < 7 || strcasecmp(end - 7, "chunked") != 0)
			return -1;
		c->chunked = 1;
	} else if (strcasecmp(l, "connection") == 0) {
		if (has_token(v, "close"))
			c->keep_alive = 0;
		else if (has_token(v, "keep-alive"))
			c->keep_alive = 1;
	} else if (strcasecmp(l, "content-type") == 0)
		c->sse = strncasecmp(v, "text/event-stream", 17) == 0;
	return 0;
}

/* Forgets the answer read so far, ready for the next head. */
static void
answer_reset(struct sy_load_conn *c)
{
	c->state = CONN_HEAD;
	c->got_status = 0;
	c->status = 0;
	c->keep_alive = 1;
	c->chunked = 0;
	c->sse = 0;
	c->length = -1;
	c->left = 0;
	c->in_event = 0;
	c->ndata = 0;
	c->event[0] = '\0';
	evbuffer_drain(c->body, evbuffer_get_length(c->body));
	evbuffer_drain(c->data, evbuffer_get_length(c->data));
}

/*
 * Chooses how the body is framed once the head is read.  Returns 1 when
 * there is no body, else 0.
 */
static int
head_done(struct sy_load_conn *c)
{
	if (c->status >= 100 && c->status < 200) {
		answer_reset(c);
		return 0;
	}
	if (c->status < 200 || c->status > 299)
		c->sse = 0;
	if (c->status == 204 || c->status == 304)
		return 1;
	if (c->chunked) {
		c->state = CONN_CHUNK_SIZE;
		return 0;
	}
	if (c->length >= 0) {
		c->state = CONN_BODY;
		c->left = c->length;
		return c->left == 0;
	}
	c->state = CONN_UNTIL_EOF;
	c->keep_alive = 0;
	return 0;
}

/* Hands the SSE event read so far to the decoder and starts the next one. */
static void
sse_dispatch(struct sy_load_conn *c)
{
	size_t len = evbuffer_get_length(c->data);

	if (c->ndata > 0)
		sy_load_decode_event(c->req, c->event,
		    (const char *)evbuffer_pullup(c->data, -1), len, c->now);
	evbuffer_drain(c->data, len);
	c->ndata = 0;
	c->in_event = 0;
	c->event[0] = '\0';
}

/* Reads the whole SSE lines in c->body; 0, or -1 if one is too long. */
static int
sse_feed(struct sy_load_conn *c)
{
	const char *value;
	char *colon;
	size_t n, name_len, value_len;
	int r;

	while ((r = read_line(c->body, &n)) > 0) {
		if (n == 0) {
			if (c->in_event)
				sse_dispatch(c);
			continue;
		}
		if (line[0] == ':')
			continue;
		colon = memchr(line, ':', n);
		name_len = colon != NULL ? (size_t)(colon - line) : n;
		value = colon != NULL ? colon + 1 : line + n;
		if (*value == ' ')
			value++;
		value_len = (size_t)(line + n - value);
		if (name_len == 4 && memcmp(line, "data", 4) == 0) {
			if (c->ndata++ > 0)
				evbuffer_add(c->data, "\n", 1);
			evbuffer_add(c->data, value, value_len);
			c->in_event = 1;
		} else if (name_len == 5 && memcmp(line, "event", 5) == 0) {
			snprintf(c->event, sizeof c->event, "%.*s",
			    (int)value_len, value);
			c->in_event = 1;
		}
	}
	return r;
}

/* Moves n body bytes from in to c's body.  Returns 0, or -1 on bad SSE. */
static int
body_bytes(struct sy_load_conn *c, struct evbuffer *in, size_t n)
{
	evbuffer_remove_buffer(in, c->body, n);
	return c->sse ? sse_feed(c) : 0;
}

/* The number of body bytes to take now: what is there, at most left. */
static size_t
take(struct evbuffer *in, int64_t left)
{
	size_t avail = evbuffer_get_length(in);

	return (uint64_t)left < avail ? (size_t)left : avail;
}

/*
 * Reads what arrived of c's answer from in.  Returns 1 when the answer is
 * complete, 0 when more is needed, -1 when it is malformed.
 */
static int
conn_parse(struct sy_load_conn *c, struct evbuffer *in)
{
	unsigned long long size;
	char *end;
	size_t n;
	int r;

	for (;;) {
		switch (c->state) {
		case CONN_IDLE:
			return -1;
		case CONN_HEAD:
			if ((r = read_line(in, &n)) <= 0)
				return r;
			if (!c->got_status) {
				if (parse_status(c, line, n) < 0)
					return -1;
				c->got_status = 1;
			} else if (n > 0) {
				if (parse_header(c, line, n) < 0)
					return -1;
			} else if (head_done(c))
				return 1;
			break;
		case CONN_BODY:
		case CONN_CHUNK_DATA:
			if ((n = take(in, c->left)) == 0)
				return 0;
			if (body_bytes(c, in, n) < 0)
				return -1;
			c->left -= (int64_t)n;
			if (c->left > 0)
				return 0;
			if (c->state == CONN_BODY)
				return 1;
			c->state = CONN_CHUNK_END;
			break;
		case CONN_CHUNK_SIZE:
			if ((r = read_line(in, &n)) <= 0)
				return r;
			errno = 0;
			size = strtoull(line, &end, 16);
			if (end == line || errno != 0 || size > INT64_MAX ||
			    (*end != '\0' && *end != ';' && *end != ' ' &&
			    *end != '\t'))
				return -1;
			c->left = (int64_t)size;
			c->state = size == 0 ? CONN_TRAILER : CONN_CHUNK_DATA;
			break;
		case CONN_CHUNK_END:
			if ((r = read_line(in, &n)) <= 0)
				return r;
			if (n != 0)
				return -1;
			c->state = CONN_CHUNK_SIZE;
			break;
		case CONN_TRAILER:
			if ((r = read_line(in, &n)) <= 0)
				return r;
			if (n == 0)
				return 1;
			break;
		case CONN_UNTIL_EOF:
			if ((n = evbuffer_get_length(in)) == 0)
				return 0;
			if (body_bytes(c, in, n) < 0)
				return -1;
			break;
		}
	}
}

/* Closes c and frees it; its request, if any, must have been taken. */
static void
conn_free(struct sy_load_conn *c)
{
	struct sy_load_pool *p = c->pool;
	struct sy_load_conn **pp;

	if (c->idle) {
		for (pp = &p->idle; *pp != c; pp = &(*pp)->next_idle)
			;
		*pp = c->next_idle;
	}
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		p->all = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	if (c->bev != NULL)
		bufferevent_free(c->bev);
	event_free(c->timer);
	evbuffer_free(c->body);
	evbuffer_free(c->data);
	p->nconns--;
	free(c);
}

/* Takes c's request away from it; c is kept idle when reuse, else closed. */
static struct sy_load_req *
conn_release(struct sy_load_conn *c, int reuse)
{
	struct sy_load_req *req = c->req;
	struct sy_load_pool *p = c->pool;

	c->req = NULL;
	evtimer_del(c->timer);
	if (!reuse) {
		conn_free(c);
		return req;
	}
	answer_reset(c);
	c->state = CONN_IDLE;
	c->idle = 1;
	c->next_idle = p->idle;
	p->idle = c;
	return req;
}

/* Ends c's request with err (unless it already failed) and closes c. */
static void
conn_fail(struct sy_load_conn *c, enum sy_load_err err, const char *msg)
{
	struct sy_load_pool *p = c->pool;
	struct sy_load_req *req = c->req;

	if (req->rec.error == SY_LOAD_OK) {
		req->rec.error = (uint8_t)err;
		req->rec.status = (uint16_t)c->status;
		if (req->errmsg[0] == '\0' && msg != NULL)
			snprintf(req->errmsg, sizeof req->errmsg, "%s", msg);
	}
	conn_release(c, 0);
	p->done(req, p->arg);
}

/* Ends c's request once its whole answer has been read. */
static void
conn_finish(struct sy_load_conn *c)
{
	struct sy_load_pool *p = c->pool;
	struct sy_load_req *req = c->req;
	const char *data;
	size_t len;
	int reuse;

	if (c->sse && c->in_event)
		sse_dispatch(c);
	req->rec.status = (uint16_t)c->status;
	len = evbuffer_get_length(c->body);
	data = (const char *)evbuffer_pullup(c->body, -1);
	if (c->status < 200 || c->status > 299) {
		req->rec.error = SY_LOAD_ERR_HTTP;
		sy_load_decode_error(req, data, len);
	} else if (!c->sse && req->rec.error == SY_LOAD_OK &&
	    sy_load_decode_body(req, data, len) < 0) {
		req->rec.error = SY_LOAD_ERR_BAD_RESPONSE;
		snprintf(req->errmsg, sizeof req->errmsg,
		    "answer body is not the JSON the API returns");
	}
	reuse = c->keep_alive && c->bev != NULL &&
	    evbuffer_get_length(bufferevent_get_input(c->bev)) == 0;
	conn_release(c, reuse);
	p->done(req, p->arg);
}

/* Bytes arrived on c. */
static void
conn_readcb(struct bufferevent *bev, void *arg)
{
	struct sy_load_conn *c = arg;
	int r;

	if (c->req == NULL) {
		conn_free(c);
		return;
	}
	c->now = sy_load_now();
	r = conn_parse(c, bufferevent_get_input(bev));
	if (r < 0)
		conn_fail(c, SY_LOAD_ERR_BAD_RESPONSE, "malformed HTTP answer");
	else if (r > 0)
		conn_finish(c);
}

/* c connected, reached EOF or failed. */
static void
conn_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct sy_load_conn *c = arg;
	int error = EVUTIL_SOCKET_ERROR();

	if (what & BEV_EVENT_CONNECTED) {
		c->connected = 1;
		return;
	}
	if (c->req == NULL) {
		conn_free(c);
		return;
	}
	if ((what & BEV_EVENT_EOF) && c->state == CONN_UNTIL_EOF) {
		conn_finish(c);
		return;
	}
	if (!c->connected)
		conn_fail(c, SY_LOAD_ERR_CONNECT, strerror(error));
	else if (what & BEV_EVENT_EOF)
		conn_fail(c, SY_LOAD_ERR_RESET,
		    "connection closed before the answer ended");
	else
		conn_fail(c, SY_LOAD_ERR_RESET, strerror(error));
}

/* c's request timed out, or (sync_errno set) its connection never started. */
static void
conn_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct sy_load_conn *c = arg;

	if (c->sync_errno != 0)
		conn_fail(c, SY_LOAD_ERR_CONNECT, strerror(c->sync_errno));
	else
		conn_fail(c, SY_LOAD_ERR_TIMEOUT,
		    "no complete answer within the timeout");
}

/* Opens a connection; on an immediate failure its sync_errno is set. */
static struct sy_load_conn *
conn_new(struct sy_load_pool *p)
{
	struct sy_load_conn *c;
	evutil_socket_t fd;
	int one = 1;

	c = calloc(1, sizeof *c);
	if (c == NULL)
		abort();
	c->pool = p;
	c->body = evbuffer_new();
	c->data = evbuffer_new();
	c->timer = evtimer_new(p->base, conn_timeout, c);
	if (c->body == NULL || c->data == NULL || c->timer == NULL)
		abort();
	c->next = p->all;
	if (p->all != NULL)
		p->all->prev = c;
	p->all = c;
	p->nconns++;
	p->opened++;

	fd = socket(p->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (fd < 0) {
		c->sync_errno = errno;
		return c;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	c->bev = bufferevent_socket_new(p->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		close(fd);
		c->sync_errno = ENOMEM;
		return c;
	}
	bufferevent_setcb(c->bev, conn_readcb, NULL, conn_eventcb, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&p->addr,
	    (int)p->addrlen) < 0) {
		c->sync_errno = errno != 0 ? errno : ECONNREFUSED;
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
	return c;
}

void
sy_load_pool_init(struct sy_load_pool *pool, struct event_base *base,
    const struct sockaddr *addr, socklen_t addrlen, double timeout,
    unsigned max, sy_load_done_cb done, void *arg)
{
	struct timeval tv;

	memset(pool, 0, sizeof *pool);
	pool->base = base;
	memcpy(&pool->addr, addr, addrlen);
	pool->addrlen = addrlen;
	tv.tv_sec = (time_t)timeout;
	tv.tv_usec = (suseconds_t)((timeout - (double)tv.tv_sec) * 1e6);
	pool->timeout = event_base_init_common_timeout(base, &tv);
	pool->max = max;
	pool->done = done;
	pool->arg = arg;
}

int
sy_load_pool_send(struct sy_load_pool *p, struct sy_load_req *req,
    struct evbuffer *msg)
{
	struct sy_load_conn *c;

	if ((c = p->idle) != NULL) {
		p->idle = c->next_idle;
		c->idle = 0;
	} else if (p->nconns < p->max)
		c = conn_new(p);
	else
		return -1;
	answer_reset(c);
	c->req = req;
	if (c->bev == NULL) {
		evbuffer_drain(msg, evbuffer_get_length(msg));
		event_active(c->timer, EV_TIMEOUT, 1);
		return 0;
	}
	bufferevent_write_buffer(c->bev, msg);
	evtimer_add(c->timer, p->timeout);
	return 0;
}

int
sy_load_pool_full(const struct sy_load_pool *pool)
{
	return pool->idle == NULL && pool->nconns >= pool->max;
}

void
sy_load_pool_free(struct sy_load_pool *pool)
{
	struct sy_load_req *req;

	while (pool->all != NULL) {
		if (pool->all->req == NULL) {
			conn_free(pool->all);
			continue;
		}
		req = conn_release(pool->all, 0);
		req->rec.error = SY_LOAD_ERR_CANCELLED;
		pool->done(req, pool->arg);
	}
}
