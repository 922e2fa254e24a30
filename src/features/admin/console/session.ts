/**
 * The console's sign-in: an opaque random cookie (only its hash is stored, as a `sessions` row of
 * the admin: see `openConsoleSession`), HttpOnly, Secure, SameSite=Strict and scoped to `/admin`.
 * Every form also carries a synchronizer token: an HMAC of the session id (of a random pre-login
 * cookie on the sign-in form), checked in constant time, on top of the Origin check.
 */
import type { Context } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { limits } from "../../../config";
import type { Database } from "../../../db";
import { b64url, hashToken, hmac, purposeKey, randomToken, safeEqualStr } from "../../../lib/crypto";
import { findConsoleSession, openConsoleSession, revokeSession } from "../../auth";
import { auditStatement } from "../service";
import type { ConsoleAdmin, ConsoleEnv } from "./context";

/** `__Secure-`: browsers accept it only with `Secure`, so it cannot be planted over plain HTTP. */
const SESSION_COOKIE = "__Secure-outpost_admin";
const LOGIN_COOKIE = "__Secure-outpost_admin_login";
const CONSOLE_PATH = "/admin";
const COOKIE_RE = /^oa_[A-Za-z0-9_-]{43}$/;
const LOGIN_TTL_SEC = 60 * 60;

const cookieOptions = (maxAge: number) => ({
  path: CONSOLE_PATH,
  httpOnly: true,
  secure: true,
  sameSite: "Strict" as const,
  maxAge,
});

/**
 * The signed-in admin of this request (a live session of an enabled admin), or null. One query when
 * a cookie is present. An admin with a second factor (any admin, with CONSOLE_REQUIRE_MFA) needs an aal2
 * session (the sign-in gave a code).
 */
export async function currentAdmin(c: Context<ConsoleEnv>): Promise<ConsoleAdmin | null> {
  const raw = getCookie(c, SESSION_COOKIE);
  if (!raw || !COOKIE_RE.test(raw)) return null;
  const admin = await findConsoleSession(c.get("db"), await hashToken(raw));
  // A session from a sign-in without the second factor does not count when the admin has one (or with
  // CONSOLE_REQUIRE_MFA, for every admin).
  if (admin && (admin.factor || c.get("config").consoleRequireMfa) && admin.aal !== "aal2") return null;
  return admin;
}

const signInOut = (c: Context<ConsoleEnv>, userId: string, action: string) =>
  auditStatement(
    c.get("db"),
    { id: userId, requestId: c.get("requestId"), clientRequestId: c.get("clientRequestId") },
    { action, target: `user:${userId}`, detail: { ip: c.req.header("cf-connecting-ip") ?? null } },
  );

/** Signs `userId` in: a new console session and its cookie; the audit row rides in the session's batch. */
export async function startSession(c: Context<ConsoleEnv>, userId: string, aal: "aal1" | "aal2"): Promise<void> {
  const token = `oa_${randomToken(32)}`;
  await openConsoleSession(
    c.get("db"),
    userId,
    await hashToken(token),
    c.req.header("user-agent") ?? null,
    limits.adminSessionTtlSec,
    [signInOut(c, userId, "console.sign_in")],
    aal,
  );
  setCookie(c, SESSION_COOKIE, token, cookieOptions(limits.adminSessionTtlSec));
  deleteCookie(c, LOGIN_COOKIE, { path: CONSOLE_PATH, secure: true });
}

/** Signs out: the session row goes (with its audit row, in one batch), and the cookie. */
export async function endSession(c: Context<ConsoleEnv>, db: Database, admin: ConsoleAdmin): Promise<void> {
  await revokeSession(db, admin.userId, admin.sessionId, [signInOut(c, admin.userId, "console.sign_out")]);
  deleteCookie(c, SESSION_COOKIE, { path: CONSOLE_PATH, secure: true });
}

const csrfFor = async (secret: string, subject: string) =>
  b64url(await hmac(await purposeKey(secret, "admin-console-csrf"), subject));

/** The synchronizer token of a signed-in admin's forms. */
export const sessionCsrf = (c: Context<ConsoleEnv>, admin: ConsoleAdmin) =>
  csrfFor(c.get("config").jwtSecret, `session:${admin.sessionId}`);

/** The sign-in form's token, bound to a random pre-login cookie (set here when missing). */
export async function loginCsrf(c: Context<ConsoleEnv>): Promise<string> {
  let nonce = getCookie(c, LOGIN_COOKIE);
  if (!nonce || !/^[A-Za-z0-9_-]{22}$/.test(nonce)) {
    nonce = randomToken(16);
    setCookie(c, LOGIN_COOKIE, nonce, cookieOptions(LOGIN_TTL_SEC));
  }
  return csrfFor(c.get("config").jwtSecret, `login:${nonce}`);
}

/** True when the sign-in form's token matches its pre-login cookie. */
export async function loginCsrfValid(c: Context<ConsoleEnv>, sent: string): Promise<boolean> {
  const nonce = getCookie(c, LOGIN_COOKIE);
  if (!nonce || !sent) return false;
  return safeEqualStr(sent, await csrfFor(c.get("config").jwtSecret, `login:${nonce}`));
}
