/* sy-load experiment: the report of an experiment: statistics over repeats, results.json, results.csv, report.md and report.html with its plots. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "exp.h"

/* ==== Statistics ==== */

double
sy_exp_quantile(const double *sorted, size_t n, double q)
{
	double pos;
	size_t i;

	if (n == 0)
		return 0;
	if (q <= 0)
		return sorted[0];
	if (q >= 1)
		return sorted[n - 1];
	pos = q * (double)(n - 1);
	i = (size_t)pos;
	if (i + 1 >= n)
		return sorted[n - 1];
	return sorted[i] + (sorted[i + 1] - sorted[i]) * (pos - (double)i);
}

int
sy_exp_overlap(double a0, double a1, double b0, double b1)
{
	return a0 <= b1 && b0 <= a1;
}

double
sy_exp_usd_per_mtok(double usd_per_hour, double seconds, double tokens)
{
	if (!(tokens > 0))
		return -1;
	return usd_per_hour * seconds / 3600 / tokens * 1e6;
}

double
sy_exp_joules(double watts, double idle_share, double util, double seconds)
{
	return watts * (idle_share + (1 - idle_share) * util) * seconds;
}

/* ==== Columns ==== */

/* A figure of a run: its key (a.b for nested), its heading, its format. */
struct column {
	const char *key;
	const char *head;
	int decimals;
};

static const struct column columns[] = {
	{ "rps", "req/s", 2 },
	{ "output_tps", "output tok/s", 0 },
	{ "goodput_rps", "goodput req/s", 2 },
	{ "ttft_ms.p50", "TTFT p50 ms", 0 },
	{ "ttft_ms.p90", "TTFT p90 ms", 0 },
	{ "ttft_ms.p99", "TTFT p99 ms", 0 },
	{ "itl_ms.p50", "ITL p50 ms", 1 },
	{ "itl_ms.p90", "ITL p90 ms", 1 },
	{ "itl_ms.p99", "ITL p99 ms", 1 },
	{ "latency_ms.p50", "latency p50 ms", 0 },
	{ "latency_ms.p90", "latency p90 ms", 0 },
	{ "latency_ms.p99", "latency p99 ms", 0 },
	{ "gateway_cache_hit_ratio", "gateway cache hits", 3 },
	{ "prefix_cache_hit_ratio", "prefix cache hits", 3 },
	{ "batch_size_mean", "batch size", 1 },
	{ "replica_max_min", "replica max/min", 2 },
	{ "error_ratio", "errors", 3 },
	{ "usd_per_mtok", "$/1M tokens", 4 },
	{ "tokens_per_joule", "tokens/J", 2 },
};
#define NCOLUMNS (sizeof columns / sizeof columns[0])

/* The number at key (a.b) of run, or NAN when absent or null. */
static double
figure(const json_t *run, const char *key)
{
	const char *dot = strchr(key, '.');
	json_t *v;
	char head[64];

	if (dot != NULL) {
		snprintf(head, sizeof head, "%.*s", (int)(dot - key), key);
		v = json_object_get(json_object_get(run, head), dot + 1);
	} else
		v = json_object_get(run, key);
	return json_is_number(v) ? json_number_value(v) : NAN;
}

/* One cell: a figure over the repeats of a variant at a load. */
struct cell {
	double mean, min, max;
	size_t n;
};

/* The cell of column col for variant vi at load li. */
static struct cell
cell_of(const json_t *runs, size_t vi, size_t li, const char *key)
{
	struct cell c = { NAN, INFINITY, -INFINITY, 0 };
	double sum = 0, v;
	json_t *run;
	size_t i;

	json_array_foreach((json_t *)runs, i, run) {
		if ((size_t)json_integer_value(json_object_get(run,
		    "variant_index")) != vi ||
		    (size_t)json_integer_value(json_object_get(run,
		    "load_index")) != li)
			continue;
		v = figure(run, key);
		if (isnan(v))
			continue;
		sum += v;
		c.min = v < c.min ? v : c.min;
		c.max = v > c.max ? v : c.max;
		c.n++;
	}
	if (c.n > 0)
		c.mean = sum / (double)c.n;
	return c;
}

/* The first run of variant vi at load li, or NULL. */
static json_t *
first_run(const json_t *runs, size_t vi, size_t li)
{
	json_t *run;
	size_t i;

	json_array_foreach((json_t *)runs, i, run)
		if ((size_t)json_integer_value(json_object_get(run,
		    "variant_index")) == vi &&
		    (size_t)json_integer_value(json_object_get(run,
		    "load_index")) == li)
			return run;
	return NULL;
}

/* A cell as text: "mean" or "mean (min–max)" with several repeats. */
static void
cell_text(char *buf, size_t len, const struct cell *c, int decimals)
{
	if (c->n == 0)
		snprintf(buf, len, "-");
	else if (c->n == 1 || c->min == c->max)
		snprintf(buf, len, "%.*f", decimals, c->mean);
	else
		snprintf(buf, len, "%.*f (%.*f–%.*f)", decimals, c->mean,
		    decimals, c->min, decimals, c->max);
}

/* ==== The verdict ==== */

int
sy_exp_meets_slo(const struct sy_exp *e, const json_t *runs, size_t vi,
    size_t li)
{
	struct cell c;

	c = cell_of(runs, vi, li, "rps");
	if (c.n == 0)
		return 0;
	c = cell_of(runs, vi, li, "error_ratio");
	if (c.n > 0 && c.mean > 0.01)
		return 0;
	c = cell_of(runs, vi, li, "ttft_ms.p99");
	if (e->slo_ttft_ms > 0 && c.n > 0 && c.mean > e->slo_ttft_ms)
		return 0;
	c = cell_of(runs, vi, li, "itl_ms.p99");
	if (e->slo_itl_ms > 0 && c.n > 0 && c.mean > e->slo_itl_ms)
		return 0;
	c = cell_of(runs, vi, li, "latency_ms.p99");
	if (e->slo_latency_ms > 0 && c.n > 0 && c.mean > e->slo_latency_ms)
		return 0;
	return 1;
}

/*
 * The verdict: per variant, whether it meets the SLO at every load and its
 * mean $/1M tokens over the loads; the best variant under the SLO (lowest
 * cost, else highest goodput when no cost is known) and its saving against
 * the first.
 */
static json_t *
verdict(const struct sy_exp *e, const json_t *runs)
{
	size_t nv = json_array_size(e->variants), vi, li;
	json_t *per = json_array(), *out;
	double best_score = NAN, score, goodput, base_cost = NAN;
	double best_cost = NAN, maxload;
	long best = -1;
	int by_cost = !e->sweep, ok;
	struct cell c;

	for (vi = 0; vi < nv && by_cost; vi++)
		for (li = 0; li < e->nloads; li++)
			if (cell_of(runs, vi, li, "usd_per_mtok").n == 0)
				by_cost = 0;
	for (vi = 0; vi < nv; vi++) {
		double cost = 0, gp = 0;
		size_t ncost = 0;

		ok = 1;
		maxload = -1;
		for (li = 0; li < e->nloads; li++) {
			if (sy_exp_meets_slo(e, runs, vi, li)) {
				if (e->loads[li].value > maxload)
					maxload = e->loads[li].value;
			} else
				ok = 0;
			c = cell_of(runs, vi, li, "usd_per_mtok");
			if (c.n > 0)
				cost += c.mean, ncost++;
			c = cell_of(runs, vi, li, "goodput_rps");
			if (c.n > 0)
				gp += c.mean;
		}
		score = ncost > 0 ? cost / (double)ncost : NAN;
		goodput = gp / (double)e->nloads;
		if (vi == 0)
			base_cost = score;
		json_array_append_new(per, json_pack("{s:O,s:b,s:o,s:f,s:o}",
		    "variant", json_object_get(json_array_get(e->variants, vi),
		    "name"), "meets_slo", ok, "usd_per_mtok", isnan(score) ?
		    json_null() : json_real(score), "goodput_rps", goodput,
		    "max_load_met", maxload >= 0 ? json_real(maxload) :
		    json_null()));
		/* A sweep ranks by the highest load within the SLO. */
		if (e->sweep ? maxload < 0 || (best >= 0 &&
		    maxload <= best_score) : !ok)
			continue;
		if (e->sweep || (by_cost ? (best < 0 || score < best_score) :
		    (best < 0 || goodput > best_score))) {
			best = (long)vi;
			best_score = e->sweep ? maxload : by_cost ? score :
			    goodput;
			best_cost = score;
		}
	}
	out = json_pack("{s:o,s:s}", "variants", per, "ranked_by", e->sweep ?
	    "max_load_met" : by_cost ? "usd_per_mtok" : "goodput_rps");
	if (best >= 0) {
		json_object_set(out, "best", json_object_get(json_array_get(
		    e->variants, (size_t)best), "name"));
		json_object_set_new(out, "saving_usd_per_mtok", by_cost &&
		    !isnan(base_cost) ? json_real(base_cost - best_cost) :
		    json_null());
		json_object_set_new(out, "saving_ratio", by_cost &&
		    base_cost > 0 ? json_real((base_cost - best_cost) /
		    base_cost) : json_null());
	} else
		json_object_set_new(out, "best", json_null());
	return out;
}

/* The verdict as one sentence of text. */
static void
verdict_text(char **out, size_t *len, const json_t *v, const char *base)
{
	json_t *best = json_object_get(v, "best");
	json_t *s = json_object_get(v, "saving_usd_per_mtok");

	if (!json_is_string(best)) {
		sy_str_add(out, len, "No variant meets the SLO at %s load.",
		    strcmp(json_string_value(json_object_get(v, "ranked_by")),
		    "max_load_met") == 0 ? "any" : "every");
		return;
	}
	if (strcmp(json_string_value(json_object_get(v, "ranked_by")),
	    "max_load_met") == 0) {
		json_t *per = json_object_get(v, "variants"), *x;
		size_t i;

		sy_str_add(out, len, "Highest load within the SLO: **%s**. "
		    "Each variant's:", json_string_value(best));
		json_array_foreach(per, i, x) {
			json_t *m = json_object_get(x, "max_load_met");

			sy_str_add(out, len, "%s %s ", i ? "," : "",
			    json_string_value(json_object_get(x, "variant")));
			if (json_is_number(m))
				sy_str_add(out, len, "%g", json_number_value(m));
			else
				sy_str_add(out, len, "none");
		}
		sy_str_add(out, len, ".");
		return;
	}
	sy_str_add(out, len, "Best variant under the SLO: **%s**",
	    json_string_value(best));
	if (strcmp(json_string_value(best), base) == 0)
		sy_str_add(out, len, " (the baseline).");
	else if (json_is_number(s))
		sy_str_add(out, len, ": $%.4f less per 1M tokens than the "
		    "baseline %s (%.1f%% saved).", json_number_value(s), base,
		    100 * json_number_value(json_object_get(v,
		    "saving_ratio")));
	else
		sy_str_add(out, len, ", by goodput (no cost figures).");
}

/*
 * Sentences saying which variants' spreads overlap the baseline's at each
 * load on req/s, latency p99 and $/1M tokens (with repeats only).
 */
static void
overlaps(const struct sy_exp *e, const json_t *runs, char **out,
    size_t *len)
{
	static const char *const keys[] = { "rps", "latency_ms.p99",
	    "usd_per_mtok" };
	size_t nv = json_array_size(e->variants), vi, li, k;
	struct cell a, b;

	if (e->repeats < 2)
		return;
	for (li = 0; li < e->nloads; li++)
		for (vi = 1; vi < nv; vi++)
			for (k = 0; k < 3; k++) {
				a = cell_of(runs, 0, li, keys[k]);
				b = cell_of(runs, vi, li, keys[k]);
				if (a.n < 2 || b.n < 2 || !sy_exp_overlap(
				    a.min, a.max, b.min, b.max))
					continue;
				sy_str_add(out, len, "- %s, %s: the spreads of "
				    "%s and %s overlap (%g–%g, %g–%g): not a "
				    "clear difference.\n", e->loads[li].label,
				    keys[k], json_string_value(json_object_get(
				    json_array_get(e->variants, 0), "name")),
				    json_string_value(json_object_get(
				    json_array_get(e->variants, vi), "name")),
				    a.min, a.max, b.min, b.max);
			}
}

/* ==== Files ==== */

/* Writes len bytes of s to dir/name; 0 or -1 (printed). */
static int
write_file(const char *dir, const char *name, const char *s, size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	if ((f = fopen(path, "w")) == NULL || fwrite(s, 1, len, f) != len ||
	    fclose(f) != 0) {
		fprintf(stderr, "sy-load: %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* The variant's name. */
static const char *
vname(const struct sy_exp *e, size_t vi)
{
	return json_string_value(json_object_get(json_array_get(e->variants,
	    vi), "name"));
}

/* results.csv: one row per run, one column per figure. */
static int
write_csv(const struct sy_exp *e, const json_t *runs, const char *dir)
{
	char *s = NULL, num[64];
	size_t len = 0, i, k;
	json_t *run;
	double v;
	int r;

	sy_str_add(&s, &len, "variant,load,mode,offered,repeat,seconds,"
	    "requests_ok,requests_failed,requests_dropped");
	for (k = 0; k < NCOLUMNS; k++) {
		sy_str_add(&s, &len, ",");
		for (const char *p = columns[k].key; *p; p++)
			sy_str_add(&s, &len, "%c", *p == '.' ? '_' : *p);
	}
	sy_str_add(&s, &len, ",usd_per_mtok_hourly,usd_per_mtok_prices,"
	    "fleet_usd,price_usd,joules\n");
	json_array_foreach((json_t *)runs, i, run) {
		static const char *const tail[] = { "usd_per_mtok_hourly",
		    "usd_per_mtok_prices", "usd_per_mtok_gateway", "fleet_usd",
		    "price_usd", "gateway_hourly_usd", "joules" };

		sy_str_add(&s, &len, "%s,%s,%s,%g,%lld,%.3f,%.0f,%.0f,%.0f",
		    json_string_value(json_object_get(run, "variant")),
		    json_string_value(json_object_get(run, "load")),
		    json_string_value(json_object_get(run, "mode")),
		    figure(run, "offered"), (long long)json_integer_value(
		    json_object_get(run, "repeat")), figure(run, "seconds"),
		    figure(run, "requests_ok"), figure(run, "requests_failed"),
		    figure(run, "requests_dropped"));
		for (k = 0; k < NCOLUMNS + 7; k++) {
			v = figure(run, k < NCOLUMNS ? columns[k].key :
			    tail[k - NCOLUMNS]);
			if (isnan(v))
				num[0] = '\0';
			else
				snprintf(num, sizeof num, "%.6g", v);
			sy_str_add(&s, &len, ",%s", num);
		}
		sy_str_add(&s, &len, "\n");
	}
	(void)e;
	r = write_file(dir, "results.csv", s, len);
	free(s);
	return r;
}

/* The table of one load: a row per variant, a column per figure. */
static void
table_md(const struct sy_exp *e, const json_t *runs, size_t li, char **out,
    size_t *len)
{
	size_t vi, k;
	struct cell c;
	char buf[96];

	sy_str_add(out, len, "\n### %s\n\n| variant |", e->loads[li].label);
	for (k = 0; k < NCOLUMNS; k++)
		sy_str_add(out, len, " %s |", columns[k].head);
	sy_str_add(out, len, " SLO |\n|---|");
	for (k = 0; k <= NCOLUMNS; k++)
		sy_str_add(out, len, "---:|");
	sy_str_add(out, len, "\n");
	for (vi = 0; vi < json_array_size(e->variants); vi++) {
		sy_str_add(out, len, "| %s |", vname(e, vi));
		for (k = 0; k < NCOLUMNS; k++) {
			c = cell_of(runs, vi, li, columns[k].key);
			cell_text(buf, sizeof buf, &c, columns[k].decimals);
			sy_str_add(out, len, " %s |", buf);
		}
		sy_str_add(out, len, " %s |\n", sy_exp_meets_slo(e, runs, vi, li) ?
		    "met" : "missed");
	}
}

/* Per model (from the access log) of each variant at each load. */
static void
models_md(const struct sy_exp *e, const json_t *runs, char **out,
    size_t *len)
{
	size_t vi, li;
	const char *m;
	json_t *run, *st;

	sy_str_add(out, len, "\n## Per model\n\nFrom the gateway's access "
	    "log (first repeat).\n\n| load | variant | model | requests | "
	    "errors | TTFT p50 ms | TTFT p99 ms | ITL p50 ms | TPOT p50 ms | "
	    "latency p99 ms | prompt tokens | completion tokens | "
	    "cost $ (prices) |\n"
	    "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
	for (li = 0; li < e->nloads; li++)
		for (vi = 0; vi < json_array_size(e->variants); vi++) {
			if ((run = first_run(runs, vi, li)) == NULL)
				continue;
			json_object_foreach(json_object_get(run, "models"), m,
			    st) {
				static const char *const keys[] = {
				    "requests", "errors", "ttft_ms.p50",
				    "ttft_ms.p99", "itl_ms.p50", "tpot_ms.p50",
				    "latency_ms.p99", "prompt_tokens",
				    "completion_tokens", "cost_usd" };
				struct cell c;
				char buf[64];
				size_t k;

				sy_str_add(out, len, "| %s | %s | %s |",
				    e->loads[li].label, vname(e, vi), m);
				for (k = 0; k < 10; k++) {
					c.mean = c.min = c.max = figure(st,
					    keys[k]);
					c.n = !isnan(c.mean);
					cell_text(buf, sizeof buf, &c,
					    k == 9 ? 4 : k == 4 || k == 5 ?
					    1 : 0);
					sy_str_add(out, len, " %s |", buf);
				}
				sy_str_add(out, len, "\n");
			}
		}
}

/* The report's text as Markdown. */
static char *
report_md(const struct sy_exp *e, const json_t *runs, const json_t *v,
    int complete, size_t *len)
{
	char *s = NULL;
	size_t li, i;

	*len = 0;
	sy_str_add(&s, len, "# %s\n\nExperiment `%s` (%s).%s\n\n", e->title,
	    e->name, e->path, complete ? "" : " **Stopped early: the "
	    "tables hold the runs done.**");
	if (e->published != NULL)
		sy_str_add(&s, len, "Published: %s\n\n", e->published);
	sy_str_add(&s, len, "Fleet: %zu replicas (", e->nreps);
	for (i = 0; i < e->nreps; i++)
		sy_str_add(&s, len, "%s%s $%g/h", i ? ", " : "",
		    e->reps[i].name, e->reps[i].cost_per_hour);
	sy_str_add(&s, len, "). Each run: %g s warm-up, %g s measured%s, "
	    "%u repeat%s; a fresh fleet and gateway per run. $/1M tokens "
	    "from the %s.", e->warmup_s, e->duration_s, e->requests > 0 ?
	    " (or the request count)" : "", e->repeats, e->repeats > 1 ?
	    "s (cells: mean (min–max))" : "", e->cost_basis ==
	    SY_EXP_COST_PRICES ? "gateway's prices (access log cost_usd)" :
	    e->cost_basis == SY_EXP_COST_GATEWAY ? "gateway's own "
	    "self-hosted accounting (/admin/stats hourly)" :
	    "replicas' cost per hour over the measured time");
	sy_str_add(&s, len, " SLO:");
	if (e->slo_ttft_ms > 0)
		sy_str_add(&s, len, " TTFT p99 ≤ %g ms;", e->slo_ttft_ms);
	if (e->slo_itl_ms > 0)
		sy_str_add(&s, len, " ITL p99 ≤ %g ms;", e->slo_itl_ms);
	if (e->slo_latency_ms > 0)
		sy_str_add(&s, len, " latency p99 ≤ %g ms;",
		    e->slo_latency_ms);
	sy_str_add(&s, len, " errors ≤ 1%%.\n\n## Results\n");
	for (li = 0; li < e->nloads; li++)
		table_md(e, runs, li, &s, len);
	sy_str_add(&s, len, "\n");
	overlaps(e, runs, &s, len);
	models_md(e, runs, &s, len);
	sy_str_add(&s, len, "\n## Verdict\n\n");
	verdict_text(&s, len, v, vname(e, 0));
	sy_str_add(&s, len, "\n");
	return s;
}

/* Appends Markdown inline text to HTML: **bold** and `code`. */
static void
inline_html(char **out, size_t *len, const char *s, size_t n)
{
	int bold = 0, code = 0;
	char one[2] = { 0, 0 };
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] == '*' && i + 1 < n && s[i + 1] == '*') {
			sy_str_add(out, len, bold ? "</b>" : "<b>");
			bold = !bold;
			i++;
		} else if (s[i] == '`') {
			sy_str_add(out, len, code ? "</code>" : "<code>");
			code = !code;
		} else {
			one[0] = s[i];
			sy_str_html(out, len, one);
		}
	}
}

/* The Markdown of report_md as HTML: headings, tables, lists, text. */
static void
md_html(char **out, size_t *len, const char *md)
{
	const char *p = md, *nl, *c;
	int in_table = 0, in_list = 0, head_row = 0;
	size_t n;

	for (; *p != '\0'; p = *nl ? nl + 1 : nl) {
		nl = p + strcspn(p, "\n");
		n = (size_t)(nl - p);
		if (in_table && (n == 0 || *p != '|')) {
			sy_str_add(out, len, "</table>\n");
			in_table = 0;
		}
		if (in_list && (n < 2 || strncmp(p, "- ", 2) != 0)) {
			sy_str_add(out, len, "</ul>\n");
			in_list = 0;
		}
		if (n == 0)
			continue;
		if (*p == '#') {
			int level = (int)strspn(p, "#");

			sy_str_add(out, len, "<h%d>", level);
			inline_html(out, len, p + level + 1, n - (size_t)level -
			    1);
			sy_str_add(out, len, "</h%d>\n", level);
		} else if (*p == '|') {
			if (strncmp(p, "|---", 4) == 0)
				continue;
			if (!in_table) {
				sy_str_add(out, len, "<table>\n");
				in_table = 1;
				head_row = 1;
			}
			sy_str_add(out, len, "<tr>");
			for (c = p + 1; c < nl; ) {
				const char *e = memchr(c, '|', (size_t)(nl -
				    c));

				if (e == NULL)
					break;
				sy_str_add(out, len, head_row ? "<th>" :
				    "<td>");
				{
					const char *a = c + 1, *z = e;

					while (a < z && *a == ' ')
						a++;
					while (z > a && z[-1] == ' ')
						z--;
					inline_html(out, len, a,
					    (size_t)(z - a));
				}
				sy_str_add(out, len, head_row ? "</th>" :
				    "</td>");
				c = e + 1;
			}
			sy_str_add(out, len, "</tr>\n");
			head_row = 0;
		} else if (strncmp(p, "- ", 2) == 0) {
			if (!in_list) {
				sy_str_add(out, len, "<ul>\n");
				in_list = 1;
			}
			sy_str_add(out, len, "<li>");
			inline_html(out, len, p + 2, n - 2);
			sy_str_add(out, len, "</li>\n");
		} else {
			sy_str_add(out, len, "<p>");
			inline_html(out, len, p, n);
			sy_str_add(out, len, "</p>\n");
		}
	}
	if (in_table)
		sy_str_add(out, len, "</table>\n");
	if (in_list)
		sy_str_add(out, len, "</ul>\n");
}

/* The series of a plot: one per variant, up to per points each. */
struct plot {
	struct sy_svg_series *s;
	double *x, *y;
	size_t nv, per;
};

/* Allocates p's series for e's variants, named after them. */
static void
plot_init(struct plot *p, const struct sy_exp *e, size_t per)
{
	size_t vi;

	p->nv = json_array_size(e->variants);
	p->per = per;
	p->s = calloc(p->nv, sizeof *p->s);
	p->x = calloc(p->nv * per + 1, sizeof *p->x);
	p->y = calloc(p->nv * per + 1, sizeof *p->y);
	if (p->s == NULL || p->x == NULL || p->y == NULL)
		abort();
	for (vi = 0; vi < p->nv; vi++) {
		p->s[vi].name = vname(e, vi);
		p->s[vi].x = p->x + vi * per;
		p->s[vi].y = p->y + vi * per;
	}
}

/* Appends p as a line chart in a <figure>, and frees it. */
static void
plot_lines(struct plot *p, const char *title, const char *xlabel,
    const char *ylabel, char **out, size_t *len)
{
	sy_str_add(out, len, "<figure>\n");
	sy_svg_lines(out, len, title, xlabel, ylabel, p->s, p->nv);
	sy_str_add(out, len, "</figure>\n");
	free(p->s);
	free(p->x);
	free(p->y);
}

/* Whether e has both rates and concurrencies among its loads. */
static int
mixed_loads(const struct sy_exp *e)
{
	size_t li;

	for (li = 1; li < e->nloads; li++)
		if (e->loads[li].closed != e->loads[0].closed)
			return 1;
	return 0;
}

/*
 * Plot of y against x per variant over the loads (mean of repeats); a
 * NULL xkey plots against the load (its number when loads are mixed).
 */
static void
plot_vs(const struct sy_exp *e, const json_t *runs, const char *xkey,
    const char *ykey, const char *title, const char *xlabel,
    const char *ylabel, char **out, size_t *len)
{
	struct plot p;
	struct cell cx, cy;
	size_t vi, li;

	plot_init(&p, e, e->nloads);
	for (vi = 0; vi < p.nv; vi++) {
		p.s[vi].n = e->nloads;
		for (li = 0; li < e->nloads; li++) {
			if (xkey != NULL)
				cx = cell_of(runs, vi, li, xkey);
			else
				cx.n = 1, cx.mean = mixed_loads(e) ?
				    (double)(li + 1) : e->loads[li].value;
			cy = cell_of(runs, vi, li, ykey);
			p.x[vi * p.per + li] = cx.n ? cx.mean : -1;
			p.y[vi * p.per + li] = cy.n ? cy.mean : -1;
		}
	}
	plot_lines(&p, title, xlabel, ylabel, out, len);
}

/* TTFT (or latency) CDFs of each variant at load li (first repeat). */
static void
plot_cdf(const struct sy_exp *e, const json_t *runs, size_t li,
    const char *key, const char *title, const char *xlabel, char **out,
    size_t *len)
{
	struct plot p;
	size_t vi, i, n;
	json_t *a;

	plot_init(&p, e, 64);
	for (vi = 0; vi < p.nv; vi++) {
		a = json_object_get(first_run(runs, vi, li), key);
		n = json_array_size(a) < p.per ? json_array_size(a) : p.per;
		p.s[vi].n = n;
		for (i = 0; i < n; i++) {
			p.x[vi * p.per + i] = json_number_value(
			    json_array_get(a, i));
			p.y[vi * p.per + i] = n > 1 ? (double)i /
			    (double)(n - 1) : 1;
		}
	}
	plot_lines(&p, title, xlabel, "share of requests", out, len);
}

/* Requests per replica of each variant at load li (first repeat). */
static void
plot_replicas(const struct sy_exp *e, const json_t *runs, size_t li,
    char **out, size_t *len)
{
	size_t nv = json_array_size(e->variants), vi, i;
	struct sy_svg_series *s = calloc(nv, sizeof *s);
	const char **labels = calloc(e->nreps, sizeof *labels);
	double *y = calloc(nv * e->nreps, sizeof *y);
	char title[128];

	if (s == NULL || labels == NULL || y == NULL)
		abort();
	for (i = 0; i < e->nreps; i++)
		labels[i] = e->reps[i].name;
	for (vi = 0; vi < nv; vi++) {
		json_t *reps = json_object_get(first_run(runs, vi, li),
		    "replicas");

		s[vi].name = vname(e, vi);
		s[vi].y = y + vi * e->nreps;
		s[vi].n = e->nreps;
		for (i = 0; i < e->nreps; i++)
			y[vi * e->nreps + i] = reps != NULL ? figure(
			    json_array_get(reps, i), "requests") : -1;
	}
	snprintf(title, sizeof title, "Requests per replica at %s",
	    e->loads[li].label);
	sy_str_add(out, len, "<figure>\n");
	sy_svg_bars(out, len, title, "requests", labels, e->nreps, s, nv);
	sy_str_add(out, len, "</figure>\n");
	free(s);
	free(labels);
	free(y);
}

/* report.html: the Markdown's content, then the plots, inline SVG. */
static char *
report_html(const struct sy_exp *e, const json_t *runs, const char *md,
    size_t *len)
{
	char *s = NULL, title[160];
	size_t last = e->nloads - 1;
	const char *xload = mixed_loads(e) ? "load level (1: the first)" :
	    e->loads[0].closed ? "concurrency" : "offered req/s";

	*len = 0;
	sy_str_add(&s, len, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n"
	    "<meta charset=\"utf-8\">\n<title>");
	sy_str_html(&s, len, e->title);
	sy_str_add(&s, len, "</title>\n<style>body{font-family:sans-serif;"
	    "margin:2em;max-width:1400px}table{border-collapse:collapse;"
	    "font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px;"
	    "text-align:right}td:first-child,th:first-child{text-align:left}"
	    "figure{display:inline-block;margin:8px}</style>\n</head>\n"
	    "<body>\n");
	md_html(&s, len, md);
	sy_str_add(&s, len, "<h2>Plots</h2>\n");
	plot_vs(e, runs, "rps", "latency_ms.p99", "Latency p99 vs "
	    "throughput", "req/s", "latency p99 ms", &s, len);
	plot_vs(e, runs, "rps", "ttft_ms.p99", "TTFT p99 vs throughput",
	    "req/s", "TTFT p99 ms", &s, len);
	plot_vs(e, runs, NULL, "output_tps", "Output tokens/s vs load",
	    xload, "output tok/s", &s, len);
	plot_vs(e, runs, NULL, "usd_per_mtok", "$/1M tokens vs load", xload,
	    "USD per 1M tokens", &s, len);
	plot_vs(e, runs, NULL, "goodput_rps", "Goodput vs load", xload,
	    "requests meeting the SLO per s", &s, len);
	snprintf(title, sizeof title, "TTFT CDF at %s", e->loads[last].label);
	plot_cdf(e, runs, last, "ttft_cdf_ms", title, "TTFT ms", &s, len);
	snprintf(title, sizeof title, "Latency CDF at %s",
	    e->loads[last].label);
	plot_cdf(e, runs, last, "latency_cdf_ms", title, "latency ms", &s,
	    len);
	plot_replicas(e, runs, last, &s, len);
	sy_str_add(&s, len, "</body>\n</html>\n");
	return s;
}

int
sy_exp_report(const struct sy_exp *e, json_t *runs, int complete,
    const char *dir)
{
	json_t *root, *v, *loads, *summary, *cells;
	char *md, *html, *text;
	size_t mdlen, htmllen, li, vi, k;
	struct cell c;
	int r = 0;

	v = verdict(e, runs);
	loads = json_array();
	for (li = 0; li < e->nloads; li++)
		json_array_append_new(loads, json_pack("{s:s,s:s,s:f}",
		    "label", e->loads[li].label, "mode", e->loads[li].closed ?
		    "concurrency" : "rate", "value", e->loads[li].value));
	summary = json_array();
	for (li = 0; li < e->nloads; li++)
		for (vi = 0; vi < json_array_size(e->variants); vi++) {
			cells = json_object();
			for (k = 0; k < NCOLUMNS; k++) {
				c = cell_of(runs, vi, li, columns[k].key);
				json_object_set_new(cells, columns[k].key,
				    c.n == 0 ? json_null() : json_pack(
				    "{s:f,s:f,s:f,s:i}", "mean", c.mean, "min",
				    c.min, "max", c.max, "n", (int)c.n));
			}
			json_array_append_new(summary, json_pack(
			    "{s:s,s:s,s:b,s:o}", "variant", vname(e, vi),
			    "load", e->loads[li].label, "meets_slo",
			    sy_exp_meets_slo(e, runs, vi, li), "figures", cells));
		}
	root = json_pack("{s:{s:s,s:s,s:s,s:s?,s:O,s:o,s:i,s:f,s:f,s:s,"
	    "s:{s:f,s:f,s:f}},s:b,s:O,s:o,s:o}", "experiment", "name",
	    e->name, "title", e->title, "file", e->path, "published",
	    e->published, "variants", e->variants, "loads", loads, "repeats",
	    (int)e->repeats, "warmup_s", e->warmup_s, "duration_s",
	    e->duration_s, "cost", e->cost_basis == SY_EXP_COST_PRICES ? "prices" :
	    e->cost_basis == SY_EXP_COST_GATEWAY ? "gateway" : "hourly",
	    "slo", "ttft_ms", e->slo_ttft_ms, "itl_ms", e->slo_itl_ms,
	    "latency_ms", e->slo_latency_ms, "complete", complete, "runs",
	    runs, "summary", summary, "verdict", v);
	if (root == NULL)
		abort();
	text = json_dumps(root, JSON_INDENT(1) | JSON_REAL_PRECISION(8));
	if (text == NULL || write_file(dir, "results.json", text,
	    strlen(text)) < 0)
		r = -1;
	free(text);
	if (write_csv(e, runs, dir) < 0)
		r = -1;
	md = report_md(e, runs, v, complete, &mdlen);
	if (write_file(dir, "report.md", md, mdlen) < 0)
		r = -1;
	html = report_html(e, runs, md, &htmllen);
	if (write_file(dir, "report.html", html, htmllen) < 0)
		r = -1;
	free(md);
	free(html);
	json_decref(root);
	return r;
}
