/** Passkeys: registering, signing in (discoverable), listing, renaming, removing; every refusal of a bad credential. */
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { api, expectProblem, serviceKey, signup, type TestUser } from "../../helpers/api";
import { SoftAuthenticator, type Tweaks } from "./passkey-authenticator";

const ANDROID_ORIGIN = "android:apk-key-hash:PASSKEYTESTPASSKEYTESTPASSKEYTESTPASSKEYTES";

async function creationOptions(u: TestUser) {
  const res = await api("/v1/auth/passkeys/register/options", { token: u.accessToken, body: {} });
  expect(res.status, res.text).toBe(200);
  return res.body;
}

async function register(u: TestUser, auth: SoftAuthenticator, t: Tweaks & { alg?: -7 | -257 } = {}, name?: string) {
  const credential = await auth.create(await creationOptions(u), t);
  return api("/v1/auth/passkeys/register", {
    token: u.accessToken,
    body: { credential, ...(name ? { name } : {}) },
  });
}

async function requestOptions() {
  const res = await api("/v1/auth/passkeys/login/options", { body: {} });
  expect(res.status, res.text).toBe(200);
  return res.body;
}

async function signIn(auth: SoftAuthenticator, t: Tweaks = {}, which?: number) {
  return api("/v1/auth/passkeys/login", { body: { credential: await auth.get(await requestOptions(), t, which) } });
}

/** A user with one registered passkey. */
async function withPasskey(auth = new SoftAuthenticator()) {
  const u = await signup({ name: "Pat" });
  const res = await register(u, auth, {}, "Pat's phone");
  expect(res.status, res.text).toBe(201);
  return { u, auth, passkeyId: res.body.id as string };
}

afterEach(() => {
  vi.useRealTimers();
});

describe("passkeys: the happy path", () => {
  it("creation options: base64url challenge, the relying party, the user handle, resident key and UV required", async () => {
    const u = await signup({ name: "Opal" });
    const o = await creationOptions(u);
    expect(o.challenge).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(o.rp).toEqual({ id: "outpost.test", name: env.APP_NAME });
    expect(o.user.id).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(
      new TextDecoder().decode(
        Uint8Array.from(atob(o.user.id.replaceAll("-", "+").replaceAll("_", "/")), (c) => c.charCodeAt(0)),
      ),
    ).toBe(u.id);
    expect(o.user.name).toBe(u.email);
    expect(o.user.displayName).toBe("Opal");
    expect(o.pubKeyCredParams.map((p: { alg: number }) => p.alg)).toEqual([-7, -257]);
    expect(o.authenticatorSelection).toEqual({
      residentKey: "required",
      requireResidentKey: true,
      userVerification: "required",
    });
    expect(o.attestation).toBe("none");
    expect(o.excludeCredentials).toEqual([]);
  });

  it("registers an ES256 passkey, lists it without key material, and excludes it from the next options", async () => {
    const { u, auth, passkeyId } = await withPasskey();
    const list = await api("/v1/auth/passkeys", { token: u.accessToken });
    expect(list.status).toBe(200);
    expect(list.body.nextCursor).toBeNull();
    expect(list.body.items).toEqual([
      { id: passkeyId, name: "Pat's phone", createdAt: expect.any(String), lastUsedAt: null },
    ]);
    const o = await creationOptions(u);
    expect(o.excludeCredentials).toEqual([
      {
        type: "public-key",
        id:
          auth.credentials[0] &&
          btoa(String.fromCharCode(...auth.credentials[0].id))
            .replaceAll("+", "-")
            .replaceAll("/", "_")
            .replace(/=+$/, ""),
        transports: ["internal", "hybrid"],
      },
    ]);
  });

  it("signs in with a discoverable credential: the user and a working session; last used is recorded", async () => {
    const { u, auth, passkeyId } = await withPasskey();
    const o = await requestOptions();
    expect(o).toMatchObject({ rpId: "outpost.test", userVerification: "required", allowCredentials: [] });
    const res = await api("/v1/auth/passkeys/login", { body: { credential: await auth.get(o) } });
    expect(res.status, res.text).toBe(200);
    expect(res.body.user.id).toBe(u.id);
    expect(res.body.session.tokenType).toBe("Bearer");
    const me = await api("/v1/me", { token: res.body.session.accessToken });
    expect(me.status).toBe(200);
    expect(me.body.id).toBe(u.id);
    const refreshed = await api("/v1/auth/refresh", { body: { refreshToken: res.body.session.refreshToken } });
    expect(refreshed.status).toBe(200);
    const list = await api("/v1/auth/passkeys", { token: u.accessToken });
    expect(list.body.items[0]).toMatchObject({ id: passkeyId, lastUsedAt: expect.any(String) });
    // Again, with a growing counter.
    expect((await signIn(auth)).status).toBe(200);
  });

  it("a counterless authenticator (synced passkeys report 0 every time) signs in again and again", async () => {
    const { auth } = await withPasskey(new SoftAuthenticator("https://outpost.test", false));
    expect((await signIn(auth)).status).toBe(200);
    expect((await signIn(auth)).status).toBe(200);
  });

  it("RS256 with packed self attestation registers and signs in", async () => {
    const u = await signup();
    const auth = new SoftAuthenticator();
    const res = await register(u, auth, { alg: -257, fmt: "packed" });
    expect(res.status, res.text).toBe(201);
    expect(res.body.name).toBe("Passkey");
    const login = await signIn(auth);
    expect(login.status, login.text).toBe(200);
    expect(login.body.user.id).toBe(u.id);
  });

  it("ES256 packed self attestation is checked: a bad statement signature is refused", async () => {
    const u = await signup();
    const ok = await register(u, new SoftAuthenticator(), { fmt: "packed" });
    expect(ok.status, ok.text).toBe(201);
    // fido-u2f is not a format this relying party accepts.
    expectProblem(await register(u, new SoftAuthenticator(), { fmt: "fido-u2f" }), 401, "passkey_failed");
  });

  it("an Android app's apk-key-hash origin is allowed", async () => {
    const { u } = await withPasskey();
    const android = new SoftAuthenticator(ANDROID_ORIGIN);
    expect((await register(u, android)).status).toBe(201);
    const login = await signIn(android);
    expect(login.status, login.text).toBe(200);
    expect(login.body.user.id).toBe(u.id);
  });

  it("several passkeys per user, renamed and removed; a removed passkey no longer signs in", async () => {
    const { u, auth, passkeyId } = await withPasskey();
    const second = await register(u, auth, {}, "Laptop");
    expect(second.status).toBe(201);
    const renamed = await api(`/v1/auth/passkeys/${passkeyId}`, {
      method: "PATCH",
      token: u.accessToken,
      body: { name: "Old phone" },
    });
    expect(renamed.status).toBe(200);
    expect(renamed.body.name).toBe("Old phone");
    const names = (await api("/v1/auth/passkeys", { token: u.accessToken })).body.items.map(
      (p: { name: string }) => p.name,
    );
    expect(names).toEqual(["Old phone", "Laptop"]);
    const del = await api(`/v1/auth/passkeys/${passkeyId}`, { method: "DELETE", token: u.accessToken });
    expect(del.status).toBe(204);
    expectProblem(
      await api(`/v1/auth/passkeys/${passkeyId}`, { method: "DELETE", token: u.accessToken }),
      404,
      "not_found",
    );
    expectProblem(await signIn(auth, {}, 0), 401, "passkey_failed");
    expect((await signIn(auth, {}, 1)).status).toBe(200);
  });

  it("deleting the account deletes its passkeys in the same batch", async () => {
    const { u, auth } = await withPasskey();
    const del = await api("/v1/me", { method: "DELETE", token: u.accessToken });
    expect(del.status).toBe(204);
    const left = await env.DB.prepare("SELECT count(*) AS n FROM passkeys WHERE user_id = ?")
      .bind(u.id)
      .first<{ n: number }>();
    expect(left?.n).toBe(0);
    expectProblem(await signIn(auth), 401, "passkey_failed");
  });
});

describe("passkeys: bad credentials are refused with passkey_failed", () => {
  it("a registration from an origin not configured", async () => {
    const u = await signup();
    expectProblem(await register(u, new SoftAuthenticator("https://evil.example")), 401, "passkey_failed");
    expectProblem(
      await register(u, new SoftAuthenticator("android:apk-key-hash:OTHERAPPOTHERAPPOTHERAPPOTHERAPPOTHERAPPOTH")),
      401,
      "passkey_failed",
    );
    expect((await api("/v1/auth/passkeys", { token: u.accessToken })).body.items).toEqual([]);
  });

  it("a sign-in from an origin not configured", async () => {
    const { auth } = await withPasskey();
    expectProblem(await signIn(auth, { origin: "https://evil.example" }), 401, "passkey_failed");
  });

  it("credentials made for another relying party id", async () => {
    const u = await signup();
    expectProblem(await register(u, new SoftAuthenticator(), { rpId: "evil.example" }), 401, "passkey_failed");
    const { auth } = await withPasskey();
    expectProblem(await signIn(auth, { rpId: "evil.example" }), 401, "passkey_failed");
  });

  it("a challenge the server never issued, and the wrong ceremony type", async () => {
    const { u, auth } = await withPasskey();
    expectProblem(
      await signIn(auth, { challenge: "bm90LWEtY2hhbGxlbmdlLWZyb20tdGhlLXNlcnZlcg" }),
      401,
      "passkey_failed",
    );
    expectProblem(
      await register(u, auth, { challenge: "bm90LWEtY2hhbGxlbmdlLWZyb20tdGhlLXNlcnZlcg" }),
      401,
      "passkey_failed",
    );
    expectProblem(await signIn(auth, { type: "webauthn.create" }), 401, "passkey_failed");
  });

  it("a challenge works once: a replayed assertion is refused", async () => {
    const { auth } = await withPasskey();
    const credential = await auth.get(await requestOptions());
    expect((await api("/v1/auth/passkeys/login", { body: { credential } })).status).toBe(200);
    expectProblem(await api("/v1/auth/passkeys/login", { body: { credential } }), 401, "passkey_failed");
  });

  it("a registration challenge does not sign in, and a sign-in challenge does not register", async () => {
    const { u, auth } = await withPasskey();
    const regOptions = await creationOptions(u);
    const asLogin = await auth.get({ challenge: regOptions.challenge, rpId: "outpost.test" });
    expectProblem(await api("/v1/auth/passkeys/login", { body: { credential: asLogin } }), 401, "passkey_failed");
    const loginOptions = await requestOptions();
    const asRegistration = await auth.create({ ...regOptions, challenge: loginOptions.challenge });
    expectProblem(
      await api("/v1/auth/passkeys/register", { token: u.accessToken, body: { credential: asRegistration } }),
      401,
      "passkey_failed",
    );
  });

  it("a challenge expires after 5 minutes", async () => {
    const { auth } = await withPasskey();
    const o = await requestOptions();
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.now() + 5 * 60 * 1000 + 1000);
    expectProblem(
      await api("/v1/auth/passkeys/login", { body: { credential: await auth.get(o) } }),
      401,
      "passkey_failed",
    );
  });

  it("a counter that goes back, or stays the same when non-zero (a cloned authenticator)", async () => {
    const { auth } = await withPasskey();
    expect((await signIn(auth, { counter: 7 })).status).toBe(200);
    expectProblem(await signIn(auth, { counter: 7 }), 401, "passkey_failed");
    expectProblem(await signIn(auth, { counter: 3 }), 401, "passkey_failed");
    expectProblem(await signIn(auth, { counter: 0 }), 401, "passkey_failed");
    expect((await signIn(auth, { counter: 8 })).status).toBe(200);
  });

  it("user verification and presence are required", async () => {
    const u = await signup();
    expectProblem(await register(u, new SoftAuthenticator(), { flags: 0x41 }), 401, "passkey_failed");
    const { auth } = await withPasskey();
    expectProblem(await signIn(auth, { flags: 0x01 }), 401, "passkey_failed");
    expectProblem(await signIn(auth, { flags: 0x04 }), 401, "passkey_failed");
  });

  it("a bad signature, a credential id that names no passkey, a missing user handle", async () => {
    const { auth } = await withPasskey();
    expectProblem(await signIn(auth, { badSignature: true }), 401, "passkey_failed");
    expectProblem(
      await signIn(auth, { credentialId: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" }),
      401,
      "passkey_failed",
    );
    expectProblem(await signIn(auth, { userHandle: null }), 401, "passkey_failed");
  });

  it("another user's credential: the user handle of someone else, or their credential id, is refused", async () => {
    const alice = await withPasskey();
    const bob = await withPasskey();
    const bobHandle = bob.auth.credentials[0]!.userHandle;
    // Alice's key, Bob's user handle.
    expectProblem(await signIn(alice.auth, { userHandle: bobHandle }), 401, "passkey_failed");
    // Alice's key signing, naming Bob's credential (and his handle).
    const bobCredId = (await bob.auth.get(await requestOptions())).rawId;
    expectProblem(await signIn(alice.auth, { credentialId: bobCredId, userHandle: bobHandle }), 401, "passkey_failed");
  });

  it("a malformed attestation object or client data is a refusal, not a server error", async () => {
    const u = await signup();
    const credential = await new SoftAuthenticator().create(await creationOptions(u));
    const bad = { ...credential, response: { ...credential.response, attestationObject: "oWNmbXQ" } };
    expectProblem(
      await api("/v1/auth/passkeys/register", { token: u.accessToken, body: { credential: bad } }),
      401,
      "passkey_failed",
    );
    const garbled = { ...credential, response: { ...credential.response, clientDataJSON: "bm90IGpzb24" } };
    expectProblem(
      await api("/v1/auth/passkeys/register", { token: u.accessToken, body: { credential: garbled } }),
      401,
      "passkey_failed",
    );
  });

  it("the same credential id cannot be registered twice (409), by the same user or another", async () => {
    const { u, auth } = await withPasskey();
    const taken = auth.credentials[0]!.id;
    expectProblem(await register(u, auth, { newId: taken }), 409, "conflict");
    expectProblem(await register(await signup(), new SoftAuthenticator(), { newId: taken }), 409, "conflict");
  });

  it("a credential id that does not match the attested one", async () => {
    const u = await signup();
    const res = await register(u, new SoftAuthenticator(), {
      credentialId: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    });
    expectProblem(res, 401, "passkey_failed");
  });

  it("a disabled account cannot sign in with its passkey", async () => {
    const { u, auth } = await withPasskey();
    const res = await api(`/v1/admin/users/${u.id}`, {
      method: "PATCH",
      token: serviceKey(),
      body: { disabled: true },
    });
    expect(res.status, res.text).toBe(200);
    expectProblem(await signIn(auth), 403, "account_disabled");
  });

  it("unknown fields in the body are refused", async () => {
    const { auth } = await withPasskey();
    const credential = await auth.get(await requestOptions());
    expectProblem(await api("/v1/auth/passkeys/login", { body: { credential, extra: 1 } }), 400, "validation_failed");
    const sneaky = { ...credential, response: { ...credential.response, extra: "x" } };
    expectProblem(await api("/v1/auth/passkeys/login", { body: { credential: sneaky } }), 400, "validation_failed");
  });
});
