/* The HTTP/1.1 server side: accepts client connections on a worker's event base, reads requests, writes whole or streamed responses. */
#ifndef SY_SERVER_H
#define SY_SERVER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Slots of the per-peer connection counters (addresses may share one). */
#define SY_PEER_SLOTS 4096

struct event_base;
struct evbuffer;
struct sy_conn;
struct sy_server;
struct sy_http1_msg;
struct ssl_ctx_st;

/*
 * Called once per complete request (head and body read).  The handler owns
 * the exchange until it ends it with sy_conn_respond or sy_conn_stream_end;
 * head and body stay valid until then.
 */
typedef void (*sy_handler_fn)(struct sy_conn *c, const struct sy_http1_msg *head,
    struct evbuffer *body, void *arg);

/* Why an exchange's connection ends before its response did. */
enum sy_gone {
	SY_GONE_CLOSED,		/* the client closed it */
	SY_GONE_TIMEOUT,	/* it stopped reading: the write timeout struck */
	SY_GONE_STOPPING	/* the server stops (drain timeout): c is still
				   open during the call, to end the exchange
				   with a last answer or event */
};

/*
 * Called when the client's connection ends before the response did, for
 * the reason why; c is gone after the call (with SY_GONE_STOPPING, once
 * what the owner wrote during the call is sent).
 */
typedef void (*sy_gone_fn)(void *owner, int why);

/*
 * Called when the server itself answers a request with an error (bad
 * framing, body too large, too many connections, ...) so that it can be
 * logged.  method and target are "" when the head was not read.
 */
typedef void (*sy_reject_fn)(void *arg, int status, const char *method,
    const char *target, const char *message, uint64_t bytes_out);

/* Called when a streamed response's output has drained below the low mark. */
typedef void (*sy_drained_fn)(void *owner);

struct sy_server_opts {
	size_t max_body;		/* bytes; larger requests get 413 */
	unsigned idle_ms;		/* keep-alive idle timeout */
	unsigned head_ms;		/* a request head must arrive within this
					   from its first byte (and a first request
					   after connecting) */
	unsigned body_ms;		/* a request body must arrive within this */
	unsigned write_ms;		/* a client not reading for this long is dropped */
	unsigned max_conns;		/* over all servers sharing conn_count; 0: none */
	atomic_uint *conn_count;	/* shared counter of open connections, or NULL */
	unsigned max_per_peer;		/* connections from one address; 0: any */
	atomic_uint *peer_counts;	/* SY_PEER_SLOTS shared counters by the
					   address's hash, or NULL */
	sy_reject_fn on_reject;		/* or NULL; called with the handler's arg */
	struct ssl_ctx_st *tls;		/* new connections speak TLS with a
					   session of it; NULL: plain HTTP.
					   Borrowed: it must live while it is
					   set (sessions reference it) */
};

/*
 * Creates a server accepting on the listening socket fd (taken over) on
 * base, calling handler with arg for each request.  Returns NULL on failure.
 */
struct sy_server *sy_server_new(struct event_base *base, int fd,
    const struct sy_server_opts *opts, sy_handler_fn handler, void *arg);

/* Replaces s's limits and timeouts (after a reload); open connections keep reading under the new ones. */
void sy_server_set_opts(struct sy_server *s, const struct sy_server_opts *opts);

/*
 * Stops accepting, closes idle connections, and closes each busy one once
 * its response ends.
 */
void sy_server_drain(struct sy_server *s);

/* Number of open connections. */
size_t sy_server_conns(const struct sy_server *s);

/*
 * Tells the owner of every busy connection that the server stops
 * (SY_GONE_STOPPING): each ends its exchange then, and the connections
 * close once what was written is sent.
 */
void sy_server_expire(struct sy_server *s);

/* Closes every connection (busy ones' owners are told via their gone callback) and frees s. */
void sy_server_free(struct sy_server *s);

/* Binds and listens on "host:port" with SO_REUSEPORT; returns the fd or -1 (errno set). */
int sy_server_listen(const char *hostport);

/*
 * Whether "host:port" is free for this process: a bind without SO_REUSEPORT
 * fails when another process listens there.  0 when free, else -1 (errno).
 */
int sy_server_port_free(const char *hostport);

/* Sets the owner of c's current exchange and its callbacks (either may be NULL). */
void sy_conn_set_owner(struct sy_conn *c, void *owner, sy_gone_fn gone,
    sy_drained_fn drained);

/*
 * Sends a whole response: status, Content-Type (NULL: none), extra header
 * lines (each "Name: value\r\n", or NULL), and body (moved; NULL: empty).
 * Ends the exchange.
 */
void sy_conn_respond(struct sy_conn *c, int status, const char *content_type,
    const char *headers, struct evbuffer *body);


/*
 * Sends an OpenAI-shaped error {"error":{"message","type","code"}} with
 * status (code NULL: null); headers as for sy_conn_respond.  Ends the
 * exchange.
 */
void sy_respond_error(struct sy_conn *c, int status, const char *type,
    const char *code, const char *message, const char *headers);

/* Sends a status line and headers for a chunked (streamed) response. */
void sy_conn_stream_start(struct sy_conn *c, int status,
    const char *content_type, const char *headers);

/* Sends data (moved) as one chunk. */
void sy_conn_stream_write(struct sy_conn *c, struct evbuffer *data);

/*
 * Ends a streamed response, after last (moved; NULL: nothing) — sent with
 * the end in one write; ends the exchange.
 */
void sy_conn_stream_end(struct sy_conn *c, struct evbuffer *last);


/* Bytes written but not yet sent to the client. */
size_t sy_conn_pending(const struct sy_conn *c);


#endif
