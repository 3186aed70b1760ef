/* A TCP connection on an event base, plain or TLS: an input and an output buffer, read without asking the kernel how much first, written at once when nothing waits. */
#ifndef SY_SOCK_H
#define SY_SOCK_H

#include <sys/socket.h>

#include <event2/util.h>

struct event_base;
struct evbuffer;
struct sy_sock;
struct ssl_ctx_st;

/* What ended a connection, for the end callback. */
enum sy_sock_end {
	SY_SOCK_EOF,		/* the peer closed */
	SY_SOCK_ERROR,		/* connect, read or write failed: sy_sock_error */
	SY_SOCK_TIMEOUT		/* no progress for the read or write timeout */
};

/*
 * What a connection tells its owner.  The owner may free the connection
 * in on_read, on_drained and on_end (after on_end it must: the socket is
 * dead), not in on_connected.
 */
struct sy_sock_cbs {
	/* Bytes were added to the input (or sy_sock_kick asked). */
	void (*on_read)(struct sy_sock *s, void *arg);
	/* The output is empty again after waiting for the socket; may be NULL. */
	void (*on_drained)(struct sy_sock *s, void *arg);
	/* The connection ended. */
	void (*on_end)(struct sy_sock *s, enum sy_sock_end why, void *arg);
	/* sy_sock_connect's connection is up; may be NULL. */
	void (*on_connected)(struct sy_sock *s, void *arg);
};

/*
 * Wraps the connected, non-blocking fd (owned from now on: closed by
 * sy_sock_free).  Reading starts off; write_ms (0: none) bounds how long
 * pending output may make no progress.  cbs must outlive the connection.
 * Returns the connection.
 */
struct sy_sock *sy_sock_new(struct event_base *base, evutil_socket_t fd,
    unsigned write_ms, const struct sy_sock_cbs *cbs, void *arg);

/*
 * Starts connecting to addr.  Output sent meanwhile waits for the
 * connection; on_connected, or on_end with SY_SOCK_ERROR, follows from the
 * loop.  Returns the connection, or NULL with errno set.
 */
struct sy_sock *sy_sock_connect(struct event_base *base,
    const struct sockaddr *addr, socklen_t len, const struct sy_sock_cbs *cbs,
    void *arg);

/*
 * Makes s, just made by sy_sock_new, the server side of a TLS connection
 * with a new session of ctx (which it references).  The handshake runs
 * first: output sent meanwhile waits for it, reading starts after it;
 * a failed handshake ends s with SY_SOCK_ERROR (EPROTO).  Returns 0, or
 * -1 when the session cannot be made (s stays plain).
 */
int sy_sock_accept_tls(struct sy_sock *s, struct ssl_ctx_st *ctx);

/*
 * Ends the sending side (once the output is out): a TLS close_notify,
 * then the socket's write half.  Reading goes on.
 */
void sy_sock_shutdown(struct sy_sock *s);

/* Closes the socket (a TLS one with a close_notify when it can) and frees everything s holds. */
void sy_sock_free(struct sy_sock *s);

/* Gives s's callbacks to another owner. */
void sy_sock_set_cbs(struct sy_sock *s, const struct sy_sock_cbs *cbs,
    void *arg);

/*
 * Starts (on) or stops reading.  While reading, read_ms (0: none) of
 * silence ends the connection with SY_SOCK_TIMEOUT.
 */
void sy_sock_read(struct sy_sock *s, int on, unsigned read_ms);

/* Calls the read callback soon, from the loop, for input already buffered. */
void sy_sock_kick(struct sy_sock *s);

/* What has been read and not consumed (the caller drains it). */
struct evbuffer *sy_sock_input(struct sy_sock *s);

/* Output bytes still waiting for the socket. */
size_t sy_sock_pending(const struct sy_sock *s);

/*
 * Sends data (drained from it): written at once when nothing waits before
 * it; what the kernel does not take waits for the socket to be writable.
 * Errors are reported through the end callback from the loop.
 */
void sy_sock_send(struct sy_sock *s, struct evbuffer *data);

/* The descriptor. */
evutil_socket_t sy_sock_fd(const struct sy_sock *s);

/* The errno of the failure that ended s (SY_SOCK_ERROR), or 0. */
int sy_sock_error(const struct sy_sock *s);

#endif
