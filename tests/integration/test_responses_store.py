"""Stored Responses: POST /v1/responses keeps its response (store: true, the
default) in memory, or in Redis for every gateway instance; GET and DELETE
/v1/responses/{id}; previous_response_id continues a conversation with its
earlier turns sent to the backend; a response is its API key's alone."""
import hashlib
import json
import unittest

import harness
from harness import RedisServer, binary, free_ports, request, start
from test_proxy import Gateway

ALICE = "sk-alice-0123456789"
BOB = "sk-bob-9876543210"


def sha(key):
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def output_text(resp):
    return "".join(p["text"] for item in resp["output"] if item["type"] == "message"
                   for p in item["content"] if p["type"] == "output_text")


def not_found(prev_id):
    return {"error": {"message": "Previous response with id '%s' not found." % prev_id,
                      "type": "invalid_request_error", "param": "previous_response_id",
                      "code": "previous_response_not_found"}}


class StoreCase(unittest.TestCase):
    """A sy-sim replica and gateways in front of it."""

    def setUp(self):
        self.sim = free_ports(1)
        start(self, [binary("sy-sim"), "--port", str(self.sim), "--replicas", "1", "--speed", "0",
                     "--output-tokens", "fixed:6", "--quiet"], port=self.sim, name="sy-sim")

    def gateway(self, **top):
        cfg = {"backends": [{"name": "sim", "url": "http://127.0.0.1:%d/v1" % self.sim}],
               "routes": [{"name": "r", "models": ["m"]}]}
        cfg.update(top)
        return Gateway(self, cfg)

    def create(self, gw, key=None, **body):
        body.setdefault("model", "m")
        body.setdefault("input", "Say hello")
        r = request(gw.port, "POST", "/v1/responses", body, headers=self.auth(key))
        self.assertEqual(r.status, 200, r.body)
        return r.json()

    def auth(self, key):
        return {"Authorization": "Bearer " + key} if key else None

    def get(self, gw, rid, key=None, method="GET"):
        return request(gw.port, method, "/v1/responses/" + rid, headers=self.auth(key))

    def sent_messages(self):
        return request(self.sim, "GET", "/sim/requests").json()[-1]["body"]["messages"]


class StoredInMemory(StoreCase):
    def setUp(self):
        super().setUp()
        self.gw = self.gateway()

    def test_a_stored_response_is_retrieved_then_deleted(self):
        resp = self.create(self.gw, instructions="Be brief.")
        self.assertTrue(resp["store"])
        self.assertEqual(resp["instructions"], "Be brief.")
        self.assertIsNone(resp["previous_response_id"])
        r = self.get(self.gw, resp["id"])
        self.assertEqual(r.status, 200, r.body)
        got = r.json()
        self.assertEqual(got["id"], resp["id"])
        self.assertEqual(got["object"], "response")
        self.assertEqual(got["output"], resp["output"])
        self.assertEqual(got["usage"], resp["usage"])
        self.assertEqual(got["created_at"], resp["created_at"])
        self.assertEqual(got, resp)
        r = self.get(self.gw, resp["id"], method="DELETE")
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json(), {"id": resp["id"], "object": "response", "deleted": True})
        r = self.get(self.gw, resp["id"])
        self.assertEqual(r.status, 404, r.body)
        self.assertEqual(r.json()["error"]["message"], "Response with id '%s' not found." % resp["id"])
        self.assertEqual(r.json()["error"]["type"], "invalid_request_error")
        self.assertEqual(self.get(self.gw, resp["id"], method="DELETE").status, 404)

    def test_previous_response_id_sends_the_earlier_turns_with_the_new_instructions(self):
        first = self.create(self.gw, instructions="Be brief.", input="What is a gateway?")
        second = self.create(self.gw, instructions="Be kind.", input="And a router?",
                             previous_response_id=first["id"])
        self.assertEqual(self.sent_messages(), [
            {"role": "system", "content": "Be kind."},
            {"role": "user", "content": "What is a gateway?"},
            {"role": "assistant", "content": output_text(first)},
            {"role": "user", "content": "And a router?"}])
        self.assertEqual(second["previous_response_id"], first["id"])
        self.assertEqual(second["instructions"], "Be kind.")
        self.assertEqual(self.get(self.gw, second["id"]).json(), second)
        self.create(self.gw, input=[{"role": "user", "content": "Thanks"}],
                    previous_response_id=second["id"])
        self.assertEqual(self.sent_messages(), [
            {"role": "user", "content": "What is a gateway?"},
            {"role": "assistant", "content": output_text(first)},
            {"role": "user", "content": "And a router?"},
            {"role": "assistant", "content": output_text(second)},
            {"role": "user", "content": "Thanks"}])

    def test_store_false_keeps_nothing(self):
        resp = self.create(self.gw, store=False)
        self.assertFalse(resp["store"])
        self.assertEqual(self.get(self.gw, resp["id"]).status, 404)
        r = request(self.gw.port, "POST", "/v1/responses",
                    {"model": "m", "input": "again", "previous_response_id": resp["id"]})
        self.assertEqual(r.status, 404, r.body)
        self.assertEqual(r.json(), not_found(resp["id"]))

    def test_an_unknown_previous_response_is_a_404_in_openai_shape(self):
        n = len(request(self.sim, "GET", "/sim/requests").json())
        r = request(self.gw.port, "POST", "/v1/responses",
                    {"model": "m", "input": "hi", "previous_response_id": "resp_nope"})
        self.assertEqual(r.status, 404, r.body)
        self.assertEqual(r.json(), not_found("resp_nope"))
        self.assertEqual(len(request(self.sim, "GET", "/sim/requests").json()), n)

    def test_a_streamed_response_is_stored_once_completed(self):
        r = request(self.gw.port, "POST", "/v1/responses",
                    {"model": "m", "input": "Stream it", "stream": True})
        self.assertEqual(r.status, 200, r.body)
        events = [json.loads(e["data"]) for e in harness.parse_sse(r.body)]
        done = [e for e in events if e["type"] == "response.completed"]
        self.assertEqual(len(done), 1)
        resp = done[0]["response"]
        self.assertTrue(resp["store"])
        self.assertTrue(all(e["response"]["store"] for e in events if "response" in e))
        got = self.get(self.gw, resp["id"])
        self.assertEqual(got.status, 200, got.body)
        self.assertEqual(got.json(), resp)
        self.create(self.gw, input="More", previous_response_id=resp["id"])
        self.assertEqual(self.sent_messages()[:2], [
            {"role": "user", "content": "Stream it"},
            {"role": "assistant", "content": output_text(resp)}])

    def test_an_item_reference_is_the_stored_output_item(self):
        first = self.create(self.gw, input="What is a gateway?")
        item = first["output"][0]
        self.create(self.gw, input=[{"role": "user", "content": "What is a gateway?"},
                                    {"type": "item_reference", "id": item["id"]},
                                    {"role": "user", "content": "Shorter, please"}])
        self.assertEqual(self.sent_messages(), [
            {"role": "user", "content": "What is a gateway?"},
            {"role": "assistant", "content": output_text(first)},
            {"role": "user", "content": "Shorter, please"}])

    def test_an_unknown_item_reference_is_a_404(self):
        r = request(self.gw.port, "POST", "/v1/responses",
                    {"model": "m", "input": [{"type": "item_reference", "id": "msg_nope"}]})
        self.assertEqual(r.status, 404, r.body)
        self.assertEqual(r.json(), {"error": {"message": "Item with id 'msg_nope' not found.",
                                              "type": "invalid_request_error", "param": "input",
                                              "code": None}})

    def test_a_deleted_response_takes_its_items_with_it(self):
        first = self.create(self.gw)
        self.assertEqual(self.get(self.gw, first["id"], method="DELETE").status, 200)
        r = request(self.gw.port, "POST", "/v1/responses",
                    {"model": "m", "input": [{"type": "item_reference", "id": first["output"][0]["id"]}]})
        self.assertEqual(r.status, 404, r.body)

    def test_other_methods_on_a_stored_response_get_a_405(self):
        r = request(self.gw.port, "PUT", "/v1/responses/resp_x", {})
        self.assertEqual(r.status, 405, r.body)


class StoreOff(StoreCase):
    def test_store_off_in_the_config_keeps_nothing(self):
        gw = self.gateway(responses={"store": False})
        resp = self.create(gw)
        self.assertFalse(resp["store"])
        self.assertEqual(self.get(gw, resp["id"]).status, 404)


class StoredInRedis(StoreCase):
    def setUp(self):
        super().setUp()
        self.redis = RedisServer(self)

    def gateway(self, **top):
        gw = super().gateway(**top)
        # Its workers connect to Redis as it starts: wait for both.
        connected = lambda: [l for l in request(gw.admin, "GET", "/metrics").body.decode().splitlines()
                             if l.startswith("switchyard_cache_redis_connected ")]
        self.assertEqual(harness.eventually(connected, lambda v: v == ["switchyard_cache_redis_connected 2"],
                                            timeout=10), ["switchyard_cache_redis_connected 2"])
        return gw

    def test_a_response_made_on_one_instance_is_continued_on_another(self):
        a = self.gateway(redis={"port": self.redis.port}, responses={"ttl_s": 600})
        b = self.gateway(redis={"port": self.redis.port}, responses={"ttl_s": 600})
        first = self.create(a, input="Remember the word teal")
        ttl = harness.eventually(lambda: self.redis.command("TTL", "sy:resp:" + first["id"]),
                                 lambda t: t > 0)
        self.assertGreater(ttl, 500)
        self.assertLessEqual(ttl, 600)
        self.assertEqual(self.get(b, first["id"]).json()["output"], first["output"])
        self.create(b, input="Which word?", previous_response_id=first["id"])
        self.assertEqual(self.sent_messages(), [
            {"role": "user", "content": "Remember the word teal"},
            {"role": "assistant", "content": output_text(first)},
            {"role": "user", "content": "Which word?"}])
        self.assertEqual(self.get(b, first["id"], method="DELETE").status, 200)
        self.assertEqual(self.get(a, first["id"]).status, 404)
        self.assertEqual(self.redis.command("EXISTS", "sy:resp:" + first["id"]), 0)

    def test_redis_away_is_a_503_for_a_continuation(self):
        gw = self.gateway(redis={"port": self.redis.port})
        first = self.create(gw)
        self.redis.kill()
        r = request(gw.port, "POST", "/v1/responses",
                    {"model": "m", "input": "more", "previous_response_id": first["id"]})
        self.assertEqual(r.status, 503, r.body)


class StoredPerKey(StoreCase):
    def test_a_response_is_visible_only_to_the_key_that_made_it(self):
        gw = self.gateway(auth="keys", keys=[{"id": "alice", "hash": sha(ALICE)},
                                             {"id": "bob", "hash": sha(BOB)}])
        resp = self.create(gw, key=ALICE)
        self.assertEqual(self.get(gw, resp["id"], key=ALICE).status, 200)
        self.assertEqual(self.get(gw, resp["id"], key=BOB).status, 404)
        self.assertEqual(self.get(gw, resp["id"]).status, 401)
        r = request(gw.port, "POST", "/v1/responses",
                    {"model": "m", "input": "hi", "previous_response_id": resp["id"]},
                    headers={"Authorization": "Bearer " + BOB})
        self.assertEqual(r.status, 404, r.body)
        self.assertEqual(r.json(), not_found(resp["id"]))
        r = request(gw.port, "POST", "/v1/responses",
                    {"model": "m", "input": [{"type": "item_reference", "id": resp["output"][0]["id"]}]},
                    headers={"Authorization": "Bearer " + BOB})
        self.assertEqual(r.status, 404, r.body)
        self.assertEqual(self.get(gw, resp["id"], key=BOB, method="DELETE").status, 404)
        self.assertEqual(self.get(gw, resp["id"], key=ALICE).status, 200)


if __name__ == "__main__":
    harness.main()
