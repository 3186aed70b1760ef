/* The model names a gateway serves: its config's, and on routes that take any model the names its backends report (GET /v1/models, asked of every endpoint at once). */
#ifndef SY_MODELS_H
#define SY_MODELS_H

#include <jansson.h>

struct sy_config;
struct sy_upstream;

/* One collection of names under way. */
struct sy_models_ask;

/*
 * Told the names (a JSON array of strings, borrowed: valid during the
 * call) once every endpoint asked has answered or failed.  The
 * collection is gone after the call: do not cancel it then.
 */
typedef void (*sy_models_cb)(void *arg, json_t *names);

/*
 * Asks each endpoint of cfg's wildcard routes whose backend kind can list
 * its models (models_path) for them, through the pools of u, each under
 * a short timeout; cb then gets cfg's own names (sy_config_model_names)
 * followed by those the endpoints reported, without duplicates.  Returns
 * the collection, or NULL when there is nothing to ask (cb is not called:
 * the config's names are the whole answer).
 */
struct sy_models_ask *sy_models_collect(struct sy_upstream *u,
    const struct sy_config *cfg, sy_models_cb cb, void *arg);

/* Abandons a collection before cb was called (NULL: nothing to do). */
void sy_models_cancel(struct sy_models_ask *a);

#endif
