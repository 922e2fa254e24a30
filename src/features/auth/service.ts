/** Accounts and sessions: all auth data access and rules. Routes call these; nothing else writes these tables. */
import {
  type AnyColumn,
  and,
  desc,
  eq,
  getTableColumns,
  gt,
  inArray,
  is,
  lt,
  lte,
  ne,
  or,
  SQL,
  sql,
  type Table,
} from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import { type Config, limits } from "../../config";
import { type Database, runBatch } from "../../db";
import { identities, refreshTokens, sessions, socketTickets, users, verificationTokens } from "../../db/schema";
import type { Principal } from "../../env";
import { AppError, isConstraintError } from "../../errors";
import { hashPassword, hashToken, randomToken, verifyPassword } from "../../lib/crypto";
import { newId, nowIso } from "../../lib/ids";
import type { ScheduledTask } from "../../lifecycle";
import type { User } from "./schemas";
import { newRefreshToken, nextRefreshToken, type SessionTokens, sessionTokens } from "./tokens";

type UserRow = typeof users.$inferSelect;

/** The public shape of a user. */
export function toUser(u: UserRow): User {
  return {
    id: u.id,
    email: u.email,
    emailVerified: u.emailVerified,
    name: u.name,
    avatarFileId: u.avatarFileId,
    anonymous: u.anonymous,
    role: u.role,
    disabled: u.disabled,
    createdAt: u.createdAt,
  };
}

/** What a disabled account gets from login, refresh and provider sign-in. */
const accountDisabled = () => new AppError("account_disabled", "This account has been disabled.");

const addSeconds = (iso: string, s: number) => new Date(Date.parse(iso) + s * 1000).toISOString();

/** Statements that open a new session, and the tokens to hand out once they ran. */
async function openSession(
  db: Database,
  cfg: Config,
  user: { id: string; anonymous: boolean },
  userAgent: string | null,
): Promise<{ statements: [BatchItem<"sqlite">, BatchItem<"sqlite">]; tokens: SessionTokens }> {
  const now = nowIso();
  const sessionId = newId();
  const refresh = newRefreshToken();
  const hash = await hashToken(refresh);
  return {
    statements: [
      db.insert(sessions).values({
        id: sessionId,
        userId: user.id,
        refreshHash: hash,
        userAgent: userAgent?.slice(0, 256) ?? null,
        createdAt: now,
        lastUsedAt: now,
        expiresAt: addSeconds(now, limits.refreshTokenTtlSec),
      }),
      db.insert(refreshTokens).values({ hash, sessionId, createdAt: now }),
    ],
    tokens: await sessionTokens(cfg, { userId: user.id, sessionId, anonymous: user.anonymous }, refresh),
  };
}

export async function getUser(db: Database, id: string): Promise<UserRow | undefined> {
  return db.select().from(users).where(eq(users.id, id)).get();
}

async function getUserByEmail(db: Database, email: string): Promise<UserRow | undefined> {
  return db.select().from(users).where(eq(users.email, email)).get();
}

/** Creates an email/password account and its first session. */
export async function signup(
  db: Database,
  cfg: Config,
  input: { email: string; password: string; name?: string | undefined },
  userAgent: string | null,
) {
  if (await getUserByEmail(db, input.email))
    throw new AppError("email_taken", "An account with this email already exists.");
  const now = nowIso();
  const row: UserRow = {
    id: newId(),
    email: input.email,
    emailVerified: false,
    passwordHash: await hashPassword(input.password),
    name: input.name ?? null,
    avatarFileId: null,
    anonymous: false,
    role: "user",
    disabled: false,
    createdAt: now,
    updatedAt: now,
  };
  const s = await openSession(db, cfg, row, userAgent);
  try {
    await db.batch([db.insert(users).values(row), ...s.statements]);
  } catch (e) {
    if (isConstraintError(e, "UNIQUE")) throw new AppError("email_taken", "An account with this email already exists.");
    throw e;
  }
  return { user: toUser(row), session: s.tokens };
}

/**
 * Email/password login. One SELECT, one PBKDF2 (also for an unknown email, against a dummy hash,
 * so both answers take the same time), one batch. Same error for unknown email and wrong password.
 */
export async function login(
  db: Database,
  cfg: Config,
  input: { email: string; password: string },
  userAgent: string | null,
) {
  const user = await getUserByEmail(db, input.email);
  const { ok, rehash } = await verifyPassword(input.password, user?.passwordHash ?? null);
  if (!user || !ok) throw new AppError("invalid_credentials", "Email or password is wrong.");
  // Only after the password matched: the refusal must not tell strangers that the account exists.
  if (user.disabled) throw accountDisabled();
  const s = await openSession(db, cfg, user, userAgent);
  const upgrade = rehash
    ? [
        db
          .update(users)
          .set({ passwordHash: await hashPassword(input.password) })
          .where(eq(users.id, user.id)),
      ]
    : [];
  await db.batch([...s.statements, ...upgrade]);
  return { user: toUser(user), session: s.tokens };
}

/** A guest account (no email, no password) with a session. */
export async function createGuest(db: Database, cfg: Config, userAgent: string | null) {
  const now = nowIso();
  const row: UserRow = {
    id: newId(),
    email: null,
    emailVerified: false,
    passwordHash: null,
    name: null,
    avatarFileId: null,
    anonymous: true,
    role: "user",
    disabled: false,
    createdAt: now,
    updatedAt: now,
  };
  const s = await openSession(db, cfg, row, userAgent);
  await db.batch([db.insert(users).values(row), ...s.statements]);
  return { user: toUser(row), session: s.tokens };
}

/** Turns the calling guest into a full account, keeping its id (and so everything it owns). */
export async function linkGuest(db: Database, userId: string, input: { email: string; password: string }) {
  const user = await getUser(db, userId);
  if (!user) throw new AppError("unauthorized", "This account no longer exists.");
  if (!user.anonymous) throw new AppError("conflict", "This account already has an email and password.");
  if (await getUserByEmail(db, input.email))
    throw new AppError("email_taken", "An account with this email already exists.");
  const passwordHash = await hashPassword(input.password);
  try {
    const updated = await db
      .update(users)
      .set({ email: input.email, passwordHash, anonymous: false, updatedAt: nowIso() })
      .where(and(eq(users.id, userId), eq(users.anonymous, true)))
      .returning()
      .get();
    if (!updated) throw new AppError("conflict", "This account already has an email and password.");
    return toUser(updated);
  } catch (e) {
    if (isConstraintError(e, "UNIQUE")) throw new AppError("email_taken", "An account with this email already exists.");
    throw e;
  }
}

/**
 * Rotates a refresh token. The successor is derived from the presented token (`nextRefreshToken`),
 * and the swap is a compare-and-set UPDATE on the session's current hash. The token just rotated
 * may come again for `limits.refreshGraceSec` after its rotation (the answer to the first call was
 * lost, or two refreshes raced): it gets the same successor, so both answers are the same working
 * session. Any other already-rotated token (reuse: it leaked, or was replayed) revokes the whole
 * session and answers `refresh_token_reused`.
 */
export async function refresh(
  db: Database,
  cfg: Config,
  token: string,
  userAgent: string | null,
  /** Called when this refresh revoked the session (reuse, expiry), so its sockets can be closed. */
  onRevoked: (userId: string, sessionId: string) => void = () => {},
) {
  const hash = await hashToken(token);
  const row = await db
    .select({
      sessionId: sessions.id,
      current: sessions.refreshHash,
      rotatedAt: sessions.rotatedAt,
      expiresAt: sessions.expiresAt,
      userId: users.id,
      anonymous: users.anonymous,
      disabled: users.disabled,
    })
    .from(refreshTokens)
    .innerJoin(sessions, eq(sessions.id, refreshTokens.sessionId))
    .innerJoin(users, eq(users.id, sessions.userId))
    .where(eq(refreshTokens.hash, hash))
    .get();
  if (!row) throw new AppError("unauthorized", "The refresh token is not valid.");
  // Disabling ended the sessions (expired in place, see the admin feature) and kept them so that
  // their refresh tokens get this answer rather than a bare 401.
  if (row.disabled) throw accountDisabled();
  const revoke = async () => {
    await db.delete(sessions).where(eq(sessions.id, row.sessionId));
    onRevoked(row.userId, row.sessionId);
  };
  const reused = async (): Promise<never> => {
    await revoke();
    throw new AppError("refresh_token_reused", "This refresh token was already used; the session has been revoked.");
  };
  const nowMs = Date.now();
  const now = nowIso(nowMs);
  const graceFrom = nowIso(nowMs - limits.refreshGraceSec * 1000);
  const next = await nextRefreshToken(cfg, token);
  const nextHash = await hashToken(next);
  // Presented again while its successor is current and fresh: the same answer as the first time.
  const retried = row.current === nextHash && row.rotatedAt !== null && row.rotatedAt > graceFrom;
  if (row.current !== hash && !retried) return reused();
  if (row.expiresAt <= now) {
    await revoke();
    throw new AppError("unauthorized", "The session has expired; sign in again.");
  }
  const claims = { userId: row.userId, sessionId: row.sessionId, anonymous: row.anonymous };
  if (retried) return sessionTokens(cfg, claims, next);
  const [swapped] = await db.batch([
    db
      .update(sessions)
      .set({
        refreshHash: nextHash,
        lastUsedAt: now,
        expiresAt: addSeconds(now, limits.refreshTokenTtlSec),
        // A concurrent refresh of the same token that already swapped keeps its rotation time.
        rotatedAt: sql`CASE WHEN ${sessions.refreshHash} = ${hash} THEN ${now} ELSE ${sessions.rotatedAt} END`,
        ...(userAgent ? { userAgent: userAgent.slice(0, 256) } : {}),
      })
      .where(
        and(
          eq(sessions.id, row.sessionId),
          or(
            eq(sessions.refreshHash, hash),
            and(eq(sessions.refreshHash, nextHash), gt(sessions.rotatedAt, graceFrom)),
          ),
        ),
      )
      .returning({ id: sessions.id }),
    // Recorded once the successor is current (a concurrent refresh of the same token records it too).
    db
      .insert(refreshTokens)
      .select(
        sql`SELECT ${nextHash}, ${row.sessionId}, ${now}
            WHERE EXISTS (SELECT 1 FROM sessions WHERE id = ${row.sessionId} AND refresh_hash = ${nextHash})`,
      )
      .onConflictDoNothing(),
  ]);
  // Someone rotated past this token between our read and our swap: reuse.
  if (swapped.length === 0) return reused();
  return sessionTokens(cfg, claims, next);
}

/** Revokes one session of a user. Returns false when the user has no such session. */
export async function revokeSession(db: Database, userId: string, sessionId: string): Promise<boolean> {
  const gone = await db
    .delete(sessions)
    .where(and(eq(sessions.id, sessionId), eq(sessions.userId, userId)))
    .returning({ id: sessions.id });
  return gone.length > 0;
}

export async function listSessions(db: Database, userId: string, currentId: string) {
  const rows = await db
    .select({
      id: sessions.id,
      createdAt: sessions.createdAt,
      lastUsedAt: sessions.lastUsedAt,
      userAgent: sessions.userAgent,
    })
    .from(sessions)
    .where(eq(sessions.userId, userId))
    .orderBy(desc(sessions.lastUsedAt))
    .limit(limits.listMax);
  return rows.map((r) => ({ ...r, current: r.id === currentId }));
}

/** Changes the password after checking the current one; every other session is revoked (their ids are returned). */
export async function changePassword(
  db: Database,
  userId: string,
  sessionId: string,
  current: string,
  next: string,
): Promise<string[]> {
  const user = await getUser(db, userId);
  if (!user) throw new AppError("unauthorized", "This account no longer exists.");
  const { ok } = await verifyPassword(current, user.passwordHash);
  if (!ok) throw new AppError("invalid_credentials", "The current password is wrong.");
  const [, ended] = await db.batch([
    db
      .update(users)
      .set({ passwordHash: await hashPassword(next), updatedAt: nowIso() })
      .where(eq(users.id, userId)),
    db
      .delete(sessions)
      .where(and(eq(sessions.userId, userId), ne(sessions.id, sessionId)))
      .returning({ id: sessions.id }),
  ]);
  return ended.map((s) => s.id);
}

type UserPrincipal = Extract<Principal, { kind: "user" }>;

/**
 * A single-use WebSocket ticket for the caller's session (only its hash is stored). One statement:
 * the INSERT copies nothing unless the session is still live, so the access token of a session
 * that ended (logout, revocation, deleted account) gets no ticket.
 */
export async function issueSocketTicket(
  db: Database,
  p: UserPrincipal,
): Promise<{ ticket: string; expiresAt: string }> {
  const ticket = `st_${randomToken(32)}`;
  const now = nowIso();
  const expiresAt = addSeconds(now, limits.socketTicketTtlSec);
  // Columns in table order: hash, session_id, user_id, anonymous, expires_at.
  const inserted = await db
    .insert(socketTickets)
    .select(
      sql`SELECT ${await hashToken(ticket)}, ${p.sessionId}, ${p.userId}, ${p.anonymous ? 1 : 0}, ${expiresAt}
          WHERE EXISTS (SELECT 1 FROM sessions WHERE id = ${p.sessionId} AND user_id = ${p.userId} AND expires_at > ${now})`,
    )
    .returning({ hash: socketTickets.hash });
  if (inserted.length === 0) throw new AppError("unauthorized", "This session has ended; sign in again.");
  return { ticket, expiresAt };
}

/**
 * Redeems a socket ticket: one DELETE ... RETURNING, so of concurrent uses exactly one gets the
 * row. Returns the principal of the session that asked for it, or null (unknown, used, expired).
 */
export async function consumeSocketTicket(db: Database, ticket: string): Promise<UserPrincipal | null> {
  const row = await db
    .delete(socketTickets)
    .where(eq(socketTickets.hash, await hashToken(ticket)))
    .returning()
    .get();
  if (!row || row.expiresAt <= nowIso()) return null;
  return { kind: "user", userId: row.userId, sessionId: row.sessionId, anonymous: row.anonymous };
}

/** Cron: expired sessions, one-time tokens and socket tickets. */
export const authCleanup: ScheduledTask = async (_env, db, now) => {
  const iso = now.toISOString();
  await db.batch([
    // A disabled account's sessions are kept (they were expired when it was disabled), so their
    // refresh tokens keep getting 403 `account_disabled`.
    db
      .delete(sessions)
      .where(
        and(
          lte(sessions.expiresAt, iso),
          sql`NOT EXISTS (SELECT 1 FROM users WHERE users.id = ${sessions.userId} AND users.disabled = 1)`,
        ),
      ),
    db.delete(verificationTokens).where(lte(verificationTokens.expiresAt, iso)),
  ]);
  await socketTicketCleanup(_env, db, now);
};

/** Cron: drops socket tickets past their expiry that were never used. */
export const socketTicketCleanup: ScheduledTask = async (_env, db, now) => {
  await db.delete(socketTickets).where(lte(socketTickets.expiresAt, now.toISOString()));
};

type Purpose = (typeof verificationTokens.$inferSelect)["purpose"];

/** Creates a one-time token for `purpose` (older ones of the same purpose are dropped); returns the raw token. */
export async function issueToken(
  db: Database,
  userId: string,
  purpose: Purpose,
  email: string | null,
  ttlSec: number,
): Promise<string> {
  const token = randomToken(32);
  await db.batch([
    db
      .delete(verificationTokens)
      .where(and(eq(verificationTokens.userId, userId), eq(verificationTokens.purpose, purpose))),
    db.insert(verificationTokens).values({
      hash: await hashToken(token),
      userId,
      purpose,
      email,
      expiresAt: addSeconds(nowIso(), ttlSec),
    }),
  ]);
  return token;
}

/** Consumes a one-time token: deletes it and returns its row when valid and unexpired, else throws. */
async function consumeToken(db: Database, token: string, purpose: Purpose) {
  const row = await db
    .delete(verificationTokens)
    .where(and(eq(verificationTokens.hash, await hashToken(token)), eq(verificationTokens.purpose, purpose)))
    .returning()
    .get();
  if (!row || row.expiresAt <= nowIso())
    throw new AppError("invalid_token", "This link or code is invalid or has expired.");
  return row;
}

export async function findUserForReset(db: Database, email: string) {
  return getUserByEmail(db, email);
}

/** Sets a new password from a reset token; all sessions are revoked; the email counts as verified. Returns the user id. */
export async function confirmPasswordReset(db: Database, token: string, newPassword: string): Promise<string> {
  const passwordHash = await hashPassword(newPassword);
  const row = await consumeToken(db, token, "password_reset");
  await db.batch([
    db.update(users).set({ passwordHash, emailVerified: true, updatedAt: nowIso() }).where(eq(users.id, row.userId)),
    db.delete(sessions).where(eq(sessions.userId, row.userId)),
  ]);
  return row.userId;
}

export async function confirmEmail(db: Database, token: string) {
  const row = await consumeToken(db, token, "email_verify");
  const updated = await db
    .update(users)
    .set({ emailVerified: true, updatedAt: nowIso() })
    .where(and(eq(users.id, row.userId), eq(users.email, row.email ?? "")))
    .returning({ id: users.id });
  if (updated.length === 0) throw new AppError("invalid_token", "This link was for a different email address.");
}

/**
 * Finds or creates the user behind a verified Apple/Google identity. Only an email the provider
 * has verified counts for anything; one that isn't is neither matched nor stored.
 *
 * A new identity whose verified email belongs to an account that has verified it too is linked
 * to that account. If that account never verified the email, nothing proves its holder owns the
 * address (an attacker may have signed up with the victim's email, or linked a guest to it,
 * before the victim ever came): that account keeps its id and data but loses the email, and the
 * provider's user gets a new account, in one batch. Every credential the old account held
 * (password, refresh tokens, access tokens, which name its id and are checked without a lookup)
 * still reaches only the old id, never what the provider's user owns.
 */
export async function signInWithIdentity(
  db: Database,
  cfg: Config,
  id: {
    provider: "apple" | "google";
    subject: string;
    email: string | null;
    emailVerified: boolean;
    name: string | null;
  },
  userAgent: string | null,
): Promise<{ user: User; session: SessionTokens }> {
  try {
    return await identitySignIn(db, cfg, id, userAgent);
  } catch (e) {
    // A concurrent sign-in created this identity or took the email, or the email's account verified
    // it meanwhile (the guarded UPDATE then changed nothing and the INSERT hit the unique email):
    // the batch rolled back as a whole, and a second look sees the new state.
    if (!isConstraintError(e, "UNIQUE")) throw e;
  }
  try {
    return await identitySignIn(db, cfg, id, userAgent);
  } catch (e) {
    if (isConstraintError(e, "UNIQUE"))
      throw new AppError("conflict", "This account changed while signing in; try again.");
    throw e;
  }
}

async function identitySignIn(
  db: Database,
  cfg: Config,
  id: {
    provider: "apple" | "google";
    subject: string;
    email: string | null;
    emailVerified: boolean;
    name: string | null;
  },
  userAgent: string | null,
) {
  const now = nowIso();
  const linked = await db
    .select({ user: users })
    .from(identities)
    .innerJoin(users, eq(users.id, identities.userId))
    .where(and(eq(identities.provider, id.provider), eq(identities.subject, id.subject)))
    .get();
  let user = linked?.user;
  const writes: BatchItem<"sqlite">[] = [];
  if (!user) {
    const email = id.email && id.emailVerified ? id.email : null;
    const holder = email ? await getUserByEmail(db, email) : undefined;
    if (holder?.emailVerified) {
      user = holder;
    } else {
      if (holder && email) {
        // Guarded: if the holder verified the email meanwhile, this changes nothing and the INSERT
        // below fails on the unique email, rolling the batch back (the caller looks again).
        writes.push(
          db
            .update(users)
            .set({ email: null, emailVerified: false, updatedAt: now })
            .where(and(eq(users.id, holder.id), eq(users.email, email), eq(users.emailVerified, false))),
          // Its pending reset and verification codes were for the address it no longer has.
          db.delete(verificationTokens).where(eq(verificationTokens.userId, holder.id)),
        );
      }
      user = {
        id: newId(),
        email,
        emailVerified: email !== null,
        passwordHash: null,
        name: id.name,
        avatarFileId: null,
        anonymous: false,
        role: "user",
        disabled: false,
        createdAt: now,
        updatedAt: now,
      };
      writes.push(db.insert(users).values(user));
    }
    writes.push(
      db
        .insert(identities)
        .values({ provider: id.provider, subject: id.subject, userId: user.id, email, createdAt: now }),
    );
  }
  if (user.disabled) throw accountDisabled();
  const s = await openSession(db, cfg, user, userAgent);
  await runBatch(db, [...writes, ...s.statements]);
  return { user: toUser(user), session: s.tokens };
}

// --- what other features may ask of the users and sessions tables ---------------------------------
// Only this feature reads or writes `users` and `sessions`. Other features call these; where their
// own single statement must consult the account (to keep a route at one D1 round trip), they embed
// a fragment built here, so the SQL about these tables still lives in one place.

/**
 * The source of an INSERT ... SELECT that writes one row of `table` only while `userId`'s account
 * exists and `when` holds, both checked inside the statement (D1 runs one write at a time, so no
 * writer slips between a check and the insert). Access tokens outlive a deleted account by
 * minutes; such a late insert would escape the deletion that already ran. Values may be SQL.
 */
export function rowWhileUserExists<T extends Table>(
  db: Database,
  table: T,
  userId: string,
  values: Record<string, unknown>,
  when?: SQL,
) {
  const select = Object.fromEntries(
    Object.entries(getTableColumns(table)).map(([k, column]) => {
      const value = values[k];
      return [k, (is(value, SQL) ? sql`${value}` : sql`${sql.param(value ?? null, column)}`).as(column.name)];
    }),
  );
  return fromUser(db, userId, select, when);
}

/**
 * A one-row select of `fields` (SQL the caller builds) that has a row only while `userId`'s
 * account exists (and `when` holds): for another feature's one-statement read about a user.
 */
export function fromUser<F extends Record<string, SQL | SQL.Aliased>>(
  db: Database,
  userId: string,
  fields: F,
  when?: SQL,
) {
  return db
    .select(fields)
    .from(users)
    .where(and(eq(users.id, userId), when));
}

/** Whether the account exists. */
export async function userExists(db: Database, userId: string): Promise<boolean> {
  return (await db.select({ id: users.id }).from(users).where(eq(users.id, userId)).get()) !== undefined;
}

/** SQL: 1 when a user with id `idExpr` exists, else 0. */
export const userExistsSql = (idExpr: SQL | string) => sql<number>`EXISTS (SELECT 1 FROM users WHERE id = ${idExpr})`;
/** SQL: whether the user is a guest (null when there is no such user). */
export const isGuestSql = (idExpr: SQL | string) =>
  sql<number | null>`(SELECT anonymous FROM users WHERE id = ${idExpr})`;
/** SQL: the user's display name (null when unset or no such user). */
export const userNameSql = (idExpr: SQL | string | AnyColumn) =>
  sql<string | null>`(SELECT name FROM users WHERE id = ${idExpr})`;
/** SQL: a JSON object of user id → display name for `ids` (users that exist). */
export const userNamesJsonSql = (ids: readonly string[]) =>
  sql<
    string | null
  >`(SELECT json_group_object(id, name) FROM users WHERE id IN (SELECT value FROM json_each(${JSON.stringify(ids)})))`;
/** SQL: the user's email (null when unset or no such user). */
export const userEmailSql = (idExpr: SQL | string | AnyColumn) =>
  sql<string | null>`(SELECT email FROM users WHERE id = ${idExpr})`;
/** SQL: 1 when `sessionId` is a live (unexpired) session of `userId`. */
export const sessionLiveSql = (sessionId: string, userId: string) =>
  sql<
    number | null
  >`(SELECT 1 FROM sessions WHERE id = ${sessionId} AND user_id = ${userId} AND expires_at > ${nowIso()})`;

/** Which of `ids` (at most 90) are live sessions: a statement, so callers can batch it. */
export function liveSessionsQuery(db: Database, ids: string[]) {
  return db
    .select({ id: sessions.id })
    .from(sessions)
    .where(and(inArray(sessions.id, ids), gt(sessions.expiresAt, nowIso())));
}

/** `PATCH /v1/me`: name and avatar (the avatar was checked by the caller); undefined when the account is gone. */
export async function updateProfile(
  db: Database,
  userId: string,
  patch: { name?: string | null; avatarFileId?: string | null },
) {
  const updated = await db
    .update(users)
    .set({
      ...(patch.name !== undefined ? { name: patch.name } : {}),
      ...(patch.avatarFileId !== undefined ? { avatarFileId: patch.avatarFileId } : {}),
      updatedAt: nowIso(),
    })
    .where(eq(users.id, userId))
    .returning()
    .get();
  return updated ? toUser(updated) : undefined;
}

/** The statement that deletes the account row (sessions, identities and tickets go by cascade); it returns the id it deleted. */
export function deleteUserStatement(db: Database, userId: string) {
  return db.delete(users).where(eq(users.id, userId)).returning({ id: users.id });
}

/** The statement that clears avatars pointing at a deleted file. */
export function clearAvatarStatement(db: Database, fileId: string) {
  return db.update(users).set({ avatarFileId: null }).where(eq(users.avatarFileId, fileId));
}

// --- administration (src/features/admin): sessions as the admin feature needs them ------------

/**
 * Ends every live session of a disabled account, as one statement for the admin's batch: each is
 * expired in place (every session check, sockets and socket tickets included, requires
 * `expires_at > now`), not deleted, so its refresh token still finds the account and gets 403
 * `account_disabled` instead of a bare 401. Re-enabling deletes them (`deleteUserSessions`); the
 * cron keeps them while the account stays disabled.
 */
export function expireUserSessions(db: Database, userId: string, now: string) {
  return db
    .update(sessions)
    .set({ expiresAt: now })
    .where(and(eq(sessions.userId, userId), gt(sessions.expiresAt, now)));
}

/**
 * Deletes a user's sessions: all of them (the admin's "end sessions"), or only those that already
 * ended (re-enabling a disabled account drops the sessions disabling kept).
 */
export function deleteUserSessions(db: Database, userId: string, onlyEnded = false) {
  return db
    .delete(sessions)
    .where(and(eq(sessions.userId, userId), onlyEnded ? lte(sessions.expiresAt, nowIso()) : undefined))
    .returning({ id: sessions.id });
}

/** The user's live sessions, counted (sessions_user_idx). */
export function liveSessionCount(db: Database, userId: string) {
  return db
    .select({ n: sql<number>`count(*)` })
    .from(sessions)
    .where(and(eq(sessions.userId, userId), gt(sessions.expiresAt, nowIso())));
}

/**
 * What admin authorization needs about a token's user and session, in one query: the user's role
 * and flag, and whether the session is still live (so logout, revocation, demotion and disabling
 * take effect on the admin API at once, not when the access token expires).
 */
export async function adminStanding(
  db: Database,
  userId: string,
  sessionId: string,
): Promise<{ role: "user" | "admin"; disabled: boolean; live: boolean } | null> {
  const row = await db
    .select({
      role: users.role,
      disabled: users.disabled,
      live: sql<
        number | null
      >`(SELECT 1 FROM sessions WHERE id = ${sessionId} AND user_id = ${userId} AND expires_at > ${nowIso()})`,
    })
    .from(users)
    .where(eq(users.id, userId))
    .get();
  return row ? { role: row.role, disabled: row.disabled, live: row.live === 1 } : null;
}

/**
 * A console session: a `sessions` row whose `refreshHash` is the hash of the console cookie. It
 * has no `refresh_tokens` row, so the cookie is never accepted by `POST /v1/auth/refresh`; it is
 * listed and revocable like any session, and ends with every session of its user.
 */
export async function openConsoleSession(
  db: Database,
  userId: string,
  cookieHash: string,
  userAgent: string | null,
  ttlSec: number,
): Promise<string> {
  const now = nowIso();
  const id = newId();
  await db.insert(sessions).values({
    id,
    userId,
    refreshHash: cookieHash,
    userAgent: `Outpost console${userAgent ? `: ${userAgent}` : ""}`.slice(0, 256),
    createdAt: now,
    lastUsedAt: now,
    expiresAt: addSeconds(now, ttlSec),
  });
  return id;
}

/** The admin behind a console cookie's hash: a live session of an enabled admin, or null (one query). */
export async function findConsoleSession(
  db: Database,
  cookieHash: string,
): Promise<{ sessionId: string; userId: string; email: string | null; name: string | null } | null> {
  const row = await db
    .select({ sessionId: sessions.id, userId: users.id, email: users.email, name: users.name })
    .from(sessions)
    .innerJoin(users, eq(users.id, sessions.userId))
    .where(
      and(
        eq(sessions.refreshHash, cookieHash),
        gt(sessions.expiresAt, nowIso()),
        eq(users.role, "admin"),
        eq(users.disabled, false),
      ),
    )
    .get();
  return row ?? null;
}

/** The account behind an email, for the console's sign-in (same lookup as login). */
export const userByEmail = getUserByEmail;

// --- what the admin feature asks of the users table -------------------------------------------

/** A user row by id, as a statement (for the admin's batches). */
export function userRowQuery(db: Database, id: string) {
  return db.select().from(users).where(eq(users.id, id));
}

/**
 * Users newest first, optionally matching `q` in the email or name, after `afterId`: walks the
 * primary key from the newest account until it has a page (an operator's search; no index kept).
 */
export function searchUsersQuery(db: Database, q: string | undefined, afterId: string | null, limit: number) {
  return db
    .select()
    .from(users)
    .where(
      and(
        q
          ? or(
              sql`instr(lower(coalesce(${users.email}, '')), ${q}) > 0`,
              sql`instr(lower(coalesce(${users.name}, '')), ${q}) > 0`,
            )
          : undefined,
        afterId ? lt(users.id, afterId) : undefined,
      ),
    )
    .orderBy(desc(users.id))
    .limit(limit);
}

/** The statement that changes a user's role, name or disabled flag; it returns the updated row. */
export function updateUserStatement(
  db: Database,
  id: string,
  patch: { disabled?: boolean; role?: "user" | "admin"; name?: string | null },
  now: string,
) {
  return db
    .update(users)
    .set({
      ...(patch.disabled !== undefined ? { disabled: patch.disabled } : {}),
      ...(patch.role !== undefined ? { role: patch.role } : {}),
      ...(patch.name !== undefined ? { name: patch.name } : {}),
      updatedAt: now,
    })
    .where(eq(users.id, id))
    .returning();
}

/** Accounts, admins and disabled accounts, counted: one statement. */
export function userCountsQuery(db: Database) {
  return db
    .select({
      users: sql<number>`count(*)`,
      admins: sql<number>`coalesce(sum(${users.role} = 'admin'), 0)`,
      disabled: sql<number>`coalesce(sum(${users.disabled}), 0)`,
    })
    .from(users);
}

/** The newest accounts. */
export function newestUsersQuery(db: Database, limit: number) {
  return db.select().from(users).orderBy(desc(users.id)).limit(limit);
}

export type { UserRow };
