#!/usr/bin/env python3
# tests/chaos/test_chaos.py: a minute of chaos — many clients, faulty replicas, a misbehaving backend, reloads, Redis and a replica killed and restarted — after which every answer was whole or a well-formed error, none waited past its deadline, each request left one log line, and memory and file descriptors came back.
"""The chaos suite.

For CHAOS_SECONDS (default 40) CLIENTS threads send requests as fast as
they are answered: OpenAI chat (whole and streamed), completions,
embeddings and Anthropic Messages (whole and streamed), with API keys
under rate limits counted in Redis, the prompt cache on (in memory and in
Redis), and one in ten requests aborted by its client after the first
bytes of the answer. Behind switchyard: three sy-sim replicas (one process
each) with random errors, 429s, stalls, drops, malformed bodies and
mid-stream errors, and a scripted backend that misbehaves in its own ways
(a status outside 100-599, a body cut short, garbage, a stream without its
end). Meanwhile the harness reloads the config (SIGHUP) every few seconds,
kills Redis and starts it again, and kills one replica and starts it again.

Asserts, for every request its client did not abort: a complete answer or
an error in its API's shape, within its deadline; one access-log line per
request sent; switchyard alive, with no sanitizer report (the harness
checks its output at the end); its open file descriptors and RSS back near
where they were after the warm-up. Prints the counts.
"""

import http.client
import json
import os
import random
import signal
import socket
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

import harness  # noqa: E402
from harness import RedisServer, ScriptedBackend, binary, free_ports, request, start  # noqa: E402

SECONDS = float(os.environ.get("CHAOS_SECONDS", "40"))
CLIENTS = int(os.environ.get("CHAOS_CLIENTS", "12"))
KEY = "sk-chaos-0123456789"
TOTAL_MS = 4000			# timeouts.total_ms: every request's bound upstream
DEADLINE_S = 12.0		# what a client waits, at most, for its whole answer


def sha(key):
    import hashlib
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fds(pid, ports):
    """(open fds, those of them connected to one of ports: pooled upstream
    connections kept idle for reuse)."""
    remote = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                cols = line.split()
                remote[cols[9]] = int(cols[2].split(":")[1], 16)
    total = pooled = 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        total += 1
        if target.startswith("socket:[") and remote.get(target[8:-1]) in ports:
            pooled += 1
    return total, pooled


def misbehave(path, headers, body):
    """The scripted backend: a different way to be wrong each time."""
    stream = b'"stream":true' in body.replace(b" ", b"")
    roll = random.random()
    if roll < 0.15:
        return 999, {"Content-Type": "application/json"}, [b'{"x":1}'], 0, False
    if roll < 0.3:
        return 200, {"Content-Type": "application/json", "Content-Length": "500"}, \
            [b'{"choices":[{"mess'], 0, True
    if roll < 0.45:
        return 200, {"Content-Type": "application/json"}, [b"\x00\xffnot json at all"], 0, False
    if roll < 0.6 and stream:
        return 200, {"Content-Type": "text/event-stream", "Transfer-Encoding": "chunked"}, \
            [b'data: {"id":"x","object":"chat.completion.chunk","choices":[{"index":0,'
             b'"delta":{"content":"cut"}}]}\n\n'], 0.01, True
    if roll < 0.7:
        return 503, {"Content-Type": "text/html"}, [b"<html>down</html>"], 0, False
    if stream:
        events = [b'data: {"id":"x","object":"chat.completion.chunk","choices":[{"index":0,'
                  b'"delta":{"content":"w%d "}}]}\n\n' % i for i in range(5)]
        events.append(b'data: {"id":"x","object":"chat.completion.chunk","choices":[{"index":0,'
                      b'"delta":{},"finish_reason":"stop"}]}\n\n')
        events.append(b"data: [DONE]\n\n")
        return 200, {"Content-Type": "text/event-stream", "Transfer-Encoding": "chunked"}, \
            events, 0.005, False
    if b'"input"' in body:
        n = body.count(b'"') // 2
        return 200, {"Content-Type": "application/json"}, \
            [json.dumps({"object": "list", "data": [{"object": "embedding", "index": 0,
                                                      "embedding": [0.1, 0.2]}],
                         "usage": {"prompt_tokens": n, "total_tokens": n}}).encode()], 0, False
    return 200, {"Content-Type": "application/json"}, [json.dumps(
        {"id": "x", "object": "chat.completion", "model": "m",
         "choices": [{"index": 0, "message": {"role": "assistant", "content": "fine"},
                      "finish_reason": "stop"}],
         "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}).encode()], 0, False


# ==== What a well-formed answer is, per API ====

def openai_whole_ok(status, body):
    o = json.loads(body)
    if status >= 400:
        return isinstance(o.get("error"), dict) and isinstance(o["error"].get("message"), str)
    if "data" in o:
        return isinstance(o["data"], list) and all("embedding" in e for e in o["data"])
    return isinstance(o.get("choices"), list) and len(o["choices"]) > 0


def sse_events(body):
    out = []
    for block in body.replace(b"\r\n", b"\n").split(b"\n\n"):
        ev, data = None, []
        for line in block.split(b"\n"):
            if line.startswith(b"event:"):
                ev = line[6:].strip().decode()
            elif line.startswith(b"data:"):
                data.append(line[5:].strip())
        if ev is not None or data:
            out.append((ev, b"\n".join(data)))
    return out


def openai_stream_ok(status, body):
    if status >= 400:
        return openai_whole_ok(status, body)
    evs = sse_events(body)
    if not evs:
        return False
    last = evs[-1][1]
    if last == b"[DONE]":
        return all(json.loads(d).get("choices") is not None for _, d in evs[:-1])
    err = json.loads(last)
    return isinstance(err.get("error"), dict) and isinstance(err["error"].get("message"), str)


def anthropic_whole_ok(status, body):
    o = json.loads(body)
    if status >= 400:
        return o.get("type") == "error" and isinstance(o.get("error", {}).get("message"), str)
    return o.get("type") == "message" and isinstance(o.get("content"), list) and "stop_reason" in o


def anthropic_stream_ok(status, body):
    if status >= 400:
        return anthropic_whole_ok(status, body)
    evs = sse_events(body)
    if not evs:
        return False
    names = [e for e, _ in evs]
    if names[-1] == "error":
        return isinstance(json.loads(evs[-1][1]).get("error", {}).get("message"), str)
    return names[0] == "message_start" and names[-1] == "message_stop" and "message_delta" in names


KINDS = [
    # name, path, body, check, weight
    ("chat", "/v1/chat/completions", lambda i: {"model": "m", "max_tokens": 12, "temperature": i % 2,
                                                "messages": [{"role": "user", "content": "q%d" % (i % 7)}]},
     openai_whole_ok, 3),
    ("chat-stream", "/v1/chat/completions", lambda i: {"model": "m", "max_tokens": 12, "stream": True,
                                                       "messages": [{"role": "user", "content": "s%d" % i}]},
     openai_stream_ok, 3),
    ("completions", "/v1/completions", lambda i: {"model": "m", "max_tokens": 8, "prompt": "p%d" % i},
     openai_whole_ok, 1),
    ("embeddings", "/v1/embeddings", lambda i: {"model": "e", "input": ["a%d" % i, "b"]},
     openai_whole_ok, 1),
    ("messages", "/v1/messages", lambda i: {"model": "m", "max_tokens": 12,
                                            "messages": [{"role": "user", "content": "a%d" % i}]},
     anthropic_whole_ok, 2),
    ("messages-stream", "/v1/messages", lambda i: {"model": "m", "max_tokens": 12, "stream": True,
                                                   "messages": [{"role": "user", "content": "b%d" % i}]},
     anthropic_stream_ok, 2),
]


class Chaos(unittest.TestCase):
    def setUp(self):
        random.seed(7)
        self.sim_port = free_ports(3)
        self.sims = [self.start_sim(i) for i in range(3)]
        self.bad = ScriptedBackend(misbehave)
        self.addCleanup(self.bad.close)
        self.rs = RedisServer(self)
        self.port = free_ports(2)
        self.dir = tempfile.gettempdir()
        self.cfg_path = os.path.join(self.dir, "sy-chaos-%d.json" % self.port)
        self.log_path = os.path.join(self.dir, "sy-chaos-%d.log" % self.port)
        if not os.environ.get("SY_KEEP_LOGS"):
            self.addCleanup(lambda: [os.path.exists(p) and os.unlink(p)
                                     for p in (self.cfg_path, self.log_path)])
        self.write_config(0)
        # Under ASan, freed memory waits in a quarantine (256 MB by default)
        # and would count as RSS: a small one keeps RSS meaningful.
        opts = os.environ.get("ASAN_OPTIONS", "")
        env = {"ASAN_OPTIONS": (opts + ":" if opts else "") +
               "quarantine_size_mb=4:thread_local_quarantine_size_kb=64"}
        self.gw = start(self, [binary("switchyard"), "-c", self.cfg_path], port=self.port,
                        name="switchyard", env=env)
        harness.wait_port(self.port + 1)

    def start_sim(self, i):
        # 429s from one replica only: each rests its endpoint for Retry-After.
        faults = {"error_rate": 0.02, "error_status": 503,
                  "rate_limit_rate": 0.005 if i == 2 else 0,
                  "stall_ms": 300, "stall_rate": 0.02, "drop_after_tokens": 3, "drop_rate": 0.02,
                  "malformed_rate": 0.02, "midstream_error_rate": 0.03,
                  "midstream_error_after_tokens": 2}
        return start(self, [binary("sy-sim"), "--port", str(self.sim_port + i), "--speed", "0.05",
                            "--seed", str(11 + i), "--models", "m,e", "--quiet",
                            "--faults", json.dumps(faults)],
                     port=self.sim_port + i, name="sy-sim-%d" % i)

    def write_config(self, n):
        backends = [{"name": "sim%d" % i, "url": "http://127.0.0.1:%d/v1" % (self.sim_port + i),
                     "weight": 1 + (n + i) % 3} for i in range(3)]
        backends.append({"name": "bad", "url": "http://127.0.0.1:%d/v1" % self.bad.port})
        cfg = {"listen": "127.0.0.1:%d" % self.port, "admin": "127.0.0.1:%d" % (self.port + 1),
               "workers": 2, "access_log": self.log_path,
               "timeouts": {"connect_ms": 500, "first_byte_ms": 2000, "idle_ms": 2000,
                            "total_ms": TOTAL_MS, "drain_ms": 3000},
               "backends": backends,
               "routes": [{"name": "chat", "models": ["m"],
                           "policy": "least_outstanding" if n % 2 else "round_robin",
                           "retries": {"max": 2, "budget": 0.5},
                           "cache": {"ttl_s": 30}},
                          {"name": "emb", "models": ["e"], "batch": {"max_batch_size": 8,
                                                                     "max_wait_us": 2000}}],
               "cache": {"l1_max_bytes": 1 << 20,
                         "redis": {"port": self.rs.port, "command_timeout_ms": 50}},
               "redis": {"port": self.rs.port, "command_timeout_ms": 50},
               "auth": "keys",
               "keys": [{"id": "chaos", "hash": sha(KEY),
                         "rate_limits": [{"requests": 10 ** 7, "window_s": 60}]}],
               "prices": {"m": {"input": 1, "output": 2}}}
        tmp = self.cfg_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(cfg, f)
        os.replace(tmp, self.cfg_path)

    def one(self, i, stats, lock):
        name, path, make, check, _ = random.choices(KINDS, [k[4] for k in KINDS])[0]
        body = json.dumps(make(i)).encode()
        abort = random.random() < 0.1
        hdrs = {"Content-Type": "application/json"}
        if path == "/v1/messages":
            hdrs.update({"x-api-key": KEY, "anthropic-version": "2023-06-01"})
        else:
            hdrs["Authorization"] = "Bearer " + KEY
        t0 = time.time()
        outcome = "ok"
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=DEADLINE_S)
        try:
            conn.request("POST", path, body, hdrs)
            r = conn.getresponse()
            if abort:
                r.read(1)
                conn.sock.shutdown(socket.SHUT_RDWR)
                outcome = "aborted"
            else:
                data = r.read()
                try:
                    good = check(r.status, data)
                except (ValueError, KeyError, AttributeError, TypeError):
                    good = False
                if not good:
                    outcome = "malformed"
                    with lock:
                        stats["examples"].append((name, r.status, data[-300:]))
                elif r.status >= 400 or b'"error"' in data[-400:] or b"event: error" in data:
                    outcome = "error"
                    with lock:
                        stats["codes"][r.status] = stats["codes"].get(r.status, 0) + 1
        except socket.timeout:
            outcome = "timeout"
        except (ConnectionError, http.client.HTTPException) as e:
            outcome = "aborted" if abort else "cut"
            if not abort:
                with lock:
                    stats["examples"].append((name, "connection", repr(e)))
        finally:
            conn.close()
        took = time.time() - t0
        with lock:
            stats[outcome] = stats.get(outcome, 0) + 1
            stats["sent"] += 1
            if outcome != "aborted" and took > DEADLINE_S:
                stats["late"] += 1
            stats["slowest"] = max(stats["slowest"], took)

    def test_a_minute_of_chaos_leaves_every_answer_whole_or_a_clean_error(self):
        stats = {"sent": 0, "late": 0, "slowest": 0.0, "examples": [], "codes": {}}
        lock = threading.Lock()
        # Warm up, then the baseline.
        for i in range(30):
            self.one(i, stats, lock)
        time.sleep(1.0)
        backends = {self.sim_port + i for i in range(3)} | {self.bad.port}
        (base_fds, _), base_rss = fds(self.gw.pid, backends), rss_kb(self.gw.pid)
        stop = time.time() + SECONDS
        counter = [1000]

        def client():
            while time.time() < stop:
                with lock:
                    counter[0] += 1
                    i = counter[0]
                self.one(i, stats, lock)
        threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
        for t in threads:
            t.start()
        events = []
        t_start = time.time()
        reloads = 0
        killed_redis = killed_sim = False
        while time.time() < stop:
            time.sleep(0.5)
            at = time.time() - t_start
            if at >= 4 * (reloads + 1):
                reloads += 1
                self.write_config(reloads)
                self.gw.signal(signal.SIGHUP)
            if not killed_redis and at > SECONDS * 0.3:
                killed_redis = True
                self.rs.kill()
                time.sleep(1.5)
                self.rs.start()
                events.append("redis killed and restarted at %.0f s" % at)
            if not killed_sim and at > SECONDS * 0.55:
                killed_sim = True
                self.sims[1].p.kill()
                self.sims[1].p.wait()
                time.sleep(2.0)
                self.sims[1] = self.start_sim(1)
                events.append("replica 1 killed and restarted at %.0f s" % at)
        for t in threads:
            t.join(DEADLINE_S + 5)
        self.assertIsNone(self.gw.poll(), "switchyard exited")
        # One log line per request (aborted ones too), once the log is flushed.
        deadline = time.time() + 5
        lines = 0
        while time.time() < deadline:
            with open(self.log_path) as f:
                lines = sum(1 for _ in f)
            if lines >= stats["sent"]:
                break
            time.sleep(0.1)
        time.sleep(2.0)
        (end_fds, pooled), end_rss = fds(self.gw.pid, backends), rss_kb(self.gw.pid)
        m = request(self.port + 1, "GET", "/metrics").body.decode()
        print("\n# chaos: %.0f s, %d clients, %d reloads; %s" % (SECONDS, CLIENTS, reloads,
                                                                "; ".join(events)), file=sys.stderr)
        print("# requests %d: ok %d, errors %d, aborted %d, malformed %d, cut %d, timeouts %d, "
              "late %d, slowest %.2f s; log lines %d; fds %d -> %d (%d pooled upstream); "
              "RSS %d -> %d KiB" % (
                  stats["sent"], stats.get("ok", 0), stats.get("error", 0), stats.get("aborted", 0),
                  stats.get("malformed", 0), stats.get("cut", 0), stats.get("timeout", 0),
                  stats["late"], stats["slowest"], lines, base_fds, end_fds, pooled, base_rss,
                  end_rss),
              file=sys.stderr)
        print("# errors by status: %s" % sorted(stats["codes"].items()), file=sys.stderr)
        self.assertGreater(stats["sent"], 200)
        self.assertGreater(stats.get("ok", 0), stats["sent"] // 4)
        self.assertEqual(stats.get("malformed", 0) + stats.get("cut", 0), 0, stats["examples"][:5])
        self.assertEqual(stats.get("timeout", 0), 0)
        self.assertEqual(stats["late"], 0)
        self.assertEqual(lines, stats["sent"])
        self.assertTrue(killed_redis and killed_sim and reloads >= 3)
        # Besides idle upstream connections kept for reuse (at most one per
        # client, endpoint and worker), no descriptor is left behind.
        self.assertLessEqual(pooled, 4 * 2 * CLIENTS)
        self.assertLessEqual(end_fds - pooled, base_fds + 4)
        self.assertLessEqual(end_rss, base_rss + 48 * 1024)
        self.assertIn("switchyard_requests_total", m)


if __name__ == "__main__":
    harness.main()
