"""sy-sim, the simulated inference fleet: wire shapes, determinism, the
performance model, faults, metrics, the admin API and the fleet options.

Timed tests use model times of tens of milliseconds and tolerances wide
enough for a busy two-core machine, yet narrow enough to catch a wrong
formula.
"""
import base64
import http.client
import json
import math
import os
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import unittest

import harness

LLAMA = os.path.join(harness.FIXTURES, "llama-server")
CHAT = "/v1/chat/completions"


def fixture(name):
    with open(os.path.join(LLAMA, name), "rb") as f:
        return f.read()


def fixture_json(name):
    """The JSON part of a recorded answer (error files end with 'HTTP n')."""
    text = fixture(name).decode()
    return json.loads(text[:text.rindex("}") + 1])


def fixture_events(name):
    return harness.parse_sse(fixture(name))


def chat(content, **extra):
    body = {"model": "m", "messages": [{"role": "user", "content": content}]}
    body.update(extra)
    return body


def words(n, tag="w"):
    """A prompt of n one-token words."""
    return " ".join("%s%d" % (tag, i % 100) for i in range(n))


def sim(testcase, *args, replicas=1):
    """Starts sy-sim with args on free ports; returns the first port."""
    port = harness.free_ports(replicas)
    argv = [harness.binary("sy-sim"), "--quiet", "--port", str(port),
            "--replicas", str(replicas)] + list(args)
    harness.start(testcase, argv, port=port)
    for i in range(1, replicas):
        harness.wait_port(port + i)
    return port


def get_json(port, path):
    r = harness.request(port, "GET", path)
    assert r.status == 200, (path, r.status, r.body)
    return r.json()


def set_faults(port, **faults):
    r = harness.post_json(port, "/sim/faults", faults)
    assert r.status == 200, r.body
    return r.json()


def data_events(events):
    """The JSON payloads of SSE events, [DONE] left out."""
    return [json.loads(e["data"]) for e in events if e["data"] != "[DONE]"]


def burst(port, n, body, path=CHAT):
    """n requests in a row on kept-alive connections: [(status, body)]."""
    out = []
    conn = None
    payload = json.dumps(body)
    for _ in range(n):
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.request("POST", path, payload, {"Content-Type": "application/json"})
            r = conn.getresponse()
            data = r.read()
            out.append((r.status, data))
            if r.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = None
        except (http.client.HTTPException, OSError):
            out.append((None, b""))
            conn.close()
            conn = None
    if conn is not None:
        conn.close()
    return out


def timed_stream(port, body):
    """POSTs a streamed request; returns (seconds to the first byte of the
    answer, seconds to the end, events)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    t0 = time.monotonic()
    conn.request("POST", CHAT, json.dumps(body), {"Content-Type": "application/json"})
    r = conn.getresponse()
    first = time.monotonic() - t0
    data = r.read()
    total = time.monotonic() - t0
    conn.close()
    return first, total, harness.parse_sse(data)


def timed_post(port, path, body):
    t0 = time.monotonic()
    r = harness.post_json(port, path, body)
    return time.monotonic() - t0, r


def raw_exchange(port, body, timeout=5.0):
    """Sends one POST on a raw socket; returns every byte until EOF."""
    payload = json.dumps(body).encode()
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: sim\r\n"
              b"Content-Length: %d\r\n\r\n" % len(payload) + payload)
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    return data


def metric(text, name):
    """The value of the first sample of metric name in Prometheus text."""
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError("no metric %s" % name)


class Shapes(unittest.TestCase):
    """Answers have the keys of the recorded llama.cpp payloads."""

    def setUp(self):
        self.port = sim(self, "--speed", "0")

    def test_chat_answer_has_the_keys_of_llama_server(self):
        want = fixture_json("chat.json")
        got = harness.post_json(self.port, CHAT, chat("hello there", max_tokens=8)).json()
        self.assertEqual(set(got), set(want))
        self.assertEqual(set(got["choices"][0]), set(want["choices"][0]))
        self.assertEqual(set(got["choices"][0]["message"]), set(want["choices"][0]["message"]))
        self.assertEqual(set(got["usage"]), set(want["usage"]))
        self.assertEqual(set(got["usage"]["prompt_tokens_details"]), {"cached_tokens"})
        self.assertEqual(set(got["timings"]), set(want["timings"]))
        self.assertEqual(got["object"], "chat.completion")
        self.assertEqual(got["model"], "m")
        self.assertEqual(got["usage"]["completion_tokens"], 8)
        self.assertTrue(got["id"].startswith("chatcmpl-"))

    def test_chat_stream_has_the_events_of_llama_server(self):
        want = data_events(fixture_events("chat_stream.sse"))
        status, headers, events, _ = harness.stream_events(
            self.port, CHAT, chat("hello there", max_tokens=6, stream=True))
        self.assertEqual(status, 200)
        self.assertTrue(headers["content-type"].startswith("text/event-stream"))
        self.assertEqual(events[-1]["data"], "[DONE]")
        got = data_events(events)
        self.assertEqual(len(got), len(want))
        for g, w in zip(got, want):
            self.assertEqual(set(g), set(w))
            self.assertEqual(set(g["choices"][0]), set(w["choices"][0]))
            self.assertEqual(set(g["choices"][0]["delta"]), set(w["choices"][0]["delta"]))
        self.assertEqual(got[0]["choices"][0]["delta"], {"role": "assistant", "content": None})
        self.assertEqual(got[-1]["choices"][0]["finish_reason"], "length")

    def test_usage_chunk_only_when_include_usage(self):
        _, _, plain, _ = harness.stream_events(
            self.port, CHAT, chat("hi", max_tokens=3, stream=True))
        self.assertFalse(any("usage" in e for e in data_events(plain)))
        _, _, events, _ = harness.stream_events(
            self.port, CHAT, chat("hi", max_tokens=3, stream=True,
                                  stream_options={"include_usage": True}))
        want = data_events(fixture_events("chat_stream_usage.sse"))[-1]
        last = data_events(events)[-1]
        self.assertEqual(set(last), set(want))
        self.assertEqual(last["choices"], [])
        self.assertEqual(set(last["usage"]), set(want["usage"]))
        self.assertEqual(last["usage"]["completion_tokens"], 3)
        self.assertEqual(sum(1 for e in data_events(events) if "usage" in e), 1)

    def test_completion_answer_has_the_keys_of_llama_server(self):
        want = fixture_json("completion.json")
        got = harness.post_json(self.port, "/v1/completions",
                                {"prompt": "once upon", "max_tokens": 6}).json()
        self.assertEqual(set(got), set(want))
        self.assertEqual(set(got["choices"][0]), set(want["choices"][0]))
        self.assertEqual(got["object"], "text_completion")
        self.assertEqual(len(got["choices"][0]["text"].split()), 6)

    def test_completion_stream_carries_usage_in_its_final_chunk(self):
        want = data_events(fixture_events("completion_stream.sse"))
        _, _, events, _ = harness.stream_events(
            self.port, "/v1/completions", {"prompt": "once upon", "max_tokens": 4, "stream": True})
        got = data_events(events)
        self.assertEqual(len(got), len(want))
        self.assertEqual(set(got[0]), set(want[0]))
        self.assertEqual(set(got[-1]), set(want[-1]))
        self.assertEqual(got[-1]["choices"][0]["finish_reason"], "length")
        self.assertEqual(got[-1]["usage"]["completion_tokens"], 4)
        self.assertEqual(events[-1]["data"], "[DONE]")

    def test_completion_with_a_list_of_prompts_answers_each(self):
        got = harness.post_json(self.port, "/v1/completions",
                                {"prompt": ["a b", "c d e", "f"], "max_tokens": 2}).json()
        self.assertEqual([c["index"] for c in got["choices"]], [0, 1, 2])
        self.assertEqual(got["usage"]["prompt_tokens"], 6)
        self.assertEqual(got["usage"]["completion_tokens"], 6)

    def test_embeddings_have_the_keys_of_llama_server(self):
        want = fixture_json("embeddings_2inputs_truncated.json")
        got = harness.post_json(self.port, "/v1/embeddings", {"input": ["a b", "c"]}).json()
        self.assertEqual(set(got), set(want))
        self.assertEqual(set(got["usage"]), set(want["usage"]))
        self.assertEqual([set(d) for d in got["data"]], [set(d) for d in want["data"]])
        self.assertEqual([d["index"] for d in got["data"]], [0, 1])
        self.assertEqual(got["usage"]["prompt_tokens"], 3)
        for d in got["data"]:
            self.assertEqual(len(d["embedding"]), 64)
            self.assertAlmostEqual(math.sqrt(sum(x * x for x in d["embedding"])), 1.0, places=4)

    def test_embeddings_in_base64_decode_to_the_float_vector(self):
        f = harness.post_json(self.port, "/v1/embeddings", {"input": "x y", "dimensions": 8}).json()
        b = harness.post_json(self.port, "/v1/embeddings",
                              {"input": "x y", "dimensions": 8, "encoding_format": "base64"}).json()
        floats = struct.unpack("<8f", base64.b64decode(b["data"][0]["embedding"]))
        for x, y in zip(floats, f["data"][0]["embedding"]):
            self.assertAlmostEqual(x, y, places=5)

    def test_models_list_has_the_keys_of_llama_server(self):
        want = fixture_json("models.json")
        got = get_json(self.port, "/v1/models")
        self.assertEqual(set(got), set(want))
        self.assertEqual(set(got["data"][0]), set(want["data"][0]))
        self.assertEqual(got["data"][0]["id"], "sim-model")

    def test_health_says_ok(self):
        self.assertEqual(get_json(self.port, "/health"), {"status": "ok"})


class Determinism(unittest.TestCase):
    """The answer is a seeded function of the request."""

    def test_identical_requests_get_identical_answers(self):
        port = sim(self, "--speed", "0")
        a = harness.post_json(port, CHAT, chat("tell me about trains")).json()
        b = harness.post_json(port, CHAT, chat("tell me about trains")).json()
        self.assertEqual(a["choices"], b["choices"])
        self.assertNotEqual(a["id"], b["id"])

    def test_different_prompts_get_different_answers(self):
        port = sim(self, "--speed", "0")
        a = harness.post_json(port, CHAT, chat("tell me about trains", max_tokens=12)).json()
        b = harness.post_json(port, CHAT, chat("tell me about boats", max_tokens=12)).json()
        self.assertNotEqual(a["choices"][0]["message"]["content"], b["choices"][0]["message"]["content"])

    def test_answers_agree_across_replicas_and_runs(self):
        port = sim(self, "--speed", "0", "--seed", "7", replicas=2)
        other = sim(self, "--speed", "0", "--seed", "7")
        answers = [harness.post_json(p, CHAT, chat("same question")).json()["choices"]
                   for p in (port, port + 1, other)]
        self.assertEqual(answers[0], answers[1])
        self.assertEqual(answers[0], answers[2])

    def test_a_prompt_over_hard_prompt_tokens_runs_out_with_length(self):
        port = sim(self, "--speed", "0", "--hard-prompt-tokens", "20")
        easy = harness.post_json(port, CHAT, chat(words(10))).json()["choices"][0]
        hard = harness.post_json(port, CHAT, chat(words(30))).json()["choices"][0]
        self.assertEqual((easy["finish_reason"], hard["finish_reason"]), ("stop", "length"))
        _, _, events, _ = harness.stream_events(port, CHAT, chat(words(30), stream=True))
        finishes = [c["finish_reason"] for e in data_events(events) for c in e["choices"]
                    if c.get("finish_reason")]
        self.assertEqual(finishes, ["length"])
        # With max_tokens it runs out before the client's limit.
        capped = harness.post_json(port, CHAT, dict(chat(words(30)), max_tokens=40)).json()
        self.assertEqual(capped["choices"][0]["finish_reason"], "length")
        self.assertEqual(capped["usage"]["completion_tokens"], 20)
        self.assertEqual(get_json(port, "/sim/config")["hard_prompt_tokens"], 20)

    def test_stream_and_whole_answer_carry_the_same_text(self):
        port = sim(self, "--speed", "0")
        whole = harness.post_json(port, CHAT, chat("q", max_tokens=10)).json()
        _, _, events, _ = harness.stream_events(port, CHAT, chat("q", max_tokens=10, stream=True))
        text = "".join(e["choices"][0]["delta"].get("content") or ""
                       for e in data_events(events) if e["choices"])
        self.assertEqual(text, whole["choices"][0]["message"]["content"])

    def test_max_tokens_sets_the_length_and_finish_reason_length(self):
        port = sim(self, "--speed", "0")
        for key in ("max_tokens", "max_completion_tokens"):
            got = harness.post_json(port, CHAT, chat("q", **{key: 17})).json()
            self.assertEqual(got["usage"]["completion_tokens"], 17)
            self.assertEqual(len(got["choices"][0]["message"]["content"].split()), 17)
            self.assertEqual(got["choices"][0]["finish_reason"], "length")

    def test_without_max_tokens_the_length_is_drawn_and_finish_reason_stop(self):
        port = sim(self, "--speed", "0", "--output-tokens", "uniform:5:9")
        lengths = set()
        for i in range(40):
            got = harness.post_json(port, CHAT, chat("question %d" % i)).json()
            self.assertEqual(got["choices"][0]["finish_reason"], "stop")
            lengths.add(got["usage"]["completion_tokens"])
        self.assertEqual(lengths, {5, 6, 7, 8, 9})

    def test_drawn_length_is_capped_by_max_tokens_default(self):
        port = sim(self, "--speed", "0", "--output-tokens", "fixed:50", "--max-tokens-default", "20")
        got = harness.post_json(port, CHAT, chat("q")).json()
        self.assertEqual(got["usage"]["completion_tokens"], 20)
        self.assertEqual(got["choices"][0]["finish_reason"], "length")

    def test_tokenizer_counts_word_pieces_of_four_bytes(self):
        port = sim(self, "--speed", "0")
        got = harness.post_json(port, "/v1/completions",
                                {"prompt": "abcdefghi  jk\nl", "max_tokens": 1}).json()
        self.assertEqual(got["usage"]["prompt_tokens"], 5)  # abcd efgh i jk l
        got = harness.post_json(port, CHAT, chat("abcdefgh ij", max_tokens=1)).json()
        self.assertEqual(got["usage"]["prompt_tokens"], 5)  # role + 3 + assistant


class PerformanceModel(unittest.TestCase):
    """Times follow the documented formulas, in real time."""

    def test_repeated_prompt_reports_cached_tokens_and_lower_ttft(self):
        port = sim(self, "--prefill-us-per-token", "500", "--decode-base-us", "5000")
        body = chat(words(398), max_tokens=1, stream=True, stream_options={"include_usage": True})
        ttft1, _, ev1 = timed_stream(port, body)
        ttft2, _, ev2 = timed_stream(port, body)
        u1, u2 = data_events(ev1)[-1]["usage"], data_events(ev2)[-1]["usage"]
        self.assertEqual(u1["prompt_tokens"], 400)
        self.assertEqual(u1["prompt_tokens_details"]["cached_tokens"], 0)
        self.assertEqual(u2["prompt_tokens_details"]["cached_tokens"], 384)
        self.assertGreater(ttft1, 0.18)      # 400 x 0.5 ms + 5 ms
        self.assertLess(ttft2, ttft1 / 3)    # 16 x 0.5 ms + 5 ms

    def test_cache_matches_only_a_whole_prefix(self):
        port = sim(self, "--speed", "0", "--block-tokens", "16")
        shared = words(64, "a")
        harness.post_json(port, CHAT, chat(shared + " " + words(64, "b"), max_tokens=1))
        same_prefix = harness.post_json(port, CHAT, chat(shared + " " + words(64, "c"), max_tokens=1)).json()
        other_prefix = harness.post_json(port, CHAT, chat(words(64, "z") + " " + words(64, "b"), max_tokens=1)).json()
        # role token + 64 shared words = 65: four whole blocks match.
        self.assertEqual(same_prefix["usage"]["prompt_tokens_details"]["cached_tokens"], 64)
        self.assertEqual(other_prefix["usage"]["prompt_tokens_details"]["cached_tokens"], 0)

    def test_cache_evicts_least_recent_blocks_beyond_its_size(self):
        port = sim(self, "--speed", "0", "--cache-tokens", "128", "--block-tokens", "16")
        first = chat(words(100, "p"), max_tokens=1)
        harness.post_json(port, CHAT, first)
        harness.post_json(port, CHAT, chat(words(100, "q"), max_tokens=1))
        again = harness.post_json(port, CHAT, first).json()
        self.assertEqual(again["usage"]["prompt_tokens_details"]["cached_tokens"], 0)

    def test_embeddings_batch_costs_a_plus_b_n(self):
        port = sim(self, "--batch-base-us", "20000", "--batch-per-input-us", "3000")

        def best(n):
            return min(timed_post(port, "/v1/embeddings", {"input": ["x"] * n})[0] for _ in range(3))
        one, many = best(1), best(32)
        self.assertGreater(one, 0.020)
        self.assertLess(one, 0.060)
        diff = many - one                    # b * 31 = 93 ms
        self.assertGreater(diff, 0.093 * 0.8)
        self.assertLess(diff, 0.093 * 1.4)

    def test_full_slots_make_requests_queue(self):
        port = sim(self, "--slots", "1", "--decode-base-us", "20000", "--decode-per-seq-us", "0")
        body = chat("q", max_tokens=8)        # about 8 x 20 ms
        single, _ = timed_post(port, CHAT, body)
        times = []

        def one():
            times.append(timed_post(port, CHAT, body)[0])
        threads = [threading.Thread(target=one) for _ in range(2)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        self.assertGreater(max(times), 1.7 * single)
        self.assertLess(max(times), 2.7 * single)
        self.assertEqual(get_json(port, "/sim/stats")["max_running"], 1)

    def test_decode_step_grows_with_the_batch(self):
        port = sim(self, "--decode-base-us", "5000", "--decode-per-seq-us", "5000")
        body = chat("q", max_tokens=10)
        alone, _ = timed_post(port, CHAT, body)   # 10 x 10 ms
        times = []

        def one():
            times.append(timed_post(port, CHAT, body)[0])
        threads = [threading.Thread(target=one) for _ in range(6)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        self.assertGreater(alone, 0.09)
        self.assertGreater(min(times), 0.25)      # 10 x (5 + 6 x 5) ms = 350 ms
        self.assertLess(max(times), 0.70)

    def test_speed_multiplies_every_time(self):
        slow = sim(self, "--batch-base-us", "40000", "--speed", "3")
        fast = sim(self, "--batch-base-us", "40000", "--speed", "1")
        t_fast = min(timed_post(fast, "/v1/embeddings", {"input": "x"})[0] for _ in range(2))
        t_slow = min(timed_post(slow, "/v1/embeddings", {"input": "x"})[0] for _ in range(2))
        self.assertGreater(t_slow, 0.115)
        self.assertLess(t_slow, 0.25)
        self.assertGreater(t_slow / t_fast, 2.0)

    def test_speed_zero_answers_at_once(self):
        port = sim(self, "--speed", "0", "--decode-base-us", "1000000")
        t, r = timed_post(port, CHAT, chat(words(500), max_tokens=100))
        self.assertEqual(r.status, 200)
        self.assertLess(t, 0.2)

    def test_client_disconnect_frees_the_slot_and_counts_cancelled(self):
        port = sim(self, "--slots", "1", "--decode-base-us", "20000")
        s = socket.create_connection(("127.0.0.1", port))
        payload = json.dumps(chat("long", max_tokens=500)).encode()
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: s\r\nContent-Length: %d\r\n\r\n"
                  % len(payload) + payload)
        time.sleep(0.1)
        s.close()
        t, r = timed_post(port, CHAT, chat("short", max_tokens=2))
        self.assertEqual(r.status, 200)
        self.assertLess(t, 1.0)
        stats = get_json(port, "/sim/stats")
        self.assertEqual(stats["cancelled"], 1)
        log = get_json(port, "/sim/requests")
        self.assertEqual(log[0]["outcome"], "cancelled")


class Faults(unittest.TestCase):
    """Each fault fires, at about its rate, and looks as documented."""

    def setUp(self):
        self.port = sim(self, "--speed", "0", "--seed", "3")

    def rate(self, outcomes):
        return sum(outcomes) / len(outcomes)

    def test_error_rate_fires_at_its_rate(self):
        set_faults(self.port, error_rate=0.5)
        got = burst(self.port, 200, chat("q", max_tokens=1))
        rate = self.rate([s == 500 for s, _ in got])
        self.assertTrue(0.35 <= rate <= 0.65, rate)
        err = json.loads([b for s, b in got if s == 500][0])["error"]
        self.assertEqual((err["code"], err["type"]), (500, "server_error"))

    def test_error_status_can_be_503(self):
        set_faults(self.port, error_rate=1, error_status=503)
        r = harness.post_json(self.port, CHAT, chat("q"))
        self.assertEqual(r.status, 503)
        self.assertEqual(r.json()["error"]["type"], "unavailable_error")

    def test_rate_limit_answers_429_with_retry_after_at_its_rate(self):
        set_faults(self.port, rate_limit_rate=0.3, retry_after=2)
        got = burst(self.port, 200, chat("q", max_tokens=1))
        rate = self.rate([s == 429 for s, _ in got])
        self.assertTrue(0.18 <= rate <= 0.42, rate)
        set_faults(self.port, rate_limit_rate=1)
        r = harness.post_json(self.port, CHAT, chat("q"))
        self.assertEqual(r.status, 429)
        self.assertEqual(r.headers["retry-after"], "2")
        self.assertEqual(r.json()["error"]["code"], 429)

    def test_malformed_body_is_not_json_at_its_rate(self):
        set_faults(self.port, malformed_rate=0.5)
        got = burst(self.port, 200, chat("q", max_tokens=3))
        bad = 0
        for status, body in got:
            self.assertEqual(status, 200)
            try:
                json.loads(body)
            except ValueError:
                bad += 1
        self.assertTrue(70 <= bad <= 130, bad)

    def test_malformed_stream_breaks_its_first_token_event(self):
        set_faults(self.port, malformed_rate=1)
        _, _, events, _ = harness.stream_events(self.port, CHAT, chat("q", max_tokens=3, stream=True))
        self.assertRaises(ValueError, json.loads, events[1]["data"])
        json.loads(events[2]["data"])
        self.assertEqual(events[-1]["data"], "[DONE]")

    def test_midstream_error_is_an_error_event_without_done_at_its_rate(self):
        want = fixture_events("error_midstream.sse")
        set_faults(self.port, midstream_error_rate=1, midstream_error_after_tokens=2)
        status, _, events, _ = harness.stream_events(self.port, CHAT, chat("q", max_tokens=5, stream=True))
        self.assertEqual(status, 200)
        self.assertEqual(len(events), 4)             # role, 2 tokens, error
        err = json.loads(events[-1]["data"])
        self.assertEqual(set(err["error"]), set(json.loads(want[-1]["data"])["error"]))
        self.assertNotIn("[DONE]", [e["data"] for e in events])
        set_faults(self.port, midstream_error_rate=0.25, midstream_error_after_tokens=0)
        got = burst(self.port, 200, chat("q", max_tokens=2, stream=True))
        rate = self.rate([b"[DONE]" not in b for _, b in got])
        self.assertTrue(0.13 <= rate <= 0.37, rate)

    def test_midstream_error_spares_non_streamed_requests(self):
        set_faults(self.port, midstream_error_rate=1)
        self.assertEqual(harness.post_json(self.port, CHAT, chat("q")).status, 200)

    def test_drop_closes_a_stream_after_n_tokens(self):
        set_faults(self.port, drop_after_tokens=3)
        data = raw_exchange(self.port, chat("q", max_tokens=10, stream=True))
        self.assertTrue(data.startswith(b"HTTP/1.1 200"))
        self.assertEqual(data.count(b'"content":"'), 3)
        self.assertNotIn(b"[DONE]", data)
        self.assertFalse(data.endswith(b"0\r\n\r\n"))

    def test_drop_closes_a_plain_request_without_an_answer(self):
        set_faults(self.port, drop_after_tokens=0)
        self.assertEqual(raw_exchange(self.port, chat("q", max_tokens=4)), b"")

    def test_drop_fires_at_its_rate(self):
        set_faults(self.port, drop_after_tokens=1, drop_rate=0.5)
        got = burst(self.port, 200, chat("q", max_tokens=2))
        rate = self.rate([s is None for s, _ in got])
        self.assertTrue(0.35 <= rate <= 0.65, rate)
        self.assertEqual(get_json(self.port, "/sim/stats")["dropped"], sum(s is None for s, _ in got))

    def test_stall_delays_the_first_byte(self):
        set_faults(self.port, stall_ms=300)
        t, r = timed_post(self.port, CHAT, chat("q", max_tokens=2))
        self.assertEqual(r.status, 200)
        self.assertGreater(t, 0.29)
        self.assertLess(t, 1.0)

    def test_slow_stream_spaces_the_tokens(self):
        set_faults(self.port, slow_stream_ms=60)
        first, total, events = timed_stream(self.port, chat("q", max_tokens=5, stream=True))
        self.assertEqual(len(data_events(events)), 7)     # role, 5 tokens, end
        self.assertGreater(total, 0.29)
        self.assertLess(total, 1.0)

    def test_unhealthy_makes_health_answer_503(self):
        set_faults(self.port, unhealthy=True)
        r = harness.request(self.port, "GET", "/health")
        self.assertEqual(r.status, 503)
        self.assertEqual(r.json()["error"]["code"], 503)

    def test_faults_are_the_same_for_the_same_seed(self):
        other = sim(self, "--speed", "0", "--seed", "3")
        runs = []
        for port in (self.port, other):
            set_faults(port, error_rate=0.5)
            runs.append([s for s, _ in burst(port, 40, chat("q", max_tokens=1))])
        self.assertEqual(runs[0], runs[1])

    def test_faults_endpoint_shows_merges_and_restores(self):
        merged = set_faults(self.port, error_rate=0.25)
        merged = set_faults(self.port, stall_ms=10)
        self.assertEqual((merged["error_rate"], merged["stall_ms"]), (0.25, 10))
        self.assertEqual(get_json(self.port, "/sim/faults"), merged)
        r = harness.request(self.port, "DELETE", "/sim/faults")
        self.assertEqual(r.json()["error_rate"], 0)

    def test_faults_endpoint_refuses_unknown_keys_and_bad_values(self):
        for body in ({"eror_rate": 0.5}, {"error_rate": 2}, {"error_status": 200}, [1]):
            r = harness.post_json(self.port, "/sim/faults", body)
            self.assertEqual(r.status, 400, body)
            self.assertEqual(r.json()["error"]["type"], "invalid_request_error")

    def test_faults_can_be_set_at_start(self):
        port = sim(self, "--speed", "0", "--faults", '{"error_rate":1,"error_status":502}')
        self.assertEqual(harness.post_json(port, CHAT, chat("q")).status, 502)


class Metrics(unittest.TestCase):
    """GET /metrics speaks vLLM's names."""

    NAMES = ["vllm:num_requests_running", "vllm:num_requests_waiting",
             "vllm:kv_cache_usage_perc", "vllm:prefix_cache_hits_total",
             "vllm:prefix_cache_queries_total", "vllm:prompt_tokens_total",
             "vllm:generation_tokens_total", "vllm:request_success_total",
             "sy_sim_requests_total"]

    def test_metrics_carry_the_vllm_names(self):
        port = sim(self, "--speed", "0")
        harness.post_json(port, CHAT, chat("q", max_tokens=1))
        r = harness.request(port, "GET", "/metrics")
        self.assertTrue(r.headers["content-type"].startswith("text/plain"))
        for name in self.NAMES:
            self.assertIn("\n%s{" % name, "\n" + r.body.decode())

    def test_token_and_cache_counters_move(self):
        port = sim(self, "--speed", "0")
        body = chat(words(40), max_tokens=5)
        a = harness.post_json(port, CHAT, body).json()["usage"]
        b = harness.post_json(port, CHAT, body).json()["usage"]
        text = harness.request(port, "GET", "/metrics").body.decode()
        self.assertEqual(metric(text, "vllm:prompt_tokens_total"), a["prompt_tokens"] * 2)
        self.assertEqual(metric(text, "vllm:generation_tokens_total"), 10)
        self.assertEqual(metric(text, "vllm:prefix_cache_queries_total"), 84)
        self.assertEqual(metric(text, "vllm:prefix_cache_hits_total"),
                         b["prompt_tokens_details"]["cached_tokens"])
        self.assertGreater(b["prompt_tokens_details"]["cached_tokens"], 0)

    def test_running_and_waiting_show_the_load(self):
        port = sim(self, "--slots", "1", "--decode-base-us", "20000")
        threads = [threading.Thread(target=harness.post_json,
                                    args=(port, CHAT, chat("q", max_tokens=20)))
                   for _ in range(3)]
        [t.start() for t in threads]
        time.sleep(0.15)
        text = harness.request(port, "GET", "/metrics").body.decode()
        [t.join() for t in threads]
        self.assertEqual(metric(text, "vllm:num_requests_running"), 1)
        self.assertEqual(metric(text, "vllm:num_requests_waiting"), 2)
        self.assertEqual(metric(text, "llamacpp:requests_deferred"), 2)
        self.assertGreater(metric(text, "vllm:kv_cache_usage_perc"), 0)
        after = harness.request(port, "GET", "/metrics").body.decode()
        self.assertEqual(metric(after, "vllm:num_requests_running"), 0)


class AdminApi(unittest.TestCase):
    """/sim/ lets tests see what a backend saw, and start afresh."""

    def test_request_log_returns_method_path_headers_and_body(self):
        port = sim(self, "--speed", "0")
        body = chat("logged", max_tokens=1)
        harness.post_json(port, CHAT, body, headers={"X-Trace": "abc", "Authorization": "Bearer k"})
        harness.request(port, "GET", "/v1/models?x=1")
        log = get_json(port, "/sim/requests?n=2")
        self.assertEqual([e["path"] for e in log], [CHAT, "/v1/models?x=1"])
        self.assertEqual(log[0]["method"], "POST")
        self.assertEqual(log[0]["headers"]["x-trace"], "abc")
        self.assertEqual(log[0]["headers"]["authorization"], "Bearer k")
        self.assertEqual(log[0]["body"], body)
        self.assertEqual((log[0]["status"], log[0]["outcome"]), (200, "ok"))
        self.assertIsNone(log[1]["body"])
        self.assertEqual(len(get_json(port, "/sim/requests?n=1")), 1)

    def test_request_log_keeps_a_body_that_is_not_json_as_text(self):
        port = sim(self, "--speed", "0")
        harness.request(port, "POST", CHAT, b"not json")
        entry = get_json(port, "/sim/requests?n=1")[0]
        self.assertEqual(entry["body"], "not json")
        self.assertEqual(entry["status"], 400)

    def test_reset_clears_log_cache_and_counters(self):
        port = sim(self, "--speed", "0")
        body = chat(words(64), max_tokens=1)
        harness.post_json(port, CHAT, body)
        self.assertEqual(harness.post_json(port, "/sim/reset", {}).status, 200)
        self.assertEqual(get_json(port, "/sim/requests"), [])
        self.assertEqual(get_json(port, "/sim/stats")["requests"], 0)
        again = harness.post_json(port, CHAT, body).json()
        self.assertEqual(again["usage"]["prompt_tokens_details"]["cached_tokens"], 0)

    def test_stats_count_requests_by_path_and_status(self):
        port = sim(self, "--speed", "0")
        harness.post_json(port, CHAT, chat("q", max_tokens=2))
        harness.post_json(port, CHAT, {})
        harness.post_json(port, "/v1/embeddings", {"input": ["a", "b"]})
        stats = get_json(port, "/sim/stats")
        self.assertEqual(stats["by_path"][CHAT], {"200": 1, "400": 1})
        self.assertEqual(stats["by_path"]["/v1/embeddings"], {"200": 1})
        self.assertEqual(stats["completion_tokens"], 2)
        self.assertEqual(stats["embedding_inputs"], 2)


class Fleet(unittest.TestCase):
    """One process serves a uniform or a heterogeneous fleet."""

    def test_replicas_listen_on_consecutive_ports(self):
        port = sim(self, "--speed", "0", replicas=3)
        for i in range(3):
            cfg = get_json(port + i, "/sim/config")
            self.assertEqual((cfg["port"], cfg["index"]), (port + i, i))
            self.assertEqual(get_json(port + i, "/health"), {"status": "ok"})

    def test_replicas_keep_separate_state(self):
        port = sim(self, "--speed", "0", replicas=2)
        harness.post_json(port, CHAT, chat("q", max_tokens=1))
        self.assertEqual(get_json(port, "/sim/stats")["requests"], 1)
        self.assertEqual(get_json(port + 1, "/sim/stats")["requests"], 0)

    def config_file(self, obj):
        fd, path = tempfile.mkstemp(suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f)
        self.addCleanup(os.unlink, path)
        return path

    def test_config_file_describes_a_heterogeneous_fleet(self):
        a = harness.free_ports(3)
        path = self.config_file({
            "seed": 5,
            "defaults": {"speed": 0, "cost_per_hour": 0.5},
            "replicas": [
                {"port": a, "models": ["small"], "slots": 4},
                {"port": a + 1, "count": 2, "models": ["big", "big-instruct"],
                 "cost_per_hour": 2.5, "output_tokens": "fixed:3",
                 "faults": {"error_rate": 1}},
            ]})
        harness.start(self, [harness.binary("sy-sim"), "--quiet", "--config", path], port=a)
        harness.wait_port(a + 2)
        small, big = get_json(a, "/sim/config"), get_json(a + 2, "/sim/config")
        self.assertEqual((small["models"], small["slots"], small["cost_per_hour"]), (["small"], 4, 0.5))
        self.assertEqual((big["models"], big["cost_per_hour"], big["output_tokens"]),
                         (["big", "big-instruct"], 2.5, "fixed:3"))
        self.assertEqual([m["id"] for m in get_json(a + 1, "/v1/models")["data"]], ["big", "big-instruct"])
        self.assertEqual(harness.post_json(a, CHAT, dict(chat("q"), model="small")).status, 200)
        self.assertEqual(harness.post_json(a + 1, CHAT, dict(chat("q"), model="big")).status, 500)

    def test_a_model_not_served_is_404(self):
        port = sim(self, "--speed", "0", "--models", "alpha,beta")
        r = harness.post_json(port, CHAT, dict(chat("q"), model="gamma"))
        self.assertEqual(r.status, 404)
        self.assertEqual(r.json()["error"]["type"], "not_found_error")
        self.assertEqual(harness.post_json(port, CHAT, dict(chat("q"), model="beta")).status, 200)

    def test_a_bad_config_names_the_file_and_the_setting(self):
        path = self.config_file({"replicas": [{"port": 1, "slots": 0}]})
        p = subprocess.run([harness.binary("sy-sim"), "--config", path],
                           capture_output=True, timeout=10)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(path.encode(), p.stderr)
        self.assertIn(b"replicas[0].slots", p.stderr)

    def test_a_bad_option_is_refused(self):
        for argv in (["--slots", "0"], ["--output-tokens", "normal:3"], ["--nope"], ["--speed", "-1"]):
            p = subprocess.run([harness.binary("sy-sim")] + argv, capture_output=True, timeout=10)
            self.assertEqual(p.returncode, 1, argv)
            self.assertIn(b"sy-sim:", p.stderr)

    def test_help_lists_every_option(self):
        out = subprocess.run([harness.binary("sy-sim"), "--help"], capture_output=True,
                             timeout=10).stdout.decode()
        for opt in ("--seed", "--host", "--port", "--replicas", "--config", "--models",
                    "--slots", "--prefill-us-per-token", "--decode-base-us",
                    "--decode-per-seq-us", "--batch-base-us", "--batch-per-input-us",
                    "--cache-tokens", "--block-tokens", "--max-tokens-default",
                    "--output-tokens", "--speed", "--cost-per-hour", "--quiet", "--faults"):
            self.assertIn(opt, out)

    def test_sigterm_exits_zero_promptly_with_requests_in_flight(self):
        port = harness.free_port()
        proc = harness.start(self, [harness.binary("sy-sim"), "--quiet", "--port", str(port),
                                    "--decode-base-us", "100000"], port=port)
        threading.Thread(target=lambda: raw_exchange(port, chat("q", max_tokens=50, stream=True)),
                         daemon=True).start()
        time.sleep(0.2)
        t0 = time.monotonic()
        proc.signal(signal.SIGTERM)
        self.assertEqual(proc.p.wait(5), 0)
        self.assertLess(time.monotonic() - t0, 2.0)


class BadInput(unittest.TestCase):
    """Bad input gets an error in the OpenAI shape and never a crash."""

    def setUp(self):
        self.port = sim(self, "--speed", "0")

    def error(self, r, status, etype="invalid_request_error"):
        self.assertEqual(r.status, status, r.body)
        err = r.json()["error"]
        self.assertEqual((err["code"], err["type"]), (status, etype))
        return err

    def test_missing_messages_is_the_llama_server_error(self):
        want = fixture_json("error_missing_messages.txt")
        r = harness.post_json(self.port, CHAT, {"model": "m"})
        self.assertEqual(r.status, 400)
        self.assertEqual(r.json(), want)

    def test_invalid_json_is_400(self):
        self.error(harness.request(self.port, "POST", CHAT, b'{"messages": ['), 400)
        self.error(harness.request(self.port, "POST", CHAT, b''), 400)

    def test_wrong_types_are_400(self):
        for body in ([], {"messages": "hi"}, {"messages": []}, {"messages": [{"content": "x"}]},
                     {"messages": [{"role": "user", "content": 5}]},
                     dict(chat("q"), max_tokens=0), dict(chat("q"), max_tokens="9"),
                     dict(chat("q"), stream="yes"), dict(chat("q"), model=7)):
            self.error(harness.post_json(self.port, CHAT, body), 400)
        for body in ({}, {"prompt": []}, {"prompt": [1, "a"]}, {"prompt": {"a": 1}}):
            self.error(harness.post_json(self.port, "/v1/completions", body), 400)
        for body in ({"input": "x", "encoding_format": "hex"}, {"input": "x", "dimensions": 0}):
            self.error(harness.post_json(self.port, "/v1/embeddings", body), 400)

    def test_a_prompt_over_the_context_is_exceed_context_size_error(self):
        port = sim(self, "--speed", "0", "--context-tokens", "100")
        want = fixture_json("error_context_overflow.txt")["error"]
        r = harness.post_json(port, CHAT, chat(words(150), stream=True))
        err = self.error(r, 400, "exceed_context_size_error")
        self.assertEqual(set(err), set(want))
        self.assertEqual((err["n_prompt_tokens"], err["n_ctx"]), (152, 100))

    def test_unknown_path_is_404_and_wrong_method_405(self):
        self.error(harness.request(self.port, "GET", "/v1/nothing"), 404, "not_found_error")
        self.error(harness.request(self.port, "GET", CHAT), 405)
        self.error(harness.request(self.port, "GET", "/sim/nothing"), 404, "not_found_error")

    def test_garbage_on_the_socket_does_not_stop_the_server(self):
        for junk in (b"\x00\xff" * 100 + b"\r\n\r\n", b"POST / HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
                     b"GET " + b"a" * 70000 + b" HTTP/1.1\r\n\r\n"):
            s = socket.create_connection(("127.0.0.1", self.port))
            try:
                s.sendall(junk)
                s.settimeout(2)
                s.recv(1024)
            except OSError:
                pass
            s.close()
        self.assertEqual(get_json(self.port, "/health"), {"status": "ok"})

    def test_invalid_utf8_in_the_body_is_answered(self):
        r = harness.request(self.port, "POST", CHAT,
                            b'{"messages":[{"role":"user","content":"\xff\xfe"}]}')
        self.error(r, 400)
        self.assertEqual(get_json(self.port, "/sim/requests?n=1")[0]["status"], 400)


if __name__ == "__main__":
    harness.main()
