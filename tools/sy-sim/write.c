/*
 * sy-sim: how a stream reaches the socket.  Every stream write goes through
 * a queue of pieces; one piece is written at a time, and the next waits
 * until the last has left for the socket.  The replica's write pattern
 * decides the pieces: one per event (per_event), whatever was ready at
 * once (coalesced), or events cut at seeded byte boundaries (split).
 */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include "sim.h"

const char *const sim_write_names[] = { "per_event", "coalesced", "split",
    NULL };

/* Appends a piece of len bytes of src to the queue of job. */
static void
wq_push(struct sim_job *job, struct evbuffer *src, size_t len)
{
	if (len == 0)
		return;
	if (job->w_n == job->w_cap) {
		job->w_cap = job->w_cap ? 2 * job->w_cap : 16;
		job->w_len = sim_xrealloc(job->w_len, job->w_cap,
		    sizeof *job->w_len);
	}
	job->w_len[job->w_n++] = len;
	evbuffer_remove_buffer(src, job->w_queue, len);
}

/* Whether event ev of len bytes holds s at or after from; its offset. */
static long
find(const unsigned char *ev, size_t len, size_t from, const char *s)
{
	size_t	n = strlen(s), i;

	for (i = from; i + n <= len; i++)
		if (memcmp(ev + i, s, n) == 0)
			return ((long)i);
	return (-1);
}

/*
 * Cuts one event of len bytes at b into pieces, at places a parser must
 * not trip on: between "data:" and its payload, inside the first JSON
 * string, inside a UTF-8 character, between \r and \n, and one seeded
 * place.  Each candidate is taken with probability 1/2; the event's end is
 * one too, else the event's tail joins the next event.
 */
static void
split_event(struct sim_job *job, const unsigned char *b, size_t len,
    size_t *cuts, unsigned *ncuts)
{
	size_t	cand[8];
	unsigned n = 0, i, j;
	long	at;
	size_t	c, t;

	if ((at = find(b, len, 0, "data:")) >= 0)
		cand[n++] = (size_t)at + 5;
	if ((at = find(b, len, 0, "\"")) >= 0)
		cand[n++] = (size_t)at + 2;
	for (c = 0; c < len; c++)
		if ((b[c] & 0xc0) == 0x80) {
			cand[n++] = c;
			break;
		}
	if ((at = find(b, len, 0, "\r\n")) >= 0)
		cand[n++] = (size_t)at + 1;
	if (len > 1)
		cand[n++] = 1 + (size_t)(sim_rng_double(&job->w_rng) *
		    (double)(len - 1));
	/* Sorted, unique, inside the event. */
	for (i = 1; i < n; i++)
		for (j = i; j > 0 && cand[j - 1] > cand[j]; j--) {
			t = cand[j];
			cand[j] = cand[j - 1];
			cand[j - 1] = t;
		}
	for (i = 0; i < n; i++) {
		if (cand[i] == 0 || cand[i] >= len ||
		    (i > 0 && cand[i] == cand[i - 1]))
			continue;
		if (sim_rng_double(&job->w_rng) < 0.5)
			cuts[(*ncuts)++] = cand[i];
	}
	if (sim_rng_double(&job->w_rng) < 0.5)
		cuts[(*ncuts)++] = len;
}

/* Rewrites every line end of out as \r\n. */
static void
crlf(struct evbuffer *out)
{
	struct evbuffer	*tmp = evbuffer_new();
	size_t		 len = evbuffer_get_length(out), i, from = 0;
	const char	*b = (const char *)evbuffer_pullup(out, -1);

	for (i = 0; i < len; i++)
		if (b[i] == '\n' && (i == 0 || b[i - 1] != '\r')) {
			evbuffer_add(tmp, b + from, i - from);
			evbuffer_add(tmp, "\r\n", 2);
			from = i + 1;
		}
	evbuffer_add(tmp, b + from, len - from);
	evbuffer_drain(out, len);
	evbuffer_add_buffer(out, tmp);
	evbuffer_free(tmp);
}

/* Moves the events in out to the queue of job as its pattern says. */
static void
wq_fill(struct sim_job *job, struct evbuffer *out)
{
	const char	*fe = job->proto->frame_end;
	struct evbuffer_ptr p;
	size_t		 len, total, off, cuts[8], prev;
	unsigned	 ncuts, i;
	unsigned char	*b;

	switch (job->r->p.write) {
	case SIM_WRITE_COALESCED:
		len = evbuffer_get_length(out);
		if (job->w_n > 0 && !(job->w_busy && job->w_n == 1)) {
			/* Join the last piece that is not being written. */
			job->w_len[job->w_n - 1] += len;
			evbuffer_remove_buffer(out, job->w_queue, len);
		} else
			wq_push(job, out, len);
		return;
	case SIM_WRITE_PER_EVENT:
		while (evbuffer_get_length(out) > 0) {
			p = evbuffer_search(out, fe, strlen(fe), NULL);
			len = p.pos < 0 ? evbuffer_get_length(out) :
			    (size_t)p.pos + strlen(fe);
			wq_push(job, out, len);
		}
		return;
	default:
		break;
	}
	/*
	 * split: line ends become \r\n, then each event is cut; the last
	 * event of out always ends a piece, others may join the next.
	 */
	crlf(out);
	total = evbuffer_get_length(out);
	b = sim_xmalloc(total + 1);
	evbuffer_copyout(out, b, total);
	prev = 0;
	for (off = 0; off < total; off += len) {
		len = total - off;
		for (i = 0; off + i + 2 * strlen(fe) <= total; i++)
			if (memcmp(b + off + i, "\r\n", 2) == 0 &&
			    (strlen(fe) == 1 ||
			    memcmp(b + off + i + 2, "\r\n", 2) == 0)) {
				len = i + 2 * strlen(fe);
				break;
			}
		ncuts = 0;
		split_event(job, b + off, len, cuts, &ncuts);
		for (i = 0; i < ncuts; i++)
			cuts[i] += off;
		if (off + len == total && (ncuts == 0 ||
		    cuts[ncuts - 1] != total))
			cuts[ncuts++] = total;
		for (i = 0; i < ncuts; i++) {
			wq_push(job, out, cuts[i] - prev);
			prev = cuts[i];
		}
	}
	free(b);
}

static void	wq_pump(struct sim_job *);

/* The last piece left for the socket: write the next. */
static void
wq_written(struct evhttp_connection *evcon, void *arg)
{
	struct sim_job	*job = arg;

	job->w_busy = 0;
	wq_pump(job);
}

/*
 * Writes the next piece of job's queue, or, with the queue empty, ends
 * the answer as sim_write_end asked and lets the job go.
 */
static void
wq_pump(struct sim_job *job)
{
	struct evbuffer		*piece;
	const struct timeval	 now = { 0, 0 };

	if (job->w_busy || job->w_req == NULL)
		return;
	if (job->w_head < job->w_n) {
		piece = evbuffer_new();
		evbuffer_remove_buffer(job->w_queue, piece,
		    job->w_len[job->w_head++]);
		job->w_busy = 1;
		evhttp_send_reply_chunk_with_cb(job->w_req, piece,
		    wq_written, job);
		evbuffer_free(piece);
		return;
	}
	job->w_head = job->w_n = 0;
	if (job->w_end == SIM_WEND_NONE)
		return;
	sim_write_unwatch(job);
	if (job->w_end == SIM_WEND_DROP)
		evtimer_add(job->timer, &now);
	else {
		if (job->evcon != NULL && !job->dropping)
			evhttp_connection_set_closecb(job->evcon, NULL, NULL);
		evhttp_send_reply_end(job->w_req);
	}
	job->w_req = NULL;
	job->w_end = SIM_WEND_NONE;
	sim_job_unref(job);
}

/*
 * Starts writing the stream of job on req, whose head was sent.  The
 * writer holds a reference on job until sim_write_end's end is done.
 */
void
sim_write_begin(struct sim_job *job, struct evhttp_request *req)
{
	job->w_req = req;
	job->w_queue = evbuffer_new();
	job->w_rng = sim_mix64(job->r->seed ^ (job->id * 0x9e3779b97f4a7c15ULL)
	    ^ (uint64_t)job->r->index << 48);
	sim_job_ref(job);
	sim_job_watch(job);
}

/* Queues the stream bytes in out (emptied) for job's socket. */
void
sim_write_send(struct sim_job *job, struct evbuffer *out)
{
	if (job->w_req == NULL) {
		evbuffer_drain(out, evbuffer_get_length(out));
		return;
	}
	wq_fill(job, out);
	wq_pump(job);
}

/*
 * Ends job's stream once its queue is written: SIM_WEND_END ends the
 * answer, SIM_WEND_DROP fires job->timer (which closes the connection).
 */
void
sim_write_end(struct sim_job *job, enum sim_wend how)
{
	if (job->w_req == NULL)
		return;
	job->w_end = how;
	wq_pump(job);
}

/* Stops watching job's client socket for its going away. */
void
sim_write_unwatch(struct sim_job *job)
{
	if (job->watch != NULL) {
		event_free(job->watch);
		job->watch = NULL;
	}
}

/* The connection of job is gone: forgets the queue and the request. */
void
sim_write_abort(struct sim_job *job)
{
	sim_write_unwatch(job);
	if (job->w_req == NULL)
		return;
	/* A request evhttp detached from its failed connection is ours. */
	if (evhttp_request_get_connection(job->w_req) == NULL) {
		if (job->req == job->w_req)
			job->req = NULL;
		evhttp_request_free(job->w_req);
	}
	job->w_req = NULL;
	job->w_busy = 0;
	job->w_head = job->w_n = 0;
	evbuffer_drain(job->w_queue, evbuffer_get_length(job->w_queue));
	job->w_end = SIM_WEND_NONE;
	sim_job_unref(job);
}
