#!/usr/bin/env python3
"""The prompt cache end to end: hits and misses, Cache-Control, TTL expiry,
namespaces, SSE replay, coalescing of identical requests, and Redis trouble,
through switchyard in front of sy-sim and a real redis-server."""
import json
import subprocess
import threading
import time
import unittest

import harness
from harness import RedisServer, binary, free_ports, request, start
from test_proxy import Gateway

MODELS = ["llama-3-8b", "qwen2-7b"]
PRICES = {"llama-3-8b": {"input": 0.5, "output": 1.5}}


def ask(content="Say hello", stream=False, **kw):
    """A deterministic chat request (temperature 0), as a client sends it."""
    body = {"model": "llama-3-8b", "messages": [{"role": "user", "content": content}],
            "max_tokens": 8, "temperature": 0}
    if stream:
        body["stream"] = True
    body.update(kw)
    return body


def content_of(body):
    return json.loads(body)["choices"][0]["message"]["content"]


class CacheCase(unittest.TestCase):
    """One sy-sim replica; gateways made by gateway() with a cache on route chat."""
    speed = "0"

    def setUp(self):
        self.sim_port = free_ports(1)
        self.sim = start(self, [binary("sy-sim"), "--port", str(self.sim_port), "--models", ",".join(MODELS),
                                "--speed", self.speed, "--quiet"], port=self.sim_port, name="sy-sim")

    def gateway(self, cache=None, route_cache=None, route=None, extra_routes=()):
        r = {"name": "chat", "models": MODELS}
        if route_cache is not None:
            r["cache"] = route_cache
        r.update(route or {})
        c = {"backends": [{"name": "sim0", "url": "http://127.0.0.1:%d/v1" % self.sim_port, "models": MODELS}],
             "routes": [r] + list(extra_routes), "prices": PRICES}
        if cache is not None:
            c["cache"] = cache
        return Gateway(self, c)

    def backend_calls(self):
        """Chat and completion requests sy-sim received."""
        s = request(self.sim_port, "GET", "/sim/stats").json()
        by_path = s.get("by_path", {})
        return sum(sum(by_path.get(p, {}).values()) for p in ("/v1/chat/completions", "/v1/completions"))

    def post(self, gw, body, **headers):
        return gw.post("/v1/chat/completions", body, headers=headers)

    def metrics(self, gw):
        return request(gw.admin, "GET", "/metrics").body.decode()

    def metric(self, gw, name):
        for line in self.metrics(gw).splitlines():
            if line.startswith(name + " "):
                return float(line.rsplit(" ", 1)[1])
        return None

    def wait_metric(self, gw, name, want, timeout=3.0):
        """Waits until the sample name is want (a request is counted just
        after its answer is sent); returns its last value."""
        deadline = time.time() + timeout
        while (value := self.metric(gw, name)) != want and time.time() < deadline:
            time.sleep(0.02)
        return value


class Basics(CacheCase):
    def test_a_repeated_request_is_a_hit_with_the_same_answer_and_no_backend_call(self):
        gw = self.gateway(route_cache={})
        first = self.post(gw, ask())
        second = self.post(gw, ask())
        self.assertEqual((first.status, second.status), (200, 200))
        self.assertEqual(first.headers["x-switchyard-cache"], "miss")
        self.assertEqual(second.headers["x-switchyard-cache"], "hit")
        self.assertEqual(first.json(), second.json())
        self.assertEqual(self.backend_calls(), 1)

    def test_key_order_does_not_matter_but_any_parameter_does(self):
        gw = self.gateway(route_cache={})
        self.post(gw, ask(max_tokens=5, top_p=1))
        reordered = {"top_p": 1, "temperature": 0, "max_tokens": 5,
                     "messages": [{"content": "Say hello", "role": "user"}], "model": "llama-3-8b"}
        self.assertEqual(self.post(gw, reordered).headers["x-switchyard-cache"], "hit")
        self.assertEqual(self.post(gw, ask(max_tokens=6, top_p=1)).headers["x-switchyard-cache"], "miss")
        self.assertEqual(self.post(gw, ask(max_tokens=5, top_p=0.5)).headers["x-switchyard-cache"], "miss")
        self.assertEqual(self.backend_calls(), 3)

    def test_a_hit_logs_the_tokens_and_dollars_it_saved(self):
        gw = self.gateway(route_cache={})
        self.post(gw, ask())
        self.post(gw, ask())
        # Lines are written as exchanges end: the miss's may follow the
        # hit's (it ends when its backend call does, maybe on another worker).
        lines = {l["cache"]: l for l in gw.log_lines(2)}
        self.assertEqual(sorted(lines), ["hit", "miss"])
        miss, hit = lines["miss"], lines["hit"]
        self.assertEqual(hit["saved_tokens"], miss["prompt_tokens"] + miss["completion_tokens"])
        self.assertAlmostEqual(hit["saved_usd"], miss["cost_usd"])
        self.assertEqual((hit["prompt_tokens"], hit["completion_tokens"], hit["cost_usd"]), (0, 0, 0))
        self.assertIsNone(hit["endpoint"])
        self.assertEqual(miss["saved_tokens"], 0)

    def test_requests_that_are_not_deterministic_bypass_the_cache(self):
        gw = self.gateway(route_cache={})
        for _ in range(2):
            r = self.post(gw, ask(temperature=0.7))
            self.assertEqual(r.headers["x-switchyard-cache"], "bypass")
        self.assertEqual(self.post(gw, ask(temperature=0.7, seed=4)).headers["x-switchyard-cache"], "miss")
        self.assertEqual(self.backend_calls(), 3)

    def test_routes_without_a_cache_answer_bypass(self):
        gw = self.gateway()
        for _ in range(2):
            self.assertEqual(self.post(gw, ask()).headers["x-switchyard-cache"], "bypass")
        self.assertEqual(self.backend_calls(), 2)
        self.assertEqual(gw.log_lines(2)[-1]["cache"], "bypass")

    def test_requests_that_reach_no_route_answer_bypass(self):
        gw = self.gateway(route_cache={})
        r = self.post(gw, ask(model="no-such-model"))
        self.assertEqual(r.status, 404)
        self.assertEqual(r.headers["x-switchyard-cache"], "bypass")
        self.assertIsNone(gw.log_lines(1)[-1]["cache"])

    def test_embeddings_are_cached(self):
        gw = self.gateway(route_cache={})
        body = {"model": "llama-3-8b", "input": ["a", "b"]}
        first = gw.post("/v1/embeddings", body)
        second = gw.post("/v1/embeddings", body)
        self.assertEqual(first.headers["x-switchyard-cache"], "miss")
        self.assertEqual(second.headers["x-switchyard-cache"], "hit")
        self.assertEqual(first.json(), second.json())

    def test_errors_are_never_stored(self):
        gw = self.gateway(route_cache={}, route={"retries": {"max": 0}})
        r = request(self.sim_port, "POST", "/sim/faults", {"error_rate": 1.0, "error_status": 500})
        self.assertEqual(r.status, 200)
        self.assertEqual(self.post(gw, ask()).status, 500)
        request(self.sim_port, "DELETE", "/sim/faults")
        r = self.post(gw, ask())
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers["x-switchyard-cache"], "miss")

    def test_a_stream_cut_short_is_not_stored(self):
        gw = self.gateway(route_cache={}, route={"retries": {"max": 0}})
        request(self.sim_port, "POST", "/sim/faults", {"drop_after_tokens": 2})
        status, _, events, _ = harness.stream_events(gw.port, "/v1/chat/completions", ask(stream=True))
        self.assertEqual(status, 200)
        self.assertIn("error", json.loads(events[-1]["data"]))
        request(self.sim_port, "DELETE", "/sim/faults")
        status, headers, events, _ = harness.stream_events(gw.port, "/v1/chat/completions", ask(stream=True))
        self.assertEqual(headers["x-switchyard-cache"], "miss")
        self.assertEqual(events[-1]["data"], "[DONE]")


    def test_an_error_a_backend_sends_with_status_200_is_not_stored(self):
        def reply(path, headers, body):
            out = {"error": {"message": "model overloaded", "type": "server_error"}}
            return 200, {"Content-Type": "application/json"}, [json.dumps(out).encode()], 0, False
        be = harness.ScriptedBackend(reply)
        self.addCleanup(be.close)
        gw = Gateway(self, {"backends": [{"name": "b", "url": "http://127.0.0.1:%d/v1" % be.port}],
                            "routes": [{"name": "chat", "models": MODELS, "cache": {}}]})
        for _ in range(2):
            r = self.post(gw, ask())
            self.assertEqual(r.headers["x-switchyard-cache"], "miss")
        self.assertEqual(len(be.received), 2)


class CacheControl(CacheCase):
    def test_no_store_does_not_store(self):
        gw = self.gateway(route_cache={})
        self.assertEqual(self.post(gw, ask(), **{"Cache-Control": "no-store"}).headers["x-switchyard-cache"], "miss")
        self.assertEqual(self.post(gw, ask()).headers["x-switchyard-cache"], "miss")
        self.assertEqual(self.post(gw, ask()).headers["x-switchyard-cache"], "hit")
        self.assertEqual(self.backend_calls(), 2)

    def test_no_cache_skips_the_lookup_and_refreshes_the_entry(self):
        gw = self.gateway(route_cache={})
        self.post(gw, ask())
        r = self.post(gw, ask(), **{"Cache-Control": "no-cache"})
        self.assertEqual(r.headers["x-switchyard-cache"], "miss")
        self.assertEqual(self.backend_calls(), 2)
        # The refreshed entry is the newer answer.
        self.assertEqual(self.post(gw, ask()).json()["id"], r.json()["id"])

    def test_max_age_accepts_only_younger_entries(self):
        gw = self.gateway(route_cache={})
        self.post(gw, ask())
        self.assertEqual(self.post(gw, ask(), **{"Cache-Control": "max-age=60"}).headers["x-switchyard-cache"],
                         "hit")
        time.sleep(1.1)
        self.assertEqual(self.post(gw, ask(), **{"Cache-Control": "max-age=0"}).headers["x-switchyard-cache"],
                         "miss")
        self.assertEqual(self.backend_calls(), 2)


class Streams(CacheCase):
    def stream(self, gw, body, path="/v1/chat/completions"):
        status, headers, events, _ = harness.stream_events(gw.port, path, body)
        self.assertEqual(status, 200)
        return headers, events

    def content_and_usage(self, events):
        text, usage = "", None
        for e in events:
            if e["data"] == "[DONE]":
                continue
            d = json.loads(e["data"])
            for c in d.get("choices", []):
                text += c.get("delta", {}).get("content") or ""
            usage = d.get("usage") or usage
        return text, usage

    def test_a_stream_hit_replays_the_same_content_and_usage_as_the_original_stream(self):
        gw = self.gateway(route_cache={"replay_chunk_tokens": 2})
        body = ask(stream=True, stream_options={"include_usage": True})
        h1, first = self.stream(gw, body)
        h2, second = self.stream(gw, body)
        self.assertEqual((h1["x-switchyard-cache"], h2["x-switchyard-cache"]), ("miss", "hit"))
        self.assertEqual(self.content_and_usage(first), self.content_and_usage(second))
        self.assertEqual(second[-1]["data"], "[DONE]")
        self.assertGreater(len(second), 4)  # chunked like a stream
        self.assertEqual(self.backend_calls(), 1)

    def test_a_stream_hit_can_be_paced_like_a_real_stream(self):
        gw = self.gateway(route_cache={"replay_chunk_tokens": 1, "replay_interval_ms": 30})
        body = ask(stream=True)
        _, first = self.stream(gw, body)
        t = time.time()
        h, second = self.stream(gw, body)
        took = time.time() - t
        self.assertEqual(h["x-switchyard-cache"], "hit")
        self.assertEqual(self.content_and_usage(first), self.content_and_usage(second))
        # role, 8 words, finish, [DONE]: 10 intervals between 11 events
        self.assertEqual(len(second), 11)
        self.assertGreaterEqual(took, 10 * 0.030 * 0.9)
        hit = gw.log_lines(2)[-1]
        self.assertEqual(hit["cache"], "hit")
        self.assertLess(hit["ttft_ms"], 100)
        self.assertGreaterEqual(hit["latency_ms"], 270)

    def test_a_streamed_answer_serves_a_whole_request_and_back(self):
        gw = self.gateway(route_cache={})
        _, events = self.stream(gw, ask(stream=True))
        whole = self.post(gw, ask())
        self.assertEqual(whole.headers["x-switchyard-cache"], "hit")
        self.assertEqual(content_of(whole.body), self.content_and_usage(events)[0])
        self.assertNotIn("usage", json.dumps([json.loads(e["data"]) for e in events if e["data"] != "[DONE]"]))
        self.post(gw, ask("another"))
        h, events = self.stream(gw, ask("another", stream=True))
        self.assertEqual(h["x-switchyard-cache"], "hit")
        self.assertEqual(self.content_and_usage(events)[0],
                         content_of(self.post(gw, ask("another")).body))
        self.assertEqual(self.backend_calls(), 2)

    def test_an_anthropic_client_gets_a_hit_in_its_own_framing(self):
        gw = self.gateway(route_cache={})
        body = {"model": "llama-3-8b", "max_tokens": 8, "temperature": 0,
                "messages": [{"role": "user", "content": "Say hello"}]}
        first = gw.post("/v1/messages", body)
        self.assertEqual(first.headers["x-switchyard-cache"], "miss")
        h, events = self.stream(gw, dict(body, stream=True), path="/v1/messages")
        self.assertEqual(h["x-switchyard-cache"], "hit")
        kinds = [e["event"] for e in events]
        self.assertEqual(kinds[0], "message_start")
        self.assertEqual(kinds[-1], "message_stop")
        text = "".join(json.loads(e["data"])["delta"].get("text", "") for e in events
                       if e["event"] == "content_block_delta")
        self.assertEqual(text, first.json()["content"][0]["text"])
        self.assertEqual(self.backend_calls(), 1)


def burst(calls, post, stagger=0.0):
    """Sends post(gw, body) for each (gw, body) of calls at once (the i-th
    stagger × i seconds later) from threads; returns the responses in order."""
    results = [None] * len(calls)
    go = threading.Event()

    def one(i):
        go.wait()
        time.sleep(stagger * i)
        results[i] = post(*calls[i])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    go.set()
    for t in threads:
        t.join(60)
    return results


class Coalescing(CacheCase):
    speed = "3"  # an answer takes a few hundred ms: the others arrive meanwhile

    def burst(self, gw, n, body):
        return burst([(gw, body)] * n, self.post)

    def test_a_hundred_identical_concurrent_requests_make_one_backend_call(self):
        gw = self.gateway(route_cache={})
        results = self.burst(gw, 100, ask())
        self.assertTrue(all(r is not None and r.status == 200 for r in results))
        self.assertEqual(len({r.body for r in results}), 1)
        words = [r.headers["x-switchyard-cache"] for r in results]
        self.assertEqual(words.count("miss"), 1)
        self.assertEqual(words.count("miss") + words.count("coalesced") + words.count("hit"), 100)
        self.assertGreater(words.count("coalesced"), 0)
        log = request(self.sim_port, "GET", "/sim/requests").json()
        self.assertEqual(len([e for e in log if e["path"] == "/v1/chat/completions"]), 1)
        self.assertEqual(self.wait_metric(gw, 'switchyard_cache_requests_total{route="chat",result="coalesced"}',
                                          words.count("coalesced")), words.count("coalesced"))

    def test_a_stream_does_not_wait_for_an_identical_request_in_flight(self):
        gw = self.gateway(route_cache={})
        leader = threading.Thread(target=self.post, args=(gw, ask(max_tokens=40)))
        leader.start()
        time.sleep(0.1)
        status, headers, events, _ = harness.stream_events(gw.port, "/v1/chat/completions",
                                                           ask(stream=True, max_tokens=40))
        leader.join()
        self.assertEqual(status, 200)
        self.assertEqual(headers["x-switchyard-cache"], "miss")
        self.assertEqual(events[-1]["data"], "[DONE]")
        self.assertEqual(self.backend_calls(), 2)

    def test_when_the_leaders_client_leaves_one_follower_takes_over(self):
        import socket
        gw = self.gateway(route_cache={})
        body = json.dumps(ask(max_tokens=40)).encode()
        leader = socket.create_connection(("127.0.0.1", gw.port))
        leader.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                       b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                       % len(body) + body)
        time.sleep(0.1)
        results = []
        threads = [threading.Thread(target=lambda: results.append(self.post(gw, ask(max_tokens=40))))
                   for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.2)
        leader.close()		# the leader's client leaves
        for t in threads:
            t.join(30)
        self.assertEqual([r.status for r in results], [200] * 4)
        words = sorted(r.headers["x-switchyard-cache"] for r in results)
        self.assertEqual(words, ["coalesced", "coalesced", "coalesced", "miss"])
        self.assertEqual(self.backend_calls(), 2)	# the leader's, then one

    def test_followers_of_a_failed_request_go_to_the_backend_themselves(self):
        gw = self.gateway(route_cache={}, route={"retries": {"max": 0}})
        request(self.sim_port, "POST", "/sim/faults", {"error_rate": 1.0, "error_status": 500})
        results = self.burst(gw, 5, ask())
        self.assertTrue(all(r.status == 500 for r in results))
        self.assertTrue(all(r.headers["x-switchyard-cache"] == "miss" for r in results))
        self.assertEqual(self.backend_calls(), 5)


class WithRedis(CacheCase):
    def setUp(self):
        super().setUp()
        self.redis = RedisServer(self)

    def slow_sim(self):
        """A second sy-sim whose answers take a few hundred ms, in place of the first."""
        self.sim_port = free_ports(1)
        start(self, [binary("sy-sim"), "--port", str(self.sim_port), "--models", ",".join(MODELS),
                     "--speed", "3", "--quiet"], port=self.sim_port, name="sy-sim")

    def redis_cache(self, redis=None, **kw):
        c = {"l1_max_bytes": 0, "redis": {"port": self.redis.port, "command_timeout_ms": 50}}
        c["redis"].update(redis or {})
        c.update(kw)
        return c

    def wait_connected(self, gw, workers=2, timeout=10.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.metric(gw, "switchyard_cache_redis_connected") == workers:
                return
            time.sleep(0.05)
        self.fail("the workers did not connect to Redis")

    def test_answers_are_stored_in_redis_and_hit_from_there(self):
        gw = self.gateway(cache=self.redis_cache(), route_cache={"ttl_s": 30})
        self.wait_connected(gw)
        self.assertEqual(self.post(gw, ask()).headers["x-switchyard-cache"], "miss")
        deadline = time.time() + 3
        while not self.redis.command("KEYS", "sy:cache:*") and time.time() < deadline:
            time.sleep(0.02)
        keys = self.redis.command("KEYS", "sy:cache:*")
        self.assertEqual(len(keys), 1)
        self.assertEqual(len(keys[0]), len("sy:cache:") + 64)
        self.assertTrue(0 < self.redis.command("TTL", keys[0]) <= 30)
        self.assertEqual(self.post(gw, ask()).headers["x-switchyard-cache"], "hit")
        self.assertEqual(self.backend_calls(), 1)

    def test_a_value_redis_mangled_is_a_miss_not_an_answer(self):
        gw = self.gateway(cache=self.redis_cache(), route_cache={})
        self.wait_connected(gw)
        good = self.post(gw, ask())
        deadline = time.time() + 3
        while not self.redis.command("KEYS", "sy:cache:*") and time.time() < deadline:
            time.sleep(0.02)
        key = self.redis.command("KEYS", "sy:cache:*")[0]
        self.redis.command("SET", key, "SYC1 1 2 3 4\n<html>oops</html>")
        r = self.post(gw, ask())
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers["x-switchyard-cache"], "miss")
        self.assertEqual(content_of(r.body), content_of(good.body))
        self.assertEqual(self.backend_calls(), 2)
        self.assertGreaterEqual(self.metric(gw, "switchyard_cache_redis_errors_total"), 1)

    def test_a_longest_key_prefix_is_kept_whole(self):
        prefix = "p" * 255 + ":"
        gw = self.gateway(cache=self.redis_cache(redis={"key_prefix": prefix}), route_cache={})
        self.wait_connected(gw)
        self.post(gw, ask())
        deadline = time.time() + 3
        while not self.redis.command("KEYS", prefix + "*") and time.time() < deadline:
            time.sleep(0.02)
        keys = self.redis.command("KEYS", "*")
        self.assertEqual([len(k) for k in keys], [256 + 64])
        self.assertTrue(keys[0].startswith(prefix))
        self.assertEqual(self.post(gw, ask()).headers["x-switchyard-cache"], "hit")

    def test_entries_expire_after_their_ttl(self):
        gw = self.gateway(cache=self.redis_cache(l1_max_bytes=1 << 20), route_cache={"ttl_s": 1})
        self.wait_connected(gw)
        self.post(gw, ask())
        self.assertEqual(self.post(gw, ask()).headers["x-switchyard-cache"], "hit")
        time.sleep(1.3)
        self.assertEqual(self.post(gw, ask()).headers["x-switchyard-cache"], "miss")
        self.assertEqual(self.backend_calls(), 2)

    def test_gateways_share_entries_and_namespaces_are_isolated(self):
        a = self.gateway(cache=self.redis_cache(), route_cache={})
        b = self.gateway(cache=self.redis_cache(), route_cache={})
        other = self.gateway(cache=self.redis_cache(), route_cache={"namespace": "tenant-b"})
        for gw in (a, b, other):
            self.wait_connected(gw)
        self.assertEqual(self.post(a, ask()).headers["x-switchyard-cache"], "miss")
        time.sleep(0.1)
        self.assertEqual(self.post(b, ask()).headers["x-switchyard-cache"], "hit")
        self.assertEqual(self.post(other, ask()).headers["x-switchyard-cache"], "miss")
        time.sleep(0.1)
        self.assertEqual(self.post(other, ask()).headers["x-switchyard-cache"], "hit")
        self.assertEqual(len(self.redis.command("KEYS", "sy:cache:*")), 2)
        self.assertEqual(self.backend_calls(), 2)

    def test_gateways_sharing_redis_with_a_lock_make_one_backend_call(self):
        self.slow_sim()
        gws = [self.gateway(cache=self.redis_cache(redis={"lock_ms": 5000}), route_cache={}) for _ in range(2)]
        for gw in gws:
            self.wait_connected(gw)
        results = burst([(gw, ask()) for gw in gws for _ in range(10)], self.post)
        self.assertTrue(all(r.status == 200 for r in results))
        self.assertEqual(len({content_of(r.body) for r in results}), 1)
        words = [r.headers["x-switchyard-cache"] for r in results]
        self.assertEqual(words.count("miss"), 1)
        self.assertEqual(words.count("coalesced") + words.count("hit"), 19)
        self.assertEqual(self.backend_calls(), 1)

    def test_when_the_instance_holding_the_lock_fails_the_others_go_on_at_once(self):
        self.slow_sim()
        a, b = [self.gateway(cache=self.redis_cache(redis={"lock_ms": 5000}), route_cache={},
                             route={"retries": {"max": 0}}) for _ in range(2)]
        for gw in (a, b):
            self.wait_connected(gw)
        # Each answer fails after 4 tokens, 100 ms apart.
        request(self.sim_port, "POST", "/sim/faults", {"slow_stream_ms": 100, "drop_after_tokens": 4})
        t = time.time()
        results = burst([(a, ask()), (b, ask())], self.post, stagger=0.1)
        self.assertEqual([r.status for r in results], [502, 502])
        self.assertEqual([r.headers["x-switchyard-cache"] for r in results], ["miss", "miss"])
        self.assertLess(time.time() - t, 2.5)
        self.assertEqual(self.backend_calls(), 2)

    def test_redis_killed_mid_test_and_restarted_fails_no_request(self):
        gw = self.gateway(cache=self.redis_cache(), route_cache={})
        self.wait_connected(gw)
        statuses, slowest = [], [0.0]
        stop = threading.Event()

        def client():
            i = 0
            while not stop.is_set():
                t = time.time()
                statuses.append(self.post(gw, ask("q%d" % (i % 20))).status)
                slowest[0] = max(slowest[0], time.time() - t)
                i += 1

        t = threading.Thread(target=client)
        t.start()
        time.sleep(0.3)
        self.redis.kill()
        time.sleep(0.5)
        self.redis.start()
        self.wait_connected(gw)
        time.sleep(0.3)
        stop.set()
        t.join(30)
        self.assertGreater(len(statuses), 20)
        self.assertEqual(set(statuses), {200})
        self.assertLess(slowest[0], 0.5)
        self.assertGreaterEqual(self.metric(gw, "switchyard_cache_redis_reconnects_total"), 2)
        self.assertGreaterEqual(self.metric(gw, "switchyard_cache_redis_errors_total"), 1)
        # Back to storing and hitting through the new Redis.
        self.post(gw, ask("after"))
        time.sleep(0.1)
        self.assertEqual(self.post(gw, ask("after")).headers["x-switchyard-cache"], "hit")

    def test_a_redis_that_stops_answering_costs_a_request_only_its_timeout(self):
        gw = self.gateway(cache=self.redis_cache(), route_cache={})
        self.wait_connected(gw)
        self.redis.pause()
        try:
            for i in range(6):
                t = time.time()
                r = self.post(gw, ask("slow%d" % i))
                self.assertEqual(r.status, 200)
                self.assertEqual(r.headers["x-switchyard-cache"], "miss")
                self.assertLess(time.time() - t, 0.5)
        finally:
            self.redis.resume()
        self.assertGreaterEqual(self.metric(gw, "switchyard_cache_redis_timeouts_total"), 1)

    def test_metrics_pass_promtool_and_count_the_cache(self):
        gw = self.gateway(cache=self.redis_cache(), route_cache={})
        self.wait_connected(gw)
        self.post(gw, ask())
        time.sleep(0.1)
        self.post(gw, ask())
        self.post(gw, ask(temperature=1))
        self.wait_metric(gw, 'switchyard_cache_requests_total{route="chat",result="bypass"}', 1)
        body = request(gw.admin, "GET", "/metrics").body
        p = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        text = body.decode()
        for result, n in (("hit", 1), ("miss", 1), ("bypass", 1), ("coalesced", 0)):
            self.assertIn('switchyard_cache_requests_total{route="chat",result="%s"} %d' % (result, n), text)
        self.assertIn('switchyard_cache_hit_duration_seconds_count{route="chat"} 1', text)
        self.assertGreater(self.metric(gw, 'switchyard_cache_saved_usd_total{route="chat"}'), 0)
        stats = request(gw.admin, "GET", "/admin/stats").json()["routes"]["chat"]["cache"]
        self.assertEqual(stats["hit_ratio"], 0.5)


if __name__ == "__main__":
    harness.main()
