"""Clients that speak OpenAI's Responses API to switchyard: POST
/v1/responses served by any backend kind, whole and streamed, with function
tools, and errors in OpenAI's shape."""
import json
import unittest

import harness
from harness import binary, free_ports, request, start
from test_proxy import Gateway


def ask(model="m-openai", stream=False, **kw):
    body = {"model": model, "instructions": "Be brief.", "input": "Say hello to the gateway",
            "max_output_tokens": 8}
    if stream:
        body["stream"] = True
    body.update(kw)
    return body


WEATHER = {"type": "function", "name": "get_weather", "description": "The weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                          "required": ["city"]}}


def stream_events(body):
    """The (name, data) of each event of a Responses stream, checked to agree."""
    events = harness.parse_sse(body)
    out = []
    for e in events:
        data = json.loads(e["data"])
        assert data["type"] == e["event"], e
        out.append((e["event"], data))
    return out


class ResponsesClients(unittest.TestCase):
    def setUp(self):
        self.sim = free_ports(2)
        start(self, [binary("sy-sim"), "--port", str(self.sim), "--replicas", "2", "--speed", "0",
                     "--output-tokens", "fixed:8", "--quiet"], port=self.sim, name="sy-sim")
        harness.wait_port(self.sim + 1)
        self.gw = Gateway(self, {
            "backends": [{"name": "oa", "url": "http://127.0.0.1:%d/v1" % self.sim},
                         {"name": "an", "url": "http://127.0.0.1:%d/v1" % (self.sim + 1), "kind": "anthropic"}],
            "routes": [{"name": "via-openai", "models": ["m-openai"], "backends": ["oa"]},
                       {"name": "via-anthropic", "models": ["m-anthropic"], "backends": ["an"]}]})

    def post(self, body):
        return request(self.gw.port, "POST", "/v1/responses", body)

    def check_response(self, r, model):
        self.assertEqual(r.status, 200, r.body)
        resp = r.json()
        self.assertEqual(resp["object"], "response")
        self.assertTrue(resp["id"].startswith("resp_"))
        self.assertEqual(resp["model"], model)
        self.assertIn(resp["status"], ("completed", "incomplete"))
        item = resp["output"][0]
        self.assertEqual(item["type"], "message")
        self.assertEqual(item["role"], "assistant")
        self.assertEqual(item["content"][0]["type"], "output_text")
        self.assertTrue(item["content"][0]["text"].strip())
        u = resp["usage"]
        self.assertEqual(u["output_tokens"], 8)
        self.assertGreater(u["input_tokens"], 0)
        self.assertEqual(u["total_tokens"], u["input_tokens"] + u["output_tokens"])
        self.assertEqual(u["input_tokens_details"]["cached_tokens"], 0)
        return resp

    def test_a_response_is_answered_by_an_openai_backend(self):
        resp = self.check_response(self.post(ask(temperature=0.3, top_p=0.9, user="u-1")), "m-openai")
        seen = request(self.sim, "GET", "/sim/requests").json()[-1]
        self.assertEqual(seen["path"], "/v1/chat/completions")
        self.assertEqual(seen["body"]["messages"], [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Say hello to the gateway"}])
        self.assertEqual(seen["body"]["max_tokens"], 8)
        self.assertEqual(seen["body"]["temperature"], 0.3)
        self.assertEqual(seen["body"]["top_p"], 0.9)
        self.assertEqual(seen["body"]["user"], "u-1")
        line = self.gw.log_lines(1)[-1]
        self.assertEqual(line["client_api"], "responses")
        self.assertEqual(line["completion_tokens"], resp["usage"]["output_tokens"])

    def test_a_response_is_answered_by_an_anthropic_backend(self):
        self.check_response(self.post(ask("m-anthropic")), "m-anthropic")
        seen = request(self.sim + 1, "GET", "/sim/requests").json()[-1]
        self.assertEqual(seen["path"], "/v1/messages")
        self.assertEqual(seen["body"]["system"], "Be brief.")

    def test_the_response_repeats_what_the_request_asked(self):
        asked = {"temperature": 0.25, "top_p": 0.5, "max_output_tokens": 7, "tools": [WEATHER],
                 "tool_choice": "none", "metadata": {"run": "r1"}, "user": "u-9",
                 "parallel_tool_calls": False, "truncation": "disabled",
                 "text": {"format": {"type": "text"}}}
        for stream in (False, True):
            r = self.post(ask(stream=stream, **asked))
            self.assertEqual(r.status, 200, r.body)
            resp = stream_events(r.body)[-1][1]["response"] if stream else r.json()
            for k, v in asked.items():
                self.assertEqual(resp[k], v, (stream, k))
            self.assertEqual(resp["instructions"], "Be brief.")
        # What a request leaves out is answered with OpenAI's defaults.
        body = ask()
        del body["max_output_tokens"]
        resp = self.post(body).json()
        self.assertEqual((resp["temperature"], resp["top_p"], resp["max_output_tokens"],
                          resp["tools"], resp["tool_choice"], resp["metadata"], resp["user"],
                          resp["truncation"]),
                         (1.0, 1.0, None, [], "auto", {}, None, "disabled"))

    def test_input_items_become_the_conversation(self):
        body = ask(input=[
            {"role": "developer", "content": "Answer in English."},
            {"type": "message", "role": "user",
             "content": [{"type": "input_text", "text": "Look:"},
                         {"type": "input_image", "image_url": "https://example.com/a.png"}]},
            {"role": "assistant", "content": [{"type": "output_text", "text": "A cat."}]},
            {"role": "user", "content": [{"type": "input_text", "text": "one"},
                                         {"type": "input_text", "text": "two"}]}])
        self.assertEqual(self.post(body).status, 200)
        seen = request(self.sim, "GET", "/sim/requests").json()[-1]
        self.assertEqual(seen["body"]["messages"], [
            {"role": "system", "content": "Be brief."},
            {"role": "system", "content": "Answer in English."},
            {"role": "user", "content": [{"type": "text", "text": "Look:"},
                                         {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]},
            {"role": "assistant", "content": "A cat."},
            {"role": "user", "content": "one\ntwo"}])

    def test_text_format_json_schema_becomes_response_format(self):
        schema = {"type": "object", "properties": {"a": {"type": "string"}}}
        self.assertEqual(self.post(ask(text={"format": {"type": "json_schema", "name": "out",
                                                        "schema": schema, "strict": True}})).status, 200)
        seen = request(self.sim, "GET", "/sim/requests").json()[-1]
        self.assertEqual(seen["body"]["response_format"],
                         {"type": "json_schema", "json_schema": {"name": "out", "schema": schema,
                                                                 "strict": True}})

    def test_max_output_tokens_cut_is_an_incomplete_response(self):
        r = self.post(ask(max_output_tokens=3))
        self.assertEqual(r.status, 200, r.body)
        resp = r.json()
        self.assertEqual(resp["status"], "incomplete")
        self.assertEqual(resp["incomplete_details"], {"reason": "max_output_tokens"})
        self.assertEqual(resp["usage"]["output_tokens"], 3)

    def test_a_stream_has_the_responses_event_sequence_and_usage(self):
        for model in ("m-openai", "m-anthropic"):
            body = ask(model, stream=True)
            del body["max_output_tokens"]  # sy-sim answers max_tokens with a cut
            r = self.post(body)
            self.assertEqual(r.status, 200, r.body)
            self.assertTrue(r.headers["content-type"].startswith("text/event-stream"))
            events = stream_events(r.body)
            names = [n for n, _ in events]
            self.assertEqual(names[:4], ["response.created", "response.in_progress",
                                         "response.output_item.added", "response.content_part.added"])
            self.assertEqual(names[-4:], ["response.output_text.done", "response.content_part.done",
                                          "response.output_item.done", "response.completed"])
            self.assertEqual([d["sequence_number"] for _, d in events], list(range(len(events))))
            deltas = "".join(d["delta"] for n, d in events if n == "response.output_text.delta")
            done = events[-1][1]["response"]
            self.assertEqual(done["status"], "completed")
            self.assertEqual(done["output"][0]["content"][0]["text"], deltas)
            self.assertEqual(events[-4][1]["text"], deltas)
            self.assertEqual(done["usage"]["output_tokens"], 8)
            self.assertGreater(done["usage"]["input_tokens"], 0)
            self.assertEqual(done["id"], events[0][1]["response"]["id"])
            self.assertEqual(events[0][1]["response"]["status"], "in_progress")

    def test_a_cut_stream_ends_with_response_incomplete(self):
        events = stream_events(self.post(ask(stream=True, max_output_tokens=2)).body)
        self.assertEqual(events[-1][0], "response.incomplete")
        self.assertEqual(events[-1][1]["response"]["incomplete_details"], {"reason": "max_output_tokens"})

    def check_error(self, body, status, words):
        r = self.post(body)
        self.assertEqual(r.status, status, r.body)
        err = r.json()["error"]
        self.assertEqual(err["type"], "invalid_request_error")
        for w in words:
            self.assertIn(w, err["message"])

    def test_fields_it_cannot_serve_get_a_400_naming_them(self):
        self.check_error(ask(previous_response_id=7), 400, ["previous_response_id"])
        self.check_error(ask(tools=[{"type": "web_search"}]), 400, ["tools.0.type", "web_search"])
        self.check_error(ask(background=True), 400, ["background"])
        self.check_error(ask(input=[{"type": "reasoning", "summary": []}]), 400, ["input.0.type", "reasoning"])

    def test_bad_requests_get_a_400_naming_the_field(self):
        self.check_error({"input": "hi"}, 400, ["model"])
        self.check_error({"model": "m-openai"}, 400, ["input"])
        self.check_error(ask(input=[{"role": "robot", "content": "x"}]), 400, ["input.0.role"])
        self.check_error(ask(max_output_tokens=0), 400, ["max_output_tokens"])
        self.check_error(ask(input=[{"type": "function_call_output", "output": "x"}]), 400,
                         ["input.0.call_id"])
        r = self.post("{not json")
        self.assertEqual(r.status, 400)
        self.assertIn("not valid JSON", r.json()["error"]["message"])

    def test_get_is_405(self):
        r = request(self.gw.port, "GET", "/v1/responses")
        self.assertEqual(r.status, 405)


class ResponsesOnThePath(unittest.TestCase):
    """The rest of the path works for the Responses dialect as for chat."""

    def setUp(self):
        self.sim = free_ports(1)
        start(self, [binary("sy-sim"), "--port", str(self.sim), "--speed", "0",
                     "--output-tokens", "fixed:8", "--quiet"], port=self.sim, name="sy-sim")
        self.gw = Gateway(self, {
            "backends": [{"name": "oa", "url": "http://127.0.0.1:%d/v1" % self.sim}],
            "routes": [{"name": "r", "models": ["m"], "aliases": {"gpt-4o": "m"}, "cache": {}}]})

    def post(self, body):
        return request(self.gw.port, "POST", "/v1/responses", body)

    def test_an_alias_is_answered_under_the_clients_name(self):
        resp = self.post(ask("gpt-4o")).json()
        self.assertEqual(resp["model"], "gpt-4o")
        self.assertEqual(request(self.sim, "GET", "/sim/requests").json()[-1]["body"]["model"], "m")

    def test_a_repeated_deterministic_response_is_a_cache_hit_whole_and_streamed(self):
        body = ask("m", temperature=0)
        first, second = self.post(body), self.post(body)
        self.assertEqual((first.headers["x-switchyard-cache"], second.headers["x-switchyard-cache"]),
                         ("miss", "hit"))
        text = first.json()["output"][0]["content"][0]["text"]
        self.assertEqual(second.json()["output"][0]["content"][0]["text"], text)
        self.assertEqual(len(request(self.sim, "GET", "/sim/requests").json()), 1)
        r = self.post(dict(body, stream=True))
        self.assertEqual(r.headers["x-switchyard-cache"], "hit")
        events = stream_events(r.body)
        self.assertEqual(events[-1][1]["response"]["output"][0]["content"][0]["text"], text)
        self.assertEqual("".join(d["delta"] for n, d in events if n == "response.output_text.delta"), text)


def chat_answer(message, finish="stop"):
    return {"id": "chatcmpl-xyz", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25,
                      "prompt_tokens_details": {"cached_tokens": 4}}}


def chunk(delta, finish=None):
    return {"id": "chatcmpl-xyz", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


TOOL_CHUNKS = [
    chunk({"role": "assistant", "content": "Let me look."}),
    chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                           "function": {"name": "get_weather", "arguments": ""}}]}),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":"}}]}),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": "\"Paris\"}"}}]}),
    chunk({"tool_calls": [{"index": 1, "id": "call_2", "type": "function",
                           "function": {"name": "get_weather", "arguments": "{\"city\":\"Rome\"}"}}]}),
    chunk({}, "tool_calls"),
    {"id": "chatcmpl-xyz", "object": "chat.completion.chunk", "choices": [],
     "usage": {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25}},
]


class ResponsesTools(unittest.TestCase):
    """Function tools through a scripted OpenAI-compatible backend."""

    def setUp(self):
        def reply(path, headers, body):
            req = json.loads(body)
            if req.get("stream"):
                chunks = [b"data: %s\n\n" % json.dumps(c).encode() for c in self.chunks]
                return 200, {"Content-Type": "text/event-stream"}, chunks + [b"data: [DONE]\n\n"], 0, False
            data = json.dumps(self.answer).encode()
            return 200, {"Content-Type": "application/json"}, [data], 0, False

        self.answer = chat_answer({"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]}, "tool_calls")
        self.chunks = TOOL_CHUNKS
        self.backend = harness.ScriptedBackend(reply)
        self.addCleanup(self.backend.close)
        self.gw = Gateway(self, {"backends": [{"name": "b", "url": "http://127.0.0.1:%d/v1" % self.backend.port,
                                               "models": ["m"]}],
                                 "routes": [{"name": "r", "models": ["m"]}]})

    def post(self, body):
        return request(self.gw.port, "POST", "/v1/responses", body)

    def sent(self):
        return json.loads(self.backend.received[-1]["body"])

    def test_function_tools_and_tool_choice_become_chat_tools(self):
        r = self.post({"model": "m", "input": "Weather in Paris?", "tools": [WEATHER],
                       "tool_choice": {"type": "function", "name": "get_weather"},
                       "parallel_tool_calls": False})
        self.assertEqual(r.status, 200, r.body)
        sent = self.sent()
        self.assertEqual(sent["tools"], [{"type": "function", "function": {
            "name": "get_weather", "description": "The weather in a city",
            "parameters": WEATHER["parameters"]}}])
        self.assertEqual(sent["tool_choice"], {"type": "function", "function": {"name": "get_weather"}})
        self.assertFalse(sent["parallel_tool_calls"])

    def test_a_tool_call_is_a_function_call_item(self):
        resp = self.post({"model": "m", "input": "Weather in Paris?", "tools": [WEATHER]}).json()
        self.assertEqual(resp["status"], "completed")
        self.assertEqual(len(resp["output"]), 1)
        item = resp["output"][0]
        self.assertEqual(item["type"], "function_call")
        self.assertEqual(item["call_id"], "call_1")
        self.assertEqual(item["name"], "get_weather")
        self.assertEqual(json.loads(item["arguments"]), {"city": "Paris"})
        self.assertTrue(item["id"].startswith("fc_"))
        self.assertTrue(resp["id"].startswith("resp_"))
        again = self.post({"model": "m", "input": "Weather in Paris?", "tools": [WEATHER]}).json()
        self.assertNotEqual(again["id"], resp["id"])	# the backend's id is the same: each is stored
        self.assertEqual(resp["usage"], {"input_tokens": 20, "input_tokens_details": {"cached_tokens": 4},
                                         "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 0},
                                         "total_tokens": 25})

    def test_a_tool_round_trip_sends_the_call_and_its_output(self):
        r = self.post({"model": "m", "tools": [WEATHER], "input": [
            {"role": "user", "content": "Weather in Paris?"},
            {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "get_weather",
             "arguments": "{\"city\":\"Paris\"}"},
            {"type": "function_call", "id": "fc_2", "call_id": "call_2", "name": "get_weather",
             "arguments": "{\"city\":\"Rome\"}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
            {"type": "function_call_output", "call_id": "call_2",
             "output": [{"type": "input_text", "text": "rain"}]}]})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(self.sent()["messages"], [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call_2", "type": "function",
                 "function": {"name": "get_weather", "arguments": "{\"city\":\"Rome\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
            {"role": "tool", "tool_call_id": "call_2", "content": "rain"}])

    def test_a_streamed_tool_call_has_function_call_argument_events(self):
        r = self.post({"model": "m", "input": "Weather?", "tools": [WEATHER], "stream": True})
        self.assertEqual(r.status, 200, r.body)
        events = stream_events(r.body)
        names = [n for n, _ in events]
        self.assertEqual(names, [
            "response.created", "response.in_progress",
            "response.output_item.added", "response.content_part.added", "response.output_text.delta",
            "response.output_text.done", "response.content_part.done", "response.output_item.done",
            "response.output_item.added", "response.function_call_arguments.delta",
            "response.function_call_arguments.delta", "response.function_call_arguments.done",
            "response.output_item.done",
            "response.output_item.added", "response.function_call_arguments.delta",
            "response.function_call_arguments.done", "response.output_item.done",
            "response.completed"])
        added = [d for n, d in events if n == "response.output_item.added"]
        self.assertEqual([a["output_index"] for a in added], [0, 1, 2])
        self.assertEqual(added[1]["item"]["call_id"], "call_1")
        self.assertEqual(added[1]["item"]["status"], "in_progress")
        args = "".join(d["delta"] for n, d in events
                       if n == "response.function_call_arguments.delta" and d["output_index"] == 1)
        self.assertEqual(args, "{\"city\":\"Paris\"}")
        final = events[-1][1]["response"]
        self.assertEqual([o["type"] for o in final["output"]], ["message", "function_call", "function_call"])
        self.assertEqual(final["output"][0]["content"][0]["text"], "Let me look.")
        self.assertEqual(final["output"][1]["arguments"], "{\"city\":\"Paris\"}")
        self.assertEqual(final["output"][2]["arguments"], "{\"city\":\"Rome\"}")
        self.assertEqual(final["output"][2]["status"], "completed")
        self.assertEqual(final["usage"]["total_tokens"], 25)
        self.assertTrue(self.sent()["stream_options"]["include_usage"])

    def test_tool_calls_without_index_or_id_still_become_items(self):
        self.chunks = [chunk({"tool_calls": [{"function": {"name": "get_weather", "arguments": "{}"}}]}),
                       chunk({"tool_calls": [{"id": "call_b", "function": {"name": "get_time", "arguments": ""}}]}),
                       chunk({"tool_calls": [{"function": {"arguments": "{\"tz\":1}"}}]}),
                       chunk({}, "tool_calls")]
        events = stream_events(self.post({"model": "m", "input": "x", "tools": [WEATHER], "stream": True}).body)
        final = events[-1][1]["response"]
        self.assertEqual([(o["type"], o["name"], o["arguments"]) for o in final["output"]],
                         [("function_call", "get_weather", "{}"), ("function_call", "get_time", "{\"tz\":1}")])
        self.assertTrue(final["output"][0]["call_id"].startswith("call_"))
        self.assertEqual(final["output"][1]["call_id"], "call_b")

    def test_a_stream_with_no_chunks_is_a_completed_empty_response(self):
        self.chunks = []
        events = stream_events(self.post({"model": "m", "input": "x", "stream": True}).body)
        self.assertEqual([n for n, _ in events], ["response.created", "response.in_progress", "response.completed"])
        self.assertEqual(events[-1][1]["response"]["output"], [])

    def test_a_stream_error_is_response_failed(self):
        self.chunks = [chunk({"role": "assistant", "content": "Hel"}),
                       {"error": {"message": "backend fell over", "type": "server_error", "code": "boom"}}]
        events = stream_events(self.post({"model": "m", "input": "hi", "stream": True}).body)
        self.assertEqual(events[-1][0], "response.failed")
        failed = events[-1][1]["response"]
        self.assertEqual(failed["status"], "failed")
        self.assertEqual(failed["error"], {"code": "boom", "message": "backend fell over"})


if __name__ == "__main__":
    harness.main()
