/* Unit tests of the tgi adapter: request mapping, chat rendering, refusals, answers, streams and errors, on TGI-shaped payloads. */
#include <string.h>

#include <event2/buffer.h>

#include "backend.h"
#include "framing.h"
#include "config.h"
#include "req.h"
#include "sse.h"
#include "sy_test.h"
#include "sy_test_req.h"

static const struct sy_backend_kind *tgi;

/* A request of api parsed from text, served as model "served-m", id "req-1". */
static struct sy_req *
make_req(enum sy_api api, const char *text)
{
	struct sy_req *req = sy_test_req(api, text, "served-m");

	snprintf(req->id, sizeof req->id, "req-1");
	return req;
}

static struct sy_endpoint plain_ep = { .name = "e" };
static struct sy_endpoint keyed_ep = { .name = "k", .api_key = "hf_abc" };

/* The upstream request (path, headers) of the last encode. */
static struct sy_upstream_req up;

/* Encodes a request of api from text; returns the body parsed, or NULL with *err. */
static json_t *
encode(enum sy_api api, const char *text, char **err)
{
	struct sy_req *req = make_req(api, text);
	struct evbuffer *out = evbuffer_new();
	json_t *obj = NULL;

	memset(&up, 0, sizeof up);
	*err = NULL;
	if (tgi->encode(req, &plain_ep, out, &up, err) == 0)
		obj = json_loadb((const char *)evbuffer_pullup(out, -1),
		    evbuffer_get_length(out), 0, NULL);
	evbuffer_free(out);
	return obj;
}

/* The parameters member of an encoded body. */
static json_t *
params(json_t *body)
{
	return json_object_get(body, "parameters");
}

SY_TEST(completion_maps_to_generate_with_details_and_default_cap)
{
	char *err;
	json_t *b = encode(SY_API_COMPLETIONS,
	    "{\"model\":\"m\",\"prompt\":\"Once upon\"}", &err), *p = params(b);

	SY_CHECK_STR(up.path, "/generate");
	SY_CHECK_STR(up.headers, "");
	SY_CHECK_STR(json_string_value(json_object_get(b, "inputs")), "Once upon");
	SY_CHECK_INT(json_integer_value(json_object_get(p, "max_new_tokens")), 256);
	SY_CHECK(json_is_true(json_object_get(p, "details")));
	SY_CHECK(json_is_false(json_object_get(p, "decoder_input_details")));
	SY_CHECK(json_is_true(json_object_get(p, "do_sample")));
	SY_CHECK(json_object_get(p, "temperature") == NULL);
	SY_CHECK(json_object_get(p, "top_p") == NULL);
	SY_CHECK(json_object_get(p, "stop") == NULL);
	SY_CHECK(json_object_get(b, "model") == NULL);
	json_decref(b);
}

SY_TEST(stream_goes_to_generate_stream_and_the_key_in_a_bearer_header)
{
	struct sy_req *req = make_req(SY_API_COMPLETIONS,
	    "{\"model\":\"m\",\"prompt\":[\"x\"],\"stream\":true}");
	struct evbuffer *out = evbuffer_new();
	char *err = NULL;

	memset(&up, 0, sizeof up);
	SY_CHECK_INT(tgi->encode(req, &keyed_ep, out, &up, &err), 0);
	SY_CHECK_STR(up.path, "/generate_stream");
	SY_CHECK_STR(up.headers, "Authorization: Bearer hf_abc\r\n");
	SY_CHECK(evbuffer_search(out, "\"inputs\":\"x\"", 12, NULL).pos >= 0);
	evbuffer_free(out);
}

SY_TEST(sampling_fields_are_mapped_as_tgi_accepts_them)
{
	char *err;
	json_t *b = encode(SY_API_COMPLETIONS, "{\"model\":\"m\",\"prompt\":\"x\","
	    "\"max_tokens\":12,\"temperature\":0.5,\"top_p\":0.9,\"seed\":7,"
	    "\"stop\":\"\\n\\n\",\"frequency_penalty\":0.25}", &err), *p = params(b);

	SY_CHECK_INT(json_integer_value(json_object_get(p, "max_new_tokens")), 12);
	SY_CHECK(json_number_value(json_object_get(p, "temperature")) == 0.5);
	SY_CHECK(json_number_value(json_object_get(p, "top_p")) == 0.9);
	SY_CHECK_INT(json_integer_value(json_object_get(p, "seed")), 7);
	SY_CHECK_INT(json_array_size(json_object_get(p, "stop")), 1);
	SY_CHECK_STR(json_string_value(json_array_get(json_object_get(p, "stop"), 0)),
	    "\n\n");
	SY_CHECK(json_number_value(json_object_get(p, "frequency_penalty")) == 0.25);
	SY_CHECK(json_is_true(json_object_get(p, "do_sample")));
	json_decref(b);
}

SY_TEST(temperature_zero_is_greedy_without_a_temperature)
{
	char *err;
	json_t *b = encode(SY_API_COMPLETIONS, "{\"model\":\"m\",\"prompt\":\"x\","
	    "\"temperature\":0,\"top_p\":0.5}", &err), *p = params(b);

	SY_CHECK(json_is_false(json_object_get(p, "do_sample")));
	SY_CHECK(json_object_get(p, "temperature") == NULL);
	SY_CHECK(json_object_get(p, "top_p") == NULL);
	json_decref(b);
}

SY_TEST(top_p_one_is_left_out_and_zero_is_greedy)
{
	char *err;
	json_t *b = encode(SY_API_COMPLETIONS, "{\"model\":\"m\",\"prompt\":\"x\","
	    "\"top_p\":1,\"temperature\":1.0}", &err);

	SY_CHECK(json_object_get(params(b), "top_p") == NULL);
	SY_CHECK(json_number_value(json_object_get(params(b), "temperature")) == 1.0);
	json_decref(b);
	b = encode(SY_API_COMPLETIONS, "{\"model\":\"m\",\"prompt\":\"x\","
	    "\"top_p\":0}", &err);
	SY_CHECK(json_is_false(json_object_get(params(b), "do_sample")));
	json_decref(b);
}

SY_TEST(chat_max_completion_tokens_wins_over_max_tokens)
{
	char *err;
	json_t *b = encode(SY_API_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":"
	    "\"user\",\"content\":\"hi\"}],\"max_tokens\":9,"
	    "\"max_completion_tokens\":5,\"stop\":[\"a\",\"b\"]}", &err);

	SY_CHECK_INT(json_integer_value(json_object_get(params(b), "max_new_tokens")), 5);
	SY_CHECK_INT(json_array_size(json_object_get(params(b), "stop")), 2);
	json_decref(b);
}

SY_TEST(chat_messages_are_rendered_with_the_documented_template)
{
	char *err;
	json_t *b = encode(SY_API_CHAT, "{\"model\":\"m\",\"messages\":["
	    "{\"role\":\"system\",\"content\":\"Be brief.\"},"
	    "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Hi \"},"
	    "{\"type\":\"text\",\"text\":\"there\"}]},"
	    "{\"role\":\"assistant\",\"content\":\"Hello.\"},"
	    "{\"role\":\"developer\",\"content\":null},"
	    "{\"role\":\"tool\",\"content\":\"42\",\"tool_call_id\":\"c1\"},"
	    "{\"role\":\"user\",\"content\":\"And?\",\"name\":\"bob\"}]}", &err);

	SY_CHECK_STR(json_string_value(json_object_get(b, "inputs")),
	    "<|system|>\nBe brief.\n<|user|>\nHi there\n<|assistant|>\nHello.\n"
	    "<|system|>\n\n<|tool|>\n42\n<|user|>\nAnd?\n<|assistant|>\n");
	json_decref(b);
}

/* Whether encoding text for api is refused with a message containing what. */
static int
refused(enum sy_api api, const char *text, const char *what)
{
	char *err;
	json_t *b = encode(api, text, &err);
	int ok = b == NULL && err != NULL && strstr(err, what) != NULL;

	if (!ok)
		printf("# %s: got %s\n", text, err ? err : "no refusal");
	json_decref(b);
	free(err);
	return ok;
}

SY_TEST(several_prompts_or_token_ids_are_refused)
{
	SY_CHECK(refused(SY_API_COMPLETIONS, "{\"model\":\"m\",\"prompt\":[\"a\",\"b\"]}",
	    "tgi takes one prompt per request"));
	SY_CHECK(refused(SY_API_COMPLETIONS, "{\"model\":\"m\",\"prompt\":[1,2]}",
	    "'prompt'"));
	SY_CHECK(refused(SY_API_COMPLETIONS, "{\"model\":\"m\",\"prompt\":[]}",
	    "'prompt'"));
}

SY_TEST(embeddings_are_refused)
{
	SY_CHECK(refused(SY_API_EMBEDDINGS, "{\"model\":\"m\",\"input\":\"x\"}",
	    "embeddings"));
}

SY_TEST(what_tgi_cannot_express_is_refused_naming_the_field)
{
	static const char *const cases[][2] = {
		{ "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]", "'tools'" },
		{ "\"n\":2", "'n' > 1" },
		{ "\"logprobs\":true", "'logprobs'" },
		{ "\"top_logprobs\":3", "'top_logprobs'" },
		{ "\"response_format\":{\"type\":\"json_object\"}", "'response_format'" },
		{ "\"logit_bias\":{\"50256\":-100}", "'logit_bias'" },
		{ "\"temperature\":-1", "'temperature'" },
		{ "\"top_p\":1.5", "'top_p'" },
		{ "\"max_tokens\":0", "'max_tokens'" },
		{ "\"stop\":[1]", "'stop'" },
		{ "\"seed\":\"x\"", "'seed'" }
	};
	char text[256];
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		snprintf(text, sizeof text, "{\"model\":\"m\",\"messages\":[{\"role\":"
		    "\"user\",\"content\":\"x\"}],%s}", cases[i][0]);
		SY_CHECK(refused(SY_API_CHAT, text, cases[i][1]));
	}
	SY_CHECK(refused(SY_API_COMPLETIONS, "{\"model\":\"m\",\"prompt\":\"x\","
	    "\"logprobs\":2}", "'logprobs'"));
	SY_CHECK(refused(SY_API_COMPLETIONS, "{\"model\":\"m\",\"prompt\":\"x\","
	    "\"echo\":true}", "'echo'"));
}

SY_TEST(harmless_defaults_of_unsupported_fields_are_accepted)
{
	char *err;
	json_t *b = encode(SY_API_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":"
	    "\"user\",\"content\":\"x\"}],\"n\":1,\"tools\":[],\"logprobs\":false,"
	    "\"response_format\":{\"type\":\"text\"},\"tool_choice\":\"none\","
	    "\"user\":\"u\",\"presence_penalty\":0.5}", &err);

	SY_CHECK(b != NULL);
	json_decref(b);
}

SY_TEST(bad_messages_are_refused_naming_the_message)
{
	SY_CHECK(refused(SY_API_CHAT, "{\"model\":\"m\",\"messages\":[]}",
	    "'messages' must not be empty"));
	SY_CHECK(refused(SY_API_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":"
	    "\"user\",\"content\":\"a\"},{\"role\":\"wizard\",\"content\":\"x\"}]}",
	    "'messages[1].role'"));
	SY_CHECK(refused(SY_API_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":"
	    "\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":"
	    "\"x\"}}]}]}", "'messages[0].content[0]'"));
	SY_CHECK(refused(SY_API_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":"
	    "\"assistant\",\"tool_calls\":[{\"id\":\"c\"}]}]}",
	    "'messages[0].tool_calls'"));
}

/* Decodes a fixture (or text when fixture is NULL) answered with status for api. */
static json_t *
decode(enum sy_api api, int status, const char *fixture, const char *text,
    struct sy_usage *u, int *rc)
{
	struct sy_req *req = make_req(api, api == SY_API_CHAT ?
	    "{\"model\":\"m\",\"messages\":[]}" : "{\"model\":\"m\",\"prompt\":\"x\"}");
	struct evbuffer *body = evbuffer_new(), *out = evbuffer_new();
	char *own = fixture ? sy_test_fixture(fixture, NULL) : NULL, *err = NULL;
	json_t *obj;

	evbuffer_add(body, own ? own : text, strlen(own ? own : text));
	u->prompt_tokens = u->completion_tokens = u->cached_tokens = -1;
	*rc = tgi->decode(req, status, body, out, u, &err);
	obj = json_loadb((const char *)evbuffer_pullup(out, -1),
	    evbuffer_get_length(out), 0, NULL);
	if (*rc == 0 && obj == NULL)
		printf("# not JSON: %.*s\n", (int)evbuffer_get_length(out),
		    (const char *)evbuffer_pullup(out, -1));
	free(err);
	free(own);
	evbuffer_free(body);
	evbuffer_free(out);
	return obj;
}

SY_TEST(answer_becomes_a_text_completion_with_usage)
{
	struct sy_usage u;
	int rc;
	json_t *o = decode(SY_API_COMPLETIONS, 200, "tgi/generate.json", NULL, &u, &rc);
	json_t *c = json_array_get(json_object_get(o, "choices"), 0);
	json_t *usage = json_object_get(o, "usage");

	SY_CHECK_INT(rc, 0);
	SY_CHECK_STR(json_string_value(json_object_get(o, "object")), "text_completion");
	SY_CHECK_STR(json_string_value(json_object_get(o, "id")), "cmpl-req-1");
	SY_CHECK_STR(json_string_value(json_object_get(o, "model")), "served-m");
	SY_CHECK(json_integer_value(json_object_get(o, "created")) > 1700000000);
	SY_CHECK_STR(json_string_value(json_object_get(c, "text")),
	    " Deep learning is a \"subset\"\n");
	SY_CHECK_STR(json_string_value(json_object_get(c, "finish_reason")), "length");
	SY_CHECK_INT(json_integer_value(json_object_get(usage, "completion_tokens")), 6);
	SY_CHECK(json_is_null(json_object_get(usage, "prompt_tokens")));
	SY_CHECK(json_is_null(json_object_get(usage, "total_tokens")));
	SY_CHECK_INT(u.completion_tokens, 6);
	SY_CHECK_INT(u.prompt_tokens, -1);
	SY_CHECK_INT(u.cached_tokens, 0);
	json_decref(o);
}

SY_TEST(answer_becomes_a_chat_completion_and_prefill_counts_the_prompt)
{
	struct sy_usage u;
	int rc;
	json_t *o = decode(SY_API_CHAT, 200, "tgi/generate_prefill.json", NULL, &u, &rc);
	json_t *c = json_array_get(json_object_get(o, "choices"), 0);
	json_t *msg = json_object_get(c, "message");

	SY_CHECK_INT(rc, 0);
	SY_CHECK_STR(json_string_value(json_object_get(o, "object")), "chat.completion");
	SY_CHECK_STR(json_string_value(json_object_get(o, "id")), "chatcmpl-req-1");
	SY_CHECK_STR(json_string_value(json_object_get(msg, "role")), "assistant");
	SY_CHECK_STR(json_string_value(json_object_get(msg, "content")), " Paris.");
	SY_CHECK_STR(json_string_value(json_object_get(c, "finish_reason")), "stop");
	SY_CHECK_INT(u.prompt_tokens, 4);
	SY_CHECK_INT(u.completion_tokens, 3);
	SY_CHECK_INT(json_integer_value(json_object_get(json_object_get(o, "usage"),
	    "total_tokens")), 7);
	json_decref(o);
}

SY_TEST(finish_reasons_map_to_openai_words)
{
	static const char *const cases[][2] = {
		{ "length", "length" }, { "eos_token", "stop" },
		{ "stop_sequence", "stop" }
	};
	char text[200];
	struct sy_usage u;
	size_t i;
	int rc;
	json_t *o;

	for (i = 0; i < 3; i++) {
		snprintf(text, sizeof text, "{\"generated_text\":\"a\",\"details\":{"
		    "\"finish_reason\":\"%s\",\"generated_tokens\":1,"
		    "\"input_length\":3}}", cases[i][0]);
		o = decode(SY_API_CHAT, 200, NULL, text, &u, &rc);
		SY_CHECK_STR(json_string_value(json_object_get(json_array_get(
		    json_object_get(o, "choices"), 0), "finish_reason")), cases[i][1]);
		SY_CHECK_INT(u.prompt_tokens, 3);
		json_decref(o);
	}
	o = decode(SY_API_CHAT, 200, NULL, "{\"generated_text\":\"a\"}", &u, &rc);
	SY_CHECK(json_is_null(json_object_get(json_array_get(
	    json_object_get(o, "choices"), 0), "finish_reason")));
	SY_CHECK_INT(u.completion_tokens, -1);
	json_decref(o);
}

SY_TEST(an_answer_without_generated_text_is_refused)
{
	struct sy_usage u;
	int rc;

	json_decref(decode(SY_API_CHAT, 200, NULL, "{\"choices\":[]}", &u, &rc));
	SY_CHECK_INT(rc, -1);
	json_decref(decode(SY_API_CHAT, 200, NULL, "<html>", &u, &rc));
	SY_CHECK_INT(rc, -1);
	json_decref(decode(SY_API_CHAT, 200, NULL, "{\"generated_text\":\"a\"", &u, &rc));
	SY_CHECK_INT(rc, -1);
	SY_CHECK_INT(u.completion_tokens, -1);
}

/* The error object of an OpenAI error body. */
static json_t *
error_of(json_t *o)
{
	return json_object_get(o, "error");
}

SY_TEST(validation_error_becomes_an_invalid_request_error)
{
	struct sy_usage u;
	int rc;
	json_t *o = decode(SY_API_CHAT, 422, "tgi/error_validation.json", NULL, &u, &rc);

	SY_CHECK_INT(rc, 0);
	SY_CHECK_STR(json_string_value(json_object_get(error_of(o), "message")),
	    "Input validation error: `temperature` must be strictly positive");
	SY_CHECK_STR(json_string_value(json_object_get(error_of(o), "type")),
	    "invalid_request_error");
	SY_CHECK_STR(json_string_value(json_object_get(error_of(o), "code")),
	    "validation");
	SY_CHECK_INT(u.prompt_tokens, -1);
	json_decref(o);
}

SY_TEST(overloaded_becomes_a_server_error_with_code_overloaded)
{
	struct sy_usage u;
	int rc;
	json_t *o = decode(SY_API_COMPLETIONS, 429, "tgi/error_overloaded.json", NULL,
	    &u, &rc);

	SY_CHECK_STR(json_string_value(json_object_get(error_of(o), "type")),
	    "server_error");
	SY_CHECK_STR(json_string_value(json_object_get(error_of(o), "code")),
	    "overloaded");
	json_decref(o);
	o = decode(SY_API_COMPLETIONS, 424, NULL, "{\"error\":\"Request failed "
	    "during generation\",\"error_type\":\"generation\"}", &u, &rc);
	SY_CHECK_STR(json_string_value(json_object_get(error_of(o), "type")),
	    "server_error");
	SY_CHECK_STR(json_string_value(json_object_get(error_of(o), "code")),
	    "generation");
	json_decref(o);
}

SY_TEST(an_error_that_is_not_tgis_is_wrapped_or_kept)
{
	struct sy_usage u;
	int rc;
	json_t *o = decode(SY_API_CHAT, 502, NULL, "Bad Gateway", &u, &rc);

	SY_CHECK_INT(rc, 0);
	SY_CHECK_STR(json_string_value(json_object_get(error_of(o), "message")),
	    "backend returned HTTP 502: Bad Gateway");
	SY_CHECK_INT(json_integer_value(json_object_get(error_of(o), "code")), 502);
	json_decref(o);
	o = decode(SY_API_CHAT, 401, NULL, "{\"error\":{\"message\":\"no\","
	    "\"type\":\"auth\"}}", &u, &rc);
	SY_CHECK_STR(json_string_value(json_object_get(error_of(o), "type")), "auth");
	json_decref(o);
	o = decode(SY_API_CHAT, 429, NULL, "{\"error\":\"slow down\"}", &u, &rc);
	SY_CHECK_STR(json_string_value(json_object_get(error_of(o), "type")),
	    "rate_limit_error");
	SY_CHECK_INT(json_integer_value(json_object_get(error_of(o), "code")), 429);
	json_decref(o);
}

/* ==== Streams ==== */

/* Relays text (or a fixture) through the adapter for api, the client asking usage or not. */
static void
relay(enum sy_api api, const char *fixture, const char *text, int wants_usage,
    struct sy_test_relay *r)
{
	size_t len;
	char *own = fixture ? sy_test_fixture(fixture, &len) : NULL;
	struct sy_sse sse;

	memset(r, 0, sizeof *r);
	r->kind = tgi;
	r->req = make_req(api, api == SY_API_CHAT ?
	    "{\"model\":\"m\",\"messages\":[],\"stream\":true}" :
	    "{\"model\":\"m\",\"prompt\":\"x\",\"stream\":true}");
	r->req->client_wants_usage = wants_usage;
	r->state = tgi->stream_open(r->req);
	r->out = evbuffer_new();
	r->usage.prompt_tokens = r->usage.completion_tokens =
	    r->usage.cached_tokens = -1;
	sy_sse_init(&sse, 0);
	sy_sse_feed(&sse, own ? own : text, own ? len : strlen(text),
	    sy_test_relay_event, r);
	sy_sse_free(&sse);
	tgi->stream_close(r->state);
	free(own);
}

/* The data of the client's events, parsed ("[DONE]" as a JSON string). */
static json_t *
client_events(struct sy_test_relay *r)
{
	size_t len = evbuffer_get_length(r->out);
	char *text = (char *)evbuffer_pullup(r->out, -1), *p, *end;
	json_t *list = json_array();

	for (p = text; p < text + len; p = end + 2) {
		end = strstr(p, "\n\n");
		if (end == NULL || strncmp(p, "data: ", 6) != 0) {
			printf("# bad event at %s\n", p);
			break;
		}
		if (strncmp(p + 6, "[DONE]", 6) == 0)
			json_array_append_new(list, json_string("[DONE]"));
		else
			json_array_append_new(list, json_loadb(p + 6,
			    (size_t)(end - p - 6), 0, NULL));
	}
	return list;
}

/* choices[0] of event i. */
static json_t *
choice(json_t *events, size_t i)
{
	return json_array_get(json_object_get(json_array_get(events, i),
	    "choices"), 0);
}

SY_TEST(chat_stream_becomes_chunks_then_finish_then_done)
{
	struct sy_test_relay r;
	json_t *ev, *d;

	relay(SY_API_CHAT, "tgi/generate_stream.sse", NULL, 0, &r);
	ev = client_events(&r);
	SY_CHECK_INT(r.forwarded, 3);
	SY_CHECK_INT(r.done, 1);
	SY_CHECK_INT(json_array_size(ev), 5);
	d = json_object_get(choice(ev, 0), "delta");
	SY_CHECK_STR(json_string_value(json_object_get(d, "role")), "assistant");
	SY_CHECK_STR(json_string_value(json_object_get(d, "content")), " Hello");
	SY_CHECK(json_object_get(json_object_get(choice(ev, 1), "delta"), "role") == NULL);
	SY_CHECK_STR(json_string_value(json_object_get(json_object_get(choice(ev, 2),
	    "delta"), "content")), " w\xc3\xb6rld");
	SY_CHECK(json_is_null(json_object_get(choice(ev, 2), "finish_reason")));
	SY_CHECK_INT(json_object_size(json_object_get(choice(ev, 3), "delta")), 0);
	SY_CHECK_STR(json_string_value(json_object_get(choice(ev, 3), "finish_reason")),
	    "stop");
	SY_CHECK_STR(json_string_value(json_object_get(json_array_get(ev, 3), "object")),
	    "chat.completion.chunk");
	SY_CHECK_STR(json_string_value(json_object_get(json_array_get(ev, 0), "id")),
	    "chatcmpl-req-1");
	SY_CHECK_STR(json_string_value(json_array_get(ev, 4)), "[DONE]");
	SY_CHECK_INT(r.usage.prompt_tokens, 5);
	SY_CHECK_INT(r.usage.completion_tokens, 4);
	SY_CHECK_INT(r.usage.cached_tokens, 0);
	SY_CHECK(evbuffer_search(r.out, "</s>", 4, NULL).pos == -1);
	json_decref(ev);
	evbuffer_free(r.out);
}

SY_TEST(usage_chunk_is_sent_when_the_client_asked_for_it)
{
	struct sy_test_relay r;
	json_t *ev, *usage;

	relay(SY_API_COMPLETIONS, "tgi/generate_stream.sse", NULL, 1, &r);
	ev = client_events(&r);
	SY_CHECK_INT(json_array_size(ev), 6);
	SY_CHECK_STR(json_string_value(json_object_get(choice(ev, 0), "text")), " Hello");
	SY_CHECK_STR(json_string_value(json_object_get(json_array_get(ev, 0), "object")),
	    "text_completion");
	SY_CHECK_STR(json_string_value(json_object_get(choice(ev, 3), "text")), "");
	SY_CHECK_STR(json_string_value(json_object_get(choice(ev, 3), "finish_reason")),
	    "stop");
	SY_CHECK_INT(json_array_size(json_object_get(json_array_get(ev, 4), "choices")), 0);
	usage = json_object_get(json_array_get(ev, 4), "usage");
	SY_CHECK_INT(json_integer_value(json_object_get(usage, "prompt_tokens")), 5);
	SY_CHECK_INT(json_integer_value(json_object_get(usage, "completion_tokens")), 4);
	SY_CHECK_INT(json_integer_value(json_object_get(usage, "total_tokens")), 9);
	SY_CHECK_STR(json_string_value(json_array_get(ev, 5)), "[DONE]");
	json_decref(ev);
	evbuffer_free(r.out);
}

SY_TEST(stream_without_details_counts_the_token_events)
{
	struct sy_test_relay r;
	json_t *ev;

	relay(SY_API_CHAT, NULL, "data: {\"token\":{\"id\":1,\"text\":\"a\","
	    "\"logprob\":0,\"special\":false},\"generated_text\":null,"
	    "\"details\":null}\n\ndata: {\"token\":{\"id\":2,\"text\":\"b\","
	    "\"logprob\":0,\"special\":false},\"generated_text\":\"ab\","
	    "\"details\":null}\n\n", 0, &r);
	ev = client_events(&r);
	SY_CHECK_INT(r.done, 1);
	SY_CHECK_INT(r.usage.completion_tokens, 2);
	SY_CHECK_INT(r.usage.prompt_tokens, -1);
	SY_CHECK(json_is_null(json_object_get(choice(ev, 2), "finish_reason")));
	json_decref(ev);
	evbuffer_free(r.out);
}

SY_TEST(only_special_tokens_still_give_the_role_and_the_finish)
{
	struct sy_test_relay r;
	json_t *ev, *d;

	relay(SY_API_CHAT, NULL, "data:{\"token\":{\"id\":2,\"text\":\"</s>\","
	    "\"logprob\":0,\"special\":true},\"generated_text\":\"\",\"details\":"
	    "{\"finish_reason\":\"eos_token\",\"generated_tokens\":1}}\n\n", 0, &r);
	ev = client_events(&r);
	SY_CHECK_INT(json_array_size(ev), 2);
	d = json_object_get(choice(ev, 0), "delta");
	SY_CHECK_STR(json_string_value(json_object_get(d, "role")), "assistant");
	SY_CHECK_STR(json_string_value(json_object_get(d, "content")), "");
	SY_CHECK_STR(json_string_value(json_object_get(choice(ev, 0), "finish_reason")),
	    "stop");
	json_decref(ev);
	evbuffer_free(r.out);
}

SY_TEST(a_special_token_before_the_end_is_dropped)
{
	struct sy_test_relay r;

	relay(SY_API_CHAT, NULL, "data:{\"token\":{\"id\":0,\"text\":\"<pad>\","
	    "\"logprob\":0,\"special\":true},\"generated_text\":null,"
	    "\"details\":null}\n\n", 0, &r);
	SY_CHECK_INT(r.dropped, 1);
	SY_CHECK_INT(evbuffer_get_length(r.out), 0);
	evbuffer_free(r.out);
}

SY_TEST(error_event_mid_stream_becomes_an_openai_error_event)
{
	struct sy_test_relay r;
	json_t *ev, *e;

	relay(SY_API_CHAT, "tgi/error_midstream.sse", NULL, 1, &r);
	ev = client_events(&r);
	SY_CHECK_INT(r.errors, 1);
	SY_CHECK_INT(r.done, 0);
	SY_CHECK_INT(json_array_size(ev), 2);
	e = error_of(json_array_get(ev, 1));
	SY_CHECK_STR(json_string_value(json_object_get(e, "message")),
	    "Request failed during generation: Server error: CUDA out of memory");
	SY_CHECK_STR(json_string_value(json_object_get(e, "type")), "server_error");
	SY_CHECK_STR(json_string_value(json_object_get(e, "code")), "generation");
	json_decref(ev);
	evbuffer_free(r.out);
}

SY_TEST(an_event_that_is_not_json_ends_the_stream_with_an_error)
{
	struct sy_test_relay r;
	json_t *ev;

	relay(SY_API_CHAT, NULL, "data: {\"token\":{\"te\n\n", 0, &r);
	ev = client_events(&r);
	SY_CHECK_INT(r.errors, 1);
	SY_CHECK_STR(json_string_value(json_object_get(error_of(json_array_get(ev, 0)),
	    "code")), "bad_gateway");
	json_decref(ev);
	evbuffer_free(r.out);
}

SY_TEST(comments_are_relayed_as_they_are)
{
	struct sy_test_relay r;

	relay(SY_API_CHAT, NULL, ":\n\n", 0, &r);
	SY_CHECK_INT(r.forwarded, 1);
	SY_CHECK_INT(evbuffer_get_length(r.out), 3);
	evbuffer_free(r.out);
}

SY_TEST(kind_is_registered_with_its_health_path)
{
	SY_CHECK_STR(tgi->name, "tgi");
	SY_CHECK_STR(tgi->health_path, "/health");
	SY_CHECK(tgi->framing == &sy_framing_sse);
}

int
main(void)
{
	tgi = sy_backend_kind_find("tgi");
	if (tgi == NULL)
		return 2;
	SY_RUN(completion_maps_to_generate_with_details_and_default_cap);
	SY_RUN(stream_goes_to_generate_stream_and_the_key_in_a_bearer_header);
	SY_RUN(sampling_fields_are_mapped_as_tgi_accepts_them);
	SY_RUN(temperature_zero_is_greedy_without_a_temperature);
	SY_RUN(top_p_one_is_left_out_and_zero_is_greedy);
	SY_RUN(chat_max_completion_tokens_wins_over_max_tokens);
	SY_RUN(chat_messages_are_rendered_with_the_documented_template);
	SY_RUN(several_prompts_or_token_ids_are_refused);
	SY_RUN(embeddings_are_refused);
	SY_RUN(what_tgi_cannot_express_is_refused_naming_the_field);
	SY_RUN(harmless_defaults_of_unsupported_fields_are_accepted);
	SY_RUN(bad_messages_are_refused_naming_the_message);
	SY_RUN(answer_becomes_a_text_completion_with_usage);
	SY_RUN(answer_becomes_a_chat_completion_and_prefill_counts_the_prompt);
	SY_RUN(finish_reasons_map_to_openai_words);
	SY_RUN(an_answer_without_generated_text_is_refused);
	SY_RUN(validation_error_becomes_an_invalid_request_error);
	SY_RUN(overloaded_becomes_a_server_error_with_code_overloaded);
	SY_RUN(an_error_that_is_not_tgis_is_wrapped_or_kept);
	SY_RUN(chat_stream_becomes_chunks_then_finish_then_done);
	SY_RUN(usage_chunk_is_sent_when_the_client_asked_for_it);
	SY_RUN(stream_without_details_counts_the_token_events);
	SY_RUN(only_special_tokens_still_give_the_role_and_the_finish);
	SY_RUN(a_special_token_before_the_end_is_dropped);
	SY_RUN(error_event_mid_stream_becomes_an_openai_error_event);
	SY_RUN(an_event_that_is_not_json_ends_the_stream_with_an_error);
	SY_RUN(comments_are_relayed_as_they_are);
	SY_RUN(kind_is_registered_with_its_health_path);
	return sy_test_done();
}
