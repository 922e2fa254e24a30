/**
 * Second factors: TOTP enrollment (secret sealed with `encryptText`), recovery codes (HMAC only),
 * the check of a code (each TOTP step and each recovery code works once), and the `mfaToken` of a
 * sign-in that waits for its second factor (hash only, short-lived, single use).
 */
import { and, count, eq, isNotNull, isNull, lt, lte, or, type SQLWrapper, sql } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import { type Config, limits } from "../../config";
import type { Database } from "../../db";
import { mfaChallenges, mfaRecoveryCodes, mfaTotp } from "../../db/schema";
import { AppError } from "../../errors";
import { b64url, decryptText, encryptText, hashToken, hmac, purposeKey, randomToken } from "../../lib/crypto";
import { nowIso } from "../../lib/ids";
import type { ScheduledTask } from "../../lifecycle";
import { matchTotp, newTotpSecret, otpauthUrl } from "./totp";
import { addSeconds } from "./users";

const SEAL = "mfa-totp-secret";
const MFA_METHODS = ["totp", "recovery"] as const;

export const invalidCode = () => new AppError("invalid_code", "This code is wrong or was already used.");

/** SQL: 1 when the user `userId` names has a confirmed second factor (to read it with the user's row). */
export const hasFactorSql = (userId: SQLWrapper) =>
  sql<number>`EXISTS (SELECT 1 FROM mfa_totp WHERE mfa_totp.user_id = ${userId} AND mfa_totp.confirmed_at IS NOT NULL)`;

/** True when the user has a confirmed second factor. */
export async function hasFactor(db: Database, userId: string): Promise<boolean> {
  const row = await db
    .select({ id: mfaTotp.userId })
    .from(mfaTotp)
    .where(and(eq(mfaTotp.userId, userId), isNotNull(mfaTotp.confirmedAt)))
    .get();
  return row !== undefined;
}

/**
 * Starts (or restarts) a TOTP enrollment: a new secret replaces a pending one. A confirmed factor
 * is kept: `conflict` (disable it first).
 */
export async function enrollTotp(
  db: Database,
  cfg: Config,
  user: { id: string; email: string | null },
): Promise<{ secret: string; otpauthUrl: string }> {
  const secret = newTotpSecret();
  const row = { secretSealed: await encryptText(cfg.jwtSecret, SEAL, secret), lastStep: null, createdAt: nowIso() };
  const written = await db
    .insert(mfaTotp)
    .values({ userId: user.id, ...row })
    .onConflictDoUpdate({ target: mfaTotp.userId, set: row, setWhere: isNull(mfaTotp.confirmedAt) })
    .returning({ id: mfaTotp.userId });
  if (written.length === 0) throw new AppError("conflict", "TOTP is already set up; disable it first.");
  return { secret, otpauthUrl: otpauthUrl(cfg.appName, user.email ?? user.id, secret) };
}

/** The stored form of a recovery code: an HMAC keyed from JWT_SECRET over the user and the code. */
async function recoveryHash(cfg: Config, userId: string, code: string): Promise<string> {
  const normal = code.toLowerCase().replace(/[\s-]/g, "");
  return b64url(await hmac(await purposeKey(cfg.jwtSecret, "mfa-recovery"), `${userId}\n${normal}`));
}

/** 50 random bits as `xxxxx-xxxxx` (lowercase base32 without look-alikes). */
function recoveryCode(): string {
  const alphabet = "abcdefghjkmnpqrstuvwxyz23456789";
  let out = "";
  const buf = new Uint8Array(1);
  while (out.length < 10) {
    crypto.getRandomValues(buf);
    // Rejection sampling: 248 = 8 × 31, so every letter is equally likely.
    if (buf[0]! < 248) out += alphabet[buf[0]! % alphabet.length];
  }
  return `${out.slice(0, 5)}-${out.slice(5)}`;
}

/**
 * Confirms the pending enrollment with a code from the app: the factor counts from now on, and
 * its recovery codes (returned once, stored as HMACs) are made in the same batch.
 */
export async function confirmTotp(db: Database, cfg: Config, userId: string, code: string): Promise<string[]> {
  const row = await db
    .select()
    .from(mfaTotp)
    .where(and(eq(mfaTotp.userId, userId), isNull(mfaTotp.confirmedAt)))
    .get();
  if (!row) throw new AppError("conflict", "No TOTP enrollment is waiting; start one with POST /v1/auth/mfa/totp.");
  const step = await matchTotp(await decryptText(cfg.jwtSecret, SEAL, row.secretSealed), code, Date.now(), null);
  if (step === null) throw invalidCode();
  const codes = Array.from({ length: limits.mfaRecoveryCodes }, recoveryCode);
  const hashes = await Promise.all(codes.map((c) => recoveryHash(cfg, userId, c)));
  const now = nowIso();
  const values = sql.join(
    hashes.map((h) => sql`(${h}, ${userId})`),
    sql`, `,
  );
  const [confirmed] = await db.batch([
    // Guarded on the very enrollment that was checked: a replaced or concurrently confirmed one changes nothing.
    db
      .update(mfaTotp)
      .set({ confirmedAt: now, lastStep: step })
      .where(and(eq(mfaTotp.userId, userId), isNull(mfaTotp.confirmedAt), eq(mfaTotp.secretSealed, row.secretSealed)))
      .returning({ id: mfaTotp.userId }),
    // Codes only for the confirmation that took (this batch's, by its time and step).
    db.insert(mfaRecoveryCodes).select(
      sql`SELECT column1, column2 FROM (VALUES ${values})
          WHERE EXISTS (SELECT 1 FROM mfa_totp WHERE user_id = ${userId} AND confirmed_at = ${now}
                        AND last_step = ${step} AND secret_sealed = ${row.secretSealed})`,
    ),
  ]);
  if (confirmed.length === 0) throw new AppError("conflict", "This enrollment was replaced or already confirmed.");
  return codes;
}

/**
 * Checks a second-factor code of a user and uses it up: a TOTP code (its step, or an earlier
 * one, is never accepted again) or a recovery code (deleted). False when wrong or already used.
 * `pending`: also a pending enrollment's TOTP code (to cancel an enrollment that never worked).
 */
export async function spendCode(
  db: Database,
  cfg: Config,
  userId: string,
  code: string,
  pending = false,
): Promise<boolean> {
  const trimmed = code.trim();
  if (/^\d{6}$/.test(trimmed)) {
    const row = await db
      .select()
      .from(mfaTotp)
      .where(and(eq(mfaTotp.userId, userId), pending ? undefined : isNotNull(mfaTotp.confirmedAt)))
      .get();
    if (!row) return false;
    const secret = await decryptText(cfg.jwtSecret, SEAL, row.secretSealed);
    const step = await matchTotp(secret, trimmed, Date.now(), row.lastStep);
    if (step === null) return false;
    // Compare-and-set: of two requests with the same code, one moves the step on, the other gets nothing.
    const moved = await db
      .update(mfaTotp)
      .set({ lastStep: step })
      .where(
        and(
          eq(mfaTotp.userId, userId),
          eq(mfaTotp.secretSealed, row.secretSealed),
          or(isNull(mfaTotp.lastStep), lt(mfaTotp.lastStep, step)),
        ),
      )
      .returning({ id: mfaTotp.userId });
    return moved.length > 0;
  }
  const used = await db
    .delete(mfaRecoveryCodes)
    .where(
      and(eq(mfaRecoveryCodes.userId, userId), eq(mfaRecoveryCodes.hash, await recoveryHash(cfg, userId, trimmed))),
    )
    .returning({ hash: mfaRecoveryCodes.hash });
  return used.length > 0;
}

/** Statements that remove every second factor of a user (TOTP, recovery codes, waiting sign-ins). */
export function removeFactorsStatements(db: Database, userId: string): BatchItem<"sqlite">[] {
  return [
    db.delete(mfaTotp).where(eq(mfaTotp.userId, userId)),
    db.delete(mfaRecoveryCodes).where(eq(mfaRecoveryCodes.userId, userId)),
    db.delete(mfaChallenges).where(eq(mfaChallenges.userId, userId)),
  ];
}

/** Disables TOTP with a code (TOTP or recovery): the factor and its recovery codes go. */
export async function disableTotp(db: Database, cfg: Config, userId: string, code: string): Promise<void> {
  const row = await db.select({ id: mfaTotp.userId }).from(mfaTotp).where(eq(mfaTotp.userId, userId)).get();
  if (!row) throw new AppError("not_found", "TOTP is not set up.");
  if (!(await spendCode(db, cfg, userId, code, true))) throw invalidCode();
  await db.batch(removeFactorsStatements(db, userId) as [BatchItem<"sqlite">, ...BatchItem<"sqlite">[]]);
}

/** What the support console shows: TOTP set up (confirmed or pending) and the recovery codes left. */
export async function factorSummary(
  db: Database,
  userId: string,
): Promise<{ totp: "none" | "pending" | "confirmed"; recoveryCodesLeft: number }> {
  const [totp, left] = await db.batch([
    db.select({ confirmedAt: mfaTotp.confirmedAt }).from(mfaTotp).where(eq(mfaTotp.userId, userId)),
    db.select({ n: count() }).from(mfaRecoveryCodes).where(eq(mfaRecoveryCodes.userId, userId)),
  ]);
  const row = totp[0];
  return {
    totp: !row ? "none" : row.confirmedAt ? "confirmed" : "pending",
    recoveryCodesLeft: left[0]?.n ?? 0,
  };
}

export interface MfaRequiredAnswer {
  mfaRequired: true;
  mfaToken: string;
  methods: (typeof MFA_METHODS)[number][];
}

/**
 * The second-factor step of a sign-in: null when the user has no confirmed factor, else the
 * statement that records a new `mfaToken` (to run in the sign-in's batch) and the answer.
 */
export async function mfaChallenge(
  db: Database,
  userId: string,
  /** Whether the user has a factor, when the caller read it already (else one query). */
  known?: boolean,
): Promise<{ statement: BatchItem<"sqlite">; answer: MfaRequiredAnswer } | null> {
  if (!(known ?? (await hasFactor(db, userId)))) return null;
  const token = `mfa_${randomToken(32)}`;
  return {
    statement: db.insert(mfaChallenges).values({
      hash: await hashToken(token),
      userId,
      attempts: 0,
      expiresAt: addSeconds(nowIso(), limits.mfaTokenTtlSec),
    }),
    answer: { mfaRequired: true, mfaToken: token, methods: [...MFA_METHODS] },
  };
}

/** SQL: the row of `mfaToken` while it still counts (not expired, tries left). */
const liveChallengeSql = async (mfaToken: string) =>
  and(
    eq(mfaChallenges.hash, await hashToken(mfaToken)),
    lt(mfaChallenges.attempts, limits.mfaMaxAttempts),
    sql`${mfaChallenges.expiresAt} > ${nowIso()}`,
  );

/** The user of a live `mfaToken` (unknown, used, expired or out of tries: `invalid_code`). */
export async function challengeUser(db: Database, mfaToken: string): Promise<string> {
  const row = await db
    .select({ userId: mfaChallenges.userId })
    .from(mfaChallenges)
    .where(await liveChallengeSql(mfaToken))
    .get();
  if (!row) throw new AppError("invalid_code", "This sign-in expired or was already completed; sign in again.");
  return row.userId;
}

/**
 * Takes the `mfaToken` after its code was right (single use: of concurrent calls one gets it).
 * False when it is gone meanwhile.
 */
export async function takeChallenge(db: Database, mfaToken: string): Promise<boolean> {
  const gone = await db
    .delete(mfaChallenges)
    .where(await liveChallengeSql(mfaToken))
    .returning({ hash: mfaChallenges.hash });
  return gone.length > 0;
}

/** Counts a wrong code against the `mfaToken`; the last allowed one ends it. */
export async function failChallenge(db: Database, mfaToken: string): Promise<void> {
  const hash = await hashToken(mfaToken);
  await db.batch([
    db
      .update(mfaChallenges)
      .set({ attempts: sql`${mfaChallenges.attempts} + 1` })
      .where(eq(mfaChallenges.hash, hash)),
    db
      .delete(mfaChallenges)
      .where(and(eq(mfaChallenges.hash, hash), sql`${mfaChallenges.attempts} >= ${limits.mfaMaxAttempts}`)),
  ]);
}

/** Cron: drops sign-ins that waited past their mfaToken's lifetime. */
export const mfaCleanup: ScheduledTask = async (_env, db, now) => {
  await db.delete(mfaChallenges).where(lte(mfaChallenges.expiresAt, now.toISOString()));
};
