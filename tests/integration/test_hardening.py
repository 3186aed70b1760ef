#!/usr/bin/env python3
# tests/integration/test_hardening.py: what an adversarial run found — a status outside 100-599 and a malformed stream event reach the client as errors in its own dialect, never as successes.
"""Regression tests of the hardening issue's bugs, against scripted
backends that misbehave the way the adversarial run's did."""

import json
import signal
import socket
import threading
import time
import unittest
import zlib
import gzip

import harness
from test_stream_fidelity import Fleet, messages, per_event
from test_proxy import chat

GOOD = b'data: {"id":"c","object":"chat.completion.chunk","model":"tiny-llama","choices":[{"index":0,"delta":{"content":"Hel"}}]}\n\n'
CUT = b'data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"cont\n\n'
TAIL = [b'data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"lo"}}]}\n\n',
        b'data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n',
        b"data: [DONE]\n\n"]


def stream_of(events):
    return lambda p, h, b: (200, {"Content-Type": "text/event-stream",
                                  "Transfer-Encoding": "chunked"}, events, 0.005, False)


class StatusOutOfRange(Fleet):
    def test_a_status_outside_100_to_599_is_a_502_not_relayed(self):
        gw = self.gateway(lambda p, h, b: (999, {"Content-Type": "application/json"},
                                           [b'{"x":1}'], 0, False), route={"retries": {"max": 0}})
        r = gw.post("/v1/chat/completions", chat(model="tiny-llama"))
        self.assertEqual(r.status, 502, r.body)
        self.assertIn("error", r.json())
        line = gw.log_lines(1)[-1]
        self.assertEqual(line["status"], 502)
        self.assertIsNotNone(line["error"])
        r = gw.post("/v1/messages", messages(), headers={"anthropic-version": "2023-06-01"})
        self.assertEqual(r.status, 502)
        self.assertEqual(r.json()["type"], "error")


class MalformedStreamEvent(Fleet):
    def test_an_openai_client_gets_an_error_event_not_a_success(self):
        gw = self.gateway(stream_of([GOOD, CUT] + TAIL))
        status, _, events, _ = harness.stream_events(gw.port, "/v1/chat/completions",
                                                     chat(model="tiny-llama", stream=True))
        self.assertEqual(status, 200)
        datas = [e["data"] for e in events]
        self.assertNotIn("[DONE]", datas)
        last = json.loads(datas[-1])
        self.assertIn("error", last)
        self.assertEqual(last["error"]["code"], "bad_backend_event")
        # The good chunk before it arrived as it was; nothing after it.
        self.assertEqual(json.loads(datas[0])["choices"][0]["delta"]["content"], "Hel")
        self.assertEqual(len(datas), 2)
        line = gw.log_lines(1)[-1]
        self.assertIsNotNone(line["error"])

    def test_an_anthropic_client_gets_event_error(self):
        self.gateway(stream_of([GOOD, CUT] + TAIL))
        _, events = self.anthropic_stream()
        names = [n for n, _ in events]
        self.assertEqual(names[0], "message_start")
        self.assertEqual(names[-1], "error")
        self.assertNotIn("message_stop", names)
        self.assertEqual(events[-1][1]["type"], "error")

    def test_a_malformed_usage_chunk_is_an_error_too(self):
        bad_usage = b'data: {"choices":[],"usage":{"prompt_tokens":3,\n\n'
        gw = self.gateway(stream_of([GOOD, bad_usage, b"data: [DONE]\n\n"]))
        status, _, events, _ = harness.stream_events(gw.port, "/v1/chat/completions",
                                                     chat(model="tiny-llama", stream=True))
        self.assertEqual(json.loads(events[-1]["data"])["error"]["code"], "bad_backend_event")


class NoRetryWithoutAnEndpoint(Fleet):
    def test_no_retry_is_counted_or_waited_for_when_no_other_endpoint_can_take_it(self):
        gw = self.gateway(lambda p, h, b: (503, {"Content-Type": "application/json"},
                                           [b'{"error":{"message":"busy"}}'], 0, False),
                          route={"retries": {"max": 1, "backoff_ms": 400, "max_backoff_ms": 400}})
        cfg = dict(gw.config)
        # A second endpoint that takes nothing (weight 0: being drained).
        cfg["backends"] = cfg["backends"] + [dict(cfg["backends"][0], name="spare", weight=0)]
        gw.write(cfg)
        gw.proc.signal(signal.SIGHUP)
        time.sleep(0.3)
        t0 = time.time()
        r = gw.post("/v1/chat/completions", chat(model="tiny-llama"))
        took = time.time() - t0
        self.assertEqual(r.status, 503)
        line = gw.log_lines(1)[-1]
        self.assertEqual(line["retries"], 0)
        self.assertLess(took, 0.35)


class Drain(Fleet):
    def test_sigterm_closes_connections_that_never_sent_a_byte_at_once(self):
        body = json.dumps({"id": "c", "object": "chat.completion", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "hi"},
             "finish_reason": "stop"}]}).encode()
        gw = self.gateway(lambda p, h, b: (200, {"Content-Type": "application/json"}, [body], 0,
                                           False))
        gw.write(dict(gw.config, timeouts={"drain_ms": 20000}))
        gw.proc.signal(signal.SIGHUP)
        time.sleep(0.3)
        silent = [socket.create_connection(("127.0.0.1", gw.port)) for _ in range(3)]
        used = socket.create_connection(("127.0.0.1", gw.port))
        req = json.dumps(chat(model="tiny-llama")).encode()
        used.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\nContent-Type: "
                     b"application/json\r\nContent-Length: %d\r\n\r\n" % len(req) + req)
        self.assertIn(b"200 OK", used.recv(65536))
        t0 = time.time()
        gw.proc.signal(signal.SIGTERM)
        self.assertEqual(gw.proc.p.wait(10), 0)
        self.assertLess(time.time() - t0, 2.0)
        for s in silent + [used]:
            s.settimeout(2)
            self.assertEqual(s.recv(10), b"")
            s.close()


class DrainTimeout(Fleet):
    def test_requests_cut_at_the_drain_timeout_get_a_503_or_an_error_event_and_say_so(self):
        slow_events = [b'data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,'
                       b'"delta":{"content":"w "}}]}\n\n'] * 40 + [b"data: [DONE]\n\n"]

        def reply(path, headers, body):
            if b'"stream":true' in body.replace(b" ", b""):
                return 200, {"Content-Type": "text/event-stream",
                             "Transfer-Encoding": "chunked"}, slow_events, 0.1, False
            return 200, {"Content-Type": "application/json"}, [5.0, b"{}"], 0, False
        gw = self.gateway(reply)
        gw.write(dict(gw.config, timeouts={"drain_ms": 600}))
        gw.proc.signal(signal.SIGHUP)
        time.sleep(0.3)
        got = {}
        threading.Thread(target=lambda: got.update(s=harness.stream_events(
            gw.port, "/v1/chat/completions", chat(model="tiny-llama", stream=True)))).start()
        threading.Thread(target=lambda: got.update(w=gw.post(
            "/v1/chat/completions", chat(model="tiny-llama")))).start()
        time.sleep(0.5)
        t0 = time.time()
        gw.proc.signal(signal.SIGTERM)
        self.assertEqual(gw.proc.p.wait(10), 0)
        self.assertLess(time.time() - t0, 3.0)
        deadline = time.time() + 5
        while len(got) < 2 and time.time() < deadline:
            time.sleep(0.05)
        status, _, events, _ = got["s"]
        self.assertEqual(status, 200)
        last = json.loads(events[-1]["data"])
        self.assertEqual(last["error"]["code"], "drain_timeout")
        w = got["w"]
        self.assertEqual(w.status, 503)
        self.assertEqual(w.json()["error"]["code"], "drain_timeout")
        lines = gw.log_lines(2)
        self.assertEqual(sorted((l["status"], l["error"]) for l in lines),
                         [(200, "drain timeout"), (503, "drain timeout")])


def whole(content="hi"):
    body = json.dumps({"id": "c", "object": "chat.completion", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": content},
         "finish_reason": "stop"}]}).encode()
    return lambda p, h, b: (200, {"Content-Type": "application/json"}, [body], 0, False)


def exchange(port, data, wait=10.0):
    """Sends data on a new connection; returns all it gets until closed."""
    s = socket.create_connection(("127.0.0.1", port), timeout=wait)
    try:
        s.sendall(data)
        got = b""
        while True:
            try:
                d = s.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not d:
                break
            got += d
        return got
    finally:
        s.close()


def open_connections(gw):
    """The gauge of open client connections in gw's /metrics."""
    for line in harness.request(gw.admin, "GET", "/metrics").body.decode().splitlines():
        if line.startswith("switchyard_client_connections "):
            return int(line.split()[1])
    return None


def keepalive_get(s, path="/healthz"):
    """Sends a GET on the open socket s; returns the response's head."""
    s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
    got = b""
    while b"\r\n\r\n" not in got:
        d = s.recv(65536)
        if not d:
            break
        got += d
    return got


class ClientProtocol(Fleet):
    def setUp(self):
        self.gateway(whole(), top={"timeouts": {"client_header_ms": 300, "client_body_ms": 300},
                                   "limits": {"max_body_bytes": 4096}})

    def test_a_head_that_does_not_arrive_in_time_gets_a_408(self):
        got = exchange(self.gw.port, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
        self.assertTrue(got.startswith(b"HTTP/1.1 408 "), got)
        self.assertIn(b"request_timeout", got)
        self.assertEqual(self.gw.log_lines(1)[-1]["status"], 408)

    def test_a_body_that_does_not_arrive_in_time_gets_a_408(self):
        got = exchange(self.gw.port, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                       b"Content-Length: 100\r\n\r\n{\"model\"")
        self.assertTrue(got.startswith(b"HTTP/1.1 408 "), got)
        self.assertIn(b"request body did not arrive in time", got)

    def test_a_connection_that_sent_nothing_is_closed_without_a_response(self):
        self.assertEqual(exchange(self.gw.port, b""), b"")

    def test_a_chunk_declared_larger_than_the_limit_is_refused_before_it_arrives(self):
        # The chunk's bytes never come: the 413 is the answer to its size
        # line, not to a body timeout (which would be a 408).
        got = exchange(self.gw.port, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                       b"Transfer-Encoding: chunked\r\n\r\n100000\r\n{\"model\"")
        self.assertTrue(got.startswith(b"HTTP/1.1 413 "), got)
        self.assertIn(b"body_too_large", got)

    def test_a_body_naming_the_model_twice_is_a_400(self):
        r = harness.request(self.gw.port, "POST", "/v1/chat/completions",
                            b'{"model":"tiny-llama","messages":[{"role":"user","content":"hi"}],'
                            b'"model":"other"}', {"Content-Type": "application/json"})
        self.assertEqual(r.status, 400, r.body)
        self.assertIn("duplicate", r.json()["error"]["message"])
        self.assertEqual(self.backend.received, [])

    def test_an_absolute_form_target_is_served_as_its_path(self):
        body = json.dumps(chat(model="tiny-llama")).encode()
        got = exchange(self.gw.port, b"POST http://gw.example:80/v1/chat/completions HTTP/1.1\r\n"
                       b"Host: gw.example\r\nConnection: close\r\n"
                       b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        self.assertTrue(got.startswith(b"HTTP/1.1 200 "), got)
        self.assertEqual([r["path"] for r in self.backend.received], ["/v1/chat/completions"])
        self.assertEqual(self.gw.log_lines(1)[-1]["status"], 200)

    def test_the_word_model_in_a_message_is_not_a_duplicate(self):
        r = self.gw.post("/v1/chat/completions", chat('which "model" are you?', model="tiny-llama"))
        self.assertEqual(r.status, 200, r.body)


class RateLimitedBackend(Fleet):
    def test_the_only_endpoints_429_is_passed_on_with_the_time_left(self):
        gw = self.gateway(lambda p, h, b: (
            429, {"Content-Type": "application/json", "Retry-After": "30"},
            [b'{"error":{"message":"slow down","type":"x"}}'], 0, False),
            route={"retries": {"max": 1}})
        r = gw.post("/v1/chat/completions", chat(model="tiny-llama"))
        self.assertEqual(r.status, 429, r.body)
        self.assertEqual(r.headers.get("retry-after"), "30")
        time.sleep(1.1)
        # The endpoint rests: the gateway answers for it, with the time left.
        r = gw.post("/v1/chat/completions", chat(model="tiny-llama"))
        self.assertEqual(r.status, 429, r.body)
        self.assertLessEqual(int(r.headers.get("retry-after")), 29)
        self.assertGreaterEqual(int(r.headers.get("retry-after")), 1)
        self.assertEqual(r.json()["error"]["code"], "rate_limited")
        self.assertEqual(r.json()["error"]["type"], "rate_limit_error")
        r = gw.post("/v1/messages", messages(), headers={"anthropic-version": "2023-06-01"})
        self.assertEqual(r.status, 429, r.body)
        self.assertEqual(r.json()["error"]["type"], "rate_limit_error")
        self.assertIn("retry-after", r.headers)
        self.assertEqual(len(self.backend.received), 1)
        self.assertEqual([l["status"] for l in gw.log_lines(3)], [429, 429, 429])


class ConnectionGauge(Fleet):
    def test_metrics_count_the_open_client_connections(self):
        gw = self.gateway(whole())
        gauge = lambda: open_connections(gw)
        self.assertEqual(harness.eventually(gauge, lambda v: v == 0), 0)
        conns = [socket.create_connection(("127.0.0.1", gw.port)) for _ in range(3)]
        self.assertEqual(harness.eventually(gauge, lambda v: v == 3), 3)
        # Admin connections (the scrapes themselves) are not counted.
        for c in conns:
            c.close()
        self.assertEqual(harness.eventually(gauge, lambda v: v == 0), 0)


class BufferedCap(Fleet):
    def test_an_answer_past_the_global_buffer_cap_is_a_503_with_retry_after(self):
        body = json.dumps({"id": "c", "object": "chat.completion", "model": "tiny-llama",
                           "choices": [{"index": 0, "finish_reason": "stop",
                                        "message": {"role": "assistant", "content": "x" * 3000}}],
                           "usage": {"prompt_tokens": 1, "completion_tokens": 1,
                                     "total_tokens": 2}}).encode()
        gw = self.gateway(lambda p, h, b: (200, {"Content-Type": "application/json"}, [body],
                                           0, False),
                          route={"retries": {"max": 0}}, top={"limits": {"max_buffered_bytes": 2048}})
        for _ in range(2):	# the bytes of the first are given back
            r = gw.post("/v1/chat/completions", chat(model="tiny-llama"))
            self.assertEqual(r.status, 503, r.body)
            self.assertEqual(r.headers.get("retry-after"), "1")
            self.assertIn("max_buffered_bytes", r.json()["error"]["message"])
        self.assertEqual([l["status"] for l in gw.log_lines(2)], [503, 503])
        gw.config["limits"] = {"max_buffered_bytes": 8192}
        gw.write(gw.config)
        self.assertEqual(harness.request(gw.admin, "POST", "/admin/reload").status, 200)
        for _ in range(3):	# each answer's bytes are given back when it is sent
            r = gw.post("/v1/chat/completions", chat(model="tiny-llama"))
            self.assertEqual(r.status, 200, r.body)
            self.assertEqual(r.json()["choices"][0]["message"]["content"], "x" * 3000)


class PerPeerLimit(Fleet):
    def test_connections_from_one_address_past_the_limit_get_a_503(self):
        gw = self.gateway(whole(), top={"limits": {"max_connections_per_peer": 2}})
        held = []
        deadline = time.time() + 10
        # Two connections held, each answered (so accepted and counted).  A
        # worker may still hold the harness's readiness probe at first: a
        # connection refused then is tried again.
        while len(held) < 2 and time.time() < deadline:
            c = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
            self.addCleanup(c.close)
            if keepalive_get(c).startswith(b"HTTP/1.1 200 "):
                held.append(c)
            else:
                c.close()
                time.sleep(0.05)
        self.assertEqual(len(held), 2)
        r = harness.request(gw.port, "GET", "/healthz")
        self.assertEqual(r.status, 503, r.body)
        self.assertIn("from this address", r.json()["error"]["message"])
        self.assertEqual(r.headers.get("retry-after"), "1")
        # The admin listener does not count against it.
        self.assertEqual(harness.request(gw.admin, "GET", "/healthz").status, 200)
        held.pop().close()
        self.assertEqual(harness.eventually(lambda: harness.request(gw.port, "GET", "/healthz")
                                            .status, lambda s: s == 200), 200)


class BackendRefusal(Fleet):
    SECRET = b'{"error":{"message":"Incorrect API key provided: sk-live-SECRET"}}'

    def refusing(self, status=401, **backend):
        return self.gateway(lambda p, h, b: (status, {"Content-Type": "application/json"},
                                             [self.SECRET], 0, False),
                            route={"retries": {"max": 0}}, **backend)

    def test_a_backends_401_is_a_502_that_does_not_echo_its_body(self):
        gw = self.refusing()
        r = gw.post("/v1/chat/completions", chat(model="tiny-llama"))
        self.assertEqual(r.status, 502, r.body)
        self.assertNotIn(b"SECRET", r.body)
        self.assertIn("refused the gateway's credentials (401)", r.json()["error"]["message"])
        status, _, events, body = harness.stream_events(gw.port, "/v1/chat/completions",
                                                         chat(model="tiny-llama", stream=True))
        self.assertEqual(status, 502)
        self.assertNotIn(b"SECRET", body)
        r = gw.post("/v1/messages", messages(), headers={"anthropic-version": "2023-06-01"})
        self.assertEqual(r.status, 502, r.body)
        self.assertEqual(r.json()["type"], "error")
        lines = gw.log_lines(3)
        self.assertEqual([l["status"] for l in lines], [502, 502, 502])
        self.assertIn("401", lines[0]["error"])
        self.assertNotIn("SECRET", json.dumps(lines))

    def test_a_403_is_not_relayed_either(self):
        r = self.refusing(403).post("/v1/chat/completions", chat(model="tiny-llama"))
        self.assertEqual(r.status, 502, r.body)
        self.assertIn("(403)", r.json()["error"]["message"])

    def test_with_the_clients_own_key_the_refusal_is_the_clients_to_read(self):
        gw = self.refusing(forward_client_key=True)
        r = gw.post("/v1/chat/completions", chat(model="tiny-llama"),
                    headers={"Authorization": "Bearer sk-theirs"})
        self.assertEqual(r.status, 401, r.body)
        self.assertIn(b"Incorrect API key", r.body)


class CompressedBodies(Fleet):
    """Bodies sent with Content-Encoding: decoded before anything reads
    them, under a size and a ratio cap; errors in the client's own shape."""

    def setUp(self):
        self.gateway(whole(), top={"limits": {"max_body_bytes": 65536,
                                              "max_inflate_ratio": 50}})

    def send(self, data, encoding, path="/v1/chat/completions", headers=None):
        h = {"Content-Type": "application/json", "Content-Encoding": encoding}
        h.update(headers or {})
        return harness.request(self.gw.port, "POST", path, data, h)

    def test_gzip_and_deflate_bodies_reach_the_backend_decoded(self):
        body = json.dumps(chat("hello from a gzip body", model="tiny-llama")).encode()
        raw = zlib.compressobj(wbits=-15)
        for enc, data in [("gzip", gzip.compress(body)), ("x-gzip", gzip.compress(body)),
                          ("deflate", zlib.compress(body)),
                          ("deflate", raw.compress(body) + raw.flush())]:
            r = self.send(data, enc)
            self.assertEqual(r.status, 200, (enc, r.body))
            got = json.loads(self.backend.received[-1]["body"])
            self.assertEqual(got["messages"][0]["content"], "hello from a gzip body")
            self.assertNotIn("content-encoding", self.backend.received[-1]["headers"])
        self.assertEqual([l["status"] for l in self.gw.log_lines(4)], [200] * 4)

    def test_another_encoding_is_a_415(self):
        r = self.send(b"\x1b\x00\x00", "br")
        self.assertEqual(r.status, 415, r.body)
        self.assertEqual(r.json()["error"]["code"], "unsupported_content_encoding")
        self.assertEqual(self.gw.log_lines(1)[-1]["status"], 415)
        self.assertEqual(self.backend.received, [])

    def test_a_corrupt_or_cut_body_is_a_400(self):
        good = gzip.compress(json.dumps(chat(model="tiny-llama")).encode())
        for data in [b"not gzip at all", good[:len(good) // 2], good + b"trailing"]:
            r = self.send(data, "gzip")
            self.assertEqual(r.status, 400, (data, r.body))
            self.assertIn("Content-Encoding", r.json()["error"]["message"])
        self.assertEqual(self.backend.received, [])

    def test_a_small_body_that_expands_past_the_ratio_or_the_size_is_a_413(self):
        pad = "a" * 40000     # 40 kB of one letter: ~100 bytes gzipped, past 50x
        bomb = gzip.compress(json.dumps(chat(pad, model="tiny-llama")).encode())
        self.assertLess(len(bomb) * 50, 40000)
        r = self.send(bomb, "gzip")
        self.assertEqual(r.status, 413, r.body)
        self.assertIn("max_inflate_ratio", r.json()["error"]["message"])
        # Random text does not compress: past max_body_bytes once decoded.
        big = json.dumps(chat(" ".join("%x" % (i * 2654435761 % 2**32) for i in range(9000)),
                              model="tiny-llama")).encode()
        self.assertGreater(len(big), 65536)
        r = self.send(gzip.compress(big), "gzip")
        self.assertEqual(r.status, 413, r.body)
        self.assertEqual(self.backend.received, [])
        # The connection's other requests are not disturbed.
        self.assertEqual(self.send(gzip.compress(json.dumps(chat(model="tiny-llama")).encode()),
                                   "gzip").status, 200)

    def test_an_anthropic_client_gets_its_own_error_shape(self):
        r = self.send(b"garbage", "gzip", "/v1/messages", {"anthropic-version": "2023-06-01"})
        self.assertEqual(r.status, 400, r.body)
        self.assertEqual(r.json()["type"], "error")
        self.assertEqual(r.json()["error"]["type"], "invalid_request_error")
        r = self.send(gzip.compress(json.dumps(messages()).encode()), "gzip",
                      "/v1/messages/count_tokens", {"anthropic-version": "2023-06-01"})
        self.assertEqual(r.status, 200, r.body)
        self.assertGreater(r.json()["input_tokens"], 0)


if __name__ == "__main__":
    harness.main()
