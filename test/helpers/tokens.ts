/** Token forgery kit for security tests: tokens signed with the real or a wrong key, `alg: none`, expired ones. */
import { env } from "cloudflare:workers";
import { SignJWT } from "jose";
import { b64url, purposeKey } from "../../src/lib/crypto";

const enc = new TextEncoder();
const part = (o: object) => b64url(enc.encode(JSON.stringify(o)));

/** Signs access-token claims with the server's real key (to test expiry and claim checks). */
export async function signWithServerKey(
  claims: Record<string, unknown>,
  opts: { exp: number | string; iss?: string; aud?: string },
) {
  const key = await purposeKey(env.JWT_SECRET, "access-token");
  return new SignJWT(claims)
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuer(opts.iss ?? "outpost")
    .setAudience(opts.aud ?? "outpost:access")
    .setIssuedAt(Math.floor(Date.now() / 1000) - 3600)
    .setExpirationTime(opts.exp)
    .sign(key);
}

/** Same claims, signed with a key the server does not know. */
export async function signWithWrongKey(claims: Record<string, unknown>) {
  const key = await purposeKey("an-attackers-secret-0123456789abcdef0123", "access-token");
  return new SignJWT(claims)
    .setProtectedHeader({ alg: "HS256" })
    .setIssuer("outpost")
    .setAudience("outpost:access")
    .setIssuedAt()
    .setExpirationTime("10m")
    .sign(key);
}

/** An unsigned token (`alg: none`). */
export function unsignedToken(claims: Record<string, unknown>) {
  const now = Math.floor(Date.now() / 1000);
  const payload = { iss: "outpost", aud: "outpost:access", iat: now, exp: now + 600, ...claims };
  return `${part({ alg: "none", typ: "JWT" })}.${part(payload)}.`;
}

/** A real token whose payload was edited (signature kept). */
export function tamperPayload(token: string, patch: Record<string, unknown>) {
  const [h, p, s] = token.split(".");
  const payload = JSON.parse(
    new TextDecoder().decode(
      Uint8Array.from(atob(p!.replaceAll("-", "+").replaceAll("_", "/")), (c) => c.charCodeAt(0)),
    ),
  );
  return `${h}.${part({ ...payload, ...patch })}.${s}`;
}

/**
 * A real token with one signature character changed. Never the last one: its low bits are padding,
 * so a swap there can leave the decoded signature (and the token) valid.
 */
export function brokenSignature(token: string) {
  const at = token.lastIndexOf(".") + 1;
  const c = token[at];
  return `${token.slice(0, at)}${c === "A" ? "B" : "A"}${token.slice(at + 1)}`;
}

/** Gets an ID token signed by the stand-in Apple/Google issuer. */
export async function providerIdToken(provider: "apple" | "google", claims: Record<string, unknown>): Promise<string> {
  const res = await fetch(`${env.STANDIN_URL}/oidc/${provider}/sign`, { method: "POST", body: JSON.stringify(claims) });
  if (!res.ok) throw new Error(`stand-in sign failed: ${res.status}`);
  return ((await res.json()) as { token: string }).token;
}
