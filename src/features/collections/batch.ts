/**
 * `POST /v1/batch`: up to `limits.batchMaxOperations` creates, updates, replaces and deletes across
 * collections, applied all or nothing in ONE D1 batch (one transaction).
 *
 * D1 has no interactive transactions, so an operation cannot look at a row and then decide. Instead
 * each operation that can fail carries a guard statement placed right before its writes: an
 * INSERT of a NULL into `batch_guards` (NOT NULL) that selects a row only when the operation's
 * precondition does NOT hold (the record is missing, not the caller's, at another version, or its
 * client id is taken). Statements run in order inside the transaction, so a guard sees the effects
 * of the operations before it (create a record, then update it), and a failing guard aborts the
 * whole batch: nothing is written. Only then is the failure explained: the records the operations
 * name are read once and the operations are replayed in memory to find the first one that fails and
 * why (404, 403, 412, 409), as the single routes would answer. The happy path is one round trip.
 */
import { and, eq, exists, inArray, not, type SQL, sql } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import * as v from "valibot";
import { limits } from "../../config";
import { abortBatchIf, type Database, runBatch } from "../../db";
import { type TeamRole, teamMembers, teams } from "../../db/schema";
import { recordChanges } from "../../db/schema/collections";
import type { Principal } from "../../env";
import { AppError, type FieldError } from "../../errors";
import { newId, nowIso } from "../../lib/ids";
import { fromUser, userExistsSql } from "../auth";
import { RANK } from "../teams";
import { access, leastRank, type RecordRow, recordFilter, teamAdmits, visible } from "./access";
import { beforeDelete, beforeWrite } from "./before-hooks";
import { selectValues } from "./create-sql";
import { type Change, changeOf } from "./live";
import { onDeletePlan, referenceRefusal, referencesReadable, restrictRefusal } from "./references";
import { type Collection, collections, findCollection } from "./registry";
import { ClientId, collectionSchemas } from "./schemas";
import {
  afterCommit,
  chosenFields,
  type Logged,
  logChange,
  loggedId,
  logReturning,
  sameFields,
  WROTE,
  type WriteAudit,
  type Writer,
} from "./writes";

// --- request ---------------------------------------------------------------------------------

const CollectionName = v.picklist(
  collections.map((col) => col.name),
  (issue) => `${JSON.stringify(issue.input)} is not a collection (${collections.map((col) => col.name).join(", ")})`,
);
const RecordId = v.pipe(v.string(), v.minLength(1), v.maxLength(64));
/** The version the record must be at: a number, or its ETag (`"3"`). */
const IfMatch = v.union([
  v.pipe(v.number(), v.safeInteger(), v.minValue(1)),
  v.pipe(
    v.string(),
    v.regex(/^"\d{1,15}"$/),
    v.transform((s) => Number(s.slice(1, -1))),
  ),
]);
/** Checked against the collection's own schema afterwards (the path names the field). */
const Data = v.record(v.string(), v.unknown());

export const BatchOperation = v.variant("op", [
  v.strictObject({ op: v.literal("create"), collection: CollectionName, id: v.optional(ClientId), data: Data }),
  v.strictObject({
    op: v.literal("update"),
    collection: CollectionName,
    id: RecordId,
    ifMatch: v.optional(IfMatch),
    data: Data,
  }),
  v.strictObject({
    op: v.literal("replace"),
    collection: CollectionName,
    id: RecordId,
    ifMatch: v.optional(IfMatch),
    data: Data,
  }),
  v.strictObject({ op: v.literal("delete"), collection: CollectionName, id: RecordId, ifMatch: v.optional(IfMatch) }),
]);
export type BatchOperation = v.InferOutput<typeof BatchOperation>;

export const BatchBody = v.strictObject({
  operations: v.pipe(
    v.array(BatchOperation),
    v.minLength(1, "send at least one operation"),
    v.maxLength(limits.batchMaxOperations, `at most ${limits.batchMaxOperations} operations`),
  ),
});

const Tombstone = v.object({ id: v.string(), deleted: v.literal(true) });
const AnyRecord = v.looseObject({
  id: v.string(),
  ownerId: v.nullable(v.string()),
  createdAt: v.string(),
  updatedAt: v.string(),
  version: v.number(),
});
export const BatchResult = v.object({ results: v.array(v.union([AnyRecord, Tombstone])) });

export type BatchItemResult = RecordRow | { id: string; deleted: true };

// --- validation of each operation's data ------------------------------------------------------

const schemas = new Map(collections.map((col) => [col.name, collectionSchemas(col)]));

/** An operation after its data passed the collection's schema. */
interface Planned {
  index: number;
  op: BatchOperation["op"];
  col: Collection;
  /** The record id (a new server id for a create without one). */
  id: string;
  /** The operation names an id the client chose (not a create with a server-made id). */
  named: boolean;
  ifMatch: number | undefined;
  /** Validated fields: the whole record (create, replace) or the changed ones (update). */
  values: Record<string, unknown>;
}

const at = (index: number, message: string, extra: FieldError[] = []): { errors: FieldError[] } => ({
  errors: [{ path: `operations.${index}`, message }, ...extra],
});

/**
 * Validates each operation's data with its collection's schema, and the rules that need no data; the first failure is
 * thrown.
 */
function plan(p: Principal, ops: BatchOperation[]): Planned[] {
  return ops.map((o, index) => {
    const col = findCollection(o.collection)!;
    const colSchemas = schemas.get(col.name)!;
    let values: Record<string, unknown> = {};
    if (o.op !== "delete") {
      const schema = o.op === "update" ? colSchemas.patch : o.op === "create" ? colSchemas.insert : colSchemas.replace;
      const r = v.safeParse(schema, o.data);
      if (!r.success) {
        const errors = r.issues.map((i) => ({
          path: [`operations.${index}.data`, ...(i.path ?? []).map((x) => String(x.key))].join("."),
          message: i.message,
        }));
        throw new AppError("validation_failed", `Operation ${index} is not valid.`, { errors });
      }
      values = r.output;
    }
    if (o.op === "create" && access(col, "create", p).kind === "denied") {
      throw new AppError(
        "forbidden",
        `Operation ${index}: only the service key may create ${col.name} records.`,
        at(index, "forbidden"),
      );
    }
    return {
      index,
      op: o.op,
      col,
      id: o.id ?? newId(),
      named: o.op !== "create" || o.id !== undefined,
      ifMatch: o.op === "create" ? undefined : o.ifMatch,
      values,
    };
  });
}

// --- the write -------------------------------------------------------------------------------

const one = sql`1`;

/** The WHERE of an update or delete: the record, the caller's if the rule says so, at the version asked for. */
function writeWhere(o: Planned, p: Principal): SQL {
  const t = o.col.table;
  const acc = access(o.col, ["read", o.op === "delete" ? "delete" : "update"], p);
  // A rule that denies the caller matches nothing (the explanation then says 404 or 403).
  return and(
    eq(t.id, o.id),
    acc.kind === "denied" ? sql`0` : recordFilter(o.col, acc),
    o.ifMatch === undefined ? undefined : eq(t.version, o.ifMatch),
  )!;
}

interface Built {
  statements: BatchItem<"sqlite">[];
  /** Reads an operation's result and change out of the batch results. */
  results: ((r: unknown[]) => {
    item: BatchItemResult;
    change: Omit<Change, "collection"> | null;
    /** Records a delete cascaded to or nulled. */
    cascaded?: Change[];
  })[];
  /** Whether anyone listens to an event one of the operations raised. */
  listened: (r: unknown[]) => boolean;
  /** Whether a live-data hub that may show one of the operations holds an open socket. */
  live: (r: unknown[]) => boolean;
}

function build(db: Database, p: Principal, ops: Planned[], audit?: WriteAudit): Built {
  const now = nowIso();
  const ownerId = p.kind === "user" ? p.userId : null;
  const statements: BatchItem<"sqlite">[] = [];
  const results: Built["results"] = [];
  const logs: number[] = [];
  const push = (s: BatchItem<"sqlite">) => statements.push(s) - 1;
  const seqAt = (r: unknown[], i: number) => (r[i] as { seq: number }[])[0]?.seq ?? null;
  /** The operation's audit row (when the writer keeps one), right after its write: only if it wrote. */
  const audited = (o: Planned) => {
    if (!audit) return;
    const action = o.op === "create" ? "record.create" : o.op === "delete" ? "record.delete" : "record.update";
    const fields = o.op === "update" || o.op === "replace" ? { fields: Object.keys(o.values) } : {};
    push(audit({ action, target: `${o.col.name}:${o.id}`, detail: { ...fields, batch: true } }, WROTE));
  };
  // A token outlives a deleted account by minutes: nothing is written for an account that is gone.
  if (p.kind === "user") push(abortBatchIf(db, sql`${userExistsSql(p.userId)} = 0`));

  for (const o of ops) {
    const t = o.col.table;
    if (o.op === "create") {
      const row = { ...o.values, id: o.id, ownerId, createdAt: now, updatedAt: now, version: 1 };
      const teamId = (o.values.teamId as string | undefined) ?? null;
      const change = {
        collection: o.col.name,
        recordId: o.id,
        ownerId,
        teamId,
        version: 1,
        deleted: false,
        changedAt: now,
      };
      // Into a team: the caller must hold the role the create rule needs (the service key: the team exists).
      if (teamId !== null) push(abortBatchIf(db, not(teamAdmits(access(o.col, "create", p), teamId))));
      // References: records the caller may read (made earlier in this batch included).
      const refs = referencesReadable(o.col, p, o.values);
      if (refs) push(abortBatchIf(db, not(refs)));
      if (!o.named) {
        const ins = push(db.insert(t).values(row).returning());
        const log = push(db.insert(recordChanges).values(change).returning(logReturning(o.col, "create")));
        logs.push(log);
        audited(o);
        results.push((r) => ({ item: (r[ins] as RecordRow[])[0]!, change: { ownerId, teamId, seq: seqAt(r, log)! } }));
        continue;
      }
      // A client id: new, or the same record sent again by its owner with the same fields.
      const same = and(
        eq(t.id, o.id),
        sql`${t.ownerId} IS ${ownerId}`,
        ...chosenFields(o.col).map((k) => sql`${t[k]!} IS ${sql.param(o.values[k] ?? null, t[k]!)}`),
      );
      push(abortBatchIf(db, and(loggedId(db, o.col, o.id), not(exists(db.select({ one }).from(t).where(same))))!));
      const fresh = not(loggedId(db, o.col, o.id));
      push(
        db
          .insert(t)
          .select(selectValues(t, row, fresh))
          .onConflictDoNothing(),
      );
      const log = push(
        db
          .insert(recordChanges)
          .select(
            selectValues(
              recordChanges,
              { ...change, seq: null },
              and(
                fresh,
                exists(
                  db
                    .select({ one })
                    .from(t)
                    .where(and(eq(t.id, o.id), eq(t.createdAt, now), eq(t.version, 1))),
                ),
              ),
            ),
          )
          .returning(logReturning(o.col, "create")),
      );
      logs.push(log);
      audited(o);
      const sel = push(db.select().from(t).where(eq(t.id, o.id)));
      results.push((r) => {
        const seq = seqAt(r, log);
        return { item: (r[sel] as RecordRow[])[0]!, change: seq === null ? null : { ownerId, teamId, seq } };
      });
      continue;
    }
    const where = writeWhere(o, p);
    push(abortBatchIf(db, not(exists(db.select({ one }).from(t).where(where)))));
    if (o.op !== "delete") {
      const refs = referencesReadable(o.col, p, o.values);
      if (refs) push(abortBatchIf(db, not(refs)));
    }
    // A delete: the records that reference this one first (cascade, null, or a restrict guard). Its
    // version was checked by the guard above; a cascade may bump it (a count the record keeps), so
    // what follows matches the record without it.
    const target = o.op === "delete" ? writeWhere({ ...o, ifMatch: undefined }, p) : where;
    const cascade =
      o.op === "delete"
        ? onDeletePlan(db, o.col.name, sql`(SELECT ${t.id} FROM ${t} WHERE ${target})`, now, logChange)
        : null;
    const cascadeAt = statements.length;
    for (const c of cascade?.statements ?? []) push(c);
    const [drop, insert] = logChange(db, o.col, target, now, o.op === "delete");
    push(drop);
    const log = push(insert);
    logs.push(log);
    if (o.op === "delete") {
      const del = push(db.delete(t).where(target).returning());
      audited(o);
      results.push((r) => {
        const seq = seqAt(r, log)!;
        return {
          item: { id: o.id, deleted: true },
          change: { ...changeOf((r[del] as RecordRow[])[0]!), seq },
          cascaded: cascade!.changes(r, cascadeAt, seq),
        };
      });
    } else {
      const upd = push(
        db
          .update(t)
          .set({ ...o.values, updatedAt: now, version: sql`${t.version} + 1` })
          .where(where)
          .returning(),
      );
      audited(o);
      results.push((r) => {
        const rec = (r[upd] as RecordRow[])[0]!;
        return { item: rec, change: { ...changeOf(rec), seq: seqAt(r, log)! } };
      });
    }
  }
  return {
    statements,
    results,
    listened: (r) => logs.some((i) => Boolean((r[i] as Logged)[0]?.listened)),
    live: (r) => logs.some((i) => Boolean((r[i] as Logged)[0]?.live)),
  };
}

/** A batch aborted by a guard (or by another constraint: a concurrent write got in first). */
const isGuardFailure = (e: unknown) =>
  e instanceof Error && /constraint failed/i.test(`${e.message} ${String(e.cause ?? "")}`);

// --- explaining a failure --------------------------------------------------------------------

const keyOf = (col: Collection, id: string) => `${col.name}\u0000${id}`;

/**
 * Finds the first operation that fails against the records as they are now, replaying the
 * operations in memory (each sees the effects of the ones before it, as in the batch). One read
 * batch. Returns null when every operation would pass (the records changed since the write).
 */
async function explain(db: Database, p: Principal, ops: Planned[]): Promise<AppError | null> {
  const named = new Map<string, { col: Collection; ids: Set<string> }>();
  for (const o of ops) {
    if (!o.named) continue;
    const g = named.get(o.col.name) ?? { col: o.col, ids: new Set<string>() };
    g.ids.add(o.id);
    named.set(o.col.name, g);
  }
  const groups = [...named.values()].map((g) => ({ col: g.col, ids: [...g.ids] }));
  const reads: BatchItem<"sqlite">[] = [
    fromUser(db, p.kind === "user" ? p.userId : "", { id: sql<string>`${p.kind === "user" ? p.userId : ""}` }),
    // The caller's teams and roles (team-scoped rules), or the teams the service key's creates name.
    p.kind === "user"
      ? db
          .select({ teamId: teamMembers.teamId, role: teamMembers.role })
          .from(teamMembers)
          .where(eq(teamMembers.userId, p.userId))
      : db
          .select({ teamId: teams.id, role: sql<TeamRole>`'owner'` })
          .from(teams)
          .where(inArray(teams.id, [...new Set(ops.map((o) => String(o.values.teamId ?? "")))])),
  ];
  for (const g of groups) {
    reads.push(db.select().from(g.col.table).where(inArray(g.col.table.id, g.ids)));
    reads.push(
      db
        .select({ id: recordChanges.recordId })
        .from(recordChanges)
        .where(and(eq(recordChanges.collection, g.col.name), inArray(recordChanges.recordId, g.ids))),
    );
  }
  const got = await runBatch(db, reads);
  if (p.kind === "user" && (got[0] as unknown[]).length === 0)
    return new AppError("unauthorized", "This account no longer exists.");
  const roles = new Map((got[1] as { teamId: string; role: TeamRole }[]).map((m) => [m.teamId, m.role]));
  const rows = new Map<string, RecordRow | null>();
  const logged = new Set<string>();
  groups.forEach((g, i) => {
    for (const r of got[2 + 2 * i] as RecordRow[]) rows.set(keyOf(g.col, r.id), r);
    for (const r of got[3 + 2 * i] as { id: string }[]) logged.add(keyOf(g.col, r.id));
  });
  /** An operation's references that D1 cannot vouch for (records made earlier in the batch do not count). */
  const refsRefusal = (o: Planned) => {
    const pending = Object.fromEntries(
      Object.entries(o.values).filter(([key, id]) => {
        const target = o.col.fields[key]?.ref?.target;
        const made = target && target !== "users" ? rows.get(keyOf(findCollection(target)!, String(id))) : undefined;
        return !made;
      }),
    );
    return referenceRefusal(db, o.col, p, pending, (key) => `operations.${o.index}.data.${key}`);
  };
  /** A row with the caller's role in its team (team-scoped collections), as `visible` takes it. */
  const withRole = (row: RecordRow) => ({ ...row, role: roles.get(String(row.teamId)) ?? null });

  const ownerId = p.kind === "user" ? p.userId : null;
  for (const o of ops) {
    const k = keyOf(o.col, o.id);
    const row = rows.get(k) ?? null;
    if (o.op === "create") {
      const teamId = o.values.teamId;
      if (typeof teamId === "string") {
        const role = roles.get(teamId);
        const acc = access(o.col, "create", p);
        if (!role) return new AppError("not_found", `Operation ${o.index}: no such team.`, at(o.index, "no such team"));
        if (acc.kind === "team" && RANK[role] < leastRank(acc))
          return new AppError(
            "forbidden",
            `Operation ${o.index}: your role in this team does not allow creating ${o.col.name} records.`,
            at(o.index, "forbidden"),
          );
      }
      const refused = await refsRefusal(o);
      if (refused) return refused;
      if (!o.named) continue;
      if (row) {
        if (row.ownerId === ownerId && sameFields(o.col, row, o.values)) continue;
        return new AppError(
          "conflict",
          `Operation ${o.index}: this id is already taken in ${o.col.name}.`,
          at(o.index, "id already taken"),
        );
      }
      if (logged.has(k))
        return new AppError(
          "conflict",
          `Operation ${o.index}: this id was used by a record that was deleted; ids are not reused.`,
          at(o.index, "id already used"),
        );
      rows.set(k, { ...o.values, id: o.id, ownerId, version: 1 });
      logged.add(k);
      continue;
    }
    const write = access(o.col, ["read", o.op === "delete" ? "delete" : "update"], p);
    if (!row || !visible(access(o.col, "read", p), withRole(row)))
      return new AppError(
        "not_found",
        `Operation ${o.index}: no such record in ${o.col.name}.`,
        at(o.index, "not found"),
      );
    if (!visible(write, withRole(row)))
      return new AppError(
        "forbidden",
        `Operation ${o.index}: you may not change this ${o.col.name} record.`,
        at(o.index, "forbidden"),
      );
    if (o.ifMatch !== undefined && row.version !== o.ifMatch) {
      return new AppError(
        "version_conflict",
        `Operation ${o.index}: the record is at version ${row.version}, not ${o.ifMatch}; fetch it again and retry.`,
        at(o.index, `at version ${row.version}`),
      );
    }
    if (o.op === "delete") {
      const restricted = await restrictRefusal(db, o.col, o.id, `operations.${o.index}`);
      if (restricted) return restricted;
      rows.set(k, null);
    } else {
      const refused = await refsRefusal(o);
      if (refused) return refused;
      rows.set(k, { ...row, ...o.values, version: row.version + 1 });
    }
  }
  return null;
}

// --- entry -----------------------------------------------------------------------------------

/**
 * Applies `ops` as one D1 batch, then the write path's after-commit step (`afterCommit`); on a
 * failed precondition, throws the first failing operation's error (`errors[0].path` =
 * `operations.<index>`) and nothing is written. When the records change between the failed write
 * and its explanation, the write is tried once more.
 */
export async function applyBatch(w: Writer, p: Principal, ops: BatchOperation[]): Promise<BatchItemResult[]> {
  const db = w.db;
  const planned = plan(p, ops);
  // The collections' before hooks, in order, for every operation: one may change its data or refuse
  // the whole batch (nothing is written).
  for (const o of planned) {
    if (o.op === "delete") await beforeDelete(w, o.col, p, o.id);
    else
      o.values = await beforeWrite(
        w,
        o.col,
        p,
        o.op === "create" ? "create" : "update",
        o.values,
        o.op === "create" ? undefined : o.id,
      );
  }
  for (let attempt = 0; attempt < 2; attempt++) {
    const built = build(db, p, planned, w.audit);
    try {
      const r = await runBatch(db, built.statements);
      const out = built.results.map((read) => read(r));
      afterCommit(
        w,
        {
          changes: out.flatMap((x, i): Change[] => [
            ...(x.change ? [{ collection: planned[i]!.col, ...x.change }] : []),
            ...(x.cascaded ?? []),
          ]),
        },
        built.listened(r),
        built.live(r),
      );
      return out.map((x) => x.item);
    } catch (e) {
      if (!isGuardFailure(e)) throw e;
      const why = await explain(db, p, planned);
      if (why) throw why;
    }
  }
  throw new AppError("conflict", "The records changed while the batch was applied; read them again and retry.");
}
