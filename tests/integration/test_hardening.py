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


if __name__ == "__main__":
    harness.main()
