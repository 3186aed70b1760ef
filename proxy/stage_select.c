/* The selection stage: the route's model-selection policy picks the model that answers, within its context window; and on the way back its check, which may replace an answer by the next model's (a cascade) or hand a failed route to its fallbacks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "accesslog.h"
#include "canon.h"
#include "config.h"
#include "exchange.h"
#include "policy.h"
#include "select.h"
#include "util.h"

/* Makes model (NULL: the name being routed) the one that answers, with its pool. */
static void
use_model(struct sy_exchange *x, const char *model)
{
	struct sy_req *req = &x->req;

	req->model = model != NULL ? model : req->lookup_model;
	req->pool = sy_route_pool(req->route, req->route->wildcard ? NULL :
	    req->model);
	req->ntried = 0;
	req->endpoint = NULL;
}

/*
 * The tokens req needs of a context window (estimated prompt and
 * max_tokens), or 0 when model's window (0: unknown) surely holds it: the
 * body's bytes / 4 bound the prompt estimate, so most requests are never
 * parsed into a tree for this.
 */
static uint64_t
context_need(const struct sy_req *req, unsigned window)
{
	uint64_t need = sy_select_max_tokens(req);

	if (window == 0 || need + (evbuffer_get_length(req->raw) + 3) / 4 <=
	    window)
		return 0;
	need += sy_select_prompt_tokens(req);
	return need <= window ? 0 : need;
}

/*
 * Checks that the request fits its model's context window: estimated
 * prompt tokens plus max_tokens.  When it does not, the route's model with
 * the smallest window that fits answers instead ("context:overflow").
 * Returns 0, or -1 after setting a 400 context_length_exceeded reply.
 */
static int
fit_context(struct sy_exchange *x)
{
	struct sy_req *req = &x->req;
	const struct sy_route *route = req->route;
	unsigned have = sy_config_context_length(req->cfg, req->model), len;
	unsigned best = 0, largest = have;
	const char *to = NULL;
	char msg[256];
	uint64_t need;
	size_t i;

	if (route->wildcard || (need = context_need(req, have)) == 0)
		return 0;
	for (i = 0; i < route->nmodels; i++) {
		len = sy_config_context_length(req->cfg, route->models[i]);
		if (len > largest)
			largest = len;
		if (len >= need && (to == NULL || len < best)) {
			to = route->models[i];
			best = len;
		}
	}
	if (to != NULL) {
		req->select_reason = "context:overflow";
		use_model(x, to);
		return 0;
	}
	snprintf(msg, sizeof msg, "the request needs about %llu tokens (prompt "
	    "and max_tokens), more than the context window of any model "
	    "here (at most %u tokens)", (unsigned long long)need, largest);
	sy_exchange_fail(x, 400, "invalid_request_error",
	    "context_length_exceeded", msg, NULL);
	return -1;
}

/*
 * The model a cascade escalates req to: the next one after req's model
 * whose context window holds the request (a cascade only goes forward),
 * or NULL.
 */
static const char *
escalation_target(const struct sy_req *req)
{
	const struct sy_select_policy *sp = req->route->selection;
	const char *next = sy_select_next(req);

	while (next != NULL && !req->route->wildcard &&
	    context_need(req, sy_config_context_length(req->cfg, next)) != 0)
		next = sp->next(req->route->selection_state, next);
	return next;
}

static enum sy_verdict
select_enter(struct sy_exchange *x)
{
	struct sy_req *req = &x->req;
	const struct sy_route *route = req->route;

	if (x->select.preset != NULL && x->route.nvisited == 1)
		use_model(x, x->select.preset);	/* its batch's members' */
	else {
		use_model(x, route->selection->select(route->selection_state,
		    route, req, &req->select_reason));
		if (fit_context(x) == -1)
			return SY_RESPOND;
	}
	/* An answer that may be replaced is held until it is checked. */
	x->select.hold = escalation_target(req) != NULL;
	return SY_NEXT;
}

const struct sy_stage sy_stage_select = {
	.name = "select",
	.enter = select_enter
};

/* ==== The check of an answer ==== */

/*
 * The answer goes through the selection policy's check when the model may
 * escalate: a failed try (status, no data), a whole answer in the reply,
 * or a held stream's events.  Returns 1 when the next model is to answer
 * instead: the first answer's usage and cost are kept for the record.
 */
static int
escalate(struct sy_exchange *x, int status, struct evbuffer *data, int stream)
{
	struct sy_req *req = &x->req;
	const struct sy_select_policy *sp = req->route->selection;
	const char *next = escalation_target(req), *reason = NULL;
	struct sy_answer a;
	double cost;
	int esc;

	if (next == NULL || x->conn == NULL ||
	    sy_now_us() >= x->deadline)
		return 0;
	sy_canon_answer_read(&a, status, data, stream);
	esc = sp->check(req->route->selection_state, req, &a, &reason);
	sy_canon_answer_clear(&a);
	if (!esc)
		return 0;
	cost = sy_cost_usd(sy_config_price(req->cfg, req->model), &req->usage);
	if (cost >= 0)
		req->prior_cost_usd = (req->prior_cost_usd > 0 ?
		    req->prior_cost_usd : 0) + cost;
	sy_usage_add(&req->prior_usage, &req->usage);
	req->usage.prompt_tokens = req->usage.completion_tokens =
	    req->usage.cached_tokens = -1;
	req->escalations++;
	req->escalated_from = req->model;
	req->select_reason = reason;
	free(req->error);
	req->error = NULL;
	if (x->reply.body != NULL) {
		evbuffer_free(x->reply.body);
		x->reply.body = NULL;
	}
	x->reply.failed = 0;
	x->last.status = 0;
	if (x->respond.out != NULL)
		evbuffer_drain(x->respond.out,
		    evbuffer_get_length(x->respond.out));
	use_model(x, next);
	x->select.hold = escalation_target(req) != NULL;
	return 1;
}

static enum sy_verdict
check_enter(struct sy_exchange *x)
{
	if (x->reply.failed)
		return escalate(x, x->last.status, NULL, 0) ? SY_ESCALATE :
		    SY_FALLBACK;
	if (x->relay.streaming) {
		if (x->select.hold && escalate(x, 200, x->respond.out, 1))
			return SY_ESCALATE;
	} else if (x->reply.body != NULL &&
	    escalate(x, x->reply.status, x->reply.body, 0))
		return SY_ESCALATE;
	x->select.hold = 0;
	return SY_NEXT;
}

const struct sy_stage sy_stage_check = {
	.name = "check",
	.enter = check_enter
};
