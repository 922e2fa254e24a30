/**
 * The OAuth / OpenID flow's state in D1: a sign-in under way (start → callback), and the single-use
 * code the callback hands the client (callback → exchange, PKCE-checked). Signing in goes through
 * `signInWithIdentity`: the same linking rules as every other kind.
 */
import { and, eq, lte, sql } from "drizzle-orm";
import { limits } from "../../config";
import type { Database } from "../../db";
import { oauthCodes, oauthFlows } from "../../db/schema";
import { AppError } from "../../errors";
import { b64url, hashToken, randomToken, safeEqualStr, sha256 } from "../../lib/crypto";
import { nowIso } from "../../lib/ids";
import type { ScheduledTask } from "../../lifecycle";
import type { VerifiedIdentity } from "./idtoken";
import { addSeconds } from "./users";

/** PKCE S256: base64url(SHA-256(verifier)). */
const s256 = async (verifier: string) => b64url(await sha256(verifier));

/** Stores a new sign-in under way; returns the `state` and nonce to send the provider, and our PKCE challenge. */
export async function beginFlow(
  db: Database,
  f: { provider: string; redirectUri: string; codeChallenge: string; clientState: string },
): Promise<{ state: string; nonce: string; challenge: string }> {
  const state = randomToken(32);
  const nonce = randomToken(24);
  const providerVerifier = randomToken(32);
  await db.insert(oauthFlows).values({
    ...f,
    stateHash: await hashToken(state),
    nonce,
    providerVerifier,
    expiresAt: addSeconds(nowIso(), limits.oauthFlowTtlSec),
  });
  return { state, nonce, challenge: await s256(providerVerifier) };
}

/** Takes the sign-in under way that `state` names (once); undefined if unknown, used, expired or another provider's. */
export async function takeFlow(db: Database, provider: string, state: string) {
  const row = await db
    .delete(oauthFlows)
    .where(eq(oauthFlows.stateHash, await hashToken(state)))
    .returning()
    .get();
  if (!row || row.provider !== provider || row.expiresAt <= nowIso()) return undefined;
  return row;
}

/** A single-use code for the client, holding the identity the provider vouched for. */
export async function issueExchangeCode(db: Database, identity: VerifiedIdentity, codeChallenge: string) {
  const code = randomToken(32);
  await db.insert(oauthCodes).values({
    codeHash: await hashToken(code),
    identity,
    codeChallenge,
    expiresAt: addSeconds(nowIso(), limits.oauthCodeTtlSec),
  });
  return code;
}

/**
 * Consumes a code with the client's PKCE verifier: the code is gone after this call whatever the outcome.
 * A wrong, used or expired code, or a verifier that does not match, is 401 `invalid_code`.
 */
export async function redeemExchangeCode(db: Database, code: string, verifier: string): Promise<VerifiedIdentity> {
  const row = await db
    .delete(oauthCodes)
    .where(and(eq(oauthCodes.codeHash, await hashToken(code)), sql`${oauthCodes.expiresAt} > ${nowIso()}`))
    .returning()
    .get();
  if (!row || !safeEqualStr(await s256(verifier), row.codeChallenge)) {
    throw new AppError("invalid_code", "This sign-in code is wrong, used or expired, or the verifier does not match.");
  }
  return row.identity as VerifiedIdentity;
}

/** Cron: drops sign-ins that never came back and codes never exchanged. */
export const oauthCleanup: ScheduledTask = async (_env, db, now) => {
  const iso = now.toISOString();
  await db.batch([
    db.delete(oauthFlows).where(lte(oauthFlows.expiresAt, iso)),
    db.delete(oauthCodes).where(lte(oauthCodes.expiresAt, iso)),
  ]);
};
