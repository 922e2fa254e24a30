/**
 * References (`field.ref`): a written reference must point at a record the caller may read (checked
 * inside the write's own statement), and deleting referenced records applies each referrer's
 * `onDelete` in the same D1 batch, before the delete: `cascade` (tombstones in the change log),
 * `setNull` (a new version), `restrict` (the batch aborts: 409).
 */
import { and, eq, type SQL, sql } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import type { SQLiteColumn } from "drizzle-orm/sqlite-core";
import { abortBatchIf, type Database } from "../../db";
import type { Principal } from "../../env";
import { AppError } from "../../errors";
import { userExistsSql } from "../auth";
import { readAccess, recordFilter } from "./access";
import type { Change } from "./live";
import { type Collection, findCollection, referencesTo } from "./registry";

/** How deep a cascade follows references of references (comments of a post of a board...). */
const MAX_DEPTH = 4;

const columnOf = (col: Collection, key: string): SQLiteColumn => col.table[key]!;

/** SQL: `id` is a record of `target` (or a user) that the caller may read. */
function readableSql(target: string, p: Principal | null, id: string): SQL {
  if (target === "users") return sql`${userExistsSql(id)} = 1`;
  const t = findCollection(target)!;
  const acc = readAccess(t, p);
  if (acc.kind === "denied") return sql`0`;
  return sql`EXISTS (SELECT 1 FROM ${t.table} WHERE ${and(eq(t.table.id, id), recordFilter(t, acc))})`;
}

/** The references `values` sets (non-null), with their targets. */
function setReferences(col: Collection, values: Record<string, unknown>) {
  return Object.entries(col.fields).flatMap(([key, f]) =>
    f.ref && typeof values[key] === "string" ? [{ key, target: f.ref.target, id: values[key] as string }] : [],
  );
}

/**
 * SQL for a write's WHERE: every reference `values` sets points at a record the caller may read
 * (undefined when it sets none).
 */
export function referencesReadable(col: Collection, p: Principal | null, values: Record<string, unknown>) {
  const refs = setReferences(col, values);
  return refs.length ? and(...refs.map((r) => readableSql(r.target, p, r.id))) : undefined;
}

/** Why a write's references were refused: 400 naming the first field whose record is missing or unreadable. */
export async function referenceRefusal(
  db: Database,
  col: Collection,
  p: Principal | null,
  values: Record<string, unknown>,
  path = (key: string) => key,
): Promise<AppError | null> {
  for (const r of setReferences(col, values)) {
    const ok = await db.get<{ ok: number }>(sql`SELECT ${readableSql(r.target, p, r.id)} AS ok`);
    if (!ok?.ok)
      return new AppError("validation_failed", `${r.key} does not name a ${r.target} record you can read.`, {
        errors: [{ path: path(r.key), message: `no such ${r.target} record, or not readable` }],
      });
  }
  return null;
}

/** What a deletion does to the records that reference the deleted ones. */
export interface OnDeletePlan {
  /** Run in the deletion's batch, before the referenced records go. */
  statements: BatchItem<"sqlite">[];
  /** The referrers changed (deleted or nulled), from the batch's results at `offset`, noted at `seq`. */
  changes(results: unknown[], offset: number, seq: number): Change[];
}

/**
 * The statements that apply `onDelete` for every reference to `target` (a collection's name, or
 * `users`) from records whose ids `ids` selects (a subquery, evaluated before the delete). `force`:
 * `restrict` acts as `cascade` (an account's or a team's deletion cannot be refused).
 * `logChange` is the writes module's change-log step (passed in: writes imports this module).
 */
export function onDeletePlan(
  db: Database,
  target: string,
  ids: SQL,
  now: string,
  logChange: (
    db: Database,
    col: Collection,
    where: SQL,
    now: string,
    deleted: boolean,
  ) => readonly BatchItem<"sqlite">[],
  o: { force?: boolean; depth?: number } = {},
): OnDeletePlan {
  const depth = o.depth ?? 0;
  const statements: BatchItem<"sqlite">[] = [];
  /** Where the referrers' changes come back: a statement's returned rows, or a deeper plan's. */
  const readers: ({ at: number; col: Collection } | { at: number; plan: OnDeletePlan })[] = [];
  if (depth >= MAX_DEPTH) return { statements, changes: () => [] };
  for (const { col, key, onDelete } of referencesTo(target)) {
    const t = col.table;
    const where = sql`${columnOf(col, key)} IN ${ids}`;
    if (onDelete === "restrict" && !o.force) {
      // Aborts the batch (NOT NULL of batch_guards) while a referrer exists: nothing is deleted.
      statements.push(abortBatchIf(db, sql`EXISTS (SELECT 1 FROM ${t} WHERE ${where})`));
      continue;
    }
    const returning = { ownerId: t.ownerId, ...(col.scope === "team" ? { teamId: t.teamId! } : {}) };
    if (onDelete === "setNull") {
      statements.push(...logChange(db, col, where, now, false));
      readers.push({ at: statements.length, col });
      statements.push(
        db
          .update(t)
          .set({ [key]: null, updatedAt: now, version: sql`${t.version} + 1` })
          .where(where)
          .returning(returning),
      );
      continue;
    }
    // cascade: the referrers' own referrers first, while the referrers still exist.
    const deeper = onDeletePlan(db, col.name, sql`(SELECT ${t.id} FROM ${t} WHERE ${where})`, now, logChange, {
      ...o,
      depth: depth + 1,
    });
    readers.push({ at: statements.length, plan: deeper });
    statements.push(...deeper.statements);
    statements.push(...logChange(db, col, where, now, true));
    readers.push({ at: statements.length, col });
    statements.push(db.delete(t).where(where).returning(returning));
  }
  return {
    statements,
    changes: (results, offset, seq) =>
      readers.flatMap((r) => {
        if ("plan" in r) return r.plan.changes(results, offset + r.at, seq);
        const rows = results[offset + r.at];
        return (Array.isArray(rows) ? (rows as { ownerId: string | null; teamId?: string }[]) : []).map(
          (row): Change => ({ collection: r.col, ownerId: row.ownerId, teamId: row.teamId ?? null, seq }),
        );
      }),
  };
}

/** 409 while a `restrict` reference points at record `id` of `col` (why a delete was refused), else null. */
export async function restrictRefusal(
  db: Database,
  col: Collection,
  id: string,
  path = "id",
): Promise<AppError | null> {
  for (const r of referencesTo(col.name)) {
    if (r.onDelete !== "restrict") continue;
    const found = await db
      .select({ one: sql`1` })
      .from(r.col.table)
      .where(eq(columnOf(r.col, r.key), id))
      .limit(1)
      .get();
    if (found)
      return new AppError(
        "conflict",
        `${r.col.name} records still reference this ${col.name} record; delete them first.`,
        {
          errors: [{ path, message: `referenced by ${r.col.name}.${r.key}` }],
        },
      );
  }
  return null;
}
