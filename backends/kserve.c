/* kserve: KServe / Triton v2 inference servers running embedding models; OpenAI's /v1/embeddings in, POST /v2/models/{name}/infer out, and back. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <openssl/evp.h>

#include "backend.h"
#include "canon.h"
#include "framing.h"
#include "config.h"
#include "jscan.h"
#include "req.h"
#include "util.h"

/* Sets *err to a copy of msg; returns -1. */
static int
fail(char **err, const char *msg)
{
	*err = sy_xstrdup(msg);
	return -1;
}

/* Whether c is whitespace as sy-sim's tokenizer splits text (JSON's is a subset). */
static int
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
	    c == '\v';
}

/* ==== Inputs ==== */

/*
 * Why the client's "input" cannot go to a KServe server, or NULL when it
 * is text: a string or a non-empty array of strings.
 */
static const char *
input_problem(const json_t *input)
{
	const json_t *v;
	size_t i;

	if (json_is_string(input))
		return NULL;
	if (!json_is_array(input))
		return "'input' must be a string or an array of strings";
	if (json_array_size(input) == 0)
		return "'input' must not be an empty array";
	json_array_foreach(input, i, v) {
		if (json_is_integer(v) || json_is_array(v))
			return "kserve takes text inputs: 'input' must be "
			    "strings, not token ids";
		if (!json_is_string(v))
			return "'input' must be a string or an array of strings";
	}
	return NULL;
}

/* How many texts input (checked by input_problem) holds. */
static size_t
input_count(const json_t *input)
{
	return json_is_string(input) ? 1 : json_array_size(input);
}

/* Text i of input (checked by input_problem). */
static const json_t *
input_text(const json_t *input, size_t i)
{
	return json_is_string(input) ? input : json_array_get(input, i);
}

/* ==== Encode ==== */

/*
 * Writes "/v2/models/<model, percent-encoded>/infer" into path (size
 * bytes): every byte but letters, digits and "-._~" is escaped.  Returns 0,
 * or -1 when it does not fit.
 */
static int
infer_path(char *path, size_t size, const char *model)
{
	static const char hex[] = "0123456789ABCDEF";
	static const char prefix[] = "/v2/models/", suffix[] = "/infer";
	size_t n = sizeof prefix - 1;
	unsigned char c;

	if (size < sizeof prefix)
		return -1;
	memcpy(path, prefix, n);
	for (; *model != '\0'; model++) {
		c = (unsigned char)*model;
		if (n + 3 >= size)
			return -1;
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    c == '_' || c == '~')
			path[n++] = (char)c;
		else {
			path[n++] = '%';
			path[n++] = hex[c >> 4];
			path[n++] = hex[c & 15];
		}
	}
	if (n + sizeof suffix > size)
		return -1;
	memcpy(path + n, suffix, sizeof suffix);
	return 0;
}

/*
 * An embeddings request becomes one BYTES tensor "text" of shape [n], its
 * texts in order.  Chat and completions, token ids, "dimensions" and
 * encoding formats other than float and base64 are refused.
 */
static int
kserve_encode(const struct sy_req *req, const struct sy_endpoint *ep,
    struct evbuffer *out, struct sy_upstream_req *up, char **err)
{
	const json_t *input, *v;
	const char *problem;
	size_t i, n;

	if (req->api != SY_API_EMBEDDINGS)
		return fail(err, "the kserve backend serves embeddings only");
	input = json_object_get(sy_req_body(req), "input");
	if ((problem = input_problem(input)) != NULL)
		return fail(err, problem);
	v = json_object_get(sy_req_body(req), "encoding_format");
	if (v != NULL && !json_is_null(v) && (!json_is_string(v) ||
	    (strcmp(json_string_value(v), "float") != 0 &&
	    strcmp(json_string_value(v), "base64") != 0)))
		return fail(err, "'encoding_format' must be \"float\" or "
		    "\"base64\"");
	v = json_object_get(sy_req_body(req), "dimensions");
	if (v != NULL && !json_is_null(v))
		return fail(err, "the kserve backend cannot honour "
		    "'dimensions': a KServe model answers vectors of its own "
		    "size; leave 'dimensions' out");
	if (infer_path(up->path, sizeof up->path, req->model) != 0)
		return fail(err, "the model name is too long for a kserve "
		    "backend's path");
	sy_backend_bearer(ep, up->headers, sizeof up->headers);
	n = input_count(input);
	evbuffer_add_printf(out, "{\"inputs\":[{\"name\":\"text\",\"shape\":"
	    "[%zu],\"datatype\":\"BYTES\",\"data\":[", n);
	for (i = 0; i < n; i++) {
		v = input_text(input, i);
		if (i > 0)
			SY_ADD_LIT(out, ",");
		SY_ADD_LIT(out, "\"");
		sy_json_escape(out, json_string_value(v), json_string_length(v));
		SY_ADD_LIT(out, "\"");
	}
	SY_ADD_LIT(out, "]}]}");
	return 0;
}

/* ==== Decode ==== */

/*
 * Finds the first element of array text (len bytes, validated JSON) when
 * it is an object: sets *obj and *olen to its text and returns 0; returns
 * -1 when the array is empty or starts with something else.
 */
static int
first_object(const char *text, size_t len, const char **obj, size_t *olen)
{
	const char *p = text + 1, *end = text + len;
	int depth = 0, in_string = 0;

	while (p < end && is_space(*p))
		p++;
	if (p == end || *p != '{')
		return -1;
	*obj = p;
	for (; p < end; p++) {
		if (in_string) {
			if (*p == '\\')
				p++;
			else if (*p == '"')
				in_string = 0;
		} else if (*p == '"')
			in_string = 1;
		else if (*p == '{' || *p == '[')
			depth++;
		else if ((*p == '}' || *p == ']') && --depth == 0) {
			*olen = (size_t)(p + 1 - *obj);
			return 0;
		}
	}
	return -1;
}

/*
 * Steps through the elements of array text (validated JSON) from *p to
 * end, nested arrays flattened (row-major data may be nested): sets *num
 * and *nlen to the next number's text and moves *p past it.  Returns 1 for
 * a number, 0 at the end, -1 at an element that is not a number.
 */
static int
next_number(const char **p, const char *end, const char **num, size_t *nlen)
{
	const char *s = *p;

	while (s < end && (*s == '[' || *s == ']' || *s == ',' ||
	    is_space(*s)))
		s++;
	*p = s;
	if (s == end)
		return 0;
	if (*s != '-' && (*s < '0' || *s > '9'))
		return -1;
	*num = s;
	while (s < end && ((*s >= '0' && *s <= '9') || *s == '-' ||
	    *s == '+' || *s == '.' || *s == 'e' || *s == 'E'))
		s++;
	*nlen = (size_t)(s - *num);
	*p = s;
	return 1;
}

/* An output tensor as found in the answer: the texts of its members. */
struct tensor {
	struct sy_jscan_member m[4];	/* name, shape, datatype, data */
	size_t rows, cols;		/* shape [rows, cols] */
};

enum { T_NAME, T_SHAPE, T_DATATYPE, T_DATA };

/*
 * Reads the first tensor of outputs (array text) into t and checks that it
 * is a floating-point matrix [rows, cols] of at most limit numbers.
 * Returns NULL, or why it is not.
 */
static const char *
tensor_read(const char *outputs, size_t len, size_t limit, struct tensor *t)
{
	static const char *const floats[] = {
		"\"FP32\"", "\"FP16\"", "\"FP64\"", "\"BF16\"", NULL
	};
	const char *obj, *p, *end, *num;
	size_t olen, nlen, dims[2], ndims = 0, i;
	int rc;

	t->m[T_NAME].key = "name";
	t->m[T_SHAPE].key = "shape";
	t->m[T_DATATYPE].key = "datatype";
	t->m[T_DATA].key = "data";
	if (first_object(outputs, len, &obj, &olen) != 0)
		return "kserve answer has no output tensor";
	sy_jscan(obj, olen, t->m, 4);
	if (t->m[T_DATATYPE].kind != SY_JSON_STRING)
		return "kserve output tensor has no datatype";
	for (i = 0; floats[i] != NULL && (t->m[T_DATATYPE].len !=
	    strlen(floats[i]) || memcmp(t->m[T_DATATYPE].value, floats[i],
	    t->m[T_DATATYPE].len) != 0); i++)
		;
	if (floats[i] == NULL)
		return "kserve output tensor is not of a floating-point "
		    "datatype (FP32, FP16, FP64, BF16)";
	if (t->m[T_DATA].kind != SY_JSON_ARRAY)
		return "kserve output tensor has no JSON 'data' (binary "
		    "tensor data is not supported)";
	if (t->m[T_SHAPE].kind != SY_JSON_ARRAY)
		return "kserve output tensor has no shape";
	p = t->m[T_SHAPE].value;
	end = p + t->m[T_SHAPE].len;
	while ((rc = next_number(&p, end, &num, &nlen)) == 1) {
		if (ndims == 2 || strspn(num, "0123456789") < nlen ||
		    nlen > 9)
			return "kserve output tensor's shape is not [n, d]";
		dims[ndims++] = (size_t)strtoul(num, NULL, 10);
	}
	if (rc != 0 || ndims != 2 || dims[1] == 0)
		return "kserve output tensor's shape is not [n, d]";
	if (dims[0] > limit || dims[1] > limit || dims[0] * dims[1] > limit)
		return "kserve output tensor's shape is larger than its data";
	t->rows = dims[0];
	t->cols = dims[1];
	return NULL;
}

/* Appends the base64 of bytes bytes of row; scratch holds the text. */
static void
add_base64(struct evbuffer *out, const unsigned char *row, size_t bytes,
    unsigned char *scratch)
{
	int n = EVP_EncodeBlock(scratch, row, (int)bytes);

	evbuffer_add(out, scratch, (size_t)n);
}

/*
 * Appends OpenAI's embedding objects for the tensor t's data, a row each
 * (numbers copied as the backend wrote them, or as base64 of float32).
 * Returns NULL, or why the data does not fill the shape with numbers.
 */
static const char *
add_rows(struct evbuffer *out, const struct tensor *t, int base64)
{
	const char *p = t->m[T_DATA].value, *end = p + t->m[T_DATA].len;
	const char *num, *why = NULL;
	unsigned char *row = NULL, *scratch = NULL;
	size_t r, c, nlen;
	uint32_t bits;
	float f;
	int rc = 1;

	if (base64) {
		row = sy_xmalloc(t->cols * 4);
		scratch = sy_xmalloc((t->cols * 4 + 2) / 3 * 4 + 1);
	}
	for (r = 0; r < t->rows && why == NULL; r++) {
		evbuffer_add_printf(out, "%s{\"object\":\"embedding\","
		    "\"index\":%zu,\"embedding\":%s", r > 0 ? "," : "", r,
		    base64 ? "\"" : "[");
		for (c = 0; c < t->cols; c++) {
			if ((rc = next_number(&p, end, &num, &nlen)) != 1)
				break;
			if (base64) {
				f = strtof(num, NULL);
				memcpy(&bits, &f, sizeof bits);
				row[c * 4] = (unsigned char)bits;
				row[c * 4 + 1] = (unsigned char)(bits >> 8);
				row[c * 4 + 2] = (unsigned char)(bits >> 16);
				row[c * 4 + 3] = (unsigned char)(bits >> 24);
			} else {
				if (c > 0)
					SY_ADD_LIT(out, ",");
				evbuffer_add(out, num, nlen);
			}
		}
		if (rc == -1)
			why = "kserve output tensor holds something other "
			    "than numbers";
		else if (rc == 0)
			why = "kserve output tensor has fewer numbers than its "
			    "shape";
		else if (base64) {
			add_base64(out, row, t->cols * 4, scratch);
			SY_ADD_LIT(out, "\"}");
		} else
			SY_ADD_LIT(out, "]}");
	}
	if (why == NULL && (rc = next_number(&p, end, &num, &nlen)) != 0)
		why = rc == 1 ? "kserve output tensor has more numbers than its "
		    "shape" : "kserve output tensor holds something other than "
		    "numbers";
	free(row);
	free(scratch);
	return why;
}

/*
 * Appends OpenAI's error for a backend error answer (status, body of the
 * given kind, its "error" member e): KServe's {"error": "message"} keeps its
 * message; a body already in OpenAI's shape goes through; anything else is
 * quoted in "backend returned HTTP <status>: ...".
 */
static void
error_add(struct evbuffer *out, int status, enum sy_json_kind kind,
    const struct sy_jscan_member *e, struct evbuffer *body)
{
	size_t len = evbuffer_get_length(body);

	if (kind == SY_JSON_OBJECT && e->kind == SY_JSON_OBJECT) {
		evbuffer_add_buffer(out, body);
		return;
	}
	SY_ADD_LIT(out, "{\"error\":{\"message\":");
	if (kind == SY_JSON_OBJECT && e->kind == SY_JSON_STRING)
		evbuffer_add(out, e->value, e->len);
	else {
		evbuffer_add_printf(out, "\"backend returned HTTP %d", status);
		if (len > 0) {
			SY_ADD_LIT(out, ": ");
			sy_json_escape(out,
			    (const char *)evbuffer_pullup(body, -1),
			    len < 200 ? len : 200);
		}
		SY_ADD_LIT(out, "\"");
	}
	/* KServe's 404 names a model the server does not have. */
	evbuffer_add_printf(out, ",\"type\":\"%s\",\"code\":%d}}",
	    status == 404 ? "not_found_error" : sy_canon_error_type(status),
	    status);
	evbuffer_drain(body, evbuffer_get_length(body));
}

/*
 * The answer's first output tensor [n, d] becomes OpenAI's list of n
 * embeddings; an error answer becomes OpenAI's error with its status.  The
 * prompt tokens are estimated from the request's texts (KServe reports no
 * usage).
 */
static int
kserve_decode(const struct sy_req *req, int status, struct evbuffer *body,
    struct evbuffer *out, struct sy_usage *usage, char **err)
{
	struct sy_jscan_member top[2] = { { .key = "outputs" },
	    { .key = "error" } };
	size_t len = evbuffer_get_length(body), i, n;
	const char *text = (const char *)evbuffer_pullup(body, -1);
	const json_t *input = json_object_get(sy_req_body(req), "input");
	const json_t *format = json_object_get(sy_req_body(req), "encoding_format");
	struct tensor t;
	enum sy_json_kind kind;
	const char *why;
	int64_t tokens = 0;

	kind = sy_jscan(text != NULL ? text : "", len, top, 2);
	if (status >= 400) {
		error_add(out, status, kind, &top[1], body);
		return 0;
	}
	if (kind != SY_JSON_OBJECT)
		return fail(err, "kserve backend returned a body that is not a "
		    "JSON object");
	if (top[0].kind != SY_JSON_ARRAY)
		return fail(err, "kserve answer has no 'outputs'");
	if ((why = tensor_read(top[0].value, top[0].len, len, &t)) != NULL)
		return fail(err, why);
	n = input_count(input);
	if (t.rows != n)
		return fail(err, "kserve answer has not one row per input");
	SY_ADD_LIT(out, "{\"object\":\"list\",\"data\":[");
	if ((why = add_rows(out, &t, json_is_string(format) &&
	    strcmp(json_string_value(format), "base64") == 0)) != NULL)
		return fail(err, why);
	for (i = 0; i < n; i++)
		tokens += sy_text_tokens(json_string_value(input_text(input, i)),
		    json_string_length(input_text(input, i)));
	SY_ADD_LIT(out, "],\"model\":\"");
	sy_json_escape(out, req->model, strlen(req->model));
	usage->prompt_tokens = tokens;
	SY_ADD_LIT(out, "\",\"usage\":");
	sy_canon_usage_put(out, usage, SY_USAGE_EMBEDDING);
	SY_ADD_LIT(out, "}");
	evbuffer_drain(body, len);
	return 0;
}

/*
 * KServe's REST protocol does not stream, and no request that could be
 * streamed is encoded: were an event ever relayed, the client would be
 * told so.
 */
static enum sy_stream_verdict
kserve_stream_event(void *state, const struct sy_req *req,
    const struct sy_sse_event *ev, struct evbuffer *out,
    struct sy_usage *usage)
{
	SY_ADD_LIT(out, "data: {\"error\":{\"message\":\"the kserve backend "
	    "does not stream\",\"type\":\"server_error\",\"code\":"
	    "\"bad_gateway\"}}\n\n");
	return SY_STREAM_ERROR;
}

const struct sy_backend_kind sy_backend_kserve = {
	.name = "kserve",
	.framing = &sy_framing_sse,
	.encode = kserve_encode,
	.decode = kserve_decode,
	.stream_event = kserve_stream_event,
	.health_path = "/v2/health/ready"
};
