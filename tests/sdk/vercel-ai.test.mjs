// The Vercel AI SDK (`ai`) through switchyard to backend.mjs's scripted
// OpenAI-compatible backend, by both of its ways to an OpenAI-compatible
// server: @ai-sdk/openai-compatible's provider and @ai-sdk/openai's
// createOpenAI(...).chat. generateText (plain, structured output, with tools
// over several steps under stopWhen), streamText with tools and stopWhen, and
// embedMany; text, tool inputs, usage and ids as the SDK's user gets them.
//
//   node --test tests/sdk/vercel-ai.test.mjs   # binaries in ../../_build
import { test } from "node:test";
import assert from "node:assert/strict";
import { embedMany, generateText, Output, stepCountIs, streamText, tool } from "ai";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { createOpenAI } from "@ai-sdk/openai";
import { z } from "zod";
import { CACHED, MIDWAY_ERROR, TEXT, WEATHER, embedding } from "./backend.mjs";
import { SCRIPTED_EMBEDDING, SCRIPTED_MODEL, useFleet } from "./fleet.mjs";

const my = useFleet();

// The two providers, each as { chat, embedding } models.
const PROVIDERS = {
  "openai-compatible": (baseURL) => {
    const p = createOpenAICompatible({ name: "switchyard", baseURL, apiKey: "test", includeUsage: true,
      supportsStructuredOutputs: true });
    return { chat: p.chatModel(SCRIPTED_MODEL), embedding: p.embeddingModel(SCRIPTED_EMBEDDING) };
  },
  "createOpenAI().chat": (baseURL) => {
    const p = createOpenAI({ baseURL, apiKey: "test" });
    return { chat: p.chat(SCRIPTED_MODEL), embedding: p.embedding(SCRIPTED_EMBEDDING) };
  },
};
const models = (name) => PROVIDERS[name](`http://127.0.0.1:${my.fleet.gatewayPort}/v1`);
const requests = () => my.fleet.scripted.requests;

// The AI SDK's usage of the backend's OpenAI usage objects, added up.
function assertUsage(usage, backend) {
  const sum = (k) => backend.reduce((n, u) => n + u[k], 0);
  assert.equal(usage.inputTokens, sum("prompt_tokens"));
  assert.equal(usage.outputTokens, sum("completion_tokens"));
  assert.equal(usage.totalTokens, sum("total_tokens"));
}

// A weather tool whose calls the test records.
function weatherTool(calls) {
  return tool({
    description: "The weather in a city",
    inputSchema: z.object({ city: z.string(), unit: z.enum(["celsius", "fahrenheit"]) }),
    execute: async (input) => {
      calls.push(input);
      return { temperature: 21, city: input.city };
    },
  });
}
const TOOL_SAID = (city) => `Tool said: {"temperature":21,"city":"${city}"}.`;

for (const name of Object.keys(PROVIDERS)) {
  test(`${name}: generateText: the backend's text, finishReason stop, usage, response id and model`, async () => {
    const r = await generateText({ model: models(name).chat, prompt: "Hi", maxRetries: 0 });
    assert.equal(r.text, TEXT);
    assert.equal(r.finishReason, "stop");
    assertUsage(r.usage, [requests().at(-1).usage]);
    assert.match(r.response.id, /^chatcmpl-/);
    assert.equal(r.response.modelId, SCRIPTED_MODEL);
    assert.equal(requests().at(-1).body.messages.at(-1).content, "Hi");
  });

  test(`${name}: generateText with a tool and stopWhen: the tool runs, its result goes back, two steps`, async () => {
    const calls = [];
    const before = requests().length;
    const r = await generateText({
      model: models(name).chat, prompt: "What is the weather in Tokyo?", maxRetries: 0,
      tools: { get_weather: weatherTool(calls) }, stopWhen: stepCountIs(3),
    });
    assert.deepEqual(calls, [WEATHER.Tokyo]);
    assert.equal(r.steps.length, 2);
    assert.equal(r.steps[0].finishReason, "tool-calls");
    assert.deepEqual(r.steps[0].toolCalls.map((c) => [c.toolCallId, c.toolName, c.input]),
      [["call_0_get_weather", "get_weather", WEATHER.Tokyo]]);
    assert.equal(r.text, TOOL_SAID("Tokyo"));
    assert.equal(r.finishReason, "stop");
    const sent = requests().slice(before);
    assert.equal(sent.length, 2);
    assert.equal(sent[1].body.messages.at(-1).role, "tool");
    assert.equal(sent[1].body.messages.at(-1).tool_call_id, "call_0_get_weather");
    assertUsage(r.totalUsage, sent.map((q) => q.usage));
  });

  test(`${name}: streamText with tools and stopWhen: streamed tool input, the call, its result, then text`, async () => {
    const calls = [];
    const before = requests().length;
    const result = streamText({
      model: models(name).chat, prompt: "Weather in Paris and London, please", maxRetries: 0,
      tools: { get_weather: weatherTool(calls) }, stopWhen: stepCountIs(3),
    });
    const parts = {};
    const toolCalls = [];
    const toolResults = [];
    let text = "";
    for await (const part of result.fullStream) {
      parts[part.type] = (parts[part.type] ?? 0) + 1;
      if (part.type === "tool-call") toolCalls.push([part.toolCallId, part.input]);
      if (part.type === "tool-result") toolResults.push([part.toolCallId, part.output]);
      if (part.type === "text-delta") text += part.text;
      if (part.type === "error") throw part.error;
    }
    assert.deepEqual(toolCalls, [["call_0_get_weather", WEATHER.Paris],
      ["call_1_get_weather", WEATHER.London]]);
    assert.deepEqual(calls, [WEATHER.Paris, WEATHER.London]);
    assert.deepEqual(toolResults, [["call_0_get_weather", { temperature: 21, city: "Paris" }],
      ["call_1_get_weather", { temperature: 21, city: "London" }]]);
    assert.ok(parts["tool-input-delta"] > 6, `${parts["tool-input-delta"]} tool-input-delta parts`);
    assert.equal(parts["finish-step"], 2);
    assert.equal(text, `${TOOL_SAID("Paris")} ${TOOL_SAID("London")}`);
    assert.equal(await result.text, text);
    assert.equal(await result.finishReason, "stop");
    const sent = requests().slice(before);
    assert.equal(sent.length, 2);
    assert.ok(sent.every((q) => q.body.stream === true && q.body.stream_options?.include_usage));
    assertUsage(await result.totalUsage, sent.map((q) => q.usage));
  });

  test(`${name}: generateText with Output.object: the typed object from response_format json_schema`, async () => {
    const r = await generateText({
      model: models(name).chat, prompt: "A city, please", maxRetries: 0,
      output: Output.object({ schema: z.object({ city: z.string(), population: z.number() }) }),
    });
    assert.deepEqual(r.output, { city: "city value", population: 42 });
    assert.equal(requests().at(-1).body.response_format.type, "json_schema");
  });

  test(`${name}: embedMany: the backend's vectors in order, usage tokens`, async () => {
    const values = ["sunny day", "rainy night", "a third value"];
    const r = await embedMany({ model: models(name).embedding, values, maxRetries: 0 });
    assert.equal(r.embeddings.length, values.length);
    r.embeddings.forEach((v, i) => {
      const want = embedding(values[i]);
      assert.equal(v.length, want.length);
      v.forEach((x, j) => assert.ok(Math.abs(x - want[j]) < 1e-6, `${i}/${j}: ${x} vs ${want[j]}`));
    });
    assert.equal(r.usage.tokens, requests().at(-1).usage.prompt_tokens);
  });

  test(`${name}: cached prompt tokens in usage.inputTokenDetails.cacheReadTokens, whole and streamed`, async () => {
    const r = await generateText({ model: models(name).chat, prompt: "The cached prompt", maxRetries: 0 });
    assert.equal(r.usage.inputTokenDetails.cacheReadTokens, CACHED);
    assertUsage(r.usage, [requests().at(-1).usage]);
    const s = streamText({ model: models(name).chat, prompt: "The cached prompt", maxRetries: 0 });
    const usage = await s.totalUsage;
    assert.equal(usage.inputTokenDetails.cacheReadTokens, CACHED);
    assertUsage(usage, [requests().at(-1).usage]);
  });

  test(`${name}: a mid-stream backend error is an error part of streamText, and generateText throws`, async () => {
    const s = streamText({ model: models(name).chat, prompt: "Please fail midway", maxRetries: 0,
      onError: () => {} });
    const errors = [];
    let text = "";
    for await (const part of s.fullStream) {
      if (part.type === "error") errors.push(part.error);
      if (part.type === "text-delta") text += part.text;
    }
    assert.equal(errors.length, 1, "one error part");
    assert.ok(JSON.stringify(errors[0]).includes(MIDWAY_ERROR) || String(errors[0]).includes(MIDWAY_ERROR),
      String(errors[0]));
    assert.ok(TEXT.startsWith(text), text);
    await assert.rejects(generateText({ model: models(name).chat, prompt: "Please fail midway", maxRetries: 0 }),
      (err) => err.statusCode === 500 && String(err.message).includes(MIDWAY_ERROR));
  });
}
