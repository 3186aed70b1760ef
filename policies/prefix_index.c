/* The prefix index of prefix_aware routing: the prompt's text in canonical order, chained block hashes, and the LRU block set of one endpoint. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prefix_index.h"
#include "req.h"
#include "ring.h"
#include "util.h"

/* ==== The prompt's text ==== */

/* Where the prompt goes, and whether it still wants bytes. */
struct feed {
	sy_prompt_fn fn;
	void *arg;
	int more;
	size_t fed;
};

static void
feed(struct feed *f, const char *s, size_t len)
{
	if (!f->more || len == 0)
		return;
	f->fed += len;
	f->more = f->fn(f->arg, s, len);
}

static void
feed_string(struct feed *f, const json_t *s)
{
	feed(f, json_string_value(s), json_string_length(s));
}

/* Token ids as decimal text, each followed by ','. */
static void
feed_tokens(struct feed *f, const json_t *tokens)
{
	char num[32];
	size_t i;
	int n;

	for (i = 0; i < json_array_size(tokens) && f->more; i++) {
		n = snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT ",",
		    json_integer_value(json_array_get(tokens, i)));
		feed(f, num, (size_t)n);
	}
}

/* A completions prompt or an embeddings input. */
static void
feed_prompt(struct feed *f, const json_t *v)
{
	const json_t *first;

	if (json_is_string(v)) {
		feed_string(f, v);
		return;
	}
	if ((first = json_array_get(v, 0)) == NULL)
		return;
	if (json_is_string(first))
		feed_string(f, first);
	else if (json_is_integer(first))
		feed_tokens(f, v);
	else if (json_is_array(first))
		feed_tokens(f, first);
}

/* Chat messages in order: role, '\n', the text, '\n'. */
static void
feed_messages(struct feed *f, const json_t *messages)
{
	const json_t *m, *role, *content, *part, *text;
	const char *type;
	size_t i, j;

	json_array_foreach(messages, i, m) {
		if (!f->more)
			return;
		if (json_is_string(role = json_object_get(m, "role")))
			feed_string(f, role);
		feed(f, "\n", 1);
		content = json_object_get(m, "content");
		if (json_is_string(content))
			feed_string(f, content);
		json_array_foreach(content, j, part) {
			type = json_string_value(json_object_get(part, "type"));
			text = json_object_get(part, "text");
			if (type != NULL && strcmp(type, "text") == 0 &&
			    json_is_string(text))
				feed_string(f, text);
		}
		feed(f, "\n", 1);
	}
}

size_t
sy_prompt_feed(const struct sy_req *req, sy_prompt_fn fn, void *arg)
{
	struct feed f = { fn, arg, 1, 0 };
	json_t *body = sy_req_body(req);

	if (body == NULL)
		return 0;
	switch (req->api) {
	case SY_API_CHAT:
		feed_messages(&f, json_object_get(body, "messages"));
		break;
	case SY_API_COMPLETIONS:
		feed_prompt(&f, json_object_get(body, "prompt"));
		break;
	case SY_API_EMBEDDINGS:
		feed_prompt(&f, json_object_get(body, "input"));
		break;
	case SY_API_RERANK:
		feed_prompt(&f, json_object_get(body, "query"));
		break;
	}
	return f.fed;
}

/* ==== Chained block hashes ==== */

#define K1 0x9e3779b97f4a7c15ULL
#define K2 0xc2b2ae3d27d4eb4fULL

static uint64_t
rotl(uint64_t x, int r)
{
	return (x << r) | (x >> (64 - r));
}

/* The hash of one block of len bytes, seeded with its predecessor's: eight bytes a step. */
static uint64_t
block_hash(uint64_t seed, const unsigned char *p, size_t len)
{
	uint64_t h = seed ^ (len * K2), w;
	struct sy_hash hs;
	size_t i;

	for (i = 0; i + 8 <= len; i += 8) {
		memcpy(&w, p + i, 8);
		h = rotl(h ^ (w * K1), 31) * K2;
	}
	if (i < len) {
		w = 0;
		memcpy(&w, p + i, len - i);
		h = rotl(h ^ (w * K1), 31) * K2;
	}
	hs.h = h;
	h = sy_hash_final(&hs);
	return h != 0 ? h : 1;
}

void
sy_prefix_chain_init(struct sy_prefix_chain *c, size_t block_chars,
    size_t max)
{
	memset(c, 0, sizeof *c);
	c->block_chars = block_chars;
	c->max = max;
	c->prev = K1;
}

int
sy_prefix_chain_add(struct sy_prefix_chain *c, const void *data, size_t len)
{
	const unsigned char *p = data, *block;
	size_t take;

	if (c->buf == NULL && c->max > 0)
		c->buf = sy_xmalloc(c->block_chars);
	while (len > 0 && c->n < c->max) {
		if (c->n == c->alloc) {
			c->alloc = c->alloc ? 2 * c->alloc : 64;
			if (c->alloc > c->max)
				c->alloc = c->max;
			c->hashes = sy_xrealloc(c->hashes, c->alloc *
			    sizeof *c->hashes);
		}
		take = c->block_chars - c->fill;
		if (take > len)
			take = len;
		/* A whole block straight from the input, without a copy. */
		if (c->fill == 0 && take == c->block_chars)
			block = p;
		else {
			memcpy(c->buf + c->fill, p, take);
			c->fill += take;
			if (c->fill < c->block_chars)
				break;
			block = c->buf;
			c->fill = 0;
		}
		c->prev = block_hash(c->prev, block, c->block_chars);
		if (c->n < SY_PREFIX_SAMPLE)
			c->sample_tokens += (uint64_t)sy_text_tokens(
			    (const char *)block, c->block_chars);
		c->hashes[c->n++] = c->prev;
		p += take;
		len -= take;
	}
	return c->n < c->max;
}

uint64_t
sy_prefix_chain_tokens(const struct sy_prefix_chain *c, size_t k)
{
	size_t sampled = c->n < SY_PREFIX_SAMPLE ? c->n : SY_PREFIX_SAMPLE;

	return sampled ? c->sample_tokens * k / sampled : 0;
}

void
sy_prefix_chain_free(struct sy_prefix_chain *c)
{
	free(c->hashes);
	free(c->buf);
	memset(c, 0, sizeof *c);
}

/* ==== The blocks one endpoint holds ==== */

#define NIL UINT32_MAX

/* The most blocks one set may hold (node indexes are 32 bits). */
#define SET_MAX ((size_t)1 << 30)

void
sy_prefix_set_init(struct sy_prefix_set *s, size_t cap)
{
	memset(s, 0, sizeof *s);
	pthread_mutex_init(&s->lock, NULL);
	s->cap = cap < SET_MAX ? cap : SET_MAX;
	s->head = s->tail = NIL;
}

void
sy_prefix_set_free(struct sy_prefix_set *s)
{
	pthread_mutex_destroy(&s->lock);
	free(s->key);
	free(s->stamp);
	free(s->prev);
	free(s->next);
	free(s->table);
}

/* The table cell where key is or would go. */
static size_t
cell_of(const struct sy_prefix_set *s, uint64_t key)
{
	size_t i = (size_t)key & s->mask;

	while (s->table[i] != 0 && s->key[s->table[i] - 1] != key)
		i = (i + 1) & s->mask;
	return i;
}

/* Whether s holds key (the set's lock held). */
static int
holds(const struct sy_prefix_set *s, uint64_t key)
{
	return s->table != NULL && s->table[cell_of(s, key)] != 0;
}

/* Rebuilds the table with room for twice alloc blocks. */
static void
rehash(struct sy_prefix_set *s)
{
	size_t size = 16, i;

	while (size < 2 * s->alloc)
		size *= 2;
	free(s->table);
	s->table = sy_xcalloc(size, sizeof *s->table);
	s->mask = size - 1;
	for (i = 0; i < s->used; i++)
		s->table[cell_of(s, s->key[i])] = (uint32_t)i + 1;
}

/* Makes room for one more node, up to cap: doubling the arrays. */
static void
grow(struct sy_prefix_set *s)
{
	size_t n = s->alloc ? 2 * s->alloc : 64;

	if (n > s->cap)
		n = s->cap;
	s->key = sy_xrealloc(s->key, n * sizeof *s->key);
	s->stamp = sy_xrealloc(s->stamp, n * sizeof *s->stamp);
	s->prev = sy_xrealloc(s->prev, n * sizeof *s->prev);
	s->next = sy_xrealloc(s->next, n * sizeof *s->next);
	s->alloc = n;
	rehash(s);
}

static void
unlink_node(struct sy_prefix_set *s, uint32_t i)
{
	if (s->prev[i] != NIL)
		s->next[s->prev[i]] = s->next[i];
	else
		s->head = s->next[i];
	if (s->next[i] != NIL)
		s->prev[s->next[i]] = s->prev[i];
	else
		s->tail = s->prev[i];
}

static void
link_head(struct sy_prefix_set *s, uint32_t i)
{
	s->prev[i] = NIL;
	s->next[i] = s->head;
	if (s->head != NIL)
		s->prev[s->head] = i;
	s->head = i;
	if (s->tail == NIL)
		s->tail = i;
}

/* Empties cell i of the table (backward-shift deletion). */
static void
unhash(struct sy_prefix_set *s, size_t i)
{
	size_t j = i, home;

	for (;;) {
		j = (j + 1) & s->mask;
		if (s->table[j] == 0)
			break;
		home = (size_t)s->key[s->table[j] - 1] & s->mask;
		if (((j - home) & s->mask) >= ((j - i) & s->mask)) {
			s->table[i] = s->table[j];
			i = j;
		}
	}
	s->table[i] = 0;
}

/* Moves the last node into slot i, so that nodes 0..used−1 stay dense. */
static void
move_last(struct sy_prefix_set *s, uint32_t i)
{
	uint32_t last = (uint32_t)s->used - 1;

	if (i != last) {
		s->table[cell_of(s, s->key[last])] = i + 1;
		s->key[i] = s->key[last];
		s->stamp[i] = s->stamp[last];
		s->prev[i] = s->prev[last];
		s->next[i] = s->next[last];
		if (s->prev[i] != NIL)
			s->next[s->prev[i]] = i;
		else
			s->head = i;
		if (s->next[i] != NIL)
			s->prev[s->next[i]] = i;
		else
			s->tail = i;
	}
	s->used--;
}

/* Drops the oldest block. */
static void
evict_tail(struct sy_prefix_set *s)
{
	uint32_t i = s->tail;

	unlink_node(s, i);
	unhash(s, cell_of(s, s->key[i]));
	move_last(s, i);
}

size_t
sy_prefix_set_match(struct sy_prefix_set *s, const uint64_t *hashes,
    size_t n)
{
	size_t lo = 0, hi = n, mid;

	/* Held blocks form a prefix: find the first one not held. */
	pthread_mutex_lock(&s->lock);
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (holds(s, hashes[mid]))
			lo = mid + 1;
		else
			hi = mid;
	}
	pthread_mutex_unlock(&s->lock);
	return lo;
}

uint64_t
sy_prefix_set_insert(struct sy_prefix_set *s, const uint64_t *hashes,
    size_t n)
{
	uint64_t stamp;
	uint32_t idx;
	size_t i, cell;

	pthread_mutex_lock(&s->lock);
	stamp = ++s->clock;
	if (s->cap == 0) {
		pthread_mutex_unlock(&s->lock);
		return stamp;
	}
	/* Blocks beyond cap would only evict the prompt's own start. */
	if (n > s->cap)
		n = s->cap;
	for (i = n; i-- > 0;) {
		if (s->table != NULL && s->table[cell =
		    cell_of(s, hashes[i])] != 0) {
			idx = s->table[cell] - 1;
			unlink_node(s, idx);
		} else {
			if (s->used == s->cap)
				evict_tail(s);
			else if (s->used == s->alloc)
				grow(s);
			idx = (uint32_t)s->used++;
			s->key[idx] = hashes[i];
			s->table[cell_of(s, hashes[i])] = idx + 1;
		}
		s->stamp[idx] = stamp;
		link_head(s, idx);
	}
	pthread_mutex_unlock(&s->lock);
	return stamp;
}

size_t
sy_prefix_set_evict_before(struct sy_prefix_set *s, uint64_t stamp)
{
	size_t n = 0;

	pthread_mutex_lock(&s->lock);
	while (s->tail != NIL && s->stamp[s->tail] < stamp) {
		evict_tail(s);
		n++;
	}
	pthread_mutex_unlock(&s->lock);
	return n;
}

void
sy_prefix_set_copy(struct sy_prefix_set *dst, struct sy_prefix_set *src)
{
	uint64_t *keys;
	uint32_t i;
	size_t n = 0;

	pthread_mutex_lock(&src->lock);
	keys = sy_xmalloc((src->used ? src->used : 1) * sizeof *keys);
	for (i = src->head; i != NIL; i = src->next[i])
		keys[n++] = src->key[i];
	pthread_mutex_unlock(&src->lock);
	sy_prefix_set_insert(dst, keys, n);
	free(keys);
}

void
sy_prefix_set_resize(struct sy_prefix_set *s, size_t cap)
{
	pthread_mutex_lock(&s->lock);
	s->cap = cap < SET_MAX ? cap : SET_MAX;
	while (s->used > s->cap)
		evict_tail(s);
	pthread_mutex_unlock(&s->lock);
}

size_t
sy_prefix_set_blocks(struct sy_prefix_set *s)
{
	size_t n;

	pthread_mutex_lock(&s->lock);
	n = s->used;
	pthread_mutex_unlock(&s->lock);
	return n;
}

size_t
sy_prefix_set_bytes(struct sy_prefix_set *s)
{
	size_t n;

	pthread_mutex_lock(&s->lock);
	n = s->alloc * (sizeof *s->key + sizeof *s->stamp + sizeof *s->prev +
	    sizeof *s->next) + (s->table != NULL ? (s->mask + 1) *
	    sizeof *s->table : 0);
	pthread_mutex_unlock(&s->lock);
	return n;
}
