#!/usr/bin/env python3
# tests/integration/test_admin_api.py: who may use the admin API — a token from the environment for writes and (by default) reads, metrics left open by a switch, browsers' Origins refused, and a connection limit of its own.
"""The admin listener's access rules (admin_api), on the real binary."""

import json
import os
import socket
import subprocess
import tempfile
import time
import unittest

import harness
from harness import binary, free_ports, request, start
from test_proxy import Gateway

TOKEN = "adm-7f3c9e2b5a"


class AdminCase(unittest.TestCase):
    def setUp(self):
        self.sim_port = free_ports(1)
        start(self, [binary("sy-sim"), "--port", str(self.sim_port), "--speed", "0", "--quiet"],
              port=self.sim_port, name="sy-sim")

    def gateway(self, admin_api=None, env=None, **top):
        cfg = {"backends": [{"name": "s", "url": "http://127.0.0.1:%d/v1" % self.sim_port}],
               "routes": [{"name": "chat", "models": ["m"]}]}
        if admin_api is not None:
            cfg["admin_api"] = admin_api
        cfg.update(top)
        return Gateway(self, cfg, env=env if env is not None else {"SY_ADMIN_TOKEN": TOKEN})


def auth(token=TOKEN):
    return {"Authorization": "Bearer " + token}


class Token(AdminCase):
    def test_writes_and_reads_need_the_token_health_stays_open(self):
        gw = self.gateway({"token_env": "SY_ADMIN_TOKEN"})
        for method, path in (("POST", "/admin/reload"), ("GET", "/admin/stats"), ("GET", "/metrics"),
                             ("GET", "/admin/keys"), ("POST", "/admin/keys"), ("GET", "/admin/usage")):
            for headers in ({}, auth("wrong"), {"Authorization": TOKEN}):
                r = request(gw.admin, method, path, {} if method == "POST" else None, headers)
                self.assertEqual(r.status, 401, (method, path, headers))
                self.assertEqual(r.json()["error"]["code"], "admin_token_required")
                self.assertEqual(r.headers["www-authenticate"], "Bearer")
                self.assertNotIn(TOKEN, r.body.decode())
        self.assertEqual(request(gw.admin, "GET", "/healthz").status, 200)
        self.assertEqual(request(gw.admin, "POST", "/admin/reload", headers=auth()).status, 200)
        self.assertEqual(request(gw.admin, "GET", "/admin/stats", headers=auth()).status, 200)
        self.assertIn("switchyard_requests_total",
                      request(gw.admin, "GET", "/metrics", headers=auth()).body.decode())
        # The client port knows nothing of the admin token.
        self.assertEqual(gw.post("/v1/chat/completions", {"model": "m", "messages": [
            {"role": "user", "content": "hi"}]}).status, 200)

    def test_reads_and_metrics_may_be_left_open(self):
        gw = self.gateway({"token_env": "SY_ADMIN_TOKEN", "protect_reads": False})
        self.assertEqual(request(gw.admin, "GET", "/admin/stats").status, 200)
        self.assertEqual(request(gw.admin, "POST", "/admin/reload").status, 401)
        gw = self.gateway({"token_env": "SY_ADMIN_TOKEN", "metrics_open": True})
        self.assertEqual(request(gw.admin, "GET", "/metrics").status, 200)
        self.assertEqual(request(gw.admin, "GET", "/admin/stats").status, 401)

    def test_a_token_variable_that_is_not_set_is_a_config_error(self):
        gw_cfg = {"backends": [{"name": "s", "url": "http://127.0.0.1:%d/v1" % self.sim_port}],
                  "routes": [{"name": "chat", "models": ["m"]}],
                  "admin_api": {"token_env": "SY_NO_SUCH_VARIABLE"}}
        fd, path = tempfile.mkstemp(suffix=".json")
        self.addCleanup(os.unlink, path)
        with open(fd, "w") as f:
            json.dump(gw_cfg, f)
        r = subprocess.run([binary("switchyard"), "-t", "-c", path], capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn("admin_api.token_env", r.stdout + r.stderr)
        self.assertIn("SY_NO_SUCH_VARIABLE", r.stdout + r.stderr)

    def test_without_a_token_the_api_stays_open_as_before(self):
        gw = self.gateway()
        self.assertEqual(request(gw.admin, "POST", "/admin/reload").status, 200)
        self.assertEqual(request(gw.admin, "GET", "/admin/stats").status, 200)


class Origins(AdminCase):
    def test_a_browser_page_of_another_origin_cannot_use_it_even_with_the_token(self):
        gw = self.gateway({"token_env": "SY_ADMIN_TOKEN",
                           "allowed_origins": ["https://ops.example.com"]})
        h = dict(auth(), Origin="http://evil.example")
        r = request(gw.admin, "POST", "/admin/reload", headers=h)
        self.assertEqual(r.status, 403)
        self.assertEqual(r.json()["error"]["code"], "origin_not_allowed")
        self.assertEqual(request(gw.admin, "GET", "/admin/stats", headers=h).status, 403)
        # Its own origin (the dashboard's) and an allowed one may.
        own = dict(auth(), Origin="http://127.0.0.1:%d" % gw.admin)
        self.assertEqual(request(gw.admin, "POST", "/admin/reload", headers=own).status, 200)
        ok = dict(auth(), Origin="https://ops.example.com")
        self.assertEqual(request(gw.admin, "POST", "/admin/reload", headers=ok).status, 200)
        # Without a token the Origin check still holds.
        gw = self.gateway()
        r = request(gw.admin, "POST", "/admin/reload", headers={"Origin": "http://evil.example"})
        self.assertEqual(r.status, 403)


class Connections(AdminCase):
    def test_idle_admin_connections_are_bounded_and_never_starve_the_client_port(self):
        gw = self.gateway({"max_connections": 4})
        held = []
        for _ in range(40):
            s = socket.create_connection(("127.0.0.1", gw.admin))
            held.append(s)
        time.sleep(0.3)
        # The client port serves on.
        r = gw.post("/v1/chat/completions", {"model": "m", "messages": [{"role": "user", "content": "hi"}]})
        self.assertEqual(r.status, 200)
        # Beyond the limit, admin connections are turned away at once.
        refused = 0
        for s in held:
            s.settimeout(2)
            try:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
                data = s.recv(4096)
                refused += data == b"" or data.startswith(b"HTTP/1.1 503")
            except OSError:
                refused += 1
        self.assertGreaterEqual(refused, 36)
        for s in held:
            s.close()
        time.sleep(0.3)
        self.assertEqual(request(gw.admin, "GET", "/healthz").status, 200)


if __name__ == "__main__":
    harness.main()
