/* session_affinity: a session key (a header, or the body's "user") placed on a consistent-hash ring, so that a conversation returns to the same replica. */
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "config.h"
#include "policy.h"
#include "req.h"
#include "ring.h"
#include "swrr.h"

static const char *const session_params[] = { "header", "vnodes", NULL };

struct session_state {
	char *header;			/* header carrying the key */
	struct sy_ring ring;
	struct sy_swrr rr;		/* for requests without a key */
};

/* Whether s is an HTTP header name (RFC 9110 token). */
static int
header_name_ok(const char *s)
{
	for (; *s != '\0'; s++)
		if (!(('a' <= *s && *s <= 'z') || ('A' <= *s && *s <= 'Z') ||
		    ('0' <= *s && *s <= '9') ||
		    strchr("!#$%&'*+-.^_`|~", *s) != NULL))
			return 0;
	return 1;
}

static void
session_destroy(void *state)
{
	struct session_state *st = state;

	free(st->header);
	sy_ring_free(&st->ring);
	sy_swrr_free(&st->rr);
	free(st);
}

static void *
session_create(const json_t *params, const struct sy_pool *pool, char **err)
{
	struct session_state *st;
	const char *header;
	long long vnodes;

	if (sy_params_check(params, "session_affinity", session_params,
	    err) == -1 ||
	    sy_param_string(params, "session_affinity", "header",
	    "x-session-id", 256, &header, err) == -1 ||
	    sy_param_int(params, "session_affinity", "vnodes", 100, 1, 1000,
	    &vnodes, err) == -1)
		return NULL;
	if (!header_name_ok(header))
		return sy_policy_fail(err, "session_affinity: parameter "
		    "\"header\" must be an HTTP header name (letters, digits "
		    "and !#$%%&'*+-.^_`|~), not \"%s\"", header);
	if ((st = calloc(1, sizeof *st)) == NULL)
		return sy_policy_fail(err, "out of memory");
	if ((st->header = strdup(header)) == NULL) {
		free(st);
		return sy_policy_fail(err, "out of memory");
	}
	if (sy_swrr_init(&st->rr, pool, err) == -1) {
		free(st->header);
		free(st);
		return NULL;
	}
	if (sy_ring_build(&st->ring, pool, (unsigned)vnodes, err) == -1) {
		session_destroy(st);
		return NULL;
	}
	return st;
}

static struct sy_endpoint *
session_pick(void *state, const struct sy_pool *pool, const struct sy_req *req,
    const char **reason)
{
	struct session_state *st = state;
	struct sy_ring_iter it;
	struct sy_endpoint *ep = NULL;
	const char *key;
	size_t len, idx;
	int skipped, first = 1;

	if ((key = sy_policy_session_key(req, st->header, &len)) == NULL) {
		ep = sy_swrr_pick(&st->rr, pool, req, &skipped);
		*reason = ep != NULL ? "no-session-key" : "all-busy";
		return ep;
	}
	*reason = "all-busy";
	if (pool->nendpoints != st->ring.nendpoints)
		return NULL;
	sy_ring_iter_start(&it, &st->ring, sy_hash64(key, len));
	while (sy_ring_iter_next(&it, &idx)) {
		if (sy_endpoint_usable(pool->endpoints[idx], req)) {
			ep = pool->endpoints[idx];
			*reason = first ? "session-hit" : "session-moved";
			break;
		}
		first = 0;
	}
	sy_ring_iter_end(&it);
	return ep;
}

const struct sy_route_policy sy_route_session_affinity = {
	.name = "session_affinity",
	.create = session_create,
	.pick = session_pick,
	.destroy = session_destroy
};
