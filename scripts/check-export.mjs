// `npm run check:export` (CI): `npm run db:export` round-trips a local database that holds full-text
// tables: a post written locally comes back from the export, with its indexes and a working search.
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, symlinkSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { DatabaseSync } from "node:sqlite";

const root = path.resolve(import.meta.dirname, "..");
// A throwaway copy of the configuration: its local D1 lives there, not in the developer's .wrangler/.
const persist = mkdtempSync(path.join(os.tmpdir(), "outpost-export-"));
const config = path.join(persist, "wrangler.toml");
copyFileSync(path.join(root, "wrangler.toml"), config);
symlinkSync(path.join(root, "migrations"), path.join(persist, "migrations"));
const wrangler = path.join(root, "node_modules", ".bin", "wrangler");
const sh = (cmd, argv) => {
  const r = spawnSync(cmd, argv, { cwd: root, encoding: "utf8" });
  if (r.status !== 0) {
    process.stderr.write(r.stdout + r.stderr);
    process.exit(1);
  }
};
const id = `export-check-${Date.now()}`;
sh(wrangler, ["d1", "migrations", "apply", "DB", "--local", "--config", config]);
sh(wrangler, [
  "d1",
  "execute",
  "DB",
  "--local",
  "--config",
  config,
  "--command",
  `INSERT INTO users (id, email, email_verified, anonymous, created_at, updated_at) VALUES ('${id}', '${id}@example.com', 0, 0, 'x', 'x'); ` +
    `INSERT INTO app_posts (id, owner_id, created_at, updated_at, version, text) VALUES ('${id}', '${id}', 'x', 'x', 1, 'Crème brûlée ${id}')`,
]);
const out = path.join(persist, "export.sql");
sh(process.execPath, [path.join(root, "scripts", "d1-export.mjs"), "--local", "--config", config, "--output", out]);
const db = new DatabaseSync(":memory:");
db.exec(readFileSync(out, "utf8"));
const found = db.prepare("SELECT rowid FROM app_posts_fts WHERE app_posts_fts MATCH ?").all(`"creme" "${id}"`);
const indexes = db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'index'").get().n;
if (found.length !== 1 || indexes < 50) {
  console.error(`check:export: the restored export is incomplete (search found ${found.length}, ${indexes} indexes)`);
  process.exit(1);
}
console.log(`check:export: the export restores with ${indexes} indexes and a working full-text search`);
