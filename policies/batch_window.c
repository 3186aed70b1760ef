/* window: a batch goes at max_batch_size inputs, max_batch_tokens estimated tokens, or max_wait_us after its first input. */
#include <stdlib.h>

#include "common.h"
#include "policy.h"

static void *
window_create(const json_t *params, const struct sy_batch_bounds *b,
    size_t nendpoints, char **err)
{
	static const char *const known[] = { NULL };
	struct sy_batch_bounds *st;

	if (sy_params_check(params, "window", known, err) != 0)
		return NULL;
	if ((st = malloc(sizeof *st)) == NULL)
		return sy_policy_fail(err, "out of memory");
	*st = *b;
	return st;
}

static enum sy_flush
window_decide(void *state, const struct sy_batch_view *v, uint64_t *due_us)
{
	const struct sy_batch_bounds *b = state;

	*due_us = b->max_wait_us;
	return sy_batch_bound_reached(b, v);
}

static void
window_destroy(void *state)
{
	free(state);
}

const struct sy_batch_policy sy_batch_window = {
	.name = "window",
	.create = window_create,
	.decide = window_decide,
	.destroy = window_destroy
};
