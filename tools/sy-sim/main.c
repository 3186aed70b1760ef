/* sy-sim: a simulated inference fleet: startup, signals and the event loop. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "sim.h"

/* SIGTERM or SIGINT: leave the event loop. */
static void
main_signal(evutil_socket_t sig, short what, void *arg)
{
	event_base_loopbreak(arg);
}

/* Prints the startup line of replica r of fleet to stderr. */
static void
main_announce(const struct sim_fleet *fleet, const struct sim_replica *r)
{
	unsigned	i;

	fprintf(stderr, "sy-sim: replica %u on %s:%u, models ", r->index,
	    fleet->host, r->p.port);
	if (r->p.nmodels == 0)
		fprintf(stderr, "any");
	for (i = 0; i < r->p.nmodels; i++)
		fprintf(stderr, "%s%s", i == 0 ? "" : ",", r->p.models[i]);
	fprintf(stderr, ", %u slots, speed %g\n", r->p.slots, r->p.speed);
}

/* Starts the fleet the command line describes and serves until a signal. */
int
main(int argc, char **argv)
{
	struct sim_fleet	  fleet;
	struct sim_replica	**replicas;
	struct event_config	 *cfg;
	struct event_base	 *base;
	struct event		 *sigterm, *sigint;
	char			 *err = NULL;
	unsigned		  i, n;
	int			  rc, precise = 0;

	if ((rc = sim_config_args(argc, argv, &fleet, &err)) != 0) {
		if (rc > 0)
			return (0);
		fprintf(stderr, "sy-sim: %s\n", err);
		free(err);
		return (1);
	}
	signal(SIGPIPE, SIG_IGN);

	/* Timers need microseconds unless every replica answers at once. */
	for (i = 0; i < fleet.nreplicas; i++)
		precise |= fleet.replicas[i].speed != 0;
	cfg = event_config_new();
	if (precise)
		event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
	base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	if (base == NULL) {
		fprintf(stderr, "sy-sim: cannot create the event loop\n");
		sim_fleet_clear(&fleet);
		return (1);
	}

	replicas = sim_xcalloc(fleet.nreplicas, sizeof *replicas);
	for (n = 0; n < fleet.nreplicas; n++) {
		replicas[n] = sim_replica_new(base, &fleet, n, &err);
		if (replicas[n] == NULL) {
			fprintf(stderr, "sy-sim: %s\n", err);
			free(err);
			rc = 1;
			goto out;
		}
		if (!fleet.quiet)
			main_announce(&fleet, replicas[n]);
	}

	sigterm = evsignal_new(base, SIGTERM, main_signal, base);
	sigint = evsignal_new(base, SIGINT, main_signal, base);
	evsignal_add(sigterm, NULL);
	evsignal_add(sigint, NULL);
	event_base_dispatch(base);
	event_free(sigterm);
	event_free(sigint);
	if (!fleet.quiet)
		fprintf(stderr, "sy-sim: stopping\n");
out:
	for (i = 0; i < n; i++)
		sim_replica_free(replicas[i]);
	free(replicas);
	event_base_free(base);
	sim_fleet_clear(&fleet);
	return (rc);
}
