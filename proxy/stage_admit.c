/* The admit stage: a key may use only its routes and models; then the request's rate limits and budgets (its key's, its team's, its route's, the gateway's) are reserved together before the call, and settled with the real usage when it ends; over a limit is 429 with Retry-After, and every answer says the limits left. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "accesslog.h"
#include "clientapi.h"
#include "config.h"
#include "counters.h"
#include "exchange.h"
#include "http1.h"
#include "tenants.h"
#include "util.h"
#include "worker.h"

/* The estimated cost of a request in micro-USD: its model's price. */
static int64_t
micro_usd(const struct sy_req *req, int64_t in, int64_t out)
{
	const struct sy_price *p = sy_config_price(req->cfg, req->model);
	double usd;

	if (p == NULL)
		return 0;
	usd = ((double)in * p->input + (double)out * p->output) / 1e6;
	return (int64_t)(usd * 1e6 + 0.5);
}

/* Writes a duration as OpenAI's headers do ("1s", "6m0s", "20ms"). */
static void
duration(char *buf, size_t len, uint64_t ms)
{
	uint64_t s = (ms + 999) / 1000;

	if (ms < 1000)
		snprintf(buf, len, "%llums", (unsigned long long)ms);
	else if (s < 60)
		snprintf(buf, len, "%llus", (unsigned long long)s);
	else if (s < 3600)
		snprintf(buf, len, "%llum%llus", (unsigned long long)(s / 60),
		    (unsigned long long)(s % 60));
	else
		snprintf(buf, len, "%lluh%llum%llus",
		    (unsigned long long)(s / 3600),
		    (unsigned long long)(s / 60 % 60),
		    (unsigned long long)(s % 60));
}

/* Writes wall-clock ms as an RFC 3339 time in UTC. */
static void
rfc3339(char *buf, size_t len, uint64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The counter of unit with the least left, or NULL. */
static const struct sy_counter *
tightest(const struct sy_reservation *res, enum sy_counter_unit unit)
{
	const struct sy_counter *best = NULL;
	size_t i;

	for (i = 0; i < res->n; i++)
		if (res->c[i].unit == unit && (best == NULL ||
		    res->c[i].limit - res->c[i].value < best->limit -
		    best->value))
			best = &res->c[i];
	return best;
}

/*
 * The header lines that tell the client its limits, in its dialect's
 * names: OpenAI's x-ratelimit-*, Anthropic's anthropic-ratelimit-*.
 */
static char *
limit_headers(const struct sy_exchange *x, const struct sy_reservation *res)
{
	static const struct {
		enum sy_counter_unit unit;
		const char *openai, *anthropic;
	} units[] = {
		{ SY_UNIT_REQUESTS, "requests", "requests" },
		{ SY_UNIT_TOKENS, "tokens", "tokens" }
	};
	uint64_t now = sy_wall_us() / 1000;
	const struct sy_counter *c;
	char buf[512], reset[40];
	size_t i, n = 0;
	int64_t left;

	buf[0] = '\0';
	for (i = 0; i < 2; i++) {
		if ((c = tightest(res, units[i].unit)) == NULL)
			continue;
		left = c->limit - c->value;
		if (x->client->ratelimit_headers == SY_RATELIMIT_ANTHROPIC) {
			rfc3339(reset, sizeof reset, c->reset_ms);
			n += (size_t)snprintf(buf + n, sizeof buf - n,
			    "anthropic-ratelimit-%s-limit: %lld\r\n"
			    "anthropic-ratelimit-%s-remaining: %lld\r\n"
			    "anthropic-ratelimit-%s-reset: %s\r\n",
			    units[i].anthropic, (long long)c->limit,
			    units[i].anthropic, (long long)(left > 0 ? left : 0),
			    units[i].anthropic, reset);
		} else {
			duration(reset, sizeof reset, c->reset_ms > now ?
			    c->reset_ms - now : 0);
			n += (size_t)snprintf(buf + n, sizeof buf - n,
			    "x-ratelimit-limit-%s: %lld\r\n"
			    "x-ratelimit-remaining-%s: %lld\r\n"
			    "x-ratelimit-reset-%s: %s\r\n",
			    units[i].openai, (long long)c->limit,
			    units[i].openai, (long long)(left > 0 ? left : 0),
			    units[i].openai, reset);
		}
		if (n >= sizeof buf)
			break;
	}
	return buf[0] != '\0' && n < sizeof buf ? sy_xstrdup(buf) : NULL;
}

/* A counter over its limit: 429, with how long until it is not. */
static enum sy_verdict
over(struct sy_exchange *x)
{
	const struct sy_reservation *res = x->admit.res;
	const struct sy_counter *c = &res->c[res->refused];
	uint64_t now = sy_wall_us() / 1000;
	char msg[300], ra[48];
	unsigned wait_s;

	wait_s = c->reset_ms > now ? (unsigned)((c->reset_ms - now + 999) /
	    1000) : 1;
	snprintf(ra, sizeof ra, "Retry-After: %u\r\n", wait_s);
	x->respond.more_headers = limit_headers(x, res);
	if (c->unit == SY_UNIT_MICRO_USD) {
		snprintf(msg, sizeof msg, "the %s's budget is spent ($%.2f of "
		    "$%.2f); it starts again in %u s", c->scope,
		    (double)c->value / 1e6, (double)c->limit / 1e6, wait_s);
		return sy_exchange_fail(x, 429, "insufficient_quota",
		    "insufficient_quota", msg, ra);
	}
	snprintf(msg, sizeof msg, "rate limit of the %s reached: %lld %s per "
	    "window, %lld used; retry in %u s", c->scope, (long long)c->limit,
	    c->unit == SY_UNIT_REQUESTS ? "requests" : "tokens",
	    (long long)c->value, wait_s);
	return sy_exchange_fail(x, 429, "rate_limit_error",
	    "rate_limit_exceeded", msg, ra);
}

/* A budget past its soft mark is said in the log once a request. */
static void
warn_soft(struct sy_exchange *x)
{
	const struct sy_reservation *res = x->admit.res;
	size_t i;

	for (i = 0; i < res->n; i++)
		if (res->c[i].soft > 0 && res->c[i].value > res->c[i].soft) {
			sy_log(SY_LOG_WARN, "budget: the %s of request %s is "
			    "past its soft mark ($%.2f of $%.2f)",
			    res->c[i].scope, x->req.id,
			    (double)res->c[i].value / 1e6,
			    (double)res->c[i].limit / 1e6);
			x->req.budget_warned = 1;
			sy_limits_note(SY_LIMIT_SOFT);
			return;
		}
}

/* What the reservation came to. */
static enum sy_verdict
reserved(struct sy_exchange *x, enum sy_reserve_result r)
{
	switch (r) {
	case SY_RESERVE_ADMITTED:
		sy_limits_note(x->w->redis != NULL && x->admit.res->local ?
		    SY_LIMIT_IN_MEMORY : SY_LIMIT_ADMITTED);
		x->admit.admitted = x->admit.passed = 1;
		x->respond.more_headers = limit_headers(x, x->admit.res);
		warn_soft(x);
		return SY_NEXT;
	case SY_RESERVE_REFUSED:
		sy_limits_note(x->admit.res->c[x->admit.res->refused].unit ==
		    SY_UNIT_MICRO_USD ? SY_LIMIT_SPENT : SY_LIMIT_REFUSED);
		return over(x);
	default:
		sy_limits_note(SY_LIMIT_UNAVAILABLE);
		return sy_exchange_fail(x, 503, "server_error",
		    "rate_limiter_unavailable", "the rate limits cannot be "
		    "checked now (Redis is away and this route fails closed); "
		    "retry later", "Retry-After: 1\r\n");
	}
}

static void
on_reserved(void *arg, enum sy_reserve_result r)
{
	struct sy_exchange *x = arg;

	x->admit.op = NULL;
	sy_drive(x, reserved(x, r));
}

/* Adds the counters of one scope when it has limits. */
static void
scope_add(struct sy_exchange *x, const char *scope, const char *name,
    const struct sy_quota *l, uint64_t now, int64_t in, int64_t out,
    int64_t usd)
{
	const struct sy_tenancy *t = &x->req.cfg->tenancy;

	if (l == NULL || (l->nrates == 0 && l->nbudgets == 0))
		return;
	if (x->admit.res == NULL)
		x->admit.res = sy_xcalloc(1, sizeof *x->admit.res);
	sy_reservation_add(x->admit.res, t->redis_prefix, scope, name, l, now,
	    in, out, usd);
}

#define PRIORITY_MAX 100

/*
 * The request's priority: its x-switchyard-priority (high, normal, low or
 * an integer from -100 to 100), else its key's.  0, or -1 when the header
 * says something else.
 */
static int
read_priority(struct sy_req *req)
{
	const char *v;
	char *end;
	long n;

	req->priority = req->key != NULL ? req->key->priority : 0;
	if (req->head == NULL ||
	    (v = sy_http1_header(req->head, "x-switchyard-priority")) == NULL)
		return 0;
	if (strcmp(v, "high") == 0)
		req->priority = 1;
	else if (strcmp(v, "low") == 0)
		req->priority = -1;
	else if (strcmp(v, "normal") == 0)
		req->priority = 0;
	else {
		errno = 0;
		n = strtol(v, &end, 10);
		if (*v == '\0' || *end != '\0' || errno != 0 ||
		    n < -PRIORITY_MAX || n > PRIORITY_MAX)
			return -1;
		req->priority = (int)n;
	}
	return 0;
}

static enum sy_verdict
admit_enter(struct sy_exchange *x)
{
	struct sy_req *req = &x->req;
	const struct sy_tenancy *t = &req->cfg->tenancy;
	const struct sy_key *k = req->key;
	const struct sy_team *team;
	uint64_t now = sy_wall_us() / 1000;
	enum sy_reserve_result r;
	int64_t in, out, usd;
	char msg[300];
	int closed;

	if (read_priority(req) != 0)
		return sy_exchange_fail(x, 400, "invalid_request_error",
		    "invalid_priority", "x-switchyard-priority must be high, "
		    "normal, low or an integer from -100 to 100", NULL);
	if (k != NULL && !sy_key_allows_route(k, req->route->name)) {
		snprintf(msg, sizeof msg, "the API key %s may not use the route "
		    "%s", k->id, req->route->name);
		return sy_exchange_fail(x, 403, "permission_error",
		    "route_not_allowed", msg, NULL);
	}
	if (k != NULL && !sy_key_allows_model(k, req->client_model)) {
		snprintf(msg, sizeof msg, "the API key %s may not use the model "
		    "%s", k->id, req->client_model);
		return sy_exchange_fail(x, 403, "permission_error",
		    "model_not_allowed", msg, NULL);
	}
	/* Estimates, settled when the answer says: the body's bytes bound
	   the prompt's tokens; the answer is max_tokens or the default. */
	in = (int64_t)((evbuffer_get_length(req->raw) + 3) / 4);
	out = req->api == SY_API_EMBEDDINGS || req->api == SY_API_RERANK ? 0 :
	    req->max_tokens > 0 ?
	    req->max_tokens : (int64_t)t->default_max_tokens;
	usd = micro_usd(req, in, out);
	x->admit.in = in;
	x->admit.out = out;
	x->admit.usd = usd;
	if (k != NULL)
		scope_add(x, "key", k->id, &k->limits, now, in, out, usd);
	if (k != NULL && (team = sy_tenancy_team(t, k->team)) != NULL)
		scope_add(x, "team", team->name, &team->limits, now, in, out,
		    usd);
	scope_add(x, "route", req->route->name, &req->route->rate_limits, now,
	    in, out, usd);
	scope_add(x, "gateway", "all", &t->global, now, in, out, usd);
	if (x->admit.res == NULL) {
		x->admit.passed = 1;
		return SY_NEXT;
	}
	closed = req->route->limits_fail == 0 ? (int)t->fail_closed :
	    req->route->limits_fail == 2;
	r = sy_reserve(x->w->redis, x->admit.res, closed, t->instances > 0 ?
	    t->instances : sy_counters_instances(), on_reserved, x,
	    &x->admit.op);
	return r == SY_RESERVE_PENDING ? SY_WAIT : reserved(x, r);
}

/*
 * The tokens and cost (micro-USD) the request really took: its answer's
 * (a cut stream: what it received) and those of the answers a cascade
 * replaced.
 */
static void
spent(const struct sy_exchange *x, int64_t *in, int64_t *out, int64_t *musd)
{
	const struct sy_req *req = &x->req;
	const struct sy_usage *u = &req->usage;
	const struct sy_price *p;
	int64_t cached = u->cached_tokens > 0 ? u->cached_tokens : 0;
	double usd;

	*in = u->prompt_tokens >= 0 ? u->prompt_tokens :
	    req->t_upstream != 0 ? x->admit.in : 0;
	*out = u->completion_tokens >= 0 ? u->completion_tokens :
	    (int64_t)req->streamed_events;
	p = req->model != NULL ? sy_config_price(req->cfg, req->model) : NULL;
	usd = p != NULL ? ((double)(*in - cached) * p->input +
	    (double)cached * p->cached_input + (double)*out * p->output) /
	    1e6 : 0;
	if (req->escalations > 0) {
		*in += req->prior_usage.prompt_tokens > 0 ?
		    req->prior_usage.prompt_tokens : 0;
		*out += req->prior_usage.completion_tokens > 0 ?
		    req->prior_usage.completion_tokens : 0;
		usd += req->prior_cost_usd > 0 ? req->prior_cost_usd : 0;
	}
	*musd = (int64_t)(usd * 1e6 + 0.5);
}

/* Settles the reservation and adds the request to its key's and team's usage. */
static void
admit_end(struct sy_exchange *x)
{
	const struct sy_req *req = &x->req;
	int64_t in, out, musd;

	sy_reserve_cancel(x->admit.op);
	if (x->admit.passed) {
		spent(x, &in, &out, &musd);
		if (x->admit.admitted)
			sy_reservation_settle(x->w->redis, x->admit.res, in,
			    out, musd);
		if (req->key != NULL)
			sy_usage_count(x->w->redis, req->cfg->tenancy.redis_prefix,
			    req->key->id, req->key->team, sy_wall_us() / 1000,
			    in, out, musd);
	}
	free(x->admit.res);
}

const struct sy_stage sy_stage_admit = {
	.name = "admit",
	.enter = admit_enter,
	.end = admit_end
};
