/**
 * What the app's own folder declares its schedules with (src/app/schedules.ts): `schedule(cron,
 * handler)`, its cron expression checked at declaration, and the check that wrangler.toml's crons
 * are Outpost's own plus the declared ones. Declarations only (no imports at run time, so
 * scripts/check-crons.mjs can load the app's file in Node); src/features/logic/scheduler.ts runs them.
 */
import type { AppServices } from "./types";

/** Outpost's own housekeeping cron (every feature's cleanup tasks, src/scheduled.ts). */
export const HOUSEKEEPING_CRON = "*/15 * * * *";

/** What a schedule's handler gets: the cron that fired, when it was due, and the app's services. */
export interface ScheduleRun {
  cron: string;
  scheduledTime: Date;
  app: AppServices;
}

export const SCHEDULE = Symbol.for("outpost.schedule");

/** What a `schedule()` export carries. */
export interface Schedule {
  readonly [SCHEDULE]: { cron: string; name: string; handler: (x: ScheduleRun) => Promise<void> | void };
}

const MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
// Cloudflare counts the days of the week 1 (Sunday) to 7 (Saturday).
const DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
const FIELDS: { name: string; min: number; max: number; names?: string[] }[] = [
  { name: "minute", min: 0, max: 59 },
  { name: "hour", min: 0, max: 23 },
  { name: "day of month", min: 1, max: 31 },
  { name: "month", min: 1, max: 12, names: MONTHS },
  { name: "day of week", min: 1, max: 7, names: DAYS },
];
const ATOM = /^(\d{1,2}|[A-Za-z]{3})$/;

/** Why `cron` is not a five-field expression Cloudflare's cron triggers accept, or null when it is. */
export function cronProblem(cron: string): string | null {
  const parts = cron.trim().split(/\s+/);
  if (cron !== cron.trim() || /\s{2,}/.test(cron) || parts.length !== 5)
    return "needs exactly five fields (minute hour day-of-month month day-of-week) separated by single spaces";
  for (const [i, spec] of FIELDS.entries()) {
    const value = (atom: string): number | null => {
      if (!ATOM.test(atom)) return null;
      const named = spec.names?.indexOf(atom.toUpperCase()) ?? -1;
      const n = /^\d+$/.test(atom) ? Number(atom) : named >= 0 ? named + spec.min : Number.NaN;
      return n >= spec.min && n <= spec.max ? n : null;
    };
    for (const item of parts[i]!.split(",")) {
      const [range, step, extra] = item.split("/");
      const bad = `${spec.name} "${parts[i]}" is not valid (${spec.min}-${spec.max}${spec.names ? ", names" : ""})`;
      if (extra !== undefined || range === undefined) return bad;
      if (step !== undefined && !(/^\d{1,2}$/.test(step) && Number(step) >= 1 && Number(step) <= spec.max)) return bad;
      if (range === "*") continue;
      const [from, to, more] = range.split("-");
      if (more !== undefined || from === undefined) return bad;
      const a = value(from);
      const b = to === undefined ? a : value(to);
      if (a === null || b === null || a > b) return bad;
    }
  }
  return null;
}

/** A schedule of the app: runs `handler` each time the cron trigger `cron` fires (UTC). */
export function schedule(
  cron: string,
  handler: (x: ScheduleRun) => Promise<void> | void,
  opts: { name?: string } = {},
) {
  const problem = cronProblem(cron);
  if (problem) throw new Error(`schedule("${cron}"): the cron expression ${problem}`);
  if (typeof handler !== "function") throw new Error(`schedule("${cron}"): pass a handler function`);
  const s: Schedule = { [SCHEDULE]: { cron, name: opts.name ?? cron, handler } };
  return s;
}

export const isSchedule = (x: unknown): x is Schedule => typeof x === "object" && x !== null && SCHEDULE in x;

/** The crons wrangler.toml must list: Outpost's own and every declared schedule's, each once, sorted. */
export const wantedCrons = (declared: readonly Schedule[]): string[] =>
  [...new Set([HOUSEKEEPING_CRON, ...declared.map((s) => s[SCHEDULE].cron)])].sort();

/** What differs between the crons wanted and those configured: `missing` from, and `extra` in, the configuration. */
export function compareCrons(wanted: readonly string[], configured: readonly string[]) {
  const has = new Set(configured);
  const want = new Set(wanted);
  return { missing: wanted.filter((c) => !has.has(c)), extra: configured.filter((c) => !want.has(c)) };
}
