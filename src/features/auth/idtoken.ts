/**
 * Native Sign in with Apple / Google: the app sends the provider's ID token; we check it against
 * the provider's JWKS (URL from configuration, so tests use a local key set) with jose:
 * signature, issuer, audience (our app's client ids), expiry, and the nonce when one was used.
 */
import { createRemoteJWKSet, type JWTPayload, jwtVerify } from "jose";
import { type Config, limits } from "../../config";
import { AppError } from "../../errors";
import { hex, safeEqualStr, sha256 } from "../../lib/crypto";

const ISSUERS = {
  apple: ["https://appleid.apple.com"],
  google: ["https://accounts.google.com", "accounts.google.com"],
} as const;

// One key set per URL per isolate: jose caches keys and refetches on an unknown `kid`.
const jwksCache = new Map<string, ReturnType<typeof createRemoteJWKSet>>();
export function jwks(url: string) {
  let set = jwksCache.get(url);
  if (!set) {
    set = createRemoteJWKSet(new URL(url), { timeoutDuration: 5000, cooldownDuration: 30_000 });
    jwksCache.set(url, set);
  }
  return set;
}

/** The identity kind of a sign-in by emailed code (its subject is the user id). */
export const EMAIL_PROVIDER = "email";

/** Who the provider vouches for: its user id (`subject`) and what it says about the email. */
export interface VerifiedIdentity {
  /** `apple`, `google`, `github`, a configured OpenID provider's name, or `email`. */
  provider: string;
  subject: string;
  email: string | null;
  emailVerified: boolean;
  name: string | null;
  /** The device's language, kept on an account this sign-in creates. */
  locale?: string | null | undefined;
  /** Apple's refresh token (sealed) and the client it was issued to: kept for revocation at deletion. */
  appleRefresh?: { clientId: string; sealed: string } | undefined;
}

/** Verifies an ID token; any failure is `unauthorized` (the reason is not echoed to the caller). */
export async function verifyIdToken(
  cfg: Config,
  provider: "apple" | "google",
  idToken: string,
  nonce: string | undefined,
): Promise<VerifiedIdentity & { audience: string }> {
  const { jwksUrl, audiences } = cfg[provider];
  if (audiences.length === 0) {
    throw new AppError(
      "forbidden",
      `Sign in with ${provider === "apple" ? "Apple" : "Google"} is not enabled on this server.`,
    );
  }
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(idToken, jwks(jwksUrl), {
      issuer: [...ISSUERS[provider]],
      audience: audiences,
      algorithms: ["RS256", "ES256"],
      clockTolerance: limits.idTokenClockToleranceSec,
      requiredClaims: ["sub", "exp", "iat"],
    }));
  } catch (e) {
    console.warn(`idtoken: ${provider} token rejected: ${(e as Error).name}`);
    throw new AppError("unauthorized", "The ID token could not be verified.");
  }
  // Apple tokens carry SHA-256(nonce) (hex): the app hands Apple the hash and us the raw nonce, so
  // the claim a stolen token shows is never accepted as the nonce itself. Google tokens carry the
  // nonce as sent. Each provider has exactly one accepted form.
  const claimed = typeof payload.nonce === "string" ? payload.nonce : undefined;
  if (nonce !== undefined || claimed !== undefined) {
    const expected = nonce === undefined ? undefined : provider === "apple" ? hex(await sha256(nonce)) : nonce;
    if (expected === undefined || claimed === undefined || !safeEqualStr(claimed, expected)) {
      throw new AppError("unauthorized", "The ID token's nonce does not match.");
    }
  }
  const email = typeof payload.email === "string" ? payload.email.toLowerCase() : null;
  const ev = payload.email_verified;
  return {
    audience: String(Array.isArray(payload.aud) ? payload.aud[0] : payload.aud),
    provider,
    subject: String(payload.sub),
    email,
    emailVerified: ev === true || ev === "true",
    name: typeof payload.name === "string" ? payload.name.slice(0, limits.nameMax) : null,
  };
}
