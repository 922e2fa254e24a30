/**
 * Accounts and identities (API.md v1.1): an email its account has not verified never joins a
 * provider identity. Pre-registration takeover: an attacker signs up (or links a guest) with the
 * victim's email and never verifies it; the victim later signs in with Google/Apple. Nothing the
 * attacker held before (password, refresh token, access token) may reach what the victim owns.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { getConfig } from "../../../src/config";
import { createDb } from "../../../src/db";
import { signInWithIdentity } from "../../../src/features/auth/identities";
import { api, expectProblem, signup, uniqueEmail } from "../../helpers/api";
import { codeIn, mailTo } from "../../helpers/outbox";
import { providerIdToken } from "../../helpers/tokens";

interface Credentials {
  email: string;
  password: string;
  accessToken: string;
  refreshToken: string;
}

async function googleSignIn(email: string, emailVerified = true, sub = `g-${crypto.randomUUID()}`) {
  const idToken = await providerIdToken("google", { sub, aud: "web-client-id", email, email_verified: emailVerified });
  return api("/v1/auth/idtoken", { body: { provider: "google", idToken } });
}

/** The victim signs in with Google after the attacker's account took the email: a fresh account. */
async function victimSignsInWithGoogle(attackerId: string, email: string) {
  const res = await googleSignIn(email);
  expect(res.status, res.text).toBe(200);
  expect(res.body.user.id).not.toBe(attackerId);
  expect(res.body.user).toMatchObject({ email, emailVerified: true, anonymous: false });
  return { id: res.body.user.id as string, accessToken: res.body.session.accessToken as string };
}

/** None of the attacker's earlier credentials reads what the victim creates afterwards. */
async function expectLockedOut(attacker: Credentials & { id: string }, victim: { id: string; accessToken: string }) {
  const note = await api("/v1/collections/notes/records", {
    token: victim.accessToken,
    body: { title: "victim's secret" },
  });
  expect(note.status, note.text).toBe(201);
  expect(note.body.ownerId).toBe(victim.id);

  const cannotRead = async (token: string, what: string) => {
    const me = await api("/v1/me", { token });
    expect(me.status, `${what}: ${me.text}`).toBe(200);
    expect(me.body.id, what).toBe(attacker.id);
    expect(me.body.email, `${what}: the unverified account lost the email`).toBeNull();
    const list = await api("/v1/collections/notes/records", { token });
    expect(list.status, what).toBe(200);
    expect(
      list.body.items.map((r: { id: string }) => r.id),
      what,
    ).not.toContain(note.body.id);
    expectProblem(await api(`/v1/collections/notes/records/${note.body.id}`, { token }), 404, "not_found");
  };

  // The access token the attacker held (checked without a lookup): it names the old account.
  await cannotRead(attacker.accessToken, "old access token");
  // The refresh token the attacker held: it refreshes the old account, never the victim's.
  const refreshed = await api("/v1/auth/refresh", { body: { refreshToken: attacker.refreshToken } });
  expect(refreshed.status, refreshed.text).toBe(200);
  await cannotRead(refreshed.body.session.accessToken, "refreshed access token");
  // The password the attacker chose: the email now belongs to the victim's account, which has none.
  expectProblem(
    await api("/v1/auth/login", { body: { email: attacker.email, password: attacker.password } }),
    401,
    "invalid_credentials",
  );
  // The victim still reads their own record.
  expect((await api(`/v1/collections/notes/records/${note.body.id}`, { token: victim.accessToken })).status).toBe(200);
}

describe("pre-registration account takeover", () => {
  // The attacker cannot reach that account.
  it("attacker signs up with the victim's email; the victim's Google sign-in gets a fresh account", async () => {
    const email = uniqueEmail("victim");
    const attacker = await signup({ email, password: "attacker password" });
    const victim = await victimSignsInWithGoogle(attacker.id, email);
    await expectLockedOut(attacker, victim);
    // The same Google identity signs in to the same (victim's) account again.
    const rows = await env.DB.prepare("SELECT provider, subject FROM identities WHERE user_id = ?")
      .bind(victim.id)
      .all<{ provider: string; subject: string }>();
    expect(rows.results).toHaveLength(1);
    const again = await googleSignIn(email, true, rows.results[0]!.subject);
    expect(again.body.user.id).toBe(victim.id);
    // The old account keeps its id and data but has no email, so its leftover password reset mail
    // can't be redeemed on it.
    expect(
      await env.DB.prepare("SELECT email, email_verified FROM users WHERE id = ?").bind(attacker.id).first(),
    ).toEqual({ email: null, email_verified: 0 });
  });

  // The attacker cannot reach that account.
  it("a guest linked to the victim's email; the victim's Google sign-in gets a fresh account", async () => {
    const email = uniqueEmail("victim");
    const guest = await api("/v1/auth/anonymous", { body: {} });
    const linked = await api("/v1/auth/link", {
      token: guest.body.session.accessToken,
      body: { email, password: "attacker password" },
    });
    expect(linked.status, linked.text).toBe(200);
    const attacker = {
      id: guest.body.user.id as string,
      email,
      password: "attacker password",
      accessToken: guest.body.session.accessToken as string,
      refreshToken: guest.body.session.refreshToken as string,
    };
    const victim = await victimSignsInWithGoogle(attacker.id, email);
    await expectLockedOut(attacker, victim);
  });

  it("a pending verification code of the unverified account stops working once the email moved", async () => {
    const email = uniqueEmail("victim");
    const attacker = await signup({ email, password: "attacker password" });
    expect((await api("/v1/auth/verify-email", { token: attacker.accessToken, body: {} })).status).toBe(202);
    const code = codeIn((await mailTo(email)).text);
    await victimSignsInWithGoogle(attacker.id, email);
    expectProblem(await api("/v1/auth/verify-email/confirm", { body: { token: code } }), 400, "invalid_token");
  });

  it("an identity with an unverified email does not take that email; its owner can still sign up", async () => {
    const email = uniqueEmail("victim");
    const provider = await googleSignIn(email, false);
    expect(provider.status, provider.text).toBe(200);
    expect(provider.body.user).toMatchObject({ email: null, emailVerified: false });
    const victim = await api("/v1/auth/signup", { body: { email, password: "victim password 1" } });
    expect(victim.status, victim.text).toBe(201);
    expect(victim.body.user.id).not.toBe(provider.body.user.id);
    // The provider user's token reaches nothing of the victim's.
    const note = await api("/v1/collections/notes/records", {
      token: victim.body.session.accessToken,
      body: { title: "mine" },
    });
    expect(note.status).toBe(201);
    expectProblem(
      await api(`/v1/collections/notes/records/${note.body.id}`, { token: provider.body.session.accessToken }),
      404,
      "not_found",
    );
    // Same for Apple, whose email_verified comes as the string "false".
    const apple = await providerIdToken("apple", {
      sub: `a-${crypto.randomUUID()}`,
      aud: "com.example.outpost",
      email: uniqueEmail("apple"),
      email_verified: "false",
    });
    const res = await api("/v1/auth/idtoken", { body: { provider: "apple", idToken: apple } });
    expect(res.status, res.text).toBe(200);
    expect(res.body.user).toMatchObject({ email: null, emailVerified: false });
  });

  it("an account whose email IS verified still links to the provider identity (same id)", async () => {
    const u = await signup();
    expect((await api("/v1/auth/verify-email", { token: u.accessToken, body: {} })).status).toBe(202);
    expect(
      (await api("/v1/auth/verify-email/confirm", { body: { token: codeIn((await mailTo(u.email)).text) } })).status,
    ).toBe(204);
    const res = await googleSignIn(u.email);
    expect(res.status, res.text).toBe(200);
    expect(res.body.user.id).toBe(u.id);
    // Password login keeps working: it is the owner's own account.
    expect((await api("/v1/auth/login", { body: { email: u.email, password: u.password } })).body.user.id).toBe(u.id);
  });

  it("two concurrent first sign-ins of one new identity end in one account", async () => {
    const sub = `g-${crypto.randomUUID()}`;
    const email = uniqueEmail("race");
    const results = await Promise.all([1, 2, 3].map(() => googleSignIn(email, true, sub)));
    for (const r of results) expect(r.status, r.text).toBe(200);
    expect(new Set(results.map((r) => r.body.user.id)).size).toBe(1);
  });

  // Called side by side in the service.
  it("concurrent first sign-ins of one identity: one account, no error", async () => {
    const identity = {
      provider: "google" as const,
      subject: `g-${crypto.randomUUID()}`,
      email: uniqueEmail("race"),
      emailVerified: true,
      name: null,
    };
    const db = createDb(env.DB);
    const results = await Promise.all([1, 2, 3].map(() => signInWithIdentity(db, getConfig(env), identity, null)));
    expect(new Set(results.map((r) => ("user" in r ? r.user.id : null))).size).toBe(1);
    const n = await env.DB.prepare("SELECT count(*) AS n FROM users WHERE email = ?")
      .bind(identity.email)
      .first<{ n: number }>();
    expect(n?.n).toBe(1);
  });

  it("an account that verifies its email while the provider user signs in is linked, not stripped of it", async () => {
    const owner = await signup();
    let verified = false;
    // Verifies the owner's email between the sign-in's reads and its batch.
    const racing = {
      prepare: (q: string) => env.DB.prepare(q),
      batch: async (stmts: D1PreparedStatement[]) => {
        if (!verified) {
          verified = true;
          await env.DB.prepare("UPDATE users SET email_verified = 1 WHERE id = ?").bind(owner.id).run();
        }
        return env.DB.batch(stmts);
      },
    } as unknown as D1Database;
    const identity = {
      provider: "google" as const,
      subject: `g-${crypto.randomUUID()}`,
      email: owner.email,
      emailVerified: true,
      name: null,
    };
    const res = await signInWithIdentity(createDb(racing), getConfig(env), identity, null);
    expect(verified).toBe(true);
    expect("user" in res ? res.user.id : null).toBe(owner.id);
    expect(await env.DB.prepare("SELECT email, email_verified FROM users WHERE id = ?").bind(owner.id).first()).toEqual(
      { email: owner.email, email_verified: 1 },
    );
  });
});
