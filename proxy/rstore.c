/* Stored Responses: records kept by response id in Redis (SET EX, GET, DEL over the worker's connection) or in the memory LRU of the prompt cache's kind; and the "responses" config object. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <openssl/evp.h>

#include "cache.h"
#include "confrow.h"
#include "redis.h"
#include "rstore.h"
#include "util.h"

#define ID_MAX		200
#define KEY_MAX		(256 + 5 + ID_MAX + 1)	/* prefix, "resp:", id, NUL */

struct sy_rstore {
	struct sy_cache_lru *lru;	/* NULL: nothing kept in memory */
};

/* A lookup Redis is to answer. */
struct sy_rstore_op {
	struct sy_redis_cmd *cmd;
	sy_rstore_got_fn got;
	void *arg;
	size_t n;			/* ids asked */
	size_t *at;			/* the place of each key asked among them */
	size_t nkeys;
};

struct sy_rstore *
sy_rstore_new(size_t memory_bytes)
{
	struct sy_rstore *s = sy_xcalloc(1, sizeof *s);

	if (memory_bytes > 0)
		s->lru = sy_cache_lru_new(memory_bytes);
	return s;
}

void
sy_rstore_free(struct sy_rstore *s)
{
	if (s == NULL)
		return;
	sy_cache_lru_free(s->lru);
	free(s);
}

int
sy_rstore_id_valid(const char *id)
{
	size_t n = id != NULL ? strlen(id) : 0;

	return n > 0 && n <= ID_MAX && id[strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789_-")] == '\0';
}

/* The memory store's key of id: its SHA-256. */
static void
lru_key(const char *id, unsigned char key[SY_CACHE_KEY_LEN])
{
	unsigned int n = SY_CACHE_KEY_LEN;

	EVP_Digest(id, strlen(id), key, &n, EVP_sha256(), NULL);
}

/* Writes the Redis key of id into buf; returns its length. */
static size_t
redis_key(const char *prefix, const char *id, char buf[KEY_MAX])
{
	int n = snprintf(buf, KEY_MAX, "%.256sresp:%s", prefix, id);

	return n > 0 && n < KEY_MAX ? (size_t)n : 0;
}

/* The record in text (len bytes), a new reference, or NULL when it is not an object. */
static json_t *
record_of(const char *text, size_t len)
{
	json_t *rec = json_loadb(text, len, 0, NULL);

	if (!json_is_object(rec)) {
		json_decref(rec);
		return NULL;
	}
	return rec;
}

static void
on_get(void *arg, const redisReply *rep)
{
	struct sy_rstore_op *op = arg;
	json_t *recs = NULL, *rec;
	size_t i;

	if (rep != NULL && rep->type == REDIS_REPLY_ARRAY &&
	    rep->elements == op->nkeys) {
		recs = json_array();
		for (i = 0; i < op->n; i++)
			json_array_append_new(recs, json_null());
		for (i = 0; i < op->nkeys; i++)
			if (rep->element[i]->type == REDIS_REPLY_STRING &&
			    (rec = record_of(rep->element[i]->str,
			    rep->element[i]->len)) != NULL)
				json_array_set_new(recs, op->at[i], rec);
	}
	op->got(op->arg, recs != NULL ? SY_RSTORE_FOUND :
	    SY_RSTORE_UNAVAILABLE, recs);
	free(op->at);
	free(op);
}

/* Asks Redis for the valid ones of n ids: MGET of their keys. */
static enum sy_rstore_result
redis_get(struct sy_redis *r, const char *prefix, const char *const *ids,
    size_t n, sy_rstore_got_fn got, void *arg, struct sy_rstore_op **op)
{
	const char **argv = sy_xcalloc(n + 1, sizeof *argv);
	size_t *lens = sy_xcalloc(n + 1, sizeof *lens);
	char *keys = sy_xcalloc(n + 1, KEY_MAX);
	struct sy_rstore_op *o = sy_xcalloc(1, sizeof *o);
	size_t i, k;

	o->got = got;
	o->arg = arg;
	o->n = n;
	o->at = sy_xcalloc(n + 1, sizeof *o->at);
	argv[0] = "MGET";
	lens[0] = 4;
	for (i = 0; i < n; i++) {
		if (!sy_rstore_id_valid(ids[i]) || (k = redis_key(prefix,
		    ids[i], keys + o->nkeys * KEY_MAX)) == 0)
			continue;
		argv[o->nkeys + 1] = keys + o->nkeys * KEY_MAX;
		lens[o->nkeys + 1] = k;
		o->at[o->nkeys++] = i;
	}
	o->cmd = o->nkeys == 0 ? NULL : sy_redis_command(r, on_get, o,
	    (int)o->nkeys + 1, argv, lens);
	free(argv);
	free(lens);
	free(keys);
	if (o->cmd == NULL) {
		k = o->nkeys;
		free(o->at);
		free(o);
		return k == 0 ? SY_RSTORE_FOUND : SY_RSTORE_UNAVAILABLE;
	}
	*op = o;
	return SY_RSTORE_PENDING;
}

enum sy_rstore_result
sy_rstore_get(struct sy_rstore *s, struct sy_redis *r, const char *prefix,
    const char *const *ids, size_t n, json_t **recs, sy_rstore_got_fn got,
    void *arg, struct sy_rstore_op **op)
{
	unsigned char key[SY_CACHE_KEY_LEN];
	struct sy_cache_value *v;
	enum sy_rstore_result res;
	json_t *rec;
	size_t i;

	*recs = NULL;
	*op = NULL;
	if (r != NULL && (res = redis_get(r, prefix, ids, n, got, arg, op)) !=
	    SY_RSTORE_FOUND)
		return res;
	*recs = json_array();
	for (i = 0; i < n; i++) {
		rec = NULL;
		if (r == NULL && s != NULL && s->lru != NULL &&
		    sy_rstore_id_valid(ids[i])) {
			lru_key(ids[i], key);
			if ((v = sy_cache_lru_get(s->lru, key, sy_wall_us() /
			    1000)) != NULL) {
				rec = record_of(v->body, v->len);
				sy_cache_value_unref(v);
			}
		}
		json_array_append_new(*recs, rec != NULL ? rec : json_null());
	}
	return SY_RSTORE_FOUND;
}

void
sy_rstore_cancel(struct sy_rstore_op *op)
{
	if (op == NULL)
		return;
	sy_redis_cancel(op->cmd);
	free(op->at);
	free(op);
}

void
sy_rstore_put(struct sy_rstore *s, struct sy_redis *r, const char *prefix,
    const char *id, const json_t *rec, unsigned ttl_s)
{
	static const struct sy_usage none = { -1, -1, -1 };
	unsigned char key[SY_CACHE_KEY_LEN];
	struct sy_cache_value *v;
	uint64_t now_ms = sy_wall_us() / 1000;
	char k[KEY_MAX], *text;
	size_t klen;

	if (!sy_rstore_id_valid(id) || (r == NULL && (s == NULL ||
	    s->lru == NULL)) || (text = json_dumps(rec, JSON_COMPACT)) == NULL)
		return;
	if (r != NULL) {
		if ((klen = redis_key(prefix, id, k)) > 0)
			sy_redis_send(r, "SET %b %b EX %u", k, klen, text,
			    strlen(text), ttl_s);
	} else {
		lru_key(id, key);
		v = sy_cache_value_new(text, strlen(text), &none, now_ms);
		sy_cache_lru_put(s->lru, key, v, now_ms + (uint64_t)ttl_s *
		    1000);
		sy_cache_value_unref(v);
	}
	free(text);
}

void
sy_rstore_del(struct sy_rstore *s, struct sy_redis *r, const char *prefix,
    const char *const *ids, size_t n)
{
	unsigned char key[SY_CACHE_KEY_LEN];
	char k[KEY_MAX];
	size_t i, klen;

	for (i = 0; i < n; i++) {
		if (!sy_rstore_id_valid(ids[i]))
			continue;
		if (r != NULL) {
			if ((klen = redis_key(prefix, ids[i], k)) > 0)
				sy_redis_send(r, "DEL %b", k, klen);
		} else if (s != NULL && s->lru != NULL) {
			lru_key(ids[i], key);
			sy_cache_lru_remove(s->lru, key);
		}
	}
}

/* ==== Config ==== */

#define AT(field) offsetof(struct sy_responses_conf, field)

static const struct sy_conf_row responses_rows[] = {
	{ .name = "store", .type = SY_CONF_BOOL, .offset = AT(store),
	  .def.u = 1,
	  .doc = "responses are kept unless a request says store: false" },
	{ .name = "ttl_s", .type = SY_CONF_UINT, .offset = AT(ttl_s),
	  .def.u = 2592000, .min = 1, .max = 31536000,
	  .doc = "seconds a response is kept" },
	{ .name = "memory_bytes", .type = SY_CONF_SIZE,
	  .offset = AT(memory_bytes), .def.u = 64 * 1024 * 1024,
	  .max = (long long)1 << 40,
	  .doc = "bytes kept in memory without Redis (read at start)" },
	{ .name = NULL }
};

const struct sy_conf_table sy_responses_table = {
	.path = "responses",
	.rows = responses_rows,
	.size = sizeof(struct sy_responses_conf)
};
