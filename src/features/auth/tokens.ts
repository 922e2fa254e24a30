/** Access tokens (short-lived HS256 JWTs, verified without a database query) and refresh tokens. */
import { errors as joseErrors, jwtVerify, SignJWT } from "jose";
import { type Config, limits } from "../../config";
import type { Aal, Principal } from "../../env";
import { AppError } from "../../errors";
import { b64url, hmac, purposeKey, randomToken } from "../../lib/crypto";

const ISSUER = "outpost";
const AUDIENCE = "outpost:access";

export interface AccessClaims {
  userId: string;
  sessionId: string;
  anonymous: boolean;
  /** The session's assurance level (the `aal` claim; routes check it without a query). */
  aal: Aal;
}

/** Signs an access token for a session. */
async function signAccessToken(cfg: Config, claims: AccessClaims): Promise<string> {
  const key = await purposeKey(cfg.jwtSecret, "access-token");
  return new SignJWT({ sid: claims.sessionId, anon: claims.anonymous, aal: claims.aal })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(claims.userId)
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(`${limits.accessTokenTtlSec}s`)
    .sign(key);
}

/**
 * Access tokens this isolate already verified, with their expiry, per configuration (so per
 * secret). An app sends the same token with every request for its whole lifetime, and checking
 * it again (base64, JSON, HMAC, claims) is a sizeable part of a short request's CPU. Keyed by the
 * whole token, so only the very same token hits; a hit still checks the expiry (as jose does:
 * valid while `exp` is after the current second). At most VERIFIED_MAX kept, the oldest goes first.
 */
const verifiedTokens = new WeakMap<Config, Map<string, Verified>>();
const VERIFIED_MAX = 1000;

/** A verified access token: who it names, and when it was issued and expires (epoch seconds). */
interface Verified {
  principal: Principal;
  iat: number;
  exp: number;
}

/**
 * Verifies an access token: HS256 only (so `alg: none` and key-confusion tricks fail), our issuer
 * and audience, not expired. Expired → `token_expired`; anything else wrong → `unauthorized`.
 */
export async function verifyAccessToken(cfg: Config, token: string): Promise<Principal> {
  return (await verifyAccessTokenIssued(cfg, token)).principal;
}

/** As `verifyAccessToken`, also saying when the token was issued (for the revocation list). */
export async function verifyAccessTokenIssued(
  cfg: Config,
  token: string,
): Promise<{ principal: Principal; iat: number }> {
  let verified = verifiedTokens.get(cfg);
  const hit = verified?.get(token);
  if (hit) {
    if (hit.exp > Math.floor(Date.now() / 1000)) return { principal: { ...hit.principal }, iat: hit.iat };
    verified?.delete(token);
  }
  const key = await purposeKey(cfg.jwtSecret, "access-token");
  try {
    const { payload } = await jwtVerify(token, key, { algorithms: ["HS256"], issuer: ISSUER, audience: AUDIENCE });
    if (typeof payload.sub !== "string" || typeof payload.sid !== "string")
      throw new AppError("unauthorized", "Malformed token.");
    const principal: Principal = {
      kind: "user",
      userId: payload.sub,
      sessionId: payload.sid,
      anonymous: payload.anon === true,
      // Only a token that says aal2 is one; anything else (older tokens have no claim) is aal1.
      ...(payload.aal === "aal2" ? { aal: "aal2" as const } : {}),
    };
    // Tokens this code signed always carry iat; one without is treated as issued at the epoch.
    const iat = typeof payload.iat === "number" ? payload.iat : 0;
    if (typeof payload.exp === "number") {
      if (!verified) {
        verified = new Map();
        verifiedTokens.set(cfg, verified);
      }
      if (verified.size >= VERIFIED_MAX) verified.delete(verified.keys().next().value as string);
      verified.set(token, { principal, iat, exp: payload.exp });
    }
    return { principal: { ...principal }, iat };
  } catch (e) {
    if (e instanceof AppError) throw e;
    if (e instanceof joseErrors.JWTExpired)
      throw new AppError("token_expired", "The access token has expired; refresh it.");
    throw new AppError("unauthorized", "The access token is not valid.");
  }
}

/** A new opaque refresh token (256 random bits), for a new session. Only its hash is stored. */
export const newRefreshToken = (): string => `rt_${randomToken(32)}`;

/**
 * The token that replaces `presented` when it is rotated: `rt_` + HMAC-SHA256 under a key derived
 * from JWT_SECRET. Deterministic, so a refresh retried after a lost answer, or two concurrent
 * refreshes of one token, get the very same successor (and only its hash is stored); without the
 * secret it can't be computed from the token.
 */
export async function nextRefreshToken(cfg: Config, presented: string): Promise<string> {
  return `rt_${b64url(await hmac(await purposeKey(cfg.jwtSecret, "refresh-rotation"), presented))}`;
}

/** The session object of the contract. */
export interface SessionTokens {
  accessToken: string;
  refreshToken: string;
  tokenType: "Bearer";
  expiresIn: number;
}

export async function sessionTokens(cfg: Config, claims: AccessClaims, refreshToken: string): Promise<SessionTokens> {
  return {
    accessToken: await signAccessToken(cfg, claims),
    refreshToken,
    tokenType: "Bearer",
    expiresIn: limits.accessTokenTtlSec,
  };
}
