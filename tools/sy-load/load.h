/* sy-load: the load generator's shared types and the functions its files export to each other. */
#ifndef SY_LOAD_H
#define SY_LOAD_H

#include <sys/socket.h>

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct evbuffer;
struct timeval;

#define SY_LOAD_VERSION "0.1.0"

/* Exit statuses. */
#define SY_LOAD_EXIT_OK 0
#define SY_LOAD_EXIT_FAIL 1
#define SY_LOAD_EXIT_USAGE 2

/* ==== Workload description ==== */

enum sy_load_api {
	SY_LOAD_CHAT,		/* POST {base}/chat/completions */
	SY_LOAD_COMPLETIONS,	/* POST {base}/completions */
	SY_LOAD_EMBEDDINGS,	/* POST {base}/embeddings */
	SY_LOAD_ANTHROPIC	/* POST {base}/messages */
};

enum sy_load_dist_kind {
	SY_LOAD_FIXED,
	SY_LOAD_UNIFORM,
	SY_LOAD_NORMAL,
	SY_LOAD_LOGNORMAL,
	SY_LOAD_EXPONENTIAL
};

/* A distribution of non-negative integers (token counts, turns, ms). */
struct sy_load_dist {
	enum sy_load_dist_kind kind;
	double value;		/* fixed */
	double mean;		/* normal, lognormal, exponential */
	double stddev;		/* normal, lognormal */
	double min;		/* lower bound (uniform) or clamp (others) */
	double max;		/* upper bound (uniform) or clamp (others) */
	double mu, sigma;	/* lognormal: derived from mean and stddev */
};

struct sy_load_model {
	char *name;
	double weight;		/* relative; 0: only a trace names it */
};

/* A header of every request; of several values, each session draws one. */
struct sy_load_header {
	char *name;
	char **values;
	size_t nvalues;
};

struct sy_load_spec {
	enum sy_load_api api;
	struct sy_load_model *models;
	size_t nmodels;
	struct sy_load_dist prompt_tokens;
	struct sy_load_dist output_tokens;

	unsigned prefix_count;	/* shared-prefix groups; 0: none */
	unsigned prefix_tokens;	/* system prompt of each group */
	unsigned shots;		/* few-shot user/assistant pairs */
	unsigned shot_tokens;	/* tokens in each few-shot message */

	int sessions;		/* multi-turn sessions configured */
	struct sy_load_dist turns;
	struct sy_load_dist think_ms;

	double stream_fraction;
	struct sy_load_header *headers;
	size_t nheaders;

	double slo_ttft_ms;	/* 0: no bound */
	double slo_itl_ms;
	double slo_latency_ms;

	int ignore_eos;
	int no_max_tokens;	/* send no max_tokens: the server's length */
	uint64_t seed;
	uint64_t distinct_prompts;	/* 0: every request new; N: request k
					   repeats request k mod N */
};

/* One line of a replayed trace. */
struct sy_load_trace_entry {
	uint64_t t_us;		/* since the first entry */
	int model;		/* index in spec->models, -1: drawn */
	long prompt_tokens;	/* -1: drawn */
	long output_tokens;	/* -1: drawn */
	int stream;		/* -1: drawn, else 0 or 1 */
	int session;		/* index of its session, -1: none */
	char *body;		/* a full request body sent as is, or NULL */
	size_t body_len;
};

struct sy_load_trace {
	char *path;
	struct sy_load_trace_entry *entries;
	size_t n;
	size_t nsessions;
};

/* Initialises spec to the defaults (chat, one model, fixed lengths). */
void sy_load_spec_init(struct sy_load_spec *spec);

/* Frees what spec holds. */
void sy_load_spec_free(struct sy_load_spec *spec);

/*
 * Reads the JSON workload spec at path into spec (initialised).  Returns 0,
 * or -1 with *err set to an allocated "file:line: path: message".
 */
int sy_load_spec_read(struct sy_load_spec *spec, const char *path, char **err);

/* Index of model name in spec->models, appended with weight 0 when new. */
int sy_load_spec_model(struct sy_load_spec *spec, const char *name);

/*
 * Reads the JSONL trace at path, adding the models it names to spec.
 * Returns an allocated trace, or NULL with *err set ("file:line: message").
 */
struct sy_load_trace *sy_load_trace_read(const char *path,
    struct sy_load_spec *spec, char **err);

/* Frees a trace. */
void sy_load_trace_free(struct sy_load_trace *trace);

/*
 * Why a header called name (len bytes) cannot be sent — not a token, or one
 * sy-load sets itself — or NULL when it can.
 */
const char *sy_load_header_name_error(const char *name, size_t len);

/* Whether s may be a header value: no control characters but tab. */
int sy_load_header_value_ok(const char *s);

/* Name of an API ("chat", ...). */
const char *sy_load_api_name(enum sy_load_api api);

/* Parses an API name; returns 0 or -1. */
int sy_load_api_parse(const char *name, enum sy_load_api *api);

/* ==== Random numbers and generated text ==== */

struct sy_load_rng {
	uint64_t s[4];
};

/* Random streams apart from the session ids (which are streams 0, 1, ...). */
#define SY_LOAD_STREAM_ARRIVAL (UINT64_C(1) << 61)
#define SY_LOAD_STREAM_PREFIX (UINT64_C(1) << 62)

/* Seeds r from a seed and a stream number (independent streams). */
void sy_load_rng_seed(struct sy_load_rng *r, uint64_t seed, uint64_t stream);

/* An exponential variate of the given mean. */
double sy_load_rng_exp(struct sy_load_rng *r, double mean);

/* A draw from d, rounded to an integer and kept within d's bounds. */
long sy_load_dist_draw(const struct sy_load_dist *d, struct sy_load_rng *r);

/* ==== Requests and their outcome ==== */

enum sy_load_err {
	SY_LOAD_OK,
	SY_LOAD_ERR_HTTP,	/* non-2xx status; see status */
	SY_LOAD_ERR_CONNECT,	/* could not connect */
	SY_LOAD_ERR_TIMEOUT,	/* no complete answer within --timeout */
	SY_LOAD_ERR_RESET,	/* connection closed or reset mid-answer */
	SY_LOAD_ERR_BAD_RESPONSE, /* malformed HTTP, JSON or SSE */
	SY_LOAD_ERR_STREAM,	/* an error event inside a 200 stream */
	SY_LOAD_ERR_DROPPED,	/* open loop: no connection free */
	SY_LOAD_ERR_CANCELLED,	/* in flight when the run aborted */
	SY_LOAD_NERR
};

/* Name of an error kind ("timeout", ...; "http" for SY_LOAD_ERR_HTTP). */
const char *sy_load_err_name(enum sy_load_err err);

/* What the report keeps of one measured request. */
struct sy_load_rec {
	uint64_t id;		/* order in which requests were issued */
	int64_t start_us;	/* issue time since the measurement began */
	uint32_t ttft_us;	/* streams: first token; 0 when none */
	uint32_t latency_us;	/* issue to last byte */
	uint32_t itl_mean_us;	/* mean gap between tokens, or 0 */
	uint32_t itl_max_us;
	uint32_t chunks;	/* stream chunks that carried a token */
	uint32_t prompt_tokens;	/* from the usage the server reported */
	uint32_t completion_tokens; /* usage, else chunks */
	int32_t session;	/* session id, -1 for trace bodies */
	uint16_t turn;		/* 1-based turn in its session */
	int16_t group;		/* shared-prefix group, -1: none */
	uint16_t status;	/* HTTP status, 0 when none */
	uint16_t model;		/* index in spec->models */
	uint8_t error;		/* enum sy_load_err */
	uint8_t stream;
	uint8_t usage;		/* the server reported usage */
};

struct sy_load_session;
struct sy_load_worker;

/* A request in flight. */
struct sy_load_req {
	struct sy_load_rec rec;
	enum sy_load_api api;
	int measured;		/* issued after the warm-up */
	uint64_t t0;		/* issue time, monotonic µs */
	uint64_t last_token;
	uint64_t itl_sum;
	uint32_t *gaps;		/* inter-token gaps in µs */
	size_t ngaps, gaps_cap;
	struct evbuffer *text;	/* reply text, if the session goes on */
	char errmsg[128];	/* the server's error message, if any */
	struct sy_load_session *session;
	struct sy_load_worker *worker;
	struct sy_load_req *next; /* free list */
};

/*
 * Feeds one SSE event (name may be "", data is its joined data lines) of
 * req's answer, received at now (µs): counts tokens, times them, reads
 * usage and error events.
 */
void sy_load_decode_event(struct sy_load_req *req, const char *name,
    const char *data, size_t len, uint64_t now);

/*
 * Reads a whole 2xx JSON answer: usage and reply text.  Returns 0, or -1
 * when it is not the JSON the API returns.
 */
int sy_load_decode_body(struct sy_load_req *req, const char *data, size_t len);

/* Keeps the error message of a non-2xx answer body in req->errmsg. */
void sy_load_decode_error(struct sy_load_req *req, const char *data,
    size_t len);

/* ==== Building requests ==== */

/* The texts a shared-prefix group puts before every prompt. */
struct sy_load_prefix {
	struct evbuffer *system;	/* system prompt */
	struct evbuffer **shots;	/* 2 * shots: user, assistant, ... */
};

/* Builds the HTTP requests of a run. */
struct sy_load_work {
	const struct sy_load_opts *opts;
	const struct sy_load_spec *spec;
	char *head;			/* request line and fixed headers */
	size_t head_len;
	int *spec_header_on;		/* not overridden by a --header */
	struct sy_load_prefix *prefixes;
	struct evbuffer *body;		/* scratch */
};

/* A conversation: one or more turns whose history grows. */
struct sy_load_session {
	uint64_t id;
	struct sy_load_rng rng;
	int model;
	int group;			/* -1: no shared prefix */
	unsigned turns;			/* turns in all */
	unsigned turn;			/* turns issued so far */
	unsigned *picks;		/* value drawn per spec header */
	struct evbuffer **history;	/* user, assistant, user, ... */
	size_t nhistory;

	/* Scheduling, owned by the run. */
	uint64_t ready_us;		/* next turn allowed from */
	int busy;			/* a turn is in flight */
	size_t *pending;		/* replay: lines waiting for it */
	size_t npending, pending_head, pending_cap;
};

/* What a trace line fixes about a turn; -1 fields are drawn. */
struct sy_load_turn {
	int model;
	long prompt_tokens;
	long output_tokens;
	int stream;
};

/* Prepares w for opts: fixed headers, prefix texts. */
void sy_load_work_init(struct sy_load_work *w, const struct sy_load_opts *opts);

/* Frees what w holds. */
void sy_load_work_free(struct sy_load_work *w);

/*
 * A new session with the given id (its random stream), its model, prefix
 * group, header values and number of turns drawn from the spec.
 */
struct sy_load_session *sy_load_session_new(struct sy_load_work *w,
    uint64_t id);

/* Frees a session. */
void sy_load_session_free(struct sy_load_session *s);

/*
 * Appends to msg the HTTP request of the session's next turn (t may be
 * NULL) and fills req's record fields; the new user text joins the
 * history, and req->text is set when another turn follows.
 */
void sy_load_work_build(struct sy_load_work *w, struct sy_load_session *s,
    const struct sy_load_turn *t, struct sy_load_req *req,
    struct evbuffer *msg);

/* Appends to msg an HTTP request carrying a trace line's own body. */
void sy_load_work_build_raw(struct sy_load_work *w,
    const struct sy_load_trace_entry *e, struct sy_load_req *req,
    struct evbuffer *msg);

/* Adds the reply to the session's last turn to its history (takes text). */
void sy_load_session_reply(struct sy_load_session *s, struct evbuffer *text);

/* Drops the unanswered user text of the last turn from the history. */
void sy_load_session_forget(struct sy_load_session *s);

/* ==== Connections ==== */

struct sy_load_conn;
typedef void (*sy_load_done_cb)(struct sy_load_req *, void *);

/* A pool of keep-alive HTTP/1.1 connections to one address. */
struct sy_load_pool {
	struct event_base *base;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	const struct timeval *timeout;	/* per request (common) */
	unsigned max;			/* connections open at most */
	unsigned nconns;		/* open now */
	uint64_t opened;		/* opened in total */
	struct sy_load_conn *idle;	/* stack of idle connections */
	struct sy_load_conn *all;	/* every open connection */
	sy_load_done_cb done;		/* called once per request sent */
	void *arg;
};

/*
 * Initialises pool to connect to addr, with at most max connections, a
 * per-request timeout in seconds, and done called when a request ends.
 */
void sy_load_pool_init(struct sy_load_pool *pool, struct event_base *base,
    const struct sockaddr *addr, socklen_t addrlen, double timeout,
    unsigned max, sy_load_done_cb done, void *arg);

/*
 * Sends msg (a whole HTTP request; its bytes are moved) for req on an idle
 * connection or a new one.  Returns 0 when sent (done will be called, never
 * from inside this call), -1 when every connection is busy and the pool is
 * full (msg is left as it was).
 */
int sy_load_pool_send(struct sy_load_pool *pool, struct sy_load_req *req,
    struct evbuffer *msg);

/* Whether sy_load_pool_send would find no connection to send on. */
int sy_load_pool_full(const struct sy_load_pool *pool);

/*
 * Closes every connection; a request still in flight ends with
 * SY_LOAD_ERR_CANCELLED through done.
 */
void sy_load_pool_free(struct sy_load_pool *pool);

/* ==== Options and the run ==== */

enum sy_load_mode { SY_LOAD_OPEN, SY_LOAD_CLOSED, SY_LOAD_REPLAY };

struct sy_load_opts {
	char *url;
	char *host_header;		/* host[:port] as given */
	char *base_path;		/* "/v1" or "", no trailing / */
	struct sockaddr_storage addr;
	socklen_t addrlen;

	enum sy_load_mode mode;
	double rate;
	int poisson;
	unsigned concurrency;
	double duration;		/* 0: unbounded */
	uint64_t requests;		/* 0: unbounded */
	double warmup;
	double timeout;
	unsigned max_connections;

	char **headers;			/* --header "Name: value" */
	size_t nheaders;
	char *api_key;

	char *json_path;
	char *csv_path;
	int per_request;
	int quiet;

	char *spec_path;
	struct sy_load_spec spec;
	struct sy_load_trace *trace;
};

/* What a run produced, for the report. */
struct sy_load_results {
	const struct sy_load_opts *opts;
	struct sy_load_rec *recs;	/* measured, as they ended */
	size_t nrecs;
	uint32_t *gaps;			/* every inter-token gap, µs */
	size_t ngaps;
	double elapsed;			/* seconds measured */
	uint64_t connections;		/* opened in total */
	double lag_mean_ms;		/* sent after schedule by */
	double lag_max_ms;
	uint64_t cancelled;		/* measured, aborted in flight */
	int interrupted;
	char errmsg[SY_LOAD_NERR][128];	/* first message seen per kind */
	int errstatus[SY_LOAD_NERR];	/* its HTTP status */
};

/*
 * Runs the load described by opts and fills res (free it with
 * sy_load_results_free).  Returns 0, or -1 on failure (printed).
 */
int sy_load_run(const struct sy_load_opts *opts, struct sy_load_results *res);

/* Frees what res holds. */
void sy_load_results_free(struct sy_load_results *res);

/*
 * Prints the summary table to stdout and writes the --json and --csv
 * files.  Returns 0, or -1 when a file cannot be written (printed).
 */
int sy_load_report(struct sy_load_results *res);

/* Monotonic clock in microseconds. */
uint64_t sy_load_now(void);

#endif
