/** `/v1/auth/passkeys/*`: registering passkeys, signing in with one, and managing the caller's passkeys. */
import { Hono } from "hono";
import type { AppEnv } from "../../env";
import { AppError } from "../../errors";
import { describe, EmptyBody, IdParam, validate } from "../../lib/validation";
import { idempotency } from "../../middleware/idempotency";
import { rateLimit } from "../../middleware/rate-limit";
import { requireAal2IfFactor, requireUser, userOf } from "./middleware";
import * as schemas from "./passkey-schemas";
import {
  listPasskeys,
  registerPasskey,
  registrationOptions,
  removePasskeyStatement,
  renamePasskey,
  signInOptions,
  signInWithPasskey,
} from "./passkeys";

const tag = "Passkeys";
const MFA_REQUIRED = { description: "mfa_required: the account has a second factor and this session is aal1" };
const ua = (c: { req: { header(n: string): string | undefined } }) => c.req.header("user-agent") ?? null;

export const passkeyRoutes = new Hono<AppEnv>()
  .post(
    "/register/options",
    describe({
      tag,
      summary: "Creation options for a new passkey of the caller",
      description:
        "Hand them to `navigator.credentials.create({ publicKey })` (binary fields are base64url) or to " +
        "react-native-passkey. The challenge works once, for 5 minutes. `excludeCredentials` lists the caller's " +
        "passkeys, so an authenticator that already holds one says so.",
      rateLimited: true,
      responses: {
        200: { description: "PublicKeyCredentialCreationOptions", schema: schemas.CreationOptions },
        401: MFA_REQUIRED,
      },
    }),
    requireUser,
    requireAal2IfFactor,
    rateLimit("AUTH_LIMITER", "passkey-register"),
    validate("json", EmptyBody),
    async (c) => c.json(await registrationOptions(c.get("db"), c.get("config"), userOf(c).userId)),
  )
  .post(
    "/register",
    describe({
      tag,
      summary: "Register a passkey for the caller",
      description:
        "`credential`: the registration `PublicKeyCredential` in its JSON form. User verification is required; " +
        "attestation `none` (or packed self attestation). A credential that fails a check → 401 `passkey_failed`.",
      rateLimited: true,
      responses: {
        201: { description: "The passkey", schema: schemas.PasskeySchema },
        409: { description: "conflict: already registered, or the account holds the most passkeys allowed" },
        401: { description: "passkey_failed; mfa_required: the account has a second factor and this session is aal1" },
      },
    }),
    requireUser,
    requireAal2IfFactor,
    idempotency,
    rateLimit("AUTH_LIMITER", "passkey-register"),
    validate("json", schemas.RegisterBody),
    async (c) =>
      c.json(await registerPasskey(c.get("db"), c.get("config"), userOf(c).userId, c.req.valid("json")), 201),
  )
  .post(
    "/login/options",
    describe({
      tag,
      summary: "Request options for signing in with a passkey",
      description:
        "For `navigator.credentials.get({ publicKey })`: discoverable credentials (`allowCredentials` is empty: " +
        "the device offers the passkeys it holds for this relying party). The challenge works once, for 5 minutes.",
      auth: "none",
      rateLimited: true,
      responses: { 200: { description: "PublicKeyCredentialRequestOptions", schema: schemas.RequestOptions } },
    }),
    rateLimit("AUTH_LIMITER", "passkey-login"),
    validate("json", EmptyBody),
    async (c) => c.json(await signInOptions(c.get("db"), c.get("config"))),
  )
  .post(
    "/login",
    describe({
      tag,
      summary: "Sign in with a passkey",
      description:
        "`credential`: the assertion `PublicKeyCredential` in its JSON form, with its `userHandle`. The session " +
        "is at assurance level `aal2` (a passkey is possession and user verification at once). A bad assertion " +
        "→ 401 `passkey_failed`; a disabled account → 403 `account_disabled`.",
      auth: "none",
      rateLimited: true,
      responses: {
        200: { description: "Account and session", schema: schemas.PasskeyAuthResult },
        401: { description: "passkey_failed" },
        403: { description: "account_disabled" },
      },
    }),
    rateLimit("AUTH_LIMITER", "passkey-login"),
    validate("json", schemas.SignInBody),
    async (c) => c.json(await signInWithPasskey(c.get("db"), c.get("config"), c.req.valid("json").credential, ua(c))),
  )
  .get(
    "/",
    describe({
      tag,
      summary: "The caller's passkeys (no key material)",
      responses: { 200: { description: "Passkeys, oldest first", schema: schemas.PasskeyList } },
    }),
    requireUser,
    async (c) => c.json({ items: await listPasskeys(c.get("db"), userOf(c).userId), nextCursor: null }),
  )
  .patch(
    "/:id",
    describe({
      tag,
      summary: "Rename one of the caller's passkeys",
      responses: {
        200: { description: "The passkey", schema: schemas.PasskeySchema },
        404: { description: "not_found" },
      },
    }),
    requireUser,
    validate("param", IdParam),
    validate("json", schemas.RenameBody),
    async (c) => {
      const renamed = await renamePasskey(
        c.get("db"),
        userOf(c).userId,
        c.req.valid("param").id,
        c.req.valid("json").name,
      );
      if (!renamed) throw new AppError("not_found", "No such passkey.");
      return c.json(renamed);
    },
  )
  .delete(
    "/:id",
    describe({
      tag,
      summary: "Remove one of the caller's passkeys",
      responses: { 204: { description: "Removed" }, 404: { description: "not_found" }, 401: MFA_REQUIRED },
    }),
    requireUser,
    requireAal2IfFactor,
    validate("param", IdParam),
    async (c) => {
      const gone = await removePasskeyStatement(c.get("db"), userOf(c).userId, c.req.valid("param").id);
      if (gone.length === 0) throw new AppError("not_found", "No such passkey.");
      return c.body(null, 204);
    },
  );
