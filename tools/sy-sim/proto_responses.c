/* sy-sim: OpenAI's Responses API wire protocol (POST /v1/responses). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "sim.h"

/* Appends a string literal. */
#define ADD(out, lit) evbuffer_add(out, lit, sizeof(lit) - 1)

/* Events before the first token: created, in_progress, the item (and its part). */
#define HEAD_EVENTS(job) (responses_tool(job) != NULL ? 3u : 4u)

static const struct sim_route responses_routes[] = {
	{ "/v1/responses", EVHTTP_REQ_POST, SIM_CALL_CHAT, 0 },
	{ NULL, 0, SIM_CALL_NONE, 0 }
};

/* ==== Requests ==== */

/* The name of the tool job calls, or NULL: it answers in text. */
static const char *
responses_tool(const struct sim_job *job)
{
	return (json_is_string(job->keep) ? json_string_value(job->keep) :
	    NULL);
}

/* Tokenizes a message item's content: a string or an array of parts. */
static int
responses_content(struct sim_tok *tok, json_t *content, size_t i,
    struct sim_error *err)
{
	json_t	*part, *text, *type;
	size_t	 j;

	if (json_is_string(content)) {
		sim_tok_text(tok, json_string_value(content),
		    json_string_length(content));
		return (0);
	}
	if (!json_is_array(content))
		goto bad;
	json_array_foreach(content, j, part) {
		type = json_object_get(part, "type");
		if (!json_is_string(type))
			goto bad;
		text = json_object_get(part, "text");
		if (json_is_string(text))
			sim_tok_text(tok, json_string_value(text),
			    json_string_length(text));
		else	/* an image or a file counts as one token */
			sim_tok_part(tok, json_string_value(type),
			    json_string_length(type));
	}
	return (0);
bad:
	sim_error_set(err, 400, "invalid_request_error", "Invalid value for "
	    "'input[%zu].content': expected a string or an array of content "
	    "parts.", i);
	return (-1);
}

/* Tokenizes input item i: a message, a function call or its output. */
static int
responses_item(struct sim_tok *tok, json_t *item, size_t i,
    struct sim_error *err)
{
	json_t		*role = json_object_get(item, "role");
	const char	*type = json_string_value(json_object_get(item, "type"));
	json_t		*v;

	if (!json_is_object(item))
		goto bad;
	if (type == NULL || strcmp(type, "message") == 0) {
		if (!json_is_string(role))
			goto bad;
		sim_tok_role(tok, json_string_value(role),
		    json_string_length(role));
		return (responses_content(tok, json_object_get(item, "content"),
		    i, err));
	}
	if (!json_is_string(json_object_get(item, "call_id")))
		goto bad;
	if (strcmp(type, "function_call") == 0) {
		sim_tok_role(tok, "assistant", 9);
		v = json_object_get(item, "name");
		if (!json_is_string(v))
			goto bad;
		sim_tok_text(tok, json_string_value(v), json_string_length(v));
		v = json_object_get(item, "arguments");
		if (json_is_string(v))
			sim_tok_text(tok, json_string_value(v),
			    json_string_length(v));
		return (0);
	}
	if (strcmp(type, "function_call_output") == 0) {
		sim_tok_role(tok, "tool", 4);
		v = json_object_get(item, "output");
		if (!json_is_string(v))
			goto bad;
		sim_tok_text(tok, json_string_value(v), json_string_length(v));
		return (0);
	}
bad:
	sim_error_set(err, 400, "invalid_request_error", "Invalid value for "
	    "'input[%zu]': expected a message, a function_call or a "
	    "function_call_output item.", i);
	return (-1);
}

/*
 * Reads instructions and input as one prompt, as the OpenAI protocol reads
 * the same conversation: the instructions as a system message first, each
 * item a role token and its text, then the token that opens the answer.
 */
static int
responses_input(struct sim_job *job, json_t *body, struct sim_error *err)
{
	struct sim_tok	 tok;
	struct sim_seq	*seq;
	json_t		*input = json_object_get(body, "input"), *item;
	json_t		*instr = json_object_get(body, "instructions");
	size_t		 i;

	if (!json_is_string(input) && (!json_is_array(input) ||
	    json_array_size(input) == 0)) {
		sim_error_set(err, 400, "invalid_request_error", input == NULL ?
		    "Missing required parameter: 'input'." : "Invalid type for "
		    "'input': expected a string or a non-empty array of items.");
		return (-1);
	}
	seq = sim_job_seq_begin(job, &tok);
	if (json_is_string(instr)) {
		sim_tok_role(&tok, "system", 6);
		sim_tok_text(&tok, json_string_value(instr),
		    json_string_length(instr));
	}
	if (json_is_string(input)) {
		sim_tok_role(&tok, "user", 4);
		sim_tok_text(&tok, json_string_value(input),
		    json_string_length(input));
	} else
		json_array_foreach(input, i, item)
			if (responses_item(&tok, item, i, err) != 0)
				return (-1);
	sim_tok_role(&tok, "assistant", 9);
	sim_job_seq_end(job, seq, &tok);
	return (0);
}

/*
 * A request that offers function tools (and does not say tool_choice
 * "none") is answered with a call of the first one, unless its last input
 * item is a function call's output: job->keep is then the tool's name.
 */
static void
responses_tools(struct sim_job *job, json_t *body)
{
	json_t		*tools = json_object_get(body, "tools"), *last, *name;
	json_t		*choice = json_object_get(body, "tool_choice");
	json_t		*input = json_object_get(body, "input");
	const char	*type;

	if (!json_is_array(tools) || json_array_size(tools) == 0)
		return;
	if (json_is_string(choice) && strcmp(json_string_value(choice),
	    "none") == 0)
		return;
	last = json_array_get(input, json_array_size(input) - 1);
	type = json_string_value(json_object_get(last, "type"));
	if (type != NULL && strcmp(type, "function_call_output") == 0)
		return;
	name = json_object_get(json_array_get(tools, 0), "name");
	if (json_is_string(name))
		job->keep = json_incref(name);
}

/* Fills job from the body of a Responses request. */
static int
responses_parse(struct sim_job *job, json_t *body, struct sim_error *err)
{
	json_t		*model, *v;
	json_int_t	 n;

	if (!json_is_object(body)) {
		sim_error_set(err, 400, "invalid_request_error",
		    "the request body must be a JSON object");
		return (-1);
	}
	model = json_object_get(body, "model");
	if (!json_is_string(model)) {
		sim_error_set(err, 400, "invalid_request_error", model == NULL ?
		    "Missing required parameter: 'model'." :
		    "Invalid type for 'model': expected a string.");
		return (-1);
	}
	if (sim_job_model(job, json_string_value(model), err) != 0)
		return (-1);
	v = json_object_get(body, "max_output_tokens");
	if (v != NULL && !json_is_null(v)) {
		if (!json_is_integer(v) || (n = json_integer_value(v)) < 1 ||
		    n > 100000000) {
			sim_error_set(err, 400, "invalid_request_error",
			    "Invalid 'max_output_tokens': expected a positive "
			    "integer.");
			return (-1);
		}
		job->max_tokens = (unsigned)n;
	}
	v = json_object_get(body, "stream");
	if (v != NULL && !json_is_null(v) && !json_is_boolean(v)) {
		sim_error_set(err, 400, "invalid_request_error",
		    "Invalid type for 'stream': expected a boolean.");
		return (-1);
	}
	job->stream = json_is_true(v);
	responses_tools(job, body);
	return (responses_input(job, body, err));
}

/* ==== Answers ==== */

/* Appends "sequence_number":n} closing an event's data, and its end. */
static void
responses_seq(struct evbuffer *out, unsigned n)
{
	ADD(out, ",\"sequence_number\":");
	sim_put_uint(out, n);
	ADD(out, "}\n\n");
}

/* Appends the usage object of job. */
static void
responses_usage(struct sim_job *job, struct evbuffer *out)
{
	unsigned	p = sim_job_prompt_tokens(job);
	unsigned	c = sim_job_completion_tokens(job);

	ADD(out, "\"usage\":{\"input_tokens\":");
	sim_put_uint(out, p);
	ADD(out, ",\"input_tokens_details\":{\"cached_tokens\":");
	sim_put_uint(out, sim_job_cached_tokens(job));
	ADD(out, "},\"output_tokens\":");
	sim_put_uint(out, c);
	ADD(out, ",\"output_tokens_details\":{\"reasoning_tokens\":0},"
	    "\"total_tokens\":");
	sim_put_uint(out, p + c);
	ADD(out, "}");
}

/* Appends the arguments text of job's call (inside a JSON string). */
static void
responses_args(struct sim_job *job, struct evbuffer *out)
{
	ADD(out, "{\\\"q\\\":\\\"");
	sim_seq_text(&job->seqs[0], 1, out);
	ADD(out, "\\\"}");
}

/*
 * Appends job's output item: its message with the text so far, or its
 * function call; done: completed, else in progress without content.
 */
static void
responses_item_out(struct sim_job *job, int done, struct evbuffer *out)
{
	const char	*name = responses_tool(job);
	const char	*status = !done ? "in_progress" :
	    job->seqs[0].stop || name != NULL ? "completed" : "incomplete";

	if (name != NULL) {
		ADD(out, "{\"type\":\"function_call\",\"id\":\"");
		sim_job_id(job, "fc_", 24, out);
		ADD(out, "\",\"call_id\":\"");
		sim_job_id(job, "call_", 24, out);
		ADD(out, "\",\"name\":\"");
		sim_json_escape(out, name, strlen(name));
		ADD(out, "\",\"arguments\":\"");
		if (done)
			responses_args(job, out);
		evbuffer_add_printf(out, "\",\"status\":\"%s\"}", status);
		return;
	}
	ADD(out, "{\"type\":\"message\",\"id\":\"");
	sim_job_id(job, "msg_", 24, out);
	evbuffer_add_printf(out, "\",\"status\":\"%s\",\"role\":\"assistant\","
	    "\"content\":[", status);
	if (done) {
		ADD(out, "{\"type\":\"output_text\",\"text\":\"");
		sim_seq_text(&job->seqs[0], 1, out);
		ADD(out, "\",\"annotations\":[]}");
	}
	ADD(out, "]}");
}

/*
 * Appends the response object of job: in progress (no output yet), or
 * done: completed, or incomplete when its text reached max_output_tokens.
 */
static void
responses_object(struct sim_job *job, int done, struct evbuffer *out)
{
	int	incomplete = done && !job->seqs[0].stop &&
	    responses_tool(job) == NULL;

	ADD(out, "{\"id\":\"");
	sim_job_id(job, "resp_", 24, out);
	ADD(out, "\",\"object\":\"response\",\"created_at\":");
	sim_put_uint(out, (uint64_t)time(NULL));
	evbuffer_add_printf(out, ",\"status\":\"%s\",\"error\":null,"
	    "\"incomplete_details\":", !done ? "in_progress" : incomplete ?
	    "incomplete" : "completed");
	if (incomplete)
		ADD(out, "{\"reason\":\"max_output_tokens\"}");
	else
		ADD(out, "null");
	ADD(out, ",\"model\":\"");
	sim_json_escape(out, job->model, strlen(job->model));
	ADD(out, "\",\"output\":[");
	if (done)
		responses_item_out(job, 1, out);
	ADD(out, "],\"parallel_tool_calls\":true,\"store\":false,");
	if (done)
		responses_usage(job, out);
	else
		ADD(out, "\"usage\":null");
	ADD(out, ",\"metadata\":{}}");
}

static void
responses_reply(struct sim_job *job, struct evbuffer *out)
{
	responses_object(job, 1, out);
}

/* Appends an event of type whose data continues with more (JSON members). */
static void
responses_event(struct evbuffer *out, const char *type)
{
	evbuffer_add_printf(out, "event: %s\ndata: {\"type\":\"%s\"", type,
	    type);
}

/* Appends the item's ids an event about it carries. */
static void
responses_at(struct sim_job *job, struct evbuffer *out, int part)
{
	ADD(out, ",\"item_id\":\"");
	sim_job_id(job, responses_tool(job) != NULL ? "fc_" : "msg_", 24, out);
	ADD(out, "\",\"output_index\":0");
	if (part)
		ADD(out, ",\"content_index\":0");
}

/* created, in_progress, the item added (and its content part). */
static void
responses_stream_head(struct sim_job *job, struct evbuffer *out)
{
	responses_event(out, "response.created");
	ADD(out, ",\"response\":");
	responses_object(job, 0, out);
	responses_seq(out, 0);
	responses_event(out, "response.in_progress");
	ADD(out, ",\"response\":");
	responses_object(job, 0, out);
	responses_seq(out, 1);
	responses_event(out, "response.output_item.added");
	ADD(out, ",\"output_index\":0,\"item\":");
	responses_item_out(job, 0, out);
	responses_seq(out, 2);
	if (responses_tool(job) != NULL)
		return;
	responses_event(out, "response.content_part.added");
	responses_at(job, out, 1);
	ADD(out, ",\"part\":{\"type\":\"output_text\",\"text\":\"\","
	    "\"annotations\":[]}");
	responses_seq(out, 3);
}

/* A delta with the newest token (none for trimmed text). */
static void
responses_stream_token(struct sim_job *job, struct sim_seq *seq,
    struct evbuffer *out)
{
	const char	*w;
	size_t		 len;
	int		 tool = responses_tool(job) != NULL;

	w = sim_seq_piece(seq, seq->produced - 1, 1, &len);
	if (len == 0)
		return;
	responses_event(out, tool ? "response.function_call_arguments.delta" :
	    "response.output_text.delta");
	responses_at(job, out, !tool);
	ADD(out, ",\"delta\":\"");
	if (tool && seq->produced == 1)
		ADD(out, "{\\\"q\\\":\\\"");
	evbuffer_add(out, w, len);
	ADD(out, "\"");
	if (!tool)
		ADD(out, ",\"logprobs\":[]");
	responses_seq(out, HEAD_EVENTS(job) + seq->produced - 1);
}

/* The text's (or the arguments') end: its done events and the item's. */
static void
responses_stream_seq_end(struct sim_job *job, struct sim_seq *seq, int last,
    struct evbuffer *out)
{
	unsigned	n = HEAD_EVENTS(job) + seq->produced;

	if (responses_tool(job) != NULL) {
		responses_event(out, "response.function_call_arguments.delta");
		responses_at(job, out, 0);
		ADD(out, ",\"delta\":\"");
		if (seq->produced == 0)
			ADD(out, "{\\\"q\\\":\\\"");
		ADD(out, "\\\"}\"");
		responses_seq(out, n++);
		responses_event(out, "response.function_call_arguments.done");
		responses_at(job, out, 0);
		ADD(out, ",\"arguments\":\"");
		responses_args(job, out);
		ADD(out, "\"");
		responses_seq(out, n++);
	} else {
		responses_event(out, "response.output_text.done");
		responses_at(job, out, 1);
		ADD(out, ",\"text\":\"");
		sim_seq_text(seq, 1, out);
		ADD(out, "\",\"logprobs\":[]");
		responses_seq(out, n++);
		responses_event(out, "response.content_part.done");
		responses_at(job, out, 1);
		ADD(out, ",\"part\":{\"type\":\"output_text\",\"text\":\"");
		sim_seq_text(seq, 1, out);
		ADD(out, "\",\"annotations\":[]}");
		responses_seq(out, n++);
	}
	responses_event(out, "response.output_item.done");
	ADD(out, ",\"output_index\":0,\"item\":");
	responses_item_out(job, 1, out);
	responses_seq(out, n);
}

/* completed (or incomplete) with the whole response and its usage. */
static void
responses_stream_end(struct sim_job *job, struct evbuffer *out)
{
	struct sim_seq	*seq = &job->seqs[0];
	int		 incomplete = !seq->stop && responses_tool(job) == NULL;

	responses_event(out, incomplete ? "response.incomplete" :
	    "response.completed");
	ADD(out, ",\"response\":");
	responses_object(job, 1, out);
	/* After the three done events of responses_stream_seq_end. */
	responses_seq(out, HEAD_EVENTS(job) + seq->produced + 3);
}

/* response.failed in the middle of the stream. */
static void
responses_stream_error(struct sim_job *job, struct evbuffer *out)
{
	responses_event(out, "response.failed");
	ADD(out, ",\"response\":{\"id\":\"");
	sim_job_id(job, "resp_", 24, out);
	ADD(out, "\",\"object\":\"response\",\"status\":\"failed\",\"error\":"
	    "{\"code\":\"server_error\",\"message\":\"injected fault: error in "
	    "the middle of the stream\"},\"output\":[]}");
	responses_seq(out, HEAD_EVENTS(job) + job->seqs[0].produced);
}

/* Appends err in OpenAI's shape; returns its status. */
static int
responses_error(struct evbuffer *out, const struct sim_error *err)
{
	ADD(out, "{\"error\":{\"message\":\"");
	if (err->n_ctx != 0)
		evbuffer_add_printf(out, "Your input exceeds the context window "
		    "of this model (%u tokens > %u).", err->n_prompt_tokens,
		    err->n_ctx);
	else
		sim_json_escape(out, err->message, strlen(err->message));
	ADD(out, "\",\"type\":\"");
	sim_json_escape(out, err->type, strlen(err->type));
	ADD(out, "\",\"param\":null,\"code\":");
	if (err->n_ctx != 0)
		ADD(out, "\"context_length_exceeded\"");
	else
		ADD(out, "null");
	ADD(out, "}}");
	return (err->status);
}

/* No call of this protocol needs it. */
static int
responses_info(struct sim_replica *r, const struct sim_route *route,
    const char *path, struct evbuffer *out, struct sim_error *err)
{
	sim_error_set(err, 404, "invalid_request_error", "Not Found");
	return (-1);
}

const struct sim_proto sim_proto_responses = {
	.name = "responses",
	.routes = responses_routes,
	.stream_type = "text/event-stream",
	.frame_end = "\n\n",
	.parse = responses_parse,
	.error = responses_error,
	.info = responses_info,
	.reply = responses_reply,
	.stream_head = responses_stream_head,
	.stream_token = responses_stream_token,
	.stream_seq_end = responses_stream_seq_end,
	.stream_end = responses_stream_end,
	.stream_error = responses_stream_error,
};
