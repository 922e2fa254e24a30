// `npm run db:export -- --remote --output backup.sql` (or `--local`): a full export of the D1
// database although it holds FTS5 tables, which `wrangler d1 export` refuses (workers-sdk#6305,
// #9519). wrangler exports every ordinary table (schema and rows) by name; this adds what that
// leaves out: the indexes, the full-text tables and their triggers, and a rebuild of each full-text
// index from its table. Restore into an empty database with `wrangler d1 execute <db> --file`.
import { spawnSync } from "node:child_process";
import { appendFileSync, existsSync } from "node:fs";
import path from "node:path";

const root = path.resolve(import.meta.dirname, "..");
const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const where = args.includes("--remote") ? "--remote" : "--local";
const database = opt("--database", "DB");
const output = path.resolve(process.env.INIT_CWD ?? process.cwd(), opt("--output", "d1-export.sql"));
const wrangler = path.join(root, "node_modules", ".bin", "wrangler");
/** Another wrangler configuration (its local state is kept next to it). */
const config = opt("--config", null);
const withConfig = (argv) => (config ? [...argv, "--config", path.resolve(config)] : argv);

function run(argv) {
  const r = spawnSync(wrangler, withConfig(argv), { cwd: root, encoding: "utf8", maxBuffer: 1 << 28 });
  if (r.status !== 0) {
    process.stderr.write(r.stdout + r.stderr);
    process.exit(r.status ?? 1);
  }
  return r.stdout;
}

/** Rows of one query, through `wrangler d1 execute --json`. */
function query(sql) {
  const out = run(["d1", "execute", database, where, "--json", "--command", sql]);
  return JSON.parse(out.slice(out.indexOf("[")))[0].results;
}

const objects = query(
  "SELECT type, name, tbl_name AS tbl, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' " +
    "AND name NOT LIKE '_cf_%' ORDER BY rowid",
);
const virtual = objects.filter((o) => o.type === "table" && /^CREATE VIRTUAL TABLE/i.test(o.sql)).map((o) => o.name);
/** A full-text table, or one of the shadow tables FTS5 keeps for it (`<name>_data`, `_idx`...). */
const isFts = (name) => virtual.some((v) => name === v || name.startsWith(`${v}_`));
const tables = objects.filter((o) => o.type === "table" && !isFts(o.name)).map((o) => o.name);
if (tables.length === 0) throw new Error("export: no tables found");

run(["d1", "export", database, where, "--output", output, ...tables.flatMap((t) => ["--table", t])]);
if (!existsSync(output)) throw new Error(`export: wrangler wrote no ${output}`);

const rest = [
  ...objects.filter((o) => o.type === "index" && !isFts(o.tbl)).map((o) => o.sql),
  ...objects.filter((o) => o.type === "table" && virtual.includes(o.name)).map((o) => o.sql),
  ...objects.filter((o) => o.type === "trigger").map((o) => o.sql),
  ...virtual.map((v) => `INSERT INTO ${v} (${v}) VALUES ('rebuild')`),
];
appendFileSync(
  output,
  `\n-- Added by scripts/d1-export.mjs: indexes, full-text tables and triggers, rebuilt indexes.\n${rest
    .map((s) => `${s};`)
    .join("\n")}\n`,
);
console.log(
  `export: ${tables.length} tables, ${rest.length - virtual.length} indexes, full-text tables and triggers, ` +
    `${virtual.length} full-text rebuilds → ${path.relative(process.cwd(), output)}`,
);
