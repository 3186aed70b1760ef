/* sy-load: random draws, generated prompt text, sessions and the HTTP requests built from them. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "load.h"

/* ==== Random numbers ==== */

/* One step of splitmix64 over *x, which it advances. */
static uint64_t
splitmix64(uint64_t *x)
{
	uint64_t z;

	z = (*x += UINT64_C(0x9e3779b97f4a7c15));
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

void
sy_load_rng_seed(struct sy_load_rng *r, uint64_t seed, uint64_t stream)
{
	uint64_t x;
	int i;

	x = seed ^ splitmix64(&stream);
	for (i = 0; i < 4; i++)
		r->s[i] = splitmix64(&x);
}

/* Rotates x left by k bits. */
static uint64_t
rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

/* The next 64 random bits of r (xoshiro256**). */
static uint64_t
rng_next(struct sy_load_rng *r)
{
	uint64_t *s = r->s, result, t;

	result = rotl(s[1] * 5, 7) * 9;
	t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

/* A uniform double in [0, 1). */
static double
rng_unit(struct sy_load_rng *r)
{
	return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

double
sy_load_rng_exp(struct sy_load_rng *r, double mean)
{
	return -mean * log(1.0 - rng_unit(r));
}

/* A standard normal variate (Box-Muller). */
static double
rng_normal(struct sy_load_rng *r)
{
	double u1, u2;

	u1 = 1.0 - rng_unit(r);
	u2 = rng_unit(r);
	return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

long
sy_load_dist_draw(const struct sy_load_dist *d, struct sy_load_rng *r)
{
	double v;

	switch (d->kind) {
	case SY_LOAD_FIXED:
		return lround(d->value);
	case SY_LOAD_UNIFORM:
		/* Integers min..max inclusive, each equally likely. */
		return (long)d->min + (long)(rng_next(r) %
		    (uint64_t)(d->max - d->min + 1));
	case SY_LOAD_NORMAL:
		v = d->mean + d->stddev * rng_normal(r);
		break;
	case SY_LOAD_LOGNORMAL:
		v = exp(d->mu + d->sigma * rng_normal(r));
		break;
	case SY_LOAD_EXPONENTIAL:
		v = sy_load_rng_exp(r, d->mean);
		break;
	default:
		abort();
	}
	v = round(v);
	if (v < d->min)
		v = d->min;
	if (v > d->max)
		v = d->max;
	return (long)v;
}

/* ==== Text ==== */

/*
 * Appends n generated words separated by single spaces to out.  A word is
 * 2 to 4 lowercase ASCII letters, so under the "one token per
 * whitespace-separated piece of at most 4 bytes" rule it is one token.
 */
static void
words(struct evbuffer *out, struct sy_load_rng *r, unsigned n)
{
	char buf[4096];
	size_t off = 0;
	uint64_t x;
	unsigned i, len, k;

	for (i = 0; i < n; i++) {
		if (off + 6 > sizeof buf) {
			evbuffer_add(out, buf, off);
			off = 0;
		}
		if (i > 0)
			buf[off++] = ' ';
		x = rng_next(r);
		len = 2 + (unsigned)(x % 3);
		x >>= 8;
		for (k = 0; k < len; k++) {
			buf[off++] = (char)('a' + (x & 0xff) % 26);
			x >>= 8;
		}
	}
	evbuffer_add(out, buf, off);
}

/* Appends the escaped inside of a JSON string holding s (len bytes) to out. */
static void
json_escape(struct evbuffer *out, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t i, start = 0;
	char esc[6];

	for (i = 0; i < len; i++) {
		if (p[i] >= 0x20 && p[i] != '"' && p[i] != '\\')
			continue;
		evbuffer_add(out, p + start, i - start);
		start = i + 1;
		esc[0] = '\\';
		switch (p[i]) {
		case '"': case '\\':
			esc[1] = (char)p[i];
			evbuffer_add(out, esc, 2);
			break;
		case '\n':
			evbuffer_add(out, "\\n", 2);
			break;
		case '\t':
			evbuffer_add(out, "\\t", 2);
			break;
		default:
			esc[1] = 'u';
			esc[2] = '0';
			esc[3] = '0';
			esc[4] = hex[p[i] >> 4];
			esc[5] = hex[p[i] & 15];
			evbuffer_add(out, esc, 6);
		}
	}
	evbuffer_add(out, p + start, len - start);
}

/* Appends s (len bytes of UTF-8) to out as a quoted JSON string. */
static void
json_str(struct evbuffer *out, const char *s, size_t len)
{
	evbuffer_add(out, "\"", 1);
	json_escape(out, s, len);
	evbuffer_add(out, "\"", 1);
}

/* Appends the escaped bytes of text (left in place) to out. */
static void
json_escape_buf(struct evbuffer *out, struct evbuffer *text)
{
	struct evbuffer_iovec stack[16], *v = stack;
	int i, n;

	n = evbuffer_peek(text, -1, NULL, NULL, 0);
	if (n > 16 && (v = calloc((size_t)n, sizeof *v)) == NULL)
		abort();
	n = evbuffer_peek(text, -1, NULL, v, n);
	for (i = 0; i < n; i++)
		json_escape(out, v[i].iov_base, v[i].iov_len);
	if (v != stack)
		free(v);
}

/* Appends text (left in place) to out as a JSON string. */
static void
json_buf(struct evbuffer *out, struct evbuffer *text)
{
	evbuffer_add(out, "\"", 1);
	json_escape_buf(out, text);
	evbuffer_add(out, "\"", 1);
}

/* ==== Requests ==== */

/* Whether a --header line sets the header called name. */
static int
cli_sets(const struct sy_load_opts *o, const char *name)
{
	size_t i, n = strlen(name);

	for (i = 0; i < o->nheaders; i++)
		if (strncasecmp(o->headers[i], name, n) == 0 &&
		    o->headers[i][n] == ':')
			return 1;
	return 0;
}

/* Whether the spec or a --header sets the header called name. */
static int
user_sets(const struct sy_load_opts *o, const char *name)
{
	size_t i;

	for (i = 0; i < o->spec.nheaders; i++)
		if (strcasecmp(o->spec.headers[i].name, name) == 0)
			return 1;
	return cli_sets(o, name);
}

/* The API path appended to the base URL. */
static const char *
api_path(enum sy_load_api api)
{
	switch (api) {
	case SY_LOAD_CHAT:
		return "/chat/completions";
	case SY_LOAD_COMPLETIONS:
		return "/completions";
	case SY_LOAD_EMBEDDINGS:
		return "/embeddings";
	case SY_LOAD_ANTHROPIC:
		return "/messages";
	}
	abort();
}

void
sy_load_work_init(struct sy_load_work *w, const struct sy_load_opts *opts)
{
	const struct sy_load_spec *spec = &opts->spec;
	struct sy_load_prefix *p;
	struct sy_load_rng r;
	struct evbuffer *h;
	size_t i;
	unsigned g, k;

	memset(w, 0, sizeof *w);
	w->opts = opts;
	w->spec = spec;
	w->body = evbuffer_new();

	h = evbuffer_new();
	evbuffer_add_printf(h, "POST %s%s HTTP/1.1\r\nHost: %s\r\n"
	    "User-Agent: sy-load/" SY_LOAD_VERSION "\r\n"
	    "Content-Type: application/json\r\n", opts->base_path,
	    api_path(spec->api), opts->host_header);
	if (opts->api_key != NULL) {
		if (spec->api == SY_LOAD_ANTHROPIC)
			evbuffer_add_printf(h, "x-api-key: %s\r\n",
			    opts->api_key);
		else
			evbuffer_add_printf(h, "Authorization: Bearer %s\r\n",
			    opts->api_key);
	}
	if (spec->api == SY_LOAD_ANTHROPIC &&
	    !user_sets(opts, "anthropic-version"))
		evbuffer_add_printf(h, "anthropic-version: 2023-06-01\r\n");
	for (i = 0; i < opts->nheaders; i++)
		evbuffer_add_printf(h, "%s\r\n", opts->headers[i]);
	w->head_len = evbuffer_get_length(h);
	w->head = malloc(w->head_len);
	if (w->head == NULL)
		abort();
	evbuffer_remove(h, w->head, w->head_len);
	evbuffer_free(h);

	w->spec_header_on = calloc(spec->nheaders + 1,
	    sizeof *w->spec_header_on);
	if (w->spec_header_on == NULL)
		abort();
	for (i = 0; i < spec->nheaders; i++)
		w->spec_header_on[i] = !cli_sets(opts, spec->headers[i].name);

	if (spec->prefix_count == 0)
		return;
	w->prefixes = calloc(spec->prefix_count, sizeof *w->prefixes);
	if (w->prefixes == NULL)
		abort();
	for (g = 0; g < spec->prefix_count; g++) {
		p = &w->prefixes[g];
		sy_load_rng_seed(&r, spec->seed, SY_LOAD_STREAM_PREFIX + g);
		p->system = evbuffer_new();
		words(p->system, &r, spec->prefix_tokens);
		p->shots = calloc(2 * spec->shots + 1, sizeof *p->shots);
		if (p->shots == NULL)
			abort();
		for (k = 0; k < 2 * spec->shots; k++) {
			p->shots[k] = evbuffer_new();
			words(p->shots[k], &r, spec->shot_tokens);
		}
	}
}

void
sy_load_work_free(struct sy_load_work *w)
{
	unsigned g, k;

	for (g = 0; w->prefixes != NULL && g < w->spec->prefix_count; g++) {
		evbuffer_free(w->prefixes[g].system);
		for (k = 0; k < 2 * w->spec->shots; k++)
			evbuffer_free(w->prefixes[g].shots[k]);
		free(w->prefixes[g].shots);
	}
	free(w->prefixes);
	free(w->spec_header_on);
	free(w->head);
	evbuffer_free(w->body);
}

/* A model drawn by weight. */
static int
draw_model(const struct sy_load_spec *spec, struct sy_load_rng *r)
{
	double total = 0, x;
	size_t i;

	for (i = 0; i < spec->nmodels; i++)
		total += spec->models[i].weight;
	x = rng_unit(r) * total;
	for (i = 0; i < spec->nmodels; i++) {
		if (spec->models[i].weight <= 0)
			continue;
		if (x < spec->models[i].weight)
			return (int)i;
		x -= spec->models[i].weight;
	}
	for (i = spec->nmodels; i > 0; i--)
		if (spec->models[i - 1].weight > 0)
			return (int)(i - 1);
	return 0;
}

struct sy_load_session *
sy_load_session_new(struct sy_load_work *w, uint64_t id)
{
	const struct sy_load_spec *spec = w->spec;
	struct sy_load_session *s;
	size_t i;

	s = calloc(1, sizeof *s);
	if (s == NULL)
		abort();
	s->id = id;
	sy_load_rng_seed(&s->rng, spec->seed, spec->distinct_prompts > 0 ?
	    id % spec->distinct_prompts : id);
	s->model = draw_model(spec, &s->rng);
	s->group = -1;
	if (spec->prefix_count > 0)
		s->group = (int)(rng_next(&s->rng) % spec->prefix_count);
	s->turns = 1;
	if (spec->sessions)
		s->turns = (unsigned)sy_load_dist_draw(&spec->turns, &s->rng);
	s->picks = calloc(spec->nheaders + 1, sizeof *s->picks);
	if (s->picks == NULL)
		abort();
	for (i = 0; i < spec->nheaders; i++)
		s->picks[i] = (unsigned)(rng_next(&s->rng) %
		    spec->headers[i].nvalues);
	return s;
}

void
sy_load_session_free(struct sy_load_session *s)
{
	size_t i;

	if (s == NULL)
		return;
	for (i = 0; i < s->nhistory; i++)
		evbuffer_free(s->history[i]);
	free(s->history);
	free(s->picks);
	free(s->pending);
	free(s);
}

/* Appends text to s's history. */
static void
history_add(struct sy_load_session *s, struct evbuffer *text)
{
	struct evbuffer **h;

	h = realloc(s->history, (s->nhistory + 1) * sizeof *h);
	if (h == NULL)
		abort();
	s->history = h;
	h[s->nhistory++] = text;
}

void
sy_load_session_reply(struct sy_load_session *s, struct evbuffer *text)
{
	history_add(s, text);
}

void
sy_load_session_forget(struct sy_load_session *s)
{
	if (s->nhistory > 0)
		evbuffer_free(s->history[--s->nhistory]);
}

/* Appends {"role":role,"content":text} to out. */
static void
message(struct evbuffer *out, const char *role, struct evbuffer *text)
{
	evbuffer_add_printf(out, "{\"role\":\"%s\",\"content\":", role);
	json_buf(out, text);
	evbuffer_add(out, "}", 1);
}

/* Appends the few-shot and history messages of s, comma first, to out. */
static void
turn_messages(struct sy_load_work *w, struct sy_load_session *s,
    struct evbuffer *out, int first)
{
	const struct sy_load_prefix *p = NULL;
	size_t k;

	if (s->group >= 0)
		p = &w->prefixes[s->group];
	for (k = 0; p != NULL && k < 2 * w->spec->shots; k++) {
		if (!first)
			evbuffer_add(out, ",", 1);
		first = 0;
		message(out, k % 2 ? "assistant" : "user", p->shots[k]);
	}
	for (k = 0; k < s->nhistory; k++) {
		if (!first)
			evbuffer_add(out, ",", 1);
		first = 0;
		message(out, k % 2 ? "assistant" : "user", s->history[k]);
	}
}

/* Appends piece to the plain-text prompt, after a space unless *first. */
static void
prompt_piece(struct evbuffer *out, struct evbuffer *piece, int *first)
{
	if (!*first)
		evbuffer_add(out, " ", 1);
	*first = 0;
	json_escape_buf(out, piece);
}

/*
 * Appends the conversation of s as one plain-text prompt (a JSON string)
 * to out: system prompt, then with history the few-shot messages and the
 * earlier turns, then the new user text.
 */
static void
turn_prompt(struct sy_load_work *w, struct sy_load_session *s,
    struct evbuffer *out, int history)
{
	const struct sy_load_prefix *p = NULL;
	size_t k;
	int first = 1;

	if (s->group >= 0)
		p = &w->prefixes[s->group];
	evbuffer_add(out, "\"", 1);
	if (p != NULL)
		prompt_piece(out, p->system, &first);
	for (k = 0; p != NULL && history && k < 2 * w->spec->shots; k++)
		prompt_piece(out, p->shots[k], &first);
	for (k = 0; k < s->nhistory; k++) {
		if (history || k + 1 == s->nhistory)
			prompt_piece(out, s->history[k], &first);
	}
	evbuffer_add(out, "\"", 1);
}

/* Appends the request head for a body of len bytes to msg. */
static void
head(struct sy_load_work *w, struct sy_load_session *s, struct evbuffer *msg,
    size_t len)
{
	const struct sy_load_spec *spec = w->spec;
	const struct sy_load_header *h;
	size_t i;

	evbuffer_add(msg, w->head, w->head_len);
	for (i = 0; s != NULL && i < spec->nheaders; i++) {
		if (!w->spec_header_on[i])
			continue;
		h = &spec->headers[i];
		evbuffer_add_printf(msg, "%s: %s\r\n", h->name,
		    h->values[s->picks[i]]);
	}
	evbuffer_add_printf(msg, "Content-Length: %zu\r\n\r\n", len);
}

void
sy_load_work_build(struct sy_load_work *w, struct sy_load_session *s,
    const struct sy_load_turn *t, struct sy_load_req *req,
    struct evbuffer *msg)
{
	const struct sy_load_spec *spec = w->spec;
	struct evbuffer *b = w->body, *user;
	long prompt, output;
	int model, stream;

	model = s->model;
	if (t != NULL && t->model >= 0)
		model = t->model;
	if (t != NULL && t->prompt_tokens >= 0)
		prompt = t->prompt_tokens;
	else
		prompt = sy_load_dist_draw(&spec->prompt_tokens, &s->rng);
	if (t != NULL && t->output_tokens >= 0)
		output = t->output_tokens;
	else
		output = sy_load_dist_draw(&spec->output_tokens, &s->rng);
	if (t != NULL && t->stream >= 0)
		stream = t->stream;
	else
		stream = rng_unit(&s->rng) < spec->stream_fraction;
	if (spec->api == SY_LOAD_EMBEDDINGS)
		stream = 0;

	user = evbuffer_new();
	words(user, &s->rng, (unsigned)prompt);
	history_add(s, user);
	s->turn++;

	evbuffer_add(b, "{\"model\":", 9);
	json_str(b, spec->models[model].name,
	    strlen(spec->models[model].name));
	switch (spec->api) {
	case SY_LOAD_CHAT:
		evbuffer_add(b, ",\"messages\":[", 13);
		if (s->group >= 0)
			message(b, "system", w->prefixes[s->group].system);
		turn_messages(w, s, b, s->group < 0);
		evbuffer_add(b, "]", 1);
		break;
	case SY_LOAD_COMPLETIONS:
		evbuffer_add(b, ",\"prompt\":", 10);
		turn_prompt(w, s, b, 1);
		break;
	case SY_LOAD_EMBEDDINGS:
		evbuffer_add(b, ",\"input\":", 9);
		turn_prompt(w, s, b, 0);
		break;
	case SY_LOAD_ANTHROPIC:
		if (s->group >= 0) {
			evbuffer_add(b, ",\"system\":", 10);
			json_buf(b, w->prefixes[s->group].system);
		}
		evbuffer_add(b, ",\"messages\":[", 13);
		turn_messages(w, s, b, 1);
		evbuffer_add(b, "]", 1);
		break;
	}
	if (spec->api != SY_LOAD_EMBEDDINGS) {
		if (!spec->no_max_tokens)
			evbuffer_add_printf(b, ",\"max_tokens\":%ld", output);
		evbuffer_add_printf(b, ",\"stream\":%s", stream ? "true" :
		    "false");
		if (stream && spec->api != SY_LOAD_ANTHROPIC)
			evbuffer_add_printf(b, ",\"stream_options\":"
			    "{\"include_usage\":true}");
		if (spec->ignore_eos)
			evbuffer_add_printf(b, ",\"ignore_eos\":true");
	}
	evbuffer_add(b, "}", 1);

	head(w, s, msg, evbuffer_get_length(b));
	evbuffer_add_buffer(msg, b);

	req->api = spec->api;
	req->session = s;
	req->rec.session = (int32_t)s->id;
	req->rec.turn = (uint16_t)s->turn;
	req->rec.group = (int16_t)s->group;
	req->rec.model = (uint16_t)model;
	req->rec.stream = (uint8_t)stream;
	if (s->turn < s->turns && spec->api != SY_LOAD_EMBEDDINGS)
		req->text = evbuffer_new();
}

void
sy_load_work_build_raw(struct sy_load_work *w,
    const struct sy_load_trace_entry *e, struct sy_load_req *req,
    struct evbuffer *msg)
{
	head(w, NULL, msg, e->body_len);
	evbuffer_add(msg, e->body, e->body_len);
	req->api = w->spec->api;
	req->session = NULL;
	req->rec.session = -1;
	req->rec.turn = 1;
	req->rec.group = -1;
	req->rec.model = (uint16_t)(e->model >= 0 ? e->model : 0);
	req->rec.stream = (uint8_t)(e->stream > 0);
}
