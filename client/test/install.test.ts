import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const root = path.resolve(import.meta.dirname, "..", "..");
const tmp = mkdtempSync(path.join(os.tmpdir(), "outpost-install-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function run(cmd: string, args: string[], cwd: string) {
  const r = spawnSync(cmd, args, { cwd, encoding: "utf8", env: { ...process.env, npm_config_loglevel: "error" } });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** A fresh app folder with its own package.json. */
function app(name: string): string {
  const dir = path.join(tmp, name);
  run("mkdir", ["-p", dir], tmp);
  writeFileSync(path.join(dir, "package.json"), JSON.stringify({ name, private: true, type: "module" }));
  return dir;
}

const useIt = `import { createClient, memoryStorage, OutpostError } from "@outpost/client";
const c = createClient({ url: "http://127.0.0.1:9", storage: memoryStorage() });
const error = new OutpostError(0, "timeout", "x").code;
console.log(JSON.stringify({ user: c.user, error, lists: typeof c.files.list }));
`;

describe("installing the SDK as an app does", () => {
  // …and the app imports it in Node and through a bundler.
  it("npm run client:pack makes a tarball that installs into a fresh app", () => {
    const out = path.join(tmp, "pack");
    run("mkdir", ["-p", out], tmp);
    run("npm", ["--prefix", root, "run", "--silent", "client:pack", "--", "--pack-destination", out], root);
    const tgz = readdirSync(out).find((f) => /^outpost-client-.*\.tgz$/.test(f));
    expect(tgz).toBeDefined();

    const dir = app("packed-app");
    run("npm", ["install", path.join(out, tgz!), "--prefer-offline", "--no-audit", "--no-fund"], dir);
    expect(existsSync(path.join(dir, "node_modules", "@outpost", "client", "dist", "index.d.ts"))).toBe(true);
    expect(existsSync(path.join(dir, "node_modules", "@outpost", "client", "src"))).toBe(false);
    writeFileSync(path.join(dir, "main.mjs"), useIt);
    expect(JSON.parse(run(process.execPath, ["main.mjs"], dir))).toEqual({
      user: null,
      error: "timeout",
      lists: "function",
    });

    // A bundler (esbuild for the browser, as a web app bundles it) finds the ESM entry and its dependency.
    const esbuild = path.join(root, "client", "node_modules", "esbuild", "bin", "esbuild");
    run(esbuild, ["main.mjs", "--bundle", "--platform=browser", "--format=esm", "--outfile=bundle.mjs"], dir);
    expect(JSON.parse(run(process.execPath, ["bundle.mjs"], dir)).error).toBe("timeout");
  });

  it("installing the folder (as a copy, the way Metro needs it) builds dist/ through prepare", () => {
    // The SDK's folder as a fresh checkout has it: sources, no dist/ (its dev tools linked, not reinstalled).
    const src = path.join(tmp, "checkout", "client");
    run("mkdir", ["-p", src], tmp);
    for (const f of ["package.json", "README.md", "tsconfig.json", "tsconfig.build.json", "src"])
      cpSync(path.join(root, "client", f), path.join(src, f), { recursive: true });
    symlinkSync(path.join(root, "client", "node_modules"), path.join(src, "node_modules"));
    const dir = app("folder-app");
    run("npm", ["install", "--install-links", src, "--prefer-offline", "--no-audit", "--no-fund"], dir);
    writeFileSync(path.join(dir, "main.mjs"), useIt);
    expect(JSON.parse(run(process.execPath, ["main.mjs"], dir)).user).toBeNull();
  });
});
