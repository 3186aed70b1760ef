/* Unit tests of the log-linear latency histogram. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "hist.h"
#include "sy_test.h"

static struct sy_hist *
hist_new(void)
{
	struct sy_hist *h = malloc(sizeof *h);

	sy_hist_init(h);
	return h;
}

/* |got - want| ≤ tol × want. */
static int
near(double got, double want, double tol)
{
	double d = got > want ? got - want : want - got;

	return d <= tol * want;
}

SY_TEST(values_below_16_are_exact)
{
	struct sy_hist *h = hist_new();
	uint64_t v;

	for (v = 0; v < 16; v++)
		sy_hist_add(h, v);
	for (v = 0; v < 16; v++)
		SY_CHECK_INT(sy_hist_count_le(h, v), v + 1);
	free(h);
	for (v = 0; v < 16; v++) {
		h = hist_new();
		sy_hist_add(h, v);
		sy_hist_add(h, v);
		SY_CHECK_INT(sy_hist_quantile(h, 0.0), v);
		SY_CHECK_INT(sy_hist_quantile(h, 0.5), v);
		SY_CHECK_INT(sy_hist_quantile(h, 1.0), v);
		free(h);
	}
}

SY_TEST(relative_error_is_at_most_one_sixteenth)
{
	struct sy_hist *h;
	uint64_t v, got;
	int bad = 0;
	double q;

	for (v = 16; v < (1ULL << 34); v = v + v / 7 + 1) {
		h = hist_new();
		sy_hist_add(h, v);
		for (q = 0; q <= 1.0; q += 0.5) {
			got = sy_hist_quantile(h, q);
			if (!near((double)got, (double)v, 1.0 / 16)) {
				printf("# value %llu, q %.1f: got %llu\n",
				    (unsigned long long)v, q,
				    (unsigned long long)got);
				bad++;
			}
		}
		free(h);
	}
	SY_CHECK_INT(bad, 0);
}

SY_TEST(uniform_distribution_quantiles)
{
	struct sy_hist *h = hist_new();
	uint64_t v;

	for (v = 1; v <= 10000; v++)
		sy_hist_add(h, v);
	SY_CHECK(near((double)sy_hist_quantile(h, 0.50), 5000, 0.07));
	SY_CHECK(near((double)sy_hist_quantile(h, 0.90), 9000, 0.07));
	SY_CHECK(near((double)sy_hist_quantile(h, 0.99), 9900, 0.07));
	SY_CHECK(near((double)sy_hist_quantile(h, 0.01), 100, 0.07));
	SY_CHECK_INT(h->count, 10000);
	SY_CHECK_INT(h->sum_us, 50005000);
	free(h);
}

SY_TEST(quantile_interpolates_inside_a_bucket)
{
	struct sy_hist *h = hist_new();
	uint64_t v, got;

	for (v = 1024; v < 1088; v++)		/* exactly one bucket */
		sy_hist_add(h, v);
	got = sy_hist_quantile(h, 0.5);
	SY_CHECK(got >= 1054 && got <= 1057);
	got = sy_hist_quantile(h, 0.25);
	SY_CHECK(got >= 1038 && got <= 1042);
	free(h);
}

SY_TEST(bimodal_distribution_quantiles)
{
	struct sy_hist *h = hist_new();
	int i;

	for (i = 0; i < 900; i++)
		sy_hist_add(h, 2000);
	for (i = 0; i < 100; i++)
		sy_hist_add(h, 800000);
	SY_CHECK(near((double)sy_hist_quantile(h, 0.50), 2000, 0.0625));
	SY_CHECK(near((double)sy_hist_quantile(h, 0.89), 2000, 0.0625));
	SY_CHECK(near((double)sy_hist_quantile(h, 0.95), 800000, 0.0625));
	SY_CHECK(near((double)sy_hist_quantile(h, 0.99), 800000, 0.0625));
	free(h);
}

SY_TEST(count_le_counts_whole_buckets_below_the_bound)
{
	struct sy_hist *h = hist_new();
	int i;

	for (i = 0; i < 10; i++)
		sy_hist_add(h, 100);
	for (i = 0; i < 5; i++)
		sy_hist_add(h, 10000);
	sy_hist_add(h, 5000000);
	SY_CHECK_INT(sy_hist_count_le(h, 50), 0);
	SY_CHECK_INT(sy_hist_count_le(h, 1000), 10);
	SY_CHECK_INT(sy_hist_count_le(h, 100000), 15);
	SY_CHECK_INT(sy_hist_count_le(h, 4000000), 15);
	SY_CHECK_INT(sy_hist_count_le(h, 10000000), 16);
	SY_CHECK_INT(sy_hist_count_le(h, UINT64_MAX), 16);
	free(h);
}

SY_TEST(count_le_never_counts_values_above_the_bound)
{
	struct sy_hist *h = hist_new();
	uint64_t le;

	sy_hist_add(h, 10001);
	for (le = 16; le < 10001; le++)
		if (sy_hist_count_le(h, le) != 0)
			break;
	SY_CHECK_INT(le, 10001);
	SY_CHECK_INT(sy_hist_count_le(h, 10239), 1);	/* its bucket's top */
	free(h);
}

SY_TEST(merge_equals_adding_everything_to_one)
{
	struct sy_hist *a = hist_new(), *b = hist_new(), *all = hist_new();
	struct sy_hist *m = hist_new();
	uint64_t v;

	for (v = 1; v <= 3000; v++) {
		sy_hist_add(v % 3 ? a : b, v * 37);
		sy_hist_add(all, v * 37);
	}
	sy_hist_merge(m, a);
	sy_hist_merge(m, b);
	SY_CHECK_INT(m->count, 3000);
	SY_CHECK_INT(m->sum_us, all->sum_us);
	SY_CHECK_INT(sy_hist_quantile(m, 0.5), sy_hist_quantile(all, 0.5));
	SY_CHECK_INT(sy_hist_quantile(m, 0.99), sy_hist_quantile(all, 0.99));
	SY_CHECK_INT(sy_hist_count_le(m, 50000), sy_hist_count_le(all, 50000));
	free(a);
	free(b);
	free(all);
	free(m);
}

SY_TEST(empty_histogram_answers_zero)
{
	struct sy_hist *h = hist_new(), *m = hist_new();

	SY_CHECK_INT(sy_hist_quantile(h, 0.5), 0);
	SY_CHECK_INT(sy_hist_quantile(h, 1.0), 0);
	SY_CHECK_INT(sy_hist_count_le(h, UINT64_MAX), 0);
	sy_hist_merge(m, h);
	SY_CHECK_INT(m->count, 0);
	SY_CHECK_INT(m->sum_us, 0);
	free(h);
	free(m);
}

SY_TEST(huge_values_land_in_the_last_bucket)
{
	struct sy_hist *h = hist_new();

	sy_hist_add(h, UINT64_MAX);
	sy_hist_add(h, 1ULL << 50);
	SY_CHECK_INT(h->count, 2);
	SY_CHECK(h->sum_us == UINT64_MAX);
	SY_CHECK(sy_hist_quantile(h, 0.5) >= (1ULL << 34));
	SY_CHECK(sy_hist_quantile(h, 1.0) >= (1ULL << 34));
	SY_CHECK_INT(sy_hist_count_le(h, 3600ULL * 1000000), 0);
	SY_CHECK_INT(sy_hist_count_le(h, UINT64_MAX), 2);
	free(h);
}

SY_TEST(quantile_outside_0_1_or_nan_is_clamped)
{
	struct sy_hist *h = hist_new();

	sy_hist_add(h, 3);
	sy_hist_add(h, 9);
	SY_CHECK_INT(sy_hist_quantile(h, -1.0), 3);
	SY_CHECK_INT(sy_hist_quantile(h, 2.0), 9);
	SY_CHECK_INT(sy_hist_quantile(h, NAN), 3);
	free(h);
}

int
main(void)
{
	SY_RUN(values_below_16_are_exact);
	SY_RUN(relative_error_is_at_most_one_sixteenth);
	SY_RUN(uniform_distribution_quantiles);
	SY_RUN(quantile_interpolates_inside_a_bucket);
	SY_RUN(bimodal_distribution_quantiles);
	SY_RUN(count_le_counts_whole_buckets_below_the_bound);
	SY_RUN(count_le_never_counts_values_above_the_bound);
	SY_RUN(merge_equals_adding_everything_to_one);
	SY_RUN(empty_histogram_answers_zero);
	SY_RUN(huge_values_land_in_the_last_bucket);
	SY_RUN(quantile_outside_0_1_or_nan_is_clamped);
	return sy_test_done();
}
