/* Unit tests of the Anthropic adapter: chat requests as Messages requests, messages and streams as chat completions, errors, on recorded and documented payloads. */
#include <string.h>

#include <event2/buffer.h>

#include "backend.h"
#include "config.h"
#include "req.h"
#include "sse.h"
#include "sy_test.h"
#include "sy_test_req.h"

static const struct sy_backend_kind *anthropic;


static struct sy_endpoint plain_ep = { .name = "e" };
static struct sy_endpoint keyed_ep = { .name = "k", .api_key = "sk-ant-123" };

/* The upstream request (path, headers) of the last encode. */
static struct sy_upstream_req up;

/*
 * Encodes the chat request text for plain_ep: the body sent, parsed, or
 * NULL when encode refused it (*err then says why; caller frees).
 */
static json_t *
encode_chat(const char *text, char **err)
{
	struct sy_req *req = sy_test_req(SY_API_CHAT, text, NULL);
	struct evbuffer *out = evbuffer_new();
	json_t *obj = NULL;

	memset(&up, 0, sizeof up);
	*err = NULL;
	if (anthropic->encode(req, &plain_ep, out, &up, err) == 0)
		obj = json_loadb((const char *)evbuffer_pullup(out, -1),
		    evbuffer_get_length(out), 0, NULL);
	evbuffer_free(out);
	return obj;
}

/* Whether encoding text is refused with a message containing needle. */
static int
refused_naming(const char *text, const char *needle)
{
	char *err;
	json_t *obj = encode_chat(text, &err);
	int ok = obj == NULL && err != NULL && strstr(err, needle) != NULL;

	if (!ok)
		printf("# expected a refusal naming %s, got: %s\n", needle,
		    err != NULL ? err : "(accepted)");
	json_decref(obj);
	free(err);
	return ok;
}

SY_TEST(chat_goes_to_messages_with_the_key_and_api_version_headers)
{
	struct sy_req *req = sy_test_req(SY_API_CHAT, "{\"model\":\"m\","
	    "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", NULL);
	struct evbuffer *out = evbuffer_new();
	char *err = NULL;

	memset(&up, 0, sizeof up);
	SY_CHECK_INT(anthropic->encode(req, &keyed_ep, out, &up, &err), 0);
	SY_CHECK_STR(up.path, "/messages");
	SY_CHECK_STR(up.headers, "x-api-key: sk-ant-123\r\n"
	    "anthropic-version: 2023-06-01\r\n");
	memset(&up, 0, sizeof up);
	SY_CHECK_INT(anthropic->encode(req, &plain_ep, out, &up, &err), 0);
	SY_CHECK_STR(up.headers, "anthropic-version: 2023-06-01\r\n");
	SY_CHECK_STR(anthropic->health_path, "/models");
	evbuffer_free(out);
}

SY_TEST(completions_and_embeddings_are_refused_clearly)
{
	struct evbuffer *out = evbuffer_new();
	char *err = NULL;
	struct sy_req *req = sy_test_req(SY_API_COMPLETIONS,
	    "{\"model\":\"m\",\"prompt\":\"x\"}", NULL);

	SY_CHECK_INT(anthropic->encode(req, &plain_ep, out, &up, &err), -1);
	SY_CHECK_STR(err, "the anthropic backend serves chat completions only");
	free(err);
	req = sy_test_req(SY_API_EMBEDDINGS, "{\"model\":\"m\",\"input\":\"x\"}",
	    NULL);
	SY_CHECK_INT(anthropic->encode(req, &plain_ep, out, &up, &err), -1);
	SY_CHECK_STR(err, "the anthropic backend serves chat completions only");
	free(err);
	SY_CHECK_INT(evbuffer_get_length(out), 0);
	evbuffer_free(out);
}

SY_TEST(plain_conversation_keeps_string_contents_and_the_served_model)
{
	struct sy_req *req = sy_test_req(SY_API_CHAT, "{\"model\":\"gpt-4o\","
	    "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},"
	    "{\"role\":\"assistant\",\"content\":\"hello\"},"
	    "{\"role\":\"user\",\"content\":\"bye\"}]}", "claude-sonnet-4-5");
	struct evbuffer *out = evbuffer_new();
	char *err = NULL;
	json_t *obj;

	SY_CHECK_INT(anthropic->encode(req, &plain_ep, out, &up, &err), 0);
	obj = json_loadb((const char *)evbuffer_pullup(out, -1),
	    evbuffer_get_length(out), 0, NULL);
	SY_CHECK_STR(sy_test_str_at(obj, "model"), "claude-sonnet-4-5");
	SY_CHECK_INT(json_array_size(sy_test_at(obj, "messages")), 3);
	SY_CHECK_STR(sy_test_str_at(obj, "messages.0.role"), "user");
	SY_CHECK_STR(sy_test_str_at(obj, "messages.0.content"), "hi");
	SY_CHECK_STR(sy_test_str_at(obj, "messages.1.role"), "assistant");
	SY_CHECK_STR(sy_test_str_at(obj, "messages.1.content"), "hello");
	SY_CHECK_STR(sy_test_str_at(obj, "messages.2.content"), "bye");
	SY_CHECK(sy_test_at(obj, "system") == NULL);
	SY_CHECK(sy_test_at(obj, "stream") == NULL);
	json_decref(obj);
	evbuffer_free(out);
}

SY_TEST(system_and_developer_messages_anywhere_make_one_system_prompt)
{
	char *err;
	json_t *obj = encode_chat("{\"model\":\"m\",\"messages\":["
	    "{\"role\":\"system\",\"content\":\"Be brief.\"},"
	    "{\"role\":\"user\",\"content\":\"hi\"},"
	    "{\"role\":\"developer\",\"content\":[{\"type\":\"text\","
	    "\"text\":\"Answer in French.\"}]},"
	    "{\"role\":\"user\",\"content\":\"bye\"}]}", &err);

	SY_CHECK_STR(sy_test_str_at(obj, "system"), "Be brief.\n\nAnswer in French.");
	/* The user turns on either side of the developer message merge. */
	SY_CHECK_INT(json_array_size(sy_test_at(obj, "messages")), 1);
	SY_CHECK_STR(sy_test_str_at(obj, "messages.0.content.0.text"), "hi");
	SY_CHECK_STR(sy_test_str_at(obj, "messages.0.content.1.text"), "bye");
	json_decref(obj);
}

SY_TEST(consecutive_messages_of_one_role_merge_as_anthropic_requires)
{
	char *err;
	json_t *obj = encode_chat("{\"model\":\"m\",\"messages\":["
	    "{\"role\":\"user\",\"content\":\"one\"},"
	    "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"two\"},"
	    "{\"type\":\"text\",\"text\":\"\"}]},"
	    "{\"role\":\"assistant\",\"content\":\"a\"},"
	    "{\"role\":\"assistant\",\"content\":\"b\"}]}", &err);

	SY_CHECK_INT(json_array_size(sy_test_at(obj, "messages")), 2);
	SY_CHECK_STR(sy_test_str_at(obj, "messages.0.role"), "user");
	SY_CHECK_INT(json_array_size(sy_test_at(obj, "messages.0.content")), 2);
	SY_CHECK_STR(sy_test_str_at(obj, "messages.0.content.0.type"), "text");
	SY_CHECK_STR(sy_test_str_at(obj, "messages.0.content.1.text"), "two");
	SY_CHECK_STR(sy_test_str_at(obj, "messages.1.role"), "assistant");
	SY_CHECK_STR(sy_test_str_at(obj, "messages.1.content.1.text"), "b");
	json_decref(obj);
}

SY_TEST(text_parts_keep_their_cache_control)
{
	char *err;
	json_t *obj = encode_chat("{\"model\":\"m\",\"messages\":["
	    "{\"role\":\"system\",\"content\":[{\"type\":\"text\",\"text\":"
	    "\"long rules\",\"cache_control\":{\"type\":\"ephemeral\"}}]},"
	    "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"q\","
	    "\"cache_control\":{\"type\":\"ephemeral\"}}]}]}", &err);

	SY_CHECK_STR(sy_test_str_at(obj, "system.0.text"), "long rules");
	SY_CHECK_STR(sy_test_str_at(obj, "system.0.cache_control.type"), "ephemeral");
	SY_CHECK_STR(sy_test_str_at(obj, "messages.0.content.0.text"), "q");
	SY_CHECK_STR(sy_test_str_at(obj, "messages.0.content.0.cache_control.type"),
	    "ephemeral");
	json_decref(obj);
}

SY_TEST(image_parts_are_refused_naming_the_field)
{
	SY_CHECK(refused_naming("{\"model\":\"m\",\"messages\":["
	    "{\"role\":\"user\",\"content\":\"hi\"},"
	    "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"see\"},"
	    "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:,\"}}]}]}",
	    "'messages[1].content[1]' of type 'image_url'"));
}

SY_TEST(tool_calls_become_tool_use_blocks_and_results_one_user_turn)
{
	char *err;
	json_t *obj = encode_chat("{\"model\":\"m\",\"messages\":["
	    "{\"role\":\"user\",\"content\":\"weather and time?\"},"
	    "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":["
	    "{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":"
	    "\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}},"
	    "{\"id\":\"call_2\",\"type\":\"function\",\"function\":{\"name\":"
	    "\"get_time\",\"arguments\":\"\"}}]},"
	    "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"12C\"},"
	    "{\"role\":\"tool\",\"tool_call_id\":\"call_2\",\"content\":"
	    "[{\"type\":\"text\",\"text\":\"noon\"}]}],"
	    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":"
	    "\"get_weather\",\"parameters\":{\"type\":\"object\"}}}]}", &err);

	SY_CHECK_INT(json_array_size(sy_test_at(obj, "messages")), 3);
	SY_CHECK_STR(sy_test_str_at(obj, "messages.1.role"), "assistant");
	SY_CHECK_INT(json_array_size(sy_test_at(obj, "messages.1.content")), 2);
	SY_CHECK_STR(sy_test_str_at(obj, "messages.1.content.0.type"), "tool_use");
	SY_CHECK_STR(sy_test_str_at(obj, "messages.1.content.0.id"), "call_1");
	SY_CHECK_STR(sy_test_str_at(obj, "messages.1.content.0.name"), "get_weather");
	SY_CHECK_STR(sy_test_str_at(obj, "messages.1.content.0.input.city"), "Paris");
	SY_CHECK(json_is_object(sy_test_at(obj, "messages.1.content.1.input")));
	SY_CHECK_INT(json_object_size(sy_test_at(obj, "messages.1.content.1.input")), 0);
	SY_CHECK_STR(sy_test_str_at(obj, "messages.2.role"), "user");
	SY_CHECK_STR(sy_test_str_at(obj, "messages.2.content.0.type"), "tool_result");
	SY_CHECK_STR(sy_test_str_at(obj, "messages.2.content.0.tool_use_id"), "call_1");
	SY_CHECK_STR(sy_test_str_at(obj, "messages.2.content.0.content"), "12C");
	SY_CHECK_STR(sy_test_str_at(obj, "messages.2.content.1.tool_use_id"), "call_2");
	SY_CHECK_STR(sy_test_str_at(obj, "messages.2.content.1.content.0.text"), "noon");
	json_decref(obj);
}

SY_TEST(tool_call_arguments_that_are_not_a_json_object_are_refused)
{
	SY_CHECK(refused_naming("{\"model\":\"m\",\"messages\":["
	    "{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"c\",\"type\":"
	    "\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{oops\"}}]}]}",
	    "'messages[0].tool_calls[0].function.arguments'"));
	SY_CHECK(refused_naming("{\"model\":\"m\",\"messages\":["
	    "{\"role\":\"tool\",\"content\":\"x\"}]}",
	    "'messages[0].tool_call_id'"));
}

SY_TEST(max_tokens_defaults_to_4096_and_max_completion_tokens_wins)
{
	char *err;
	json_t *obj = encode_chat("{\"model\":\"m\",\"messages\":[]}", &err);

	SY_CHECK_INT(json_integer_value(sy_test_at(obj, "max_tokens")), 4096);
	json_decref(obj);
	obj = encode_chat("{\"model\":\"m\",\"messages\":[],\"max_tokens\":7}",
	    &err);
	SY_CHECK_INT(json_integer_value(sy_test_at(obj, "max_tokens")), 7);
	json_decref(obj);
	obj = encode_chat("{\"model\":\"m\",\"messages\":[],\"max_tokens\":7,"
	    "\"max_completion_tokens\":9}", &err);
	SY_CHECK_INT(json_integer_value(sy_test_at(obj, "max_tokens")), 9);
	json_decref(obj);
	SY_CHECK(refused_naming("{\"model\":\"m\",\"messages\":[],"
	    "\"max_tokens\":0}", "'max_tokens'"));
}

SY_TEST(sampling_stop_user_and_stream_are_carried_over)
{
	char *err;
	json_t *obj = encode_chat("{\"model\":\"m\",\"messages\":[],"
	    "\"temperature\":0.5,\"top_p\":0.9,\"stop\":\"END\",\"user\":\"u-42\","
	    "\"stream\":true,\"stream_options\":{\"include_usage\":true},"
	    "\"seed\":3}", &err);

	SY_CHECK(json_real_value(sy_test_at(obj, "temperature")) == 0.5);
	SY_CHECK(json_real_value(sy_test_at(obj, "top_p")) == 0.9);
	SY_CHECK_INT(json_array_size(sy_test_at(obj, "stop_sequences")), 1);
	SY_CHECK_STR(sy_test_str_at(obj, "stop_sequences.0"), "END");
	SY_CHECK_STR(sy_test_str_at(obj, "metadata.user_id"), "u-42");
	SY_CHECK(json_is_true(sy_test_at(obj, "stream")));
	SY_CHECK(sy_test_at(obj, "stream_options") == NULL);
	SY_CHECK(sy_test_at(obj, "seed") == NULL);
	json_decref(obj);
	obj = encode_chat("{\"model\":\"m\",\"messages\":[],\"stop\":[\"a\","
	    "\"b\"]}", &err);
	SY_CHECK_STR(sy_test_str_at(obj, "stop_sequences.1"), "b");
	json_decref(obj);
}

SY_TEST(function_tools_become_tools_with_input_schemas)
{
	char *err;
	json_t *obj = encode_chat("{\"model\":\"m\",\"messages\":[],"
	    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\","
	    "\"description\":\"does f\",\"parameters\":{\"type\":\"object\","
	    "\"properties\":{\"x\":{\"type\":\"integer\"}}}}},"
	    "{\"type\":\"function\",\"function\":{\"name\":\"g\"}}]}", &err);

	SY_CHECK_STR(sy_test_str_at(obj, "tools.0.name"), "f");
	SY_CHECK_STR(sy_test_str_at(obj, "tools.0.description"), "does f");
	SY_CHECK_STR(sy_test_str_at(obj, "tools.0.input_schema.properties.x.type"),
	    "integer");
	SY_CHECK_STR(sy_test_str_at(obj, "tools.1.name"), "g");
	SY_CHECK_STR(sy_test_str_at(obj, "tools.1.input_schema.type"), "object");
	SY_CHECK_STR(sy_test_str_at(obj, "tool_choice.type"), "auto");
	json_decref(obj);
}

/* The tool_choice sent for the client's (JSON text), or NULL. */
static json_t *
choice_for(const char *choice, const char *extra)
{
	char text[1024], *err;
	json_t *obj, *tc;

	snprintf(text, sizeof text, "{\"model\":\"m\",\"messages\":[%s],"
	    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],"
	    "\"tool_choice\":%s}", extra, choice);
	obj = encode_chat(text, &err);
	tc = json_incref(sy_test_at(obj, "tool_choice"));
	if (tc == NULL && sy_test_at(obj, "tools") != NULL)
		printf("# tools sent without tool_choice\n");
	json_decref(obj);
	free(err);
	return tc;
}

SY_TEST(tool_choice_maps_to_auto_any_tool_or_no_tools)
{
	json_t *tc;

	tc = choice_for("\"auto\"", "");
	SY_CHECK_STR(sy_test_str_at(tc, "type"), "auto");
	json_decref(tc);
	tc = choice_for("\"required\"", "");
	SY_CHECK_STR(sy_test_str_at(tc, "type"), "any");
	json_decref(tc);
	tc = choice_for("{\"type\":\"function\",\"function\":{\"name\":\"f\"}}",
	    "");
	SY_CHECK_STR(sy_test_str_at(tc, "type"), "tool");
	SY_CHECK_STR(sy_test_str_at(tc, "name"), "f");
	json_decref(tc);
	/* "none" without tool history: no tools at all. */
	SY_CHECK(choice_for("\"none\"", "") == NULL);
	/* With tool history Anthropic wants the tools: type none. */
	tc = choice_for("\"none\"", "{\"role\":\"tool\",\"tool_call_id\":\"c\","
	    "\"content\":\"1\"}");
	SY_CHECK_STR(sy_test_str_at(tc, "type"), "none");
	json_decref(tc);
	SY_CHECK(refused_naming("{\"model\":\"m\",\"messages\":[],\"tools\":"
	    "[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],"
	    "\"tool_choice\":\"sometimes\"}", "'tool_choice'"));
}

SY_TEST(parallel_tool_calls_false_disables_parallel_tool_use)
{
	char *err;
	json_t *obj = encode_chat("{\"model\":\"m\",\"messages\":[],\"tools\":"
	    "[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],"
	    "\"parallel_tool_calls\":false,\"tool_choice\":\"required\"}", &err);

	SY_CHECK_STR(sy_test_str_at(obj, "tool_choice.type"), "any");
	SY_CHECK(json_is_true(sy_test_at(obj, "tool_choice.disable_parallel_tool_use")));
	json_decref(obj);
}

SY_TEST(fields_anthropic_cannot_honour_are_refused_by_name)
{
	SY_CHECK(refused_naming("{\"model\":\"m\",\"messages\":[],\"n\":2}",
	    "'n'"));
	SY_CHECK(refused_naming("{\"model\":\"m\",\"messages\":[],"
	    "\"logprobs\":true}", "'logprobs'"));
	SY_CHECK(refused_naming("{\"model\":\"m\",\"messages\":[],"
	    "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{}}}",
	    "'response_format' of type 'json_schema'"));
	SY_CHECK(refused_naming("{\"model\":\"m\",\"messages\":[],"
	    "\"tools\":[{\"type\":\"web_search\"}]}", "'tools[0]'"));
	SY_CHECK(refused_naming("{\"model\":\"m\",\"messages\":["
	    "{\"role\":\"function\",\"content\":\"x\"}]}", "'messages[0].role'"));
}

SY_TEST(fields_that_change_nothing_are_accepted)
{
	char *err;
	json_t *obj = encode_chat("{\"model\":\"m\",\"messages\":[],\"n\":1,"
	    "\"logprobs\":false,\"response_format\":{\"type\":\"text\"},"
	    "\"tools\":[],\"tool_choice\":\"auto\"}", &err);

	SY_CHECK(obj != NULL);
	SY_CHECK(sy_test_at(obj, "tools") == NULL);
	SY_CHECK(sy_test_at(obj, "tool_choice") == NULL);
	json_decref(obj);
	free(err);
}

/* ==== Answers ==== */

/*
 * Decodes text answered with status for a chat request of served model
 * "served": the client's body parsed (NULL when decode refused it).
 */
static json_t *
decode_text(int status, const char *text, struct sy_usage *u, char **err)
{
	struct sy_req *req = sy_test_req(SY_API_CHAT, "{\"model\":\"alias\","
	    "\"messages\":[]}", "served");
	struct evbuffer *body = evbuffer_new(), *out = evbuffer_new();
	json_t *obj = NULL;

	evbuffer_add(body, text, strlen(text));
	u->prompt_tokens = u->completion_tokens = u->cached_tokens = -1;
	*err = NULL;
	if (anthropic->decode(req, status, body, out, u, err) == 0) {
		obj = json_loadb((const char *)evbuffer_pullup(out, -1),
		    evbuffer_get_length(out), 0, NULL);
		if (obj == NULL)
			printf("# decode wrote invalid JSON: %.*s\n",
			    (int)evbuffer_get_length(out),
			    (const char *)evbuffer_pullup(out, -1));
	}
	evbuffer_free(body);
	evbuffer_free(out);
	return obj;
}

SY_TEST(message_becomes_a_chat_completion_of_the_served_model)
{
	char *text = sy_test_fixture("anthropic/message.json", NULL), *err;
	struct sy_usage u;
	json_t *obj = decode_text(200, text, &u, &err);

	SY_CHECK_STR(sy_test_str_at(obj, "id"), "msg_fDRw8t2GWl2FnpO7mxc5z4Bm");
	SY_CHECK_STR(sy_test_str_at(obj, "object"), "chat.completion");
	SY_CHECK_STR(sy_test_str_at(obj, "model"), "served");
	SY_CHECK(json_integer_value(sy_test_at(obj, "created")) > 1700000000);
	SY_CHECK_STR(sy_test_str_at(obj, "choices.0.message.role"), "assistant");
	SY_CHECK_STR(sy_test_str_at(obj, "choices.0.message.content"),
	    " has with for were each tree");
	SY_CHECK(sy_test_at(obj, "choices.0.message.tool_calls") == NULL);
	SY_CHECK_STR(sy_test_str_at(obj, "choices.0.finish_reason"), "stop");
	SY_CHECK_INT(json_integer_value(sy_test_at(obj, "usage.prompt_tokens")), 11);
	SY_CHECK_INT(json_integer_value(sy_test_at(obj, "usage.completion_tokens")), 6);
	SY_CHECK_INT(json_integer_value(sy_test_at(obj, "usage.total_tokens")), 17);
	SY_CHECK_INT(u.prompt_tokens, 11);
	SY_CHECK_INT(u.completion_tokens, 6);
	SY_CHECK_INT(u.cached_tokens, 0);
	json_decref(obj);
	free(text);
}

SY_TEST(tool_use_blocks_become_tool_calls_and_cache_counts_the_prompt)
{
	char *text = sy_test_fixture("anthropic/tool_use.json", NULL), *err;
	struct sy_usage u;
	json_t *obj = decode_text(200, text, &u, &err), *args;

	SY_CHECK_STR(sy_test_str_at(obj, "choices.0.message.content"),
	    "I'll check the weather in San Francisco.");
	SY_CHECK_STR(sy_test_str_at(obj, "choices.0.message.tool_calls.0.id"),
	    "toolu_01A09q90qw90lq917835lq9");
	SY_CHECK_STR(sy_test_str_at(obj, "choices.0.message.tool_calls.0.type"),
	    "function");
	SY_CHECK_STR(sy_test_str_at(obj, "choices.0.message.tool_calls.0.function.name"),
	    "get_weather");
	args = json_loads(sy_test_str_at(obj,
	    "choices.0.message.tool_calls.0.function.arguments"), 0, NULL);
	SY_CHECK_STR(sy_test_str_at(args, "location"), "San Francisco, CA");
	SY_CHECK_STR(sy_test_str_at(args, "unit"), "celsius");
	SY_CHECK_STR(sy_test_str_at(obj, "choices.0.finish_reason"), "tool_calls");
	SY_CHECK_INT(u.prompt_tokens, 472 + 100 + 2048);
	SY_CHECK_INT(u.cached_tokens, 2048);
	SY_CHECK_INT(u.completion_tokens, 89);
	SY_CHECK_INT(json_integer_value(sy_test_at(obj,
	    "usage.prompt_tokens_details.cached_tokens")), 2048);
	json_decref(args);
	json_decref(obj);
	free(text);
}

SY_TEST(stop_reasons_map_to_finish_reasons)
{
	static const char *const pairs[][2] = {
		{ "end_turn", "stop" }, { "stop_sequence", "stop" },
		{ "max_tokens", "length" }, { "tool_use", "tool_calls" }
	};
	char text[256], *err;
	struct sy_usage u;
	json_t *obj;
	size_t i;

	for (i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
		snprintf(text, sizeof text, "{\"id\":\"msg_1\",\"type\":\"message\","
		    "\"content\":[],\"stop_reason\":\"%s\"}", pairs[i][0]);
		obj = decode_text(200, text, &u, &err);
		SY_CHECK_STR(sy_test_str_at(obj, "choices.0.finish_reason"), pairs[i][1]);
		SY_CHECK_STR(sy_test_str_at(obj, "choices.0.message.content"), "");
		json_decref(obj);
	}
}

SY_TEST(anthropic_errors_become_openai_errors_with_their_type_as_code)
{
	char *text = sy_test_fixture("anthropic/error_overloaded.json", NULL);
	char *err;
	struct sy_usage u;
	json_t *obj = decode_text(529, text, &u, &err);

	SY_CHECK_STR(sy_test_str_at(obj, "error.message"), "Overloaded");
	SY_CHECK_STR(sy_test_str_at(obj, "error.type"), "server_error");
	SY_CHECK_STR(sy_test_str_at(obj, "error.code"), "overloaded_error");
	json_decref(obj);
	obj = decode_text(401, "{\"type\":\"error\",\"error\":{\"type\":"
	    "\"authentication_error\",\"message\":\"invalid x-api-key\"}}", &u,
	    &err);
	SY_CHECK_STR(sy_test_str_at(obj, "error.type"), "authentication_error");
	SY_CHECK_STR(sy_test_str_at(obj, "error.code"), "authentication_error");
	SY_CHECK_STR(sy_test_str_at(obj, "error.message"), "invalid x-api-key");
	json_decref(obj);
	obj = decode_text(400, "{\"type\":\"error\",\"error\":{\"type\":"
	    "\"request_too_large\",\"message\":\"too big\"}}", &u, &err);
	SY_CHECK_STR(sy_test_str_at(obj, "error.type"), "invalid_request_error");
	SY_CHECK_INT(u.prompt_tokens, -1);
	json_decref(obj);
	free(text);
}

SY_TEST(errors_in_no_known_shape_are_wrapped)
{
	char *err;
	struct sy_usage u;
	json_t *obj = decode_text(502, "<html>Bad Gateway</html>", &u, &err);

	SY_CHECK_STR(sy_test_str_at(obj, "error.message"),
	    "backend returned HTTP 502: <html>Bad Gateway</html>");
	SY_CHECK_STR(sy_test_str_at(obj, "error.type"), "server_error");
	SY_CHECK_INT(json_integer_value(sy_test_at(obj, "error.code")), 502);
	json_decref(obj);
	obj = decode_text(429, "{\"error\":\"slow down\"}", &u, &err);
	SY_CHECK_STR(sy_test_str_at(obj, "error.type"), "rate_limit_error");
	json_decref(obj);
}

SY_TEST(success_that_is_not_a_message_is_refused)
{
	static const char *const bodies[] = {
		"", "<html>", "[]", "{\"content\":\"x\"}", "{\"id\":\"msg\"}", NULL
	};
	char *err;
	struct sy_usage u;
	size_t i;

	for (i = 0; bodies[i] != NULL; i++) {
		SY_CHECK(decode_text(200, bodies[i], &u, &err) == NULL);
		SY_CHECK(err != NULL);
		SY_CHECK_INT(u.prompt_tokens, -1);
		free(err);
	}
}

/* ==== Streams ==== */

/* Relays text (len bytes of Anthropic SSE) through the adapter. */
static void
relay_text(const char *text, size_t len, int wants_usage, struct sy_test_relay *r)
{
	struct sy_sse sse;

	memset(r, 0, sizeof *r);
	r->kind = anthropic;
	r->req = sy_test_req(SY_API_CHAT, "{\"model\":\"alias\",\"messages\":[],"
	    "\"stream\":true}", "served");
	r->req->client_wants_usage = wants_usage;
	r->state = anthropic->stream_open(r->req);
	r->out = evbuffer_new();
	r->usage.prompt_tokens = r->usage.completion_tokens =
	    r->usage.cached_tokens = -1;
	sy_sse_init(&sse, 0);
	sy_sse_feed(&sse, text, len, sy_test_relay_event, r);
	sy_sse_free(&sse);
}

static void
relay_fixture(const char *name, int wants_usage, struct sy_test_relay *r)
{
	size_t len;
	char *text = sy_test_fixture(name, &len);

	relay_text(text, len, wants_usage, r);
	free(text);
}

static void
relay_free(struct sy_test_relay *r)
{
	anthropic->stream_close(r->state);
	evbuffer_free(r->out);
}

/*
 * The chunks the client got, parsed, as an array ("[DONE]" as the string
 * "[DONE]"); checks that every event is one "data:" line.
 */
static json_t *
chunks(struct sy_test_relay *r)
{
	char *text = strndup((const char *)evbuffer_pullup(r->out, -1),
	    evbuffer_get_length(r->out));
	json_t *all = json_array(), *c;
	char *ev, *save;

	for (ev = strtok_r(text, "\n", &save); ev != NULL;
	    ev = strtok_r(NULL, "\n", &save)) {
		SY_CHECK(strncmp(ev, "data: ", 6) == 0);
		if (strcmp(ev + 6, "[DONE]") == 0) {
			json_array_append_new(all, json_string("[DONE]"));
			continue;
		}
		c = json_loads(ev + 6, 0, NULL);
		if (c == NULL)
			printf("# not JSON: %s\n", ev + 6);
		SY_CHECK(c != NULL);
		json_array_append_new(all, c != NULL ? c : json_null());
	}
	free(text);
	return all;
}

/* The contents of the chunks' deltas, joined. */
static void
contents(json_t *all, char *buf, size_t len)
{
	json_t *c;
	size_t i;
	const char *s;

	buf[0] = '\0';
	json_array_foreach(all, i, c)
		if ((s = sy_test_str_at(c, "choices.0.delta.content")) != NULL)
			strncat(buf, s, len - strlen(buf) - 1);
}

SY_TEST(text_stream_becomes_openai_chunks_ending_in_done)
{
	struct sy_test_relay r;
	json_t *all, *c;
	char text[256];
	size_t i, n;

	relay_fixture("anthropic/message_stream.sse", 0, &r);
	all = chunks(&r);
	n = json_array_size(all);
	/* Role, six tokens, finish, [DONE]. */
	SY_CHECK_INT(n, 9);
	SY_CHECK_INT(r.forwarded, 8);
	SY_CHECK_INT(r.done, 1);
	SY_CHECK_INT(r.errors, 0);
	SY_CHECK_INT(r.dropped, 3);	/* block start, ping, block stop */
	SY_CHECK_STR(sy_test_str_at(all, "0.choices.0.delta.role"), "assistant");
	SY_CHECK_STR(sy_test_str_at(all, "0.choices.0.delta.content"), "");
	for (i = 0; i + 1 < n; i++) {
		c = json_array_get(all, i);
		SY_CHECK_STR(sy_test_str_at(c, "id"), "msg_NRkGcIxGOlIvna0yHV6dnyuq");
		SY_CHECK_STR(sy_test_str_at(c, "object"), "chat.completion.chunk");
		SY_CHECK_STR(sy_test_str_at(c, "model"), "served");
		SY_CHECK(sy_test_at(c, "usage") == NULL);
	}
	contents(all, text, sizeof text);
	SY_CHECK_STR(text, " but up its by when use");
	SY_CHECK_STR(sy_test_str_at(all, "6.choices.0.delta.content"), " use");
	SY_CHECK(json_is_null(sy_test_at(all, "6.choices.0.finish_reason")));
	SY_CHECK_STR(sy_test_str_at(all, "7.choices.0.finish_reason"), "stop");
	SY_CHECK_INT(json_object_size(sy_test_at(all, "7.choices.0.delta")), 0);
	SY_CHECK_STR(sy_test_str_at(all, "8"), "[DONE]");
	SY_CHECK_INT(r.usage.prompt_tokens, 7);
	SY_CHECK_INT(r.usage.completion_tokens, 6);
	SY_CHECK_INT(r.usage.cached_tokens, 0);
	json_decref(all);
	relay_free(&r);
}

SY_TEST(usage_chunk_is_sent_when_the_client_asked_for_it)
{
	struct sy_test_relay r;
	json_t *all, *last;
	size_t n;

	relay_fixture("anthropic/tool_use_stream.sse", 1, &r);
	all = chunks(&r);
	n = json_array_size(all);
	last = json_array_get(all, n - 2);
	SY_CHECK_INT(json_array_size(sy_test_at(last, "choices")), 0);
	SY_CHECK_INT(json_integer_value(sy_test_at(last, "usage.prompt_tokens")),
	    472 + 1024);
	SY_CHECK_INT(json_integer_value(sy_test_at(last, "usage.completion_tokens")), 89);
	SY_CHECK_INT(json_integer_value(sy_test_at(last, "usage.total_tokens")),
	    472 + 1024 + 89);
	SY_CHECK_INT(json_integer_value(sy_test_at(last,
	    "usage.prompt_tokens_details.cached_tokens")), 1024);
	SY_CHECK_STR(sy_test_str_at(last, "id"), "msg_014p7gG3wDgGV9EUtLvnow3U");
	SY_CHECK_STR(json_string_value(json_array_get(all, n - 1)), "[DONE]");
	SY_CHECK_INT(r.usage.prompt_tokens, 472 + 1024);
	SY_CHECK_INT(r.usage.cached_tokens, 1024);
	SY_CHECK_INT(r.usage.completion_tokens, 89);
	json_decref(all);
	relay_free(&r);
}

SY_TEST(tool_use_blocks_stream_as_tool_call_deltas)
{
	struct sy_test_relay r;
	json_t *all, *c, *tc;
	char args[2][256] = { "", "" }, text[256];
	const char *s;
	size_t i;
	int k;

	relay_fixture("anthropic/tool_use_stream.sse", 0, &r);
	all = chunks(&r);
	json_array_foreach(all, i, c) {
		tc = sy_test_at(c, "choices.0.delta.tool_calls.0");
		if (tc == NULL)
			continue;
		k = (int)json_integer_value(sy_test_at(tc, "index"));
		SY_CHECK(k == 0 || k == 1);
		if (k != 0 && k != 1)
			continue;
		if (sy_test_at(tc, "id") != NULL) {
			SY_CHECK_STR(sy_test_str_at(tc, "id"), k == 0 ?
			    "toolu_01T1x1fJ34qAmk2tNTrN7Up6" : "toolu_02B");
			SY_CHECK_STR(sy_test_str_at(tc, "type"), "function");
			SY_CHECK_STR(sy_test_str_at(tc, "function.name"), k == 0 ?
			    "get_weather" : "get_time");
			SY_CHECK_STR(sy_test_str_at(tc, "function.arguments"), "");
			SY_CHECK_INT(strlen(args[k]), 0);
		}
		if ((s = sy_test_str_at(tc, "function.arguments")) != NULL)
			strcat(args[k], s);
	}
	SY_CHECK_STR(args[0],
	    "{\"location\": \"San Francisco, CA\", \"unit\": \"celsius\"}");
	SY_CHECK_STR(args[1], "{}");
	contents(all, text, sizeof text);
	SY_CHECK_STR(text, "Okay, let's check the weather.");
	SY_CHECK_STR(sy_test_str_at(json_array_get(all, json_array_size(all) - 2),
	    "choices.0.finish_reason"), "tool_calls");
	SY_CHECK_INT(r.done, 1);
	json_decref(all);
	relay_free(&r);
}

SY_TEST(error_event_becomes_an_openai_error_and_ends_the_stream)
{
	struct sy_test_relay r;
	json_t *all, *last;
	char text[256];

	relay_fixture("anthropic/error_midstream.sse", 0, &r);
	all = chunks(&r);
	last = json_array_get(all, json_array_size(all) - 1);
	SY_CHECK_INT(r.errors, 1);
	SY_CHECK_INT(r.done, 0);
	SY_CHECK_STR(sy_test_str_at(last, "error.message"),
	    "injected fault: error in the middle of the stream");
	SY_CHECK_STR(sy_test_str_at(last, "error.type"), "server_error");
	SY_CHECK_STR(sy_test_str_at(last, "error.code"), "overloaded_error");
	contents(all, text, sizeof text);
	SY_CHECK_STR(text, " but up");
	SY_CHECK_INT(r.usage.prompt_tokens, 7);
	json_decref(all);
	relay_free(&r);
}

SY_TEST(event_that_is_not_json_ends_the_stream_with_an_error)
{
	static const char text[] = "event: message_start\ndata: {\"type\":"
	    "\"message_start\",\"message\":{\"id\":\"msg_1\"}}\n\n"
	    "event: content_block_delta\ndata: {\"type\":\"content_block_de\n\n";
	struct sy_test_relay r;
	json_t *all;

	relay_text(text, sizeof text - 1, 0, &r);
	all = chunks(&r);
	SY_CHECK_INT(r.forwarded, 1);
	SY_CHECK_INT(r.errors, 1);
	SY_CHECK_STR(sy_test_str_at(all, "1.error.code"), "bad_gateway");
	json_decref(all);
	relay_free(&r);
}

SY_TEST(text_with_escapes_and_unknown_events_pass_through_intact)
{
	static const char text[] = "event: message_start\ndata: {\"type\":"
	    "\"message_start\",\"message\":{\"id\":\"msg_\\\"q\\\"\"}}\n\n"
	    "event: content_block_start\ndata: {\"type\":\"content_block_start\","
	    "\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":"
	    "\"\"}}\n\n"
	    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\","
	    "\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":"
	    "\"hm\"}}\n\n"
	    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\","
	    "\"index\":0,\"delta\":{\"type\":\"input_json_delta\","
	    "\"partial_json\":\"{}\"}}\n\n"
	    "event: something_new\ndata: {\"type\":\"something_new\"}\n\n"
	    ": a comment\n\n"
	    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\","
	    "\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":"
	    "\"line\\n\\\"\\u00e9\\\"\"}}\n\n";
	struct sy_test_relay r;
	json_t *all;

	relay_text(text, sizeof text - 1, 0, &r);
	all = chunks(&r);
	SY_CHECK_INT(r.forwarded, 2);
	SY_CHECK_INT(r.dropped, 5);
	SY_CHECK_STR(sy_test_str_at(all, "1.id"), "msg_\"q\"");
	SY_CHECK_STR(sy_test_str_at(all, "1.choices.0.delta.content"),
	    "line\n\"\xc3\xa9\"");
	json_decref(all);
	relay_free(&r);
}

int
main(void)
{
	anthropic = sy_backend_kind_find("anthropic");
	if (anthropic == NULL) {
		printf("Bail out! no anthropic backend kind\n");
		return 1;
	}
	SY_RUN(chat_goes_to_messages_with_the_key_and_api_version_headers);
	SY_RUN(completions_and_embeddings_are_refused_clearly);
	SY_RUN(plain_conversation_keeps_string_contents_and_the_served_model);
	SY_RUN(system_and_developer_messages_anywhere_make_one_system_prompt);
	SY_RUN(consecutive_messages_of_one_role_merge_as_anthropic_requires);
	SY_RUN(text_parts_keep_their_cache_control);
	SY_RUN(image_parts_are_refused_naming_the_field);
	SY_RUN(tool_calls_become_tool_use_blocks_and_results_one_user_turn);
	SY_RUN(tool_call_arguments_that_are_not_a_json_object_are_refused);
	SY_RUN(max_tokens_defaults_to_4096_and_max_completion_tokens_wins);
	SY_RUN(sampling_stop_user_and_stream_are_carried_over);
	SY_RUN(function_tools_become_tools_with_input_schemas);
	SY_RUN(tool_choice_maps_to_auto_any_tool_or_no_tools);
	SY_RUN(parallel_tool_calls_false_disables_parallel_tool_use);
	SY_RUN(fields_anthropic_cannot_honour_are_refused_by_name);
	SY_RUN(fields_that_change_nothing_are_accepted);
	SY_RUN(message_becomes_a_chat_completion_of_the_served_model);
	SY_RUN(tool_use_blocks_become_tool_calls_and_cache_counts_the_prompt);
	SY_RUN(stop_reasons_map_to_finish_reasons);
	SY_RUN(anthropic_errors_become_openai_errors_with_their_type_as_code);
	SY_RUN(errors_in_no_known_shape_are_wrapped);
	SY_RUN(success_that_is_not_a_message_is_refused);
	SY_RUN(text_stream_becomes_openai_chunks_ending_in_done);
	SY_RUN(usage_chunk_is_sent_when_the_client_asked_for_it);
	SY_RUN(tool_use_blocks_stream_as_tool_call_deltas);
	SY_RUN(error_event_becomes_an_openai_error_and_ends_the_stream);
	SY_RUN(event_that_is_not_json_ends_the_stream_with_an_error);
	SY_RUN(text_with_escapes_and_unknown_events_pass_through_intact);
	return sy_test_done();
}
