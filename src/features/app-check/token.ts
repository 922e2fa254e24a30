/** `Outpost-App-Check` tokens: HS256 JWTs (1 hour) from a key derived from JWT_SECRET, checked without D1. */
import { errors as joseErrors, jwtVerify, SignJWT } from "jose";
import { type Config, limits } from "../../config";
import { purposeKey } from "../../lib/crypto";

/** How a device proved itself (`debug`: an admin's debug token). */
export type Platform = "apple" | "android" | "web" | "debug";

const ISSUER = "outpost";
const AUDIENCE = "outpost:app-check";
const PLATFORMS: readonly string[] = ["apple", "android", "web", "debug"];

/** Signs a token for a device that passed a check; `subject` names what passed (key id, package, debug token id). */
export async function signAppCheckToken(
  cfg: Config,
  platform: Platform,
  subject: string,
): Promise<{ token: string; expiresAt: string; expiresIn: number }> {
  const exp = Math.floor(Date.now() / 1000) + limits.appCheckTokenTtlSec;
  const token = await new SignJWT({ plat: platform })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(subject)
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(exp)
    .sign(await purposeKey(cfg.jwtSecret, "app-check"));
  return { token, expiresAt: new Date(exp * 1000).toISOString(), expiresIn: limits.appCheckTokenTtlSec };
}

const platformOf = (p: unknown): Platform | "none" =>
  typeof p === "string" && PLATFORMS.includes(p) ? (p as Platform) : "none";

/** What the guard saw: the platform (`none` without a usable token) and why it passed or failed. */
export type Verdict = { ok: boolean; platform: Platform | "none"; reason: "ok" | "missing" | "invalid" | "expired" };

/** Checks a token (HS256 only, our issuer and audience, not expired). Never throws. */
export async function checkAppCheckToken(cfg: Config, token: string | undefined): Promise<Verdict> {
  if (!token) return { ok: false, platform: "none", reason: "missing" };
  try {
    const { payload } = await jwtVerify(token, await purposeKey(cfg.jwtSecret, "app-check"), {
      algorithms: ["HS256"],
      issuer: ISSUER,
      audience: AUDIENCE,
    });
    const plat = platformOf(payload.plat);
    return plat === "none"
      ? { ok: false, platform: plat, reason: "invalid" }
      : { ok: true, platform: plat, reason: "ok" };
  } catch (e) {
    // An expired token's signature was checked before its expiry: its platform can be counted.
    if (e instanceof joseErrors.JWTExpired)
      return { ok: false, platform: platformOf(e.payload.plat), reason: "expired" };
    return { ok: false, platform: "none", reason: "invalid" };
  }
}
