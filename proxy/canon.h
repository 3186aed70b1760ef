/* The canonical form (OpenAI's chat/completions/embeddings shapes): reading and writing its usage, finish details and errors, for adapters and client dialects alike. */
#ifndef SY_CANON_H
#define SY_CANON_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "record.h"

struct evbuffer;
struct sy_answer;

/*
 * Reads the token counts of an answer or a stream chunk into u from the
 * text of its "usage" object (ulen bytes; NULL when it has none) and of
 * llama.cpp's "timings" object (tlen bytes; NULL when none):
 * prompt_tokens, completion_tokens, prompt_tokens_details.cached_tokens;
 * when the details do not say, the cached prompt tokens are timings'
 * cache_n, else prompt_tokens − timings.prompt_n (the tokens computed).
 * Counts it cannot find are left as they were.  Returns 1 when there was
 * a usage object, else 0.
 */
int sy_canon_usage_read(const char *usage, size_t ulen, const char *timings,
    size_t tlen, struct sy_usage *u);

/*
 * The usage of a whole canonical answer (len bytes of JSON text) into u,
 * as sy_canon_usage_read reads it.  Returns 1 when it had one.
 */
int sy_canon_answer_usage(const char *text, size_t len, struct sy_usage *u);

/*
 * The stop string that ended a choice (the text of one element of
 * "choices", len bytes), when its backend said which: vLLM's
 * "stop_reason", SGLang's "matched_stop" (strings only: a number there is
 * a stop token), or llama.cpp's "stopping_word".  Sets *s and *slen to
 * its JSON string literal (quotes included) and returns 1, else 0.
 * answer, when not NULL, is the whole answer or chunk (alen bytes), whose
 * top-level "stopping_word" counts too.
 */
int sy_canon_stop_string(const char *choice, size_t len, const char *answer,
    size_t alen, const char **s, size_t *slen);

/* How sy_canon_usage_put writes a usage object. */
enum {
	SY_USAGE_NULLS = 1,	/* unknown counts are null (else 0) */
	SY_USAGE_EMBEDDING = 2,	/* no completion_tokens (embeddings) */
	SY_USAGE_DETAILS = 4	/* prompt_tokens_details.cached_tokens too */
};

/*
 * Appends OpenAI's usage object for u (its value, without the key):
 * prompt_tokens, completion_tokens, total_tokens, and with
 * SY_USAGE_DETAILS prompt_tokens_details.cached_tokens; flags as above.
 */
void sy_canon_usage_put(struct evbuffer *out, const struct sy_usage *u,
    unsigned flags);

/* The same object as a new JSON tree (the caller owns the reference). */
json_t *sy_canon_usage_json(const struct sy_usage *u, unsigned flags);

/*
 * OpenAI's error type for an HTTP status: 401 authentication_error, 403
 * permission_error, 429 rate_limit_error, other 4xx invalid_request_error
 * (OpenAI's own for 404), 5xx server_error.
 */
const char *sy_canon_error_type(int status);

/*
 * Appends OpenAI's error body {"error":{"message","type","code"}}: type
 * (NULL: the status's, see sy_canon_error_type), code (NULL: null),
 * message (escaped).
 */
void sy_canon_error_body(struct evbuffer *out, int status, const char *type,
    const char *code, const char *message);

/*
 * Appends OpenAI's error event for an error object's JSON text (elen
 * bytes): "data: {"error":<object>}\n\n".
 */
void sy_canon_error_event(struct evbuffer *out, const char *error,
    size_t elen);

/* Appends a server_error event with code and message, for a stream that fails. */
void sy_canon_stream_error(struct evbuffer *out, const char *code,
    const char *message);

/* ==== Streams and whole answers (proxy/canon_stream.c) ==== */

/* The start every chunk of a stream an adapter translates shares. */
struct sy_canon_head {
	char *text;			/* malloc'd, or NULL */
	size_t len;
};

/*
 * Sets h to a chunk's start through "choices": — "data: {"id":ID,
 * "object":"chat.completion.chunk","created":created,"model":"MODEL",
 * "choices":" — for id (a JSON string literal, idlen bytes) and model
 * (escaped here); frees what h held.
 */
void sy_canon_head_set(struct sy_canon_head *h, const char *id, size_t idlen,
    long long created, const char *model);

/* Frees what h holds. */
void sy_canon_head_free(struct sy_canon_head *h);

/* Appends h and the opening of its one choice's delta. */
void sy_canon_chunk_begin(struct evbuffer *out, const struct sy_canon_head *h);

/* Appends a chunk's end after its delta; finish NULL is null. */
void sy_canon_chunk_end(struct evbuffer *out, const char *finish);

/*
 * Whether the canonical stream events in buf (len bytes, whole events)
 * carry something of the answer: text, a tool call, a finish reason, or
 * anything else but a role-only first chunk, a usage chunk without
 * choices, comments and [DONE].  An event that is not a JSON object counts
 * as content; error events do not (the relay tells them apart).  Until a
 * stream's first content its events may be held, and dropped when the try
 * fails.  Writes into *error (n bytes) the message of an error event in
 * buf, or "" (error may be NULL).
 */
int sy_canon_stream_content(const char *buf, size_t len, char *error,
    size_t n);

/*
 * Appends the text of a message's content v (a string, or its text parts
 * joined by newlines) to out.
 */
void sy_canon_text(struct evbuffer *out, const json_t *v);

/*
 * Appends to out the canonical SSE events of a stream that carries the
 * whole answer body (len bytes of JSON) for api (chat or completions):
 * content in pieces of chunk_tokens words, the finish reason, a usage
 * chunk when with_usage, then [DONE].  Returns 0, or -1 (out untouched) when the answer cannot be
 * told as such a stream without losing something (several choices, tool
 * calls, logprobs, fields a delta would drop).
 */
int sy_canon_replay(const char *body, size_t len, int api,
    unsigned chunk_tokens, int with_usage, struct evbuffer *out);

/*
 * Reassembles a canonical stream (OpenAI SSE chunks) into the whole
 * answer it tells, for storing a streamed miss.
 */
struct sy_canon_capture;

/* A new capture for api (chat or completions). */
struct sy_canon_capture *sy_canon_capture_new(int api);

/* Feeds the len event bytes at buf (any split); keeps nothing of buf. */
void sy_canon_capture_feed(struct sy_canon_capture *cap, const char *buf,
    size_t len);

/*
 * The whole answer (a new canonical JSON text, malloc'd, *len set) of a
 * stream that ended with [DONE] and told only what a whole answer holds
 * the same way, with usage u (counts < 0 left out); NULL otherwise.
 */
char *sy_canon_capture_answer(struct sy_canon_capture *cap,
    const struct sy_usage *u, size_t *len);

/*
 * Whether cap has seen [DONE] or something that makes it useless:
 * feeding more changes nothing.
 */
int sy_canon_capture_done(const struct sy_canon_capture *cap);

/* Frees cap (NULL is ignored). */
void sy_canon_capture_free(struct sy_canon_capture *cap);

/* ==== First choices, for checks of answers (proxy/canon_stream.c) ==== */

/*
 * Reads an answer of status from data: a whole canonical (OpenAI) body, or
 * when stream is set the canonical SSE events of a stream.  Fills a with
 * the first choice's finish_reason and text (malloc'd;
 * sy_canon_answer_clear frees them) and whether it is an error (status >= 400, an error member
 * or event, no finish_reason in a stream).  Leaves data unchanged.
 */
void sy_canon_answer_read(struct sy_answer *a, int status,
    struct evbuffer *data, int stream);

/* Frees what sy_canon_answer_read gave a. */
void sy_canon_answer_clear(struct sy_answer *a);

/* ==== Batches (proxy/canon_batch.c) ==== */

/*
 * The inputs of a batchable request body of api (embeddings' "input",
 * completions' "prompt"): NULL and *out a new array of its inputs (a
 * string, an array of token ids as one input, or a non-empty array of
 * strings and token-id arrays), or the message for the client's 400.
 */
const char *sy_canon_batch_inputs(int api, const json_t *body, json_t **out);

/* The estimated tokens of one input: its token ids, or its text's estimate. */
uint64_t sy_canon_input_tokens(const json_t *v);

/*
 * Appends the body of one request made of params (a request without its
 * inputs) and the n arrays of inputs, concatenated in order.
 */
void sy_canon_batch_request(int api, const json_t *params,
    json_t *const *inputs, size_t n, struct evbuffer *out);

/* One request's part of a batch's answer. */
struct sy_canon_part {
	size_t ninputs;			/* in: its inputs, in order */
	uint64_t prompt_weight;		/* in: its share of the prompt tokens */
	struct sy_usage usage;		/* out: its share of the usage */
	struct evbuffer *body;		/* out: its answer (new; the caller frees) */
};

/*
 * Splits a batch's answer body (a success of api) among its n parts:
 * each gets its items re-indexed from 0 and its share of total (by
 * largest remainder, so that the shares add up: prompt and cached tokens
 * by prompt_weight, completion tokens by text).  Returns 0, or -1 (no
 * body made) when the answer does not hold exactly one embedding per
 * input, or the same number of choices for each prompt.
 */
int sy_canon_batch_split(int api, struct evbuffer *body,
    const struct sy_usage *total, struct sy_canon_part *parts, size_t n);

#endif
