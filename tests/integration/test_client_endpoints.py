"""The endpoints SDKs call besides generation: Anthropic's count_tokens and
models list, one model by id, in the shape of the client that asks."""
import unittest

from harness import binary, free_ports, request, start
from test_proxy import Gateway

ANTHROPIC = {"anthropic-version": "2023-06-01", "x-api-key": "client"}


class ClientEndpoints(unittest.TestCase):
    def setUp(self):
        self.sim = free_ports(1)
        start(self, [binary("sy-sim"), "--port", str(self.sim), "--speed", "0", "--quiet"],
              port=self.sim, name="sy-sim")
        self.gw = Gateway(self, {
            "backends": [{"name": "oa", "url": "http://127.0.0.1:%d/v1" % self.sim}],
            "routes": [{"name": "chat", "models": ["claude-x", "org/gpt-y"]}]})

    def count(self, body, headers=ANTHROPIC):
        return request(self.gw.port, "POST", "/v1/messages/count_tokens", body, headers)

    def test_count_tokens_estimates_and_says_so(self):
        short = self.count({"model": "claude-x", "messages": [{"role": "user", "content": "hi"}]})
        self.assertEqual(short.status, 200, short.body)
        self.assertEqual(short.headers["x-switchyard-token-count"], "estimate")
        n = short.json()["input_tokens"]
        self.assertGreater(n, 0)
        longer = self.count({"model": "claude-x", "system": "You are a careful assistant.",
                             "messages": [{"role": "user", "content": "hi " * 200}],
                             "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}]})
        self.assertGreater(longer.json()["input_tokens"], n + 200)
        self.assertEqual(request(self.sim, "GET", "/sim/requests").json(), [])

    def test_count_tokens_errors_are_anthropics(self):
        r = self.count({"model": "claude-x", "messages": []})
        self.assertEqual(r.status, 400)
        self.assertEqual(r.json()["type"], "error")
        self.assertEqual(r.json()["error"]["type"], "invalid_request_error")
        self.assertIn("messages", r.json()["error"]["message"])
        r = request(self.gw.port, "GET", "/v1/messages/count_tokens", None, ANTHROPIC)
        self.assertEqual(r.status, 405)
        self.assertEqual(r.json()["type"], "error")

    def test_models_list_in_anthropics_shape_for_anthropic_clients(self):
        r = request(self.gw.port, "GET", "/v1/models", None, ANTHROPIC)
        self.assertEqual(r.status, 200, r.body)
        got = r.json()
        self.assertEqual(got["data"], [
            {"type": "model", "id": "claude-x", "display_name": "claude-x",
             "created_at": "1970-01-01T00:00:00Z"},
            {"type": "model", "id": "org/gpt-y", "display_name": "org/gpt-y",
             "created_at": "1970-01-01T00:00:00Z"}])
        self.assertEqual((got["has_more"], got["first_id"], got["last_id"]), (False, "claude-x", "org/gpt-y"))
        openai = request(self.gw.port, "GET", "/v1/models").json()
        self.assertEqual(openai["object"], "list")
        self.assertEqual(openai["data"][0]["object"], "model")

    def test_one_model_by_id(self):
        r = request(self.gw.port, "GET", "/v1/models/org/gpt-y")
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json(), {"id": "org/gpt-y", "object": "model", "created": 0, "owned_by": "switchyard"})
        r = request(self.gw.port, "GET", "/v1/models/claude-x", None, ANTHROPIC)
        self.assertEqual(r.json()["type"], "model")
        self.assertEqual(r.json()["id"], "claude-x")

    def test_an_unknown_model_id_is_404_in_the_clients_shape(self):
        r = request(self.gw.port, "GET", "/v1/models/nope")
        self.assertEqual(r.status, 404)
        self.assertEqual(r.json()["error"]["code"], "model_not_found")
        self.assertIn("nope", r.json()["error"]["message"])
        r = request(self.gw.port, "GET", "/v1/models/nope", None, ANTHROPIC)
        self.assertEqual(r.status, 404)
        self.assertEqual(r.json()["error"]["type"], "not_found_error")


if __name__ == "__main__":
    import harness
    harness.main()
