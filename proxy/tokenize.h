/* Asking a backend's own tokenizer how many tokens a request's prompt takes (Anthropic's count_tokens). */
#ifndef SY_TOKENIZE_H
#define SY_TOKENIZE_H

#include <stdint.h>

#include <jansson.h>

struct sy_config;
struct sy_endpoint;
struct sy_upstream;
struct sy_tokenize_ask;

/* What a backend's `tokenize` key says it offers (the words of the row). */
enum sy_tokenizer {
	SY_TOKENIZE_NONE,	/* no tokenizer: the gateway estimates */
	SY_TOKENIZE_VLLM,	/* POST /tokenize {"model","messages"} -> "count" */
	SY_TOKENIZE_LLAMACPP	/* POST /apply-template, then /tokenize
				   {"content"} -> "tokens" */
};

/* The row's words, in enum order, NULL-terminated. */
extern const char *const sy_tokenize_words[];

/*
 * Called once when an ask ends: tokens is the backend's count, or -1 when
 * it could not count (unreachable, an error, an answer not understood);
 * ep is the endpoint asked (the config snapshot owns it).  The ask is gone
 * after the call.
 */
typedef void (*sy_tokenize_cb)(void *arg, int64_t tokens,
    const struct sy_endpoint *ep);

/*
 * Asks an endpoint of the route serving canon's model (canon: the request
 * in canonical chat form, borrowed) that has a tokenizer, the first usable
 * one in the route's order, to count canon's prompt: its messages and
 * tools, with the chat template the backend applies.  Returns the ask, or
 * NULL when no endpoint can count (cb is then never called).  cb is never
 * called before this returns.
 */
struct sy_tokenize_ask *sy_tokenize_start(struct sy_upstream *u,
    const struct sy_config *cfg, const json_t *canon, sy_tokenize_cb cb,
    void *arg);

/* Abandons a (NULL) or an ask under way: no callback follows. */
void sy_tokenize_cancel(struct sy_tokenize_ask *a);

#endif
