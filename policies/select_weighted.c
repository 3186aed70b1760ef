/* weighted: splits a route's traffic between models by weight (A/B tests), optionally sticky per user or session. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "config.h"
#include "policy.h"
#include "req.h"
#include "ring.h"
#include "select.h"
#include "util.h"

static const char *const weighted_params[] = {
	"models", "sticky", "header", NULL
};

enum sticky { STICKY_NONE, STICKY_USER, STICKY_HEADER };

struct weighted_state {
	const char **models;
	uint64_t *cum;			/* cum[i]: weights of models 0..i */
	size_t n;
	uint64_t total;
	enum sticky sticky;
	const char *header;		/* borrowed from the route's params */
	atomic_ullong next;		/* position in the cycle of total */
};

static void
weighted_destroy(void *state)
{
	struct weighted_state *st = state;

	free(st->models);
	free(st->cum);
	free(st);
}

static void *
weighted_create(const json_t *params, const struct sy_route *route,
    char **err)
{
	struct weighted_state *st;
	const json_t *obj, *v;
	const char *name, *sticky;
	char path[300];

	if (sy_params_check(params, "weighted", weighted_params, err) == -1 ||
	    sy_select_named(route, "weighted", err) == -1 ||
	    sy_param_string(params, "weighted", "sticky", "none", 16, &sticky,
	    err) == -1)
		return NULL;
	obj = json_object_get(params, "models");
	if (!json_is_object(obj) || json_object_size(obj) == 0)
		return sy_policy_fail(err, ".models: expected an object of "
		    "served models to weights, e.g. {\"a\": 3, \"b\": 1}");
	st = sy_xcalloc(1, sizeof *st);
	st->models = sy_xcalloc(json_object_size(obj), sizeof *st->models);
	st->cum = sy_xcalloc(json_object_size(obj), sizeof *st->cum);
	atomic_init(&st->next, 0);
	json_object_foreach((json_t *)obj, name, v) {
		snprintf(path, sizeof path, ".models.%s", name);
		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    json_integer_value(v) > 1000000) {
			sy_policy_fail(err, "%s: expected a weight, an integer "
			    "from 0 to 1000000", path);
			goto bad;
		}
		if (sy_select_model(route, path, name, &st->models[st->n],
		    err) == -1)
			goto bad;
		st->total += (uint64_t)json_integer_value(v);
		st->cum[st->n++] = st->total;
	}
	if (st->total == 0) {
		sy_policy_fail(err, ".models: at least one weight must be "
		    "above 0");
		goto bad;
	}
	if (strcmp(sticky, "user") == 0)
		st->sticky = STICKY_USER;
	else if (strcmp(sticky, "header") == 0)
		st->sticky = STICKY_HEADER;
	else if (strcmp(sticky, "none") != 0) {
		sy_policy_fail(err, ".sticky: expected \"none\", \"user\" or "
		    "\"header\", got \"%s\"", sticky);
		goto bad;
	}
	if (sy_param_string(params, "weighted", "header", "x-session-id", 256,
	    &st->header, err) == -1)
		goto bad;
	return st;
bad:
	weighted_destroy(st);
	return NULL;
}

static const char *
weighted_select(void *state, const struct sy_route *route,
    const struct sy_req *req, const char **reason)
{
	struct weighted_state *st = state;
	const char *key = NULL;
	uint64_t at;
	size_t i, len;

	if (st->sticky != STICKY_NONE)
		key = sy_policy_session_key(req, st->sticky == STICKY_HEADER ?
		    st->header : NULL, &len);
	if (key != NULL) {
		at = sy_hash64(key, len) % st->total;
		*reason = "sticky";
	} else {
		/* A cycle of total requests: each model its weight's share. */
		at = atomic_fetch_add_explicit(&st->next, 1,
		    memory_order_relaxed) % st->total;
		*reason = "weighted";
	}
	for (i = 0; i + 1 < st->n && at >= st->cum[i]; i++)
		;
	return st->models[i];
}

const struct sy_select_policy sy_select_weighted = {
	.name = "weighted",
	.create = weighted_create,
	.select = weighted_select,
	.destroy = weighted_destroy
};
