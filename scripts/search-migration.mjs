// `npm run db:generate` (after drizzle-kit): the full-text indexes of the collections' `searchable`
// fields, the triggers of their `field.count` counts, and the event triggers and after-hook
// listeners of the app's logic (src/features/logic/events-ddl.ts). drizzle-kit cannot express FTS5 tables and
// triggers, so this writes them as a custom migration whenever what the declarations want differs
// from the last one written (migrations/search-index.json). `--check` (check:drift) only says
// whether one is due.
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { allowTsImports } from "./ts-import.mjs";

const root = path.resolve(import.meta.dirname, "..");
const dir = path.join(root, "migrations");
const statePath = path.join(dir, "search-index.json");
const check = process.argv.includes("--check");

allowTsImports();
const ddl = await import(pathToFileURL(path.join(root, "src/features/collections/search-ddl.ts")).href);
const app = await import(pathToFileURL(path.join(root, "src/app/collections.ts")).href);
const MARK = Symbol.for("outpost.collection");
const metas = Object.values(app)
  .map((value) => (value && typeof value === "object" ? value[MARK] : undefined))
  .filter(Boolean);
const snake = (s) => s.replace(/[A-Z]/g, (m) => `_${m.toLowerCase()}`);
/** `<table>` (a full-text index) or `<table>.<column>` (a count) → its statements, as the declarations want them. */
const wanted = {};
for (const meta of metas) {
  if (meta.search)
    wanted[meta.search.table] = { sql: ddl.createSearchSql(meta.search), fill: ddl.rebuildSql(meta.search) };
  for (const c of meta.counts) {
    const spec = {
      collection: meta.name,
      table: `app_${meta.name}`,
      column: c.column,
      team: meta.scope === "team",
      childTable: `app_${c.of}`,
      childColumn: snake(c.by),
    };
    wanted[`${spec.table}.${spec.column}`] = { sql: ddl.createCountSql(spec), fill: ddl.recountSql(spec) };
  }
}
// The event triggers of every collection, of `users` and `files` (they write `events` rows while
// someone listens), and the `hook` listeners: the events the app declares after hooks for.
const { getTableColumns } = await import("drizzle-orm");
const events = await import(pathToFileURL(path.join(root, "src/features/logic/events-ddl.ts")).href);
const logic = await import(pathToFileURL(path.join(root, "src/app/logic.ts")).href);
const sources = events.eventSources(
  Object.values(app)
    .filter((value) => value && typeof value === "object" && value[MARK])
    .map((table) => ({ name: table[MARK].name, columns: Object.values(getTableColumns(table)).map((c) => c.name) })),
);
for (const s of sources) wanted[`${s.table}#events`] = { sql: events.createEventTriggersSql(s) };
const HOOKS = Symbol.for("outpost.hooks");
const hooked = Object.values(logic)
  .map((value) => (value && typeof value === "object" ? value[HOOKS] : undefined))
  .filter(Boolean)
  .flatMap((h) => Object.keys(h.after).map((k) => `${h.source}.${k}`))
  .sort();
wanted["event_listeners#hooks"] = { sql: events.hookListenersSql(hooked) };

/** The statements that remove what `key` made. */
const drop = (key) => {
  if (key === "event_listeners#hooks") return ["DELETE FROM event_listeners WHERE source = 'hook'"];
  if (key.endsWith("#events")) return events.dropEventTriggersSql(key.slice(0, -"#events".length));
  return key.includes(".") ? ddl.dropCountSql(...key.split(".")) : ddl.dropSearchSql(key);
};
const written = JSON.parse(readFileSync(statePath, "utf8").toString() || "{}");
const changed = [...new Set([...Object.keys(wanted), ...Object.keys(written)])]
  .sort()
  .filter((t) => JSON.stringify(wanted[t]?.sql ?? null) !== JSON.stringify(written[t] ?? null));

if (changed.length === 0) {
  console.log("search: the full-text indexes and counts match the declarations");
  process.exit(0);
}
if (check) {
  console.error(
    `search: the full-text indexes or counts of ${changed.join(", ")} changed; run \`npm run db:generate\``,
  );
  process.exit(1);
}
const statements = changed.flatMap((t) => [
  ...drop(t),
  ...(wanted[t] ? [...wanted[t].sql, ...(wanted[t].fill ? [wanted[t].fill] : [])] : []),
]);
// An empty custom migration, registered in drizzle's journal, then filled.
const before = new Set(readdirSync(dir));
const gen = spawnSync(
  path.join(root, "node_modules", ".bin", "drizzle-kit"),
  ["generate", "--custom", "--name", "search_index"],
  {
    cwd: root,
    encoding: "utf8",
  },
);
const file = readdirSync(dir).find((f) => f.endsWith(".sql") && !before.has(f));
if (gen.status !== 0 || !file) {
  process.stdout.write(gen.stdout + gen.stderr);
  throw new Error("search: drizzle-kit could not create the migration");
}
writeFileSync(
  path.join(dir, file),
  "-- Full-text indexes, counts (`field.count`), event triggers and after-hook listeners: written by scripts/search-migration.mjs.\n" +
    statements.map((s) => `${s};`).join("\n--> statement-breakpoint\n") +
    "\n",
);
const next = { ...written };
for (const t of changed) {
  if (wanted[t]) next[t] = wanted[t].sql;
  else delete next[t];
}
writeFileSync(statePath, `${JSON.stringify(next, null, 2)}\n`);
console.log(`search: wrote migrations/${file} for ${changed.join(", ")}`);
