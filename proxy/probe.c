/* Active probes of the fleet: health checks and scrapes of each endpoint's load, on the main thread. */
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "backend.h"
#include "confrow.h"
#include "config.h"
#include "http1.h"
#include "probe.h"
#include "promtext.h"
#include "upstream.h"
#include "util.h"

/* The most of a probe's answer that is read. */
#define PROBE_BODY_MAX (1024 * 1024)

enum probe_kind { PROBE_HEALTH, PROBE_SCRAPE };

struct probe {
	struct sy_probes *probes;
	struct sy_endpoint *ep;
	enum probe_kind kind;
	struct event *timer;
	struct sy_upstream_call *call;	/* NULL between probes */
	struct evbuffer *body;
	int status;
	unsigned ok_in_a_row;
	unsigned failed_in_a_row;
};

struct sy_probes {
	struct sy_config *cfg;
	struct sy_upstream *upstream;
	struct probe *probes;
	size_t n;
};

/* A health check's verdict: counts it, and marks the endpoint down or up. */
static void
health_result(struct probe *p, int ok)
{
	const struct sy_health_check *hc = &p->ep->health;
	struct sy_endpoint_stats *st = p->ep->stats;

	if (ok) {
		p->failed_in_a_row = 0;
		if (++p->ok_in_a_row >= hc->healthy &&
		    atomic_exchange(&st->unhealthy, 0) != 0)
			sy_log(SY_LOG_INFO, "endpoint %s is healthy again",
			    p->ep->name);
	} else {
		p->ok_in_a_row = 0;
		if (++p->failed_in_a_row >= hc->unhealthy &&
		    atomic_exchange(&st->unhealthy, 1) == 0)
			sy_log(SY_LOG_WARN, "endpoint %s failed %u health checks "
			    "in a row: marked down", p->ep->name,
			    p->failed_in_a_row);
	}
}

/* A scrape's answer: the endpoint's own load figures. */
static void
scrape_result(struct probe *p, int ok)
{
	struct sy_endpoint_stats *st = p->ep->stats;
	struct sy_load_figures f;
	size_t len = evbuffer_get_length(p->body);

	if (!ok || !sy_promtext_load((const char *)evbuffer_pullup(p->body, -1),
	    len, &f)) {
		atomic_store(&st->scraped_at_us, 0);
		return;
	}
	atomic_store(&st->scraped_running, f.running);
	atomic_store(&st->scraped_waiting, f.waiting);
	atomic_store(&st->scraped_kv_permille, f.kv_permille);
	if (f.kv_tokens > 0)
		atomic_store(&st->scraped_kv_tokens, f.kv_tokens);
	atomic_store(&st->scraped_at_us, sy_now_us());
}

/* Ends a probe with its verdict. */
static void
probe_done(struct probe *p, int ok)
{
	p->call = NULL;
	if (p->kind == PROBE_HEALTH)
		health_result(p, ok);
	else
		scrape_result(p, ok);
	evbuffer_drain(p->body, evbuffer_get_length(p->body));
}

static void
on_head(void *arg, const struct sy_http1_msg *head)
{
	((struct probe *)arg)->status = head->status;
}

static void
on_body(void *arg, struct evbuffer *data)
{
	struct probe *p = arg;

	if (evbuffer_get_length(p->body) < PROBE_BODY_MAX)
		evbuffer_add_buffer(p->body, data);
	else
		evbuffer_drain(data, evbuffer_get_length(data));
}

static void
on_done(void *arg)
{
	struct probe *p = arg;

	probe_done(p, p->status >= 200 && p->status < 300);
}

static void
on_error(void *arg, enum sy_upstream_error e, const char *msg)
{
	probe_done(arg, 0);
}

static const struct sy_upstream_cbs probe_cbs = {
	.on_head = on_head,
	.on_body = on_body,
	.on_done = on_done,
	.on_error = on_error
};

/* Time for the next probe: send it unless the last one still runs. */
static void
probe_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct probe *p = arg;
	struct sy_endpoint *ep = p->ep;
	unsigned timeout = p->kind == PROBE_HEALTH ? ep->health.timeout_ms :
	    ep->scrape.timeout_ms;
	struct sy_timeouts t = {
		.connect_ms = timeout, .first_byte_ms = timeout,
		.idle_ms = timeout, .total_ms = timeout
	};
	char target[1024], headers[600];

	if (p->call != NULL)
		return;
	snprintf(headers, sizeof headers, "Accept: */*\r\n");
	sy_backend_credentials(ep->kind, ep, headers + strlen(headers),
	    sizeof headers - strlen(headers));
	if (p->kind == PROBE_HEALTH)
		snprintf(target, sizeof target, "%s%s", ep->base_path,
		    ep->health.path);
	else
		snprintf(target, sizeof target, "%s", ep->scrape.path);
	p->status = 0;
	p->call = sy_upstream_send(p->probes->upstream, ep, &t, "GET", target,
	    headers, NULL, &probe_cbs, p);
}

/* Sets up probe p of kind for ep, every interval_ms, the first one at once. */
static void
probe_init(struct sy_probes *ps, struct probe *p, struct event_base *base,
    struct sy_endpoint *ep, enum probe_kind kind, unsigned interval_ms)
{
	struct timeval every = { interval_ms / 1000, (interval_ms % 1000) * 1000 };

	p->probes = ps;
	p->ep = ep;
	p->kind = kind;
	p->body = evbuffer_new();
	p->timer = event_new(base, -1, EV_PERSIST, probe_timer_cb, p);
	event_add(p->timer, &every);
	event_active(p->timer, EV_TIMEOUT, 0);
}

struct sy_probes *
sy_probes_start(struct event_base *base, struct sy_config *cfg)
{
	struct sy_probes *ps;
	struct sy_endpoint *ep;
	size_t i, n = 0;

	for (i = 0; i < cfg->nendpoints; i++)
		n += (cfg->endpoints[i].health.interval_ms != 0) +
		    (cfg->endpoints[i].scrape.interval_ms != 0);
	if (n == 0)
		return NULL;
	ps = sy_xcalloc(1, sizeof *ps);
	ps->cfg = sy_config_ref(cfg);
	ps->upstream = sy_upstream_new(base);
	ps->probes = sy_xcalloc(n, sizeof *ps->probes);
	for (i = 0; i < cfg->nendpoints; i++) {
		ep = &cfg->endpoints[i];
		if (ep->health.interval_ms != 0)
			probe_init(ps, &ps->probes[ps->n++], base, ep,
			    PROBE_HEALTH, ep->health.interval_ms);
		if (ep->scrape.interval_ms != 0)
			probe_init(ps, &ps->probes[ps->n++], base, ep,
			    PROBE_SCRAPE, ep->scrape.interval_ms);
	}
	return ps;
}

void
sy_probes_stop(struct sy_probes *ps)
{
	size_t i;

	if (ps == NULL)
		return;
	for (i = 0; i < ps->n; i++) {
		if (ps->probes[i].call != NULL)
			sy_upstream_cancel(ps->probes[i].call);
		event_free(ps->probes[i].timer);
		evbuffer_free(ps->probes[i].body);
	}
	sy_upstream_free(ps->upstream);
	sy_config_unref(ps->cfg);
	free(ps->probes);
	free(ps);
}

/* ==== Config ==== */

#define DAY_MS	86400000	/* largest duration */

/* Health checks: off unless the object is given; a probe ends before the next. */
static void
health_check(struct sy_conf *c, const json_t *obj, const char *path,
    void *base)
{
	struct sy_health_check *h = base;

	if (obj == NULL)
		h->interval_ms = 0;
	else
		sy_conf_order(c, obj, path, "timeout_ms", h->timeout_ms,
		    "interval_ms", h->interval_ms, 1);
}

static const struct sy_conf_row health_rows[] = {
	{ .name = "path", .type = SY_CONF_PATH,
	  .offset = offsetof(struct sy_health_check, path),
	  .doc = "path probed after the base path; default: the kind's" },
	{ .name = "interval_ms", .type = SY_CONF_MS,
	  .offset = offsetof(struct sy_health_check, interval_ms),
	  .def.u = 5000, .min = 1, .max = DAY_MS,
	  .doc = "time between two probes" },
	{ .name = "timeout_ms", .type = SY_CONF_MS,
	  .offset = offsetof(struct sy_health_check, timeout_ms),
	  .def.u = 2000, .min = 1, .max = DAY_MS,
	  .doc = "a probe without a whole answer within this fails" },
	{ .name = "healthy", .type = SY_CONF_UINT,
	  .offset = offsetof(struct sy_health_check, healthy),
	  .def.u = 2, .min = 1, .max = 100,
	  .doc = "successes in a row that bring it back" },
	{ .name = "unhealthy", .type = SY_CONF_UINT,
	  .offset = offsetof(struct sy_health_check, unhealthy),
	  .def.u = 3, .min = 1, .max = 100,
	  .doc = "failures in a row that mark it down" },
	{ .name = NULL }
};

const struct sy_conf_table sy_health_table = {
	.path = "backends[].health",
	.rows = health_rows,
	.size = sizeof(struct sy_health_check),
	.check = health_check
};

/* Scrapes: off unless the object is given. */
static void
scrape_check(struct sy_conf *c, const json_t *obj, const char *path,
    void *base)
{
	struct sy_scrape *s = base;

	if (obj == NULL)
		s->interval_ms = 0;
}

static const struct sy_conf_row scrape_rows[] = {
	{ .name = "path", .type = SY_CONF_PATH,
	  .offset = offsetof(struct sy_scrape, path), .def.s = "/metrics",
	  .doc = "path from the URL's root" },
	{ .name = "interval_ms", .type = SY_CONF_MS,
	  .offset = offsetof(struct sy_scrape, interval_ms),
	  .def.u = 1000, .min = 50, .max = DAY_MS,
	  .doc = "time between two scrapes" },
	{ .name = "timeout_ms", .type = SY_CONF_MS,
	  .offset = offsetof(struct sy_scrape, timeout_ms),
	  .def.u = 1000, .min = 1, .max = DAY_MS,
	  .doc = "a scrape without a whole answer within this fails" },
	{ .name = NULL }
};

const struct sy_conf_table sy_scrape_table = {
	.path = "backends[].metrics",
	.rows = scrape_rows,
	.size = sizeof(struct sy_scrape),
	.check = scrape_check
};
