/* sy-sim: the Anthropic Messages wire protocol (POST /v1/messages). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "sim.h"

/* Appends a string literal. */
#define ADD(out, lit) evbuffer_add(out, lit, sizeof(lit) - 1)

static const struct sim_route anthropic_routes[] = {
	{ "/v1/messages", EVHTTP_REQ_POST, SIM_CALL_CHAT, 0 },
	{ NULL, 0, SIM_CALL_NONE, 0 }
};

/* ==== Requests ==== */

/* Whether v, when present, is a number from lo to hi. */
static int
anthropic_number(json_t *v, double lo, double hi)
{
	return (v == NULL || (json_is_number(v) && json_number_value(v) >= lo &&
	    json_number_value(v) <= hi));
}

static int	anthropic_blocks(struct sim_tok *, json_t *, const char *,
		    struct sim_error *);

/* Tokenizes content block b, at where in the request. */
static int
anthropic_block(struct sim_tok *tok, json_t *b, const char *where,
    struct sim_error *err)
{
	json_t		*type, *text, *name, *input, *content;
	const char	*t;
	char		*s, inner[128];

	type = json_object_get(b, "type");
	if (!json_is_object(b) || !json_is_string(type)) {
		sim_error_set(err, 400, "invalid_request_error",
		    "%s: Input should be an object with a string 'type'", where);
		return (-1);
	}
	t = json_string_value(type);
	text = json_object_get(b, "text");
	if (strcmp(t, "text") == 0) {
		if (!json_is_string(text)) {
			sim_error_set(err, 400, "invalid_request_error",
			    "%s.text: Field required", where);
			return (-1);
		}
		sim_tok_text(tok, json_string_value(text),
		    json_string_length(text));
		return (0);
	}
	if (strcmp(t, "tool_use") == 0) {
		name = json_object_get(b, "name");
		input = json_object_get(b, "input");
		if (!json_is_string(json_object_get(b, "id")) ||
		    !json_is_string(name) || !json_is_object(input)) {
			sim_error_set(err, 400, "invalid_request_error",
			    "%s: a tool_use block needs a string 'id' and "
			    "'name' and an object 'input'", where);
			return (-1);
		}
		sim_tok_text(tok, json_string_value(name),
		    json_string_length(name));
		s = json_dumps(input, JSON_COMPACT | JSON_SORT_KEYS);
		if (s != NULL)
			sim_tok_text(tok, s, strlen(s));
		free(s);
		return (0);
	}
	if (strcmp(t, "tool_result") == 0) {
		if (!json_is_string(json_object_get(b, "tool_use_id"))) {
			sim_error_set(err, 400, "invalid_request_error",
			    "%s.tool_use_id: Field required", where);
			return (-1);
		}
		content = json_object_get(b, "content");
		if (content == NULL)
			return (0);
		snprintf(inner, sizeof inner, "%.100s.content", where);
		return (anthropic_blocks(tok, content, inner, err));
	}
	/* An image, a document, thinking...: its text, or one token. */
	if (json_is_string(text))
		sim_tok_text(tok, json_string_value(text),
		    json_string_length(text));
	else
		sim_tok_part(tok, t, json_string_length(type));
	return (0);
}

/*
 * Tokenizes v, a string or an array of content blocks (system, message
 * and tool_result content); where names v in errors.
 */
static int
anthropic_blocks(struct sim_tok *tok, json_t *v, const char *where,
    struct sim_error *err)
{
	json_t	*b;
	size_t	 i;
	char	 inner[160];

	if (json_is_string(v)) {
		sim_tok_text(tok, json_string_value(v), json_string_length(v));
		return (0);
	}
	if (!json_is_array(v)) {
		sim_error_set(err, 400, "invalid_request_error",
		    "%s: Input should be a string or an array of content "
		    "blocks", where);
		return (-1);
	}
	json_array_foreach(v, i, b) {
		snprintf(inner, sizeof inner, "%.128s.%zu", where, i);
		if (anthropic_block(tok, b, inner, err) != 0)
			return (-1);
	}
	return (0);
}

/*
 * Reads system and messages as one prompt, as the OpenAI protocol reads
 * the same conversation: a role token and the content of each message
 * (system first), then the token that opens the answer.
 */
static int
anthropic_messages(struct sim_job *job, json_t *body, struct sim_error *err)
{
	struct sim_tok	 tok;
	struct sim_seq	*seq;
	json_t		*msgs, *m, *role, *system;
	const char	*r;
	size_t		 i;
	char		 where[64];

	msgs = json_object_get(body, "messages");
	if (msgs == NULL) {
		sim_error_set(err, 400, "invalid_request_error",
		    "messages: Field required");
		return (-1);
	}
	if (!json_is_array(msgs) || json_array_size(msgs) == 0) {
		sim_error_set(err, 400, "invalid_request_error",
		    "messages: Input should be a non-empty array");
		return (-1);
	}
	seq = sim_job_seq_begin(job, &tok);
	system = json_object_get(body, "system");
	if (system != NULL && !json_is_null(system)) {
		sim_tok_role(&tok, "system", 6);
		if (anthropic_blocks(&tok, system, "system", err) != 0)
			return (-1);
	}
	json_array_foreach(msgs, i, m) {
		role = json_object_get(m, "role");
		r = json_is_string(role) ? json_string_value(role) : "";
		if (!json_is_object(m) || (strcmp(r, "user") != 0 &&
		    strcmp(r, "assistant") != 0)) {
			sim_error_set(err, 400, "invalid_request_error",
			    "messages.%zu.role: Input should be 'user' or "
			    "'assistant'", i);
			return (-1);
		}
		sim_tok_role(&tok, r, strlen(r));
		snprintf(where, sizeof where, "messages.%zu.content", i);
		if (json_object_get(m, "content") == NULL) {
			sim_error_set(err, 400, "invalid_request_error",
			    "%s: Field required", where);
			return (-1);
		}
		if (anthropic_blocks(&tok, json_object_get(m, "content"), where,
		    err) != 0)
			return (-1);
	}
	sim_tok_role(&tok, "assistant", 9);
	sim_job_seq_end(job, seq, &tok);
	return (0);
}

/* Fills job from the body of a Messages request. */
static int
anthropic_parse(struct sim_job *job, json_t *body, struct sim_error *err)
{
	json_t		*model, *v, *s;
	json_int_t	 n;
	size_t		 i;

	if (!json_is_object(body)) {
		sim_error_set(err, 400, "invalid_request_error",
		    "the request body must be a JSON object");
		return (-1);
	}
	model = json_object_get(body, "model");
	if (!json_is_string(model)) {
		sim_error_set(err, 400, "invalid_request_error", model == NULL ?
		    "model: Field required" :
		    "model: Input should be a valid string");
		return (-1);
	}
	if (sim_job_model(job, json_string_value(model), err) != 0)
		return (-1);
	v = json_object_get(body, "max_tokens");
	if (v == NULL) {
		sim_error_set(err, 400, "invalid_request_error",
		    "max_tokens: Field required");
		return (-1);
	}
	if (!json_is_integer(v) || (n = json_integer_value(v)) < 1 ||
	    n > 100000000) {
		sim_error_set(err, 400, "invalid_request_error",
		    "max_tokens: Input should be a positive integer");
		return (-1);
	}
	job->max_tokens = (unsigned)n;
	job->max_is_cap = 1;
	v = json_object_get(body, "stream");
	if (v != NULL && !json_is_boolean(v)) {
		sim_error_set(err, 400, "invalid_request_error",
		    "stream: Input should be a valid boolean");
		return (-1);
	}
	job->stream = v != NULL && json_is_true(v);
	if (!anthropic_number(json_object_get(body, "temperature"), 0, 1) ||
	    !anthropic_number(json_object_get(body, "top_p"), 0, 1)) {
		sim_error_set(err, 400, "invalid_request_error",
		    "temperature and top_p: Input should be a number from 0 "
		    "to 1");
		return (-1);
	}
	v = json_object_get(body, "stop_sequences");
	if (v != NULL && !json_is_null(v)) {
		if (!json_is_array(v))
			goto bad_stop;
		json_array_foreach(v, i, s) {
			if (!json_is_string(s))
				goto bad_stop;
			sim_job_stop(job, json_string_value(s),
			    json_string_length(s));
		}
	}
	return (anthropic_messages(job, body, err));
bad_stop:
	sim_error_set(err, 400, "invalid_request_error",
	    "stop_sequences: Input should be an array of strings");
	return (-1);
}

/* ==== Answers ==== */

/* Appends the stop_reason and stop_sequence members for seq. */
static void
anthropic_stop(struct sim_job *job, struct sim_seq *seq, struct evbuffer *out)
{
	const char	*s;

	if (seq->stop_seq != 0) {
		s = job->stops[seq->stop_seq - 1];
		ADD(out, "\"stop_reason\":\"stop_sequence\","
		    "\"stop_sequence\":\"");
		sim_json_escape(out, s, strlen(s));
		ADD(out, "\"");
	} else if (seq->stop)
		ADD(out, "\"stop_reason\":\"end_turn\",\"stop_sequence\":null");
	else
		ADD(out, "\"stop_reason\":\"max_tokens\","
		    "\"stop_sequence\":null");
}

/* Appends the usage object of job; output is the output_tokens shown. */
static void
anthropic_usage(struct sim_job *job, unsigned output, struct evbuffer *out)
{
	unsigned	k = sim_job_cached_tokens(job);

	ADD(out, "\"usage\":{\"input_tokens\":");
	sim_put_uint(out, sim_job_prompt_tokens(job) - k);
	ADD(out, ",\"cache_creation_input_tokens\":0,"
	    "\"cache_read_input_tokens\":");
	sim_put_uint(out, k);
	ADD(out, ",\"output_tokens\":");
	sim_put_uint(out, output);
	ADD(out, "}");
}

/* Appends the message object of job up to its content's opening. */
static void
anthropic_message_head(struct sim_job *job, struct evbuffer *out)
{
	ADD(out, "{\"id\":\"");
	sim_job_id(job, "msg_", 24, out);
	ADD(out, "\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"");
	sim_json_escape(out, job->model, strlen(job->model));
	ADD(out, "\",\"content\":[");
}

/* Appends the whole answer of job. */
static void
anthropic_reply(struct sim_job *job, struct evbuffer *out)
{
	struct sim_seq	*seq = &job->seqs[0];

	anthropic_message_head(job, out);
	ADD(out, "{\"type\":\"text\",\"text\":\"");
	sim_seq_text(seq, 1, out);
	ADD(out, "\"}],");
	anthropic_stop(job, seq, out);
	ADD(out, ",");
	anthropic_usage(job, sim_job_completion_tokens(job), out);
	ADD(out, "}");
}

/* message_start, content_block_start and ping. */
static void
anthropic_stream_head(struct sim_job *job, struct evbuffer *out)
{
	ADD(out, "event: message_start\ndata: {\"type\":\"message_start\","
	    "\"message\":");
	anthropic_message_head(job, out);
	ADD(out, "],\"stop_reason\":null,\"stop_sequence\":null,");
	anthropic_usage(job, 1, out);
	ADD(out, "}}\n\n"
	    "event: content_block_start\ndata: {\"type\":"
	    "\"content_block_start\",\"index\":0,\"content_block\":"
	    "{\"type\":\"text\",\"text\":\"\"}}\n\n"
	    "event: ping\ndata: {\"type\":\"ping\"}\n\n");
}

/* A content_block_delta with the newest token (none for trimmed text). */
static void
anthropic_stream_token(struct sim_job *job, struct sim_seq *seq,
    struct evbuffer *out)
{
	const char	*w;
	size_t		 len;

	w = sim_seq_piece(seq, seq->produced - 1, 1, &len);
	if (len == 0)
		return;
	ADD(out, "event: content_block_delta\ndata: {\"type\":"
	    "\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
	    "\"text_delta\",\"text\":\"");
	evbuffer_add(out, w, len);
	ADD(out, "\"}}\n\n");
}

/* content_block_stop. */
static void
anthropic_stream_seq_end(struct sim_job *job, struct sim_seq *seq, int last,
    struct evbuffer *out)
{
	ADD(out, "event: content_block_stop\ndata: {\"type\":"
	    "\"content_block_stop\",\"index\":0}\n\n");
}

/* message_delta with the stop reason and output tokens, message_stop. */
static void
anthropic_stream_end(struct sim_job *job, struct evbuffer *out)
{
	ADD(out, "event: message_delta\ndata: {\"type\":\"message_delta\","
	    "\"delta\":{");
	anthropic_stop(job, &job->seqs[0], out);
	ADD(out, "},\"usage\":{\"output_tokens\":");
	sim_put_uint(out, sim_job_completion_tokens(job));
	ADD(out, "}}\n\n"
	    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
}

/* An error event in the middle of the stream, as the API documents it. */
static void
anthropic_stream_error(struct sim_job *job, struct evbuffer *out)
{
	ADD(out, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":"
	    "\"overloaded_error\",\"message\":\"injected fault: error in the "
	    "middle of the stream\"}}\n\n");
}

/*
 * Appends err in Anthropic's shape and returns its status: 503 becomes
 * 529 overloaded_error, other 5xx api_error.
 */
static int
anthropic_error(struct evbuffer *out, const struct sim_error *err)
{
	const char	*type;
	int		 status = err->status;

	switch (status) {
	case 401:
		type = "authentication_error";
		break;
	case 403:
		type = "permission_error";
		break;
	case 404:
		type = "not_found_error";
		break;
	case 413:
		type = "request_too_large";
		break;
	case 429:
		type = "rate_limit_error";
		break;
	case 503:
	case 529:
		status = 529;
		type = "overloaded_error";
		break;
	default:
		type = status >= 500 ? "api_error" : "invalid_request_error";
		break;
	}
	ADD(out, "{\"type\":\"error\",\"error\":{\"type\":\"");
	evbuffer_add(out, type, strlen(type));
	ADD(out, "\",\"message\":\"");
	if (err->n_ctx != 0)
		evbuffer_add_printf(out, "prompt is too long: %u tokens > %u "
		    "maximum", err->n_prompt_tokens, err->n_ctx);
	else
		sim_json_escape(out, err->message, strlen(err->message));
	ADD(out, "\"}}");
	return (status);
}

/* No call of this protocol needs it. */
static int
anthropic_info(struct sim_replica *r, const struct sim_route *route,
    const char *path, struct evbuffer *out, struct sim_error *err)
{
	sim_error_set(err, 404, "not_found_error", "Not Found");
	return (-1);
}

const struct sim_proto sim_proto_anthropic = {
	.name = "anthropic",
	.routes = anthropic_routes,
	.stream_type = "text/event-stream",
	.frame_end = "\n\n",
	.parse = anthropic_parse,
	.error = anthropic_error,
	.info = anthropic_info,
	.reply = anthropic_reply,
	.stream_head = anthropic_stream_head,
	.stream_token = anthropic_stream_token,
	.stream_seq_end = anthropic_stream_seq_end,
	.stream_end = anthropic_stream_end,
	.stream_error = anthropic_stream_error,
};
