/**
 * Administration: users (search, counts, role, disabling, deletion), the audit log and the
 * overview. Other features' tables are read through their own exported queries; every admin
 * action writes one audit row, in the same batch as the action where the action is a batch here.
 */
import { and, desc, eq, lt, type SQL, sql } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import * as v from "valibot";
import { type Config, limits } from "../../config";
import { type Database, runBatch } from "../../db";
import { auditLog } from "../../db/schema";
import { AppError } from "../../errors";
import { decodeCursor, encodeCursor } from "../../lib/cursor";
import { newId, nowIso } from "../../lib/ids";
import { type AuditEvent, type Lifecycle, SERVICE_ACTOR } from "../../lifecycle";
import { deleteAccount } from "../account";
import {
  deleteUserSessions,
  expireUserSessions,
  factorSummary,
  getUser,
  issueToken,
  liveSessionCount,
  newestUsersQuery,
  removeFactorsStatements,
  removeSignInMethod,
  revokeUserTokens,
  searchUsersQuery,
  toUser,
  type UserRow,
  unmarkDisabled,
  updateUserStatement,
  userCountsQuery,
  userExistsSql,
  userRowQuery,
} from "../auth";
import { roomCount } from "../chat";
import { recordCounts } from "../collections";
import { storageUsage } from "../files";
import { createMailer, mfaResetMail, passwordResetMail } from "../mail";
import { deviceCount } from "../push";
import type { AdminUser, AdminUserDetail, AuditEntry, PatchUser } from "./schemas";

/** Who acts: an admin's user id, or `service` for the service key; the request (and the client's own id). */
export interface Actor {
  id: string;
  requestId: string;
  clientRequestId: string | null;
}

export { SERVICE_ACTOR };

const toAdminUser = (u: UserRow): AdminUser => ({ ...toUser(u), updatedAt: u.updatedAt });

const IdCursor = v.strictObject({ i: v.pipe(v.string(), v.maxLength(64)) });
const encodeIdCursor = (id: string) => encodeCursor({ i: id });

// --- audit ---------------------------------------------------------------------------------

interface AuditInput {
  action: string;
  target: string;
  detail?: Record<string, unknown> | undefined;
}

/**
 * The audit row of an event, as a statement for the action's own batch; with `when`, written only if
 * it holds (INSERT ... SELECT ... WHERE). The lifecycle's `auditStatement`: other features use it too.
 */
export function auditEventStatement(db: Database, e: AuditEvent, when?: SQL) {
  const row = {
    id: newId(),
    actorId: e.actorId,
    action: e.action,
    target: e.target,
    at: nowIso(),
    requestId: e.requestId,
    detail: e.detail ? JSON.stringify(e.detail) : null,
    clientRequestId: e.clientRequestId,
  };
  if (!when) return db.insert(auditLog).values(row);
  // The columns in the table's order (drizzle names them all in INSERT ... SELECT).
  return db.insert(auditLog).select(
    sql`SELECT ${row.id}, ${row.actorId}, ${row.action}, ${row.target}, ${row.at}, ${row.requestId}, ${row.detail},
        ${row.clientRequestId} WHERE ${when}`,
  );
}

const eventOf = (actor: Actor, e: AuditInput): AuditEvent => ({
  actorId: actor.id,
  requestId: actor.requestId,
  clientRequestId: actor.clientRequestId,
  ...e,
});

/** The audit row of an action, as a statement for the action's own batch (`when`: see `auditEventStatement`). */
export function auditStatement(db: Database, actor: Actor, e: AuditInput, when?: SQL) {
  return auditEventStatement(db, eventOf(actor, e), when);
}

/**
 * The audit row of an action on a user, written only while the user exists: in a batch that may
 * find no such user, nothing is recorded for a target that was never there.
 */
function userAuditStatement(db: Database, actor: Actor, userId: string, e: Omit<AuditInput, "target">) {
  return auditStatement(db, actor, { ...e, target: `user:${userId}` }, userExistsSql(userId));
}

/**
 * Records an action that writes nothing to D1 itself (a view of private data, a queued push, a mail), or
 * whose write is not D1's (a Durable Object's). A D1 write carries its row in its own batch instead.
 */
export async function recordAudit(db: Database, actor: Actor, e: AuditInput): Promise<void> {
  await auditStatement(db, actor, e);
}

function toAuditEntry(r: typeof auditLog.$inferSelect): AuditEntry {
  let detail: Record<string, unknown> | undefined;
  if (r.detail) {
    try {
      detail = JSON.parse(r.detail) as Record<string, unknown>;
    } catch {
      detail = undefined;
    }
  }
  return {
    id: r.id,
    actorId: r.actorId,
    action: r.action,
    target: r.target,
    at: r.at,
    requestId: r.requestId,
    ...(r.clientRequestId ? { clientRequestId: r.clientRequestId } : {}),
    ...(detail ? { detail } : {}),
  };
}

/** The audit log, newest first (its UUIDv7 key is its time order); optionally of one target. */
export async function listAudit(
  db: Database,
  o: { limit: number; cursor?: string | undefined; target?: string },
): Promise<{ items: AuditEntry[]; nextCursor: string | null }> {
  const after = o.cursor ? decodeCursor(o.cursor, IdCursor).i : null;
  const rows = await db
    .select()
    .from(auditLog)
    .where(and(o.target ? eq(auditLog.target, o.target) : undefined, after ? lt(auditLog.id, after) : undefined))
    .orderBy(desc(auditLog.id))
    .limit(o.limit + 1);
  const page = rows.slice(0, o.limit);
  const last = page.at(-1);
  return { items: page.map(toAuditEntry), nextCursor: rows.length > o.limit && last ? encodeIdCursor(last.id) : null };
}

// --- users ---------------------------------------------------------------------------------

/**
 * Users, newest first (UUIDv7 keys sort by creation). `q` matches a part of the email or the name,
 * case-insensitively (bound as a parameter; `instr`, so no LIKE wildcards to escape). A search
 * walks the primary key from the newest account until it has a page: fine for an operator's
 * console, and no index is kept for it.
 */
export async function listUsers(
  db: Database,
  o: { q?: string | undefined; limit: number; cursor?: string | undefined },
): Promise<{ items: AdminUser[]; nextCursor: string | null }> {
  const after = o.cursor ? decodeCursor(o.cursor, IdCursor).i : null;
  const q = o.q?.toLowerCase();
  const rows = await searchUsersQuery(db, q, after, o.limit + 1);
  const page = rows.slice(0, o.limit);
  const last = page.at(-1);
  return { items: page.map(toAdminUser), nextCursor: rows.length > o.limit && last ? encodeIdCursor(last.id) : null };
}

const first = (rows: unknown): number => Number((rows as { n?: number }[])[0]?.n ?? 0);

/** A user with counts of what it has and owns, in one batch; null when there is no such user. */
export async function userDetail(db: Database, id: string): Promise<AdminUserDetail | null> {
  const records = recordCounts(db, id);
  const [user, sessions, storage, rooms, devices, ...perCollection] = (await runBatch(db, [
    userRowQuery(db, id),
    liveSessionCount(db, id),
    storageUsage(db, id),
    roomCount(db, id),
    deviceCount(db, id),
    ...records,
  ])) as [UserRow[], unknown, { files: number; bytes: number }[], unknown, unknown, ...unknown[]];
  const row = user[0];
  if (!row) return null;
  return {
    ...toAdminUser(row),
    counts: {
      sessions: first(sessions),
      records: perCollection.reduce<number>((n, r) => n + first(r), 0),
      files: Number(storage[0]?.files ?? 0),
      bytes: Number(storage[0]?.bytes ?? 0),
      rooms: first(rooms),
      devices: first(devices),
    },
  };
}

/** Who may not be changed how: an admin cannot lock itself out (disable or demote itself). */
function assertNotSelfLockout(actor: Actor, id: string, patch: PatchUser) {
  if (actor.id === id && (patch.disabled === true || patch.role === "user")) {
    throw new AppError("conflict", "You cannot disable or demote yourself; ask another admin or use the service key.");
  }
}

/**
 * Changes a user's role, name or disabled flag, with its audit row, in one batch. Disabling also
 * ends every session (expired in place: see `expireUserSessions`); enabling drops those ended
 * sessions. Returns the user and whether sessions ended (the caller then closes their sockets).
 */
export async function updateUser(
  db: Database,
  actor: Actor,
  id: string,
  patch: PatchUser,
): Promise<{ user: AdminUser; sessionsEnded: boolean }> {
  assertNotSelfLockout(actor, id, patch);
  const now = nowIso();
  const statements: BatchItem<"sqlite">[] = [updateUserStatement(db, id, patch, now)];
  // Disabling revokes the user's access tokens; enabling keeps them refused, as ended sessions.
  const tokens =
    patch.disabled === undefined
      ? null
      : patch.disabled
        ? revokeUserTokens(db, id, "disabled")
        : unmarkDisabled(db, id);
  if (patch.disabled === true) statements.push(expireUserSessions(db, id, now));
  if (patch.disabled === false) statements.push(deleteUserSessions(db, id, true));
  if (tokens) statements.push(tokens.statement);
  statements.push(userAuditStatement(db, actor, id, { action: "user.update", detail: patch }));
  const [updated] = (await runBatch(db, statements)) as [UserRow[]];
  const row = updated[0];
  if (!row) throw new AppError("not_found", "No such user.");
  tokens?.applied();
  return { user: toAdminUser(row), sessionsEnded: patch.disabled === true };
}

/** Ends every session of a user (their sockets are the caller's to close). Returns how many. */
export async function endUserSessions(db: Database, actor: Actor, id: string): Promise<number> {
  const revoked = revokeUserTokens(db, id, "ended");
  const [ended] = (await runBatch(db, [
    deleteUserSessions(db, id),
    revoked.statement,
    userAuditStatement(db, actor, id, { action: "user.sessions_end" }),
  ])) as [{ id: string }[]];
  revoked.applied();
  return ended.length;
}

/**
 * Deletes an account exactly as `DELETE /v1/me` does (the account feature's `deleteAccount`), with
 * the audit row in the same batch. Returns the work to run after it (R2, rooms), or throws 404.
 */
export async function removeUser(
  lifecycle: Lifecycle,
  env: Env,
  db: Database,
  actor: Actor,
  id: string,
): Promise<() => Promise<void>> {
  if (actor.id === id) throw new AppError("conflict", "Delete your own account with DELETE /v1/me, not as an admin.");
  const gone = await deleteAccount(lifecycle, env, db, id, [
    userAuditStatement(db, actor, id, { action: "user.delete" }),
  ]);
  if (!gone.deleted) throw new AppError("not_found", "No such user.");
  return gone.after;
}

/** Mails the user a password-reset code, as `POST /v1/auth/password-reset` does. */
export async function sendResetMail(
  config: Config,
  db: Database,
  actor: Actor,
  id: string,
  linkBase: string,
): Promise<void> {
  const user = await getUser(db, id);
  if (!user) throw new AppError("not_found", "No such user.");
  if (!user.email) throw new AppError("conflict", "This account has no email address to send a reset code to.");
  const token = await issueToken(db, user.id, "password_reset", user.email, limits.passwordResetTtlSec);
  await createMailer(config, db).send(passwordResetMail(config, user.email, token, linkBase, "admin", user.locale));
  await recordAudit(db, actor, { action: "user.reset_mail", target: `user:${id}` });
}

// --- overview ------------------------------------------------------------------------------

export interface Overview {
  users: number;
  admins: number;
  disabled: number;
  files: number;
  bytes: number;
  rooms: number;
  devices: number;
  records: { collection: string; n: number }[];
  recent: AdminUser[];
}

/** Counts for the console's front page, and the newest accounts: one batch. */
export async function overview(db: Database): Promise<Overview> {
  const [counts, storage, rooms, devices, recent, ...records] = (await runBatch(db, [
    userCountsQuery(db),
    storageUsage(db),
    roomCount(db),
    deviceCount(db),
    newestUsersQuery(db, 8),
    ...recordCounts(db),
  ])) as [
    { users: number; admins: number; disabled: number }[],
    { files: number; bytes: number }[],
    unknown,
    unknown,
    UserRow[],
    ...{ collection: string; n: number }[][],
  ];
  const c = counts[0];
  return {
    users: Number(c?.users ?? 0),
    admins: Number(c?.admins ?? 0),
    disabled: Number(c?.disabled ?? 0),
    files: Number(storage[0]?.files ?? 0),
    bytes: Number(storage[0]?.bytes ?? 0),
    rooms: first(rooms),
    devices: first(devices),
    records: records.map((r) => ({ collection: r[0]?.collection ?? "", n: Number(r[0]?.n ?? 0) })),
    recent: recent.map(toAdminUser),
  };
}

/** Removes one of a user's sign-in methods (not the last one), with its audit row in the same batch. */
export async function removeUserSignInMethod(
  db: Database,
  actor: Actor,
  userId: string,
  kind: string,
  subject: string,
): Promise<void> {
  const { when, statement } = removeSignInMethod(db, userId, kind, subject);
  const audit = auditStatement(
    db,
    actor,
    { action: "user.identity_remove", target: `user:${userId}`, detail: { kind } },
    when,
  );
  const [, removed] = (await runBatch(db, [audit, statement])) as [unknown, unknown[]];
  if (removed.length === 0) {
    throw new AppError("conflict", "No such sign-in method, or it is the user's last one.");
  }
}

/**
 * Support's "Reset MFA": removes the user's second factors (TOTP, recovery codes, waiting sign-ins)
 * with the audit row in the same batch, then mails the user. 409 when there is nothing to reset.
 */
export async function resetUserMfa(config: Config, db: Database, actor: Actor, id: string): Promise<void> {
  const user = await getUser(db, id);
  if (!user) throw new AppError("not_found", "No such user.");
  const before = await factorSummary(db, id);
  if (before.totp === "none" && before.recoveryCodesLeft === 0)
    throw new AppError("conflict", "This user has no second factor.");
  await runBatch(db, [
    ...removeFactorsStatements(db, id),
    userAuditStatement(db, actor, id, { action: "user.mfa_reset", detail: { totp: before.totp } }),
  ]);
  if (user.email) await createMailer(config, db).send(mfaResetMail(config, user.email, user.locale));
}
