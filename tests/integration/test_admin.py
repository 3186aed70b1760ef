"""The admin listener's guards end to end: the admin token (writes always,
reads unless protect_reads is off, /metrics unless metrics_open), the
Origin check, its own connection limit, the warning when it is not on
loopback, and the errors of a bad "admin" object."""
import json
import os
import socket
import subprocess
import tempfile
import time
import unittest

import harness
from harness import binary, free_ports, request, start
from test_proxy import Gateway, SimCase, chat, sim_config

TOKEN = "adm-0123456789-secret"
ENV = {"SY_TEST_ADMIN_TOKEN": TOKEN}


def bearer(token=TOKEN):
    return {"Authorization": "Bearer " + token}


class AdminGateway(Gateway):
    """A gateway with an "admin_api" object (admin_keys, which a test may
    change and write again)."""

    def __init__(self, test, config, admin, env=None):
        self.admin_keys = admin
        super().__init__(test, config, env=env)

    def write(self, config):
        super().write(dict(config, admin_api=self.admin_keys))

    def get(self, path, headers=None):
        return request(self.admin, "GET", path, headers=headers)

    def reload(self, headers=None):
        return request(self.admin, "POST", "/admin/reload", headers=headers)


class AdminCase(SimCase):
    replicas = 1
    admin = None		# the "admin_api" object's keys; None: none
    env = None

    def setUp(self):
        self.sim_port = free_ports(1)
        self.sim = start(self, [binary("sy-sim"), "--port", str(self.sim_port), "--replicas", "1",
                                "--speed", "0", "--quiet"], port=self.sim_port, name="sy-sim")
        if self.admin is None:
            self.gw = Gateway(self, self.config(), env=self.env)
        else:
            self.gw = AdminGateway(self, self.config(), self.admin, env=self.env)

    def config(self):
        return sim_config(self.sim_port, 1)

    def error(self, r, status, code):
        self.assertEqual(r.status, status, r.body)
        self.assertEqual(r.headers.get("content-type"), "application/json")
        self.assertEqual(r.json()["error"]["code"], code, r.body)
        return r.json()["error"]


class WithoutToken(AdminCase):
    def test_reads_and_reload_are_open_and_unknown_paths_list_the_routes(self):
        self.assertEqual(request(self.gw.admin, "GET", "/admin/stats").status, 200)
        r = request(self.gw.admin, "POST", "/admin/reload")
        self.assertEqual((r.status, r.json()), (200, {"status": "reloaded"}))
        e = self.error(request(self.gw.admin, "GET", "/nope"), 404, "not_found")
        self.assertIn("POST /admin/reload", e["message"])
        self.error(request(self.gw.admin, "GET", "/admin/reload"), 405, "method_not_allowed")


class Token(AdminCase):
    admin = {"token_env": "SY_TEST_ADMIN_TOKEN"}
    env = ENV

    def test_reload_needs_the_token(self):
        e = self.error(self.gw.reload(), 401, "admin_token_required")
        self.assertIn("Authorization: Bearer", e["message"])
        self.assertIn("Bearer", self.gw.reload().headers.get("www-authenticate", ""))
        self.error(self.gw.reload(bearer("adm-0123456789-secreT")), 401, "admin_token_required")
        self.error(self.gw.reload(bearer(TOKEN + "x")), 401, "admin_token_required")
        self.error(self.gw.reload({"Authorization": TOKEN}), 401, "admin_token_required")
        r = self.gw.reload(bearer())
        self.assertEqual((r.status, r.json()), (200, {"status": "reloaded"}))
        self.assertNotIn(TOKEN, self.gw.proc.output())

    def test_a_reload_takes_a_new_token_at_once(self):
        self.gw.proc.stop()
        env = {"SY_TEST_ADMIN_TOKEN": TOKEN, "SY_TEST_ADMIN_TOKEN2": "adm-second-token"}
        self.gw = AdminGateway(self, self.config(), self.admin, env=env)
        self.gw.admin_keys = {"token_env": "SY_TEST_ADMIN_TOKEN2"}
        self.gw.write(self.gw.config)
        self.assertEqual(self.gw.reload(bearer()).status, 200)
        self.error(self.gw.reload(bearer()), 401, "admin_token_required")
        self.assertEqual(self.gw.reload(bearer("adm-second-token")).status, 200)

    def test_reads_need_it_too_but_health_and_the_page_do_not(self):
        self.error(self.gw.get("/admin/stats"), 401, "admin_token_required")
        self.error(self.gw.get("/metrics"), 401, "admin_token_required")
        self.assertEqual(self.gw.get("/admin/stats", bearer()).status, 200)
        r = self.gw.get("/metrics", bearer())
        self.assertEqual(r.status, 200)
        self.assertIn("# TYPE", r.body.decode())
        self.assertEqual(self.gw.get("/healthz").status, 200)

    def test_the_dashboard_page_is_open_self_contained_and_not_framable(self):
        for path in ("/", "/dashboard"):
            r = self.gw.get(path)
            self.assertEqual(r.status, 200)
            self.assertEqual(r.headers["content-type"], "text/html; charset=utf-8")
            self.assertIn("frame-ancestors 'none'", r.headers["content-security-policy"])
            self.assertIn("connect-src 'self'", r.headers["content-security-policy"])
            self.assertEqual(r.headers["x-frame-options"], "DENY")
            page = r.body.decode()
            self.assertLess(len(r.body), 300 * 1024)
            self.assertIn("<title>switchyard</title>", page)
            self.assertIn('fetch("/admin/stats"', page)
            self.assertNotIn("http://", page)
            self.assertNotIn("https://", page)
        # The page holds no data: what it shows comes from the guarded stats.
        self.error(self.gw.get("/admin/stats"), 401, "admin_token_required")

    def test_a_request_through_the_gateway_needs_no_admin_token(self):
        self.assertEqual(self.gw.post("/v1/chat/completions", chat()).status, 200)


class OpenReads(AdminCase):
    admin = {"token_env": "SY_TEST_ADMIN_TOKEN", "protect_reads": False}
    env = ENV

    def test_reads_are_open_and_writes_are_not(self):
        self.assertEqual(self.gw.get("/admin/stats").status, 200)
        self.assertEqual(self.gw.get("/metrics").status, 200)
        self.error(self.gw.reload(), 401, "admin_token_required")
        self.assertEqual(self.gw.reload(bearer()).status, 200)


class MetricsOpen(AdminCase):
    admin = {"token_env": "SY_TEST_ADMIN_TOKEN", "metrics_open": True}
    env = ENV

    def test_metrics_are_open_and_the_other_reads_are_not(self):
        self.assertEqual(self.gw.get("/metrics").status, 200)
        self.error(self.gw.get("/admin/stats"), 401, "admin_token_required")
        self.error(self.gw.reload(), 401, "admin_token_required")


class Origins(AdminCase):
    admin = {"allowed_origins": ["https://ops.example"]}

    def test_a_foreign_origin_is_refused_even_with_the_token(self):
        for path, method in (("/admin/reload", "POST"), ("/admin/stats", "GET")):
            r = request(self.gw.admin, method, path, headers={"Origin": "http://evil.example"})
            e = self.error(r, 403, "origin_not_allowed")
            self.assertIn("http://evil.example", e["message"])
        # The reload was refused before it ran: nothing logged it.
        self.assertNotIn("reloaded", self.gw.proc.output())

    def test_an_allowed_origin_and_the_listener_itself_are_taken(self):
        r = request(self.gw.admin, "POST", "/admin/reload", headers={"Origin": "https://ops.example"})
        self.assertEqual(r.status, 200, r.body)
        me = "127.0.0.1:%d" % self.gw.admin
        r = request(self.gw.admin, "POST", "/admin/reload",
                    headers={"Origin": "http://" + me, "Host": me})
        self.assertEqual(r.status, 200, r.body)

    def test_a_rebound_name_is_not_the_listener(self):
        # DNS rebinding: evil.example resolves to 127.0.0.1, so Origin and Host agree.
        host = "evil.example:%d" % self.gw.admin
        r = request(self.gw.admin, "POST", "/admin/reload",
                    headers={"Origin": "http://" + host, "Host": host})
        self.error(r, 403, "origin_not_allowed")


class MaxConnections(AdminCase):
    admin = {"max_connections": 3}

    def test_idle_admin_connections_beyond_the_limit_are_refused_and_the_main_port_serves(self):
        idle = [socket.create_connection(("127.0.0.1", self.gw.admin)) for _ in range(3)]
        try:
            time.sleep(0.2)
            s = socket.create_connection(("127.0.0.1", self.gw.admin), timeout=5)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            s.close()
            self.assertTrue(data.startswith(b"HTTP/1.1 503"), data)
            self.assertIn(b"too many connections", data)
            self.assertEqual(self.gw.post("/v1/chat/completions", chat()).status, 200)
        finally:
            for s in idle:
                s.close()
        r = harness.eventually(lambda: request(self.gw.admin, "GET", "/healthz"),
                               lambda r: r.status == 200)
        self.assertEqual(r.status, 200)

    def test_a_reload_applies_a_new_limit(self):
        self.gw.admin_keys = {"max_connections": 1}
        self.gw.write(self.gw.config)
        self.assertEqual(request(self.gw.admin, "POST", "/admin/reload").status, 200)
        time.sleep(0.2)
        idle = socket.create_connection(("127.0.0.1", self.gw.admin))
        try:
            time.sleep(0.2)
            r = request(self.gw.admin, "GET", "/healthz")
            self.assertEqual(r.status, 503)
        finally:
            idle.close()


class Reports(AdminCase):
    """admin_api.reports_dir: the lab's reports, listed and served read-only."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="sy-reports-")
        with open(os.path.join(self.dir, "run-1.md"), "w") as f:
            f.write("# Run 1\np2c_ewma: p99 41 ms\n")
        with open(os.path.join(self.dir, ".hidden"), "w") as f:
            f.write("no")
        os.mkdir(os.path.join(self.dir, "sub"))
        os.symlink("/etc/passwd", os.path.join(self.dir, "link.md"))
        self.admin = {"reports_dir": self.dir, "token_env": "SY_TEST_ADMIN_TOKEN"}
        self.env = ENV
        super().setUp()

    def test_only_the_regular_files_are_listed_and_served(self):
        r = self.gw.get("/admin/reports", bearer())
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual([f["name"] for f in r.json()["reports"]], ["run-1.md"])
        self.assertEqual(r.json()["reports"][0]["bytes"], len("# Run 1\np2c_ewma: p99 41 ms\n"))
        r = self.gw.get("/admin/reports/run-1.md", bearer())
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"# Run 1\np2c_ewma: p99 41 ms\n")
        self.assertEqual(r.headers["content-type"], "text/markdown; charset=utf-8")
        self.assertIn("sandbox", r.headers["content-security-policy"])
        for name in ("link.md", ".hidden", "sub", "..%2Fetc%2Fpasswd", "../run-1.md", "nope.md", ""):
            self.error(self.gw.get("/admin/reports/" + name, bearer()), 404, "not_found")

    def test_reports_are_reads_under_the_token(self):
        self.error(self.gw.get("/admin/reports"), 401, "admin_token_required")
        self.error(self.gw.get("/admin/reports/run-1.md"), 401, "admin_token_required")

    def test_without_a_directory_there_are_none(self):
        e = self.error(AdminGateway(self, self.config(), {}).get("/admin/reports"), 404, "not_found")
        self.assertIn("admin_api.reports_dir is not set", e["message"])


class Startup(unittest.TestCase):
    def run_sy(self, config, env=None, check=True, wait=1.0):
        """switchyard -t (check) or a start for `wait` seconds on config;
        returns (exit code, output)."""
        d = tempfile.mkdtemp(prefix="sy-admin-")
        path = os.path.join(d, "c.json")
        with open(path, "w") as f:
            json.dump(config, f)
        full = dict(os.environ)
        full.update(env or {})
        if check:
            r = subprocess.run([binary("switchyard"), "-t", "-c", path], env=full,
                               capture_output=True, text=True, timeout=30)
            return r.returncode, r.stdout + r.stderr
        port = free_ports(2)
        config.setdefault("listen", "127.0.0.1:%d" % port)
        with open(path, "w") as f:
            json.dump(config, f)
        p = start(self, [binary("switchyard"), "-c", path], port=port, env=env)
        time.sleep(wait)
        return None, p.output()

    def base(self):
        return {"backends": [{"name": "b", "url": "http://127.0.0.1:9/v1"}],
                "routes": [{"name": "r", "models": ["m"]}], "access_log": "off", "workers": 1}

    def test_a_non_loopback_admin_is_warned_about_louder_without_a_token(self):
        port = free_ports(3)
        cfg = dict(self.base(), admin="0.0.0.0:%d" % port)
        _, out = self.run_sy(cfg, check=False)
        self.assertIn("is not on a loopback address: anyone who reaches it", out)
        cfg = dict(self.base(), admin="0.0.0.0:%d" % (port + 1),
                   admin_api={"token_env": "SY_TEST_ADMIN_TOKEN"})
        _, out = self.run_sy(cfg, env=ENV, check=False)
        self.assertIn("is not on a loopback address: its token guards it", out)
        cfg = dict(self.base(), admin="127.0.0.1:%d" % (port + 2))
        _, out = self.run_sy(cfg, check=False)
        self.assertNotIn("loopback", out)

    def test_an_unset_token_variable_is_a_load_error(self):
        env = dict(os.environ)
        env.pop("SY_TEST_ADMIN_TOKEN_UNSET", None)
        cfg = dict(self.base(), admin_api={"token_env": "SY_TEST_ADMIN_TOKEN_UNSET"})
        rc, out = self.run_sy(cfg)
        self.assertNotEqual(rc, 0)
        self.assertIn("admin_api.token_env: environment variable SY_TEST_ADMIN_TOKEN_UNSET is not set", out)

    def test_a_short_token_is_a_load_error(self):
        cfg = dict(self.base(), admin_api={"token_env": "SY_TEST_SHORT"})
        rc, out = self.run_sy(cfg, env={"SY_TEST_SHORT": "abc123"})
        self.assertNotEqual(rc, 0)
        self.assertIn("admin_api.token_env: the token in SY_TEST_SHORT has 6 characters; "
                      "an admin token needs at least 12", out)
        self.assertNotIn("abc123", out)

    def test_bad_admin_api_values_are_named(self):
        rc, out = self.run_sy(dict(self.base(), admin_api={"tokn_env": "X"}))
        self.assertNotEqual(rc, 0)
        self.assertIn('admin_api.tokn_env: unknown key "tokn_env"; known: token_env', out)
        rc, out = self.run_sy(dict(self.base(), admin_api={"max_connections": 0}))
        self.assertIn("admin_api.max_connections: must be from 1 to 100000", out)
        rc, out = self.run_sy(dict(self.base(), admin_api={"allowed_origins": [""]}))
        self.assertIn("admin_api.allowed_origins[0]:", out)
        rc, out = self.run_sy(dict(self.base(), admin=None, admin_api={"protect_reads": False}))
        self.assertEqual(rc, 0, out)


if __name__ == "__main__":
    harness.main()
