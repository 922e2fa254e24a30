/**
 * `/v1/auth/oauth/*`: OAuth 2.0 / OpenID Connect sign-in with PKCE (S256) for web apps and in-app
 * browsers: start (→ the provider), callback (→ the app's redirect URI with a 60-second code), exchange.
 */
import { type Context, Hono } from "hono";
import * as v from "valibot";
import type { AppEnv } from "../../env";
import { AppError } from "../../errors";
import { describe, validate } from "../../lib/validation";
import { rateLimit } from "../../middleware/rate-limit";
import { signInWithIdentity } from "./identities";
import { newAccounts } from "./new-accounts";
import { beginFlow, issueExchangeCode, redeemExchangeCode, takeFlow } from "./oauth";
import { authorizationUrl, type OAuthProvider, oauthSettings, providerIdentity } from "./oauth-providers";
import { SignInResult } from "./schemas";

const ProviderParam = v.strictObject({
  provider: v.pipe(v.string(), v.regex(/^[a-z0-9][a-z0-9_-]{0,31}$/, "must be a configured provider's name")),
});
const StartQuery = v.strictObject({
  redirectUri: v.pipe(v.string(), v.minLength(1), v.maxLength(2048)),
  codeChallenge: v.pipe(
    v.string(),
    v.regex(/^[A-Za-z0-9_-]{43}$/, "must be base64url(SHA-256(code verifier)), 43 characters"),
  ),
  codeChallengeMethod: v.optional(v.literal("S256")),
  state: v.pipe(v.string(), v.minLength(1), v.maxLength(512)),
});
const Short = v.optional(v.pipe(v.string(), v.maxLength(4096)));
/** What a provider sends back (query, or Apple's form_post body); other fields are ignored. */
const CallbackFields = v.object({ code: Short, state: Short, error: Short, user: Short });
const ExchangeBody = v.strictObject({
  code: v.pipe(v.string(), v.minLength(1), v.maxLength(512)),
  codeVerifier: v.pipe(v.string(), v.regex(/^[A-Za-z0-9._~-]{43,128}$/, "must be an RFC 7636 code verifier")),
});

function providerOf(c: Context<AppEnv>, name: string): OAuthProvider {
  const p = oauthSettings(c.env).providers.get(name);
  if (!p) throw new AppError("not_found", "No such sign-in provider on this server.");
  return p;
}

/** This server's callback URL for `provider` (registered at the provider). */
const callbackUrl = (c: Context<AppEnv>, provider: string) =>
  `${c.get("config").publicUrl ?? new URL(c.req.url).origin}/v1/auth/oauth/${provider}/callback`;

/** The app's redirect URI with `params` added (its own query kept). */
function back(redirectUri: string, params: Record<string, string>) {
  const url = new URL(redirectUri);
  for (const [k, val] of Object.entries(params)) url.searchParams.set(k, val);
  return url.toString();
}

/** Apple's `user` field (first sign-in, form_post): the name it shows only once. */
function appleName(user: string | undefined): string | null {
  if (!user) return null;
  try {
    const n = (JSON.parse(user) as { name?: { firstName?: unknown; lastName?: unknown } }).name;
    const full = [n?.firstName, n?.lastName].filter((x) => typeof x === "string" && x).join(" ");
    return full ? full.slice(0, 100) : null;
  } catch {
    return null;
  }
}

async function callback(c: Context<AppEnv>, provider: string, f: v.InferOutput<typeof CallbackFields>) {
  const p = providerOf(c, provider);
  const flow = f.state ? await takeFlow(c.get("db"), provider, f.state) : undefined;
  if (!flow) throw new AppError("invalid_token", "This sign-in is unknown, used or expired; start again.");
  if (f.error || !f.code)
    return c.redirect(back(flow.redirectUri, { error: "access_denied", state: flow.clientState }));
  try {
    const identity = await providerIdentity(c.env, p, {
      code: f.code,
      callback: callbackUrl(c, provider),
      verifier: flow.providerVerifier,
      nonce: flow.nonce,
      appleName: p.kind === "apple" ? appleName(f.user) : null,
    });
    const code = await issueExchangeCode(c.get("db"), identity, flow.codeChallenge);
    return c.redirect(back(flow.redirectUri, { code, state: flow.clientState }));
  } catch (e) {
    if (e instanceof AppError && e.status >= 500) throw e;
    // Never the provider's answer or tokens: only what went wrong.
    console.warn(`oauth: ${provider} sign-in refused: ${(e as Error).name}: ${(e as Error).message}`);
    return c.redirect(back(flow.redirectUri, { error: "access_denied", state: flow.clientState }));
  }
}

const callbackDoc = (method: string) =>
  describe({
    tag: "Auth",
    summary: `Where the provider returns (${method}; called by the browser, not by apps)`,
    auth: "none",
    rateLimited: true,
    description:
      "Redirects to the `redirectUri` given at start with `?code=&state=` (the code works once, for 60 " +
      "seconds, with the PKCE verifier), or `?error=access_denied&state=` when the provider refused. An " +
      "unknown, used or expired `state` answers 400 `invalid_token`.",
    responses: { 302: { description: "Back to the app" }, 400: { description: "invalid_token" } },
  });

export const oauthRoutes = new Hono<AppEnv>()
  .get(
    "/:provider/start",
    describe({
      tag: "Auth",
      summary: "Start an OAuth / OpenID sign-in (redirects to the provider)",
      auth: "none",
      rateLimited: true,
      description:
        "PKCE with S256 only: `codeChallenge` is base64url(SHA-256(codeVerifier)). `redirectUri` must be one " +
        "of `OAUTH_REDIRECT_URIS` exactly (else 400 `validation_failed`); `state` comes back unchanged. " +
        "Unknown providers answer 404.",
      responses: {
        302: { description: "To the provider's sign-in page" },
        400: { description: "validation_failed: the redirect URI is not allowed" },
        404: { description: "No such provider" },
      },
    }),
    rateLimit("AUTH_LIMITER", "oauth-start"),
    validate("param", ProviderParam),
    validate("query", StartQuery),
    async (c) => {
      const { provider } = c.req.valid("param");
      const q = c.req.valid("query");
      const p = providerOf(c, provider);
      if (!oauthSettings(c.env).redirectUris.has(q.redirectUri)) {
        throw new AppError("validation_failed", "This redirect URI is not allowed.", {
          errors: [{ path: "query.redirectUri", message: "not in OAUTH_REDIRECT_URIS" }],
        });
      }
      const flow = await beginFlow(c.get("db"), {
        provider,
        redirectUri: q.redirectUri,
        codeChallenge: q.codeChallenge,
        clientState: q.state,
      });
      return c.redirect(await authorizationUrl(p, { ...flow, callback: callbackUrl(c, provider) }));
    },
  )
  .get(
    "/:provider/callback",
    callbackDoc("GET"),
    rateLimit("AUTH_LIMITER", "oauth-callback"),
    validate("param", ProviderParam),
    validate("query", CallbackFields),
    (c) => callback(c, c.req.valid("param").provider, c.req.valid("query")),
  )
  .post(
    "/:provider/callback",
    callbackDoc("POST, Apple's form_post"),
    rateLimit("AUTH_LIMITER", "oauth-callback"),
    validate("param", ProviderParam),
    validate("form", CallbackFields),
    (c) => callback(c, c.req.valid("param").provider, c.req.valid("form")),
  )
  .post(
    "/exchange",
    describe({
      tag: "Auth",
      summary: "Exchange the callback's code and the PKCE verifier for a session",
      auth: "none",
      rateLimited: true,
      description:
        "The code works once, within 60 seconds, with the verifier whose S256 challenge started the sign-in " +
        "(else 401 `invalid_code`; the code is gone either way). A provider email joins an existing account " +
        "only when both the provider and that account have verified it (v1.1 linking rules).",
      responses: {
        200: { description: "Account and session, or (a second factor is set up) an mfaToken", schema: SignInResult },
        401: { description: "invalid_code" },
      },
    }),
    rateLimit("AUTH_LIMITER", "oauth-exchange"),
    validate("json", ExchangeBody),
    async (c) => {
      const { code, codeVerifier } = c.req.valid("json");
      const identity = await redeemExchangeCode(c.get("db"), code, codeVerifier);
      const ua = c.req.header("user-agent") ?? null;
      const r = await signInWithIdentity(c.get("db"), c.get("config"), identity, ua, newAccounts(c));
      return c.json("mfaRequired" in r ? r : { user: r.user, session: r.session });
    },
  );
