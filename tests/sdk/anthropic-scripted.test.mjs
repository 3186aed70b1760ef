// The Anthropic SDK's Messages API through switchyard, translated to
// backend.mjs's scripted OpenAI-compatible backend (each SSE event its own
// write): messages.stream() with text and tool_use blocks and finalMessage(),
// a tool_result round trip, stop_sequence named from vLLM's stop_reason, the
// request id (request-id header, _request_id), usage equal to the backend's.
//
//   node --test tests/sdk/anthropic-scripted.test.mjs   # binaries in ../../_build
import { test } from "node:test";
import assert from "node:assert/strict";
import Anthropic from "@anthropic-ai/sdk";
import { CACHED, MIDWAY_ERROR, PREAMBLE, TEXT, UNICODE_TEXT, WEATHER } from "./backend.mjs";
import { SCRIPTED_MODEL, sdkOptions, useFleet } from "./fleet.mjs";

const my = useFleet((fleet) => new Anthropic(sdkOptions(fleet, "")));

const lastRequest = () => my.fleet.scripted.requests.at(-1);
const ask = (content, extra = {}) => ({
  model: SCRIPTED_MODEL, max_tokens: 200, messages: [{ role: "user", content }], ...extra,
});
const weatherTool = {
  name: "get_weather",
  description: "The weather in a city",
  input_schema: {
    type: "object",
    properties: { city: { type: "string" }, unit: { type: "string", enum: ["celsius", "fahrenheit"] } },
    required: ["city"],
  },
};

// The Anthropic usage of the backend's OpenAI usage (no cached tokens here).
function assertUsage(usage, backend) {
  assert.equal(usage.input_tokens, backend.prompt_tokens);
  assert.equal(usage.output_tokens, backend.completion_tokens);
}

test("messages.stream(): text events join to the backend's text; finalMessage() has it, end_turn, usage", async () => {
  const stream = my.client.messages.stream(ask("Hi"));
  let text = "";
  const types = [];
  stream.on("text", (d) => {
    text += d;
  });
  stream.on("streamEvent", (e) => types.push(e.type));
  const m = await stream.finalMessage();
  assert.equal(text, TEXT);
  assert.deepEqual(m.content.map((b) => [b.type, b.text]), [["text", TEXT]]);
  assert.equal(m.stop_reason, "end_turn");
  assert.equal(m.stop_sequence, null);
  assert.equal(m.model, SCRIPTED_MODEL);
  assert.match(m.id, /^msg_/);
  assertUsage(m.usage, lastRequest().usage);
  assert.equal(types.filter((t) => t === "content_block_delta").length, TEXT.split(" ").length);
  assert.deepEqual(types.slice(-3), ["content_block_stop", "message_delta", "message_stop"]);
});

test("messages.stream() with tools: text then two tool_use blocks, inputs parsed from streamed JSON", async () => {
  const stream = my.client.messages.stream(ask("Please explain, then get the weather in Paris and Tokyo.",
    { tools: [weatherTool] }));
  const partial = [];
  let text = "";
  stream.on("inputJson", (delta, snapshot) => partial.push([delta, snapshot]));
  stream.on("text", (d) => {
    text += d;
  });
  const m = await stream.finalMessage();
  assert.equal(text, PREAMBLE);
  assert.equal(m.stop_reason, "tool_use");
  assert.deepEqual(m.content.map((b) => b.type), ["text", "tool_use", "tool_use"]);
  assert.equal(m.content[0].text, PREAMBLE);
  assert.deepEqual(m.content.slice(1).map((b) => [b.id, b.name, b.input]), [
    ["call_0_get_weather", "get_weather", WEATHER.Paris],
    ["call_1_get_weather", "get_weather", WEATHER.Tokyo]]);
  // The arguments came in pieces; the SDK's snapshots grew to the whole input.
  assert.ok(partial.length > 6, `${partial.length} input_json deltas`);
  assert.ok(partial.some(([, snap]) => snap && Object.keys(snap).length === 1), "a partial snapshot");
  assertUsage(m.usage, lastRequest().usage);
  // The backend got the tool as an OpenAI function.
  const sent = lastRequest().body;
  assert.equal(sent.tools[0].type, "function");
  assert.equal(sent.tools[0].function.name, "get_weather");
  assert.deepEqual(sent.tools[0].function.parameters, weatherTool.input_schema);
});

test("tool_use, then tool_result: the backend gets the result tied to the call, the answer uses it", async () => {
  const first = await my.client.messages.create(ask("Weather in London?", { tools: [weatherTool] }));
  assert.equal(first.stop_reason, "tool_use");
  const use = first.content.find((b) => b.type === "tool_use");
  assert.deepEqual(use.input, WEATHER.London);
  const second = my.client.messages.stream({
    ...ask("Weather in London?", { tools: [weatherTool] }),
    messages: [
      { role: "user", content: "Weather in London?" },
      { role: "assistant", content: first.content },
      { role: "user", content: [{ type: "tool_result", tool_use_id: use.id, content: "12 degrees, rain" }] },
    ],
  });
  const m = await second.finalMessage();
  assert.equal(m.content[0].text, "Tool said: 12 degrees, rain.");
  assert.equal(m.stop_reason, "end_turn");
  const sent = lastRequest().body.messages;
  assert.equal(sent.at(-2).tool_calls[0].id, use.id);
  assert.deepEqual(JSON.parse(sent.at(-2).tool_calls[0].function.arguments), WEATHER.London);
  assert.equal(sent.at(-1).role, "tool");
  assert.equal(sent.at(-1).tool_call_id, use.id);
});

test("stop_sequences: stop_reason stop_sequence naming the string the backend named, whole and streamed", async () => {
  const req = ask("Hi", { stop_sequences: ["never said", "Goodbye"] });
  const want = TEXT.slice(0, TEXT.indexOf("Goodbye"));
  const whole = await my.client.messages.create(req);
  assert.equal(whole.content[0].text, want);
  assert.equal(whole.stop_reason, "stop_sequence");
  assert.equal(whole.stop_sequence, "Goodbye");
  assert.deepEqual(lastRequest().body.stop, ["never said", "Goodbye"]);
  const stream = my.client.messages.stream(req);
  let delta;
  stream.on("streamEvent", (e) => {
    if (e.type === "message_delta") delta = e.delta;
  });
  const m = await stream.finalMessage();
  assert.equal(m.content[0].text, want);
  assert.deepEqual(delta, { stop_reason: "stop_sequence", stop_sequence: "Goodbye" });
  assert.equal(m.stop_reason, "stop_sequence");
  assert.equal(m.stop_sequence, "Goodbye");
  // A stop string the answer does not reach is no stop_sequence.
  const plain = await my.client.messages.create(ask("Hi", { stop_sequences: ["never said"] }));
  assert.equal(plain.stop_reason, "end_turn");
  assert.equal(plain.stop_sequence, null);
});

test("max_tokens shorter than the answer: stop_reason max_tokens, output_tokens the limit", async () => {
  const m = await my.client.messages.stream(ask("Hi", { max_tokens: 4 })).finalMessage();
  assert.equal(m.stop_reason, "max_tokens");
  assert.equal(m.content[0].text, TEXT.split(" ").slice(0, 4).join(" ") + " ");
  assert.equal(m.usage.output_tokens, 4);
});

test("request id: _request_id and the stream's request_id come from request-id, the id the backend got", async () => {
  const { data, response, request_id } = await my.client.messages.create(ask("Hi")).withResponse();
  const seen = lastRequest().headers["x-request-id"];
  assert.ok(seen, "the backend got an X-Request-Id");
  assert.equal(response.headers.get("request-id"), seen);
  assert.equal(request_id, seen);
  assert.equal(data._request_id, seen);
  const stream = my.client.messages.stream(ask("Hi"));
  await stream.finalMessage();
  assert.equal(stream.request_id, lastRequest().headers["x-request-id"]);
  assert.notEqual(stream.request_id, seen);
});

test("cached prompt tokens: cache_read_input_tokens, and input_tokens the rest, whole and streamed", async () => {
  const req = ask("The cached prompt");
  const whole = await my.client.messages.create(req);
  const backend = lastRequest().usage;
  assert.equal(whole.usage.cache_read_input_tokens, CACHED);
  assert.equal(whole.usage.input_tokens, backend.prompt_tokens - CACHED);
  assert.equal(whole.usage.output_tokens, backend.completion_tokens);
  const m = await my.client.messages.stream(req).finalMessage();
  assert.equal(m.usage.cache_read_input_tokens, CACHED);
  assert.equal(m.usage.input_tokens, lastRequest().usage.prompt_tokens - CACHED);
});

test("a mid-stream backend error is an error event the SDK raises, not a finished message", async () => {
  const stream = my.client.messages.stream(ask("Please fail midway"));
  const types = [];
  stream.on("streamEvent", (e) => types.push(e.type));
  await assert.rejects(stream.finalMessage(),
    (err) => err instanceof Anthropic.APIError && err.message.includes(MIDWAY_ERROR));
  assert.equal(types[0], "message_start");
  assert.ok(!types.includes("message_stop"), types.join(" "));
  assert.ok(!types.includes("message_delta"), types.join(" "));
});

for (const enc of ["raw UTF-8", "ascii"]) {
  test(`unicode text (${enc} JSON from the backend) translated exact, whole and streamed`, async () => {
    const req = ask(`unicode please${enc === "ascii" ? ", ascii" : ""}`);
    const whole = await my.client.messages.create(req);
    assert.equal(whole.content[0].text, UNICODE_TEXT);
    const stream = my.client.messages.stream(req);
    let text = "";
    stream.on("text", (d) => {
      text += d;
    });
    const m = await stream.finalMessage();
    assert.equal(text, UNICODE_TEXT);
    assert.equal(m.content[0].text, UNICODE_TEXT);
  });
}

test("tool calls streamed whole in one chunk each (\\u-escaped): tool_use inputs parsed, whole and streamed", async () => {
  const req = ask("Weather in Zürich and Paris, one chunk, ascii", { tools: [weatherTool] });
  const want = [WEATHER.Paris, WEATHER.Zürich];
  const whole = await my.client.messages.create(req);
  assert.deepEqual(whole.content.filter((b) => b.type === "tool_use").map((b) => b.input), want);
  const m = await my.client.messages.stream(req).finalMessage();
  assert.deepEqual(m.content.map((b) => [b.type, b.input]), want.map((w) => ["tool_use", w]));
  assert.equal(m.stop_reason, "tool_use");
});

const timeTool = {
  name: "get_time", description: "The time in a zone",
  input_schema: { type: "object", properties: { zone: { type: "string" } }, required: ["zone"] },
};

test("tool_choice: a named tool is forced (OpenAI's function choice), any is required, parallel use off", async () => {
  const m = await my.client.messages.create(ask("Weather in Paris?", {
    tools: [weatherTool, timeTool],
    tool_choice: { type: "tool", name: "get_time", disable_parallel_tool_use: true },
  }));
  assert.deepEqual(m.content.map((b) => [b.type, b.name, b.input]),
    [["tool_use", "get_time", { zone: "zone value" }]]);
  let sent = lastRequest().body;
  assert.deepEqual(sent.tool_choice, { type: "function", function: { name: "get_time" } });
  assert.equal(sent.parallel_tool_calls, false);
  await my.client.messages.create(ask("Weather in Paris?", {
    tools: [weatherTool, timeTool], tool_choice: { type: "any" },
  }));
  sent = lastRequest().body;
  assert.equal(sent.tool_choice, "required");
  assert.equal(sent.parallel_tool_calls, undefined);
});

test("models.list(): every route's model, through the Anthropic SDK", async () => {
  const ids = [];
  for await (const model of my.client.models.list()) ids.push(model.id);
  assert.ok(ids.includes(SCRIPTED_MODEL) && ids.includes("m-anthropic"), ids.join(" "));
});
