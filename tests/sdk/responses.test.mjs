// OpenAI's Responses API through switchyard to backend.mjs's scripted
// OpenAI-compatible backend, by the clients that speak it: the OpenAI SDK's
// client.responses (create whole and streamed, a function tool's round trip
// continued with previous_response_id, retrieve, delete), the Vercel AI
// SDK's default OpenAI provider (createOpenAI(...)(model): generateText,
// streamText) and LangChain's ChatOpenAI with useResponsesApi (invoke,
// stream). Each test asserts what the client's user gets and what the
// backend was sent.
//
//   node --test tests/sdk/responses.test.mjs   # binaries in ../../_build
import { test } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import { generateText, stepCountIs, streamText, tool } from "ai";
import { createOpenAI } from "@ai-sdk/openai";
import { ChatOpenAI } from "@langchain/openai";
import { z } from "zod";
import { PREAMBLE, TEXT, WEATHER } from "./backend.mjs";
import { SCRIPTED_MODEL, sdkOptions, useFleet } from "./fleet.mjs";

const my = useFleet((fleet) => new OpenAI(sdkOptions(fleet, "/v1")));
const baseURL = () => `http://127.0.0.1:${my.fleet.gatewayPort}/v1`;
const lastRequest = () => my.fleet.scripted.requests.at(-1);

const weatherTool = {
  type: "function",
  name: "get_weather",
  description: "The weather in a city",
  parameters: {
    type: "object",
    properties: { city: { type: "string" }, unit: { type: "string", enum: ["celsius", "fahrenheit"] } },
    required: ["city", "unit"],
    additionalProperties: false,
  },
  strict: true,
};

// ---- the OpenAI SDK ---------------------------------------------------------

test("responses.create: the backend's text as output_text, usage, a stored response", async () => {
  const r = await my.client.responses.create({ model: SCRIPTED_MODEL, instructions: "Be brief.", input: "Hi" });
  assert.equal(r.object, "response");
  assert.equal(r.status, "completed");
  assert.equal(r.output_text, TEXT);
  assert.match(r.id, /^resp_/);
  const u = lastRequest().usage;
  assert.equal(r.usage.input_tokens, u.prompt_tokens);
  assert.equal(r.usage.output_tokens, u.completion_tokens);
  assert.deepEqual(lastRequest().body.messages, [
    { role: "system", content: "Be brief." }, { role: "user", content: "Hi" }]);
});

test("responses.create({stream: true}): text deltas, then response.completed with the whole text", async () => {
  const stream = await my.client.responses.create({ model: SCRIPTED_MODEL, input: "Hi", stream: true });
  let text = "";
  let completed;
  const types = [];
  for await (const e of stream) {
    types.push(e.type);
    if (e.type === "response.output_text.delta") text += e.delta;
    if (e.type === "response.completed") completed = e.response;
  }
  assert.equal(types[0], "response.created");
  assert.equal(types.at(-1), "response.completed");
  assert.equal(text, TEXT);
  assert.equal(completed.status, "completed");
  assert.equal(completed.output[0].content[0].text, TEXT);
  // Kept once completed: retrieve finds it.
  const got = await my.client.responses.retrieve(completed.id);
  assert.equal(got.output_text, TEXT);
});

test("a function tool's round trip: the call, then its output continued with previous_response_id", async () => {
  const first = await my.client.responses.create({
    model: SCRIPTED_MODEL, input: "What is the weather in Paris?", tools: [weatherTool],
  });
  const call = first.output.find((i) => i.type === "function_call");
  assert.ok(call, JSON.stringify(first.output));
  assert.equal(call.name, "get_weather");
  assert.deepEqual(JSON.parse(call.arguments), WEATHER.Paris);
  const second = await my.client.responses.create({
    model: SCRIPTED_MODEL,
    previous_response_id: first.id,
    input: [{ type: "function_call_output", call_id: call.call_id, output: JSON.stringify({ temperature: 21 }) }],
    tools: [weatherTool],
  });
  assert.equal(second.output_text, 'Tool said: {"temperature":21}.');
  // The backend got the whole conversation: the question, the call, its result.
  const sent = lastRequest().body.messages;
  assert.deepEqual(sent.map((m) => m.role), ["user", "assistant", "tool"]);
  assert.equal(sent[0].content, "What is the weather in Paris?");
  assert.equal(sent[1].tool_calls[0].id, call.call_id);
  assert.equal(sent[1].tool_calls[0].function.name, "get_weather");
  assert.equal(sent[2].tool_call_id, call.call_id);
});

test("responses.retrieve and responses.delete: the stored response, then a 404", async () => {
  const r = await my.client.responses.create({ model: SCRIPTED_MODEL, input: "Hi" });
  const got = await my.client.responses.retrieve(r.id);
  assert.equal(got.id, r.id);
  assert.equal(got.output_text, TEXT);
  assert.deepEqual(got.usage, r.usage);
  assert.equal(got.store, true);
  await my.client.responses.delete(r.id);
  await assert.rejects(my.client.responses.retrieve(r.id), (e) => e instanceof OpenAI.NotFoundError);
  await assert.rejects(my.client.responses.create({ model: SCRIPTED_MODEL, input: "Hi", previous_response_id: r.id }),
    (e) => e instanceof OpenAI.NotFoundError && e.code === "previous_response_not_found" &&
      e.param === "previous_response_id");
});

test("responses.create({store: false}): nothing to retrieve", async () => {
  const r = await my.client.responses.create({ model: SCRIPTED_MODEL, input: "Hi", store: false });
  assert.equal(r.output_text, TEXT);
  await assert.rejects(my.client.responses.retrieve(r.id), (e) => e instanceof OpenAI.NotFoundError);
});

// ---- the Vercel AI SDK's default OpenAI provider (the Responses API) ----------

const aiModel = () => createOpenAI({ baseURL: baseURL(), apiKey: "test" })(SCRIPTED_MODEL);

test("AI SDK createOpenAI()(model): generateText over /v1/responses", async () => {
  const before = my.fleet.scripted.requests.length;
  const r = await generateText({ model: aiModel(), prompt: "Hi", maxRetries: 0 });
  assert.equal(r.text, TEXT);
  assert.equal(r.finishReason, "stop");
  assert.equal(r.usage.inputTokens, lastRequest().usage.prompt_tokens);
  assert.equal(r.usage.outputTokens, lastRequest().usage.completion_tokens);
  assert.match(r.response.id, /^resp_/);
  assert.equal(my.fleet.scripted.requests.length, before + 1);
});

test("AI SDK createOpenAI()(model): streamText over /v1/responses", async () => {
  const r = streamText({ model: aiModel(), prompt: "Hi", maxRetries: 0 });
  let text = "";
  for await (const piece of r.textStream) text += piece;
  assert.equal(text, TEXT);
  assert.equal(await r.finishReason, "stop");
  assert.equal((await r.usage).outputTokens, lastRequest().usage.completion_tokens);
});

test("AI SDK createOpenAI()(model): generateText with a tool over two steps (the text referred to by item_reference)", async () => {
  const calls = [];
  const bodies = []; // what the SDK sent to /v1/responses
  const recording = async (url, init) => {
    bodies.push(JSON.parse(init.body));
    return fetch(url, init);
  };
  const r = await generateText({
    model: createOpenAI({ baseURL: baseURL(), apiKey: "test", fetch: recording })(SCRIPTED_MODEL),
    prompt: "Please explain, then get the weather in London.",
    tools: {
      get_weather: tool({
        description: "The weather in a city",
        inputSchema: z.object({ city: z.string(), unit: z.enum(["celsius", "fahrenheit"]) }),
        execute: async (input) => {
          calls.push(input);
          return { temperature: 21, city: input.city };
        },
      }),
    },
    stopWhen: stepCountIs(3),
    maxRetries: 0,
  });
  assert.deepEqual(calls, [WEATHER.London]);
  assert.equal(r.steps.length, 2);
  assert.equal(r.text, 'Tool said: {"temperature":21,"city":"London"}.');
  // The second step's request named the first step's text by its id; the
  // backend got the text itself, the call and its result.
  assert.equal(bodies.length, 2);
  const ref = bodies[1].input.find((i) => i.type === "item_reference");
  assert.ok(ref, JSON.stringify(bodies[1].input));
  assert.match(ref.id, /^msg_/);
  const sent = lastRequest().body.messages;
  assert.deepEqual(sent.map((m) => m.role), ["user", "assistant", "tool"]);
  assert.equal(sent[1].content, PREAMBLE);
  assert.equal(sent[1].tool_calls[0].function.name, "get_weather");
  assert.equal(sent[2].tool_call_id, sent[1].tool_calls[0].id);
});

// ---- LangChain's ChatOpenAI on the Responses API ------------------------------

const lcChat = () => new ChatOpenAI({
  model: SCRIPTED_MODEL, apiKey: "test", maxRetries: 0, timeout: 10000, useResponsesApi: true,
  configuration: { baseURL: baseURL() },
});

test("LangChain ChatOpenAI({useResponsesApi}).invoke: the backend's text and usage", async () => {
  const m = await lcChat().invoke("Hi");
  assert.equal(m.text, TEXT);
  assert.equal(m.usage_metadata.input_tokens, lastRequest().usage.prompt_tokens);
  assert.equal(m.usage_metadata.output_tokens, lastRequest().usage.completion_tokens);
  assert.deepEqual(lastRequest().body.messages, [{ role: "user", content: "Hi" }]);
});

test("LangChain ChatOpenAI({useResponsesApi}).stream: the chunks join to the text", async () => {
  let joined;
  for await (const chunk of await lcChat().stream("Hi")) joined = joined ? joined.concat(chunk) : chunk;
  assert.equal(joined.text, TEXT);
  assert.equal(joined.usage_metadata.output_tokens, lastRequest().usage.completion_tokens);
});
