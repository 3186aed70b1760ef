/* sy-sim: the /sim/ admin API of a replica and its Prometheus /metrics. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "sim.h"

/* jansson dump callback appending to an evbuffer. */
static int
admin_dump(const char *buf, size_t len, void *arg)
{
	return (evbuffer_add(arg, buf, len));
}

/* Sends JSON value j (reference stolen) to req with status. */
static void
admin_json(struct sim_replica *r, struct evhttp_request *req, int status,
    json_t *j)
{
	json_dump_callback(j, admin_dump, r->out, JSON_COMPACT);
	evbuffer_add(r->out, "\n", 1);
	json_decref(j);
	sim_reply(req, status, "application/json; charset=utf-8", r->out);
}

/* Sends an error in the OpenAI shape to req. */
static void
admin_error(struct sim_replica *r, struct evhttp_request *req, int status,
    const char *type, const char *message)
{
	struct sim_error	err;

	sim_error_set(&err, status, type, "%s", message);
	sim_reply_error(r, req, &sim_proto_openai, &err, NULL);
}

/* The n parameter of the query of req (0 when absent); -1 when bad. */
static long
admin_query_n(struct evhttp_request *req)
{
	const struct evhttp_uri	*uri = evhttp_request_get_evhttp_uri(req);
	const char		*query, *v;
	struct evkeyvalq	 params;
	char			*end;
	long			 n = 0;

	if (uri == NULL || (query = evhttp_uri_get_query(uri)) == NULL)
		return (0);
	TAILQ_INIT(&params);
	if (evhttp_parse_query_str(query, &params) != 0)
		return (-1);
	if ((v = evhttp_find_header(&params, "n")) != NULL) {
		errno = 0;
		n = strtol(v, &end, 10);
		if (errno != 0 || *end != '\0' || end == v || n < 0)
			n = -1;
	}
	evhttp_clear_headers(&params);
	return (n);
}

/* The statistics of r as a new JSON object. */
static json_t *
admin_stats(struct sim_replica *r)
{
	const struct sim_stats	*st = &r->stats;
	const struct sim_engine	*e = &r->engine;
	json_t			*by_path = json_object(), *p, *models;
	char			 status[16];
	unsigned		 i;

	for (i = 0; i < st->npaths; i++) {
		if ((p = json_object_get(by_path, st->paths[i].path)) == NULL) {
			p = json_object();
			json_object_set_new(by_path, st->paths[i].path, p);
		}
		snprintf(status, sizeof status, "%d", st->paths[i].status);
		json_object_set_new(p, status,
		    json_integer((json_int_t)st->paths[i].n));
	}
	models = json_array();
	for (i = 0; i < r->p.nmodels; i++)
		json_array_append_new(models, json_string(r->p.models[i]));
	return (json_pack("{si si so si sf sf sI so si si si si sI sf"
	    "sI sI sI sI sI s{sI sI} sI sI sI s{sI sI sI sI sI sI}}",
	    "index", r->index,
	    "port", r->p.port,
	    "models", models,
	    "slots", r->p.slots,
	    "cost_per_hour", r->p.cost_per_hour,
	    "uptime_s", (sim_now_us() - r->started_us) / 1e6,
	    "requests", (json_int_t)st->requests,
	    "by_path", by_path,
	    "running", e->running,
	    "waiting", e->waiting,
	    "busy_slots", e->busy,
	    "max_running", (int)st->max_running,
	    "cache_blocks", (json_int_t)sim_cache_blocks(r->cache),
	    "kv_cache_usage", r->p.cache_tokens == 0 ? 0.0 :
	    (double)e->kv_tokens / r->p.cache_tokens,
	    "prompt_tokens", (json_int_t)st->prompt_tokens,
	    "cached_tokens", (json_int_t)st->cached_tokens,
	    "cache_queries", (json_int_t)st->cache_queries,
	    "completion_tokens", (json_int_t)st->completion_tokens,
	    "embedding_inputs", (json_int_t)st->embedding_inputs,
	    "finished",
	        "stop", (json_int_t)st->finished_stop,
	        "length", (json_int_t)st->finished_length,
	    "cancelled", (json_int_t)st->cancelled,
	    "dropped", (json_int_t)st->dropped,
	    "decode_steps", (json_int_t)st->decode_steps,
	    "faults",
	        "error", (json_int_t)st->errors,
	        "rate_limit", (json_int_t)st->rate_limited,
	        "stall", (json_int_t)st->stalled,
	        "slow_stream", (json_int_t)st->slowed,
	        "malformed", (json_int_t)st->malformed,
	        "midstream_error", (json_int_t)st->midstream_errors));
}

/* Reads the JSON object body of req into *obj; 0, or -1 when not one. */
static int
admin_body(struct evhttp_request *req, json_t **obj)
{
	struct evbuffer	*in = evhttp_request_get_input_buffer(req);
	size_t		 len = evbuffer_get_length(in);

	if (len == 0)
		return (-1);
	*obj = json_loadb((const char *)evbuffer_pullup(in, -1), len, 0, NULL);
	if (*obj != NULL && json_is_object(*obj))
		return (0);
	json_decref(*obj);
	return (-1);
}

/* /sim/faults: GET shows, POST merges, DELETE restores the configured. */
static void
admin_faults(struct sim_replica *r, struct evhttp_request *req, int method)
{
	json_t	*obj;
	char	*err = NULL;

	if (method == EVHTTP_REQ_POST) {
		if (admin_body(req, &obj) != 0) {
			admin_error(r, req, 400, "invalid_request_error",
			    "the body must be a JSON object of faults");
			return;
		}
		if (sim_faults_update(&r->faults, obj, &err) != 0) {
			json_decref(obj);
			admin_error(r, req, 400, "invalid_request_error", err);
			free(err);
			return;
		}
		json_decref(obj);
	} else if (method == EVHTTP_REQ_DELETE)
		r->faults = r->p.faults;
	else if (method != EVHTTP_REQ_GET) {
		admin_error(r, req, 405, "invalid_request_error",
		    "method not allowed");
		return;
	}
	admin_json(r, req, 200, sim_faults_json(&r->faults));
}

/*
 * Serves the admin request req for path (under /sim/) of replica r.
 * Admin requests are neither logged nor counted.
 */
void
sim_admin_handle(struct sim_replica *r, struct evhttp_request *req,
    const char *path)
{
	int	method = evhttp_request_get_command(req);
	long	n;
	json_t	*j;

	if (strcmp(path, "/sim/faults") == 0) {
		admin_faults(r, req, method);
		return;
	}
	if (sim_prefix_admin(r, req, path))
		return;
	if (strcmp(path, "/sim/reset") == 0) {
		if (method != EVHTTP_REQ_POST) {
			admin_error(r, req, 405, "invalid_request_error",
			    "method not allowed");
			return;
		}
		sim_replica_reset(r);
		admin_json(r, req, 200, json_pack("{ss}", "status", "ok"));
		return;
	}
	if (strcmp(path, "/sim/requests") != 0 &&
	    strcmp(path, "/sim/stats") != 0 &&
	    strcmp(path, "/sim/config") != 0) {
		admin_error(r, req, 404, "not_found_error", "File Not Found");
		return;
	}
	if (method != EVHTTP_REQ_GET) {
		admin_error(r, req, 405, "invalid_request_error",
		    "method not allowed");
		return;
	}
	if (strcmp(path, "/sim/requests") == 0) {
		if ((n = admin_query_n(req)) < 0) {
			admin_error(r, req, 400, "invalid_request_error",
			    "n must be a non-negative integer");
			return;
		}
		j = sim_reqlog_json(r->log, n > 1000000 ? 1000000 :
		    (unsigned)n);
	} else if (strcmp(path, "/sim/stats") == 0)
		j = admin_stats(r);
	else {
		j = sim_params_json(&r->p);
		json_object_set_new(j, "index", json_integer(r->index));
	}
	admin_json(r, req, 200, j);
}

/* Appends s to out as a Prometheus label value (quotes not included). */
static void
admin_label(struct evbuffer *out, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\' || *s == '"')
			evbuffer_add_printf(out, "\\%c", *s);
		else if (*s == '\n')
			evbuffer_add(out, "\\n", 2);
		else
			evbuffer_add(out, s, 1);
	}
}

/* Appends the HELP and TYPE lines of one metric. */
static void
admin_meta(struct evbuffer *out, const char *name, const char *type,
    const char *help)
{
	evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help,
	    name, type);
}

/* Appends one sample of metric name with the model_name label. */
static void
admin_sample(struct evbuffer *out, const char *name, const char *model,
    const char *more, double value)
{
	evbuffer_add_printf(out, "%s{model_name=\"", name);
	admin_label(out, model);
	evbuffer_add_printf(out, "\"%s} %.10g\n", more, value);
}

/*
 * GET /metrics: vLLM's load and token figures (so that load-aware routing
 * reads sy-sim as it reads vLLM), llama.cpp's two load figures, then
 * sy-sim's own counters.
 */
void
sim_admin_metrics(struct sim_replica *r, struct evhttp_request *req)
{
	const struct sim_stats	*st = &r->stats;
	const struct sim_engine	*e = &r->engine;
	struct evbuffer		*out = r->out;
	const char		*m = sim_replica_model(r);
	double			 kv;
	unsigned		 i;

	kv = r->p.cache_tokens == 0 ? 0 : (double)e->kv_tokens /
	    r->p.cache_tokens;
	if (kv > 1)
		kv = 1;
	admin_meta(out, "vllm:num_requests_running", "gauge",
	    "Number of requests in model execution batches.");
	admin_sample(out, "vllm:num_requests_running", m, "", e->running);
	admin_meta(out, "vllm:num_requests_waiting", "gauge",
	    "Number of requests waiting to be processed.");
	admin_sample(out, "vllm:num_requests_waiting", m, "", e->waiting);
	admin_meta(out, "vllm:kv_cache_usage_perc", "gauge",
	    "KV-cache usage. 1 means 100 percent usage.");
	admin_sample(out, "vllm:kv_cache_usage_perc", m, "", kv);
	admin_meta(out, "vllm:gpu_cache_usage_perc", "gauge",
	    "GPU KV-cache usage (older name). 1 means 100 percent usage.");
	admin_sample(out, "vllm:gpu_cache_usage_perc", m, "", kv);
	admin_meta(out, "vllm:prefix_cache_queries_total", "counter",
	    "Prefix cache queries, in terms of number of queried tokens.");
	admin_sample(out, "vllm:prefix_cache_queries_total", m, "",
	    (double)st->cache_queries);
	admin_meta(out, "vllm:prefix_cache_hits_total", "counter",
	    "Prefix cache hits, in terms of number of cached tokens.");
	admin_sample(out, "vllm:prefix_cache_hits_total", m, "",
	    (double)st->cached_tokens);
	admin_meta(out, "vllm:prompt_tokens_total", "counter",
	    "Number of prefill tokens processed.");
	admin_sample(out, "vllm:prompt_tokens_total", m, "",
	    (double)st->prompt_tokens);
	admin_meta(out, "vllm:generation_tokens_total", "counter",
	    "Number of generation tokens processed.");
	admin_sample(out, "vllm:generation_tokens_total", m, "",
	    (double)st->completion_tokens);
	admin_meta(out, "vllm:request_success_total", "counter",
	    "Count of successfully processed requests.");
	admin_sample(out, "vllm:request_success_total", m,
	    ",finished_reason=\"stop\"", (double)st->finished_stop);
	admin_sample(out, "vllm:request_success_total", m,
	    ",finished_reason=\"length\"", (double)st->finished_length);

	admin_meta(out, "llamacpp:requests_processing", "gauge",
	    "Number of requests processing (llama.cpp's name).");
	evbuffer_add_printf(out, "llamacpp:requests_processing %u\n",
	    e->running);
	admin_meta(out, "llamacpp:requests_deferred", "gauge",
	    "Number of requests deferred (llama.cpp's name).");
	evbuffer_add_printf(out, "llamacpp:requests_deferred %u\n", e->waiting);

	admin_meta(out, "sy_sim_requests_total", "counter",
	    "Answers by path and HTTP status (499: client gone, 444: "
	    "dropped).");
	for (i = 0; i < st->npaths; i++) {
		evbuffer_add_printf(out, "sy_sim_requests_total{path=\"");
		admin_label(out, st->paths[i].path);
		evbuffer_add_printf(out, "\",code=\"%d\"} %llu\n",
		    st->paths[i].status, (unsigned long long)st->paths[i].n);
	}
	admin_meta(out, "sy_sim_requests_cancelled_total", "counter",
	    "Requests whose client went away before the end.");
	evbuffer_add_printf(out, "sy_sim_requests_cancelled_total %llu\n",
	    (unsigned long long)st->cancelled);
	admin_meta(out, "sy_sim_faults_total", "counter",
	    "Injected faults by kind.");
	evbuffer_add_printf(out,
	    "sy_sim_faults_total{fault=\"error\"} %llu\n"
	    "sy_sim_faults_total{fault=\"rate_limit\"} %llu\n"
	    "sy_sim_faults_total{fault=\"stall\"} %llu\n"
	    "sy_sim_faults_total{fault=\"slow_stream\"} %llu\n"
	    "sy_sim_faults_total{fault=\"drop\"} %llu\n"
	    "sy_sim_faults_total{fault=\"malformed\"} %llu\n"
	    "sy_sim_faults_total{fault=\"midstream_error\"} %llu\n",
	    (unsigned long long)st->errors,
	    (unsigned long long)st->rate_limited,
	    (unsigned long long)st->stalled, (unsigned long long)st->slowed,
	    (unsigned long long)st->dropped, (unsigned long long)st->malformed,
	    (unsigned long long)st->midstream_errors);
	admin_meta(out, "sy_sim_slots", "gauge", "Sequence slots.");
	evbuffer_add_printf(out, "sy_sim_slots %u\n", r->p.slots);
	admin_meta(out, "sy_sim_slots_busy", "gauge", "Sequence slots in use.");
	evbuffer_add_printf(out, "sy_sim_slots_busy %u\n", e->busy);
	admin_meta(out, "sy_sim_cost_per_hour", "gauge",
	    "Price of the replica per hour.");
	evbuffer_add_printf(out, "sy_sim_cost_per_hour %.10g\n",
	    r->p.cost_per_hour);
	sim_prefix_metrics(r, out);
	sim_reply(req, 200, "text/plain; version=0.0.4; charset=utf-8", out);
}
