/* Unit tests of the lab's statistics and report: quantiles, spreads over repeats, costs per token, energy, the verdict, the files. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "exp.h"
#include "sy_test.h"

/* Whether a and b agree to 1e-9. */
static int
near(double a, double b)
{
	return fabs(a - b) <= 1e-9 * (fabs(a) + fabs(b) + 1);
}

/* An experiment of two variants (a, b) at two rates (5, 10). */
static void
experiment(struct sy_exp *e, const char *dir)
{
	char path[512], *err = NULL;
	FILE *f;

	snprintf(path, sizeof path, "%s/exp.json", dir);
	f = fopen(path, "w");
	fputs("{\"fleet\": {\"replicas\": [{\"count\": 2, \"cost_per_hour\": "
	    "3.6}]}, \"workload\": {}, \"variants\": [{\"name\": \"a\"}, "
	    "{\"name\": \"b\"}], \"loads\": [{\"rate\": 5}, {\"rate\": 10}], "
	    "\"repeats\": 2, \"slo\": {\"latency_ms\": 1000}}", f);
	fclose(f);
	if (sy_exp_read(e, path, &err) < 0) {
		printf("# %s\n", err);
		abort();
	}
}

/* A run record of variant vi at load li. */
static json_t *
run(size_t vi, size_t li, int rep, double rps, double usd, double p99)
{
	return json_pack("{s:s,s:i,s:s,s:i,s:i,s:s,s:f,s:f,s:f,s:f,"
	    "s:{s:f,s:f,s:f,s:f},s:f}", "variant", vi ? "b" : "a",
	    "variant_index", (int)vi, "load", li ? "rate 10" : "rate 5",
	    "load_index", (int)li, "repeat", rep, "mode", "rate", "offered",
	    li ? 10.0 : 5.0, "rps", rps, "goodput_rps", rps, "usd_per_mtok",
	    usd, "latency_ms", "mean", p99 / 2, "p50", p99 / 2, "p90",
	    p99 * 0.9, "p99", p99, "error_ratio", 0.0);
}

/* A fresh directory under /tmp. */
static char *
tmpdir(void)
{
	char *d = strdup("/tmp/sy-test-lab-XXXXXX");

	if (d == NULL || mkdtemp(d) == NULL)
		abort();
	return d;
}

/* The contents of dir/name, or NULL. */
static json_t *
read_results(const char *dir)
{
	char path[512];

	snprintf(path, sizeof path, "%s/results.json", dir);
	return json_load_file(path, 0, NULL);
}

/* Removes the report files and dir. */
static void
cleanup(const char *dir)
{
	static const char *const names[] = { "exp.json", "results.json",
	    "results.csv", "report.md", "report.html" };
	char path[512];
	size_t i;

	for (i = 0; i < 5; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		unlink(path);
	}
	rmdir(dir);
}

SY_TEST(quantiles_interpolate_between_ranks)
{
	double v[] = { 10, 20, 30, 40 };

	SY_CHECK(sy_exp_quantile(v, 4, 0) == 10);
	SY_CHECK(sy_exp_quantile(v, 4, 1) == 40);
	SY_CHECK(near(sy_exp_quantile(v, 4, 0.5), 25));
	SY_CHECK(near(sy_exp_quantile(v, 4, 0.99), 39.7));
	SY_CHECK(sy_exp_quantile(v, 1, 0.5) == 10);
	SY_CHECK(sy_exp_quantile(v, 0, 0.5) == 0);
}

SY_TEST(ranges_overlap_when_they_share_a_point)
{
	SY_CHECK(sy_exp_overlap(1, 3, 2, 4));
	SY_CHECK(sy_exp_overlap(1, 3, 3, 4));
	SY_CHECK(sy_exp_overlap(2, 2, 1, 3));
	SY_CHECK(!sy_exp_overlap(1, 2, 2.5, 4));
	SY_CHECK(!sy_exp_overlap(5, 6, 1, 4.9));
}

SY_TEST(hourly_cost_per_million_tokens)
{
	/* $3.6/h for 10 s is $0.01; over 1e5 tokens, $0.1 per 1M. */
	SY_CHECK(near(sy_exp_usd_per_mtok(3.6, 10, 1e5), 0.1));
	/* An idle fleet costs as much: fewer tokens, dearer ones. */
	SY_CHECK(near(sy_exp_usd_per_mtok(3.6, 10, 1e4), 1.0));
	SY_CHECK(sy_exp_usd_per_mtok(3.6, 10, 0) == -1);
}

SY_TEST(energy_counts_the_idle_share)
{
	SY_CHECK(near(sy_exp_joules(1000, 0.3, 1, 10), 10000));
	SY_CHECK(near(sy_exp_joules(1000, 0.3, 0, 10), 3000));
	SY_CHECK(near(sy_exp_joules(1000, 0.3, 0.5, 10), 6500));
}

SY_TEST(summary_cells_are_the_mean_and_spread_of_the_repeats)
{
	struct sy_exp e;
	char *dir = tmpdir();
	json_t *runs = json_array(), *res, *cell, *sum;
	size_t i;

	experiment(&e, dir);
	json_array_append_new(runs, run(0, 0, 0, 4, 0.20, 300));
	json_array_append_new(runs, run(0, 0, 1, 6, 0.30, 500));
	json_array_append_new(runs, run(1, 0, 0, 5, 0.10, 200));
	json_array_append_new(runs, run(1, 0, 1, 5, 0.12, 400));
	json_array_append_new(runs, run(0, 1, 0, 9, 0.10, 900));
	json_array_append_new(runs, run(0, 1, 1, 9, 0.10, 900));
	json_array_append_new(runs, run(1, 1, 0, 9, 0.05, 1500));
	json_array_append_new(runs, run(1, 1, 1, 9, 0.05, 1700));
	SY_CHECK(sy_exp_report(&e, runs, 1, dir) == 0);
	res = read_results(dir);
	SY_CHECK(res != NULL);
	sum = json_object_get(res, "summary");
	SY_CHECK(json_array_size(sum) == 4);
	json_array_foreach(sum, i, cell) {
		json_t *rps = json_object_get(json_object_get(cell, "figures"),
		    "rps");

		if (strcmp(json_string_value(json_object_get(cell, "variant")),
		    "a") != 0 || strcmp(json_string_value(json_object_get(cell,
		    "load")), "rate 5") != 0)
			continue;
		SY_CHECK(near(json_number_value(json_object_get(rps, "mean")),
		    5));
		SY_CHECK(json_number_value(json_object_get(rps, "min")) == 4);
		SY_CHECK(json_number_value(json_object_get(rps, "max")) == 6);
		SY_CHECK(json_integer_value(json_object_get(rps, "n")) == 2);
	}
	json_decref(res);
	json_decref(runs);
	sy_exp_free(&e);
	cleanup(dir);
	free(dir);
}

SY_TEST(the_best_variant_meets_the_slo_at_every_load)
{
	struct sy_exp e;
	char *dir = tmpdir(), path[512], md[8192];
	json_t *runs = json_array(), *res, *v;
	FILE *f;
	size_t n;

	experiment(&e, dir);
	/* b is cheaper but misses the 1000 ms SLO at rate 10. */
	json_array_append_new(runs, run(0, 0, 0, 5, 0.20, 300));
	json_array_append_new(runs, run(1, 0, 0, 5, 0.10, 200));
	json_array_append_new(runs, run(0, 1, 0, 9, 0.10, 900));
	json_array_append_new(runs, run(1, 1, 0, 9, 0.05, 1500));
	SY_CHECK(sy_exp_report(&e, runs, 1, dir) == 0);
	res = read_results(dir);
	v = json_object_get(res, "verdict");
	SY_CHECK_STR(json_string_value(json_object_get(v, "best")), "a");
	json_decref(res);

	/* Within the SLO, b's lower cost wins: saving (0.15 - 0.075). */
	json_array_clear(runs);
	json_array_append_new(runs, run(0, 0, 0, 5, 0.20, 300));
	json_array_append_new(runs, run(1, 0, 0, 5, 0.10, 200));
	json_array_append_new(runs, run(0, 1, 0, 9, 0.10, 900));
	json_array_append_new(runs, run(1, 1, 0, 9, 0.05, 950));
	SY_CHECK(sy_exp_report(&e, runs, 1, dir) == 0);
	res = read_results(dir);
	v = json_object_get(res, "verdict");
	SY_CHECK_STR(json_string_value(json_object_get(v, "best")), "b");
	SY_CHECK(near(json_number_value(json_object_get(v,
	    "saving_usd_per_mtok")), 0.075));
	SY_CHECK(near(json_number_value(json_object_get(v, "saving_ratio")),
	    0.5));
	json_decref(res);
	snprintf(path, sizeof path, "%s/report.md", dir);
	f = fopen(path, "r");
	n = f != NULL ? fread(md, 1, sizeof md - 1, f) : 0;
	md[n] = '\0';
	if (f != NULL)
		fclose(f);
	SY_CHECK(strstr(md, "Best variant under the SLO: **b**: $0.0750 less "
	    "per 1M tokens than the baseline a (50.0% saved).") != NULL);
	json_decref(runs);
	sy_exp_free(&e);
	cleanup(dir);
	free(dir);
}

SY_TEST(overlapping_spreads_are_reported)
{
	struct sy_exp e;
	char *dir = tmpdir(), path[512], md[16384];
	json_t *runs = json_array();
	FILE *f;
	size_t n;

	experiment(&e, dir);
	json_array_append_new(runs, run(0, 0, 0, 4, 0.20, 300));
	json_array_append_new(runs, run(0, 0, 1, 6, 0.30, 500));
	json_array_append_new(runs, run(1, 0, 0, 5, 0.10, 400));
	json_array_append_new(runs, run(1, 0, 1, 7, 0.12, 450));
	SY_CHECK(sy_exp_report(&e, runs, 0, dir) == 0);
	snprintf(path, sizeof path, "%s/report.md", dir);
	f = fopen(path, "r");
	n = f != NULL ? fread(md, 1, sizeof md - 1, f) : 0;
	md[n] = '\0';
	if (f != NULL)
		fclose(f);
	SY_CHECK(strstr(md, "- rate 5, rps: the spreads of a and b overlap "
	    "(4–6, 5–7)") != NULL);
	SY_CHECK(strstr(md, "- rate 5, latency_ms.p99: the spreads of a and b "
	    "overlap (300–500, 400–450)") != NULL);
	SY_CHECK(strstr(md, "usd_per_mtok: the spreads") == NULL);
	SY_CHECK(strstr(md, "| a | 5.00 (4.00–6.00) |") != NULL);
	SY_CHECK(strstr(md, "Stopped early") != NULL);
	json_decref(runs);
	sy_exp_free(&e);
	cleanup(dir);
	free(dir);
}

int
main(void)
{
	SY_RUN(quantiles_interpolate_between_ranks);
	SY_RUN(ranges_overlap_when_they_share_a_point);
	SY_RUN(hourly_cost_per_million_tokens);
	SY_RUN(energy_counts_the_idle_share);
	SY_RUN(summary_cells_are_the_mean_and_spread_of_the_repeats);
	SY_RUN(the_best_variant_meets_the_slo_at_every_load);
	SY_RUN(overlapping_spreads_are_reported);
	return sy_test_done();
}
