"""sy-sim speaks the other wire protocols of the backend adapters on every
replica: Anthropic Messages, Hugging Face TGI, Ollama and KServe v2. Each
answers in its own shapes with the same performance model, deterministic
text, token accounting, faults and request log as the OpenAI protocol.
"""
import http.client
import json
import math
import socket
import time
import unittest

import harness

CHAT = "/v1/chat/completions"
MESSAGES = "/v1/messages"
ANTHROPIC_HEADERS = {"x-api-key": "sk-test", "anthropic-version": "2023-06-01"}


def sim(testcase, *args):
    """Starts one sy-sim replica with args on a free port; returns it."""
    port = harness.free_port()
    harness.start(testcase, [harness.binary("sy-sim"), "--quiet", "--port", str(port)] + list(args),
                  port=port)
    return port


def get_json(port, path):
    r = harness.request(port, "GET", path)
    assert r.status == 200, (path, r.status, r.body)
    return r.json()


def set_faults(port, **faults):
    r = harness.post_json(port, "/sim/faults", faults)
    assert r.status == 200, r.body
    return r.json()


def ntok(text):
    """Tokens of text as sy-sim counts them: pieces of at most 4 bytes of
    each whitespace-separated word."""
    return sum(math.ceil(len(w.encode()) / 4) for w in text.split())


def words(n, tag="w"):
    """A prompt of n one-token words."""
    return " ".join("%s%d" % (tag, i % 100) for i in range(n))


def message(content, **extra):
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": content}]}
    body.update(extra)
    return body


def openai_text(port, content, **extra):
    body = {"model": "m", "messages": [{"role": "user", "content": content}]}
    body.update(extra)
    return harness.post_json(port, CHAT, body).json()["choices"][0]["message"]["content"]


def ndjson(body):
    """The objects of an NDJSON body, one a line."""
    lines = body.decode().split("\n")
    assert lines[-1] == "", body
    return [json.loads(line) for line in lines[:-1]]


def timed_post(port, path, body):
    t0 = time.monotonic()
    r = harness.post_json(port, path, body)
    return time.monotonic() - t0, r


def raw_exchange(port, path, body, timeout=5.0):
    """Sends one POST on a raw socket; returns every byte until EOF."""
    payload = json.dumps(body).encode()
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(b"POST %s HTTP/1.1\r\nHost: sim\r\nContent-Length: %d\r\n\r\n"
              % (path.encode(), len(payload)) + payload)
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    return data


def norm(v):
    return math.sqrt(sum(x * x for x in v))


class Anthropic(unittest.TestCase):
    """POST /v1/messages answers as the Anthropic Messages API."""

    def setUp(self):
        self.port = sim(self, "--speed", "0", "--output-tokens", "fixed:7")

    def post(self, body):
        return harness.post_json(self.port, MESSAGES, body, headers=ANTHROPIC_HEADERS)

    def test_message_has_the_keys_of_the_messages_api(self):
        r = self.post(message("hello there"))
        self.assertEqual(r.status, 200)
        got = r.json()
        self.assertEqual(set(got), {"id", "type", "role", "model", "content", "stop_reason",
                                    "stop_sequence", "usage"})
        self.assertEqual(set(got["usage"]), {"input_tokens", "output_tokens",
                                             "cache_read_input_tokens", "cache_creation_input_tokens"})
        self.assertTrue(got["id"].startswith("msg_"))
        self.assertEqual((got["type"], got["role"], got["model"]), ("message", "assistant", "m"))
        self.assertEqual(len(got["content"]), 1)
        self.assertEqual(set(got["content"][0]), {"type", "text"})
        self.assertEqual(got["content"][0]["type"], "text")
        self.assertEqual((got["stop_reason"], got["stop_sequence"]), ("max_tokens", None))
        text = got["content"][0]["text"]
        self.assertEqual(got["usage"]["output_tokens"], 5)
        self.assertEqual(ntok(text), 5)
        self.assertEqual(got["usage"]["input_tokens"], 6)   # role, hell o ther e, answer
        self.assertEqual(got["usage"]["cache_read_input_tokens"], 0)
        self.assertEqual(got["usage"]["cache_creation_input_tokens"], 0)

    def test_stream_follows_the_event_sequence_of_the_messages_api(self):
        whole = self.post(message("hello there", max_tokens=4)).json()
        status, headers, events, _ = harness.stream_events(
            self.port, MESSAGES, message("hello there", max_tokens=4, stream=True), ANTHROPIC_HEADERS)
        self.assertEqual(status, 200)
        self.assertTrue(headers["content-type"].startswith("text/event-stream"))
        names = [e["event"] for e in events]
        self.assertEqual(names, ["message_start", "content_block_start", "ping"] +
                         ["content_block_delta"] * 4 +
                         ["content_block_stop", "message_delta", "message_stop"])
        data = [json.loads(e["data"]) for e in events]
        for name, d in zip(names, data):
            self.assertEqual(d["type"], name)
        start = data[0]["message"]
        self.assertEqual(set(start), set(whole))
        self.assertEqual(start["content"], [])
        self.assertIsNone(start["stop_reason"])
        self.assertEqual(start["usage"]["input_tokens"], 6)
        self.assertEqual(start["usage"]["output_tokens"], 1)
        self.assertEqual(data[1], {"type": "content_block_start", "index": 0,
                                   "content_block": {"type": "text", "text": ""}})
        self.assertEqual(data[2], {"type": "ping"})
        for d in data[3:7]:
            self.assertEqual((d["index"], d["delta"]["type"]), (0, "text_delta"))
        self.assertEqual("".join(d["delta"]["text"] for d in data[3:7]), whole["content"][0]["text"])
        self.assertEqual(data[7], {"type": "content_block_stop", "index": 0})
        self.assertEqual(data[8]["delta"], {"stop_reason": "max_tokens", "stop_sequence": None})
        self.assertEqual(data[8]["usage"], {"output_tokens": 4})
        self.assertEqual(data[9], {"type": "message_stop"})

    def test_max_tokens_caps_the_drawn_length_and_end_turn_ends_under_it(self):
        got = self.post(message("q", max_tokens=100)).json()
        self.assertEqual(got["stop_reason"], "end_turn")
        self.assertEqual(got["usage"]["output_tokens"], 7)
        self.assertEqual(ntok(got["content"][0]["text"]), 7)

    def test_stop_sequence_ends_the_text_where_it_begins(self):
        full = self.post(message("tell me", max_tokens=7)).json()["content"][0]["text"]
        stop = " ".join(full.split()[3:5])
        cut = full.index(stop)
        body = message("tell me", max_tokens=7, stop_sequences=["never seen", stop])
        got = self.post(body).json()
        self.assertEqual(got["content"][0]["text"], full[:cut])
        self.assertEqual((got["stop_reason"], got["stop_sequence"]), ("stop_sequence", stop))
        self.assertEqual(got["usage"]["output_tokens"], ntok(full[:cut + len(stop)]))
        _, _, events, _ = harness.stream_events(self.port, MESSAGES, dict(body, stream=True))
        data = [json.loads(e["data"]) for e in events]
        self.assertEqual("".join(d["delta"]["text"] for d in data if d["type"] == "content_block_delta"),
                         full[:cut])
        self.assertEqual(data[-2]["delta"]["stop_sequence"], stop)

    def test_system_and_content_blocks_count_as_the_openai_conversation(self):
        got = self.post(message([{"type": "text", "text": "hello"}, {"type": "text", "text": "there"}],
                                system=[{"type": "text", "text": "be brief"}], max_tokens=6)).json()
        want = harness.post_json(self.port, CHAT, {"model": "m", "max_tokens": 6, "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "hello"}, {"type": "text", "text": "there"}]},
        ]}).json()
        self.assertEqual(got["content"][0]["text"], want["choices"][0]["message"]["content"])
        self.assertEqual(got["usage"]["input_tokens"], want["usage"]["prompt_tokens"])
        self.assertEqual(got["usage"]["input_tokens"], 1 + ntok("be brief") + 1 + ntok("hello there") + 1)

    def test_tool_use_and_tool_result_blocks_are_read(self):
        body = {"model": "m", "max_tokens": 3, "tools": [{"name": "get_weather", "input_schema": {}}],
                "tool_choice": {"type": "auto"}, "temperature": 0.5, "top_p": 0.9, "messages": [
                    {"role": "user", "content": "weather"},
                    {"role": "assistant", "content": [
                        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}]},
                    {"role": "user", "content": [
                        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"}]}]}
        got = self.post(body).json()
        want = 3 + ntok("weather") + ntok("get_weather") + ntok('{"city":"Paris"}') + ntok("sunny") + 1
        self.assertEqual(got["usage"]["input_tokens"], want)

    def test_a_repeated_prompt_is_read_from_the_cache(self):
        body = message(words(100), max_tokens=1)
        first = self.post(body).json()["usage"]
        second = self.post(body).json()["usage"]
        self.assertEqual((first["input_tokens"], first["cache_read_input_tokens"]), (102, 0))
        self.assertEqual((second["input_tokens"], second["cache_read_input_tokens"]), (6, 96))
        _, _, events, _ = harness.stream_events(self.port, MESSAGES, dict(body, stream=True))
        self.assertEqual(json.loads(events[0]["data"])["message"]["usage"]["cache_read_input_tokens"], 96)

    def error(self, r, status, etype):
        self.assertEqual(r.status, status, r.body)
        got = r.json()
        self.assertEqual(set(got), {"type", "error"})
        self.assertEqual(got["type"], "error")
        self.assertEqual(set(got["error"]), {"type", "message"})
        self.assertEqual(got["error"]["type"], etype)
        return got["error"]["message"]

    def test_bad_requests_are_invalid_request_errors(self):
        body = message("q")
        del body["max_tokens"]
        self.assertIn("max_tokens", self.error(self.post(body), 400, "invalid_request_error"))
        for bad in (dict(message("q"), model=None), message("q", max_tokens=0), message("q", stream="yes"),
                    message("q", temperature=2), message("q", stop_sequences="x"),
                    {"model": "m", "max_tokens": 5, "messages": []},
                    {"model": "m", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]},
                    message([{"type": "text"}]), message(5)):
            self.error(self.post(bad), 400, "invalid_request_error")
        self.error(harness.request(self.port, "POST", MESSAGES, b"{"), 400, "invalid_request_error")
        self.error(harness.request(self.port, "GET", MESSAGES), 405, "invalid_request_error")

    def test_a_prompt_over_the_context_is_prompt_too_long(self):
        port = sim(self, "--speed", "0", "--context-tokens", "50")
        r = harness.post_json(port, MESSAGES, message(words(60)))
        self.assertIn("prompt is too long: 62 tokens > 50 maximum", self.error(r, 400, "invalid_request_error"))

    def test_faults_answer_overloaded_rate_limit_and_api_errors(self):
        set_faults(self.port, error_rate=1, error_status=503)
        self.error(self.post(message("q")), 529, "overloaded_error")
        set_faults(self.port, error_status=500)
        self.error(self.post(message("q")), 500, "api_error")
        set_faults(self.port, error_rate=0, rate_limit_rate=1, retry_after=3)
        r = self.post(message("q"))
        self.error(r, 429, "rate_limit_error")
        self.assertEqual(r.headers["retry-after"], "3")
        log = get_json(self.port, "/sim/requests")
        self.assertEqual([(e["status"], e["outcome"]) for e in log],
                         [(529, "error"), (500, "error"), (429, "rate_limited")])
        self.assertEqual(get_json(self.port, "/sim/stats")["by_path"][MESSAGES], {"529": 1, "500": 1, "429": 1})

    def test_midstream_error_is_an_error_event(self):
        set_faults(self.port, midstream_error_rate=1, midstream_error_after_tokens=2)
        status, _, events, _ = harness.stream_events(self.port, MESSAGES, message("q", stream=True))
        self.assertEqual(status, 200)
        self.assertEqual([e["event"] for e in events], ["message_start", "content_block_start", "ping",
                                                         "content_block_delta", "content_block_delta", "error"])
        err = json.loads(events[-1]["data"])
        self.assertEqual(err["type"], "error")
        self.assertEqual(set(err["error"]), {"type", "message"})
        self.assertEqual(err["error"]["type"], "overloaded_error")

    def test_drop_closes_the_stream_after_n_deltas(self):
        set_faults(self.port, drop_after_tokens=2)
        data = raw_exchange(self.port, MESSAGES, message("q", stream=True))
        self.assertTrue(data.startswith(b"HTTP/1.1 200"))
        self.assertEqual(data.count(b"event: content_block_delta"), 2)
        self.assertNotIn(b"message_stop", data)

    def test_an_unknown_model_is_not_found(self):
        port = sim(self, "--speed", "0", "--models", "alpha")
        r = harness.post_json(port, MESSAGES, dict(message("q"), model="beta"))
        self.error(r, 404, "not_found_error")
        self.assertEqual(harness.post_json(port, MESSAGES, dict(message("q"), model="alpha")).status, 200)


class Tgi(unittest.TestCase):
    """POST /generate and /generate_stream answer as text-generation-inference."""

    def setUp(self):
        self.port = sim(self, "--speed", "0", "--output-tokens", "fixed:7")

    def generate(self, inputs, **params):
        return harness.post_json(self.port, "/generate", {"inputs": inputs, "parameters": params})

    def test_generate_answers_generated_text_and_details_when_asked(self):
        plain = self.generate("hello there", max_new_tokens=5).json()
        self.assertEqual(set(plain), {"generated_text"})
        got = self.generate("hello there", max_new_tokens=5, details=True).json()
        self.assertEqual(set(got), {"generated_text", "details"})
        self.assertEqual(got["generated_text"], plain["generated_text"])
        d = got["details"]
        self.assertEqual(set(d), {"finish_reason", "generated_tokens", "seed", "prefill", "tokens"})
        self.assertEqual((d["finish_reason"], d["generated_tokens"]), ("length", 5))
        self.assertEqual(ntok(got["generated_text"]), 5)
        self.assertEqual(d["prefill"], [])
        self.assertEqual(len(d["tokens"]), 5)
        for t in d["tokens"]:
            self.assertEqual(set(t), {"id", "text", "logprob", "special"})
            self.assertIs(t["special"], False)
            self.assertLess(t["logprob"], 0)
        self.assertEqual("".join(t["text"] for t in d["tokens"]), got["generated_text"])

    def test_decoder_input_details_lists_the_prompt_tokens(self):
        d = self.generate("hello there", max_new_tokens=2, details=True,
                          decoder_input_details=True).json()["details"]
        self.assertEqual([t["text"] for t in d["prefill"]], ["hell", "o", "ther", "e"])
        self.assertIsNone(d["prefill"][0]["logprob"])
        self.assertEqual(set(d["prefill"][1]), {"id", "text", "logprob"})

    def test_finish_reason_is_eos_token_under_max_new_tokens(self):
        got = self.generate("q", max_new_tokens=50, details=True).json()
        self.assertEqual((got["details"]["finish_reason"], got["details"]["generated_tokens"]), ("eos_token", 7))
        got = self.generate("q", details=True).json()
        self.assertEqual(got["details"]["generated_tokens"], 7)

    def test_stop_sequence_ends_the_generation_and_stays_in_the_text(self):
        full = self.generate("q", max_new_tokens=7).json()["generated_text"]
        stop = full.split()[2]
        text = ""
        for n, token in enumerate(" " + w for w in full.split()):
            text += token
            if stop in text:
                break
        got = self.generate("q", max_new_tokens=7, stop=[stop], details=True).json()
        self.assertEqual(got["details"]["finish_reason"], "stop_sequence")
        self.assertEqual(got["generated_text"], text)
        self.assertEqual(got["details"]["generated_tokens"], n + 1)

    def test_generate_stream_sends_a_token_an_event_and_the_text_last(self):
        whole = self.generate("hello there", max_new_tokens=4).json()["generated_text"]
        status, headers, events, raw = harness.stream_events(
            self.port, "/generate_stream", {"inputs": "hello there",
                                            "parameters": {"max_new_tokens": 4, "details": True}})
        self.assertEqual(status, 200)
        self.assertTrue(headers["content-type"].startswith("text/event-stream"))
        self.assertNotIn(b"[DONE]", raw)
        data = [json.loads(e["data"]) for e in events]
        self.assertEqual(len(data), 4)
        for i, d in enumerate(data):
            self.assertEqual(set(d), {"index", "token", "generated_text", "details"})
            self.assertEqual(d["index"], i + 1)
            self.assertEqual(set(d["token"]), {"id", "text", "logprob", "special"})
        for d in data[:-1]:
            self.assertIsNone(d["generated_text"])
            self.assertIsNone(d["details"])
        self.assertEqual(data[-1]["generated_text"], whole)
        self.assertEqual("".join(d["token"]["text"] for d in data), whole)
        self.assertEqual(data[-1]["details"], {"finish_reason": "length", "generated_tokens": 4,
                                               "seed": None, "input_length": 4})
        _, _, events, _ = harness.stream_events(self.port, "/generate_stream",
                                                {"inputs": "hello there", "parameters": {"max_new_tokens": 2}})
        self.assertIsNone(json.loads(events[-1]["data"])["details"])

    def error(self, r, status, etype):
        self.assertEqual(r.status, status, r.body)
        self.assertEqual(set(r.json()), {"error", "error_type"})
        self.assertEqual(r.json()["error_type"], etype)

    def test_bad_requests_are_422_validation_errors(self):
        for params in ({"temperature": 0}, {"top_p": 1.0}, {"max_new_tokens": 0},
                       {"stop": ["a", "b", "c", "d", "e"]}, {"stop": "a"}):
            self.error(self.generate("q", **params), 422, "validation")
        self.error(harness.post_json(self.port, "/generate", {"parameters": {}}), 422, "validation")
        self.error(harness.post_json(self.port, "/generate", {"inputs": ""}), 422, "validation")
        self.error(harness.post_json(self.port, "/generate_stream",
                                     {"inputs": "q", "parameters": {"decoder_input_details": True}}),
                   422, "validation")

    def test_faults_answer_overloaded_and_generation_errors(self):
        set_faults(self.port, error_rate=1, error_status=503)
        self.error(self.generate("q"), 503, "overloaded")
        set_faults(self.port, error_status=500)
        self.error(self.generate("q"), 500, "generation")
        set_faults(self.port, error_rate=0, rate_limit_rate=1)
        self.error(self.generate("q"), 429, "overloaded")

    def test_midstream_error_is_an_error_event(self):
        set_faults(self.port, midstream_error_rate=1, midstream_error_after_tokens=1)
        _, _, events, _ = harness.stream_events(self.port, "/generate_stream", {"inputs": "q"})
        data = [json.loads(e["data"]) for e in events]
        self.assertEqual(len(data), 2)
        self.assertIn("token", data[0])
        self.assertEqual(set(data[1]), {"error", "error_type"})
        self.assertEqual(data[1]["error_type"], "generation")

    def test_info_describes_the_model_and_health_is_ok(self):
        info = get_json(self.port, "/info")
        for key in ("model_id", "max_concurrent_requests", "max_stop_sequences", "max_input_tokens",
                    "max_total_tokens", "router", "version"):
            self.assertIn(key, info)
        self.assertEqual((info["model_id"], info["max_total_tokens"]), ("sim-model", 8192))
        self.assertEqual(harness.request(self.port, "GET", "/health").status, 200)


class Ollama(unittest.TestCase):
    """/api/chat, /api/generate and /api/embed answer as Ollama."""

    FINAL = {"model", "created_at", "message", "done", "done_reason", "total_duration", "load_duration",
             "prompt_eval_count", "prompt_eval_duration", "eval_count", "eval_duration"}

    def setUp(self):
        self.port = sim(self, "--speed", "0", "--output-tokens", "fixed:7")

    def chat(self, content, **extra):
        body = {"model": "m", "messages": [{"role": "user", "content": content}]}
        body.update(extra)
        return harness.post_json(self.port, "/api/chat", body)

    def test_chat_streams_ndjson_by_default(self):
        r = self.chat("hello there", options={"num_predict": 4})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers["content-type"], "application/x-ndjson")
        lines = ndjson(r.body)
        self.assertEqual([x["done"] for x in lines], [False] * 4 + [True])
        for x in lines[:-1]:
            self.assertEqual(set(x), {"model", "created_at", "message", "done"})
            self.assertEqual(x["message"]["role"], "assistant")
            self.assertEqual(x["model"], "m")
            self.assertTrue(x["created_at"].endswith("Z"))
        last = lines[-1]
        self.assertEqual(set(last), self.FINAL)
        self.assertEqual(last["message"], {"role": "assistant", "content": ""})
        self.assertEqual((last["done_reason"], last["eval_count"], last["prompt_eval_count"]), ("length", 4, 6))
        for key in ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration"):
            self.assertIsInstance(last[key], int)
        text = "".join(x["message"]["content"] for x in lines)
        self.assertEqual(text, openai_text(self.port, "hello there", max_tokens=4))

    def test_chat_without_stream_is_one_object(self):
        got = self.chat("hello there", stream=False, options={"num_predict": 100, "temperature": 0.2}).json()
        self.assertEqual(set(got), self.FINAL)
        self.assertTrue(got["done"])
        self.assertEqual((got["done_reason"], got["eval_count"]), ("stop", 7))
        self.assertEqual(ntok(got["message"]["content"]), 7)

    def test_stop_option_ends_the_text_before_it(self):
        full = self.chat("q", stream=False).json()["message"]["content"]
        stop = full.split()[3]
        got = self.chat("q", stream=False, options={"stop": [stop]}).json()
        self.assertEqual(got["message"]["content"], full[:full.index(stop)])
        self.assertEqual(got["done_reason"], "stop")

    def test_generate_answers_in_response(self):
        body = {"model": "m", "prompt": "once upon", "options": {"num_predict": 3}}
        lines = ndjson(harness.post_json(self.port, "/api/generate", body).body)
        self.assertEqual(len(lines), 4)
        self.assertEqual(set(lines[0]), {"model", "created_at", "response", "done"})
        self.assertEqual(set(lines[-1]), self.FINAL - {"message"} | {"response"})
        whole = harness.post_json(self.port, "/api/generate", dict(body, stream=False)).json()
        self.assertEqual(whole["response"], "".join(x["response"] for x in lines))
        self.assertEqual((whole["eval_count"], whole["prompt_eval_count"]), (3, 2))
        want = harness.post_json(self.port, "/v1/completions",
                                 {"model": "m", "prompt": "once upon", "max_tokens": 3}).json()
        self.assertEqual(whole["response"], want["choices"][0]["text"])
        system = harness.post_json(self.port, "/api/generate", dict(body, stream=False, system="be brief")).json()
        self.assertEqual(system["prompt_eval_count"], ntok("be brief once upon"))

    def test_embed_answers_one_vector_an_input(self):
        got = harness.post_json(self.port, "/api/embed", {"model": "m", "input": ["a b", "c", "d e f"]}).json()
        self.assertEqual(set(got), {"model", "embeddings", "total_duration", "load_duration", "prompt_eval_count"})
        self.assertEqual([len(v) for v in got["embeddings"]], [64, 64, 64])
        self.assertEqual(got["prompt_eval_count"], 6)
        for v in got["embeddings"]:
            self.assertAlmostEqual(norm(v), 1.0, places=4)
        want = harness.post_json(self.port, "/v1/embeddings",
                                 {"model": "m", "input": "c"}).json()["data"][0]["embedding"]
        for x, y in zip(got["embeddings"][1], want):
            self.assertAlmostEqual(x, y, places=6)
        one = harness.post_json(self.port, "/api/embed", {"model": "m", "input": "c", "dimensions": 8}).json()
        self.assertEqual(len(one["embeddings"]), 1)
        self.assertEqual(len(one["embeddings"][0]), 8)

    def test_tags_list_the_models_and_version_answers(self):
        port = sim(self, "--speed", "0", "--models", "llama3:8b,qwen:7b")
        tags = get_json(port, "/api/tags")
        self.assertEqual([m["name"] for m in tags["models"]], ["llama3:8b", "qwen:7b"])
        self.assertEqual(set(tags["models"][0]), {"name", "model", "modified_at", "size", "digest", "details"})
        self.assertIn("version", get_json(port, "/api/version"))
        r = harness.post_json(port, "/api/chat", {"model": "mistral", "messages": [{"role": "user", "content": "x"}]})
        self.assertEqual(r.status, 404)
        self.assertEqual(set(r.json()), {"error"})

    def test_errors_are_an_error_string(self):
        for path, body in (("/api/chat", {"messages": [{"role": "user", "content": "x"}]}),
                           ("/api/chat", {"model": "m", "messages": "x"}),
                           ("/api/chat", {"model": "m", "messages": [{"role": "user", "content": "x"}],
                                          "options": {"num_predict": "x"}}),
                           ("/api/generate", {"model": "m"}),
                           ("/api/embed", {"model": "m", "input": []})):
            r = harness.post_json(self.port, path, body)
            self.assertEqual(r.status, 400, (path, body))
            self.assertEqual(set(r.json()), {"error"})
        set_faults(self.port, error_rate=1, error_status=503)
        r = self.chat("x")
        self.assertEqual(r.status, 503)
        self.assertEqual(r.json(), {"error": "injected fault: HTTP 503"})

    def test_midstream_error_is_an_error_line(self):
        set_faults(self.port, midstream_error_rate=1, midstream_error_after_tokens=2)
        lines = ndjson(self.chat("x").body)
        self.assertEqual(len(lines), 3)
        self.assertEqual(set(lines[-1]), {"error"})

    def test_malformed_stream_breaks_its_first_line(self):
        set_faults(self.port, malformed_rate=1)
        lines = self.chat("x", options={"num_predict": 3}).body.decode().split("\n")
        self.assertRaises(ValueError, json.loads, lines[0])
        self.assertTrue(json.loads(lines[-2])["done"])


class KServe(unittest.TestCase):
    """The v2 inference protocol serves an embedding and a classifier model."""

    def setUp(self):
        self.port = sim(self, "--speed", "0", "--classes", "3")

    def infer(self, model, body):
        return harness.post_json(self.port, "/v2/models/%s/infer" % model, body)

    def texts(self, texts, **extra):
        body = {"inputs": [{"name": "text", "shape": [len(texts)], "datatype": "BYTES", "data": texts}]}
        body.update(extra)
        return body

    def test_an_embedding_model_answers_an_fp32_tensor_of_n_by_dims(self):
        got = self.infer("embedder", self.texts(["a b", "c", "d"], id="req-7",
                                                outputs=[{"name": "embedding"}])).json()
        self.assertEqual(set(got), {"model_name", "model_version", "id", "outputs"})
        self.assertEqual((got["model_name"], got["id"]), ("embedder", "req-7"))
        out = got["outputs"][0]
        self.assertEqual(set(out), {"name", "shape", "datatype", "data"})
        self.assertEqual((out["name"], out["datatype"], out["shape"]), ("embedding", "FP32", [3, 64]))
        self.assertEqual(len(out["data"]), 3 * 64)
        rows = [out["data"][i * 64:(i + 1) * 64] for i in range(3)]
        for v in rows:
            self.assertAlmostEqual(norm(v), 1.0, places=4)
        want = harness.post_json(self.port, "/v1/embeddings", {"model": "embedder", "input": "c"}).json()
        for x, y in zip(rows[1], want["data"][0]["embedding"]):
            self.assertAlmostEqual(x, y, places=6)
        stats = get_json(self.port, "/sim/stats")
        self.assertEqual(stats["embedding_inputs"], 4)
        self.assertEqual(stats["prompt_tokens"], 4 + 1)

    def test_a_classifier_answers_scores_of_n_by_k(self):
        got = self.infer("intent-classifier", self.texts(["a", "b"])).json()
        out = got["outputs"][0]
        self.assertEqual((out["name"], out["shape"]), ("scores", [2, 3]))
        for i in range(2):
            self.assertAlmostEqual(sum(out["data"][i * 3:(i + 1) * 3]), 1.0, places=5)
        self.assertNotIn("id", got)

    def test_nested_data_and_token_ids_are_read_by_row(self):
        body = {"inputs": [{"name": "input_ids", "shape": [2, 3], "datatype": "INT64",
                            "data": [[1, 2, 3], [4, 5, 6]]},
                           {"name": "attention_mask", "shape": [2, 3], "datatype": "INT64",
                            "data": [1, 1, 1, 1, 1, 1]}]}
        out = self.infer("embedder", body).json()["outputs"][0]
        self.assertEqual(out["shape"], [2, 64])
        self.assertEqual(get_json(self.port, "/sim/stats")["prompt_tokens"], 6)

    def test_bad_tensors_are_400_errors(self):
        for body in ({}, {"inputs": []},
                     self.texts(["a"], inputs=[{"name": "t", "shape": [2], "datatype": "BYTES", "data": ["a"]}]),
                     self.texts(["a"], inputs=[{"name": "t", "shape": [1], "datatype": "FP32", "data": ["a"]}]),
                     self.texts(["a"], inputs=[{"name": "t", "shape": [0], "datatype": "BYTES", "data": []}]),
                     self.texts(["a"], outputs=[{"name": "scores"}]),
                     {"inputs": [{"name": "a", "shape": [1], "datatype": "BYTES", "data": ["x"]},
                                 {"name": "b", "shape": [2], "datatype": "BYTES", "data": ["x", "y"]}]}):
            r = self.infer("embedder", body)
            self.assertEqual(r.status, 400, body)
            self.assertEqual(set(r.json()), {"error"})

    def test_health_and_model_metadata(self):
        self.assertEqual(get_json(self.port, "/v2/health/live"), {"live": True})
        self.assertEqual(get_json(self.port, "/v2/health/ready"), {"ready": True})
        self.assertEqual(get_json(self.port, "/v2/models/embedder/ready"), {"name": "embedder", "ready": True})
        meta = get_json(self.port, "/v2/models/embedder")
        self.assertEqual(set(meta), {"name", "versions", "platform", "inputs", "outputs"})
        self.assertEqual(meta["outputs"][0]["shape"], [-1, 64])
        self.assertEqual(get_json(self.port, "/v2/models/x-classifier")["outputs"][0]["name"], "scores")
        self.assertIn("version", get_json(self.port, "/v2"))
        set_faults(self.port, unhealthy=True)
        self.assertEqual(harness.request(self.port, "GET", "/v2/health/ready").status, 503)
        self.assertEqual(harness.request(self.port, "GET", "/v2/models/embedder/ready").status, 503)
        self.assertEqual(harness.request(self.port, "GET", "/v2/health/live").status, 200)

    def test_an_unknown_model_is_404(self):
        port = sim(self, "--speed", "0", "--models", "embedder")
        for method, path in (("GET", "/v2/models/other"), ("GET", "/v2/models/other/ready")):
            r = harness.request(port, method, path)
            self.assertEqual(r.status, 404)
            self.assertEqual(set(r.json()), {"error"})
        r = harness.post_json(port, "/v2/models/other/infer", self.texts(["a"]))
        self.assertEqual(r.status, 404)
        self.assertEqual(harness.post_json(port, "/v2/models/embedder/infer", self.texts(["a"])).status, 200)

    def test_faults_answer_errors_in_its_shape(self):
        set_faults(self.port, error_rate=1, error_status=502)
        r = self.infer("embedder", self.texts(["a"]))
        self.assertEqual(r.status, 502)
        self.assertEqual(r.json(), {"error": "injected fault: HTTP 502"})


class BatchCost(unittest.TestCase):
    """A batch of n inputs costs a + b * n on Ollama's and KServe's paths."""

    def check(self, call):
        port = sim(self, "--batch-base-us", "20000", "--batch-per-input-us", "3000")

        def best(n):
            return min(call(port, n) for _ in range(5))
        one, many = best(1), best(32)
        # The sim waits at least its cost: the lower bounds are exact; the
        # upper ones leave room for a loaded machine but still tell a + b*n
        # from a*n (640 ms) or a per-input base.
        self.assertGreater(one, 0.020)
        self.assertLess(one, 0.020 + 0.080)
        diff = many - one                    # b * 31 = 93 ms
        self.assertGreater(diff, 0.093 * 0.8)
        self.assertLess(diff, 0.093 * 3)

    def test_kserve_infer_costs_a_plus_b_n(self):
        def call(port, n):
            t, r = timed_post(port, "/v2/models/e/infer", {"inputs": [
                {"name": "text", "shape": [n], "datatype": "BYTES", "data": ["x"] * n}]})
            assert r.status == 200 and r.json()["outputs"][0]["shape"] == [n, 64], r.body
            return t
        self.check(call)

    def test_ollama_embed_costs_a_plus_b_n(self):
        def call(port, n):
            t, r = timed_post(port, "/api/embed", {"model": "m", "input": ["x"] * n})
            assert r.status == 200 and len(r.json()["embeddings"]) == n, r.body
            return t
        self.check(call)


class AllProtocols(unittest.TestCase):
    """Every replica speaks every protocol; faults, counters and the request
    log cover them all."""

    CALLS = [
        ("/v1/messages", {"model": "m", "max_tokens": 2, "messages": [{"role": "user", "content": "q"}]}),
        ("/generate", {"inputs": "q", "parameters": {"max_new_tokens": 2}}),
        ("/generate_stream", {"inputs": "q", "parameters": {"max_new_tokens": 2}}),
        ("/api/chat", {"model": "m", "messages": [{"role": "user", "content": "q"}],
                       "options": {"num_predict": 2}}),
        ("/api/generate", {"model": "m", "prompt": "q", "options": {"num_predict": 2}}),
        ("/api/embed", {"model": "m", "input": "q"}),
        ("/v2/models/e/infer", {"inputs": [{"name": "t", "shape": [1], "datatype": "BYTES", "data": ["q"]}]}),
    ]

    def test_the_same_prompt_gets_the_same_text_in_every_protocol(self):
        port = sim(self, "--speed", "0", "--seed", "9")
        conversation = [{"role": "user", "content": "tell me about trains"}]
        texts = [
            harness.post_json(port, CHAT, {"model": "m", "max_tokens": 6, "messages": conversation})
            .json()["choices"][0]["message"]["content"],
            harness.post_json(port, MESSAGES, {"model": "m", "max_tokens": 6, "messages": conversation})
            .json()["content"][0]["text"],
            harness.post_json(port, "/api/chat", {"model": "m", "stream": False, "messages": conversation,
                                                  "options": {"num_predict": 6}}).json()["message"]["content"],
        ]
        self.assertEqual(len(set(texts)), 1, texts)
        prompts = [
            harness.post_json(port, "/v1/completions", {"model": "sim-model", "prompt": "once upon",
                                                        "max_tokens": 6}).json()["choices"][0]["text"],
            harness.post_json(port, "/generate", {"inputs": "once upon", "parameters": {"max_new_tokens": 6}})
            .json()["generated_text"],
            harness.post_json(port, "/api/generate", {"model": "sim-model", "prompt": "once upon", "stream": False,
                                                      "options": {"num_predict": 6}}).json()["response"],
        ]
        self.assertEqual(len(set(prompts)), 1, prompts)

    def test_every_path_is_counted_and_logged(self):
        port = sim(self, "--speed", "0")
        for path, body in self.CALLS:
            r = harness.post_json(port, path, body, headers=ANTHROPIC_HEADERS if path == MESSAGES else None)
            self.assertEqual(r.status, 200, (path, r.body))
        for path in ("/info", "/api/tags", "/api/version", "/v2/health/ready", "/v2/models/e"):
            self.assertEqual(harness.request(port, "GET", path).status, 200, path)
        stats = get_json(port, "/sim/stats")
        for path in [p for p, _ in self.CALLS[:-1]] + ["/info", "/api/tags", "/api/version", "/v2/health/ready"]:
            self.assertEqual(stats["by_path"][path], {"200": 1}, path)
        self.assertEqual(stats["by_path"]["/v2/models/{name}/infer"], {"200": 1})
        self.assertEqual(stats["by_path"]["/v2/models/{name}"], {"200": 1})
        self.assertEqual(stats["completion_tokens"], 2 * 5)
        log = get_json(port, "/sim/requests")
        self.assertEqual([e["path"] for e in log], [p for p, _ in self.CALLS] +
                         ["/info", "/api/tags", "/api/version", "/v2/health/ready", "/v2/models/e"])
        first = log[0]
        self.assertEqual((first["method"], first["status"], first["outcome"]), ("POST", 200, "ok"))
        self.assertEqual(first["headers"]["x-api-key"], "sk-test")
        self.assertEqual(first["headers"]["anthropic-version"], "2023-06-01")
        self.assertEqual(first["body"], self.CALLS[0][1])
        text = harness.request(port, "GET", "/metrics").body.decode()
        self.assertIn('sy_sim_requests_total{path="/api/chat",code="200"} 1', text)

    def test_faults_apply_to_every_inference_path_only(self):
        port = sim(self, "--speed", "0")
        set_faults(port, error_rate=1, error_status=500)
        for path, body in self.CALLS:
            self.assertEqual(harness.post_json(port, path, body).status, 500, path)
        for path in ("/info", "/api/tags", "/api/version", "/v2/health/ready", "/v2/models/e"):
            self.assertEqual(harness.request(port, "GET", path).status, 200, path)
        self.assertEqual(get_json(port, "/sim/stats")["faults"]["error"], len(self.CALLS))

    def test_streams_keep_the_performance_model(self):
        port = sim(self, "--decode-base-us", "30000", "--decode-per-seq-us", "0")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        t0 = time.monotonic()
        conn.request("POST", "/api/chat", json.dumps({"model": "m", "messages": [{"role": "user", "content": "q"}],
                                                      "options": {"num_predict": 5}}))
        r = conn.getresponse()
        first = r.readline()
        ttft = time.monotonic() - t0
        rest = r.read()
        total = time.monotonic() - t0
        conn.close()
        self.assertTrue(first)
        self.assertGreater(ttft, 0.025)          # one step of 30 ms
        self.assertLess(ttft, 0.12)
        self.assertGreater(total, 0.14)          # five steps
        self.assertLess(total, 0.5)
        self.assertEqual(len(rest.decode().strip().split("\n")), 5)


if __name__ == "__main__":
    harness.main()
