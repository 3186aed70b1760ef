/* Unit tests of the Prometheus text reader: the load figures of vLLM, SGLang and llama.cpp. */
#include <string.h>

#include "promtext.h"
#include "sy_test.h"

/* Reads text (NUL-terminated); returns what sy_promtext_load returned. */
static int
load(const char *text, struct sy_load_figures *out)
{
	return sy_promtext_load(text, strlen(text), out);
}

SY_TEST(llama_cpp_server_metrics_give_processing_and_deferred)
{
	struct sy_load_figures lf;
	size_t len;
	char *text = sy_test_fixture("llama-server/metrics.txt", &len);

	SY_CHECK_INT(sy_promtext_load(text, len, &lf), 1);
	SY_CHECK_INT(lf.running, 0);
	SY_CHECK_INT(lf.waiting, 0);
	SY_CHECK_INT(lf.kv_permille, -1);	/* this build does not export it */
	free(text);
}

SY_TEST(llama_cpp_kv_cache_ratio_is_read_when_present)
{
	struct sy_load_figures lf;

	SY_CHECK_INT(load("# HELP llamacpp:kv_cache_usage_ratio KV-cache usage. 1 = 100 percent usage\n"
	    "# TYPE llamacpp:kv_cache_usage_ratio gauge\n"
	    "llamacpp:kv_cache_usage_ratio 0.3125\n"
	    "llamacpp:requests_processing 3\n"
	    "llamacpp:requests_deferred 2\n", &lf), 1);
	SY_CHECK_INT(lf.running, 3);
	SY_CHECK_INT(lf.waiting, 2);
	SY_CHECK_INT(lf.kv_permille, 313);
}

static const char vllm_two_models[] =
    "# HELP vllm:num_requests_running Number of requests in model execution batches.\n"
    "# TYPE vllm:num_requests_running gauge\n"
    "vllm:num_requests_running{engine=\"0\",model_name=\"llama-3-8b\"} 5.0\n"
    "vllm:num_requests_running{engine=\"0\",model_name=\"qwen2-7b\"} 2.0\n"
    "# HELP vllm:num_requests_waiting Number of requests waiting to be processed.\n"
    "# TYPE vllm:num_requests_waiting gauge\n"
    "vllm:num_requests_waiting{engine=\"0\",model_name=\"llama-3-8b\"} 3.0 1717171717000\n"
    "vllm:num_requests_waiting{engine=\"0\",model_name=\"qwen2-7b\"} 1.0 1717171717000\n"
    "# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.\n"
    "# TYPE vllm:kv_cache_usage_perc gauge\n"
    "vllm:kv_cache_usage_perc{engine=\"0\",model_name=\"llama-3-8b\"} 0.5\n"
    "vllm:kv_cache_usage_perc{engine=\"0\",model_name=\"qwen2-7b\"} 0.25\n"
    "# HELP vllm:time_to_first_token_seconds Histogram of time to first token in seconds.\n"
    "# TYPE vllm:time_to_first_token_seconds histogram\n"
    "vllm:time_to_first_token_seconds_bucket{le=\"0.001\",model_name=\"llama-3-8b\"} 0.0\n"
    "vllm:time_to_first_token_seconds_count{model_name=\"llama-3-8b\"} 12.0\n";

SY_TEST(vllm_sums_requests_over_models_and_averages_kv_usage)
{
	struct sy_load_figures lf;

	SY_CHECK_INT(load(vllm_two_models, &lf), 1);
	SY_CHECK_INT(lf.running, 7);
	SY_CHECK_INT(lf.waiting, 4);
	SY_CHECK_INT(lf.kv_permille, 375);
}

SY_TEST(vllm_older_gpu_cache_name_is_read_when_the_new_is_absent)
{
	struct sy_load_figures lf;

	SY_CHECK_INT(load("vllm:gpu_cache_usage_perc{model_name=\"x\"} 0.8\n", &lf), 1);
	SY_CHECK_INT(lf.kv_permille, 800);
	SY_CHECK_INT(lf.running, -1);
	SY_CHECK_INT(lf.waiting, -1);
	/* A server that exports both names counts the new one only. */
	SY_CHECK_INT(load("vllm:kv_cache_usage_perc{model_name=\"x\"} 0.2\n"
	    "vllm:gpu_cache_usage_perc{model_name=\"x\"} 0.2\n", &lf), 1);
	SY_CHECK_INT(lf.kv_permille, 200);
}

SY_TEST(sglang_gives_running_queued_and_token_usage)
{
	struct sy_load_figures lf;

	SY_CHECK_INT(load("# HELP sglang:num_running_reqs The number of running requests.\n"
	    "# TYPE sglang:num_running_reqs gauge\n"
	    "sglang:num_running_reqs{model_name=\"meta-llama/Llama-3.1-8B-Instruct\"} 12.0\n"
	    "# HELP sglang:num_queue_reqs The number of requests in the waiting queue.\n"
	    "# TYPE sglang:num_queue_reqs gauge\n"
	    "sglang:num_queue_reqs{model_name=\"meta-llama/Llama-3.1-8B-Instruct\"} 6.0\n"
	    "# HELP sglang:token_usage The token usage.\n"
	    "# TYPE sglang:token_usage gauge\n"
	    "sglang:token_usage{model_name=\"meta-llama/Llama-3.1-8B-Instruct\"} 0.91\n"
	    "# HELP sglang:gen_throughput The generation throughput (token/s).\n"
	    "sglang:gen_throughput{model_name=\"meta-llama/Llama-3.1-8B-Instruct\"} 1204.5\n",
	    &lf), 1);
	SY_CHECK_INT(lf.running, 12);
	SY_CHECK_INT(lf.waiting, 6);
	SY_CHECK_INT(lf.kv_permille, 910);
}

SY_TEST(label_values_may_hold_spaces_commas_braces_and_escaped_quotes)
{
	struct sy_load_figures lf;

	SY_CHECK_INT(load("vllm:num_requests_running{model_name=\"a \\\"b\\\", c} d\",engine=\"0\"} 3\n"
	    "vllm:num_requests_running{ model_name = \"x\\\\\" , } 4\n"
	    "vllm:num_requests_waiting{path=\"C:\\\\models\\nnew\"} 2\n", &lf), 1);
	SY_CHECK_INT(lf.running, 7);
	SY_CHECK_INT(lf.waiting, 2);
}

SY_TEST(comments_and_similar_names_are_not_read)
{
	struct sy_load_figures lf;

	SY_CHECK_INT(load("# HELP vllm:num_requests_running 99\n"
	    "#vllm:num_requests_running 99\n"
	    "  # TYPE vllm:num_requests_waiting gauge\n"
	    "vllm:num_requests_running_total 99\n"
	    "xvllm:num_requests_running 99\n"
	    "vllm:num_requests_waiting_bucket{le=\"1\"} 99\n"
	    "process_cpu_seconds_total 12.5\n", &lf), 0);
	SY_CHECK_INT(lf.running, -1);
	SY_CHECK_INT(lf.waiting, -1);
	SY_CHECK_INT(lf.kv_permille, -1);
}

SY_TEST(malformed_lines_are_skipped_and_the_rest_read)
{
	struct sy_load_figures lf;

	SY_CHECK_INT(load("vllm:num_requests_running{model_name=\"x} 50\n"
	    "vllm:num_requests_running{model_name=x} 50\n"
	    "vllm:num_requests_running fifty\n"
	    "vllm:num_requests_running\n"
	    "vllm:num_requests_running NaN\n"
	    "vllm:num_requests_running +Inf\n"
	    "vllm:num_requests_running{model_name=\"y\"} 2\n", &lf), 1);
	SY_CHECK_INT(lf.running, 2);
}

SY_TEST(only_the_given_length_is_read)
{
	struct sy_load_figures lf;
	const char text[] = "vllm:num_requests_running 3\r\nvllm:num_requests_waiting 9";

	/* Up to "...running 3\r\n": the waiting line lies beyond. */
	SY_CHECK_INT(sy_promtext_load(text, 29, &lf), 1);
	SY_CHECK_INT(lf.running, 3);
	SY_CHECK_INT(lf.waiting, -1);
	/* The last line needs no line end; CRLF ends lines too. */
	SY_CHECK_INT(sy_promtext_load(text, sizeof text - 1, &lf), 1);
	SY_CHECK_INT(lf.waiting, 9);
	/* Cut inside the value: "3" alone is still 3, "" is nothing. */
	SY_CHECK_INT(sy_promtext_load(text, 27, &lf), 1);
	SY_CHECK_INT(lf.running, 3);
	SY_CHECK_INT(sy_promtext_load(text, 26, &lf), 0);
}

SY_TEST(kv_usage_is_kept_between_0_and_1000_permille)
{
	struct sy_load_figures lf;

	SY_CHECK_INT(load("sglang:token_usage 1.7\n", &lf), 1);
	SY_CHECK_INT(lf.kv_permille, 1000);
	SY_CHECK_INT(load("sglang:token_usage -0.5\n", &lf), 1);
	SY_CHECK_INT(lf.kv_permille, 0);
}

SY_TEST(empty_text_gives_no_figures)
{
	struct sy_load_figures lf;

	SY_CHECK_INT(sy_promtext_load("", 0, &lf), 0);
	SY_CHECK_INT(lf.running, -1);
	SY_CHECK_INT(lf.waiting, -1);
	SY_CHECK_INT(lf.kv_permille, -1);
}

SY_TEST(the_kv_capacity_is_read_from_vllm_cache_config_and_sglang)
{
	struct sy_load_figures lf;

	SY_CHECK_INT(load("# TYPE vllm:cache_config_info gauge\n"
	    "vllm:cache_config_info{block_size=\"16\",cache_dtype=\"auto\","
	    "num_gpu_blocks=\"4096\",num_gpu_blocks_override=\"None\"} 1.0\n",
	    &lf), 1);
	SY_CHECK_INT(lf.kv_tokens, 65536);
	SY_CHECK_INT(load("sglang:max_total_num_tokens{model_name=\"m\"} "
	    "300000\n", &lf), 1);
	SY_CHECK_INT(lf.kv_tokens, 300000);
	SY_CHECK_INT(load("vllm:cache_config_info{block_size=\"16\","
	    "num_gpu_blocks=\"None\"} 1\nvllm:num_requests_running 2\n", &lf), 1);
	SY_CHECK_INT(lf.kv_tokens, -1);
	SY_CHECK_INT(load("vllm:num_requests_running 2\n", &lf), 1);
	SY_CHECK_INT(lf.kv_tokens, -1);
}

int
main(void)
{
	SY_RUN(llama_cpp_server_metrics_give_processing_and_deferred);
	SY_RUN(llama_cpp_kv_cache_ratio_is_read_when_present);
	SY_RUN(vllm_sums_requests_over_models_and_averages_kv_usage);
	SY_RUN(vllm_older_gpu_cache_name_is_read_when_the_new_is_absent);
	SY_RUN(sglang_gives_running_queued_and_token_usage);
	SY_RUN(label_values_may_hold_spaces_commas_braces_and_escaped_quotes);
	SY_RUN(comments_and_similar_names_are_not_read);
	SY_RUN(malformed_lines_are_skipped_and_the_rest_read);
	SY_RUN(only_the_given_length_is_read);
	SY_RUN(kv_usage_is_kept_between_0_and_1000_permille);
	SY_RUN(empty_text_gives_no_figures);
	SY_RUN(the_kv_capacity_is_read_from_vllm_cache_config_and_sglang);
	return sy_test_done();
}
