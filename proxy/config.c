/* Configuration: parses and validates the JSON config file into reference-counted snapshots. */
#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "backend.h"
#include "batch.h"
#include "config.h"
#include "policy.h"
#include "req.h"
#include "util.h"

#define PATHLEN		512		/* longest JSON path kept whole */
#define DAY_MS		86400000	/* largest timeout */
#define ALLOWED_MAX	1000000		/* largest weight and max_concurrency */
#define MAX_FALLBACKS	8		/* fallbacks of one route */
#define MAX_QUEUE	100000		/* longest queue, per worker and pool */
#define MAX_BATCH	2048		/* most inputs in one batch */
#define MAX_BATCH_WAIT	60000000	/* longest batch wait, µs */

static const char *const root_keys[] = {
	"listen", "admin", "workers", "access_log", "access_log_flush_ms",
	"timeouts", "limits",
	"backends", "routes", "prices", "models", "cache", NULL
};
static const char *const timeout_keys[] = {
	"connect_ms", "first_byte_ms", "idle_ms", "total_ms", "drain_ms",
	"client_header_ms", "client_body_ms", "keepalive_ms", NULL
};
static const char *const limit_keys[] = {
	"max_body_bytes", "max_json_depth", "max_connections", NULL
};
static const char *const backend_keys[] = {
	"name", "url", "kind", "models", "weight", "max_concurrency",
	"api_key_env", "api_version", "tls", "health", "metrics", NULL
};
static const char *const tls_keys[] = { "ca_file", "verify", NULL };
static const char *const health_keys[] = {
	"path", "interval_ms", "timeout_ms", "healthy", "unhealthy", NULL
};
static const char *const scrape_keys[] = {
	"path", "interval_ms", "timeout_ms", NULL
};
static const char *const route_keys[] = {
	"name", "models", "aliases", "backends", "policy", "selection",
	"retries", "ejection", "queue", "fallbacks", "deadline_ms", "batch",
	"cache", NULL
};
static const char *const retry_keys[] = {
	"max", "budget", "min_per_s", "backoff_ms", "max_backoff_ms", "on",
	NULL
};
static const char *const ejection_keys[] = {
	"consecutive_failures", "error_rate", "min_requests", "window_ms",
	"cooldown_ms", "max_cooldown_ms", "min_available", NULL
};
static const char *const queue_keys[] = { "max", "timeout_ms", NULL };
static const char *const batch_keys[] = {
	"policy", "max_batch_size", "max_batch_tokens", "max_wait_us",
	"max_queue", NULL
};
static const char *const cache_keys[] = {
	"l1_max_bytes", "coalesce", "redis", NULL
};
static const char *const redis_keys[] = {
	"host", "port", "unix", "db", "password_env", "key_prefix",
	"connect_timeout_ms", "command_timeout_ms", "lock_ms", NULL
};
static const char *const route_cache_keys[] = {
	"enabled", "ttl_s", "max_entry_bytes", "deterministic_only",
	"replay_chunk_tokens", "replay_interval_ms", "namespace", NULL
};

/* The conditions a route may retry on, in the order messages list them. */
static const struct {
	const char *name;
	unsigned bit;
} retry_conds[] = {
	{ "connect", SY_RETRY_ON_CONNECT },
	{ "5xx", SY_RETRY_ON_5XX },
	{ "429", SY_RETRY_ON_429 },
	{ "timeout", SY_RETRY_ON_TIMEOUT }
};
#define NRETRY_CONDS	(sizeof retry_conds / sizeof retry_conds[0])
static const char *const price_keys[] = {
	"input", "output", "cached_input", NULL
};
static const char *const model_keys[] = { "context_length", NULL };

/* Where a JSON path starts in the text: its key, or its array element. */
struct pos {
	char *path;
	int line;
	int col;
};

struct cfg_error {
	int line;
	int col;
	size_t seq;
	char *text;			/* the whole line of *err */
};

/* One load: what it reads, and the errors it found so far. */
struct ctx {
	const char *name;		/* file name; NULL for --upstream */
	const json_t *root;
	const char *text;		/* comment-free text, for positions */
	size_t len;
	int indexed;
	struct pos *pos;
	size_t npos;
	size_t cappos;
	struct cfg_error *errs;
	size_t nerrs;
	size_t caperrs;
	json_t *served;			/* served model → route index */
	json_t *aliased;		/* alias → route index */
	int wildcard;			/* a route is a wildcard */
};

/* Walks the JSON text, recording where each path starts. */
struct scan {
	struct ctx *c;
	const char *p;
	const char *end;
	int line;
	int col;			/* code points read on this line */
	char path[PATHLEN];
};

static char *xasprintf(const char *, ...) __attribute__((format(printf, 1, 2)));
static void fail(struct ctx *, const char *, const char *, ...)
    __attribute__((format(printf, 3, 4)));

/* ==== Small helpers ==== */

/* reallocarray that aborts on failure. */
static void *
xreallocarray(void *p, size_t n, size_t size)
{
	if ((p = reallocarray(p, n ? n : 1, size)) == NULL)
		abort();
	return p;
}

/* asprintf that aborts on failure; returns the new string. */
static char *
xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) == -1)
		abort();
	va_end(ap);
	return s;
}

/* Whether s is a valid backend or route name: [A-Za-z0-9_.-]+. */
static int
valid_name(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++) {
		if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		    (*s >= '0' && *s <= '9') || *s == '_' || *s == '.' ||
		    *s == '-')
			continue;
		return 0;
	}
	return 1;
}

/* The name of route r for messages. */
static const char *
route_label(const struct sy_route *r)
{
	return r->name != NULL ? r->name : "(unnamed)";
}

/* "a string", "an object", ... for messages. */
static const char *
type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
		return "an integer";
	case JSON_REAL:
		return "a number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	case JSON_NULL:
		break;
	}
	return "null";
}

/* ==== Endpoint statistics, shared across snapshots by name ==== */

static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sy_endpoint_stats **stats_table;
static size_t stats_n;
static size_t stats_cap;

/* The stats of the endpoint called name, with one more reference. */
static struct sy_endpoint_stats *
stats_acquire(const char *name)
{
	struct sy_endpoint_stats *st;
	size_t i;

	pthread_mutex_lock(&stats_lock);
	for (i = 0; i < stats_n; i++) {
		st = stats_table[i];
		if (strcmp(st->name, name) == 0) {
			atomic_fetch_add(&st->refs, 1);
			pthread_mutex_unlock(&stats_lock);
			return st;
		}
	}
	st = sy_xcalloc(1, sizeof *st);
	st->name = sy_xstrdup(name);
	atomic_init(&st->refs, 1);
	atomic_init(&st->in_flight, 0);
	atomic_init(&st->ewma_bits, 0);
	atomic_init(&st->ewma_at_us, 0);
	atomic_init(&st->scraped_running, -1);
	atomic_init(&st->scraped_waiting, -1);
	atomic_init(&st->scraped_kv_permille, -1);
	atomic_init(&st->scraped_at_us, 0);
	atomic_init(&st->unhealthy, 0);
	atomic_init(&st->ejected_until_us, 0);
	atomic_init(&st->consecutive_failures, 0);
	atomic_init(&st->ejections, 0);
	atomic_init(&st->limited_until_us, 0);
	atomic_init(&st->window_start_us, 0);
	atomic_init(&st->window_requests, 0);
	atomic_init(&st->window_failures, 0);
	if (stats_n == stats_cap) {
		stats_cap = stats_cap ? stats_cap * 2 : 16;
		stats_table = xreallocarray(stats_table, stats_cap,
		    sizeof *stats_table);
	}
	stats_table[stats_n++] = st;
	pthread_mutex_unlock(&stats_lock);
	return st;
}

/* Drops a reference to st, freeing it when no snapshot uses it. */
static void
stats_release(struct sy_endpoint_stats *st)
{
	size_t i;

	pthread_mutex_lock(&stats_lock);
	if (atomic_fetch_sub(&st->refs, 1) == 1) {
		for (i = 0; i < stats_n; i++) {
			if (stats_table[i] == st) {
				stats_table[i] = stats_table[--stats_n];
				break;
			}
		}
		if (stats_n == 0) {
			free(stats_table);
			stats_table = NULL;
			stats_cap = 0;
		}
		free(st->name);
		free(st);
	}
	pthread_mutex_unlock(&stats_lock);
}

/* ==== JSON paths and where they are in the text ==== */

/* Whether key can follow a '.' unquoted in a path. */
static int
plain_key(const char *key)
{
	if (*key == '\0')
		return 0;
	for (; *key != '\0'; key++) {
		if ((*key >= 'a' && *key <= 'z') ||
		    (*key >= 'A' && *key <= 'Z') ||
		    (*key >= '0' && *key <= '9') || *key == '_' || *key == '-')
			continue;
		return 0;
	}
	return 1;
}

/* Appends member key to path (PATHLEN bytes): .key, or ["key"] if needed. */
static void
path_add_key(char *path, const char *key)
{
	size_t n = strlen(path);

	if (plain_key(key)) {
		snprintf(path + n, PATHLEN - n, "%s%s", n ? "." : "", key);
		return;
	}
	if (n + 2 < PATHLEN) {
		path[n++] = '[';
		path[n++] = '"';
	}
	for (; *key != '\0' && n + 3 < PATHLEN; key++) {
		if ((*key == '"' || *key == '\\') && n + 4 < PATHLEN)
			path[n++] = '\\';
		path[n++] = *key;
	}
	if (n + 2 < PATHLEN) {
		path[n++] = '"';
		path[n++] = ']';
	}
	path[n] = '\0';
}

/* Appends [i] to path (PATHLEN bytes). */
static void
path_add_index(char *path, size_t i)
{
	size_t n = strlen(path);

	snprintf(path + n, PATHLEN - n, "[%zu]", i);
}

/* Writes parent + member key into buf (PATHLEN bytes); returns buf. */
static char *
path_key(char *buf, const char *parent, const char *key)
{
	snprintf(buf, PATHLEN, "%s", parent);
	path_add_key(buf, key);
	return buf;
}

/* Writes parent + [i] into buf (PATHLEN bytes); returns buf. */
static char *
path_index(char *buf, const char *parent, size_t i)
{
	snprintf(buf, PATHLEN, "%s", parent);
	path_add_index(buf, i);
	return buf;
}

/*
 * Copies text (len bytes) with each // or # comment outside strings replaced
 * by spaces up to the end of its line, so positions stay as they were.
 * Returns the copy (NUL-terminated); caller frees.
 */
static char *
strip_comments(const char *text, size_t len)
{
	char *out = sy_xmalloc(len + 1);
	int instr = 0;
	size_t i;

	memcpy(out, text, len);
	out[len] = '\0';
	for (i = 0; i < len; i++) {
		if (instr) {
			if (out[i] == '\\' && i + 1 < len)
				i++;
			else if (out[i] == '"')
				instr = 0;
			continue;
		}
		if (out[i] == '"')
			instr = 1;
		else if (out[i] == '#' || (out[i] == '/' && i + 1 < len &&
		    out[i + 1] == '/')) {
			while (i < len && out[i] != '\n')
				out[i++] = ' ';
		}
	}
	return out;
}

/* Reads one byte, counting lines and code points as jansson does. */
static void
scan_advance(struct scan *s)
{
	unsigned char ch = (unsigned char)*s->p++;

	if (ch == '\n') {
		s->line++;
		s->col = 0;
	} else if ((ch & 0xc0) != 0x80)
		s->col++;
}

/* Skips JSON whitespace. */
static void
scan_ws(struct scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' ||
	    *s->p == '\n' || *s->p == '\r'))
		scan_advance(s);
}

/* Records that the current path starts at line:col. */
static void
scan_record(struct scan *s, int line, int col)
{
	struct ctx *c = s->c;

	if (c->npos == c->cappos) {
		c->cappos = c->cappos ? c->cappos * 2 : 64;
		c->pos = xreallocarray(c->pos, c->cappos, sizeof *c->pos);
	}
	c->pos[c->npos].path = sy_xstrdup(s->path);
	c->pos[c->npos].line = line;
	c->pos[c->npos].col = col;
	c->npos++;
}

/* Skips the string at s->p, quotes included. */
static void
scan_string(struct scan *s)
{
	scan_advance(s);
	while (s->p < s->end && *s->p != '"') {
		if (*s->p == '\\' && s->p + 1 < s->end)
			scan_advance(s);
		scan_advance(s);
	}
	if (s->p < s->end)
		scan_advance(s);
}

/* The decoded value of the JSON string literal at p (n bytes); caller frees. */
static char *
decode_key(const char *p, size_t n)
{
	json_t *v;
	char *key;

	if (n < 2)
		return sy_xstrdup("");
	if (memchr(p, '\\', n) == NULL) {
		if ((key = strndup(p + 1, n - 2)) == NULL)
			abort();
		return key;
	}
	v = json_loadb(p, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	key = sy_xstrdup(json_is_string(v) ? json_string_value(v) : "");
	json_decref(v);
	return key;
}

static void scan_value(struct scan *);

/* Reads the object at s->p, recording each member's key. */
static void
scan_object(struct scan *s)
{
	size_t len = strlen(s->path);
	const char *start;
	char *key;
	int line, col;

	scan_advance(s);
	for (;;) {
		scan_ws(s);
		if (s->p >= s->end || *s->p == '}')
			break;
		if (*s->p == ',') {
			scan_advance(s);
			continue;
		}
		if (*s->p != '"')
			break;
		line = s->line;
		col = s->col + 1;
		start = s->p;
		scan_string(s);
		key = decode_key(start, (size_t)(s->p - start));
		path_add_key(s->path, key);
		free(key);
		scan_record(s, line, col);
		scan_ws(s);
		if (s->p < s->end && *s->p == ':')
			scan_advance(s);
		scan_ws(s);
		scan_value(s);
		s->path[len] = '\0';
	}
	if (s->p < s->end)
		scan_advance(s);
}

/* Reads the array at s->p, recording each element. */
static void
scan_array(struct scan *s)
{
	size_t len = strlen(s->path), i = 0;

	scan_advance(s);
	for (;;) {
		scan_ws(s);
		if (s->p >= s->end || *s->p == ']')
			break;
		if (*s->p == ',') {
			scan_advance(s);
			continue;
		}
		path_add_index(s->path, i++);
		scan_record(s, s->line, s->col + 1);
		scan_value(s);
		s->path[len] = '\0';
	}
	if (s->p < s->end)
		scan_advance(s);
}

/* Reads the value at s->p. */
static void
scan_value(struct scan *s)
{
	if (s->p >= s->end)
		return;
	switch (*s->p) {
	case '{':
		scan_object(s);
		break;
	case '[':
		scan_array(s);
		break;
	case '"':
		scan_string(s);
		break;
	default:
		do
			scan_advance(s);
		while (s->p < s->end && strchr(",]} \t\r\n", *s->p) == NULL);
	}
}

/* Builds the position index of c's text (which jansson accepted). */
static void
index_text(struct ctx *c)
{
	struct scan s;

	memset(&s, 0, sizeof s);
	s.c = c;
	s.p = c->text;
	s.end = c->text + c->len;
	s.line = 1;
	scan_ws(&s);
	scan_record(&s, s.line, s.col + 1);
	scan_value(&s);
	c->indexed = 1;
}

/*
 * Finds where path starts: its own position, or that of its nearest
 * recorded ancestor (a missing key is reported at its parent).
 */
static void
find_pos(struct ctx *c, const char *path, int *line, int *col)
{
	size_t i, l, best = 0;
	int found = 0;

	if (!c->indexed)
		index_text(c);
	*line = 1;
	*col = 1;
	for (i = 0; i < c->npos; i++) {
		l = strlen(c->pos[i].path);
		if (strncmp(c->pos[i].path, path, l) != 0)
			continue;
		if (l != 0 && path[l] != '\0' && path[l] != '.' &&
		    path[l] != '[')
			continue;
		if (!found || l > best) {
			found = 1;
			best = l;
			*line = c->pos[i].line;
			*col = c->pos[i].col;
		}
	}
}

/* ==== Errors ==== */

/* Adds an error line (text, taken) found at line:col. */
static void
add_error(struct ctx *c, int line, int col, char *text)
{
	if (c->nerrs == c->caperrs) {
		c->caperrs = c->caperrs ? c->caperrs * 2 : 8;
		c->errs = xreallocarray(c->errs, c->caperrs, sizeof *c->errs);
	}
	c->errs[c->nerrs].line = line;
	c->errs[c->nerrs].col = col;
	c->errs[c->nerrs].seq = c->nerrs;
	c->errs[c->nerrs].text = text;
	c->nerrs++;
}

/* On the command line: the flag and value that path came from; caller frees. */
static char *
flag_of(struct ctx *c, const char *path)
{
	static const struct {
		const char *key;
		const char *flag;
		const char *def;
	} flags[] = {
		{ "listen", "--listen", "127.0.0.1:8080" },
		{ "admin", "--admin", "127.0.0.1:8081" },
		{ "access_log", "--access-log", "stdout" }
	};
	const json_t *b, *v;
	size_t i;

	if (strncmp(path, "backends[", 9) == 0) {
		b = json_array_get(json_object_get(c->root, "backends"),
		    strtoul(path + 9, NULL, 10));
		return xasprintf("--upstream %s",
		    json_string_value(json_object_get(b, "url")));
	}
	for (i = 0; i < sizeof flags / sizeof flags[0]; i++) {
		if (strcmp(path, flags[i].key) != 0)
			continue;
		if ((v = json_object_get(c->root, path)) == NULL)
			return xasprintf("%s %s (the default)", flags[i].flag,
			    flags[i].def);
		return xasprintf("%s %s", flags[i].flag, json_string_value(v));
	}
	return sy_xstrdup(path);
}

/* Reports an error about path: "FILE:LINE:COL: path: message". */
static void
fail(struct ctx *c, const char *path, const char *fmt, ...)
{
	va_list ap;
	char *msg, *flag;
	int line = 0, col = 0;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) == -1)
		abort();
	va_end(ap);
	if (c->name == NULL) {
		flag = flag_of(c, path);
		add_error(c, 0, 0, xasprintf("%s: %s", flag, msg));
		free(flag);
	} else {
		find_pos(c, path, &line, &col);
		if (*path == '\0')
			add_error(c, line, col, xasprintf("%s:%d:%d: %s",
			    c->name, line, col, msg));
		else
			add_error(c, line, col, xasprintf("%s:%d:%d: %s: %s",
			    c->name, line, col, path, msg));
	}
	free(msg);
}

/* Orders errors by position, then by discovery. */
static int
error_cmp(const void *a, const void *b)
{
	const struct cfg_error *x = a, *y = b;

	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	if (x->col != y->col)
		return x->col < y->col ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Joins c's errors, in file order, one per line; caller frees. */
static char *
join_errors(struct ctx *c)
{
	size_t i, n = 0;
	char *s;

	qsort(c->errs, c->nerrs, sizeof *c->errs, error_cmp);
	for (i = 0; i < c->nerrs; i++)
		n += strlen(c->errs[i].text) + 1;
	s = sy_xmalloc(n);
	n = 0;
	for (i = 0; i < c->nerrs; i++) {
		if (i != 0)
			s[n++] = '\n';
		strcpy(s + n, c->errs[i].text);
		n += strlen(c->errs[i].text);
	}
	s[n] = '\0';
	return s;
}

/* Frees what c holds (not c). */
static void
ctx_free(struct ctx *c)
{
	size_t i;

	for (i = 0; i < c->npos; i++)
		free(c->pos[i].path);
	free(c->pos);
	for (i = 0; i < c->nerrs; i++)
		free(c->errs[i].text);
	free(c->errs);
	json_decref(c->served);
	json_decref(c->aliased);
}

/* ==== Typed members ==== */

/* Reports every key of obj (at path) that is not in keys. */
static void
check_keys(struct ctx *c, const json_t *obj, const char *path,
    const char *const *keys)
{
	const char *key;
	char p[PATHLEN], known[256];
	json_t *v;
	size_t i, n;

	json_object_foreach((json_t *)obj, key, v) {
		for (i = 0; keys[i] != NULL; i++)
			if (strcmp(keys[i], key) == 0)
				break;
		if (keys[i] != NULL)
			continue;
		path_key(p, path, key);
		if (strcmp(key, "api_key") == 0 ||
		    strcmp(key, "password") == 0) {
			fail(c, p, "%s does not belong in the config file; put "
			    "it in an environment variable and name that in "
			    "\"%s_env\"", key[0] == 'a' ? "an API key" :
			    "a password", key);
			continue;
		}
		known[0] = '\0';
		for (i = 0, n = 0; keys[i] != NULL && n < sizeof known; i++)
			n += (size_t)snprintf(known + n, sizeof known - n,
			    "%s%s", i ? ", " : "", keys[i]);
		fail(c, p, "unknown key \"%s\"; known: %s", key, known);
	}
}

/*
 * Finds member key of obj (at parent) into *v: 1 when there, 0 when absent
 * and optional, -1 after reporting a missing required key.
 */
static int
lookup(struct ctx *c, const json_t *obj, const char *parent, const char *key,
    int required, const json_t **v)
{
	char p[PATHLEN];

	if ((*v = json_object_get(obj, key)) != NULL)
		return 1;
	if (!required)
		return 0;
	fail(c, path_key(p, parent, key), "required key is missing");
	return -1;
}

/*
 * Reads member key of obj (at parent) into *out if it is a non-empty
 * string.  Returns 1 when read, 0 when absent and optional, -1 after
 * reporting an error.
 */
static int
get_string(struct ctx *c, const json_t *obj, const char *parent,
    const char *key, int required, const char **out)
{
	const json_t *v;
	char p[PATHLEN];
	int r;

	if ((r = lookup(c, obj, parent, key, required, &v)) != 1)
		return r;
	if (!json_is_string(v)) {
		fail(c, path_key(p, parent, key), "expected a string, got %s",
		    type_name(v));
		return -1;
	}
	if (*json_string_value(v) == '\0') {
		fail(c, path_key(p, parent, key), "must not be empty");
		return -1;
	}
	*out = json_string_value(v);
	return 1;
}

/* As get_string, for an integer from min to max. */
static int
get_int(struct ctx *c, const json_t *obj, const char *parent,
    const char *key, json_int_t min, json_int_t max, json_int_t *out)
{
	const json_t *v = json_object_get(obj, key);
	char p[PATHLEN];

	if (v == NULL)
		return 0;
	if (!json_is_integer(v)) {
		fail(c, path_key(p, parent, key), "expected an integer, got %s",
		    type_name(v));
		return -1;
	}
	if (json_integer_value(v) < min || json_integer_value(v) > max) {
		fail(c, path_key(p, parent, key), "must be from %"
		    JSON_INTEGER_FORMAT " to %" JSON_INTEGER_FORMAT ", got %"
		    JSON_INTEGER_FORMAT, min, max, json_integer_value(v));
		return -1;
	}
	*out = json_integer_value(v);
	return 1;
}

/* As get_string, for a number ≥ 0 (a price). */
static int
get_price(struct ctx *c, const json_t *obj, const char *parent,
    const char *key, int required, double *out)
{
	const json_t *v;
	char p[PATHLEN];
	int r;

	if ((r = lookup(c, obj, parent, key, required, &v)) != 1)
		return r;
	if (!json_is_number(v)) {
		fail(c, path_key(p, parent, key), "expected a number, got %s",
		    type_name(v));
		return -1;
	}
	if (json_number_value(v) < 0) {
		fail(c, path_key(p, parent, key), "must not be negative, "
		    "got %g", json_number_value(v));
		return -1;
	}
	*out = json_number_value(v);
	return 1;
}

/* As get_string, for an object (returned borrowed, or NULL). */
static const json_t *
get_object(struct ctx *c, const json_t *obj, const char *parent,
    const char *key)
{
	const json_t *v = json_object_get(obj, key);
	char p[PATHLEN];

	if (v == NULL || json_is_object(v))
		return v;
	fail(c, path_key(p, parent, key), "expected an object, got %s",
	    type_name(v));
	return NULL;
}

/*
 * As get_string, for a non-empty array (returned borrowed, or NULL); what
 * says what the array lists, for the message when it is missing or empty.
 */
static const json_t *
get_list(struct ctx *c, const json_t *obj, const char *parent,
    const char *key, int required, const char *what)
{
	const json_t *v = json_object_get(obj, key);
	char p[PATHLEN];

	path_key(p, parent, key);
	if (v == NULL) {
		if (required)
			fail(c, p, "required key is missing; list at least "
			    "one %s", what);
		return NULL;
	}
	if (!json_is_array(v)) {
		fail(c, p, "expected an array, got %s", type_name(v));
		return NULL;
	}
	if (json_array_size(v) == 0) {
		fail(c, p, "must list at least one %s", what);
		return NULL;
	}
	return v;
}

/* As get_int, into an unsigned *out (left alone unless read). */
static int
get_uint(struct ctx *c, const json_t *obj, const char *parent,
    const char *key, json_int_t min, json_int_t max, unsigned *out)
{
	json_int_t n;
	int rc;

	if ((rc = get_int(c, obj, parent, key, min, max, &n)) == 1)
		*out = (unsigned)n;
	return rc;
}

/* As get_string, for a number (an integer too) from 0 to 1. */
static int
get_fraction(struct ctx *c, const json_t *obj, const char *parent,
    const char *key, double *out)
{
	const json_t *v = json_object_get(obj, key);
	char p[PATHLEN];

	if (v == NULL)
		return 0;
	if (!json_is_number(v)) {
		fail(c, path_key(p, parent, key), "expected a number from 0 "
		    "to 1, got %s", type_name(v));
		return -1;
	}
	if (json_number_value(v) < 0 || json_number_value(v) > 1) {
		fail(c, path_key(p, parent, key), "must be from 0 to 1, got %g",
		    json_number_value(v));
		return -1;
	}
	*out = json_number_value(v);
	return 1;
}

/* As get_string, for true or false into *out (left alone unless read). */
static int
get_bool(struct ctx *c, const json_t *obj, const char *parent,
    const char *key, int *out)
{
	const json_t *v = json_object_get(obj, key);
	char p[PATHLEN];

	if (v == NULL)
		return 0;
	if (!json_is_boolean(v)) {
		fail(c, path_key(p, parent, key), "expected true or false, "
		    "got %s", type_name(v));
		return -1;
	}
	*out = json_is_true(v);
	return 1;
}

/*
 * The value of environment variable name (a secret the config names at
 * path), malloc'd, or NULL after reporting that it is unset or empty.
 */
static char *
env_secret(struct ctx *c, const char *path, const char *name)
{
	const char *s = getenv(name);

	if (s == NULL)
		fail(c, path, "environment variable %s is not set", name);
	else if (*s == '\0')
		fail(c, path, "environment variable %s is empty", name);
	else
		return sy_xstrdup(s);
	return NULL;
}

/*
 * Checks that lo (member lokey of obj, or its default) is below hi (member
 * hikey), or at most hi unless strict.  Reports the error at lokey when
 * obj has it, else at hikey.
 */
static void
check_order(struct ctx *c, const json_t *obj, const char *parent,
    const char *lokey, unsigned lo, const char *hikey, unsigned hi,
    int strict)
{
	char p[PATHLEN];

	if (lo < hi || (!strict && lo == hi))
		return;
	if (json_object_get(obj, lokey) != NULL)
		fail(c, path_key(p, parent, lokey), "must be %s %s (%u), got "
		    "%u", strict ? "less than" : "at most", hikey, hi, lo);
	else
		fail(c, path_key(p, parent, hikey), "must be %s %s (%u), got "
		    "%u", strict ? "greater than" : "at least", lokey, lo, hi);
}

/*
 * Reads member key of obj (at parent), an HTTP path, into *out (malloc'd,
 * replacing what was there): it starts with '/' and holds no space or
 * control character.  Returns as get_string.
 */
static int
get_http_path(struct ctx *c, const json_t *obj, const char *parent,
    const char *key, char **out)
{
	const char *s, *q;
	char p[PATHLEN];
	int rc;

	if ((rc = get_string(c, obj, parent, key, 0, &s)) != 1)
		return rc;
	path_key(p, parent, key);
	if (*s != '/') {
		fail(c, p, "must start with '/', got \"%s\"", s);
		return -1;
	}
	for (q = s; *q != '\0'; q++) {
		if ((unsigned char)*q <= ' ' || *q == 0x7f) {
			fail(c, p, "must not contain spaces or control "
			    "characters");
			return -1;
		}
	}
	free(*out);
	*out = sy_xstrdup(s);
	return 1;
}

/* ==== Addresses and URLs ==== */

/*
 * Splits s (n bytes), "host[:port]" or "[v6][:port]", into *host (malloc'd,
 * without brackets), *port (-1 when absent) and *v6 (bracketed).  Returns
 * NULL, or a static reason.
 */
static const char *
split_hostport(const char *s, size_t n, char **host, int *port, int *v6)
{
	const char *h, *colon, *end = s + n, *q;
	size_t hl;
	long v = 0;

	*host = NULL;
	*port = -1;
	*v6 = 0;
	if (n > 0 && s[0] == '[') {
		if ((q = memchr(s, ']', n)) == NULL)
			return "missing ']' after the IPv6 address";
		h = s + 1;
		hl = (size_t)(q - h);
		*v6 = 1;
		colon = q + 1 < end ? q + 1 : NULL;
		if (colon != NULL && *colon != ':')
			return "expected ':' after ']'";
	} else {
		colon = memchr(s, ':', n);
		if (colon != NULL && memrchr(s, ':', n) != colon)
			return "an IPv6 address must be in brackets, as in "
			    "[::1]:8080";
		h = s;
		hl = colon != NULL ? (size_t)(colon - s) : n;
	}
	if (hl == 0)
		return "the host is empty";
	if (colon != NULL) {
		if (colon + 1 == end)
			return "the port is empty";
		for (q = colon + 1; q < end; q++) {
			if (*q < '0' || *q > '9')
				return "the port must be a number";
			if ((v = v * 10 + (*q - '0')) > 65535)
				break;
		}
		if (v < 1 || v > 65535)
			return "the port must be from 1 to 65535";
		*port = (int)v;
	}
	for (q = h; !*v6 && q < h + hl; q++) {
		if ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') ||
		    (*q >= '0' && *q <= '9') || *q == '-' || *q == '.' ||
		    *q == '_')
			continue;
		return "the host name may hold only letters, digits, '-', "
		    "'.' and '_'";
	}
	*host = strndup(h, hl);
	if (*host == NULL)
		abort();
	return NULL;
}

/*
 * Resolves host and port (an IPv6 literal when v6) into ss and len.
 * Returns NULL, or a reason written into buf (len bytes).
 */
static const char *
resolve(const char *host, int port, int v6, struct sockaddr_storage *ss,
    socklen_t *sslen, char *buf, size_t len)
{
	struct addrinfo hints, *res;
	char service[8];
	int rc;

	memset(&hints, 0, sizeof hints);
	hints.ai_family = v6 ? AF_INET6 : AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | (v6 ? AI_NUMERICHOST : 0);
	snprintf(service, sizeof service, "%d", port);
	if ((rc = getaddrinfo(host, service, &hints, &res)) != 0) {
		if (v6)
			snprintf(buf, len, "invalid IPv6 address \"%s\"", host);
		else
			snprintf(buf, len, "cannot resolve \"%s\": %s", host,
			    gai_strerror(rc));
		return buf;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*sslen = res->ai_addrlen;
	freeaddrinfo(res);
	return NULL;
}

/* As sy_config_parse_hostport; returns NULL or a reason (in buf). */
static const char *
parse_address(const char *s, struct sockaddr_storage *ss, socklen_t *sslen,
    char *buf, size_t len)
{
	const char *why;
	char *host;
	int port, v6;

	if ((why = split_hostport(s, strlen(s), &host, &port, &v6)) != NULL)
		return why;
	if (port == -1)
		why = "expected HOST:PORT or [IPv6]:PORT";
	else
		why = resolve(host, port, v6, ss, sslen, buf, len);
	free(host);
	return why;
}

/*
 * Parses url (at path) into ep's tls, host, port, base_path and address.
 * Returns 0, or -1 after reporting the error.
 */
static int
parse_url(struct ctx *c, const char *path, const char *url,
    struct sy_endpoint *ep)
{
	const char *p, *auth, *end, *why;
	char buf[256];
	size_t n;
	int v6;

	for (p = url; *p != '\0'; p++) {
		if ((unsigned char)*p <= ' ' || *p == 0x7f) {
			fail(c, path, "the URL must not contain spaces or "
			    "control characters");
			return -1;
		}
	}
	if ((p = strstr(url, "://")) == NULL) {
		fail(c, path, "expected an http:// or https:// URL");
		return -1;
	}
	if (p - url == 4 && strncasecmp(url, "http", 4) == 0)
		ep->tls = 0;
	else if (p - url == 5 && strncasecmp(url, "https", 5) == 0)
		ep->tls = 1;
	else {
		fail(c, path, "unsupported scheme \"%.*s\"; use http or https",
		    (int)(p - url), url);
		return -1;
	}
	auth = p + 3;
	end = auth + strcspn(auth, "/?#");
	if (strpbrk(end, "?#") != NULL) {
		fail(c, path, "a base URL has no query or fragment");
		return -1;
	}
	if (memchr(auth, '@', (size_t)(end - auth)) != NULL) {
		fail(c, path, "user info (user@host) is not allowed in the "
		    "URL; name the API key's variable in \"api_key_env\"");
		return -1;
	}
	why = split_hostport(auth, (size_t)(end - auth), &ep->host, &ep->port,
	    &v6);
	if (why != NULL) {
		fail(c, path, "%s", why);
		return -1;
	}
	if (ep->port == -1)
		ep->port = ep->tls ? 443 : 80;
	n = strlen(end);
	while (n > 0 && end[n - 1] == '/')
		n--;
	if (n > SY_BASE_PATH_MAX) {
		fail(c, path, "the URL's path is longer than %d characters",
		    SY_BASE_PATH_MAX);
		return -1;
	}
	if ((ep->base_path = strndup(end, n)) == NULL)
		abort();
	why = resolve(ep->host, ep->port, v6, &ep->addr, &ep->addrlen, buf,
	    sizeof buf);
	if (why != NULL) {
		fail(c, path, "%s", why);
		return -1;
	}
	return 0;
}

/* ==== Top-level settings ==== */

/* Reads listen, admin, workers, access_log and access_log_flush_ms. */
static void
load_settings(struct ctx *c, const json_t *root, struct sy_config *cfg)
{
	struct sockaddr_storage lss, ass;
	socklen_t llen = 0, alen = 0;
	const char *s, *why;
	const json_t *v;
	json_int_t n;
	char buf[256];

	s = "127.0.0.1:8080";
	get_string(c, root, "", "listen", 0, &s);
	cfg->listen = sy_xstrdup(s);
	if ((why = parse_address(s, &lss, &llen, buf, sizeof buf)) != NULL) {
		fail(c, "listen", "%s", why);
		llen = 0;
	}

	v = json_object_get(root, "admin");
	if (v != NULL && !json_is_null(v) && !json_is_string(v))
		fail(c, "admin", "expected \"HOST:PORT\" or null, got %s",
		    type_name(v));
	else if (v == NULL || json_is_string(v)) {
		s = v != NULL ? json_string_value(v) : "127.0.0.1:8081";
		cfg->admin = sy_xstrdup(s);
		if ((why = parse_address(s, &ass, &alen, buf,
		    sizeof buf)) != NULL)
			fail(c, "admin", "%s", why);
		else if (llen != 0 && alen == llen &&
		    memcmp(&ass, &lss, llen) == 0)
			fail(c, "admin", "the admin listener needs an address "
			    "of its own; listen is %s too", cfg->listen);
	}

	if (get_int(c, root, "", "workers", 0, 256, &n) == 1)
		cfg->workers = (unsigned)n;
	s = "stdout";
	get_string(c, root, "", "access_log", 0, &s);
	cfg->access_log = sy_xstrdup(s);
	get_uint(c, root, "", "access_log_flush_ms", 0, 60000,
	    &cfg->access_log_flush_ms);
}

/* Reads timeouts into t, defaults first. */
static void
load_timeouts(struct ctx *c, const json_t *root, struct sy_timeouts *t)
{
	const json_t *o;
	json_int_t n;

	t->connect_ms = 5000;
	t->first_byte_ms = 300000;
	t->idle_ms = 60000;
	t->total_ms = 600000;
	t->drain_ms = 30000;
	t->client_header_ms = 30000;
	t->client_body_ms = 120000;
	t->keepalive_ms = 75000;
	if ((o = get_object(c, root, "", "timeouts")) == NULL)
		return;
	check_keys(c, o, "timeouts", timeout_keys);
	if (get_int(c, o, "timeouts", "connect_ms", 1, DAY_MS, &n) == 1)
		t->connect_ms = (unsigned)n;
	if (get_int(c, o, "timeouts", "first_byte_ms", 1, DAY_MS, &n) == 1)
		t->first_byte_ms = (unsigned)n;
	if (get_int(c, o, "timeouts", "idle_ms", 1, DAY_MS, &n) == 1)
		t->idle_ms = (unsigned)n;
	if (get_int(c, o, "timeouts", "total_ms", 1, DAY_MS, &n) == 1)
		t->total_ms = (unsigned)n;
	if (get_int(c, o, "timeouts", "drain_ms", 0, DAY_MS, &n) == 1)
		t->drain_ms = (unsigned)n;
	if (get_int(c, o, "timeouts", "client_header_ms", 1, DAY_MS, &n) == 1)
		t->client_header_ms = (unsigned)n;
	if (get_int(c, o, "timeouts", "client_body_ms", 1, DAY_MS, &n) == 1)
		t->client_body_ms = (unsigned)n;
	if (get_int(c, o, "timeouts", "keepalive_ms", 1, DAY_MS, &n) == 1)
		t->keepalive_ms = (unsigned)n;
}

/* Reads limits into l, defaults first. */
static void
load_limits(struct ctx *c, const json_t *root, struct sy_limits *l)
{
	const json_t *o;
	json_int_t n;

	l->max_body_bytes = 8388608;
	l->max_json_depth = 64;
	l->max_connections = 4096;
	if ((o = get_object(c, root, "", "limits")) == NULL)
		return;
	check_keys(c, o, "limits", limit_keys);
	if (get_int(c, o, "limits", "max_body_bytes", 1, 1073741824, &n) == 1)
		l->max_body_bytes = (size_t)n;
	if (get_int(c, o, "limits", "max_json_depth", 1, 1024, &n) == 1)
		l->max_json_depth = (unsigned)n;
	if (get_int(c, o, "limits", "max_connections", 1, 1048576, &n) == 1)
		l->max_connections = (unsigned)n;
}

/* ==== Backends ==== */

/* Whether ep serves model (an endpoint without models serves any). */
static int
serves(const struct sy_endpoint *ep, const char *model)
{
	size_t i;

	if (ep->nmodels == 0)
		return 1;
	for (i = 0; i < ep->nmodels; i++)
		if (strcmp(ep->models[i], model) == 0)
			return 1;
	return 0;
}

/* The names of cfg's backends, comma separated; caller frees. */
static char *
backend_names(const struct sy_config *cfg)
{
	size_t i, n = 1;
	char *s;

	for (i = 0; i < cfg->nendpoints; i++)
		if (cfg->endpoints[i].name != NULL)
			n += strlen(cfg->endpoints[i].name) + 2;
	s = sy_xmalloc(n);
	s[0] = '\0';
	for (i = 0; i < cfg->nendpoints; i++) {
		if (cfg->endpoints[i].name == NULL)
			continue;
		if (s[0] != '\0')
			strcat(s, ", ");
		strcat(s, cfg->endpoints[i].name);
	}
	return s;
}

/* Reads the models of backend b (at path) into ep. */
static void
backend_models(struct ctx *c, const json_t *b, const char *path,
    struct sy_endpoint *ep)
{
	const json_t *arr = json_object_get(b, "models"), *v;
	char p[PATHLEN], q[PATHLEN];
	const char *m;
	size_t i, j;

	if (arr == NULL)
		return;
	path_key(p, path, "models");
	if (!json_is_array(arr)) {
		fail(c, p, "expected an array of model names, got %s",
		    type_name(arr));
		return;
	}
	ep->models = sy_xcalloc(json_array_size(arr), sizeof *ep->models);
	json_array_foreach(arr, i, v) {
		path_index(q, p, i);
		if (!json_is_string(v) || *json_string_value(v) == '\0') {
			fail(c, q, "expected a model name, got %s",
			    json_is_string(v) ? "\"\"" : type_name(v));
			continue;
		}
		m = json_string_value(v);
		if (strcmp(m, "*") == 0) {
			fail(c, q, "\"*\" is for routes; to serve any model, "
			    "leave \"models\" out");
			continue;
		}
		for (j = 0; j < ep->nmodels; j++)
			if (strcmp(ep->models[j], m) == 0)
				break;
		if (j < ep->nmodels) {
			fail(c, q, "duplicate model \"%s\"", m);
			continue;
		}
		ep->models[ep->nmodels++] = sy_xstrdup(m);
	}
}

/* Reads the tls object of backend b; url_ok says the URL parsed. */
static void
backend_tls(struct ctx *c, const json_t *b, const char *path,
    struct sy_endpoint *ep, int url_ok)
{
	const json_t *o;
	const char *s;
	char p[PATHLEN], q[PATHLEN];

	if ((o = get_object(c, b, path, "tls")) == NULL)
		return;
	path_key(p, path, "tls");
	if (url_ok && !ep->tls)
		fail(c, p, "tls settings apply only to https URLs");
	check_keys(c, o, p, tls_keys);
	if (get_string(c, o, p, "ca_file", 0, &s) == 1) {
		ep->ca_file = sy_xstrdup(s);
		if (access(s, R_OK) != 0)
			fail(c, path_key(q, p, "ca_file"), "cannot read "
			    "\"%s\": %s", s, strerror(errno));
	}
	get_bool(c, o, p, "verify", &ep->tls_verify);
}

/*
 * Reads the health object of backend b into ep->health: absent, checks
 * are off; present, they run every interval_ms (default 5000).
 */
static void
backend_health(struct ctx *c, const json_t *b, const char *path,
    struct sy_endpoint *ep)
{
	struct sy_health_check *h = &ep->health;
	const json_t *o;
	char p[PATHLEN];
	int ok;

	h->interval_ms = 0;
	h->timeout_ms = 2000;
	h->healthy = 2;
	h->unhealthy = 3;
	if (ep->kind != NULL)
		h->path = sy_xstrdup(ep->kind->health_path);
	if ((o = get_object(c, b, path, "health")) == NULL)
		return;
	path_key(p, path, "health");
	check_keys(c, o, p, health_keys);
	h->interval_ms = 5000;
	get_http_path(c, o, p, "path", &h->path);
	ok = get_uint(c, o, p, "interval_ms", 1, DAY_MS,
	    &h->interval_ms) != -1;
	ok &= get_uint(c, o, p, "timeout_ms", 1, DAY_MS, &h->timeout_ms) != -1;
	if (ok)
		check_order(c, o, p, "timeout_ms", h->timeout_ms,
		    "interval_ms", h->interval_ms, 1);
	get_uint(c, o, p, "healthy", 1, 100, &h->healthy);
	get_uint(c, o, p, "unhealthy", 1, 100, &h->unhealthy);
}

/*
 * Reads the metrics object of backend b into ep->scrape: absent, the
 * endpoint's /metrics is not read; present, every interval_ms (default
 * 1000).
 */
static void
backend_scrape(struct ctx *c, const json_t *b, const char *path,
    struct sy_endpoint *ep)
{
	struct sy_scrape *s = &ep->scrape;
	const json_t *o;
	char p[PATHLEN];

	s->interval_ms = 0;
	s->timeout_ms = 1000;
	s->path = sy_xstrdup("/metrics");
	if ((o = get_object(c, b, path, "metrics")) == NULL)
		return;
	path_key(p, path, "metrics");
	check_keys(c, o, p, scrape_keys);
	s->interval_ms = 1000;
	get_http_path(c, o, p, "path", &s->path);
	get_uint(c, o, p, "interval_ms", 50, DAY_MS, &s->interval_ms);
	get_uint(c, o, p, "timeout_ms", 1, DAY_MS, &s->timeout_ms);
}

/* Reads backend b (at path) into ep, cfg->endpoints[ep->index]. */
static void
load_backend(struct ctx *c, const json_t *b, const char *path,
    struct sy_config *cfg, struct sy_endpoint *ep)
{
	const char *s, *key;
	char p[PATHLEN], names[256];
	json_int_t n;
	size_t i;
	int url_ok = 0;

	ep->weight = 1;
	ep->tls_verify = 1;
	if (!json_is_object(b)) {
		fail(c, path, "expected an object, got %s", type_name(b));
		return;
	}
	check_keys(c, b, path, backend_keys);

	if (get_string(c, b, path, "name", 1, &s) == 1) {
		ep->name = sy_xstrdup(s);
		path_key(p, path, "name");
		if (!valid_name(s))
			fail(c, p, "invalid name \"%s\": use letters, digits, "
			    "'_', '.' and '-'", s);
		for (i = 0; i < ep->index; i++) {
			if (cfg->endpoints[i].name != NULL &&
			    strcmp(cfg->endpoints[i].name, s) == 0) {
				fail(c, p, "duplicate backend name \"%s\" "
				    "(also backends[%zu])", s, i);
				break;
			}
		}
	}
	if (get_string(c, b, path, "url", 1, &s) == 1) {
		ep->url = sy_xstrdup(s);
		url_ok = parse_url(c, path_key(p, path, "url"), s, ep) == 0;
	}

	s = "openai";
	if (get_string(c, b, path, "kind", 0, &s) != -1 &&
	    (ep->kind = sy_backend_kind_find(s)) == NULL) {
		sy_backend_kind_names(names, sizeof names);
		fail(c, path_key(p, path, "kind"), "unknown backend kind "
		    "\"%s\"; known: %s", s, names);
	}
	backend_models(c, b, path, ep);
	if (get_int(c, b, path, "weight", 0, ALLOWED_MAX, &n) == 1)
		ep->weight = (unsigned)n;
	if (get_int(c, b, path, "max_concurrency", 0, ALLOWED_MAX, &n) == 1)
		ep->max_concurrency = (unsigned)n;

	if (get_string(c, b, path, "api_key_env", 0, &key) == 1) {
		ep->api_key_env = sy_xstrdup(key);
		ep->api_key = env_secret(c, path_key(p, path, "api_key_env"),
		    key);
	}
	if (get_string(c, b, path, "api_version", 0, &key) == 1) {
		path_key(p, path, "api_version");
		if (strcmp(ep->kind ? ep->kind->name : "", "azure") != 0)
			fail(c, p, "only the azure kind takes an api_version");
		else
			ep->api_version = sy_xstrdup(key);
	}
	backend_tls(c, b, path, ep, url_ok);
	backend_health(c, b, path, ep);
	backend_scrape(c, b, path, ep);
}

/* Reads the backends array into cfg->endpoints. */
static void
load_backends(struct ctx *c, const json_t *root, struct sy_config *cfg)
{
	const json_t *arr;
	char p[PATHLEN];
	size_t i;

	if ((arr = get_list(c, root, "", "backends", 1, "backend")) == NULL)
		return;
	cfg->nendpoints = json_array_size(arr);
	cfg->endpoints = sy_xcalloc(cfg->nendpoints, sizeof *cfg->endpoints);
	for (i = 0; i < cfg->nendpoints; i++) {
		cfg->endpoints[i].index = i;
		load_backend(c, json_array_get(arr, i), path_index(p,
		    "backends", i), cfg, &cfg->endpoints[i]);
	}
}

/* ==== Routes ==== */

/* Whether route r serves model m by name. */
static int
route_has_model(const struct sy_route *r, const char *m)
{
	size_t i;

	for (i = 0; i < r->nmodels; i++)
		if (strcmp(r->models[i], m) == 0)
			return 1;
	return 0;
}

/* Writes into buf the path of the first element of models equal to m. */
static char *
model_path(char *buf, const json_t *o, const char *path, const char *m)
{
	const json_t *arr = json_object_get(o, "models"), *v;
	char p[PATHLEN];
	size_t i;

	path_key(p, path, "models");
	json_array_foreach(arr, i, v) {
		if (json_is_string(v) && strcmp(json_string_value(v), m) == 0)
			return path_index(buf, p, i);
	}
	return strcpy(buf, p);
}

/* Reads a route's name and models; ri is its index. */
static void
route_head(struct ctx *c, const json_t *o, const char *path,
    struct sy_config *cfg, size_t ri)
{
	struct sy_route *r = &cfg->routes[ri];
	const json_t *arr, *v;
	const json_t *owner;
	char p[PATHLEN], q[PATHLEN];
	const char *s;
	size_t i, j;

	check_keys(c, o, path, route_keys);
	if (get_string(c, o, path, "name", 1, &s) == 1) {
		r->name = sy_xstrdup(s);
		path_key(p, path, "name");
		if (!valid_name(s))
			fail(c, p, "invalid name \"%s\": use letters, digits, "
			    "'_', '.' and '-'", s);
		for (i = 0; i < ri; i++) {
			if (cfg->routes[i].name != NULL &&
			    strcmp(cfg->routes[i].name, s) == 0) {
				fail(c, p, "duplicate route name \"%s\" "
				    "(also routes[%zu])", s, i);
				break;
			}
		}
	}
	if ((arr = get_list(c, o, path, "models", 1,
	    "model (or \"*\")")) == NULL)
		return;
	path_key(p, path, "models");
	r->models = sy_xcalloc(json_array_size(arr), sizeof *r->models);
	json_array_foreach(arr, i, v) {
		path_index(q, p, i);
		if (!json_is_string(v) || *json_string_value(v) == '\0') {
			fail(c, q, "expected a model name, got %s",
			    json_is_string(v) ? "\"\"" : type_name(v));
			continue;
		}
		s = json_string_value(v);
		if (strcmp(s, "*") == 0) {
			if (json_array_size(arr) != 1)
				fail(c, q, "\"*\" must be the only model of a "
				    "wildcard route");
			else if (c->wildcard) {
				for (j = 0; j < ri; j++)
					if (cfg->routes[j].wildcard)
						break;
				fail(c, q, "only one route may be a wildcard; "
				    "routes[%zu] is one already", j);
			} else {
				c->wildcard = 1;
				r->wildcard = 1;
				r->models[r->nmodels++] = sy_xstrdup(s);
			}
			continue;
		}
		if (route_has_model(r, s)) {
			fail(c, q, "duplicate model \"%s\"", s);
			continue;
		}
		if ((owner = json_object_get(c->served, s)) != NULL) {
			j = (size_t)json_integer_value(owner);
			fail(c, q, "model \"%s\" is already served by route "
			    "\"%s\"", s, route_label(&cfg->routes[j]));
			continue;
		}
		json_object_set_new(c->served, s, json_integer((json_int_t)ri));
		r->models[r->nmodels++] = sy_xstrdup(s);
	}
}

/*
 * Reads the aliases of route o (cfg->routes[ri]): each maps a new name to
 * a model of the route.
 */
static void
route_aliases(struct ctx *c, const json_t *o, const char *path,
    struct sy_config *cfg, size_t ri)
{
	struct sy_route *r = &cfg->routes[ri];
	const json_t *obj, *v, *owner;
	char p[PATHLEN], q[PATHLEN];
	const char *from;

	if ((obj = get_object(c, o, path, "aliases")) == NULL)
		return;
	path_key(p, path, "aliases");
	if (r->wildcard && json_object_size(obj) != 0) {
		fail(c, p, "a wildcard route has no aliases: it sends every "
		    "model name on unchanged");
		return;
	}
	r->aliases = sy_xcalloc(json_object_size(obj), sizeof *r->aliases);
	json_object_foreach((json_t *)obj, from, v) {
		path_key(q, p, from);
		if (*from == '\0' || strcmp(from, "*") == 0) {
			fail(c, q, "an alias must be a model name");
			continue;
		}
		if ((owner = json_object_get(c->served, from)) != NULL) {
			fail(c, q, "alias \"%s\" is a model served by route "
			    "\"%s\"", from, route_label(&cfg->routes[
			    json_integer_value(owner)]));
			continue;
		}
		if ((owner = json_object_get(c->aliased, from)) != NULL) {
			fail(c, q, "alias \"%s\" is already an alias in route "
			    "\"%s\"", from, route_label(&cfg->routes[
			    json_integer_value(owner)]));
			continue;
		}
		if (!json_is_string(v)) {
			fail(c, q, "expected a model name, got %s",
			    type_name(v));
			continue;
		}
		if (!route_has_model(r, json_string_value(v))) {
			fail(c, q, "\"%s\" is not a model of this route",
			    json_string_value(v));
			continue;
		}
		json_object_set_new(c->aliased, from,
		    json_integer((json_int_t)ri));
		r->aliases[r->naliases].from = sy_xstrdup(from);
		r->aliases[r->naliases].to = sy_xstrdup(json_string_value(v));
		r->naliases++;
	}
}

/* Whether ep serves at least one model of r (any, for a wildcard route). */
static int
serves_route(const struct sy_endpoint *ep, const struct sy_route *r)
{
	size_t i;

	if (r->wildcard)
		return 1;
	for (i = 0; i < r->nmodels; i++)
		if (serves(ep, r->models[i]))
			return 1;
	return 0;
}

/*
 * Reads a route's backends (or takes every one serving it) and builds its
 * pools.  A model without a backend is an error, unless the backends list
 * already had one.
 */
static void
route_backends(struct ctx *c, const json_t *o, const char *path,
    struct sy_config *cfg, struct sy_route *r)
{
	const json_t *arr, *v;
	struct sy_endpoint *ep;
	struct sy_pool *pool;
	char p[PATHLEN], q[PATHLEN], *names;
	const char *s;
	size_t i, j, nerrs = c->nerrs;

	r->endpoints = sy_xcalloc(cfg->nendpoints, sizeof *r->endpoints);
	if (json_object_get(o, "backends") == NULL) {
		for (i = 0; i < cfg->nendpoints; i++)
			if (serves_route(&cfg->endpoints[i], r))
				r->endpoints[r->nendpoints++] =
				    &cfg->endpoints[i];
	} else if ((arr = get_list(c, o, path, "backends", 0,
	    "backend")) != NULL) {
		path_key(p, path, "backends");
		json_array_foreach(arr, i, v) {
			path_index(q, p, i);
			if (!json_is_string(v)) {
				fail(c, q, "expected a backend name, got %s",
				    type_name(v));
				continue;
			}
			s = json_string_value(v);
			for (j = 0, ep = NULL; j < cfg->nendpoints; j++)
				if (cfg->endpoints[j].name != NULL &&
				    strcmp(cfg->endpoints[j].name, s) == 0)
					ep = &cfg->endpoints[j];
			if (ep == NULL) {
				names = backend_names(cfg);
				fail(c, q, "unknown backend \"%s\"; known: %s",
				    s, names);
				free(names);
				continue;
			}
			for (j = 0; j < r->nendpoints; j++)
				if (r->endpoints[j] == ep)
					break;
			if (j < r->nendpoints)
				fail(c, q, "backend \"%s\" is listed twice", s);
			else if (!serves_route(ep, r))
				fail(c, q, "backend \"%s\" serves none of this "
				    "route's models", s);
			else
				r->endpoints[r->nendpoints++] = ep;
		}
	} else
		return;

	r->npools = r->wildcard ? 1 : r->nmodels;
	r->pools = sy_xcalloc(r->npools, sizeof *r->pools);
	for (i = 0; i < r->npools; i++) {
		pool = &r->pools[i];
		pool->route = r;
		pool->model = r->wildcard ? NULL : r->models[i];
		pool->endpoints = sy_xcalloc(r->nendpoints,
		    sizeof *pool->endpoints);
		for (j = 0; j < r->nendpoints; j++)
			if (pool->model == NULL ||
			    serves(r->endpoints[j], pool->model))
				pool->endpoints[pool->nendpoints++] =
				    r->endpoints[j];
		if (pool->nendpoints == 0 && pool->model != NULL &&
		    cfg->nendpoints != 0 && c->nerrs == nerrs)
			fail(c, model_path(q, o, path, pool->model),
			    "no backend %sserves model \"%s\"",
			    json_object_get(o, "backends") ? "of this route " :
			    "", pool->model);
	}
}

/*
 * Reads a policy member (key of o): a name, or an object with "name" and
 * the policy's parameters.  Sets *name (borrowed; def when absent) and
 * *params (a new object without "name").  Returns 0, or -1 after
 * reporting an error.
 */
static int
get_policy(struct ctx *c, const json_t *o, const char *path, const char *key,
    const char *def, const char **name, json_t **params)
{
	const json_t *v = json_object_get(o, key), *n, *x;
	char p[PATHLEN], q[PATHLEN];
	const char *k;

	path_key(p, path, key);
	if (v != NULL && !json_is_string(v) && !json_is_object(v)) {
		fail(c, p, "expected a policy name or an object with "
		    "\"name\", got %s", type_name(v));
		return -1;
	}
	if (json_is_object(v)) {
		if ((n = json_object_get(v, "name")) == NULL) {
			fail(c, path_key(q, p, "name"), "required key is "
			    "missing");
			return -1;
		}
		if (!json_is_string(n)) {
			fail(c, path_key(q, p, "name"), "expected a policy "
			    "name, got %s", type_name(n));
			return -1;
		}
		*name = json_string_value(n);
		*params = json_object();
		json_object_foreach((json_t *)v, k, x)
			if (strcmp(k, "name") != 0)
				json_object_set_new(*params, k,
				    json_deep_copy(x));
		return 0;
	}
	*name = v != NULL ? json_string_value(v) : def;
	*params = json_object();
	return 0;
}

/*
 * Reports that the policy name of member key of o (at path, a name or an
 * object with "name") is unknown, listing names; what says which policy.
 */
static void
unknown_policy(struct ctx *c, const json_t *o, const char *path,
    const char *key, const char *what, const char *name, const char *names)
{
	char p[PATHLEN];

	path_key(p, path, key);
	if (json_is_object(json_object_get(o, key)))
		path_add_key(p, "name");
	fail(c, p, "unknown %s \"%s\"; known: %s", what, name, names);
}

/* Finds the routing and selection policies of route o. */
static void
route_policies(struct ctx *c, const json_t *o, const char *path,
    struct sy_route *r)
{
	const char *name;
	char names[256];

	if (get_policy(c, o, path, "policy", "round_robin", &name,
	    &r->policy_params) == 0 &&
	    (r->policy = sy_route_policy_find(name)) == NULL) {
		sy_route_policy_names(names, sizeof names);
		unknown_policy(c, o, path, "policy", "policy", name, names);
	}
	if (get_policy(c, o, path, "selection", "alias", &name,
	    &r->selection_params) == 0 &&
	    (r->selection = sy_select_policy_find(name)) == NULL) {
		sy_select_policy_names(names, sizeof names);
		unknown_policy(c, o, path, "selection", "selection policy",
		    name, names);
	}
}

/* Gives route r the defaults of its retries, ejection, queue and deadline. */
static void
route_defaults(const struct sy_config *cfg, struct sy_route *r)
{
	r->retry.max = 2;
	r->retry.budget = 0.2;
	r->retry.min_per_s = 5;
	r->retry.backoff_ms = 25;
	r->retry.max_backoff_ms = 1000;
	r->retry.on = SY_RETRY_ON_CONNECT | SY_RETRY_ON_5XX | SY_RETRY_ON_429;
	r->ejection.consecutive_failures = 5;
	r->ejection.error_rate = 0;
	r->ejection.min_requests = 20;
	r->ejection.window_ms = 10000;
	r->ejection.cooldown_ms = 10000;
	r->ejection.max_cooldown_ms = 300000;
	r->ejection.min_available = 0.5;
	r->queue.max = 0;
	r->queue.timeout_ms = 5000;
	r->deadline_ms = cfg->timeouts.total_ms;
	r->cache.ttl_s = 3600;
	r->cache.max_entry_bytes = 1048576;
	r->cache.deterministic_only = 1;
	r->cache.replay_chunk_tokens = 4;
	atomic_init(&r->budget_start_us, 0);
	atomic_init(&r->requests, 0);
	atomic_init(&r->retries, 0);
}

/* Reads the conditions a route retries on (array on, at path) into *on. */
static void
retry_conditions(struct ctx *c, const json_t *arr, const char *path,
    unsigned *on)
{
	const json_t *v;
	char q[PATHLEN], known[64];
	const char *s;
	size_t i, j, n;
	unsigned bits = 0;

	json_array_foreach(arr, i, v) {
		path_index(q, path, i);
		if (!json_is_string(v)) {
			fail(c, q, "expected a retry condition, got %s",
			    type_name(v));
			continue;
		}
		s = json_string_value(v);
		for (j = 0; j < NRETRY_CONDS; j++)
			if (strcmp(retry_conds[j].name, s) == 0)
				break;
		if (j == NRETRY_CONDS) {
			known[0] = '\0';
			for (j = 0, n = 0; j < NRETRY_CONDS; j++)
				n += (size_t)snprintf(known + n,
				    sizeof known - n, "%s%s", j ? ", " : "",
				    retry_conds[j].name);
			fail(c, q, "unknown retry condition \"%s\"; known: %s",
			    s, known);
			continue;
		}
		if (bits & retry_conds[j].bit) {
			fail(c, q, "duplicate retry condition \"%s\"", s);
			continue;
		}
		bits |= retry_conds[j].bit;
	}
	*on = bits;
}

/* Reads the retries object of route o (at path) into r->retry. */
static void
route_retries(struct ctx *c, const json_t *o, const char *path,
    struct sy_route *r)
{
	struct sy_retry *rt = &r->retry;
	const json_t *obj, *arr;
	char p[PATHLEN], q[PATHLEN];
	int ok;

	if ((obj = get_object(c, o, path, "retries")) == NULL)
		return;
	path_key(p, path, "retries");
	check_keys(c, obj, p, retry_keys);
	get_uint(c, obj, p, "max", 0, SY_MAX_TRIES - 1, &rt->max);
	get_fraction(c, obj, p, "budget", &rt->budget);
	get_uint(c, obj, p, "min_per_s", 0, ALLOWED_MAX, &rt->min_per_s);
	ok = get_uint(c, obj, p, "backoff_ms", 0, DAY_MS,
	    &rt->backoff_ms) != -1;
	ok &= get_uint(c, obj, p, "max_backoff_ms", 0, DAY_MS,
	    &rt->max_backoff_ms) != -1;
	if (ok)
		check_order(c, obj, p, "backoff_ms", rt->backoff_ms,
		    "max_backoff_ms", rt->max_backoff_ms, 0);
	if ((arr = get_list(c, obj, p, "on", 0, "retry condition")) != NULL)
		retry_conditions(c, arr, path_key(q, p, "on"), &rt->on);
}

/* Reads the ejection object of route o (at path) into r->ejection. */
static void
route_ejection(struct ctx *c, const json_t *o, const char *path,
    struct sy_route *r)
{
	struct sy_ejection *e = &r->ejection;
	const json_t *obj;
	char p[PATHLEN];
	int ok;

	if ((obj = get_object(c, o, path, "ejection")) == NULL)
		return;
	path_key(p, path, "ejection");
	check_keys(c, obj, p, ejection_keys);
	get_uint(c, obj, p, "consecutive_failures", 0, ALLOWED_MAX,
	    &e->consecutive_failures);
	get_fraction(c, obj, p, "error_rate", &e->error_rate);
	get_uint(c, obj, p, "min_requests", 1, ALLOWED_MAX, &e->min_requests);
	get_uint(c, obj, p, "window_ms", 1, DAY_MS, &e->window_ms);
	ok = get_uint(c, obj, p, "cooldown_ms", 1, DAY_MS,
	    &e->cooldown_ms) != -1;
	ok &= get_uint(c, obj, p, "max_cooldown_ms", 1, DAY_MS,
	    &e->max_cooldown_ms) != -1;
	if (ok)
		check_order(c, obj, p, "cooldown_ms", e->cooldown_ms,
		    "max_cooldown_ms", e->max_cooldown_ms, 0);
	get_fraction(c, obj, p, "min_available", &e->min_available);
}

/* Reads the queue object of route o (at path) into r->queue. */
static void
route_queue(struct ctx *c, const json_t *o, const char *path,
    struct sy_route *r)
{
	const json_t *obj;
	char p[PATHLEN];

	if ((obj = get_object(c, o, path, "queue")) == NULL)
		return;
	path_key(p, path, "queue");
	check_keys(c, obj, p, queue_keys);
	get_uint(c, obj, p, "max", 0, MAX_QUEUE, &r->queue.max);
	get_uint(c, obj, p, "timeout_ms", 1, DAY_MS, &r->queue.timeout_ms);
}

/* Reads the batch object of route o (at path) into r->batch. */
static void
route_batch(struct ctx *c, const json_t *o, const char *path,
    struct sy_route *r)
{
	struct sy_batching *b = &r->batch;
	const json_t *obj;
	const char *name;
	char p[PATHLEN], names[256];
	json_int_t n;

	if ((obj = get_object(c, o, path, "batch")) == NULL)
		return;
	path_key(p, path, "batch");
	if (r->selection != NULL && r->selection->check != NULL) {
		/* A batch answers its members without their answers checked. */
		fail(c, p, "a route whose selection policy checks its "
		    "answers (%s) cannot batch", r->selection->name);
		return;
	}
	check_keys(c, obj, p, batch_keys);
	b->max_batch_size = 32;
	b->max_wait_us = 2000;
	b->max_queue = 1024;
	get_uint(c, obj, p, "max_batch_size", 1, MAX_BATCH, &b->max_batch_size);
	if (get_int(c, obj, p, "max_batch_tokens", 0, 1000000000, &n) == 1)
		b->max_batch_tokens = (uint64_t)n;
	if (get_int(c, obj, p, "max_wait_us", 0, MAX_BATCH_WAIT, &n) == 1)
		b->max_wait_us = (uint64_t)n;
	get_uint(c, obj, p, "max_queue", 1, MAX_QUEUE, &b->max_queue);
	if (get_policy(c, obj, p, "policy", "window", &name, &b->params) == 0 &&
	    (b->policy = sy_batch_policy_find(name)) == NULL) {
		sy_batch_policy_names(names, sizeof names);
		unknown_policy(c, obj, p, "policy", "batching policy", name,
		    names);
	}
}

/* Reads the cache object of route o (at path) into r->cache. */
static void
route_cache(struct ctx *c, const json_t *o, const char *path,
    struct sy_route *r)
{
	struct sy_route_cache *rc = &r->cache;
	const json_t *obj;
	const char *s;
	char p[PATHLEN];
	json_int_t n;

	if ((obj = get_object(c, o, path, "cache")) == NULL)
		return;
	path_key(p, path, "cache");
	check_keys(c, obj, p, route_cache_keys);
	rc->enabled = 1;
	get_bool(c, obj, p, "enabled", &rc->enabled);
	get_uint(c, obj, p, "ttl_s", 1, 31536000, &rc->ttl_s);
	if (get_int(c, obj, p, "max_entry_bytes", 1, 67108864, &n) == 1)
		rc->max_entry_bytes = (size_t)n;
	get_bool(c, obj, p, "deterministic_only", &rc->deterministic_only);
	get_uint(c, obj, p, "replay_chunk_tokens", 1, 4096,
	    &rc->replay_chunk_tokens);
	get_uint(c, obj, p, "replay_interval_ms", 0, 10000,
	    &rc->replay_interval_ms);
	if (get_string(c, obj, p, "namespace", 0, &s) == 1)
		rc->namespace = sy_xstrdup(s);
}

/*
 * The model name fallback s of route ri stands for (borrowed), or NULL
 * after reporting why it cannot be one (at path).  Model names and aliases
 * come first, then route names; with a wildcard route, any other name is
 * one that route serves.
 */
static const char *
fallback_model(struct ctx *c, const struct sy_config *cfg, size_t ri,
    const char *path, const char *s)
{
	const struct sy_route *r = &cfg->routes[ri], *other;
	const json_t *owner;
	size_t i;

	if (strcmp(s, "*") == 0) {
		fail(c, path, "\"*\" is not a model name; name a model the "
		    "wildcard route should ask for");
		return NULL;
	}
	if ((owner = json_object_get(c->served, s)) == NULL)
		owner = json_object_get(c->aliased, s);
	if (owner != NULL) {
		if ((size_t)json_integer_value(owner) == ri) {
			fail(c, path, "\"%s\" is served by this route; a "
			    "fallback must go to another route", s);
			return NULL;
		}
		return s;
	}
	for (i = 0; i < cfg->nroutes; i++) {
		other = &cfg->routes[i];
		if (other->name == NULL || strcmp(other->name, s) != 0)
			continue;
		if (i == ri) {
			fail(c, path, "a route cannot fall back to itself");
			return NULL;
		}
		if (other->wildcard) {
			fail(c, path, "route \"%s\" is a wildcard route: name "
			    "the model to ask it for", s);
			return NULL;
		}
		if (other->nmodels == 0)
			return NULL;	/* its models' error is reported */
		return other->models[0];
	}
	if (c->wildcard && !r->wildcard)
		return s;
	fail(c, path, "\"%s\" is no model, alias or route name of another "
	    "route", s);
	return NULL;
}

/*
 * Reads the fallbacks of route o (cfg->routes[ri], at path): model names
 * tried in order when the route cannot answer.  Runs once every route's
 * models and aliases are known.
 */
static void
route_fallbacks(struct ctx *c, const json_t *o, const char *path,
    struct sy_config *cfg, size_t ri)
{
	struct sy_route *r = &cfg->routes[ri];
	const json_t *arr = json_object_get(o, "fallbacks"), *v;
	char p[PATHLEN], q[PATHLEN];
	const char *s, *m;
	size_t i, j;

	if (arr == NULL)
		return;
	path_key(p, path, "fallbacks");
	if (!json_is_array(arr)) {
		fail(c, p, "expected an array of model or route names, got %s",
		    type_name(arr));
		return;
	}
	if (json_array_size(arr) > MAX_FALLBACKS) {
		fail(c, p, "at most %d fallbacks, got %zu", MAX_FALLBACKS,
		    json_array_size(arr));
		return;
	}
	r->fallbacks = sy_xcalloc(json_array_size(arr), sizeof *r->fallbacks);
	json_array_foreach(arr, i, v) {
		path_index(q, p, i);
		if (!json_is_string(v) || *json_string_value(v) == '\0') {
			fail(c, q, "expected a model or route name, got %s",
			    json_is_string(v) ? "\"\"" : type_name(v));
			continue;
		}
		s = json_string_value(v);
		if ((m = fallback_model(c, cfg, ri, q, s)) == NULL)
			continue;
		for (j = 0; j < r->nfallbacks; j++)
			if (strcmp(r->fallbacks[j], m) == 0)
				break;
		if (j < r->nfallbacks) {
			if (strcmp(m, s) == 0)
				fail(c, q, "duplicate fallback \"%s\"", s);
			else
				fail(c, q, "duplicate fallback \"%s\" (route "
				    "\"%s\" stands for its model \"%s\")", m,
				    s, m);
			continue;
		}
		r->fallbacks[r->nfallbacks++] = sy_xstrdup(m);
	}
}

/*
 * Reads the routes array: names and models of every route first, so that
 * aliases, backends and pools can be checked against all of them.
 */
static void
load_routes(struct ctx *c, const json_t *root, struct sy_config *cfg)
{
	const json_t *arr, *o;
	struct sy_route *r;
	char p[PATHLEN];
	size_t i, j;

	if ((arr = get_list(c, root, "", "routes", 1, "route")) == NULL)
		return;
	cfg->nroutes = json_array_size(arr);
	cfg->routes = sy_xcalloc(cfg->nroutes, sizeof *cfg->routes);
	for (i = 0; i < cfg->nroutes; i++) {
		cfg->routes[i].cfg = cfg;
		cfg->routes[i].index = i;
		route_defaults(cfg, &cfg->routes[i]);
		o = json_array_get(arr, i);
		if (!json_is_object(o))
			fail(c, path_index(p, "routes", i), "expected an "
			    "object, got %s", type_name(o));
		else
			route_head(c, o, path_index(p, "routes", i), cfg, i);
	}
	for (i = 0; i < cfg->nroutes; i++) {
		o = json_array_get(arr, i);
		if (!json_is_object(o))
			continue;
		r = &cfg->routes[i];
		path_index(p, "routes", i);
		route_aliases(c, o, p, cfg, i);
		route_backends(c, o, p, cfg, r);
		route_policies(c, o, p, r);
		route_retries(c, o, p, r);
		route_ejection(c, o, p, r);
		route_queue(c, o, p, r);
		route_batch(c, o, p, r);
		route_cache(c, o, p, r);
		get_uint(c, o, p, "deadline_ms", 1, DAY_MS, &r->deadline_ms);
		for (j = 0; j < r->nmodels; j++)
			json_object_set_new(cfg->model_index, r->models[j],
			    json_integer((json_int_t)i));
		for (j = 0; j < r->naliases; j++)
			json_object_set_new(cfg->model_index,
			    r->aliases[j].from, json_integer((json_int_t)i));
	}
	for (i = 0; i < cfg->nroutes; i++) {
		o = json_array_get(arr, i);
		if (json_is_object(o))
			route_fallbacks(c, o, path_index(p, "routes", i), cfg,
			    i);
	}
}

/* ==== Prices and models ==== */

/*
 * Whether member model of a per-model table (at path) names a served model
 * (not an alias) and holds an object; reports why not.  what and verb
 * word the messages ("a price", "price").
 */
static int
served_model_entry(struct ctx *c, const struct sy_config *cfg,
    const char *path, const char *model, const json_t *v, const char *what,
    const char *verb)
{
	const json_t *owner;

	if (*model == '\0' || strcmp(model, "*") == 0) {
		fail(c, path, "%s is for one model: name it", what);
		return 0;
	}
	if ((owner = json_object_get(c->aliased, model)) != NULL) {
		fail(c, path, "\"%s\" is an alias in route \"%s\"; %s the "
		    "model it maps to", model, route_label(
		    &cfg->routes[json_integer_value(owner)]), verb);
		return 0;
	}
	if (cfg->nroutes != 0 && !c->wildcard &&
	    json_object_get(c->served, model) == NULL) {
		fail(c, path, "no route serves model \"%s\"", model);
		return 0;
	}
	if (!json_is_object(v)) {
		fail(c, path, "expected an object, got %s", type_name(v));
		return 0;
	}
	return 1;
}

/* Reads the table of what is known of each model (its context length). */
static void
load_models(struct ctx *c, const json_t *root, struct sy_config *cfg)
{
	const json_t *obj, *v, *len;
	struct sy_model_info *mi;
	const char *model;
	char p[PATHLEN];

	if ((obj = get_object(c, root, "", "models")) == NULL)
		return;
	cfg->models = sy_xcalloc(json_object_size(obj), sizeof *cfg->models);
	json_object_foreach((json_t *)obj, model, v) {
		path_key(p, "models", model);
		if (!served_model_entry(c, cfg, p, model, v, "an entry",
		    "describe"))
			continue;
		check_keys(c, v, p, model_keys);
		mi = &cfg->models[cfg->nmodels];
		if (lookup(c, v, p, "context_length", 1, &len) != 1 ||
		    get_uint(c, v, p, "context_length", 1, 1000000000,
		    &mi->context_length) != 1)
			continue;
		mi->model = sy_xstrdup(model);
		cfg->nmodels++;
	}
}

/* Reads the price table. */
static void
load_prices(struct ctx *c, const json_t *root, struct sy_config *cfg)
{
	const json_t *obj, *v;
	struct sy_price *pr;
	const char *model;
	char p[PATHLEN];

	if ((obj = get_object(c, root, "", "prices")) == NULL)
		return;
	cfg->prices = sy_xcalloc(json_object_size(obj), sizeof *cfg->prices);
	json_object_foreach((json_t *)obj, model, v) {
		path_key(p, "prices", model);
		if (!served_model_entry(c, cfg, p, model, v, "a price",
		    "price"))
			continue;
		check_keys(c, v, p, price_keys);
		pr = &cfg->prices[cfg->nprices];
		if (get_price(c, v, p, "input", 1, &pr->input) != 1 ||
		    get_price(c, v, p, "output", 1, &pr->output) != 1)
			continue;
		if (get_price(c, v, p, "cached_input", 0,
		    &pr->cached_input) == 0)
			pr->cached_input = pr->input;
		pr->model = sy_xstrdup(model);
		cfg->nprices++;
	}
}

/* ==== Cache store ==== */

/* Reads the redis object of the cache object o into s. */
static void
cache_redis(struct ctx *c, const json_t *o, struct sy_cache_settings *s)
{
	const json_t *r;
	const char *str;
	char p[PATHLEN];
	json_int_t n;

	if ((r = get_object(c, o, "cache", "redis")) == NULL)
		return;
	s->redis = 1;
	check_keys(c, r, "cache.redis", redis_keys);
	if (get_string(c, r, "cache.redis", "host", 0, &str) == 1)
		s->redis_host = sy_xstrdup(str);
	if (get_int(c, r, "cache.redis", "port", 1, 65535, &n) == 1)
		s->redis_port = (int)n;
	if (get_string(c, r, "cache.redis", "unix", 0, &str) == 1) {
		s->redis_unix = sy_xstrdup(str);
		if (s->redis_host != NULL || json_object_get(r, "port") != NULL)
			fail(c, "cache.redis.unix", "give either a unix socket "
			    "or host and port");
	}
	get_uint(c, r, "cache.redis", "db", 0, 65535, &s->redis_db);
	if (get_string(c, r, "cache.redis", "password_env", 0, &str) == 1) {
		s->redis_password = env_secret(c, path_key(p, "cache.redis",
		    "password_env"), str);
	}
	if (get_string(c, r, "cache.redis", "key_prefix", 0, &str) == 1) {
		if (strlen(str) > 256)
			fail(c, "cache.redis.key_prefix", "at most 256 bytes, "
			    "got %zu", strlen(str));
		free(s->key_prefix);
		s->key_prefix = sy_xstrdup(str);
	}
	get_uint(c, r, "cache.redis", "connect_timeout_ms", 1, 60000,
	    &s->connect_timeout_ms);
	get_uint(c, r, "cache.redis", "command_timeout_ms", 1, 60000,
	    &s->command_timeout_ms);
	get_uint(c, r, "cache.redis", "lock_ms", 0, 600000, &s->lock_ms);
	if (s->redis_host == NULL && s->redis_unix == NULL)
		s->redis_host = sy_xstrdup("127.0.0.1");
}

/* Reads the top-level cache object into cfg->cache, defaults first. */
static void
load_cache(struct ctx *c, const json_t *root, struct sy_config *cfg)
{
	struct sy_cache_settings *s = &cfg->cache;
	const json_t *o;
	json_int_t n;

	s->l1_max_bytes = 64 * 1024 * 1024;
	s->coalesce = 1;
	s->redis_port = 6379;
	s->key_prefix = sy_xstrdup("sy:cache:");
	s->connect_timeout_ms = 200;
	s->command_timeout_ms = 50;
	if ((o = get_object(c, root, "", "cache")) == NULL)
		return;
	check_keys(c, o, "cache", cache_keys);
	if (get_int(c, o, "cache", "l1_max_bytes", 0, (json_int_t)1 << 40,
	    &n) == 1)
		s->l1_max_bytes = (size_t)n;
	get_bool(c, o, "cache", "coalesce", &s->coalesce);
	cache_redis(c, o, s);
}

/* ==== Snapshots ==== */

/* Frees cfg and all it holds; cfg may be partly built. */
static void
config_free(struct sy_config *cfg)
{
	struct sy_endpoint *ep;
	struct sy_route *r;
	size_t i, j;

	for (i = 0; i < cfg->nroutes; i++) {
		r = &cfg->routes[i];
		for (j = 0; j < r->npools; j++) {
			if (r->pools[j].policy_state != NULL &&
			    r->policy->destroy != NULL)
				r->policy->destroy(r->pools[j].policy_state);
			free(r->pools[j].endpoints);
		}
		free(r->pools);
		if (r->selection_state != NULL && r->selection->destroy != NULL)
			r->selection->destroy(r->selection_state);
		free(r->name);
		for (j = 0; j < r->nmodels; j++)
			free(r->models[j]);
		free(r->models);
		for (j = 0; j < r->naliases; j++) {
			free(r->aliases[j].from);
			free(r->aliases[j].to);
		}
		free(r->aliases);
		for (j = 0; j < r->nfallbacks; j++)
			free(r->fallbacks[j]);
		free(r->fallbacks);
		free(r->cache.namespace);
		free(r->endpoints);
		json_decref(r->policy_params);
		json_decref(r->selection_params);
		if (r->batch.batcher != NULL)
			sy_batcher_free(r->batch.batcher);
		json_decref(r->batch.params);
	}
	free(cfg->routes);
	for (i = 0; i < cfg->nendpoints; i++) {
		ep = &cfg->endpoints[i];
		free(ep->name);
		free(ep->url);
		free(ep->host);
		free(ep->base_path);
		for (j = 0; j < ep->nmodels; j++)
			free(ep->models[j]);
		free(ep->models);
		free(ep->api_key_env);
		free(ep->api_version);
		free(ep->api_key);
		free(ep->ca_file);
		free(ep->health.path);
		free(ep->scrape.path);
		if (ep->stats != NULL)
			stats_release(ep->stats);
	}
	free(cfg->endpoints);
	for (i = 0; i < cfg->nprices; i++)
		free(cfg->prices[i].model);
	free(cfg->prices);
	for (i = 0; i < cfg->nmodels; i++)
		free(cfg->models[i].model);
	free(cfg->models);
	free(cfg->cache.redis_host);
	free(cfg->cache.redis_unix);
	free(cfg->cache.redis_password);
	free(cfg->cache.key_prefix);
	free(cfg->path);
	free(cfg->listen);
	free(cfg->admin);
	free(cfg->access_log);
	json_decref(cfg->model_index);
	free(cfg);
}

/*
 * Reports a policy's create error err about its object at path: at the
 * parameter err starts with when it starts with a relative path ('.' or
 * '[' up to ": "), else at the object.
 */
static void
policy_fail(struct ctx *c, const char *path, const char *err)
{
	char p[PATHLEN];
	const char *colon;
	size_t n = strlen(path);

	if ((*err == '.' || *err == '[') && (colon = strstr(err, ": ")) !=
	    NULL && n + (size_t)(colon - err) < sizeof p) {
		memcpy(p, path, n);
		memcpy(p + n, err, (size_t)(colon - err));
		p[n + (size_t)(colon - err)] = '\0';
		fail(c, p, "%s", colon + 2);
	} else
		fail(c, path, "%s", err);
}

/* Takes the endpoints' stats and creates every policy state of a valid cfg. */
static void
config_start(struct ctx *c, struct sy_config *cfg)
{
	struct sy_route *r;
	char p[PATHLEN], q[PATHLEN];
	char *err;
	size_t i, j;

	for (i = 0; i < cfg->nendpoints; i++)
		cfg->endpoints[i].stats = stats_acquire(cfg->endpoints[i].name);
	for (i = 0; i < cfg->nroutes; i++) {
		r = &cfg->routes[i];
		path_index(p, "routes", i);
		for (j = 0; j < r->npools; j++) {
			err = NULL;
			r->pools[j].policy_state = r->policy->create(
			    r->policy_params, &r->pools[j], &err);
			if (err != NULL) {
				fail(c, path_key(q, p, "policy"), "%s", err);
				free(err);
				break;
			}
		}
		err = NULL;
		r->selection_state = r->selection->create(r->selection_params,
		    r, &err);
		if (err != NULL) {
			policy_fail(c, path_key(q, p, "selection"), err);
			free(err);
		}
		if (r->batch.policy != NULL &&
		    (r->batch.batcher = sy_batcher_new(r, &err)) == NULL) {
			path_key(q, p, "batch");
			path_add_key(q, "policy");
			fail(c, q, "%s", err);
			free(err);
		}
	}
}

/* Builds a snapshot from root; returns it (even partial), or NULL. */
static struct sy_config *
config_build(struct ctx *c, const json_t *root)
{
	struct sy_config *cfg;

	if (!json_is_object(root)) {
		fail(c, "", "the top level must be an object, not %s",
		    type_name(root));
		return NULL;
	}
	cfg = sy_xcalloc(1, sizeof *cfg);
	atomic_init(&cfg->refs, 1);
	cfg->model_index = json_object();
	c->served = json_object();
	c->aliased = json_object();
	check_keys(c, root, "", root_keys);
	load_settings(c, root, cfg);
	load_timeouts(c, root, &cfg->timeouts);
	load_limits(c, root, &cfg->limits);
	load_backends(c, root, cfg);
	load_routes(c, root, cfg);
	load_prices(c, root, cfg);
	load_models(c, root, cfg);
	load_cache(c, root, cfg);
	if (c->nerrs == 0)
		config_start(c, cfg);
	return cfg;
}

/* Hands cfg or the errors of c to the caller; returns 0 or -1. */
static int
config_finish(struct ctx *c, struct sy_config *cfg, struct sy_config **out,
    char **err)
{
	int rc = 0;

	*out = NULL;
	*err = NULL;
	if (c->nerrs != 0) {
		*err = join_errors(c);
		if (cfg != NULL)
			config_free(cfg);
		rc = -1;
	} else
		*out = cfg;
	ctx_free(c);
	return rc;
}

int
sy_config_load_string(const char *text, const char *name,
    struct sy_config **out, char **err)
{
	struct sy_config *cfg = NULL;
	json_error_t je;
	json_t *root;
	char *clean;
	struct ctx c;
	size_t len = strlen(text);

	memset(&c, 0, sizeof c);
	c.name = name;
	clean = strip_comments(text, len);
	c.text = clean;
	c.len = len;
	if ((root = json_loadb(clean, len, JSON_REJECT_DUPLICATES,
	    &je)) == NULL)
		add_error(&c, je.line, je.column, xasprintf("%s:%d:%d: %s",
		    name, je.line, je.column > 0 ? je.column : 1, je.text));
	else {
		c.root = root;
		cfg = config_build(&c, root);
	}
	json_decref(root);
	free(clean);
	return config_finish(&c, cfg, out, err);
}

int
sy_config_load_file(const char *path, struct sy_config **out, char **err)
{
	char *text = NULL;
	size_t len = 0, cap = 0, n;
	FILE *f;
	int rc;

	*out = NULL;
	if ((f = fopen(path, "rb")) == NULL) {
		*err = xasprintf("%s: cannot read: %s", path, strerror(errno));
		return -1;
	}
	do {
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 8192;
			text = xreallocarray(text, cap, 1);
		}
		n = fread(text + len, 1, cap - len - 1, f);
		len += n;
	} while (n != 0);
	if (ferror(f)) {
		*err = xasprintf("%s: cannot read: %s", path, strerror(errno));
		fclose(f);
		free(text);
		return -1;
	}
	fclose(f);
	text[len] = '\0';
	if (strlen(text) != len) {
		*err = xasprintf("%s: cannot read: the file holds a NUL byte",
		    path);
		free(text);
		return -1;
	}
	if ((rc = sy_config_load_string(text, path, out, err)) == 0)
		(*out)->path = sy_xstrdup(path);
	free(text);
	return rc;
}

int
sy_config_from_upstreams(const char *const *urls, size_t nurls,
    const char *listen, const char *admin, const char *access_log,
    struct sy_config **out, char **err)
{
	struct sy_config *cfg;
	json_t *root, *backends, *b, *route;
	struct ctx c;
	char name[32];
	size_t i;

	*out = NULL;
	if (nurls == 0) {
		*err = sy_xstrdup("--upstream: give at least one backend URL");
		return -1;
	}
	root = json_object();
	if (listen != NULL)
		json_object_set_new(root, "listen",
		    json_string_nocheck(listen));
	if (admin != NULL)
		json_object_set_new(root, "admin", json_string_nocheck(admin));
	if (access_log != NULL)
		json_object_set_new(root, "access_log",
		    json_string_nocheck(access_log));
	backends = json_array();
	for (i = 0; i < nurls; i++) {
		snprintf(name, sizeof name, "u%zu", i);
		b = json_object();
		json_object_set_new(b, "name", json_string(name));
		json_object_set_new(b, "url", json_string_nocheck(urls[i]));
		json_array_append_new(backends, b);
	}
	json_object_set_new(root, "backends", backends);
	route = json_pack("{s:s, s:[s]}", "name", "default", "models", "*");
	json_object_set_new(root, "routes", json_pack("[o]", route));

	memset(&c, 0, sizeof c);
	c.root = root;
	cfg = config_build(&c, root);
	json_decref(root);
	return config_finish(&c, cfg, out, err);
}

struct sy_config *
sy_config_ref(struct sy_config *cfg)
{
	atomic_fetch_add_explicit(&cfg->refs, 1, memory_order_relaxed);
	return cfg;
}

void
sy_config_unref(struct sy_config *cfg)
{
	if (cfg == NULL)
		return;
	if (atomic_fetch_sub_explicit(&cfg->refs, 1,
	    memory_order_acq_rel) == 1)
		config_free(cfg);
}

/* ==== Lookups ==== */

struct sy_route *
sy_config_route(const struct sy_config *cfg, const char *model)
{
	const json_t *v = NULL;

	if (model != NULL)
		v = json_object_get(cfg->model_index, model);
	if (v == NULL)
		v = json_object_get(cfg->model_index, "*");
	if (v == NULL)
		return NULL;
	return &cfg->routes[json_integer_value(v)];
}

struct sy_pool *
sy_route_pool(const struct sy_route *route, const char *model)
{
	size_t i;

	if (route->wildcard)
		return &route->pools[0];
	if (model == NULL)
		return NULL;
	for (i = 0; i < route->npools; i++)
		if (strcmp(route->pools[i].model, model) == 0)
			return &route->pools[i];
	return NULL;
}

const struct sy_price *
sy_config_price(const struct sy_config *cfg, const char *model)
{
	size_t i;

	for (i = 0; i < cfg->nprices; i++)
		if (strcmp(cfg->prices[i].model, model) == 0)
			return &cfg->prices[i];
	return NULL;
}

unsigned
sy_config_context_length(const struct sy_config *cfg, const char *model)
{
	size_t i;

	for (i = 0; i < cfg->nmodels; i++)
		if (strcmp(cfg->models[i].model, model) == 0)
			return cfg->models[i].context_length;
	return 0;
}

json_t *
sy_config_model_names(const struct sy_config *cfg)
{
	const struct sy_route *r;
	json_t *names = json_array();
	size_t i, j;

	for (i = 0; i < cfg->nroutes; i++) {
		r = &cfg->routes[i];
		for (j = 0; j < r->nmodels && !r->wildcard; j++)
			json_array_append_new(names, json_string(r->models[j]));
		for (j = 0; j < r->naliases; j++)
			json_array_append_new(names,
			    json_string(r->aliases[j].from));
	}
	return names;
}

int
sy_config_parse_hostport(const char *s, struct sockaddr_storage *ss,
    socklen_t *len)
{
	char buf[256];

	return parse_address(s, ss, len, buf, sizeof buf) == NULL ? 0 : -1;
}
