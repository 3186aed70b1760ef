/* The keys of a route's tries: retries on other endpoints and the queue for a free endpoint. */
#include <stddef.h>

#include "confrow.h"
#include "config.h"
#include "req.h"

#define DAY_MS	86400000	/* largest duration */

/* The conditions a route may retry on: bit i of sy_retry.on is word i. */
static const char *const retry_conditions[] = {
	"connect", "5xx", "429", "timeout", NULL
};

/* Backoff at most its largest value. */
static void
retry_check(struct sy_conf *c, const json_t *obj, const char *path,
    void *base)
{
	const struct sy_retry *rt = base;

	if (obj != NULL)
		sy_conf_order(c, obj, path, "backoff_ms", rt->backoff_ms,
		    "max_backoff_ms", rt->max_backoff_ms, 0);
}

static const struct sy_conf_row retry_rows[] = {
	{ .name = "max", .type = SY_CONF_UINT,
	  .offset = offsetof(struct sy_retry, max), .def.u = 2,
	  .max = SY_MAX_TRIES - 1, .doc = "retries per request" },
	{ .name = "budget", .type = SY_CONF_FRACTION,
	  .offset = offsetof(struct sy_retry, budget), .def.d = 0.2,
	  .doc = "share of the requests that may be retries" },
	{ .name = "min_per_s", .type = SY_CONF_UINT,
	  .offset = offsetof(struct sy_retry, min_per_s), .def.u = 5,
	  .max = 1000000, .doc = "retries per second always allowed" },
	{ .name = "backoff_ms", .type = SY_CONF_MS,
	  .offset = offsetof(struct sy_retry, backoff_ms), .def.u = 25,
	  .max = DAY_MS, .doc = "wait before the first retry, doubling" },
	{ .name = "max_backoff_ms", .type = SY_CONF_MS,
	  .offset = offsetof(struct sy_retry, max_backoff_ms), .def.u = 1000,
	  .max = DAY_MS, .doc = "longest wait between two tries" },
	{ .name = "on", .type = SY_CONF_FLAGS,
	  .offset = offsetof(struct sy_retry, on),
	  .def.u = SY_RETRY_ON_CONNECT | SY_RETRY_ON_5XX | SY_RETRY_ON_429,
	  .words = retry_conditions, .what = "retry condition",
	  .doc = "failures that are retried" },
	{ .name = NULL }
};

const struct sy_conf_table sy_retry_table = {
	.path = "routes[].retries",
	.rows = retry_rows,
	.size = sizeof(struct sy_retry),
	.check = retry_check
};

static const struct sy_conf_row queue_rows[] = {
	{ .name = "max", .type = SY_CONF_UINT,
	  .offset = offsetof(struct sy_queue, max), .max = 100000,
	  .doc = "requests waiting per worker and pool; 0: no queue" },
	{ .name = "timeout_ms", .type = SY_CONF_MS,
	  .offset = offsetof(struct sy_queue, timeout_ms), .def.u = 5000,
	  .min = 1, .max = DAY_MS, .doc = "longest wait" },
	{ .name = NULL }
};

const struct sy_conf_table sy_queue_table = {
	.path = "routes[].queue",
	.rows = queue_rows,
	.size = sizeof(struct sy_queue)
};
