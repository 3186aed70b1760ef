"""The anthropic backend kind end to end: OpenAI clients of switchyard in
front of sy-sim's Anthropic Messages API, checked from the client's side,
from what sy-sim received and from the access log."""
import json
import unittest

import harness
from harness import binary, free_port, post_json, request, start
from test_proxy import Gateway

MODEL = "claude-sim"
# sy-sim's Anthropic max_tokens is a cap on a drawn length: fix the draw.
TOKENS = 6


def chat(content="What is a gateway?", **kw):
    body = {"model": MODEL, "messages": [{"role": "user", "content": content}]}
    body.update(kw)
    return body


class AnthropicBackend(unittest.TestCase):
    def setUp(self):
        self.sim_port = free_port()
        self.sim = start(self, [binary("sy-sim"), "--port", str(self.sim_port), "--models", MODEL,
                                "--output-tokens", "fixed:%d" % TOKENS, "--speed", "0", "--quiet"],
                         port=self.sim_port, name="sy-sim")
        self.gw = Gateway(self, {
            "backends": [{"name": "claude", "kind": "anthropic", "api_key_env": "SY_TEST_ANTHROPIC_KEY",
                          "url": "http://127.0.0.1:%d/v1" % self.sim_port, "models": [MODEL]}],
            "routes": [{"name": "chat", "models": [MODEL]}]},
            env={"SY_TEST_ANTHROPIC_KEY": "sk-ant-test"})

    def sim_requests(self):
        r = request(self.sim_port, "GET", "/sim/requests")
        self.assertEqual(r.status, 200)
        return r.json()

    def sim_faults(self, faults):
        r = request(self.sim_port, "POST", "/sim/faults", faults)
        self.assertEqual(r.status, 200, r.body)

    def direct_openai(self, body):
        """sy-sim's answer to the same conversation in the OpenAI protocol."""
        r = post_json(self.sim_port, "/v1/chat/completions", body)
        self.assertEqual(r.status, 200, r.body)
        return r.json()

    def test_chat_answer_is_the_conversations_answer_as_a_chat_completion(self):
        r = self.gw.post("/v1/chat/completions", chat())
        self.assertEqual(r.status, 200, r.body)
        got = r.json()
        want = self.direct_openai(chat(max_tokens=TOKENS))
        self.assertEqual(got["object"], "chat.completion")
        self.assertEqual(got["model"], MODEL)
        self.assertTrue(got["id"].startswith("msg_"))
        self.assertEqual(got["choices"][0]["message"],
                         {"role": "assistant", "content": want["choices"][0]["message"]["content"]})
        self.assertEqual(got["choices"][0]["finish_reason"], "stop")
        self.assertEqual(got["usage"]["prompt_tokens"], want["usage"]["prompt_tokens"])
        self.assertEqual(got["usage"]["completion_tokens"], TOKENS)

    def test_backend_gets_a_messages_request_with_key_version_and_system(self):
        body = {"model": MODEL, "max_completion_tokens": 50, "temperature": 0.5, "stop": "zzz",
                "messages": [{"role": "system", "content": "Be brief."},
                             {"role": "user", "content": "hi"},
                             {"role": "user", "content": "there"}]}
        self.assertEqual(self.gw.post("/v1/chat/completions", body).status, 200)
        got = self.sim_requests()[-1]
        self.assertEqual(got["path"], "/v1/messages")
        self.assertEqual(got["headers"]["x-api-key"], "sk-ant-test")
        self.assertEqual(got["headers"]["anthropic-version"], "2023-06-01")
        self.assertNotIn("authorization", got["headers"])
        self.assertEqual(got["body"], {
            "model": MODEL, "max_tokens": 50, "stop_sequences": ["zzz"], "temperature": 0.5,
            "system": "Be brief.",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"},
                                                      {"type": "text", "text": "there"}]}]})

    def test_max_tokens_cuts_the_answer_with_finish_reason_length(self):
        got = self.gw.post("/v1/chat/completions", chat(max_tokens=3)).json()
        self.assertEqual(got["choices"][0]["finish_reason"], "length")
        self.assertEqual(got["usage"]["completion_tokens"], 3)
        self.assertEqual(self.sim_requests()[-1]["body"]["max_tokens"], 3)

    def test_stream_is_relayed_as_openai_chunks_with_usage_when_asked(self):
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
        self.assertEqual(chunks[-2]["choices"][0]["finish_reason"], "stop")
        self.assertEqual(chunks[-1]["choices"], [])
        self.assertEqual(chunks[-1]["usage"]["completion_tokens"], TOKENS)
        self.assertEqual(chunks[-1]["usage"]["prompt_tokens"], whole["usage"]["prompt_tokens"])
        line = self.gw.log_lines(2)[-1]
        self.assertEqual(line["backend_kind"], "anthropic")
        self.assertEqual(line["completion_tokens"], TOKENS)
        self.assertEqual(line["prompt_tokens"], whole["usage"]["prompt_tokens"])

    def test_stream_without_include_usage_has_no_usage_chunk_but_is_counted(self):
        _, _, events, _ = harness.stream_events(self.gw.port, "/v1/chat/completions", chat(stream=True))
        chunks = [json.loads(e["data"]) for e in events[:-1]]
        self.assertTrue(all(c["choices"] and "usage" not in c for c in chunks))
        line = self.gw.log_lines(1)[-1]
        self.assertEqual(line["completion_tokens"], TOKENS)
        self.assertGreater(line["prompt_tokens"], 0)
        self.assertEqual(line["status"], 200)

    def test_tool_calls_and_results_reach_the_backend_as_blocks(self):
        body = chat("weather in Paris?", tools=[{"type": "function", "function": {
            "name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
            tool_choice="auto")
        body["messages"] += [
            {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function", "function": {
                "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}]
        r = self.gw.post("/v1/chat/completions", body)
        self.assertEqual(r.status, 200, r.body)
        sent = self.sim_requests()[-1]["body"]
        self.assertEqual(sent["tools"], [{"name": "get_weather", "input_schema": {
            "type": "object", "properties": {"city": {"type": "string"}}}}])
        self.assertEqual(sent["tool_choice"], {"type": "auto"})
        self.assertEqual(sent["messages"][1], {"role": "assistant", "content": [
            {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}}]})
        self.assertEqual(sent["messages"][2], {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "call_1", "content": "sunny"}]})

    def test_anthropic_errors_reach_the_client_in_openai_shape(self):
        r = self.gw.post("/v1/chat/completions", chat(messages=[]))
        self.assertEqual(r.status, 400)
        self.assertEqual(r.json()["error"]["type"], "invalid_request_error")
        self.assertEqual(r.json()["error"]["code"], "invalid_request_error")
        self.assertIn("messages", r.json()["error"]["message"])

    def test_overloaded_backend_answers_529_as_a_server_error(self):
        self.sim_faults({"error_rate": 1, "error_status": 503})
        r = self.gw.post("/v1/chat/completions", chat())
        self.assertEqual(r.status, 529)
        self.assertEqual(r.json()["error"], {"message": "injected fault: HTTP 503", "type": "server_error",
                                             "code": "overloaded_error"})
        self.assertEqual(self.gw.log_lines(1)[-1]["status"], 529)

    def test_error_event_mid_stream_ends_the_stream_with_an_openai_error(self):
        self.sim_faults({"midstream_error_rate": 1, "midstream_error_after_tokens": 2})
        status, _, events, _ = harness.stream_events(self.gw.port, "/v1/chat/completions", chat(stream=True))
        self.assertEqual(status, 200)
        last = json.loads(events[-1]["data"])
        self.assertEqual(last["error"]["code"], "overloaded_error")
        self.assertEqual(last["error"]["type"], "server_error")
        self.assertNotIn("[DONE]", [e["data"] for e in events])
        line = self.gw.log_lines(1)[-1]
        self.assertIn("error event", line["error"])

    def test_completions_and_fields_anthropic_lacks_are_refused_before_the_backend(self):
        r = self.gw.post("/v1/completions", {"model": MODEL, "prompt": "x"})
        self.assertEqual(r.status, 400)
        self.assertEqual(r.json()["error"]["message"], "the anthropic backend serves chat completions only")
        r = self.gw.post("/v1/chat/completions", chat(n=2))
        self.assertEqual(r.status, 400)
        self.assertIn("'n'", r.json()["error"]["message"])
        r = self.gw.post("/v1/chat/completions", chat(messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.invalid/a.png"}}]}]))
        self.assertEqual(r.status, 400)
        self.assertIn("'messages[0].content[0]' of type 'image_url'", r.json()["error"]["message"])
        self.assertEqual(self.sim_requests(), [])


if __name__ == "__main__":
    harness.main()
