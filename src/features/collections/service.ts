/**
 * All data access of app data: records CRUD, lists, the change feed and account cleanup.
 * Every write goes out in one D1 batch together with its change-log row (see `logChange`).
 */
import { and, asc, desc, eq, getTableColumns, gt, inArray, or, type SQL, sql } from "drizzle-orm";
import type { SQLiteColumn } from "drizzle-orm/sqlite-core";
import * as v from "valibot";
import { type Database, prepared, runBatch } from "../../db";
import { recordChanges } from "../../db/schema/collections";
import { rowWhileUserExists } from "../auth";
import type { Principal } from "../../env";
import { AppError } from "../../errors";
import { newId, nowIso } from "../../lib/ids";
import { decodeCursor, encodeCursor } from "../../lib/cursor";
import type { ListIndex, Rule } from "./define";
import { collections, type Collection } from "./registry";
import type { Scalar, Where } from "./schemas";
import type { DeletionHook } from "../../lifecycle";

/** A record as stored and returned: `{ id, ownerId, createdAt, updatedAt, version, ...fields }`. */
export type RecordRow = Record<string, unknown> & { id: string; ownerId: string | null; version: number };
export type Tombstone = { id: string; deleted: true; version: number };

/** What a caller may touch under one rule: every record, only its own, or nothing. */
export type Access = { kind: "all" } | { kind: "own"; userId: string } | { kind: "denied" };

/** Resolves a rule for a caller. The service key bypasses rules; anonymous callers get 401 unless the rule is public. */
function access(rule: Rule, p: Principal | null): Access {
  if (p?.kind === "service" || rule === "public") return { kind: "all" };
  if (!p) throw new AppError("unauthorized", "Send Authorization: Bearer <accessToken>.");
  if (rule === "authenticated") return { kind: "all" };
  if (rule === "owner") return { kind: "own", userId: p.userId };
  return { kind: "denied" };
}

/** Both rules must allow: a caller only lists, changes or deletes what it may also read. */
function narrower(a: Access, b: Access): Access {
  if (a.kind === "denied" || b.kind === "denied") return { kind: "denied" };
  if (a.kind === "own") return a;
  return b;
}

const visible = (acc: Access, row: { ownerId: unknown }) => acc.kind === "all" || (acc.kind === "own" && row.ownerId === acc.userId);

const col = (c: Collection, key: string): SQLiteColumn => {
  const column = c.table[key];
  if (!column) throw new Error(`collection ${c.name} has no field ${key}`);
  return column;
};

/** Declared nullable fields and `ownerId` (null for service-made records) can hold NULL. */
const isNullable = (c: Collection, key: string) => key === "ownerId" || c.fields[key]?.nullable === true;

const ownerFilter = (column: SQLiteColumn, acc: Access): SQL | undefined => (acc.kind === "own" ? eq(column, acc.userId) : undefined);

/** A record's entity tag: its version, quoted. */
export const etag = (version: number) => `"${version}"`;

const notFound = (c: Collection) => new AppError("not_found", `No such record in ${c.name}.`);

/**
 * The change-log statements of an update or delete, run in the same batch BEFORE the write and
 * with the same WHERE: the batch is one transaction, so they see the same rows as the write and
 * either all apply or none does. The record's previous log row is dropped and a new one gets a
 * new, higher `seq` (AUTOINCREMENT never reuses one), so a record sits once in the log.
 */
function logChange(db: Database, c: Collection, where: SQL, now: string, deleted: boolean, keepOwner = true) {
  const t = c.table;
  const rc = recordChanges;
  const touched = db.select({ id: t.id }).from(t).where(where);
  return [
    db.delete(rc).where(and(eq(rc.collection, c.name), inArray(rc.recordId, touched))),
    db.insert(rc).select(
      db
        .select({
          // NULL into an AUTOINCREMENT key: SQLite assigns the next seq
          seq: sql<number>`NULL`.as("seq"),
          collection: sql<string>`${c.name}`.as("collection"),
          recordId: t.id,
          ownerId: (keepOwner ? sql<string | null>`${t.ownerId}` : sql<null>`NULL`).as("owner_id"),
          version: sql<number>`${t.version} + 1`.as("version"),
          deleted: sql<boolean>`${deleted ? 1 : 0}`.as("deleted"),
          changedAt: sql<string>`${now}`.as("changed_at"),
        })
        .from(t)
        .where(where),
    ),
  ] as const;
}

/**
 * Creates a record owned by the calling user (no owner for the service key or anonymous callers).
 * A user's record is inserted only while the user row exists (INSERT ... SELECT FROM users): access
 * tokens are checked without D1 and outlive a deleted account by minutes, and such a late insert
 * would escape the account deletion that already ran.
 */
export async function createRecord(db: Database, c: Collection, p: Principal | null, body: Record<string, unknown>): Promise<RecordRow> {
  if (access(c.rules.create, p).kind === "denied") throw new AppError("forbidden", `Only the service key may create ${c.name} records.`);
  const now = nowIso();
  const row: Record<string, unknown> = { ...body, id: newId(), ownerId: p?.kind === "user" ? p.userId : null, createdAt: now, updatedAt: now, version: 1 };
  const change = { collection: c.name, recordId: row.id as string, ownerId: row.ownerId as string | null, version: 1, deleted: false, changedAt: now };
  if (p?.kind !== "user") {
    const [inserted] = await runBatch(db, [db.insert(c.table).values(row).returning(), db.insert(recordChanges).values(change)]);
    return (inserted as RecordRow[])[0]!;
  }
  const [inserted] = await runBatch(db, [
    db.insert(c.table).select(rowWhileUserExists(db, c.table, p.userId, row) as never).returning(),
    db.insert(recordChanges).select(rowWhileUserExists(db, recordChanges, p.userId, change) as never),
  ]);
  const rec = (inserted as RecordRow[])[0];
  if (!rec) throw new AppError("unauthorized", "This account no longer exists.");
  return rec;
}

/** The query behind a read by id (exported for the query-plan test). */
export function getQuery(db: Database, c: Collection, acc: Access, id: string) {
  return db.select().from(c.table).where(and(eq(c.table.id, id), ownerFilter(c.table.ownerId, acc)));
}

/** `getQuery` built once per collection and access kind (`prepared`): the hottest read skips drizzle's SQL building. */
const getById = new Map<string, (db: Database) => { get(values: Record<string, unknown>): Promise<unknown> }>();
function preparedGet(c: Collection, own: boolean) {
  const key = `${c.name}:${own ? "own" : "all"}`;
  let q = getById.get(key);
  if (!q) getById.set(key, (q = prepared((db) => db.select().from(c.table).where(and(eq(c.table.id, sql.placeholder("id")), own ? eq(c.table.ownerId, sql.placeholder("owner")) : undefined)))));
  return q;
}

/** A record the caller may read; 404 otherwise (never 403: existence is not revealed). */
export async function getRecord(db: Database, c: Collection, p: Principal | null, id: string): Promise<RecordRow> {
  const acc = access(c.rules.read, p);
  const row = acc.kind === "denied" ? undefined : ((await preparedGet(c, acc.kind === "own")(db).get({ id, owner: acc.kind === "own" ? acc.userId : null })) as RecordRow | undefined);
  if (!row) throw notFound(c);
  return row;
}

/** Why a conditional write matched no row: 404 unreadable or gone, 403 readable but not writable, else 412. */
async function explainMiss(db: Database, c: Collection, p: Principal | null, id: string, write: Access): Promise<never> {
  const t = c.table;
  const current = await db.select({ ownerId: t.ownerId, version: t.version }).from(t).where(eq(t.id, id)).get();
  if (!current || !visible(access(c.rules.read, p), current)) throw notFound(c);
  if (!visible(write, current)) throw new AppError("forbidden", `You may not change this ${c.name} record.`);
  throw new AppError("version_conflict", `The record is at version ${String(current.version)}; fetch it again and retry.`, {
    headers: { etag: etag(Number(current.version)) },
  });
}

/**
 * Updates a record: `values` are merged (PATCH) or are the whole record (PUT). The owner and
 * If-Match checks sit in the UPDATE's WHERE, so of concurrent conditional writes exactly one wins.
 */
export async function updateRecord(
  db: Database,
  c: Collection,
  p: Principal | null,
  id: string,
  values: Record<string, unknown>,
  ifMatch: number[] | null,
): Promise<RecordRow> {
  const t = c.table;
  const acc = narrower(access(c.rules.read, p), access(c.rules.update, p));
  if (acc.kind !== "denied") {
    const now = nowIso();
    const where = and(eq(t.id, id), ownerFilter(t.ownerId, acc), ifMatch ? inArray(t.version, ifMatch) : undefined)!;
    const [, , updated] = await runBatch(db, [
      ...logChange(db, c, where, now, false),
      db
        .update(t)
        .set({ ...values, updatedAt: now, version: sql`${t.version} + 1` })
        .where(where)
        .returning(),
    ]);
    const row = (updated as RecordRow[])[0];
    if (row) return row;
  }
  return explainMiss(db, c, p, id, acc);
}

/** Deletes a record, leaving a tombstone in the change log for sync. */
export async function deleteRecord(db: Database, c: Collection, p: Principal | null, id: string, ifMatch: number[] | null): Promise<void> {
  const t = c.table;
  const acc = narrower(access(c.rules.read, p), access(c.rules.delete, p));
  if (acc.kind !== "denied") {
    const where = and(eq(t.id, id), ownerFilter(t.ownerId, acc), ifMatch ? inArray(t.version, ifMatch) : undefined)!;
    const [, , deleted] = await runBatch(db, [...logChange(db, c, where, nowIso(), true), db.delete(t).where(where).returning({ id: t.id })]);
    if ((deleted as unknown[]).length > 0) return;
  }
  await explainMiss(db, c, p, id, acc);
}

// --- lists ---------------------------------------------------------------------------------

/** Operators an index range can serve on the sort field (the rest are checked row by row). */
const RANGE_OPS = new Set(["$eq", "$gt", "$gte", "$lt", "$lte"]);

/** One term of a `where`: `field op operand` (a bare value is `$eq`). */
interface Term {
  key: string;
  op: string;
  operand: Scalar | Scalar[];
}

const termsOf = (where: Where | undefined): Term[] =>
  Object.entries(where ?? {}).flatMap(([key, cond]) =>
    cond === null || typeof cond !== "object" ? [{ key, op: "$eq", operand: cond }] : Object.entries(cond).map(([op, operand]) => ({ key, op, operand: operand as Scalar | Scalar[] })),
  );

/**
 * One term as SQL; every value is a bound parameter encoded like its column. A `residual` term is
 * checked on the rows the list's index walk visits: its column is written `+column`, which keeps
 * SQLite from driving the query with another index (and then sorting every match in a temp B-tree).
 */
function termSql(c: Collection, t: Term, residual: boolean): SQL {
  const column = col(c, t.key);
  const ref = residual ? sql`+${column}` : sql`${column}`;
  const p = (x: Scalar) => sql.param(x, column);
  const nullable = isNullable(c, t.key);
  if (Array.isArray(t.operand)) {
    // $in is the only operator with a list
    const values = t.operand.filter((x) => x !== null);
    const parts = [values.length ? sql`${ref} IN (${sql.join(values.map(p), sql`, `)})` : undefined, t.operand.includes(null) ? sql`${ref} IS NULL` : undefined].filter((x) => x !== undefined);
    return parts.length === 1 ? parts[0]! : or(...parts)!;
  }
  const x = t.operand;
  switch (t.op) {
    case "$eq":
      return x === null ? sql`${ref} IS NULL` : sql`${ref} = ${p(x)}`;
    case "$ne":
      return x === null ? sql`${ref} IS NOT NULL` : nullable ? sql`(${ref} <> ${p(x)} OR ${ref} IS NULL)` : sql`${ref} <> ${p(x)}`;
    case "$gt":
      return sql`${ref} > ${p(x)}`;
    case "$gte":
      return sql`${ref} >= ${p(x)}`;
    case "$lt":
      return sql`${ref} < ${p(x)}`;
    case "$lte":
      return sql`${ref} <= ${p(x)}`;
    case "$contains":
      // instr() instead of LIKE: no wildcards to escape and no 50-byte pattern limit
      return c.fields[t.key]?.kind === "stringArray" ? sql`EXISTS (SELECT 1 FROM json_each(${column}) WHERE json_each.value = ${x})` : sql`instr(${column}, ${x}) > 0`;
    default:
      throw new Error(`unknown operator ${t.op}`);
  }
}

const ListCursor = v.strictObject({ s: v.string(), v: v.union([v.string(), v.number(), v.boolean()]), i: v.pipe(v.string(), v.maxLength(64)) });

export interface ListOptions {
  where?: Where | undefined;
  sort: string;
  limit: number;
  cursor?: string | undefined;
}

/** How a list runs: the index it walks in sort order, and which `where` terms that index serves. */
export interface ListPlan {
  index: ListIndex;
  /** The walk stays within one owner's records (the index starts with ownerId = one user's id). */
  narrowed: boolean;
  /** Terms the index serves (equalities of its leading fields, comparisons of the sort field). */
  served: Term[];
  /** Terms checked on each row the walk visits. */
  residual: Term[];
}

/**
 * Picks the index a list walks: among the indexes ending with the sort field, the one whose
 * leading fields all have an equality (the access rule's owner or a `where` value), preferring one
 * that starts with the owner, then the longest. Every sort field has `(field, id)`, so there is
 * always one. A list that is not narrowed to one owner may only use terms the index serves: a
 * filter checked row by row would walk the whole table when it matches little (400 otherwise).
 */
export function planList(c: Collection, acc: Access, o: Pick<ListOptions, "where" | "sort">): ListPlan {
  const key = o.sort.replace(/^-/, "");
  const terms = termsOf(o.where);
  const equal = new Set(terms.filter((t) => t.op === "$eq" && t.key !== key).map((t) => t.key));
  if (acc.kind === "own") equal.add("ownerId");
  const candidates = c.indexes
    .filter((ix) => ix.columns.at(-2) === key && ix.columns.slice(0, -2).every((k) => equal.has(k)))
    .sort((a, b) => Number(b.columns[0] === "ownerId") - Number(a.columns[0] === "ownerId") || b.columns.length - a.columns.length);
  const index = candidates[0];
  if (!index) throw new AppError("validation_failed", `${c.name} cannot be sorted by ${key}.`, { errors: [{ path: "sort", message: `not sortable; sort on one of: ${c.sortable.join(", ")}` }] });
  const leading = new Set(index.columns.slice(0, -2));
  const served: Term[] = [];
  const residual: Term[] = [];
  const taken = new Set<string>();
  for (const t of terms) {
    // One equality per leading field rides the index; the sort field's comparisons are its range.
    if (leading.has(t.key) && t.op === "$eq" && !taken.has(t.key)) {
      taken.add(t.key);
      served.push(t);
    } else if (t.key === key && RANGE_OPS.has(t.op) && !Array.isArray(t.operand) && t.operand !== null) served.push(t);
    else residual.push(t);
  }
  // One owner's records bound the walk. `ownerId: null` is not one owner: it is every record the
  // service key or anonymous callers created, possibly most of the table.
  const narrowed = acc.kind === "own" || served.some((x) => x.key === "ownerId" && x.operand !== null && leading.has("ownerId"));
  if (!narrowed && residual.length) {
    const usable = new Set(c.indexes.filter((ix) => ix.columns.at(-2) === key).flatMap((ix) => ix.columns.slice(0, -2)));
    const what = [...usable].map((k) => `${k} (equality)`).concat(`${key} (${[...RANGE_OPS].join(", ")})`).join(", ");
    const first = residual[0]!;
    throw new AppError(
      "validation_failed",
      `A list of ${c.name} across all owners can only filter on what its index holds; add an ownerId equality to where to filter within one owner's records.`,
      { errors: [{ path: `where.${first.key}`, message: `a list across all owners sorted by ${key} filters only on ${what}; add "ownerId" to where to use ${first.key} ${first.op}` }] },
    );
  }
  return { index, narrowed, served, residual };
}

/**
 * The list query: walks `planList`'s index in sort order with keyset pagination on (sort field,
 * id), so inserts between pages never shift rows and a page costs the same at any depth: the
 * cursor is a row-value range on the index. Sort fields are never null (see `collection()`).
 */
export function listQuery(db: Database, c: Collection, acc: Access, o: ListOptions) {
  const t = c.table;
  const descending = o.sort.startsWith("-");
  const key = descending ? o.sort.slice(1) : o.sort;
  const column = col(c, key);
  const plan = planList(c, acc, o);
  const conds: (SQL | undefined)[] = [ownerFilter(t.ownerId, acc), ...plan.served.map((x) => termSql(c, x, false)), ...plan.residual.map((x) => termSql(c, x, true))];
  if (o.cursor) {
    const cur = decodeCursor(o.cursor, ListCursor);
    if (cur.s !== o.sort) throw new AppError("validation_failed", "The cursor belongs to another sort order.", { errors: [{ path: "cursor", message: "sort changed" }] });
    const pos = sql`(${column}, ${t.id})`;
    const at = sql`(${sql.param(cur.v, column)}, ${cur.i})`;
    conds.push(descending ? sql`${pos} < ${at}` : sql`${pos} > ${at}`);
  }
  const dir = descending ? desc : asc;
  return db
    .select()
    .from(t)
    .where(and(...conds))
    .orderBy(dir(column), dir(t.id))
    .limit(o.limit + 1);
}

/** A page of records the caller may list (owner-only rules list the caller's own records). */
export async function listRecords(db: Database, c: Collection, p: Principal | null, o: ListOptions): Promise<{ items: RecordRow[]; nextCursor: string | null }> {
  const acc = narrower(access(c.rules.list, p), access(c.rules.read, p));
  if (acc.kind === "denied") throw new AppError("forbidden", `Only the service key may list ${c.name}.`);
  const rows = (await listQuery(db, c, acc, o)) as RecordRow[];
  const items = rows.slice(0, o.limit);
  const last = items.at(-1);
  const key = o.sort.replace(/^-/, "");
  return {
    items,
    nextCursor: rows.length > o.limit && last ? encodeCursor({ s: o.sort, v: (last[key] ?? null) as Scalar, i: last.id }) : null,
  };
}

// --- change feed ---------------------------------------------------------------------------

const ChangeCursor = v.strictObject({ q: v.pipe(v.number(), v.safeInteger(), v.minValue(0)) });

/** The change-feed query (exported for the query-plan test). */
export function changesQuery(db: Database, c: Collection, acc: Access, since: number, limit: number) {
  const t = c.table;
  return db
    .select({ seq: recordChanges.seq, recordId: recordChanges.recordId, version: recordChanges.version, deleted: recordChanges.deleted, record: getTableColumns(t) })
    .from(recordChanges)
    .leftJoin(t, eq(t.id, recordChanges.recordId))
    .where(and(eq(recordChanges.collection, c.name), ownerFilter(recordChanges.ownerId, acc), gt(recordChanges.seq, since)))
    .orderBy(asc(recordChanges.seq))
    .limit(limit + 1);
}

/**
 * Everything written after `since` that the caller may read, oldest first. Why no write is ever
 * skipped: each write and its log row commit in one D1 batch, and D1 runs one write transaction
 * at a time, so `seq` values become visible in increasing order; a reader that saw seq N has
 * already seen every seq below N. A record changed twice appears once, at its latest seq.
 */
export async function changesSince(
  db: Database,
  c: Collection,
  p: Principal | null,
  o: { since?: string | undefined; limit: number },
): Promise<{ items: (RecordRow | Tombstone)[]; nextCursor: string; hasMore: boolean }> {
  const acc = narrower(access(c.rules.list, p), access(c.rules.read, p));
  if (acc.kind === "denied") throw new AppError("forbidden", `Only the service key may read the changes of ${c.name}.`);
  const since = o.since ? decodeCursor(o.since, ChangeCursor, "since").q : 0;
  const rows = await changesQuery(db, c, acc, since, o.limit);
  const page = rows.slice(0, o.limit);
  const items = page.flatMap((r): (RecordRow | Tombstone)[] =>
    r.deleted ? [{ id: r.recordId, deleted: true, version: r.version }] : r.record ? [r.record as RecordRow] : [],
  );
  return { items, nextCursor: encodeCursor({ q: page.at(-1)?.seq ?? since }), hasMore: rows.length > o.limit };
}

// --- account deletion ----------------------------------------------------------------------

/**
 * Removes every record of a deleted account, in the batch that deletes the user, leaving
 * tombstones (without the owner id) so other readers' sync drops those records too.
 */
export const deleteUserRecords: DeletionHook = async ({ db, userId }) => {
  const now = nowIso();
  return {
    statements: collections.flatMap((c) => {
      const mine = eq(c.table.ownerId, userId);
      return [...logChange(db, c, mine, now, true, false), db.delete(c.table).where(mine)];
    }),
  };
};

// --- administration ------------------------------------------------------------------------

/** Per declared collection, a count of its records (of one owner, or all): statements for one batch. */
export function recordCounts(db: Database, ownerId?: string) {
  return collections.map((c) =>
    db
      .select({ collection: sql<string>`${c.name}`, n: sql<number>`count(*)` })
      .from(c.table)
      .where(ownerId === undefined ? undefined : eq(c.table.ownerId, ownerId)),
  );
}
