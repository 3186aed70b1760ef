-- bench/overhead: wrk script. Sends the same OpenAI chat request on every
-- connection (a JSON answer, or with SY_BENCH_KIND=sse a streamed one) and
-- prints the run's totals and latency percentiles as one JSON line that
-- starts with "SYBENCH ".

local kind = os.getenv("SY_BENCH_KIND") or "json"

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
if kind == "sse" then
	wrk.body = '{"model":"tiny-llama","messages":[{"role":"user","content":"hi"}],"stream":true}'
	wrk.headers["Accept"] = "text/event-stream"
else
	wrk.body = '{"model":"tiny-llama","messages":[{"role":"user","content":"hi"}]}'
	wrk.headers["Accept"] = "application/json"
end

function done(summary, latency, requests)
	local e = summary.errors
	io.write(string.format(
	    'SYBENCH {"requests":%d,"duration_us":%d,"bytes":%d,' ..
	    '"err_connect":%d,"err_read":%d,"err_write":%d,"err_status":%d,' ..
	    '"err_timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
	    '"mean_us":%.1f,"max_us":%d}\n',
	    summary.requests, summary.duration, summary.bytes,
	    e.connect, e.read, e.write, e.status, e.timeout,
	    latency:percentile(50), latency:percentile(90),
	    latency:percentile(99), latency.mean, latency.max))
end
