/** What the admin feature and its console ask of the users and sessions tables. */
import { and, desc, eq, gt, isNotNull, lt, lte, or, sql } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import { type Database, runBatch } from "../../db";
import { identities, sessions, users } from "../../db/schema";
import type { Aal } from "../../env";
import { newId, nowIso } from "../../lib/ids";
import { sessionLiveSql } from "./for-features";
import { hasFactorSql } from "./mfa";
import { addSeconds, getUserByEmail } from "./users";

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
): Promise<{ role: "user" | "admin"; disabled: boolean; live: boolean; factor: boolean } | null> {
  const row = await db
    .select({
      role: users.role,
      disabled: users.disabled,
      live: sessionLiveSql(sessionId, userId),
      factor: hasFactorSql(users.id),
    })
    .from(users)
    .where(eq(users.id, userId))
    .get();
  return row ? { role: row.role, disabled: row.disabled, live: row.live === 1, factor: row.factor === 1 } : null;
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
  also: BatchItem<"sqlite">[] = [],
  /** `aal2` when the admin proved a second factor at the console's sign-in. */
  aal: Aal = "aal1",
): Promise<string> {
  const now = nowIso();
  const id = newId();
  const opened = db.insert(sessions).values({
    id,
    userId,
    refreshHash: cookieHash,
    userAgent: `Outpost console${userAgent ? `: ${userAgent}` : ""}`.slice(0, 256),
    createdAt: now,
    lastUsedAt: now,
    expiresAt: addSeconds(now, ttlSec),
    aal,
  });
  await runBatch(db, [opened, ...also]);
  return id;
}

/** The admin behind a console cookie's hash: a live session of an enabled admin, or null (one query). */
export async function findConsoleSession(
  db: Database,
  cookieHash: string,
): Promise<{
  sessionId: string;
  userId: string;
  email: string | null;
  name: string | null;
  aal: Aal;
  factor: boolean;
} | null> {
  const row = await db
    .select({
      sessionId: sessions.id,
      userId: users.id,
      email: users.email,
      name: users.name,
      aal: sessions.aal,
      factor: hasFactorSql(users.id),
    })
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
  return row ? { ...row, factor: row.factor === 1 } : null;
}

/** The account behind an email, for the console's sign-in (same lookup as login). */
export const userByEmail = getUserByEmail;

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

/** One way a user signs in, as the console lists it: `password`, or an identity (`apple`, `google`, `github`, …). */
export interface SignInMethod {
  kind: string;
  /** The provider's user id (empty for the password). */
  subject: string;
  email: string | null;
  createdAt: string | null;
}

/** A user's sign-in methods: the password if set, then each linked identity (oldest first). */
export async function signInMethods(db: Database, userId: string): Promise<SignInMethod[]> {
  const [pw, ids] = await db.batch([
    db
      .select({ has: sql<number>`${users.passwordHash} IS NOT NULL` })
      .from(users)
      .where(eq(users.id, userId)),
    db
      .select({
        kind: identities.provider,
        subject: identities.subject,
        email: identities.email,
        createdAt: identities.createdAt,
      })
      .from(identities)
      .where(eq(identities.userId, userId))
      .orderBy(identities.createdAt),
  ]);
  const password = pw[0]?.has ? [{ kind: "password", subject: "", email: null, createdAt: null }] : [];
  return [...password, ...ids];
}

/** SQL: 1 when the user has a password, else 0. */
const passwordCountSql = (userId: string) =>
  sql`(SELECT count(*) FROM users WHERE id = ${userId} AND password_hash IS NOT NULL)`;
/** SQL: how many sign-in methods the user has (identities, plus one for a password). */
const methodCountSql = (userId: string) =>
  sql`((SELECT count(*) FROM identities WHERE user_id = ${userId}) + ${passwordCountSql(userId)})`;

/**
 * Removing one sign-in method, unless it is the user's last: `when` (the condition, for an audit row in the same
 * batch) and the statement, which returns a row when it removed something.
 */
export function removeSignInMethod(db: Database, userId: string, kind: string, subject: string) {
  if (kind === "password") {
    const when = sql`${passwordCountSql(userId)} = 1 AND ${methodCountSql(userId)} > 1`;
    const statement = db
      .update(users)
      .set({ passwordHash: null, updatedAt: nowIso() })
      .where(and(eq(users.id, userId), when))
      .returning({ id: users.id });
    return { when, statement };
  }
  const own = sql`user_id = ${userId} AND provider = ${kind} AND subject = ${subject}`;
  const when = sql`EXISTS (SELECT 1 FROM identities WHERE ${own}) AND ${methodCountSql(userId)} > 1`;
  const statement = db
    .delete(identities)
    .where(and(eq(identities.userId, userId), eq(identities.provider, kind), eq(identities.subject, subject), when))
    .returning({ id: identities.userId });
  return { when, statement };
}

/** The email addresses of the enabled admins, for notices to the operators (a webhook disabled). */
export async function adminEmails(db: Database): Promise<string[]> {
  const rows = await db
    .select({ email: users.email })
    .from(users)
    .where(and(eq(users.role, "admin"), eq(users.disabled, false), isNotNull(users.email)));
  return rows.flatMap((r) => (r.email ? [r.email] : []));
}
