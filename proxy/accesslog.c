/* The access log: one hand-built JSON line per finished request, written with one write(2). */
#include <errno.h>
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
#include "config.h"
#include "util.h"

struct sy_accesslog {
	int fd;				/* -1 when off */
	int owned;			/* fd was opened here, closed here */
	pthread_mutex_t lock;		/* keeps lines whole on short writes */
};

/* Opens the target; the log owns a file it opened, never stdout. */
struct sy_accesslog *
sy_accesslog_open(const char *target, char **err)
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
	pthread_mutex_init(&log->lock, NULL);
	return log;
}

/* Closes a file the log opened, then frees log. */
void
sy_accesslog_close(struct sy_accesslog *log)
{
	if (log == NULL)
		return;
	if (log->owned)
		close(log->fd);
	pthread_mutex_destroy(&log->lock);
	free(log);
}

/* Appends ,"key": and s as a JSON string, or null when s is NULL. */
static void
put_str(struct evbuffer *out, const char *key, const char *s)
{
	evbuffer_add_printf(out, ",\"%s\":", key);
	if (s == NULL) {
		evbuffer_add(out, "null", 4);
		return;
	}
	evbuffer_add(out, "\"", 1);
	sy_json_escape(out, s, strlen(s));
	evbuffer_add(out, "\"", 1);
}

/* Appends ,"key": and n, or null when n is negative (unknown). */
static void
put_count(struct evbuffer *out, const char *key, int64_t n)
{
	if (n < 0)
		evbuffer_add_printf(out, ",\"%s\":null", key);
	else
		evbuffer_add_printf(out, ",\"%s\":%lld", key, (long long)n);
}

/* Appends ,"key": and us as milliseconds with three decimals, exactly. */
static void
put_ms(struct evbuffer *out, const char *key, uint64_t us)
{
	evbuffer_add_printf(out, ",\"%s\":%llu.%03llu", key,
	    (unsigned long long)(us / 1000), (unsigned long long)(us % 1000));
}

/*
 * Fields, in order: time (RFC 3339 UTC with milliseconds), request_id,
 * method, path, client_api, route, client_model, model, endpoint,
 * backend_kind, policy_reason, status, stream, prompt_tokens,
 * completion_tokens, cached_tokens, cost_usd, ttft_ms, latency_ms,
 * upstream_ms, overhead_ms, bytes_in, bytes_out, error.
 */
void
sy_accesslog_format(const struct sy_record *r, struct evbuffer *out)
{
	time_t sec = (time_t)(r->time_us / 1000000);
	char stamp[64];
	struct tm tm;

	if (gmtime_r(&sec, &tm) != NULL &&
	    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm) != 0)
		evbuffer_add_printf(out, "{\"time\":\"%s.%03uZ\"", stamp,
		    (unsigned)(r->time_us % 1000000 / 1000));
	else
		evbuffer_add(out, "{\"time\":null", 12);
	put_str(out, "request_id", r->request_id);
	put_str(out, "method", r->method);
	put_str(out, "path", r->path);
	put_str(out, "client_api", r->client_api);
	put_str(out, "route", r->route);
	put_str(out, "client_model", r->client_model);
	put_str(out, "model", r->model);
	put_str(out, "endpoint", r->endpoint);
	put_str(out, "backend_kind", r->backend_kind);
	put_str(out, "policy_reason", r->policy_reason);
	evbuffer_add_printf(out, ",\"status\":%d,\"stream\":%s", r->status,
	    r->stream ? "true" : "false");
	put_count(out, "prompt_tokens", r->usage.prompt_tokens);
	put_count(out, "completion_tokens", r->usage.completion_tokens);
	put_count(out, "cached_tokens", r->usage.cached_tokens);
	if (r->cost_usd >= 0 && isfinite(r->cost_usd))
		evbuffer_add_printf(out, ",\"cost_usd\":%.10g", r->cost_usd);
	else
		evbuffer_add(out, ",\"cost_usd\":null", 16);
	if (r->ttft_us >= 0)
		put_ms(out, "ttft_ms", (uint64_t)r->ttft_us);
	else
		evbuffer_add(out, ",\"ttft_ms\":null", 15);
	put_ms(out, "latency_ms", r->latency_us);
	put_ms(out, "upstream_ms", r->upstream_us);
	put_ms(out, "overhead_ms", r->overhead_us);
	evbuffer_add_printf(out, ",\"bytes_in\":%llu,\"bytes_out\":%llu",
	    (unsigned long long)r->bytes_in, (unsigned long long)r->bytes_out);
	put_str(out, "error", r->error);
	evbuffer_add(out, "}", 1);
}

/*
 * One write(2) normally; the lock keeps a line whole should the kernel take
 * only part of it (a pipe), and a line that cannot be written is dropped.
 */
void
sy_accesslog_write(struct sy_accesslog *log, const struct sy_record *r)
{
	struct evbuffer *buf;
	const char *p;
	size_t len;
	ssize_t n;

	if (log == NULL || log->fd == -1 || (buf = evbuffer_new()) == NULL)
		return;
	sy_accesslog_format(r, buf);
	evbuffer_add(buf, "\n", 1);
	len = evbuffer_get_length(buf);
	if ((p = (const char *)evbuffer_pullup(buf, -1)) != NULL) {
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
	evbuffer_free(buf);
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
