"""The conformance matrix: every backend dialect x client API x write
pattern x {whole, streamed} x outcome (answer, tool call where the backend
makes them, mid-stream error, backend drop, client disconnect), generated
from the tables below.

One sy-sim serves every cell: a replica per (dialect, write pattern,
fault), each behind its own gateway backend and route (with the prompt
cache on and no retries), so a case picks its cell by model name. Each
case checks what a user would see: a complete, well-formed answer in the
client's own dialect, or a well-formed error (an OpenAI error event, an
Anthropic `event: error`); the access log's usage equals what the backend
counted; an error is an error in the log; nothing wrong is cached (the
same request again is no hit), and a good answer is (it is a hit).
"""
import json
import os
import socket
import tempfile
import time
import unittest

import harness
from harness import free_ports, request, start
from test_proxy import Gateway

TOKENS = 6			# every answer's length: max_tokens
ERROR_AFTER = 2			# tokens before a mid-stream error or a drop

# Backend dialects: (name, backend kind, sy-sim dialect, URL suffix,
# client APIs it serves).  Tool calls: sy-sim's OpenAI and Responses
# protocols answer them (TOOLS), its Anthropic, TGI and Ollama protocols do not.  TGI's whole answers carry no prompt token count
# (switchyard asks for no decoder_input_details): see WHOLE_WITHOUT_PROMPT.
ALL_CLIENTS = ("chat", "completions", "messages", "responses")
BACKENDS = [
    ("llama_cpp", "openai", "llama.cpp", "/v1", ALL_CLIENTS),
    ("vllm", "openai", "vllm", "/v1", ALL_CLIENTS),
    ("openai", "openai", "openai", "/v1", ALL_CLIENTS),
    ("sglang", "openai", "sglang", "/v1", ALL_CLIENTS),
    ("anthropic", "anthropic", "sim", "/v1", ("chat", "messages")),
    ("tgi", "tgi", "sim", "", ALL_CLIENTS),
    ("ollama", "ollama", "sim", "", ALL_CLIENTS),
    ("responses", "openai_responses", "sim", "/v1", ("chat", "messages", "responses")),
]
WHOLE_WITHOUT_PROMPT = {"tgi"}
TOOLS = {"llama_cpp", "vllm", "openai", "sglang", "responses"}
# The prompt cache keeps whole answers from streams of text only: a
# streamed tool call is not stored (a miss next time, never a wrong hit).
STREAMS_CACHED = {"answer"}
TOOL_CLIENTS = ("chat", "messages", "responses")
PATTERNS = ("per_event", "coalesced", "split")
# Faults of a replica, by the outcome they make.
FAULTS = {
    "answer": {},
    "midstream_error": {"midstream_error_rate": 1, "midstream_error_after_tokens": ERROR_AFTER},
    "backend_drop": {"drop_after_tokens": ERROR_AFTER},
    "client_disconnect": {"slow_stream_ms": 25},
}
# Outcomes answered by a replica of another outcome's faults.
REPLICA_OF = {"tool_call": "answer"}
# (mode, outcome) pairs that exist: an error in the middle and a client
# leaving half way are stream things.
CASES = [("whole", "answer"), ("whole", "backend_drop"),
         ("streamed", "answer"), ("streamed", "midstream_error"),
         ("streamed", "backend_drop"), ("streamed", "client_disconnect"),
         ("whole", "tool_call"), ("streamed", "tool_call")]
PATHS = {"chat": "/v1/chat/completions", "completions": "/v1/completions",
         "messages": "/v1/messages", "responses": "/v1/responses"}
ANTHROPIC = {"anthropic-version": "2023-06-01"}


def cells():
    """Every (dialect, pattern, outcome) replica, in port order."""
    return [(b[0], p, o) for b in BACKENDS for p in PATTERNS for o in FAULTS]


def model_of(dialect, pattern, outcome):
    return "m-%s-%s-%s" % (dialect, pattern, outcome)


class Fleet:
    """The one sy-sim and gateway of the module."""
    sim_port = None
    gw = None


class ModuleScope:
    def __init__(self):
        self.addCleanup = unittest.addModuleCleanup


def setUpModule():
    all_cells = cells()
    Fleet.sim_port = base = free_ports(len(all_cells))
    kinds = {b[0]: b for b in BACKENDS}
    replicas, backends, routes = [], [], []
    for i, (dialect, pattern, outcome) in enumerate(all_cells):
        _, kind, sim_dialect, suffix, _ = kinds[dialect]
        model = model_of(dialect, pattern, outcome)
        replicas.append({"port": base + i, "models": [model], "dialect": sim_dialect,
                         "write": pattern, "faults": FAULTS[outcome]})
        b = {"name": "b%d" % i, "kind": kind, "url": "http://127.0.0.1:%d%s" % (base + i, suffix),
             "models": [model]}
        if kind == "anthropic":
            b["api_key_env"] = "SY_TEST_ANTHROPIC_KEY"
        backends.append(b)
        routes.append({"name": "r%d" % i, "models": [model], "retries": {"max": 0}, "cache": {}})
    d = tempfile.mkdtemp(prefix="sy-conformance-")
    path = os.path.join(d, "fleet.json")
    with open(path, "w") as f:
        json.dump({"seed": 5, "defaults": {"speed": 0},
                   "replicas": replicas}, f)
    scope = ModuleScope()
    start(scope, [harness.binary("sy-sim"), "--quiet", "--config", path], port=base,
          name="sy-sim")
    harness.wait_port(base + len(all_cells) - 1)
    Fleet.gw = Gateway(scope, {"backends": backends, "routes": routes},
                       env={"SY_TEST_ANTHROPIC_KEY": "sk-ant-test"})


def body_of(client, model, prompt, stream, tool=False):
    if client == "completions":
        b = {"model": model, "prompt": prompt, "max_tokens": TOKENS, "temperature": 0}
    elif client == "responses":
        b = {"model": model, "input": prompt, "max_output_tokens": TOKENS, "temperature": 0}
    else:
        b = {"model": model, "max_tokens": TOKENS, "temperature": 0,
             "messages": [{"role": "user", "content": prompt}]}
    schema = {"type": "object", "properties": {"q": {"type": "string"}}}
    if tool and client == "chat":
        b["tools"] = [{"type": "function", "function": {"name": "lookup", "parameters": schema}}]
    elif tool and client == "responses":
        b["tools"] = [{"type": "function", "name": "lookup", "parameters": schema}]
    elif tool:
        b["tools"] = [{"name": "lookup", "description": "Looks q up.", "input_schema": schema}]
    if stream:
        b["stream"] = True
        if client in ("chat", "completions"):
            b["stream_options"] = {"include_usage": True}
    return b


def anthropic_prompt(usage):
    """The prompt tokens of an Anthropic usage object: input_tokens leaves
    out the tokens read from the cache."""
    if usage["input_tokens"] is None:
        return None
    return usage["input_tokens"] + (usage.get("cache_read_input_tokens") or 0)


def response_output(self, j, tool):
    """(text, status) of a Responses object; the text of a tool call is its
    argument q."""
    self.assertEqual(j["object"], "response")
    if tool:
        calls = [o for o in j["output"] if o["type"] == "function_call"]
        self.assertEqual([c["name"] for c in calls], ["lookup"], j["output"])
        self.assertTrue(calls[0]["call_id"])
        self.assertEqual(j["status"], "completed")
        return json.loads(calls[0]["arguments"])["q"]
    self.assertIn(j["status"], ("completed", "incomplete"), j)
    return "".join(c["text"] for o in j["output"] if o["type"] == "message"
                   for c in o["content"] if c["type"] == "output_text")


def sim_tokens(port):
    s = request(port, "GET", "/sim/stats").json()
    return s["prompt_tokens"], s["completion_tokens"]


class Case(unittest.TestCase):
    """Runs one cell of the matrix; subclasses are generated."""

    def post(self, client, body):
        return Fleet.gw.post(PATHS[client], body,
                             headers=ANTHROPIC if client == "messages" else None)

    def new_log_lines(self, before, n=1):
        lines = Fleet.gw.log_lines(before + n, timeout=5.0)
        self.assertGreaterEqual(len(lines), before + n, "no access log line")
        return lines[before:]

    # ---- what a client of each API must get ----

    def whole_answer(self, client, r, tool=False):
        """(text, prompt tokens, completion tokens) of a whole answer; the
        text of a tool call is its argument q."""
        self.assertEqual(r.status, 200, r.body)
        j = r.json()
        if client == "messages":
            self.assertEqual((j["type"], j["role"]), ("message", "assistant"))
            if tool:
                self.assertEqual(j["stop_reason"], "tool_use")
                calls = [c for c in j["content"] if c["type"] == "tool_use"]
                self.assertEqual([c["name"] for c in calls], ["lookup"])
                self.assertTrue(calls[0]["id"])
                text = calls[0]["input"]["q"]
            else:
                self.assertIn(j["stop_reason"], ("end_turn", "max_tokens"))
                text = "".join(c["text"] for c in j["content"] if c["type"] == "text")
            return text, anthropic_prompt(j["usage"]), j["usage"]["output_tokens"]
        if client == "responses":
            text = response_output(self, j, tool)
            return text, j["usage"]["input_tokens"], j["usage"]["output_tokens"]
        choice = j["choices"][0]
        if tool:
            self.assertEqual(choice["finish_reason"], "tool_calls")
            call = choice["message"]["tool_calls"][0]
            self.assertEqual((call["type"], call["function"]["name"]), ("function", "lookup"))
            text = json.loads(call["function"]["arguments"])["q"]
            return text, j["usage"]["prompt_tokens"], j["usage"]["completion_tokens"]
        self.assertIn(choice["finish_reason"], ("stop", "length"))
        text = choice["message"]["content"] if client == "chat" else choice["text"]
        self.assertEqual(j["object"], "chat.completion" if client == "chat" else "text_completion")
        return text, j["usage"]["prompt_tokens"], j["usage"]["completion_tokens"]

    def streamed_answer(self, client, r, tool=False):
        """(text, prompt tokens, completion tokens) of a whole stream; the
        text of a tool call is its argument q."""
        self.assertEqual(r.status, 200, r.body)
        events = harness.parse_sse(r.body)
        if client == "messages":
            names = [e["event"] for e in events]
            self.assertEqual(names[0], "message_start")
            self.assertEqual(names[-3:], ["content_block_stop", "message_delta", "message_stop"])
            self.assertNotIn("error", names)
            data = [json.loads(e["data"]) for e in events]
            text = "".join(d["delta"].get("text", "") for d in data
                           if d["type"] == "content_block_delta")
            if tool:
                blocks = [d["content_block"] for d in data if d["type"] == "content_block_start"]
                self.assertEqual([(b["type"], b["name"]) for b in blocks if b["type"] != "text"],
                                 [("tool_use", "lookup")])
                text = json.loads("".join(d["delta"].get("partial_json", "") for d in data
                                          if d["type"] == "content_block_delta"))["q"]
            start_usage = data[0]["message"]["usage"]
            delta = [d for d in data if d["type"] == "message_delta"][0]
            self.assertIn(delta["delta"]["stop_reason"],
                          ("tool_use",) if tool else ("end_turn", "max_tokens"))
            usage = dict(start_usage, **{k: v for k, v in delta["usage"].items() if v is not None})
            return text, anthropic_prompt(usage), delta["usage"]["output_tokens"]
        if client == "responses":
            data = [json.loads(e["data"]) for e in events]
            names = [d["type"] for d in data]
            self.assertEqual(names[0], "response.created")
            self.assertIn(names[-1], ("response.completed", "response.incomplete"), names[-3:])
            self.assertNotIn("error", names)
            self.assertEqual([d["sequence_number"] for d in data], list(range(len(data))))
            final = data[-1]["response"]
            text = response_output(self, final, tool)
            if tool:
                args = "".join(d["delta"] for d in data
                               if d["type"] == "response.function_call_arguments.delta")
                self.assertEqual(json.loads(args)["q"], text)
            else:
                self.assertEqual("".join(d["delta"] for d in data
                                         if d["type"] == "response.output_text.delta"), text)
            return text, final["usage"]["input_tokens"], final["usage"]["output_tokens"]
        self.assertEqual(events[-1]["data"], "[DONE]")
        chunks = [json.loads(e["data"]) for e in events[:-1]]
        text, args, names, finish, usage = "", "", [], None, None
        for c in chunks:
            self.assertNotIn("error", c)
            for ch in c["choices"]:
                text += (ch.get("delta", {}).get("content") or "") if client == "chat" \
                    else ch.get("text", "")
                for call in ch.get("delta", {}).get("tool_calls") or []:
                    self.assertEqual(call["index"], 0)
                    names += [call["function"]["name"]] if "name" in call["function"] else []
                    args += call["function"].get("arguments", "")
                finish = ch.get("finish_reason") or finish
            usage = c.get("usage") or usage
        if tool:
            self.assertEqual((names, finish), (["lookup"], "tool_calls"))
            text = json.loads(args)["q"]
        else:
            self.assertIn(finish, ("stop", "length"))
        self.assertIsNotNone(usage, "no usage chunk although include_usage was asked")
        # as OpenAI sends it (stream_options.include_usage): once, in a last
        # chunk of its own whose choices are [] (an SDK reads it there), of
        # the stream's id; every other chunk has none (or null)
        self.assertEqual(chunks[-1]["choices"], [], chunks[-1])
        self.assertEqual([i for i, c in enumerate(chunks) if c.get("usage") is not None],
                         [len(chunks) - 1], chunks[-2:])
        self.assertEqual(len({c.get("id") for c in chunks}), 1, chunks[-2:])
        return text, usage["prompt_tokens"], usage["completion_tokens"]

    def error_answer(self, client, r, streamed):
        """A well-formed error in the client's dialect."""
        if not streamed or r.status != 200:
            self.assertGreaterEqual(r.status, 500, r.body)
            j = r.json()
            if client == "messages":
                self.assertEqual(j["type"], "error")
            self.assertTrue(j["error"]["message"])
            return
        events = harness.parse_sse(r.body)
        if client == "responses":
            last = json.loads(events[-1]["data"])
            self.assertIn(last["type"], ("response.failed", "error"), r.body[-400:])
            self.assertNotIn("response.completed", [json.loads(e["data"])["type"] for e in events])
            err = last["response"]["error"] if last["type"] == "response.failed" else last
            self.assertTrue(err["message"], r.body[-400:])
        elif client == "messages":
            self.assertEqual(events[-1]["event"], "error", r.body[-400:])
            self.assertNotIn("message_stop", [e["event"] for e in events])
            self.assertTrue(json.loads(events[-1]["data"])["error"]["message"])
        else:
            self.assertNotIn("[DONE]", [e["data"] for e in events], r.body[-400:])
            self.assertTrue(json.loads(events[-1]["data"])["error"]["message"], r.body[-400:])

    # ---- one cell ----

    def run_cell(self, dialect, client, pattern, mode, outcome):
        tool = outcome == "tool_call"
        replica = REPLICA_OF.get(outcome, outcome)
        i = cells().index((dialect, pattern, replica))
        port = Fleet.sim_port + i
        model = model_of(dialect, pattern, replica)
        prompt = "conformance %s %s %s %s" % (client, pattern, mode, self._testMethodName)
        streamed = mode == "streamed"
        body = body_of(client, model, prompt, streamed, tool)
        before = len(Fleet.gw.log_lines())
        tokens0 = sim_tokens(port)
        if outcome == "client_disconnect":
            self.disconnect(client, body)
            line = self.new_log_lines(before)[-1]
            self.assertEqual(line["status"], 499, line)
        else:
            r = self.post(client, body)
            line = self.new_log_lines(before)[-1]
            if replica == "answer":
                text, prompt_n, completion_n = (self.streamed_answer if streamed
                                                else self.whole_answer)(client, r, tool)
                self.assertEqual(len(text.split()), TOKENS, text)
                backend = tuple(b - a for a, b in zip(tokens0, sim_tokens(port)))
                if not streamed and dialect in WHOLE_WITHOUT_PROMPT:
                    backend = (None, backend[1])	# not reported
                # an Anthropic client's input_tokens is a number, 0 if unknown
                client_sees = (0, backend[1]) if client in ("messages", "responses") \
                    and backend[0] is None \
                    else backend
                self.assertEqual((prompt_n, completion_n), client_sees)
                self.assertEqual((line["status"], line["error"]), (200, None), line)
                self.assertEqual((line["prompt_tokens"], line["completion_tokens"]), backend, line)
            else:
                self.error_answer(client, r, streamed)
                self.assertIsNotNone(line["error"], line)
                if not streamed:
                    self.assertGreaterEqual(line["status"], 500, line)
        # the same request, whole: a hit for a good answer, else never
        again = body_of(client, model, prompt, False, tool)
        r = self.post(client, again)
        hit = r.headers.get("x-switchyard-cache")
        if replica == "answer" and streamed and outcome not in STREAMS_CACHED:
            self.assertEqual(hit, "miss", r.body)
        elif replica == "answer":
            self.assertEqual(hit, "hit", r.body)
            self.assertEqual(len(self.whole_answer(client, r, tool)[0].split()), TOKENS)
        else:
            self.assertNotEqual(hit, "hit", r.body)
        # its log line is written before the next case counts the lines
        self.new_log_lines(before, 2)

    def disconnect(self, client, body):
        """Sends body, reads the first bytes of the answer, then leaves."""
        payload = json.dumps(body).encode()
        extra = b"anthropic-version: 2023-06-01\r\n" if client == "messages" else b""
        s = socket.create_connection(("127.0.0.1", Fleet.gw.port), timeout=10)
        s.sendall(b"POST %s HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n%s"
                  b"Content-Length: %d\r\n\r\n" % (PATHS[client].encode(), extra, len(payload))
                  + payload)
        got = s.recv(65536)
        self.assertIn(b" 200 ", got.split(b"\r\n")[0])
        s.close()


CHECKS = {
    "answer": "gets_a_complete_answer_with_the_backends_usage_then_a_cache_hit",
    "midstream_error": "gets_an_error_event_logged_as_an_error_and_not_cached",
    "backend_drop": "gets_a_well_formed_error_logged_and_not_cached",
    "client_disconnect": "is_logged_499_and_not_cached",
    "tool_call": "gets_a_complete_tool_call_with_the_backends_usage_then_a_cache_hit",
}


def make_test(dialect, client, pattern, mode, outcome):
    def test(self):
        self.run_cell(dialect, client, pattern, mode, outcome)
    return test


def generate():
    """One class per backend dialect, one test per cell."""
    n = 0
    for dialect, kind, _, _, clients in BACKENDS:
        attrs = {"__doc__": "Clients of every API in front of a %s backend (kind %s)."
                 % (dialect, kind)}
        for client in clients:
            for pattern in PATTERNS:
                for mode, outcome in CASES:
                    if outcome == "tool_call" and (dialect not in TOOLS
                                                   or client not in TOOL_CLIENTS):
                        continue
                    name = "test_%s_%s_over_%s_writes_%s_%s" % (
                        client, mode, pattern, outcome, CHECKS[outcome])
                    attrs[name] = make_test(dialect, client, pattern, mode, outcome)
                    n += 1
        cls = type("Backend_%s" % dialect, (Case,), attrs)
        globals()[cls.__name__] = cls
    return n


MATRIX_SIZE = generate()
del Case	# only the generated classes run

if __name__ == "__main__":
    harness.main()
