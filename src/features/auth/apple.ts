/**
 * Sign in with Apple on the server: the client secret (an ES256 JWT signed with the app's key from
 * secrets), an `authorizationCode` exchanged at Apple's token endpoint, the refresh token kept sealed,
 * and its revocation at Apple's revoke endpoint when the account is deleted (through the Queue).
 */
import { eq } from "drizzle-orm";
import { decodeJwt } from "jose";
import { getConfig } from "../../config";
import type { Database } from "../../db";
import { appleTokens } from "../../db/schema";
import { AppError } from "../../errors";
import { decryptText, encryptText } from "../../lib/crypto";
import { nowIso } from "../../lib/ids";
import { importSigningKey, signJwt } from "../../lib/jwt";
import { type DeletionHook, enqueue, type JobHandler } from "../../lifecycle";

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

/** Revokes a user's Apple refresh token (queued by account deletion; retried with backoff on failure). */
export interface AppleRevokeJob {
  type: "auth.apple-revoke";
  clientId: string;
  /** The sealed refresh token (never the token itself on the Queue). */
  sealed: string;
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

/** Account deletion: once the account is gone, its Apple token is revoked through the Queue (5.1.1(v)). */
export const appleDeletionHook: DeletionHook = async ({ env, db, userId }) => {
  const row = await db.select().from(appleTokens).where(eq(appleTokens.userId, userId)).get();
  if (!row) return {};
  const job: AppleRevokeJob = { type: "auth.apple-revoke", clientId: row.clientId, sealed: row.sealedRefreshToken };
  return { after: () => enqueue(env, job) };
};

/** The revocation at Apple: a 5xx or network failure throws (the Queue retries); a 4xx is final and logged. */
async function revokeAppleToken(env: Env, job: AppleRevokeJob): Promise<void> {
  let token: string;
  try {
    token = await decryptText(getConfig(env).jwtSecret, APPLE_SEAL_PURPOSE, job.sealed);
  } catch {
    console.error("apple: a refresh token to revoke could not be unsealed (JWT_SECRET changed?); dropped");
    return;
  }
  const res = await appleForm(env, env.APPLE_REVOKE_URL, job.clientId, { token, token_type_hint: "refresh_token" });
  if (res.ok) return;
  if (res.status >= 500 || res.status === 429) throw new Error(`apple revoke answered ${res.status}`);
  console.error(`apple: revocation refused (${res.status}); dropped`);
}

export const authJobHandlers: { "auth.apple-revoke": JobHandler<AppleRevokeJob> } = {
  "auth.apple-revoke": revokeAppleToken,
};
