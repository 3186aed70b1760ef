/* Unit tests that visit every registry entry: each routing, selection and batching policy, backend kind and client dialect meets the same checks, so a new entry is tested without a new test line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "backend.h"
#include "clientapi.h"
#include "config.h"
#include "framing.h"
#include "policy.h"
#include "req.h"
#include "sse.h"
#include "util.h"
#include "sy_test.h"
#include "sy_test_req.h"

/* ==== Helpers ==== */

/* Whether some string in j (at any depth) contains needle. */
static int
has_string(const json_t *j, const char *needle)
{
	const char *k;
	json_t *v;
	size_t i;

	if (json_is_string(j))
		return strstr(json_string_value(j), needle) != NULL;
	if (json_is_array(j)) {
		json_array_foreach(j, i, v)
			if (has_string(v, needle))
				return 1;
	} else if (json_is_object(j)) {
		json_object_foreach((json_t *)j, k, v)
			if (has_string(v, needle))
				return 1;
	}
	return 0;
}

/* out's bytes as a JSON value (NULL when they are not one); out is kept. */
static json_t *
json_of(struct evbuffer *out)
{
	return json_loadb((const char *)evbuffer_pullup(out, -1),
	    evbuffer_get_length(out), 0, NULL);
}

/*
 * Checks that the names a registry lists (names, as config errors show
 * them) are those its iterator visits, in order; what: the registry.
 */
static void
check_listed(const char *what, const char *names, const char *const *seen,
    size_t n)
{
	char listed[1024];
	size_t i, off = 0;

	listed[0] = '\0';
	for (i = 0; i < n; i++)
		off += (size_t)snprintf(listed + off, sizeof listed - off,
		    "%s%s", i ? ", " : "", seen[i]);
	if (strcmp(listed, names) != 0) {
		printf("# %s: iterated \"%s\", listed \"%s\"\n", what, listed,
		    names);
		SY_CHECK(0);
	}
	SY_CHECK(n > 0);
}

/* ==== The registries themselves ==== */

SY_TEST(every_registry_iterates_what_it_finds_by_name_and_lists)
{
	const char *seen[64];
	char names[1024];
	size_t i;

	for (i = 0; sy_route_policy_at(i) != NULL && i < 64; i++) {
		seen[i] = sy_route_policy_at(i)->name;
		SY_CHECK(sy_route_policy_find(seen[i]) == sy_route_policy_at(i));
	}
	sy_route_policy_names(names, sizeof names);
	check_listed("routing policies", names, seen, i);
	for (i = 0; sy_select_policy_at(i) != NULL && i < 64; i++) {
		seen[i] = sy_select_policy_at(i)->name;
		SY_CHECK(sy_select_policy_find(seen[i]) == sy_select_policy_at(i));
	}
	sy_select_policy_names(names, sizeof names);
	check_listed("selection policies", names, seen, i);
	for (i = 0; sy_batch_policy_at(i) != NULL && i < 64; i++) {
		seen[i] = sy_batch_policy_at(i)->name;
		SY_CHECK(sy_batch_policy_find(seen[i]) == sy_batch_policy_at(i));
	}
	sy_batch_policy_names(names, sizeof names);
	check_listed("batching policies", names, seen, i);
	for (i = 0; sy_backend_kind_at(i) != NULL && i < 64; i++) {
		seen[i] = sy_backend_kind_at(i)->name;
		SY_CHECK(sy_backend_kind_find(seen[i]) == sy_backend_kind_at(i));
	}
	sy_backend_kind_names(names, sizeof names);
	check_listed("backend kinds", names, seen, i);
	for (i = 0; sy_client_api_at(i) != NULL; i++)
		SY_CHECK(sy_client_api_at(i) == sy_client_apis[i]);
	SY_CHECK(sy_client_apis[i] == NULL);
	SY_CHECK(sy_client_api_at(i + 1) == NULL);
	SY_CHECK(sy_client_api_at(0) == &sy_client_openai);
}

/* ==== Backend kinds: the fixtures of tests/fixtures/kinds.json ==== */

/* The manifest: for each kind, its fixtures and what they must become. */
static json_t *
manifest(void)
{
	static json_t *m;
	json_error_t e;
	char *text;

	if (m == NULL) {
		text = sy_test_fixture("kinds.json", NULL);
		if ((m = json_loads(text, 0, &e)) == NULL) {
			printf("# kinds.json:%d: %s\n", e.line, e.text);
			exit(2);
		}
		free(text);
	}
	return m;
}

/* One fixture entry of the manifest. */
struct fixture {
	const struct sy_backend_kind *kind;
	const char *file;
	enum sy_api api;
	int status;
	int stream;
	const char *request;		/* NULL: the api's minimal request */
	int64_t usage[3];		/* prompt, completion, cached; -1 unknown */
	const char *finish_reason;	/* NULL: not checked */
	const char *text;		/* NULL: not checked */
	const char *error;		/* a stream's error message, or NULL */
	const char *error_type;		/* an error answer's type, or NULL */
};

/* Reads entry e (of kind) into f. */
static void
fixture_read(struct fixture *f, const struct sy_backend_kind *kind,
    json_t *e)
{
	const char *api = json_string_value(json_object_get(e, "api"));
	json_t *u = json_object_get(e, "usage");
	size_t n, i;

	memset(f, 0, sizeof *f);
	f->kind = kind;
	f->file = json_string_value(json_object_get(e, "file"));
	f->api = api == NULL || strcmp(api, "chat") == 0 ? SY_API_CHAT :
	    strcmp(api, "completions") == 0 ? SY_API_COMPLETIONS :
	    SY_API_EMBEDDINGS;
	f->status = json_object_get(e, "status") != NULL ?
	    (int)json_integer_value(json_object_get(e, "status")) : 200;
	n = strlen(f->file);
	f->stream = (n > 4 && strcmp(f->file + n - 4, ".sse") == 0) ||
	    (n > 7 && strcmp(f->file + n - 7, ".ndjson") == 0);
	f->request = json_string_value(json_object_get(e, "request"));
	for (i = 0; i < 3; i++)
		f->usage[i] = json_is_integer(json_array_get(u, i)) ?
		    json_integer_value(json_array_get(u, i)) : -1;
	f->finish_reason = json_string_value(json_object_get(e,
	    "finish_reason"));
	f->text = json_string_value(json_object_get(e, "text"));
	f->error = json_string_value(json_object_get(e, "error"));
	f->error_type = json_string_value(json_object_get(e, "error_type"));
}

/* The request the fixture answered, parsed, with served model "served". */
static struct sy_req *
fixture_req(const struct fixture *f)
{
	static const char *const minimal[] = {
		[SY_API_CHAT] = "{\"model\":\"m\",\"messages\":[{\"role\":"
		    "\"user\",\"content\":\"hi\"}]",
		[SY_API_COMPLETIONS] = "{\"model\":\"m\",\"prompt\":\"hi\"",
		[SY_API_EMBEDDINGS] = "{\"model\":\"m\",\"input\":[\"a\","
		    "\"b\"]"
	};
	char text[512];

	if (f->request != NULL)
		return sy_test_req(f->api, f->request, "served");
	snprintf(text, sizeof text, "%s%s}", minimal[f->api],
	    f->stream ? ",\"stream\":true" : "");
	return sy_test_req(f->api, text, "served");
}

/* Checks u against the fixture's expected usage. */
static void
check_usage(const struct fixture *f, const struct sy_usage *u)
{
	if (u->prompt_tokens != f->usage[0] ||
	    u->completion_tokens != f->usage[1] ||
	    u->cached_tokens != f->usage[2]) {
		printf("# %s %s: usage %lld/%lld/%lld, expected %lld/%lld/%lld\n",
		    f->kind->name, f->file, (long long)u->prompt_tokens,
		    (long long)u->completion_tokens, (long long)u->cached_tokens,
		    (long long)f->usage[0], (long long)f->usage[1],
		    (long long)f->usage[2]);
		SY_CHECK(0);
	}
}

/* Calls fn for each fixture of each registered kind; fails a kind without any. */
static void
each_fixture(void (*fn)(const struct fixture *))
{
	const struct sy_backend_kind *kind;
	struct fixture f;
	json_t *list, *e;
	size_t i, j;

	for (i = 0; (kind = sy_backend_kind_at(i)) != NULL; i++) {
		list = json_object_get(manifest(), kind->name);
		if (json_array_size(list) == 0) {
			printf("# kind %s has no fixtures in "
			    "tests/fixtures/kinds.json\n", kind->name);
			SY_CHECK(0);
		}
		json_array_foreach(list, j, e) {
			fixture_read(&f, kind, e);
			fn(&f);
		}
	}
}

/* A whole answer: the body is the fixture from its first '{' to that line's end. */
static void
whole_fixture(const struct fixture *f)
{
	struct sy_req *req;
	struct evbuffer *body, *out;
	struct sy_usage u = { -1, -1, -1 };
	char *text, *start, *end, *err = NULL;
	const char *object, *finish, *got;
	json_t *o, *c;

	if (f->stream)
		return;
	req = fixture_req(f);
	text = sy_test_fixture(f->file, NULL);
	start = strchr(text, '{');
	end = start != NULL ? strchr(start, '\n') : NULL;
	body = evbuffer_new();
	out = evbuffer_new();
	evbuffer_add(body, start, end != NULL ? (size_t)(end - start) :
	    strlen(start));
	if (f->kind->decode(req, f->status, body, out, &u, &err) != 0) {
		printf("# %s %s: decode failed: %s\n", f->kind->name, f->file,
		    err);
		free(err);
		SY_CHECK(0);
		goto out;
	}
	if ((o = json_of(out)) == NULL || !json_is_object(o)) {
		printf("# %s %s: the answer is not a JSON object\n",
		    f->kind->name, f->file);
		SY_CHECK(0);
		json_decref(o);
		goto out;
	}
	if (f->status >= 400) {
		/* OpenAI's error shape, the status kept by the caller. */
		SY_CHECK(json_is_string(sy_test_at(o, "error.message")));
		SY_CHECK(json_string_length(sy_test_at(o, "error.message")) > 0);
		SY_CHECK(json_is_string(sy_test_at(o, "error.type")));
		if (f->error_type != NULL)
			SY_CHECK_STR(sy_test_str_at(o, "error.type"),
			    f->error_type);
		SY_CHECK(json_object_get(o, "choices") == NULL);
	} else {
		object = f->api == SY_API_CHAT ? "chat.completion" :
		    f->api == SY_API_COMPLETIONS ? "text_completion" : "list";
		SY_CHECK_STR(json_string_value(json_object_get(o, "object")),
		    object);
		if (f->api == SY_API_EMBEDDINGS) {
			SY_CHECK(json_array_size(json_object_get(o, "data")) > 0);
		} else {
			c = sy_test_at(o, "choices.0");
			SY_CHECK(c != NULL);
			finish = json_string_value(json_object_get(c,
			    "finish_reason"));
			if (f->finish_reason != NULL)
				SY_CHECK_STR(finish, f->finish_reason);
			got = f->api == SY_API_CHAT ?
			    sy_test_str_at(c, "message.content") :
			    json_string_value(json_object_get(c, "text"));
			if (f->text != NULL)
				SY_CHECK_STR(got, f->text);
		}
		/* The body's usage says what the gateway counted. */
		if (u.prompt_tokens >= 0)
			SY_CHECK_INT(json_integer_value(sy_test_at(o,
			    "usage.prompt_tokens")), u.prompt_tokens);
		if (u.completion_tokens >= 0)
			SY_CHECK_INT(json_integer_value(sy_test_at(o,
			    "usage.completion_tokens")), u.completion_tokens);
	}
	check_usage(f, &u);
	json_decref(o);
out:
	evbuffer_free(body);
	evbuffer_free(out);
	free(text);
}

SY_TEST(every_backend_kind_decodes_its_whole_fixtures_to_the_canonical_answer)
{
	const char *k;
	json_t *v;

	each_fixture(whole_fixture);
	/* And the manifest names no kind that is not registered. */
	json_object_foreach(manifest(), k, v)
		if (sy_backend_kind_find(k) == NULL) {
			printf("# kinds.json names kind %s\n", k);
			SY_CHECK(0);
		}
}

/* One event through the kind, none after the stream's end (as the relay stage does). */
static int
relay_event(const struct sy_sse_event *ev, void *arg)
{
	struct sy_test_relay *r = arg;

	if (r->done || r->errors)
		return 0;
	return sy_test_relay_event(ev, arg);
}

/* A fixture relayed through its kind, fed step bytes at a time. */
static void
relay(const struct fixture *f, size_t step, struct sy_test_relay *r)
{
	struct sy_framer fr;
	char *text;
	size_t len, off, n;

	memset(r, 0, sizeof *r);
	r->kind = f->kind;
	r->req = fixture_req(f);
	r->out = evbuffer_new();
	r->usage.prompt_tokens = r->usage.completion_tokens =
	    r->usage.cached_tokens = -1;
	r->state = f->kind->stream_open != NULL ?
	    f->kind->stream_open(r->req) : NULL;
	text = sy_test_fixture(f->file, &len);
	sy_framer_init(&fr, f->kind->framing, 0);
	for (off = 0; off < len; off += n) {
		n = len - off < step ? len - off : step;
		SY_CHECK_INT(sy_framer_feed(&fr, text + off, n, relay_event,
		    r), 0);
	}
	SY_CHECK_INT(sy_framer_finish(&fr, relay_event, r), 0);
	sy_framer_free(&fr);
	if (f->kind->stream_close != NULL)
		f->kind->stream_close(r->state);
	free(text);
}

/* What a client receives, read back event by event. */
struct seen {
	const struct fixture *f;
	int events, done, errors, after_end, bad, finishes;
	char finish[32];
	char error[256];
	char text[4096];
	size_t tlen;
};

/* Checks one canonical event the client would receive. */
static int
seen_event(const struct sy_sse_event *ev, void *arg)
{
	struct seen *s = arg;
	const char *object = s->f->api == SY_API_CHAT ?
	    "chat.completion.chunk" : "text_completion";
	const char *part, *fin;
	json_t *o, *c;
	size_t i;

	if (ev->raw_len > 0 && ev->raw[0] == ':')
		return 0;		/* a comment: relayed as it came */
	s->events++;
	if (s->done || s->errors)
		s->after_end++;
	if (strcmp(ev->data, "[DONE]") == 0) {
		s->done++;
		return 0;
	}
	if ((o = json_loads(ev->data, 0, NULL)) == NULL || !json_is_object(o)) {
		printf("# %s %s: not a JSON event: %.80s\n", s->f->kind->name,
		    s->f->file, ev->data);
		s->bad++;
		json_decref(o);
		return 0;
	}
	if (json_object_get(o, "error") != NULL) {
		s->errors++;
		snprintf(s->error, sizeof s->error, "%s",
		    sy_test_str_at(o, "error.message") ?
		    sy_test_str_at(o, "error.message") : "");
		if (!json_is_string(sy_test_at(o, "error.type")))
			s->bad++;
		json_decref(o);
		return 0;
	}
	if (json_string_value(json_object_get(o, "object")) == NULL ||
	    strcmp(json_string_value(json_object_get(o, "object")),
	    object) != 0 || !json_is_array(json_object_get(o, "choices"))) {
		printf("# %s %s: not a %s: %.80s\n", s->f->kind->name,
		    s->f->file, object, ev->data);
		s->bad++;
	}
	json_array_foreach(json_object_get(o, "choices"), i, c) {
		part = s->f->api == SY_API_CHAT ?
		    sy_test_str_at(c, "delta.content") :
		    json_string_value(json_object_get(c, "text"));
		if (part != NULL && s->tlen + strlen(part) < sizeof s->text) {
			memcpy(s->text + s->tlen, part, strlen(part));
			s->tlen += strlen(part);
		}
		if ((fin = json_string_value(json_object_get(c,
		    "finish_reason"))) != NULL) {
			s->finishes++;
			snprintf(s->finish, sizeof s->finish, "%s", fin);
		}
	}
	json_decref(o);
	return 0;
}

/* A streamed fixture: well-formed canonical events, the answer and the usage. */
static void
stream_fixture(const struct fixture *f)
{
	struct sy_test_relay r;
	struct seen s;
	struct sy_sse sse;
	int failed = sy_test_cur_failed;

	if (!f->stream)
		return;
	sy_test_cur_failed = 0;
	relay(f, (size_t)-1, &r);
	memset(&s, 0, sizeof s);
	s.f = f;
	sy_sse_init(&sse, 0);
	sy_sse_feed(&sse, (const char *)evbuffer_pullup(r.out, -1),
	    evbuffer_get_length(r.out), seen_event, &s);
	SY_CHECK_INT(sy_sse_pending(&sse), 0);	/* every event is whole */
	sy_sse_free(&sse);
	s.text[s.tlen] = '\0';
	if (s.bad || s.after_end) {
		printf("# %s %s: %d bad events, %d after the end\n",
		    f->kind->name, f->file, s.bad, s.after_end);
		SY_CHECK(0);
	}
	if (f->error != NULL) {
		/* It ends in one error event, never a clean [DONE]. */
		SY_CHECK_INT(s.errors, 1);
		SY_CHECK_INT(s.done, 0);
		SY_CHECK_INT(r.errors, 1);
		SY_CHECK_STR(s.error, f->error);
	} else {
		SY_CHECK_INT(s.errors, 0);
		SY_CHECK_INT(s.done, 1);
		SY_CHECK_INT(r.done, 1);
		SY_CHECK_INT(s.finishes, 1);
		if (f->finish_reason != NULL)
			SY_CHECK_STR(s.finish, f->finish_reason);
		if (f->text != NULL)
			SY_CHECK_STR(s.text, f->text);
		check_usage(f, &r.usage);
	}
	if (sy_test_cur_failed)
		printf("# (in %s %s)\n", f->kind->name, f->file);
	sy_test_cur_failed |= failed;
	evbuffer_free(r.out);
}

SY_TEST(every_backend_kind_translates_its_streamed_fixtures_to_well_formed_canonical_events)
{
	each_fixture(stream_fixture);
}

/* A streamed fixture fed a byte at a time comes out as fed whole. */
static void
chunked_fixture(const struct fixture *f)
{
	struct sy_test_relay whole, bytes;
	size_t n;

	if (!f->stream)
		return;
	relay(f, (size_t)-1, &whole);
	relay(f, 1, &bytes);
	n = evbuffer_get_length(whole.out);
	if (n != evbuffer_get_length(bytes.out) ||
	    memcmp(evbuffer_pullup(whole.out, -1),
	    evbuffer_pullup(bytes.out, -1), n) != 0) {
		printf("# %s %s: a byte at a time differs\n", f->kind->name,
		    f->file);
		SY_CHECK(0);
	}
	SY_CHECK_INT(bytes.usage.prompt_tokens, whole.usage.prompt_tokens);
	SY_CHECK_INT(bytes.usage.completion_tokens,
	    whole.usage.completion_tokens);
	evbuffer_free(whole.out);
	evbuffer_free(bytes.out);
}

SY_TEST(every_backend_kind_translates_a_stream_alike_whatever_its_chunking)
{
	each_fixture(chunked_fixture);
}

/* ==== Selection policies: on a route without parameters, on a wildcard route ==== */

/* Loads a config whose one route serves models with selection sel; NULL with *err. */
static struct sy_config *
select_config(const char *models, const char *sel, char **err)
{
	struct sy_config *cfg;
	char text[1024];

	snprintf(text, sizeof text, "{\"backends\": [{\"name\": \"b\", "
	    "\"url\": \"http://127.0.0.1:9001/v1\"}], \"routes\": [{\"name\": "
	    "\"r\", \"models\": %s, \"selection\": \"%s\"}]}", models, sel);
	*err = NULL;
	if (sy_config_load_string(text, "t.json", &cfg, err) != 0)
		return NULL;
	return cfg;
}

/* What route r of cfg selects for a chat request for model; *reason set. */
static const char *
select_for(struct sy_config *cfg, const char *body, const char **reason)
{
	struct sy_route *r = &cfg->routes[0];
	struct sy_req *req = sy_test_req(SY_API_CHAT, body, NULL);

	req->route = r;
	*reason = NULL;
	return r->selection->select(r->selection_state, r, req, reason);
}

SY_TEST(every_selection_policy_on_a_wildcard_route_keeps_the_clients_model_or_is_refused_clearly)
{
	const struct sy_select_policy *p;
	struct sy_config *cfg;
	const char *model, *reason;
	char *err, need[128];
	size_t i;

	for (i = 0; (p = sy_select_policy_at(i)) != NULL; i++) {
		cfg = select_config("[\"*\"]", p->name, &err);
		if (cfg == NULL) {
			snprintf(need, sizeof need, "%s needs a route that "
			    "names its models", p->name);
			if (strstr(err, "routes[0].selection") == NULL ||
			    strstr(err, need) == NULL) {
				printf("# %s: unclear refusal: %s\n", p->name, err);
				SY_CHECK(0);
			}
			free(err);
			continue;
		}
		/* Any name goes to the backends unchanged. */
		model = select_for(cfg, "{\"model\":\"any-model\",\"messages\":"
		    "[{\"role\":\"user\",\"content\":\"hi\"}]}", &reason);
		if (model != NULL && strcmp(model, "any-model") != 0) {
			printf("# %s on a wildcard route chose %s\n", p->name,
			    model);
			SY_CHECK(0);
		}
		SY_CHECK(reason != NULL);
		sy_config_unref(cfg);
	}
}

SY_TEST(every_selection_policy_without_parameters_chooses_a_served_model_or_names_what_it_needs)
{
	static const char *const bodies[] = {
		"{\"model\":\"mid\",\"messages\":[{\"role\":\"user\","
		    "\"content\":\"hi\"}]}",
		"{\"model\":\"mid\",\"messages\":[]}",
		"{\"model\":\"mid\",\"messages\":[{\"role\":\"user\","
		    "\"content\":[]}],\"max_tokens\":1}"
	};
	const struct sy_select_policy *p;
	struct sy_config *cfg;
	const char *model, *reason;
	char *err;
	size_t i, k;

	for (i = 0; (p = sy_select_policy_at(i)) != NULL; i++) {
		cfg = select_config("[\"small\", \"mid\", \"big\"]", p->name,
		    &err);
		if (cfg == NULL) {
			/* The error says where: the selection's parameter. */
			if (strstr(err, "t.json") == NULL ||
			    strstr(err, "routes[0].selection") == NULL) {
				printf("# %s: unclear refusal: %s\n", p->name, err);
				SY_CHECK(0);
			}
			free(err);
			continue;
		}
		for (k = 0; k < sizeof bodies / sizeof bodies[0]; k++) {
			model = select_for(cfg, bodies[k], &reason);
			if (model == NULL || (strcmp(model, "small") != 0 &&
			    strcmp(model, "mid") != 0 && strcmp(model, "big") != 0)) {
				printf("# %s chose %s for %s\n", p->name,
				    model ? model : "nothing", bodies[k]);
				SY_CHECK(0);
			}
			SY_CHECK(reason != NULL);
		}
		sy_config_unref(cfg);
	}
}

/* ==== Batching policies: the bounds hold for each ==== */

/* Creates p for bounds b (params {}, two endpoints); NULL on failure. */
static void *
batch_new(const struct sy_batch_policy *p, const struct sy_batch_bounds *b)
{
	json_t *params = json_object();
	char *err = NULL;
	void *st = p->create(params, b, 2, &err);

	json_decref(params);
	if (err != NULL) {
		printf("# %s: %s\n", p->name, err);
		free(err);
		SY_CHECK(0);
	}
	return st;
}

SY_TEST(every_batching_policy_flushes_at_each_bound)
{
	static const struct sy_batch_bounds b = { 4, 100, 20000 };
	static const struct {
		struct sy_batch_view v;
		enum sy_flush want;
	} cases[] = {
		{ { 4, 10, 0, 0 }, SY_FLUSH_SIZE },
		{ { 9, 500, 30000, 9 }, SY_FLUSH_SIZE },
		{ { 2, 100, 0, 0 }, SY_FLUSH_TOKENS },
		{ { 1, 150, 0, 5 }, SY_FLUSH_TOKENS },
		{ { 1, 1, 20000, 0 }, SY_FLUSH_WAIT },
		{ { 3, 99, 25000, 7 }, SY_FLUSH_WAIT }
	};
	const struct sy_batch_policy *p;
	enum sy_flush got;
	uint64_t due;
	size_t i, k;
	void *st;

	for (i = 0; (p = sy_batch_policy_at(i)) != NULL; i++) {
		st = batch_new(p, &b);
		for (k = 0; k < sizeof cases / sizeof cases[0]; k++) {
			due = 0;
			got = p->decide(st, &cases[k].v, &due);
			if (got != cases[k].want) {
				printf("# %s case %zu: %s, expected %s\n", p->name,
				    k, sy_flush_word(got),
				    sy_flush_word(cases[k].want));
				SY_CHECK(0);
			}
		}
		if (p->destroy != NULL)
			p->destroy(st);
	}
}

SY_TEST(every_batching_policy_below_the_bounds_holds_no_longer_than_max_wait)
{
	static const struct sy_batch_bounds b = { 8, 0, 50000 };
	const struct sy_batch_policy *p;
	struct sy_batch_view v;
	enum sy_flush got;
	uint64_t due, now = 1000000;
	unsigned inputs, busy;
	size_t i;
	void *st;

	for (i = 0; (p = sy_batch_policy_at(i)) != NULL; i++) {
		st = batch_new(p, &b);
		for (busy = 0; busy <= 4; busy += 2)
			for (inputs = 1; inputs < 8; inputs++) {
				if (p->arrive != NULL)
					p->arrive(st, 1, now += 1000);
				memset(&v, 0, sizeof v);
				v.inputs = inputs;
				v.tokens = 1000000;	/* no token bound */
				v.age_us = 100;
				v.in_flight = busy;
				due = 0;
				got = p->decide(st, &v, &due);
				if (got == SY_FLUSH_HOLD ? due == 0 ||
				    due > b.max_wait_us : got != SY_FLUSH_READY) {
					printf("# %s %u inputs, %u busy: %s due %llu\n",
					    p->name, inputs, busy,
					    sy_flush_word(got),
					    (unsigned long long)due);
					SY_CHECK(0);
				}
			}
		if (p->destroy != NULL)
			p->destroy(st);
	}
}

/* ==== Client dialects: an error and a minimal answer in each ==== */

SY_TEST(every_client_dialect_serves_its_paths)
{
	const struct sy_client_api *c;
	const struct sy_client_path *path;
	enum sy_api api;
	size_t i, n;

	for (i = 0; (c = sy_client_api_at(i)) != NULL; i++) {
		SY_CHECK(c->name != NULL && c->error != NULL);
		for (n = 0, path = c->paths; path->path != NULL; path++, n++) {
			SY_CHECK(sy_client_api_for(path->path, &api) == c);
			SY_CHECK_INT(api, path->api);
		}
		if (n == 0) {
			printf("# %s serves no path\n", c->name);
			SY_CHECK(0);
		}
		/* Translating, or the canonical form itself: all or nothing. */
		SY_CHECK((c->request == NULL) == (c->response == NULL));
		SY_CHECK((c->request == NULL) == (c->stream_open == NULL));
		SY_CHECK((c->stream_open == NULL) == (c->stream_event == NULL));
	}
}

SY_TEST(every_client_dialect_translates_an_error_keeping_its_message)
{
	static const struct { int status; const char *type; } cases[] = {
		{ 400, "invalid_request_error" }, { 401, "authentication_error" },
		{ 404, "invalid_request_error" }, { 429, "rate_limit_error" },
		{ 500, "server_error" }, { 503, NULL }
	};
	const struct sy_client_api *c;
	struct evbuffer *out;
	json_t *o;
	size_t i, k;

	for (i = 0; (c = sy_client_api_at(i)) != NULL; i++)
		for (k = 0; k < sizeof cases / sizeof cases[0]; k++) {
			out = evbuffer_new();
			c->error(out, cases[k].status, cases[k].type, "some_code",
			    "the \"reason\" told");
			o = json_of(out);
			if (o == NULL || !json_is_object(o) ||
			    !has_string(o, "the \"reason\" told") ||
			    json_object_get(o, "error") == NULL) {
				printf("# %s %d: %.*s\n", c->name,
				    cases[k].status,
				    (int)evbuffer_get_length(out),
				    (const char *)evbuffer_pullup(out, -1));
				SY_CHECK(0);
			}
			json_decref(o);
			evbuffer_free(out);
		}
}

static const char minimal_answer[] = "{\"id\":\"chatcmpl-1\",\"object\":"
    "\"chat.completion\",\"created\":1,\"model\":\"served\",\"choices\":"
    "[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":"
    "\"Hi there\"},\"finish_reason\":\"stop\"}],\"usage\":"
    "{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}}";

SY_TEST(every_client_dialect_translates_a_minimal_answer)
{
	const struct sy_client_api *c;
	struct evbuffer *body, *out;
	char *err = NULL;
	json_t *o;
	size_t i;

	for (i = 0; (c = sy_client_api_at(i)) != NULL; i++) {
		if (c->response == NULL)
			continue;	/* the canonical form: sent as it is */
		body = evbuffer_new();
		out = evbuffer_new();
		evbuffer_add(body, minimal_answer, strlen(minimal_answer));
		SY_CHECK_INT(c->response(body, "asked", NULL, out, &err), 0);
		/* The body is read, not drained. */
		SY_CHECK_INT(evbuffer_get_length(body), strlen(minimal_answer));
		o = json_of(out);
		if (o == NULL || !has_string(o, "Hi there") ||
		    !has_string(o, "asked")) {
			printf("# %s: %.*s\n", c->name,
			    (int)evbuffer_get_length(out),
			    (const char *)evbuffer_pullup(out, -1));
			SY_CHECK(0);
		}
		json_decref(o);
		evbuffer_free(body);
		evbuffer_free(out);
	}
}

/* Feeds one canonical event with data to a dialect's stream state. */
static void
canon_event(const struct sy_client_api *c, void *st, const char *data,
    struct evbuffer *out)
{
	struct sy_sse_event ev;
	char raw[1024];

	snprintf(raw, sizeof raw, "data: %s\n\n", data);
	memset(&ev, 0, sizeof ev);
	ev.event = "";
	ev.id = "";
	ev.data = data;
	ev.data_len = strlen(data);
	ev.raw = raw;
	ev.raw_len = strlen(raw);
	c->stream_event(st, &ev, out);
}

SY_TEST(every_client_dialect_streams_a_minimal_answer_and_nothing_after_its_end)
{
	static const char *const chunks[] = {
		"{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,"
		    "\"model\":\"served\",\"choices\":[{\"index\":0,\"delta\":"
		    "{\"role\":\"assistant\",\"content\":\"\"},"
		    "\"finish_reason\":null}]}",
		"{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,"
		    "\"model\":\"served\",\"choices\":[{\"index\":0,\"delta\":"
		    "{\"content\":\"Hi there\"},\"finish_reason\":null}]}",
		"{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,"
		    "\"model\":\"served\",\"choices\":[{\"index\":0,\"delta\":{},"
		    "\"finish_reason\":\"stop\"}]}",
		"{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,"
		    "\"model\":\"served\",\"choices\":[],\"usage\":{\"prompt_tokens\":"
		    "3,\"completion_tokens\":2,\"total_tokens\":5}}",
		"[DONE]"
	};
	const struct sy_client_api *c;
	struct evbuffer *out;
	size_t i, k, len;
	void *st;

	for (i = 0; (c = sy_client_api_at(i)) != NULL; i++) {
		if (c->stream_open == NULL)
			continue;	/* the canonical form: relayed as it is */
		out = evbuffer_new();
		st = c->stream_open("asked", NULL);
		SY_CHECK(st != NULL);
		for (k = 0; k < sizeof chunks / sizeof chunks[0]; k++)
			canon_event(c, st, chunks[k], out);
		len = evbuffer_get_length(out);
		evbuffer_add(out, "", 1);
		if (len == 0 || strstr((const char *)evbuffer_pullup(out, -1),
		    "Hi there") == NULL) {
			printf("# %s: %s\n", c->name,
			    (const char *)evbuffer_pullup(out, -1));
			SY_CHECK(0);
		}
		evbuffer_drain(out, evbuffer_get_length(out));
		canon_event(c, st, chunks[1], out);
		SY_CHECK_INT(evbuffer_get_length(out), 0);
		c->stream_close(st);
		evbuffer_free(out);
	}
}

int
main(void)
{
	SY_RUN(every_registry_iterates_what_it_finds_by_name_and_lists);
	SY_RUN(every_backend_kind_decodes_its_whole_fixtures_to_the_canonical_answer);
	SY_RUN(every_backend_kind_translates_its_streamed_fixtures_to_well_formed_canonical_events);
	SY_RUN(every_backend_kind_translates_a_stream_alike_whatever_its_chunking);
	SY_RUN(every_selection_policy_on_a_wildcard_route_keeps_the_clients_model_or_is_refused_clearly);
	SY_RUN(every_selection_policy_without_parameters_chooses_a_served_model_or_names_what_it_needs);
	SY_RUN(every_batching_policy_flushes_at_each_bound);
	SY_RUN(every_batching_policy_below_the_bounds_holds_no_longer_than_max_wait);
	SY_RUN(every_client_dialect_serves_its_paths);
	SY_RUN(every_client_dialect_translates_an_error_keeping_its_message);
	SY_RUN(every_client_dialect_translates_a_minimal_answer);
	SY_RUN(every_client_dialect_streams_a_minimal_answer_and_nothing_after_its_end);
	json_decref(manifest());
	return sy_test_done();
}
