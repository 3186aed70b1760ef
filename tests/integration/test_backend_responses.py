"""The openai_responses backend kind end to end: clients of every API in
front of sy-sim's Responses API protocol, checked from the client's side,
from what sy-sim received and from the access log."""
import json
import unittest

import harness
from harness import binary, free_port, post_json, request, start
from test_proxy import Gateway

MODEL = "gpt-sim"
ANTHROPIC = {"anthropic-version": "2023-06-01"}
TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Weather of a city.",
                                         "parameters": {"type": "object",
                                                        "properties": {"city": {"type": "string"}}}}}


def chat(content="What is a gateway?", **kw):
    body = {"model": MODEL, "max_tokens": 6,
            "messages": [{"role": "system", "content": "Be brief."},
                         {"role": "user", "content": content}]}
    body.update(kw)
    return body


class ResponsesBackend(unittest.TestCase):
    def setUp(self):
        self.sim_port = free_port()
        start(self, [binary("sy-sim"), "--port", str(self.sim_port), "--models", MODEL,
                     "--speed", "0", "--quiet"], port=self.sim_port, name="sy-sim")
        self.gw = Gateway(self, {
            "backends": [{"name": "oai", "kind": "openai_responses", "api_key_env": "SY_TEST_OPENAI_KEY",
                          "url": "http://127.0.0.1:%d/v1" % self.sim_port, "models": [MODEL]}],
            "routes": [{"name": "chat", "models": [MODEL], "retries": {"max": 0}}],
            "prices": {MODEL: {"input": 2.0, "output": 8.0}}},
            env={"SY_TEST_OPENAI_KEY": "sk-test-responses"})

    def sim_requests(self):
        r = request(self.sim_port, "GET", "/sim/requests")
        self.assertEqual(r.status, 200)
        return [e for e in r.json() if e["path"] == "/v1/responses"]

    def sim_faults(self, faults):
        r = request(self.sim_port, "POST", "/sim/faults", faults)
        self.assertEqual(r.status, 200, r.body)

    def direct_chat(self, body):
        """sy-sim's answer to the same conversation in the OpenAI chat protocol."""
        r = post_json(self.sim_port, "/v1/chat/completions", body)
        self.assertEqual(r.status, 200, r.body)
        return r.json()

    def test_a_chat_request_is_sent_as_a_responses_request(self):
        r = self.gw.post("/v1/chat/completions", chat(temperature=0.2, user="u-1"))
        self.assertEqual(r.status, 200, r.body)
        [sent] = self.sim_requests()
        self.assertEqual(sent["headers"]["authorization"], "Bearer sk-test-responses")
        b = sent["body"]
        self.assertEqual(b["model"], MODEL)
        self.assertEqual(b["input"], [
            {"type": "message", "role": "system", "content": "Be brief."},
            {"type": "message", "role": "user", "content": "What is a gateway?"}])
        self.assertEqual((b["max_output_tokens"], b["temperature"], b["user"], b["store"]),
                         (6, 0.2, "u-1", False))
        self.assertNotIn("messages", b)

    def test_the_answer_is_the_conversations_answer_as_a_chat_completion(self):
        got = self.gw.post("/v1/chat/completions", chat()).json()
        want = self.direct_chat(chat())
        self.assertEqual(got["object"], "chat.completion")
        self.assertTrue(got["id"].startswith("resp_"))
        self.assertEqual(got["model"], MODEL)
        self.assertEqual(got["choices"][0]["message"]["content"],
                         want["choices"][0]["message"]["content"])
        self.assertEqual(got["choices"][0]["finish_reason"], "length")
        self.assertEqual(got["usage"]["prompt_tokens"], want["usage"]["prompt_tokens"])
        self.assertEqual(got["usage"]["completion_tokens"], 6)
        line = self.gw.log_lines(1)[-1]
        self.assertEqual((line["backend_kind"], line["status"], line["completion_tokens"]),
                         ("openai_responses", 200, 6))
        self.assertAlmostEqual(line["cost_usd"], (want["usage"]["prompt_tokens"] * 2.0 + 6 * 8.0) / 1e6)

    def test_a_stream_becomes_chat_chunks_with_usage_when_asked(self):
        whole = self.gw.post("/v1/chat/completions", chat()).json()
        status, headers, events, _ = harness.stream_events(
            self.gw.port, "/v1/chat/completions",
            chat(stream=True, stream_options={"include_usage": True}))
        self.assertEqual(status, 200)
        self.assertTrue(headers["content-type"].startswith("text/event-stream"))
        self.assertEqual(events[-1]["data"], "[DONE]")
        chunks = [json.loads(e["data"]) for e in events[:-1]]
        self.assertTrue(all(c["object"] == "chat.completion.chunk" and c["model"] == MODEL for c in chunks))
        self.assertEqual(len({c["id"] for c in chunks}), 1)
        self.assertEqual(chunks[0]["choices"][0]["delta"], {"role": "assistant", "content": ""})
        text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
        self.assertEqual(text, whole["choices"][0]["message"]["content"])
        self.assertEqual(chunks[-2]["choices"][0]["finish_reason"], "length")
        self.assertEqual(chunks[-1]["choices"], [])
        self.assertEqual(chunks[-1]["usage"]["completion_tokens"], 6)
        self.assertEqual(chunks[-1]["usage"]["prompt_tokens"], whole["usage"]["prompt_tokens"])
        self.assertTrue(self.sim_requests()[-1]["body"]["stream"])
        line = self.gw.log_lines(2)[-1]
        self.assertEqual((line["status"], line["completion_tokens"]), (200, 6))

    def test_a_tool_call_round_trip(self):
        r = self.gw.post("/v1/chat/completions", chat("Weather in Paris?", tools=[TOOL], tool_choice="auto"))
        self.assertEqual(r.status, 200, r.body)
        choice = r.json()["choices"][0]
        self.assertEqual(choice["finish_reason"], "tool_calls")
        [call] = choice["message"]["tool_calls"]
        self.assertEqual(call["function"]["name"], "get_weather")
        self.assertIn("q", json.loads(call["function"]["arguments"]))
        sent = self.sim_requests()[-1]["body"]
        self.assertEqual(sent["tools"], [{"type": "function", "name": "get_weather",
                                          "description": "Weather of a city.",
                                          "parameters": TOOL["function"]["parameters"]}])
        self.assertEqual(sent["tool_choice"], "auto")
        follow = chat("Weather in Paris?", tools=[TOOL])
        follow["messages"] += [{"role": "assistant", "content": None, "tool_calls": [call]},
                               {"role": "tool", "tool_call_id": call["id"], "content": "sunny, 21 C"}]
        r = self.gw.post("/v1/chat/completions", follow)
        self.assertEqual(r.status, 200, r.body)
        self.assertTrue(r.json()["choices"][0]["message"]["content"])
        items = self.sim_requests()[-1]["body"]["input"]
        self.assertEqual(items[2], {"type": "function_call", "call_id": call["id"], "name": "get_weather",
                                    "arguments": call["function"]["arguments"]})
        self.assertEqual(items[3], {"type": "function_call_output", "call_id": call["id"],
                                    "output": "sunny, 21 C"})

    def test_a_streamed_tool_call(self):
        status, _, events, _ = harness.stream_events(
            self.gw.port, "/v1/chat/completions", chat("Weather?", tools=[TOOL], stream=True))
        self.assertEqual(status, 200)
        chunks = [json.loads(e["data"]) for e in events[:-1]]
        calls = [tc for c in chunks for tc in c["choices"][0]["delta"].get("tool_calls", [])]
        self.assertEqual(calls[0]["function"]["name"], "get_weather")
        self.assertTrue(calls[0]["id"].startswith("call_"))
        args = "".join(tc["function"].get("arguments", "") for tc in calls)
        self.assertIn("q", json.loads(args))
        self.assertEqual(chunks[-1]["choices"][0]["finish_reason"], "tool_calls")

    def test_anthropic_and_responses_clients_are_served(self):
        r = post_json(self.gw.port, "/v1/messages", {
            "model": MODEL, "max_tokens": 6, "system": "Be brief.",
            "messages": [{"role": "user", "content": "What is a gateway?"}]}, ANTHROPIC)
        self.assertEqual(r.status, 200, r.body)
        want = self.direct_chat(chat())["choices"][0]["message"]["content"]
        self.assertEqual(r.json()["content"][0]["text"], want)
        self.assertEqual(r.json()["stop_reason"], "max_tokens")
        r = self.gw.post("/v1/responses", {"model": MODEL, "instructions": "Be brief.",
                                          "input": "What is a gateway?", "max_output_tokens": 6})
        self.assertEqual(r.status, 200, r.body)
        got = r.json()
        self.assertEqual(got["object"], "response")
        self.assertEqual(got["status"], "incomplete")
        self.assertEqual(got["output"][0]["content"][0]["text"], want)
        status, _, events, _ = harness.stream_events(self.gw.port, "/v1/responses", {
            "model": MODEL, "instructions": "Be brief.", "input": "What is a gateway?",
            "max_output_tokens": 6, "stream": True})
        self.assertEqual(status, 200)
        names = [e["event"] for e in events]
        self.assertEqual(names[0], "response.created")
        self.assertEqual(names[-1], "response.incomplete")
        self.assertEqual("".join(json.loads(e["data"])["delta"] for e in events
                                 if e["event"] == "response.output_text.delta"), want)
        self.assertEqual([l["client_api"] for l in self.gw.log_lines(3)[-3:]],
                         ["anthropic", "responses", "responses"])

    def test_fields_it_cannot_express_are_refused_before_the_backend(self):
        for body, word in [(chat(stop=["\n"]), "'stop'"), (chat(n=2), "'n'"),
                           (chat(logprobs=True), "'logprobs'")]:
            r = self.gw.post("/v1/chat/completions", body)
            self.assertEqual(r.status, 400, r.body)
            self.assertIn(word, r.json()["error"]["message"])
            self.assertIn("openai_responses", r.json()["error"]["message"])
        r = self.gw.post("/v1/completions", {"model": MODEL, "prompt": "x"})
        self.assertEqual(r.status, 400, r.body)
        self.assertEqual(self.sim_requests(), [])

    def test_backend_errors_reach_the_client_in_its_shape(self):
        self.sim_faults({"error_rate": 1, "error_status": 429})
        r = self.gw.post("/v1/chat/completions", chat())
        self.assertEqual(r.status, 429, r.body)
        self.assertEqual(r.json()["error"]["message"], "injected fault: HTTP 429")
        r = post_json(self.gw.port, "/v1/messages", {
            "model": MODEL, "max_tokens": 6, "messages": [{"role": "user", "content": "x"}]}, ANTHROPIC)
        self.assertEqual(r.json()["type"], "error")

    def test_a_failed_stream_ends_with_an_error_event(self):
        self.sim_faults({"midstream_error_rate": 1, "midstream_error_after_tokens": 2})
        status, _, events, _ = harness.stream_events(self.gw.port, "/v1/chat/completions", chat(stream=True))
        self.assertEqual(status, 200)
        last = json.loads(events[-1]["data"])
        self.assertIn("injected fault", last["error"]["message"])
        self.assertNotIn("[DONE]", [e["data"] for e in events])
        text = "".join(json.loads(e["data"])["choices"][0]["delta"].get("content", "")
                       for e in events[:-1])
        self.assertTrue(text)
        line = self.gw.log_lines(1)[-1]
        self.assertTrue(line["error"])


if __name__ == "__main__":
    harness.main()
