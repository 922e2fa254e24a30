/**
 * Second-factor test kit: an independent RFC 6238 TOTP (its own base32 and HMAC-SHA1, not the
 * server's), and a user with TOTP set up.
 */
import { env } from "cloudflare:workers";
import { expect } from "vitest";
import { api, signup, type TestUser } from "../../helpers/api";

function unbase32(s: string): Uint8Array {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  const bits = [...s.replace(/=+$/, "")].map((c) => alphabet.indexOf(c).toString(2).padStart(5, "0")).join("");
  const out = new Uint8Array(Math.floor(bits.length / 8));
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(bits.slice(i * 8, i * 8 + 8), 2);
  return out;
}

/** The RFC 6238 code of `secret` (base32) for the 30-second step holding `atMs`, plus `offset` steps. */
export async function totp(secret: string, atMs = Date.now(), offset = 0): Promise<string> {
  const step = Math.floor(atMs / 30_000) + offset;
  const msg = new Uint8Array(8);
  let n = step;
  for (let i = 7; i >= 0; i--) {
    msg[i] = n % 256;
    n = Math.floor(n / 256);
  }
  const key = await crypto.subtle.importKey("raw", unbase32(secret), { name: "HMAC", hash: "SHA-1" }, false, ["sign"]);
  const h = new Uint8Array(await crypto.subtle.sign("HMAC", key, msg));
  const o = h[19]! & 15;
  const bin = ((h[o]! & 127) << 24) | (h[o + 1]! << 16) | (h[o + 2]! << 8) | h[o + 3]!;
  return String(bin % 1_000_000).padStart(6, "0");
}

/** RFC 6238 appendix B's vector for SHA-1 at T = 59 s (8 digits: 94287082), cut to 6 digits. */
export const RFC_SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"; // "12345678901234567890"

export interface MfaUser extends TestUser {
  secret: string;
  recoveryCodes: string[];
}

/** Signs up, marks the email verified (so providers link to it), and sets up TOTP. */
export async function mfaUser(): Promise<MfaUser> {
  const u = await signup();
  await env.DB.prepare("UPDATE users SET email_verified = 1 WHERE id = ?").bind(u.id).run();
  const enrolled = await api("/v1/auth/mfa/totp", { token: u.accessToken, body: {} });
  expect(enrolled.status, enrolled.text).toBe(201);
  const { secret } = enrolled.body as { secret: string };
  // A code of the previous step: later tests' codes of the current step are still unused.
  const confirmed = await api("/v1/auth/mfa/totp/confirm", {
    token: u.accessToken,
    body: { code: await totp(secret, Date.now(), -1) },
  });
  expect(confirmed.status, confirmed.text).toBe(200);
  return { ...u, secret, recoveryCodes: confirmed.body.recoveryCodes };
}

/** Password login: the answer's body (an mfaToken for an MfaUser). */
export async function loginBody(u: TestUser) {
  const res = await api("/v1/auth/login", { body: { email: u.email, password: u.password } });
  expect(res.status, res.text).toBe(200);
  return res.body;
}

export const verifyMfa = (mfaToken: string, code: string, ip?: string) =>
  api("/v1/auth/mfa/verify", { body: { mfaToken, code }, ...(ip ? { ip } : {}) });

/** The claims of an access token (no check). */
export function claimsOf(token: string): Record<string, unknown> {
  const p = token.split(".")[1]!.replaceAll("-", "+").replaceAll("_", "/");
  return JSON.parse(atob(p));
}

/** Sessions rows of a user. */
export const sessionCount = async (userId: string) =>
  (await env.DB.prepare("SELECT count(*) AS n FROM sessions WHERE user_id = ?").bind(userId).first<{ n: number }>())
    ?.n ?? 0;

/** An aal2 session of an MfaUser, through login and mfa/verify with a code `offset` steps from now. */
export async function aal2Session(u: MfaUser, offset = 0) {
  const { mfaToken } = await loginBody(u);
  const res = await verifyMfa(mfaToken, await totp(u.secret, Date.now(), offset));
  expect(res.status, res.text).toBe(200);
  return res.body.session as { accessToken: string; refreshToken: string };
}
