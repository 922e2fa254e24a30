// `npm run check:drift`: fails when generated files no longer match their sources.
// - migrations/: `drizzle-kit generate` must find nothing new (a schema or collection change
//   without its migration would otherwise reach D1 only on someone else's machine);
// - worker-configuration.d.ts: `wrangler types --check` (wrangler.toml changed without `npm run types`).
// Leaves the tree as it found it.
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";

const root = path.resolve(import.meta.dirname, "..");
const bin = (name) => path.join(root, "node_modules", ".bin", name);
const dir = path.join(root, "migrations");
const journal = path.join(dir, "meta", "_journal.json");
const listing = () => new Set(readdirSync(dir, { recursive: true }).map(String));
let failed = false;

const before = listing();
const journalBefore = readFileSync(journal, "utf8");
const gen = spawnSync(bin("drizzle-kit"), ["generate"], { cwd: root, encoding: "utf8" });
const added = [...listing()].filter((f) => !before.has(f));
for (const f of added) rmSync(path.join(dir, f), { force: true });
writeFileSync(journal, journalBefore);
if (gen.status !== 0) {
  process.stdout.write(gen.stdout + gen.stderr);
  console.error("drift: drizzle-kit generate failed");
  failed = true;
} else if (added.length > 0) {
  console.error(
    "drift: the schema (src/db/schema, src/app/collections.ts) has changes with no migration; " +
      `run \`npm run db:generate\` (it would write ${added.join(", ")})`,
  );
  failed = true;
} else {
  console.log("drift: migrations match the schema");
}

const types = spawnSync(bin("wrangler"), ["types", "--strict-vars=false", "--check"], { cwd: root, encoding: "utf8" });
if (types.status !== 0) {
  process.stdout.write(types.stdout + types.stderr);
  console.error("drift: worker-configuration.d.ts is stale; run `npm run types`");
  failed = true;
} else {
  console.log("drift: worker-configuration.d.ts matches wrangler.toml");
}
process.exit(failed ? 1 : 0);
