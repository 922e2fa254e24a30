/** `/v1/auth/mfa/*`: TOTP enrollment, confirmation and removal, and finishing a sign-in with a second factor. */
import { Hono } from "hono";
import type { AppEnv } from "../../env";
import { AppError } from "../../errors";
import { describe, EmptyBody, validate } from "../../lib/validation";
import { checkRate, rateLimit, rateLimitUser } from "../../middleware/rate-limit";
import {
  challengeUser,
  confirmTotp,
  disableTotp,
  enrollTotp,
  failChallenge,
  invalidCode,
  spendCode,
  takeChallenge,
} from "./mfa";
import { requireAal2IfFactor, requireUser, userOf } from "./middleware";
import * as schemas from "./schemas";
import { openSession } from "./sessions";
import { accountDisabled, getUser, toUser } from "./users";

/** Per user, the AUTH_LIMITER budget (its period in wrangler.toml). */
const perUser = (group: string) => rateLimitUser("AUTH_LIMITER", group, 60);

const MFA_REQUIRED = { description: "mfa_required: a second factor exists and this session is aal1" };

export const mfaRoutes = new Hono<AppEnv>()
  .post(
    "/totp",
    describe({
      tag: "Auth",
      summary: "Start a TOTP enrollment (authenticator app)",
      rateLimited: true,
      description:
        "Answers the shared secret (base32) and the `otpauth://` URL to show as a QR code. The factor counts " +
        "only once confirmed with a code (`POST /v1/auth/mfa/totp/confirm`); a new enrollment replaces one " +
        "still waiting. 409 `conflict` when TOTP is already confirmed (disable it first). Not for guests.",
      responses: {
        201: { description: "The secret", schema: schemas.TotpEnrollment },
        401: MFA_REQUIRED,
        409: { description: "conflict: TOTP is already set up" },
      },
    }),
    requireUser,
    perUser("mfa-totp"),
    requireAal2IfFactor,
    validate("json", EmptyBody),
    async (c) => {
      const user = await getUser(c.get("db"), userOf(c).userId);
      if (!user) throw new AppError("unauthorized", "This account no longer exists.");
      if (user.anonymous) throw new AppError("forbidden", "A guest account cannot have a second factor.");
      return c.json(await enrollTotp(c.get("db"), c.get("config"), user), 201);
    },
  )
  .post(
    "/totp/confirm",
    describe({
      tag: "Auth",
      summary: "Confirm the TOTP enrollment with a code; get the recovery codes",
      rateLimited: true,
      description:
        "From now on every sign-in asks for a second factor. The 10 recovery codes are shown this once (only " +
        "their hashes are kept); each works once, in place of a TOTP code.",
      responses: {
        200: { description: "Recovery codes", schema: schemas.RecoveryCodes },
        401: { description: "invalid_code, or mfa_required" },
        409: { description: "conflict: no enrollment is waiting" },
      },
    }),
    requireUser,
    perUser("mfa-totp"),
    requireAal2IfFactor,
    validate("json", schemas.MfaCodeBody),
    async (c) => {
      const recoveryCodes = await confirmTotp(c.get("db"), c.get("config"), userOf(c).userId, c.req.valid("json").code);
      return c.json({ recoveryCodes });
    },
  )
  .delete(
    "/totp",
    describe({
      tag: "Auth",
      summary: "Disable TOTP with a TOTP or recovery code",
      rateLimited: true,
      description: "The factor and its recovery codes are removed; sign-ins no longer ask for a second factor.",
      responses: {
        204: { description: "Disabled" },
        401: { description: "invalid_code, or mfa_required" },
        404: { description: "TOTP is not set up" },
      },
    }),
    requireUser,
    perUser("mfa-totp"),
    requireAal2IfFactor,
    validate("json", schemas.MfaCodeBody),
    async (c) => {
      await disableTotp(c.get("db"), c.get("config"), userOf(c).userId, c.req.valid("json").code);
      return c.body(null, 204);
    },
  )
  .post(
    "/verify",
    describe({
      tag: "Auth",
      summary: "Finish a sign-in with its second factor",
      auth: "none",
      rateLimited: true,
      description:
        "`mfaToken` is what the sign-in answered (`mfaRequired: true`): valid 5 minutes, once. `code` is a TOTP " +
        "code or an unused recovery code. A wrong code answers 401 `invalid_code`; 5 wrong codes end the " +
        "`mfaToken` (sign in again). The session is `aal2`. Rate limited per client address and per user.",
      responses: {
        200: { description: "Account and session", schema: schemas.AuthResult },
        401: { description: "invalid_code" },
      },
    }),
    rateLimit("AUTH_LIMITER", "mfa-verify"),
    validate("json", schemas.MfaVerifyBody),
    async (c) => {
      const { mfaToken, code } = c.req.valid("json");
      const db = c.get("db");
      const config = c.get("config");
      const userId = await challengeUser(db, mfaToken);
      // Per user too: guesses spread over many addresses and many mfaTokens share one budget.
      await checkRate(c.env, "AUTH_LIMITER", `mfa-verify-user:${userId}`);
      if (!(await spendCode(db, config, userId, code))) {
        await failChallenge(db, mfaToken);
        throw invalidCode();
      }
      if (!(await takeChallenge(db, mfaToken))) throw invalidCode();
      const user = await getUser(db, userId);
      if (!user) throw new AppError("unauthorized", "This account no longer exists.");
      if (user.disabled) throw accountDisabled();
      const s = await openSession(db, config, user, c.req.header("user-agent") ?? null, { aal: "aal2" });
      await db.batch(s.statements);
      return c.json({ user: toUser(user), session: s.tokens });
    },
  );
