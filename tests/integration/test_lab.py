"""The policy lab: `sy-load experiment FILE -o DIR` runs every variant and
load against fresh sy-sim fleets and switchyards, and writes report.md,
report.html (inline SVG plots), results.json and results.csv."""
import csv
import html.parser
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

SY_LOAD = harness.binary("sy-load")
PLOTS = 8

FLEET = {
    "seed": 1,
    "defaults": {"slots": 4, "prefill_us_per_token": 50, "decode_base_us": 4000,
                 "decode_per_seq_us": 200, "cache_tokens": 4096, "log_requests": 0,
                 "cost_per_hour": 3.6, "power_watts": 500},
    "replicas": [{"count": 2}],
}
WORKLOAD = {
    "api": "chat", "model": "sim-llm",
    "prefix_groups": {"count": 2, "tokens": 200},
    "prompt_tokens": {"dist": "uniform", "min": 10, "max": 30},
    "output_tokens": {"dist": "fixed", "value": 8},
    "stream_fraction": 1, "seed": 3,
}


def tiny(**over):
    """A 2-variant x 2-load experiment of about ten seconds in all."""
    exp = {
        "name": "tiny",
        "title": "Tiny: round robin vs least outstanding",
        "published": "nothing; a test",
        "fleet": FLEET,
        "workload": WORKLOAD,
        "variants": [
            {"name": "rr", "gateway": {"route": {"policy": "round_robin"}}},
            {"name": "lo", "gateway": {"route": {"policy": "least_outstanding"}}},
        ],
        "loads": [{"rate": 5}, {"rate": 10}],
        "warmup_s": 0.5,
        "duration_s": 1.5,
        "slo": {"ttft_ms": 5000, "latency_ms": 20000},
    }
    exp.update(over)
    return exp


class HTMLShape(html.parser.HTMLParser):
    """Counts the tags of a page and the URLs it would fetch."""

    def __init__(self):
        super().__init__()
        self.tags = {}
        self.fetches = []

    def handle_starttag(self, tag, attrs):
        self.tags[tag] = self.tags.get(tag, 0) + 1
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.fetches.append(value)


class LabCase(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="sy-lab-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def experiment(self, exp, name="exp.json"):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            json.dump(exp, f, indent=2)
        return path

    def run_lab(self, exp, nreps=2, timeout=120, extra=()):
        out = os.path.join(self.dir, "out")
        argv = [SY_LOAD, "experiment", self.experiment(exp), "-o", out, "--quiet",
                "--ports", str(harness.free_ports(nreps + 2))] + list(extra)
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        return proc, out

    def read_json(self, out):
        with open(os.path.join(out, "results.json")) as f:
            return json.load(f)


class ExperimentReport(LabCase):
    """One tiny experiment, every output file checked."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="sy-lab-")
        path = os.path.join(cls.tmp, "tiny.json")
        with open(path, "w") as f:
            json.dump(tiny(), f)
        cls.out = os.path.join(cls.tmp, "out")
        t0 = time.monotonic()
        cls.proc = subprocess.run(
            [SY_LOAD, "experiment", path, "-o", cls.out, "--ports", str(harness.free_ports(4))],
            capture_output=True, text=True, timeout=120)
        cls.took = time.monotonic() - t0
        cls.results = None
        if cls.proc.returncode == 0:
            with open(os.path.join(cls.out, "results.json")) as f:
                cls.results = json.load(f)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, True)

    def setUp(self):
        self.assertEqual(self.proc.returncode, 0, self.proc.stderr)

    def test_every_variant_at_every_load_once(self):
        runs = self.results["runs"]
        self.assertEqual(sorted((r["variant"], r["load"]) for r in runs),
                         [("lo", "rate 10"), ("lo", "rate 5"), ("rr", "rate 10"), ("rr", "rate 5")])
        self.assertTrue(self.results["complete"])
        self.assertLess(self.took, 60)
        self.assertIn("4 runs", self.proc.stderr)

    def test_client_figures_are_sy_loads(self):
        for run in self.results["runs"]:
            with open(os.path.join(self.out, "runs", run["tag"] + ".load.json")) as f:
                load = json.load(f)
            self.assertEqual(run["requests_ok"], load["requests"]["ok"])
            self.assertGreater(run["requests_ok"], 0)
            self.assertAlmostEqual(run["rps"], load["throughput_rps"], places=3)
            self.assertAlmostEqual(run["ttft_ms"]["p99"], load["ttft_ms"]["p99"], places=3)
            self.assertAlmostEqual(run["itl_ms"]["p50"], load["itl_ms"]["p50"], places=3)
            self.assertEqual(run["error_ratio"], 0)
            # Offered rate 5 or 10 over 1.5 s: the measured rate is near it.
            self.assertGreater(run["rps"], run["offered"] * 0.3)

    def test_fleet_figures_count_each_replica(self):
        for run in self.results["runs"]:
            reps = run["replicas"]
            self.assertEqual([r["name"] for r in reps], ["r0", "r1"])
            # The fleet counts answers that ended in the window, the gateway
            # requests that arrived in it: a request or two apart.
            self.assertLessEqual(abs(sum(r["requests"] for r in reps) - run["gateway_requests"]), 3)
            for r in reps:
                self.assertGreaterEqual(r["utilization"], 0)
                self.assertLessEqual(r["utilization"], 1)
            self.assertGreater(run["prefix_cache_hit_ratio"], 0)
            self.assertLess(run["prefix_cache_hit_ratio"], 1)
            counts = [r["requests"] for r in reps]
            self.assertAlmostEqual(run["replica_max_min"], max(counts) / min(counts))
            if run["variant"] == "rr":
                # Round robin alternates; the window may cut a pair.
                self.assertLessEqual(max(counts) - min(counts), 3)

    def test_hourly_cost_is_the_fleets_hours_over_the_tokens(self):
        for run in self.results["runs"]:
            tokens = run["tokens"]["prompt"] + run["tokens"]["completion"]
            usd = 2 * 3.6 * run["seconds"] / 3600
            self.assertAlmostEqual(run["fleet_usd"], usd, places=9)
            self.assertAlmostEqual(run["usd_per_mtok_hourly"], usd / tokens * 1e6, places=6)
            self.assertEqual(run["usd_per_mtok"], run["usd_per_mtok_hourly"])
            self.assertIsNone(run["usd_per_mtok_prices"])

    def test_energy_counts_idle_and_busy_power(self):
        for run in self.results["runs"]:
            idle = 2 * 500 * 0.3 * run["seconds"]
            full = 2 * 500 * run["seconds"]
            self.assertGreaterEqual(run["joules"], idle - 1e-6)
            self.assertLessEqual(run["joules"], full + 1e-6)
            tokens = run["tokens"]["prompt"] + run["tokens"]["completion"]
            self.assertAlmostEqual(run["tokens_per_joule"], tokens / run["joules"], places=6)

    def test_per_model_series_from_the_access_log(self):
        for run in self.results["runs"]:
            m = run["models"]["sim-llm"]
            self.assertEqual(m["requests"], run["gateway_requests"])
            self.assertEqual(m["errors"], 0)
            self.assertGreater(m["ttft_ms"]["p99"], 0)
            self.assertIsNone(m["cost_usd"])

    def test_summary_and_verdict(self):
        res = self.results
        self.assertEqual(len(res["summary"]), 4)
        for cell in res["summary"]:
            self.assertEqual(cell["figures"]["rps"]["n"], 1)
            self.assertTrue(cell["meets_slo"])
        v = res["verdict"]
        self.assertEqual(v["ranked_by"], "usd_per_mtok")
        self.assertIn(v["best"], ("rr", "lo"))
        costs = {x["variant"]: x["usd_per_mtok"] for x in v["variants"]}
        self.assertEqual(v["best"], min(costs, key=costs.get))
        self.assertAlmostEqual(v["saving_usd_per_mtok"], costs["rr"] - costs[v["best"]], places=6)

    def test_csv_has_a_row_per_run_and_the_columns(self):
        with open(os.path.join(self.out, "results.csv")) as f:
            rows = list(csv.DictReader(f))
        self.assertEqual(len(rows), 4)
        for col in ("variant", "load", "offered", "repeat", "rps", "output_tps", "goodput_rps",
                    "ttft_ms_p50", "ttft_ms_p90", "ttft_ms_p99", "itl_ms_p99", "latency_ms_p99",
                    "gateway_cache_hit_ratio", "prefix_cache_hit_ratio", "replica_max_min",
                    "usd_per_mtok", "tokens_per_joule", "usd_per_mtok_hourly"):
            self.assertIn(col, rows[0])
        by = {(r["variant"], r["load"]): r for r in rows}
        for run in self.results["runs"]:
            row = by[(run["variant"], run["load"])]
            self.assertAlmostEqual(float(row["rps"]), run["rps"], places=2)
            self.assertAlmostEqual(float(row["usd_per_mtok"]), run["usd_per_mtok"], places=4)

    def test_markdown_has_a_table_per_load_and_the_verdict(self):
        with open(os.path.join(self.out, "report.md")) as f:
            md = f.read()
        self.assertIn("# Tiny: round robin vs least outstanding", md)
        self.assertIn("Published: nothing; a test", md)
        self.assertIn("### rate 5", md)
        self.assertIn("### rate 10", md)
        self.assertIn("| rr |", md)
        self.assertIn("| lo |", md)
        self.assertIn("$/1M tokens", md)
        self.assertIn("Best variant under the SLO: **%s**" % self.results["verdict"]["best"], md)

    def test_html_is_self_contained_with_one_svg_per_plot(self):
        with open(os.path.join(self.out, "report.html")) as f:
            page = f.read()
        shape = HTMLShape()
        shape.feed(page)
        shape.close()
        self.assertEqual(shape.tags.get("svg"), PLOTS)
        self.assertEqual(shape.tags.get("figure"), PLOTS)
        self.assertEqual(shape.fetches, [])
        self.assertNotIn("<script", page)
        self.assertEqual(shape.tags.get("table"), 3)    # two loads, per model
        for title in ("Latency p99 vs throughput", "TTFT p99 vs throughput",
                      "$/1M tokens vs load", "Goodput vs load", "TTFT CDF at rate 10",
                      "Requests per replica at rate 10", "Output tokens/s vs load"):
            self.assertIn("<title>%s</title>" % title.replace("&", "&amp;"), page)
        # One curve per variant in a line chart.
        first = page[page.index("<svg"):page.index("</svg>")]
        self.assertEqual(first.count("<polyline"), 2)

    def test_every_process_is_stopped(self):
        mine = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    if self.out.encode() in f.read():
                        mine.append(pid)
            except OSError:
                pass
        self.assertEqual(mine, [])


class ExperimentOptions(LabCase):
    """Costs from prices, models, repeats, errors and Ctrl-C."""

    def test_prices_cost_and_per_model_series(self):
        fleet = {"defaults": {"slots": 4, "prefill_us_per_token": 20, "decode_base_us": 2000,
                              "decode_per_seq_us": 100, "log_requests": 0},
                 "replicas": [{"name": "small", "models": ["small"], "cost_per_hour": 1},
                              {"name": "big", "models": ["big"], "cost_per_hour": 4}]}
        workload = dict(WORKLOAD, models=[{"name": "small", "weight": 3},
                                          {"name": "big", "weight": 1}])
        del workload["model"]
        exp = tiny(fleet=fleet, workload=workload, cost="prices",
                   variants=[{"name": "priced", "gateway": {"prices": {
                       "small": {"input": 1, "output": 2},
                       "big": {"input": 10, "output": 20}}}}],
                   loads=[{"concurrency": 4}], repeats=2, duration_s=1)
        proc, out = self.run_lab(exp)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        res = self.read_json(out)
        self.assertEqual(len(res["runs"]), 2)
        for run in res["runs"]:
            models = run["models"]
            self.assertEqual(sorted(models), ["big", "small"])
            for name, (pin, pout) in (("small", (1, 2)), ("big", (10, 20))):
                m = models[name]
                self.assertAlmostEqual(m["cost_usd"], (m["prompt_tokens"] * pin +
                                                       m["completion_tokens"] * pout) / 1e6, places=9)
            self.assertAlmostEqual(run["price_usd"], models["small"]["cost_usd"] +
                                   models["big"]["cost_usd"], places=9)
            tokens = run["tokens"]["prompt"] + run["tokens"]["completion"]
            self.assertAlmostEqual(run["usd_per_mtok_prices"], run["price_usd"] / tokens * 1e6,
                                   places=6)
            self.assertEqual(run["usd_per_mtok"], run["usd_per_mtok_prices"])
            self.assertEqual([r["name"] for r in run["replicas"]], ["small", "big"])
            # The replica counts what it received; the client, what completed: they
            # differ by the requests still in flight when the run stopped, at most
            # the concurrency.
            self.assertLessEqual(abs(run["replicas"][0]["requests"] - models["small"]["requests"]), 4)
            self.assertEqual(models["small"]["errors"] + models["big"]["errors"], 0)
            self.assertIsNone(run["tokens_per_joule"])
        cell = res["summary"][0]["figures"]["rps"]
        self.assertEqual(cell["n"], 2)
        self.assertLessEqual(cell["min"], cell["mean"])
        self.assertLessEqual(cell["mean"], cell["max"])
        self.assertEqual(cell["min"], min(r["rps"] for r in res["runs"]))
        with open(os.path.join(out, "runs", "v0-l0-r0.switchyard.json")) as f:
            gw = json.load(f)
        self.assertEqual([b["models"] for b in gw["backends"]], [["small"], ["big"]])
        self.assertEqual(gw["routes"][0]["models"], ["small", "big"])

    def test_a_sweep_stops_each_variant_at_its_first_load_over_the_slo(self):
        fleet = dict(FLEET, defaults=dict(FLEET["defaults"], slots=1))
        exp = tiny(fleet=fleet, sweep=True, warmup_s=0, duration_s=1,
                   loads=[{"concurrency": 1}, {"concurrency": 16}, {"concurrency": 32}],
                   slo={"latency_ms": 300})
        proc, out = self.run_lab(exp)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        res = self.read_json(out)
        self.assertTrue(res["complete"])
        self.assertEqual(sorted((r["variant"], r["load"]) for r in res["runs"]),
                         [("lo", "concurrency 1"), ("lo", "concurrency 16"),
                          ("rr", "concurrency 1"), ("rr", "concurrency 16")])
        for r in res["runs"]:
            if r["load"] == "concurrency 16":
                self.assertGreater(r["latency_ms"]["p99"], 300)
        v = res["verdict"]
        self.assertEqual(v["ranked_by"], "max_load_met")
        self.assertEqual([x["max_load_met"] for x in v["variants"]], [1, 1])
        with open(os.path.join(out, "report.md")) as f:
            md = f.read()
        self.assertIn("Highest load within the SLO: **rr**. Each variant's: rr 1, lo 1.", md)
        self.assertIn("### concurrency 32", md)
        self.assertIn("| rr | - |", md)

    def test_gateway_cost_is_the_gateways_own_accounting(self):
        exp = tiny(cost="gateway", loads=[{"concurrency": 4}], duration_s=2,
                   variants=[{"name": "self-hosted", "gateway": {"prices": {
                       "sim-llm": {"hourly_usd": 3.6, "power_watts": 500}}}}])
        proc, out = self.run_lab(exp)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        run = self.read_json(out)["runs"][0]
        self.assertEqual(run["usd_per_mtok"], run["usd_per_mtok_gateway"])
        # The gateway charges both endpoints' hours over about the same
        # window as the fleet's cost_per_hour.
        self.assertAlmostEqual(run["gateway_hourly_usd"] / run["fleet_usd"], 1, delta=0.3)
        self.assertGreater(run["gateway_joules"], 0)
        stats = run["gateway_stats"]["hourly"]
        self.assertEqual(sorted(stats["endpoints"]), ["r0", "r1"])
        self.assertIn("sim-llm", stats["models"])
        m = run["models"]["sim-llm"]
        self.assertGreater(m["itl_ms"]["p50"], 0)
        self.assertGreater(m["tpot_ms"]["p50"], 0)
        with open(os.path.join(out, "report.md")) as f:
            self.assertIn("self-hosted accounting", f.read())

    def test_a_fleet_of_real_endpoints_is_used_as_it_is(self):
        port = harness.free_ports(2)
        harness.start(self, [harness.binary("sy-sim"), "--port", str(port), "--replicas", "2",
                             "--quiet", "--log-requests", "0", "--decode-base-us", "2000"],
                      port=port + 1)
        fleet = {"endpoints": [
            {"name": "gpu-a", "url": "http://127.0.0.1:%d/v1" % port, "cost_per_hour": 3.6},
            {"name": "gpu-b", "url": "http://127.0.0.1:%d/v1" % (port + 1), "cost_per_hour": 1.8,
             "backend": {"max_concurrency": 8}}]}
        exp = tiny(fleet=fleet, variants=[{"name": "rr"}], loads=[{"concurrency": 2}],
                   duration_s=1)
        proc, out = self.run_lab(exp, nreps=0)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        run = self.read_json(out)["runs"][0]
        self.assertFalse(os.path.exists(os.path.join(out, "runs", "v0-l0-r0.sy-sim.log")))
        with open(os.path.join(out, "runs", "v0-l0-r0.switchyard.json")) as f:
            gw = json.load(f)
        self.assertEqual([(b["name"], b["url"]) for b in gw["backends"]],
                         [("gpu-a", "http://127.0.0.1:%d/v1" % port),
                          ("gpu-b", "http://127.0.0.1:%d/v1" % (port + 1))])
        self.assertEqual(gw["backends"][1]["max_concurrency"], 8)
        reps = run["replicas"]
        self.assertEqual([r["name"] for r in reps], ["gpu-a", "gpu-b"])
        self.assertLessEqual(abs(sum(r["requests"] for r in reps) - run["gateway_requests"]), 3)
        self.assertTrue(all(r["utilization"] is None for r in reps))
        self.assertIsNone(run["tokens_per_joule"])
        tokens = run["tokens"]["prompt"] + run["tokens"]["completion"]
        self.assertAlmostEqual(run["usd_per_mtok_hourly"],
                               5.4 * run["seconds"] / 3600 / tokens * 1e6, places=6)
        self.assertGreaterEqual(run["prefix_cache_hit_ratio"], 0)

    def test_real_endpoints_priced_by_the_hour_get_the_gateways_utilisation(self):
        port = harness.free_ports(1)
        harness.start(self, [harness.binary("sy-sim"), "--port", str(port), "--quiet",
                             "--log-requests", "0", "--decode-base-us", "2000"], port=port)
        fleet = {"endpoints": [{"name": "gpu-a", "url": "http://127.0.0.1:%d/v1" % port,
                                "cost_per_hour": 3.6, "power_watts": 400}]}
        exp = tiny(fleet=fleet, loads=[{"concurrency": 2}], duration_s=1.5,
                   variants=[{"name": "rr", "gateway": {"prices": {
                       "sim-llm": {"hourly_usd": 3.6, "power_watts": 400}}}}])
        proc, out = self.run_lab(exp, nreps=0)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        run = self.read_json(out)["runs"][0]
        util = run["replicas"][0]["utilization"]
        # Two clients keep it busy nearly all the time.
        self.assertGreater(util, 0.5)
        self.assertLessEqual(util, 1)
        self.assertGreater(run["tokens_per_joule"], 0)

    def test_every_shipped_experiment_checks_and_is_bounded(self):
        top = os.path.join(harness.SRCDIR, "experiments")
        names = sorted(n for n in os.listdir(top) if n.endswith(".json"))
        self.assertEqual(names, ["batching.json", "cascade.json", "hetero-fleet.json",
                                 "prefix-routing.json", "prompt-cache.json", "smoke.json"])
        for name in names:
            proc = subprocess.run([SY_LOAD, "experiment", os.path.join(top, name), "--check"],
                                  capture_output=True, text=True, timeout=10)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            secs = float(proc.stdout.split("about ")[2].split(" s")[0])
            self.assertLessEqual(secs, 60 if name == "smoke.json" else 120, proc.stdout)
            with open(os.path.join(top, name)) as f:
                self.assertIn("published" if name != "smoke.json" else "title", json.load(f))

    def test_bad_experiment_names_the_key(self):
        for exp, msg in (
                (tiny(loads=[{"rate": 5, "concurrency": 2}]),
                 "loads[0]: give one of rate and concurrency"),
                (tiny(variants=[{"name": "a"}, {"name": "a"}]), 'variants[1]: name "a" is taken'),
                (tiny(variants=[{"name": "a", "gatway": {}}]), 'variants[0]: unknown key "gatway"'),
                (tiny(durations=3), "durations: unknown key"),
                (tiny(fleet={"replicas": [{"port": 8000}]}), "fleet.replicas[0]: port:"),
                (tiny(repeats=0), "repeats: must be a number from 1 to 20"),
                (tiny(cost="free"), 'cost: must be "hourly"'),
                (tiny(sweep=True, slo={}), "sweep: a sweep needs an slo to break"),
                (tiny(fleet={"endpoints": [{"name": "a", "url": "ftp://x"}]}),
                 "fleet.endpoints[0]: url: the endpoint's base URL")):
            proc, out = self.run_lab(exp)
            self.assertEqual(proc.returncode, 2, proc.stderr)
            self.assertIn("exp.json: " + msg, proc.stderr)
            self.assertFalse(os.path.exists(os.path.join(out, "report.html")))

    def test_a_bad_gateway_fragment_fails_with_switchyards_words(self):
        exp = tiny(variants=[{"name": "bad", "gateway": {"route": {"policy": "no_such"}}}],
                   loads=[{"rate": 2}])
        proc, out = self.run_lab(exp)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("switchyard exited before it answered", proc.stderr)
        self.assertIn("no_such", proc.stderr)
        self.assertTrue(os.path.exists(os.path.join(out, "report.md")))

    def test_interrupt_stops_everything_and_writes_what_it_has(self):
        exp = tiny(loads=[{"rate": 5}], duration_s=1, warmup_s=0,
                   variants=[{"name": "first"}, {"name": "second"}, {"name": "third"}])
        out = os.path.join(self.dir, "out")
        lab = subprocess.Popen([SY_LOAD, "experiment", self.experiment(exp), "-o", out, "--quiet",
                                "--ports", str(harness.free_ports(4))],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: lab.poll() is None and lab.kill())
        # Once the first run's record is on disk, the second run is under way.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not os.path.exists(
                os.path.join(out, "runs", "v1-l0-r0.switchyard.json")):
            time.sleep(0.05)
        time.sleep(0.5)
        lab.send_signal(signal.SIGINT)
        _, err = lab.communicate(timeout=30)
        self.assertEqual(lab.returncode, 130, err)
        self.assertIn("stopped; the report has the 1 runs done of 3", err)
        res = self.read_json(out)
        self.assertFalse(res["complete"])
        self.assertEqual([r["variant"] for r in res["runs"]], ["first"])
        with open(os.path.join(out, "report.md")) as f:
            self.assertIn("Stopped early", f.read())
        with open(os.path.join(out, "runs", "v1-l0-r0.switchyard.json")) as f:
            port = int(json.load(f)["listen"].rsplit(":", 1)[1])
        with self.assertRaises(OSError):
            harness.request(port, "GET", "/v1/models", timeout=2)


class GatewayHourlyCost(unittest.TestCase):
    """A self-hosted model priced by the hour: the gateway spreads each
    endpoint's cost over the tokens it served, in /metrics, /admin/stats
    and the access log."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="sy-hourly-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        base = harness.free_ports(4)
        self.sim, self.port, self.admin = base, base + 2, base + 3
        harness.start(self, [harness.binary("sy-sim"), "--port", str(base), "--replicas", "2",
                             "--models", "small,big", "--speed", "0", "--quiet",
                             "--log-requests", "0"], port=base + 1)
        self.log = os.path.join(self.dir, "access.log")
        cfg = {"listen": "127.0.0.1:%d" % self.port, "admin": "127.0.0.1:%d" % self.admin,
               "workers": 2, "access_log": self.log,
               "backends": [{"name": "gpu0", "url": "http://127.0.0.1:%d/v1" % base,
                             "models": ["small", "big"]},
                            {"name": "gpu1", "url": "http://127.0.0.1:%d/v1" % (base + 1),
                             "models": ["small", "big"]}],
               "routes": [{"name": "chat", "models": ["small"]},
                          {"name": "bulk", "models": ["big"]}],
               "prices": {"small": {"hourly_usd": 3.6, "power_watts": 1000,
                                    "cached_weight": 0, "completion_weight": 2},
                          "big": {"input": 1, "output": 2}}}
        path = os.path.join(self.dir, "switchyard.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        self.gw = harness.start(self, [harness.binary("switchyard"), "-c", path], port=self.port)

    def chat(self, model, n=1):
        for i in range(n):
            r = harness.post_json(self.port, "/v1/chat/completions", {
                "model": model, "max_tokens": 5,
                "messages": [{"role": "user", "content": "count %d the words" % i}]})
            self.assertEqual(r.status, 200, r.body)

    def metrics(self):
        r = harness.request(self.admin, "GET", "/metrics")
        self.assertEqual(r.status, 200)
        out = {}
        for line in r.body.decode().splitlines():
            if line.startswith("switchyard_hourly") or line.startswith("switchyard_endpoint_"):
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out

    def log_lines(self):
        lines = []
        for _ in range(50):
            if os.path.exists(self.log):
                with open(self.log) as f:
                    lines = [json.loads(l) for l in f if l.strip()]
            if lines:
                break
            time.sleep(0.05)
        return lines

    def test_endpoint_cost_is_spread_over_routes_and_models_exactly(self):
        t0 = time.monotonic()
        self.chat("small", 6)
        time.sleep(0.3)
        m = self.metrics()
        elapsed = time.monotonic() - t0
        total = idle = shares = 0
        for ep in ("gpu0", "gpu1"):
            cost = m['switchyard_endpoint_hourly_cost_usd_total{endpoint="%s"}' % ep]
            secs = m['switchyard_endpoint_accounted_seconds_total{endpoint="%s"}' % ep]
            self.assertAlmostEqual(cost, 3.6 * secs / 3600, delta=1e-9)
            self.assertLessEqual(secs, elapsed)
            self.assertGreater(secs, 0)
            total += cost
            idle += m['switchyard_endpoint_hourly_idle_cost_usd_total{endpoint="%s"}' % ep]
            joules = m['switchyard_endpoint_energy_joules_total{endpoint="%s"}' % ep]
            busy = m['switchyard_endpoint_busy_seconds_total{endpoint="%s"}' % ep]
            # Each endpoint served 3 requests of a few ms each.
            self.assertGreater(busy, 0)
            self.assertLess(busy, secs)
            # Idle power (0.3 of 1 kW), full power while busy: one interval.
            self.assertAlmostEqual(joules, 1000 * (0.3 * secs + 0.7 * busy), delta=2e-3)
            shares += m['switchyard_hourly_cost_usd_total{endpoint="%s",route="chat",model="small"}' % ep]
        self.assertAlmostEqual(shares + idle, total, delta=1e-12)
        self.assertFalse(any('model="big"' in k for k in m))
        # The weighted units: uncached prompt x 1 + completion x 2.
        lines = [l for l in self.log_lines() if l["model"] == "small"]
        self.assertEqual(len(lines), 6)
        units = sum(l["prompt_tokens"] - l["cached_tokens"] + 2 * l["completion_tokens"]
                    for l in lines)
        self.assertAlmostEqual(sum(v for k, v in m.items()
                                   if k.startswith("switchyard_hourly_token_units_total")), units)

    def test_access_log_says_hourly_or_price(self):
        self.chat("small", 2)
        self.chat("big", 1)
        time.sleep(0.2)
        self.metrics()      # closes the first interval: the endpoints have a rate
        stats = harness.request(self.admin, "GET", "/admin/stats").json()["hourly"]
        rates = {}
        for ep, st in stats["endpoints"].items():
            self.assertGreater(st["cost_usd"], 0)
            self.assertGreater(st["usd_per_mtok"], 0)
            self.assertGreater(st["tokens_per_joule"], 0)
            self.assertGreaterEqual(st["utilization"], 0)
            self.assertLessEqual(st["utilization"], 1)
            # One interval with tokens (then an idle one, closed by this read).
            rates[ep] = ((st["cost_usd"] - st["idle_cost_usd"]) / st["token_units"]
                         if st["token_units"] else None)
        self.assertIn("chat", stats["routes"])
        self.assertIn("small", stats["models"])
        self.assertNotIn("big", stats["models"])
        self.chat("small", 2)
        lines = self.log_lines()
        small = [l for l in lines if l["model"] == "small"]
        big = [l for l in lines if l["model"] == "big"]
        self.assertTrue(all(l["cost_source"] == "hourly" for l in small))
        self.assertEqual([l["cost_usd"] for l in small[:2]], [None, None])
        for l in small[2:]:
            units = l["prompt_tokens"] - l["cached_tokens"] + 2 * l["completion_tokens"]
            # At the rate of its endpoint's last interval with tokens.
            self.assertIsNotNone(l["cost_usd"])
            if rates.get(l["endpoint"]):
                self.assertAlmostEqual(l["cost_usd"], units * rates[l["endpoint"]],
                                       delta=1e-9)
        self.assertEqual(big[0]["cost_source"], "price")
        self.assertAlmostEqual(big[0]["cost_usd"], (big[0]["prompt_tokens"] +
                                                    2 * big[0]["completion_tokens"]) / 1e6)


class BackendHourlyCost(unittest.TestCase):
    """A backend's own cost_per_hour and gpus: its requests are charged by
    the hour even when their model has a price per token."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="sy-backend-hourly-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        base = harness.free_ports(4)
        self.port, self.admin = base + 2, base + 3
        harness.start(self, [harness.binary("sy-sim"), "--port", str(base), "--replicas", "2",
                             "--speed", "0", "--quiet", "--log-requests", "0"], port=base + 1)
        self.log = os.path.join(self.dir, "access.log")
        self.cfg = {"listen": "127.0.0.1:%d" % self.port, "admin": "127.0.0.1:%d" % self.admin,
                    "access_log": self.log,
                    "backends": [{"name": "h100", "url": "http://127.0.0.1:%d/v1" % base,
                                  "cost_per_hour": 7.2, "gpus": 4, "power_watts": 2800,
                                  "idle_power_share": 0.5, "completion_weight": 3},
                                 {"name": "l4", "url": "http://127.0.0.1:%d/v1" % (base + 1),
                                  "cost_per_hour": 0.9, "gpus": 1}],
                    "routes": [{"name": "chat", "models": ["m"]}],
                    "prices": {"m": {"input": 100, "output": 100}}}

    def start(self, cfg):
        path = os.path.join(self.dir, "switchyard.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        return path

    def test_each_backend_costs_its_own_hour_and_says_its_gpus(self):
        path = self.start(self.cfg)
        harness.start(self, [harness.binary("switchyard"), "-c", path], port=self.port)
        for i in range(6):
            r = harness.post_json(self.port, "/v1/chat/completions", {
                "model": "m", "max_tokens": 4,
                "messages": [{"role": "user", "content": "hello %d" % i}]})
            self.assertEqual(r.status, 200, r.body)
        time.sleep(0.2)
        body = harness.request(self.admin, "GET", "/metrics").body.decode()
        m = {}
        for line in body.splitlines():
            if line.startswith("switchyard_endpoint_"):
                name, value = line.rsplit(" ", 1)
                m[name] = float(value)
        self.assertEqual(m['switchyard_endpoint_gpus{endpoint="h100"}'], 4)
        self.assertEqual(m['switchyard_endpoint_gpus{endpoint="l4"}'], 1)
        for ep, usd_h in (("h100", 7.2), ("l4", 0.9)):
            secs = m['switchyard_endpoint_accounted_seconds_total{endpoint="%s"}' % ep]
            self.assertGreater(secs, 0)
            self.assertAlmostEqual(m['switchyard_endpoint_hourly_cost_usd_total{endpoint="%s"}' % ep],
                                   usd_h * secs / 3600, delta=1e-9)
        # Energy of the backend that says its power (half of 2.8 kW idle);
        # none for the one that does not.
        secs = m['switchyard_endpoint_accounted_seconds_total{endpoint="h100"}']
        busy = m['switchyard_endpoint_busy_seconds_total{endpoint="h100"}']
        self.assertAlmostEqual(m['switchyard_endpoint_energy_joules_total{endpoint="h100"}'],
                               2800 * (0.5 * secs + 0.5 * busy), delta=2e-3)
        self.assertEqual(m['switchyard_endpoint_energy_joules_total{endpoint="l4"}'], 0)
        stats = harness.request(self.admin, "GET", "/admin/stats").json()
        self.assertEqual(stats["endpoints"]["h100"]["gpus"], 4)
        self.assertEqual(stats["endpoints"]["l4"]["cost_per_hour"], 0.9)
        self.assertEqual(set(stats["hourly"]["endpoints"]), {"h100", "l4"})
        # Units of h100 weigh its completion tokens 3 times.
        for _ in range(50):
            lines = []
            if os.path.exists(self.log):
                with open(self.log) as f:
                    lines = [json.loads(l) for l in f if l.strip()]
            if len(lines) == 6:
                break
            time.sleep(0.05)
        self.assertEqual(len(lines), 6)
        self.assertTrue(all(l["cost_source"] == "hourly" for l in lines), lines)
        units = sum(l["prompt_tokens"] - l["cached_tokens"] + 3 * l["completion_tokens"]
                    for l in lines if l["endpoint"] == "h100")
        self.assertAlmostEqual(stats["hourly"]["endpoints"]["h100"]["token_units"], units)

    def test_power_without_a_cost_per_hour_is_a_config_error(self):
        cfg = dict(self.cfg)
        cfg["backends"] = [dict(self.cfg["backends"][1]), dict(self.cfg["backends"][0])]
        del cfg["backends"][1]["cost_per_hour"]
        path = self.start(cfg)
        r = subprocess.run([harness.binary("switchyard"), "-t", "-c", path],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        err = r.stdout + r.stderr
        for key in ("power_watts", "idle_power_share", "completion_weight"):
            self.assertIn("backends[1].%s" % key, err)
        self.assertIn("cost_per_hour", err)


class BusyTime(unittest.TestCase):
    """An endpoint's busy time is the time it has a request in flight on
    any worker: requests at once on two workers count once, and an
    accounting interval of its own length closes on time."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="sy-busy-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        base = harness.free_ports(3)
        self.port, self.admin = base + 1, base + 2
        self.log = os.path.join(self.dir, "access.log")
        # About 20 decode steps of 20 ms: each request takes >= 0.4 s.
        harness.start(self, [harness.binary("sy-sim"), "--port", str(base),
                             "--decode-base-us", "20000", "--decode-per-seq-us", "0",
                             "--output-tokens", "fixed:20", "--quiet",
                             "--log-requests", "0"], port=base)
        cfg = {"listen": "127.0.0.1:%d" % self.port, "admin": "127.0.0.1:%d" % self.admin,
               "workers": 2, "access_log": self.log, "accounting_interval_ms": 500,
               "backends": [{"name": "gpu0", "url": "http://127.0.0.1:%d/v1" % base,
                             "cost_per_hour": 3.6, "power_watts": 1000}],
               "routes": [{"name": "chat", "models": ["*"]}]}
        path = os.path.join(self.dir, "switchyard.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        harness.start(self, [harness.binary("switchyard"), "-c", path], port=self.port)

    def chat(self, i):
        t = time.monotonic()
        r = harness.post_json(self.port, "/v1/chat/completions", {
            "model": "m", "messages": [{"role": "user", "content": "busy %d" % i}]})
        self.assertEqual(r.status, 200, r.body)
        return time.monotonic() - t

    def busy(self):
        body = harness.request(self.admin, "GET", "/metrics").body.decode()
        for line in body.splitlines():
            if line.startswith('switchyard_endpoint_busy_seconds_total{endpoint="gpu0"}'):
                return float(line.rsplit(" ", 1)[1])
        self.fail("no busy time of gpu0 in /metrics")

    def test_requests_at_once_on_two_workers_are_busy_once(self):
        self.chat(0)    # the endpoint's first interval starts
        before = self.busy()
        t0 = time.monotonic()
        took = harness.concurrently([lambda i=i: self.chat(i) for i in range(1, 9)])
        wall = time.monotonic() - t0
        self.assertTrue(all(isinstance(t, float) for t in took), took)
        busy = self.busy() - before
        # At least the longest request; at most the burst's wall time
        # (summed per worker it would come near twice that).
        self.assertGreaterEqual(busy, 0.5 * max(took))
        self.assertLessEqual(busy, wall + 0.01)

    def test_an_interval_closes_at_its_configured_length(self):
        # Nothing reads /metrics: only the interval's end gives a rate.
        for i in range(2):
            self.chat(i)
        time.sleep(0.6)
        for i in range(2, 4):
            self.chat(i)
        lines = []
        deadline = time.monotonic() + 5
        while len(lines) < 4 and time.monotonic() < deadline:
            with open(self.log) as f:
                lines = [json.loads(l) for l in f if l.strip()]
            time.sleep(0.05)
        self.assertEqual(len(lines), 4)
        self.assertEqual([l["cost_source"] for l in lines], ["hourly"] * 4)
        # Before the first interval closed, no rate; the last request
        # was charged at the rate of the interval (0.5 s) that closed.
        self.assertIsNone(lines[1]["cost_usd"])
        self.assertIsNotNone(lines[3]["cost_usd"])
        self.assertGreater(lines[3]["cost_usd"], 0)


class GatewayTokenPace(unittest.TestCase):
    """Inter-token latency and time per output token, in the access log and
    per route and served model in /metrics and /admin/stats."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="sy-pace-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        base = harness.free_ports(3)
        self.port, self.admin = base + 1, base + 2
        # One sequence at a time decodes a token every 20 ms.
        harness.start(self, [harness.binary("sy-sim"), "--port", str(base), "--quiet",
                             "--decode-base-us", "19500", "--decode-per-seq-us", "500",
                             "--slots", "1", "--log-requests", "0"], port=base)
        self.log = os.path.join(self.dir, "access.log")
        cfg = {"listen": "127.0.0.1:%d" % self.port, "admin": "127.0.0.1:%d" % self.admin,
               "workers": 1, "access_log": self.log,
               "backends": [{"name": "sim", "url": "http://127.0.0.1:%d/v1" % base}],
               "routes": [{"name": "chat", "models": ["a", "b"]}]}
        path = os.path.join(self.dir, "switchyard.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        harness.start(self, [harness.binary("switchyard"), "-c", path], port=self.port)

    def stream(self, model, tokens):
        events = harness.stream_events(self.port, "/v1/chat/completions", {
            "model": model, "max_tokens": tokens, "stream": True,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": "say something"}]})
        self.assertTrue(events)

    def test_itl_and_tpot_are_the_decode_step(self):
        self.stream("a", 20)
        self.stream("a", 20)
        self.stream("b", 10)
        time.sleep(0.2)
        with open(self.log) as f:
            lines = [json.loads(l) for l in f if l.strip()]
        self.assertEqual([l["model"] for l in lines], ["a", "a", "b"])
        for l in lines:
            self.assertGreater(l["itl_ms"], 10)
            self.assertLess(l["itl_ms"], 40)
            self.assertGreater(l["tpot_ms"], 15)
            self.assertLess(l["tpot_ms"], 30)
            self.assertAlmostEqual(l["tpot_ms"], (l["latency_ms"] - l["ttft_ms"]) /
                                   (l["completion_tokens"] - 1), delta=0.01)
        r = harness.request(self.admin, "GET", "/metrics")
        text = r.body.decode()
        vals = {}
        for line in text.splitlines():
            if not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                vals[name] = float(value)
        self.assertEqual(vals['switchyard_model_ttft_seconds_count{model="a"}'], 2)
        self.assertEqual(vals['switchyard_model_ttft_seconds_count{model="b"}'], 1)
        self.assertEqual(vals['switchyard_model_tpot_seconds_count{model="a"}'], 2)
        self.assertEqual(vals['switchyard_model_request_duration_seconds_count{model="b"}'], 1)
        itl_a = vals['switchyard_model_itl_seconds_count{model="a"}']
        itl_b = vals['switchyard_model_itl_seconds_count{model="b"}']
        # One gap per write after the first: a stream of 20 tokens is 23
        # events (the role chunk, 20 tokens, the finish, [DONE]), at most
        # 22 gaps when each is written on its own, fewer when reads coalesce.
        self.assertGreater(itl_a, 2 * 10)
        self.assertLessEqual(itl_a, 2 * 22)
        self.assertEqual(vals['switchyard_itl_seconds_count{route="chat"}'], itl_a + itl_b)
        mean = vals['switchyard_model_itl_seconds_sum{model="a"}'] / itl_a
        self.assertGreater(mean, 0.010)
        self.assertLess(mean, 0.040)
        stats = harness.request(self.admin, "GET", "/admin/stats").json()
        self.assertEqual(sorted(stats["models"]), ["a", "b"])
        self.assertEqual(stats["models"]["a"]["requests"], 2)
        self.assertGreater(stats["models"]["b"]["itl_ms"]["p50"], 10)
        self.assertGreater(stats["routes"]["chat"]["tpot_ms"]["p99"], 15)


if __name__ == "__main__":
    harness.main()
