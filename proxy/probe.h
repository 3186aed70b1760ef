/* Active probes of the fleet: health checks and scrapes of each endpoint's load, on the main thread. */
#ifndef SY_PROBE_H
#define SY_PROBE_H

struct event_base;
struct sy_config;
struct sy_probes;

/*
 * Starts the health checks and /metrics scrapes that cfg's endpoints ask
 * for, on base (a reference to cfg is held).  Results land in each
 * endpoint's shared stats: unhealthy, scraped_*.  Returns the probes
 * (NULL when cfg asks for none).
 */
struct sy_probes *sy_probes_start(struct event_base *base, struct sy_config *cfg);

/* Stops every probe (cancelling calls in flight) and frees p (NULL is fine). */
void sy_probes_stop(struct sy_probes *p);

#endif
