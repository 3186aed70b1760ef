-- bench/cache: wrk script. Sends the same deterministic chat request on every
-- connection (each connection waiting SY_BENCH_DELAY_MS on average between
-- requests when set), counts responses that were not cache hits, and prints the
-- run's totals and latency percentiles as one JSON line that starts with
-- "SYBENCH ".

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"llama-3-8b","messages":[{"role":"user","content":"What is a prompt cache?"}],"max_tokens":32,"temperature":0}'

local threads = {}
local pace = tonumber(os.getenv("SY_BENCH_DELAY_MS") or "0")

-- A wait drawn from 0..2 x the pace, so that the connections do not send
-- in step (64 requests at once would measure the queue, not a hit).
if pace > 0 then
	function delay()
		return math.random(0, 2 * pace)
	end
end

function setup(thread)
	table.insert(threads, thread)
end

function init(args)
	not_hit = 0
end

function response(status, headers, body)
	-- Header names are case-insensitive; wrk keeps them as sent.
	if (headers["X-Switchyard-Cache"] or headers["x-switchyard-cache"]) ~= "hit" then
		not_hit = not_hit + 1
	end
end

function done(summary, latency, requests)
	local e = summary.errors
	local misses = 0
	for _, t in ipairs(threads) do
		misses = misses + t:get("not_hit")
	end
	io.write(string.format(
	    'SYBENCH {"requests":%d,"duration_us":%d,"not_hit":%d,' ..
	    '"err_connect":%d,"err_read":%d,"err_write":%d,"err_status":%d,' ..
	    '"err_timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
	    '"max_us":%d}\n',
	    summary.requests, summary.duration, misses,
	    e.connect, e.read, e.write, e.status, e.timeout,
	    latency:percentile(50), latency:percentile(90),
	    latency:percentile(99), latency.max))
end
