/* sy-sim: replica settings from the command line and the config file. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define DEFAULT_HOST "127.0.0.1"
#define DEFAULT_PORT 8000
#define MAX_REPLICAS 1024

enum opt_type {
	OPT_UINT, OPT_DOUBLE, OPT_MODELS, OPT_DIST, OPT_FAULTS, OPT_ENUM
};

/*
 * One replica setting: --name on the command line, key in the config
 * file.  One table drives parsing, --help, validation and /sim/config.
 */
struct sim_opt {
	const char	*name;
	const char	*key;
	enum opt_type	 type;
	size_t		 off;
	double		 min;
	double		 max;
	const char	*arg;
	const char	*help;
	const char *const *names;	/* OPT_ENUM: the values, in order */
};

#define P(f) offsetof(struct sim_params, f)
static const struct sim_opt sim_opts[] = {
	{ "models", "models", OPT_MODELS, P(models), 0, 0, "A,B",
	  "model names served; any: every name is accepted", NULL },
	{ "slots", "slots", OPT_UINT, P(slots), 1, 65536, "N",
	  "sequence slots: sequences that run at once", NULL },
	{ "prefill-us-per-token", "prefill_us_per_token", OPT_DOUBLE,
	  P(prefill_us_per_token), 0, 1e7, "US",
	  "prefill time per uncached prompt token", NULL },
	{ "decode-base-us", "decode_base_us", OPT_DOUBLE, P(decode_base_us),
	  0, 1e8, "US", "decode step time a in t = a + b * batch", NULL },
	{ "decode-per-seq-us", "decode_per_seq_us", OPT_DOUBLE,
	  P(decode_per_seq_us), 0, 1e8, "US",
	  "decode step time b per sequence in the batch", NULL },
	{ "batch-base-us", "batch_base_us", OPT_DOUBLE, P(batch_base_us),
	  0, 1e8, "US", "embeddings call time a in t = a + b * inputs", NULL },
	{ "batch-per-input-us", "batch_per_input_us", OPT_DOUBLE,
	  P(batch_per_input_us), 0, 1e8, "US",
	  "embeddings call time b per input", NULL },
	{ "cache-tokens", "cache_tokens", OPT_UINT, P(cache_tokens), 0,
	  16777216, "N", "prefix cache size in tokens (0: no cache)", NULL },
	{ "block-tokens", "block_tokens", OPT_UINT, P(block_tokens), 1,
	  65536, "N", "tokens per prefix cache block", NULL },
	{ "max-tokens-default", "max_tokens_default", OPT_UINT,
	  P(max_tokens_default), 1, 1e7, "N",
	  "cap on drawn output lengths", NULL },
	{ "output-tokens", "output_tokens", OPT_DIST, P(output), 1, 1e7,
	  "DIST", "length without max_tokens: fixed:N, uniform:LO:HI", NULL },
	{ "hard-prompt-tokens", "hard_prompt_tokens", OPT_UINT,
	  P(hard_prompt_tokens), 0, 1048576, "N",
	  "a longer prompt ends with finish_reason length (0: off)", NULL },
	{ "context-tokens", "context_tokens", OPT_UINT, P(context_tokens), 1,
	  1048576, "N", "context size: a longer prompt is refused", NULL },
	{ "embedding-dims", "embedding_dims", OPT_UINT, P(embedding_dims), 1,
	  65536, "N", "numbers in an embedding vector", NULL },
	{ "classes", "classes", OPT_UINT, P(classes), 1, 65536, "N",
	  "scores per input of a KServe classifier", NULL },
	{ "speed", "speed", OPT_DOUBLE, P(speed), 0, 1e6, "X",
	  "time multiplier: 0 answers at once, 2 is 2x slower", NULL },
	{ "cost-per-hour", "cost_per_hour", OPT_DOUBLE, P(cost_per_hour), 0,
	  1e9, "USD", "price of the replica per hour (reported only)", NULL },
	{ "log-requests", "log_requests", OPT_UINT, P(log_requests), 0, 1e6,
	  "N", "requests kept for GET /sim/requests", NULL },
	{ "write", "write", OPT_ENUM, P(write), 0, 0, "PATTERN",
	  "stream writes: per_event, coalesced or split", sim_write_names },
	{ "dialect", "dialect", OPT_ENUM, P(dialect), 0, 0, "NAME",
	  "OpenAI dialect: sim, openai, vllm, llama.cpp or sglang",
	  sim_dialect_names },
	{ "faults", "faults", OPT_FAULTS, P(faults), 0, 0, "JSON",
	  "faults at start, e.g. '{\"error_rate\":0.1}'", NULL },
};
#undef P
#define NOPTS (sizeof sim_opts / sizeof sim_opts[0])

/* Sets p to the built-in defaults: a small GPU server. */
void
sim_params_default(struct sim_params *p)
{
	memset(p, 0, sizeof *p);
	p->port = DEFAULT_PORT;
	p->slots = 16;
	p->prefill_us_per_token = 200;
	p->decode_base_us = 10000;
	p->decode_per_seq_us = 500;
	p->batch_base_us = 4000;
	p->batch_per_input_us = 250;
	p->cache_tokens = 65536;
	p->block_tokens = 16;
	p->max_tokens_default = 256;
	p->context_tokens = 8192;
	p->embedding_dims = 64;
	p->classes = 2;
	p->output.kind = SIM_DIST_UNIFORM;
	p->output.lo = 8;
	p->output.hi = 64;
	p->speed = 1;
	p->cost_per_hour = 1;
	p->log_requests = 256;
	sim_faults_default(&p->faults);
}

/* Frees the model list of p. */
static void
models_clear(struct sim_params *p)
{
	unsigned	i;

	for (i = 0; i < p->nmodels; i++)
		free(p->models[i]);
	free(p->models);
	p->models = NULL;
	p->nmodels = 0;
}

/* Adds model name to p. */
static void
models_add(struct sim_params *p, const char *name)
{
	p->models = sim_xrealloc(p->models, p->nmodels + 1, sizeof *p->models);
	p->models[p->nmodels++] = sim_xstrdup(name);
}

/* Copies src into dst (which holds nothing), models included. */
void
sim_params_copy(struct sim_params *dst, const struct sim_params *src)
{
	unsigned	i;

	*dst = *src;
	dst->models = NULL;
	dst->nmodels = 0;
	for (i = 0; i < src->nmodels; i++)
		models_add(dst, src->models[i]);
}

/* Frees what p owns. */
void
sim_params_clear(struct sim_params *p)
{
	models_clear(p);
}

/* Frees what fleet owns. */
void
sim_fleet_clear(struct sim_fleet *fleet)
{
	unsigned	i;

	for (i = 0; i < fleet->nreplicas; i++)
		sim_params_clear(&fleet->replicas[i]);
	free(fleet->replicas);
	free(fleet->host);
	memset(fleet, 0, sizeof *fleet);
}

/* Parses a distribution from s into d; 0 or -1. */
static int
dist_parse(const char *s, struct sim_dist *d, double max)
{
	unsigned long	 a, b;
	char		*end;

	if (strncmp(s, "fixed:", 6) == 0) {
		errno = 0;
		a = strtoul(s + 6, &end, 10);
		if (errno != 0 || *end != '\0' || end == s + 6 || a < 1 ||
		    a > max)
			return (-1);
		d->kind = SIM_DIST_FIXED;
		d->lo = d->hi = (unsigned)a;
		return (0);
	}
	if (strncmp(s, "uniform:", 8) == 0) {
		errno = 0;
		a = strtoul(s + 8, &end, 10);
		if (errno != 0 || *end != ':' || end == s + 8)
			return (-1);
		s = end + 1;
		b = strtoul(s, &end, 10);
		if (errno != 0 || *end != '\0' || end == s || a < 1 || b < a ||
		    b > max)
			return (-1);
		d->kind = SIM_DIST_UNIFORM;
		d->lo = (unsigned)a;
		d->hi = (unsigned)b;
		return (0);
	}
	return (-1);
}

/* d as text into buf. */
static void
dist_format(const struct sim_dist *d, char *buf, size_t len)
{
	if (d->kind == SIM_DIST_FIXED)
		snprintf(buf, len, "fixed:%u", d->lo);
	else
		snprintf(buf, len, "uniform:%u:%u", d->lo, d->hi);
}

/* The message for a bad value of o, for the setting called where. */
static char *
opt_error(const struct sim_opt *o, const char *where)
{
	switch (o->type) {
	case OPT_UINT:
		return (sim_printf("%s: must be an integer from %.0f to %.0f",
		    where, o->min, o->max));
	case OPT_DOUBLE:
		return (sim_printf("%s: must be a number from %g to %g", where,
		    o->min, o->max));
	case OPT_MODELS:
		return (sim_printf("%s: must be a list of model names", where));
	case OPT_DIST:
		return (sim_printf("%s: must be fixed:N or uniform:LO:HI with "
		    "1 <= LO <= HI <= %.0f", where, o->max));
	case OPT_ENUM:
		return (sim_printf("%s: must be one of %s", where,
		    o->help + strcspn(o->help, ":") + 2));
	default:
		return (sim_printf("%s: must be an object of faults", where));
	}
}

/* The index of s in the NULL-ended names, or -1. */
static int
enum_parse(const char *const *names, const char *s)
{
	int	i;

	for (i = 0; names[i] != NULL; i++)
		if (strcmp(names[i], s) == 0)
			return (i);
	return (-1);
}

/* Splits the comma-separated names in s into the models of p; 0 or -1. */
static int
models_parse(struct sim_params *p, const char *s)
{
	char	*copy = sim_xstrdup(s), *next = copy, *name;
	int	 rc = 0;

	models_clear(p);
	while ((name = strsep(&next, ",")) != NULL) {
		if (*name == '\0') {
			rc = -1;
			break;
		}
		models_add(p, name);
	}
	free(copy);
	return (rc);
}

/* Sets option o of p from command-line text s; 0, or -1 with *err. */
static int
opt_from_text(struct sim_params *p, const struct sim_opt *o, const char *s,
    char **err)
{
	char		*field = (char *)p + o->off, *end, *ferr = NULL;
	char		 where[64];
	unsigned long	 u;
	double		 d;
	json_t		*j;
	int		 k;

	snprintf(where, sizeof where, "--%s", o->name);
	errno = 0;
	switch (o->type) {
	case OPT_UINT:
		u = strtoul(s, &end, 10);
		if (errno != 0 || *end != '\0' || end == s || *s == '-' ||
		    u < o->min || u > o->max)
			goto bad;
		*(unsigned *)field = (unsigned)u;
		return (0);
	case OPT_DOUBLE:
		d = strtod(s, &end);
		if (errno != 0 || *end != '\0' || end == s || !isfinite(d) ||
		    d < o->min || d > o->max)
			goto bad;
		*(double *)field = d;
		return (0);
	case OPT_MODELS:
		if (models_parse(p, s) != 0)
			goto bad;
		return (0);
	case OPT_DIST:
		if (dist_parse(s, (struct sim_dist *)field, o->max) != 0)
			goto bad;
		return (0);
	case OPT_ENUM:
		if ((k = enum_parse(o->names, s)) < 0)
			goto bad;
		*(int *)field = k;
		return (0);
	case OPT_FAULTS:
		if ((j = json_loads(s, 0, NULL)) == NULL)
			goto bad;
		if (sim_faults_update((struct sim_faults *)field, j,
		    &ferr) != 0) {
			json_decref(j);
			*err = sim_printf("%s: %s", where, ferr);
			free(ferr);
			return (-1);
		}
		json_decref(j);
		return (0);
	}
bad:
	*err = opt_error(o, where);
	return (-1);
}

/* Sets option o of p from JSON value v at path where; 0 or -1 with *err. */
static int
opt_from_json(struct sim_params *p, const struct sim_opt *o, json_t *v,
    const char *where, char **err)
{
	char		*field = (char *)p + o->off, *ferr = NULL;
	json_t		*m;
	size_t		 i;
	double		 d;
	int		 k;

	switch (o->type) {
	case OPT_UINT:
		if (!json_is_integer(v) || json_integer_value(v) < o->min ||
		    json_integer_value(v) > o->max)
			goto bad;
		*(unsigned *)field = (unsigned)json_integer_value(v);
		return (0);
	case OPT_DOUBLE:
		if (!json_is_number(v) || (d = json_number_value(v)) < o->min ||
		    d > o->max)
			goto bad;
		*(double *)field = d;
		return (0);
	case OPT_MODELS:
		if (json_is_string(v)) {
			if (models_parse(p, json_string_value(v)) != 0)
				goto bad;
			return (0);
		}
		if (!json_is_array(v))
			goto bad;
		json_array_foreach(v, i, m) {
			if (!json_is_string(m) || json_string_length(m) == 0)
				goto bad;
		}
		models_clear(p);
		json_array_foreach(v, i, m)
			models_add(p, json_string_value(m));
		return (0);
	case OPT_DIST:
		if (!json_is_string(v) || dist_parse(json_string_value(v),
		    (struct sim_dist *)field, o->max) != 0)
			goto bad;
		return (0);
	case OPT_ENUM:
		if (!json_is_string(v) ||
		    (k = enum_parse(o->names, json_string_value(v))) < 0)
			goto bad;
		*(int *)field = k;
		return (0);
	case OPT_FAULTS:
		if (sim_faults_update((struct sim_faults *)field, v,
		    &ferr) != 0) {
			*err = sim_printf("%s: %s", where, ferr);
			free(ferr);
			return (-1);
		}
		return (0);
	}
bad:
	*err = opt_error(o, where);
	return (-1);
}

/* p as a new JSON object keyed like the config file. */
json_t *
sim_params_json(const struct sim_params *p)
{
	const struct sim_opt	*o;
	const char		*field;
	json_t			*j = json_object(), *a;
	char			 buf[64];
	size_t			 i;
	unsigned		 k;

	json_object_set_new(j, "port", json_integer(p->port));
	for (i = 0; i < NOPTS; i++) {
		o = &sim_opts[i];
		field = (const char *)p + o->off;
		switch (o->type) {
		case OPT_UINT:
			json_object_set_new(j, o->key,
			    json_integer(*(const unsigned *)field));
			break;
		case OPT_DOUBLE:
			json_object_set_new(j, o->key,
			    json_real(*(const double *)field));
			break;
		case OPT_MODELS:
			a = json_array();
			for (k = 0; k < p->nmodels; k++)
				json_array_append_new(a,
				    json_string(p->models[k]));
			json_object_set_new(j, o->key, a);
			break;
		case OPT_DIST:
			dist_format(&p->output, buf, sizeof buf);
			json_object_set_new(j, o->key, json_string(buf));
			break;
		case OPT_FAULTS:
			json_object_set_new(j, o->key,
			    sim_faults_json(&p->faults));
			break;
		case OPT_ENUM:
			json_object_set_new(j, o->key,
			    json_string(o->names[*(const int *)field]));
			break;
		}
	}
	return (j);
}

/* The default of o as text, into buf. */
static void
opt_default(const struct sim_opt *o, const struct sim_params *p, char *buf,
    size_t len)
{
	const char	*field = (const char *)p + o->off;

	switch (o->type) {
	case OPT_UINT:
		snprintf(buf, len, "%u", *(const unsigned *)field);
		break;
	case OPT_DOUBLE:
		snprintf(buf, len, "%g", *(const double *)field);
		break;
	case OPT_DIST:
		dist_format((const struct sim_dist *)field, buf, len);
		break;
	case OPT_MODELS:
		snprintf(buf, len, "any");
		break;
	case OPT_FAULTS:
		snprintf(buf, len, "none");
		break;
	case OPT_ENUM:
		snprintf(buf, len, "%s", o->names[*(const int *)field]);
		break;
	}
}

/* Prints the usage of every option to f. */
static void
usage(FILE *f)
{
	struct sim_params	 p;
	char			 left[64], def[64];
	size_t			 i;

	sim_params_default(&p);
	fprintf(f,
"usage: sy-sim [options]\n"
"       sy-sim --config FILE [options]\n"
"\n"
"A simulated inference fleet speaking the OpenAI, Anthropic, TGI, Ollama\n"
"and KServe v2 APIs.  Serves --replicas replicas on ports --port,\n"
"--port+1, ... or the fleet of a config file.\n"
"\n"
"Fleet options:\n"
"  --host ADDR                listen address (default %s)\n"
"  --port P                   first port (default %d)\n"
"  --replicas N               replicas on consecutive ports (default 1)\n"
"  --config FILE              JSON fleet description (see docs/sy-sim.md);\n"
"                             the options below become its defaults\n"
"  --seed N                   seeds answers and faults (default 1)\n"
"  --quiet                    print nothing but errors\n"
"  --help                     this text\n"
"  --version                  print the version\n"
"\n"
"Replica options (config file key: the name with '_' for '-'):\n",
	    DEFAULT_HOST, DEFAULT_PORT);
	for (i = 0; i < NOPTS; i++) {
		snprintf(left, sizeof left, "--%s %s", sim_opts[i].name,
		    sim_opts[i].arg);
		opt_default(&sim_opts[i], &p, def, sizeof def);
		if (29 + strlen(sim_opts[i].help) + strlen(def) + 11 <= 80)
			fprintf(f, "  %-26s %s (default %s)\n", left,
			    sim_opts[i].help, def);
		else
			fprintf(f, "  %-26s %s\n  %-26s (default %s)\n", left,
			    sim_opts[i].help, "", def);
	}
	sim_params_clear(&p);
}

/* Finds the option whose config key is key, or NULL. */
static const struct sim_opt *
opt_by_key(const char *key)
{
	size_t	i;

	for (i = 0; i < NOPTS; i++) {
		if (strcmp(sim_opts[i].key, key) == 0)
			return (&sim_opts[i]);
	}
	return (NULL);
}

/*
 * Applies the settings of JSON object obj (at path where) to p; keys in
 * extra are allowed and skipped.  0, or -1 with *err.
 */
static int
params_from_json(struct sim_params *p, json_t *obj, const char *where,
    const char *const *extra, char **err)
{
	const struct sim_opt	*o;
	const char		*key;
	const char *const	*e;
	json_t			*v;
	char			*path;
	int			 rc;

	if (!json_is_object(obj)) {
		*err = sim_printf("%s: must be an object", where);
		return (-1);
	}
	json_object_foreach(obj, key, v) {
		for (e = extra; *e != NULL && strcmp(*e, key) != 0; e++)
			;
		if (*e != NULL)
			continue;
		path = sim_printf("%s.%s", where, key);
		if ((o = opt_by_key(key)) == NULL) {
			*err = sim_printf("%s: unknown setting", path);
			free(path);
			return (-1);
		}
		rc = opt_from_json(p, o, v, path, err);
		free(path);
		if (rc != 0)
			return (-1);
	}
	return (0);
}

/* Adds a replica copied from p to fleet. */
static void
fleet_add(struct sim_fleet *fleet, const struct sim_params *p)
{
	fleet->replicas = sim_xrealloc(fleet->replicas, fleet->nreplicas + 1,
	    sizeof *fleet->replicas);
	sim_params_copy(&fleet->replicas[fleet->nreplicas++], p);
}

/* Reads the integer at key of obj into *out if there; 0 or -1 with *err. */
static int
json_uint(json_t *obj, const char *key, const char *where, unsigned min,
    unsigned max, unsigned *out, char **err)
{
	json_t	*v = json_object_get(obj, key);

	if (v == NULL)
		return (0);
	if (!json_is_integer(v) || json_integer_value(v) < min ||
	    json_integer_value(v) > max) {
		*err = sim_printf("%s.%s: must be an integer from %u to %u",
		    where, key, min, max);
		return (-1);
	}
	*out = (unsigned)json_integer_value(v);
	return (0);
}

/* Reads the fleet of config file path on top of base; 0 or -1 with *err. */
static int
config_load(const char *path, const struct sim_params *base,
    struct sim_fleet *fleet, char **err)
{
	static const char *const top_keys[] = { "host", "seed", "defaults",
	    "replicas", NULL };
	static const char *const replica_keys[] = { "port", "count", NULL };
	static const char *const no_keys[] = { NULL };
	struct sim_params	 defaults, rp;
	json_error_t		 jerr;
	json_t			*root, *v, *rv;
	const char		*key;
	const char *const	*k;
	char			 where[64], *msg = NULL;
	unsigned		 port, count, j;
	size_t			 i;
	int			 rc = -1;

	if ((root = json_load_file(path, 0, &jerr)) == NULL) {
		*err = sim_printf("%s:%d:%d: %s", path, jerr.line, jerr.column,
		    jerr.text);
		return (-1);
	}
	sim_params_copy(&defaults, base);
	if (!json_is_object(root)) {
		msg = sim_printf("top level: must be an object");
		goto out;
	}
	json_object_foreach(root, key, v) {
		for (k = top_keys; *k != NULL && strcmp(*k, key) != 0; k++)
			;
		if (*k == NULL) {
			msg = sim_printf("%s: unknown key (known: host, seed, "
			    "defaults, replicas)", key);
			goto out;
		}
	}
	if ((v = json_object_get(root, "host")) != NULL) {
		if (!json_is_string(v) || json_string_length(v) == 0) {
			msg = sim_printf("host: must be an address");
			goto out;
		}
		free(fleet->host);
		fleet->host = sim_xstrdup(json_string_value(v));
	}
	if ((v = json_object_get(root, "seed")) != NULL) {
		if (!json_is_integer(v)) {
			msg = sim_printf("seed: must be an integer");
			goto out;
		}
		fleet->seed = (uint64_t)json_integer_value(v);
	}
	if ((v = json_object_get(root, "defaults")) != NULL &&
	    params_from_json(&defaults, v, "defaults", no_keys, &msg) != 0)
		goto out;
	v = json_object_get(root, "replicas");
	if (!json_is_array(v) || json_array_size(v) == 0) {
		msg = sim_printf("replicas: must be a non-empty array");
		goto out;
	}
	json_array_foreach(v, i, rv) {
		snprintf(where, sizeof where, "replicas[%zu]", i);
		sim_params_copy(&rp, &defaults);
		port = 0;
		count = 1;
		if (params_from_json(&rp, rv, where, replica_keys, &msg) != 0 ||
		    json_uint(rv, "port", where, 1, 65535, &port, &msg) != 0 ||
		    json_uint(rv, "count", where, 1, MAX_REPLICAS, &count,
		    &msg) != 0) {
			sim_params_clear(&rp);
			goto out;
		}
		if (port == 0 || port + count - 1 > 65535) {
			msg = sim_printf("%s.port: %s", where, port == 0 ?
			    "is required" : "port + count goes past 65535");
			sim_params_clear(&rp);
			goto out;
		}
		for (j = 0; j < count; j++) {
			rp.port = port + j;
			fleet_add(fleet, &rp);
		}
		sim_params_clear(&rp);
	}
	rc = 0;
out:
	if (msg != NULL) {
		*err = sim_printf("%s: %s", path, msg);
		free(msg);
	}
	sim_params_clear(&defaults);
	json_decref(root);
	return (rc);
}

/* Checks that no two replicas of fleet share a port; 0 or -1 with *err. */
static int
fleet_check(const struct sim_fleet *fleet, char **err)
{
	unsigned	i, j;

	if (fleet->nreplicas > MAX_REPLICAS) {
		*err = sim_printf("at most %d replicas", MAX_REPLICAS);
		return (-1);
	}
	for (i = 0; i < fleet->nreplicas; i++) {
		for (j = i + 1; j < fleet->nreplicas; j++) {
			if (fleet->replicas[i].port != fleet->replicas[j].port)
				continue;
			*err = sim_printf("port %u is given to two replicas",
			    fleet->replicas[i].port);
			return (-1);
		}
	}
	return (0);
}

/* Parses an unsigned number from s into *out, below max; 0 or -1. */
static int
parse_unsigned(const char *s, unsigned long long max, unsigned long long *out)
{
	char	*end;

	errno = 0;
	*out = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || end == s || *s == '-' || *out > max)
		return (-1);
	return (0);
}

/*
 * Fills fleet from the command line (and the config file it names).
 * Returns 0 to run, 1 when --help or --version printed and the program
 * should exit 0, -1 with *err set (caller frees) on a bad option.
 */
int
sim_config_args(int argc, char **argv, struct sim_fleet *fleet, char **err)
{
	enum { O_HOST = 1, O_PORT, O_REPLICAS, O_CONFIG, O_SEED, O_QUIET,
	    O_HELP, O_VERSION, O_TABLE = 100 };
	static const struct option fixed[] = {
		{ "host", required_argument, NULL, O_HOST },
		{ "port", required_argument, NULL, O_PORT },
		{ "replicas", required_argument, NULL, O_REPLICAS },
		{ "config", required_argument, NULL, O_CONFIG },
		{ "seed", required_argument, NULL, O_SEED },
		{ "quiet", no_argument, NULL, O_QUIET },
		{ "help", no_argument, NULL, O_HELP },
		{ "version", no_argument, NULL, O_VERSION },
	};
	struct option		 longopts[sizeof fixed / sizeof fixed[0] +
				     NOPTS + 1];
	struct sim_params	 base;
	const char		*config = NULL;
	unsigned long long	 port = DEFAULT_PORT, replicas = 1, n;
	int			 c, rc = -1, fleet_opts = 0;
	size_t			 i, nfixed = sizeof fixed / sizeof fixed[0];

	memset(fleet, 0, sizeof *fleet);
	fleet->host = sim_xstrdup(DEFAULT_HOST);
	fleet->seed = 1;
	sim_params_default(&base);
	memcpy(longopts, fixed, sizeof fixed);
	for (i = 0; i < NOPTS; i++) {
		longopts[nfixed + i].name = sim_opts[i].name;
		longopts[nfixed + i].has_arg = required_argument;
		longopts[nfixed + i].flag = NULL;
		longopts[nfixed + i].val = O_TABLE + (int)i;
	}
	memset(&longopts[nfixed + NOPTS], 0, sizeof longopts[0]);

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
		switch (c) {
		case O_HOST:
			free(fleet->host);
			fleet->host = sim_xstrdup(optarg);
			break;
		case O_PORT:
			if (parse_unsigned(optarg, 65535, &port) != 0 ||
			    port == 0) {
				*err = sim_printf("--port: must be from 1 to "
				    "65535");
				goto out;
			}
			fleet_opts = 1;
			break;
		case O_REPLICAS:
			if (parse_unsigned(optarg, MAX_REPLICAS,
			    &replicas) != 0 || replicas == 0) {
				*err = sim_printf("--replicas: must be from 1 "
				    "to %d", MAX_REPLICAS);
				goto out;
			}
			fleet_opts = 1;
			break;
		case O_CONFIG:
			config = optarg;
			break;
		case O_SEED:
			if (parse_unsigned(optarg, UINT64_MAX, &n) != 0) {
				*err = sim_printf("--seed: must be an unsigned "
				    "integer");
				goto out;
			}
			fleet->seed = n;
			break;
		case O_QUIET:
			fleet->quiet = 1;
			break;
		case O_HELP:
			usage(stdout);
			rc = 1;
			goto out;
		case O_VERSION:
			printf("sy-sim %s\n", PACKAGE_VERSION);
			rc = 1;
			goto out;
		case ':':
			*err = sim_printf("%s: needs a value",
			    argv[optind - 1]);
			goto out;
		case '?':
			*err = sim_printf("unknown option %s (see --help)",
			    argv[optind - 1]);
			goto out;
		default:
			if (opt_from_text(&base, &sim_opts[c - O_TABLE], optarg,
			    err) != 0)
				goto out;
			break;
		}
	}
	if (optind < argc) {
		*err = sim_printf("unexpected argument %s", argv[optind]);
		goto out;
	}
	if (config != NULL) {
		if (fleet_opts) {
			*err = sim_printf("--port and --replicas do not go "
			    "with --config: the file gives each replica its "
			    "port");
			goto out;
		}
		if (config_load(config, &base, fleet, err) != 0)
			goto out;
	} else {
		if (port + replicas - 1 > 65535) {
			*err = sim_printf("--port + --replicas goes past "
			    "65535");
			goto out;
		}
		for (n = 0; n < replicas; n++) {
			base.port = (unsigned)(port + n);
			fleet_add(fleet, &base);
		}
	}
	rc = fleet_check(fleet, err);
out:
	sim_params_clear(&base);
	if (rc != 0)
		sim_fleet_clear(fleet);
	return (rc);
}
