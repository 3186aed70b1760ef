/* Unit tests of the configuration module: loading, defaults, errors with positions, pools, lookups, snapshots. */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "confrow.h"
#include "config.h"
#include "policy.h"
#include "req.h"
#include "sy_test.h"
#include "tenants.h"

/* A valid config in few lines; tests that need an error build their own. */
#define MINIMAL								\
	"{\n"								\
	"  \"backends\": [\n"						\
	"    {\"name\": \"sim0\", \"url\": \"http://127.0.0.1:9001/v1\"}\n" \
	"  ],\n"							\
	"  \"routes\": [\n"						\
	"    {\"name\": \"chat\", \"models\": [\"m\"]}\n"		\
	"  ]\n"								\
	"}\n"

/* Loads text as "t.json"; returns the snapshot, or NULL after printing why. */
static struct sy_config *
load(const char *text)
{
	struct sy_config *cfg;
	char *err;

	if (sy_config_load_string(text, "t.json", &cfg, &err) != 0) {
		printf("# unexpected error: %s\n", err);
		free(err);
		return NULL;
	}
	return cfg;
}

/* Loads text as "t.json" expecting an error; returns it (malloc'd) or NULL. */
static char *
load_error(const char *text)
{
	struct sy_config *cfg;
	char *err = NULL;

	if (sy_config_load_string(text, "t.json", &cfg, &err) == 0) {
		printf("# loaded, but an error was expected\n");
		sy_config_unref(cfg);
		return NULL;
	}
	if (cfg != NULL)
		printf("# a failed load left a snapshot\n");
	return err;
}

/* Checks that text fails to load with exactly the error want. */
static void
check_error(const char *text, const char *want)
{
	char *err = load_error(text);

	SY_CHECK_STR(err, want);
	free(err);
}

/* Checks that text fails to load with an error that starts with want. */
static void
check_error_prefix(const char *text, const char *want)
{
	char *err = load_error(text);

	SY_CHECK(err != NULL && strncmp(err, want, strlen(want)) == 0);
	if (err != NULL && strncmp(err, want, strlen(want)) != 0)
		printf("# got \"%s\"\n# expected a prefix \"%s\"\n", err, want);
	free(err);
}

/* The names of pool's endpoints, comma separated, into buf. */
static const char *
pool_names(const struct sy_pool *pool, char *buf, size_t len)
{
	size_t i, off = 0;

	buf[0] = '\0';
	for (i = 0; pool != NULL && i < pool->nendpoints && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%s",
		    i ? "," : "", pool->endpoints[i]->name);
	return buf;
}

/* ==== Loading ==== */

SY_TEST(default_config_file_loads)
{
	const char *src = getenv("SY_SRCDIR");
	struct sy_config *cfg = NULL;
	struct sy_route *chat;
	char path[4096], *err = NULL, buf[64];

	snprintf(path, sizeof path, "%s/conf/switchyard.json", src ? src : ".");
	SY_CHECK_INT(sy_config_load_file(path, &cfg, &err), 0);
	if (cfg == NULL) {
		printf("# %s\n", err);
		free(err);
		return;
	}
	SY_CHECK_STR(cfg->path, path);
	SY_CHECK_STR(cfg->listen, "127.0.0.1:8080");
	SY_CHECK_STR(cfg->admin, "127.0.0.1:8081");
	SY_CHECK_STR(cfg->access_log, "stdout");
	SY_CHECK_INT(cfg->nendpoints, 2);
	SY_CHECK_STR(cfg->endpoints[0].name, "sim0");
	SY_CHECK_INT(cfg->endpoints[0].port, 9001);
	SY_CHECK_STR(cfg->endpoints[1].name, "sim1");
	SY_CHECK_INT(cfg->endpoints[1].port, 9002);
	SY_CHECK_INT(cfg->nroutes, 1);
	chat = sy_config_route(cfg, "gpt-4o");
	SY_CHECK(chat == &cfg->routes[0]);
	SY_CHECK_STR(cfg->routes[0].name, "chat");
	SY_CHECK(sy_config_route(cfg, "gpt-4o-mini") == chat);
	SY_CHECK(sy_config_route(cfg, "llama-3-8b") == chat);
	SY_CHECK(sy_config_route(cfg, "qwen2-7b") == chat);
	SY_CHECK(sy_config_route(cfg, "mistral-7b") == NULL);
	SY_CHECK_STR(pool_names(sy_route_pool(chat, "llama-3-8b"), buf,
	    sizeof buf), "sim0,sim1");
	SY_CHECK_STR(pool_names(sy_route_pool(chat, "qwen2-7b"), buf,
	    sizeof buf), "sim0,sim1");
	SY_CHECK(sy_config_price(cfg, "llama-3-8b") != NULL);
	SY_CHECK(sy_config_price(cfg, "qwen2-7b") != NULL);
	sy_config_unref(cfg);
}

SY_TEST(default_config_aliases_map_to_served_models)
{
	const char *src = getenv("SY_SRCDIR");
	struct sy_config *cfg = NULL;
	const struct sy_route *r;
	char path[4096], *err = NULL;
	size_t i;
	int mini = 0, full = 0;

	snprintf(path, sizeof path, "%s/conf/switchyard.json", src ? src : ".");
	if (sy_config_load_file(path, &cfg, &err) != 0) {
		SY_CHECK_STR(err, "");
		free(err);
		return;
	}
	r = &cfg->routes[0];
	SY_CHECK_INT(r->naliases, 2);
	for (i = 0; i < r->naliases; i++) {
		if (strcmp(r->aliases[i].from, "gpt-4o-mini") == 0)
			mini = strcmp(r->aliases[i].to, "llama-3-8b") == 0;
		if (strcmp(r->aliases[i].from, "gpt-4o") == 0)
			full = strcmp(r->aliases[i].to, "qwen2-7b") == 0;
	}
	SY_CHECK(mini);
	SY_CHECK(full);
	sy_config_unref(cfg);
}

SY_TEST(example_config_is_valid_apart_from_name_resolution)
{
	const char *src = getenv("SY_SRCDIR");
	struct sy_config *cfg = NULL;
	char path[4096], *err = NULL, *line;

	snprintf(path, sizeof path, "%s/conf/examples/aliases.json",
	    src ? src : ".");
	setenv("OPENAI_API_KEY", "sk-example", 1);
	if (sy_config_load_file(path, &cfg, &err) == 0) {
		SY_CHECK_INT(cfg->nroutes, 2);
		SY_CHECK(cfg->routes[1].wildcard);
		SY_CHECK_INT(cfg->endpoints[2].port, 443);
		SY_CHECK_STR(cfg->endpoints[2].api_key, "sk-example");
		SY_CHECK_INT(cfg->endpoints[0].health.interval_ms, 2000);
		SY_CHECK_INT(cfg->endpoints[1].health.interval_ms, 0);
		SY_CHECK_INT(cfg->routes[0].retry.max, 1);
		sy_config_unref(cfg);
	} else {
		/* Offline, api.openai.com does not resolve: only that may fail. */
		for (line = strtok(err, "\n"); line != NULL;
		    line = strtok(NULL, "\n")) {
			SY_CHECK(strstr(line, ": backends[2].url: cannot "
			    "resolve \"api.openai.com\"") != NULL);
			printf("# %s\n", line);
		}
		free(err);
	}
	unsetenv("OPENAI_API_KEY");
}

SY_TEST(lab_example_config_is_valid)
{
	const char *src = getenv("SY_SRCDIR");
	struct sy_config *cfg = NULL;
	char path[4096], *err = NULL;

	snprintf(path, sizeof path, "%s/conf/examples/lab.json",
	    src ? src : ".");
	SY_CHECK_INT(sy_config_load_file(path, &cfg, &err), 0);
	if (cfg == NULL) {
		printf("# %s\n", err);
		free(err);
		return;
	}
	SY_CHECK_STR(cfg->routes[0].selection->name, "cascade");
	SY_CHECK(cfg->routes[1].batch.batcher != NULL);
	SY_CHECK_INT(cfg->routes[0].cache.enabled, 1);
	SY_CHECK_INT(cfg->cache.redis, 1);
	SY_CHECK_INT(cfg->access_log_flush_ms, 200);
	sy_config_unref(cfg);
}

SY_TEST(tenants_example_config_is_valid)
{
	const char *src = getenv("SY_SRCDIR");
	struct sy_config *cfg = NULL;
	unsigned char hash[SY_KEY_HASH_LEN];
	char path[4096], *err = NULL;

	snprintf(path, sizeof path, "%s/conf/examples/tenants.json",
	    src ? src : ".");
	SY_CHECK_INT(sy_config_load_file(path, &cfg, &err), 0);
	if (cfg == NULL) {
		printf("# %s\n", err);
		free(err);
		return;
	}
	SY_CHECK_INT(cfg->tenancy.keys_required, 1);
	SY_CHECK_INT((int)cfg->tenancy.nkeys, 2);
	SY_CHECK_INT((int)cfg->tenancy.nteams, 2);
	SY_CHECK_INT(cfg->redis.enabled, 1);
	/* The keys its comments give are the keys of its hashes. */
	sy_key_hash("sk-demo-research-4f9a1c", 23, hash);
	SY_CHECK(sy_tenancy_key(&cfg->tenancy, hash) != NULL &&
	    strcmp(sy_tenancy_key(&cfg->tenancy, hash)->id, "ada") == 0);
	sy_key_hash("sk-demo-sales-7b2e0d", 20, hash);
	SY_CHECK(sy_tenancy_key(&cfg->tenancy, hash) != NULL &&
	    strcmp(sy_tenancy_key(&cfg->tenancy, hash)->id, "sam") == 0);
	sy_config_unref(cfg);
}

SY_TEST(unreadable_file_reports_path_and_reason)
{
	struct sy_config *cfg;
	char *err = NULL;

	SY_CHECK_INT(sy_config_load_file("/nonexistent/sy.json", &cfg, &err),
	    -1);
	SY_CHECK(cfg == NULL);
	SY_CHECK_STR(err, "/nonexistent/sy.json: cannot read: No such file or "
	    "directory");
	free(err);
}

SY_TEST(file_errors_name_the_file)
{
	char path[] = "/tmp/sy-test-config-XXXXXX", want[128];
	struct sy_config *cfg;
	char *err = NULL;
	FILE *f;
	int fd;

	if ((fd = mkstemp(path)) == -1 || (f = fdopen(fd, "w")) == NULL) {
		SY_CHECK(0);
		return;
	}
	fputs("{\n  \"workers\": -1,\n  \"backends\": [{\"name\": \"a\", "
	    "\"url\": \"http://127.0.0.1:9001\"}],\n  \"routes\": "
	    "[{\"name\": \"r\", \"models\": [\"*\"]}]\n}\n", f);
	fclose(f);
	SY_CHECK_INT(sy_config_load_file(path, &cfg, &err), -1);
	snprintf(want, sizeof want, "%s:2:3: workers: must be from 0 to 256, "
	    "got -1", path);
	SY_CHECK_STR(err, want);
	free(err);
	unlink(path);
}

/* ==== Comments ==== */

SY_TEST(hash_and_slash_comments_are_ignored)
{
	struct sy_config *cfg = load(
	    "# a hash comment before everything\n"
	    "{\n"
	    "  // a slash comment\n"
	    "  \"workers\": 3, # after a value\n"
	    "  \"backends\": [ // after a bracket\n"
	    "    {\"name\": \"sim0\", \"url\": \"http://127.0.0.1:9001/v1\"}\n"
	    "  ],\n"
	    "  \"routes\": [{\"name\": \"chat\", \"models\": [\"m\"]}]\n"
	    "}\n"
	    "// and after everything");

	SY_CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	SY_CHECK_INT(cfg->workers, 3);
	sy_config_unref(cfg);
}

SY_TEST(comment_markers_inside_strings_are_kept)
{
	struct sy_config *cfg = load(
	    "{\n"
	    "  \"access_log\": \"/tmp/a#b//c \\\"q\\\" # d.log\",\n"
	    "  \"backends\": [\n"
	    "    {\"name\": \"sim0\", \"url\": \"http://127.0.0.1:9001/v1\"}\n"
	    "  ],\n"
	    "  \"routes\": [{\"name\": \"chat\", \"models\": [\"m#1//x\"]}]\n"
	    "}\n");

	SY_CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	SY_CHECK_STR(cfg->access_log, "/tmp/a#b//c \"q\" # d.log");
	SY_CHECK_STR(cfg->endpoints[0].url, "http://127.0.0.1:9001/v1");
	SY_CHECK_STR(cfg->routes[0].models[0], "m#1//x");
	sy_config_unref(cfg);
}

SY_TEST(comments_keep_error_positions)
{
	check_error(
	    "// día: a comment with a multi-byte character\n"
	    "{ # another\n"
	    "  // the next line is wrong\n"
	    "  \"wokers\": 3,\n"
	    "  \"backends\": [{\"name\": \"a\", \"url\": "
	    "\"http://127.0.0.1:9001\"}],\n"
	    "  \"routes\": [{\"name\": \"r\", \"models\": [\"*\"]}]\n"
	    "}\n",
	    "t.json:4:3: wokers: unknown key \"wokers\"; known: listen, "
	    "tls, admin, admin_api, workers, access_log, access_log_flush_ms, "
	    "accounting_interval_ms, timeouts, limits, "
	    "backends, routes, "
	    "prices, models, cache, redis, auth, tenancy, rate_limits, teams, "
	    "keys, cors, responses");
}

SY_TEST(cors_is_off_by_default_and_needs_origins_when_given)
{
	struct sy_config *cfg = load(
	    "{\"backends\": [{\"name\": \"a\", \"url\": "
	    "\"http://127.0.0.1:9001\"}],\n"
	    " \"routes\": [{\"name\": \"r\", \"models\": [\"*\"]}]}");

	SY_CHECK(cfg != NULL && !cfg->cors.enabled);
	sy_config_unref(cfg);
	cfg = load(
	    "{\"cors\": {\"origins\": [\"https://a.example\"]},\n"
	    " \"backends\": [{\"name\": \"a\", \"url\": "
	    "\"http://127.0.0.1:9001\"}],\n"
	    " \"routes\": [{\"name\": \"r\", \"models\": [\"*\"]}]}");
	SY_CHECK(cfg != NULL && cfg->cors.enabled && cfg->cors.norigins == 1 &&
	    cfg->cors.max_age == 600);
	sy_config_unref(cfg);
	check_error(
	    "{\"cors\": {\"max_age\": 5},\n"
	    " \"backends\": [{\"name\": \"a\", \"url\": "
	    "\"http://127.0.0.1:9001\"}],\n"
	    " \"routes\": [{\"name\": \"r\", \"models\": [\"*\"]}]}",
	    "t.json:1:2: cors.origins: required key is missing");
}

SY_TEST(tls_is_off_by_default_and_needs_readable_files_when_given)
{
	struct sy_config *cfg = load(
	    "{\"backends\": [{\"name\": \"a\", \"url\": "
	    "\"http://127.0.0.1:9001\"}],\n"
	    " \"routes\": [{\"name\": \"r\", \"models\": [\"*\"]}]}");

	SY_CHECK(cfg != NULL && !cfg->tls.enabled && cfg->tls.ctx == NULL);
	sy_config_unref(cfg);
	check_error(
	    "{\"tls\": {\"min_version\": \"1.3\"},\n"
	    " \"backends\": [{\"name\": \"a\", \"url\": "
	    "\"http://127.0.0.1:9001\"}],\n"
	    " \"routes\": [{\"name\": \"r\", \"models\": [\"*\"]}]}",
	    "t.json:1:2: tls.cert_file: required key is missing\n"
	    "t.json:1:2: tls.key_file: required key is missing");
	check_error(
	    "{\"tls\": {\"cert_file\": \"/nonexistent/c.pem\",\n"
	    "  \"key_file\": \"/nonexistent/k.pem\", \"min_version\": \"1.1\"},\n"
	    " \"backends\": [{\"name\": \"a\", \"url\": "
	    "\"http://127.0.0.1:9001\"}],\n"
	    " \"routes\": [{\"name\": \"r\", \"models\": [\"*\"]}]}",
	    "t.json:1:10: tls.cert_file: /nonexistent/c.pem: cannot read: No "
	    "such file or directory\n"
	    "t.json:2:3: tls.key_file: /nonexistent/k.pem: cannot read: No "
	    "such file or directory\n"
	    "t.json:2:37: tls.min_version: unknown TLS version \"1.1\"; known: "
	    "1.2, 1.3");
}

SY_TEST(upstream_mode_tls_flags_name_the_flag)
{
	const char *urls[] = { "http://127.0.0.1:9001/v1" };
	struct sy_config *cfg;
	char *err = NULL;

	SY_CHECK_INT(sy_config_from_upstreams(urls, 1, NULL, NULL, NULL,
	    "/nonexistent/c.pem", "/nonexistent/k.pem", &cfg, &err), -1);
	SY_CHECK_STR(err, "--tls-cert /nonexistent/c.pem: /nonexistent/c.pem: "
	    "cannot read: No such file or directory\n"
	    "--tls-key /nonexistent/k.pem: /nonexistent/k.pem: cannot read: No "
	    "such file or directory");
	free(err);
}

SY_TEST(access_log_flush_ms_is_read_and_bounded)
{
	struct sy_config *cfg = load(
	    "{\"access_log_flush_ms\": 250,\n"
	    " \"backends\": [{\"name\": \"a\", \"url\": "
	    "\"http://127.0.0.1:9001\"}],\n"
	    " \"routes\": [{\"name\": \"r\", \"models\": [\"*\"]}]}");

	SY_CHECK(cfg != NULL && cfg->access_log_flush_ms == 250);
	sy_config_unref(cfg);
	check_error(
	    "{\"access_log_flush_ms\": 60001,\n"
	    " \"backends\": [{\"name\": \"a\", \"url\": "
	    "\"http://127.0.0.1:9001\"}],\n"
	    " \"routes\": [{\"name\": \"r\", \"models\": [\"*\"]}]}",
	    "t.json:1:2: access_log_flush_ms: must be from 0 to 60000, got "
	    "60001");
}

SY_TEST(positions_count_characters_not_bytes)
{
	check_error(
	    "{\"access_log\": \"é\", \"x\": 1,\n"
	    " \"backends\": [{\"name\": \"a\", \"url\": "
	    "\"http://127.0.0.1:9001\"}],\n"
	    " \"routes\": [{\"name\": \"r\", \"models\": [\"*\"]}]}",
	    "t.json:1:21: x: unknown key \"x\"; known: listen, tls, "
	    "admin, admin_api, workers, access_log, access_log_flush_ms, "
	    "accounting_interval_ms, timeouts, limits, "
	    "backends, routes, prices, models, "
	    "cache, redis, auth, tenancy, rate_limits, teams, keys, cors, "
	    "responses");
}

/* ==== Defaults ==== */

SY_TEST(omitted_keys_take_their_defaults)
{
	struct sy_config *cfg = load(MINIMAL);
	const struct sy_endpoint *ep;
	const struct sy_route *r;

	SY_CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	SY_CHECK(cfg->path == NULL);
	SY_CHECK_STR(cfg->listen, "127.0.0.1:8080");
	SY_CHECK_STR(cfg->admin, "127.0.0.1:8081");
	SY_CHECK_INT(cfg->workers, 0);
	SY_CHECK_STR(cfg->access_log, "stdout");
	SY_CHECK_INT(cfg->timeouts.connect_ms, 5000);
	SY_CHECK_INT(cfg->timeouts.first_byte_ms, 300000);
	SY_CHECK_INT(cfg->timeouts.idle_ms, 60000);
	SY_CHECK_INT(cfg->timeouts.total_ms, 600000);
	SY_CHECK_INT(cfg->timeouts.drain_ms, 30000);
	SY_CHECK_INT(cfg->timeouts.client_header_ms, 30000);
	SY_CHECK_INT(cfg->timeouts.client_body_ms, 120000);
	SY_CHECK_INT(cfg->timeouts.keepalive_ms, 75000);
	SY_CHECK_INT(cfg->limits.max_body_bytes, 8388608);
	SY_CHECK_INT(cfg->limits.max_json_depth, 64);
	SY_CHECK_INT(cfg->limits.max_connections, 4096);
	ep = &cfg->endpoints[0];
	SY_CHECK(ep->kind == sy_backend_kind_find("openai"));
	SY_CHECK_INT(ep->nmodels, 0);
	SY_CHECK_INT(ep->weight, 1);
	SY_CHECK_INT(ep->max_concurrency, 0);
	SY_CHECK(ep->api_key_env == NULL);
	SY_CHECK(ep->api_key == NULL);
	SY_CHECK(ep->ca_file == NULL);
	SY_CHECK_INT(ep->tls_verify, 1);
	SY_CHECK_INT(ep->tls, 0);
	r = &cfg->routes[0];
	SY_CHECK(r->policy == sy_route_policy_find("round_robin"));
	SY_CHECK(r->selection == sy_select_policy_find("alias"));
	SY_CHECK(json_is_object(r->policy_params) &&
	    json_object_size(r->policy_params) == 0);
	SY_CHECK(json_is_object(r->selection_params) &&
	    json_object_size(r->selection_params) == 0);
	SY_CHECK_INT(r->naliases, 0);
	SY_CHECK_INT(r->nendpoints, 1);
	SY_CHECK_INT(cfg->nprices, 0);
	sy_config_unref(cfg);
}

SY_TEST(every_setting_is_read)
{
	struct sy_config *cfg = load(
	    "{\n"
	    "  \"listen\": \"127.0.0.1:9090\", \"admin\": \"127.0.0.1:9091\",\n"
	    "  \"workers\": 256, \"access_log\": \"off\",\n"
	    "  \"timeouts\": {\"connect_ms\": 1, \"first_byte_ms\": 2,\n"
	    "    \"idle_ms\": 3, \"total_ms\": 4, \"drain_ms\": 0,\n"
	    "    \"client_header_ms\": 5, \"client_body_ms\": 6, \"keepalive_ms\": 7},\n"
	    "  \"limits\": {\"max_body_bytes\": 1024, \"max_json_depth\": 8,\n"
	    "    \"max_connections\": 10},\n"
	    "  \"backends\": [{\"name\": \"a.b_c-1\", \"url\": "
	    "\"http://127.0.0.1:9001/v1\",\n"
	    "    \"kind\": \"openai\", \"models\": [\"m\"], \"weight\": 0,\n"
	    "    \"max_concurrency\": 7}],\n"
	    "  \"routes\": [{\"name\": \"chat\", \"models\": [\"m\"],\n"
	    "    \"policy\": {\"name\": \"round_robin\"}, \"selection\": "
	    "\"alias\"}]\n"
	    "}\n");

	SY_CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	SY_CHECK_STR(cfg->listen, "127.0.0.1:9090");
	SY_CHECK_STR(cfg->admin, "127.0.0.1:9091");
	SY_CHECK_INT(cfg->workers, 256);
	SY_CHECK_STR(cfg->access_log, "off");
	SY_CHECK_INT(cfg->timeouts.connect_ms, 1);
	SY_CHECK_INT(cfg->timeouts.first_byte_ms, 2);
	SY_CHECK_INT(cfg->timeouts.idle_ms, 3);
	SY_CHECK_INT(cfg->timeouts.total_ms, 4);
	SY_CHECK_INT(cfg->timeouts.drain_ms, 0);
	SY_CHECK_INT(cfg->timeouts.client_header_ms, 5);
	SY_CHECK_INT(cfg->timeouts.client_body_ms, 6);
	SY_CHECK_INT(cfg->timeouts.keepalive_ms, 7);
	SY_CHECK_INT(cfg->limits.max_body_bytes, 1024);
	SY_CHECK_INT(cfg->limits.max_json_depth, 8);
	SY_CHECK_INT(cfg->limits.max_connections, 10);
	SY_CHECK_STR(cfg->endpoints[0].name, "a.b_c-1");
	SY_CHECK_INT(cfg->endpoints[0].nmodels, 1);
	SY_CHECK_INT(cfg->endpoints[0].weight, 0);
	SY_CHECK_INT(cfg->endpoints[0].max_concurrency, 7);
	SY_CHECK(cfg->routes[0].policy == sy_route_policy_find("round_robin"));
	SY_CHECK_INT(json_object_size(cfg->routes[0].policy_params), 0);
	sy_config_unref(cfg);
}

SY_TEST(admin_null_disables_the_admin_listener)
{
	struct sy_config *cfg = load(
	    "{\"admin\": null, \"backends\": [{\"name\": \"a\", \"url\": "
	    "\"http://127.0.0.1:9001\"}], \"routes\": [{\"name\": \"r\", "
	    "\"models\": [\"*\"]}]}");

	SY_CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	SY_CHECK(cfg->admin == NULL);
	sy_config_unref(cfg);
}

/* ==== Syntax and structure errors ==== */

SY_TEST(syntax_error_reports_jansson_position)
{
	check_error(
	    "{\n"
	    "  \"listen\": \"127.0.0.1:8080\",\n"
	    "  \"workers\": 1,,\n"
	    "}\n",
	    "t.json:3:16: string or '}' expected near ','");
}

SY_TEST(duplicate_keys_are_rejected)
{
	check_error(
	    "{\n"
	    "  \"workers\": 1,\n"
	    "  \"workers\": 2\n"
	    "}\n",
	    "t.json:3:11: duplicate object key near '\"workers\"'");
}

SY_TEST(top_level_must_be_an_object)
{
	check_error("  [1]", "t.json:1:3: the top level must be an object, "
	    "not an array");
}

SY_TEST(missing_backends_is_reported_at_the_top_level)
{
	check_error(
	    "\n"
	    "  {\"routes\": [{\"name\": \"r\", \"models\": [\"*\"]}]}",
	    "t.json:2:3: backends: required key is missing; list at least "
	    "one backend");
}

SY_TEST(empty_backends_is_rejected)
{
	check_error(
	    "{\"backends\": [], \"routes\": [{\"name\": \"r\", \"models\": "
	    "[\"*\"]}]}",
	    "t.json:1:2: backends: must list at least one backend");
}

SY_TEST(missing_routes_is_rejected)
{
	check_error(
	    "{\"backends\": [{\"name\": \"a\", \"url\": "
	    "\"http://127.0.0.1:9001\"}]}",
	    "t.json:1:1: routes: required key is missing; list at least one "
	    "route");
}

SY_TEST(wrong_type_names_the_expected_type)
{
	check_error(
	    "{\n"
	    "  \"workers\": \"4\",\n"
	    "  \"backends\": [{\"name\": \"a\", \"url\": "
	    "\"http://127.0.0.1:9001\"}],\n"
	    "  \"routes\": [{\"name\": \"r\", \"models\": [\"*\"]}]\n"
	    "}\n",
	    "t.json:2:3: workers: expected an integer, got a string");
}

SY_TEST(integer_out_of_range_is_rejected)
{
	check_error(
	    "{\n"
	    "  \"workers\": 257,\n"
	    "  \"backends\": [{\"name\": \"a\", \"url\": "
	    "\"http://127.0.0.1:9001\"}],\n"
	    "  \"routes\": [{\"name\": \"r\", \"models\": [\"*\"]}]\n"
	    "}\n",
	    "t.json:2:3: workers: must be from 0 to 256, got 257");
}

SY_TEST(zero_timeout_is_rejected)
{
	check_error_prefix(
	    "{\"timeouts\": {\"idle_ms\": 0}, \"backends\": [{\"name\": \"a\", "
	    "\"url\": \"http://127.0.0.1:9001\"}], \"routes\": [{\"name\": "
	    "\"r\", \"models\": [\"*\"]}]}",
	    "t.json:1:15: timeouts.idle_ms: must be from 1 to 86400000, got 0");
}

SY_TEST(unknown_keys_are_rejected_at_every_level)
{
	check_error(
	    "{\n"
	    "  \"extra\": true,\n"
	    "  \"timeouts\": {\"connect\": 1},\n"
	    "  \"limits\": {\"max_body\": 1},\n"
	    "  \"backends\": [{\"name\": \"a\", \"url\": "
	    "\"https://127.0.0.1:9443/v1\", \"modles\": [],\n"
	    "                \"tls\": {\"verfy\": true}}],\n"
	    "  \"routes\": [{\"name\": \"r\", \"models\": [\"m\"], \"polcy\": "
	    "\"x\"}],\n"
	    "  \"prices\": {\"m\": {\"input\": 1, \"output\": 2, \"cache\": 3}}\n"
	    "}\n",
	    "t.json:2:3: extra: unknown key \"extra\"; known: listen, tls, "
	    "admin, admin_api, workers, access_log, access_log_flush_ms, "
	    "accounting_interval_ms, timeouts, limits, "
	    "backends, routes, prices, models, "
	    "cache, redis, auth, tenancy, rate_limits, teams, keys, cors, responses\n"
	    "t.json:3:16: timeouts.connect: unknown key \"connect\"; known: "
	    "connect_ms, first_byte_ms, idle_ms, total_ms, drain_ms, "
	    "client_header_ms, client_body_ms, keepalive_ms\n"
	    "t.json:4:14: limits.max_body: unknown key \"max_body\"; known: "
	    "max_body_bytes, max_inflate_ratio, max_json_depth, max_connections, max_connections_per_peer, max_buffered_bytes\n"
	    "t.json:5:66: backends[0].modles: unknown key \"modles\"; known: "
	    "name, url, kind, models, weight, max_concurrency, cache_tokens, tokenize, "
	    "cost_per_hour, gpus, power_watts, idle_power_share, "
	    "prompt_weight, completion_weight, cached_weight, api_key_env, "
	    "forward_headers, forward_client_key, "
	    "api_version, tls, health, metrics\n"
	    "t.json:6:25: backends[0].tls.verfy: unknown key \"verfy\"; known: "
	    "ca_file, verify\n"
	    "t.json:7:45: routes[0].polcy: unknown key \"polcy\"; known: name, "
	    "models, aliases, backends, policy, selection, retries, ejection, "
	    "queue, fallbacks, deadline_ms, batch, cache, rate_limits, "
	    "limits_fail\n"
	    "t.json:8:45: prices.m.cache: unknown key \"cache\"; known: input, "
	    "output, cached_input, hourly_usd, power_watts, idle_power_share, "
	    "prompt_weight, completion_weight, cached_weight");
}

SY_TEST(several_errors_are_reported_in_file_order)
{
	check_error(
	    "{\n"
	    "  \"routes\": [{\"name\": \"r\", \"models\": [\"m\"],\n"
	    "              \"backends\": [\"nope\"]}],\n"
	    "  \"workers\": -5,\n"
	    "  \"backends\": [{\"name\": \"a b\", \"url\": "
	    "\"http://127.0.0.1:9001\"}]\n"
	    "}\n",
	    "t.json:3:28: routes[0].backends[0]: unknown backend \"nope\"; "
	    "known: a b\n"
	    "t.json:4:3: workers: must be from 0 to 256, got -5\n"
	    "t.json:5:17: backends[0].name: invalid name \"a b\": use letters, "
	    "digits, '_', '.' and '-'");
}

/* ==== Listen and admin ==== */

SY_TEST(listen_without_port_is_rejected)
{
	check_error(
	    "{\"listen\": \"localhost\", \"backends\": [{\"name\": \"a\", "
	    "\"url\": \"http://127.0.0.1:9001\"}], \"routes\": [{\"name\": "
	    "\"r\", \"models\": [\"*\"]}]}",
	    "t.json:1:2: listen: expected HOST:PORT or [IPv6]:PORT");
}

SY_TEST(listen_accepts_ipv6_in_brackets)
{
	struct sy_config *cfg = load(
	    "{\"listen\": \"[::1]:8080\", \"backends\": [{\"name\": \"a\", "
	    "\"url\": \"http://127.0.0.1:9001\"}], \"routes\": [{\"name\": "
	    "\"r\", \"models\": [\"*\"]}]}");
	struct sockaddr_storage ss;
	socklen_t len;

	SY_CHECK(cfg != NULL);
	sy_config_unref(cfg);
	SY_CHECK_INT(sy_config_parse_hostport("[::1]:8080", &ss, &len), 0);
	SY_CHECK_INT(ss.ss_family, AF_INET6);
	SY_CHECK_INT(ntohs(((struct sockaddr_in6 *)&ss)->sin6_port), 8080);
}

SY_TEST(parse_hostport_rejects_malformed_addresses)
{
	struct sockaddr_storage ss;
	socklen_t len;

	SY_CHECK_INT(sy_config_parse_hostport("127.0.0.1:8080", &ss, &len), 0);
	SY_CHECK_INT(ss.ss_family, AF_INET);
	SY_CHECK_INT(sy_config_parse_hostport("127.0.0.1", &ss, &len), -1);
	SY_CHECK_INT(sy_config_parse_hostport("::1:8080", &ss, &len), -1);
	SY_CHECK_INT(sy_config_parse_hostport("[::1:8080", &ss, &len), -1);
	SY_CHECK_INT(sy_config_parse_hostport("127.0.0.1:0", &ss, &len), -1);
	SY_CHECK_INT(sy_config_parse_hostport("127.0.0.1:65536", &ss, &len),
	    -1);
	SY_CHECK_INT(sy_config_parse_hostport(":8080", &ss, &len), -1);
}

SY_TEST(admin_must_not_share_the_listen_address)
{
	check_error(
	    "{\"listen\": \"127.0.0.1:9000\", \"admin\": \"127.0.0.1:9000\",\n"
	    " \"backends\": [{\"name\": \"a\", \"url\": "
	    "\"http://127.0.0.1:9001\"}], \"routes\": [{\"name\": \"r\", "
	    "\"models\": [\"*\"]}]}",
	    "t.json:1:30: admin: the admin listener needs an address of its "
	    "own; listen is 127.0.0.1:9000 too");
}

/* ==== Backends ==== */

/* A config whose one backend is the text backend (on line 3, column 5). */
#define WITH_BACKEND(backend)						\
	"{\n"								\
	"  \"backends\": [\n"						\
	"    " backend "\n"						\
	"  ],\n"							\
	"  \"routes\": [{\"name\": \"r\", \"models\": [\"*\"]}]\n"	\
	"}\n"

SY_TEST(backend_without_name_is_reported_at_the_backend)
{
	check_error(WITH_BACKEND("{\"url\": \"http://127.0.0.1:9001\"}"),
	    "t.json:3:5: backends[0].name: required key is missing");
}

SY_TEST(duplicate_backend_names_are_rejected)
{
	check_error(WITH_BACKEND(
	    "{\"name\": \"a\", \"url\": \"http://127.0.0.1:9001\"},\n"
	    "    {\"name\": \"a\", \"url\": \"http://127.0.0.1:9002\"}"),
	    "t.json:4:6: backends[1].name: duplicate backend name \"a\" (also "
	    "backends[0])");
}

SY_TEST(url_with_unsupported_scheme_is_rejected)
{
	check_error(WITH_BACKEND(
	    "{\"name\": \"a\", \"url\": \"ftp://127.0.0.1/v1\"}"),
	    "t.json:3:19: backends[0].url: unsupported scheme \"ftp\"; use "
	    "http or https");
}

SY_TEST(url_without_scheme_is_rejected)
{
	check_error(WITH_BACKEND(
	    "{\"name\": \"a\", \"url\": \"127.0.0.1:9001/v1\"}"),
	    "t.json:3:19: backends[0].url: expected an http:// or https:// "
	    "URL");
}

SY_TEST(url_with_user_info_is_rejected)
{
	check_error_prefix(WITH_BACKEND(
	    "{\"name\": \"a\", \"url\": \"http://me:pw@127.0.0.1/v1\"}"),
	    "t.json:3:19: backends[0].url: user info (user@host) is not "
	    "allowed in the URL");
}

SY_TEST(url_with_query_or_fragment_is_rejected)
{
	check_error(WITH_BACKEND(
	    "{\"name\": \"a\", \"url\": \"http://127.0.0.1/v1?x=1\"}"),
	    "t.json:3:19: backends[0].url: a base URL has no query or "
	    "fragment");
	check_error(WITH_BACKEND(
	    "{\"name\": \"a\", \"url\": \"http://127.0.0.1/v1#top\"}"),
	    "t.json:3:19: backends[0].url: a base URL has no query or "
	    "fragment");
}

SY_TEST(url_with_empty_host_is_rejected)
{
	check_error(WITH_BACKEND("{\"name\": \"a\", \"url\": \"http:///v1\"}"),
	    "t.json:3:19: backends[0].url: the host is empty");
}

SY_TEST(url_with_bad_port_is_rejected)
{
	check_error(WITH_BACKEND(
	    "{\"name\": \"a\", \"url\": \"http://127.0.0.1:70000/v1\"}"),
	    "t.json:3:19: backends[0].url: the port must be from 1 to 65535");
	check_error(WITH_BACKEND(
	    "{\"name\": \"a\", \"url\": \"http://127.0.0.1:80a/v1\"}"),
	    "t.json:3:19: backends[0].url: the port must be a number");
}

SY_TEST(url_host_that_does_not_resolve_is_rejected)
{
	check_error_prefix(WITH_BACKEND(
	    "{\"name\": \"a\", \"url\": \"http://nonexistent.invalid:9001\"}"),
	    "t.json:3:19: backends[0].url: cannot resolve "
	    "\"nonexistent.invalid\": ");
}

SY_TEST(url_parts_are_split)
{
	struct sy_config *cfg = load(WITH_BACKEND(
	    "{\"name\": \"a\", \"url\": \"http://localhost:8000/api/v1//\"}"));
	const struct sy_endpoint *ep;

	SY_CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	ep = &cfg->endpoints[0];
	SY_CHECK_STR(ep->url, "http://localhost:8000/api/v1//");
	SY_CHECK_INT(ep->tls, 0);
	SY_CHECK_STR(ep->host, "localhost");
	SY_CHECK_INT(ep->port, 8000);
	SY_CHECK_STR(ep->base_path, "/api/v1");
	SY_CHECK(ep->addrlen > 0);
	sy_config_unref(cfg);
}

SY_TEST(url_without_path_has_empty_base_path)
{
	struct sy_config *cfg = load(WITH_BACKEND(
	    "{\"name\": \"a\", \"url\": \"http://127.0.0.1\"}"));

	SY_CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	SY_CHECK_STR(cfg->endpoints[0].base_path, "");
	SY_CHECK_INT(cfg->endpoints[0].port, 80);
	sy_config_unref(cfg);
}

SY_TEST(https_url_defaults_to_port_443)
{
	struct sy_config *cfg = load(WITH_BACKEND(
	    "{\"name\": \"a\", \"url\": \"HTTPS://127.0.0.1/v1\"}"));

	SY_CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	SY_CHECK_INT(cfg->endpoints[0].tls, 1);
	SY_CHECK_INT(cfg->endpoints[0].port, 443);
	sy_config_unref(cfg);
}

SY_TEST(ipv6_url_host_is_kept_without_brackets)
{
	struct sy_config *cfg = load(WITH_BACKEND(
	    "{\"name\": \"a\", \"url\": \"http://[::1]:9001/v1\"}"));
	const struct sy_endpoint *ep;

	SY_CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	ep = &cfg->endpoints[0];
	SY_CHECK_STR(ep->host, "::1");
	SY_CHECK_INT(ep->port, 9001);
	SY_CHECK_STR(ep->base_path, "/v1");
	SY_CHECK_INT(ep->addr.ss_family, AF_INET6);
	SY_CHECK_INT(ntohs(((const struct sockaddr_in6 *)&ep->addr)->sin6_port),
	    9001);
	sy_config_unref(cfg);
}

SY_TEST(ipv6_url_needs_an_ipv6_literal_in_brackets)
{
	check_error(WITH_BACKEND(
	    "{\"name\": \"a\", \"url\": \"http://[nope]:9001/v1\"}"),
	    "t.json:3:19: backends[0].url: invalid IPv6 address \"nope\"");
	check_error(WITH_BACKEND(
	    "{\"name\": \"a\", \"url\": \"http://::1:9001/v1\"}"),
	    "t.json:3:19: backends[0].url: an IPv6 address must be in "
	    "brackets, as in [::1]:8080");
}

SY_TEST(unknown_backend_kind_lists_the_known_kinds)
{
	char names[256], want[512];

	sy_backend_kind_names(names, sizeof names);
	snprintf(want, sizeof want, "t.json:3:46: backends[0].kind: unknown "
	    "backend kind \"tgi2\"; known: %s", names);
	check_error(WITH_BACKEND(
	    "{\"name\": \"a\", \"url\": \"http://127.0.0.1\", \"kind\": "
	    "\"tgi2\"}"), want);
}

SY_TEST(backend_models_cannot_be_a_wildcard)
{
	check_error(WITH_BACKEND(
	    "{\"name\": \"a\", \"url\": \"http://127.0.0.1\", \"models\": "
	    "[\"*\"]}"),
	    "t.json:3:57: backends[0].models[0]: \"*\" is for routes; to "
	    "serve any model, leave \"models\" out");
}

SY_TEST(negative_weight_is_rejected)
{
	check_error(WITH_BACKEND(
	    "{\"name\": \"a\", \"url\": \"http://127.0.0.1\", \"weight\": -1}"),
	    "t.json:3:46: backends[0].weight: must be from 0 to 1000000, "
	    "got -1");
}

SY_TEST(api_key_in_the_file_is_rejected_with_a_hint)
{
	check_error(WITH_BACKEND(
	    "{\"name\": \"a\", \"url\": \"https://127.0.0.1\", \"api_key\": "
	    "\"sk-123\"}"),
	    "t.json:3:47: backends[0].api_key: an API key does not belong in "
	    "the config file; put it in an environment variable and name "
	    "that in \"api_key_env\"");
}

SY_TEST(api_key_env_reads_the_key_at_load)
{
	struct sy_config *cfg;

	setenv("SY_TEST_KEY", "sk-test-123", 1);
	cfg = load(WITH_BACKEND(
	    "{\"name\": \"a\", \"url\": \"https://127.0.0.1\", \"api_key_env\": "
	    "\"SY_TEST_KEY\"}"));
	unsetenv("SY_TEST_KEY");
	SY_CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	SY_CHECK_STR(cfg->endpoints[0].api_key_env, "SY_TEST_KEY");
	SY_CHECK_STR(cfg->endpoints[0].api_key, "sk-test-123");
	sy_config_unref(cfg);
}

SY_TEST(api_key_env_unset_is_rejected)
{
	unsetenv("SY_TEST_KEY_UNSET");
	check_error(WITH_BACKEND(
	    "{\"name\": \"a\", \"url\": \"https://127.0.0.1\", \"api_key_env\": "
	    "\"SY_TEST_KEY_UNSET\"}"),
	    "t.json:3:47: backends[0].api_key_env: environment variable "
	    "SY_TEST_KEY_UNSET is not set");
}

SY_TEST(api_key_env_empty_is_rejected)
{
	setenv("SY_TEST_KEY_EMPTY", "", 1);
	check_error(WITH_BACKEND(
	    "{\"name\": \"a\", \"url\": \"https://127.0.0.1\", \"api_key_env\": "
	    "\"SY_TEST_KEY_EMPTY\"}"),
	    "t.json:3:47: backends[0].api_key_env: environment variable "
	    "SY_TEST_KEY_EMPTY is empty");
	unsetenv("SY_TEST_KEY_EMPTY");
}

SY_TEST(api_version_is_read_for_azure)
{
	struct sy_config *cfg = load(WITH_BACKEND(
	    "{\"name\": \"a\", \"url\": \"https://127.0.0.1/openai/deployments/d\", "
	    "\"kind\": \"azure\", \"api_version\": \"2025-01-01\"}"));

	SY_CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	SY_CHECK_STR(cfg->endpoints[0].kind->name, "azure");
	SY_CHECK_STR(*(char *const *)sy_conf_field(cfg->endpoints[0].kind->params,
	    cfg->endpoints[0].params, "api_version"), "2025-01-01");
	sy_config_unref(cfg);
}

SY_TEST(api_version_is_refused_for_other_kinds)
{
	check_error(WITH_BACKEND(
	    "{\"name\": \"a\", \"url\": \"https://127.0.0.1\", \"api_version\": "
	    "\"x\"}"),
	    "t.json:3:47: backends[0].api_version: only the azure kind takes "
	    "an api_version");
}

SY_TEST(tls_settings_are_read_for_https)
{
	const char *src = getenv("SY_SRCDIR");
	char text[1024], ca[512];
	struct sy_config *cfg;

	snprintf(ca, sizeof ca, "%s/conf/switchyard.json", src ? src : ".");
	snprintf(text, sizeof text, WITH_BACKEND("{\"name\": \"a\", \"url\": "
	    "\"https://127.0.0.1\", \"tls\": {\"ca_file\": \"%s\", "
	    "\"verify\": false}}"), ca);
	cfg = load(text);
	SY_CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	SY_CHECK_STR(cfg->endpoints[0].ca_file, ca);
	SY_CHECK_INT(cfg->endpoints[0].tls_verify, 0);
	sy_config_unref(cfg);
}

SY_TEST(tls_settings_on_an_http_url_are_rejected)
{
	check_error(WITH_BACKEND(
	    "{\"name\": \"a\", \"url\": \"http://127.0.0.1\", \"tls\": "
	    "{\"verify\": false}}"),
	    "t.json:3:46: backends[0].tls: tls settings apply only to https "
	    "URLs");
}

SY_TEST(unreadable_ca_file_is_rejected)
{
	check_error(WITH_BACKEND(
	    "{\"name\": \"a\", \"url\": \"https://127.0.0.1\", \"tls\": "
	    "{\"ca_file\": \"/nonexistent/ca.pem\"}}"),
	    "t.json:3:55: backends[0].tls.ca_file: cannot read "
	    "\"/nonexistent/ca.pem\": No such file or directory");
}

/* ==== Routes ==== */

/* Two backends: a serves m1, b serves m1 and m2; then the routes. */
#define WITH_ROUTES(routes)						\
	"{\n"								\
	"  \"backends\": [\n"						\
	"    {\"name\": \"a\", \"url\": \"http://127.0.0.1:9001\", "	\
	"\"models\": [\"m1\"]},\n"					\
	"    {\"name\": \"b\", \"url\": \"http://127.0.0.1:9002\", "	\
	"\"models\": [\"m1\", \"m2\"]}\n"				\
	"  ],\n"							\
	"  \"routes\": [\n"						\
	"    " routes "\n"						\
	"  ]\n"								\
	"}\n"

SY_TEST(route_without_models_is_rejected)
{
	check_error(WITH_ROUTES("{\"name\": \"r\"}"),
	    "t.json:7:5: routes[0].models: required key is missing; list at "
	    "least one model (or \"*\")");
	check_error(WITH_ROUTES("{\"name\": \"r\", \"models\": []}"),
	    "t.json:7:19: routes[0].models: must list at least one model (or "
	    "\"*\")");
}

SY_TEST(duplicate_route_names_are_rejected)
{
	check_error(WITH_ROUTES(
	    "{\"name\": \"r\", \"models\": [\"m1\"]},\n"
	    "    {\"name\": \"r\", \"models\": [\"m2\"]}"),
	    "t.json:8:6: routes[1].name: duplicate route name \"r\" (also "
	    "routes[0])");
}

SY_TEST(wildcard_must_be_alone_in_its_route)
{
	check_error(WITH_ROUTES(
	    "{\"name\": \"r\", \"models\": [\"m1\", \"*\"]}"),
	    "t.json:7:36: routes[0].models[1]: \"*\" must be the only model "
	    "of a wildcard route");
}

SY_TEST(only_one_wildcard_route_is_allowed)
{
	check_error(WITH_ROUTES(
	    "{\"name\": \"r\", \"models\": [\"*\"]},\n"
	    "    {\"name\": \"s\", \"models\": [\"*\"]}"),
	    "t.json:8:30: routes[1].models[0]: only one route may be a "
	    "wildcard; routes[0] is one already");
}

SY_TEST(model_served_by_two_routes_is_rejected)
{
	check_error(WITH_ROUTES(
	    "{\"name\": \"r\", \"models\": [\"m1\"]},\n"
	    "    {\"name\": \"s\", \"models\": [\"m2\", \"m1\"]}"),
	    "t.json:8:36: routes[1].models[1]: model \"m1\" is already served "
	    "by route \"r\"");
}

SY_TEST(model_no_backend_serves_is_rejected)
{
	check_error(WITH_ROUTES(
	    "{\"name\": \"r\", \"models\": [\"m1\", \"m3\"]}"),
	    "t.json:7:36: routes[0].models[1]: no backend serves model \"m3\"");
}

SY_TEST(model_no_listed_backend_serves_is_rejected)
{
	check_error(WITH_ROUTES(
	    "{\"name\": \"r\", \"models\": [\"m1\", \"m2\"], \"backends\": "
	    "[\"a\"]}"),
	    "t.json:7:36: routes[0].models[1]: no backend of this route "
	    "serves model \"m2\"");
}

SY_TEST(route_backend_must_exist)
{
	check_error(WITH_ROUTES(
	    "{\"name\": \"r\", \"models\": [\"m1\"], \"backends\": [\"a\", "
	    "\"c\"]}"),
	    "t.json:7:55: routes[0].backends[1]: unknown backend \"c\"; known: "
	    "a, b");
}

SY_TEST(route_backend_listed_twice_is_rejected)
{
	check_error(WITH_ROUTES(
	    "{\"name\": \"r\", \"models\": [\"m1\"], \"backends\": [\"a\", "
	    "\"a\"]}"),
	    "t.json:7:55: routes[0].backends[1]: backend \"a\" is listed "
	    "twice");
}

SY_TEST(route_backend_serving_none_of_its_models_is_rejected)
{
	check_error(WITH_ROUTES(
	    "{\"name\": \"r\", \"models\": [\"m2\"], \"backends\": [\"b\", "
	    "\"a\"]}"),
	    "t.json:7:55: routes[0].backends[1]: backend \"a\" serves none of "
	    "this route's models");
}

SY_TEST(alias_equal_to_a_served_model_is_rejected)
{
	check_error(WITH_ROUTES(
	    "{\"name\": \"r\", \"models\": [\"m1\"]},\n"
	    "    {\"name\": \"s\", \"models\": [\"m2\"], \"aliases\": {\"m1\": "
	    "\"m2\"}}"),
	    "t.json:8:49: routes[1].aliases.m1: alias \"m1\" is a model served "
	    "by route \"r\"");
}

SY_TEST(alias_defined_by_two_routes_is_rejected)
{
	check_error(WITH_ROUTES(
	    "{\"name\": \"r\", \"models\": [\"m1\"], \"aliases\": {\"x\": "
	    "\"m1\"}},\n"
	    "    {\"name\": \"s\", \"models\": [\"m2\"], \"aliases\": {\"x\": "
	    "\"m2\"}}"),
	    "t.json:8:49: routes[1].aliases.x: alias \"x\" is already an alias "
	    "in route \"r\"");
}

SY_TEST(alias_target_must_be_a_model_of_the_route)
{
	check_error(WITH_ROUTES(
	    "{\"name\": \"r\", \"models\": [\"m1\"]},\n"
	    "    {\"name\": \"s\", \"models\": [\"m2\"], \"aliases\": {\"x\": "
	    "\"m1\"}}"),
	    "t.json:8:49: routes[1].aliases.x: \"m1\" is not a model of this "
	    "route");
}

SY_TEST(wildcard_route_cannot_have_aliases)
{
	check_error(WITH_ROUTES(
	    "{\"name\": \"r\", \"models\": [\"*\"], \"aliases\": {\"x\": "
	    "\"y\"}}"),
	    "t.json:7:36: routes[0].aliases: a wildcard route has no aliases: "
	    "it sends every model name on unchanged");
}

SY_TEST(alias_keys_that_need_quoting_get_a_quoted_path)
{
	check_error(WITH_ROUTES(
	    "{\"name\": \"r\", \"models\": [\"m1\"], \"aliases\": "
	    "{\"gpt-4.1\": \"m9\"}}"),
	    "t.json:7:49: routes[0].aliases[\"gpt-4.1\"]: \"m9\" is not a "
	    "model of this route");
}

SY_TEST(unknown_policy_lists_the_known_policies)
{
	char names[256], want[512];

	sy_route_policy_names(names, sizeof names);
	snprintf(want, sizeof want, "t.json:8:37: routes[1].policy: unknown "
	    "policy \"fastest\"; known: %s", names);
	check_error(WITH_ROUTES(
	    "{\"name\": \"r\", \"models\": [\"m1\"]},\n"
	    "    {\"name\": \"s\", \"models\": [\"m2\"], \"policy\": "
	    "\"fastest\"}"), want);
}

SY_TEST(unknown_policy_in_object_form_points_at_its_name)
{
	char names[256], want[512];

	sy_route_policy_names(names, sizeof names);
	snprintf(want, sizeof want, "t.json:7:48: routes[0].policy.name: "
	    "unknown policy \"fastest\"; known: %s", names);
	check_error(WITH_ROUTES(
	    "{\"name\": \"r\", \"models\": [\"m1\"], \"policy\": {\"name\": "
	    "\"fastest\"}}"), want);
}

SY_TEST(policy_object_needs_a_name)
{
	check_error(WITH_ROUTES(
	    "{\"name\": \"r\", \"models\": [\"m1\"], \"policy\": {\"x\": 1}}"),
	    "t.json:7:37: routes[0].policy.name: required key is missing");
}

SY_TEST(policy_parameters_reach_the_policy)
{
	check_error(WITH_ROUTES(
	    "{\"name\": \"r\", \"models\": [\"m1\"], \"policy\": {\"name\": "
	    "\"round_robin\", \"x\": 1}}"),
	    "t.json:7:37: routes[0].policy: round_robin takes no parameters");
}

SY_TEST(unknown_selection_policy_lists_the_known_ones)
{
	char names[256], want[512];

	sy_select_policy_names(names, sizeof names);
	snprintf(want, sizeof want, "t.json:7:37: routes[0].selection: "
	    "unknown selection policy \"best\"; known: %s", names);
	check_error(WITH_ROUTES(
	    "{\"name\": \"r\", \"models\": [\"m1\"], \"selection\": \"best\"}"),
	    want);
}

SY_TEST(selection_parameters_reach_the_policy)
{
	check_error_prefix(WITH_ROUTES(
	    "{\"name\": \"r\", \"models\": [\"m1\"], \"selection\": "
	    "{\"name\": \"alias\", \"x\": 1}}"),
	    "t.json:7:37: routes[0].selection: alias takes no parameters");
}

/* ==== Pools and lookups ==== */

SY_TEST(pools_hold_the_backends_serving_each_model)
{
	struct sy_config *cfg = load(
	    "{\n"
	    "  \"backends\": [\n"
	    "    {\"name\": \"a\", \"url\": \"http://127.0.0.1:9001\", "
	    "\"models\": [\"m1\"]},\n"
	    "    {\"name\": \"b\", \"url\": \"http://127.0.0.1:9002\", "
	    "\"models\": [\"m1\", \"m2\"]},\n"
	    "    {\"name\": \"c\", \"url\": \"http://127.0.0.1:9003\"},\n"
	    "    {\"name\": \"d\", \"url\": \"http://127.0.0.1:9004\", "
	    "\"models\": [\"m3\"]}\n"
	    "  ],\n"
	    "  \"routes\": [\n"
	    "    {\"name\": \"r\", \"models\": [\"m1\", \"m2\"]},\n"
	    "    {\"name\": \"s\", \"models\": [\"m3\"]}\n"
	    "  ]\n"
	    "}\n");
	struct sy_route *r, *s;
	char buf[64];

	SY_CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	r = &cfg->routes[0];
	s = &cfg->routes[1];
	SY_CHECK_INT(r->nendpoints, 3);
	SY_CHECK_INT(r->npools, 2);
	SY_CHECK_STR(pool_names(sy_route_pool(r, "m1"), buf, sizeof buf),
	    "a,b,c");
	SY_CHECK_STR(pool_names(sy_route_pool(r, "m2"), buf, sizeof buf),
	    "b,c");
	SY_CHECK(sy_route_pool(r, "m1")->route == r);
	SY_CHECK_STR(sy_route_pool(r, "m2")->model, "m2");
	SY_CHECK(sy_route_pool(r, "m3") == NULL);
	SY_CHECK_STR(pool_names(sy_route_pool(s, "m3"), buf, sizeof buf),
	    "c,d");
	SY_CHECK(sy_route_pool(r, "m1")->policy_state != NULL);
	sy_config_unref(cfg);
}

SY_TEST(route_backends_restrict_and_order_its_pools)
{
	struct sy_config *cfg = load(WITH_ROUTES(
	    "{\"name\": \"r\", \"models\": [\"m1\"], \"backends\": [\"b\", "
	    "\"a\"]},\n"
	    "    {\"name\": \"s\", \"models\": [\"m2\"], \"backends\": [\"b\"]}"));
	char buf[64];

	SY_CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	SY_CHECK_STR(pool_names(sy_route_pool(&cfg->routes[0], "m1"), buf,
	    sizeof buf), "b,a");
	SY_CHECK_STR(pool_names(sy_route_pool(&cfg->routes[1], "m2"), buf,
	    sizeof buf), "b");
	sy_config_unref(cfg);
}

SY_TEST(unknown_model_goes_to_the_wildcard_route)
{
	struct sy_config *cfg = load(WITH_ROUTES(
	    "{\"name\": \"r\", \"models\": [\"m1\"], \"aliases\": {\"x\": "
	    "\"m1\"}},\n"
	    "    {\"name\": \"rest\", \"models\": [\"*\"], \"backends\": "
	    "[\"b\", \"a\"]}"));
	struct sy_route *rest;
	struct sy_pool *pool;
	char buf[64];

	SY_CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	rest = &cfg->routes[1];
	SY_CHECK(sy_config_route(cfg, "m1") == &cfg->routes[0]);
	SY_CHECK(sy_config_route(cfg, "x") == &cfg->routes[0]);
	SY_CHECK(sy_config_route(cfg, "m2") == rest);
	SY_CHECK(sy_config_route(cfg, "anything-else") == rest);
	SY_CHECK(rest->wildcard);
	SY_CHECK_INT(rest->npools, 1);
	pool = sy_route_pool(rest, NULL);
	SY_CHECK(pool != NULL && pool->model == NULL);
	SY_CHECK_STR(pool_names(pool, buf, sizeof buf), "b,a");
	sy_config_unref(cfg);
}

SY_TEST(wildcard_route_defaults_to_every_backend)
{
	struct sy_config *cfg = load(WITH_ROUTES(
	    "{\"name\": \"rest\", \"models\": [\"*\"]}"));
	char buf[64];

	SY_CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	SY_CHECK_STR(pool_names(sy_route_pool(&cfg->routes[0], NULL), buf,
	    sizeof buf), "a,b");
	sy_config_unref(cfg);
}

SY_TEST(unknown_model_without_wildcard_route_has_no_route)
{
	struct sy_config *cfg = load(WITH_ROUTES(
	    "{\"name\": \"r\", \"models\": [\"m1\"]}"));

	SY_CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	SY_CHECK(sy_config_route(cfg, "m2") == NULL);
	SY_CHECK(sy_config_route(cfg, "*") == NULL);
	sy_config_unref(cfg);
}

SY_TEST(model_names_list_models_and_aliases_in_config_order)
{
	struct sy_config *cfg = load(WITH_ROUTES(
	    "{\"name\": \"r\", \"models\": [\"m2\", \"m1\"], \"aliases\": "
	    "{\"y\": \"m1\", \"x\": \"m2\"}},\n"
	    "    {\"name\": \"rest\", \"models\": [\"*\"]}"));
	json_t *names;
	char *s;

	SY_CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	names = sy_config_model_names(cfg);
	s = json_dumps(names, JSON_COMPACT);
	SY_CHECK_STR(s, "[\"m2\",\"m1\",\"y\",\"x\"]");
	free(s);
	json_decref(names);
	sy_config_unref(cfg);
}

/* ==== Prices ==== */

/* Backend a serves m1 and m2 through route r (alias x → m1); then prices. */
#define WITH_PRICES(prices)						\
	"{\n"								\
	"  \"backends\": [{\"name\": \"a\", \"url\": "			\
	"\"http://127.0.0.1:9001\"}],\n"				\
	"  \"routes\": [{\"name\": \"r\", \"models\": [\"m1\", \"m2\"], " \
	"\"aliases\": {\"x\": \"m1\"}}],\n"				\
	"  \"prices\": {\n"						\
	"    " prices "\n"						\
	"  }\n"								\
	"}\n"

SY_TEST(prices_are_read_and_cached_input_defaults_to_input)
{
	struct sy_config *cfg = load(WITH_PRICES(
	    "\"m1\": {\"input\": 0.5, \"output\": 1.5, \"cached_input\": 0.25},\n"
	    "    \"m2\": {\"input\": 2, \"output\": 4}"));
	const struct sy_price *p;

	SY_CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	p = sy_config_price(cfg, "m1");
	SY_CHECK(p != NULL && p->input == 0.5 && p->output == 1.5 &&
	    p->cached_input == 0.25);
	p = sy_config_price(cfg, "m2");
	SY_CHECK(p != NULL && p->input == 2 && p->output == 4 &&
	    p->cached_input == 2);
	SY_CHECK(sy_config_price(cfg, "m3") == NULL);
	sy_config_unref(cfg);
}

SY_TEST(price_without_output_is_rejected)
{
	check_error(WITH_PRICES("\"m1\": {\"input\": 0.5}"),
	    "t.json:5:5: prices.m1.output: required key is missing (or give "
	    "hourly_usd)");
}

SY_TEST(hourly_price_is_read_with_its_defaults)
{
	struct sy_config *cfg = load(WITH_PRICES(
	    "\"m1\": {\"hourly_usd\": 2.5, \"power_watts\": 700}, "
	    "\"m2\": {\"hourly_usd\": 1, \"cached_weight\": 0, "
	    "\"completion_weight\": 3, \"idle_power_share\": 0.5}"));
	const struct sy_price *p;

	SY_CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	p = sy_config_price(cfg, "m1");
	SY_CHECK(p->hourly_usd == 2.5 && p->power_watts == 700 &&
	    p->idle_power_share == 0.3 && p->prompt_weight == 1 &&
	    p->completion_weight == 1 && p->cached_weight == 0.1);
	p = sy_config_price(cfg, "m2");
	SY_CHECK(p->hourly_usd == 1 && p->power_watts == 0 &&
	    p->idle_power_share == 0.5 && p->completion_weight == 3 &&
	    p->cached_weight == 0);
	sy_config_unref(cfg);
}

SY_TEST(hourly_price_has_no_price_per_token)
{
	check_error(WITH_PRICES("\"m1\": {\"hourly_usd\": 2, \"input\": 1}"),
	    "t.json:5:29: prices.m1.input: a self-hosted model (hourly_usd) "
	    "has no price per token");
	check_error(WITH_PRICES("\"m1\": {\"hourly_usd\": 2, "
	    "\"idle_power_share\": 2}"),
	    "t.json:5:29: prices.m1.idle_power_share: must be from 0 to 1, got 2");
}

SY_TEST(negative_price_is_rejected)
{
	check_error(WITH_PRICES("\"m1\": {\"input\": -1, \"output\": 1}"),
	    "t.json:5:12: prices.m1.input: must not be negative, got -1");
}

SY_TEST(price_for_an_alias_is_rejected)
{
	check_error(WITH_PRICES("\"x\": {\"input\": 1, \"output\": 1}"),
	    "t.json:5:5: prices.x: \"x\" is an alias in route \"r\"; price the "
	    "model it maps to");
}

SY_TEST(price_for_a_model_no_route_serves_is_rejected)
{
	check_error(WITH_PRICES("\"m9\": {\"input\": 1, \"output\": 1}"),
	    "t.json:5:5: prices.m9: no route serves model \"m9\"");
}

/* ==== Model selection ==== */

/* Route r serves m1 and m2 (backend b), with the selection object on lines 5-8. */
#define WITH_SELECTION(sel)						\
	"{\n"								\
	"  \"backends\": [{\"name\": \"b\", \"url\": "			\
	"\"http://127.0.0.1:9001\"}],\n"				\
	"  \"routes\": [{\"name\": \"r\", \"models\": [\"m1\", \"m2\"],\n" \
	"    \"aliases\": {\"x\": \"m1\"},\n"				\
	"    \"selection\": {\n"					\
	sel								\
	"    }}],\n"							\
	"  \"prices\": {\"m1\": {\"input\": 1, \"output\": 1}}\n"	\
	"}\n"

SY_TEST(selection_rule_model_must_be_served_by_the_route)
{
	check_error(WITH_SELECTION(
	    "      \"name\": \"rules\",\n"
	    "      \"rules\": [{\"tools\": true, \"model\": \"m2\"},\n"
	    "                {\"tools\": false, \"model\": \"x\"}]\n"),
	    "t.json:8:34: routes[0].selection.rules[1].model: \"x\" is not a "
	    "served model of route \"r\"; served: m1, m2");
}

SY_TEST(selection_bad_regex_is_reported_at_its_key)
{
	check_error_prefix(WITH_SELECTION(
	    "      \"name\": \"rules\", \"default\": \"m1\",\n"
	    "      \"rules\": [{\"last_user\": \"(unclosed\", \"model\": \"m2\"}]\n"),
	    "t.json:7:18: routes[0].selection.rules[0].last_user: bad regular "
	    "expression \"(unclosed\": ");
}

SY_TEST(selection_rule_needs_a_condition)
{
	check_error(WITH_SELECTION(
	    "      \"name\": \"rules\",\n"
	    "      \"rules\": [{\"model\": \"m2\"}]\n"),
	    "t.json:7:17: routes[0].selection.rules[0]: a rule needs at least "
	    "one condition (use \"default\" for the model of every other "
	    "request)");
}

SY_TEST(selection_weighted_needs_a_positive_weight)
{
	check_error(WITH_SELECTION(
	    "      \"name\": \"weighted\", \"models\": {\"m1\": 0, \"m2\": 0}\n"),
	    "t.json:6:27: routes[0].selection.models: at least one weight must "
	    "be above 0");
}

SY_TEST(selection_cascade_refusal_check_needs_a_pattern)
{
	check_error(WITH_SELECTION(
	    "      \"name\": \"cascade\", \"on\": [\"refusal\"]\n"),
	    "t.json:6:26: routes[0].selection.on: the refusal check needs a "
	    "\"refusal\" pattern");
}

SY_TEST(selection_cascade_lists_known_checks)
{
	check_error(WITH_SELECTION(
	    "      \"name\": \"cascade\", \"on\": [\"length\", \"slow\"]\n"),
	    "t.json:6:43: routes[0].selection.on[1]: unknown check; known: "
	    "error, length, refusal, invalid_json, too_short");
}

SY_TEST(selection_cost_slo_needs_a_price_per_model)
{
	check_error(WITH_SELECTION(
	    "      \"name\": \"cost_slo\", \"p95_latency_ms\": 500\n"),
	    "t.json:5:5: routes[0].selection: cost_slo: model \"m2\" has no "
	    "price; add it to \"prices\"");
}

SY_TEST(selection_policies_need_named_models)
{
	check_error(WITH_ROUTES(
	    "{\"name\": \"r\", \"models\": [\"*\"], \"selection\": {\"name\": "
	    "\"weighted\", \"models\": {\"m1\": 1}}}"),
	    "t.json:7:36: routes[0].selection: weighted needs a route that "
	    "names its models, not a wildcard route");
}

SY_TEST(models_context_length_is_read)
{
	struct sy_config *cfg = load(WITH_PRICES(
	    "\"m1\": {\"input\": 1, \"output\": 2}\n"
	    "  },\n"
	    "  \"models\": {\"m1\": {\"context_length\": 4096}"));

	SY_CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	SY_CHECK_INT(sy_config_context_length(cfg, "m1"), 4096);
	SY_CHECK_INT(sy_config_context_length(cfg, "m2"), 0);
	sy_config_unref(cfg);
}

SY_TEST(models_entries_name_served_models_with_a_context_length)
{
	check_error(WITH_PRICES(
	    "\"m1\": {\"input\": 1, \"output\": 2}\n"
	    "  },\n"
	    "  \"models\": {\"x\": {\"context_length\": 4096},\n"
	    "    \"m9\": {\"context_length\": 1},\n"
	    "    \"m1\": {},\n"
	    "    \"m2\": {\"context_length\": 0, \"size\": 1}"),
	    "t.json:7:14: models.x: \"x\" is an alias in route \"r\"; describe "
	    "the model it maps to\n"
	    "t.json:8:5: models.m9: no route serves model \"m9\"\n"
	    "t.json:9:5: models.m1.context_length: required key is missing\n"
	    "t.json:10:12: models.m2.context_length: must be from 1 to "
	    "1000000000, got 0\n"
	    "t.json:10:33: models.m2.size: unknown key \"size\"; known: "
	    "context_length");
}

/* ==== Health checks, scraping, retries, ejection, queues, fallbacks ==== */

/* Backend "a" on 127.0.0.1:9001 with more keys, as WITH_BACKEND's. */
#define BACKEND_A(more)							\
	"{\"name\": \"a\", \"url\": \"http://127.0.0.1:9001/v1\", " more "}"

/* A route r serving m1, with more keys, as WITH_ROUTES's first route. */
#define ROUTE_R(more)							\
	"{\"name\": \"r\", \"models\": [\"m1\"], " more "}"

SY_TEST(new_keys_take_their_defaults)
{
	struct sy_config *cfg = load(MINIMAL);
	const struct sy_endpoint *ep;
	struct sy_route *r;

	SY_CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	ep = &cfg->endpoints[0];
	SY_CHECK_INT(ep->health.interval_ms, 0);
	SY_CHECK_STR(ep->health.path, "/models");
	SY_CHECK_INT(ep->health.timeout_ms, 2000);
	SY_CHECK_INT(ep->health.healthy, 2);
	SY_CHECK_INT(ep->health.unhealthy, 3);
	SY_CHECK_INT(ep->scrape.interval_ms, 0);
	SY_CHECK_STR(ep->scrape.path, "/metrics");
	SY_CHECK_INT(ep->scrape.timeout_ms, 1000);
	r = &cfg->routes[0];
	SY_CHECK_INT(r->retry.max, 2);
	SY_CHECK(r->retry.budget == 0.2);
	SY_CHECK_INT(r->retry.min_per_s, 5);
	SY_CHECK_INT(r->retry.backoff_ms, 25);
	SY_CHECK_INT(r->retry.max_backoff_ms, 1000);
	SY_CHECK_INT(r->retry.on, SY_RETRY_ON_CONNECT | SY_RETRY_ON_5XX |
	    SY_RETRY_ON_429 | SY_RETRY_ON_FIRST_TOKEN);
	SY_CHECK_INT(r->retry.first_token_ms, 0);
	SY_CHECK_INT(r->ejection.consecutive_failures, 5);
	SY_CHECK(r->ejection.error_rate == 0);
	SY_CHECK_INT(r->ejection.min_requests, 20);
	SY_CHECK_INT(r->ejection.window_ms, 10000);
	SY_CHECK_INT(r->ejection.cooldown_ms, 10000);
	SY_CHECK_INT(r->ejection.max_cooldown_ms, 300000);
	SY_CHECK(r->ejection.min_available == 0.5);
	SY_CHECK_INT(r->queue.max, 0);
	SY_CHECK_INT(r->queue.timeout_ms, 5000);
	SY_CHECK_INT(r->nfallbacks, 0);
	SY_CHECK(r->fallbacks == NULL);
	SY_CHECK_INT(r->deadline_ms, 600000);
	SY_CHECK_INT(atomic_load(&r->budget_start_us), 0);
	SY_CHECK_INT(atomic_load(&r->requests), 0);
	SY_CHECK_INT(atomic_load(&r->retries), 0);
	sy_config_unref(cfg);
}

SY_TEST(deadline_defaults_to_the_total_timeout)
{
	struct sy_config *cfg = load(
	    "{\"timeouts\": {\"total_ms\": 1234}, \"backends\": [{\"name\": "
	    "\"a\", \"url\": \"http://127.0.0.1:9001\"}], \"routes\": "
	    "[{\"name\": \"r\", \"models\": [\"*\"]}]}");

	SY_CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	SY_CHECK_INT(cfg->routes[0].deadline_ms, 1234);
	sy_config_unref(cfg);
}

SY_TEST(empty_health_and_metrics_objects_turn_them_on_with_defaults)
{
	struct sy_config *cfg = load(WITH_BACKEND(BACKEND_A(
	    "\"health\": {}, \"metrics\": {}")));
	const struct sy_endpoint *ep;

	SY_CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	ep = &cfg->endpoints[0];
	SY_CHECK_INT(ep->health.interval_ms, 5000);
	SY_CHECK_STR(ep->health.path, "/models");
	SY_CHECK_INT(ep->health.timeout_ms, 2000);
	SY_CHECK_INT(ep->health.healthy, 2);
	SY_CHECK_INT(ep->health.unhealthy, 3);
	SY_CHECK_INT(ep->scrape.interval_ms, 1000);
	SY_CHECK_STR(ep->scrape.path, "/metrics");
	SY_CHECK_INT(ep->scrape.timeout_ms, 1000);
	sy_config_unref(cfg);
}

SY_TEST(every_health_and_metrics_key_is_read)
{
	struct sy_config *cfg = load(WITH_BACKEND(BACKEND_A(
	    "\"health\": {\"path\": \"/health\", \"interval_ms\": 700, "
	    "\"timeout_ms\": 300, \"healthy\": 1, \"unhealthy\": 100},\n"
	    "     \"metrics\": {\"path\": \"/stats/prom\", \"interval_ms\": "
	    "50, \"timeout_ms\": 40}")));
	const struct sy_endpoint *ep;

	SY_CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	ep = &cfg->endpoints[0];
	SY_CHECK_STR(ep->health.path, "/health");
	SY_CHECK_INT(ep->health.interval_ms, 700);
	SY_CHECK_INT(ep->health.timeout_ms, 300);
	SY_CHECK_INT(ep->health.healthy, 1);
	SY_CHECK_INT(ep->health.unhealthy, 100);
	SY_CHECK_STR(ep->scrape.path, "/stats/prom");
	SY_CHECK_INT(ep->scrape.interval_ms, 50);
	SY_CHECK_INT(ep->scrape.timeout_ms, 40);
	sy_config_unref(cfg);
}

SY_TEST(every_retry_ejection_queue_and_deadline_key_is_read)
{
	struct sy_config *cfg = load(WITH_ROUTES(ROUTE_R(
	    "\"retries\": {\"max\": 7, \"budget\": 0.5, \"min_per_s\": 0,\n"
	    "      \"backoff_ms\": 0, \"max_backoff_ms\": 0, \"on\": "
	    "[\"timeout\", \"5xx\"], \"first_token_ms\": 1500},\n"
	    "     \"ejection\": {\"consecutive_failures\": 0, \"error_rate\": "
	    "0.25,\n"
	    "      \"min_requests\": 1, \"window_ms\": 1000, \"cooldown_ms\": "
	    "500,\n"
	    "      \"max_cooldown_ms\": 500, \"min_available\": 1},\n"
	    "     \"queue\": {\"max\": 100000, \"timeout_ms\": 250}, "
	    "\"deadline_ms\": 86400000")));
	const struct sy_route *r;

	SY_CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	r = &cfg->routes[0];
	SY_CHECK_INT(r->retry.max, 7);
	SY_CHECK(r->retry.budget == 0.5);
	SY_CHECK_INT(r->retry.min_per_s, 0);
	SY_CHECK_INT(r->retry.backoff_ms, 0);
	SY_CHECK_INT(r->retry.max_backoff_ms, 0);
	SY_CHECK_INT(r->retry.on, SY_RETRY_ON_TIMEOUT | SY_RETRY_ON_5XX);
	SY_CHECK_INT(r->retry.first_token_ms, 1500);
	SY_CHECK_INT(r->ejection.consecutive_failures, 0);
	SY_CHECK(r->ejection.error_rate == 0.25);
	SY_CHECK_INT(r->ejection.min_requests, 1);
	SY_CHECK_INT(r->ejection.window_ms, 1000);
	SY_CHECK_INT(r->ejection.cooldown_ms, 500);
	SY_CHECK_INT(r->ejection.max_cooldown_ms, 500);
	SY_CHECK(r->ejection.min_available == 1);
	SY_CHECK_INT(r->queue.max, 100000);
	SY_CHECK_INT(r->queue.timeout_ms, 250);
	SY_CHECK_INT(r->deadline_ms, 86400000);
	sy_config_unref(cfg);
}

SY_TEST(retries_max_zero_turns_retries_off)
{
	struct sy_config *cfg = load(WITH_ROUTES(ROUTE_R(
	    "\"retries\": {\"max\": 0}")));

	SY_CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	SY_CHECK_INT(cfg->routes[0].retry.max, 0);
	SY_CHECK(cfg->routes[0].retry.budget == 0.2);
	sy_config_unref(cfg);
}

SY_TEST(fractions_accept_integers)
{
	struct sy_config *cfg = load(WITH_ROUTES(ROUTE_R(
	    "\"retries\": {\"budget\": 1}, \"ejection\": {\"error_rate\": 1, "
	    "\"min_available\": 0}")));

	SY_CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	SY_CHECK(cfg->routes[0].retry.budget == 1);
	SY_CHECK(cfg->routes[0].ejection.error_rate == 1);
	SY_CHECK(cfg->routes[0].ejection.min_available == 0);
	sy_config_unref(cfg);
}

SY_TEST(zero_config_route_gets_the_defaults)
{
	const char *urls[] = { "http://127.0.0.1:9001/v1" };
	struct sy_config *cfg = NULL;
	const struct sy_route *r;
	char *err = NULL;

	SY_CHECK_INT(sy_config_from_upstreams(urls, 1, NULL, NULL, NULL, NULL,
	    NULL, &cfg, &err), 0);
	if (cfg == NULL) {
		printf("# %s\n", err);
		free(err);
		return;
	}
	r = &cfg->routes[0];
	SY_CHECK_INT(r->retry.max, 2);
	SY_CHECK_INT(r->retry.on, SY_RETRY_ON_CONNECT | SY_RETRY_ON_5XX |
	    SY_RETRY_ON_429 | SY_RETRY_ON_FIRST_TOKEN);
	SY_CHECK_INT(r->retry.first_token_ms, 0);
	SY_CHECK_INT(r->ejection.consecutive_failures, 5);
	SY_CHECK(r->ejection.min_available == 0.5);
	SY_CHECK_INT(r->queue.timeout_ms, 5000);
	SY_CHECK_INT(r->deadline_ms, 600000);
	SY_CHECK_INT(r->nfallbacks, 0);
	SY_CHECK_INT(cfg->endpoints[0].health.interval_ms, 0);
	SY_CHECK_STR(cfg->endpoints[0].health.path, "/models");
	SY_CHECK_INT(cfg->endpoints[0].scrape.interval_ms, 0);
	sy_config_unref(cfg);
}

SY_TEST(unknown_keys_in_the_new_objects_are_rejected)
{
	check_error(
	    "{\n"
	    "  \"backends\": [{\"name\": \"a\", \"url\": "
	    "\"http://127.0.0.1:9001\",\n"
	    "    \"health\": {\"intervl_ms\": 1},\n"
	    "    \"metrics\": {\"port\": 9100}}],\n"
	    "  \"routes\": [{\"name\": \"r\", \"models\": [\"*\"],\n"
	    "    \"retries\": {\"attempts\": 3},\n"
	    "    \"ejection\": {\"failures\": 3},\n"
	    "    \"queue\": {\"size\": 3},\n"
	    "    \"deadline\": 5}]\n"
	    "}\n",
	    "t.json:3:16: backends[0].health.intervl_ms: unknown key "
	    "\"intervl_ms\"; known: path, interval_ms, timeout_ms, healthy, "
	    "unhealthy\n"
	    "t.json:4:17: backends[0].metrics.port: unknown key \"port\"; "
	    "known: path, interval_ms, timeout_ms\n"
	    "t.json:6:17: routes[0].retries.attempts: unknown key "
	    "\"attempts\"; known: max, budget, min_per_s, backoff_ms, "
	    "max_backoff_ms, on, first_token_ms, hedge_after_ms\n"
	    "t.json:7:18: routes[0].ejection.failures: unknown key "
	    "\"failures\"; known: consecutive_failures, error_rate, "
	    "min_requests, window_ms, cooldown_ms, max_cooldown_ms, "
	    "min_available\n"
	    "t.json:8:15: routes[0].queue.size: unknown key \"size\"; known: "
	    "max, timeout_ms\n"
	    "t.json:9:5: routes[0].deadline: unknown key \"deadline\"; known: "
	    "name, models, aliases, backends, policy, selection, retries, "
	    "ejection, queue, fallbacks, deadline_ms, batch, cache, "
	    "rate_limits, limits_fail");
}

SY_TEST(health_must_be_an_object)
{
	check_error(WITH_BACKEND(BACKEND_A("\"health\": true")),
	    "t.json:3:54: backends[0].health: expected an object, got a "
	    "boolean");
}

SY_TEST(health_path_must_start_with_a_slash)
{
	check_error(WITH_BACKEND(BACKEND_A("\"health\": {\"path\": "
	    "\"models\"}")),
	    "t.json:3:65: backends[0].health.path: must start with '/', got "
	    "\"models\"");
}

SY_TEST(health_path_must_not_contain_spaces)
{
	check_error(WITH_BACKEND(BACKEND_A("\"health\": {\"path\": "
	    "\"/a b\"}")),
	    "t.json:3:65: backends[0].health.path: must not contain spaces or "
	    "control characters");
}

SY_TEST(health_timeout_must_be_below_the_interval)
{
	check_error(WITH_BACKEND(BACKEND_A("\"health\": {\"timeout_ms\": "
	    "5000}")),
	    "t.json:3:65: backends[0].health.timeout_ms: must be less than "
	    "interval_ms (5000), got 5000");
	check_error(WITH_BACKEND(BACKEND_A("\"health\": {\"interval_ms\": "
	    "1000}")),
	    "t.json:3:65: backends[0].health.interval_ms: must be greater "
	    "than timeout_ms (2000), got 1000");
}

SY_TEST(health_thresholds_are_from_1_to_100)
{
	check_error(WITH_BACKEND(BACKEND_A("\"health\": {\"healthy\": 0, "
	    "\"unhealthy\": 101}")),
	    "t.json:3:65: backends[0].health.healthy: must be from 1 to 100, "
	    "got 0\n"
	    "t.json:3:79: backends[0].health.unhealthy: must be from 1 to "
	    "100, got 101");
}

SY_TEST(metrics_interval_is_at_least_50_ms)
{
	check_error(WITH_BACKEND(BACKEND_A("\"metrics\": {\"interval_ms\": "
	    "10}")),
	    "t.json:3:66: backends[0].metrics.interval_ms: must be from 50 to "
	    "86400000, got 10");
}

SY_TEST(metrics_path_must_start_with_a_slash)
{
	check_error(WITH_BACKEND(BACKEND_A("\"metrics\": {\"path\": "
	    "\"metrics\"}")),
	    "t.json:3:66: backends[0].metrics.path: must start with '/', got "
	    "\"metrics\"");
}

SY_TEST(retries_max_is_at_most_seven)
{
	check_error(WITH_ROUTES(ROUTE_R("\"retries\": {\"max\": 8}")),
	    "t.json:7:49: routes[0].retries.max: must be from 0 to 7, got 8");
}

SY_TEST(retry_budget_must_be_a_number_from_0_to_1)
{
	check_error(WITH_ROUTES(ROUTE_R("\"retries\": {\"budget\": 1.5}")),
	    "t.json:7:49: routes[0].retries.budget: must be from 0 to 1, got "
	    "1.5");
	check_error(WITH_ROUTES(ROUTE_R("\"retries\": {\"budget\": \"20%\"}")),
	    "t.json:7:49: routes[0].retries.budget: expected a number from 0 "
	    "to 1, got a string");
}

SY_TEST(unknown_retry_condition_lists_the_known_ones)
{
	check_error(WITH_ROUTES(ROUTE_R("\"retries\": {\"on\": [\"5xx\", "
	    "\"4xx\"]}")),
	    "t.json:7:63: routes[0].retries.on[1]: unknown retry condition "
	    "\"4xx\"; known: connect, 5xx, 429, timeout, first_token");
}

SY_TEST(retry_conditions_are_strings_listed_once)
{
	check_error(WITH_ROUTES(ROUTE_R("\"retries\": {\"on\": [\"429\", 5, "
	    "\"429\"]}")),
	    "t.json:7:63: routes[0].retries.on[1]: expected a retry "
	    "condition, got an integer\n"
	    "t.json:7:66: routes[0].retries.on[2]: duplicate retry condition "
	    "\"429\"");
	check_error(WITH_ROUTES(ROUTE_R("\"retries\": {\"on\": []}")),
	    "t.json:7:49: routes[0].retries.on: must list at least one retry "
	    "condition");
}

SY_TEST(retry_backoff_is_at_most_its_maximum)
{
	check_error(WITH_ROUTES(ROUTE_R("\"retries\": {\"backoff_ms\": 2000}")),
	    "t.json:7:49: routes[0].retries.backoff_ms: must be at most "
	    "max_backoff_ms (1000), got 2000");
	check_error(WITH_ROUTES(ROUTE_R("\"retries\": {\"max_backoff_ms\": "
	    "10}")),
	    "t.json:7:49: routes[0].retries.max_backoff_ms: must be at least "
	    "backoff_ms (25), got 10");
}

SY_TEST(ejection_fractions_are_from_0_to_1)
{
	check_error(WITH_ROUTES(ROUTE_R("\"ejection\": {\"error_rate\": 2, "
	    "\"min_available\": -0.5}")),
	    "t.json:7:50: routes[0].ejection.error_rate: must be from 0 to 1, "
	    "got 2\n"
	    "t.json:7:67: routes[0].ejection.min_available: must be from 0 to "
	    "1, got -0.5");
}

SY_TEST(ejection_cooldown_is_at_most_its_maximum)
{
	check_error(WITH_ROUTES(ROUTE_R("\"ejection\": {\"cooldown_ms\": "
	    "600000}")),
	    "t.json:7:50: routes[0].ejection.cooldown_ms: must be at most "
	    "max_cooldown_ms (300000), got 600000");
}

SY_TEST(queue_max_is_at_most_100000)
{
	check_error(WITH_ROUTES(ROUTE_R("\"queue\": {\"max\": 100001}")),
	    "t.json:7:47: routes[0].queue.max: must be from 0 to 100000, got "
	    "100001");
}

SY_TEST(deadline_is_from_1_ms_to_a_day)
{
	check_error(WITH_ROUTES(ROUTE_R("\"deadline_ms\": 0")),
	    "t.json:7:37: routes[0].deadline_ms: must be from 1 to 86400000, "
	    "got 0");
}

SY_TEST(a_route_without_batch_does_not_batch)
{
	struct sy_config *cfg = load(WITH_ROUTES(ROUTE_R("\"policy\": "
	    "\"round_robin\"")));

	SY_CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	SY_CHECK(cfg->routes[0].batch.policy == NULL);
	SY_CHECK(cfg->routes[0].batch.batcher == NULL);
	sy_config_unref(cfg);
}

SY_TEST(batch_keys_take_their_defaults)
{
	struct sy_config *cfg = load(WITH_ROUTES(ROUTE_R("\"batch\": {}")));
	const struct sy_batching *b;

	SY_CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	b = &cfg->routes[0].batch;
	SY_CHECK(b->policy == sy_batch_policy_find("window"));
	SY_CHECK(b->batcher != NULL);
	SY_CHECK_INT(b->max_batch_size, 32);
	SY_CHECK_INT(b->max_batch_tokens, 0);
	SY_CHECK_INT(b->max_wait_us, 2000);
	SY_CHECK_INT(b->max_queue, 1024);
	sy_config_unref(cfg);
}

SY_TEST(every_batch_key_is_read)
{
	struct sy_config *cfg = load(WITH_ROUTES(ROUTE_R("\"batch\": "
	    "{\"policy\": {\"name\": \"adaptive\", \"max_in_flight\": 2}, "
	    "\"max_batch_size\": 64, \"max_batch_tokens\": 8192, "
	    "\"max_wait_us\": 50000, \"max_queue\": 10}")));
	const struct sy_batching *b;

	SY_CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	b = &cfg->routes[0].batch;
	SY_CHECK(b->policy == sy_batch_policy_find("adaptive"));
	SY_CHECK_INT(json_integer_value(json_object_get(b->params,
	    "max_in_flight")), 2);
	SY_CHECK_INT(b->max_batch_size, 64);
	SY_CHECK_INT(b->max_batch_tokens, 8192);
	SY_CHECK_INT(b->max_wait_us, 50000);
	SY_CHECK_INT(b->max_queue, 10);
	sy_config_unref(cfg);
}

SY_TEST(batch_values_out_of_range_are_rejected)
{
	check_error(WITH_ROUTES(ROUTE_R("\"batch\": {\"max_batch_size\": 0, "
	    "\"max_wait_us\": -1, \"max_queue\": 0}")),
	    "t.json:7:47: routes[0].batch.max_batch_size: must be from 1 to "
	    "2048, got 0\n"
	    "t.json:7:68: routes[0].batch.max_wait_us: must be from 0 to "
	    "60000000, got -1\n"
	    "t.json:7:87: routes[0].batch.max_queue: must be from 1 to "
	    "100000, got 0");
}

SY_TEST(batch_unknown_keys_and_policies_are_rejected)
{
	check_error(WITH_ROUTES(ROUTE_R("\"batch\": {\"size\": 8, "
	    "\"policy\": \"greedy\"}")),
	    "t.json:7:47: routes[0].batch.size: unknown key \"size\"; known: "
	    "policy, max_batch_size, max_batch_tokens, max_wait_us, max_queue\n"
	    "t.json:7:58: routes[0].batch.policy: unknown batching policy "
	    "\"greedy\"; known: window, adaptive");
}

SY_TEST(batch_policy_parameters_are_checked)
{
	check_error(WITH_ROUTES(ROUTE_R("\"batch\": {\"policy\": "
	    "{\"name\": \"adaptive\", \"max_in_flight\": 0}}")),
	    "t.json:7:47: routes[0].batch.policy: adaptive: parameter "
	    "\"max_in_flight\" must be an integer from 1 to 100000");
}

SY_TEST(batch_is_refused_where_answers_are_checked)
{
	check_error(WITH_ROUTES("{\"name\": \"r\", \"models\": [\"m1\", "
	    "\"m2\"], \"selection\": \"cascade\", \"batch\": {}}"),
	    "t.json:7:67: routes[0].batch: a route whose selection policy "
	    "checks its answers (cascade) cannot batch");
}

SY_TEST(batch_must_be_an_object)
{
	check_error(WITH_ROUTES(ROUTE_R("\"batch\": true")),
	    "t.json:7:37: routes[0].batch: expected an object, got a "
	    "boolean");
}

/* Routes r (m1, alias a1) and s (m2, alias a2), r with more keys. */
#define R_AND_S(more)							\
	WITH_ROUTES("{\"name\": \"r\", \"models\": [\"m1\"], \"aliases\": " \
	    "{\"a1\": \"m1\"},\n      " more "},\n"			\
	    "    {\"name\": \"s\", \"models\": [\"m2\"], \"aliases\": "	\
	    "{\"a2\": \"m2\"}}")

/* ==== Prompt cache ==== */

/* MINIMAL with a top-level cache object and route keys. */
#define WITH_CACHE(cache, route)					\
	"{\n"								\
	"  \"backends\": [{\"name\": \"a\", \"url\": \"http://127.0.0.1:9001\"}],\n" \
	"  \"routes\": [{\"name\": \"chat\", \"models\": [\"m\"]" route "}],\n" \
	"  \"cache\": " cache "\n"					\
	"}\n"

SY_TEST(cache_keys_take_their_defaults)
{
	struct sy_config *cfg = load(MINIMAL);
	const struct sy_route_cache *rc;

	SY_CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	rc = &cfg->routes[0].cache;
	SY_CHECK_INT(rc->enabled, 0);
	SY_CHECK_INT(rc->ttl_s, 3600);
	SY_CHECK_INT(rc->max_entry_bytes, 1048576);
	SY_CHECK_INT(rc->deterministic_only, 1);
	SY_CHECK_INT(rc->replay_chunk_tokens, 4);
	SY_CHECK_INT(rc->replay_interval_ms, 0);
	SY_CHECK(rc->namespace == NULL);
	SY_CHECK_INT(cfg->cache.l1_max_bytes, 64 * 1024 * 1024);
	SY_CHECK_INT(cfg->cache.coalesce, 1);
	SY_CHECK_INT(cfg->cache.redis, 0);
	SY_CHECK_STR(cfg->cache.key_prefix, "sy:cache:");
	SY_CHECK_INT(cfg->cache.connect_timeout_ms, 200);
	SY_CHECK_INT(cfg->cache.command_timeout_ms, 50);
	SY_CHECK_INT(cfg->cache.lock_ms, 0);
	sy_config_unref(cfg);
}

SY_TEST(a_route_cache_object_turns_the_cache_on)
{
	struct sy_config *cfg = load(WITH_CACHE("{}", ", \"cache\": {}"));

	SY_CHECK(cfg != NULL && cfg->routes[0].cache.enabled == 1);
	sy_config_unref(cfg);
}

SY_TEST(every_cache_key_is_read)
{
	struct sy_config *cfg;
	const struct sy_route_cache *rc;

	setenv("SY_TEST_REDIS_PASSWORD", "s3cret", 1);
	cfg = load(WITH_CACHE("{\"l1_max_bytes\": 0, \"coalesce\": false, "
	    "\"redis\": {\"host\": \"10.0.0.7\", \"port\": 6380, \"db\": 2, "
	    "\"password_env\": \"SY_TEST_REDIS_PASSWORD\", \"key_prefix\": "
	    "\"gw:\", \"connect_timeout_ms\": 300, \"command_timeout_ms\": 7, "
	    "\"lock_ms\": 1500}}",
	    ", \"cache\": {\"enabled\": false, \"ttl_s\": 60, "
	    "\"max_entry_bytes\": 4096, \"deterministic_only\": false, "
	    "\"replay_chunk_tokens\": 1, \"replay_interval_ms\": 25, "
	    "\"namespace\": \"tenant-a\"}"));
	SY_CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	rc = &cfg->routes[0].cache;
	SY_CHECK_INT(rc->enabled, 0);
	SY_CHECK_INT(rc->ttl_s, 60);
	SY_CHECK_INT(rc->max_entry_bytes, 4096);
	SY_CHECK_INT(rc->deterministic_only, 0);
	SY_CHECK_INT(rc->replay_chunk_tokens, 1);
	SY_CHECK_INT(rc->replay_interval_ms, 25);
	SY_CHECK_STR(rc->namespace, "tenant-a");
	SY_CHECK_INT(cfg->cache.l1_max_bytes, 0);
	SY_CHECK_INT(cfg->cache.coalesce, 0);
	SY_CHECK_INT(cfg->cache.redis, 1);
	SY_CHECK_STR(cfg->cache.redis_host, "10.0.0.7");
	SY_CHECK_INT(cfg->cache.redis_port, 6380);
	SY_CHECK_INT(cfg->cache.redis_db, 2);
	SY_CHECK_STR(cfg->cache.redis_password, "s3cret");
	SY_CHECK_STR(cfg->cache.key_prefix, "gw:");
	SY_CHECK_INT(cfg->cache.connect_timeout_ms, 300);
	SY_CHECK_INT(cfg->cache.command_timeout_ms, 7);
	SY_CHECK_INT(cfg->cache.lock_ms, 1500);
	sy_config_unref(cfg);
}

SY_TEST(redis_defaults_to_the_local_port_or_a_unix_socket)
{
	struct sy_config *cfg = load(WITH_CACHE("{\"redis\": {}}", ""));

	SY_CHECK(cfg != NULL);
	if (cfg != NULL) {
		SY_CHECK_STR(cfg->cache.redis_host, "127.0.0.1");
		SY_CHECK_INT(cfg->cache.redis_port, 6379);
		SY_CHECK(cfg->cache.redis_password == NULL);
	}
	sy_config_unref(cfg);
	cfg = load(WITH_CACHE("{\"redis\": {\"unix\": \"/run/redis.sock\"}}",
	    ""));
	SY_CHECK(cfg != NULL);
	if (cfg != NULL) {
		SY_CHECK_STR(cfg->cache.redis_unix, "/run/redis.sock");
		SY_CHECK(cfg->cache.redis_host == NULL);
	}
	sy_config_unref(cfg);
}

SY_TEST(bad_route_cache_keys_are_reported)
{
	check_error(WITH_CACHE("{}", ", \"cache\": {\"ttl\": 5, \"ttl_s\": 0, "
	    "\"enabled\": \"yes\", \"max_entry_bytes\": 1e9, "
	    "\"replay_chunk_tokens\": 0, \"namespace\": \"\"}"),
	    "t.json:3:58: routes[0].cache.ttl: unknown key \"ttl\"; known: "
	    "enabled, ttl_s, max_entry_bytes, deterministic_only, "
	    "replay_chunk_tokens, replay_interval_ms, namespace\n"
	    "t.json:3:68: routes[0].cache.ttl_s: must be from 1 to 31536000, "
	    "got 0\n"
	    "t.json:3:80: routes[0].cache.enabled: expected true or false, "
	    "got a string\n"
	    "t.json:3:98: routes[0].cache.max_entry_bytes: expected an "
	    "integer, got a number\n"
	    "t.json:3:122: routes[0].cache.replay_chunk_tokens: must be from "
	    "1 to 4096, got 0\n"
	    "t.json:3:148: routes[0].cache.namespace: must not be empty");
}

SY_TEST(bad_cache_store_keys_are_reported)
{
	unsetenv("SY_TEST_UNSET_PASSWORD");
	check_error(WITH_CACHE("{\"l1_max_bytes\": -1, \"coalesce\": 1, "
	    "\"redis\": {\"unix\": \"/s\", \"port\": 70000, "
	    "\"password_env\": \"SY_TEST_UNSET_PASSWORD\", "
	    "\"command_timeout_ms\": 0, \"password\": \"x\"}}", ""),
	    "t.json:4:13: cache.l1_max_bytes: must be from 0 to 1099511627776, "
	    "got -1\n"
	    "t.json:4:33: cache.coalesce: expected true or false, got an "
	    "integer\n"
	    "t.json:4:58: cache.redis.unix: give either a unix socket or host "
	    "and port\n"
	    "t.json:4:72: cache.redis.port: must be from 1 to 65535, got 70000\n"
	    "t.json:4:87: cache.redis.password_env: environment variable "
	    "SY_TEST_UNSET_PASSWORD is not set\n"
	    "t.json:4:129: cache.redis.command_timeout_ms: must be from 1 to "
	    "60000, got 0\n"
	    "t.json:4:154: cache.redis.password: a password does not belong in "
	    "the config file; put it in an environment variable and name that "
	    "in \"password_env\"");
	check_error(WITH_CACHE("[]", ""),
	    "t.json:4:3: cache: expected an object, got an array");
	check_error(WITH_CACHE("{\"redis\": {\"key_prefix\": \""
	    "0123456789012345678901234567890123456789012345678901234567890123"
	    "0123456789012345678901234567890123456789012345678901234567890123"
	    "0123456789012345678901234567890123456789012345678901234567890123"
	    "0123456789012345678901234567890123456789012345678901234567890123"
	    "x\"}}", ""),
	    "t.json:4:23: cache.redis.key_prefix: at most 256 bytes, got 257");
}

/* Routes r (m1, alias a1) and s (m2, alias a2), r with more keys. */
#define R_AND_S(more)							\
	WITH_ROUTES("{\"name\": \"r\", \"models\": [\"m1\"], \"aliases\": " \
	    "{\"a1\": \"m1\"},\n      " more "},\n"			\
	    "    {\"name\": \"s\", \"models\": [\"m2\"], \"aliases\": "	\
	    "{\"a2\": \"m2\"}}")

SY_TEST(fallbacks_keep_models_and_aliases_of_other_routes)
{
	struct sy_config *cfg = load(R_AND_S(
	    "\"fallbacks\": [\"a2\", \"m2\"]"));

	SY_CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	SY_CHECK_INT(cfg->routes[0].nfallbacks, 2);
	SY_CHECK_STR(cfg->routes[0].fallbacks[0], "a2");
	SY_CHECK_STR(cfg->routes[0].fallbacks[1], "m2");
	SY_CHECK_INT(cfg->routes[1].nfallbacks, 0);
	sy_config_unref(cfg);
}

SY_TEST(fallback_route_name_stands_for_its_first_model)
{
	struct sy_config *cfg = load(
	    "{\"backends\": [{\"name\": \"a\", \"url\": "
	    "\"http://127.0.0.1:9001\"}],\n"
	    " \"routes\": [{\"name\": \"r\", \"models\": [\"m1\"], "
	    "\"fallbacks\": [\"s\"]},\n"
	    "  {\"name\": \"s\", \"models\": [\"m3\", \"m2\"]}]}");

	SY_CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	SY_CHECK_INT(cfg->routes[0].nfallbacks, 1);
	SY_CHECK_STR(cfg->routes[0].fallbacks[0], "m3");
	sy_config_unref(cfg);
}

SY_TEST(fallbacks_may_loop_between_routes)
{
	struct sy_config *cfg = load(WITH_ROUTES(
	    "{\"name\": \"r\", \"models\": [\"m1\"], \"fallbacks\": [\"s\"]},\n"
	    "    {\"name\": \"s\", \"models\": [\"m2\"], \"fallbacks\": "
	    "[\"r\"]}"));

	SY_CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	SY_CHECK_STR(cfg->routes[0].fallbacks[0], "m2");
	SY_CHECK_STR(cfg->routes[1].fallbacks[0], "m1");
	sy_config_unref(cfg);
}

SY_TEST(fallback_to_a_name_only_the_wildcard_route_takes_is_kept)
{
	struct sy_config *cfg = load(WITH_ROUTES(
	    "{\"name\": \"r\", \"models\": [\"m1\"], \"fallbacks\": "
	    "[\"gpt-4o\"]},\n"
	    "    {\"name\": \"any\", \"models\": [\"*\"]}"));

	SY_CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	SY_CHECK_STR(cfg->routes[0].fallbacks[0], "gpt-4o");
	SY_CHECK(sy_config_route(cfg, "gpt-4o") == &cfg->routes[1]);
	sy_config_unref(cfg);
}

SY_TEST(fallback_must_go_to_another_route)
{
	check_error(R_AND_S("\"fallbacks\": [\"m1\", \"a1\", \"r\"]"),
	    "t.json:8:21: routes[0].fallbacks[0]: \"m1\" is served by this "
	    "route; a fallback must go to another route\n"
	    "t.json:8:27: routes[0].fallbacks[1]: \"a1\" is served by this "
	    "route; a fallback must go to another route\n"
	    "t.json:8:33: routes[0].fallbacks[2]: a route cannot fall back to "
	    "itself");
}

SY_TEST(unknown_fallback_is_rejected)
{
	check_error(R_AND_S("\"fallbacks\": [\"m9\"]"),
	    "t.json:8:21: routes[0].fallbacks[0]: \"m9\" is no model, alias "
	    "or route name of another route");
}

SY_TEST(duplicate_fallbacks_are_rejected)
{
	check_error(R_AND_S("\"fallbacks\": [\"m2\", \"m2\", \"s\"]"),
	    "t.json:8:27: routes[0].fallbacks[1]: duplicate fallback \"m2\"\n"
	    "t.json:8:33: routes[0].fallbacks[2]: duplicate fallback \"m2\" "
	    "(route \"s\" stands for its model \"m2\")");
}

SY_TEST(at_most_eight_fallbacks)
{
	check_error(R_AND_S("\"fallbacks\": [\"m2\", \"m2\", \"m2\", \"m2\", "
	    "\"m2\", \"m2\", \"m2\", \"m2\", \"m2\"]"),
	    "t.json:8:7: routes[0].fallbacks: at most 8 fallbacks, got 9");
}

SY_TEST(fallback_to_the_wildcard_route_needs_a_model_name)
{
	check_error(WITH_ROUTES(
	    "{\"name\": \"r\", \"models\": [\"m1\"], \"fallbacks\": "
	    "[\"any\", \"*\"]},\n"
	    "    {\"name\": \"any\", \"models\": [\"*\"]}"),
	    "t.json:7:51: routes[0].fallbacks[0]: route \"any\" is a wildcard "
	    "route: name the model to ask it for\n"
	    "t.json:7:58: routes[0].fallbacks[1]: \"*\" is not a model name; "
	    "name a model the wildcard route should ask for");
}

SY_TEST(fallbacks_are_an_array_of_names)
{
	check_error(R_AND_S("\"fallbacks\": \"s\""),
	    "t.json:8:7: routes[0].fallbacks: expected an array of model or "
	    "route names, got a string");
	check_error(R_AND_S("\"fallbacks\": [\"\", 2]"),
	    "t.json:8:21: routes[0].fallbacks[0]: expected a model or route "
	    "name, got \"\"\n"
	    "t.json:8:25: routes[0].fallbacks[1]: expected a model or route "
	    "name, got an integer");
}

/* ==== Snapshots ==== */

/* Backends sim0 and sim1, in the given order. */
#define TWO_SIMS(first, second)						\
	"{\"backends\": [{\"name\": \"" first "\", \"url\": "		\
	"\"http://127.0.0.1:9001\"}, {\"name\": \"" second "\", \"url\": " \
	"\"http://127.0.0.1:9002\"}], \"routes\": [{\"name\": \"r\", "	\
	"\"models\": [\"*\"]}]}"

SY_TEST(snapshot_references_are_counted)
{
	struct sy_config *cfg = load(MINIMAL);

	SY_CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	SY_CHECK_INT(atomic_load(&cfg->refs), 1);
	SY_CHECK(sy_config_ref(cfg) == cfg);
	SY_CHECK_INT(atomic_load(&cfg->refs), 2);
	sy_config_unref(cfg);
	SY_CHECK_INT(atomic_load(&cfg->refs), 1);
	sy_config_unref(cfg);
}

SY_TEST(endpoint_stats_are_shared_across_snapshots_by_name)
{
	struct sy_config *a = load(TWO_SIMS("sim0", "sim1"));
	struct sy_config *b = load(TWO_SIMS("sim1", "sim0"));
	struct sy_endpoint_stats *st;

	SY_CHECK(a != NULL && b != NULL);
	if (a == NULL || b == NULL) {
		sy_config_unref(a);
		sy_config_unref(b);
		return;
	}
	st = a->endpoints[0].stats;
	SY_CHECK(st == b->endpoints[1].stats);
	SY_CHECK(a->endpoints[1].stats == b->endpoints[0].stats);
	SY_CHECK(st != a->endpoints[1].stats);
	SY_CHECK_STR(st->name, "sim0");
	SY_CHECK_INT(atomic_load(&st->refs), 2);
	atomic_fetch_add(&a->endpoints[0].stats->in_flight, 3);
	SY_CHECK_INT(atomic_load(&b->endpoints[1].stats->in_flight), 3);
	sy_config_unref(a);
	SY_CHECK_INT(atomic_load(&st->refs), 1);
	SY_CHECK_INT(atomic_load(&st->in_flight), 3);
	sy_config_unref(b);
}

/* Picks n times from the first pool of cfg; returns how often it took name. */
static int
picks_of(struct sy_config *cfg, const char *name, int n)
{
	const struct sy_pool *pool = &cfg->routes[0].pools[0];
	const struct sy_endpoint *ep;
	struct sy_req req;
	const char *reason;
	int i, k = 0;

	memset(&req, 0, sizeof req);
	for (i = 0; i < n; i++) {
		ep = cfg->routes[0].policy->pick(pool->policy_state, pool, &req,
		    &reason);
		k += ep != NULL && strcmp(ep->name, name) == 0;
	}
	return k;
}

SY_TEST(p2c_ewma_remembers_latencies_across_a_reload)
{
	const char *text = "{\"backends\": [{\"name\": \"slow\", \"url\": "
	    "\"http://127.0.0.1:9001\"}, {\"name\": \"fast\", \"url\": "
	    "\"http://127.0.0.1:9002\"}], \"routes\": [{\"name\": \"r\", "
	    "\"models\": [\"*\"], \"policy\": \"p2c_ewma\"}]}";
	struct sy_config *a = load(text), *b;
	struct sy_outcome slow = { .status = 200, .latency_us = 900000 };
	struct sy_outcome fast = { .status = 200, .latency_us = 1000 };
	struct sy_pool *pool;

	SY_CHECK(a != NULL);
	if (a == NULL)
		return;
	pool = &a->routes[0].pools[0];
	a->routes[0].policy->observe(pool->policy_state, &a->endpoints[0],
	    &slow);
	a->routes[0].policy->observe(pool->policy_state, &a->endpoints[1],
	    &fast);
	SY_CHECK_INT(picks_of(a, "fast", 20), 20);
	b = load(text);
	sy_config_unref(a);
	SY_CHECK(b != NULL);
	if (b == NULL)
		return;
	SY_CHECK_INT(picks_of(b, "fast", 20), 20);
	sy_config_unref(b);
}

SY_TEST(endpoint_stats_are_freed_with_the_last_snapshot)
{
	struct sy_config *a = load(TWO_SIMS("sim0", "sim1")), *b;

	SY_CHECK(a != NULL);
	if (a == NULL)
		return;
	atomic_store(&a->endpoints[0].stats->in_flight, 5);
	sy_config_unref(a);
	b = load(TWO_SIMS("sim0", "sim1"));
	SY_CHECK(b != NULL);
	if (b == NULL)
		return;
	SY_CHECK_INT(atomic_load(&b->endpoints[0].stats->in_flight), 0);
	SY_CHECK_INT(atomic_load(&b->endpoints[0].stats->refs), 1);
	sy_config_unref(b);
}

SY_TEST(failed_load_leaves_shared_stats_alone)
{
	struct sy_config *a = load(TWO_SIMS("sim0", "sim1"));
	char *err;

	SY_CHECK(a != NULL);
	if (a == NULL)
		return;
	err = load_error(
	    "{\"backends\": [{\"name\": \"sim0\", \"url\": "
	    "\"http://127.0.0.1:9001\"}], \"routes\": [{\"name\": \"r\", "
	    "\"models\": [\"*\"], \"policy\": {\"name\": \"round_robin\", "
	    "\"x\": 1}}]}");
	SY_CHECK(err != NULL);
	free(err);
	SY_CHECK_INT(atomic_load(&a->endpoints[0].stats->refs), 1);
	sy_config_unref(a);
}

/* ==== Zero-config ==== */

SY_TEST(upstreams_build_one_wildcard_route_over_all)
{
	const char *urls[] = { "http://127.0.0.1:9001/v1", "https://127.0.0.1/v1" };
	struct sy_config *cfg = NULL;
	struct sy_pool *pool;
	char *err = NULL, buf[64];

	SY_CHECK_INT(sy_config_from_upstreams(urls, 2, NULL, NULL, NULL, NULL,
	    NULL, &cfg, &err), 0);
	if (cfg == NULL) {
		printf("# %s\n", err);
		free(err);
		return;
	}
	SY_CHECK(cfg->path == NULL);
	SY_CHECK_STR(cfg->listen, "127.0.0.1:8080");
	SY_CHECK_STR(cfg->admin, "127.0.0.1:8081");
	SY_CHECK_STR(cfg->access_log, "stdout");
	SY_CHECK_INT(cfg->timeouts.total_ms, 600000);
	SY_CHECK_INT(cfg->nendpoints, 2);
	SY_CHECK_STR(cfg->endpoints[0].name, "u0");
	SY_CHECK_STR(cfg->endpoints[1].name, "u1");
	SY_CHECK(cfg->endpoints[0].kind == sy_backend_kind_find("openai"));
	SY_CHECK_INT(cfg->endpoints[0].nmodels, 0);
	SY_CHECK_INT(cfg->endpoints[1].port, 443);
	SY_CHECK_INT(cfg->nroutes, 1);
	SY_CHECK_STR(cfg->routes[0].name, "default");
	SY_CHECK(cfg->routes[0].wildcard);
	SY_CHECK(cfg->routes[0].policy == sy_route_policy_find("round_robin"));
	SY_CHECK(sy_config_route(cfg, "any-model") == &cfg->routes[0]);
	pool = sy_route_pool(&cfg->routes[0], NULL);
	SY_CHECK_STR(pool_names(pool, buf, sizeof buf), "u0,u1");
	sy_config_unref(cfg);
}

SY_TEST(upstreams_take_listen_admin_and_access_log)
{
	const char *urls[] = { "http://127.0.0.1:9001/v1" };
	struct sy_config *cfg = NULL;
	char *err = NULL;

	SY_CHECK_INT(sy_config_from_upstreams(urls, 1, "127.0.0.1:9090",
	    "[::1]:9091", "/tmp/sy-access.log", NULL, NULL, &cfg, &err), 0);
	if (cfg == NULL) {
		printf("# %s\n", err);
		free(err);
		return;
	}
	SY_CHECK_STR(cfg->listen, "127.0.0.1:9090");
	SY_CHECK_STR(cfg->admin, "[::1]:9091");
	SY_CHECK_STR(cfg->access_log, "/tmp/sy-access.log");
	sy_config_unref(cfg);
}

SY_TEST(upstream_with_bad_url_names_the_flag)
{
	const char *urls[] = { "http://127.0.0.1:9001/v1", "ftp://127.0.0.1/v1",
	    "http://u:p@127.0.0.1/v1" };
	struct sy_config *cfg;
	char *err = NULL;

	SY_CHECK_INT(sy_config_from_upstreams(urls, 3, NULL, NULL, NULL, NULL,
	    NULL, &cfg, &err), -1);
	SY_CHECK(cfg == NULL);
	SY_CHECK_STR(err, "--upstream ftp://127.0.0.1/v1: unsupported scheme "
	    "\"ftp\"; use http or https\n"
	    "--upstream http://u:p@127.0.0.1/v1: user info (user@host) is not "
	    "allowed in the URL; name the API key's variable in "
	    "\"api_key_env\"");
	free(err);
}

SY_TEST(upstream_mode_with_bad_listen_names_the_flag)
{
	const char *urls[] = { "http://127.0.0.1:9001/v1" };
	struct sy_config *cfg;
	char *err = NULL;

	SY_CHECK_INT(sy_config_from_upstreams(urls, 1, "nowhere", NULL, NULL,
	    NULL, NULL, &cfg, &err), -1);
	SY_CHECK_STR(err, "--listen nowhere: expected HOST:PORT or "
	    "[IPv6]:PORT");
	free(err);
	SY_CHECK_INT(sy_config_from_upstreams(urls, 1, "127.0.0.1:8081", NULL,
	    NULL, NULL, NULL, &cfg, &err), -1);
	SY_CHECK_STR(err, "--admin 127.0.0.1:8081 (the default): the admin "
	    "listener needs an address of its own; listen is 127.0.0.1:8081 "
	    "too");
	free(err);
}

SY_TEST(upstream_mode_needs_an_upstream)
{
	struct sy_config *cfg;
	char *err = NULL;

	SY_CHECK_INT(sy_config_from_upstreams(NULL, 0, NULL, NULL, NULL, NULL,
	    NULL, &cfg, &err), -1);
	SY_CHECK_STR(err, "--upstream: give at least one backend URL");
	free(err);
}

int
main(void)
{
	SY_RUN(default_config_file_loads);
	SY_RUN(default_config_aliases_map_to_served_models);
	SY_RUN(example_config_is_valid_apart_from_name_resolution);
	SY_RUN(lab_example_config_is_valid);
	SY_RUN(tenants_example_config_is_valid);
	SY_RUN(unreadable_file_reports_path_and_reason);
	SY_RUN(file_errors_name_the_file);

	SY_RUN(hash_and_slash_comments_are_ignored);
	SY_RUN(comment_markers_inside_strings_are_kept);
	SY_RUN(comments_keep_error_positions);
	SY_RUN(cors_is_off_by_default_and_needs_origins_when_given);
	SY_RUN(tls_is_off_by_default_and_needs_readable_files_when_given);
	SY_RUN(upstream_mode_tls_flags_name_the_flag);
	SY_RUN(access_log_flush_ms_is_read_and_bounded);
	SY_RUN(positions_count_characters_not_bytes);

	SY_RUN(omitted_keys_take_their_defaults);
	SY_RUN(every_setting_is_read);
	SY_RUN(admin_null_disables_the_admin_listener);

	SY_RUN(syntax_error_reports_jansson_position);
	SY_RUN(duplicate_keys_are_rejected);
	SY_RUN(top_level_must_be_an_object);
	SY_RUN(missing_backends_is_reported_at_the_top_level);
	SY_RUN(empty_backends_is_rejected);
	SY_RUN(missing_routes_is_rejected);
	SY_RUN(wrong_type_names_the_expected_type);
	SY_RUN(integer_out_of_range_is_rejected);
	SY_RUN(zero_timeout_is_rejected);
	SY_RUN(unknown_keys_are_rejected_at_every_level);
	SY_RUN(several_errors_are_reported_in_file_order);

	SY_RUN(listen_without_port_is_rejected);
	SY_RUN(listen_accepts_ipv6_in_brackets);
	SY_RUN(parse_hostport_rejects_malformed_addresses);
	SY_RUN(admin_must_not_share_the_listen_address);

	SY_RUN(backend_without_name_is_reported_at_the_backend);
	SY_RUN(duplicate_backend_names_are_rejected);
	SY_RUN(url_with_unsupported_scheme_is_rejected);
	SY_RUN(url_without_scheme_is_rejected);
	SY_RUN(url_with_user_info_is_rejected);
	SY_RUN(url_with_query_or_fragment_is_rejected);
	SY_RUN(url_with_empty_host_is_rejected);
	SY_RUN(url_with_bad_port_is_rejected);
	SY_RUN(url_host_that_does_not_resolve_is_rejected);
	SY_RUN(url_parts_are_split);
	SY_RUN(url_without_path_has_empty_base_path);
	SY_RUN(https_url_defaults_to_port_443);
	SY_RUN(ipv6_url_host_is_kept_without_brackets);
	SY_RUN(ipv6_url_needs_an_ipv6_literal_in_brackets);
	SY_RUN(unknown_backend_kind_lists_the_known_kinds);
	SY_RUN(backend_models_cannot_be_a_wildcard);
	SY_RUN(negative_weight_is_rejected);
	SY_RUN(api_key_in_the_file_is_rejected_with_a_hint);
	SY_RUN(api_key_env_reads_the_key_at_load);
	SY_RUN(api_key_env_unset_is_rejected);
	SY_RUN(api_key_env_empty_is_rejected);
	SY_RUN(api_version_is_read_for_azure);
	SY_RUN(api_version_is_refused_for_other_kinds);
	SY_RUN(tls_settings_are_read_for_https);
	SY_RUN(tls_settings_on_an_http_url_are_rejected);
	SY_RUN(unreadable_ca_file_is_rejected);

	SY_RUN(route_without_models_is_rejected);
	SY_RUN(duplicate_route_names_are_rejected);
	SY_RUN(wildcard_must_be_alone_in_its_route);
	SY_RUN(only_one_wildcard_route_is_allowed);
	SY_RUN(model_served_by_two_routes_is_rejected);
	SY_RUN(model_no_backend_serves_is_rejected);
	SY_RUN(model_no_listed_backend_serves_is_rejected);
	SY_RUN(route_backend_must_exist);
	SY_RUN(route_backend_listed_twice_is_rejected);
	SY_RUN(route_backend_serving_none_of_its_models_is_rejected);
	SY_RUN(alias_equal_to_a_served_model_is_rejected);
	SY_RUN(alias_defined_by_two_routes_is_rejected);
	SY_RUN(alias_target_must_be_a_model_of_the_route);
	SY_RUN(wildcard_route_cannot_have_aliases);
	SY_RUN(alias_keys_that_need_quoting_get_a_quoted_path);
	SY_RUN(unknown_policy_lists_the_known_policies);
	SY_RUN(unknown_policy_in_object_form_points_at_its_name);
	SY_RUN(policy_object_needs_a_name);
	SY_RUN(policy_parameters_reach_the_policy);
	SY_RUN(unknown_selection_policy_lists_the_known_ones);
	SY_RUN(selection_parameters_reach_the_policy);

	SY_RUN(pools_hold_the_backends_serving_each_model);
	SY_RUN(route_backends_restrict_and_order_its_pools);
	SY_RUN(unknown_model_goes_to_the_wildcard_route);
	SY_RUN(wildcard_route_defaults_to_every_backend);
	SY_RUN(unknown_model_without_wildcard_route_has_no_route);
	SY_RUN(model_names_list_models_and_aliases_in_config_order);

	SY_RUN(prices_are_read_and_cached_input_defaults_to_input);
	SY_RUN(price_without_output_is_rejected);
	SY_RUN(hourly_price_is_read_with_its_defaults);
	SY_RUN(hourly_price_has_no_price_per_token);
	SY_RUN(negative_price_is_rejected);
	SY_RUN(price_for_an_alias_is_rejected);
	SY_RUN(price_for_a_model_no_route_serves_is_rejected);

	SY_RUN(new_keys_take_their_defaults);
	SY_RUN(deadline_defaults_to_the_total_timeout);
	SY_RUN(empty_health_and_metrics_objects_turn_them_on_with_defaults);
	SY_RUN(every_health_and_metrics_key_is_read);
	SY_RUN(every_retry_ejection_queue_and_deadline_key_is_read);
	SY_RUN(retries_max_zero_turns_retries_off);
	SY_RUN(fractions_accept_integers);
	SY_RUN(zero_config_route_gets_the_defaults);
	SY_RUN(unknown_keys_in_the_new_objects_are_rejected);
	SY_RUN(health_must_be_an_object);
	SY_RUN(health_path_must_start_with_a_slash);
	SY_RUN(health_path_must_not_contain_spaces);
	SY_RUN(health_timeout_must_be_below_the_interval);
	SY_RUN(health_thresholds_are_from_1_to_100);
	SY_RUN(metrics_interval_is_at_least_50_ms);
	SY_RUN(metrics_path_must_start_with_a_slash);
	SY_RUN(retries_max_is_at_most_seven);
	SY_RUN(retry_budget_must_be_a_number_from_0_to_1);
	SY_RUN(unknown_retry_condition_lists_the_known_ones);
	SY_RUN(retry_conditions_are_strings_listed_once);
	SY_RUN(retry_backoff_is_at_most_its_maximum);
	SY_RUN(ejection_fractions_are_from_0_to_1);
	SY_RUN(ejection_cooldown_is_at_most_its_maximum);
	SY_RUN(queue_max_is_at_most_100000);
	SY_RUN(a_route_without_batch_does_not_batch);
	SY_RUN(batch_keys_take_their_defaults);
	SY_RUN(every_batch_key_is_read);
	SY_RUN(batch_values_out_of_range_are_rejected);
	SY_RUN(batch_unknown_keys_and_policies_are_rejected);
	SY_RUN(batch_policy_parameters_are_checked);
	SY_RUN(batch_is_refused_where_answers_are_checked);
	SY_RUN(batch_must_be_an_object);
	SY_RUN(cache_keys_take_their_defaults);
	SY_RUN(a_route_cache_object_turns_the_cache_on);
	SY_RUN(every_cache_key_is_read);
	SY_RUN(redis_defaults_to_the_local_port_or_a_unix_socket);
	SY_RUN(bad_route_cache_keys_are_reported);
	SY_RUN(bad_cache_store_keys_are_reported);
	SY_RUN(deadline_is_from_1_ms_to_a_day);
	SY_RUN(fallbacks_keep_models_and_aliases_of_other_routes);
	SY_RUN(fallback_route_name_stands_for_its_first_model);
	SY_RUN(fallbacks_may_loop_between_routes);
	SY_RUN(fallback_to_a_name_only_the_wildcard_route_takes_is_kept);
	SY_RUN(fallback_must_go_to_another_route);
	SY_RUN(unknown_fallback_is_rejected);
	SY_RUN(duplicate_fallbacks_are_rejected);
	SY_RUN(at_most_eight_fallbacks);
	SY_RUN(fallback_to_the_wildcard_route_needs_a_model_name);
	SY_RUN(fallbacks_are_an_array_of_names);

	SY_RUN(snapshot_references_are_counted);
	SY_RUN(endpoint_stats_are_shared_across_snapshots_by_name);
	SY_RUN(p2c_ewma_remembers_latencies_across_a_reload);
	SY_RUN(endpoint_stats_are_freed_with_the_last_snapshot);
	SY_RUN(failed_load_leaves_shared_stats_alone);

	SY_RUN(upstreams_build_one_wildcard_route_over_all);
	SY_RUN(upstreams_take_listen_admin_and_access_log);
	SY_RUN(upstream_with_bad_url_names_the_flag);
	SY_RUN(upstream_mode_with_bad_listen_names_the_flag);
	SY_RUN(upstream_mode_needs_an_upstream);
	SY_RUN(selection_rule_model_must_be_served_by_the_route);
	SY_RUN(selection_bad_regex_is_reported_at_its_key);
	SY_RUN(selection_rule_needs_a_condition);
	SY_RUN(selection_weighted_needs_a_positive_weight);
	SY_RUN(selection_cascade_refusal_check_needs_a_pattern);
	SY_RUN(selection_cascade_lists_known_checks);
	SY_RUN(selection_cost_slo_needs_a_price_per_model);
	SY_RUN(selection_policies_need_named_models);
	SY_RUN(models_context_length_is_read);
	SY_RUN(models_entries_name_served_models_with_a_context_length);
	return sy_test_done();
}
