/* The canonical form (OpenAI's chat/completions/embeddings shapes): reading and writing its usage, finish details and errors, for adapters and client dialects alike. */
#ifndef SY_CANON_H
#define SY_CANON_H

#include <stddef.h>

#include "record.h"

struct evbuffer;

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

/*
 * Appends OpenAI's error event for an error object's JSON text (elen
 * bytes): "data: {"error":<object>}\n\n".
 */
void sy_canon_error_event(struct evbuffer *out, const char *error,
    size_t elen);

#endif
