"""The endpoints SDKs call besides generation: Anthropic's count_tokens and
models list, one model by id, in the shape of the client that asks."""
import json
import time
import unittest

from harness import ScriptedBackend, binary, free_ports, request, start
from test_proxy import Gateway

ANTHROPIC = {"anthropic-version": "2023-06-01", "x-api-key": "client"}


class ClientEndpoints(unittest.TestCase):
    def setUp(self):
        self.sim = free_ports(1)
        start(self, [binary("sy-sim"), "--port", str(self.sim), "--speed", "0", "--quiet"],
              port=self.sim, name="sy-sim")
        self.gw = Gateway(self, {
            "backends": [{"name": "oa", "url": "http://127.0.0.1:%d/v1" % self.sim}],
            "routes": [{"name": "chat", "models": ["claude-x", "org/gpt-y"]}]})

    def count(self, body, headers=ANTHROPIC):
        return request(self.gw.port, "POST", "/v1/messages/count_tokens", body, headers)

    def test_count_tokens_estimates_and_says_so(self):
        short = self.count({"model": "claude-x", "messages": [{"role": "user", "content": "hi"}]})
        self.assertEqual(short.status, 200, short.body)
        self.assertEqual(short.headers["x-switchyard-token-count"], "estimate")
        n = short.json()["input_tokens"]
        self.assertGreater(n, 0)
        longer = self.count({"model": "claude-x", "system": "You are a careful assistant.",
                             "messages": [{"role": "user", "content": "hi " * 200}],
                             "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}]})
        self.assertGreater(longer.json()["input_tokens"], n + 200)
        self.assertEqual(request(self.sim, "GET", "/sim/requests").json(), [])

    def test_count_tokens_errors_are_anthropics(self):
        r = self.count({"model": "claude-x", "messages": []})
        self.assertEqual(r.status, 400)
        self.assertEqual(r.json()["type"], "error")
        self.assertEqual(r.json()["error"]["type"], "invalid_request_error")
        self.assertIn("messages", r.json()["error"]["message"])
        r = request(self.gw.port, "GET", "/v1/messages/count_tokens", None, ANTHROPIC)
        self.assertEqual(r.status, 405)
        self.assertEqual(r.json()["type"], "error")

    def test_models_list_in_anthropics_shape_for_anthropic_clients(self):
        r = request(self.gw.port, "GET", "/v1/models", None, ANTHROPIC)
        self.assertEqual(r.status, 200, r.body)
        got = r.json()
        self.assertEqual(got["data"], [
            {"type": "model", "id": "claude-x", "display_name": "claude-x",
             "created_at": "1970-01-01T00:00:00Z"},
            {"type": "model", "id": "org/gpt-y", "display_name": "org/gpt-y",
             "created_at": "1970-01-01T00:00:00Z"}])
        self.assertEqual((got["has_more"], got["first_id"], got["last_id"]), (False, "claude-x", "org/gpt-y"))
        openai = request(self.gw.port, "GET", "/v1/models").json()
        self.assertEqual(openai["object"], "list")
        self.assertEqual(openai["data"][0]["object"], "model")

    def test_one_model_by_id(self):
        r = request(self.gw.port, "GET", "/v1/models/org/gpt-y")
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json(), {"id": "org/gpt-y", "object": "model", "created": 0, "owned_by": "switchyard"})
        r = request(self.gw.port, "GET", "/v1/models/claude-x", None, ANTHROPIC)
        self.assertEqual(r.json()["type"], "model")
        self.assertEqual(r.json()["id"], "claude-x")

    def test_an_unknown_model_id_is_404_in_the_clients_shape(self):
        r = request(self.gw.port, "GET", "/v1/models/nope")
        self.assertEqual(r.status, 404)
        self.assertEqual(r.json()["error"]["code"], "model_not_found")
        self.assertIn("nope", r.json()["error"]["message"])
        r = request(self.gw.port, "GET", "/v1/models/nope", None, ANTHROPIC)
        self.assertEqual(r.status, 404)
        self.assertEqual(r.json()["error"]["type"], "not_found_error")


class CountTokensByTheBackend(unittest.TestCase):
    """count_tokens asks the tokenizer of a backend serving the model
    (vLLM's /tokenize, llama.cpp's /apply-template then /tokenize, at the
    server's root) and falls back to the estimate, saying which."""

    def fleet(self, tokenize, reply):
        self.backend = ScriptedBackend(reply)
        self.addCleanup(self.backend.close)
        self.gw = Gateway(self, {
            "backends": [{"name": "gpu0", "url": "http://127.0.0.1:%d/v1" % self.backend.port,
                          "models": ["llama-3-8b"], "tokenize": tokenize}],
            "routes": [{"name": "chat", "models": ["llama-3-8b"],
                        "aliases": {"claude-x": "llama-3-8b"}}]})

    def count(self, body):
        return request(self.gw.port, "POST", "/v1/messages/count_tokens", body, ANTHROPIC)

    BODY = {"model": "claude-x", "system": "Be brief.",
            "messages": [{"role": "user", "content": "How many tokens is this?"}],
            "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}]}

    def test_vllm_counts_the_chat_with_its_template(self):
        def reply(path, headers, body):
            return (200, {"Content-Type": "application/json"},
                    [json.dumps({"count": 1234, "max_model_len": 8192, "tokens": []}).encode()], 0, False)
        self.fleet("vllm", reply)
        r = self.count(self.BODY)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json(), {"input_tokens": 1234})
        self.assertEqual(r.headers["x-switchyard-token-count"], "backend")
        [asked] = self.backend.received
        self.assertEqual(asked["path"], "/tokenize")
        sent = json.loads(asked["body"])
        self.assertEqual(sent["model"], "llama-3-8b")
        self.assertTrue(sent["add_generation_prompt"])
        self.assertEqual([m["role"] for m in sent["messages"]], ["system", "user"])
        self.assertEqual(sent["messages"][1]["content"], "How many tokens is this?")
        self.assertEqual(sent["tools"][0]["function"]["name"], "get_weather")

    def test_llama_cpp_renders_the_template_then_counts_the_text(self):
        def reply(path, headers, body):
            if path == "/apply-template":
                return (200, {"Content-Type": "application/json"},
                        [b'{"prompt":"<|system|>Be brief.<|user|>How many tokens is this?<|assistant|>"}'], 0, False)
            return (200, {"Content-Type": "application/json"},
                    [json.dumps({"tokens": list(range(17))}).encode()], 0, False)
        self.fleet("llama.cpp", reply)
        r = self.count(self.BODY)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json(), {"input_tokens": 17})
        self.assertEqual(r.headers["x-switchyard-token-count"], "backend")
        self.assertEqual([a["path"] for a in self.backend.received], ["/apply-template", "/tokenize"])
        self.assertEqual(json.loads(self.backend.received[1]["body"])["content"],
                         "<|system|>Be brief.<|user|>How many tokens is this?<|assistant|>")

    def test_a_tokenizer_that_fails_gives_the_estimate(self):
        for status, chunks in [(500, [b'{"error":"boom"}']), (200, [b"not json"]),
                               (200, [b'{"count":"many"}'])]:
            with self.subTest(status=status, chunks=chunks):
                self.fleet("vllm", lambda p, h, b: (status, {"Content-Type": "application/json"},
                                                     chunks, 0, False))
                r = self.count(self.BODY)
                self.assertEqual(r.status, 200, r.body)
                self.assertEqual(r.headers["x-switchyard-token-count"], "estimate")
                self.assertGreater(r.json()["input_tokens"], 10)
                line = self.gw.log_lines(1)[-1]
                self.assertIn("tokenizer of gpu0", line["error"])

    def test_a_backend_without_a_tokenizer_is_not_asked(self):
        self.fleet("none", lambda p, h, b: (500, {}, [b""], 0, False))
        r = self.count(self.BODY)
        self.assertEqual(r.headers["x-switchyard-token-count"], "estimate")
        self.assertEqual(self.backend.received, [])

    def test_a_client_that_leaves_while_the_tokenizer_counts_disturbs_nothing(self):
        import socket
        self.fleet("vllm", lambda p, h, b: (200, {"Content-Type": "application/json"},
                                            [b'{"count":5}'], 0.5, False))
        body = json.dumps(self.BODY).encode()
        s = socket.create_connection(("127.0.0.1", self.gw.port))
        s.sendall(b"POST /v1/messages/count_tokens HTTP/1.1\r\nHost: x\r\n"
                  b"anthropic-version: 2023-06-01\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        time.sleep(0.1)
        s.close()
        r = self.count(self.BODY)
        self.assertEqual(r.json(), {"input_tokens": 5})
        self.assertEqual(len(self.gw.log_lines(2)), 2)


if __name__ == "__main__":
    import harness
    harness.main()
