/** The drizzle client over D1. Data access lives in each feature's service file; routes never build SQL. */
import { Column, is, SQL, Subquery, sql } from "drizzle-orm";
import { DrizzleD1Database, SQLiteD1Session } from "drizzle-orm/d1";
import { SQLiteAsyncDialect } from "drizzle-orm/sqlite-core";
import { AppError } from "../errors";
import * as schema from "./schema";

/** The dialect holds no per-request state: one per isolate. */
const dialect = new SQLiteAsyncDialect();

/**
 * A drizzle client over a D1 binding or a D1 session (Sessions API, read replicas), built as
 * `drizzle(d1)` builds it (drizzle-orm/d1/driver.js), without a relational schema: Outpost uses
 * the query builders only, never `db.query.*` (no `relations()` are declared), and giving drizzle
 * the schema makes every client build one relational query builder per table (48 of them: the
 * largest CPU cost of a short request's own code, seen in `node scripts/bench/profile.mjs health`).
 * The type has no `query` either, so nothing can start using it by accident. A session has the two
 * methods drizzle's D1 driver calls (`prepare`, `batch`); `exec`/`dump` are only used by drizzle's
 * migrator, which Outpost never runs in the Worker.
 */
export function createDb(d1: D1Database | D1DatabaseSession): DrizzleD1Database & { $client: D1Database } {
  const session = new SQLiteD1Session(d1 as D1Database, dialect, undefined, {});
  const db = new DrizzleD1Database("async", dialect, session, undefined) as DrizzleD1Database & {
    $client: D1Database;
  };
  db.$client = d1 as D1Database;
  return db;
}

/** Request and response header carrying a D1 bookmark (API.md, Conventions). */
export const BOOKMARK_HEADER = "Outpost-Bookmark";

/** A bookmark as D1 issues them (`getBookmark()`): four hex groups. Anything else is never handed to D1. */
const BOOKMARK = /^[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{32}$/;

/**
 * Opens the D1 session of one request. With a bookmark the client saw earlier, every read is at
 * least as fresh as that bookmark (read-your-writes, even from a replica in another region);
 * without one (or with a malformed one, ignored) reads may be served by the nearest replica.
 */
export function openSession(d1: D1Database, bookmark: string | null | undefined): D1DatabaseSession {
  return d1.withSession(bookmark && BOOKMARK.test(bookmark) ? bookmark : "first-unconstrained");
}

/**
 * A client whose first query goes to the primary, for readers with no client bookmark to go by
 * that must not act on stale data: Durable Objects, the queue consumer, cron, and token rotation.
 */
export function primaryDb(d1: D1Database) {
  return createDb(d1.withSession("first-primary"));
}

export type Database = ReturnType<typeof createDb>;

/** A client that only prepares (nothing is run on it): what `prepared` builds its templates with. */
let templateDb: Database | undefined;

/** What `prepared` needs of drizzle's prepared D1 query (drizzle-orm/d1/session.js, D1PreparedQuery). */
interface PreparedD1 {
  stmt: D1PreparedStatement;
  query: { sql: string };
}

/** The row mapping of drizzle's D1PreparedQuery (drizzle-orm/d1/session.js) that `mapRowsFast` replaces. */
interface MappedD1 {
  fields?: { path: string[]; field: unknown }[];
  customResultMapper?: unknown;
  values(placeholders?: Record<string, unknown>): Promise<unknown[][]>;
  get(placeholders?: Record<string, unknown>): Promise<unknown>;
  mapAllResult(rows: unknown, isFromBatch?: boolean): unknown;
  mapGetResult(row: unknown, isFromBatch?: boolean): unknown;
}

type Decoder = { mapFromDriverValue(value: unknown): unknown };

/**
 * Gives a prebuilt query of one table's columns (no joins: every result path is one key) a row
 * mapper worked out once. drizzle's `mapResultRow` finds each cell's decoder with `is()` checks
 * (walking prototype chains) on every row: a 20-row page spent more CPU there than in the rest of
 * the route's own code. Same keys in the same order, same decoders, same NULL handling.
 */
function mapRowsFast(q: MappedD1): void {
  // (drizzle's `joinsNotNullableMap` only matters for joined columns, whose paths have two keys.)
  if (!q.fields || q.customResultMapper) return;
  const keys: string[] = [];
  const decoders: Decoder[] = [];
  for (const { path, field } of q.fields) {
    if (path.length !== 1) return;
    let decoder: Decoder;
    // drizzle's own choice of decoder (drizzle-orm/utils.js, mapResultRow); `decoder` is internal.
    type WithDecoder = { decoder: Decoder };
    if (is(field, Column)) decoder = field;
    else if (is(field, SQL)) decoder = (field as unknown as WithDecoder).decoder;
    else if (is(field, Subquery)) decoder = (field as unknown as { _: { sql: WithDecoder } })._.sql.decoder;
    else decoder = (field as { sql: WithDecoder }).sql.decoder;
    keys.push(path[0]!);
    decoders.push(decoder);
  }
  const mapRow = (row: unknown[]): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    for (let i = 0; i < keys.length; i++) {
      const raw = row[i];
      out[keys[i]!] = raw === null ? null : decoders[i]!.mapFromDriverValue(raw);
    }
    return out;
  };
  // D1's answer to a batched statement: `results` as objects; drizzle turns them into arrays first.
  const rowsOf = (res: unknown, isFromBatch?: boolean) =>
    isFromBatch
      ? (res as { results: Record<string, unknown>[] }).results.map((r) => Object.values(r))
      : (res as unknown[][]);
  q.mapAllResult = (rows, isFromBatch) => rowsOf(rows, isFromBatch).map(mapRow);
  q.mapGetResult = (row, isFromBatch) => {
    const first = isFromBatch ? rowsOf(row, true)[0] : (row as unknown[] | undefined);
    return first === undefined ? undefined : mapRow(first);
  };
  // drizzle's own `get` maps its row with `mapResultRow` directly, not through `mapGetResult`.
  q.get = async function (this: MappedD1, placeholders) {
    return this.mapGetResult((await this.values(placeholders))[0]);
  };
}

/**
 * A query drizzle builds once per isolate instead of on every request. Building SQL from the query
 * builders (walking every column and condition, with drizzle's `is()` checks on each) costs more
 * CPU than the rest of a short request's own work. `build` returns the query with
 * `sql.placeholder(name)` where a request's values go; each call gives that query bound to the
 * request's client (its D1 session): same SQL, same row mapping, values passed to `get`/`all`.
 */
export function prepared<P extends object>(build: (db: Database) => { prepare(): P }): (db: Database) => P {
  let template: P | undefined;
  return (db) => {
    if (!template) {
      templateDb ??= createDb({ prepare: (query: string) => ({ query }) } as unknown as D1Database);
      template = build(templateDb).prepare();
      mapRowsFast(template as P & MappedD1);
    }
    // The template keeps the SQL, the parameters and the row mapping; the copy gets its own statement.
    const q = Object.create(template) as P & PreparedD1;
    q.stmt = db.$client.prepare(q.query.sql);
    return q;
  };
}

import type { BatchItem, BatchResponse } from "drizzle-orm/batch";

/**
 * Runs statements as one atomic D1 batch (D1 has no interactive transactions). Accepts a plain
 * array, so callers can assemble statements from several features.
 */
export async function runBatch(db: Database, items: BatchItem<"sqlite">[]): Promise<unknown[]> {
  if (items.length === 0) return [];
  const [first, ...rest] = items;
  try {
    return (await db.batch([first!, ...rest])) as BatchResponse<
      [BatchItem<"sqlite">, ...BatchItem<"sqlite">[]]
    > as unknown[];
  } catch (e) {
    throw guardViolation(e) ?? e;
  }
}

/**
 * A batch statement that aborts the whole batch (one transaction: nothing of it is written) when
 * `fails` holds: it then inserts NULL into `batch_guards`' NOT NULL column. Placed first, it checks
 * a precondition that no later statement of the batch can see change.
 */
export const abortBatchIf = (db: Database, fails: SQL) =>
  db.insert(schema.batchGuards).select(sql`SELECT NULL AS must_hold WHERE ${fails}`);

/** Whether a batch failed because one of its `abortBatchIf` statements fired. */
export const isBatchAbort = (e: unknown) =>
  e instanceof Error && /NOT NULL constraint failed: batch_guards/i.test(`${e.message} ${String(e.cause ?? "")}`);

/**
 * The database's own guards (triggers that abort a write, see migrations/0008_last_admin_guard.sql)
 * as the API's answer; null for any other error.
 */
function guardViolation(e: unknown): AppError | null {
  const text = `${(e as Error)?.message ?? ""} ${((e as Error)?.cause as Error | undefined)?.message ?? ""}`;
  if (text.includes("last_active_admin")) {
    return new AppError("conflict", "This is the last active admin: promote another admin first.");
  }
  return null;
}
