/* Unit tests of the batching policies: when window and adaptive let a batch go, and why. */
#include <string.h>

#include <jansson.h>

#include "policy.h"
#include "sy_test.h"

static const struct sy_batch_bounds bounds = {
	.max_batch_size = 8,
	.max_batch_tokens = 100,
	.max_wait_us = 2000
};

/* A policy's state from params (JSON text), or NULL with *err. */
static void *
make(const char *name, const char *params, size_t nendpoints, char **err)
{
	const struct sy_batch_policy *p = sy_batch_policy_find(name);
	json_t *obj = json_loads(params, 0, NULL);
	void *st;

	*err = NULL;
	st = p->create(obj, &bounds, nendpoints, err);
	json_decref(obj);
	return st;
}

/* The decision of policy name (state st) on a batch. */
static enum sy_flush
decide(const char *name, void *st, unsigned inputs, uint64_t tokens,
    uint64_t age_us, unsigned in_flight, uint64_t *due)
{
	struct sy_batch_view v = { inputs, tokens, age_us, in_flight };

	return sy_batch_policy_find(name)->decide(st, &v, due);
}

static void
destroy(const char *name, void *st)
{
	sy_batch_policy_find(name)->destroy(st);
}

SY_TEST(window_holds_a_small_young_batch_until_max_wait)
{
	char *err;
	void *st = make("window", "{}", 1, &err);
	uint64_t due = 0;

	SY_CHECK_INT(decide("window", st, 3, 10, 500, 0, &due), SY_FLUSH_HOLD);
	SY_CHECK_INT(due, 2000);
	destroy("window", st);
}

SY_TEST(window_flushes_at_max_batch_size)
{
	char *err;
	void *st = make("window", "{}", 1, &err);
	uint64_t due;

	SY_CHECK_INT(decide("window", st, 8, 10, 0, 0, &due), SY_FLUSH_SIZE);
	SY_CHECK_INT(decide("window", st, 7, 10, 0, 0, &due), SY_FLUSH_HOLD);
	destroy("window", st);
}

SY_TEST(window_flushes_at_max_batch_tokens)
{
	char *err;
	void *st = make("window", "{}", 1, &err);
	uint64_t due;

	SY_CHECK_INT(decide("window", st, 2, 100, 0, 0, &due), SY_FLUSH_TOKENS);
	SY_CHECK_INT(decide("window", st, 2, 99, 0, 0, &due), SY_FLUSH_HOLD);
	destroy("window", st);
}

SY_TEST(window_flushes_once_the_first_input_waited_max_wait)
{
	char *err;
	void *st = make("window", "{}", 1, &err);
	uint64_t due;

	SY_CHECK_INT(decide("window", st, 1, 1, 2000, 0, &due), SY_FLUSH_WAIT);
	SY_CHECK_INT(decide("window", st, 1, 1, 1999, 0, &due), SY_FLUSH_HOLD);
	destroy("window", st);
}

SY_TEST(window_ignores_batches_in_flight)
{
	char *err;
	void *st = make("window", "{}", 1, &err);
	uint64_t due;

	SY_CHECK_INT(decide("window", st, 8, 1, 0, 50, &due), SY_FLUSH_SIZE);
	destroy("window", st);
}

SY_TEST(window_takes_no_parameters)
{
	char *err;

	SY_CHECK(make("window", "{\"max_in_flight\": 2}", 1, &err) == NULL);
	SY_CHECK(err != NULL && strstr(err, "max_in_flight") != NULL);
	free(err);
}

SY_TEST(adaptive_sends_at_once_when_idle_and_nothing_is_known)
{
	char *err;
	void *st = make("adaptive", "{}", 1, &err);
	uint64_t due;

	SY_CHECK_INT(decide("adaptive", st, 1, 1, 0, 0, &due), SY_FLUSH_READY);
	destroy("adaptive", st);
}

SY_TEST(adaptive_sends_at_once_when_arrivals_are_sparse)
{
	const struct sy_batch_policy *p = sy_batch_policy_find("adaptive");
	char *err;
	void *st = make("adaptive", "{}", 1, &err);
	uint64_t due;

	/* One input every 100 ms, a batch takes 20 ms: nothing to wait for. */
	p->arrive(st, 1, 1000000);
	p->arrive(st, 1, 1100000);
	p->observe(st, 1, 20000);
	SY_CHECK_INT(decide("adaptive", st, 1, 1, 0, 0, &due), SY_FLUSH_READY);
	destroy("adaptive", st);
}

SY_TEST(adaptive_holds_while_the_backend_is_busy)
{
	char *err;
	void *st = make("adaptive", "{}", 1, &err);
	uint64_t due;

	SY_CHECK_INT(decide("adaptive", st, 3, 3, 500, 1, &due), SY_FLUSH_HOLD);
	SY_CHECK_INT(due, 2000);
	/* ... but never past max_wait, nor beyond a full batch. */
	SY_CHECK_INT(decide("adaptive", st, 3, 3, 2000, 1, &due), SY_FLUSH_WAIT);
	SY_CHECK_INT(decide("adaptive", st, 8, 8, 0, 1, &due), SY_FLUSH_SIZE);
	destroy("adaptive", st);
}

SY_TEST(adaptive_max_in_flight_defaults_to_the_route_endpoints)
{
	char *err;
	void *st = make("adaptive", "{}", 3, &err);
	uint64_t due;

	SY_CHECK_INT(decide("adaptive", st, 1, 1, 0, 2, &due), SY_FLUSH_READY);
	SY_CHECK_INT(decide("adaptive", st, 1, 1, 0, 3, &due), SY_FLUSH_HOLD);
	destroy("adaptive", st);
	st = make("adaptive", "{\"max_in_flight\": 1}", 3, &err);
	SY_CHECK_INT(decide("adaptive", st, 1, 1, 0, 1, &due), SY_FLUSH_HOLD);
	destroy("adaptive", st);
}

SY_TEST(adaptive_under_load_waits_for_the_arrivals_of_one_service_time)
{
	const struct sy_batch_policy *p = sy_batch_policy_find("adaptive");
	char *err;
	void *st = make("adaptive", "{}", 1, &err);
	uint64_t due, t;

	/* An input every 250 µs; a batch takes 1 ms: batches of 4 keep pace. */
	for (t = 1000000; t <= 1010000; t += 250)
		p->arrive(st, 1, t);
	p->observe(st, 4, 1000);
	SY_CHECK_INT(decide("adaptive", st, 1, 1, 0, 0, &due), SY_FLUSH_HOLD);
	SY_CHECK(due >= 700 && due <= 800);
	SY_CHECK_INT(decide("adaptive", st, 4, 4, 0, 0, &due), SY_FLUSH_READY);
	/* Held no longer than the time the rest takes to arrive. */
	SY_CHECK_INT(decide("adaptive", st, 2, 2, 600, 0, &due), SY_FLUSH_READY);
	destroy("adaptive", st);
}

SY_TEST(adaptive_rejects_a_bad_max_in_flight)
{
	char *err;

	SY_CHECK(make("adaptive", "{\"max_in_flight\": 0}", 1, &err) == NULL);
	SY_CHECK(err != NULL && strstr(err, "max_in_flight") != NULL);
	free(err);
}

SY_TEST(flush_reasons_have_words)
{
	SY_CHECK_STR(sy_flush_word(SY_FLUSH_SIZE), "size");
	SY_CHECK_STR(sy_flush_word(SY_FLUSH_TOKENS), "tokens");
	SY_CHECK_STR(sy_flush_word(SY_FLUSH_WAIT), "wait");
	SY_CHECK_STR(sy_flush_word(SY_FLUSH_READY), "ready");
}

SY_TEST(unknown_batching_policy_is_not_found)
{
	char names[128];

	SY_CHECK(sy_batch_policy_find("nope") == NULL);
	sy_batch_policy_names(names, sizeof names);
	SY_CHECK_STR(names, "window, adaptive");
}

int
main(void)
{
	SY_RUN(window_holds_a_small_young_batch_until_max_wait);
	SY_RUN(window_flushes_at_max_batch_size);
	SY_RUN(window_flushes_at_max_batch_tokens);
	SY_RUN(window_flushes_once_the_first_input_waited_max_wait);
	SY_RUN(window_ignores_batches_in_flight);
	SY_RUN(window_takes_no_parameters);
	SY_RUN(adaptive_sends_at_once_when_idle_and_nothing_is_known);
	SY_RUN(adaptive_sends_at_once_when_arrivals_are_sparse);
	SY_RUN(adaptive_holds_while_the_backend_is_busy);
	SY_RUN(adaptive_max_in_flight_defaults_to_the_route_endpoints);
	SY_RUN(adaptive_under_load_waits_for_the_arrivals_of_one_service_time);
	SY_RUN(adaptive_rejects_a_bad_max_in_flight);
	SY_RUN(flush_reasons_have_words);
	SY_RUN(unknown_batching_policy_is_not_found);
	return sy_test_done();
}
