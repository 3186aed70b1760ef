/* The access log: one JSON line per finished request, formatted by hand in a per-thread buffer, written with one write(2). */
#include <errno.h>
#include <float.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "accesslog.h"
#include "confrow.h"
#include "config.h"
#include "util.h"

struct sy_accesslog {
	int fd;				/* -1 when off */
	int owned;			/* fd was opened here, closed here */
	unsigned flush_ms;		/* 0: each line at once */
	pthread_mutex_t lock;		/* keeps lines whole on short writes */
};

/* A thread's gathered lines (flush_ms), written in one go. */
#define PENDING_MAX	(64 * 1024)
static _Thread_local struct {
	struct sy_accesslog *log;	/* whose lines they are */
	size_t len;
	uint64_t since_us;		/* the first line's time, monotonic */
	char buf[PENDING_MAX];
} pending;

/* Opens the target; the log owns a file it opened, never stdout. */
struct sy_accesslog *
sy_accesslog_open(const char *target, unsigned flush_ms, char **err)
{
	struct sy_accesslog *log;
	int fd, owned = 0;

	if (target == NULL || *target == '\0') {
		*err = strdup("access log: no target");
		return NULL;
	}
	if (strcmp(target, "off") == 0)
		fd = -1;
	else if (strcmp(target, "stdout") == 0)
		fd = STDOUT_FILENO;
	else {
		fd = open(target, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
		    0640);
		if (fd == -1) {
			if (asprintf(err, "access log %s: %s", target,
			    strerror(errno)) == -1)
				*err = NULL;
			return NULL;
		}
		owned = 1;
	}
	if ((log = calloc(1, sizeof *log)) == NULL) {
		if (owned)
			close(fd);
		*err = strdup("access log: out of memory");
		return NULL;
	}
	log->fd = fd;
	log->owned = owned;
	log->flush_ms = flush_ms;
	pthread_mutex_init(&log->lock, NULL);
	return log;
}

/* Closes a file the log opened, then frees log. */
void
sy_accesslog_close(struct sy_accesslog *log)
{
	if (log == NULL)
		return;
	sy_accesslog_flush(log);
	if (log->owned)
		close(log->fd);
	pthread_mutex_destroy(&log->lock);
	free(log);
}

/* ==== Formatting a line ==== */

/*
 * A line is written into a per-thread buffer without printf: its bytes
 * besides its strings are at most LINE_FIXED, and a string escapes to at
 * most 6 bytes a byte.  A line that would not fit the buffer gets one of
 * its own.
 */
#define LINE_FIXED	1088
#define LINE_BUF_SIZE	4096

static _Thread_local char line_buf[LINE_BUF_SIZE];

#define PUT_LIT(o, lit)	SY_PUT_LIT((o), (lit))

/* Writes v in decimal at o, with a '-' when negative. */
static char *
put_i64(char *o, int64_t v)
{
	if (v >= 0)
		return sy_put_u64(o, (uint64_t)v);
	*o++ = '-';
	return sy_put_u64(o, 0 - (uint64_t)v);
}

/*
 * Writes s (len bytes) escaped for a JSON string, as sy_json_escape does:
 * plain ASCII is copied, anything else goes through sy_json_escape.
 */
static char *
put_escaped(char *o, const char *s, size_t len)
{
	struct evbuffer *tmp;
	unsigned char c;
	size_t i, n;

	for (i = 0; i < len; i++) {
		c = (unsigned char)s[i];
		if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\')
			break;
	}
	if (i == len)
		return sy_put_bytes(o, s, len);
	if ((tmp = evbuffer_new()) == NULL)
		return o;
	sy_json_escape(tmp, s, len);
	n = evbuffer_get_length(tmp);
	evbuffer_remove(tmp, o, n);
	evbuffer_free(tmp);
	return o + n;
}

/* Writes key (,"name": literal) and s as a JSON string, or null. */
static char *
put_str(char *o, const char *key, size_t key_len, const char *s)
{
	o = sy_put_bytes(o, key, key_len);
	if (s == NULL)
		return PUT_LIT(o, "null");
	*o++ = '"';
	o = put_escaped(o, s, strlen(s));
	*o++ = '"';
	return o;
}

#define PUT_STR(o, key, s)	put_str((o), (key), sizeof(key) - 1, (s))

/* Writes key and n, or null when n is negative (unknown). */
static char *
put_count(char *o, const char *key, size_t key_len, int64_t n)
{
	o = sy_put_bytes(o, key, key_len);
	if (n < 0)
		return PUT_LIT(o, "null");
	return put_i64(o, n);
}

#define PUT_COUNT(o, key, n)	put_count((o), (key), sizeof(key) - 1, (n))

/* Writes key and us as milliseconds with three decimals, exactly. */
static char *
put_ms(char *o, const char *key, size_t key_len, uint64_t us)
{
	unsigned frac = (unsigned)(us % 1000);

	o = sy_put_bytes(o, key, key_len);
	o = sy_put_u64(o, us / 1000);
	*o++ = '.';
	*o++ = (char)('0' + frac / 100);
	*o++ = (char)('0' + frac / 10 % 10);
	*o++ = (char)('0' + frac % 10);
	return o;
}

#define PUT_MS(o, key, us)	put_ms((o), (key), sizeof(key) - 1, (us))

/*
 * Writes {"time": and the arrival time, RFC 3339 UTC with milliseconds,
 * or null.  The text of the second is kept per thread: requests that
 * arrive in the same second share it.
 */
static char *
put_time(char *o, uint64_t time_us)
{
	static _Thread_local time_t cached_sec = (time_t)-1;
	static _Thread_local char cached[64];
	static _Thread_local size_t cached_len;
	time_t sec = (time_t)(time_us / 1000000);
	unsigned ms = (unsigned)(time_us % 1000000 / 1000);
	struct tm tm;

	if (sec != cached_sec) {
		cached_sec = sec;
		cached_len = gmtime_r(&sec, &tm) != NULL ? strftime(cached,
		    sizeof cached, "%Y-%m-%dT%H:%M:%S", &tm) : 0;
	}
	if (cached_len == 0)
		return PUT_LIT(o, "{\"time\":null");
	o = PUT_LIT(o, "{\"time\":\"");
	o = sy_put_bytes(o, cached, cached_len);
	*o++ = '.';
	*o++ = (char)('0' + ms / 100);
	*o++ = (char)('0' + ms / 10 % 10);
	*o++ = (char)('0' + ms % 10);
	return PUT_LIT(o, "Z\"");
}

/* Writes key and a cost in USD with %.10g's digits, or null when unknown. */
static char *
put_cost(char *o, const char *key, double cost)
{
	char num[32];
	int n;

	o = sy_put_bytes(o, key, strlen(key));
	if (!(cost >= 0 && isfinite(cost)) ||
	    (n = snprintf(num, sizeof num, "%.10g", cost)) <= 0 ||
	    (size_t)n >= sizeof num)
		return PUT_LIT(o, "null");
	return sy_put_bytes(o, num, (size_t)n);
}

/* strlen, with NULL as empty. */
static size_t
str_len(const char *s)
{
	return s != NULL ? strlen(s) : 0;
}

/*
 * A buffer that holds the line of r and its newline: the thread's, or
 * one malloc'd into *own (NULL when out of memory).
 */
static char *
line_buffer(const struct sy_record *r, char **own)
{
	size_t strings, need;

	strings = str_len(r->request_id) + str_len(r->method) +
	    str_len(r->path) + str_len(r->client_api) + str_len(r->route) +
	    str_len(r->client_model) + str_len(r->model) +
	    str_len(r->endpoint) + str_len(r->backend_kind) +
	    str_len(r->policy_reason) + str_len(r->policy_words) +
	    str_len(r->select_reason) +
	    str_len(r->escalated_from) + str_len(r->error) + str_len(r->cache) +
	    str_len(r->key_id) + str_len(r->team) + str_len(r->cost_source) +
	    str_len(r->hedge);
	need = LINE_FIXED + 6 * strings;
	*own = NULL;
	if (need <= sizeof line_buf)
		return line_buf;
	return *own = malloc(need);
}

/* The mean of r's inter-token gaps, µs (r has some). */
static uint64_t
itl_mean_us(const struct sy_record *r)
{
	uint64_t sum = 0;
	size_t i;

	for (i = 0; i < r->n_itl; i++)
		sum += r->itl_us[i];
	return sum / r->n_itl;
}

/*
 * Writes the line of r (no newline) into buf, which line_buffer gave;
 * returns the byte after it.  Fields, in order: time (RFC 3339 UTC with
 * milliseconds), request_id, method, path, client_api, key_id, team, route,
 * client_model, model, endpoint, backend_kind, policy_reason,
 * select_reason, escalated_from, status,
 * stream, prompt_tokens, completion_tokens, cached_tokens, cost_usd,
 * cost_source, ttft_ms, itl_ms, tpot_ms, latency_ms, upstream_ms, overhead_ms, bytes_in, bytes_out,
 * retries, hedge, fallbacks, queue_ms, error, batch_size, batch_wait_ms, cache,
 * saved_tokens, saved_usd.
 */
static char *
line_format(const struct sy_record *r, char *o)
{
	o = put_time(o, r->time_us);
	o = PUT_STR(o, ",\"request_id\":", r->request_id);
	o = PUT_STR(o, ",\"method\":", r->method);
	o = PUT_STR(o, ",\"path\":", r->path);
	o = PUT_STR(o, ",\"client_api\":", r->client_api);
	o = PUT_STR(o, ",\"key_id\":", r->key_id);
	o = PUT_STR(o, ",\"team\":", r->team);
	o = PUT_STR(o, ",\"route\":", r->route);
	o = PUT_STR(o, ",\"client_model\":", r->client_model);
	o = PUT_STR(o, ",\"model\":", r->model);
	o = PUT_STR(o, ",\"endpoint\":", r->endpoint);
	o = PUT_STR(o, ",\"backend_kind\":", r->backend_kind);
	o = PUT_STR(o, ",\"policy_reason\":", r->policy_words != NULL ?
	    r->policy_words : r->policy_reason);
	o = PUT_STR(o, ",\"select_reason\":", r->select_reason);
	o = PUT_STR(o, ",\"escalated_from\":", r->escalated_from);
	o = PUT_LIT(o, ",\"status\":");
	o = put_i64(o, r->status);
	o = r->stream ? PUT_LIT(o, ",\"stream\":true") :
	    PUT_LIT(o, ",\"stream\":false");
	o = PUT_COUNT(o, ",\"prompt_tokens\":", r->usage.prompt_tokens);
	o = PUT_COUNT(o, ",\"completion_tokens\":",
	    r->usage.completion_tokens);
	o = PUT_COUNT(o, ",\"cached_tokens\":", r->usage.cached_tokens);
	o = put_cost(o, ",\"cost_usd\":", r->cost_usd);
	o = PUT_STR(o, ",\"cost_source\":", r->cost_source);
	if (r->ttft_us >= 0)
		o = PUT_MS(o, ",\"ttft_ms\":", (uint64_t)r->ttft_us);
	else
		o = PUT_LIT(o, ",\"ttft_ms\":null");
	if (r->n_itl > 0)
		o = PUT_MS(o, ",\"itl_ms\":", itl_mean_us(r));
	else
		o = PUT_LIT(o, ",\"itl_ms\":null");
	if (r->tpot_us >= 0)
		o = PUT_MS(o, ",\"tpot_ms\":", (uint64_t)r->tpot_us);
	else
		o = PUT_LIT(o, ",\"tpot_ms\":null");
	o = PUT_MS(o, ",\"latency_ms\":", r->latency_us);
	o = PUT_MS(o, ",\"upstream_ms\":", r->upstream_us);
	o = PUT_MS(o, ",\"overhead_ms\":", r->overhead_us);
	o = PUT_LIT(o, ",\"bytes_in\":");
	o = sy_put_u64(o, r->bytes_in);
	o = PUT_LIT(o, ",\"bytes_out\":");
	o = sy_put_u64(o, r->bytes_out);
	o = PUT_LIT(o, ",\"retries\":");
	o = sy_put_u64(o, r->retries);
	o = PUT_STR(o, ",\"hedge\":", r->hedge);
	o = PUT_LIT(o, ",\"fallbacks\":");
	o = sy_put_u64(o, r->fallbacks);
	o = PUT_MS(o, ",\"queue_ms\":", r->queue_us);
	o = PUT_STR(o, ",\"error\":", r->error);
	if (r->batch_size > 0) {
		o = PUT_LIT(o, ",\"batch_size\":");
		o = sy_put_u64(o, r->batch_size);
		o = PUT_MS(o, ",\"batch_wait_ms\":", r->batch_wait_us);
	} else
		o = PUT_LIT(o, ",\"batch_size\":null,\"batch_wait_ms\":null");
	o = PUT_STR(o, ",\"cache\":", r->cache);
	o = PUT_COUNT(o, ",\"saved_tokens\":", r->saved_tokens);
	o = put_cost(o, ",\"saved_usd\":", r->saved_usd);
	*o++ = '}';
	return o;
}

void
sy_accesslog_format(const struct sy_record *r, struct evbuffer *out)
{
	char *own, *buf, *end;

	if ((buf = line_buffer(r, &own)) == NULL)
		return;
	end = line_format(r, buf);
	evbuffer_add(out, buf, (size_t)(end - buf));
	free(own);
}

/* ==== Writing a line ==== */

/*
 * One write(2) normally; the lock keeps a line whole should the kernel take
 * only part of it (a pipe), and a line that cannot be written is dropped.
 */
/* Writes len bytes of whole lines to log, under its lock. */
static void
log_write(struct sy_accesslog *log, const char *p, size_t len)
{
	ssize_t n;

	pthread_mutex_lock(&log->lock);
	while (len > 0) {
		n = write(log->fd, p, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		p += n;
		len -= (size_t)n;
	}
	pthread_mutex_unlock(&log->lock);
}

void
sy_accesslog_write(struct sy_accesslog *log, const struct sy_record *r)
{
	char *own, *buf, *p;
	uint64_t now;
	size_t len;

	if (log == NULL || log->fd == -1 || (buf = line_buffer(r, &own)) == NULL)
		return;
	p = line_format(r, buf);
	*p++ = '\n';
	len = (size_t)(p - buf);
	if (log->flush_ms == 0 || len > PENDING_MAX) {
		log_write(log, buf, len);
		free(own);
		return;
	}
	now = sy_now_us();
	if (pending.len > 0 && (pending.log != log ||
	    pending.len + len > PENDING_MAX))
		sy_accesslog_flush(pending.log);
	if (pending.len == 0) {
		pending.log = log;
		pending.since_us = now;
	}
	memcpy(pending.buf + pending.len, buf, len);
	pending.len += len;
	if (now - pending.since_us >= (uint64_t)log->flush_ms * 1000)
		sy_accesslog_flush(log);
	free(own);
}

void
sy_accesslog_flush(struct sy_accesslog *log)
{
	if (log == NULL || pending.log != log || pending.len == 0)
		return;
	log_write(log, pending.buf, pending.len);
	pending.len = 0;
}

unsigned
sy_accesslog_flush_ms(const struct sy_accesslog *log)
{
	return log != NULL ? log->flush_ms : 0;
}

/* Prices uncached prompt, cached prompt and completion tokens separately. */
double
sy_cost_usd(const struct sy_price *price, const struct sy_usage *u)
{
	int64_t prompt, completion, cached, uncached;

	if (price == NULL || (u->prompt_tokens < 0 &&
	    u->completion_tokens < 0 && u->cached_tokens < 0))
		return -1;
	prompt = u->prompt_tokens > 0 ? u->prompt_tokens : 0;
	completion = u->completion_tokens > 0 ? u->completion_tokens : 0;
	cached = u->cached_tokens > 0 ? u->cached_tokens : 0;
	uncached = prompt > cached ? prompt - cached : 0;
	return ((double)uncached * price->input +
	    (double)cached * price->cached_input +
	    (double)completion * price->output) / 1e6;
}

/* ==== Config ==== */

/*
 * A price per token needs input and output, an hourly one neither;
 * cached prompt tokens cost what others do unless priced.
 */
static void
price_check(struct sy_conf *c, const json_t *obj, const char *path,
    void *base)
{
	static const char *const per_token[] = { "input", "output",
	    "cached_input" };
	struct sy_price *pr = base;
	char p[SY_CONF_PATHLEN];
	size_t i;

	if (json_object_get(obj, "cached_input") == NULL)
		pr->cached_input = pr->input;
	for (i = 0; i < 3; i++) {
		if (json_object_get(obj, "hourly_usd") != NULL &&
		    json_object_get(obj, per_token[i]) != NULL)
			sy_conf_fail(c, sy_conf_path_key(p, path, per_token[i]),
			    "a self-hosted model (hourly_usd) has no price per "
			    "token");
		else if (json_object_get(obj, "hourly_usd") == NULL && i < 2 &&
		    json_object_get(obj, per_token[i]) == NULL)
			sy_conf_fail(c, sy_conf_path_key(p, path, per_token[i]),
			    "required key is missing (or give hourly_usd)");
	}
}

#define PRICE(key, dflt, top, text) {					\
	.name = #key, .type = SY_CONF_NUMBER,				\
	.offset = offsetof(struct sy_price, key), .def.d = (dflt),	\
	.lo = 0, .hi = (top), .doc = (text) }

static const struct sy_conf_row price_rows[] = {
	PRICE(input, 0, DBL_MAX, "USD per 1M prompt tokens"),
	PRICE(output, 0, DBL_MAX, "USD per 1M completion tokens"),
	PRICE(cached_input, 0, DBL_MAX, "USD per 1M cached prompt tokens; "
	    "default: input"),
	PRICE(hourly_usd, 0, DBL_MAX, "self-hosted: USD per hour of each "
	    "endpoint serving the model"),
	PRICE(power_watts, 0, DBL_MAX, "self-hosted: watts each endpoint "
	    "draws at full load"),
	PRICE(idle_power_share, 0.3, 1, "self-hosted: share of power_watts "
	    "drawn while idle"),
	PRICE(prompt_weight, 1, DBL_MAX, "self-hosted: weight of an uncached "
	    "prompt token"),
	PRICE(completion_weight, 1, DBL_MAX, "self-hosted: weight of a "
	    "completion token"),
	PRICE(cached_weight, 0.1, DBL_MAX, "self-hosted: weight of a cached "
	    "prompt token"),
	{ .name = NULL }
};

const struct sy_conf_table sy_price_table = {
	.path = "prices.*",
	.rows = price_rows,
	.size = sizeof(struct sy_price),
	.check = price_check
};
