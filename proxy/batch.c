/* The batcher: requests of every worker queue per route and per batch key; a batch goes when its policy says, as one canonical request, and each member gets its own slice back on its own worker. */
#include <sys/queue.h>

#include <errno.h>
#include <stddef.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <jansson.h>

#include "canon.h"
#include "batch.h"
#include "tenants.h"
#include "wake.h"
#include "confrow.h"
#include "config.h"
#include "http1.h"
#include "policy.h"
#include "server.h"
#include "util.h"

/* Weight of a new sample in the batcher's service-time average. */
#define SERVICE_ALPHA 0.2
/* Shortest re-check of a held batch, µs (no busy loop). */
#define MIN_RECHECK_US 50
/*
 * How much earlier than due a timer looks at a held batch: a tenth of
 * max_wait_us, at least 1 ms but at most a quarter of max_wait_us.
 * Timers ring late (epoll's millisecond resolution, a busy machine), and a
 * batch should not wait past max_wait_us because of it; nor go after half
 * its wait when the wait is short.
 */
#define SLACK_MIN_US 1000
/* Priorities a client may ask for with a number. */
/* Longest deadline a client may ask for, ms. */
#define DEADLINE_MAX_MS 86400000

/* Requests of one batch key (API, model and parameters), best first. */
struct lane {
	TAILQ_ENTRY(lane) link;
	char *key;			/* the model and the parameters */
	char *model;			/* the served model */
	json_t *params;			/* the request without its inputs */
	enum sy_api api;
	TAILQ_HEAD(, sy_batch_member) queue;	/* by priority, then arrival */
	unsigned inputs;
	uint64_t tokens;
};

struct sy_batcher {
	pthread_mutex_t lock;
	struct sy_route *route;
	struct sy_batch_bounds bounds;
	uint64_t slack_us;		/* timers look this much early */
	unsigned max_queue;
	const struct sy_batch_policy *policy;
	void *state;
	TAILQ_HEAD(, lane) lanes;
	unsigned queued;		/* members waiting, all lanes */
	unsigned in_flight;		/* batches at the backend */
	double service_us;		/* moving average of a batch's call; 0: none yet */
};

enum member_state { M_QUEUED, M_FLYING, M_DONE };

struct sy_batch_member {
	atomic_int refs;		/* its request's, and its queue's, batch's or inbox's */
	TAILQ_ENTRY(sy_batch_member) link;	/* in its lane, or its port's inbox */
	struct sy_batcher *b;
	struct lane *lane;		/* while queued */
	enum member_state state;	/* under b->lock */
	void *owner;			/* NULL once released; its worker only */
	struct sy_config *cfg;		/* its request's (borrowed) */
	struct sy_batch_port *port;	/* a reference */
	struct event *timer;		/* re-checks its lane; its worker only */
	json_t *inputs;			/* an array of its inputs */
	unsigned ninputs;
	uint64_t tokens;		/* estimated */
	int priority;
	char *key;			/* its API key's id, or NULL */
	uint64_t deadline;
	uint64_t t_enter;
	struct sy_batch_result result;
};

struct sy_batch_port {
	atomic_int refs;		/* its worker's, and one per member */
	pthread_mutex_t lock;
	TAILQ_HEAD(, sy_batch_member) inbox;
	int alive;
	struct sy_wake *wake;
	struct event_base *base;
	sy_batch_deliver_fn deliver;
	sy_batch_send_fn send;
	void *arg;
	unsigned calls;			/* batches it sent, in flight; its worker only */
};

/* Batches taken under the lock, sent after it. */
struct taken {
	struct sy_batch **v;
	size_t n, cap;
};

/* ==== Members and ports ==== */

static void
port_unref(struct sy_batch_port *p)
{
	if (atomic_fetch_sub(&p->refs, 1) != 1)
		return;
	pthread_mutex_destroy(&p->lock);
	free(p);
}

static void
member_unref(struct sy_batch_member *m)
{
	if (atomic_fetch_sub(&m->refs, 1) != 1)
		return;
	json_decref(m->inputs);
	free(m->key);
	if (m->result.body != NULL)
		evbuffer_free(m->result.body);
	port_unref(m->port);
	free(m);
}

/* Hands m (its result filled; the reference it carries) to its worker. */
static void
port_post(struct sy_batch_member *m)
{
	struct sy_batch_port *p = m->port;
	int first;

	pthread_mutex_lock(&p->lock);
	if (!p->alive) {
		pthread_mutex_unlock(&p->lock);
		member_unref(m);
		return;
	}
	first = TAILQ_EMPTY(&p->inbox);
	TAILQ_INSERT_TAIL(&p->inbox, m, link);
	if (first)
		sy_wake_post(p->wake);
	pthread_mutex_unlock(&p->lock);
}

/* Delivers every answer that arrived, on the port's worker. */
static void
port_cb(void *arg)
{
	struct sy_batch_port *p = arg;
	TAILQ_HEAD(, sy_batch_member) list;
	struct sy_batch_member *m;

	TAILQ_INIT(&list);
	pthread_mutex_lock(&p->lock);
	TAILQ_CONCAT(&list, &p->inbox, link);
	pthread_mutex_unlock(&p->lock);
	while ((m = TAILQ_FIRST(&list)) != NULL) {
		TAILQ_REMOVE(&list, m, link);
		if (m->owner != NULL)
			p->deliver(m->owner, &m->result);
		member_unref(m);
	}
}

struct sy_batch_port *
sy_batch_port_new(struct event_base *base, sy_batch_deliver_fn deliver,
    sy_batch_send_fn send, void *arg)
{
	struct sy_batch_port *p = sy_xcalloc(1, sizeof *p);

	atomic_init(&p->refs, 1);
	pthread_mutex_init(&p->lock, NULL);
	TAILQ_INIT(&p->inbox);
	p->alive = 1;
	p->base = base;
	p->deliver = deliver;
	p->send = send;
	p->arg = arg;
	if ((p->wake = sy_wake_new(base, port_cb, p)) == NULL) {
		sy_log(SY_LOG_ERROR, "batch inbox: %s", strerror(errno));
		abort();
	}
	return p;
}

int
sy_batch_port_busy(const struct sy_batch_port *p)
{
	return p->calls > 0;
}

void
sy_batch_port_close(struct sy_batch_port *p)
{
	struct sy_batch_member *m;

	pthread_mutex_lock(&p->lock);
	p->alive = 0;
	sy_wake_free(p->wake);
	p->wake = NULL;
	while ((m = TAILQ_FIRST(&p->inbox)) != NULL) {
		TAILQ_REMOVE(&p->inbox, m, link);
		pthread_mutex_unlock(&p->lock);
		member_unref(m);
		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	port_unref(p);
}

/* ==== Batchers ==== */

struct sy_batcher *
sy_batcher_new(struct sy_route *route, char **err)
{
	const struct sy_batching *rule = &route->batch;
	struct sy_batcher *b = sy_xcalloc(1, sizeof *b);

	b->route = route;
	b->bounds.max_batch_size = rule->max_batch_size;
	b->bounds.max_batch_tokens = rule->max_batch_tokens;
	b->bounds.max_wait_us = rule->max_wait_us;
	b->max_queue = rule->max_queue;
	b->slack_us = rule->max_wait_us / 10 > SLACK_MIN_US ?
	    rule->max_wait_us / 10 : SLACK_MIN_US;
	if (b->slack_us > rule->max_wait_us / 4)
		b->slack_us = rule->max_wait_us / 4;
	b->policy = rule->policy;
	*err = NULL;
	b->state = b->policy->create(rule->params, &b->bounds,
	    route->nendpoints, err);
	if (*err != NULL) {
		free(b);
		return NULL;
	}
	pthread_mutex_init(&b->lock, NULL);
	TAILQ_INIT(&b->lanes);
	return b;
}

static void
lane_free(struct lane *l)
{
	free(l->key);
	free(l->model);
	json_decref(l->params);
	free(l);
}

void
sy_batcher_free(struct sy_batcher *b)
{
	struct lane *l;

	while ((l = TAILQ_FIRST(&b->lanes)) != NULL) {
		TAILQ_REMOVE(&b->lanes, l, link);
		lane_free(l);
	}
	if (b->policy->destroy != NULL)
		b->policy->destroy(b->state);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

/*
 * Takes m out of its lane (under b->lock); frees the lane when empty and
 * returns 1 then, else 0.
 */
static int
lane_remove(struct sy_batcher *b, struct sy_batch_member *m)
{
	struct lane *l = m->lane;

	TAILQ_REMOVE(&l->queue, m, link);
	l->inputs -= m->ninputs;
	l->tokens -= m->tokens;
	b->queued--;
	m->lane = NULL;
	if (!TAILQ_EMPTY(&l->queue))
		return 0;
	TAILQ_REMOVE(&b->lanes, l, link);
	lane_free(l);
	return 1;
}

/*
 * How long inputs more inputs of a lane would wait for their answer:
 * batches of max_batch_size, as many at once as the route has endpoints,
 * each taking the observed service time.  0 while nothing was observed.
 */
static uint64_t
wait_estimate(const struct sy_batcher *b, unsigned inputs)
{
	unsigned max = b->bounds.max_batch_size;
	size_t ways = b->route->nendpoints > 0 ? b->route->nendpoints : 1;
	size_t batches = (inputs + max - 1) / max + b->in_flight;

	return (uint64_t)((double)((batches + ways - 1) / ways) * b->service_us);
}

/* Seconds for a Retry-After, from a wait in µs: at least 1. */
static unsigned
retry_seconds(uint64_t us)
{
	return (unsigned)(us / 1000000 + 1);
}

/* ==== Taking batches ==== */

static void
taken_add(struct taken *t, struct sy_batch *bt)
{
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 4;
		t->v = realloc(t->v, t->cap * sizeof *t->v);
		if (t->v == NULL)
			abort();
	}
	t->v[t->n++] = bt;
}

/* Fills m's result with an error for the client. */
static void
result_error(struct sy_batch_member *m, int status, const char *type,
    const char *code, const char *message)
{
	struct evbuffer *body = evbuffer_new();

	sy_canon_error_body(body, status, type, code, message);
	m->result.status = status;
	m->result.body = body;
}

/* Whether a and b are the same API key's (NULL: no key). */
static int
same_key(const char *a, const char *b)
{
	return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Members of the best priority ordered by key in turn, at most. */
#define FAIR_MAX 256

/* A member and its rank among the requests of its key. */
struct ranked {
	struct sy_batch_member *m;
	size_t rank, at;
};

static int
ranked_cmp(const void *a, const void *b)
{
	const struct ranked *x = a, *y = b;

	if (x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	return x->at < y->at ? -1 : x->at > y->at;
}

/*
 * The order in which the members of l go into batches (a new array of
 * its *n members): the first ones of the best priority taken in turn from
 * each API key (every key's first request, then every key's second, ...)
 * so that one key's burst does not fill a batch ahead of the others; then
 * the rest in queue order.
 */
static struct sy_batch_member **
fair_order(struct lane *l, size_t *n)
{
	struct sy_batch_member *m, **v;
	struct ranked top[FAIR_MAX];
	size_t ntop = 0, k = 0, i, j;
	int best;

	*n = 0;
	TAILQ_FOREACH(m, &l->queue, link)
		(*n)++;
	v = sy_xcalloc(*n ? *n : 1, sizeof *v);
	m = TAILQ_FIRST(&l->queue);
	best = m != NULL ? m->priority : 0;
	for (; m != NULL && m->priority == best && ntop < FAIR_MAX;
	    m = TAILQ_NEXT(m, link)) {
		top[ntop].m = m;
		top[ntop].at = ntop;
		for (j = 0, top[ntop].rank = 0; j < ntop; j++)
			top[ntop].rank += same_key(top[j].m->key, m->key);
		ntop++;
	}
	qsort(top, ntop, sizeof *top, ranked_cmp);
	for (i = 0; i < ntop; i++)
		v[k++] = top[i].m;
	for (; m != NULL; m = TAILQ_NEXT(m, link))
		v[k++] = m;
	return v;
}

/*
 * Takes the lane's first members (best first) that fit one batch, under
 * b->lock, into a new batch for t.  A member whose deadline passed is not
 * sent: it gets 503 at once.  Returns 1 when the lane was emptied (and
 * freed), else 0.
 */
static int
take_batch(struct sy_batcher *b, struct lane *l, enum sy_flush reason,
    uint64_t now, struct taken *t)
{
	struct sy_batch *bt = sy_xcalloc(1, sizeof *bt);
	struct sy_batch_member *m, **order;
	uint64_t tokens = 0;
	size_t i, norder;
	int gone = 0;

	bt->members = sy_xcalloc(b->bounds.max_batch_size, sizeof *bt->members);
	bt->batcher = b;
	bt->route = b->route;
	bt->api = l->api;
	bt->reason = reason;
	bt->t_flush = now;
	bt->params = json_incref(l->params);
	bt->model = sy_xstrdup(l->model);
	order = fair_order(l, &norder);
	for (i = 0; !gone && i < norder; i++) {
		m = order[i];
		if (bt->inputs + m->ninputs > b->bounds.max_batch_size ||
		    (b->bounds.max_batch_tokens != 0 && bt->inputs > 0 &&
		    tokens + m->tokens > b->bounds.max_batch_tokens))
			break;
		gone = lane_remove(b, m);
		/* now may be a moment older than a member that just came. */
		m->result.wait_us = now > m->t_enter ? now - m->t_enter : 0;
		if (m->deadline <= now) {
			m->state = M_DONE;
			m->result.shed = 1;
			result_error(m, 503, "server_error", "deadline_exceeded",
			    "the request's deadline passed while it waited "
			    "for a batch");
			snprintf(m->result.headers, sizeof m->result.headers,
			    "Retry-After: %u\r\n", retry_seconds(
			    wait_estimate(b, 0)));
			port_post(m);
			continue;
		}
		m->state = M_FLYING;
		bt->members[bt->nmembers++] = m;
		bt->inputs += m->ninputs;
		tokens += m->tokens;
		if (m->deadline > bt->deadline)
			bt->deadline = m->deadline;
	}
	free(order);
	if (bt->nmembers == 0) {
		json_decref(bt->params);
		free(bt->model);
		free(bt->members);
		free(bt);
		return gone;
	}
	bt->cfg = sy_config_ref(bt->members[0]->cfg);
	b->in_flight++;
	taken_add(t, bt);
	return gone;
}

/*
 * Asks the policy about lane l (under b->lock), its batch seen slack µs
 * older than it is, and takes batches while it says go.  Returns 1 and
 * sets *recheck_us (µs from now, for a timer) when members stay, 0 when
 * the lane was emptied (and freed).
 */
static int
poll_lane(struct sy_batcher *b, struct lane *l, uint64_t now, uint64_t slack,
    struct taken *t, uint64_t *recheck_us)
{
	struct sy_batch_view v;
	struct sy_batch_member *m;
	enum sy_flush reason;
	uint64_t oldest, due, start_by, start, reserve;

	for (;;) {
		oldest = now;
		start_by = UINT64_MAX;
		TAILQ_FOREACH(m, &l->queue, link) {
			if (m->t_enter < oldest)
				oldest = m->t_enter;
			/* The latest the batch may go for m's deadline: the
			   service time before it (half of m's time until
			   one was observed). */
			reserve = b->service_us > 0 ? (uint64_t)b->service_us :
			    m->deadline > m->t_enter ?
			    (m->deadline - m->t_enter) / 2 : 0;
			start = m->deadline > reserve ? m->deadline - reserve : 0;
			if (start < start_by)
				start_by = start;
		}
		v.inputs = l->inputs;
		v.tokens = l->tokens;
		v.age_us = now - oldest + slack;
		v.in_flight = b->in_flight;
		reason = b->policy->decide(b->state, &v, &due);
		if (reason == SY_FLUSH_HOLD && now + slack >= start_by)
			reason = SY_FLUSH_DEADLINE;
		if (reason == SY_FLUSH_HOLD) {
			v.age_us += b->slack_us - slack;
			*recheck_us = due > v.age_us + MIN_RECHECK_US ?
			    due - v.age_us : MIN_RECHECK_US;
			if (start_by - now < *recheck_us)
				*recheck_us = start_by - now > MIN_RECHECK_US ?
				    start_by - now : MIN_RECHECK_US;
			return 1;
		}
		if (take_batch(b, l, reason, now, t))
			return 0;
	}
}

/* Polls every lane of b (under b->lock): after a batch returned. */
static void
poll_all(struct sy_batcher *b, uint64_t now, struct taken *t)
{
	struct lane *l, *next;
	uint64_t recheck;

	for (l = TAILQ_FIRST(&b->lanes); l != NULL; l = next) {
		next = TAILQ_NEXT(l, link);
		poll_lane(b, l, now, 0, t, &recheck);
	}
}

/*
 * Builds each taken batch's body (its lane's parameters with the members'
 * inputs concatenated) and sends it through port, outside the lock.
 */
static void
send_taken(struct sy_batch_port *port, struct taken *t)
{
	struct sy_batch *bt;
	json_t **inputs;
	size_t i, j;

	for (i = 0; i < t->n; i++) {
		bt = t->v[i];
		inputs = sy_xcalloc(bt->nmembers, sizeof *inputs);
		for (j = 0; j < bt->nmembers; j++)
			inputs[j] = bt->members[j]->inputs;
		bt->body = evbuffer_new();
		sy_canon_batch_request(bt->api, bt->params, inputs,
		    bt->nmembers, bt->body);
		free(inputs);
		port->calls++;
		port->send(port->arg, bt);
	}
	free(t->v);
}

/* Arms m's timer us from now (on m's worker). */
static void
member_arm(struct sy_batch_member *m, uint64_t us)
{
	struct timeval tv = { (time_t)(us / 1000000), (suseconds_t)(us % 1000000) };

	evtimer_add(m->timer, &tv);
}

/* Re-checks m's lane when m's timer rings (on m's worker). */
static void
member_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sy_batch_member *m = arg;
	struct sy_batcher *b = m->b;
	struct taken t = { NULL, 0, 0 };
	uint64_t recheck = 0;
	int again = 0;

	pthread_mutex_lock(&b->lock);
	if (m->state == M_QUEUED && poll_lane(b, m->lane, sy_now_us(),
	    b->slack_us, &t, &recheck))
		again = m->state == M_QUEUED;
	pthread_mutex_unlock(&b->lock);
	if (again)
		member_arm(m, recheck);
	send_taken(m->port, &t);
}

/* ==== Entering ==== */

/*
 * Reads the batching header of req: a deadline in ms from arrival, which
 * may only shorten *deadline (the priority is the request's: see the
 * admit stage).  0, or -1 with *msg.
 */
static int
read_headers(const struct sy_req *req, uint64_t *deadline, char **msg)
{
	const char *v;
	char *end;
	long n;

	if (req->head == NULL)
		return 0;
	if ((v = sy_http1_header(req->head, "x-switchyard-deadline-ms")) != NULL) {
		errno = 0;
		n = strtol(v, &end, 10);
		if (*v == '\0' || *end != '\0' || errno != 0 || n < 1 ||
		    n > DEADLINE_MAX_MS)
			return sy_fail(msg, "x-switchyard-deadline-ms must be "
			    "an integer from 1 to %d", DEADLINE_MAX_MS);
		if (req->t_arrival + (uint64_t)n * 1000 < *deadline)
			*deadline = req->t_arrival + (uint64_t)n * 1000;
	}
	return 0;
}

/*
 * The lane of key in b (under b->lock), made from params (taken) when
 * missing.
 */
static struct lane *
lane_get(struct sy_batcher *b, char *key, json_t *params, enum sy_api api,
    const char *model)
{
	struct lane *l;

	TAILQ_FOREACH(l, &b->lanes, link)
		if (l->api == api && strcmp(l->key, key) == 0) {
			free(key);
			json_decref(params);
			return l;
		}
	l = sy_xcalloc(1, sizeof *l);
	l->key = key;
	l->params = params;
	l->api = api;
	l->model = sy_xstrdup(model);
	TAILQ_INIT(&l->queue);
	TAILQ_INSERT_TAIL(&b->lanes, l, link);
	return l;
}

/* Inputs in l of members that go before a member of priority (under the lock). */
static unsigned
inputs_ahead(const struct lane *l, int priority)
{
	const struct sy_batch_member *m;
	unsigned n = 0;

	TAILQ_FOREACH(m, &l->queue, link)
		if (m->priority >= priority)
			n += m->ninputs;
	return n;
}

/* Puts m in l after every member of its priority or higher. */
static void
lane_insert(struct lane *l, struct sy_batch_member *m)
{
	struct sy_batch_member *y;

	TAILQ_FOREACH(y, &l->queue, link)
		if (y->priority < m->priority) {
			TAILQ_INSERT_BEFORE(y, m, link);
			break;
		}
	if (y == NULL)
		TAILQ_INSERT_TAIL(&l->queue, m, link);
	l->inputs += m->ninputs;
	l->tokens += m->tokens;
}

enum sy_batch_entry
sy_batch_enter(struct sy_batcher *b, struct sy_batch_port *port, void *owner,
    const struct sy_req *req, uint64_t *deadline, struct sy_batch_member **out,
    char **msg, unsigned *retry_after)
{
	const char *key = req->api == SY_API_EMBEDDINGS ? "input" : "prompt";
	json_t *body = sy_req_body(req), *inputs, *params;
	struct taken t = { NULL, 0, 0 };
	struct sy_batch_member *m;
	struct lane *l;
	const char *problem;
	char *lane_key, *text;
	uint64_t now, est, recheck;
	int priority, waits;
	size_t i;

	if (req->api == SY_API_CHAT || req->api == SY_API_RERANK ||
	    req->stream || !json_is_object(body))
		return SY_BATCH_ALONE;
	if ((problem = sy_canon_batch_inputs(req->api, body,
	    &inputs)) != NULL) {
		*msg = sy_xstrdup(problem);
		return SY_BATCH_BAD;
	}
	if (json_array_size(inputs) > b->bounds.max_batch_size) {
		json_decref(inputs);
		return SY_BATCH_ALONE;
	}
	priority = req->priority;
	if (read_headers(req, deadline, msg) != 0) {
		json_decref(inputs);
		return SY_BATCH_BAD;
	}
	params = json_copy(body);
	json_object_del(params, key);
	text = json_dumps(params, JSON_COMPACT | JSON_SORT_KEYS);
	if (text == NULL || asprintf(&lane_key, "%s\n%s", req->model,
	    text) < 0)
		abort();
	free(text);

	m = sy_xcalloc(1, sizeof *m);
	atomic_init(&m->refs, 2);
	m->b = b;
	m->owner = owner;
	m->cfg = req->cfg;
	m->port = port;
	atomic_fetch_add(&port->refs, 1);
	m->inputs = inputs;
	m->ninputs = (unsigned)json_array_size(inputs);
	for (i = 0; i < m->ninputs; i++)
		m->tokens += sy_canon_input_tokens(json_array_get(inputs, i));
	m->priority = priority;
	m->key = req->key_id != NULL ? sy_xstrdup(req->key_id) : NULL;
	m->deadline = *deadline;
	m->t_enter = now = sy_now_us();
	m->result.usage.prompt_tokens = m->result.usage.completion_tokens =
	    m->result.usage.cached_tokens = -1;
	m->timer = evtimer_new(port->base, member_timer_cb, m);

	pthread_mutex_lock(&b->lock);
	if (b->policy->arrive != NULL)
		b->policy->arrive(b->state, m->ninputs, now);
	l = lane_get(b, lane_key, params, req->api, req->model);
	est = wait_estimate(b, inputs_ahead(l, priority) + m->ninputs);
	if (b->queued >= b->max_queue || (b->service_us > 0 &&
	    now + est > *deadline)) {
		enum sy_batch_entry why = b->queued >= b->max_queue ?
		    SY_BATCH_FULL : SY_BATCH_LATE;

		if (TAILQ_EMPTY(&l->queue)) {
			TAILQ_REMOVE(&b->lanes, l, link);
			lane_free(l);
		}
		if (why == SY_BATCH_FULL) {
			/* Until the inputs queued now have gone. */
			unsigned queued = 0;
			struct lane *q;

			TAILQ_FOREACH(q, &b->lanes, link)
				queued += q->inputs;
			est = wait_estimate(b, queued);
		}
		pthread_mutex_unlock(&b->lock);
		*retry_after = retry_seconds(est);
		*msg = sy_xstrdup(why == SY_BATCH_FULL ? "the batch queue is "
		    "full; retry later" : "the request's deadline cannot be "
		    "met: the batches ahead of it take longer");
		event_free(m->timer);
		m->owner = NULL;
		member_unref(m);
		member_unref(m);
		return why;
	}
	m->state = M_QUEUED;
	m->lane = l;
	lane_insert(l, m);
	b->queued++;
	waits = poll_lane(b, l, now, 0, &t, &recheck) && m->state == M_QUEUED;
	pthread_mutex_unlock(&b->lock);
	*out = m;
	if (waits)
		member_arm(m, recheck);
	send_taken(port, &t);
	return SY_BATCH_QUEUED;
}

void
sy_batch_release(struct sy_batch_member *m)
{
	struct sy_batcher *b = m->b;
	int queued;

	if (m->timer != NULL) {
		event_free(m->timer);
		m->timer = NULL;
	}
	m->owner = NULL;
	pthread_mutex_lock(&b->lock);
	if ((queued = m->state == M_QUEUED)) {
		lane_remove(b, m);
		m->state = M_DONE;
	}
	pthread_mutex_unlock(&b->lock);
	if (queued)
		member_unref(m);
	member_unref(m);
}

/* ==== Answers ==== */

/*
 * Gives each member of bt its part of a successful answer (status, body)
 * and its share of the usage total.  Returns 0, or -1 when the answer
 * does not hold one item per input.
 */
static int
split_answer(struct sy_batch *bt, int status, struct evbuffer *body,
    const struct sy_usage *total)
{
	struct sy_canon_part *parts = sy_xcalloc(bt->nmembers, sizeof *parts);
	size_t i;
	int rc;

	for (i = 0; i < bt->nmembers; i++) {
		parts[i].ninputs = bt->members[i]->ninputs;
		parts[i].prompt_weight = bt->members[i]->tokens;
	}
	if ((rc = sy_canon_batch_split(bt->api, body, total, parts,
	    bt->nmembers)) == 0)
		for (i = 0; i < bt->nmembers; i++) {
			bt->members[i]->result.status = status;
			bt->members[i]->result.body = parts[i].body;
			bt->members[i]->result.usage = parts[i].usage;
		}
	free(parts);
	return rc;
}

void
sy_batch_answer(struct sy_batch *bt, struct sy_batch_port *port, int status,
    struct evbuffer *body, const char *headers, const struct sy_req *call)
{
	struct sy_batcher *b = bt->batcher;
	struct taken t = { NULL, 0, 0 };
	struct sy_batch_member *m;
	uint64_t now = sy_now_us(), took = now - bt->t_flush;
	int alone;
	size_t i;

	/* A client error of several inputs may be one member's: each alone. */
	alone = status >= 400 && status < 500 && status != 408 &&
	    status != 429 && bt->nmembers > 1;
	if (status < 400 && split_answer(bt, status, body, &call->usage) != 0)
		for (i = 0; i < bt->nmembers; i++)
			result_error(bt->members[i], 502, "server_error",
			    "bad_gateway", "the backend's answer to a batch "
			    "does not hold one item per input");
	for (i = 0; i < bt->nmembers; i++) {
		m = bt->members[i];
		m->result.alone = alone;
		m->result.endpoint = call->endpoint;
		if (call->model != NULL &&
		    strlen(call->model) < sizeof m->result.model)
			strcpy(m->result.model, call->model);
		m->result.pick_reason = call->pick_reason;
		m->result.retries = call->retries;
		m->result.fallbacks = call->fallbacks;
		m->result.upstream_us = call->upstream_us;
		m->result.batch_size = bt->inputs;
		if (status >= 400 && !alone) {
			m->result.status = status;
			m->result.body = evbuffer_new();
			evbuffer_add(m->result.body, evbuffer_pullup(body, -1),
			    evbuffer_get_length(body));
			snprintf(m->result.headers, sizeof m->result.headers,
			    "%s", headers != NULL ? headers : "");
		}
	}
	port->calls--;
	pthread_mutex_lock(&b->lock);
	for (i = 0; i < bt->nmembers; i++)
		bt->members[i]->state = M_DONE;
	b->in_flight--;
	if (status < 400) {
		b->service_us = b->service_us > 0 ? b->service_us *
		    (1 - SERVICE_ALPHA) + (double)took * SERVICE_ALPHA :
		    (double)took;
		if (b->policy->observe != NULL)
			b->policy->observe(b->state, bt->inputs, took);
	}
	poll_all(b, now, &t);
	pthread_mutex_unlock(&b->lock);
	for (i = 0; i < bt->nmembers; i++)
		port_post(bt->members[i]);
	if (bt->cfg != NULL)
		sy_config_unref(bt->cfg);
	if (bt->body != NULL)
		evbuffer_free(bt->body);
	json_decref(bt->params);
	free(bt->model);
	free(bt->members);
	free(bt);
	send_taken(port, &t);
}

/* ==== Config ==== */

/* The batching policy of a route's batch object (v at path; NULL: the default). */
static int
batch_policy(struct sy_conf *c, const struct sy_conf_row *row,
    const json_t *v, const char *path, void *base)
{
	struct sy_batching *b = base;
	const char *name;
	char names[256];

	if (sy_conf_policy(c, row, v, path, &name, &b->params) == -1)
		return -1;
	if ((b->policy = sy_batch_policy_find(name)) == NULL) {
		sy_batch_policy_names(names, sizeof names);
		sy_conf_unknown_policy(c, v, path, "batching policy", name,
		    names);
		return -1;
	}
	return 0;
}

static const struct sy_conf_row batch_rows[] = {
	{ .name = "policy", .type = SY_CONF_CUSTOM, .always = 1,
	  .def.s = "window", .parse = batch_policy,
	  .doc = "batching policy: a name or {\"name\", parameters}" },
	{ .name = "max_batch_size", .type = SY_CONF_UINT,
	  .offset = offsetof(struct sy_batching, max_batch_size),
	  .def.u = 32, .min = 1, .max = 2048,
	  .doc = "most inputs in one batch" },
	{ .name = "max_batch_tokens", .type = SY_CONF_UINT64,
	  .offset = offsetof(struct sy_batching, max_batch_tokens),
	  .max = 1000000000,
	  .doc = "most estimated tokens in one batch; 0: no limit" },
	{ .name = "max_wait_us", .type = SY_CONF_UINT64,
	  .offset = offsetof(struct sy_batching, max_wait_us),
	  .def.u = 2000, .max = 60000000,
	  .doc = "longest wait of a batch's first input" },
	{ .name = "max_queue", .type = SY_CONF_UINT,
	  .offset = offsetof(struct sy_batching, max_queue),
	  .def.u = 1024, .min = 1, .max = 100000,
	  .doc = "requests waiting in the batcher, all workers" },
	{ .name = NULL }
};

const struct sy_conf_table sy_batch_table = {
	.path = "routes[].batch",
	.rows = batch_rows,
	.size = sizeof(struct sy_batching)
};
