"""prefix_aware routing end to end against sy-sim: conversations stay on the
replica that holds them, a replica whose cache was flushed loses the
affinity the index believed in as soon as it reports so, two gateway
instances sharing placements through a real redis-server place a group on
the same replica; and sy-sim's part: its cache flushed on demand, its
capacity in its metrics."""
import json
import time
import unittest

import harness
from harness import RedisServer, binary, free_ports, post_json, request, start
from test_proxy import Gateway

MODEL = "m"
REPLICAS = 4


def words(seed, n):
    return " ".join("g%d_%d" % (seed, i) for i in range(n))


def turns(seed, n):
    """The messages of session seed after n user turns (n ≥ 1)."""
    msgs = [{"role": "system", "content": "You are agent %d. %s" % (seed, words(seed, 300))}]
    for t in range(n):
        msgs.append({"role": "user", "content": "question %d of %d: %s" % (t, seed, words(seed * 100 + t, 40))})
        if t < n - 1:
            msgs.append({"role": "assistant", "content": "answer %d %s" % (t, words(seed * 1000 + t, 30))})
    return msgs


def chat(msgs):
    return {"model": MODEL, "messages": msgs, "max_tokens": 4}


def metric(port, name, **labels):
    """The sum of the samples of metric name (with those labels) on the admin port."""
    text = request(port, "GET", "/metrics").body.decode()
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all('%s="%s"' % kv in line for kv in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


class PrefixCase(unittest.TestCase):
    """Four sy-sim replicas answering at once (prefix caches of 4096 tokens)."""
    redis = False

    def setUp(self):
        self.sim_port = free_ports(REPLICAS)
        start(self, [binary("sy-sim"), "--port", str(self.sim_port), "--replicas", str(REPLICAS),
                     "--speed", "0", "--cache-tokens", "4096", "--quiet"],
              port=self.sim_port, name="sy-sim")
        for i in range(1, REPLICAS):
            harness.wait_port(self.sim_port + i)
        self.rs = RedisServer(self) if self.redis else None

    def config(self, **policy):
        p = {"name": "prefix_aware", "block_chars": 128}
        p.update(policy)
        cfg = {"backends": [{"name": "s%d" % i, "url": "http://127.0.0.1:%d/v1" % (self.sim_port + i),
                             "cache_tokens": 4096}
                            for i in range(REPLICAS)],
               "routes": [{"name": "chat", "models": [MODEL], "policy": p}]}
        if self.rs is not None:
            cfg["redis"] = {"port": self.rs.port}
        return cfg

    def send(self, gw, msgs):
        """Sends one chat; returns its access-log line."""
        n = len(gw.log_lines())
        r = gw.post("/v1/chat/completions", chat(msgs))
        self.assertEqual(r.status, 200, r.body)
        return gw.log_lines(n + 1)[n]


class Sessions(PrefixCase):

    def test_multi_turn_sessions_stay_on_the_replica_that_holds_them(self):
        gw = Gateway(self, self.config())
        home = {}
        for t in range(1, 4):
            for s in range(6):
                line = self.send(gw, turns(s, t))
                if t == 1:
                    home[s] = line["endpoint"]
                    continue
                self.assertEqual(line["endpoint"], home[s], (s, t, line))
                self.assertRegex(line["policy_reason"], r"^prefix:\d+/\d+$")
                self.assertGreater(line["cached_tokens"], 0, line)
        # Six sessions over four replicas: spread by their homes, not
        # piled on one.
        self.assertGreaterEqual(len(set(home.values())), 2)
        self.assertLessEqual(max(list(home.values()).count(e) for e in home.values()), 4)

    def test_a_longer_match_wins_over_the_system_prompt_alone(self):
        gw = Gateway(self, self.config())
        first = self.send(gw, turns(1, 3))
        # Another session with the same system prompt but other turns
        # matches only the system prompt: fewer blocks.
        other = turns(1, 1)
        other[1]["content"] = "something else entirely " + words(77, 40)
        line = self.send(gw, other)
        self.assertEqual(line["endpoint"], first["endpoint"])
        m, n = map(int, line["policy_reason"].split(":")[1].split("/"))
        self.assertLess(m, n)
        again = self.send(gw, turns(1, 3))
        m2, n2 = map(int, again["policy_reason"].split(":")[1].split("/"))
        self.assertEqual(m2, n2)

    def test_streams_and_anthropic_requests_share_the_index_of_chat(self):
        gw = Gateway(self, self.config())
        home = self.send(gw, turns(4, 1))["endpoint"]
        # The same conversation streamed: the gateway asks for usage.
        n = len(gw.log_lines())
        body = dict(chat(turns(4, 2)), stream=True)
        status, _, events, _ = harness.stream_events(gw.port, "/v1/chat/completions", body)
        self.assertEqual(status, 200)
        self.assertEqual(events[-1]["data"], "[DONE]")
        line = gw.log_lines(n + 1)[n]
        self.assertEqual(line["endpoint"], home)
        self.assertRegex(line["policy_reason"], "^prefix:")
        self.assertGreater(line["cached_tokens"], 0)
        # As an Anthropic request: system, then the messages.
        msgs = turns(4, 3)
        n = len(gw.log_lines())
        r = gw.post("/v1/messages", {"model": MODEL, "max_tokens": 4,
                                     "system": msgs[0]["content"], "messages": msgs[1:]},
                    headers={"anthropic-version": "2023-06-01"})
        self.assertEqual(r.status, 200, r.body)
        line = gw.log_lines(n + 1)[n]
        self.assertEqual(line["endpoint"], home)
        self.assertRegex(line["policy_reason"], "^prefix:")

    def test_a_reload_keeps_what_the_index_knows(self):
        gw = Gateway(self, self.config())
        home = self.send(gw, turns(5, 1))["endpoint"]
        gw.write(self.config(w_kv=1))
        r = request(gw.admin, "POST", "/admin/reload")
        self.assertEqual(r.status, 200, r.body)
        line = self.send(gw, turns(5, 2))
        self.assertEqual(line["endpoint"], home)
        self.assertRegex(line["policy_reason"], "^prefix:")

    def test_metrics_count_predicted_and_reported_tokens(self):
        gw = Gateway(self, self.config())
        for t in range(1, 3):
            self.send(gw, turns(3, t))
        predicted = metric(gw.admin, "switchyard_prefix_predicted_tokens_total", route="chat")
        reported = metric(gw.admin, "switchyard_prefix_reported_tokens_total", route="chat")
        self.assertGreater(predicted, 0)
        self.assertGreater(reported, 0)
        self.assertLess(abs(predicted - reported) / predicted, 0.2)
        self.assertGreater(metric(gw.admin, "switchyard_prefix_index_bytes", route="chat"), 0)


class Feedback(PrefixCase):

    def place_two_on_one_replica(self, gw):
        """Sessions 10 and 11 on the same replica: returns its name."""
        a = self.send(gw, turns(10, 1))["endpoint"]
        for s in range(11, 40):
            if self.send(gw, turns(s, 1))["endpoint"] == a:
                return a, s
        self.fail("no second session on %s" % a)

    def test_a_flushed_replica_loses_the_affinity_of_its_traffic(self):
        gw = Gateway(self, self.config())
        ep, other = self.place_two_on_one_replica(gw)
        self.assertRegex(self.send(gw, turns(other, 1))["policy_reason"], "^prefix:")
        index = int(ep[1:])
        r = request(self.sim_port + index, "POST", "/sim/cache/flush")
        self.assertEqual(r.status, 200)
        # Session 10 goes back (the index still believes), the engine
        # reports nothing cached: the index learns the replica lost it all.
        line = self.send(gw, turns(10, 1))
        self.assertEqual(line["endpoint"], ep)
        self.assertEqual(line["cached_tokens"], 0)
        self.assertGreater(metric(gw.admin, "switchyard_prefix_evicted_blocks_total",
                                  endpoint=ep), 0)
        # The other session on it is no longer believed held there.
        self.assertEqual(self.send(gw, turns(other, 1))["policy_reason"], "home")

    def test_without_feedback_the_index_goes_on_believing(self):
        gw = Gateway(self, self.config(feedback_slack=1))
        ep, other = self.place_two_on_one_replica(gw)
        request(self.sim_port + int(ep[1:]), "POST", "/sim/cache/flush")
        self.send(gw, turns(10, 1))
        line = self.send(gw, turns(other, 1))
        self.assertEqual(line["endpoint"], ep)
        self.assertRegex(line["policy_reason"], "^prefix:")
        self.assertEqual(line["cached_tokens"], 0)


class Shared(PrefixCase):
    redis = True

    def test_two_instances_sharing_redis_place_a_group_on_the_same_replica(self):
        gw1 = Gateway(self, self.config())
        gw2 = Gateway(self, self.config())
        home = {s: self.send(gw1, turns(s, 1))["endpoint"] for s in range(20, 24)}
        deadline = time.time() + 5
        while metric(gw2.admin, "switchyard_prefix_applied_blocks_total") == 0:
            self.assertLess(time.time(), deadline, "gw2 never applied gw1's placements")
            time.sleep(0.05)
        time.sleep(0.1)
        for s in reversed(range(20, 24)):
            line = self.send(gw2, turns(s, 2))
            self.assertEqual(line["endpoint"], home[s], (s, line))
            self.assertRegex(line["policy_reason"], "^prefix:")
        self.assertEqual(len(self.rs.command("XRANGE", "sy:prefix:placements", "-", "+")) > 0, True)

    def test_without_sharing_the_second_instance_knows_nothing(self):
        gw1 = Gateway(self, self.config(share=False))
        gw2 = Gateway(self, self.config(share=False))
        self.send(gw1, turns(30, 1))
        time.sleep(0.2)
        self.assertEqual(self.send(gw2, turns(30, 2))["policy_reason"], "home")
        self.assertEqual(self.rs.command("EXISTS", "sy:prefix:placements"), 0)

    def test_redis_away_each_instance_goes_on_with_its_own(self):
        gw = Gateway(self, self.config())
        self.rs.kill()
        first = self.send(gw, turns(40, 1))
        line = self.send(gw, turns(40, 2))
        self.assertEqual(line["endpoint"], first["endpoint"])
        self.assertRegex(line["policy_reason"], "^prefix:")


class SimCache(PrefixCase):

    def test_the_sim_flushes_its_cache_on_demand_and_reports_cached_tokens(self):
        port = self.sim_port
        body = chat(turns(50, 1))
        post_json(port, "/v1/chat/completions", body)
        r = post_json(port, "/v1/chat/completions", body).json()
        self.assertGreater(r["usage"]["prompt_tokens_details"]["cached_tokens"], 0)
        flushed = request(port, "POST", "/sim/cache/flush")
        self.assertEqual(flushed.status, 200)
        self.assertGreater(flushed.json()["blocks_dropped"], 0)
        r = post_json(port, "/v1/chat/completions", body).json()
        self.assertEqual(r["usage"]["prompt_tokens_details"]["cached_tokens"], 0)
        self.assertEqual(request(port, "GET", "/sim/cache/flush").status, 405)

    def test_anthropic_and_llamacpp_shapes_carry_the_cached_tokens(self):
        port = self.sim_port + 1
        msgs = turns(51, 1)
        body = {"model": MODEL, "max_tokens": 4, "system": msgs[0]["content"],
                "messages": msgs[1:]}
        hdr = {"anthropic-version": "2023-06-01"}
        post_json(port, "/v1/messages", body, headers=hdr)
        r = post_json(port, "/v1/messages", body, headers=hdr).json()
        self.assertGreater(r["usage"]["cache_read_input_tokens"], 0)
        body = chat(turns(52, 1))
        post_json(port, "/v1/chat/completions", body)
        r = post_json(port, "/v1/chat/completions", body).json()
        self.assertEqual(r["timings"]["cache_n"],
                         r["usage"]["prompt_tokens_details"]["cached_tokens"])
        self.assertGreater(r["timings"]["cache_n"], 0)

    def test_the_sim_publishes_its_cache_size_as_vllm_does(self):
        text = request(self.sim_port, "GET", "/metrics").body.decode()
        line = [l for l in text.splitlines() if l.startswith("vllm:cache_config_info{")][0]
        self.assertIn('block_size="16"', line)
        self.assertIn('num_gpu_blocks="256"', line)


if __name__ == "__main__":
    harness.main()
