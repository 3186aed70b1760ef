/* One exchange on its way through the stages, the stage interface, and the driver that moves it from stage to stage by their verdicts. */
#ifndef SY_EXCHANGE_H
#define SY_EXCHANGE_H

#include <sys/queue.h>

#include <stdint.h>

#include "framing.h"
#include "http1.h"
#include "req.h"

struct evbuffer;
struct event;
struct sy_exchange;
struct sy_worker;
struct sy_conn;
struct sy_client_api;
struct sy_cache_ctx;
struct sy_batch;
struct sy_batch_member;
struct sy_models_ask;
struct sy_tokenize_ask;
struct sy_upstream_call;
struct sy_keystore_op;
struct sy_reservation;
struct sy_reserve_op;
struct sy_rstore_op;

/*
 * What a stage says when it is done with an exchange for now.  The driver
 * moves the exchange on accordingly; no stage calls another.
 */
enum sy_verdict {
	SY_NEXT,	/* on to the next stage */
	SY_WAIT,	/* the stage waits for something (a timer, the backend,
			   the cache, a batch) and resumes with sy_drive */
	SY_RETRY,	/* the try failed before anything reached the client:
			   back to tries (another endpoint, or give up) */
	SY_FALLBACK,	/* the route cannot answer: its next fallback route */
	SY_ESCALATE,	/* the answer is replaced by the next model's: tries
			   again on that model */
	SY_ANSWER,	/* an answer is in: on to its checks and the respond
			   stage */
	SY_RESPOND,	/* the reply is final (an error, a cache hit): respond */
	SY_DONE,	/* the exchange is over: the stages' end hooks, the log */
	SY_NVERDICTS
};

/* A stage: one step of the request's path. */
struct sy_stage {
	const char *name;
	/* The exchange arrives at the stage (again, after a jump back). */
	enum sy_verdict (*enter)(struct sy_exchange *x);
	/*
	 * The exchange ends (answered, failed or abandoned): release the
	 * stage's slice (timers, calls, places in queues) and leave on
	 * x->req what the access log must say.  Called for every stage of
	 * the table, entered or not, in table order.  May be NULL.
	 */
	void (*end)(struct sy_exchange *x);
};

/* The reply to send: a whole answer or an error, in the canonical form. */
struct sy_reply {
	int status;
	struct evbuffer *body;		/* canonical JSON, owned; NULL: none yet */
	char headers[160];		/* extra header lines ("Retry-After: 3\r\n") */
	int failed;			/* the route's tries failed: fall back */
	int native;			/* body is already in the client's
					   dialect: sent as it is */
};

/* Why the last try failed, told to the client when nothing else works. */
struct sy_failure {
	int status;			/* 0: nothing failed yet */
	const char *code;
	char msg[200];
};

/* ==== Slices: each stage's own part of the exchange ==== */

/* front: the client's request translated, GET /v1/models. */
struct sy_front_slice {
	struct evbuffer *canon;		/* a translated request, canonical */
	struct evbuffer *client;	/* the request's body as the client sent
					   it (borrowed) */
	struct sy_models_ask *models;	/* GET /v1/models asking the backends */
	struct sy_tokenize_ask *tokenize;	/* count_tokens asking a backend */
	int64_t estimate;		/* count_tokens: the gateway's count */
};

/* auth: a dynamic key being looked up. */
struct sy_auth_slice {
	struct sy_keystore_op *op;
};

/* admit: the request's limits and budgets, reserved. */
struct sy_admit_slice {
	struct sy_reservation *res;	/* NULL: no limit applies */
	struct sy_reserve_op *op;	/* a reservation Redis is to answer */
	int admitted;			/* reserved: settled at the end */
	int passed;			/* admitted, limits or none: its
					   usage is recorded at the end */
	int64_t in, out, usd;		/* what was reserved: estimates */
};

/* thread: a Responses conversation, its earlier turns and this one. */
struct sy_thread_slice {
	struct sy_rstore_op *op;	/* a lookup Redis is to answer */
	json_t *request;		/* the client's request (object), owned */
	json_t *input;			/* the conversation's items so far: the
					   earlier turns' and this request's */
};

/* route: the routes taken, the client's then fallbacks. */
#define SY_MAX_ROUTES 9
struct sy_route_slice {
	struct sy_route *first;
	size_t next_fallback;
	const struct sy_route *visited[SY_MAX_ROUTES];
	unsigned nvisited;
};

/* select: the model's choice, and whether its answer may be replaced. */
struct sy_select_slice {
	const char *preset;		/* the model chosen already (a batch's) */
	const char *escalate_to;	/* the next model, when set by check */
	int hold;			/* a stream is held until it is checked */
};

/* cache: the lookup's state and a hit's replay. */
struct sy_cache_slice {
	struct sy_cache_ctx *ctx;	/* NULL: no lookup (a bypass) */
	struct evbuffer *replay;	/* a paced hit's events still to send */
	struct event *timer;		/* paces the replay */
};

/* batch: a member's place in its route's batcher, or the call of a batch. */
struct sy_batch_slice {
	struct sy_batch_member *member;
	struct event *timer;		/* the member's own deadline */
	int answered;			/* its part arrived */
	struct sy_batch *batch;		/* this exchange is the call of batch */
	struct evbuffer *request;	/* the call's canonical request */
	TAILQ_ENTRY(sy_exchange) link;	/* in the worker's list of calls */
};

/* tries: choosing an endpoint, retrying, waiting for a free one. */
struct sy_tries_slice {
	int counted;			/* the try holds one of the endpoint's slots */
	uint64_t t_try;			/* this try's start */
	struct event *timer;		/* a retry's backoff, or the queue's timeout */
	int backoff;			/* the timer is a backoff */
	int queued;			/* in the worker's wait queue */
	uint64_t t_queued;
	TAILQ_ENTRY(sy_exchange) qlink;
};

/*
 * A hedged stream's second try (retries.hedge_after_ms), racing the first
 * until one of them tells content: the winner answers, the other's
 * connection is closed.
 */
struct sy_hedge {
	struct sy_exchange *x;
	struct sy_endpoint *endpoint;	/* one of its slots held */
	struct sy_upstream_call *call;	/* NULL once it ended */
	uint64_t t_try;
	int status;			/* the backend's HTTP status */
	int streaming;
	int content;			/* it told content, or ended its stream */
	int ended;			/* terminal event seen */
	int failed;			/* an error event, a bad stream */
	struct sy_framer framer;
	void *stream_state;		/* the adapter's, for this stream */
	struct evbuffer *out;		/* its canonical events, held */
	struct sy_usage usage;
};

/* relay: the backend call and what it sends back. */
struct sy_relay_slice {
	struct sy_upstream_call *call;	/* NULL when no call runs */
	int status;			/* the backend's HTTP status */
	int transport_failed;		/* the try ended in a transport error */
	unsigned failed;		/* the try failed before anything reached
					   the client: its SY_RETRY_ON_* class */
	char retry_after[32];		/* the backend's Retry-After, or "" */
	struct evbuffer *resp;		/* a whole response's body */
	size_t held;			/* its bytes counted in rt->buffered */
	struct sy_framer framer;	/* splits a streamed response */
	void *stream_state;		/* the adapter's, for this stream */
	int streaming;
	int stream_ended;		/* terminal or error event seen */
	int paused;			/* backpressure: not reading the backend */
	int content;			/* this try's stream told something of
					   the answer: its events go out; before,
					   they are held (a failure then is the
					   try's, retried elsewhere) */
	int early_error;		/* an error event before any content */
	struct event *first_token;	/* retries.first_token_ms's timer */
	struct event *hedge_timer;	/* retries.hedge_after_ms's */
	struct sy_hedge *hedge;		/* the second try racing, or NULL */
};

/* respond: what the client got so far. */
struct sy_respond_slice {
	char headers[640];		/* X-Request-Id, X-Switchyard-*, CORS:
					   written once */
	const char *header_model;	/* for X-Switchyard-Model, or NULL */
	const char *cache_word;		/* for X-Switchyard-Cache, or NULL */
	char *more_headers;		/* header lines stages add (the rate
					   limits left), owned; or NULL */
	struct evbuffer *out;		/* canonical events waiting to be sent */
	int started;			/* the stream's head was sent */
	int ended;			/* the client has its whole answer */
	void *cstate;			/* the dialect's stream translation */
	struct sy_sse csse;		/* splits canonical events for it */
	struct evbuffer *cout;		/* its events */
	json_t *echo;			/* what the answer's object repeats from
					   the request (sy_respond_echo), or NULL */
	/* Told the answer before it is sent (sy_respond_watch), or NULL. */
	void (*watch)(struct sy_exchange *x, json_t *obj);
};

/* One client exchange, or one call a batch makes. */
struct sy_exchange {
	struct sy_req req;
	struct sy_worker *w;
	struct sy_conn *conn;		/* NULL once the client is gone, and for
					   a batch's call */
	const struct sy_client_api *client;	/* the client's dialect */
	/* Where the reply goes instead of a client (a batch's call), or NULL. */
	void (*sink)(struct sy_exchange *x);
	uint64_t deadline;		/* monotonic µs: the whole request */
	struct sy_reply reply;
	struct sy_failure last;

	/* The driver. */
	const struct sy_stage *const *stages;
	size_t nstages;
	size_t at;			/* the stage the exchange is at */
	int driving;			/* inside sy_drive */
	int resumed;			/* a verdict came while driving */
	enum sy_verdict resume;

	struct sy_front_slice front;
	struct sy_auth_slice auth;
	struct sy_thread_slice thread;
	struct sy_route_slice route;
	struct sy_select_slice select;
	struct sy_admit_slice admit;
	struct sy_cache_slice cache;
	struct sy_batch_slice batch;
	struct sy_tries_slice tries;
	struct sy_relay_slice relay;
	struct sy_respond_slice respond;
};

/* ==== Hedging (proxy/stage_tries.c, for the relay) ==== */

/*
 * An endpoint for a second try of x beside the one under way (a hedge):
 * one of its pool that it has not tried, other than its current one,
 * with one of its slots taken, within the route's retry budget; or NULL.
 */
struct sy_endpoint *sy_tries_hedge_pick(struct sy_exchange *x);

/*
 * The hedge on ep that began at t_try is over without answering (status:
 * the backend's, 0 when none; failed: it failed, rather than lost the
 * race): its slot goes back and the policies and the outlier detector
 * hear how it went.
 */
void sy_tries_hedge_done(struct sy_exchange *x, struct sy_endpoint *ep,
    uint64_t t_try, int status, int failed);

/* ==== Per-worker parts of the stages ==== */

/* The tries stage's wait queue of worker w (proxy/stage_tries.c). */
void sy_tries_worker_init(struct sy_worker *w);
void sy_tries_worker_free(struct sy_worker *w);

/*
 * The current try is over (its call ended, or was abandoned): gives back
 * the endpoint's slot and tells the routing policy, the selection policy
 * and the outlier detector how it went (x->relay: status, transport
 * failure, Retry-After).  Nothing when no try holds a slot.
 */
void sy_tries_done(struct sy_exchange *x);

/*
 * The batch stage's part of worker w (proxy/stage_batch.c): the port its
 * members' answers arrive at, and the calls of batches it sent; _stop
 * ends those calls (their members told 503) before the upstream pools go.
 */
void sy_batch_worker_init(struct sy_worker *w);
void sy_batch_worker_stop(struct sy_worker *w);
void sy_batch_worker_free(struct sy_worker *w);

/* ==== The driver (proxy/pipeline.c) ==== */

/*
 * Moves x on from the stage it is at by verdict v, entering stages until
 * one waits or the exchange ends (then it is freed: x must not be used
 * after a call that may end it).  A stage that returned SY_WAIT calls this
 * when what it waited for happened; from inside a stage's enter it only
 * notes the verdict for the driver to take.
 */
void sy_drive(struct sy_exchange *x, enum sy_verdict v);

/*
 * Sets x's reply to an OpenAI-shaped error (status; type NULL: the
 * status's; code NULL: null; more_headers NULL or header lines) and notes
 * message as the exchange's error for the log.  Returns SY_RESPOND.
 */
enum sy_verdict sy_exchange_fail(struct sy_exchange *x, int status,
    const char *type, const char *code, const char *message,
    const char *more_headers);

/* Notes why the exchange failed, for the log (the first reason wins). */
void sy_exchange_error(struct sy_exchange *x, const char *msg);

/* Sets x's reply to status and body (moved), keeping header lines headers (or NULL). */
void sy_exchange_reply(struct sy_exchange *x, int status,
    struct evbuffer *body, const char *headers);

/* Which stages an exchange goes through. */
enum sy_exchange_kind {
	SY_EXCHANGE_CLIENT,	/* a client's request: every stage */
	SY_EXCHANGE_CALL	/* a batch's call: from route to respond, without
				   the client's stages (front, cache, store,
				   account) */
};

/*
 * A new exchange on worker w, holding a reference to cfg, its request's
 * arrival now and a new request id; its caller fills the rest and starts
 * it with sy_drive(x, SY_NEXT).
 */
struct sy_exchange *sy_exchange_new(struct sy_worker *w,
    struct sy_config *cfg, enum sy_exchange_kind kind);

/* Ends x now, whatever stage it waits in (its stages' end hooks run). */
void sy_exchange_end(struct sy_exchange *x);

/* ==== The stages, in the order of the request's path ==== */

extern const struct sy_stage sy_stage_front;
extern const struct sy_stage sy_stage_auth;
extern const struct sy_stage sy_stage_thread;
extern const struct sy_stage sy_stage_route;
extern const struct sy_stage sy_stage_select;
extern const struct sy_stage sy_stage_admit;
extern const struct sy_stage sy_stage_cache;
extern const struct sy_stage sy_stage_batch;
extern const struct sy_stage sy_stage_tries;
extern const struct sy_stage sy_stage_relay;
extern const struct sy_stage sy_stage_check;
extern const struct sy_stage sy_stage_store;
extern const struct sy_stage sy_stage_respond;
extern const struct sy_stage sy_stage_account;

#endif
