/**
 * Issue 27.6: a user's console page lists their sign-in methods (password and identities) and an admin
 * removes any but the last, confirmed, CSRF-checked and audited.
 */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { api, signup, type TestUser } from "../../helpers/api";
import { providerIdToken } from "../../helpers/tokens";
import { signIn, visit } from "./console-helpers";
import { signupAdmin } from "./helpers";

let admin: TestUser;
beforeAll(async () => {
  admin = await signupAdmin();
});

/** A password account that also signs in with Google (its verified email links the identity). */
async function userWithGoogle() {
  const u = await signup();
  await env.DB.prepare("UPDATE users SET email_verified = 1 WHERE id = ?").bind(u.id).run();
  const sub = `g-${crypto.randomUUID()}`;
  const idToken = await providerIdToken("google", { sub, aud: "web-client-id", email: u.email, email_verified: true });
  const res = await api("/v1/auth/idtoken", { body: { provider: "google", idToken } });
  expect(res.body.user.id).toBe(u.id);
  return { u, sub };
}

const identityCount = async (userId: string) =>
  (await env.DB.prepare("SELECT count(*) AS n FROM identities WHERE user_id = ?").bind(userId).first())?.n;

describe("console: sign-in methods", () => {
  it("lists the password and the identities; removing the password is confirmed and audited", async () => {
    const { u, sub } = await userWithGoogle();
    const { b, csrf } = await signIn(admin);
    const pageHtml = (await visit(b, `/admin/users/${u.id}`)).html;
    expect(pageHtml).toContain("Sign-in methods");
    expect(pageHtml).toContain("Password");
    expect(pageHtml).toContain("Google");
    expect(pageHtml).toContain(`name="subject" value="${sub}"`);

    const path = `/admin/users/${u.id}/sign-in-methods/remove`;
    // Without confirmation: the confirmation page, nothing removed.
    const ask = await visit(b, path, { _csrf: csrf, kind: "password", subject: "" });
    expect(ask.status).toBe(200);
    expect(ask.html).toContain("Remove this sign-in method?");
    expect((await api("/v1/auth/login", { body: { email: u.email, password: u.password } })).status).toBe(200);

    const done = await visit(b, path, { _csrf: csrf, kind: "password", subject: "", confirm: "yes" });
    expect(done.status, done.html).toBe(303);
    expect((await api("/v1/auth/login", { body: { email: u.email, password: u.password } })).status).toBe(401);
    const audit = await env.DB.prepare("SELECT * FROM audit_log WHERE target = ? AND action = 'user.identity_remove'")
      .bind(`user:${u.id}`)
      .all();
    expect(audit.results).toHaveLength(1);
    expect(audit.results[0]).toMatchObject({ actor_id: admin.id });

    // Google is now the only one: refused, not removed, not audited again.
    expect((await visit(b, `/admin/users/${u.id}`)).html).toContain("the only one");
    const last = await visit(b, path, { _csrf: csrf, kind: "google", subject: sub, confirm: "yes" });
    expect(last.status).toBe(409);
    expect(await identityCount(u.id)).toBe(1);
    const again = await env.DB.prepare(
      "SELECT count(*) AS n FROM audit_log WHERE target = ? AND action = 'user.identity_remove'",
    )
      .bind(`user:${u.id}`)
      .first();
    expect(again?.n).toBe(1);
  });

  it("removes an identity while the password remains; the provider's user no longer reaches the account", async () => {
    const { u, sub } = await userWithGoogle();
    const { b, csrf } = await signIn(admin);
    const res = await visit(b, `/admin/users/${u.id}/sign-in-methods/remove`, {
      _csrf: csrf,
      kind: "google",
      subject: sub,
      confirm: "yes",
    });
    expect(res.status).toBe(303);
    expect(await identityCount(u.id)).toBe(0);
    expect((await api("/v1/auth/login", { body: { email: u.email, password: u.password } })).status).toBe(200);
  });

  it("refuses a form without the CSRF token or from another origin, and non-admins", async () => {
    const { u, sub } = await userWithGoogle();
    const { b, csrf } = await signIn(admin);
    const path = `/admin/users/${u.id}/sign-in-methods/remove`;
    const fields = { kind: "google", subject: sub, confirm: "yes" };
    expect((await visit(b, path, fields)).status).toBe(403);
    expect((await visit(b, path, { ...fields, _csrf: csrf }, { origin: "https://evil.example" })).status).toBe(403);
    const plain = await signup();
    const { b: pb, csrf: pcsrf } = await signIn(plain);
    expect((await visit(pb, path, { ...fields, _csrf: pcsrf })).status).not.toBe(303);
    expect(await identityCount(u.id)).toBe(1);
  });

  it("an email-code account lists Email code, which is not removable (it goes by the verified email)", async () => {
    const email = `otp-console.${crypto.randomUUID()}@example.com`;
    await api("/v1/auth/otp", { body: { email }, settle: true });
    const mail = (await api("/v1/dev/outbox")).body.items.find((m: { to: string }) => m.to === email);
    const code = /: (\d{6})\n/.exec(mail.text)![1];
    const signedIn = await api("/v1/auth/otp/verify", { body: { email, code } });
    const id = signedIn.body.user.id as string;
    const { b, csrf } = await signIn(admin);
    const html = (await visit(b, `/admin/users/${id}`)).html;
    expect(html).toContain("Email code");
    expect(html).toContain("while the email is verified");
    const res = await visit(b, `/admin/users/${id}/sign-in-methods/remove`, {
      _csrf: csrf,
      kind: "email",
      subject: id,
      confirm: "yes",
    });
    expect(res.status).toBe(400);
    expect(await identityCount(id)).toBe(1);
  });
});
