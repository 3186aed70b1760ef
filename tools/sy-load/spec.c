/* sy-load: reads and checks the JSON workload spec and the JSONL trace, reporting file:line and the JSON path. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "load.h"

/* Largest token count or think time (ms) a distribution may give. */
#define DIST_MAX 10000000.0

/* The spec being read: its file, its text (for lines), its first error. */
struct reader {
	const char *file;
	const char *text;
	size_t len;
	unsigned line0;		/* line of the text's start, less one */
	char *err;
};

/* ==== Finding the line of a JSON path ==== */

/* Walks a JSON text (already known to be valid) looking for one path. */
struct locator {
	const char *p, *end;
	unsigned line;
	const char *target;
	unsigned found;			/* target's line, 0: unseen */
	char path[512];
};

/* Skips blanks, counting lines. */
static void
loc_blank(struct locator *l)
{
	while (l->p < l->end && (*l->p == ' ' || *l->p == '\t' ||
	    *l->p == '\n' || *l->p == '\r')) {
		if (*l->p == '\n')
			l->line++;
		l->p++;
	}
}

/* Skips a string at p, returning its raw inside in *s and *n. */
static void
loc_string(struct locator *l, const char **s, size_t *n)
{
	l->p++;
	*s = l->p;
	while (l->p < l->end && *l->p != '"') {
		if (*l->p == '\\')
			l->p++;
		l->p++;
	}
	*n = (size_t)(l->p - *s);
	l->p++;
}

/* Walks the value at p, whose path is l->path[0..plen). */
static void
loc_value(struct locator *l, size_t plen)
{
	const char *key;
	size_t n, index = 0;
	int len;

	loc_blank(l);
	l->path[plen] = '\0';
	if (l->found || l->p >= l->end)
		return;
	if (strcmp(l->path, l->target) == 0) {
		l->found = l->line;
		return;
	}
	switch (*l->p) {
	case '{':
		l->p++;
		for (;;) {
			loc_blank(l);
			if (l->p >= l->end || *l->p != '"')
				break;
			loc_string(l, &key, &n);
			loc_blank(l);
			l->p++;		/* the colon */
			len = snprintf(l->path + plen, sizeof l->path - plen,
			    "%s%.*s", plen ? "." : "", (int)n, key);
			if (len < 0 || (size_t)len >= sizeof l->path - plen)
				return;
			loc_value(l, plen + (size_t)len);
			if (l->found)
				return;
			loc_blank(l);
			if (l->p < l->end && *l->p == ',')
				l->p++;
		}
		l->p++;
		break;
	case '[':
		l->p++;
		for (;;) {
			loc_blank(l);
			if (l->p >= l->end || *l->p == ']')
				break;
			len = snprintf(l->path + plen, sizeof l->path - plen,
			    "[%zu]", index++);
			if (len < 0 || (size_t)len >= sizeof l->path - plen)
				return;
			loc_value(l, plen + (size_t)len);
			if (l->found)
				return;
			loc_blank(l);
			if (l->p < l->end && *l->p == ',')
				l->p++;
		}
		l->p++;
		break;
	case '"':
		loc_string(l, &key, &n);
		break;
	default:
		while (l->p < l->end && strchr(",]} \t\r\n", *l->p) == NULL)
			l->p++;
	}
}

/* The line where the value at path starts in the text of rd, 0 if unknown. */
static unsigned
locate(const struct reader *rd, const char *path)
{
	struct locator l;

	memset(&l, 0, sizeof l);
	l.p = rd->text;
	l.end = rd->text + rd->len;
	l.line = 1;
	l.target = path;
	loc_value(&l, 0);
	return l.found;
}

/* Records the first error: "file:line: path: message". Returns -1. */
static int
fail(struct reader *rd, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
fail(struct reader *rd, const char *path, const char *fmt, ...)
{
	char msg[512], where[64] = "";
	unsigned line;
	va_list ap;

	if (rd->err != NULL)
		return -1;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if ((line = locate(rd, path)) > 0)
		snprintf(where, sizeof where, ":%u", rd->line0 + line);
	if (asprintf(&rd->err, "%s%s: %s%s%s", rd->file, where, path,
	    *path != '\0' ? ": " : "", msg) < 0)
		abort();
	return -1;
}

/* ==== Values ==== */

/* Joins path and key into buf ("a.b", or "b" at the top). */
static const char *
join(char *buf, size_t len, const char *path, const char *key)
{
	snprintf(buf, len, "%s%s%s", path, *path ? "." : "", key);
	return buf;
}

/* Checks that object v (at path) has only the keys in known. */
static int
only_keys(struct reader *rd, const char *path, const json_t *v,
    const char *const *known)
{
	char sub[512], list[512];
	const char *key;
	json_t *x;
	size_t i, off;

	json_object_foreach((json_t *)v, key, x) {
		for (i = 0; known[i] != NULL; i++)
			if (strcmp(key, known[i]) == 0)
				break;
		if (known[i] != NULL)
			continue;
		for (off = 0, i = 0; known[i] != NULL && off < sizeof list; i++)
			off += (size_t)snprintf(list + off, sizeof list - off,
			    "%s%s", i ? ", " : "", known[i]);
		return fail(rd, join(sub, sizeof sub, path, key),
		    "unknown key (known: %s)", list);
	}
	return 0;
}

/* Reads the number v (at path) into *out, which must lie in [min, max]. */
static int
number(struct reader *rd, const char *path, const json_t *v, double min,
    double max, double *out)
{
	if (!json_is_number(v))
		return fail(rd, path, "expected a number");
	*out = json_number_value(v);
	if (*out < min || *out > max)
		return fail(rd, path, "%.15g is out of range [%.15g, %.15g]",
		    *out, min, max);
	return 0;
}

/* Reads the integer v (at path) into *out, which must lie in [min, max]. */
static int
integer(struct reader *rd, const char *path, const json_t *v, double min,
    double max, double *out)
{
	if (number(rd, path, v, min, max, out) < 0)
		return -1;
	if (*out != floor(*out))
		return fail(rd, path, "expected a whole number");
	return 0;
}

/* Reads optional member key of o (at path) as a number in [min, max]. */
static int
opt_number(struct reader *rd, const char *path, const json_t *o,
    const char *key, double min, double max, double *out)
{
	const json_t *v = json_object_get(o, key);
	char sub[512];

	if (v == NULL)
		return 0;
	return number(rd, join(sub, sizeof sub, path, key), v, min, max, out);
}

/* Reads required member key of o (at path) as a number in [min, max]. */
static int
req_number(struct reader *rd, const char *path, const json_t *o,
    const char *key, double min, double max, double *out)
{
	if (json_object_get(o, key) == NULL)
		return fail(rd, path, "\"%s\" is required", key);
	return opt_number(rd, path, o, key, min, max, out);
}

/*
 * Reads a distribution at path: a whole number (fixed) or an object
 * {"dist": kind, ...}.  Its draws stay within [floor_value, ceiling].
 */
static int
dist(struct reader *rd, const char *path, const json_t *v,
    struct sy_load_dist *d, double floor_value, double ceiling)
{
	static const char *const fixed_keys[] = { "dist", "value", NULL };
	static const char *const uniform_keys[] = { "dist", "min", "max",
	    NULL };
	static const char *const normal_keys[] = { "dist", "mean", "stddev",
	    "min", "max", NULL };
	static const char *const exp_keys[] = { "dist", "mean", "min", "max",
	    NULL };
	const char *kind;
	char sub[512];
	double s2;

	memset(d, 0, sizeof *d);
	d->min = floor_value;
	d->max = ceiling;
	if (json_is_number(v)) {
		d->kind = SY_LOAD_FIXED;
		return integer(rd, path, v, floor_value, ceiling, &d->value);
	}
	if (!json_is_object(v))
		return fail(rd, path, "expected a whole number or "
		    "{\"dist\": ...}");
	kind = json_string_value(json_object_get(v, "dist"));
	if (kind == NULL)
		return fail(rd, path, "\"dist\" is required: fixed, uniform, "
		    "normal, lognormal or exponential");
	if (strcmp(kind, "fixed") == 0) {
		d->kind = SY_LOAD_FIXED;
		if (only_keys(rd, path, v, fixed_keys) < 0 ||
		    json_object_get(v, "value") == NULL)
			return fail(rd, path, "\"value\" is required");
		return integer(rd, join(sub, sizeof sub, path, "value"),
		    json_object_get(v, "value"), floor_value, ceiling,
		    &d->value);
	}
	if (strcmp(kind, "uniform") == 0) {
		d->kind = SY_LOAD_UNIFORM;
		if (only_keys(rd, path, v, uniform_keys) < 0 ||
		    req_number(rd, path, v, "min", floor_value, ceiling,
		    &d->min) < 0 ||
		    req_number(rd, path, v, "max", floor_value, ceiling,
		    &d->max) < 0)
			return -1;
		d->min = ceil(d->min);
		d->max = floor(d->max);
		if (d->max < d->min)
			return fail(rd, join(sub, sizeof sub, path, "max"),
			    "max is below min");
		return 0;
	}
	if (strcmp(kind, "normal") == 0 || strcmp(kind, "lognormal") == 0) {
		d->kind = kind[0] == 'n' ? SY_LOAD_NORMAL : SY_LOAD_LOGNORMAL;
		if (only_keys(rd, path, v, normal_keys) < 0 ||
		    req_number(rd, path, v, "mean", d->kind == SY_LOAD_NORMAL ?
		    -ceiling : 1e-9, ceiling, &d->mean) < 0 ||
		    req_number(rd, path, v, "stddev", 0, ceiling,
		    &d->stddev) < 0)
			return -1;
		if (d->kind == SY_LOAD_LOGNORMAL) {
			s2 = log(1.0 + (d->stddev / d->mean) *
			    (d->stddev / d->mean));
			d->sigma = sqrt(s2);
			d->mu = log(d->mean) - s2 / 2.0;
		}
	} else if (strcmp(kind, "exponential") == 0) {
		d->kind = SY_LOAD_EXPONENTIAL;
		if (only_keys(rd, path, v, exp_keys) < 0 ||
		    req_number(rd, path, v, "mean", 1e-9, ceiling,
		    &d->mean) < 0)
			return -1;
	} else
		return fail(rd, join(sub, sizeof sub, path, "dist"),
		    "unknown distribution \"%s\" (known: fixed, uniform, "
		    "normal, lognormal, exponential)", kind);
	if (opt_number(rd, path, v, "min", floor_value, ceiling,
	    &d->min) < 0 ||
	    opt_number(rd, path, v, "max", floor_value, ceiling,
	    &d->max) < 0)
		return -1;
	if (d->max < d->min)
		return fail(rd, join(sub, sizeof sub, path, "max"),
		    "max is below min");
	return 0;
}

/* ==== The spec's sections ==== */

/* Reads "models": [{"name", "weight"}, ...]. */
static int
spec_models(struct reader *rd, struct sy_load_spec *spec, const json_t *v)
{
	static const char *const keys[] = { "name", "weight", NULL };
	const json_t *m;
	const char *name;
	char path[64];
	double weight;
	size_t i;
	int k;

	if (!json_is_array(v) || json_array_size(v) == 0)
		return fail(rd, "models", "expected a non-empty array of "
		    "{\"name\", \"weight\"}");
	json_array_foreach(v, i, m) {
		snprintf(path, sizeof path, "models[%zu]", i);
		if (!json_is_object(m))
			return fail(rd, path,
			    "expected {\"name\", \"weight\"}");
		if (only_keys(rd, path, m, keys) < 0)
			return -1;
		name = json_string_value(json_object_get(m, "name"));
		if (name == NULL || *name == '\0')
			return fail(rd, path, "\"name\" is required "
			    "(a non-empty string)");
		weight = 1;
		if (opt_number(rd, path, m, "weight", 0, 1e12, &weight) < 0)
			return -1;
		if (weight <= 0)
			return fail(rd, path, "weight must be above 0");
		k = sy_load_spec_model(spec, name);
		if (spec->models[k].weight > 0)
			return fail(rd, path, "model \"%s\" is listed twice",
			    name);
		spec->models[k].weight = weight;
	}
	return 0;
}

/* Reads "prefix_groups": {"count", "tokens", "shots", "shot_tokens"}. */
static int
spec_prefix(struct reader *rd, struct sy_load_spec *spec, const json_t *v)
{
	static const char *const keys[] = { "count", "tokens", "shots",
	    "shot_tokens", NULL };
	double count, tokens, shots = 0, shot_tokens = 32;

	if (!json_is_object(v))
		return fail(rd, "prefix_groups", "expected an object");
	if (only_keys(rd, "prefix_groups", v, keys) < 0 ||
	    req_number(rd, "prefix_groups", v, "count", 1, 100000,
	    &count) < 0 ||
	    req_number(rd, "prefix_groups", v, "tokens", 0, 1000000,
	    &tokens) < 0 ||
	    opt_number(rd, "prefix_groups", v, "shots", 0, 1000, &shots) < 0 ||
	    opt_number(rd, "prefix_groups", v, "shot_tokens", 1, 1000000,
	    &shot_tokens) < 0)
		return -1;
	spec->prefix_count = (unsigned)count;
	spec->prefix_tokens = (unsigned)tokens;
	spec->shots = (unsigned)shots;
	spec->shot_tokens = (unsigned)shot_tokens;
	if (tokens == 0 && shots == 0)
		return fail(rd, "prefix_groups",
		    "a group needs tokens or shots");
	return 0;
}

/* Reads "sessions": {"turns", "think_time_ms"}. */
static int
spec_sessions(struct reader *rd, struct sy_load_spec *spec, const json_t *v)
{
	static const char *const keys[] = { "turns", "think_time_ms", NULL };
	const json_t *x;

	if (!json_is_object(v))
		return fail(rd, "sessions", "expected an object");
	if (only_keys(rd, "sessions", v, keys) < 0)
		return -1;
	if ((x = json_object_get(v, "turns")) == NULL)
		return fail(rd, "sessions", "\"turns\" is required");
	if (dist(rd, "sessions.turns", x, &spec->turns, 1, 65535) < 0)
		return -1;
	if ((x = json_object_get(v, "think_time_ms")) != NULL &&
	    dist(rd, "sessions.think_time_ms", x, &spec->think_ms, 0,
	    DIST_MAX) < 0)
		return -1;
	spec->sessions = 1;
	return 0;
}

/* Reads "headers": {"name": "value" or ["value", ...]}. */
static int
spec_headers(struct reader *rd, struct sy_load_spec *spec, const json_t *v)
{
	struct sy_load_header *h;
	const json_t *x, *e;
	const char *name, *why;
	char path[512];
	size_t i;

	if (!json_is_object(v))
		return fail(rd, "headers", "expected an object of "
		    "\"name\": \"value\"");
	spec->headers = calloc(json_object_size(v) + 1, sizeof *spec->headers);
	if (spec->headers == NULL)
		abort();
	json_object_foreach((json_t *)v, name, x) {
		join(path, sizeof path, "headers", name);
		why = sy_load_header_name_error(name, strlen(name));
		if (why != NULL)
			return fail(rd, path, "%s", why);
		h = &spec->headers[spec->nheaders++];
		h->name = strdup(name);
		if (json_is_string(x)) {
			h->values = calloc(1, sizeof *h->values);
			if (h->values == NULL || h->name == NULL)
				abort();
			h->values[h->nvalues++] = strdup(json_string_value(x));
		} else if (json_is_array(x) && json_array_size(x) > 0) {
			h->values = calloc(json_array_size(x),
			    sizeof *h->values);
			if (h->values == NULL || h->name == NULL)
				abort();
			json_array_foreach(x, i, e) {
				if (!json_is_string(e))
					return fail(rd, path, "expected "
					    "strings");
				h->values[h->nvalues++] =
				    strdup(json_string_value(e));
			}
		} else
			return fail(rd, path, "expected a string or a "
			    "non-empty array of strings");
		for (i = 0; i < h->nvalues; i++) {
			if (h->values[i] == NULL)
				abort();
			if (!sy_load_header_value_ok(h->values[i]))
				return fail(rd, path, "control characters "
				    "are not allowed in a header value");
		}
	}
	return 0;
}

/* Reads "slo": {"ttft_ms", "itl_ms", "latency_ms"}. */
static int
spec_slo(struct reader *rd, struct sy_load_spec *spec, const json_t *v)
{
	static const char *const keys[] = { "ttft_ms", "itl_ms", "latency_ms",
	    NULL };

	if (!json_is_object(v))
		return fail(rd, "slo", "expected an object");
	if (only_keys(rd, "slo", v, keys) < 0 ||
	    opt_number(rd, "slo", v, "ttft_ms", 1e-3, 1e9,
	    &spec->slo_ttft_ms) < 0 ||
	    opt_number(rd, "slo", v, "itl_ms", 1e-3, 1e9,
	    &spec->slo_itl_ms) < 0 ||
	    opt_number(rd, "slo", v, "latency_ms", 1e-3, 1e9,
	    &spec->slo_latency_ms) < 0)
		return -1;
	return 0;
}

/* Reads the top-level object of a spec. */
static int
spec_root(struct reader *rd, struct sy_load_spec *spec, const json_t *root)
{
	static const char *const keys[] = { "api", "model", "models",
	    "prompt_tokens", "output_tokens", "prefix_groups", "sessions",
	    "stream_fraction", "headers", "slo", "ignore_eos", "seed",
	    "distinct_prompts", "max_tokens", NULL };
	const json_t *v;
	const char *s;
	double x;

	if (!json_is_object(root))
		return fail(rd, "", "a spec is a JSON object");
	if (only_keys(rd, "", root, keys) < 0)
		return -1;
	if ((v = json_object_get(root, "api")) != NULL) {
		s = json_string_value(v);
		if (s == NULL || sy_load_api_parse(s, &spec->api) < 0)
			return fail(rd, "api", "expected \"chat\", "
			    "\"completions\", \"embeddings\" or \"anthropic\"");
	}
	if (json_object_get(root, "model") != NULL &&
	    json_object_get(root, "models") != NULL)
		return fail(rd, "models", "give \"model\" or \"models\", "
		    "not both");
	if ((v = json_object_get(root, "model")) != NULL) {
		s = json_string_value(v);
		if (s == NULL || *s == '\0')
			return fail(rd, "model", "expected a non-empty string");
		free(spec->models[0].name);
		spec->models[0].name = strdup(s);
		if (spec->models[0].name == NULL)
			abort();
	}
	if ((v = json_object_get(root, "models")) != NULL) {
		free(spec->models[0].name);
		free(spec->models);
		spec->models = NULL;
		spec->nmodels = 0;
		if (spec_models(rd, spec, v) < 0)
			return -1;
	}
	if ((v = json_object_get(root, "prompt_tokens")) != NULL &&
	    dist(rd, "prompt_tokens", v, &spec->prompt_tokens, 1,
	    DIST_MAX) < 0)
		return -1;
	if ((v = json_object_get(root, "output_tokens")) != NULL &&
	    dist(rd, "output_tokens", v, &spec->output_tokens, 1,
	    DIST_MAX) < 0)
		return -1;
	if ((v = json_object_get(root, "prefix_groups")) != NULL &&
	    spec_prefix(rd, spec, v) < 0)
		return -1;
	if ((v = json_object_get(root, "sessions")) != NULL &&
	    spec_sessions(rd, spec, v) < 0)
		return -1;
	if (opt_number(rd, "", root, "stream_fraction", 0, 1,
	    &spec->stream_fraction) < 0)
		return -1;
	if ((v = json_object_get(root, "headers")) != NULL &&
	    spec_headers(rd, spec, v) < 0)
		return -1;
	if ((v = json_object_get(root, "slo")) != NULL &&
	    spec_slo(rd, spec, v) < 0)
		return -1;
	if ((v = json_object_get(root, "ignore_eos")) != NULL) {
		if (!json_is_boolean(v))
			return fail(rd, "ignore_eos", "expected true or false");
		spec->ignore_eos = json_is_true(v);
	}
	if ((v = json_object_get(root, "seed")) != NULL) {
		if (integer(rd, "seed", v, 0, 9007199254740992.0, &x) < 0)
			return -1;
		spec->seed = (uint64_t)x;
	}
	if ((v = json_object_get(root, "max_tokens")) != NULL) {
		if (!json_is_boolean(v))
			return fail(rd, "max_tokens", "expected true or false");
		spec->no_max_tokens = json_is_false(v);
	}
	if (spec->no_max_tokens && spec->api == SY_LOAD_ANTHROPIC)
		return fail(rd, "max_tokens", "the Anthropic API requires "
		    "max_tokens");
	if ((v = json_object_get(root, "distinct_prompts")) != NULL) {
		if (integer(rd, "distinct_prompts", v, 1, 1e9, &x) < 0)
			return -1;
		spec->distinct_prompts = (uint64_t)x;
	}
	if (spec->api == SY_LOAD_EMBEDDINGS && spec->sessions)
		return fail(rd, "sessions", "embeddings have no conversation "
		    "to continue");
	if (spec->distinct_prompts > 0 && spec->sessions)
		return fail(rd, "distinct_prompts", "repeats single requests; "
		    "not with sessions");
	return 0;
}

/* ==== Exported ==== */

const char *
sy_load_header_name_error(const char *name, size_t len)
{
	static const char *const reserved[] = { "host", "content-length",
	    "content-type", "transfer-encoding", "connection", NULL };
	size_t i;

	if (len == 0)
		return "empty header name";
	for (i = 0; i < len; i++)
		if (strchr("!#$%&'*+-.^_`|~", name[i]) == NULL &&
		    !(name[i] >= '0' && name[i] <= '9') &&
		    !(name[i] >= 'a' && name[i] <= 'z') &&
		    !(name[i] >= 'A' && name[i] <= 'Z'))
			return "not a valid header name";
	for (i = 0; reserved[i] != NULL; i++)
		if (strlen(reserved[i]) == len &&
		    strncasecmp(name, reserved[i], len) == 0)
			return "sy-load sets this header itself";
	return NULL;
}

int
sy_load_header_value_ok(const char *s)
{
	for (; *s != '\0'; s++)
		if (((unsigned char)*s < 0x20 && *s != '\t') || *s == 0x7f)
			return 0;
	return 1;
}

const char *
sy_load_api_name(enum sy_load_api api)
{
	switch (api) {
	case SY_LOAD_CHAT:
		return "chat";
	case SY_LOAD_COMPLETIONS:
		return "completions";
	case SY_LOAD_EMBEDDINGS:
		return "embeddings";
	case SY_LOAD_ANTHROPIC:
		return "anthropic";
	}
	return "?";
}

int
sy_load_api_parse(const char *name, enum sy_load_api *api)
{
	static const enum sy_load_api all[] = { SY_LOAD_CHAT,
	    SY_LOAD_COMPLETIONS, SY_LOAD_EMBEDDINGS, SY_LOAD_ANTHROPIC };
	size_t i;

	for (i = 0; i < sizeof all / sizeof all[0]; i++)
		if (strcmp(name, sy_load_api_name(all[i])) == 0) {
			*api = all[i];
			return 0;
		}
	return -1;
}

void
sy_load_spec_init(struct sy_load_spec *spec)
{
	memset(spec, 0, sizeof *spec);
	spec->api = SY_LOAD_CHAT;
	spec->models = calloc(1, sizeof *spec->models);
	if (spec->models == NULL || (spec->models[0].name =
	    strdup("default")) == NULL)
		abort();
	spec->models[0].weight = 1;
	spec->nmodels = 1;
	spec->prompt_tokens.kind = SY_LOAD_FIXED;
	spec->prompt_tokens.value = 128;
	spec->prompt_tokens.min = 1;
	spec->prompt_tokens.max = DIST_MAX;
	spec->output_tokens = spec->prompt_tokens;
	spec->output_tokens.value = 64;
	spec->seed = 1;
}

void
sy_load_spec_free(struct sy_load_spec *spec)
{
	size_t i, k;

	for (i = 0; i < spec->nmodels; i++)
		free(spec->models[i].name);
	free(spec->models);
	for (i = 0; i < spec->nheaders; i++) {
		free(spec->headers[i].name);
		for (k = 0; k < spec->headers[i].nvalues; k++)
			free(spec->headers[i].values[k]);
		free(spec->headers[i].values);
	}
	free(spec->headers);
	memset(spec, 0, sizeof *spec);
}

int
sy_load_spec_model(struct sy_load_spec *spec, const char *name)
{
	struct sy_load_model *m;
	size_t i;

	for (i = 0; i < spec->nmodels; i++)
		if (strcmp(spec->models[i].name, name) == 0)
			return (int)i;
	m = realloc(spec->models, (spec->nmodels + 1) * sizeof *m);
	if (m == NULL)
		abort();
	spec->models = m;
	m[spec->nmodels].name = strdup(name);
	if (m[spec->nmodels].name == NULL)
		abort();
	m[spec->nmodels].weight = 0;
	return (int)spec->nmodels++;
}

/* Reads the file at path into *text and *len; 0, or -1 with errno set. */
static int
slurp(const char *path, char **text, size_t *len)
{
	FILE *f;
	char *buf = NULL, *p;
	size_t cap = 0, n = 0, got;

	if ((f = fopen(path, "rb")) == NULL)
		return -1;
	for (;;) {
		if (n == cap) {
			cap = cap ? 2 * cap : 65536;
			if ((p = realloc(buf, cap + 1)) == NULL)
				abort();
			buf = p;
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		free(buf);
		fclose(f);
		errno = EIO;
		return -1;
	}
	fclose(f);
	buf[n] = '\0';
	*text = buf;
	*len = n;
	return 0;
}

int
sy_load_spec_read(struct sy_load_spec *spec, const char *path, char **err)
{
	struct reader rd;
	json_error_t je;
	json_t *root;
	char *text;
	size_t len;
	int r;

	if (slurp(path, &text, &len) < 0) {
		if (asprintf(err, "%s: %s", path, strerror(errno)) < 0)
			*err = NULL;
		return -1;
	}
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (root == NULL) {
		if (asprintf(err, "%s:%d:%d: %s", path, je.line, je.column,
		    je.text) < 0)
			*err = NULL;
		free(text);
		return -1;
	}
	memset(&rd, 0, sizeof rd);
	rd.file = path;
	rd.text = text;
	rd.len = len;
	r = spec_root(&rd, spec, root);
	json_decref(root);
	free(text);
	if (r < 0)
		*err = rd.err;
	return r;
}

/* ==== Traces ==== */

/*
 * Reads one trace line (object o) into e and its time into *t_ms;
 * sessions maps session keys to their indexes.
 */
static int
trace_line(struct reader *rd, struct sy_load_spec *spec, json_t *sessions,
    const json_t *o, struct sy_load_trace_entry *e, double *t_ms)
{
	static const char *const keys[] = { "t_ms", "model", "prompt_tokens",
	    "output_tokens", "stream", "session", "body", NULL };
	const json_t *v, *body;
	char key[128];
	const char *s;
	double x;

	if (!json_is_object(o))
		return fail(rd, "", "expected a JSON object");
	if (only_keys(rd, "", o, keys) < 0 ||
	    req_number(rd, "", o, "t_ms", 0, 1e15, t_ms) < 0)
		return -1;
	e->model = -1;
	e->prompt_tokens = -1;
	e->output_tokens = -1;
	e->stream = -1;
	e->session = -1;
	if ((body = json_object_get(o, "body")) != NULL) {
		if (!json_is_object(body))
			return fail(rd, "body", "expected a JSON object");
		if (json_object_size(o) != 2)
			return fail(rd, "", "a line with \"body\" has only "
			    "\"t_ms\" besides");
		e->body = json_dumps(body, JSON_COMPACT);
		if (e->body == NULL)
			abort();
		e->body_len = strlen(e->body);
		e->stream = json_is_true(json_object_get(body, "stream"));
		s = json_string_value(json_object_get(body, "model"));
		if (s != NULL)
			e->model = sy_load_spec_model(spec, s);
		return 0;
	}
	if ((v = json_object_get(o, "model")) != NULL) {
		if ((s = json_string_value(v)) == NULL || *s == '\0')
			return fail(rd, "model", "expected a non-empty string");
		e->model = sy_load_spec_model(spec, s);
	}
	if (opt_number(rd, "", o, "prompt_tokens", 1, DIST_MAX, &x) < 0)
		return -1;
	if (json_object_get(o, "prompt_tokens") != NULL)
		e->prompt_tokens = lround(x);
	if (opt_number(rd, "", o, "output_tokens", 1, DIST_MAX, &x) < 0)
		return -1;
	if (json_object_get(o, "output_tokens") != NULL)
		e->output_tokens = lround(x);
	if ((v = json_object_get(o, "stream")) != NULL) {
		if (!json_is_boolean(v))
			return fail(rd, "stream", "expected true or false");
		e->stream = json_is_true(v);
	}
	if ((v = json_object_get(o, "session")) != NULL) {
		if (json_is_string(v))
			snprintf(key, sizeof key, "s:%s", json_string_value(v));
		else if (json_is_integer(v))
			snprintf(key, sizeof key, "i:%lld",
			    (long long)json_integer_value(v));
		else
			return fail(rd, "session", "expected a string or an "
			    "integer");
		if ((v = json_object_get(sessions, key)) == NULL) {
			v = json_integer(json_object_size(sessions));
			json_object_set_new(sessions, key, (json_t *)v);
		}
		e->session = (int)json_integer_value(v);
	}
	return 0;
}

struct sy_load_trace *
sy_load_trace_read(const char *path, struct sy_load_spec *spec, char **err)
{
	struct sy_load_trace *tr;
	struct sy_load_trace_entry *e;
	struct reader rd;
	json_error_t je;
	json_t *sessions, *o;
	char *text, *p, *nl;
	size_t len, cap = 0;
	double t_ms, first = 0, last = 0;
	unsigned line = 0;

	if (slurp(path, &text, &len) < 0) {
		if (asprintf(err, "%s: %s", path, strerror(errno)) < 0)
			*err = NULL;
		return NULL;
	}
	tr = calloc(1, sizeof *tr);
	sessions = json_object();
	if (tr == NULL || sessions == NULL)
		abort();
	*err = NULL;
	for (p = text; *err == NULL && p < text + len; p = nl + 1) {
		line++;
		if ((nl = memchr(p, '\n', (size_t)(text + len - p))) == NULL)
			nl = text + len;
		*nl = '\0';
		if (strspn(p, " \t\r") == (size_t)(nl - p))
			continue;
		if ((o = json_loads(p, 0, &je)) == NULL) {
			if (asprintf(err, "%s:%u:%d: %s", path, line,
			    je.column, je.text) < 0)
				abort();
			break;
		}
		if (tr->n == cap) {
			cap = cap ? 2 * cap : 1024;
			e = realloc(tr->entries, cap * sizeof *e);
			if (e == NULL)
				abort();
			tr->entries = e;
		}
		e = &tr->entries[tr->n];
		memset(e, 0, sizeof *e);
		memset(&rd, 0, sizeof rd);
		rd.file = path;
		rd.text = p;
		rd.len = (size_t)(nl - p);
		rd.line0 = line - 1;
		if (trace_line(&rd, spec, sessions, o, e, &t_ms) < 0)
			*err = rd.err;
		else {
			tr->n++;
			if (tr->n == 1)
				first = last = t_ms;
			if (t_ms < last && asprintf(err, "%s:%u: t_ms goes "
			    "back in time (%g after %g); sort the trace",
			    path, line, t_ms, last) < 0)
				abort();
			last = t_ms;
			e->t_us = (uint64_t)llround((t_ms - first) * 1000.0);
		}
		json_decref(o);
	}
	free(text);
	tr->nsessions = json_object_size(sessions);
	json_decref(sessions);
	if (*err == NULL && tr->n == 0 &&
	    asprintf(err, "%s: the trace has no requests", path) < 0)
		abort();
	if (*err != NULL) {
		sy_load_trace_free(tr);
		return NULL;
	}
	tr->path = strdup(path);
	return tr;
}

void
sy_load_trace_free(struct sy_load_trace *tr)
{
	size_t i;

	if (tr == NULL)
		return;
	for (i = 0; i < tr->n; i++)
		free(tr->entries[i].body);
	free(tr->entries);
	free(tr->path);
	free(tr);
}
