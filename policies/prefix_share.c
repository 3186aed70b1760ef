/* The prefix indexes of prefix_aware pools, process-wide: their registry, their counters in /metrics, and the placements they share with other gateway instances through a Redis stream. */
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "config.h"
#include "metrics.h"
#include "prefix_share.h"
#include "redis.h"
#include "util.h"

/* Placements waiting for the bus, at most. */
#define OUTBOX_MAX 1024
/* How often the bus sends and reads. */
#define BUS_MS 10
/* Entries read at once. */
#define READ_COUNT 256

/* ==== The registry ==== */

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sy_prefix_pool *pools;
static uint64_t generations;

/* Gives p's sets the blocks of the newest pool like it (the registry's lock held). */
static void
inherit(struct sy_prefix_pool *p)
{
	struct sy_prefix_pool *q, *old = NULL;
	size_t i, j;

	for (q = pools; q != NULL; q = q->next)
		if (strcmp(q->key, p->key) == 0 &&
		    q->block_chars == p->block_chars &&
		    (old == NULL || q->generation > old->generation))
			old = q;
	if (old == NULL)
		return;
	for (i = 0; i < p->n; i++)
		for (j = 0; j < old->n; j++)
			if (strcmp(p->names[i], old->names[j]) == 0) {
				sy_prefix_set_copy(&p->sets[i], &old->sets[j]);
				break;
			}
}

struct sy_prefix_pool *
sy_prefix_pool_join(const char *route, const char *model, size_t block_chars,
    struct sy_endpoint *const *eps, struct sy_prefix_set *sets, size_t n,
    int share)
{
	struct sy_prefix_pool *p = sy_xcalloc(1, sizeof *p);
	size_t i;

	p->route = sy_xstrdup(route);
	p->model = sy_xstrdup(model != NULL ? model : "*");
	p->key = sy_xasprintf("%s/%s", p->route, p->model);
	p->n = n;
	p->names = sy_xcalloc(n ? n : 1, sizeof *p->names);
	for (i = 0; i < n; i++)
		p->names[i] = sy_xstrdup(eps[i]->name);
	p->sets = sets;
	p->counts = sy_xcalloc(n ? n : 1, sizeof *p->counts);
	p->share = share;
	p->block_chars = block_chars;
	pthread_mutex_lock(&reg_lock);
	inherit(p);
	p->generation = ++generations;
	p->next = pools;
	pools = p;
	pthread_mutex_unlock(&reg_lock);
	return p;
}

void
sy_prefix_pool_leave(struct sy_prefix_pool *p)
{
	struct sy_prefix_pool **pp;
	size_t i;

	pthread_mutex_lock(&reg_lock);
	for (pp = &pools; *pp != NULL && *pp != p; pp = &(*pp)->next)
		;
	if (*pp != NULL)
		*pp = p->next;
	pthread_mutex_unlock(&reg_lock);
	for (i = 0; i < p->n; i++)
		free(p->names[i]);
	free(p->names);
	free(p->counts);
	free(p->key);
	free(p->route);
	free(p->model);
	free(p);
}

/* Whether a newer pool of p's key is registered (the registry's lock held). */
static int
superseded(const struct sy_prefix_pool *p)
{
	const struct sy_prefix_pool *q;

	for (q = pools; q != NULL; q = q->next)
		if (q->generation > p->generation && strcmp(q->key, p->key) == 0)
			return 1;
	return 0;
}

/* Whether a registered pool shares placements. */
static int
any_sharing(void)
{
	const struct sy_prefix_pool *p;
	int yes = 0;

	pthread_mutex_lock(&reg_lock);
	for (p = pools; p != NULL && !yes; p = p->next)
		yes = p->share;
	pthread_mutex_unlock(&reg_lock);
	return yes;
}

/* ==== The outbox ==== */

/* One placement for the stream. */
struct placement {
	char *key;
	char *endpoint;
	uint64_t *hashes;
	size_t n;
};

static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static struct placement outbox[OUTBOX_MAX];
static size_t out_first, out_n;
static atomic_int bus_running;
static atomic_ullong out_dropped;

static void
placement_free(struct placement *pl)
{
	free(pl->key);
	free(pl->endpoint);
	free(pl->hashes);
	memset(pl, 0, sizeof *pl);
}

void
sy_prefix_pool_publish(struct sy_prefix_pool *p, size_t ep,
    const uint64_t *hashes, size_t n)
{
	struct placement pl;

	if (p == NULL || !p->share || n == 0 || ep >= p->n ||
	    !atomic_load_explicit(&bus_running, memory_order_relaxed))
		return;
	pl.key = sy_xstrdup(p->key);
	pl.endpoint = sy_xstrdup(p->names[ep]);
	pl.hashes = sy_xmalloc(n * sizeof *hashes);
	memcpy(pl.hashes, hashes, n * sizeof *hashes);
	pl.n = n;
	pthread_mutex_lock(&out_lock);
	if (out_n == OUTBOX_MAX) {
		placement_free(&outbox[out_first]);
		out_first = (out_first + 1) % OUTBOX_MAX;
		out_n--;
		atomic_fetch_add(&out_dropped, 1);
	}
	outbox[(out_first + out_n++) % OUTBOX_MAX] = pl;
	pthread_mutex_unlock(&out_lock);
}

/* Takes the oldest queued placement into *pl; 0 when there is none. */
static int
outbox_take(struct placement *pl)
{
	int got = 0;

	pthread_mutex_lock(&out_lock);
	if (out_n > 0) {
		*pl = outbox[out_first];
		memset(&outbox[out_first], 0, sizeof outbox[out_first]);
		out_first = (out_first + 1) % OUTBOX_MAX;
		out_n--;
		got = 1;
	}
	pthread_mutex_unlock(&out_lock);
	return got;
}

/* ==== The bus ==== */

struct sy_prefix_bus {
	struct sy_redis *r;
	struct event *timer;
	struct sy_redis_cmd *read;	/* an XREAD waiting for its reply */
	char inst[24];			/* this instance, in its entries */
	char last[48];			/* the last entry id read */
};

/* Applies the placement of n hashes (8 bytes each, as sent) to endpoint name of every sharing pool of key. */
static void
apply(const char *key, size_t keylen, const char *name, size_t namelen,
    const char *blob, size_t len)
{
	struct sy_prefix_pool *p;
	uint64_t *hashes;
	size_t n = len / sizeof *hashes, i;

	if (n == 0)
		return;
	hashes = sy_xmalloc(n * sizeof *hashes);
	memcpy(hashes, blob, n * sizeof *hashes);
	pthread_mutex_lock(&reg_lock);
	for (p = pools; p != NULL; p = p->next) {
		if (!p->share || strlen(p->key) != keylen ||
		    memcmp(p->key, key, keylen) != 0)
			continue;
		for (i = 0; i < p->n; i++)
			if (strlen(p->names[i]) == namelen &&
			    memcmp(p->names[i], name, namelen) == 0)
				break;
		if (i == p->n)
			continue;
		sy_prefix_set_insert(&p->sets[i], hashes, n);
		atomic_fetch_add(&p->counts[i].applied, n);
	}
	pthread_mutex_unlock(&reg_lock);
	free(hashes);
}

/* One stream entry: [id, [field, value, ...]]. */
static void
entry(struct sy_prefix_bus *b, const redisReply *e)
{
	const redisReply *id, *f, *k, *v;
	const char *key = NULL, *name = NULL, *blob = NULL;
	size_t keylen = 0, namelen = 0, bloblen = 0, i;
	int own = 0;

	if (e->type != REDIS_REPLY_ARRAY || e->elements != 2)
		return;
	id = e->element[0];
	f = e->element[1];
	if (id->type != REDIS_REPLY_STRING || id->len >= sizeof b->last)
		return;
	memcpy(b->last, id->str, id->len);
	b->last[id->len] = '\0';
	if (f->type != REDIS_REPLY_ARRAY)
		return;
	for (i = 0; i + 1 < f->elements; i += 2) {
		k = f->element[i];
		v = f->element[i + 1];
		if (k->type != REDIS_REPLY_STRING ||
		    v->type != REDIS_REPLY_STRING || k->len != 1)
			continue;
		switch (k->str[0]) {
		case 'i':
			own = strlen(b->inst) == v->len &&
			    memcmp(b->inst, v->str, v->len) == 0;
			break;
		case 'k':
			key = v->str;
			keylen = v->len;
			break;
		case 'e':
			name = v->str;
			namelen = v->len;
			break;
		case 'b':
			blob = v->str;
			bloblen = v->len;
			break;
		}
	}
	if (!own && key != NULL && name != NULL && blob != NULL)
		apply(key, keylen, name, namelen, blob, bloblen);
}

/* XREAD's reply: [[stream, [entry, ...]]], or nil when nothing is new. */
static void
on_read(void *arg, const redisReply *rep)
{
	struct sy_prefix_bus *b = arg;
	const redisReply *s;
	size_t i;

	b->read = NULL;
	if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements < 1)
		return;
	s = rep->element[0];
	if (s->type != REDIS_REPLY_ARRAY || s->elements != 2 ||
	    s->element[1]->type != REDIS_REPLY_ARRAY)
		return;
	for (i = 0; i < s->element[1]->elements; i++)
		entry(b, s->element[1]->element[i]);
}

/* Sends what is queued, asks for what is new, and comes back in BUS_MS. */
static void
tick(evutil_socket_t fd, short what, void *arg)
{
	struct sy_prefix_bus *b = arg;
	struct timeval tv = { 0, BUS_MS * 1000 };
	struct placement pl;
	char maxlen[24];
	const char *argv[14];
	size_t lens[14];
	int i;

	(void)fd;
	(void)what;
	snprintf(maxlen, sizeof maxlen, "%d", SY_PREFIX_STREAM_MAX);
	while (sy_redis_connected(b->r) && outbox_take(&pl)) {
		i = 0;
		argv[i++] = "XADD";
		argv[i++] = SY_PREFIX_STREAM;
		argv[i++] = "MAXLEN";
		argv[i++] = "~";
		argv[i++] = maxlen;
		argv[i++] = "*";
		argv[i++] = "i";
		argv[i++] = b->inst;
		argv[i++] = "k";
		argv[i++] = pl.key;
		argv[i++] = "e";
		argv[i++] = pl.endpoint;
		argv[i++] = "b";
		for (i = 0; i < 13; i++)
			lens[i] = strlen(argv[i]);
		argv[13] = (const char *)pl.hashes;
		lens[13] = pl.n * sizeof *pl.hashes;
		sy_redis_sendv(b->r, 14, argv, lens);
		placement_free(&pl);
	}
	/* Without a pool that shares, Redis is left alone. */
	if (b->read == NULL && sy_redis_connected(b->r) && any_sharing())
		b->read = sy_redis_commandf(b->r, on_read, b,
		    "XREAD COUNT %d STREAMS %s %s", READ_COUNT,
		    SY_PREFIX_STREAM, b->last);
	evtimer_add(b->timer, &tv);
}

struct sy_prefix_bus *
sy_prefix_bus_start(struct event_base *base, struct sy_redis *r,
    uint64_t instance)
{
	struct sy_prefix_bus *b;

	if (r == NULL)
		return NULL;
	b = sy_xcalloc(1, sizeof *b);
	b->r = r;
	snprintf(b->inst, sizeof b->inst, "%016llx",
	    (unsigned long long)instance);
	/* From the oldest entry kept: a new instance learns the fleet. */
	snprintf(b->last, sizeof b->last, "0-0");
	b->timer = evtimer_new(base, tick, b);
	atomic_store(&bus_running, 1);
	tick(-1, 0, b);
	return b;
}

void
sy_prefix_bus_stop(struct sy_prefix_bus *b)
{
	struct placement pl;

	if (b == NULL)
		return;
	atomic_store(&bus_running, 0);
	if (b->read != NULL)
		sy_redis_cancel(b->read);
	event_free(b->timer);
	while (outbox_take(&pl))
		placement_free(&pl);
	free(b);
}

/* ==== Metrics ==== */

/* What one family shows of endpoint i of a pool. */
typedef unsigned long long (*figure_fn)(struct sy_prefix_pool *p, size_t i,
    size_t off);

/* The counter at offset off of its counts. */
static unsigned long long
fig_count(struct sy_prefix_pool *p, size_t i, size_t off)
{
	return atomic_load((atomic_ullong *)((char *)&p->counts[i] + off));
}

static unsigned long long
fig_blocks(struct sy_prefix_pool *p, size_t i, size_t off)
{
	(void)off;
	return sy_prefix_set_blocks(&p->sets[i]);
}

static unsigned long long
fig_bytes(struct sy_prefix_pool *p, size_t i, size_t off)
{
	(void)off;
	return sy_prefix_set_bytes(&p->sets[i]);
}

#define COUNT(f) fig_count, offsetof(struct sy_prefix_counts, f)

static const struct {
	const char *name, *type, *help;
	figure_fn fn;
	size_t off;
} families[] = {
	{ "switchyard_prefix_predicted_tokens_total", "counter",
	  "Prompt tokens prefix_aware's index said the endpoint held, over "
	  "the answers that reported cached tokens.", COUNT(predicted) },
	{ "switchyard_prefix_reported_tokens_total", "counter",
	  "Cached prompt tokens the endpoint reported in those answers.",
	  COUNT(reported) },
	{ "switchyard_prefix_evicted_blocks_total", "counter",
	  "Blocks evicted from the index because the endpoint reported fewer "
	  "cached tokens than predicted.", COUNT(evicted) },
	{ "switchyard_prefix_applied_blocks_total", "counter",
	  "Blocks placed in the index by other gateway instances.",
	  COUNT(applied) },
	{ "switchyard_prefix_index_blocks", "gauge",
	  "Blocks the index believes the endpoint holds.", fig_blocks, 0 },
	{ "switchyard_prefix_index_bytes", "gauge",
	  "Memory the endpoint's index takes.", fig_bytes, 0 },
};

void
sy_prefix_prometheus(struct evbuffer *out)
{
	struct sy_prefix_pool *p;
	size_t f, i;

	pthread_mutex_lock(&reg_lock);
	if (pools == NULL) {
		pthread_mutex_unlock(&reg_lock);
		return;
	}
	for (f = 0; f < sizeof families / sizeof families[0]; f++) {
		evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n",
		    families[f].name, families[f].help, families[f].name,
		    families[f].type);
		for (p = pools; p != NULL; p = p->next) {
			if (superseded(p))
				continue;
			for (i = 0; i < p->n; i++) {
				evbuffer_add_printf(out, "%s{route=\"",
				    families[f].name);
				sy_metrics_put_label(out, p->route);
				evbuffer_add(out, "\",model=\"", 9);
				sy_metrics_put_label(out, p->model);
				evbuffer_add(out, "\",endpoint=\"", 12);
				sy_metrics_put_label(out, p->names[i]);
				evbuffer_add_printf(out, "\"} %llu\n",
				    families[f].fn(p, i, families[f].off));
			}
		}
	}
	pthread_mutex_unlock(&reg_lock);
}
