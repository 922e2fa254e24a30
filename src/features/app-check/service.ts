/** App integrity's data access: single-use challenges, attested App Attest keys, debug tokens. */
import { and, desc, eq, gt, lt, sql } from "drizzle-orm";
import { limits } from "../../config";
import type { Database } from "../../db";
import { appAttestKeys, appCheckChallenges, appCheckDebugTokens } from "../../db/schema";
import { hashToken, randomToken } from "../../lib/crypto";
import { newId, nowIso } from "../../lib/ids";
import type { ScheduledTask } from "../../lifecycle";

/** A new challenge, valid once for `appCheckChallengeTtlSec`. */
export async function createChallenge(db: Database): Promise<{ challenge: string; expiresAt: string }> {
  const challenge = randomToken(32);
  const expiresAt = Date.now() + limits.appCheckChallengeTtlSec * 1000;
  await db.insert(appCheckChallenges).values({ challenge, expiresAt });
  return { challenge, expiresAt: new Date(expiresAt).toISOString() };
}

/** Uses a challenge up: true once for a live one (the row is deleted in the same statement). */
export async function consumeChallenge(db: Database, challenge: string): Promise<boolean> {
  const rows = await db
    .delete(appCheckChallenges)
    .where(and(eq(appCheckChallenges.challenge, challenge), gt(appCheckChallenges.expiresAt, Date.now())))
    .returning({ challenge: appCheckChallenges.challenge });
  return rows.length === 1;
}

/** An attested key: its public key (SPKI, base64url) and the last counter seen. */
export type AttestedKey = typeof appAttestKeys.$inferSelect;

export async function findAttestedKey(db: Database, keyId: string): Promise<AttestedKey | null> {
  return (await db.select().from(appAttestKeys).where(eq(appAttestKeys.keyId, keyId)).get()) ?? null;
}

/** Stores a key that passed attestation; a key id attested before keeps its first record. */
export async function saveAttestedKey(
  db: Database,
  key: Pick<AttestedKey, "keyId" | "appId" | "publicKey" | "environment">,
): Promise<void> {
  const at = nowIso();
  await db
    .insert(appAttestKeys)
    .values({ ...key, counter: 0, createdAt: at, lastUsedAt: at })
    .onConflictDoNothing();
}

/** Moves a key's counter forward; false when another assertion got there first (the counter did not grow). */
export async function advanceCounter(db: Database, keyId: string, counter: number): Promise<boolean> {
  const rows = await db
    .update(appAttestKeys)
    .set({ counter, lastUsedAt: nowIso() })
    .where(and(eq(appAttestKeys.keyId, keyId), lt(appAttestKeys.counter, counter)))
    .returning({ keyId: appAttestKeys.keyId });
  return rows.length === 1;
}

// --- debug tokens ------------------------------------------------------------------------

/** A debug token as admins see it (never the secret). */
export interface DebugToken {
  id: string;
  name: string;
  createdBy: string;
  createdAt: string;
  lastUsedAt: string | null;
}

const debugColumns = {
  id: appCheckDebugTokens.id,
  name: appCheckDebugTokens.name,
  createdBy: appCheckDebugTokens.createdBy,
  createdAt: appCheckDebugTokens.createdAt,
  lastUsedAt: appCheckDebugTokens.lastUsedAt,
};

/** A new debug token's row as a statement (for the caller's batch with its audit row) and its secret, shown once. */
export async function newDebugToken(db: Database, name: string, createdBy: string) {
  const debugToken = `opdbg_${randomToken(32)}`;
  const row = { id: newId(), name, tokenHash: await hashToken(debugToken), createdBy, createdAt: nowIso() };
  return { id: row.id, debugToken, statement: db.insert(appCheckDebugTokens).values(row) };
}

export function listDebugTokens(db: Database): Promise<DebugToken[]> {
  return db.select(debugColumns).from(appCheckDebugTokens).orderBy(desc(appCheckDebugTokens.id)).limit(500);
}

/** True while a debug token with this id exists (for the audit row of its revocation, in the same batch). */
export const debugTokenExistsSql = (id: string) =>
  sql`EXISTS (SELECT 1 FROM ${appCheckDebugTokens} WHERE ${appCheckDebugTokens.id} = ${id})`;

/** Revoking deletes the row: the secret no longer exchanges (tokens it already gave run out within the hour). */
export function revokeDebugTokenStatement(db: Database, id: string) {
  return db.delete(appCheckDebugTokens).where(eq(appCheckDebugTokens.id, id)).returning({ id: appCheckDebugTokens.id });
}

/** Exchanges a debug token: its id when it is known (and notes the use), else null. */
export async function useDebugToken(db: Database, debugToken: string): Promise<string | null> {
  const rows = await db
    .update(appCheckDebugTokens)
    .set({ lastUsedAt: nowIso() })
    .where(eq(appCheckDebugTokens.tokenHash, await hashToken(debugToken)))
    .returning({ id: appCheckDebugTokens.id });
  return rows[0]?.id ?? null;
}

/** Cron: expired challenges go. */
export const appCheckCleanup: ScheduledTask = async (_env, db, now) => {
  await db.delete(appCheckChallenges).where(lt(appCheckChallenges.expiresAt, now.getTime()));
};
