/* sy-sim: what a prefix-aware router reads of a replica's prefix cache: its size in the metrics (as vLLM's cache_config_info), and flushing it on demand (a cache restart). */
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "sim.h"

/*
 * Serves POST /sim/cache/flush: the replica forgets every block of its
 * prefix cache, as an engine that restarted (jobs under way go on; the
 * request log and counters stay).  Returns 1 when path was this one.
 */
int
sim_prefix_admin(struct sim_replica *r, struct evhttp_request *req,
    const char *path)
{
	unsigned	 blocks;

	if (strcmp(path, "/sim/cache/flush") != 0)
		return (0);
	if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
		evbuffer_add_printf(r->out, "{\"error\":{\"message\":"
		    "\"method not allowed\",\"type\":"
		    "\"invalid_request_error\"}}");
		sim_reply(req, 405, "application/json", r->out);
		return (1);
	}
	blocks = sim_cache_blocks(r->cache);
	sim_cache_clear(r->cache);
	evbuffer_add_printf(r->out, "{\"status\":\"ok\",\"blocks_dropped\":%u}",
	    blocks);
	sim_reply(req, 200, "application/json", r->out);
	return (1);
}

/*
 * Appends the prefix cache's size to the metrics text out: vLLM's
 * vllm:cache_config_info (its block_size and num_gpu_blocks labels, so
 * that a router reads the capacity as it reads vLLM's), and the blocks
 * held now.
 */
void
sim_prefix_metrics(struct sim_replica *r, struct evbuffer *out)
{
	evbuffer_add_printf(out, "# HELP vllm:cache_config_info Information "
	    "of the LLMEngine CacheConfig\n# TYPE vllm:cache_config_info gauge\n"
	    "vllm:cache_config_info{block_size=\"%u\",enable_prefix_caching="
	    "\"%s\",num_gpu_blocks=\"%u\"} 1.0\n", r->p.block_tokens,
	    r->p.cache_tokens > 0 ? "True" : "False",
	    r->p.cache_tokens / r->p.block_tokens);
	evbuffer_add_printf(out, "# HELP sy_sim_prefix_cache_blocks Blocks "
	    "the prefix cache holds now.\n# TYPE sy_sim_prefix_cache_blocks "
	    "gauge\nsy_sim_prefix_cache_blocks %u\n", sim_cache_blocks(r->cache));
}
