/* A plain TCP connection on an event base: an input and an output buffer, read without asking the kernel how much first, written at once when nothing waits. */
#ifndef SY_SOCK_H
#define SY_SOCK_H

#include <event2/util.h>

struct event_base;
struct evbuffer;
struct sy_sock;

/* What ended a connection, for sy_sock_event_fn. */
enum sy_sock_end {
	SY_SOCK_EOF,		/* the peer closed */
	SY_SOCK_ERROR,		/* read or write failed */
	SY_SOCK_TIMEOUT		/* output made no progress for the write timeout */
};

/* Bytes were added to the input (or sy_sock_kick asked). */
typedef void (*sy_sock_read_fn)(struct sy_sock *s, void *arg);
/* The output is empty again after waiting for the socket. */
typedef void (*sy_sock_drained_fn)(struct sy_sock *s, void *arg);
/* The connection ended; the owner frees it (the socket is dead). */
typedef void (*sy_sock_event_fn)(struct sy_sock *s, enum sy_sock_end why,
    void *arg);

/*
 * Wraps the connected, non-blocking fd (owned from now on: closed by
 * sy_sock_free).  Reading starts off; write_ms (0: none) bounds how long
 * pending output may make no progress.  Returns the connection.
 */
struct sy_sock *sy_sock_new(struct event_base *base, evutil_socket_t fd,
    unsigned write_ms, sy_sock_read_fn on_read, sy_sock_drained_fn on_drained,
    sy_sock_event_fn on_end, void *arg);

/* Closes the socket and frees everything s holds. */
void sy_sock_free(struct sy_sock *s);

/* Starts (on) or stops reading. */
void sy_sock_read(struct sy_sock *s, int on);

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

#endif
