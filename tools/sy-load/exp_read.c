/* sy-load experiment: reads and checks an experiment file, and builds each run's fleet and gateway configs from it. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "exp.h"

/* Most runs (variants x loads x repeats) an experiment may ask for. */
#define RUNS_MAX 500
/* Most replicas in a fleet (sy-sim's own bound). */
#define REPLICAS_MAX 1024

/* Sets *err to an allocated "file: path: message"; returns -1. */
static int
fail(char **err, const char *file, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
fail(char **err, const char *file, const char *path, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (asprintf(err, "%s: %s%s%s", file, path, *path ? ": " : "",
	    msg) < 0)
		*err = NULL;
	return -1;
}

/* Whether every key of o is in the NULL-terminated list known. */
static const char *
unknown_key(const json_t *o, const char *const *known)
{
	const char *k;
	json_t *v;
	size_t i;

	json_object_foreach((json_t *)o, k, v) {
		for (i = 0; known[i] != NULL; i++)
			if (strcmp(k, known[i]) == 0)
				break;
		if (known[i] == NULL)
			return k;
	}
	return NULL;
}

/*
 * Reads the number at key of o into *out, keeping *out when absent.
 * Returns 0, or -1 with *err set when it is not a number in [min, max].
 */
static int
number(const json_t *o, const char *key, double min, double max,
    double *out, const char *file, const char *at, char **err)
{
	json_t *v = json_object_get(o, key);
	char path[128];

	if (v == NULL)
		return 0;
	snprintf(path, sizeof path, "%s%s%s", at, *at ? "." : "", key);
	if (!json_is_number(v) || json_number_value(v) < min ||
	    json_number_value(v) > max)
		return fail(err, file, path, "must be a number from %g to %g",
		    min, max);
	*out = json_number_value(v);
	return 0;
}

/* A replica setting: the entry's, else the fleet defaults', else dflt. */
static json_t *
setting(const json_t *entry, const json_t *defaults, const char *key)
{
	json_t *v = json_object_get(entry, key);

	if (v == NULL && defaults != NULL)
		v = json_object_get(defaults, key);
	return v;
}

/* The backend "models" of a replica setting (array or "a,b"), or NULL. */
static json_t *
models_of(const json_t *v)
{
	json_t *arr;
	const char *s, *c;

	if (json_is_array(v))
		return json_deep_copy(v);
	if (!json_is_string(v))
		return NULL;
	arr = json_array();
	for (s = json_string_value(v); *s != '\0'; s = *c ? c + 1 : c) {
		c = s + strcspn(s, ",");
		if (c > s)
			json_array_append_new(arr, json_stringn(s,
			    (size_t)(c - s)));
	}
	return arr;
}

/*
 * Reads a fleet of real endpoints (fleet.endpoints): each a name, a url
 * and the lab's keys; no sy-sim is started for them.
 */
static int
read_endpoints(struct sy_exp *e, const json_t *fleet, char **err)
{
	static const char *const known[] = { "name", "url", "cost_per_hour",
	    "power_watts", "slots", "backend", NULL };
	const json_t *eps = json_object_get(fleet, "endpoints"), *ep, *v;
	const char *bad;
	char path[64];
	size_t i, k;

	if (json_object_size(fleet) != 1)
		return fail(err, e->path, "fleet", "a fleet of real endpoints "
		    "has only \"endpoints\"");
	if (!json_is_array(eps) || json_array_size(eps) == 0 ||
	    json_array_size(eps) > REPLICAS_MAX)
		return fail(err, e->path, "fleet.endpoints", "must be an array "
		    "of 1 to %d endpoints", REPLICAS_MAX);
	e->external = 1;
	e->replica_gw = json_array();
	e->reps = calloc(json_array_size(eps), sizeof *e->reps);
	if (e->reps == NULL)
		abort();
	json_array_foreach(eps, i, ep) {
		struct sy_exp_replica *r = &e->reps[i];
		json_t *gw;

		snprintf(path, sizeof path, "fleet.endpoints[%zu]", i);
		if (!json_is_object(ep))
			return fail(err, e->path, path, "must be an object");
		if ((bad = unknown_key(ep, known)) != NULL)
			return fail(err, e->path, path, "unknown key \"%s\" "
			    "(known: name, url, cost_per_hour, power_watts, "
			    "slots, backend)", bad);
		v = json_object_get(ep, "name");
		if (!json_is_string(v) || json_string_length(v) == 0 ||
		    json_string_length(v) >= sizeof r->name)
			return fail(err, e->path, path, "name: a string of 1 "
			    "to %zu characters", sizeof r->name - 1);
		snprintf(r->name, sizeof r->name, "%s", json_string_value(v));
		for (k = 0; k < i; k++)
			if (strcmp(e->reps[k].name, r->name) == 0)
				return fail(err, e->path, path, "two endpoints "
				    "named \"%s\"", r->name);
		v = json_object_get(ep, "url");
		if (!json_is_string(v) || (strncmp(json_string_value(v),
		    "http://", 7) != 0 && strncmp(json_string_value(v),
		    "https://", 8) != 0))
			return fail(err, e->path, path, "url: the endpoint's "
			    "base URL, http:// or https://");
		r->slots = 16;
		if (number(ep, "cost_per_hour", 0, 1e9, &r->cost_per_hour,
		    e->path, path, err) < 0 ||
		    number(ep, "power_watts", 0, 1e9, &r->power_watts, e->path,
		    path, err) < 0 ||
		    number(ep, "slots", 1, 65536, &r->slots, e->path, path,
		    err) < 0)
			return -1;
		gw = json_object_get(ep, "backend");
		if (gw != NULL && !json_is_object(gw))
			return fail(err, e->path, path, "backend: must be an "
			    "object (keys of the gateway's backend)");
		gw = gw != NULL ? json_deep_copy(gw) : json_object();
		json_object_set_new(gw, "url", json_string(json_string_value(v)));
		json_array_append_new(e->replica_gw, gw);
		e->nreps++;
	}
	return 0;
}

/*
 * Reads e's fleet: keeps a sy-sim config without the lab's own keys, and
 * one sy_exp_replica and gateway backend fragment per replica.
 */
static int
read_fleet(struct sy_exp *e, const json_t *fleet, char **err)
{
	static const char *const lab_keys[] = { "name", "power_watts",
	    "backend", NULL };
	const char *file = e->path;
	json_t *defaults, *replicas, *entry, *copy, *gw, *m, *v;
	char path[64];
	size_t i, j, count, k;
	double d;

	if (!json_is_object(fleet))
		return fail(err, file, "fleet", "must be an object (a sy-sim "
		    "config: defaults, replicas; or endpoints)");
	if (json_object_get(fleet, "endpoints") != NULL)
		return read_endpoints(e, fleet, err);
	e->fleet = json_deep_copy(fleet);
	e->replica_gw = json_array();
	defaults = json_object_get(e->fleet, "defaults");
	if (defaults != NULL && !json_is_object(defaults))
		return fail(err, file, "fleet.defaults", "must be an object");
	replicas = json_object_get(e->fleet, "replicas");
	if (!json_is_array(replicas) || json_array_size(replicas) == 0)
		return fail(err, file, "fleet.replicas",
		    "must be a non-empty array");
	if (defaults != NULL && json_object_get(defaults, "name") != NULL)
		return fail(err, file, "fleet.defaults.name",
		    "names belong to replicas");
	json_array_foreach(replicas, i, entry) {
		snprintf(path, sizeof path, "fleet.replicas[%zu]", i);
		if (!json_is_object(entry))
			return fail(err, file, path, "must be an object");
		if (json_object_get(entry, "port") != NULL)
			return fail(err, file, path, "port: the runner picks "
			    "free ports; leave it out");
		d = 1;
		if (number(entry, "count", 1, REPLICAS_MAX, &d, file, path,
		    err) < 0)
			return -1;
		count = (size_t)d;
		if (e->nreps + count > REPLICAS_MAX)
			return fail(err, file, "fleet.replicas",
			    "at most %d replicas", REPLICAS_MAX);
		v = json_object_get(entry, "name");
		if (v != NULL && (!json_is_string(v) ||
		    json_string_length(v) == 0 ||
		    json_string_length(v) > 40 ||
		    strspn(json_string_value(v), "abcdefghijklmnopqrstuvwxyz"
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") !=
		    json_string_length(v)))
			return fail(err, file, path, "name: 1 to 40 letters, "
			    "digits, _, . or -");
		gw = setting(entry, defaults, "backend");
		if (gw != NULL && !json_is_object(gw))
			return fail(err, file, path, "backend: must be an "
			    "object (keys of the gateway's backend)");
		e->reps = realloc(e->reps, (e->nreps + count) *
		    sizeof *e->reps);
		if (e->reps == NULL)
			abort();
		for (j = 0; j < count; j++) {
			struct sy_exp_replica *r = &e->reps[e->nreps];

			memset(r, 0, sizeof *r);
			if (v == NULL)
				snprintf(r->name, sizeof r->name, "r%zu",
				    e->nreps);
			else if (count == 1)
				snprintf(r->name, sizeof r->name, "%s",
				    json_string_value(v));
			else
				snprintf(r->name, sizeof r->name, "%s-%zu",
				    json_string_value(v), j);
			for (k = 0; k < e->nreps; k++)
				if (strcmp(e->reps[k].name, r->name) == 0)
					return fail(err, file, path, "two "
					    "replicas named \"%s\"", r->name);
			r->cost_per_hour = 1;
			r->slots = 16;
			if (number(defaults, "cost_per_hour", 0, 1e9,
			    &r->cost_per_hour, file, "fleet.defaults",
			    err) < 0 ||
			    number(entry, "cost_per_hour", 0, 1e9,
			    &r->cost_per_hour, file, path, err) < 0 ||
			    number(defaults, "power_watts", 0, 1e9,
			    &r->power_watts, file, "fleet.defaults",
			    err) < 0 ||
			    number(entry, "power_watts", 0, 1e9,
			    &r->power_watts, file, path, err) < 0 ||
			    number(defaults, "slots", 1, 65536, &r->slots,
			    file, "fleet.defaults", err) < 0 ||
			    number(entry, "slots", 1, 65536, &r->slots, file,
			    path, err) < 0)
				return -1;
			copy = gw != NULL ? json_deep_copy(gw) : json_object();
			m = models_of(setting(entry, defaults, "models"));
			if (m != NULL && json_object_get(copy, "models") ==
			    NULL)
				json_object_set_new(copy, "models", m);
			else
				json_decref(m);
			json_array_append_new(e->replica_gw, copy);
			e->nreps++;
		}
	}
	/* What sy-sim reads: every lab key gone. */
	for (k = 0; lab_keys[k] != NULL; k++) {
		if (defaults != NULL)
			json_object_del(defaults, lab_keys[k]);
		json_array_foreach(replicas, i, entry)
			json_object_del(entry, lab_keys[k]);
	}
	return 0;
}

/* Reads a JSON file relative to the experiment's directory. */
static json_t *
load_relative(const char *base, const char *name, char **err)
{
	json_error_t je;
	json_t *j;
	char *p;
	const char *slash = strrchr(base, '/');

	if (name[0] == '/' || slash == NULL)
		p = strdup(name);
	else if (asprintf(&p, "%.*s/%s", (int)(slash - base), base,
	    name) < 0)
		p = NULL;
	if (p == NULL)
		abort();
	j = json_load_file(p, JSON_REJECT_DUPLICATES, &je);
	if (j == NULL && asprintf(err, "%s:%d: %s", p, je.line, je.text) < 0)
		*err = NULL;
	free(p);
	return j;
}

/* Reads e's load levels from the array loads. */
static int
read_loads(struct sy_exp *e, const json_t *loads, char **err)
{
	static const char *const known[] = { "rate", "concurrency", NULL };
	json_t *l, *rate, *conc;
	char path[32];
	size_t i;
	double v;

	if (!json_is_array(loads) || json_array_size(loads) == 0)
		return fail(err, e->path, "loads", "must be a non-empty "
		    "array of {\"rate\": R} or {\"concurrency\": N}");
	e->nloads = json_array_size(loads);
	e->loads = calloc(e->nloads, sizeof *e->loads);
	if (e->loads == NULL)
		abort();
	json_array_foreach(loads, i, l) {
		snprintf(path, sizeof path, "loads[%zu]", i);
		if (!json_is_object(l) || unknown_key(l, known) != NULL)
			return fail(err, e->path, path, "must be {\"rate\": "
			    "R} or {\"concurrency\": N}");
		rate = json_object_get(l, "rate");
		conc = json_object_get(l, "concurrency");
		if ((rate == NULL) == (conc == NULL))
			return fail(err, e->path, path, "give one of rate "
			    "and concurrency");
		v = -1;
		if (number(l, "rate", 1e-3, 1e6, &v, e->path, path, err) < 0 ||
		    number(l, "concurrency", 1, 10000, &v, e->path, path,
		    err) < 0)
			return -1;
		if (conc != NULL && v != floor(v))
			return fail(err, e->path, path, "concurrency: a whole "
			    "number");
		e->loads[i].closed = conc != NULL;
		e->loads[i].value = v;
		snprintf(e->loads[i].label, sizeof e->loads[i].label, "%s %g",
		    conc != NULL ? "concurrency" : "rate", v);
	}
	return 0;
}

/* Reads e's variants: each a name and a gateway fragment. */
static int
read_variants(struct sy_exp *e, const json_t *variants, char **err)
{
	static const char *const known[] = { "name", "gateway", NULL };
	json_t *v, *name, *gw;
	const char *bad;
	char path[32];
	size_t i, j;

	if (!json_is_array(variants) || json_array_size(variants) == 0)
		return fail(err, e->path, "variants", "must be a non-empty "
		    "array of {\"name\": ..., \"gateway\": {...}}");
	e->variants = json_array();
	json_array_foreach(variants, i, v) {
		snprintf(path, sizeof path, "variants[%zu]", i);
		if (!json_is_object(v))
			return fail(err, e->path, path, "must be an object");
		if ((bad = unknown_key(v, known)) != NULL)
			return fail(err, e->path, path, "unknown key \"%s\" "
			    "(known: name, gateway)", bad);
		name = json_object_get(v, "name");
		if (!json_is_string(name) || json_string_length(name) == 0 ||
		    json_string_length(name) > 40 ||
		    strpbrk(json_string_value(name), ",\"<>&/\\\n") != NULL)
			return fail(err, e->path, path, "name: 1 to 40 "
			    "characters, none of , \" < > & / \\");
		for (j = 0; j < i; j++)
			if (strcmp(json_string_value(json_object_get(
			    json_array_get(e->variants, j), "name")),
			    json_string_value(name)) == 0)
				return fail(err, e->path, path, "name \"%s\" "
				    "is taken", json_string_value(name));
		gw = json_object_get(v, "gateway");
		if (gw != NULL && !json_is_object(gw))
			return fail(err, e->path, path, "gateway: must be an "
			    "object (a switchyard config fragment)");
		json_array_append_new(e->variants, json_pack("{s:O,s:o}",
		    "name", name, "gateway", gw != NULL ?
		    json_deep_copy(gw) : json_object()));
	}
	return 0;
}

int
sy_exp_read(struct sy_exp *e, const char *path, char **err)
{
	static const char *const known[] = { "name", "title", "published",
	    "fleet", "gateway", "workload", "variants", "loads", "warmup_s",
	    "duration_s", "requests", "timeout_s", "repeats", "slo", "energy",
	    "cost", "sweep", NULL };
	static const char *const slo_keys[] = { "ttft_ms", "itl_ms",
	    "latency_ms", NULL };
	json_error_t je;
	json_t *root, *v;
	const char *bad, *base;
	double d;
	int r = -1;

	memset(e, 0, sizeof *e);
	e->path = strdup(path);
	if (e->path == NULL)
		abort();
	root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	if (root == NULL) {
		if (asprintf(err, "%s:%d:%d: %s", path, je.line, je.column,
		    je.text) < 0)
			*err = NULL;
		return -1;
	}
	if (!json_is_object(root)) {
		fail(err, path, "", "an experiment is a JSON object");
		goto out;
	}
	if ((bad = unknown_key(root, known)) != NULL) {
		fail(err, path, bad, "unknown key (known: name, title, "
		    "published, fleet, gateway, workload, variants, loads, "
		    "warmup_s, duration_s, requests, timeout_s, repeats, slo, "
		    "energy, cost, sweep)");
		goto out;
	}
	base = strrchr(path, '/') != NULL ? strrchr(path, '/') + 1 : path;
	v = json_object_get(root, "name");
	if (v != NULL && !json_is_string(v)) {
		fail(err, path, "name", "must be a string");
		goto out;
	}
	e->name = v != NULL ? strdup(json_string_value(v)) :
	    strndup(base, strcspn(base, "."));
	v = json_object_get(root, "title");
	e->title = strdup(json_is_string(v) ? json_string_value(v) : e->name);
	v = json_object_get(root, "published");
	if (v != NULL && !json_is_string(v)) {
		fail(err, path, "published", "must be a string");
		goto out;
	}
	if (v != NULL)
		e->published = strdup(json_string_value(v));
	if (e->name == NULL || e->title == NULL)
		abort();

	if (read_fleet(e, json_object_get(root, "fleet"), err) < 0)
		goto out;
	v = json_object_get(root, "gateway");
	if (v != NULL && !json_is_object(v)) {
		fail(err, path, "gateway", "must be an object (a switchyard "
		    "config fragment)");
		goto out;
	}
	e->gateway = v != NULL ? json_deep_copy(v) : json_object();
	v = json_object_get(root, "workload");
	if (json_is_string(v)) {
		if ((e->workload = load_relative(path, json_string_value(v),
		    err)) == NULL)
			goto out;
	} else if (json_is_object(v))
		e->workload = json_deep_copy(v);
	if (!json_is_object(e->workload)) {
		fail(err, path, "workload", "must be a sy-load spec: an "
		    "object, or the name of a JSON file beside the experiment");
		goto out;
	}
	if (read_variants(e, json_object_get(root, "variants"), err) < 0 ||
	    read_loads(e, json_object_get(root, "loads"), err) < 0)
		goto out;

	e->warmup_s = 1;
	e->duration_s = 10;
	e->timeout_s = 60;
	d = 1;
	if (number(root, "warmup_s", 0, 600, &e->warmup_s, path, "",
	    err) < 0 ||
	    number(root, "duration_s", 0.1, 3600, &e->duration_s, path, "",
	    err) < 0 ||
	    number(root, "timeout_s", 1, 3600, &e->timeout_s, path, "",
	    err) < 0 ||
	    number(root, "requests", 1, 1e7, &e->requests, path, "", err) < 0 ||
	    number(root, "repeats", 1, 20, &d, path, "", err) < 0)
		goto out;
	if (e->requests != floor(e->requests) || d != floor(d)) {
		fail(err, path, "repeats", "requests and repeats are whole "
		    "numbers");
		goto out;
	}
	e->repeats = (unsigned)d;
	if (json_array_size(e->variants) * e->nloads * e->repeats > RUNS_MAX) {
		fail(err, path, "", "%zu runs (variants x loads x repeats); at "
		    "most %d", json_array_size(e->variants) * e->nloads *
		    e->repeats, RUNS_MAX);
		goto out;
	}

	v = json_object_get(root, "slo");
	if (v != NULL && (!json_is_object(v) ||
	    (bad = unknown_key(v, slo_keys)) != NULL)) {
		fail(err, path, "slo", "must be an object of ttft_ms, itl_ms, "
		    "latency_ms");
		goto out;
	}
	if (number(v, "ttft_ms", 0.001, 1e9, &e->slo_ttft_ms, path, "slo",
	    err) < 0 ||
	    number(v, "itl_ms", 0.001, 1e9, &e->slo_itl_ms, path, "slo",
	    err) < 0 ||
	    number(v, "latency_ms", 0.001, 1e9, &e->slo_latency_ms, path,
	    "slo", err) < 0)
		goto out;

	e->idle_power_share = 0.3;
	v = json_object_get(root, "energy");
	if (v != NULL && (!json_is_object(v) || json_object_size(v) !=
	    (json_object_get(v, "idle_share") != NULL))) {
		fail(err, path, "energy", "must be {\"idle_share\": 0..1}");
		goto out;
	}
	if (number(v, "idle_share", 0, 1, &e->idle_power_share, path,
	    "energy", err) < 0)
		goto out;

	v = json_object_get(root, "cost");
	if (v != NULL && (!json_is_string(v) ||
	    (strcmp(json_string_value(v), "hourly") != 0 &&
	    strcmp(json_string_value(v), "prices") != 0 &&
	    strcmp(json_string_value(v), "gateway") != 0))) {
		fail(err, path, "cost", "must be \"hourly\" (the replicas' "
		    "cost_per_hour), \"prices\" (the gateway's prices per "
		    "token) or \"gateway\" (the gateway's self-hosted "
		    "accounting)");
		goto out;
	}
	e->cost_basis = v == NULL ? SY_EXP_COST_HOURLY :
	    strcmp(json_string_value(v), "prices") == 0 ? SY_EXP_COST_PRICES :
	    strcmp(json_string_value(v), "gateway") == 0 ?
	    SY_EXP_COST_GATEWAY : SY_EXP_COST_HOURLY;
	v = json_object_get(root, "sweep");
	if (v != NULL && !json_is_boolean(v)) {
		fail(err, path, "sweep", "must be true or false");
		goto out;
	}
	e->sweep = json_is_true(v);
	if (e->sweep && e->slo_ttft_ms == 0 && e->slo_itl_ms == 0 &&
	    e->slo_latency_ms == 0) {
		fail(err, path, "sweep", "a sweep needs an slo to break");
		goto out;
	}
	r = 0;
out:
	json_decref(root);
	return r;
}

void
sy_exp_free(struct sy_exp *e)
{
	free(e->path);
	free(e->name);
	free(e->title);
	free(e->published);
	json_decref(e->fleet);
	json_decref(e->replica_gw);
	json_decref(e->gateway);
	json_decref(e->variants);
	json_decref(e->workload);
	free(e->reps);
	free(e->loads);
	memset(e, 0, sizeof *e);
}

void
sy_exp_merge(json_t *dst, const json_t *fragment)
{
	const char *k;
	json_t *v, *d;

	json_object_foreach((json_t *)fragment, k, v) {
		d = json_object_get(dst, k);
		if (json_is_object(d) && json_is_object(v))
			sy_exp_merge(d, v);
		else
			json_object_set_new(dst, k, json_deep_copy(v));
	}
}

/*
 * Merges fragment over c, where two keys of a fragment are the runner's
 * own: "backend" merges into every backend and "route" into every route.
 */
static void
merge_fragment(json_t *c, const json_t *fragment)
{
	json_t *copy = json_deep_copy(fragment), *each, *route, *item;
	size_t i;

	each = json_incref(json_object_get(copy, "backend"));
	json_object_del(copy, "backend");
	route = json_incref(json_object_get(copy, "route"));
	json_object_del(copy, "route");
	sy_exp_merge(c, copy);
	json_decref(copy);
	if (json_is_object(each))
		json_array_foreach(json_object_get(c, "backends"), i, item)
			sy_exp_merge(item, each);
	if (json_is_object(route))
		json_array_foreach(json_object_get(c, "routes"), i, item)
			sy_exp_merge(item, route);
	json_decref(each);
	json_decref(route);
}

/*
 * The models of the default route: every model the replicas name, when
 * each names some (so that each model goes to its own replicas), else
 * ["*"].
 */
static json_t *
fleet_models(const struct sy_exp *e)
{
	json_t *all = json_array(), *m, *name, *have;
	size_t i, j, k;

	for (i = 0; i < e->nreps; i++) {
		m = json_object_get(json_array_get(e->replica_gw, i), "models");
		if (json_array_size(m) == 0) {
			json_decref(all);
			return json_pack("[s]", "*");
		}
		json_array_foreach(m, j, name) {
			json_array_foreach(all, k, have)
				if (json_equal(have, name))
					break;
			if (k == json_array_size(all))
				json_array_append(all, name);
		}
	}
	return all;
}

json_t *
sy_exp_gateway_config(const struct sy_exp *e, const json_t *variant,
    int listen_port, int admin_port, int sim_port, const char *access_log)
{
	json_t *c, *backends, *b;
	char addr[64], url[96];
	size_t i;

	backends = json_array();
	for (i = 0; i < e->nreps; i++) {
		snprintf(url, sizeof url, "http://127.0.0.1:%d/v1",
		    sim_port + (int)i);
		b = json_pack("{s:s,s:s}", "name", e->reps[i].name, "url", url);
		/* A real endpoint's url is among its own keys. */
		sy_exp_merge(b, json_array_get(e->replica_gw, i));
		json_array_append_new(backends, b);
	}
	c = json_object();
	snprintf(addr, sizeof addr, "127.0.0.1:%d", listen_port);
	json_object_set_new(c, "listen", json_string(addr));
	snprintf(addr, sizeof addr, "127.0.0.1:%d", admin_port);
	json_object_set_new(c, "admin", json_string(addr));
	json_object_set_new(c, "workers", json_integer(1));
	json_object_set_new(c, "access_log", json_string(access_log));
	json_object_set_new(c, "timeouts", json_pack("{s:i}", "drain_ms",
	    2000));
	json_object_set_new(c, "backends", backends);
	json_object_set_new(c, "routes", json_pack("[{s:s,s:o}]", "name",
	    "default", "models", fleet_models(e)));
	merge_fragment(c, e->gateway);
	merge_fragment(c, json_object_get(variant, "gateway"));
	return c;
}

json_t *
sy_exp_fleet_config(const struct sy_exp *e, int sim_port)
{
	json_t *c = json_deep_copy(e->fleet), *entry;
	size_t i;
	int port = sim_port;

	json_object_set_new(c, "host", json_string("127.0.0.1"));
	json_array_foreach(json_object_get(c, "replicas"), i, entry) {
		json_t *n = json_object_get(entry, "count");

		json_object_set_new(entry, "port", json_integer(port));
		port += n != NULL ? (int)json_number_value(n) : 1;
	}
	return c;
}
