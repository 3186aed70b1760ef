/* Unit tests of the KServe v2 adapter: OpenAI embeddings requests as infer calls, tensors back as OpenAI embeddings, errors, usage estimates. */
#include <math.h>
#include <string.h>

#include <event2/buffer.h>
#include <openssl/evp.h>

#include "backend.h"
#include "framing.h"
#include "config.h"
#include "req.h"
#include "sse.h"
#include "sy_test.h"
#include "sy_test_req.h"

static const struct sy_backend_kind *kserve;


/* An endpoint without credentials, and one with an API key. */
static struct sy_endpoint plain_ep = { .name = "e" };
static struct sy_endpoint keyed_ep = { .name = "k", .api_key = "sk-123" };

/* The upstream request (path, headers) of the last encode. */
static struct sy_upstream_req up;

/* Encodes an embeddings request of text for ep; returns the body as a string (caller frees), or NULL with *err set. */
static char *
encode_text(const char *text, const char *model,
    const struct sy_endpoint *ep, char **err)
{
	struct sy_req *req = sy_test_req(SY_API_EMBEDDINGS, text, model);
	struct evbuffer *out = evbuffer_new();
	char *s = NULL;
	size_t len;

	memset(&up, 0, sizeof up);
	*err = NULL;
	if (kserve->encode(req, ep, out, &up, err) == 0) {
		len = evbuffer_get_length(out);
		s = malloc(len + 1);
		evbuffer_remove(out, s, len);
		s[len] = '\0';
	}
	evbuffer_free(out);
	return s;
}

/* The 400 message encode gives for an api request of text (caller frees). */
static char *
refusal(enum sy_api api, const char *text)
{
	struct sy_req *req = sy_test_req(api, text, NULL);
	struct evbuffer *out = evbuffer_new();
	char *err = NULL;

	memset(&up, 0, sizeof up);
	SY_CHECK_INT(kserve->encode(req, &plain_ep, out, &up, &err), -1);
	SY_CHECK(err != NULL);
	evbuffer_free(out);
	return err != NULL ? err : strdup("");
}

/* Whether s contains part. */
static int
has(const char *s, const char *part)
{
	return s != NULL && strstr(s, part) != NULL;
}

/* ==== Encode ==== */

SY_TEST(kind_is_found_by_name_and_probes_v2_health_ready)
{
	SY_CHECK(kserve != NULL);
	SY_CHECK_STR(kserve->name, "kserve");
	SY_CHECK_STR(kserve->health_path, "/v2/health/ready");
	SY_CHECK(kserve->framing == &sy_framing_sse);
}

SY_TEST(a_string_input_becomes_a_bytes_tensor_of_one)
{
	char *err, *body = encode_text("{\"model\":\"e5-small\",\"input\":"
	    "\"hello there\"}", NULL, &plain_ep, &err);

	SY_CHECK_STR(body, "{\"inputs\":[{\"name\":\"text\",\"shape\":[1],"
	    "\"datatype\":\"BYTES\",\"data\":[\"hello there\"]}]}");
	SY_CHECK_STR(up.path, "/v2/models/e5-small/infer");
	SY_CHECK_STR(up.headers, "");
	free(body);
}

SY_TEST(an_array_of_strings_keeps_its_order_and_escapes)
{
	char *err, *body = encode_text("{\"model\":\"m\",\"input\":[\"a b\","
	    "\"\",\"say \\\"hi\\\"\\n\",\"caf\\u00e9 \xe2\x82\xac\"],"
	    "\"user\":\"u1\",\"encoding_format\":\"float\"}", NULL, &plain_ep,
	    &err);
	json_t *obj = json_loads(body, 0, NULL), *in;

	in = json_array_get(json_object_get(obj, "inputs"), 0);
	SY_CHECK_INT(json_array_size(json_object_get(obj, "inputs")), 1);
	SY_CHECK_INT(json_object_size(obj), 1);
	SY_CHECK_INT(json_integer_value(json_array_get(json_object_get(in,
	    "shape"), 0)), 4);
	SY_CHECK_STR(json_string_value(json_array_get(json_object_get(in,
	    "data"), 0)), "a b");
	SY_CHECK_STR(json_string_value(json_array_get(json_object_get(in,
	    "data"), 1)), "");
	SY_CHECK_STR(json_string_value(json_array_get(json_object_get(in,
	    "data"), 2)), "say \"hi\"\n");
	SY_CHECK_STR(json_string_value(json_array_get(json_object_get(in,
	    "data"), 3)), "caf\xc3\xa9 \xe2\x82\xac");
	json_decref(obj);
	free(body);
}

SY_TEST(the_served_model_is_percent_encoded_in_the_path)
{
	char *err, *body = encode_text("{\"model\":\"alias\",\"input\":\"x\"}",
	    "org/e5 large+v2~x.y_z", &plain_ep, &err);

	SY_CHECK(body != NULL);
	SY_CHECK_STR(up.path, "/v2/models/org%2Fe5%20large%2Bv2~x.y_z/infer");
	free(body);
}

SY_TEST(a_model_name_too_long_for_the_path_is_refused)
{
	char model[400], *err, *body;

	memset(model, '/', sizeof model - 1);
	model[sizeof model - 1] = '\0';
	body = encode_text("{\"model\":\"m\",\"input\":\"x\"}", model,
	    &plain_ep, &err);
	SY_CHECK(body == NULL);
	SY_CHECK(has(err, "too long"));
	free(err);
}

SY_TEST(api_key_goes_in_a_bearer_header)
{
	char *err, *body = encode_text("{\"model\":\"m\",\"input\":\"x\"}",
	    NULL, &keyed_ep, &err);

	SY_CHECK_STR(up.headers, "Authorization: Bearer sk-123\r\n");
	free(body);
}

SY_TEST(chat_and_completions_are_refused)
{
	char *err = refusal(SY_API_CHAT, "{\"model\":\"m\",\"messages\":[]}");

	SY_CHECK_STR(err, "the kserve backend serves embeddings only");
	free(err);
	err = refusal(SY_API_COMPLETIONS, "{\"model\":\"m\",\"prompt\":\"x\"}");
	SY_CHECK_STR(err, "the kserve backend serves embeddings only");
	free(err);
}

SY_TEST(token_id_inputs_are_refused)
{
	char *err = refusal(SY_API_EMBEDDINGS,
	    "{\"model\":\"m\",\"input\":[1,2,3]}");

	SY_CHECK(has(err, "kserve takes text inputs"));
	free(err);
	err = refusal(SY_API_EMBEDDINGS,
	    "{\"model\":\"m\",\"input\":[[1,2],[3]]}");
	SY_CHECK(has(err, "kserve takes text inputs"));
	free(err);
}

SY_TEST(inputs_that_are_not_text_are_refused)
{
	static const char *const bodies[] = {
		"{\"model\":\"m\",\"input\":[]}",
		"{\"model\":\"m\",\"input\":null}",
		"{\"model\":\"m\",\"input\":7}",
		"{\"model\":\"m\",\"input\":{\"text\":\"x\"}}",
		"{\"model\":\"m\",\"input\":[\"a\",null]}",
		NULL
	};
	char *err;
	size_t i;

	for (i = 0; bodies[i] != NULL; i++) {
		err = refusal(SY_API_EMBEDDINGS, bodies[i]);
		SY_CHECK(has(err, "'input'"));
		free(err);
	}
}

SY_TEST(dimensions_is_refused_naming_the_field)
{
	char *err = refusal(SY_API_EMBEDDINGS,
	    "{\"model\":\"m\",\"input\":\"x\",\"dimensions\":256}"), *body;

	SY_CHECK(has(err, "'dimensions'"));
	free(err);
	body = encode_text("{\"model\":\"m\",\"input\":\"x\",\"dimensions\":"
	    "null}", NULL, &plain_ep, &err);
	SY_CHECK(body != NULL);
	free(body);
}

SY_TEST(unknown_encoding_formats_are_refused)
{
	char *err = refusal(SY_API_EMBEDDINGS,
	    "{\"model\":\"m\",\"input\":\"x\",\"encoding_format\":\"int8\"}");

	SY_CHECK(has(err, "'encoding_format'"));
	free(err);
	err = refusal(SY_API_EMBEDDINGS,
	    "{\"model\":\"m\",\"input\":\"x\",\"encoding_format\":1}");
	SY_CHECK(has(err, "'encoding_format'"));
	free(err);
}

/* ==== Decode ==== */

/* Decodes text answered with status for the embeddings request req_text. */
static int
decode(const char *req_text, int status, const char *text,
    struct evbuffer *out, struct sy_usage *u, char **err)
{
	struct sy_req *req = sy_test_req(SY_API_EMBEDDINGS, req_text, "e5-small");
	struct evbuffer *body = evbuffer_new();
	int rc;

	evbuffer_add(body, text, strlen(text));
	u->prompt_tokens = u->completion_tokens = u->cached_tokens = -1;
	*err = NULL;
	rc = kserve->decode(req, status, body, out, u, err);
	evbuffer_free(body);
	return rc;
}

/* out as a string (drained; caller frees). */
static char *
take(struct evbuffer *out)
{
	size_t len = evbuffer_get_length(out);
	char *s = malloc(len + 1);

	evbuffer_remove(out, s, len);
	s[len] = '\0';
	return s;
}

/* A Triton/KServe answer for two inputs, as the servers write it. */
static const char two_rows[] = "{\"model_name\":\"e5-small\","
    "\"model_version\":\"1\",\"outputs\":[{\"name\":\"embedding\","
    "\"datatype\":\"FP32\",\"shape\":[2,3],\"data\":[0.125,-0.5,1e-05,"
    "0.7071068,0,-1.25E+2]}]}";

static const char two_inputs[] = "{\"model\":\"e5\",\"input\":"
    "[\"hello there\",\"abcdefghi  jk\"]}";

SY_TEST(a_tensor_becomes_openai_embeddings_with_numbers_as_sent)
{
	struct evbuffer *out = evbuffer_new();
	struct sy_usage u;
	char *err, *s;

	SY_CHECK_INT(decode(two_inputs, 200, two_rows, out, &u, &err), 0);
	s = take(out);
	SY_CHECK_STR(s, "{\"object\":\"list\",\"data\":["
	    "{\"object\":\"embedding\",\"index\":0,\"embedding\":"
	    "[0.125,-0.5,1e-05]},"
	    "{\"object\":\"embedding\",\"index\":1,\"embedding\":"
	    "[0.7071068,0,-1.25E+2]}],"
	    "\"model\":\"e5-small\","
	    "\"usage\":{\"prompt_tokens\":8,\"total_tokens\":8}}");
	free(s);
	evbuffer_free(out);
}

SY_TEST(prompt_tokens_follow_sy_sims_documented_rule)
{
	struct evbuffer *out = evbuffer_new();
	struct sy_usage u;
	char *err;

	/* "hello there": hell o ther e = 4; "abcdefghi  jk": abcd efgh i jk = 4 */
	SY_CHECK_INT(decode(two_inputs, 200, two_rows, out, &u, &err), 0);
	SY_CHECK_INT(u.prompt_tokens, 8);
	SY_CHECK_INT(u.completion_tokens, -1);
	SY_CHECK_INT(u.cached_tokens, -1);
	/* Bytes, not characters: three 2-byte letters are 2 tokens; every
	   whitespace byte splits; an empty text is none. */
	SY_CHECK_INT(decode("{\"model\":\"m\",\"input\":[\"\xc3\xa9\xc3\xa9"
	    "\xc3\xa9\",\" a\\tb\\nc\\rd\\fe\\u000bf \"]}", 200, two_rows,
	    out, &u, &err), 0);
	SY_CHECK_INT(u.prompt_tokens, 2 + 6);
	SY_CHECK_INT(decode("{\"model\":\"m\",\"input\":[\"\",\"   \"]}", 200,
	    two_rows, out, &u, &err), 0);
	SY_CHECK_INT(u.prompt_tokens, 0);
	evbuffer_free(out);
}

SY_TEST(a_string_input_reads_a_tensor_of_one_row)
{
	struct evbuffer *out = evbuffer_new();
	struct sy_usage u;
	char *err, *s;
	json_t *obj;

	SY_CHECK_INT(decode("{\"model\":\"e5\",\"input\":\"one two\"}", 200,
	    "{\"outputs\":[{\"name\":\"e\",\"shape\":[1,2],\"datatype\":"
	    "\"FP64\",\"data\":[0.25,0.75]}],\"model_name\":\"e5\"}", out, &u,
	    &err), 0);
	s = take(out);
	obj = json_loads(s, 0, NULL);
	SY_CHECK_INT(json_array_size(json_object_get(obj, "data")), 1);
	SY_CHECK_INT(u.prompt_tokens, 2);
	json_decref(obj);
	free(s);
	evbuffer_free(out);
}

SY_TEST(nested_data_is_read_row_major)
{
	struct evbuffer *out = evbuffer_new();
	struct sy_usage u;
	char *err, *s;

	SY_CHECK_INT(decode(two_inputs, 200, "{\"outputs\":[{\"name\":\"e\","
	    "\"shape\":[2,2],\"datatype\":\"FP16\",\"data\":[[1.5, 2] , "
	    "[ 3,4 ]]}]}", out, &u, &err), 0);
	s = take(out);
	SY_CHECK(has(s, "\"index\":0,\"embedding\":[1.5,2]}"));
	SY_CHECK(has(s, "\"index\":1,\"embedding\":[3,4]}"));
	free(s);
	evbuffer_free(out);
}

SY_TEST(base64_is_little_endian_float32_of_each_row)
{
	struct evbuffer *out = evbuffer_new();
	struct sy_usage u;
	unsigned char bin[32];
	char *err, *s;
	json_t *obj, *e;
	float f[3];
	int n;

	SY_CHECK_INT(decode("{\"model\":\"e5\",\"input\":[\"a\",\"b\"],"
	    "\"encoding_format\":\"base64\"}", 200, two_rows, out, &u, &err),
	    0);
	s = take(out);
	obj = json_loads(s, 0, NULL);
	e = json_object_get(json_array_get(json_object_get(obj, "data"), 1),
	    "embedding");
	SY_CHECK(json_is_string(e));
	n = EVP_DecodeBlock(bin, (const unsigned char *)json_string_value(e),
	    (int)json_string_length(e));
	SY_CHECK_INT(n, 12);
	/* -125.0f is 0xc2fa0000, least significant byte first. */
	SY_CHECK(memcmp(bin + 8, "\x00\x00\xfa\xc2", 4) == 0);
	memcpy(f, bin, sizeof f);
	SY_CHECK(f[0] == 0.7071068f && f[1] == 0.0f && f[2] == -125.0f);
	SY_CHECK_INT(u.prompt_tokens, 2);
	json_decref(obj);
	free(s);
	evbuffer_free(out);
}

SY_TEST(answers_that_break_the_tensor_contract_are_refused)
{
	static const char *const bodies[] = {
		"",
		"<html>bad gateway</html>",
		"{\"outputs\":[{\"name\":\"e\",\"shape\":[2,3],\"datatype\":\"FP32\",\"data\":[1,2,3]",
		"[1]",
		"{\"model_name\":\"e5\"}",
		"{\"outputs\":[]}",
		"{\"outputs\":[7]}",
		/* data shorter, longer than the shape */
		"{\"outputs\":[{\"shape\":[2,3],\"datatype\":\"FP32\",\"data\":[1,2,3,4,5]}]}",
		"{\"outputs\":[{\"shape\":[2,3],\"datatype\":\"FP32\",\"data\":[1,2,3,4,5,6,7]}]}",
		/* one row for two inputs, three for two */
		"{\"outputs\":[{\"shape\":[1,3],\"datatype\":\"FP32\",\"data\":[1,2,3]}]}",
		"{\"outputs\":[{\"shape\":[3,1],\"datatype\":\"FP32\",\"data\":[1,2,3]}]}",
		/* shapes that are not [n, d] */
		"{\"outputs\":[{\"shape\":[6],\"datatype\":\"FP32\",\"data\":[1,2,3,4,5,6]}]}",
		"{\"outputs\":[{\"shape\":[2,3,1],\"datatype\":\"FP32\",\"data\":[1,2,3,4,5,6]}]}",
		"{\"outputs\":[{\"shape\":[2,0],\"datatype\":\"FP32\",\"data\":[]}]}",
		"{\"outputs\":[{\"shape\":[2,-3],\"datatype\":\"FP32\",\"data\":[1,2,3,4,5,6]}]}",
		"{\"outputs\":[{\"shape\":[2,1.5],\"datatype\":\"FP32\",\"data\":[1,2,3]}]}",
		"{\"outputs\":[{\"shape\":[2,99999999],\"datatype\":\"FP32\",\"data\":[1,2]}]}",
		"{\"outputs\":[{\"datatype\":\"FP32\",\"data\":[1,2,3,4,5,6]}]}",
		/* not numbers, not a float datatype, binary data */
		"{\"outputs\":[{\"shape\":[2,1],\"datatype\":\"FP32\",\"data\":[1,\"2\"]}]}",
		"{\"outputs\":[{\"shape\":[2,1],\"datatype\":\"FP32\",\"data\":[1,null]}]}",
		"{\"outputs\":[{\"shape\":[2,1],\"datatype\":\"BYTES\",\"data\":[\"a\",\"b\"]}]}",
		"{\"outputs\":[{\"shape\":[2,1],\"datatype\":\"INT64\",\"data\":[1,2]}]}",
		"{\"outputs\":[{\"shape\":[2,1],\"data\":[1,2]}]}",
		"{\"outputs\":[{\"shape\":[2,1],\"datatype\":\"FP32\",\"parameters\":{\"binary_data_size\":8}}]}",
		NULL
	};
	struct evbuffer *out = evbuffer_new();
	struct sy_usage u;
	char *err;
	size_t i;

	for (i = 0; bodies[i] != NULL; i++) {
		if (decode(two_inputs, 200, bodies[i], out, &u, &err) != -1 ||
		    err == NULL) {
			printf("# accepted: %s\n", bodies[i]);
			SY_CHECK(0);
		}
		SY_CHECK_INT(u.prompt_tokens, -1);
		free(err);
		evbuffer_drain(out, evbuffer_get_length(out));
	}
	evbuffer_free(out);
}

SY_TEST(the_first_output_tensor_is_the_one_read)
{
	struct evbuffer *out = evbuffer_new();
	struct sy_usage u;
	char *err, *s;

	SY_CHECK_INT(decode(two_inputs, 200, "{\"outputs\":[{\"name\":\"e\","
	    "\"data\":[1,2],\"datatype\":\"FP32\",\"shape\":[2,1],\"x\":"
	    "{\"y\":[\"}\"]}},{\"name\":\"f\",\"shape\":[9],\"datatype\":"
	    "\"BYTES\",\"data\":[\"z\"]}]}", out, &u, &err), 0);
	s = take(out);
	SY_CHECK(has(s, "\"embedding\":[1]},{\"object\":\"embedding\","
	    "\"index\":1,\"embedding\":[2]}]"));
	free(s);
	evbuffer_free(out);
}

/* The OpenAI error decode makes of a KServe error answer (status, text). */
static json_t *
error_of(int status, const char *text)
{
	struct evbuffer *out = evbuffer_new();
	struct sy_usage u;
	char *err, *s;
	json_t *obj;

	SY_CHECK_INT(decode(two_inputs, status, text, out, &u, &err), 0);
	SY_CHECK_INT(u.prompt_tokens, -1);
	s = take(out);
	obj = json_loads(s, 0, NULL);
	SY_CHECK(obj != NULL);
	free(s);
	evbuffer_free(out);
	return obj;
}

SY_TEST(kserve_errors_become_openai_errors_keeping_message_and_status)
{
	static const struct { int status; const char *type; } cases[] = {
		{ 400, "invalid_request_error" }, { 401, "authentication_error" },
		{ 403, "permission_error" }, { 404, "not_found_error" },
		{ 429, "rate_limit_error" }, { 500, "server_error" },
		{ 503, "server_error" }
	};
	json_t *obj, *e;
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		obj = error_of(cases[i].status, "{\"error\":\"Request for "
		    "unknown model: 'e5' has no \\\"version\\\"\"}");
		e = json_object_get(obj, "error");
		SY_CHECK_STR(json_string_value(json_object_get(e, "message")),
		    "Request for unknown model: 'e5' has no \"version\"");
		SY_CHECK_STR(json_string_value(json_object_get(e, "type")),
		    cases[i].type);
		SY_CHECK_INT(json_integer_value(json_object_get(e, "code")),
		    cases[i].status);
		json_decref(obj);
	}
}

SY_TEST(an_error_that_is_not_kserves_shape_is_quoted)
{
	json_t *obj = error_of(502, "upstream \"connect\" error\n"), *e;

	e = json_object_get(obj, "error");
	SY_CHECK_STR(json_string_value(json_object_get(e, "message")),
	    "backend returned HTTP 502: upstream \"connect\" error\n");
	SY_CHECK_STR(json_string_value(json_object_get(e, "type")),
	    "server_error");
	json_decref(obj);
	obj = error_of(500, "");
	e = json_object_get(obj, "error");
	SY_CHECK_STR(json_string_value(json_object_get(e, "message")),
	    "backend returned HTTP 500");
	json_decref(obj);
}

SY_TEST(an_error_already_in_openai_shape_goes_through)
{
	const char *text = "{\"error\":{\"message\":\"no\",\"type\":\"x\","
	    "\"code\":null}}";
	json_t *obj = error_of(400, text), *want = json_loads(text, 0, NULL);

	SY_CHECK(json_equal(obj, want));
	json_decref(obj);
	json_decref(want);
}

SY_TEST(a_stream_event_is_answered_with_an_error_event)
{
	struct sy_req *req = sy_test_req(SY_API_EMBEDDINGS,
	    "{\"model\":\"m\",\"input\":\"x\"}", NULL);
	struct sy_sse_event ev = { .event = "", .data = "{}", .data_len = 2,
	    .id = "", .raw = "data: {}\n\n", .raw_len = 10 };
	struct evbuffer *out = evbuffer_new();
	struct sy_usage u = { -1, -1, -1 };
	char *s;

	SY_CHECK_INT(kserve->stream_event(NULL, req, &ev, out, &u),
	    SY_STREAM_ERROR);
	s = take(out);
	SY_CHECK(strncmp(s, "data: {\"error\":{", 16) == 0);
	SY_CHECK(has(s, "does not stream"));
	free(s);
	evbuffer_free(out);
}

int
main(void)
{
	kserve = sy_backend_kind_find("kserve");
	if (kserve == NULL) {
		printf("Bail out! no kserve backend kind\n");
		return 1;
	}
	SY_RUN(kind_is_found_by_name_and_probes_v2_health_ready);
	SY_RUN(a_string_input_becomes_a_bytes_tensor_of_one);
	SY_RUN(an_array_of_strings_keeps_its_order_and_escapes);
	SY_RUN(the_served_model_is_percent_encoded_in_the_path);
	SY_RUN(a_model_name_too_long_for_the_path_is_refused);
	SY_RUN(api_key_goes_in_a_bearer_header);
	SY_RUN(chat_and_completions_are_refused);
	SY_RUN(token_id_inputs_are_refused);
	SY_RUN(inputs_that_are_not_text_are_refused);
	SY_RUN(dimensions_is_refused_naming_the_field);
	SY_RUN(unknown_encoding_formats_are_refused);
	SY_RUN(a_tensor_becomes_openai_embeddings_with_numbers_as_sent);
	SY_RUN(prompt_tokens_follow_sy_sims_documented_rule);
	SY_RUN(a_string_input_reads_a_tensor_of_one_row);
	SY_RUN(nested_data_is_read_row_major);
	SY_RUN(base64_is_little_endian_float32_of_each_row);
	SY_RUN(answers_that_break_the_tensor_contract_are_refused);
	SY_RUN(the_first_output_tensor_is_the_one_read);
	SY_RUN(kserve_errors_become_openai_errors_keeping_message_and_status);
	SY_RUN(an_error_that_is_not_kserves_shape_is_quoted);
	SY_RUN(an_error_already_in_openai_shape_goes_through);
	SY_RUN(a_stream_event_is_answered_with_an_error_event);
	return sy_test_done();
}
