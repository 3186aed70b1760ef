/* Unit tests of prefix_aware routing: chained block hashes, the per-endpoint LRU index, the scores, the bounded-load guard and the engine's feedback. */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "policy.h"
#include "prefix_index.h"
#include "req.h"
#include "util.h"
#include "sy_test.h"

/* ==== Fixtures ==== */

#define MAXEP 4

static const char *const names[MAXEP] = { "a", "b", "c", "d" };

struct fleet {
	struct sy_endpoint_stats stats[MAXEP];
	struct sy_endpoint eps[MAXEP];
	struct sy_endpoint *ptrs[MAXEP];
	struct sy_route route;
	struct sy_pool pool;
	const struct sy_route_policy *p;
	void *st;
};

/* A pool of n endpoints of weight 1 under prefix_aware with params (JSON text). */
static void fleet_init_keep(struct fleet *f, size_t n, const char *params);

static void
fleet_init(struct fleet *f, size_t n, const char *params)
{
	memset(f, 0, sizeof *f);
	fleet_init_keep(f, n, params);
}

/* As fleet_init, keeping the cache_tokens already set in f->eps. */
static void
fleet_init_keep(struct fleet *f, size_t n, const char *params)
{
	json_t *j = json_loads(params != NULL ? params : "{}", 0, NULL);
	char *err = NULL;
	size_t i;

	for (i = 0; i < n; i++) {
		sy_endstats_init(&f->stats[i], names[i]);
		f->eps[i].index = i;
		f->eps[i].name = (char *)names[i];
		f->eps[i].weight = 1;
		f->eps[i].stats = &f->stats[i];
		f->ptrs[i] = &f->eps[i];
	}
	f->route.name = "r";
	f->pool.route = &f->route;
	f->pool.model = "m";
	f->pool.endpoints = f->ptrs;
	f->pool.nendpoints = n;
	f->p = sy_route_policy_find("prefix_aware");
	f->st = f->p->create(j, &f->pool, &err);
	if (err != NULL) {
		printf("# %s\n", err);
		free(err);
		SY_CHECK(0);
	}
	json_decref(j);
}

static void
fleet_free(struct fleet *f)
{
	f->p->destroy(f->st);
}

/* A chat request of messages (role, text pairs, NULL-ended). */
static void
req_chat(struct sy_req *req, const char *const *msgs)
{
	size_t i;

	memset(req, 0, sizeof *req);
	req->api = SY_API_CHAT;
	req->body = json_pack("{s:s, s:[]}", "model", "m", "messages");
	for (i = 0; msgs[i] != NULL; i += 2)
		json_array_append_new(json_object_get(req->body, "messages"),
		    json_pack("{s:s, s:s}", "role", msgs[i], "content",
		    msgs[i + 1]));
}

static void
req_done(struct sy_req *req)
{
	json_decref(req->body);
	req->body = NULL;
}

/* Picks for req; the index of the endpoint (-1: none), the reason in *reason. */
static int
pick(struct fleet *f, struct sy_req *req, const char **reason)
{
	const char *r = NULL;
	struct sy_endpoint *ep = f->p->pick(f->st, &f->pool, req, &r);

	if (reason != NULL)
		*reason = req->pick_words[0] ? req->pick_words : r;
	return ep == NULL ? -1 : (int)(ep - f->eps);
}

/* A long text of n words, different for each seed. */
static char *
text(unsigned seed, size_t n)
{
	char *s = sy_xmalloc(n * 12 + 1), *p = s;
	size_t i;

	for (i = 0; i < n; i++)
		p += sprintf(p, "w%u_%zu ", seed, i);
	return s;
}

/* The chain of a string. */
static void
chain_of(struct sy_prefix_chain *c, const char *s, size_t block, size_t max)
{
	sy_prefix_chain_init(c, block, max);
	sy_prefix_chain_add(c, s, strlen(s));
}

/* Feeds prompt bytes to a chain (a sy_prompt_fn). */
static int
chain_add(void *arg, const char *s, size_t len)
{
	return sy_prefix_chain_add(arg, s, len);
}

/* ==== Chained hashing ==== */

SY_TEST(same_prefix_gives_the_same_chain)
{
	struct sy_prefix_chain a, b;
	char *s = text(1, 200);
	size_t i;

	chain_of(&a, s, 64, 1000);
	sy_prefix_chain_init(&b, 64, 1000);
	/* Fed in odd pieces, the blocks are the same. */
	for (i = 0; i < strlen(s); i += 7)
		sy_prefix_chain_add(&b, s + i, strlen(s) - i < 7 ?
		    strlen(s) - i : 7);
	SY_CHECK_INT(a.n, strlen(s) / 64);
	SY_CHECK_INT(b.n, a.n);
	SY_CHECK(memcmp(a.hashes, b.hashes, a.n * sizeof *a.hashes) == 0);
	/* "w1_N " is two tokens in five or six bytes. */
	SY_CHECK_INT(sy_prefix_chain_tokens(&a, 0), 0);
	SY_CHECK(sy_prefix_chain_tokens(&a, 1) >= 20 &&
	    sy_prefix_chain_tokens(&a, 1) <= 26);
	SY_CHECK_INT(sy_prefix_chain_tokens(&a, 16),
	    sy_prefix_chain_tokens(&a, 8) * 2);
	sy_prefix_chain_free(&a);
	sy_prefix_chain_free(&b);
	free(s);
}

SY_TEST(one_changed_byte_diverges_at_its_block_and_after)
{
	struct sy_prefix_chain a, b;
	char *s = text(1, 200);
	size_t i;

	chain_of(&a, s, 64, 1000);
	s[64 * 5 + 10] ^= 1;
	chain_of(&b, s, 64, 1000);
	SY_CHECK_INT(b.n, a.n);
	for (i = 0; i < 5; i++)
		SY_CHECK(a.hashes[i] == b.hashes[i]);
	for (i = 5; i < a.n; i++)
		SY_CHECK(a.hashes[i] != b.hashes[i]);
	sy_prefix_chain_free(&a);
	sy_prefix_chain_free(&b);
	free(s);
}

SY_TEST(a_block_stands_for_its_whole_prefix)
{
	struct sy_prefix_chain a, b;
	char x[128], y[128];

	/* The same second block after different first blocks differs. */
	memset(x, 'x', 128);
	memset(y, 'x', 128);
	y[0] = 'y';
	sy_prefix_chain_init(&a, 64, 10);
	sy_prefix_chain_add(&a, x, 128);
	sy_prefix_chain_init(&b, 64, 10);
	sy_prefix_chain_add(&b, y, 128);
	SY_CHECK_INT(a.n, 2);
	SY_CHECK(a.hashes[1] != b.hashes[1]);
	SY_CHECK(a.hashes[0] != a.hashes[1]);
	sy_prefix_chain_free(&a);
	sy_prefix_chain_free(&b);
}

SY_TEST(a_partial_last_block_is_not_hashed_and_max_bounds_the_chain)
{
	struct sy_prefix_chain c;
	char *s = text(2, 1000);

	chain_of(&c, s, 64, 1000);
	SY_CHECK_INT(c.n, strlen(s) / 64);
	sy_prefix_chain_free(&c);
	sy_prefix_chain_init(&c, 64, 3);
	SY_CHECK_INT(sy_prefix_chain_add(&c, s, strlen(s)), 0);
	SY_CHECK_INT(c.n, 3);
	sy_prefix_chain_free(&c);
	free(s);
}

SY_TEST(the_prompt_is_fed_in_canonical_order)
{
	static const char *const m1[] = { "system", "be brief", "user", "hi",
	    NULL };
	struct sy_req req;
	struct sy_prefix_chain c;

	req_chat(&req, m1);
	sy_prefix_chain_init(&c, 16, 100);
	SY_CHECK_INT(sy_prompt_feed(&req, chain_add, &c), strlen("system\nbe brief\nuser\nhi\n"));
	SY_CHECK_INT(c.n, 1);
	SY_CHECK_INT(c.fill, strlen("system\nbe brief\nuser\nhi\n") - 16);
	SY_CHECK(memcmp(c.buf, "user\nhi\n", 8) == 0);
	sy_prefix_chain_free(&c);
	req_done(&req);
}

/* ==== The index of one endpoint ==== */

SY_TEST(set_matches_the_longest_held_prefix)
{
	struct sy_prefix_set s;
	uint64_t h[10] = { 11, 12, 13, 14, 15, 16, 17, 18, 19, 20 };
	uint64_t other[3] = { 11, 12, 99 };

	sy_prefix_set_init(&s, 100);
	SY_CHECK_INT(sy_prefix_set_match(&s, h, 10), 0);
	sy_prefix_set_insert(&s, h, 6);
	SY_CHECK_INT(sy_prefix_set_match(&s, h, 10), 6);
	SY_CHECK_INT(sy_prefix_set_match(&s, other, 3), 2);
	SY_CHECK_INT(sy_prefix_set_blocks(&s), 6);
	SY_CHECK_INT(sy_prefix_set_bytes(&s), 64 * (8 + 8 + 4 + 4) + 128 * 4);
	sy_prefix_set_free(&s);
}

SY_TEST(set_evicts_the_oldest_at_capacity_keeping_prefixes)
{
	struct sy_prefix_set s;
	uint64_t a[4] = { 1, 2, 3, 4 }, b[4] = { 1, 2, 7, 8 },
	    c[4] = { 21, 22, 23, 24 };

	sy_prefix_set_init(&s, 8);
	sy_prefix_set_insert(&s, a, 4);
	sy_prefix_set_insert(&s, b, 4);		/* 1, 2 touched again */
	SY_CHECK_INT(sy_prefix_set_blocks(&s), 6);
	sy_prefix_set_insert(&s, c, 4);		/* evicts 4 then 3 */
	SY_CHECK_INT(sy_prefix_set_blocks(&s), 8);
	SY_CHECK_INT(sy_prefix_set_match(&s, a, 4), 2);
	SY_CHECK_INT(sy_prefix_set_match(&s, b, 4), 4);
	SY_CHECK_INT(sy_prefix_set_match(&s, c, 4), 4);
	sy_prefix_set_resize(&s, 4);		/* only c stays */
	SY_CHECK_INT(sy_prefix_set_match(&s, b, 4), 0);
	SY_CHECK_INT(sy_prefix_set_match(&s, c, 4), 4);
	sy_prefix_set_free(&s);
}

SY_TEST(set_grows_and_holds_many_blocks)
{
	struct sy_prefix_set s;
	uint64_t h[5000];
	size_t i;

	for (i = 0; i < 5000; i++)
		h[i] = 1000 + i * 7919;
	sy_prefix_set_init(&s, 3000);
	sy_prefix_set_insert(&s, h, 5000);	/* only its first 3000 */
	SY_CHECK_INT(sy_prefix_set_blocks(&s), 3000);
	SY_CHECK_INT(sy_prefix_set_match(&s, h, 5000), 3000);
	sy_prefix_set_free(&s);
}

SY_TEST(set_with_no_capacity_holds_nothing)
{
	struct sy_prefix_set s;
	uint64_t h[2] = { 5, 6 };

	sy_prefix_set_init(&s, 0);
	sy_prefix_set_insert(&s, h, 2);
	SY_CHECK_INT(sy_prefix_set_match(&s, h, 2), 0);
	sy_prefix_set_free(&s);
}

SY_TEST(evict_before_drops_what_is_older_than_an_insert)
{
	struct sy_prefix_set s;
	uint64_t a[3] = { 1, 2, 3 }, b[3] = { 4, 5, 6 }, c[2] = { 1, 9 };
	uint64_t stamp;

	sy_prefix_set_init(&s, 100);
	sy_prefix_set_insert(&s, a, 3);
	sy_prefix_set_insert(&s, b, 3);
	stamp = sy_prefix_set_insert(&s, c, 2);	/* touches 1 again */
	SY_CHECK_INT(sy_prefix_set_evict_before(&s, stamp), 5);
	SY_CHECK_INT(sy_prefix_set_match(&s, c, 2), 2);
	SY_CHECK_INT(sy_prefix_set_match(&s, a, 3), 1);
	SY_CHECK_INT(sy_prefix_set_match(&s, b, 3), 0);
	sy_prefix_set_free(&s);
}

SY_TEST(copy_keeps_the_most_recent_blocks_in_their_order)
{
	struct sy_prefix_set a, b;
	uint64_t x[3] = { 1, 2, 3 }, y[3] = { 4, 5, 6 }, more[1] = { 9 };

	sy_prefix_set_init(&a, 10);
	sy_prefix_set_insert(&a, x, 3);
	sy_prefix_set_insert(&a, y, 3);
	sy_prefix_set_init(&b, 4);
	sy_prefix_set_copy(&b, &a);
	SY_CHECK_INT(sy_prefix_set_blocks(&b), 4);
	SY_CHECK_INT(sy_prefix_set_match(&b, y, 3), 3);
	SY_CHECK_INT(sy_prefix_set_match(&b, x, 3), 1);
	/* The oldest copied goes first. */
	sy_prefix_set_insert(&b, more, 1);
	SY_CHECK_INT(sy_prefix_set_match(&b, x, 3), 0);
	SY_CHECK_INT(sy_prefix_set_match(&b, y, 3), 3);
	sy_prefix_set_free(&a);
	sy_prefix_set_free(&b);
}

/* ==== The policy ==== */

SY_TEST(prefix_aware_checks_its_parameters)
{
	static const char *const bad[] = {
		"{\"block_chars\": 8}", "\"block_chars\"",
		"{\"w_prefix\": -1}", "\"w_prefix\"",
		"{\"epsilon\": \"x\"}", "\"epsilon\"",
		"{\"share\": 1}", "\"share\" must be true or false",
		"{\"feedback_slack\": 2}", "\"feedback_slack\"",
		"{\"blocks\": 2}", "unknown parameter \"blocks\"",
		NULL
	};
	struct fleet f;
	json_t *j;
	char *err;
	size_t i;

	fleet_init(&f, 2, "{\"block_chars\": 64, \"w_kv\": 2, \"share\": false}");
	fleet_free(&f);
	for (i = 0; bad[i] != NULL; i += 2) {
		err = NULL;
		j = json_loads(bad[i], 0, NULL);
		SY_CHECK(f.p->create(j, &f.pool, &err) == NULL);
		SY_CHECK(err != NULL && strstr(err, bad[i + 1]) != NULL &&
		    strncmp(err, "prefix_aware", 12) == 0);
		if (err != NULL && strstr(err, bad[i + 1]) == NULL)
			printf("# %s\n", err);
		free(err);
		json_decref(j);
	}
}

SY_TEST(a_conversation_stays_on_the_endpoint_that_holds_it)
{
	struct fleet f;
	struct sy_req req;
	char *sys = text(1, 100), *turn1 = text(2, 40), *turn2 = text(3, 40);
	const char *m1[] = { "system", sys, "user", turn1, NULL };
	const char *m2[] = { "system", sys, "user", turn1, "assistant", "ok",
	    "user", turn2, NULL };
	const char *reason;
	int first, k;

	fleet_init(&f, 4, "{\"block_chars\": 64}");
	req_chat(&req, m1);
	first = pick(&f, &req, &reason);
	SY_CHECK_STR(reason, "home");
	req_done(&req);
	for (k = 0; k < 5; k++) {
		req_chat(&req, m2);
		SY_CHECK_INT(pick(&f, &req, &reason), first);
		SY_CHECK(strncmp(reason, "prefix:", 7) == 0);
		req_done(&req);
	}
	/* Another system prompt goes to its home, not first while busy. */
	atomic_store(&f.stats[first].in_flight, 1);
	m1[1] = turn2;
	req_chat(&req, m1);
	SY_CHECK(pick(&f, &req, &reason) != first);
	SY_CHECK_STR(reason, "home");
	req_done(&req);
	fleet_free(&f);
	free(sys);
	free(turn1);
	free(turn2);
}

SY_TEST(the_reason_counts_matched_and_total_blocks)
{
	struct fleet f;
	struct sy_req req;
	char *sys = text(1, 64), *more = text(2, 64);
	const char *m1[] = { "system", sys, NULL };
	const char *m2[] = { "system", sys, "user", more, NULL };
	const char *reason;
	char want[64];
	size_t a, b;

	fleet_init(&f, 2, "{\"block_chars\": 64}");
	req_chat(&req, m1);
	pick(&f, &req, NULL);
	req_done(&req);
	a = (strlen("system\n") + strlen(sys)) / 64;
	b = (strlen("system\n") + strlen(sys) + 2 + strlen("user\n") +
	    strlen(more) + 1) / 64;
	req_chat(&req, m2);
	pick(&f, &req, &reason);
	snprintf(want, sizeof want, "prefix:%zu/%zu", a, b);
	SY_CHECK_STR(reason, want);
	req_done(&req);
	fleet_free(&f);
	free(sys);
	free(more);
}

/* Places prompt seed on endpoint 0 of f (the others down meanwhile). */
static void
hold_on_first(struct fleet *f, unsigned seed)
{
	struct sy_req req;
	char *s = text(seed, 100);
	const char *m[] = { "user", s, NULL };
	size_t i;

	for (i = 1; i < f->pool.nendpoints; i++)
		atomic_store(&f->stats[i].unhealthy, 1);
	req_chat(&req, m);
	SY_CHECK_INT(pick(f, &req, NULL), 0);
	req_done(&req);
	for (i = 1; i < f->pool.nendpoints; i++)
		atomic_store(&f->stats[i].unhealthy, 0);
	free(s);
}

/* Where prompt seed goes now. */
static int
where(struct fleet *f, unsigned seed, const char **reason)
{
	struct sy_req req;
	char *s = text(seed, 100);
	const char *m[] = { "user", s, NULL };
	int i;

	static char words_buf[32];
	const char *r;

	req_chat(&req, m);
	i = pick(f, &req, &r);
	snprintf(words_buf, sizeof words_buf, "%s", r);
	if (reason != NULL)
		*reason = words_buf;
	req_done(&req);
	free(s);
	return i;
}

SY_TEST(w_inflight_weighs_the_prefix_against_requests_in_flight)
{
	struct fleet f;

	/* a holds the prompt and has 3 in flight, b is idle. */
	fleet_init(&f, 2, "{\"block_chars\": 64, \"epsilon\": 100}");
	hold_on_first(&f, 7);
	atomic_store(&f.stats[0].in_flight, 3);
	SY_CHECK_INT(where(&f, 7, NULL), 0);	/* 1 − 0.5 > 0 */
	fleet_free(&f);
	fleet_init(&f, 2, "{\"block_chars\": 64, \"epsilon\": 100, "
	    "\"w_inflight\": 2}");
	hold_on_first(&f, 7);
	atomic_store(&f.stats[0].in_flight, 3);
	SY_CHECK_INT(where(&f, 7, NULL), 1);	/* 1 − 2 < 0 */
	fleet_free(&f);
}

/* Sets a fresh scrape of endpoint i. */
static void
scraped(struct fleet *f, size_t i, long waiting, int kv_permille)
{
	atomic_store(&f->stats[i].scraped_waiting, waiting);
	atomic_store(&f->stats[i].scraped_running, 0);
	atomic_store(&f->stats[i].scraped_kv_permille, kv_permille);
	atomic_store(&f->stats[i].scraped_at_us, sy_now_us());
}

SY_TEST(w_queue_and_w_kv_weigh_the_scraped_load)
{
	struct fleet f;

	fleet_init(&f, 2, "{\"block_chars\": 64, \"w_queue\": 2}");
	hold_on_first(&f, 8);
	scraped(&f, 0, 4, 0);
	scraped(&f, 1, 0, 0);
	SY_CHECK_INT(where(&f, 8, NULL), 1);	/* 1 − 2 < 0 */
	fleet_free(&f);
	fleet_init(&f, 2, "{\"block_chars\": 64, \"w_kv\": 2}");
	hold_on_first(&f, 8);
	scraped(&f, 0, 0, 900);
	scraped(&f, 1, 0, 0);
	SY_CHECK_INT(where(&f, 8, NULL), 1);	/* 1 − 1.8 < 0 */
	fleet_free(&f);
	fleet_init(&f, 2, "{\"block_chars\": 64}");
	hold_on_first(&f, 8);
	scraped(&f, 0, 4, 900);
	scraped(&f, 1, 2, 0);
	SY_CHECK_INT(where(&f, 8, NULL), 0);	/* 1 − 0.5 − 0.45 > −0.25 */
	/* A stale scrape counts for nothing. */
	atomic_store(&f.stats[0].scraped_at_us, sy_now_us() - 10000000);
	scraped(&f, 0, 400, 1000);
	atomic_store(&f.stats[0].scraped_at_us, sy_now_us() - 10000000);
	SY_CHECK_INT(where(&f, 8, NULL), 0);
	fleet_free(&f);
}

SY_TEST(w_prefix_zero_routes_by_load_alone)
{
	struct fleet f;
	const char *reason;

	fleet_init(&f, 2, "{\"block_chars\": 64, \"w_prefix\": 0, "
	    "\"epsilon\": 100}");
	hold_on_first(&f, 9);
	atomic_store(&f.stats[0].in_flight, 1);
	SY_CHECK_INT(where(&f, 9, &reason), 1);
	fleet_free(&f);
}

SY_TEST(the_bounded_load_guard_skips_an_endpoint_above_its_share)
{
	struct fleet f;
	const char *reason;

	/* a holds it with 4 in flight of 4: above 1.25 × 5 / 2. */
	fleet_init(&f, 2, "{\"block_chars\": 64, \"w_inflight\": 0}");
	hold_on_first(&f, 10);
	atomic_store(&f.stats[0].in_flight, 4);
	SY_CHECK_INT(where(&f, 10, &reason), 1);
	SY_CHECK_STR(reason, "overflow");
	/* Within the bound it stays. */
	atomic_store(&f.stats[0].in_flight, 2);
	atomic_store(&f.stats[1].in_flight, 2);
	SY_CHECK_INT(where(&f, 10, &reason), 0);
	fleet_free(&f);
}

SY_TEST(the_bound_counts_the_load_other_instances_send)
{
	struct fleet f;
	const char *reason;

	/* Nothing in flight from here, but a runs 6 (another gateway's). */
	fleet_init(&f, 2, "{\"block_chars\": 64, \"w_queue\": 0, "
	    "\"w_kv\": 0}");
	hold_on_first(&f, 13);
	scraped(&f, 0, 0, 0);
	atomic_store(&f.stats[0].scraped_running, 6);
	scraped(&f, 1, 0, 0);
	SY_CHECK_INT(where(&f, 13, &reason), 1);
	SY_CHECK_STR(reason, "overflow");
	/* A stale scrape is not believed. */
	atomic_store(&f.stats[0].scraped_at_us, sy_now_us() - 10000000);
	SY_CHECK_INT(where(&f, 13, &reason), 0);
	fleet_free(&f);
}

SY_TEST(ties_go_to_the_fewest_in_flight)
{
	struct fleet f;

	fleet_init(&f, 3, "{\"block_chars\": 64, \"w_inflight\": 0, "
	    "\"epsilon\": 100}");
	atomic_store(&f.stats[0].in_flight, 2);
	atomic_store(&f.stats[1].in_flight, 1);
	atomic_store(&f.stats[2].in_flight, 3);
	SY_CHECK_INT(where(&f, 11, NULL), 1);
	fleet_free(&f);
}

SY_TEST(unusable_endpoints_are_never_picked)
{
	struct fleet f;
	const char *reason;

	fleet_init(&f, 2, "{\"block_chars\": 64}");
	hold_on_first(&f, 12);
	atomic_store(&f.stats[0].unhealthy, 1);
	SY_CHECK_INT(where(&f, 12, NULL), 1);
	atomic_store(&f.stats[1].unhealthy, 1);
	SY_CHECK_INT(where(&f, 12, &reason), -1);
	SY_CHECK_STR(reason, "all-busy");
	fleet_free(&f);
}

SY_TEST(a_prompt_shorter_than_a_block_goes_by_load)
{
	struct fleet f;
	struct sy_req req;
	const char *m[] = { "user", "hi", NULL };
	const char *reason;

	fleet_init(&f, 2, NULL);
	atomic_store(&f.stats[0].in_flight, 1);
	req_chat(&req, m);
	SY_CHECK_INT(pick(&f, &req, &reason), 1);
	SY_CHECK_STR(reason, "no-prefix");
	req_done(&req);
	fleet_free(&f);
}

/* Picks prompt seed, then tells the policy the engine reported cached tokens. */
static int
answer(struct fleet *f, unsigned seed, int64_t cached, uint64_t *predicted)
{
	struct sy_req req;
	char *s = text(seed, 100);
	const char *m[] = { "user", s, NULL };
	int i;

	req_chat(&req, m);
	i = pick(f, &req, NULL);
	*predicted = req.pick_note[1];
	req.usage.prompt_tokens = 300;
	req.usage.cached_tokens = cached < 0 ? (int64_t)req.pick_note[1] :
	    cached;
	f->p->answered(f->st, &f->eps[i], &req);
	req_done(&req);
	free(s);
	return i;
}

SY_TEST(a_report_short_of_the_prediction_evicts_the_older_blocks)
{
	struct fleet f;
	uint64_t predicted;
	const char *reason;

	fleet_init(&f, 2, "{\"block_chars\": 64, \"epsilon\": 100}");
	hold_on_first(&f, 20);
	hold_on_first(&f, 21);
	SY_CHECK_INT(answer(&f, 20, -1, &predicted), 0);
	SY_CHECK(predicted > 0);
	/* As reported: nothing changes. */
	SY_CHECK_INT(where(&f, 21, &reason), 0);
	SY_CHECK(strncmp(reason, "prefix:", 7) == 0);
	/* The engine restarted: it had none of 20; 21 is older, gone too. */
	SY_CHECK_INT(answer(&f, 20, 0, &predicted), 0);
	where(&f, 21, &reason);
	SY_CHECK_STR(reason, "home");
	/* 20 itself was computed again: the engine holds it now. */
	SY_CHECK_INT(where(&f, 20, &reason), 0);
	fleet_free(&f);
}

SY_TEST(a_report_within_the_slack_evicts_nothing)
{
	struct fleet f;
	uint64_t predicted;

	fleet_init(&f, 2, "{\"block_chars\": 64, \"epsilon\": 100}");
	hold_on_first(&f, 30);
	hold_on_first(&f, 31);
	answer(&f, 30, -1, &predicted);
	SY_CHECK_INT(answer(&f, 30, (int64_t)predicted * 6 / 10,
	    &predicted), 0);
	atomic_store(&f.stats[0].in_flight, 1);
	SY_CHECK_INT(where(&f, 31, NULL), 0);
	fleet_free(&f);
}

/* The matched blocks of the reason of prompt seed's second pick, on a. */
static int
matched_again(struct fleet *f, unsigned seed)
{
	const char *reason;
	int m = -1;

	hold_on_first(f, seed);
	for (size_t i = 1; i < f->pool.nendpoints; i++)
		atomic_store(&f->stats[i].in_flight, 5);
	SY_CHECK_INT(where(f, seed, &reason), 0);
	sscanf(reason, "prefix:%d/", &m);
	return m;
}

SY_TEST(an_endpoints_capacity_follows_its_scrape_unless_configured)
{
	struct fleet f;

	/* 64 tokens of capacity: 4 blocks of 64 bytes. */
	fleet_init(&f, 2, "{\"block_chars\": 64}");
	atomic_store(&f.stats[0].scraped_kv_tokens, 64);
	SY_CHECK_INT(matched_again(&f, 60), 4);
	fleet_free(&f);
	fleet_init(&f, 2, "{\"block_chars\": 64, \"cache_tokens\": 32}");
	SY_CHECK_INT(matched_again(&f, 60), 2);
	fleet_free(&f);
	/* A backend's cache_tokens wins over its scrape. */
	memset(&f, 0, sizeof f);
	f.eps[0].cache_tokens = 48;
	fleet_init_keep(&f, 2, "{\"block_chars\": 64}");
	atomic_store(&f.stats[0].scraped_kv_tokens, 64);
	SY_CHECK_INT(matched_again(&f, 60), 3);
	fleet_free(&f);
}

SY_TEST(a_prompt_nobody_holds_goes_to_its_home_on_every_instance)
{
	struct fleet f, g;
	int homes[4] = { 0 }, i, a;

	/* Two instances, each with its own index, agree on a new prompt's
	   home; 40 prompts spread over all four endpoints. */
	fleet_init(&f, 4, "{\"block_chars\": 64, \"epsilon\": 100}");
	fleet_init(&g, 4, "{\"block_chars\": 64, \"epsilon\": 100}");
	for (i = 0; i < 40; i++) {
		const char *reason;

		a = where(&f, 100 + (unsigned)i, &reason);
		SY_CHECK_STR(reason, "home");
		SY_CHECK_INT(where(&g, 100 + (unsigned)i, NULL), a);
		homes[a]++;
	}
	for (i = 0; i < 4; i++)
		SY_CHECK(homes[i] >= 4);
	fleet_free(&f);
	fleet_free(&g);
}

SY_TEST(a_home_above_its_load_bound_is_passed_over)
{
	struct fleet f;
	const char *reason;
	int a;

	fleet_init(&f, 2, "{\"block_chars\": 64}");
	a = where(&f, 200, NULL);
	fleet_free(&f);
	fleet_init(&f, 2, "{\"block_chars\": 64}");
	atomic_store(&f.stats[a].in_flight, 3);
	SY_CHECK_INT(where(&f, 200, &reason), 1 - a);
	SY_CHECK_STR(reason, "overflow");
	fleet_free(&f);
}

SY_TEST(a_reload_keeps_the_index_of_the_same_pool)
{
	struct fleet f, g, h;
	const char *reason;

	fleet_init(&f, 2, "{\"block_chars\": 64}");
	hold_on_first(&f, 300);
	/* The new snapshot's state, made while the old one lives. */
	fleet_init(&g, 2, "{\"block_chars\": 64, \"w_kv\": 1}");
	fleet_init(&h, 2, "{\"block_chars\": 128}");
	fleet_free(&f);
	atomic_store(&g.stats[0].in_flight, 1);
	SY_CHECK_INT(where(&g, 300, &reason), 0);
	SY_CHECK(strncmp(reason, "prefix:", 7) == 0);
	/* Other blocks: nothing to keep. */
	where(&h, 300, &reason);
	SY_CHECK_STR(reason, "home");
	fleet_free(&g);
	fleet_free(&h);
}

int
main(void)
{
	SY_RUN(same_prefix_gives_the_same_chain);
	SY_RUN(one_changed_byte_diverges_at_its_block_and_after);
	SY_RUN(a_block_stands_for_its_whole_prefix);
	SY_RUN(a_partial_last_block_is_not_hashed_and_max_bounds_the_chain);
	SY_RUN(the_prompt_is_fed_in_canonical_order);
	SY_RUN(set_matches_the_longest_held_prefix);
	SY_RUN(set_evicts_the_oldest_at_capacity_keeping_prefixes);
	SY_RUN(set_grows_and_holds_many_blocks);
	SY_RUN(set_with_no_capacity_holds_nothing);
	SY_RUN(evict_before_drops_what_is_older_than_an_insert);
	SY_RUN(copy_keeps_the_most_recent_blocks_in_their_order);
	SY_RUN(prefix_aware_checks_its_parameters);
	SY_RUN(a_conversation_stays_on_the_endpoint_that_holds_it);
	SY_RUN(the_reason_counts_matched_and_total_blocks);
	SY_RUN(w_inflight_weighs_the_prefix_against_requests_in_flight);
	SY_RUN(w_queue_and_w_kv_weigh_the_scraped_load);
	SY_RUN(w_prefix_zero_routes_by_load_alone);
	SY_RUN(the_bounded_load_guard_skips_an_endpoint_above_its_share);
	SY_RUN(the_bound_counts_the_load_other_instances_send);
	SY_RUN(ties_go_to_the_fewest_in_flight);
	SY_RUN(unusable_endpoints_are_never_picked);
	SY_RUN(a_prompt_shorter_than_a_block_goes_by_load);
	SY_RUN(a_report_short_of_the_prediction_evicts_the_older_blocks);
	SY_RUN(a_report_within_the_slack_evicts_nothing);
	SY_RUN(an_endpoints_capacity_follows_its_scrape_unless_configured);
	SY_RUN(a_prompt_nobody_holds_goes_to_its_home_on_every_instance);
	SY_RUN(a_home_above_its_load_bound_is_passed_over);
	SY_RUN(a_reload_keeps_the_index_of_the_same_pool);
	return sy_test_done();
}
