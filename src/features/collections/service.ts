/**
 * The change feed: `GET …/changes` (`changesSince`) and the log reads of the live-data hub
 * (`readLog`, `liveBackstop`), with their cursors and the retention horizon.
 */
import { and, asc, eq, getTableColumns, gt, sql } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import * as v from "valibot";
import type { Database } from "../../db";
import type { TeamRole } from "../../db/schema";
import { recordChangeHorizons, recordChanges } from "../../db/schema/collections";
import type { Principal } from "../../env";
import { AppError } from "../../errors";
import { chunks } from "../../lib/chunks";
import { decodeCursor, encodeCursor } from "../../lib/cursor";
import { liveSessionsQuery, sessionLiveSql } from "../auth";
import { memberRoleSql, noTeam, RANK, roleQuery } from "../teams";
import { type Access, access, accessFilter, leastRank, type RecordRow, type Tombstone } from "./access";
import type { Collection } from "./registry";

const ChangeCursor = v.strictObject({ q: v.pipe(v.number(), v.safeInteger(), v.minValue(0)) });

/**
 * The change-feed query (exported for the query-plan test): the log rows after `since` within the
 * access (and one team, `teamId`), each with the record as it is now. Over several teams,
 * `+seq` keeps SQLite on the team index (the caller's teams' ranges, then a sort of those rows)
 * instead of walking every team's log in seq order.
 */
export function changesQuery(
  db: Database,
  col: Collection,
  acc: Access,
  since: number,
  limit: number,
  teamId?: string | undefined,
) {
  const t = col.table;
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
      ownerId: sql<string | null>`${rc.ownerId}`.as("_log_owner_id"),
      record: getTableColumns(t),
    })
    .from(recordChanges)
    .leftJoin(t, eq(t.id, recordChanges.recordId))
    .where(
      and(
        eq(recordChanges.collection, col.name),
        teamId === undefined ? undefined : eq(recordChanges.teamId, teamId),
        accessFilter(recordChanges, acc),
        gt(recordChanges.seq, since),
      ),
    )
    .orderBy(acc.kind === "team" && teamId === undefined ? sql`+${rc.seq}` : asc(rc.seq))
    .limit(limit + 1);
}

/** One change of the log: its seq, what the feed shows, and its record's owner (tombstones too). */
export interface LogItem {
  seq: number;
  item: RecordRow | Tombstone;
  ownerId: string | null;
}

/** The feed's items from change-log rows: a tombstone, or the record as it is now (rows are read with it). */
function itemsOf(rows: Awaited<ReturnType<typeof changesQuery>>): LogItem[] {
  return rows.flatMap((r): LogItem[] =>
    r.deleted === 1
      ? [{ seq: r.seq, item: { id: r.recordId, deleted: true as const, version: r.version }, ownerId: r.ownerId }]
      : r.record
        ? [{ seq: r.seq, item: r.record as RecordRow, ownerId: r.ownerId }]
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
  col: Collection,
  p: Principal | null,
  o: { since?: string | undefined; limit: number; teamId?: string | undefined },
): Promise<{ items: (RecordRow | Tombstone)[]; nextCursor: string; hasMore: boolean }> {
  const acc = access(col, ["list", "read"], p);
  if (acc.kind === "denied")
    throw new AppError("forbidden", `Only the service key may read the changes of ${col.name}.`);
  const since = sinceOf(o.since);
  // One team's feed: the caller's role there comes in the same round trip (not a member: 404).
  const team = acc.kind === "team" && o.teamId !== undefined ? o.teamId : undefined;
  const horizonRead = horizonQuery(db, col.name);
  const feed = changesQuery(db, col, acc, since, o.limit, o.teamId);
  const [horizon, rows, role] =
    acc.kind === "team" && team !== undefined
      ? await db.batch([horizonRead, feed, roleQuery(db, team, acc.userId)])
      : [...(await db.batch([horizonRead, feed])), null];
  if (acc.kind === "team" && role !== null && (!role[0] || RANK[role[0].role] < leastRank(acc))) throw noTeam();
  if (o.since !== undefined && since < (horizon[0]?.seq ?? 0)) throw resyncRequired();
  const page = rows.slice(0, o.limit);
  return {
    items: itemsOf(page).map((x) => x.item),
    nextCursor: cursorAt(page.at(-1)?.seq ?? since),
    hasMore: rows.length > o.limit,
  };
}

/**
 * What a live-data hub reads of the log: the changes within an access (one owner's, everyone's, a
 * member's teams'), optionally of one team only.
 */
export interface LogView {
  acc: Access;
  teamId?: string | undefined;
}

/** One page of a collection's change log as a live-data hub reads it (see `readLog`). */
export interface LogPage {
  /** Changes after `from`, oldest first, each with its seq. */
  items: LogItem[];
  /**
   * Where a reader stands after this page: the last seq read, or (when the page reached the end) the log's last seq in
   * scope.
   */
  position: number;
  /** The page reached the end of the log (as of this read). */
  end: boolean;
  /** The retention horizon: a reader whose position is below it must resync. */
  horizon: number;
  /** Whether the given session is still alive (null when none was asked about). */
  sessionAlive: boolean | null;
  /** The session's user's role in the view's team (null: not a member, or no team or session asked about). */
  role: TeamRole | null;
}

/**
 * The log's last seq in the view and the horizon (exported for the query-plan test). Over a member's
 * teams the last seq of the whole collection stands in (one index seek; a page that reached the end
 * has everything in the view up to it), not a max over every row of their teams.
 */
export function logMetaQuery(
  db: Database,
  col: Collection,
  view: LogView,
  session?: { userId: string; sessionId: string },
) {
  const rc = recordChanges;
  const scoped =
    view.teamId !== undefined
      ? eq(rc.teamId, view.teamId)
      : view.acc.kind === "own"
        ? eq(rc.ownerId, view.acc.userId)
        : undefined;
  const top = db
    .select({ top: sql<number | null>`max(${rc.seq})` })
    .from(rc)
    .where(and(eq(rc.collection, col.name), scoped));
  const alive = session ? sessionLiveSql(session.sessionId, session.userId) : sql<null>`NULL`;
  const role =
    session && view.teamId !== undefined ? memberRoleSql(sql`${view.teamId}`, session.userId) : sql<null>`NULL`;
  return db
    .select({
      top: sql<number | null>`(${top})`,
      horizon: sql<number | null>`(${horizonQuery(db, col.name)})`,
      session: alive,
      role,
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
  col: Collection,
  view: LogView,
  from: number,
  limit: number,
  session?: { userId: string; sessionId: string },
  /** A statement to run first in the same batch (a hub marking itself open: `openStatement`). */
  first?: BatchItem<"sqlite"> | null,
): Promise<LogPage> {
  const metaQuery = logMetaQuery(db, col, view, session);
  const rowsQuery = changesQuery(db, col, view.acc, from, limit, view.teamId);
  const [meta, rows] = first
    ? ((await db.batch([first, metaQuery, rowsQuery])).slice(1) as [
        Awaited<typeof metaQuery>,
        Awaited<typeof rowsQuery>,
      ])
    : await db.batch([metaQuery, rowsQuery]);
  const m = meta[0];
  const page = rows.slice(0, limit);
  const end = rows.length <= limit;
  return {
    items: itemsOf(page),
    position: end ? (m?.top ?? 0) : page.at(-1)!.seq,
    end,
    horizon: m?.horizon ?? 0,
    sessionAlive: session ? m?.session === 1 : null,
    role: m?.role ?? null,
  };
}

/**
 * A live-data hub's backstop, one round trip (a batch, session ids in chunks under D1's 100 bound
 * parameters): which of `sessionIds` are still alive, and the log's last seq in the hub's scope.
 */
export async function liveBackstop(
  db: Database,
  col: Collection,
  view: LogView,
  sessionIds: string[],
): Promise<{ alive: Set<string>; top: number }> {
  const [meta, ...found] = await db.batch([
    logMetaQuery(db, col, view),
    ...chunks(sessionIds).map((ids) => liveSessionsQuery(db, ids)),
  ]);
  return { alive: new Set(found.flat().map((r) => r.id)), top: meta[0]?.top ?? 0 };
}
