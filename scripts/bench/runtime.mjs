// The benchmark runtime: the deployed bundle on workerd through miniflare's programmatic API (no
// `wrangler dev` proxy), with bindings read from wrangler.toml, and the process helpers (workerd
// pid, memory) the scenarios need.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { convertV4MiniflareOptions, Log, LogLevel, Miniflare } from "miniflare";

export const root = path.resolve(import.meta.dirname, "..", "..");
export const benchDir = path.join(root, ".bench");

/** Secrets for the bench only (never deployed). */
export const BENCH_SECRETS = {
  JWT_SECRET: "bench-only-jwt-secret-0123456789abcdef0123456789",
  SERVICE_KEY: "bench-only-service-key-0123456789",
};

/**
 * Outside services point at a closed local port in the bench: nothing leaves the machine (a push
 * a scenario triggers fails fast and is retried by the queue, off the measured path).
 */
export const BENCH_OFFLINE = {
  FCM_BASE_URL: "http://127.0.0.1:9/fcm",
  FCM_TOKEN_URL: "http://127.0.0.1:9/fcm/token",
  APNS_BASE_URL: "http://127.0.0.1:9/apns",
  EXPO_PUSH_URL: "http://127.0.0.1:9/expo/push/send",
  MAIL_PROVIDER_URL: "",
  APPLE_JWKS_URL: "http://127.0.0.1:9/apple/jwks",
  GOOGLE_JWKS_URL: "http://127.0.0.1:9/google/jwks",
};

/** `vars` with each outside service on the internet pointed at BENCH_OFFLINE (a caller's local stand-in stays). */
function offline(vars) {
  const out = { ...vars };
  for (const [k, v] of Object.entries(BENCH_OFFLINE))
    if (/^https?:\/\/(?!127\.0\.0\.1|localhost)/.test(String(out[k] ?? ""))) out[k] = v;
  return out;
}

/** Rate limits would throttle a benchmark: every limiter gets this budget per period in the bench. */
export const BENCH_RATE_LIMIT = 1_000_000_000;

/**
 * Bundles the Worker like a deploy does; returns the path of the entry module. `BENCH_NO_MINIFY=1`
 * keeps names readable (for `profile.mjs`; the figures of `npm run bench` come from the minified bundle).
 * `inRuntime`: the Worker with the bare handlers of in-runtime-entry.ts around it.
 */
export function buildWorker({ inRuntime = false } = {}) {
  const outdir = path.join(benchDir, inRuntime ? "dist-in-runtime" : "dist");
  const r = spawnSync(
    path.join(root, "node_modules", ".bin", "wrangler"),
    [
      "deploy",
      ...(inRuntime ? [path.join(import.meta.dirname, "in-runtime-entry.ts")] : []),
      "--dry-run",
      "--outdir",
      outdir,
      ...(process.env.BENCH_NO_MINIFY === "1" ? ["--minify=false"] : []),
    ],
    { cwd: root, encoding: "utf8" },
  );
  if (r.status !== 0) {
    process.stdout.write(r.stdout);
    process.stderr.write(r.stderr);
    throw new Error(`wrangler deploy --dry-run failed (exit ${r.status})`);
  }
  return path.join(outdir, inRuntime ? "in-runtime-entry.js" : "index.js");
}

/** wrangler.toml, parsed by wrangler itself. */
export async function readWranglerConfig() {
  const { unstable_readConfig } = await import("wrangler");
  return unstable_readConfig({ config: path.join(root, "wrangler.toml") });
}

/** PIDs of workerd processes that are children of this Node process. */
export function workerdChildren() {
  const pids = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      // pid (comm) state ppid ...
      const m = /^\d+ \((.*)\) \S+ (\d+)/.exec(stat);
      if (m?.[1].startsWith("workerd") && Number(m[2]) === process.pid) pids.push(Number(d));
    } catch {
      // process went away
    }
  }
  return pids;
}

/** VmRSS / VmHWM of a process in KiB (null when it is gone). */
export function memoryOf(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/status`, "utf8");
    const kib = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, "m").exec(s)?.[1] ?? NaN);
    return { rssKiB: kib("VmRSS"), hwmKiB: kib("VmHWM") };
  } catch {
    return null;
  }
}

/** Samples a process's RSS every `everyMs` until stopped; returns the peak seen. */
export function sampleRss(pid, everyMs = 20) {
  let peak = memoryOf(pid)?.rssKiB ?? 0;
  const start = peak;
  const t = setInterval(() => {
    const m = memoryOf(pid);
    if (m && m.rssKiB > peak) peak = m.rssKiB;
  }, everyMs);
  return {
    stop() {
      clearInterval(t);
      const m = memoryOf(pid);
      if (m && m.rssKiB > peak) peak = m.rssKiB;
      return { startKiB: start, peakKiB: peak, hwmKiB: m?.hwmKiB ?? NaN };
    },
  };
}

/**
 * Starts a Miniflare instance and returns it with its URL, the pid of its workerd process, and
 * `readyMs`: from the constructor to the runtime answering (workerd started, the script loaded
 * and its global scope run).
 */
async function startMiniflare(options) {
  const before = new Set(workerdChildren());
  const t0 = performance.now();
  // miniflare 5 takes a new options shape; the classic (v4) one is converted by miniflare itself.
  const mf = new Miniflare(
    convertV4MiniflareOptions({ host: "127.0.0.1", port: 0, log: new Log(LogLevel.WARN), cf: false, ...options }),
  );
  const url = await mf.ready;
  const readyMs = performance.now() - t0;
  const pid = workerdChildren().find((p) => !before.has(p)) ?? null;
  return { mf, url: url.href.replace(/\/$/, ""), pid, readyMs };
}

/**
 * The statements Outpost's one-query routes run (drizzle's SQL, captured from the query-budget
 * test's counting binding), for the reference routes of the hello-world Worker: the same Worker
 * doing exactly the D1 work of GET record, list and create, and nothing else.
 */
// In a JSON file so that the bench's in-runtime entry (in-runtime-entry.ts, bundled for the Worker)
// runs the very same statements. teamList: the membership check and the team index in one statement.
export const REFERENCE_SQL = JSON.parse(readFileSync(path.join(import.meta.dirname, "reference-sql.json"), "utf8"));

/**
 * The ceiling: a bare hello-world Worker on the same runtime. Reference routes add D1 work only:
 * `/d1` one `SELECT 1` (what the local D1 simulation costs by itself), `/get`, `/list`, `/teamlist` and
 * `/create` the very statements of Outpost's GET record, list and create (`REFERENCE_SQL`; the
 * caller applies Outpost's migrations to this Worker's D1 and seeds it), with a JSON answer.
 * Each runs in a D1 session (`withSession`) and answers its bookmark in `Outpost-Bookmark`, as
 * API.md's read-replica convention makes any Worker serving it do; `/d1-plain` is `/d1` without a
 * session (what the Sessions API itself costs).
 */
export async function startHelloWorld(compatibilityDate) {
  return startMiniflare({
    workers: [
      {
        name: "hello",
        modules: true,
        script: `const SQL = ${JSON.stringify(REFERENCE_SQL)};
export default {
  async fetch(req, env) {
    const url = new URL(req.url);
    const q = (k) => url.searchParams.get(k);
    if (url.pathname === "/d1-plain") {
      await env.DB.prepare("SELECT 1").first();
      return new Response("Hello, world!", { headers: { "content-type": "text/plain" } });
    }
    const db = env.DB.withSession(req.headers.get("outpost-bookmark") ?? "first-unconstrained");
    const json = (body, status = 200) => {
      const res = Response.json(body, { status });
      const bookmark = db.getBookmark();
      if (bookmark) res.headers.set("Outpost-Bookmark", bookmark);
      return res;
    };
    switch (url.pathname) {
      case "/d1":
        await db.prepare("SELECT 1").first();
        return json({ status: "ok" });
      case "/get":
        return json(await db.prepare(SQL.get).bind(q("id"), q("owner")).first());
      case "/list": {
        const { results } = await db.prepare(SQL.list).bind(q("owner"), 1, 21).all();
        return json({ items: results.slice(0, 20), nextCursor: null });
      }
      case "/teamlist": {
        const { results } = await db.prepare(SQL.teamList).bind(q("user"), q("team"), 21).all();
        return json({ items: results.slice(0, 20), nextCursor: null });
      }
      case "/create": {
        const body = await req.json();
        const owner = q("owner");
        const id = crypto.randomUUID();
        const now = new Date().toISOString();
        const [rec] = await db.batch([
          db.prepare(SQL.createRecord).bind(
            id, owner, now, now, 1, body.title, body.body ?? "", body.pinned ? 1 : 0,
            JSON.stringify(body.tags ?? []), owner,
          ),
          db.prepare(SQL.createChange).bind(null, "notes", id, owner, 1, 0, now, owner),
        ]);
        return json(rec.results[0], 201);
      }
    }
    return new Response("Hello, world!", { headers: { "content-type": "text/plain" } });
  },
};`,
        compatibilityDate,
        d1Databases: { DB: "hello" },
      },
    ],
  });
}

/**
 * The platform's own limits for the socket rows: a Worker with bare SQLite-backed Durable Objects
 * and none of Outpost's code. `Room` (chat's reference) accepts hibernating sockets with no auth and,
 * per `send` frame, numbers the message, inserts one row into its SQLite (`?store=1`; else in memory
 * only), serialises one frame once and sends it to every socket. `Hub` (live data's reference)
 * holds subscription sockets; `POST /live/create` runs a 2-insert D1 batch (the record and a change
 * row), answers, then calls the hub, which sends one frame (built once) to every socket.
 * Room and hub names come from `?name=`; the frames are Outpost's (`ready`, `message`, `change`), with
 * ids as long as Outpost's.
 */
export async function startBareReference(compatibilityDate) {
  const rt = await startMiniflare({
    workers: [
      {
        name: "bare",
        modules: true,
        script: `import { DurableObject } from "cloudflare:workers";
// Ids as long as Outpost's (UUIDs), so the frames weigh what Outpost's weigh.
const ROOM_ID = "0193a5c2-7a10-7000-8000-00000000b0a1";
const USER_ID = "0193a5c2-7a10-7000-8000-00000000b0a2";
class Sockets extends DurableObject {
  list = null;
  open(ready) {
    const [client, server] = Object.values(new WebSocketPair());
    this.ctx.acceptWebSocket(server);
    this.list = null;
    server.send(JSON.stringify(ready));
    return new Response(null, { status: 101, webSocket: client });
  }
  sockets() {
    return (this.list ??= this.ctx.getWebSockets());
  }
  broadcast(text) {
    for (const ws of this.sockets()) {
      try { ws.send(text); } catch {}
    }
  }
  async webSocketClose(ws, code) {
    this.list = null;
    try { ws.close(code === 1005 || code === 1006 ? 1000 : code, "closed"); } catch {}
  }
  async webSocketError() {
    this.list = null;
  }
}
export class Room extends Sockets {
  constructor(ctx, env) {
    super(ctx, env);
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS messages (seq INTEGER PRIMARY KEY, id TEXT NOT NULL, " +
      "client_id TEXT NOT NULL, sender_id TEXT NOT NULL, text TEXT, created_at TEXT NOT NULL)");
    this.seq = ctx.storage.sql.exec("SELECT coalesce(max(seq), 0) AS s FROM messages").one().s;
    this.store = ctx.storage.kv.get("store") ?? false;
  }
  async fetch(req) {
    if (new URL(req.url).searchParams.get("store") === "1" && !this.store) {
      this.store = true;
      this.ctx.storage.kv.put("store", true);
    }
    return this.open({ type: "ready", lastSeq: this.seq, online: [] });
  }
  async webSocketMessage(ws, data) {
    let f;
    try { f = JSON.parse(data); } catch { f = null; }
    if (f?.type !== "send" || typeof f.clientId !== "string") {
      ws.send(JSON.stringify({ type: "error", code: "validation_failed", message: "unknown frame" }));
      return;
    }
    const message = { id: crypto.randomUUID(), roomId: ROOM_ID, seq: ++this.seq, clientId: f.clientId, senderId: USER_ID,
      text: f.text ?? null, fileId: null, createdAt: new Date().toISOString() };
    if (this.store)
      this.ctx.storage.sql.exec("INSERT INTO messages (seq, id, client_id, sender_id, text, created_at) " +
        "VALUES (?, ?, ?, ?, ?, ?)", message.seq, message.id, message.clientId, message.senderId, message.text,
        message.createdAt);
    this.broadcast(JSON.stringify({ type: "message", message }));
  }
}
export class Hub extends Sockets {
  async fetch() {
    return this.open({ type: "ready", cursor: "bare" });
  }
  async changed(item, seq) {
    this.broadcast(JSON.stringify({ type: "change", cursor: String(seq), item }));
  }
}
export default {
  async fetch(req, env, ctx) {
    const url = new URL(req.url);
    const name = url.searchParams.get("name") ?? "bench";
    if (url.pathname === "/room") return env.ROOM.get(env.ROOM.idFromName(name)).fetch(req);
    const hub = env.HUB.get(env.HUB.idFromName(name));
    if (url.pathname === "/live") return hub.fetch(req);
    if (url.pathname === "/live/create" && req.method === "POST") {
      const body = await req.json();
      const now = new Date().toISOString();
      const item = { id: crypto.randomUUID(), ownerId: USER_ID, createdAt: now, updatedAt: now, version: 1,
        text: String(body.text ?? "") };
      const [, change] = await env.DB.batch([
        env.DB.prepare("INSERT INTO posts (id, owner_id, created_at, updated_at, version, text) " +
          "VALUES (?, ?, ?, ?, 1, ?)")
          .bind(item.id, item.ownerId, now, now, item.text),
        env.DB.prepare("INSERT INTO changes (record_id, changed_at) VALUES (?, ?) RETURNING seq").bind(item.id, now),
      ]);
      ctx.waitUntil(hub.changed(item, change.results[0].seq));
      return Response.json(item, { status: 201 });
    }
    return new Response("not found", { status: 404 });
  },
};`,
        compatibilityDate,
        d1Databases: { DB: "bare" },
        durableObjects: { ROOM: { className: "Room", useSQLite: true }, HUB: { className: "Hub", useSQLite: true } },
      },
    ],
  });
  const db = await rt.mf.getD1Database("DB");
  await db.batch([
    db.prepare(
      "CREATE TABLE posts (id TEXT PRIMARY KEY, owner_id TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, " +
        "version INTEGER NOT NULL, text TEXT NOT NULL)",
    ),
    db.prepare(
      "CREATE TABLE changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, record_id TEXT NOT NULL, changed_at TEXT)",
    ),
  ]);
  return rt;
}

/** Applies the migrations in order to the runtime's `DB`, the way `wrangler d1 migrations apply` does. */
export async function applyMigrations(mf, config) {
  const { unstable_splitSqlQuery } = await import("wrangler");
  const db = await mf.getD1Database("DB");
  const dir = path.join(root, config.d1_databases[0].migrations_dir ?? "migrations");
  for (const f of readdirSync(dir)
    .filter((f) => f.endsWith(".sql"))
    .sort()) {
    const sql = readFileSync(path.join(dir, f), "utf8");
    const statements = unstable_splitSqlQuery(sql).filter((s) => s.trim());
    await db.batch(statements.map((s) => db.prepare(s)));
  }
  return db;
}

/**
 * Outpost's bundle with the bindings of wrangler.toml: D1, R2, Durable Objects (SQLite), the
 * Queue and its consumer, and the rate limiters (with `BENCH_RATE_LIMIT` instead of the
 * production budget). Storage lives in a fresh temp directory; migrations are applied unless
 * `migrate` is false (the cold-start rows time a bare start). `realLimits`: names of limiters that keep
 * their production budget (a test of the 429 path). `inspectorPort` opens workerd's
 * inspector (Chrome DevTools protocol) for profiling (scripts/bench/profile.mjs).
 */
export async function startOutpost(scriptPath, config, { migrate = true, inspectorPort, realLimits = [] } = {}) {
  const persistDir = mkdtempSync(path.join(os.tmpdir(), "outpost-bench-"));
  const consumers = Object.fromEntries(
    (config.queues?.consumers ?? []).map((c) => [
      c.queue,
      {
        maxBatchSize: c.max_batch_size,
        maxBatchTimeout: c.max_batch_timeout,
        maxRetries: c.max_retries,
        ...(c.dead_letter_queue ? { deadLetterQueue: c.dead_letter_queue } : {}),
      },
    ]),
  );
  const rt = await startMiniflare({
    ...(inspectorPort ? { inspectorPort } : {}),
    resourcePersistencePath: persistDir,
    workers: [
      {
        name: config.name,
        modules: true,
        scriptPath,
        compatibilityDate: config.compatibility_date,
        compatibilityFlags: config.compatibility_flags ?? [],
        bindings: { ...offline(config.vars), ...BENCH_SECRETS },
        d1Databases: Object.fromEntries(config.d1_databases.map((d) => [d.binding, d.database_id])),
        r2Buckets: Object.fromEntries(config.r2_buckets.map((b) => [b.binding, b.bucket_name])),
        durableObjects: Object.fromEntries(
          config.durable_objects.bindings.map((b) => [b.name, { className: b.class_name, useSQLite: true }]),
        ),
        queueProducers: Object.fromEntries(
          (config.queues?.producers ?? []).map((p) => [p.binding, { queueName: p.queue }]),
        ),
        queueConsumers: consumers,
        ...(config.images ? { images: { binding: config.images.binding } } : {}),
        ratelimits: Object.fromEntries(
          (config.ratelimits ?? []).map((r) => [
            r.name,
            {
              namespace_id: r.namespace_id,
              simple: {
                limit: realLimits.includes(r.name) ? r.simple.limit : BENCH_RATE_LIMIT,
                period: r.simple.period,
              },
            },
          ]),
        ),
      },
    ],
  });
  if (migrate) await applyMigrations(rt.mf, config);
  return {
    ...rt,
    async dispose() {
      await rt.mf.dispose();
      rmSync(persistDir, { recursive: true, force: true });
    },
  };
}
