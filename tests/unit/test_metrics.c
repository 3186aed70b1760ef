/* Unit tests of the metrics shards and their Prometheus and JSON output. */
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "config.h"
#include "metrics.h"
#include "record.h"
#include "sy_test.h"

/* A non-streamed record via endpoint: 10 + 5 tokens, no price, 5 ms. */
static struct sy_record
rec(const char *route, const char *endpoint, int status)
{
	struct sy_record r;

	memset(&r, 0, sizeof r);
	r.route = route;
	r.endpoint = endpoint;
	r.model = "m";
	r.status = status;
	r.usage.prompt_tokens = 10;
	r.usage.completion_tokens = 5;
	r.usage.cached_tokens = -1;
	r.cost_usd = -1;
	r.ttft_us = -1;
	r.latency_us = 5000;
	r.upstream_us = 4000;
	r.overhead_us = 1000;
	return r;
}

/* The Prometheus text of m as a NUL-terminated string; caller frees. */
static char *
prom_text(struct sy_metrics *m, const struct sy_config *cfg)
{
	struct evbuffer *b = evbuffer_new();
	size_t len;
	char *s;

	sy_metrics_prometheus(m, cfg, b);
	len = evbuffer_get_length(b);
	s = malloc(len + 1);
	evbuffer_remove(b, s, len);
	s[len] = '\0';
	evbuffer_free(b);
	return s;
}

/* The value of the sample line that starts with key and a space, or NAN. */
static double
sample(const char *text, const char *key)
{
	size_t klen = strlen(key);
	const char *p = text;

	while (p != NULL && *p != '\0') {
		if (strncmp(p, key, klen) == 0 && p[klen] == ' ')
			return strtod(p + klen + 1, NULL);
		if ((p = strchr(p, '\n')) != NULL)
			p++;
	}
	printf("# no sample %s\n", key);
	return NAN;
}

/* Runs `promtool check metrics` on text; its exit status (0: clean). */
static int
promtool_check(const char *text)
{
	char path[] = "/tmp/sy-test-metrics-XXXXXX", cmd[256];
	FILE *f;
	int fd, rc;

	if ((fd = mkstemp(path)) == -1 || (f = fdopen(fd, "w")) == NULL)
		return -1;
	fputs(text, f);
	fclose(f);
	snprintf(cmd, sizeof cmd, "promtool check metrics < %s 1>&2", path);
	rc = system(cmd);
	unlink(path);
	if (rc != 0)
		printf("# promtool check metrics: status %d\n", rc);
	return rc;
}

/* |got - want| ≤ tol × want. */
static int
near(double got, double want, double tol)
{
	return fabs(got - want) <= tol * want;
}

/* The value at a slash-separated path in root ("routes/chat"), or NULL. */
static json_t *
jget(json_t *root, const char *path)
{
	char buf[256], *key, *save = NULL;

	snprintf(buf, sizeof buf, "%s", path);
	for (key = strtok_r(buf, "/", &save); key != NULL && root != NULL;
	    key = strtok_r(NULL, "/", &save))
		root = json_object_get(root, key);
	return root;
}

/* The integer at the path made from path_fmt, or -1 when there is none. */
static json_int_t
jint(json_t *root, const char *path_fmt, ...)
    __attribute__((format(printf, 2, 3)));

static json_int_t
jint(json_t *root, const char *path_fmt, ...)
{
	char path[256];
	va_list ap;
	json_t *v;

	va_start(ap, path_fmt);
	vsnprintf(path, sizeof path, path_fmt, ap);
	va_end(ap);
	if (!json_is_integer(v = jget(root, path))) {
		printf("# no integer at %s\n", path);
		return -1;
	}
	return json_integer_value(v);
}

static double
jreal(json_t *root, const char *path)
{
	json_t *v = jget(root, path);

	if (!json_is_number(v)) {
		printf("# no number at %s\n", path);
		return NAN;
	}
	return json_number_value(v);
}

/* Two shards' worth of traffic on routes chat and embed. */
static void
record_two_shards(struct sy_metrics *m)
{
	struct sy_metrics_shard *s0 = sy_metrics_shard(m, 0);
	struct sy_metrics_shard *s1 = sy_metrics_shard(m, 1);
	struct sy_record r;

	r = rec("chat", "gpu-a", 200);
	r.usage.prompt_tokens = 100;
	r.usage.completion_tokens = 20;
	r.usage.cached_tokens = 40;
	r.cost_usd = 0.001;
	r.stream = 1;
	r.ttft_us = 3000;
	r.latency_us = 9000;
	r.overhead_us = 200;
	sy_metrics_record(s0, &r);
	r.stream = 0;
	r.ttft_us = -1;
	r.latency_us = 20000;
	sy_metrics_record(s0, &r);
	r = rec("chat", "gpu-b", 502);
	r.usage.prompt_tokens = -1;
	r.usage.completion_tokens = -1;
	r.latency_us = 30000;
	r.overhead_us = 200;
	sy_metrics_record(s1, &r);
	r = rec("embed", "gpu-b", 200);
	sy_metrics_record(s1, &r);
}

SY_TEST(json_merges_counts_of_two_shards)
{
	struct sy_metrics *m = sy_metrics_new(2);
	json_t *j;

	record_two_shards(m);
	j = sy_metrics_json(m, NULL);
	SY_CHECK_INT(jint(j, "routes/chat/requests"), 3);
	SY_CHECK_INT(jint(j, "routes/chat/errors"), 1);
	SY_CHECK_INT(jint(j, "routes/chat/status/200"), 2);
	SY_CHECK_INT(jint(j, "routes/chat/status/502"), 1);
	SY_CHECK_INT(json_object_size(jget(j, "routes/chat/status")), 2);
	SY_CHECK_INT(jint(j, "routes/embed/requests"), 1);
	SY_CHECK_INT(jint(j, "endpoints/gpu-a/requests"), 2);
	SY_CHECK_INT(jint(j, "endpoints/gpu-b/requests"), 2);
	SY_CHECK_INT(jint(j, "endpoints/gpu-b/errors"), 1);
	SY_CHECK_INT(json_object_size(jget(j, "routes")), 2);
	SY_CHECK_INT(json_object_size(jget(j, "endpoints")), 2);
	SY_CHECK(jget(j, "endpoints/gpu-a/in_flight") == NULL);
	json_decref(j);
	sy_metrics_free(m);
}

SY_TEST(json_sums_tokens_and_cost)
{
	struct sy_metrics *m = sy_metrics_new(2);
	json_t *j;

	record_two_shards(m);
	j = sy_metrics_json(m, NULL);
	SY_CHECK_INT(jint(j, "routes/chat/tokens/prompt"), 200);
	SY_CHECK_INT(jint(j, "routes/chat/tokens/completion"), 40);
	SY_CHECK_INT(jint(j, "routes/chat/tokens/cached"), 80);
	SY_CHECK_INT(jint(j, "routes/embed/tokens/prompt"), 10);
	SY_CHECK_INT(jint(j, "routes/embed/tokens/cached"), 0);
	SY_CHECK(near(jreal(j, "routes/chat/cost_usd"), 0.002, 1e-9));
	SY_CHECK(jreal(j, "routes/embed/cost_usd") == 0);
	SY_CHECK(near(jreal(j, "endpoints/gpu-a/cost_usd"), 0.002, 1e-9));
	json_decref(j);
	sy_metrics_free(m);
}

SY_TEST(json_gives_quantiles_in_ms)
{
	struct sy_metrics *m = sy_metrics_new(2);
	json_t *j;

	record_two_shards(m);
	j = sy_metrics_json(m, NULL);
	SY_CHECK(near(jreal(j, "routes/chat/latency_ms/p50"), 20.0, 0.0625));
	SY_CHECK(near(jreal(j, "routes/chat/latency_ms/p99"), 30.0, 0.0625));
	SY_CHECK(near(jreal(j, "routes/chat/latency_ms/p90"), 30.0, 0.0625));
	SY_CHECK(near(jreal(j, "routes/chat/ttft_ms/p50"), 3.0, 0.0625));
	SY_CHECK(near(jreal(j, "routes/chat/overhead_ms/p90"), 0.2, 0.0625));
	SY_CHECK(json_is_null(jget(j, "routes/embed/ttft_ms")));
	json_decref(j);
	sy_metrics_free(m);
}

SY_TEST(record_without_route_counts_under_dash)
{
	struct sy_metrics *m = sy_metrics_new(1);
	struct sy_record r = rec(NULL, NULL, 404);
	char *text;
	json_t *j;

	sy_metrics_record(sy_metrics_shard(m, 0), &r);
	j = sy_metrics_json(m, NULL);
	SY_CHECK_INT(jint(j, "routes/-/requests"), 1);
	SY_CHECK_INT(jint(j, "routes/-/status/404"), 1);
	SY_CHECK_INT(json_object_size(jget(j, "endpoints")), 0);
	text = prom_text(m, NULL);
	SY_CHECK(sample(text,
	    "switchyard_requests_total{route=\"-\",code=\"404\"}") == 1);
	SY_CHECK(strstr(text, "switchyard_endpoint_requests_total{") == NULL);
	free(text);
	json_decref(j);
	sy_metrics_free(m);
}

SY_TEST(errors_count_statuses_from_400)
{
	static const int codes[] = { 200, 304, 399, 400, 404, 429, 500, 503 };
	struct sy_metrics *m = sy_metrics_new(1);
	struct sy_record r;
	json_t *j;
	size_t i;

	for (i = 0; i < sizeof codes / sizeof codes[0]; i++) {
		r = rec("chat", "e", codes[i]);
		sy_metrics_record(sy_metrics_shard(m, 0), &r);
	}
	j = sy_metrics_json(m, NULL);
	SY_CHECK_INT(jint(j, "routes/chat/requests"), 8);
	SY_CHECK_INT(jint(j, "routes/chat/errors"), 5);
	SY_CHECK_INT(jint(j, "endpoints/e/errors"), 5);
	SY_CHECK_INT(jint(j, "routes/chat/status/429"), 1);
	SY_CHECK_INT(json_object_size(jget(j, "routes/chat/status")), 8);
	json_decref(j);
	sy_metrics_free(m);
}

SY_TEST(ttft_counts_only_streams)
{
	struct sy_metrics *m = sy_metrics_new(1);
	struct sy_record r = rec("chat", "e", 200);
	char *text;

	r.ttft_us = 7000;
	sy_metrics_record(sy_metrics_shard(m, 0), &r);	/* not a stream */
	r.stream = 1;
	sy_metrics_record(sy_metrics_shard(m, 0), &r);
	r.ttft_us = -1;
	sy_metrics_record(sy_metrics_shard(m, 0), &r);	/* stream, no byte */
	text = prom_text(m, NULL);
	SY_CHECK(sample(text,
	    "switchyard_ttft_seconds_count{route=\"chat\"}") == 1);
	SY_CHECK(sample(text,
	    "switchyard_ttft_seconds_sum{route=\"chat\"}") == 0.007);
	SY_CHECK(sample(text,
	    "switchyard_endpoint_ttft_seconds_count{endpoint=\"e\"}") == 1);
	SY_CHECK(sample(text,
	    "switchyard_request_duration_seconds_count{route=\"chat\"}") == 3);
	free(text);
	sy_metrics_free(m);
}

SY_TEST(prometheus_samples_match_the_records)
{
	struct sy_metrics *m = sy_metrics_new(2);
	char *text;

	record_two_shards(m);
	text = prom_text(m, NULL);
	SY_CHECK(sample(text,
	    "switchyard_requests_total{route=\"chat\",code=\"200\"}") == 2);
	SY_CHECK(sample(text,
	    "switchyard_requests_total{route=\"chat\",code=\"502\"}") == 1);
	SY_CHECK(sample(text,
	    "switchyard_request_errors_total{route=\"chat\"}") == 1);
	SY_CHECK(sample(text,
	    "switchyard_request_errors_total{route=\"embed\"}") == 0);
	SY_CHECK(sample(text,
	    "switchyard_tokens_total{route=\"chat\",type=\"prompt\"}") == 200);
	SY_CHECK(sample(text, "switchyard_tokens_total"
	    "{route=\"chat\",type=\"completion\"}") == 40);
	SY_CHECK(sample(text,
	    "switchyard_tokens_total{route=\"chat\",type=\"cached\"}") == 80);
	SY_CHECK(near(sample(text,
	    "switchyard_cost_usd_total{route=\"chat\"}"), 0.002, 1e-9));
	SY_CHECK(sample(text, "switchyard_request_duration_seconds_bucket"
	    "{route=\"chat\",le=\"0.005\"}") == 0);
	SY_CHECK(sample(text, "switchyard_request_duration_seconds_bucket"
	    "{route=\"chat\",le=\"0.01\"}") == 1);
	SY_CHECK(sample(text, "switchyard_request_duration_seconds_bucket"
	    "{route=\"chat\",le=\"0.025\"}") == 2);
	SY_CHECK(sample(text, "switchyard_request_duration_seconds_bucket"
	    "{route=\"chat\",le=\"0.05\"}") == 3);
	SY_CHECK(sample(text, "switchyard_request_duration_seconds_bucket"
	    "{route=\"chat\",le=\"+Inf\"}") == 3);
	SY_CHECK(sample(text, "switchyard_request_duration_seconds_sum"
	    "{route=\"chat\"}") == 0.059);
	SY_CHECK(sample(text,
	    "switchyard_request_duration_seconds_count{route=\"chat\"}") == 3);
	SY_CHECK(sample(text, "switchyard_overhead_seconds_bucket"
	    "{route=\"chat\",le=\"0.00025\"}") == 3);
	SY_CHECK(sample(text, "switchyard_overhead_seconds_bucket"
	    "{route=\"chat\",le=\"0.0001\"}") == 0);
	SY_CHECK(sample(text, "switchyard_endpoint_requests_total"
	    "{endpoint=\"gpu-b\",code=\"502\"}") == 1);
	SY_CHECK(sample(text,
	    "switchyard_endpoint_errors_total{endpoint=\"gpu-b\"}") == 1);
	SY_CHECK(sample(text, "switchyard_endpoint_tokens_total"
	    "{endpoint=\"gpu-a\",type=\"prompt\"}") == 200);
	SY_CHECK(near(sample(text, "switchyard_endpoint_cost_usd_total"
	    "{endpoint=\"gpu-a\"}"), 0.002, 1e-9));
	SY_CHECK(sample(text, "switchyard_endpoint_request_duration_seconds"
	    "_count{endpoint=\"gpu-b\"}") == 2);
	free(text);
	sy_metrics_free(m);
}

SY_TEST(prometheus_families_have_help_and_type)
{
	struct sy_metrics *m = sy_metrics_new(1);
	char *text = prom_text(m, NULL);

	SY_CHECK(strstr(text,
	    "# TYPE switchyard_requests_total counter\n") != NULL);
	SY_CHECK(strstr(text, "# HELP switchyard_requests_total ") != NULL);
	SY_CHECK(strstr(text,
	    "# TYPE switchyard_request_duration_seconds histogram\n") != NULL);
	SY_CHECK(strstr(text,
	    "# TYPE switchyard_ttft_seconds histogram\n") != NULL);
	SY_CHECK(strstr(text,
	    "# TYPE switchyard_overhead_seconds histogram\n") != NULL);
	SY_CHECK(strstr(text,
	    "# TYPE switchyard_endpoint_ttft_seconds histogram\n") != NULL);
	SY_CHECK(strstr(text, "switchyard_endpoint_in_flight") == NULL);
	free(text);
	sy_metrics_free(m);
}

/* A config with routes chat and idle and endpoints gpu-a and gpu-b. */
struct test_cfg {
	struct sy_config cfg;
	struct sy_route routes[2];
	struct sy_endpoint eps[2];
	struct sy_endpoint_stats stats[2];
};

static void
test_cfg_init(struct test_cfg *t)
{
	memset(t, 0, sizeof *t);
	t->routes[0].name = "chat";
	t->routes[1].name = "idle";
	t->eps[0].name = "gpu-a";
	t->eps[1].name = "gpu-b";
	t->eps[0].stats = &t->stats[0];
	t->eps[1].stats = &t->stats[1];
	atomic_init(&t->stats[0].in_flight, 3);
	atomic_init(&t->stats[1].in_flight, 0);
	t->cfg.routes = t->routes;
	t->cfg.nroutes = 2;
	t->cfg.endpoints = t->eps;
	t->cfg.nendpoints = 2;
}

SY_TEST(config_adds_in_flight_and_idle_series)
{
	struct sy_metrics *m = sy_metrics_new(2);
	struct test_cfg t;
	char *text;
	json_t *j;

	test_cfg_init(&t);
	record_two_shards(m);
	text = prom_text(m, &t.cfg);
	SY_CHECK(strstr(text,
	    "# TYPE switchyard_endpoint_in_flight gauge\n") != NULL);
	SY_CHECK(sample(text,
	    "switchyard_endpoint_in_flight{endpoint=\"gpu-a\"}") == 3);
	SY_CHECK(sample(text,
	    "switchyard_endpoint_in_flight{endpoint=\"gpu-b\"}") == 0);
	SY_CHECK(sample(text,
	    "switchyard_request_errors_total{route=\"idle\"}") == 0);
	j = sy_metrics_json(m, &t.cfg);
	SY_CHECK_INT(jint(j, "endpoints/gpu-a/in_flight"), 3);
	SY_CHECK_INT(jint(j, "endpoints/gpu-b/in_flight"), 0);
	SY_CHECK_INT(jint(j, "routes/idle/requests"), 0);
	SY_CHECK_INT(jint(j, "routes/embed/requests"), 1);
	json_decref(j);
	free(text);
	sy_metrics_free(m);
}

SY_TEST(promtool_accepts_the_text)
{
	struct sy_metrics *m = sy_metrics_new(2);
	struct test_cfg t;
	char *text;

	test_cfg_init(&t);
	record_two_shards(m);
	text = prom_text(m, &t.cfg);
	SY_CHECK_INT(promtool_check(text), 0);
	free(text);
	sy_metrics_free(m);
}

SY_TEST(promtool_accepts_empty_metrics)
{
	struct sy_metrics *m = sy_metrics_new(4);
	char *text = prom_text(m, NULL);

	SY_CHECK_INT(promtool_check(text), 0);
	free(text);
	sy_metrics_free(m);
}

SY_TEST(label_values_are_escaped)
{
	static const char name[] = "we\"ird\\route\nx";
	struct sy_metrics *m = sy_metrics_new(1);
	struct sy_record r = rec(name, "ep\"1", 200);
	char *text;
	json_t *j;

	sy_metrics_record(sy_metrics_shard(m, 0), &r);
	text = prom_text(m, NULL);
	SY_CHECK(sample(text, "switchyard_requests_total"
	    "{route=\"we\\\"ird\\\\route\\nx\",code=\"200\"}") == 1);
	SY_CHECK(sample(text, "switchyard_endpoint_errors_total"
	    "{endpoint=\"ep\\\"1\"}") == 0);
	SY_CHECK_INT(promtool_check(text), 0);
	j = sy_metrics_json(m, NULL);
	SY_CHECK_INT(jint(j, "routes/%s/requests", name), 1);
	json_decref(j);
	free(text);
	sy_metrics_free(m);
}

#define WRITES 100000

struct writer_arg {
	struct sy_metrics_shard *shard;
	int id;
};

static atomic_int writers_left, scrapes_done;

static void *
writer(void *arg)
{
	struct writer_arg *w = arg;
	char route[16], endpoint[16];
	struct sy_record r;
	int i;

	for (i = 0; i < WRITES; i++) {
		/* Halfway, make sure the scraper has run while we write. */
		while (i == WRITES / 2 && atomic_load(&scrapes_done) == 0)
			sched_yield();
		/* New names keep appearing while the scraper runs. */
		snprintf(route, sizeof route, "r%d", i % (1 + i / 1000 % 40));
		snprintf(endpoint, sizeof endpoint, "e%d-%d", w->id, i % 7);
		r = rec(route, endpoint, i % 10 == 0 ? 500 : 200);
		r.latency_us = (uint64_t)i;
		sy_metrics_record(w->shard, &r);
	}
	atomic_fetch_sub(&writers_left, 1);
	return NULL;
}

/* Sum of the integer member key over the members of obj. */
static json_int_t
total(json_t *obj, const char *key)
{
	json_int_t n = 0;
	const char *name;
	json_t *v;

	json_object_foreach(obj, name, v)
		n += json_integer_value(json_object_get(v, key));
	return n;
}

struct scrape_result {
	int scrapes;
	int went_back;		/* scrapes whose total was below the last one */
};

static void *
scraper(void *arg)
{
	struct sy_metrics *m = arg;
	struct scrape_result *res = calloc(1, sizeof *res);
	json_int_t last = 0, now;
	struct evbuffer *b;
	json_t *j;

	while (atomic_load(&writers_left) > 0) {
		j = sy_metrics_json(m, NULL);
		now = total(jget(j, "routes"), "requests");
		if (now < last)
			res->went_back++;
		last = now;
		json_decref(j);
		b = evbuffer_new();
		sy_metrics_prometheus(m, NULL, b);
		evbuffer_free(b);
		res->scrapes++;
		atomic_fetch_add(&scrapes_done, 1);
	}
	return res;
}

SY_TEST(scrapes_run_while_workers_record)
{
	struct sy_metrics *m = sy_metrics_new(2);
	struct scrape_result *res;
	struct writer_arg w[2];
	pthread_t tw[2], ts;
	void *ret;
	json_t *j;
	int i;

	atomic_store(&writers_left, 2);
	atomic_store(&scrapes_done, 0);
	pthread_create(&ts, NULL, scraper, m);
	for (i = 0; i < 2; i++) {
		w[i].shard = sy_metrics_shard(m, (unsigned)i);
		w[i].id = i;
		pthread_create(&tw[i], NULL, writer, &w[i]);
	}
	for (i = 0; i < 2; i++)
		pthread_join(tw[i], NULL);
	pthread_join(ts, &ret);
	res = ret;
	SY_CHECK(res->scrapes > 0);
	SY_CHECK_INT(res->went_back, 0);
	free(res);
	j = sy_metrics_json(m, NULL);
	SY_CHECK_INT(total(jget(j, "routes"), "requests"), 2 * WRITES);
	SY_CHECK_INT(total(jget(j, "endpoints"), "requests"), 2 * WRITES);
	SY_CHECK_INT(total(jget(j, "routes"), "errors"), 2 * (WRITES / 10));
	SY_CHECK_INT(json_object_size(jget(j, "routes")), 40);
	SY_CHECK_INT(json_object_size(jget(j, "endpoints")), 14);
	SY_CHECK_INT(jint(j, "endpoints/e1-3/requests"), (WRITES + 3) / 7);
	json_decref(j);
	sy_metrics_free(m);
}

int
main(void)
{
	SY_RUN(json_merges_counts_of_two_shards);
	SY_RUN(json_sums_tokens_and_cost);
	SY_RUN(json_gives_quantiles_in_ms);
	SY_RUN(record_without_route_counts_under_dash);
	SY_RUN(errors_count_statuses_from_400);
	SY_RUN(ttft_counts_only_streams);
	SY_RUN(prometheus_samples_match_the_records);
	SY_RUN(prometheus_families_have_help_and_type);
	SY_RUN(config_adds_in_flight_and_idle_series);
	SY_RUN(promtool_accepts_the_text);
	SY_RUN(promtool_accepts_empty_metrics);
	SY_RUN(label_values_are_escaped);
	SY_RUN(scrapes_run_while_workers_record);
	return sy_test_done();
}
