/** Accounts and sessions: all auth data access and rules. Routes call these; nothing else writes these tables. */
import { and, desc, eq, ne, sql } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import { type Config, limits } from "../../config";
import { type Database, runBatch } from "../../db";
import { identities, refreshTokens, sessions, users, verificationTokens } from "../../db/schema";
import { AppError, isConstraintError } from "../../errors";
import { hashPassword, hashToken, randomToken, verifyPassword } from "../../lib/crypto";
import { newId, nowIso } from "../../lib/ids";
import type { User } from "./schemas";
import { newRefreshToken, type SessionTokens, sessionTokens } from "./tokens";

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
    createdAt: u.createdAt,
  };
}


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
export async function signup(db: Database, cfg: Config, input: { email: string; password: string; name?: string | undefined }, userAgent: string | null) {
  if (await getUserByEmail(db, input.email)) throw new AppError("email_taken", "An account with this email already exists.");
  const now = nowIso();
  const row: UserRow = {
    id: newId(),
    email: input.email,
    emailVerified: false,
    passwordHash: await hashPassword(input.password),
    name: input.name ?? null,
    avatarFileId: null,
    anonymous: false,
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
export async function login(db: Database, cfg: Config, input: { email: string; password: string }, userAgent: string | null) {
  const user = await getUserByEmail(db, input.email);
  const { ok, rehash } = await verifyPassword(input.password, user?.passwordHash ?? null);
  if (!user || !ok) throw new AppError("invalid_credentials", "Email or password is wrong.");
  const s = await openSession(db, cfg, user, userAgent);
  const upgrade = rehash ? [db.update(users).set({ passwordHash: await hashPassword(input.password) }).where(eq(users.id, user.id))] : [];
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
  if (await getUserByEmail(db, input.email)) throw new AppError("email_taken", "An account with this email already exists.");
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
 * Rotates a refresh token. The current token is swapped by a compare-and-set UPDATE, so of two
 * concurrent refreshes exactly one wins. A token that was already rotated (reuse: it leaked, or
 * was replayed) revokes the whole session and answers `refresh_token_reused`.
 */
export async function refresh(db: Database, cfg: Config, token: string, userAgent: string | null) {
  const hash = await hashToken(token);
  const row = await db
    .select({
      sessionId: sessions.id,
      current: sessions.refreshHash,
      expiresAt: sessions.expiresAt,
      userId: users.id,
      anonymous: users.anonymous,
    })
    .from(refreshTokens)
    .innerJoin(sessions, eq(sessions.id, refreshTokens.sessionId))
    .innerJoin(users, eq(users.id, sessions.userId))
    .where(eq(refreshTokens.hash, hash))
    .get();
  if (!row) throw new AppError("unauthorized", "The refresh token is not valid.");
  const revoke = () => db.delete(sessions).where(eq(sessions.id, row.sessionId));
  if (row.current !== hash) {
    await revoke();
    throw new AppError("refresh_token_reused", "This refresh token was already used; the session has been revoked.");
  }
  const now = nowIso();
  if (row.expiresAt <= now) {
    await revoke();
    throw new AppError("unauthorized", "The session has expired; sign in again.");
  }
  const next = newRefreshToken();
  const nextHash = await hashToken(next);
  const [swapped] = await db.batch([
    db
      .update(sessions)
      .set({
        refreshHash: nextHash,
        lastUsedAt: now,
        expiresAt: addSeconds(now, limits.refreshTokenTtlSec),
        ...(userAgent ? { userAgent: userAgent.slice(0, 256) } : {}),
      })
      .where(and(eq(sessions.id, row.sessionId), eq(sessions.refreshHash, hash)))
      .returning({ id: sessions.id }),
    // Recorded only if this request won the swap (the new hash is random, so it is ours).
    db
      .insert(refreshTokens)
      .select(
        sql`SELECT ${nextHash}, ${row.sessionId}, ${now}
            WHERE EXISTS (SELECT 1 FROM sessions WHERE id = ${row.sessionId} AND refresh_hash = ${nextHash})`,
      ),
  ]);
  if (swapped.length === 0) {
    // Lost a race with another refresh of the same token: that is reuse too.
    await revoke();
    throw new AppError("refresh_token_reused", "This refresh token was already used; the session has been revoked.");
  }
  return sessionTokens(cfg, { userId: row.userId, sessionId: row.sessionId, anonymous: row.anonymous }, next);
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
    .select({ id: sessions.id, createdAt: sessions.createdAt, lastUsedAt: sessions.lastUsedAt, userAgent: sessions.userAgent })
    .from(sessions)
    .where(eq(sessions.userId, userId))
    .orderBy(desc(sessions.lastUsedAt))
    .limit(limits.listMax);
  return rows.map((r) => ({ ...r, current: r.id === currentId }));
}

/** Changes the password after checking the current one; every other session is revoked (their ids are returned). */
export async function changePassword(db: Database, userId: string, sessionId: string, current: string, next: string): Promise<string[]> {
  const user = await getUser(db, userId);
  if (!user) throw new AppError("unauthorized", "This account no longer exists.");
  const { ok } = await verifyPassword(current, user.passwordHash);
  if (!ok) throw new AppError("invalid_credentials", "The current password is wrong.");
  const [, ended] = await db.batch([
    db.update(users).set({ passwordHash: await hashPassword(next), updatedAt: nowIso() }).where(eq(users.id, userId)),
    db.delete(sessions).where(and(eq(sessions.userId, userId), ne(sessions.id, sessionId))).returning({ id: sessions.id }),
  ]);
  return ended.map((s) => s.id);
}

type Purpose = (typeof verificationTokens.$inferSelect)["purpose"];

/** Creates a one-time token for `purpose` (older ones of the same purpose are dropped); returns the raw token. */
export async function issueToken(db: Database, userId: string, purpose: Purpose, email: string | null, ttlSec: number): Promise<string> {
  const token = randomToken(32);
  await db.batch([
    db.delete(verificationTokens).where(and(eq(verificationTokens.userId, userId), eq(verificationTokens.purpose, purpose))),
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
  if (!row || row.expiresAt <= nowIso()) throw new AppError("invalid_token", "This link or code is invalid or has expired.");
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
 * Finds or creates the user behind a verified Apple/Google identity. An unknown identity whose
 * email the provider has verified is linked to the account with that email; otherwise a new
 * account is created.
 */
export async function signInWithIdentity(
  db: Database,
  cfg: Config,
  id: { provider: "apple" | "google"; subject: string; email: string | null; emailVerified: boolean; name: string | null },
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
    const byEmail = id.email && id.emailVerified ? await getUserByEmail(db, id.email) : undefined;
    if (byEmail) {
      user = byEmail;
      if (!byEmail.emailVerified) {
        writes.push(db.update(users).set({ emailVerified: true, updatedAt: now }).where(eq(users.id, byEmail.id)));
        user = { ...byEmail, emailVerified: true };
      }
    } else {
      const emailFree = id.email ? !(await getUserByEmail(db, id.email)) : false;
      user = {
        id: newId(),
        email: emailFree ? id.email : null,
        emailVerified: emailFree && id.emailVerified,
        passwordHash: null,
        name: id.name,
        avatarFileId: null,
        anonymous: false,
        createdAt: now,
        updatedAt: now,
      };
      writes.push(db.insert(users).values(user));
    }
    writes.push(db.insert(identities).values({ provider: id.provider, subject: id.subject, userId: user.id, email: id.email, createdAt: now }));
  }
  const s = await openSession(db, cfg, user, userAgent);
  await runBatch(db, [...writes, ...s.statements]);
  return { user: toUser(user), session: s.tokens };
}
