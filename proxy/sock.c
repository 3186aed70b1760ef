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
	struct timeval read_timeout;
	struct timeval write_timeout;
	int has_write_timeout;
	int connecting;			/* sy_sock_connect's, not up yet */
	int failed;			/* the end callback is due or was made */
	int err;			/* errno of the failure */
	const struct sy_sock_cbs *cbs;
	void *arg;
};

/* Whether errno only says "not now". */
static int
again(void)
{
	return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

/* Reports the end of the connection once; the owner frees s in the callback. */
static void
sock_end(struct sy_sock *s, enum sy_sock_end why, int err)
{
	s->failed = 1;
	s->err = err;
	event_del(s->rev);
	event_del(s->wev);
	s->cbs->on_end(s, why, s->arg);
}

static void
sock_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sy_sock *s = arg;
	struct evbuffer_iovec v[2];
	struct iovec iov[2];
	int i, n;
	ssize_t got;

	if (!(what & EV_READ)) {
		sock_end(s, SY_SOCK_TIMEOUT, 0);
		return;
	}
	n = evbuffer_reserve_space(s->in, READ_SIZE, v, 2);
	for (i = 0; i < n; i++) {
		iov[i].iov_base = v[i].iov_base;
		iov[i].iov_len = v[i].iov_len;
	}
	got = readv(fd, iov, n);
	if (got <= 0) {
		evbuffer_commit_space(s->in, v, 0);
		if (got == 0)
			sock_end(s, SY_SOCK_EOF, 0);
		else if (!again())
			sock_end(s, SY_SOCK_ERROR, errno);
		return;
	}
	for (i = 0; i < n; i++) {
		if ((size_t)got < v[i].iov_len)
			v[i].iov_len = (size_t)got;
		got -= (ssize_t)v[i].iov_len;
	}
	evbuffer_commit_space(s->in, v, n);
	s->cbs->on_read(s, s->arg);
}

/* Waits for the socket to take the output, under the write timeout. */
static void
sock_wait_writable(struct sy_sock *s)
{
	event_add(s->wev, s->has_write_timeout && !s->connecting ?
	    &s->write_timeout : NULL);
}

static void
sock_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sy_sock *s = arg;
	socklen_t len = sizeof s->err;

	if (s->failed) {
		/* A write made outside the loop failed (sy_sock_send). */
		s->cbs->on_end(s, SY_SOCK_ERROR, s->arg);
		return;
	}
	if (!(what & EV_WRITE)) {
		sock_end(s, SY_SOCK_TIMEOUT, 0);
		return;
	}
	if (s->connecting) {
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &s->err, &len) != 0)
			s->err = errno;
		if (s->err != 0) {
			sock_end(s, SY_SOCK_ERROR, s->err);
			return;
		}
		s->connecting = 0;
		if (s->cbs->on_connected != NULL)
			s->cbs->on_connected(s, s->arg);
	}
	/* An empty buffer's write returns -1 without setting errno. */
	if (evbuffer_get_length(s->out) > 0 && evbuffer_write(s->out, fd) < 0 &&
	    !again()) {
		sock_end(s, SY_SOCK_ERROR, errno);
		return;
	}
	if (evbuffer_get_length(s->out) > 0) {
		/* Progress: the write timeout starts again. */
		sock_wait_writable(s);
		return;
	}
	if (s->cbs->on_drained != NULL)
		s->cbs->on_drained(s, s->arg);
}

static void
sock_kick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sy_sock *s = arg;

	if (!s->failed)
		s->cbs->on_read(s, s->arg);
}

/* A new connection on fd, neither reading nor writing yet. */
static struct sy_sock *
sock_wrap(struct event_base *base, evutil_socket_t fd,
    const struct sy_sock_cbs *cbs, void *arg)
{
	struct sy_sock *s = sy_xcalloc(1, sizeof *s);

	s->fd = fd;
	s->rev = event_new(base, fd, EV_READ | EV_PERSIST, sock_read_cb, s);
	s->wev = event_new(base, fd, EV_WRITE, sock_write_cb, s);
	s->in = evbuffer_new();
	s->out = evbuffer_new();
	s->cbs = cbs;
	s->arg = arg;
	return s;
}

struct sy_sock *
sy_sock_new(struct event_base *base, evutil_socket_t fd, unsigned write_ms,
    const struct sy_sock_cbs *cbs, void *arg)
{
	struct sy_sock *s = sock_wrap(base, fd, cbs, arg);

	s->has_write_timeout = write_ms != 0;
	s->write_timeout.tv_sec = write_ms / 1000;
	s->write_timeout.tv_usec = (write_ms % 1000) * 1000;
	return s;
}

struct sy_sock *
sy_sock_connect(struct event_base *base, const struct sockaddr *addr,
    socklen_t len, const struct sy_sock_cbs *cbs, void *arg)
{
	struct sy_sock *s;
	int fd, e;

	fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return NULL;
	if (connect(fd, addr, len) != 0 && errno != EINPROGRESS) {
		e = errno;
		close(fd);
		errno = e;
		return NULL;
	}
	s = sock_wrap(base, fd, cbs, arg);
	/* Up, or refused: the socket becomes writable either way. */
	s->connecting = 1;
	sock_wait_writable(s);
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
sy_sock_set_cbs(struct sy_sock *s, const struct sy_sock_cbs *cbs, void *arg)
{
	s->cbs = cbs;
	s->arg = arg;
}

void
sy_sock_read(struct sy_sock *s, int on, unsigned read_ms)
{
	if (s->failed)
		return;
	if (!on) {
		event_del(s->rev);
		return;
	}
	s->read_timeout.tv_sec = read_ms / 1000;
	s->read_timeout.tv_usec = (read_ms % 1000) * 1000;
	event_add(s->rev, read_ms != 0 ? &s->read_timeout : NULL);
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
	/* Nothing to write: evbuffer_write would say -1 with a stale errno. */
	if (evbuffer_get_length(data) == 0)
		return;
	if (!s->connecting && evbuffer_get_length(s->out) == 0 &&
	    evbuffer_write(data, s->fd) < 0 && !again()) {
		/* Told from the loop, never from inside the caller. */
		evbuffer_drain(data, evbuffer_get_length(data));
		s->failed = 1;
		s->err = errno;
		event_del(s->rev);
		event_active(s->wev, EV_WRITE, 0);
		return;
	}
	if (evbuffer_get_length(data) == 0)
		return;
	evbuffer_add_buffer(s->out, data);
	if (!s->connecting && !event_pending(s->wev, EV_WRITE, NULL))
		sock_wait_writable(s);
}

evutil_socket_t
sy_sock_fd(const struct sy_sock *s)
{
	return s->fd;
}

int
sy_sock_error(const struct sy_sock *s)
{
	return s->err;
}
