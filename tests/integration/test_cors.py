"""CORS: a browser on an allowed origin may call the gateway (preflights
answered, Access-Control-Allow-Origin on answers and streams); others get
no CORS headers; off unless configured."""
import unittest

from harness import binary, free_ports, request, start
from test_proxy import Gateway

APP = "https://app.example.com"
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}


class Cors(unittest.TestCase):
    def setUp(self):
        self.sim = free_ports(1)
        start(self, [binary("sy-sim"), "--port", str(self.sim), "--speed", "0", "--quiet"],
              port=self.sim, name="sy-sim")

    def gateway(self, cors=None):
        cfg = {"backends": [{"name": "s", "url": "http://127.0.0.1:%d/v1" % self.sim}],
               "routes": [{"name": "r", "models": ["m"]}]}
        if cors is not None:
            cfg["cors"] = cors
        return Gateway(self, cfg)

    def preflight(self, gw, origin, path="/v1/chat/completions"):
        return request(gw.port, "OPTIONS", path, None, {
            "Origin": origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, x-stainless-os"})

    def test_a_preflight_from_an_allowed_origin_is_answered(self):
        gw = self.gateway({"origins": [APP], "max_age": 3600})
        for path in ("/v1/chat/completions", "/v1/responses", "/v1/messages", "/v1/models"):
            r = self.preflight(gw, APP, path)
            self.assertEqual(r.status, 204, r.body)
            self.assertEqual(r.headers["access-control-allow-origin"], APP)
            self.assertEqual(r.headers["vary"], "Origin")
            self.assertIn("POST", r.headers["access-control-allow-methods"])
            self.assertEqual(r.headers["access-control-allow-headers"],
                             "authorization, content-type, x-stainless-os")
            self.assertEqual(r.headers["access-control-max-age"], "3600")

    def test_configured_headers_are_the_allowed_ones(self):
        gw = self.gateway({"origins": ["*"], "headers": ["authorization", "content-type"]})
        r = self.preflight(gw, "https://any.example.org")
        self.assertEqual(r.status, 204)
        self.assertEqual(r.headers["access-control-allow-origin"], "*")
        self.assertEqual(r.headers["access-control-allow-headers"], "authorization, content-type")
        self.assertEqual(r.headers["access-control-max-age"], "600")

    def test_answers_and_streams_to_an_allowed_origin_carry_the_origin(self):
        gw = self.gateway({"origins": ["https://other.example.com", APP]})
        r = request(gw.port, "POST", "/v1/chat/completions", CHAT, {"Origin": APP})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.headers["access-control-allow-origin"], APP)
        self.assertIn("X-Request-Id", r.headers["access-control-expose-headers"])
        r = request(gw.port, "POST", "/v1/chat/completions", dict(CHAT, stream=True), {"Origin": APP})
        self.assertTrue(r.headers["content-type"].startswith("text/event-stream"))
        self.assertEqual(r.headers["access-control-allow-origin"], APP)
        r = request(gw.port, "POST", "/v1/chat/completions", dict(CHAT, model="nope"), {"Origin": APP})
        self.assertGreaterEqual(r.status, 400)
        self.assertEqual(r.headers["access-control-allow-origin"], APP)

    def test_other_origins_get_no_cors_headers(self):
        gw = self.gateway({"origins": [APP]})
        r = self.preflight(gw, "https://evil.example.com")
        self.assertEqual(r.status, 405)
        self.assertNotIn("access-control-allow-origin", r.headers)
        r = request(gw.port, "POST", "/v1/chat/completions", CHAT, {"Origin": "https://evil.example.com"})
        self.assertEqual(r.status, 200)
        self.assertNotIn("access-control-allow-origin", r.headers)

    def test_cors_is_off_unless_configured(self):
        gw = self.gateway()
        r = self.preflight(gw, APP)
        self.assertEqual(r.status, 405)
        self.assertNotIn("access-control-allow-origin", r.headers)
        r = request(gw.port, "POST", "/v1/chat/completions", CHAT, {"Origin": APP})
        self.assertNotIn("access-control-allow-origin", r.headers)


if __name__ == "__main__":
    import harness
    harness.main()
