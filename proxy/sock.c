/* A TCP connection on an event base, plain or TLS: reads into an evbuffer without a FIONREAD per read, writes directly and waits for the socket only when the kernel's buffer is full. */
#include <sys/socket.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "sock.h"
#include "util.h"

/*
 * Bytes one read takes, into the stack: only what arrived is copied into
 * the input, so a connection waiting for more holds no empty buffer (an
 * open stream costs two connections; a reserved 4 KiB each was most of it).
 */
#define READ_SIZE 16384
/* Bytes handed to one SSL_write: a whole TLS record. */
#define TLS_WRITE_SIZE 16384

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
	SSL *ssl;			/* TLS, or NULL: plain */
	int handshaking;		/* TLS: the handshake is not done; output
					   waits, the owner's reading is kept in
					   reading */
	int reading;			/* the owner's sy_sock_read */
	int read_wants_write;		/* TLS: SSL_read waits to write */
	int write_wants_read;		/* TLS: SSL_write waits to read */
	int shut;			/* sy_sock_shutdown was called */
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

/* ==== TLS ==== */

/* Waits for the socket to take the output, under the write timeout. */
static void
sock_wait_writable(struct sy_sock *s)
{
	/* A TLS write waiting to read is retried from the read callback. */
	if (s->write_wants_read)
		return;
	event_add(s->wev, s->has_write_timeout && !s->connecting ?
	    &s->write_timeout : NULL);
}

/* Logs at debug level why a TLS step (what) failed; e: errno after it. */
static void
tls_log(struct sy_sock *s, const char *what, int e)
{
	char buf[256];
	unsigned long code = ERR_peek_last_error();

	if (code != 0)
		ERR_error_string_n(code, buf, sizeof buf);
	else
		snprintf(buf, sizeof buf, "%s", e != 0 ? strerror(e) :
		    "the peer closed");
	sy_log(SY_LOG_DEBUG, "tls: %s failed on fd %d: %s", what, (int)s->fd,
	    buf);
	ERR_clear_error();
}

/*
 * Goes on with the server handshake; once done, reading follows the
 * owner's sy_sock_read and the output that waited goes out.
 */
static void
tls_handshake(struct sy_sock *s)
{
	int r, e;

	ERR_clear_error();
	if ((r = SSL_do_handshake(s->ssl)) == 1) {
		s->handshaking = 0;
		event_del(s->wev);
		if (s->reading) {
			event_add(s->rev, s->read_timeout.tv_sec != 0 ||
			    s->read_timeout.tv_usec != 0 ? &s->read_timeout :
			    NULL);
			if (SSL_pending(s->ssl) > 0)
				event_active(s->rev, EV_READ, 0);
		} else
			event_del(s->rev);
		if (evbuffer_get_length(s->out) > 0)
			event_active(s->wev, EV_WRITE, 0);
		return;
	}
	e = errno;
	switch (SSL_get_error(s->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		event_del(s->wev);
		event_add(s->rev, NULL);
		return;
	case SSL_ERROR_WANT_WRITE:
		event_del(s->rev);
		sock_wait_writable(s);
		return;
	default:
		tls_log(s, "handshake", e);
		sock_end(s, SY_SOCK_ERROR, EPROTO);
	}
}

/*
 * Reads one TLS record's worth into the input.  Returns 1 when bytes were
 * added, 0 when there are none yet, -1 after ending the connection.
 */
static int
tls_read(struct sy_sock *s)
{
	char buf[READ_SIZE];
	int got, e;

	ERR_clear_error();
	got = SSL_read(s->ssl, buf, sizeof buf);
	if (got > 0) {
		evbuffer_add(s->in, buf, (size_t)got);
		/* The rest of a record larger than READ_SIZE waits in s->ssl,
		   not in the socket: the loop would not say so. */
		if (SSL_pending(s->ssl) > 0)
			event_active(s->rev, EV_READ, 0);
		return 1;
	}
	e = errno;
	switch (SSL_get_error(s->ssl, got)) {
	case SSL_ERROR_WANT_READ:
		return 0;
	case SSL_ERROR_WANT_WRITE:
		s->read_wants_write = 1;
		sock_wait_writable(s);
		return 0;
	case SSL_ERROR_ZERO_RETURN:
		sock_end(s, SY_SOCK_EOF, 0);
		return -1;
	case SSL_ERROR_SYSCALL:
		ERR_clear_error();
		if (e == 0)
			sock_end(s, SY_SOCK_EOF, 0);
		else
			sock_end(s, SY_SOCK_ERROR, e);
		return -1;
	default:
		tls_log(s, "read", e);
		sock_end(s, SY_SOCK_ERROR, EPROTO);
		return -1;
	}
}

/* As evbuffer_write, through s->ssl: bytes written, or -1 with errno. */
static int
tls_write(struct sy_sock *s, struct evbuffer *buf)
{
	size_t len, n;
	unsigned char *p;
	int r, e, total = 0;

	while ((len = evbuffer_get_length(buf)) > 0) {
		/* A retry after WANT_WRITE sends the same first bytes again,
		   as many or more: the buffer only grows at its end. */
		n = len < TLS_WRITE_SIZE ? len : TLS_WRITE_SIZE;
		p = evbuffer_pullup(buf, (ev_ssize_t)n);
		ERR_clear_error();
		if ((r = SSL_write(s->ssl, p, (int)n)) > 0) {
			evbuffer_drain(buf, (size_t)r);
			total += r;
			continue;
		}
		e = errno;
		switch (SSL_get_error(s->ssl, r)) {
		case SSL_ERROR_WANT_WRITE:
			errno = EAGAIN;
			return total > 0 ? total : -1;
		case SSL_ERROR_WANT_READ:
			s->write_wants_read = 1;
			if (!event_pending(s->rev, EV_READ, NULL))
				event_add(s->rev, NULL);
			errno = EAGAIN;
			return total > 0 ? total : -1;
		case SSL_ERROR_SYSCALL:
			ERR_clear_error();
			errno = e != 0 ? e : EPIPE;
			return -1;
		default:
			tls_log(s, "write", e);
			errno = EPROTO;
			return -1;
		}
	}
	return total;
}

/* The TLS side of the read callback. */
static void
tls_readable(struct sy_sock *s)
{
	if (s->handshaking) {
		tls_handshake(s);
		return;
	}
	if (s->write_wants_read) {
		/* The write goes on from the loop, through the write callback. */
		s->write_wants_read = 0;
		event_active(s->wev, EV_WRITE, 0);
		if (!s->reading) {
			event_del(s->rev);
			return;
		}
	}
	if (tls_read(s) > 0)
		s->cbs->on_read(s, s->arg);
}

/* Writes what buf holds to the socket, plain or TLS; as evbuffer_write. */
static int
sock_write(struct sy_sock *s, struct evbuffer *buf)
{
	if (s->ssl != NULL)
		return tls_write(s, buf);
	return evbuffer_write(buf, s->fd);
}

/* ==== Callbacks ==== */

static void
sock_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sy_sock *s = arg;
	char buf[READ_SIZE];
	ssize_t got;

	if (!(what & EV_READ)) {
		sock_end(s, SY_SOCK_TIMEOUT, 0);
		return;
	}
	if (s->ssl != NULL) {
		tls_readable(s);
		return;
	}
	got = read(fd, buf, sizeof buf);
	if (got <= 0) {
		if (got == 0)
			sock_end(s, SY_SOCK_EOF, 0);
		else if (!again())
			sock_end(s, SY_SOCK_ERROR, errno);
		return;
	}
	evbuffer_add(s->in, buf, (size_t)got);
	s->cbs->on_read(s, s->arg);
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
	if (s->handshaking) {
		tls_handshake(s);
		return;
	}
	if (s->read_wants_write) {
		/* The read goes on from the loop, through the read callback. */
		s->read_wants_write = 0;
		if (s->reading)
			event_active(s->rev, EV_READ, 0);
		if (evbuffer_get_length(s->out) == 0)
			return;
	}
	/* An empty buffer's write returns -1 without setting errno. */
	if (evbuffer_get_length(s->out) > 0 && sock_write(s, s->out) < 0 &&
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

int
sy_sock_accept_tls(struct sy_sock *s, struct ssl_ctx_st *ctx)
{
	if ((s->ssl = SSL_new(ctx)) == NULL || SSL_set_fd(s->ssl, s->fd) != 1) {
		ERR_clear_error();
		if (s->ssl != NULL)
			SSL_free(s->ssl);
		s->ssl = NULL;
		return -1;
	}
	SSL_set_accept_state(s->ssl);
	s->handshaking = 1;
	event_add(s->rev, NULL);
	return 0;
}

void
sy_sock_shutdown(struct sy_sock *s)
{
	if (s->ssl != NULL && !s->failed && !s->handshaking && !s->shut) {
		ERR_clear_error();
		SSL_shutdown(s->ssl);
		ERR_clear_error();
	}
	s->shut = 1;
	shutdown(s->fd, SHUT_WR);
}

void
sy_sock_free(struct sy_sock *s)
{
	if (s->ssl != NULL) {
		/* A close_notify when it can still go: the peer sees a clean end. */
		if (!s->failed && !s->handshaking && !s->shut) {
			ERR_clear_error();
			SSL_shutdown(s->ssl);
		}
		SSL_free(s->ssl);
		ERR_clear_error();
	}
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
	s->reading = on;
	s->read_timeout.tv_sec = read_ms / 1000;
	s->read_timeout.tv_usec = (read_ms % 1000) * 1000;
	/* The handshake reads for itself, and then follows s->reading. */
	if (s->handshaking)
		return;
	if (!on) {
		if (!s->write_wants_read)
			event_del(s->rev);
		return;
	}
	event_add(s->rev, read_ms != 0 ? &s->read_timeout : NULL);
	if (s->ssl != NULL && SSL_pending(s->ssl) > 0)
		event_active(s->rev, EV_READ, 0);
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
	if (!s->connecting && !s->handshaking &&
	    evbuffer_get_length(s->out) == 0 && sock_write(s, data) < 0 &&
	    !again()) {
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
	if (!s->connecting && !s->handshaking &&
	    !event_pending(s->wev, EV_WRITE, NULL))
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
