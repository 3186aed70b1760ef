/* sy-sim: one inference request: parsing, faults, and the bytes sent back. */
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>

#include "sim.h"

#define GOLDEN_A 0x9e3779b97f4a7c15ULL
#define GOLDEN_B 0xc2b2ae3d27d4eb4fULL

/* Stop sequences a request may give. */
#define MAX_STOPS 64

static void	job_closed(struct evhttp_connection *, void *);

/* Fills err with status, type and a printf-style message. */
void
sim_error_set(struct sim_error *err, int status, const char *type,
    const char *fmt, ...)
{
	va_list	ap;

	memset(err, 0, sizeof *err);
	err->status = status;
	err->type = type;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof err->message, fmt, ap);
	va_end(ap);
}

/* Takes a reference on job. */
void
sim_job_ref(struct sim_job *job)
{
	job->refs++;
}

/* Drops a reference on job, freeing it with the last one. */
void
sim_job_unref(struct sim_job *job)
{
	if (--job->refs > 0)
		return;
	if (job->timer != NULL)
		event_free(job->timer);
	if (job->tick != NULL)
		event_free(job->tick);
	if (job->watch != NULL)
		event_free(job->watch);
	while (job->nstops > 0)
		free(job->stops[--job->nstops]);
	free(job->stops);
	json_decref(job->keep);
	if (job->w_queue != NULL)
		evbuffer_free(job->w_queue);
	free(job->w_len);
	free(job->seqs);
	free(job->blocks.v);
	free(job->model);
	free(job);
}

/*
 * Sets the model of job to name (NULL: the replica's first).  Fails with a
 * 404 when the replica lists its models and name is not one of them.
 */
int
sim_job_model(struct sim_job *job, const char *name, struct sim_error *err)
{
	struct sim_replica	*r = job->r;

	if (name == NULL)
		name = sim_replica_model(r);
	else if (!sim_replica_serves(r, name)) {
		sim_error_set(err, 404, "not_found_error",
		    "The model `%.200s` does not exist.", name);
		return (-1);
	}
	free(job->model);
	job->model = sim_xstrdup(name);
	job->model_hash = sim_hash_bytes(name, strlen(name), r->seed);
	return (0);
}

/*
 * Adds stop sequence s (len bytes) to job: the answer ends where the text
 * would first contain one.  Empty ones, and more than MAX_STOPS, are
 * ignored.
 */
void
sim_job_stop(struct sim_job *job, const char *s, size_t len)
{
	char	*copy;

	if (len == 0 || job->nstops == MAX_STOPS)
		return;
	copy = sim_xmalloc(len + 1);
	memcpy(copy, s, len);
	copy[len] = '\0';
	job->stops = sim_xrealloc(job->stops, job->nstops + 1,
	    sizeof *job->stops);
	job->stops[job->nstops++] = copy;
}

/*
 * Appends the id of job: prefix, then n letters and digits, a function of
 * the seed, the replica and the request's number.
 */
void
sim_job_id(const struct sim_job *job, const char *prefix, unsigned n,
    struct evbuffer *out)
{
	static const char	 digits[] = "0123456789"
				    "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				    "abcdefghijklmnopqrstuvwxyz";
	uint64_t		 h = 0;
	char			 id[64];
	unsigned		 i;

	if (n > sizeof id)
		n = sizeof id;
	for (i = 0; i < n; i++) {
		if (i % 10 == 0)
			h = sim_mix64(job->r->seed + job->r->index * GOLDEN_B +
			    job->id * GOLDEN_A + (uint64_t)i);
		id[i] = digits[h % 62];
		h /= 62;
	}
	evbuffer_add(out, prefix, strlen(prefix));
	evbuffer_add(out, id, n);
}

/*
 * The text of token i of the answer of seq; sets *len.  With trim, the
 * text of a sequence ended by a stop sequence stops where it begins, so a
 * token may be cut or empty.
 */
const char *
sim_seq_piece(const struct sim_seq *seq, unsigned i, int trim, size_t *len)
{
	const char	*w = sim_word(seq->hash, i, len);

	if (trim && seq->stop_seq != 0 && i >= seq->cut_token)
		*len = i == seq->cut_token ? seq->cut_len : 0;
	return (w);
}

/* Appends the text of seq generated so far (trimmed: see sim_seq_piece). */
void
sim_seq_text(const struct sim_seq *seq, int trim, struct evbuffer *out)
{
	const char	*w;
	size_t		 len;
	unsigned	 i;

	for (i = 0; i < seq->produced; i++) {
		w = sim_seq_piece(seq, i, trim, &len);
		evbuffer_add(out, w, len);
	}
}

/*
 * Ends the answer of seq at the first stop sequence of job its text would
 * contain: the tokens up to the one that completes it are generated, the
 * text shown (trimmed) stops where it begins.
 */
static void
job_cut(struct sim_job *job, struct sim_seq *seq)
{
	const char	*w, *hit;
	unsigned	*ends, i, which = 0;
	size_t		 len, total = 0, best = SIZE_MAX, end;
	char		*text;

	ends = sim_xcalloc(seq->out_tokens, sizeof *ends);
	text = sim_xmalloc((size_t)seq->out_tokens * 5);
	for (i = 0; i < seq->out_tokens; i++) {
		w = sim_word(seq->hash, i, &len);
		memcpy(text + total, w, len);
		total += len;
		ends[i] = (unsigned)total;
	}
	for (i = 0; i < job->nstops; i++) {
		hit = memmem(text, total, job->stops[i], strlen(job->stops[i]));
		if (hit != NULL && (size_t)(hit - text) < best) {
			best = hit - text;
			which = i;
		}
	}
	if (best != SIZE_MAX) {
		end = best + strlen(job->stops[which]);
		for (i = 0; ends[i] < end; i++)
			;
		seq->out_tokens = i + 1;
		seq->stop = 1;
		seq->stop_seq = which + 1;
		for (i = 0; ends[i] <= best; i++)
			;
		seq->cut_token = i;
		seq->cut_len = (unsigned)(best - (i == 0 ? 0 : ends[i - 1]));
	}
	free(ends);
	free(text);
}

/*
 * Adds a sequence (one prompt or input) to job and starts tok on it; the
 * protocol feeds the prompt to tok, then calls sim_job_seq_end.
 */
struct sim_seq *
sim_job_seq_begin(struct sim_job *job, struct sim_tok *tok)
{
	struct sim_seq	*seq;
	unsigned	 block = job->r->p.block_tokens;

	if (job->nseq == job->seqs_cap) {
		job->seqs_cap = job->seqs_cap == 0 ? 1 : job->seqs_cap * 2;
		job->seqs = sim_xrealloc(job->seqs, job->seqs_cap,
		    sizeof *job->seqs);
	}
	seq = &job->seqs[job->nseq];
	memset(seq, 0, sizeof *seq);
	seq->job = job;
	seq->index = job->nseq++;
	seq->block_off = job->blocks.n;
	sim_tok_begin(tok, job->model_hash,
	    job->call == SIM_CALL_EMBEDDING ? 0 : block, &job->blocks);
	return (seq);
}

/* Ends the prompt of seq read by tok. */
void
sim_job_seq_end(struct sim_job *job, struct sim_seq *seq, struct sim_tok *tok)
{
	seq->nblocks = job->blocks.n - seq->block_off;
	seq->prompt_tokens = tok->ntokens;
	seq->hash = sim_tok_end(tok);
}

/* Prompt tokens of every sequence of job. */
unsigned
sim_job_prompt_tokens(const struct sim_job *job)
{
	unsigned	i, n = 0;

	for (i = 0; i < job->nseq; i++)
		n += job->seqs[i].prompt_tokens;
	return (n);
}

/* Prompt tokens of job found in the prefix cache. */
unsigned
sim_job_cached_tokens(const struct sim_job *job)
{
	unsigned	i, n = 0;

	for (i = 0; i < job->nseq; i++)
		n += job->seqs[i].cached_tokens;
	return (n);
}

/* Tokens generated for job so far. */
unsigned
sim_job_completion_tokens(const struct sim_job *job)
{
	unsigned	i, n = 0;

	for (i = 0; i < job->nseq; i++)
		n += job->seqs[i].produced;
	return (n);
}

/*
 * Checks the sizes of job against the replica and sets each sequence's
 * output length: max_tokens when given (finish "length"), else a length
 * drawn from the prompt, capped by max_tokens_default, or by max_tokens
 * when the protocol takes it as a cap.  A prompt longer than
 * hard_prompt_tokens ends "length" whatever its length (half of max_tokens
 * when given).  A stop sequence
 * may end it sooner.  0 or -1 with err.
 */
static int
job_prepare(struct sim_job *job, struct sim_error *err)
{
	const struct sim_params	*p = &job->r->p;
	struct sim_seq		*seq;
	unsigned		 i, drawn, cap;

	if (job->max_tokens > p->context_tokens) {
		sim_error_set(err, 400, "invalid_request_error",
		    "'max_tokens' (%u) exceeds the context size (%u tokens)",
		    job->max_tokens, p->context_tokens);
		return (-1);
	}
	for (i = 0; i < job->nseq; i++) {
		seq = &job->seqs[i];
		if (seq->prompt_tokens > p->context_tokens) {
			sim_error_set(err, 400, "exceed_context_size_error",
			    "request (%u tokens) exceeds the available context "
			    "size (%u tokens), try increasing it",
			    seq->prompt_tokens, p->context_tokens);
			err->n_prompt_tokens = seq->prompt_tokens;
			err->n_ctx = p->context_tokens;
			return (-1);
		}
		if (job->call == SIM_CALL_EMBEDDING)
			continue;
		if (job->max_tokens != 0 && !job->max_is_cap)
			seq->out_tokens = job->max_tokens;
		else {
			cap = job->max_tokens != 0 ? job->max_tokens :
			    p->max_tokens_default;
			drawn = sim_dist_draw(&p->output, seq->hash);
			seq->stop = drawn <= cap;
			seq->out_tokens = seq->stop ? drawn : cap;
		}
		/* A prompt too hard for this model: the answer runs out,
		   before the client's max_tokens when it gave one. */
		if (p->hard_prompt_tokens != 0 &&
		    seq->prompt_tokens > p->hard_prompt_tokens) {
			seq->stop = 0;
			if (job->max_tokens != 0 && seq->out_tokens > 1)
				seq->out_tokens /= 2;
		}
		if (job->nstops != 0)
			job_cut(job, seq);
	}
	return (0);
}

/*
 * Stops watching for the client and forgets the connection's close hook,
 * unless the stream's writer still has bytes for it (sim_write_unwatch
 * ends the watch then): a client gone meanwhile must still end the job.
 */
static void
job_detach(struct sim_job *job)
{
	if (job->w_req == NULL)
		sim_write_unwatch(job);
	if (job->evcon != NULL && !job->dropping && job->w_req == NULL)
		evhttp_connection_set_closecb(job->evcon, NULL, NULL);
}

/* Ends job: counts it under status, records outcome, drops its life. */
static void
job_finish(struct sim_job *job, int status, const char *outcome)
{
	struct sim_replica	*r = job->r;

	job->state = SIM_JOB_DONE;
	job_detach(job);
	if (job->timer != NULL && !job->dropping)
		evtimer_del(job->timer);
	sim_replica_count(r, job->path, status);
	sim_reqlog_outcome(r->log, job->log_seq, status, outcome);
	sim_job_unref(job);
}

/* Answers job with err (and Retry-After when retry_after is set). */
static void
job_fail(struct sim_job *job, const struct sim_error *err,
    const char *retry_after, const char *outcome)
{
	struct evhttp_request	*req = job->req;
	int			 status;

	job_detach(job);
	job->req = NULL;
	status = sim_reply_error(job->r, req, job->proto, err, retry_after);
	job_finish(job, status, outcome);
}

/* Replaces the content of buf by its first half, then frame_end. */
static void
job_mangle(struct evbuffer *buf, const char *frame_end)
{
	struct evbuffer	*half = evbuffer_new();
	size_t		 len = evbuffer_get_length(buf), n = strlen(frame_end);

	evbuffer_remove_buffer(buf, half, len > n ? (len - n) / 2 : len / 2);
	evbuffer_drain(buf, evbuffer_get_length(buf));
	evbuffer_add_buffer(buf, half);
	evbuffer_add(buf, frame_end, n);
	evbuffer_free(half);
}

/* Timer: the drop fault closes the connection now. */
static void
job_drop_now(evutil_socket_t fd, short what, void *arg)
{
	struct sim_job	*job = arg;

	if (job->evcon != NULL)
		evhttp_connection_free(job->evcon);
}

/*
 * The drop fault: sends what is pending in r->out, then closes the
 * connection without ending the answer.  The job ends now; a reference
 * stays until the connection is gone.
 */
static void
job_drop(struct sim_job *job)
{
	struct sim_replica	*r = job->r;
	const struct timeval	 now = { 0, 0 };

	r->stats.dropped++;
	sim_engine_abort(job);
	job->dropping = 1;
	sim_job_ref(job);
	evhttp_connection_set_closecb(job->evcon, job_closed, job);
	if (job->timer == NULL)
		job->timer = evtimer_new(r->base, job_drop_now, job);
	else
		evtimer_assign(job->timer, r->base, job_drop_now, job);
	if (job->w_req != NULL) {
		sim_write_send(job, r->out);
		sim_write_end(job, SIM_WEND_DROP);
	} else
		evtimer_add(job->timer, &now);
	job_finish(job, job->started ? 200 : 444, "dropped");
}

/* The midstream fault: an error event, then the end of the stream. */
static void
job_midstream(struct sim_job *job)
{
	struct sim_replica	*r = job->r;

	r->stats.midstream_errors++;
	sim_engine_abort(job);
	job->proto->stream_error(job, r->out);
	job->req = NULL;
	sim_write_send(job, r->out);
	sim_write_end(job, SIM_WEND_END);
	job_detach(job);
	job_finish(job, 200, "midstream_error");
}

/*
 * Sends the head of a streamed answer; appends its first events to r->out.
 * The socket sends each write at once (TCP_NODELAY, as uvicorn and Node
 * do): Nagle would hold a small event until the client's delayed ACK.
 */
static void
job_stream_start(struct sim_job *job)
{
	struct evkeyvalq	*h;
	int			 one = 1;
	evutil_socket_t		 fd;

	fd = bufferevent_getfd(evhttp_connection_get_bufferevent(job->evcon));
	if (fd >= 0)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
		    sizeof one);

	h = evhttp_request_get_output_headers(job->req);
	evhttp_add_header(h, "Content-Type", job->proto->stream_type);
	evhttp_add_header(h, "Cache-Control", "no-cache");
	evhttp_send_reply_start(job->req, 200, "OK");
	sim_write_begin(job, job->req);
	job->started = 1;
	job->proto->stream_head(job, job->r->out);
}

/*
 * The engine produced one more token of seq (seq->produced counts it).
 * Streams send it; the drop and midstream faults may end the job here.
 */
void
sim_job_token(struct sim_job *job, struct sim_seq *seq)
{
	struct sim_replica	*r = job->r;
	struct evbuffer		*chunk;
	int			 last;

	if (job->state != SIM_JOB_RUNNING)
		return;
	if (!job->stream) {
		job->emitted++;
		if (job->fault.drop_after >= 0 &&
		    job->emitted >= (unsigned)job->fault.drop_after)
			job_drop(job);
		return;
	}
	if (!job->started) {
		job_stream_start(job);
		if (job->fault.drop_after == 0) {
			job_drop(job);
			return;
		}
		if (job->fault.midstream_after == 0) {
			job_midstream(job);
			return;
		}
	}
	if (job->fault.malformed && job->emitted == 0) {
		chunk = evbuffer_new();
		job->proto->stream_token(job, seq, chunk);
		if (evbuffer_get_length(chunk) != 0)
			job_mangle(chunk, job->proto->frame_end);
		evbuffer_add_buffer(r->out, chunk);
		evbuffer_free(chunk);
	} else
		job->proto->stream_token(job, seq, r->out);
	job->emitted++;
	if (seq->produced >= seq->out_tokens) {
		last = job->nfinished + 1 == job->nseq;
		job->proto->stream_seq_end(job, seq, last, r->out);
	}
	if (job->fault.drop_after >= 0 &&
	    job->emitted >= (unsigned)job->fault.drop_after) {
		job_drop(job);
		return;
	}
	sim_write_send(job, r->out);
	if (job->fault.midstream_after >= 0 &&
	    job->emitted >= (unsigned)job->fault.midstream_after)
		job_midstream(job);
}

/* Counts the finish reasons of the sequences of job, answered in full. */
static void
job_count_finished(struct sim_job *job)
{
	struct sim_stats	*st = &job->r->stats;
	unsigned		 i;

	if (job->call == SIM_CALL_EMBEDDING)
		return;
	for (i = 0; i < job->nseq; i++) {
		if (job->seqs[i].stop)
			st->finished_stop++;
		else
			st->finished_length++;
	}
}

/*
 * The engine finished every sequence of job (and released its slots):
 * sends the answer, or the fault that was still pending.
 */
void
sim_job_done(struct sim_job *job)
{
	struct sim_replica	*r = job->r;
	struct evhttp_request	*req = job->req;
	int			 malformed = job->fault.malformed;

	if (job->state == SIM_JOB_DONE)
		return;
	if (job->fault.drop_after >= 0) {
		job_drop(job);
		return;
	}
	if (job->stream) {
		if (!job->started)
			job_stream_start(job);
		if (job->fault.midstream_after >= 0) {
			job_midstream(job);
			return;
		}
		job_count_finished(job);
		job->proto->stream_end(job, r->out);
		job->req = NULL;
		sim_write_send(job, r->out);
		sim_write_end(job, SIM_WEND_END);
		job_detach(job);
		job_finish(job, 200, malformed ? "malformed" : "ok");
		return;
	}
	job_count_finished(job);
	job->proto->reply(job, r->out);
	if (malformed)
		job_mangle(r->out, "");
	job_detach(job);
	job->req = NULL;
	sim_reply(req, 200, "application/json; charset=utf-8", r->out);
	job_finish(job, 200, malformed ? "malformed" : "ok");
}

/*
 * The connection of job closed: the client went away, or the drop fault
 * closed it.  A request that evhttp detached from the connection is ours
 * to free.
 */
static void
job_closed(struct evhttp_connection *evcon, void *arg)
{
	struct sim_job	*job = arg;

	sim_job_ref(job);
	sim_write_abort(job);
	if (job->req != NULL && evhttp_request_get_connection(job->req) == NULL)
		evhttp_request_free(job->req);
	job->req = NULL;
	job->evcon = NULL;
	if (job->timer != NULL)
		evtimer_del(job->timer);
	if (job->state != SIM_JOB_DONE) {
		job->r->stats.cancelled++;
		sim_engine_abort(job);
		job_finish(job, job->started ? 200 : 499, "cancelled");
	} else if (job->dropping) {
		job->dropping = 0;
		sim_job_unref(job);
	}
	sim_job_unref(job);
}

/*
 * The client's socket became readable while job waits: end of file means
 * the client is gone, so close the connection (job_closed cancels the job).
 * Anything else (a pipelined request) ends the watch.
 */
static void
job_watch(evutil_socket_t fd, short what, void *arg)
{
	struct sim_job	*job = arg;
	ssize_t		 n;
	char		 c;

	n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n > 0)
		return;
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
	    errno == EINTR)) {
		event_add(job->watch, NULL);
		return;
	}
	if (job->evcon != NULL)
		evhttp_connection_free(job->evcon);
}

/* Timer: the stall fault is over; job asks for its slots. */
static void
job_stalled(evutil_socket_t fd, short what, void *arg)
{
	sim_engine_submit(arg);
}

/*
 * Watches job's client for going away (the close hook and a read watch on
 * its socket), unless it is watched already.
 */
void
sim_job_watch(struct sim_job *job)
{
	struct bufferevent	*bev;

	if (job->watch != NULL || job->evcon == NULL)
		return;
	evhttp_connection_set_closecb(job->evcon, job_closed, job);
	bev = evhttp_connection_get_bufferevent(job->evcon);
	job->watch = event_new(job->r->base, bufferevent_getfd(bev), EV_READ,
	    job_watch, job);
	event_add(job->watch, NULL);
}

/* Sets job up to live past this callback: close hook, watch, stall. */
static void
job_start_async(struct sim_job *job)
{
	struct sim_replica	*r = job->r;
	struct timeval		 tv;

	sim_job_watch(job);
	if (job->fault.stall_us == 0) {
		sim_engine_submit(job);
		return;
	}
	job->timer = evtimer_new(r->base, job_stalled, job);
	tv.tv_sec = job->fault.stall_us / 1000000;
	tv.tv_usec = job->fault.stall_us % 1000000;
	evtimer_add(job->timer, &tv);
}

/*
 * Serves the inference request req that protocol proto routed to route on
 * replica r; log_seq is its request log entry.  Answers at once when the
 * replica runs at speed 0 and no timed fault fires; otherwise the job
 * lives on in the engine.
 */
void
sim_job_handle(struct sim_replica *r, struct evhttp_request *req,
    const struct sim_proto *proto, const struct sim_route *route,
    uint64_t log_seq)
{
	struct evbuffer		*in = evhttp_request_get_input_buffer(req);
	struct sim_job		*job;
	struct sim_error	 err;
	json_error_t		 jerr;
	json_t			*body;
	size_t			 len = evbuffer_get_length(in);
	char			 retry[16];
	int			 rc;

	job = sim_xcalloc(1, sizeof *job);
	job->r = r;
	job->proto = proto;
	job->path = route->path;
	job->route = route;
	job->call = route->call;
	job->refs = 1;
	job->req = req;
	job->evcon = evhttp_request_get_connection(req);
	job->log_seq = log_seq;
	job->id = ++r->next_id;
	job->dims = r->p.embedding_dims;
	job->t_arrive = sim_now_us();

	if (len == 0) {
		sim_error_set(&err, 400, "invalid_request_error",
		    "the request body is empty; a JSON object is expected");
		job_fail(job, &err, NULL, "error");
		return;
	}
	body = json_loadb((const char *)evbuffer_pullup(in, -1), len, 0, &jerr);
	if (body == NULL) {
		sim_error_set(&err, 400, "invalid_request_error",
		    "Invalid JSON body: %s (line %d, column %d)", jerr.text,
		    jerr.line, jerr.column);
		job_fail(job, &err, NULL, "error");
		return;
	}
	rc = proto->parse(job, body, &err);
	json_decref(body);
	if (rc != 0 || job_prepare(job, &err) != 0) {
		job_fail(job, &err, NULL, "error");
		return;
	}

	sim_faults_draw(&r->faults, &r->rng, job->stream, &job->fault);
	if (job->fault.error_status != 0) {
		r->stats.errors++;
		sim_error_set(&err, job->fault.error_status,
		    job->fault.error_status == 503 ? "unavailable_error" :
		    "server_error", "injected fault: HTTP %d",
		    job->fault.error_status);
		job_fail(job, &err, NULL, "error");
		return;
	}
	if (job->fault.rate_limited) {
		r->stats.rate_limited++;
		sim_error_set(&err, 429, "rate_limit_error", "rate limit "
		    "reached, retry after %u s", r->faults.retry_after);
		snprintf(retry, sizeof retry, "%u", r->faults.retry_after);
		job_fail(job, &err, retry, "rate_limited");
		return;
	}
	if (job->fault.stall_us != 0)
		r->stats.stalled++;
	if (job->fault.slow_us != 0)
		r->stats.slowed++;
	if (job->fault.malformed)
		r->stats.malformed++;

	sim_job_ref(job);
	if (r->p.speed == 0 && job->fault.stall_us == 0 &&
	    job->fault.slow_us == 0)
		sim_engine_run_now(job);
	else
		job_start_async(job);
	sim_job_unref(job);
}
