/* Unit tests of the OpenAI adapter: usage extraction, encoding and stream events, on recorded llama.cpp payloads. */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "backend.h"
#include "confrow.h"
#include "config.h"
#include "req.h"
#include "sse.h"
#include "sy_test.h"
#include "sy_test_req.h"
#include "util.h"

static const struct sy_backend_kind *openai;


/* An endpoint without credentials, and one with an API key. */
static struct sy_endpoint plain_ep = { .name = "e" };
static struct sy_endpoint keyed_ep = { .name = "k", .api_key = "sk-123" };

/* The upstream request (path, headers) of the last encode. */
static struct sy_upstream_req up;

/* The body an encode produced, parsed; *path is its API path. */
static json_t *
encoded(struct sy_req *req, const char **path)
{
	struct evbuffer *out = evbuffer_new();
	char *err = NULL;
	json_t *obj;

	memset(&up, 0, sizeof up);
	SY_CHECK_INT(openai->encode(req, &plain_ep, out, &up, &err), 0);
	*path = up.path;
	obj = json_loadb((const char *)evbuffer_pullup(out, -1),
	    evbuffer_get_length(out), 0, NULL);
	evbuffer_free(out);
	return obj;
}

SY_TEST(usage_is_read_from_a_recorded_chat_answer)
{
	char *text = sy_test_fixture("llama-server/chat.json", NULL);
	json_t *obj = json_loads(text, 0, NULL);
	struct sy_usage u = { -1, -1, -1 };

	SY_CHECK_INT(sy_openai_usage(obj, &u), 1);
	SY_CHECK_INT(u.prompt_tokens, 52);
	SY_CHECK_INT(u.completion_tokens, 8);
	SY_CHECK_INT(u.cached_tokens, 0);
	json_decref(obj);
	free(text);
}

SY_TEST(usage_absent_leaves_counts_unknown)
{
	json_t *obj = json_loads("{\"choices\":[]}", 0, NULL);
	struct sy_usage u = { -1, -1, -1 };

	SY_CHECK_INT(sy_openai_usage(obj, &u), 0);
	SY_CHECK_INT(u.prompt_tokens, -1);
	SY_CHECK_INT(u.cached_tokens, -1);
	json_decref(obj);
}

SY_TEST(unchanged_request_is_forwarded_byte_for_byte)
{
	const char *text = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
	    "\"model\":\"m\",\"z\":1, \"a\" : [ 1 ]}";
	struct sy_req *req = sy_test_req(SY_API_CHAT, text, NULL);
	struct evbuffer *out = evbuffer_new();
	char *err = NULL;

	memset(&up, 0, sizeof up);
	SY_CHECK_INT(openai->encode(req, &plain_ep, out, &up, &err), 0);
	SY_CHECK_STR(up.path, "/chat/completions");
	SY_CHECK_STR(up.headers, "");
	SY_CHECK_INT(evbuffer_get_length(out), strlen(text));
	SY_CHECK(memcmp(evbuffer_pullup(out, -1), text, strlen(text)) == 0);
	evbuffer_free(out);
}

SY_TEST(stream_usage_and_renames_are_edited_into_the_clients_bytes)
{
	const char *text = " {\"model\" : \"gpt-4o\", \"messages\": [ {\"role\":\"user\","
	    "\"content\":\"\\u00e9\"} ],\"stream\":true , \"z\": 1.50}";
	struct sy_req *req = sy_test_req(SY_API_CHAT, text, "llama-3-8b");
	struct evbuffer *out = evbuffer_new();
	char *err = NULL, *got;
	size_t len;

	memset(&up, 0, sizeof up);
	SY_CHECK_INT(openai->encode(req, &plain_ep, out, &up, &err), 0);
	len = evbuffer_get_length(out);
	got = strndup((const char *)evbuffer_pullup(out, -1), len);
	SY_CHECK_STR(got, " {\"stream_options\":{\"include_usage\":true},\"model\" : "
	    "\"llama-3-8b\", \"messages\": [ {\"role\":\"user\",\"content\":"
	    "\"\\u00e9\"} ],\"stream\":true , \"z\": 1.50}");
	free(got);
	evbuffer_free(out);
}

SY_TEST(api_key_goes_in_a_bearer_header)
{
	struct sy_req *req = sy_test_req(SY_API_EMBEDDINGS,
	    "{\"model\":\"m\",\"input\":\"x\"}", NULL);
	struct evbuffer *out = evbuffer_new();
	char *err = NULL;

	memset(&up, 0, sizeof up);
	SY_CHECK_INT(openai->encode(req, &keyed_ep, out, &up, &err), 0);
	SY_CHECK_STR(up.path, "/embeddings");
	SY_CHECK_STR(up.headers, "Authorization: Bearer sk-123\r\n");
	evbuffer_free(out);
}

SY_TEST(azure_puts_the_api_version_in_the_query_and_the_key_in_api_key)
{
	const struct sy_backend_kind *azure = sy_backend_kind_find("azure");
	struct sy_endpoint ep = { .name = "az", .api_key = "az-key" };
	struct sy_req *req = sy_test_req(SY_API_CHAT,
	    "{\"model\":\"m\",\"messages\":[]}", NULL);
	struct evbuffer *out = evbuffer_new();
	char *err = NULL, creds[64], **version;

	SY_CHECK(azure != NULL);
	if (azure == NULL)
		return;
	ep.params = sy_xcalloc(1, azure->params->size);
	sy_conf_defaults(azure->params, ep.params);
	memset(&up, 0, sizeof up);
	SY_CHECK_INT(azure->encode(req, &ep, out, &up, &err), 0);
	SY_CHECK_STR(up.path, "/chat/completions?api-version=2024-10-21");
	SY_CHECK_STR(up.headers, "api-key: az-key\r\n");
	version = (char **)sy_conf_field(azure->params, ep.params,
	    "api_version");
	free(*version);
	*version = sy_xstrdup("2025-01-01");
	memset(&up, 0, sizeof up);
	SY_CHECK_INT(azure->encode(req, &ep, out, &up, &err), 0);
	SY_CHECK_STR(up.path, "/chat/completions?api-version=2025-01-01");
	SY_CHECK(sy_backend_credentials(azure, &ep, creds, sizeof creds) > 0);
	SY_CHECK_STR(creds, "api-key: az-key\r\n");
	SY_CHECK(sy_backend_credentials(openai, &ep, creds, sizeof creds) > 0);
	SY_CHECK_STR(creds, "Authorization: Bearer az-key\r\n");
	sy_conf_free(azure->params, ep.params);
	free(ep.params);
	evbuffer_free(out);
}

SY_TEST(alias_renames_the_model_and_keeps_every_other_field)
{
	struct sy_req *req = sy_test_req(SY_API_COMPLETIONS,
	    "{\"model\":\"gpt-4o\",\"prompt\":\"x\",\"seed\":7}", "llama-3-8b");
	const char *path;
	json_t *obj = encoded(req, &path);

	SY_CHECK_STR(path, "/completions");
	SY_CHECK_STR(json_string_value(json_object_get(obj, "model")), "llama-3-8b");
	SY_CHECK_INT(json_integer_value(json_object_get(obj, "seed")), 7);
	SY_CHECK_STR(json_string_value(json_object_get(obj, "prompt")), "x");
	json_decref(obj);
}

SY_TEST(stream_asks_for_usage_and_keeps_other_stream_options)
{
	struct sy_req *req = sy_test_req(SY_API_CHAT, "{\"model\":\"m\",\"messages\":[],"
	    "\"stream\":true,\"stream_options\":{\"continuous_usage_stats\":false}}", NULL);
	const char *path;
	json_t *obj = encoded(req, &path), *opts;

	opts = json_object_get(obj, "stream_options");
	SY_CHECK(json_is_true(json_object_get(opts, "include_usage")));
	SY_CHECK(json_is_false(json_object_get(opts, "continuous_usage_stats")));
	SY_CHECK_INT(req->client_wants_usage, 0);
	json_decref(obj);
}

/* Relays a recorded stream through the adapter, the client asking usage or not. */
static void
relay_fixture(const char *name, int wants_usage, struct sy_test_relay *r)
{
	size_t len;
	char *text = sy_test_fixture(name, &len);
	struct sy_sse sse;

	memset(r, 0, sizeof *r);
	r->kind = openai;
	r->req = sy_test_req(SY_API_CHAT, "{\"model\":\"tiny-llama\",\"messages\":[],"
	    "\"stream\":true}", NULL);
	r->req->client_wants_usage = wants_usage;
	r->out = evbuffer_new();
	r->usage.prompt_tokens = r->usage.completion_tokens =
	    r->usage.cached_tokens = -1;
	sy_sse_init(&sse, 0);
	sy_sse_feed(&sse, text, len, sy_test_relay_event, r);
	sy_sse_free(&sse);
	free(text);
}

SY_TEST(usage_chunk_added_for_accounting_is_dropped_but_counted)
{
	struct sy_test_relay r;

	relay_fixture("llama-server/chat_stream_usage.sse", 0, &r);
	SY_CHECK_INT(r.forwarded, 8);
	SY_CHECK_INT(r.dropped, 1);
	SY_CHECK_INT(r.done, 1);
	SY_CHECK_INT(r.usage.prompt_tokens, 31);
	SY_CHECK_INT(r.usage.completion_tokens, 6);
	SY_CHECK_INT(r.usage.cached_tokens, 8);
	SY_CHECK(evbuffer_search(r.out, "\"usage\"", 7, NULL).pos == -1);
	evbuffer_free(r.out);
}

SY_TEST(usage_chunk_the_client_asked_for_is_relayed_verbatim)
{
	size_t len;
	char *text = sy_test_fixture("llama-server/chat_stream_usage.sse", &len);
	struct sy_test_relay r;

	relay_fixture("llama-server/chat_stream_usage.sse", 1, &r);
	SY_CHECK_INT(r.dropped, 0);
	SY_CHECK_INT(evbuffer_get_length(r.out), len);
	SY_CHECK(memcmp(evbuffer_pullup(r.out, -1), text, len) == 0);
	evbuffer_free(r.out);
	free(text);
}

SY_TEST(completion_stream_final_chunk_with_choices_keeps_its_usage)
{
	struct sy_test_relay r;

	relay_fixture("llama-server/completion_stream.sse", 0, &r);
	SY_CHECK_INT(r.dropped, 0);
	SY_CHECK_INT(r.done, 1);
	SY_CHECK_INT(r.usage.completion_tokens, 4);
	SY_CHECK_INT(r.usage.cached_tokens, 4);
	evbuffer_free(r.out);
}

/*
 * The usage chunk and an error are found wherever their key stands in the
 * event (the scan looks at blocks of bytes: every offset around a block's
 * edges), and a chunk without them is relayed without being parsed.
 */
SY_TEST(usage_and_error_keys_are_found_at_every_offset)
{
	struct sy_req *req = sy_test_req(SY_API_CHAT, "{\"model\":\"m\","
	    "\"messages\":[],\"stream\":true}", NULL);
	struct evbuffer *out = evbuffer_new();
	struct sy_sse_event ev;
	struct sy_usage u;
	char data[256];
	int pad;

	memset(&ev, 0, sizeof ev);
	ev.data = ev.raw = data;
	for (pad = 0; pad < 40; pad++) {
		memset(&u, 0xff, sizeof u);
		snprintf(data, sizeof data, "{\"id\":\"%.*s\",\"choices\":[],"
		    "\"usage\":{\"prompt_tokens\":%d,\"completion_tokens\":2}}",
		    pad, "ueueueueueueueueueueueueueueueueueueueueue", pad);
		ev.data_len = ev.raw_len = strlen(data);
		SY_CHECK_INT(openai->stream_event(NULL, req, &ev, out, &u),
		    SY_STREAM_DROP);
		SY_CHECK_INT(u.prompt_tokens, pad);
		snprintf(data, sizeof data, "{\"id\":\"%.*s\",\"error\":{}}",
		    pad, "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee");
		ev.data_len = ev.raw_len = strlen(data);
		SY_CHECK_INT(openai->stream_event(NULL, req, &ev, out, &u),
		    SY_STREAM_ERROR);
		/* The words as values, not keys: relayed, no usage read. */
		snprintf(data, sizeof data, "{\"id\":\"%.*s\",\"user\":\"usage\","
		    "\"e\":\"error\"}", pad, "uuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuu");
		ev.data_len = ev.raw_len = strlen(data);
		memset(&u, 0xff, sizeof u);
		SY_CHECK_INT(openai->stream_event(NULL, req, &ev, out, &u),
		    SY_STREAM_FORWARD);
		SY_CHECK_INT(u.prompt_tokens, -1);
	}
	evbuffer_free(out);
}

SY_TEST(error_event_mid_stream_is_reported_and_relayed)
{
	struct sy_test_relay r;

	relay_fixture("llama-server/error_midstream.sse", 0, &r);
	SY_CHECK_INT(r.errors, 1);
	SY_CHECK_INT(r.done, 0);
	SY_CHECK(evbuffer_search(r.out, "peg-native", 10, NULL).pos >= 0);
	evbuffer_free(r.out);
}

SY_TEST(decode_wraps_a_non_json_error_in_openai_shape)
{
	struct sy_req *req = sy_test_req(SY_API_CHAT, "{\"model\":\"m\",\"messages\":[]}", NULL);
	struct evbuffer *body = evbuffer_new(), *out = evbuffer_new();
	struct sy_usage u = { -1, -1, -1 };
	char *err = NULL;
	json_t *obj, *e;

	evbuffer_add(body, "Service \"Unavailable\"\n", 22);
	SY_CHECK_INT(openai->decode(req, 503, body, out, &u, &err), 0);
	obj = json_loadb((const char *)evbuffer_pullup(out, -1),
	    evbuffer_get_length(out), 0, NULL);
	e = json_object_get(obj, "error");
	SY_CHECK_STR(json_string_value(json_object_get(e, "message")),
	    "backend returned HTTP 503: Service \"Unavailable\"\n");
	SY_CHECK_STR(json_string_value(json_object_get(e, "type")), "server_error");
	SY_CHECK_INT(json_integer_value(json_object_get(e, "code")), 503);
	json_decref(obj);
	evbuffer_free(body);
	evbuffer_free(out);
}

SY_TEST(decode_rejects_a_non_json_answer_and_accepts_an_error_body)
{
	struct sy_req *req = sy_test_req(SY_API_CHAT, "{\"model\":\"m\",\"messages\":[]}", NULL);
	struct evbuffer *body = evbuffer_new(), *out = evbuffer_new();
	struct sy_usage u = { -1, -1, -1 };
	char *err = NULL, *text;

	evbuffer_add(body, "<html>oops</html>", 17);
	SY_CHECK_INT(openai->decode(req, 200, body, out, &u, &err), -1);
	SY_CHECK(err != NULL);
	free(err);
	err = NULL;
	evbuffer_drain(body, evbuffer_get_length(body));
	text = sy_test_fixture("llama-server/error_missing_messages.txt", NULL);
	*strchr(text, '\n') = '\0';
	evbuffer_add(body, text, strlen(text));
	SY_CHECK_INT(openai->decode(req, 400, body, out, &u, &err), 0);
	SY_CHECK_INT(evbuffer_get_length(out), strlen(text));
	SY_CHECK_INT(u.prompt_tokens, -1);
	free(text);
	evbuffer_free(body);
	evbuffer_free(out);
}

/* Decodes body (a string) answered with status; returns decode's result. */
static int
decode_text(int status, const char *text, struct evbuffer *out,
    struct sy_usage *u, char **err)
{
	struct sy_req *req = sy_test_req(SY_API_CHAT, "{\"model\":\"m\",\"messages\":[]}", NULL);
	struct evbuffer *body = evbuffer_new();
	int rc;

	evbuffer_add(body, text, strlen(text));
	u->prompt_tokens = u->completion_tokens = u->cached_tokens = -1;
	rc = openai->decode(req, status, body, out, u, err);
	evbuffer_free(body);
	return rc;
}

SY_TEST(decode_reads_usage_and_forwards_the_answer_unchanged)
{
	char *text = sy_test_fixture("llama-server/chat.json", NULL);
	struct evbuffer *out = evbuffer_new();
	struct sy_usage u;
	char *err = NULL;

	SY_CHECK_INT(decode_text(200, text, out, &u, &err), 0);
	SY_CHECK_INT(u.prompt_tokens, 52);
	SY_CHECK_INT(u.completion_tokens, 8);
	SY_CHECK_INT(u.cached_tokens, 0);
	SY_CHECK_INT(evbuffer_get_length(out), strlen(text));
	SY_CHECK(memcmp(evbuffer_pullup(out, -1), text, strlen(text)) == 0);
	evbuffer_free(out);
	free(text);
}

SY_TEST(decode_refuses_a_success_that_is_not_one_json_object)
{
	static const char *const bodies[] = {
		"", "[1]", "\"x\"", "{\"a\":1} x", "{\"a\":1}{}", "{\"a\":01}",
		"{\"a\":\"\\u0000\"}", "{\"a\":\"\xff\"}", NULL
	};
	struct evbuffer *out = evbuffer_new();
	struct sy_usage u;
	char *err;
	size_t i;

	for (i = 0; bodies[i] != NULL; i++) {
		err = NULL;
		SY_CHECK_INT(decode_text(200, bodies[i], out, &u, &err), -1);
		SY_CHECK(err != NULL);
		free(err);
	}
	SY_CHECK_INT(evbuffer_get_length(out), 0);
	evbuffer_free(out);
}

SY_TEST(decode_refuses_a_truncated_answer)
{
	char *text = sy_test_fixture("llama-server/chat.json", NULL);
	struct evbuffer *out = evbuffer_new();
	struct sy_usage u;
	char *err = NULL;

	text[strlen(text) / 2] = '\0';
	SY_CHECK_INT(decode_text(200, text, out, &u, &err), -1);
	SY_CHECK_INT(u.prompt_tokens, -1);
	free(err);
	evbuffer_free(out);
	free(text);
}

SY_TEST(decode_reads_only_top_level_usage)
{
	struct evbuffer *out = evbuffer_new();
	struct sy_usage u;
	char *err = NULL;

	SY_CHECK_INT(decode_text(200, "{\"choices\":[{\"usage\":"
	    "{\"prompt_tokens\":5}}],\"x\":{\"usage\":{\"completion_tokens\":6}}}",
	    out, &u, &err), 0);
	SY_CHECK_INT(u.prompt_tokens, -1);
	SY_CHECK_INT(u.completion_tokens, -1);
	SY_CHECK_INT(decode_text(200, "{\"choices\":[],\"usage\":{\"prompt_tokens\":"
	    "7,\"completion_tokens\":\"8\",\"prompt_tokens_details\":{"
	    "\"cached_tokens\":3,\"usage\":{\"prompt_tokens\":1}}}}", out, &u,
	    &err), 0);
	SY_CHECK_INT(u.prompt_tokens, 7);
	SY_CHECK_INT(u.completion_tokens, -1);
	SY_CHECK_INT(u.cached_tokens, 3);
	evbuffer_free(out);
}

SY_TEST(decode_keeps_an_error_body_and_wraps_other_json)
{
	struct evbuffer *out = evbuffer_new();
	struct sy_usage u;
	char *err = NULL;
	const char *error = "{\"error\":{\"code\":400,\"message\":\"bad\"},"
	    "\"usage\":{\"prompt_tokens\":9}}";

	SY_CHECK_INT(decode_text(400, error, out, &u, &err), 0);
	SY_CHECK_INT(evbuffer_get_length(out), strlen(error));
	SY_CHECK_INT(u.prompt_tokens, -1);
	evbuffer_drain(out, evbuffer_get_length(out));
	SY_CHECK_INT(decode_text(500, "{\"error\":\"boom\"}", out, &u, &err), 0);
	SY_CHECK(evbuffer_search(out, "backend returned HTTP 500", 25, NULL).pos >= 0);
	evbuffer_drain(out, evbuffer_get_length(out));
	SY_CHECK_INT(decode_text(502, "[{\"error\":{}}]", out, &u, &err), 0);
	SY_CHECK(evbuffer_search(out, "backend returned HTTP 502", 25, NULL).pos >= 0);
	evbuffer_free(out);
}

/* The verdict on an event of data, the client asking usage or not. */
static enum sy_stream_verdict
verdict_on(const char *data, int wants_usage, struct sy_usage *u)
{
	struct sy_req *req = sy_test_req(SY_API_CHAT, "{\"model\":\"m\",\"messages\":[],"
	    "\"stream\":true}", NULL);
	struct evbuffer *out = evbuffer_new();
	struct sy_sse_event ev;
	enum sy_stream_verdict v;

	memset(&ev, 0, sizeof ev);
	ev.event = ev.id = "";
	ev.data = data;
	ev.data_len = strlen(data);
	ev.raw = data;
	ev.raw_len = strlen(data);
	req->client_wants_usage = wants_usage;
	u->prompt_tokens = u->completion_tokens = u->cached_tokens = -1;
	v = openai->stream_event(NULL, req, &ev, out, u);
	evbuffer_free(out);
	return v;
}

SY_TEST(only_a_top_level_usage_chunk_with_no_choices_is_dropped)
{
	struct sy_usage u;

	SY_CHECK_INT(verdict_on("{\"choices\":[],\"usage\":{\"prompt_tokens\":3}}",
	    0, &u), SY_STREAM_DROP);
	SY_CHECK_INT(u.prompt_tokens, 3);
	SY_CHECK_INT(verdict_on("{\"usage\":{\"prompt_tokens\":3},\"choices\":[ ]}",
	    0, &u), SY_STREAM_DROP);
	SY_CHECK_INT(verdict_on("{\"choices\":[],\"usage\":{\"prompt_tokens\":3}}",
	    1, &u), SY_STREAM_FORWARD);
	SY_CHECK_INT(u.prompt_tokens, 3);
	SY_CHECK_INT(verdict_on("{\"choices\":[{}],\"usage\":{\"prompt_tokens\":4}}",
	    0, &u), SY_STREAM_FORWARD);
	SY_CHECK_INT(u.prompt_tokens, 4);
	SY_CHECK_INT(verdict_on("{\"usage\":{\"prompt_tokens\":4}}", 0, &u),
	    SY_STREAM_FORWARD);
	SY_CHECK_INT(verdict_on("{\"choices\":[],\"usage\":null}", 0, &u),
	    SY_STREAM_FORWARD);
	SY_CHECK_INT(verdict_on("{\"choices\":[{\"usage\":{\"prompt_tokens\":5}}],"
	    "\"x\":{\"choices\":[],\"usage\":{}}}", 0, &u), SY_STREAM_FORWARD);
	SY_CHECK_INT(u.prompt_tokens, -1);
	/* Cut short, it is no chunk at all: the stream fails there. */
	SY_CHECK_INT(verdict_on("{\"choices\":[],\"usage\":{\"prompt_tokens\":3}",
	    0, &u), SY_STREAM_ERROR);
	SY_CHECK_INT(u.prompt_tokens, -1);
}

SY_TEST(only_a_top_level_error_object_is_an_error_event)
{
	struct sy_usage u;

	SY_CHECK_INT(verdict_on("{\"error\":{\"message\":\"x\"}}", 0, &u),
	    SY_STREAM_ERROR);
	SY_CHECK_INT(verdict_on("{\"error\":\"x\"}", 0, &u), SY_STREAM_FORWARD);
	SY_CHECK_INT(verdict_on("{\"choices\":[{\"error\":{}}]}", 0, &u),
	    SY_STREAM_FORWARD);
	/* Not a JSON object (an array, a cut object): a failed stream, told
	   as such, never passed on as a chunk. */
	SY_CHECK_INT(verdict_on("[{\"error\":{}}]", 0, &u), SY_STREAM_ERROR);
	SY_CHECK_INT(verdict_on("{\"error\":{}", 0, &u), SY_STREAM_ERROR);
	SY_CHECK_INT(verdict_on("{\"choices\":[{\"delta\":{\"content\":\"a", 0,
	    &u), SY_STREAM_ERROR);
	SY_CHECK_INT(verdict_on("not json", 0, &u), SY_STREAM_ERROR);
}

int
main(void)
{
	openai = sy_backend_kind_find("openai");
	if (openai == NULL)
		return 2;
	SY_RUN(usage_is_read_from_a_recorded_chat_answer);
	SY_RUN(usage_absent_leaves_counts_unknown);
	SY_RUN(unchanged_request_is_forwarded_byte_for_byte);
	SY_RUN(stream_usage_and_renames_are_edited_into_the_clients_bytes);
	SY_RUN(api_key_goes_in_a_bearer_header);
	SY_RUN(azure_puts_the_api_version_in_the_query_and_the_key_in_api_key);
	SY_RUN(alias_renames_the_model_and_keeps_every_other_field);
	SY_RUN(stream_asks_for_usage_and_keeps_other_stream_options);
	SY_RUN(usage_chunk_added_for_accounting_is_dropped_but_counted);
	SY_RUN(usage_chunk_the_client_asked_for_is_relayed_verbatim);
	SY_RUN(completion_stream_final_chunk_with_choices_keeps_its_usage);
	SY_RUN(usage_and_error_keys_are_found_at_every_offset);
	SY_RUN(error_event_mid_stream_is_reported_and_relayed);
	SY_RUN(decode_rejects_a_non_json_answer_and_accepts_an_error_body);
	SY_RUN(decode_wraps_a_non_json_error_in_openai_shape);
	SY_RUN(decode_reads_usage_and_forwards_the_answer_unchanged);
	SY_RUN(decode_refuses_a_success_that_is_not_one_json_object);
	SY_RUN(decode_refuses_a_truncated_answer);
	SY_RUN(decode_reads_only_top_level_usage);
	SY_RUN(decode_keeps_an_error_body_and_wraps_other_json);
	SY_RUN(only_a_top_level_usage_chunk_with_no_choices_is_dropped);
	SY_RUN(only_a_top_level_error_object_is_an_error_event);
	return sy_test_done();
}
