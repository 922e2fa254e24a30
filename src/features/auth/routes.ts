/** `/v1/auth/*`: signup, login, guests, refresh, logout, sessions, passwords, email, ID tokens. */
import { Hono } from "hono";
import * as v from "valibot";
import { limits } from "../../config";
import type { AppEnv, Vars } from "../../env";
import { AppError } from "../../errors";
import { describe, EmptyBody, validate } from "../../lib/validation";
import { endSessionSockets } from "../../lifecycle";
import { idempotency } from "../../middleware/idempotency";
import { checkRate, rateLimit, rateLimitUser } from "../../middleware/rate-limit";
import { createMailer, mailLinkBase, passwordResetMail, signInCodeMail, verifyEmailMail } from "../mail";
import {
  changePassword,
  confirmEmail,
  confirmPasswordReset,
  createGuest,
  findUserForReset,
  issueToken,
  signup,
} from "./accounts";
import { exchangeAppleCode } from "./apple";
import { linkGuest, signInWithIdentity } from "./identities";
import { EMAIL_PROVIDER, verifyIdToken } from "./idtoken";
import { mfaRoutes } from "./mfa-routes";
import { requireAal2IfFactor, requireUser, userOf } from "./middleware";
import { newAccounts } from "./new-accounts";
import { oauthRoutes } from "./oauth-routes";
import { consumeOtp, issueOtp } from "./otp";
import { passkeyRoutes } from "./passkey-routes";
import * as schemas from "./schemas";
import { issueSocketTicket, listSessions, login, refresh, revokeSession } from "./sessions";
import { getUser, getUserByEmail } from "./users";

const ua = (c: { req: { header(n: string): string | undefined } }) => c.req.header("user-agent") ?? null;

/** A refresh token no session has any more (signed out, revoked, ended) gets its own code: sign in again. */
const revokedRefresh = (e: unknown): never => {
  throw e instanceof AppError && e.code === "unauthorized" ? new AppError("session_revoked", e.detail) : e;
};

/** Where links in mails point (see `mailLinkBase`). */
function linkBase(c: { env: Env; get: Vars["get"]; req: { url: string } }) {
  return mailLinkBase(c.get("config"), c.env, c.req.url);
}

export const authRoutes = new Hono<AppEnv>()
  .post(
    "/signup",
    describe({
      tag: "Auth",
      summary: "Create an account with email and password",
      auth: "none",
      rateLimited: true,
      responses: {
        201: { description: "Account and session", schema: schemas.AuthResult },
        409: { description: "email_taken" },
      },
    }),
    rateLimit("AUTH_LIMITER", "signup"),
    validate("json", schemas.SignupBody),
    async (c) => c.json(await signup(c.get("db"), c.get("config"), c.req.valid("json"), ua(c), newAccounts(c)), 201),
  )
  .post(
    "/login",
    describe({
      tag: "Auth",
      summary: "Sign in with email and password",
      auth: "none",
      rateLimited: true,
      responses: {
        200: {
          description: "Account and session, or (a second factor is set up) an mfaToken",
          schema: schemas.SignInResult,
        },
        401: { description: "invalid_credentials (also for an unknown email)" },
      },
    }),
    rateLimit("AUTH_LIMITER", "login"),
    validate("json", schemas.LoginBody),
    async (c) => c.json(await login(c.get("db"), c.get("config"), c.req.valid("json"), ua(c))),
  )
  .post(
    "/anonymous",
    describe({
      tag: "Auth",
      summary: "Start a guest account",
      auth: "none",
      rateLimited: true,
      responses: { 201: { description: "Guest account and session", schema: schemas.AuthResult } },
    }),
    rateLimit("AUTH_LIMITER", "anonymous"),
    validate("json", EmptyBody),
    async (c) => c.json(await createGuest(c.get("db"), c.get("config"), ua(c), newAccounts(c)), 201),
  )
  .post(
    "/link",
    describe({
      tag: "Auth",
      summary: "Turn the calling guest into a full account (same id)",
      rateLimited: true,
      responses: {
        200: { description: "The upgraded user", schema: v.object({ user: schemas.UserSchema }) },
        409: { description: "email_taken, or not a guest (conflict)" },
      },
    }),
    requireUser,
    idempotency,
    rateLimit("AUTH_LIMITER", "link"),
    validate("json", schemas.LinkBody),
    async (c) => c.json({ user: await linkGuest(c.get("db"), userOf(c).userId, c.req.valid("json")) }),
  )
  .post(
    "/refresh",
    describe({
      tag: "Auth",
      summary: "Rotate the refresh token and get a new access token",
      auth: "none",
      rateLimited: true,
      description:
        "Each refresh token is rotated once. The token just rotated may be presented again for 10 seconds after " +
        "its rotation (the answer to the first call was lost on a bad network): that answers 200 with the same " +
        "new refresh token. Any other already-rotated token answers 401 `refresh_token_reused` and revokes the " +
        "whole session. A token no session has any more (signed out, revoked, expired) answers 401 " +
        "`session_revoked`.",
      responses: { 200: { description: "New session tokens", schema: v.object({ session: schemas.SessionSchema }) } },
    }),
    rateLimit("REFRESH_LIMITER", "refresh"),
    validate("json", schemas.RefreshBody),
    async (c) => {
      const ended = (userId: string, sessionId: string) =>
        c.executionCtx.waitUntil(endSessionSockets(c.get("lifecycle"), c.env, userId, [sessionId]));
      return c.json({
        session: await refresh(c.get("db"), c.get("config"), c.req.valid("json").refreshToken, ua(c), ended).catch(
          revokedRefresh,
        ),
      });
    },
  )
  .post(
    "/logout",
    describe({
      tag: "Auth",
      summary: "Revoke the current session",
      description:
        "The refresh token stops working at once; the access token expires on its own within its short lifetime.",
      responses: { 204: { description: "Signed out" } },
    }),
    requireUser,
    idempotency,
    validate("json", EmptyBody),
    async (c) => {
      const p = userOf(c);
      await revokeSession(c.get("db"), p.userId, p.sessionId);
      c.executionCtx.waitUntil(endSessionSockets(c.get("lifecycle"), c.env, p.userId, [p.sessionId]));
      return c.body(null, 204);
    },
  )
  .post(
    "/socket-ticket",
    describe({
      tag: "Auth",
      summary: "A single-use ticket for opening a WebSocket",
      description:
        "Recommended way to authenticate a WebSocket: pass the ticket as `?ticket=` when opening any socket " +
        "route (such as `GET /v1/rooms/{id}/ws`) instead of `?token=`, so the access token stays out of URLs and " +
        "server logs. Valid once, for 30 seconds; the socket opens for the calling session (the same user and " +
        "session as the access token that asked for the ticket). Only its hash is stored.",
      rateLimited: true,
      responses: { 201: { description: "The ticket", schema: schemas.SocketTicketSchema } },
    }),
    requireUser,
    rateLimitUser("REFRESH_LIMITER", "socket-ticket", limits.socketTicketsPeriodSec),
    validate("json", EmptyBody),
    async (c) => c.json(await issueSocketTicket(c.get("db"), userOf(c)), 201),
  )
  .get(
    "/sessions",
    describe({
      tag: "Auth",
      summary: "List the caller's sessions",
      responses: {
        200: {
          description: "Sessions, most recently used first",
          schema: v.object({ items: v.array(schemas.SessionInfo) }),
        },
      },
    }),
    requireUser,
    async (c) => {
      const p = userOf(c);
      return c.json({ items: await listSessions(c.get("db"), p.userId, p.sessionId) });
    },
  )
  .delete(
    "/sessions/:id",
    describe({
      tag: "Auth",
      summary: "Revoke one of the caller's sessions",
      responses: { 204: { description: "Revoked" }, 404: { description: "No such session of the caller" } },
    }),
    requireUser,
    validate("param", schemas.SessionIdParam),
    async (c) => {
      const { userId } = userOf(c);
      const { id } = c.req.valid("param");
      if (!(await revokeSession(c.get("db"), userId, id))) throw new AppError("not_found", "No such session.");
      c.executionCtx.waitUntil(endSessionSockets(c.get("lifecycle"), c.env, userId, [id]));
      return c.body(null, 204);
    },
  )
  .post(
    "/password",
    describe({
      tag: "Auth",
      summary: "Change the password (other sessions are revoked)",
      rateLimited: true,
      responses: {
        204: { description: "Changed" },
        401: { description: "invalid_credentials: the current password is wrong; mfa_required: an aal1 session" },
      },
    }),
    requireUser,
    idempotency,
    rateLimit("AUTH_LIMITER", "password"),
    requireAal2IfFactor,
    validate("json", schemas.PasswordChangeBody),
    async (c) => {
      const p = userOf(c);
      const b = c.req.valid("json");
      const ended = await changePassword(c.get("db"), p.userId, p.sessionId, b.currentPassword, b.newPassword);
      c.executionCtx.waitUntil(endSessionSockets(c.get("lifecycle"), c.env, p.userId, ended));
      return c.body(null, 204);
    },
  )
  .post(
    "/password-reset",
    describe({
      tag: "Auth",
      summary: "Mail a password reset code",
      auth: "none",
      rateLimited: true,
      description: "Always 202, whether or not the account exists; the lookup and the mail happen after the response.",
      responses: { 202: { description: "Accepted" } },
    }),
    rateLimit("AUTH_LIMITER", "reset"),
    validate("json", schemas.PasswordResetBody),
    async (c) => {
      const { email } = c.req.valid("json");
      const db = c.get("db");
      const config = c.get("config");
      const base = linkBase(c);
      c.executionCtx.waitUntil(
        (async () => {
          const user = await findUserForReset(db, email);
          if (!user) return;
          const token = await issueToken(db, user.id, "password_reset", user.email, limits.passwordResetTtlSec);
          await createMailer(config, db).send(passwordResetMail(config, email, token, base, "holder", user.locale));
        })().catch((e: unknown) => console.error("password-reset mail failed:", (e as Error).message)),
      );
      return c.body(null, 202);
    },
  )
  .post(
    "/password-reset/confirm",
    describe({
      tag: "Auth",
      summary: "Set a new password with a reset code (all sessions are revoked)",
      auth: "none",
      rateLimited: true,
      responses: { 204: { description: "Password set" }, 400: { description: "invalid_token" } },
    }),
    rateLimit("AUTH_LIMITER", "reset-confirm"),
    validate("json", schemas.PasswordResetConfirmBody),
    async (c) => {
      const b = c.req.valid("json");
      const userId = await confirmPasswordReset(c.get("db"), b.token, b.newPassword);
      c.executionCtx.waitUntil(endSessionSockets(c.get("lifecycle"), c.env, userId, "all"));
      return c.body(null, 204);
    },
  )
  .post(
    "/verify-email",
    describe({
      tag: "Auth",
      summary: "Mail an email verification code to the caller",
      rateLimited: true,
      responses: { 202: { description: "Sent" }, 409: { description: "No email, or already verified" } },
    }),
    requireUser,
    idempotency,
    rateLimit("AUTH_LIMITER", "verify"),
    validate("json", EmptyBody),
    async (c) => {
      const db = c.get("db");
      const config = c.get("config");
      const base = linkBase(c); // before any write: a misconfigured server writes nothing
      const user = await getUser(db, userOf(c).userId);
      if (!user) throw new AppError("unauthorized", "This account no longer exists.");
      if (!user.email) throw new AppError("conflict", "This account has no email address.");
      if (user.emailVerified) throw new AppError("conflict", "The email address is already verified.");
      const token = await issueToken(db, user.id, "email_verify", user.email, limits.emailVerifyTtlSec);
      await createMailer(config, db).send(verifyEmailMail(config, user.email, token, base, user.locale));
      return c.body(null, 202);
    },
  )
  .post(
    "/verify-email/confirm",
    describe({
      tag: "Auth",
      summary: "Confirm an email address with its code",
      auth: "none",
      rateLimited: true,
      responses: { 204: { description: "Verified" }, 400: { description: "invalid_token" } },
    }),
    rateLimit("AUTH_LIMITER", "verify-confirm"),
    validate("json", schemas.TokenBody),
    async (c) => {
      await confirmEmail(c.get("db"), c.req.valid("json").token);
      return c.body(null, 204);
    },
  )
  .post(
    "/idtoken",
    describe({
      tag: "Auth",
      summary: "Sign in with Apple or Google (native ID token)",
      auth: "none",
      rateLimited: true,
      description:
        "`nonce`: for Apple send the raw nonce (the token carries its SHA-256, hex; the hash itself is refused); " +
        "for Google the token carries the nonce as sent. A provider email joins an existing account only when " +
        "both the provider and that account have verified it; an account whose email was never verified keeps " +
        "its id and data but loses the email, and the provider's user gets a new account. A provider email that " +
        "is not verified is never stored as the account's email. Apple: `authorizationCode` (from the same " +
        "sign-in) is exchanged at Apple and its refresh token kept encrypted, to be revoked at Apple when the " +
        "account is deleted (a refused code → 401 `unauthorized`).",
      responses: {
        200: {
          description: "Account and session, or (a second factor is set up) an mfaToken",
          schema: schemas.SignInResult,
        },
      },
    }),
    rateLimit("AUTH_LIMITER", "idtoken"),
    validate("json", schemas.IdTokenBody),
    async (c) => {
      const b = c.req.valid("json");
      const identity = await verifyIdToken(c.get("config"), b.provider, b.idToken, b.nonce);
      // Apple sends the name only to the app, once: let the app pass it along.
      if (!identity.name && b.name) identity.name = b.name;
      identity.locale = b.locale;
      if (b.authorizationCode) {
        if (b.provider !== "apple") {
          throw new AppError("validation_failed", "authorizationCode is for Sign in with Apple only.", {
            errors: [{ path: "body.authorizationCode", message: "only with provider apple" }],
          });
        }
        const config = c.get("config");
        const sealed = await exchangeAppleCode(
          c.env,
          config.jwtSecret,
          identity.audience,
          identity.subject,
          b.authorizationCode,
        );
        if (sealed) identity.appleRefresh = { clientId: identity.audience, sealed };
      }
      return c.json(await signInWithIdentity(c.get("db"), c.get("config"), identity, ua(c), newAccounts(c)));
    },
  )
  .post(
    "/otp",
    describe({
      tag: "Auth",
      summary: "Mail a sign-in code and magic link",
      auth: "none",
      rateLimited: true,
      description:
        "Always 202, whether or not an account has the address (signing in with the code creates one); the code " +
        "and the mail happen after the response. The mail holds a 6-digit code and a link to " +
        "`<APP_LINK_BASE>/auth/otp?token=…`; both live 10 minutes and work once, and a new request replaces them. " +
        "Rate limited per address and per client address (429). `locale`: the device's language, for the mail.",
      responses: { 202: { description: "Accepted" } },
    }),
    rateLimit("AUTH_LIMITER", "otp"),
    validate("json", schemas.OtpBody),
    async (c) => {
      const { email, locale } = c.req.valid("json");
      const db = c.get("db");
      const config = c.get("config");
      await checkRate(c.env, "OTP_LIMITER", `otp:${email}`, limits.otpPeriodSec);
      const base = linkBase(c);
      c.executionCtx.waitUntil(
        (async () => {
          const { code, token } = await issueOtp(db, config, email);
          const user = await getUserByEmail(db, email);
          await createMailer(config, db).send(signInCodeMail(config, email, code, token, base, locale ?? user?.locale));
        })().catch((e: unknown) => console.error("sign-in code mail failed:", (e as Error).message)),
      );
      return c.body(null, 202);
    },
  )
  .post(
    "/otp/verify",
    describe({
      tag: "Auth",
      summary: "Sign in with a mailed code (with its address) or the magic link's token",
      auth: "none",
      rateLimited: true,
      description:
        "Creates the account if no account has the address (`created: true`; its email verified). The address " +
        "joins an existing account only when that account has verified it; an account whose email was never " +
        "verified keeps its id and data but loses the address, and the mailbox's holder gets a new account. A " +
        "wrong, used or expired code answers 401 `invalid_code`; 5 wrong codes end the code.",
      responses: {
        200: {
          description: "Account and session, or (a second factor is set up) an mfaToken",
          schema: schemas.OtpSignInResult,
        },
        401: { description: "invalid_code" },
      },
    }),
    rateLimit("AUTH_LIMITER", "otp-verify"),
    validate("json", schemas.OtpVerifyBody),
    async (c) => {
      const b = c.req.valid("json");
      const db = c.get("db");
      const config = c.get("config");
      // Per address too (guesses from many clients): each code dies after 5 wrong ones anyway.
      if ("email" in b) await checkRate(c.env, "AUTH_LIMITER", `otp-verify:${b.email}`);
      const email = await consumeOtp(db, config, b);
      const identity = { provider: EMAIL_PROVIDER, subject: email, email, emailVerified: true, name: null };
      return c.json(await signInWithIdentity(db, config, { ...identity, locale: b.locale }, ua(c), newAccounts(c)));
    },
  )
  .route("/oauth", oauthRoutes)
  .route("/passkeys", passkeyRoutes)
  .route("/mfa", mfaRoutes);
