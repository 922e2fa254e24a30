// One resumable upload with tus-js-client (its Node build, over http), run as a child process.
// Input: one JSON argument { endpoint, token, sizeBytes, chunkBytes }.
// Output: one JSON line { ok, bytes, seconds, mibPerSec, fileId, patches, patchP50, patchP99, error? }.
import { randomFillSync } from "node:crypto";
import { performance } from "node:perf_hooks";
import tus from "tus-js-client";

const { endpoint, token, sizeBytes, chunkBytes } = JSON.parse(process.argv[2]);
// Random bytes: nothing along the way can compress or deduplicate them.
const data = randomFillSync(Buffer.allocUnsafe(sizeBytes));
const patchMs = [];
let patchStart = 0;

const t0 = performance.now();
const result = await new Promise((resolve) => {
  const upload = new tus.Upload(data, {
    endpoint,
    chunkSize: chunkBytes,
    retryDelays: [],
    storeFingerprintForResuming: false,
    headers: { authorization: `Bearer ${token}` },
    metadata: { filename: "bench.bin", filetype: "application/octet-stream", visibility: "private" },
    onBeforeRequest(req) {
      if (req.getMethod() === "PATCH") patchStart = performance.now();
    },
    onAfterResponse(req) {
      if (req.getMethod() === "PATCH") patchMs.push(performance.now() - patchStart);
    },
    onSuccess(payload) {
      resolve({ ok: true, fileId: payload?.lastResponse?.getHeader("Outpost-File-Id") ?? null });
    },
    onError(err) {
      resolve({ ok: false, error: String(err?.message ?? err).slice(0, 300) });
    },
  });
  upload.start();
});
const seconds = (performance.now() - t0) / 1000;
const sorted = [...patchMs].sort((a, b) => a - b);
const pct = (p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : null);
process.stdout.write(
  `${JSON.stringify({
    ...result,
    bytes: sizeBytes,
    seconds,
    mibPerSec: sizeBytes / 2 ** 20 / seconds,
    patches: patchMs.length,
    patchP50: pct(50),
    patchP99: pct(99),
  })}\n`,
);
