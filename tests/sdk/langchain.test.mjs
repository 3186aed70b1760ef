// LangChain JS (@langchain/openai) through switchyard to backend.mjs's
// scripted OpenAI-compatible backend: ChatOpenAI invoke, stream, bindTools
// (whole and streamed, the tool call chunks joined), withStructuredOutput by
// JSON schema and by function calling, and OpenAIEmbeddings; text, tool
// arguments, usage_metadata and ids as LangChain's user gets them.
//
//   node --test tests/sdk/langchain.test.mjs   # binaries in ../../_build
import { test } from "node:test";
import assert from "node:assert/strict";
import { ChatOpenAI, OpenAIEmbeddings } from "@langchain/openai";
import { tool } from "@langchain/core/tools";
import { z } from "zod";
import { CACHED, MIDWAY_ERROR, TEXT, WEATHER, embedding } from "./backend.mjs";
import { SCRIPTED_EMBEDDING, SCRIPTED_MODEL, useFleet } from "./fleet.mjs";

const my = useFleet();
const configuration = () => ({ baseURL: `http://127.0.0.1:${my.fleet.gatewayPort}/v1` });
const chat = (extra = {}) => new ChatOpenAI({
  model: SCRIPTED_MODEL, apiKey: "test", maxRetries: 0, timeout: 10000,
  configuration: configuration(), ...extra,
});
const lastRequest = () => my.fleet.scripted.requests.at(-1);

// LangChain's usage_metadata of the backend's OpenAI usage.
function assertUsage(meta, backend) {
  assert.equal(meta.input_tokens, backend.prompt_tokens);
  assert.equal(meta.output_tokens, backend.completion_tokens);
  assert.equal(meta.total_tokens, backend.total_tokens);
}

const getWeather = tool(async ({ city }) => `sunny in ${city}`, {
  name: "get_weather",
  description: "The weather in a city",
  schema: z.object({ city: z.string(), unit: z.enum(["celsius", "fahrenheit"]) }),
});

test("ChatOpenAI.invoke: the backend's text, finish_reason, usage_metadata, id", async () => {
  const m = await chat().invoke("Hi");
  assert.equal(m.content, TEXT);
  assert.equal(m.response_metadata.finish_reason, "stop");
  assert.equal(m.response_metadata.model_name, SCRIPTED_MODEL);
  assertUsage(m.usage_metadata, lastRequest().usage);
  assert.match(m.id, /^chatcmpl-/);
  assert.deepEqual(lastRequest().body.messages, [{ role: "user", content: "Hi" }]);
});

test("ChatOpenAI.stream: the chunks join to the text; usage_metadata from the usage chunk", async () => {
  let joined;
  let n = 0;
  for await (const chunk of await chat().stream("Hi")) {
    joined = joined ? joined.concat(chunk) : chunk;
    n += 1;
  }
  assert.ok(n > 5, `${n} chunks`);
  assert.equal(joined.content, TEXT);
  assert.equal(lastRequest().body.stream_options?.include_usage, true);
  assertUsage(joined.usage_metadata, lastRequest().usage);
});

test("bindTools, invoke: the tool calls with parsed args and the backend's ids", async () => {
  const m = await chat().bindTools([getWeather]).invoke("Weather in Paris and Tokyo?");
  assert.deepEqual(m.tool_calls.map((c) => [c.id, c.name, c.args]), [
    ["call_0_get_weather", "get_weather", WEATHER.Paris],
    ["call_1_get_weather", "get_weather", WEATHER.Tokyo]]);
  assert.equal(m.response_metadata.finish_reason, "tool_calls");
  assertUsage(m.usage_metadata, lastRequest().usage);
  assert.equal(lastRequest().body.tools[0].function.name, "get_weather");
});

test("bindTools, stream: tool_call_chunks in pieces join to the parsed calls; the result goes back", async () => {
  const model = chat().bindTools([getWeather]);
  let joined;
  let pieces = 0;
  for await (const chunk of await model.stream("Weather in London?")) {
    pieces += chunk.tool_call_chunks?.length ?? 0;
    joined = joined ? joined.concat(chunk) : chunk;
  }
  assert.ok(pieces > 3, `${pieces} tool call chunks`);
  assert.deepEqual(joined.tool_calls.map((c) => [c.id, c.name, c.args]),
    [["call_0_get_weather", "get_weather", WEATHER.London]]);
  // The tool's result as a ToolMessage, and the backend's answer to it.
  const result = await getWeather.invoke(joined.tool_calls[0]);
  const answer = await model.invoke([{ role: "user", content: "Weather in London?" }, joined, result]);
  assert.equal(answer.content, "Tool said: sunny in London.");
  const sent = lastRequest().body.messages;
  assert.equal(sent.at(-1).role, "tool");
  assert.equal(sent.at(-1).tool_call_id, "call_0_get_weather");
  assert.equal(sent.at(-2).tool_calls[0].id, "call_0_get_weather");
});

const City = z.object({ name: z.string(), population: z.number(), capital: z.boolean() });
const CITY = { name: "name value", population: 42, capital: true };

for (const method of ["jsonSchema", "functionCalling"]) {
  test(`withStructuredOutput (${method}): the typed object`, async () => {
    const r = await chat().withStructuredOutput(City, { name: "city", method }).invoke("A city");
    assert.deepEqual(r, CITY);
    const body = lastRequest().body;
    if (method === "jsonSchema") {
      assert.equal(body.response_format.type, "json_schema");
      assert.equal(body.response_format.json_schema.name, "city");
    } else {
      assert.equal(body.tools[0].function.name, "city");
      assert.equal(body.tool_choice.function.name, "city");
    }
  });
}

test("withStructuredOutput includeRaw: the parsed object and the raw message's usage", async () => {
  const r = await chat().withStructuredOutput(City, { name: "city", includeRaw: true }).invoke("A city");
  assert.deepEqual(r.parsed, CITY);
  assertUsage(r.raw.usage_metadata, lastRequest().usage);
});

test("OpenAIEmbeddings: embedDocuments and embedQuery are the backend's vectors", async () => {
  const emb = new OpenAIEmbeddings({
    model: SCRIPTED_EMBEDDING, apiKey: "test", maxRetries: 0, configuration: configuration(),
  });
  const docs = ["first document", "second document"];
  const vectors = await emb.embedDocuments(docs);
  const query = await emb.embedQuery("the query");
  const close = (got, text) => {
    const want = embedding(text);
    assert.equal(got.length, want.length);
    got.forEach((x, j) => assert.ok(Math.abs(x - want[j]) < 1e-6, `${text}/${j}`));
  };
  assert.equal(vectors.length, 2);
  vectors.forEach((v, i) => close(v, docs[i]));
  close(query, "the query");
  assert.equal(lastRequest().body.model, SCRIPTED_EMBEDDING);
});

test("cached prompt tokens: usage_metadata.input_token_details.cache_read, invoke and stream", async () => {
  const m = await chat().invoke("The cached prompt");
  assert.equal(m.usage_metadata.input_token_details.cache_read, CACHED);
  assertUsage(m.usage_metadata, lastRequest().usage);
  let joined;
  for await (const chunk of await chat().stream("The cached prompt")) {
    joined = joined ? joined.concat(chunk) : chunk;
  }
  assert.equal(joined.usage_metadata.input_token_details.cache_read, CACHED);
});

test("a mid-stream backend error: stream() throws with the backend's message", async () => {
  await assert.rejects(async () => {
    for await (const _ of await chat().stream("Please fail midway")); // eslint-disable-line no-unused-vars
  }, (err) => String(err.message).includes(MIDWAY_ERROR));
  // Whole, the backend's 500 and its message.
  await assert.rejects(chat().invoke("Please fail midway"),
    (err) => err.status === 500 && err.message.includes(MIDWAY_ERROR));
});
