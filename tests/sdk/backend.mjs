// A scripted OpenAI-compatible backend for the SDK tests: a small Node HTTP
// server whose answers are a function of the request, for what sy-sim does
// not script: tool calls, n > 1, logprobs, JSON (response_format) and stop
// strings. Streams are written as vLLM and llama.cpp write them: each SSE
// event its own write, a little apart, never two in one.
//
//   const b = await startBackend(port);   // POST /v1/chat/completions,
//   ...                                   // /v1/completions, /v1/embeddings,
//   b.requests                            // GET /v1/models; what it was sent
//   await b.close();
//
// The script (what the tests assert on):
// - Tools given and the last message not a tool result: a call of each tool
//   the last user message names (its first tool when it names none), in
//   order, finish_reason "tool_calls", after the text PREAMBLE when that
//   message says "explain". The arguments are WEATHER[city] style
//   tables below (get_weather: one call per city named) or, for another tool,
//   a value of its JSON schema (schemaValue). Streamed, each call's arguments
//   come in pieces of ARG_PIECE characters across several chunks, the first
//   chunk of a call carrying its id and name.
// - The last message a tool result: "Tool said: <result>." (each result of
//   the turn, joined by " "), finish_reason "stop".
// - response_format json_object: JSON_OBJECT_ANSWER; json_schema: the
//   schema's value (schemaValue).
// - Otherwise TEXT, choice i > 0 prefixed "(choice i) ".
// - A `stop` string the text contains cuts it there: finish_reason "stop" and
//   vLLM's `stop_reason` naming the string. max_tokens shorter than the
//   answer cuts it: finish_reason "length".
// - logprobs: each token's logprob -0.1*(k+1) for token k, with top_logprobs
//   alternatives; tokens are the text's words with their trailing space.
// - usage: prompt_tokens the words of every message (plus 3 per message),
//   completion_tokens the tokens of every choice; streamed only with
//   stream_options.include_usage, in a last chunk without choices.
// - The last message says "unicode": UNICODE_TEXT; "ascii": every JSON
//   text written with \u escapes for what is not ASCII (as Python's
//   json.dumps writes); "one chunk": each tool call streamed whole in one
//   chunk (name and arguments together, as some servers do).
// - The last message says "cached": usage.prompt_tokens_details.cached_tokens
//   is CACHED. It says "fail midway": streamed, three text chunks and then
//   vLLM's error event (data: {"error": ...}, MIDWAY_ERROR, no [DONE]);
//   whole, a 500 with that error.
// - Embeddings: EMBED_DIMS numbers per input from the input's bytes; float or
//   base64 as encoding_format asks.
import http from "node:http";

export const TEXT = "Hello from the scripted backend. It answers every request the same way. Goodbye.";
export const JSON_OBJECT_ANSWER = { answer: "hello", count: 3 };
export const WEATHER = {
  Paris: { city: "Paris", unit: "celsius" },
  Tokyo: { city: "Tokyo", unit: "celsius" },
  London: { city: "London", unit: "celsius" },
  Zürich: { city: "Zürich", unit: "celsius" },
};
export const PREAMBLE = "Let me look that up. ";
export const ARG_PIECE = 5;
export const CACHED = 3; // prompt tokens reported cached when the prompt says "cached"
// The answer when the prompt says "unicode": multi-byte characters, an emoji
// (a surrogate pair as \u escapes), quotes, a backslash, control characters.
export const UNICODE_TEXT = 'Grüße, 世界! 👋 He said "hi" \\o/\nnew line\ttab. Ça va?';
export const MIDWAY_ERROR = "the backend ran out of memory";
export const EMBED_DIMS = 8;
export const GAP_MS = 2; // between two events of a stream

const words = (s) => (typeof s === "string" ? s.match(/\S+\s*/g) ?? [] : []);

function messageText(m) {
  if (typeof m.content === "string") return m.content;
  if (Array.isArray(m.content)) {
    return m.content.map((p) => (typeof p.text === "string" ? p.text : "")).join(" ");
  }
  return "";
}

// A value of a JSON schema: the first enum value, a string naming the
// property, 42, true, one item, every property of an object.
export function schemaValue(schema, name = "value") {
  if (!schema || typeof schema !== "object") return name;
  if (Array.isArray(schema.enum) && schema.enum.length) return schema.enum[0];
  if (schema.const !== undefined) return schema.const;
  for (const k of ["anyOf", "oneOf", "allOf"]) {
    if (Array.isArray(schema[k]) && schema[k].length) {
      const alt = schema[k].find((s) => s.type !== "null") ?? schema[k][0];
      return schemaValue(alt, name);
    }
  }
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== "null") : schema.type;
  switch (type) {
    case "object": {
      const out = {};
      for (const [k, v] of Object.entries(schema.properties ?? {})) out[k] = schemaValue(v, k);
      return out;
    }
    case "array": return [schemaValue(schema.items, name)];
    case "integer": case "number": return 42;
    case "boolean": return true;
    case "null": return null;
    default: return `${name} value`;
  }
}

// The tool calls of a request: [{id, name, arguments (a JSON text)}].
function toolCalls(body, last) {
  const tools = (body.tools ?? []).filter((t) => t.type === "function" && t.function);
  const said = messageText(last);
  let chosen = tools.filter((t) => said.includes(t.function.name));
  const forced = body.tool_choice?.function?.name;
  if (forced) chosen = tools.filter((t) => t.function.name === forced);
  if (chosen.length === 0) chosen = tools.slice(0, 1);
  const calls = [];
  for (const t of chosen) {
    const name = t.function.name;
    if (name === "get_weather") {
      const cities = Object.keys(WEATHER).filter((c) => said.includes(c));
      for (const c of cities.length ? cities : ["Paris"]) calls.push({ name, args: WEATHER[c] });
    } else {
      calls.push({ name, args: schemaValue(t.function.parameters, name) });
    }
  }
  return calls.map((c, i) => ({
    id: `call_${i}_${c.name}`, name: c.name, arguments: JSON.stringify(c.args),
  }));
}

// The answer of a chat request: { choices: [{text, calls, finish, stop}], usage }.
function chatAnswer(body) {
  const msgs = body.messages ?? [];
  const last = msgs.at(-1) ?? {};
  const prompt = msgs.reduce((n, m) => n + 3 + words(messageText(m)).length, 0);
  const n = body.n ?? 1;
  const said = messageText(last);
  const choices = [];
  for (let i = 0; i < n; i++) {
    let text = TEXT;
    let calls = null;
    if (last.role === "tool") {
      const results = [];
      for (let j = msgs.length - 1; j >= 0 && msgs[j].role === "tool"; j--) {
        results.unshift(messageText(msgs[j]));
      }
      text = results.map((r) => `Tool said: ${r}.`).join(" ");
    } else if (body.tools?.length && body.tool_choice !== "none") {
      calls = toolCalls(body, last);
      text = messageText(last).includes("explain") ? PREAMBLE : "";
    } else if (said.includes("unicode")) {
      text = UNICODE_TEXT;
    } else if (body.response_format?.type === "json_object") {
      text = JSON.stringify(JSON_OBJECT_ANSWER);
    } else if (body.response_format?.type === "json_schema") {
      text = JSON.stringify(schemaValue(body.response_format.json_schema?.schema));
    } else if (i > 0) {
      text = `(choice ${i}) ${TEXT}`;
    }
    choices.push(cut({ text, calls }, body));
  }
  const usage = usageOf(prompt, completionTokens(choices));
  if (said.includes("cached")) usage.prompt_tokens_details = { cached_tokens: CACHED };
  return { choices, usage, fail: said.includes("fail midway"), ascii: said.includes("ascii"),
    oneChunk: said.includes("one chunk") };
}

// Applies the request's stop strings and token limit to a choice's text.
function cut(choice, body) {
  choice.finish = choice.calls ? "tool_calls" : "stop";
  choice.stop = null;
  if (choice.calls) return choice;
  const stops = typeof body.stop === "string" ? [body.stop] : body.stop ?? [];
  let at = -1;
  for (const s of stops) {
    const k = choice.text.indexOf(s);
    if (k >= 0 && (at < 0 || k < at)) {
      at = k;
      choice.stop = s;
    }
  }
  if (at >= 0) choice.text = choice.text.slice(0, at);
  const max = body.max_completion_tokens ?? body.max_tokens;
  const toks = words(choice.text);
  if (max != null && toks.length > max) {
    choice.text = toks.slice(0, max).join("");
    choice.finish = "length";
    choice.stop = null;
  }
  return choice;
}

function tokenLogprobs(tokens, first, top) {
  return tokens.map((token, k) => {
    const lp = -0.1 * (first + k + 1);
    return {
      token, logprob: lp, bytes: [...Buffer.from(token)],
      top_logprobs: Array.from({ length: top }, (_, j) => ({
        token: j === 0 ? token : `alt${j}`, logprob: lp - j, bytes: [...Buffer.from(j === 0 ? token : `alt${j}`)],
      })),
    };
  });
}

function completionTokens(choices) {
  return choices.reduce((n, c) => n + words(c.text).length +
    (c.calls ? c.calls.reduce((m, t) => m + Math.ceil(t.arguments.length / 4), 0) : 0), 0);
}

const usageOf = (prompt, completion) => ({
  prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion,
});

let serial = 0;

function wholeChat(body, a) {
  const top = body.top_logprobs ?? 0;
  return {
    id: `chatcmpl-scripted-${++serial}`,
    object: "chat.completion",
    created: Math.floor(Date.now() / 1000),
    model: body.model,
    choices: a.choices.map((c, index) => ({
      index,
      message: {
        role: "assistant",
        content: c.calls && !c.text ? null : c.text,
        ...(c.calls ? {
          tool_calls: c.calls.map((t) => ({
            id: t.id, type: "function", function: { name: t.name, arguments: t.arguments },
          })),
        } : {}),
      },
      logprobs: body.logprobs ? { content: tokenLogprobs(words(c.text), 0, top) } : null,
      finish_reason: c.finish,
      stop_reason: c.stop,
    })),
    usage: a.usage,
  };
}

// The chunks of a streamed chat answer (objects), vLLM's order: a role chunk
// per choice, the content or tool call pieces, a finish chunk per choice, the
// usage chunk.
function chatChunks(body, a) {
  const id = `chatcmpl-scripted-${++serial}`;
  const created = Math.floor(Date.now() / 1000);
  const top = body.top_logprobs ?? 0;
  const chunk = (choices, extra = {}) => ({
    id, object: "chat.completion.chunk", created, model: body.model, choices, ...extra,
  });
  const out = [];
  a.choices.forEach((c, index) => {
    out.push(chunk([{ index, delta: { role: "assistant", content: "" }, logprobs: null,
      finish_reason: null }]));
  });
  a.choices.forEach((c, index) => {
    words(c.text).forEach((token, k) => {
      out.push(chunk([{ index, delta: { content: token },
        logprobs: body.logprobs ? { content: tokenLogprobs([token], k, top) } : null,
        finish_reason: null }]));
    });
    if (c.calls) {
      c.calls.forEach((t, ti) => {
        out.push(chunk([{ index, delta: { tool_calls: [{ index: ti, id: t.id, type: "function",
          function: { name: t.name, arguments: a.oneChunk ? t.arguments : "" } }] },
        logprobs: null, finish_reason: null }]));
        if (a.oneChunk) return;
        for (let k = 0; k < t.arguments.length; k += ARG_PIECE) {
          out.push(chunk([{ index, delta: { tool_calls: [{ index: ti,
            function: { arguments: t.arguments.slice(k, k + ARG_PIECE) } }] },
          logprobs: null, finish_reason: null }]));
        }
      });
    }
  });
  a.choices.forEach((c, index) => {
    out.push(chunk([{ index, delta: {}, logprobs: null, finish_reason: c.finish,
      stop_reason: c.stop }]));
  });
  if (body.stream_options?.include_usage) {
    out.push(chunk([], { usage: a.usage }));
  }
  return out;
}

function completionAnswer(body) {
  const prompt = words(Array.isArray(body.prompt) ? body.prompt.join(" ") : body.prompt).length;
  const choices = [];
  for (let i = 0; i < (body.n ?? 1); i++) {
    choices.push(cut({ text: i > 0 ? `(choice ${i}) ${TEXT}` : TEXT, calls: null }, body));
  }
  return { choices, usage: usageOf(prompt, completionTokens(choices)) };
}

function completionChunks(body, a) {
  const id = `cmpl-scripted-${++serial}`;
  const created = Math.floor(Date.now() / 1000);
  const chunk = (choices, extra = {}) => ({
    id, object: "text_completion", created, model: body.model, choices, ...extra,
  });
  const out = [];
  a.choices.forEach((c, index) => {
    for (const token of words(c.text)) {
      out.push(chunk([{ index, text: token, logprobs: null, finish_reason: null }]));
    }
    out.push(chunk([{ index, text: "", logprobs: null, finish_reason: c.finish,
      stop_reason: c.stop }]));
  });
  if (body.stream_options?.include_usage) {
    out.push(chunk([], { usage: a.usage }));
  }
  return out;
}

function wholeCompletion(body, a) {
  return {
    id: `cmpl-scripted-${++serial}`, object: "text_completion",
    created: Math.floor(Date.now() / 1000), model: body.model,
    choices: a.choices.map((c, index) => ({
      index, text: c.text, logprobs: null, finish_reason: c.finish, stop_reason: c.stop,
    })),
    usage: a.usage,
  };
}

// EMBED_DIMS numbers for a text, in [-1, 1), from its bytes.
export function embedding(text) {
  const v = new Array(EMBED_DIMS).fill(0);
  Buffer.from(String(text)).forEach((b, i) => {
    v[i % EMBED_DIMS] += b / 255;
  });
  return v.map((x) => (x % 2) - 1);
}

function embeddings(body) {
  const inputs = Array.isArray(body.input) ? body.input : [body.input];
  const b64 = body.encoding_format === "base64";
  return {
    object: "list", model: body.model,
    data: inputs.map((t, index) => {
      const v = embedding(t);
      return {
        object: "embedding", index,
        embedding: b64 ? Buffer.from(new Float32Array(v).buffer).toString("base64") : v,
      };
    }),
    usage: { prompt_tokens: inputs.reduce((n, t) => n + words(String(t)).length, 0),
      total_tokens: inputs.reduce((n, t) => n + words(String(t)).length, 0) },
  };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const midwayError = { message: MIDWAY_ERROR, type: "internal_error", code: 500 };

// Writes each event on its own, GAP_MS apart, then data: [DONE]; with fail,
// the first three events and then vLLM's error event instead.
async function sendStream(res, chunks, fail = false, ascii = false) {
  res.socket?.setNoDelay(true);
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  for (const c of fail ? chunks.slice(0, 3) : chunks) {
    res.write(`data: ${ascii ? asciiJSON(c) : JSON.stringify(c)}\n\n`);
    await sleep(GAP_MS);
  }
  if (fail) res.end(`data: ${JSON.stringify({ error: midwayError })}\n\n`);
  else res.end("data: [DONE]\n\n");
}

// JSON with \u escapes for every UTF-16 unit beyond ASCII.
const asciiJSON = (obj) => JSON.stringify(obj).replace(/[\u0080-\uffff]/g,
  (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`);

function sendJSON(res, status, obj, ascii = false) {
  const text = ascii ? asciiJSON(obj) : JSON.stringify(obj);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

// Starts the backend on 127.0.0.1:port; resolves when it listens. Returns
// { port, requests, close() }: requests holds every request as
// {method, path, headers, body, usage (the usage answered, or null)}.
export function startBackend(port) {
  const requests = [];
  const server = http.createServer((req, res) => {
    const parts = [];
    req.on("data", (d) => parts.push(d));
    req.on("end", async () => {
      let body = {};
      const raw = Buffer.concat(parts).toString();
      if (raw) {
        try {
          body = JSON.parse(raw);
        } catch {
          return sendJSON(res, 400, { error: { message: "bad JSON", type: "invalid_request_error" } });
        }
      }
      const path = req.url.split("?")[0];
      const rec = { method: req.method, path, headers: req.headers, body, usage: null };
      requests.push(rec);
      try {
        if (req.method === "GET" && path === "/v1/models") {
          return sendJSON(res, 200, { object: "list", data: [{ id: "scripted", object: "model", owned_by: "sdk-tests" }] });
        }
        if (req.method === "POST" && path === "/v1/chat/completions") {
          const a = chatAnswer(body);
          rec.usage = a.usage;
          if (body.stream) return await sendStream(res, chatChunks(body, a), a.fail, a.ascii);
          if (a.fail) return sendJSON(res, 500, { error: midwayError });
          return sendJSON(res, 200, wholeChat(body, a), a.ascii);
        }
        if (req.method === "POST" && path === "/v1/completions") {
          const a = completionAnswer(body);
          rec.usage = a.usage;
          if (body.stream) return await sendStream(res, completionChunks(body, a));
          return sendJSON(res, 200, wholeCompletion(body, a));
        }
        if (req.method === "POST" && path === "/v1/embeddings") {
          const e = embeddings(body);
          rec.usage = e.usage;
          return sendJSON(res, 200, e);
        }
        return sendJSON(res, 404, { error: { message: `no route ${req.method} ${path}`, type: "not_found" } });
      } catch (e) {
        if (!res.headersSent) sendJSON(res, 500, { error: { message: String(e), type: "server_error" } });
        else res.destroy();
      }
    });
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: "127.0.0.1", port, exclusive: true }, () => resolve({
      port, requests,
      close: () => new Promise((r) => {
        server.closeAllConnections?.();
        server.close(() => r());
      }),
    }));
  });
}
