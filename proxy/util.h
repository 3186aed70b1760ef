/* Small shared utilities: clocks, logging, JSON string escaping. */
#ifndef SY_UTIL_H
#define SY_UTIL_H

#include <stddef.h>
#include <stdint.h>

struct evbuffer;

enum sy_log_level { SY_LOG_DEBUG, SY_LOG_INFO, SY_LOG_WARN, SY_LOG_ERROR };

/* Appends a string literal to an evbuffer, without its NUL. */
#define SY_ADD_LIT(buf, lit) evbuffer_add((buf), (lit), sizeof(lit) - 1)

/* Monotonic clock in microseconds. */
uint64_t sy_now_us(void);

/* Wall clock in microseconds since the epoch. */
uint64_t sy_wall_us(void);

/* Sets the lowest level that sy_log prints (default SY_LOG_INFO). */
void sy_log_set_level(enum sy_log_level level);

/* Prints one timestamped line to stderr, printf-style; thread safe. */
void sy_log(enum sy_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Appends s (len bytes, may hold any byte) to out as the inside of a JSON
 * string: quotes, backslashes and control characters escaped; invalid UTF-8
 * bytes become U+FFFD.  Does not add the surrounding quotes.
 */
void sy_json_escape(struct evbuffer *out, const char *s, size_t len);

/*
 * Appends doc's compact JSON text to out, dropping the reference to doc
 * (NULL is nothing to encode).  Returns 0, or -1 when doc could not be
 * encoded (out untouched).
 */
struct json_t;
int sy_json_add(struct evbuffer *out, struct json_t *doc);

/*
 * A fast pseudo-random 64-bit number (xorshift64*, one state per thread,
 * seeded at first use; no locks): policies' draws, jitter.
 */
uint64_t sy_rand64(void);

/*
 * Sets *err to a malloc'd printf-style message and returns -1: the error
 * path of every function that reports with char **err.
 */
int sy_fail(char **err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * An estimate of the tokens in len bytes of text, by the rule sy-sim
 * documents (docs/sy-sim.md, "Tokenizer"): words split at whitespace, each
 * word one token per piece of at most 4 bytes.  For backends that report
 * no usage, and for shares of a batch's usage.
 */
int64_t sy_text_tokens(const char *s, size_t len);

/* Allocation that aborts on failure (startup and invariants only). */
void *sy_xmalloc(size_t n);
void *sy_xcalloc(size_t n, size_t size);
void *sy_xrealloc(void *p, size_t n);
char *sy_xstrdup(const char *s);
/* The first n bytes of s (at most) as a new string; aborts when out of memory. */
char *sy_xstrndup(const char *s, size_t n);
/* A new printf-style string; aborts when out of memory. */
char *sy_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Writers into a caller's array, for heads and log lines built without
 * printf: each writes at o (the caller made room) and returns the byte
 * after what it wrote.  Nothing is NUL-terminated.
 */
/* Copies s (n bytes). */
char *sy_put_bytes(char *o, const char *s, size_t n);
/* Copies the NUL-terminated s, without its NUL. */
char *sy_put_str(char *o, const char *s);
/* v in decimal (at most 20 bytes). */
char *sy_put_u64(char *o, uint64_t v);
/* v in lowercase hex, zero-padded to width digits (at most 16). */
char *sy_put_hex(char *o, uint64_t v, unsigned width);
/* Copies a string literal, without its NUL. */
#define SY_PUT_LIT(o, lit) sy_put_bytes((o), (lit), sizeof(lit) - 1)


/*
 * Registries: table is a NULL-terminated array of pointers to structs whose
 * first member is `const char *name` (every vtable of a plug point).
 */
/* The entry called name, or NULL. */
const void *sy_registry_find(const void *const *table, const char *name);

/* Writes the names of table, comma separated, into buf (len > 0). */
void sy_registry_names(const void *const *table, char *buf, size_t len);

/* The entry at index i of table (owned by the table), or NULL past its end. */
const void *sy_registry_at(const void *const *table, size_t i);

#endif
