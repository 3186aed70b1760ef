/* sy-sim: the wire protocol of Hugging Face's text-generation-inference. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "sim.h"

/* Appends a string literal. */
#define ADD(out, lit) evbuffer_add(out, lit, sizeof(lit) - 1)

/* Stop sequences TGI takes by default (--max-stop-sequences). */
#define MAX_STOP 4

/* job->flags */
#define TGI_DETAILS	0x1		/* parameters.details */
#define TGI_PREFILL	0x2		/* parameters.decoder_input_details */

/* /health is the OpenAI protocol's, which answers as TGI's does. */
static const struct sim_route tgi_routes[] = {
	{ "/generate", EVHTTP_REQ_POST, SIM_CALL_COMPLETION, 0 },
	{ "/generate_stream", EVHTTP_REQ_POST, SIM_CALL_COMPLETION, 1 },
	{ "/info", EVHTTP_REQ_GET, SIM_CALL_INFO, 0 },
	{ NULL, 0, SIM_CALL_NONE, 0 }
};

/* ==== Requests ==== */

/* Reads parameters.stop into job. */
static int
tgi_stops(struct sim_job *job, json_t *v, struct sim_error *err)
{
	json_t	*s;
	size_t	 i;

	if (v == NULL || json_is_null(v))
		return (0);
	if (!json_is_array(v)) {
		sim_error_set(err, 422, "invalid_request_error",
		    "`stop` must be an array of strings");
		return (-1);
	}
	if (json_array_size(v) > MAX_STOP) {
		sim_error_set(err, 422, "invalid_request_error",
		    "Input validation error: `stop` supports up to %d stop "
		    "sequences. Given: %zu", MAX_STOP, json_array_size(v));
		return (-1);
	}
	json_array_foreach(v, i, s) {
		if (!json_is_string(s)) {
			sim_error_set(err, 422, "invalid_request_error",
			    "`stop` must be an array of strings");
			return (-1);
		}
		sim_job_stop(job, json_string_value(s), json_string_length(s));
	}
	return (0);
}

/* Reads the parameters object of a generate request, validated as TGI does. */
static int
tgi_parameters(struct sim_job *job, json_t *params, struct sim_error *err)
{
	json_t		*v;
	double		 x;
	json_int_t	 n;

	if (params == NULL || json_is_null(params))
		return (0);
	if (!json_is_object(params)) {
		sim_error_set(err, 422, "invalid_request_error",
		    "`parameters` must be an object");
		return (-1);
	}
	v = json_object_get(params, "max_new_tokens");
	if (v != NULL && !json_is_null(v)) {
		if (!json_is_integer(v) || (n = json_integer_value(v)) < 1 ||
		    n > 100000000) {
			sim_error_set(err, 422, "invalid_request_error",
			    "Input validation error: `max_new_tokens` must be "
			    "strictly positive");
			return (-1);
		}
		job->max_tokens = (unsigned)n;
	}
	v = json_object_get(params, "temperature");
	if (v != NULL && !json_is_null(v) && (!json_is_number(v) ||
	    json_number_value(v) <= 0)) {
		sim_error_set(err, 422, "invalid_request_error",
		    "Input validation error: `temperature` must be strictly "
		    "positive");
		return (-1);
	}
	v = json_object_get(params, "top_p");
	if (v != NULL && !json_is_null(v) && (!json_is_number(v) ||
	    (x = json_number_value(v)) <= 0 || x >= 1)) {
		sim_error_set(err, 422, "invalid_request_error",
		    "Input validation error: `top_p` must be > 0.0 and < 1.0");
		return (-1);
	}
	if (json_is_true(json_object_get(params, "details")))
		job->flags |= TGI_DETAILS;
	if (json_is_true(json_object_get(params, "decoder_input_details"))) {
		if (job->stream) {
			sim_error_set(err, 422, "invalid_request_error",
			    "Input validation error: `decoder_input_details` "
			    "== true is not supported when streaming tokens");
			return (-1);
		}
		job->flags |= TGI_PREFILL;
	}
	return (tgi_stops(job, json_object_get(params, "stop"), err));
}

/* Fills job from the body of /generate or /generate_stream. */
static int
tgi_parse(struct sim_job *job, json_t *body, struct sim_error *err)
{
	struct sim_tok	 tok;
	struct sim_seq	*seq;
	json_t		*inputs;

	if (!json_is_object(body)) {
		sim_error_set(err, 422, "invalid_request_error",
		    "the request body must be a JSON object");
		return (-1);
	}
	inputs = json_object_get(body, "inputs");
	if (!json_is_string(inputs)) {
		sim_error_set(err, 422, "invalid_request_error",
		    "Failed to deserialize the JSON body into the target type: "
		    "%s", inputs == NULL ? "missing field `inputs`" :
		    "`inputs` must be a string");
		return (-1);
	}
	if (json_string_length(inputs) == 0) {
		sim_error_set(err, 422, "invalid_request_error",
		    "Input validation error: `inputs` cannot be empty");
		return (-1);
	}
	if (sim_job_model(job, NULL, err) != 0)
		return (-1);
	job->stream = job->route->arg;
	job->max_is_cap = 1;
	if (tgi_parameters(job, json_object_get(body, "parameters"), err) != 0)
		return (-1);
	if (job->flags & TGI_PREFILL)
		job->keep = json_incref(inputs);
	seq = sim_job_seq_begin(job, &tok);
	sim_tok_text(&tok, json_string_value(inputs),
	    json_string_length(inputs));
	sim_job_seq_end(job, seq, &tok);
	return (0);
}

/* ==== Answers ==== */

/* Appends a made-up log probability for token i of seq. */
static void
tgi_logprob(const struct sim_seq *seq, unsigned i, struct evbuffer *out)
{
	unsigned	v = 1 + sim_mix64(seq->hash + i * 0x9e3779b97f4a7c15ULL +
			    0x51ed27) % 4000;

	evbuffer_add_printf(out, "-%u.%03u", v / 1000, v % 1000);
}

/* Appends the token object of token i of seq. */
static void
tgi_token(const struct sim_seq *seq, unsigned i, struct evbuffer *out)
{
	const char	*w;
	size_t		 len;

	w = sim_seq_piece(seq, i, 0, &len);
	ADD(out, "{\"id\":");
	sim_put_uint(out, sim_token_id(w, len));
	ADD(out, ",\"text\":\"");
	evbuffer_add(out, w, len);
	ADD(out, "\",\"logprob\":");
	tgi_logprob(seq, i, out);
	ADD(out, ",\"special\":false}");
}

/* Appends the finish reason of seq, quoted. */
static void
tgi_reason(const struct sim_seq *seq, struct evbuffer *out)
{
	if (seq->stop_seq != 0)
		ADD(out, "\"stop_sequence\"");
	else if (seq->stop)
		ADD(out, "\"eos_token\"");
	else
		ADD(out, "\"length\"");
}

/* Appends the prefill details: the prompt's tokens, as kept by parse. */
static void
tgi_prefill(const struct sim_job *job, struct evbuffer *out)
{
	const struct sim_seq	*seq = &job->seqs[0];
	const char		*s = json_string_value(job->keep);
	size_t			 len = json_string_length(job->keep);
	size_t			 pos = 0, start, n;
	unsigned		 i;

	for (i = 0; sim_tok_piece(s, len, &pos, &start, &n); i++) {
		if (i != 0)
			ADD(out, ",");
		ADD(out, "{\"id\":");
		sim_put_uint(out, sim_token_id(s + start, n));
		ADD(out, ",\"text\":\"");
		sim_json_escape(out, s + start, n);
		ADD(out, "\",\"logprob\":");
		if (i == 0)
			ADD(out, "null");
		else
			tgi_logprob(seq, i + 0x10000, out);
		ADD(out, "}");
	}
}

/* Appends the whole answer of /generate. */
static void
tgi_reply(struct sim_job *job, struct evbuffer *out)
{
	struct sim_seq	*seq = &job->seqs[0];
	unsigned	 i;

	ADD(out, "{\"generated_text\":\"");
	sim_seq_text(seq, 0, out);
	ADD(out, "\"");
	if (job->flags & TGI_DETAILS) {
		ADD(out, ",\"details\":{\"finish_reason\":");
		tgi_reason(seq, out);
		ADD(out, ",\"generated_tokens\":");
		sim_put_uint(out, seq->produced);
		ADD(out, ",\"seed\":null,\"prefill\":[");
		if (job->flags & TGI_PREFILL)
			tgi_prefill(job, out);
		ADD(out, "],\"tokens\":[");
		for (i = 0; i < seq->produced; i++) {
			if (i != 0)
				ADD(out, ",");
			tgi_token(seq, i, out);
		}
		ADD(out, "]}");
	}
	ADD(out, "}");
}

/* A stream has no event before its first token. */
static void
tgi_stream_head(struct sim_job *job, struct evbuffer *out)
{
}

/*
 * The event of the newest token; the last one carries the whole text and,
 * with parameters.details, the stream details.
 */
static void
tgi_stream_token(struct sim_job *job, struct sim_seq *seq,
    struct evbuffer *out)
{
	ADD(out, "data: {\"index\":");
	sim_put_uint(out, seq->produced);
	ADD(out, ",\"token\":");
	tgi_token(seq, seq->produced - 1, out);
	if (seq->produced < seq->out_tokens) {
		ADD(out, ",\"generated_text\":null,\"details\":null}\n\n");
		return;
	}
	ADD(out, ",\"generated_text\":\"");
	sim_seq_text(seq, 0, out);
	ADD(out, "\",\"details\":");
	if (job->flags & TGI_DETAILS) {
		ADD(out, "{\"finish_reason\":");
		tgi_reason(seq, out);
		ADD(out, ",\"generated_tokens\":");
		sim_put_uint(out, seq->produced);
		ADD(out, ",\"seed\":null,\"input_length\":");
		sim_put_uint(out, seq->prompt_tokens);
		ADD(out, "}");
	} else
		ADD(out, "null");
	ADD(out, "}\n\n");
}

/* The last token's event ended the sequence already. */
static void
tgi_stream_seq_end(struct sim_job *job, struct sim_seq *seq, int last,
    struct evbuffer *out)
{
}

/* TGI sends no [DONE]. */
static void
tgi_stream_end(struct sim_job *job, struct evbuffer *out)
{
}

/* An error event in the middle of the stream, as TGI sends one. */
static void
tgi_stream_error(struct sim_job *job, struct evbuffer *out)
{
	ADD(out, "data: {\"error\":\"injected fault: error in the middle of "
	    "the stream\",\"error_type\":\"generation\"}\n\n");
}

/*
 * Appends err in TGI's shape and returns its status: a bad request is a
 * 422 validation error, 429 and 503 are overloaded, other 5xx generation
 * errors.
 */
static int
tgi_error(struct evbuffer *out, const struct sim_error *err)
{
	const char	*type;
	int		 status = err->status;

	if (status == 400)
		status = 422;
	if (status == 429 || status == 503)
		type = "overloaded";
	else if (status >= 500)
		type = "generation";
	else
		type = "validation";
	ADD(out, "{\"error\":\"");
	if (err->n_ctx != 0)
		evbuffer_add_printf(out, "Input validation error: `inputs` "
		    "must have less than %u tokens. Given: %u", err->n_ctx,
		    err->n_prompt_tokens);
	else
		sim_json_escape(out, err->message, strlen(err->message));
	ADD(out, "\",\"error_type\":\"");
	evbuffer_add(out, type, strlen(type));
	ADD(out, "\"}");
	return (status);
}

/* GET /info: the model and the router's limits. */
static int
tgi_info(struct sim_replica *r, const struct sim_route *route,
    const char *path, struct evbuffer *out, struct sim_error *err)
{
	json_t	*j;
	char	*s;

	j = json_pack("{ss sn ss si si si si si si si si ss ss sn sn}",
	    "model_id", sim_replica_model(r),
	    "model_sha",
	    "model_pipeline_tag", "text-generation",
	    "max_concurrent_requests", r->p.slots * 8,
	    "max_best_of", 1,
	    "max_stop_sequences", MAX_STOP,
	    "max_input_tokens", r->p.context_tokens - 1,
	    "max_total_tokens", r->p.context_tokens,
	    "max_batch_total_tokens", r->p.cache_tokens,
	    "validation_workers", 1,
	    "max_client_batch_size", 4,
	    "router", "text-generation-router",
	    "version", PACKAGE_VERSION,
	    "sha",
	    "docker_label");
	s = json_dumps(j, JSON_COMPACT);
	evbuffer_add(out, s, strlen(s));
	free(s);
	json_decref(j);
	return (0);
}

const struct sim_proto sim_proto_tgi = {
	.name = "tgi",
	.routes = tgi_routes,
	.stream_type = "text/event-stream",
	.frame_end = "\n\n",
	.parse = tgi_parse,
	.error = tgi_error,
	.info = tgi_info,
	.reply = tgi_reply,
	.stream_head = tgi_stream_head,
	.stream_token = tgi_stream_token,
	.stream_seq_end = tgi_stream_seq_end,
	.stream_end = tgi_stream_end,
	.stream_error = tgi_stream_error,
};
