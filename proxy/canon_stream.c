/* The canonical form's streams and whole answers: a stream told from a whole answer (cache replays), a whole answer gathered from a stream (cache stores), and the first choice of either (checks of answers). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "canon.h"
#include "jscan.h"
#include "policy.h"
#include "req.h"
#include "sse.h"
#include "util.h"

/* ==== Text ==== */

void
sy_canon_text(struct evbuffer *out, const json_t *v)
{
	const json_t *e, *t;
	size_t i;

	if (json_is_string(v)) {
		evbuffer_add(out, json_string_value(v), json_string_length(v));
		return;
	}
	json_array_foreach(v, i, e) {
		t = json_is_string(e) ? e : json_object_get(e, "text");
		if (!json_is_string(t))
			continue;
		if (i > 0)
			SY_ADD_LIT(out, "\n");
		evbuffer_add(out, json_string_value(t), json_string_length(t));
	}
}

/* out's bytes as a malloc'd string (NUL bytes end it early); frees out. */
static char *
take_string(struct evbuffer *out)
{
	size_t len = evbuffer_get_length(out);
	char *s = sy_xmalloc(len + 1);

	evbuffer_remove(out, s, len);
	s[len] = '\0';
	evbuffer_free(out);
	return s;
}

/* ==== What a stream has told so far ==== */

/* Whether the value text (n bytes) is nothing: null, or an empty string. */
static int
nothing(const char *v, size_t n)
{
	return (n == 4 && memcmp(v, "null", 4) == 0) ||
	    (n == 2 && v[0] == '"' && v[1] == '"');
}

/* Whether the member name (n bytes) is word. */
static int
named(const char *k, size_t n, const char *word)
{
	return n == strlen(word) && memcmp(k, word, n) == 0;
}

/* A delta's member: anything but its role tells something (1 stops). */
static int
delta_member(const char *k, size_t kn, const char *v, size_t vn,
    enum sy_json_kind kind, void *arg)
{
	(void)kind;
	(void)arg;
	return !named(k, kn, "role") && !nothing(v, vn);
}

/* A choice's member: its index, nothing, or a delta of a role alone are not content. */
static int
choice_member(const char *k, size_t kn, const char *v, size_t vn,
    enum sy_json_kind kind, void *arg)
{
	(void)arg;
	if (named(k, kn, "index") || nothing(v, vn))
		return 0;
	if (!named(k, kn, "delta") || kind != SY_JSON_OBJECT)
		return 1;
	return sy_jscan_each(v, vn, delta_member, NULL);
}

/* A choice of a chunk: content unless it tells nothing but a role. */
static int
choice_content(const char *k, size_t kn, const char *v, size_t vn,
    enum sy_json_kind kind, void *arg)
{
	(void)k;
	(void)kn;
	(void)arg;
	return kind != SY_JSON_OBJECT || sy_jscan_each(v, vn, choice_member,
	    NULL);
}

/* What sy_canon_stream_content learns, event by event. */
struct content_scan {
	int content;
	char *error;
	size_t n;
};

/*
 * One canonical event: scanned without a tree (this runs for every event
 * of a stream until its first content); only an error's message is
 * decoded, with jansson.
 */
static int
on_content_event(const struct sy_sse_event *ev, void *arg)
{
	struct content_scan *cs = arg;
	struct sy_jscan_member m[2] = { { .key = "error" }, { .key = "choices" } };
	json_t *e, *msg;

	if (ev->data == NULL || strcmp(ev->data, "[DONE]") == 0)
		return 0;
	if (sy_jscan(ev->data, ev->data_len, m, 2) != SY_JSON_OBJECT) {
		cs->content = 1;
	} else if (m[0].kind != SY_JSON_NONE) {
		if (cs->error != NULL && cs->n > 0) {
			e = json_loadb(m[0].value, m[0].len, JSON_DECODE_ANY,
			    NULL);
			msg = json_object_get(e, "message");
			snprintf(cs->error, cs->n, "%s", json_is_string(msg) ?
			    json_string_value(msg) : "an error event");
			json_decref(e);
		}
	} else if (m[1].kind != SY_JSON_ARRAY ||
	    sy_jscan_each(m[1].value, m[1].len, choice_content, NULL))
		cs->content = 1;
	return 0;
}

int
sy_canon_stream_content(const char *buf, size_t len, char *error, size_t n)
{
	struct content_scan cs = { 0, error, n };
	struct sy_sse p;

	if (error != NULL && n > 0)
		error[0] = '\0';
	sy_sse_init(&p, 0);
	sy_sse_feed(&p, buf, len, on_content_event, &cs);
	sy_sse_free(&p);
	return cs.content;
}

/* ==== Streams from whole answers ==== */

/* Whether o's members are only those named in keys, or null. */
static int
only_keys(const json_t *o, const char *const *keys)
{
	const char *k;
	json_t *v;
	size_t i;

	json_object_foreach((json_t *)o, k, v) {
		for (i = 0; keys[i] != NULL && strcmp(keys[i], k) != 0; i++)
			;
		if (keys[i] == NULL && !json_is_null(v))
			return 0;
	}
	return 1;
}

/* Appends one event "data: JSON" of chunk (its reference taken). */
static void
put_event(struct evbuffer *out, json_t *chunk)
{
	char *text = json_dumps(chunk, JSON_COMPACT);

	json_decref(chunk);
	SY_ADD_LIT(out, "data: ");
	if (text != NULL)
		evbuffer_add(out, text, strlen(text));
	SY_ADD_LIT(out, "\n\n");
	free(text);
}

/*
 * A new chunk of answer a for api: its id, object, created, model and
 * system_fingerprint, with choices (reference taken).
 */
static json_t *
chunk_new(const json_t *a, int api, json_t *choices)
{
	static const char *const copied[] = {
		"id", "created", "model", "system_fingerprint"
	};
	json_t *c = json_object(), *v;
	size_t i;

	for (i = 0; i < sizeof copied / sizeof copied[0]; i++)
		if ((v = json_object_get(a, copied[i])) != NULL)
			json_object_set(c, copied[i], v);
	json_object_set_new(c, "object", json_string(api == SY_API_CHAT ?
	    "chat.completion.chunk" : "text_completion"));
	json_object_set_new(c, "choices", choices);
	return c;
}

/* A choices array of one choice for api: its delta or text (reference taken). */
static json_t *
one_choice(int api, json_t *delta_or_text, const json_t *finish)
{
	json_t *ch = json_object();

	json_object_set_new(ch, "index", json_integer(0));
	json_object_set_new(ch, api == SY_API_CHAT ? "delta" : "text",
	    delta_or_text);
	json_object_set_new(ch, "logprobs", json_null());
	json_object_set(ch, "finish_reason", finish != NULL ? (json_t *)finish :
	    json_null());
	return json_pack("[o]", ch);
}

/* The end of the piece of text that starts at p: n words and the spaces before them. */
static const char *
piece_end(const char *p, unsigned n)
{
	while (n-- > 0 && *p != '\0') {
		while (*p == ' ' || *p == '\n' || *p == '\t')
			p++;
		while (*p != '\0' && *p != ' ' && *p != '\n' && *p != '\t')
			p++;
	}
	return p;
}

int
sy_canon_replay(const char *body, size_t len, int api, unsigned chunk_tokens,
    int with_usage, struct evbuffer *out)
{
	static const char *const message_keys[] = { "role", "content", NULL };
	static const char *const choice_keys[] = {
		"index", "message", "text", "finish_reason", NULL
	};
	json_t *a, *choices, *ch, *msg, *text, *usage, *c, *delta;
	const char *s, *p, *end;
	struct evbuffer *ev;
	int rc = -1;

	if (api == SY_API_EMBEDDINGS ||
	    (a = json_loadb(body, len, 0, NULL)) == NULL)
		return -1;
	choices = json_object_get(a, "choices");
	ch = json_array_get(choices, 0);
	msg = json_object_get(ch, "message");
	text = api == SY_API_CHAT ? json_object_get(msg, "content") :
	    json_object_get(ch, "text");
	if (json_array_size(choices) != 1 || !only_keys(ch, choice_keys) ||
	    json_integer_value(json_object_get(ch, "index")) != 0 ||
	    (api == SY_API_CHAT && (!json_is_object(msg) ||
	    !only_keys(msg, message_keys))) ||
	    !(json_is_string(text) || (api == SY_API_CHAT && json_is_null(text)))) {
		json_decref(a);
		return -1;
	}
	s = json_is_string(text) ? json_string_value(text) : "";
	if (json_is_string(text) && strlen(s) != json_string_length(text)) {
		json_decref(a);
		return -1;	/* a NUL inside: pieces are C strings */
	}
	ev = evbuffer_new();
	if (api == SY_API_CHAT)
		put_event(ev, chunk_new(a, api, one_choice(api, json_pack(
		    "{s:s, s:s}", "role", "assistant", "content", ""), NULL)));
	for (p = s; *p != '\0'; p = end) {
		end = piece_end(p, chunk_tokens);
		delta = json_stringn(p, (size_t)(end - p));
		if (delta == NULL)
			goto out;	/* a piece would split a character */
		if (api == SY_API_CHAT)
			delta = json_pack("{s:o}", "content", delta);
		put_event(ev, chunk_new(a, api, one_choice(api, delta, NULL)));
	}
	put_event(ev, chunk_new(a, api, one_choice(api, api == SY_API_CHAT ?
	    json_object() : json_string(""),
	    json_object_get(ch, "finish_reason"))));
	usage = json_object_get(a, "usage");
	if (with_usage && json_is_object(usage)) {
		c = chunk_new(a, api, json_array());
		json_object_set(c, "usage", usage);
		put_event(ev, c);
	}
	SY_ADD_LIT(ev, "data: [DONE]\n\n");
	evbuffer_add_buffer(out, ev);
	rc = 0;
out:
	evbuffer_free(ev);
	json_decref(a);
	return rc;
}

/* ==== Whole answers from streams ==== */

struct sy_canon_capture {
	int api;
	struct sy_sse sse;
	json_t *head;		/* id, created, model, system_fingerprint */
	struct evbuffer *text;	/* content (chat) or text (completions) */
	json_t *finish;		/* the finish reason seen, or NULL */
	json_t *usage;		/* the usage chunk's, or NULL */
	int done;		/* [DONE] seen */
	int bad;		/* something a whole answer would not tell alike */
};

struct sy_canon_capture *
sy_canon_capture_new(int api)
{
	struct sy_canon_capture *cap = sy_xcalloc(1, sizeof *cap);

	cap->api = api;
	sy_sse_init(&cap->sse, 0);
	cap->text = evbuffer_new();
	return cap;
}

void
sy_canon_capture_free(struct sy_canon_capture *cap)
{
	if (cap == NULL)
		return;
	sy_sse_free(&cap->sse);
	evbuffer_free(cap->text);
	json_decref(cap->head);
	json_decref(cap->finish);
	json_decref(cap->usage);
	free(cap);
}

int
sy_canon_capture_done(const struct sy_canon_capture *cap)
{
	return cap->done || cap->bad;
}

/* Reads one chunk's delta (chat) into cap; 0, or -1 when it holds more than role and content. */
static int
capture_delta(struct sy_canon_capture *cap, const json_t *delta)
{
	static const char *const keys[] = { "role", "content", NULL };
	const json_t *role = json_object_get(delta, "role");
	const json_t *content = json_object_get(delta, "content");

	if (delta == NULL)
		return 0;
	if (!json_is_object(delta) || !only_keys(delta, keys))
		return -1;
	/* The role chunk is optional (llama.cpp sends none). */
	if (json_is_string(role) && strcmp(json_string_value(role),
	    "assistant") != 0)
		return -1;
	if (json_is_string(content))
		evbuffer_add(cap->text, json_string_value(content),
		    json_string_length(content));
	else if (content != NULL && !json_is_null(content))
		return -1;
	return 0;
}

/* Reads one chunk into cap; 0, or -1 when the stream cannot be stored. */
static int
capture_chunk(struct sy_canon_capture *cap, const json_t *c)
{
	static const char *const head_keys[] = {
		"id", "created", "model", "system_fingerprint"
	};
	const json_t *choices = json_object_get(c, "choices"), *ch, *v, *text;
	size_t i;

	if (!json_is_object(c) || json_object_get(c, "error") != NULL ||
	    !json_is_array(choices) || json_array_size(choices) > 1)
		return -1;
	if (cap->head == NULL) {
		cap->head = json_object();
		for (i = 0; i < sizeof head_keys / sizeof head_keys[0]; i++)
			if ((v = json_object_get(c, head_keys[i])) != NULL)
				json_object_set(cap->head, head_keys[i],
				    (json_t *)v);
	}
	if (json_is_object(v = json_object_get(c, "usage"))) {
		json_decref(cap->usage);
		cap->usage = json_copy((json_t *)v);
	}
	if ((ch = json_array_get(choices, 0)) == NULL)
		return 0;
	v = json_object_get(ch, "logprobs");
	if (json_integer_value(json_object_get(ch, "index")) != 0 ||
	    (v != NULL && !json_is_null(v)))
		return -1;
	if (cap->api == SY_API_CHAT) {
		if (capture_delta(cap, json_object_get(ch, "delta")) != 0)
			return -1;
	} else {
		text = json_object_get(ch, "text");
		if (json_is_string(text))
			evbuffer_add(cap->text, json_string_value(text),
			    json_string_length(text));
		else if (text != NULL && !json_is_null(text))
			return -1;
	}
	v = json_object_get(ch, "finish_reason");
	if (json_is_string(v)) {
		json_decref(cap->finish);
		cap->finish = json_incref((json_t *)v);
	}
	return 0;
}

static int
on_capture_event(const struct sy_sse_event *ev, void *arg)
{
	struct sy_canon_capture *cap = arg;
	json_t *c;

	if (ev->data == NULL || cap->bad)
		return 0;
	if (cap->done) {
		cap->bad = 1;
		return 0;
	}
	if (strcmp(ev->data, "[DONE]") == 0) {
		cap->done = 1;
		return 0;
	}
	c = json_loadb(ev->data, ev->data_len, 0, NULL);
	if (capture_chunk(cap, c) != 0)
		cap->bad = 1;
	json_decref(c);
	return 0;
}

void
sy_canon_capture_feed(struct sy_canon_capture *cap, const char *buf,
    size_t len)
{
	if (cap->bad || len == 0)
		return;
	if (sy_sse_feed(&cap->sse, buf, len, on_capture_event, cap) < 0)
		cap->bad = 1;
}

/* Sets member key of o to n unless n < 0. */
static void
set_count(json_t *o, const char *key, int64_t n)
{
	if (n >= 0)
		json_object_set_new(o, key, json_integer((json_int_t)n));
}

char *
sy_canon_capture_answer(struct sy_canon_capture *cap, const struct sy_usage *u,
    size_t *len)
{
	json_t *a, *ch, *text, *usage;
	char *out;

	if (cap->bad || !cap->done || cap->head == NULL || cap->finish == NULL)
		return NULL;
	text = json_stringn((const char *)evbuffer_pullup(cap->text, -1),
	    evbuffer_get_length(cap->text));
	if (text == NULL)
		return NULL;
	a = json_copy(cap->head);
	ch = json_object();
	json_object_set_new(ch, "index", json_integer(0));
	if (cap->api == SY_API_CHAT) {
		json_object_set_new(a, "object", json_string("chat.completion"));
		json_object_set_new(ch, "message", json_pack("{s:s, s:o}",
		    "role", "assistant", "content", text));
	} else {
		json_object_set_new(a, "object", json_string("text_completion"));
		json_object_set_new(ch, "text", text);
	}
	json_object_set_new(ch, "logprobs", json_null());
	json_object_set(ch, "finish_reason", cap->finish);
	json_object_set_new(a, "choices", json_pack("[o]", ch));
	if (cap->usage != NULL)
		usage = json_incref(cap->usage);
	else {
		usage = json_object();
		set_count(usage, "prompt_tokens", u->prompt_tokens);
		set_count(usage, "completion_tokens", u->completion_tokens);
		if (u->prompt_tokens >= 0 && u->completion_tokens >= 0)
			set_count(usage, "total_tokens", u->prompt_tokens +
			    u->completion_tokens);
	}
	json_object_set_new(a, "usage", usage);
	out = json_dumps(a, JSON_COMPACT);
	json_decref(a);
	if (out != NULL)
		*len = strlen(out);
	return out;
}

/* ==== First choices, for checks of answers ==== */

/* Reads the first choice of one canonical chunk or body (o) into a and text. */
static void
read_choice(struct sy_answer *a, const json_t *o, struct evbuffer *text,
    char **finish)
{
	const json_t *choice, *part, *fr;

	if (json_object_get(o, "error") != NULL)
		a->error = 1;
	choice = json_array_get(json_object_get(o, "choices"), 0);
	if ((part = json_object_get(choice, "delta")) == NULL)
		part = json_object_get(choice, "message");
	if (part != NULL)
		sy_canon_text(text, json_object_get(part, "content"));
	else
		sy_canon_text(text, json_object_get(choice, "text"));
	fr = json_object_get(choice, "finish_reason");
	if (json_is_string(fr)) {
		free(*finish);
		*finish = sy_xstrdup(json_string_value(fr));
	}
}

/* What one answer's reading collects. */
struct answer_read {
	struct sy_answer *a;
	struct evbuffer *text;
	char *finish;
};

static int
answer_event(const struct sy_sse_event *ev, void *arg)
{
	struct answer_read *r = arg;
	json_t *o;

	if (ev->data == NULL || strcmp(ev->data, "[DONE]") == 0)
		return 0;
	if ((o = json_loadb(ev->data, ev->data_len, 0, NULL)) == NULL) {
		r->a->error = 1;
		return 0;
	}
	read_choice(r->a, o, r->text, &r->finish);
	json_decref(o);
	return 0;
}

void
sy_canon_answer_read(struct sy_answer *a, int status, struct evbuffer *data,
    int stream)
{
	struct answer_read r = { a, evbuffer_new(), NULL };
	size_t len = data != NULL ? evbuffer_get_length(data) : 0;
	const char *bytes = len ? (const char *)evbuffer_pullup(data, -1) : "";
	struct sy_sse sse;
	json_t *o;

	memset(a, 0, sizeof *a);
	a->status = status;
	a->error = status == 0 || status >= 400;
	if (stream) {
		sy_sse_init(&sse, 0);
		sy_sse_feed(&sse, bytes, len, answer_event, &r);
		sy_sse_free(&sse);
		if (r.finish == NULL)
			a->error = 1;
	} else if (len > 0 && (o = json_loadb(bytes, len, 0, NULL)) != NULL) {
		read_choice(a, o, r.text, &r.finish);
		json_decref(o);
	} else
		a->error = 1;
	a->len = evbuffer_get_length(r.text);
	a->text = take_string(r.text);
	a->finish_reason = r.finish;
}

void
sy_canon_answer_clear(struct sy_answer *a)
{
	free((char *)a->text);
	free((char *)a->finish_reason);
	memset(a, 0, sizeof *a);
}

/* ==== The chunks adapters write ==== */

void
sy_canon_head_set(struct sy_canon_head *h, const char *id, size_t idlen,
    long long created, const char *model)
{
	struct evbuffer *b = evbuffer_new();

	SY_ADD_LIT(b, "data: {\"id\":");
	evbuffer_add(b, id, idlen);
	evbuffer_add_printf(b, ",\"object\":\"chat.completion.chunk\","
	    "\"created\":%lld,\"model\":\"", created);
	sy_json_escape(b, model, strlen(model));
	SY_ADD_LIT(b, "\",\"choices\":");
	free(h->text);
	h->len = evbuffer_get_length(b);
	h->text = sy_xmalloc(h->len);
	evbuffer_remove(b, h->text, h->len);
	evbuffer_free(b);
}

void
sy_canon_head_free(struct sy_canon_head *h)
{
	free(h->text);
	h->text = NULL;
}

void
sy_canon_chunk_begin(struct evbuffer *out, const struct sy_canon_head *h)
{
	evbuffer_add(out, h->text, h->len);
	SY_ADD_LIT(out, "[{\"index\":0,\"delta\":");
}

void
sy_canon_chunk_end(struct evbuffer *out, const char *finish)
{
	if (finish != NULL)
		evbuffer_add_printf(out, ",\"logprobs\":null,\"finish_reason\":"
		    "\"%s\"}]}\n\n", finish);
	else
		SY_ADD_LIT(out, ",\"logprobs\":null,\"finish_reason\":null}]}\n\n");
}
