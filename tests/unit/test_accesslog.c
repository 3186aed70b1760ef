/* Unit tests of the access log: the JSON line, its targets, and request cost. */
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "accesslog.h"
#include "config.h"
#include "record.h"
#include "sy_test.h"

static const char *const field_names[] = {
	"time", "request_id", "method", "path", "client_api", "key_id",
	"team", "route",
	"client_model", "model", "endpoint", "backend_kind", "policy_reason",
	"select_reason", "escalated_from", "status", "stream", "prompt_tokens", "completion_tokens",
	"cached_tokens", "cost_usd", "cost_source", "ttft_ms", "itl_ms", "tpot_ms", "latency_ms", "upstream_ms",
	"overhead_ms", "bytes_in", "bytes_out", "retries", "hedge", "fallbacks",
	"queue_ms", "error", "batch_size", "batch_wait_ms", "cache",
	"saved_tokens", "saved_usd", NULL
};

/* A streamed chat request that went well. */
/* Gaps between the stream writes of the full record, µs. */
static const uint32_t gaps[3] = { 10000, 20000, 30000 };

static struct sy_record
full_record(void)
{
	struct sy_record r;

	memset(&r, 0, sizeof r);
	r.time_us = 1795953850123456ULL;	/* 2026-11-29T12:04:10.123456 */
	r.request_id = "req-1";
	r.method = "POST";
	r.path = "/v1/chat/completions";
	r.client_api = "openai";
	r.key_id = "alice";
	r.team = "research";
	r.route = "chat";
	r.client_model = "gpt-4o";
	r.model = "llama-3";
	r.endpoint = "gpu-a";
	r.backend_kind = "openai";
	r.policy_reason = "round-robin";
	r.select_reason = "escalated:length";
	r.escalated_from = "llama-3-small";
	r.escalations = 1;
	r.status = 200;
	r.stream = 1;
	r.usage.prompt_tokens = 100;
	r.usage.completion_tokens = 20;
	r.usage.cached_tokens = 40;
	r.cost_usd = 0.00123;
	r.cost_source = "hourly";
	r.ttft_us = 12345;
	r.itl_us = gaps;
	r.n_itl = 3;
	r.tpot_us = 20500;
	r.latency_us = 1234567;
	r.upstream_us = 1200000;
	r.overhead_us = 34567;
	r.bytes_in = 512;
	r.bytes_out = 2048;
	r.retries = 2;
	r.fallbacks = 1;
	r.queue_us = 1500;
	r.batch_size = 12;
	r.batch_wait_us = 2250;
	return r;
}

/* The line of r as a NUL-terminated string; caller frees. */
static char *
line_of(const struct sy_record *r)
{
	struct evbuffer *b = evbuffer_new();
	size_t len;
	char *s;

	sy_accesslog_format(r, b);
	len = evbuffer_get_length(b);
	s = malloc(len + 1);
	evbuffer_remove(b, s, len);
	s[len] = '\0';
	evbuffer_free(b);
	return s;
}

static json_t *
parse(const char *line)
{
	json_error_t e;
	json_t *j;

	if ((j = json_loads(line, JSON_REJECT_DUPLICATES, &e)) == NULL)
		printf("# not JSON (%s): %s\n", e.text, line);
	return j;
}

/* Member key of j as a string, integer or number. */
static const char *
str(json_t *j, const char *key)
{
	return json_string_value(json_object_get(j, key));
}

static json_int_t
num(json_t *j, const char *key)
{
	return json_integer_value(json_object_get(j, key));
}

static double
real(json_t *j, const char *key)
{
	return json_number_value(json_object_get(j, key));
}

SY_TEST(line_has_every_field_in_order)
{
	struct sy_record r = full_record();
	char *line = line_of(&r), key[64];
	const char *p, *prev = line;
	json_t *j = parse(line);
	size_t i;

	SY_CHECK(j != NULL);
	for (i = 0; field_names[i] != NULL; i++) {
		snprintf(key, sizeof key, "\"%s\":", field_names[i]);
		p = strstr(line, key);
		SY_CHECK(p != NULL && p >= prev);
		if (p != NULL)
			prev = p;
	}
	SY_CHECK_INT(json_object_size(j), i);
	SY_CHECK(strchr(line, '\n') == NULL);
	json_decref(j);
	free(line);
}

SY_TEST(line_carries_the_record_values)
{
	struct sy_record r = full_record();
	char *line = line_of(&r);
	json_t *j = parse(line);

	SY_CHECK_STR(str(j, "time"),
	    "2026-11-29T12:04:10.123Z");
	SY_CHECK_STR(str(j, "request_id"), "req-1");
	SY_CHECK_STR(str(j, "method"), "POST");
	SY_CHECK_STR(str(j, "path"),
	    "/v1/chat/completions");
	SY_CHECK_STR(str(j, "client_api"), "openai");
	SY_CHECK_STR(str(j, "route"), "chat");
	SY_CHECK_STR(str(j, "client_model"), "gpt-4o");
	SY_CHECK_STR(str(j, "model"), "llama-3");
	SY_CHECK_STR(str(j, "endpoint"), "gpu-a");
	SY_CHECK_STR(str(j, "backend_kind"), "openai");
	SY_CHECK_STR(str(j, "policy_reason"),
	    "round-robin");
	SY_CHECK_STR(str(j, "select_reason"), "escalated:length");
	SY_CHECK_STR(str(j, "escalated_from"), "llama-3-small");
	SY_CHECK_INT(num(j, "status"), 200);
	SY_CHECK(json_is_true(json_object_get(j, "stream")));
	SY_CHECK_INT(num(j, "prompt_tokens"), 100);
	SY_CHECK_INT(num(j, "completion_tokens"), 20);
	SY_CHECK_INT(num(j, "cached_tokens"), 40);
	SY_CHECK(real(j, "cost_usd") == 0.00123);
	SY_CHECK_STR(str(j, "cost_source"), "hourly");
	SY_CHECK(real(j, "ttft_ms") == 12.345);
	SY_CHECK(real(j, "itl_ms") == 20.0);
	SY_CHECK(real(j, "tpot_ms") == 20.5);
	SY_CHECK(real(j, "latency_ms") == 1234.567);
	SY_CHECK(real(j, "upstream_ms") == 1200.0);
	SY_CHECK(real(j, "overhead_ms") == 34.567);
	SY_CHECK_INT(num(j, "bytes_in"), 512);
	SY_CHECK_INT(num(j, "bytes_out"), 2048);
	SY_CHECK_INT(num(j, "retries"), 2);
	SY_CHECK_INT(num(j, "fallbacks"), 1);
	SY_CHECK(real(j, "queue_ms") == 1.5);
	SY_CHECK(json_is_null(json_object_get(j, "error")));
	SY_CHECK_INT(num(j, "batch_size"), 12);
	SY_CHECK(real(j, "batch_wait_ms") == 2.25);
	SY_CHECK(strstr(line, "\"upstream_ms\":1200.000,") != NULL);
	json_decref(j);
	free(line);
}

SY_TEST(a_cache_hit_carries_what_it_saved)
{
	struct sy_record r = full_record();
	char *line;
	json_t *j;

	r.cache = "hit";
	r.saved_tokens = 120;
	r.saved_usd = 0.0042;
	line = line_of(&r);
	j = parse(line);
	SY_CHECK_STR(str(j, "cache"), "hit");
	SY_CHECK_INT(num(j, "saved_tokens"), 120);
	SY_CHECK(real(j, "saved_usd") == 0.0042);
	json_decref(j);
	free(line);
	r.cache = NULL;
	r.saved_usd = -1;
	line = line_of(&r);
	j = parse(line);
	SY_CHECK(json_is_null(json_object_get(j, "cache")));
	SY_CHECK(json_is_null(json_object_get(j, "saved_usd")));
	json_decref(j);
	free(line);
}

SY_TEST(absent_values_are_null)
{
	struct sy_record r;
	char *line;
	json_t *j;
	size_t i;

	memset(&r, 0, sizeof r);
	r.status = 502;
	r.usage.prompt_tokens = -1;
	r.usage.completion_tokens = -1;
	r.usage.cached_tokens = -1;
	r.cost_usd = -1;
	r.cost_source = NULL;
	r.ttft_us = -1;
	r.n_itl = 0;
	r.tpot_us = -1;
	r.error = "upstream connect failed";
	line = line_of(&r);
	j = parse(line);
	SY_CHECK(j != NULL);
	for (i = 1; i <= 12; i++)	/* request_id .. escalated_from */
		SY_CHECK(json_is_null(json_object_get(j, field_names[i])));
	SY_CHECK(json_is_false(json_object_get(j, "stream")));
	SY_CHECK(json_is_null(json_object_get(j, "prompt_tokens")));
	SY_CHECK(json_is_null(json_object_get(j, "completion_tokens")));
	SY_CHECK(json_is_null(json_object_get(j, "cached_tokens")));
	SY_CHECK(json_is_null(json_object_get(j, "cost_usd")));
	SY_CHECK(json_is_null(json_object_get(j, "cost_source")));
	SY_CHECK(json_is_null(json_object_get(j, "ttft_ms")));
	SY_CHECK(json_is_null(json_object_get(j, "itl_ms")));
	SY_CHECK(json_is_null(json_object_get(j, "tpot_ms")));
	SY_CHECK(json_is_null(json_object_get(j, "batch_size")));
	SY_CHECK(json_is_null(json_object_get(j, "batch_wait_ms")));
	SY_CHECK(real(j, "latency_ms") == 0);
	SY_CHECK_STR(str(j, "time"),
	    "1970-01-01T00:00:00.000Z");
	SY_CHECK_STR(str(j, "error"),
	    "upstream connect failed");
	json_decref(j);
	free(line);
}

SY_TEST(zero_cost_is_a_number_and_tiny_costs_keep_precision)
{
	struct sy_record r = full_record();
	char *line;
	json_t *j;

	r.cost_usd = 0;
	line = line_of(&r);
	SY_CHECK(strstr(line, "\"cost_usd\":0,") != NULL);
	free(line);
	r.cost_usd = 1.234567e-7;
	line = line_of(&r);
	j = parse(line);
	SY_CHECK(fabs(real(j, "cost_usd") -
	    1.234567e-7) < 1e-16);
	json_decref(j);
	free(line);
}

SY_TEST(odd_bytes_in_strings_still_give_valid_json)
{
	struct sy_record r = full_record();
	const unsigned char *p;
	char *line;
	json_t *j;

	r.client_model = "bad\xff\xfe\"q\x01\x1f\\ \xe2\x82";
	r.model = "caf\xc3\xa9 \xc0\xaf";	/* valid é, overlong '/' */
	r.error = "line\nbreak\ttab\r";
	line = line_of(&r);
	for (p = (const unsigned char *)line; *p != '\0'; p++)
		SY_CHECK(*p >= 0x20);
	j = parse(line);
	SY_CHECK(j != NULL);
	SY_CHECK_STR(str(j, "client_model"),
	    "bad\xef\xbf\xbd\xef\xbf\xbd\"q\x01\x1f\\ "
	    "\xef\xbf\xbd\xef\xbf\xbd");
	SY_CHECK_STR(str(j, "model"),
	    "caf\xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd");
	SY_CHECK_STR(str(j, "error"),
	    "line\nbreak\ttab\r");
	json_decref(j);
	free(line);
}

static const struct sy_price price = {
	.model = "m", .input = 1.0, .output = 2.0, .cached_input = 0.5
};

static struct sy_usage
usage(int64_t prompt, int64_t completion, int64_t cached)
{
	struct sy_usage u = { prompt, completion, cached };

	return u;
}

SY_TEST(cost_charges_cached_prompt_at_cached_price)
{
	struct sy_usage u = usage(1000, 500, 400);

	/* 600 × 1.0 + 400 × 0.5 + 500 × 2.0 per 1M tokens */
	SY_CHECK(fabs(sy_cost_usd(&price, &u) - 0.0018) < 1e-12);
	u = usage(1000, 500, 0);
	SY_CHECK(fabs(sy_cost_usd(&price, &u) - 0.002) < 1e-12);
}

SY_TEST(cost_counts_unknown_counts_as_zero)
{
	struct sy_usage u = usage(-1, 100, -1);

	SY_CHECK(fabs(sy_cost_usd(&price, &u) - 0.0002) < 1e-12);
	u = usage(1000, -1, -1);
	SY_CHECK(fabs(sy_cost_usd(&price, &u) - 0.001) < 1e-12);
}

SY_TEST(cost_never_charges_negative_uncached_prompt)
{
	struct sy_usage u = usage(100, 0, 150);

	SY_CHECK(fabs(sy_cost_usd(&price, &u) - 0.000075) < 1e-12);
}

SY_TEST(cost_is_unknown_without_price_or_counts)
{
	struct sy_usage u = usage(10, 10, 0);

	SY_CHECK(sy_cost_usd(NULL, &u) == -1);
	u = usage(-1, -1, -1);
	SY_CHECK(sy_cost_usd(&price, &u) == -1);
}

/* A fresh temporary directory; caller removes it. */
static char *
temp_dir(void)
{
	static char dir[64];

	snprintf(dir, sizeof dir, "/tmp/sy-test-accesslog-XXXXXX");
	return mkdtemp(dir);
}

/* The contents of path as a NUL-terminated string; caller frees. */
static char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	if (fread(buf, 1, (size_t)n, f) != (size_t)n)
		n = 0;
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

SY_TEST(file_target_is_created_0640_and_appended)
{
	char *dir = temp_dir(), path[128], *text, *err = NULL;
	struct sy_record r = full_record();
	struct sy_accesslog *log;
	struct stat st;
	mode_t old;
	size_t len;

	snprintf(path, sizeof path, "%s/access.log", dir);
	old = umask(022);
	log = sy_accesslog_open(path, 0, &err);
	umask(old);
	SY_CHECK(log != NULL);
	sy_accesslog_write(log, &r);
	sy_accesslog_close(log);
	SY_CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0640);
	log = sy_accesslog_open(path, 0, &err);
	sy_accesslog_write(log, &r);
	sy_accesslog_close(log);
	text = slurp(path, &len);
	SY_CHECK(text != NULL && len > 0 && text[len - 1] == '\n');
	SY_CHECK(text != NULL && strchr(text, '\n') != text + len - 1);
	/* Two equal lines. */
	SY_CHECK(text != NULL && strncmp(text, text + len / 2, len / 2) == 0);
	free(text);
	unlink(path);
	rmdir(dir);
}

/* The lines of the file at path. */
static int
count_lines(const char *path)
{
	size_t len, i;
	char *text = slurp(path, &len);
	int lines = 0;

	for (i = 0; text != NULL && i < len; i++)
		lines += text[i] == '\n';
	free(text);
	return lines;
}

/* Lines of a buffered log: written together, at a flush or when old enough. */
SY_TEST(a_buffered_log_writes_its_lines_together)
{
	char *dir = temp_dir(), path[128], *text, *err = NULL;
	struct sy_record r = full_record();
	struct sy_accesslog *log;
	struct timespec pause = { 0, 5 * 1000000 };
	size_t len, i;

	snprintf(path, sizeof path, "%s/access.log", dir);
	log = sy_accesslog_open(path, 1000, &err);
	SY_CHECK(log != NULL);
	SY_CHECK_INT(sy_accesslog_flush_ms(log), 1000);
	for (i = 0; i < 3; i++)
		sy_accesslog_write(log, &r);
	text = slurp(path, &len);
	SY_CHECK(text != NULL && len == 0);	/* gathered, not written */
	free(text);
	sy_accesslog_flush(log);
	SY_CHECK_INT(count_lines(path), 3);
	sy_accesslog_close(log);
	/* With a short flush_ms, a line past it writes what was gathered. */
	log = sy_accesslog_open(path, 1, &err);
	sy_accesslog_write(log, &r);
	nanosleep(&pause, NULL);
	sy_accesslog_write(log, &r);
	SY_CHECK_INT(count_lines(path), 5);
	/* Closing writes the rest. */
	sy_accesslog_write(log, &r);
	sy_accesslog_close(log);
	SY_CHECK_INT(count_lines(path), 6);
	unlink(path);
	rmdir(dir);
}

SY_TEST(open_fails_with_a_message_naming_the_path)
{
	static const char path[] = "/nonexistent-sy-dir/access.log";
	char *err = NULL;

	SY_CHECK(sy_accesslog_open(path, 0, &err) == NULL);
	SY_CHECK(err != NULL && strstr(err, path) != NULL);
	free(err);
}

SY_TEST(stdout_target_writes_and_off_target_does_not)
{
	char *dir = temp_dir(), path[128], *text, *err = NULL;
	struct sy_record r = full_record();
	struct sy_accesslog *out, *off;
	int fd, saved;
	size_t len;

	snprintf(path, sizeof path, "%s/stdout", dir);
	out = sy_accesslog_open("stdout", 0, &err);
	off = sy_accesslog_open("off", 0, &err);
	SY_CHECK(out != NULL && off != NULL);
	fflush(stdout);
	saved = dup(STDOUT_FILENO);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	dup2(fd, STDOUT_FILENO);
	close(fd);
	sy_accesslog_write(off, &r);
	sy_accesslog_write(out, &r);
	sy_accesslog_write(off, &r);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	sy_accesslog_close(out);
	sy_accesslog_close(off);
	text = slurp(path, &len);
	SY_CHECK(text != NULL && len > 0);
	SY_CHECK(text != NULL && strchr(text, '\n') == text + len - 1);
	SY_CHECK(text != NULL && strncmp(text, "{\"time\":", 8) == 0);
	free(text);
	unlink(path);
	rmdir(dir);
}

#define THREADS 4
#define LINES 1000

struct writer_arg {
	struct sy_accesslog *log;
	int id;
};

static void *
writer(void *arg)
{
	struct writer_arg *w = arg;
	struct sy_record r = full_record();
	char id[32], *path;
	int i;

	/* Lines longer than a pipe's atomic write, to tempt interleaving. */
	path = malloc(6000);
	memset(path, 'a' + w->id, 5999);
	path[5999] = '\0';
	r.path = path;
	r.request_id = id;
	for (i = 0; i < LINES; i++) {
		snprintf(id, sizeof id, "t%d-%d", w->id, i);
		sy_accesslog_write(w->log, &r);
	}
	free(path);
	return NULL;
}

SY_TEST(four_threads_write_whole_lines)
{
	char *dir = temp_dir(), path[128], *text, *line, *save = NULL;
	struct writer_arg w[THREADS];
	char *err = NULL;
	pthread_t t[THREADS];
	int i, lines = 0, valid = 0, per[THREADS] = { 0 };
	size_t len;
	json_t *j;

	snprintf(path, sizeof path, "%s/access.log", dir);
	w[0].log = sy_accesslog_open(path, 0, &err);
	SY_CHECK(w[0].log != NULL);
	for (i = 0; i < THREADS; i++) {
		w[i].log = w[0].log;
		w[i].id = i;
		pthread_create(&t[i], NULL, writer, &w[i]);
	}
	for (i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	sy_accesslog_close(w[0].log);
	text = slurp(path, &len);
	SY_CHECK(text != NULL && len > 0 && text[len - 1] == '\n');
	for (line = strtok_r(text, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		lines++;
		if ((j = json_loads(line, 0, NULL)) == NULL)
			continue;
		valid++;
		i = str(j, "request_id")[1] - '0';	/* "t<i>-<n>" */
		if (i >= 0 && i < THREADS)
			per[i]++;
		json_decref(j);
	}
	SY_CHECK_INT(lines, THREADS * LINES);
	SY_CHECK_INT(valid, THREADS * LINES);
	for (i = 0; i < THREADS; i++)
		SY_CHECK_INT(per[i], LINES);
	free(text);
	unlink(path);
	rmdir(dir);
}

int
main(void)
{
	SY_RUN(line_has_every_field_in_order);
	SY_RUN(a_cache_hit_carries_what_it_saved);
	SY_RUN(line_carries_the_record_values);
	SY_RUN(absent_values_are_null);
	SY_RUN(zero_cost_is_a_number_and_tiny_costs_keep_precision);
	SY_RUN(odd_bytes_in_strings_still_give_valid_json);
	SY_RUN(cost_charges_cached_prompt_at_cached_price);
	SY_RUN(cost_counts_unknown_counts_as_zero);
	SY_RUN(cost_never_charges_negative_uncached_prompt);
	SY_RUN(cost_is_unknown_without_price_or_counts);
	SY_RUN(file_target_is_created_0640_and_appended);
	SY_RUN(a_buffered_log_writes_its_lines_together);
	SY_RUN(open_fails_with_a_message_naming_the_path);
	SY_RUN(stdout_target_writes_and_off_target_does_not);
	SY_RUN(four_threads_write_whole_lines);
	return sy_test_done();
}
