/*
 * sy-sim: the OpenAI wire protocol, shaped like llama.cpp's server, or as
 * the replica's dialect says: api.openai.com, vLLM, llama.cpp or SGLang.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "sim.h"

#define MAX_INPUTS 2048

/* Appends a string literal. */
#define ADD(out, lit) evbuffer_add(out, lit, sizeof(lit) - 1)

#define FINISH_COMPLETIONS	1
#define FINISH_CHAT		2

/* The dialect job answers in (the replica's). */
#define DIALECT(job) ((enum sim_dialect)(job)->r->p.dialect)

/*
 * What tells one server from another.  sim is sy-sim's own shape, the
 * plainest; the others follow the servers' recorded or documented answers.
 */
struct dialect {
	const char *fingerprint;	/* system_fingerprint; NULL: none */
	const char *role_delta;		/* the first delta; NULL: no role chunk */
	int timings;			/* llama.cpp's timings on the last chunk */
	int usage_null;			/* "usage":null on chunks (include_usage) */
	int usage_on_finish;		/* always usage on the last finish chunk:
					   FINISH_COMPLETIONS, FINISH_CHAT */
	int obfuscation;		/* OpenAI's padding member on chunks */
	const char *stop_member;	/* names the stop string that ended it */
	int done_after_error;		/* [DONE] follows a stream error */
};

static const struct dialect dialects[] = {
	[SIM_DIALECT_SIM] = { SIM_FINGERPRINT,
	    "{\"role\":\"assistant\",\"content\":null}", 1, 0,
	    FINISH_COMPLETIONS, 0, NULL,
	    0 },
	[SIM_DIALECT_OPENAI] = { "fp_5e1a2f9c3b",
	    "{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null}",
	    0, 1, 0, 1, NULL, 0 },
	[SIM_DIALECT_VLLM] = { NULL,
	    "{\"role\":\"assistant\",\"content\":\"\"}", 0, 1, 0, 0,
	    "stop_reason", 1 },
	[SIM_DIALECT_LLAMACPP] = { "b0-unknown", NULL, 1, 0,
	    FINISH_COMPLETIONS | FINISH_CHAT, 0, NULL, 1 },
	[SIM_DIALECT_SGLANG] = { NULL,
	    "{\"role\":\"assistant\",\"content\":\"\"}", 0, 1, 0, 0,
	    "matched_stop", 1 },
};

/* The traits of job's dialect. */
static const struct dialect *
dialect(const struct sim_job *job)
{
	return (&dialects[DIALECT(job)]);
}

static const struct sim_route openai_routes[] = {
	{ "/v1/chat/completions", EVHTTP_REQ_POST, SIM_CALL_CHAT, 0 },
	{ "/v1/completions", EVHTTP_REQ_POST, SIM_CALL_COMPLETION, 0 },
	{ "/v1/embeddings", EVHTTP_REQ_POST, SIM_CALL_EMBEDDING, 0 },
	{ "/v1/models", EVHTTP_REQ_GET, SIM_CALL_MODELS, 0 },
	{ "/health", EVHTTP_REQ_GET, SIM_CALL_HEALTH, 0 },
	{ NULL, 0, SIM_CALL_NONE, 0 }
};

/* ==== Requests ==== */

/* Reads max_tokens, stream and stream_options of body into job. */
/* Reads "stop": a string or an array of strings; 0, or -1 with err. */
static int
openai_stops(struct sim_job *job, json_t *v, struct sim_error *err)
{
	json_t	*s;
	size_t	 i;

	if (v == NULL || json_is_null(v))
		return (0);
	if (json_is_string(v)) {
		sim_job_stop(job, json_string_value(v), json_string_length(v));
		return (0);
	}
	if (json_is_array(v)) {
		json_array_foreach(v, i, s)
			if (!json_is_string(s))
				break;
		if (i == json_array_size(v)) {
			json_array_foreach(v, i, s)
				sim_job_stop(job, json_string_value(s),
				    json_string_length(s));
			return (0);
		}
	}
	sim_error_set(err, 400, "invalid_request_error",
	    "'stop' must be a string or an array of strings");
	return (-1);
}

static int
openai_gen_options(struct sim_job *job, json_t *body, struct sim_error *err)
{
	json_t		*v, *opts;
	json_int_t	 n;

	v = json_object_get(body, "max_completion_tokens");
	if (v == NULL || json_is_null(v))
		v = json_object_get(body, "max_tokens");
	if (v != NULL && !json_is_null(v)) {
		if (!json_is_integer(v) || (n = json_integer_value(v)) < 1 ||
		    n > 100000000) {
			sim_error_set(err, 400, "invalid_request_error",
			    "'max_tokens' must be a positive integer");
			return (-1);
		}
		job->max_tokens = (unsigned)n;
	}
	v = json_object_get(body, "stream");
	if (v != NULL && !json_is_null(v)) {
		if (!json_is_boolean(v)) {
			sim_error_set(err, 400, "invalid_request_error",
			    "'stream' must be a boolean");
			return (-1);
		}
		job->stream = json_is_true(v);
	}
	opts = json_object_get(body, "stream_options");
	if (opts != NULL && !json_is_null(opts)) {
		if (!json_is_object(opts)) {
			sim_error_set(err, 400, "invalid_request_error",
			    "'stream_options' must be an object");
			return (-1);
		}
		v = json_object_get(opts, "include_usage");
		job->include_usage = v != NULL && json_is_true(v);
	}
	return (openai_stops(job, json_object_get(body, "stop"), err));
}

/* Tokenizes the content of message number i into tok. */
static int
openai_content(struct sim_tok *tok, json_t *content, size_t i,
    struct sim_error *err)
{
	json_t		*part, *text, *type;
	size_t		 j;

	if (content == NULL || json_is_null(content))
		return (0);
	if (json_is_string(content)) {
		sim_tok_text(tok, json_string_value(content),
		    json_string_length(content));
		return (0);
	}
	if (!json_is_array(content))
		goto bad;
	json_array_foreach(content, j, part) {
		if (!json_is_object(part))
			goto bad;
		text = json_object_get(part, "text");
		if (json_is_string(text)) {
			sim_tok_text(tok, json_string_value(text),
			    json_string_length(text));
			continue;
		}
		/* An image or audio part counts as one token. */
		type = json_object_get(part, "type");
		if (!json_is_string(type))
			goto bad;
		sim_tok_part(tok, json_string_value(type),
		    json_string_length(type));
	}
	return (0);
bad:
	sim_error_set(err, 400, "invalid_request_error", "'messages[%zu]."
	    "content' must be a string, an array of content parts or null", i);
	return (-1);
}

/*
 * Reads the messages of a chat request as one prompt: each message is a
 * role token then its content's tokens; one more token opens the answer.
 */
static int
openai_messages(struct sim_job *job, json_t *body, struct sim_error *err)
{
	struct sim_tok	 tok;
	struct sim_seq	*seq;
	json_t		*msgs, *m, *role;
	size_t		 i;

	msgs = json_object_get(body, "messages");
	if (msgs == NULL) {
		sim_error_set(err, 400, "invalid_request_error",
		    "'messages' is required");
		return (-1);
	}
	if (!json_is_array(msgs) || json_array_size(msgs) == 0) {
		sim_error_set(err, 400, "invalid_request_error",
		    "'messages' must be a non-empty array");
		return (-1);
	}
	seq = sim_job_seq_begin(job, &tok);
	json_array_foreach(msgs, i, m) {
		role = json_object_get(m, "role");
		if (!json_is_object(m) || !json_is_string(role)) {
			sim_error_set(err, 400, "invalid_request_error",
			    "'messages[%zu]' must be an object with a string "
			    "'role'", i);
			return (-1);
		}
		sim_tok_role(&tok, json_string_value(role),
		    json_string_length(role));
		if (openai_content(&tok, json_object_get(m, "content"), i,
		    err) != 0)
			return (-1);
	}
	sim_tok_role(&tok, "assistant", 9);
	sim_job_seq_end(job, seq, &tok);
	return (0);
}

/* Whether v is an array of integers only (token ids). */
static int
openai_is_ids(json_t *v)
{
	json_t	*x;
	size_t	 i;

	if (!json_is_array(v))
		return (0);
	json_array_foreach(v, i, x) {
		if (!json_is_integer(x))
			return (0);
	}
	return (1);
}

/* Adds one sequence whose prompt is v: a string or an array of token ids. */
static void
openai_one_input(struct sim_job *job, json_t *v)
{
	struct sim_tok	 tok;
	struct sim_seq	*seq;
	json_t		*x;
	size_t		 i;

	seq = sim_job_seq_begin(job, &tok);
	if (json_is_string(v))
		sim_tok_text(&tok, json_string_value(v), json_string_length(v));
	else {
		json_array_foreach(v, i, x)
			sim_tok_id(&tok, json_integer_value(x));
	}
	sim_job_seq_end(job, seq, &tok);
}

/*
 * Reads field name (a prompt or an input) of body: a string, an array of
 * token ids, or an array of either: one sequence each.
 */
static int
openai_inputs(struct sim_job *job, json_t *body, const char *name,
    struct sim_error *err)
{
	json_t	*v = json_object_get(body, name), *x;
	size_t	 i;

	if (v == NULL || json_is_null(v)) {
		sim_error_set(err, 400, "invalid_request_error",
		    "'%s' is required", name);
		return (-1);
	}
	if (json_is_string(v) || (openai_is_ids(v) && json_array_size(v) > 0)) {
		openai_one_input(job, v);
		return (0);
	}
	if (!json_is_array(v) || json_array_size(v) == 0)
		goto bad;
	if (json_array_size(v) > MAX_INPUTS) {
		sim_error_set(err, 400, "invalid_request_error",
		    "'%s' has more than %d entries", name, MAX_INPUTS);
		return (-1);
	}
	json_array_foreach(v, i, x) {
		if (!json_is_string(x) && !openai_is_ids(x))
			goto bad;
	}
	json_array_foreach(v, i, x)
		openai_one_input(job, x);
	return (0);
bad:
	sim_error_set(err, 400, "invalid_request_error", "'%s' must be a "
	    "string, an array of token ids, or a non-empty array of either",
	    name);
	return (-1);
}

/* Reads encoding_format and dimensions of an embeddings request. */
static int
openai_embed_options(struct sim_job *job, json_t *body, struct sim_error *err)
{
	json_t		*v;
	const char	*s;

	v = json_object_get(body, "encoding_format");
	if (v != NULL && !json_is_null(v)) {
		s = json_is_string(v) ? json_string_value(v) : "";
		if (strcmp(s, "base64") == 0)
			job->base64 = 1;
		else if (strcmp(s, "float") != 0) {
			sim_error_set(err, 400, "invalid_request_error",
			    "'encoding_format' must be float or base64");
			return (-1);
		}
	}
	v = json_object_get(body, "dimensions");
	if (v != NULL && !json_is_null(v)) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 ||
		    json_integer_value(v) > 65536) {
			sim_error_set(err, 400, "invalid_request_error",
			    "'dimensions' must be an integer from 1 to 65536");
			return (-1);
		}
		job->dims = (unsigned)json_integer_value(v);
	}
	return (0);
}

/* Fills job from the JSON body of a chat, completion or embeddings call. */
/*
 * A chat request that offers tools (and does not say tool_choice "none")
 * is answered with a call of the first one, unless its last message is a
 * tool's result: job->keep is then the tool's name.
 */
static void
openai_tools(struct sim_job *job, json_t *body)
{
	json_t	*tools = json_object_get(body, "tools");
	json_t	*choice = json_object_get(body, "tool_choice");
	json_t	*msgs = json_object_get(body, "messages"), *last, *name;

	if (!json_is_array(tools) || json_array_size(tools) == 0)
		return;
	if (json_is_string(choice) && strcmp(json_string_value(choice),
	    "none") == 0)
		return;
	last = json_array_get(msgs, json_array_size(msgs) - 1);
	if (json_is_string(json_object_get(last, "role")) &&
	    strcmp(json_string_value(json_object_get(last, "role")),
	    "tool") == 0)
		return;
	name = json_object_get(json_object_get(json_array_get(tools, 0),
	    "function"), "name");
	if (json_is_string(name))
		job->keep = json_incref(name);
}

/* The name of the tool job calls, or NULL: it answers in text. */
static const char *
openai_tool(const struct sim_job *job)
{
	return (json_is_string(job->keep) ? json_string_value(job->keep) :
	    NULL);
}

static int
openai_parse(struct sim_job *job, json_t *body, struct sim_error *err)
{
	json_t	*model;

	if (!json_is_object(body)) {
		sim_error_set(err, 400, "invalid_request_error",
		    "the request body must be a JSON object");
		return (-1);
	}
	model = json_object_get(body, "model");
	if (model != NULL && !json_is_null(model) && !json_is_string(model)) {
		sim_error_set(err, 400, "invalid_request_error",
		    "'model' must be a string");
		return (-1);
	}
	if (sim_job_model(job, json_is_string(model) ?
	    json_string_value(model) : NULL, err) != 0)
		return (-1);
	switch (job->call) {
	case SIM_CALL_CHAT:
		if (openai_gen_options(job, body, err) != 0)
			return (-1);
		openai_tools(job, body);
		return (openai_messages(job, body, err));
	case SIM_CALL_COMPLETION:
		if (openai_gen_options(job, body, err) != 0)
			return (-1);
		return (openai_inputs(job, body, "prompt", err));
	default:
		if (openai_embed_options(job, body, err) != 0)
			return (-1);
		return (openai_inputs(job, body, "input", err));
	}
}

/* ==== Answers ==== */

/* Appends the id of job: chatcmpl- or cmpl-, then 32 letters and digits. */
static void
openai_id(struct sim_job *job, struct evbuffer *out)
{
	sim_job_id(job, job->call == SIM_CALL_CHAT ? "chatcmpl-" : "cmpl-", 32,
	    out);
}

/* Appends "model":"..." for job. */
static void
openai_model(struct sim_job *job, struct evbuffer *out)
{
	ADD(out, "\"model\":\"");
	sim_json_escape(out, job->model, strlen(job->model));
	ADD(out, "\"");
}

/* Appends the usage object of job. */
static void
openai_usage(struct sim_job *job, struct evbuffer *out)
{
	unsigned	p = sim_job_prompt_tokens(job);
	unsigned	c = sim_job_completion_tokens(job);

	ADD(out, "\"usage\":{\"completion_tokens\":");
	sim_put_uint(out, c);
	ADD(out, ",\"prompt_tokens\":");
	sim_put_uint(out, p);
	ADD(out, ",\"total_tokens\":");
	sim_put_uint(out, p + c);
	ADD(out, ",\"prompt_tokens_details\":{\"cached_tokens\":");
	sim_put_uint(out, sim_job_cached_tokens(job));
	ADD(out, "}}");
}

/* Appends llama.cpp's timings object of job, measured in real time. */
static void
openai_timings(struct sim_job *job, struct evbuffer *out)
{
	unsigned	k = sim_job_cached_tokens(job);
	unsigned	pn = sim_job_prompt_tokens(job) - k;
	unsigned	cn = sim_job_completion_tokens(job);
	double		pms = (job->t_prefilled - job->t_admit) / 1e3;
	double		cms = (sim_now_us() - job->t_prefilled) / 1e3;

	ADD(out, "\"timings\":{\"cache_n\":");
	sim_put_uint(out, k);
	ADD(out, ",\"prompt_n\":");
	sim_put_uint(out, pn);
	ADD(out, ",\"prompt_ms\":");
	sim_put_fixed3(out, pms);
	ADD(out, ",\"prompt_per_token_ms\":");
	sim_put_fixed3(out, pn != 0 ? pms / pn : 0);
	ADD(out, ",\"prompt_per_second\":");
	sim_put_fixed3(out, pms > 0 ? pn * 1e3 / pms : 0);
	ADD(out, ",\"predicted_n\":");
	sim_put_uint(out, cn);
	ADD(out, ",\"predicted_ms\":");
	sim_put_fixed3(out, cms);
	ADD(out, ",\"predicted_per_token_ms\":");
	sim_put_fixed3(out, cn != 0 ? cms / cn : 0);
	ADD(out, ",\"predicted_per_second\":");
	sim_put_fixed3(out, cms > 0 ? cn * 1e3 / cms : 0);
	ADD(out, "}");
}

/* Appends the finish reason of seq, quoted. */
static void
openai_reason(struct sim_seq *seq, struct evbuffer *out)
{
	if (openai_tool(seq->job) != NULL)
		ADD(out, "\"tool_calls\"");
	else if (seq->stop)
		ADD(out, "\"stop\"");
	else
		ADD(out, "\"length\"");
}

/* Appends the generated text of seq so far, up to a stop sequence. */
static void
openai_text(struct sim_seq *seq, struct evbuffer *out)
{
	sim_seq_text(seq, 1, out);
}

/* Appends "system_fingerprint" (after a comma) when the dialect has one. */
static void
openai_fingerprint(struct sim_job *job, struct evbuffer *out)
{
	const char	*fp = dialect(job)->fingerprint;

	if (fp == NULL)
		return;
	ADD(out, ",\"system_fingerprint\":\"");
	evbuffer_add(out, fp, strlen(fp));
	ADD(out, "\"");
}

/*
 * Appends the fields every chunk of job ends with (not the closing brace);
 * usage_chunk: the chunk that carries the usage.
 */
static void
openai_chunk_tail(struct sim_job *job, int usage_chunk, struct evbuffer *out)
{
	const struct dialect	*d = dialect(job);
	static const char	 pad[] = "abcdefghijklmnopqrstuvwxyzABCDEF";
	uint64_t		 h;
	unsigned		 i, n;

	ADD(out, ",\"created\":");
	sim_put_uint(out, (uint64_t)time(NULL));
	ADD(out, ",\"id\":\"");
	openai_id(job, out);
	ADD(out, "\",");
	openai_model(job, out);
	openai_fingerprint(job, out);
	ADD(out, ",\"object\":");
	if (job->call == SIM_CALL_CHAT)
		ADD(out, "\"chat.completion.chunk\"");
	else
		ADD(out, "\"text_completion\"");
	if (d->usage_null && job->include_usage && !usage_chunk)
		ADD(out, ",\"usage\":null");
	if (d->obfuscation) {
		/* Pads chunks to hide their lengths: 1 to 12 characters. */
		h = sim_mix64(job->id ^ (uint64_t)job->emitted << 32 ^
		    evbuffer_get_length(out));
		n = 1 + (unsigned)(h % 12);
		ADD(out, ",\"obfuscation\":\"");
		for (i = 0; i < n; i++, h >>= 5)
			evbuffer_add(out, &pad[h & 31], 1);
		ADD(out, "\"");
	}
}

/*
 * Appends ,"stop_reason":... (or the dialect's name for it) for seq: the
 * stop string that ended it, else null.  Nothing in dialects without one.
 */
static void
openai_stop_member(struct sim_job *job, struct sim_seq *seq,
    struct evbuffer *out)
{
	const char	*name = dialect(job)->stop_member, *stop;

	if (name == NULL)
		return;
	ADD(out, ",\"");
	evbuffer_add(out, name, strlen(name));
	ADD(out, "\":");
	if (seq->stop && seq->stop_seq != 0) {
		stop = job->stops[seq->stop_seq - 1];
		ADD(out, "\"");
		sim_json_escape(out, stop, strlen(stop));
		ADD(out, "\"");
	} else
		ADD(out, "null");
}

/* Appends the base64 form of the len bytes at p. */
static void
openai_base64(const unsigned char *p, size_t len, struct evbuffer *out)
{
	static const char	 b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				    "abcdefghijklmnopqrstuvwxyz0123456789+/";
	char			 q[4];
	size_t			 i;
	uint32_t		 v;

	for (i = 0; i < len; i += 3) {
		v = (uint32_t)p[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < len)
			v |= p[i + 2];
		q[0] = b64[(v >> 18) & 63];
		q[1] = b64[(v >> 12) & 63];
		q[2] = i + 1 < len ? b64[(v >> 6) & 63] : '=';
		q[3] = i + 2 < len ? b64[v & 63] : '=';
		evbuffer_add(out, q, 4);
	}
}

/* Appends the embeddings answer of job. */
static void
openai_embeddings(struct sim_job *job, struct evbuffer *out)
{
	float		*v = sim_xcalloc(job->dims, sizeof *v);
	unsigned char	 le[4];
	unsigned	 i, j, p = sim_job_prompt_tokens(job);
	uint32_t	 bits;

	ADD(out, "{");
	openai_model(job, out);
	evbuffer_add_printf(out, ",\"object\":\"list\",\"usage\":"
	    "{\"prompt_tokens\":%u,\"total_tokens\":%u},\"data\":[", p, p);
	for (i = 0; i < job->nseq; i++) {
		sim_embedding(job->seqs[i].hash, job->dims, v);
		evbuffer_add(out, i == 0 ? "{\"embedding\":" :
		    ",{\"embedding\":", i == 0 ? 13 : 14);
		if (job->base64) {
			ADD(out, "\"");
			for (j = 0; j < job->dims; j++) {
				memcpy(&bits, &v[j], 4);
				le[0] = bits & 0xff;
				le[1] = (bits >> 8) & 0xff;
				le[2] = (bits >> 16) & 0xff;
				le[3] = bits >> 24;
				memcpy(&v[j], le, 4);
			}
			openai_base64((unsigned char *)v, job->dims * 4, out);
			ADD(out, "\"");
		} else {
			for (j = 0; j < job->dims; j++)
				evbuffer_add_printf(out, "%s%.7g",
				    j == 0 ? "[" : ",", v[j]);
			ADD(out, "]");
		}
		evbuffer_add_printf(out, ",\"index\":%u,\"object\":"
		    "\"embedding\"}", i);
	}
	ADD(out, "]}");
	free(v);
}

/*
 * Appends the start of the tool call of seq, up to the opening quote of
 * the argument q inside "arguments": {"index":0,"id":...,"type":
 * "function","function":{"name":...,"arguments":"{\"q\":\"  (index:
 * streams only).  The generated text is the value of q.
 */
static void
openai_call_head(struct sim_job *job, struct sim_seq *seq, int stream,
    struct evbuffer *out)
{
	const char	*name = openai_tool(job);

	if (stream)
		ADD(out, "{\"index\":0,\"id\":\"");
	else
		ADD(out, "{\"id\":\"");
	sim_job_id(job, "call_", 24, out);
	sim_put_uint(out, seq->index);
	ADD(out, "\",\"type\":\"function\",\"function\":{\"name\":\"");
	sim_json_escape(out, name, strlen(name));
	ADD(out, "\",\"arguments\":\"{\\\"q\\\":");
}

/* Appends the whole (non-streamed) answer of job. */
static void
openai_reply(struct sim_job *job, struct evbuffer *out)
{
	struct sim_seq	*seq;
	unsigned	 i;
	int		 chat = job->call == SIM_CALL_CHAT;

	if (job->call == SIM_CALL_EMBEDDING) {
		openai_embeddings(job, out);
		return;
	}
	ADD(out, "{\"choices\":[");
	for (i = 0; i < job->nseq; i++) {
		seq = &job->seqs[i];
		if (i != 0)
			ADD(out, ",");
		if (chat) {
			ADD(out, "{\"finish_reason\":");
			openai_reason(seq, out);
			openai_stop_member(job, seq, out);
			ADD(out, ",\"index\":");
			sim_put_uint(out, i);
			ADD(out, ",\"message\":{\"role\":\"assistant\",");
			if (openai_tool(job) != NULL) {
				ADD(out, "\"content\":null,\"tool_calls\":[");
				openai_call_head(job, seq, 0, out);
				ADD(out, "\\\"");
				openai_text(seq, out);
				ADD(out, "\\\"}\"}}]}}");
			} else {
				ADD(out, "\"content\":\"");
				openai_text(seq, out);
				ADD(out, "\"}}");
			}
		} else {
			ADD(out, "{\"text\":\"");
			openai_text(seq, out);
			ADD(out, "\",\"index\":");
			sim_put_uint(out, i);
			ADD(out, ",\"logprobs\":null,\"finish_reason\":");
			openai_reason(seq, out);
			openai_stop_member(job, seq, out);
			ADD(out, "}");
		}
	}
	ADD(out, "],\"created\":");
	sim_put_uint(out, (uint64_t)time(NULL));
	ADD(out, ",");
	openai_model(job, out);
	openai_fingerprint(job, out);
	ADD(out, ",\"object\":");
	if (chat)
		ADD(out, "\"chat.completion\",");
	else
		ADD(out, "\"text_completion\",");
	openai_usage(job, out);
	ADD(out, ",\"id\":\"");
	openai_id(job, out);
	ADD(out, "\"");
	if (dialect(job)->timings) {
		ADD(out, ",");
		openai_timings(job, out);
	}
	ADD(out, "}");
}

/* Appends the first events of a stream: the assistant role, for chat. */
static void
openai_stream_head(struct sim_job *job, struct evbuffer *out)
{
	const char	*role = dialect(job)->role_delta;

	if (job->call != SIM_CALL_CHAT || role == NULL)
		return;
	ADD(out, "data: {\"choices\":[{\"finish_reason\":null,\"index\":0,"
	    "\"delta\":");
	evbuffer_add(out, role, strlen(role));
	ADD(out, "}]");
	openai_chunk_tail(job, 0, out);
	ADD(out, "}\n\n");
}

/* Appends the event carrying the newest token of seq. */
static void
openai_stream_token(struct sim_job *job, struct sim_seq *seq,
    struct evbuffer *out)
{
	const char	*w;
	size_t		 len;

	w = sim_seq_piece(seq, seq->produced - 1, 1, &len);
	if (openai_tool(job) != NULL) {
		ADD(out, "data: {\"choices\":[{\"finish_reason\":null,"
		    "\"index\":");
		sim_put_uint(out, seq->index);
		ADD(out, ",\"delta\":{\"tool_calls\":[");
		if (seq->produced == 1) {
			openai_call_head(job, seq, 1, out);
			ADD(out, "\\\"");
		} else
			ADD(out, "{\"index\":0,\"function\":{\"arguments\":\"");
		evbuffer_add(out, w, len);
		ADD(out, "\"}}]}}]");
	} else if (job->call == SIM_CALL_CHAT) {
		ADD(out, "data: {\"choices\":[{\"finish_reason\":null,"
		    "\"index\":");
		sim_put_uint(out, seq->index);
		ADD(out, ",\"delta\":{\"content\":\"");
		evbuffer_add(out, w, len);
		ADD(out, "\"}}]");
	} else {
		ADD(out, "data: {\"choices\":[{\"text\":\"");
		evbuffer_add(out, w, len);
		ADD(out, "\",\"index\":");
		sim_put_uint(out, seq->index);
		ADD(out, ",\"logprobs\":null,\"finish_reason\":null}]");
	}
	openai_chunk_tail(job, 0, out);
	ADD(out, "}\n\n");
}

/*
 * Whether the last finish chunk of job carries the usage: completions
 * always (as llama.cpp does; sy-sim's own shape too), llama.cpp's chat too.
 */
static int
openai_usage_on_finish(struct sim_job *job)
{
	return ((dialect(job)->usage_on_finish & (job->call == SIM_CALL_CHAT ?
	    FINISH_CHAT : FINISH_COMPLETIONS)) != 0);
}

/*
 * Appends the event ending seq; the last one of job carries the timings
 * (sy-sim, llama.cpp) and, as openai_usage_on_finish says, the usage.
 */
static void
openai_stream_seq_end(struct sim_job *job, struct sim_seq *seq, int last,
    struct evbuffer *out)
{
	int	usage = last && openai_usage_on_finish(job);

	if (openai_tool(job) != NULL) {
		/* The end of the arguments, then the finish chunk. */
		ADD(out, "data: {\"choices\":[{\"finish_reason\":null,"
		    "\"index\":");
		sim_put_uint(out, seq->index);
		ADD(out, ",\"delta\":{\"tool_calls\":[{\"index\":0,"
		    "\"function\":{\"arguments\":\"\\\"}\"}}]}}]");
		openai_chunk_tail(job, 0, out);
		ADD(out, "}\n\n");
	}
	if (job->call == SIM_CALL_CHAT) {
		ADD(out, "data: {\"choices\":[{\"finish_reason\":");
		openai_reason(seq, out);
		openai_stop_member(job, seq, out);
		ADD(out, ",\"index\":");
		sim_put_uint(out, seq->index);
		ADD(out, ",\"delta\":{}}]");
	} else {
		ADD(out, "data: {\"choices\":[{\"text\":\"\",\"index\":");
		sim_put_uint(out, seq->index);
		ADD(out, ",\"logprobs\":null,\"finish_reason\":");
		openai_reason(seq, out);
		openai_stop_member(job, seq, out);
		ADD(out, "}]");
	}
	openai_chunk_tail(job, usage, out);
	if (usage) {
		ADD(out, ",");
		openai_usage(job, out);
	}
	if (last && dialect(job)->timings) {
		ADD(out, ",");
		openai_timings(job, out);
	}
	ADD(out, "}\n\n");
}

/*
 * Appends the end of a stream: the usage chunk if asked for (unless the
 * finish chunk carried it), then [DONE].
 */
static void
openai_stream_end(struct sim_job *job, struct evbuffer *out)
{
	if (job->include_usage && !openai_usage_on_finish(job)) {
		ADD(out, "data: {\"choices\":[]");
		openai_chunk_tail(job, 1, out);
		ADD(out, ",");
		openai_usage(job, out);
		if (dialect(job)->timings) {
			ADD(out, ",");
			openai_timings(job, out);
		}
		ADD(out, "}\n\n");
	}
	ADD(out, "data: [DONE]\n\n");
}

/*
 * Appends an error in the middle of a stream as the dialect sends one:
 * llama.cpp an "error:" line, the others a data event with an error
 * object; vLLM, SGLang and llama.cpp then send [DONE].
 */
static void
openai_stream_error(struct sim_job *job, struct evbuffer *out)
{
	switch (DIALECT(job)) {
	case SIM_DIALECT_LLAMACPP:
		ADD(out, "error: {\"code\":500,\"message\":\"injected fault: "
		    "context shift is disabled\",\"type\":\"server_error\"}"
		    "\n\n");
		break;
	case SIM_DIALECT_VLLM:
	case SIM_DIALECT_SGLANG:
		ADD(out, "data: {\"error\":{\"object\":\"error\",\"message\":"
		    "\"injected fault: error in the middle of the stream\","
		    "\"type\":\"InternalServerError\",\"param\":null,"
		    "\"code\":500}}\n\n");
		break;
	case SIM_DIALECT_OPENAI:
		ADD(out, "data: {\"error\":{\"message\":\"injected fault: "
		    "error in the middle of the stream\",\"type\":"
		    "\"server_error\",\"param\":null,\"code\":null}}\n\n");
		break;
	default:
		ADD(out, "data: {\"error\":{\"code\":500,\"message\":"
		    "\"injected fault: error in the middle of the stream\","
		    "\"type\":\"server_error\"}}\n\n");
	}
	if (dialect(job)->done_after_error)
		ADD(out, "data: [DONE]\n\n");
}

/* Appends the error body of err; its status is sent as is. */
static int
openai_error(struct evbuffer *out, const struct sim_error *err)
{
	evbuffer_add_printf(out, "{\"error\":{\"code\":%d,\"message\":\"",
	    err->status);
	sim_json_escape(out, err->message, strlen(err->message));
	evbuffer_add_printf(out, "\",\"type\":\"%s\"", err->type);
	if (err->n_ctx != 0)
		evbuffer_add_printf(out, ",\"n_prompt_tokens\":%u,\"n_ctx\":%u",
		    err->n_prompt_tokens, err->n_ctx);
	ADD(out, "}}");
	return (err->status);
}


/* Appends the answer of /v1/models: llama.cpp's shape, one entry a model. */
static void
openai_models(struct sim_replica *r, struct evbuffer *out)
{
	json_t		*models = json_array(), *data = json_array(), *top;
	const char	*name;
	unsigned	 i, n = r->p.nmodels == 0 ? 1 : r->p.nmodels;
	char		*s;

	for (i = 0; i < n; i++) {
		name = r->p.nmodels == 0 ? SIM_DEFAULT_MODEL : r->p.models[i];
		json_array_append_new(models, json_pack("{ss ss ss ss ss ss ss"
		    " s[s] s[s] ss s{ss ss ss s[s] ss ss}}",
		    "name", name, "model", name, "modified_at", "", "size", "",
		    "digest", "", "type", "model", "description", "",
		    "tags", "", "capabilities", "completion", "parameters", "",
		    "details", "parent_model", "", "format", "gguf",
		    "family", "", "families", "", "parameter_size", "",
		    "quantization_level", ""));
		json_array_append_new(data, json_pack("{ss s[s] s[] ss sI ss"
		    " s{si si si si}}",
		    "id", name, "aliases", name, "tags", "object", "model",
		    "created", (json_int_t)time(NULL), "owned_by", "sy-sim",
		    "meta", "n_ctx", r->p.context_tokens, "n_ctx_train",
		    r->p.context_tokens, "n_embd", r->p.embedding_dims,
		    "slots", r->p.slots));
	}
	top = json_pack("{so ss so}", "models", models, "object", "list",
	    "data", data);
	s = json_dumps(top, JSON_COMPACT);
	evbuffer_add(out, s, strlen(s));
	free(s);
	json_decref(top);
}

/* Answers /v1/models and /health. */
static int
openai_info(struct sim_replica *r, const struct sim_route *route,
    const char *path, struct evbuffer *out, struct sim_error *err)
{
	if (route->call == SIM_CALL_MODELS)
		openai_models(r, out);
	else
		ADD(out, "{\"status\":\"ok\"}");
	return (0);
}

const struct sim_proto sim_proto_openai = {
	.name = "openai",
	.routes = openai_routes,
	.stream_type = "text/event-stream",
	.frame_end = "\n\n",
	.parse = openai_parse,
	.error = openai_error,
	.info = openai_info,
	.reply = openai_reply,
	.stream_head = openai_stream_head,
	.stream_token = openai_stream_token,
	.stream_seq_end = openai_stream_seq_end,
	.stream_end = openai_stream_end,
	.stream_error = openai_stream_error,
};

const char *const sim_dialect_names[] = { "sim", "openai", "vllm",
    "llama.cpp", "sglang", NULL };
