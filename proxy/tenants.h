/* Tenants: API keys (stored only as SHA-256 hashes, in the config or in Redis), teams, and the rate limits and budgets of keys, teams, routes and the whole gateway. */
#ifndef SY_TENANTS_H
#define SY_TENANTS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define SY_KEY_HASH_LEN 32	/* SHA-256 */

/* What a rate limit counts. */
enum sy_limit_kind {
	SY_LIMIT_REQUESTS,
	SY_LIMIT_TOKENS,		/* prompt and completion tokens */
	SY_LIMIT_INPUT_TOKENS,
	SY_LIMIT_OUTPUT_TOKENS,
	SY_LIMIT_NKINDS
};

/* At most limit of kind per window_s seconds (fixed windows from the epoch). */
struct sy_rate_limit {
	enum sy_limit_kind kind;
	uint64_t limit;
	unsigned window_s;		/* 1 to 31 days */
};

/* How long a budget runs before it starts again. */
enum sy_budget_period { SY_BUDGET_DAY, SY_BUDGET_MONTH, SY_BUDGET_TOTAL };

/* At most usd of spend per period; a warning above soft_usd (0: none). */
struct sy_budget {
	double usd;
	double soft_usd;
	enum sy_budget_period period;
};

/* The limits of one scope: a key, a team, a route, the gateway. */
struct sy_quota {
	struct sy_rate_limit *rates;
	size_t nrates;
	struct sy_budget *budgets;
	size_t nbudgets;
};

/* A team: keys share its limits and budget. */
struct sy_team {
	char *name;
	struct sy_quota limits;
};

/* An API key as the gateway knows it: never the key itself. */
struct sy_key {
	atomic_int refs;		/* dynamic keys are shared by reference */
	char *id;			/* unique; logged, never secret */
	char *name;			/* free text, or NULL */
	char *team;			/* or NULL */
	unsigned char hash[SY_KEY_HASH_LEN];	/* SHA-256 of the key */
	char **routes;			/* route names it may use (wildcards *
					   and ?); none: every route */
	size_t nroutes;
	char **models;			/* model names it may ask for; none: any */
	size_t nmodels;
	struct sy_quota limits;
	int priority;			/* -100 to 100; higher goes first */
	json_t *metadata;		/* an object of free labels (owned) */
	int64_t expires_ms;		/* wall clock; 0: never */
	int dynamic;			/* made through the admin API (Redis) */
};

/* The tenancy part of a config snapshot. */
struct sy_tenancy {
	unsigned keys_required;		/* "auth": "keys" */
	struct sy_key *keys;		/* static keys, from the config */
	size_t nkeys;
	struct sy_team *teams;
	size_t nteams;
	struct sy_quota global;	/* every request's */
	unsigned fail_closed;		/* Redis away: 503 (else each instance
					   enforces its share) */
	unsigned instances;		/* the gateway's instances, for that
					   share; 0: learned from Redis */
	int cache_shared;		/* cache entries shared across teams */
	int metrics_per_key;		/* /metrics series per key too */
	unsigned default_max_tokens;	/* the output a request without
					   max_tokens reserves; default 1024 */
	char *redis_prefix;		/* of the Redis keys; default "sy:" */
};

/* ==== Keys (proxy/keys.c) ==== */

/* SHA-256 of the len bytes of key into out. */
void sy_key_hash(const char *key, size_t len,
    unsigned char out[SY_KEY_HASH_LEN]);

/*
 * Reads "sha256:" and 64 hex digits (or the 64 digits alone) into out;
 * 0, or -1 when s is no such hash.
 */
int sy_key_hash_parse(const char *s, unsigned char out[SY_KEY_HASH_LEN]);

/* Writes 64 lowercase hex digits of hash and a NUL into hex. */
void sy_key_hash_hex(const unsigned char hash[SY_KEY_HASH_LEN],
    char hex[2 * SY_KEY_HASH_LEN + 1]);

/*
 * Fills k from o, a key object (id, name, team, hash, routes, models,
 * rate_limits, budget, priority, metadata, expires); what a key object
 * may hold is the same in the config and in Redis.  Returns 0, or -1
 * with *err malloc'd starting with the member's path relative to o
 * (".rate_limits[1].window_s: ...").  k is cleared first; free with
 * sy_key_clear.
 */
int sy_key_parse(const json_t *o, struct sy_key *k, char **err);

/* The key object of k, as sy_key_parse reads it (a new reference). */
json_t *sy_key_json(const struct sy_key *k);

/* Frees what k holds (not k). */
void sy_key_clear(struct sy_key *k);

/* Takes a reference to a dynamic key; returns k. */
struct sy_key *sy_key_ref(struct sy_key *k);

/* Drops a reference to a dynamic key, freeing it at the last; static keys are ignored. */
void sy_key_unref(struct sy_key *k);

/*
 * The static key whose hash is hash in t, or NULL; the last comparison
 * is constant-time.
 */
const struct sy_key *sy_tenancy_key(const struct sy_tenancy *t,
    const unsigned char hash[SY_KEY_HASH_LEN]);

/* The team called name in t, or NULL. */
const struct sy_team *sy_tenancy_team(const struct sy_tenancy *t,
    const char *name);

/* Whether k may use route (name) and ask for model. */
int sy_key_allows_route(const struct sy_key *k, const char *route);
int sy_key_allows_model(const struct sy_key *k, const char *model);

/* ==== Limits (proxy/keys.c) ==== */

/*
 * Reads a rate_limits array (v) into *out: objects {"requests" or
 * "tokens" or "input_tokens" or "output_tokens": N, "window_s": S}.
 * 0, or -1 with *err malloc'd ("[i].window_s: ..."); absent v: none.
 */
int sy_rate_limits_parse(const json_t *v, struct sy_quota *out, char **err);

/*
 * Reads a budget object or array of them (v): {"usd": X, "period":
 * "day"|"month"|"total", "soft_usd": Y}.  As sy_rate_limits_parse.
 */
int sy_budgets_parse(const json_t *v, struct sy_quota *out, char **err);

/* Frees what l holds. */
void sy_quota_clear(struct sy_quota *l);

/*
 * Config parse functions (proxy/confrow.h's sy_conf_parse_fn) of a
 * rate_limits array (a struct sy_quota at the row's offset), the teams
 * object and the keys array (a struct sy_tenancy at the row's offset;
 * teams before keys).
 */
struct sy_conf;
struct sy_conf_row;
int sy_conf_rate_limits(struct sy_conf *c, const struct sy_conf_row *row,
    const json_t *v, const char *path, void *base);
int sy_conf_teams(struct sy_conf *c, const struct sy_conf_row *row,
    const json_t *v, const char *path, void *base);
int sy_conf_keys(struct sy_conf *c, const struct sy_conf_row *row,
    const json_t *v, const char *path, void *base);

/* The rows of the tenancy object of options. */
struct sy_conf_table;
extern const struct sy_conf_table sy_tenancy_table;

/* Frees the keys, teams and gateway limits of t (not its rows' strings). */
void sy_tenancy_clear(struct sy_tenancy *t);

#endif
