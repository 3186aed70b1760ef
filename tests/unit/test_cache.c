/* Unit tests of the prompt cache's pieces: the canonical key, Cache-Control, stored values, the memory L1, and streams replayed from and reassembled into whole answers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "cache.h"
#include "canon.h"
#include "req.h"
#include "sy_test.h"

/* The key of the JSON text body (chat, namespace "chat", model "m"), into key; 0 or -1. */
static int
key_of(const char *ns, int api, const char *model, const char *body,
    unsigned char key[SY_CACHE_KEY_LEN])
{
	json_t *b = json_loads(body, 0, NULL);
	int rc;

	if (b == NULL) {
		printf("# bad JSON in test: %s\n", body);
		return -1;
	}
	rc = sy_cache_key(ns, api, model, b, key);
	json_decref(b);
	return rc;
}

/* Whether two bodies have the same key (same namespace, API and model). */
static int
same_key(const char *a, const char *b)
{
	unsigned char ka[SY_CACHE_KEY_LEN], kb[SY_CACHE_KEY_LEN];

	if (key_of("chat", SY_API_CHAT, "m", a, ka) != 0 ||
	    key_of("chat", SY_API_CHAT, "m", b, kb) != 0)
		return -1;
	return memcmp(ka, kb, sizeof ka) == 0;
}

#define BASE "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]"

/* ==== Key ==== */

SY_TEST(keys_in_another_order_give_the_same_key)
{
	SY_CHECK_INT(same_key(
	    "{\"model\":\"m\"," BASE ",\"temperature\":0,\"max_tokens\":8,"
	    "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":"
	    "{\"name\":\"x\",\"strict\":true}}}",
	    "{\"response_format\":{\"json_schema\":{\"strict\":true,\"name\":"
	    "\"x\"},\"type\":\"json_schema\"},\"max_tokens\":8,"
	    "\"temperature\":0,\"messages\":[{\"content\":\"hi\",\"role\":"
	    "\"user\"}],\"model\":\"m\"}"), 1);
}

SY_TEST(a_whole_number_written_as_a_real_gives_the_same_key)
{
	SY_CHECK_INT(same_key("{" BASE ",\"temperature\":0,\"top_p\":1,"
	    "\"logit_bias\":{\"50256\":-100}}",
	    "{" BASE ",\"temperature\":0.0,\"top_p\":1.0,"
	    "\"logit_bias\":{\"50256\":-100.0}}"), 1);
	SY_CHECK_INT(same_key("{" BASE ",\"temperature\":0}",
	    "{" BASE ",\"temperature\":0.5}"), 0);
}

SY_TEST(every_parameter_that_changes_the_answer_changes_the_key)
{
	static const char *const variants[] = {
		"\"temperature\":0.5", "\"top_p\":0.9", "\"max_tokens\":9",
		"\"stop\":[\"\\n\"]", "\"seed\":7", "\"n\":2",
		"\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]",
		"\"response_format\":{\"type\":\"json_object\"}",
		"\"tool_choice\":\"none\"", "\"logprobs\":true",
		"\"presence_penalty\":1", "\"frequency_penalty\":1"
	};
	const char *base = "{\"model\":\"m\"," BASE ",\"temperature\":0,"
	    "\"max_tokens\":8}";
	char other[512];
	size_t i;

	for (i = 0; i < sizeof variants / sizeof variants[0]; i++) {
		snprintf(other, sizeof other, "{\"model\":\"m\"," BASE
		    ",\"temperature\":0,\"max_tokens\":8,%s}", variants[i]);
		/* A repeated key: the later value wins in jansson. */
		if (same_key(base, other) != 0) {
			printf("# %s did not change the key\n", variants[i]);
			SY_CHECK(0);
		}
	}
	SY_CHECK_INT(same_key(base, "{\"model\":\"m\",\"messages\":[{\"role\":"
	    "\"user\",\"content\":\"ho\"}],\"temperature\":0,\"max_tokens\":8}"),
	    0);
	SY_CHECK_INT(same_key(base, "{\"model\":\"m\",\"messages\":[{\"role\":"
	    "\"system\",\"content\":\"hi\"}],\"temperature\":0,"
	    "\"max_tokens\":8}"), 0);
}

SY_TEST(namespace_api_and_selected_model_are_in_the_key)
{
	const char *b = "{\"model\":\"m\",\"input\":\"hi\"}";
	unsigned char k[SY_CACHE_KEY_LEN], k2[SY_CACHE_KEY_LEN];

	SY_CHECK_INT(key_of("chat", SY_API_EMBEDDINGS, "m", b, k), 0);
	SY_CHECK_INT(key_of("tenant-b", SY_API_EMBEDDINGS, "m", b, k2), 0);
	SY_CHECK(memcmp(k, k2, sizeof k) != 0);
	SY_CHECK_INT(key_of("chat", SY_API_COMPLETIONS, "m", b, k2), 0);
	SY_CHECK(memcmp(k, k2, sizeof k) != 0);
	SY_CHECK_INT(key_of("chat", SY_API_EMBEDDINGS, "m2", b, k2), 0);
	SY_CHECK(memcmp(k, k2, sizeof k) != 0);
	/* The client's name for the model is not: the selected one is. */
	SY_CHECK_INT(key_of("chat", SY_API_EMBEDDINGS, "m",
	    "{\"model\":\"alias\",\"input\":\"hi\"}", k2), 0);
	SY_CHECK(memcmp(k, k2, sizeof k) == 0);
}

SY_TEST(stream_and_stream_options_share_the_key_of_a_whole_request)
{
	SY_CHECK_INT(same_key("{\"model\":\"m\"," BASE ",\"seed\":1}",
	    "{\"model\":\"m\"," BASE ",\"seed\":1,\"stream\":true,"
	    "\"stream_options\":{\"include_usage\":true}}"), 1);
}

SY_TEST(a_body_that_is_not_an_object_has_no_key)
{
	unsigned char k[SY_CACHE_KEY_LEN];
	json_t *a = json_array();

	SY_CHECK_INT(sy_cache_key("chat", SY_API_CHAT, "m", a, k), -1);
	json_decref(a);
}

SY_TEST(key_hex_is_64_lowercase_digits_of_sha256)
{
	unsigned char k[SY_CACHE_KEY_LEN];
	char hex[2 * SY_CACHE_KEY_LEN + 1];

	SY_CHECK_INT(key_of("chat", SY_API_CHAT, "m", "{\"model\":\"m\","
	    BASE "}", k), 0);
	sy_cache_key_hex(k, hex);
	SY_CHECK_INT(strlen(hex), 64);
	SY_CHECK_INT(strspn(hex, "0123456789abcdef"), 64);
}

SY_TEST(deterministic_means_temperature_zero_a_seed_or_embeddings)
{
	static const struct {
		int api;
		const char *body;
		int want;
	} cases[] = {
		{ SY_API_CHAT, "{\"temperature\":0}", 1 },
		{ SY_API_CHAT, "{\"temperature\":0.0}", 1 },
		{ SY_API_CHAT, "{\"temperature\":0.7,\"seed\":3}", 1 },
		{ SY_API_CHAT, "{\"temperature\":0.7}", 0 },
		{ SY_API_CHAT, "{}", 0 },
		{ SY_API_CHAT, "{\"seed\":\"3\"}", 0 },
		{ SY_API_COMPLETIONS, "{\"temperature\":0}", 1 },
		{ SY_API_EMBEDDINGS, "{}", 1 }
	};
	json_t *b;
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		b = json_loads(cases[i].body, 0, NULL);
		if (sy_cache_deterministic(cases[i].api, b) != cases[i].want) {
			printf("# case %zu: %s\n", i, cases[i].body);
			SY_CHECK(0);
		}
		json_decref(b);
	}
}

/* ==== Cache-Control ==== */

SY_TEST(cache_control_directives_are_read)
{
	struct sy_cache_control cc;

	sy_cache_control_parse(NULL, &cc);
	SY_CHECK(!cc.no_cache && !cc.no_store && cc.max_age == -1);
	sy_cache_control_parse("no-cache", &cc);
	SY_CHECK(cc.no_cache && !cc.no_store && cc.max_age == -1);
	sy_cache_control_parse("No-Store, max-age=30", &cc);
	SY_CHECK(!cc.no_cache && cc.no_store);
	SY_CHECK_INT(cc.max_age, 30);
	sy_cache_control_parse(" max-age = \"0\" ,no-cache", &cc);
	SY_CHECK_INT(cc.max_age, 0);
	SY_CHECK(cc.no_cache);
}

SY_TEST(cache_control_ignores_unknown_and_malformed_directives)
{
	struct sy_cache_control cc;

	sy_cache_control_parse("private, max-age=abc, no-cachex, max-age=5x",
	    &cc);
	SY_CHECK(!cc.no_cache && !cc.no_store);
	SY_CHECK_INT(cc.max_age, -1);
	sy_cache_control_parse("max-age", &cc);
	SY_CHECK_INT(cc.max_age, -1);
}

/* ==== Values ==== */

static const struct sy_usage usage_3_5 = { 3, 5, 1 };

SY_TEST(values_survive_encoding)
{
	struct sy_cache_value *v = sy_cache_value_new("{\"a\":\"b\\nc\"}",
	    12, &usage_3_5, 1700000000123ULL), *d;
	struct evbuffer *b = evbuffer_new();

	sy_cache_value_encode(v, b);
	d = sy_cache_value_decode((const char *)evbuffer_pullup(b, -1),
	    evbuffer_get_length(b));
	SY_CHECK(d != NULL);
	if (d != NULL) {
		SY_CHECK_INT(d->stored_ms, 1700000000123ULL);
		SY_CHECK_INT(d->usage.prompt_tokens, 3);
		SY_CHECK_INT(d->usage.completion_tokens, 5);
		SY_CHECK_INT(d->usage.cached_tokens, 1);
		SY_CHECK_INT(d->len, 12);
		SY_CHECK_STR(d->body, v->body);
	}
	sy_cache_value_unref(d);
	sy_cache_value_unref(v);
	evbuffer_free(b);
}

SY_TEST(malformed_values_are_refused)
{
	static const char *const bad[] = {
		"", "SYC1", "SYC1 1 2 3 4", "SYC2 1 2 3 4\n{}",
		"SYC1 1 2 3\n{}", "SYC1 1 2 3 4 5\n{}", "SYC1 x 2 3 4\n{}",
		"SYC1 1 2 3 4\n[]", "SYC1 1 2 3 4\n{\"a\":", "SYC1 1 2 3 4\n"
	};
	size_t i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		SY_CHECK(sy_cache_value_decode(bad[i], strlen(bad[i])) == NULL);
}

/* ==== L1 ==== */

/* A key whose first bytes are n. */
static void
key_n(unsigned n, unsigned char key[SY_CACHE_KEY_LEN])
{
	memset(key, 0, SY_CACHE_KEY_LEN);
	memcpy(key, &n, sizeof n);
	key[SY_CACHE_KEY_LEN - 1] = (unsigned char)n;
}

/* A value of len bytes of 'x'. */
static struct sy_cache_value *
value_of(size_t len)
{
	char *body = malloc(len);
	struct sy_cache_value *v;

	memset(body, 'x', len);
	v = sy_cache_value_new(body, len, &usage_3_5, 1000);
	free(body);
	return v;
}

/* Whether l holds key at now. */
static int
holds(struct sy_cache_lru *l, unsigned n, uint64_t now)
{
	unsigned char k[SY_CACHE_KEY_LEN];
	struct sy_cache_value *v;

	key_n(n, k);
	v = sy_cache_lru_get(l, k, now);
	sy_cache_value_unref(v);
	return v != NULL;
}

/* Puts a value of len bytes under key n until expires. */
static void
put_n(struct sy_cache_lru *l, unsigned n, size_t len, uint64_t expires)
{
	unsigned char k[SY_CACHE_KEY_LEN];
	struct sy_cache_value *v = value_of(len);

	key_n(n, k);
	sy_cache_lru_put(l, k, v, expires);
	sy_cache_value_unref(v);
}

SY_TEST(l1_keeps_within_its_bytes_and_evicts_the_least_recently_used)
{
	struct sy_cache_lru *l = sy_cache_lru_new(4000);
	struct sy_cache_lru_stats st;

	put_n(l, 1, 1000, 10000);
	put_n(l, 2, 1000, 10000);
	put_n(l, 3, 1000, 10000);
	SY_CHECK(holds(l, 1, 0));	/* 1 is now the most recent */
	put_n(l, 4, 1000, 10000);	/* 2 goes */
	SY_CHECK(holds(l, 1, 0));
	SY_CHECK(!holds(l, 2, 0));
	SY_CHECK(holds(l, 3, 0));
	SY_CHECK(holds(l, 4, 0));
	sy_cache_lru_stats(l, &st);
	SY_CHECK(st.bytes <= 4000);
	SY_CHECK_INT(st.entries, 3);
	SY_CHECK_INT(st.evictions, 1);
	sy_cache_lru_free(l);
}

SY_TEST(l1_entries_expire)
{
	struct sy_cache_lru *l = sy_cache_lru_new(1 << 20);
	struct sy_cache_lru_stats st;

	put_n(l, 1, 10, 5000);
	SY_CHECK(holds(l, 1, 4999));
	SY_CHECK(!holds(l, 1, 5000));
	sy_cache_lru_stats(l, &st);
	SY_CHECK_INT(st.entries, 0);
	SY_CHECK_INT(st.bytes, 0);
	sy_cache_lru_free(l);
}

SY_TEST(l1_replaces_an_entry_and_skips_a_value_larger_than_its_bound)
{
	struct sy_cache_lru *l = sy_cache_lru_new(3000);
	struct sy_cache_lru_stats st;
	unsigned char k[SY_CACHE_KEY_LEN];
	struct sy_cache_value *v;

	put_n(l, 1, 100, 10000);
	put_n(l, 1, 200, 10000);
	key_n(1, k);
	v = sy_cache_lru_get(l, k, 0);
	SY_CHECK(v != NULL && v->len == 200);
	sy_cache_value_unref(v);
	put_n(l, 2, 5000, 10000);
	SY_CHECK(!holds(l, 2, 0));
	SY_CHECK(holds(l, 1, 0));
	sy_cache_lru_stats(l, &st);
	SY_CHECK_INT(st.entries, 1);
	sy_cache_lru_free(l);
}

SY_TEST(l1_holds_many_entries)
{
	struct sy_cache_lru *l = sy_cache_lru_new(1 << 24);
	struct sy_cache_lru_stats st;
	unsigned i, found = 0;

	for (i = 0; i < 5000; i++)
		put_n(l, i, 10, 10000);
	for (i = 0; i < 5000; i++)
		found += holds(l, i, 0);
	SY_CHECK_INT(found, 5000);
	sy_cache_lru_stats(l, &st);
	SY_CHECK_INT(st.entries, 5000);
	sy_cache_lru_free(l);
}

/* ==== Replay and capture ==== */

#define CHAT_ANSWER							\
	"{\"id\":\"c1\",\"object\":\"chat.completion\",\"created\":5,"	\
	"\"model\":\"m\",\"choices\":[{\"index\":0,\"message\":"	\
	"{\"role\":\"assistant\",\"content\":\"one two three four five "	\
	"six\\nseven \\u00e9ight\"},\"finish_reason\":\"stop\"}],"	\
	"\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":8,"	\
	"\"total_tokens\":11}}"

/* A value holding text. */
static struct sy_cache_value *
value_text(const char *text)
{
	return sy_cache_value_new(text, strlen(text), &usage_3_5, 1000);
}

/* The events of out, parsed: data of each event into datas (max n); returns the count. */
static size_t
events_of(struct evbuffer *out, json_t **datas, size_t n)
{
	char *text = malloc(evbuffer_get_length(out) + 1), *p, *q;
	size_t len = evbuffer_get_length(out), i = 0;

	memcpy(text, evbuffer_pullup(out, -1), len);
	text[len] = '\0';
	for (p = text; (q = strstr(p, "\n\n")) != NULL && i < n; p = q + 2) {
		*q = '\0';
		if (strncmp(p, "data: ", 6) != 0) {
			datas[i++] = NULL;
			continue;
		}
		datas[i++] = strcmp(p + 6, "[DONE]") == 0 ?
		    json_string("[DONE]") : json_loads(p + 6, 0, NULL);
	}
	free(text);
	return i;
}

SY_TEST(a_chat_answer_replays_as_chunks_with_the_same_content)
{
	struct sy_cache_value *v = value_text(CHAT_ANSWER);
	struct evbuffer *out = evbuffer_new();
	json_t *ev[32], *d;
	size_t n, i;
	char content[256] = "";

	SY_CHECK_INT(sy_canon_replay(v->body, v->len, SY_API_CHAT, 2, 1, out), 0);
	n = events_of(out, ev, 32);
	SY_CHECK(n >= 6);
	SY_CHECK_STR(json_string_value(json_object_get(json_object_get(
	    json_array_get(json_object_get(ev[0], "choices"), 0), "delta"),
	    "role")), "assistant");
	for (i = 0; i < n - 3; i++) {
		d = json_object_get(json_object_get(json_array_get(
		    json_object_get(ev[i], "choices"), 0), "delta"), "content");
		SY_CHECK_STR(json_string_value(json_object_get(ev[i], "object")),
		    "chat.completion.chunk");
		SY_CHECK_STR(json_string_value(json_object_get(ev[i], "id")),
		    "c1");
		strcat(content, json_string_value(d));
	}
	SY_CHECK_STR(content, "one two three four five six\nseven \xc3\xa9ight");
	SY_CHECK_STR(json_string_value(json_object_get(json_array_get(
	    json_object_get(ev[n - 3], "choices"), 0), "finish_reason")),
	    "stop");
	SY_CHECK_INT(json_array_size(json_object_get(ev[n - 2], "choices")), 0);
	SY_CHECK_INT(json_integer_value(json_object_get(json_object_get(
	    ev[n - 2], "usage"), "completion_tokens")), 8);
	SY_CHECK_STR(json_string_value(ev[n - 1]), "[DONE]");
	for (i = 0; i < n; i++)
		json_decref(ev[i]);
	evbuffer_free(out);
	sy_cache_value_unref(v);
}

SY_TEST(a_replay_carries_usage_only_when_asked)
{
	struct sy_cache_value *v = value_text(CHAT_ANSWER);
	struct evbuffer *out = evbuffer_new();

	SY_CHECK_INT(sy_canon_replay(v->body, v->len, SY_API_CHAT, 4, 0, out), 0);
	SY_CHECK(evbuffer_search(out, "\"usage\"", 7, NULL).pos == -1);
	evbuffer_free(out);
	sy_cache_value_unref(v);
}

SY_TEST(answers_a_stream_cannot_tell_alike_are_not_replayed)
{
	static const char *const answers[] = {
		"{\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
		"\"content\":null,\"tool_calls\":[{\"id\":\"t\",\"type\":"
		"\"function\",\"function\":{\"name\":\"f\",\"arguments\":"
		"\"{}\"}}]},\"finish_reason\":\"tool_calls\"}]}",
		"{\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
		"\"content\":\"a\"},\"finish_reason\":\"stop\"},{\"index\":1,"
		"\"message\":{\"role\":\"assistant\",\"content\":\"b\"},"
		"\"finish_reason\":\"stop\"}]}",
		"{\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
		"\"content\":\"a\"},\"logprobs\":{\"content\":[]},"
		"\"finish_reason\":\"stop\"}]}",
		"{\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
		"\"content\":\"a\\u0000b\"},\"finish_reason\":\"stop\"}]}",
		"not json"
	};
	struct evbuffer *out = evbuffer_new();
	struct sy_cache_value *v;
	size_t i;

	for (i = 0; i < sizeof answers / sizeof answers[0]; i++) {
		v = value_text(answers[i]);
		SY_CHECK_INT(sy_canon_replay(v->body, v->len, SY_API_CHAT, 4, 1, out), -1);
		sy_cache_value_unref(v);
	}
	SY_CHECK_INT(evbuffer_get_length(out), 0);
	evbuffer_free(out);
}

/* Feeds out to a new capture for api in pieces of step bytes; returns the answer (malloc'd) or NULL. */
static char *
capture_all(int api, struct evbuffer *out, size_t step,
    const struct sy_usage *u)
{
	struct sy_canon_capture *cap = sy_canon_capture_new(api);
	const char *p = (const char *)evbuffer_pullup(out, -1);
	size_t len = evbuffer_get_length(out), i, n, alen;
	char *answer;

	for (i = 0; i < len; i += n) {
		n = len - i < step ? len - i : step;
		sy_canon_capture_feed(cap, p + i, n);
	}
	answer = sy_canon_capture_answer(cap, u, &alen);
	sy_canon_capture_free(cap);
	return answer;
}

SY_TEST(a_replayed_stream_captured_again_is_the_same_answer)
{
	struct sy_cache_value *v = value_text(CHAT_ANSWER);
	struct evbuffer *out = evbuffer_new();
	struct sy_usage none = { -1, -1, -1 };
	json_t *a, *b;
	char *answer;

	SY_CHECK_INT(sy_canon_replay(v->body, v->len, SY_API_CHAT, 3, 1, out), 0);
	answer = capture_all(SY_API_CHAT, out, 7, &none);
	SY_CHECK(answer != NULL);
	a = json_loads(CHAT_ANSWER, 0, NULL);
	b = answer ? json_loads(answer, 0, NULL) : NULL;
	json_object_set_new(json_array_get(json_object_get(a, "choices"), 0),
	    "logprobs", json_null());
	SY_CHECK(json_equal(a, b));
	json_decref(a);
	json_decref(b);
	free(answer);
	evbuffer_free(out);
	sy_cache_value_unref(v);
}

SY_TEST(a_completions_stream_is_captured_with_the_requests_usage)
{
	static const char stream[] =
	    "data: {\"id\":\"k\",\"object\":\"text_completion\",\"created\":1,"
	    "\"model\":\"m\",\"choices\":[{\"text\":\" a\",\"index\":0,"
	    "\"logprobs\":null,\"finish_reason\":null}]}\n\n"
	    "data: {\"id\":\"k\",\"object\":\"text_completion\",\"created\":1,"
	    "\"model\":\"m\",\"choices\":[{\"text\":\" b\",\"index\":0,"
	    "\"logprobs\":null,\"finish_reason\":\"length\"}]}\n\n"
	    "data: [DONE]\n\n";
	struct evbuffer *out = evbuffer_new();
	struct sy_usage u = { 4, 2, -1 };
	json_t *a;
	char *answer;

	evbuffer_add(out, stream, sizeof stream - 1);
	answer = capture_all(SY_API_COMPLETIONS, out, 5, &u);
	a = answer ? json_loads(answer, 0, NULL) : NULL;
	SY_CHECK_STR(json_string_value(json_object_get(a, "object")),
	    "text_completion");
	SY_CHECK_STR(json_string_value(json_object_get(json_array_get(
	    json_object_get(a, "choices"), 0), "text")), " a b");
	SY_CHECK_INT(json_integer_value(json_object_get(json_object_get(a,
	    "usage"), "total_tokens")), 6);
	json_decref(a);
	free(answer);
	evbuffer_free(out);
}

SY_TEST(a_capture_is_done_at_done_or_at_what_spoils_it)
{
	static const char chunk[] = "data: {\"id\":\"c\",\"choices\":[{\"index\":"
	    "0,\"delta\":{\"role\":\"assistant\",\"content\":\"a\"},"
	    "\"finish_reason\":\"stop\"}]}\n\n";
	struct sy_canon_capture *cap = sy_canon_capture_new(SY_API_CHAT);

	sy_canon_capture_feed(cap, chunk, sizeof chunk - 1);
	SY_CHECK(!sy_canon_capture_done(cap));
	sy_canon_capture_feed(cap, "data: [DO", 9);
	SY_CHECK(!sy_canon_capture_done(cap));
	sy_canon_capture_feed(cap, "NE]\n\n", 5);
	SY_CHECK(sy_canon_capture_done(cap));
	sy_canon_capture_free(cap);
	cap = sy_canon_capture_new(SY_API_CHAT);
	sy_canon_capture_feed(cap, "data: {\"error\":{}}\n\n", 21);
	SY_CHECK(sy_canon_capture_done(cap));
	sy_canon_capture_free(cap);
}

SY_TEST(streams_that_cannot_be_stored_give_no_answer)
{
	static const char *const streams[] = {
		/* no [DONE]: cut short */
		"data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":"
		"{\"role\":\"assistant\",\"content\":\"a\"},"
		"\"finish_reason\":\"stop\"}]}\n\n",
		/* a tool call */
		"data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":"
		"{\"role\":\"assistant\",\"tool_calls\":[{\"index\":0}]},"
		"\"finish_reason\":\"tool_calls\"}]}\n\ndata: [DONE]\n\n",
		/* an error event */
		"data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":"
		"{\"role\":\"assistant\",\"content\":\"a\"},"
		"\"finish_reason\":null}]}\n\ndata: {\"error\":{\"message\":"
		"\"x\"}}\n\ndata: [DONE]\n\n",
		/* logprobs */
		"data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":"
		"{\"role\":\"assistant\",\"content\":\"a\"},\"logprobs\":"
		"{\"content\":[]},\"finish_reason\":\"stop\"}]}\n\n"
		"data: [DONE]\n\n",
		/* a second choice */
		"data: {\"id\":\"c\",\"choices\":[{\"index\":1,\"delta\":"
		"{\"role\":\"assistant\",\"content\":\"a\"},"
		"\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n",
		/* no finish reason */
		"data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":"
		"{\"role\":\"assistant\",\"content\":\"a\"}}]}\n\n"
		"data: [DONE]\n\n"
	};
	struct sy_usage u = { 1, 1, -1 };
	struct evbuffer *out;
	char *answer;
	size_t i;

	for (i = 0; i < sizeof streams / sizeof streams[0]; i++) {
		out = evbuffer_new();
		evbuffer_add(out, streams[i], strlen(streams[i]));
		answer = capture_all(SY_API_CHAT, out, 11, &u);
		if (answer != NULL) {
			printf("# stream %zu gave %s\n", i, answer);
			SY_CHECK(0);
		}
		free(answer);
		evbuffer_free(out);
	}
}

int
main(void)
{
	SY_RUN(keys_in_another_order_give_the_same_key);
	SY_RUN(a_whole_number_written_as_a_real_gives_the_same_key);
	SY_RUN(every_parameter_that_changes_the_answer_changes_the_key);
	SY_RUN(namespace_api_and_selected_model_are_in_the_key);
	SY_RUN(stream_and_stream_options_share_the_key_of_a_whole_request);
	SY_RUN(a_body_that_is_not_an_object_has_no_key);
	SY_RUN(key_hex_is_64_lowercase_digits_of_sha256);
	SY_RUN(deterministic_means_temperature_zero_a_seed_or_embeddings);
	SY_RUN(cache_control_directives_are_read);
	SY_RUN(cache_control_ignores_unknown_and_malformed_directives);
	SY_RUN(values_survive_encoding);
	SY_RUN(malformed_values_are_refused);
	SY_RUN(l1_keeps_within_its_bytes_and_evicts_the_least_recently_used);
	SY_RUN(l1_entries_expire);
	SY_RUN(l1_replaces_an_entry_and_skips_a_value_larger_than_its_bound);
	SY_RUN(l1_holds_many_entries);
	SY_RUN(a_chat_answer_replays_as_chunks_with_the_same_content);
	SY_RUN(a_replay_carries_usage_only_when_asked);
	SY_RUN(answers_a_stream_cannot_tell_alike_are_not_replayed);
	SY_RUN(a_replayed_stream_captured_again_is_the_same_answer);
	SY_RUN(a_completions_stream_is_captured_with_the_requests_usage);
	SY_RUN(a_capture_is_done_at_done_or_at_what_spoils_it);
	SY_RUN(streams_that_cannot_be_stored_give_no_answer);
	return sy_test_done();
}
