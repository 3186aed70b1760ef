"""The tgi backend kind end to end: switchyard in front of sy-sim's
text-generation-inference API, checked from the client's side, what the
replica received, and the access log."""
import json
import time
import unittest

import harness
from harness import binary, free_ports, post_json, request, start
from test_proxy import Gateway

MODEL = "tiny"


def chat(content="Say hello", **kw):
    body = {"model": MODEL, "messages": [{"role": "user", "content": content}], "max_tokens": 6}
    body.update(kw)
    return body


def completion(prompt="Once upon a time", **kw):
    body = {"model": MODEL, "prompt": prompt, "max_tokens": 6}
    body.update(kw)
    return body


class TgiCase(unittest.TestCase):
    """One sy-sim replica answering at once, behind a gateway that speaks TGI to it."""

    def setUp(self):
        self.sim_port = free_ports(1)
        start(self, [binary("sy-sim"), "--port", str(self.sim_port), "--models", MODEL,
                     "--speed", "0", "--quiet"], port=self.sim_port, name="sy-sim")

    def gateway(self, env=None, **backend):
        b = {"name": "tgi0", "url": "http://127.0.0.1:%d" % self.sim_port, "kind": "tgi",
             "models": [MODEL]}
        b.update(backend)
        return Gateway(self, {"backends": [b], "routes": [{"name": "r", "models": [MODEL]}],
                              "prices": {MODEL: {"input": 1.0, "output": 2.0}}}, env=env)

    def sim_requests(self):
        r = request(self.sim_port, "GET", "/sim/requests")
        self.assertEqual(r.status, 200)
        return [q for q in r.json() if q["method"] == "POST"]

    def faults(self, f):
        r = request(self.sim_port, "POST", "/sim/faults", f)
        self.assertEqual(r.status, 200, r.body)

    def generate(self, inputs, **params):
        """The replica's own answer to inputs, asked directly."""
        r = post_json(self.sim_port, "/generate", {"inputs": inputs, "parameters": params})
        self.assertEqual(r.status, 200, r.body)
        return r.json()


class Answers(TgiCase):
    def test_completion_is_the_generated_text_in_openai_shape(self):
        gw = self.gateway()
        r = gw.post("/v1/completions", completion(max_tokens=5))
        self.assertEqual(r.status, 200, r.body)
        got = r.json()
        self.assertEqual(got["object"], "text_completion")
        self.assertEqual(got["model"], MODEL)
        self.assertEqual(got["choices"][0]["text"],
                         self.generate("Once upon a time", max_new_tokens=5)["generated_text"])
        self.assertEqual(got["choices"][0]["finish_reason"], "length")
        self.assertEqual(got["usage"]["completion_tokens"], 5)
        self.assertIsNone(got["usage"]["prompt_tokens"])
        seen = self.sim_requests()[0]
        self.assertEqual(seen["path"], "/generate")
        self.assertEqual(seen["body"], {"inputs": "Once upon a time", "parameters": {
            "max_new_tokens": 5, "do_sample": True, "details": True, "decoder_input_details": False}})
        line = gw.log_lines(1)[-1]
        self.assertEqual((line["backend_kind"], line["completion_tokens"], line["prompt_tokens"],
                          line["cached_tokens"]), ("tgi", 5, None, 0))
        self.assertAlmostEqual(line["cost_usd"], 5 * 2.0 / 1e6)

    def test_chat_messages_become_one_prompt_and_the_answer_a_chat_completion(self):
        gw = self.gateway()
        body = chat(messages=[{"role": "system", "content": "Be brief."},
                              {"role": "user", "content": "What is a gateway?"}])
        r = gw.post("/v1/chat/completions", body)
        self.assertEqual(r.status, 200, r.body)
        prompt = "<|system|>\nBe brief.\n<|user|>\nWhat is a gateway?\n<|assistant|>\n"
        self.assertEqual(self.sim_requests()[0]["body"]["inputs"], prompt)
        got = r.json()
        self.assertEqual(got["object"], "chat.completion")
        self.assertEqual(got["choices"][0]["message"],
                         {"role": "assistant",
                          "content": self.generate(prompt, max_new_tokens=6)["generated_text"]})
        self.assertEqual(got["usage"]["completion_tokens"], 6)

    def test_an_answer_under_its_cap_finishes_with_stop(self):
        gw = self.gateway()
        r = gw.post("/v1/completions", completion(max_tokens=200))
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json()["choices"][0]["finish_reason"], "stop")

    def test_sampling_reaches_tgi_as_it_accepts_it(self):
        gw = self.gateway()
        self.assertEqual(gw.post("/v1/completions", completion(temperature=0, top_p=0.5, seed=3)).status, 200)
        self.assertEqual(gw.post("/v1/completions", completion(temperature=0.7, top_p=1,
                                                                stop=["\n\n"])).status, 200)
        greedy, sampled = [q["body"]["parameters"] for q in self.sim_requests()]
        self.assertFalse(greedy["do_sample"])
        self.assertNotIn("temperature", greedy)
        self.assertNotIn("top_p", greedy)
        self.assertEqual(greedy["seed"], 3)
        self.assertTrue(sampled["do_sample"])
        self.assertAlmostEqual(sampled["temperature"], 0.7)
        self.assertNotIn("top_p", sampled)
        self.assertEqual(sampled["stop"], ["\n\n"])

    def test_api_key_goes_as_a_bearer_header(self):
        gw = self.gateway(env={"TGI_KEY": "hf_secret"}, api_key_env="TGI_KEY")
        self.assertEqual(gw.post("/v1/chat/completions", chat()).status, 200)
        self.assertEqual(self.sim_requests()[0]["headers"].get("authorization"), "Bearer hf_secret")


class Streams(TgiCase):
    def test_chat_stream_is_relayed_as_openai_chunks_with_usage_and_done(self):
        gw = self.gateway()
        status, headers, events, _ = harness.stream_events(
            gw.port, "/v1/chat/completions",
            chat(stream=True, stream_options={"include_usage": True}))
        self.assertEqual(status, 200)
        self.assertTrue(headers["content-type"].startswith("text/event-stream"))
        self.assertEqual(events[-1]["data"], "[DONE]")
        chunks = [json.loads(e["data"]) for e in events[:-1]]
        self.assertTrue(all(c["object"] == "chat.completion.chunk" for c in chunks))
        self.assertEqual(len({c["id"] for c in chunks}), 1)
        self.assertEqual(chunks[0]["choices"][0]["delta"]["role"], "assistant")
        text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
        seen = self.sim_requests()[0]
        self.assertEqual(seen["path"], "/generate_stream")
        self.assertEqual(text, self.generate(seen["body"]["inputs"], max_new_tokens=6)["generated_text"])
        self.assertEqual(chunks[-2]["choices"][0]["finish_reason"], "length")
        usage = chunks[-1]["usage"]
        self.assertEqual(chunks[-1]["choices"], [])
        self.assertEqual(usage["completion_tokens"], 6)
        self.assertGreater(usage["prompt_tokens"], 0)
        self.assertEqual(usage["total_tokens"], usage["prompt_tokens"] + 6)
        line = gw.log_lines(1)[-1]
        self.assertEqual((line["stream"], line["prompt_tokens"], line["completion_tokens"], line["error"]),
                         (True, usage["prompt_tokens"], 6, None))

    def test_completion_stream_without_include_usage_has_no_usage_chunk(self):
        gw = self.gateway()
        status, _, events, _ = harness.stream_events(gw.port, "/v1/completions", completion(stream=True))
        self.assertEqual(status, 200)
        chunks = [json.loads(e["data"]) for e in events[:-1]]
        self.assertEqual(len(chunks), 7)
        self.assertTrue(all("usage" not in c and c["object"] == "text_completion" for c in chunks))
        self.assertEqual(chunks[-1]["choices"][0]["finish_reason"], "length")
        self.assertEqual(gw.log_lines(1)[-1]["completion_tokens"], 6)

    def test_error_in_the_middle_becomes_an_openai_error_event(self):
        self.faults({"midstream_error_rate": 1.0, "midstream_error_after_tokens": 2})
        gw = self.gateway()
        status, _, events, _ = harness.stream_events(gw.port, "/v1/chat/completions", chat(stream=True))
        self.assertEqual(status, 200)
        self.assertNotEqual(events[-1]["data"], "[DONE]")
        err = json.loads(events[-1]["data"])["error"]
        self.assertEqual((err["type"], err["code"]), ("server_error", "generation"))
        self.assertIn("injected fault", err["message"])
        self.assertEqual(len(events), 3)
        self.assertEqual(gw.log_lines(1)[-1]["error"], "backend sent an error event mid-stream")

    def test_a_broken_first_event_is_a_502_before_anything_is_streamed(self):
        self.faults({"malformed_rate": 1.0})
        gw = self.gateway()
        r = gw.post("/v1/chat/completions", chat(stream=True))
        self.assertEqual(r.status, 502, r.body)
        self.assertEqual(r.json()["error"]["code"], "bad_gateway")
        self.assertIn("before its first token", r.json()["error"]["message"])


class Refusals(TgiCase):
    def assert_refused(self, gw, path, body, words):
        r = gw.post(path, body)
        self.assertEqual(r.status, 400, r.body)
        err = r.json()["error"]
        self.assertEqual(err["type"], "invalid_request_error")
        self.assertIn(words, err["message"])

    def test_what_tgi_cannot_do_is_a_400_naming_it_and_never_sent(self):
        gw = self.gateway()
        self.assert_refused(gw, "/v1/completions", completion(prompt=["a", "b"]),
                            "tgi takes one prompt per request")
        self.assert_refused(gw, "/v1/chat/completions",
                            chat(tools=[{"type": "function", "function": {"name": "f"}}]), "'tools'")
        self.assert_refused(gw, "/v1/chat/completions", chat(n=2), "'n'")
        self.assert_refused(gw, "/v1/chat/completions", chat(logprobs=True), "'logprobs'")
        self.assert_refused(gw, "/v1/embeddings", {"model": MODEL, "input": "x"}, "embeddings")
        self.assertEqual(self.sim_requests(), [])

    def test_one_prompt_in_an_array_is_accepted(self):
        gw = self.gateway()
        self.assertEqual(gw.post("/v1/completions", completion(prompt=["only one"])).status, 200)
        self.assertEqual(self.sim_requests()[0]["body"]["inputs"], "only one")


class Errors(TgiCase):
    def test_a_validation_error_keeps_422_as_an_invalid_request_error(self):
        gw = self.gateway()
        r = gw.post("/v1/completions", completion(stop=["a", "b", "c", "d", "e"]))
        self.assertEqual(r.status, 422, r.body)
        err = r.json()["error"]
        self.assertEqual((err["type"], err["code"]), ("invalid_request_error", "validation"))
        self.assertIn("stop", err["message"])

    def test_overloaded_keeps_its_status_as_a_server_error(self):
        self.faults({"error_rate": 1.0, "error_status": 503})
        gw = self.gateway()
        r = gw.post("/v1/chat/completions", chat())
        self.assertEqual(r.status, 503, r.body)
        err = r.json()["error"]
        self.assertEqual((err["type"], err["code"]), ("server_error", "overloaded"))

    def test_a_stream_refused_before_its_first_event_is_an_error_body(self):
        gw = self.gateway()
        r = gw.post("/v1/chat/completions", chat(stream=True, stop=["a", "b", "c", "d", "e"]))
        self.assertEqual(r.status, 422, r.body)
        self.assertEqual(r.json()["error"]["code"], "validation")


class Health(TgiCase):
    def test_health_checks_probe_health_and_mark_the_endpoint_down(self):
        gw = self.gateway(health={"interval_ms": 50, "timeout_ms": 40, "unhealthy": 1, "healthy": 1})
        time.sleep(0.3)
        probes = [q["path"] for q in request(self.sim_port, "GET", "/sim/requests").json()]
        self.assertGreaterEqual(len(probes), 2)
        self.assertEqual(set(probes), {"/health"})
        self.assertTrue(request(gw.admin, "GET", "/admin/stats").json()["endpoints"]["tgi0"]["healthy"])
        self.faults({"unhealthy": True})
        deadline = time.time() + 5
        while time.time() < deadline:
            stats = request(gw.admin, "GET", "/admin/stats").json()
            if not stats["endpoints"]["tgi0"]["healthy"]:
                break
            time.sleep(0.05)
        self.assertFalse(stats["endpoints"]["tgi0"]["healthy"])
        self.assertEqual(gw.post("/v1/chat/completions", chat()).status, 503)


if __name__ == "__main__":
    harness.main()
