"""The ollama backend kind end to end: switchyard in front of sy-sim's
Ollama protocol (/api/chat, /api/generate, /api/embed), checked from the
OpenAI client's side, in what the replica received, and in the access log."""
import json
import math
import os
import time
import unittest

import harness
from harness import binary, free_port, request, start
from test_proxy import Gateway

MODELS = ["llama-3-8b", "qwen2-7b"]
CHAT = "/v1/chat/completions"


def chat(content="Say hello", model="llama-3-8b", **kw):
    body = {"model": model, "messages": [{"role": "user", "content": content}], "max_tokens": 4}
    body.update(kw)
    return body


def sse_data(body):
    """The data of every SSE event of body, parsed (the string "[DONE]" as is)."""
    out = []
    for ev in harness.parse_sse(body):
        out.append(ev["data"] if ev["data"] == "[DONE]" else json.loads(ev["data"]))
    return out


class OllamaBackend(unittest.TestCase):
    """One sy-sim replica reached through its Ollama protocol."""

    def setUp(self):
        self.sim_port = free_port()
        start(self, [binary("sy-sim"), "--port", str(self.sim_port), "--models", ",".join(MODELS),
                     "--speed", "0", "--output-tokens", "fixed:12", "--quiet"],
              port=self.sim_port, name="sy-sim")

    def gateway(self, backend=None, env=None, models=MODELS):
        b = {"name": "oll", "url": "http://127.0.0.1:%d" % self.sim_port, "kind": "ollama",
             "models": models}
        b.update(backend or {})
        config = {"backends": [b],
                  "routes": [{"name": "r", "models": models, "retries": {"max": 0}}],
                  "prices": {"llama-3-8b": {"input": 0.5, "output": 1.5, "cached_input": 0.25}}}
        return Gateway(self, config, env=env)

    def sim_requests(self):
        r = request(self.sim_port, "GET", "/sim/requests")
        self.assertEqual(r.status, 200)
        return [q for q in r.json() if q["path"].startswith("/api/")]

    def direct(self, path, body):
        """The sim's OpenAI-protocol answer, for comparison."""
        r = harness.post_json(self.sim_port, path, body)
        self.assertEqual(r.status, 200, r.body)
        return r.json()

    def test_chat_is_sent_as_api_chat_and_answered_as_a_chat_completion(self):
        gw = self.gateway()
        r = gw.post(CHAT, chat("What is a gateway?", temperature=0.2, stop=["zzz"], seed=3))
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.headers["content-type"], "application/json")
        got = r.json()
        self.assertEqual(got["object"], "chat.completion")
        self.assertTrue(got["id"].startswith("chatcmpl-"))
        self.assertEqual(got["model"], "llama-3-8b")
        self.assertIsInstance(got["created"], int)
        self.assertLess(abs(got["created"] - time.time()), 60)
        choice = got["choices"][0]
        self.assertEqual(choice["finish_reason"], "length")
        self.assertEqual(choice["message"]["role"], "assistant")
        want = self.direct(CHAT, chat("What is a gateway?"))
        self.assertEqual(choice["message"]["content"], want["choices"][0]["message"]["content"])
        self.assertEqual(got["usage"]["completion_tokens"], 4)
        self.assertEqual(got["usage"]["prompt_tokens"], want["usage"]["prompt_tokens"])
        self.assertEqual(got["usage"]["total_tokens"], got["usage"]["prompt_tokens"] + 4)
        sent = self.sim_requests()[-1]
        self.assertEqual(sent["path"], "/api/chat")
        self.assertEqual(sent["body"], {
            "model": "llama-3-8b", "stream": False,
            "messages": [{"role": "user", "content": "What is a gateway?"}],
            "options": {"num_predict": 4, "temperature": 0.2, "stop": ["zzz"], "seed": 3}})
        line = gw.log_lines(1)[-1]
        self.assertEqual(line["backend_kind"], "ollama")
        self.assertEqual((line["prompt_tokens"], line["completion_tokens"], line["cached_tokens"]),
                         (got["usage"]["prompt_tokens"], 4, 0))
        self.assertGreater(line["cost_usd"], 0)

    def test_chat_stream_is_relayed_as_openai_sse(self):
        gw = self.gateway()
        body = chat("Tell me a story", max_tokens=6, stream=True)
        r = gw.post(CHAT, body)
        self.assertEqual(r.status, 200, r.body)
        self.assertTrue(r.headers["content-type"].startswith("text/event-stream"))
        events = sse_data(r.body)
        self.assertEqual(events[-1], "[DONE]")
        chunks = events[:-1]
        self.assertEqual(chunks[0]["choices"][0]["delta"]["role"], "assistant")
        for c in chunks:
            self.assertEqual(c["object"], "chat.completion.chunk")
            self.assertEqual(c["id"], chunks[0]["id"])
            self.assertNotIn("usage", c)
        self.assertEqual([c["choices"][0]["finish_reason"] for c in chunks],
                         [None] * (len(chunks) - 1) + ["length"])
        text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
        want = self.direct(CHAT, chat("Tell me a story", max_tokens=6))
        self.assertEqual(text, want["choices"][0]["message"]["content"])
        self.assertTrue(self.sim_requests()[-1]["body"]["stream"])
        line = gw.log_lines(1)[-1]
        self.assertTrue(line["stream"])
        self.assertEqual(line["status"], 200)
        self.assertEqual(line["completion_tokens"], 6)
        self.assertEqual(line["prompt_tokens"], want["usage"]["prompt_tokens"])
        self.assertIsNone(line["error"])

    def test_stream_usage_chunk_comes_when_asked(self):
        gw = self.gateway()
        r = gw.post(CHAT, chat("hi", max_tokens=3, stream=True, stream_options={"include_usage": True}))
        events = sse_data(r.body)
        self.assertEqual(events[-1], "[DONE]")
        usage = events[-2]
        self.assertEqual(usage["choices"], [])
        self.assertEqual(usage["usage"]["completion_tokens"], 3)
        self.assertEqual(usage["usage"]["total_tokens"],
                         usage["usage"]["prompt_tokens"] + 3)

    def test_completions_go_to_api_generate(self):
        gw = self.gateway()
        body = {"model": "qwen2-7b", "prompt": "once upon a time", "max_tokens": 5}
        got = gw.post("/v1/completions", body)
        self.assertEqual(got.status, 200, got.body)
        got = got.json()
        self.assertEqual(got["object"], "text_completion")
        want = self.direct("/v1/completions", body)
        self.assertEqual(got["choices"][0]["text"], want["choices"][0]["text"])
        self.assertEqual(got["usage"]["prompt_tokens"], want["usage"]["prompt_tokens"])
        self.assertEqual(self.sim_requests()[-1]["path"], "/api/generate")
        r = gw.post("/v1/completions", dict(body, stream=True))
        events = sse_data(r.body)
        self.assertEqual(events[-1], "[DONE]")
        self.assertEqual("".join(c["choices"][0]["text"] for c in events[:-1]),
                         want["choices"][0]["text"])
        self.assertEqual(events[-2]["choices"][0]["finish_reason"], "length")
        r = gw.post("/v1/completions", dict(body, prompt=["a", "b"]))
        self.assertEqual(r.status, 400)
        self.assertIn("several prompts", r.json()["error"]["message"])

    def test_embeddings_go_to_api_embed(self):
        gw = self.gateway()
        body = {"model": "llama-3-8b", "input": ["a b", "c"]}
        r = gw.post("/v1/embeddings", body)
        self.assertEqual(r.status, 200, r.body)
        got = r.json()
        want = self.direct("/v1/embeddings", body)
        self.assertEqual(got["object"], "list")
        self.assertEqual([d["index"] for d in got["data"]], [0, 1])
        for g, w in zip(got["data"], want["data"]):
            self.assertEqual(g["object"], "embedding")
            self.assertEqual(len(g["embedding"]), len(w["embedding"]))
            for x, y in zip(g["embedding"], w["embedding"]):
                self.assertAlmostEqual(x, y, places=6)
        self.assertEqual(got["usage"], {"prompt_tokens": want["usage"]["prompt_tokens"],
                                        "total_tokens": want["usage"]["prompt_tokens"]})
        sent = self.sim_requests()[-1]
        self.assertEqual((sent["path"], sent["body"]), ("/api/embed", {"model": "llama-3-8b",
                                                                       "input": ["a b", "c"]}))
        b64 = gw.post("/v1/embeddings", dict(body, encoding_format="base64")).json()
        import base64
        import struct
        raw = base64.b64decode(b64["data"][1]["embedding"])
        floats = struct.unpack("<%df" % (len(raw) // 4), raw)
        for x, y in zip(floats, want["data"][1]["embedding"]):
            self.assertAlmostEqual(x, y, places=6)

    def test_a_model_the_replica_lacks_is_model_not_found(self):
        gw = self.gateway(models=MODELS + ["ghost"])
        r = gw.post(CHAT, chat(model="ghost"))
        self.assertEqual(r.status, 404, r.body)
        err = r.json()["error"]
        self.assertEqual(err["code"], "model_not_found")
        self.assertEqual(err["type"], "invalid_request_error")
        self.assertIn("ghost", err["message"])

    def test_images_and_tools_are_refused_before_the_backend(self):
        gw = self.gateway()
        body = chat(None)
        body["messages"][0]["content"] = [{"type": "text", "text": "what is this?"},
                                          {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}]
        r = gw.post(CHAT, body)
        self.assertEqual(r.status, 400, r.body)
        self.assertIn("messages[0].content[1]", r.json()["error"]["message"])
        r = gw.post(CHAT, chat(tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}]))
        self.assertEqual(r.status, 400, r.body)
        self.assertEqual(r.json()["error"]["message"], "tools are not supported with the ollama backend")
        self.assertEqual(self.sim_requests(), [])

    def test_text_parts_are_joined(self):
        gw = self.gateway()
        body = chat(None)
        body["messages"][0]["content"] = [{"type": "text", "text": "hello"}, {"type": "text", "text": "there"}]
        r = gw.post(CHAT, body)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(self.sim_requests()[-1]["body"]["messages"],
                         [{"role": "user", "content": "hello\nthere"}])
        want = self.direct(CHAT, chat("hello there"))
        self.assertEqual(r.json()["choices"][0]["message"]["content"],
                         want["choices"][0]["message"]["content"])

    def test_a_midstream_error_line_ends_the_stream_with_an_error_event(self):
        gw = self.gateway()
        r = harness.post_json(self.sim_port, "/sim/faults",
                              {"midstream_error_rate": 1, "midstream_error_after_tokens": 2})
        self.assertEqual(r.status, 200, r.body)
        r = gw.post(CHAT, chat(max_tokens=8, stream=True))
        self.assertEqual(r.status, 200)
        events = sse_data(r.body)
        self.assertNotIn("[DONE]", events)
        self.assertIn("injected fault", events[-1]["error"]["message"])
        self.assertEqual(events[0]["choices"][0]["delta"]["role"], "assistant")
        line = gw.log_lines(1)[-1]
        self.assertEqual(line["error"], "backend sent an error event mid-stream")

    def test_a_backend_error_keeps_its_status_in_openai_shape(self):
        gw = self.gateway()
        harness.post_json(self.sim_port, "/sim/faults", {"error_rate": 1, "error_status": 503})
        r = gw.post(CHAT, chat())
        self.assertEqual(r.status, 503, r.body)
        err = r.json()["error"]
        self.assertEqual(err["type"], "server_error")
        self.assertEqual(err["code"], 503)
        self.assertIn("injected fault", err["message"])

    def test_api_key_is_a_bearer_token(self):
        gw = self.gateway({"api_key_env": "SY_TEST_OLLAMA_KEY"}, env={"SY_TEST_OLLAMA_KEY": "sk-oll"})
        self.assertEqual(gw.post(CHAT, chat()).status, 200)
        self.assertEqual(self.sim_requests()[-1]["headers"]["authorization"], "Bearer sk-oll")

    def test_health_checks_probe_api_version(self):
        gw = self.gateway({"health": {"interval_ms": 100, "timeout_ms": 50}})
        time.sleep(0.5)
        seen = request(self.sim_port, "GET", "/sim/requests").json()
        self.assertGreaterEqual(len([q for q in seen if q["path"] == "/api/version"]), 2)
        text = request(gw.admin, "GET", "/metrics").body.decode()
        self.assertIn('switchyard_endpoint_healthy{endpoint="oll"} 1', text)


if __name__ == "__main__":
    harness.main()
