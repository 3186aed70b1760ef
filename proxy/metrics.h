/* Metrics: per-worker shards of per-route and per-endpoint counters and histograms, merged when scraped. */
#ifndef SY_METRICS_H
#define SY_METRICS_H

#include <stdatomic.h>

#include <jansson.h>

#include "policy.h"
#include "record.h"

struct evbuffer;
struct sy_config;
struct sy_metrics;
struct sy_metrics_shard;

/* Creates the metrics of a process with nshards shards (one per worker). */
struct sy_metrics *sy_metrics_new(unsigned nshards);

/*
 * Has m report *conns (the open client connections over all workers,
 * which the caller keeps alive longer than m) as a gauge.
 */
void sy_metrics_set_conns(struct sy_metrics *m, atomic_uint *conns);

/*
 * Sets the length of m's self-hosted accounting intervals, from the next
 * one on (see hourly.h); any thread.
 */
void sy_metrics_set_accounting_interval(struct sy_metrics *m,
    unsigned interval_ms);

/* Frees m and its shards (after every worker stopped). */
void sy_metrics_free(struct sy_metrics *m);

/* Shard i of m, for the worker that owns it. */
struct sy_metrics_shard *sy_metrics_shard(struct sy_metrics *m, unsigned i);

/*
 * Counts one finished request in shard s (worker thread only): under its
 * route (or "-" when none matched) and its endpoint (when one was picked):
 * requests by status code, errors (status ≥ 400), prompt/completion/cached
 * tokens, cost, total latency, overhead and (streams) TTFT histograms.
 */
void sy_metrics_record(struct sy_metrics_shard *s, const struct sy_record *r);

/*
 * Counts one batch a route's batcher sent (its inputs and why it went)
 * in shard s; called where the batch is answered, whoever its members are.
 */
void sy_metrics_record_batch(struct sy_metrics_shard *s, const char *route,
    unsigned inputs, enum sy_flush reason);

/*
 * Appends every metric, merged over the shards, in the Prometheus text
 * format (0.0.4) to out.  cfg, when not NULL, adds the in-flight gauge of
 * each of its endpoints.  Any thread.
 */
void sy_metrics_prometheus(struct sy_metrics *m, const struct sy_config *cfg,
    struct evbuffer *out);

/*
 * Returns a new JSON object {"routes": {name: {...}}, "endpoints": {...}}
 * with counts, tokens, cost, error counts and p50/p90/p99 of latency, TTFT
 * and overhead in ms, merged over the shards.  Any thread.
 */
json_t *sy_metrics_json(struct sy_metrics *m, const struct sy_config *cfg);

/* Appends s to out as a Prometheus label value (backslash, quote and newline escaped). */
void sy_metrics_put_label(struct evbuffer *out, const char *s);

#endif
