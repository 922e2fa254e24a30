import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";

const root = path.resolve(import.meta.dirname, "..", "..");

/** `npm run client:types` as an app developer runs it: from their app's folder, with --prefix to the Outpost repo. */
function clientTypes(cwd: string, ...args: string[]) {
  const r = spawnSync("npm", ["--prefix", root, "run", "--silent", "client:types", "--", ...args], {
    cwd,
    encoding: "utf8",
  });
  if (r.status !== 0) throw new Error(`client:types failed: ${r.stdout}\n${r.stderr}`);
  return r;
}

describe("npm run client:types", () => {
  // A .js output imports in Node as it is.
  it("writes into the caller's folder by default and resolves --out from there", () => {
    const app = mkdtempSync(path.join(os.tmpdir(), "outpost-app-"));
    try {
      clientTypes(app);
      expect(existsSync(path.join(app, "outpost-types.ts"))).toBe(true);

      clientTypes(app, "--out", "src/generated/outpost-types.js");
      const js = path.join(app, "src", "generated", "outpost-types.js");
      expect(existsSync(js)).toBe(true);
      expect(readFileSync(path.join(app, "src", "generated", "outpost-types.d.ts"), "utf8")).toContain(
        "export type Collections",
      );
      const run = spawnSync(
        process.execPath,
        [
          "--input-type=module",
          "-e",
          `const m = await import(${JSON.stringify(js)}); console.log(JSON.stringify(m.defaults.notes));`,
        ],
        { encoding: "utf8" },
      );
      expect(run.stderr).toBe("");
      expect(JSON.parse(run.stdout)).toMatchObject({ pinned: false });
    } finally {
      rmSync(app, { recursive: true, force: true });
    }
  });
});
