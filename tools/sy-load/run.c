/* sy-load: drives a run: the open, closed and replay schedules, each request's life, the progress line. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "load.h"

/* A closed-loop client: one request in flight at a time. */
struct sy_load_worker {
	struct run *run;
	struct event *think;		/* waits out the think time */
	struct sy_load_session *session;
};

struct run {
	const struct sy_load_opts *o;
	struct sy_load_results *res;
	struct event_base *base;
	struct sy_load_pool pool;
	struct sy_load_work work;
	struct evbuffer *msg;
	struct sy_load_req *free_reqs;

	uint64_t t_start;		/* monotonic µs */
	uint64_t t_measure;		/* end of the warm-up */
	uint64_t t_stop;		/* end of --duration, 0: none */
	uint64_t next_id;
	uint64_t next_session;
	uint64_t issued;		/* measured: sent or dropped */
	uint64_t inflight;
	int stopping;
	int aborted;
	size_t rec_cap, gaps_cap;

	/* Progress counters (measured requests only). */
	uint64_t n_ok, n_failed, n_dropped, n_tokens;
	uint64_t last_ok, last_tokens, last_tick;
	int tty;

	/* Closed loop. */
	struct sy_load_worker *workers;
	unsigned nworkers;

	/* Open loop. */
	struct event *arrival;
	double next_arrival;		/* µs since t_start */
	struct sy_load_rng arrival_rng;
	double lag_sum;
	uint64_t lag_n, lag_max;
	struct sy_load_session **ready;	/* min-heap on ready_us */
	size_t nready, ready_cap;

	/* Replay. */
	struct event *replay;
	size_t next_entry;
	size_t npending;		/* entries waiting for their session */
	struct sy_load_session **tsessions;
	unsigned *tturns;

	struct event *progress;
	struct event *stop;
	struct event *sigint;
	struct event *sigterm;
};

uint64_t
sy_load_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Fills tv with us microseconds. */
static void
tv_us(struct timeval *tv, uint64_t us)
{
	tv->tv_sec = (time_t)(us / 1000000u);
	tv->tv_usec = (suseconds_t)(us % 1000000u);
}

/* ==== Requests ==== */

/* A zeroed request (its gap buffer kept for reuse). */
static struct sy_load_req *
req_get(struct run *r)
{
	struct sy_load_req *req = r->free_reqs;
	uint32_t *gaps = NULL;
	size_t cap = 0;

	if (req != NULL) {
		r->free_reqs = req->next;
		gaps = req->gaps;
		cap = req->gaps_cap;
	} else if ((req = malloc(sizeof *req)) == NULL)
		abort();
	memset(req, 0, sizeof *req);
	req->gaps = gaps;
	req->gaps_cap = cap;
	return req;
}

/* Returns req to the free list. */
static void
req_put(struct run *r, struct sy_load_req *req)
{
	if (req->text != NULL)
		evbuffer_free(req->text);
	req->text = NULL;
	req->next = r->free_reqs;
	r->free_reqs = req;
}

/* Keeps the outcome of a measured request for the report. */
static void
record(struct run *r, const struct sy_load_req *req)
{
	struct sy_load_results *res = r->res;
	const struct sy_load_rec *rec = &req->rec;
	void *p;
	size_t need;

	if (res->nrecs == r->rec_cap) {
		r->rec_cap = r->rec_cap ? 2 * r->rec_cap : 4096;
		p = realloc(res->recs, r->rec_cap * sizeof *res->recs);
		if (p == NULL)
			abort();
		res->recs = p;
	}
	res->recs[res->nrecs++] = *rec;
	if (rec->error == SY_LOAD_OK) {
		r->n_ok++;
		r->n_tokens += rec->completion_tokens;
		if (req->ngaps == 0)
			return;
		need = res->ngaps + req->ngaps;
		if (need > r->gaps_cap) {
			while (need > r->gaps_cap)
				r->gaps_cap = r->gaps_cap ?
				    2 * r->gaps_cap : 65536;
			p = realloc(res->gaps, r->gaps_cap * sizeof *res->gaps);
			if (p == NULL)
				abort();
			res->gaps = p;
		}
		memcpy(res->gaps + res->ngaps, req->gaps,
		    req->ngaps * sizeof *req->gaps);
		res->ngaps += req->ngaps;
		return;
	}
	if (rec->error == SY_LOAD_ERR_DROPPED)
		r->n_dropped++;
	else
		r->n_failed++;
	if (res->errmsg[rec->error][0] == '\0' && req->errmsg[0] != '\0') {
		snprintf(res->errmsg[rec->error], sizeof res->errmsg[0], "%s",
		    req->errmsg);
		res->errstatus[rec->error] = rec->status;
	}
}

/*
 * Whether to issue no more requests: interrupted, --requests reached or
 * --duration over.  Sets r->stopping once true.
 */
static int
should_stop(struct run *r, uint64_t now)
{
	if (!r->stopping && ((r->o->requests != 0 &&
	    r->issued >= r->o->requests) ||
	    (r->t_stop != 0 && now >= r->t_stop)))
		r->stopping = 1;
	return r->stopping;
}

/* Ends the run once nothing more will be issued and nothing is in flight. */
static void
check_drain(struct run *r)
{
	if (r->stopping && r->inflight == 0)
		event_base_loopbreak(r->base);
}

/*
 * Starts a request at now: the next turn of s (t may fix some of it) or a
 * trace line's own body (raw).  The pool must not be full.
 */
static void
issue(struct run *r, uint64_t now, struct sy_load_session *s,
    const struct sy_load_turn *t, const struct sy_load_trace_entry *raw,
    struct sy_load_worker *w)
{
	struct sy_load_req *req = req_get(r);

	req->measured = now >= r->t_measure;
	if (req->measured)
		r->issued++;
	req->rec.id = r->next_id++;
	req->rec.start_us = (int64_t)now - (int64_t)r->t_measure;
	req->t0 = now;
	req->worker = w;
	if (raw != NULL)
		sy_load_work_build_raw(&r->work, raw, req, r->msg);
	else {
		s->busy = 1;
		sy_load_work_build(&r->work, s, t, req, r->msg);
	}
	r->inflight++;
	if (sy_load_pool_send(&r->pool, req, r->msg) < 0)
		abort();
}

/* Counts an arrival at now that found no connection to send on. */
static void
drop(struct run *r, uint64_t now)
{
	struct sy_load_req *req;

	if (now < r->t_measure)
		return;
	req = req_get(r);
	r->issued++;
	req->rec.id = r->next_id++;
	req->rec.start_us = (int64_t)now - (int64_t)r->t_measure;
	req->rec.session = -1;
	req->rec.group = -1;
	req->rec.error = SY_LOAD_ERR_DROPPED;
	record(r, req);
	req_put(r, req);
}

/* Keeps how late a request due at due left, at now. */
static void
note_lag(struct run *r, uint64_t now, uint64_t due)
{
	uint64_t lag = now - due;

	if (now < r->t_measure)
		return;
	r->lag_sum += (double)lag;
	r->lag_n++;
	if (lag > r->lag_max)
		r->lag_max = lag;
}

/* ==== Open loop ==== */

/* Puts s on the heap of sessions waiting for their next turn. */
static void
ready_push(struct run *r, struct sy_load_session *s)
{
	struct sy_load_session **h, *tmp;
	size_t i, parent;

	if (r->nready == r->ready_cap) {
		r->ready_cap = r->ready_cap ? 2 * r->ready_cap : 64;
		h = realloc(r->ready, r->ready_cap * sizeof *h);
		if (h == NULL)
			abort();
		r->ready = h;
	}
	h = r->ready;
	i = r->nready++;
	h[i] = s;
	while (i > 0) {
		parent = (i - 1) / 2;
		if (h[parent]->ready_us <= h[i]->ready_us)
			break;
		tmp = h[parent];
		h[parent] = h[i];
		h[i] = tmp;
		i = parent;
	}
}

/* The waiting session whose next turn is due by now, or NULL. */
static struct sy_load_session *
ready_pop(struct run *r, uint64_t now)
{
	struct sy_load_session **h = r->ready, *top, *tmp;
	size_t i = 0, c;

	if (r->nready == 0 || h[0]->ready_us > now)
		return NULL;
	top = h[0];
	h[0] = h[--r->nready];
	for (;;) {
		c = 2 * i + 1;
		if (c >= r->nready)
			break;
		if (c + 1 < r->nready && h[c + 1]->ready_us < h[c]->ready_us)
			c++;
		if (h[i]->ready_us <= h[c]->ready_us)
			break;
		tmp = h[i];
		h[i] = h[c];
		h[c] = tmp;
		i = c;
	}
	return top;
}

/* One open-loop arrival at now: a due session's next turn, or a new session. */
static void
arrive(struct run *r, uint64_t now)
{
	struct sy_load_session *s;

	if (sy_load_pool_full(&r->pool)) {
		drop(r, now);
		return;
	}
	if ((s = ready_pop(r, now)) == NULL)
		s = sy_load_session_new(&r->work, r->next_session++);
	issue(r, now, s, NULL, NULL, NULL);
}

/* The arrival timer: issues the arrivals due, then waits for the next. */
static void
arrival_cb(evutil_socket_t fd, short what, void *arg)
{
	struct run *r = arg;
	const struct sy_load_opts *o = r->o;
	struct timeval tv;
	uint64_t now = sy_load_now(), due;

	for (;;) {
		due = r->t_start + (uint64_t)r->next_arrival;
		if (due > now || should_stop(r, now))
			break;
		note_lag(r, now, due);
		arrive(r, now);
		if (o->poisson)
			r->next_arrival += sy_load_rng_exp(&r->arrival_rng,
			    1e6 / o->rate);
		else
			r->next_arrival += 1e6 / o->rate;
	}
	if (r->stopping) {
		check_drain(r);
		return;
	}
	tv_us(&tv, due - now);
	evtimer_add(r->arrival, &tv);
}

/* ==== Closed loop ==== */

/*
 * Issues w's next request now (in a new session when its last one is
 * over), unless the run stops.
 */
static void
worker_next(struct sy_load_worker *w)
{
	struct run *r = w->run;
	uint64_t now = sy_load_now();

	if (should_stop(r, now))
		return;
	if (w->session != NULL && w->session->turn >= w->session->turns) {
		sy_load_session_free(w->session);
		w->session = NULL;
	}
	if (w->session == NULL)
		w->session = sy_load_session_new(&r->work, r->next_session++);
	issue(r, now, w->session, NULL, NULL, w);
}

/* The think time of w is over. */
static void
think_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sy_load_worker *w = arg;

	worker_next(w);
	check_drain(w->run);
}

/* ==== Replay ==== */

/* The turn a trace line describes. */
static void
entry_turn(const struct sy_load_trace_entry *e, struct sy_load_turn *t)
{
	t->model = e->model;
	t->prompt_tokens = e->prompt_tokens;
	t->output_tokens = e->output_tokens;
	t->stream = e->stream;
}

/* Sends trace line i now (or drops it); a busy session makes it wait. */
static void
replay_entry(struct run *r, size_t i, uint64_t now)
{
	const struct sy_load_trace_entry *e = &r->o->trace->entries[i];
	struct sy_load_session *s;
	struct sy_load_turn t;
	size_t *p;

	if (e->session >= 0) {
		s = r->tsessions[e->session];
		if (s == NULL) {
			s = sy_load_session_new(&r->work, (uint64_t)e->session);
			s->turns = r->tturns[e->session];
			r->tsessions[e->session] = s;
		}
		if (s->busy) {
			if (s->npending == s->pending_cap) {
				s->pending_cap = s->pending_cap ?
				    2 * s->pending_cap : 8;
				p = realloc(s->pending, s->pending_cap *
				    sizeof *p);
				if (p == NULL)
					abort();
				s->pending = p;
			}
			s->pending[s->npending++] = i;
			r->npending++;
			return;
		}
	} else
		s = NULL;
	if (sy_load_pool_full(&r->pool)) {
		drop(r, now);
		return;
	}
	if (e->body != NULL)
		issue(r, now, NULL, NULL, e, NULL);
	else {
		if (s == NULL)
			s = sy_load_session_new(&r->work,
			    r->o->trace->nsessions + i);
		entry_turn(e, &t);
		issue(r, now, s, &t, NULL, NULL);
	}
}

/* Whether replay has nothing more to send. */
static int
replay_over(struct run *r)
{
	return r->next_entry == r->o->trace->n && r->npending == 0;
}

/* The replay timer: sends the trace lines due, then waits for the next. */
static void
replay_cb(evutil_socket_t fd, short what, void *arg)
{
	struct run *r = arg;
	const struct sy_load_trace *tr = r->o->trace;
	struct timeval tv;
	uint64_t now = sy_load_now(), due = 0;

	while (r->next_entry < tr->n) {
		due = r->t_start + tr->entries[r->next_entry].t_us;
		if (due > now || should_stop(r, now))
			break;
		note_lag(r, now, due);
		replay_entry(r, r->next_entry++, now);
	}
	if (replay_over(r))
		r->stopping = 1;
	if (r->stopping || r->next_entry == tr->n) {
		check_drain(r);
		return;
	}
	tv_us(&tv, due - now);
	evtimer_add(r->replay, &tv);
}

/* Sends the waiting trace lines of session s until one is in flight. */
static void
replay_pending(struct run *r, struct sy_load_session *s, uint64_t now)
{
	size_t i;

	while (!s->busy && s->pending_head < s->npending) {
		i = s->pending[s->pending_head++];
		r->npending--;
		if (!should_stop(r, now))
			replay_entry(r, i, now);
	}
	if (replay_over(r))
		r->stopping = 1;
}

/* ==== Completion ==== */

/* What comes after a request of session s ended at now. */
static void
session_after(struct run *r, struct sy_load_session *s,
    struct sy_load_worker *w, uint64_t now)
{
	struct timeval tv;
	uint64_t think = 0;
	int more;

	s->busy = 0;
	more = s->turn < s->turns;
	if (more && r->o->spec.sessions && r->o->mode != SY_LOAD_REPLAY)
		think = (uint64_t)sy_load_dist_draw(&r->o->spec.think_ms,
		    &s->rng) * 1000u;
	switch (r->o->mode) {
	case SY_LOAD_CLOSED:
		if (!more || think == 0 || r->stopping) {
			worker_next(w);
			break;
		}
		tv_us(&tv, think);
		evtimer_add(w->think, &tv);
		break;
	case SY_LOAD_OPEN:
		if (!more || r->stopping) {
			sy_load_session_free(s);
			break;
		}
		s->ready_us = now + think;
		ready_push(r, s);
		break;
	case SY_LOAD_REPLAY:
		replay_pending(r, s, now);
		if (!more && !s->busy) {
			if (s->id < r->o->trace->nsessions)
				r->tsessions[s->id] = NULL;
			sy_load_session_free(s);
		}
		break;
	}
}

/* The pool's callback: req ended (answered, failed or cancelled). */
static void
req_done(struct sy_load_req *req, void *arg)
{
	struct run *r = arg;
	struct sy_load_session *s = req->session;
	struct sy_load_worker *w = req->worker;
	uint64_t now = sy_load_now();

	r->inflight--;
	if (req->rec.error == SY_LOAD_ERR_CANCELLED) {
		if (req->measured)
			r->res->cancelled++;
		if (s != NULL && (r->o->mode == SY_LOAD_OPEN ||
		    (r->o->mode == SY_LOAD_REPLAY &&
		    s->id >= r->o->trace->nsessions)))
			sy_load_session_free(s);
		req_put(r, req);
		return;
	}
	req->rec.latency_us = (uint32_t)(now - req->t0);
	if (!req->rec.usage && req->rec.stream)
		req->rec.completion_tokens = req->rec.chunks;
	if (req->rec.chunks >= 2)
		req->rec.itl_mean_us = (uint32_t)(req->itl_sum /
		    (req->rec.chunks - 1));
	if (req->measured)
		record(r, req);
	if (s != NULL && req->rec.error == SY_LOAD_OK && req->text != NULL) {
		sy_load_session_reply(s, req->text);
		req->text = NULL;
	} else if (s != NULL && req->rec.error != SY_LOAD_OK) {
		/* A replayed session goes on without the turn; others end. */
		if (r->o->mode == SY_LOAD_REPLAY)
			sy_load_session_forget(s);
		else
			s->turns = s->turn;
	}
	req_put(r, req);
	if (s != NULL)
		session_after(r, s, w, now);
	else if (r->o->mode == SY_LOAD_REPLAY && replay_over(r))
		r->stopping = 1;
	check_drain(r);
}

/* ==== Progress, stop and signals ==== */

/* Prints the progress line once a second. */
static void
progress_cb(evutil_socket_t fd, short what, void *arg)
{
	struct run *r = arg;
	uint64_t now = sy_load_now();
	double dt = (double)(now - r->last_tick) / 1e6, t;

	if (now < r->t_measure)
		fprintf(stderr, "%ssy-load  warm-up %.0fs  in flight %llu",
		    r->tty ? "\r\033[K" : "",
		    (double)(r->t_measure - now) / 1e6,
		    (unsigned long long)r->inflight);
	else {
		t = (double)(now - r->t_measure) / 1e6;
		fprintf(stderr, "%ssy-load %6.1fs  sent %llu  ok %llu  "
		    "failed %llu  dropped %llu  in flight %llu  %.1f req/s  "
		    "%.0f tok/s", r->tty ? "\r\033[K" : "", t,
		    (unsigned long long)(r->issued - r->n_dropped),
		    (unsigned long long)r->n_ok,
		    (unsigned long long)r->n_failed,
		    (unsigned long long)r->n_dropped,
		    (unsigned long long)r->inflight,
		    (double)(r->n_ok - r->last_ok) / dt,
		    (double)(r->n_tokens - r->last_tokens) / dt);
	}
	if (!r->tty)
		fputc('\n', stderr);
	fflush(stderr);
	r->last_ok = r->n_ok;
	r->last_tokens = r->n_tokens;
	r->last_tick = now;
}

/*
 * Stops issuing: cancels waiting timers; the run ends when nothing is in
 * flight.
 */
static void
stop_issuing(struct run *r)
{
	unsigned i;

	r->stopping = 1;
	for (i = 0; i < r->nworkers; i++)
		evtimer_del(r->workers[i].think);
	if (r->arrival != NULL)
		evtimer_del(r->arrival);
	if (r->replay != NULL)
		evtimer_del(r->replay);
	check_drain(r);
}

/* --duration is over. */
static void
stop_cb(evutil_socket_t fd, short what, void *arg)
{
	stop_issuing(arg);
}

/* SIGINT or SIGTERM: the first stops issuing, the second aborts. */
static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct run *r = arg;

	if (r->stopping) {
		r->aborted = 1;
		event_base_loopbreak(r->base);
		return;
	}
	if (r->tty && !r->o->quiet)
		fputc('\n', stderr);
	fprintf(stderr, "sy-load: stopping; waiting for %llu requests in "
	    "flight (interrupt again to abort)\n",
	    (unsigned long long)r->inflight);
	r->res->interrupted = 1;
	stop_issuing(r);
}

/* ==== Setup ==== */

/* Creates the run's event base, with precise timers when arrivals are timed. */
static struct event_base *
base_new(const struct sy_load_opts *o)
{
	struct event_config *cfg = event_config_new();
	struct event_base *base;

	if (cfg == NULL)
		return NULL;
	event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
	if (o->mode != SY_LOAD_CLOSED)
		event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
	base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	return base;
}

/* Creates an event or aborts (startup only). */
static struct event *
event_must(struct event_base *base, evutil_socket_t fd, short what,
    event_callback_fn cb, void *arg)
{
	struct event *ev = event_new(base, fd, what, cb, arg);

	if (ev == NULL)
		abort();
	return ev;
}

/* Counts each trace session's turns. */
static void
replay_init(struct run *r)
{
	const struct sy_load_trace *tr = r->o->trace;
	size_t i;

	r->tsessions = calloc(tr->nsessions + 1, sizeof *r->tsessions);
	r->tturns = calloc(tr->nsessions + 1, sizeof *r->tturns);
	if (r->tsessions == NULL || r->tturns == NULL)
		abort();
	for (i = 0; i < tr->n; i++)
		if (tr->entries[i].session >= 0)
			r->tturns[tr->entries[i].session]++;
	r->replay = event_must(r->base, -1, 0, replay_cb, r);
}

/* Frees everything the run holds but the results. */
static void
run_free(struct run *r)
{
	struct sy_load_req *req;
	unsigned i;
	size_t k;

	sy_load_pool_free(&r->pool);
	for (i = 0; i < r->nworkers; i++) {
		event_free(r->workers[i].think);
		sy_load_session_free(r->workers[i].session);
	}
	free(r->workers);
	for (k = 0; k < r->nready; k++)
		sy_load_session_free(r->ready[k]);
	free(r->ready);
	if (r->o->trace != NULL)
		for (k = 0; k < r->o->trace->nsessions; k++)
			sy_load_session_free(r->tsessions[k]);
	free(r->tsessions);
	free(r->tturns);
	while ((req = r->free_reqs) != NULL) {
		r->free_reqs = req->next;
		free(req->gaps);
		free(req);
	}
	if (r->arrival != NULL)
		event_free(r->arrival);
	if (r->replay != NULL)
		event_free(r->replay);
	event_free(r->progress);
	event_free(r->stop);
	event_free(r->sigint);
	event_free(r->sigterm);
	evbuffer_free(r->msg);
	sy_load_work_free(&r->work);
	event_base_free(r->base);
}

int
sy_load_run(const struct sy_load_opts *o, struct sy_load_results *res)
{
	struct run run, *r = &run;
	struct timeval tv;
	uint64_t end;
	unsigned i;

	memset(res, 0, sizeof *res);
	res->opts = o;
	memset(r, 0, sizeof *r);
	r->o = o;
	r->res = res;
	if ((r->base = base_new(o)) == NULL) {
		fprintf(stderr, "sy-load: cannot create an event base\n");
		return -1;
	}
	r->tty = isatty(STDERR_FILENO);
	r->msg = evbuffer_new();
	sy_load_work_init(&r->work, o);
	sy_load_pool_init(&r->pool, r->base, (const struct sockaddr *)&o->addr,
	    o->addrlen, o->timeout, o->mode == SY_LOAD_CLOSED ?
	    o->concurrency : o->max_connections, req_done, r);
	r->progress = event_must(r->base, -1, EV_PERSIST, progress_cb, r);
	r->stop = event_must(r->base, -1, 0, stop_cb, r);
	r->sigint = event_must(r->base, SIGINT, EV_SIGNAL | EV_PERSIST,
	    signal_cb, r);
	r->sigterm = event_must(r->base, SIGTERM, EV_SIGNAL | EV_PERSIST,
	    signal_cb, r);
	event_add(r->sigint, NULL);
	event_add(r->sigterm, NULL);

	r->t_start = sy_load_now();
	r->t_measure = r->t_start + (uint64_t)(o->warmup * 1e6);
	r->last_tick = r->t_start;
	if (o->duration > 0) {
		r->t_stop = r->t_measure + (uint64_t)(o->duration * 1e6);
		tv_us(&tv, r->t_stop - r->t_start);
		evtimer_add(r->stop, &tv);
	}
	if (!o->quiet) {
		tv_us(&tv, 1000000);
		evtimer_add(r->progress, &tv);
	}

	switch (o->mode) {
	case SY_LOAD_CLOSED:
		r->nworkers = o->concurrency;
		r->workers = calloc(r->nworkers, sizeof *r->workers);
		if (r->workers == NULL)
			abort();
		for (i = 0; i < r->nworkers; i++) {
			r->workers[i].run = r;
			r->workers[i].think = event_must(r->base, -1, 0,
			    think_cb, &r->workers[i]);
		}
		for (i = 0; i < r->nworkers; i++)
			worker_next(&r->workers[i]);
		break;
	case SY_LOAD_OPEN:
		sy_load_rng_seed(&r->arrival_rng, o->spec.seed,
		    SY_LOAD_STREAM_ARRIVAL);
		r->arrival = event_must(r->base, -1, 0, arrival_cb, r);
		event_active(r->arrival, EV_TIMEOUT, 1);
		break;
	case SY_LOAD_REPLAY:
		replay_init(r);
		event_active(r->replay, EV_TIMEOUT, 1);
		break;
	}
	check_drain(r);
	if (!r->stopping || r->inflight > 0)
		event_base_dispatch(r->base);

	end = sy_load_now();
	if (!o->quiet && r->tty)
		fputc('\n', stderr);
	res->elapsed = end > r->t_measure ?
	    (double)(end - r->t_measure) / 1e6 : 0;
	res->lag_mean_ms = r->lag_n ? r->lag_sum / (double)r->lag_n / 1e3 : 0;
	res->lag_max_ms = (double)r->lag_max / 1e3;
	run_free(r);
	res->connections = r->pool.opened;
	return 0;
}

void
sy_load_results_free(struct sy_load_results *res)
{
	free(res->recs);
	free(res->gaps);
}
