/* The prompt cache's pure pieces: Cache-Control, determinism, the canonical key (SHA-256), stored values, and streams replayed from or reassembled into whole answers. */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <openssl/evp.h>

#include "cache.h"
#include "jscan.h"
#include "req.h"
#include "sse.h"
#include "util.h"

/* ==== Cache-Control ==== */

void
sy_cache_control_parse(const char *value, struct sy_cache_control *cc)
{
	const char *p = value, *tok, *eq;
	size_t len;
	char *end;
	long n;

	memset(cc, 0, sizeof *cc);
	cc->max_age = -1;
	while (p != NULL && *p != '\0') {
		p += strspn(p, " \t,");
		tok = p;
		len = strcspn(p, ",");
		p += len;
		while (len > 0 && (tok[len - 1] == ' ' || tok[len - 1] == '\t'))
			len--;
		if (len == 8 && strncasecmp(tok, "no-cache", 8) == 0)
			cc->no_cache = 1;
		else if (len == 8 && strncasecmp(tok, "no-store", 8) == 0)
			cc->no_store = 1;
		else if (len > 8 && strncasecmp(tok, "max-age", 7) == 0 &&
		    (eq = tok + 7 + strspn(tok + 7, " \t"))[0] == '=') {
			eq += 1 + strspn(eq + 1, " \t\"");
			if (!isdigit((unsigned char)*eq))
				continue;
			n = strtol(eq, &end, 10);
			if (end <= tok + len && (*end == '"' || end == tok + len ||
			    *end == ' ' || *end == '\t'))
				cc->max_age = n;
		}
	}
}

/* ==== Key ==== */

int
sy_cache_deterministic(int api, const json_t *body)
{
	const json_t *t = json_object_get(body, "temperature");
	const json_t *seed = json_object_get(body, "seed");

	if (api == SY_API_EMBEDDINGS)
		return 1;
	if (json_is_integer(seed))
		return 1;
	return json_is_number(t) && json_number_value(t) == 0;
}

/* Whether e is a real that holds a whole number, set in *n. */
static int
whole_real(const json_t *e, json_int_t *n)
{
	double d;

	if (!json_is_real(e))
		return 0;
	d = json_real_value(e);
	if (!(d > -9e15 && d < 9e15) || d != (double)(json_int_t)d)
		return 0;
	*n = (json_int_t)d;
	return 1;
}

/*
 * Whether v holds, at any depth, a real that holds a whole number; with
 * rewrite, writes each as that integer, so that 0 and 0.0 (which clients
 * send alike) make one key.
 */
static int
whole_reals(json_t *v, int rewrite)
{
	const char *k;
	json_int_t n;
	json_t *e;
	size_t i;
	int found = 0;

	if (json_is_object(v)) {
		json_object_foreach(v, k, e) {
			if (whole_real(e, &n) && rewrite)
				json_object_set_new(v, k, json_integer(n));
			else if (!whole_real(e, &n) && !whole_reals(e, rewrite))
				continue;
			if (!rewrite)
				return 1;
			found = 1;
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, e) {
			if (whole_real(e, &n) && rewrite)
				json_array_set_new(v, i, json_integer(n));
			else if (!whole_real(e, &n) && !whole_reals(e, rewrite))
				continue;
			if (!rewrite)
				return 1;
			found = 1;
		}
	}
	return found;
}

int
sy_cache_key(const char *ns, int api, const char *model, const json_t *body,
    unsigned char key[SY_CACHE_KEY_LEN])
{
	static const char magic[] = "switchyard-cache-1";
	json_t *copy;
	char *text, apiname[8];
	unsigned len = 0;
	EVP_MD_CTX *md;
	int rc = -1, deep;

	/* A copy of the top level, deep only when some numbers change. */
	if (!json_is_object(body))
		return -1;
	deep = whole_reals((json_t *)body, 0);
	if ((copy = deep ? json_deep_copy(body) :
	    json_copy((json_t *)body)) == NULL)
		return -1;
	json_object_del(copy, "model");
	json_object_del(copy, "stream");
	json_object_del(copy, "stream_options");
	if (deep)
		whole_reals(copy, 1);
	text = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS |
	    JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
	json_decref(copy);
	if (text == NULL)
		return -1;
	snprintf(apiname, sizeof apiname, "%d", api);
	if ((md = EVP_MD_CTX_new()) != NULL &&
	    EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
	    EVP_DigestUpdate(md, magic, sizeof magic) == 1 &&
	    EVP_DigestUpdate(md, ns, strlen(ns) + 1) == 1 &&
	    EVP_DigestUpdate(md, apiname, strlen(apiname) + 1) == 1 &&
	    EVP_DigestUpdate(md, model, strlen(model) + 1) == 1 &&
	    EVP_DigestUpdate(md, text, strlen(text)) == 1 &&
	    EVP_DigestFinal_ex(md, key, &len) == 1 && len == SY_CACHE_KEY_LEN)
		rc = 0;
	EVP_MD_CTX_free(md);
	free(text);
	return rc;
}

void
sy_cache_key_hex(const unsigned char key[SY_CACHE_KEY_LEN],
    char hex[2 * SY_CACHE_KEY_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < SY_CACHE_KEY_LEN; i++) {
		hex[2 * i] = digits[key[i] >> 4];
		hex[2 * i + 1] = digits[key[i] & 15];
	}
	hex[2 * SY_CACHE_KEY_LEN] = '\0';
}

/* ==== Values ==== */

struct sy_cache_value *
sy_cache_value_new(const char *body, size_t len, const struct sy_usage *usage,
    uint64_t stored_ms)
{
	struct sy_cache_value *v = sy_xmalloc(sizeof *v + len + 1);

	atomic_init(&v->refs, 1);
	v->stored_ms = stored_ms;
	v->usage = *usage;
	v->len = len;
	memcpy(v->body, body, len);
	v->body[len] = '\0';
	return v;
}

struct sy_cache_value *
sy_cache_value_ref(struct sy_cache_value *v)
{
	atomic_fetch_add_explicit(&v->refs, 1, memory_order_relaxed);
	return v;
}

void
sy_cache_value_unref(struct sy_cache_value *v)
{
	if (v != NULL && atomic_fetch_sub_explicit(&v->refs, 1,
	    memory_order_acq_rel) == 1)
		free(v);
}

void
sy_cache_value_encode(const struct sy_cache_value *v, struct evbuffer *out)
{
	evbuffer_add_printf(out, "SYC1 %" PRIu64 " %" PRId64 " %" PRId64
	    " %" PRId64 "\n", v->stored_ms, v->usage.prompt_tokens,
	    v->usage.completion_tokens, v->usage.cached_tokens);
	evbuffer_add(out, v->body, v->len);
}

struct sy_cache_value *
sy_cache_value_decode(const char *buf, size_t len)
{
	const char *nl = memchr(buf, '\n', len < 128 ? len : 128);
	struct sy_usage u;
	uint64_t stored;
	char head[128];
	int n = 0;

	if (nl == NULL || len < 5 || memcmp(buf, "SYC1 ", 5) != 0)
		return NULL;
	memcpy(head, buf, (size_t)(nl - buf));
	head[nl - buf] = '\0';
	if (sscanf(head, "SYC1 %" SCNu64 " %" SCNd64 " %" SCNd64 " %" SCNd64
	    "%n", &stored, &u.prompt_tokens, &u.completion_tokens,
	    &u.cached_tokens, &n) != 4 || head[n] != '\0')
		return NULL;
	nl++;
	/* Whatever Redis holds, only a JSON object goes to a client. */
	if (sy_jscan(nl, len - (size_t)(nl - buf), NULL, 0) != SY_JSON_OBJECT)
		return NULL;
	return sy_cache_value_new(nl, len - (size_t)(nl - buf), &u, stored);
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
sy_cache_replay(const struct sy_cache_value *v, int api,
    unsigned chunk_tokens, int with_usage, struct evbuffer *out)
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
	    (a = json_loadb(v->body, v->len, 0, NULL)) == NULL)
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

struct sy_cache_capture {
	int api;
	struct sy_sse sse;
	json_t *head;		/* id, created, model, system_fingerprint */
	struct evbuffer *text;	/* content (chat) or text (completions) */
	json_t *finish;		/* the finish reason seen, or NULL */
	json_t *usage;		/* the usage chunk's, or NULL */
	int done;		/* [DONE] seen */
	int bad;		/* something a whole answer would not tell alike */
};

struct sy_cache_capture *
sy_cache_capture_new(int api)
{
	struct sy_cache_capture *cap = sy_xcalloc(1, sizeof *cap);

	cap->api = api;
	sy_sse_init(&cap->sse, 0);
	cap->text = evbuffer_new();
	return cap;
}

void
sy_cache_capture_free(struct sy_cache_capture *cap)
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
sy_cache_capture_done(const struct sy_cache_capture *cap)
{
	return cap->done || cap->bad;
}

/* Reads one chunk's delta (chat) into cap; 0, or -1 when it holds more than role and content. */
static int
capture_delta(struct sy_cache_capture *cap, const json_t *delta)
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
capture_chunk(struct sy_cache_capture *cap, const json_t *c)
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
	struct sy_cache_capture *cap = arg;
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
sy_cache_capture_feed(struct sy_cache_capture *cap, const char *buf,
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
sy_cache_capture_answer(struct sy_cache_capture *cap, const struct sy_usage *u,
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
