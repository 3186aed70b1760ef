"""sy-load against a scripted LLM server (and against sy-sim): what it sends,
when it sends it, and whether the figures it reports are the true ones."""
import csv
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

SY_LOAD = harness.binary("sy-load")
SY_SIM = harness.binary("sy-sim")
WORDS = [" the", " of", " and", " to", " in", " is", " that", " for"]


def count_tokens(text):
    """The shared tokenizer rule: whitespace-separated pieces of at most
    four bytes are one token each (a longer word is several pieces)."""
    return sum((len(w.encode()) + 3) // 4 for w in text.split())


class FakeHandler(BaseHTTPRequestHandler):
    """Answers the OpenAI and Anthropic shapes like the recorded llama.cpp
    payloads in tests/fixtures/llama-server, and records every request."""
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def setup(self):
        super().setup()
        # Each SSE chunk leaves at once, as a real server's tokens do.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_POST(self):
        srv = self.server
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.loads(raw)
        with srv.lock:
            srv.inflight += 1
            srv.max_inflight = max(srv.max_inflight, srv.inflight)
            srv.requests.append({"t": time.monotonic(), "path": self.path, "body": body,
                                 "headers": {k.lower(): v for k, v in self.headers.items()},
                                 "peer": self.client_address[1]})
            n = len(srv.requests)
        try:
            if srv.delay:
                time.sleep(srv.delay)
            if srv.fail_every and n % srv.fail_every == 0:
                return self.send_json(500, {"error": {"code": 500, "message": "scripted failure",
                                                      "type": "server_error"}})
            if self.path == "/v1/chat/completions":
                self.chat(body)
            elif self.path == "/v1/completions":
                self.completion(body)
            elif self.path == "/v1/embeddings":
                self.send_json(200, {"model": body["model"], "object": "list",
                                     "usage": {"prompt_tokens": count_tokens(body["input"]),
                                               "total_tokens": count_tokens(body["input"])},
                                     "data": [{"embedding": [0.5, -0.25], "index": 0,
                                               "object": "embedding"}]})
            elif self.path == "/v1/messages":
                self.messages(body)
            else:
                self.send_json(404, {"error": {"code": 404, "message": "no route",
                                               "type": "not_found_error"}})
        finally:
            with srv.lock:
                srv.inflight -= 1

    def send_json(self, status, obj):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def start_sse(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def sse(self, obj, event=None):
        data = ("event: %s\n" % event if event else "") + "data: %s\n\n" % (
            obj if isinstance(obj, str) else json.dumps(obj))
        data = data.encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def end_sse(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def words(self, n):
        return [WORDS[i % len(WORDS)] for i in range(n)]

    def chat(self, body):
        prompt = sum(count_tokens(m["content"]) for m in body["messages"])
        out = self.words(body.get("max_tokens", 16))
        usage = {"completion_tokens": len(out), "prompt_tokens": prompt,
                 "total_tokens": prompt + len(out), "prompt_tokens_details": {"cached_tokens": 0}}
        base = {"created": 1795952846, "id": "chatcmpl-1", "model": body["model"],
                "system_fingerprint": "b1-80fb11a", "object": "chat.completion.chunk"}
        if not body.get("stream"):
            return self.send_json(200, {"choices": [{"finish_reason": "length", "index": 0,
                                                     "message": {"role": "assistant",
                                                                 "content": "".join(out)}}],
                                        "created": 1795952846, "model": body["model"],
                                        "object": "chat.completion", "usage": usage,
                                        "id": "chatcmpl-1"})
        self.start_sse()
        self.sse(dict(base, choices=[{"finish_reason": None, "index": 0,
                                      "delta": {"role": "assistant", "content": None}}]))
        for w in out:
            time.sleep(self.server.token_delay)
            self.sse(dict(base, choices=[{"finish_reason": None, "index": 0,
                                          "delta": {"content": w}}]))
        self.sse(dict(base, choices=[{"finish_reason": "length", "index": 0, "delta": {}}]))
        if (body.get("stream_options") or {}).get("include_usage"):
            self.sse(dict(base, choices=[], usage=usage))
        self.sse("[DONE]")
        self.end_sse()

    def completion(self, body):
        prompt = count_tokens(body["prompt"])
        out = self.words(body.get("max_tokens", 16))
        usage = {"completion_tokens": len(out), "prompt_tokens": prompt,
                 "total_tokens": prompt + len(out)}
        if not body.get("stream"):
            return self.send_json(200, {"choices": [{"text": "".join(out), "index": 0,
                                                     "logprobs": None, "finish_reason": "length"}],
                                        "model": body["model"], "object": "text_completion",
                                        "usage": usage, "id": "cmpl-1"})
        self.start_sse()
        for i, w in enumerate(out):
            time.sleep(self.server.token_delay)
            last = i == len(out) - 1
            chunk = {"choices": [{"text": w, "index": 0, "logprobs": None,
                                  "finish_reason": "length" if last else None}],
                     "model": body["model"], "object": "text_completion", "id": "cmpl-1"}
            if last:
                chunk["usage"] = usage
            self.sse(chunk)
        self.sse("[DONE]")
        self.end_sse()

    def messages(self, body):
        prompt = sum(count_tokens(m["content"]) for m in body["messages"])
        prompt += count_tokens(body.get("system", ""))
        out = self.words(body["max_tokens"])
        if not body.get("stream"):
            return self.send_json(200, {"id": "msg_1", "type": "message", "role": "assistant",
                                        "model": body["model"],
                                        "content": [{"type": "text", "text": "".join(out)}],
                                        "stop_reason": "max_tokens",
                                        "usage": {"input_tokens": prompt,
                                                  "output_tokens": len(out)}})
        self.start_sse()
        self.sse({"type": "message_start", "message": {
            "id": "msg_1", "type": "message", "role": "assistant", "model": body["model"],
            "content": [], "usage": {"input_tokens": prompt, "output_tokens": 1}}},
            "message_start")
        self.sse({"type": "content_block_start", "index": 0,
                  "content_block": {"type": "text", "text": ""}}, "content_block_start")
        self.sse({"type": "ping"}, "ping")
        for w in out:
            time.sleep(self.server.token_delay)
            self.sse({"type": "content_block_delta", "index": 0,
                      "delta": {"type": "text_delta", "text": w}}, "content_block_delta")
        self.sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
        self.sse({"type": "message_delta", "delta": {"stop_reason": "max_tokens"},
                  "usage": {"output_tokens": len(out)}}, "message_delta")
        self.sse({"type": "message_stop"}, "message_stop")
        self.end_sse()


class QuietServer(ThreadingHTTPServer):
    """Keeps quiet when sy-load closes a connection it gave up on."""
    daemon_threads = True
    request_queue_size = 256

    def handle_error(self, request, client_address):
        pass


class FakeServer:
    """A FakeHandler server on 127.0.0.1, stopped at the test's cleanup."""

    def __init__(self, testcase, delay=0.0, token_delay=0.0, fail_every=0):
        self.httpd = QuietServer(("127.0.0.1", 0), FakeHandler)
        self.httpd.lock = threading.Lock()
        self.httpd.requests = []
        self.httpd.inflight = 0
        self.httpd.max_inflight = 0
        self.httpd.delay = delay
        self.httpd.token_delay = token_delay
        self.httpd.fail_every = fail_every
        self.port = self.httpd.server_address[1]
        self.url = "http://127.0.0.1:%d/v1" % self.port
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        testcase.addCleanup(self.stop)

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def requests(self):
        with self.httpd.lock:
            return list(self.httpd.requests)


class Run:
    """One finished sy-load run: exit status, output, and its JSON and CSV."""

    def __init__(self, proc, json_path, csv_path):
        self.code = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr
        self.json = None
        self.rows = None
        if os.path.exists(json_path):
            with open(json_path) as f:
                self.json = json.load(f)
        if os.path.exists(csv_path):
            with open(csv_path, newline="") as f:
                self.rows = list(csv.DictReader(f))


def sy_load(testcase, *args, timeout=30):
    """Runs sy-load with args, --quiet, and --json/--per-request/--csv into a
    temporary folder; returns the Run."""
    tmp = tempfile.mkdtemp(prefix="sy-load-test-")
    testcase.addCleanup(shutil.rmtree, tmp, True)
    json_path = os.path.join(tmp, "out.json")
    csv_path = os.path.join(tmp, "out.csv")
    argv = [SY_LOAD] + [str(a) for a in args]
    argv += ["--json", json_path, "--per-request", "--csv", csv_path, "--quiet"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    return Run(proc, json_path, csv_path)


def write_file(testcase, name, text):
    """A temporary file holding text, removed at cleanup."""
    fd, path = tempfile.mkstemp(prefix="sy-load-", suffix="-" + name)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    testcase.addCleanup(os.unlink, path)
    return path


def percentile(values, q):
    """Linear interpolation between closest ranks, the rule sy-load documents."""
    v = sorted(values)
    pos = q * (len(v) - 1)
    lo = int(pos)
    if lo + 1 >= len(v):
        return v[-1]
    return v[lo] + (pos - lo) * (v[lo + 1] - v[lo])


def gaps(times):
    """The differences between consecutive times."""
    return [b - a for a, b in zip(times, times[1:])]


def raw_server(testcase, answers):
    """A one-thread server on 127.0.0.1 that reads a request and writes the
    next answer (a list of byte pieces, sent apart) on a new connection each
    time, then closes.  Returns its base URL."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(8)
    testcase.addCleanup(lsock.close)

    def serve():
        for pieces in answers:
            c, _ = lsock.accept()
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            c.recv(65536)
            for piece in pieces:
                c.sendall(piece)
                time.sleep(0.01)
            c.close()
    threading.Thread(target=serve, daemon=True).start()
    return "http://127.0.0.1:%d/v1" % lsock.getsockname()[1]


class ClosedLoop(unittest.TestCase):

    def test_requests_n_sends_exactly_n(self):
        srv = FakeServer(self)
        run = sy_load(self, "--url", srv.url, "--concurrency", 4, "--requests", 60,
                      "--prompt-tokens", 10, "--max-tokens", 5)
        self.assertEqual(run.code, 0, run.err)
        self.assertEqual(len(srv.requests), 60)
        self.assertEqual(run.json["requests"], {"sent": 60, "ok": 60, "failed": 0,
                                                "dropped": 0, "cancelled": 0})

    def test_concurrency_bounds_requests_in_flight_and_connections(self):
        srv = FakeServer(self, delay=0.02)
        run = sy_load(self, "--url", srv.url, "--concurrency", 3, "--requests", 30)
        self.assertEqual(run.code, 0, run.err)
        self.assertEqual(srv.httpd.max_inflight, 3)
        self.assertEqual(len({r["peer"] for r in srv.requests}), 3)
        self.assertEqual(run.json["connections"], 3)

    def test_duration_ends_the_run(self):
        srv = FakeServer(self, delay=0.01)
        t0 = time.monotonic()
        run = sy_load(self, "--url", srv.url, "--concurrency", 2, "--duration", 1)
        self.assertEqual(run.code, 0, run.err)
        self.assertLess(time.monotonic() - t0, 3)
        self.assertGreater(len(srv.requests), 20)
        self.assertAlmostEqual(run.json["duration_s"], 1.0, delta=0.3)
        self.assertEqual(run.json["requests"]["ok"], len(srv.requests))

    def test_warmup_requests_are_sent_but_not_reported(self):
        srv = FakeServer(self)
        run = sy_load(self, "--url", srv.url, "--concurrency", 1, "--requests", 10,
                      "--warmup", 0.5)
        self.assertEqual(run.code, 0, run.err)
        self.assertEqual(run.json["requests"]["sent"], 10)
        self.assertGreater(len(srv.requests), 10)
        self.assertEqual(len(run.rows), 10)


class OpenLoop(unittest.TestCase):

    def test_constant_rate_sends_rate_times_duration_evenly(self):
        srv = FakeServer(self)
        run = sy_load(self, "--url", srv.url, "--rate", 50, "--arrival", "constant",
                      "--duration", 2, "--max-tokens", 4)
        self.assertEqual(run.code, 0, run.err)
        times = [r["t"] for r in srv.requests]
        self.assertLessEqual(abs(len(times) - 100), 2)
        self.assertAlmostEqual(statistics.median(gaps(times)), 0.020, delta=0.004)
        # Evenly: most gaps are the period; a busy machine may delay a few
        # (Poisson gaps would fall within 2 ms of it only ~10% of the time).
        sent = sorted(float(r["start_ms"]) for r in run.rows)
        even = [g for g in gaps(sent) if abs(g - 20.0) <= 2.0]
        self.assertGreaterEqual(len(even), 0.8 * len(gaps(sent)))

    def test_poisson_arrivals_have_exponential_gaps(self):
        srv = FakeServer(self)
        run = sy_load(self, "--url", srv.url, "--rate", 200, "--duration", 2.5,
                      "--max-tokens", 2)
        self.assertEqual(run.code, 0, run.err)
        starts = sorted(float(r["start_ms"]) for r in run.rows)
        g = gaps(starts)
        mean = statistics.mean(g)
        self.assertAlmostEqual(mean, 5.0, delta=0.6)
        # Exponential gaps: standard deviation near the mean (constant: 0).
        self.assertAlmostEqual(statistics.pstdev(g) / mean, 1.0, delta=0.2)
        self.assertAlmostEqual(len(srv.requests), 500, delta=75)

    def test_requests_beyond_max_connections_are_dropped(self):
        srv = FakeServer(self, delay=0.2)
        run = sy_load(self, "--url", srv.url, "--rate", 50, "--arrival", "constant",
                      "--requests", 20, "--max-connections", 2)
        self.assertEqual(run.code, 0, run.err)
        dropped = run.json["requests"]["dropped"]
        self.assertGreater(dropped, 10)
        self.assertEqual(run.json["requests"]["sent"], len(srv.requests))
        self.assertEqual(dropped + len(srv.requests), 20)
        self.assertIn("%d dropped" % dropped, run.out)


class Streaming(unittest.TestCase):

    def test_ttft_is_below_latency_and_every_token_is_counted(self):
        srv = FakeServer(self, token_delay=0.005)
        run = sy_load(self, "--url", srv.url, "--concurrency", 2, "--requests", 10,
                      "--stream", "--max-tokens", 8)
        self.assertEqual(run.code, 0, run.err)
        self.assertTrue(all(r["body"]["stream"] for r in srv.requests))
        self.assertTrue(all(r["body"]["stream_options"] == {"include_usage": True}
                            for r in srv.requests))
        for row in run.rows:
            self.assertEqual(row["stream"], "1")
            self.assertLess(float(row["ttft_ms"]), float(row["latency_ms"]))
            self.assertEqual(int(row["chunks"]), 8)
            self.assertEqual(int(row["completion_tokens"]), 8)
        self.assertEqual(run.json["tokens"]["completion"], 80)
        self.assertEqual(run.json["itl_ms"]["count"], 70)
        self.assertGreater(run.json["itl_ms"]["p50"], 4.0)
        self.assertLess(run.json["ttft_ms"]["p50"], run.json["latency_ms"]["p50"])

    def test_completions_stream_counts_text_chunks(self):
        srv = FakeServer(self)
        run = sy_load(self, "--url", srv.url, "--api", "completions", "--concurrency", 1,
                      "--requests", 3, "--stream", "--max-tokens", 6, "--prompt-tokens", 20)
        self.assertEqual(run.code, 0, run.err)
        self.assertEqual({r["path"] for r in srv.requests}, {"/v1/completions"})
        self.assertEqual(count_tokens(srv.requests[0]["body"]["prompt"]), 20)
        self.assertEqual([int(r["chunks"]) for r in run.rows], [6, 6, 6])
        self.assertEqual(run.json["tokens"], {"prompt": 60, "completion": 18})


class Outputs(unittest.TestCase):

    def test_json_and_csv_agree_with_the_summary(self):
        srv = FakeServer(self, token_delay=0.001)
        run = sy_load(self, "--url", srv.url, "--concurrency", 3, "--requests", 40,
                      "--stream", "--max-tokens", 5, "--prompt-tokens", 12)
        self.assertEqual(run.code, 0, run.err)
        j = run.json
        self.assertEqual(len(run.rows), 40)
        self.assertEqual(len(j["per_request"]), 40)
        lat = [float(r["latency_ms"]) for r in run.rows]
        ttft = [float(r["ttft_ms"]) for r in run.rows]
        for key, values in (("latency_ms", lat), ("ttft_ms", ttft)):
            for q in ("p50", "p90", "p99"):
                self.assertAlmostEqual(j[key][q], percentile(values, int(q[1:]) / 100), delta=0.002)
            self.assertAlmostEqual(j[key]["max"], max(values), delta=0.001)
            self.assertAlmostEqual(j[key]["mean"], statistics.mean(values), delta=0.002)
        self.assertEqual(j["tokens"]["prompt"], sum(int(r["prompt_tokens"]) for r in run.rows))
        self.assertEqual(j["tokens"]["prompt"], 40 * 12)
        self.assertEqual(j["tokens"]["completion"], 200)
        self.assertAlmostEqual(j["throughput_rps"], 40 / j["duration_s"], delta=0.01)
        self.assertAlmostEqual(j["output_tokens_per_s"], 200 / j["duration_s"], delta=0.01)
        self.assertIn("40 sent  40 ok  0 failed  0 dropped", run.out)
        printed = re.search(r"^throughput +([0-9.]+) req/s$", run.out, re.M)
        self.assertAlmostEqual(float(printed.group(1)), j["throughput_rps"], delta=0.01)
        self.assertEqual([r["id"] for r in j["per_request"]],
                         [int(r["id"]) for r in run.rows])

    def test_goodput_counts_requests_within_the_slo(self):
        srv = FakeServer(self, delay=0.03)
        run = sy_load(self, "--url", srv.url, "--concurrency", 2, "--requests", 10,
                      "--slo-latency", 1)
        self.assertEqual(run.code, 0, run.err)
        self.assertEqual(run.json["slo"]["met"], 0)
        self.assertEqual(run.json["goodput_rps"], 0)
        run = sy_load(self, "--url", srv.url, "--concurrency", 2, "--requests", 10,
                      "--slo-latency", 5000)
        self.assertEqual(run.json["slo"]["met"], 10)
        self.assertAlmostEqual(run.json["goodput_rps"], run.json["throughput_rps"], delta=0.01)

    def test_progress_line_each_second_unless_quiet(self):
        srv = FakeServer(self)
        proc = subprocess.run([SY_LOAD, "--url", srv.url, "--rate", "20", "--duration", "2.5"],
                              capture_output=True, text=True, timeout=20)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        lines = [l for l in proc.stderr.splitlines() if " req/s" in l]
        self.assertIn(len(lines), (2, 3), proc.stderr)
        self.assertIn("sent", lines[0])
        self.assertIn("throughput", proc.stdout)


class Spec(unittest.TestCase):

    def spec(self, obj):
        return write_file(self, "spec.json", json.dumps(obj, indent=2))

    def test_model_mix_follows_the_weights(self):
        srv = FakeServer(self)
        spec = self.spec({"models": [{"name": "big", "weight": 3}, {"name": "small", "weight": 1}],
                          "output_tokens": 1, "prompt_tokens": 4})
        run = sy_load(self, "--url", srv.url, "--spec", spec, "--concurrency", 8,
                      "--requests", 400)
        self.assertEqual(run.code, 0, run.err)
        big = sum(1 for r in srv.requests if r["body"]["model"] == "big")
        self.assertEqual(big + sum(1 for r in srv.requests if r["body"]["model"] == "small"), 400)
        self.assertAlmostEqual(big / 400, 0.75, delta=0.06)
        self.assertEqual(run.json["models"]["big"]["sent"], big)

    def test_prefix_groups_send_identical_system_prompts(self):
        srv = FakeServer(self)
        spec = self.spec({"prefix_groups": {"count": 3, "tokens": 40}, "prompt_tokens": 7,
                          "output_tokens": 2})
        run = sy_load(self, "--url", srv.url, "--spec", spec, "--concurrency", 2,
                      "--requests", 30)
        self.assertEqual(run.code, 0, run.err)
        systems = [r["body"]["messages"][0] for r in srv.requests]
        self.assertTrue(all(m["role"] == "system" for m in systems))
        distinct = {m["content"] for m in systems}
        self.assertEqual(len(distinct), 3)
        self.assertTrue(all(count_tokens(s) == 40 for s in distinct))
        users = [r["body"]["messages"][1]["content"] for r in srv.requests]
        self.assertEqual(len(set(users)), 30)
        self.assertTrue(all(count_tokens(u) == 7 for u in users))
        groups = {int(r["group"]) for r in run.rows}
        self.assertEqual(groups, {0, 1, 2})

    def test_few_shot_examples_are_part_of_the_prefix(self):
        srv = FakeServer(self)
        spec = self.spec({"prefix_groups": {"count": 1, "tokens": 5, "shots": 2,
                                            "shot_tokens": 3}, "output_tokens": 1})
        run = sy_load(self, "--url", srv.url, "--spec", spec, "--concurrency", 1,
                      "--requests", 4)
        self.assertEqual(run.code, 0, run.err)
        heads = {json.dumps(r["body"]["messages"][:5]) for r in srv.requests}
        self.assertEqual(len(heads), 1)
        roles = [m["role"] for m in srv.requests[0]["body"]["messages"]]
        self.assertEqual(roles, ["system", "user", "assistant", "user", "assistant", "user"])

    def test_sessions_grow_their_history(self):
        srv = FakeServer(self)
        spec = self.spec({"sessions": {"turns": 3}, "prompt_tokens": 5, "output_tokens": 3})
        run = sy_load(self, "--url", srv.url, "--spec", spec, "--concurrency", 1,
                      "--requests", 6)
        self.assertEqual(run.code, 0, run.err)
        msgs = [r["body"]["messages"] for r in srv.requests]
        self.assertEqual([len(m) for m in msgs], [1, 3, 5, 1, 3, 5])
        self.assertEqual(msgs[1][:1], msgs[0])
        self.assertEqual(msgs[1][1], {"role": "assistant", "content": " the of and"})
        self.assertEqual(msgs[2][:3], msgs[1])
        self.assertNotEqual(msgs[3][0], msgs[0][0])
        self.assertEqual([(int(r["session"]), int(r["turn"])) for r in run.rows],
                         [(0, 1), (0, 2), (0, 3), (1, 1), (1, 2), (1, 3)])

    def test_stream_fraction_streams_that_share(self):
        srv = FakeServer(self)
        spec = self.spec({"stream_fraction": 0.25, "output_tokens": 2, "prompt_tokens": 3})
        run = sy_load(self, "--url", srv.url, "--spec", spec, "--concurrency", 4,
                      "--requests", 300)
        self.assertEqual(run.code, 0, run.err)
        streamed = sum(1 for r in srv.requests if r["body"]["stream"])
        self.assertAlmostEqual(streamed / 300, 0.25, delta=0.07)
        self.assertEqual(streamed, sum(int(r["stream"]) for r in run.rows))
        self.assertEqual(run.json["ttft_ms"]["count"], streamed)

    def test_spec_and_option_headers_are_sent(self):
        srv = FakeServer(self)
        spec = self.spec({"headers": {"x-user": "u1", "x-tenant": ["a", "b"],
                                      "x-team": "spec"}})
        run = sy_load(self, "--url", srv.url, "--spec", spec, "--concurrency", 2,
                      "--requests", 40, "--header", "x-team: cli", "--api-key", "sk-1")
        self.assertEqual(run.code, 0, run.err)
        hdrs = [r["headers"] for r in srv.requests]
        self.assertTrue(all(h["x-user"] == "u1" for h in hdrs))
        self.assertTrue(all(h["x-team"] == "cli" for h in hdrs))
        self.assertTrue(all(h["authorization"] == "Bearer sk-1" for h in hdrs))
        self.assertEqual({h["x-tenant"] for h in hdrs}, {"a", "b"})

    def test_length_distributions_stay_within_their_bounds(self):
        srv = FakeServer(self)
        spec = self.spec({"prompt_tokens": {"dist": "uniform", "min": 10, "max": 20},
                          "output_tokens": {"dist": "normal", "mean": 8, "stddev": 3,
                                            "min": 4, "max": 12}})
        run = sy_load(self, "--url", srv.url, "--spec", spec, "--concurrency", 4,
                      "--requests", 200)
        self.assertEqual(run.code, 0, run.err)
        prompts = [count_tokens(r["body"]["messages"][0]["content"]) for r in srv.requests]
        outputs = [r["body"]["max_tokens"] for r in srv.requests]
        self.assertEqual((min(prompts), max(prompts)), (10, 20))
        self.assertTrue(all(4 <= o <= 12 for o in outputs))
        self.assertAlmostEqual(statistics.mean(outputs), 8, delta=0.6)
        self.assertGreater(len(set(outputs)), 5)

    def test_same_seed_same_requests(self):
        bodies = []
        for _ in range(2):
            srv = FakeServer(self)
            spec = self.spec({"prompt_tokens": {"dist": "exponential", "mean": 30},
                              "seed": 7})
            sy_load(self, "--url", srv.url, "--spec", spec, "--concurrency", 1, "--requests", 5)
            bodies.append([r["body"] for r in srv.requests])
        self.assertEqual(bodies[0], bodies[1])

    def test_distinct_prompts_repeats_the_same_requests(self):
        srv = FakeServer(self)
        spec = self.spec({"distinct_prompts": 3, "prompt_tokens": {"dist": "uniform", "min": 5,
                                                                    "max": 50},
                          "models": [{"name": "a"}, {"name": "b"}], "stream_fraction": 0.5})
        run = sy_load(self, "--url", srv.url, "--spec", spec, "--concurrency", 1,
                      "--requests", 9)
        self.assertEqual(run.code, 0, run.err)
        bodies = [json.dumps(r["body"], sort_keys=True) for r in srv.requests]
        self.assertEqual(len(set(bodies)), 3)
        self.assertEqual(bodies[0:3], bodies[3:6])
        self.assertEqual(bodies[0:3], bodies[6:9])

    def test_max_tokens_false_leaves_the_length_to_the_server(self):
        srv = FakeServer(self)
        spec = self.spec({"max_tokens": False, "stream_fraction": 1})
        run = sy_load(self, "--url", srv.url, "--spec", spec, "--concurrency", 1,
                      "--requests", 3)
        self.assertEqual(run.code, 0, run.err)
        self.assertEqual(len(srv.requests), 3)
        for r in srv.requests:
            self.assertNotIn("max_tokens", r["body"])
            self.assertTrue(r["body"]["stream"])
        spec = self.spec({"max_tokens": False, "api": "anthropic"})
        run = sy_load(self, "--url", srv.url, "--spec", spec, "--concurrency", 1,
                      "--requests", 1)
        self.assertEqual(run.code, 2)
        self.assertIn("max_tokens: the Anthropic API requires max_tokens", run.err)

    def test_distinct_prompts_is_not_for_sessions(self):
        spec = self.spec({"distinct_prompts": 2, "sessions": {"turns": 2}})
        run = sy_load(self, "--url", "http://127.0.0.1:9/v1", "--spec", spec, "--concurrency", 1,
                      "--requests", 1)
        self.assertEqual(run.code, 2)
        self.assertIn("distinct_prompts: repeats single requests; not with sessions", run.err)


class Replay(unittest.TestCase):

    def test_trace_is_replayed_at_its_timestamps(self):
        srv = FakeServer(self)
        lines = [{"t_ms": 1000 + 150 * i, "model": "m%d" % (i % 2), "prompt_tokens": 5 + i,
                  "output_tokens": 3, "stream": i % 2 == 1} for i in range(6)]
        trace = write_file(self, "trace.jsonl", "\n".join(json.dumps(l) for l in lines) + "\n")
        run = sy_load(self, "--url", srv.url, "--trace", trace)
        self.assertEqual(run.code, 0, run.err)
        reqs = srv.requests
        self.assertEqual(len(reqs), 6)
        for g in gaps([r["t"] for r in reqs]):
            self.assertAlmostEqual(g, 0.150, delta=0.03)
        self.assertEqual([r["body"]["model"] for r in reqs], ["m0", "m1"] * 3)
        self.assertEqual([count_tokens(r["body"]["messages"][0]["content"]) for r in reqs],
                         [5, 6, 7, 8, 9, 10])
        self.assertEqual([r["body"]["stream"] for r in reqs], [False, True] * 3)

    def test_trace_sessions_and_raw_bodies(self):
        srv = FakeServer(self)
        lines = [{"t_ms": 0, "session": "a", "prompt_tokens": 4, "output_tokens": 2},
                 {"t_ms": 0, "body": {"model": "raw", "messages": [{"role": "user",
                                                                    "content": "hi"}],
                                      "max_tokens": 1}},
                 {"t_ms": 100, "session": "a", "prompt_tokens": 4, "output_tokens": 2}]
        trace = write_file(self, "trace.jsonl", "\n".join(json.dumps(l) for l in lines))
        run = sy_load(self, "--url", srv.url, "--trace", trace)
        self.assertEqual(run.code, 0, run.err)
        raw = [r["body"] for r in srv.requests if r["body"]["model"] == "raw"]
        self.assertEqual(raw, [lines[1]["body"]])
        turns = [r["body"]["messages"] for r in srv.requests if r["body"]["model"] != "raw"]
        self.assertEqual([len(t) for t in turns], [1, 3])
        self.assertEqual(turns[1][0], turns[0][0])
        self.assertEqual(turns[1][1], {"role": "assistant", "content": " the of"})


class ApiShapes(unittest.TestCase):

    def test_anthropic_request_and_stream(self):
        srv = FakeServer(self)
        spec = write_file(self, "spec.json", json.dumps(
            {"api": "anthropic", "prefix_groups": {"count": 1, "tokens": 6},
             "prompt_tokens": 9, "output_tokens": 4, "stream_fraction": 1}))
        run = sy_load(self, "--url", srv.url, "--spec", spec, "--api-key", "ak-1",
                      "--concurrency", 1, "--requests", 2, "--model", "claude-x")
        self.assertEqual(run.code, 0, run.err)
        r = srv.requests[0]
        self.assertEqual(r["path"], "/v1/messages")
        self.assertEqual(r["headers"]["x-api-key"], "ak-1")
        self.assertEqual(r["headers"]["anthropic-version"], "2023-06-01")
        self.assertNotIn("authorization", r["headers"])
        self.assertEqual(set(r["body"]), {"model", "max_tokens", "messages", "system", "stream"})
        self.assertEqual(r["body"]["model"], "claude-x")
        self.assertEqual(count_tokens(r["body"]["system"]), 6)
        self.assertEqual(r["body"]["messages"][0]["role"], "user")
        self.assertTrue(r["body"]["stream"])
        self.assertEqual([int(x["chunks"]) for x in run.rows], [4, 4])
        self.assertEqual(run.json["tokens"], {"prompt": 30, "completion": 8})

    def test_anthropic_without_streaming(self):
        srv = FakeServer(self)
        run = sy_load(self, "--url", srv.url, "--api", "anthropic", "--concurrency", 1,
                      "--requests", 2, "--prompt-tokens", 3, "--max-tokens", 5)
        self.assertEqual(run.code, 0, run.err)
        self.assertEqual(run.json["tokens"], {"prompt": 6, "completion": 10})
        self.assertFalse(srv.requests[0]["body"]["stream"])

    def test_embeddings_request(self):
        srv = FakeServer(self)
        run = sy_load(self, "--url", srv.url, "--api", "embeddings", "--concurrency", 1,
                      "--requests", 3, "--prompt-tokens", 11)
        self.assertEqual(run.code, 0, run.err)
        r = srv.requests[0]
        self.assertEqual(r["path"], "/v1/embeddings")
        self.assertEqual(set(r["body"]), {"model", "input"})
        self.assertEqual(run.json["tokens"], {"prompt": 33, "completion": 0})


class Errors(unittest.TestCase):

    def test_server_errors_are_counted_by_status(self):
        srv = FakeServer(self, fail_every=3)
        run = sy_load(self, "--url", srv.url, "--concurrency", 1, "--requests", 30)
        self.assertEqual(run.code, 0, run.err)
        self.assertEqual(run.json["errors"], {"http_500": 10})
        self.assertEqual(run.json["requests"]["failed"], 10)
        self.assertEqual(sum(1 for r in run.rows if r["error"] == "http_500"), 10)
        self.assertIn("http_500 10", run.out)
        self.assertIn("scripted failure", run.out)

    def test_refused_port_counts_connect_errors(self):
        port = harness.free_port()
        run = sy_load(self, "--url", "http://127.0.0.1:%d/v1" % port, "--concurrency", 2,
                      "--requests", 7)
        self.assertEqual(run.code, 0, run.err)
        self.assertEqual(run.json["errors"], {"connect": 7})
        self.assertEqual(run.json["requests"]["ok"], 0)
        self.assertIn("connect 7", run.out)

    def test_slow_answers_time_out(self):
        srv = FakeServer(self, delay=1.0)
        run = sy_load(self, "--url", srv.url, "--concurrency", 2, "--requests", 2,
                      "--timeout", 0.2)
        self.assertEqual(run.code, 0, run.err)
        self.assertEqual(run.json["errors"], {"timeout": 2})

    def test_connection_closed_mid_answer_is_a_reset(self):
        answer = [b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"choi"]
        url = raw_server(self, [answer] * 3)
        run = sy_load(self, "--url", url, "--concurrency", 1, "--requests", 3)
        self.assertEqual(run.code, 0, run.err)
        self.assertEqual(run.json["errors"], {"reset": 3})

    def test_malformed_answers_are_bad_responses(self):
        url = raw_server(self, [[b"HTTP/1.1 2x0 OK\r\n\r\n"],
                                [b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"]])
        run = sy_load(self, "--url", url, "--concurrency", 1, "--requests", 2)
        self.assertEqual(run.code, 0, run.err)
        self.assertEqual(run.json["errors"], {"bad_response": 2})


class AgainstSySim(unittest.TestCase):
    """sy-load's figures against the counters sy-sim keeps itself."""

    def sim(self, *args):
        port = harness.free_port()
        harness.start(self, [SY_SIM, "--port", str(port), "--quiet"] + [str(a) for a in args],
                      port=port)
        return port

    def stats(self, port):
        r = harness.request(port, "GET", "/sim/stats")
        self.assertEqual(r.status, 200)
        return r.json()

    def test_closed_loop_counts_and_tokens_agree(self):
        port = self.sim("--speed", 0)
        spec = write_file(self, "spec.json", json.dumps({
            "models": [{"name": "a", "weight": 1}, {"name": "b", "weight": 1}],
            "prompt_tokens": {"dist": "uniform", "min": 5, "max": 60},
            "output_tokens": {"dist": "uniform", "min": 1, "max": 30},
            "prefix_groups": {"count": 4, "tokens": 32}, "stream_fraction": 0.5}))
        run = sy_load(self, "--url", "http://127.0.0.1:%d/v1" % port, "--spec", spec,
                      "--concurrency", 8, "--requests", 300)
        self.assertEqual(run.code, 0, run.err)
        sim = self.stats(port)
        self.assertEqual(sim["requests"], 300)
        self.assertEqual(sim["by_path"], {"/v1/chat/completions": {"200": 300}})
        self.assertEqual(run.json["requests"]["ok"], 300)
        self.assertEqual(run.json["tokens"], {"prompt": sim["prompt_tokens"],
                                              "completion": sim["completion_tokens"]})
        streamed = [r for r in run.rows if r["stream"] == "1"]
        self.assertEqual(sum(int(r["chunks"]) for r in streamed),
                         sum(int(r["completion_tokens"]) for r in streamed))

    def test_open_loop_counts_and_tokens_agree(self):
        port = self.sim("--speed", 0)
        run = sy_load(self, "--url", "http://127.0.0.1:%d/v1" % port, "--api", "completions",
                      "--rate", 400, "--duration", 1.5, "--stream", "--max-tokens", 12)
        self.assertEqual(run.code, 0, run.err)
        sim = self.stats(port)
        self.assertAlmostEqual(sim["requests"], 600, delta=90)
        self.assertEqual(run.json["requests"]["sent"], sim["requests"])
        self.assertEqual(sim["by_path"], {"/v1/completions": {"200": sim["requests"]}})
        self.assertEqual(run.json["tokens"], {"prompt": sim["prompt_tokens"],
                                              "completion": sim["completion_tokens"]})
        self.assertEqual(sim["completion_tokens"], 12 * sim["requests"])

    def test_embedding_tokens_agree(self):
        port = self.sim("--speed", 0)
        run = sy_load(self, "--url", "http://127.0.0.1:%d/v1" % port, "--api", "embeddings",
                      "--concurrency", 4, "--requests", 50, "--prompt-tokens", 20)
        self.assertEqual(run.code, 0, run.err)
        sim = self.stats(port)
        self.assertEqual(sim["requests"], 50)
        self.assertEqual(sim["embedding_inputs"], 50)
        self.assertEqual(run.json["tokens"]["prompt"], sim["prompt_tokens"])

    def test_injected_faults_are_the_errors_reported(self):
        port = self.sim("--speed", 0, "--faults",
                        '{"error_rate": 0.2, "error_status": 503, "midstream_error_rate": 0.2}')
        run = sy_load(self, "--url", "http://127.0.0.1:%d/v1" % port, "--concurrency", 4,
                      "--requests", 200, "--stream", "--max-tokens", 8)
        self.assertEqual(run.code, 0, run.err)
        sim = self.stats(port)
        self.assertGreater(sim["faults"]["error"], 0)
        self.assertGreater(sim["faults"]["midstream_error"], 0)
        self.assertEqual(run.json["errors"], {"http_503": sim["faults"]["error"],
                                              "stream_error": sim["faults"]["midstream_error"]})
        self.assertEqual(run.json["requests"]["ok"],
                         200 - sim["faults"]["error"] - sim["faults"]["midstream_error"])

    def test_inter_token_latency_is_the_decode_step(self):
        port = self.sim("--speed", 1, "--decode-base-us", 4000, "--decode-per-seq-us", 0,
                        "--prefill-us-per-token", 100)
        run = sy_load(self, "--url", "http://127.0.0.1:%d/v1" % port, "--concurrency", 2,
                      "--requests", 6, "--stream", "--max-tokens", 20, "--prompt-tokens", 100)
        self.assertEqual(run.code, 0, run.err)
        self.assertAlmostEqual(run.json["itl_ms"]["p50"], 4.0, delta=1.0)
        self.assertEqual(run.json["itl_ms"]["count"], 6 * 19)
        for row in run.rows:
            self.assertGreater(float(row["ttft_ms"]), 9.0)
            self.assertAlmostEqual(float(row["latency_ms"]) - float(row["ttft_ms"]), 19 * 4.0,
                                   delta=25)


class Protocol(unittest.TestCase):

    def test_sse_split_anywhere_is_read_whole(self):
        events = ('data: {"choices":[{"index":0,"delta":{"content":"a"}}]}\r\n\r\n'
                  ': keep-alive comment\r\n\r\n'
                  'data: {"choices":[{"index":0,\r\ndata: "delta":{"content":"b"}}]}\r\n\r\n'
                  'data: {"choices":[{"index":0,"delta":{"content":"c"}}]}\n\n'
                  'data: {"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3}}\n\n'
                  'data: [DONE]\n\n').encode()
        body = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(events[i:i + 9]), events[i:i + 9])
                        for i in range(0, len(events), 9)) + b"0\r\nX-Trailer: 1\r\n\r\n"
        head = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
        stream = head + body
        pieces = [stream[i:i + 40] for i in range(0, len(stream), 40)]
        url = raw_server(self, [pieces])
        run = sy_load(self, "--url", url, "--concurrency", 1, "--requests", 1, "--stream")
        self.assertEqual(run.code, 0, run.err)
        self.assertEqual(run.json["requests"]["ok"], 1, run.out)
        row = run.rows[0]
        self.assertEqual((row["chunks"], row["prompt_tokens"], row["completion_tokens"]),
                         ("3", "7", "3"))
        self.assertEqual(run.json["itl_ms"]["count"], 2)

    def test_answers_ending_at_close_open_a_new_connection_each(self):
        answer = [b'HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n',
                  b'{"choices":[{"index":0,"message":{"content":"x"}}],',
                  b'"usage":{"prompt_tokens":2,"completion_tokens":1}}']
        url = raw_server(self, [answer] * 3)
        run = sy_load(self, "--url", url, "--concurrency", 1, "--requests", 3)
        self.assertEqual(run.code, 0, run.err)
        self.assertEqual(run.json["requests"]["ok"], 3, run.out)
        self.assertEqual(run.json["connections"], 3)
        self.assertEqual(run.json["tokens"], {"prompt": 6, "completion": 3})


class Usage(unittest.TestCase):

    def assertUsageError(self, args, message):
        proc = subprocess.run([SY_LOAD] + [str(a) for a in args], capture_output=True,
                              text=True, timeout=10)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn(message, proc.stderr)
        self.assertEqual(proc.stdout, "")

    def test_bad_options_exit_2_with_a_message(self):
        url = "http://127.0.0.1:9/v1"
        self.assertUsageError(["--rate", 5, "--duration", 1], "--url is required")
        self.assertUsageError(["--url", url, "--rate", 5, "--concurrency", 2, "--duration", 1],
                              "exactly one of --rate, --concurrency and --trace")
        self.assertUsageError(["--url", url, "--rate", 5], "give --duration or --requests")
        self.assertUsageError(["--url", url, "--rate", "fast", "--duration", 1],
                              '--rate: expected a number')
        self.assertUsageError(["--url", url, "--concurrency", 0, "--requests", 1],
                              "--concurrency: expected a whole number from 1")
        self.assertUsageError(["--url", "https://example.com/v1", "--rate", 1, "--duration", 1],
                              "https is not supported")
        self.assertUsageError(["--url", url, "--concurrency", 1, "--requests", 1,
                               "--api", "grpc"], "--api: expected chat")
        self.assertUsageError(["--url", url, "--concurrency", 1, "--requests", 1,
                               "--header", "novalue"], "--header: expected 'NAME: VALUE'")
        self.assertUsageError(["--url", url, "--concurrency", 1, "--requests", 1, "--bogus"],
                              "--help lists the options")

    def test_bad_spec_names_file_line_and_key(self):
        spec = write_file(self, "spec.json",
                          '{\n  "api": "chat",\n  "prompt_tokens": {"dist": "zipf"}\n}\n')
        self.assertUsageError(["--url", "http://127.0.0.1:9/v1", "--spec", spec,
                               "--concurrency", 1, "--requests", 1],
                              '%s:3: prompt_tokens.dist: unknown distribution "zipf"' % spec)
        spec = write_file(self, "spec.json", '{\n  "models": [\n    {"name": "a"},\n'
                          '    {"name": "b", "wieght": 2}\n  ]\n}\n')
        self.assertUsageError(["--url", "http://127.0.0.1:9/v1", "--spec", spec,
                               "--concurrency", 1, "--requests", 1],
                              "%s:4: models[1].wieght: unknown key" % spec)
        spec = write_file(self, "spec.json", '{\n  "api": "chat",,\n}\n')
        self.assertUsageError(["--url", "http://127.0.0.1:9/v1", "--spec", spec,
                               "--concurrency", 1, "--requests", 1], "%s:2:" % spec)

    def test_bad_trace_names_file_and_line(self):
        trace = write_file(self, "trace.jsonl", '{"t_ms": 0}\n{"t_ms": 5, "stream": "yes"}\n')
        self.assertUsageError(["--url", "http://127.0.0.1:9/v1", "--trace", trace],
                              "%s:2: stream: expected true or false" % trace)

    def test_help_documents_every_option(self):
        proc = subprocess.run([SY_LOAD, "--help"], capture_output=True, text=True, timeout=10)
        self.assertEqual(proc.returncode, 0)
        for opt in ("--url", "--rate", "--arrival", "--concurrency", "--duration", "--requests",
                    "--spec", "--trace", "--stream", "--api", "--model", "--prompt-tokens",
                    "--max-tokens", "--header", "--api-key", "--timeout", "--seed", "--warmup",
                    "--json", "--csv", "--per-request", "--quiet", "--max-connections",
                    "--slo-ttft", "--slo-itl", "--slo-latency", "--help", "--version"):
            self.assertIn(opt + " ", proc.stdout.replace("\n", " "))
        self.assertIn("http only", proc.stdout)


if __name__ == "__main__":
    harness.main()
