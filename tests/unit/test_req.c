/* Unit tests of request parsing into the canonical form. */
#include <string.h>

#include <event2/buffer.h>

#include "req.h"
#include "sy_test.h"

/* Parses text for api; returns the status (0 when accepted), *err_out the message. */
static int
parse(enum sy_api api, const char *text, struct sy_req *req, char **err_out)
{
	struct evbuffer *b = evbuffer_new();
	int status = -1;

	memset(req, 0, sizeof *req);
	req->api = api;
	evbuffer_add(b, text, strlen(text));
	*err_out = NULL;
	sy_req_parse(req, b, 8, &status, err_out);
	evbuffer_free(b);
	return status;
}

/* Checks that text is refused with 400 and a message containing needle. */
static void
refused(enum sy_api api, const char *text, const char *needle)
{
	struct sy_req req;
	char *err;

	SY_CHECK_INT(parse(api, text, &req, &err), 400);
	if (err == NULL || strstr(err, needle) == NULL) {
		printf("# %s: message \"%s\" lacks \"%s\"\n", text, err ? err : "", needle);
		SY_CHECK(0);
	}
	free(err);
	if (req.body != NULL)
		json_decref(req.body);
}

SY_TEST(chat_request_is_read_with_its_stream_flags)
{
	struct sy_req req;
	char *err;

	SY_CHECK_INT(parse(SY_API_CHAT, "{\"model\":\"m\",\"messages\":[],\"stream\":true,"
	    "\"stream_options\":{\"include_usage\":true}}", &req, &err), 0);
	SY_CHECK_STR(req.client_model, "m");
	SY_CHECK_INT(req.stream, 1);
	SY_CHECK_INT(req.client_wants_usage, 1);
	json_decref(req.body);
}

SY_TEST(each_api_requires_its_member)
{
	refused(SY_API_CHAT, "{\"model\":\"m\"}", "'messages' is required");
	refused(SY_API_COMPLETIONS, "{\"model\":\"m\"}", "'prompt' is required");
	refused(SY_API_EMBEDDINGS, "{\"model\":\"m\"}", "'input' is required");
	refused(SY_API_CHAT, "{\"model\":\"m\",\"messages\":\"hi\"}", "must be an array");
}

SY_TEST(model_must_be_a_non_empty_string)
{
	refused(SY_API_CHAT, "{\"messages\":[]}", "'model' is required");
	refused(SY_API_CHAT, "{\"model\":3,\"messages\":[]}", "non-empty string");
	refused(SY_API_CHAT, "{\"model\":\"\",\"messages\":[]}", "non-empty string");
}

SY_TEST(bad_json_names_line_and_column)
{
	refused(SY_API_CHAT, "{\"model\":\"m\",\n \"messages\": [}", "line 2");
	refused(SY_API_CHAT, "[1,2]", "must be a JSON object");
	refused(SY_API_CHAT, "", "empty");
}

SY_TEST(stream_fields_are_type_checked)
{
	refused(SY_API_CHAT, "{\"model\":\"m\",\"messages\":[],\"stream\":\"yes\"}", "boolean");
	refused(SY_API_CHAT, "{\"model\":\"m\",\"messages\":[],\"stream_options\":1}", "object");
	refused(SY_API_EMBEDDINGS, "{\"model\":\"m\",\"input\":\"x\",\"stream\":true}", "cannot be streamed");
}

SY_TEST(depth_limit_counts_nesting_outside_strings)
{
	SY_CHECK_INT(sy_json_too_deep("[[[]]]", 6, 3), 0);
	SY_CHECK_INT(sy_json_too_deep("[[[[]]]]", 8, 3), 1);
	SY_CHECK_INT(sy_json_too_deep("[\"[[[[\\\"[[[\"]", 13, 2), 0);
	refused(SY_API_CHAT, "{\"model\":\"m\",\"messages\":[[[[[[[[[]]]]]]]]]}", "deeper than 8");
}

int
main(void)
{
	SY_RUN(chat_request_is_read_with_its_stream_flags);
	SY_RUN(each_api_requires_its_member);
	SY_RUN(model_must_be_a_non_empty_string);
	SY_RUN(bad_json_names_line_and_column);
	SY_RUN(stream_fields_are_type_checked);
	SY_RUN(depth_limit_counts_nesting_outside_strings);
	return sy_test_done();
}
