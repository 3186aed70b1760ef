// switchyard seen through the official Anthropic SDK for Node (the
// `@anthropic-ai/sdk` package pinned in package.json): the fleet of fleet.mjs
// (one sy-sim replica per wire protocol, a switchyard with one backend of each
// kind in front) and Messages API calls (POST /v1/messages, whole and
// streamed) sent with the SDK through switchyard to every chat-capable kind,
// which switchyard translates to the backend's protocol.
//
//   node --test tests/sdk/anthropic.test.mjs       # binaries in ../../_build
//   SY_BUILDDIR=/tmp/b node --test tests/sdk/anthropic.test.mjs
//   tests/sdk/run.sh                               # with openai.test.mjs, as TAP
//
// The tests are flat (no nested subtests), so that the TAP reporter's lines
// are the ones automake's TAP driver counts. A request without max_tokens
// (which switchyard refuses with 400 invalid_request_error) cannot be sent
// through the typed SDK; tests/integration/test_client_anthropic.py has it.
import { test } from "node:test";
import assert from "node:assert/strict";
import Anthropic from "@anthropic-ai/sdk";
import {
  ANTHROPIC_KEY, CHAT_KINDS, MAX_TOKENS, chatModel, sdkOptions, useFleet,
} from "./fleet.mjs";

const STOP_REASONS = ["end_turn", "max_tokens"];

const my = useFleet((fleet) => new Anthropic(sdkOptions(fleet, "")));

// ---- helpers --------------------------------------------------------------

const request = (kind) => ({
  model: chatModel(kind),
  max_tokens: MAX_TOKENS,
  system: "You are brief.",
  messages: [{ role: "user", content: "Say hello to the gateway, please." }],
});

// TGI's /generate does not report the prompt's length (switchyard does not ask
// for decoder_input_details; docs/backends/tgi.md): a whole answer from tgi
// counts 0 input tokens. Its streams do report it.
function assertUsage(usage, { inputKnown = true } = {}) {
  assert.ok(usage, "usage is present");
  assert.equal(usage.output_tokens, MAX_TOKENS);
  assert.equal(typeof usage.input_tokens, "number");
  if (inputKnown) assert.ok(usage.input_tokens > 0, `input_tokens ${usage.input_tokens} > 0`);
  else assert.equal(usage.input_tokens, 0);
}

function assertMessage(m, kind) {
  assert.equal(m.type, "message");
  assert.equal(m.role, "assistant");
  assert.equal(m.model, chatModel(kind));
  assert.ok(m.content.length >= 1, "content");
  assert.equal(m.content[0].type, "text");
  assert.equal(typeof m.content[0].text, "string");
  assert.ok(m.content[0].text.trim().length > 0, "non-empty text");
  assert.ok(STOP_REASONS.includes(m.stop_reason), `stop_reason ${m.stop_reason}`);
}

async function expectError(promise, Cls, status, type) {
  await assert.rejects(promise, (err) => {
    assert.ok(err instanceof Anthropic.APIError, `an APIError, got ${err}`);
    assert.ok(err instanceof Cls, `a ${Cls.name}, got ${err.constructor.name}: ${err.message}`);
    assert.equal(err.status, status);
    // The body is in Anthropic's shape: {"type": "error", "error": {"type", "message"}}.
    assert.equal(err.error?.type, "error", JSON.stringify(err.error));
    assert.equal(err.error?.error?.type, type, JSON.stringify(err.error));
    assert.equal(typeof err.error?.error?.message, "string");
    return true;
  });
}

// ---- messages ---------------------------------------------------------------

for (const kind of CHAT_KINDS) {
  test(`${kind}: message`, async () => {
    const m = await my.client.messages.create(request(kind));
    assertMessage(m, kind);
    assert.match(m.id, /^msg_/);
    assertUsage(m.usage, { inputKnown: kind !== "tgi" });
  });

  test(`${kind}: streamed message (messages.stream)`, async () => {
    const stream = my.client.messages.stream(request(kind));
    const types = [];
    let text = "";
    stream.on("streamEvent", (event) => types.push(event.type));
    stream.on("text", (delta) => {
      text += delta;
    });
    const m = await stream.finalMessage();
    assert.equal(types[0], "message_start");
    assert.equal(types.at(-1), "message_stop");
    assert.deepEqual(types.slice(-2), ["message_delta", "message_stop"]);
    assert.ok(types.includes("content_block_start"), types.join(" "));
    assert.ok(types.includes("content_block_delta"), types.join(" "));
    assert.ok(types.includes("content_block_stop"), types.join(" "));
    assert.ok(text.trim().length > 0, "the text events join to text");
    assertMessage(m, kind);
    assert.equal(m.content[0].text, text);
    assertUsage(m.usage);
  });
}

// create({stream: true}) yields the raw events; the same prompt gets the same
// words whole and streamed (sy-sim's answer is a function of the model and the
// prompt), through every kind.
test("messages: raw stream events, and whole and streamed answers agree, for every kind",
  async () => {
    for (const kind of CHAT_KINDS) {
      const whole = await my.client.messages.create(request(kind));
      const stream = await my.client.messages.create({ ...request(kind), stream: true });
      const types = [];
      let text = "";
      let delta;
      for await (const event of stream) {
        types.push(event.type);
        if (event.type === "content_block_delta" && event.delta.type === "text_delta") {
          text += event.delta.text;
        }
        if (event.type === "message_delta") delta = event;
      }
      assert.equal(types[0], "message_start", kind);
      assert.equal(types.at(-1), "message_stop", kind);
      assert.equal(text, whole.content[0].text, kind);
      assert.ok(delta, `${kind}: a message_delta`);
      assert.equal(delta.delta.stop_reason, whole.stop_reason, kind);
      assert.equal(delta.usage.output_tokens, MAX_TOKENS, kind);
    }
  });

// ---- errors ---------------------------------------------------------------

test("unknown model: NotFoundError 404, not_found_error", async () => {
  await expectError(my.client.messages.create({ ...request("openai"), model: "no-such-model" }),
    Anthropic.NotFoundError, 404, "not_found_error");
});

test("unknown model, streamed: NotFoundError 404 before any event", async () => {
  await expectError(
    my.client.messages.create({ ...request("openai"), model: "no-such-model", stream: true }),
    Anthropic.NotFoundError, 404, "not_found_error");
  const stream = my.client.messages.stream({ ...request("openai"), model: "no-such-model" });
  const types = [];
  stream.on("streamEvent", (event) => types.push(event.type));
  await expectError(stream.finalMessage(), Anthropic.NotFoundError, 404, "not_found_error");
  assert.deepEqual(types, []);
});

// ---- what reached the backends ---------------------------------------------

test("each kind's request reached its own replica in its protocol", async () => {
  const seen = {};
  for (const kind of CHAT_KINDS) {
    const res = await fetch(`http://127.0.0.1:${my.fleet.simPortOf(kind)}/sim/requests`);
    assert.equal(res.status, 200);
    seen[kind] = await res.json();
    assert.ok(seen[kind].length > 0, `${kind} got requests`);
  }
  const paths = (kind) => new Set(seen[kind].map((r) => r.path));
  assert.ok(paths("openai").has("/v1/chat/completions"));
  assert.ok(paths("anthropic").has("/v1/messages"));
  assert.ok(paths("tgi").has("/generate") && paths("tgi").has("/generate_stream"));
  assert.ok(paths("ollama").has("/api/chat"));
  // The system prompt went along, as the protocol has it.
  const chat = seen.openai.find((r) => r.path === "/v1/chat/completions");
  assert.deepEqual(chat.body.messages[0], { role: "system", content: "You are brief." });
  assert.equal(chat.body.max_tokens, MAX_TOKENS);
  // The anthropic backend got switchyard's key, not the client's.
  const msg = seen.anthropic.find((r) => r.path === "/v1/messages");
  assert.equal(msg.headers["x-api-key"], ANTHROPIC_KEY);
  assert.equal(msg.headers.authorization, undefined);
  assert.equal(msg.body.system, "You are brief.");
});
