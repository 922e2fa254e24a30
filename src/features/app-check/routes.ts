/**
 * `/v1/app-check`: a challenge, then one exchange per platform (App Attest, Play Integrity,
 * Turnstile's siteverify, an admin's debug token) for an `Outpost-App-Check` token. Verification code loads on
 * first use (dynamic import), so it costs nothing at startup.
 */
import { Hono } from "hono";
import type { Config } from "../../config";
import type { AppEnv, Vars } from "../../env";
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

const turnstileRefused = (why: string): never => {
  throw new AppError("app_check_failed", `Turnstile: ${why}.`);
};

/** Verifies a Turnstile token; returns the hostname it was solved on. */
async function verifyTurnstile(cfg: Config, token: string, ip: string | undefined): Promise<string> {
  const secret = cfg.appCheck.turnstileSecret ?? turnstileRefused("this server has no TURNSTILE_SECRET");
  const form = new URLSearchParams({ secret, response: token });
  if (ip) form.set("remoteip", ip);
  let body: { success?: unknown; hostname?: unknown };
  try {
    const res = await fetch(cfg.appCheck.turnstileUrl, {
      method: "POST",
      body: form,
      signal: AbortSignal.timeout(10_000),
    });
    body = (await res.json()) as typeof body;
  } catch {
    throw new AppError("unavailable", "Turnstile could not be reached; try again.");
  }
  if (body?.success !== true) turnstileRefused("the token was not accepted");
  return typeof body.hostname === "string" ? body.hostname : "web";
}

const TAG = "App integrity";
const refused = { 401: { description: "app_check_failed" } };
const tokenOk = { 200: { description: "An Outpost-App-Check token", schema: TokenSchema }, ...refused };
const limited = rateLimit("AUTH_LIMITER", "app-check");

/**
 * Uses the challenge up once its proof verified: a proof that fails leaves it (and D1) untouched, and
 * of two requests with one challenge only one passes.
 */
async function spend(c: Vars, challenge: string): Promise<void> {
  if (!(await consumeChallenge(c.get("db"), challenge)))
    throw new AppError("app_check_failed", "The challenge is unknown, used or expired.");
}

export const appCheckRoutes = new Hono<AppEnv>()
  .post(
    "/challenge",
    describe({
      tag: TAG,
      summary: "A challenge (single use, 5 minutes)",
      auth: "none",
      rateLimited: true,
      responses: { 201: { description: "A challenge", schema: ChallengeSchema } },
    }),
    limited,
    validate("json", EmptyBody),
    async (c) => c.json(await createChallenge(c.get("db")), 201),
  )
  .post(
    "/apple",
    describe({
      tag: TAG,
      summary: "iOS App Attest: an attestation (first time) or an assertion",
      auth: "none",
      rateLimited: true,
      responses: tokenOk,
    }),
    limited,
    validate("json", AppleBody),
    async (c) => {
      const b = c.req.valid("json");
      const cfg = c.get("config");
      const apple = await import("./apple");
      let keyId: string;
      if (b.attestation !== undefined) {
        const key = await apple.verifyAttestation(cfg, b.keyId, b.attestation, b.challenge);
        await spend(c, b.challenge);
        await saveAttestedKey(c.get("db"), key);
        keyId = key.keyId;
      } else {
        keyId = b64url(fromB64url(b.keyId));
        const key = await findAttestedKey(c.get("db"), keyId);
        if (!key) throw new AppError("app_check_failed", "App Attest: this key was never attested.");
        const counter = await apple.verifyAssertion(cfg, key, b.assertion ?? "", b.challenge);
        await spend(c, b.challenge);
        if (!(await advanceCounter(c.get("db"), keyId, counter)))
          throw new AppError("app_check_failed", "App Attest: the counter did not grow.");
      }
      return c.json(await signAppCheckToken(cfg, "apple", keyId));
    },
  )
  .post(
    "/android",
    describe({
      tag: TAG,
      summary: "Android Play Integrity: an integrity token (nonce: the challenge)",
      auth: "none",
      rateLimited: true,
      responses: tokenOk,
    }),
    limited,
    validate("json", AndroidBody),
    async (c) => {
      const b = c.req.valid("json");
      const { verifyIntegrityToken } = await import("./android");
      const pkg = await verifyIntegrityToken(c.get("config"), b.integrityToken, b.challenge);
      await spend(c, b.challenge);
      return c.json(await signAppCheckToken(c.get("config"), "android", pkg));
    },
  )
  .post(
    "/web",
    describe({
      tag: TAG,
      summary: "Web: a Turnstile token",
      auth: "none",
      rateLimited: true,
      responses: tokenOk,
    }),
    limited,
    validate("json", WebBody),
    async (c) => {
      const host = await verifyTurnstile(
        c.get("config"),
        c.req.valid("json").turnstileToken,
        c.req.header("cf-connecting-ip"),
      );
      return c.json(await signAppCheckToken(c.get("config"), "web", host));
    },
  )
  .post(
    "/debug",
    describe({
      tag: TAG,
      summary: "An admin's debug token (simulators, CI)",
      auth: "none",
      rateLimited: true,
      responses: tokenOk,
    }),
    limited,
    validate("json", DebugBody),
    async (c) => {
      const id = await useDebugToken(c.get("db"), c.req.valid("json").debugToken);
      if (!id) throw new AppError("app_check_failed", "This debug token is unknown or revoked.");
      return c.json(await signAppCheckToken(c.get("config"), "debug", `debug:${id}`));
    },
  );
