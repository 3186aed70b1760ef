/* Settings of the whole process read by the workers and the server: timeouts and request limits. */
#include <stddef.h>

#include "confrow.h"
#include "config.h"

#define DAY_MS	86400000	/* largest timeout */

#define TIMEOUT(key, least, value, text) {				\
	.name = #key, .type = SY_CONF_MS,				\
	.offset = offsetof(struct sy_timeouts, key),			\
	.def.u = (value), .min = (least), .max = DAY_MS, .doc = (text) }

static const struct sy_conf_row timeout_rows[] = {
	TIMEOUT(connect_ms, 1, 5000, "connecting to a backend, TLS included"),
	TIMEOUT(first_byte_ms, 1, 300000, "sending upstream to the first "
	    "byte of the answer"),
	TIMEOUT(idle_ms, 1, 60000, "silence between two pieces of a stream"),
	TIMEOUT(total_ms, 1, 600000, "the whole upstream exchange"),
	TIMEOUT(drain_ms, 0, 30000, "requests in flight at SIGTERM"),
	TIMEOUT(client_header_ms, 1, 30000, "a client's request head"),
	TIMEOUT(client_body_ms, 1, 120000, "a client's request body"),
	TIMEOUT(keepalive_ms, 1, 75000, "an idle client connection"),
	{ .name = NULL }
};

const struct sy_conf_table sy_timeouts_table = {
	.path = "timeouts",
	.rows = timeout_rows,
	.size = sizeof(struct sy_timeouts)
};

static const struct sy_conf_row limit_rows[] = {
	{ .name = "max_body_bytes", .type = SY_CONF_SIZE,
	  .offset = offsetof(struct sy_limits, max_body_bytes),
	  .def.u = 8388608, .min = 1, .max = 1073741824,
	  .doc = "largest request body; larger: 413" },
	{ .name = "max_inflate_ratio", .type = SY_CONF_UINT,
	  .offset = offsetof(struct sy_limits, max_inflate_ratio),
	  .def.u = 200, .max = 100000,
	  .doc = "gzip/deflate request bodies: decoded size per encoded byte; 0: 415" },
	{ .name = "max_json_depth", .type = SY_CONF_UINT,
	  .offset = offsetof(struct sy_limits, max_json_depth),
	  .def.u = 64, .min = 1, .max = 1024,
	  .doc = "deepest nesting of a request body; deeper: 400" },
	{ .name = "max_connections", .type = SY_CONF_UINT,
	  .offset = offsetof(struct sy_limits, max_connections),
	  .def.u = 4096, .min = 1, .max = 1048576,
	  .doc = "client connections, all workers" },
	{ .name = "max_connections_per_peer", .type = SY_CONF_UINT,
	  .offset = offsetof(struct sy_limits, max_connections_per_peer),
	  .def.u = 0, .max = 1048576,
	  .doc = "client connections from one address; 0: no limit" },
	{ .name = "max_buffered_bytes", .type = SY_CONF_SIZE,
	  .offset = offsetof(struct sy_limits, max_buffered_bytes),
	  .def.u = 268435456, .min = 1, .max = 68719476736ULL,
	  .doc = "whole backend answers held at once, all workers; more: 503" },
	{ .name = NULL }
};

const struct sy_conf_table sy_limits_table = {
	.path = "limits",
	.rows = limit_rows,
	.size = sizeof(struct sy_limits)
};
