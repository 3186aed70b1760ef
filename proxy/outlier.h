/* Passive outlier ejection: endpoints that keep failing get no traffic for a growing cooldown. */
#ifndef SY_OUTLIER_H
#define SY_OUTLIER_H

struct sy_route;
struct sy_pool;
struct sy_endpoint;

/*
 * Counts one try's outcome at ep (failed: a transport error or a 5xx) under
 * route's ejection rule, and ejects ep when it failed consecutive_failures
 * times in a row or its error rate over the window reached error_rate —
 * unless fewer than min_available of pool's endpoints would be left.  An
 * ejection lasts cooldown_ms × 2^(ejections in a row − 1), at most
 * max_cooldown_ms; a success after it resets the doubling.  Returns 1 when
 * this call ejected ep.  Any worker thread.
 */
int sy_outlier_observe(const struct sy_route *route, const struct sy_pool *pool,
    struct sy_endpoint *ep, int failed);

/* Makes ep rest (no traffic) for seconds: a 429 with Retry-After. */
void sy_outlier_rest(struct sy_endpoint *ep, unsigned seconds);

/*
 * The seconds a client should wait before pool can take a request again
 * (for Retry-After): the time left until its first endpoint's rest after
 * a 429 or ejection ends, rounded up; 1 when an endpoint is neither
 * (busy, or down by health checks).  Any worker thread.
 */
unsigned sy_outlier_retry_after(const struct sy_pool *pool);

/* Whether ep is ejected now. */
int sy_outlier_ejected(const struct sy_endpoint *ep);

#endif
