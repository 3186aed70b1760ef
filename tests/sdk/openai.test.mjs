// switchyard seen through the official OpenAI SDK for Node (the `openai`
// package pinned in package.json): one sy-sim replica per wire protocol, a
// switchyard with one backend of each kind in front, and chat completions
// (whole and streamed), completions, embeddings and errors sent with the SDK
// through switchyard to every kind that serves them. The fleet is fleet.mjs's.
//
//   node --test tests/sdk/openai.test.mjs          # binaries in ../../_build
//   SY_BUILDDIR=/tmp/b node --test tests/sdk/openai.test.mjs
//   tests/sdk/run.sh                               # the same as TAP, after npm ci
//
// The tests are flat (no nested subtests), so that the TAP reporter's lines
// are the ones automake's TAP driver counts.
import { test } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import {
  ANTHROPIC_KEY, CHAT_KINDS, COMPLETION_KINDS, EMBEDDING_KINDS, KINDS, MAX_TOKENS,
  sdkOptions, useFleet,
} from "./fleet.mjs";

// finish_reason with max_tokens 8: OpenAI's max_tokens is sy-sim's exact
// length ("length"); the other protocols take it as a cap, and the drawn
// length (8) does not exceed it ("stop").
const FINISH = { openai: "length", anthropic: "stop", tgi: "stop", ollama: "stop" };

const my = useFleet((fleet) => new OpenAI(sdkOptions(fleet, "/v1")));

// ---- helpers --------------------------------------------------------------

const messages = [
  { role: "system", content: "You are brief." },
  { role: "user", content: "Say hello to the gateway, please." },
];

function assertUsage(usage, { prompt = true, completion = true } = {}) {
  assert.ok(usage, "usage is present");
  if (prompt) {
    assert.equal(typeof usage.prompt_tokens, "number");
    assert.ok(usage.prompt_tokens > 0, `prompt_tokens ${usage.prompt_tokens} > 0`);
  }
  if (completion) {
    assert.equal(usage.completion_tokens, MAX_TOKENS);
    if (prompt) assert.equal(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens);
  }
}

async function expectError(promise, Cls, status) {
  await assert.rejects(promise, (err) => {
    assert.ok(err instanceof OpenAI.APIError, `an APIError, got ${err}`);
    assert.ok(err instanceof Cls, `a ${Cls.name}, got ${err.constructor.name}: ${err.message}`);
    assert.equal(err.status, status);
    return true;
  });
}

// ---- chat completions -----------------------------------------------------

for (const kind of CHAT_KINDS) {
  test(`${kind}: chat completion`, async () => {
    const model = `m-${kind}`;
    const r = await my.client.chat.completions.create({ model, messages, max_tokens: MAX_TOKENS });
    assert.equal(r.object, "chat.completion");
    assert.equal(r.model, model);
    assert.equal(r.choices.length, 1);
    const c = r.choices[0];
    assert.equal(c.message.role, "assistant");
    assert.equal(typeof c.message.content, "string");
    assert.ok(c.message.content.trim().length > 0, "non-empty content");
    assert.equal(c.finish_reason, FINISH[kind]);
    // TGI's /generate does not report the prompt's length without
    // decoder_input_details: prompt_tokens is null (docs/backends/tgi.md).
    if (kind === "tgi") {
      assert.equal(r.usage.prompt_tokens, null);
      assertUsage(r.usage, { prompt: false });
    } else {
      assertUsage(r.usage);
    }
  });

  test(`${kind}: streamed chat completion with usage`, async () => {
    const model = `m-${kind}`;
    const stream = await my.client.chat.completions.create({
      model, messages, max_tokens: MAX_TOKENS, stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    let text = "";
    let finish = null;
    let role = null;
    for await (const chunk of stream) {
      chunks.push(chunk);
      assert.equal(chunk.object, "chat.completion.chunk");
      for (const ch of chunk.choices) {
        if (ch.delta?.role) role = ch.delta.role;
        if (typeof ch.delta?.content === "string") text += ch.delta.content;
        if (ch.finish_reason) finish = ch.finish_reason;
      }
    }
    assert.ok(chunks.length >= 3, `${chunks.length} chunks`);
    assert.ok(new Set(chunks.map((c) => c.id)).size === 1, "one id for every chunk");
    assert.equal(role, "assistant");
    assert.ok(text.trim().length > 0, "the deltas join to text");
    assert.equal(finish, FINISH[kind]);
    const last = chunks.at(-1);
    assert.deepEqual(last.choices, []);
    assertUsage(last.usage);
    for (const c of chunks.slice(0, -1)) assert.ok(c.usage == null, "usage only in the last chunk");
  });
}

// The same prompt gets the same words whole and streamed (sy-sim's answer is
// a function of the model and the prompt), through every kind.
test("chat: whole and streamed answers agree, for every kind", async () => {
  for (const kind of CHAT_KINDS) {
    const model = `m-${kind}`;
    const whole = await my.client.chat.completions.create({ model, messages, max_tokens: MAX_TOKENS });
    const stream = await my.client.chat.completions.create({
      model, messages, max_tokens: MAX_TOKENS, stream: true,
    });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
    assert.equal(text, whole.choices[0].message.content, kind);
  }
});

// ---- completions ----------------------------------------------------------

for (const kind of COMPLETION_KINDS) {
  test(`${kind}: completion`, async () => {
    const model = `m-${kind}`;
    const r = await my.client.completions.create({
      model, prompt: "Once upon a time, in a data centre", max_tokens: MAX_TOKENS,
    });
    assert.equal(r.object, "text_completion");
    assert.equal(r.model, model);
    assert.equal(r.choices.length, 1);
    assert.equal(typeof r.choices[0].text, "string");
    assert.ok(r.choices[0].text.trim().length > 0, "non-empty text");
    assert.equal(r.choices[0].finish_reason, FINISH[kind]);
    if (kind === "tgi") assertUsage(r.usage, { prompt: false });
    else assertUsage(r.usage);
  });

  test(`${kind}: streamed completion with usage`, async () => {
    const model = `m-${kind}`;
    const stream = await my.client.completions.create({
      model, prompt: "Once upon a time, in a data centre", max_tokens: MAX_TOKENS, stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    let text = "";
    for await (const chunk of stream) {
      chunks.push(chunk);
      for (const ch of chunk.choices) text += ch.text ?? "";
    }
    assert.ok(text.trim().length > 0, "the chunks join to text");
    const last = chunks.at(-1);
    assert.deepEqual(last.choices, []);
    assertUsage(last.usage);
  });
}

// ---- embeddings -----------------------------------------------------------

const INPUTS = ["hello world", "switchyard routes every token", "a third input"];

for (const kind of EMBEDDING_KINDS) {
  test(`${kind}: embeddings (SDK default: base64, decoded by the SDK)`, async () => {
    const model = `e-${kind}`;
    const r = await my.client.embeddings.create({ model, input: INPUTS });
    assert.equal(r.object, "list");
    assert.equal(r.data.length, INPUTS.length);
    const dims = r.data[0].embedding.length;
    assert.ok(dims > 0, "non-empty vectors");
    r.data.forEach((d, i) => {
      assert.equal(d.index, i);
      assert.equal(d.embedding.length, dims, "vectors of one length");
      assert.ok(d.embedding.every(Number.isFinite), "finite numbers");
    });
    assert.ok(r.usage.prompt_tokens > 0, `prompt_tokens ${r.usage.prompt_tokens} > 0`);
    assert.equal(r.usage.total_tokens, r.usage.prompt_tokens);
  });

  test(`${kind}: embeddings as floats match the base64 ones`, async () => {
    const model = `e-${kind}`;
    const b64 = await my.client.embeddings.create({ model, input: INPUTS });
    const flt = await my.client.embeddings.create({ model, input: INPUTS, encoding_format: "float" });
    assert.equal(flt.data.length, INPUTS.length);
    flt.data.forEach((d, i) => {
      assert.ok(Array.isArray(d.embedding));
      assert.equal(d.embedding.length, b64.data[i].embedding.length);
      d.embedding.forEach((x, j) => {
        assert.ok(Math.abs(x - b64.data[i].embedding[j]) < 1e-6, `input ${i}, number ${j}`);
      });
    });
    assert.equal(flt.usage.prompt_tokens, b64.usage.prompt_tokens);
  });
}

// ---- errors ---------------------------------------------------------------

test("unknown model: NotFoundError 404 (chat, completions, embeddings)", async () => {
  await expectError(my.client.chat.completions.create({ model: "no-such-model", messages }),
    OpenAI.NotFoundError, 404);
  await expectError(my.client.completions.create({ model: "no-such-model", prompt: "hi" }),
    OpenAI.NotFoundError, 404);
  await expectError(my.client.embeddings.create({ model: "no-such-model", input: "hi" }),
    OpenAI.NotFoundError, 404);
});

test("unknown model, streamed: NotFoundError 404 before any chunk", async () => {
  await expectError(my.client.chat.completions.create({
    model: "no-such-model", messages, stream: true,
  }), OpenAI.NotFoundError, 404);
});

test("a kind that does not serve the call: BadRequestError 400", async () => {
  // anthropic: chat only; tgi: no embeddings; kserve: embeddings only.
  await expectError(my.client.completions.create({ model: "m-anthropic", prompt: "hi" }),
    OpenAI.BadRequestError, 400);
  await expectError(my.client.embeddings.create({ model: "m-tgi", input: "hi" }),
    OpenAI.BadRequestError, 400);
  await expectError(my.client.chat.completions.create({ model: "e-kserve", messages }),
    OpenAI.BadRequestError, 400);
});

// ---- what reached the backends ---------------------------------------------

test("each kind's request reached its own replica in its protocol", async () => {
  const seen = {};
  for (const kind of KINDS) {
    const res = await fetch(`http://127.0.0.1:${my.fleet.simPortOf(kind)}/sim/requests`);
    assert.equal(res.status, 200);
    seen[kind] = await res.json();
    assert.ok(seen[kind].length > 0, `${kind} got requests`);
  }
  const paths = (kind) => new Set(seen[kind].map((r) => r.path));
  assert.ok(paths("openai").has("/v1/chat/completions"));
  assert.ok(paths("openai").has("/v1/embeddings"));
  assert.ok(paths("anthropic").has("/v1/messages"));
  assert.ok(paths("tgi").has("/generate") && paths("tgi").has("/generate_stream"));
  assert.ok(paths("ollama").has("/api/chat") && paths("ollama").has("/api/embed"));
  assert.ok(paths("kserve").has("/v2/models/e-kserve/infer"));
  const msg = seen.anthropic.find((r) => r.path === "/v1/messages");
  assert.equal(msg.headers["x-api-key"], ANTHROPIC_KEY);
  assert.equal(msg.headers.authorization, undefined);
});
