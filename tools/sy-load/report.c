/* sy-load: the figures of a run: the summary table, the --json and --csv files. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "load.h"

/* Highest HTTP status counted apart. */
#define STATUS_MAX 999

/* Count, mean, percentiles and maximum of one latency, in ms. */
struct figures {
	size_t count;
	double mean, p50, p90, p99, max;
};

/* Everything the outputs print, computed once. */
struct summary {
	uint64_t sent, ok, failed, dropped;
	uint64_t errors[SY_LOAD_NERR];
	uint64_t status[STATUS_MAX + 1];
	uint64_t prompt_tokens, completion_tokens;
	uint64_t slo_met;
	int slo;			/* some SLO bound was given */
	double throughput, goodput, out_tps, total_tps;
	struct figures ttft, itl, latency;
	uint64_t *model_requests;	/* per model: sent */
	uint64_t *model_ok;
};

const char *
sy_load_err_name(enum sy_load_err err)
{
	static const char *const names[SY_LOAD_NERR] = {
		[SY_LOAD_OK] = "ok",
		[SY_LOAD_ERR_HTTP] = "http",
		[SY_LOAD_ERR_CONNECT] = "connect",
		[SY_LOAD_ERR_TIMEOUT] = "timeout",
		[SY_LOAD_ERR_RESET] = "reset",
		[SY_LOAD_ERR_BAD_RESPONSE] = "bad_response",
		[SY_LOAD_ERR_STREAM] = "stream_error",
		[SY_LOAD_ERR_DROPPED] = "dropped",
		[SY_LOAD_ERR_CANCELLED] = "cancelled"
	};

	return err < SY_LOAD_NERR ? names[err] : "?";
}

/* qsort order of uint32_t. */
static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* qsort order of records by id. */
static int
cmp_id(const void *a, const void *b)
{
	uint64_t x = ((const struct sy_load_rec *)a)->id;
	uint64_t y = ((const struct sy_load_rec *)b)->id;

	return x < y ? -1 : x > y;
}

/*
 * The q-quantile of the n sorted values v (µs) in ms, interpolating
 * linearly between the closest ranks.
 */
static double
quantile(const uint32_t *v, size_t n, double q)
{
	double pos = q * (double)(n - 1), frac;
	size_t lo = (size_t)pos;

	frac = pos - (double)lo;
	if (lo + 1 >= n)
		return v[n - 1] / 1e3;
	return (v[lo] + frac * ((double)v[lo + 1] - v[lo])) / 1e3;
}

/* Sorts v (n values in µs, reordered) and sums it up in st. */
static void
stat_of(uint32_t *v, size_t n, struct figures *st)
{
	double sum = 0;
	size_t i;

	memset(st, 0, sizeof *st);
	if (n == 0)
		return;
	qsort(v, n, sizeof *v, cmp_u32);
	for (i = 0; i < n; i++)
		sum += v[i];
	st->count = n;
	st->mean = sum / (double)n / 1e3;
	st->p50 = quantile(v, n, 0.50);
	st->p90 = quantile(v, n, 0.90);
	st->p99 = quantile(v, n, 0.99);
	st->max = v[n - 1] / 1e3;
}

/* Whether an ok request met every SLO bound of spec. */
static int
slo_ok(const struct sy_load_spec *spec, const struct sy_load_rec *rec)
{
	if (rec->error != SY_LOAD_OK)
		return 0;
	if (spec->slo_latency_ms > 0 &&
	    rec->latency_us / 1e3 > spec->slo_latency_ms)
		return 0;
	if (spec->slo_ttft_ms > 0 && rec->stream &&
	    (rec->chunks == 0 || rec->ttft_us / 1e3 > spec->slo_ttft_ms))
		return 0;
	if (spec->slo_itl_ms > 0 && rec->chunks >= 2 &&
	    rec->itl_mean_us / 1e3 > spec->slo_itl_ms)
		return 0;
	return 1;
}

/* Computes the summary of res into s (free its arrays with summary_free). */
static void
summarize(struct sy_load_results *res, struct summary *s)
{
	const struct sy_load_spec *spec = &res->opts->spec;
	const struct sy_load_rec *rec;
	uint32_t *lat, *ttft;
	size_t i, nlat = 0, nttft = 0;

	memset(s, 0, sizeof *s);
	s->model_requests = calloc(spec->nmodels, sizeof *s->model_requests);
	s->model_ok = calloc(spec->nmodels, sizeof *s->model_ok);
	lat = calloc(res->nrecs + 1, sizeof *lat);
	ttft = calloc(res->nrecs + 1, sizeof *ttft);
	if (s->model_requests == NULL || s->model_ok == NULL || lat == NULL ||
	    ttft == NULL)
		abort();
	s->slo = spec->slo_ttft_ms > 0 || spec->slo_itl_ms > 0 ||
	    spec->slo_latency_ms > 0;
	for (i = 0; i < res->nrecs; i++) {
		rec = &res->recs[i];
		if (rec->error == SY_LOAD_ERR_DROPPED) {
			s->dropped++;
			continue;
		}
		s->sent++;
		if (rec->model < spec->nmodels)
			s->model_requests[rec->model]++;
		if (rec->error != SY_LOAD_OK) {
			s->failed++;
			s->errors[rec->error]++;
			if (rec->error == SY_LOAD_ERR_HTTP &&
			    rec->status <= STATUS_MAX)
				s->status[rec->status]++;
			continue;
		}
		s->ok++;
		if (rec->model < spec->nmodels)
			s->model_ok[rec->model]++;
		s->prompt_tokens += rec->prompt_tokens;
		s->completion_tokens += rec->completion_tokens;
		s->slo_met += (uint64_t)slo_ok(spec, rec);
		lat[nlat++] = rec->latency_us;
		if (rec->stream && rec->chunks > 0)
			ttft[nttft++] = rec->ttft_us;
	}
	s->errors[SY_LOAD_ERR_DROPPED] = s->dropped;
	s->sent += res->cancelled;
	stat_of(lat, nlat, &s->latency);
	stat_of(ttft, nttft, &s->ttft);
	stat_of(res->gaps, res->ngaps, &s->itl);
	free(lat);
	free(ttft);
	if (res->elapsed > 0) {
		s->throughput = (double)s->ok / res->elapsed;
		s->goodput = (double)s->slo_met / res->elapsed;
		s->out_tps = (double)s->completion_tokens / res->elapsed;
		s->total_tps = (double)(s->prompt_tokens +
		    s->completion_tokens) / res->elapsed;
	}
}

/* Frees what s holds. */
static void
summary_free(struct summary *s)
{
	free(s->model_requests);
	free(s->model_ok);
}

/* Describes the load of o ("closed loop, concurrency 8", ...) into buf. */
static const char *
load_text(const struct sy_load_opts *o, char *buf, size_t len)
{
	switch (o->mode) {
	case SY_LOAD_OPEN:
		snprintf(buf, len, "open loop, %s arrivals at %g req/s",
		    o->poisson ? "poisson" : "constant", o->rate);
		break;
	case SY_LOAD_CLOSED:
		snprintf(buf, len, "closed loop, concurrency %u",
		    o->concurrency);
		break;
	case SY_LOAD_REPLAY:
		snprintf(buf, len, "replay of %s", o->trace->path);
		break;
	}
	return buf;
}

/* Prints one row of the latency table. */
static void
print_stat(const char *name, const struct figures *st)
{
	if (st->count == 0) {
		printf("%-10s %9zu %9s %9s %9s %9s %9s\n", name, st->count,
		    "-", "-", "-", "-", "-");
		return;
	}
	printf("%-10s %9zu %9.2f %9.2f %9.2f %9.2f %9.2f\n", name, st->count,
	    st->mean, st->p50, st->p90, st->p99, st->max);
}

/* Prints the summary table to stdout. */
static void
print_summary(const struct sy_load_results *res, const struct summary *s)
{
	const struct sy_load_opts *o = res->opts;
	const struct sy_load_spec *spec = &o->spec;
	char buf[512];
	int i, any = 0;

	printf("sy-load %s  api %s  %s\n", o->url, sy_load_api_name(spec->api),
	    load_text(o, buf, sizeof buf));
	if (res->interrupted)
		printf("interrupted\n");
	printf("requests     %llu sent  %llu ok  %llu failed  %llu dropped",
	    (unsigned long long)s->sent, (unsigned long long)s->ok,
	    (unsigned long long)s->failed, (unsigned long long)s->dropped);
	if (res->cancelled > 0)
		printf("  %llu cancelled", (unsigned long long)res->cancelled);
	printf("\n");
	printf("errors      ");
	for (i = 0; i <= STATUS_MAX; i++)
		if (s->status[i] > 0) {
			printf(" http_%d %llu", i,
			    (unsigned long long)s->status[i]);
			any = 1;
		}
	for (i = SY_LOAD_ERR_HTTP + 1; i < SY_LOAD_NERR; i++)
		if (s->errors[i] > 0 && i != SY_LOAD_ERR_DROPPED) {
			printf(" %s %llu", sy_load_err_name(i),
			    (unsigned long long)s->errors[i]);
			any = 1;
		}
	printf("%s\n", any ? "" : " none");
	for (i = SY_LOAD_ERR_HTTP; i < SY_LOAD_NERR; i++)
		if (res->errmsg[i][0] != '\0') {
			if (i == SY_LOAD_ERR_HTTP)
				printf("  first http_%d: %s\n",
				    res->errstatus[i], res->errmsg[i]);
			else
				printf("  first %s: %s\n", sy_load_err_name(i),
				    res->errmsg[i]);
		}
	printf("duration     %.3f s", res->elapsed);
	if (o->warmup > 0)
		printf("  (after %g s of warm-up)", o->warmup);
	printf("\nthroughput   %.2f req/s\n", s->throughput);
	printf("tokens       %llu prompt  %llu completion\n",
	    (unsigned long long)s->prompt_tokens,
	    (unsigned long long)s->completion_tokens);
	printf("output       %.1f tok/s\n", s->out_tps);
	printf("total        %.1f tok/s\n", s->total_tps);
	printf("goodput      %.2f req/s", s->goodput);
	if (s->slo) {
		printf("  (%llu of %llu ok requests met",
		    (unsigned long long)s->slo_met, (unsigned long long)s->ok);
		if (spec->slo_ttft_ms > 0)
			printf(" ttft <= %g ms", spec->slo_ttft_ms);
		if (spec->slo_itl_ms > 0)
			printf(" itl <= %g ms", spec->slo_itl_ms);
		if (spec->slo_latency_ms > 0)
			printf(" latency <= %g ms", spec->slo_latency_ms);
		printf(")\n");
	} else
		printf("  (no SLO given: every ok request counts)\n");
	printf("connections  %llu opened\n",
	    (unsigned long long)res->connections);
	if (o->mode != SY_LOAD_CLOSED)
		printf("send lag     %.3f ms mean  %.3f ms max\n",
		    res->lag_mean_ms, res->lag_max_ms);
	printf("\n%-10s %9s %9s %9s %9s %9s %9s\n", "(ms)", "count", "mean",
	    "p50", "p90", "p99", "max");
	print_stat("ttft", &s->ttft);
	print_stat("itl", &s->itl);
	print_stat("latency", &s->latency);
	fflush(stdout);
}

/* Writes s as a JSON string to f. */
static void
json_fstr(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", (unsigned char)*s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

/* Writes st as a JSON object to f. */
static void
json_stat(FILE *f, const char *name, const struct figures *st)
{
	fprintf(f, "\"%s\":{\"count\":%zu,\"mean\":%.3f,\"p50\":%.3f,"
	    "\"p90\":%.3f,\"p99\":%.3f,\"max\":%.3f}", name, st->count,
	    st->mean, st->p50, st->p90, st->p99, st->max);
}

/* The model name of rec, "" for a dropped request. */
static const char *
rec_model(const struct sy_load_spec *spec, const struct sy_load_rec *rec)
{
	if (rec->error == SY_LOAD_ERR_DROPPED || rec->model >= spec->nmodels)
		return "";
	return spec->models[rec->model].name;
}

/* The error name of rec ("http_500", "timeout", "" when ok) into buf. */
static const char *
rec_error(const struct sy_load_rec *rec, char *buf, size_t len)
{
	if (rec->error == SY_LOAD_ERR_HTTP)
		snprintf(buf, len, "http_%u", rec->status);
	else if (rec->error == SY_LOAD_OK)
		buf[0] = '\0';
	else
		snprintf(buf, len, "%s", sy_load_err_name(rec->error));
	return buf;
}

/* Writes one measured request as a JSON object to f. */
static void
json_rec(FILE *f, const struct sy_load_spec *spec,
    const struct sy_load_rec *rec)
{
	char err[32];

	fprintf(f, "{\"id\":%llu,\"start_ms\":%.3f,\"model\":",
	    (unsigned long long)rec->id, rec->start_us / 1e3);
	json_fstr(f, rec_model(spec, rec));
	fprintf(f, ",\"stream\":%s,\"status\":%u,\"error\":",
	    rec->stream ? "true" : "false", rec->status);
	json_fstr(f, rec_error(rec, err, sizeof err));
	fprintf(f, ",\"ttft_ms\":%.3f,\"latency_ms\":%.3f,\"itl_mean_ms\":%.3f,"
	    "\"itl_max_ms\":%.3f,\"chunks\":%u,\"prompt_tokens\":%u,"
	    "\"completion_tokens\":%u,\"session\":%d,\"turn\":%u,"
	    "\"group\":%d,\"slo_ok\":%s}", rec->ttft_us / 1e3,
	    rec->latency_us / 1e3, rec->itl_mean_us / 1e3,
	    rec->itl_max_us / 1e3, rec->chunks, rec->prompt_tokens,
	    rec->completion_tokens, rec->session, rec->turn, rec->group,
	    slo_ok(spec, rec) ? "true" : "false");
}

/* Closes f, opened on path; returns 0, or -1 after printing why. */
static int
close_out(FILE *f, const char *path)
{
	int bad = ferror(f);

	if (fclose(f) != 0 || bad) {
		fprintf(stderr, "sy-load: %s: %s\n", path,
		    strerror(errno ? errno : EIO));
		return -1;
	}
	return 0;
}

/* Writes the --json file. */
static int
write_json(const struct sy_load_results *res, const struct summary *s)
{
	const struct sy_load_opts *o = res->opts;
	const struct sy_load_spec *spec = &o->spec;
	FILE *f;
	char buf[512];
	size_t i;
	int k;

	if ((f = fopen(o->json_path, "w")) == NULL) {
		fprintf(stderr, "sy-load: %s: %s\n", o->json_path,
		    strerror(errno));
		return -1;
	}
	fprintf(f, "{\"tool\":\"sy-load\",\"version\":\"" SY_LOAD_VERSION
	    "\",\"config\":{\"url\":");
	json_fstr(f, o->url);
	fprintf(f, ",\"api\":\"%s\",\"mode\":\"%s\",\"load\":",
	    sy_load_api_name(spec->api), o->mode == SY_LOAD_OPEN ? "open" :
	    o->mode == SY_LOAD_CLOSED ? "closed" : "replay");
	json_fstr(f, load_text(o, buf, sizeof buf));
	fprintf(f, ",\"rate\":%g,\"concurrency\":%u,\"duration_s\":%g,"
	    "\"requests\":%llu,\"warmup_s\":%g,\"timeout_s\":%g,"
	    "\"seed\":%llu,\"spec\":", o->mode == SY_LOAD_OPEN ? o->rate : 0,
	    o->mode == SY_LOAD_CLOSED ? o->concurrency : 0, o->duration,
	    (unsigned long long)o->requests, o->warmup, o->timeout,
	    (unsigned long long)spec->seed);
	if (o->spec_path != NULL)
		json_fstr(f, o->spec_path);
	else
		fprintf(f, "null");
	fprintf(f, ",\"trace\":");
	if (o->trace != NULL)
		json_fstr(f, o->trace->path);
	else
		fprintf(f, "null");
	fprintf(f, "},\"interrupted\":%s,\"requests\":{\"sent\":%llu,"
	    "\"ok\":%llu,\"failed\":%llu,\"dropped\":%llu,\"cancelled\":%llu},"
	    "\"errors\":{", res->interrupted ? "true" : "false",
	    (unsigned long long)s->sent, (unsigned long long)s->ok,
	    (unsigned long long)s->failed, (unsigned long long)s->dropped,
	    (unsigned long long)res->cancelled);
	buf[0] = '\0';
	for (k = 0; k <= STATUS_MAX; k++)
		if (s->status[k] > 0) {
			fprintf(f, "%s\"http_%d\":%llu", buf, k,
			    (unsigned long long)s->status[k]);
			strcpy(buf, ",");
		}
	for (k = SY_LOAD_ERR_HTTP + 1; k < SY_LOAD_NERR; k++)
		if (s->errors[k] > 0 && k != SY_LOAD_ERR_DROPPED) {
			fprintf(f, "%s\"%s\":%llu", buf, sy_load_err_name(k),
			    (unsigned long long)s->errors[k]);
			strcpy(buf, ",");
		}
	fprintf(f, "},\"duration_s\":%.6f,\"throughput_rps\":%.3f,"
	    "\"goodput_rps\":%.3f,\"slo\":{\"ttft_ms\":%g,\"itl_ms\":%g,"
	    "\"latency_ms\":%g,\"met\":%llu},\"tokens\":{\"prompt\":%llu,"
	    "\"completion\":%llu},\"output_tokens_per_s\":%.3f,"
	    "\"total_tokens_per_s\":%.3f,\"connections\":%llu,"
	    "\"send_lag_ms\":{\"mean\":%.3f,\"max\":%.3f},",
	    res->elapsed, s->throughput, s->goodput, spec->slo_ttft_ms,
	    spec->slo_itl_ms, spec->slo_latency_ms,
	    (unsigned long long)s->slo_met,
	    (unsigned long long)s->prompt_tokens,
	    (unsigned long long)s->completion_tokens, s->out_tps, s->total_tps,
	    (unsigned long long)res->connections, res->lag_mean_ms,
	    res->lag_max_ms);
	json_stat(f, "ttft_ms", &s->ttft);
	fputc(',', f);
	json_stat(f, "itl_ms", &s->itl);
	fputc(',', f);
	json_stat(f, "latency_ms", &s->latency);
	fprintf(f, ",\"models\":{");
	for (i = 0; i < spec->nmodels; i++) {
		fprintf(f, "%s", i ? "," : "");
		json_fstr(f, spec->models[i].name);
		fprintf(f, ":{\"sent\":%llu,\"ok\":%llu}",
		    (unsigned long long)s->model_requests[i],
		    (unsigned long long)s->model_ok[i]);
	}
	fprintf(f, "}");
	if (o->per_request) {
		fprintf(f, ",\"per_request\":[");
		for (i = 0; i < res->nrecs; i++) {
			fprintf(f, "%s\n", i ? "," : "");
			json_rec(f, spec, &res->recs[i]);
		}
		fprintf(f, "]");
	}
	fprintf(f, "}\n");
	return close_out(f, o->json_path);
}

/* Writes the --csv file: one row per measured request. */
static int
write_csv(const struct sy_load_results *res)
{
	const struct sy_load_opts *o = res->opts;
	const struct sy_load_spec *spec = &o->spec;
	const struct sy_load_rec *rec;
	const char *m;
	FILE *f;
	char err[32];
	size_t i;

	if ((f = fopen(o->csv_path, "w")) == NULL) {
		fprintf(stderr, "sy-load: %s: %s\n", o->csv_path,
		    strerror(errno));
		return -1;
	}
	fprintf(f, "id,start_ms,model,stream,status,error,ttft_ms,latency_ms,"
	    "itl_mean_ms,itl_max_ms,chunks,prompt_tokens,completion_tokens,"
	    "session,turn,group,slo_ok\n");
	for (i = 0; i < res->nrecs; i++) {
		rec = &res->recs[i];
		fprintf(f, "%llu,%.3f,", (unsigned long long)rec->id,
		    rec->start_us / 1e3);
		/* Quoted, doubling quotes, when the name needs it. */
		m = rec_model(spec, rec);
		if (strpbrk(m, ",\"\r\n") != NULL) {
			fputc('"', f);
			for (; *m != '\0'; m++) {
				if (*m == '"')
					fputc('"', f);
				fputc(*m, f);
			}
			fputc('"', f);
		} else
			fputs(m, f);
		fprintf(f, ",%d,%u,%s,%.3f,%.3f,%.3f,%.3f,%u,%u,%u,%d,%u,%d,"
		    "%d\n", rec->stream, rec->status,
		    rec_error(rec, err, sizeof err), rec->ttft_us / 1e3,
		    rec->latency_us / 1e3, rec->itl_mean_us / 1e3,
		    rec->itl_max_us / 1e3, rec->chunks, rec->prompt_tokens,
		    rec->completion_tokens, rec->session, rec->turn,
		    rec->group, slo_ok(spec, rec));
	}
	return close_out(f, o->csv_path);
}

int
sy_load_report(struct sy_load_results *res)
{
	struct summary s;
	int r = 0;

	if (res->nrecs > 0)
		qsort(res->recs, res->nrecs, sizeof *res->recs, cmp_id);
	summarize(res, &s);
	print_summary(res, &s);
	if (res->opts->json_path != NULL && write_json(res, &s) < 0)
		r = -1;
	if (res->opts->csv_path != NULL && write_csv(res) < 0)
		r = -1;
	summary_free(&s);
	return r;
}
