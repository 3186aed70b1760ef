"""Streams as real servers send them: recorded llama.cpp streams replayed
one event per write, 10 ms apart (as llama-server, vLLM and most HTTP
servers write them), to OpenAI and Anthropic clients; llama.cpp's quirks
(no role chunk, usage on the finish chunk whether asked or not, `error:`
lines, timings); stop strings; Retry-After while an endpoint rests; the
models a zero-config gateway's backends report."""
import json
import time
import unittest

import harness
from harness import binary, free_ports, request, start
from test_proxy import Gateway, chat

OLD = "llama-server-c392e50/"	# llama.cpp of Feb 2025: rougher
NEW = "llama-server/"		# a recent llama.cpp build


def recorded_events(name):
    """The events of a recorded stream, each with its blank line, without
    the "HTTP 200" note some files end with."""
    data = harness.fixture(name)
    data = data[:data.rfind(b"\n\n") + 2] if b"HTTP 200" in data else data
    return [e + b"\n\n" for e in data.split(b"\n\n") if e.strip()]


def per_event(name, gap=0.01):
    """A reply writing each recorded event on its own, gap seconds apart."""
    events = recorded_events(name)
    return lambda p, h, b: (200, {"Content-Type": "text/event-stream",
                                  "Transfer-Encoding": "chunked"}, events, gap, False)


def whole(body, status=200, headers=None):
    hdrs = {"Content-Type": "application/json"}
    hdrs.update(headers or {})
    return lambda p, h, b: (status, hdrs, [body], 0, False)


def recorded_text(name, key="content"):
    """The text a recorded stream carries, joined."""
    out = ""
    for e in harness.parse_sse(b"".join(recorded_events(name))):
        if e["data"] in (None, "[DONE]"):
            continue
        for c in json.loads(e["data"]).get("choices", []):
            piece = c.get("delta", {}).get(key) if key == "content" else c.get("text")
            out += piece or ""
    return out


def messages(**kw):
    body = {"model": "tiny-llama", "max_tokens": 8,
            "messages": [{"role": "user", "content": "Say hello"}]}
    body.update(kw)
    return body


class Fleet(unittest.TestCase):
    """A gateway in front of one scripted backend."""

    def gateway(self, reply, route=None, top=None, **backend):
        """top: more top-level keys of the config (timeouts, limits)."""
        self.backend = harness.ScriptedBackend(reply)
        self.addCleanup(self.backend.close)
        b = {"name": "llama", "url": "http://127.0.0.1:%d/v1" % self.backend.port,
             "models": ["tiny-llama"]}
        b.update(backend)
        r = {"name": "r", "models": ["tiny-llama"]}
        r.update(route or {})
        c = {"backends": [b], "routes": [r],
             "prices": {"tiny-llama": {"input": 1.0, "output": 2.0, "cached_input": 0.5}}}
        c.update(top or {})
        self.gw = Gateway(self, c)
        return self.gw

    def anthropic_stream(self, body=None):
        status, headers, events, _ = harness.stream_events(
            self.gw.port, "/v1/messages", body or messages(stream=True),
            headers={"anthropic-version": "2023-06-01"})
        self.assertEqual(status, 200)
        return headers, [(e["event"], json.loads(e["data"])) for e in events]


class AnthropicClientStreams(Fleet):
    """The whole event sequence reaches an Anthropic client, whatever the
    backend's reads held."""

    def check_complete(self, fixture):
        self.gateway(per_event(fixture))
        _, events = self.anthropic_stream()
        names = [n for n, _ in events]
        self.assertEqual(names[0], "message_start")
        self.assertEqual(names[-3:], ["content_block_stop", "message_delta", "message_stop"])
        text = "".join(d["delta"]["text"] for n, d in events if n == "content_block_delta")
        self.assertEqual(text, recorded_text(fixture))
        delta = [d for n, d in events if n == "message_delta"][0]
        self.assertEqual(delta["delta"]["stop_reason"], "max_tokens")
        self.assertEqual(delta["usage"]["output_tokens"], 6)
        line = self.gw.log_lines(1)[-1]
        self.assertEqual((line["status"], line["error"]), (200, None))

    def test_a_recent_llama_cpp_stream_written_event_by_event_is_whole(self):
        self.check_complete(NEW + "chat_stream_usage.sse")

    def test_an_old_llama_cpp_stream_without_a_role_chunk_is_whole(self):
        self.check_complete(OLD + "chat_stream.sse")

    def test_the_request_id_is_in_the_header_the_anthropic_sdks_read(self):
        self.gateway(per_event(NEW + "chat_stream_usage.sse"))
        headers, _ = self.anthropic_stream()
        self.assertTrue(headers["request-id"])
        self.assertEqual(headers["request-id"], headers["x-request-id"])
        r = self.gw.post("/v1/messages", messages(), headers={"anthropic-version": "2023-06-01"})
        self.assertEqual(r.headers["request-id"], r.headers["x-request-id"])


class LlamaCppErrorLines(Fleet):
    """llama.cpp ends a failed stream with a line `error: {...}`, not a
    data event: it is an error end to end."""

    def test_an_openai_client_gets_an_error_event_and_no_done(self):
        self.gateway(per_event(OLD + "error_midstream.sse"))
        status, _, events, _ = harness.stream_events(self.gw.port, "/v1/chat/completions",
                                                     chat(model="tiny-llama", stream=True))
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(events[-1]["data"])["error"]["message"],
                         "context shift is disabled")
        self.assertNotIn("[DONE]", [e["data"] for e in events])
        line = self.gw.log_lines(1)[-1]
        self.assertIsNotNone(line["error"])

    def test_an_anthropic_client_gets_an_error_event_not_a_clean_end(self):
        self.gateway(per_event(OLD + "error_midstream.sse"))
        _, events = self.anthropic_stream()
        names = [n for n, _ in events]
        self.assertEqual(names[-1], "error")
        self.assertNotIn("message_stop", names)
        self.assertEqual(events[-1][1]["error"]["message"], "context shift is disabled")
        self.assertIsNotNone(self.gw.log_lines(1)[-1]["error"])

    def test_a_stream_ending_in_an_error_line_is_never_cached(self):
        self.gateway(per_event(OLD + "error_midstream.sse"), route={"cache": {}})
        body = chat(model="tiny-llama", stream=True, temperature=0)
        for _ in range(2):
            harness.stream_events(self.gw.port, "/v1/chat/completions", body)
        r = self.gw.post("/v1/chat/completions", chat(model="tiny-llama", temperature=0))
        self.assertNotEqual(r.headers["x-switchyard-cache"], "hit")
        self.assertEqual(len(self.backend.received), 3)


class UsageTheClientDidNotAskFor(Fleet):
    """llama.cpp puts usage on the finish chunk (chat) and the last text
    chunk (completions) whether asked or not: the client gets it only when
    it asked, and the access log always has it."""

    def stream(self, path, body):
        status, _, events, _ = harness.stream_events(self.gw.port, path, body)
        self.assertEqual(status, 200)
        return [json.loads(e["data"]) for e in events if e["data"] != "[DONE]"]

    def test_chat_chunks_carry_no_usage_unless_asked(self):
        self.gateway(per_event(OLD + "chat_stream.sse"))
        chunks = self.stream("/v1/chat/completions", chat(model="tiny-llama", stream=True))
        self.assertFalse([c for c in chunks if "usage" in c])
        self.assertEqual(chunks[-1]["choices"][0]["finish_reason"], "length")
        self.assertIn("timings", chunks[-1])
        line = self.gw.log_lines(1)[-1]
        self.assertEqual((line["prompt_tokens"], line["completion_tokens"]), (29, 6))
        chunks = self.stream("/v1/chat/completions", chat(model="tiny-llama", stream=True,
                                                          stream_options={"include_usage": True}))
        self.assertEqual(chunks[-1]["usage"]["completion_tokens"], 6)

    def test_completion_chunks_carry_no_usage_unless_asked(self):
        self.gateway(per_event(OLD + "completion_stream.sse"))
        body = {"model": "tiny-llama", "prompt": "Hi", "max_tokens": 4, "stream": True}
        chunks = self.stream("/v1/completions", body)
        self.assertFalse([c for c in chunks if "usage" in c])
        self.assertEqual("".join(c["choices"][0]["text"] for c in chunks),
                         recorded_text(OLD + "completion_stream.sse", "text"))
        line = self.gw.log_lines(1)[-1]
        self.assertEqual((line["prompt_tokens"], line["completion_tokens"]), (3, 4))


class CachedPromptTokens(Fleet):
    def test_llama_cpp_timings_tell_the_cached_prompt_tokens_and_their_price(self):
        self.gateway(whole(harness.fixture(OLD + "chat_repeat.json")))
        r = self.gw.post("/v1/chat/completions", chat(model="tiny-llama"))
        self.assertEqual(r.status, 200)
        line = self.gw.log_lines(1)[-1]
        # 29 prompt tokens of which the server computed 1: 28 from its cache.
        self.assertEqual((line["prompt_tokens"], line["cached_tokens"]), (29, 28))
        self.assertAlmostEqual(line["cost_usd"], (1 * 1.0 + 28 * 0.5 + 6 * 2.0) / 1e6)

    def test_an_anthropic_client_is_told_the_cached_tokens(self):
        self.gateway(whole(harness.fixture(OLD + "chat_repeat.json")))
        r = self.gw.post("/v1/messages", messages(), headers={"anthropic-version": "2023-06-01"})
        usage = r.json()["usage"]
        self.assertEqual((usage["input_tokens"], usage["cache_read_input_tokens"]), (1, 28))


class StreamsWithoutARoleChunk(Fleet):
    def test_a_streamed_answer_without_a_role_chunk_is_cached(self):
        self.gateway(per_event(OLD + "chat_stream.sse"), route={"cache": {}})
        status, h, _, _ = harness.stream_events(
            self.gw.port, "/v1/chat/completions", chat(model="tiny-llama", stream=True, temperature=0))
        self.assertEqual((status, h["x-switchyard-cache"]), (200, "miss"))
        r = self.gw.post("/v1/chat/completions", chat(model="tiny-llama", temperature=0))
        self.assertEqual(r.headers["x-switchyard-cache"], "hit")
        self.assertEqual(r.json()["choices"][0]["message"]["content"],
                         recorded_text(OLD + "chat_stream.sse"))
        self.assertEqual(len(self.backend.received), 1)


def stopped_by_string(stream):
    """vLLM's answer ended by the stop string "END" (its stop_reason)."""
    if not stream:
        return whole(json.dumps({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "tiny-llama",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "one two"},
                         "finish_reason": "stop", "stop_reason": "END"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}}).encode())
    head = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
            "model": "tiny-llama"}
    chunks = [dict(head, choices=[{"index": 0, "delta": {"role": "assistant", "content": ""},
                                   "finish_reason": None}]),
              dict(head, choices=[{"index": 0, "delta": {"content": "one two"},
                                   "finish_reason": None, "stop_reason": None}]),
              dict(head, choices=[{"index": 0, "delta": {}, "finish_reason": "stop",
                                   "stop_reason": "END"}]),
              dict(head, choices=[], usage={"prompt_tokens": 5, "completion_tokens": 2,
                                            "total_tokens": 7})]
    events = [b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks] + [b"data: [DONE]\n\n"]
    return lambda p, h, b: (200, {"Content-Type": "text/event-stream",
                                  "Transfer-Encoding": "chunked"}, events, 0.01, False)


class StopSequences(Fleet):
    def test_a_whole_answer_ended_by_a_stop_string_names_it(self):
        self.gateway(stopped_by_string(False))
        r = self.gw.post("/v1/messages", messages(stop_sequences=["END"]),
                         headers={"anthropic-version": "2023-06-01"})
        body = r.json()
        self.assertEqual((body["stop_reason"], body["stop_sequence"]), ("stop_sequence", "END"))
        self.assertEqual(json.loads(self.backend.received[0]["body"])["stop"], ["END"])

    def test_a_stream_ended_by_a_stop_string_names_it(self):
        self.gateway(stopped_by_string(True))
        _, events = self.anthropic_stream(messages(stream=True, stop_sequences=["END"]))
        delta = [d for n, d in events if n == "message_delta"][0]["delta"]
        self.assertEqual((delta["stop_reason"], delta["stop_sequence"]), ("stop_sequence", "END"))


class RestingEndpoint(Fleet):
    def test_the_429s_while_the_only_endpoint_rests_say_the_time_left(self):
        body = b'{"error":{"message":"slow down","type":"rate_limit_error","code":429}}'
        self.gateway(whole(body, 429, {"Retry-After": "30"}))
        r = self.gw.post("/v1/chat/completions", chat(model="tiny-llama"))
        self.assertEqual((r.status, r.headers.get("retry-after")), (429, "30"))
        r = self.gw.post("/v1/chat/completions", chat(model="tiny-llama"))
        self.assertEqual(r.status, 429)
        self.assertIn(int(r.headers["retry-after"]), range(1, 31))
        self.assertEqual(len(self.backend.received), 1)


class ZeroConfigModels(unittest.TestCase):
    def test_zero_config_lists_the_models_the_backends_report(self):
        models = harness.fixture(NEW + "models.json")
        backend = harness.ScriptedBackend(lambda p, h, b: (200, {"Content-Type": "application/json"},
                                                           [models], 0, False))
        self.addCleanup(backend.close)
        port = free_ports(2)
        start(self, [binary("switchyard"), "--upstream", "http://127.0.0.1:%d/v1" % backend.port,
                     "--listen", "127.0.0.1:%d" % port, "--admin", "127.0.0.1:%d" % (port + 1),
                     "--access-log", "off"], port=port, name="switchyard")
        r = request(port, "GET", "/v1/models")
        self.assertEqual(r.status, 200)
        self.assertEqual([m["id"] for m in r.json()["data"]], ["tiny-llama"])
        self.assertEqual(backend.received[0]["path"], "/v1/models")


if __name__ == "__main__":
    harness.main()
