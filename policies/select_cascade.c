/* cascade: a cheaper model answers first; the answer escalates to the next model when a configured check fails (length, error, refusal, invalid JSON, too short). */
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "config.h"
#include "policy.h"
#include "req.h"
#include "select.h"
#include "util.h"

static const char *const cascade_params[] = {
	"models", "on", "refusal", "min_chars", NULL
};

/* The checks, in the order they are made. */
enum {
	CHECK_ERROR = 0x1, CHECK_LENGTH = 0x2, CHECK_REFUSAL = 0x4,
	CHECK_JSON = 0x8, CHECK_SHORT = 0x10
};

static const struct {
	const char *name;
	unsigned bit;
	const char *reason;
} checks[] = {
	{ "error", CHECK_ERROR, "escalated:error" },
	{ "length", CHECK_LENGTH, "escalated:length" },
	{ "refusal", CHECK_REFUSAL, "escalated:refusal" },
	{ "invalid_json", CHECK_JSON, "escalated:invalid_json" },
	{ "too_short", CHECK_SHORT, "escalated:too_short" }
};
#define NCHECKS (sizeof checks / sizeof checks[0])

struct cascade_state {
	const char **models;		/* cheapest first */
	size_t n;
	unsigned on;			/* CHECK_* bits */
	int has_refusal;
	regex_t refusal;
	long long min_chars;
};

static void
cascade_destroy(void *state)
{
	struct cascade_state *st = state;

	if (st->has_refusal)
		regfree(&st->refusal);
	free(st->models);
	free(st);
}

/* Reads the "on" parameter into st->on; 0 or -1 with *err. */
static int
cascade_on(struct cascade_state *st, const json_t *arr, char **err)
{
	const json_t *v;
	size_t i, j;

	if (arr == NULL) {
		st->on = CHECK_ERROR | CHECK_LENGTH;
		return 0;
	}
	if (!json_is_array(arr) || json_array_size(arr) == 0)
		return sy_fail(err, ".on: expected an array of checks: error, "
		    "length, refusal, invalid_json, too_short");
	json_array_foreach(arr, i, v) {
		for (j = 0; j < NCHECKS; j++)
			if (json_is_string(v) && strcmp(json_string_value(v),
			    checks[j].name) == 0)
				break;
		if (j == NCHECKS)
			return sy_fail(err, ".on[%zu]: unknown check; known: "
			    "error, length, refusal, invalid_json, too_short",
			    i);
		if (st->on & checks[j].bit)
			return sy_fail(err, ".on[%zu]: \"%s\" is listed twice",
			    i, checks[j].name);
		st->on |= checks[j].bit;
	}
	return 0;
}

static void *
cascade_create(const json_t *params, const struct sy_route *route,
    char **err)
{
	struct cascade_state *st;
	const json_t *v;

	if (sy_params_check(params, "cascade", cascade_params, err) == -1 ||
	    sy_select_named(route, "cascade", err) == -1)
		return NULL;
	st = sy_xcalloc(1, sizeof *st);
	if (sy_select_models(params, "models", route, 2, &st->models, &st->n,
	    err) == -1 || cascade_on(st, json_object_get(params, "on"),
	    err) == -1 ||
	    sy_param_int(params, "cascade", "min_chars", 0, 1, 1000000,
	    &st->min_chars, err) == -1)
		goto bad;
	if ((v = json_object_get(params, "refusal")) != NULL) {
		if (sy_select_regex(&st->refusal, ".refusal", v, err) == -1)
			goto bad;
		st->has_refusal = 1;
	}
	if ((st->on & CHECK_REFUSAL) && !st->has_refusal) {
		sy_fail(err, ".on: the refusal check needs a \"refusal\" "
		    "pattern");
		goto bad;
	}
	if (st->has_refusal && !(st->on & CHECK_REFUSAL)) {
		sy_fail(err, ".refusal: set, but \"on\" does not list "
		    "\"refusal\"");
		goto bad;
	}
	if ((st->on & CHECK_SHORT) && st->min_chars == 0) {
		sy_fail(err, ".on: the too_short check needs \"min_chars\"");
		goto bad;
	}
	if (st->min_chars != 0 && !(st->on & CHECK_SHORT)) {
		sy_fail(err, ".min_chars: set, but \"on\" does not list "
		    "\"too_short\"");
		goto bad;
	}
	return st;
bad:
	cascade_destroy(st);
	return NULL;
}

static const char *
cascade_select(void *state, const struct sy_route *route,
    const struct sy_req *req, const char **reason)
{
	struct cascade_state *st = state;

	*reason = "cascade";
	return st->models[0];
}

static const char *
cascade_next(void *state, const char *model)
{
	struct cascade_state *st = state;
	size_t i;

	for (i = 0; i + 1 < st->n; i++)
		if (strcmp(st->models[i], model) == 0)
			return st->models[i + 1];
	return NULL;
}

/* Characters (UTF-8 code points) in s, len bytes. */
static size_t
utf8_chars(const char *s, size_t len)
{
	size_t i, n = 0;

	for (i = 0; i < len; i++)
		n += ((unsigned char)s[i] & 0xc0) != 0x80;
	return n;
}

/* Whether the check bit fails for answer a to req. */
static int
check_fails(const struct cascade_state *st, unsigned bit,
    const struct sy_req *req, const struct sy_answer *a)
{
	json_t *o;

	switch (bit) {
	case CHECK_LENGTH:
		/* Not when the client's own max_tokens cut it: a stronger
		   model would stop there too. */
		return a->finish_reason != NULL &&
		    strcmp(a->finish_reason, "length") == 0 &&
		    !(req->max_tokens > 0 && req->usage.completion_tokens >=
		    req->max_tokens);
	case CHECK_REFUSAL:
		return regexec(&st->refusal, a->text, 0, NULL, 0) == 0;
	case CHECK_JSON:
		if (!sy_select_wants_json(req))
			return 0;
		if ((o = json_loadb(a->text, a->len, 0, NULL)) == NULL)
			return 1;
		json_decref(o);
		return 0;
	case CHECK_SHORT:
		return (a->finish_reason == NULL ||
		    strcmp(a->finish_reason, "tool_calls") != 0) &&
		    utf8_chars(a->text, a->len) < (size_t)st->min_chars;
	}
	return 0;
}

static int
cascade_check(void *state, const struct sy_req *req,
    const struct sy_answer *a, const char **reason)
{
	struct cascade_state *st = state;
	size_t i;

	if (a->error) {
		*reason = checks[0].reason;
		return (st->on & CHECK_ERROR) != 0;
	}
	for (i = 1; i < NCHECKS; i++) {
		if ((st->on & checks[i].bit) &&
		    check_fails(st, checks[i].bit, req, a)) {
			*reason = checks[i].reason;
			return 1;
		}
	}
	return 0;
}

const struct sy_select_policy sy_select_cascade = {
	.name = "cascade",
	.create = cascade_create,
	.select = cascade_select,
	.next = cascade_next,
	.check = cascade_check,
	.destroy = cascade_destroy
};
