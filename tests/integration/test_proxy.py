"""switchyard end to end: the real binary in front of sy-sim replicas and
scripted backends, checked from the client's side, the backend's side, the
access log and the admin listener."""
import json
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import harness
from harness import binary, eventually, free_port, free_ports, post_json, request, start

MODELS = ["llama-3-8b", "qwen2-7b"]


def chat(content="Say hello", model="llama-3-8b", **kw):
    body = {"model": model, "messages": [{"role": "user", "content": content}], "max_tokens": 8}
    body.update(kw)
    return body


class Gateway:
    """A switchyard process with a config written from a dict."""

    def __init__(self, test, config, env=None, extra_args=()):
        self.dir = tempfile.mkdtemp(prefix="sy-gw-")
        self.port = free_ports(2)	# two distinct ports: listen, admin
        self.admin = self.port + 1
        self.log_path = os.path.join(self.dir, "access.log")
        config.setdefault("listen", "127.0.0.1:%d" % self.port)
        config.setdefault("admin", "127.0.0.1:%d" % self.admin)
        config.setdefault("access_log", self.log_path)
        config.setdefault("workers", 2)
        self.config = config
        self.path = os.path.join(self.dir, "switchyard.json")
        self.write(config)
        self.proc = start(test, [binary("switchyard"), "-c", self.path] + list(extra_args),
                          port=self.port, env=env, name="switchyard")
        harness.wait_port(self.admin)

    def write(self, config):
        with open(self.path, "w") as f:
            json.dump(config, f, indent=1)

    def log_lines(self, n=None, timeout=3.0):
        """The access log's JSON lines; waits until there are n of them."""
        deadline = time.time() + timeout
        while True:
            lines = []
            if os.path.exists(self.log_path):
                with open(self.log_path) as f:
                    lines = [json.loads(l) for l in f if l.strip()]
            if n is None or len(lines) >= n or time.time() > deadline:
                return lines
            time.sleep(0.02)

    def post(self, path, body, **kw):
        return post_json(self.port, path, body, **kw)


def sim_config(sim_port, n=2, **route):
    backends = [{"name": "sim%d" % i, "url": "http://127.0.0.1:%d/v1" % (sim_port + i),
                 "models": MODELS} for i in range(n)]
    r = {"name": "chat", "models": MODELS, "aliases": {"gpt-4o-mini": "llama-3-8b"}}
    r.update(route)
    return {"backends": backends, "routes": [r],
            "prices": {"llama-3-8b": {"input": 0.5, "output": 1.5, "cached_input": 0.25}}}


class SimCase(unittest.TestCase):
    """Two sy-sim replicas answering at once, and a gateway in front."""
    replicas = 2
    speed = "0"

    def setUp(self):
        self.sim_port = free_ports(self.replicas)
        self.sim = start(self, [binary("sy-sim"), "--port", str(self.sim_port), "--replicas",
                                str(self.replicas), "--models", ",".join(MODELS),
                                "--speed", self.speed, "--quiet"], port=self.sim_port, name="sy-sim")
        for i in range(1, self.replicas):
            harness.wait_port(self.sim_port + i)
        self.gw = Gateway(self, self.config())

    def config(self):
        return sim_config(self.sim_port, self.replicas)

    def sim_requests(self, replica=0, n=50):
        r = request(self.sim_port + replica, "GET", "/sim/requests?n=%d" % n)
        self.assertEqual(r.status, 200)
        return r.json()

    def sim_all_requests(self):
        out = []
        for i in range(self.replicas):
            out += self.sim_requests(i)
        return out

    def sim_faults(self, replica, faults):
        r = request(self.sim_port + replica, "POST", "/sim/faults", faults)
        self.assertEqual(r.status, 200, r.body)

    def sim_stats(self, replica=0):
        return request(self.sim_port + replica, "GET", "/sim/stats").json()


class ProxyBasics(SimCase):
    def test_chat_answer_is_the_backends_answer(self):
        body = chat("What is a gateway?")
        direct = post_json(self.sim_port, "/v1/chat/completions", body)
        via = self.gw.post("/v1/chat/completions", body)
        self.assertEqual(via.status, 200, via.body)
        self.assertEqual(via.json()["choices"], direct.json()["choices"])
        self.assertEqual(via.json()["usage"]["completion_tokens"], 8)
        self.assertTrue(via.headers.get("x-request-id"))

    def test_alias_is_sent_to_the_backend_as_the_served_model(self):
        r = self.gw.post("/v1/chat/completions", chat(model="gpt-4o-mini"))
        self.assertEqual(r.status, 200, r.body)
        seen = [q for q in self.sim_all_requests() if q["path"].endswith("/chat/completions")]
        self.assertEqual(len(seen), 1)
        self.assertEqual(seen[0]["body"]["model"], "llama-3-8b")

    def test_body_is_forwarded_unchanged_when_nothing_needs_changing(self):
        raw = b'{"model":"llama-3-8b","messages":[{"role":"user","content":"hi"}],"max_tokens":3,"temperature":0.25,"x_extra":{"b":1,"a":[1,2]}}'
        r = request(self.gw.port, "POST", "/v1/chat/completions", raw, {"Content-Type": "application/json"})
        self.assertEqual(r.status, 200, r.body)
        seen = self.sim_all_requests()
        self.assertEqual(json.dumps(seen[0]["body"], separators=(",", ":")).encode(), raw)

    def test_request_id_is_sent_upstream_and_returned(self):
        r = self.gw.post("/v1/chat/completions", chat(), headers={"X-Request-Id": "abc-123"})
        self.assertEqual(r.headers["x-request-id"], "abc-123")
        seen = self.sim_all_requests()
        self.assertEqual(seen[0]["headers"].get("x-request-id"), "abc-123")

    def test_completions_and_embeddings_are_proxied(self):
        r = self.gw.post("/v1/completions", {"model": "qwen2-7b", "prompt": "Once", "max_tokens": 4})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json()["usage"]["completion_tokens"], 4)
        r = self.gw.post("/v1/embeddings", {"model": "qwen2-7b", "input": ["a b", "c"]})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(len(r.json()["data"]), 2)

    def test_models_lists_served_models_and_aliases(self):
        r = request(self.gw.port, "GET", "/v1/models")
        self.assertEqual(r.status, 200)
        ids = [m["id"] for m in r.json()["data"]]
        self.assertEqual(sorted(ids), sorted(MODELS + ["gpt-4o-mini"]))

    def test_healthz(self):
        r = request(self.gw.port, "GET", "/healthz")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json(), {"status": "ok"})

    def test_round_robin_spreads_evenly_over_replicas(self):
        for _ in range(20):
            self.assertEqual(self.gw.post("/v1/chat/completions", chat()).status, 200)
        counts = [len([q for q in self.sim_requests(i) if q["path"].endswith("/chat/completions")])
                  for i in range(self.replicas)]
        self.assertEqual(counts, [10, 10])

    def test_access_log_line_has_tokens_cost_and_timings(self):
        r = self.gw.post("/v1/chat/completions", chat(model="gpt-4o-mini"))
        self.assertEqual(r.status, 200)
        line = self.gw.log_lines(1)[-1]
        self.assertEqual(line["request_id"], r.headers["x-request-id"])
        self.assertEqual(line["route"], "chat")
        self.assertEqual(line["client_model"], "gpt-4o-mini")
        self.assertEqual(line["model"], "llama-3-8b")
        self.assertIn(line["endpoint"], ("sim0", "sim1"))
        self.assertEqual(line["status"], 200)
        self.assertIs(line["stream"], False)
        usage = r.json()["usage"]
        self.assertEqual(line["prompt_tokens"], usage["prompt_tokens"])
        self.assertEqual(line["completion_tokens"], usage["completion_tokens"])
        cached = usage.get("prompt_tokens_details", {}).get("cached_tokens", 0)
        expect = ((usage["prompt_tokens"] - cached) * 0.5 + cached * 0.25 + usage["completion_tokens"] * 1.5) / 1e6
        self.assertAlmostEqual(line["cost_usd"], expect, places=12)
        self.assertGreaterEqual(line["latency_ms"], line["upstream_ms"])
        self.assertGreaterEqual(line["overhead_ms"], 0)
        self.assertGreater(line["bytes_in"], 0)
        self.assertEqual(line["bytes_out"], len(r.body))
        self.assertIsNone(line["error"])


class Streaming(SimCase):
    def test_stream_relays_events_and_strips_the_usage_chunk_it_added(self):
        status, headers, events, raw = harness.stream_events(self.gw.port, "/v1/chat/completions",
                                                             chat(stream=True))
        self.assertEqual(status, 200)
        self.assertTrue(headers["content-type"].startswith("text/event-stream"))
        self.assertEqual(events[-1]["data"], "[DONE]")
        chunks = [json.loads(e["data"]) for e in events[:-1]]
        self.assertTrue(all("usage" not in c or c["choices"] for c in chunks))
        self.assertEqual(sum(1 for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")), 8)
        seen = self.sim_all_requests()[0]["body"]
        self.assertEqual(seen["stream_options"], {"include_usage": True})
        line = self.gw.log_lines(1)[-1]
        self.assertIs(line["stream"], True)
        self.assertEqual(line["completion_tokens"], 8)
        self.assertIsNotNone(line["ttft_ms"])

    def test_stream_keeps_the_usage_chunk_when_the_client_asked(self):
        status, _, events, _ = harness.stream_events(
            self.gw.port, "/v1/chat/completions",
            chat(stream=True, stream_options={"include_usage": True}))
        self.assertEqual(status, 200)
        last = json.loads(events[-2]["data"])
        self.assertEqual(last["choices"], [])
        self.assertEqual(last["usage"]["completion_tokens"], 8)

    def test_stream_equals_the_backends_stream_event_for_event(self):
        body = chat("same prompt", stream=True, stream_options={"include_usage": True})
        _, _, direct, _ = harness.stream_events(self.sim_port, "/v1/chat/completions", body)
        _, _, via, _ = harness.stream_events(self.gw.port, "/v1/chat/completions", body)
        strip = lambda evs: [{k: v for k, v in json.loads(e["data"]).items() if k not in ("id", "created", "timings")}
                             if e["data"] != "[DONE]" else e["data"] for e in evs]
        self.assertEqual(strip(via), strip(direct))


class SlowStreaming(SimCase):
    """sy-sim at its default speed: streams take real time."""
    speed = "1"

    def config(self):
        c = sim_config(self.sim_port, self.replicas)
        return c

    def test_events_arrive_as_they_are_generated_not_at_the_end(self):
        self.sim_faults(0, {"slow_stream_ms": 100})
        self.sim_faults(1, {"slow_stream_ms": 100})
        conn = socket.create_connection(("127.0.0.1", self.gw.port))
        body = json.dumps(chat(stream=True, max_tokens=6)).encode()
        conn.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        t0 = time.time()
        first = conn.recv(65536)
        t_first = time.time() - t0
        data = first
        while b"[DONE]" not in data:
            more = conn.recv(65536)
            if not more:
                break
            data += more
        t_all = time.time() - t0
        conn.close()
        self.assertIn(b"text/event-stream", first)
        self.assertGreater(t_all, 0.5)
        self.assertLess(t_first, t_all - 0.3)

    def test_client_disconnect_cancels_the_backend_request(self):
        self.sim_faults(0, {"slow_stream_ms": 200})
        self.sim_faults(1, {"slow_stream_ms": 200})
        conn = socket.create_connection(("127.0.0.1", self.gw.port))
        body = json.dumps(chat(stream=True, max_tokens=50)).encode()
        conn.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        conn.recv(4096)
        conn.close()
        deadline = time.time() + 3
        cancelled = 0
        while time.time() < deadline:
            cancelled = sum(self.sim_stats(i).get("cancelled", 0) for i in range(self.replicas))
            if cancelled:
                break
            time.sleep(0.05)
        self.assertEqual(cancelled, 1)
        line = self.gw.log_lines(1)[-1]
        self.assertEqual(line["status"], 499)


class BadInput(SimCase):
    def check_error(self, r, status, code=None):
        self.assertEqual(r.status, status, r.body)
        err = r.json()["error"]
        self.assertTrue(err["message"])
        self.assertIn("type", err)
        if code is not None:
            self.assertEqual(err["code"], code)
        return err

    def test_invalid_json_is_400(self):
        r = request(self.gw.port, "POST", "/v1/chat/completions", b'{"model": "x", bad', {"Content-Type": "application/json"})
        err = self.check_error(r, 400)
        self.assertEqual(err["type"], "invalid_request_error")

    def test_missing_messages_is_400(self):
        err = self.check_error(self.gw.post("/v1/chat/completions", {"model": "llama-3-8b"}), 400)
        self.assertIn("messages", err["message"])

    def test_unknown_model_is_404_listing_served_models(self):
        err = self.check_error(self.gw.post("/v1/chat/completions", chat(model="gpt-9")), 404, "model_not_found")
        for m in MODELS + ["gpt-4o-mini"]:
            self.assertIn(m, err["message"])

    def test_body_over_the_limit_is_413(self):
        big = chat("x" * (9 * 1024 * 1024))
        self.check_error(self.gw.post("/v1/chat/completions", big), 413)

    def test_json_nested_too_deep_is_400(self):
        deep = '{"model":"llama-3-8b","messages":[],"x":' + "[" * 100 + "]" * 100 + "}"
        r = request(self.gw.port, "POST", "/v1/chat/completions", deep, {"Content-Type": "application/json"})
        self.assertIn("deeper", self.check_error(r, 400)["message"])

    def test_wrong_method_is_405_and_unknown_path_404(self):
        r = request(self.gw.port, "GET", "/v1/chat/completions")
        self.check_error(r, 405)
        self.assertEqual(r.headers["allow"], "POST")
        self.check_error(request(self.gw.port, "GET", "/v2/nothing"), 404)

    def test_bad_requests_do_not_disturb_a_stream_in_flight(self):
        result = {}

        def stream():
            result["r"] = harness.stream_events(self.gw.port, "/v1/chat/completions", chat(stream=True, max_tokens=64))

        t = threading.Thread(target=stream)
        t.start()
        for _ in range(20):
            request(self.gw.port, "POST", "/v1/chat/completions", b"{{{{", {"Content-Type": "application/json"})
            s = socket.create_connection(("127.0.0.1", self.gw.port))
            s.sendall(b"GARBAGE\r\n\r\n")
            s.recv(1024)
            s.close()
        t.join(10)
        status, _, events, _ = result["r"]
        self.assertEqual(status, 200)
        self.assertEqual(events[-1]["data"], "[DONE]")
        self.assertEqual(request(self.gw.port, "GET", "/healthz").status, 200)


class BackendFailures(SimCase):
    def config(self):
        c = sim_config(self.sim_port, self.replicas)
        c["timeouts"] = {"first_byte_ms": 500, "idle_ms": 500}
        return c

    def test_refused_backend_is_502(self):
        c = sim_config(self.sim_port)
        c["backends"] = [{"name": "dead", "url": "http://127.0.0.1:%d/v1" % free_port(), "models": MODELS}]
        gw = Gateway(self, c)
        r = gw.post("/v1/chat/completions", chat())
        self.assertEqual(r.status, 502)
        self.assertEqual(r.json()["error"]["code"], "bad_gateway")
        self.assertIn("connect", r.json()["error"]["message"])

    def test_stalled_backend_is_504_after_the_first_byte_timeout(self):
        for i in range(self.replicas):
            self.sim_faults(i, {"stall_ms": 3000})
        t0 = time.time()
        r = self.gw.post("/v1/chat/completions", chat())
        took = time.time() - t0
        self.assertEqual(r.status, 504)
        self.assertEqual(r.json()["error"]["code"], "gateway_timeout")
        self.assertGreater(took, 0.45)
        self.assertLess(took, 2.0)

    def test_malformed_backend_json_is_502(self):
        for i in range(self.replicas):
            self.sim_faults(i, {"malformed_rate": 1.0})
        r = self.gw.post("/v1/chat/completions", chat())
        self.assertEqual(r.status, 502)
        self.assertEqual(r.json()["error"]["code"], "bad_gateway")

    def test_backend_error_status_is_forwarded_in_openai_shape(self):
        for i in range(self.replicas):
            self.sim_faults(i, {"error_rate": 1.0, "error_status": 503})
        r = self.gw.post("/v1/chat/completions", chat())
        self.assertEqual(r.status, 503)
        self.assertIn("message", r.json()["error"])

    def test_connection_dropped_mid_stream_ends_with_an_error_event(self):
        for i in range(self.replicas):
            self.sim_faults(i, {"drop_after_tokens": 3})
        status, _, events, _ = harness.stream_events(self.gw.port, "/v1/chat/completions", chat(stream=True))
        self.assertEqual(status, 200)
        self.assertIn("error", json.loads(events[-1]["data"]))
        line = self.gw.log_lines(1)[-1]
        self.assertIsNotNone(line["error"])

    def test_error_event_mid_stream_is_relayed(self):
        for i in range(self.replicas):
            self.sim_faults(i, {"midstream_error_rate": 1.0, "midstream_error_after_tokens": 2})
        status, _, events, _ = harness.stream_events(self.gw.port, "/v1/chat/completions", chat(stream=True))
        self.assertEqual(status, 200)
        self.assertIn("error", json.loads(events[-1]["data"]))

    def test_an_error_event_before_any_content_everywhere_is_a_502_not_a_stream(self):
        for i in range(self.replicas):
            self.sim_faults(i, {"midstream_error_rate": 1.0})
        r = self.gw.post("/v1/chat/completions", chat(stream=True))
        self.assertEqual(r.status, 502)
        self.assertEqual(r.json()["error"]["code"], "bad_gateway")
        self.assertIn("before its first token", r.json()["error"]["message"])


class FixtureReplay(unittest.TestCase):
    """A backend that replays payloads recorded from llama.cpp's server."""

    def gateway(self, reply, **backend):
        self.backend = harness.ScriptedBackend(reply)
        self.addCleanup(self.backend.close)
        b = {"name": "llama", "url": "http://127.0.0.1:%d/v1" % self.backend.port, "models": ["tiny-llama"]}
        b.update(backend)
        return Gateway(self, {"backends": [b], "routes": [{"name": "r", "models": ["tiny-llama"]}]},
                       env={"LLAMA_KEY": "sk-secret-123"})

    def sse_reply(self, name):
        data = harness.fixture(name)
        data = data[:data.rfind(b"\n\n") + 2] if b"HTTP 200" in data else data
        events = [e + b"\n\n" for e in data.split(b"\n\n") if e.strip()]
        return lambda p, h, b: (200, {"Content-Type": "text/event-stream", "Transfer-Encoding": "chunked"},
                                events, 0.01, False)

    def test_recorded_stream_with_usage_reaches_the_client_without_the_usage_chunk(self):
        gw = self.gateway(self.sse_reply("llama-server/chat_stream_usage.sse"))
        status, _, events, raw = harness.stream_events(gw.port, "/v1/chat/completions",
                                                       chat(model="tiny-llama", stream=True))
        self.assertEqual(status, 200)
        recorded = harness.parse_sse(harness.fixture("llama-server/chat_stream_usage.sse"))
        self.assertEqual([e["data"] for e in events], [e["data"] for e in recorded if '"choices":[]' not in e["data"]])
        line = gw.log_lines(1)[-1]
        self.assertEqual((line["prompt_tokens"], line["completion_tokens"], line["cached_tokens"]), (31, 6, 8))

    def test_recorded_error_before_the_first_token_reaches_the_client_as_a_502(self):
        gw = self.gateway(self.sse_reply("llama-server/error_midstream.sse"))
        r = gw.post("/v1/chat/completions", chat(model="tiny-llama", stream=True))
        self.assertEqual(r.status, 502)
        self.assertIn("peg-native", r.json()["error"]["message"])

    def test_recorded_context_overflow_error_is_forwarded_with_its_status(self):
        body = harness.fixture("llama-server/error_context_overflow.txt").split(b"\n")[0]
        gw = self.gateway(lambda p, h, b: (400, {"Content-Type": "application/json"}, [body], 0, False))
        r = gw.post("/v1/chat/completions", chat(model="tiny-llama", stream=True))
        self.assertEqual(r.status, 400)
        self.assertEqual(r.json()["error"]["type"], "exceed_context_size_error")

    def test_api_key_goes_upstream_as_bearer_and_never_into_the_log(self):
        body = harness.fixture("llama-server/chat.json")
        gw = self.gateway(lambda p, h, b: (200, {"Content-Type": "application/json"}, [body], 0, False),
                          api_key_env="LLAMA_KEY")
        r = gw.post("/v1/chat/completions", chat(model="tiny-llama"), headers={"Authorization": "Bearer client-key"})
        self.assertEqual(r.status, 200)
        self.assertEqual(self.backend.received[0]["headers"]["authorization"], "Bearer sk-secret-123")
        self.assertEqual(self.backend.received[0]["path"], "/v1/chat/completions")
        line = gw.log_lines(1)[-1]
        with open(gw.log_path) as f:
            log = f.read()
        self.assertNotIn("sk-secret-123", log)
        self.assertNotIn("client-key", log)
        self.assertEqual(line["prompt_tokens"], 52)


class ClientAndBackendEdges(unittest.TestCase):
    """Timeouts towards clients, and backends that misbehave politely."""

    def gateway(self, reply, timeouts=None):
        self.backend = harness.ScriptedBackend(reply)
        self.addCleanup(self.backend.close)
        c = {"backends": [{"name": "b", "url": "http://127.0.0.1:%d/v1" % self.backend.port}],
             "routes": [{"name": "r", "models": ["*"]}]}
        if timeouts:
            c["timeouts"] = timeouts
        return Gateway(self, c)

    def json_reply(self, status=200, headers=None, body=None):
        body = body if body is not None else harness.fixture("llama-server/chat.json")
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        return lambda p, hh, b: (status, h, [body], 0, False)

    def test_stream_ends_for_the_client_at_done_even_if_the_backend_lingers(self):
        events = [b'data: {"choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n', b"data: [DONE]\n\n", 3.0]
        gw = self.gateway(lambda p, h, b: (200, {"Content-Type": "text/event-stream", "Transfer-Encoding": "chunked"},
                                           events, 0, False))
        t0 = time.time()
        status, _, evs, _ = harness.stream_events(gw.port, "/v1/chat/completions", chat(model="m", stream=True))
        self.assertEqual(status, 200)
        self.assertEqual(evs[-1]["data"], "[DONE]")
        self.assertLess(time.time() - t0, 1.5)
        line = gw.log_lines(1, timeout=6)[-1]
        self.assertEqual(line["status"], 200)
        self.assertIsNone(line["error"])
        self.assertLess(line["latency_ms"], 1500)

    def test_backend_429_with_retry_after_reaches_the_client_in_openai_shape(self):
        gw = self.gateway(self.json_reply(429, {"Retry-After": "7", "Content-Type": "text/plain"}, b"slow down"))
        r = gw.post("/v1/chat/completions", chat(model="m"))
        self.assertEqual(r.status, 429)
        self.assertEqual(r.headers.get("retry-after"), "7")
        self.assertEqual(r.json()["error"]["type"], "rate_limit_error")
        self.assertIn("slow down", r.json()["error"]["message"])

    def test_malformed_requests_the_listener_rejects_are_logged(self):
        gw = self.gateway(self.json_reply())
        s = socket.create_connection(("127.0.0.1", gw.port))
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n")
        data = s.recv(4096)
        s.close()
        self.assertTrue(data.startswith(b"HTTP/1.1 400"), data)
        line = gw.log_lines(1)[-1]
        self.assertEqual(line["status"], 400)
        self.assertIsNone(line["route"])
        self.assertIsNotNone(line["error"])

    def test_a_client_sending_its_head_too_slowly_is_disconnected(self):
        gw = self.gateway(self.json_reply(), {"client_header_ms": 400})
        s = socket.create_connection(("127.0.0.1", gw.port))
        s.settimeout(3)
        t0 = time.time()
        closed = False
        try:
            for ch in b"POST /v1/chat":
                s.sendall(bytes([ch]))
                time.sleep(0.1)
        except OSError:
            closed = True
        if not closed:
            got = b""
            while (d := s.recv(4096)) != b"":
                got += d
            self.assertTrue(got.startswith(b"HTTP/1.1 408 "), got)	# then closed
        self.assertLess(time.time() - t0, 2.5)

    def test_an_idle_keepalive_connection_is_closed_after_keepalive_ms(self):
        gw = self.gateway(self.json_reply(), {"keepalive_ms": 300})
        s = socket.create_connection(("127.0.0.1", gw.port))
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        s.settimeout(3)
        self.assertIn(b"200", s.recv(4096))
        t0 = time.time()
        self.assertEqual(s.recv(100), b"")
        self.assertLess(time.time() - t0, 1.5)

    def test_a_second_instance_on_the_same_port_refuses_to_start(self):
        gw = self.gateway(self.json_reply())
        c = dict(gw.config, admin="127.0.0.1:%d" % free_port())
        path = os.path.join(gw.dir, "second.json")
        with open(path, "w") as f:
            json.dump(c, f)
        r = subprocess.run([binary("switchyard"), "-c", path], capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot listen", r.stderr)


class Azure(unittest.TestCase):
    """An Azure OpenAI deployment (sy-sim stands in: the base URL names the deployment)."""

    def test_azure_gets_the_api_version_and_the_api_key_header(self):
        sim = free_port()
        start(self, [binary("sy-sim"), "--port", str(sim), "--speed", "0", "--quiet"], port=sim)
        gw = Gateway(self, {"backends": [{"name": "az", "kind": "azure", "url": "http://127.0.0.1:%d/v1" % sim,
                                          "api_key_env": "AZ_KEY", "api_version": "2025-01-01"}],
                            "routes": [{"name": "r", "models": ["gpt-4o"]}]}, env={"AZ_KEY": "az-secret"})
        r = gw.post("/v1/chat/completions", chat(model="gpt-4o"))
        self.assertEqual(r.status, 200, r.body)
        status, _, events, _ = harness.stream_events(gw.port, "/v1/chat/completions", chat(model="gpt-4o", stream=True))
        self.assertEqual(events[-1]["data"], "[DONE]")
        seen = request(sim, "GET", "/sim/requests").json()
        self.assertEqual([q["path"] for q in seen], ["/v1/chat/completions?api-version=2025-01-01"] * 2)
        self.assertEqual(seen[0]["headers"]["api-key"], "az-secret")
        self.assertNotIn("authorization", seen[0]["headers"])
        self.assertEqual(gw.log_lines(2)[-1]["backend_kind"], "azure")


class Admin(SimCase):
    def test_metrics_pass_promtool_and_count_requests(self):
        for _ in range(3):
            self.gw.post("/v1/chat/completions", chat())
        self.gw.post("/v1/chat/completions", chat(model="nope"))
        r = eventually(lambda: request(self.gw.admin, "GET", "/metrics"),
                       lambda r: b'route="-",code="404"} 1' in r.body)
        self.assertEqual(r.status, 200)
        p = subprocess.run(["promtool", "check", "metrics"], input=r.body, capture_output=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        text = r.body.decode()
        self.assertIn('switchyard_requests_total{route="chat",code="200"} 3', text)
        self.assertIn('switchyard_requests_total{route="-",code="404"} 1', text)

    def test_stats_json_has_per_route_and_endpoint_figures(self):
        for _ in range(4):
            self.gw.post("/v1/chat/completions", chat())
        s = eventually(lambda: request(self.gw.admin, "GET", "/admin/stats").json(),
                       lambda s: s["routes"]["chat"]["requests"] >= 4)
        self.assertEqual(s["routes"]["chat"]["requests"], 4)
        self.assertEqual(s["endpoints"]["sim0"]["requests"] + s["endpoints"]["sim1"]["requests"], 4)
        self.assertGreater(s["routes"]["chat"]["latency_ms"]["p99"], 0)


class BufferedAccessLog(SimCase):
    def config(self):
        return dict(sim_config(self.sim_port, self.replicas), access_log_flush_ms=300)

    def test_gathered_lines_arrive_whole_and_a_stop_writes_the_rest(self):
        for i in range(5):
            self.assertEqual(self.gw.post("/v1/chat/completions", chat()).status, 200)
        lines = self.gw.log_lines(5)
        self.assertEqual([l["status"] for l in lines], [200] * 5)
        for i in range(3):
            self.assertEqual(self.gw.post("/v1/chat/completions", chat()).status, 200)
        self.assertEqual(self.gw.proc.stop(), 0)
        self.assertEqual(len(self.gw.log_lines(8, timeout=0)), 8)


class Lifecycle(SimCase):
    speed = "1"

    def test_sighup_reloads_and_an_invalid_config_keeps_the_old(self):
        c = dict(self.gw.config)
        c["routes"] = [dict(c["routes"][0], aliases={"gpt-4o": "qwen2-7b"})]
        self.gw.write(c)
        self.gw.proc.signal(signal.SIGHUP)
        deadline = time.time() + 3
        while time.time() < deadline and self.gw.post("/v1/chat/completions", chat(model="gpt-4o")).status != 200:
            time.sleep(0.05)
        self.assertEqual(self.gw.post("/v1/chat/completions", chat(model="gpt-4o")).status, 200)
        self.assertEqual(self.gw.post("/v1/chat/completions", chat(model="gpt-4o-mini")).status, 404)
        with open(self.gw.path, "w") as f:
            f.write('{"routes": "broken"}')
        self.gw.proc.signal(signal.SIGHUP)
        deadline = time.time() + 5
        while "reload failed" not in self.gw.proc.output() and time.time() < deadline:
            time.sleep(0.05)
        self.assertIn("reload failed", self.gw.proc.output())
        self.assertEqual(self.gw.post("/v1/chat/completions", chat(model="gpt-4o")).status, 200)

    def test_admin_reload_reports_config_errors(self):
        with open(self.gw.path, "w") as f:
            f.write('{"routes": [], "bogus": 1}')
        r = request(self.gw.admin, "POST", "/admin/reload")
        self.assertEqual(r.status, 400)
        self.assertIn("bogus", r.json()["error"]["message"])

    def test_reload_does_not_disturb_a_stream_in_flight(self):
        self.sim_faults(0, {"slow_stream_ms": 50})
        self.sim_faults(1, {"slow_stream_ms": 50})
        result = {}
        t = threading.Thread(target=lambda: result.update(r=harness.stream_events(
            self.gw.port, "/v1/chat/completions", chat(stream=True, max_tokens=20))))
        t.start()
        time.sleep(0.2)
        c = dict(self.gw.config)
        c["routes"] = [dict(c["routes"][0], aliases={})]
        self.gw.write(c)
        self.gw.proc.signal(signal.SIGHUP)
        t.join(10)
        status, _, events, _ = result["r"]
        self.assertEqual(status, 200)
        self.assertEqual(events[-1]["data"], "[DONE]")
        tokens = [e for e in events[:-1] if json.loads(e["data"])["choices"][0]["delta"].get("content")]
        self.assertEqual(len(tokens), 20)

    def test_sigterm_lets_a_stream_finish_then_exits_0(self):
        self.sim_faults(0, {"slow_stream_ms": 50})
        self.sim_faults(1, {"slow_stream_ms": 50})
        result = {}
        t = threading.Thread(target=lambda: result.update(r=harness.stream_events(
            self.gw.port, "/v1/chat/completions", chat(stream=True, max_tokens=20))))
        t.start()
        time.sleep(0.2)
        self.gw.proc.signal(signal.SIGTERM)
        time.sleep(0.1)
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", self.gw.port), timeout=1)
        t.join(10)
        status, _, events, _ = result["r"]
        self.assertEqual(status, 200)
        self.assertEqual(events[-1]["data"], "[DONE]")
        self.assertEqual(self.gw.proc.p.wait(5), 0)


class CommandLine(unittest.TestCase):
    def run_sy(self, *args):
        return subprocess.run([binary("switchyard")] + list(args), capture_output=True, text=True, timeout=10)

    def test_version_and_help(self):
        self.assertRegex(self.run_sy("--version").stdout, r"^switchyard \d+\.\d+")
        h = self.run_sy("-h")
        self.assertEqual(h.returncode, 0)
        for opt in ("--upstream", "-t", "-c"):
            self.assertIn(opt, h.stdout)

    def test_check_mode_accepts_the_default_config(self):
        r = self.run_sy("-t", "-c", os.path.join(harness.SRCDIR, "conf", "switchyard.json"))
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_check_mode_rejects_a_bad_config_with_file_line_and_path(self):
        d = tempfile.mkdtemp()
        p = os.path.join(d, "bad.json")
        with open(p, "w") as f:
            f.write('{\n "backends": [{"name": "a", "url": "http://127.0.0.1:1/v1"}],\n'
                    ' "routes": [{"name": "r", "models": ["m"], "policy": "fastest"}]\n}\n')
        r = self.run_sy("-t", "-c", p)
        self.assertEqual(r.returncode, 1)
        self.assertIn(p + ":3:", r.stderr)
        self.assertIn('routes[0].policy: unknown policy "fastest"; known: round_robin', r.stderr)

    def test_zero_config_upstream_mode_proxies_any_model(self):
        body = harness.fixture("llama-server/chat.json")
        backend = harness.ScriptedBackend(lambda p, h, b: (200, {"Content-Type": "application/json"}, [body], 0, False))
        self.addCleanup(backend.close)
        port, admin = free_port(), free_port()
        proc = start(self, [binary("switchyard"), "--upstream", "http://127.0.0.1:%d/v1" % backend.port,
                            "--listen", "127.0.0.1:%d" % port, "--admin", "127.0.0.1:%d" % admin],
                     port=port)
        r = post_json(port, "/v1/chat/completions", chat(model="anything-at-all"))
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(json.loads(backend.received[0]["body"])["model"], "anything-at-all")
        deadline = time.time() + 2
        while '"anything-at-all"' not in proc.output() and time.time() < deadline:
            time.sleep(0.02)
        line = [l for l in proc.output().splitlines() if l.startswith("{")][-1]
        self.assertEqual(json.loads(line)["client_model"], "anything-at-all")


class Https(unittest.TestCase):
    """A TLS backend with a self-signed certificate for 127.0.0.1."""

    def setUp(self):
        import ssl
        self.dir = tempfile.mkdtemp(prefix="sy-tls-")
        self.cert = os.path.join(self.dir, "cert.pem")
        key = os.path.join(self.dir, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", key, "-out", self.cert], check=True, capture_output=True)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, key)
        body = harness.fixture("llama-server/chat.json")
        self.backend = harness.ScriptedBackend(
            lambda p, h, b: (200, {"Content-Type": "application/json"}, [body], 0, False), tls_context=ctx)
        self.addCleanup(self.backend.close)

    def gateway(self, tls):
        b = {"name": "tls", "url": "https://127.0.0.1:%d/v1" % self.backend.port, "models": ["tiny-llama"]}
        if tls is not None:
            b["tls"] = tls
        return Gateway(self, {"backends": [b], "routes": [{"name": "r", "models": ["tiny-llama"]}]})

    def test_https_backend_verified_against_the_configured_ca(self):
        gw = self.gateway({"ca_file": self.cert})
        for _ in range(3):
            r = gw.post("/v1/chat/completions", chat(model="tiny-llama"))
            self.assertEqual(r.status, 200, r.body)
        self.assertEqual(len(self.backend.received), 3)

    def test_https_backend_with_an_unknown_certificate_is_refused(self):
        gw = self.gateway(None)
        r = gw.post("/v1/chat/completions", chat(model="tiny-llama"))
        self.assertEqual(r.status, 502)
        self.assertIn("TLS", r.json()["error"]["message"])
        self.assertEqual(self.backend.received, [])


class Limits(SimCase):
    def config(self):
        c = sim_config(self.sim_port, self.replicas)
        c["limits"] = {"max_connections": 2}
        return c

    def test_connections_over_the_limit_get_503(self):
        a = socket.create_connection(("127.0.0.1", self.gw.port))
        b = socket.create_connection(("127.0.0.1", self.gw.port))
        time.sleep(0.2)
        r = request(self.gw.port, "GET", "/healthz")
        self.assertEqual(r.status, 503)
        self.assertEqual(r.json()["error"]["code"], "too_many_connections")
        a.close()
        b.close()
        time.sleep(0.2)
        self.assertEqual(request(self.gw.port, "GET", "/healthz").status, 200)


if __name__ == "__main__":
    harness.main()
