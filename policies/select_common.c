/* Building blocks shared by the model-selection policies: request features, candidate models, regexes, answers. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "canon.h"
#include "config.h"
#include "outlier.h"
#include "policy.h"
#include "req.h"
#include "select.h"
#include "util.h"

/* ==== Request features ==== */

/* The bytes of the text in v: a string, or an array of strings and text parts. */
static size_t
text_bytes(const json_t *v)
{
	const json_t *e, *t;
	size_t i, n = 0;

	if (json_is_string(v))
		return json_string_length(v);
	json_array_foreach(v, i, e) {
		if (json_is_string(e))
			n += json_string_length(e);
		else if ((t = json_object_get(e, "text")) != NULL &&
		    json_is_string(t))
			n += json_string_length(t);
	}
	return n;
}

uint64_t
sy_select_prompt_tokens(const struct sy_req *req)
{
	const json_t *body = sy_req_body(req), *m;
	size_t i, bytes = 0;

	if (body == NULL)
		return 0;
	json_array_foreach(json_object_get(body, "messages"), i, m)
		bytes += text_bytes(json_object_get(m, "content"));
	bytes += text_bytes(json_object_get(body, "prompt"));
	bytes += text_bytes(json_object_get(body, "input"));
	return (bytes + 3) / 4;
}

size_t
sy_select_messages(const struct sy_req *req)
{
	return json_array_size(json_object_get(sy_req_body(req), "messages"));
}

int
sy_select_has_tools(const struct sy_req *req)
{
	const json_t *body = sy_req_body(req);

	return json_array_size(json_object_get(body, "tools")) > 0 ||
	    json_array_size(json_object_get(body, "functions")) > 0;
}

int
sy_select_has_images(const struct sy_req *req)
{
	const json_t *m, *part;
	const char *type;
	size_t i, j;

	json_array_foreach(json_object_get(sy_req_body(req), "messages"), i, m) {
		json_array_foreach(json_object_get(m, "content"), j, part) {
			type = json_string_value(json_object_get(part, "type"));
			if (type != NULL && (strcmp(type, "image_url") == 0 ||
			    strcmp(type, "image") == 0 ||
			    strcmp(type, "input_image") == 0))
				return 1;
		}
	}
	return 0;
}

/* The type of req's response_format, or NULL when it sets none. */
static const char *
response_format_type(const struct sy_req *req)
{
	const json_t *rf = json_object_get(sy_req_body(req), "response_format");

	return json_string_value(json_object_get(rf, "type"));
}

int
sy_select_has_response_format(const struct sy_req *req)
{
	const char *type = response_format_type(req);

	return type != NULL && strcmp(type, "text") != 0;
}

int
sy_select_wants_json(const struct sy_req *req)
{
	const char *type = response_format_type(req);

	return type != NULL && (strcmp(type, "json_object") == 0 ||
	    strcmp(type, "json_schema") == 0);
}

int
sy_select_model_up(const struct sy_route *route, const char *model)
{
	const struct sy_pool *pool = sy_route_pool(route, model);
	const struct sy_endpoint *ep;
	size_t i;

	for (i = 0; pool != NULL && i < pool->nendpoints; i++) {
		ep = pool->endpoints[i];
		if (ep->weight > 0 && !atomic_load(&ep->stats->unhealthy) &&
		    !sy_outlier_ejected(ep))
			return 1;
	}
	return 0;
}

uint64_t
sy_select_max_tokens(const struct sy_req *req)
{
	return (uint64_t)req->max_tokens;
}

/* out's bytes as a malloc'd string (NUL bytes end it early); frees out. */
static char *
take_string(struct evbuffer *out)
{
	size_t len = evbuffer_get_length(out);
	char *s = sy_xmalloc(len + 1);

	evbuffer_remove(out, s, len);
	s[len] = '\0';
	evbuffer_free(out);
	return s;
}

char *
sy_select_last_user(const struct sy_req *req)
{
	const json_t *body = sy_req_body(req), *msgs, *m, *last = NULL;
	struct evbuffer *out = evbuffer_new();
	size_t i;

	msgs = json_object_get(body, "messages");
	json_array_foreach(msgs, i, m)
		if (json_is_string(json_object_get(m, "role")) &&
		    strcmp(json_string_value(json_object_get(m, "role")),
		    "user") == 0)
			last = json_object_get(m, "content");
	if (msgs == NULL)
		last = json_object_get(body, "prompt");
	if (last != NULL)
		sy_canon_text(out, last);
	return take_string(out);
}

/* ==== The pipeline's questions ==== */

const char *
sy_select_next(const struct sy_req *req)
{
	const struct sy_select_policy *sp = req->route->selection;

	if (sp->next == NULL || sp->check == NULL)
		return NULL;
	return sp->next(req->route->selection_state, req->model);
}

/* ==== Parameters ==== */

int
sy_select_named(const struct sy_route *route, const char *policy,
    char **err)
{
	if (route->wildcard)
		return sy_fail(err, "%s needs a route that names its models, "
		    "not a wildcard route", policy);
	return 0;
}

int
sy_select_model(const struct sy_route *route, const char *path,
    const char *name, const char **model, char **err)
{
	char served[256];
	size_t i, n = 0;

	if (name == NULL)
		return sy_fail(err, "%s: expected a model name", path);
	for (i = 0; i < route->nmodels; i++) {
		if (strcmp(route->models[i], name) == 0) {
			*model = route->models[i];
			return 0;
		}
	}
	served[0] = '\0';
	for (i = 0; i < route->nmodels && n < sizeof served; i++)
		n += (size_t)snprintf(served + n, sizeof served - n, "%s%s",
		    i ? ", " : "", route->models[i]);
	return sy_fail(err, "%s: \"%s\" is not a served model of route \"%s\"; "
	    "served: %s", path, name, route->name, served);
}

int
sy_select_models(const json_t *params, const char *key,
    const struct sy_route *route, size_t min, const char ***models,
    size_t *n, char **err)
{
	const json_t *arr = json_object_get(params, key), *v;
	const char **list;
	char path[64];
	size_t i, j;

	*models = NULL;
	*n = 0;
	if (arr == NULL) {
		if (route->nmodels < min)
			return sy_fail(err, ".%s: required: list at least %zu "
			    "served models of the route", key, min);
		list = sy_xcalloc(route->nmodels, sizeof *list);
		for (i = 0; i < route->nmodels; i++)
			list[i] = route->models[i];
		*models = list;
		*n = route->nmodels;
		return 0;
	}
	if (!json_is_array(arr) || json_array_size(arr) < min)
		return sy_fail(err, ".%s: expected an array of at least %zu "
		    "served models", key, min);
	list = sy_xcalloc(json_array_size(arr), sizeof *list);
	json_array_foreach(arr, i, v) {
		snprintf(path, sizeof path, ".%s[%zu]", key, i);
		if (sy_select_model(route, path, json_string_value(v), &list[i],
		    err) == -1)
			goto bad;
		for (j = 0; j < i; j++)
			if (list[j] == list[i]) {
				sy_fail(err, "%s: \"%s\" is listed twice", path,
				    list[i]);
				goto bad;
			}
	}
	*models = list;
	*n = json_array_size(arr);
	return 0;
bad:
	free(list);
	return -1;
}

int
sy_select_regex(regex_t *re, const char *path, const json_t *v, char **err)
{
	char msg[256];
	int rc;

	if (!json_is_string(v) || json_string_length(v) == 0)
		return sy_fail(err, "%s: expected a regular expression (a "
		    "non-empty string)", path);
	if ((rc = regcomp(re, json_string_value(v), REG_EXTENDED |
	    REG_NOSUB)) != 0) {
		regerror(rc, re, msg, sizeof msg);
		return sy_fail(err, "%s: bad regular expression \"%s\": %s",
		    path, json_string_value(v), msg);
	}
	return 0;
}
