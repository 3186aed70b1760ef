"""Clients that speak Anthropic's Messages API to switchyard: POST
/v1/messages served by any backend kind, whole and streamed, with errors in
Anthropic's shape."""
import json
import unittest

import harness
from harness import binary, free_ports, request, start
from test_proxy import Gateway


def message(model="m-openai", stream=False, **kw):
    body = {"model": model, "max_tokens": 8, "system": "Be brief.",
            "messages": [{"role": "user", "content": "Say hello to the gateway"}]}
    if stream:
        body["stream"] = True
    body.update(kw)
    return body


class AnthropicClients(unittest.TestCase):
    def setUp(self):
        self.sim = free_ports(2)
        start(self, [binary("sy-sim"), "--port", str(self.sim), "--replicas", "2", "--speed", "0",
                     "--output-tokens", "fixed:8", "--quiet"], port=self.sim, name="sy-sim")
        harness.wait_port(self.sim + 1)
        self.gw = Gateway(self, {
            "backends": [{"name": "oa", "url": "http://127.0.0.1:%d/v1" % self.sim},
                         {"name": "an", "url": "http://127.0.0.1:%d/v1" % (self.sim + 1), "kind": "anthropic"}],
            "routes": [{"name": "via-openai", "models": ["m-openai"], "backends": ["oa"]},
                       {"name": "via-anthropic", "models": ["m-anthropic"], "backends": ["an"]},
                       {"name": "mixed", "models": ["m-mixed"], "backends": ["oa", "an"]}]})

    def post(self, body, **kw):
        return request(self.gw.port, "POST", "/v1/messages", body,
                       {"anthropic-version": "2023-06-01", "x-api-key": "client"}, **kw)

    def check_message(self, r, model):
        self.assertEqual(r.status, 200, r.body)
        m = r.json()
        self.assertEqual(m["type"], "message")
        self.assertEqual(m["role"], "assistant")
        self.assertEqual(m["model"], model)
        self.assertEqual(m["content"][0]["type"], "text")
        self.assertTrue(m["content"][0]["text"].strip())
        self.assertIn(m["stop_reason"], ("end_turn", "max_tokens"))
        self.assertEqual(m["usage"]["output_tokens"], 8)
        self.assertGreater(m["usage"]["input_tokens"], 0)
        return m

    def test_a_message_is_answered_by_an_openai_backend(self):
        m = self.check_message(self.post(message()), "m-openai")
        seen = request(self.sim, "GET", "/sim/requests").json()[-1]
        self.assertEqual(seen["path"], "/v1/chat/completions")
        self.assertEqual(seen["body"]["messages"][0], {"role": "system", "content": "Be brief."})
        self.assertEqual(seen["body"]["max_tokens"], 8)
        line = self.gw.log_lines(1)[-1]
        self.assertEqual(line["client_api"], "anthropic")
        self.assertEqual(line["completion_tokens"], m["usage"]["output_tokens"])

    def test_a_message_is_answered_by_an_anthropic_backend(self):
        self.check_message(self.post(message("m-anthropic")), "m-anthropic")
        seen = request(self.sim + 1, "GET", "/sim/requests").json()[-1]
        self.assertEqual(seen["path"], "/v1/messages")

    def stream(self, model):
        r = self.post(message(model, stream=True))
        self.assertEqual(r.status, 200, r.body)
        self.assertTrue(r.headers["content-type"].startswith("text/event-stream"))
        events = harness.parse_sse(r.body)
        for e in events:
            self.assertEqual(json.loads(e["data"])["type"], e["event"])
        return [e["event"] for e in events], [json.loads(e["data"]) for e in events]

    def test_a_stream_has_anthropics_event_sequence_and_usage(self):
        for model in ("m-openai", "m-anthropic"):
            names, datas = self.stream(model)
            self.assertEqual(names[0], "message_start")
            self.assertEqual(names[-2:], ["message_delta", "message_stop"])
            self.assertIn("content_block_start", names)
            self.assertIn("content_block_stop", names)
            text = "".join(d["delta"]["text"] for d in datas if d["type"] == "content_block_delta")
            self.assertTrue(text.strip())
            delta = datas[-2]
            self.assertIn(delta["delta"]["stop_reason"], ("end_turn", "max_tokens"))
            self.assertEqual(delta["usage"]["output_tokens"], 8)
            whole = self.post(message(model)).json()
            self.assertEqual(text, whole["content"][0]["text"])

    def test_one_pool_mixes_backend_kinds_for_both_client_apis(self):
        for _ in range(2):
            r = harness.post_json(self.gw.port, "/v1/chat/completions",
                                  {"model": "m-mixed", "max_tokens": 8,
                                   "messages": [{"role": "user", "content": "hi"}]})
            self.assertEqual(r.status, 200, r.body)
            self.assertEqual(r.json()["object"], "chat.completion")
            self.check_message(self.post(message("m-mixed")), "m-mixed")
        kinds = [l["backend_kind"] for l in self.gw.log_lines(4)]
        self.assertEqual(sorted(set(kinds)), ["anthropic", "openai"])
        self.assertEqual(sorted(l["client_api"] for l in self.gw.log_lines(4)),
                         ["anthropic", "anthropic", "openai", "openai"])

    def test_errors_are_in_anthropics_shape(self):
        r = self.post(message("no-such-model"))
        self.assertEqual(r.status, 404)
        self.assertEqual(r.json()["type"], "error")
        self.assertEqual(r.json()["error"]["type"], "not_found_error")
        body = message()
        del body["max_tokens"]
        r = self.post(body)
        self.assertEqual(r.status, 400)
        self.assertEqual(r.json()["error"]["type"], "invalid_request_error")
        self.assertIn("max_tokens", r.json()["error"]["message"])
        r = request(self.gw.port, "GET", "/v1/messages")
        self.assertEqual(r.status, 405)
        self.assertEqual(r.json()["type"], "error")

    def test_a_backend_failure_reaches_the_client_in_anthropics_shape(self):
        request(self.sim, "POST", "/sim/faults", {"error_rate": 1.0, "error_status": 503})
        r = self.post(message())
        self.assertEqual(r.status, 503)
        self.assertEqual(r.json()["type"], "error")
        self.assertEqual(r.json()["error"]["type"], "overloaded_error")


if __name__ == "__main__":
    harness.main()
