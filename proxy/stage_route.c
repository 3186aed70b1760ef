/* The route stage: the model name a client sent picks a route; a route that cannot answer hands the request to its fallbacks, and when none is left the last failure is the reply. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "config.h"
#include "exchange.h"
#include "outlier.h"
#include "util.h"

/* Takes route for the request, routing by name (the client's model or a fallback's). */
static void
take(struct sy_exchange *x, struct sy_route *route, const char *name)
{
	struct sy_req *req = &x->req;

	x->route.visited[x->route.nvisited++] = route;
	atomic_fetch_add(&route->requests, 1);
	req->route = route;
	req->lookup_model = name;
}

/* The first route: the one serving the client's model, else 404. */
static enum sy_verdict
first_route(struct sy_exchange *x)
{
	struct sy_req *req = &x->req;
	struct sy_route *route = x->route.first;
	char msg[1024], *list;
	json_t *names;

	if (route == NULL &&
	    (route = sy_config_route(req->cfg, req->client_model)) == NULL) {
		names = sy_config_model_names(req->cfg);
		list = json_dumps(names, JSON_COMPACT);
		snprintf(msg, sizeof msg, "The model `%s` does not exist or is "
		    "not served here; served models: %s", req->client_model,
		    list ? list : "[]");
		free(list);
		json_decref(names);
		return sy_exchange_fail(x, 404, "invalid_request_error",
		    "model_not_found", msg, NULL);
	}
	if (x->route.first == NULL) {
		x->route.first = route;
		x->deadline = req->t_arrival + (uint64_t)route->deadline_ms *
		    1000;
	}
	take(x, route, req->client_model);
	return SY_NEXT;
}

/*
 * Nothing else will answer: the reply is the backend's own error when the
 * last try had one, else the last failure (503 with Retry-After when no
 * endpoint could take the request).
 */
static enum sy_verdict
give_up(struct sy_exchange *x)
{
	char ra[64];

	if (x->reply.body != NULL) {
		sy_exchange_error(x, "backend returned an error");
		return SY_RESPOND;
	}
	if (x->last.status == 0) {
		x->last.status = 503;
		x->last.code = "no_endpoint_available";
		snprintf(x->last.msg, sizeof x->last.msg,
		    "no backend endpoint can take the request now");
	}
	/* How long until an endpoint of the pool rests no more. */
	snprintf(ra, sizeof ra, "Retry-After: %u\r\n",
	    sy_outlier_retry_after(x->req.pool));
	return sy_exchange_fail(x, x->last.status, x->last.status == 429 ?
	    "rate_limit_error" : "server_error", x->last.code, x->last.msg,
	    x->last.status == 503 || x->last.status == 429 ? ra : NULL);
}

/* The route's tries failed: its next fallback route, else the reply. */
static enum sy_verdict
fall_back(struct sy_exchange *x)
{
	struct sy_route *first = x->route.first, *route;
	const char *name;
	unsigned i;

	while (x->route.next_fallback < first->nfallbacks &&
	    x->route.nvisited < SY_MAX_ROUTES && sy_now_us() < x->deadline) {
		name = first->fallbacks[x->route.next_fallback++];
		if ((route = sy_config_route(x->req.cfg, name)) == NULL)
			continue;
		for (i = 0; i < x->route.nvisited &&
		    x->route.visited[i] != route; i++)
			;
		if (i < x->route.nvisited)
			continue;
		x->req.fallbacks++;
		x->last.status = 0;
		x->reply.failed = 0;
		if (x->reply.body != NULL) {
			evbuffer_free(x->reply.body);
			x->reply.body = NULL;
		}
		take(x, route, name);
		return SY_NEXT;
	}
	return give_up(x);
}

static enum sy_verdict
route_enter(struct sy_exchange *x)
{
	if (x->route.nvisited == 0)
		return first_route(x);
	return fall_back(x);
}

const struct sy_stage sy_stage_route = {
	.name = "route",
	.enter = route_enter
};
