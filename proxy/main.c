/* switchyard: command line, config check, workers, signals (reload, drain) and the admin listener. */
#include <sys/resource.h>

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/rand.h>

#include "accesslog.h"
#include "admin.h"
#include "cache.h"
#include "rstore.h"
#include "config.h"
#include "evmem.h"
#include "keystore.h"
#include "metrics.h"
#include "probe.h"
#include "redis.h"
#include "server.h"
#include "util.h"
#include "worker.h"

#define MAX_UPSTREAMS 64

/* The main thread's state: signals, reloads, the admin listener. */
struct sy_main {
	struct event_base *base;
	struct sy_runtime rt;
	struct sy_config *cfg;		/* the snapshot in force */
	struct sy_worker *workers;
	unsigned nworkers;
	struct sy_server *admin_server;
	struct sy_admin admin;
	struct sy_redis_stats admin_redis_stats;
	atomic_uint admin_conns;	/* the admin listener's own count */
	struct sy_server_opts admin_opts;	/* its limits (max_connections) */
	struct sy_probes *probes;	/* health checks and scrapes of cfg */
	struct event *drain_poll;
	uint64_t drain_deadline;
	int stopping;
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: switchyard -c FILE          run with a config file\n"
	    "       switchyard -t -c FILE       check a config file and exit (0: valid)\n"
	    "       switchyard --upstream URL [--upstream URL ...] [--listen HOST:PORT]\n"
	    "                  [--admin HOST:PORT] [--access-log FILE]\n"
	    "                  [--tls-cert FILE --tls-key FILE]\n"
	    "                                   zero-config: proxy every model to these\n"
	    "                                   OpenAI-compatible base URLs, round robin\n"
	    "\n"
	    "options:\n"
	    "  -c, --config FILE      config file (JSON with comments; see docs/configuration.md)\n"
	    "  -t, --test             check the configuration and exit\n"
	    "  -u, --upstream URL     a backend base URL, e.g. http://127.0.0.1:8000/v1 (repeatable)\n"
	    "  -l, --listen H:P       client listener for --upstream mode (default 127.0.0.1:8080)\n"
	    "  -a, --admin H:P        admin listener for --upstream mode (default 127.0.0.1:8081)\n"
	    "  -L, --access-log FILE  access log for --upstream mode: a path, stdout or off\n"
	    "      --tls-cert FILE    --upstream mode: the listener speaks HTTPS with this\n"
	    "                         PEM certificate (and chain)\n"
	    "      --tls-key FILE     --upstream mode: the certificate's PEM private key\n"
	    "  -d, --debug            log debug messages\n"
	    "  -V, --version          print the version and exit\n"
	    "  -h, --help             print this help and exit\n"
	    "\n"
	    "signals: SIGHUP reloads the config file (TLS certificates too); SIGTERM and SIGINT stop accepting,\n"
	    "let requests in flight finish (up to timeouts.drain_ms) and exit 0.\n");
}

static struct sy_config *
current_config(void *arg)
{
	return ((struct sy_main *)arg)->cfg;
}

/* Loads the config file again and hands the new snapshot to every worker. */
static int
reload(void *arg, char **err)
{
	struct sy_main *m = arg;
	struct sy_config *next;
	unsigned i;

	if (m->cfg->path == NULL) {
		*err = sy_xstrdup("switchyard runs without a config file "
		    "(--upstream mode): nothing to reload");
		return -1;
	}
	if (sy_config_load_file(m->cfg->path, &next, err) != 0)
		return -1;
	if (strcmp(next->listen, m->cfg->listen) != 0 ||
	    (next->admin == NULL) != (m->cfg->admin == NULL) ||
	    (next->admin != NULL && strcmp(next->admin, m->cfg->admin) != 0) ||
	    next->workers != m->cfg->workers ||
	    strcmp(next->access_log, m->cfg->access_log) != 0 ||
	    next->access_log_flush_ms != m->cfg->access_log_flush_ms ||
	    sy_cache_settings_differ(&next->cache, &m->cfg->cache))
		sy_log(SY_LOG_WARN, "reload: changes to listen, admin, workers, "
		    "access_log, access_log_flush_ms and cache take effect at "
		    "the next restart");
	for (i = 0; i < m->nworkers; i++)
		sy_worker_post_config(&m->workers[i], next);
	if (m->admin_server != NULL) {
		m->admin_opts.max_conns = next->admin_api.max_connections;
		sy_server_set_opts(m->admin_server, &m->admin_opts);
	}
	sy_metrics_set_accounting_interval(m->rt.metrics,
	    next->accounting_interval_ms);
	sy_probes_stop(m->probes);
	m->probes = sy_probes_start(m->base, next);
	sy_config_unref(m->cfg);
	m->cfg = next;
	sy_log(SY_LOG_INFO, "reloaded %s", next->path);
	return 0;
}

static void
sighup_cb(evutil_socket_t sig, short what, void *arg)
{
	char *err = NULL;

	if (reload(arg, &err) != 0) {
		sy_log(SY_LOG_ERROR, "reload failed, keeping the running "
		    "config:\n%s", err);
		free(err);
	}
}

/* While draining: exit once every worker is done, force them at the deadline. */
static void
drain_poll_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sy_main *m = arg;
	unsigned i, done = 0;

	for (i = 0; i < m->nworkers; i++)
		done += atomic_load(&m->workers[i].done) != 0;
	if (done == m->nworkers) {
		event_base_loopexit(m->base, NULL);
		return;
	}
	if (!m->stopping && sy_now_us() >= m->drain_deadline) {
		sy_log(SY_LOG_WARN, "drain timeout: ending the requests still "
		    "in flight");
		m->stopping = 1;
		for (i = 0; i < m->nworkers; i++)
			sy_worker_post_stop(&m->workers[i]);
	}
}

static void
sigterm_cb(evutil_socket_t sig, short what, void *arg)
{
	struct sy_main *m = arg;
	struct timeval poll = { 0, 20000 };
	unsigned i;

	if (m->drain_poll != NULL)
		return;
	sy_log(SY_LOG_INFO, "signal %d: draining (up to %u ms)", (int)sig,
	    m->cfg->timeouts.drain_ms);
	m->drain_deadline = sy_now_us() + (uint64_t)m->cfg->timeouts.drain_ms * 1000;
	for (i = 0; i < m->nworkers; i++)
		sy_worker_post_drain(&m->workers[i]);
	m->drain_poll = event_new(m->base, -1, EV_PERSIST, drain_poll_cb, m);
	event_add(m->drain_poll, &poll);
}

/*
 * Raises the open-file limit to the hard limit, and warns when it cannot
 * hold max_connections (each client may also need a backend connection).
 */
static void
raise_fd_limit(unsigned max_connections)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < 2 * (rlim_t)max_connections + 64)
		sy_log(SY_LOG_WARN, "open-file limit %llu is low for "
		    "max_connections %u (needs about %u)",
		    (unsigned long long)rl.rlim_cur, max_connections,
		    2 * max_connections + 64);
}

/* Loads the config named on the command line; exits 1 on error. */
/*
 * The startup config's Redis, copied: the top-level redis object, else
 * the connection keys of cache.redis.
 */
static void
redis_conf(const struct sy_config *cfg, struct sy_redis_conf *out)
{
	const struct sy_cache_settings *s = &cfg->cache;
	struct sy_redis_conf c = {
		.enabled = s->redis,
		.host = s->redis_host,
		.port = s->redis_port,
		.unix_path = s->redis_unix,
		.db = s->redis_db,
		.password = s->redis_password,
		.connect_timeout_ms = s->connect_timeout_ms,
		.command_timeout_ms = s->command_timeout_ms
	};

	sy_redis_conf_copy(out, cfg->redis.enabled ? &cfg->redis : &c);
}

/* The zero-config flags beside --upstream. */
struct zero_flags {
	const char *listen, *admin, *access_log, *tls_cert, *tls_key;
};

static struct sy_config *
load(const char *path, const char *const *upstreams, size_t nup,
    const struct zero_flags *z)
{
	struct sy_config *cfg = NULL;
	char *err = NULL;
	int r;

	if (path != NULL)
		r = sy_config_load_file(path, &cfg, &err);
	else
		r = sy_config_from_upstreams(upstreams, nup, z->listen,
		    z->admin, z->access_log, z->tls_cert, z->tls_key, &cfg,
		    &err);
	if (r != 0) {
		fprintf(stderr, "switchyard: configuration error:\n%s\n", err);
		free(err);
		exit(1);
	}
	return cfg;
}

/* Says so when the admin listener is reachable beyond this host. */
static void
warn_open_admin(const struct sy_config *cfg)
{
	const char *a = cfg->admin;

	if (strncmp(a, "127.", 4) == 0 || strncmp(a, "[::1]:", 6) == 0 ||
	    strncmp(a, "localhost:", 10) == 0)
		return;
	sy_log(SY_LOG_WARN, "the admin listener %s is not on a loopback "
	    "address: %s", a, cfg->admin_api.token != NULL ? "its token "
	    "guards it" : "anyone who reaches it can read the stats and "
	    "reload the config (set admin_api.token_env)");
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "test", no_argument, NULL, 't' },
		{ "upstream", required_argument, NULL, 'u' },
		{ "listen", required_argument, NULL, 'l' },
		{ "admin", required_argument, NULL, 'a' },
		{ "access-log", required_argument, NULL, 'L' },
		{ "tls-cert", required_argument, NULL, 'C' },
		{ "tls-key", required_argument, NULL, 'K' },
		{ "debug", no_argument, NULL, 'd' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *upstreams[MAX_UPSTREAMS];
	const char *path = NULL;
	struct zero_flags z = { NULL, NULL, NULL, NULL, NULL };
	struct sy_main m;
	struct event *ev_hup, *ev_term, *ev_int;
	sigset_t sigs;
	size_t nup = 0;
	int ch, test = 0, fd;
	unsigned i;
	char *err = NULL;

	sy_evmem_init();	/* before any other libevent call */
	while ((ch = getopt_long(argc, argv, "c:tu:l:a:L:dVh", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'c': path = optarg; break;
		case 't': test = 1; break;
		case 'u':
			if (nup == MAX_UPSTREAMS) {
				fprintf(stderr, "switchyard: at most %d --upstream\n",
				    MAX_UPSTREAMS);
				return 2;
			}
			upstreams[nup++] = optarg;
			break;
		case 'l': z.listen = optarg; break;
		case 'a': z.admin = optarg; break;
		case 'L': z.access_log = optarg; break;
		case 'C': z.tls_cert = optarg; break;
		case 'K': z.tls_key = optarg; break;
		case 'd': sy_log_set_level(SY_LOG_DEBUG); break;
		case 'V': printf("switchyard %s\n", VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc || (path == NULL) == (nup == 0) ||
	    (path != NULL && (z.listen || z.admin || z.access_log ||
	    z.tls_cert || z.tls_key))) {
		fprintf(stderr, "switchyard: give either -c FILE or one or more "
		    "--upstream URL (--listen, --admin, --access-log, --tls-cert "
		    "and --tls-key go with --upstream)\n");
		usage(stderr);
		return 2;
	}
	if ((z.tls_cert == NULL) != (z.tls_key == NULL)) {
		fprintf(stderr, "switchyard: --tls-cert and --tls-key go "
		    "together\n");
		return 2;
	}

	memset(&m, 0, sizeof m);
	m.cfg = load(path, upstreams, nup, &z);
	if (test) {
		printf("switchyard: configuration %s is valid\n",
		    path ? path : "from --upstream");
		sy_config_unref(m.cfg);
		return 0;
	}

	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit(m.cfg->limits.max_connections);
	if (sy_server_port_free(m.cfg->listen) != 0 ||
	    (m.cfg->admin != NULL && sy_server_port_free(m.cfg->admin) != 0)) {
		fprintf(stderr, "switchyard: cannot listen on %s%s%s: %s\n",
		    m.cfg->listen, m.cfg->admin ? " and " : "",
		    m.cfg->admin ? m.cfg->admin : "", strerror(errno));
		return 1;
	}
	if ((m.rt.log = sy_accesslog_open(m.cfg->access_log,
	    m.cfg->access_log_flush_ms, &err)) == NULL) {
		fprintf(stderr, "switchyard: access log: %s\n", err);
		return 1;
	}
	m.nworkers = m.cfg->workers ? m.cfg->workers :
	    (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
	if (m.nworkers == 0)
		m.nworkers = 1;
	m.rt.metrics = sy_metrics_new(m.nworkers);
	sy_metrics_set_accounting_interval(m.rt.metrics,
	    m.cfg->accounting_interval_ms);
	redis_conf(m.cfg, &m.rt.redis);
	m.rt.cache = sy_cache_new(&m.cfg->cache, &m.rt.redis_stats);
	m.rt.rstore = sy_rstore_new(m.cfg->responses.memory_bytes);
	atomic_init(&m.rt.conns, 0);
	atomic_init(&m.rt.buffered, 0);
	sy_metrics_set_conns(m.rt.metrics, &m.rt.conns);
	RAND_bytes((unsigned char *)&m.rt.boot_id, sizeof m.rt.boot_id);
	m.base = event_base_new();

	/* Workers take no signals: the main thread handles them. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	m.workers = sy_xcalloc(m.nworkers, sizeof *m.workers);
	for (i = 0; i < m.nworkers; i++) {
		if ((fd = sy_server_listen(m.cfg->listen)) < 0) {
			fprintf(stderr, "switchyard: cannot listen on %s: %s\n",
			    m.cfg->listen, strerror(errno));
			return 1;
		}
		if (sy_worker_start(&m.workers[i], i, &m.rt, fd, m.cfg, &err) != 0) {
			fprintf(stderr, "switchyard: worker %u: %s\n", i, err);
			return 1;
		}
	}
	pthread_sigmask(SIG_UNBLOCK, &sigs, NULL);

	m.admin.metrics = m.rt.metrics;
	m.admin.current = current_config;
	m.admin.reload = reload;
	m.admin.arg = &m;
	/* Its own counts: /metrics counts the workers' connections. */
	m.admin.redis = m.cfg->admin != NULL ? sy_redis_new(m.base,
	    &m.rt.redis, &m.admin_redis_stats) : NULL;
	if (m.cfg->admin != NULL) {
		if ((fd = sy_server_listen(m.cfg->admin)) < 0) {
			fprintf(stderr, "switchyard: cannot listen on %s (admin): "
			    "%s\n", m.cfg->admin, strerror(errno));
			return 1;
		}
		memset(&m.admin_opts, 0, sizeof m.admin_opts);
		m.admin_opts.max_conns = m.cfg->admin_api.max_connections ?
		    m.cfg->admin_api.max_connections : 64;
		m.admin_opts.conn_count = &m.admin_conns;
		warn_open_admin(m.cfg);
		m.admin_opts.max_body = 64 * 1024;
		m.admin_opts.idle_ms = 30000;
		m.admin_opts.head_ms = 10000;
		m.admin_opts.body_ms = 10000;
		m.admin_opts.write_ms = 30000;
		m.admin_server = sy_server_new(m.base, fd, &m.admin_opts,
		    sy_admin_handle, &m.admin);
	}
	m.probes = sy_probes_start(m.base, m.cfg);
	ev_hup = evsignal_new(m.base, SIGHUP, sighup_cb, &m);
	ev_term = evsignal_new(m.base, SIGTERM, sigterm_cb, &m);
	ev_int = evsignal_new(m.base, SIGINT, sigterm_cb, &m);
	event_add(ev_hup, NULL);
	event_add(ev_term, NULL);
	event_add(ev_int, NULL);
	sy_log(SY_LOG_INFO, "switchyard %s: %u workers listening on %s%s, "
	    "admin on %s", VERSION, m.nworkers, m.cfg->listen,
	    m.cfg->tls.enabled ? " (TLS)" : "",
	    m.cfg->admin ? m.cfg->admin : "(off)");

	event_base_dispatch(m.base);

	sy_probes_stop(m.probes);
	for (i = 0; i < m.nworkers; i++)
		sy_worker_join(&m.workers[i]);
	free(m.workers);
	if (m.admin_server != NULL)
		sy_server_free(m.admin_server);
	if (m.admin.redis != NULL)
		sy_redis_free(m.admin.redis);
	if (m.drain_poll != NULL)
		event_free(m.drain_poll);
	event_free(ev_hup);
	event_free(ev_term);
	event_free(ev_int);
	event_base_free(m.base);
	sy_metrics_free(m.rt.metrics);
	sy_cache_free(m.rt.cache);
	sy_rstore_free(m.rt.rstore);
	sy_redis_conf_clear(&m.rt.redis);
	sy_keystore_free();
	sy_accesslog_close(m.rt.log);
	sy_config_unref(m.cfg);
	sy_log(SY_LOG_INFO, "stopped");
	return 0;
}
