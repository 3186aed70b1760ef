"""sy-sim's OpenAI dialects: each replica answers as llama.cpp, vLLM,
api.openai.com or SGLang would, down to the members a client or gateway
trips on. llama.cpp is checked against the answers recorded from a real
llama-server (tests/fixtures/llama-server-c392e50), the others against the
servers' documented shapes.
"""
import json
import unittest

import harness
from simfleet import ClassScope, sim

CHAT = "/v1/chat/completions"


def sse_lines(data):
    """(field, value) of each event of an SSE body; data values parsed."""
    out = []
    for ev in data.decode().split("\n\n"):
        if not ev or ev.startswith(":"):
            continue
        field, _, value = ev.partition(":")
        value = value.strip()
        out.append((field, value if value == "[DONE]" else json.loads(value)))
    return out


def shape(v):
    """The members of v, recursively, without their values."""
    if isinstance(v, dict):
        return {k: shape(x) for k, x in v.items()}
    if isinstance(v, list):
        return [shape(x) for x in v[:1]]
    return type(v).__name__ if v is not None else None


def stream(port, body):
    r = harness.request(port, "POST", CHAT if "messages" in body else "/v1/completions",
                        json.dumps(body).encode(), {"Content-Type": "application/json"})
    assert r.status == 200, r.body
    return sse_lines(r.body)


def chat(**extra):
    body = {"model": "m", "max_tokens": 6, "stream": True,
            "messages": [{"role": "user", "content": "hello there"}]}
    body.update(extra)
    return body


class Dialects(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        scope = ClassScope(cls)
        cls.port = {d: sim(scope, "--dialect", d)
                    for d in ("llama.cpp", "vllm", "openai", "sglang")}
        cls.faulty = {d: sim(scope, "--dialect", d, "--faults",
                             '{"midstream_error_rate":1,"midstream_error_after_tokens":2}')
                      for d in ("llama.cpp", "vllm", "openai")}

    def test_llamacpp_stream_has_the_recorded_shape(self):
        recorded = sse_lines(harness.fixture("llama-server-c392e50/chat_stream.sse"))
        for asked in (False, True):
            with self.subTest(include_usage=asked):
                body = chat(stream_options={"include_usage": True}) if asked else chat()
                got = stream(self.port["llama.cpp"], body)
                # no role chunk: content from the first event
                self.assertEqual(shape(got[0][1]), shape(recorded[0][1]))
                self.assertIn("content", got[0][1]["choices"][0]["delta"])
                self.assertNotIn("role", got[0][1]["choices"][0]["delta"])
                # the finish chunk carries usage and timings (with cache_n), asked or not
                fin, rec_fin = got[-2][1], recorded[-2][1]
                self.assertEqual(set(fin), set(rec_fin))
                self.assertEqual(set(fin["usage"]) - {"prompt_tokens_details"}, set(rec_fin["usage"]))
                self.assertEqual(set(fin["timings"]), set(rec_fin["timings"]) | {"cache_n"})
                self.assertEqual(fin["usage"]["completion_tokens"], 6)
                self.assertEqual(got[-1], ("data", "[DONE]"))
                self.assertEqual(len(got), 6 + 2)

    def test_llamacpp_stream_error_is_an_error_line_then_done(self):
        recorded = sse_lines(harness.fixture("llama-server-c392e50/error_midstream.sse"))
        got = stream(self.faulty["llama.cpp"], chat())
        self.assertEqual([f for f, _ in got[-2:]], [f for f, _ in recorded[-2:]])
        self.assertEqual(got[-2][0], "error")
        self.assertEqual(set(got[-2][1]), set(recorded[-2][1]))
        self.assertEqual(got[-1], ("data", "[DONE]"))

    def test_llamacpp_reports_cached_prompt_tokens_in_timings(self):
        body = chat(messages=[{"role": "user", "content": " ".join("w%d" % i for i in range(64))}])
        stream(self.port["llama.cpp"], body)
        fin = stream(self.port["llama.cpp"], body)[-2][1]
        self.assertGreater(fin["timings"]["cache_n"], 0)
        self.assertEqual(fin["timings"]["cache_n"], fin["usage"]["prompt_tokens_details"]["cached_tokens"])

    def test_vllm_sends_usage_null_then_a_usage_chunk_and_names_the_stop_string(self):
        got = stream(self.port["vllm"], chat(stream_options={"include_usage": True}))
        self.assertEqual(got[0][1]["choices"][0]["delta"], {"role": "assistant", "content": ""})
        for _, ev in got[:-2]:
            self.assertIn("usage", ev)
            self.assertIsNone(ev["usage"])
            self.assertNotIn("timings", ev)
        self.assertEqual(got[-2][1]["choices"], [])
        self.assertEqual(got[-2][1]["usage"]["completion_tokens"], 6)
        self.assertEqual(got[-1], ("data", "[DONE]"))
        fin = got[-3][1]["choices"][0]
        self.assertEqual(fin["finish_reason"], "length")
        self.assertIsNone(fin["stop_reason"])
        # a stop string: finish_reason stop, stop_reason names it
        words = stream(self.port["vllm"], chat(max_tokens=20))
        text = "".join(e["choices"][0]["delta"].get("content") or ""
                       for f, e in words if f == "data" and e != "[DONE]" and e["choices"])
        stop = text.split()[3]
        got = stream(self.port["vllm"], chat(max_tokens=20, stop=[stop]))
        fin = got[-2][1]["choices"][0]
        self.assertEqual((fin["finish_reason"], fin["stop_reason"]), ("stop", stop))
        whole = harness.post_json(self.port["vllm"], CHAT, chat(max_tokens=20, stop=[stop], stream=False))
        self.assertEqual(whole.json()["choices"][0]["stop_reason"], stop)

    def test_vllm_and_sglang_without_include_usage_send_no_usage(self):
        for d in ("vllm", "sglang"):
            with self.subTest(dialect=d):
                got = stream(self.port[d], chat())
                self.assertFalse([e for f, e in got if isinstance(e, dict) and "usage" in e])

    def test_vllm_stream_error_is_a_data_event_then_done(self):
        got = stream(self.faulty["vllm"], chat())
        self.assertEqual(got[-2][0], "data")
        self.assertEqual(got[-2][1]["error"]["code"], 500)
        self.assertEqual(got[-1], ("data", "[DONE]"))

    def test_openai_chunks_carry_usage_null_fingerprint_and_obfuscation(self):
        got = stream(self.port["openai"], chat(stream_options={"include_usage": True}))
        self.assertEqual(got[0][1]["choices"][0]["delta"],
                         {"role": "assistant", "content": "", "refusal": None})
        for _, ev in got[:-2]:
            self.assertIsNone(ev["usage"])
            self.assertTrue(ev["system_fingerprint"].startswith("fp_"))
            self.assertIsInstance(ev["obfuscation"], str)
            self.assertNotIn("timings", ev)
        last = got[-2][1]
        self.assertEqual(last["choices"], [])
        self.assertEqual(last["usage"]["total_tokens"],
                         last["usage"]["prompt_tokens"] + last["usage"]["completion_tokens"])
        whole = harness.post_json(self.port["openai"], CHAT, chat(stream=False)).json()
        self.assertNotIn("timings", whole)
        self.assertTrue(whole["system_fingerprint"].startswith("fp_"))

    def test_openai_stream_error_is_an_error_event_without_done(self):
        got = stream(self.faulty["openai"], chat())
        self.assertEqual(got[-1][0], "data")
        self.assertEqual(got[-1][1]["error"]["type"], "server_error")

    def test_sglang_names_the_stop_string_in_matched_stop(self):
        got = stream(self.port["sglang"], chat(max_tokens=3))
        self.assertIsNone(got[-2][1]["choices"][0]["matched_stop"])
        self.assertEqual(got[0][1]["choices"][0]["delta"]["role"], "assistant")

    def test_completions_usage_per_dialect(self):
        body = {"model": "m", "prompt": "hi", "max_tokens": 3, "stream": True}
        for d, on_last_text in (("llama.cpp", True), ("vllm", False), ("openai", False)):
            with self.subTest(dialect=d):
                got = stream(self.port[d], body)
                self.assertEqual("usage" in got[-2][1], on_last_text)

    def test_tools_are_answered_with_a_call_of_the_first_in_every_dialect(self):
        tools = [{"type": "function", "function": {"name": "lookup", "parameters": {}}},
                 {"type": "function", "function": {"name": "other", "parameters": {}}}]
        for d, port in self.port.items():
            with self.subTest(dialect=d):
                whole = harness.post_json(port, CHAT, chat(stream=False, tools=tools)).json()
                choice = whole["choices"][0]
                self.assertEqual(choice["finish_reason"], "tool_calls")
                self.assertIsNone(choice["message"]["content"])
                call = choice["message"]["tool_calls"][0]
                self.assertEqual((call["type"], call["function"]["name"]), ("function", "lookup"))
                q = json.loads(call["function"]["arguments"])["q"]
                self.assertEqual(len(q.split()), whole["usage"]["completion_tokens"])
                got = stream(port, chat(tools=tools))
                deltas = [c["delta"] for f, e in got if f == "data" and e != "[DONE]"
                          for c in e["choices"]]
                calls = [t for dl in deltas for t in dl.get("tool_calls", [])]
                self.assertEqual([t["function"]["name"] for t in calls if "name" in t["function"]],
                                 ["lookup"])
                self.assertTrue(calls[0]["id"].startswith("call_"))
                args = "".join(t["function"]["arguments"] for t in calls)
                self.assertEqual(json.loads(args)["q"], q)
                self.assertEqual(deltas[-1], {})
                self.assertEqual([e for f, e in got if f == "data" and e != "[DONE]"][-1]
                                 ["choices"][0]["finish_reason"], "tool_calls")

    def test_a_tool_result_or_tool_choice_none_is_answered_in_text(self):
        tools = [{"type": "function", "function": {"name": "lookup", "parameters": {}}}]
        after = [{"role": "user", "content": "hi"},
                 {"role": "assistant", "content": None, "tool_calls": [
                     {"id": "call_1", "type": "function",
                      "function": {"name": "lookup", "arguments": "{}"}}]},
                 {"role": "tool", "tool_call_id": "call_1", "content": "42"}]
        for body in (chat(stream=False, tools=tools, messages=after),
                     chat(stream=False, tools=tools, tool_choice="none")):
            choice = harness.post_json(self.port["vllm"], CHAT, body).json()["choices"][0]
            self.assertEqual(choice["finish_reason"], "length")
            self.assertNotIn("tool_calls", choice["message"])
            self.assertTrue(choice["message"]["content"])

    def test_a_bad_dialect_is_refused(self):
        p = harness.Proc([harness.binary("sy-sim"), "--dialect", "tgi"], name="sy-sim")
        self.addCleanup(p.cleanup)
        self.assertEqual(p.p.wait(10), 1)
        self.assertIn("--dialect: must be one of sim, openai, vllm, llama.cpp or sglang",
                      p.output())


if __name__ == "__main__":
    harness.main()
