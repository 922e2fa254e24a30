// Chat fan-out load: opens N WebSocket clients, one of them sends M messages (a window of W in
// flight, each acknowledged by its own echo), and every client timestamps every message it gets.
// Runs as a child process (its own event loop); sender and receivers share one monotonic clock.
// Before the measured part, `warmup` messages (default: a tenth of `messages`, at least 20) go the
// same way unmeasured, so that neither side is timed while its code is still being compiled.
// Input: path of a JSON file { urls: string[], messages, warmup?, window, timeoutMs, label }.
// Output: one JSON line { sockets, messages, deliveries, expected, msgsPerSec, p50, p99, errors, ... }.
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import WebSocket from "ws";

const cfg = JSON.parse(readFileSync(process.argv[2], "utf8"));
const { urls, messages, window: win, timeoutMs } = cfg;
const warmup = cfg.warmup ?? Math.max(20, Math.round(messages / 10));
const N = urls.length;

const latencies = [];
const errors = {};
let deliveries = 0;
let lastFrameAt = 0;
let lastDelivery = 0;
const sentAt = new Map();
const onEcho = new Map();
const onWarmEcho = new Map();

function open(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    const timer = setTimeout(
      () => reject(new Error(`no ready frame from ${url.replace(/token=[^&]+/, "token=…")}`)),
      30_000,
    );
    ws.once("unexpected-response", (_req, res) => reject(new Error(`upgrade refused: HTTP ${res.statusCode}`)));
    ws.once("error", reject);
    ws.on("message", (data) => {
      const now = performance.now();
      lastFrameAt = now;
      let f;
      try {
        f = JSON.parse(data.toString());
      } catch {
        errors.unparsable = (errors.unparsable ?? 0) + 1;
        return;
      }
      if (f.type === "ready") {
        clearTimeout(timer);
        resolve(ws);
      } else if (f.type === "message") {
        const m = /^(bench|warm) (\d+)$/.exec(f.message?.text ?? "");
        if (!m) return;
        if (m[1] === "warm") {
          if (ws === sender) onWarmEcho.get(Number(m[2]))?.();
          return;
        }
        const i = Number(m[2]);
        const t0 = sentAt.get(i);
        if (t0 === undefined) return;
        latencies.push(now - t0);
        deliveries++;
        lastDelivery = now;
        if (ws === sender) onEcho.get(i)?.();
      } else if (f.type === "error") {
        errors[f.code ?? "error"] = (errors[f.code ?? "error"] ?? 0) + 1;
      }
    });
  });
}

let sender = null;
const sockets = [];
const tOpen = performance.now();
// Open sockets 50 at a time (a burst of 1,000 handshakes measures the accept queue, not fan-out).
for (let i = 0; i < N; i += 50) sockets.push(...(await Promise.all(urls.slice(i, i + 50).map(open))));
const openMs = performance.now() - tOpen;
sender = sockets[0];
/** Waits until no frame came for 500 ms (at most 30 s). */
async function quiet() {
  const until = performance.now() + 30_000;
  while (performance.now() - lastFrameAt < 500 && performance.now() < until)
    await new Promise((r) => setTimeout(r, 100));
}

/** Sends `count` messages `${prefix} i`, `win` in flight, each next one when an earlier one echoed back. */
function sendAll(count, prefix, echoes, deadline) {
  let next = 0;
  let acked = 0;
  return new Promise((resolve) => {
    const sendOne = () => {
      if (next >= count || performance.now() > deadline) return;
      const i = next++;
      echoes.set(i, () => {
        echoes.delete(i);
        acked++;
        if (acked === count) resolve(acked);
        else sendOne();
      });
      if (prefix === "bench") sentAt.set(i, performance.now());
      sender.send(JSON.stringify({ type: "send", clientId: `${prefix}-${process.pid}-${i}`, text: `${prefix} ${i}` }));
    };
    for (let k = 0; k < Math.min(win, count); k++) sendOne();
    setTimeout(() => resolve(acked), Math.max(0, deadline - performance.now()));
  });
}

// Joining sockets make the room announce presence to everyone already there; let that settle so it
// does not land in the measured window. Then the warm-up, and quiet again.
await quiet();
if (warmup > 0) {
  await sendAll(warmup, "warm", onWarmEcho, performance.now() + timeoutMs);
  await quiet();
}

const pct = (arr, p) => {
  if (!arr.length) return null;
  const s = Float64Array.from(arr).sort();
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

// The measured part starts here (scripts/bench/profile.mjs starts its CPU profile on this line).
process.stderr.write("fanout: sending\n");
const t0 = performance.now();
const acked = await sendAll(messages, "bench", onEcho, t0 + timeoutMs);
// Let the last fan-out land (receivers may trail the sender's own echo).
const expected = acked * N;
const settleUntil = performance.now() + 5_000;
while (deliveries < expected && performance.now() < settleUntil) await new Promise((r) => setTimeout(r, 20));
const elapsed = (lastDelivery - t0) / 1000;

for (const ws of sockets) ws.terminate();
process.stdout.write(
  `${JSON.stringify({
    label: cfg.label,
    sockets: N,
    messages: acked,
    deliveries,
    expected,
    warmup,
    openMs: Math.round(openMs),
    msgsPerSec: elapsed > 0 ? deliveries / elapsed : 0,
    p50: pct(latencies, 50),
    p99: pct(latencies, 99),
    errors,
  })}\n`,
);
process.exit(0);
