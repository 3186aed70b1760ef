/* sy-load: a load generator for LLM APIs: options, checks, and the run from start to report. */
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <netdb.h>

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "exp.h"
#include "load.h"

/* File descriptors kept free beyond the connections. */
#define SPARE_FDS 64

static const char usage_text[] =
"usage: sy-load --url BASE_URL (--rate R | --concurrency N | --trace FILE)\n"
"               [--duration S] [--requests N] [options]\n"
"       sy-load experiment FILE -o DIR   (see sy-load experiment --help)\n"
"\n"
"Sends LLM API requests to BASE_URL and reports throughput, time to first\n"
"token, inter-token latency, end-to-end latency, tokens and errors.\n"
"\n"
"Target:\n"
"  --url BASE_URL        base URL as in the OpenAI SDKs, e.g.\n"
"                        http://127.0.0.1:8080/v1; the API path\n"
"                        (/chat/completions, /completions, /embeddings,\n"
"                        /messages) is appended.  http only: no https\n"
"  --api API             chat (default), completions, embeddings or\n"
"                        anthropic (POST /messages, x-api-key and\n"
"                        anthropic-version headers)\n"
"  --api-key KEY         sent as Authorization: Bearer KEY (x-api-key: KEY\n"
"                        for anthropic)\n"
"  --header 'NAME: VALUE'\n"
"                        add a header to every request (repeatable; wins\n"
"                        over a spec header of the same name)\n"
"\n"
"Load (exactly one):\n"
"  --rate R              open loop: R new requests per second, whatever\n"
"                        the answers take\n"
"  --arrival KIND        with --rate: poisson (default; exponential gaps)\n"
"                        or constant (gaps of exactly 1/R)\n"
"  --concurrency N       closed loop: N requests in flight, each sent when\n"
"                        the one before it ends\n"
"  --trace FILE          replay a JSONL trace at its timestamps\n"
"  --max-connections N   open loop and replay: connections open at most\n"
"                        (default 1024); a request due when all are busy\n"
"                        is not sent and counts as dropped\n"
"\n"
"Length (at least one without --trace; the first reached ends the run):\n"
"  --duration S          send for S seconds (then wait for the answers)\n"
"  --requests N          send N requests (dropped ones included)\n"
"  --warmup S            first send for S seconds without measuring; the\n"
"                        length counts from the end of the warm-up\n"
"\n"
"Workload:\n"
"  --spec FILE           JSON workload spec: model mix, length\n"
"                        distributions, shared prefixes, sessions,\n"
"                        streaming fraction, headers, SLO (docs/sy-load.md)\n"
"  --model NAME          request only this model (default \"default\")\n"
"  --prompt-tokens N     prompt length in tokens (default 128)\n"
"  --max-tokens N        output length asked for, in tokens (default 64)\n"
"  --stream              stream every request (SSE)\n"
"  --seed N              seed of every random draw (default 1)\n"
"  --slo-ttft MS         SLO bound on time to first token (streams)\n"
"  --slo-itl MS          SLO bound on a stream's mean inter-token latency\n"
"  --slo-latency MS      SLO bound on end-to-end latency\n"
"                        (an ok request within every bound counts towards\n"
"                        goodput)\n"
"  --timeout S           per request, from send to the answer's last byte\n"
"                        (default 60)\n"
"  Options given here win over the spec's fields.\n"
"\n"
"Output:\n"
"  --json FILE           write the summary as JSON\n"
"  --per-request         with --json: add every request\n"
"  --csv FILE            write one row per request\n"
"  --quiet               no progress line on stderr\n"
"  --help                print this help\n"
"  --version             print the version\n"
"\n"
"Exit status: 0 when the run completed (even if requests failed),\n"
"1 when it could not run, 2 on a usage error.\n";

enum {
	OPT_URL = 256, OPT_RATE, OPT_ARRIVAL, OPT_CONCURRENCY, OPT_DURATION,
	OPT_REQUESTS, OPT_SPEC, OPT_TRACE, OPT_STREAM, OPT_API, OPT_MODEL,
	OPT_PROMPT_TOKENS, OPT_MAX_TOKENS, OPT_HEADER, OPT_API_KEY,
	OPT_TIMEOUT, OPT_SEED, OPT_WARMUP, OPT_JSON, OPT_CSV, OPT_PER_REQUEST,
	OPT_QUIET, OPT_MAX_CONNECTIONS, OPT_SLO_TTFT, OPT_SLO_ITL,
	OPT_SLO_LATENCY, OPT_HELP, OPT_VERSION
};

static const struct option long_options[] = {
	{ "url", required_argument, NULL, OPT_URL },
	{ "rate", required_argument, NULL, OPT_RATE },
	{ "arrival", required_argument, NULL, OPT_ARRIVAL },
	{ "concurrency", required_argument, NULL, OPT_CONCURRENCY },
	{ "duration", required_argument, NULL, OPT_DURATION },
	{ "requests", required_argument, NULL, OPT_REQUESTS },
	{ "spec", required_argument, NULL, OPT_SPEC },
	{ "trace", required_argument, NULL, OPT_TRACE },
	{ "stream", no_argument, NULL, OPT_STREAM },
	{ "api", required_argument, NULL, OPT_API },
	{ "model", required_argument, NULL, OPT_MODEL },
	{ "prompt-tokens", required_argument, NULL, OPT_PROMPT_TOKENS },
	{ "max-tokens", required_argument, NULL, OPT_MAX_TOKENS },
	{ "header", required_argument, NULL, OPT_HEADER },
	{ "api-key", required_argument, NULL, OPT_API_KEY },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "seed", required_argument, NULL, OPT_SEED },
	{ "warmup", required_argument, NULL, OPT_WARMUP },
	{ "json", required_argument, NULL, OPT_JSON },
	{ "csv", required_argument, NULL, OPT_CSV },
	{ "per-request", no_argument, NULL, OPT_PER_REQUEST },
	{ "quiet", no_argument, NULL, OPT_QUIET },
	{ "max-connections", required_argument, NULL, OPT_MAX_CONNECTIONS },
	{ "slo-ttft", required_argument, NULL, OPT_SLO_TTFT },
	{ "slo-itl", required_argument, NULL, OPT_SLO_ITL },
	{ "slo-latency", required_argument, NULL, OPT_SLO_LATENCY },
	{ "help", no_argument, NULL, OPT_HELP },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 }
};

/* Options as given, before the spec is read and they are applied. */
struct cli {
	const char *url;
	double rate;			/* < 0: not given */
	const char *arrival;
	double concurrency;
	double duration;
	double requests;
	double warmup;
	double timeout;
	double max_connections;
	const char *spec;
	const char *trace;
	int stream;
	const char *api;
	const char *model;
	double prompt_tokens;
	double max_tokens;
	double seed;
	double slo_ttft, slo_itl, slo_latency;
};

/* Prints "sy-load: message" and a hint; returns the usage exit status. */
static int
usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "sy-load: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n(sy-load --help lists the options)\n");
	return SY_LOAD_EXIT_USAGE;
}

/*
 * Parses arg, the value of --name, as a number in [min, max] (a whole one
 * when whole) into *out.  Returns 0 or -1 (printed).
 */
static int
number_arg(const char *name, const char *arg, double min, double max,
    int whole, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(arg, &end);
	if (end == arg || *end != '\0' || errno != 0 || !isfinite(*out) ||
	    *out < min || *out > max || (whole && *out != floor(*out))) {
		usage_error("--%s: expected %s from %g to %g, got \"%s\"",
		    name, whole ? "a whole number" : "a number", min, max, arg);
		return -1;
	}
	return 0;
}

/* Checks a --header line "Name: value".  Returns 0 or -1 (printed). */
static int
header_arg(const char *arg)
{
	const char *colon = strchr(arg, ':'), *why;

	if (colon == NULL) {
		usage_error("--header: expected 'NAME: VALUE', got \"%s\"",
		    arg);
		return -1;
	}
	why = sy_load_header_name_error(arg, (size_t)(colon - arg));
	if (why != NULL) {
		usage_error("--header: \"%.*s\": %s", (int)(colon - arg), arg,
		    why);
		return -1;
	}
	if (!sy_load_header_value_ok(colon + 1)) {
		usage_error("--header: control characters are not allowed");
		return -1;
	}
	return 0;
}

/*
 * Splits --url into o's host header, base path and address (resolved
 * now).  Returns 0, or an exit status after printing why.
 */
static int
url_arg(struct sy_load_opts *o, const char *url)
{
	struct addrinfo hints, *ai;
	const char *p = url + 7, *slash, *host_end;
	char host[256], port[8] = "80";
	size_t n;
	int e;

	if (strncasecmp(url, "https://", 8) == 0)
		return usage_error("--url: https is not supported; sy-load "
		    "speaks plain http");
	if (strncasecmp(url, "http://", 7) != 0)
		return usage_error("--url: expected http://HOST[:PORT][/PATH], "
		    "got \"%s\"", url);
	if (strpbrk(p, "?#") != NULL)
		return usage_error("--url: a base URL has no query or "
		    "fragment");
	slash = p + strcspn(p, "/");
	if (slash == p)
		return usage_error("--url: no host in \"%s\"", url);
	o->host_header = strndup(p, (size_t)(slash - p));
	o->base_path = strdup(slash);
	if (o->host_header == NULL || o->base_path == NULL)
		abort();
	n = strlen(o->base_path);
	while (n > 0 && o->base_path[n - 1] == '/')
		o->base_path[--n] = '\0';

	if (*p == '[') {
		host_end = strchr(p, ']');
		if (host_end == NULL || host_end > slash)
			return usage_error("--url: unclosed [ in \"%s\"", url);
		p++;
	} else {
		host_end = p;
		while (host_end < slash && *host_end != ':')
			host_end++;
	}
	if ((size_t)(host_end - p) >= sizeof host || host_end == p)
		return usage_error("--url: bad host in \"%s\"", url);
	memcpy(host, p, (size_t)(host_end - p));
	host[host_end - p] = '\0';
	p = host_end + (*host_end == ']');
	if (p < slash) {
		if (*p != ':' || slash - p < 2 || slash - p > 6 ||
		    strspn(p + 1, "0123456789") != (size_t)(slash - p - 1))
			return usage_error("--url: bad port in \"%s\"", url);
		memcpy(port, p + 1, (size_t)(slash - p - 1));
		port[slash - p - 1] = '\0';
		if (atoi(port) < 1 || atoi(port) > 65535)
			return usage_error("--url: bad port in \"%s\"", url);
	}

	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if ((e = getaddrinfo(host, port, &hints, &ai)) != 0) {
		fprintf(stderr, "sy-load: %s: %s\n", host, gai_strerror(e));
		return SY_LOAD_EXIT_FAIL;
	}
	memcpy(&o->addr, ai->ai_addr, ai->ai_addrlen);
	o->addrlen = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

/*
 * Parses argv into c and o (headers, output options).  Returns 0 or an
 * exit status.
 */
static int
parse_args(int argc, char **argv, struct cli *c, struct sy_load_opts *o)
{
	double *num = NULL;
	double min = 0, max = 0;
	const char *name = NULL;
	char **h;
	int ch, whole = 0;

	while ((ch = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
		num = NULL;
		switch (ch) {
		case OPT_URL: c->url = optarg; break;
		case OPT_ARRIVAL: c->arrival = optarg; break;
		case OPT_SPEC: c->spec = optarg; break;
		case OPT_TRACE: c->trace = optarg; break;
		case OPT_STREAM: c->stream = 1; break;
		case OPT_API: c->api = optarg; break;
		case OPT_MODEL: c->model = optarg; break;
		case OPT_JSON: o->json_path = optarg; break;
		case OPT_CSV: o->csv_path = optarg; break;
		case OPT_PER_REQUEST: o->per_request = 1; break;
		case OPT_QUIET: o->quiet = 1; break;
		case OPT_API_KEY:
			if (strpbrk(optarg, "\r\n") != NULL)
				return usage_error("--api-key: control "
				    "characters are not allowed");
			o->api_key = optarg;
			break;
		case OPT_HEADER:
			if (header_arg(optarg) < 0)
				return SY_LOAD_EXIT_USAGE;
			h = realloc(o->headers, (o->nheaders + 1) * sizeof *h);
			if (h == NULL)
				abort();
			o->headers = h;
			h[o->nheaders++] = optarg;
			break;
		case OPT_RATE:
			num = &c->rate, name = "rate", min = 1e-6, max = 1e7,
			    whole = 0;
			break;
		case OPT_CONCURRENCY:
			num = &c->concurrency, name = "concurrency", min = 1,
			    max = 100000, whole = 1;
			break;
		case OPT_DURATION:
			num = &c->duration, name = "duration", min = 1e-3,
			    max = 1e7, whole = 0;
			break;
		case OPT_REQUESTS:
			num = &c->requests, name = "requests", min = 1,
			    max = 1e12, whole = 1;
			break;
		case OPT_WARMUP:
			num = &c->warmup, name = "warmup", min = 0, max = 1e6,
			    whole = 0;
			break;
		case OPT_TIMEOUT:
			num = &c->timeout, name = "timeout", min = 1e-3,
			    max = 3600, whole = 0;
			break;
		case OPT_MAX_CONNECTIONS:
			num = &c->max_connections, name = "max-connections",
			    min = 1, max = 1000000, whole = 1;
			break;
		case OPT_PROMPT_TOKENS:
			num = &c->prompt_tokens, name = "prompt-tokens",
			    min = 1, max = 1e7, whole = 1;
			break;
		case OPT_MAX_TOKENS:
			num = &c->max_tokens, name = "max-tokens", min = 1,
			    max = 1e7, whole = 1;
			break;
		case OPT_SEED:
			num = &c->seed, name = "seed", min = 0,
			    max = 9007199254740992.0, whole = 1;
			break;
		case OPT_SLO_TTFT:
			num = &c->slo_ttft, name = "slo-ttft", min = 1e-3,
			    max = 1e9, whole = 0;
			break;
		case OPT_SLO_ITL:
			num = &c->slo_itl, name = "slo-itl", min = 1e-3,
			    max = 1e9, whole = 0;
			break;
		case OPT_SLO_LATENCY:
			num = &c->slo_latency, name = "slo-latency",
			    min = 1e-3, max = 1e9, whole = 0;
			break;
		case OPT_HELP:
			fputs(usage_text, stdout);
			exit(SY_LOAD_EXIT_OK);
		case OPT_VERSION:
			printf("sy-load " SY_LOAD_VERSION "\n");
			exit(SY_LOAD_EXIT_OK);
		default:
			fprintf(stderr, "(sy-load --help lists the options)\n");
			return SY_LOAD_EXIT_USAGE;
		}
		if (num != NULL &&
		    number_arg(name, optarg, min, max, whole, num) < 0)
			return SY_LOAD_EXIT_USAGE;
	}
	if (optind < argc)
		return usage_error("unexpected argument \"%s\"", argv[optind]);
	return 0;
}

/* Replaces spec's models with the single model name. */
static void
only_model(struct sy_load_spec *spec, const char *name)
{
	size_t i;

	for (i = 0; i < spec->nmodels; i++)
		free(spec->models[i].name);
	spec->nmodels = 0;
	sy_load_spec_model(spec, name);
	spec->models[0].weight = 1;
}

/* Sets d to always give v. */
static void
fixed(struct sy_load_dist *d, double v)
{
	memset(d, 0, sizeof *d);
	d->kind = SY_LOAD_FIXED;
	d->value = v;
	d->min = 1;
	d->max = v;
}

/*
 * Checks the options together, reads the spec and the trace, and applies
 * the options over the spec.  Returns 0 or an exit status (printed).
 */
static int
configure(struct cli *c, struct sy_load_opts *o)
{
	struct sy_load_spec *spec = &o->spec;
	char *err = NULL;
	int modes, r;

	if (c->url == NULL)
		return usage_error("--url is required");
	modes = (c->rate >= 0) + (c->concurrency >= 0) + (c->trace != NULL);
	if (modes != 1)
		return usage_error("give exactly one of --rate, --concurrency "
		    "and --trace");
	if (c->trace == NULL && c->duration < 0 && c->requests < 0)
		return usage_error("give --duration or --requests (or both)");
	if (c->arrival != NULL && c->rate < 0)
		return usage_error("--arrival goes with --rate");
	if (c->arrival != NULL && strcmp(c->arrival, "poisson") != 0 &&
	    strcmp(c->arrival, "constant") != 0)
		return usage_error("--arrival: expected poisson or constant, "
		    "got \"%s\"", c->arrival);
	if (c->max_connections >= 0 && c->concurrency >= 0)
		return usage_error("--max-connections goes with --rate or "
		    "--trace (--concurrency sets the connections)");
	if (o->per_request && o->json_path == NULL)
		return usage_error("--per-request goes with --json");
	if ((r = url_arg(o, c->url)) != 0)
		return r;
	o->url = strdup(c->url);
	if (o->url == NULL)
		abort();

	if (c->spec != NULL) {
		o->spec_path = strdup(c->spec);
		if (o->spec_path == NULL)
			abort();
		if (sy_load_spec_read(spec, c->spec, &err) < 0) {
			fprintf(stderr, "sy-load: %s\n", err ? err : c->spec);
			free(err);
			return SY_LOAD_EXIT_USAGE;
		}
	}
	if (c->api != NULL && sy_load_api_parse(c->api, &spec->api) < 0)
		return usage_error("--api: expected chat, completions, "
		    "embeddings or anthropic, got \"%s\"", c->api);
	if (c->model != NULL) {
		if (*c->model == '\0')
			return usage_error("--model: empty name");
		only_model(spec, c->model);
	}
	if (c->prompt_tokens > 0)
		fixed(&spec->prompt_tokens, c->prompt_tokens);
	if (c->max_tokens > 0)
		fixed(&spec->output_tokens, c->max_tokens);
	if (c->stream)
		spec->stream_fraction = 1;
	if (c->seed >= 0)
		spec->seed = (uint64_t)c->seed;
	if (c->slo_ttft > 0)
		spec->slo_ttft_ms = c->slo_ttft;
	if (c->slo_itl > 0)
		spec->slo_itl_ms = c->slo_itl;
	if (c->slo_latency > 0)
		spec->slo_latency_ms = c->slo_latency;
	if (spec->api == SY_LOAD_EMBEDDINGS && c->stream)
		return usage_error("--stream: embeddings do not stream");
	if (spec->api == SY_LOAD_EMBEDDINGS && spec->sessions)
		return usage_error("--api embeddings: the spec has sessions, "
		    "and embeddings have no conversation to continue");

	if (c->trace != NULL) {
		o->trace = sy_load_trace_read(c->trace, spec, &err);
		if (o->trace == NULL) {
			fprintf(stderr, "sy-load: %s\n", err ? err : c->trace);
			free(err);
			return SY_LOAD_EXIT_USAGE;
		}
		if (spec->api == SY_LOAD_EMBEDDINGS && o->trace->nsessions > 0)
			return usage_error("--trace: the trace has sessions, "
			    "and embeddings have no conversation to continue");
	}
	if (spec->nmodels > 65535)
		return usage_error("too many models (at most 65535)");

	o->mode = c->trace != NULL ? SY_LOAD_REPLAY : c->rate >= 0 ?
	    SY_LOAD_OPEN : SY_LOAD_CLOSED;
	o->rate = c->rate;
	o->poisson = c->arrival == NULL || strcmp(c->arrival, "poisson") == 0;
	o->concurrency = c->concurrency > 0 ? (unsigned)c->concurrency : 0;
	o->duration = c->duration > 0 ? c->duration : 0;
	o->requests = c->requests > 0 ? (uint64_t)c->requests : 0;
	o->warmup = c->warmup > 0 ? c->warmup : 0;
	o->timeout = c->timeout > 0 ? c->timeout : 60;
	o->max_connections = c->max_connections > 0 ?
	    (unsigned)c->max_connections : 1024;
	return 0;
}

/* Raises the open-file limit for the connections; 0 or an exit status. */
static int
raise_nofile(const struct sy_load_opts *o)
{
	struct rlimit rl;
	rlim_t need;

	need = (rlim_t)(o->mode == SY_LOAD_CLOSED ? o->concurrency :
	    o->max_connections) + SPARE_FDS;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= need)
		return 0;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need ?
	    need : rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < need)
		return usage_error("%s needs %llu open files but the limit is "
		    "%llu (raise it with ulimit -n)",
		    o->mode == SY_LOAD_CLOSED ? "--concurrency" :
		    "--max-connections", (unsigned long long)need,
		    (unsigned long long)rl.rlim_cur);
	return 0;
}

/* Frees what o holds. */
static void
opts_free(struct sy_load_opts *o)
{
	sy_load_spec_free(&o->spec);
	sy_load_trace_free(o->trace);
	free(o->headers);
	free(o->url);
	free(o->host_header);
	free(o->base_path);
	free(o->spec_path);
}

int
main(int argc, char **argv)
{
	struct sy_load_opts o;
	struct sy_load_results res;
	struct cli c;
	int r;

	if (argc > 1 && strcmp(argv[1], "experiment") == 0)
		return sy_load_experiment_main(argc - 1, argv + 1);
	memset(&o, 0, sizeof o);
	memset(&c, 0, sizeof c);
	c.rate = c.concurrency = c.duration = c.requests = c.warmup = -1;
	c.timeout = c.max_connections = c.prompt_tokens = c.max_tokens = -1;
	c.seed = c.slo_ttft = c.slo_itl = c.slo_latency = -1;
	sy_load_spec_init(&o.spec);

	if ((r = parse_args(argc, argv, &c, &o)) != 0 ||
	    (r = configure(&c, &o)) != 0 || (r = raise_nofile(&o)) != 0) {
		opts_free(&o);
		return r;
	}
	signal(SIGPIPE, SIG_IGN);
	if (sy_load_run(&o, &res) < 0) {
		opts_free(&o);
		return SY_LOAD_EXIT_FAIL;
	}
	r = sy_load_report(&res) < 0 ? SY_LOAD_EXIT_FAIL : SY_LOAD_EXIT_OK;
	sy_load_results_free(&res);
	opts_free(&o);
	return r;
}
