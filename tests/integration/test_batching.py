"""Gateway-level batching end to end: concurrent callers of embeddings and
completions behind one sy-sim replica whose batch call costs a + b·n; each
caller gets exactly its own answer, bad input and failed batches stay with
their owners, deadlines and full queues shed at once; checked from the
clients' side, sy-sim's request log, the access log and /metrics."""
import json
import signal
import subprocess
import time
import unittest

import harness
from harness import binary, concurrently, free_port, post_json, request, start
from test_proxy import Gateway

MODEL = "e5"
PRICE = 0.5  # USD per 1M input tokens


class BatchCase(unittest.TestCase):
    """One sy-sim replica (one slot: calls run one at a time, a batch of n
    inputs costs batch_base_us + batch_per_input_us × n) and a two-worker
    gateway whose route batches."""

    batch = {"policy": "window", "max_batch_size": 16, "max_wait_us": 40000}
    sim_args = ["--batch-base-us", "20000", "--batch-per-input-us", "500"]
    kind = "openai"
    route_extra = {}

    def setUp(self):
        self.sim_port = free_port()
        start(self, [binary("sy-sim"), "--port", str(self.sim_port), "--models", MODEL,
                     "--slots", "1", "--output-tokens", "fixed:4", "--quiet"] + self.sim_args,
              port=self.sim_port, name="sy-sim")
        url = "http://127.0.0.1:%d" % self.sim_port
        backend = {"name": "sim", "url": url + ("/v1" if self.kind == "openai" else ""),
                   "kind": self.kind, "models": [MODEL]}
        route = dict({"name": "emb", "models": [MODEL], "batch": self.batch}, **self.route_extra)
        self.gw = Gateway(self, {"backends": [backend], "routes": [route],
                                 "prices": {MODEL: {"input": PRICE, "output": 2 * PRICE}}})

    def direct(self, path, body):
        """What sy-sim answers for body on its own (no gateway, no batch)."""
        r = post_json(self.sim_port, path, body)
        self.assertEqual(r.status, 200, r.body)
        return r.json()

    def sim_calls(self, path=None):
        reqs = request(self.sim_port, "GET", "/sim/requests").json()
        return [r for r in reqs if path is None or r["path"] == path]

    def reset_sim(self):
        self.assertEqual(request(self.sim_port, "POST", "/sim/reset").status, 200)

    def embed(self, inputs, headers=None):
        return lambda: self.gw.post("/v1/embeddings", {"model": MODEL, "input": inputs},
                                    headers=headers)

    def metrics(self):
        r = request(self.gw.admin, "GET", "/metrics")
        self.assertEqual(r.status, 200)
        return r.body

    def assert_metrics(self, *lines, timeout=3.0):
        """Waits until /metrics holds every line (a request is counted just
        after its answer is sent); returns the text."""
        deadline = time.time() + timeout
        while True:
            text = self.metrics().decode()
            missing = [l for l in lines if l not in text]
            if not missing or time.time() > deadline:
                self.assertEqual(missing, [])
                return text
            time.sleep(0.02)


def later(delay, call):
    """call, delay seconds from now."""
    def run():
        time.sleep(delay)
        return call()
    return run


def texts(i, n):
    return ["caller %d text %d %s" % (i, k, "x" * (i + k)) for k in range(n)]


class Embeddings(BatchCase):
    def test_concurrent_callers_each_get_their_own_vectors_in_order(self):
        inputs = [texts(i, 1 + i % 3) for i in range(8)]
        want = [self.direct("/v1/embeddings", {"model": MODEL, "input": t}) for t in inputs]
        self.reset_sim()
        got = concurrently([self.embed(t) for t in inputs])
        for i, r in enumerate(got):
            self.assertEqual(r.status, 200, r.body)
            data = r.json()["data"]
            self.assertEqual([d["index"] for d in data], list(range(len(inputs[i]))))
            self.assertEqual([d["embedding"] for d in data],
                             [d["embedding"] for d in want[i]["data"]])
        calls = self.sim_calls("/v1/embeddings")
        self.assertLess(len(calls), len(inputs))
        self.assertEqual(sum(len(c["body"]["input"]) for c in calls),
                         sum(len(t) for t in inputs))
        self.assertGreater(max(len(c["body"]["input"]) for c in calls), 3)

    def test_each_caller_pays_its_own_tokens(self):
        inputs = [texts(i, 2) for i in range(5)]
        want = [self.direct("/v1/embeddings", {"model": MODEL, "input": t}) for t in inputs]
        got = concurrently([self.embed(t) for t in inputs])
        for i, r in enumerate(got):
            self.assertEqual(r.status, 200, r.body)
            self.assertEqual(r.json()["usage"]["prompt_tokens"],
                             want[i]["usage"]["prompt_tokens"])
        lines = {l["request_id"]: l for l in self.gw.log_lines(5)}
        for r in got:
            line = lines[r.headers["x-request-id"]]
            self.assertEqual(line["prompt_tokens"], r.json()["usage"]["prompt_tokens"])
            self.assertAlmostEqual(line["cost_usd"], line["prompt_tokens"] * PRICE / 1e6)
            self.assertGreater(line["batch_size"], 2)
            self.assertIsNotNone(line["batch_wait_ms"])

    def test_a_single_string_is_a_batch_of_one_input(self):
        got = concurrently([self.embed("alone %d" % i) for i in range(3)])
        for r in got:
            self.assertEqual(r.status, 200, r.body)
            self.assertEqual(len(r.json()["data"]), 1)
            self.assertEqual(r.json()["data"][0]["index"], 0)
        self.assertEqual(len(self.sim_calls("/v1/embeddings")), 1)

    def test_an_input_larger_than_a_batch_goes_alone(self):
        r = self.embed(texts(1, 20))()
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(len(r.json()["data"]), 20)
        self.assertIsNone(self.gw.log_lines(1)[-1]["batch_size"])

    def test_a_bad_input_gets_400_and_the_others_succeed(self):
        calls = [self.embed(texts(i, 2)) for i in range(4)]
        calls.insert(2, self.embed(["fine", {"not": "text"}]))
        got = concurrently(calls)
        self.assertEqual(got[2].status, 400, got[2].body)
        self.assertEqual(got[2].json()["error"]["type"], "invalid_request_error")
        self.assertIn("'input'", got[2].json()["error"]["message"])
        for i in (0, 1, 3, 4):
            self.assertEqual(got[i].status, 200, got[i].body)
            self.assertEqual(len(got[i].json()["data"]), 2)
        for c in self.sim_calls("/v1/embeddings"):
            self.assertNotIn("fine", c["body"]["input"])

    def test_bad_batching_headers_are_400(self):
        r = self.embed("x", {"x-switchyard-priority": "urgent"})()
        self.assertEqual(r.status, 400)
        self.assertIn("x-switchyard-priority", r.json()["error"]["message"])
        r = self.embed("x", {"x-switchyard-deadline-ms": "soon"})()
        self.assertEqual(r.status, 400)
        self.assertIn("x-switchyard-deadline-ms", r.json()["error"]["message"])

    def test_a_failed_batch_gives_each_member_the_error(self):
        r = request(self.sim_port, "POST", "/sim/faults", {"error_rate": 1.0, "error_status": 503})
        self.assertEqual(r.status, 200)
        got = concurrently([self.embed(texts(i, 1)) for i in range(4)])
        for r in got:
            self.assertEqual(r.status, 503, r.body)
            self.assertIn("injected fault", r.json()["error"]["message"])
            self.assertNotIn("data", r.json())
        self.assertEqual(len(self.sim_calls("/v1/embeddings")), 1)

    def test_metrics_show_batch_sizes_waits_and_flush_reasons(self):
        concurrently([self.embed(texts(i, 2)) for i in range(4)])
        text = self.assert_metrics('switchyard_batch_size_count{route="emb"} 1',
                                   'switchyard_batch_size_sum{route="emb"} 8',
                                   'switchyard_batch_queue_wait_seconds_count{route="emb"} 4',
                                   'switchyard_batch_flushes_total{route="emb",reason="wait"} 1',
                                   'switchyard_batch_shed_total{route="emb"} 0')
        p = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                           capture_output=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        stats = request(self.gw.admin, "GET", "/admin/stats").json()
        self.assertEqual(stats["routes"]["emb"]["batch"]["batches"], 1)
        self.assertEqual(stats["routes"]["emb"]["batch"]["inputs"], 8)


class FullBatches(BatchCase):
    batch = {"policy": "window", "max_batch_size": 4, "max_wait_us": 1000000}

    def test_a_batch_goes_as_soon_as_it_is_full(self):
        got = concurrently([self.embed(texts(i, 2)) for i in range(2)])
        for r in got:
            self.assertEqual(r.status, 200, r.body)
            self.assertLess(self.gw.log_lines(2)[-1]["latency_ms"], 500)
        self.assert_metrics('switchyard_batch_flushes_total{route="emb",reason="size"} 1')


class TokenBound(BatchCase):
    batch = {"policy": "window", "max_batch_size": 16, "max_batch_tokens": 12,
             "max_wait_us": 1000000}

    def test_a_batch_goes_when_it_holds_max_batch_tokens(self):
        six = "aaaa bbbb cccc dddd eeee ffff"  # 6 tokens by the estimate
        got = concurrently([self.embed(six), self.embed(six), later(0.3, self.embed("late"))])
        for r in got:
            self.assertEqual(r.status, 200, r.body)
        self.assertLess(self.gw.log_lines(3)[0]["latency_ms"], 500)
        inputs = [c["body"]["input"] for c in self.sim_calls("/v1/embeddings")]
        self.assertEqual(inputs[0], [six, six])
        self.assert_metrics('switchyard_batch_flushes_total{route="emb",reason="tokens"} 1')


class Completions(BatchCase):
    sim_args = ["--context-tokens", "64"]

    def complete(self, prompt):
        return lambda: self.gw.post("/v1/completions",
                                    {"model": MODEL, "prompt": prompt, "max_tokens": 4})

    def test_prompt_arrays_are_batched_and_each_caller_gets_its_choices(self):
        prompts = [["tell %d" % i, "more %d" % i] for i in range(4)]
        want = [self.direct("/v1/completions", {"model": MODEL, "prompt": p, "max_tokens": 4})
                for p in prompts]
        self.reset_sim()
        got = concurrently([self.complete(p) for p in prompts])
        for i, r in enumerate(got):
            self.assertEqual(r.status, 200, r.body)
            choices = r.json()["choices"]
            self.assertEqual([c["index"] for c in choices], [0, 1])
            self.assertEqual([c["text"] for c in choices],
                             [c["text"] for c in want[i]["choices"]])
            u = r.json()["usage"]
            self.assertEqual(u["prompt_tokens"], want[i]["usage"]["prompt_tokens"])
            self.assertEqual(u["completion_tokens"], want[i]["usage"]["completion_tokens"])
        self.assertLess(len(self.sim_calls("/v1/completions")), 4)

    def test_a_prompt_the_backend_refuses_fails_alone(self):
        long = " ".join("word%d" % k for k in range(80))
        calls = [self.complete("short %d" % i) for i in range(3)] + [self.complete(long)]
        got = concurrently(calls)
        for r in got[:3]:
            self.assertEqual(r.status, 200, r.body)
            self.assertEqual(len(r.json()["choices"]), 1)
        self.assertEqual(got[3].status, 400, got[3].body)
        calls = self.sim_calls("/v1/completions")
        self.assertTrue(any(isinstance(c["body"]["prompt"], list) and len(c["body"]["prompt"]) == 4
                            for c in calls))

    def test_streams_are_not_batched(self):
        r = self.gw.post("/v1/completions", {"model": MODEL, "prompt": "hi", "max_tokens": 2,
                                             "stream": True})
        self.assertEqual(r.status, 200)
        self.assertIsNone(self.gw.log_lines(1)[-1]["batch_size"])


class Shedding(BatchCase):
    """A slow backend (200 ms a call), batches held while it is busy, a
    queue of three."""

    batch = {"policy": {"name": "adaptive", "max_in_flight": 1}, "max_batch_size": 8,
             "max_wait_us": 5000000, "max_queue": 3}
    sim_args = ["--batch-base-us", "200000", "--batch-per-input-us", "0"]

    def test_a_deadline_that_cannot_be_met_is_shed_at_once_with_retry_after(self):
        self.assertEqual(self.embed("warm up")().status, 200)
        got = concurrently([self.embed("busy"),
                            later(0.05, self.embed("hurry", {"x-switchyard-deadline-ms": "100"}))])
        self.assertEqual(got[0].status, 200, got[0].body)
        r = got[1]
        self.assertEqual(r.status, 503, r.body)
        self.assertEqual(r.json()["error"]["code"], "deadline_exceeded")
        self.assertGreaterEqual(int(r.headers["retry-after"]), 1)
        line = [l for l in self.gw.log_lines(3) if l["status"] == 503][0]
        self.assertLess(line["latency_ms"], 50)
        self.assert_metrics('switchyard_batch_shed_total{route="emb"} 1')

    def test_a_full_queue_answers_429_with_retry_after(self):
        self.assertEqual(self.embed("warm up")().status, 200)
        got = concurrently([self.embed("n%d" % i) for i in range(7)])
        # One call at the backend, three waiting: the other three are turned away.
        self.assertEqual(sorted(r.status for r in got), [200] * 4 + [429] * 3)
        for r in got:
            if r.status == 429:
                self.assertEqual(r.json()["error"]["type"], "rate_limit_error")
                self.assertGreaterEqual(int(r.headers["retry-after"]), 1)
        self.assert_metrics('switchyard_batch_shed_total{route="emb"} 3')

    def test_higher_priority_enters_batches_first(self):
        self.assertEqual(self.embed("warm up")().status, 200)
        self.reset_sim()
        got = concurrently([self.embed("first"),
                            later(0.05, self.embed("low a", {"x-switchyard-priority": "low"})),
                            later(0.06, self.embed("low b", {"x-switchyard-priority": "low"})),
                            later(0.07, self.embed("high", {"x-switchyard-priority": "high"}))])
        for r in got:
            self.assertEqual(r.status, 200, r.body)
        order = [c["body"]["input"] for c in self.sim_calls("/v1/embeddings")]
        self.assertEqual(order[0], ["first"])
        self.assertEqual(order[1][0], "high")


    def test_a_caller_who_leaves_disturbs_no_one(self):
        self.assertEqual(self.embed("warm up")().status, 200)
        # "busy" goes at once; the leaver gives up while held (0.05 s), or
        # while its batch with "stays" is at the backend (0.3 s).
        for n, patience in enumerate((0.05, 0.3)):
            def leaver():
                return self.gw.post("/v1/embeddings", {"model": MODEL, "input": "leaves"},
                                    timeout=patience)
            got = concurrently([self.embed("busy"), later(0.02, leaver),
                                later(0.03, self.embed("stays"))])
            self.assertIsInstance(got[1], Exception)
            self.assertEqual(got[0].status, 200, got[0].body)
            self.assertEqual(got[2].status, 200, got[2].body)
            self.assertEqual(len(got[2].json()["data"]), 1)
            self.assertEqual(self.embed("after")().status, 200)
            statuses = sorted(l["status"] for l in self.gw.log_lines(5 + 4 * n)[-4:])
            self.assertEqual(statuses, [200, 200, 200, 499])

    def test_a_drain_answers_every_batched_request_first(self):
        self.assertEqual(self.embed("warm up")().status, 200)
        # One call at the backend, three held for the next: all answered.
        calls = [self.embed("drain %d" % i) for i in range(4)]
        calls.append(later(0.1, lambda: self.gw.proc.signal(signal.SIGTERM)))
        got = concurrently(calls)
        for r in got[:4]:
            self.assertEqual(r.status, 200, r.body)
        self.assertEqual(self.gw.proc.p.wait(10), 0)
        self.assertEqual(sum(len(c["body"]["input"]) for c in self.sim_calls("/v1/embeddings")), 5)


class ForcedStop(BatchCase):
    """A stop that does not wait for a batch at the backend (drain_ms
    passed): the process ends cleanly, its batch calls freed (under ASan a
    leak fails this test)."""
    sim_args = ["--batch-base-us", "3000000", "--batch-per-input-us", "500"]
    route_extra = {"deadline_ms": 20000}

    def setUp(self):
        super().setUp()
        self.gw.config["timeouts"] = {"drain_ms": 300}
        self.gw.write(self.gw.config)
        self.assertEqual(request(self.gw.admin, "POST", "/admin/reload").status, 200)

    def test_a_batch_at_the_backend_does_not_outlive_a_forced_stop(self):
        calls = [self.embed("slow %d" % i) for i in range(3)]
        calls.append(later(0.3, lambda: self.gw.proc.signal(signal.SIGTERM)))
        t0 = time.time()
        got = concurrently(calls)
        self.assertEqual(self.gw.proc.p.wait(10), 0)
        self.assertLess(time.time() - t0, 2.5)	# not the 3 s batch
        for r in got[:3]:		# connections closed, or an error
            self.assertNotEqual(getattr(r, "status", None), 200)


class WithSelection(unittest.TestCase):
    """A route that batches and picks a model per request: a batch goes to
    the model its members were selected for (the batch call itself carries
    none of their headers)."""

    def test_a_batch_is_answered_by_its_members_model(self):
        sim_port = free_port()
        start(self, [binary("sy-sim"), "--port", str(sim_port), "--models", "e1,e2",
                     "--quiet"], port=sim_port, name="sy-sim")
        gw = Gateway(self, {
            "backends": [{"name": "sim", "url": "http://127.0.0.1:%d/v1" % sim_port}],
            "routes": [{"name": "emb", "models": ["e1", "e2"],
                        "selection": {"name": "rules", "default": "e1", "rules": [
                            {"headers": {"x-tier": "^gold$"}, "model": "e2"}]},
                        "batch": {"policy": "window", "max_batch_size": 16,
                                  "max_wait_us": 30000}}]})
        tiers = ["gold" if i % 2 else "basic" for i in range(12)]
        got = concurrently([lambda i=i: gw.post("/v1/embeddings",
                                                {"model": "e1", "input": ["text %d" % i]},
                                                headers={"x-tier": tiers[i]})
                            for i in range(12)])
        for tier, r in zip(tiers, got):
            self.assertEqual(r.status, 200, r.body)
            want = "e2" if tier == "gold" else "e1"
            self.assertEqual(r.headers["x-switchyard-model"], want)
            self.assertEqual(r.json()["model"], want)
        calls = request(sim_port, "GET", "/sim/requests").json()
        self.assertEqual(sorted(c["body"]["model"] for c in calls
                                for _ in c["body"]["input"]), ["e1"] * 6 + ["e2"] * 6)


class DeadlineFlush(BatchCase):
    batch = {"policy": "window", "max_batch_size": 16, "max_wait_us": 2000000}

    def test_a_batch_goes_early_for_a_members_deadline(self):
        t0 = time.time()
        r = self.embed(texts(1, 1), headers={"x-switchyard-deadline-ms": "300"})()
        took = time.time() - t0
        self.assertEqual(r.status, 200, r.body)
        self.assertLess(took, 1.0)		# not the 2 s window
        self.assert_metrics('switchyard_batch_flushes_total{route="emb",reason="deadline"} 1')


class MemberDeadline(BatchCase):
    sim_args = ["--batch-base-us", "1500000", "--batch-per-input-us", "500"]

    def test_a_member_keeps_its_own_deadline_while_its_batch_is_out(self):
        timed = later(0, self.embed(texts(1, 1), headers={"x-switchyard-deadline-ms": "300"}))
        patient = later(0.005, self.embed(texts(2, 1)))
        t0 = time.time()
        got = concurrently([timed, patient])
        self.assertEqual(got[0].status, 504, got[0].body)
        self.assertEqual(got[0].json()["error"]["code"], "gateway_timeout")
        self.assertEqual(got[1].status, 200, got[1].body)
        self.assertEqual(len(self.sim_calls("/v1/embeddings")), 1)	# one batch
        lines = {l["status"]: l for l in self.gw.log_lines(2)}
        self.assertLess(lines[504]["latency_ms"], 1000)
        self.assertGreater(time.time() - t0, 1.4)


class MixedApis(BatchCase):
    def test_embeddings_and_completions_never_share_a_batch(self):
        calls = [self.embed(texts(i, 1)) for i in range(3)]
        calls += [lambda i=i: self.gw.post("/v1/completions",
                                           {"model": MODEL, "prompt": "tell %d" % i})
                  for i in range(3)]
        got = concurrently(calls)
        for r in got:
            self.assertEqual(r.status, 200, r.body)
        for r in got[:3]:
            self.assertEqual(r.json()["object"], "list")
            self.assertEqual(len(r.json()["data"]), 1)
        for r in got[3:]:
            self.assertEqual(r.json()["object"], "text_completion")
            self.assertEqual(len(r.json()["choices"]), 1)
        paths = sorted(c["path"] for c in self.sim_calls())
        self.assertIn("/v1/completions", paths)
        self.assertIn("/v1/embeddings", paths)


class WithFallback(unittest.TestCase):
    def test_a_batch_whose_route_fails_goes_to_the_fallback(self):
        sim_port, dead = free_port(), free_port()
        start(self, [binary("sy-sim"), "--port", str(sim_port), "--models", "e5,e5b",
                     "--quiet"], port=sim_port, name="sy-sim")
        gw = Gateway(self, {
            "backends": [{"name": "dead", "url": "http://127.0.0.1:%d/v1" % dead, "models": ["e5"]},
                         {"name": "sim", "url": "http://127.0.0.1:%d/v1" % sim_port,
                          "models": ["e5b"]}],
            "routes": [{"name": "emb", "models": ["e5"], "fallbacks": ["e5b"],
                        "retries": {"max": 0},
                        "batch": {"max_batch_size": 8, "max_wait_us": 20000}},
                       {"name": "emb2", "models": ["e5b"]}]})
        got = concurrently([lambda i=i: gw.post("/v1/embeddings",
                                                {"model": "e5", "input": ["t %d" % i]})
                            for i in range(4)])
        for r in got:
            self.assertEqual(r.status, 200, r.body)
            self.assertEqual(r.headers["x-switchyard-model"], "e5b")
        calls = request(sim_port, "GET", "/sim/requests").json()
        self.assertEqual(sum(len(c["body"]["input"]) for c in calls), 4)


class WithCache(BatchCase):
    """A route that caches and batches: a batched answer is stored, and the
    same request again is a hit that no batch waits for."""

    route_extra = {"cache": {}}

    def test_a_batched_answer_is_cached(self):
        got = concurrently([self.embed(texts(i, 1)) for i in range(4)])
        self.assertEqual([r.headers["x-switchyard-cache"] for r in got], ["miss"] * 4)
        calls = len(self.sim_calls("/v1/embeddings"))
        again = self.embed(texts(2, 1))()
        self.assertEqual(again.status, 200, again.body)
        self.assertEqual(again.headers["x-switchyard-cache"], "hit")
        self.assertEqual(again.json()["data"], got[2].json()["data"])
        self.assertEqual(len(self.sim_calls("/v1/embeddings")), calls)


class KServe(BatchCase):
    kind = "kserve"

    def test_kserve_batches_stack_the_inputs_in_one_tensor(self):
        inputs = [texts(i, 2) for i in range(4)]
        want = [self.gw.post("/v1/embeddings", {"model": MODEL, "input": t}).json()
                for t in inputs]
        self.reset_sim()
        got = concurrently([self.embed(t) for t in inputs])
        for i, r in enumerate(got):
            self.assertEqual(r.status, 200, r.body)
            self.assertEqual([d["embedding"] for d in r.json()["data"]],
                             [d["embedding"] for d in want[i]["data"]])
            self.assertEqual(r.json()["usage"]["prompt_tokens"], want[i]["usage"]["prompt_tokens"])
        calls = self.sim_calls()
        self.assertEqual(len(calls), 1)
        self.assertTrue(calls[0]["path"].endswith("/infer"))
        self.assertEqual(calls[0]["body"]["inputs"][0]["shape"], [8])


class ItemsPerInput(unittest.TestCase):
    """A batched embeddings answer must hold exactly one vector per input."""

    def test_several_vectors_per_input_are_a_bad_gateway_for_each_caller(self):
        def reply(path, headers, body):
            n = len(json.loads(body)["input"])
            data = [{"object": "embedding", "index": i, "embedding": [0.5, float(i)]}
                    for i in range(2 * n)]
            return (200, {"Content-Type": "application/json"},
                    [json.dumps({"object": "list", "data": data, "model": MODEL,
                                 "usage": {"prompt_tokens": n, "total_tokens": n}}).encode()], 0, False)
        backend = harness.ScriptedBackend(reply)
        self.addCleanup(backend.close)
        gw = Gateway(self, {"backends": [{"name": "b", "url": "http://127.0.0.1:%d/v1" % backend.port,
                                          "models": [MODEL]}],
                            "routes": [{"name": "emb", "models": [MODEL],
                                        "batch": {"max_batch_size": 8, "max_wait_us": 50000}}]})
        results = concurrently([lambda i=i: gw.post("/v1/embeddings", {"model": MODEL, "input": ["a%d" % i]})
                                for i in range(3)])
        for r in results:
            self.assertEqual(r.status, 502, r.body)
            self.assertEqual(r.json()["error"]["code"], "bad_gateway")


if __name__ == "__main__":
    harness.main()
