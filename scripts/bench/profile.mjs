// CPU profile of the bundle under load: `node scripts/bench/profile.mjs <scenario> [seconds]`,
// scenario = get | list | create | health | chat (chat: BENCH_CHAT_SOCKETS sockets, default 100).
// Runs the deployed bundle on workerd (as `npm run bench` does) with the inspector open, loads it
// from a child process, records a V8 CPU profile of the Worker's isolate (the Worker and its
// Durable Objects) and writes it to .bench/profile-<scenario>.cpuprofile (open it in Chrome
// DevTools or VS Code). Prints the functions with the most self time and the bundle's modules by
// total time.
import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import WebSocket from "ws";
import { summarize } from "./profile-summary.mjs";
import { benchDir, buildWorker, readWranglerConfig, startOutpost } from "./runtime.mjs";

const scenario = process.argv[2] ?? "get";
const seconds = Number(process.argv[3] ?? 8);
const here = import.meta.dirname;
const INSPECTOR_PORT = 9329;
const SAMPLE_US = 200;

/** Runs a load child; `onStderr(line)` sees its progress lines (fanout.mjs says when it starts sending). */
function child(script, args, onStderr = () => {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [path.join(here, script), ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => {
      for (const line of String(d).split("\n")) if (line.trim()) onStderr(line.trim());
    });
    p.on("close", (code) => {
      try {
        resolve(JSON.parse(out.trim().split("\n").pop()));
      } catch {
        reject(new Error(`${script} exited ${code}: ${out.slice(-400)}`));
      }
    });
  });
}

/** A minimal CDP client over the inspector's WebSocket. */
async function inspect(workerName) {
  const targets = await (await fetch(`http://127.0.0.1:${INSPECTOR_PORT}/json`)).json();
  const target = targets.find((t) => t.title?.includes(workerName) || t.url?.includes(workerName)) ?? targets[0];
  const ws = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  let id = 0;
  const pending = new Map();
  ws.on("message", (d) => {
    const msg = JSON.parse(String(d));
    if (msg.id && pending.has(msg.id)) {
      pending.get(msg.id)(msg);
      pending.delete(msg.id);
    }
  });
  return {
    send: (method, params = {}) =>
      new Promise((resolve, reject) => {
        const n = ++id;
        pending.set(n, (m) => (m.error ? reject(new Error(`${method}: ${m.error.message}`)) : resolve(m.result)));
        ws.send(JSON.stringify({ id: n, method, params }));
      }),
    close: () => ws.close(),
  };
}

async function call(base, method, p, { token, body } = {}) {
  const h = { "cf-connecting-ip": "198.51.100.7" };
  if (token) h.authorization = `Bearer ${token}`;
  if (body !== undefined) h["content-type"] = "application/json";
  const res = await fetch(`${base}${p}`, {
    method,
    headers: h,
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  const json = await res.json().catch(() => null);
  if (res.status >= 300) throw new Error(`${method} ${p}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

mkdirSync(benchDir, { recursive: true });
const script = buildWorker();
const config = await readWranglerConfig();
const rt = await startOutpost(script, config, { inspectorPort: INSPECTOR_PORT });
try {
  const base = rt.url;
  const signup = await call(base, "POST", "/v1/auth/signup", {
    body: { email: `profile.${Date.now()}@example.com`, password: "profile password 1" },
  });
  const token = signup.session.accessToken;
  const auth = { authorization: `Bearer ${token}` };
  let load;
  if (scenario === "chat") {
    const n = Number(process.env.BENCH_CHAT_SOCKETS ?? 100);
    const members = [];
    for (let i = 0; i < n - 1; i++) members.push(await call(base, "POST", "/v1/auth/anonymous", { body: {} }));
    const room = await call(base, "POST", "/v1/rooms", {
      token,
      body: { kind: "group", name: "profile", memberIds: members.slice(0, 99).map((m) => m.user.id) },
    });
    for (const m of members.slice(99))
      await call(base, "POST", `/v1/rooms/${room.id}/members`, { token, body: { userId: m.user.id } });
    const wsBase = base.replace(/^http/, "ws");
    const file = path.join(benchDir, "profile-fanout.json");
    const urls = [token, ...members.map((m) => m.session.accessToken)].map(
      (t) => `${wsBase}/v1/rooms/${room.id}/ws?token=${encodeURIComponent(t)}`,
    );
    writeFileSync(
      file,
      JSON.stringify({
        label: "profile",
        urls,
        messages: Number(process.env.PROFILE_MESSAGES ?? (n >= 1000 ? 80 : 600)),
        window: 10,
        timeoutMs: 60_000,
      }),
    );
    // Only the messages are profiled, not the sockets opening (fanout.mjs prints when it starts sending).
    load = (start) => child("fanout.mjs", [file], (line) => line === "fanout: sending" && start());
  } else {
    let sc;
    if (scenario === "health") sc = { path: "/v1/health" };
    else if (scenario === "get") {
      const rec = await call(base, "POST", "/v1/collections/notes/records", {
        token,
        body: { title: "bench record", body: "x".repeat(200), tags: ["a", "b"] },
      });
      sc = { path: `/v1/collections/notes/records/${rec.id}`, headers: auth };
    } else if (scenario === "list") {
      for (let i = 0; i < 40; i++)
        await call(base, "POST", "/v1/collections/notes/records", {
          token,
          body: { title: `seed ${i}`, pinned: i % 2 === 0 },
        });
      sc = {
        path: `/v1/collections/notes/records?where=${encodeURIComponent(JSON.stringify({ pinned: true }))}&limit=20`,
        headers: auth,
      };
    } else if (scenario === "create") {
      sc = {
        path: "/v1/collections/notes/records",
        method: "POST",
        headers: { ...auth, "content-type": "application/json" },
        body: { title: "bench create", body: "y".repeat(200), pinned: false, tags: ["bench"] },
      };
    } else throw new Error(`unknown scenario ${scenario}`);
    load = (start) => {
      start();
      return child("load-http.mjs", [
        JSON.stringify({ connections: 10, duration: seconds, warmup: 1, ...sc, url: `${base}${sc.path}` }),
      ]);
    };
  }
  const cdp = await inspect(config.name);
  await cdp.send("Profiler.enable");
  await cdp.send("Profiler.setSamplingInterval", { interval: SAMPLE_US });
  const result = await load(() => void cdp.send("Profiler.start"));
  const { profile } = await cdp.send("Profiler.stop");
  cdp.close();
  const out = path.join(benchDir, `profile-${scenario}.cpuprofile`);
  writeFileSync(out, JSON.stringify(profile));
  console.log(`${scenario}: ${JSON.stringify(result)}\nprofile written to ${path.relative(process.cwd(), out)}\n`);
  console.log(summarize(profile, script, 2 * SAMPLE_US));
} finally {
  await rt.dispose();
}
process.exit(0);
