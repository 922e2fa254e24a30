/** A user's console page lists their passkeys; an admin removes one, confirmed, CSRF-checked and audited. */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { api, signup, type TestUser } from "../../helpers/api";
import { SoftAuthenticator } from "../auth/passkey-authenticator";
import { signIn, visit } from "./console-helpers";
import { signupAdmin } from "./helpers";

let admin: TestUser;
beforeAll(async () => {
  admin = await signupAdmin();
});

async function userWithPasskey(name: string) {
  const u = await signup();
  const auth = new SoftAuthenticator();
  const options = (await api("/v1/auth/passkeys/register/options", { token: u.accessToken, body: {} })).body;
  const res = await api("/v1/auth/passkeys/register", {
    token: u.accessToken,
    body: { credential: await auth.create(options), name },
  });
  expect(res.status, res.text).toBe(201);
  return { u, auth, passkeyId: res.body.id as string };
}

const signInWith = async (auth: SoftAuthenticator) => {
  const options = (await api("/v1/auth/passkeys/login/options", { body: {} })).body;
  return api("/v1/auth/passkeys/login", { body: { credential: await auth.get(options) } });
};

const audits = async (userId: string) =>
  (
    await env.DB.prepare("SELECT * FROM audit_log WHERE target = ? AND action = 'user.passkey_remove'")
      .bind(`user:${userId}`)
      .all()
  ).results;

describe("console: a user's passkeys", () => {
  it("lists them (name, added, last used); removing one asks first, then removes it and audits it", async () => {
    const { u, auth, passkeyId } = await userWithPasskey("Work laptop");
    expect((await signInWith(auth)).status).toBe(200);
    const { b, csrf } = await signIn(admin);
    const html = (await visit(b, `/admin/users/${u.id}`)).html;
    expect(html).toContain("Passkeys");
    expect(html).toContain("Work laptop");
    expect(html).toContain(`name="passkeyId" value="${passkeyId}"`);
    expect(html).not.toContain(">never<");

    const path = `/admin/users/${u.id}/passkeys/remove`;
    const ask = await visit(b, path, { _csrf: csrf, passkeyId });
    expect(ask.status).toBe(200);
    expect(ask.html).toContain("Remove this passkey?");
    expect(ask.html).toContain(`value="${passkeyId}"`);
    expect((await signInWith(auth)).status).toBe(200);

    const done = await visit(b, path, { _csrf: csrf, passkeyId, confirm: "yes" });
    expect(done.status, done.html).toBe(303);
    expect((await signInWith(auth)).body.code).toBe("passkey_failed");
    const rows = await audits(u.id);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ actor_id: admin.id });
    expect((await visit(b, `/admin/users/${u.id}`)).html).toContain("No passkeys.");

    // Again: nothing to remove, nothing audited.
    expect((await visit(b, path, { _csrf: csrf, passkeyId, confirm: "yes" })).status).toBe(404);
    expect(await audits(u.id)).toHaveLength(1);
  });

  it("another user's passkey id under this user's page is not removed", async () => {
    const alice = await userWithPasskey("Alice's");
    const bob = await userWithPasskey("Bob's");
    const { b, csrf } = await signIn(admin);
    const res = await visit(b, `/admin/users/${alice.u.id}/passkeys/remove`, {
      _csrf: csrf,
      passkeyId: bob.passkeyId,
      confirm: "yes",
    });
    expect(res.status).toBe(404);
    expect((await signInWith(bob.auth)).status).toBe(200);
  });

  it("refuses a form without the CSRF token or from another origin, and non-admins", async () => {
    const { u, auth, passkeyId } = await userWithPasskey("Phone");
    const { b, csrf } = await signIn(admin);
    const path = `/admin/users/${u.id}/passkeys/remove`;
    const fields = { passkeyId, confirm: "yes" };
    expect((await visit(b, path, fields)).status).toBe(403);
    expect((await visit(b, path, { ...fields, _csrf: csrf }, { origin: "https://evil.example" })).status).toBe(403);
    const plain = await signup();
    const { b: pb, csrf: pcsrf } = await signIn(plain);
    expect((await visit(pb, path, { ...fields, _csrf: pcsrf })).status).not.toBe(303);
    expect((await signInWith(auth)).status).toBe(200);
    expect(await audits(u.id)).toHaveLength(0);
  });
});
