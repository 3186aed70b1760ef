/* The prompt cache's stages: the lookup (a hit is the reply, or is replayed as a stream; identical requests in flight wait for one), and on the way back the store of a whole answer. */
#include <event2/buffer.h>
#include <event2/event.h>

#include "cache.h"
#include "config.h"
#include "exchange.h"
#include "respond.h"
#include "worker.h"

/* Sends a hit's next event, and the rest one at a time every replay_interval_ms of the route (all at once when 0). */
static void
replay_next(struct sy_exchange *x)
{
	unsigned ms = x->req.route->cache.replay_interval_ms;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	struct evbuffer_ptr end;
	size_t n;

	end = evbuffer_search(x->cache.replay, "\n\n", 2, NULL);
	n = ms == 0 || end.pos < 0 ? evbuffer_get_length(x->cache.replay) :
	    (size_t)end.pos + 2;
	evbuffer_remove_buffer(x->cache.replay, sy_respond_events(x), n);
	if (evbuffer_get_length(x->cache.replay) == 0) {
		evbuffer_free(x->cache.replay);
		x->cache.replay = NULL;
		sy_drive(x, SY_RESPOND);
		return;
	}
	sy_respond_flush(x);
	evtimer_add(x->cache.timer, &tv);
}

static void
replay_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	replay_next(arg);
}

/*
 * The lookup's outcome: an answer (a whole canonical body, or the
 * canonical events of a stream) sent as a backend's would be, or NULL: on
 * to the backend.
 */
static void
looked_up(void *arg, struct evbuffer *answer)
{
	struct sy_exchange *x = arg;

	x->respond.cache_word = sy_cache_result_name(sy_cache_result(
	    x->cache.ctx));
	if (answer == NULL) {
		sy_drive(x, SY_NEXT);
		return;
	}
	if (!x->req.stream) {
		sy_exchange_reply(x, 200, answer, NULL);
		sy_drive(x, SY_RESPOND);
		return;
	}
	x->cache.replay = answer;
	x->cache.timer = evtimer_new(x->w->base, replay_cb, x);
	replay_next(x);
}

/* Only the client's own route looks up; its fallbacks do not. */
static enum sy_verdict
lookup_enter(struct sy_exchange *x)
{
	if (x->route.nvisited != 1)
		return SY_NEXT;
	sy_cache_lookup(x->w->cache, &x->req, &x->cache.ctx, looked_up, x);
	return SY_WAIT;
}

static void
lookup_end(struct sy_exchange *x)
{
	if (x->cache.timer != NULL)
		event_free(x->cache.timer);
	if (x->cache.replay != NULL)
		evbuffer_free(x->cache.replay);
	sy_cache_end(x->cache.ctx, &x->req);
}

const struct sy_stage sy_stage_cache = {
	.name = "cache",
	.enter = lookup_enter,
	.end = lookup_end
};

/* A whole answer with status 200 is stored (a stream was captured as it passed). */
static enum sy_verdict
store_enter(struct sy_exchange *x)
{
	if (!x->relay.streaming && x->reply.status == 200 &&
	    x->reply.body != NULL)
		sy_cache_store(x->cache.ctx, &x->req, x->reply.body);
	return SY_NEXT;
}

const struct sy_stage sy_stage_store = {
	.name = "store",
	.enter = store_enter
};
