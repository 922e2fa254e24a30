/**
 * Second factors, the attacker's side: every sign-in kind stops at `mfaRequired` with no session,
 * aal1 sessions are refused where aal2 is needed, and strangers, tampered tokens and other users
 * get nothing from the new routes.
 */
import { describe, expect, it } from "vitest";
import { api, expectProblem, signup, uniqueEmail } from "../../helpers/api";
import { mailTo } from "../../helpers/outbox";
import { providerIdToken, signWithWrongKey, tamperPayload } from "../../helpers/tokens";
import { aal2Session, claimsOf, loginBody, type MfaUser, mfaUser, sessionCount, totp, verifyMfa } from "./mfa-helpers";

const b64url = (b: Uint8Array) =>
  btoa(String.fromCharCode(...b))
    .replaceAll("+", "-")
    .replaceAll("/", "_")
    .replace(/=+$/, "");

/** An OAuth sign-in at the Google stand-in as `email`, up to the exchange's answer. */
async function oauthExchange(email: string) {
  const verifier = b64url(crypto.getRandomValues(new Uint8Array(32)));
  const challenge = b64url(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier))));
  const q = new URLSearchParams({ redirectUri: "https://app.example.com/cb", codeChallenge: challenge, state: "s" });
  const start = await api(`/v1/auth/oauth/google/start?${q}`);
  expect(start.status, start.text).toBe(302);
  const at = new URL(start.headers.get("location")!);
  const as = { sub: `sub-${crypto.randomUUID()}`, email, email_verified: true };
  at.searchParams.set("as", b64url(new TextEncoder().encode(JSON.stringify(as))));
  const toCallback = await fetch(at, { redirect: "manual" });
  const cb = new URL(toCallback.headers.get("location")!);
  const back = await api(cb.pathname + cb.search);
  expect(back.status, back.text).toBe(302);
  const code = new URL(back.headers.get("location")!).searchParams.get("code")!;
  return api("/v1/auth/oauth/exchange", { body: { code, codeVerifier: verifier } });
}

/** Checks an mfaRequired answer: no session, and its mfaToken finishes the sign-in to `u`. */
async function expectMfaStop(u: MfaUser, res: { status: number; text: string; body: any }, sessionsBefore: number) {
  expect(res.status, res.text).toBe(200);
  expect(res.body).toEqual({
    mfaRequired: true,
    mfaToken: expect.stringMatching(/^mfa_/),
    methods: ["totp", "recovery"],
  });
  expect(await sessionCount(u.id)).toBe(sessionsBefore);
  const done = await verifyMfa(res.body.mfaToken, u.recoveryCodes.pop()!);
  expect(done.status, done.text).toBe(200);
  expect(done.body.user.id).toBe(u.id);
}

describe("mfa: every sign-in kind stops at mfaRequired", () => {
  it("password, Google ID token, email code, magic link and OAuth exchange: no session until verify", async () => {
    const u = await mfaUser();
    let n = await sessionCount(u.id);
    await expectMfaStop(u, { status: 200, text: "", body: await loginBody(u) }, n);

    n = await sessionCount(u.id);
    const idToken = await providerIdToken("google", {
      sub: `g-${crypto.randomUUID()}`,
      aud: "web-client-id",
      email: u.email,
      email_verified: true,
      nonce: "n-1",
    });
    await expectMfaStop(u, await api("/v1/auth/idtoken", { body: { provider: "google", idToken, nonce: "n-1" } }), n);

    n = await sessionCount(u.id);
    expect((await api("/v1/auth/otp", { body: { email: u.email }, settle: true })).status).toBe(202);
    const mail = await mailTo(u.email);
    const code = /: (\d{6})\n/.exec(mail.text)![1]!;
    const token = /\/auth\/otp\?token=([A-Za-z0-9_-]+)/.exec(mail.text)![1]!;
    await expectMfaStop(u, await api("/v1/auth/otp/verify", { body: { email: u.email, code } }), n);

    n = await sessionCount(u.id);
    expect((await api("/v1/auth/otp", { body: { email: u.email }, settle: true })).status).toBe(202);
    const link = /\/auth\/otp\?token=([A-Za-z0-9_-]+)/.exec((await mailTo(u.email)).text)![1]!;
    expect(link).not.toBe(token);
    await expectMfaStop(u, await api("/v1/auth/otp/verify", { body: { token: link } }), n);

    n = await sessionCount(u.id);
    await expectMfaStop(u, await oauthExchange(u.email), n);
  });

  it("guest sign-up and sign-up never ask; a new account made by a provider has no factor", async () => {
    expect((await api("/v1/auth/anonymous", { body: {} })).body.session).toBeDefined();
    const res = await oauthExchange(uniqueEmail("mfa-new"));
    expect(res.status, res.text).toBe(200);
    expect(res.body.session.accessToken).toBeDefined();
  });
});

describe("mfa: aal2 is needed where the account's protection changes", () => {
  it("aal1 sessions get 401 mfa_required on each guarded route; aal2 sessions pass", async () => {
    const u = await mfaUser();
    const aal1 = u.accessToken;
    const guarded: [string, string, unknown][] = [
      ["POST", "/v1/auth/password", { currentPassword: u.password, newPassword: "another good password" }],
      ["POST", "/v1/auth/mfa/totp", {}],
      ["POST", "/v1/auth/mfa/totp/confirm", { code: "123456" }],
      ["DELETE", "/v1/auth/mfa/totp", { code: u.recoveryCodes[0] }],
      ["DELETE", "/v1/me", undefined],
    ];
    for (const [method, path, body] of guarded) {
      expectProblem(await api(path, { method, token: aal1, body }), 401, "mfa_required");
    }
    // Nothing changed: the recovery code is unused, the account is there.
    expect((await api("/v1/me", { token: aal1 })).status).toBe(200);

    const s = await aal2Session(u);
    expect(claimsOf(s.accessToken).aal).toBe("aal2");
    const pw = await api("/v1/auth/password", {
      token: s.accessToken,
      body: { currentPassword: u.password, newPassword: "another good password" },
    });
    expect(pw.status, pw.text).toBe(204);
    // TOTP is confirmed: enrolling again is a conflict (past the aal check), confirming has nothing waiting.
    expectProblem(await api("/v1/auth/mfa/totp", { token: s.accessToken, body: {} }), 409, "conflict");
    expectProblem(
      await api("/v1/auth/mfa/totp/confirm", { token: s.accessToken, body: { code: "123456" } }),
      409,
      "conflict",
    );
    const del = await api("/v1/auth/mfa/totp", {
      method: "DELETE",
      token: s.accessToken,
      body: { code: u.recoveryCodes[0] },
    });
    expect(del.status, del.text).toBe(204);
    // Without a factor, even an aal2 session may delete the account (and an aal1 one could).
    expect((await api("/v1/me", { method: "DELETE", token: s.accessToken })).status).toBe(204);
  });

  it("an aal2 session deletes an account that has a factor", async () => {
    const u = await mfaUser();
    const s = await aal2Session(u);
    expect((await api("/v1/me", { method: "DELETE", token: s.accessToken })).status).toBe(204);
    expect(await sessionCount(u.id)).toBe(0);
  });

  it("accounts without a factor are not asked (aal1 passes)", async () => {
    const u = await signup();
    const pw = await api("/v1/auth/password", {
      token: u.accessToken,
      body: { currentPassword: u.password, newPassword: "another good password" },
    });
    expect(pw.status).toBe(204);
  });
});

describe("mfa: strangers and forged tokens", () => {
  it("no token, a wrong-key token or a token edited to say aal2: refused on every new route", async () => {
    const u = await mfaUser();
    const forgedAal = tamperPayload(u.accessToken, { aal: "aal2" });
    const wrongKey = await signWithWrongKey({ sub: u.id, sid: "x", aal: "aal2" });
    const routes: [string, string, unknown][] = [
      ["POST", "/v1/auth/mfa/totp", {}],
      ["POST", "/v1/auth/mfa/totp/confirm", { code: "123456" }],
      ["DELETE", "/v1/auth/mfa/totp", { code: "123456" }],
    ];
    for (const [method, path, body] of routes) {
      expectProblem(await api(path, { method, body }), 401, "unauthorized");
      expectProblem(await api(path, { method, body, token: forgedAal }), 401, "unauthorized");
      expectProblem(await api(path, { method, body, token: wrongKey }), 401, "unauthorized");
    }
    expectProblem(await api("/v1/me", { method: "DELETE", token: forgedAal }), 401, "unauthorized");
    // The verify route takes no bearer token: an mfaToken is what it needs.
    expectProblem(await verifyMfa("mfa_forged", await totp(u.secret)), 401, "invalid_code");
  });

  it("one user's aal2 session cannot remove another user's factor", async () => {
    const alice = await mfaUser();
    const bob = await mfaUser();
    const s = await aal2Session(bob);
    // Alice's recovery code is checked against Bob's factors: wrong.
    expectProblem(
      await api("/v1/auth/mfa/totp", {
        method: "DELETE",
        token: s.accessToken,
        body: { code: alice.recoveryCodes[0] },
      }),
      401,
      "invalid_code",
    );
    const { mfaToken } = await loginBody(alice);
    expect((await verifyMfa(mfaToken, alice.recoveryCodes[0]!)).status).toBe(200);
  });
});
