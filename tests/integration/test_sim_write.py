"""sy-sim's write patterns: how a stream reaches the socket. per_event
writes each SSE event (NDJSON line) on its own, coalesced writes what was
ready at once together, split cuts events at the byte boundaries a parser
must survive. Each HTTP chunk sy-sim sends is one write (one waits for
the last to leave), so the chunks of the raw response show the writes.
"""
import json
import socket
import unittest

import harness
from simfleet import ClassScope, sim

# Streamed request of each protocol: (path, body, frame end).
STREAMS = {
    "openai_chat": ("/v1/chat/completions",
                    {"model": "m", "stream": True, "max_tokens": 40,
                     "stream_options": {"include_usage": True},
                     "messages": [{"role": "user", "content": "hi"}]}, b"\n\n"),
    "openai_completions": ("/v1/completions",
                           {"model": "m", "stream": True, "max_tokens": 4, "prompt": "hi"}, b"\n\n"),
    "anthropic": ("/v1/messages",
                  {"model": "m", "stream": True, "max_tokens": 4,
                   "messages": [{"role": "user", "content": "hi"}]}, b"\n\n"),
    "tgi": ("/generate_stream", {"inputs": "hi", "parameters": {"max_new_tokens": 4}}, b"\n\n"),
    "ollama": ("/api/chat", {"model": "m", "options": {"num_predict": 4},
                             "messages": [{"role": "user", "content": "hi"}]}, b"\n"),
}
# Members whose values change from one request to the next.
VOLATILE = {"created", "id", "timings", "created_at", "total_duration",
            "load_duration", "prompt_eval_duration", "eval_duration"}


def chunks_of(port, path, body):
    """The HTTP chunks of one streamed answer, each one sy-sim write."""
    payload = json.dumps(body).encode()
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"POST %s HTTP/1.1\r\nHost: sim\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\nConnection: close\r\n\r\n" % (path.encode(), len(payload))
              + payload)
    data = b""
    while True:
        got = s.recv(65536)
        if not got:
            break
        data += got
    s.close()
    head, rest = data.split(b"\r\n\r\n", 1)
    assert b" 200 " in head.split(b"\r\n")[0], head
    assert b"transfer-encoding: chunked" in head.lower(), head
    out = []
    while True:
        size, rest = rest.split(b"\r\n", 1)
        n = int(size, 16)
        if n == 0:
            return out
        out.append(rest[:n])
        rest = rest[n + 2:]


def scrub(v):
    if isinstance(v, dict):
        return {k: scrub(x) for k, x in v.items() if k not in VOLATILE}
    if isinstance(v, list):
        return [scrub(x) for x in v]
    return v


def events(data, frame):
    """The events of a stream body as comparable values."""
    data = data.replace(b"\r\n", b"\n")
    out = []
    for ev in data.split(frame):
        if not ev:
            continue
        lines = ev.decode().split("\n")
        fields = []
        for line in lines:
            name, _, value = line.partition(":")
            value = value.lstrip(" ")
            if name == "data" and value.startswith("{") or frame == b"\n":
                value = scrub(json.loads(value if name == "data" else line))
            fields.append((name, value))
        out.append(fields)
    return out


class WritePatterns(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.ports = {pattern: sim(ClassScope(cls), "--seed", "7", "--write", pattern)
                     for pattern in ("per_event", "coalesced", "split")}

    def test_per_event_is_the_default_and_writes_each_event_alone(self):
        port = sim(self)
        self.assertEqual(harness.request(port, "GET", "/sim/config").json()["write"],
                         "per_event")
        for name, (path, body, frame) in STREAMS.items():
            with self.subTest(protocol=name):
                chunks = chunks_of(port, path, body)
                self.assertGreaterEqual(len(chunks), 4)
                for c in chunks:
                    self.assertTrue(c.endswith(frame), c)
                    self.assertEqual(c.count(frame), 1, c)

    def test_coalesced_writes_a_streams_tail_at_once(self):
        path, body, frame = STREAMS["openai_chat"]
        last = chunks_of(self.ports["coalesced"], path, body)[-1]
        # finish chunk, usage chunk and [DONE] in one write
        self.assertIn(b'"finish_reason":"length"', last)
        self.assertIn(b'"usage"', last)
        self.assertTrue(last.endswith(b"data: [DONE]\n\n"), last)

    def test_split_cuts_events_where_parsers_trip_and_keeps_their_bytes(self):
        seen = set()
        for name, (path, body, frame) in STREAMS.items():
            with self.subTest(protocol=name):
                whole = b"".join(chunks_of(self.ports["per_event"], path, body))
                chunks = chunks_of(self.ports["split"], path, body)
                joined = b"".join(chunks)
                self.assertGreater(len(chunks), whole.count(frame))
                self.assertNotIn(b"\n", joined.replace(b"\r\n", b""))
                self.assertEqual(events(joined, frame.replace(b"\n", b"\r\n").replace(b"\r\n", b"\n")),
                                 events(whole, frame))
                for c in chunks[:-1]:
                    if c.endswith(b"data:"):
                        seen.add("after data:")
                    if c.endswith(b"\r"):
                        seen.add("between CR and LF")
                    if c.count(b'"') % 2 == 1:
                        seen.add("inside a JSON string")
                    try:
                        c.decode()
                    except UnicodeDecodeError:
                        seen.add("inside a UTF-8 character")
        self.assertEqual(seen, {"after data:", "between CR and LF", "inside a JSON string",
                                "inside a UTF-8 character"})

    def test_split_cuts_are_a_function_of_the_seed(self):
        path, body, _ = STREAMS["anthropic"]

        def cuts(*args):
            return [len(c) for c in chunks_of(sim(self, "--write", "split", *args), path, body)]
        self.assertEqual(cuts("--seed", "3"), cuts("--seed", "3"))
        self.assertNotEqual(cuts("--seed", "3"), cuts("--seed", "4"))

    def test_a_bad_pattern_is_refused(self):
        p = harness.Proc([harness.binary("sy-sim"), "--write", "bursty"], name="sy-sim")
        self.addCleanup(p.cleanup)
        self.assertEqual(p.p.wait(10), 1)
        self.assertIn("--write: must be one of per_event, coalesced or split", p.output())


if __name__ == "__main__":
    harness.main()
