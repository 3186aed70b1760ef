/* sy-sim: clocks, hashing, the seeded random generator and JSON helpers. */
#include <sys/time.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "sim.h"

/* Monotonic clock in microseconds. */
uint64_t
sim_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000);
}

/* Wall clock in seconds since the epoch, with microseconds. */
double
sim_wall(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (tv.tv_sec + tv.tv_usec / 1e6);
}

/* The splitmix64 finaliser: a bijective mix of the 64 bits of x. */
uint64_t
sim_mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return (x);
}

/* Next number of the splitmix64 sequence whose state is *state. */
static uint64_t
rng_next(uint64_t *state)
{
	*state += 0x9e3779b97f4a7c15ULL;
	return (sim_mix64(*state));
}

/* A uniform double in [0, 1) from the sequence *state. */
double
sim_rng_double(uint64_t *state)
{
	return ((rng_next(state) >> 11) * 0x1.0p-53);
}

/* FNV-1a over len bytes of p, started from seed and mixed; returns it. */
uint64_t
sim_hash_bytes(const void *p, size_t len, uint64_t seed)
{
	const unsigned char	*s = p;
	uint64_t		 h = 0xcbf29ce484222325ULL ^ seed;
	size_t			 i;

	for (i = 0; i < len; i++) {
		h ^= s[i];
		h *= 0x100000001b3ULL;
	}
	return (sim_mix64(h));
}

/* Length of the valid UTF-8 sequence at s (at most len bytes), or 0. */
static size_t
utf8_len(const unsigned char *s, size_t len)
{
	size_t		 n, i;
	uint32_t	 c;

	if (s[0] < 0x80)
		return (1);
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return (0);
	if (n > len)
		return (0);
	c = s[0] & (0x7f >> n);
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return (0);
		c = (c << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && c < 0x800) || (n == 4 && (c < 0x10000 || c > 0x10ffff)))
		return (0);
	if (c >= 0xd800 && c <= 0xdfff)
		return (0);
	return (n);
}

/*
 * Appends s (len bytes) to out as the inside of a JSON string: quotes,
 * backslashes and control characters escaped, invalid UTF-8 bytes as
 * U+FFFD.  Adds no surrounding quotes.
 */
void
sim_json_escape(struct evbuffer *out, const char *s, size_t len)
{
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 i = 0, start = 0, n;
	char			 esc[8];

	while (i < len) {
		if (p[i] >= 0x20 && p[i] < 0x80 && p[i] != '"' &&
		    p[i] != '\\') {
			i++;
			continue;
		}
		if (p[i] >= 0x80 && (n = utf8_len(p + i, len - i)) != 0) {
			i += n;
			continue;
		}
		if (i > start)
			evbuffer_add(out, s + start, i - start);
		if (p[i] == '"')
			evbuffer_add(out, "\\\"", 2);
		else if (p[i] == '\\')
			evbuffer_add(out, "\\\\", 2);
		else if (p[i] == '\n')
			evbuffer_add(out, "\\n", 2);
		else if (p[i] == '\r')
			evbuffer_add(out, "\\r", 2);
		else if (p[i] == '\t')
			evbuffer_add(out, "\\t", 2);
		else if (p[i] < 0x20) {
			snprintf(esc, sizeof esc, "\\u%04x", p[i]);
			evbuffer_add(out, esc, 6);
		} else
			evbuffer_add(out, "\xef\xbf\xbd", 3);
		start = ++i;
	}
	if (i > start)
		evbuffer_add(out, s + start, i - start);
}

/* Appends n in decimal (printf is slow on the hot path). */
void
sim_put_uint(struct evbuffer *out, uint64_t n)
{
	char	buf[20], *p = buf + sizeof buf;

	do {
		*--p = '0' + n % 10;
		n /= 10;
	} while (n != 0);
	evbuffer_add(out, p, buf + sizeof buf - p);
}

/* Appends x (not negative) with three decimals. */
void
sim_put_fixed3(struct evbuffer *out, double x)
{
	uint64_t	v;
	char		frac[4];

	v = x < 1e15 ? (uint64_t)(x * 1000 + 0.5) : (uint64_t)1e18;
	sim_put_uint(out, v / 1000);
	frac[0] = '.';
	frac[1] = '0' + v / 100 % 10;
	frac[2] = '0' + v / 10 % 10;
	frac[3] = '0' + v % 10;
	evbuffer_add(out, frac, 4);
}

/* A new JSON string of s (len bytes), invalid UTF-8 replaced by U+FFFD. */
json_t *
sim_json_text(const char *s, size_t len)
{
	const unsigned char	*p = (const unsigned char *)s;
	char			*clean, *q;
	json_t			*v;
	size_t			 i, n;

	if ((v = json_stringn(s, len)) != NULL)
		return (v);
	q = clean = sim_xmalloc(len * 3 + 1);
	for (i = 0; i < len; i += n) {
		if ((n = utf8_len(p + i, len - i)) != 0) {
			memcpy(q, p + i, n);
			q += n;
		} else {
			n = 1;
			memcpy(q, "\xef\xbf\xbd", 3);
			q += 3;
		}
	}
	v = json_stringn(clean, q - clean);
	free(clean);
	return (v != NULL ? v : json_string(""));
}

/* A new string formatted like printf; aborts when memory runs out. */
char *
sim_printf(const char *fmt, ...)
{
	va_list	 ap;
	char	*s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) == -1) {
		fprintf(stderr, "sy-sim: out of memory\n");
		abort();
	}
	va_end(ap);
	return (s);
}

/* malloc that aborts when memory runs out. */
void *
sim_xmalloc(size_t n)
{
	void	*p;

	if ((p = malloc(n == 0 ? 1 : n)) == NULL) {
		fprintf(stderr, "sy-sim: out of memory\n");
		abort();
	}
	return (p);
}

/* calloc that aborts when memory runs out. */
void *
sim_xcalloc(size_t n, size_t size)
{
	void	*p;

	if ((p = calloc(n == 0 ? 1 : n, size == 0 ? 1 : size)) == NULL) {
		fprintf(stderr, "sy-sim: out of memory\n");
		abort();
	}
	return (p);
}

/* Resizes p to n elements of size bytes; aborts on overflow or no memory. */
void *
sim_xrealloc(void *p, size_t n, size_t size)
{
	if (size != 0 && n > SIZE_MAX / size) {
		fprintf(stderr, "sy-sim: allocation too large\n");
		abort();
	}
	if ((p = realloc(p, n * size == 0 ? 1 : n * size)) == NULL) {
		fprintf(stderr, "sy-sim: out of memory\n");
		abort();
	}
	return (p);
}

/* strdup that aborts when memory runs out. */
char *
sim_xstrdup(const char *s)
{
	char	*p;

	if ((p = strdup(s)) == NULL) {
		fprintf(stderr, "sy-sim: out of memory\n");
		abort();
	}
	return (p);
}
