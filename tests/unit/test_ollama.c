/* Unit tests of the Ollama adapter: requests in Ollama's shape, answers and NDJSON streams in OpenAI's. */
#include <string.h>

#include <event2/buffer.h>

#include "backend.h"
#include "framing.h"
#include "config.h"
#include "ndjson.h"
#include "req.h"
#include "sse.h"
#include "sy_test.h"
#include "sy_test_req.h"

static const struct sy_backend_kind *ollama;


static struct sy_endpoint plain_ep = { .name = "e" };
static struct sy_endpoint keyed_ep = { .name = "k", .api_key = "sk-123" };

/* The upstream request (path, headers) of the last encode. */
static struct sy_upstream_req up;

/* The body the encode of text (for api) produced, parsed; NULL when refused (*err set). */
static json_t *
encode(enum sy_api api, const char *text, const char *model, char **err)
{
	struct sy_req *req = sy_test_req(api, text, model);
	struct evbuffer *out = evbuffer_new();
	json_t *obj = NULL;

	memset(&up, 0, sizeof up);
	*err = NULL;
	if (ollama->encode(req, &plain_ep, out, &up, err) == 0) {
		obj = json_loadb((const char *)evbuffer_pullup(out, -1),
		    evbuffer_get_length(out), 0, NULL);
		SY_CHECK(obj != NULL);
	} else
		SY_CHECK_INT(evbuffer_get_length(out), 0);
	evbuffer_free(out);
	return obj;
}

/* Whether encoding text is refused with a message that contains want. */
static int
refused_with(enum sy_api api, const char *text, const char *want)
{
	char *err;
	json_t *obj = encode(api, text, NULL, &err);
	int ok = obj == NULL && err != NULL && strstr(err, want) != NULL;

	if (!ok)
		printf("# %s: got %s\n", text, err ? err : "(accepted)");
	json_decref(obj);
	free(err);
	return ok;
}

/* The JSON text of obj's member key, compact, for comparisons. */
static char *
dump(const json_t *obj, const char *key)
{
	json_t *v = key ? json_object_get(obj, key) : (json_t *)obj;

	return v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) :
	    strdup("(none)");
}

#define CHECK_JSON(obj, key, want) do {					\
	char *got_ = dump(obj, key);					\
	SY_CHECK_STR(got_, want);					\
	free(got_);							\
} while (0)

SY_TEST(chat_goes_to_api_chat_with_stream_and_options)
{
	char *err;
	json_t *o = encode(SY_API_CHAT, "{\"model\":\"gpt-4o\",\"messages\":"
	    "[{\"role\":\"user\",\"content\":\"hi\",\"name\":\"bob\"}],"
	    "\"max_tokens\":8,\"temperature\":0.5,\"top_p\":1,\"stop\":\"\\n\","
	    "\"seed\":7,\"presence_penalty\":0.25,\"user\":\"u1\"}",
	    "llama3.2", &err);

	SY_CHECK_STR(up.path, "/api/chat");
	SY_CHECK_STR(up.headers, "");
	CHECK_JSON(o, "model", "\"llama3.2\"");
	CHECK_JSON(o, "messages", "[{\"role\":\"user\",\"content\":\"hi\"}]");
	CHECK_JSON(o, "stream", "false");
	CHECK_JSON(o, "options", "{\"num_predict\":8,\"temperature\":0.5,"
	    "\"top_p\":1,\"presence_penalty\":0.25,\"seed\":7,"
	    "\"stop\":[\"\\n\"]}");
	SY_CHECK_INT(json_object_size(o), 4);
	json_decref(o);
}

SY_TEST(stream_is_always_said_and_no_options_means_none)
{
	char *err;
	json_t *o = encode(SY_API_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":"
	    "\"user\",\"content\":\"hi\"}],\"stream\":true,\"stream_options\":"
	    "{\"include_usage\":true},\"max_tokens\":null}", NULL, &err);

	CHECK_JSON(o, "stream", "true");
	SY_CHECK(json_object_get(o, "options") == NULL);
	SY_CHECK(json_object_get(o, "stream_options") == NULL);
	json_decref(o);
}

SY_TEST(max_completion_tokens_wins_over_max_tokens)
{
	char *err;
	json_t *o = encode(SY_API_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":"
	    "\"user\",\"content\":\"hi\"}],\"max_tokens\":100,"
	    "\"max_completion_tokens\":20,\"stop\":[\"a\",\"b\"]}", NULL, &err);

	CHECK_JSON(o, "options", "{\"num_predict\":20,\"stop\":[\"a\",\"b\"]}");
	json_decref(o);
}

SY_TEST(text_parts_are_joined_and_developer_is_system)
{
	char *err;
	json_t *o = encode(SY_API_CHAT, "{\"model\":\"m\",\"messages\":["
	    "{\"role\":\"developer\",\"content\":\"be brief\"},"
	    "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"one\"},"
	    "{\"type\":\"text\",\"text\":\"two\"}]},"
	    "{\"role\":\"assistant\",\"content\":null}]}", NULL, &err);

	CHECK_JSON(o, "messages", "[{\"role\":\"system\",\"content\":\"be brief\"},"
	    "{\"role\":\"user\",\"content\":\"one\\ntwo\"},"
	    "{\"role\":\"assistant\",\"content\":\"\"}]");
	json_decref(o);
}

SY_TEST(images_and_odd_parts_are_refused_naming_the_field)
{
	SY_CHECK(refused_with(SY_API_CHAT, "{\"model\":\"m\",\"messages\":["
	    "{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"user\",\"content\":"
	    "[{\"type\":\"text\",\"text\":\"what is it\"},{\"type\":\"image_url\","
	    "\"image_url\":{\"url\":\"data:image/png;base64,AAAA\"}}]}]}",
	    "'messages[1].content[1]' is a 'image_url' part"));
	SY_CHECK(refused_with(SY_API_CHAT, "{\"model\":\"m\",\"messages\":["
	    "{\"role\":\"user\",\"content\":[{\"type\":\"text\"}]}]}",
	    "'messages[0].content[0]' must be a text part"));
	SY_CHECK(refused_with(SY_API_CHAT, "{\"model\":\"m\",\"messages\":["
	    "{\"role\":\"user\",\"content\":7}]}", "'messages[0].content'"));
	SY_CHECK(refused_with(SY_API_CHAT, "{\"model\":\"m\",\"messages\":["
	    "{\"content\":\"x\"}]}", "'messages[0].role' must be a string"));
	SY_CHECK(refused_with(SY_API_CHAT, "{\"model\":\"m\",\"messages\":[]}",
	    "'messages' must not be empty"));
}

SY_TEST(tools_are_refused_but_an_empty_list_is_not)
{
	static const char *const with_tools[] = {
		"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
		    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]}",
		"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
		    "\"functions\":[{\"name\":\"f\"}]}",
		"{\"model\":\"m\",\"messages\":[{\"role\":\"assistant\",\"content\":null,"
		    "\"tool_calls\":[{\"id\":\"c\",\"type\":\"function\"}]}]}",
		"{\"model\":\"m\",\"messages\":[{\"role\":\"tool\",\"content\":\"4\","
		    "\"tool_call_id\":\"c\"}]}",
		NULL
	};
	char *err;
	json_t *o;
	size_t i;

	for (i = 0; with_tools[i] != NULL; i++)
		SY_CHECK(refused_with(SY_API_CHAT, with_tools[i],
		    "tools are not supported with the ollama backend"));
	o = encode(SY_API_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":"
	    "\"user\",\"content\":\"x\"}],\"tools\":[],\"tool_choice\":\"none\"}",
	    NULL, &err);
	SY_CHECK(o != NULL);
	SY_CHECK(json_object_get(o, "tools") == NULL);
	json_decref(o);
}

SY_TEST(what_ollama_cannot_do_is_refused)
{
	const char *chat = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\","
	    "\"content\":\"x\"}],";
	char text[512];

	snprintf(text, sizeof text, "%s\"n\":2}", chat);
	SY_CHECK(refused_with(SY_API_CHAT, text, "'n' other than 1"));
	snprintf(text, sizeof text, "%s\"logprobs\":true}", chat);
	SY_CHECK(refused_with(SY_API_CHAT, text, "'logprobs'"));
	snprintf(text, sizeof text, "%s\"max_tokens\":\"8\"}", chat);
	SY_CHECK(refused_with(SY_API_CHAT, text, "'max_tokens' must be an integer"));
	snprintf(text, sizeof text, "%s\"temperature\":\"hot\"}", chat);
	SY_CHECK(refused_with(SY_API_CHAT, text, "'temperature' must be a number"));
	snprintf(text, sizeof text, "%s\"stop\":[1]}", chat);
	SY_CHECK(refused_with(SY_API_CHAT, text, "'stop'"));
	snprintf(text, sizeof text, "%s\"response_format\":{\"type\":\"xml\"}}", chat);
	SY_CHECK(refused_with(SY_API_CHAT, text, "'response_format'"));
	SY_CHECK(refused_with(SY_API_COMPLETIONS, "{\"model\":\"m\",\"prompt\":"
	    "\"x\",\"echo\":true}", "'echo'"));
}

SY_TEST(response_format_becomes_format)
{
	char *err;
	json_t *o = encode(SY_API_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":"
	    "\"user\",\"content\":\"x\"}],\"response_format\":{\"type\":"
	    "\"json_object\"}}", NULL, &err);

	CHECK_JSON(o, "format", "\"json\"");
	json_decref(o);
	o = encode(SY_API_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":"
	    "\"user\",\"content\":\"x\"}],\"response_format\":{\"type\":"
	    "\"json_schema\",\"json_schema\":{\"name\":\"n\",\"schema\":"
	    "{\"type\":\"object\"}}}}", NULL, &err);
	CHECK_JSON(o, "format", "{\"type\":\"object\"}");
	json_decref(o);
}

SY_TEST(completion_goes_to_api_generate_with_one_prompt)
{
	char *err;
	json_t *o = encode(SY_API_COMPLETIONS, "{\"model\":\"m\",\"prompt\":"
	    "[\"once upon\"],\"max_tokens\":3,\"stream\":true,\"suffix\":\"end\"}",
	    NULL, &err);

	SY_CHECK_STR(up.path, "/api/generate");
	CHECK_JSON(o, "prompt", "\"once upon\"");
	CHECK_JSON(o, "suffix", "\"end\"");
	CHECK_JSON(o, "stream", "true");
	CHECK_JSON(o, "options", "{\"num_predict\":3}");
	json_decref(o);
	SY_CHECK(refused_with(SY_API_COMPLETIONS, "{\"model\":\"m\",\"prompt\":"
	    "[\"a\",\"b\"]}", "several prompts in 'prompt'"));
	SY_CHECK(refused_with(SY_API_COMPLETIONS, "{\"model\":\"m\",\"prompt\":"
	    "[1,2,3]}", "token ids in 'prompt'"));
	SY_CHECK(refused_with(SY_API_COMPLETIONS, "{\"model\":\"m\",\"prompt\":"
	    "5}", "'prompt' must be a string"));
}

SY_TEST(embeddings_go_to_api_embed_without_stream)
{
	char *err;
	json_t *o = encode(SY_API_EMBEDDINGS, "{\"model\":\"m\",\"input\":"
	    "[\"a\",\"b\"],\"dimensions\":8,\"encoding_format\":\"float\"}",
	    NULL, &err);

	SY_CHECK_STR(up.path, "/api/embed");
	CHECK_JSON(o, NULL, "{\"model\":\"m\",\"input\":[\"a\",\"b\"],"
	    "\"dimensions\":8}");
	json_decref(o);
	o = encode(SY_API_EMBEDDINGS, "{\"model\":\"m\",\"input\":\"a\"}", NULL,
	    &err);
	CHECK_JSON(o, "input", "\"a\"");
	json_decref(o);
	SY_CHECK(refused_with(SY_API_EMBEDDINGS, "{\"model\":\"m\",\"input\":"
	    "[[1,2]]}", "token ids in 'input'"));
	SY_CHECK(refused_with(SY_API_EMBEDDINGS, "{\"model\":\"m\",\"input\":"
	    "\"a\",\"encoding_format\":\"hex\"}", "'encoding_format'"));
}

SY_TEST(api_key_goes_in_a_bearer_header)
{
	struct sy_req *req = sy_test_req(SY_API_EMBEDDINGS,
	    "{\"model\":\"m\",\"input\":\"x\"}", NULL);
	struct evbuffer *out = evbuffer_new();
	char *err = NULL;

	memset(&up, 0, sizeof up);
	SY_CHECK_INT(ollama->encode(req, &keyed_ep, out, &up, &err), 0);
	SY_CHECK_STR(up.headers, "Authorization: Bearer sk-123\r\n");
	evbuffer_free(out);
}

/* ==== Answers ==== */

/* Decodes text answered with status for a request of api; the result parsed. */
static json_t *
decode(enum sy_api api, const char *request, int status, const char *text,
    struct sy_usage *u, int *rc, char **err)
{
	struct sy_req *req = sy_test_req(api, request, "llama3.2");
	struct evbuffer *body = evbuffer_new(), *out = evbuffer_new();
	json_t *obj;

	evbuffer_add(body, text, strlen(text));
	u->prompt_tokens = u->completion_tokens = u->cached_tokens = -1;
	*err = NULL;
	*rc = ollama->decode(req, status, body, out, u, err);
	obj = json_loadb((const char *)evbuffer_pullup(out, -1),
	    evbuffer_get_length(out), 0, NULL);
	if (*rc == 0)
		SY_CHECK(obj != NULL);
	else
		SY_CHECK_INT(evbuffer_get_length(out), 0);
	evbuffer_free(body);
	evbuffer_free(out);
	return obj;
}

static const char chat_req[] = "{\"model\":\"m\",\"messages\":[{\"role\":"
    "\"user\",\"content\":\"hi\"}]}";

SY_TEST(chat_answer_becomes_a_chat_completion)
{
	struct sy_usage u;
	char *err;
	int rc;
	json_t *o = decode(SY_API_CHAT, chat_req, 200, "{\"model\":\"llama3.2\","
	    "\"created_at\":\"2024-07-22T20:33:28.123648Z\",\"message\":{\"role\":"
	    "\"assistant\",\"content\":\"Hi \\\"there\\\" \\u00e9\\n\"},"
	    "\"done_reason\":\"length\",\"done\":true,\"total_duration\":5191566416,"
	    "\"load_duration\":2154458,\"prompt_eval_count\":26,"
	    "\"prompt_eval_duration\":383809000,\"eval_count\":298,"
	    "\"eval_duration\":4799921000}", &u, &rc, &err);

	SY_CHECK_INT(rc, 0);
	CHECK_JSON(o, "id", "\"chatcmpl-r42\"");
	CHECK_JSON(o, "object", "\"chat.completion\"");
	CHECK_JSON(o, "created", "1721680408");
	CHECK_JSON(o, "model", "\"llama3.2\"");
	CHECK_JSON(o, "choices", "[{\"index\":0,\"message\":{\"role\":"
	    "\"assistant\",\"content\":\"Hi \\\"there\\\" \xc3\xa9\\n\"},"
	    "\"logprobs\":null,\"finish_reason\":\"length\"}]");
	CHECK_JSON(o, "usage", "{\"prompt_tokens\":26,\"completion_tokens\":298,"
	    "\"total_tokens\":324,\"prompt_tokens_details\":{\"cached_tokens\":0}}");
	SY_CHECK_INT(u.prompt_tokens, 26);
	SY_CHECK_INT(u.completion_tokens, 298);
	SY_CHECK_INT(u.cached_tokens, 0);
	json_decref(o);
}

SY_TEST(thinking_becomes_reasoning_content_and_stop_is_the_default)
{
	struct sy_usage u;
	char *err;
	int rc;
	json_t *o = decode(SY_API_CHAT, chat_req, 200, "{\"model\":\"qwen3\","
	    "\"created_at\":\"2025-05-29T09:35:56.012222Z\",\"message\":{\"role\":"
	    "\"assistant\",\"content\":\"4\",\"thinking\":\"2+2\"},"
	    "\"done\":true,\"done_reason\":\"stop\",\"eval_count\":3}",
	    &u, &rc, &err);

	SY_CHECK_INT(rc, 0);
	CHECK_JSON(json_array_get(json_object_get(o, "choices"), 0), NULL,
	    "{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"4\","
	    "\"reasoning_content\":\"2+2\"},\"logprobs\":null,"
	    "\"finish_reason\":\"stop\"}");
	SY_CHECK_INT(u.prompt_tokens, 0);
	SY_CHECK_INT(u.completion_tokens, 3);
	json_decref(o);
}

SY_TEST(generate_answer_becomes_a_text_completion)
{
	struct sy_usage u;
	char *err;
	int rc;
	json_t *o = decode(SY_API_COMPLETIONS, "{\"model\":\"m\",\"prompt\":\"x\"}",
	    200, "{\"model\":\"llama3.2\",\"created_at\":\"2024-07-22T22:33:28+02:00\","
	    "\"response\":\" the sky\",\"done\":true,\"done_reason\":\"stop\","
	    "\"context\":[1,2,3],\"prompt_eval_count\":2,\"eval_count\":2}",
	    &u, &rc, &err);

	SY_CHECK_INT(rc, 0);
	CHECK_JSON(o, "id", "\"cmpl-r42\"");
	CHECK_JSON(o, "object", "\"text_completion\"");
	CHECK_JSON(o, "created", "1721680408");
	CHECK_JSON(o, "choices", "[{\"index\":0,\"text\":\" the sky\","
	    "\"logprobs\":null,\"finish_reason\":\"stop\"}]");
	SY_CHECK_INT(u.prompt_tokens, 2);
	SY_CHECK_INT(u.completion_tokens, 2);
	json_decref(o);
}

SY_TEST(embed_answer_becomes_an_embeddings_list_numbers_as_sent)
{
	struct sy_usage u;
	char *err, *text;
	struct sy_req *req;
	struct evbuffer *body = evbuffer_new(), *out = evbuffer_new();
	const char *answer = "{\"model\":\"all-minilm\",\"embeddings\":"
	    "[[0.010071029, -0.0017594862,1e-05 ] , [ 0.5,-1]],"
	    "\"total_duration\":14143917,\"load_duration\":1019500,"
	    "\"prompt_eval_count\":8}";

	req = sy_test_req(SY_API_EMBEDDINGS, "{\"model\":\"m\",\"input\":[\"a\",\"b\"]}",
	    NULL);
	evbuffer_add(body, answer, strlen(answer));
	u.prompt_tokens = u.completion_tokens = u.cached_tokens = -1;
	err = NULL;
	SY_CHECK_INT(ollama->decode(req, 200, body, out, &u, &err), 0);
	evbuffer_add(out, "", 1);
	text = (char *)evbuffer_pullup(out, -1);
	SY_CHECK_STR(text, "{\"object\":\"list\",\"data\":[{\"object\":"
	    "\"embedding\",\"index\":0,\"embedding\":[0.010071029, "
	    "-0.0017594862,1e-05 ]},{\"object\":\"embedding\",\"index\":1,"
	    "\"embedding\":[ 0.5,-1]}],\"model\":\"all-minilm\",\"usage\":"
	    "{\"prompt_tokens\":8,\"total_tokens\":8}}");
	SY_CHECK_INT(u.prompt_tokens, 8);
	SY_CHECK_INT(u.completion_tokens, -1);
	evbuffer_free(body);
	evbuffer_free(out);
}

SY_TEST(embed_answer_in_base64_when_asked)
{
	struct sy_usage u;
	char *err;
	int rc;
	json_t *o = decode(SY_API_EMBEDDINGS, "{\"model\":\"m\",\"input\":[\"a\","
	    "\"b\",\"c\"],\"encoding_format\":\"base64\"}", 200,
	    "{\"embeddings\":[[1.0,-2.5],[0.5,0.25,-1],[]],\"prompt_eval_count\":3}",
	    &u, &rc, &err);
	json_t *data = json_object_get(o, "data");

	SY_CHECK_INT(rc, 0);
	CHECK_JSON(json_array_get(data, 0), "embedding", "\"AACAPwAAIMA=\"");
	CHECK_JSON(json_array_get(data, 1), "embedding", "\"AAAAPwAAgD4AAIC/\"");
	CHECK_JSON(json_array_get(data, 2), "embedding", "\"\"");
	CHECK_JSON(o, "model", "\"llama3.2\"");
	json_decref(o);
}

SY_TEST(errors_become_openai_errors_with_the_status_kept)
{
	struct sy_usage u;
	char *err;
	int rc;
	json_t *o;

	o = decode(SY_API_CHAT, chat_req, 404, "{\"error\":\"model \\\"llama3.2\\\" "
	    "not found, try pulling it first\"}", &u, &rc, &err);
	SY_CHECK_INT(rc, 0);
	CHECK_JSON(o, "error", "{\"message\":\"model \\\"llama3.2\\\" not found, "
	    "try pulling it first\",\"type\":\"invalid_request_error\","
	    "\"code\":\"model_not_found\"}");
	SY_CHECK_INT(u.prompt_tokens, -1);
	json_decref(o);
	o = decode(SY_API_CHAT, chat_req, 500, "{\"error\":\"llama runner process "
	    "has terminated\"}", &u, &rc, &err);
	CHECK_JSON(o, "error", "{\"message\":\"llama runner process has "
	    "terminated\",\"type\":\"server_error\",\"code\":500}");
	json_decref(o);
	o = decode(SY_API_CHAT, chat_req, 404, "404 page not found", &u, &rc,
	    &err);
	CHECK_JSON(o, "error", "{\"message\":\"backend returned HTTP 404: 404 "
	    "page not found\",\"type\":\"invalid_request_error\",\"code\":404}");
	json_decref(o);
	o = decode(SY_API_CHAT, chat_req, 429, "{\"error\":{\"message\":\"slow\","
	    "\"type\":\"rate_limit_error\",\"code\":null}}", &u, &rc, &err);
	CHECK_JSON(o, "error", "{\"message\":\"slow\",\"type\":"
	    "\"rate_limit_error\",\"code\":null}");
	json_decref(o);
	o = decode(SY_API_CHAT, chat_req, 401, "{\"error\":\"unauthorized\"}", &u,
	    &rc, &err);
	CHECK_JSON(o, "error", "{\"message\":\"unauthorized\",\"type\":"
	    "\"authentication_error\",\"code\":401}");
	json_decref(o);
}

SY_TEST(answers_that_are_not_what_ollama_sends_are_refused)
{
	static const struct {
		enum sy_api api;
		const char *request, *answer;
	} cases[] = {
		{ SY_API_CHAT, chat_req, "<html>" },
		{ SY_API_CHAT, chat_req, "{\"message\":{\"content\":\"x\"}" },
		{ SY_API_CHAT, chat_req, "{\"response\":\"x\",\"done\":true}" },
		{ SY_API_CHAT, chat_req, "{\"error\":\"boom\"}" },
		{ SY_API_COMPLETIONS, "{\"model\":\"m\",\"prompt\":\"x\"}",
		    "{\"message\":{\"content\":\"x\"}}" },
		{ SY_API_EMBEDDINGS, "{\"model\":\"m\",\"input\":\"x\"}",
		    "{\"embedding\":[1,2]}" },
		{ SY_API_EMBEDDINGS, "{\"model\":\"m\",\"input\":\"x\"}",
		    "{\"embeddings\":[1,2]}" },
		{ SY_API_EMBEDDINGS, "{\"model\":\"m\",\"input\":\"x\","
		    "\"encoding_format\":\"base64\"}", "{\"embeddings\":[[\"a\"]]}" },
	};
	struct sy_usage u;
	char *err;
	int rc;
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		json_decref(decode(cases[i].api, cases[i].request, 200,
		    cases[i].answer, &u, &rc, &err));
		SY_CHECK_INT(rc, -1);
		SY_CHECK(err != NULL);
		free(err);
	}
}

/* ==== Streams ==== */

/*
 * Relays NDJSON text, fed in pieces of step bytes, through the adapter for
 * a request (text) as the pipeline does.
 */
static void
relay(struct sy_test_relay *r, enum sy_api api, const char *request, int wants_usage,
    const char *ndjson, size_t step)
{
	struct sy_ndjson nd;
	size_t len = strlen(ndjson), i, n;

	memset(r, 0, sizeof *r);
	r->kind = ollama;
	r->req = sy_test_req(api, request, "llama3.2");
	r->req->client_wants_usage = wants_usage;
	r->state = ollama->stream_open(r->req);
	r->out = evbuffer_new();
	r->usage.prompt_tokens = r->usage.completion_tokens =
	    r->usage.cached_tokens = -1;
	sy_ndjson_init(&nd, 0);
	for (i = 0; i < len; i += n) {
		n = len - i < step ? len - i : step;
		sy_ndjson_feed(&nd, ndjson + i, n, sy_test_relay_event, r);
	}
	sy_ndjson_finish(&nd, sy_test_relay_event, r);
	sy_ndjson_free(&nd);
}

static void
relay_free(struct sy_test_relay *r)
{
	ollama->stream_close(r->state);
	evbuffer_free(r->out);
}

/* The client's SSE events, their data parsed (NULL for [DONE]). */
struct events {
	json_t *data[32];
	int n, done, bad;
};

static int
collect(const struct sy_sse_event *ev, void *arg)
{
	struct events *e = arg;

	if (e->n == 32 || ev->data == NULL) {
		e->bad++;
		return 0;
	}
	if (strcmp(ev->data, "[DONE]") == 0) {
		e->done++;
		e->data[e->n++] = NULL;
		return 0;
	}
	if ((e->data[e->n++] = json_loads(ev->data, 0, NULL)) == NULL)
		e->bad++;
	return 0;
}

static void
events_of(struct evbuffer *out, struct events *e)
{
	struct sy_sse sse;

	memset(e, 0, sizeof *e);
	sy_sse_init(&sse, 0);
	sy_sse_feed(&sse, (const char *)evbuffer_pullup(out, -1),
	    evbuffer_get_length(out), collect, e);
	SY_CHECK_INT(sy_sse_pending(&sse), 0);
	sy_sse_free(&sse);
	SY_CHECK_INT(e->bad, 0);
}

static void
events_free(struct events *e)
{
	int i;

	for (i = 0; i < e->n; i++)
		json_decref(e->data[i]);
}

static const char chat_stream[] =
    "{\"model\":\"llama3.2\",\"created_at\":\"2024-07-22T20:33:28.1Z\","
    "\"message\":{\"role\":\"assistant\",\"content\":\"The\"},\"done\":false}\n"
    "{\"model\":\"llama3.2\",\"created_at\":\"2024-07-22T20:33:28.2Z\","
    "\"message\":{\"role\":\"assistant\",\"content\":\" sky\"},\"done\":false}\r\n"
    "{\"model\":\"llama3.2\",\"created_at\":\"2024-07-22T20:33:28.3Z\","
    "\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":false}\n"
    "\n"
    "{\"model\":\"llama3.2\",\"created_at\":\"2024-07-22T20:33:28.4Z\","
    "\"message\":{\"role\":\"assistant\",\"content\":\" \\\"is\\\"\"},\"done\":false}\n"
    "{\"model\":\"llama3.2\",\"created_at\":\"2024-07-22T20:33:28.5Z\","
    "\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done_reason\":"
    "\"stop\",\"done\":true,\"total_duration\":4883583458,\"load_duration\":"
    "1334875,\"prompt_eval_count\":26,\"prompt_eval_duration\":342546000,"
    "\"eval_count\":3,\"eval_duration\":4535599000}\n";

static const char stream_req[] = "{\"model\":\"m\",\"messages\":[{\"role\":"
    "\"user\",\"content\":\"hi\"}],\"stream\":true}";

SY_TEST(chat_stream_becomes_openai_chunks_then_done)
{
	struct sy_test_relay r;
	struct events e;
	json_t *c;
	size_t step;

	for (step = 1; step <= sizeof chat_stream; step *= 7) {
		relay(&r, SY_API_CHAT, stream_req, 0, chat_stream, step);
		SY_CHECK_INT(r.forwarded, 3);
		SY_CHECK_INT(r.dropped, 1);
		SY_CHECK_INT(r.done, 1);
		SY_CHECK_INT(r.errors, 0);
		SY_CHECK_INT(r.usage.prompt_tokens, 26);
		SY_CHECK_INT(r.usage.completion_tokens, 3);
		SY_CHECK_INT(r.usage.cached_tokens, 0);
		events_of(r.out, &e);
		SY_CHECK_INT(e.n, 5);
		SY_CHECK_INT(e.done, 1);
		SY_CHECK(e.data[4] == NULL);
		c = e.data[0];
		CHECK_JSON(c, "id", "\"chatcmpl-r42\"");
		CHECK_JSON(c, "object", "\"chat.completion.chunk\"");
		CHECK_JSON(c, "created", "1721680408");
		CHECK_JSON(c, "model", "\"llama3.2\"");
		CHECK_JSON(c, "choices", "[{\"index\":0,\"delta\":{\"role\":"
		    "\"assistant\",\"content\":\"The\"},\"logprobs\":null,"
		    "\"finish_reason\":null}]");
		CHECK_JSON(e.data[1], "choices", "[{\"index\":0,\"delta\":"
		    "{\"content\":\" sky\"},\"logprobs\":null,\"finish_reason\":null}]");
		CHECK_JSON(e.data[2], "choices", "[{\"index\":0,\"delta\":"
		    "{\"content\":\" \\\"is\\\"\"},\"logprobs\":null,"
		    "\"finish_reason\":null}]");
		CHECK_JSON(e.data[3], "choices", "[{\"index\":0,\"delta\":{},"
		    "\"logprobs\":null,\"finish_reason\":\"stop\"}]");
		SY_CHECK(json_object_get(e.data[3], "usage") == NULL);
		events_free(&e);
		relay_free(&r);
	}
}

SY_TEST(chat_stream_has_a_usage_chunk_when_the_client_asked)
{
	struct sy_test_relay r;
	struct events e;

	relay(&r, SY_API_CHAT, stream_req, 1, chat_stream, 64);
	events_of(r.out, &e);
	SY_CHECK_INT(e.n, 6);
	CHECK_JSON(e.data[4], "choices", "[]");
	CHECK_JSON(e.data[4], "id", "\"chatcmpl-r42\"");
	CHECK_JSON(e.data[4], "usage", "{\"prompt_tokens\":26,"
	    "\"completion_tokens\":3,\"total_tokens\":29,"
	    "\"prompt_tokens_details\":{\"cached_tokens\":0}}");
	SY_CHECK(e.data[5] == NULL);
	events_free(&e);
	relay_free(&r);
}

SY_TEST(a_stream_whose_first_line_is_the_last_still_says_the_role)
{
	struct sy_test_relay r;
	struct events e;

	relay(&r, SY_API_CHAT, stream_req, 0, "{\"model\":\"x\",\"message\":"
	    "{\"role\":\"assistant\",\"content\":\"all of it\"},\"done\":true,"
	    "\"done_reason\":\"length\",\"eval_count\":3,\"prompt_eval_count\":1}",
	    1000);
	SY_CHECK_INT(r.done, 1);
	events_of(r.out, &e);
	SY_CHECK_INT(e.n, 2);
	CHECK_JSON(e.data[0], "choices", "[{\"index\":0,\"delta\":{\"role\":"
	    "\"assistant\",\"content\":\"all of it\"},\"logprobs\":null,"
	    "\"finish_reason\":\"length\"}]");
	CHECK_JSON(e.data[0], "model", "\"x\"");
	events_free(&e);
	relay_free(&r);
}

SY_TEST(generate_stream_becomes_text_completion_chunks)
{
	struct sy_test_relay r;
	struct events e;

	relay(&r, SY_API_COMPLETIONS, "{\"model\":\"m\",\"prompt\":\"x\","
	    "\"stream\":true}", 1,
	    "{\"model\":\"llama3.2\",\"created_at\":\"2024-07-22T20:33:28Z\","
	    "\"response\":\" once\",\"done\":false}\n"
	    "{\"model\":\"llama3.2\",\"created_at\":\"2024-07-22T20:33:29Z\","
	    "\"response\":\"\",\"done\":true,\"done_reason\":\"length\","
	    "\"context\":[1,2],\"prompt_eval_count\":2,\"eval_count\":1}\n", 5);
	events_of(r.out, &e);
	SY_CHECK_INT(e.n, 4);
	CHECK_JSON(e.data[0], "id", "\"cmpl-r42\"");
	CHECK_JSON(e.data[0], "object", "\"text_completion\"");
	CHECK_JSON(e.data[0], "choices", "[{\"index\":0,\"text\":\" once\","
	    "\"logprobs\":null,\"finish_reason\":null}]");
	CHECK_JSON(e.data[1], "choices", "[{\"index\":0,\"text\":\"\","
	    "\"logprobs\":null,\"finish_reason\":\"length\"}]");
	CHECK_JSON(e.data[2], "usage", "{\"prompt_tokens\":2,"
	    "\"completion_tokens\":1,\"total_tokens\":3,"
	    "\"prompt_tokens_details\":{\"cached_tokens\":0}}");
	SY_CHECK(e.data[3] == NULL);
	SY_CHECK_INT(r.usage.completion_tokens, 1);
	events_free(&e);
	relay_free(&r);
}

SY_TEST(an_error_line_ends_the_stream_with_an_openai_error_event)
{
	struct sy_test_relay r;
	struct events e;

	relay(&r, SY_API_CHAT, stream_req, 0,
	    "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":"
	    "\"a\"},\"done\":false}\n"
	    "{\"error\":\"an error was encountered while running the model\"}\n",
	    100);
	SY_CHECK_INT(r.forwarded, 1);
	SY_CHECK_INT(r.errors, 1);
	SY_CHECK_INT(r.done, 0);
	SY_CHECK_INT(r.usage.prompt_tokens, -1);
	events_of(r.out, &e);
	SY_CHECK_INT(e.n, 2);
	CHECK_JSON(e.data[1], NULL, "{\"error\":{\"message\":\"an error was "
	    "encountered while running the model\",\"type\":\"server_error\","
	    "\"code\":null}}");
	events_free(&e);
	relay_free(&r);
}

SY_TEST(a_line_that_is_not_json_is_an_error_event)
{
	struct sy_test_relay r;
	struct events e;

	relay(&r, SY_API_CHAT, stream_req, 0, "{\"model\":\"m\",\"message\":"
	    "{\"content\":\"a\"},\"done\":false\n", 100);
	SY_CHECK_INT(r.errors, 1);
	events_of(r.out, &e);
	SY_CHECK_INT(e.n, 1);
	SY_CHECK(json_object_get(e.data[0], "error") != NULL);
	events_free(&e);
	relay_free(&r);
	relay(&r, SY_API_CHAT, stream_req, 0, "{\"error\":{\"code\":1}}\n", 100);
	SY_CHECK_INT(r.errors, 1);
	events_of(r.out, &e);
	CHECK_JSON(json_object_get(e.data[0], "error"), "message",
	    "\"backend error: {\\\"code\\\":1}\"");
	events_free(&e);
	relay_free(&r);
}

SY_TEST(kind_is_registered_with_ndjson_framing_and_health_path)
{
	SY_CHECK_STR(ollama->name, "ollama");
	SY_CHECK(ollama->framing == &sy_framing_ndjson);
	SY_CHECK_STR(ollama->health_path, "/api/version");
}

int
main(void)
{
	ollama = sy_backend_kind_find("ollama");
	if (ollama == NULL)
		return 2;
	SY_RUN(chat_goes_to_api_chat_with_stream_and_options);
	SY_RUN(stream_is_always_said_and_no_options_means_none);
	SY_RUN(max_completion_tokens_wins_over_max_tokens);
	SY_RUN(text_parts_are_joined_and_developer_is_system);
	SY_RUN(images_and_odd_parts_are_refused_naming_the_field);
	SY_RUN(tools_are_refused_but_an_empty_list_is_not);
	SY_RUN(what_ollama_cannot_do_is_refused);
	SY_RUN(response_format_becomes_format);
	SY_RUN(completion_goes_to_api_generate_with_one_prompt);
	SY_RUN(embeddings_go_to_api_embed_without_stream);
	SY_RUN(api_key_goes_in_a_bearer_header);
	SY_RUN(chat_answer_becomes_a_chat_completion);
	SY_RUN(thinking_becomes_reasoning_content_and_stop_is_the_default);
	SY_RUN(generate_answer_becomes_a_text_completion);
	SY_RUN(embed_answer_becomes_an_embeddings_list_numbers_as_sent);
	SY_RUN(embed_answer_in_base64_when_asked);
	SY_RUN(errors_become_openai_errors_with_the_status_kept);
	SY_RUN(answers_that_are_not_what_ollama_sends_are_refused);
	SY_RUN(chat_stream_becomes_openai_chunks_then_done);
	SY_RUN(chat_stream_has_a_usage_chunk_when_the_client_asked);
	SY_RUN(a_stream_whose_first_line_is_the_last_still_says_the_role);
	SY_RUN(generate_stream_becomes_text_completion_chunks);
	SY_RUN(an_error_line_ends_the_stream_with_an_openai_error_event);
	SY_RUN(a_line_that_is_not_json_is_an_error_event);
	SY_RUN(kind_is_registered_with_ndjson_framing_and_health_path);
	return sy_test_done();
}
