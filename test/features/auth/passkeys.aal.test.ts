/** Passkeys and assurance levels: a passkey sign-in is aal2; with a second factor, passkey changes want aal2. */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { api, expectProblem, signup, type TestUser } from "../../helpers/api";
import { aal2Session, claimsOf, mfaUser } from "./mfa-helpers";
import { SoftAuthenticator } from "./passkey-authenticator";

async function register(token: string, auth: SoftAuthenticator) {
  const options = await api("/v1/auth/passkeys/register/options", { token, body: {} });
  if (options.status !== 200) return options;
  return api("/v1/auth/passkeys/register", { token, body: { credential: await auth.create(options.body) } });
}

async function signIn(auth: SoftAuthenticator) {
  const options = (await api("/v1/auth/passkeys/login/options", { body: {} })).body;
  return api("/v1/auth/passkeys/login", { body: { credential: await auth.get(options) } });
}

const aalOf = async (sessionToken: string) => {
  const sid = claimsOf(sessionToken).sid as string;
  return (await env.DB.prepare("SELECT aal FROM sessions WHERE id = ?").bind(sid).first<{ aal: string }>())?.aal;
};

describe("passkeys: assurance levels", () => {
  it("a passkey sign-in opens an aal2 session (token claim and stored session), kept across a refresh", async () => {
    const u: TestUser = await signup();
    const auth = new SoftAuthenticator();
    expect((await register(u.accessToken, auth)).status).toBe(201);
    const res = await signIn(auth);
    expect(res.status, res.text).toBe(200);
    expect(claimsOf(res.body.session.accessToken).aal).toBe("aal2");
    expect(await aalOf(res.body.session.accessToken)).toBe("aal2");
    const refreshed = await api("/v1/auth/refresh", { body: { refreshToken: res.body.session.refreshToken } });
    expect(claimsOf(refreshed.body.session.accessToken).aal).toBe("aal2");
    // A password sign-in of the same account stays aal1.
    const login = await api("/v1/auth/login", { body: { email: u.email, password: u.password } });
    expect(claimsOf(login.body.session.accessToken).aal).not.toBe("aal2");
  });

  it("with TOTP: an aal1 session cannot add or remove passkeys (mfa_required); an aal2 one can", async () => {
    const u = await mfaUser();
    const auth = new SoftAuthenticator();
    expectProblem(await register(u.accessToken, auth), 401, "mfa_required");
    const strong = await aal2Session(u);
    const added = await register(strong.accessToken, auth);
    expect(added.status, added.text).toBe(201);
    const path = `/v1/auth/passkeys/${added.body.id}`;
    expectProblem(await api(path, { method: "DELETE", token: u.accessToken }), 401, "mfa_required");
    // Listing and renaming do not change how the account is protected.
    expect((await api("/v1/auth/passkeys", { token: u.accessToken })).body.items).toHaveLength(1);
    expect((await api(path, { method: "PATCH", token: u.accessToken, body: { name: "Key" } })).status).toBe(200);
    expect((await api(path, { method: "DELETE", token: strong.accessToken })).status).toBe(204);
  });

  it("with TOTP: the passkey signs in directly (no mfaRequired step) and may do what needs aal2", async () => {
    const u = await mfaUser();
    const auth = new SoftAuthenticator();
    expect((await register((await aal2Session(u)).accessToken, auth)).status).toBe(201);
    const res = await signIn(auth);
    expect(res.status, res.text).toBe(200);
    expect(res.body.mfaRequired).toBeUndefined();
    expect(res.body.user.id).toBe(u.id);
    const del = await api("/v1/me", { method: "DELETE", token: res.body.session.accessToken });
    expect(del.status, del.text).toBe(204);
  });
});
