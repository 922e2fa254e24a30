/**
 * `/v1/app-check`: a challenge, then one exchange per platform (App Attest, Play Integrity,
 * Turnstile, an admin's debug token) for an `Outpost-App-Check` token. Verification code loads on
 * first use (dynamic import), so it costs nothing at startup.
 */
import { Hono } from "hono";
import type { AppEnv } from "../../env";
import { AppError } from "../../errors";
import { b64url, fromB64url } from "../../lib/crypto";
import { describe, EmptyBody, validate } from "../../lib/validation";
import { rateLimit } from "../../middleware/rate-limit";
import { AndroidBody, AppleBody, ChallengeSchema, DebugBody, TokenSchema, WebBody } from "./schemas";
import {
  advanceCounter,
  consumeChallenge,
  createChallenge,
  findAttestedKey,
  saveAttestedKey,
  useDebugToken,
} from "./service";
import { signAppCheckToken } from "./token";
import { verifyTurnstile } from "./web";

const TAG = "App integrity";
const refused = { 401: { description: "app_check_failed: the proof or the challenge was not accepted" } };
const tokenOk = { 200: { description: "An Outpost-App-Check token (1 hour)", schema: TokenSchema }, ...refused };
const limited = rateLimit("AUTH_LIMITER", "app-check");

async function spend(c: { var: AppEnv["Variables"] }, challenge: string): Promise<void> {
  if (!(await consumeChallenge(c.var.db, challenge)))
    throw new AppError("app_check_failed", "The challenge is unknown, used or expired; get a new one.");
}

export const appCheckRoutes = new Hono<AppEnv>()
  .post(
    "/challenge",
    describe({
      tag: TAG,
      summary: "A challenge for an attestation, assertion or integrity token (single use, 5 minutes)",
      auth: "none",
      rateLimited: true,
      responses: { 201: { description: "A challenge", schema: ChallengeSchema } },
    }),
    limited,
    validate("json", EmptyBody),
    async (c) => c.json(await createChallenge(c.var.db), 201),
  )
  .post(
    "/apple",
    describe({
      tag: TAG,
      summary: "iOS App Attest: an attestation (first time) or an assertion (later) for a token",
      description:
        "`clientDataHash` is SHA-256 of the challenge (its UTF-8 text), for `attestKey` and `generateAssertion`. " +
        "`keyId`, `attestation` and `assertion` are base64.",
      auth: "none",
      rateLimited: true,
      responses: tokenOk,
    }),
    limited,
    validate("json", AppleBody),
    async (c) => {
      const b = c.req.valid("json");
      const cfg = c.var.config;
      await spend(c, b.challenge);
      const apple = await import("./apple");
      let keyId: string;
      if (b.attestation !== undefined) {
        const key = await apple.verifyAttestation(cfg, b.keyId, b.attestation, b.challenge);
        await saveAttestedKey(c.var.db, key);
        keyId = key.keyId;
      } else {
        keyId = b64url(fromB64url(b.keyId));
        const key = await findAttestedKey(c.var.db, keyId);
        if (!key) throw new AppError("app_check_failed", "App Attest: this key was never attested.");
        const counter = await apple.verifyAssertion(cfg, key, b.assertion ?? "", b.challenge);
        if (!(await advanceCounter(c.var.db, keyId, counter)))
          throw new AppError("app_check_failed", "App Attest: the counter did not grow.");
      }
      return c.json(await signAppCheckToken(cfg, "apple", keyId));
    },
  )
  .post(
    "/android",
    describe({
      tag: TAG,
      summary: "Android Play Integrity: an integrity token (nonce = the challenge) for a token",
      auth: "none",
      rateLimited: true,
      responses: tokenOk,
    }),
    limited,
    validate("json", AndroidBody),
    async (c) => {
      const b = c.req.valid("json");
      await spend(c, b.challenge);
      const { verifyIntegrityToken } = await import("./android");
      const pkg = await verifyIntegrityToken(c.var.config, b.integrityToken, b.challenge);
      return c.json(await signAppCheckToken(c.var.config, "android", pkg));
    },
  )
  .post(
    "/web",
    describe({
      tag: TAG,
      summary: "Web: a Cloudflare Turnstile token for a token",
      auth: "none",
      rateLimited: true,
      responses: tokenOk,
    }),
    limited,
    validate("json", WebBody),
    async (c) => {
      const host = await verifyTurnstile(
        c.var.config,
        c.req.valid("json").turnstileToken,
        c.req.header("cf-connecting-ip"),
      );
      return c.json(await signAppCheckToken(c.var.config, "web", host));
    },
  )
  .post(
    "/debug",
    describe({
      tag: TAG,
      summary: "A debug token made by an admin (simulators, CI) for a token",
      auth: "none",
      rateLimited: true,
      responses: tokenOk,
    }),
    limited,
    validate("json", DebugBody),
    async (c) => {
      const id = await useDebugToken(c.var.db, c.req.valid("json").debugToken);
      if (!id) throw new AppError("app_check_failed", "This debug token is unknown or revoked.");
      return c.json(await signAppCheckToken(c.var.config, "debug", `debug:${id}`));
    },
  );
