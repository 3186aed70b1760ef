/* bench/prefix/score: what prefix_aware's pick costs, in µs per request, for prompts of 1k, 10k and 100k tokens over pools of 4 and 64 endpoints. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "policy.h"
#include "req.h"
#include "util.h"

#define MAXEP 64

/* A prompt of about tokens tokens (4 bytes each: "w123" and a space). */
static char *
prompt(size_t tokens, unsigned seed)
{
	char *s = sy_xmalloc(tokens * 8 + 16), *p = s;
	size_t i;

	for (i = 0; p - s < (long)(tokens * 4); i++)
		p += sprintf(p, "%c%03zu ", 'a' + (char)((seed + i) % 26),
		    i % 1000);
	*p = '\0';
	return s;
}

/*
 * Times n picks of a chat request of a prompt of tokens tokens on a pool
 * of neps endpoints, the prompt held by one endpoint (held = 1) or by
 * every one (held = neps).  Returns µs per pick.
 */
static double
measure(size_t neps, size_t tokens, size_t held, unsigned n)
{
	static struct sy_endpoint_stats stats[MAXEP];
	static struct sy_endpoint eps[MAXEP];
	static struct sy_endpoint *ptrs[MAXEP];
	static char names[MAXEP][8];
	const struct sy_route_policy *p = sy_route_policy_find("prefix_aware");
	struct sy_route route = { .name = "bench" };
	struct sy_pool pool = { .route = &route, .model = "m",
	    .endpoints = ptrs, .nendpoints = neps };
	json_t *params = json_pack("{s:I, s:b}", "cache_tokens",
	    (json_int_t)(tokens * 4), "share", 0);
	struct sy_req req;
	const char *reason;
	char *text = prompt(tokens, 7), *err = NULL;
	uint64_t t0;
	void *st;
	size_t i;
	unsigned k;

	for (i = 0; i < neps; i++) {
		snprintf(names[i], sizeof names[i], "e%zu", i);
		sy_endstats_init(&stats[i], names[i]);
		memset(&eps[i], 0, sizeof eps[i]);
		eps[i].index = i;
		eps[i].name = names[i];
		eps[i].weight = 1;
		eps[i].stats = &stats[i];
		ptrs[i] = &eps[i];
	}
	if ((st = p->create(params, &pool, &err)) == NULL) {
		fprintf(stderr, "score: %s\n", err);
		exit(1);
	}
	memset(&req, 0, sizeof req);
	req.api = SY_API_CHAT;
	req.body = json_pack("{s:s, s:[{s:s, s:s}, {s:s, s:s}]}", "model", "m",
	    "messages", "role", "system", "content", text, "role", "user",
	    "content", "and now?");
	/* Place it on the first held endpoints: the others look busier. */
	for (i = 0; i < neps; i++)
		atomic_store(&stats[i].in_flight, 1000);
	for (i = 0; i < held; i++) {
		atomic_store(&stats[i].in_flight, 0);
		p->pick(st, &pool, &req, &reason);
		atomic_store(&stats[i].in_flight, 1000);
	}
	for (i = 0; i < neps; i++)
		atomic_store(&stats[i].in_flight, 0);
	t0 = sy_now_us();
	for (k = 0; k < n; k++)
		p->pick(st, &pool, &req, &reason);
	t0 = sy_now_us() - t0;
	p->destroy(st);
	json_decref(req.body);
	json_decref(params);
	free(text);
	return (double)t0 / n;
}

int
main(void)
{
	static const size_t sizes[] = { 1000, 10000, 100000 };
	static const size_t pools[] = { 4, 64 };
	size_t i, j;
	unsigned n;

	printf("| prompt tokens | endpoints | µs/pick, held by one | µs/pick, "
	    "held by all |\n|---:|---:|---:|---:|\n");
	for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
		for (j = 0; j < sizeof pools / sizeof pools[0]; j++) {
			n = sizes[i] >= 100000 ? 200 : sizes[i] >= 10000 ?
			    2000 : 20000;
			printf("| %zu | %zu | %.1f | %.1f |\n", sizes[i],
			    pools[j], measure(pools[j], sizes[i], 1, n),
			    measure(pools[j], sizes[i], pools[j], n));
		}
	return 0;
}
