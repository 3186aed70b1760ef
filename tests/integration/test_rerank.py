"""POST /v1/rerank (the shape vLLM, TEI, Jina and Cohere v2 share), routed by
model to an OpenAI-compatible backend that serves it, passed through, and
accounted like embeddings."""
import json
import unittest

import harness
from harness import request
from test_proxy import Gateway

ANSWER = {"id": "rerank-1", "model": "bge-reranker",
          "usage": {"prompt_tokens": 42, "total_tokens": 42},
          "results": [{"index": 1, "relevance_score": 0.9, "document": {"text": "Paris is in France"}},
                      {"index": 0, "relevance_score": 0.1, "document": {"text": "Bananas"}}]}

ASK = {"model": "bge-reranker", "query": "Where is Paris?",
       "documents": ["Bananas", "Paris is in France"], "top_n": 2}


class Rerank(unittest.TestCase):
    def setUp(self):
        def reply(path, headers, body):
            return 200, {"Content-Type": "application/json"}, [json.dumps(ANSWER).encode()], 0, False

        self.backend = harness.ScriptedBackend(reply)
        self.addCleanup(self.backend.close)
        self.gw = Gateway(self, {
            "backends": [{"name": "rr", "url": "http://127.0.0.1:%d/v1" % self.backend.port,
                          "models": ["bge-reranker"]},
                         {"name": "claude", "kind": "anthropic", "url": "http://127.0.0.1:%d/v1" % self.backend.port,
                          "models": ["claude-x"]}],
            "routes": [{"name": "rerank", "models": ["bge-reranker"], "backends": ["rr"]},
                       {"name": "chat", "models": ["claude-x"], "backends": ["claude"]}],
            "prices": {"bge-reranker": {"input": 1.0, "output": 0}}})

    def post(self, body):
        return request(self.gw.port, "POST", "/v1/rerank", body)

    def test_a_rerank_is_passed_to_the_backend_and_back(self):
        r = self.post(ASK)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json(), ANSWER)
        got = self.backend.received[-1]
        self.assertEqual(got["path"], "/v1/rerank")
        self.assertEqual(json.loads(got["body"]), ASK)

    def test_a_rerank_is_logged_and_priced_like_embeddings(self):
        self.assertEqual(self.post(ASK).status, 200)
        line = self.gw.log_lines(1)[-1]
        self.assertEqual(line["path"], "/v1/rerank")
        self.assertEqual(line["route"], "rerank")
        self.assertEqual(line["prompt_tokens"], 42)
        self.assertAlmostEqual(line["cost_usd"], 42 / 1e6)

    def test_a_rerank_without_query_or_streamed_is_400(self):
        r = self.post({"model": "bge-reranker", "documents": ["a"]})
        self.assertEqual(r.status, 400)
        self.assertIn("query", r.json()["error"]["message"])
        r = self.post(dict(ASK, stream=True))
        self.assertEqual(r.status, 400)
        self.assertIn("rerank cannot be streamed", r.json()["error"]["message"])
        self.assertEqual(self.backend.received, [])

    def test_a_backend_kind_without_rerank_refuses_it(self):
        r = self.post(dict(ASK, model="claude-x"))
        self.assertGreaterEqual(r.status, 400)
        self.assertIn("error", r.json())
        self.assertEqual(self.backend.received, [])


if __name__ == "__main__":
    harness.main()
