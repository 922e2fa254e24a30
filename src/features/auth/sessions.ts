/** Sessions: opening one, login, refresh rotation, listing and revoking, socket tickets, the cron. */
import { and, desc, eq, gt, lte, or, sql } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import { type Config, limits } from "../../config";
import { type Database, runBatch } from "../../db";
import { refreshTokens, sessions, socketTickets, users, verificationTokens } from "../../db/schema";
import type { Aal, Principal } from "../../env";
import { AppError } from "../../errors";
import { hashPassword, hashToken, randomToken, verifyPassword } from "../../lib/crypto";
import { newId, nowIso } from "../../lib/ids";
import type { ScheduledTask } from "../../lifecycle";
import { hasFactorSql, type MfaRequiredAnswer, mfaChallenge } from "./mfa";
import type { User } from "./schemas";
import { newRefreshToken, nextRefreshToken, type SessionTokens, sessionTokens } from "./tokens";
import { accountDisabled, addSeconds, toUser, type UserRow } from "./users";

/** Statements that open a new session, and the tokens to hand out once they ran. */
export async function openSession(
  db: Database,
  cfg: Config,
  user: { id: string; anonymous: boolean },
  userAgent: string | null,
  /** `aal2` when this sign-in proved a second factor or a passkey. */
  opts: { aal?: Aal } = {},
): Promise<{ statements: [BatchItem<"sqlite">, BatchItem<"sqlite">]; tokens: SessionTokens }> {
  const aal = opts.aal ?? "aal1";
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
        aal,
      }),
      db.insert(refreshTokens).values({ hash, sessionId, createdAt: now }),
    ],
    tokens: await sessionTokens(cfg, { userId: user.id, sessionId, anonymous: user.anonymous, aal }, refresh),
  };
}

/**
 * The one place every sign-in (password, provider ID token, email code, OAuth) opens its session:
 * a user with a confirmed second factor gets no session but an `mfaToken` (see mfa.ts), to finish
 * with `POST /v1/auth/mfa/verify`. `factor`: whether the user has one, when the caller read it with
 * the user (false for an account made in this sign-in); else one query finds out.
 * Sign-ups and guests open theirs with `openSession` (no factor yet); a refresh keeps its aal.
 */
export async function openSignIn(
  db: Database,
  cfg: Config,
  user: UserRow,
  userAgent: string | null,
  factor?: boolean,
): Promise<{ statements: BatchItem<"sqlite">[]; answer: { user: User; session: SessionTokens } | MfaRequiredAnswer }> {
  const challenge = await mfaChallenge(db, user.id, factor);
  if (challenge) return { statements: [challenge.statement], answer: challenge.answer };
  const s = await openSession(db, cfg, user, userAgent);
  return { statements: s.statements, answer: { user: toUser(user), session: s.tokens } };
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
  // The second-factor check rides in the same SELECT (login stays at two round trips).
  const found = await db
    .select({ user: users, factor: hasFactorSql(users.id) })
    .from(users)
    .where(eq(users.email, input.email))
    .get();
  const user = found?.user;
  const { ok, rehash } = await verifyPassword(input.password, user?.passwordHash ?? null);
  if (!user || !ok) throw new AppError("invalid_credentials", "Email or password is wrong.");
  // Only after the password matched: the refusal must not tell strangers that the account exists.
  if (user.disabled) throw accountDisabled();
  const s = await openSignIn(db, cfg, user, userAgent, Boolean(found?.factor));
  const upgrade = rehash
    ? [
        db
          .update(users)
          .set({ passwordHash: await hashPassword(input.password) })
          .where(eq(users.id, user.id)),
      ]
    : [];
  await runBatch(db, [...s.statements, ...upgrade]);
  return s.answer;
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
      aal: sessions.aal,
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
  // A refresh keeps the session's assurance level.
  const claims = { userId: row.userId, sessionId: row.sessionId, anonymous: row.anonymous, aal: row.aal };
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
export async function revokeSession(
  db: Database,
  userId: string,
  sessionId: string,
  also: BatchItem<"sqlite">[] = [],
): Promise<boolean> {
  const [gone] = (await runBatch(db, [
    db
      .delete(sessions)
      .where(and(eq(sessions.id, sessionId), eq(sessions.userId, userId)))
      .returning({ id: sessions.id }),
    ...also,
  ])) as [{ id: string }[]];
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
          WHERE EXISTS (SELECT 1 FROM sessions
                        WHERE id = ${p.sessionId} AND user_id = ${p.userId} AND expires_at > ${now})`,
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
