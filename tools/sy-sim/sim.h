/* sy-sim: declarations shared by the simulated inference fleet's modules. */
#ifndef SIM_H
#define SIM_H

#include <sys/queue.h>

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct event;
struct event_base;
struct evbuffer;
struct evhttp;
struct evhttp_connection;
struct evhttp_request;

#define SIM_DEFAULT_MODEL "sim-model"
#define SIM_FINGERPRINT "sy-sim"

/* ==== Settings ==== */

enum sim_dist_kind { SIM_DIST_FIXED, SIM_DIST_UNIFORM };

/* A distribution of output lengths in tokens: fixed:N or uniform:LO:HI. */
struct sim_dist {
	enum sim_dist_kind kind;
	unsigned lo;
	unsigned hi;
};

/*
 * Faults of one replica.  Every rate is a probability in [0, 1] drawn per
 * inference request; a fault with a parameter (stall_ms, slow_stream_ms,
 * drop_after_tokens) is off until its parameter is set, and its rate then
 * defaults to 1.
 */
struct sim_faults {
	double error_rate;		/* answer error_status at once */
	int error_status;
	double rate_limit_rate;		/* answer 429 with Retry-After */
	unsigned retry_after;		/* seconds */
	unsigned stall_ms;		/* wait before admission */
	double stall_rate;
	unsigned slow_stream_ms;	/* gap between two tokens */
	double slow_stream_rate;
	int drop_after_tokens;		/* close the connection; -1: off */
	double drop_rate;
	double malformed_rate;		/* cut a body or first event in half */
	double midstream_error_rate;	/* streams: error event, no [DONE] */
	unsigned midstream_error_after_tokens;
	int unhealthy;			/* /health answers 503 */
};

/* What the faults decided for one request. */
struct sim_fault_pick {
	int error_status;		/* 0: none */
	int rate_limited;
	uint64_t stall_us;
	uint64_t slow_us;
	int drop_after;			/* -1: none */
	int malformed;
	int midstream_after;		/* -1: none */
};

/*
 * How a replica writes a stream: each event its own write, flushed before
 * the next (as vLLM, llama.cpp and most servers do); several events in one
 * write; or events cut at seeded byte boundaries, each piece its own write.
 */
enum sim_write { SIM_WRITE_PER_EVENT, SIM_WRITE_COALESCED, SIM_WRITE_SPLIT };

/* Which server the OpenAI protocol answers as (proto_openai.c). */
enum sim_dialect {
	SIM_DIALECT_SIM,		/* sy-sim's own: the plainest */
	SIM_DIALECT_OPENAI,		/* api.openai.com */
	SIM_DIALECT_VLLM,
	SIM_DIALECT_LLAMACPP,		/* llama.cpp's llama-server */
	SIM_DIALECT_SGLANG
};

extern const char *const sim_write_names[];
extern const char *const sim_dialect_names[];

/* Everything that describes one replica. */
struct sim_params {
	unsigned port;
	char **models;			/* owned; none: any model is served */
	unsigned nmodels;
	unsigned slots;
	double prefill_us_per_token;
	double decode_base_us;
	double decode_per_seq_us;
	double batch_base_us;
	double batch_per_input_us;
	unsigned cache_tokens;
	unsigned block_tokens;
	unsigned max_tokens_default;
	unsigned context_tokens;
	unsigned hard_prompt_tokens;	/* longer prompts end "length"; 0: off */
	unsigned embedding_dims;
	unsigned classes;		/* scores of a KServe classifier */
	struct sim_dist output;
	double speed;			/* multiplies every modelled time */
	double cost_per_hour;
	unsigned log_requests;
	int write;			/* enum sim_write */
	int dialect;			/* enum sim_dialect */
	struct sim_faults faults;
};

/* The whole fleet as the command line and config file describe it. */
struct sim_fleet {
	char *host;
	uint64_t seed;
	int quiet;
	struct sim_params *replicas;
	unsigned nreplicas;
};

/* config.c */
void	 sim_params_default(struct sim_params *);
void	 sim_params_copy(struct sim_params *, const struct sim_params *);
void	 sim_params_clear(struct sim_params *);
json_t	*sim_params_json(const struct sim_params *);
int	 sim_config_args(int, char **, struct sim_fleet *, char **);
void	 sim_fleet_clear(struct sim_fleet *);

/* faults.c */
void	 sim_faults_default(struct sim_faults *);
int	 sim_faults_update(struct sim_faults *, const json_t *, char **);
json_t	*sim_faults_json(const struct sim_faults *);
void	 sim_faults_draw(const struct sim_faults *, uint64_t *, int,
	     struct sim_fault_pick *);

/* ==== Small utilities (util.c) ==== */

uint64_t sim_now_us(void);
double	 sim_wall(void);
uint64_t sim_mix64(uint64_t);
double	 sim_rng_double(uint64_t *);
uint64_t sim_hash_bytes(const void *, size_t, uint64_t);
void	 sim_json_escape(struct evbuffer *, const char *, size_t);
void	 sim_put_uint(struct evbuffer *, uint64_t);
void	 sim_put_fixed3(struct evbuffer *, double);
json_t	*sim_json_text(const char *, size_t);
void	*sim_xmalloc(size_t);
void	*sim_xcalloc(size_t, size_t);
void	*sim_xrealloc(void *, size_t, size_t);
char	*sim_xstrdup(const char *);
char	*sim_printf(const char *, ...) __attribute__((format(printf, 1, 2)));

/* ==== Tokenizer and generated text (tokenizer.c) ==== */

/* Chained hashes of the full blocks of a prompt, grown as it is read. */
struct sim_blocks {
	uint64_t *v;
	unsigned n;
	unsigned cap;
};

/* Reads one prompt token by token. */
struct sim_tok {
	unsigned block;			/* tokens per block; 0: no blocks */
	unsigned ntokens;
	unsigned in_block;
	uint64_t chain;			/* hash of the prefix, whole blocks */
	uint64_t acc;			/* hash of the current block so far */
	uint64_t all;			/* hash of every token so far */
	struct sim_blocks *out;
};

void	 sim_tok_begin(struct sim_tok *, uint64_t, unsigned,
	     struct sim_blocks *);
void	 sim_tok_add(struct sim_tok *, uint64_t);
void	 sim_tok_text(struct sim_tok *, const char *, size_t);
void	 sim_tok_id(struct sim_tok *, long long);
void	 sim_tok_role(struct sim_tok *, const char *, size_t);
void	 sim_tok_part(struct sim_tok *, const char *, size_t);
int	 sim_tok_piece(const char *, size_t, size_t *, size_t *, size_t *);
unsigned sim_token_id(const char *, size_t);
uint64_t sim_tok_end(struct sim_tok *);
const char *sim_word(uint64_t, unsigned, size_t *);
unsigned sim_dist_draw(const struct sim_dist *, uint64_t);
void	 sim_embedding(uint64_t, unsigned, float *);

/* ==== Prefix cache (cache.c) ==== */

struct sim_cache;

struct sim_cache *sim_cache_new(unsigned);
void	 sim_cache_free(struct sim_cache *);
unsigned sim_cache_use(struct sim_cache *, const uint64_t *, unsigned);
void	 sim_cache_clear(struct sim_cache *);
unsigned sim_cache_blocks(const struct sim_cache *);

/* ==== Request log (reqlog.c) ==== */

struct sim_reqlog;

struct sim_reqlog *sim_reqlog_new(unsigned);
void	 sim_reqlog_free(struct sim_reqlog *);
uint64_t sim_reqlog_add(struct sim_reqlog *, struct evhttp_request *);
void	 sim_reqlog_outcome(struct sim_reqlog *, uint64_t, int, const char *);
json_t	*sim_reqlog_json(const struct sim_reqlog *, unsigned);
void	 sim_reqlog_clear(struct sim_reqlog *);

/* ==== Wire protocols ==== */

/* What a request asks for, once its protocol has routed it. */
enum sim_call {
	SIM_CALL_NONE,
	SIM_CALL_CHAT,
	SIM_CALL_COMPLETION,
	SIM_CALL_EMBEDDING,
	SIM_CALL_MODELS,
	SIM_CALL_HEALTH,		/* answers 503 when unhealthy */
	SIM_CALL_INFO
};

/*
 * One path a protocol serves.  A segment written {name} in path matches
 * any one non-empty segment (KServe's model names).
 */
struct sim_route {
	const char *path;
	int method;			/* enum evhttp_cmd_type */
	enum sim_call call;
	int arg;			/* the protocol's own (TGI: streams) */
};

/* An error to send in the client's protocol. */
struct sim_error {
	int status;
	const char *type;
	char message[256];
	unsigned n_prompt_tokens;	/* exceed_context_size_error only */
	unsigned n_ctx;
};

struct sim_job;
struct sim_seq;
struct sim_replica;

/*
 * A wire protocol: how requests are read and answers written.  The core
 * owns timing, faults and the connection; a protocol only turns JSON into
 * a job and a job into bytes.  Every render function appends to out.
 */
struct sim_proto {
	const char *name;
	const struct sim_route *routes;		/* ends with a NULL path */
	const char *stream_type;		/* Content-Type of streams */
	const char *frame_end;			/* ends one stream event */

	/* Fills job from body; 0, or -1 with err set. */
	int	(*parse)(struct sim_job *, json_t *, struct sim_error *);
	/* Appends the body of err; returns the HTTP status to send. */
	int	(*error)(struct evbuffer *, const struct sim_error *);
	/*
	 * Answers a call without a job (models, health, info) on path:
	 * 0 with the body appended, or -1 with err set.
	 */
	int	(*info)(struct sim_replica *, const struct sim_route *,
		    const char *, struct evbuffer *, struct sim_error *);
	void	(*reply)(struct sim_job *, struct evbuffer *);
	/* Streams only; NULL for a protocol whose parse never sets stream. */
	void	(*stream_head)(struct sim_job *, struct evbuffer *);
	void	(*stream_token)(struct sim_job *, struct sim_seq *,
		    struct evbuffer *);
	void	(*stream_seq_end)(struct sim_job *, struct sim_seq *, int,
		    struct evbuffer *);
	void	(*stream_end)(struct sim_job *, struct evbuffer *);
	void	(*stream_error)(struct sim_job *, struct evbuffer *);
};

extern const struct sim_proto sim_proto_openai;
extern const struct sim_proto sim_proto_anthropic;
extern const struct sim_proto sim_proto_tgi;
extern const struct sim_proto sim_proto_ollama;
extern const struct sim_proto sim_proto_kserve;
extern const struct sim_proto sim_proto_responses;

/* ==== Jobs (job.c) ==== */

enum sim_seq_state {
	SIM_SEQ_NEW,			/* in no queue yet */
	SIM_SEQ_QUEUED,			/* waits for the prefill engine */
	SIM_SEQ_PREFILL,
	SIM_SEQ_DECODE,			/* in the decode batch */
	SIM_SEQ_SOLO,			/* on its own clock: slow or instant */
	SIM_SEQ_DONE
};

/* One sequence: a prompt and the answer generated for it. */
struct sim_seq {
	struct sim_job *job;
	unsigned index;			/* choice or input index */
	enum sim_seq_state state;
	unsigned block_off;		/* its blocks in job->blocks */
	unsigned nblocks;
	unsigned prompt_tokens;
	unsigned cached_tokens;
	uint64_t hash;			/* seeds the answer */
	unsigned out_tokens;		/* to generate */
	unsigned produced;
	int stop;			/* finish reason: stop, else length */
	unsigned stop_seq;		/* 1 + the stop sequence that ended it */
	unsigned cut_token;		/* with stop_seq: the text ends in */
	unsigned cut_len;		/* this token, after cut_len bytes */
	int in_step;			/* in the decode step under way */
	TAILQ_ENTRY(sim_seq) link;	/* prefill queue or decode batch */
};

enum sim_job_state {
	SIM_JOB_NEW,
	SIM_JOB_WAITING,		/* in the admission queue */
	SIM_JOB_RUNNING,		/* holds its slots */
	SIM_JOB_REPLYING,		/* slots released, answer being sent */
	SIM_JOB_DONE
};

/* One inference request from arrival to its last byte. */
struct sim_job {
	struct sim_replica *r;
	const struct sim_proto *proto;
	const char *path;		/* its route, for statistics */
	const struct sim_route *route;
	enum sim_call call;
	enum sim_job_state state;
	int refs;

	struct evhttp_request *req;	/* NULL once handed back */
	struct evhttp_connection *evcon;
	uint64_t log_seq;
	uint64_t id;

	char *model;
	uint64_t model_hash;
	unsigned max_tokens;		/* 0: not given */
	int max_is_cap;			/* max_tokens caps the drawn length */
	char **stops;			/* stop sequences */
	unsigned nstops;
	int stream;
	int include_usage;
	int base64;			/* embeddings as base64 floats */
	unsigned dims;			/* embedding dimensions */
	unsigned classes;		/* KServe classifier scores; 0: none */
	unsigned flags;			/* a protocol's own options */
	json_t *keep;			/* what a protocol keeps of the body */

	struct sim_seq *seqs;
	unsigned nseq;
	unsigned seqs_cap;
	struct sim_blocks blocks;
	unsigned nfinished;
	unsigned emitted;		/* tokens sent so far, all sequences */

	struct sim_fault_pick fault;
	int started;			/* response head sent */
	int dropping;

	uint64_t t_arrive;		/* read */
	uint64_t t_admit;		/* got its slots */
	uint64_t t_prefilled;		/* last prefill ended */

	struct event *timer;		/* stall, drop (job.c) */
	struct event *tick;		/* embedding, slow pacing (engine.c) */
	struct event *watch;		/* client close while waiting */

	TAILQ_ENTRY(sim_job) link;	/* admission queue */

	/* The stream writer (write.c). */
	struct evhttp_request *w_req;	/* NULL: not writing */
	struct evbuffer *w_queue;	/* pieces not yet written */
	size_t *w_len;			/* their lengths */
	unsigned w_head, w_n, w_cap;
	int w_busy;			/* a piece is on its way */
	int w_end;			/* enum sim_wend, once queued */
	uint64_t w_rng;			/* the split pattern's cuts */
};

/* What ends a stream once its queue is written. */
enum sim_wend { SIM_WEND_NONE, SIM_WEND_END, SIM_WEND_DROP };

void	 sim_write_begin(struct sim_job *, struct evhttp_request *);
void	 sim_write_send(struct sim_job *, struct evbuffer *);
void	 sim_write_end(struct sim_job *, enum sim_wend);
void	 sim_write_abort(struct sim_job *);
void	 sim_write_unwatch(struct sim_job *);
void	 sim_job_watch(struct sim_job *);

void	 sim_job_handle(struct sim_replica *, struct evhttp_request *,
	     const struct sim_proto *, const struct sim_route *, uint64_t);
int	 sim_job_model(struct sim_job *, const char *, struct sim_error *);
void	 sim_job_stop(struct sim_job *, const char *, size_t);
void	 sim_job_id(const struct sim_job *, const char *, unsigned,
	     struct evbuffer *);
const char *sim_seq_piece(const struct sim_seq *, unsigned, int, size_t *);
void	 sim_seq_text(const struct sim_seq *, int, struct evbuffer *);
struct sim_seq *sim_job_seq_begin(struct sim_job *, struct sim_tok *);
void	 sim_job_seq_end(struct sim_job *, struct sim_seq *, struct sim_tok *);
void	 sim_job_ref(struct sim_job *);
void	 sim_job_unref(struct sim_job *);
void	 sim_job_token(struct sim_job *, struct sim_seq *);
void	 sim_job_done(struct sim_job *);
unsigned sim_job_prompt_tokens(const struct sim_job *);
unsigned sim_job_cached_tokens(const struct sim_job *);
unsigned sim_job_completion_tokens(const struct sim_job *);
void	 sim_error_set(struct sim_error *, int, const char *, const char *, ...)
	     __attribute__((format(printf, 4, 5)));

/* ==== Performance model (engine.c) ==== */

TAILQ_HEAD(sim_jobq, sim_job);
TAILQ_HEAD(sim_seqq, sim_seq);

struct sim_engine {
	unsigned busy;			/* slots taken */
	unsigned running;		/* jobs holding slots */
	unsigned waiting;		/* jobs queued for slots */
	uint64_t kv_tokens;		/* tokens held by running sequences */
	struct sim_jobq waitq;
	struct sim_seqq prefillq;
	struct sim_seq *prefilling;
	struct event *prefill_ev;
	struct sim_seqq decode;
	unsigned ndecode;
	int stepping;
	struct event *step_ev;
	struct sim_seq **stepv;
	unsigned stepv_cap;
	int closing;
};

void	 sim_engine_init(struct sim_replica *);
void	 sim_engine_free(struct sim_replica *);
void	 sim_engine_submit(struct sim_job *);
void	 sim_engine_run_now(struct sim_job *);
void	 sim_engine_abort(struct sim_job *);

/* ==== Replicas (replica.c) ==== */

/* Counts of one (path, status) pair. */
struct sim_path_count {
	const char *path;
	int status;
	uint64_t n;
};

#define SIM_MAX_PATH_COUNTS 64

struct sim_stats {
	struct sim_path_count paths[SIM_MAX_PATH_COUNTS];
	unsigned npaths;
	uint64_t requests;
	uint64_t prompt_tokens;		/* all prompt tokens, cached or not */
	uint64_t cached_tokens;		/* prefix cache hits, in tokens */
	uint64_t cache_queries;		/* prompt tokens looked up */
	uint64_t completion_tokens;
	uint64_t embedding_inputs;
	uint64_t finished_stop;
	uint64_t finished_length;
	uint64_t cancelled;
	uint64_t dropped;
	uint64_t errors;		/* error_rate fired */
	uint64_t rate_limited;
	uint64_t stalled;
	uint64_t slowed;
	uint64_t malformed;
	uint64_t midstream_errors;
	uint64_t decode_steps;
	uint64_t max_running;
};

struct sim_replica {
	struct event_base *base;
	unsigned index;
	uint64_t seed;
	struct sim_params p;
	struct sim_faults faults;	/* in force now */
	uint64_t rng;			/* draws faults */
	uint64_t next_id;
	struct evhttp *http;
	struct sim_cache *cache;
	struct sim_reqlog *log;
	struct sim_engine engine;
	struct sim_stats stats;
	uint64_t started_us;
	struct evbuffer *out;		/* empty between two writes */
};

struct sim_replica *sim_replica_new(struct event_base *,
	     const struct sim_fleet *, unsigned, char **);
void	 sim_replica_free(struct sim_replica *);
void	 sim_replica_reset(struct sim_replica *);
const char *sim_replica_model(const struct sim_replica *);
int	 sim_replica_serves(const struct sim_replica *, const char *);
void	 sim_replica_count(struct sim_replica *, const char *, int);
void	 sim_reply(struct evhttp_request *, int, const char *,
	     struct evbuffer *);
int	 sim_reply_error(struct sim_replica *, struct evhttp_request *,
	     const struct sim_proto *, const struct sim_error *, const char *);

/* ==== Admin API and metrics (admin.c) ==== */

void	 sim_admin_handle(struct sim_replica *, struct evhttp_request *,
	     const char *);
void	 sim_admin_metrics(struct sim_replica *, struct evhttp_request *);

/* ==== The prefix cache seen from outside (prefix.c) ==== */

struct evbuffer;
int	 sim_prefix_admin(struct sim_replica *, struct evhttp_request *,
	     const char *);
void	 sim_prefix_metrics(struct sim_replica *, struct evbuffer *);

#endif
