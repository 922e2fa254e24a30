// `npm run build:check`: bundle the Worker like a deploy would (`wrangler deploy --dry-run`) and
// print its size; fails when the gzipped bundle exceeds the budget.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { ensureDocsAssets } from "./docs-assets.mjs";

const BUDGET_KIB = 250;
const root = path.resolve(import.meta.dirname, "..");
ensureDocsAssets();
const r = spawnSync(path.join(root, "node_modules", ".bin", "wrangler"), ["deploy", "--dry-run", "--outdir", "dist"], {
  cwd: root,
  encoding: "utf8",
});
if (r.status !== 0) {
  process.stdout.write(r.stdout);
  process.stderr.write(r.stderr);
  process.exit(r.status ?? 1);
}
const bytes = readFileSync(path.join(root, "dist", "index.js"));
const kib = (n) => (n / 1024).toFixed(1);
const gz = gzipSync(bytes, { level: 9 }).length;
console.log(`bundle: ${kib(bytes.length)} KiB raw, ${kib(gz)} KiB gzip (budget ${BUDGET_KIB} KiB gzip)`);
if (gz > BUDGET_KIB * 1024) {
  console.error(`bundle is over budget by ${kib(gz - BUDGET_KIB * 1024)} KiB`);
  process.exit(1);
}
