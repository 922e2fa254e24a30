/** Accounts: email/password sign-up, guests, password change and reset, email verification. */
import { and, eq, ne } from "drizzle-orm";
import type { Config } from "../../config";
import type { Database } from "../../db";
import { sessions, users, verificationTokens } from "../../db/schema";
import { AppError, isConstraintError } from "../../errors";
import { hashPassword, hashToken, randomToken, verifyPassword } from "../../lib/crypto";
import { nowIso } from "../../lib/ids";
import { type NewAccounts, newUserInsert } from "./new-accounts";
import { openSession } from "./sessions";
import { addSeconds, getUser, getUserByEmail, newUserRow, toUser } from "./users";

/** Creates an email/password account and its first session. */
export async function signup(
  db: Database,
  cfg: Config,
  input: { email: string; password: string; name?: string | undefined; locale?: string | undefined },
  userAgent: string | null,
  accounts?: NewAccounts,
) {
  if (await getUserByEmail(db, input.email))
    throw new AppError("email_taken", "An account with this email already exists.");
  await accounts?.before({ email: input.email, name: input.name ?? null, anonymous: false });
  const row = newUserRow({
    email: input.email,
    passwordHash: await hashPassword(input.password),
    name: input.name ?? null,
    locale: input.locale ?? null,
  });
  const s = await openSession(db, cfg, row, userAgent);
  try {
    const [inserted] = await db.batch([newUserInsert(db, row), ...s.statements]);
    accounts?.created(inserted);
  } catch (e) {
    if (isConstraintError(e, "UNIQUE")) throw new AppError("email_taken", "An account with this email already exists.");
    throw e;
  }
  return { user: toUser(row), session: s.tokens };
}

/** A guest account (no email, no password) with a session. */
export async function createGuest(db: Database, cfg: Config, userAgent: string | null, accounts?: NewAccounts) {
  await accounts?.before({ email: null, name: null, anonymous: true });
  const row = newUserRow({ anonymous: true });
  const s = await openSession(db, cfg, row, userAgent);
  const [inserted] = await db.batch([newUserInsert(db, row), ...s.statements]);
  accounts?.created(inserted);
  return { user: toUser(row), session: s.tokens };
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

/**
 * Sets a new password from a reset token; all sessions are revoked; the email counts as verified. Returns the user id.
 */
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
