/* Reads an inference server's load figures from its Prometheus /metrics text. */
#ifndef SY_PROMTEXT_H
#define SY_PROMTEXT_H

#include <stddef.h>

/* Load figures of one server; -1 when the text did not give one. */
struct sy_load_figures {
	long running;		/* sequences running */
	long waiting;		/* requests queued */
	int kv_permille;	/* KV-cache usage × 1000 (0..1000) */
	long kv_tokens;		/* KV-cache capacity in tokens */
};

/*
 * Reads the load figures from Prometheus text (len bytes, need not be
 * NUL-terminated), knowing the names of vLLM (vllm:num_requests_running,
 * vllm:num_requests_waiting, vllm:kv_cache_usage_perc, or the older
 * vllm:gpu_cache_usage_perc), SGLang (sglang:num_running_reqs,
 * sglang:num_queue_reqs, sglang:token_usage) and llama.cpp
 * (llamacpp:requests_processing, llamacpp:requests_deferred,
 * llamacpp:kv_cache_usage_ratio).  Samples of one metric with several
 * label sets (several models) are summed; usage ratios are averaged.
 * The capacity is vLLM's vllm:cache_config_info labels num_gpu_blocks ×
 * block_size, or SGLang's sglang:max_total_num_tokens.
 * Returns 1 when at least one figure was found, else 0.
 */
int sy_promtext_load(const char *text, size_t len, struct sy_load_figures *out);

#endif
