import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { api, signup, uniqueEmail } from "../../helpers/api";
import { codeIn, mailTo } from "../../helpers/outbox";
import { providerIdToken } from "../../helpers/tokens";

describe("auth: the happy paths", () => {
  it("signup returns the user and a session; the access token works on /v1/me", async () => {
    const email = uniqueEmail();
    const res = await api("/v1/auth/signup", {
      body: { email: `  ${email.toUpperCase()} `, password: "hunter2hunter2", name: "Ada" },
    });
    expect(res.status).toBe(201);
    expect(res.body.user).toEqual({
      id: expect.any(String),
      email,
      emailVerified: false,
      name: "Ada",
      avatarFileId: null,
      anonymous: false,
      role: "user",
      disabled: false,
      locale: null,
      createdAt: expect.any(String),
    });
    expect(res.body.session).toEqual({
      accessToken: expect.any(String),
      refreshToken: expect.any(String),
      tokenType: "Bearer",
      expiresIn: 900,
    });
    const me = await api("/v1/me", { token: res.body.session.accessToken });
    expect(me.status).toBe(200);
    expect(me.body.id).toBe(res.body.user.id);
  });

  it("login with the right password opens a new session", async () => {
    const u = await signup();
    const res = await api("/v1/auth/login", { body: { email: u.email, password: u.password } });
    expect(res.status).toBe(200);
    expect(res.body.user.id).toBe(u.id);
    expect(res.body.session.refreshToken).not.toBe(u.refreshToken);
  });

  it("a guest can be linked to an email and password and keeps its id", async () => {
    const guest = await api("/v1/auth/anonymous", { body: {} });
    expect(guest.status).toBe(201);
    expect(guest.body.user).toMatchObject({ anonymous: true, email: null });
    const email = uniqueEmail("guest");
    const link = await api("/v1/auth/link", {
      token: guest.body.session.accessToken,
      body: { email, password: "guest-password" },
    });
    expect(link.status).toBe(200);
    expect(link.body.user).toMatchObject({ id: guest.body.user.id, email, anonymous: false });
    const login = await api("/v1/auth/login", { body: { email, password: "guest-password" } });
    expect(login.status).toBe(200);
    expect(login.body.user.id).toBe(guest.body.user.id);
  });

  it("refresh rotates the refresh token and issues a working access token", async () => {
    const u = await signup();
    const r1 = await api("/v1/auth/refresh", { body: { refreshToken: u.refreshToken } });
    expect(r1.status).toBe(200);
    expect(r1.body.session.refreshToken).not.toBe(u.refreshToken);
    const r2 = await api("/v1/auth/refresh", { body: { refreshToken: r1.body.session.refreshToken } });
    expect(r2.status).toBe(200);
    expect((await api("/v1/me", { token: r2.body.session.accessToken })).status).toBe(200);
  });

  it("logout revokes the current session: its refresh token stops working", async () => {
    const u = await signup();
    expect((await api("/v1/auth/logout", { token: u.accessToken, body: {} })).status).toBe(204);
    const r = await api("/v1/auth/refresh", { body: { refreshToken: u.refreshToken } });
    expect(r.status).toBe(401);
  });

  it("lists sessions with the current one marked, and revokes another", async () => {
    const u = await signup();
    const other = await api("/v1/auth/login", {
      body: { email: u.email, password: u.password },
      headers: { "user-agent": "OtherPhone/1.0" },
    });
    const list = await api("/v1/auth/sessions", { token: u.accessToken });
    expect(list.status).toBe(200);
    expect(list.body.items).toHaveLength(2);
    expect(list.body.items.filter((s: { current: boolean }) => s.current)).toHaveLength(1);
    const otherSession = list.body.items.find((s: { userAgent: string | null }) => s.userAgent === "OtherPhone/1.0");
    expect(otherSession.current).toBe(false);
    expect((await api(`/v1/auth/sessions/${otherSession.id}`, { method: "DELETE", token: u.accessToken })).status).toBe(
      204,
    );
    expect((await api("/v1/auth/refresh", { body: { refreshToken: other.body.session.refreshToken } })).status).toBe(
      401,
    );
    expect((await api("/v1/auth/sessions", { token: u.accessToken })).body.items).toHaveLength(1);
  });

  it("changing the password keeps this session and revokes the others", async () => {
    const u = await signup();
    const other = await api("/v1/auth/login", { body: { email: u.email, password: u.password } });
    const res = await api("/v1/auth/password", {
      token: u.accessToken,
      body: { currentPassword: u.password, newPassword: "a brand new password" },
    });
    expect(res.status).toBe(204);
    expect((await api("/v1/auth/refresh", { body: { refreshToken: other.body.session.refreshToken } })).status).toBe(
      401,
    );
    expect((await api("/v1/auth/refresh", { body: { refreshToken: u.refreshToken } })).status).toBe(200);
    expect((await api("/v1/auth/login", { body: { email: u.email, password: "a brand new password" } })).status).toBe(
      200,
    );
    expect((await api("/v1/auth/login", { body: { email: u.email, password: u.password } })).status).toBe(401);
  });

  it("password reset: 202, a code by mail, the new password works and every session is revoked", async () => {
    const u = await signup();
    // The mail goes out after the 202 (waitUntil): `settle` waits for it.
    const res = await api("/v1/auth/password-reset", { body: { email: u.email }, settle: true });
    expect(res.status).toBe(202);
    const mail = await mailTo(u.email);
    expect(mail.subject).toMatch(/reset/i);
    const token = codeIn(mail.text);
    const confirm = await api("/v1/auth/password-reset/confirm", {
      body: { token, newPassword: "reset-password-123" },
    });
    expect(confirm.status).toBe(204);
    expect((await api("/v1/auth/refresh", { body: { refreshToken: u.refreshToken } })).status).toBe(401);
    const login = await api("/v1/auth/login", { body: { email: u.email, password: "reset-password-123" } });
    expect(login.status).toBe(200);
    expect(login.body.user.emailVerified).toBe(true);
    // One-time: the same code does not work twice.
    expect(
      (await api("/v1/auth/password-reset/confirm", { body: { token, newPassword: "another-password-1" } })).body.code,
    ).toBe("invalid_token");
  });

  it("email verification: 202, a code by mail, then emailVerified", async () => {
    const u = await signup();
    expect((await api("/v1/auth/verify-email", { token: u.accessToken, body: {} })).status).toBe(202);
    const mail = await mailTo(u.email);
    const res = await api("/v1/auth/verify-email/confirm", { body: { token: codeIn(mail.text) } });
    expect(res.status).toBe(204);
    expect((await api("/v1/me", { token: u.accessToken })).body.emailVerified).toBe(true);
  });

  it("Sign in with Apple creates an account once and signs the same person in again", async () => {
    const sub = `apple-${crypto.randomUUID()}`;
    const email = uniqueEmail("apple");
    const nonce = "raw-nonce-123";
    const hashed = [...new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(nonce)))]
      .map((b) => b.toString(16).padStart(2, "0"))
      .join("");
    const idToken = await providerIdToken("apple", {
      sub,
      aud: "com.example.outpost",
      email,
      email_verified: "true",
      nonce: hashed,
    });
    const first = await api("/v1/auth/idtoken", { body: { provider: "apple", idToken, nonce, name: "Tim" } });
    expect(first.status).toBe(200);
    expect(first.body.user).toMatchObject({ email, emailVerified: true, name: "Tim", anonymous: false });
    const again = await api("/v1/auth/idtoken", {
      body: { provider: "apple", idToken: await providerIdToken("apple", { sub, aud: "com.example.outpost" }) },
    });
    expect(again.status).toBe(200);
    expect(again.body.user.id).toBe(first.body.user.id);
  });

  it("Sign in with Google links to the existing account with the same verified email", async () => {
    const u = await signup();
    // Only an email its account has verified joins a provider identity (linking.security.test.ts).
    expect((await api("/v1/auth/verify-email", { token: u.accessToken, body: {} })).status).toBe(202);
    expect(
      (await api("/v1/auth/verify-email/confirm", { body: { token: codeIn((await mailTo(u.email)).text) } })).status,
    ).toBe(204);
    const idToken = await providerIdToken("google", {
      sub: `g-${crypto.randomUUID()}`,
      aud: "web-client-id",
      email: u.email,
      email_verified: true,
      nonce: "n-1",
    });
    const res = await api("/v1/auth/idtoken", { body: { provider: "google", idToken, nonce: "n-1" } });
    expect(res.status).toBe(200);
    expect(res.body.user.id).toBe(u.id);
    expect(res.body.user.emailVerified).toBe(true);
  });

  it("PATCH /v1/me changes the name; DELETE /v1/me removes the account and its sessions", async () => {
    const u = await signup();
    const patched = await api("/v1/me", { method: "PATCH", token: u.accessToken, body: { name: "New Name" } });
    expect(patched.status).toBe(200);
    expect(patched.body.name).toBe("New Name");
    expect((await api("/v1/me", { method: "DELETE", token: u.accessToken })).status).toBe(204);
    const count = async (table: "users" | "sessions", column: "id" | "user_id") =>
      (await env.DB.prepare(`SELECT count(*) AS n FROM ${table} WHERE ${column} = ?`).bind(u.id).first<{ n: number }>())
        ?.n;
    expect(await count("users", "id")).toBe(0);
    expect(await count("sessions", "user_id")).toBe(0);
    expect((await api("/v1/auth/refresh", { body: { refreshToken: u.refreshToken } })).status).toBe(401);
    expect((await api("/v1/auth/login", { body: { email: u.email, password: u.password } })).status).toBe(401);
    // The email is free again.
    expect((await api("/v1/auth/signup", { body: { email: u.email, password: u.password } })).status).toBe(201);
  });
});
