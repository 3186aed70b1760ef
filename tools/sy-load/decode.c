/* sy-load: reads the answers of the four APIs: token chunks and their timing, usage, reply text, errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "load.h"

/* Counts one token chunk of req that arrived at now and keeps its text. */
static void
token(struct sy_load_req *req, uint64_t now, const char *text, size_t len)
{
	uint32_t *g;
	uint64_t gap;

	if (req->rec.chunks == 0)
		req->rec.ttft_us = (uint32_t)(now - req->t0);
	else {
		gap = now - req->last_token;
		if (req->ngaps == req->gaps_cap) {
			req->gaps_cap = req->gaps_cap ? 2 * req->gaps_cap : 64;
			g = realloc(req->gaps, req->gaps_cap * sizeof *g);
			if (g == NULL)
				abort();
			req->gaps = g;
		}
		req->gaps[req->ngaps++] = (uint32_t)gap;
		req->itl_sum += gap;
		if (gap > req->rec.itl_max_us)
			req->rec.itl_max_us = (uint32_t)gap;
	}
	req->last_token = now;
	req->rec.chunks++;
	if (req->text != NULL)
		evbuffer_add(req->text, text, len);
}

/* The non-negative number o[key] as a count, 0 when absent. */
static uint32_t
count(const json_t *o, const char *key)
{
	double v = json_number_value(json_object_get(o, key));

	return v > 0 && v < 4e9 ? (uint32_t)v : 0;
}

/* Reads OpenAI-shaped usage {prompt_tokens, completion_tokens}. */
static void
usage_openai(struct sy_load_req *req, const json_t *u)
{
	if (!json_is_object(u))
		return;
	req->rec.prompt_tokens = count(u, "prompt_tokens");
	req->rec.completion_tokens = count(u, "completion_tokens");
	req->rec.usage = 1;
}

/* Anthropic's prompt size: input plus cache-read and cache-written tokens. */
static uint32_t
anthropic_input(const json_t *u)
{
	return count(u, "input_tokens") + count(u, "cache_read_input_tokens") +
	    count(u, "cache_creation_input_tokens");
}

/* Keeps the message of an error object (or string) e in req->errmsg. */
static void
error_message(struct sy_load_req *req, const json_t *e)
{
	const char *msg = NULL;

	if (json_is_string(e))
		msg = json_string_value(e);
	else if (json_is_object(e))
		msg = json_string_value(json_object_get(e, "message"));
	if (msg != NULL)
		snprintf(req->errmsg, sizeof req->errmsg, "%s", msg);
}

/* The string o[key] and its length in *len, or NULL. */
static const char *
str(const json_t *o, const char *key, size_t *len)
{
	const json_t *v = json_object_get(o, key);

	if (!json_is_string(v))
		return NULL;
	*len = json_string_length(v);
	return json_string_value(v);
}

/* Reads one OpenAI stream chunk (chat or completions). */
static void
event_openai(struct sy_load_req *req, const json_t *j, uint64_t now)
{
	const json_t *c, *d;
	const char *text;
	size_t len = 0;

	if (json_object_get(j, "error") != NULL) {
		req->rec.error = SY_LOAD_ERR_STREAM;
		error_message(req, json_object_get(j, "error"));
		return;
	}
	c = json_array_get(json_object_get(j, "choices"), 0);
	if (json_is_object(c)) {
		if (req->api == SY_LOAD_CHAT) {
			d = json_object_get(c, "delta");
			text = str(d, "content", &len);
			if (text == NULL || len == 0)
				text = str(d, "reasoning_content", &len);
		} else
			text = str(c, "text", &len);
		if (text != NULL && len > 0)
			token(req, now, text, len);
	}
	usage_openai(req, json_object_get(j, "usage"));
}

/* Reads one Anthropic Messages stream event. */
static void
event_anthropic(struct sy_load_req *req, const char *name, const json_t *j,
    uint64_t now)
{
	const json_t *u, *d;
	const char *text;
	size_t len = 0;

	if (*name == '\0')
		name = json_string_value(json_object_get(j, "type"));
	if (name == NULL)
		return;
	if (strcmp(name, "message_start") == 0) {
		u = json_object_get(json_object_get(j, "message"), "usage");
		if (json_is_object(u))
			req->rec.prompt_tokens = anthropic_input(u);
	} else if (strcmp(name, "content_block_delta") == 0) {
		d = json_object_get(j, "delta");
		text = str(d, "text", &len);
		if (text == NULL)
			text = str(d, "thinking", &len);
		if (text != NULL && len > 0)
			token(req, now, text, len);
	} else if (strcmp(name, "message_delta") == 0) {
		u = json_object_get(j, "usage");
		if (json_is_object(u) && json_object_get(u, "output_tokens")) {
			req->rec.completion_tokens = count(u, "output_tokens");
			if (json_object_get(u, "input_tokens") != NULL)
				req->rec.prompt_tokens = anthropic_input(u);
			req->rec.usage = 1;
		}
	} else if (strcmp(name, "error") == 0) {
		req->rec.error = SY_LOAD_ERR_STREAM;
		error_message(req, json_object_get(j, "error"));
	}
}

void
sy_load_decode_event(struct sy_load_req *req, const char *name,
    const char *data, size_t len, uint64_t now)
{
	json_t *j;

	if (req->rec.error != SY_LOAD_OK)
		return;
	if (len == 6 && memcmp(data, "[DONE]", 6) == 0)
		return;
	j = json_loadb(data, len, JSON_ALLOW_NUL, NULL);
	if (!json_is_object(j)) {
		req->rec.error = SY_LOAD_ERR_BAD_RESPONSE;
		snprintf(req->errmsg, sizeof req->errmsg,
		    "stream event is not a JSON object");
		json_decref(j);
		return;
	}
	if (req->api == SY_LOAD_ANTHROPIC)
		event_anthropic(req, name, j, now);
	else
		event_openai(req, j, now);
	json_decref(j);
}

int
sy_load_decode_body(struct sy_load_req *req, const char *data, size_t len)
{
	const json_t *c, *v, *u;
	const char *text = NULL;
	json_t *j;
	size_t i, tlen = 0;
	int ok = 0;

	j = json_loadb(data, len, JSON_ALLOW_NUL, NULL);
	if (!json_is_object(j)) {
		json_decref(j);
		return -1;
	}
	switch (req->api) {
	case SY_LOAD_CHAT:
	case SY_LOAD_COMPLETIONS:
		c = json_array_get(json_object_get(j, "choices"), 0);
		if (!json_is_object(c))
			break;
		ok = 1;
		if (req->api == SY_LOAD_CHAT)
			text = str(json_object_get(c, "message"), "content",
			    &tlen);
		else
			text = str(c, "text", &tlen);
		if (text != NULL && req->text != NULL)
			evbuffer_add(req->text, text, tlen);
		usage_openai(req, json_object_get(j, "usage"));
		break;
	case SY_LOAD_EMBEDDINGS:
		ok = json_is_array(json_object_get(j, "data"));
		usage_openai(req, json_object_get(j, "usage"));
		break;
	case SY_LOAD_ANTHROPIC:
		c = json_object_get(j, "content");
		if (!json_is_array(c))
			break;
		ok = 1;
		json_array_foreach(c, i, v) {
			text = str(v, "text", &tlen);
			if (text != NULL && req->text != NULL)
				evbuffer_add(req->text, text, tlen);
		}
		u = json_object_get(j, "usage");
		if (json_is_object(u)) {
			req->rec.prompt_tokens = anthropic_input(u);
			req->rec.completion_tokens = count(u, "output_tokens");
			req->rec.usage = 1;
		}
		break;
	}
	json_decref(j);
	return ok ? 0 : -1;
}

void
sy_load_decode_error(struct sy_load_req *req, const char *data, size_t len)
{
	json_t *j;
	size_t i;

	j = json_loadb(data, len, JSON_ALLOW_NUL, NULL);
	if (json_is_object(j)) {
		error_message(req, json_object_get(j, "error"));
		if (req->errmsg[0] == '\0')
			error_message(req, j);
	}
	json_decref(j);
	if (req->errmsg[0] != '\0')
		return;
	for (i = 0; i < len && i + 1 < sizeof req->errmsg; i++) {
		req->errmsg[i] = data[i];
		if ((unsigned char)data[i] < 0x20)
			req->errmsg[i] = ' ';
	}
	req->errmsg[i] = '\0';
}
