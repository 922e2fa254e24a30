// "Runs on Hermes": the built SDK (dist/, as published), bundled into one script the way Metro
// would ship it, must compile with the Hermes compiler of React Native (hermes-compiler), without
// any Babel transform in between. Globals that React Native provides (fetch, WebSocket, timers)
// are not checked here.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { build } from "esbuild";

const dir = path.resolve(import.meta.dirname, "..");
const tmp = mkdtempSync(path.join(os.tmpdir(), "outpost-hermes-"));
try {
  const js = path.join(tmp, "bundle.js");
  await build({
    entryPoints: [path.join(dir, "dist", "index.js")],
    bundle: true,
    format: "iife",
    globalName: "Outpost",
    platform: "neutral",
    external: ["tus-js-client"],
    outfile: js,
    logLevel: "error",
  });
  const pkg = path.dirname(createRequire(import.meta.url).resolve("hermes-compiler/package.json"));
  const bin = path.join(pkg, "hermesc", process.platform === "darwin" ? "osx-bin" : "linux64-bin", "hermesc");
  const r = spawnSync(bin, ["-emit-binary", "-w", "-out", path.join(tmp, "bundle.hbc"), js], { encoding: "utf8" });
  if (r.status !== 0) {
    console.error(r.stdout, r.stderr);
    process.exit(1);
  }
  console.log("the SDK compiles with hermesc (Hermes bytecode)");
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
