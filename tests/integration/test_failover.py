"""Failover before the first token: a streamed request whose backend fails
before any content reached the client (an error event, a dropped
connection, a 5xx, no first token within retries.first_token_ms) is
answered by another endpoint as one normal stream, in the OpenAI and the
Anthropic client APIs; after content the stream ends with an error event
as before.  And a backend that does not speak HTTP fails its try at once."""
import json
import socket
import threading
import time

import harness
from harness import request
from test_proxy import Gateway, chat
from test_resilience import MODELS, Fleet


def message(stream=True):
    return {"model": "llama-3-8b", "max_tokens": 8, "stream": stream,
            "messages": [{"role": "user", "content": "Say hello to the gateway"}]}


class TwoReplicas(Fleet):
    """sy-sim with two replicas, sim0 and sim1, behind one route."""
    replicas = 2

    def gateway(self, retries=None, **top):
        route = {"policy": "round_robin", "ejection": {"consecutive_failures": 0}}
        if retries is not None:
            route["retries"] = retries
        return Fleet.gateway(self, route, **top)

    def served(self, i):
        """Chat requests replica i received, in the OpenAI or the Anthropic API."""
        by_path = request(self.sim_port + i, "GET", "/sim/stats").json().get("by_path", {})
        return sum(sum(by_path.get(p, {}).values()) for p in ("/v1/chat/completions", "/v1/messages"))

    def openai_stream(self, gw):
        """A streamed chat answer; checks it is whole and normal, returns its text."""
        t0 = time.time()
        status, _, events, raw = harness.stream_events(gw.port, "/v1/chat/completions", chat(stream=True))
        took = time.time() - t0
        self.assertEqual(status, 200, raw)
        self.assertEqual(events[-1]["data"], "[DONE]", raw)
        chunks = [json.loads(e["data"]) for e in events[:-1]]
        self.assertTrue(all("error" not in c for c in chunks), raw)
        self.assertEqual(chunks[0]["choices"][0]["delta"].get("role"), "assistant")
        self.assertEqual(sum(1 for c in chunks if c["choices"][0]["delta"].get("role")), 1, raw)
        self.assertIsNotNone(chunks[-1]["choices"][0]["finish_reason"])
        text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
        self.assertTrue(text.strip())
        return text, took

    def anthropic_stream(self, gw):
        r = request(gw.port, "POST", "/v1/messages", message(),
                    {"anthropic-version": "2023-06-01", "x-api-key": "client"})
        self.assertEqual(r.status, 200, r.body)
        events = harness.parse_sse(r.body)
        names = [e["event"] for e in events]
        self.assertEqual(names[0], "message_start", r.body)
        self.assertEqual(names[-2:], ["message_delta", "message_stop"], r.body)
        self.assertNotIn("error", names)
        self.assertEqual(names.count("message_start"), 1)
        text = "".join(json.loads(e["data"])["delta"]["text"] for e in events
                       if e["event"] == "content_block_delta")
        self.assertTrue(text.strip())
        return text

    def check_failover(self, gw, n):
        """n requests, each a whole normal stream: those that tried sim0 went on to sim1."""
        lines = gw.log_lines(n)
        self.assertEqual(len(lines), n)
        self.assertTrue(all(l["endpoint"] == "sim1" and l["status"] == 200 for l in lines), lines)
        self.assertTrue(all(l["error"] is None for l in lines), lines)
        self.assertGreaterEqual(sum(l["retries"] for l in lines), 1, lines)
        self.assertGreaterEqual(self.served(0), 1)
        self.assertEqual(self.served(1), n)
        return lines


class BeforeTheFirstToken(TwoReplicas):
    def failover(self, faults, retries=None, **top):
        self.faults(0, faults)
        gw = self.gateway(retries, **top)
        texts = [self.openai_stream(gw)[0] for _ in range(3)]
        texts += [self.anthropic_stream(gw) for _ in range(3)]
        self.check_failover(gw, 6)
        return gw

    def test_an_error_event_before_content_is_answered_by_another_endpoint(self):
        self.failover({"midstream_error_rate": 1.0, "midstream_error_after_tokens": 0})

    def test_a_connection_dropped_before_content_is_answered_by_another_endpoint(self):
        self.failover({"drop_after_tokens": 0})

    def test_a_500_to_a_stream_is_answered_by_another_endpoint(self):
        self.failover({"error_rate": 1.0, "error_status": 500})

    def test_anthropic_backends_fail_over_before_content_too(self):
        self.faults(0, {"midstream_error_rate": 1.0, "midstream_error_after_tokens": 0})
        gw = self.gateway(backends=self.backends(sim0={"kind": "anthropic"}, sim1={"kind": "anthropic"}))
        for _ in range(3):
            self.openai_stream(gw)
        for _ in range(3):
            self.anthropic_stream(gw)
        self.check_failover(gw, 6)

    def test_a_429_to_a_stream_is_answered_by_another_endpoint(self):
        self.faults(0, {"rate_limit_rate": 1.0, "retry_after": 30})
        gw = self.gateway()
        for _ in range(3):
            self.openai_stream(gw)
        self.assertTrue(all(l["endpoint"] == "sim1" for l in gw.log_lines(3)))

    def test_no_first_token_within_first_token_ms_is_answered_by_another_endpoint(self):
        self.faults(0, {"stall_ms": 5000})
        gw = self.gateway({"first_token_ms": 300},
                          timeouts={"first_byte_ms": 20000, "idle_ms": 20000})
        for _ in range(4):
            _, took = self.openai_stream(gw)
            self.assertLess(took, 2.0)
        self.check_failover(gw, 4)

    def test_a_stall_is_not_retried_when_first_token_is_not_a_retry_condition(self):
        self.faults(0, {"stall_ms": 5000})
        self.faults(1, {"stall_ms": 5000})
        gw = self.gateway({"first_token_ms": 300, "on": ["connect", "5xx"]})
        t0 = time.time()
        r = gw.post("/v1/chat/completions", chat(stream=True))
        self.assertEqual(r.status, 504)
        self.assertEqual(r.json()["error"]["code"], "gateway_timeout")
        self.assertIn("first_token_ms", r.json()["error"]["message"])
        self.assertLess(time.time() - t0, 2.0)
        self.assertEqual(gw.log_lines(1)[-1]["retries"], 0)

    def test_without_first_token_ms_a_slow_first_token_is_waited_for(self):
        self.faults(0, {"stall_ms": 800})
        self.faults(1, {"stall_ms": 800})
        gw = self.gateway()
        _, took = self.openai_stream(gw)
        self.assertGreater(took, 0.7)
        self.assertEqual(gw.log_lines(1)[-1]["retries"], 0)

    def test_a_failure_before_content_everywhere_is_an_error_status_not_a_stream(self):
        self.faults(0, {"drop_after_tokens": 0})
        self.faults(1, {"drop_after_tokens": 0})
        gw = self.gateway()
        r = gw.post("/v1/chat/completions", chat(stream=True))
        self.assertEqual(r.status, 502, r.body)
        self.assertEqual(r.json()["error"]["code"], "bad_gateway")
        line = gw.log_lines(1)[-1]
        self.assertEqual((line["status"], line["retries"]), (502, 1))


class AfterContent(TwoReplicas):
    def test_an_error_event_after_content_ends_the_stream_and_is_not_retried(self):
        for i in range(2):
            self.faults(i, {"midstream_error_rate": 1.0, "midstream_error_after_tokens": 2})
        gw = self.gateway()
        status, _, events, _ = harness.stream_events(gw.port, "/v1/chat/completions", chat(stream=True))
        self.assertEqual(status, 200)
        self.assertIn("error", json.loads(events[-1]["data"]))
        self.assertTrue(any((json.loads(e["data"])["choices"][0]["delta"].get("content") or "")
                            for e in events[:-1]))
        self.assertEqual(self.served(0) + self.served(1), 1)
        line = gw.log_lines(1)[-1]
        self.assertEqual(line["retries"], 0)
        self.assertEqual(line["error"], "backend sent an error event mid-stream")

    def test_a_drop_after_content_ends_the_stream_and_is_not_retried(self):
        for i in range(2):
            self.faults(i, {"drop_after_tokens": 3})
        gw = self.gateway({"first_token_ms": 5000})
        status, _, events, _ = harness.stream_events(gw.port, "/v1/chat/completions", chat(stream=True))
        self.assertEqual(status, 200)
        self.assertIn("error", json.loads(events[-1]["data"]))
        self.assertEqual(self.served(0) + self.served(1), 1)
        self.assertEqual(gw.log_lines(1)[-1]["retries"], 0)


class Hedging(TwoReplicas):
    def cancelled(self, i):
        return request(self.sim_port + i, "GET", "/sim/stats").json()["cancelled"]

    def test_a_slow_first_token_is_hedged_and_the_fast_endpoint_answers(self):
        self.faults(0, {"stall_ms": 3000})
        gw = self.gateway({"hedge_after_ms": 200})
        for _ in range(4):
            _, took = self.openai_stream(gw)
            self.assertLess(took, 1.0)
        lines = gw.log_lines(4)
        self.assertTrue(all(l["endpoint"] == "sim1" and l["error"] is None for l in lines), lines)
        hedged = [l for l in lines if l["hedge"] is not None]
        self.assertGreaterEqual(len(hedged), 1, lines)
        self.assertTrue(all(l["hedge"] == "hedge_won" and l["retries"] == 0 for l in hedged), lines)
        self.assertTrue(all(l["hedge"] is None for l in lines if l not in hedged))
        # The slow endpoint's connection was closed as soon as the hedge won.
        self.assertEqual(harness.eventually(lambda: self.cancelled(0), lambda n: n == len(hedged),
                                            timeout=2.0), len(hedged))
        self.assertEqual(self.served(1), 4)

    def test_a_hedge_reaches_an_anthropic_client_as_one_stream(self):
        self.faults(0, {"stall_ms": 3000})
        gw = self.gateway({"hedge_after_ms": 200})
        for _ in range(2):
            self.anthropic_stream(gw)
        self.assertTrue(all(l["endpoint"] == "sim1" for l in gw.log_lines(2)))

    def test_when_the_first_try_answers_first_the_hedge_is_cancelled(self):
        self.faults(0, {"stall_ms": 600})
        self.faults(1, {"stall_ms": 600})
        gw = self.gateway({"hedge_after_ms": 200})
        _, took = self.openai_stream(gw)
        self.assertLess(took, 1.5)
        line = gw.log_lines(1)[-1]
        self.assertEqual(line["hedge"], "first_won")
        loser = 1 - int(line["endpoint"][-1])
        self.assertEqual(harness.eventually(lambda: self.cancelled(loser), lambda n: n == 1,
                                            timeout=2.0), 1)
        self.assertEqual(self.cancelled(1 - loser), 0)

    def test_a_hedge_takes_over_when_the_first_try_fails_before_content(self):
        # sim0 fails at 200 ms while sim1, hedged at 100 ms, tells its first token at 500.
        self.faults(0, {"stall_ms": 200, "midstream_error_rate": 1.0})
        self.faults(1, {"stall_ms": 400})
        gw = self.gateway({"hedge_after_ms": 100})
        for _ in range(4):
            self.openai_stream(gw)
        lines = gw.log_lines(4)
        self.assertTrue(all(l["endpoint"] == "sim1" and l["error"] is None for l in lines), lines)
        self.assertTrue(all(l["retries"] == 0 for l in lines), lines)
        self.assertIn("hedge_won", [l["hedge"] for l in lines])

    def test_without_hedge_after_ms_nothing_is_hedged(self):
        self.faults(0, {"stall_ms": 500})
        self.faults(1, {"stall_ms": 500})
        gw = self.gateway()
        self.openai_stream(gw)
        self.assertIsNone(gw.log_lines(1)[-1]["hedge"])
        self.assertEqual(self.served(0) + self.served(1), 1)


class Banner:
    """A server on loopback that writes a line that is not HTTP to each
    connection and then holds it open, as an SSH server does."""

    def __init__(self, line=b"SSH-2.0-OpenSSH_9.6\r\n"):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.line = line
        self.conns = []
        self.accepted = 0
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            self.conns.append(c)
            try:
                c.sendall(self.line)
            except OSError:
                pass

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


class NotHttp(TwoReplicas):
    def banner_gateway(self, with_sim):
        self.banner = Banner()
        self.addCleanup(self.banner.close)
        backends = [{"name": "banner", "url": "http://127.0.0.1:%d/v1" % self.banner.port, "models": MODELS}]
        if with_sim:
            backends.append({"name": "sim1", "url": "http://127.0.0.1:%d/v1" % (self.sim_port + 1),
                             "models": MODELS})
        return Gateway(self, {"backends": backends,
                              "timeouts": {"first_byte_ms": 10000, "idle_ms": 10000},
                              "routes": [{"name": "chat", "models": MODELS, "policy": "round_robin",
                                          "ejection": {"consecutive_failures": 0}}]})

    def test_a_banner_fails_the_try_at_once_and_another_endpoint_answers(self):
        gw = self.banner_gateway(with_sim=True)
        for stream in (False, True, False, True):
            t0 = time.time()
            r = gw.post("/v1/chat/completions", chat(stream=stream))
            self.assertEqual(r.status, 200, r.body)
            self.assertLess(time.time() - t0, 1.0)
        self.assertGreaterEqual(self.banner.accepted, 1)
        lines = gw.log_lines(4)
        self.assertTrue(all(l["endpoint"] == "sim1" for l in lines))
        self.assertGreaterEqual(sum(l["retries"] for l in lines), 1)

    def test_a_banner_alone_is_a_quick_502(self):
        gw = self.banner_gateway(with_sim=False)
        t0 = time.time()
        r = gw.post("/v1/chat/completions", chat())
        self.assertLess(time.time() - t0, 1.0)
        self.assertEqual(r.status, 502, r.body)
        self.assertEqual(r.json()["error"]["code"], "bad_gateway")
        self.assertIn("invalid HTTP response", r.json()["error"]["message"])


if __name__ == "__main__":
    harness.main()
