// `npm run bench`: Outpost's benchmarks on a production-like local runtime.
//
// Builds the Worker like a deploy (`wrangler deploy --dry-run`), runs the bundle on workerd
// through miniflare's programmatic API (no `wrangler dev` proxy) with the bindings of
// wrangler.toml, and loads it from separate child processes over loopback. Prints one table and
// writes it as markdown to .bench/results.md.
//
// Knobs (environment): BENCH_DURATION seconds per HTTP scenario (default 8), BENCH_WARMUP
// seconds (default 1), BENCH_CONNECTIONS (default 10), BENCH_ONLY=comma,separated,scenario,ids,
// BENCH_TUS_MIB (default 50), BENCH_TUS_CHUNK_MIB (default 5), BENCH_CHAT_SOCKETS (default 100,1000),
// BENCH_LARGE_USERS / _RECORDS / _ROOMS / _POSTS (default 100,000 / 1,000,000 / 10,000 / 100,000: the large-database rows),
// BENCH_LIVE_SUBSCRIBERS / _RECORDS / _WINDOW (default 1,000 / 300 / 1: the live-data rows),
// BENCH_THUMB_FILES (default 24: distinct images for the first-request thumbnail row),
// BENCH_COLD_RUNS (default 3: fresh runtimes per cold-start row), BENCH_PAIR_ROUNDS / BENCH_PAIR_DURATION
// (default 12 slices over 24 s per side of a row with a reference), BENCH_CHAT_ROUNDS (default 5 runs
// of the room per size), BENCH_PIN=0 (no CPU pinning).
// Scenario ids for BENCH_ONLY:
// health, inruntime, get, list, count, comments, expand, search, teamlist, rooms, login, create, teamcreate, refresh, download, tus, cold, chat, large, thumb, live (a
// reference row runs with its route's id).
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import zlib, { gzipSync } from "node:zlib";
import {
  applyMigrations,
  BENCH_RATE_LIMIT,
  benchDir,
  buildWorker,
  readWranglerConfig,
  root,
  sampleRss,
  startBareReference,
  startHelloWorld,
  startOutpost,
} from "./runtime.mjs";

const env = process.env;
const DURATION = Number(env.BENCH_DURATION ?? 8);
const WARMUP = Number(env.BENCH_WARMUP ?? 1);
const CONNECTIONS = Number(env.BENCH_CONNECTIONS ?? 10);
const ONLY = env.BENCH_ONLY ? new Set(env.BENCH_ONLY.split(",").map((s) => s.trim())) : null;
const TUS_MIB = Number(env.BENCH_TUS_MIB ?? 50);
const TUS_CHUNK_MIB = Number(env.BENCH_TUS_CHUNK_MIB ?? 5);
const CHAT_SOCKETS = (env.BENCH_CHAT_SOCKETS ?? "100,1000").split(",").map(Number);
/** Runs of each chat room, each between two runs of its reference (the rows show the means). */
const CHAT_ROUNDS = Number(env.BENCH_CHAT_ROUNDS ?? 5);
const here = import.meta.dirname;
const wanted = (id) => !ONLY || ONLY.has(id) || [...ONLY].some((o) => id.startsWith(o));

// --- child processes ---------------------------------------------------------------------------

/**
 * Pinning (default; `BENCH_PIN=0` turns it off): the runtimes (workerd, started by this process)
 * run on CPU 1 and the load children on CPU 0, so the load and the server do not take turns on the
 * same core (less noise on a 2-core machine). Needs `taskset` (util-linux); without it, no pinning.
 */
const PIN =
  env.BENCH_PIN !== "0" &&
  os.cpus().length >= 2 &&
  spawnSync("taskset", ["-cp", "1", String(process.pid)], { stdio: "ignore" }).status === 0;

/** A Node process that makes load (on CPU 0 when pinned). */
const loadProcess = (argv, stdio) =>
  PIN ? spawn("taskset", ["-c", "0", process.execPath, ...argv], { stdio }) : spawn(process.execPath, argv, { stdio });

/** Runs a bench child script with Node and returns its last stdout line as JSON. */
function child(script, args, { timeoutMs = 600_000 } = {}) {
  return new Promise((resolve, reject) => {
    const p = loadProcess([path.join(here, script), ...args], ["ignore", "pipe", "pipe"]);
    let out = "";
    let err = "";
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (err += d));
    const t = setTimeout(() => p.kill("SIGKILL"), timeoutMs);
    p.on("close", (code) => {
      clearTimeout(t);
      const line = out.trim().split("\n").pop();
      try {
        resolve(JSON.parse(line));
      } catch {
        reject(new Error(`${script} exited ${code}: ${(err || out).trim().slice(-800)}`));
      }
    });
  });
}

/** Starts the ws baseline server in its own process; resolves with its port and a stop(). */
function startBaseline() {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [path.join(here, "ws-broadcast-server.mjs")], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    p.stdout.once("data", (d) => resolve({ port: Number(String(d).trim()), stop: () => p.kill("SIGTERM") }));
    p.once("error", reject);
  });
}

const loadHttp = (scenario) =>
  child("load-http.mjs", [
    JSON.stringify({ connections: CONNECTIONS, duration: DURATION, warmup: WARMUP, ...scenario }),
  ]);

// --- setup calls (not measured) ---------------------------------------------------------------

let base = "";
let ipN = 0;
async function call(method, p, { token, body, raw, headers = {} } = {}) {
  const h = { "cf-connecting-ip": `198.51.100.${(ipN++ % 250) + 1}`, ...headers };
  if (token) h.authorization = `Bearer ${token}`;
  if (body !== undefined) h["content-type"] = "application/json";
  const res = await fetch(`${base}${p}`, { method, headers: h, body: body !== undefined ? JSON.stringify(body) : raw });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, json, text, headers: res.headers };
}

class Skip extends Error {}
/** A route that is not served yet (404 `not_found` "No route for …") skips the scenario. */
function need(res, expected, what) {
  if (res.status === 404 && /No route for/.test(res.json?.detail ?? "")) throw new Skip(`${what} not served yet (404)`);
  if (res.status !== expected)
    throw new Error(`${what}: expected ${expected}, got ${res.status} ${res.text.slice(0, 300)}`);
  return res.json;
}

async function pool(n, concurrency, fn) {
  const out = new Array(n);
  let i = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, n) }, async () => {
      while (i < n) {
        const k = i++;
        out[k] = await fn(k);
      }
    }),
  );
  return out;
}

// --- table ------------------------------------------------------------------------------------

const rows = [];
const fmt = (n, d = 0) =>
  n === null || n === undefined || Number.isNaN(n)
    ? "—"
    : Number(n).toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });
/** 1-minute load average when each row was recorded: on a shared machine, a sign of outside noise. */
const loads = [];
const loadNow = (l) => l.map((x) => x.toFixed(2)).join(" / ");
function addRow(r) {
  rows.push(r);
  loads.push(os.loadavg()[0]);
  console.error(`  ${r.scenario}: ${r.throughput ?? ""} ${r.notes ?? ""}`);
}
function httpNotes(res, extra = []) {
  const notes = [...extra];
  const bad = res.non2xx + res.errors + res.timeouts;
  if (bad)
    notes.push(
      `${fmt(bad)} of ${fmt(res.requests)} failed ` +
        `(${JSON.stringify(res.statusCodes)}, errors ${res.errors}, timeouts ${res.timeouts})`,
    );
  return notes.join("; ");
}

// --- scenarios ----------------------------------------------------------------------------------

let ceiling = null;
const ratio = (rps) => (ceiling ? `${(rps / ceiling).toFixed(2)}×` : "—");

/** req/s of each HTTP scenario on the small database, for the large-database rows to compare with. */
const smallRps = new Map();

/**
 * The hello-world Worker doing exactly a route's D1 work (same statements, same round trips), by
 * scenario id: { label, sc (a load-http scenario on the hello-world runtime), note }. Outpost's
 * req/s ÷ its reference's is the share that survives Outpost's own per-request work (routing,
 * middleware, JWT, validation, serialization).
 */
const references = new Map();
let helloUrl = "";
/** The hello-world runtime, up for the whole run (stopped after main). */
let helloRuntime = null;
/**
 * Paired runs alternate reference and Outpost in this many slices of DURATION/ROUNDS s each, so a change in
 * outside load hits both.
 */
const PAIR_ROUNDS = Number(env.BENCH_PAIR_ROUNDS ?? 12);
/** Seconds of load per side of a paired row (BENCH_PAIR_DURATION; 12 slices of 2 s by default). */
const PAIR_DURATION = Number(env.BENCH_PAIR_DURATION ?? 24);

/** Several load-http results as one: requests over total time; p50 the mean of the slices', p99 the highest. */
function combine(results) {
  const sum = (k) => results.reduce((n, r) => n + r[k], 0);
  const statusCodes = {};
  for (const r of results)
    for (const [k, v] of Object.entries(r.statusCodes)) statusCodes[k] = (statusCodes[k] ?? 0) + v;
  return {
    requests: sum("requests"),
    reqPerSec: sum("requests") / sum("duration"),
    bytesPerSec: sum("bytesPerSec") / results.length,
    p50: sum("p50") / results.length,
    p99: Math.max(...results.map((r) => r.p99)),
    errors: sum("errors"),
    timeouts: sum("timeouts"),
    non2xx: sum("non2xx"),
    statusCodes,
    duration: sum("duration"),
  };
}

/**
 * `first` and `second` (load-http scenarios with their full `url`) in PAIR_ROUNDS alternating
 * slices, the first slice of each warmed up; their combined results.
 */
async function alternate(first, second) {
  const slice = Math.max(1, Math.round(PAIR_DURATION / PAIR_ROUNDS));
  const runs = [[], []];
  for (let k = 0; k < PAIR_ROUNDS; k++) {
    const warmup = k === 0 ? WARMUP : 0;
    runs[0].push(await loadHttp({ ...first, duration: slice, warmup }));
    runs[1].push(await loadHttp({ ...second, duration: slice, warmup }));
  }
  return runs.map(combine);
}

/** A row of an HTTP result. */
function httpRow(scenario, res, { vsRef, notes = [] } = {}) {
  addRow({
    scenario,
    throughput: `${fmt(res.reqPerSec)} req/s`,
    p50: res.p50,
    p99: res.p99,
    ratio: ratio(res.reqPerSec),
    vsRef,
    notes: httpNotes(res, notes),
  });
}

/**
 * In Outpost's own runtime: GET /v1/health and GET record, each against a bare handler doing the
 * route's D1 work (a session, the same statement, a JSON answer with the bookmark) inside the same
 * isolate, with the same bindings and D1 (scripts/bench/in-runtime-entry.ts), in alternating
 * slices. The ratio is the route's own work alone (routing, middleware, auth, validation, JSON
 * shaping, headers); what the `vs ref` rows add to it is what the runtime around Outpost costs.
 */
async function inRuntimeScenarios(config) {
  const rt = await startOutpost(buildWorker({ inRuntime: true }), config);
  const outer = base;
  base = rt.url;
  try {
    const email = `in-runtime.${Date.now()}@example.com`;
    const password = "bench password 123";
    const signup = need(await call("POST", "/v1/auth/signup", { body: { email, password } }), 201, "signup");
    const token = signup.session.accessToken;
    const body = { title: "bench record", body: "x".repeat(200), tags: ["a", "b"] };
    const rec = need(await call("POST", "/v1/collections/notes/records", { token, body }), 201, "create");
    const pairs = [
      ["GET /v1/health", { path: "/v1/health" }, { path: "/bench/d1" }],
      [
        "GET record",
        { path: `/v1/collections/notes/records/${rec.id}`, headers: { authorization: `Bearer ${token}` } },
        { path: `/bench/get?id=${rec.id}&owner=${signup.user.id}` },
      ],
    ];
    for (const [label, route, bareRoute] of pairs) {
      const [b, r] = await alternate(
        { ...bareRoute, url: `${rt.url}${bareRoute.path}` },
        { ...route, url: `${rt.url}${route.path}` },
      );
      httpRow(`in Outpost's runtime: ${label}`, r, {
        vsRef: `${(r.reqPerSec / b.reqPerSec).toFixed(2)}× bare`,
        notes: [
          `a bare handler doing its D1 work in the same isolate ran ${fmt(b.reqPerSec)} req/s ` +
            `(${PAIR_ROUNDS} slices alternating); the route's own work alone`,
        ],
      });
    }
  } catch (e) {
    addRow({ scenario: "in Outpost's runtime", throughput: "failed", notes: `failed: ${e.message}` });
  } finally {
    base = outer;
    await rt.dispose();
  }
}

async function httpScenario(id, label, setup) {
  if (!wanted(id)) return;
  try {
    const sc = await setup();
    const ref = references.get(id);
    if (ref && helloUrl) {
      // Alternate reference and Outpost slices.
      const [r, res] = await alternate(
        { ...ref.sc, url: `${helloUrl}${ref.sc.path}` },
        { ...sc, url: `${base}${sc.path}` },
      );
      httpRow(ref.label, r, { vsRef: "1.00× ref", notes: [ref.note] });
      smallRps.set(id, res.reqPerSec);
      smallRps.set(`${id}-ref`, r.reqPerSec);
      httpRow(label, res, {
        vsRef: `${(res.reqPerSec / r.reqPerSec).toFixed(2)}× ref`,
        notes: [...(sc.notes ? [sc.notes(res)] : []), `${PAIR_ROUNDS} slices alternating with its reference`],
      });
      return;
    }
    const res = await loadHttp({ ...sc, url: `${base}${sc.path}` });
    smallRps.set(id, res.reqPerSec);
    httpRow(label, res, { notes: sc.notes ? [sc.notes(res)] : [] });
  } catch (e) {
    if (e instanceof Skip) addRow({ scenario: label, throughput: "skipped", notes: `skipped: ${e.message}` });
    else addRow({ scenario: label, throughput: "failed", notes: `failed: ${e.message}` });
  }
}

async function main() {
  mkdirSync(benchDir, { recursive: true });
  console.error("building the Worker (wrangler deploy --dry-run)…");
  const script = buildWorker();
  const config = await readWranglerConfig();
  const started = new Date();
  const startLoad = os.loadavg();
  console.error(`machine load ${loadNow(startLoad)} (1 / 5 / 15 min), ${os.cpus().length} cores`);

  // 1. Ceiling: a bare hello-world Worker on the same runtime (always run: the ratios need it).
  // It stays up: its reference routes (the same Worker doing exactly the D1 work of a route) run
  // in slices alternating with the Outpost rows they are the reference of.
  const hello = await startHelloWorld(config.compatibility_date);
  helloRuntime = hello;
  {
    const res = await loadHttp({ url: `${hello.url}/` });
    ceiling = res.reqPerSec;
    httpRow("ceiling: hello-world Worker", res, { notes: ["same workerd, same load"] });
    helloUrl = hello.url;
    const reference = (id, label, sc, note) => references.set(id, { label, sc, note });
    reference(
      "health",
      "reference: hello-world + one D1 query",
      { path: "/d1" },
      "`SELECT 1`: the local D1 simulation's own cost; reference for GET /v1/health",
    );
    if (["get", "list", "teamlist", "create"].some(wanted)) {
      // Outpost's schema and the same data shape as the Outpost rows below.
      const db = await applyMigrations(hello.mf, config);
      const owner = "ref-user";
      const now = new Date().toISOString();
      await db
        .prepare(
          "INSERT INTO users (id, email, email_verified, anonymous, created_at, updated_at) " +
            "VALUES (?, 'ref@example.com', 0, 0, ?, ?)",
        )
        .bind(owner, now, now)
        .run();
      const note = (id, title, pinned, body = "") =>
        db
          .prepare(
            "INSERT INTO app_notes (id, owner_id, created_at, updated_at, version, title, body, pinned, tags) " +
              "VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?)",
          )
          .bind(id, owner, now, now, title, body, pinned ? 1 : 0, pinned ? "[]" : '["a","b"]');
      await db.batch([
        note("ref-note", "bench record", false, "x".repeat(200)),
        ...Array.from({ length: 40 }, (_, i) => note(`ref-seed-${i}`, `seed ${i}`, i % 2 === 0)),
      ]);
      reference(
        "get",
        "reference: hello-world + GET record's query",
        { path: `/get?id=ref-note&owner=${owner}` },
        "the same SELECT by id and owner, JSON answer",
      );
      reference(
        "list",
        "reference: hello-world + list's query",
        { path: `/list?owner=${owner}` },
        "the same SELECT (owner, pinned, order, limit 21), JSON answer",
      );
      // A team of the reference user's with 40 items, as the Outpost row below seeds it.
      await db.batch([
        db
          .prepare("INSERT INTO teams (id, name, created_at, updated_at) VALUES ('ref-team', 'Bench', ?, ?)")
          .bind(now, now),
        db
          .prepare("INSERT INTO team_members (team_id, user_id, role, joined_at) VALUES ('ref-team', ?, 'owner', ?)")
          .bind(owner, now),
        ...Array.from({ length: 40 }, (_, i) =>
          db
            .prepare(
              "INSERT INTO app_items (id, owner_id, created_at, updated_at, version, team_id, list_id, text, done) " +
                "VALUES (?, ?, ?, ?, 1, 'ref-team', 'ref-list', ?, 0)",
            )
            .bind(`ref-item-${i}`, owner, now, now, `item ${i}`),
        ),
      ]);
      reference(
        "teamlist",
        "reference: hello-world + team list's query",
        { path: `/teamlist?user=${owner}&team=ref-team` },
        "the same SELECT (the caller's teams, one team, order, limit 21), JSON answer",
      );
      const body = { title: "bench create", body: "y".repeat(200), pinned: false, tags: ["bench"] };
      reference(
        "create",
        "reference: hello-world + create's batch",
        { path: `/create?owner=${owner}`, method: "POST", headers: { "content-type": "application/json" }, body },
        "the same 2-insert batch, JSON body in and out",
      );
    }
  }

  // Cold start: fresh runtimes, and the startup CPU profile of the bundle.
  if (wanted("cold")) await coldStart(script, config);

  // 2. Outpost.
  const rt = await startOutpost(script, config);
  base = rt.url;
  try {
    const password = "bench password 123";
    const email = `bench.${Date.now()}@example.com`;
    const signup = need(await call("POST", "/v1/auth/signup", { body: { email, password } }), 201, "signup");
    const token = signup.session.accessToken;
    const auth = { authorization: `Bearer ${token}` };

    await httpScenario("health", "GET /v1/health", async () => ({
      path: "/v1/health",
      notes: () => "one D1 `SELECT 1`",
    }));
    if (wanted("health") && helloUrl) {
      // What the D1 Sessions API (bookmarks) costs by itself: the reference rows use a session per
      // request, as API.md's read-replica bookmarks make a Worker serving the contract do.
      const withSession = smallRps.get("health-ref");
      const plain = await loadHttp({ url: `${helloUrl}/d1-plain` });
      httpRow("context: hello-world + one D1 query without a session", plain, {
        notes: [
          withSession
            ? `the session reference above runs ${(withSession / plain.reqPerSec).toFixed(2)}× this: the D1 Sessions API's own cost`
            : "env.DB without withSession",
        ],
      });
    }

    if (wanted("inruntime")) await inRuntimeScenarios(config);

    const guests = await pool(
      ROOMS_PER_USER,
      4,
      async () => need(await call("POST", "/v1/auth/anonymous", { body: {} }), 201, "anonymous sign-up").user.id,
    );
    await hotPathScenarios("", { token, email, password, auth, peers: guests });

    await httpScenario("create", "create record", async () => {
      const body = { title: "bench create", body: "y".repeat(200), pinned: false, tags: ["bench"] };
      need(
        await call("POST", "/v1/collections/notes/records", { token, body }),
        201,
        "POST /v1/collections/notes/records",
      );
      return {
        path: "/v1/collections/notes/records",
        method: "POST",
        headers: { ...auth, "content-type": "application/json" },
        body,
        notes: () => "a new row per request",
      };
    });

    // A write to a team nobody subscribes to: the membership check rides in the insert, the
    // notification goes to that team's hub (which has nothing to do), as an owner record's does.
    await httpScenario("teamcreate", "create team record", async () => {
      const team = need(await call("POST", "/v1/teams", { token, body: { name: "Writes" } }), 201, "POST /v1/teams");
      const list = need(
        await call("POST", "/v1/collections/lists/records", { token, body: { teamId: team.id, title: "Bench" } }),
        201,
        "POST list",
      );
      const body = { teamId: team.id, listId: list.id, text: "y".repeat(200) };
      need(await call("POST", "/v1/collections/items/records", { token, body }), 201, "POST item");
      return {
        path: "/v1/collections/items/records",
        method: "POST",
        headers: { ...auth, "content-type": "application/json" },
        body,
        notes: (r) =>
          smallRps.has("create")
            ? `${(r.reqPerSec / smallRps.get("create")).toFixed(2)}× the owner record's create in this run`
            : "a new row per request",
      };
    });

    await httpScenario("refresh", "refresh", async () => {
      const tokens = await pool(
        CONNECTIONS * 2,
        4,
        async () =>
          need(await call("POST", "/v1/auth/login", { body: { email, password } }), 200, "login").session.refreshToken,
      );
      return {
        path: "/v1/auth/refresh",
        method: "POST",
        headers: { "content-type": "application/json" },
        refreshTokens: tokens,
        notes: () => "rotation: lookup + swap batch; each answer's new token is used next",
      };
    });

    await httpScenario("download", "1 MiB file download", async () => {
      const bytes = new Uint8Array(1 << 20);
      for (let i = 0; i < bytes.length; i += 65536) crypto.getRandomValues(bytes.subarray(i, i + 65536));
      const file = need(
        await call("POST", "/v1/files?name=bench.bin&visibility=private", {
          token,
          raw: bytes,
          headers: { "content-type": "application/octet-stream" },
        }),
        201,
        "POST /v1/files",
      );
      const got = await fetch(`${base}/v1/files/${file.id}/content`, { headers: auth });
      const len = (await got.arrayBuffer()).byteLength;
      if (got.status !== 200 || len !== bytes.length) throw new Error(`GET content: ${got.status}, ${len} bytes`);
      return {
        path: `/v1/files/${file.id}/content`,
        headers: auth,
        notes: (r) => `${fmt(r.bytesPerSec / 2 ** 20)} MiB/s; private, owner's token`,
      };
    });

    if (wanted("thumb")) await thumbScenarios(token);
    // The upload runs on its own fresh runtime (this one stays up, idle) for a clean memory figure.
    if (wanted("tus")) await tusScenario(script, config);
    // The platform's own limits for the socket rows: bare Durable Objects on a runtime of their own.
    const bare = wanted("chat") || wanted("live") ? await startBareReference(config.compatibility_date) : null;
    try {
      if (wanted("chat")) await chatScenarios(token, await rt.mf.getD1Database("DB"), bare);
      if (wanted("live")) await liveScenario(token, bare);
    } finally {
      await bare?.mf.dispose();
    }
    if (wanted("large")) await largeScenarios(script, config);
  } finally {
    await rt.dispose();
  }

  // Output.
  const header = ["scenario", "throughput", "p50 ms", "p99 ms", "ratio", "vs ref", "notes"];
  const body = rows.map((r) => [
    r.scenario,
    r.throughput ?? "",
    r.p50 === undefined ? "" : fmt(r.p50, 1),
    r.p99 === undefined ? "" : fmt(r.p99, 1),
    r.ratio ?? "",
    r.vsRef ?? "",
    r.notes ?? "",
  ]);
  const md = [header, header.map(() => "---"), ...body].map((cells) => `| ${cells.join(" | ")} |`).join("\n");
  const widths = header.map((_, i) => Math.max(...[header, ...body].map((c) => String(c[i]).length)));
  const plain = [header, ...body].map((c) => c.map((x, i) => String(x).padEnd(widths[i])).join("  ")).join("\n");
  const workerd = JSON.parse(readFileSync(path.join(root, "node_modules", "workerd", "package.json"), "utf8")).version;
  const cpus = os.cpus();
  const machine =
    `${cpus[0]?.model ?? "unknown CPU"}, ${cpus.length} cores, ${fmt(os.totalmem() / 2 ** 30)} GiB RAM, ` +
    `${os.type()} ${os.release()}; Node ${process.version}, workerd ${workerd}`;
  const loadRange = loads.length ? `${Math.min(...loads).toFixed(2)}–${Math.max(...loads).toFixed(2)}` : "n/a";
  const settings =
    `${DURATION} s per HTTP scenario after ${WARMUP} s warm-up (${PAIR_ROUNDS} slices over ${PAIR_DURATION} s per side ` +
    `for a row with a reference), ${CONNECTIONS} connections, ` +
    `${PIN ? "runtimes pinned to CPU 1 and load to CPU 0, " : "no CPU pinning, "}` +
    `rate limits raised to ${BENCH_RATE_LIMIT.toExponential()} per period; ` +
    `1-min load average ${loadRange} during the run, ${loadNow(startLoad)} at the start and ` +
    `${loadNow(os.loadavg())} at the end (1 / 5 / 15 min; ${cpus.length} cores)`;
  const stamp = `${started.toISOString().replace(/\.\d+Z$/, "Z")}`;
  console.log(
    `\n${plain}\n\n` +
      "ratio: req/s ÷ the hello-world ceiling (chat: msgs/s ÷ the bare Durable Object + SQLite with the same " +
      "sockets); vs ref: req/s ÷ the hello-world Worker running the same D1 statements (chat and live: ÷ the " +
      "bare Durable Object reference)\n" +
      `run ${stamp} on ${machine}\n${settings}`,
  );
  // A partial run (BENCH_ONLY) does not overwrite the last full table.
  const outFile = path.join(benchDir, ONLY ? "results-partial.md" : "results.md");
  writeFileSync(
    outFile,
    `${md}\n\n` +
      "Ratio: req/s ÷ the hello-world ceiling " +
      "(chat rows: msgs/s ÷ the bare Durable Object + SQLite insert with the same sockets). " +
      "vs ref: req/s ÷ the hello-world Worker running the same D1 statements as the route " +
      "(chat and live data: ÷ the bare Durable Object reference in the same run).\n" +
      `Run ${stamp} on ${machine}.\n${settings}.\n`,
  );
  console.error(`\nwritten to ${path.relative(root, outFile)}`);
}

// --- cold start -------------------------------------------------------------------------------

const COLD_RUNS = Number(env.BENCH_COLD_RUNS ?? 3);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function timedFetch(url) {
  const t0 = performance.now();
  const res = await fetch(url);
  await res.arrayBuffer();
  return { ms: performance.now() - t0, status: res.status };
}

/**
 * Startup of the bundle, three ways: (1) fresh runtimes, hello-world and Outpost alternately
 * (BENCH_COLD_RUNS each, medians): time to ready (workerd started, script loaded, global scope
 * run) and the first request (Outpost: GET /v1/health; hello-world: its one-query route, the
 * same D1 work); (2) `wrangler check startup`: the CPU profile of the Worker's global scope,
 * written to .bench/startup.cpuprofile; (3) the bundle's size, raw and gzipped.
 */
async function coldStart(script, config) {
  try {
    const hello = [];
    const outpost = [];
    for (let i = 0; i < COLD_RUNS; i++) {
      const h = await startHelloWorld(config.compatibility_date);
      try {
        hello.push({
          ready: h.readyMs,
          first: (await timedFetch(`${h.url}/d1`)).ms,
          second: (await timedFetch(`${h.url}/d1`)).ms,
        });
      } finally {
        await h.mf.dispose();
      }
      // No migrations: nothing but the start is timed, and /v1/health needs no table.
      const o = await startOutpost(script, config, { migrate: false });
      try {
        const first = await timedFetch(`${o.url}/v1/health`);
        if (first.status !== 200) throw new Error(`GET /v1/health on a fresh runtime answered ${first.status}`);
        outpost.push({ ready: o.readyMs, first: first.ms, second: (await timedFetch(`${o.url}/v1/health`)).ms });
      } finally {
        await o.dispose();
      }
    }
    const m = (xs, k) => median(xs.map((x) => x[k]));
    addRow({
      scenario: "cold start: hello-world Worker",
      throughput: `${fmt(m(hello, "ready"))} ms to ready`,
      ratio: "—",
      notes:
        `fresh runtime, median of ${COLD_RUNS}: first request (one D1 query) ${fmt(m(hello, "first"), 1)} ms, ` +
        `second ${fmt(m(hello, "second"), 1)} ms`,
    });
    const profile = path.join(benchDir, "startup.cpuprofile");
    const check = spawnSync(
      path.join(root, "node_modules", ".bin", "wrangler"),
      ["check", "startup", "--outfile", profile],
      { cwd: root, encoding: "utf8" },
    );
    const out = `${check.stdout}\n${check.stderr}`;
    const active = /Active:\s*([\d.]+)\s*ms/.exec(out)?.[1];
    const gc = /including ([\d.]+) ms garbage collection/.exec(out)?.[1];
    const bytes = statSync(script).size;
    const gz = gzipSync(readFileSync(script)).length;
    addRow({
      scenario: "cold start: Outpost",
      throughput: `${fmt(m(outpost, "ready"))} ms to ready`,
      ratio: "—",
      vsRef: `+${fmt(m(outpost, "ready") - m(hello, "ready"))} ms`,
      notes: [
        `fresh runtime, median of ${COLD_RUNS}: first GET /v1/health ${fmt(m(outpost, "first"), 1)} ms, ` +
          `second ${fmt(m(outpost, "second"), 1)} ms`,
        active
          ? `startup CPU ${active} ms active${gc ? ` (${gc} ms GC)` : ""} ` +
            "(`wrangler check startup`, profile in .bench/startup.cpuprofile)"
          : `wrangler check startup failed: ${out.trim().slice(-200)}`,
        `bundle ${fmt(bytes / 1024, 1)} KiB, gzip ${fmt(gz / 1024, 1)} KiB`,
      ].join("; "),
    });
  } catch (e) {
    addRow({ scenario: "cold start: Outpost", throughput: "failed", notes: `failed: ${e.message}` });
  }
}

// --- hot paths, on the small and on the large database ---------------------------------------

/** Direct rooms the bench user is in, for the room-list scenario. */
const ROOMS_PER_USER = 20;

/**
 * GET record, list, room list and login for one signed-up user. `prefix` ("" or "large") picks the
 * scenario ids and labels; on the large database each row is compared with the same row on the small one.
 */
async function hotPathScenarios(prefix, { token, email, password, auth, peers }) {
  const id = (s) => (prefix ? `${prefix}-${s}` : s);
  const label = (s) => (prefix ? `${s}, large database` : s);
  const scenario = (key, name, setup) =>
    httpScenario(id(key), label(name), async () => {
      const sc = await setup();
      if (!prefix) return sc;
      const before = smallRps.get(key);
      return {
        ...sc,
        notes: (r) =>
          [
            sc.notes(r),
            before
              ? `${(r.reqPerSec / before).toFixed(2)}× the small database's ${fmt(before)} req/s`
              : "small database row not run",
          ].join("; "),
      };
    });

  await scenario("get", "GET record", async () => {
    const rec = need(
      await call("POST", "/v1/collections/notes/records", {
        token,
        body: { title: "bench record", body: "x".repeat(200), tags: ["a", "b"] },
      }),
      201,
      "POST /v1/collections/notes/records",
    );
    need(await call("GET", `/v1/collections/notes/records/${rec.id}`, { token }), 200, "GET record");
    return { path: `/v1/collections/notes/records/${rec.id}`, headers: auth, notes: () => "notes, owner rule" };
  });

  await scenario("list", "list (where + limit 20)", async () => {
    await pool(40, 8, (i) =>
      call("POST", "/v1/collections/notes/records", { token, body: { title: `seed ${i}`, pinned: i % 2 === 0 } }).then(
        (r) => need(r, 201, "POST record"),
      ),
    );
    const q = `?where=${encodeURIComponent(JSON.stringify({ pinned: true }))}&limit=20`;
    const page = need(await call("GET", `/v1/collections/notes/records${q}`, { token }), 200, "list");
    return {
      path: `/v1/collections/notes/records${q}`,
      headers: auth,
      notes: () => `${page.items.length} items per page`,
    };
  });

  // The list's extras, each beside the same list without it (one run: the ratios are this run's).
  const versus = (base, r) => {
    const before = smallRps.get(id(base));
    return before ? `${(r.reqPerSec / before).toFixed(2)}× the list without it` : "";
  };
  await scenario("count", "list + count=true", async () => {
    const q = `?where=${encodeURIComponent(JSON.stringify({ pinned: true }))}&limit=20&count=true`;
    const page = need(await call("GET", `/v1/collections/notes/records${q}`, { token }), 200, "count");
    return {
      path: `/v1/collections/notes/records${q}`,
      headers: auth,
      notes: (r) => `total ${page.total}; ${versus("list", r)}`,
    };
  });

  // A post with 31 comments (half replies to the first), for the comments rows.
  let thread = "";
  if (wanted(id("comments")) || wanted(id("expand"))) {
    const post = need(
      await call("POST", "/v1/collections/posts/records", { token, body: { text: "bench post" } }),
      201,
      "post",
    );
    const first = need(
      await call("POST", "/v1/collections/comments/records", { token, body: { postId: post.id, text: "first" } }),
      201,
      "comment",
    );
    await pool(30, 6, (i) =>
      call("POST", "/v1/collections/comments/records", {
        token,
        body: { postId: post.id, text: `comment ${i}`, ...(i % 2 ? { replyTo: first.id } : {}) },
      }).then((r) => need(r, 201, "POST comment")),
    );
    thread = `?where=${encodeURIComponent(JSON.stringify({ postId: post.id }))}&limit=20`;
  }
  await scenario("comments", "comments of a post (limit 20)", async () => ({
    path: `/v1/collections/comments/records${thread}`,
    headers: auth,
    notes: () => "across owners, the reference's index",
  }));
  await scenario("expand", "comments + expand=postId,replyTo", async () => ({
    path: `/v1/collections/comments/records${thread}&expand=postId,replyTo`,
    headers: auth,
    notes: (r) => `2 expands in the list's own statement; ${versus("comments", r)}`,
  }));

  await scenario("search", "search posts (2 words, limit 20)", async () => {
    if (!prefix)
      await pool(40, 8, (i) =>
        call("POST", "/v1/collections/posts/records", {
          token,
          body: { text: `bench ${i % 2 ? "crème brûlée" : "apple pie"} number ${i}` },
        }).then((r) => need(r, 201, "POST post")),
      );
    const q = `?search=${encodeURIComponent("creme bru")}&limit=20`;
    const page = need(await call("GET", `/v1/collections/posts/records${q}`, { token }), 200, "search");
    return {
      path: `/v1/collections/posts/records${q}`,
      headers: auth,
      notes: () => `${page.items.length} items per page, best match first`,
    };
  });

  await scenario("teamlist", "team list (one team, limit 20)", async () => {
    const team = need(await call("POST", "/v1/teams", { token, body: { name: "Bench" } }), 201, "POST /v1/teams");
    const list = need(
      await call("POST", "/v1/collections/lists/records", { token, body: { teamId: team.id, title: "Bench" } }),
      201,
      "POST list",
    );
    await pool(40, 8, (i) =>
      call("POST", "/v1/collections/items/records", {
        token,
        body: { teamId: team.id, listId: list.id, text: `item ${i}` },
      }).then((r) => need(r, 201, "POST item")),
    );
    const q = `?where=${encodeURIComponent(JSON.stringify({ teamId: team.id }))}&limit=20`;
    const page = need(await call("GET", `/v1/collections/items/records${q}`, { token }), 200, "team list");
    return {
      path: `/v1/collections/items/records${q}`,
      headers: auth,
      notes: () => `${page.items.length} items per page, team:viewer rule`,
    };
  });

  await scenario("rooms", "room list", async () => {
    await pool(peers.length, 4, (k) =>
      call("POST", "/v1/rooms", { token, body: { kind: "direct", memberIds: [peers[k]] } }).then((r) =>
        need(r, 201, "POST /v1/rooms"),
      ),
    );
    const page = need(await call("GET", "/v1/rooms?limit=20", { token }), 200, "GET /v1/rooms");
    return {
      path: "/v1/rooms?limit=20",
      headers: auth,
      notes: () => `${page.items.length} rooms per page, with members and unread counts`,
    };
  });

  await scenario("login", "login", async () => {
    const body = { email, password };
    need(await call("POST", "/v1/auth/login", { body }), 200, "login");
    return {
      path: "/v1/auth/login",
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
      notes: () => "PBKDF2-SHA256, 100,000 iterations",
    };
  });
}

/** Size of the large database (BENCH_LARGE_USERS etc.); seeded with D1 batch statements, not through the API. */
const LARGE = {
  users: Number(env.BENCH_LARGE_USERS ?? 100_000),
  records: Number(env.BENCH_LARGE_RECORDS ?? 1_000_000),
  rooms: Number(env.BENCH_LARGE_ROOMS ?? 10_000),
  posts: Number(env.BENCH_LARGE_POSTS ?? 100_000),
};

/**
 * The hot paths again on a fresh runtime whose D1 holds LARGE.users users, LARGE.records notes
 * (with their change-log rows) and LARGE.rooms direct rooms: a query that reads a whole table
 * shows up here as a drop in req/s. The seed is generated inside SQLite (recursive CTEs).
 */
async function largeScenarios(script, config) {
  const rt = await startOutpost(script, config);
  const prevBase = base;
  base = rt.url;
  try {
    const db = await rt.mf.getD1Database("DB");
    const t0 = performance.now();
    const n = (count) => `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${count})`;
    const at = "strftime('%Y-%m-%dT%H:%M:%fZ', '2026-01-01', '+' || i || ' seconds')";
    // The seed is data that was already there, not new writes: the events its inserts make for the app's
    // after hooks (a welcome mail per user...) are dropped in the same batch, or the event pipeline would
    // work through them (and their retries) while the rows below are measured.
    const noEvents = (prefix) => db.prepare("DELETE FROM events WHERE record_id LIKE ?").bind(`${prefix}%`);
    await db.batch([
      db.prepare(`${n(LARGE.users)}
        INSERT INTO users (id, email, email_verified, name, anonymous, created_at, updated_at)
        SELECT printf('seed-user-%07d', i), printf('seed%07d@example.com', i), 1, printf('Seed %d', i), 0,
          ${at}, ${at} FROM n`),
      noEvents("seed-user-"),
    ]);
    await db.batch([
      db.prepare(`${n(LARGE.records)}
        INSERT INTO app_notes (id, owner_id, created_at, updated_at, version, title, body)
        SELECT printf('seed-note-%08d', i), printf('seed-user-%07d', 1 + i % ${LARGE.users}), ${at}, ${at}, 1,
          printf('note %d', i), 'seeded body text' FROM n`),
      db.prepare(`${n(LARGE.records)}
        INSERT INTO record_changes (collection, record_id, owner_id, version, deleted, changed_at)
        SELECT 'notes', printf('seed-note-%08d', i), printf('seed-user-%07d', 1 + i % ${LARGE.users}), 1, 0, ${at}
        FROM n`),
      noEvents("seed-note-"),
    ]);
    await db.batch([
      db.prepare(`${n(LARGE.rooms)} INSERT INTO rooms (id, kind, created_by, created_at, direct_key, last_activity_at)
        SELECT printf('seed-room-%06d', i), 'direct', printf('seed-user-%07d', 2 * i - 1), ${at},
          printf('seed-user-%07d:seed-user-%07d', 2 * i - 1, 2 * i), ${at} FROM n`),
      db.prepare(`${n(LARGE.rooms)} INSERT INTO room_members (room_id, user_id, role, joined_at)
        SELECT printf('seed-room-%06d', i), printf('seed-user-%07d', 2 * i - 1), 'member', ${at} FROM n
        UNION ALL SELECT printf('seed-room-%06d', i), printf('seed-user-%07d', 2 * i), 'member', ${at} FROM n`),
    ]);
    // Posts for the search row: every tenth a dessert, the rest other words.
    await db.batch([
      db.prepare(`${n(LARGE.posts)}
        INSERT INTO app_posts (id, owner_id, created_at, updated_at, version, text)
        SELECT printf('seed-post-%08d', i), printf('seed-user-%07d', 1 + i % ${LARGE.users}), ${at}, ${at}, 1,
          CASE WHEN i % 10 = 0 THEN printf('crème brûlée number %d', i) ELSE printf('apple pie and tea %d', i) END
        FROM n`),
      db.prepare(`${n(LARGE.posts)}
        INSERT INTO record_changes (collection, record_id, owner_id, version, deleted, changed_at)
        SELECT 'posts', printf('seed-post-%08d', i), printf('seed-user-%07d', 1 + i % ${LARGE.users}), 1, 0, ${at}
        FROM n`),
      noEvents("seed-post-"),
    ]);
    const left = await db.prepare("SELECT count(*) AS n FROM events WHERE record_id LIKE 'seed-%'").first("n");
    if (left !== 0) throw new Error(`the seed left ${left} events for the pipeline`);
    const seedSec = (performance.now() - t0) / 1000;
    const size = (await db.prepare("SELECT 1").run()).meta.size_after;
    console.error(`  large database seeded in ${seedSec.toFixed(1)} s: ${fmt(size / 2 ** 20)} MiB`);

    const password = "bench password 123";
    const email = `bench.large.${Date.now()}@example.com`;
    const signup = need(await call("POST", "/v1/auth/signup", { body: { email, password } }), 201, "signup");
    const token = signup.session.accessToken;
    const peers = Array.from(
      { length: ROOMS_PER_USER },
      (_, k) => `seed-user-${String(LARGE.users - k).padStart(7, "0")}`,
    );
    await hotPathScenarios("large", { token, email, password, auth: { authorization: `Bearer ${token}` }, peers });
    addRow({
      scenario: "large database",
      throughput: "—",
      notes:
        `${fmt(LARGE.users)} users, ${fmt(LARGE.records)} notes (+ change log), ${fmt(LARGE.rooms)} rooms, ` +
        `${fmt(LARGE.posts)} posts (full-text indexed); ` +
        `${fmt(size / 2 ** 20)} MiB of D1, seeded in ${seedSec.toFixed(0)} s`,
    });
  } catch (e) {
    addRow({
      scenario: "large database",
      throughput: e instanceof Skip ? "skipped" : "failed",
      notes: `${e instanceof Skip ? "skipped" : "failed"}: ${e.message}`,
    });
  } finally {
    base = prevBase;
    await rt.dispose();
  }
}

// --- tus upload -------------------------------------------------------------------------------

/**
 * One tus upload on a fresh runtime (so the workerd RSS before it is not inflated by the other
 * scenarios), with the runtime process's RSS sampled every 20 ms.
 */
async function tusScenario(script, config) {
  const label = `tus upload ${TUS_MIB} MiB`;
  const rt = await startOutpost(script, config);
  const prevBase = base;
  base = rt.url;
  try {
    const signup = need(
      await call("POST", "/v1/auth/signup", {
        body: { email: `tus.${Date.now()}@example.com`, password: "bench password 123" },
      }),
      201,
      "signup",
    );
    const token = signup.session.accessToken;
    const create = await call("POST", "/v1/uploads", {
      token,
      headers: { "tus-resumable": "1.0.0", "upload-length": "1" },
    });
    if (create.status === 404 && /No route for/.test(create.json?.detail ?? ""))
      throw new Skip("/v1/uploads not served yet (404)");
    if (create.status !== 201)
      throw new Error(`POST /v1/uploads answered ${create.status} ${create.text.slice(0, 200)}`);
    const loc = create.headers.get("location");
    if (loc) await call("DELETE", new URL(loc, base).pathname, { token, headers: { "tus-resumable": "1.0.0" } });
    const mem = sampleRss(rt.pid);
    const r = await child("tus-upload.mjs", [
      JSON.stringify({
        endpoint: `${base}/v1/uploads`,
        token,
        sizeBytes: TUS_MIB * 2 ** 20,
        chunkBytes: TUS_CHUNK_MIB * 2 ** 20,
      }),
    ]);
    const m = mem.stop();
    if (!r.ok) throw new Error(`tus upload failed: ${r.error}`);
    const file = r.fileId ? await call("GET", `/v1/files/${r.fileId}`, { token }) : null;
    const sizeOk = file?.json?.size === TUS_MIB * 2 ** 20;
    addRow({
      scenario: label,
      throughput: `${fmt(r.mibPerSec, 1)} MiB/s`,
      p50: r.patchP50,
      p99: r.patchP99,
      ratio: "—",
      notes:
        `${r.patches} PATCHes of ${TUS_CHUNK_MIB} MiB (latency per PATCH); ` +
        `workerd RSS ${fmt(m.startKiB / 1024)} → peak ${fmt(m.peakKiB / 1024)} MiB ` +
        "during the upload (fresh runtime); " +
        `file ${sizeOk ? "complete" : `NOT verified (${file?.status ?? "no Outpost-File-Id"})`}`,
    });
  } catch (e) {
    addRow({
      scenario: label,
      throughput: e instanceof Skip ? "skipped" : "failed",
      notes: `${e instanceof Skip ? "skipped" : "failed"}: ${e.message}`,
    });
  } finally {
    base = prevBase;
    await rt.dispose();
  }
}

// --- thumbnails ---------------------------------------------------------------------------------

/** A real `w`×`h` RGB PNG: gradients with a little noise (roughly a phone photo's decode work, not its size). */
function benchPng(w, h, seed) {
  const row = 1 + w * 3;
  const raw = Buffer.alloc(h * row);
  let x = seed * 2654435761;
  for (let y = 0; y < h; y++) {
    for (let i = 0; i < w; i++) {
      x = (x * 1103515245 + 12345) >>> 0;
      const n = x >>> 28;
      raw.set([(i * 255) / w + n, (y * 255) / h + n, ((i + y + seed * 40) & 255) ^ n], y * row + 1 + i * 3);
    }
  }
  const chunk = (type, data) => {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(data.length);
    head.write(type, 4, "latin1");
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(Buffer.concat([head.subarray(4), data])));
    return Buffer.concat([head, data, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w);
  ihdr.writeUInt32BE(h, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", zlib.deflateSync(raw)),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];

/**
 * Thumbnails (`?thumb=sm`, WebP) of a public 1600×1200 PNG: first requests (each one transforms
 * the original with the Images binding and stores the rendition), measured on distinct files with
 * 4 in flight; then cached ones (one R2 read, no transform) under the usual HTTP load.
 */
async function thumbScenarios(token) {
  const FIRSTS = Number(env.BENCH_THUMB_FILES ?? 24);
  const label = "thumbnail, first request (transform + store)";
  let ids;
  try {
    const png = benchPng(1600, 1200, 1);
    ids = await pool(
      FIRSTS,
      4,
      async () =>
        need(
          await call("POST", "/v1/files?name=bench.png&visibility=public", {
            token,
            raw: png,
            headers: { "content-type": "image/png" },
          }),
          201,
          "POST /v1/files (image)",
        ).id,
    );
    // The after-upload jobs (dimensions, placeholder) run on the queue first, so they do not share the measurement.
    const deadline = Date.now() + 120_000;
    for (let k = 0; k < FIRSTS; k++) {
      while ((await call("GET", `/v1/files/${ids[k]}`)).json?.width == null) {
        if (Date.now() > deadline) throw new Error("the image jobs did not finish within 120 s");
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    const lat = [];
    const t0 = performance.now();
    await pool(FIRSTS, 4, async (k) => {
      const t = performance.now();
      const res = await fetch(`${base}/v1/files/${ids[k]}/content?thumb=sm`);
      const bytes = new Uint8Array(await res.arrayBuffer());
      if (res.status !== 200 || String.fromCharCode(...bytes.subarray(8, 12)) !== "WEBP")
        throw new Error(`thumb: ${res.status} ${res.headers.get("content-type")}`);
      lat.push(performance.now() - t);
    });
    const secs = (performance.now() - t0) / 1000;
    lat.sort((a, b) => a - b);
    addRow({
      scenario: label,
      throughput: `${fmt(FIRSTS / secs, 1)} req/s`,
      p50: percentile(lat, 50),
      p99: percentile(lat, 99),
      ratio: ratio(FIRSTS / secs),
      notes:
        `${FIRSTS} distinct ${fmt(png.length / 2 ** 20, 1)} MiB PNGs (1600×1200), 4 in flight; ` +
        "local transforms run on sharp",
    });
  } catch (e) {
    addRow({
      scenario: label,
      throughput: e instanceof Skip ? "skipped" : "failed",
      notes: `${e instanceof Skip ? "skipped" : "failed"}: ${e.message}`,
    });
    return;
  }
  await httpScenario("thumb-cached", "thumbnail, cached", async () => ({
    path: `/v1/files/${ids[0]}/content?thumb=sm`,
    notes: () => "public 160 px WebP: one D1 read + one R2 read, no transform",
  }));
}

// --- chat fan-out -----------------------------------------------------------------------------

/**
 * `db`: the runtime's D1. Members past the first 99 are written to it directly: the daily cap on
 * new people one user adds (an abuse guard, 150 a day) would refuse the owner's 900 adds.
 */
async function chatScenarios(ownerToken, db, bare) {
  const maxN = Math.max(...CHAT_SOCKETS);
  let room = null;
  let members = [];
  try {
    // Room members: the owner plus guests (anonymous sign-up skips PBKDF2, so 1,000 users are quick).
    const probe = await call("GET", "/v1/rooms", { token: ownerToken });
    need(probe, 200, "GET /v1/rooms");
    members = await pool(maxN - 1, 8, async () =>
      need(await call("POST", "/v1/auth/anonymous", { body: {} }), 201, "anonymous sign-up"),
    );
  } catch (e) {
    for (const n of CHAT_SOCKETS)
      addRow({
        scenario: `chat fan-out, ${fmt(n)} sockets`,
        throughput: e instanceof Skip ? "skipped" : "failed",
        notes: `${e instanceof Skip ? "skipped" : "failed"}: ${e.message}`,
      });
    return;
  }
  for (const n of CHAT_SOCKETS) {
    const label = `chat fan-out, ${fmt(n)} sockets`;
    // About 2 s of deliveries per run on this machine (a run of under a second was mostly noise).
    const messages = n >= 1000 ? 80 : 600;
    // The reference runs right before and right after the room (outside load hits both alike).
    const bareWs = bare ? bare.url.replace(/^http/, "ws") : null;
    const bareUrls = (store, tag = "") =>
      Array.from(
        { length: n },
        () => `${bareWs}/room?name=${store ? "sqlite" : "memory"}-${n}${tag}&store=${store ? 1 : 0}`,
      );
    // The reference runs before the room's first run, between its runs and after its last
    // (CHAT_ROUNDS runs of the room: one run of a few seconds moved by up to 0.3× on this machine,
    // and the mean of 3 runs between 0.73× and 0.89× over seven partial runs of the same code).
    const refRun = (k) =>
      bare ? fanoutRun(`bare DO + SQLite ${n} run ${k}`, bareUrls(true, `-${k}`), messages) : null;
    const refs = [await refRun(0)];
    const rooms = [];
    let outpost = null;
    try {
      const ids = members.slice(0, n - 1).map((m) => m.user.id);
      room = need(
        await call("POST", "/v1/rooms", {
          token: ownerToken,
          body: { kind: "group", name: `bench ${n}`, memberIds: ids.slice(0, 99) },
        }),
        201,
        "POST /v1/rooms",
      );
      if (ids.length > 99) {
        await db
          .prepare(
            "INSERT INTO room_members (room_id, user_id, role, joined_at) " +
              "SELECT ?, value, 'member', ? FROM json_each(?)",
          )
          .bind(room.id, new Date().toISOString(), JSON.stringify(ids.slice(99)))
          .run();
      }
      const wsBase = base.replace(/^http/, "ws");
      const tokens = [ownerToken, ...members.slice(0, n - 1).map((m) => m.session.accessToken)];
      const file = path.join(benchDir, `fanout-${n}.json`);
      writeFileSync(
        file,
        JSON.stringify({
          label,
          urls: tokens.map((t) => `${wsBase}/v1/rooms/${room.id}/ws?token=${encodeURIComponent(t)}`),
          messages,
          window: 10,
          timeoutMs: 60_000,
        }),
      );
      for (let k = 1; k <= CHAT_ROUNDS; k++) {
        rooms.push(await child("fanout.mjs", [file]));
        refs.push(await refRun(k));
      }
      outpost = meanRun(rooms);
    } catch (e) {
      addRow({
        scenario: label,
        throughput: e instanceof Skip ? "skipped" : "failed",
        notes: `${e instanceof Skip ? "skipped" : "failed"}: ${e.message}`,
      });
    }
    // References: the same clients against bare Durable Objects on a runtime of their own (with one
    // SQLite insert per message: chat's reference; in memory only), then a bare Node ws server.
    while (refs.length < CHAT_ROUNDS + 1) refs.push(await refRun(refs.length));
    const reference = meanRun(refs);
    const inMemory = bare ? await fanoutRun(`bare DO in memory ${n}`, bareUrls(false), messages) : null;
    const bl = await startBaseline();
    let baseline = null;
    try {
      baseline = await fanoutRun(
        `baseline ${n}`,
        Array.from({ length: n }, () => `ws://127.0.0.1:${bl.port}/`),
        messages,
      );
    } finally {
      bl.stop();
    }
    const chatNotes = (r) => {
      const notes = [`${r.messages} msgs × ${r.sockets} sockets, 10 in flight`];
      if (r.deliveries < r.expected) notes.push(`${fmt(r.expected - r.deliveries)} deliveries missing`);
      if (Object.keys(r.errors).length) notes.push(`error frames ${JSON.stringify(r.errors)}`);
      return notes;
    };
    const ok = (r) => r && !(r instanceof Error);
    const vs = (r) => (ok(r) && ok(reference) && reference.msgsPerSec ? r.msgsPerSec / reference.msgsPerSec : null);
    const row = (scenario, r, o = {}) =>
      addRow(
        ok(r)
          ? {
              scenario,
              throughput: `${fmt(r.msgsPerSec)} msgs/s`,
              p50: r.p50,
              p99: r.p99,
              ratio: o.ratio ?? (vs(r) === null ? "—" : `${vs(r).toFixed(2)}× DO`),
              vsRef: o.vsRef,
              notes: [...(o.notes ?? []), ...chatNotes(r)].join("; "),
            }
          : { scenario, throughput: "failed", notes: `failed: ${r?.message ?? "no reference runtime"}` },
      );
    if (outpost) {
      const p99 = ok(reference) && reference.p99 ? outpost.p99 / reference.p99 : null;
      row(label, outpost, {
        vsRef: vs(outpost) === null ? undefined : `${vs(outpost).toFixed(2)}× ref`,
        notes: [
          ...(p99 === null ? [] : [`p99 ${p99.toFixed(2)}× the reference's`]),
          ...(outpost.runs ? [`mean of ${CHAT_ROUNDS} runs (${outpost.runs} msgs/s)`] : []),
        ],
      });
    }
    row(`reference: bare Durable Object + SQLite insert, ${fmt(n)} sockets`, reference, {
      ratio: "1.00× DO",
      vsRef: "1.00× ref",
      notes: [
        "hibernating sockets, no auth; per message one SQLite insert, one frame serialised once",
        ...(reference?.runs ? [`mean of runs before, between and after the room's (${reference.runs} msgs/s)`] : []),
      ],
    });
    row(`bare Durable Object in memory, ${fmt(n)} sockets`, inMemory, { notes: ["the same without the insert"] });
    row(`context: Node ws broadcast, ${fmt(n)} sockets`, baseline, {
      notes: ["a bare Node `ws` server (parse, number, broadcast); not the runtime's own limit"],
    });
  }
}

/** The mean of fan-out runs (msgs/s, p50, p99) over those that did not fail, or the failure. */
function meanRun(runs) {
  const good = runs.filter((r) => r && !(r instanceof Error));
  if (good.length < 2) return good[0] ?? runs.find(Boolean) ?? null;
  const mean = (k) => good.reduce((sum, r) => sum + r[k], 0) / good.length;
  return {
    ...good.at(-1),
    msgsPerSec: mean("msgsPerSec"),
    p50: mean("p50"),
    p99: mean("p99"),
    runs: good.map((r) => fmt(r.msgsPerSec)).join(", "),
  };
}

/** One run of fanout.mjs against `urls`; its result, or the Error it failed with. */
async function fanoutRun(label, urls, messages) {
  const file = path.join(benchDir, `fanout-${label.replace(/[^a-z0-9]+/gi, "-")}.json`);
  writeFileSync(file, JSON.stringify({ label, urls, messages, window: 10, timeoutMs: 60_000 }));
  try {
    return await child("fanout.mjs", [file]);
  } catch (e) {
    return e instanceof Error ? e : new Error(String(e));
  }
}

// --- live data: subscriptions to one public collection -----------------------------------------

const LIVE = {
  subscribers: Number(env.BENCH_LIVE_SUBSCRIBERS ?? 1000),
  records: Number(env.BENCH_LIVE_RECORDS ?? 300),
  window: Number(env.BENCH_LIVE_WINDOW ?? 1),
};

/** Starts live-fanout.mjs: resolves with its first output line and a stop() that resolves with its last. */
function holdLiveChild(file) {
  return new Promise((resolve, reject) => {
    const p = loadProcess([path.join(here, "live-fanout.mjs"), file], ["pipe", "pipe", "pipe"]);
    let out = "";
    let err = "";
    let first = null;
    let onLast = null;
    const timer = setTimeout(() => p.kill("SIGKILL"), 600_000);
    p.stderr.on("data", (d) => (err += d));
    p.stdout.on("data", (d) => {
      out += d;
      const lines = out.split("\n").filter(Boolean);
      if (!first && lines.length >= 1) {
        first = JSON.parse(lines[0]);
        resolve({
          first,
          stop: () =>
            new Promise((res) => {
              onLast = res;
              p.stdin.write("stop\n");
            }),
        });
      }
      if (onLast && lines.length >= 2) onLast(JSON.parse(lines[1]));
    });
    p.on("close", (code) => {
      clearTimeout(timer);
      if (!first) reject(new Error(`live-fanout.mjs exited ${code}: ${(err || out).trim().slice(-800)}`));
    });
  });
}

/**
 * LIVE.subscribers sockets subscribed to `posts` (public: everyone's records), one writer creating
 * records: records delivered per second to all subscribers and p50/p99 from the create's answer to
 * each delivery; then the create route's throughput with the subscribers attached (they get every
 * record) against the same route with none (writes must not wait on the fan-out).
 */
async function liveScenario(writerToken, bare) {
  const n = LIVE.subscribers;
  const label = `live fan-out, ${fmt(n)} subscribers`;
  const createPath = "/v1/collections/posts/records";
  const body = { text: "bench create" };
  const headers = { authorization: `Bearer ${writerToken}`, "content-type": "application/json" };
  let held = null;
  try {
    need(await call("POST", createPath, { token: writerToken, body }), 201, "POST /v1/collections/posts/records");
    need(
      await call("GET", "/v1/collections/posts/subscribe", { token: writerToken }),
      400,
      "GET /v1/collections/posts/subscribe (no upgrade)",
    );
    const alone = await loadHttp({ url: `${base}${createPath}`, method: "POST", headers, body });
    const tokens = await pool(
      n,
      8,
      async () =>
        need(await call("POST", "/v1/auth/anonymous", { body: {} }), 201, "anonymous sign-up").session.accessToken,
    );
    // Subscribers are apps in sync: they subscribe with the latest cursor (no replay of earlier posts).
    let since = "";
    for (let more = true; more; ) {
      const page = need(
        await call("GET", `/v1/collections/posts/changes?limit=200${since ? `&since=${since}` : ""}`, {
          token: writerToken,
        }),
        200,
        "GET /v1/collections/posts/changes",
      );
      since = page.nextCursor;
      more = page.hasMore;
    }
    const wsBase = base.replace(/^http/, "ws");
    const file = path.join(benchDir, "live-fanout.json");
    writeFileSync(
      file,
      JSON.stringify({
        urls: tokens.map(
          (t) => `${wsBase}/v1/collections/posts/subscribe?since=${since}&token=${encodeURIComponent(t)}`,
        ),
        createUrl: `${base}${createPath}`,
        token: writerToken,
        records: LIVE.records,
        window: LIVE.window,
        timeoutMs: 60_000,
      }),
    );
    const notesPath = "/v1/collections/notes/records";
    const noteBody = { title: "bench create" };
    const notesAlone = await loadHttp({ url: `${base}${notesPath}`, method: "POST", headers, body: noteBody });
    held = await holdLiveChild(file);
    const fan = held.first;
    // Writes none of the subscribers gets (notes: owner-scoped, the writer has no subscription).
    const notesAttached = await loadHttp({ url: `${base}${notesPath}`, method: "POST", headers, body: noteBody });
    const attached = await loadHttp({ url: `${base}${createPath}`, method: "POST", headers, body });
    const tail = await held.stop();
    held = null;
    // The baselines again, after the subscribers left: on a shared machine the noise between runs
    // can be as large as the effect, so each ratio is against the mean of before and after.
    const aloneAfter = await loadHttp({ url: `${base}${createPath}`, method: "POST", headers, body });
    const notesAloneAfter = await loadHttp({ url: `${base}${notesPath}`, method: "POST", headers, body: noteBody });
    const postsBase = (alone.reqPerSec + aloneAfter.reqPerSec) / 2;
    // The reference: the same subscribers and writer against a bare hub (D1 batch, one DO call, broadcast).
    let ref = null;
    if (bare) {
      const refFile = path.join(benchDir, "live-fanout-bare.json");
      writeFileSync(
        refFile,
        JSON.stringify({
          urls: Array.from({ length: n }, () => `${bare.url.replace(/^http/, "ws")}/live?name=posts`),
          createUrl: `${bare.url}/live/create?name=posts`,
          token: "none",
          records: LIVE.records,
          window: LIVE.window,
          timeoutMs: 60_000,
        }),
      );
      try {
        const refHeld = await holdLiveChild(refFile);
        ref = refHeld.first;
        await refHeld.stop();
      } catch (e) {
        ref = e instanceof Error ? e : new Error(String(e));
      }
    }
    const refOk = ref && !(ref instanceof Error) && ref.recordsPerSec > 0;
    const notesBase = (notesAlone.reqPerSec + notesAloneAfter.reqPerSec) / 2;
    const fanNotes = [
      `${fmt(fan.records)} records × ${fmt(fan.sockets)} subscribers, ` +
        `one writer (${LIVE.window} create${LIVE.window > 1 ? "s" : ""} in flight); ` +
        `${fmt(fan.deliveriesPerSec)} deliveries/s; ` +
        "latency from the record's createdAt (just before its commit) to each delivery; " +
        `sockets opened in ${fmt(fan.openMs / 1000, 1)} s`,
    ];
    if (fan.deliveries < fan.expected) fanNotes.push(`${fmt(fan.expected - fan.deliveries)} deliveries missing`);
    if (fan.failedWrites) fanNotes.push(`${fan.failedWrites} creates failed`);
    if (Object.keys(fan.errors).length) fanNotes.push(`errors ${JSON.stringify(fan.errors)}`);
    if (refOk && ref.p99) fanNotes.unshift(`p99 ${(fan.p99 / ref.p99).toFixed(2)}× the reference's`);
    addRow({
      scenario: label,
      throughput: `${fmt(fan.recordsPerSec)} records/s`,
      p50: fan.p50,
      p99: fan.p99,
      ratio: "—",
      vsRef: refOk ? `${(fan.recordsPerSec / ref.recordsPerSec).toFixed(2)}× ref` : undefined,
      notes: fanNotes.join("; "),
    });
    if (ref)
      addRow(
        ref instanceof Error
          ? { scenario: `reference: bare live hub, ${fmt(n)} subscribers`, throughput: "failed", notes: ref.message }
          : {
              scenario: `reference: bare live hub, ${fmt(n)} subscribers`,
              throughput: `${fmt(ref.recordsPerSec)} records/s`,
              p50: ref.p50,
              p99: ref.p99,
              ratio: "—",
              vsRef: "1.00× ref",
              notes:
                `${fmt(ref.records)} records × ${fmt(ref.sockets)} subscribers, the same writer; per create a ` +
                "2-insert D1 batch, the answer, then one call to a bare Durable Object that sends one frame " +
                `(built once) to every socket; no auth, no log read; ${fmt(ref.deliveriesPerSec)} deliveries/s` +
                (ref.deliveries < ref.expected ? `; ${fmt(ref.expected - ref.deliveries)} deliveries missing` : ""),
            },
      );
    httpRow("create post, no subscribers", alone, {
      notes: [
        "`posts` (public): each write notifies the collection's root hub after its answer; " +
          `${fmt(aloneAfter.reqPerSec)} req/s when measured again after the subscribers left`,
      ],
    });
    httpRow(`create post, ${fmt(n)} subscribers attached`, attached, {
      notes: [
        `${(attached.reqPerSec / postsBase).toFixed(2)}× the rate with no subscriber (mean of before and after); ` +
          `every create goes to all ${fmt(n)}: ` +
          `${fmt(tail.framesWhileHeld)} change frames reached the subscribers during the run`,
      ],
    });
    httpRow("create note, no subscribers", notesAlone, {
      notes: [`before the subscribers connect; ${fmt(notesAloneAfter.reqPerSec)} req/s after they left`],
    });
    httpRow(`create note, ${fmt(n)} post subscribers idle`, notesAttached, {
      notes: [
        `${(notesAttached.reqPerSec / notesBase).toFixed(2)}× the rate with no subscriber ` +
          "(mean of before and after); " +
          `the ${fmt(n)} sockets stay open (pinging) on hibernatable hubs and get none of these writes`,
      ],
    });
  } catch (e) {
    addRow({
      scenario: label,
      throughput: e instanceof Skip ? "skipped" : "failed",
      notes: `${e instanceof Skip ? "skipped" : "failed"}: ${e.message}`,
    });
  } finally {
    if (held) await held.stop();
  }
}

try {
  await main();
} finally {
  await helloRuntime?.mf.dispose();
}
process.exit(0);
