/* sy-sim: the performance model: slots, admission queue, prefill, decode. */
#include <stdlib.h>

#include <event2/event.h>

#include "sim.h"

/*
 * A replica has p.slots sequence slots.  A job asks for one slot per
 * sequence (an embeddings call for one) and waits in a FIFO until they are
 * free.  Its sequences then queue for the prefill engine, which serves one
 * at a time for prefill_us_per_token per uncached prompt token, and join
 * the decode batch: each decode step lasts decode_base_us +
 * decode_per_seq_us * batch and gives every sequence in it one token.  An
 * embeddings call holds its slot batch_base_us + batch_per_input_us * n.
 * Every time is multiplied by p.speed.
 */

static void	engine_admit(struct sim_replica *);
static void	engine_prefill_next(struct sim_replica *);
static void	engine_step_start(struct sim_replica *);

/* us microseconds of model time as real time for replica r. */
static uint64_t
engine_scaled(const struct sim_replica *r, double us)
{
	return ((uint64_t)(us * r->p.speed + 0.5));
}

/* Starts timer ev to fire in us microseconds. */
static void
engine_timer(struct event *ev, uint64_t us)
{
	struct timeval	tv;

	tv.tv_sec = us / 1000000;
	tv.tv_usec = us % 1000000;
	evtimer_add(ev, &tv);
}

/* Slots job needs. */
static unsigned
engine_slots(const struct sim_job *job)
{
	return (job->call == SIM_CALL_EMBEDDING ? 1 : job->nseq);
}

/* Looks the prompt of seq up in the prefix cache; sets its cached tokens. */
static void
engine_cache(struct sim_replica *r, struct sim_seq *seq)
{
	struct sim_job	*job = seq->job;
	unsigned	 hits, block = r->p.block_tokens, limit;

	hits = sim_cache_use(r->cache, job->blocks.v + seq->block_off,
	    seq->nblocks);
	/* The block holding the last prompt token is always computed. */
	limit = seq->prompt_tokens == 0 ? 0 :
	    (seq->prompt_tokens - 1) / block * block;
	seq->cached_tokens = hits * block > limit ? limit : hits * block;
	r->stats.prompt_tokens += seq->prompt_tokens;
	r->stats.cache_queries += seq->prompt_tokens;
	r->stats.cached_tokens += seq->cached_tokens;
}

/* Gives job its slots and counts it as running. */
static void
engine_take(struct sim_job *job)
{
	struct sim_engine	*e = &job->r->engine;

	job->state = SIM_JOB_RUNNING;
	job->t_admit = sim_now_us();
	e->busy += engine_slots(job);
	e->running++;
	if (e->running > job->r->stats.max_running)
		job->r->stats.max_running = e->running;
}

/* The engine is done with job: it stops running and sends its answer. */
static void
engine_job_end(struct sim_job *job)
{
	struct sim_replica	*r = job->r;

	r->engine.running--;
	job->state = SIM_JOB_REPLYING;
	if (job->tick != NULL)
		evtimer_del(job->tick);
	sim_job_done(job);
	engine_admit(r);
}

/* Timer: the embeddings call of job is computed. */
static void
engine_embedded(evutil_socket_t fd, short what, void *arg)
{
	struct sim_job	*job = arg;

	job->r->engine.busy--;
	engine_job_end(job);
}

/* seq has all its tokens: frees its slot, and ends its job with the last. */
static void
engine_seq_done(struct sim_replica *r, struct sim_seq *seq)
{
	struct sim_engine	*e = &r->engine;
	struct sim_job		*job = seq->job;

	if (seq->state == SIM_SEQ_DECODE) {
		TAILQ_REMOVE(&e->decode, seq, link);
		e->ndecode--;
	}
	seq->state = SIM_SEQ_DONE;
	seq->in_step = 0;
	e->busy--;
	e->kv_tokens -= seq->prompt_tokens + seq->produced;
	if (++job->nfinished == job->nseq)
		engine_job_end(job);
	else
		engine_admit(r);
}

/* One more token for seq; hands it to its job. */
static void
engine_produce(struct sim_replica *r, struct sim_seq *seq)
{
	struct sim_job	*job = seq->job;

	seq->produced++;
	r->engine.kv_tokens++;
	r->stats.completion_tokens++;
	sim_job_token(job, seq);
	if (job->state != SIM_JOB_RUNNING)
		return;
	if (seq->produced >= seq->out_tokens)
		engine_seq_done(r, seq);
}

/* Timer: one slow_stream gap of job is over; its paced sequences step. */
static void
engine_slow_tick(evutil_socket_t fd, short what, void *arg)
{
	struct sim_job	*job = arg;
	unsigned	 i;
	int		 more = 0;

	sim_job_ref(job);
	for (i = 0; i < job->nseq && job->state == SIM_JOB_RUNNING; i++) {
		if (job->seqs[i].state == SIM_SEQ_SOLO)
			engine_produce(job->r, &job->seqs[i]);
	}
	for (i = 0; i < job->nseq && job->state == SIM_JOB_RUNNING; i++)
		more |= job->seqs[i].state == SIM_SEQ_SOLO;
	if (more)
		engine_timer(job->tick, job->fault.slow_us);
	sim_job_unref(job);
}

/* seq finished its prefill: it joins the decode batch (or its own pace). */
static void
engine_decode_join(struct sim_replica *r, struct sim_seq *seq)
{
	struct sim_engine	*e = &r->engine;
	struct sim_job		*job = seq->job;

	job->t_prefilled = sim_now_us();
	e->kv_tokens += seq->prompt_tokens;
	if (job->fault.slow_us != 0) {
		seq->state = SIM_SEQ_SOLO;
		if (job->tick == NULL)
			job->tick = evtimer_new(r->base, engine_slow_tick, job);
		if (!evtimer_pending(job->tick, NULL))
			engine_timer(job->tick, job->fault.slow_us);
		return;
	}
	seq->state = SIM_SEQ_DECODE;
	TAILQ_INSERT_TAIL(&e->decode, seq, link);
	e->ndecode++;
	if (!e->stepping)
		engine_step_start(r);
}

/* Timer: the prefill under way is over. */
static void
engine_prefill_done(evutil_socket_t fd, short what, void *arg)
{
	struct sim_replica	*r = arg;
	struct sim_seq		*seq = r->engine.prefilling;

	r->engine.prefilling = NULL;
	engine_decode_join(r, seq);
	engine_prefill_next(r);
}

/* Starts the prefill of the next queued sequence, if the engine is free. */
static void
engine_prefill_next(struct sim_replica *r)
{
	struct sim_engine	*e = &r->engine;
	struct sim_seq		*seq;

	if (e->closing || e->prefilling != NULL ||
	    (seq = TAILQ_FIRST(&e->prefillq)) == NULL)
		return;
	TAILQ_REMOVE(&e->prefillq, seq, link);
	seq->state = SIM_SEQ_PREFILL;
	e->prefilling = seq;
	engine_cache(r, seq);
	engine_timer(e->prefill_ev, engine_scaled(r, r->p.prefill_us_per_token *
	    (seq->prompt_tokens - seq->cached_tokens)));
}

/* Starts a decode step over the sequences now in the batch. */
static void
engine_step_start(struct sim_replica *r)
{
	struct sim_engine	*e = &r->engine;
	struct sim_seq		*seq;

	if (e->closing || e->ndecode == 0)
		return;
	TAILQ_FOREACH(seq, &e->decode, link)
		seq->in_step = 1;
	e->stepping = 1;
	r->stats.decode_steps++;
	engine_timer(e->step_ev, engine_scaled(r, r->p.decode_base_us +
	    r->p.decode_per_seq_us * e->ndecode));
}

/* Timer: a decode step is over; every sequence that was in it steps. */
static void
engine_step_done(evutil_socket_t fd, short what, void *arg)
{
	struct sim_replica	*r = arg;
	struct sim_engine	*e = &r->engine;
	struct sim_seq		*seq;
	unsigned		 i, n = 0;

	e->stepping = 0;
	if (e->stepv_cap < e->ndecode) {
		e->stepv_cap = e->ndecode * 2;
		e->stepv = sim_xrealloc(e->stepv, e->stepv_cap,
		    sizeof *e->stepv);
	}
	TAILQ_FOREACH(seq, &e->decode, link) {
		if (!seq->in_step)
			continue;
		e->stepv[n++] = seq;
		sim_job_ref(seq->job);
	}
	for (i = 0; i < n; i++) {
		seq = e->stepv[i];
		if (seq->state == SIM_SEQ_DECODE &&
		    seq->job->state == SIM_JOB_RUNNING) {
			seq->in_step = 0;
			engine_produce(r, seq);
		}
	}
	for (i = 0; i < n; i++)
		sim_job_unref(e->stepv[i]->job);
	if (!e->stepping)
		engine_step_start(r);
}

/* Admits job: embeddings start their timer, sequences queue for prefill. */
static void
engine_begin(struct sim_job *job)
{
	struct sim_replica	*r = job->r;
	struct sim_engine	*e = &r->engine;
	unsigned		 i;

	engine_take(job);
	if (job->call == SIM_CALL_EMBEDDING) {
		r->stats.prompt_tokens += sim_job_prompt_tokens(job);
		r->stats.embedding_inputs += job->nseq;
		if (job->tick == NULL)
			job->tick = evtimer_new(r->base, engine_embedded, job);
		engine_timer(job->tick, engine_scaled(r, r->p.batch_base_us +
		    r->p.batch_per_input_us * job->nseq));
		return;
	}
	for (i = 0; i < job->nseq; i++) {
		job->seqs[i].state = SIM_SEQ_QUEUED;
		TAILQ_INSERT_TAIL(&e->prefillq, &job->seqs[i], link);
	}
	engine_prefill_next(r);
}

/* Admits queued jobs, in order, while their slots are free. */
static void
engine_admit(struct sim_replica *r)
{
	struct sim_engine	*e = &r->engine;
	struct sim_job		*job;

	while (!e->closing && (job = TAILQ_FIRST(&e->waitq)) != NULL) {
		if (e->busy != 0 && e->busy + engine_slots(job) > r->p.slots)
			break;
		TAILQ_REMOVE(&e->waitq, job, link);
		e->waiting--;
		engine_begin(job);
	}
}

/* Queues job for its slots. */
void
sim_engine_submit(struct sim_job *job)
{
	struct sim_engine	*e = &job->r->engine;

	job->state = SIM_JOB_WAITING;
	TAILQ_INSERT_TAIL(&e->waitq, job, link);
	e->waiting++;
	engine_admit(job->r);
}

/*
 * Runs job to its end now, without timers (speed 0): every sequence still
 * meets the prefix cache, and tokens go out through the job as usual.
 */
void
sim_engine_run_now(struct sim_job *job)
{
	struct sim_replica	*r = job->r;
	struct sim_seq		*seq;
	unsigned		 i;

	engine_take(job);
	if (job->call == SIM_CALL_EMBEDDING) {
		r->stats.prompt_tokens += sim_job_prompt_tokens(job);
		r->stats.embedding_inputs += job->nseq;
		r->engine.busy--;
		engine_job_end(job);
		return;
	}
	job->t_prefilled = job->t_admit;
	for (i = 0; i < job->nseq && job->state == SIM_JOB_RUNNING; i++) {
		seq = &job->seqs[i];
		engine_cache(r, seq);
		r->engine.kv_tokens += seq->prompt_tokens;
		seq->state = SIM_SEQ_SOLO;
		while (job->state == SIM_JOB_RUNNING &&
		    seq->state != SIM_SEQ_DONE)
			engine_produce(r, seq);
	}
}

/*
 * Takes job out of the model wherever it is (a cancel or a fault ended
 * it): queues, prefill, batch; frees its slots.  No-op once it ran out.
 */
void
sim_engine_abort(struct sim_job *job)
{
	struct sim_replica	*r = job->r;
	struct sim_engine	*e = &r->engine;
	struct sim_seq		*seq;
	unsigned		 i;
	int			 restart = 0;

	if (job->state == SIM_JOB_WAITING) {
		TAILQ_REMOVE(&e->waitq, job, link);
		e->waiting--;
		job->state = SIM_JOB_NEW;
		return;
	}
	if (job->state != SIM_JOB_RUNNING)
		return;
	if (job->call == SIM_CALL_EMBEDDING)
		e->busy--;
	for (i = 0; i < job->nseq && job->call != SIM_CALL_EMBEDDING; i++) {
		seq = &job->seqs[i];
		switch (seq->state) {
		case SIM_SEQ_DONE:
			continue;
		case SIM_SEQ_QUEUED:
			TAILQ_REMOVE(&e->prefillq, seq, link);
			break;
		case SIM_SEQ_PREFILL:
			evtimer_del(e->prefill_ev);
			e->prefilling = NULL;
			restart = 1;
			break;
		case SIM_SEQ_DECODE:
			TAILQ_REMOVE(&e->decode, seq, link);
			e->ndecode--;
			/* FALLTHROUGH */
		case SIM_SEQ_SOLO:
			e->kv_tokens -= seq->prompt_tokens + seq->produced;
			break;
		case SIM_SEQ_NEW:
			break;
		}
		seq->state = SIM_SEQ_DONE;
		seq->in_step = 0;
		e->busy--;
	}
	if (job->tick != NULL)
		evtimer_del(job->tick);
	e->running--;
	job->state = SIM_JOB_REPLYING;
	if (restart)
		engine_prefill_next(r);
	engine_admit(r);
}

/* Sets up the model of replica r: empty queues, idle engines. */
void
sim_engine_init(struct sim_replica *r)
{
	struct sim_engine	*e = &r->engine;

	TAILQ_INIT(&e->waitq);
	TAILQ_INIT(&e->prefillq);
	TAILQ_INIT(&e->decode);
	e->prefill_ev = evtimer_new(r->base, engine_prefill_done, r);
	e->step_ev = evtimer_new(r->base, engine_step_done, r);
}

/* Frees the model of r; its jobs must be gone. */
void
sim_engine_free(struct sim_replica *r)
{
	struct sim_engine	*e = &r->engine;

	event_free(e->prefill_ev);
	event_free(e->step_ev);
	free(e->stepv);
}
