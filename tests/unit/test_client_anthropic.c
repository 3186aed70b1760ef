/* Unit tests of the Anthropic client dialect: Messages requests as canonical chat requests, chat completions and chunk streams as Anthropic messages and events, errors. */
#include <string.h>

#include <event2/buffer.h>

#include "clientapi.h"
#include "sse.h"
#include "sy_test.h"
#include "sy_test_req.h"

static const struct sy_client_api *api = &sy_client_anthropic;

static long long
int_at(json_t *obj, const char *path)
{
	json_t *v = sy_test_at(obj, path);

	return json_is_integer(v) ? json_integer_value(v) : -999;
}

/* The canonical request of Anthropic request text, or NULL (*err says why). */
static json_t *
request(const char *text, char **err)
{
	*err = NULL;
	return api->request(text, strlen(text), err);
}

/* request of text, printing why when it fails. */
static json_t *
request_ok(const char *text)
{
	char *err;
	json_t *out = request(text, &err);

	if (out == NULL)
		printf("# refused: %s\n", err);
	free(err);
	return out;
}

/* Whether text is refused with a message starting with prefix. */
static int
refused(const char *text, const char *prefix)
{
	char *err;
	json_t *out = request(text, &err);
	int ok = out == NULL && err != NULL &&
	    strncmp(err, prefix, strlen(prefix)) == 0;

	if (!ok)
		printf("# expected a refusal starting \"%s\", got: %s\n", prefix,
		    err != NULL ? err : "(accepted)");
	json_decref(out);
	free(err);
	return ok;
}

/* A request of these messages (JSON text) with model and max_tokens. */
#define MSGS(m) "{\"model\":\"claude\",\"max_tokens\":100,\"messages\":" m "}"

/* One user message saying hi, with more members before it. */
#define HI(more) "{\"model\":\"claude\",\"max_tokens\":100," more \
	"\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"

/* ==== Requests ==== */

SY_TEST(request_maps_every_field)
{
	json_t *r = request_ok("{\"model\":\"claude-x\",\"max_tokens\":256,"
	    "\"system\":\"Be brief.\",\"temperature\":0.5,\"top_p\":0.9,"
	    "\"top_k\":40,\"stop_sequences\":[\"END\",\"STOP\"],"
	    "\"stream\":true,\"metadata\":{\"user_id\":\"u-1\"},"
	    "\"service_tier\":\"auto\","
	    "\"tools\":[{\"name\":\"get_weather\",\"description\":\"Weather\","
	    "\"input_schema\":{\"type\":\"object\",\"properties\":{\"city\":"
	    "{\"type\":\"string\"}}}}],"
	    "\"tool_choice\":{\"type\":\"any\",\"disable_parallel_tool_use\":true},"
	    "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");

	SY_CHECK(r != NULL);
	SY_CHECK_STR(sy_test_str_at(r, "model"), "claude-x");
	SY_CHECK_INT(int_at(r, "max_tokens"), 256);
	SY_CHECK(json_real_value(sy_test_at(r, "temperature")) == 0.5);
	SY_CHECK(json_real_value(sy_test_at(r, "top_p")) == 0.9);
	SY_CHECK(sy_test_at(r, "top_k") == NULL);
	SY_CHECK(sy_test_at(r, "service_tier") == NULL);
	SY_CHECK_INT(json_array_size(sy_test_at(r, "stop")), 2);
	SY_CHECK_STR(sy_test_str_at(r, "stop.1"), "STOP");
	SY_CHECK(json_is_true(sy_test_at(r, "stream")));
	SY_CHECK(json_is_true(sy_test_at(r, "stream_options.include_usage")));
	SY_CHECK_STR(sy_test_str_at(r, "user"), "u-1");
	SY_CHECK(sy_test_at(r, "metadata") == NULL);
	SY_CHECK_INT(json_array_size(sy_test_at(r, "messages")), 2);
	SY_CHECK_STR(sy_test_str_at(r, "messages.0.role"), "system");
	SY_CHECK_STR(sy_test_str_at(r, "messages.0.content"), "Be brief.");
	SY_CHECK_STR(sy_test_str_at(r, "messages.1.role"), "user");
	SY_CHECK_STR(sy_test_str_at(r, "messages.1.content"), "hi");
	SY_CHECK_STR(sy_test_str_at(r, "tools.0.type"), "function");
	SY_CHECK_STR(sy_test_str_at(r, "tools.0.function.name"), "get_weather");
	SY_CHECK_STR(sy_test_str_at(r, "tools.0.function.description"), "Weather");
	SY_CHECK_STR(sy_test_str_at(r, "tools.0.function.parameters.properties.city.type"),
	    "string");
	SY_CHECK_STR(sy_test_str_at(r, "tool_choice"), "required");
	SY_CHECK(json_is_false(sy_test_at(r, "parallel_tool_calls")));
	json_decref(r);
}

SY_TEST(request_without_options_has_only_model_max_tokens_and_messages)
{
	json_t *r = request_ok(HI("\"stream\":false,"));

	SY_CHECK(r != NULL);
	SY_CHECK_INT(json_object_size(r), 3);
	SY_CHECK(sy_test_at(r, "stream") == NULL);
	SY_CHECK(sy_test_at(r, "stream_options") == NULL);
	json_decref(r);
}

SY_TEST(system_blocks_are_joined_with_a_blank_line)
{
	json_t *r = request_ok(HI("\"system\":[{\"type\":\"text\",\"text\":\"A\","
	    "\"cache_control\":{\"type\":\"ephemeral\"}},"
	    "{\"type\":\"text\",\"text\":\"B\"}],"));

	SY_CHECK_STR(sy_test_str_at(r, "messages.0.role"), "system");
	SY_CHECK_STR(sy_test_str_at(r, "messages.0.content"), "A\n\nB");
	json_decref(r);
	r = request_ok(HI("\"system\":\"\","));
	SY_CHECK_STR(sy_test_str_at(r, "messages.0.role"), "user");
	json_decref(r);
}

SY_TEST(text_blocks_become_one_string_joined_with_newlines)
{
	json_t *r = request_ok(MSGS("[{\"role\":\"user\",\"content\":["
	    "{\"type\":\"text\",\"text\":\"one\"},{\"type\":\"text\","
	    "\"text\":\"two\"}]},{\"role\":\"assistant\",\"content\":["
	    "{\"type\":\"text\",\"text\":\"three\"},{\"type\":\"text\","
	    "\"text\":\"four\"}]},{\"role\":\"user\",\"content\":\"five\"}]"));

	SY_CHECK_INT(json_array_size(sy_test_at(r, "messages")), 3);
	SY_CHECK_STR(sy_test_str_at(r, "messages.0.content"), "one\ntwo");
	SY_CHECK_STR(sy_test_str_at(r, "messages.1.role"), "assistant");
	SY_CHECK_STR(sy_test_str_at(r, "messages.1.content"), "three\nfour");
	SY_CHECK(sy_test_at(r, "messages.1.tool_calls") == NULL);
	SY_CHECK_STR(sy_test_str_at(r, "messages.2.content"), "five");
	json_decref(r);
}

SY_TEST(image_blocks_become_image_url_parts_in_order)
{
	json_t *r = request_ok(MSGS("[{\"role\":\"user\",\"content\":["
	    "{\"type\":\"text\",\"text\":\"What is this?\"},"
	    "{\"type\":\"image\",\"source\":{\"type\":\"base64\","
	    "\"media_type\":\"image/png\",\"data\":\"iVBORw0K\"}},"
	    "{\"type\":\"image\",\"source\":{\"type\":\"url\","
	    "\"url\":\"https://x.test/cat.jpg\"}}]}]"));

	SY_CHECK_INT(json_array_size(sy_test_at(r, "messages.0.content")), 3);
	SY_CHECK_STR(sy_test_str_at(r, "messages.0.content.0.type"), "text");
	SY_CHECK_STR(sy_test_str_at(r, "messages.0.content.0.text"), "What is this?");
	SY_CHECK_STR(sy_test_str_at(r, "messages.0.content.1.type"), "image_url");
	SY_CHECK_STR(sy_test_str_at(r, "messages.0.content.1.image_url.url"),
	    "data:image/png;base64,iVBORw0K");
	SY_CHECK_STR(sy_test_str_at(r, "messages.0.content.2.image_url.url"),
	    "https://x.test/cat.jpg");
	json_decref(r);
}

SY_TEST(tool_use_blocks_become_tool_calls)
{
	json_t *r = request_ok(MSGS("[{\"role\":\"user\",\"content\":\"w?\"},"
	    "{\"role\":\"assistant\",\"content\":[{\"type\":\"thinking\","
	    "\"thinking\":\"hmm\",\"signature\":\"s\"},{\"type\":\"tool_use\","
	    "\"id\":\"toolu_1\",\"name\":\"get_weather\",\"input\":{\"city\":"
	    "\"Paris\"}},{\"type\":\"tool_use\",\"id\":\"toolu_2\",\"name\":"
	    "\"now\",\"input\":{}}]},"
	    "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":"
	    "\"Checking.\"},{\"type\":\"tool_use\",\"id\":\"toolu_3\",\"name\":"
	    "\"now\"}]}]"));

	SY_CHECK_STR(sy_test_str_at(r, "messages.1.role"), "assistant");
	SY_CHECK(json_is_null(sy_test_at(r, "messages.1.content")));
	SY_CHECK_INT(json_array_size(sy_test_at(r, "messages.1.tool_calls")), 2);
	SY_CHECK_STR(sy_test_str_at(r, "messages.1.tool_calls.0.id"), "toolu_1");
	SY_CHECK_STR(sy_test_str_at(r, "messages.1.tool_calls.0.type"), "function");
	SY_CHECK_STR(sy_test_str_at(r, "messages.1.tool_calls.0.function.name"),
	    "get_weather");
	SY_CHECK_STR(sy_test_str_at(r, "messages.1.tool_calls.0.function.arguments"),
	    "{\"city\":\"Paris\"}");
	SY_CHECK_STR(sy_test_str_at(r, "messages.1.tool_calls.1.function.arguments"),
	    "{}");
	SY_CHECK_STR(sy_test_str_at(r, "messages.2.content"), "Checking.");
	SY_CHECK_STR(sy_test_str_at(r, "messages.2.tool_calls.0.function.arguments"),
	    "{}");
	json_decref(r);
}

SY_TEST(tool_results_become_tool_messages_before_the_user_text)
{
	json_t *r = request_ok(MSGS("[{\"role\":\"user\",\"content\":\"w?\"},"
	    "{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\","
	    "\"id\":\"toolu_1\",\"name\":\"a\",\"input\":{}},{\"type\":"
	    "\"tool_use\",\"id\":\"toolu_2\",\"name\":\"b\",\"input\":{}},"
	    "{\"type\":\"tool_use\",\"id\":\"toolu_3\",\"name\":\"c\","
	    "\"input\":{}}]},"
	    "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":"
	    "\"Thanks.\"},{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_1\","
	    "\"content\":\"15C\"},{\"type\":\"tool_result\",\"tool_use_id\":"
	    "\"toolu_2\",\"content\":[{\"type\":\"text\",\"text\":\"x\"},"
	    "{\"type\":\"text\",\"text\":\"y\"}],\"is_error\":true},"
	    "{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_3\"}]},"
	    "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\","
	    "\"tool_use_id\":\"toolu_4\",\"content\":\"only\"}]}]"));

	SY_CHECK_INT(json_array_size(sy_test_at(r, "messages")), 7);
	SY_CHECK_STR(sy_test_str_at(r, "messages.2.role"), "tool");
	SY_CHECK_STR(sy_test_str_at(r, "messages.2.tool_call_id"), "toolu_1");
	SY_CHECK_STR(sy_test_str_at(r, "messages.2.content"), "15C");
	SY_CHECK_STR(sy_test_str_at(r, "messages.3.tool_call_id"), "toolu_2");
	SY_CHECK_STR(sy_test_str_at(r, "messages.3.content"), "x\ny");
	SY_CHECK_STR(sy_test_str_at(r, "messages.4.tool_call_id"), "toolu_3");
	SY_CHECK_STR(sy_test_str_at(r, "messages.4.content"), "");
	SY_CHECK_STR(sy_test_str_at(r, "messages.5.role"), "user");
	SY_CHECK_STR(sy_test_str_at(r, "messages.5.content"), "Thanks.");
	/* A user turn of only results makes no user message. */
	SY_CHECK_STR(sy_test_str_at(r, "messages.6.role"), "tool");
	SY_CHECK_STR(sy_test_str_at(r, "messages.6.content"), "only");
	json_decref(r);
}

SY_TEST(tool_choice_of_each_type)
{
#define TOOLS "\"tools\":[{\"name\":\"f\",\"input_schema\":{\"type\":\"object\"}}],"
	json_t *r = request_ok(HI(TOOLS "\"tool_choice\":{\"type\":\"auto\"},"));

	SY_CHECK_STR(sy_test_str_at(r, "tool_choice"), "auto");
	SY_CHECK(sy_test_at(r, "tools.0.function.description") == NULL);
	SY_CHECK_STR(sy_test_str_at(r, "tools.0.function.parameters.type"), "object");
	json_decref(r);
	r = request_ok(HI(TOOLS "\"tool_choice\":{\"type\":\"tool\",\"name\":"
	    "\"f\"},"));
	SY_CHECK_STR(sy_test_str_at(r, "tool_choice.type"), "function");
	SY_CHECK_STR(sy_test_str_at(r, "tool_choice.function.name"), "f");
	SY_CHECK(sy_test_at(r, "parallel_tool_calls") == NULL);
	json_decref(r);
	r = request_ok(HI(TOOLS "\"tool_choice\":{\"type\":\"none\","
	    "\"disable_parallel_tool_use\":true},"));
	SY_CHECK_STR(sy_test_str_at(r, "tool_choice"), "none");
	SY_CHECK(sy_test_at(r, "parallel_tool_calls") == NULL);
	json_decref(r);
	r = request_ok(HI(TOOLS));
	SY_CHECK(sy_test_at(r, "tool_choice") == NULL);
	SY_CHECK_INT(json_array_size(sy_test_at(r, "tools")), 1);
	json_decref(r);
	r = request_ok(HI("\"tools\":[{\"type\":\"custom\",\"name\":\"g\","
	    "\"input_schema\":{\"type\":\"object\"}}],"));
	SY_CHECK_STR(sy_test_str_at(r, "tools.0.function.name"), "g");
	json_decref(r);
	/* Without tools, tool_choice says nothing. */
	r = request_ok(HI("\"tools\":[],\"tool_choice\":{\"type\":\"any\"},"));
	SY_CHECK(sy_test_at(r, "tools") == NULL);
	SY_CHECK(sy_test_at(r, "tool_choice") == NULL);
	json_decref(r);
#undef TOOLS
}

SY_TEST(thinking_disabled_is_accepted)
{
	json_t *r = request_ok(HI("\"thinking\":{\"type\":\"disabled\"},"));

	SY_CHECK(r != NULL);
	SY_CHECK(sy_test_at(r, "thinking") == NULL);
	json_decref(r);
}

SY_TEST(request_errors_name_the_field)
{
	SY_CHECK(refused("{\"model\":", "request body is not valid JSON"));
	SY_CHECK(refused("[1]", "request body must be a JSON object"));
	SY_CHECK(refused("{\"max_tokens\":1,\"messages\":[]}",
	    "model: field required"));
	SY_CHECK(refused("{\"model\":3,\"max_tokens\":1}", "model: must be"));
	SY_CHECK(refused("{\"model\":\"m\",\"messages\":[{\"role\":\"user\","
	    "\"content\":\"hi\"}]}", "max_tokens: field required"));
	SY_CHECK(refused(HI("\"max_tokens\":0,"), "max_tokens: must be a "
	    "positive integer"));
	SY_CHECK(refused("{\"model\":\"m\",\"max_tokens\":\"9\"}",
	    "max_tokens: must be a positive integer"));
	SY_CHECK(refused("{\"model\":\"m\",\"max_tokens\":9}",
	    "messages: field required"));
	SY_CHECK(refused(MSGS("{}"), "messages: must be an array"));
	SY_CHECK(refused(MSGS("[]"), "messages: at least one message"));
	SY_CHECK(refused(MSGS("[3]"), "messages.0: must be an object"));
	SY_CHECK(refused(MSGS("[{\"role\":\"user\",\"content\":\"a\"},"
	    "{\"role\":\"system\",\"content\":\"b\"}]"),
	    "messages.1.role: must be \"user\" or \"assistant\""));
	SY_CHECK(refused(MSGS("[{\"content\":\"a\"}]"), "messages.0.role:"));
	SY_CHECK(refused(MSGS("[{\"role\":\"user\"}]"),
	    "messages.0.content: field required"));
	SY_CHECK(refused(MSGS("[{\"role\":\"user\",\"content\":5}]"),
	    "messages.0.content: must be a string or an array"));
	SY_CHECK(refused(MSGS("[{\"role\":\"user\",\"content\":[{\"text\":"
	    "\"a\"}]}]"), "messages.0.content.0.type: field required"));
	SY_CHECK(refused(MSGS("[{\"role\":\"user\",\"content\":[{\"type\":"
	    "\"text\"}]}]"), "messages.0.content.0.text: field required"));
	SY_CHECK(refused(MSGS("[{\"role\":\"user\",\"content\":[{\"type\":"
	    "\"text\",\"text\":\"a\"},{\"type\":\"document\",\"source\":{}}]}]"),
	    "messages.0.content.1.type: 'document' blocks in user messages is "
	    "not supported"));
	SY_CHECK(refused(MSGS("[{\"role\":\"user\",\"content\":[{\"type\":"
	    "\"image\",\"source\":{\"type\":\"file\",\"file_id\":\"f\"}}]}]"),
	    "messages.0.content.0.source: must be"));
	SY_CHECK(refused(MSGS("[{\"role\":\"user\",\"content\":[{\"type\":"
	    "\"tool_result\",\"content\":\"x\"}]}]"),
	    "messages.0.content.0.tool_use_id: field required"));
	SY_CHECK(refused(MSGS("[{\"role\":\"user\",\"content\":[{\"type\":"
	    "\"tool_result\",\"tool_use_id\":\"t\",\"content\":[{\"type\":"
	    "\"image\",\"source\":{}}]}]}]"),
	    "messages.0.content.0.content.0.type: only text blocks"));
	SY_CHECK(refused(MSGS("[{\"role\":\"user\",\"content\":[{\"type\":"
	    "\"tool_result\",\"tool_use_id\":\"t\",\"content\":7}]}]"),
	    "messages.0.content.0.content: must be"));
	SY_CHECK(refused(MSGS("[{\"role\":\"assistant\",\"content\":[{\"type\":"
	    "\"tool_use\",\"name\":\"f\",\"input\":{}}]}]"),
	    "messages.0.content.0.id: field required"));
	SY_CHECK(refused(MSGS("[{\"role\":\"assistant\",\"content\":[{\"type\":"
	    "\"tool_use\",\"id\":\"t\",\"input\":{}}]}]"),
	    "messages.0.content.0.name: field required"));
	SY_CHECK(refused(MSGS("[{\"role\":\"assistant\",\"content\":[{\"type\":"
	    "\"tool_use\",\"id\":\"t\",\"name\":\"f\",\"input\":[1]}]}]"),
	    "messages.0.content.0.input: must be an object"));
	SY_CHECK(refused(MSGS("[{\"role\":\"assistant\",\"content\":[{\"type\":"
	    "\"image\",\"source\":{}}]}]"),
	    "messages.0.content.0.type: 'image' blocks in assistant"));
	SY_CHECK(refused(HI("\"system\":7,"), "system: must be a string or an "
	    "array of text blocks"));
	SY_CHECK(refused(HI("\"system\":[{\"type\":\"image\"}],"),
	    "system.0.type: only text blocks"));
	SY_CHECK(refused(HI("\"system\":[{\"type\":\"text\"}],"),
	    "system.0.text: field required"));
	SY_CHECK(refused(HI("\"temperature\":\"hot\","),
	    "temperature: must be a number"));
	SY_CHECK(refused(HI("\"top_p\":[],"), "top_p: must be a number"));
	SY_CHECK(refused(HI("\"stop_sequences\":\"END\","),
	    "stop_sequences: must be an array of strings"));
	SY_CHECK(refused(HI("\"stop_sequences\":[\"a\",1],"),
	    "stop_sequences.1: must be a string"));
	SY_CHECK(refused(HI("\"stream\":\"yes\","), "stream: must be a boolean"));
	SY_CHECK(refused(HI("\"metadata\":\"u\","), "metadata: must be an "
	    "object"));
	SY_CHECK(refused(HI("\"metadata\":{\"user_id\":5},"),
	    "metadata.user_id: must be a string"));
	SY_CHECK(refused(HI("\"tools\":{},"), "tools: must be an array"));
	SY_CHECK(refused(HI("\"tools\":[{\"type\":\"web_search_20250305\","
	    "\"name\":\"web_search\"}],"), "tools.0.type: 'web_search_20250305' "
	    "tools is not supported"));
	SY_CHECK(refused(HI("\"tools\":[{\"input_schema\":{}}],"),
	    "tools.0.name: field required"));
	SY_CHECK(refused(HI("\"tools\":[{\"name\":\"f\"}],"),
	    "tools.0.input_schema: field required"));
	SY_CHECK(refused(HI("\"tool_choice\":{\"type\":\"required\"},"),
	    "tool_choice.type: must be"));
	SY_CHECK(refused(HI("\"tool_choice\":\"auto\","),
	    "tool_choice.type: must be"));
	SY_CHECK(refused(HI("\"tool_choice\":{\"type\":\"tool\"},"),
	    "tool_choice.name: field required"));
	SY_CHECK(refused(HI("\"thinking\":{\"type\":\"enabled\","
	    "\"budget_tokens\":1024},"), "thinking: extended thinking is not "
	    "supported by switchyard"));
	SY_CHECK(refused(HI("\"mcp_servers\":[{}],"), "mcp_servers: is not "
	    "supported"));
	SY_CHECK(refused(HI("\"output_format\":{\"type\":\"json_schema\"},"),
	    "output_format: is not supported"));
}

/* ==== Whole answers ==== */

/* The Anthropic message of canonical answer text, or NULL (*err says why). */
static json_t *
response(const char *text, const char *model, char **err)
{
	struct evbuffer *body = evbuffer_new(), *out = evbuffer_new();
	json_t *msg = NULL;

	*err = NULL;
	evbuffer_add(body, text, strlen(text));
	if (api->response(body, model, NULL, out, err) == 0) {
		msg = json_loadb((const char *)evbuffer_pullup(out, -1),
		    evbuffer_get_length(out), 0, NULL);
		if (msg == NULL)
			printf("# not JSON: %.*s\n", (int)evbuffer_get_length(out),
			    (const char *)evbuffer_pullup(out, -1));
	} else if (evbuffer_get_length(out) != 0)
		printf("# a failed response appended bytes\n");
	evbuffer_free(body);
	evbuffer_free(out);
	return msg;
}

/* A chat completion with id, message (JSON text), finish and usage. */
#define COMPLETION(id, message, finish) "{\"id\":" id ",\"object\":" \
	"\"chat.completion\",\"created\":1,\"model\":\"served\",\"choices\":" \
	"[{\"index\":0,\"message\":" message ",\"finish_reason\":" finish "}]," \
	"\"usage\":{\"prompt_tokens\":120,\"completion_tokens\":30," \
	"\"total_tokens\":150,\"prompt_tokens_details\":{\"cached_tokens\":100}}}"

SY_TEST(response_with_text_and_usage)
{
	char *err;
	json_t *m = response(COMPLETION("\"chatcmpl-abc123\"", "{\"role\":"
	    "\"assistant\",\"content\":\"Hello \\\"you\\\"\"}", "\"stop\""),
	    "claude-x", &err);

	SY_CHECK(m != NULL);
	SY_CHECK_STR(sy_test_str_at(m, "id"), "msg_abc123");
	SY_CHECK_STR(sy_test_str_at(m, "type"), "message");
	SY_CHECK_STR(sy_test_str_at(m, "role"), "assistant");
	SY_CHECK_STR(sy_test_str_at(m, "model"), "claude-x");
	SY_CHECK_INT(json_array_size(sy_test_at(m, "content")), 1);
	SY_CHECK_STR(sy_test_str_at(m, "content.0.type"), "text");
	SY_CHECK_STR(sy_test_str_at(m, "content.0.text"), "Hello \"you\"");
	SY_CHECK_STR(sy_test_str_at(m, "stop_reason"), "end_turn");
	SY_CHECK(json_is_null(sy_test_at(m, "stop_sequence")));
	SY_CHECK_INT(int_at(m, "usage.input_tokens"), 20);
	SY_CHECK_INT(int_at(m, "usage.output_tokens"), 30);
	SY_CHECK_INT(int_at(m, "usage.cache_read_input_tokens"), 100);
	SY_CHECK_INT(int_at(m, "usage.cache_creation_input_tokens"), 0);
	json_decref(m);
}

SY_TEST(response_with_tool_calls)
{
	char *err;
	json_t *m = response(COMPLETION("\"msg_01XYZ\"", "{\"role\":"
	    "\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_1\","
	    "\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
	    "\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}},{\"id\":"
	    "\"call_2\",\"type\":\"function\",\"function\":{\"name\":\"now\","
	    "\"arguments\":\"\"}}]}", "\"tool_calls\""), "m", &err);

	SY_CHECK(m != NULL);
	SY_CHECK_STR(sy_test_str_at(m, "id"), "msg_01XYZ");
	SY_CHECK_INT(json_array_size(sy_test_at(m, "content")), 2);
	SY_CHECK_STR(sy_test_str_at(m, "content.0.type"), "tool_use");
	SY_CHECK_STR(sy_test_str_at(m, "content.0.id"), "call_1");
	SY_CHECK_STR(sy_test_str_at(m, "content.0.name"), "get_weather");
	SY_CHECK_STR(sy_test_str_at(m, "content.0.input.city"), "Paris");
	SY_CHECK_STR(sy_test_str_at(m, "content.1.name"), "now");
	SY_CHECK(json_is_object(sy_test_at(m, "content.1.input")));
	SY_CHECK_INT(json_object_size(sy_test_at(m, "content.1.input")), 0);
	SY_CHECK_STR(sy_test_str_at(m, "stop_reason"), "tool_use");
	json_decref(m);

	/* Text first, then the calls; a "stop" that called tools is tool_use. */
	m = response(COMPLETION("\"x\"", "{\"role\":\"assistant\",\"content\":"
	    "\"Let me see.\",\"tool_calls\":[{\"type\":\"function\",\"function\":"
	    "{\"name\":\"f\",\"arguments\":\"{}\"}}]}", "\"stop\""), "m", &err);
	SY_CHECK_INT(json_array_size(sy_test_at(m, "content")), 2);
	SY_CHECK_STR(sy_test_str_at(m, "content.0.text"), "Let me see.");
	SY_CHECK(strncmp(sy_test_str_at(m, "content.1.id"), "toolu_", 6) == 0);
	SY_CHECK_INT(strlen(sy_test_str_at(m, "content.1.id")), 30);
	SY_CHECK_STR(sy_test_str_at(m, "stop_reason"), "tool_use");
	json_decref(m);
}

SY_TEST(response_finish_reasons_and_ids)
{
	static const char *const map[][2] = {
		{ "\"length\"", "max_tokens" },
		{ "\"content_filter\"", "refusal" },
		{ "\"stop\"", "end_turn" },
		{ "null", "end_turn" },
		{ "\"tool_calls\"", "tool_use" }
	};
	char text[1024], *err;
	size_t i;
	json_t *m;

	for (i = 0; i < sizeof map / sizeof map[0]; i++) {
		snprintf(text, sizeof text, "{\"choices\":[{\"message\":{\"content\":"
		    "\"\"},\"finish_reason\":%s}]}", map[i][0]);
		m = response(text, "m", &err);
		SY_CHECK_STR(sy_test_str_at(m, "stop_reason"), map[i][1]);
		/* Empty text is left out; no usage is zeros; no id a random one. */
		SY_CHECK_INT(json_array_size(sy_test_at(m, "content")), 0);
		SY_CHECK_INT(int_at(m, "usage.input_tokens"), 0);
		SY_CHECK_INT(int_at(m, "usage.output_tokens"), 0);
		SY_CHECK(strncmp(sy_test_str_at(m, "id"), "msg_", 4) == 0);
		SY_CHECK_INT(strlen(sy_test_str_at(m, "id")), 28);
		json_decref(m);
	}
	m = response(COMPLETION("\"cmpl-a-b\"", "{\"content\":\"x\"}", "\"stop\""),
	    "m", &err);
	SY_CHECK_STR(sy_test_str_at(m, "id"), "msg_a-b");
	json_decref(m);
	m = response(COMPLETION("\"weird id\"", "{\"content\":\"x\"}", "\"stop\""),
	    "m", &err);
	SY_CHECK_INT(strlen(sy_test_str_at(m, "id")), 28);
	json_decref(m);
}

SY_TEST(response_errors)
{
	char *err;
	json_t *m;

	m = response("{\"object\":\"list\",\"data\":[]}", "m", &err);
	SY_CHECK(m == NULL);
	SY_CHECK_STR(err, "backend answer is not a chat completion");
	free(err);
	m = response("not json", "m", &err);
	SY_CHECK(m == NULL && err != NULL);
	free(err);
	m = response(COMPLETION("\"x\"", "{\"tool_calls\":[{\"id\":\"c\","
	    "\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":\"}}]}",
	    "\"tool_calls\""), "m", &err);
	SY_CHECK(m == NULL);
	SY_CHECK(err != NULL && strstr(err, "not a JSON object") != NULL);
	free(err);
	m = response(COMPLETION("\"x\"", "{\"tool_calls\":[{\"id\":\"c\","
	    "\"function\":{\"arguments\":\"{}\"}}]}", "\"tool_calls\""), "m",
	    &err);
	SY_CHECK(m == NULL);
	SY_CHECK(err != NULL && strstr(err, "has no name") != NULL);
	free(err);
}

/* ==== Streams ==== */

/* An event the stream translation produced. */
struct out_event {
	char name[64];
	json_t *data;		/* owned */
};

/* The events parsed back from the translation's output. */
struct events {
	struct out_event ev[64];
	int n;
	int bad;		/* an event whose data is not a JSON object of its name's type */
};

static int
collect(const struct sy_sse_event *ev, void *arg)
{
	struct events *e = arg;
	json_t *data;

	if (e->n >= 64)
		return 1;
	data = json_loadb(ev->data != NULL ? ev->data : "", ev->data_len, 0,
	    NULL);
	if (!json_is_object(data) || json_string_value(json_object_get(data,
	    "type")) == NULL || strcmp(json_string_value(json_object_get(data,
	    "type")), ev->event) != 0) {
		printf("# bad event %s: %s\n", ev->event, ev->data);
		e->bad++;
	}
	snprintf(e->ev[e->n].name, sizeof e->ev[e->n].name, "%s", ev->event);
	e->ev[e->n++].data = data;
	return 0;
}

/*
 * Feeds the canonical events (data texts; "" is a ping comment) to a new
 * stream one by one and parses what came out into e.
 */
static void
run_stream(const char *const *events, size_t n, struct events *e)
{
	struct evbuffer *out = evbuffer_new();
	struct sy_sse_event ev;
	struct sy_sse p;
	void *st = api->stream_open("claude-x", NULL);
	size_t i;

	memset(e, 0, sizeof *e);
	for (i = 0; i < n; i++) {
		memset(&ev, 0, sizeof ev);
		ev.event = "";
		ev.id = "";
		if (events[i][0] != '\0') {
			ev.data = events[i];
			ev.data_len = strlen(events[i]);
		}
		api->stream_event(st, &ev, out);
	}
	api->stream_close(st);
	sy_sse_init(&p, 0);
	SY_CHECK_INT(sy_sse_feed(&p, (const char *)evbuffer_pullup(out, -1),
	    evbuffer_get_length(out), collect, e), 0);
	SY_CHECK_INT(sy_sse_pending(&p), 0);
	sy_sse_free(&p);
	evbuffer_free(out);
	SY_CHECK_INT(e->bad, 0);
}

static void
events_free(struct events *e)
{
	int i;

	for (i = 0; i < e->n; i++)
		json_decref(e->ev[i].data);
}

/* Whether e's event names are, in order, those of the NULL-ended list. */
static int
names_are(const struct events *e, const char *const *names)
{
	int i;

	for (i = 0; names[i] != NULL; i++)
		if (i >= e->n || strcmp(e->ev[i].name, names[i]) != 0)
			break;
	if (names[i] == NULL && i == e->n)
		return 1;
	printf("# events:");
	for (i = 0; i < e->n; i++)
		printf(" %s", e->ev[i].name);
	printf("\n");
	return 0;
}

/* A chunk of the canonical stream with delta (JSON text) and finish. */
#define CHUNK(delta, finish) "{\"id\":\"chatcmpl-7aX\",\"object\":" \
	"\"chat.completion.chunk\",\"created\":1,\"model\":\"served\"," \
	"\"choices\":[{\"index\":0,\"delta\":" delta ",\"logprobs\":null," \
	"\"finish_reason\":" finish "}]}"
#define USAGE(p, c, k) "{\"id\":\"chatcmpl-7aX\",\"object\":" \
	"\"chat.completion.chunk\",\"created\":1,\"model\":\"served\"," \
	"\"choices\":[],\"usage\":{\"prompt_tokens\":" #p ",\"completion_tokens\":" \
	#c ",\"total_tokens\":1,\"prompt_tokens_details\":{\"cached_tokens\":" \
	#k "}}}"

SY_TEST(stream_of_text)
{
	static const char *const in[] = {
		CHUNK("{\"role\":\"assistant\",\"content\":\"\"}", "null"),
		"",
		CHUNK("{\"content\":\"Hel\"}", "null"),
		CHUNK("{\"content\":\"lo \\\"w\\\"\\n\"}", "null"),
		CHUNK("{}", "\"stop\""),
		USAGE(12, 3, 2),
		"[DONE]",
		CHUNK("{\"content\":\"late\"}", "null"),
		""
	};
	static const char *const names[] = {
		"message_start", "ping", "content_block_start",
		"content_block_delta", "content_block_delta",
		"content_block_stop", "message_delta", "message_stop", NULL
	};
	struct events e;
	json_t *d;

	run_stream(in, sizeof in / sizeof in[0], &e);
	SY_CHECK(names_are(&e, names));
	if (e.n == 8) {
		d = e.ev[0].data;
		SY_CHECK_STR(sy_test_str_at(d, "message.id"), "msg_7aX");
		SY_CHECK_STR(sy_test_str_at(d, "message.type"), "message");
		SY_CHECK_STR(sy_test_str_at(d, "message.role"), "assistant");
		SY_CHECK_STR(sy_test_str_at(d, "message.model"), "claude-x");
		SY_CHECK_INT(json_array_size(sy_test_at(d, "message.content")), 0);
		SY_CHECK(json_is_null(sy_test_at(d, "message.stop_reason")));
		SY_CHECK_INT(int_at(d, "message.usage.input_tokens"), 0);
		SY_CHECK_INT(int_at(d, "message.usage.output_tokens"), 0);
		d = e.ev[2].data;
		SY_CHECK_INT(int_at(d, "index"), 0);
		SY_CHECK_STR(sy_test_str_at(d, "content_block.type"), "text");
		SY_CHECK_STR(sy_test_str_at(d, "content_block.text"), "");
		SY_CHECK_INT(int_at(e.ev[3].data, "index"), 0);
		SY_CHECK_STR(sy_test_str_at(e.ev[3].data, "delta.type"), "text_delta");
		SY_CHECK_STR(sy_test_str_at(e.ev[3].data, "delta.text"), "Hel");
		SY_CHECK_STR(sy_test_str_at(e.ev[4].data, "delta.text"), "lo \"w\"\n");
		SY_CHECK_INT(int_at(e.ev[5].data, "index"), 0);
		d = e.ev[6].data;
		SY_CHECK_STR(sy_test_str_at(d, "delta.stop_reason"), "end_turn");
		SY_CHECK(json_is_null(sy_test_at(d, "delta.stop_sequence")));
		SY_CHECK_INT(int_at(d, "usage.output_tokens"), 3);
		SY_CHECK_INT(int_at(d, "usage.input_tokens"), 10);
		SY_CHECK_INT(int_at(d, "usage.cache_read_input_tokens"), 2);
	}
	events_free(&e);
}

SY_TEST(stream_of_text_then_tool_calls)
{
	static const char *const in[] = {
		CHUNK("{\"role\":\"assistant\",\"content\":\"\"}", "null"),
		CHUNK("{\"content\":\"Let me check.\"}", "null"),
		CHUNK("{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":"
		    "\"function\",\"function\":{\"name\":\"get_weather\","
		    "\"arguments\":\"\"}}]}", "null"),
		CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":"
		    "\"{\\\"city\\\":\"}}]}", "null"),
		"",
		CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":"
		    "\"\\\"Paris\\\"}\"}}]}", "null"),
		CHUNK("{\"tool_calls\":[{\"index\":1,\"id\":\"call_2\",\"type\":"
		    "\"function\",\"function\":{\"name\":\"now\",\"arguments\":"
		    "\"{}\"}}]}", "null"),
		CHUNK("{}", "\"tool_calls\""),
		USAGE(50, 20, 0),
		"[DONE]"
	};
	static const char *const names[] = {
		"message_start",
		"content_block_start", "content_block_delta",
		"content_block_stop",
		"content_block_start", "content_block_delta", "ping",
		"content_block_delta", "content_block_stop",
		"content_block_start", "content_block_delta",
		"content_block_stop",
		"message_delta", "message_stop", NULL
	};
	struct events e;
	json_t *d;

	run_stream(in, sizeof in / sizeof in[0], &e);
	SY_CHECK(names_are(&e, names));
	if (e.n == 14) {
		SY_CHECK_INT(int_at(e.ev[1].data, "index"), 0);
		SY_CHECK_STR(sy_test_str_at(e.ev[2].data, "delta.text"), "Let me check.");
		SY_CHECK_INT(int_at(e.ev[3].data, "index"), 0);
		d = e.ev[4].data;
		SY_CHECK_INT(int_at(d, "index"), 1);
		SY_CHECK_STR(sy_test_str_at(d, "content_block.type"), "tool_use");
		SY_CHECK_STR(sy_test_str_at(d, "content_block.id"), "call_1");
		SY_CHECK_STR(sy_test_str_at(d, "content_block.name"), "get_weather");
		SY_CHECK(json_is_object(sy_test_at(d, "content_block.input")));
		d = e.ev[5].data;
		SY_CHECK_INT(int_at(d, "index"), 1);
		SY_CHECK_STR(sy_test_str_at(d, "delta.type"), "input_json_delta");
		SY_CHECK_STR(sy_test_str_at(d, "delta.partial_json"), "{\"city\":");
		SY_CHECK_STR(sy_test_str_at(e.ev[7].data, "delta.partial_json"),
		    "\"Paris\"}");
		SY_CHECK_INT(int_at(e.ev[8].data, "index"), 1);
		SY_CHECK_INT(int_at(e.ev[9].data, "index"), 2);
		SY_CHECK_STR(sy_test_str_at(e.ev[9].data, "content_block.id"), "call_2");
		SY_CHECK_STR(sy_test_str_at(e.ev[9].data, "content_block.name"), "now");
		SY_CHECK_STR(sy_test_str_at(e.ev[10].data, "delta.partial_json"), "{}");
		SY_CHECK_INT(int_at(e.ev[11].data, "index"), 2);
		d = e.ev[12].data;
		SY_CHECK_STR(sy_test_str_at(d, "delta.stop_reason"), "tool_use");
		SY_CHECK_INT(int_at(d, "usage.input_tokens"), 50);
		SY_CHECK_INT(int_at(d, "usage.output_tokens"), 20);
		SY_CHECK_INT(int_at(d, "usage.cache_read_input_tokens"), 0);
	}
	events_free(&e);
}

SY_TEST(stream_tool_calls_without_index_and_several_in_one_delta)
{
	/* Calls told whole, two in one delta, no index: told apart by id. */
	static const char *const in[] = {
		CHUNK("{\"tool_calls\":[{\"id\":\"a\",\"function\":{\"name\":\"f\","
		    "\"arguments\":\"{\\\"x\\\":1}\"}},{\"id\":\"b\",\"function\":"
		    "{\"name\":\"g\",\"arguments\":\"{}\"}}]}", "\"stop\""),
		"[DONE]"
	};
	static const char *const names[] = {
		"message_start", "content_block_start", "content_block_delta",
		"content_block_stop", "content_block_start",
		"content_block_delta", "content_block_stop", "message_delta",
		"message_stop", NULL
	};
	struct events e;

	run_stream(in, sizeof in / sizeof in[0], &e);
	SY_CHECK(names_are(&e, names));
	if (e.n == 9) {
		SY_CHECK_STR(sy_test_str_at(e.ev[1].data, "content_block.id"), "a");
		SY_CHECK_INT(int_at(e.ev[1].data, "index"), 0);
		SY_CHECK_STR(sy_test_str_at(e.ev[2].data, "delta.partial_json"),
		    "{\"x\":1}");
		SY_CHECK_STR(sy_test_str_at(e.ev[4].data, "content_block.id"), "b");
		SY_CHECK_INT(int_at(e.ev[4].data, "index"), 1);
		/* "stop" after tool calls is tool_use; usage unknown is 0. */
		SY_CHECK_STR(sy_test_str_at(e.ev[7].data, "delta.stop_reason"),
		    "tool_use");
		SY_CHECK_INT(int_at(e.ev[7].data, "usage.output_tokens"), 0);
	}
	events_free(&e);
}

SY_TEST(stream_ending_in_an_error)
{
	static const char *const in[] = {
		CHUNK("{\"role\":\"assistant\",\"content\":\"\"}", "null"),
		CHUNK("{\"content\":\"Par\"}", "null"),
		"{\"error\":{\"message\":\"backend timed out \\\"x\\\"\",\"type\":"
		    "\"server_error\",\"code\":\"timeout\"}}",
		"[DONE]",
		""
	};
	static const char *const names[] = {
		"message_start", "content_block_start", "content_block_delta",
		"error", NULL
	};
	struct events e;

	run_stream(in, sizeof in / sizeof in[0], &e);
	SY_CHECK(names_are(&e, names));
	if (e.n == 4) {
		SY_CHECK_STR(sy_test_str_at(e.ev[3].data, "error.type"), "api_error");
		SY_CHECK_STR(sy_test_str_at(e.ev[3].data, "error.message"),
		    "backend timed out \"x\"");
	}
	events_free(&e);
}

SY_TEST(stream_error_types)
{
	static const char *const cases[][2] = {
		{ "{\"error\":{\"message\":\"m\",\"type\":\"server_error\","
		    "\"code\":\"overloaded_error\"}}", "overloaded_error" },
		{ "{\"error\":{\"message\":\"m\",\"type\":\"rate_limit_error\"}}",
		    "rate_limit_error" },
		{ "{\"error\":{\"message\":\"m\",\"type\":\"x\",\"code\":"
		    "\"rate_limit_exceeded\"}}", "rate_limit_error" },
		{ "{\"error\":{\"message\":\"m\",\"type\":"
		    "\"invalid_request_error\"}}", "invalid_request_error" },
		{ "{\"error\":{}}", "api_error" },
		{ "not json", "api_error" }
	};
	const char *in[1];
	struct events e;
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		in[0] = cases[i][0];
		run_stream(in, 1, &e);
		SY_CHECK_INT(e.n, 1);
		SY_CHECK_STR(e.ev[0].name, "error");
		SY_CHECK_STR(sy_test_str_at(e.ev[0].data, "error.type"), cases[i][1]);
		SY_CHECK(json_is_string(sy_test_at(e.ev[0].data, "error.message")));
		events_free(&e);
	}
}

SY_TEST(stream_with_only_done_is_a_whole_empty_message)
{
	static const char *const in[] = { "", "[DONE]" };
	static const char *const names[] = {
		"ping", "message_start", "message_delta", "message_stop", NULL
	};
	struct events e;

	run_stream(in, 2, &e);
	SY_CHECK(names_are(&e, names));
	if (e.n == 4) {
		SY_CHECK(strncmp(sy_test_str_at(e.ev[1].data, "message.id"), "msg_",
		    4) == 0);
		SY_CHECK_STR(sy_test_str_at(e.ev[2].data, "delta.stop_reason"),
		    "end_turn");
	}
	events_free(&e);
}

SY_TEST(stream_length_and_text_after_tools)
{
	static const char *const in[] = {
		CHUNK("{\"tool_calls\":[{\"index\":0,\"id\":\"a\",\"function\":"
		    "{\"name\":\"f\",\"arguments\":\"{\"}}]}", "null"),
		/* A piece of a call whose block is closed cannot be sent. */
		CHUNK("{\"content\":\"and\"}", "null"),
		CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":"
		    "\"}\"}}]}", "\"length\""),
		USAGE(5, 9, 0),
		"[DONE]"
	};
	static const char *const names[] = {
		"message_start", "content_block_start", "content_block_delta",
		"content_block_stop", "content_block_start",
		"content_block_delta", "content_block_stop", "message_delta",
		"message_stop", NULL
	};
	struct events e;

	run_stream(in, sizeof in / sizeof in[0], &e);
	SY_CHECK(names_are(&e, names));
	if (e.n == 9) {
		SY_CHECK_STR(sy_test_str_at(e.ev[4].data, "content_block.type"), "text");
		SY_CHECK_INT(int_at(e.ev[4].data, "index"), 1);
		SY_CHECK_STR(sy_test_str_at(e.ev[7].data, "delta.stop_reason"),
		    "max_tokens");
		SY_CHECK_INT(int_at(e.ev[7].data, "usage.output_tokens"), 9);
	}
	events_free(&e);
}

/* ==== Errors ==== */

/* The error body for these arguments, parsed. */
static json_t *
error_body(int status, const char *type, const char *code, const char *msg)
{
	struct evbuffer *out = evbuffer_new();
	json_t *v;

	api->error(out, status, type, code, msg);
	v = json_loadb((const char *)evbuffer_pullup(out, -1),
	    evbuffer_get_length(out), 0, NULL);
	evbuffer_free(out);
	return v;
}

SY_TEST(error_shapes)
{
	static const struct { int status; const char *type, *code, *want; }
	    cases[] = {
		{ 400, "invalid_request_error", NULL, "invalid_request_error" },
		{ 401, "invalid_request_error", "invalid_api_key",
		    "authentication_error" },
		{ 403, NULL, NULL, "permission_error" },
		{ 404, "invalid_request_error", "model_not_found",
		    "not_found_error" },
		{ 413, "invalid_request_error", NULL, "request_too_large" },
		{ 429, "rate_limit_error", NULL, "rate_limit_error" },
		{ 500, "server_error", NULL, "api_error" },
		{ 502, "server_error", "bad_gateway", "api_error" },
		{ 504, "server_error", "timeout", "api_error" },
		{ 503, "server_error", "no_capacity", "overloaded_error" },
		{ 529, "server_error", NULL, "overloaded_error" },
		/* The anthropic backend keeps Anthropic's type as the code. */
		{ 529, "server_error", "overloaded_error", "overloaded_error" },
		{ 500, "server_error", "timeout_error", "timeout_error" },
		{ 405, "invalid_request_error", "method_not_allowed",
		    "invalid_request_error" },
		{ 422, "permission_error", NULL, "permission_error" },
		{ 418, "weird", NULL, "invalid_request_error" },
		{ 507, NULL, NULL, "api_error" }
	};
	size_t i;
	json_t *v;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		v = error_body(cases[i].status, cases[i].type, cases[i].code,
		    "bad \"thing\"\n");
		SY_CHECK_INT(json_object_size(v), 2);
		SY_CHECK_STR(sy_test_str_at(v, "type"), "error");
		SY_CHECK_INT(json_object_size(sy_test_at(v, "error")), 2);
		SY_CHECK_STR(sy_test_str_at(v, "error.type"), cases[i].want);
		SY_CHECK_STR(sy_test_str_at(v, "error.message"), "bad \"thing\"\n");
		if (sy_test_cur_failed)
			printf("# case %zu\n", i);
		json_decref(v);
	}
	v = error_body(400, NULL, NULL, NULL);
	SY_CHECK_STR(sy_test_str_at(v, "error.message"), "");
	json_decref(v);
}

SY_TEST(vtable_is_complete)
{
	SY_CHECK_STR(api->name, "anthropic");
	SY_CHECK(api->request != NULL && api->response != NULL &&
	    api->stream_open != NULL && api->stream_event != NULL &&
	    api->stream_close != NULL && api->error != NULL);
}

int
main(void)
{
	SY_RUN(request_maps_every_field);
	SY_RUN(request_without_options_has_only_model_max_tokens_and_messages);
	SY_RUN(system_blocks_are_joined_with_a_blank_line);
	SY_RUN(text_blocks_become_one_string_joined_with_newlines);
	SY_RUN(image_blocks_become_image_url_parts_in_order);
	SY_RUN(tool_use_blocks_become_tool_calls);
	SY_RUN(tool_results_become_tool_messages_before_the_user_text);
	SY_RUN(tool_choice_of_each_type);
	SY_RUN(thinking_disabled_is_accepted);
	SY_RUN(request_errors_name_the_field);
	SY_RUN(response_with_text_and_usage);
	SY_RUN(response_with_tool_calls);
	SY_RUN(response_finish_reasons_and_ids);
	SY_RUN(response_errors);
	SY_RUN(stream_of_text);
	SY_RUN(stream_of_text_then_tool_calls);
	SY_RUN(stream_tool_calls_without_index_and_several_in_one_delta);
	SY_RUN(stream_ending_in_an_error);
	SY_RUN(stream_error_types);
	SY_RUN(stream_with_only_done_is_a_whole_empty_message);
	SY_RUN(stream_length_and_text_after_tools);
	SY_RUN(error_shapes);
	SY_RUN(vtable_is_complete);
	return sy_test_done();
}
