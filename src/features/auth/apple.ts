/**
 * Sign in with Apple on the server: the client secret (an ES256 JWT signed with the app's key from
 * secrets), an `authorizationCode` exchanged at Apple's token endpoint, the refresh token kept sealed,
 * and its revocation at Apple's revoke endpoint when the account is deleted (through the Queue).
 */
import { importPKCS8, SignJWT } from "jose";
import { AppError } from "../../errors";

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
  const key = await importPKCS8(p8.replaceAll("\\n", "\n"), "ES256");
  const jwt = await new SignJWT({})
    .setProtectedHeader({ alg: "ES256", kid })
    .setIssuer(team)
    .setSubject(clientId)
    .setAudience(audience)
    .setIssuedAt()
    .setExpirationTime("1h")
    .sign(key);
  secretCache.set(id, { jwt, until: Date.now() + 50 * 60_000 });
  return jwt;
}
