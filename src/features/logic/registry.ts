/** The app's declared hooks (src/app/logic.ts, through the app registry), by source and kind. */
import { appLogic } from "../../registry";
import { HOOKS, type HookSet, isHookSet } from "./define";

type Kind = "create" | "update" | "delete";
type Handler = (x: never) => unknown;

type Spec = HookSet[typeof HOOKS];

const sets: Spec[] = Object.values(appLogic)
  .filter(isHookSet)
  .map((s) => s[HOOKS]);

const bySource = new Map<string, Spec>();
for (const s of sets) {
  if (bySource.has(s.source)) throw new Error(`two hook sets for "${s.source}": declare each source's hooks once`);
  bySource.set(s.source, s);
}

/** The before hook of `source` for `kind`, if the app declares one. */
export const beforeHook = (source: string, kind: Kind): Handler | undefined => bySource.get(source)?.before[kind];

/** The after hook of an event (`posts.create`), if the app declares one. */
export function afterHook(event: string): Handler | undefined {
  const dot = event.lastIndexOf(".");
  return bySource.get(event.slice(0, dot))?.after[event.slice(dot + 1) as Kind];
}

/** Every event the app declares an after hook for (the `hook` rows of `event_listeners`). */
export const hookedEvents = (): string[] =>
  sets.flatMap((s) => Object.keys(s.after).map((k) => `${s.source}.${k}`)).sort();
