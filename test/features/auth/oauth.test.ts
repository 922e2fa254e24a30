/**
 * OAuth 2.0 / OpenID Connect with PKCE (API.md v1.2), end to end against the stand-ins
 * (test/standins/oauth.ts): Google and a generic OpenID provider (discovery, JWKS, nonce), Apple
 * (form_post, ES256 client secret), GitHub (primary verified email only). The test plays the browser.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { api, expectProblem, signup, uniqueEmail } from "../../helpers/api";

const APP = "https://app.example.com/cb";
const b64url = (b: Uint8Array) =>
  btoa(String.fromCharCode(...b))
    .replaceAll("+", "-")
    .replaceAll("/", "_")
    .replace(/=+$/, "");
const newVerifier = () => b64url(crypto.getRandomValues(new Uint8Array(32)));
const challengeOf = async (v: string) =>
  b64url(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(v))));

function startPath(provider: string, q: Record<string, string>) {
  return `/v1/auth/oauth/${provider}/start?${new URLSearchParams(q)}`;
}

/** Starts a sign-in; returns the provider URL the browser is sent to. */
async function start(provider: string, verifier: string, redirectUri = APP, state = "client-state-1") {
  const res = await api(startPath(provider, { redirectUri, codeChallenge: await challengeOf(verifier), state }));
  expect(res.status, res.text).toBe(302);
  return new URL(res.headers.get("location")!);
}

/** The browser at the provider: the user `as` signs in; returns the answer of our callback. */
async function atProvider(providerUrl: URL, as: Record<string, unknown>) {
  providerUrl.searchParams.set("as", b64url(new TextEncoder().encode(JSON.stringify(as))));
  const res = await fetch(providerUrl, { redirect: "manual" });
  if (res.status === 302) {
    const cb = new URL(res.headers.get("location")!);
    expect(cb.origin).toBe("https://outpost.test");
    return api(cb.pathname + cb.search);
  }
  // Apple's form_post: the browser POSTs the fields to the callback.
  const { post, fields } = (await res.json()) as { post: string; fields: Record<string, string> };
  const cb = new URL(post);
  return api(cb.pathname, {
    method: "POST",
    raw: new URLSearchParams(fields).toString(),
    headers: { "content-type": "application/x-www-form-urlencoded" },
  });
}

/** The whole flow up to the app's redirect URI: returns its query (code, state or error). */
async function signInAt(provider: string, as: Record<string, unknown>, verifier = newVerifier()) {
  const back = await atProvider(await start(provider, verifier), as);
  expect(back.status, back.text).toBe(302);
  const to = new URL(back.headers.get("location")!);
  expect(`${to.origin}${to.pathname}`).toBe(APP);
  return { params: to.searchParams, verifier };
}

const exchange = (code: string, codeVerifier: string) =>
  api("/v1/auth/oauth/exchange", { body: { code, codeVerifier } });

/** A full sign-in: returns the exchange's answer. */
async function oauthSignIn(provider: string, as: Record<string, unknown>) {
  const { params, verifier } = await signInAt(provider, as);
  expect(params.get("state")).toBe("client-state-1");
  expect(params.get("error")).toBeNull();
  const res = await exchange(params.get("code")!, verifier);
  expect(res.status, res.text).toBe(200);
  return res.body as { user: { id: string; email: string | null; emailVerified: boolean; name: string | null } };
}

const sub = () => `sub-${crypto.randomUUID()}`;

describe("oauth: each kind of provider, end to end", () => {
  it("Google (OpenID): a new account with the verified email; the same Google user signs in again to it", async () => {
    const email = uniqueEmail("g-web");
    const who = { sub: sub(), email, email_verified: true, name: "Grace" };
    const first = await oauthSignIn("google", who);
    expect(first.user).toMatchObject({ email, emailVerified: true, name: "Grace" });
    const again = await oauthSignIn("google", who);
    expect(again.user.id).toBe(first.user.id);
    // The provider saw our PKCE and nonce, and the secret from OAUTH_PROVIDERS.
    const token = await fetch(`${env.STANDIN_URL}/_requests?prefix=/oidc/issuer/google/token`).then((r) => r.json());
    const last = new URLSearchParams((token as { body: string }[]).at(-1)!.body);
    expect(last.get("code_verifier")).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(last.get("client_secret")).toBe("secret-for-google-web");
  });

  it("a generic OpenID provider by issuer (secret from OAUTH_CLIENT_SECRETS; email from userinfo)", async () => {
    const email = uniqueEmail("corp");
    const res = await oauthSignIn("corp", { sub: sub(), email, email_verified: true, emailOnlyInUserinfo: true });
    expect(res.user).toMatchObject({ email, emailVerified: true });
    const rows = await env.DB.prepare("SELECT provider FROM identities WHERE user_id = ?").bind(res.user.id).all();
    expect(rows.results).toEqual([{ provider: "corp" }]);
  });

  it("Apple (form_post, ES256 client secret): the name Apple sends once is kept", async () => {
    const email = uniqueEmail("apple-web");
    const res = await oauthSignIn("apple", { sub: sub(), email, email_verified: "true", name: "Tim" });
    expect(res.user).toMatchObject({ email, emailVerified: true, name: "Tim Appleseed" });
    // Apple's refresh token is kept sealed, for revocation when the account is deleted.
    const row = await env.DB.prepare("SELECT client_id FROM apple_tokens WHERE user_id = ?").bind(res.user.id).first();
    expect(row?.client_id).toBe("com.example.outpost.web");
  });

  it("GitHub: the primary verified email only", async () => {
    const email = uniqueEmail("gh");
    const res = await oauthSignIn("github", {
      id: Math.floor(Math.random() * 1e9),
      login: "octo",
      emails: [
        { email: uniqueEmail("gh-other"), primary: false, verified: true },
        { email, primary: true, verified: true },
      ],
    });
    expect(res.user).toMatchObject({ email, emailVerified: true, name: "octo" });
  });

  it("GitHub: a primary email GitHub has not verified is not used (nor another verified one)", async () => {
    const res = await oauthSignIn("github", {
      id: Math.floor(Math.random() * 1e9),
      login: "octo",
      emails: [
        { email: uniqueEmail("gh-unverified"), primary: true, verified: false },
        { email: uniqueEmail("gh-secondary"), primary: false, verified: true },
      ],
    });
    expect(res.user).toMatchObject({ email: null, emailVerified: false });
  });
});

describe("oauth: linking (v1.1 rules)", () => {
  it("a verified provider email joins the account that verified it", async () => {
    const u = await signup();
    await env.DB.prepare("UPDATE users SET email_verified = 1 WHERE id = ?").bind(u.id).run();
    const res = await oauthSignIn("corp", { sub: sub(), email: u.email, email_verified: true });
    expect(res.user.id).toBe(u.id);
  });

  it("an unverified provider email is neither matched nor stored", async () => {
    const u = await signup();
    await env.DB.prepare("UPDATE users SET email_verified = 1 WHERE id = ?").bind(u.id).run();
    const res = await oauthSignIn("corp", { sub: sub(), email: u.email, email_verified: false });
    expect(res.user.id).not.toBe(u.id);
    expect(res.user).toMatchObject({ email: null, emailVerified: false });
  });

  it("an account that never verified the email loses it; the provider's user gets a new account", async () => {
    const email = uniqueEmail("victim");
    const attacker = await signup({ email, password: "attacker password" });
    const res = await oauthSignIn("google", { sub: sub(), email, email_verified: true });
    expect(res.user.id).not.toBe(attacker.id);
    expect((await api("/v1/me", { token: attacker.accessToken })).body).toMatchObject({ id: attacker.id, email: null });
  });
});

describe("oauth: refusals", () => {
  it("redirect URIs match the allowlist exactly (prefix and path tricks refused)", async () => {
    const challenge = await challengeOf(newVerifier());
    for (const redirectUri of [
      "https://app.example.com.evil.test",
      "https://app.example.com.evil.test/cb",
      "https://app.example.com/cb/../x",
      "https://app.example.com/cb/",
      "https://app.example.com/cb?next=https://evil.test",
      "https://app.example.com/cb#x",
      "https://APP.example.com/cb",
      "http://app.example.com/cb",
      "https://app.example.com/c",
      "https://user@app.example.com/cb",
      "myapp://auth/callback/../../evil",
    ]) {
      const res = await api(startPath("google", { redirectUri, codeChallenge: challenge, state: "s" }));
      expectProblem(res, 400, "validation_failed");
    }
    // The custom-scheme entry of the list works.
    const ok = await api(
      startPath("google", { redirectUri: "myapp://auth/callback", codeChallenge: challenge, state: "s" }),
    );
    expect(ok.status, ok.text).toBe(302);
  });

  it("PKCE is S256 only and required; unknown providers are 404", async () => {
    const codeChallenge = await challengeOf(newVerifier());
    const base = { redirectUri: APP, state: "s" };
    expectProblem(await api(startPath("google", base)), 400, "validation_failed");
    expectProblem(
      await api(startPath("google", { ...base, codeChallenge, codeChallengeMethod: "plain" })),
      400,
      "validation_failed",
    );
    expectProblem(await api(startPath("google", { ...base, codeChallenge: "short" })), 400, "validation_failed");
    expectProblem(await api(startPath("nobody", { ...base, codeChallenge })), 404, "not_found");
  });

  it("a wrong, used or another provider's state → 400 invalid_token; nothing is issued", async () => {
    expectProblem(await api("/v1/auth/oauth/google/callback?code=x&state=made-up"), 400, "invalid_token");
    expectProblem(await api("/v1/auth/oauth/google/callback?code=x"), 400, "invalid_token");
    // A state started for Google, brought to the generic provider's callback.
    const url = await start("google", newVerifier());
    const state = url.searchParams.get("state")!;
    expectProblem(await api(`/v1/auth/oauth/corp/callback?code=x&state=${state}`), 400, "invalid_token");
    // Used: the first look took it.
    expectProblem(await api(`/v1/auth/oauth/google/callback?code=x&state=${state}`), 400, "invalid_token");
  });

  it("a wrong verifier → 401 invalid_code, and the code is gone after it", async () => {
    const { params, verifier } = await signInAt("google", { sub: sub(), email: uniqueEmail(), email_verified: true });
    expectProblem(await exchange(params.get("code")!, newVerifier()), 401, "invalid_code");
    expectProblem(await exchange(params.get("code")!, verifier), 401, "invalid_code");
  });

  it("a code works once, and only for 60 seconds", async () => {
    const { params, verifier } = await signInAt("corp", { sub: sub(), email: uniqueEmail(), email_verified: true });
    expect((await exchange(params.get("code")!, verifier)).status).toBe(200);
    expectProblem(await exchange(params.get("code")!, verifier), 401, "invalid_code");
    const late = await signInAt("corp", { sub: sub(), email: uniqueEmail(), email_verified: true });
    const past = new Date(Date.now() - 1000).toISOString();
    await env.DB.prepare("UPDATE oauth_codes SET expires_at = ?").bind(past).run();
    expectProblem(await exchange(late.params.get("code")!, late.verifier), 401, "invalid_code");
  });

  it("the user refuses at the provider → back to the app with error=access_denied and its state", async () => {
    const { params } = await signInAt("google", { deny: true });
    expect(params.get("error")).toBe("access_denied");
    expect(params.get("state")).toBe("client-state-1");
    expect(params.get("code")).toBeNull();
  });

  it("an ID token with another nonce, audience or issuer is refused (error=access_denied)", async () => {
    for (const bad of [{ nonce: "replayed-nonce" }, { aud: "another-client" }, { iss: "https://evil.test" }]) {
      const { params } = await signInAt("google", { sub: sub(), email: uniqueEmail(), email_verified: true, ...bad });
      expect(params.get("error"), JSON.stringify(bad)).toBe("access_denied");
      expect(params.get("code")).toBeNull();
    }
  });

  it("malformed exchanges → 400 validation_failed", async () => {
    expectProblem(await api("/v1/auth/oauth/exchange", { body: { code: "x" } }), 400, "validation_failed");
    expectProblem(await exchange("x", "too-short"), 400, "validation_failed");
    expectProblem(
      await api("/v1/auth/oauth/exchange", { body: { code: "x", codeVerifier: newVerifier(), extra: 1 } }),
      400,
      "validation_failed",
    );
  });
});
