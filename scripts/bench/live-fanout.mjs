// Live-data fan-out load: opens N subscription sockets to one collection, then one writer creates
// M records over HTTP (W requests in flight); every socket timestamps every record it gets.
// Latency is from the record's `createdAt` (the server's clock, taken just before the write's D1
// batch commits; same machine, same clock) to the delivery on each socket. Sockets ping every 20 s,
// as an app does. Runs as a child process (its own event loop).
//
// Input: path of a JSON file { urls: string[], createUrl, token, records, window, timeoutMs }.
// Output: a first JSON line with the fan-out figures once the records are delivered; then the
// sockets stay open (the parent measures the create route with them attached) and keep counting
// frames until "stop" arrives on stdin; then a second JSON line { framesWhileHeld } and exit.
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { Worker } from "node:worker_threads";
import WebSocket from "ws";

const cfg = JSON.parse(readFileSync(process.argv[2], "utf8"));
const { urls, createUrl, token, records, window: win, timeoutMs } = cfg;
const N = urls.length;

/** Milliseconds from each record's createdAt to its delivery, per delivery. */
const latencies = [];
const errors = {};
let deliveries = 0;
let lastDelivery = 0;
let framesWhileHeld = 0;
let holding = false;

function open(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    const timer = setTimeout(() => reject(new Error("no ready frame within 30 s")), 30_000);
    ws.once("unexpected-response", (_req, res) => reject(new Error(`upgrade refused: HTTP ${res.statusCode}`)));
    ws.once("error", reject);
    ws.on("message", (data) => {
      const now = performance.now();
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
      } else if (f.type === "change") {
        if (holding) {
          framesWhileHeld++;
          return;
        }
        if (!/^live \d+$/.test(f.item?.text ?? "")) return;
        latencies.push(Math.max(0, Date.now() - Date.parse(f.item.createdAt)));
        deliveries++;
        lastDelivery = now;
      } else if (f.type === "error") {
        errors[f.code ?? "error"] = (errors[f.code ?? "error"] ?? 0) + 1;
      }
    });
    ws.on("close", (code) => {
      if (code !== 1000 && code !== 1005) errors[`close ${code}`] = (errors[`close ${code}`] ?? 0) + 1;
    });
  });
}

const sockets = [];
const tOpen = performance.now();
// 50 handshakes at a time (a burst of 1,000 measures the accept queue, not the fan-out).
for (let i = 0; i < N; i += 50) sockets.push(...(await Promise.all(urls.slice(i, i + 50).map(open))));
const openMs = performance.now() - tOpen;
const pinger = setInterval(() => {
  for (const ws of sockets) ws.send('{"type":"ping"}');
}, 20_000);

const pct = (arr, p) => {
  if (!arr.length) return null;
  const s = Float64Array.from(arr).sort();
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

// One writer, `win` creates in flight, on its own thread.
const t0 = performance.now();
const {
  created,
  failed,
  seconds: writeSec,
} = await new Promise((resolve, reject) => {
  const w = new Worker(new URL("./live-writer.mjs", import.meta.url), {
    workerData: { createUrl, token, records, window: win, timeoutMs },
  });
  w.once("message", resolve);
  w.once("error", reject);
});
// Let the fan-out finish (receivers trail the writer).
const expected = created * N;
const settleUntil = performance.now() + 15_000;
while (deliveries < expected && performance.now() < settleUntil) await new Promise((r) => setTimeout(r, 20));

const elapsed = (lastDelivery - t0) / 1000;
process.stdout.write(
  `${JSON.stringify({
    sockets: N,
    records: created,
    failedWrites: failed,
    deliveries,
    expected,
    openMs: Math.round(openMs),
    writeSec,
    recordsPerSec: elapsed > 0 ? deliveries / N / elapsed : 0,
    deliveriesPerSec: elapsed > 0 ? deliveries / elapsed : 0,
    p50: pct(latencies, 50),
    p99: pct(latencies, 99),
    errors,
  })}\n`,
);

// Hold the sockets for the parent's measurement, counting what they receive.
holding = true;
process.stdin.setEncoding("utf8");
process.stdin.on("data", (d) => {
  if (!String(d).includes("stop")) return;
  clearInterval(pinger);
  for (const ws of sockets) ws.terminate();
  process.stdout.write(`${JSON.stringify({ framesWhileHeld, errors })}\n`);
  process.exit(0);
});
