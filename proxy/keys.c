/* API keys and their limits as objects: hashing, the key object's members (the same in the config and in Redis), lookups of static keys and teams, which routes and models a key may use. */
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "confrow.h"
#include "tenants.h"
#include "util.h"

/* ==== Hashes ==== */

void
sy_key_hash(const char *key, size_t len, unsigned char out[SY_KEY_HASH_LEN])
{
	unsigned int n = SY_KEY_HASH_LEN;

	EVP_Digest(key, len, out, &n, EVP_sha256(), NULL);
}

/* The value of hex digit c, or -1. */
static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
sy_key_hash_parse(const char *s, unsigned char out[SY_KEY_HASH_LEN])
{
	size_t i;
	int hi, lo;

	if (strncmp(s, "sha256:", 7) == 0)
		s += 7;
	if (strlen(s) != 2 * SY_KEY_HASH_LEN)
		return -1;
	for (i = 0; i < SY_KEY_HASH_LEN; i++) {
		if ((hi = hexval(s[2 * i])) < 0 || (lo = hexval(s[2 * i + 1])) < 0)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

void
sy_key_hash_hex(const unsigned char hash[SY_KEY_HASH_LEN],
    char hex[2 * SY_KEY_HASH_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < SY_KEY_HASH_LEN; i++) {
		hex[2 * i] = digits[hash[i] >> 4];
		hex[2 * i + 1] = digits[hash[i] & 15];
	}
	hex[2 * SY_KEY_HASH_LEN] = '\0';
}

/* ==== Limits ==== */

static const char *const limit_names[SY_LIMIT_NKINDS] = {
	"requests", "tokens", "input_tokens", "output_tokens"
};

static const char *const period_names[] = { "day", "month", "total" };

/* Fails with a message "PATH: ..." in *err; returns -1. */
static int bad(char **err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
bad(char **err, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	*err = s != NULL ? s : sy_xstrdup("out of memory");
	return -1;
}

/* Whether the members of o are only those in keys; else names the first other. */
static const char *
other_member(const json_t *o, const char *const *keys)
{
	const char *k;
	json_t *v;
	size_t i;

	json_object_foreach((json_t *)o, k, v) {
		for (i = 0; keys[i] != NULL && strcmp(keys[i], k) != 0; i++)
			;
		if (keys[i] == NULL)
			return k;
	}
	return NULL;
}

/* Reads a positive integer member of o (at most max) into *out; 1 if there, 0 if absent, -1 bad. */
static int
get_count(const json_t *o, const char *key, long long min, long long max,
    long long *out)
{
	json_t *v = json_object_get(o, key);

	if (v == NULL)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < min ||
	    json_integer_value(v) > max)
		return -1;
	*out = json_integer_value(v);
	return 1;
}

int
sy_rate_limits_parse(const json_t *v, struct sy_quota *out, char **err)
{
	static const char *const keys[] = {
		"requests", "tokens", "input_tokens", "output_tokens",
		"window_s", NULL
	};
	struct sy_rate_limit *r;
	const json_t *e;
	const char *other;
	long long n, w;
	size_t i, k, found;

	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_array(v))
		return bad(err, ": expected an array of limits");
	out->rates = sy_xcalloc(json_array_size(v) + 1, sizeof *out->rates);
	json_array_foreach(v, i, e) {
		r = &out->rates[out->nrates];
		if (!json_is_object(e))
			return bad(err, "[%zu]: expected an object such as "
			    "{\"requests\": 600, \"window_s\": 60}", i);
		if ((other = other_member(e, keys)) != NULL)
			return bad(err, "[%zu].%s: unknown key; known: requests, "
			    "tokens, input_tokens, output_tokens, window_s", i,
			    other);
		for (k = 0, found = 0; k < SY_LIMIT_NKINDS; k++) {
			switch (get_count(e, limit_names[k], 1,
			    (long long)1 << 53, &n)) {
			case -1:
				return bad(err, "[%zu].%s: expected an integer "
				    "from 1 to 2^53", i, limit_names[k]);
			case 1:
				found++;
				r->kind = (enum sy_limit_kind)k;
				r->limit = (uint64_t)n;
				break;
			}
		}
		if (found != 1)
			return bad(err, "[%zu]: give exactly one of requests, "
			    "tokens, input_tokens and output_tokens", i);
		switch (get_count(e, "window_s", 1, 31 * 86400, &w)) {
		case 0:
			return bad(err, "[%zu].window_s: required (seconds, "
			    "1 to 2678400)", i);
		case -1:
			return bad(err, "[%zu].window_s: expected an integer "
			    "from 1 to 2678400 (31 days)", i);
		}
		r->window_s = (unsigned)w;
		out->nrates++;
	}
	return 0;
}

int
sy_budgets_parse(const json_t *v, struct sy_quota *out, char **err)
{
	static const char *const keys[] = { "usd", "period", "soft_usd", NULL };
	struct sy_budget *b;
	const json_t *e, *one[1];
	const char *other, *p;
	char at[32] = "";
	size_t i, n, k;

	if (v == NULL || json_is_null(v))
		return 0;
	one[0] = v;
	n = json_is_array(v) ? json_array_size(v) : 1;
	out->budgets = sy_xcalloc(n + 1, sizeof *out->budgets);
	for (i = 0; i < n; i++) {
		e = json_is_array(v) ? json_array_get(v, i) : one[0];
		b = &out->budgets[i];
		if (json_is_array(v))
			snprintf(at, sizeof at, "[%zu]", i);
		if (!json_is_object(e))
			return bad(err, "%s: expected an object such as "
			    "{\"usd\": 10, \"period\": \"month\"}", at);
		if ((other = other_member(e, keys)) != NULL)
			return bad(err, "%s.%s: unknown key; known: usd, period, "
			    "soft_usd", at, other);
		if (!json_is_number(json_object_get(e, "usd")) ||
		    json_number_value(json_object_get(e, "usd")) <= 0)
			return bad(err, "%s.usd: required, a number above 0", at);
		b->usd = json_number_value(json_object_get(e, "usd"));
		if (json_object_get(e, "soft_usd") != NULL) {
			if (!json_is_number(json_object_get(e, "soft_usd")) ||
			    json_number_value(json_object_get(e, "soft_usd")) <=
			    0 || json_number_value(json_object_get(e,
			    "soft_usd")) > b->usd)
				return bad(err, "%s.soft_usd: expected a number "
				    "above 0 and at most usd", at);
			b->soft_usd = json_number_value(json_object_get(e,
			    "soft_usd"));
		}
		b->period = SY_BUDGET_MONTH;
		if ((p = json_string_value(json_object_get(e, "period"))) !=
		    NULL) {
			for (k = 0; k < 3 && strcmp(p, period_names[k]) != 0; k++)
				;
			if (k == 3)
				return bad(err, "%s.period: expected \"day\", "
				    "\"month\" or \"total\"", at);
			b->period = (enum sy_budget_period)k;
		} else if (json_object_get(e, "period") != NULL)
			return bad(err, "%s.period: expected \"day\", \"month\" "
			    "or \"total\"", at);
		out->nbudgets++;
	}
	return 0;
}

void
sy_quota_clear(struct sy_quota *l)
{
	free(l->rates);
	free(l->budgets);
	memset(l, 0, sizeof *l);
}

/* ==== Key objects ==== */

/* Reads an array of non-empty strings (absent: none). */
static int
get_strings(const json_t *o, const char *key, char ***out, size_t *n,
    char **err)
{
	const json_t *v = json_object_get(o, key), *e;
	size_t i;

	*out = NULL;
	*n = 0;
	if (v == NULL)
		return 0;
	if (!json_is_array(v))
		return bad(err, ".%s: expected an array of names", key);
	*out = sy_xcalloc(json_array_size(v) + 1, sizeof **out);
	json_array_foreach(v, i, e) {
		if (!json_is_string(e) || json_string_length(e) == 0)
			return bad(err, ".%s[%zu]: expected a non-empty string",
			    key, i);
		(*out)[(*n)++] = sy_xstrdup(json_string_value(e));
	}
	return 0;
}

/* An optional string member (absent: NULL). */
static int
get_string(const json_t *o, const char *key, char **out, char **err)
{
	const json_t *v = json_object_get(o, key);

	*out = NULL;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v) || json_string_length(v) == 0)
		return bad(err, ".%s: expected a non-empty string", key);
	*out = sy_xstrdup(json_string_value(v));
	return 0;
}

/* The expiry: seconds since the epoch, or an RFC 3339 time in UTC ("...Z"). */
static int
get_expiry(const json_t *o, int64_t *ms, char **err)
{
	const json_t *v = json_object_get(o, "expires");
	const char *s, *end;
	struct tm tm;

	*ms = 0;
	if (v == NULL || json_is_null(v))
		return 0;
	if (json_is_integer(v) && json_integer_value(v) > 0) {
		*ms = json_integer_value(v) * 1000;
		return 0;
	}
	if ((s = json_string_value(v)) != NULL) {
		memset(&tm, 0, sizeof tm);
		end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
		if (end != NULL && (strcmp(end, "Z") == 0 ||
		    strcmp(end, "+00:00") == 0)) {
			*ms = (int64_t)timegm(&tm) * 1000;
			return 0;
		}
	}
	return bad(err, ".expires: expected a time in UTC such as "
	    "\"2027-01-31T00:00:00Z\", or seconds since the epoch");
}

int
sy_key_parse(const json_t *o, struct sy_key *k, char **err)
{
	static const char *const keys[] = {
		"id", "name", "team", "hash", "routes", "models", "rate_limits",
		"budget", "priority", "metadata", "expires", NULL
	};
	const char *other, *s;
	long long prio = 0;
	char *sub = NULL;
	const json_t *v;

	memset(k, 0, sizeof *k);
	atomic_init(&k->refs, 1);
	if (!json_is_object(o))
		return bad(err, ": expected a key object");
	if ((other = other_member(o, keys)) != NULL)
		return bad(err, ".%s: unknown key; known: id, name, team, hash, "
		    "routes, models, rate_limits, budget, priority, metadata, "
		    "expires", other);
	if (get_string(o, "id", &k->id, err) != 0)
		return -1;
	if (k->id == NULL)
		return bad(err, ".id: required");
	if ((s = json_string_value(json_object_get(o, "hash"))) == NULL ||
	    sy_key_hash_parse(s, k->hash) != 0)
		return bad(err, ".hash: required: \"sha256:\" and the 64 hex "
		    "digits of the key's SHA-256 (printf %%s \"$KEY\" | "
		    "sha256sum)");
	if (get_string(o, "name", &k->name, err) != 0 ||
	    get_string(o, "team", &k->team, err) != 0 ||
	    get_strings(o, "routes", &k->routes, &k->nroutes, err) != 0 ||
	    get_strings(o, "models", &k->models, &k->nmodels, err) != 0 ||
	    get_expiry(o, &k->expires_ms, err) != 0)
		return -1;
	if (sy_rate_limits_parse(json_object_get(o, "rate_limits"),
	    &k->limits, &sub) != 0) {
		bad(err, ".rate_limits%s", sub);
		free(sub);
		return -1;
	}
	if (sy_budgets_parse(json_object_get(o, "budget"), &k->limits,
	    &sub) != 0) {
		bad(err, ".budget%s", sub);
		free(sub);
		return -1;
	}
	if (get_count(o, "priority", -100, 100, &prio) < 0)
		return bad(err, ".priority: expected an integer from -100 to "
		    "100");
	k->priority = (int)prio;
	if ((v = json_object_get(o, "metadata")) != NULL) {
		if (!json_is_object(v))
			return bad(err, ".metadata: expected an object of "
			    "labels");
		k->metadata = json_deep_copy(v);
	}
	return 0;
}

/* Appends the limits of l to o as rate_limits and budget. */
static void
limits_json(json_t *o, const struct sy_quota *l)
{
	json_t *a;
	size_t i;

	if (l->nrates > 0) {
		a = json_array();
		for (i = 0; i < l->nrates; i++)
			json_array_append_new(a, json_pack("{s:I,s:i}",
			    limit_names[l->rates[i].kind],
			    (json_int_t)l->rates[i].limit, "window_s",
			    (int)l->rates[i].window_s));
		json_object_set_new(o, "rate_limits", a);
	}
	if (l->nbudgets > 0) {
		a = json_array();
		for (i = 0; i < l->nbudgets; i++) {
			json_array_append_new(a, json_pack("{s:f,s:s}", "usd",
			    l->budgets[i].usd, "period",
			    period_names[l->budgets[i].period]));
			if (l->budgets[i].soft_usd > 0)
				json_object_set_new(json_array_get(a, i),
				    "soft_usd", json_real(l->budgets[i].soft_usd));
		}
		json_object_set_new(o, "budget", a);
	}
}

/* A JSON array of n strings. */
static json_t *
strings_json(char *const *v, size_t n)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

json_t *
sy_key_json(const struct sy_key *k)
{
	char hex[2 * SY_KEY_HASH_LEN + 1], hash[8 + sizeof hex];
	json_t *o = json_object();

	sy_key_hash_hex(k->hash, hex);
	snprintf(hash, sizeof hash, "sha256:%s", hex);
	json_object_set_new(o, "id", json_string(k->id));
	json_object_set_new(o, "hash", json_string(hash));
	if (k->name != NULL)
		json_object_set_new(o, "name", json_string(k->name));
	if (k->team != NULL)
		json_object_set_new(o, "team", json_string(k->team));
	if (k->nroutes > 0)
		json_object_set_new(o, "routes", strings_json(k->routes,
		    k->nroutes));
	if (k->nmodels > 0)
		json_object_set_new(o, "models", strings_json(k->models,
		    k->nmodels));
	limits_json(o, &k->limits);
	if (k->priority != 0)
		json_object_set_new(o, "priority", json_integer(k->priority));
	if (k->metadata != NULL)
		json_object_set(o, "metadata", k->metadata);
	if (k->expires_ms > 0)
		json_object_set_new(o, "expires", json_integer(k->expires_ms /
		    1000));
	return o;
}

/* Frees an array of n strings. */
static void
strings_free(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void
sy_key_clear(struct sy_key *k)
{
	free(k->id);
	free(k->name);
	free(k->team);
	strings_free(k->routes, k->nroutes);
	strings_free(k->models, k->nmodels);
	sy_quota_clear(&k->limits);
	json_decref(k->metadata);
	memset(k, 0, sizeof *k);
}

struct sy_key *
sy_key_ref(struct sy_key *k)
{
	if (k->dynamic)
		atomic_fetch_add(&k->refs, 1);
	return k;
}

void
sy_key_unref(struct sy_key *k)
{
	if (k == NULL || !k->dynamic || atomic_fetch_sub(&k->refs, 1) != 1)
		return;
	sy_key_clear(k);
	free(k);
}

/* ==== Lookups ==== */

const struct sy_key *
sy_tenancy_key(const struct sy_tenancy *t,
    const unsigned char hash[SY_KEY_HASH_LEN])
{
	size_t i;

	/* The first byte picks candidates; the whole hash is compared in
	   constant time (a hash tells nothing of the key anyway). */
	for (i = 0; i < t->nkeys; i++)
		if (t->keys[i].hash[0] == hash[0] &&
		    CRYPTO_memcmp(t->keys[i].hash, hash, SY_KEY_HASH_LEN) == 0)
			return &t->keys[i];
	return NULL;
}

const struct sy_team *
sy_tenancy_team(const struct sy_tenancy *t, const char *name)
{
	size_t i;

	for (i = 0; name != NULL && i < t->nteams; i++)
		if (strcmp(t->teams[i].name, name) == 0)
			return &t->teams[i];
	return NULL;
}

/* Whether name matches one of the n patterns (none: everything). */
static int
matches(char *const *patterns, size_t n, const char *name)
{
	size_t i;

	if (n == 0)
		return 1;
	for (i = 0; name != NULL && i < n; i++)
		if (fnmatch(patterns[i], name, 0) == 0)
			return 1;
	return 0;
}

int
sy_key_allows_route(const struct sy_key *k, const char *route)
{
	return matches(k->routes, k->nroutes, route);
}

int
sy_key_allows_model(const struct sy_key *k, const char *model)
{
	return matches(k->models, k->nmodels, model);
}

void
sy_tenancy_clear(struct sy_tenancy *t)
{
	size_t i;

	for (i = 0; i < t->nkeys; i++)
		sy_key_clear(&t->keys[i]);
	free(t->keys);
	for (i = 0; i < t->nteams; i++) {
		free(t->teams[i].name);
		sy_quota_clear(&t->teams[i].limits);
	}
	free(t->teams);
	sy_quota_clear(&t->global);
	t->keys = NULL;
	t->teams = NULL;
	t->nkeys = t->nteams = 0;
}

/* ==== The config's tenancy ==== */

/* Reports a sub-parser's "REL: message" error (sub, taken) at path + REL. */
static void
fail_sub(struct sy_conf *c, const char *path, char *sub)
{
	const char *colon = strstr(sub, ": ");
	char at[SY_CONF_PATHLEN];

	if (colon == NULL)
		colon = sub + strlen(sub);
	snprintf(at, sizeof at, "%s%.*s", path, (int)(colon - sub), sub);
	sy_conf_fail(c, at, "%s", *colon != '\0' ? colon + 2 : sub);
	free(sub);
}

int
sy_conf_rate_limits(struct sy_conf *c, const struct sy_conf_row *row,
    const json_t *v, const char *path, void *base)
{
	struct sy_quota *l = (void *)((char *)base + row->offset);
	char *sub = NULL;

	if (sy_rate_limits_parse(v, l, &sub) != 0) {
		fail_sub(c, path, sub);
		return -1;
	}
	return 0;
}

int
sy_conf_teams(struct sy_conf *c, const struct sy_conf_row *row,
    const json_t *v, const char *path, void *base)
{
	static const char *const keys[] = { "rate_limits", "budget", NULL };
	struct sy_tenancy *t = (void *)((char *)base + row->offset);
	char at[SY_CONF_PATHLEN], *sub = NULL;
	const char *name, *other;
	struct sy_team *team;
	const json_t *e;

	t->teams = sy_xcalloc(json_object_size(v) + 1, sizeof *t->teams);
	json_object_foreach((json_t *)v, name, e) {
		sy_conf_path_key(at, path, name);
		team = &t->teams[t->nteams++];
		team->name = sy_xstrdup(name);
		if (!json_is_object(e)) {
			sy_conf_fail(c, at, "expected an object with rate_limits "
			    "and budget, got %s", sy_conf_type_name(e));
			return -1;
		}
		if ((other = other_member(e, keys)) != NULL) {
			sy_conf_fail(c, sy_conf_path_key(at, at, other),
			    "unknown key; known: rate_limits, budget");
			return -1;
		}
		if (sy_rate_limits_parse(json_object_get(e, "rate_limits"),
		    &team->limits, &sub) != 0) {
			fail_sub(c, sy_conf_path_key(at, at, "rate_limits"), sub);
			return -1;
		}
		if (sy_budgets_parse(json_object_get(e, "budget"),
		    &team->limits, &sub) != 0) {
			fail_sub(c, sy_conf_path_key(at, at, "budget"), sub);
			return -1;
		}
	}
	return 0;
}

int
sy_conf_keys(struct sy_conf *c, const struct sy_conf_row *row,
    const json_t *v, const char *path, void *base)
{
	struct sy_tenancy *t = (void *)((char *)base + row->offset);
	char at[SY_CONF_PATHLEN], *sub = NULL;
	const struct sy_key *k;
	const json_t *e;
	size_t i, j;

	t->keys = sy_xcalloc(json_array_size(v) + 1, sizeof *t->keys);
	json_array_foreach(v, i, e) {
		sy_conf_path_index(at, path, i);
		t->nkeys = i + 1;
		if (sy_key_parse(e, &t->keys[i], &sub) != 0) {
			fail_sub(c, at, sub);
			return -1;
		}
		k = &t->keys[i];
		for (j = 0; j < i; j++) {
			if (strcmp(t->keys[j].id, k->id) == 0) {
				sy_conf_fail(c, sy_conf_path_key(at, at, "id"),
				    "a key of id \"%s\" is given already",
				    k->id);
				return -1;
			}
			if (memcmp(t->keys[j].hash, k->hash,
			    SY_KEY_HASH_LEN) == 0) {
				sy_conf_fail(c, sy_conf_path_key(at, at, "hash"),
				    "the key %s has this hash already",
				    t->keys[j].id);
				return -1;
			}
		}
		if (k->team != NULL && t->nteams > 0 &&
		    sy_tenancy_team(t, k->team) == NULL) {
			sy_conf_fail(c, sy_conf_path_key(at, at, "team"),
			    "no team \"%s\" in teams", k->team);
			return -1;
		}
	}
	return 0;
}

static const char *const fail_words[] = { "open", "closed", NULL };

static const struct sy_conf_row tenancy_rows[] = {
	{ .name = "fail", .type = SY_CONF_WORD,
	  .offset = offsetof(struct sy_tenancy, fail_closed),
	  .words = fail_words,
	  .doc = "Redis away: each instance its share (open), or 503 (closed)" },
	{ .name = "instances", .type = SY_CONF_UINT,
	  .offset = offsetof(struct sy_tenancy, instances), .max = 10000,
	  .doc = "the gateway's instances; 0: learned from Redis" },
	{ .name = "share_cache_across_teams", .type = SY_CONF_BOOL,
	  .offset = offsetof(struct sy_tenancy, cache_shared),
	  .doc = "teams share prompt-cache entries" },
	{ .name = "metrics_per_key", .type = SY_CONF_BOOL,
	  .offset = offsetof(struct sy_tenancy, metrics_per_key),
	  .doc = "/metrics series per key too" },
	{ .name = "default_max_tokens", .type = SY_CONF_UINT,
	  .offset = offsetof(struct sy_tenancy, default_max_tokens),
	  .def.u = 1024, .min = 1, .max = 10000000,
	  .doc = "tokens a request without max_tokens reserves" },
	{ .name = "redis_prefix", .type = SY_CONF_STRING,
	  .offset = offsetof(struct sy_tenancy, redis_prefix), .def.s = "sy:",
	  .max = 64, .doc = "of the Redis keys of keys, limits and budgets" },
	{ .name = NULL }
};

const struct sy_conf_table sy_tenancy_table = {
	.path = "tenancy",
	.rows = tenancy_rows,
	.size = sizeof(struct sy_tenancy)
};
