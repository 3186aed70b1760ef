/* A plain TCP connection on an event base: reads into an evbuffer without a FIONREAD per read, writes directly and waits for the socket only when the kernel's buffer is full. */
#include <sys/socket.h>
#include <sys/uio.h>

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "sock.h"
#include "util.h"

/* Room offered to one read: a request head and a small body fit at once. */
#define READ_SIZE 4096

struct sy_sock {
	evutil_socket_t fd;
	struct event *rev;		/* readable (persistent while reading) */
	struct event *wev;		/* writable, armed while output waits */
	struct event *kick;		/* sy_sock_kick's deferred read callback */
	struct evbuffer *in;
	struct evbuffer *out;
	struct timeval write_timeout;
	int has_write_timeout;
	int failed;			/* the end callback is due or was made */
	sy_sock_read_fn on_read;
	sy_sock_drained_fn on_drained;
	sy_sock_event_fn on_end;
	void *arg;
};

/* Reports the end of the connection once; the owner frees s in the callback. */
static void
sock_end(struct sy_sock *s, enum sy_sock_end why)
{
	s->failed = 1;
	event_del(s->rev);
	event_del(s->wev);
	s->on_end(s, why, s->arg);
}

static void
sock_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sy_sock *s = arg;
	struct evbuffer_iovec v[2];
	struct iovec iov[2];
	int i, n;
	ssize_t got;

	n = evbuffer_reserve_space(s->in, READ_SIZE, v, 2);
	for (i = 0; i < n; i++) {
		iov[i].iov_base = v[i].iov_base;
		iov[i].iov_len = v[i].iov_len;
	}
	got = readv(fd, iov, n);
	if (got < 0) {
		evbuffer_commit_space(s->in, v, 0);
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			sock_end(s, SY_SOCK_ERROR);
		return;
	}
	if (got == 0) {
		evbuffer_commit_space(s->in, v, 0);
		sock_end(s, SY_SOCK_EOF);
		return;
	}
	for (i = 0; i < n; i++) {
		if ((size_t)got < v[i].iov_len)
			v[i].iov_len = (size_t)got;
		got -= (ssize_t)v[i].iov_len;
	}
	evbuffer_commit_space(s->in, v, n);
	s->on_read(s, s->arg);
}

/* Writes what waits; returns -1 after reporting a failure. */
static int
sock_flush(struct sy_sock *s)
{
	if (evbuffer_write(s->out, s->fd) < 0 && errno != EAGAIN &&
	    errno != EWOULDBLOCK && errno != EINTR) {
		sock_end(s, SY_SOCK_ERROR);
		return -1;
	}
	return 0;
}

static void
sock_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sy_sock *s = arg;

	if (s->failed) {
		/* A write made outside the loop failed (sock_fail_later). */
		s->on_end(s, SY_SOCK_ERROR, s->arg);
		return;
	}
	if (what & EV_TIMEOUT) {
		sock_end(s, SY_SOCK_TIMEOUT);
		return;
	}
	if (sock_flush(s) < 0)
		return;
	if (evbuffer_get_length(s->out) > 0) {
		/* Progress: the write timeout starts again. */
		event_add(s->wev, s->has_write_timeout ? &s->write_timeout : NULL);
		return;
	}
	event_del(s->wev);
	s->on_drained(s, s->arg);
}

static void
sock_kick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sy_sock *s = arg;

	if (!s->failed)
		s->on_read(s, s->arg);
}

/* A write failed outside the loop: the end is reported from the loop. */
static void
sock_fail_later(struct sy_sock *s)
{
	s->failed = 1;
	event_del(s->rev);
	event_active(s->wev, EV_WRITE, 0);
}

struct sy_sock *
sy_sock_new(struct event_base *base, evutil_socket_t fd, unsigned write_ms,
    sy_sock_read_fn on_read, sy_sock_drained_fn on_drained,
    sy_sock_event_fn on_end, void *arg)
{
	struct sy_sock *s = sy_xcalloc(1, sizeof *s);

	s->fd = fd;
	s->rev = event_new(base, fd, EV_READ | EV_PERSIST, sock_read_cb, s);
	s->wev = event_new(base, fd, EV_WRITE, sock_write_cb, s);
	s->in = evbuffer_new();
	s->out = evbuffer_new();
	s->has_write_timeout = write_ms != 0;
	s->write_timeout.tv_sec = write_ms / 1000;
	s->write_timeout.tv_usec = (write_ms % 1000) * 1000;
	s->on_read = on_read;
	s->on_drained = on_drained;
	s->on_end = on_end;
	s->arg = arg;
	return s;
}

void
sy_sock_free(struct sy_sock *s)
{
	event_free(s->rev);
	event_free(s->wev);
	if (s->kick != NULL)
		event_free(s->kick);
	evbuffer_free(s->in);
	evbuffer_free(s->out);
	evutil_closesocket(s->fd);
	free(s);
}

void
sy_sock_read(struct sy_sock *s, int on)
{
	if (s->failed)
		return;
	if (on)
		event_add(s->rev, NULL);
	else
		event_del(s->rev);
}

void
sy_sock_kick(struct sy_sock *s)
{
	if (s->kick == NULL)
		s->kick = evtimer_new(event_get_base(s->rev), sock_kick_cb, s);
	event_active(s->kick, EV_TIMEOUT, 0);
}

struct evbuffer *
sy_sock_input(struct sy_sock *s)
{
	return s->in;
}

size_t
sy_sock_pending(const struct sy_sock *s)
{
	return evbuffer_get_length(s->out);
}

void
sy_sock_send(struct sy_sock *s, struct evbuffer *data)
{
	if (s->failed) {
		evbuffer_drain(data, evbuffer_get_length(data));
		return;
	}
	if (evbuffer_get_length(s->out) == 0 &&
	    evbuffer_write(data, s->fd) < 0 && errno != EAGAIN &&
	    errno != EWOULDBLOCK && errno != EINTR) {
		evbuffer_drain(data, evbuffer_get_length(data));
		sock_fail_later(s);
		return;
	}
	if (evbuffer_get_length(data) == 0)
		return;
	evbuffer_add_buffer(s->out, data);
	if (!event_pending(s->wev, EV_WRITE, NULL))
		event_add(s->wev, s->has_write_timeout ? &s->write_timeout : NULL);
}

evutil_socket_t
sy_sock_fd(const struct sy_sock *s)
{
	return s->fd;
}
