/* Unit tests of the routing policies: what each picks, over pools built by hand. */
#include <math.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "config.h"
#include "http1.h"
#include "policy.h"
#include "req.h"
#include "util.h"
#include "sy_test.h"

/* ==== Fixtures ==== */

#define MAXEP 8

/* The name of the routing policy at index i of the registry, or NULL past its end. */
static const char *
policy_at(size_t i)
{
	const struct sy_route_policy *p = sy_route_policy_at(i);

	return p != NULL ? p->name : NULL;
}

/* A pool of endpoints named a, b, c, ... with their shared stats. */
struct fleet {
	struct sy_endpoint_stats stats[MAXEP];
	struct sy_endpoint eps[MAXEP];
	struct sy_endpoint *ptrs[MAXEP];
	struct sy_pool pool;
};

static const char *const ep_names[MAXEP] = {
	"a", "b", "c", "d", "e", "f", "g", "h"
};

/* Builds a pool of n endpoints with the given weights (NULL: all 1). */
static void
fleet_init(struct fleet *f, size_t n, const unsigned *weights)
{
	size_t i;

	memset(f, 0, sizeof *f);
	for (i = 0; i < n; i++) {
		sy_endstats_init(&f->stats[i], ep_names[i]);
		f->eps[i].index = i;
		f->eps[i].name = (char *)ep_names[i];
		f->eps[i].weight = weights != NULL ? weights[i] : 1;
		f->eps[i].stats = &f->stats[i];
		f->ptrs[i] = &f->eps[i];
	}
	f->pool.endpoints = f->ptrs;
	f->pool.nendpoints = n;
}

/* Creates policy name's state for pool with params (JSON text, NULL: {}); NULL on error, *err set. */
static void *
policy_new(const char *name, const char *params, const struct sy_pool *pool,
    char **err)
{
	const struct sy_route_policy *p = sy_route_policy_find(name);
	json_t *j = json_loads(params != NULL ? params : "{}", 0, NULL);
	void *st;

	*err = NULL;
	if (p == NULL || j == NULL) {
		printf("# no policy %s or bad params %s\n", name, params);
		json_decref(j);
		return NULL;
	}
	st = p->create(j, pool, err);
	json_decref(j);
	return st;
}

/* A policy at work on one pool. */
struct bench {
	const struct sy_route_policy *p;
	void *st;
	const struct sy_pool *pool;
};

/* Creates policy name for pool with params; the test fails if that fails. */
static void
bench_init(struct bench *b, const char *name, const char *params,
    const struct sy_pool *pool)
{
	char *err;

	b->p = sy_route_policy_find(name);
	b->pool = pool;
	b->st = policy_new(name, params, pool, &err);
	if (err != NULL) {
		printf("# %s: %s\n", name, err);
		free(err);
		SY_CHECK(0);
	}
}

static void
bench_free(struct bench *b)
{
	if (b->p != NULL && b->p->destroy != NULL)
		b->p->destroy(b->st);
}

/* Picks for req; *reason (may be NULL) gets the reason. */
static struct sy_endpoint *
bench_pick(struct bench *b, const struct sy_req *req, const char **reason)
{
	const char *r = NULL;
	struct sy_endpoint *ep = b->p->pick(b->st, b->pool, req, &r);

	if (r == NULL) {
		printf("# %s: no reason\n", b->p->name);
		SY_CHECK(0);
	}
	if (reason != NULL)
		*reason = r;
	return ep;
}

/* Tells the policy that a request to ep ended with status after latency_ms. */
static void
bench_observe(struct bench *b, struct sy_endpoint *ep, int status,
    double latency_ms)
{
	struct sy_outcome o = {
		.status = status,
		.latency_us = (uint64_t)(latency_ms * 1000)
	};

	if (b->p->observe != NULL)
		b->p->observe(b->st, ep, &o);
}

/* A chat request whose prompt is one user message text, with "user" when user is not NULL. */
static void
req_chat(struct sy_req *req, const char *text, const char *user)
{
	memset(req, 0, sizeof *req);
	req->api = SY_API_CHAT;
	req->body = json_pack("{s:s, s:[{s:s, s:s}]}", "model", "m",
	    "messages", "role", "user", "content", text);
	if (user != NULL)
		json_object_set_new(req->body, "user", json_string(user));
}

static void
req_done(struct sy_req *req)
{
	json_decref(req->body);
	req->body = NULL;
}

/* Parses a literal request head into m. */
static void
head_parse(struct sy_http1_msg *m, const char *text)
{
	struct evbuffer *b = evbuffer_new();

	sy_http1_init(m, SY_HTTP1_REQUEST, 0, 0);
	evbuffer_add(b, text, strlen(text));
	SY_CHECK_INT(sy_http1_parse_head(m, b), 1);
	evbuffer_free(b);
}

/* Index of ep in f, or -1. */
static int
ep_index(const struct fleet *f, const struct sy_endpoint *ep)
{
	return ep == NULL ? -1 : (int)(ep - f->eps);
}

/* Picks n times for a fresh request each; counts the picks per endpoint. */
static void
count_picks(struct bench *b, const struct fleet *f, int n, long *counts)
{
	struct sy_req req;
	int i, k;

	for (i = 0; i < n; i++) {
		char text[32];

		snprintf(text, sizeof text, "prompt %d", i);
		req_chat(&req, text, text);
		k = ep_index(f, bench_pick(b, &req, NULL));
		if (k >= 0)
			counts[k]++;
		req_done(&req);
	}
}

/* Sleeps ms milliseconds. */
static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Checks that every policy picks nothing from f's pool, with reason "all-busy". */
static void
every_policy_picks_none(struct fleet *f)
{
	struct bench b;
	struct sy_req req;
	const char *reason;
	size_t i;

	for (i = 0; policy_at(i) != NULL; i++) {
		bench_init(&b, policy_at(i), NULL, &f->pool);
		req_chat(&req, "hello", "u1");
		if (bench_pick(&b, &req, &reason) != NULL) {
			printf("# %s picked an endpoint\n", policy_at(i));
			SY_CHECK(0);
		} else
			SY_CHECK_STR(reason, "all-busy");
		req_done(&req);
		/* Without a session key or prompt too (the fallbacks). */
		memset(&req, 0, sizeof req);
		req.body = json_pack("{s:s, s:[]}", "model", "m", "messages");
		if (bench_pick(&b, &req, NULL) != NULL) {
			printf("# %s picked without a key\n", policy_at(i));
			SY_CHECK(0);
		}
		req_done(&req);
		bench_free(&b);
	}
}

/* ==== Every policy: the edge cases ==== */

SY_TEST(every_policy_is_registered)
{
	char names[512], listed[512];
	size_t i, off = 0;

	sy_route_policy_names(names, sizeof names);
	listed[0] = '\0';
	for (i = 0; policy_at(i) != NULL; i++) {
		SY_CHECK(sy_route_policy_find(policy_at(i)) ==
		    sy_route_policy_at(i));
		off += (size_t)snprintf(listed + off, sizeof listed - off,
		    "%s%s", i ? ", " : "", policy_at(i));
	}
	/* The names a config error lists are the registry's, in its order. */
	SY_CHECK_STR(listed, names);
	SY_CHECK(sy_route_policy_find("round_robin") != NULL);
	SY_CHECK(strstr(names, "round_robin") != NULL);
	SY_CHECK(sy_route_policy_at(i + 1) == NULL);
}

SY_TEST(every_policy_starts_from_its_defaults_and_picks_with_a_reason)
{
	struct fleet f;
	struct bench b;
	struct sy_req req;
	struct sy_endpoint *ep;
	size_t i;

	fleet_init(&f, 2, NULL);
	for (i = 0; policy_at(i) != NULL; i++) {
		bench_init(&b, policy_at(i), "{}", &f.pool);
		req_chat(&req, "hello", "u1");
		ep = bench_pick(&b, &req, NULL);
		if (ep != &f.eps[0] && ep != &f.eps[1]) {
			printf("# %s picked no endpoint of the pool\n", policy_at(i));
			SY_CHECK(0);
		}
		req_done(&req);
		bench_free(&b);
	}
}

SY_TEST(every_policy_picks_none_from_an_empty_pool)
{
	struct fleet f;

	fleet_init(&f, 0, NULL);
	every_policy_picks_none(&f);
}

SY_TEST(every_policy_picks_none_when_all_weights_are_zero)
{
	static const unsigned w[] = { 0, 0, 0 };
	struct fleet f;

	fleet_init(&f, 3, w);
	every_policy_picks_none(&f);
}

SY_TEST(every_policy_picks_none_when_all_are_at_max_concurrency)
{
	struct fleet f;
	size_t i;

	fleet_init(&f, 3, NULL);
	for (i = 0; i < 3; i++) {
		f.eps[i].max_concurrency = 2;
		atomic_store(&f.stats[i].in_flight, 2);
	}
	every_policy_picks_none(&f);
}

SY_TEST(every_policy_picks_none_when_all_are_ejected)
{
	struct fleet f;
	size_t i;

	fleet_init(&f, 3, NULL);
	for (i = 0; i < 3; i++)
		atomic_store(&f.stats[i].ejected_until_us,
		    sy_now_us() + 10000000);
	every_policy_picks_none(&f);
}

SY_TEST(every_policy_picks_none_when_all_are_unhealthy)
{
	struct fleet f;
	size_t i;

	fleet_init(&f, 3, NULL);
	for (i = 0; i < 3; i++)
		atomic_store(&f.stats[i].unhealthy, 1);
	every_policy_picks_none(&f);
}

SY_TEST(every_policy_skips_zero_weights)
{
	static const unsigned w[] = { 1, 0, 1 };
	struct fleet f;
	struct bench b;
	size_t i;

	fleet_init(&f, 3, w);
	for (i = 0; policy_at(i) != NULL; i++) {
		long counts[MAXEP] = { 0 };

		bench_init(&b, policy_at(i), NULL, &f.pool);
		count_picks(&b, &f, 300, counts);
		if (counts[1] != 0 || counts[0] == 0 || counts[2] == 0 ||
		    counts[0] + counts[2] != 300) {
			printf("# %s: a=%ld b=%ld c=%ld\n", policy_at(i),
			    counts[0], counts[1], counts[2]);
			SY_CHECK(0);
		}
		bench_free(&b);
	}
}

SY_TEST(every_policy_picks_the_only_endpoint)
{
	struct fleet f;
	struct bench b;
	size_t i;

	fleet_init(&f, 1, NULL);
	for (i = 0; policy_at(i) != NULL; i++) {
		long counts[MAXEP] = { 0 };

		bench_init(&b, policy_at(i), NULL, &f.pool);
		count_picks(&b, &f, 50, counts);
		if (counts[0] != 50) {
			printf("# %s: %ld of 50\n", policy_at(i), counts[0]);
			SY_CHECK(0);
		}
		bench_free(&b);
	}
}

SY_TEST(every_policy_skips_the_endpoint_a_retry_already_tried)
{
	struct fleet f;
	struct bench b;
	struct sy_req req;
	struct sy_endpoint *ep;
	char text[32];
	size_t i;
	int k;

	fleet_init(&f, 2, NULL);
	for (i = 0; policy_at(i) != NULL; i++) {
		bench_init(&b, policy_at(i), NULL, &f.pool);
		for (k = 0; k < 100; k++) {
			snprintf(text, sizeof text, "key %d", k);
			req_chat(&req, text, text);
			req.tried[0] = &f.eps[0];
			req.ntried = 1;
			ep = bench_pick(&b, &req, NULL);
			if (ep != &f.eps[1]) {
				printf("# %s picked %s\n", policy_at(i),
				    ep ? ep->name : "nothing");
				SY_CHECK(0);
				k = 100;
			}
			req_done(&req);
		}
		bench_free(&b);
	}
}

SY_TEST(every_policy_skips_a_full_endpoint_and_uses_the_others)
{
	struct fleet f;
	struct bench b;
	size_t i;

	fleet_init(&f, 3, NULL);
	f.eps[1].max_concurrency = 1;
	atomic_store(&f.stats[1].in_flight, 1);
	for (i = 0; policy_at(i) != NULL; i++) {
		long counts[MAXEP] = { 0 };

		bench_init(&b, policy_at(i), NULL, &f.pool);
		count_picks(&b, &f, 300, counts);
		if (counts[1] != 0 || counts[0] + counts[2] != 300) {
			printf("# %s: a=%ld b=%ld c=%ld\n", policy_at(i),
			    counts[0], counts[1], counts[2]);
			SY_CHECK(0);
		}
		bench_free(&b);
	}
}

SY_TEST(every_policy_avoids_ejected_unhealthy_and_limited_endpoints_while_one_is_fit)
{
	struct fleet f;
	struct bench b;
	size_t i;

	fleet_init(&f, 4, NULL);
	atomic_store(&f.stats[1].ejected_until_us, sy_now_us() + 10000000);
	atomic_store(&f.stats[2].unhealthy, 1);
	atomic_store(&f.stats[3].limited_until_us, sy_now_us() + 10000000);
	for (i = 0; policy_at(i) != NULL; i++) {
		long counts[MAXEP] = { 0 };

		bench_init(&b, policy_at(i), NULL, &f.pool);
		count_picks(&b, &f, 200, counts);
		if (counts[0] != 200) {
			printf("# %s: a=%ld b=%ld c=%ld d=%ld\n", policy_at(i),
			    counts[0], counts[1], counts[2], counts[3]);
			SY_CHECK(0);
		}
		bench_free(&b);
	}
}

SY_TEST(every_policy_uses_an_endpoint_whose_ejection_has_passed)
{
	struct fleet f;
	struct bench b;
	size_t i;

	fleet_init(&f, 1, NULL);
	atomic_store(&f.stats[0].ejected_until_us, sy_now_us() - 1);
	atomic_store(&f.stats[0].limited_until_us, sy_now_us() - 1);
	for (i = 0; policy_at(i) != NULL; i++) {
		long counts[MAXEP] = { 0 };

		bench_init(&b, policy_at(i), NULL, &f.pool);
		count_picks(&b, &f, 10, counts);
		SY_CHECK_INT(counts[0], 10);
		bench_free(&b);
	}
}

/* ==== Parameters ==== */

/* Checks that creating name with params fails with a message holding each needle. */
static void
rejected(const char *name, const char *params, const char *needle1,
    const char *needle2)
{
	struct fleet f;
	char *err;
	void *st;

	fleet_init(&f, 2, NULL);
	st = policy_new(name, params, &f.pool, &err);
	if (err == NULL) {
		printf("# %s %s accepted\n", name, params);
		SY_CHECK(0);
		if (sy_route_policy_find(name)->destroy != NULL)
			sy_route_policy_find(name)->destroy(st);
		return;
	}
	if (strstr(err, needle1) == NULL ||
	    (needle2 != NULL && strstr(err, needle2) == NULL)) {
		printf("# %s %s: \"%s\" lacks \"%s\" or \"%s\"\n", name, params,
		    err, needle1, needle2 ? needle2 : "");
		SY_CHECK(0);
	}
	SY_CHECK(st == NULL);
	free(err);
}

/* Checks that creating name with params succeeds. */
static void
accepted(const char *name, const char *params)
{
	struct fleet f;
	struct bench b;

	fleet_init(&f, 2, NULL);
	bench_init(&b, name, params, &f.pool);
	bench_free(&b);
}

SY_TEST(policies_without_parameters_refuse_any)
{
	rejected("weighted", "{\"x\": 1}", "weighted takes no parameters", "\"x\"");
	rejected("random", "{\"seed\": 1}", "random takes no parameters", "seed");
	rejected("least_outstanding", "{\"x\": 1}",
	    "least_outstanding takes no parameters", NULL);
}

SY_TEST(p2c_ewma_checks_its_parameters)
{
	accepted("p2c_ewma", "{\"decay_ms\": 50, \"failure_penalty_ms\": 0}");
	rejected("p2c_ewma", "{\"decay\": 5}", "unknown parameter \"decay\"",
	    "known: decay_ms, failure_penalty_ms");
	rejected("p2c_ewma", "{\"decay_ms\": \"10\"}", "\"decay_ms\"", "integer");
	rejected("p2c_ewma", "{\"decay_ms\": 0}", "\"decay_ms\"", "from 1");
	rejected("p2c_ewma", "{\"failure_penalty_ms\": 1.5}",
	    "\"failure_penalty_ms\"", "integer");
	rejected("p2c_ewma", "{\"failure_penalty_ms\": -1}",
	    "\"failure_penalty_ms\"", NULL);
}

SY_TEST(session_affinity_checks_its_parameters)
{
	accepted("session_affinity", "{\"header\": \"X-Conversation\", \"vnodes\": 10}");
	rejected("session_affinity", "{\"key\": \"x\"}", "unknown parameter \"key\"",
	    "known: header, vnodes");
	rejected("session_affinity", "{\"header\": \"\"}", "\"header\"", "non-empty");
	rejected("session_affinity", "{\"header\": 5}", "\"header\"", "string");
	rejected("session_affinity", "{\"header\": \"x session\"}", "\"header\"",
	    "header name");
	rejected("session_affinity", "{\"vnodes\": 0}", "\"vnodes\"", "from 1 to 1000");
	rejected("session_affinity", "{\"vnodes\": 1001}", "\"vnodes\"", NULL);
}

SY_TEST(prefix_affinity_checks_its_parameters)
{
	accepted("prefix_affinity", "{\"prefix_chars\": 64, \"epsilon\": 1, \"vnodes\": 20}");
	accepted("prefix_affinity", "{\"epsilon\": 0.5}");
	rejected("prefix_affinity", "{\"prefix\": 64}", "unknown parameter \"prefix\"",
	    "known: prefix_chars, epsilon, vnodes");
	rejected("prefix_affinity", "{\"prefix_chars\": 0}", "\"prefix_chars\"", "integer");
	rejected("prefix_affinity", "{\"epsilon\": -0.1}", "\"epsilon\"", "number");
	rejected("prefix_affinity", "{\"epsilon\": \"0.5\"}", "\"epsilon\"", NULL);
	rejected("prefix_affinity", "{\"vnodes\": true}", "\"vnodes\"", NULL);
}

SY_TEST(load_aware_checks_its_parameters)
{
	accepted("load_aware", "{\"queue_weight\": 2.5, \"kv_weight\": 0, \"stale_ms\": 500}");
	rejected("load_aware", "{\"stale\": 1}", "unknown parameter \"stale\"",
	    "known: queue_weight, kv_weight, stale_ms");
	rejected("load_aware", "{\"queue_weight\": -1}", "\"queue_weight\"", "number");
	rejected("load_aware", "{\"kv_weight\": \"8\"}", "\"kv_weight\"", NULL);
	rejected("load_aware", "{\"stale_ms\": 0}", "\"stale_ms\"", "integer");
}

/* ==== weighted ==== */

/*
 * Checks that policy picks over weights 5:1:1, for a request without a
 * session key, in nginx's smooth order (a, a, b, a, c, a, a) with reason.
 */
static void
check_smooth_sequence(const char *policy, const char *want_reason)
{
	static const unsigned w[] = { 5, 1, 1 };
	struct fleet f;
	struct bench b;
	struct sy_req req;
	const char *reason;
	char seq[8];
	int i;

	fleet_init(&f, 3, w);
	bench_init(&b, policy, NULL, &f.pool);
	req_chat(&req, "x", NULL);
	for (i = 0; i < 7; i++)
		seq[i] = bench_pick(&b, &req, &reason)->name[0];
	seq[7] = '\0';
	SY_CHECK_STR(seq, "aabacaa");
	SY_CHECK_STR(reason, want_reason);
	req_done(&req);
	bench_free(&b);
}

SY_TEST(weighted_follows_the_nginx_smooth_sequence)
{
	check_smooth_sequence("weighted", "weighted");
}

SY_TEST(weighted_shares_are_exact_over_whole_cycles)
{
	static const unsigned w[] = { 5, 1, 1 };
	long counts[MAXEP] = { 0 };
	struct fleet f;
	struct bench b;

	fleet_init(&f, 3, w);
	bench_init(&b, "weighted", NULL, &f.pool);
	count_picks(&b, &f, 7000, counts);
	SY_CHECK_INT(counts[0], 5000);
	SY_CHECK_INT(counts[1], 1000);
	SY_CHECK_INT(counts[2], 1000);
	bench_free(&b);
}

SY_TEST(weighted_gives_the_turn_of_an_unusable_endpoint_to_the_next_in_sequence)
{
	static const unsigned w[] = { 5, 1, 1 };
	long counts[MAXEP] = { 0 };
	struct fleet f;
	struct bench b;
	struct sy_req req;
	const char *reason;
	int i, skips = 0;

	fleet_init(&f, 3, w);
	atomic_store(&f.stats[1].unhealthy, 1);
	bench_init(&b, "weighted", NULL, &f.pool);
	req_chat(&req, "x", NULL);
	for (i = 0; i < 7000; i++) {
		counts[ep_index(&f, bench_pick(&b, &req, &reason))]++;
		skips += strcmp(reason, "skip-unusable") == 0;
	}
	SY_CHECK_INT(counts[0], 6000);
	SY_CHECK_INT(counts[1], 0);
	SY_CHECK_INT(counts[2], 1000);
	SY_CHECK_INT(skips, 1000);
	req_done(&req);
	bench_free(&b);
}

SY_TEST(weighted_keeps_a_turn_for_a_tiny_weight_beside_a_huge_one)
{
	static const unsigned w[] = { 1000000, 1 };
	long counts[MAXEP] = { 0 };
	struct fleet f;
	struct bench b;

	fleet_init(&f, 2, w);
	bench_init(&b, "weighted", NULL, &f.pool);
	count_picks(&b, &f, 4096, counts);
	SY_CHECK_INT(counts[1], 1);
	bench_free(&b);
}

/* ==== random ==== */

SY_TEST(random_shares_follow_weights)
{
	static const unsigned w[] = { 3, 1 };
	long counts[MAXEP] = { 0 };
	struct fleet f;
	struct bench b;

	fleet_init(&f, 2, w);
	bench_init(&b, "random", NULL, &f.pool);
	count_picks(&b, &f, 20000, counts);
	SY_CHECK(fabs(counts[0] / 20000.0 - 0.75) < 0.02);
	bench_free(&b);
}

SY_TEST(random_keeps_weight_proportions_among_usable_endpoints)
{
	static const unsigned w[] = { 2, 1, 5 };
	long counts[MAXEP] = { 0 };
	struct fleet f;
	struct bench b;

	fleet_init(&f, 3, w);
	atomic_store(&f.stats[2].unhealthy, 1);
	bench_init(&b, "random", NULL, &f.pool);
	count_picks(&b, &f, 20000, counts);
	SY_CHECK_INT(counts[2], 0);
	SY_CHECK(fabs(counts[0] / 20000.0 - 2.0 / 3) < 0.02);
	bench_free(&b);
}

SY_TEST(random_draws_every_weight_in_proportion_and_never_a_zero_weight)
{
	static const unsigned w[] = { 5, 0, 1, 3, 7, 2, 1, 0 };
	long counts[MAXEP] = { 0 };
	struct fleet f;
	struct bench b;
	size_t i;

	fleet_init(&f, 8, w);
	bench_init(&b, "random", NULL, &f.pool);
	count_picks(&b, &f, 190000, counts);
	/* Shares of 19: five standard deviations at most apart. */
	for (i = 0; i < 8; i++)
		SY_CHECK(fabs(counts[i] / 190000.0 - w[i] / 19.0) < 0.005);
	SY_CHECK_INT(counts[1], 0);
	SY_CHECK_INT(counts[7], 0);
	bench_free(&b);
}

/* ==== least_outstanding ==== */

SY_TEST(least_outstanding_picks_the_least_loaded)
{
	struct fleet f;
	struct bench b;
	struct sy_req req;
	const char *reason;

	fleet_init(&f, 3, NULL);
	atomic_store(&f.stats[0].in_flight, 5);
	atomic_store(&f.stats[1].in_flight, 2);
	atomic_store(&f.stats[2].in_flight, 7);
	bench_init(&b, "least_outstanding", NULL, &f.pool);
	req_chat(&req, "x", NULL);
	SY_CHECK(bench_pick(&b, &req, &reason) == &f.eps[1]);
	SY_CHECK_STR(reason, "least-loaded");
	req_done(&req);
	bench_free(&b);
}

SY_TEST(least_outstanding_divides_load_by_weight)
{
	static const unsigned w[] = { 4, 1 };
	struct fleet f;
	struct bench b;
	struct sy_req req;

	fleet_init(&f, 2, w);
	atomic_store(&f.stats[0].in_flight, 6);	/* 1.5 per unit */
	atomic_store(&f.stats[1].in_flight, 2);	/* 2 per unit */
	bench_init(&b, "least_outstanding", NULL, &f.pool);
	req_chat(&req, "x", NULL);
	SY_CHECK(bench_pick(&b, &req, NULL) == &f.eps[0]);
	req_done(&req);
	bench_free(&b);
}

SY_TEST(least_outstanding_spreads_ties_by_weight)
{
	static const unsigned w[] = { 1, 1, 2 };
	long counts[MAXEP] = { 0 };
	struct fleet f;
	struct bench b;

	fleet_init(&f, 3, w);
	bench_init(&b, "least_outstanding", NULL, &f.pool);
	count_picks(&b, &f, 400, counts);
	SY_CHECK_INT(counts[0], 100);
	SY_CHECK_INT(counts[1], 100);
	SY_CHECK_INT(counts[2], 200);
	bench_free(&b);
}

SY_TEST(least_outstanding_balances_requests_that_stay_in_flight)
{
	static const unsigned w[] = { 1, 3 };
	struct fleet f;
	struct bench b;
	struct sy_req req;
	struct sy_endpoint *ep;
	int i;

	fleet_init(&f, 2, w);
	bench_init(&b, "least_outstanding", NULL, &f.pool);
	req_chat(&req, "x", NULL);
	for (i = 0; i < 400; i++) {
		ep = bench_pick(&b, &req, NULL);
		atomic_fetch_add(&ep->stats->in_flight, 1);
	}
	SY_CHECK_INT(atomic_load(&f.stats[0].in_flight), 100);
	SY_CHECK_INT(atomic_load(&f.stats[1].in_flight), 300);
	req_done(&req);
	bench_free(&b);
}

/* ==== p2c_ewma ==== */

SY_TEST(p2c_ewma_prefers_the_faster_endpoint_after_observing_latencies)
{
	long counts[MAXEP] = { 0 };
	struct fleet f;
	struct bench b;
	struct sy_req req;
	const char *reason;
	int i;

	fleet_init(&f, 2, NULL);
	bench_init(&b, "p2c_ewma", NULL, &f.pool);
	for (i = 0; i < 3; i++) {
		bench_observe(&b, &f.eps[0], 200, 200);
		bench_observe(&b, &f.eps[1], 200, 20);
	}
	count_picks(&b, &f, 1000, counts);
	SY_CHECK_INT(counts[1], 1000);
	req_chat(&req, "x", NULL);
	bench_pick(&b, &req, &reason);
	SY_CHECK_STR(reason, "p2c");
	req_done(&req);
	bench_free(&b);
}

SY_TEST(p2c_ewma_recovers_an_endpoint_that_gets_fast_again)
{
	long counts[MAXEP] = { 0 };
	struct fleet f;
	struct bench b;

	fleet_init(&f, 2, NULL);
	bench_init(&b, "p2c_ewma", "{\"decay_ms\": 10}", &f.pool);
	bench_observe(&b, &f.eps[0], 200, 1000);
	bench_observe(&b, &f.eps[1], 200, 20);
	count_picks(&b, &f, 100, counts);
	SY_CHECK_INT(counts[1], 100);
	/* Many time constants later, a answers in 5 ms and b still in 20. */
	sleep_ms(100);
	bench_observe(&b, &f.eps[0], 200, 5);
	bench_observe(&b, &f.eps[1], 200, 20);
	counts[0] = counts[1] = 0;
	count_picks(&b, &f, 100, counts);
	SY_CHECK_INT(counts[0], 100);
	bench_free(&b);
}

SY_TEST(p2c_ewma_probes_an_avoided_endpoint_again_as_its_estimate_decays)
{
	struct fleet f;
	struct bench b;
	struct sy_req req;

	fleet_init(&f, 2, NULL);
	bench_init(&b, "p2c_ewma", "{\"decay_ms\": 10}", &f.pool);
	bench_observe(&b, &f.eps[0], 200, 1000);
	bench_observe(&b, &f.eps[1], 200, 20);
	req_chat(&req, "x", NULL);
	SY_CHECK(bench_pick(&b, &req, NULL) == &f.eps[1]);
	/* a gets no traffic; b keeps answering in 20 ms. */
	sleep_ms(100);
	bench_observe(&b, &f.eps[1], 200, 20);
	SY_CHECK(bench_pick(&b, &req, NULL) == &f.eps[0]);
	req_done(&req);
	bench_free(&b);
}

SY_TEST(p2c_ewma_jumps_to_a_latency_peak_at_once)
{
	long counts[MAXEP] = { 0 };
	struct fleet f;
	struct bench b;

	fleet_init(&f, 2, NULL);
	bench_init(&b, "p2c_ewma", NULL, &f.pool);
	bench_observe(&b, &f.eps[0], 200, 10);
	bench_observe(&b, &f.eps[1], 200, 50);
	bench_observe(&b, &f.eps[0], 200, 500);	/* one slow answer */
	count_picks(&b, &f, 200, counts);
	SY_CHECK_INT(counts[1], 200);
	bench_free(&b);
}

/* Picks 200 times from a and b after a failed (status) fast and b succeeded slowly; returns b's picks. */
static long
p2c_after_failure(int status)
{
	long counts[MAXEP] = { 0 };
	struct fleet f;
	struct bench b;

	fleet_init(&f, 2, NULL);
	bench_init(&b, "p2c_ewma", "{\"failure_penalty_ms\": 3000}", &f.pool);
	bench_observe(&b, &f.eps[0], status, 1);
	bench_observe(&b, &f.eps[1], 200, 1000);
	count_picks(&b, &f, 200, counts);
	bench_free(&b);
	return counts[1];
}

SY_TEST(p2c_ewma_counts_a_failure_as_the_penalty_latency)
{
	SY_CHECK_INT(p2c_after_failure(502), 200);
	SY_CHECK_INT(p2c_after_failure(500), 200);
	SY_CHECK_INT(p2c_after_failure(0), 200);	/* transport failure */
	SY_CHECK_INT(p2c_after_failure(404), 0);	/* a fast answer */
}

SY_TEST(p2c_ewma_weighs_latency_by_requests_in_flight)
{
	long counts[MAXEP] = { 0 };
	struct fleet f;
	struct bench b;

	fleet_init(&f, 2, NULL);
	bench_init(&b, "p2c_ewma", NULL, &f.pool);
	bench_observe(&b, &f.eps[0], 200, 10);
	bench_observe(&b, &f.eps[1], 200, 50);
	atomic_store(&f.stats[0].in_flight, 20);	/* 10 × 21 > 50 × 1 */
	count_picks(&b, &f, 200, counts);
	SY_CHECK_INT(counts[1], 200);
	bench_free(&b);
}

SY_TEST(p2c_ewma_tries_an_endpoint_without_samples)
{
	long counts[MAXEP] = { 0 };
	struct fleet f;
	struct bench b;

	fleet_init(&f, 3, NULL);
	bench_init(&b, "p2c_ewma", NULL, &f.pool);
	bench_observe(&b, &f.eps[0], 200, 100);
	bench_observe(&b, &f.eps[1], 200, 10);
	count_picks(&b, &f, 3000, counts);
	SY_CHECK_INT(counts[0], 0);
	SY_CHECK(counts[2] > 600);		/* about half, as cheap as b */
	bench_free(&b);
}

SY_TEST(p2c_ewma_honours_weights_between_equal_endpoints)
{
	static const unsigned w[] = { 3, 1 };
	long counts[MAXEP] = { 0 };
	struct fleet f;
	struct bench b;
	struct sy_req req;
	struct sy_endpoint *ep;
	int i;

	fleet_init(&f, 2, w);
	bench_init(&b, "p2c_ewma", NULL, &f.pool);
	bench_observe(&b, &f.eps[0], 200, 10);
	bench_observe(&b, &f.eps[1], 200, 10);
	req_chat(&req, "x", NULL);
	for (i = 0; i < 400; i++) {
		ep = bench_pick(&b, &req, NULL);
		atomic_fetch_add(&ep->stats->in_flight, 1);
		counts[ep_index(&f, ep)]++;
	}
	SY_CHECK(counts[0] >= 297 && counts[0] <= 303);
	req_done(&req);
	bench_free(&b);
}

/* ==== session_affinity ==== */

SY_TEST(session_affinity_sends_a_session_header_to_the_same_endpoint)
{
	struct sy_http1_msg head;
	struct fleet f;
	struct bench b;
	struct sy_req req;
	struct sy_endpoint *first, *ep;
	const char *reason;
	int i;

	fleet_init(&f, 4, NULL);
	bench_init(&b, "session_affinity", NULL, &f.pool);
	head_parse(&head, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
	    "X-Session-Id: conversation-42\r\n\r\n");
	req_chat(&req, "x", NULL);
	req.head = &head;
	first = bench_pick(&b, &req, &reason);
	SY_CHECK_STR(reason, "session-hit");
	for (i = 0; i < 50; i++) {
		ep = bench_pick(&b, &req, NULL);
		SY_CHECK(ep == first);
	}
	req_done(&req);
	sy_http1_free(&head);
	bench_free(&b);
}

SY_TEST(session_affinity_uses_the_user_field_without_a_header)
{
	struct fleet f;
	struct bench b;
	struct sy_req req;
	struct sy_endpoint *first;
	const char *reason;
	int i, same = 1;

	fleet_init(&f, 4, NULL);
	bench_init(&b, "session_affinity", NULL, &f.pool);
	req_chat(&req, "one", "alice");
	first = bench_pick(&b, &req, &reason);
	SY_CHECK_STR(reason, "session-hit");
	req_done(&req);
	for (i = 0; i < 50; i++) {
		char text[16];

		snprintf(text, sizeof text, "turn %d", i);
		req_chat(&req, text, "alice");
		same &= bench_pick(&b, &req, NULL) == first;
		req_done(&req);
	}
	SY_CHECK(same);
	bench_free(&b);
}

SY_TEST(session_affinity_reads_the_header_its_parameter_names)
{
	struct sy_http1_msg head;
	struct fleet f;
	struct bench b;
	struct sy_req req;
	struct sy_endpoint *ep;
	const char *reason;
	long counts[MAXEP] = { 0 };
	char text[128];
	int i;

	fleet_init(&f, 4, NULL);
	bench_init(&b, "session_affinity", "{\"header\": \"x-conversation\"}",
	    &f.pool);
	for (i = 0; i < 40; i++) {
		snprintf(text, sizeof text, "POST /v1/chat/completions HTTP/1.1\r\n"
		    "X-Session-Id: s%d\r\nX-Conversation: c1\r\n\r\n", i);
		head_parse(&head, text);
		snprintf(text, sizeof text, "user%d", i);
		req_chat(&req, "x", text);
		req.head = &head;
		ep = bench_pick(&b, &req, &reason);
		counts[ep_index(&f, ep)]++;
		req_done(&req);
		sy_http1_free(&head);
	}
	SY_CHECK_STR(reason, "session-hit");
	SY_CHECK(counts[0] == 40 || counts[1] == 40 || counts[2] == 40 ||
	    counts[3] == 40);
	bench_free(&b);
}

SY_TEST(session_affinity_spreads_keys_by_weight)
{
	static const unsigned w[] = { 1, 2, 1 };
	long counts[MAXEP] = { 0 };
	struct fleet f;
	struct bench b;

	fleet_init(&f, 3, w);
	bench_init(&b, "session_affinity", NULL, &f.pool);
	count_picks(&b, &f, 20000, counts);
	SY_CHECK(fabs(counts[0] / 20000.0 - 0.25) < 0.05);
	SY_CHECK(fabs(counts[1] / 20000.0 - 0.50) < 0.05);
	SY_CHECK(fabs(counts[2] / 20000.0 - 0.25) < 0.05);
	bench_free(&b);
}

SY_TEST(session_affinity_moves_only_the_keys_of_a_removed_endpoint)
{
	struct fleet f4, f3;
	struct bench b4, b3;
	struct sy_req req;
	struct sy_endpoint *before, *after;
	int i, moved = 0, wrongly = 0, on_d = 0;

	fleet_init(&f4, 4, NULL);
	/* The same fleet without "c": a, b, d. */
	fleet_init(&f3, 4, NULL);
	f3.ptrs[2] = &f3.eps[3];
	f3.pool.nendpoints = 3;
	bench_init(&b4, "session_affinity", NULL, &f4.pool);
	bench_init(&b3, "session_affinity", NULL, &f3.pool);
	for (i = 0; i < 4000; i++) {
		char user[16];

		snprintf(user, sizeof user, "user%d", i);
		req_chat(&req, "x", user);
		before = bench_pick(&b4, &req, NULL);
		after = bench_pick(&b3, &req, NULL);
		if (before == &f4.eps[2])
			moved++;
		else if (strcmp(before->name, after->name) != 0)
			wrongly++;
		on_d += before == &f4.eps[3];
		req_done(&req);
	}
	SY_CHECK_INT(wrongly, 0);
	SY_CHECK(moved > 500 && moved < 1500);
	SY_CHECK(on_d > 500);
	bench_free(&b4);
	bench_free(&b3);
}

SY_TEST(session_affinity_goes_clockwise_while_its_endpoint_is_unusable)
{
	struct fleet f;
	struct bench b;
	struct sy_req req;
	struct sy_endpoint *home, *other;
	const char *reason;

	fleet_init(&f, 4, NULL);
	bench_init(&b, "session_affinity", NULL, &f.pool);
	req_chat(&req, "x", "bob");
	home = bench_pick(&b, &req, NULL);
	atomic_store(&home->stats->unhealthy, 1);
	other = bench_pick(&b, &req, &reason);
	SY_CHECK(other != NULL && other != home);
	SY_CHECK_STR(reason, "session-moved");
	SY_CHECK(bench_pick(&b, &req, NULL) == other);
	atomic_store(&home->stats->unhealthy, 0);
	SY_CHECK(bench_pick(&b, &req, &reason) == home);
	SY_CHECK_STR(reason, "session-hit");
	req_done(&req);
	bench_free(&b);
}

SY_TEST(session_affinity_without_a_key_goes_weighted_round_robin)
{
	check_smooth_sequence("session_affinity", "no-session-key");
}

/* ==== prefix_affinity ==== */

/* A chat request with a system message and one user message. */
static void
req_chat2(struct sy_req *req, const char *system, const char *user)
{
	memset(req, 0, sizeof *req);
	req->api = SY_API_CHAT;
	req->body = json_pack("{s:s, s:[{s:s, s:s}, {s:s, s:s}]}", "model", "m",
	    "messages", "role", "system", "content", system,
	    "role", "user", "content", user);
}

SY_TEST(prefix_affinity_sends_the_same_prompt_to_the_same_endpoint)
{
	struct fleet f;
	struct bench b;
	struct sy_req req;
	struct sy_endpoint *first;
	const char *reason;
	int i, same = 1;

	fleet_init(&f, 4, NULL);
	bench_init(&b, "prefix_affinity", NULL, &f.pool);
	req_chat2(&req, "You are a helpful assistant.", "Tell me about ducks.");
	first = bench_pick(&b, &req, &reason);
	SY_CHECK_STR(reason, "prefix-hit");
	for (i = 0; i < 20; i++)
		same &= bench_pick(&b, &req, NULL) == first;
	SY_CHECK(same);
	req_done(&req);
	bench_free(&b);
}

SY_TEST(prefix_affinity_ignores_what_follows_the_prefix)
{
	struct fleet f;
	struct bench b;
	struct sy_req req;
	struct sy_endpoint *first;
	char sys[200];
	int i, same = 1;

	memset(sys, 's', sizeof sys - 1);
	sys[sizeof sys - 1] = '\0';
	fleet_init(&f, 8, NULL);
	bench_init(&b, "prefix_affinity", "{\"prefix_chars\": 128}", &f.pool);
	req_chat2(&req, sys, "question 0");
	first = bench_pick(&b, &req, NULL);
	req_done(&req);
	for (i = 1; i < 40; i++) {
		char q[32];

		snprintf(q, sizeof q, "question %d", i);
		req_chat2(&req, sys, q);
		same &= bench_pick(&b, &req, NULL) == first;
		req_done(&req);
	}
	SY_CHECK(same);
	bench_free(&b);
}

SY_TEST(prefix_affinity_spreads_different_prompts)
{
	long counts[MAXEP] = { 0 };
	struct fleet f;
	struct bench b;

	fleet_init(&f, 4, NULL);
	bench_init(&b, "prefix_affinity", NULL, &f.pool);
	count_picks(&b, &f, 4000, counts);	/* nothing stays in flight */
	SY_CHECK(counts[0] > 700 && counts[1] > 700 && counts[2] > 700 &&
	    counts[3] > 700);
	bench_free(&b);
}

SY_TEST(prefix_affinity_reads_text_parts_like_string_content)
{
	struct fleet f;
	struct bench b;
	struct sy_req r1, r2;
	int i, same = 1;

	fleet_init(&f, 8, NULL);
	bench_init(&b, "prefix_affinity", NULL, &f.pool);
	for (i = 0; i < 30; i++) {
		char text[32];

		snprintf(text, sizeof text, "describe picture %d", i);
		req_chat(&r1, text, NULL);
		memset(&r2, 0, sizeof r2);
		r2.api = SY_API_CHAT;
		r2.body = json_pack("{s:s, s:[{s:s, s:[{s:s, s:s}, {s:s, s:{s:s}}]}]}",
		    "model", "m", "messages", "role", "user", "content",
		    "type", "text", "text", text,
		    "type", "image_url", "image_url", "url", "http://x/y.png");
		same &= bench_pick(&b, &r1, NULL) == bench_pick(&b, &r2, NULL);
		req_done(&r1);
		req_done(&r2);
	}
	SY_CHECK(same);
	bench_free(&b);
}

SY_TEST(prefix_affinity_reads_completion_prompts_and_embedding_inputs)
{
	struct fleet f;
	struct bench b;
	struct sy_req r1, r2, r3;
	int i, same = 1;

	fleet_init(&f, 8, NULL);
	bench_init(&b, "prefix_affinity", NULL, &f.pool);
	memset(&r1, 0, sizeof r1);
	memset(&r2, 0, sizeof r2);
	memset(&r3, 0, sizeof r3);
	r1.api = r2.api = SY_API_COMPLETIONS;
	r3.api = SY_API_EMBEDDINGS;
	for (i = 0; i < 30; i++) {
		char text[32];

		snprintf(text, sizeof text, "once upon a time %d", i);
		r1.body = json_pack("{s:s, s:s}", "model", "m", "prompt", text);
		r2.body = json_pack("{s:s, s:[s, s]}", "model", "m", "prompt",
		    text, "another");
		r3.body = json_pack("{s:s, s:s}", "model", "m", "input", text);
		same &= bench_pick(&b, &r1, NULL) == bench_pick(&b, &r2, NULL);
		same &= bench_pick(&b, &r1, NULL) == bench_pick(&b, &r3, NULL);
		req_done(&r1);
		req_done(&r2);
		req_done(&r3);
	}
	SY_CHECK(same);
	bench_free(&b);
}

SY_TEST(prefix_affinity_overflows_from_a_hot_endpoint)
{
	struct fleet f;
	struct bench b;
	struct sy_req req;
	struct sy_endpoint *home, *next;
	const char *reason;

	fleet_init(&f, 4, NULL);
	bench_init(&b, "prefix_affinity", NULL, &f.pool);
	req_chat2(&req, "You are a pirate.", "Ahoy?");
	home = bench_pick(&b, &req, &reason);
	SY_CHECK_STR(reason, "prefix-hit");
	/* 10 in flight of 10: bound ceil(1.25 × 11 / 4) = 4. */
	atomic_store(&home->stats->in_flight, 10);
	next = bench_pick(&b, &req, &reason);
	SY_CHECK(next != NULL && next != home);
	SY_CHECK_STR(reason, "overflow");
	SY_CHECK(bench_pick(&b, &req, NULL) == next);
	/* Once its load is gone, the prompt goes home again. */
	atomic_store(&home->stats->in_flight, 0);
	SY_CHECK(bench_pick(&b, &req, &reason) == home);
	SY_CHECK_STR(reason, "prefix-hit");
	req_done(&req);
	bench_free(&b);
}

/*
 * Places 16 prompts × 100 requests over 4 endpoints, every request staying
 * in flight, with epsilon; returns the busiest endpoint's load and sets
 * *least to the idlest one's.
 */
static long
prefix_place(const char *params, long *least)
{
	struct fleet f;
	struct bench b;
	struct sy_req reqs[16];
	struct sy_endpoint *ep;
	long hi, v;
	int i, k;

	fleet_init(&f, 4, NULL);
	bench_init(&b, "prefix_affinity", params, &f.pool);
	for (k = 0; k < 16; k++) {
		char sys[64];

		snprintf(sys, sizeof sys, "You are agent number %d.", k);
		req_chat2(&reqs[k], sys, "Go.");
	}
	for (i = 0; i < 100; i++) {
		for (k = 0; k < 16; k++) {
			ep = bench_pick(&b, &reqs[k], NULL);
			atomic_fetch_add(&ep->stats->in_flight, 1);
		}
	}
	*least = hi = atomic_load(&f.stats[0].in_flight);
	for (k = 1; k < 4; k++) {
		v = atomic_load(&f.stats[k].in_flight);
		*least = v < *least ? v : *least;
		hi = v > hi ? v : hi;
	}
	for (k = 0; k < 16; k++)
		req_done(&reqs[k]);
	bench_free(&b);
	return hi;
}

SY_TEST(prefix_affinity_keeps_the_busiest_endpoint_within_the_bound)
{
	long least, unbounded_least;

	/* 1600 in flight over 4: the mean is 400, the bound 1.25 × 400. */
	SY_CHECK(prefix_place(NULL, &least) <= 500);
	SY_CHECK(least > 0);
	/* Without a useful bound the same prompts pile up beyond it. */
	SY_CHECK(prefix_place("{\"epsilon\": 100}", &unbounded_least) > 500);
}

SY_TEST(prefix_affinity_without_a_prompt_goes_weighted_round_robin)
{
	struct fleet f;
	struct bench b;
	struct sy_req req;
	const char *reason;
	long counts[MAXEP] = { 0 };
	int i;

	fleet_init(&f, 2, NULL);
	bench_init(&b, "prefix_affinity", NULL, &f.pool);
	memset(&req, 0, sizeof req);
	req.body = json_pack("{s:s, s:[]}", "model", "m", "messages");
	for (i = 0; i < 10; i++)
		counts[ep_index(&f, bench_pick(&b, &req, &reason))]++;
	SY_CHECK_STR(reason, "no-prefix");
	SY_CHECK_INT(counts[0], 5);
	SY_CHECK_INT(counts[1], 5);
	req_done(&req);
	bench_free(&b);
}

/* ==== load_aware ==== */

/* Records a scrape of ep taken age_ms ago. */
static void
scraped(struct sy_endpoint *ep, long running, long waiting, int kv_permille,
    long age_ms)
{
	atomic_store(&ep->stats->scraped_running, running);
	atomic_store(&ep->stats->scraped_waiting, waiting);
	atomic_store(&ep->stats->scraped_kv_permille, kv_permille);
	atomic_store(&ep->stats->scraped_at_us,
	    sy_now_us() - (uint64_t)age_ms * 1000);
}

SY_TEST(load_aware_prefers_the_shortest_queue_and_emptiest_cache)
{
	struct fleet f;
	struct bench b;
	struct sy_req req;
	const char *reason;

	fleet_init(&f, 3, NULL);
	scraped(&f.eps[0], 4, 3, 900, 0);	/* 12 + 4 + 7.2 */
	scraped(&f.eps[1], 4, 0, 200, 0);	/*  0 + 4 + 1.6 */
	scraped(&f.eps[2], 2, 5, 500, 0);	/* 20 + 2 + 4   */
	bench_init(&b, "load_aware", NULL, &f.pool);
	req_chat(&req, "x", NULL);
	SY_CHECK(bench_pick(&b, &req, &reason) == &f.eps[1]);
	SY_CHECK_STR(reason, "scraped");
	/* The gateway's own requests in flight count too. */
	atomic_store(&f.stats[1].in_flight, 20);
	SY_CHECK(bench_pick(&b, &req, NULL) == &f.eps[0]);
	req_done(&req);
	bench_free(&b);
}

SY_TEST(load_aware_weighs_the_figures_by_its_parameters)
{
	struct fleet f;
	struct bench b;
	struct sy_req req;

	fleet_init(&f, 2, NULL);
	scraped(&f.eps[0], 0, 2, 0, 0);		/* queue only */
	scraped(&f.eps[1], 5, 0, 0, 0);		/* running only */
	bench_init(&b, "load_aware", "{\"queue_weight\": 1}", &f.pool);
	req_chat(&req, "x", NULL);
	SY_CHECK(bench_pick(&b, &req, NULL) == &f.eps[0]);
	bench_free(&b);
	bench_init(&b, "load_aware", NULL, &f.pool);	/* 2 × 4 > 5 */
	SY_CHECK(bench_pick(&b, &req, NULL) == &f.eps[1]);
	req_done(&req);
	bench_free(&b);
}

SY_TEST(load_aware_falls_back_to_in_flight_when_a_scrape_is_stale)
{
	struct fleet f;
	struct bench b;
	struct sy_req req;
	const char *reason;

	fleet_init(&f, 3, NULL);
	scraped(&f.eps[0], 9, 9, 900, 0);
	scraped(&f.eps[1], 0, 0, 0, 3000);	/* older than 2 s */
	scraped(&f.eps[2], 0, 0, 0, 0);
	atomic_store(&f.stats[0].in_flight, 0);
	atomic_store(&f.stats[1].in_flight, 4);
	atomic_store(&f.stats[2].in_flight, 5);
	bench_init(&b, "load_aware", NULL, &f.pool);
	req_chat(&req, "x", NULL);
	SY_CHECK(bench_pick(&b, &req, &reason) == &f.eps[0]);
	SY_CHECK_STR(reason, "in-flight-fallback");
	bench_free(&b);
	bench_init(&b, "load_aware", "{\"stale_ms\": 5000}", &f.pool);
	SY_CHECK(bench_pick(&b, &req, &reason) == &f.eps[1]);
	SY_CHECK_STR(reason, "scraped");
	req_done(&req);
	bench_free(&b);
}

SY_TEST(load_aware_falls_back_to_in_flight_before_the_first_scrape)
{
	long counts[MAXEP] = { 0 };
	struct fleet f;
	struct bench b;
	struct sy_req req;
	const char *reason;

	fleet_init(&f, 2, NULL);
	scraped(&f.eps[0], 0, 0, 0, 0);
	bench_init(&b, "load_aware", NULL, &f.pool);
	req_chat(&req, "x", NULL);
	bench_pick(&b, &req, &reason);
	SY_CHECK_STR(reason, "in-flight-fallback");
	req_done(&req);
	count_picks(&b, &f, 100, counts);	/* equals take turns */
	SY_CHECK_INT(counts[0], 50);
	SY_CHECK_INT(counts[1], 50);
	bench_free(&b);
}

SY_TEST(load_aware_divides_scores_by_weight)
{
	static const unsigned w[] = { 1, 4 };
	struct fleet f;
	struct bench b;
	struct sy_req req;

	fleet_init(&f, 2, w);
	scraped(&f.eps[0], 2, 0, 0, 0);		/* 2 per unit */
	scraped(&f.eps[1], 6, 0, 0, 0);		/* 1.5 per unit */
	bench_init(&b, "load_aware", NULL, &f.pool);
	req_chat(&req, "x", NULL);
	SY_CHECK(bench_pick(&b, &req, NULL) == &f.eps[1]);
	req_done(&req);
	bench_free(&b);
}

int
main(void)
{
	SY_RUN(every_policy_is_registered);
	SY_RUN(every_policy_starts_from_its_defaults_and_picks_with_a_reason);
	SY_RUN(every_policy_picks_none_from_an_empty_pool);
	SY_RUN(every_policy_picks_none_when_all_weights_are_zero);
	SY_RUN(every_policy_picks_none_when_all_are_at_max_concurrency);
	SY_RUN(every_policy_picks_none_when_all_are_ejected);
	SY_RUN(every_policy_picks_none_when_all_are_unhealthy);
	SY_RUN(every_policy_skips_zero_weights);
	SY_RUN(every_policy_picks_the_only_endpoint);
	SY_RUN(every_policy_skips_the_endpoint_a_retry_already_tried);
	SY_RUN(every_policy_skips_a_full_endpoint_and_uses_the_others);
	SY_RUN(every_policy_avoids_ejected_unhealthy_and_limited_endpoints_while_one_is_fit);
	SY_RUN(every_policy_uses_an_endpoint_whose_ejection_has_passed);
	SY_RUN(policies_without_parameters_refuse_any);
	SY_RUN(p2c_ewma_checks_its_parameters);
	SY_RUN(session_affinity_checks_its_parameters);
	SY_RUN(prefix_affinity_checks_its_parameters);
	SY_RUN(load_aware_checks_its_parameters);
	SY_RUN(weighted_follows_the_nginx_smooth_sequence);
	SY_RUN(weighted_shares_are_exact_over_whole_cycles);
	SY_RUN(weighted_gives_the_turn_of_an_unusable_endpoint_to_the_next_in_sequence);
	SY_RUN(weighted_keeps_a_turn_for_a_tiny_weight_beside_a_huge_one);
	SY_RUN(random_shares_follow_weights);
	SY_RUN(random_keeps_weight_proportions_among_usable_endpoints);
	SY_RUN(random_draws_every_weight_in_proportion_and_never_a_zero_weight);
	SY_RUN(least_outstanding_picks_the_least_loaded);
	SY_RUN(least_outstanding_divides_load_by_weight);
	SY_RUN(least_outstanding_spreads_ties_by_weight);
	SY_RUN(least_outstanding_balances_requests_that_stay_in_flight);
	SY_RUN(p2c_ewma_prefers_the_faster_endpoint_after_observing_latencies);
	SY_RUN(p2c_ewma_recovers_an_endpoint_that_gets_fast_again);
	SY_RUN(p2c_ewma_probes_an_avoided_endpoint_again_as_its_estimate_decays);
	SY_RUN(p2c_ewma_jumps_to_a_latency_peak_at_once);
	SY_RUN(p2c_ewma_counts_a_failure_as_the_penalty_latency);
	SY_RUN(p2c_ewma_weighs_latency_by_requests_in_flight);
	SY_RUN(p2c_ewma_tries_an_endpoint_without_samples);
	SY_RUN(p2c_ewma_honours_weights_between_equal_endpoints);
	SY_RUN(session_affinity_sends_a_session_header_to_the_same_endpoint);
	SY_RUN(session_affinity_uses_the_user_field_without_a_header);
	SY_RUN(session_affinity_reads_the_header_its_parameter_names);
	SY_RUN(session_affinity_spreads_keys_by_weight);
	SY_RUN(session_affinity_moves_only_the_keys_of_a_removed_endpoint);
	SY_RUN(session_affinity_goes_clockwise_while_its_endpoint_is_unusable);
	SY_RUN(session_affinity_without_a_key_goes_weighted_round_robin);
	SY_RUN(prefix_affinity_sends_the_same_prompt_to_the_same_endpoint);
	SY_RUN(prefix_affinity_ignores_what_follows_the_prefix);
	SY_RUN(prefix_affinity_spreads_different_prompts);
	SY_RUN(prefix_affinity_reads_text_parts_like_string_content);
	SY_RUN(prefix_affinity_reads_completion_prompts_and_embedding_inputs);
	SY_RUN(prefix_affinity_overflows_from_a_hot_endpoint);
	SY_RUN(prefix_affinity_keeps_the_busiest_endpoint_within_the_bound);
	SY_RUN(prefix_affinity_without_a_prompt_goes_weighted_round_robin);
	SY_RUN(load_aware_prefers_the_shortest_queue_and_emptiest_cache);
	SY_RUN(load_aware_weighs_the_figures_by_its_parameters);
	SY_RUN(load_aware_falls_back_to_in_flight_when_a_scrape_is_stale);
	SY_RUN(load_aware_falls_back_to_in_flight_before_the_first_scrape);
	SY_RUN(load_aware_divides_scores_by_weight);
	return sy_test_done();
}
