// `npm run check:drift`: fails when generated files no longer match their sources.
// - migrations/: `drizzle-kit generate` must find nothing new (a schema or collection change
//   without its migration would otherwise reach D1 only on someone else's machine);
// - worker-configuration.d.ts: `wrangler types --check` (wrangler.toml changed without `npm run types`);
// - the full-text indexes of `searchable` fields: scripts/search-migration.mjs --check;
// - wrangler.toml's cron triggers match Outpost's own and the app's schedules: scripts/check-crons.mjs;
// - migrations are append-only: each committed one must match its SHA-256 in migrations/manifest.json,
//   and a new one must be listed there (`npm run check:drift -- --record` adds new files, never changes one).
// Leaves the tree as it found it (but for `--record`).
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
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

// Append-only migrations: the manifest pins every committed migration's bytes.
const manifestPath = path.join(dir, "manifest.json");
// Line endings normalised, so a Windows checkout (core.autocrlf) hashes like the committed file.
const sha256 = (file) =>
  createHash("sha256")
    .update(readFileSync(path.join(dir, file), "utf8").replaceAll("\r\n", "\n"))
    .digest("hex");
const manifest = existsSync(manifestPath) ? JSON.parse(readFileSync(manifestPath, "utf8")) : {};
const sqlFiles = readdirSync(dir)
  .filter((f) => f.endsWith(".sql"))
  .sort();
const problems = [];
for (const [file, hash] of Object.entries(manifest)) {
  if (!sqlFiles.includes(file))
    problems.push(`${file} is in the manifest but gone: committed migrations are never removed`);
  else if (sha256(file) !== hash)
    problems.push(
      `${file} changed since it was committed: never edit a migration, add a new one (npm run db:generate)`,
    );
}
const unlisted = sqlFiles.filter((f) => !(f in manifest));
if (process.argv.includes("--record") && unlisted.length) {
  for (const f of unlisted) manifest[f] = sha256(f);
  writeFileSync(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
  console.log(`drift: recorded ${unlisted.join(", ")} in migrations/manifest.json`);
} else {
  for (const f of unlisted)
    problems.push(`${f} is not in migrations/manifest.json: record it with \`npm run check:drift -- --record\``);
}
for (const p of problems) console.error(`drift: ${p}`);
if (problems.length) failed = true;
else console.log(`drift: ${sqlFiles.length} migrations match migrations/manifest.json`);

const types = spawnSync(bin("wrangler"), ["types", "--strict-vars=false", "--check"], { cwd: root, encoding: "utf8" });
if (types.status !== 0) {
  process.stdout.write(types.stdout + types.stderr);
  console.error("drift: worker-configuration.d.ts is stale; run `npm run types`");
  failed = true;
} else {
  console.log("drift: worker-configuration.d.ts matches wrangler.toml");
}
const search = spawnSync(process.execPath, [path.join(root, "scripts", "search-migration.mjs"), "--check"], {
  cwd: root,
  encoding: "utf8",
});
process.stdout.write(search.stdout);
if (search.status !== 0) {
  process.stderr.write(search.stderr);
  failed = true;
}
// wrangler.toml's cron triggers: Outpost's own plus the app's declared schedules (scripts/check-crons.mjs).
const crons = spawnSync(process.execPath, [path.join(root, "scripts", "check-crons.mjs")], {
  cwd: root,
  encoding: "utf8",
});
process.stdout.write(crons.stdout);
if (crons.status !== 0) {
  process.stderr.write(crons.stderr);
  failed = true;
}
process.exit(failed ? 1 : 0);
