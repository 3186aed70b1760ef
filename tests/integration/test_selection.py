"""Model selection end to end: rules, weighted splits, cascades with
escalation (whole, streamed, Anthropic clients), cost_slo moving traffic
off a slowed model and back, and the context-window fallback, through
switchyard in front of sy-sim replicas serving a cheap and a strong model."""
import json
import os
import tempfile
import time
import unittest

import harness
from harness import binary, free_ports, request, start
from test_proxy import Gateway

PRICES = {"small": {"input": 0.1, "output": 0.2}, "big": {"input": 2.0, "output": 8.0}}
HARD = "please work through this long and difficult question step by step " * 3
EASY = "hi there"


def ask(content, model="auto", **kw):
    """A chat request without max_tokens: sy-sim ends it with "stop"."""
    body = {"model": model, "messages": [{"role": "user", "content": content}]}
    body.update(kw)
    return body


def text_of(events):
    """The assistant text of OpenAI stream events."""
    out = ""
    for e in events:
        if e["data"] and e["data"] != "[DONE]":
            for c in json.loads(e["data"]).get("choices", []):
                out += c.get("delta", {}).get("content") or ""
    return out


class Fleet(unittest.TestCase):
    """sy-sim: replica 0 serves "small" (prompts over 20 tokens end with
    finish_reason "length"), replica 1 serves "big"; both answer at once."""

    def setUp(self):
        self.sim_port = free_ports(2)
        d = tempfile.mkdtemp(prefix="sy-sel-")
        fleet = {"defaults": {"speed": 0},
                 "replicas": [{"port": self.sim_port, "models": ["small"], "hard_prompt_tokens": 20},
                              {"port": self.sim_port + 1, "models": ["big"]}]}
        path = os.path.join(d, "fleet.json")
        with open(path, "w") as f:
            json.dump(fleet, f)
        start(self, [binary("sy-sim"), "--config", path, "--quiet"], port=self.sim_port, name="sy-sim")
        harness.wait_port(self.sim_port + 1)

    def gateway(self, selection, backends=None, **top):
        b = backends or [{"name": "small0", "url": "http://127.0.0.1:%d/v1" % self.sim_port, "models": ["small"]},
                         {"name": "big0", "url": "http://127.0.0.1:%d/v1" % (self.sim_port + 1), "models": ["big"]}]
        route = {"name": "chat", "models": ["small", "big"], "aliases": {"auto": "small"},
                 "selection": selection, "retries": {"max": 0}}
        c = {"backends": b, "routes": [route], "prices": PRICES}
        c.update(top)
        return Gateway(self, c)

    def served(self, i):
        """Chat requests replica i received."""
        s = request(self.sim_port + i, "GET", "/sim/stats").json()
        return sum(s.get("by_path", {}).get("/v1/chat/completions", {}).values())

    def faults(self, i, f):
        self.assertEqual(request(self.sim_port + i, "POST", "/sim/faults", f).status, 200)

    def one_stream(self, port, path, body):
        """Streams body; checks the client got one whole stream; returns
        (headers, events, raw bytes)."""
        status, headers, events, raw = harness.stream_events(port, path, body)
        self.assertEqual(status, 200, raw)
        if path == "/v1/messages":
            kinds = [e["event"] for e in events]
            self.assertEqual((kinds.count("message_start"), kinds.count("message_stop")), (1, 1))
        else:
            self.assertEqual([e["data"] for e in events].count("[DONE]"), 1)
        return headers, events, raw

    def metric(self, gw, line_start):
        for line in request(gw.admin, "GET", "/metrics").body.decode().splitlines():
            if line.startswith(line_start):
                return float(line.rsplit(" ", 1)[1])
        return None


CASCADE = {"name": "cascade", "models": ["small", "big"], "on": ["length", "error"]}


class Cascade(Fleet):
    def test_an_easy_prompt_is_answered_by_the_cheap_model(self):
        gw = self.gateway(CASCADE)
        r = gw.post("/v1/chat/completions", ask(EASY))
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.headers["x-switchyard-model"], "small")
        self.assertEqual(r.json()["choices"][0]["finish_reason"], "stop")
        line = gw.log_lines(1)[-1]
        self.assertEqual((line["model"], line["select_reason"], line["escalated_from"]),
                         ("small", "cascade", None))
        self.assertEqual((self.served(0), self.served(1)), (1, 0))

    def test_a_hard_prompt_escalates_on_length_and_both_answers_are_accounted(self):
        gw = self.gateway(CASCADE)
        r = gw.post("/v1/chat/completions", ask(HARD))
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.headers["x-switchyard-model"], "big")
        self.assertEqual(r.json()["choices"][0]["finish_reason"], "stop")
        self.assertEqual((self.served(0), self.served(1)), (1, 1))
        line = gw.log_lines(1)[-1]
        self.assertEqual((line["model"], line["select_reason"], line["escalated_from"]),
                         ("big", "escalated:length", "small"))
        small = request(self.sim_port, "GET", "/sim/stats").json()
        big = request(self.sim_port + 1, "GET", "/sim/stats").json()
        self.assertEqual(line["prompt_tokens"], small["prompt_tokens"] + big["prompt_tokens"])
        self.assertEqual(line["completion_tokens"], small["completion_tokens"] + big["completion_tokens"])
        want = (small["prompt_tokens"] * 0.1 + small["completion_tokens"] * 0.2 +
                big["prompt_tokens"] * 2.0 + big["completion_tokens"] * 8.0) / 1e6
        self.assertAlmostEqual(line["cost_usd"], want, places=12)
        self.assertEqual(self.metric(gw, 'switchyard_escalations_total{route="chat"}'), 1)
        self.assertEqual(self.metric(gw, 'switchyard_tokens_total{route="chat",type="prompt"}'),
                         small["prompt_tokens"] + big["prompt_tokens"])
        # The endpoint that answered is charged with its own answer only.
        self.assertEqual(self.metric(gw, 'switchyard_endpoint_tokens_total{endpoint="big0",type="prompt"}'),
                         big["prompt_tokens"])

    def test_a_streamed_hard_prompt_is_held_then_the_client_gets_one_stream(self):
        gw = self.gateway(CASCADE)
        headers, events, _ = self.one_stream(gw.port, "/v1/chat/completions", ask(HARD, stream=True))
        self.assertEqual(headers["x-switchyard-model"], "big")
        finishes = [c["finish_reason"] for e in events if e["data"] and e["data"] != "[DONE]"
                    for c in json.loads(e["data"]).get("choices", []) if c.get("finish_reason")]
        self.assertEqual(finishes, ["stop"])
        whole = gw.post("/v1/chat/completions", ask(HARD)).json()
        self.assertEqual(text_of(events), whole["choices"][0]["message"]["content"])
        line = gw.log_lines(2)[0]
        self.assertEqual((line["stream"], line["select_reason"]), (True, "escalated:length"))
        self.assertIsNotNone(line["ttft_ms"])

    def test_a_streamed_easy_prompt_is_relayed_once_from_the_cheap_model(self):
        gw = self.gateway(CASCADE)
        headers, _, _ = self.one_stream(gw.port, "/v1/chat/completions", ask(EASY, stream=True))
        self.assertEqual(headers["x-switchyard-model"], "small")
        self.assertEqual((self.served(0), self.served(1)), (1, 0))
        self.assertEqual(gw.log_lines(1)[-1]["select_reason"], "cascade")

    def test_an_error_of_the_cheap_model_escalates(self):
        self.faults(0, {"error_rate": 1.0, "error_status": 503})
        gw = self.gateway(CASCADE)
        r = gw.post("/v1/chat/completions", ask(EASY))
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.headers["x-switchyard-model"], "big")
        line = gw.log_lines(1)[-1]
        self.assertEqual((line["select_reason"], line["error"]), ("escalated:error", None))

    def test_errors_are_final_when_the_check_is_off(self):
        self.faults(0, {"error_rate": 1.0, "error_status": 503})
        gw = self.gateway({"name": "cascade", "models": ["small", "big"], "on": ["length"]})
        r = gw.post("/v1/chat/completions", ask(EASY))
        self.assertEqual(r.status, 503)
        self.assertEqual(r.headers["x-switchyard-model"], "small")
        self.assertEqual(self.served(1), 0)

    def test_anthropic_clients_see_one_answer(self):
        gw = self.gateway(CASCADE)
        msg = {"model": "auto", "max_tokens": 300, "messages": [{"role": "user", "content": HARD}]}
        r = gw.post("/v1/messages", msg)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json()["type"], "message")
        self.assertEqual(r.headers["x-switchyard-model"], "big")
        msg["stream"] = True
        headers, _, _ = self.one_stream(gw.port, "/v1/messages", msg)
        self.assertEqual(headers["x-switchyard-model"], "big")
        self.assertEqual([l["select_reason"] for l in gw.log_lines(2)],
                         ["escalated:length", "escalated:length"])


def scripted_small(path, headers, body):
    """A cheap model whose answer follows the prompt: REFUSE, JSON, SHORT."""
    req = json.loads(body)
    prompt = req["messages"][-1]["content"]
    text = "a perfectly fine answer from the small model"
    if "REFUSE" in prompt:
        text = "I cannot help with that."
    elif "JSONOK" in prompt:
        text = '{"answer": 42}'
    elif "SHORT" in prompt:
        text = "ok"
    usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    if not req.get("stream"):
        out = {"id": "x", "object": "chat.completion", "model": "small",
               "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                            "finish_reason": "stop"}], "usage": usage}
        return 200, {"Content-Type": "application/json"}, [json.dumps(out).encode()], 0, False
    chunks = []
    for piece, fin in ((text[:5], None), (text[5:], "stop")):
        ev = {"id": "x", "object": "chat.completion.chunk", "model": "small",
              "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": fin}]}
        chunks.append(b"data: " + json.dumps(ev).encode() + b"\n\n")
    chunks.append(b"data: " + json.dumps({"id": "x", "object": "chat.completion.chunk", "model": "small",
                                          "choices": [], "usage": usage}).encode() + b"\n\n")
    chunks.append(b"data: [DONE]\n\n")
    if "LINGER" in prompt:
        chunks.append(3.0)	# the response ends 3 s after [DONE]
    return 200, {"Content-Type": "text/event-stream", "Transfer-Encoding": "chunked"}, chunks, 0, False


class CascadeChecks(Fleet):
    """The cheap model is a scripted backend; the strong one is sy-sim."""

    def setUp(self):
        super().setUp()
        self.small = harness.ScriptedBackend(scripted_small)
        self.addCleanup(self.small.close)
        backends = [{"name": "small0", "url": "http://127.0.0.1:%d/v1" % self.small.port, "models": ["small"]},
                    {"name": "big0", "url": "http://127.0.0.1:%d/v1" % (self.sim_port + 1), "models": ["big"]}]
        self.gw = self.gateway({"name": "cascade", "models": ["small", "big"],
                                "on": ["refusal", "invalid_json", "too_short"],
                                "refusal": "^I (cannot|can't|won't)", "min_chars": 10}, backends=backends)

    def test_a_held_stream_is_checked_at_its_last_event(self):
        # The backend lingers after [DONE]: the client is answered at once.
        t0 = time.time()
        headers, events, _ = self.one_stream(self.gw.port, "/v1/chat/completions",
                                             ask("LINGER please", stream=True))
        self.assertLess(time.time() - t0, 2.0)
        self.assertEqual(headers["x-switchyard-model"], "small")
        self.assertEqual(text_of(events), "a perfectly fine answer from the small model")
        t0 = time.time()
        headers, _, _ = self.one_stream(self.gw.port, "/v1/chat/completions",
                                        ask("LINGER SHORT", stream=True))
        self.assertLess(time.time() - t0, 2.0)
        self.assertEqual(headers["x-switchyard-model"], "big")

    def answer(self, body):
        r = self.gw.post("/v1/chat/completions", body)
        self.assertEqual(r.status, 200, r.body)
        line = self.gw.log_lines(len(self.small.received))[-1]
        return r.headers["x-switchyard-model"], line["select_reason"]

    def test_a_refusal_escalates(self):
        self.assertEqual(self.answer(ask("REFUSE this")), ("big", "escalated:refusal"))
        self.assertEqual(self.answer(ask("fine question")), ("small", "cascade"))

    def test_invalid_json_escalates_only_when_json_was_asked_for(self):
        fmt = {"type": "json_object"}
        self.assertEqual(self.answer(ask("prose", response_format=fmt)), ("big", "escalated:invalid_json"))
        self.assertEqual(self.answer(ask("JSONOK", response_format=fmt)), ("small", "cascade"))
        self.assertEqual(self.answer(ask("prose")), ("small", "cascade"))

    def test_a_too_short_answer_escalates(self):
        self.assertEqual(self.answer(ask("SHORT")), ("big", "escalated:too_short"))

    def test_a_streamed_refusal_is_never_shown_to_the_client(self):
        headers, _, raw = self.one_stream(self.gw.port, "/v1/chat/completions",
                                          ask("REFUSE this", stream=True))
        self.assertEqual(headers["x-switchyard-model"], "big")
        self.assertNotIn(b"cannot", raw)
        headers, events, _ = self.one_stream(self.gw.port, "/v1/chat/completions",
                                             ask("fine question", stream=True))
        self.assertEqual(headers["x-switchyard-model"], "small")
        self.assertEqual(text_of(events), "a perfectly fine answer from the small model")


class Rules(Fleet):
    RULES = {"name": "rules", "default": "small", "rules": [
        {"min_prompt_tokens": 40, "model": "big"},
        {"tools": True, "model": "big"},
        {"last_user": "^(prove|derive) ", "model": "big"},
        {"headers": {"x-tier": "^gold$"}, "model": "big"},
        {"min_messages": 3, "model": "big"}]}

    def pick(self, gw, body, headers=None):
        r = gw.post("/v1/chat/completions", body, headers=headers)
        self.assertEqual(r.status, 200, r.body)
        return r.headers["x-switchyard-model"], gw.log_lines(self.n + 1)[self.n]["select_reason"]

    def test_rules_pick_by_each_condition(self):
        gw = self.gateway(self.RULES)
        self.n = 0
        cases = [
            (ask(EASY), None, ("small", "default")),
            (ask("x" * 200), None, ("big", "rule:0")),
            (ask(EASY, tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}]),
             None, ("big", "rule:1")),
            (ask("prove that 2 is prime"), None, ("big", "rule:2")),
            (ask(EASY), {"X-Tier": "gold"}, ("big", "rule:3")),
            (ask(EASY), {"X-Tier": "silver"}, ("small", "default")),
            ({"model": "auto", "messages": [{"role": "user", "content": "a"},
                                            {"role": "assistant", "content": "b"},
                                            {"role": "user", "content": "c"}]}, None, ("big", "rule:4")),
        ]
        for body, headers, want in cases:
            self.assertEqual(self.pick(gw, body, headers), want, body)
            self.n += 1
        self.assertEqual(self.served(1), 5)


class Weighted(Fleet):
    def test_a_weighted_split_follows_its_weights(self):
        gw = self.gateway({"name": "weighted", "models": {"small": 3, "big": 1}})
        models = [gw.post("/v1/chat/completions", ask(EASY)).headers["x-switchyard-model"]
                  for _ in range(40)]
        self.assertEqual((models.count("small"), models.count("big")), (30, 10))
        self.assertEqual((self.served(0), self.served(1)), (30, 10))

    def test_a_sticky_split_keeps_each_session_on_its_model(self):
        gw = self.gateway({"name": "weighted", "models": {"small": 1, "big": 1}, "sticky": "header"})
        seen = set()
        for s in range(12):
            got = {gw.post("/v1/chat/completions", ask(EASY),
                           headers={"X-Session-Id": "s%d" % s}).headers["x-switchyard-model"]
                   for _ in range(3)}
            self.assertEqual(len(got), 1, "session s%d moved" % s)
            seen |= got
        self.assertEqual(seen, {"small", "big"})
        self.assertEqual(gw.log_lines(36)[-1]["select_reason"], "sticky")

    def test_a_sticky_split_by_user(self):
        gw = self.gateway({"name": "weighted", "models": {"small": 1, "big": 1}, "sticky": "user"})
        for u in ("ann", "bob", "cy"):
            got = {gw.post("/v1/chat/completions", ask(EASY, user=u)).headers["x-switchyard-model"]
                   for _ in range(3)}
            self.assertEqual(len(got), 1)


class CascadeLimits(Fleet):
    def test_a_stronger_model_the_prompt_does_not_fit_is_skipped(self):
        # big's window is too small for the prompt: small's answer stands,
        # once (a cascade only goes forward, never back to small).
        gw = self.gateway(dict(CASCADE, models=["small", "big"]),
                          models={"small": {"context_length": 100000},
                                  "big": {"context_length": 40}})
        r = gw.post("/v1/chat/completions", ask(HARD))
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.headers["x-switchyard-model"], "small")
        self.assertEqual(r.json()["choices"][0]["finish_reason"], "length")
        self.assertEqual((self.served(0), self.served(1)), (1, 0))
        line = gw.log_lines(1)[-1]
        self.assertEqual((line["select_reason"], line["escalated_from"]), ("cascade", None))

    def test_length_at_the_clients_own_max_tokens_does_not_escalate(self):
        gw = self.gateway(CASCADE)
        r = gw.post("/v1/chat/completions", ask(EASY, max_tokens=3))
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json()["choices"][0]["finish_reason"], "length")
        self.assertEqual(r.json()["usage"]["completion_tokens"], 3)
        self.assertEqual(r.headers["x-switchyard-model"], "small")
        self.assertEqual((self.served(0), self.served(1)), (1, 0))


class CostSlo(Fleet):
    def test_traffic_leaves_a_slowed_cheap_model_and_comes_back_when_it_recovers(self):
        gw = self.gateway({"name": "cost_slo", "p95_latency_ms": 100, "window_ms": 1500,
                           "probe_every": 4})
        reasons = []

        def go(n):
            for _ in range(n):
                r = gw.post("/v1/chat/completions", ask(EASY))
                self.assertEqual(r.status, 200, r.body)
            lines = gw.log_lines(len(reasons) + n)
            reasons.extend(l["select_reason"] for l in lines[len(reasons):])
            return reasons[-n:]

        self.assertEqual(go(3), ["slo-ok:small"] * 3)
        self.faults(0, {"stall_ms": 250})
        first = go(1)
        self.assertEqual(first, ["slo-ok:small"])		# measured slow here
        slowed = go(8)
        self.assertEqual(slowed.count("slo-miss:big"), 6)
        self.assertEqual(slowed.count("probe:small"), 2)
        self.faults(0, {"stall_ms": 0})
        deadline = time.time() + 8
        while time.time() < deadline and go(1) != ["slo-ok:small"]:
            time.sleep(0.05)
        self.assertEqual(go(3), ["slo-ok:small"] * 3)


    def test_a_cheap_model_that_fails_is_left_for_the_next(self):
        dead = free_ports(1)	# nothing listens there
        gw = self.gateway({"name": "cost_slo", "p95_latency_ms": 2000, "probe_every": 0},
                          backends=[{"name": "small0", "url": "http://127.0.0.1:%d/v1" % dead,
                                     "models": ["small"]},
                                    {"name": "big0", "url": "http://127.0.0.1:%d/v1" % (self.sim_port + 1),
                                     "models": ["big"]}])
        codes = [gw.post("/v1/chat/completions", ask(EASY)).status for _ in range(10)]
        self.assertEqual(codes[0], 502)		# the first try learns it
        self.assertEqual(codes[1:], [200] * 9)
        reasons = [l["select_reason"] for l in gw.log_lines(10)]
        self.assertEqual(reasons[1:], ["slo-miss:big"] * 9)


class ContextWindow(Fleet):
    MODELS = {"small": {"context_length": 50}, "big": {"context_length": 4000}}

    def test_an_overflowing_prompt_goes_to_the_larger_window(self):
        gw = self.gateway("alias", models=self.MODELS)
        r = gw.post("/v1/chat/completions", ask("word " * 60))
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.headers["x-switchyard-model"], "big")
        self.assertEqual(gw.log_lines(1)[-1]["select_reason"], "context:overflow")
        r = gw.post("/v1/chat/completions", ask(EASY, max_tokens=100))
        self.assertEqual(r.headers["x-switchyard-model"], "big")
        r = gw.post("/v1/chat/completions", ask(EASY))
        self.assertEqual(r.headers["x-switchyard-model"], "small")
        self.assertEqual(gw.log_lines(3)[-1]["select_reason"], "alias")

    def test_a_prompt_no_model_fits_gets_400_in_the_clients_shape(self):
        gw = self.gateway("alias", models=self.MODELS)
        r = gw.post("/v1/chat/completions", ask("word " * 4000))
        self.assertEqual(r.status, 400)
        self.assertEqual(r.json()["error"]["code"], "context_length_exceeded")
        r = gw.post("/v1/messages", {"model": "auto", "max_tokens": 10,
                                     "messages": [{"role": "user", "content": "word " * 4000}]})
        self.assertEqual(r.status, 400)
        self.assertEqual(r.json()["type"], "error")
        self.assertEqual((self.served(0), self.served(1)), (0, 0))


if __name__ == "__main__":
    harness.main()
