/* The upstream client: per-worker keep-alive connection pools to backend endpoints (HTTP/1.1, TLS), one request per connection at a time. */
#ifndef SY_UPSTREAM_H
#define SY_UPSTREAM_H

#include <stddef.h>

struct event_base;
struct evbuffer;
struct sy_endpoint;
struct sy_timeouts;
struct sy_http1_msg;
struct sy_upstream;
struct sy_upstream_call;

enum sy_upstream_error {
	SY_UP_CONNECT,		/* refused, unreachable, TLS handshake failed */
	SY_UP_TIMEOUT,		/* connect, first byte, idle or total timeout */
	SY_UP_RESET,		/* closed or reset before the response ended */
	SY_UP_PROTOCOL		/* not a valid HTTP response */
};

/*
 * Callbacks of one call, in order: on_head once, on_body zero or more
 * times, then exactly one of on_done or on_error (on_error may also come
 * first).  After on_done or on_error the call is gone.  A callback may call
 * sy_upstream_cancel on its own call.
 */
struct sy_upstream_cbs {
	void (*on_head)(void *arg, const struct sy_http1_msg *head);
	/* data holds decoded body bytes; the callee drains what it takes. */
	void (*on_body)(void *arg, struct evbuffer *data);
	void (*on_done)(void *arg);
	/* msg is a static description, e.g. "first byte timeout". */
	void (*on_error)(void *arg, enum sy_upstream_error err, const char *msg);
};

/* Creates the pools of one worker on base. */
struct sy_upstream *sy_upstream_new(struct event_base *base);

/*
 * Whether u has calls under way (a drain waits for them: an answer whose
 * client already has its end may still be reading its backend's usage).
 */
int sy_upstream_busy(const struct sy_upstream *u);

/* Cancels every call and closes every connection; frees u. */
void sy_upstream_free(struct sy_upstream *u);

/*
 * Sends "METHOD target" (target: the whole path, e.g. the endpoint's base
 * path + "/chat/completions") with body (moved; NULL: none) to ep, on an
 * idle keep-alive connection or a new one, under the timeouts t (copied).
 * headers: extra header lines ("Name: value\r\n"...) or NULL, the
 * credentials among them (the caller knows the protocol's header).  A
 * request that
 * fails on a reused connection before any response byte is retried once
 * on a new one.  Returns the call; its callbacks report the rest (never
 * before this returns).
 */
struct sy_upstream_call *sy_upstream_send(struct sy_upstream *u,
    struct sy_endpoint *ep, const struct sy_timeouts *t, const char *method,
    const char *target, const char *headers, struct evbuffer *body,
    const struct sy_upstream_cbs *cbs, void *arg);

/*
 * Abandons call: closes its connection (the backend sees the client go)
 * and makes no more callbacks.
 */
void sy_upstream_cancel(struct sy_upstream_call *call);

/*
 * Hands call's further callbacks to cbs with arg (a hedge that won the
 * race becomes its exchange's own call); may be called from a callback.
 */
void sy_upstream_rebind(struct sy_upstream_call *call,
    const struct sy_upstream_cbs *cbs, void *arg);

/* Stops (paused 1) or resumes (0) reading the response: backpressure. */
void sy_upstream_pause(struct sy_upstream_call *call, int paused);

/*
 * Frees the pools (and closes the idle connections) of endpoints that cfg
 * no longer has, once no call uses them: after a reload.
 */
struct sy_config;
void sy_upstream_sweep(struct sy_upstream *u, const struct sy_config *cfg);

#endif
