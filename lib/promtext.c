/* Reads an inference server's load figures from its Prometheus /metrics text. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "promtext.h"

/* The figures, and the older vLLM KV name that counts only when the new one is absent. */
enum figure { FIG_RUNNING, FIG_WAITING, FIG_KV, FIG_KV_OLD, FIG_COUNT };

static const struct {
	const char *name;
	enum figure fig;
} metric_names[] = {
	{ "vllm:num_requests_running", FIG_RUNNING },
	{ "vllm:num_requests_waiting", FIG_WAITING },
	{ "vllm:kv_cache_usage_perc", FIG_KV },
	{ "vllm:gpu_cache_usage_perc", FIG_KV_OLD },
	{ "sglang:num_running_reqs", FIG_RUNNING },
	{ "sglang:num_queue_reqs", FIG_WAITING },
	{ "sglang:token_usage", FIG_KV },
	{ "llamacpp:requests_processing", FIG_RUNNING },
	{ "llamacpp:requests_deferred", FIG_WAITING },
	{ "llamacpp:kv_cache_usage_ratio", FIG_KV },
};

/* The capacity's metrics. */
#define VLLM_CACHE_INFO "vllm:cache_config_info"
#define SGLANG_MAX_TOKENS "sglang:max_total_num_tokens"

/* A line being read: [p, end). */
struct cursor {
	const char *p;
	const char *end;
};

static void
skip_blanks(struct cursor *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t'))
		c->p++;
}

static int
is_name_char(char ch, int colon)
{
	return ('a' <= ch && ch <= 'z') || ('A' <= ch && ch <= 'Z') ||
	    ('0' <= ch && ch <= '9') || ch == '_' || (colon && ch == ':');
}

/* Skips a label set "{name="value",...}" (values may hold any escaped byte); 0 or -1 when malformed. */
static int
skip_labels(struct cursor *c)
{
	c->p++;					/* '{' */
	for (;;) {
		skip_blanks(c);
		if (c->p < c->end && *c->p == '}') {
			c->p++;
			return 0;
		}
		if (c->p == c->end || !is_name_char(*c->p, 0))
			return -1;
		while (c->p < c->end && is_name_char(*c->p, 0))
			c->p++;
		skip_blanks(c);
		if (c->p == c->end || *c->p++ != '=')
			return -1;
		skip_blanks(c);
		if (c->p == c->end || *c->p++ != '"')
			return -1;
		while (c->p < c->end && *c->p != '"')
			c->p += *c->p == '\\' && c->p + 1 < c->end ? 2 : 1;
		if (c->p == c->end)
			return -1;
		c->p++;				/* closing quote */
		skip_blanks(c);
		if (c->p < c->end && *c->p == ',')
			c->p++;
		else if (c->p == c->end || *c->p != '}')
			return -1;
	}
}

/*
 * Reads one sample line "name[{labels}] value [timestamp]": sets *name,
 * *namelen and *value.  Returns 0, or -1 for a line that is not a sample.
 */
static int
read_sample(struct cursor *c, const char **name, size_t *namelen,
    double *value)
{
	char num[64], *stop;
	const char *v;
	size_t n;

	skip_blanks(c);
	*name = c->p;
	while (c->p < c->end && is_name_char(*c->p, 1))
		c->p++;
	if ((*namelen = (size_t)(c->p - *name)) == 0)
		return -1;
	skip_blanks(c);
	if (c->p < c->end && *c->p == '{' && skip_labels(c) == -1)
		return -1;
	skip_blanks(c);
	v = c->p;
	while (c->p < c->end && *c->p != ' ' && *c->p != '\t')
		c->p++;
	if ((n = (size_t)(c->p - v)) == 0 || n >= sizeof num)
		return -1;
	memcpy(num, v, n);
	num[n] = '\0';
	*value = strtod(num, &stop);
	return *stop == '\0' ? 0 : -1;
}

/* The number in label key="N" of the line [p, end), or -1. */
static long
label_number(const char *p, const char *end, const char *key)
{
	const char *start = p;
	size_t klen = strlen(key);
	long n = -1;

	for (; p + klen + 2 < end; p++) {
		if (memcmp(p, key, klen) != 0 || p[klen] != '=' ||
		    p[klen + 1] != '"' || (p > start && is_name_char(p[-1], 0)))
			continue;
		for (p += klen + 2, n = 0; p < end && '0' <= *p && *p <= '9'; p++)
			n = n * 10 + (*p - '0');
		return p < end && *p == '"' ? n : -1;
	}
	return -1;
}

/* Whether [name, name + len) is s. */
static int
named(const char *name, size_t len, const char *s)
{
	return strlen(s) == len && memcmp(s, name, len) == 0;
}

int
sy_promtext_load(const char *text, size_t len, struct sy_load_figures *out)
{
	double sum[FIG_COUNT] = { 0 }, value, kv;
	long count[FIG_COUNT] = { 0 };
	const char *end = text + len, *eol, *name, *line;
	struct cursor c;
	size_t namelen, i;
	long blocks, size;

	out->kv_tokens = -1;

	for (c.p = text; c.p < end; c.p = eol + (eol < end)) {
		if ((eol = memchr(c.p, '\n', (size_t)(end - c.p))) == NULL)
			eol = end;
		c.end = eol;
		if (c.end > c.p && c.end[-1] == '\r')
			c.end--;
		skip_blanks(&c);
		if (c.p == c.end || *c.p == '#')
			continue;
		line = c.p;
		if (read_sample(&c, &name, &namelen, &value) == -1 ||
		    !isfinite(value))
			continue;
		if (named(name, namelen, VLLM_CACHE_INFO) &&
		    (blocks = label_number(line, c.end, "num_gpu_blocks")) > 0 &&
		    (size = label_number(line, c.end, "block_size")) > 0)
			out->kv_tokens = blocks * size;
		if (named(name, namelen, SGLANG_MAX_TOKENS) && value >= 1)
			out->kv_tokens = lround(value);
		for (i = 0; i < sizeof metric_names / sizeof metric_names[0]; i++) {
			if (named(name, namelen, metric_names[i].name)) {
				sum[metric_names[i].fig] += value;
				count[metric_names[i].fig]++;
				break;
			}
		}
	}
	out->running = count[FIG_RUNNING] ? lround(fmax(sum[FIG_RUNNING], 0)) : -1;
	out->waiting = count[FIG_WAITING] ? lround(fmax(sum[FIG_WAITING], 0)) : -1;
	out->kv_permille = -1;
	if (count[FIG_KV] != 0 || count[FIG_KV_OLD] != 0) {
		kv = count[FIG_KV] != 0 ? sum[FIG_KV] / count[FIG_KV] :
		    sum[FIG_KV_OLD] / count[FIG_KV_OLD];
		out->kv_permille = (int)lround(fmin(fmax(kv, 0), 1) * 1000);
	}
	return out->running != -1 || out->waiting != -1 ||
	    out->kv_permille != -1 || out->kv_tokens != -1;
}
