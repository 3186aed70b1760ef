"""The kserve backend kind end to end: switchyard in front of sy-sim's KServe
v2 protocol, OpenAI embeddings in and out, checked from the client's side,
the backend's request log and the access log."""
import base64
import math
import struct
import time
import unittest

import harness
from harness import binary, free_port, post_json, request, start
from test_proxy import Gateway

MODEL = "e5-small"
KEY = "ks-secret-42"


def norm(v):
    return math.sqrt(sum(x * x for x in v))


class KServeCase(unittest.TestCase):
    """One sy-sim replica serving an embedding model, a gateway with one
    kserve endpoint in front (and a model the replica does not serve)."""

    health = None

    def setUp(self):
        self.sim_port = free_port()
        start(self, [binary("sy-sim"), "--port", str(self.sim_port), "--models", MODEL,
                     "--speed", "0", "--quiet"], port=self.sim_port, name="sy-sim")
        backend = {"name": "ks0", "url": "http://127.0.0.1:%d" % self.sim_port, "kind": "kserve",
                   "models": [MODEL, "ghost"], "api_key_env": "KSERVE_KEY"}
        if self.health is not None:
            backend["health"] = self.health
        self.gw = Gateway(self, {"backends": [backend],
                                 "routes": [{"name": "emb", "models": [MODEL, "ghost"]}],
                                 "prices": {MODEL: {"input": 0.02, "output": 0}}},
                          env={"KSERVE_KEY": KEY})

    def embed(self, **body):
        body.setdefault("model", MODEL)
        return self.gw.post("/v1/embeddings", body)

    def sim_requests(self):
        r = request(self.sim_port, "GET", "/sim/requests")
        self.assertEqual(r.status, 200)
        return r.json()

    def sim_faults(self, **faults):
        r = request(self.sim_port, "POST", "/sim/faults", faults)
        self.assertEqual(r.status, 200, r.body)

    def assert_openai_error(self, r, status, type_):
        self.assertEqual(r.status, status, r.body)
        err = r.json()["error"]
        self.assertEqual(err["type"], type_)
        self.assertTrue(err["message"])
        return err


class Embeddings(KServeCase):
    def test_embeddings_are_the_models_vectors_in_openais_shape(self):
        texts = ["hello there", "abcdefghi  jk", "c"]
        r = self.embed(input=texts)
        self.assertEqual(r.status, 200, r.body)
        got = r.json()
        self.assertEqual(got["object"], "list")
        self.assertEqual(got["model"], MODEL)
        self.assertEqual([d["index"] for d in got["data"]], [0, 1, 2])
        self.assertEqual({d["object"] for d in got["data"]}, {"embedding"})
        direct = post_json(self.sim_port, "/v1/embeddings", {"model": MODEL, "input": texts}).json()
        for mine, want in zip(got["data"], direct["data"]):
            self.assertEqual(len(mine["embedding"]), 64)
            self.assertAlmostEqual(norm(mine["embedding"]), 1.0, places=4)
            for x, y in zip(mine["embedding"], want["embedding"]):
                self.assertAlmostEqual(x, y, places=6)

    def test_prompt_tokens_are_estimated_as_sy_sim_counts_them(self):
        texts = ["hello there", "abcdefghi  jk", "caf\u00e9 \u00e9\u00e9\u00e9"]
        r = self.embed(input=texts)
        self.assertEqual(r.status, 200, r.body)
        direct = post_json(self.sim_port, "/v1/embeddings", {"model": MODEL, "input": texts}).json()
        self.assertEqual(r.json()["usage"], {"prompt_tokens": direct["usage"]["prompt_tokens"],
                                             "total_tokens": direct["usage"]["prompt_tokens"]})
        self.assertEqual(r.json()["usage"]["prompt_tokens"], 4 + 4 + 2 + 2)

    def test_a_string_input_is_one_embedding(self):
        r = self.embed(input="just one")
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(len(r.json()["data"]), 1)
        self.assertEqual(r.json()["usage"]["prompt_tokens"], 2)

    def test_the_backend_receives_a_v2_infer_call_with_the_bearer_key(self):
        r = self.embed(input=["a b", "c"], user="someone", encoding_format="float")
        self.assertEqual(r.status, 200, r.body)
        seen = [q for q in self.sim_requests() if q["method"] == "POST"]
        self.assertEqual(len(seen), 1)
        self.assertEqual(seen[0]["path"], "/v2/models/%s/infer" % MODEL)
        self.assertEqual(seen[0]["headers"]["authorization"], "Bearer " + KEY)
        self.assertTrue(seen[0]["headers"].get("x-request-id"))
        self.assertEqual(seen[0]["body"], {"inputs": [{"name": "text", "shape": [2],
                                                       "datatype": "BYTES", "data": ["a b", "c"]}]})
        self.assertEqual(seen[0]["status"], 200)

    def test_base64_is_the_float32_vectors(self):
        texts = ["one", "two words"]
        floats = self.embed(input=texts).json()["data"]
        r = self.embed(input=texts, encoding_format="base64")
        self.assertEqual(r.status, 200, r.body)
        for mine, want in zip(r.json()["data"], floats):
            raw = base64.b64decode(mine["embedding"])
            self.assertEqual(len(raw), 4 * 64)
            for x, y in zip(struct.unpack("<64f", raw), want["embedding"]):
                self.assertAlmostEqual(x, y, places=6)

    def test_the_access_log_names_the_kind_and_counts_the_tokens(self):
        r = self.embed(input=["hello there"])
        self.assertEqual(r.status, 200, r.body)
        line = self.gw.log_lines(1)[-1]
        self.assertEqual(line["backend_kind"], "kserve")
        self.assertEqual(line["endpoint"], "ks0")
        self.assertEqual(line["path"], "/v1/embeddings")
        self.assertEqual(line["status"], 200)
        self.assertEqual(line["prompt_tokens"], 4)
        self.assertAlmostEqual(line["cost_usd"], 4 * 0.02 / 1e6)
        with open(self.gw.log_path) as f:
            self.assertNotIn(KEY, f.read())


class Classification(unittest.TestCase):
    def test_a_classifier_answers_each_inputs_class_scores_as_its_vector(self):
        sim = free_port()
        start(self, [binary("sy-sim"), "--port", str(sim), "--speed", "0", "--classes", "3",
                     "--quiet"], port=sim, name="sy-sim")
        gw = Gateway(self, {"backends": [{"name": "ks", "url": "http://127.0.0.1:%d" % sim,
                                          "kind": "kserve", "models": ["intent-classifier"]}],
                            "routes": [{"name": "cls", "models": ["intent-classifier"]}]})
        r = gw.post("/v1/embeddings", {"model": "intent-classifier", "input": ["refund please", "hi"],
                                       "encoding_format": "float"})
        self.assertEqual(r.status, 200, r.body)
        direct = post_json(sim, "/v2/models/intent-classifier/infer",
                           {"inputs": [{"name": "text", "shape": [2], "datatype": "BYTES",
                                        "data": ["refund please", "hi"]}]}).json()
        scores = direct["outputs"][0]["data"]
        self.assertEqual(direct["outputs"][0]["shape"], [2, 3])
        self.assertEqual([len(d["embedding"]) for d in r.json()["data"]], [3, 3])
        for i, d in enumerate(r.json()["data"]):
            for x, y in zip(d["embedding"], scores[3 * i:3 * i + 3]):
                self.assertAlmostEqual(x, y, places=6)


class Refusals(KServeCase):
    def test_chat_and_completions_are_400_and_never_sent(self):
        r = self.gw.post("/v1/chat/completions", {"model": MODEL, "messages": [
            {"role": "user", "content": "hi"}]})
        err = self.assert_openai_error(r, 400, "invalid_request_error")
        self.assertEqual(err["message"], "the kserve backend serves embeddings only")
        r = self.gw.post("/v1/completions", {"model": MODEL, "prompt": "hi", "stream": True})
        self.assert_openai_error(r, 400, "invalid_request_error")
        self.assertEqual(self.sim_requests(), [])

    def test_token_ids_dimensions_and_other_formats_are_400(self):
        err = self.assert_openai_error(self.embed(input=[[1, 2, 3]]), 400, "invalid_request_error")
        self.assertIn("kserve takes text inputs", err["message"])
        err = self.assert_openai_error(self.embed(input="x", dimensions=32), 400, "invalid_request_error")
        self.assertIn("'dimensions'", err["message"])
        err = self.assert_openai_error(self.embed(input="x", encoding_format="int8"), 400,
                                       "invalid_request_error")
        self.assertIn("'encoding_format'", err["message"])
        self.assertEqual(self.sim_requests(), [])


class BackendErrors(KServeCase):
    def test_a_backend_error_keeps_its_status_and_message(self):
        self.sim_faults(error_rate=1.0, error_status=503)
        err = self.assert_openai_error(self.embed(input="x"), 503, "server_error")
        self.assertEqual(err["message"], "injected fault: HTTP 503")
        self.assertEqual(err["code"], 503)

    def test_a_rate_limit_is_a_429_with_retry_after(self):
        self.sim_faults(rate_limit_rate=1.0, retry_after=7)
        r = self.embed(input="x")
        self.assert_openai_error(r, 429, "rate_limit_error")
        self.assertEqual(r.headers.get("retry-after"), "7")

    def test_a_model_the_server_lacks_is_404(self):
        r = self.embed(model="ghost", input="x")
        self.assert_openai_error(r, 404, "not_found_error")
        self.assertEqual(self.sim_requests()[0]["path"], "/v2/models/ghost/infer")

    def test_a_malformed_answer_is_a_502(self):
        self.sim_faults(malformed_rate=1.0)
        r = self.embed(input="x")
        self.assertEqual(r.status, 502, r.body)
        self.assertEqual(r.json()["error"]["code"], "bad_gateway")
        line = self.gw.log_lines(1)[-1]
        self.assertEqual((line["backend_kind"], line["status"]), ("kserve", 502))


class Health(KServeCase):
    health = {"interval_ms": 50, "timeout_ms": 40, "healthy": 1, "unhealthy": 1}

    def test_health_checks_probe_v2_health_ready(self):
        deadline = time.time() + 3
        while time.time() < deadline:
            probes = [q for q in self.sim_requests() if q["method"] == "GET"]
            if probes:
                break
            time.sleep(0.05)
        self.assertTrue(probes)
        self.assertEqual({q["path"] for q in probes}, {"/v2/health/ready"})
        self.sim_faults(unhealthy=True)
        deadline = time.time() + 3
        while time.time() < deadline:
            r = self.embed(input="x")
            if r.status == 503:
                break
            time.sleep(0.05)
        self.assertEqual(r.status, 503, r.body)
        self.assertEqual(r.json()["error"]["code"], "no_endpoint_available")


if __name__ == "__main__":
    harness.main()
