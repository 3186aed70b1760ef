/* sy-sim: one replica: its listener, request routing and statistics. */
#include <sys/socket.h>

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "sim.h"

/*
 * The wire protocols, tried in order; each is one file.  Their paths do
 * not collide, so every replica speaks them all; OpenAI's come first, as
 * the most used.
 */
static const struct sim_proto *const sim_protos[] = {
	&sim_proto_openai,
	&sim_proto_anthropic,
	&sim_proto_tgi,
	&sim_proto_ollama,
	&sim_proto_kserve,
	&sim_proto_responses,
	NULL
};

/* The model a replica names when a request names none. */
const char *
sim_replica_model(const struct sim_replica *r)
{
	return (r->p.nmodels != 0 ? r->p.models[0] : SIM_DEFAULT_MODEL);
}

/* Whether r serves model name: any name when it lists none. */
int
sim_replica_serves(const struct sim_replica *r, const char *name)
{
	unsigned	i;

	if (r->p.nmodels == 0)
		return (1);
	for (i = 0; i < r->p.nmodels; i++) {
		if (strcmp(r->p.models[i], name) == 0)
			return (1);
	}
	return (0);
}

/*
 * Counts one answer of status on path (a static string: a route's path,
 * "/metrics" or "other").
 */
void
sim_replica_count(struct sim_replica *r, const char *path, int status)
{
	struct sim_stats	*st = &r->stats;
	unsigned		 i;

	st->requests++;
	for (i = 0; i < st->npaths; i++) {
		if (st->paths[i].path == path &&
		    st->paths[i].status == status) {
			st->paths[i].n++;
			return;
		}
	}
	if (st->npaths == SIM_MAX_PATH_COUNTS)
		return;
	st->paths[st->npaths].path = path;
	st->paths[st->npaths].status = status;
	st->paths[st->npaths].n = 1;
	st->npaths++;
}

/* The reason phrase of status when libevent 2.1 does not know it, or NULL. */
static const char *
replica_phrase(int status)
{
	switch (status) {
	case 422:
		return ("Unprocessable Entity");
	case 424:
		return ("Failed Dependency");
	case 429:
		return ("Too Many Requests");
	case 529:
		return ("Overloaded");
	default:
		return (NULL);
	}
}

/* Sends body (emptied) as the whole answer to req with status. */
void
sim_reply(struct evhttp_request *req, int status, const char *type,
    struct evbuffer *body)
{
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", type);
	evhttp_send_reply(req, status, replica_phrase(status), body);
}

/*
 * Sends err to req in the shape of protocol proto; retry_after, when set,
 * becomes a Retry-After header.  Returns the status sent, which the
 * protocol may have changed (Anthropic's 529).
 */
int
sim_reply_error(struct sim_replica *r, struct evhttp_request *req,
    const struct sim_proto *proto, const struct sim_error *err,
    const char *retry_after)
{
	int	status;

	if (retry_after != NULL)
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Retry-After", retry_after);
	status = proto->error(r->out, err);
	sim_reply(req, status, "application/json; charset=utf-8", r->out);
	return (status);
}

/*
 * Answers req with a small error in the shape of proto; counts it under
 * path and logs it.
 */
static void
replica_error(struct sim_replica *r, struct evhttp_request *req,
    const struct sim_proto *proto, const char *path, uint64_t seq,
    int status, const char *type, const char *message)
{
	struct sim_error	err;

	sim_error_set(&err, status, type, "%s", message);
	status = sim_reply_error(r, req, proto, &err, NULL);
	sim_replica_count(r, path, status);
	sim_reqlog_outcome(r->log, seq, status, "error");
}

/* Serves a protocol call that needs no job: models, health and info. */
static void
replica_simple(struct sim_replica *r, struct evhttp_request *req,
    const struct sim_proto *proto, const struct sim_route *route,
    const char *path, uint64_t seq)
{
	struct sim_error	err;
	int			status = 200;

	if (route->call == SIM_CALL_HEALTH && r->faults.unhealthy) {
		sim_error_set(&err, 503, "unavailable_error", "Loading model");
		status = proto->error(r->out, &err);
	} else if (proto->info(r, route, path, r->out, &err) != 0) {
		evbuffer_drain(r->out, evbuffer_get_length(r->out));
		status = proto->error(r->out, &err);
	}
	sim_reply(req, status, "application/json; charset=utf-8", r->out);
	sim_replica_count(r, route->path, status);
	sim_reqlog_outcome(r->log, seq, status, status == 200 ? "ok" : "error");
}

/*
 * Whether path matches the route path pattern: equal bytes, except that a
 * {name} segment of pattern matches one non-empty segment of path.
 */
static int
replica_match(const char *pattern, const char *path)
{
	const char	*start;

	while (*pattern != '\0') {
		if (*pattern == '{') {
			for (start = path; *path != '\0' && *path != '/'; path++)
				;
			if (path == start)
				return (0);
			while (*pattern != '\0' && *pattern != '}')
				pattern++;
			if (*pattern == '}')
				pattern++;
			continue;
		}
		if (*pattern++ != *path++)
			return (0);
	}
	return (*path == '\0');
}

/* evhttp callback: routes one request of replica arg. */
static void
replica_request(struct evhttp_request *req, void *arg)
{
	struct sim_replica		*r = arg;
	const struct sim_proto *const	*proto;
	const struct sim_proto		*found = NULL;
	const struct sim_route		*route;
	const struct evhttp_uri		*uri;
	const char			*path = NULL;
	int				 method;
	uint64_t			 seq;

	if ((uri = evhttp_request_get_evhttp_uri(req)) != NULL)
		path = evhttp_uri_get_path(uri);
	if (path == NULL || *path == '\0')
		path = "/";
	method = evhttp_request_get_command(req);
	if (strncmp(path, "/sim/", 5) == 0) {
		sim_admin_handle(r, req, path);
		return;
	}
	seq = sim_reqlog_add(r->log, req);
	if (strcmp(path, "/metrics") == 0) {
		if (method != EVHTTP_REQ_GET && method != EVHTTP_REQ_HEAD) {
			replica_error(r, req, sim_protos[0], "/metrics", seq,
			    405, "invalid_request_error", "method not allowed");
			return;
		}
		sim_admin_metrics(r, req);
		sim_replica_count(r, "/metrics", 200);
		sim_reqlog_outcome(r->log, seq, 200, "ok");
		return;
	}
	for (proto = sim_protos; *proto != NULL; proto++) {
		for (route = (*proto)->routes; route->path != NULL; route++) {
			if (!replica_match(route->path, path))
				continue;
			if (method == route->method ||
			    (route->method == EVHTTP_REQ_GET &&
			    method == EVHTTP_REQ_HEAD))
				goto found;
			found = *proto;
		}
	}
	if (found != NULL)
		replica_error(r, req, found, "other", seq, 405,
		    "invalid_request_error", "method not allowed");
	else
		replica_error(r, req, sim_protos[0], "other", seq, 404,
		    "not_found_error", "File Not Found");
	return;
found:
	if (route->call == SIM_CALL_MODELS || route->call == SIM_CALL_HEALTH ||
	    route->call == SIM_CALL_INFO)
		replica_simple(r, req, *proto, route, path, seq);
	else
		sim_job_handle(r, req, *proto, route, seq);
}

/* The first state of the fault sequence of r: its seed and index. */
static uint64_t
replica_rng_seed(const struct sim_replica *r)
{
	return (sim_mix64(r->seed ^ (0x7f4a7c159e3779b9ULL * (r->index + 1))));
}

/* Opens the listening socket of r on host; NULL with *err on failure. */
static struct evconnlistener *
replica_listen(struct sim_replica *r, const char *host, char **err)
{
	struct evutil_addrinfo	 hints, *ai = NULL;
	struct evconnlistener	*lev;
	char			 port[16];
	int			 rc;

	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = EVUTIL_AI_PASSIVE;
	snprintf(port, sizeof port, "%u", r->p.port);
	if ((rc = evutil_getaddrinfo(host, port, &hints, &ai)) != 0) {
		*err = sim_printf("%s: %s", host, evutil_gai_strerror(rc));
		return (NULL);
	}
	lev = evconnlistener_new_bind(r->base, NULL, NULL,
	    LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
	    1024, ai->ai_addr, (int)ai->ai_addrlen);
	if (lev == NULL)
		*err = sim_printf("cannot listen on %s port %u: %s", host,
		    r->p.port, evutil_socket_error_to_string(
		    EVUTIL_SOCKET_ERROR()));
	evutil_freeaddrinfo(ai);
	return (lev);
}

/*
 * Starts replica index of fleet on base, listening on its port.  Returns
 * it, or NULL with *err set (caller frees).
 */
struct sim_replica *
sim_replica_new(struct event_base *base, const struct sim_fleet *fleet,
    unsigned index, char **err)
{
	struct sim_replica	*r = sim_xcalloc(1, sizeof *r);
	struct evconnlistener	*lev;

	r->base = base;
	r->index = index;
	r->seed = fleet->seed;
	sim_params_copy(&r->p, &fleet->replicas[index]);
	r->faults = r->p.faults;
	r->rng = replica_rng_seed(r);
	r->cache = sim_cache_new(r->p.cache_tokens / r->p.block_tokens);
	r->log = sim_reqlog_new(r->p.log_requests);
	r->out = evbuffer_new();
	r->started_us = sim_now_us();
	sim_engine_init(r);

	r->http = evhttp_new(base);
	evhttp_set_allowed_methods(r->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
	    EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	    EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	evhttp_set_max_body_size(r->http, 64 << 20);
	evhttp_set_max_headers_size(r->http, 256 << 10);
	evhttp_set_gencb(r->http, replica_request, r);
	if ((lev = replica_listen(r, fleet->host, err)) == NULL) {
		sim_replica_free(r);
		return (NULL);
	}
	evhttp_bind_listener(r->http, lev);
	return (r);
}

/* Closes every connection of r (cancelling its jobs) and frees it. */
void
sim_replica_free(struct sim_replica *r)
{
	r->engine.closing = 1;
	evhttp_free(r->http);
	sim_engine_free(r);
	sim_cache_free(r->cache);
	sim_reqlog_free(r->log);
	evbuffer_free(r->out);
	sim_params_clear(&r->p);
	free(r);
}

/*
 * Forgets the history of r: request log, prefix cache, counters, and the
 * fault sequence restarts from the seed.  Jobs under way go on.
 */
void
sim_replica_reset(struct sim_replica *r)
{
	sim_reqlog_clear(r->log);
	sim_cache_clear(r->cache);
	memset(&r->stats, 0, sizeof r->stats);
	r->stats.max_running = r->engine.running;
	r->rng = replica_rng_seed(r);
	r->started_us = sim_now_us();
}
