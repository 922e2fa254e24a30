/**
 * All data access of app data: records CRUD, lists, the change feed and account cleanup.
 * Every write goes out in one D1 batch together with its change-log row (see `logChange`).
 */
import {
  and,
  asc,
  desc,
  eq,
  exists,
  getTableColumns,
  gt,
  inArray,
  is,
  not,
  or,
  SQL,
  sql,
  type Table,
} from "drizzle-orm";
import type { SQLiteColumn } from "drizzle-orm/sqlite-core";
import * as v from "valibot";
import { type Database, prepared, runBatch } from "../../db";
import { recordChangeHorizons, recordChanges } from "../../db/schema/collections";
import type { Principal } from "../../env";
import { AppError } from "../../errors";
import { chunks } from "../../lib/chunks";
import { decodeCursor, encodeCursor } from "../../lib/cursor";
import { newId, nowIso } from "../../lib/ids";
import type { DeletionHook } from "../../lifecycle";
import { liveSessionsQuery, sessionLiveSql, userExists, userExistsSql } from "../auth";
import type { ListIndex, Rule } from "./define";
import { closeLiveSessionSockets, notifyEveryone } from "./live";
import { type Collection, collections } from "./registry";
import type { Scalar, Where } from "./schemas";

/** A record as stored and returned: `{ id, ownerId, createdAt, updatedAt, version, ...fields }`. */
export type RecordRow = Record<string, unknown> & { id: string; ownerId: string | null; version: number };
export type Tombstone = { id: string; deleted: true; version: number };

/** What a write did, for its answer and for the live-data notification (`seq`: its change-log row; null = nothing written). */
export interface Created {
  record: RecordRow;
  /** False when a client id was sent again for the same record (200, nothing written). */
  created: boolean;
  seq: number | null;
}
export interface Updated {
  record: RecordRow;
  seq: number;
}
export interface Deleted {
  ownerId: string | null;
  seq: number;
}

/** What a caller may touch under one rule: every record, only its own, or nothing. */
export type Access = { kind: "all" } | { kind: "own"; userId: string } | { kind: "denied" };

/** Resolves a rule for a caller. The service key bypasses rules; anonymous callers get 401 unless the rule is public. */
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

const col = (c: Collection, key: string): SQLiteColumn => {
  const column = c.table[key];
  if (!column) throw new Error(`collection ${c.name} has no field ${key}`);
  return column;
};

/** Declared nullable fields and `ownerId` (null for service-made records) can hold NULL. */
const isNullable = (c: Collection, key: string) => key === "ownerId" || c.fields[key]?.nullable === true;

export const ownerFilter = (column: SQLiteColumn, acc: Access): SQL | undefined =>
  acc.kind === "own" ? eq(column, acc.userId) : undefined;

/** A record's entity tag: its version, quoted. */
export const etag = (version: number) => `"${version}"`;

const notFound = (c: Collection) => new AppError("not_found", `No such record in ${c.name}.`);

/**
 * The change-log statements of an update or delete, run in the same batch BEFORE the write and
 * with the same WHERE: the batch is one transaction, so they see the same rows as the write and
 * either all apply or none does. The record's previous log row is dropped and a new one gets a
 * new, higher `seq` (AUTOINCREMENT never reuses one), so a record sits once in the log.
 */
export function logChange(db: Database, c: Collection, where: SQL, now: string, deleted: boolean, keepOwner = true) {
  const t = c.table;
  const rc = recordChanges;
  const touched = db.select({ id: t.id }).from(t).where(where);
  return [
    db.delete(rc).where(and(eq(rc.collection, c.name), inArray(rc.recordId, touched))),
    db
      .insert(rc)
      .select(
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
      )
      .returning({ seq: rc.seq }),
  ] as const;
}

/** `SELECT <values of every column of table, in order> [WHERE where]`, for INSERT ... SELECT (`seq` = NULL: SQLite assigns it). */
export function selectValues(table: Table, values: Record<string, unknown>, where?: SQL): SQL {
  const list = sql.join(
    Object.entries(getTableColumns(table)).map(([k, column]) => {
      // A field left out takes its declared default, as INSERT ... VALUES would give it.
      const value = values[k] !== undefined ? values[k] : column.default;
      return is(value, SQL) ? value : sql`${sql.param(value ?? null, column)}`;
    }),
    sql`, `,
  );
  return where ? sql`SELECT ${list} WHERE ${where}` : sql`SELECT ${list}`;
}

/** The change-log row of record `id` exists: it was created once (a tombstone keeps an id taken). */
export const loggedId = (db: Database, c: Collection, id: string) =>
  exists(
    db
      .select({ one: sql`1` })
      .from(recordChanges)
      .where(and(eq(recordChanges.collection, c.name), eq(recordChanges.recordId, id))),
  );

/** Stored fields equal what a create asks for (a retried create of the same record). */
export function sameFields(c: Collection, stored: Record<string, unknown>, body: Record<string, unknown>): boolean {
  return Object.keys(c.fields).every((k) => JSON.stringify(stored[k] ?? null) === JSON.stringify(body[k] ?? null));
}

const conflictingId = (c: Collection) =>
  new AppError(
    "conflict",
    `This id is already taken in ${c.name} (by another record, or by a different create); a retry must send the same fields.`,
    {
      errors: [{ path: "id", message: "already taken" }],
    },
  );

/**
 * Creates a record owned by the calling user (no owner for the service key or anonymous callers).
 * A user's record is inserted only while the user row exists (INSERT ... SELECT FROM users): access
 * tokens are checked without D1 and outlive a deleted account by minutes, and such a late insert
 * would escape the account deletion that already ran.
 *
 * `body.id` (a client-made UUID, already validated and lowercased) makes the create retryable: in
 * the same batch, the record is inserted only if its id was never used in this collection (no
 * change-log row: a tombstone keeps an id taken), and the stored row is read back. The same owner
 * sending the same fields again gets the stored record (`created: false`); anything else is 409.
 */
export async function createRecord(
  db: Database,
  c: Collection,
  p: Principal | null,
  input: Record<string, unknown>,
): Promise<Created> {
  if (access(c.rules.create, p).kind === "denied")
    throw new AppError("forbidden", `Only the service key may create ${c.name} records.`);
  const { id: clientId, ...body } = input as Record<string, unknown> & { id?: string };
  const now = nowIso();
  const id = clientId ?? newId();
  const ownerId = p?.kind === "user" ? p.userId : null;
  const row: Record<string, unknown> = { ...body, id, ownerId, createdAt: now, updatedAt: now, version: 1 };
  const change = { seq: null, collection: c.name, recordId: id, ownerId, version: 1, deleted: false, changedAt: now };
  const ownerLives = p?.kind === "user" ? sql`${userExistsSql(p.userId)} = 1` : undefined;

  if (clientId === undefined) {
    const [inserted, logged] = await runBatch(db, [
      db
        .insert(c.table)
        .select(selectValues(c.table, row, ownerLives))
        .returning(),
      db
        .insert(recordChanges)
        .select(selectValues(recordChanges, change, ownerLives))
        .returning({ seq: recordChanges.seq }),
    ]);
    const rec = (inserted as RecordRow[])[0];
    if (!rec) throw new AppError("unauthorized", "This account no longer exists.");
    return { record: rec, created: true, seq: (logged as { seq: number }[])[0]!.seq };
  }

  const t = c.table;
  const fresh = not(loggedId(db, c, id));
  const [, logged, stored] = await runBatch(db, [
    db
      .insert(t)
      .select(selectValues(t, row, and(fresh, ownerLives)))
      .onConflictDoNothing(),
    // Logged only if the row is the one just inserted (same id, same creation time, version 1).
    db
      .insert(recordChanges)
      .select(
        selectValues(
          recordChanges,
          change,
          and(
            fresh,
            exists(
              db
                .select({ one: sql`1` })
                .from(t)
                .where(and(eq(t.id, id), eq(t.createdAt, now), eq(t.version, 1))),
            ),
          ),
        ),
      )
      .returning({ seq: recordChanges.seq }),
    db.select().from(t).where(eq(t.id, id)),
  ]);
  const seq = (logged as { seq: number }[])[0]?.seq;
  const rec = (stored as RecordRow[])[0];
  if (seq !== undefined && rec) return { record: rec, created: true, seq };
  // A retry: the same caller (anonymous callers own nothing, so they cannot retry) with the same fields.
  if (rec && p && rec.ownerId === ownerId && sameFields(c, rec, body))
    return { record: rec, created: false, seq: null };
  if (!rec && p?.kind === "user" && !(await userExists(db, p.userId))) {
    throw new AppError("unauthorized", "This account no longer exists.");
  }
  throw conflictingId(c);
}

/** The query behind a read by id (exported for the query-plan test). */
export function getQuery(db: Database, c: Collection, acc: Access, id: string) {
  return db
    .select()
    .from(c.table)
    .where(and(eq(c.table.id, id), ownerFilter(c.table.ownerId, acc)));
}

/** `getQuery` built once per collection and access kind (`prepared`): the hottest read skips drizzle's SQL building. */
const getById = new Map<string, (db: Database) => { get(values: Record<string, unknown>): Promise<unknown> }>();
function preparedGet(c: Collection, own: boolean) {
  const key = `${c.name}:${own ? "own" : "all"}`;
  let q = getById.get(key);
  if (!q) {
    q = prepared((db) =>
      db
        .select()
        .from(c.table)
        .where(
          and(eq(c.table.id, sql.placeholder("id")), own ? eq(c.table.ownerId, sql.placeholder("owner")) : undefined),
        ),
    );
    getById.set(key, q);
  }
  return q;
}

/** A record the caller may read; 404 otherwise (never 403: existence is not revealed). */
export async function getRecord(db: Database, c: Collection, p: Principal | null, id: string): Promise<RecordRow> {
  const acc = access(c.rules.read, p);
  const row =
    acc.kind === "denied"
      ? undefined
      : ((await preparedGet(c, acc.kind === "own")(db).get({ id, owner: acc.kind === "own" ? acc.userId : null })) as
          | RecordRow
          | undefined);
  if (!row) throw notFound(c);
  return row;
}

/** Why a conditional write matched no row: 404 unreadable or gone, 403 readable but not writable, else 412. */
async function explainMiss(
  db: Database,
  c: Collection,
  p: Principal | null,
  id: string,
  write: Access,
): Promise<never> {
  const t = c.table;
  const current = await db.select({ ownerId: t.ownerId, version: t.version }).from(t).where(eq(t.id, id)).get();
  if (!current || !visible(access(c.rules.read, p), current)) throw notFound(c);
  if (!visible(write, current)) throw new AppError("forbidden", `You may not change this ${c.name} record.`);
  throw new AppError(
    "version_conflict",
    `The record is at version ${String(current.version)}; fetch it again and retry.`,
    {
      headers: { etag: etag(Number(current.version)) },
    },
  );
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
): Promise<Updated> {
  const t = c.table;
  const acc = narrower(access(c.rules.read, p), access(c.rules.update, p));
  if (acc.kind !== "denied") {
    const now = nowIso();
    const where = and(eq(t.id, id), ownerFilter(t.ownerId, acc), ifMatch ? inArray(t.version, ifMatch) : undefined)!;
    const [, logged, updated] = await runBatch(db, [
      ...logChange(db, c, where, now, false),
      db
        .update(t)
        .set({ ...values, updatedAt: now, version: sql`${t.version} + 1` })
        .where(where)
        .returning(),
    ]);
    const row = (updated as RecordRow[])[0];
    if (row) return { record: row, seq: (logged as { seq: number }[])[0]!.seq };
  }
  return explainMiss(db, c, p, id, acc);
}

/** Deletes a record, leaving a tombstone in the change log for sync. */
export async function deleteRecord(
  db: Database,
  c: Collection,
  p: Principal | null,
  id: string,
  ifMatch: number[] | null,
): Promise<Deleted> {
  const t = c.table;
  const acc = narrower(access(c.rules.read, p), access(c.rules.delete, p));
  if (acc.kind !== "denied") {
    const where = and(eq(t.id, id), ownerFilter(t.ownerId, acc), ifMatch ? inArray(t.version, ifMatch) : undefined)!;
    const [, logged, deleted] = await runBatch(db, [
      ...logChange(db, c, where, nowIso(), true),
      db.delete(t).where(where).returning({ ownerId: t.ownerId }),
    ]);
    const gone = (deleted as { ownerId: string | null }[])[0];
    if (gone) return { ownerId: gone.ownerId, seq: (logged as { seq: number }[])[0]!.seq };
  }
  return explainMiss(db, c, p, id, acc);
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
    cond === null || typeof cond !== "object"
      ? [{ key, op: "$eq", operand: cond }]
      : Object.entries(cond).map(([op, operand]) => ({ key, op, operand: operand as Scalar | Scalar[] })),
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
    const parts = [
      values.length ? sql`${ref} IN (${sql.join(values.map(p), sql`, `)})` : undefined,
      t.operand.includes(null) ? sql`${ref} IS NULL` : undefined,
    ].filter((x) => x !== undefined);
    return parts.length === 1 ? parts[0]! : or(...parts)!;
  }
  const x = t.operand;
  switch (t.op) {
    case "$eq":
      return x === null ? sql`${ref} IS NULL` : sql`${ref} = ${p(x)}`;
    case "$ne":
      return x === null
        ? sql`${ref} IS NOT NULL`
        : nullable
          ? sql`(${ref} <> ${p(x)} OR ${ref} IS NULL)`
          : sql`${ref} <> ${p(x)}`;
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
      return c.fields[t.key]?.kind === "stringArray"
        ? sql`EXISTS (SELECT 1 FROM json_each(${column}) WHERE json_each.value = ${x})`
        : sql`instr(${column}, ${x}) > 0`;
    default:
      throw new Error(`unknown operator ${t.op}`);
  }
}

const ListCursor = v.strictObject({
  s: v.string(),
  v: v.union([v.string(), v.number(), v.boolean()]),
  i: v.pipe(v.string(), v.maxLength(64)),
});

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
    .sort(
      (a, b) =>
        Number(b.columns[0] === "ownerId") - Number(a.columns[0] === "ownerId") || b.columns.length - a.columns.length,
    );
  const index = candidates[0];
  if (!index)
    throw new AppError("validation_failed", `${c.name} cannot be sorted by ${key}.`, {
      errors: [{ path: "sort", message: `not sortable; sort on one of: ${c.sortable.join(", ")}` }],
    });
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
  const narrowed =
    acc.kind === "own" || served.some((x) => x.key === "ownerId" && x.operand !== null && leading.has("ownerId"));
  if (!narrowed && residual.length) {
    const usable = new Set(
      c.indexes.filter((ix) => ix.columns.at(-2) === key).flatMap((ix) => ix.columns.slice(0, -2)),
    );
    const what = [...usable]
      .map((k) => `${k} (equality)`)
      .concat(`${key} (${[...RANGE_OPS].join(", ")})`)
      .join(", ");
    const first = residual[0]!;
    throw new AppError(
      "validation_failed",
      `A list of ${c.name} across all owners can only filter on what its index holds; add an ownerId equality to where to filter within one owner's records.`,
      {
        errors: [
          {
            path: `where.${first.key}`,
            message: `a list across all owners sorted by ${key} filters only on ${what}; add "ownerId" to where to use ${first.key} ${first.op}`,
          },
        ],
      },
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
  const conds: (SQL | undefined)[] = [
    ownerFilter(t.ownerId, acc),
    ...plan.served.map((x) => termSql(c, x, false)),
    ...plan.residual.map((x) => termSql(c, x, true)),
  ];
  if (o.cursor) {
    const cur = decodeCursor(o.cursor, ListCursor);
    if (cur.s !== o.sort)
      throw new AppError("validation_failed", "The cursor belongs to another sort order.", {
        errors: [{ path: "cursor", message: "sort changed" }],
      });
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
export async function listRecords(
  db: Database,
  c: Collection,
  p: Principal | null,
  o: ListOptions,
): Promise<{ items: RecordRow[]; nextCursor: string | null }> {
  const acc = narrower(access(c.rules.list, p), access(c.rules.read, p));
  if (acc.kind === "denied") throw new AppError("forbidden", `Only the service key may list ${c.name}.`);
  const rows = (await listQuery(db, c, acc, o)) as RecordRow[];
  const items = rows.slice(0, o.limit);
  const last = items.at(-1);
  const key = o.sort.replace(/^-/, "");
  return {
    items,
    nextCursor:
      rows.length > o.limit && last ? encodeCursor({ s: o.sort, v: (last[key] ?? null) as Scalar, i: last.id }) : null,
  };
}

// --- change feed ---------------------------------------------------------------------------

const ChangeCursor = v.strictObject({ q: v.pipe(v.number(), v.safeInteger(), v.minValue(0)) });

/** The change-feed query (exported for the query-plan test). */
export function changesQuery(db: Database, c: Collection, acc: Access, since: number, limit: number) {
  const t = c.table;
  const rc = recordChanges;
  // The log's columns under names no record column can have (columns are snake_case field names,
  // never starting with "_"): in a D1 batch, rows come back keyed by column name, and a shared
  // name (`version`) would collapse two columns into one.
  return db
    .select({
      seq: sql<number>`${rc.seq}`.as("_log_seq"),
      recordId: sql<string>`${rc.recordId}`.as("_log_record_id"),
      version: sql<number>`${rc.version}`.as("_log_version"),
      deleted: sql<number>`${rc.deleted}`.as("_log_deleted"),
      record: getTableColumns(t),
    })
    .from(recordChanges)
    .leftJoin(t, eq(t.id, recordChanges.recordId))
    .where(
      and(eq(recordChanges.collection, c.name), ownerFilter(recordChanges.ownerId, acc), gt(recordChanges.seq, since)),
    )
    .orderBy(asc(recordChanges.seq))
    .limit(limit + 1);
}

/** The feed's items from change-log rows: a tombstone, or the record as it is now (rows are read with it). */
function itemsOf(rows: Awaited<ReturnType<typeof changesQuery>>): { seq: number; item: RecordRow | Tombstone }[] {
  return rows.flatMap((r): { seq: number; item: RecordRow | Tombstone }[] =>
    r.deleted === 1
      ? [{ seq: r.seq, item: { id: r.recordId, deleted: true as const, version: r.version } }]
      : r.record
        ? [{ seq: r.seq, item: r.record as RecordRow }]
        : [],
  );
}

/** The highest seq the retention task pruned from `collection`'s log (0: nothing yet). */
const horizonQuery = (db: Database, collection: string) =>
  db
    .select({ seq: recordChangeHorizons.seq })
    .from(recordChangeHorizons)
    .where(eq(recordChangeHorizons.collection, collection));

/** A cursor below the pruned horizon may have missed a deletion that is no longer in the log. */
const resyncRequired = () =>
  new AppError(
    "resync_required",
    "This cursor is older than the change log keeps deletions; sync again without a cursor (from the start).",
  );

/** Decodes a `since` cursor: its change-log position (0 = from the start). */
export const sinceOf = (since: string | undefined): number =>
  since ? decodeCursor(since, ChangeCursor, "since").q : 0;

/** The cursor of change-log position `seq`. */
export const cursorAt = (seq: number): string => encodeCursor({ q: seq });

/**
 * Everything written after `since` that the caller may read, oldest first. Why no write is ever
 * skipped: each write and its log row commit in one D1 batch, and D1 runs one write transaction
 * at a time, so `seq` values become visible in increasing order; a reader that saw seq N has
 * already seen every seq below N. A record changed twice appears once, at its latest seq.
 * A `since` older than a tombstone the retention task pruned is 410 `resync_required` (checked in
 * the same round trip: the horizon and the page are one batch, so one consistent snapshot).
 */
export async function changesSince(
  db: Database,
  c: Collection,
  p: Principal | null,
  o: { since?: string | undefined; limit: number },
): Promise<{ items: (RecordRow | Tombstone)[]; nextCursor: string; hasMore: boolean }> {
  const acc = narrower(access(c.rules.list, p), access(c.rules.read, p));
  if (acc.kind === "denied") throw new AppError("forbidden", `Only the service key may read the changes of ${c.name}.`);
  const since = sinceOf(o.since);
  const [horizon, rows] = await db.batch([horizonQuery(db, c.name), changesQuery(db, c, acc, since, o.limit)]);
  if (o.since !== undefined && since < (horizon[0]?.seq ?? 0)) throw resyncRequired();
  const page = rows.slice(0, o.limit);
  return {
    items: itemsOf(page).map((x) => x.item),
    nextCursor: cursorAt(page.at(-1)?.seq ?? since),
    hasMore: rows.length > o.limit,
  };
}

/** One page of a collection's change log as a live-data hub reads it (see `readLog`). */
export interface LogPage {
  /** Changes after `from`, oldest first, each with its seq. */
  items: { seq: number; item: RecordRow | Tombstone }[];
  /** Where a reader stands after this page: the last seq read, or (when the page reached the end) the log's last seq in scope. */
  position: number;
  /** The page reached the end of the log (as of this read). */
  end: boolean;
  /** The retention horizon: a reader whose position is below it must resync. */
  horizon: number;
  /** Whether the given session is still alive (null when none was asked about). */
  sessionAlive: boolean | null;
}

/** The log's last seq in scope and the horizon (exported for the query-plan test). */
export function logMetaQuery(
  db: Database,
  c: Collection,
  owner: string | null,
  session?: { userId: string; sessionId: string },
) {
  const rc = recordChanges;
  const top = db
    .select({ top: sql<number | null>`max(${rc.seq})` })
    .from(rc)
    .where(and(eq(rc.collection, c.name), owner === null ? undefined : eq(rc.ownerId, owner)));
  const alive = session ? sessionLiveSql(session.sessionId, session.userId) : sql<null>`NULL`;
  return db
    .select({
      top: sql<number | null>`(${top})`,
      horizon: sql<number | null>`(${horizonQuery(db, c.name)})`,
      session: alive,
    })
    .from(sql`(SELECT 1) AS one`);
}

/**
 * A live-data hub's read of the log (one D1 round trip: one batch): up to `limit` changes after
 * `from` for one owner (`owner`) or everyone (null), the log's last seq in scope, the retention
 * horizon, and optionally whether a session is alive (checked on a socket's first read).
 * `position` is where the reader stands afterwards: if the page reached the end, the log's last seq
 * in scope (also when that is below `from`: a cursor from the future is brought back to the log).
 */
export async function readLog(
  db: Database,
  c: Collection,
  owner: string | null,
  from: number,
  limit: number,
  session?: { userId: string; sessionId: string },
): Promise<LogPage> {
  const acc: Access = owner === null ? { kind: "all" } : { kind: "own", userId: owner };
  const [meta, rows] = await db.batch([logMetaQuery(db, c, owner, session), changesQuery(db, c, acc, from, limit)]);
  const m = meta[0];
  const page = rows.slice(0, limit);
  const end = rows.length <= limit;
  return {
    items: itemsOf(page),
    position: end ? (m?.top ?? 0) : page.at(-1)!.seq,
    end,
    horizon: m?.horizon ?? 0,
    sessionAlive: session ? m?.session === 1 : null,
  };
}

/**
 * A live-data hub's backstop, one round trip (a batch, session ids in chunks under D1's 100 bound
 * parameters): which of `sessionIds` are still alive, and the log's last seq in the hub's scope.
 */
export async function liveBackstop(
  db: Database,
  c: Collection,
  owner: string | null,
  sessionIds: string[],
): Promise<{ alive: Set<string>; top: number }> {
  const [meta, ...found] = await db.batch([
    logMetaQuery(db, c, owner),
    ...chunks(sessionIds).map((ids) => liveSessionsQuery(db, ids)),
  ]);
  return { alive: new Set(found.flat().map((r) => r.id)), top: meta[0]?.top ?? 0 };
}

// --- account deletion ----------------------------------------------------------------------

/**
 * Removes every record of a deleted account, in the batch that deletes the user, leaving
 * tombstones (without the owner id) so other readers' sync drops those records too.
 */
export const deleteUserRecords: DeletionHook = async ({ env, db, userId }) => {
  const now = nowIso();
  return {
    statements: collections.flatMap((c) => {
      const mine = eq(c.table.ownerId, userId);
      return [...logChange(db, c, mine, now, true, false), db.delete(c.table).where(mine)];
    }),
    // Subscribers of collections listed across owners get the tombstones; the user's own
    // subscription sockets close (4401: every session ended).
    after: async () => {
      await Promise.all([notifyEveryone(env), closeLiveSessionSockets({ env, db, userId, sessions: "all" })]);
    },
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
