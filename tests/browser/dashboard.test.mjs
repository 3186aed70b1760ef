// The dashboard in a real browser: Debian's chromium driven by
// playwright-core loads the admin listener's page of a switchyard in front
// of two sy-sim replicas while sy-load sends traffic with an API key, and
// checks what a person sees: the token prompt, the route, model, team and
// key listed, the request rate above zero, a chart's points increasing, an
// endpoint shown as ejected once sy-sim makes it fail, a reload adding a
// route, the lab's reports, and the page reconnecting after the gateway
// restarts. A screenshot (after the reload) goes to
// $SY_BUILDDIR/tests/browser-artifacts/dashboard.png.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";

const BUILDDIR = path.resolve(process.env.SY_BUILDDIR || "../../_build");
const CHROMIUM = process.env.SY_CHROMIUM || "/usr/bin/chromium";
const ARTIFACTS = path.join(BUILDDIR, "tests", "browser-artifacts");
const TOKEN = "dash-admin-token-0123456789";
const API_KEY = "sk-dash-research-0123456789";	// team research
const children = [];
// Every wait on the page is bounded by this (a loaded 2-core machine running
// the ASan build polls once a second, slowly): generous, never a fixed sleep.
const WAIT = 60000;

// ---- processes and ports ---------------------------------------------------

function bindable(port) {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once("error", () => resolve(false));
    s.listen({ host: "127.0.0.1", port, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

// n consecutive free ports below the kernel's ephemeral range.
async function freePorts(n) {
  let lo = 32768;
  try {
    lo = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").split(/\s+/)[0]);
  } catch {}
  for (let i = 0; i < 200; i++) {
    const base = 10000 + Math.floor(Math.random() * (lo - 10000 - n));
    let ok = true;
    for (let j = 0; j < n && ok; j++) ok = await bindable(base + j);
    if (ok) return base;
  }
  throw new Error("no free ports");
}

function start(name, argv, env) {
  const child = spawn(argv[0], argv.slice(1), { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  child.label = name;
  child.output = "";
  const keep = (d) => { if (child.output.length < 1 << 20) child.output += d; };
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  child.exited = new Promise((r) => child.once("exit", r));
  children.push(child);
  return child;
}

async function waitPort(port, child) {
  const deadline = Date.now() + 30000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${child.label} exited:\n${child.output}`);
    const ok = await new Promise((resolve) => {
      const s = net.connect({ host: "127.0.0.1", port }, () => { s.destroy(); resolve(true); });
      s.once("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${child.label}: nothing on ${port}\n${child.output}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function stop(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  const t = setTimeout(() => child.kill("SIGKILL"), 5000);
  await child.exited;
  clearTimeout(t);
}

process.once("exit", () => children.forEach((c) => c.exitCode === null && c.kill("SIGKILL")));

// ---- the fleet -------------------------------------------------------------

let sim, gw, load, browser, page, simPort, gwPort, adminPort, cfgPath, dir;
const pageRequests = [];

function config(extraRoute) {
  const routes = [{ name: "chat", models: ["llama-3-8b"], policy: "round_robin",
    retries: { max: 1 }, ejection: { consecutive_failures: 2, cooldown_ms: 300000 } }];
  if (extraRoute) routes.push({ name: "extra", models: ["qwen2-7b"] });
  return {
    listen: `127.0.0.1:${gwPort}`, workers: 2, access_log: "off",
    admin: `127.0.0.1:${adminPort}`,
    admin_api: { token_env: "SY_DASH_TOKEN", reports_dir: path.join(dir, "reports") },
    backends: [0, 1].map((i) => ({ name: `s${i}`, url: `http://127.0.0.1:${simPort + i}/v1` })),
    routes,
    prices: { "llama-3-8b": { input: 0.5, output: 1.5 } },
    auth: "keys",
    keys: [{ id: "ana", team: "research", hash: "sha256:" + createHash("sha256").update(API_KEY).digest("hex") }],
    teams: { research: {} },
  };
}

async function startGateway() {
  gw = start("switchyard", [path.join(BUILDDIR, "switchyard"), "-c", cfgPath], { SY_DASH_TOKEN: TOKEN });
  await waitPort(gwPort, gw);
  await waitPort(adminPort, gw);
}

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), "sy-dash-"));
  simPort = await freePorts(2);
  gwPort = await freePorts(2);
  adminPort = gwPort + 1;
  cfgPath = path.join(dir, "switchyard.json");
  mkdirSync(path.join(dir, "reports"));
  writeFileSync(path.join(dir, "reports", "lab-run-1.md"), "# Lab run 1\np2c_ewma beat round_robin: p99 41 ms\n");
  writeFileSync(cfgPath, JSON.stringify(config(false)));
  sim = start("sy-sim", [path.join(BUILDDIR, "sy-sim"), "--port", String(simPort), "--replicas", "2",
    "--models", "llama-3-8b,qwen2-7b", "--speed", "0.2", "--quiet"]);
  await waitPort(simPort, sim);
  await waitPort(simPort + 1, sim);
  await startGateway();
  load = start("sy-load", [path.join(BUILDDIR, "sy-load"), "--url", `http://127.0.0.1:${gwPort}/v1`,
    "--rate", "20", "--duration", "900", "--model", "llama-3-8b", "--max-tokens", "8", "--api-key", API_KEY, "--quiet"]);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
  page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.setDefaultTimeout(WAIT);
  page.on("request", (r) => pageRequests.push(r.url()));
});

// What AddressSanitizer, LeakSanitizer and UBSan print (an --enable-asan build).
const SANITIZER_MARKS = ["ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"];

after(async () => {
  if (browser) await browser.close();
  for (const c of children) await stop(c);
  for (const c of children)
    for (const mark of SANITIZER_MARKS)
      if (c.output.includes(mark)) throw new Error(`${c.label} reported a memory error:\n${c.output}`);
});

const text = (sel) => page.locator(sel).first().textContent();
// Waits (at most WAIT) until the number the page shows at selector sel is
// above min; returns that number.
async function above(sel, min) {
  const h = await page.waitForFunction(([sel, min]) => {
    const el = document.querySelector(sel);
    const v = el ? parseFloat(el.textContent.replace(/[^0-9.]/g, "")) : NaN;
    return v > min ? v : false;
  }, [sel, min], { timeout: WAIT });
  return h.jsonValue();
}

// ---- what a person sees ----------------------------------------------------

test("the page asks for the admin token, refuses a wrong one and opens with the right one", async () => {
  const r = await page.goto(`http://127.0.0.1:${adminPort}/`);
  assert.equal(r.status(), 200);
  const size = (await r.body()).length;
  assert.ok(size < 300 * 1024, `page of ${size} bytes`);
  await page.locator("#login").waitFor({ state: "visible" });
  assert.equal(await page.locator("#board").isVisible(), false);
  await page.fill("#token", "not-the-token");
  await page.click("#login button");
  await page.locator("#login-err", { hasText: "That token was refused." }).waitFor();
  await page.fill("#token", TOKEN);
  await page.click("#login button");
  await page.locator("#board").waitFor({ state: "visible" });
  await page.locator("#conn", { hasText: "live" }).waitFor();
});

test("the route and its model are listed and their request rate rises above zero while traffic flows", async () => {
  await page.locator('#routes tr[data-route="chat"]').waitFor();
  // Over the page's first seconds the rate is over one poll's interval: a
  // gateway stalled by a loaded machine may finish twice sy-load's 20 in it.
  const rps = await above('#routes tr[data-route="chat"] td.rps', 5);
  assert.ok(rps < 100, `chat at ${rps} requests/s (sy-load sends 20)`);
  await above("#t-tps", 0);
  await page.locator('#models tr[data-model="llama-3-8b"]').waitFor();
  await above('#models tr[data-model="llama-3-8b"] td.rps', 0);
  assert.match(await text('#routes tr[data-route="chat"] td:nth-child(4)'), /ms$/);
  assert.equal(await text('#endpoints tr[data-endpoint="s0"] td.state'), "ok");
  assert.equal(await text('#endpoints tr[data-endpoint="s1"] td.state'), "ok");
});

test("the team and the key of the traffic show their requests and spend", async () => {
  await above('#tenants tr[data-team="research"] td.requests', 0);
  await above('#tenants tr[data-key="ana"] td.requests', 0);
  assert.match(await text('#tenants tr[data-key="ana"] td:last-child'), /^\$0\.\d/);
});

test("a chart's points increase from one second to the next", async () => {
  const points = () => page.locator("#c-rps").getAttribute("data-points").then(Number);
  const first = await points();
  assert.ok(first > 0, `${first} points`);
  await page.waitForFunction((n) => Number(document.getElementById("c-rps").dataset.points) >= n, first + 2,
    { timeout: WAIT });
});

test("an endpoint that sy-sim makes fail is shown as ejected", async () => {
  const r = await fetch(`http://127.0.0.1:${simPort + 1}/sim/faults`, {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ error_rate: 1.0, error_status: 500 }) });
  assert.equal(r.status, 200);
  await page.locator('#endpoints tr[data-endpoint="s1"] td.state', { hasText: "ejected" }).waitFor();
  assert.equal(await text('#endpoints tr[data-endpoint="s0"] td.state'), "ok");
});

test("a reload that adds a route shows it", async () => {
  writeFileSync(cfgPath, JSON.stringify(config(true)));
  const refused = await fetch(`http://127.0.0.1:${adminPort}/admin/reload`, { method: "POST" });
  assert.equal(refused.status, 401);
  const r = await fetch(`http://127.0.0.1:${adminPort}/admin/reload`,
    { method: "POST", headers: { Authorization: `Bearer ${TOKEN}` } });
  assert.equal(r.status, 200, await r.text());
  await page.locator('#routes tr[data-route="extra"]').waitFor();
  assert.equal(await text("#t-routes"), "2");
});

test("the lab's reports are listed and one opens as text", async () => {
  const link = page.locator('#report-list a[data-report="lab-run-1.md"]');
  await link.waitFor();
  await link.click();
  await page.locator("#report", { hasText: "p2c_ewma beat round_robin: p99 41 ms" }).waitFor();
});

test("a screenshot shows both routes and the ejected endpoint", async () => {
  await page.locator('#routes tr[data-route="extra"]').waitFor();
  await page.locator('#endpoints tr[data-endpoint="s1"] td.state', { hasText: "ejected" }).waitFor();
  await page.locator("#report", { hasText: "p2c_ewma" }).waitFor();
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, "dashboard.png"), fullPage: true });
});

test("the page reconnects after the gateway restarts", async () => {
  await stop(gw);
  await page.locator("#conn", { hasText: "reconnecting" }).waitFor();
  await startGateway();
  await page.locator("#conn", { hasText: "live" }).waitFor();
  await page.locator('#routes tr[data-route="chat"]').waitFor();
  await above("#t-rps", 0);
});

test("the page loads nothing but its own origin", async () => {
  const foreign = pageRequests.filter((u) => !u.startsWith(`http://127.0.0.1:${adminPort}/`));
  assert.deepEqual(foreign, []);
  assert.ok(pageRequests.some((u) => u.endsWith("/admin/stats")));
});
