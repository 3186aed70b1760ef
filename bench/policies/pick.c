/* bench/policies/pick: the time each routing policy takes to pick an endpoint, for pools of 4 to 1,000 endpoints, and each selection policy to select a model. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "config.h"
#include "endstats.h"
#include "policy.h"
#include "req.h"
#include "util.h"

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A request of the chat API with a prompt of about words words. */
static struct sy_req *
request(size_t words)
{
	static struct sy_req req;
	struct evbuffer *raw = evbuffer_new();
	char *err = NULL;
	size_t i;
	int status;

	memset(&req, 0, sizeof req);
	evbuffer_add_printf(raw, "{\"model\":\"m\",\"messages\":[{\"role\":"
	    "\"system\",\"content\":\"You are a helpful assistant.\"},"
	    "{\"role\":\"user\",\"content\":\"");
	for (i = 0; i < words; i++)
		evbuffer_add_printf(raw, "word%zu ", i % 977);
	evbuffer_add_printf(raw, "\"}]}");
	req.api = SY_API_CHAT;
	if (sy_req_parse(&req, raw, 64, &status, &err) != 0) {
		fprintf(stderr, "pick: %s\n", err);
		exit(1);
	}
	req.model = req.client_model;
	snprintf(req.id, sizeof req.id, "bench");
	return &req;
}

/* ns per pick of policy p over a pool of n endpoints, for req. */
static double
time_picks(const struct sy_route_policy *p, size_t n, const struct sy_req *req,
    unsigned rounds)
{
	struct sy_endpoint_stats *stats = sy_xcalloc(n, sizeof *stats);
	struct sy_endpoint *eps = sy_xcalloc(n, sizeof *eps);
	struct sy_endpoint **ptrs = sy_xcalloc(n, sizeof *ptrs);
	struct sy_outcome oc = { .status = 200, .latency_us = 1000 };
	struct sy_pool pool;
	struct sy_endpoint *ep;
	const char *reason;
	json_t *params = json_object();
	char *err = NULL, name[32];
	uint64_t t0, t;
	void *st;
	size_t i;
	unsigned r;

	for (i = 0; i < n; i++) {
		snprintf(name, sizeof name, "ep%zu", i);
		sy_endstats_init(&stats[i], name);
		eps[i].index = i;
		eps[i].name = sy_xstrdup(name);
		eps[i].weight = 1 + i % 3;
		eps[i].stats = &stats[i];
		ptrs[i] = &eps[i];
	}
	memset(&pool, 0, sizeof pool);
	pool.endpoints = ptrs;
	pool.nendpoints = n;
	st = p->create(params, &pool, &err);
	if (err != NULL) {
		fprintf(stderr, "pick: %s: %s\n", p->name, err);
		exit(1);
	}
	/* Warm: every endpoint observed, so learning policies have state. */
	for (i = 0; i < n && p->observe != NULL; i++)
		p->observe(st, &eps[i], &oc);
	t0 = now_ns();
	for (r = 0; r < rounds; r++) {
		ep = p->pick(st, &pool, req, &reason);
		if (ep != NULL && p->observe != NULL) {
			oc.latency_us = 500 + r % 1000;
			p->observe(st, ep, &oc);
		}
	}
	t = now_ns() - t0;
	if (p->destroy != NULL)
		p->destroy(st);
	for (i = 0; i < n; i++)
		free(eps[i].name);
	free(eps);
	free(stats);
	free(ptrs);
	json_decref(params);
	return (double)t / rounds;
}

int
main(int argc, char **argv)
{
	static const size_t sizes[] = { 4, 16, 100, 1000 };
	static const size_t prompts[] = { 1000, 10000, 100000 };
	unsigned rounds = argc > 1 ? (unsigned)atoi(argv[1]) : 200000;
	const struct sy_route_policy *p;
	struct sy_req *req;
	double ns[4];
	size_t i, j;

	req = request(200);
	printf("Routing: ns per pick (and observe), prompt of ~200 words, %u picks each\n\n",
	    rounds);
	printf("| policy | 4 | 16 | 100 | 1000 | 1000 / 4 |\n|---|--:|--:|--:|--:|--:|\n");
	for (i = 0; (p = sy_route_policy_at(i)) != NULL; i++) {
		for (j = 0; j < 4; j++)
			ns[j] = time_picks(p, sizes[j], req, rounds);
		printf("| %s | %.0f | %.0f | %.0f | %.0f | %.1f× |\n", p->name,
		    ns[0], ns[1], ns[2], ns[3], ns[3] / ns[0]);
	}
	printf("\nPrompt length: ns per pick over 16 endpoints\n\n");
	printf("| policy | 1k words | 10k words | 100k words |\n|---|--:|--:|--:|\n");
	for (i = 0; (p = sy_route_policy_at(i)) != NULL; i++) {
		printf("| %s", p->name);
		for (j = 0; j < 3; j++) {
			req = request(prompts[j]);
			printf(" | %.0f", time_picks(p, 16, req,
			    rounds / (unsigned)(prompts[j] / 1000)));
		}
		printf(" |\n");
	}
	return 0;
}
