/**
 * Sign-in codes by mail: a 6-digit code and a magic-link token in one mail, one live pair per address,
 * hashed, single use, `limits.otpTtlSec`, dead after `limits.otpMaxAttempts` wrong codes. Signing in goes
 * through `signInWithIdentity` (the `email` kind): the same linking rules as every provider.
 */
import { and, eq, lt, lte, sql } from "drizzle-orm";
import { type Config, limits } from "../../config";
import type { Database } from "../../db";
import { otpCodes } from "../../db/schema";
import { AppError } from "../../errors";
import { b64url, hashToken, hmac, purposeKey, randomToken } from "../../lib/crypto";
import { nowIso } from "../../lib/ids";
import type { ScheduledTask } from "../../lifecycle";
import { addSeconds } from "./users";

const invalid = () => new AppError("invalid_code", "This code or link is wrong, used or expired.");

/** A uniform 6-digit code (rejection sampling: no digit is likelier than another). */
function sixDigits(): string {
  const buf = new Uint32Array(1);
  do crypto.getRandomValues(buf);
  while (buf[0]! >= 4_294_000_000);
  return String(buf[0]! % 1_000_000).padStart(6, "0");
}

/** The stored form of a code: an HMAC keyed from JWT_SECRET over the address and the code. */
async function codeHash(cfg: Config, email: string, code: string): Promise<string> {
  return b64url(await hmac(await purposeKey(cfg.jwtSecret, "otp-code"), `${email}\n${code}`));
}

/**
 * A new code and link token for `email`, replacing any earlier pair. The same work whether or not an
 * account has the address (the sign-in creates one).
 */
export async function issueOtp(db: Database, cfg: Config, email: string): Promise<{ code: string; token: string }> {
  const code = sixDigits();
  const token = randomToken(32);
  const row = {
    codeHash: await codeHash(cfg, email, code),
    tokenHash: await hashToken(token),
    attempts: 0,
    expiresAt: addSeconds(nowIso(), limits.otpTtlSec),
  };
  await db
    .insert(otpCodes)
    .values({ email, ...row })
    .onConflictDoUpdate({ target: otpCodes.email, set: row });
  return { code, token };
}

/**
 * Consumes a code (with its address) or a link token; returns the address it proves. A wrong code counts
 * against the address's live code, which dies at the last allowed try. Every failure is `invalid_code`.
 */
export async function consumeOtp(
  db: Database,
  cfg: Config,
  input: { email: string; code: string } | { token: string },
): Promise<string> {
  const now = nowIso();
  const live = and(lt(otpCodes.attempts, limits.otpMaxAttempts), sql`${otpCodes.expiresAt} > ${now}`);
  if ("token" in input) {
    const row = await db
      .delete(otpCodes)
      .where(eq(otpCodes.tokenHash, await hashToken(input.token)))
      .returning()
      .get();
    if (!row || row.attempts >= limits.otpMaxAttempts || row.expiresAt <= now) throw invalid();
    return row.email;
  }
  const hash = await codeHash(cfg, input.email, input.code);
  const row = await db
    .delete(otpCodes)
    .where(and(eq(otpCodes.email, input.email), eq(otpCodes.codeHash, hash), live))
    .returning({ email: otpCodes.email })
    .get();
  if (row) return row.email;
  await db.batch([
    db
      .update(otpCodes)
      .set({ attempts: sql`${otpCodes.attempts} + 1` })
      .where(eq(otpCodes.email, input.email)),
    db
      .delete(otpCodes)
      .where(
        and(
          eq(otpCodes.email, input.email),
          sql`(${otpCodes.attempts} >= ${limits.otpMaxAttempts} OR ${otpCodes.expiresAt} <= ${now})`,
        ),
      ),
  ]);
  throw invalid();
}

/** Cron: drops codes past their expiry. */
export const otpCleanup: ScheduledTask = async (_env, db, now) => {
  await db.delete(otpCodes).where(lte(otpCodes.expiresAt, now.toISOString()));
};
