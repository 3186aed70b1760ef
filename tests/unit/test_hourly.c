/* Unit tests of the self-hosted cost model: intervals spread over tokens, idle time, weights, the cached discount, sums that add up. */
#include <math.h>
#include <pthread.h>

#include "endstats.h"
#include "hourly.h"
#include "record.h"
#include "util.h"
#include "sy_test.h"

#define S 1000000ULL		/* one second in µs */

static const struct sy_hourly_rate rate36 = {
	.usd_per_hour = 3.6, .watts = 1000, .idle_share = 0.25,
	.prompt_weight = 1, .completion_weight = 1, .cached_weight = 0.1
};

/* Whether a and b agree to 1e-12 of their size. */
static int
near(double a, double b)
{
	return fabs(a - b) <= 1e-12 * (fabs(a) + fabs(b) + 1);
}

/* Endpoint i's sums. */
static struct sy_hourly_sums
ep_sums(const struct sy_hourly *h, size_t i)
{
	struct sy_hourly_sums s;

	sy_hourly_endpoint_sums(h, i, &s);
	return s;
}

/* Share i's sums. */
static struct sy_hourly_sums
share_sums(const struct sy_hourly *h, size_t i)
{
	const char *e, *r, *m;
	struct sy_hourly_sums s;

	sy_hourly_share_sums(h, i, &e, &r, &m, &s);
	return s;
}

SY_TEST(units_weigh_prompt_cached_and_completion_tokens)
{
	struct sy_hourly_rate r = rate36;
	struct sy_usage u = { .prompt_tokens = 100, .completion_tokens = 20,
	    .cached_tokens = 60 };

	SY_CHECK(near(sy_hourly_units(&r, &u), 40 + 6 + 20));
	r.completion_weight = 4;
	SY_CHECK(near(sy_hourly_units(&r, &u), 40 + 6 + 80));
	r.cached_weight = 0;
	SY_CHECK(near(sy_hourly_units(&r, &u), 40 + 80));
	u.prompt_tokens = u.completion_tokens = u.cached_tokens = -1;
	SY_CHECK(sy_hourly_units(&r, &u) == 0);
}

SY_TEST(cached_tokens_beyond_the_prompt_count_as_the_prompt)
{
	struct sy_usage u = { .prompt_tokens = 10, .completion_tokens = 0,
	    .cached_tokens = 50 };

	SY_CHECK(near(sy_hourly_units(&rate36, &u), 1));
}

SY_TEST(an_interval_cost_is_spread_over_its_shares_by_units)
{
	struct sy_hourly *h = sy_hourly_new();
	struct sy_hourly_sums e, a, b;

	sy_hourly_endpoint(h, "gpu0", &rate36, 0);
	sy_hourly_report(h, "gpu0", "chat", "m", 300);
	sy_hourly_report(h, "gpu0", "bulk", "m", 100);
	sy_hourly_report_busy(h, "gpu0", 10);
	sy_hourly_close(h, 10 * S);
	e = ep_sums(h, 0);
	a = share_sums(h, 0);
	b = share_sums(h, 1);
	/* $3.6/h for 10 s is $0.01; 1 kW for 10 s is 10 kJ. */
	SY_CHECK(near(e.usd, 0.01));
	SY_CHECK(near(e.joules, 10000));
	SY_CHECK(near(a.usd, 0.0075) && near(b.usd, 0.0025));
	SY_CHECK(near(a.joules, 7500) && near(b.joules, 2500));
	SY_CHECK(a.units == 300 && b.units == 100 && e.units == 400);
	SY_CHECK(near(e.busy_s, 10) && e.idle_usd == 0);
	SY_CHECK(near(sy_hourly_usd_per_unit(h, "gpu0"), 0.01 / 400));
	sy_hourly_free(h);
}

SY_TEST(an_idle_interval_costs_the_endpoint_and_no_share)
{
	struct sy_hourly *h = sy_hourly_new();
	struct sy_hourly_sums e, a;

	sy_hourly_endpoint(h, "gpu0", &rate36, 0);
	sy_hourly_report(h, "gpu0", "chat", "m", 50);
	sy_hourly_report_busy(h, "gpu0", 10);
	sy_hourly_close(h, 10 * S);
	/* The counters stay: nothing served in the next 20 s. */
	sy_hourly_report(h, "gpu0", "chat", "m", 50);
	sy_hourly_report_busy(h, "gpu0", 10);
	sy_hourly_close(h, 30 * S);
	e = ep_sums(h, 0);
	a = share_sums(h, 0);
	SY_CHECK(near(e.usd, 0.03));
	SY_CHECK(near(e.idle_usd, 0.02));
	SY_CHECK(near(a.usd, 0.01));
	SY_CHECK(near(e.usd, a.usd + e.idle_usd));
	/* Idle power: a quarter of 1 kW for 20 s. */
	SY_CHECK(near(e.idle_joules, 5000));
	SY_CHECK(near(e.joules, 10000 + 5000));
	SY_CHECK(near(e.busy_s, 10) && near(e.elapsed_s, 30));
	/* The rate is still the last busy interval's. */
	SY_CHECK(near(sy_hourly_usd_per_unit(h, "gpu0"), 0.01 / 50));
	sy_hourly_free(h);
}

SY_TEST(energy_follows_the_busy_share_of_an_interval)
{
	struct sy_hourly *h = sy_hourly_new();
	struct sy_hourly_sums e;

	sy_hourly_endpoint(h, "gpu0", &rate36, 0);
	sy_hourly_report(h, "gpu0", "chat", "m", 10);
	sy_hourly_report_busy(h, "gpu0", 1.5);	/* summed before a close: 4 s */
	sy_hourly_report_busy(h, "gpu0", 2.5);
	sy_hourly_close(h, 10 * S);
	e = ep_sums(h, 0);
	/* 1 kW x 10 s x (0.25 + 0.75 x 0.4). */
	SY_CHECK(near(e.joules, 5500));
	SY_CHECK(near(e.busy_s, 4) && near(e.elapsed_s, 10));
	/* Busy time is at most the interval; the cost does not change. */
	sy_hourly_report(h, "gpu0", "chat", "m", 20);
	sy_hourly_report_busy(h, "gpu0", 30);
	sy_hourly_close(h, 20 * S);
	e = ep_sums(h, 0);
	SY_CHECK(near(e.busy_s, 14));
	SY_CHECK(near(e.joules, 5500 + 10000));
	SY_CHECK(near(e.usd, 0.02));
	sy_hourly_free(h);
}

SY_TEST(reports_of_several_workers_are_summed)
{
	struct sy_hourly *h = sy_hourly_new();
	struct sy_hourly_sums a;

	sy_hourly_endpoint(h, "gpu0", &rate36, 0);
	sy_hourly_report(h, "gpu0", "chat", "m", 30);	/* worker 0 */
	sy_hourly_report(h, "gpu0", "chat", "m", 70);	/* worker 1 */
	sy_hourly_close(h, S);
	sy_hourly_report(h, "gpu0", "chat", "m", 40);
	sy_hourly_report(h, "gpu0", "chat", "m", 90);
	sy_hourly_close(h, 2 * S);
	a = share_sums(h, 0);
	SY_CHECK(sy_hourly_nshares(h) == 1);
	SY_CHECK(a.units == 130);
	SY_CHECK(near(a.usd, 0.002));
	SY_CHECK(near(sy_hourly_usd_per_unit(h, "gpu0"), 0.001 / 30));
	sy_hourly_free(h);
}

SY_TEST(shares_and_idle_add_up_to_the_endpoint_exactly)
{
	struct sy_hourly *h = sy_hourly_new();
	struct sy_hourly_sums e, s;
	double cum[3] = { 0, 0, 0 };
	int64_t nusd = 0, mj = 0;
	static const char *const routes[3] = { "a", "b", "c" };
	size_t i, k;
	unsigned seed = 7;

	sy_hourly_endpoint(h, "gpu0", &rate36, 0);
	for (k = 1; k <= 200; k++) {
		for (i = 0; i < 3; i++) {
			seed = seed * 1103515245u + 12345u;
			if (seed % 4 != 0 && k % 10 != 0)
				cum[i] += (double)(seed % 1000) / 7;
			sy_hourly_report(h, "gpu0", routes[i], "m", cum[i]);
		}
		sy_hourly_report_busy(h, "gpu0", (double)k * 0.7);
		sy_hourly_close(h, k * 1234567ULL);
	}
	e = ep_sums(h, 0);
	for (i = 0; i < sy_hourly_nshares(h); i++) {
		s = share_sums(h, i);
		nusd += s.nano_usd;
		mj += s.millijoules;
	}
	SY_CHECK(nusd + e.idle_nano_usd == e.nano_usd);
	SY_CHECK(mj + e.idle_millijoules == e.millijoules);
	SY_CHECK(e.idle_nano_usd > 0);
	/* Rounded once, not once per interval. */
	SY_CHECK(fabs(e.usd - 3.6 * 200 * 1.234567 / 3600) <= 0.5e-9);
	sy_hourly_free(h);
}

SY_TEST(each_endpoint_has_its_own_rate_and_interval)
{
	struct sy_hourly *h = sy_hourly_new();
	struct sy_hourly_rate cheap = rate36;
	struct sy_hourly_sums a, b;

	cheap.usd_per_hour = 0.36;
	cheap.watts = 0;
	sy_hourly_endpoint(h, "big", &rate36, 0);
	sy_hourly_endpoint(h, "small", &cheap, 5 * S);
	sy_hourly_report(h, "big", "r", "big", 10);
	sy_hourly_report(h, "small", "r", "small", 10);
	sy_hourly_close(h, 10 * S);
	a = ep_sums(h, 0);
	b = ep_sums(h, 1);
	SY_CHECK(near(a.usd, 0.01));
	SY_CHECK(near(b.usd, 0.0005));
	SY_CHECK(b.joules == 0);
	SY_CHECK(sy_hourly_nendpoints(h) == 2);
	/* A report for an endpoint never declared is not charged. */
	sy_hourly_report(h, "nobody", "r", "m", 10);
	SY_CHECK(sy_hourly_nshares(h) == 2);
	SY_CHECK(sy_hourly_usd_per_unit(h, "nobody") == -1);
	sy_hourly_free(h);
}

SY_TEST(a_new_endpoint_has_no_rate_until_it_serves)
{
	struct sy_hourly *h = sy_hourly_new();

	sy_hourly_endpoint(h, "gpu0", &rate36, 0);
	SY_CHECK(sy_hourly_usd_per_unit(h, "gpu0") == -1);
	sy_hourly_close(h, S);
	SY_CHECK(sy_hourly_usd_per_unit(h, "gpu0") == -1);
	sy_hourly_free(h);
}

SY_TEST(busy_time_is_the_union_over_every_worker)
{
	struct sy_endpoint_stats st;

	sy_endstats_init(&st, "gpu0");
	/* Worker A from 0 to 5 s, worker B from 2 to 8 s: 8 s, not 11. */
	SY_CHECK(sy_endstats_enter(&st, 0) == 0);
	SY_CHECK(sy_endstats_enter(&st, 2 * S) == 1);
	SY_CHECK(sy_endstats_busy_us(&st, 4 * S) == 4 * S);
	sy_endstats_leave(&st, 5 * S);
	sy_endstats_leave(&st, 8 * S);
	SY_CHECK(sy_endstats_busy_us(&st, 9 * S) == 8 * S);
	/* Idle from 8 to 10 s, then one second more. */
	sy_endstats_enter(&st, 10 * S);
	sy_endstats_leave(&st, 11 * S);
	SY_CHECK(sy_endstats_busy_us(&st, 20 * S) == 9 * S);
	SY_CHECK(atomic_load(&st.in_flight) == 0);
}

/* One thread's requests on st, one after another, on the real clock. */
static void *
worker_requests(void *arg)
{
	struct sy_endpoint_stats *st = arg;
	int i;

	for (i = 0; i < 100000; i++) {
		sy_endstats_enter(st, sy_now_us());
		sy_endstats_leave(st, sy_now_us());
	}
	return NULL;
}

SY_TEST(busy_time_of_concurrent_workers_is_at_most_the_wall_time)
{
	struct sy_endpoint_stats st;
	pthread_t a, b;
	uint64_t t0, t1;

	/* Summed per worker it would come near twice the wall time. */
	sy_endstats_init(&st, "gpu0");
	t0 = sy_now_us();
	pthread_create(&a, NULL, worker_requests, &st);
	pthread_create(&b, NULL, worker_requests, &st);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	t1 = sy_now_us();
	SY_CHECK(atomic_load(&st.in_flight) == 0);
	SY_CHECK(sy_endstats_busy_us(&st, t1) <= t1 - t0);
}

int
main(void)
{
	SY_RUN(units_weigh_prompt_cached_and_completion_tokens);
	SY_RUN(cached_tokens_beyond_the_prompt_count_as_the_prompt);
	SY_RUN(an_interval_cost_is_spread_over_its_shares_by_units);
	SY_RUN(an_idle_interval_costs_the_endpoint_and_no_share);
	SY_RUN(energy_follows_the_busy_share_of_an_interval);
	SY_RUN(reports_of_several_workers_are_summed);
	SY_RUN(shares_and_idle_add_up_to_the_endpoint_exactly);
	SY_RUN(each_endpoint_has_its_own_rate_and_interval);
	SY_RUN(a_new_endpoint_has_no_rate_until_it_serves);
	SY_RUN(busy_time_is_the_union_over_every_worker);
	SY_RUN(busy_time_of_concurrent_workers_is_at_most_the_wall_time);
	return sy_test_done();
}
