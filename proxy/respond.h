/* The respond stage's writer, for the stages that stream an answer as it comes (relay, a cache hit's replay): canonical events out to the client in its dialect. */
#ifndef SY_RESPOND_H
#define SY_RESPOND_H

#include <jansson.h>

struct evbuffer;
struct sy_exchange;

/* The buffer canonical stream events are appended to for x's client (made on first use). */
struct evbuffer *sy_respond_events(struct sy_exchange *x);

/*
 * Sends the events waiting in sy_respond_events(x) to the client, in its
 * dialect, starting the response when it has not started; nothing while
 * the answer is held for its check.  Returns 1 when the client has more
 * than its backlog's worth unsent (the sender should pause), else 0.
 */
int sy_respond_flush(struct sy_exchange *x);

/*
 * Ends the client's stream now, with what is still to send (the exchange
 * goes on: its backend may end its response later).
 */
void sy_respond_end(struct sy_exchange *x);

/*
 * x's whole reply as its client gets it: an answer through its dialect's
 * response translator, an OpenAI error in its dialect's error shape.
 * Returns the body to send (the reply's own, x->reply.body, for OpenAI's
 * dialect; else a new buffer the caller frees), or NULL after turning the
 * reply into a 502 when the answer cannot be translated.
 */
struct evbuffer *sy_respond_body(struct sy_exchange *x);

/*
 * Has x's answer repeat members (an object, the reference is taken) from
 * its request, in its dialect's answer object (see sy_client_api.response).
 */
void sy_respond_echo(struct sy_exchange *x, json_t *members);

/*
 * Has fn told, once, the answer x's client gets as its dialect's JSON
 * object (a whole 200 answer, or what a stream tells at its end, see
 * sy_client_api.stream_result), before the client is sent it; obj is
 * borrowed for the call.  Not told when there is no such answer.
 */
void sy_respond_watch(struct sy_exchange *x,
    void (*fn)(struct sy_exchange *x, json_t *obj));

/* Whether the client has received anything of the answer. */
int sy_respond_started(const struct sy_exchange *x);

#endif
