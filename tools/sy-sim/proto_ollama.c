/* sy-sim: Ollama's wire protocol (/api/chat, /api/generate, /api/embed). */
#include <sys/time.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "sim.h"

/* Appends a string literal. */
#define ADD(out, lit) evbuffer_add(out, lit, sizeof(lit) - 1)

#define MAX_INPUTS 2048

static const struct sim_route ollama_routes[] = {
	{ "/api/chat", EVHTTP_REQ_POST, SIM_CALL_CHAT, 0 },
	{ "/api/generate", EVHTTP_REQ_POST, SIM_CALL_COMPLETION, 0 },
	{ "/api/embed", EVHTTP_REQ_POST, SIM_CALL_EMBEDDING, 0 },
	{ "/api/tags", EVHTTP_REQ_GET, SIM_CALL_MODELS, 0 },
	{ "/api/version", EVHTTP_REQ_GET, SIM_CALL_INFO, 0 },
	{ NULL, 0, SIM_CALL_NONE, 0 }
};

/* ==== Requests ==== */

/* Reads options (num_predict, temperature, top_p, stop) into job. */
static int
ollama_options(struct sim_job *job, json_t *opts, struct sim_error *err)
{
	json_t	*v, *s;
	size_t	 i;

	if (opts == NULL || json_is_null(opts))
		return (0);
	if (!json_is_object(opts)) {
		sim_error_set(err, 400, "invalid_request_error",
		    "options must be an object");
		return (-1);
	}
	v = json_object_get(opts, "num_predict");
	if (v != NULL && !json_is_null(v)) {
		if (!json_is_integer(v) || json_integer_value(v) > 100000000) {
			sim_error_set(err, 400, "invalid_request_error",
			    "option \"num_predict\" must be an integer");
			return (-1);
		}
		/* -1 (no limit) and -2 (fill the context) set no cap. */
		if (json_integer_value(v) > 0)
			job->max_tokens = (unsigned)json_integer_value(v);
	}
	if (((v = json_object_get(opts, "temperature")) != NULL &&
	    !json_is_null(v) && !json_is_number(v)) ||
	    ((v = json_object_get(opts, "top_p")) != NULL && !json_is_null(v) &&
	    !json_is_number(v))) {
		sim_error_set(err, 400, "invalid_request_error",
		    "options \"temperature\" and \"top_p\" must be numbers");
		return (-1);
	}
	v = json_object_get(opts, "stop");
	if (v == NULL || json_is_null(v))
		return (0);
	if (!json_is_array(v))
		goto bad_stop;
	json_array_foreach(v, i, s) {
		if (!json_is_string(s))
			goto bad_stop;
		sim_job_stop(job, json_string_value(s), json_string_length(s));
	}
	return (0);
bad_stop:
	sim_error_set(err, 400, "invalid_request_error",
	    "option \"stop\" must be an array of strings");
	return (-1);
}

/* Adds one token per entry of images, an array of base64 strings. */
static int
ollama_images(struct sim_tok *tok, json_t *images, struct sim_error *err)
{
	size_t	i, n;

	if (images == NULL || json_is_null(images))
		return (0);
	if (!json_is_array(images)) {
		sim_error_set(err, 400, "invalid_request_error",
		    "images must be an array of base64 strings");
		return (-1);
	}
	n = json_array_size(images);
	for (i = 0; i < n; i++)
		sim_tok_part(tok, "image", 5);
	return (0);
}

/*
 * Reads the messages of /api/chat as one prompt, as the OpenAI protocol
 * reads them: a role token and the content (and one token an image) of
 * each, then the token that opens the answer.
 */
static int
ollama_messages(struct sim_job *job, json_t *body, struct sim_error *err)
{
	struct sim_tok	 tok;
	struct sim_seq	*seq;
	json_t		*msgs, *m, *role, *content;
	size_t		 i;

	msgs = json_object_get(body, "messages");
	if (!json_is_array(msgs) || json_array_size(msgs) == 0) {
		sim_error_set(err, 400, "invalid_request_error",
		    "messages must be a non-empty array");
		return (-1);
	}
	seq = sim_job_seq_begin(job, &tok);
	json_array_foreach(msgs, i, m) {
		role = json_object_get(m, "role");
		content = json_object_get(m, "content");
		if (!json_is_object(m) || !json_is_string(role) ||
		    (content != NULL && !json_is_null(content) &&
		    !json_is_string(content))) {
			sim_error_set(err, 400, "invalid_request_error",
			    "messages[%zu] must be an object with a string "
			    "role and a string content", i);
			return (-1);
		}
		sim_tok_role(&tok, json_string_value(role),
		    json_string_length(role));
		if (json_is_string(content))
			sim_tok_text(&tok, json_string_value(content),
			    json_string_length(content));
		if (ollama_images(&tok, json_object_get(m, "images"), err) != 0)
			return (-1);
	}
	sim_tok_role(&tok, "assistant", 9);
	sim_job_seq_end(job, seq, &tok);
	return (0);
}

/*
 * Reads the prompt of /api/generate: the system text, then the prompt
 * (as the OpenAI protocol reads a completion's prompt), then its images.
 */
static int
ollama_prompt(struct sim_job *job, json_t *body, struct sim_error *err)
{
	struct sim_tok	 tok;
	struct sim_seq	*seq;
	json_t		*prompt, *system;

	prompt = json_object_get(body, "prompt");
	system = json_object_get(body, "system");
	if (!json_is_string(prompt) || (system != NULL &&
	    !json_is_null(system) && !json_is_string(system))) {
		sim_error_set(err, 400, "invalid_request_error",
		    "prompt must be a string (and system, if given)");
		return (-1);
	}
	seq = sim_job_seq_begin(job, &tok);
	if (json_is_string(system))
		sim_tok_text(&tok, json_string_value(system),
		    json_string_length(system));
	sim_tok_text(&tok, json_string_value(prompt),
	    json_string_length(prompt));
	if (ollama_images(&tok, json_object_get(body, "images"), err) != 0)
		return (-1);
	sim_job_seq_end(job, seq, &tok);
	return (0);
}

/* Reads input (a string or an array of strings) and dimensions of /api/embed. */
static int
ollama_inputs(struct sim_job *job, json_t *body, struct sim_error *err)
{
	struct sim_tok	 tok;
	struct sim_seq	*seq;
	json_t		*input, *x, *dims;
	size_t		 i;

	dims = json_object_get(body, "dimensions");
	if (dims != NULL && !json_is_null(dims)) {
		if (!json_is_integer(dims) || json_integer_value(dims) < 1 ||
		    json_integer_value(dims) > 65536) {
			sim_error_set(err, 400, "invalid_request_error",
			    "dimensions must be an integer from 1 to 65536");
			return (-1);
		}
		job->dims = (unsigned)json_integer_value(dims);
	}
	input = json_object_get(body, "input");
	if (json_is_string(input)) {
		seq = sim_job_seq_begin(job, &tok);
		sim_tok_text(&tok, json_string_value(input),
		    json_string_length(input));
		sim_job_seq_end(job, seq, &tok);
		return (0);
	}
	if (!json_is_array(input) || json_array_size(input) == 0 ||
	    json_array_size(input) > MAX_INPUTS)
		goto bad;
	json_array_foreach(input, i, x) {
		if (!json_is_string(x))
			goto bad;
	}
	json_array_foreach(input, i, x) {
		seq = sim_job_seq_begin(job, &tok);
		sim_tok_text(&tok, json_string_value(x), json_string_length(x));
		sim_job_seq_end(job, seq, &tok);
	}
	return (0);
bad:
	sim_error_set(err, 400, "invalid_request_error", "input must be a "
	    "string or an array of 1 to %d strings", MAX_INPUTS);
	return (-1);
}

/* Fills job from the body of /api/chat, /api/generate or /api/embed. */
static int
ollama_parse(struct sim_job *job, json_t *body, struct sim_error *err)
{
	json_t	*model, *v;

	if (!json_is_object(body)) {
		sim_error_set(err, 400, "invalid_request_error",
		    "the request body must be a JSON object");
		return (-1);
	}
	model = json_object_get(body, "model");
	if (!json_is_string(model) || json_string_length(model) == 0) {
		sim_error_set(err, 400, "invalid_request_error",
		    "model is required");
		return (-1);
	}
	if (sim_job_model(job, json_string_value(model), err) != 0)
		return (-1);
	if (job->call == SIM_CALL_EMBEDDING)
		return (ollama_inputs(job, body, err));
	v = json_object_get(body, "stream");
	if (v != NULL && !json_is_null(v) && !json_is_boolean(v)) {
		sim_error_set(err, 400, "invalid_request_error",
		    "stream must be a boolean");
		return (-1);
	}
	job->stream = v == NULL || !json_is_false(v);
	job->max_is_cap = 1;
	if (ollama_options(job, json_object_get(body, "options"), err) != 0)
		return (-1);
	if (job->call == SIM_CALL_CHAT)
		return (ollama_messages(job, body, err));
	return (ollama_prompt(job, body, err));
}

/* ==== Answers ==== */

/* Nanoseconds from a to b (microseconds), 0 when b is not after a. */
static uint64_t
ollama_ns(uint64_t a, uint64_t b)
{
	return (b > a ? (b - a) * 1000 : 0);
}

/* Appends "model" and "created_at" (RFC 3339 in UTC) of an object. */
static void
ollama_head(struct sim_job *job, struct evbuffer *out)
{
	struct timeval	tv;
	struct tm	tm;
	char		when[32];

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
	ADD(out, "{\"model\":\"");
	sim_json_escape(out, job->model, strlen(job->model));
	evbuffer_add_printf(out, "\",\"created_at\":\"%s.%06ldZ\",", when,
	    (long)tv.tv_usec);
}

/* Appends the message or response member carrying text (trimmed) of seq. */
static void
ollama_text(struct sim_job *job, struct sim_seq *seq, const char *w,
    size_t len, struct evbuffer *out)
{
	if (job->call == SIM_CALL_CHAT)
		ADD(out, "\"message\":{\"role\":\"assistant\",\"content\":\"");
	else
		ADD(out, "\"response\":\"");
	if (seq != NULL)
		sim_seq_text(seq, 1, out);
	else
		evbuffer_add(out, w, len);
	if (job->call == SIM_CALL_CHAT)
		ADD(out, "\"},");
	else
		ADD(out, "\",");
}

/* Appends done, done_reason, the durations and counts, and the end. */
static void
ollama_done(struct sim_job *job, struct evbuffer *out)
{
	struct sim_seq	*seq = &job->seqs[0];
	uint64_t	 now = sim_now_us();

	ADD(out, "\"done\":true,\"done_reason\":");
	if (seq->stop)
		ADD(out, "\"stop\"");
	else
		ADD(out, "\"length\"");
	ADD(out, ",\"total_duration\":");
	sim_put_uint(out, ollama_ns(job->t_arrive, now));
	ADD(out, ",\"load_duration\":");
	sim_put_uint(out, ollama_ns(job->t_arrive, job->t_admit));
	ADD(out, ",\"prompt_eval_count\":");
	sim_put_uint(out, seq->prompt_tokens);
	ADD(out, ",\"prompt_eval_duration\":");
	sim_put_uint(out, ollama_ns(job->t_admit, job->t_prefilled));
	ADD(out, ",\"eval_count\":");
	sim_put_uint(out, seq->produced);
	ADD(out, ",\"eval_duration\":");
	sim_put_uint(out, ollama_ns(job->t_prefilled, now));
	ADD(out, "}");
}

/* Appends the answer of /api/embed. */
static void
ollama_embeddings(struct sim_job *job, struct evbuffer *out)
{
	float		*v = sim_xcalloc(job->dims, sizeof *v);
	uint64_t	 now = sim_now_us();
	unsigned	 i, j;

	ADD(out, "{\"model\":\"");
	sim_json_escape(out, job->model, strlen(job->model));
	ADD(out, "\",\"embeddings\":[");
	for (i = 0; i < job->nseq; i++) {
		sim_embedding(job->seqs[i].hash, job->dims, v);
		for (j = 0; j < job->dims; j++)
			evbuffer_add_printf(out, "%s%.7g", j == 0 ?
			    (i == 0 ? "[" : ",[") : ",", v[j]);
		ADD(out, "]");
	}
	ADD(out, "],\"total_duration\":");
	sim_put_uint(out, ollama_ns(job->t_arrive, now));
	ADD(out, ",\"load_duration\":");
	sim_put_uint(out, ollama_ns(job->t_arrive, job->t_admit));
	ADD(out, ",\"prompt_eval_count\":");
	sim_put_uint(out, sim_job_prompt_tokens(job));
	ADD(out, "}");
	free(v);
}

/* Appends the whole answer of job (stream false). */
static void
ollama_reply(struct sim_job *job, struct evbuffer *out)
{
	if (job->call == SIM_CALL_EMBEDDING) {
		ollama_embeddings(job, out);
		return;
	}
	ollama_head(job, out);
	ollama_text(job, &job->seqs[0], NULL, 0, out);
	ollama_done(job, out);
}

/* A stream has no line before its first token. */
static void
ollama_stream_head(struct sim_job *job, struct evbuffer *out)
{
}

/* The line of the newest token (none for a token trimmed away). */
static void
ollama_stream_token(struct sim_job *job, struct sim_seq *seq,
    struct evbuffer *out)
{
	const char	*w;
	size_t		 len;

	w = sim_seq_piece(seq, seq->produced - 1, 1, &len);
	if (len == 0)
		return;
	ollama_head(job, out);
	ollama_text(job, NULL, w, len, out);
	ADD(out, "\"done\":false}\n");
}

/* The last line of the stream ends it. */
static void
ollama_stream_seq_end(struct sim_job *job, struct sim_seq *seq, int last,
    struct evbuffer *out)
{
}

/* The last line: empty text, done, the reason, durations and counts. */
static void
ollama_stream_end(struct sim_job *job, struct evbuffer *out)
{
	ollama_head(job, out);
	ollama_text(job, NULL, "", 0, out);
	ollama_done(job, out);
	ADD(out, "\n");
}

/* An error line in the middle of the stream, as Ollama sends one. */
static void
ollama_stream_error(struct sim_job *job, struct evbuffer *out)
{
	ADD(out, "{\"error\":\"injected fault: error in the middle of the "
	    "stream\"}\n");
}

/* Appends err as Ollama's {"error": message}; its status is kept. */
static int
ollama_error(struct evbuffer *out, const struct sim_error *err)
{
	ADD(out, "{\"error\":\"");
	sim_json_escape(out, err->message, strlen(err->message));
	ADD(out, "\"}");
	return (err->status);
}

/* Appends the answer of /api/tags: the models served. */
static void
ollama_tags(struct sim_replica *r, struct evbuffer *out)
{
	json_t		*models = json_array(), *top;
	const char	*name;
	unsigned	 i, n = r->p.nmodels == 0 ? 1 : r->p.nmodels;
	char		*s, digest[65];

	for (i = 0; i < n; i++) {
		name = r->p.nmodels == 0 ? SIM_DEFAULT_MODEL : r->p.models[i];
		snprintf(digest, sizeof digest, "%016llx%016llx%016llx%016llx",
		    (unsigned long long)sim_hash_bytes(name, strlen(name), 1),
		    (unsigned long long)sim_hash_bytes(name, strlen(name), 2),
		    (unsigned long long)sim_hash_bytes(name, strlen(name), 3),
		    (unsigned long long)sim_hash_bytes(name, strlen(name), 4));
		json_array_append_new(models, json_pack("{ss ss ss si ss"
		    " s{ss ss ss s[s] ss ss}}",
		    "name", name, "model", name,
		    "modified_at", "2025-01-01T00:00:00Z", "size", 0,
		    "digest", digest,
		    "details", "parent_model", "", "format", "gguf",
		    "family", "sim", "families", "sim", "parameter_size", "",
		    "quantization_level", ""));
	}
	top = json_pack("{so}", "models", models);
	s = json_dumps(top, JSON_COMPACT);
	evbuffer_add(out, s, strlen(s));
	free(s);
	json_decref(top);
}

/* Answers /api/tags and /api/version. */
static int
ollama_info(struct sim_replica *r, const struct sim_route *route,
    const char *path, struct evbuffer *out, struct sim_error *err)
{
	if (route->call == SIM_CALL_MODELS)
		ollama_tags(r, out);
	else
		ADD(out, "{\"version\":\"" PACKAGE_VERSION "\"}");
	return (0);
}

const struct sim_proto sim_proto_ollama = {
	.name = "ollama",
	.routes = ollama_routes,
	.stream_type = "application/x-ndjson",
	.frame_end = "\n",
	.parse = ollama_parse,
	.error = ollama_error,
	.info = ollama_info,
	.reply = ollama_reply,
	.stream_head = ollama_stream_head,
	.stream_token = ollama_stream_token,
	.stream_seq_end = ollama_stream_seq_end,
	.stream_end = ollama_stream_end,
	.stream_error = ollama_stream_error,
};
