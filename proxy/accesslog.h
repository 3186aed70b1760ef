/* The access log: one JSON line per finished request, to a file or stdout. */
#ifndef SY_ACCESSLOG_H
#define SY_ACCESSLOG_H

#include "record.h"

struct evbuffer;
struct sy_accesslog;
struct sy_price;

/*
 * Opens the log at target: a file path (appended to, created 0640),
 * "stdout", or "off".  Returns the log, or NULL with *err malloc'd.
 */
struct sy_accesslog *sy_accesslog_open(const char *target, char **err);

/* Closes and frees log (NULL is fine). */
void sy_accesslog_close(struct sy_accesslog *log);

/*
 * Appends the JSON line of r (no newline) to out: every field of struct
 * sy_record with the names documented in docs/configuration.md; absent
 * values as null.  Never writes credentials: a record carries none.
 */
void sy_accesslog_format(const struct sy_record *r, struct evbuffer *out);

/* Writes the line of r to log with a single write(2); thread safe. */
void sy_accesslog_write(struct sy_accesslog *log, const struct sy_record *r);

/*
 * Cost in USD of usage at price: (uncached prompt × input + cached ×
 * cached_input + completion × output) / 1e6.  A count of -1 counts as 0;
 * returns -1 when price is NULL or no count is known.
 */
double sy_cost_usd(const struct sy_price *price, const struct sy_usage *u);

#endif
