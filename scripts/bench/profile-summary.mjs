// Summary of a V8 CPU profile of an esbuild bundle (scripts/bench/profile.mjs, overhead.mjs):
// self time per function and total time per bundled module, found by esbuild's `// path` markers.
import { readFileSync } from "node:fs";

/** Self and total time per function, and total per bundle module (esbuild's `// src/…` markers). */
/**
 * `capUs`: a sample stands for at most this much time. On a busy machine a sample that comes long
 * after the previous one mostly measures the thread waiting to be scheduled, which would land on
 * whatever function happened to run; capping attributes CPU, not waiting.
 */
export function summarize(profile, script, capUs = Number.POSITIVE_INFINITY) {
  const base = script.split("/").pop();
  const isBundle = (url) => url.endsWith(`/${base}`) || url === base;
  const lines = readFileSync(script, "utf8").split("\n");
  const moduleAt = [];
  let current = "(bundle prelude)";
  for (let i = 0; i < lines.length; i++) {
    const m = /^\/\/ (?:\.\.\/)*(node_modules\/.+|src\/.+|scripts\/.+)$/.exec(lines[i]);
    if (m) current = m[1].replace(/^node_modules\/(\.pnpm\/)?/, "").replace(/\/dist\/.*|\/index\.(m?js|ts)$/, "");
    moduleAt[i] = current;
  }
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const time = new Map();
  for (let i = 0; i < profile.samples.length; i++)
    time.set(profile.samples[i], (time.get(profile.samples[i]) ?? 0) + Math.min(capUs, profile.timeDeltas[i] ?? 0));
  const label = (n) => {
    const f = n.callFrame;
    const where = isBundle(f.url) && f.lineNumber >= 0 ? (moduleAt[f.lineNumber] ?? "?") : f.url || "(native)";
    return `${f.functionName || "(anonymous)"} [${where}${f.lineNumber >= 0 ? `:${f.lineNumber + 1}` : ""}]`;
  };
  const self = new Map();
  const modules = new Map();
  let total = 0;
  let idle = 0;
  for (const [id, t] of time) {
    const n = byId.get(id);
    total += t;
    if (n.callFrame.functionName === "(idle)") idle += t;
    self.set(label(n), (self.get(label(n)) ?? 0) + t);
    const seen = new Set();
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
      const f = byId.get(cur).callFrame;
      if (!isBundle(f.url) || f.lineNumber < 0) continue;
      const mod = moduleAt[f.lineNumber] ?? "?";
      if (seen.has(mod)) continue;
      seen.add(mod);
      modules.set(mod, (modules.get(mod) ?? 0) + t);
    }
  }
  const top = (m, k) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, k)
      .map(
        ([name, t]) =>
          `${(t / 1000).toFixed(1).padStart(9)} ms ` +
          `${((100 * t) / (total - idle || 1)).toFixed(1).padStart(5)}%  ${name}`,
      )
      .join("\n");
  const capped = Number.isFinite(capUs) ? ` (each sample counted for at most ${capUs} µs)` : "";
  return (
    `busy ${((total - idle) / 1000).toFixed(0)} ms of ${(total / 1000).toFixed(0)} ms sampled${capped}\n\n` +
    `self time (top 30; % of busy):\n${top(self, 30)}\n\n` +
    `bundle modules by total time (a module counts once per sample):\n${top(modules, 25)}`
  );
}
