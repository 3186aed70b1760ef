/* The admin API of tenants: dynamic API keys made, listed, changed and revoked (kept in Redis, where every instance reads them), and the usage and spend of keys and teams over a window of days. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <hiredis/hiredis.h>
#include <jansson.h>

#include "admin.h"
#include "config.h"
#include "counters.h"
#include "http1.h"
#include "keystore.h"
#include "redis.h"
#include "server.h"
#include "tenants.h"
#include "util.h"

/*
 * Redis holds each dynamic key's object under {prefix}key:HASH (where the
 * workers look keys up) and the index {prefix}keys (a hash: id → HASH).
 * Each script below is one atomic step.
 */

/* KEYS: index, the key's object.  ARGV: id, hash, object.  1, or 0 when the id is taken. */
static const char create_lua[] =
    "if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then\n"
    "  return 0\n"
    "end\n"
    "redis.call('SET', KEYS[2], ARGV[3])\n"
    "return 1\n";

/* KEYS: index.  ARGV: the prefix, an id or "" for all.  The key objects. */
static const char get_lua[] =
    "local out = {}\n"
    "local function one(h)\n"
    "  local v = redis.call('GET', ARGV[1] .. 'key:' .. h)\n"
    "  if v then out[#out + 1] = v end\n"
    "end\n"
    "if ARGV[2] ~= '' then\n"
    "  local h = redis.call('HGET', KEYS[1], ARGV[2])\n"
    "  if h then one(h) end\n"
    "  return out\n"
    "end\n"
    "local all = redis.call('HGETALL', KEYS[1])\n"
    "for i = 2, #all, 2 do one(all[i]) end\n"
    "return out\n";

/* KEYS: index.  ARGV: prefix, id, hash, object.  1, or 0 when the key is not (or no longer) there. */
static const char update_lua[] =
    "if redis.call('HGET', KEYS[1], ARGV[2]) ~= ARGV[3] then return 0 end\n"
    "redis.call('SET', ARGV[1] .. 'key:' .. ARGV[3], ARGV[4])\n"
    "return 1\n";

/* KEYS: index.  ARGV: prefix, id.  The key's hash, or nil when there was none. */
static const char delete_lua[] =
    "local h = redis.call('HGET', KEYS[1], ARGV[2])\n"
    "if not h then return false end\n"
    "redis.call('DEL', ARGV[1] .. 'key:' .. h)\n"
    "redis.call('HDEL', KEYS[1], ARGV[2])\n"
    "return h\n";

/* KEYS: days' hashes.  Each day's fields and values, flat, in order. */
static const char usage_lua[] =
    "local out = {}\n"
    "for i = 1, #KEYS do out[i] = redis.call('HGETALL', KEYS[i]) end\n"
    "return out\n";

/* What an admin request waits on Redis for. */
enum op_kind { OP_CREATE, OP_LIST, OP_GET, OP_PATCH_READ, OP_PATCH_WRITE,
    OP_DELETE, OP_USAGE };

struct op {
	enum op_kind kind;
	struct sy_conn *c;
	struct sy_redis *r;
	struct sy_redis_cmd *cmd;
	char prefix[80];
	char id[200];
	json_t *obj;			/* a key object being written, or a patch */
	json_t *out;			/* the answer being built */
	char secret[64];		/* a new key, said once */
	char days[SY_USAGE_KEEP_DAYS][40];	/* OP_USAGE: YYYYMMDD */
	size_t ndays;
	struct sy_config *cfg;		/* the snapshot in force (a reference) */
};

static void on_reply(void *arg, const redisReply *rep);

/* Sends obj (stolen) with status. */
static void
answer(struct sy_conn *c, int status, json_t *obj)
{
	struct evbuffer *body = evbuffer_new();
	char *text = json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(10));

	evbuffer_add(body, text, strlen(text));
	evbuffer_add(body, "\n", 1);
	sy_conn_respond(c, status, "application/json", NULL, body);
	evbuffer_free(body);
	free(text);
	json_decref(obj);
}

static void
op_free(struct op *op)
{
	if (op->cfg != NULL)
		sy_config_unref(op->cfg);
	json_decref(op->obj);
	json_decref(op->out);
	free(op);
}

/* The client left: Redis' reply is for nobody. */
static void
on_gone(void *owner, int why)
{
	struct op *op = owner;

	(void)why;
	if (op->cmd != NULL)
		sy_redis_cancel(op->cmd);
	op_free(op);
}

/* Answers an error and frees op. */
static void
op_fail(struct op *op, int status, const char *type, const char *code,
    const char *msg)
{
	sy_conn_set_owner(op->c, NULL, NULL, NULL);
	sy_respond_error(op->c, status, type, code, msg, NULL);
	op_free(op);
}

/* Answers obj (stolen) and frees op. */
static void
op_done(struct op *op, int status, json_t *obj)
{
	sy_conn_set_owner(op->c, NULL, NULL, NULL);
	answer(op->c, status, obj);
	op_free(op);
}

/* Sends one of the scripts with nkeys keys then args, NULL-terminated. */
static int
send_script(struct op *op, const char *script, const char *const *args,
    int nkeys)
{
	const char *argv[SY_USAGE_KEEP_DAYS + 8];
	size_t lens[SY_USAGE_KEEP_DAYS + 8];
	char n[16];
	int a = 0, i;

	argv[a++] = "EVAL";
	argv[a++] = script;
	snprintf(n, sizeof n, "%d", nkeys);
	argv[a++] = n;
	for (i = 0; args[i] != NULL && a < (int)(sizeof argv / sizeof argv[0]);
	    i++)
		argv[a++] = args[i];
	for (i = 0; i < a; i++)
		lens[i] = strlen(argv[i]);
	op->cmd = sy_redis_command(op->r, on_reply, op, a, argv, lens);
	if (op->cmd == NULL) {
		op_fail(op, 503, "server_error", "redis_unavailable",
		    "Redis, where dynamic keys and usage are kept, is not "
		    "reachable now; retry later");
		return -1;
	}
	sy_conn_set_owner(op->c, op, on_gone, NULL);
	return 0;
}

/* The index's name into buf. */
static const char *
index_name(const struct op *op, char *buf, size_t len)
{
	snprintf(buf, len, "%skeys", op->prefix);
	return buf;
}

/* The static key of cfg called id, or NULL. */
static const struct sy_key *
static_key(const struct sy_config *cfg, const char *id)
{
	size_t i;

	for (i = 0; i < cfg->tenancy.nkeys; i++)
		if (strcmp(cfg->tenancy.keys[i].id, id) == 0)
			return &cfg->tenancy.keys[i];
	return NULL;
}

/* A key object as the API shows it: the object and where it is kept. */
static json_t *
shown(json_t *o, const char *source)
{
	json_object_set_new(o, "object", json_string("api_key"));
	json_object_set_new(o, "source", json_string(source));
	return o;
}

/*
 * Checks a key object about to be written: it parses as a key, and its
 * team is one of cfg's when cfg names teams.  0, or -1 with a message.
 */
static int
check_key(const struct sy_config *cfg, const json_t *o, char *msg,
    size_t len)
{
	struct sy_key k;
	char *err = NULL;
	int rc = 0;

	if (sy_key_parse(o, &k, &err) != 0) {
		snprintf(msg, len, "key%s", err);
		free(err);
		sy_key_clear(&k);
		return -1;
	}
	if (k.team != NULL && cfg->tenancy.nteams > 0 &&
	    sy_tenancy_team(&cfg->tenancy, k.team) == NULL) {
		snprintf(msg, len, "key.team: no team %s in the config", k.team);
		rc = -1;
	}
	sy_key_clear(&k);
	return rc;
}

/* Whether s is a fit key id: 1 to 128 letters, digits, '-', '_', '.', '@'. */
static int
good_id(const char *s)
{
	size_t n = 0;

	for (; s[n] != '\0'; n++)
		if (!isalnum((unsigned char)s[n]) && strchr("-_.@", s[n]) == NULL)
			return 0;
	return n > 0 && n <= 128;
}

/* ==== Requests ==== */

static void
keys_create(struct op *op, const struct sy_config *cfg, json_t *body)
{
	unsigned char hash[SY_KEY_HASH_LEN];
	char hex[2 * SY_KEY_HASH_LEN + 1], h[80], idx[128], obj_key[200];
	char msg[400], *text;
	const char *id;
	const char *args[6];
	json_t *v;

	if (!json_is_object(body))
		return op_fail(op, 400, "invalid_request_error", "invalid_key",
		    "the body must be a key object (id, name, team, routes, "
		    "models, rate_limits, budget, priority, metadata, expires)");
	if (json_object_get(body, "hash") != NULL)
		return op_fail(op, 400, "invalid_request_error", "invalid_key",
		    "key.hash: the gateway makes the key and its hash; leave "
		    "it out");
	if ((v = json_object_get(body, "id")) == NULL) {
		sy_keystore_new_secret(h, sizeof h);
		snprintf(obj_key, sizeof obj_key, "key-%.12s", h + 6);
		json_object_set_new(body, "id", json_string(obj_key));
	}
	id = json_string_value(json_object_get(body, "id"));
	if (id == NULL || !good_id(id))
		return op_fail(op, 400, "invalid_request_error", "invalid_key",
		    "key.id: expected 1 to 128 letters, digits, '-', '_', '.' "
		    "or '@'");
	if (static_key(cfg, id) != NULL)
		return op_fail(op, 409, "invalid_request_error", "key_exists",
		    "key.id: the config file has a key of that id");
	sy_keystore_new_secret(op->secret, sizeof op->secret);
	sy_key_hash(op->secret, strlen(op->secret), hash);
	sy_key_hash_hex(hash, hex);
	snprintf(h, sizeof h, "sha256:%s", hex);
	json_object_set_new(body, "hash", json_string(h));
	if (check_key(cfg, body, msg, sizeof msg) != 0)
		return op_fail(op, 400, "invalid_request_error", "invalid_key",
		    msg);
	snprintf(op->id, sizeof op->id, "%s", id);
	op->obj = json_incref(body);
	text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
	snprintf(obj_key, sizeof obj_key, "%skey:%s", op->prefix, hex);
	args[0] = index_name(op, idx, sizeof idx);
	args[1] = obj_key;
	args[2] = op->id;
	args[3] = hex;
	args[4] = text;
	args[5] = NULL;
	op->kind = OP_CREATE;
	send_script(op, create_lua, args, 2);
	free(text);
}

static void
keys_get(struct op *op, const struct sy_config *cfg, const char *id)
{
	const struct sy_key *k;
	char idx[128];
	const char *args[4];
	size_t i;

	op->out = json_array();
	if (id != NULL && (k = static_key(cfg, id)) != NULL)
		return op_done(op, 200, shown(sy_key_json(k), "config"));
	for (i = 0; id == NULL && i < cfg->tenancy.nkeys; i++)
		json_array_append_new(op->out,
		    shown(sy_key_json(&cfg->tenancy.keys[i]), "config"));
	if (op->r == NULL) {
		if (id != NULL)
			return op_fail(op, 404, "invalid_request_error",
			    "key_not_found", "no such key");
		return op_done(op, 200, json_pack("{s:s,s:O}", "object", "list",
		    "data", op->out));
	}
	snprintf(op->id, sizeof op->id, "%s", id != NULL ? id : "");
	args[0] = index_name(op, idx, sizeof idx);
	args[1] = op->prefix;
	args[2] = op->id;
	args[3] = NULL;
	op->kind = id != NULL ? OP_GET : OP_LIST;
	send_script(op, get_lua, args, 1);
}

static void
keys_patch(struct op *op, const struct sy_config *cfg, const char *id,
    json_t *body)
{
	char idx[128];
	const char *args[4];

	if (static_key(cfg, id) != NULL)
		return op_fail(op, 409, "invalid_request_error",
		    "key_in_config", "the key is defined in the config file: "
		    "change it there and reload");
	if (!json_is_object(body) || json_object_get(body, "id") != NULL ||
	    json_object_get(body, "hash") != NULL)
		return op_fail(op, 400, "invalid_request_error", "invalid_key",
		    "the body must be an object of the members to change "
		    "(not id or hash); null removes a member");
	op->obj = json_incref(body);
	snprintf(op->id, sizeof op->id, "%s", id);
	args[0] = index_name(op, idx, sizeof idx);
	args[1] = op->prefix;
	args[2] = op->id;
	args[3] = NULL;
	op->kind = OP_PATCH_READ;
	send_script(op, get_lua, args, 1);
}

static void
keys_delete(struct op *op, const struct sy_config *cfg, const char *id)
{
	char idx[128];
	const char *args[4];

	if (static_key(cfg, id) != NULL)
		return op_fail(op, 409, "invalid_request_error",
		    "key_in_config", "the key is defined in the config file: "
		    "remove it there and reload");
	snprintf(op->id, sizeof op->id, "%s", id);
	args[0] = index_name(op, idx, sizeof idx);
	args[1] = op->prefix;
	args[2] = op->id;
	args[3] = NULL;
	op->kind = OP_DELETE;
	send_script(op, delete_lua, args, 1);
}

/* ==== Usage ==== */

/* Adds value to the entry of field "key:ID:NAME" or "team:ID:NAME" in o. */
static void
usage_add(void *arg, const char *field, int64_t value)
{
	json_t *o = arg, *scope, *who;
	const char *c1, *c2;
	char kind[8], id[200];
	size_t n;

	if ((c1 = strchr(field, ':')) == NULL ||
	    (c2 = strrchr(field, ':')) == c1 || (n = (size_t)(c1 - field)) >=
	    sizeof kind || (size_t)(c2 - c1 - 1) >= sizeof id)
		return;
	memcpy(kind, field, n);
	kind[n] = '\0';
	memcpy(id, c1 + 1, (size_t)(c2 - c1 - 1));
	id[c2 - c1 - 1] = '\0';
	if ((scope = json_object_get(o, strcmp(kind, "key") == 0 ? "keys" :
	    strcmp(kind, "team") == 0 ? "teams" : "")) == NULL)
		return;
	if ((who = json_object_get(scope, id)) == NULL) {
		who = json_pack("{s:I,s:I,s:I,s:I}", "requests", (json_int_t)0,
		    "input_tokens", (json_int_t)0, "output_tokens",
		    (json_int_t)0, "micro_usd", (json_int_t)0);
		json_object_set_new(scope, id, who);
	}
	if (json_object_get(who, c2 + 1) != NULL)
		json_object_set_new(who, c2 + 1, json_integer(
		    json_integer_value(json_object_get(who, c2 + 1)) + value));
}

/* The usage answer: micro-USD made dollars, the key or team filter applied. */
static json_t *
usage_answer(json_t *o, const char *key, const char *team)
{
	const char *scopes[2] = { "keys", "teams" }, *filter[2] = { key, team };
	const char *name;
	json_t *scope, *who;
	void *tmp;
	size_t i;

	for (i = 0; i < 2; i++) {
		scope = json_object_get(o, scopes[i]);
		json_object_foreach_safe(scope, tmp, name, who) {
			if ((filter[0] != NULL || filter[1] != NULL) &&
			    (filter[i] == NULL || strcmp(filter[i], name) != 0)) {
				json_object_del(scope, name);
				continue;
			}
			json_object_set_new(who, "cost_usd", json_real((double)
			    json_integer_value(json_object_get(who,
			    "micro_usd")) / 1e6));
			json_object_del(who, "micro_usd");
		}
	}
	return o;
}

/* Reads "YYYY-MM-DD" as the midnight that starts it (seconds since the epoch); -1 when not a date. */
static long long
day_start(const char *s)
{
	struct tm tm;
	int y, m, d, n = 0;

	if (sscanf(s, "%4d-%2d-%2d%n", &y, &m, &d, &n) != 3 || s[n] != '\0' ||
	    m < 1 || m > 12 || d < 1 || d > 31 || y < 1970)
		return -1;
	memset(&tm, 0, sizeof tm);
	tm.tm_year = y - 1900;
	tm.tm_mon = m - 1;
	tm.tm_mday = d;
	return (long long)timegm(&tm);
}

/* The value of name in the query string q (decoded into buf), or NULL. */
static const char *
query_arg(const char *q, const char *name, char *buf, size_t len)
{
	size_t n = strlen(name), i;
	const char *p;
	unsigned x;

	for (p = q; p != NULL && *p != '\0'; p = strchr(p, '&'),
	    p = p ? p + 1 : NULL) {
		if (strncmp(p, name, n) != 0 || p[n] != '=')
			continue;
		for (p += n + 1, i = 0; *p != '\0' && *p != '&' && i + 1 < len;
		    p++) {
			if (*p == '%' && sscanf(p + 1, "%2x", &x) == 1) {
				buf[i++] = (char)x;
				p += 2;
			} else
				buf[i++] = *p == '+' ? ' ' : *p;
		}
		buf[i] = '\0';
		return buf;
	}
	return NULL;
}

static void
usage_get(struct op *op, const char *query)
{
	char from_s[32], to_s[32], days_s[16], key[200], team[200], buf[32];
	char names[SY_USAGE_KEEP_DAYS][128];
	const char *args[SY_USAGE_KEEP_DAYS + 1], *f, *t, *k, *tm_;
	long long from, to, now = (long long)(sy_wall_us() / 1000000), d;
	long days = 1;
	struct tm tm;
	time_t tt;
	size_t i;

	now -= now % 86400;
	f = query_arg(query, "from", from_s, sizeof from_s);
	t = query_arg(query, "to", to_s, sizeof to_s);
	k = query_arg(query, "key", key, sizeof key);
	tm_ = query_arg(query, "team", team, sizeof team);
	if (query_arg(query, "days", days_s, sizeof days_s) != NULL) {
		char *end;

		days = strtol(days_s, &end, 10);
		if (*end != '\0' || days < 1 || days > SY_USAGE_KEEP_DAYS || f)
			return op_fail(op, 400, "invalid_request_error",
			    "invalid_window", "days: expected 1 to 400 (the "
			    "days ending today), without from");
	}
	to = t != NULL ? day_start(t) : now;
	from = f != NULL ? day_start(f) : to - (days - 1) * 86400;
	if (from < 0 || to < 0 || from > to ||
	    (to - from) / 86400 >= SY_USAGE_KEEP_DAYS)
		return op_fail(op, 400, "invalid_request_error",
		    "invalid_window", "from and to: expected days as "
		    "YYYY-MM-DD, from not after to, at most 400 days");
	op->out = json_pack("{s:s,s:o,s:o}", "object", "usage", "keys",
	    json_object(), "teams", json_object());
	for (d = from; d <= to; d += 86400) {
		tt = (time_t)d;
		gmtime_r(&tt, &tm);
		snprintf(op->days[op->ndays], sizeof op->days[0],
		    "%04d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1,
		    tm.tm_mday);
		op->ndays++;
	}
	for (i = 0; i < 2; i++) {
		tt = (time_t)(i == 0 ? from : to);
		gmtime_r(&tt, &tm);
		strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
		json_object_set_new(op->out, i == 0 ? "from" : "to",
		    json_string(buf));
	}
	json_object_set_new(op->out, "source", json_string(op->r != NULL ?
	    "redis" : "memory"));
	op->obj = json_pack("{s:s?,s:s?}", "key", k, "team", tm_);
	if (op->r == NULL) {
		for (i = 0; i < op->ndays; i++)
			sy_usage_local(op->days[i], usage_add, op->out);
		return op_done(op, 200, usage_answer(json_incref(op->out), k,
		    tm_));
	}
	for (i = 0; i < op->ndays; i++) {
		snprintf(names[i], sizeof names[i], "%susage:%s", op->prefix,
		    op->days[i]);
		args[i] = names[i];
	}
	args[op->ndays] = NULL;
	op->kind = OP_USAGE;
	send_script(op, usage_lua, args, (int)op->ndays);
}

/* ==== Replies ==== */

/* The key objects of a get_lua reply, parsed (a new array). */
static json_t *
stored_keys(const redisReply *rep)
{
	json_t *a = json_array(), *o;
	size_t i;

	for (i = 0; i < rep->elements; i++) {
		if (rep->element[i]->type != REDIS_REPLY_STRING)
			continue;
		if ((o = json_loadb(rep->element[i]->str,
		    rep->element[i]->len, 0, NULL)) != NULL)
			json_array_append_new(a, o);
	}
	return a;
}

/* A PATCH's key read: the patch applied, checked, written. */
static void
patch_write(struct op *op, json_t *cur)
{
	char msg[400], idx[128], hex[2 * SY_KEY_HASH_LEN + 1], *text;
	const char *name, *h, *args[6];
	unsigned char hash[SY_KEY_HASH_LEN];
	json_t *v;

	json_object_foreach(op->obj, name, v) {
		if (json_is_null(v))
			json_object_del(cur, name);
		else
			json_object_set(cur, name, v);
	}
	if (check_key(op->cfg, cur, msg, sizeof msg) != 0)
		return op_fail(op, 400, "invalid_request_error", "invalid_key",
		    msg);
	h = json_string_value(json_object_get(cur, "hash"));
	if (h == NULL || sy_key_hash_parse(h, hash) != 0)
		return op_fail(op, 500, "server_error", "invalid_key",
		    "the key kept in Redis has no valid hash");
	sy_key_hash_hex(hash, hex);
	json_decref(op->obj);
	op->obj = json_incref(cur);
	text = json_dumps(cur, JSON_COMPACT | JSON_SORT_KEYS);
	args[0] = index_name(op, idx, sizeof idx);
	args[1] = op->prefix;
	args[2] = op->id;
	args[3] = hex;
	args[4] = text;
	args[5] = NULL;
	op->kind = OP_PATCH_WRITE;
	sy_keystore_forget(hash);
	send_script(op, update_lua, args, 1);
	free(text);
}

static void
on_reply(void *arg, const redisReply *rep)
{
	struct op *op = arg;
	unsigned char hash[SY_KEY_HASH_LEN];
	json_t *keys, *o;
	size_t i, j;

	op->cmd = NULL;
	if (rep == NULL || rep->type == REDIS_REPLY_ERROR)
		return op_fail(op, 503, "server_error", "redis_unavailable",
		    "Redis, where dynamic keys and usage are kept, did not "
		    "answer; retry later");
	switch (op->kind) {
	case OP_CREATE:
		if (rep->type != REDIS_REPLY_INTEGER || rep->integer != 1)
			return op_fail(op, 409, "invalid_request_error",
			    "key_exists", "key.id: a key of that id exists");
		o = shown(json_incref(op->obj), "redis");
		json_object_set_new(o, "key", json_string(op->secret));
		return op_done(op, 201, o);
	case OP_LIST:
	case OP_GET:
	case OP_PATCH_READ:
		if (rep->type != REDIS_REPLY_ARRAY)
			break;
		keys = stored_keys(rep);
		if (op->kind == OP_LIST) {
			for (i = 0; i < json_array_size(keys); i++)
				json_array_append_new(op->out, shown(json_incref(
				    json_array_get(keys, i)), "redis"));
			json_decref(keys);
			return op_done(op, 200, json_pack("{s:s,s:O}", "object",
			    "list", "data", op->out));
		}
		if (json_array_size(keys) == 0) {
			json_decref(keys);
			return op_fail(op, 404, "invalid_request_error",
			    "key_not_found", "no such key");
		}
		o = json_incref(json_array_get(keys, 0));
		json_decref(keys);
		if (op->kind == OP_GET)
			return op_done(op, 200, shown(o, "redis"));
		patch_write(op, o);
		json_decref(o);
		return;
	case OP_PATCH_WRITE:
		if (rep->type != REDIS_REPLY_INTEGER || rep->integer != 1)
			return op_fail(op, 404, "invalid_request_error",
			    "key_not_found", "the key was revoked meanwhile");
		return op_done(op, 200, shown(json_incref(op->obj), "redis"));
	case OP_DELETE:
		if (rep->type != REDIS_REPLY_STRING ||
		    sy_key_hash_parse(rep->str, hash) != 0)
			return op_fail(op, 404, "invalid_request_error",
			    "key_not_found", "no such key");
		sy_keystore_forget(hash);
		return op_done(op, 200, json_pack("{s:s,s:s,s:b}", "object",
		    "api_key", "id", op->id, "deleted", 1));
	case OP_USAGE:
		if (rep->type != REDIS_REPLY_ARRAY)
			break;
		for (i = 0; i < rep->elements; i++) {
			const redisReply *day = rep->element[i];

			if (day->type != REDIS_REPLY_ARRAY)
				continue;
			for (j = 0; j + 1 < day->elements; j += 2)
				if (day->element[j]->type == REDIS_REPLY_STRING &&
				    day->element[j + 1]->type ==
				    REDIS_REPLY_STRING)
					usage_add(op->out, day->element[j]->str,
					    strtoll(day->element[j + 1]->str,
					    NULL, 10));
		}
		return op_done(op, 200, usage_answer(json_incref(op->out),
		    json_string_value(json_object_get(op->obj, "key")),
		    json_string_value(json_object_get(op->obj, "team"))));
	}
	op_fail(op, 502, "server_error", "redis_bad_reply",
	    "Redis' reply was not what the gateway expects");
}

/* ==== Paths ==== */

int
sy_admin_tenants(struct sy_admin *a, struct sy_conn *c,
    const struct sy_http1_msg *head, struct evbuffer *body)
{
	struct sy_config *cfg = a->current(a->arg);
	const char *target = head->target, *q, *id = NULL;
	size_t plen = strcspn(target, "?");
	char idbuf[200];
	json_t *json = NULL;
	struct op *op;
	int get = strcmp(head->method, "GET") == 0;

	q = target[plen] == '?' ? target + plen + 1 : "";
	if (plen == 11 && strncmp(target, "/admin/keys", 11) == 0)
		id = NULL;
	else if (plen > 12 && strncmp(target, "/admin/keys/", 12) == 0 &&
	    plen - 12 < sizeof idbuf) {
		memcpy(idbuf, target + 12, plen - 12);
		idbuf[plen - 12] = '\0';
		id = idbuf;
	} else if (plen == 12 && strncmp(target, "/admin/usage", 12) == 0) {
		if (!get) {
			sy_respond_error(c, 405, "invalid_request_error",
			    "method_not_allowed", "/admin/usage: GET only",
			    NULL);
			return 1;
		}
		op = sy_xcalloc(1, sizeof *op);
		op->c = c;
		op->r = a->redis;
		op->cfg = sy_config_ref(cfg);
		snprintf(op->prefix, sizeof op->prefix, "%s",
		    cfg->tenancy.redis_prefix);
		usage_get(op, q);
		return 1;
	} else
		return 0;
	if (evbuffer_get_length(body) > 0) {
		json_error_t e;

		json = json_loadb((const char *)evbuffer_pullup(body, -1),
		    evbuffer_get_length(body), JSON_REJECT_DUPLICATES, &e);
		if (json == NULL) {
			char msg[300];

			snprintf(msg, sizeof msg, "the body is not JSON: %s",
			    e.text);
			sy_respond_error(c, 400, "invalid_request_error",
			    "invalid_json", msg, NULL);
			return 1;
		}
	}
	op = sy_xcalloc(1, sizeof *op);
	op->c = c;
	op->r = a->redis;
	op->cfg = sy_config_ref(cfg);
	snprintf(op->prefix, sizeof op->prefix, "%s", cfg->tenancy.redis_prefix);
	if (get)
		keys_get(op, cfg, id);
	else if (op->r == NULL)
		op_fail(op, 409, "invalid_request_error", "no_redis",
		    "dynamic keys are kept in Redis: configure the top-level "
		    "redis object");
	else if (id == NULL && strcmp(head->method, "POST") == 0)
		keys_create(op, cfg, json);
	else if (id != NULL && strcmp(head->method, "PATCH") == 0)
		keys_patch(op, cfg, id, json);
	else if (id != NULL && strcmp(head->method, "DELETE") == 0)
		keys_delete(op, cfg, id);
	else
		op_fail(op, 405, "invalid_request_error", "method_not_allowed",
		    "/admin/keys: GET or POST; /admin/keys/ID: GET, PATCH or "
		    "DELETE");
	json_decref(json);
	return 1;
}
