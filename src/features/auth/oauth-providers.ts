/**
 * OAuth 2.0 / OpenID Connect providers: `OAUTH_PROVIDERS` and `OAUTH_REDIRECT_URIS` read once per env,
 * OpenID discovery (cached), the provider's authorization URL, and the provider's code turned into a
 * verified identity (ID token checked with jose against the cached JWKS: issuer, audience, nonce; or
 * GitHub's API: its primary verified email only).
 */
import { jwtVerify } from "jose";
import { getConfig, limits } from "../../config";
import { AppError } from "../../errors";
import { encryptText, safeEqualStr } from "../../lib/crypto";
import { APPLE_SEAL_PURPOSE, appleClientSecret } from "./apple";
import { jwks, type VerifiedIdentity } from "./idtoken";

export interface OAuthProvider {
  /** The name in the paths and in `OAUTH_PROVIDERS`; the identity kind (`google`, `apple`, `github`, or its own). */
  name: string;
  kind: "oidc" | "apple" | "github";
  issuer: string;
  clientId: string;
  clientSecret: string | null;
}

interface OAuthSettings {
  providers: Map<string, OAuthProvider>;
  redirectUris: Set<string>;
}

const DEFAULT_ISSUERS: Record<string, string> = {
  google: "https://accounts.google.com",
  apple: "https://appleid.apple.com",
};
const NAME = /^[a-z0-9][a-z0-9_-]{0,31}$/;
/** Names that are identity kinds of their own. */
const RESERVED = new Set(["email", "password"]);

const misconfigured = (why: string): never => {
  console.error(`configuration error: ${why}`);
  throw new AppError("misconfigured", "The server's OAuth settings are not valid.");
};

const cache = new WeakMap<object, OAuthSettings>();

/** The configured providers and redirect URIs (a broken OAUTH_PROVIDERS fails the OAuth routes closed). */
export function oauthSettings(env: Env): OAuthSettings {
  const hit = cache.get(env);
  if (hit) return hit;
  let raw: unknown;
  let secrets: Record<string, unknown> = {};
  try {
    raw = JSON.parse(env.OAUTH_PROVIDERS || "{}");
    if (env.OAUTH_CLIENT_SECRETS) secrets = JSON.parse(env.OAUTH_CLIENT_SECRETS) as Record<string, unknown>;
  } catch {
    misconfigured("OAUTH_PROVIDERS or OAUTH_CLIENT_SECRETS is not JSON");
  }
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) misconfigured("OAUTH_PROVIDERS must be a JSON object");
  const providers = new Map<string, OAuthProvider>();
  for (const [name, value] of Object.entries(raw as Record<string, unknown>)) {
    const p = (value ?? {}) as { issuer?: unknown; clientId?: unknown; clientSecret?: unknown };
    if (!NAME.test(name) || RESERVED.has(name)) misconfigured(`OAUTH_PROVIDERS: "${name}" is not a usable name`);
    if (typeof p.clientId !== "string" || !p.clientId) misconfigured(`OAUTH_PROVIDERS.${name}.clientId is missing`);
    const issuer = typeof p.issuer === "string" && p.issuer ? p.issuer : (DEFAULT_ISSUERS[name] ?? null);
    if (name !== "github" && !issuer) misconfigured(`OAUTH_PROVIDERS.${name}.issuer is required`);
    const secret = secrets[name] ?? p.clientSecret;
    providers.set(name, {
      name,
      kind: name === "github" ? "github" : name === "apple" ? "apple" : "oidc",
      issuer: name === "github" ? env.GITHUB_URL.replace(/\/+$/, "") : (issuer as string),
      clientId: p.clientId as string,
      clientSecret: typeof secret === "string" && secret ? secret : null,
    });
  }
  const redirectUris = new Set(
    (env.OAUTH_REDIRECT_URIS ?? "")
      .split(",")
      .map((x) => x.trim())
      .filter(Boolean),
  );
  const settings = { providers, redirectUris };
  cache.set(env, settings);
  return settings;
}

interface Discovery {
  issuer: string;
  authorization_endpoint: string;
  token_endpoint: string;
  jwks_uri: string;
  userinfo_endpoint?: string;
}

const discoveries = new Map<string, { doc: Promise<Discovery>; until: number }>();

/** The issuer's OpenID configuration, cached for an hour per isolate (a failed fetch is not kept). */
function discover(issuer: string): Promise<Discovery> {
  const hit = discoveries.get(issuer);
  if (hit && hit.until > Date.now()) return hit.doc;
  const doc = (async () => {
    const res = await fetch(`${issuer.replace(/\/+$/, "")}/.well-known/openid-configuration`, {
      headers: { accept: "application/json" },
      signal: AbortSignal.timeout(5000),
    });
    if (!res.ok) throw new Error(`discovery answered ${res.status}`);
    const d = (await res.json()) as Discovery;
    if (d.issuer !== issuer || !d.authorization_endpoint || !d.token_endpoint || !d.jwks_uri) {
      throw new Error("discovery document does not match its issuer");
    }
    return d;
  })();
  discoveries.set(issuer, { doc, until: Date.now() + 3600_000 });
  doc.catch(() => discoveries.delete(issuer));
  return doc;
}

/** Where the browser goes to sign in at the provider. */
export async function authorizationUrl(
  p: OAuthProvider,
  o: { callback: string; state: string; nonce: string; challenge: string },
): Promise<string> {
  const url = new URL(
    p.kind === "github" ? `${p.issuer}/login/oauth/authorize` : (await discover(p.issuer)).authorization_endpoint,
  );
  const q = url.searchParams;
  q.set("client_id", p.clientId);
  q.set("redirect_uri", o.callback);
  q.set("response_type", "code");
  q.set("state", o.state);
  q.set("code_challenge", o.challenge);
  q.set("code_challenge_method", "S256");
  if (p.kind === "github") q.set("scope", "read:user user:email");
  else {
    q.set("nonce", o.nonce);
    // Apple sends the name and email only with form_post (the callback takes POST).
    if (p.kind === "apple") {
      q.set("scope", "name email");
      q.set("response_mode", "form_post");
    } else q.set("scope", "openid email profile");
  }
  return url.toString();
}

const name = (x: unknown) => (typeof x === "string" && x.trim() ? x.trim().slice(0, limits.nameMax) : null);

async function getJson(url: string, init: RequestInit): Promise<Record<string, unknown>> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`${new URL(url).pathname} answered ${res.status}`);
  return (await res.json()) as Record<string, unknown>;
}

/**
 * Exchanges the provider's code (with our PKCE verifier) and returns who the provider vouches for. Any
 * failure throws (the callback answers the client with `error=access_denied`); nothing secret is logged.
 */
export async function providerIdentity(
  env: Env,
  p: OAuthProvider,
  o: { code: string; callback: string; verifier: string; nonce: string; appleName?: string | null },
): Promise<VerifiedIdentity> {
  const oidc = p.kind === "github" ? null : await discover(p.issuer);
  const secret = p.kind === "apple" ? await appleClientSecret(env, p.clientId, p.issuer) : p.clientSecret;
  const form = new URLSearchParams({
    grant_type: "authorization_code",
    code: o.code,
    redirect_uri: o.callback,
    client_id: p.clientId,
    code_verifier: o.verifier,
  });
  if (secret) form.set("client_secret", secret);
  const tokens = await getJson(oidc ? oidc.token_endpoint : `${p.issuer}/login/oauth/access_token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
    body: form,
  });
  if (!oidc) return githubIdentity(env, tokens.access_token);
  if (typeof tokens.id_token !== "string") throw new Error("no id_token in the token answer");
  const { payload } = await jwtVerify(tokens.id_token, jwks(oidc.jwks_uri), {
    issuer: p.issuer,
    audience: p.clientId,
    algorithms: ["RS256", "ES256"],
    clockTolerance: limits.idTokenClockToleranceSec,
    requiredClaims: ["sub", "exp", "iat"],
  });
  if (typeof payload.nonce !== "string" || !safeEqualStr(payload.nonce, o.nonce)) throw new Error("nonce mismatch");
  let claims: Record<string, unknown> = payload;
  if (typeof payload.email !== "string" && oidc.userinfo_endpoint && typeof tokens.access_token === "string") {
    const info = await getJson(oidc.userinfo_endpoint, {
      headers: { authorization: `Bearer ${tokens.access_token}`, accept: "application/json" },
    });
    if (info.sub === payload.sub) claims = { ...info, sub: payload.sub };
  }
  const ev = claims.email_verified;
  // Apple's refresh token is kept (sealed) to be revoked when the account is deleted.
  const appleRefresh =
    p.kind === "apple" && typeof tokens.refresh_token === "string"
      ? {
          clientId: p.clientId,
          sealed: await encryptText(getConfig(env).jwtSecret, APPLE_SEAL_PURPOSE, tokens.refresh_token),
        }
      : undefined;
  return {
    appleRefresh,
    provider: p.name,
    subject: String(payload.sub),
    email: typeof claims.email === "string" ? claims.email.toLowerCase() : null,
    emailVerified: ev === true || ev === "true",
    name: name(claims.name) ?? o.appleName ?? null,
  };
}

/** GitHub: the user's id and name, and the primary email only if GitHub has verified it. */
async function githubIdentity(env: Env, accessToken: unknown): Promise<VerifiedIdentity> {
  if (typeof accessToken !== "string") throw new Error("no access_token in the token answer");
  const api = env.GITHUB_API_URL.replace(/\/+$/, "");
  const headers = {
    authorization: `Bearer ${accessToken}`,
    accept: "application/vnd.github+json",
    "user-agent": "outpost",
  };
  const user = await getJson(`${api}/user`, { headers });
  const res = await fetch(`${api}/user/emails`, { headers, signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`/user/emails answered ${res.status}`);
  const emails = (await res.json()) as { email?: unknown; primary?: unknown; verified?: unknown }[];
  const primary = Array.isArray(emails) ? emails.find((e) => e.primary === true && e.verified === true) : undefined;
  if (typeof user.id !== "number" && typeof user.id !== "string") throw new Error("no user id from GitHub");
  return {
    provider: "github",
    subject: String(user.id),
    email: typeof primary?.email === "string" ? primary.email.toLowerCase() : null,
    emailVerified: typeof primary?.email === "string",
    name: name(user.name) ?? name(user.login),
  };
}
