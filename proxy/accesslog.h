/* The access log: one JSON line per finished request, to a file or stdout. */
#ifndef SY_ACCESSLOG_H
#define SY_ACCESSLOG_H

#include "record.h"

struct evbuffer;
struct sy_accesslog;
struct sy_price;

/*
 * Opens the log at target: a file path (appended to, created 0640),
 * "stdout", or "off".  flush_ms 0: each line is written at once; else a
 * thread's lines are gathered and written together, within flush_ms of the
 * first (when that thread writes again, or calls sy_accesslog_flush).
 * Returns the log, or NULL with *err malloc'd.
 */
struct sy_accesslog *sy_accesslog_open(const char *target, unsigned flush_ms,
    char **err);

/*
 * Closes and frees log (NULL is fine), after writing the calling thread's
 * gathered lines; other threads must have flushed theirs.
 */
void sy_accesslog_close(struct sy_accesslog *log);

/*
 * Writes the calling thread's gathered lines of log now (nothing to do when
 * it has none or log writes each line at once).  Thread safe.
 */
void sy_accesslog_flush(struct sy_accesslog *log);

/* The log's flush_ms (0: unbuffered, or NULL). */
unsigned sy_accesslog_flush_ms(const struct sy_accesslog *log);

/*
 * Appends the JSON line of r (no newline) to out: every field of struct
 * sy_record with the names documented in docs/configuration.md; absent
 * values as null.  Never writes credentials: a record carries none.
 */
void sy_accesslog_format(const struct sy_record *r, struct evbuffer *out);

/*
 * Writes the line of r to log, with a single write(2) or gathered with the
 * thread's other lines (flush_ms); thread safe.
 */
void sy_accesslog_write(struct sy_accesslog *log, const struct sy_record *r);

/*
 * Cost in USD of usage at price: (uncached prompt × input + cached ×
 * cached_input + completion × output) / 1e6.  A count of -1 counts as 0;
 * returns -1 when price is NULL or no count is known.
 */
double sy_cost_usd(const struct sy_price *price, const struct sy_usage *u);

#endif
