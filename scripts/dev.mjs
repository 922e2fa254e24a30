// `npm run dev`: make .dev.vars from the example if missing, apply local D1 migrations, then
// start `wrangler dev` (extra arguments are passed through, e.g. `npm run dev -- --port 9000`).
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync } from "node:fs";
import path from "node:path";
import { ensureDocsAssets } from "./docs-assets.mjs";

const root = path.resolve(import.meta.dirname, "..");
const wrangler = path.join(root, "node_modules", ".bin", "wrangler");
const run = (args) => {
  const r = spawnSync(wrangler, args, { cwd: root, stdio: "inherit" });
  if (r.status !== 0) process.exit(r.status ?? 1);
};

if (!existsSync(path.join(root, ".dev.vars"))) {
  copyFileSync(path.join(root, ".dev.vars.example"), path.join(root, ".dev.vars"));
  console.log("Created .dev.vars from .dev.vars.example (local development secrets).");
}
ensureDocsAssets();
run(["d1", "migrations", "apply", "DB", "--local"]);
run(["dev", ...process.argv.slice(2)]);
