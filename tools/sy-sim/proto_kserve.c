/* sy-sim: the KServe / Triton v2 inference protocol (/v2/...). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "sim.h"

/* Appends a string literal. */
#define ADD(out, lit) evbuffer_add(out, lit, sizeof(lit) - 1)

#define MAX_BATCH 2048
#define MODELS_PREFIX "/v2/models/"

/* route->arg */
#define KSERVE_LIVE	1		/* /v2/health/live */
#define KSERVE_MODEL	2		/* a model's ready */

static const struct sim_route kserve_routes[] = {
	{ "/v2/models/{name}/infer", EVHTTP_REQ_POST, SIM_CALL_EMBEDDING, 0 },
	{ "/v2/models/{name}/ready", EVHTTP_REQ_GET, SIM_CALL_HEALTH,
	  KSERVE_MODEL },
	{ "/v2/models/{name}", EVHTTP_REQ_GET, SIM_CALL_MODELS, 0 },
	{ "/v2/health/ready", EVHTTP_REQ_GET, SIM_CALL_HEALTH, 0 },
	{ "/v2/health/live", EVHTTP_REQ_GET, SIM_CALL_INFO, KSERVE_LIVE },
	{ "/v2", EVHTTP_REQ_GET, SIM_CALL_INFO, 0 },
	{ NULL, 0, SIM_CALL_NONE, 0 }
};

/*
 * The model name in path (/v2/models/NAME/...), URI-decoded: a new string,
 * or NULL when path names none.
 */
static char *
kserve_name(const char *path)
{
	const char	*p, *end;
	char		*raw, *name;

	if (strncmp(path, MODELS_PREFIX, strlen(MODELS_PREFIX)) != 0)
		return (NULL);
	p = path + strlen(MODELS_PREFIX);
	if ((end = strchr(p, '/')) == NULL)
		end = p + strlen(p);
	raw = sim_xmalloc(end - p + 1);
	memcpy(raw, p, end - p);
	raw[end - p] = '\0';
	name = evhttp_uridecode(raw, 0, NULL);
	free(raw);
	return (name);
}

/* Whether model name is a classifier (scores) rather than an embedder. */
static int
kserve_is_classifier(const char *name)
{
	return (strstr(name, "classif") != NULL);
}

/* The output tensor of model name. */
static const char *
kserve_output(const char *name)
{
	return (kserve_is_classifier(name) ? "scores" : "embedding");
}

/* ==== Requests ==== */

/* Appends the leaves of v (nested arrays flattened) to flat. */
static void
kserve_flatten(json_t *v, json_t *flat)
{
	json_t	*x;
	size_t	 i;

	if (!json_is_array(v)) {
		json_array_append(flat, v);
		return;
	}
	json_array_foreach(v, i, x)
		kserve_flatten(x, flat);
}

/* Whether element x fits datatype type. */
static int
kserve_fits(const char *type, json_t *x)
{
	if (strcmp(type, "BYTES") == 0)
		return (json_is_string(x));
	if (strcmp(type, "BOOL") == 0)
		return (json_is_boolean(x));
	if (strncmp(type, "INT", 3) == 0 || strncmp(type, "UINT", 4) == 0)
		return (json_is_integer(x));
	if (strncmp(type, "FP", 2) == 0 || strcmp(type, "BF16") == 0)
		return (json_is_number(x));
	return (0);
}

/* Adds element x of an input to the prompt read by tok. */
static void
kserve_token(struct sim_tok *tok, json_t *x)
{
	double		d;
	uint64_t	bits;

	if (json_is_string(x))
		sim_tok_text(tok, json_string_value(x), json_string_length(x));
	else if (json_is_integer(x))
		sim_tok_id(tok, json_integer_value(x));
	else if (json_is_boolean(x))
		sim_tok_id(tok, json_is_true(x));
	else {
		d = json_number_value(x);
		memcpy(&bits, &d, sizeof bits);
		sim_tok_add(tok, sim_mix64(bits));
	}
}

/*
 * Checks input tensor number i: name, datatype, shape and data agree.
 * Sets *flat to its data flattened (caller frees) and *batch to its first
 * dimension.
 */
static int
kserve_tensor(json_t *in, size_t i, json_t **flat, size_t *batch,
    struct sim_error *err)
{
	json_t		*shape, *data, *type, *d, *x;
	size_t		 j, n = 1;
	json_int_t	 dim;

	type = json_object_get(in, "datatype");
	shape = json_object_get(in, "shape");
	data = json_object_get(in, "data");
	if (!json_is_object(in) || !json_is_string(json_object_get(in,
	    "name")) || !json_is_string(type) || !json_is_array(shape) ||
	    json_array_size(shape) == 0 || !json_is_array(data)) {
		sim_error_set(err, 400, "invalid_request_error", "inputs[%zu] "
		    "must have a string name and datatype, a non-empty shape "
		    "and data", i);
		return (-1);
	}
	json_array_foreach(shape, j, d) {
		if (!json_is_integer(d) || (dim = json_integer_value(d)) < 0 ||
		    dim > 1 << 24) {
			sim_error_set(err, 400, "invalid_request_error",
			    "inputs[%zu]: shape must be non-negative integers",
			    i);
			return (-1);
		}
		n *= (size_t)dim;
		if (n > 1 << 26) {
			sim_error_set(err, 400, "invalid_request_error",
			    "inputs[%zu]: tensor too large", i);
			return (-1);
		}
	}
	*batch = (size_t)json_integer_value(json_array_get(shape, 0));
	*flat = json_array();
	kserve_flatten(data, *flat);
	if (json_array_size(*flat) != n) {
		sim_error_set(err, 400, "invalid_request_error", "inputs[%zu]: "
		    "unexpected number of elements: %zu, shape needs %zu", i,
		    json_array_size(*flat), n);
		goto bad;
	}
	json_array_foreach(*flat, j, x) {
		if (!kserve_fits(json_string_value(type), x)) {
			sim_error_set(err, 400, "invalid_request_error",
			    "inputs[%zu]: data of datatype %.32s expected", i,
			    json_string_value(type));
			goto bad;
		}
	}
	return (0);
bad:
	json_decref(*flat);
	*flat = NULL;
	return (-1);
}

/*
 * Reads the inputs of an infer request: every tensor has the same batch
 * size n (its first dimension); row k of the first one is the prompt of
 * sequence k, so n texts cost a + b * n.  Others (a mask) are checked only.
 */
static int
kserve_inputs(struct sim_job *job, json_t *inputs, struct sim_error *err)
{
	struct sim_tok	 tok;
	struct sim_seq	*seq;
	json_t		*in, *flat, *first = NULL;
	size_t		 i, k, j, batch, n = 0, row;

	if (!json_is_array(inputs) || json_array_size(inputs) == 0) {
		sim_error_set(err, 400, "invalid_request_error",
		    "inputs must be a non-empty array of tensors");
		return (-1);
	}
	json_array_foreach(inputs, i, in) {
		if (kserve_tensor(in, i, &flat, &batch, err) != 0)
			goto bad;
		if (i == 0) {
			first = flat;
			n = batch;
		} else
			json_decref(flat);
		if (batch != n) {
			sim_error_set(err, 400, "invalid_request_error",
			    "inputs[%zu]: batch size %zu, inputs[0] has %zu",
			    i, batch, n);
			goto bad;
		}
	}
	if (n == 0 || n > MAX_BATCH) {
		sim_error_set(err, 400, "invalid_request_error",
		    "the batch size must be from 1 to %d", MAX_BATCH);
		goto bad;
	}
	row = json_array_size(first) / n;
	for (k = 0; k < n; k++) {
		seq = sim_job_seq_begin(job, &tok);
		for (j = 0; j < row; j++)
			kserve_token(&tok, json_array_get(first, k * row + j));
		sim_job_seq_end(job, seq, &tok);
	}
	json_decref(first);
	return (0);
bad:
	json_decref(first);
	return (-1);
}

/* Fills job from the body of /v2/models/{name}/infer. */
static int
kserve_parse(struct sim_job *job, json_t *body, struct sim_error *err)
{
	const struct evhttp_uri	*uri = evhttp_request_get_evhttp_uri(job->req);
	json_t			*id, *outs, *o, *name;
	const char		*want;
	char			*model;
	size_t			 i;
	int			 rc;

	if ((model = kserve_name(evhttp_uri_get_path(uri))) == NULL) {
		sim_error_set(err, 404, "not_found_error", "no model named");
		return (-1);
	}
	rc = sim_job_model(job, model, err);
	free(model);
	if (rc != 0)
		return (-1);
	if (!json_is_object(body)) {
		sim_error_set(err, 400, "invalid_request_error",
		    "the request body must be a JSON object");
		return (-1);
	}
	id = json_object_get(body, "id");
	if (id != NULL && !json_is_string(id)) {
		sim_error_set(err, 400, "invalid_request_error",
		    "id must be a string");
		return (-1);
	}
	if (id != NULL)
		job->keep = json_incref(id);
	want = kserve_output(job->model);
	outs = json_object_get(body, "outputs");
	if (outs != NULL && !json_is_array(outs)) {
		sim_error_set(err, 400, "invalid_request_error",
		    "outputs must be an array");
		return (-1);
	}
	json_array_foreach(outs, i, o) {
		name = json_object_get(o, "name");
		if (!json_is_string(name) ||
		    strcmp(json_string_value(name), want) != 0) {
			sim_error_set(err, 400, "invalid_request_error",
			    "unexpected inference output '%.64s' for model "
			    "'%.64s' (it has '%s')", json_is_string(name) ?
			    json_string_value(name) : "", job->model, want);
			return (-1);
		}
	}
	if (kserve_is_classifier(job->model))
		job->classes = job->r->p.classes;
	return (kserve_inputs(job, json_object_get(body, "inputs"), err));
}

/* ==== Answers ==== */

/* Fills v with k class probabilities seeded by hash (a softmax). */
static void
kserve_scores(uint64_t hash, unsigned k, float *v)
{
	double		 sum = 0;
	unsigned	 j;

	sim_embedding(hash ^ 0x2545f4914f6cdd1dULL, k, v);
	for (j = 0; j < k; j++) {
		v[j] = (float)exp(2.0 * v[j]);
		sum += v[j];
	}
	for (j = 0; j < k; j++)
		v[j] = (float)(v[j] / sum);
}

/* Appends the answer of an infer call: one FP32 tensor [n, d]. */
static void
kserve_reply(struct sim_job *job, struct evbuffer *out)
{
	unsigned	 d = job->classes != 0 ? job->classes : job->dims;
	float		*v = sim_xcalloc(d, sizeof *v);
	unsigned	 i, j;

	ADD(out, "{\"model_name\":\"");
	sim_json_escape(out, job->model, strlen(job->model));
	ADD(out, "\",\"model_version\":\"1\",");
	if (job->keep != NULL) {
		ADD(out, "\"id\":\"");
		sim_json_escape(out, json_string_value(job->keep),
		    json_string_length(job->keep));
		ADD(out, "\",");
	}
	ADD(out, "\"outputs\":[{\"name\":\"");
	if (job->classes != 0)
		ADD(out, "scores");
	else
		ADD(out, "embedding");
	evbuffer_add_printf(out, "\",\"datatype\":\"FP32\",\"shape\":[%u,%u],"
	    "\"data\":[", job->nseq, d);
	for (i = 0; i < job->nseq; i++) {
		if (job->classes != 0)
			kserve_scores(job->seqs[i].hash, d, v);
		else
			sim_embedding(job->seqs[i].hash, d, v);
		for (j = 0; j < d; j++)
			evbuffer_add_printf(out, "%s%.7g", i + j == 0 ? "" :
			    ",", v[j]);
	}
	ADD(out, "]}]}");
	free(v);
}

/* Appends err as {"error": message}; its status is kept. */
static int
kserve_error(struct evbuffer *out, const struct sim_error *err)
{
	ADD(out, "{\"error\":\"");
	sim_json_escape(out, err->message, strlen(err->message));
	ADD(out, "\"}");
	return (err->status);
}

/* Appends the metadata of model name: its input and output tensors. */
static void
kserve_metadata(struct sim_replica *r, const char *name,
    struct evbuffer *out)
{
	json_t	*j;
	char	*s;
	int	 classifier = kserve_is_classifier(name);

	j = json_pack("{ss s[s] ss s[{ss ss s[i]}] s[{ss ss s[ii]}]}",
	    "name", name, "versions", "1", "platform", "sy-sim",
	    "inputs", "name", "text", "datatype", "BYTES", "shape", -1,
	    "outputs", "name", kserve_output(name), "datatype", "FP32",
	    "shape", -1, classifier ? (int)r->p.classes :
	    (int)r->p.embedding_dims);
	s = json_dumps(j, JSON_COMPACT);
	evbuffer_add(out, s, strlen(s));
	free(s);
	json_decref(j);
}

/* Answers the server metadata, health and model metadata calls. */
static int
kserve_info(struct sim_replica *r, const struct sim_route *route,
    const char *path, struct evbuffer *out, struct sim_error *err)
{
	char	*name;

	if (route->call == SIM_CALL_INFO) {
		if (route->arg == KSERVE_LIVE)
			ADD(out, "{\"live\":true}");
		else
			ADD(out, "{\"name\":\"sy-sim\",\"version\":\""
			    PACKAGE_VERSION "\",\"extensions\":[]}");
		return (0);
	}
	if (route->call == SIM_CALL_HEALTH && route->arg != KSERVE_MODEL) {
		ADD(out, "{\"ready\":true}");
		return (0);
	}
	if ((name = kserve_name(path)) == NULL || !sim_replica_serves(r, name)) {
		sim_error_set(err, 404, "not_found_error", "Model with name "
		    "%.200s does not exist.", name != NULL ? name : "");
		free(name);
		return (-1);
	}
	if (route->call == SIM_CALL_HEALTH) {
		ADD(out, "{\"name\":\"");
		sim_json_escape(out, name, strlen(name));
		ADD(out, "\",\"ready\":true}");
	} else
		kserve_metadata(r, name, out);
	free(name);
	return (0);
}

/* KServe's REST protocol does not stream: no job of it has stream set. */
const struct sim_proto sim_proto_kserve = {
	.name = "kserve",
	.routes = kserve_routes,
	.stream_type = "text/event-stream",
	.frame_end = "\n\n",
	.parse = kserve_parse,
	.error = kserve_error,
	.info = kserve_info,
	.reply = kserve_reply,
};
