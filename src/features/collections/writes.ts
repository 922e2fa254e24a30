/**
 * Record writes: create, update, delete and account cleanup, the one path every writer takes (routes,
 * `/v1/batch`, the console, account deletion). Every write goes out in one D1 batch together with its
 * change-log row (see `logChange`), then `afterCommit` tells the live-data hubs.
 */

import { and, eq, exists, inArray, not, type SQL, sql } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import { abortBatchIf, type Database, isBatchAbort, runBatch } from "../../db";
import { teams } from "../../db/schema";
import { recordChanges } from "../../db/schema/collections";
import type { Principal } from "../../env";
import { AppError } from "../../errors";
import { newId, nowIso } from "../../lib/ids";
import type { DeletionHook } from "../../lifecycle";
import { userExists, userExistsSql } from "../auth";
import { listenedSql, sendDrain } from "../logic";
import { memberRoleSql, noTeam, RANK } from "../teams";
import {
  type Access,
  access,
  etag,
  leastRank,
  notFound,
  type RecordRow,
  recordFilter,
  teamAdmits,
  teamColumn,
  visible,
} from "./access";
import { beforeDelete, beforeWrite } from "./before-hooks";
import { plainCreate, selectValues } from "./create-sql";
import { TEAM_FIELD } from "./define";
import { type Change, changeOf, closeLiveSessionSockets, notifyEveryone, notifyHubs } from "./live";
import { liveSql } from "./live-keys";
import { onDeletePlan, referenceRefusal, referencesReadable, restrictRefusal } from "./references";
import { type Collection, collections, raisedEvents } from "./registry";

/**
 * The audit row of a write, for the write's own batch; `when` makes it conditional on the write
 * (`WROTE`, placed right after the write's statement).
 */
export type WriteAudit = (
  e: { action: string; target: string; detail?: Record<string, unknown> },
  when: SQL,
) => BatchItem<"sqlite">;

/** True right after a statement that changed at least one row (SQLite's `changes()`). */
export const WROTE = sql`changes() > 0`;

/** Who writes, and how work after the answer runs (the request's `waitUntil`). */
export interface Writer {
  db: Database;
  env: Env;
  waitUntil: (work: Promise<unknown>) => void;
  /** Set when the write leaves an audit row (the console, the service key): it rides in the write's batch. */
  audit?: WriteAudit | undefined;
  /** How deep in hooks that write through `app` this write is (0: a request's own write). */
  depth?: number;
}

/**
 * What a committed write hands to the step after it: its changes (collection, owner, change-log seq),
 * or `everyone` for a cascade that logged many records' changes without reading their seqs back.
 */
export type Committed = { changes: Change[] } | { everyone: true };

/**
 * The step after every committed record write: the live-data hubs that may show it are told (only
 * when one of them holds an open socket: `live`), and when someone listens to an event the write
 * raised (`listened`: an after hook, a webhook), the events it wrote are drained (the Queue runs
 * them). Never throws.
 */
async function afterCommitted(env: Env, committed: Committed, listened: boolean, live: boolean): Promise<void> {
  await Promise.all([
    "everyone" in committed ? notifyEveryone(env) : live ? notifyHubs(env, committed.changes) : undefined,
    listened ? sendDrain(env) : undefined,
  ]);
}

/**
 * Runs `afterCommitted` after the answer (`waitUntil`): a write never waits on the fan-out. A write
 * no open subscription can show and nobody listens to leaves nothing to run.
 */
export function afterCommit(w: Writer, committed: Committed, listened = false, live = true): void {
  if ("changes" in committed && (committed.changes.length === 0 || (!live && !listened))) return;
  w.waitUntil(afterCommitted(w.env, committed, listened, live));
}

/**
 * What a change-log insert returns: its `seq`, whether anyone listens to what the write raises, and
 * whether a live-data hub that may show it holds an open socket (`live_hubs`, see `liveSql`).
 */
export const logReturning = (col: Collection, op: "create" | "update" | "delete") => ({
  seq: recordChanges.seq,
  listened: listenedSql(raisedEvents(col.name, op)),
  live: liveSql(col, op),
});
export type Logged = { seq: number; listened: number | boolean; live: number | boolean }[];

/** A change-log row's seq and flags, as booleans. */
const loggedFlags = (log: Logged[number]) => ({
  seq: log.seq,
  listened: Boolean(log.listened),
  live: Boolean(log.live),
});

/**
 * What a write did, for its answer and for the live-data notification (`seq`: its change-log row; null = nothing
 * written).
 */
export interface Created {
  record: RecordRow;
  /** False when a client id was sent again for the same record (200, nothing written). */
  created: boolean;
  seq: number | null;
  /** Someone listens to an event this write raised (see `logReturning`). */
  listened: boolean;
  /** A live-data hub that may show this write holds an open socket (see `logReturning`). */
  live: boolean;
}
export interface Updated {
  record: RecordRow;
  seq: number;
  listened: boolean;
  live: boolean;
}
export interface Deleted {
  /** The record as it was. */
  gone: RecordRow;
  seq: number;
  listened: boolean;
  live: boolean;
  /** The records its deletion cascaded to or nulled (their changes noted at `seq`). */
  cascaded: Change[];
}

/**
 * The change-log statements of an update or delete, run in the same batch BEFORE the write and
 * with the same WHERE: the batch is one transaction, so they see the same rows as the write and
 * either all apply or none does. The record's previous log row is dropped and a new one gets a
 * new, higher `seq` (AUTOINCREMENT never reuses one), so a record sits once in the log.
 */
export function logChange(db: Database, col: Collection, where: SQL, now: string, deleted: boolean, keepOwner = true) {
  const t = col.table;
  const rc = recordChanges;
  const touched = db.select({ id: t.id }).from(t).where(where);
  return [
    db.delete(rc).where(and(eq(rc.collection, col.name), inArray(rc.recordId, touched))),
    db
      .insert(rc)
      .select(
        db
          .select({
            // NULL into an AUTOINCREMENT key: SQLite assigns the next seq
            seq: sql<number>`NULL`.as("seq"),
            collection: sql<string>`${col.name}`.as("collection"),
            recordId: t.id,
            ownerId: (keepOwner ? sql<string | null>`${t.ownerId}` : sql<null>`NULL`).as("owner_id"),
            teamId: (col.scope === "team" ? sql<string>`${t.teamId}` : sql<null>`NULL`).as("team_id"),
            version: sql<number>`${t.version} + 1`.as("version"),
            deleted: sql<boolean>`${deleted ? 1 : 0}`.as("deleted"),
            changedAt: sql<string>`${now}`.as("changed_at"),
          })
          .from(t)
          .where(where),
      )
      .returning(logReturning(col, deleted ? "delete" : "update")),
  ] as const;
}

/** The change-log row of record `id` exists: it was created once (a tombstone keeps an id taken). */
export const loggedId = (db: Database, col: Collection, id: string) =>
  exists(
    db
      .select({ one: sql`1` })
      .from(recordChanges)
      .where(and(eq(recordChanges.collection, col.name), eq(recordChanges.recordId, id))),
  );

/** What a create chooses: the declared fields and, in a team-scoped collection, the team. */
export const chosenFields = (col: Collection): string[] => [
  ...Object.keys(col.fields).filter((k) => !col.fields[k]!.count),
  ...(col.scope === "team" ? [TEAM_FIELD] : []),
];

/** Stored fields equal what a create asks for (a retried create of the same record). */
export function sameFields(col: Collection, stored: Record<string, unknown>, body: Record<string, unknown>): boolean {
  return chosenFields(col).every((k) => JSON.stringify(stored[k] ?? null) === JSON.stringify(body[k] ?? null));
}

const conflictingId = (col: Collection) =>
  new AppError(
    "conflict",
    `This id is already taken in ${col.name} (by another record, or by a different create); a retry must send ` +
      `the same fields.`,
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
export async function commitCreate(
  db: Database,
  col: Collection,
  p: Principal | null,
  input: Record<string, unknown>,
  audit?: WriteAudit,
): Promise<Created> {
  const acc = access(col, "create", p);
  if (acc.kind === "denied") throw new AppError("forbidden", `Only the service key may create ${col.name} records.`);
  const { id: clientId, ...body } = input as Record<string, unknown> & { id?: string; teamId?: string };
  const now = nowIso();
  const id = clientId ?? newId();
  const ownerId = p?.kind === "user" ? p.userId : null;
  const teamId = col.scope === "team" ? (body.teamId ?? null) : null;
  const row: Record<string, unknown> = { ...body, id, ownerId, createdAt: now, updatedAt: now, version: 1 };
  const change = {
    seq: null,
    collection: col.name,
    recordId: id,
    ownerId,
    teamId,
    version: 1,
    deleted: false,
    changedAt: now,
  };
  // A user's record only while the user exists and (in a team) holds the role the rule needs as
  // its creator; the service key's only into a team that exists. Checked inside the insert.
  // Every reference points at a record the caller may read.
  const refs = referencesReadable(col, p, body);
  // Built only when a statement needs it (a plain create runs prebuilt statements).
  const ownerLives = () =>
    and(
      p?.kind === "user" ? sql`${userExistsSql(p.userId)} = 1` : undefined,
      teamId === null ? undefined : teamAdmits(acc, teamId),
      refs,
    );
  // After the change-log row: recorded only when the record was written.
  const audited = audit ? [audit({ action: "record.create", target: `${col.name}:${id}` }, WROTE)] : [];

  if (clientId === undefined) {
    // The common case runs statements built once per collection (`plainCreate`).
    const plain = p?.kind === "user" && teamId === null && !refs && !audit;
    // Otherwise statements built for this request (their shared condition built once).
    const built = () => {
      const lives = ownerLives();
      return runBatch(db, [
        db
          .insert(col.table)
          .select(selectValues(col.table, row, lives))
          .returning(),
        db
          .insert(recordChanges)
          .select(selectValues(recordChanges, change, lives))
          .returning(logReturning(col, "create")),
        ...audited,
      ]);
    };
    const [inserted, logged] =
      (plain && (await plainCreate(db, col, p.userId, row, change, () => logReturning(col, "create")))) ||
      (await built());
    const rec = (inserted as RecordRow[])[0];
    if (!rec) return explainCreateMiss(db, col, p, acc, teamId, body);
    const log = (logged as Logged)[0]!;
    return { record: rec, created: true, ...loggedFlags(log) };
  }

  const t = col.table;
  const lives = ownerLives();
  const fresh = not(loggedId(db, col, id));
  const [, logged, ...rest] = await runBatch(db, [
    db
      .insert(t)
      .select(selectValues(t, row, and(fresh, lives)))
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
      .returning(logReturning(col, "create")),
    ...audited,
    db.select().from(t).where(eq(t.id, id)),
  ]);
  const log = (logged as Logged)[0];
  const rec = (rest.at(-1) as RecordRow[])[0];
  if (log && rec) return { record: rec, created: true, ...loggedFlags(log) };
  // Not a member (any more), or the team is gone: that, before anything about the id.
  if (teamId !== null) await explainTeamMiss(db, acc, teamId);
  if (!rec) {
    const refused = await referenceRefusal(db, col, p, body);
    if (refused) throw refused;
  }
  // A retry: the same caller (anonymous callers own nothing, so they cannot retry) with the same fields.
  if (rec && p && rec.ownerId === ownerId && sameFields(col, rec, body))
    return { record: rec, created: false, seq: null, listened: false, live: false };
  if (!rec && p?.kind === "user" && !(await userExists(db, p.userId))) {
    throw new AppError("unauthorized", "This account no longer exists.");
  }
  throw conflictingId(col);
}

/** Why a create into `teamId` wrote nothing: not a member or no such team (404), a role too low (403). */
async function explainTeamMiss(db: Database, acc: Access, teamId: string): Promise<void> {
  if (acc.kind !== "team") {
    const team = await db.select({ id: teams.id }).from(teams).where(eq(teams.id, teamId)).get();
    if (!team) throw noTeam();
    return;
  }
  const found = await db
    .select({ role: memberRoleSql(sql`${teamId}`, acc.userId) })
    .from(sql`(SELECT 1) AS one`)
    .get();
  if (!found?.role) throw noTeam();
  if (RANK[found.role] < leastRank(acc))
    throw new AppError("forbidden", "Your role in this team does not allow creating this record.");
}

/**
 * Why a create without a client id wrote nothing: the team (see `explainTeamMiss`), a reference to a
 * record the caller cannot read (400), else the account is gone.
 */
async function explainCreateMiss(
  db: Database,
  col: Collection,
  p: Principal | null,
  acc: Access,
  teamId: string | null,
  body: Record<string, unknown>,
): Promise<never> {
  if (teamId !== null) await explainTeamMiss(db, acc, teamId);
  const refused = await referenceRefusal(db, col, p, body);
  if (refused) throw refused;
  throw new AppError("unauthorized", `This account no longer exists (nothing was written to ${col.name}).`);
}

/**
 * Why a conditional write matched no row: 404 unreadable or gone, 403 readable but not writable, 400 a
 * reference the caller cannot read (an update's `values`), else 412.
 */
async function explainMiss(
  db: Database,
  col: Collection,
  p: Principal | null,
  id: string,
  write: Access,
  values: Record<string, unknown> = {},
): Promise<never> {
  const t = col.table;
  const team = teamColumn(col);
  const current = await db
    .select({
      ownerId: t.ownerId,
      version: t.version,
      // The caller's role in the record's team (team-scoped collections; null: not a member).
      role: team && p?.kind === "user" ? memberRoleSql(sql`${team}`, p.userId) : sql<null>`NULL`,
    })
    .from(t)
    .where(eq(t.id, id))
    .get();
  if (!current || !visible(access(col, "read", p), current)) throw notFound(col);
  if (!visible(write, current)) throw new AppError("forbidden", `You may not change this ${col.name} record.`);
  const refused = await referenceRefusal(db, col, p, values);
  if (refused) throw refused;
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
export async function commitUpdate(
  db: Database,
  col: Collection,
  p: Principal | null,
  id: string,
  values: Record<string, unknown>,
  ifMatch: number[] | null,
  audit?: WriteAudit,
): Promise<Updated> {
  const t = col.table;
  const acc = access(col, ["read", "update"], p);
  if (acc.kind !== "denied") {
    const now = nowIso();
    const where = and(
      eq(t.id, id),
      recordFilter(col, acc),
      ifMatch ? inArray(t.version, ifMatch) : undefined,
      referencesReadable(col, p, values),
    )!;
    const [, logged, updated] = await runBatch(db, [
      ...logChange(db, col, where, now, false),
      db
        .update(t)
        .set({ ...values, updatedAt: now, version: sql`${t.version} + 1` })
        .where(where)
        .returning(),
      ...(audit
        ? [
            audit(
              { action: "record.update", target: `${col.name}:${id}`, detail: { fields: Object.keys(values) } },
              WROTE,
            ),
          ]
        : []),
    ]);
    const row = (updated as RecordRow[])[0];
    const log = (logged as Logged)[0];
    if (row && log) return { record: row, ...loggedFlags(log) };
  }
  return explainMiss(db, col, p, id, acc, values);
}

/** Deletes a record, leaving a tombstone in the change log for sync. */
export async function commitDelete(
  db: Database,
  col: Collection,
  p: Principal | null,
  id: string,
  ifMatch: number[] | null,
  audit?: WriteAudit,
): Promise<Deleted> {
  const t = col.table;
  const acc = access(col, ["read", "delete"], p);
  if (acc.kind !== "denied") {
    const where = and(eq(t.id, id), recordFilter(col, acc))!;
    const now = nowIso();
    // The records that reference this one: cascaded, nulled or refusing (restrict), first.
    const cascade = onDeletePlan(db, col.name, sql`(SELECT ${t.id} FROM ${t} WHERE ${where})`, now, logChange);
    // If-Match is checked before anything else runs: a cascade may give the record a new version (a
    // count it keeps), and the delete must not then miss a record whose referrers are already gone.
    const versioned = ifMatch
      ? [
          abortBatchIf(
            db,
            not(
              exists(
                db
                  .select({ one: sql`1` })
                  .from(t)
                  .where(and(where, inArray(t.version, ifMatch))),
              ),
            ),
          ),
        ]
      : [];
    const results = await runBatch(db, [
      ...versioned,
      ...cascade.statements,
      ...logChange(db, col, where, now, true),
      db.delete(t).where(where).returning(),
      ...(audit ? [audit({ action: "record.delete", target: `${col.name}:${id}` }, WROTE)] : []),
    ]).catch(async (e: unknown) => {
      if (!isBatchAbort(e)) throw e;
      // The If-Match guard, or a `restrict` reference: which one, from the records as they are now.
      throw (await restrictRefusal(db, col, id)) ?? (await explainMiss(db, col, p, id, acc));
    });
    const n = versioned.length + cascade.statements.length;
    const gone = (results[n + 2] as RecordRow[])[0];
    const log = (results[n + 1] as Logged)[0];
    if (gone && log)
      return {
        gone,
        ...loggedFlags(log),
        cascaded: cascade.changes(results, versioned.length, log.seq),
      };
  }
  return explainMiss(db, col, p, id, acc);
}

// --- the write path: commit, then the after-commit step -----------------------------------------

/** Creates a record (see `commitCreate`) after its before hook, and notifies the hubs. */
export async function createRecord(
  w: Writer,
  col: Collection,
  p: Principal | null,
  input: Record<string, unknown>,
): Promise<Created> {
  const r = await commitCreate(w.db, col, p, await beforeWrite(w, col, p, "create", input), w.audit);
  afterCommit(
    w,
    { changes: r.seq === null ? [] : [{ collection: col, ...changeOf(r.record), seq: r.seq }] },
    r.listened,
    r.live,
  );
  return r;
}

/** Updates a record (see `commitUpdate`) and notifies the hubs. */
export async function updateRecord(
  w: Writer,
  col: Collection,
  p: Principal | null,
  id: string,
  values: Record<string, unknown>,
  ifMatch: number[] | null,
): Promise<Updated> {
  const data = await beforeWrite(w, col, p, "update", values, id);
  const r = await commitUpdate(w.db, col, p, id, data, ifMatch, w.audit);
  afterCommit(w, { changes: [{ collection: col, ...changeOf(r.record), seq: r.seq }] }, r.listened, r.live);
  return r;
}

/** Deletes a record (see `commitDelete`) and notifies the hubs. */
export async function deleteRecord(
  w: Writer,
  col: Collection,
  p: Principal | null,
  id: string,
  ifMatch: number[] | null,
): Promise<Deleted> {
  await beforeDelete(w, col, p, id);
  const r = await commitDelete(w.db, col, p, id, ifMatch, w.audit);
  afterCommit(
    w,
    { changes: [{ collection: col, ...changeOf(r.gone), seq: r.seq }, ...r.cascaded] },
    r.listened,
    r.live,
  );
  return r;
}

/**
 * Removes every record of a deleted account, in the batch that deletes the user, leaving
 * tombstones (without the owner id) so other readers' sync drops those records too. Records the
 * account made in a team stay with the team, without an owner (a new version, so every member's
 * sync sees the change).
 */
export const deleteUserRecords: DeletionHook = async ({ env, db, userId }) => {
  const now = nowIso();
  return {
    statements: [
      // Records that reference the account itself (`field.ref("users")`): cascaded or nulled.
      ...onDeletePlan(db, "users", sql`(SELECT ${userId})`, now, logChange, { force: true }).statements,
      ...collections.flatMap((col): BatchItem<"sqlite">[] => {
        const t = col.table;
        const mine = eq(t.ownerId, userId);
        if (col.scope === "team")
          return [
            ...logChange(db, col, mine, now, false, false),
            db
              .update(t)
              .set({ ownerId: null, updatedAt: now, version: sql`${t.version} + 1` })
              .where(mine),
          ];
        // Other records that reference the account's: their onDelete, `restrict` included as a
        // cascade (an account's deletion cannot be refused).
        const refs = onDeletePlan(db, col.name, sql`(SELECT ${t.id} FROM ${t} WHERE ${mine})`, now, logChange, {
          force: true,
        });
        return [...refs.statements, ...logChange(db, col, mine, now, true, false), db.delete(t).where(mine)];
      }),
    ],
    // Subscribers of collections listed across owners get the tombstones; the user's own
    // subscription sockets close (4401: every session ended). Team hubs hear of it from the teams
    // feature (the account left each team): they close its sockets there and read the log again.
    after: async () => {
      await Promise.all([
        // The account's records raised delete (or team-record update) events: drain whatever was written.
        afterCommitted(env, { everyone: true }, true, true),
        closeLiveSessionSockets({ env, db, userId, sessions: "all" }, { teams: false }),
      ]);
    },
  };
};
