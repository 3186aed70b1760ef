// The fleet the SDK tests talk to: one sy-sim replica per wire protocol, on
// consecutive ports, backend.mjs's scripted OpenAI-compatible backend (in
// this process), and a switchyard with one backend of each kind and the
// scripted one in front: one route per kind (chat model `m-<kind>`,
// embedding model `e-<kind>`) and one to the scripted backend
// (SCRIPTED_MODEL, SCRIPTED_EMBEDDING).
//
//   const my = useFleet((fleet) => new OpenAI(sdkOptions(fleet, "/v1")));
//   ... my.client, my.fleet.gatewayPort, my.fleet.simPortOf("tgi") ...
//   ... my.fleet.scripted.requests (what the scripted backend was sent) ...
// (or startFleet() and stopFleet() by hand).
//
// The binaries are taken from SY_BUILDDIR (resolved against the current
// directory) or, by default, from ../../_build beside this file.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before } from "node:test";
import { fileURLToPath } from "node:url";
import { startBackend } from "./backend.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
export const BUILDDIR = process.env.SY_BUILDDIR
  ? path.resolve(process.env.SY_BUILDDIR)
  : path.resolve(here, "..", "..", "_build");
// The key switchyard sends to the anthropic backend (from SY_SDK_ANTHROPIC_KEY).
export const ANTHROPIC_KEY = "sk-sdk-test-key";
export const MAX_TOKENS = 8; // sy-sim runs with --output-tokens fixed:8

// One sy-sim replica per kind, on consecutive ports, in this order.
export const KINDS = ["openai", "anthropic", "tgi", "ollama", "kserve"];
export const CHAT_KINDS = ["openai", "anthropic", "tgi", "ollama"];
export const COMPLETION_KINDS = ["openai", "tgi", "ollama"];
export const EMBEDDING_KINDS = ["openai", "ollama", "kserve"];

// The routes' model names for a kind.
export const chatModel = (kind) => `m-${kind}`;
export const embeddingModel = (kind) => `e-${kind}`;
// The scripted backend's chat and embedding models.
export const SCRIPTED_MODEL = "scripted";
export const SCRIPTED_EMBEDDING = "scripted-embed";

const children = [];
let tmpdir;
let scripted;

// ---- processes and ports ------------------------------------------------

function listenOn(port) {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen({ host: "127.0.0.1", port, exclusive: true }, () => resolve(srv));
  });
}

function closeAll(servers) {
  return Promise.all(servers.map((s) => new Promise((r) => s.close(() => r()))));
}

// The kernel's ephemeral port range [lo, hi] (outgoing connections take
// their local port from it).
function ephemeralRange() {
  try {
    const [lo, hi] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8")
      .trim().split(/\s+/).map(Number);
    if (lo > 0 && hi >= lo) return [lo, hi];
  } catch {
    // not Linux: the IANA range
  }
  return [49152, 65535];
}

// n consecutive free ports on 127.0.0.1 (the first one is returned), drawn
// below the ephemeral range as tests/integration/harness.py's free_ports
// does: a port from that range may be given to an outgoing connection (to a
// backend) before the server meant to listen on it starts.
export async function freePorts(n) {
  const [lo, hi] = ephemeralRange();
  const [bottom, top] = lo - n > 12000 ? [10000, lo - n] : [hi + 1, 65535 - n];
  for (let attempt = 0; attempt < 200; attempt++) {
    const base = bottom + Math.floor(Math.random() * (top - bottom));
    const held = [];
    try {
      for (let i = 0; i < n; i++) held.push(await listenOn(base + i));
      return base;
    } catch {
      // taken: try another base
    } finally {
      await closeAll(held);
    }
  }
  throw new Error("no free ports");
}

function start(name, argv, env) {
  const child = spawn(argv[0], argv.slice(1), {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.output = "";
  const keep = (d) => {
    child.output = (child.output + d.toString()).slice(-65536); // the last 64 KiB
  };
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  child.exited = new Promise((resolve) => {
    child.once("exit", (code, sig) => resolve(code ?? sig));
    child.once("error", (e) => {
      // Not started (e.g. ENOENT): there will be no "exit".
      child.failed = e;
      child.output += String(e);
      resolve(null);
    });
  });
  child.label = name;
  children.push(child);
  return child;
}

async function waitPort(port, child, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.failed) throw new Error(`${child.label} did not start: ${child.failed}`);
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${child.label} exited (${child.exitCode ?? child.signalCode}) before ` +
        `listening on ${port}:\n${child.output}`);
    }
    const ok = await new Promise((resolve) => {
      const s = net.connect({ host: "127.0.0.1", port }, () => {
        s.destroy();
        resolve(true);
      });
      s.once("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) {
      throw new Error(`${child.label}: nothing listens on ${port}:\n${child.output}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function stop(child) {
  if (child.failed || child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
  await child.exited;
  clearTimeout(timer);
}

// Last resort if the runner dies between startFleet and stopFleet.
process.once("exit", () => {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  }
});

// ---- the fleet --------------------------------------------------------------

// Starts sy-sim (one replica per kind in KINDS) and switchyard in front of it;
// resolves when both listen. Returns
//   { gatewayPort, simPort, simPortOf(kind), scripted, buildDir }
// where simPort is the first replica's port (KINDS[0]).
export async function startFleet() {
  tmpdir = mkdtempSync(path.join(os.tmpdir(), "sy-sdk-"));
  const simPort = await freePorts(KINDS.length);
  const simPortOf = (kind) => {
    const i = KINDS.indexOf(kind);
    if (i < 0) throw new Error(`no replica for kind ${kind}`);
    return simPort + i;
  };
  const sim = start("sy-sim", [
    path.join(BUILDDIR, "sy-sim"), "--port", String(simPort), "--replicas", String(KINDS.length),
    "--speed", "0", "--output-tokens", `fixed:${MAX_TOKENS}`, "--quiet",
  ]);
  for (const kind of KINDS) await waitPort(simPortOf(kind), sim);

  scripted = await startBackend(await freePorts(1));
  const gatewayPort = await freePorts(1);
  const url = (kind) => {
    const root = `http://127.0.0.1:${simPortOf(kind)}`;
    return kind === "openai" || kind === "anthropic" ? `${root}/v1` : root;
  };
  const backends = KINDS.map((kind) => {
    const b = { name: `sim-${kind}`, url: url(kind), kind };
    if (kind === "anthropic") b.api_key_env = "SY_SDK_ANTHROPIC_KEY";
    return b;
  });
  const routes = KINDS.map((kind) => ({
    name: `r-${kind}`,
    models: [
      ...(CHAT_KINDS.includes(kind) ? [chatModel(kind)] : []),
      ...(EMBEDDING_KINDS.includes(kind) ? [embeddingModel(kind)] : []),
    ],
    backends: [`sim-${kind}`],
    retries: { max: 0 },
  }));
  backends.push({ name: "scripted", url: `http://127.0.0.1:${scripted.port}/v1`, kind: "openai" });
  routes.push({ name: "r-scripted", models: [SCRIPTED_MODEL, SCRIPTED_EMBEDDING],
    backends: ["scripted"], retries: { max: 0 } });
  const config = {
    listen: `127.0.0.1:${gatewayPort}`,
    admin: null,
    workers: 2,
    access_log: "off",
    timeouts: { drain_ms: 0 },
    backends,
    routes,
  };
  const cfgPath = path.join(tmpdir, "switchyard.json");
  writeFileSync(cfgPath, JSON.stringify(config, null, 1));
  const gw = start("switchyard", [path.join(BUILDDIR, "switchyard"), "-c", cfgPath],
    { SY_SDK_ANTHROPIC_KEY: ANTHROPIC_KEY });
  await waitPort(gatewayPort, gw);

  return { gatewayPort, simPort, simPortOf, scripted, buildDir: BUILDDIR };
}

// The options of an official SDK's client (OpenAI's, Anthropic's) for the
// fleet's switchyard: base URL the gateway plus path ("/v1" for OpenAI's,
// "" for Anthropic's, which appends /v1/messages), no retries, 10 s.
export function sdkOptions(fleet, path) {
  return { baseURL: `http://127.0.0.1:${fleet.gatewayPort}${path}`, apiKey: "test",
    maxRetries: 0, timeout: 10000 };
}

// A test file's fleet: registers node:test's before (startFleet, then
// makeClient(fleet)) and after (stopFleet). Returns { fleet, client }, both
// set once before has run.
export function useFleet(makeClient = () => null) {
  const my = {};
  before(async () => {
    my.fleet = await startFleet();
    my.client = makeClient(my.fleet);
  });
  after(stopFleet);
  return my;
}

// What a sanitizer (ASan, UBSan, LSan) prints of a fault.
const SANITIZER_REPORT = /ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:/;

// Stops every child startFleet started and removes its temporary directory;
// throws (failing the test file) when a child printed a sanitizer report.
export async function stopFleet() {
  await Promise.all(children.map(stop));
  const reports = children.filter((c) => SANITIZER_REPORT.test(c.output));
  children.length = 0;
  if (scripted) await scripted.close();
  scripted = undefined;
  if (tmpdir) rmSync(tmpdir, { recursive: true, force: true });
  tmpdir = undefined;
  if (reports.length) {
    throw new Error(reports.map((c) => `${c.label} printed a sanitizer report:\n${c.output}`).join("\n"));
  }
}
