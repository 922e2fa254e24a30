// `npm run check:drift` (through scripts/check-drift.mjs): wrangler.toml's `[triggers] crons` must be
// Outpost's own housekeeping cron plus every schedule src/app/schedules.ts declares, nothing else: a
// declared schedule missing from the triggers would never run, an extra trigger would wake the Worker for nothing.
import { readFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { allowTsImports } from "./ts-import.mjs";

const root = path.resolve(import.meta.dirname, "..");
allowTsImports();
const { compareCrons, isSchedule, wantedCrons } = await import(
  pathToFileURL(path.join(root, "src/features/logic/schedule.ts")).href
);
const app = await import(pathToFileURL(path.join(root, "src/app/schedules.ts")).href);

// The `crons = [...]` line of the [triggers] table (one line, as wrangler.toml writes it).
const toml = readFileSync(path.join(root, "wrangler.toml"), "utf8");
const triggers = toml.split(/^\[/m).find((t) => t.startsWith("triggers]"));
const line = triggers?.match(/^crons\s*=\s*\[(.*)\]\s*$/m);
if (!line) {
  console.error("crons: wrangler.toml has no `[triggers] crons = [...]` line");
  process.exit(1);
}
const configured = [...line[1].matchAll(/"([^"]*)"/g)].map((m) => m[1]);
const wanted = wantedCrons(Object.values(app).filter(isSchedule));
const { missing, extra } = compareCrons(wanted, configured);
for (const c of missing)
  console.error(`crons: "${c}" is declared (src/app/schedules.ts or Outpost's own) but not in wrangler.toml crons`);
for (const c of extra)
  console.error(`crons: "${c}" is in wrangler.toml crons but nothing declares it (src/app/schedules.ts)`);
if (missing.length || extra.length) {
  console.error(`crons: set wrangler.toml's [triggers] to  crons = [${wanted.map((c) => `"${c}"`).join(", ")}]`);
  process.exit(1);
}
console.log(`crons: wrangler.toml's ${configured.length} crons match the declarations`);
