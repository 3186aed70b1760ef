/* Counters of rate limits and budgets that hold across gateway instances: a request's counters are reserved together in one Redis round trip (a Lua script that checks them all, then adds to them all) and settled with the real usage after; in memory when there is no Redis, or each instance its share while Redis is away. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <openssl/evp.h>

#include "counters.h"
#include "redis.h"
#include "util.h"

/*
 * KEYS: the counters.  ARGV: for each, its limit, the amount to add and
 * the TTL of a new key (0: none).  Either every counter stays within its
 * limit with its amount added, and all are added ({1, values...}), or
 * none is ({0, the first counter over, its value}).  A counter whose
 * amount is 0 or less is never refused.
 */
static const char reserve_lua[] =
    "local n = #KEYS\n"
    "local v = {}\n"
    "for i = 1, n do\n"
    "  local cur = tonumber(redis.call('GET', KEYS[i]) or '0')\n"
    "  local lim = tonumber(ARGV[3 * i - 2])\n"
    "  local amt = tonumber(ARGV[3 * i - 1])\n"
    "  if amt > 0 and cur + amt > lim then return {0, i, cur} end\n"
    "  v[i] = cur\n"
    "end\n"
    "local out = {1}\n"
    "for i = 1, n do\n"
    "  local amt = tonumber(ARGV[3 * i - 1])\n"
    "  local ttl = tonumber(ARGV[3 * i])\n"
    "  local now = v[i]\n"
    "  if amt ~= 0 then\n"
    "    now = redis.call('INCRBY', KEYS[i], amt)\n"
    "    if ttl > 0 and now == amt then redis.call('EXPIRE', KEYS[i], ttl) end\n"
    "  end\n"
    "  out[i + 1] = now\n"
    "end\n"
    "return out\n";

/* The script's SHA-1 in hex, for EVALSHA; made once. */
static char reserve_sha[41];
static pthread_once_t sha_once = PTHREAD_ONCE_INIT;

static void
sha_make(void)
{
	unsigned char md[20];
	unsigned int n = sizeof md;
	size_t i;

	EVP_Digest(reserve_lua, sizeof reserve_lua - 1, md, &n, EVP_sha1(),
	    NULL);
	for (i = 0; i < 20; i++)
		snprintf(reserve_sha + 2 * i, 3, "%02x", md[i]);
}

/* ==== Counters of a request ==== */

static const char *const kind_names[SY_LIMIT_NKINDS] = {
	"requests", "tokens", "input_tokens", "output_tokens"
};

/* The amount a request of these estimates adds to a counter of kind. */
static int64_t
amount_of(enum sy_limit_kind kind, int64_t in, int64_t out)
{
	switch (kind) {
	case SY_LIMIT_REQUESTS:
		return 1;
	case SY_LIMIT_TOKENS:
		return in + out;
	case SY_LIMIT_INPUT_TOKENS:
		return in;
	default:
		return out;
	}
}

/* The index and end (wall ms) of a budget's period at now_ms. */
static void
period_of(enum sy_budget_period p, uint64_t now_ms, char *idx, size_t len,
    uint64_t *end_ms, unsigned *ttl_s)
{
	time_t t = (time_t)(now_ms / 1000), e;
	struct tm tm;

	gmtime_r(&t, &tm);
	switch (p) {
	case SY_BUDGET_DAY:
		snprintf(idx, len, "d%04d%02d%02d", tm.tm_year + 1900,
		    tm.tm_mon + 1, tm.tm_mday);
		*end_ms = ((uint64_t)t / 86400 + 1) * 86400 * 1000;
		*ttl_s = 2 * 86400;
		break;
	case SY_BUDGET_MONTH:
		snprintf(idx, len, "m%04d%02d", tm.tm_year + 1900,
		    tm.tm_mon + 1);
		tm.tm_mday = 1;
		tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
		if (++tm.tm_mon == 12) {
			tm.tm_mon = 0;
			tm.tm_year++;
		}
		e = timegm(&tm);
		*end_ms = (uint64_t)e * 1000;
		*ttl_s = 33 * 86400;
		break;
	default:
		snprintf(idx, len, "total");
		*end_ms = 0;
		*ttl_s = 0;
		break;
	}
}

void
sy_reservation_add(struct sy_reservation *res, const char *prefix,
    const char *scope, const char *name, const struct sy_quota *limits,
    uint64_t now_ms, int64_t in, int64_t out, int64_t micro_usd)
{
	const struct sy_rate_limit *r;
	const struct sy_budget *b;
	struct sy_counter *c;
	uint64_t now_s = now_ms / 1000, w;
	char idx[32];
	size_t i;

	for (i = 0; i < limits->nrates && res->n < SY_MAX_COUNTERS; i++) {
		r = &limits->rates[i];
		c = &res->c[res->n++];
		memset(c, 0, sizeof *c);
		w = now_s / r->window_s;
		snprintf(c->key, sizeof c->key, "%srl:%s:%s:%s:%u:%llu", prefix,
		    scope, name, kind_names[r->kind], r->window_s,
		    (unsigned long long)w);
		c->unit = r->kind == SY_LIMIT_REQUESTS ? SY_UNIT_REQUESTS :
		    SY_UNIT_TOKENS;
		c->kind = r->kind;
		c->limit = (int64_t)r->limit;
		c->amount = amount_of(r->kind, in, out);
		c->ttl_s = r->window_s + 60;
		c->reset_ms = (w + 1) * r->window_s * 1000;
		c->scope = scope;
	}
	for (i = 0; i < limits->nbudgets && res->n < SY_MAX_COUNTERS; i++) {
		b = &limits->budgets[i];
		c = &res->c[res->n++];
		memset(c, 0, sizeof *c);
		period_of(b->period, now_ms, idx, sizeof idx, &c->reset_ms,
		    &c->ttl_s);
		snprintf(c->key, sizeof c->key, "%sspend:%s:%s:%s", prefix,
		    scope, name, idx);
		c->unit = SY_UNIT_MICRO_USD;
		c->limit = (int64_t)(b->usd * 1e6);
		c->soft = (int64_t)(b->soft_usd * 1e6);
		c->amount = micro_usd;
		c->scope = scope;
	}
}

/* ==== In memory ==== */

#define LOCAL_SLOTS 1024

struct local {
	struct local *next;
	int64_t value;
	uint64_t expires_ms;		/* 0: never */
	char key[];
};

static pthread_mutex_t local_lock = PTHREAD_MUTEX_INITIALIZER;
static struct local *local_table[LOCAL_SLOTS];

static size_t
slot_of(const char *key)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *key != '\0'; key++)
		h = (h ^ (unsigned char)*key) * 1099511628211ULL;
	return (size_t)(h % LOCAL_SLOTS);
}

/* Under local_lock: the counter of key (made at 0 when make), dropping expired ones of its slot. */
static struct local *
local_get(const char *key, uint64_t now_ms, unsigned ttl_s, int make)
{
	struct local **pl = &local_table[slot_of(key)], *l;
	size_t len;

	while ((l = *pl) != NULL) {
		if (l->expires_ms != 0 && l->expires_ms <= now_ms) {
			*pl = l->next;
			free(l);
			continue;
		}
		if (strcmp(l->key, key) == 0)
			return l;
		pl = &l->next;
	}
	if (!make)
		return NULL;
	len = strlen(key);
	l = sy_xcalloc(1, sizeof *l + len + 1);
	memcpy(l->key, key, len + 1);
	l->expires_ms = ttl_s ? now_ms + (uint64_t)ttl_s * 1000 : 0;
	*pl = l;
	return l;
}

/* Reserves res in memory, each limit divided by share. */
static enum sy_reserve_result
local_reserve(struct sy_reservation *res, unsigned share)
{
	uint64_t now = sy_wall_us() / 1000;
	struct local *l;
	int64_t limit;
	size_t i;

	res->local = 1;
	pthread_mutex_lock(&local_lock);
	for (i = 0; i < res->n; i++) {
		l = local_get(res->c[i].key, now, res->c[i].ttl_s, 0);
		limit = res->c[i].limit / (share > 0 ? share : 1);
		res->c[i].value = l != NULL ? l->value : 0;
		if (res->c[i].amount > 0 &&
		    res->c[i].value + res->c[i].amount > limit) {
			pthread_mutex_unlock(&local_lock);
			res->refused = i;
			return SY_RESERVE_REFUSED;
		}
	}
	for (i = 0; i < res->n; i++) {
		l = local_get(res->c[i].key, now, res->c[i].ttl_s, 1);
		l->value += res->c[i].amount;
		res->c[i].value = l->value;
	}
	pthread_mutex_unlock(&local_lock);
	return SY_RESERVE_ADMITTED;
}

/* Adds delta to the counter of key in memory. */
static void
local_add(const struct sy_counter *c, int64_t delta)
{
	uint64_t now = sy_wall_us() / 1000;

	pthread_mutex_lock(&local_lock);
	local_get(c->key, now, c->ttl_s, 1)->value += delta;
	pthread_mutex_unlock(&local_lock);
}

/* ==== In Redis ==== */

struct sy_reserve_op {
	struct sy_redis *r;
	struct sy_redis_cmd *cmd;
	struct sy_reservation *res;
	int fail_closed;
	unsigned share;
	int retried;			/* EVAL after a NOSCRIPT */
	sy_reserve_fn cb;
	void *arg;
};

static struct sy_redis_cmd *send_script(struct sy_reserve_op *op);

/* Redis did not answer: memory (its share) or unavailable. */
static enum sy_reserve_result
away(struct sy_reserve_op *op)
{
	if (op->fail_closed)
		return SY_RESERVE_UNAVAILABLE;
	return local_reserve(op->res, op->share);
}

static void
on_reserved(void *arg, const redisReply *rep)
{
	struct sy_reserve_op *op = arg;
	struct sy_reservation *res = op->res;
	enum sy_reserve_result result;
	size_t i;

	op->cmd = NULL;
	if (rep != NULL && rep->type == REDIS_REPLY_ERROR && !op->retried &&
	    strncmp(rep->str, "NOSCRIPT", 8) == 0) {
		op->retried = 1;
		if ((op->cmd = send_script(op)) != NULL)
			return;
		rep = NULL;
	}
	if (rep == NULL || rep->type != REDIS_REPLY_ARRAY ||
	    rep->elements < 1 || rep->element[0]->type != REDIS_REPLY_INTEGER)
		result = away(op);
	else if (rep->element[0]->integer == 1 && rep->elements == res->n + 1) {
		for (i = 0; i < res->n; i++)
			res->c[i].value = rep->element[i + 1]->integer;
		result = SY_RESERVE_ADMITTED;
	} else if (rep->element[0]->integer == 0 && rep->elements == 3) {
		res->refused = (size_t)rep->element[1]->integer - 1;
		if (res->refused >= res->n)
			res->refused = 0;
		res->c[res->refused].value = rep->element[2]->integer;
		result = SY_RESERVE_REFUSED;
	} else
		result = away(op);
	op->cb(op->arg, result);
	free(op);
}

/* Sends the reservation's script (EVALSHA, or EVAL after a NOSCRIPT). */
static struct sy_redis_cmd *
send_script(struct sy_reserve_op *op)
{
	struct sy_reservation *res = op->res;
	const char *argv[3 + 4 * SY_MAX_COUNTERS];
	size_t lens[3 + 4 * SY_MAX_COUNTERS];
	char nums[3 * SY_MAX_COUNTERS][24], nkeys[16];
	size_t i, a = 0, k = 0;

	argv[a] = op->retried ? "EVAL" : "EVALSHA";
	lens[a] = strlen(argv[a]);
	a++;
	argv[a] = op->retried ? reserve_lua : reserve_sha;
	lens[a] = op->retried ? sizeof reserve_lua - 1 : 40;
	a++;
	snprintf(nkeys, sizeof nkeys, "%zu", res->n);
	argv[a] = nkeys;
	lens[a++] = strlen(nkeys);
	for (i = 0; i < res->n; i++) {
		argv[a] = res->c[i].key;
		lens[a++] = strlen(res->c[i].key);
	}
	for (i = 0; i < res->n; i++) {
		snprintf(nums[k], sizeof nums[k], "%lld",
		    (long long)res->c[i].limit);
		snprintf(nums[k + 1], sizeof nums[k + 1], "%lld",
		    (long long)res->c[i].amount);
		snprintf(nums[k + 2], sizeof nums[k + 2], "%u", res->c[i].ttl_s);
		argv[a] = nums[k];
		lens[a++] = strlen(nums[k]);
		argv[a] = nums[k + 1];
		lens[a++] = strlen(nums[k + 1]);
		argv[a] = nums[k + 2];
		lens[a++] = strlen(nums[k + 2]);
		k += 3;
	}
	return sy_redis_command(op->r, on_reserved, op, (int)a, argv, lens);
}

enum sy_reserve_result
sy_reserve(struct sy_redis *r, struct sy_reservation *res, int fail_closed,
    unsigned share, sy_reserve_fn cb, void *arg, struct sy_reserve_op **out)
{
	struct sy_reserve_op *op;

	*out = NULL;
	if (res->n == 0)
		return SY_RESERVE_ADMITTED;
	if (r == NULL)
		return local_reserve(res, 1);
	pthread_once(&sha_once, sha_make);
	op = sy_xcalloc(1, sizeof *op);
	op->r = r;
	op->res = res;
	op->fail_closed = fail_closed;
	op->share = share;
	op->cb = cb;
	op->arg = arg;
	if ((op->cmd = send_script(op)) == NULL) {
		enum sy_reserve_result result = away(op);

		free(op);
		return result;
	}
	*out = op;
	return SY_RESERVE_PENDING;
}

void
sy_reserve_cancel(struct sy_reserve_op *op)
{
	if (op == NULL)
		return;
	if (op->cmd != NULL)
		sy_redis_cancel(op->cmd);
	free(op);
}

void
sy_reservation_settle(struct sy_redis *r, struct sy_reservation *res,
    int64_t in, int64_t out, int64_t micro_usd)
{
	struct sy_counter *c;
	int64_t real, delta;
	size_t i;

	for (i = 0; i < res->n; i++) {
		c = &res->c[i];
		if (c->unit == SY_UNIT_REQUESTS)
			continue;
		real = c->unit == SY_UNIT_MICRO_USD ? micro_usd :
		    amount_of(c->kind, in, out);
		if ((delta = real - c->amount) == 0)
			continue;
		c->value += delta;
		if (res->local || r == NULL)
			local_add(c, delta);
		else
			sy_redis_send(r, "INCRBY %s %lld", c->key,
			    (long long)delta);
	}
}

/* ==== Outcomes ==== */

static atomic_ullong outcomes[SY_LIMIT_NOUTCOMES];

void
sy_limits_note(enum sy_limit_outcome o)
{
	if (o < SY_LIMIT_NOUTCOMES)
		atomic_fetch_add_explicit(&outcomes[o], 1, memory_order_relaxed);
}

void
sy_limits_prometheus(struct evbuffer *out)
{
	static const char *const words[SY_LIMIT_NOUTCOMES] = {
		"admitted", "refused", "budget_spent", "in_memory", "unavailable",
		"past_soft_budget"
	};
	static const char name[] = "switchyard_limit_decisions_total";
	size_t i;

	evbuffer_add_printf(out, "# HELP %s Requests the rate limits and "
	    "budgets admitted or refused; in_memory: admitted on the "
	    "instance's share while Redis was away; unavailable: refused "
	    "(503) for it; past_soft_budget: admitted past a budget's soft "
	    "mark.\n# TYPE %s counter\n", name, name);
	for (i = 0; i < SY_LIMIT_NOUTCOMES; i++)
		evbuffer_add_printf(out, "%s{result=\"%s\"} %llu\n", name,
		    words[i], (unsigned long long)atomic_load_explicit(
		    &outcomes[i], memory_order_relaxed));
}

/* ==== Usage ==== */

const char *const sy_usage_fields[4] = {
	"requests", "input_tokens", "output_tokens", "micro_usd"
};

/* KEYS[1]: a day's hash; ARGV: field, amount, ...; then its TTL. */
static const char usage_lua[] =
    "for i = 1, #ARGV - 1, 2 do\n"
    "  redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])\n"
    "end\n"
    "redis.call('EXPIRE', KEYS[1], ARGV[#ARGV])\n";

void
sy_usage_count(struct sy_redis *r, const char *prefix, const char *key_id,
    const char *team, uint64_t now_ms, int64_t in, int64_t out,
    int64_t micro_usd)
{
	const int64_t amounts[4] = { 1, in, out, micro_usd };
	const char *argv[4 + 16 + 1];
	size_t lens[4 + 16 + 1];
	char fields[8][160], nums[4][24], day[40], hash[128];
	char ttl[16];
	const char *who[2][2] = { { "key", key_id }, { "team", team } };
	time_t t = (time_t)(now_ms / 1000);
	struct tm tm;
	size_t a = 0, f = 0, i, j;

	gmtime_r(&t, &tm);
	snprintf(day, sizeof day, "%04d%02d%02d", tm.tm_year + 1900,
	    tm.tm_mon + 1, tm.tm_mday);
	for (i = 0; i < 4; i++)
		snprintf(nums[i], sizeof nums[i], "%lld", (long long)amounts[i]);
	snprintf(hash, sizeof hash, "%susage:%s", prefix, day);
	argv[a++] = "EVAL";
	argv[a++] = usage_lua;
	argv[a++] = "1";
	argv[a++] = hash;
	for (i = 0; i < 2; i++) {
		if (who[i][1] == NULL)
			continue;
		for (j = 0; j < 4; j++, f++) {
			snprintf(fields[f], sizeof fields[f], "%s:%s:%s",
			    who[i][0], who[i][1], sy_usage_fields[j]);
			if (r == NULL) {
				struct sy_counter c = { .ttl_s =
				    SY_USAGE_KEEP_DAYS * 86400 };

				snprintf(c.key, sizeof c.key, "usage:%s:%s",
				    day, fields[f]);
				local_add(&c, amounts[j]);
				continue;
			}
			argv[a++] = fields[f];
			argv[a++] = nums[j];
		}
	}
	if (r == NULL || a == 4)
		return;
	snprintf(ttl, sizeof ttl, "%d", SY_USAGE_KEEP_DAYS * 86400);
	argv[a++] = ttl;
	for (i = 0; i < a; i++)
		lens[i] = strlen(argv[i]);
	sy_redis_sendv(r, (int)a, argv, lens);
}

void
sy_usage_local(const char *day, void (*fn)(void *arg, const char *field,
    int64_t value), void *arg)
{
	char head[32];
	struct local *l;
	size_t i, n;

	n = (size_t)snprintf(head, sizeof head, "usage:%s:", day);
	pthread_mutex_lock(&local_lock);
	for (i = 0; i < LOCAL_SLOTS; i++)
		for (l = local_table[i]; l != NULL; l = l->next)
			if (strncmp(l->key, head, n) == 0)
				fn(arg, l->key + n, l->value);
	pthread_mutex_unlock(&local_lock);
}

/* ==== Instances ==== */

/* How long a heartbeat counts. */
#define HEARTBEAT_MS 1000
#define HEARTBEAT_KEEP_MS 5000

static atomic_uint instances_seen = 1;

unsigned
sy_counters_instances(void)
{
	unsigned n = atomic_load(&instances_seen);

	return n > 0 ? n : 1;
}

struct sy_heartbeat {
	struct sy_redis *r;
	struct event *timer;
	struct sy_redis_cmd *cmd;
	char set[160];			/* the sorted set of instances */
	char member[16];		/* this instance's name in it */
};

static void
on_count(void *arg, const redisReply *rep)
{
	struct sy_heartbeat *h = arg;

	h->cmd = NULL;
	if (rep != NULL && rep->type == REDIS_REPLY_INTEGER && rep->integer > 0)
		atomic_store(&instances_seen, (unsigned)rep->integer);
}

static void
beat(evutil_socket_t fd, short what, void *arg)
{
	struct sy_heartbeat *h = arg;
	struct timeval tv = { HEARTBEAT_MS / 1000, (HEARTBEAT_MS % 1000) * 1000 };
	uint64_t now = sy_wall_us() / 1000;

	(void)fd;
	(void)what;
	sy_redis_send(h->r, "ZADD %s %llu %s", h->set, (unsigned long long)now,
	    h->member);
	sy_redis_send(h->r, "ZREMRANGEBYSCORE %s 0 %llu", h->set,
	    (unsigned long long)(now - HEARTBEAT_KEEP_MS));
	if (h->cmd == NULL)
		h->cmd = sy_redis_commandf(h->r, on_count, h, "ZCARD %s",
		    h->set);
	evtimer_add(h->timer, &tv);
}

struct sy_heartbeat *
sy_counters_heartbeat(struct event_base *base, struct sy_redis *r,
    const char *prefix, uint32_t boot_id)
{
	struct sy_heartbeat *h;

	if (r == NULL)
		return NULL;
	h = sy_xcalloc(1, sizeof *h);
	h->r = r;
	snprintf(h->set, sizeof h->set, "%sinstances", prefix);
	snprintf(h->member, sizeof h->member, "%08x", boot_id);
	h->timer = evtimer_new(base, beat, h);
	beat(-1, 0, h);
	return h;
}

void
sy_counters_heartbeat_stop(struct sy_heartbeat *h)
{
	if (h == NULL)
		return;
	if (h->cmd != NULL)
		sy_redis_cancel(h->cmd);
	event_free(h->timer);
	free(h);
}
