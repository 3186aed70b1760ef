/* sy-load experiment: runs every variant x load x repeat of an experiment against a fresh sy-sim fleet and a fresh switchyard, and gathers the figures of each run. */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "exp.h"
#include "load.h"

/* Seconds a process has to answer its first request. */
#define READY_S 15.0
/* Seconds between two samples of the fleet's busy slots. */
#define SAMPLE_S 0.25
/* Points kept of each run's TTFT and latency distributions. */
#define CDF_POINTS 41

static const char usage_text[] =
"usage: sy-load experiment FILE -o DIR [--bin-dir DIR] [--ports BASE]\n"
"                          [--quiet]\n"
"       sy-load experiment FILE --check\n"
"\n"
"Runs the experiment FILE (docs/lab.md): for each variant, load level\n"
"and repeat, a fresh sy-sim fleet and a fresh switchyard on free loopback\n"
"ports, sy-load against it, then the fleet's and the gateway's figures.\n"
"Writes report.md, report.html, results.json and results.csv into DIR\n"
"(and each run's configs, logs and raw figures into DIR/runs).\n"
"\n"
"  -o, --out DIR     output directory (created)\n"
"  --bin-dir DIR     where switchyard and sy-sim are (default: beside\n"
"                    this sy-load)\n"
"  --ports BASE      every run on ports BASE, BASE+1, ... (replicas, then\n"
"                    the gateway's listener and admin); default: free\n"
"                    ports picked for each run\n"
"  --quiet           no progress line\n"
"  --check           check the file and print the plan (runs, about\n"
"                    how long), run nothing; no -o needed\n"
"  --help            print this help\n"
"\n"
"Ctrl-C stops every process it started and writes the report of the\n"
"runs done.  Exit status: 0 when every run completed, 1 on a failure\n"
"(printed), 2 on a usage error, 130 when interrupted.\n";

static volatile sig_atomic_t stop_flag;

/* SIGINT, SIGTERM: stop at the next check. */
static void
on_stop(int sig)
{
	(void)sig;
	stop_flag = 1;
}

/* Seconds on the monotonic clock. */
static double
now_s(void)
{
	return sy_load_now() / 1e6;
}

/* Sleeps s seconds (less when a signal comes). */
static void
nap(double s)
{
	struct timespec ts;

	if (s <= 0)
		return;
	ts.tv_sec = (time_t)s;
	ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
	nanosleep(&ts, NULL);
}

/* ==== Processes ==== */

/* A process the runner started. */
struct proc {
	pid_t pid;		/* 0: not running */
	int status;		/* its wait status once it ended */
	char name[32];
	char log[PATH_MAX];
};

/*
 * Starts argv as p, its stdout and stderr into p->log, in a process group
 * of its own (the terminal's Ctrl-C reaches the runner only).  Returns 0
 * or -1 (printed).
 */
static int
proc_start(struct proc *p, const char *name, char *const argv[],
    const char *log)
{
	int fd;

	snprintf(p->name, sizeof p->name, "%s", name);
	snprintf(p->log, sizeof p->log, "%s", log);
	fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(stderr, "sy-load: %s: %s\n", log, strerror(errno));
		return -1;
	}
	p->pid = fork();
	if (p->pid < 0) {
		fprintf(stderr, "sy-load: fork: %s\n", strerror(errno));
		close(fd);
		p->pid = 0;
		return -1;
	}
	if (p->pid == 0) {
		setpgid(0, 0);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		dup2(fd, 1);
		dup2(fd, 2);
		fd = open("/dev/null", O_RDONLY);
		if (fd >= 0)
			dup2(fd, 0);
		execv(argv[0], argv);
		fprintf(stderr, "%s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(fd);
	return 0;
}

/* Whether p still runs (reaps it when it ended). */
static int
proc_alive(struct proc *p)
{
	if (p->pid == 0)
		return 0;
	if (waitpid(p->pid, &p->status, WNOHANG) == p->pid) {
		p->pid = 0;
		return 0;
	}
	return 1;
}

/* Stops p by its PID: SIGTERM, then SIGKILL after 5 s. */
static void
proc_stop(struct proc *p)
{
	double deadline;

	if (!proc_alive(p))
		return;
	kill(p->pid, SIGTERM);
	deadline = now_s() + 5;
	while (now_s() < deadline && proc_alive(p))
		nap(0.02);
	if (p->pid != 0) {
		kill(p->pid, SIGKILL);
		waitpid(p->pid, &p->status, 0);
		p->pid = 0;
	}
}

/* Prints the last lines of p's log after why. */
static void
proc_blame(const struct proc *p, const char *why)
{
	char buf[2048];
	FILE *f;
	long size;
	size_t n;

	fprintf(stderr, "\nsy-load: %s %s (log %s)\n", p->name, why, p->log);
	if ((f = fopen(p->log, "r")) == NULL)
		return;
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	fseek(f, size > (long)sizeof buf - 1 ? size - (long)sizeof buf + 1 :
	    0, SEEK_SET);
	n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = '\0';
	fclose(f);
	fprintf(stderr, "%s%s", buf, n > 0 && buf[n - 1] != '\n' ? "\n" : "");
}

/* ==== Ports and HTTP ==== */

/* Whether 127.0.0.1:port can be bound now. */
static int
port_free(int port)
{
	struct sockaddr_in a;
	int fd, one = 1, ok;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
		return 0;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
	close(fd);
	return ok;
}

/*
 * The first of n consecutive free ports below the kernel's ephemeral range
 * (a port in it may go to an outgoing connection before the server that
 * was to listen on it starts), or -1.
 */
static int
free_ports(int n)
{
	FILE *f;
	int lo = 32768, hi = 60999, top, bottom, base, i, tries;

	if ((f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r")) !=
	    NULL) {
		if (fscanf(f, "%d %d", &lo, &hi) != 2)
			lo = 32768, hi = 60999;
		fclose(f);
	}
	if (lo - n > 12000)
		top = lo - n, bottom = 10000;
	else
		top = 65535 - n, bottom = hi + 1;
	for (tries = 0; tries < 200; tries++) {
		base = bottom + (int)(random() % (top - bottom));
		for (i = 0; i < n && port_free(base + i); i++)
			;
		if (i == n)
			return base;
	}
	return -1;
}

/* Undoes chunked transfer coding of body in place; returns its length. */
static size_t
dechunk(char *body, size_t len)
{
	char *in = body, *out = body, *end = body + len, *e;
	unsigned long n;

	while (in < end) {
		n = strtoul(in, &e, 16);
		if (e == in || (e = strstr(e, "\r\n")) == NULL)
			break;
		in = e + 2;
		if (n == 0 || (size_t)(end - in) < n)
			break;
		memmove(out, in, n);
		out += n;
		in += n + 2;
	}
	*out = '\0';
	return (size_t)(out - body);
}

/*
 * GETs path from 127.0.0.1:port.  Returns the HTTP status (0 when no answer
 * came) and, when body is not NULL, the allocated body in *body.
 */
static int
http_get(int port, const char *path, char **body)
{
	struct sockaddr_in a;
	struct timeval tv = { 3, 0 };
	char req[512], *buf = NULL, *sep, *p;
	size_t len = 0, cap = 0;
	ssize_t n;
	int fd, status = 0;

	if (body != NULL)
		*body = NULL;
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return 0;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
		goto out;
	n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d"
	    "\r\nConnection: close\r\n\r\n", path, port);
	if (write(fd, req, (size_t)n) != n)
		goto out;
	for (;;) {
		if (len + 65536 + 1 > cap) {
			cap = (len + 65536 + 1) * 2;
			if ((buf = realloc(buf, cap)) == NULL)
				abort();
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	if (buf == NULL)
		goto out;
	buf[len] = '\0';
	if (strncmp(buf, "HTTP/1.", 7) != 0 || len < 12 ||
	    (sep = strstr(buf, "\r\n\r\n")) == NULL)
		goto out;
	status = atoi(buf + 9);
	if (body != NULL) {
		*sep = '\0';
		p = sep + 4;
		len -= (size_t)(p - buf);
		for (char *h = buf; *h != '\0'; h++)
			*h = (char)((*h >= 'A' && *h <= 'Z') ? *h + 32 : *h);
		if (strstr(buf, "transfer-encoding: chunked") != NULL)
			len = dechunk(p, len);
		memmove(buf, p, len + 1);
		*body = buf;
		buf = NULL;
	}
out:
	free(buf);
	close(fd);
	return status;
}

/* GETs path from port as JSON; NULL when it is not a 200 JSON answer. */
static json_t *
http_json(int port, const char *path)
{
	char *body;
	json_t *j = NULL;

	if (http_get(port, path, &body) == 200 && body != NULL)
		j = json_loads(body, 0, NULL);
	free(body);
	return j;
}

/* Waits until port answers path with a 2xx while p runs; 0 or -1. */
static int
wait_ready(struct proc *p, int port, const char *path)
{
	double deadline = now_s() + READY_S;
	int st;

	while (now_s() < deadline && !stop_flag) {
		if (!proc_alive(p)) {
			proc_blame(p, "exited before it answered");
			return -1;
		}
		st = http_get(port, path, NULL);
		if (st >= 200 && st < 300)
			return 0;
		nap(0.05);
	}
	if (!stop_flag)
		proc_blame(p, "did not answer in time");
	return -1;
}

/* Writes j to path; 0 or -1 (printed). */
static int
dump(const json_t *j, const char *path)
{
	if (json_dump_file(j, path, JSON_INDENT(2) | JSON_SORT_KEYS) < 0) {
		fprintf(stderr, "sy-load: %s: cannot write\n", path);
		return -1;
	}
	return 0;
}

/* ==== The fleet's counters ==== */

/* Counters of one replica's /sim/stats that a run differences. */
struct sim_counts {
	double llm_requests, prompt_tokens, cached_tokens, completion_tokens;
};

/* Reads every replica's counters; 0, or -1 when one did not answer. */
static int
sim_read(const struct sy_exp *e, int sim_port, struct sim_counts *c,
    double *busy)
{
	json_t *st, *paths, *codes, *n;
	const char *path, *code;
	size_t i;

	for (i = 0; i < e->nreps; i++) {
		st = http_json(sim_port + (int)i, "/sim/stats");
		if (st == NULL)
			return -1;
		if (c != NULL) {
			memset(&c[i], 0, sizeof c[i]);
			paths = json_object_get(st, "by_path");
			json_object_foreach(paths, path, codes) {
				if (strncmp(path, "/v1/", 4) != 0 ||
				    strcmp(path, "/v1/models") == 0)
					continue;
				json_object_foreach(codes, code, n)
					c[i].llm_requests +=
					    json_number_value(n);
			}
			c[i].prompt_tokens = json_number_value(
			    json_object_get(st, "prompt_tokens"));
			c[i].cached_tokens = json_number_value(
			    json_object_get(st, "cached_tokens"));
			c[i].completion_tokens = json_number_value(
			    json_object_get(st, "completion_tokens"));
		}
		if (busy != NULL)
			busy[i] += json_number_value(json_object_get(st,
			    "busy_slots")) / e->reps[i].slots;
		json_decref(st);
	}
	return 0;
}

/*
 * Real endpoints' counters from the gateway's /admin/stats (stats):
 * its requests and tokens per endpoint.
 */
static void
gateway_counts(const struct sy_exp *e, const json_t *stats,
    struct sim_counts *c)
{
	json_t *ep, *tok;
	size_t i;

	for (i = 0; i < e->nreps; i++) {
		ep = json_object_get(json_object_get(stats, "endpoints"),
		    e->reps[i].name);
		tok = json_object_get(ep, "tokens");
		c[i].llm_requests = json_number_value(json_object_get(ep,
		    "requests"));
		c[i].prompt_tokens = json_number_value(json_object_get(tok,
		    "prompt"));
		c[i].cached_tokens = json_number_value(json_object_get(tok,
		    "cached"));
		c[i].completion_tokens = json_number_value(json_object_get(tok,
		    "completion"));
	}
}

/*
 * Real endpoints' utilisation from the gateway's self-hosted accounting
 * (busy over accounted seconds between two /admin/stats) into util.
 * Returns 0, or -1 when the gateway accounts not every endpoint.
 */
static int
gateway_busy(const struct sy_exp *e, const json_t *before,
    const json_t *after, double *util)
{
	json_t *b, *a;
	double secs;
	size_t i;

	for (i = 0; i < e->nreps; i++) {
		b = json_object_get(json_object_get(json_object_get(before,
		    "hourly"), "endpoints"), e->reps[i].name);
		a = json_object_get(json_object_get(json_object_get(after,
		    "hourly"), "endpoints"), e->reps[i].name);
		if (a == NULL)
			return -1;
		secs = json_number_value(json_object_get(a, "accounted_s")) -
		    json_number_value(json_object_get(b, "accounted_s"));
		util[i] = secs > 0 ? (json_number_value(json_object_get(a,
		    "busy_s")) - json_number_value(json_object_get(b,
		    "busy_s"))) / secs : 0;
	}
	return 0;
}

/* ==== The access log ==== */

/* Milliseconds since the epoch of an RFC 3339 UTC time, or -1. */
static double
rfc3339_ms(const char *s)
{
	struct tm tm;
	int ms = 0;

	memset(&tm, 0, sizeof tm);
	if (sscanf(s, "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon,
	    &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) < 6)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (double)timegm(&tm) * 1e3 + ms;
}

/* qsort order of doubles. */
static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* A growing array of doubles. */
struct vec {
	double *v;
	size_t n, cap;
};

static void
vec_add(struct vec *a, double x)
{
	if (a->n == a->cap) {
		a->cap = a->cap ? a->cap * 2 : 256;
		if ((a->v = realloc(a->v, a->cap * sizeof *a->v)) == NULL)
			abort();
	}
	a->v[a->n++] = x;
}

/* {"p50", "p90", "p99"} of a (sorted here), or null when empty. */
static json_t *
percentiles(struct vec *a)
{
	if (a->n == 0)
		return json_null();
	qsort(a->v, a->n, sizeof *a->v, cmp_double);
	return json_pack("{s:f,s:f,s:f}", "p50",
	    sy_exp_quantile(a->v, a->n, 0.5), "p90",
	    sy_exp_quantile(a->v, a->n, 0.9), "p99",
	    sy_exp_quantile(a->v, a->n, 0.99));
}

/* What a run's access log says of one model. */
struct model_acc {
	char *name;
	double requests, errors, prompt, completion, cost;
	int priced;		/* some line had a cost */
	struct vec ttft, latency, itl, tpot;
};

/*
 * Reads the access log lines of requests that arrived from t0_ms (wall
 * clock) into run: gateway cache hit ratio, mean batch size, price cost,
 * and the per-model series.
 */
static void
access_read(const char *path, double t0_ms, json_t *run)
{
	struct model_acc *m = NULL;
	size_t nm = 0, i;
	double lines = 0, hits = 0, batch_sum = 0, batches = 0, cost = 0;
	int priced = 0;
	char *line = NULL;
	size_t cap = 0;
	json_t *j, *v, *models;
	const char *name;
	FILE *f;

	if ((f = fopen(path, "r")) == NULL)
		return;
	while (getline(&line, &cap, f) > 0) {
		if ((j = json_loads(line, 0, NULL)) == NULL)
			continue;
		v = json_object_get(j, "time");
		if (!json_is_string(v) || rfc3339_ms(json_string_value(v)) <
		    t0_ms || json_object_get(j, "route") == NULL) {
			json_decref(j);
			continue;
		}
		lines++;
		v = json_object_get(j, "cache");
		hits += json_is_string(v) && (strcmp(json_string_value(v),
		    "hit") == 0 || strcmp(json_string_value(v),
		    "coalesced") == 0);
		if (json_is_number(v = json_object_get(j, "batch_size")))
			batch_sum += json_number_value(v), batches++;
		if (json_is_number(v = json_object_get(j, "cost_usd")))
			cost += json_number_value(v), priced = 1;
		v = json_object_get(j, "model");
		name = json_is_string(v) ? json_string_value(v) : "(none)";
		for (i = 0; i < nm && strcmp(m[i].name, name) != 0; i++)
			;
		if (i == nm) {
			if ((m = realloc(m, ++nm * sizeof *m)) == NULL)
				abort();
			memset(&m[i], 0, sizeof m[i]);
			if ((m[i].name = strdup(name)) == NULL)
				abort();
		}
		m[i].requests++;
		v = json_object_get(j, "status");
		if (json_integer_value(v) < 200 || json_integer_value(v) > 299)
			m[i].errors++;
		m[i].prompt += json_number_value(json_object_get(j,
		    "prompt_tokens"));
		m[i].completion += json_number_value(json_object_get(j,
		    "completion_tokens"));
		if (json_is_number(v = json_object_get(j, "cost_usd")))
			m[i].cost += json_number_value(v), m[i].priced = 1;
		if (json_is_number(v = json_object_get(j, "ttft_ms")))
			vec_add(&m[i].ttft, json_number_value(v));
		if (json_is_number(v = json_object_get(j, "latency_ms")))
			vec_add(&m[i].latency, json_number_value(v));
		if (json_is_number(v = json_object_get(j, "itl_ms")))
			vec_add(&m[i].itl, json_number_value(v));
		if (json_is_number(v = json_object_get(j, "tpot_ms")))
			vec_add(&m[i].tpot, json_number_value(v));
		json_decref(j);
	}
	free(line);
	fclose(f);
	json_object_set_new(run, "gateway_requests", json_real(lines));
	json_object_set_new(run, "gateway_cache_hit_ratio", lines > 0 ?
	    json_real(hits / lines) : json_null());
	json_object_set_new(run, "batch_size_mean", batches > 0 ?
	    json_real(batch_sum / batches) : json_null());
	json_object_set_new(run, "price_usd", priced ? json_real(cost) :
	    json_null());
	models = json_object();
	for (i = 0; i < nm; i++) {
		json_object_set_new(models, m[i].name, json_pack(
		    "{s:f,s:f,s:f,s:f,s:o,s:o,s:o,s:o,s:o}", "requests",
		    m[i].requests,
		    "errors", m[i].errors, "prompt_tokens", m[i].prompt,
		    "completion_tokens", m[i].completion, "cost_usd",
		    m[i].priced ? json_real(m[i].cost) : json_null(),
		    "ttft_ms", percentiles(&m[i].ttft),
		    "latency_ms", percentiles(&m[i].latency), "itl_ms",
		    percentiles(&m[i].itl), "tpot_ms",
		    percentiles(&m[i].tpot)));
		free(m[i].name);
		free(m[i].ttft.v);
		free(m[i].latency.v);
		free(m[i].itl.v);
		free(m[i].tpot.v);
	}
	free(m);
	json_object_set_new(run, "models", models);
}

/*
 * Reads sy-load's per-request CSV: the TTFT (streams) and latency of ok
 * requests, as CDF_POINTS quantiles each into run.
 */
static void
csv_read(const char *path, json_t *run)
{
	struct vec ttft = { 0 }, lat = { 0 };
	char *line = NULL, *f[17], *p;
	size_t cap = 0;
	json_t *a;
	FILE *fp;
	int i, k;

	if ((fp = fopen(path, "r")) == NULL)
		return;
	while (getline(&line, &cap, fp) > 0) {
		if (strncmp(line, "id,", 3) == 0 || strchr(line, '"') != NULL)
			continue;
		for (k = 0, p = line; k < 17 && p != NULL; k++) {
			f[k] = p;
			if ((p = strchr(p, ',')) != NULL)
				*p++ = '\0';
		}
		if (k < 17 || f[5][0] != '\0')
			continue;
		vec_add(&lat, atof(f[7]));
		if (atoi(f[3]) == 1 && atoi(f[10]) > 0)
			vec_add(&ttft, atof(f[6]));
	}
	free(line);
	fclose(fp);
	for (k = 0; k < 2; k++) {
		struct vec *v = k == 0 ? &ttft : &lat;

		a = json_array();
		if (v->n > 0) {
			qsort(v->v, v->n, sizeof *v->v, cmp_double);
			for (i = 0; i < CDF_POINTS; i++)
				json_array_append_new(a, json_real(
				    sy_exp_quantile(v->v, v->n,
				    (double)i / (CDF_POINTS - 1))));
		}
		json_object_set_new(run, k == 0 ? "ttft_cdf_ms" :
		    "latency_cdf_ms", a);
		free(v->v);
	}
}

/* Joins a, "/" and b into buf; exits when the path is too long. */
static void
join(char *buf, size_t size, const char *a, const char *b)
{
	if ((size_t)snprintf(buf, size, "%s/%s", a, b) >= size) {
		fprintf(stderr, "sy-load: %s/%s: path too long\n", a, b);
		exit(SY_LOAD_EXIT_FAIL);
	}
}

/* ==== One run ==== */

/* Where the runner's programs and outputs are. */
struct ctx {
	const struct sy_exp *e;
	const char *out;
	char runs[PATH_MAX];
	char self[PATH_MAX];
	char switchyard[PATH_MAX];
	char sim[PATH_MAX];
	char spec[PATH_MAX];
	int quiet, tty;
	size_t done, total;
	double t_start;
	double run_s;		/* expected seconds of one run */
	int port_base;		/* 0: free ports per run */
	size_t shown_run;	/* the progress line last shown */
	long shown_tick;
};

/*
 * Prints the progress line: on a terminal each second, rewritten in
 * place; else once per run.
 */
static void
progress(struct ctx *c, const char *variant, const char *load,
    unsigned rep, double elapsed)
{
	double left, eta;
	long tick = c->tty ? (long)elapsed : 0;

	if (c->quiet || (c->shown_run == c->done + 1 && c->shown_tick == tick))
		return;
	c->shown_run = c->done + 1;
	c->shown_tick = tick;
	left = (double)(c->total - c->done) * c->run_s - elapsed;
	eta = left > 0 ? left : 0;
	fprintf(stderr, "%s[%zu/%zu] %s, %s, repeat %u/%u: %.0f s of ~%.0f s,"
	    " ETA %d:%02d%s", c->tty ? "\r\033[K" : "", c->done + 1, c->total,
	    variant, load, rep + 1, c->e->repeats, elapsed, c->run_s,
	    (int)eta / 60, (int)eta % 60, c->tty ? "" : "\n");
	fflush(stderr);
}

/* The figures a run's sy-load summary gives, into run. */
static void
load_figures(const json_t *s, json_t *run)
{
	static const char *const keys[] = { "ttft_ms", "itl_ms",
	    "latency_ms" };
	json_t *req = json_object_get(s, "requests"), *st, *tok;
	double ok, failed, dropped;
	size_t i;

	ok = json_number_value(json_object_get(req, "ok"));
	failed = json_number_value(json_object_get(req, "failed"));
	dropped = json_number_value(json_object_get(req, "dropped"));
	tok = json_object_get(s, "tokens");
	json_object_set_new(run, "seconds", json_real(json_number_value(
	    json_object_get(s, "duration_s"))));
	json_object_set_new(run, "requests_ok", json_real(ok));
	json_object_set_new(run, "requests_failed", json_real(failed));
	json_object_set_new(run, "requests_dropped", json_real(dropped));
	json_object_set_new(run, "error_ratio", json_real(ok + failed +
	    dropped > 0 ? (failed + dropped) / (ok + failed + dropped) : 0));
	json_object_set(run, "errors", json_object_get(s, "errors"));
	json_object_set_new(run, "rps", json_real(json_number_value(
	    json_object_get(s, "throughput_rps"))));
	json_object_set_new(run, "goodput_rps", json_real(json_number_value(
	    json_object_get(s, "goodput_rps"))));
	json_object_set_new(run, "output_tps", json_real(json_number_value(
	    json_object_get(s, "output_tokens_per_s"))));
	json_object_set_new(run, "tokens", json_pack("{s:f,s:f}", "prompt",
	    json_number_value(json_object_get(tok, "prompt")), "completion",
	    json_number_value(json_object_get(tok, "completion"))));
	for (i = 0; i < 3; i++) {
		st = json_object_get(s, keys[i]);
		json_object_set_new(run, keys[i], json_number_value(
		    json_object_get(st, "count")) > 0 ? json_pack(
		    "{s:f,s:f,s:f,s:f}", "mean", json_number_value(
		    json_object_get(st, "mean")), "p50", json_number_value(
		    json_object_get(st, "p50")), "p90", json_number_value(
		    json_object_get(st, "p90")), "p99", json_number_value(
		    json_object_get(st, "p99"))) : json_null());
	}
}

/*
 * The fleet's figures of a run into run: per replica requests, tokens and
 * utilisation; prefix-cache hit ratio; balance; hourly cost and energy.
 */
static void
fleet_figures(const struct ctx *c, const struct sim_counts *before,
    const struct sim_counts *after, const double *busy, unsigned samples,
    json_t *run)
{
	const struct sy_exp *e = c->e;
	json_t *reps = json_array();
	double secs, tokens, prompt = 0, cached = 0, usd_h = 0, joules = 0;
	double rmax = 0, rmin = INFINITY, util, r;
	int power = 0;
	size_t i;

	secs = json_number_value(json_object_get(run, "seconds"));
	tokens = json_number_value(json_object_get(json_object_get(run,
	    "tokens"), "prompt")) + json_number_value(json_object_get(
	    json_object_get(run, "tokens"), "completion"));
	for (i = 0; i < e->nreps; i++) {
		r = after[i].llm_requests - before[i].llm_requests;
		util = samples > 0 ? busy[i] / samples : 0;
		if (util > 1)
			util = 1;
		prompt += after[i].prompt_tokens - before[i].prompt_tokens;
		cached += after[i].cached_tokens - before[i].cached_tokens;
		usd_h += e->reps[i].cost_per_hour;
		if (e->reps[i].power_watts > 0 && samples > 0) {
			power = 1;
			joules += sy_exp_joules(e->reps[i].power_watts,
			    e->idle_power_share, util, secs);
		}
		rmax = r > rmax ? r : rmax;
		rmin = r < rmin ? r : rmin;
		json_array_append_new(reps, json_pack("{s:s,s:f,s:o,s:f,s:f}",
		    "name", e->reps[i].name, "requests", r, "utilization",
		    samples > 0 ? json_real(util) : json_null(),
		    "prompt_tokens", after[i].prompt_tokens -
		    before[i].prompt_tokens, "completion_tokens",
		    after[i].completion_tokens - before[i].completion_tokens));
	}
	json_object_set_new(run, "replicas", reps);
	json_object_set_new(run, "prefix_cache_hit_ratio", prompt > 0 ?
	    json_real(cached / prompt) : json_null());
	json_object_set_new(run, "replica_max_min", rmin > 0 ?
	    json_real(rmax / rmin) : json_null());
	json_object_set_new(run, "fleet_usd", json_real(usd_h * secs / 3600));
	r = sy_exp_usd_per_mtok(usd_h, secs, tokens);
	json_object_set_new(run, "usd_per_mtok_hourly", r >= 0 ?
	    json_real(r) : json_null());
	json_object_set_new(run, "joules", power ? json_real(joules) :
	    json_null());
	json_object_set_new(run, "tokens_per_joule", power && joules > 0 ?
	    json_real(tokens / joules) : json_null());
}

/* Sum of key over the endpoints of an /admin/stats "hourly" object. */
static double
hourly_sum(const json_t *stats, const char *key)
{
	json_t *eps = json_object_get(json_object_get(stats, "hourly"),
	    "endpoints"), *ep;
	const char *name;
	double sum = 0;

	json_object_foreach(eps, name, ep)
		sum += json_number_value(json_object_get(ep, key));
	return sum;
}

/*
 * The gateway's own self-hosted accounting over the measured window (its
 * /admin/stats before and after): cost, energy, and per token.
 */
static void
gateway_hourly(const json_t *before, const json_t *after, json_t *run)
{
	double tokens, usd, joules;
	int any = json_object_size(json_object_get(json_object_get(after,
	    "hourly"), "endpoints")) > 0;

	tokens = json_number_value(json_object_get(json_object_get(run,
	    "tokens"), "prompt")) + json_number_value(json_object_get(
	    json_object_get(run, "tokens"), "completion"));
	usd = hourly_sum(after, "cost_usd") - hourly_sum(before, "cost_usd");
	joules = hourly_sum(after, "energy_joules") -
	    hourly_sum(before, "energy_joules");
	json_object_set_new(run, "gateway_hourly_usd", any ? json_real(usd) :
	    json_null());
	json_object_set_new(run, "usd_per_mtok_gateway", any && tokens > 0 ?
	    json_real(usd / tokens * 1e6) : json_null());
	json_object_set_new(run, "gateway_joules", any && joules > 0 ?
	    json_real(joules) : json_null());
}

/* $/1M tokens from the gateway's prices, and the basis the report uses. */
static void
cost_figures(const struct ctx *c, json_t *run)
{
	json_t *usd = json_object_get(run, "price_usd");
	double tokens;

	tokens = json_number_value(json_object_get(json_object_get(run,
	    "tokens"), "prompt")) + json_number_value(json_object_get(
	    json_object_get(run, "tokens"), "completion"));
	json_object_set_new(run, "usd_per_mtok_prices", json_is_number(usd) &&
	    tokens > 0 ? json_real(json_number_value(usd) / tokens * 1e6) :
	    json_null());
	json_object_set(run, "usd_per_mtok", json_object_get(run,
	    c->e->cost_basis == SY_EXP_COST_PRICES ? "usd_per_mtok_prices" :
	    c->e->cost_basis == SY_EXP_COST_GATEWAY ? "usd_per_mtok_gateway" :
	    "usd_per_mtok_hourly"));
}

/* Builds the argv of the sy-load child of a run into argv (strings in buf). */
static void
load_argv(const struct ctx *c, const struct sy_exp_load *l, int port,
    const char *json, const char *csv, char **argv, char buf[][PATH_MAX])
{
	const struct sy_exp *e = c->e;
	int n = 0, b = 0;

#define ARG(...) do { snprintf(buf[b], PATH_MAX, __VA_ARGS__); \
	argv[n++] = buf[b++]; } while (0)
	ARG("%s", c->self);
	ARG("--url");
	ARG("http://127.0.0.1:%d/v1", port);
	ARG("--spec");
	ARG("%s", c->spec);
	ARG(l->closed ? "--concurrency" : "--rate");
	ARG("%g", l->value);
	ARG("--duration");
	ARG("%g", e->duration_s);
	if (e->requests > 0) {
		ARG("--requests");
		ARG("%.0f", e->requests);
	}
	ARG("--warmup");
	ARG("%g", e->warmup_s);
	ARG("--timeout");
	ARG("%g", e->timeout_s);
	if (e->slo_ttft_ms > 0) {
		ARG("--slo-ttft");
		ARG("%g", e->slo_ttft_ms);
	}
	if (e->slo_itl_ms > 0) {
		ARG("--slo-itl");
		ARG("%g", e->slo_itl_ms);
	}
	if (e->slo_latency_ms > 0) {
		ARG("--slo-latency");
		ARG("%g", e->slo_latency_ms);
	}
	ARG("--quiet");
	ARG("--json");
	ARG("%s", json);
	ARG("--csv");
	ARG("%s", csv);
#undef ARG
	argv[n] = NULL;
}

/* Wall clock in milliseconds since the epoch. */
static double
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/*
 * Runs variant vi under load li, repeat rep: fresh fleet and gateway,
 * sy-load, the figures.  Returns the run record, or NULL (printed, or
 * stopped by a signal).
 */
static json_t *
run_one(struct ctx *c, size_t vi, size_t li, unsigned rep)
{
	const struct sy_exp *e = c->e;
	const json_t *variant = json_array_get(e->variants, vi);
	const char *vname = json_string_value(json_object_get(variant,
	    "name"));
	const struct sy_exp_load *l = &e->loads[li];
	struct proc sim = { 0 }, gw = { 0 }, load = { 0 };
	struct sim_counts *before = NULL, *after = NULL;
	double *busy = NULL, t0, t_measure, t_end, t0_wall = 0, next_sample;
	char tag[64], p_fleet[PATH_MAX], p_gw[PATH_MAX], p_acc[PATH_MAX];
	char p_json[PATH_MAX], p_csv[PATH_MAX], p_log[PATH_MAX];
	char args[40][PATH_MAX], *argv[40], *body;
	json_t *cfg, *run = NULL, *summary, *gw_before = NULL;
	unsigned samples = 0;
	int base, sim_port, listen_port, admin_port, measuring = 0;
	size_t n = e->nreps, nsim;

	snprintf(tag, sizeof tag, "v%zu-l%zu-r%u", vi, li, rep);
	nsim = e->external ? 0 : n;
	base = c->port_base;
	if (base == 0 && (base = free_ports((int)nsim + 2)) < 0) {
		fprintf(stderr, "sy-load: no %zu free ports\n", nsim + 2);
		return NULL;
	}
	sim_port = base;
	listen_port = base + (int)nsim;
	admin_port = base + (int)nsim + 1;
#define RUNFILE(buf, suffix) do { char f_[96]; \
	snprintf(f_, sizeof f_, "%s.%s", tag, suffix); \
	join(buf, sizeof buf, c->runs, f_); } while (0)
	RUNFILE(p_fleet, "fleet.json");
	RUNFILE(p_gw, "switchyard.json");
	RUNFILE(p_acc, "access.log");
	RUNFILE(p_json, "load.json");
	RUNFILE(p_csv, "load.csv");
	unlink(p_acc);

	if (!e->external) {
		cfg = sy_exp_fleet_config(e, sim_port);
		if (dump(cfg, p_fleet) < 0) {
			json_decref(cfg);
			return NULL;
		}
		json_decref(cfg);
	}
	cfg = sy_exp_gateway_config(e, variant, listen_port, admin_port,
	    sim_port, p_acc);
	if (dump(cfg, p_gw) < 0) {
		json_decref(cfg);
		return NULL;
	}
	json_decref(cfg);

	before = calloc(n, sizeof *before);
	after = calloc(n, sizeof *after);
	busy = calloc(n, sizeof *busy);
	if (before == NULL || after == NULL || busy == NULL)
		abort();

	RUNFILE(p_log, "sy-sim.log");
	argv[0] = c->sim, argv[1] = "--config", argv[2] = p_fleet;
	argv[3] = "--quiet", argv[4] = NULL;
	if (!e->external && (proc_start(&sim, "sy-sim", argv, p_log) < 0 ||
	    wait_ready(&sim, sim_port, "/sim/stats") < 0))
		goto out;
	for (size_t i = 1; i < nsim; i++)
		if (wait_ready(&sim, sim_port + (int)i, "/sim/stats") < 0)
			goto out;
	RUNFILE(p_log, "switchyard.log");
	argv[0] = c->switchyard, argv[1] = "-c", argv[2] = p_gw;
	argv[3] = NULL;
	if (proc_start(&gw, "switchyard", argv, p_log) < 0 ||
	    wait_ready(&gw, admin_port, "/healthz") < 0)
		goto out;
	/* The scrapes of backends with metrics: a few before the load. */
	nap(0.3);

	load_argv(c, l, listen_port, p_json, p_csv, argv, args);
	RUNFILE(p_log, "sy-load.log");
	if (proc_start(&load, "sy-load", argv, p_log) < 0)
		goto out;
	t0 = now_s();
	t_measure = t0 + e->warmup_s;
	t_end = t_measure + e->duration_s;
	next_sample = t_measure;
	while (proc_alive(&load)) {
		double t = now_s();

		if (stop_flag)
			goto out;
		if (!measuring && t >= t_measure) {
			if (!e->external &&
			    sim_read(e, sim_port, before, NULL) < 0) {
				proc_blame(&sim, "stopped answering");
				goto out;
			}
			t0_wall = wall_ms();
			gw_before = http_json(admin_port, "/admin/stats");
			measuring = 1;
		}
		if (measuring && !e->external && t >= next_sample &&
		    t < t_end) {
			if (sim_read(e, sim_port, NULL, busy) == 0)
				samples++;
			next_sample += SAMPLE_S;
		}
		if (t > t_end + e->timeout_s + 10) {
			proc_blame(&load, "did not finish in time");
			goto out;
		}
		progress(c, vname, l->label, rep, t - t0);
		nap(0.05);
	}
	if (!WIFEXITED(load.status) || WEXITSTATUS(load.status) != 0) {
		proc_blame(&load, "failed");
		goto out;
	}
	if (!measuring) {
		/* It ended within the warm-up (a --requests bound). */
		t0_wall = wall_ms();
		memset(before, 0, n * sizeof *before);
	}
	if (!e->external && sim_read(e, sim_port, after, NULL) < 0) {
		proc_blame(&sim, "stopped answering");
		goto out;
	}
	if ((summary = json_load_file(p_json, 0, NULL)) == NULL) {
		fprintf(stderr, "\nsy-load: %s: not sy-load's JSON\n", p_json);
		goto out;
	}
	run = json_pack("{s:s,s:i,s:s,s:i,s:s,s:f,s:i}", "variant", vname,
	    "variant_index", (int)vi, "load", l->label, "load_index", (int)li,
	    "mode", l->closed ? "concurrency" : "rate", "offered", l->value,
	    "repeat", (int)rep);
	load_figures(summary, run);
	json_decref(summary);
	if (e->external) {
		json_t *gw_after = http_json(admin_port, "/admin/stats");

		gateway_counts(e, gw_before, before);
		gateway_counts(e, gw_after, after);
		if (gateway_busy(e, gw_before, gw_after, busy) == 0)
			samples = 1;
		json_decref(gw_after);
	}
	fleet_figures(c, before, after, busy, samples, run);

	if (http_get(admin_port, "/metrics", &body) == 200 && body != NULL) {
		FILE *f;

		RUNFILE(p_log, "metrics.txt");
		if ((f = fopen(p_log, "w")) != NULL) {
			fputs(body, f);
			fclose(f);
		}
	}
	free(body);
	json_object_set_new(run, "gateway_stats", http_json(admin_port,
	    "/admin/stats"));
	if (json_object_get(run, "gateway_stats") == NULL)
		json_object_set_new(run, "gateway_stats", json_null());
	gateway_hourly(gw_before, json_object_get(run, "gateway_stats"), run);
	/* Stopped first, so that every access log line is written. */
	proc_stop(&gw);
	access_read(p_acc, t0_wall - 1, run);
	cost_figures(c, run);
	csv_read(p_csv, run);
	json_object_set_new(run, "tag", json_string(tag));
#undef RUNFILE
out:
	proc_stop(&load);
	proc_stop(&gw);
	proc_stop(&sim);
	free(before);
	free(after);
	free(busy);
	json_decref(gw_before);
	return run;
}

/* ==== The command ==== */

/* Makes dir (and its parents); 0 or -1 (printed). */
static int
make_dir(const char *dir)
{
	char p[PATH_MAX], *s;

	snprintf(p, sizeof p, "%s", dir);
	for (s = p + 1; *s != '\0'; s++)
		if (*s == '/') {
			*s = '\0';
			mkdir(p, 0755);
			*s = '/';
		}
	if (mkdir(p, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "sy-load: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * Prints what e would run: its runs and the longest they may take (each
 * run's warm-up, measured time and the start and stop of its processes;
 * a request still in flight may add up to timeout_s).
 */
static void
print_plan(const struct sy_exp *e)
{
	size_t nv = json_array_size(e->variants), runs;
	double each = e->warmup_s + e->duration_s + 1.5;

	runs = nv * e->nloads * e->repeats;
	printf("%s: %s\n%zu variants x %zu loads x %u repeats = %zu runs of "
	    "about %.1f s: about %.0f s in all%s\n", e->path, e->title, nv,
	    e->nloads, e->repeats, runs, each, (double)runs * each,
	    e->sweep ? " (a sweep may stop sooner)" : "");
}

/* Finds switchyard and sy-sim in bin (default: beside this program). */
static int
find_programs(struct ctx *c, const char *bin)
{
	char dir[PATH_MAX];
	ssize_t n;

	n = readlink("/proc/self/exe", c->self, sizeof c->self - 1);
	if (n <= 0) {
		fprintf(stderr, "sy-load: cannot find its own program\n");
		return -1;
	}
	c->self[n] = '\0';
	if (bin == NULL) {
		snprintf(dir, sizeof dir, "%s", c->self);
		*strrchr(dir, '/') = '\0';
		bin = dir;
	}
	join(c->switchyard, sizeof c->switchyard, bin, "switchyard");
	join(c->sim, sizeof c->sim, bin, "sy-sim");
	if (access(c->switchyard, X_OK) < 0 || access(c->sim, X_OK) < 0) {
		fprintf(stderr, "sy-load: %s: no switchyard and sy-sim there "
		    "(give --bin-dir)\n", bin);
		return -1;
	}
	return 0;
}

int
sy_load_experiment_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "out", required_argument, NULL, 'o' },
		{ "bin-dir", required_argument, NULL, 'b' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "ports", required_argument, NULL, 'p' },
		{ "check", no_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct sigaction sa;
	struct sy_exp e;
	struct ctx c;
	const char *bin = NULL;
	json_t *runs, *run;
	char *err = NULL;
	int *broken;
	size_t vi, li;
	unsigned rep;
	int ch, failed = 0, check = 0;

	memset(&c, 0, sizeof c);
	optind = 1;
	while ((ch = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
		switch (ch) {
		case 'o': c.out = optarg; break;
		case 'b': bin = optarg; break;
		case 'q': c.quiet = 1; break;
		case 'c': check = 1; break;
		case 'p':
			c.port_base = atoi(optarg);
			if (c.port_base < 1 || c.port_base > 65000) {
				fprintf(stderr, "sy-load experiment: --ports: "
				    "expected a port from 1 to 65000\n");
				return SY_LOAD_EXIT_USAGE;
			}
			break;
		case 'h':
			fputs(usage_text, stdout);
			return SY_LOAD_EXIT_OK;
		default:
			fputs(usage_text, stderr);
			return SY_LOAD_EXIT_USAGE;
		}
	}
	if (optind != argc - 1 || (c.out == NULL && !check)) {
		fprintf(stderr, "sy-load experiment: give one experiment file "
		    "and -o DIR\n");
		fputs(usage_text, stderr);
		return SY_LOAD_EXIT_USAGE;
	}
	if (sy_exp_read(&e, argv[optind], &err) < 0) {
		fprintf(stderr, "sy-load: %s\n", err != NULL ? err :
		    argv[optind]);
		free(err);
		sy_exp_free(&e);
		return SY_LOAD_EXIT_USAGE;
	}
	c.e = &e;
	if (check) {
		print_plan(&e);
		sy_exp_free(&e);
		return SY_LOAD_EXIT_OK;
	}
	if (c.port_base > 0 && c.port_base + (int)(e.external ? 0 : e.nreps) +
	    1 > 65535) {
		fprintf(stderr, "sy-load experiment: --ports %d: the %zu "
		    "ports from it go beyond 65535\n", c.port_base,
		    (e.external ? 0 : e.nreps) + 2);
		sy_exp_free(&e);
		return SY_LOAD_EXIT_USAGE;
	}
	join(c.runs, sizeof c.runs, c.out, "runs");
	join(c.spec, sizeof c.spec, c.runs, "workload.json");
	if (find_programs(&c, bin) < 0 || make_dir(c.out) < 0 ||
	    make_dir(c.runs) < 0 || dump(e.workload, c.spec) < 0) {
		sy_exp_free(&e);
		return SY_LOAD_EXIT_FAIL;
	}
	c.tty = isatty(2);
	c.total = json_array_size(e.variants) * e.nloads * e.repeats;
	c.run_s = e.warmup_s + e.duration_s + 1.5;
	c.t_start = now_s();
	srandom((unsigned)getpid() ^ (unsigned)time(NULL));

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_stop;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	runs = json_array();
	broken = calloc(json_array_size(e.variants), sizeof *broken);
	if (broken == NULL)
		abort();
	for (li = 0; li < e.nloads && !stop_flag && !failed; li++)
		for (vi = 0; vi < json_array_size(e.variants) && !stop_flag &&
		    !failed; vi++) {
			/* A sweep goes no further once over the SLO. */
			if (broken[vi]) {
				c.total -= e.repeats;
				continue;
			}
			for (rep = 0; rep < e.repeats && !stop_flag &&
			    !failed; rep++) {
				run = run_one(&c, vi, li, rep);
				if (run == NULL) {
					failed = !stop_flag;
					break;
				}
				json_array_append_new(runs, run);
				c.done++;
			}
			broken[vi] = e.sweep && !failed && !stop_flag &&
			    !sy_exp_meets_slo(&e, runs, vi, li);
		}
	free(broken);
	if (!c.quiet && c.tty)
		fputs("\r\033[K", stderr);
	if (stop_flag)
		fprintf(stderr, "sy-load: stopped; the report has the %zu runs "
		    "done of %zu\n", c.done, c.total);
	if (sy_exp_report(&e, runs, c.done == c.total, c.out) < 0)
		failed = 1;
	else if (!c.quiet)
		fprintf(stderr, "sy-load: %zu runs in %.0f s; report in "
		    "%s/report.html\n", c.done, now_s() - c.t_start, c.out);
	json_decref(runs);
	sy_exp_free(&e);
	return stop_flag ? 130 : failed ? SY_LOAD_EXIT_FAIL : SY_LOAD_EXIT_OK;
}
