/* Unit tests of each stage without sockets: an exchange on a config snapshot from JSON text, each stage's enter called by hand, and what it leaves on the exchange (verdict, reply, decisions, the access-log line its end writes). */
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "accesslog.h"
#include "cache.h"
#include "canon.h"
#include "clientapi.h"
#include "config.h"
#include "exchange.h"
#include "http1.h"
#include "metrics.h"
#include "respond.h"
#include "util.h"
#include "worker.h"
#include "sy_test.h"

/* ==== A worker without a listener, upstreams or Redis ==== */

static struct sy_runtime rt;
static struct sy_worker w;
static char log_path[] = "/tmp/sy-test-stages-XXXXXX";

/* Sets up the fake worker: an event base, metrics, an access log in a temporary file. */
static void
worker_init(void)
{
	char *err = NULL;
	int fd;

	if ((fd = mkstemp(log_path)) == -1)
		exit(2);
	close(fd);
	rt.metrics = sy_metrics_new(1);
	if ((rt.log = sy_accesslog_open(log_path, 0, &err)) == NULL) {
		printf("# %s\n", err);
		exit(2);
	}
	w.rt = &rt;
	w.base = event_base_new();
	w.metrics = sy_metrics_shard(rt.metrics, 0);
	sy_tries_worker_init(&w);
	sy_batch_worker_init(&w);
}

static void
worker_free(void)
{
	sy_batch_worker_stop(&w);
	sy_batch_worker_free(&w);
	sy_tries_worker_free(&w);
	sy_cache_worker_free(w.cache);
	if (rt.cache != NULL)
		sy_cache_free(rt.cache);
	sy_accesslog_close(rt.log);
	sy_metrics_free(rt.metrics);
	event_base_free(w.base);
	unlink(log_path);
}

/* The access log's last line as JSON (the caller decrefs), or NULL. */
static json_t *
last_log_line(void)
{
	char buf[65536], *line, *end;
	ssize_t n;
	int fd = open(log_path, O_RDONLY);

	if (fd == -1)
		return NULL;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	for (end = buf + n; end > buf && end[-1] == '\n'; end--)
		*(end - 1) = '\0';
	line = strrchr(buf, '\n');
	return json_loads(line != NULL ? line + 1 : buf, 0, NULL);
}

/* A config snapshot from text; exits when it does not load. */
static struct sy_config *
config(const char *text)
{
	struct sy_config *cfg;
	char *err = NULL;

	if (sy_config_load_string(text, "t.json", &cfg, &err) != 0) {
		printf("# config: %s\n", err);
		exit(2);
	}
	return cfg;
}

/* ==== Exchanges made by hand ==== */

/* A client's exchange and what the server would have given it. */
struct bench {
	struct sy_exchange *x;
	struct evbuffer *body;
	struct sy_http1_msg head;
	struct sy_http1_header headers[1];
};

/*
 * A client exchange on cfg for method path with body (NULL: empty) and
 * a header h: v (h NULL: none), as the server hands one to the pipeline.
 */
static void
bench_new(struct bench *b, struct sy_config *cfg, const char *method,
    const char *path, const char *body, const char *h, const char *v)
{
	struct sy_req *req;

	memset(b, 0, sizeof *b);
	b->x = sy_exchange_new(&w, cfg, SY_EXCHANGE_CLIENT);
	req = &b->x->req;
	b->body = evbuffer_new();
	if (body != NULL)
		evbuffer_add(b->body, body, strlen(body));
	b->head.headers = b->headers;
	if (h != NULL) {
		b->headers[0].name = (char *)h;
		b->headers[0].value = (char *)v;
		b->head.nheaders = 1;
	}
	req->head = &b->head;
	req->raw = b->body;
	req->bytes_in = evbuffer_get_length(b->body);
	snprintf(req->method, sizeof req->method, "%s", method);
	req->path = sy_xstrdup(path);
}

/* Ends the exchange as the driver does (every end hook, the log line). */
static void
bench_end(struct bench *b)
{
	sy_exchange_end(b->x);
	evbuffer_free(b->body);
}

/*
 * Enters stage s as the driver would: a verdict that comes while the stage
 * runs is noted, and a stage that waits gets the event loop until it
 * resumes (bounded).  Returns the verdict.
 */
static enum sy_verdict
enter(struct sy_exchange *x, const struct sy_stage *s)
{
	enum sy_verdict v;
	int turns;

	x->driving = 1;
	v = s->enter(x);
	for (turns = 0; v == SY_WAIT && !x->resumed && turns < 200; turns++) {
		event_base_loop(w.base, EVLOOP_NONBLOCK);
		if (!x->resumed)
			usleep(1000);
	}
	if (v == SY_WAIT && x->resumed)
		v = x->resume;
	x->resumed = 0;
	x->driving = 0;
	return v;
}

/* Runs the event loop until a verdict comes for x, which waits (for a second at most); 1 when one came. */
static int
await_verdict(struct sy_exchange *x)
{
	int turns;

	x->driving = 1;
	for (turns = 0; !x->resumed && turns < 5000; turns++) {
		event_base_loop(w.base, EVLOOP_NONBLOCK);
		if (!x->resumed)
			usleep(200);
	}
	x->driving = 0;
	return x->resumed;
}

/*
 * Enters the stages of the path up to, not including, last; each must say
 * NEXT (else the program stops: the stage under test would see an
 * exchange no driver hands it).
 */
static void
through(struct sy_exchange *x, const struct sy_stage *last)
{
	static const struct sy_stage *const path[] = {
		&sy_stage_front, &sy_stage_auth, &sy_stage_route,
		&sy_stage_select, &sy_stage_admit, &sy_stage_cache,
		&sy_stage_batch
	};
	enum sy_verdict v;
	size_t i;

	for (i = 0; i < sizeof path / sizeof path[0] && path[i] != last; i++)
		if ((v = enter(x, path[i])) != SY_NEXT) {
			printf("# %s said %d\nnot ok - the path to %s\n",
			    path[i]->name, (int)v, last->name);
			exit(1);
		}
}

/* A POST to path with body and header h: v (as bench_new) entered into stage s after the stages before it; the verdict. */
static enum sy_verdict
reach(struct bench *b, struct sy_config *cfg, const char *path,
    const char *body, const char *h, const char *v, const struct sy_stage *s)
{
	bench_new(b, cfg, "POST", path, body, h, v);
	through(b->x, s);
	return enter(b->x, s);
}

/* The reply's body as JSON (the caller decrefs). */
static json_t *
reply_json(const struct sy_exchange *x)
{
	if (x->reply.body == NULL)
		return NULL;
	return json_loadb((const char *)evbuffer_pullup(x->reply.body, -1),
	    evbuffer_get_length(x->reply.body), 0, NULL);
}

/* The string at a dotted path of the reply's body ("error.code", "choices.0.text"), copied into a static buffer; NULL when absent. */
static const char *
reply_str(const struct sy_exchange *x, const char *path)
{
	static char out[1024];
	char buf[128], *tok, *save;
	json_t *o = reply_json(x), *v = o;

	snprintf(buf, sizeof buf, "%s", path);
	for (tok = strtok_r(buf, ".", &save); tok != NULL && v != NULL;
	    tok = strtok_r(NULL, ".", &save))
		v = json_is_array(v) ? json_array_get(v, (size_t)atoi(tok)) :
		    json_object_get(v, tok);
	if (!json_is_string(v)) {
		json_decref(o);
		return NULL;
	}
	snprintf(out, sizeof out, "%s", json_string_value(v));
	json_decref(o);
	return out;
}

#define CHAT(model) "{\"model\":\"" model "\",\"messages\":[{\"role\":" \
	"\"user\",\"content\":\"hi\"}]}"

/* Two routes: chat (small, big; falls back to other) and other. */
static const char base_conf[] = "{\"backends\": [{\"name\": \"a\", "
    "\"url\": \"http://127.0.0.1:9001/v1\"}], \"routes\": ["
    "{\"name\": \"chat\", \"models\": [\"small\", \"big\"], "
    "\"aliases\": {\"fast\": \"small\"}, \"fallbacks\": [\"other\"]},"
    "{\"name\": \"other\", \"models\": [\"other-m\"]}]}";

/* Keys required: good (any route), narrow (route other only), limited (1 request a minute). */
static const char keys_conf[] = "{\"backends\": [{\"name\": \"a\", "
    "\"url\": \"http://127.0.0.1:9001/v1\"}], \"routes\": ["
    "{\"name\": \"chat\", \"models\": [\"small\", \"big\"]},"
    "{\"name\": \"other\", \"models\": [\"other-m\"]}],"
    "\"auth\": \"keys\", \"keys\": ["
    "{\"id\": \"good\", \"team\": \"t1\", \"hash\": \"sha256:"
    "0df5a12d9c83d8ac735d024d9b421f3f7553831e52bae13bed5c92c0ec1d4b0d\"},"
    "{\"id\": \"narrow\", \"routes\": [\"other\"], \"hash\": \"sha256:"
    "1b7600fb637beb84f1d091588b8e78082611ea7ec2d45fcbf3c6e7ba133c14bc\"},"
    "{\"id\": \"limited\", \"rate_limits\": [{\"requests\": 1, "
    "\"window_s\": 60}], \"hash\": \"sha256:"
    "716d9331d7ad666bd3c016548a20f4af914f281255463802599abfd141e4609a\"}]}";

/* The keys whose hashes keys_conf holds. */
#define KEY_GOOD "Bearer sk-test-good"
#define KEY_NARROW "Bearer sk-demo-research-4f9a1c"
#define KEY_LIMITED "Bearer sk-test-limited"

/* ==== front ==== */

SY_TEST(front_takes_an_openai_path_and_parses_the_request)
{
	struct sy_config *cfg = config(base_conf);
	struct bench b;

	bench_new(&b, cfg, "POST", "/v1/chat/completions", CHAT("small"),
	    NULL, NULL);
	SY_CHECK_INT(enter(b.x, &sy_stage_front), SY_NEXT);
	SY_CHECK(b.x->client == &sy_client_openai);
	SY_CHECK_INT(b.x->req.api, SY_API_CHAT);
	SY_CHECK_STR(b.x->req.client_model, "small");
	SY_CHECK_STR(b.x->req.client_api, "openai");
	bench_end(&b);
	sy_config_unref(cfg);
}

SY_TEST(front_takes_every_dialects_paths)
{
	struct sy_config *cfg = config(base_conf);
	const struct sy_client_api *c;
	const struct sy_client_path *p;
	struct bench b;
	size_t i;

	for (i = 0; (c = sy_client_api_at(i)) != NULL; i++)
		for (p = c->paths; p->path != NULL; p++) {
			bench_new(&b, cfg, "POST", p->path, "{", NULL, NULL);
			/* A body that is not JSON: 400, in the path's dialect. */
			SY_CHECK_INT(enter(b.x, &sy_stage_front), SY_RESPOND);
			SY_CHECK(b.x->client == c);
			SY_CHECK_INT(b.x->reply.status, 400);
			SY_CHECK_STR(reply_str(b.x, "error.type"),
			    "invalid_request_error");
			bench_end(&b);
		}
	sy_config_unref(cfg);
}

SY_TEST(front_translates_an_anthropic_request_to_the_canonical_form)
{
	struct sy_config *cfg = config(base_conf);
	struct bench b;

	bench_new(&b, cfg, "POST", "/v1/messages", "{\"model\":\"big\","
	    "\"max_tokens\":5,\"system\":\"be brief\",\"messages\":[{\"role\":"
	    "\"user\",\"content\":\"hi\"}]}", NULL, NULL);
	SY_CHECK_INT(enter(b.x, &sy_stage_front), SY_NEXT);
	SY_CHECK(b.x->client == &sy_client_anthropic);
	SY_CHECK_STR(b.x->req.client_api, "anthropic");
	SY_CHECK_INT(b.x->req.api, SY_API_CHAT);
	SY_CHECK_STR(b.x->req.client_model, "big");
	SY_CHECK_INT(b.x->req.max_tokens, 5);
	/* The canonical request has the system prompt as a message. */
	SY_CHECK(b.x->req.raw == b.x->front.canon);
	SY_CHECK(strstr((const char *)evbuffer_pullup(b.x->req.raw, -1),
	    "\"role\":\"system\"") != NULL);
	bench_end(&b);
	sy_config_unref(cfg);
}

SY_TEST(front_answers_an_unknown_path_with_404_listing_the_paths)
{
	struct sy_config *cfg = config(base_conf);
	struct bench b;
	const char *msg;

	bench_new(&b, cfg, "POST", "/v1/nothing", CHAT("small"), NULL, NULL);
	SY_CHECK_INT(enter(b.x, &sy_stage_front), SY_RESPOND);
	SY_CHECK_INT(b.x->reply.status, 404);
	SY_CHECK_STR(reply_str(b.x, "error.code"), "not_found");
	msg = reply_str(b.x, "error.message");
	SY_CHECK(msg != NULL && strstr(msg, "/v1/chat/completions") != NULL &&
	    strstr(msg, "/v1/messages") != NULL &&
	    strstr(msg, "/v1/models") != NULL);
	bench_end(&b);
	sy_config_unref(cfg);
}

SY_TEST(front_refuses_a_wrong_method_with_405_and_allow)
{
	struct sy_config *cfg = config(base_conf);
	struct bench b;

	bench_new(&b, cfg, "GET", "/v1/chat/completions", NULL, NULL, NULL);
	SY_CHECK_INT(enter(b.x, &sy_stage_front), SY_RESPOND);
	SY_CHECK_INT(b.x->reply.status, 405);
	SY_CHECK(strstr(b.x->reply.headers, "Allow: POST\r\n") != NULL);
	bench_end(&b);
	bench_new(&b, cfg, "POST", "/healthz", NULL, NULL, NULL);
	SY_CHECK_INT(enter(b.x, &sy_stage_front), SY_RESPOND);
	SY_CHECK_INT(b.x->reply.status, 405);
	SY_CHECK(strstr(b.x->reply.headers, "Allow: GET, HEAD\r\n") != NULL);
	bench_end(&b);
	sy_config_unref(cfg);
}

SY_TEST(front_answers_health_and_the_models_list_itself)
{
	struct sy_config *cfg = config(base_conf);
	struct bench b;
	json_t *o;

	bench_new(&b, cfg, "GET", "/healthz", NULL, NULL, NULL);
	SY_CHECK_INT(enter(b.x, &sy_stage_front), SY_RESPOND);
	SY_CHECK_INT(b.x->reply.status, 200);
	SY_CHECK_STR(reply_str(b.x, "status"), "ok");
	bench_end(&b);
	bench_new(&b, cfg, "GET", "/v1/models", NULL, NULL, NULL);
	SY_CHECK_INT(enter(b.x, &sy_stage_front), SY_RESPOND);
	SY_CHECK_INT(b.x->reply.status, 200);
	o = reply_json(b.x);
	SY_CHECK_STR(json_string_value(json_object_get(o, "object")), "list");
	/* Served models, aliases and route names a client may ask for. */
	SY_CHECK(strstr((const char *)evbuffer_pullup(b.x->reply.body, -1),
	    "\"id\":\"small\"") != NULL);
	SY_CHECK(strstr((const char *)evbuffer_pullup(b.x->reply.body, -1),
	    "\"id\":\"other-m\"") != NULL);
	json_decref(o);
	bench_end(&b);
	sy_config_unref(cfg);
}

/* ==== auth ==== */

SY_TEST(auth_lets_every_request_through_without_keys)
{
	struct sy_config *cfg = config(base_conf);
	struct bench b;

	SY_CHECK_INT(reach(&b, cfg, "/v1/chat/completions", CHAT("small"),
	    NULL, NULL, &sy_stage_auth), SY_NEXT);
	SY_CHECK(b.x->req.key_id == NULL);
	bench_end(&b);
	sy_config_unref(cfg);
}

SY_TEST(auth_refuses_a_missing_or_unknown_key_with_401)
{
	static const struct { const char *h, *v, *code; } cases[] = {
		{ NULL, NULL, "missing_api_key" },
		{ "Authorization", "Bearer ", "missing_api_key" },
		{ "Authorization", "Basic Zm9vOmJhcg==", "missing_api_key" },
		{ "Authorization", "Bearer sk-test-wrong", "invalid_api_key" },
		{ "x-api-key", "sk-test-wrong", "invalid_api_key" }
	};
	struct sy_config *cfg = config(keys_conf);
	struct bench b;
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		bench_new(&b, cfg, "POST", "/v1/chat/completions",
		    CHAT("small"), cases[i].h, cases[i].v);
		through(b.x, &sy_stage_auth);
		SY_CHECK_INT(enter(b.x, &sy_stage_auth), SY_RESPOND);
		SY_CHECK_INT(b.x->reply.status, 401);
		SY_CHECK_STR(reply_str(b.x, "error.code"), cases[i].code);
		SY_CHECK_STR(reply_str(b.x, "error.type"),
		    "authentication_error");
		SY_CHECK(strstr(b.x->reply.headers,
		    "WWW-Authenticate: Bearer\r\n") != NULL);
		SY_CHECK(b.x->req.key_id == NULL);
		bench_end(&b);
	}
	sy_config_unref(cfg);
}

SY_TEST(auth_401_reaches_an_anthropic_client_in_its_shape)
{
	struct sy_config *cfg = config(keys_conf);
	struct evbuffer *out;
	struct bench b;
	json_t *o;

	SY_CHECK_INT(reach(&b, cfg, "/v1/messages", "{\"model\":\"small\","
	    "\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":"
	    "\"hi\"}]}", "x-api-key", "sk-test-wrong", &sy_stage_auth), SY_RESPOND);
	out = sy_respond_body(b.x);
	o = json_loadb((const char *)evbuffer_pullup(out, -1),
	    evbuffer_get_length(out), 0, NULL);
	SY_CHECK_STR(json_string_value(json_object_get(o, "type")), "error");
	SY_CHECK_STR(json_string_value(json_object_get(json_object_get(o,
	    "error"), "type")), "authentication_error");
	json_decref(o);
	evbuffer_free(out);
	bench_end(&b);
	sy_config_unref(cfg);
}

SY_TEST(auth_names_the_static_key_by_either_header)
{
	struct sy_config *cfg = config(keys_conf);
	struct bench b;

	SY_CHECK_INT(reach(&b, cfg, "/v1/chat/completions", CHAT("small"),
	    "Authorization", KEY_GOOD, &sy_stage_auth), SY_NEXT);
	SY_CHECK_STR(b.x->req.key_id, "good");
	SY_CHECK_STR(b.x->req.team, "t1");
	bench_end(&b);
	SY_CHECK_INT(reach(&b, cfg, "/v1/chat/completions", CHAT("small"),
	    "x-api-key", "sk-test-good", &sy_stage_auth), SY_NEXT);
	SY_CHECK_STR(b.x->req.key_id, "good");
	bench_end(&b);
	sy_config_unref(cfg);
}

/* ==== route ==== */

SY_TEST(route_takes_the_route_serving_the_model_or_its_alias)
{
	struct sy_config *cfg = config(base_conf);
	struct bench b;

	SY_CHECK_INT(reach(&b, cfg, "/v1/chat/completions", CHAT("other-m"),
	    NULL, NULL, &sy_stage_route), SY_NEXT);
	SY_CHECK_STR(b.x->req.route->name, "other");
	SY_CHECK_STR(b.x->req.lookup_model, "other-m");
	SY_CHECK(b.x->deadline > b.x->req.t_arrival);
	bench_end(&b);
	SY_CHECK_INT(reach(&b, cfg, "/v1/chat/completions", CHAT("fast"),
	    NULL, NULL, &sy_stage_route), SY_NEXT);
	SY_CHECK_STR(b.x->req.route->name, "chat");
	bench_end(&b);
	sy_config_unref(cfg);
}

SY_TEST(route_answers_an_unknown_model_with_404_listing_the_models)
{
	struct sy_config *cfg = config(base_conf);
	struct bench b;
	const char *msg;

	SY_CHECK_INT(reach(&b, cfg, "/v1/chat/completions", CHAT("gpt-9"),
	    NULL, NULL, &sy_stage_route), SY_RESPOND);
	SY_CHECK_INT(b.x->reply.status, 404);
	SY_CHECK_STR(reply_str(b.x, "error.code"), "model_not_found");
	msg = reply_str(b.x, "error.message");
	SY_CHECK(msg != NULL && strstr(msg, "gpt-9") != NULL &&
	    strstr(msg, "\"small\"") != NULL &&
	    strstr(msg, "\"other-m\"") != NULL);
	SY_CHECK(b.x->req.route == NULL);
	bench_end(&b);
	sy_config_unref(cfg);
}

SY_TEST(route_hands_a_failed_route_to_its_fallback_then_gives_up_with_503)
{
	struct sy_config *cfg = config(base_conf);
	struct bench b;

	SY_CHECK_INT(reach(&b, cfg, "/v1/chat/completions", CHAT("small"),
	    NULL, NULL, &sy_stage_route), SY_NEXT);
	SY_CHECK_STR(b.x->req.route->name, "chat");
	/* The route's tries failed (SY_FALLBACK brings it back here). */
	b.x->reply.failed = 1;
	SY_CHECK_INT(enter(b.x, &sy_stage_route), SY_NEXT);
	SY_CHECK_STR(b.x->req.route->name, "other");
	SY_CHECK_INT(b.x->req.fallbacks, 1);
	SY_CHECK_INT(b.x->reply.failed, 0);
	/* None left: the last failure, 503 with Retry-After when nothing failed with a status. */
	SY_CHECK_INT(enter(b.x, &sy_stage_route), SY_RESPOND);
	SY_CHECK_INT(b.x->reply.status, 503);
	SY_CHECK_STR(reply_str(b.x, "error.code"), "no_endpoint_available");
	SY_CHECK(strstr(b.x->reply.headers, "Retry-After: ") != NULL);
	bench_end(&b);
	sy_config_unref(cfg);
}

/* ==== select ==== */

SY_TEST(select_applies_the_routes_rules_and_its_context_windows)
{
	struct sy_config *cfg = config("{\"backends\": [{\"name\": \"a\", "
	    "\"url\": \"http://127.0.0.1:9001/v1\"}], \"routes\": ["
	    "{\"name\": \"chat\", \"models\": [\"small\", \"big\"], "
	    "\"selection\": {\"name\": \"rules\", \"rules\": "
	    "[{\"min_messages\": 2, \"model\": \"big\"}], \"default\": "
	    "\"small\"}}], \"models\": {\"small\": {\"context_length\": 50}, "
	    "\"big\": {\"context_length\": 1000}}}");
	struct bench b;

	SY_CHECK_INT(reach(&b, cfg, "/v1/chat/completions", CHAT("small"),
	    NULL, NULL, &sy_stage_select), SY_NEXT);
	SY_CHECK_STR(b.x->req.model, "small");
	SY_CHECK_STR(b.x->req.select_reason, "default");
	SY_CHECK(b.x->req.pool != NULL);
	bench_end(&b);
	SY_CHECK_INT(reach(&b, cfg, "/v1/chat/completions", "{\"model\":\"small\","
	    "\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":"
	    "\"user\",\"content\":\"b\"}]}", NULL, NULL, &sy_stage_select), SY_NEXT);
	SY_CHECK_STR(b.x->req.model, "big");
	bench_end(&b);
	/* Too long for small's window: big, which holds it. */
	SY_CHECK_INT(reach(&b, cfg, "/v1/chat/completions", "{\"model\":\"small\","
	    "\"max_tokens\":100,\"messages\":[{\"role\":\"user\",\"content\":"
	    "\"hi\"}]}", NULL, NULL, &sy_stage_select), SY_NEXT);
	SY_CHECK_STR(b.x->req.model, "big");
	SY_CHECK_STR(b.x->req.select_reason, "context:overflow");
	bench_end(&b);
	/* Too long for any: 400 context_length_exceeded. */
	SY_CHECK_INT(reach(&b, cfg, "/v1/chat/completions", "{\"model\":\"small\","
	    "\"max_tokens\":5000,\"messages\":[{\"role\":\"user\",\"content\":"
	    "\"hi\"}]}", NULL, NULL, &sy_stage_select), SY_RESPOND);
	SY_CHECK_INT(b.x->reply.status, 400);
	SY_CHECK_STR(reply_str(b.x, "error.code"), "context_length_exceeded");
	bench_end(&b);
	sy_config_unref(cfg);
}

/* ==== admit ==== */

SY_TEST(admit_refuses_a_route_the_key_may_not_use_with_403)
{
	struct sy_config *cfg = config(keys_conf);
	struct bench b;

	bench_new(&b, cfg, "POST", "/v1/chat/completions", CHAT("small"),
	    "Authorization", KEY_NARROW);
	through(b.x, &sy_stage_admit);
	SY_CHECK_STR(b.x->req.key_id, "narrow");
	SY_CHECK_INT(enter(b.x, &sy_stage_admit), SY_RESPOND);
	SY_CHECK_INT(b.x->reply.status, 403);
	SY_CHECK_STR(reply_str(b.x, "error.code"), "route_not_allowed");
	SY_CHECK_STR(reply_str(b.x, "error.type"), "permission_error");
	bench_end(&b);
	SY_CHECK_INT(reach(&b, cfg, "/v1/chat/completions", CHAT("other-m"),
	    "Authorization", KEY_NARROW, &sy_stage_admit), SY_NEXT);
	bench_end(&b);
	sy_config_unref(cfg);
}

SY_TEST(admit_refuses_past_a_rate_limit_with_429_and_retry_after_in_memory)
{
	struct sy_config *cfg = config(keys_conf);
	struct bench b;
	const char *msg;

	SY_CHECK_INT(reach(&b, cfg, "/v1/chat/completions", CHAT("small"),
	    "Authorization", KEY_LIMITED, &sy_stage_admit), SY_NEXT);
	/* The answer will say the limits left. */
	SY_CHECK(b.x->respond.more_headers != NULL && strstr(
	    b.x->respond.more_headers, "x-ratelimit-limit-requests: 1\r\n"
	    "x-ratelimit-remaining-requests: 0\r\n") != NULL);
	bench_end(&b);
	SY_CHECK_INT(reach(&b, cfg, "/v1/chat/completions", CHAT("small"),
	    "Authorization", KEY_LIMITED, &sy_stage_admit), SY_RESPOND);
	SY_CHECK_INT(b.x->reply.status, 429);
	SY_CHECK_STR(reply_str(b.x, "error.code"), "rate_limit_exceeded");
	msg = reply_str(b.x, "error.message");
	SY_CHECK(msg != NULL && strstr(msg, "key") != NULL);
	SY_CHECK(strncmp(b.x->reply.headers, "Retry-After: ", 13) == 0);
	SY_CHECK(atoi(b.x->reply.headers + 13) >= 1 &&
	    atoi(b.x->reply.headers + 13) <= 60);
	bench_end(&b);
	/* Another key is not limited by it. */
	SY_CHECK_INT(reach(&b, cfg, "/v1/chat/completions", CHAT("small"),
	    "Authorization", KEY_GOOD, &sy_stage_admit), SY_NEXT);
	bench_end(&b);
	sy_config_unref(cfg);
}

/* ==== cache (the memory L1, no Redis) ==== */

SY_TEST(cache_misses_then_stores_then_hits_in_memory)
{
	static const char answer[] = "{\"id\":\"chatcmpl-1\",\"object\":"
	    "\"chat.completion\",\"created\":1,\"model\":\"small\",\"choices\":"
	    "[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":"
	    "\"cached words\"},\"finish_reason\":\"stop\"}],\"usage\":"
	    "{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}}";
	static const char req[] = "{\"model\":\"small\",\"temperature\":0,"
	    "\"messages\":[{\"role\":\"user\",\"content\":\"same\"}]}";
	struct sy_config *cfg = config("{\"backends\": [{\"name\": \"a\", "
	    "\"url\": \"http://127.0.0.1:9001/v1\"}], \"routes\": ["
	    "{\"name\": \"chat\", \"models\": [\"small\"], \"cache\": {}}]}");
	struct evbuffer *body;
	struct bench b;
	json_t *line;

	rt.cache = sy_cache_new(&cfg->cache, &rt.redis_stats);
	w.cache = sy_cache_worker_new(rt.cache, w.base, NULL);
	SY_CHECK_INT(reach(&b, cfg, "/v1/chat/completions", req, NULL, NULL, &sy_stage_cache), SY_NEXT);
	SY_CHECK_STR(b.x->respond.cache_word, "miss");
	/* The backend's answer, as relay leaves it: stored. */
	body = evbuffer_new();
	evbuffer_add(body, answer, strlen(answer));
	sy_exchange_reply(b.x, 200, body, NULL);
	b.x->req.usage.prompt_tokens = 3;
	b.x->req.usage.completion_tokens = 2;
	SY_CHECK_INT(enter(b.x, &sy_stage_store), SY_NEXT);
	bench_end(&b);
	line = last_log_line();
	SY_CHECK_STR(json_string_value(json_object_get(line, "cache")), "miss");
	json_decref(line);

	SY_CHECK_INT(reach(&b, cfg, "/v1/chat/completions", req, NULL, NULL, &sy_stage_cache), SY_RESPOND);
	SY_CHECK_STR(b.x->respond.cache_word, "hit");
	SY_CHECK_INT(b.x->reply.status, 200);
	SY_CHECK_STR(reply_str(b.x, "choices.0.message.content"),
	    "cached words");
	bench_end(&b);
	line = last_log_line();
	SY_CHECK_STR(json_string_value(json_object_get(line, "cache")), "hit");
	json_decref(line);

	/* Not deterministic: a bypass, on to the backend. */
	SY_CHECK_INT(reach(&b, cfg, "/v1/chat/completions", CHAT("small"),
	    NULL, NULL, &sy_stage_cache), SY_NEXT);
	SY_CHECK_STR(b.x->respond.cache_word, "bypass");
	bench_end(&b);
	sy_config_unref(cfg);
}

/* ==== batch ==== */

/* Route emb batches two inputs; its one endpoint takes no traffic (weight 0). */
static const char batch_conf[] = "{\"backends\": [{\"name\": \"a\", "
    "\"url\": \"http://127.0.0.1:9001/v1\", \"weight\": 0}], "
    "\"routes\": [{\"name\": \"emb\", \"models\": [\"e\"], "
    "\"batch\": {\"max_batch_size\": 2, \"max_wait_us\": 5000000}}]}";

SY_TEST(batch_sends_two_members_as_one_call_and_gives_each_its_outcome)
{
	struct sy_config *cfg = config(batch_conf);
	struct bench b1, b2;

	bench_new(&b1, cfg, "POST", "/v1/embeddings", "{\"model\":\"e\","
	    "\"input\":\"one\"}", NULL, NULL);
	through(b1.x, &sy_stage_batch);
	SY_CHECK_INT(sy_stage_batch.enter(b1.x), SY_WAIT);
	bench_new(&b2, cfg, "POST", "/v1/embeddings", "{\"model\":\"e\","
	    "\"input\":[\"two\"]}", NULL, NULL);
	through(b2.x, &sy_stage_batch);
	SY_CHECK_INT(sy_stage_batch.enter(b2.x), SY_WAIT);
	/* Full at two: the call goes, finds no endpoint, and both are told
	   (b2 as one the driver holds while the loop runs for b1). */
	b2.x->driving = 1;
	SY_CHECK_INT(await_verdict(b1.x), 1);
	SY_CHECK_INT(await_verdict(b2.x), 1);
	SY_CHECK_INT(b1.x->resume, SY_ANSWER);
	SY_CHECK_INT(b2.x->resume, SY_ANSWER);
	SY_CHECK_INT(b1.x->req.batch_size, 2);
	SY_CHECK_INT(b2.x->req.batch_size, 2);
	SY_CHECK_INT(b1.x->reply.status, 503);
	SY_CHECK_STR(reply_str(b2.x, "error.code"), "no_endpoint_available");
	SY_CHECK(strstr(b1.x->reply.headers, "Retry-After: ") != NULL);
	bench_end(&b1);
	bench_end(&b2);
	sy_config_unref(cfg);
}

SY_TEST(batch_refuses_bad_input_and_lets_chat_pass)
{
	struct sy_config *cfg = config(batch_conf);
	struct bench b;

	SY_CHECK_INT(reach(&b, cfg, "/v1/embeddings", "{\"model\":\"e\","
	    "\"input\":{\"not\":\"text\"}}", NULL, NULL, &sy_stage_batch),
	    SY_RESPOND);
	SY_CHECK_INT(b.x->reply.status, 400);
	SY_CHECK_STR(reply_str(b.x, "error.type"), "invalid_request_error");
	bench_end(&b);
	SY_CHECK_INT(reach(&b, cfg, "/v1/chat/completions", CHAT("e"), NULL,
	    NULL, &sy_stage_batch), SY_NEXT);
	SY_CHECK(b.x->batch.member == NULL);
	bench_end(&b);
	sy_config_unref(cfg);
}

/* ==== tries ==== */

/* Route chat over endpoints a and b (one request each at most), one retry, a queue of one. */
static const char tries_conf[] = "{\"backends\": ["
    "{\"name\": \"a\", \"url\": \"http://127.0.0.1:9001/v1\", "
    "\"max_concurrency\": 1},"
    "{\"name\": \"b\", \"url\": \"http://127.0.0.1:9002/v1\", "
    "\"max_concurrency\": 1}], \"routes\": [{\"name\": \"chat\", "
    "\"models\": [\"small\"], \"retries\": {\"max\": 1, "
    "\"backoff_ms\": 1, \"on\": [\"5xx\"]}, "
    "\"queue\": {\"max\": 1, \"timeout_ms\": 20}}]}";

/* Requests in flight on endpoint i of cfg's first route. */
static long
in_flight(const struct sy_config *cfg, size_t i)
{
	return atomic_load(&cfg->routes[0].endpoints[i]->stats->in_flight);
}

SY_TEST(tries_picks_an_endpoint_and_holds_its_slot_until_the_end)
{
	struct sy_config *cfg = config(tries_conf);
	struct bench b;

	SY_CHECK_INT(reach(&b, cfg, "/v1/chat/completions", CHAT("small"),
	    NULL, NULL, &sy_stage_tries), SY_NEXT);
	SY_CHECK(b.x->req.endpoint != NULL);
	SY_CHECK(b.x->req.pick_reason != NULL);
	SY_CHECK_INT(in_flight(cfg, 0) + in_flight(cfg, 1), 1);
	bench_end(&b);
	SY_CHECK_INT(in_flight(cfg, 0) + in_flight(cfg, 1), 0);
	sy_config_unref(cfg);
}

SY_TEST(tries_retries_a_failed_try_on_the_other_endpoint_after_a_backoff)
{
	struct sy_config *cfg = config(tries_conf);
	const struct sy_endpoint *first;
	struct bench b;

	SY_CHECK_INT(reach(&b, cfg, "/v1/chat/completions", CHAT("small"),
	    NULL, NULL, &sy_stage_tries), SY_NEXT);
	first = b.x->req.endpoint;
	/* The relay saw a 502 before anything reached the client. */
	b.x->relay.status = 502;
	b.x->relay.failed = SY_RETRY_ON_5XX;
	SY_CHECK_INT(enter(b.x, &sy_stage_tries), SY_RETRY);
	SY_CHECK_INT(b.x->req.retries, 1);
	SY_CHECK_INT(in_flight(cfg, 0) + in_flight(cfg, 1), 0);
	SY_CHECK_INT(enter(b.x, &sy_stage_tries), SY_NEXT);
	SY_CHECK(b.x->req.endpoint != NULL && b.x->req.endpoint != first);
	/* The second failure: no retry left, the route's tries failed. */
	b.x->relay.status = 502;
	b.x->relay.failed = SY_RETRY_ON_5XX;
	SY_CHECK_INT(enter(b.x, &sy_stage_tries), SY_ANSWER);
	SY_CHECK_INT(b.x->reply.failed, 1);
	bench_end(&b);
	sy_config_unref(cfg);
}

SY_TEST(tries_does_not_retry_a_failure_the_route_does_not_list)
{
	struct sy_config *cfg = config(tries_conf);
	struct bench b;

	SY_CHECK_INT(reach(&b, cfg, "/v1/chat/completions", CHAT("small"),
	    NULL, NULL, &sy_stage_tries), SY_NEXT);
	b.x->relay.transport_failed = 1;
	b.x->relay.failed = SY_RETRY_ON_CONNECT;
	SY_CHECK_INT(enter(b.x, &sy_stage_tries), SY_ANSWER);
	SY_CHECK_INT(b.x->req.retries, 0);
	SY_CHECK_INT(b.x->reply.failed, 1);
	bench_end(&b);
	sy_config_unref(cfg);
}

SY_TEST(tries_retries_a_stream_without_its_first_token_by_default)
{
	struct sy_config *cfg = config("{\"backends\": ["
	    "{\"name\": \"a\", \"url\": \"http://127.0.0.1:9001/v1\"},"
	    "{\"name\": \"b\", \"url\": \"http://127.0.0.1:9002/v1\"}], "
	    "\"routes\": [{\"name\": \"chat\", \"models\": [\"small\"], "
	    "\"retries\": {\"backoff_ms\": 0, \"first_token_ms\": 100}}]}");
	const struct sy_endpoint *first;
	struct bench b;

	SY_CHECK_INT(cfg->routes[0].retry.first_token_ms, 100);
	SY_CHECK_INT(reach(&b, cfg, "/v1/chat/completions", CHAT("small"),
	    NULL, NULL, &sy_stage_tries), SY_NEXT);
	first = b.x->req.endpoint;
	/* The relay's first_token_ms ran out before any content. */
	b.x->relay.transport_failed = 1;
	b.x->relay.failed = SY_RETRY_ON_FIRST_TOKEN;
	SY_CHECK_INT(enter(b.x, &sy_stage_tries), SY_RETRY);
	SY_CHECK_INT(b.x->req.retries, 1);
	SY_CHECK_INT(enter(b.x, &sy_stage_tries), SY_NEXT);
	SY_CHECK(b.x->req.endpoint != NULL && b.x->req.endpoint != first);
	bench_end(&b);
	sy_config_unref(cfg);
}

SY_TEST(tries_does_not_retry_a_missing_first_token_the_route_does_not_list)
{
	struct sy_config *cfg = config(tries_conf);	/* on: 5xx only */
	struct bench b;

	SY_CHECK_INT(reach(&b, cfg, "/v1/chat/completions", CHAT("small"),
	    NULL, NULL, &sy_stage_tries), SY_NEXT);
	b.x->relay.transport_failed = 1;
	b.x->relay.failed = SY_RETRY_ON_FIRST_TOKEN;
	SY_CHECK_INT(enter(b.x, &sy_stage_tries), SY_ANSWER);
	SY_CHECK_INT(b.x->req.retries, 0);
	bench_end(&b);
	sy_config_unref(cfg);
}

SY_TEST(tries_picks_a_hedge_on_another_endpoint_with_a_free_slot)
{
	struct sy_config *cfg = config(tries_conf);	/* 2 endpoints, 1 slot each */
	struct sy_endpoint *hedge;
	const char *reason;
	struct bench b;

	SY_CHECK_INT(reach(&b, cfg, "/v1/chat/completions", CHAT("small"),
	    NULL, NULL, &sy_stage_tries), SY_NEXT);
	reason = b.x->req.pick_reason;
	hedge = sy_tries_hedge_pick(b.x);
	SY_CHECK(hedge != NULL && hedge != b.x->req.endpoint);
	SY_CHECK_INT(in_flight(cfg, 0) + in_flight(cfg, 1), 2);
	SY_CHECK(b.x->req.pick_reason == reason);
	/* Both endpoints are busy now: no second hedge. */
	SY_CHECK(sy_tries_hedge_pick(b.x) == NULL);
	SY_CHECK_INT(in_flight(cfg, 0) + in_flight(cfg, 1), 2);
	sy_tries_hedge_done(b.x, hedge, sy_now_us(), 0, 0);
	SY_CHECK_INT(in_flight(cfg, 0) + in_flight(cfg, 1), 1);
	bench_end(&b);
	SY_CHECK_INT(in_flight(cfg, 0) + in_flight(cfg, 1), 0);
	sy_config_unref(cfg);
}

/* sy_canon_stream_content over the NUL-terminated events, error message in err. */
static int
content(const char *events, char *err, size_t n)
{
	return sy_canon_stream_content(events, strlen(events), err, n);
}

SY_TEST(relay_holds_a_stream_until_its_first_content)
{
	char err[64];

	/* What may be held: the role-only first chunk, comments, usage. */
	SY_CHECK_INT(content("data: {\"id\":\"c\",\"object\":"
	    "\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":"
	    "{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,"
	    "\"finish_reason\":null}]}\n\n: ping\n\n", NULL, 0), 0);
	SY_CHECK_INT(content("data: {\"choices\":[{\"index\":0,\"delta\":"
	    "{\"role\":\"assistant\",\"content\":null}}]}\n\n", NULL, 0), 0);
	SY_CHECK_INT(content("data: {\"choices\":[],\"usage\":{}}\n\n"
	    "data: [DONE]\n\n", NULL, 0), 0);
	SY_CHECK_INT(content("data: {\"choices\":[{\"index\":0,\"text\":"
	    "\"\",\"finish_reason\":null}]}\n\n", NULL, 0), 0);
	/* What is content: text, a tool call, a finish, the unknown. */
	SY_CHECK_INT(content("data: {\"choices\":[{\"index\":0,\"delta\":"
	    "{\"role\":\"assistant\",\"content\":\"Hi\"}}]}\n\n", NULL, 0),
	    1);
	SY_CHECK_INT(content("data: {\"choices\":[{\"index\":0,\"delta\":"
	    "{\"tool_calls\":[{\"index\":0}]}}]}\n\n", NULL, 0), 1);
	SY_CHECK_INT(content("data: {\"choices\":[{\"index\":0,\"delta\":"
	    "{},\"finish_reason\":\"stop\"}]}\n\n", NULL, 0), 1);
	SY_CHECK_INT(content("data: {\"choices\":[{\"index\":0,\"text\":"
	    "\"Hi\"}]}\n\n", NULL, 0), 1);
	SY_CHECK_INT(content("data: not json\n\n", NULL, 0), 1);
	/* An error event is not content; its message is read. */
	SY_CHECK_INT(content("data: {\"error\":{\"message\":\"overloaded\","
	    "\"type\":\"server_error\"}}\n\n", err, sizeof err), 0);
	SY_CHECK_STR(err, "overloaded");
	SY_CHECK_INT(content("data: {\"choices\":[]}\n\n", err, sizeof err),
	    0);
	SY_CHECK_STR(err, "");
}

SY_TEST(tries_queues_while_every_endpoint_is_full_until_the_timeout)
{
	struct sy_config *cfg = config(tries_conf);
	struct bench b1, b2, b3, b4;

	SY_CHECK_INT(reach(&b1, cfg, "/v1/chat/completions", CHAT("small"),
	    NULL, NULL, &sy_stage_tries), SY_NEXT);
	SY_CHECK_INT(reach(&b2, cfg, "/v1/chat/completions", CHAT("small"),
	    NULL, NULL, &sy_stage_tries), SY_NEXT);
	SY_CHECK(b1.x->req.endpoint != b2.x->req.endpoint);
	/* Both full: the third waits (a fourth finds the queue full). */
	bench_new(&b3, cfg, "POST", "/v1/chat/completions", CHAT("small"),
	    NULL, NULL);
	through(b3.x, &sy_stage_tries);
	SY_CHECK_INT(sy_stage_tries.enter(b3.x), SY_WAIT);
	SY_CHECK_INT(b3.x->tries.queued, 1);
	SY_CHECK_INT(reach(&b4, cfg, "/v1/chat/completions", CHAT("small"),
	    NULL, NULL, &sy_stage_tries), SY_ANSWER);
	SY_CHECK_STR(b4.x->last.code, "queue_full");
	bench_end(&b4);
	/* Nothing frees a slot: the queue's timeout. */
	SY_CHECK_INT(await_verdict(b3.x), 1);
	SY_CHECK_INT(b3.x->resume, SY_ANSWER);
	SY_CHECK_STR(b3.x->last.code, "queue_timeout");
	SY_CHECK(b3.x->req.queue_us >= 15000);
	bench_end(&b3);
	bench_end(&b1);
	bench_end(&b2);
	sy_config_unref(cfg);
}

/* ==== check ==== */

SY_TEST(check_sends_a_failed_route_to_its_fallbacks_and_an_answer_on)
{
	struct sy_config *cfg = config(base_conf);
	struct bench b;

	SY_CHECK_INT(reach(&b, cfg, "/v1/chat/completions", CHAT("small"),
	    NULL, NULL, &sy_stage_cache), SY_NEXT);
	b.x->reply.failed = 1;
	SY_CHECK_INT(enter(b.x, &sy_stage_check), SY_FALLBACK);
	b.x->reply.failed = 0;
	sy_exchange_fail(b.x, 500, NULL, NULL, "the backend's own error",
	    NULL);
	SY_CHECK_INT(enter(b.x, &sy_stage_check), SY_NEXT);
	SY_CHECK_INT(b.x->select.hold, 0);
	bench_end(&b);
	sy_config_unref(cfg);
}

/* ==== respond ==== */

SY_TEST(respond_gives_each_dialect_its_error_body)
{
	struct sy_config *cfg = config(base_conf);
	const struct sy_client_api *c;
	struct evbuffer *out, *want;
	struct bench b;
	size_t i, n;

	for (i = 0; (c = sy_client_api_at(i)) != NULL; i++) {
		bench_new(&b, cfg, "POST", c->paths[0].path, NULL, NULL, NULL);
		b.x->client = c;
		sy_exchange_fail(b.x, 429, "rate_limit_error",
		    "rate_limit_exceeded", "slow down", "Retry-After: 7\r\n");
		out = sy_respond_body(b.x);
		want = evbuffer_new();
		c->error(want, 429, "rate_limit_error", "rate_limit_exceeded",
		    "slow down");
		n = evbuffer_get_length(want);
		if (out == NULL || evbuffer_get_length(out) != n ||
		    memcmp(evbuffer_pullup(out, -1), evbuffer_pullup(want, -1),
		    n) != 0) {
			printf("# %s: not its error shape\n", c->name);
			SY_CHECK(0);
		}
		if (out != NULL && out != b.x->reply.body)
			evbuffer_free(out);
		evbuffer_free(want);
		/* Without a connection it only notes what it would send. */
		SY_CHECK_INT(enter(b.x, &sy_stage_respond), SY_DONE);
		SY_CHECK_INT(b.x->req.status, 429);
		SY_CHECK_INT(b.x->req.bytes_out, n);
		bench_end(&b);
	}
	sy_config_unref(cfg);
}

SY_TEST(respond_translates_an_answer_or_makes_it_a_502)
{
	static const char answer[] = "{\"id\":\"chatcmpl-1\",\"object\":"
	    "\"chat.completion\",\"created\":1,\"model\":\"small\",\"choices\":"
	    "[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":"
	    "\"Hi\"},\"finish_reason\":\"stop\"}],\"usage\":"
	    "{\"prompt_tokens\":3,\"completion_tokens\":1,\"total_tokens\":4}}";
	struct sy_config *cfg = config(base_conf);
	struct evbuffer *body, *out;
	struct bench b;

	bench_new(&b, cfg, "POST", "/v1/messages", "{\"model\":\"small\","
	    "\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":"
	    "\"hi\"}]}", NULL, NULL);
	SY_CHECK_INT(enter(b.x, &sy_stage_front), SY_NEXT);
	body = evbuffer_new();
	evbuffer_add(body, answer, strlen(answer));
	sy_exchange_reply(b.x, 200, body, NULL);
	out = sy_respond_body(b.x);
	SY_CHECK(out != NULL && out != b.x->reply.body);
	evbuffer_add(out, "", 1);
	SY_CHECK(strstr((const char *)evbuffer_pullup(out, -1),
	    "\"type\":\"message\"") != NULL);
	SY_CHECK(strstr((const char *)evbuffer_pullup(out, -1),
	    "\"model\":\"small\"") != NULL);
	evbuffer_free(out);
	/* An answer that is no chat.completion cannot be translated. */
	body = evbuffer_new();
	evbuffer_add(body, "[1]", 3);
	sy_exchange_reply(b.x, 200, body, NULL);
	SY_CHECK(sy_respond_body(b.x) == NULL);
	SY_CHECK_INT(b.x->reply.status, 502);
	SY_CHECK_STR(reply_str(b.x, "error.code"), "bad_gateway");
	bench_end(&b);
	sy_config_unref(cfg);
}

/* ==== account ==== */

SY_TEST(account_writes_one_log_line_with_the_exchanges_decisions)
{
	struct sy_config *cfg = config(keys_conf);
	struct bench b;
	char id[40];
	json_t *line;

	bench_new(&b, cfg, "POST", "/v1/chat/completions", CHAT("small"),
	    "Authorization", KEY_GOOD);
	through(b.x, &sy_stage_cache);
	snprintf(id, sizeof id, "%s", b.x->req.id);
	SY_CHECK_INT(enter(b.x, &sy_stage_route), SY_RESPOND);	/* no fallback */
	SY_CHECK_INT(enter(b.x, &sy_stage_respond), SY_DONE);
	bench_end(&b);
	line = last_log_line();
	SY_CHECK(line != NULL);
	SY_CHECK_STR(json_string_value(json_object_get(line, "request_id")), id);
	SY_CHECK_INT(json_integer_value(json_object_get(line, "status")), 503);
	SY_CHECK_STR(json_string_value(json_object_get(line, "route")), "chat");
	SY_CHECK_STR(json_string_value(json_object_get(line, "model")), "small");
	SY_CHECK_STR(json_string_value(json_object_get(line, "key_id")), "good");
	SY_CHECK_STR(json_string_value(json_object_get(line, "client_api")),
	    "openai");
	SY_CHECK(json_is_string(json_object_get(line, "error")));
	json_decref(line);
	sy_config_unref(cfg);
}

int
main(void)
{
	worker_init();
	SY_RUN(front_takes_an_openai_path_and_parses_the_request);
	SY_RUN(front_takes_every_dialects_paths);
	SY_RUN(front_translates_an_anthropic_request_to_the_canonical_form);
	SY_RUN(front_answers_an_unknown_path_with_404_listing_the_paths);
	SY_RUN(front_refuses_a_wrong_method_with_405_and_allow);
	SY_RUN(front_answers_health_and_the_models_list_itself);
	SY_RUN(auth_lets_every_request_through_without_keys);
	SY_RUN(auth_refuses_a_missing_or_unknown_key_with_401);
	SY_RUN(auth_401_reaches_an_anthropic_client_in_its_shape);
	SY_RUN(auth_names_the_static_key_by_either_header);
	SY_RUN(route_takes_the_route_serving_the_model_or_its_alias);
	SY_RUN(route_answers_an_unknown_model_with_404_listing_the_models);
	SY_RUN(route_hands_a_failed_route_to_its_fallback_then_gives_up_with_503);
	SY_RUN(select_applies_the_routes_rules_and_its_context_windows);
	SY_RUN(admit_refuses_a_route_the_key_may_not_use_with_403);
	SY_RUN(admit_refuses_past_a_rate_limit_with_429_and_retry_after_in_memory);
	SY_RUN(cache_misses_then_stores_then_hits_in_memory);
	SY_RUN(batch_sends_two_members_as_one_call_and_gives_each_its_outcome);
	SY_RUN(batch_refuses_bad_input_and_lets_chat_pass);
	SY_RUN(tries_picks_an_endpoint_and_holds_its_slot_until_the_end);
	SY_RUN(tries_retries_a_failed_try_on_the_other_endpoint_after_a_backoff);
	SY_RUN(tries_does_not_retry_a_failure_the_route_does_not_list);
	SY_RUN(tries_retries_a_stream_without_its_first_token_by_default);
	SY_RUN(tries_does_not_retry_a_missing_first_token_the_route_does_not_list);
	SY_RUN(tries_picks_a_hedge_on_another_endpoint_with_a_free_slot);
	SY_RUN(relay_holds_a_stream_until_its_first_content);
	SY_RUN(tries_queues_while_every_endpoint_is_full_until_the_timeout);
	SY_RUN(check_sends_a_failed_route_to_its_fallbacks_and_an_answer_on);
	SY_RUN(respond_gives_each_dialect_its_error_body);
	SY_RUN(respond_translates_an_answer_or_makes_it_a_502);
	SY_RUN(account_writes_one_log_line_with_the_exchanges_decisions);
	worker_free();
	return sy_test_done();
}
