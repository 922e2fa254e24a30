/** Records and who may touch them: the stored shape, rules resolved for a caller, entity tags. */
import { eq, type SQL } from "drizzle-orm";
import type { SQLiteColumn } from "drizzle-orm/sqlite-core";
import type { Principal } from "../../env";
import { AppError } from "../../errors";
import type { Rule } from "./define";
import type { Collection } from "./registry";

/** A record as stored and returned: `{ id, ownerId, createdAt, updatedAt, version, ...fields }`. */
export type RecordRow = Record<string, unknown> & { id: string; ownerId: string | null; version: number };
export type Tombstone = { id: string; deleted: true; version: number };

/** What a caller may touch under one rule: every record, only its own, or nothing. */
export type Access = { kind: "all" } | { kind: "own"; userId: string } | { kind: "denied" };

/**
 * Resolves a rule for a caller. The service key bypasses rules; anonymous callers get 401 unless the rule is public.
 */
export function access(rule: Rule, p: Principal | null): Access {
  if (p?.kind === "service" || rule === "public") return { kind: "all" };
  if (!p) throw new AppError("unauthorized", "Send Authorization: Bearer <accessToken>.");
  if (rule === "authenticated") return { kind: "all" };
  if (rule === "owner") return { kind: "own", userId: p.userId };
  return { kind: "denied" };
}

/** Both rules must allow: a caller only lists, changes or deletes what it may also read. */
export function narrower(a: Access, b: Access): Access {
  if (a.kind === "denied" || b.kind === "denied") return { kind: "denied" };
  if (a.kind === "own") return a;
  return b;
}

export const visible = (acc: Access, row: { ownerId: unknown }) =>
  acc.kind === "all" || (acc.kind === "own" && row.ownerId === acc.userId);

export const ownerFilter = (column: SQLiteColumn, acc: Access): SQL | undefined =>
  acc.kind === "own" ? eq(column, acc.userId) : undefined;

/** A record's entity tag: its version, quoted. */
export const etag = (version: number) => `"${version}"`;

export const notFound = (col: Collection) => new AppError("not_found", `No such record in ${col.name}.`);
