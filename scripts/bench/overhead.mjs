// `node scripts/bench/overhead.mjs [scenario…]`: Outpost's own CPU per request, without the D1
// simulation. Bundles the app for Node (scripts/bench/overhead-entry.ts), gives it a D1 binding
// over an in-process SQLite (node:sqlite, the migrations applied), and calls `app.fetch` directly,
// one request at a time, next to a hello-world handler running the same statements on the same
// database. The difference between the two is what Outpost adds per request (routing, middleware,
// JWT check, validation, drizzle, serialization). Run it with `node --cpu-prof` to see where
// that goes: `--profile` records Outpost's measured requests only and prints where the time went.
// Scenarios: health, get, list, create (default: all). OVERHEAD_N requests each (default 5,000,
// after 1,000 not measured). Node's WebCrypto is slower than workerd's (the JWT check weighs more
// here than in the Worker).
import { timingSafeEqual } from "node:crypto";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { DatabaseSync } from "node:sqlite";
import { pathToFileURL } from "node:url";
import { summarize } from "./profile-summary.mjs";
import { BENCH_SECRETS, benchDir, readWranglerConfig, root } from "./runtime.mjs";

const N = Number(process.env.OVERHEAD_N ?? 5000);
const WARM = 1000;
const wanted = process.argv.slice(2).filter((a) => !a.startsWith("-"));
const scenarios = wanted.length ? wanted : ["health", "get", "list", "create"];

// --- the bundle -------------------------------------------------------------------------------

// wrangler's own esbuild (the one that bundles the Worker).
const { build } = createRequire(createRequire(import.meta.url).resolve("wrangler"))("esbuild");
const outfile = path.join(benchDir, "overhead", "entry.mjs");
await build({
  entryPoints: [path.join(import.meta.dirname, "overhead-entry.ts")],
  outfile,
  bundle: true,
  platform: "neutral",
  format: "esm",
  target: "es2022",
  mainFields: ["module", "main"],
  conditions: ["workerd", "worker", "import"],
  alias: { "zod/v4/core": path.join(root, "src/lib/no-zod.ts") },
  logLevel: "error",
  plugins: [
    {
      // The Durable Object base class is the only `cloudflare:workers` import the app needs here.
      name: "cloudflare-stub",
      setup(b) {
        b.onResolve({ filter: /^cloudflare:/ }, (a) => ({ path: a.path, namespace: "cf-stub" }));
        b.onLoad({ filter: /.*/, namespace: "cf-stub" }, () => ({
          contents:
            "export class DurableObject { constructor(ctx, env) { this.ctx = ctx; this.env = env; } }\n" +
            "export const env = {};",
          loader: "js",
        }));
      },
    },
  ],
});
// The one Workers-only API on these paths (Node's is in node:crypto).
crypto.subtle.timingSafeEqual ??= (a, b) =>
  timingSafeEqual(
    new Uint8Array(a.buffer ?? a, a.byteOffset ?? 0, a.byteLength),
    new Uint8Array(b.buffer ?? b, b.byteOffset ?? 0, b.byteLength),
  );
const { app, hello } = await import(pathToFileURL(outfile).href);

// --- D1 over node:sqlite ----------------------------------------------------------------------

const sqlite = new DatabaseSync(":memory:");
for (const f of readdirSync(path.join(root, "migrations"))
  .filter((f) => f.endsWith(".sql"))
  .sort()) {
  for (const s of readFileSync(path.join(root, "migrations", f), "utf8").split("--> statement-breakpoint"))
    if (s.trim()) sqlite.exec(s);
}
const cache = new Map();
const prepared = (sql) => {
  if (!cache.has(sql)) cache.set(sql, sqlite.prepare(sql));
  return cache.get(sql);
};
const norm = (v) => (v === undefined ? null : typeof v === "boolean" ? Number(v) : v);
/** The D1 statement API (bind, first, all, raw, run) and batch (one transaction), as far as drizzle and the app go. */
class Stmt {
  constructor(sql, params = []) {
    this.sql = sql;
    this.params = params;
  }
  bind(...p) {
    return new Stmt(this.sql, p.map(norm));
  }
  rows(arrays) {
    const s = prepared(this.sql);
    s.setReturnArrays(arrays);
    return s.all(...this.params);
  }
  result() {
    const s = prepared(this.sql);
    s.setReturnArrays(false);
    let results = [];
    if (s.columns().length) results = s.all(...this.params);
    else s.run(...this.params);
    return { success: true, results, meta: { duration: 0, changes: 0, rows_read: 0, rows_written: 0 } };
  }
  async first(col) {
    const r = this.rows(false)[0] ?? null;
    return col === undefined || r === null ? r : r[col];
  }
  async all() {
    return this.result();
  }
  async raw(opts) {
    const rows = this.rows(true);
    return opts?.columnNames
      ? [
          prepared(this.sql)
            .columns()
            .map((c) => c.name),
          ...rows,
        ]
      : rows;
  }
  async run() {
    return this.result();
  }
}
const d1 = {
  prepare: (sql) => new Stmt(sql),
  async batch(stmts) {
    sqlite.exec("BEGIN");
    try {
      const out = stmts.map((s) => s.result());
      sqlite.exec("COMMIT");
      return out;
    } catch (e) {
      sqlite.exec("ROLLBACK");
      throw e;
    }
  },
  withSession: () => ({ prepare: d1.prepare, batch: d1.batch, getBookmark: () => null }),
};

// --- env and setup ----------------------------------------------------------------------------

const config = await readWranglerConfig();
const limiter = { limit: async () => ({ success: true }) };
const env = {
  ...config.vars,
  ...BENCH_SECRETS,
  DB: d1,
  AUTH_LIMITER: limiter,
  REFRESH_LIMITER: limiter,
  CHAT_LIMITER: limiter,
  JOBS: { send: async () => {}, sendBatch: async () => {} },
};
const ctx = { waitUntil: () => {}, passThroughOnException: () => {}, props: {} };
const call = async (handler, p, init = {}) => {
  const res = await handler(new Request(`https://outpost.bench${p}`, init), env, ctx);
  await res.arrayBuffer();
  return res;
};

const signup = await (
  await app.fetch(
    new Request("https://outpost.bench/v1/auth/signup", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email: "overhead@example.com", password: "overhead password 1" }),
    }),
    env,
    ctx,
  )
).json();
const token = signup.session.accessToken;
const owner = signup.user.id;
const auth = { authorization: `Bearer ${token}` };
const post = (p, body) =>
  app
    .fetch(
      new Request(`https://outpost.bench${p}`, {
        method: "POST",
        headers: { ...auth, "content-type": "application/json" },
        body: JSON.stringify(body),
      }),
      env,
      ctx,
    )
    .then((r) => r.json());
const rec = await post("/v1/collections/notes/records", {
  title: "bench record",
  body: "x".repeat(200),
  tags: ["a", "b"],
});
if (!rec.id) throw new Error(`create failed: ${JSON.stringify(rec)}`);
for (let i = 0; i < 40; i++) await post("/v1/collections/notes/records", { title: `seed ${i}`, pinned: i % 2 === 0 });
const createBody = JSON.stringify({ title: "bench create", body: "y".repeat(200), pinned: false, tags: ["bench"] });

const defs = {
  health: { outpost: ["/v1/health"], reference: ["/d1"] },
  get: {
    outpost: [`/v1/collections/notes/records/${rec.id}`, { headers: auth }],
    reference: [`/get?id=${rec.id}&owner=${owner}`],
  },
  list: {
    outpost: [
      `/v1/collections/notes/records?where=${encodeURIComponent(JSON.stringify({ pinned: true }))}&limit=20`,
      { headers: auth },
    ],
    reference: [`/list?owner=${owner}`],
  },
  create: {
    outpost: [
      "/v1/collections/notes/records",
      { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: createBody },
    ],
    reference: [
      `/create?owner=${owner}`,
      { method: "POST", headers: { "content-type": "application/json" }, body: createBody },
    ],
  },
};

// --profile: a CPU profile of Outpost's measured requests only (node:inspector), summarized by
// function and by bundle module, written to .bench/overhead-<scenario>.cpuprofile.
const PROFILE = process.argv.includes("--profile");
const inspector = PROFILE ? new (await import("node:inspector/promises")).Session() : null;
if (inspector) {
  inspector.connect();
  await inspector.post("Profiler.enable");
  await inspector.post("Profiler.setSamplingInterval", { interval: 100 });
}

async function measure(handler, [p, init], profileAs) {
  const first = await call(handler, p, init);
  if (first.status >= 300) throw new Error(`${p}: ${first.status}`);
  for (let i = 0; i < WARM; i++) await call(handler, p, init);
  if (profileAs && inspector) await inspector.post("Profiler.start");
  // CPU time, not wall time: on a shared machine, time the process spends descheduled is not its work.
  const t0 = process.cpuUsage();
  for (let i = 0; i < N; i++) await call(handler, p, init);
  const used = process.cpuUsage(t0);
  const us = (used.user + used.system) / N;
  if (profileAs && inspector) {
    const { profile } = await inspector.post("Profiler.stop");
    writeFileSync(path.join(benchDir, `overhead-${profileAs}.cpuprofile`), JSON.stringify(profile));
    console.log(`--- ${profileAs}: Outpost's requests\n${summarize(profile, outfile)}\n`);
  }
  return us;
}

const lines = [];
for (const s of scenarios) {
  const d = defs[s];
  if (!d) throw new Error(`unknown scenario ${s} (health, get, list, create)`);
  const ref = await measure(hello, d.reference);
  const out = await measure(app.fetch, d.outpost, s);
  lines.push(
    `${s.padEnd(7)} reference ${ref.toFixed(1).padStart(7)} µs   Outpost ${out.toFixed(1).padStart(7)} µs   ` +
      `Outpost's own work ${(out - ref).toFixed(1).padStart(7)} µs per request ` +
      `(${(ref / out).toFixed(2)}× the reference's rate)`,
  );
}
const report =
  `${lines.join("\n")}\n(CPU time of ${N} sequential requests each in Node ${process.version}, ` +
  "D1 = in-process SQLite; the same statements on both sides)";
console.log(report);
writeFileSync(path.join(benchDir, "overhead.txt"), `${report}\n`);
