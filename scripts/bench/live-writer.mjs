// The live-data bench's writer, on its own worker thread (live-fanout.mjs starts it), so its
// requests do not wait behind the subscribers' frames in the receiving event loop.
// workerData = { createUrl, token, records, window, timeoutMs }; posts { created, failed, seconds }.
import { performance } from "node:perf_hooks";
import { parentPort, workerData } from "node:worker_threads";

const { createUrl, token, records, window: win, timeoutMs } = workerData;
const t0 = performance.now();
let next = 0;
let created = 0;
let failed = 0;
async function writer() {
  while (next < records && performance.now() - t0 < timeoutMs) {
    const i = next++;
    const res = await fetch(createUrl, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ text: `live ${i}` }),
    });
    await res.arrayBuffer();
    if (res.status === 201) created++;
    else failed++;
  }
}
await Promise.all(Array.from({ length: win }, writer));
parentPort.postMessage({ created, failed, seconds: (performance.now() - t0) / 1000 });
