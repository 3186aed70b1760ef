// The OpenAI SDK's helpers through switchyard to backend.mjs's scripted
// OpenAI-compatible backend (each SSE event its own write, as vLLM and
// llama.cpp write them): streamed tool calls assembled by
// chat.completions.stream() and runTools(), n > 1, logprobs, JSON mode and
// structured output (chat.completions.parse), stop strings, request ids.
// Each test asserts what the SDK's user gets: text, parsed tool arguments,
// usage numbers equal to the backend's, ids.
//
//   node --test tests/sdk/openai-scripted.test.mjs   # binaries in ../../_build
import { test } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import { zodResponseFormat } from "openai/helpers/zod";
import { z } from "zod";
import {
  CACHED, JSON_OBJECT_ANSWER, MIDWAY_ERROR, PREAMBLE, TEXT, UNICODE_TEXT, WEATHER,
} from "./backend.mjs";
import { SCRIPTED_MODEL, sdkOptions, useFleet } from "./fleet.mjs";

const my = useFleet((fleet) => new OpenAI(sdkOptions(fleet, "/v1")));

const WEATHER_PARAMS = {
  type: "object",
  properties: {
    city: { type: "string" },
    unit: { type: "string", enum: ["celsius", "fahrenheit"] },
  },
  required: ["city", "unit"],
  additionalProperties: false,
};
const weatherTool = {
  type: "function",
  function: { name: "get_weather", description: "The weather in a city", parameters: WEATHER_PARAMS },
};
const ask = (content) => [{ role: "user", content }];

// The last request the scripted backend got.
const lastRequest = () => my.fleet.scripted.requests.at(-1);

// ---- streamed tool calls ---------------------------------------------------

test("chat.completions.stream(): two tool calls, arguments streamed in pieces, assembled and parsed", async () => {
  const stream = my.client.chat.completions.stream({
    model: SCRIPTED_MODEL,
    messages: ask("What is the weather in Paris and Tokyo?"),
    tools: [weatherTool],
    stream_options: { include_usage: true },
  });
  const deltas = [0, 0];
  const done = [];
  stream.on("tool_calls.function.arguments.delta", (e) => {
    deltas[e.index] += 1;
  });
  stream.on("tool_calls.function.arguments.done", (e) => done.push(e));
  const r = await stream.finalChatCompletion();
  // Each call's arguments came in several deltas and the SDK joined them.
  assert.ok(deltas[0] > 3 && deltas[1] > 3, `argument deltas per call: ${deltas}`);
  assert.deepEqual(done.map((e) => [e.index, e.name, JSON.parse(e.arguments)]),
    [[0, "get_weather", WEATHER.Paris], [1, "get_weather", WEATHER.Tokyo]]);
  const c = r.choices[0];
  assert.equal(c.finish_reason, "tool_calls");
  assert.equal(c.message.role, "assistant");
  assert.deepEqual(c.message.tool_calls.map((t) => [t.id, t.type, t.function.name,
    JSON.parse(t.function.arguments)]),
  [["call_0_get_weather", "function", "get_weather", WEATHER.Paris],
    ["call_1_get_weather", "function", "get_weather", WEATHER.Tokyo]]);
  assert.deepEqual(r.usage, lastRequest().usage);
  assert.ok(r.usage.completion_tokens > 0);
});

test("chat.completions.stream(): text before a tool call, and strict tools parsed by the SDK", async () => {
  const stream = my.client.chat.completions.stream({
    model: SCRIPTED_MODEL,
    messages: ask("Please explain, then get the weather in London."),
    tools: [{ ...weatherTool, function: { ...weatherTool.function, strict: true } }],
  });
  let text = "";
  stream.on("content.delta", (e) => {
    text += e.delta;
  });
  const r = await stream.finalChatCompletion();
  assert.equal(text, PREAMBLE);
  const m = r.choices[0].message;
  assert.equal(m.content, PREAMBLE);
  assert.equal(m.tool_calls.length, 1);
  // A strict function tool's arguments are parsed by the SDK.
  assert.deepEqual(m.tool_calls[0].function.parsed_arguments, WEATHER.London);
  assert.equal(r.choices[0].finish_reason, "tool_calls");
});

// runTools calls the function with the parsed arguments, sends its result
// back, and ends with the backend's answer to it.
for (const stream of [false, true]) {
  test(`runTools(${stream ? "streamed" : "whole"}): the function runs on the parsed arguments, its result goes back`, async () => {
    const calls = [];
    const runner = my.client.chat.completions.runTools({
      model: SCRIPTED_MODEL,
      messages: ask("What is the weather in Tokyo?"),
      stream,
      tools: [{
        type: "function",
        function: {
          name: "get_weather",
          parameters: WEATHER_PARAMS,
          parse: JSON.parse,
          function: (args) => {
            calls.push(args);
            return { temperature: 21, city: args.city };
          },
        },
      }],
    });
    const content = await runner.finalContent();
    assert.deepEqual(calls, [WEATHER.Tokyo]);
    assert.equal(content, 'Tool said: {"temperature":21,"city":"Tokyo"}.');
    // The second request carried the call and its result, tied by the call's id.
    const sent = lastRequest().body.messages;
    assert.equal(sent.at(-2).tool_calls[0].id, "call_0_get_weather");
    assert.equal(sent.at(-1).role, "tool");
    assert.equal(sent.at(-1).tool_call_id, "call_0_get_weather");
    const usage = await runner.totalUsage();
    const [first, second] = my.fleet.scripted.requests.slice(-2).map((q) => q.usage);
    if (!stream) {
      // The runner adds up the usage of both rounds (streamed rounds carry
      // none: the runner does not ask for it).
      assert.equal(usage.prompt_tokens, first.prompt_tokens + second.prompt_tokens);
      assert.equal(usage.completion_tokens, first.completion_tokens + second.completion_tokens);
    }
  });
}

// ---- n > 1 -----------------------------------------------------------------

test("n=3, whole: three choices, each its own text, usage counts all of them", async () => {
  const r = await my.client.chat.completions.create({ model: SCRIPTED_MODEL, messages: ask("Hi"), n: 3 });
  assert.deepEqual(r.choices.map((c) => [c.index, c.message.content, c.finish_reason]), [
    [0, TEXT, "stop"], [1, `(choice 1) ${TEXT}`, "stop"], [2, `(choice 2) ${TEXT}`, "stop"]]);
  assert.deepEqual(r.usage, lastRequest().usage);
});

test("n=2, streamed: chat.completions.stream() assembles each choice by index", async () => {
  const stream = my.client.chat.completions.stream({
    model: SCRIPTED_MODEL, messages: ask("Hi"), n: 2, stream_options: { include_usage: true },
  });
  const r = await stream.finalChatCompletion();
  assert.deepEqual(r.choices.map((c) => [c.index, c.message.content, c.finish_reason]), [
    [0, TEXT, "stop"], [1, `(choice 1) ${TEXT}`, "stop"]]);
  assert.deepEqual(r.usage, lastRequest().usage);
});

// ---- logprobs --------------------------------------------------------------

test("logprobs, whole: a logprob per token, the tokens join to the text, top_logprobs kept", async () => {
  const r = await my.client.chat.completions.create({
    model: SCRIPTED_MODEL, messages: ask("Hi"), logprobs: true, top_logprobs: 2,
  });
  const c = r.choices[0];
  const lp = c.logprobs.content;
  assert.equal(lp.map((t) => t.token).join(""), c.message.content);
  assert.equal(lp[0].logprob, -0.1);
  assert.ok(lp.every((t) => t.top_logprobs.length === 2 && t.top_logprobs[0].token === t.token));
  assert.deepEqual(lp[0].bytes, [...Buffer.from(lp[0].token)]);
});

test("logprobs, streamed: the chunks' logprobs gathered by the SDK match the text", async () => {
  const stream = my.client.chat.completions.stream({
    model: SCRIPTED_MODEL, messages: ask("Hi"), logprobs: true, top_logprobs: 1,
  });
  let pieces = 0;
  stream.on("logprobs.content.delta", () => {
    pieces += 1;
  });
  const r = await stream.finalChatCompletion();
  const c = r.choices[0];
  assert.equal(c.message.content, TEXT);
  assert.equal(c.logprobs.content.map((t) => t.token).join(""), TEXT);
  assert.equal(pieces, c.logprobs.content.length);
  assert.ok(pieces > 5, `${pieces} logprob deltas`);
  assert.ok(c.logprobs.content.every((t) => t.top_logprobs.length === 1));
});

// ---- JSON ------------------------------------------------------------------

test("response_format json_object: the content parses to the backend's object, whole and streamed", async () => {
  const req = { model: SCRIPTED_MODEL, messages: ask("Answer in JSON"), response_format: { type: "json_object" } };
  const r = await my.client.chat.completions.create(req);
  assert.deepEqual(JSON.parse(r.choices[0].message.content), JSON_OBJECT_ANSWER);
  assert.deepEqual(lastRequest().body.response_format, { type: "json_object" });
  const s = await my.client.chat.completions.stream(req).finalChatCompletion();
  assert.deepEqual(JSON.parse(s.choices[0].message.content), JSON_OBJECT_ANSWER);
});

const Person = z.object({
  name: z.string(),
  age: z.number().int(),
  role: z.enum(["admin", "user"]),
  tags: z.array(z.string()),
});

test("chat.completions.parse() with zodResponseFormat: message.parsed is the typed object", async () => {
  const r = await my.client.chat.completions.parse({
    model: SCRIPTED_MODEL, messages: ask("Describe a person"),
    response_format: zodResponseFormat(Person, "person"),
  });
  const want = { name: "name value", age: 42, role: "admin", tags: ["tags value"] };
  assert.deepEqual(r.choices[0].message.parsed, want);
  const rf = lastRequest().body.response_format;
  assert.equal(rf.type, "json_schema");
  assert.equal(rf.json_schema.name, "person");
  assert.equal(rf.json_schema.strict, true);
  // Streamed, the SDK parses the joined content too.
  const s = await my.client.chat.completions.stream({
    model: SCRIPTED_MODEL, messages: ask("Describe a person"),
    response_format: zodResponseFormat(Person, "person"),
  }).finalChatCompletion();
  assert.deepEqual(s.choices[0].message.parsed, want);
});

// ---- stop strings and request ids ------------------------------------------

test("stop: the answer ends before the stop string, finish_reason stop, whole and streamed", async () => {
  const req = { model: SCRIPTED_MODEL, messages: ask("Hi"), stop: ["Goodbye", "never said"] };
  const want = TEXT.slice(0, TEXT.indexOf("Goodbye"));
  const r = await my.client.chat.completions.create(req);
  assert.equal(r.choices[0].message.content, want);
  assert.equal(r.choices[0].finish_reason, "stop");
  assert.deepEqual(lastRequest().body.stop, ["Goodbye", "never said"]);
  const s = await my.client.chat.completions.stream(req).finalChatCompletion();
  assert.equal(s.choices[0].message.content, want);
  assert.equal(s.choices[0].finish_reason, "stop");
});

test("request id: _request_id is the X-Request-Id the backend got, one per request", async () => {
  const a = await my.client.chat.completions.create({ model: SCRIPTED_MODEL, messages: ask("Hi") });
  const seenA = lastRequest().headers["x-request-id"];
  const { data, request_id: idB } = await my.client.chat.completions
    .create({ model: SCRIPTED_MODEL, messages: ask("Hi"), stream: true }).withResponse();
  for await (const _ of data); // eslint-disable-line no-unused-vars
  const seenB = lastRequest().headers["x-request-id"];
  assert.match(a._request_id, /^[0-9A-Za-z._-]+$/);
  assert.equal(a._request_id, seenA);
  assert.equal(idB, seenB);
  assert.notEqual(a._request_id, idB);
  // A client's own X-Request-Id is kept end to end.
  const c = await my.client.chat.completions.create({ model: SCRIPTED_MODEL, messages: ask("Hi") },
    { headers: { "X-Request-Id": "my-trace-42" } });
  assert.equal(c._request_id, "my-trace-42");
  assert.equal(lastRequest().headers["x-request-id"], "my-trace-42");
});

// ---- completions and embeddings --------------------------------------------

test("completions: n=2 and a stop string, whole and streamed", async () => {
  const req = { model: SCRIPTED_MODEL, prompt: "Say it", n: 2, stop: "Goodbye" };
  const cut = (t) => t.slice(0, t.indexOf("Goodbye"));
  const r = await my.client.completions.create(req);
  assert.deepEqual(r.choices.map((c) => [c.index, c.text, c.finish_reason]),
    [[0, cut(TEXT), "stop"], [1, cut(`(choice 1) ${TEXT}`), "stop"]]);
  assert.deepEqual(r.usage, lastRequest().usage);
  const stream = await my.client.completions.create({ ...req, stream: true,
    stream_options: { include_usage: true } });
  const texts = ["", ""];
  let usage;
  for await (const chunk of stream) {
    for (const c of chunk.choices) texts[c.index] += c.text;
    if (chunk.usage) usage = chunk.usage;
  }
  assert.deepEqual(texts, [cut(TEXT), cut(`(choice 1) ${TEXT}`)]);
  assert.deepEqual(usage, lastRequest().usage);
});

test("embeddings: the SDK's base64 and float vectors are the backend's numbers", async () => {
  const { embedding } = await import("./backend.mjs");
  const input = ["alpha beta", "gamma"];
  for (const encoding_format of [undefined, "float"]) {
    const r = await my.client.embeddings.create({ model: "scripted-embed", input, encoding_format });
    assert.equal(r.data.length, 2);
    r.data.forEach((d, i) => {
      const want = embedding(input[i]);
      assert.equal(d.embedding.length, want.length);
      d.embedding.forEach((x, j) => assert.ok(Math.abs(x - want[j]) < 1e-6, `${i}/${j}`));
    });
    assert.deepEqual(r.usage, lastRequest().usage);
  }
});

// ---- cached prompt tokens and errors ---------------------------------------

test("cached prompt tokens: usage.prompt_tokens_details.cached_tokens as the backend reported, whole and streamed", async () => {
  const req = { model: SCRIPTED_MODEL, messages: ask("The cached prompt") };
  const r = await my.client.chat.completions.create(req);
  assert.equal(r.usage.prompt_tokens_details.cached_tokens, CACHED);
  assert.deepEqual(r.usage, lastRequest().usage);
  const s = await my.client.chat.completions.stream({ ...req, stream_options: { include_usage: true } })
    .finalChatCompletion();
  assert.deepEqual(s.usage, lastRequest().usage);
});

test("a mid-stream error (vLLM's data: {error}) is an APIError in the SDK, not a complete answer", async () => {
  const req = { model: SCRIPTED_MODEL, messages: ask("Please fail midway"), stream: true };
  let text = "";
  await assert.rejects(async () => {
    for await (const chunk of await my.client.chat.completions.create(req)) {
      text += chunk.choices[0]?.delta?.content ?? "";
    }
  }, (err) => err instanceof OpenAI.APIError && err.message.includes(MIDWAY_ERROR));
  assert.ok(TEXT.startsWith(text) && text.length > 0, `the text before the error: ${text}`);
  await assert.rejects(my.client.chat.completions.stream(req).finalChatCompletion(),
    (err) => err instanceof OpenAI.APIError && err.message.includes(MIDWAY_ERROR));
  // Whole, the backend's 500 is an error too.
  await assert.rejects(my.client.chat.completions.create({ ...req, stream: false }),
    (err) => err instanceof OpenAI.InternalServerError && err.status === 500 &&
      err.message.includes(MIDWAY_ERROR));
});

// ---- text and arguments as servers encode them -----------------------------

for (const enc of ["raw UTF-8", "ascii"]) {
  test(`unicode text (${enc} JSON from the backend): the SDK gets it exact, whole and streamed`, async () => {
    const req = { model: SCRIPTED_MODEL, messages: ask(`unicode please${enc === "ascii" ? ", ascii" : ""}`) };
    const r = await my.client.chat.completions.create(req);
    assert.equal(r.choices[0].message.content, UNICODE_TEXT);
    const s = await my.client.chat.completions.stream(req).finalChatCompletion();
    assert.equal(s.choices[0].message.content, UNICODE_TEXT);
  });
}

test("a tool call streamed whole in one chunk (\\u-escaped arguments): assembled and parsed", async () => {
  const r = await my.client.chat.completions.stream({
    model: SCRIPTED_MODEL, messages: ask("Weather in Zürich and Paris, one chunk, ascii"),
    tools: [weatherTool],
  }).finalChatCompletion();
  assert.deepEqual(r.choices[0].message.tool_calls.map((t) => JSON.parse(t.function.arguments)),
    [WEATHER.Paris, WEATHER.Zürich]);
});

test("models.list(): every route's chat and embedding model", async () => {
  const ids = [];
  for await (const model of my.client.models.list()) ids.push(model.id);
  for (const want of [SCRIPTED_MODEL, "scripted-embed", "m-openai", "m-tgi", "e-kserve"]) {
    assert.ok(ids.includes(want), `${want} in ${ids.join(" ")}`);
  }
});
