/* rules: an ordered list of conditions on the request, each naming a model; the first rule that matches wins, else a default. */
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "config.h"
#include "http1.h"
#include "policy.h"
#include "req.h"
#include "select.h"
#include "tenants.h"
#include "util.h"

#define MAX_RULES	64

extern const struct sy_select_policy sy_select_alias;

static const char *const rules_params[] = { "rules", "default", NULL };
static const char *const rule_keys[] = {
	"model", "min_prompt_tokens", "max_prompt_tokens", "min_messages",
	"max_messages", "tools", "images", "response_format", "last_user",
	"headers", "metadata", "tenant", NULL
};

/* A regex on a named value: a request header, or a metadata member. */
struct match {
	char *name;
	regex_t re;
};

struct rule {
	const char *model;
	char reason[32];		/* "rule:N" */
	long long min_prompt, max_prompt;	/* -1: no bound */
	long long min_messages, max_messages;
	int tools, images, response_format;	/* -1: either; 0: absent; 1: present */
	int has_last_user;
	regex_t last_user;
	struct match *headers;
	size_t nheaders;
	struct match *metadata;
	size_t nmetadata;
	struct match *tenant;		/* key, team, metadata.NAME of the key */
	size_t ntenant;
};

struct rules_state {
	struct rule *rules;
	size_t n;
	const char *def;		/* NULL: the client's model or its alias */
};

static void
matches_free(struct match *m, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(m[i].name);
		regfree(&m[i].re);
	}
	free(m);
}

static void
rules_destroy(void *state)
{
	struct rules_state *st = state;
	struct rule *r;
	size_t i;

	for (i = 0; i < st->n; i++) {
		r = &st->rules[i];
		if (r->has_last_user)
			regfree(&r->last_user);
		matches_free(r->headers, r->nheaders);
		matches_free(r->tenant, r->ntenant);
		matches_free(r->metadata, r->nmetadata);
	}
	free(st->rules);
	free(st);
}

/* Reads integer key of o (at path) into *out, left alone when absent; 0 or -1. */
static int
rule_int(const json_t *o, const char *path, const char *key, long long *out,
    char **err)
{
	const json_t *v = json_object_get(o, key);

	if (v == NULL)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    json_integer_value(v) > 100000000)
		return sy_fail(err, "%s.%s: expected an integer from 0 to "
		    "100000000", path, key);
	*out = json_integer_value(v);
	return 0;
}

/* Reads boolean key of o (at path) into *out, left alone when absent; 0 or -1. */
static int
rule_bool(const json_t *o, const char *path, const char *key, int *out,
    char **err)
{
	const json_t *v = json_object_get(o, key);

	if (v == NULL)
		return 0;
	if (!json_is_boolean(v))
		return sy_fail(err, "%s.%s: expected true (present) or false "
		    "(absent)", path, key);
	*out = json_is_true(v);
	return 0;
}

/* Reads object key of o (at path), names to regexes, into *m and *n; 0 or -1. */
static int
rule_matches(const json_t *o, const char *path, const char *key,
    struct match **m, size_t *n, char **err)
{
	const json_t *obj = json_object_get(o, key), *v;
	const char *name;
	char p[512];

	if (obj == NULL)
		return 0;
	if (!json_is_object(obj) || json_object_size(obj) == 0)
		return sy_fail(err, "%s.%s: expected an object of names to "
		    "regular expressions", path, key);
	*m = sy_xcalloc(json_object_size(obj), sizeof **m);
	json_object_foreach((json_t *)obj, name, v) {
		snprintf(p, sizeof p, "%s.%s.%s", path, key, name);
		if (*name == '\0')
			return sy_fail(err, "%s.%s: a name must not be empty",
			    path, key);
		if (sy_select_regex(&(*m)[*n].re, p, v, err) == -1)
			return -1;
		(*m)[(*n)++].name = sy_xstrdup(name);
	}
	return 0;
}

/* Reads rule o (rules[i]) into r; 0 or -1 with *err. */
static int
rule_read(const struct sy_route *route, const json_t *o, size_t i,
    struct rule *r, char **err)
{
	const char *key;
	const json_t *v;
	char path[32];
	size_t k, conds = 0;

	snprintf(path, sizeof path, ".rules[%zu]", i);
	snprintf(r->reason, sizeof r->reason, "rule:%zu", i);
	r->min_prompt = r->max_prompt = r->min_messages = r->max_messages = -1;
	r->tools = r->images = r->response_format = -1;
	if (!json_is_object(o))
		return sy_fail(err, "%s: expected an object with \"model\" and "
		    "conditions", path);
	json_object_foreach((json_t *)o, key, v) {
		for (k = 0; rule_keys[k] != NULL; k++)
			if (strcmp(rule_keys[k], key) == 0)
				break;
		if (rule_keys[k] == NULL)
			return sy_fail(err, "%s.%s: unknown condition; known: "
			    "min_prompt_tokens, max_prompt_tokens, "
			    "min_messages, max_messages, tools, images, "
			    "response_format, last_user, headers, metadata, "
			    "tenant",
			    path, key);
		conds += k > 0;
	}
	if (json_object_get(o, "model") == NULL)
		return sy_fail(err, "%s: \"model\" is required", path);
	snprintf(path + strlen(path), sizeof path - strlen(path), ".model");
	if (sy_select_model(route, path, json_string_value(json_object_get(o,
	    "model")), &r->model, err) == -1)
		return -1;
	path[strlen(path) - 6] = '\0';
	if (conds == 0)
		return sy_fail(err, "%s: a rule needs at least one condition "
		    "(use \"default\" for the model of every other request)",
		    path);
	if (rule_int(o, path, "min_prompt_tokens", &r->min_prompt, err) ||
	    rule_int(o, path, "max_prompt_tokens", &r->max_prompt, err) ||
	    rule_int(o, path, "min_messages", &r->min_messages, err) ||
	    rule_int(o, path, "max_messages", &r->max_messages, err) ||
	    rule_bool(o, path, "tools", &r->tools, err) ||
	    rule_bool(o, path, "images", &r->images, err) ||
	    rule_bool(o, path, "response_format", &r->response_format, err))
		return -1;
	if ((v = json_object_get(o, "last_user")) != NULL) {
		snprintf(path + strlen(path), sizeof path - strlen(path),
		    ".last_user");
		if (sy_select_regex(&r->last_user, path, v, err) == -1)
			return -1;
		r->has_last_user = 1;
		path[strlen(path) - 10] = '\0';
	}
	if (rule_matches(o, path, "headers", &r->headers, &r->nheaders,
	    err) == -1 ||
	    rule_matches(o, path, "metadata", &r->metadata, &r->nmetadata,
	    err) == -1 ||
	    rule_matches(o, path, "tenant", &r->tenant, &r->ntenant,
	    err) == -1)
		return -1;
	for (k = 0; k < r->ntenant; k++)
		if (strcmp(r->tenant[k].name, "key") != 0 &&
		    strcmp(r->tenant[k].name, "team") != 0 &&
		    strncmp(r->tenant[k].name, "metadata.", 9) != 0)
			return sy_fail(err, "%s.tenant.%s: unknown; known: key, "
			    "team, metadata.NAME", path, r->tenant[k].name);
	return 0;
}

static void *
rules_create(const json_t *params, const struct sy_route *route, char **err)
{
	struct rules_state *st;
	const json_t *arr, *def;
	size_t i;

	if (sy_params_check(params, "rules", rules_params, err) == -1 ||
	    sy_select_named(route, "rules", err) == -1)
		return NULL;
	arr = json_object_get(params, "rules");
	if (!json_is_array(arr) || json_array_size(arr) == 0 ||
	    json_array_size(arr) > MAX_RULES)
		return sy_policy_fail(err, ".rules: expected an array of 1 to "
		    "%d rules", MAX_RULES);
	st = sy_xcalloc(1, sizeof *st);
	st->rules = sy_xcalloc(json_array_size(arr), sizeof *st->rules);
	for (i = 0; i < json_array_size(arr); i++) {
		st->n++;
		if (rule_read(route, json_array_get(arr, i), i, &st->rules[i],
		    err) == -1)
			goto bad;
	}
	if ((def = json_object_get(params, "default")) != NULL &&
	    sy_select_model(route, ".default", json_string_value(def),
	    &st->def, err) == -1)
		goto bad;
	return st;
bad:
	rules_destroy(st);
	return NULL;
}

/* Whether the value of each named match (from get) matches its regex. */
static int
all_match(const struct match *m, size_t n, const struct sy_req *req,
    const char *(*get)(const struct sy_req *, const char *))
{
	const char *value;
	size_t i;

	for (i = 0; i < n; i++)
		if ((value = get(req, m[i].name)) == NULL ||
		    regexec(&m[i].re, value, 0, NULL, 0) != 0)
			return 0;
	return 1;
}

static const char *
header_of(const struct sy_req *req, const char *name)
{
	return req->head != NULL ? sy_http1_header(req->head, name) : NULL;
}

static const char *
metadata_of(const struct sy_req *req, const char *name)
{
	return json_string_value(json_object_get(json_object_get(
	    sy_req_body(req), "metadata"), name));
}

/* The request's key id, team, or a member of its key's metadata. */
static const char *
tenant_of(const struct sy_req *req, const char *name)
{
	if (strcmp(name, "key") == 0)
		return req->key_id;
	if (strcmp(name, "team") == 0)
		return req->team;
	if (req->key == NULL)
		return NULL;
	return json_string_value(json_object_get(req->key->metadata,
	    name + 9));
}

/* Whether a tri-state condition (-1: either) agrees with have. */
static int
tri(int want, int have)
{
	return want == -1 || want == (have != 0);
}

/* Whether req satisfies every condition of r; tokens is its estimate. */
static int
rule_matches_req(const struct rule *r, const struct sy_req *req,
    long long tokens)
{
	long long msgs;
	char *text;
	int ok;

	if ((r->min_prompt != -1 && tokens < r->min_prompt) ||
	    (r->max_prompt != -1 && tokens > r->max_prompt))
		return 0;
	msgs = (long long)sy_select_messages(req);
	if ((r->min_messages != -1 && msgs < r->min_messages) ||
	    (r->max_messages != -1 && msgs > r->max_messages))
		return 0;
	if (!tri(r->tools, sy_select_has_tools(req)) ||
	    !tri(r->images, sy_select_has_images(req)) ||
	    !tri(r->response_format, sy_select_has_response_format(req)))
		return 0;
	if (!all_match(r->headers, r->nheaders, req, header_of) ||
	    !all_match(r->metadata, r->nmetadata, req, metadata_of) ||
	    !all_match(r->tenant, r->ntenant, req, tenant_of))
		return 0;
	if (!r->has_last_user)
		return 1;
	text = sy_select_last_user(req);
	ok = regexec(&r->last_user, text, 0, NULL, 0) == 0;
	free(text);
	return ok;
}

static const char *
rules_select(void *state, const struct sy_route *route,
    const struct sy_req *req, const char **reason)
{
	struct rules_state *st = state;
	long long tokens = (long long)sy_select_prompt_tokens(req);
	size_t i;

	for (i = 0; i < st->n; i++) {
		if (rule_matches_req(&st->rules[i], req, tokens)) {
			*reason = st->rules[i].reason;
			return st->rules[i].model;
		}
	}
	if (st->def != NULL) {
		*reason = "default";
		return st->def;
	}
	return sy_select_alias.select(NULL, route, req, reason);
}

const struct sy_select_policy sy_select_rules = {
	.name = "rules",
	.create = rules_create,
	.select = rules_select,
	.destroy = rules_destroy
};
