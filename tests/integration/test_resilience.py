"""Routing resilience end to end: health checks, outlier ejection, retries
on other endpoints, Retry-After, fallbacks, the wait queue and deadlines,
through switchyard in front of sy-sim replicas with injected faults."""
import json
import threading
import time
import unittest

import harness
from harness import binary, free_port, free_ports, post_json, request, start
from test_proxy import Gateway, chat

MODELS = ["llama-3-8b", "qwen2-7b"]


class Fleet(unittest.TestCase):
    """n sy-sim replicas (answering at once unless speed says otherwise)."""
    replicas = 3
    speed = "0"

    def setUp(self):
        self.sim_port = free_ports(self.replicas)
        self.sim = start(self, [binary("sy-sim"), "--port", str(self.sim_port), "--replicas",
                                str(self.replicas), "--models", ",".join(MODELS),
                                "--speed", self.speed, "--quiet"], port=self.sim_port, name="sy-sim")
        for i in range(1, self.replicas):
            harness.wait_port(self.sim_port + i)

    def backends(self, **extra):
        out = []
        for i in range(self.replicas):
            b = {"name": "sim%d" % i, "url": "http://127.0.0.1:%d/v1" % (self.sim_port + i), "models": MODELS}
            b.update(extra.get("sim%d" % i, {}))
            out.append(b)
        return out

    def gateway(self, route=None, backends=None, extra_routes=(), **top):
        r = {"name": "chat", "models": MODELS}
        r.update(route or {})
        c = {"backends": backends or self.backends(), "routes": [r] + list(extra_routes)}
        c.update(top)
        return Gateway(self, c)

    def faults(self, i, f):
        r = request(self.sim_port + i, "POST", "/sim/faults", f)
        self.assertEqual(r.status, 200, r.body)

    def served(self, i):
        """Chat requests replica i received."""
        s = request(self.sim_port + i, "GET", "/sim/stats").json()
        return sum(s.get("by_path", {}).get("/v1/chat/completions", {}).values())

    def metric(self, gw, line_start):
        text = request(gw.admin, "GET", "/metrics").body.decode()
        for line in text.splitlines():
            if line.startswith(line_start):
                return float(line.rsplit(" ", 1)[1])
        return None


class Retries(Fleet):
    def test_a_failing_replica_is_retried_on_another_and_the_client_sees_200(self):
        self.faults(0, {"error_rate": 1.0, "error_status": 503})
        gw = self.gateway({"policy": "round_robin"})
        for _ in range(6):
            r = gw.post("/v1/chat/completions", chat())
            self.assertEqual(r.status, 200, r.body)
        lines = gw.log_lines(6)
        retried = [l for l in lines if l["retries"] > 0]
        self.assertGreaterEqual(len(retried), 1)
        self.assertTrue(all(l["endpoint"] != "sim0" for l in lines))
        self.assertEqual(self.served(1) + self.served(2), 6)

    def test_connection_refused_is_retried_on_another_endpoint(self):
        backends = self.backends()
        backends[0]["url"] = "http://127.0.0.1:%d/v1" % free_port()
        gw = self.gateway({"policy": "round_robin"}, backends=backends)
        for _ in range(4):
            self.assertEqual(gw.post("/v1/chat/completions", chat()).status, 200)

    def test_without_retries_the_failure_reaches_the_client(self):
        for i in range(3):
            self.faults(i, {"error_rate": 1.0, "error_status": 500})
        gw = self.gateway({"retries": {"max": 0}})
        r = gw.post("/v1/chat/completions", chat())
        self.assertEqual(r.status, 500)
        self.assertEqual(self.served(0) + self.served(1) + self.served(2), 1)

    def test_retries_stop_at_max_and_the_last_error_is_answered(self):
        for i in range(3):
            self.faults(i, {"error_rate": 1.0, "error_status": 502})
        gw = self.gateway({"retries": {"max": 1}, "ejection": {"consecutive_failures": 0}})
        r = gw.post("/v1/chat/completions", chat())
        self.assertEqual(r.status, 502)
        self.assertIn("error", r.json())
        self.assertEqual(self.served(0) + self.served(1) + self.served(2), 2)
        self.assertEqual(gw.log_lines(1)[-1]["retries"], 1)

    def test_the_retry_budget_caps_retries(self):
        for i in range(3):
            self.faults(i, {"error_rate": 1.0, "error_status": 503})
        gw = self.gateway({"retries": {"max": 2, "budget": 0, "min_per_s": 0},
                           "ejection": {"consecutive_failures": 0}})
        for _ in range(5):
            self.assertEqual(gw.post("/v1/chat/completions", chat()).status, 503)
        self.assertEqual(self.served(0) + self.served(1) + self.served(2), 5)

    def test_a_stream_is_never_retried_once_bytes_reached_the_client(self):
        for i in range(3):
            self.faults(i, {"drop_after_tokens": 2})
        gw = self.gateway()
        status, _, events, _ = harness.stream_events(gw.port, "/v1/chat/completions", chat(stream=True))
        self.assertEqual(status, 200)
        self.assertIn("error", json.loads(events[-1]["data"]))
        self.assertEqual(self.served(0) + self.served(1) + self.served(2), 1)
        self.assertEqual(gw.log_lines(1)[-1]["retries"], 0)

    def test_a_stream_that_failed_before_its_first_byte_is_retried(self):
        self.faults(0, {"error_rate": 1.0, "error_status": 503})
        gw = self.gateway({"policy": "round_robin"})
        for _ in range(3):
            status, _, events, _ = harness.stream_events(gw.port, "/v1/chat/completions", chat(stream=True))
            self.assertEqual(status, 200)
            self.assertEqual(events[-1]["data"], "[DONE]")

    def test_a_429_makes_the_endpoint_rest_for_its_retry_after(self):
        self.faults(0, {"rate_limit_rate": 1.0, "retry_after": 2})
        gw = self.gateway({"policy": "round_robin"})
        for _ in range(9):
            self.assertEqual(gw.post("/v1/chat/completions", chat()).status, 200)
        self.assertEqual(self.served(0), 1)


class Ejection(Fleet):
    def test_a_dead_replica_is_ejected_and_traffic_moves_within_a_few_requests(self):
        self.faults(0, {"error_rate": 1.0, "error_status": 500})
        gw = self.gateway({"policy": "round_robin",
                           "ejection": {"consecutive_failures": 2, "cooldown_ms": 30000}})
        for _ in range(30):
            self.assertEqual(gw.post("/v1/chat/completions", chat()).status, 200)
        self.assertLessEqual(self.served(0), 2)
        self.assertEqual(self.metric(gw, 'switchyard_endpoint_ejected{endpoint="sim0"}'), 1)
        self.assertEqual(self.metric(gw, 'switchyard_endpoint_ejected{endpoint="sim1"}'), 0)
        self.assertGreaterEqual(self.metric(gw, 'switchyard_retries_total{route="chat"}'), 1)

    def test_an_ejected_replica_gets_traffic_again_after_its_cooldown(self):
        self.faults(0, {"error_rate": 1.0, "error_status": 500})
        gw = self.gateway({"policy": "round_robin",
                           "ejection": {"consecutive_failures": 1, "cooldown_ms": 300}})
        for _ in range(6):
            gw.post("/v1/chat/completions", chat())
        request(self.sim_port, "DELETE", "/sim/faults")
        before = self.served(0)
        time.sleep(0.5)
        for _ in range(9):
            self.assertEqual(gw.post("/v1/chat/completions", chat()).status, 200)
        self.assertEqual(self.served(0) - before, 3)

    def test_ejection_never_leaves_fewer_than_min_available(self):
        for i in range(3):
            self.faults(i, {"error_rate": 1.0, "error_status": 500})
        gw = self.gateway({"retries": {"max": 0},
                           "ejection": {"consecutive_failures": 1, "min_available": 0.5}})
        for _ in range(12):
            gw.post("/v1/chat/completions", chat())
        ejected = sum(self.metric(gw, 'switchyard_endpoint_ejected{endpoint="sim%d"}' % i) for i in range(3))
        self.assertEqual(ejected, 1)


class HealthChecks(Fleet):
    def test_an_endpoint_failing_health_checks_is_marked_down_and_skipped(self):
        backends = self.backends(sim0={"health": {"interval_ms": 100, "timeout_ms": 50, "unhealthy": 2}})
        backends[0]["url"] = "http://127.0.0.1:%d/v1" % free_port()
        gw = self.gateway({"policy": "round_robin", "retries": {"max": 0}}, backends=backends)
        deadline = time.time() + 3
        while time.time() < deadline and self.metric(gw, 'switchyard_endpoint_healthy{endpoint="sim0"}') != 0:
            time.sleep(0.05)
        self.assertEqual(self.metric(gw, 'switchyard_endpoint_healthy{endpoint="sim0"}'), 0)
        for _ in range(10):
            self.assertEqual(gw.post("/v1/chat/completions", chat()).status, 200)
        self.assertTrue(all(l["endpoint"] != "sim0" for l in gw.log_lines(10)))

    def test_health_checks_probe_the_configured_path(self):
        backends = self.backends(sim1={"health": {"interval_ms": 100, "timeout_ms": 50, "path": "/models"}})
        gw = self.gateway(backends=backends)
        time.sleep(0.5)
        seen = request(self.sim_port + 1, "GET", "/sim/requests").json()
        self.assertGreaterEqual(len([q for q in seen if q["path"] == "/v1/models"]), 2)
        self.assertEqual(self.metric(gw, 'switchyard_endpoint_healthy{endpoint="sim1"}'), 1)


class Fallbacks(Fleet):
    def test_a_route_without_a_working_endpoint_falls_back_to_another_model(self):
        dead = {"name": "dead", "url": "http://127.0.0.1:%d/v1" % free_port(), "models": ["big"]}
        gw = self.gateway({"name": "small", "models": ["qwen2-7b"]},
                          backends=self.backends() + [dead],
                          extra_routes=[{"name": "big", "models": ["big"], "backends": ["dead"],
                                         "fallbacks": ["qwen2-7b"]}])
        r = gw.post("/v1/chat/completions", chat(model="big"))
        self.assertEqual(r.status, 200, r.body)
        line = gw.log_lines(1)[-1]
        self.assertEqual(line["fallbacks"], 1)
        self.assertEqual(line["model"], "qwen2-7b")
        self.assertEqual(line["client_model"], "big")


class Queue(Fleet):
    replicas = 1
    speed = "1"

    def test_the_bounded_queue_serves_in_turn_and_sheds_with_retry_after(self):
        backends = self.backends(sim0={"max_concurrency": 1})
        # One worker, so that one queue (per worker and pool) holds them all.
        gw = self.gateway({"queue": {"max": 1, "timeout_ms": 3000}}, backends=backends, workers=1)
        results = []

        def one():
            results.append(gw.post("/v1/chat/completions", chat(max_tokens=10)))

        threads = [threading.Thread(target=one) for _ in range(3)]
        for t in threads:
            t.start()
            time.sleep(0.03)
        for t in threads:
            t.join(10)
        statuses = sorted(r.status for r in results)
        self.assertEqual(statuses, [200, 200, 503])
        shed = [r for r in results if r.status == 503][0]
        self.assertEqual(shed.headers.get("retry-after"), "1")
        self.assertEqual(shed.json()["error"]["code"], "queue_full")
        waited = [l for l in gw.log_lines(3) if l["status"] == 200 and l["queue_ms"] > 0]
        self.assertEqual(len(waited), 1)

    def test_a_request_waiting_past_the_queue_timeout_gets_503(self):
        backends = self.backends(sim0={"max_concurrency": 1})
        gw = self.gateway({"queue": {"max": 4, "timeout_ms": 200}}, backends=backends, workers=1)
        results = []
        t = threading.Thread(target=lambda: results.append(gw.post("/v1/chat/completions", chat(max_tokens=60))))
        t.start()
        time.sleep(0.1)
        t0 = time.time()
        r = gw.post("/v1/chat/completions", chat())
        self.assertEqual(r.status, 503)
        self.assertEqual(r.json()["error"]["code"], "queue_timeout")
        self.assertLess(time.time() - t0, 1.0)
        t.join(10)
        self.assertEqual(results[0].status, 200)


class Deadline(Fleet):
    replicas = 2

    def test_the_route_deadline_bounds_retries_and_waits(self):
        for i in range(2):
            self.faults(i, {"stall_ms": 5000})
        gw = self.gateway({"deadline_ms": 400, "retries": {"on": ["timeout"]}},
                          timeouts={"first_byte_ms": 250})
        t0 = time.time()
        r = gw.post("/v1/chat/completions", chat())
        took = time.time() - t0
        self.assertEqual(r.status, 504)
        self.assertLess(took, 1.0)


if __name__ == "__main__":
    harness.main()
