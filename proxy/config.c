/* Configuration: the snapshot's structure (backends, routes and the references between them, aliases, fallbacks, policies, pools), read through the row tables, and snapshots' lifetimes. */
#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <float.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "backend.h"
#include "batch.h"
#include "confrow.h"
#include "config.h"
#include "endstats.h"
#include "policy.h"
#include "redis.h"
#include "req.h"
#include "tokenize.h"
#include "util.h"

#define PATHLEN		SY_CONF_PATHLEN
#define ALLOWED_MAX	1000000		/* largest weight and max_concurrency */
#define DAY_MS		86400000	/* largest duration */
#define MAX_FALLBACKS	8		/* fallbacks of one route */
#define MAX_KINDS	16		/* kinds with keys of their own */

/* The place of a field of struct type in its table's struct. */
#define AT(type, field)	offsetof(struct type, field)

#define fail		sy_conf_fail
#define type_name	sy_conf_type_name
#define path_key	sy_conf_path_key
#define path_index	sy_conf_path_index

/* What a load of a snapshot keeps beside the rows (sy_conf_user). */
struct load {
	struct sy_config *cfg;		/* the snapshot being built */
	json_t *served;			/* served model → route index */
	json_t *aliased;		/* alias → route index */
	int wildcard;			/* a route is a wildcard */
};

#define LOAD(c)		((struct load *)sy_conf_user(c))

static const struct sy_conf_table root_table;

/* ==== Small helpers ==== */

/* Whether s is a valid backend or route name: [A-Za-z0-9_.-]+. */
static int
valid_name(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++) {
		if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		    (*s >= '0' && *s <= '9') || *s == '_' || *s == '.' ||
		    *s == '-')
			continue;
		return 0;
	}
	return 1;
}

/* The name of route r for messages. */
static const char *
route_label(const struct sy_route *r)
{
	return r->name != NULL ? r->name : "(unnamed)";
}

/* ==== Addresses and URLs ==== */

/*
 * Splits s (n bytes), "host[:port]" or "[v6][:port]", into *host (malloc'd,
 * without brackets), *port (-1 when absent) and *v6 (bracketed).  Returns
 * NULL, or a static reason.
 */
static const char *
split_hostport(const char *s, size_t n, char **host, int *port, int *v6)
{
	const char *h, *colon, *end = s + n, *q;
	size_t hl;
	long v = 0;

	*host = NULL;
	*port = -1;
	*v6 = 0;
	if (n > 0 && s[0] == '[') {
		if ((q = memchr(s, ']', n)) == NULL)
			return "missing ']' after the IPv6 address";
		h = s + 1;
		hl = (size_t)(q - h);
		*v6 = 1;
		colon = q + 1 < end ? q + 1 : NULL;
		if (colon != NULL && *colon != ':')
			return "expected ':' after ']'";
	} else {
		colon = memchr(s, ':', n);
		if (colon != NULL && memrchr(s, ':', n) != colon)
			return "an IPv6 address must be in brackets, as in "
			    "[::1]:8080";
		h = s;
		hl = colon != NULL ? (size_t)(colon - s) : n;
	}
	if (hl == 0)
		return "the host is empty";
	if (colon != NULL) {
		if (colon + 1 == end)
			return "the port is empty";
		for (q = colon + 1; q < end; q++) {
			if (*q < '0' || *q > '9')
				return "the port must be a number";
			if ((v = v * 10 + (*q - '0')) > 65535)
				break;
		}
		if (v < 1 || v > 65535)
			return "the port must be from 1 to 65535";
		*port = (int)v;
	}
	for (q = h; !*v6 && q < h + hl; q++) {
		if ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') ||
		    (*q >= '0' && *q <= '9') || *q == '-' || *q == '.' ||
		    *q == '_')
			continue;
		return "the host name may hold only letters, digits, '-', "
		    "'.' and '_'";
	}
	*host = strndup(h, hl);
	if (*host == NULL)
		abort();
	return NULL;
}

/*
 * Resolves host and port (an IPv6 literal when v6) into ss and len.
 * Returns NULL, or a reason written into buf (len bytes).
 */
static const char *
resolve(const char *host, int port, int v6, struct sockaddr_storage *ss,
    socklen_t *sslen, char *buf, size_t len)
{
	struct addrinfo hints, *res;
	char service[8];
	int rc;

	memset(&hints, 0, sizeof hints);
	hints.ai_family = v6 ? AF_INET6 : AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | (v6 ? AI_NUMERICHOST : 0);
	snprintf(service, sizeof service, "%d", port);
	if ((rc = getaddrinfo(host, service, &hints, &res)) != 0) {
		if (v6)
			snprintf(buf, len, "invalid IPv6 address \"%s\"", host);
		else
			snprintf(buf, len, "cannot resolve \"%s\": %s", host,
			    gai_strerror(rc));
		return buf;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*sslen = res->ai_addrlen;
	freeaddrinfo(res);
	return NULL;
}

/* As sy_config_parse_hostport; returns NULL or a reason (in buf). */
static const char *
parse_address(const char *s, struct sockaddr_storage *ss, socklen_t *sslen,
    char *buf, size_t len)
{
	const char *why;
	char *host;
	int port, v6;

	if ((why = split_hostport(s, strlen(s), &host, &port, &v6)) != NULL)
		return why;
	if (port == -1)
		why = "expected HOST:PORT or [IPv6]:PORT";
	else
		why = resolve(host, port, v6, ss, sslen, buf, len);
	free(host);
	return why;
}

/*
 * Parses url (at path) into ep's tls, host, port, base_path and address.
 * Returns 0, or -1 after reporting the error.
 */
static int
parse_url(struct sy_conf *c, const char *path, const char *url,
    struct sy_endpoint *ep)
{
	const char *p, *auth, *end, *why;
	char buf[256];
	size_t n;
	int v6;

	for (p = url; *p != '\0'; p++) {
		if ((unsigned char)*p <= ' ' || *p == 0x7f) {
			fail(c, path, "the URL must not contain spaces or "
			    "control characters");
			return -1;
		}
	}
	if ((p = strstr(url, "://")) == NULL) {
		fail(c, path, "expected an http:// or https:// URL");
		return -1;
	}
	if (p - url == 4 && strncasecmp(url, "http", 4) == 0)
		ep->tls = 0;
	else if (p - url == 5 && strncasecmp(url, "https", 5) == 0)
		ep->tls = 1;
	else {
		fail(c, path, "unsupported scheme \"%.*s\"; use http or https",
		    (int)(p - url), url);
		return -1;
	}
	auth = p + 3;
	end = auth + strcspn(auth, "/?#");
	if (strpbrk(end, "?#") != NULL) {
		fail(c, path, "a base URL has no query or fragment");
		return -1;
	}
	if (memchr(auth, '@', (size_t)(end - auth)) != NULL) {
		fail(c, path, "user info (user@host) is not allowed in the "
		    "URL; name the API key's variable in \"api_key_env\"");
		return -1;
	}
	why = split_hostport(auth, (size_t)(end - auth), &ep->host, &ep->port,
	    &v6);
	if (why != NULL) {
		fail(c, path, "%s", why);
		return -1;
	}
	if (ep->port == -1)
		ep->port = ep->tls ? 443 : 80;
	n = strlen(end);
	while (n > 0 && end[n - 1] == '/')
		n--;
	if (n > SY_BASE_PATH_MAX) {
		fail(c, path, "the URL's path is longer than %d characters",
		    SY_BASE_PATH_MAX);
		return -1;
	}
	if ((ep->base_path = strndup(end, n)) == NULL)
		abort();
	why = resolve(ep->host, ep->port, v6, &ep->addr, &ep->addrlen, buf,
	    sizeof buf);
	if (why != NULL) {
		fail(c, path, "%s", why);
		return -1;
	}
	return 0;
}

/* ==== Names ==== */

/*
 * Reads v (at path), the name of element i of an array of structs of
 * stride bytes whose names start at first, into *out: letters, digits,
 * '_', '.' and '-', unlike the names before it (what: "backend").
 */
static int
read_name(struct sy_conf *c, const json_t *v, const char *path,
    const char *what, const void *first, size_t stride, size_t i, char **out)
{
	const char *s, *other;
	size_t j;

	if (sy_conf_string(c, v, path, &s) == -1)
		return -1;
	*out = sy_xstrdup(s);
	if (!valid_name(s))
		fail(c, path, "invalid name \"%s\": use letters, digits, '_', "
		    "'.' and '-'", s);
	for (j = 0; j < i; j++) {
		other = *(char *const *)(const void *)((const char *)first +
		    j * stride);
		if (other != NULL && strcmp(other, s) == 0) {
			fail(c, path, "duplicate %s name \"%s\" (also "
			    "%ss[%zu])", what, s, what, j);
			break;
		}
	}
	return 0;
}

/* ==== Backends ==== */

/* Whether ep serves model (an endpoint without models serves any). */
static int
serves(const struct sy_endpoint *ep, const char *model)
{
	size_t i;

	if (ep->nmodels == 0)
		return 1;
	for (i = 0; i < ep->nmodels; i++)
		if (strcmp(ep->models[i], model) == 0)
			return 1;
	return 0;
}

/* The names of cfg's backends, comma separated; caller frees. */
static char *
backend_names(const struct sy_config *cfg)
{
	size_t i, n = 1;
	char *s;

	for (i = 0; i < cfg->nendpoints; i++)
		if (cfg->endpoints[i].name != NULL)
			n += strlen(cfg->endpoints[i].name) + 2;
	s = sy_xmalloc(n);
	s[0] = '\0';
	for (i = 0; i < cfg->nendpoints; i++) {
		if (cfg->endpoints[i].name == NULL)
			continue;
		if (s[0] != '\0')
			strcat(s, ", ");
		strcat(s, cfg->endpoints[i].name);
	}
	return s;
}

static int
backend_name(struct sy_conf *c, const struct sy_conf_row *row,
    const json_t *v, const char *path, void *base)
{
	struct sy_endpoint *ep = base;

	return read_name(c, v, path, "backend",
	    &LOAD(c)->cfg->endpoints[0].name, sizeof *ep, ep->index,
	    &ep->name);
}

static int
backend_url(struct sy_conf *c, const struct sy_conf_row *row,
    const json_t *v, const char *path, void *base)
{
	struct sy_endpoint *ep = base;
	const char *s;

	if (sy_conf_string(c, v, path, &s) == -1)
		return -1;
	ep->url = sy_xstrdup(s);
	return parse_url(c, path, s, ep);
}

static int
backend_kind(struct sy_conf *c, const struct sy_conf_row *row,
    const json_t *v, const char *path, void *base)
{
	struct sy_endpoint *ep = base;
	const char *s = row->def.s;
	char names[256];

	if (v != NULL && sy_conf_string(c, v, path, &s) == -1)
		return -1;
	if ((ep->kind = sy_backend_kind_find(s)) == NULL) {
		sy_backend_kind_names(names, sizeof names);
		fail(c, path, "unknown backend kind \"%s\"; known: %s", s,
		    names);
		return -1;
	}
	return 0;
}

/*
 * Reports each key of backend object b (at path) that only other kinds
 * than ep's take.
 */
static void
backend_foreign_keys(struct sy_conf *c, const json_t *b, const char *path,
    const struct sy_endpoint *ep)
{
	const struct sy_conf_table *kinds[MAX_KINDS];
	const struct sy_conf_table *own = ep->kind ? ep->kind->params : NULL;
	char p[PATHLEN], owners[256];
	const char *key;
	json_t *v;
	size_t i, n = sy_backend_kind_params(kinds, MAX_KINDS), found;

	json_object_foreach((json_t *)b, key, v) {
		if (own != NULL && sy_conf_row_find(own, key) != NULL)
			continue;
		owners[0] = '\0';
		for (i = 0, found = 0; i < n; i++) {
			if (sy_conf_row_find(kinds[i], key) == NULL)
				continue;
			snprintf(owners + strlen(owners), sizeof owners -
			    strlen(owners), "%s%s", found ? ", " : "",
			    kinds[i]->owner);
			found++;
		}
		if (found == 0)
			continue;
		fail(c, path_key(p, path, key), "only the %s kind%s take%s %s "
		    "%s", owners, found > 1 ? "s" : "", found > 1 ? "" : "s",
		    strchr("aeiou", key[0]) != NULL ? "an" : "a", key);
	}
}

/*
 * What a backend's rows cannot say alone: "*" is no model of a backend,
 * the kind's own keys, the kind's health path by default.
 */
/*
 * The keys of a backend's self-hosted cost mean nothing without its
 * cost_per_hour (the accountant meters energy and cost together).
 */
static void
backend_hourly_check(struct sy_conf *c, const json_t *b, const char *path,
    const struct sy_endpoint *ep)
{
	static const char *const with[] = { "power_watts", "idle_power_share",
	    "prompt_weight", "completion_weight", "cached_weight" };
	char p[PATHLEN];
	size_t i;

	if (ep->hourly.hourly_usd > 0)
		return;
	for (i = 0; i < sizeof with / sizeof with[0]; i++)
		if (json_object_get(b, with[i]) != NULL)
			fail(c, path_key(p, path, with[i]), "applies to a "
			    "self-hosted backend only: give its cost_per_hour "
			    "(> 0) too");
}

static void
backend_check(struct sy_conf *c, const json_t *b, const char *path,
    void *base)
{
	struct sy_endpoint *ep = base;
	const json_t *e;
	char p[PATHLEN], q[PATHLEN];
	size_t i;

	path_key(p, path, "models");
	json_array_foreach(json_object_get(b, "models"), i, e)
		if (json_is_string(e) && strcmp(json_string_value(e), "*") == 0)
			fail(c, path_index(q, p, i), "\"*\" is for routes; to "
			    "serve any model, leave \"models\" out");
	if (ep->kind != NULL && ep->kind->params != NULL) {
		ep->params = sy_xcalloc(1, ep->kind->params->size);
		sy_conf_read_shared(c, ep->kind->params, b, path, ep->params);
	}
	backend_foreign_keys(c, b, path, ep);
	backend_hourly_check(c, b, path, ep);
	if (ep->health.path == NULL && ep->kind != NULL)
		ep->health.path = sy_xstrdup(ep->kind->health_path);
}

/* TLS of an https backend: only there, and a CA file that can be read. */
static void
tls_check(struct sy_conf *c, const json_t *o, const char *path, void *base)
{
	struct sy_endpoint *ep = base;
	char p[PATHLEN];

	if (o == NULL)
		return;
	if (ep->addrlen != 0 && !ep->tls)
		fail(c, path, "tls settings apply only to https URLs");
	if (ep->ca_file != NULL && access(ep->ca_file, R_OK) != 0)
		fail(c, path_key(p, path, "ca_file"), "cannot read \"%s\": %s",
		    ep->ca_file, strerror(errno));
}

static const struct sy_conf_row tls_rows[] = {
	{ .name = "ca_file", .type = SY_CONF_STRING,
	  .offset = AT(sy_endpoint, ca_file),
	  .doc = "PEM file of the CA certificates to trust instead of the "
	    "system's" },
	{ .name = "verify", .type = SY_CONF_BOOL,
	  .offset = AT(sy_endpoint, tls_verify), .def.u = 1,
	  .doc = "verify the backend's certificate and host name" },
	{ .name = NULL }
};

static const struct sy_conf_table tls_table = {
	.path = "backends[].tls",
	.rows = tls_rows,
	.size = sizeof(struct sy_endpoint),
	.check = tls_check
};

static const struct sy_conf_row backend_rows[] = {
	{ .name = "name", .type = SY_CONF_CUSTOM, .required = 1,
	  .parse = backend_name,
	  .doc = "unique name of the endpoint in logs, metrics and stats" },
	{ .name = "url", .type = SY_CONF_CUSTOM, .required = 1,
	  .parse = backend_url, .doc = "base URL, e.g. http://h:8000/v1" },
	{ .name = "kind", .type = SY_CONF_CUSTOM, .always = 1,
	  .def.s = "openai", .parse = backend_kind,
	  .doc = "wire protocol (backends/registry.c)" },
	{ .name = "models", .type = SY_CONF_STRINGS,
	  .offset = AT(sy_endpoint, models), .count = AT(sy_endpoint, nmodels),
	  .what = "model name", .doc = "models served; none: any" },
	{ .name = "weight", .type = SY_CONF_UINT,
	  .offset = AT(sy_endpoint, weight), .def.u = 1, .max = ALLOWED_MAX,
	  .doc = "share of traffic; 0 takes none" },
	{ .name = "max_concurrency", .type = SY_CONF_UINT,
	  .offset = AT(sy_endpoint, max_concurrency), .max = ALLOWED_MAX,
	  .doc = "requests in flight, all workers; 0: no limit" },
	{ .name = "cache_tokens", .type = SY_CONF_UINT,
	  .offset = AT(sy_endpoint, cache_tokens), .max = 1000000000,
	  .doc = "tokens its prefix cache holds, for prefix_aware; 0: unknown" },
	{ .name = "tokenize", .type = SY_CONF_WORD,
	  .offset = AT(sy_endpoint, tokenize), .words = sy_tokenize_words,
	  .doc = "its tokenizer, asked by count_tokens: none, vllm, llama.cpp" },
	{ .name = "cost_per_hour", .type = SY_CONF_NUMBER,
	  .offset = AT(sy_endpoint, hourly.hourly_usd), .lo = 0, .hi = DBL_MAX,
	  .doc = "self-hosted: USD per hour of the endpoint (its GPUs, host, "
	  "rack share)" },
	{ .name = "gpus", .type = SY_CONF_UINT, .offset = AT(sy_endpoint, gpus),
	  .max = 65536, .doc = "GPUs of the endpoint, for per-GPU figures" },
	{ .name = "power_watts", .type = SY_CONF_NUMBER,
	  .offset = AT(sy_endpoint, hourly.power_watts), .lo = 0,
	  .hi = DBL_MAX, .doc = "self-hosted: watts at full load" },
	{ .name = "idle_power_share", .type = SY_CONF_NUMBER,
	  .offset = AT(sy_endpoint, hourly.idle_power_share), .def.d = 0.3,
	  .lo = 0, .hi = 1, .doc = "self-hosted: share of power_watts drawn "
	  "while idle" },
	{ .name = "prompt_weight", .type = SY_CONF_NUMBER,
	  .offset = AT(sy_endpoint, hourly.prompt_weight), .def.d = 1,
	  .lo = 0, .hi = DBL_MAX,
	  .doc = "self-hosted: weight of an uncached prompt token" },
	{ .name = "completion_weight", .type = SY_CONF_NUMBER,
	  .offset = AT(sy_endpoint, hourly.completion_weight), .def.d = 1,
	  .lo = 0, .hi = DBL_MAX,
	  .doc = "self-hosted: weight of a completion token" },
	{ .name = "cached_weight", .type = SY_CONF_NUMBER,
	  .offset = AT(sy_endpoint, hourly.cached_weight), .def.d = 0.1,
	  .lo = 0, .hi = DBL_MAX,
	  .doc = "self-hosted: weight of a cached prompt token" },
	{ .name = "api_key_env", .type = SY_CONF_SECRET,
	  .offset = AT(sy_endpoint, api_key), .keep_name = 1,
	  .name_at = AT(sy_endpoint, api_key_env), .what = "an API key",
	  .doc = "environment variable holding the API key" },
	{ .name = "forward_headers", .type = SY_CONF_STRINGS,
	  .offset = AT(sy_endpoint, forward_headers),
	  .count = AT(sy_endpoint, nforward_headers), .what = "header name",
	  .doc = "client headers passed on to the backend" },
	{ .name = "forward_client_key", .type = SY_CONF_BOOL,
	  .offset = AT(sy_endpoint, forward_client_key),
	  .doc = "the client's own API key goes to the backend, not ours" },
	{ .name = "(kind)", .type = SY_CONF_PLUGIN,
	  .plugins = sy_backend_kind_params,
	  .doc = "the keys of the backend's kind" },
	{ .name = "tls", .type = SY_CONF_OBJECT, .table = &tls_table,
	  .doc = "TLS settings of an https URL" },
	{ .name = "health", .type = SY_CONF_OBJECT,
	  .offset = AT(sy_endpoint, health), .table = &sy_health_table,
	  .doc = "active health checks; absent: off" },
	{ .name = "metrics", .type = SY_CONF_OBJECT,
	  .offset = AT(sy_endpoint, scrape), .table = &sy_scrape_table,
	  .doc = "reading the endpoint's load; absent: off" },
	{ .name = NULL }
};

static const struct sy_conf_table backend_table = {
	.path = "backends[]",
	.rows = backend_rows,
	.size = sizeof(struct sy_endpoint),
	.check = backend_check
};

/* Reads the backends array (at path) into cfg->endpoints. */
static int
load_backends(struct sy_conf *c, const struct sy_conf_row *row,
    const json_t *arr, const char *path, void *base)
{
	struct sy_config *cfg = base;
	struct sy_endpoint *ep;
	const json_t *b;
	char p[PATHLEN];
	size_t i;

	cfg->nendpoints = json_array_size(arr);
	cfg->endpoints = sy_xcalloc(cfg->nendpoints, sizeof *cfg->endpoints);
	json_array_foreach(arr, i, b) {
		ep = &cfg->endpoints[i];
		ep->index = i;
		path_index(p, path, i);
		if (!json_is_object(b))
			fail(c, p, "expected an object, got %s", type_name(b));
		else
			sy_conf_read(c, &backend_table, b, p, ep);
	}
	return 0;
}

/* ==== Routes ==== */

/* Whether route r serves model m by name. */
static int
route_has_model(const struct sy_route *r, const char *m)
{
	size_t i;

	for (i = 0; i < r->nmodels; i++)
		if (strcmp(r->models[i], m) == 0)
			return 1;
	return 0;
}

/* Writes into buf the path of the first element of models equal to m. */
static char *
model_path(char *buf, const json_t *o, const char *path, const char *m)
{
	const json_t *arr = json_object_get(o, "models"), *v;
	char p[PATHLEN];
	size_t i;

	path_key(p, path, "models");
	json_array_foreach(arr, i, v) {
		if (json_is_string(v) && strcmp(json_string_value(v), m) == 0)
			return path_index(buf, p, i);
	}
	return strcpy(buf, p);
}

static int
route_name(struct sy_conf *c, const struct sy_conf_row *row,
    const json_t *v, const char *path, void *base)
{
	struct sy_route *r = base;

	return read_name(c, v, path, "route", &LOAD(c)->cfg->routes[0].name,
	    sizeof *r, r->index, &r->name);
}

/* Reads the served models of route r (array arr, at path). */
static int
route_models(struct sy_conf *c, const struct sy_conf_row *row,
    const json_t *arr, const char *path, void *base)
{
	struct sy_route *r = base;
	struct sy_config *cfg = LOAD(c)->cfg;
	const json_t *v, *owner;
	char q[PATHLEN];
	const char *s;
	size_t i, j;

	r->models = sy_xcalloc(json_array_size(arr), sizeof *r->models);
	json_array_foreach(arr, i, v) {
		path_index(q, path, i);
		if (!json_is_string(v) || *json_string_value(v) == '\0') {
			fail(c, q, "expected a model name, got %s",
			    json_is_string(v) ? "\"\"" : type_name(v));
			continue;
		}
		s = json_string_value(v);
		if (strcmp(s, "*") == 0) {
			if (json_array_size(arr) != 1)
				fail(c, q, "\"*\" must be the only model of a "
				    "wildcard route");
			else if (LOAD(c)->wildcard) {
				for (j = 0; j < r->index; j++)
					if (cfg->routes[j].wildcard)
						break;
				fail(c, q, "only one route may be a wildcard; "
				    "routes[%zu] is one already", j);
			} else {
				LOAD(c)->wildcard = 1;
				r->wildcard = 1;
				r->models[r->nmodels++] = sy_xstrdup(s);
			}
			continue;
		}
		if (route_has_model(r, s)) {
			fail(c, q, "duplicate model \"%s\"", s);
			continue;
		}
		if ((owner = json_object_get(LOAD(c)->served, s)) != NULL) {
			j = (size_t)json_integer_value(owner);
			fail(c, q, "model \"%s\" is already served by route "
			    "\"%s\"", s, route_label(&cfg->routes[j]));
			continue;
		}
		json_object_set_new(LOAD(c)->served, s,
		    json_integer((json_int_t)r->index));
		r->models[r->nmodels++] = sy_xstrdup(s);
	}
	return 0;
}

/* Reads the aliases of route r (obj, at path): other names of its models. */
static int
route_aliases(struct sy_conf *c, const struct sy_conf_row *row,
    const json_t *obj, const char *path, void *base)
{
	struct sy_route *r = base;
	struct sy_config *cfg = LOAD(c)->cfg;
	const json_t *v, *owner;
	char q[PATHLEN];
	const char *from;

	if (r->wildcard && json_object_size(obj) != 0) {
		fail(c, path, "a wildcard route has no aliases: it sends every "
		    "model name on unchanged");
		return -1;
	}
	r->aliases = sy_xcalloc(json_object_size(obj), sizeof *r->aliases);
	json_object_foreach((json_t *)obj, from, v) {
		path_key(q, path, from);
		if (*from == '\0' || strcmp(from, "*") == 0) {
			fail(c, q, "an alias must be a model name");
			continue;
		}
		if ((owner = json_object_get(LOAD(c)->served, from)) != NULL) {
			fail(c, q, "alias \"%s\" is a model served by route "
			    "\"%s\"", from, route_label(&cfg->routes[
			    json_integer_value(owner)]));
			continue;
		}
		if ((owner = json_object_get(LOAD(c)->aliased, from)) != NULL) {
			fail(c, q, "alias \"%s\" is already an alias in route "
			    "\"%s\"", from, route_label(&cfg->routes[
			    json_integer_value(owner)]));
			continue;
		}
		if (!json_is_string(v)) {
			fail(c, q, "expected a model name, got %s",
			    type_name(v));
			continue;
		}
		if (!route_has_model(r, json_string_value(v))) {
			fail(c, q, "\"%s\" is not a model of this route",
			    json_string_value(v));
			continue;
		}
		json_object_set_new(LOAD(c)->aliased, from,
		    json_integer((json_int_t)r->index));
		r->aliases[r->naliases].from = sy_xstrdup(from);
		r->aliases[r->naliases].to = sy_xstrdup(json_string_value(v));
		r->naliases++;
	}
	return 0;
}

/* Whether ep serves at least one model of r (any, for a wildcard route). */
static int
serves_route(const struct sy_endpoint *ep, const struct sy_route *r)
{
	size_t i;

	if (r->wildcard)
		return 1;
	for (i = 0; i < r->nmodels; i++)
		if (serves(ep, r->models[i]))
			return 1;
	return 0;
}

/* Adds the endpoint named by v (at path) to route r's backends. */
static void
route_backend(struct sy_conf *c, const json_t *v, const char *path,
    struct sy_route *r)
{
	struct sy_config *cfg = LOAD(c)->cfg;
	struct sy_endpoint *ep;
	const char *s;
	char *names;
	size_t j;

	if (!json_is_string(v)) {
		fail(c, path, "expected a backend name, got %s", type_name(v));
		return;
	}
	s = json_string_value(v);
	for (j = 0, ep = NULL; j < cfg->nendpoints; j++)
		if (cfg->endpoints[j].name != NULL &&
		    strcmp(cfg->endpoints[j].name, s) == 0)
			ep = &cfg->endpoints[j];
	if (ep == NULL) {
		names = backend_names(cfg);
		fail(c, path, "unknown backend \"%s\"; known: %s", s, names);
		free(names);
		return;
	}
	for (j = 0; j < r->nendpoints; j++)
		if (r->endpoints[j] == ep)
			break;
	if (j < r->nendpoints)
		fail(c, path, "backend \"%s\" is listed twice", s);
	else if (!serves_route(ep, r))
		fail(c, path, "backend \"%s\" serves none of this route's "
		    "models", s);
	else
		r->endpoints[r->nendpoints++] = ep;
}

/*
 * Reads route r's backends (arr at path, or NULL: every one serving it)
 * and builds its pools.  A model without a backend is an error, unless
 * the backends list already had one.
 */
static int
route_backends(struct sy_conf *c, const struct sy_conf_row *row,
    const json_t *arr, const char *path, void *base)
{
	struct sy_route *r = base;
	struct sy_config *cfg = LOAD(c)->cfg;
	const json_t *o = sy_conf_object(c), *v;
	struct sy_pool *pool;
	char q[PATHLEN], rp[PATHLEN];
	size_t i, j, nerrs = sy_conf_nerrs(c);

	path_index(rp, "routes", r->index);
	r->endpoints = sy_xcalloc(cfg->nendpoints, sizeof *r->endpoints);
	if (arr == NULL) {
		for (i = 0; i < cfg->nendpoints; i++)
			if (serves_route(&cfg->endpoints[i], r))
				r->endpoints[r->nendpoints++] =
				    &cfg->endpoints[i];
	}
	json_array_foreach(arr, i, v)
		route_backend(c, v, path_index(q, path, i), r);

	r->npools = r->wildcard ? 1 : r->nmodels;
	r->pools = sy_xcalloc(r->npools, sizeof *r->pools);
	for (i = 0; i < r->npools; i++) {
		pool = &r->pools[i];
		pool->route = r;
		pool->model = r->wildcard ? NULL : r->models[i];
		pool->endpoints = sy_xcalloc(r->nendpoints,
		    sizeof *pool->endpoints);
		for (j = 0; j < r->nendpoints; j++)
			if (pool->model == NULL ||
			    serves(r->endpoints[j], pool->model))
				pool->endpoints[pool->nendpoints++] =
				    r->endpoints[j];
		if (pool->nendpoints == 0 && pool->model != NULL &&
		    cfg->nendpoints != 0 && sy_conf_nerrs(c) == nerrs)
			fail(c, model_path(q, o, rp, pool->model),
			    "no backend %sserves model \"%s\"",
			    arr != NULL ? "of this route " : "", pool->model);
	}
	return 0;
}

static int
route_policy(struct sy_conf *c, const struct sy_conf_row *row,
    const json_t *v, const char *path, void *base)
{
	struct sy_route *r = base;
	const char *name;
	char names[256];

	if (sy_conf_policy(c, row, v, path, &name, &r->policy_params) == -1)
		return -1;
	if ((r->policy = sy_route_policy_find(name)) == NULL) {
		sy_route_policy_names(names, sizeof names);
		sy_conf_unknown_policy(c, v, path, "policy", name, names);
		return -1;
	}
	return 0;
}

static int
route_selection(struct sy_conf *c, const struct sy_conf_row *row,
    const json_t *v, const char *path, void *base)
{
	struct sy_route *r = base;
	const char *name;
	char names[256];

	if (sy_conf_policy(c, row, v, path, &name,
	    &r->selection_params) == -1)
		return -1;
	if ((r->selection = sy_select_policy_find(name)) == NULL) {
		sy_select_policy_names(names, sizeof names);
		sy_conf_unknown_policy(c, v, path, "selection policy", name,
		    names);
		return -1;
	}
	return 0;
}

/* Reads route r's batch object (at path) unless its answers are checked. */
static int
route_batch(struct sy_conf *c, const struct sy_conf_row *row,
    const json_t *v, const char *path, void *base)
{
	struct sy_route *r = base;

	if (r->selection != NULL && r->selection->check != NULL) {
		/* A batch answers its members without their answers checked. */
		fail(c, path, "a route whose selection policy checks its "
		    "answers (%s) cannot batch", r->selection->name);
		return -1;
	}
	sy_conf_read(c, &sy_batch_table, v, path, &r->batch);
	return 0;
}

/*
 * The model name fallback s of route ri stands for (borrowed), or NULL
 * after reporting why it cannot be one (at path).  Model names and aliases
 * come first, then route names; with a wildcard route, any other name is
 * one that route serves.
 */
static const char *
fallback_model(struct sy_conf *c, const struct sy_config *cfg, size_t ri,
    const char *path, const char *s)
{
	const struct sy_route *r = &cfg->routes[ri], *other;
	const json_t *owner;
	size_t i;

	if (strcmp(s, "*") == 0) {
		fail(c, path, "\"*\" is not a model name; name a model the "
		    "wildcard route should ask for");
		return NULL;
	}
	if ((owner = json_object_get(LOAD(c)->served, s)) == NULL)
		owner = json_object_get(LOAD(c)->aliased, s);
	if (owner != NULL) {
		if ((size_t)json_integer_value(owner) == ri) {
			fail(c, path, "\"%s\" is served by this route; a "
			    "fallback must go to another route", s);
			return NULL;
		}
		return s;
	}
	for (i = 0; i < cfg->nroutes; i++) {
		other = &cfg->routes[i];
		if (other->name == NULL || strcmp(other->name, s) != 0)
			continue;
		if (i == ri) {
			fail(c, path, "a route cannot fall back to itself");
			return NULL;
		}
		if (other->wildcard) {
			fail(c, path, "route \"%s\" is a wildcard route: name "
			    "the model to ask it for", s);
			return NULL;
		}
		if (other->nmodels == 0)
			return NULL;	/* its models' error is reported */
		return other->models[0];
	}
	if (LOAD(c)->wildcard && !r->wildcard)
		return s;
	fail(c, path, "\"%s\" is no model, alias or route name of another "
	    "route", s);
	return NULL;
}

/*
 * Reads the fallbacks of route r (v at path): model names tried in order
 * when the route cannot answer.  Read once every route's models and
 * aliases are known.
 */
static int
route_fallbacks(struct sy_conf *c, const struct sy_conf_row *row,
    const json_t *v, const char *path, void *base)
{
	struct sy_route *r = base;
	const json_t *e;
	char q[PATHLEN];
	const char *s, *m;
	size_t i, j;

	if (!json_is_array(v)) {
		fail(c, path, "expected an array of model or route names, got "
		    "%s", type_name(v));
		return -1;
	}
	if (json_array_size(v) > MAX_FALLBACKS) {
		fail(c, path, "at most %d fallbacks, got %zu", MAX_FALLBACKS,
		    json_array_size(v));
		return -1;
	}
	r->fallbacks = sy_xcalloc(json_array_size(v), sizeof *r->fallbacks);
	json_array_foreach(v, i, e) {
		path_index(q, path, i);
		if (!json_is_string(e) || *json_string_value(e) == '\0') {
			fail(c, q, "expected a model or route name, got %s",
			    json_is_string(e) ? "\"\"" : type_name(e));
			continue;
		}
		s = json_string_value(e);
		if ((m = fallback_model(c, LOAD(c)->cfg, r->index, q,
		    s)) == NULL)
			continue;
		for (j = 0; j < r->nfallbacks; j++)
			if (strcmp(r->fallbacks[j], m) == 0)
				break;
		if (j < r->nfallbacks) {
			if (strcmp(m, s) == 0)
				fail(c, q, "duplicate fallback \"%s\"", s);
			else
				fail(c, q, "duplicate fallback \"%s\" (route "
				    "\"%s\" stands for its model \"%s\")", m,
				    s, m);
			continue;
		}
		r->fallbacks[r->nfallbacks++] = sy_xstrdup(m);
	}
	return 0;
}

/*
 * A route's keys in three passes: name and models of every route first
 * (0), then what is checked against all of them (1), then fallbacks (2),
 * which may name any route's model.
 */
/* A route's limits while Redis is away: the tenancy's, open or closed. */
static const char *const limits_fail_words[] = {
	"inherit", "open", "closed", NULL
};

static const struct sy_conf_row route_rows[] = {
	{ .name = "name", .type = SY_CONF_CUSTOM, .required = 1,
	  .parse = route_name, .doc = "unique name in logs and metrics" },
	{ .name = "models", .type = SY_CONF_ARRAY, .required = 1,
	  .what = "model (or \"*\")", .parse = route_models,
	  .doc = "served model names; [\"*\"]: a wildcard route" },
	{ .name = "aliases", .type = SY_CONF_OBJECT, .pass = 1,
	  .parse = route_aliases, .doc = "names clients may send" },
	{ .name = "backends", .type = SY_CONF_ARRAY, .pass = 1, .always = 1,
	  .what = "backend", .parse = route_backends,
	  .doc = "backend names; default: every one serving a model" },
	{ .name = "policy", .type = SY_CONF_CUSTOM, .pass = 1, .always = 1,
	  .def.s = "round_robin", .parse = route_policy,
	  .doc = "routing policy: a name or {\"name\", parameters}" },
	{ .name = "selection", .type = SY_CONF_CUSTOM, .pass = 1,
	  .always = 1, .def.s = "alias", .parse = route_selection,
	  .doc = "model-selection policy, as policy" },
	{ .name = "retries", .type = SY_CONF_OBJECT, .pass = 1,
	  .offset = AT(sy_route, retry), .table = &sy_retry_table,
	  .doc = "trying a failed request again elsewhere" },
	{ .name = "ejection", .type = SY_CONF_OBJECT, .pass = 1,
	  .offset = AT(sy_route, ejection), .table = &sy_ejection_table,
	  .doc = "passive outlier ejection" },
	{ .name = "queue", .type = SY_CONF_OBJECT, .pass = 1,
	  .offset = AT(sy_route, queue), .table = &sy_queue_table,
	  .doc = "waiting when every endpoint is full" },
	{ .name = "fallbacks", .type = SY_CONF_CUSTOM, .pass = 2,
	  .parse = route_fallbacks,
	  .doc = "models of other routes tried in order" },
	{ .name = "deadline_ms", .type = SY_CONF_MS, .pass = 1,
	  .offset = AT(sy_route, deadline_ms), .min = 1, .max = DAY_MS,
	  .doc = "the whole request; default: timeouts.total_ms" },
	{ .name = "batch", .type = SY_CONF_OBJECT, .pass = 1,
	  .parse = route_batch, .doc = "gateway-level batching" },
	{ .name = "cache", .type = SY_CONF_OBJECT, .pass = 1,
	  .offset = AT(sy_route, cache), .table = &sy_route_cache_table,
	  .doc = "the prompt cache of the route" },
	{ .name = "rate_limits", .type = SY_CONF_ARRAY, .pass = 1,
	  .offset = AT(sy_route, rate_limits), .what = "limit",
	  .parse = sy_conf_rate_limits,
	  .doc = "the route's limits, every key's requests together" },
	{ .name = "limits_fail", .type = SY_CONF_WORD, .pass = 1,
	  .offset = AT(sy_route, limits_fail), .words = limits_fail_words,
	  .doc = "Redis away: the tenancy's fail, or open, or closed" },
	{ .name = NULL }
};

static const struct sy_conf_table route_table = {
	.path = "routes[]",
	.rows = route_rows,
	.size = sizeof(struct sy_route)
};

/* Reads the routes array (at path), pass by pass over every route. */
static int
load_routes(struct sy_conf *c, const struct sy_conf_row *row,
    const json_t *arr, const char *path, void *base)
{
	struct sy_config *cfg = base;
	struct sy_route *r;
	const json_t *o;
	char p[PATHLEN];
	unsigned pass;
	size_t i, j;

	cfg->nroutes = json_array_size(arr);
	cfg->routes = sy_xcalloc(cfg->nroutes, sizeof *cfg->routes);
	for (pass = 0; pass < 3; pass++) {
		json_array_foreach(arr, i, o) {
			r = &cfg->routes[i];
			path_index(p, path, i);
			if (pass == 0) {
				r->cfg = cfg;
				r->index = i;
				atomic_init(&r->budget_start_us, 0);
				atomic_init(&r->requests, 0);
				atomic_init(&r->retries, 0);
				if (!json_is_object(o))
					fail(c, p, "expected an object, got %s",
					    type_name(o));
			}
			if (!json_is_object(o))
				continue;
			if (pass == 0)
				sy_conf_read(c, &route_table, o, p, r);
			else
				sy_conf_read_more(c, &route_table, o, p, r,
				    pass);
			if (pass != 1)
				continue;
			if (r->deadline_ms == 0)
				r->deadline_ms = cfg->timeouts.total_ms;
			for (j = 0; j < r->nmodels; j++)
				json_object_set_new(cfg->model_index,
				    r->models[j], json_integer((json_int_t)i));
			for (j = 0; j < r->naliases; j++)
				json_object_set_new(cfg->model_index,
				    r->aliases[j].from,
				    json_integer((json_int_t)i));
		}
	}
	return 0;
}

/* ==== Prices and models ==== */

/*
 * Whether member model of a per-model table (at path) names a served model
 * (not an alias) and holds an object; reports why not.  what and verb
 * word the messages ("a price", "price").
 */
static int
served_model_entry(struct sy_conf *c, const struct sy_config *cfg,
    const char *path, const char *model, const json_t *v, const char *what,
    const char *verb)
{
	const json_t *owner;

	if (*model == '\0' || strcmp(model, "*") == 0) {
		fail(c, path, "%s is for one model: name it", what);
		return 0;
	}
	if ((owner = json_object_get(LOAD(c)->aliased, model)) != NULL) {
		fail(c, path, "\"%s\" is an alias in route \"%s\"; %s the "
		    "model it maps to", model, route_label(
		    &cfg->routes[json_integer_value(owner)]), verb);
		return 0;
	}
	if (cfg->nroutes != 0 && !LOAD(c)->wildcard &&
	    json_object_get(LOAD(c)->served, model) == NULL) {
		fail(c, path, "no route serves model \"%s\"", model);
		return 0;
	}
	if (!json_is_object(v)) {
		fail(c, path, "expected an object, got %s", type_name(v));
		return 0;
	}
	return 1;
}

/*
 * Reads a per-model table obj (at path): each member, named for a served
 * model, against t into an element of the array *arr (stride bytes, its
 * first member the model's name) that *n counts.  what and verb word the
 * messages ("a price", "price").
 */
static void
load_per_model(struct sy_conf *c, const json_t *obj, const char *path,
    const struct sy_conf_table *t, void **arr, size_t *n, size_t stride,
    const char *what, const char *verb)
{
	const json_t *v;
	const char *model;
	char p[PATHLEN], *e;
	size_t nerrs;

	*arr = sy_xcalloc(json_object_size(obj), stride);
	json_object_foreach((json_t *)obj, model, v) {
		path_key(p, path, model);
		if (!served_model_entry(c, LOAD(c)->cfg, p, model, v, what,
		    verb))
			continue;
		e = (char *)*arr + *n * stride;
		nerrs = sy_conf_nerrs(c);
		sy_conf_read(c, t, v, p, e);
		if (sy_conf_nerrs(c) != nerrs)
			continue;
		*(char **)(void *)e = sy_xstrdup(model);
		(*n)++;
	}
}

static int
load_prices(struct sy_conf *c, const struct sy_conf_row *row,
    const json_t *obj, const char *path, void *base)
{
	struct sy_config *cfg = base;

	load_per_model(c, obj, path, &sy_price_table, (void **)&cfg->prices,
	    &cfg->nprices, sizeof *cfg->prices, "a price", "price");
	return 0;
}

static int
load_models(struct sy_conf *c, const struct sy_conf_row *row,
    const json_t *obj, const char *path, void *base)
{
	struct sy_config *cfg = base;

	load_per_model(c, obj, path, &sy_model_info_table,
	    (void **)&cfg->models, &cfg->nmodels, sizeof *cfg->models,
	    "an entry", "describe");
	return 0;
}

/* ==== Snapshots ==== */

/* Frees cfg and all it holds; cfg may be partly built. */
static void
config_free(struct sy_config *cfg)
{
	struct sy_endpoint *ep;
	struct sy_route *r;
	size_t i, j;

	for (i = 0; i < cfg->nroutes; i++) {
		r = &cfg->routes[i];
		for (j = 0; j < r->npools; j++) {
			if (r->pools[j].policy_state != NULL &&
			    r->policy->destroy != NULL)
				r->policy->destroy(r->pools[j].policy_state);
			free(r->pools[j].endpoints);
		}
		free(r->pools);
		if (r->selection_state != NULL && r->selection->destroy != NULL)
			r->selection->destroy(r->selection_state);
		free(r->name);
		for (j = 0; j < r->nmodels; j++)
			free(r->models[j]);
		free(r->models);
		for (j = 0; j < r->naliases; j++) {
			free(r->aliases[j].from);
			free(r->aliases[j].to);
		}
		free(r->aliases);
		for (j = 0; j < r->nfallbacks; j++)
			free(r->fallbacks[j]);
		free(r->fallbacks);
		free(r->endpoints);
		json_decref(r->policy_params);
		json_decref(r->selection_params);
		if (r->batch.batcher != NULL)
			sy_batcher_free(r->batch.batcher);
		json_decref(r->batch.params);
		sy_quota_clear(&r->rate_limits);
		sy_conf_free(&route_table, r);
	}
	free(cfg->routes);
	for (i = 0; i < cfg->nendpoints; i++) {
		ep = &cfg->endpoints[i];
		free(ep->name);
		free(ep->url);
		free(ep->host);
		free(ep->base_path);
		if (ep->params != NULL) {
			sy_conf_free(ep->kind->params, ep->params);
			free(ep->params);
		}
		sy_conf_free(&backend_table, ep);
		if (ep->stats != NULL)
			sy_endstats_release(ep->stats);
	}
	free(cfg->endpoints);
	for (i = 0; i < cfg->nprices; i++)
		free(cfg->prices[i].model);
	free(cfg->prices);
	for (i = 0; i < cfg->nmodels; i++)
		free(cfg->models[i].model);
	free(cfg->models);
	sy_tenancy_clear(&cfg->tenancy);
	sy_tls_conf_clear(&cfg->tls);
	sy_conf_free(&root_table, cfg);
	free(cfg->path);
	json_decref(cfg->model_index);
	free(cfg);
}

/*
 * Reports a policy's create error err about its object at path: at the
 * parameter err starts with when it starts with a relative path ('.' or
 * '[' up to ": "), else at the object.
 */
static void
policy_fail(struct sy_conf *c, const char *path, const char *err)
{
	char p[PATHLEN];
	const char *colon;
	size_t n = strlen(path);

	if ((*err == '.' || *err == '[') && (colon = strstr(err, ": ")) !=
	    NULL && n + (size_t)(colon - err) < sizeof p) {
		memcpy(p, path, n);
		memcpy(p + n, err, (size_t)(colon - err));
		p[n + (size_t)(colon - err)] = '\0';
		fail(c, p, "%s", colon + 2);
	} else
		fail(c, path, "%s", err);
}

/* Takes the endpoints' stats and creates every policy state of a valid cfg. */
static void
config_start(struct sy_conf *c, struct sy_config *cfg)
{
	struct sy_route *r;
	char p[PATHLEN], q[PATHLEN], b[PATHLEN];
	char *err;
	size_t i, j;

	for (i = 0; i < cfg->nendpoints; i++)
		cfg->endpoints[i].stats = sy_endstats_acquire(
		    cfg->endpoints[i].name);
	for (i = 0; i < cfg->nroutes; i++) {
		r = &cfg->routes[i];
		path_index(p, "routes", i);
		for (j = 0; j < r->npools; j++) {
			err = NULL;
			r->pools[j].policy_state = r->policy->create(
			    r->policy_params, &r->pools[j], &err);
			if (err != NULL) {
				fail(c, path_key(q, p, "policy"), "%s", err);
				free(err);
				break;
			}
		}
		err = NULL;
		r->selection_state = r->selection->create(r->selection_params,
		    r, &err);
		if (err != NULL) {
			policy_fail(c, path_key(q, p, "selection"), err);
			free(err);
		}
		if (r->batch.policy != NULL &&
		    (r->batch.batcher = sy_batcher_new(r, &err)) == NULL) {
			fail(c, path_key(q, path_key(b, p, "batch"), "policy"),
			    "%s", err);
			free(err);
		}
	}
}

/* ==== The top level ==== */

/* The listeners' addresses: each valid, and the admin one of its own. */
static void
root_check(struct sy_conf *c, const json_t *root, const char *path,
    void *base)
{
	struct sy_config *cfg = base;
	struct sockaddr_storage lss, ass;
	socklen_t llen = 0, alen = 0;
	const char *why;
	char buf[256];

	if ((why = parse_address(cfg->listen, &lss, &llen, buf,
	    sizeof buf)) != NULL) {
		fail(c, "listen", "%s", why);
		llen = 0;
	}
	if (cfg->admin == NULL || sy_conf_failed(c, "admin"))
		return;
	if ((why = parse_address(cfg->admin, &ass, &alen, buf,
	    sizeof buf)) != NULL)
		fail(c, "admin", "%s", why);
	else if (llen != 0 && alen == llen && memcmp(&ass, &lss, llen) == 0)
		fail(c, "admin", "the admin listener needs an address of its "
		    "own; listen is %s too", cfg->listen);
}

/* "auth": whether requests need an API key. */
static const char *const auth_words[] = { "none", "keys", NULL };

/* The top level, read in order: backends, then routes, then prices. */
static const struct sy_conf_row root_rows[] = {
	{ .name = "listen", .type = SY_CONF_STRING,
	  .offset = AT(sy_config, listen), .def.s = "127.0.0.1:8080",
	  .doc = "address of the client listener, HOST:PORT" },
	{ .name = "tls", .type = SY_CONF_OBJECT,
	  .offset = AT(sy_config, tls), .table = &sy_tls_table,
	  .doc = "HTTPS on the client listener; absent: plain HTTP" },
	{ .name = "admin", .type = SY_CONF_STRING_OR_NULL,
	  .offset = AT(sy_config, admin), .def.s = "127.0.0.1:8081",
	  .what = "\"HOST:PORT\"",
	  .doc = "address of the admin listener; null: off" },
	{ .name = "admin_api", .type = SY_CONF_OBJECT,
	  .offset = AT(sy_config, admin_api), .table = &sy_admin_conf_table,
	  .doc = "who may use the admin API" },
	{ .name = "workers", .type = SY_CONF_UINT,
	  .offset = AT(sy_config, workers), .max = 256,
	  .doc = "worker threads; 0: one per core" },
	{ .name = "access_log", .type = SY_CONF_STRING,
	  .offset = AT(sy_config, access_log), .def.s = "stdout",
	  .doc = "\"stdout\", \"off\" or a file path" },
	{ .name = "access_log_flush_ms", .type = SY_CONF_MS,
	  .offset = AT(sy_config, access_log_flush_ms), .max = 60000,
	  .doc = "0: each line at once; else gathered, written within" },
	{ .name = "accounting_interval_ms", .type = SY_CONF_MS,
	  .offset = AT(sy_config, accounting_interval_ms), .def.u = 10000,
	  .min = 100, .max = 3600000,
	  .doc = "interval over which a self-hosted endpoint's cost is "
	  "spread" },
	{ .name = "timeouts", .type = SY_CONF_OBJECT,
	  .offset = AT(sy_config, timeouts), .table = &sy_timeouts_table,
	  .doc = "timeouts of clients and backends" },
	{ .name = "limits", .type = SY_CONF_OBJECT,
	  .offset = AT(sy_config, limits), .table = &sy_limits_table,
	  .doc = "limits of client requests" },
	{ .name = "backends", .type = SY_CONF_ARRAY, .required = 1,
	  .what = "backend", .parse = load_backends,
	  .doc = "the backend endpoints" },
	{ .name = "routes", .type = SY_CONF_ARRAY, .required = 1,
	  .what = "route", .parse = load_routes,
	  .doc = "which model names go to which backends" },
	{ .name = "prices", .type = SY_CONF_OBJECT, .parse = load_prices,
	  .doc = "price per served model" },
	{ .name = "models", .type = SY_CONF_OBJECT, .parse = load_models,
	  .doc = "what is known of each served model" },
	{ .name = "cache", .type = SY_CONF_OBJECT,
	  .offset = AT(sy_config, cache), .table = &sy_cache_table,
	  .doc = "the prompt cache's store" },
	{ .name = "redis", .type = SY_CONF_OBJECT,
	  .offset = AT(sy_config, redis), .table = &sy_redis_conf_table,
	  .doc = "the Redis of the cache, keys, limits and budgets" },
	{ .name = "auth", .type = SY_CONF_WORD,
	  .offset = AT(sy_config, tenancy.keys_required), .words = auth_words,
	  .doc = "\"keys\": every request needs an API key" },
	{ .name = "tenancy", .type = SY_CONF_OBJECT,
	  .offset = AT(sy_config, tenancy), .table = &sy_tenancy_table,
	  .doc = "how keys, limits and budgets are kept" },
	{ .name = "rate_limits", .type = SY_CONF_ARRAY,
	  .offset = AT(sy_config, tenancy.global), .what = "limit",
	  .parse = sy_conf_rate_limits,
	  .doc = "the gateway's limits, every request's" },
	{ .name = "teams", .type = SY_CONF_OBJECT,
	  .offset = AT(sy_config, tenancy), .parse = sy_conf_teams,
	  .doc = "teams by name, with their limits and budgets" },
	{ .name = "keys", .type = SY_CONF_ARRAY,
	  .offset = AT(sy_config, tenancy), .what = "key",
	  .parse = sy_conf_keys,
	  .doc = "API keys, as hashes" },
	{ .name = "cors", .type = SY_CONF_OBJECT,
	  .offset = AT(sy_config, cors), .table = &sy_cors_table,
	  .doc = "browser origins that may call the gateway; absent: none" },
	{ .name = "responses", .type = SY_CONF_OBJECT,
	  .offset = AT(sy_config, responses), .table = &sy_responses_table,
	  .doc = "how responses of /v1/responses are kept" },
	{ .name = NULL }
};

static const struct sy_conf_table root_table = {
	.path = "",
	.rows = root_rows,
	.size = sizeof(struct sy_config),
	.check = root_check
};

const struct sy_conf_table *const sy_conf_tables[] = {
	&root_table,
	&sy_admin_conf_table,
	&sy_redis_conf_table,
	&sy_tenancy_table,
	&sy_timeouts_table,
	&sy_limits_table,
	&backend_table,
	&tls_table,
	&sy_health_table,
	&sy_scrape_table,
	&route_table,
	&sy_retry_table,
	&sy_ejection_table,
	&sy_queue_table,
	&sy_batch_table,
	&sy_route_cache_table,
	&sy_price_table,
	&sy_model_info_table,
	&sy_cache_table,
	&sy_redis_table,
	&sy_cors_table,
	&sy_tls_table,
	&sy_responses_table,
	NULL
};

/* On the command line: the flag and value that path came from; caller frees. */
static char *
flag_of(const json_t *root, const char *path)
{
	static const struct {
		const char *key;
		const char *flag;
	} flags[] = {
		{ "listen", "--listen" },
		{ "admin", "--admin" },
		{ "access_log", "--access-log" }
	};
	const json_t *b, *v;
	size_t i;

	if (strncmp(path, "backends[", 9) == 0) {
		b = json_array_get(json_object_get(root, "backends"),
		    strtoul(path + 9, NULL, 10));
		return sy_xasprintf("--upstream %s",
		    json_string_value(json_object_get(b, "url")));
	}
	if (strcmp(path, "tls.cert_file") == 0 ||
	    strcmp(path, "tls.key_file") == 0) {
		v = json_object_get(json_object_get(root, "tls"), path + 4);
		return sy_xasprintf("%s %s", path[4] == 'c' ? "--tls-cert" :
		    "--tls-key", v != NULL ? json_string_value(v) :
		    "(not given)");
	}
	for (i = 0; i < sizeof flags / sizeof flags[0]; i++) {
		if (strcmp(path, flags[i].key) != 0)
			continue;
		if ((v = json_object_get(root, path)) == NULL)
			return sy_xasprintf("%s %s (the default)",
			    flags[i].flag,
			    sy_conf_row_find(&root_table, path)->def.s);
		return sy_xasprintf("%s %s", flags[i].flag,
		    json_string_value(v));
	}
	return sy_xstrdup(path);
}

/*
 * Builds a snapshot from root (NULL: c found no JSON) and ends load c:
 * returns 0 with the snapshot in *out, or -1 with *err (malloc'd) holding
 * c's errors.
 */
static int
config_build(struct sy_conf *c, const json_t *root, struct sy_config **out,
    char **err)
{
	struct sy_config *cfg = NULL;
	struct load l;

	memset(&l, 0, sizeof l);
	sy_conf_set_user(c, &l);
	if (root != NULL && !json_is_object(root))
		fail(c, "", "the top level must be an object, not %s",
		    type_name(root));
	else if (root != NULL) {
		cfg = l.cfg = sy_xcalloc(1, sizeof *cfg);
		atomic_init(&cfg->refs, 1);
		cfg->model_index = json_object();
		l.served = json_object();
		l.aliased = json_object();
		sy_conf_read(c, &root_table, root, "", cfg);
		if (sy_conf_nerrs(c) == 0)
			config_start(c, cfg);
	}
	json_decref(l.served);
	json_decref(l.aliased);
	*out = NULL;
	if ((*err = sy_conf_close(c)) != NULL) {
		if (cfg != NULL)
			config_free(cfg);
		return -1;
	}
	*out = cfg;
	return 0;
}

int
sy_config_load_string(const char *text, const char *name,
    struct sy_config **out, char **err)
{
	const json_t *root;
	struct sy_conf *c = sy_conf_open(text, name, &root);

	return config_build(c, root, out, err);
}

int
sy_config_load_file(const char *path, struct sy_config **out, char **err)
{
	char *text;
	int rc;

	*out = NULL;
	if ((text = sy_conf_read_file(path, err)) == NULL)
		return -1;
	if ((rc = sy_config_load_string(text, path, out, err)) == 0)
		(*out)->path = sy_xstrdup(path);
	free(text);
	return rc;
}

int
sy_config_from_upstreams(const char *const *urls, size_t nurls,
    const char *listen, const char *admin, const char *access_log,
    const char *tls_cert, const char *tls_key, struct sy_config **out,
    char **err)
{
	json_t *root, *backends, *b, *route, *tls;
	char name[32];
	size_t i;
	int rc;

	*out = NULL;
	if (nurls == 0) {
		*err = sy_xstrdup("--upstream: give at least one backend URL");
		return -1;
	}
	root = json_object();
	if (listen != NULL)
		json_object_set_new(root, "listen",
		    json_string_nocheck(listen));
	if (admin != NULL)
		json_object_set_new(root, "admin", json_string_nocheck(admin));
	if (access_log != NULL)
		json_object_set_new(root, "access_log",
		    json_string_nocheck(access_log));
	if (tls_cert != NULL || tls_key != NULL) {
		tls = json_object();
		if (tls_cert != NULL)
			json_object_set_new(tls, "cert_file",
			    json_string_nocheck(tls_cert));
		if (tls_key != NULL)
			json_object_set_new(tls, "key_file",
			    json_string_nocheck(tls_key));
		json_object_set_new(root, "tls", tls);
	}
	backends = json_array();
	for (i = 0; i < nurls; i++) {
		snprintf(name, sizeof name, "u%zu", i);
		b = json_object();
		json_object_set_new(b, "name", json_string(name));
		json_object_set_new(b, "url", json_string_nocheck(urls[i]));
		json_array_append_new(backends, b);
	}
	json_object_set_new(root, "backends", backends);
	route = json_pack("{s:s, s:[s]}", "name", "default", "models", "*");
	json_object_set_new(root, "routes", json_pack("[o]", route));
	rc = config_build(sy_conf_open_json(root, flag_of), root, out, err);
	json_decref(root);
	return rc;
}

struct sy_config *
sy_config_ref(struct sy_config *cfg)
{
	atomic_fetch_add_explicit(&cfg->refs, 1, memory_order_relaxed);
	return cfg;
}

void
sy_config_unref(struct sy_config *cfg)
{
	if (cfg == NULL)
		return;
	if (atomic_fetch_sub_explicit(&cfg->refs, 1,
	    memory_order_acq_rel) == 1)
		config_free(cfg);
}

/* ==== Lookups ==== */

struct sy_route *
sy_config_route(const struct sy_config *cfg, const char *model)
{
	const json_t *v = NULL;

	if (model != NULL)
		v = json_object_get(cfg->model_index, model);
	if (v == NULL)
		v = json_object_get(cfg->model_index, "*");
	if (v == NULL)
		return NULL;
	return &cfg->routes[json_integer_value(v)];
}

struct sy_pool *
sy_route_pool(const struct sy_route *route, const char *model)
{
	size_t i;

	if (route->wildcard)
		return &route->pools[0];
	if (model == NULL)
		return NULL;
	for (i = 0; i < route->npools; i++)
		if (strcmp(route->pools[i].model, model) == 0)
			return &route->pools[i];
	return NULL;
}

const struct sy_price *
sy_config_price(const struct sy_config *cfg, const char *model)
{
	size_t i;

	for (i = 0; i < cfg->nprices; i++)
		if (strcmp(cfg->prices[i].model, model) == 0)
			return &cfg->prices[i];
	return NULL;
}

unsigned
sy_config_context_length(const struct sy_config *cfg, const char *model)
{
	size_t i;

	for (i = 0; i < cfg->nmodels; i++)
		if (strcmp(cfg->models[i].model, model) == 0)
			return cfg->models[i].context_length;
	return 0;
}

json_t *
sy_config_model_names(const struct sy_config *cfg)
{
	const struct sy_route *r;
	json_t *names = json_array();
	size_t i, j;

	for (i = 0; i < cfg->nroutes; i++) {
		r = &cfg->routes[i];
		for (j = 0; j < r->nmodels && !r->wildcard; j++)
			json_array_append_new(names, json_string(r->models[j]));
		for (j = 0; j < r->naliases; j++)
			json_array_append_new(names,
			    json_string(r->aliases[j].from));
	}
	return names;
}

int
sy_config_parse_hostport(const char *s, struct sockaddr_storage *ss,
    socklen_t *len)
{
	char buf[256];

	return parse_address(s, ss, len, buf, sizeof buf) == NULL ? 0 : -1;
}
