"""Tenants end to end: API keys (hashes in the config), what a key may
use, rate limits and budgets that hold across two gateway instances sharing
one real redis-server, the headers that tell clients their limits, Redis
going away (fail open, fail closed, never a hang), a stream cut by its
client still charged, and prompt-cache entries kept per team."""
import hashlib
import json
import socket
import threading
import time
import unittest

import harness
from harness import RedisServer, binary, concurrently, free_ports, post_json, request, start
from test_proxy import Gateway

MODEL = "m"
ALICE = "sk-alice-0123456789"		# team research
BOB = "sk-bob-9876543210"		# team sales
CAROL = "sk-carol-expired"		# expired


def sha(key):
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def chat(content="hello", max_tokens=8, **kw):
    body = {"model": MODEL, "messages": [{"role": "user", "content": content}],
            "max_tokens": max_tokens}
    body.update(kw)
    return body


def bearer(key):
    return {"Authorization": "Bearer " + key}


class TenantCase(unittest.TestCase):
    """sy-sim replicas answering at once, a redis-server, gateways in front."""
    redis = True

    def setUp(self):
        self.sim_port = free_ports(2)
        start(self, [binary("sy-sim"), "--port", str(self.sim_port), "--replicas", "2",
                     "--speed", "0", "--output-tokens", "fixed:8", "--quiet"],
              port=self.sim_port, name="sy-sim")
        harness.wait_port(self.sim_port + 1)
        self.rs = RedisServer(self) if self.redis else None

    def config(self, keys=None, teams=None, route=None, **top):
        r = {"name": "chat", "models": [MODEL]}
        r.update(route or {})
        cfg = {"backends": [{"name": "s%d" % i, "url": "http://127.0.0.1:%d/v1" % (self.sim_port + i)}
                            for i in range(2)],
               "routes": [r, {"name": "other", "models": ["x"]}],
               "prices": {MODEL: {"input": 1.0, "output": 2.0}},
               "auth": "keys",
               "keys": keys if keys is not None else [
                   {"id": "alice", "hash": sha(ALICE), "team": "research",
                    "metadata": {"env": "dev"}},
                   {"id": "bob", "hash": sha(BOB), "team": "sales", "models": ["m"],
                    "routes": ["chat"]},
                   {"id": "carol", "hash": sha(CAROL), "expires": "2020-01-01T00:00:00Z"}],
               "teams": teams or {"research": {}, "sales": {}}}
        if self.rs is not None:
            cfg["redis"] = {"port": self.rs.port, "command_timeout_ms": 100}
        cfg.update(top)
        return cfg

    def gateway(self, **kw):
        return Gateway(self, self.config(**kw))


class Keys(TenantCase):
    redis = False

    def test_no_key_and_a_wrong_key_get_401_in_openai_shape(self):
        gw = self.gateway()
        for headers in ({}, bearer("garbage")):
            r = gw.post("/v1/chat/completions", chat(), headers=headers)
            self.assertEqual(r.status, 401)
            self.assertIn(r.json()["error"]["code"], ("missing_api_key", "invalid_api_key"))
            self.assertEqual(r.headers["www-authenticate"], "Bearer")

    def test_a_configured_key_is_served_and_logged_by_id_never_by_key(self):
        gw = self.gateway()
        r = gw.post("/v1/chat/completions", chat(), headers=bearer(ALICE))
        self.assertEqual(r.status, 200, r.body)
        line = gw.log_lines(1)[-1]
        self.assertEqual((line["key_id"], line["team"]), ("alice", "research"))
        with open(gw.log_path) as f:
            log = f.read()
        self.assertNotIn(ALICE, log)
        self.assertNotIn(hashlib.sha256(ALICE.encode()).hexdigest(), log)
        stats = request(gw.admin, "GET", "/admin/stats").body.decode()
        self.assertNotIn(ALICE, stats)

    def test_anthropic_clients_use_x_api_key_and_get_their_own_401(self):
        gw = self.gateway()
        hdr = {"anthropic-version": "2023-06-01"}
        r = gw.post("/v1/messages", {"model": MODEL, "max_tokens": 8,
                                     "messages": [{"role": "user", "content": "hi"}]},
                    headers=dict(hdr, **{"x-api-key": BOB}))
        self.assertEqual(r.status, 200, r.body)
        r = gw.post("/v1/messages", {"model": MODEL, "max_tokens": 8,
                                     "messages": [{"role": "user", "content": "hi"}]},
                    headers=dict(hdr, **{"x-api-key": "nope"}))
        self.assertEqual(r.status, 401)
        self.assertEqual(r.json()["type"], "error")
        self.assertEqual(r.json()["error"]["type"], "authentication_error")

    def test_an_expired_key_gets_401(self):
        r = self.gateway().post("/v1/chat/completions", chat(), headers=bearer(CAROL))
        self.assertEqual(r.status, 401)
        self.assertEqual(r.json()["error"]["code"], "expired_api_key")

    def test_a_key_may_not_use_a_route_or_model_it_is_not_given(self):
        gw = self.gateway()
        r = gw.post("/v1/chat/completions", chat(model="x"), headers=bearer(BOB))
        self.assertEqual(r.status, 403)
        self.assertEqual(r.json()["error"]["code"], "route_not_allowed")
        gw2 = self.gateway(keys=[{"id": "bob", "hash": sha(BOB), "models": ["other-*"]}], teams={})
        r = gw2.post("/v1/chat/completions", chat(), headers=bearer(BOB))
        self.assertEqual(r.status, 403)
        self.assertEqual(r.json()["error"]["code"], "model_not_allowed")

    def test_auth_none_keeps_the_gateway_open(self):
        gw = Gateway(self, {"backends": [{"name": "s", "url": "http://127.0.0.1:%d/v1" % self.sim_port}],
                            "routes": [{"name": "chat", "models": [MODEL]}]})
        self.assertEqual(gw.post("/v1/chat/completions", chat()).status, 200)

    def test_a_bad_key_object_is_a_config_error_at_its_path(self):
        cfg = self.config(keys=[{"id": "a", "hash": "sha256:beef"}])
        p = harness.Proc([binary("switchyard"), "-t", "-c", self._write(cfg)])
        p.p.wait(10)
        self.assertNotEqual(p.p.returncode, 0)
        self.assertIn("keys[0].hash", p.output())

    def _write(self, cfg):
        import os, tempfile
        fd, path = tempfile.mkstemp(suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump(cfg, f)
        self.addCleanup(os.unlink, path)
        return path


class RateLimits(TenantCase):
    redis = False

    def test_over_the_requests_limit_is_429_with_retry_after_and_the_headers(self):
        gw = self.gateway(keys=[{"id": "alice", "hash": sha(ALICE),
                                 "rate_limits": [{"requests": 3, "window_s": 3600}]}], teams={})
        seen = []
        for _ in range(3):
            r = gw.post("/v1/chat/completions", chat(), headers=bearer(ALICE))
            self.assertEqual(r.status, 200, r.body)
            seen.append(int(r.headers["x-ratelimit-remaining-requests"]))
            self.assertEqual(r.headers["x-ratelimit-limit-requests"], "3")
        self.assertEqual(seen, [2, 1, 0])
        r = gw.post("/v1/chat/completions", chat(), headers=bearer(ALICE))
        self.assertEqual(r.status, 429)
        self.assertEqual(r.json()["error"]["code"], "rate_limit_exceeded")
        self.assertGreaterEqual(int(r.headers["retry-after"]), 1)
        self.assertTrue(r.headers["x-ratelimit-reset-requests"].endswith("s"))

    def test_anthropic_clients_get_anthropic_ratelimit_headers(self):
        gw = self.gateway(keys=[{"id": "alice", "hash": sha(ALICE),
                                 "rate_limits": [{"tokens": 100000, "window_s": 60}]}], teams={})
        r = gw.post("/v1/messages", {"model": MODEL, "max_tokens": 8,
                                     "messages": [{"role": "user", "content": "hi"}]},
                    headers={"x-api-key": ALICE, "anthropic-version": "2023-06-01"})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.headers["anthropic-ratelimit-tokens-limit"], "100000")
        self.assertLess(int(r.headers["anthropic-ratelimit-tokens-remaining"]), 100000)
        self.assertTrue(r.headers["anthropic-ratelimit-tokens-reset"].endswith("Z"))

    def test_a_team_limit_is_shared_by_its_keys(self):
        gw = self.gateway(keys=[{"id": "a1", "hash": sha(ALICE), "team": "t"},
                                {"id": "a2", "hash": sha(BOB), "team": "t"}],
                          teams={"t": {"rate_limits": [{"requests": 2, "window_s": 3600}]}})
        self.assertEqual(gw.post("/v1/chat/completions", chat(), headers=bearer(ALICE)).status, 200)
        self.assertEqual(gw.post("/v1/chat/completions", chat(), headers=bearer(BOB)).status, 200)
        r = gw.post("/v1/chat/completions", chat(), headers=bearer(BOB))
        self.assertEqual(r.status, 429)
        self.assertIn("team", r.json()["error"]["message"])

    def test_tokens_are_settled_with_what_the_backend_reported(self):
        # The backend answers 8 tokens whatever max_tokens asks for.
        answer = json.dumps({"id": "c", "object": "chat.completion", "created": 1, "model": MODEL,
                             "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                                          "finish_reason": "stop"}],
                             "usage": {"prompt_tokens": 5, "completion_tokens": 8,
                                       "total_tokens": 13}}).encode()
        backend = harness.ScriptedBackend(lambda p, h, b: (200, {"Content-Type": "application/json"},
                                                           [answer], 0, False))
        self.addCleanup(backend.close)
        cfg = self.config(keys=[{"id": "alice", "hash": sha(ALICE),
                                 "rate_limits": [{"tokens": 1200, "window_s": 3600}]}], teams={})
        cfg["backends"] = [{"name": "b", "url": "http://127.0.0.1:%d/v1" % backend.port}]
        # One worker: a request is settled just after its answer is sent,
        # and the next one must not come first through another worker.
        cfg["workers"] = 1
        gw = Gateway(self, cfg)
        ok = 0
        for _ in range(20):
            r = gw.post("/v1/chat/completions", chat(max_tokens=500), headers=bearer(ALICE))
            self.assertEqual(r.status, 200, r.body)
            ok += 1
        # Each reserves ~520 tokens and is settled to the 13 it took: the
        # limit admits all 20 (without settling it would admit 2).
        self.assertEqual(ok, 20)
        remaining = int(r.headers["x-ratelimit-remaining-tokens"])
        # What is left: 19 settled requests and the last one's reservation.
        self.assertEqual(remaining, 1200 - 19 * 13 - (500 + (len(json.dumps(chat(max_tokens=500))) + 3) // 4))

    def test_a_budget_spent_is_429_insufficient_quota(self):
        # $1 and $2 per 1M tokens: a request of ~10 prompt and 8 output
        # tokens costs about $26e-6; a budget of $100e-6 admits a few.
        gw = self.gateway(keys=[{"id": "alice", "hash": sha(ALICE),
                                 "budget": {"usd": 0.0001, "period": "day"}}], teams={})
        statuses = [gw.post("/v1/chat/completions", chat(max_tokens=8), headers=bearer(ALICE)).status
                    for _ in range(12)]
        self.assertIn(200, statuses)
        self.assertEqual(statuses[-1], 429)
        r = gw.post("/v1/chat/completions", chat(max_tokens=8), headers=bearer(ALICE))
        self.assertEqual(r.json()["error"]["type"], "insufficient_quota")
        # An Anthropic client is told in its own terms: a billing error.
        r = gw.post("/v1/messages", {"model": MODEL, "max_tokens": 8,
                                     "messages": [{"role": "user", "content": "hi"}]},
                    headers={"x-api-key": ALICE, "anthropic-version": "2023-06-01"})
        self.assertEqual(r.status, 429)
        self.assertEqual(r.json()["type"], "error")
        self.assertEqual(r.json()["error"]["type"], "billing_error")
        self.assertIn("budget", r.json()["error"]["message"])
        m = request(gw.admin, "GET", "/metrics").body.decode()
        self.assertIn('switchyard_limit_decisions_total{result="budget_spent"} %d'
                      % (statuses.count(429) + 2), m)
        self.assertIn('switchyard_limit_decisions_total{result="admitted"} %d' % statuses.count(200), m)

    def test_a_budget_past_its_soft_mark_is_logged_and_counted(self):
        gw = self.gateway(keys=[{"id": "alice", "hash": sha(ALICE),
                                 "budget": {"usd": 1, "soft_usd": 0.0001, "period": "day"}}],
                          teams={})
        # About $20e-6 a request: the soft mark is passed after the fourth.
        statuses = [gw.post("/v1/chat/completions", chat(max_tokens=8), headers=bearer(ALICE)).status
                    for _ in range(7)]
        self.assertEqual(statuses, [200] * 7)
        m = request(gw.admin, "GET", "/metrics").body.decode()
        self.assertRegex(m, r'switchyard_limit_decisions_total\{result="past_soft_budget"\} [1-5]\n')
        self.assertIn("past its soft mark", gw.proc.output())

    def test_a_route_limit_counts_every_key(self):
        gw = self.gateway(route={"rate_limits": [{"requests": 2, "window_s": 3600}]})
        self.assertEqual(gw.post("/v1/chat/completions", chat(), headers=bearer(ALICE)).status, 200)
        self.assertEqual(gw.post("/v1/chat/completions", chat(), headers=bearer(BOB)).status, 200)
        self.assertEqual(gw.post("/v1/chat/completions", chat(), headers=bearer(ALICE)).status, 429)


class AcrossInstances(TenantCase):
    """Two gateways sharing one Redis count together."""

    def test_two_instances_admit_the_limit_and_no_more(self):
        # The figures: 600 requests and 20,000 tokens a minute;
        # one clock minute must hold the whole run.
        if 60 - time.time() % 60 < 25:
            time.sleep(60 - time.time() % 60 + 0.2)
        limit_req, limit_tok = 600, 20000
        body = chat(content="word " * 40, max_tokens=16)
        est = len(json.dumps(body)) // 4 + 1 + 16	# what one request reserves
        keys = [{"id": "alice", "hash": sha(ALICE),
                 "rate_limits": [{"requests": limit_req, "window_s": 60},
                                 {"tokens": limit_tok, "window_s": 60}]},
                {"id": "bob", "hash": sha(BOB),
                 "rate_limits": [{"requests": limit_req, "window_s": 60}],
                 "budget": {"usd": 0.02, "period": "day"}}]
        gws = [self.gateway(keys=keys, teams={}) for _ in range(2)]
        results = {ALICE: [], BOB: []}
        lock = threading.Lock()

        def client(i, key, n):
            gw = gws[i % 2]
            for _ in range(n):
                r = gw.post("/v1/chat/completions", body, headers=bearer(key))
                with lock:
                    results[key].append(r)
        # Alice: tokens bind (about 400 requests of ~50 tokens); Bob: the
        # budget ($0.02 at $1/$2 per 1M: about 350 requests).
        threads = [threading.Thread(target=client, args=(i, ALICE, 70)) for i in range(8)]
        threads += [threading.Thread(target=client, args=(i, BOB, 60)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        ok = [r for r in results[ALICE] if r.status == 200]
        refused = [r for r in results[ALICE] if r.status == 429]
        self.assertEqual(len(ok) + len(refused), len(results[ALICE]))
        self.assertLessEqual(len(ok), limit_req)
        tokens = sum(r.json()["usage"]["total_tokens"] for r in ok)
        # Each request reserves its estimate: at most one estimate over.
        self.assertLessEqual(tokens, limit_tok + est)
        self.assertGreater(tokens, limit_tok - 2 * est)
        self.assertGreater(len(refused), 0)
        used = int(self.rs.command("GET", self.counter("requests", 60)))
        self.assertEqual(used, len(ok))
        ok = [r for r in results[BOB] if r.status == 200]
        spent = [r for r in results[BOB] if r.status == 429]
        self.assertGreater(len(spent), 0)
        self.assertEqual({r.json()["error"]["code"] for r in spent}, {"insufficient_quota"})
        usd = sum(r.json()["usage"]["prompt_tokens"] * 1e-6 + r.json()["usage"]["completion_tokens"] * 2e-6
                  for r in ok)
        self.assertLessEqual(usd, 0.02 + est * 2e-6)
        self.assertGreater(usd, 0.02 - 2 * est * 2e-6)

    def counter(self, kind, window):
        return "sy:rl:key:alice:%s:%d:%d" % (kind, window, int(time.time()) // window)

    def test_redis_away_fail_open_each_instance_takes_its_share(self):
        keys = [{"id": "alice", "hash": sha(ALICE), "rate_limits": [{"requests": 4, "window_s": 3600}]}]
        gw = self.gateway(keys=keys, teams={}, tenancy={"instances": 2})
        self.rs.kill()
        t0 = time.time()
        statuses = [gw.post("/v1/chat/completions", chat(), headers=bearer(ALICE)).status for _ in range(4)]
        self.assertLess(time.time() - t0, 5)
        self.assertEqual(statuses, [200, 200, 429, 429])

    def test_redis_away_fail_closed_is_503(self):
        keys = [{"id": "alice", "hash": sha(ALICE), "rate_limits": [{"requests": 4, "window_s": 3600}]}]
        gw = self.gateway(keys=keys, teams={}, route={"limits_fail": "closed"})
        self.rs.kill()
        r = gw.post("/v1/chat/completions", chat(), headers=bearer(ALICE))
        self.assertEqual(r.status, 503)
        self.assertEqual(r.json()["error"]["code"], "rate_limiter_unavailable")

    def test_a_paused_redis_costs_the_command_timeout_not_a_hang(self):
        keys = [{"id": "alice", "hash": sha(ALICE), "rate_limits": [{"requests": 100, "window_s": 3600}]}]
        gw = self.gateway(keys=keys, teams={})
        self.assertEqual(gw.post("/v1/chat/completions", chat(), headers=bearer(ALICE)).status, 200)
        self.rs.pause()
        try:
            t0 = time.time()
            r = gw.post("/v1/chat/completions", chat(), headers=bearer(ALICE), timeout=10)
            self.assertEqual(r.status, 200)
            self.assertLess(time.time() - t0, 2.0)
        finally:
            self.rs.resume()

    def under_load(self, gw, seconds, during):
        """4 clients for seconds while during() runs; (statuses, slowest s)."""
        statuses, slowest = [], [0.0]
        stop = threading.Event()

        def client():
            while not stop.is_set():
                t = time.time()
                statuses.append(gw.post("/v1/chat/completions", chat(), headers=bearer(ALICE),
                                        timeout=10).status)
                slowest[0] = max(slowest[0], time.time() - t)
        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.3)
        during()
        time.sleep(seconds)
        stop.set()
        for t in threads:
            t.join(30)
        return statuses, slowest[0]

    def kill_and_restart(self):
        self.rs.kill()
        time.sleep(0.7)
        self.rs.start()

    def test_redis_killed_and_restarted_under_load_fail_open_serves_every_request(self):
        keys = [{"id": "alice", "hash": sha(ALICE), "rate_limits": [{"requests": 100000, "window_s": 3600}]}]
        gw = self.gateway(keys=keys, teams={})
        statuses, slowest = self.under_load(gw, 1.0, self.kill_and_restart)
        self.assertGreater(len(statuses), 20)
        self.assertEqual(set(statuses), {200})
        self.assertLess(slowest, 1.0)
        m = request(gw.admin, "GET", "/metrics").body.decode()
        self.assertRegex(m, r'switchyard_limit_decisions_total\{result="in_memory"\} [1-9]')
        self.assertRegex(m, r'switchyard_limit_decisions_total\{result="admitted"\} [1-9]')
        # Back to counting in the new Redis.
        deadline = time.time() + 5
        while time.time() < deadline and not self.rs.command("GET", self.counter("requests", 3600)):
            gw.post("/v1/chat/completions", chat(), headers=bearer(ALICE))
            time.sleep(0.1)
        self.assertGreater(int(self.rs.command("GET", self.counter("requests", 3600)) or 0), 0)

    def test_redis_killed_and_restarted_under_load_fail_closed_is_503_then_200(self):
        keys = [{"id": "alice", "hash": sha(ALICE), "rate_limits": [{"requests": 100000, "window_s": 3600}]}]
        gw = self.gateway(keys=keys, teams={}, tenancy={"fail": "closed"})
        statuses, slowest = self.under_load(gw, 1.5, self.kill_and_restart)
        self.assertEqual(set(statuses), {200, 503})
        self.assertLess(slowest, 1.0)
        self.assertEqual(statuses[-1], 200)
        m = request(gw.admin, "GET", "/metrics").body.decode()
        self.assertIn('switchyard_requests_total{route="chat",code="503"}', m)
        self.assertRegex(m, r'switchyard_limit_decisions_total\{result="unavailable"\} [1-9]')
        self.assertIn('switchyard_limit_decisions_total{result="in_memory"} 0', m)

    def test_a_stream_its_client_cuts_is_still_charged(self):
        keys = [{"id": "alice", "hash": sha(ALICE), "rate_limits": [{"tokens": 100000, "window_s": 3600}]}]
        gw = self.gateway(keys=keys, teams={})
        s = socket.create_connection(("127.0.0.1", gw.port))
        body = json.dumps(chat(max_tokens=5000, stream=True)).encode()
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Authorization: Bearer " + ALICE.encode() + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        s.recv(4096)
        s.close()
        line = gw.log_lines(1)[-1]
        key = "sy:rl:key:alice:tokens:3600:%d" % (int(time.time()) // 3600)
        deadline = time.time() + 3
        while time.time() < deadline:
            charged = int(self.rs.command("GET", key) or 0)
            if charged < 5000:
                break
            time.sleep(0.05)
        # The reservation (5000 and the prompt) is settled to what was sent.
        self.assertLess(charged, 5000)
        self.assertGreater(charged, 0)
        self.assertEqual(line["key_id"], "alice")


class TeamSeries(TenantCase):
    redis = False

    def usage(self, gw):
        for key in (ALICE, ALICE, BOB):
            self.assertEqual(gw.post("/v1/chat/completions", chat(), headers=bearer(key)).status, 200)
        # Bob may not use the route "other".
        self.assertEqual(gw.post("/v1/chat/completions", chat(model="x"), headers=bearer(BOB)).status,
                         403)
        gw.log_lines(4)
        # The last request is counted once its exchange has ended.
        deadline = time.time() + 3
        while time.time() < deadline:
            m = request(gw.admin, "GET", "/metrics").body.decode()
            if 'code="403"' in m:
                break
            time.sleep(0.05)
        return (m, request(gw.admin, "GET", "/admin/stats").json())

    def test_metrics_and_stats_count_each_team(self):
        metrics, stats = self.usage(self.gateway())
        self.assertIn('switchyard_team_requests_total{team="research",code="200"} 2', metrics)
        self.assertIn('switchyard_team_requests_total{team="sales",code="200"} 1', metrics)
        self.assertIn('switchyard_team_requests_total{team="sales",code="403"} 1', metrics)
        self.assertIn('switchyard_team_tokens_total{team="research",type="completion"} 16', metrics)
        self.assertNotIn("switchyard_key_requests_total", metrics)
        self.assertEqual(stats["teams"]["research"]["requests"], 2)
        self.assertEqual(stats["teams"]["sales"]["errors"], 1)
        self.assertGreater(stats["teams"]["research"]["cost_usd"], 0)
        self.assertNotIn("keys", stats)

    def test_series_per_key_only_when_configured(self):
        metrics, stats = self.usage(self.gateway(tenancy={"metrics_per_key": True}))
        self.assertIn('switchyard_key_requests_total{key="alice",code="200"} 2', metrics)
        self.assertIn('switchyard_key_requests_total{key="bob",code="403"} 1', metrics)
        self.assertEqual(stats["keys"]["alice"]["tokens"]["completion"], 16)
        for secret in (ALICE, BOB):
            self.assertNotIn(secret, metrics)
            self.assertNotIn(secret, json.dumps(stats))


class AdminKeys(TenantCase):
    """Dynamic keys made through one instance's admin API, seen by both."""

    def admin(self, gw, method, path, body=None):
        return request(gw.admin, method, path, body)

    def status_within(self, gw, key, status, seconds):
        """Seconds until a request with key gets status (None: not within)."""
        t0 = time.time()
        while time.time() - t0 <= seconds:
            if gw.post("/v1/chat/completions", chat(), headers=bearer(key)).status == status:
                return time.time() - t0
            time.sleep(0.02)
        return None

    def test_a_key_made_on_one_instance_works_on_both_and_its_revocation_within_a_second(self):
        gws = [self.gateway(), self.gateway()]
        r = self.admin(gws[0], "POST", "/admin/keys",
                       {"id": "dave", "team": "research", "models": [MODEL],
                        "rate_limits": [{"requests": 100, "window_s": 60}]})
        self.assertEqual(r.status, 201, r.body)
        made = r.json()
        key = made["key"]
        self.assertTrue(key.startswith("sk-sy-"), key)
        self.assertEqual(made["hash"], sha(key))
        self.assertEqual(made["source"], "redis")
        for gw in gws:
            r = gw.post("/v1/chat/completions", chat(), headers=bearer(key))
            self.assertEqual(r.status, 200, r.body)
        self.assertEqual(gws[1].log_lines(1)[-1]["key_id"], "dave")
        # Listed (without the key) with the keys of the file.
        listed = self.admin(gws[1], "GET", "/admin/keys").json()["data"]
        self.assertEqual({(k["id"], k["source"]) for k in listed},
                         {("alice", "config"), ("bob", "config"), ("carol", "config"),
                          ("dave", "redis")})
        self.assertNotIn(key, json.dumps(listed))
        one = self.admin(gws[1], "GET", "/admin/keys/dave").json()
        self.assertEqual(one["rate_limits"], [{"requests": 100, "window_s": 60}])
        # Revoked on one instance: both refuse it within a second.
        r = self.admin(gws[0], "DELETE", "/admin/keys/dave")
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json()["deleted"], True)
        t0 = time.time()
        for gw in gws:
            took = self.status_within(gw, key, 401, 1.0 - (time.time() - t0))
            self.assertIsNotNone(took, "the revoked key still worked after 1 s")
        self.assertEqual(self.admin(gws[1], "GET", "/admin/keys/dave").status, 404)
        self.assertEqual(self.admin(gws[1], "DELETE", "/admin/keys/dave").status, 404)

    def test_a_changed_key_is_in_force_on_both_instances_within_a_second(self):
        gws = [self.gateway(), self.gateway()]
        key = self.admin(gws[0], "POST", "/admin/keys", {"id": "erin"}).json()["key"]
        for gw in gws:
            self.assertEqual(gw.post("/v1/chat/completions", chat(), headers=bearer(key)).status, 200)
        r = self.admin(gws[1], "PATCH", "/admin/keys/erin", {"models": ["other-*"], "name": "Erin"})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json()["models"], ["other-*"])
        self.assertEqual(r.json()["hash"], sha(key))
        for gw in gws:
            self.assertIsNotNone(self.status_within(gw, key, 403, 1.0))
        r = self.admin(gws[0], "PATCH", "/admin/keys/erin", {"models": None})
        self.assertNotIn("models", r.json())
        self.assertEqual(r.json()["name"], "Erin")

    def test_bad_admin_requests_get_clear_errors(self):
        gw = self.gateway()
        cases = [
            ("POST", "/admin/keys", b"{not json", 400, "invalid_json"),
            ("POST", "/admin/keys", {"id": "x", "hash": sha("k")}, 400, "invalid_key"),
            ("POST", "/admin/keys", {"id": "x", "colour": "red"}, 400, "invalid_key"),
            ("POST", "/admin/keys", {"id": "x", "team": "nobody"}, 400, "invalid_key"),
            ("POST", "/admin/keys", {"id": "bad id!"}, 400, "invalid_key"),
            ("POST", "/admin/keys", {"id": "x", "rate_limits": [{"requests": 1}]}, 400, "invalid_key"),
            ("POST", "/admin/keys", {"id": "alice"}, 409, "key_exists"),
            ("PATCH", "/admin/keys/alice", {"name": "A"}, 409, "key_in_config"),
            ("DELETE", "/admin/keys/bob", None, 409, "key_in_config"),
            ("PATCH", "/admin/keys/nobody", {"name": "A"}, 404, "key_not_found"),
            ("PATCH", "/admin/keys/x", {"hash": sha("k")}, 400, "invalid_key"),
            ("PUT", "/admin/keys", {}, 405, "method_not_allowed"),
            ("GET", "/admin/usage?days=0", None, 400, "invalid_window"),
            ("GET", "/admin/usage?from=2026-13-01", None, 400, "invalid_window"),
        ]
        for method, path, body, status, code in cases:
            r = self.admin(gw, method, path, body)
            self.assertEqual(r.status, status, (method, path, body, r.body))
            self.assertEqual(r.json()["error"]["code"], code, (method, path, r.body))
        self.assertIn("rate_limits[0]", self.admin(gw, "POST", "/admin/keys", {
            "id": "x", "rate_limits": [{"requests": 1}]}).json()["error"]["message"])
        self.assertEqual(self.admin(gw, "POST", "/admin/keys", {"id": "twice"}).status, 201)
        self.assertEqual(self.admin(gw, "POST", "/admin/keys", {"id": "twice"}).status, 409)

    def test_usage_per_key_and_team_summed_over_instances(self):
        gws = [self.gateway(), self.gateway()]
        made = self.admin(gws[0], "POST", "/admin/keys", {"id": "dave", "team": "research"}).json()
        calls = [(gws[0], ALICE), (gws[1], ALICE), (gws[1], BOB), (gws[0], made["key"])]
        for gw, key in calls:
            self.assertEqual(gw.post("/v1/chat/completions", chat(), headers=bearer(key)).status, 200)
        for gw in gws:
            gw.log_lines(2)
        lines = gws[0].log_lines(2) + gws[1].log_lines(2)
        time.sleep(0.2)
        u = self.admin(gws[1], "GET", "/admin/usage").json()
        self.assertEqual(u["source"], "redis")
        self.assertEqual(u["from"], u["to"])
        self.assertEqual(u["keys"]["alice"]["requests"], 2)
        self.assertEqual(u["keys"]["alice"]["output_tokens"], 16)
        self.assertEqual(u["keys"]["dave"]["requests"], 1)
        self.assertEqual(u["teams"]["research"]["requests"], 3)
        self.assertEqual(u["teams"]["sales"]["requests"], 1)
        alice_cost = sum(l["cost_usd"] for l in lines if l["key_id"] == "alice")
        self.assertAlmostEqual(u["keys"]["alice"]["cost_usd"], alice_cost, places=5)
        self.assertEqual(u["keys"]["alice"]["input_tokens"],
                         sum(l["prompt_tokens"] for l in lines if l["key_id"] == "alice"))
        only = self.admin(gws[0], "GET", "/admin/usage?days=7&team=sales").json()
        self.assertEqual(list(only["teams"]), ["sales"])
        self.assertEqual(only["keys"], {})
        self.assertNotIn(made["key"], json.dumps(u))


class AdminKeysWithoutRedis(TenantCase):
    redis = False

    def test_keys_of_the_file_are_listed_and_usage_is_this_instances(self):
        gw = self.gateway()
        listed = request(gw.admin, "GET", "/admin/keys").json()["data"]
        self.assertEqual(sorted(k["id"] for k in listed), ["alice", "bob", "carol"])
        self.assertTrue(all(k["source"] == "config" and "key" not in k for k in listed))
        r = request(gw.admin, "POST", "/admin/keys", {"id": "x"})
        self.assertEqual(r.status, 409)
        self.assertEqual(r.json()["error"]["code"], "no_redis")
        for key in (ALICE, BOB, BOB):
            gw.post("/v1/chat/completions", chat(), headers=bearer(key))
        gw.log_lines(3)
        u = request(gw.admin, "GET", "/admin/usage?key=bob").json()
        self.assertEqual(u["source"], "memory")
        self.assertEqual(u["keys"], {"bob": {"requests": 2, "input_tokens": u["keys"]["bob"]["input_tokens"],
                                             "output_tokens": 16, "cost_usd": u["keys"]["bob"]["cost_usd"]}})
        self.assertGreater(u["keys"]["bob"]["cost_usd"], 0)
        self.assertEqual(u["teams"], {})


class TenantsInRules(TenantCase):
    redis = False

    def test_a_rules_route_picks_the_model_by_team_and_key_metadata(self):
        gw = self.gateway(route={"models": [MODEL, "big"], "selection": {"name": "rules", "rules": [
            {"tenant": {"team": "^sales$"}, "model": "big"},
            {"tenant": {"metadata.env": "^prod$"}, "model": "big"}]}})
        r = gw.post("/v1/chat/completions", chat(), headers=bearer(BOB))
        self.assertEqual(r.headers["x-switchyard-model"], "big")
        r = gw.post("/v1/chat/completions", chat(), headers=bearer(ALICE))
        self.assertEqual(r.headers["x-switchyard-model"], MODEL)
        self.assertEqual(gw.log_lines(2)[-1]["select_reason"], "direct")


class BatchFairness(TenantCase):
    """One slow replica: while a batch is at the backend the others queue."""
    redis = False

    def test_a_batch_takes_every_keys_requests_in_turn(self):
        port = free_ports(1)
        start(self, [binary("sy-sim"), "--port", str(port), "--quiet",
                     "--batch-base-us", "300000", "--batch-per-input-us", "0"],
              port=port, name="sy-sim slow")
        cfg = self.config(route={"batch": {"policy": {"name": "adaptive", "max_in_flight": 1},
                                           "max_batch_size": 4, "max_wait_us": 5000000}})
        cfg["backends"] = [{"name": "slow", "url": "http://127.0.0.1:%d/v1" % port}]
        gw = Gateway(self, cfg)

        def emb(key, text, delay):
            def run():
                time.sleep(delay)
                return gw.post("/v1/embeddings", {"model": MODEL, "input": text},
                               headers=bearer(key))
            return run
        # Four inputs make a batch.  Alice's two requests (2 + 1 inputs) and
        # Bob's (2) queue while the warm-up batch is at the backend; Bob's
        # arrival passes the bound.  In queue order Alice's two would go and
        # Bob's wait; taken in turn per key, Alice's first and Bob's go.
        calls = [emb(ALICE, "alice warm", 0), emb(ALICE, ["alice a", "alice b"], 0.05),
                 emb(ALICE, "alice c", 0.1), emb(BOB, ["bob a", "bob b"], 0.15)]
        got = concurrently(calls)
        self.assertTrue(all(r.status == 200 for r in got), [r.status for r in got])
        reqs = [r for r in request(port, "GET", "/sim/requests").json()
                if r["path"] == "/v1/embeddings"]
        self.assertEqual([r["body"]["input"] for r in reqs],
                         [["alice warm"], ["alice a", "alice b", "bob a", "bob b"], ["alice c"]])


class QueuePriority(TenantCase):
    """One slow replica taking one request at a time: the others wait."""
    redis = False

    def test_the_wait_queue_serves_higher_priority_keys_first(self):
        port = free_ports(1)
        start(self, [binary("sy-sim"), "--port", str(port), "--quiet", "--output-tokens", "fixed:4",
                     "--decode-base-us", "60000"], port=port, name="sy-sim slow")
        cfg = self.config(keys=[{"id": "alice", "hash": sha(ALICE)},
                                {"id": "bob", "hash": sha(BOB), "priority": 5}], teams={},
                          route={"queue": {"max": 10, "timeout_ms": 10000}})
        cfg["backends"] = [{"name": "slow", "url": "http://127.0.0.1:%d/v1" % port,
                            "max_concurrency": 1}]
        cfg["workers"] = 1
        gw = Gateway(self, cfg)

        def ask(key, text, delay, headers=None):
            def run():
                time.sleep(delay)
                h = bearer(key)
                h.update(headers or {})
                return gw.post("/v1/chat/completions", chat(content=text), headers=h)
            return run
        got = concurrently([ask(ALICE, "first", 0), ask(ALICE, "alice 1", 0.05),
                            ask(ALICE, "alice 2", 0.08), ask(BOB, "bob", 0.11),
                            ask(ALICE, "alice urgent", 0.14, {"x-switchyard-priority": "10"})])
        self.assertTrue(all(r.status == 200 for r in got), [r.status for r in got])
        order = [r["body"]["messages"][0]["content"] for r in request(port, "GET", "/sim/requests").json()
                 if r["path"] == "/v1/chat/completions"]
        self.assertEqual(order, ["first", "alice urgent", "bob", "alice 1", "alice 2"])
        self.assertEqual(gw.post("/v1/chat/completions", chat(),
                                 headers=dict(bearer(ALICE), **{"x-switchyard-priority": "soon"})).status,
                         400)


class ClientHeaders(TenantCase):
    redis = False

    def scripted(self):
        answer = json.dumps({"id": "c", "object": "chat.completion", "created": 1, "model": MODEL,
                             "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                                          "finish_reason": "stop"}],
                             "usage": {"prompt_tokens": 1, "completion_tokens": 1,
                                       "total_tokens": 2}}).encode()
        backend = harness.ScriptedBackend(lambda p, h, b: (200, {"Content-Type": "application/json"},
                                                           [answer], 0, False))
        self.addCleanup(backend.close)
        return backend

    def test_only_the_allowed_client_headers_reach_the_backend(self):
        backend = self.scripted()
        gw = Gateway(self, {"backends": [{"name": "b", "url": "http://127.0.0.1:%d/v1" % backend.port,
                                          "api_key_env": "B_KEY",
                                          "forward_headers": ["OpenAI-Organization", "user-agent"]}],
                            "routes": [{"name": "chat", "models": [MODEL]}]},
                     env={"B_KEY": "sk-ours"})
        r = gw.post("/v1/chat/completions", chat(), headers={"OpenAI-Organization": "org-1",
                                                              "User-Agent": "sdk/1", "X-Secret": "no",
                                                              "Authorization": "Bearer client"})
        self.assertEqual(r.status, 200)
        got = backend.received[-1]["headers"]
        self.assertEqual((got["openai-organization"], got["user-agent"]), ("org-1", "sdk/1"))
        self.assertNotIn("x-secret", got)
        self.assertEqual(got["authorization"], "Bearer sk-ours")

    def test_bring_your_own_key_sends_the_clients_key(self):
        backend = self.scripted()
        gw = Gateway(self, {"backends": [{"name": "b", "url": "http://127.0.0.1:%d/v1" % backend.port,
                                          "api_key_env": "B_KEY", "forward_client_key": True}],
                            "routes": [{"name": "chat", "models": [MODEL]}]},
                     env={"B_KEY": "sk-ours"})
        gw.post("/v1/chat/completions", chat(), headers={"Authorization": "Bearer sk-theirs"})
        self.assertEqual(backend.received[-1]["headers"]["authorization"], "Bearer sk-theirs")
        with open(gw.log_path) as f:
            self.assertNotIn("sk-theirs", f.read())


class CacheIsolation(TenantCase):
    redis = False

    def test_one_team_never_gets_another_teams_entry(self):
        gw = self.gateway(route={"cache": {}})
        body = chat(temperature=0)
        r = gw.post("/v1/chat/completions", body, headers=bearer(ALICE))
        self.assertEqual(r.headers["x-switchyard-cache"], "miss")
        r = gw.post("/v1/chat/completions", body, headers=bearer(ALICE))
        self.assertEqual(r.headers["x-switchyard-cache"], "hit")
        r = gw.post("/v1/chat/completions", body, headers=bearer(BOB))
        self.assertEqual(r.headers["x-switchyard-cache"], "miss")
        status, h, _, _ = harness.stream_events(gw.port, "/v1/chat/completions",
                                                dict(body, stream=True), headers=bearer(BOB))
        self.assertEqual(h["x-switchyard-cache"], "hit")

    def test_teams_share_entries_when_the_config_says_so(self):
        gw = self.gateway(route={"cache": {}}, tenancy={"share_cache_across_teams": True})
        body = chat(temperature=0)
        gw.post("/v1/chat/completions", body, headers=bearer(ALICE))
        r = gw.post("/v1/chat/completions", body, headers=bearer(BOB))
        self.assertEqual(r.headers["x-switchyard-cache"], "hit")


if __name__ == "__main__":
    harness.main()
