/**
 * The collections' before hooks on the write path (src/app/logic.ts): every writer calls these
 * before it builds its statements, so a hook's changed data is what gets written and its refusal
 * writes nothing. Hooks that write through `app` run one level deeper (see logic/before.ts).
 */
import { eq } from "drizzle-orm";
import * as v from "valibot";
import type { Database } from "../../db";
import type { Principal } from "../../env";
import { AppError } from "../../errors";
import { callerOf, hasBefore, runBefore } from "../logic";
import type { RecordRow } from "./access";
import type { Collection } from "./registry";
import { collectionSchemas } from "./schemas";

/** What the hooks need of a writer (`Writer` of writes.ts has it). */
interface Writer {
  db: Database;
  env: Env;
  waitUntil: (work: Promise<unknown>) => void;
  depth?: number;
}

/** The context a writer's before hooks run in (their `app` writes one level deeper). */
const hookContext = (w: Writer) => ({ env: w.env, db: w.db, waitUntil: w.waitUntil, depth: w.depth ?? 0 });

/** Reads a record as stored, for a before hook's `current()`. */
const storedRecord = (w: Writer, col: Collection, id: string) => async () =>
  ((await w.db.select().from(col.table).where(eq(col.table.id, id)).get()) as RecordRow | undefined) ?? null;

/**
 * The data a before hook hands back, checked against the collection's own schema like a client's
 * body: a hook cannot write what a client could not. Its output comes from the request's data, so
 * what fails is answered like the body did (400 naming the field).
 */
function checkHookOutput(
  col: Collection,
  kind: "create" | "update",
  data: Record<string, unknown>,
): Record<string, unknown> {
  const schemas = collectionSchemas(col);
  const r = v.safeParse(kind === "create" ? schemas.create : schemas.patch, data);
  if (r.success) return r.output;
  throw new AppError("validation_failed", `The ${col.name} record is not valid once the app's hook changed it.`, {
    errors: r.issues.map((i) => ({ path: i.path?.map((x) => String(x.key)).join(".") || "body", message: i.message })),
  });
}

/** Runs `col`'s before hook for a create or update (if any) and returns the data to write. */
export async function beforeWrite(
  w: Writer,
  col: Collection,
  p: Principal | null,
  kind: "create" | "update",
  data: Record<string, unknown>,
  id?: string,
): Promise<Record<string, unknown>> {
  if (!hasBefore(col.name, kind)) return data;
  const given = { ...data };
  const out = await runBefore(col.name, kind, hookContext(w), callerOf(p), {
    data: given,
    ...(id === undefined ? {} : { id, current: storedRecord(w, col, id) }),
  });
  return checkHookOutput(col, kind, out);
}

/** Runs `col`'s before delete hook (if any): it may refuse. */
export async function beforeDelete(w: Writer, col: Collection, p: Principal | null, id: string): Promise<void> {
  if (!hasBefore(col.name, "delete")) return;
  await runBefore(col.name, "delete", hookContext(w), callerOf(p), { id, current: storedRecord(w, col, id) });
}
