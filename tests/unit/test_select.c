/* Unit tests of the model-selection policies: rules, weighted, cascade, cost_slo, and their shared request features and answers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "canon.h"
#include "config.h"
#include "http1.h"
#include "policy.h"
#include "req.h"
#include "select.h"
#include "sy_test.h"
#include "sy_test_req.h"

/* A config with one route "r" serving small, mid and big, with selection sel. */
static struct sy_config *
load_sel(const char *sel)
{
	struct sy_config *cfg;
	char text[4096], *err = NULL;

	snprintf(text, sizeof text, "{\"backends\": ["
	    "{\"name\": \"b\", \"url\": \"http://127.0.0.1:9001/v1\"}],"
	    "\"routes\": [{\"name\": \"r\", \"models\": [\"small\", \"mid\", "
	    "\"big\"], \"aliases\": {\"auto\": \"mid\"}, \"selection\": %s}],"
	    "\"prices\": {\"small\": {\"input\": 0.1, \"output\": 0.2},"
	    "\"mid\": {\"input\": 1, \"output\": 2},"
	    "\"big\": {\"input\": 5, \"output\": 10}}}", sel);
	if (sy_config_load_string(text, "t.json", &cfg, &err) != 0) {
		printf("# unexpected error: %s\n", err);
		free(err);
		exit(2);
	}
	return cfg;
}

/* The model route r of cfg selects for the chat request text; *reason set. */
static const char *
pick(struct sy_config *cfg, const char *text, const char **reason)
{
	struct sy_route *r = &cfg->routes[0];
	struct sy_req *req = sy_test_req(SY_API_CHAT, text, NULL);

	req->route = r;
	return r->selection->select(r->selection_state, r, req, reason);
}

/* A request head holding one header. */
static struct sy_http1_msg *
head_with(const char *name, const char *value)
{
	static struct sy_http1_msg m;
	static struct sy_http1_header h;

	memset(&m, 0, sizeof m);
	h.name = (char *)name;
	h.value = (char *)value;
	m.headers = &h;
	m.nheaders = 1;
	return &m;
}

#define USER(text) "{\"model\":\"auto\",\"messages\":[{\"role\":\"user\"," \
	"\"content\":\"" text "\"}]"

/* ==== Request features ==== */

SY_TEST(prompt_tokens_are_text_bytes_over_four)
{
	struct sy_req *req = sy_test_req(SY_API_CHAT, "{\"model\":\"m\","
	    "\"messages\":[{\"role\":\"system\",\"content\":\"12345678\"},"
	    "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":"
	    "\"abcdefghi\"},{\"type\":\"image_url\",\"image_url\":{\"url\":"
	    "\"http://x/long-url-not-counted\"}}]}]}", NULL);

	SY_CHECK_INT(sy_select_prompt_tokens(req), 5);	/* 17 bytes */
	SY_CHECK_INT(sy_select_messages(req), 2);
	SY_CHECK(sy_select_has_images(req));
	SY_CHECK(!sy_select_has_tools(req));
}

SY_TEST(last_user_message_is_the_last_one_with_role_user)
{
	struct sy_req *req = sy_test_req(SY_API_CHAT, "{\"model\":\"m\","
	    "\"messages\":[{\"role\":\"user\",\"content\":\"first\"},"
	    "{\"role\":\"assistant\",\"content\":\"reply\"},"
	    "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":"
	    "\"second\"},{\"type\":\"text\",\"text\":\"part\"}]}]}", NULL);
	char *text = sy_select_last_user(req);

	SY_CHECK_STR(text, "second\npart");
	free(text);
}

SY_TEST(response_format_json_and_max_tokens_are_read)
{
	struct sy_req *req = sy_test_req(SY_API_CHAT, USER("x")
	    ",\"response_format\":{\"type\":\"json_object\"},"
	    "\"max_completion_tokens\":77}", NULL);

	SY_CHECK(sy_select_has_response_format(req));
	SY_CHECK(sy_select_wants_json(req));
	SY_CHECK_INT(sy_select_max_tokens(req), 77);
	req = sy_test_req(SY_API_CHAT, USER("x")
	    ",\"response_format\":{\"type\":\"text\"}}", NULL);
	SY_CHECK(!sy_select_has_response_format(req));
	SY_CHECK_INT(sy_select_max_tokens(req), 0);
}

/* ==== rules ==== */

static const char *rules_conf =
    "{\"name\": \"rules\", \"rules\": ["
    "{\"min_prompt_tokens\": 10, \"model\": \"big\"},"
    "{\"tools\": true, \"model\": \"big\"},"
    "{\"images\": true, \"model\": \"mid\"},"
    "{\"response_format\": true, \"model\": \"mid\"},"
    "{\"last_user\": \"^(prove|derive) \", \"model\": \"big\"},"
    "{\"headers\": {\"x-tier\": \"^gold$\"}, \"model\": \"big\"},"
    "{\"metadata\": {\"team\": \"research\"}, \"model\": \"mid\"},"
    "{\"min_messages\": 3, \"model\": \"mid\"}],"
    "\"default\": \"small\"}";

SY_TEST(rules_first_match_wins_by_each_condition)
{
	struct sy_config *cfg = load_sel(rules_conf);
	const char *why;

	SY_CHECK_STR(pick(cfg, USER("hi") "}", &why), "small");
	SY_CHECK_STR(why, "default");
	SY_CHECK_STR(pick(cfg, USER("this prompt is well over forty "
	    "bytes long, surely") "}", &why), "big");
	SY_CHECK_STR(why, "rule:0");
	SY_CHECK_STR(pick(cfg, USER("hi") ",\"tools\":[{\"type\":"
	    "\"function\",\"function\":{\"name\":\"f\"}}]}", &why), "big");
	SY_CHECK_STR(why, "rule:1");
	SY_CHECK_STR(pick(cfg, "{\"model\":\"auto\",\"messages\":[{\"role\":"
	    "\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":"
	    "{\"url\":\"u\"}}]}]}", &why), "mid");
	SY_CHECK_STR(why, "rule:2");
	SY_CHECK_STR(pick(cfg, USER("hi") ",\"response_format\":{\"type\":"
	    "\"json_object\"}}", &why), "mid");
	SY_CHECK_STR(why, "rule:3");
	SY_CHECK_STR(pick(cfg, USER("prove it") "}", &why), "big");
	SY_CHECK_STR(why, "rule:4");
	SY_CHECK_STR(pick(cfg, USER("disprove") "}", &why), "small");
	SY_CHECK_STR(pick(cfg, USER("hi") ",\"metadata\":{\"team\":"
	    "\"research\"}}", &why), "mid");
	SY_CHECK_STR(why, "rule:6");
	SY_CHECK_STR(pick(cfg, "{\"model\":\"auto\",\"messages\":["
	    "{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"assistant\","
	    "\"content\":\"b\"},{\"role\":\"user\",\"content\":\"c\"}]}",
	    &why), "mid");
	SY_CHECK_STR(why, "rule:7");
	sy_config_unref(cfg);
}

SY_TEST(rules_match_a_request_header)
{
	struct sy_config *cfg = load_sel(rules_conf);
	struct sy_route *r = &cfg->routes[0];
	struct sy_req *req = sy_test_req(SY_API_CHAT, USER("hi") "}", NULL);
	const char *why;

	req->route = r;
	req->head = head_with("X-Tier", "gold");
	SY_CHECK_STR(r->selection->select(r->selection_state, r, req, &why),
	    "big");
	SY_CHECK_STR(why, "rule:5");
	req->head = head_with("X-Tier", "golden");
	SY_CHECK_STR(r->selection->select(r->selection_state, r, req, &why),
	    "small");
	sy_config_unref(cfg);
}

SY_TEST(rules_without_default_keep_the_clients_model)
{
	struct sy_config *cfg = load_sel("{\"name\": \"rules\", \"rules\": "
	    "[{\"tools\": true, \"model\": \"big\"}]}");
	const char *why;

	SY_CHECK_STR(pick(cfg, USER("hi") "}", &why), "mid");
	SY_CHECK_STR(why, "alias");
	sy_config_unref(cfg);
}

/* ==== weighted ==== */

SY_TEST(weighted_splits_by_weight)
{
	struct sy_config *cfg = load_sel("{\"name\": \"weighted\", "
	    "\"models\": {\"small\": 3, \"big\": 1, \"mid\": 0}}");
	const char *why, *m;
	int small = 0, big = 0, i;

	for (i = 0; i < 400; i++) {
		m = pick(cfg, USER("hi") "}", &why);
		small += strcmp(m, "small") == 0;
		big += strcmp(m, "big") == 0;
	}
	SY_CHECK_INT(small, 300);
	SY_CHECK_INT(big, 100);
	SY_CHECK_STR(why, "weighted");
	sy_config_unref(cfg);
}

SY_TEST(weighted_sticky_user_keeps_a_user_on_one_model)
{
	struct sy_config *cfg = load_sel("{\"name\": \"weighted\", "
	    "\"models\": {\"small\": 1, \"big\": 1}, \"sticky\": \"user\"}");
	char text[256];
	const char *why, *first;
	int i, u, seen_small = 0, seen_big = 0, moved = 0;

	for (u = 0; u < 40; u++) {
		snprintf(text, sizeof text, USER("hi") ",\"user\":\"u%d\"}", u);
		first = pick(cfg, text, &why);
		for (i = 0; i < 5; i++)
			moved += strcmp(pick(cfg, text, &why), first) != 0;
		seen_small += strcmp(first, "small") == 0;
		seen_big += strcmp(first, "big") == 0;
	}
	SY_CHECK_INT(moved, 0);
	SY_CHECK(seen_small > 5 && seen_big > 5);
	SY_CHECK_STR(why, "sticky");
	sy_config_unref(cfg);
}

/* ==== cascade ==== */

/* The cascade's verdict on an answer (body or stream) to request text. */
static const char *
verdict(struct sy_config *cfg, const char *text, int status,
    const char *answer, int stream)
{
	struct sy_route *r = &cfg->routes[0];
	struct sy_req *req = sy_test_req(SY_API_CHAT, text, NULL);
	struct evbuffer *data = evbuffer_new();
	const char *why = NULL;
	struct sy_answer a;
	int esc;

	req->route = r;
	evbuffer_add(data, answer, strlen(answer));
	sy_canon_answer_read(&a, status, data, stream);
	esc = r->selection->check(r->selection_state, req, &a, &why);
	sy_canon_answer_clear(&a);
	evbuffer_free(data);
	return esc ? why : "kept";
}

#define BODY(content, finish) "{\"choices\":[{\"index\":0,\"message\":" \
	"{\"role\":\"assistant\",\"content\":\"" content "\"},"		\
	"\"finish_reason\":\"" finish "\"}]}"

static const char *cascade_conf = "{\"name\": \"cascade\", "
    "\"models\": [\"small\", \"big\"], \"on\": [\"error\", \"length\", "
    "\"refusal\", \"invalid_json\", \"too_short\"], "
    "\"refusal\": \"^ ?I (cannot|can't)\", \"min_chars\": 5}";

SY_TEST(cascade_starts_cheap_and_escalates_to_the_next)
{
	struct sy_config *cfg = load_sel(cascade_conf);
	struct sy_route *r = &cfg->routes[0];
	const char *why;

	SY_CHECK_STR(pick(cfg, USER("hi") "}", &why), "small");
	SY_CHECK_STR(why, "cascade");
	SY_CHECK_STR(r->selection->next(r->selection_state, "small"), "big");
	SY_CHECK(r->selection->next(r->selection_state, "big") == NULL);
	SY_CHECK(r->selection->next(r->selection_state, "mid") == NULL);
	sy_config_unref(cfg);
}

SY_TEST(cascade_escalates_exactly_when_a_check_fails)
{
	struct sy_config *cfg = load_sel(cascade_conf);
	const char *q = USER("hi") "}";
	const char *qjson = USER("hi") ",\"response_format\":{\"type\":"
	    "\"json_object\"}}";

	SY_CHECK_STR(verdict(cfg, q, 200, BODY("a fine answer", "stop"), 0),
	    "kept");
	SY_CHECK_STR(verdict(cfg, q, 200, BODY("a fine answer", "length"), 0),
	    "escalated:length");
	SY_CHECK_STR(verdict(cfg, q, 500, "{\"error\":{\"message\":\"x\"}}",
	    0), "escalated:error");
	SY_CHECK_STR(verdict(cfg, q, 0, "", 0), "escalated:error");
	SY_CHECK_STR(verdict(cfg, q, 200, BODY("I cannot help with that",
	    "stop"), 0), "escalated:refusal");
	SY_CHECK_STR(verdict(cfg, q, 200, BODY("Why I cannot say", "stop"),
	    0), "kept");
	SY_CHECK_STR(verdict(cfg, qjson, 200, BODY("not json at all", "stop"),
	    0), "escalated:invalid_json");
	SY_CHECK_STR(verdict(cfg, qjson, 200, BODY("{\\\"a\\\": 1}", "stop"),
	    0), "kept");
	SY_CHECK_STR(verdict(cfg, q, 200, BODY("ok", "stop"), 0),
	    "escalated:too_short");
	SY_CHECK_STR(verdict(cfg, q, 200, BODY("\\u00e9\\u00e9\\u00e9\\u00e9"
	    "\\u00e9", "stop"), 0), "kept");
	sy_config_unref(cfg);
}

SY_TEST(cascade_reads_a_held_stream)
{
	struct sy_config *cfg = load_sel(cascade_conf);
	const char *q = USER("hi") "}";

	SY_CHECK_STR(verdict(cfg, q, 200,
	    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":"
	    "\"hello \"},\"finish_reason\":null}]}\n\n"
	    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":"
	    "\"world\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n",
	    1), "kept");
	SY_CHECK_STR(verdict(cfg, q, 200,
	    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":"
	    "\"hello world\"},\"finish_reason\":\"length\"}]}\n\n"
	    "data: [DONE]\n\n", 1), "escalated:length");
	SY_CHECK_STR(verdict(cfg, q, 200,
	    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":"
	    "\"hello world\"},\"finish_reason\":null}]}\n\n"
	    "data: {\"error\":{\"message\":\"boom\"}}\n\n", 1),
	    "escalated:error");
	SY_CHECK_STR(verdict(cfg, q, 200,
	    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":"
	    "\"hello world\"},\"finish_reason\":null}]}\n\n", 1),
	    "escalated:error");
	sy_config_unref(cfg);
}

SY_TEST(cascade_checks_only_what_on_lists)
{
	struct sy_config *cfg = load_sel("{\"name\": \"cascade\", "
	    "\"models\": [\"small\", \"mid\", \"big\"], \"on\": [\"length\"]}");
	struct sy_route *r = &cfg->routes[0];
	const char *q = USER("hi") "}";

	SY_CHECK_STR(verdict(cfg, q, 500, "{\"error\":{}}", 0), "kept");
	SY_CHECK_STR(verdict(cfg, q, 200, BODY("x", "stop"), 0), "kept");
	SY_CHECK_STR(verdict(cfg, q, 200, BODY("x", "length"), 0),
	    "escalated:length");
	SY_CHECK_STR(r->selection->next(r->selection_state, "mid"), "big");
	sy_config_unref(cfg);
}

/* ==== cost_slo ==== */

/* Tells route r of cfg that a try on model took latency_ms (ttft_ms: 0 whole). */
static void
observe(struct sy_config *cfg, const char *model, unsigned latency_ms,
    unsigned ttft_ms, int n)
{
	struct sy_route *r = &cfg->routes[0];
	struct sy_outcome o = { 200, (uint64_t)latency_ms * 1000,
	    (uint64_t)ttft_ms * 1000 };

	while (n-- > 0)
		r->selection->observe(r->selection_state, model, &o);
}

SY_TEST(cost_slo_takes_the_cheapest_model_meeting_the_slo)
{
	struct sy_config *cfg = load_sel("{\"name\": \"cost_slo\", "
	    "\"models\": [\"big\", \"small\", \"mid\"], \"p95_latency_ms\": "
	    "100, \"probe_every\": 0}");
	const char *why;

	SY_CHECK_STR(pick(cfg, USER("hi") "}", &why), "small");
	SY_CHECK_STR(why, "slo-ok:small");
	observe(cfg, "small", 50, 0, 10);
	SY_CHECK_STR(pick(cfg, USER("hi") "}", &why), "small");
	observe(cfg, "small", 300, 0, 2);	/* 2 of 12 slow: p95 300 ms */
	SY_CHECK_STR(pick(cfg, USER("hi") "}", &why), "mid");
	SY_CHECK_STR(why, "slo-miss:mid");
	observe(cfg, "mid", 400, 0, 5);
	observe(cfg, "big", 200, 0, 5);
	SY_CHECK_STR(pick(cfg, USER("hi") "}", &why), "big");
	SY_CHECK_STR(why, "slo-none:big");
	sy_config_unref(cfg);
}

SY_TEST(cost_slo_judges_streams_by_ttft)
{
	struct sy_config *cfg = load_sel("{\"name\": \"cost_slo\", "
	    "\"models\": [\"small\", \"big\"], \"p95_ttft_ms\": 100, "
	    "\"probe_every\": 0}");
	const char *why;

	observe(cfg, "small", 5000, 50, 5);	/* long answers, fast start */
	SY_CHECK_STR(pick(cfg, USER("hi") "}", &why), "small");
	observe(cfg, "small", 5000, 500, 5);
	SY_CHECK_STR(pick(cfg, USER("hi") "}", &why), "big");
	sy_config_unref(cfg);
}

SY_TEST(cost_slo_probes_the_cheapest_and_forgets_old_samples)
{
	struct sy_config *cfg = load_sel("{\"name\": \"cost_slo\", "
	    "\"models\": [\"small\", \"big\"], \"p95_latency_ms\": 100, "
	    "\"probe_every\": 4, \"window_ms\": 200}");
	const char *why;
	int i, probes = 0;

	observe(cfg, "small", 500, 0, 3);
	for (i = 0; i < 12; i++)
		probes += strcmp(pick(cfg, USER("hi") "}", &why), "small") == 0;
	SY_CHECK_INT(probes, 3);
	usleep(250 * 1000);
	SY_CHECK_STR(pick(cfg, USER("hi") "}", &why), "small");
	SY_CHECK_STR(why, "slo-ok:small");
	sy_config_unref(cfg);
}

int
main(void)
{
	SY_RUN(prompt_tokens_are_text_bytes_over_four);
	SY_RUN(last_user_message_is_the_last_one_with_role_user);
	SY_RUN(response_format_json_and_max_tokens_are_read);
	SY_RUN(rules_first_match_wins_by_each_condition);
	SY_RUN(rules_match_a_request_header);
	SY_RUN(rules_without_default_keep_the_clients_model);
	SY_RUN(weighted_splits_by_weight);
	SY_RUN(weighted_sticky_user_keeps_a_user_on_one_model);
	SY_RUN(cascade_starts_cheap_and_escalates_to_the_next);
	SY_RUN(cascade_escalates_exactly_when_a_check_fails);
	SY_RUN(cascade_reads_a_held_stream);
	SY_RUN(cascade_checks_only_what_on_lists);
	SY_RUN(cost_slo_takes_the_cheapest_model_meeting_the_slo);
	SY_RUN(cost_slo_judges_streams_by_ttft);
	SY_RUN(cost_slo_probes_the_cheapest_and_forgets_old_samples);
	return sy_test_done();
}
