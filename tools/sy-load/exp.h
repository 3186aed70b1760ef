/* sy-load experiment: the experiment runner's types, shared by its reader, its runner and its report writer. */
#ifndef SY_LOAD_EXP_H
#define SY_LOAD_EXP_H

#include <stddef.h>

#include <jansson.h>

/* One load level: an open-loop rate or a closed-loop concurrency. */
struct sy_exp_load {
	int closed;		/* 1: concurrency, 0: rate */
	double value;
	char label[48];		/* "rate 4", "concurrency 8" */
};

/* One replica of the fleet, as the runner accounts for it. */
struct sy_exp_replica {
	char name[64];		/* its backend's name in the gateway */
	double cost_per_hour;	/* USD */
	double power_watts;	/* at full load; 0: unknown */
	double slots;
};

/* An experiment file, read and checked. */
struct sy_exp {
	char *path;
	char *name;
	char *title;
	char *published;	/* the published figure it reproduces, or NULL */
	json_t *fleet;		/* sy-sim config without the lab's keys */
	int external;		/* real endpoints: no sy-sim */
	json_t *replica_gw;	/* per replica: gateway backend keys (object) */
	struct sy_exp_replica *reps;
	size_t nreps;
	json_t *gateway;	/* fragment every variant starts from */
	json_t *variants;	/* [{"name": ..., "gateway": {...}}] */
	json_t *workload;	/* a sy-load spec object */
	struct sy_exp_load *loads;
	size_t nloads;
	double warmup_s, duration_s, timeout_s;
	double requests;	/* 0: none */
	unsigned repeats;
	double slo_ttft_ms, slo_itl_ms, slo_latency_ms;	/* 0: no bound */
	double idle_power_share;	/* of power_watts drawn when idle */
	enum { SY_EXP_COST_HOURLY, SY_EXP_COST_PRICES, SY_EXP_COST_GATEWAY }
	    cost_basis;		/* of usd_per_mtok (the "cost" key) */
	int sweep;		/* a variant stops at its first load over
				   the SLO */
};

/*
 * Reads and checks the experiment at path into e.  Returns 0, or -1 with
 * *err set to an allocated "file: key: message".
 */
int sy_exp_read(struct sy_exp *e, const char *path, char **err);

/* Frees what e holds. */
void sy_exp_free(struct sy_exp *e);

/*
 * The switchyard config of one run: the generated listeners, access log and
 * one backend per replica on sim_port + i, then e->gateway and the
 * variant's fragment merged over it.  Returns a new reference.
 */
json_t *sy_exp_gateway_config(const struct sy_exp *e, const json_t *variant,
    int listen_port, int admin_port, int sim_port, const char *access_log);

/* The sy-sim config of one run, replicas on sim_port + i (new reference). */
json_t *sy_exp_fleet_config(const struct sy_exp *e, int sim_port);

/* Merges fragment into dst: objects key by key, anything else replaced. */
void sy_exp_merge(json_t *dst, const json_t *fragment);

/*
 * Writes report.md, report.html, results.json and results.csv into dir
 * from e and runs (an array of run records, see docs/lab.md).  complete is
 * 0 when the experiment was stopped early.  Returns 0, or -1 (printed).
 */
int sy_exp_report(const struct sy_exp *e, json_t *runs, int complete,
    const char *dir);

/*
 * Whether variant vi meets the SLO at load li of runs: the means over the
 * repeats of TTFT, ITL and latency p99 within e's bounds, at most 1% of
 * requests failed.  0 without a run.
 */
int sy_exp_meets_slo(const struct sy_exp *e, const json_t *runs, size_t vi,
    size_t li);

/* ==== Statistics ==== */

/* The q-quantile (0..1) of n sorted values, linearly interpolated. */
double sy_exp_quantile(const double *sorted, size_t n, double q);

/* Whether the ranges [a0, a1] and [b0, b1] overlap. */
int sy_exp_overlap(double a0, double a1, double b0, double b1);

/*
 * Self-hosted cost per 1M tokens: hourly costs (USD) over seconds, spread
 * over tokens.  Returns -1 when no token was served.
 */
double sy_exp_usd_per_mtok(double usd_per_hour, double seconds,
    double tokens);

/*
 * Energy in joules of a replica drawing watts at full load, idle_share of
 * it when idle, busy for the share util (0..1) of seconds.
 */
double sy_exp_joules(double watts, double idle_share, double util,
    double seconds);

/* ==== SVG plots ==== */

/* One curve or bar group: a name and n (x, y) points. */
struct sy_svg_series {
	const char *name;
	const double *x, *y;
	size_t n;
};

/*
 * Appends to out (a growing string) a self-contained <svg> line chart of
 * the series, titled, with labelled axes; points whose y is negative are
 * left out.
 */
void sy_svg_lines(char **out, size_t *len,
    const char *title, const char *xlabel, const char *ylabel,
    const struct sy_svg_series *s, size_t ns);

/*
 * Appends a grouped bar chart: one group per category (labels[i]), one bar
 * per series in each group (series[k].y[i]).
 */
void sy_svg_bars(char **out, size_t *len, const char *title,
    const char *ylabel, const char *const *labels, size_t nlabels,
    const struct sy_svg_series *s, size_t ns);

/* Appends printf-style text to the growing string *out of *len bytes. */
void sy_str_add(char **out, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Appends s with &, <, >, " escaped for HTML. */
void sy_str_html(char **out, size_t *len, const char *s);

/* Entry point of `sy-load experiment`; argv[0] is "experiment". */
int sy_load_experiment_main(int argc, char **argv);

#endif
