/* Small shared utilities: clocks, logging, JSON string escaping. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "util.h"

static enum sy_log_level log_level = SY_LOG_INFO;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

uint64_t
sy_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t
sy_wall_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void
sy_log_set_level(enum sy_log_level level)
{
	log_level = level;
}

void
sy_log(enum sy_log_level level, const char *fmt, ...)
{
	static const char *names[] = { "debug", "info", "warn", "error" };
	char stamp[32];
	struct tm tm;
	time_t now;
	va_list ap;

	if (level < log_level)
		return;
	now = time(NULL);
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
	pthread_mutex_lock(&log_lock);
	fprintf(stderr, "%s switchyard[%s]: ", stamp, names[level]);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
	pthread_mutex_unlock(&log_lock);
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
	size_t len, i;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if ((s[0] & 0xf8) == 0xf0) {
		len = 4;
		cp = s[0] & 0x07;
	} else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

int
sy_json_add(struct evbuffer *out, json_t *doc)
{
	char *text = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;

	json_decref(doc);
	if (text == NULL)
		return -1;
	evbuffer_add(out, text, strlen(text));
	free(text);
	return 0;
}

void
sy_json_escape(struct evbuffer *out, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, start = 0, n;

	while (i < len) {
		unsigned char c = p[i];

		if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0x80 && (n = utf8_len(p + i, len - i)) != 0) {
			i += n;
			continue;
		}
		evbuffer_add(out, p + start, i - start);
		switch (c) {
		case '"': evbuffer_add(out, "\\\"", 2); break;
		case '\\': evbuffer_add(out, "\\\\", 2); break;
		case '\n': evbuffer_add(out, "\\n", 2); break;
		case '\r': evbuffer_add(out, "\\r", 2); break;
		case '\t': evbuffer_add(out, "\\t", 2); break;
		default:
			if (c < 0x20)
				evbuffer_add_printf(out, "\\u%04x", c);
			else
				evbuffer_add(out, "\\ufffd", 6);
		}
		i++;
		start = i;
	}
	evbuffer_add(out, p + start, i - start);
}

static _Thread_local uint64_t rng_state;
static atomic_ullong rng_seeds;

/* SplitMix64: spreads a seed over all 64 bits. */
static uint64_t
splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

uint64_t
sy_rand64(void)
{
	uint64_t x = rng_state;

	if (x == 0) {
		/* First use on this thread: the clock, the address of this
		   thread's state and a process-wide count make the seed. */
		x = splitmix64(sy_now_us() ^ (uint64_t)(uintptr_t)&rng_state ^
		    (atomic_fetch_add(&rng_seeds, 1) << 48));
		if (x == 0)
			x = 1;
	}
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 0x2545f4914f6cdd1dULL;
}

int
sy_fail(char **err, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) == -1)
		s = NULL;
	va_end(ap);
	*err = s != NULL ? s : sy_xstrdup("out of memory");
	return -1;
}

void *
sy_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		abort();
	return p;
}

void *
sy_xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (p == NULL)
		abort();
	return p;
}

void *
sy_xrealloc(void *p, size_t n)
{
	if ((p = realloc(p, n ? n : 1)) == NULL)
		abort();
	return p;
}

char *
sy_xstrdup(const char *s)
{
	char *p = strdup(s);

	if (p == NULL)
		abort();
	return p;
}

char *
sy_xstrndup(const char *s, size_t n)
{
	char *p = strndup(s, n);

	if (p == NULL)
		abort();
	return p;
}

char *
sy_xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) == -1)
		abort();
	va_end(ap);
	return s;
}

const void *
sy_registry_find(const void *const *table, const char *name)
{
	size_t i;

	for (i = 0; table[i] != NULL; i++)
		if (strcmp(*(const char *const *)table[i], name) == 0)
			return table[i];
	return NULL;
}

void
sy_registry_names(const void *const *table, char *buf, size_t len)
{
	size_t i, off = 0;
	int n;

	buf[0] = '\0';
	for (i = 0; table[i] != NULL && off < len; i++) {
		n = snprintf(buf + off, len - off, "%s%s", i ? ", " : "",
		    *(const char *const *)table[i]);
		if (n < 0)
			break;
		off += (size_t)n;
	}
}

const void *
sy_registry_at(const void *const *table, size_t i)
{
	size_t n;

	for (n = 0; n < i; n++)
		if (table[n] == NULL)
			return NULL;
	return table[i];
}

char *
sy_put_bytes(char *o, const char *s, size_t n)
{
	memcpy(o, s, n);
	return o + n;
}

char *
sy_put_str(char *o, const char *s)
{
	return sy_put_bytes(o, s, strlen(s));
}

char *
sy_put_u64(char *o, uint64_t v)
{
	char digits[20];
	size_t n = 0;

	do
		digits[n++] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	while (n > 0)
		*o++ = digits[--n];
	return o;
}

char *
sy_put_hex(char *o, uint64_t v, unsigned width)
{
	static const char hex[] = "0123456789abcdef";
	unsigned i;

	for (i = width; i > 0; i--, v >>= 4)
		o[i - 1] = hex[v & 0xf];
	return o + width;
}

/* Whether c is whitespace as the tokenizer rule splits text. */
static int
token_space(char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r');
}

int64_t
sy_text_tokens(const char *s, size_t len)
{
	int64_t n = 0;
	size_t i = 0, start;

	while (i < len) {
		while (i < len && token_space(s[i]))
			i++;
		start = i;
		while (i < len && !token_space(s[i]))
			i++;
		n += (int64_t)((i - start + 3) / 4);
	}
	return n;
}
