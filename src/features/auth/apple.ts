/**
 * Sign in with Apple on the server: the client secret (an ES256 JWT signed with the app's key from
 * secrets), an `authorizationCode` exchanged at Apple's token endpoint, the refresh token kept sealed,
 * and its revocation at Apple's revoke endpoint when the account is deleted (through the Queue).
 */
import { eq, inArray, lte } from "drizzle-orm";
import { decodeJwt } from "jose";
import { getConfig, limits } from "../../config";
import { type Database, primaryDb } from "../../db";
import { appleRevocations, appleTokens } from "../../db/schema";
import { AppError } from "../../errors";
import { decryptText, encryptText } from "../../lib/crypto";
import { newId, nowIso } from "../../lib/ids";
import { importSigningKey, signJwt } from "../../lib/jwt";
import { type DeletionHook, enqueue, type JobHandler, type ScheduledTask } from "../../lifecycle";

const APPLE_AUDIENCE = "https://appleid.apple.com";
const secretCache = new Map<string, { jwt: string; until: number }>();

/** Apple's client secret for `clientId` (a bundle id or Services ID), cached for most of its hour. */
export async function appleClientSecret(env: Env, clientId: string, audience = APPLE_AUDIENCE): Promise<string> {
  const { APPLE_KEY_P8: p8, APPLE_KEY_ID: kid, APPLE_TEAM_ID: team } = env;
  if (!p8 || !kid || !team) {
    console.error("configuration error: APPLE_KEY_P8, APPLE_KEY_ID and APPLE_TEAM_ID are needed to talk to Apple");
    throw new AppError("misconfigured", "Sign in with Apple's server key is not configured.");
  }
  const id = `${clientId}\u0000${audience}\u0000${kid}`;
  const hit = secretCache.get(id);
  if (hit && hit.until > Date.now()) return hit.jwt;
  const now = Math.floor(Date.now() / 1000);
  const claims = { iss: team, sub: clientId, aud: audience, iat: now, exp: now + 3600 };
  const jwt = await signJwt("ES256", await importSigningKey(p8, "ES256"), { kid }, claims);
  secretCache.set(id, { jwt, until: Date.now() + 50 * 60_000 });
  return jwt;
}

/** Revokes the Apple refresh token of a deleted account: `id` names its `apple_revocations` row. */
export interface AppleRevokeJob {
  type: "auth.apple-revoke";
  id: string;
}

/** What Apple refresh tokens are encrypted for (`encryptText`/`decryptText`). */
export const APPLE_SEAL_PURPOSE = "apple-refresh-token";

/** What Apple's token endpoint answers (`fetch` errors and 5xx are `unavailable`). */
async function appleForm(env: Env, url: string, clientId: string, fields: Record<string, string>): Promise<Response> {
  const body = new URLSearchParams({ client_id: clientId, client_secret: await appleClientSecret(env, clientId) });
  for (const [k, v] of Object.entries(fields)) body.set(k, v);
  return fetch(url, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
    body,
    signal: AbortSignal.timeout(10_000),
  });
}

/**
 * Exchanges a native Sign in with Apple `authorizationCode` (issued to `clientId`, the app's bundle id) for
 * Apple's refresh token, returned sealed (AES-GCM, key derived from JWT_SECRET); null when Apple gave none.
 * The code must belong to `subject` (the ID token's user). A refused code is `unauthorized`.
 */
export async function exchangeAppleCode(
  env: Env,
  jwtSecret: string,
  clientId: string,
  subject: string,
  code: string,
): Promise<string | null> {
  let res: Response;
  try {
    res = await appleForm(env, env.APPLE_TOKEN_URL, clientId, { grant_type: "authorization_code", code });
  } catch (e) {
    if (e instanceof AppError) throw e;
    throw new AppError("unavailable", "Apple could not be reached; try again.");
  }
  if (res.status >= 500) throw new AppError("unavailable", "Apple could not be reached; try again.");
  if (!res.ok) {
    console.warn(`apple: authorization code refused (${res.status})`);
    throw new AppError("unauthorized", "The authorization code could not be exchanged.");
  }
  const body = (await res.json()) as { refresh_token?: unknown; id_token?: unknown };
  if (typeof body.id_token === "string" && decodeJwt(body.id_token).sub !== subject) {
    throw new AppError("unauthorized", "The authorization code belongs to another Apple user.");
  }
  return typeof body.refresh_token === "string" ? encryptText(jwtSecret, APPLE_SEAL_PURPOSE, body.refresh_token) : null;
}

/** The statement that keeps (or replaces) a user's sealed Apple refresh token. */
export function keepAppleTokenStatement(db: Database, userId: string, t: { clientId: string; sealed: string }) {
  const set = { clientId: t.clientId, sealedRefreshToken: t.sealed, updatedAt: nowIso() };
  return db
    .insert(appleTokens)
    .values({ userId, ...set })
    .onConflictDoUpdate({ target: appleTokens.userId, set });
}

/**
 * Account deletion: the token to revoke is written to `apple_revocations` in the deletion's batch, and
 * revoked at Apple through the Queue once the account is gone (5.1.1(v)); the cron retries what is left.
 */
export const appleDeletionHook: DeletionHook = async ({ env, db, userId }) => {
  const row = await db.select().from(appleTokens).where(eq(appleTokens.userId, userId)).get();
  if (!row) return {};
  const id = newId();
  const now = Date.now();
  const outbox = db.insert(appleRevocations).values({
    id,
    clientId: row.clientId,
    sealedRefreshToken: row.sealedRefreshToken,
    attempts: 0,
    nextAttemptAt: new Date(now + retryDelaySec(0) * 1000).toISOString(),
    createdAt: new Date(now).toISOString(),
  });
  return { statements: [outbox], after: () => enqueue(env, { type: "auth.apple-revoke", id }) };
};

/** The cron's wait before its `attempt`-th send (0: after the deletion's own): 10 min doubling, at most a day. */
const retryDelaySec = (attempt: number) => Math.min(limits.appleRevokeRetrySec * 2 ** attempt, 24 * 3600);

/**
 * The revocation at Apple. Done (the row goes): Apple took it, refused it for good (4xx), or the token
 * cannot be unsealed. A 5xx, 429 or network failure throws: the Queue retries, then the cron.
 */
async function revokeAppleToken(env: Env, job: AppleRevokeJob): Promise<void> {
  const db = primaryDb(env.DB);
  const row = await db.select().from(appleRevocations).where(eq(appleRevocations.id, job.id)).get();
  if (!row) return; // already revoked (a repeated message, or the cron's send after the Queue's)
  const done = () => db.delete(appleRevocations).where(eq(appleRevocations.id, row.id));
  let token: string;
  try {
    token = await decryptText(getConfig(env).jwtSecret, APPLE_SEAL_PURPOSE, row.sealedRefreshToken);
  } catch {
    console.error("apple: a refresh token to revoke could not be unsealed (JWT_SECRET changed?); dropped");
    await done();
    return;
  }
  const res = await appleForm(env, env.APPLE_REVOKE_URL, row.clientId, { token, token_type_hint: "refresh_token" });
  if (res.status >= 500 || res.status === 429) throw new Error(`apple revoke answered ${res.status}`);
  if (!res.ok) console.error(`apple: revocation refused (${res.status}); dropped`);
  await done();
}

/**
 * Cron: sends again the revocations still waiting at their `next_attempt_at` (a lost Queue message, or
 * Apple down for longer than the Queue's retries), with backoff; gives up after `appleRevokeMaxAttempts`.
 */
export const appleRevokeBackstop: ScheduledTask = async (env, db, now) => {
  const iso = now.toISOString();
  const due = await db
    .select({ id: appleRevocations.id, attempts: appleRevocations.attempts })
    .from(appleRevocations)
    .where(lte(appleRevocations.nextAttemptAt, iso))
    .orderBy(appleRevocations.nextAttemptAt)
    .limit(50);
  if (due.length === 0) return;
  const given = due.filter((r) => r.attempts >= limits.appleRevokeMaxAttempts);
  const again = due.filter((r) => r.attempts < limits.appleRevokeMaxAttempts);
  if (given.length > 0) console.error(`apple: ${given.length} revocation(s) given up after every retry`);
  await db.batch([
    db.delete(appleRevocations).where(inArray(appleRevocations.id, given.map((r) => r.id).concat(""))),
    ...again.map((r) =>
      db
        .update(appleRevocations)
        .set({
          attempts: r.attempts + 1,
          nextAttemptAt: new Date(now.getTime() + retryDelaySec(r.attempts + 1) * 1000).toISOString(),
        })
        .where(eq(appleRevocations.id, r.id)),
    ),
  ]);
  if (again.length > 0)
    await env.JOBS.sendBatch(
      again.map((r) => ({ body: { type: "auth.apple-revoke", id: r.id } satisfies AppleRevokeJob })),
    );
};

export const authJobHandlers: { "auth.apple-revoke": JobHandler<AppleRevokeJob> } = {
  "auth.apple-revoke": revokeAppleToken,
};
