/**
 * Sign-in codes by mail (API.md v1.2): `POST /v1/auth/otp` and `/v1/auth/otp/verify`. Happy paths (code
 * and magic link, new and existing accounts), wrong codes, expiry, reuse, enumeration, rate limits, the
 * v1.1 linking rules for an address its account never verified, and mails in the user's language.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { api, expectProblem, freshIp, signup, uniqueEmail } from "../../helpers/api";
import { codeIn, mailTo } from "../../helpers/outbox";

/** Asks for a code (waiting for the mail) and returns the mail's code and link token. */
async function requestCode(email: string, extra: Record<string, unknown> = {}) {
  const res = await api("/v1/auth/otp", { body: { email, ...extra }, settle: true });
  expect(res.status, res.text).toBe(202);
  const mail = await mailTo(email);
  const code = /: (\d{6})\n/.exec(mail.text)?.[1];
  const token = /\/auth\/otp\?token=([A-Za-z0-9_-]+)/.exec(mail.text)?.[1];
  if (!code || !token) throw new Error(`no code or link in: ${mail.text}`);
  return { code, token, mail };
}

const verify = (body: Record<string, unknown>, ip?: string) =>
  api("/v1/auth/otp/verify", { body, ...(ip ? { ip } : {}) });

const otpRow = (email: string) =>
  env.DB.prepare("SELECT * FROM otp_codes WHERE email = ?").bind(email).first<Record<string, unknown>>();

/** A wrong code for `right` (same length, never equal). */
const wrong = (right: string, i = 0) => String((Number(right) + 1 + i) % 1_000_000).padStart(6, "0");

describe("otp: happy paths", () => {
  it("a new address: one mail with a code and a link; the code creates a verified account, once", async () => {
    const email = uniqueEmail("otp");
    const { code, mail } = await requestCode(email);
    expect(mail.subject).toBe("Outpost: your sign-in code");
    expect(mail.text).toContain("https://outpost.test/auth/otp?token=");
    // Only hashes are stored.
    const row = await otpRow(email);
    expect(JSON.stringify(row)).not.toContain(code);
    const res = await verify({ email, code });
    expect(res.status, res.text).toBe(200);
    expect(res.body.created).toBe(true);
    expect(res.body.user).toMatchObject({ email, emailVerified: true, anonymous: false });
    const me = await api("/v1/me", { token: res.body.session.accessToken });
    expect(me.body.id).toBe(res.body.user.id);
    // Single use.
    expectProblem(await verify({ email, code }), 401, "invalid_code");
    expect(await otpRow(email)).toBeNull();
  });

  it("the magic link's token signs in an existing verified account (same id, not created); once", async () => {
    const email = uniqueEmail("otp-link");
    const first = await verify({ email, code: (await requestCode(email)).code });
    expect(first.body.created).toBe(true);
    const { token } = await requestCode(email);
    const res = await verify({ token });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ created: false, user: { id: first.body.user.id, email } });
    expectProblem(await verify({ token }), 401, "invalid_code");
  });

  it("a password account whose holder verified the email signs in to that same account", async () => {
    const u = await signup();
    await env.DB.prepare("UPDATE users SET email_verified = 1 WHERE id = ?").bind(u.id).run();
    const res = await verify({ email: u.email, code: (await requestCode(u.email)).code });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ created: false, user: { id: u.id } });
    // The password still works too.
    expect((await api("/v1/auth/login", { body: { email: u.email, password: u.password } })).status).toBe(200);
  });

  it("a new code replaces the earlier one", async () => {
    const email = uniqueEmail("otp-new");
    const old = await requestCode(email);
    const next = await requestCode(email);
    if (old.code !== next.code) expectProblem(await verify({ email, code: old.code }), 401, "invalid_code");
    expectProblem(await verify({ token: old.token }), 401, "invalid_code");
    expect((await verify({ token: next.token })).status).toBe(200);
  });
});

describe("otp: wrong codes, expiry", () => {
  it("4 wrong codes, then the right one works", async () => {
    const email = uniqueEmail("otp-wrong");
    const { code } = await requestCode(email);
    for (let i = 0; i < 4; i++) expectProblem(await verify({ email, code: wrong(code, i) }), 401, "invalid_code");
    expect((await verify({ email, code })).status).toBe(200);
  });

  it("5 wrong codes end the code: the right one and the link are refused afterwards", async () => {
    const email = uniqueEmail("otp-dead");
    const { code, token } = await requestCode(email);
    for (let i = 0; i < 5; i++) expectProblem(await verify({ email, code: wrong(code, i) }), 401, "invalid_code");
    expect(await otpRow(email)).toBeNull();
    expectProblem(await verify({ email, code }), 401, "invalid_code");
    expectProblem(await verify({ token }), 401, "invalid_code");
    const users = await env.DB.prepare("SELECT count(*) AS n FROM users WHERE email = ?").bind(email).first();
    expect(users?.n).toBe(0);
  });

  it("an expired code or link is refused", async () => {
    const email = uniqueEmail("otp-expired");
    const { code, token } = await requestCode(email);
    const past = new Date(Date.now() - 1000).toISOString();
    await env.DB.prepare("UPDATE otp_codes SET expires_at = ? WHERE email = ?").bind(past, email).run();
    expectProblem(await verify({ email, code }), 401, "invalid_code");
    const again = await requestCode(email);
    await env.DB.prepare("UPDATE otp_codes SET expires_at = ? WHERE email = ?").bind(past, email).run();
    expectProblem(await verify({ token: again.token }), 401, "invalid_code");
    expectProblem(await verify({ token }), 401, "invalid_code");
  });

  it("the code of one address does not work for another", async () => {
    const a = uniqueEmail("otp-a");
    const b = uniqueEmail("otp-b");
    const { code } = await requestCode(a);
    await requestCode(b);
    expectProblem(await verify({ email: b, code }), 401, "invalid_code");
  });

  it("malformed bodies → 400 validation_failed", async () => {
    expectProblem(await verify({ email: uniqueEmail(), code: "12345" }), 400, "validation_failed");
    expectProblem(await verify({ email: uniqueEmail(), code: "abcdef" }), 400, "validation_failed");
    expectProblem(await verify({ code: "123456" }), 400, "validation_failed");
    expectProblem(await verify({ token: "x", extra: 1 }), 400, "validation_failed");
    expectProblem(await api("/v1/auth/otp", { body: { email: "not an email" } }), 400, "validation_failed");
    expectProblem(
      await api("/v1/auth/otp", { body: { email: uniqueEmail(), locale: "x y" } }),
      400,
      "validation_failed",
    );
  });
});

describe("otp: enumeration", () => {
  it("a known and an unknown address get the same answer, and the same work is done for both", async () => {
    const u = await signup();
    const ghost = uniqueEmail("ghost");
    const shape = (r: Awaited<ReturnType<typeof api>>) => ({
      status: r.status,
      text: r.text,
      type: r.headers.get("content-type"),
    });
    const known = await api("/v1/auth/otp", { body: { email: u.email }, settle: true });
    const unknown = await api("/v1/auth/otp", { body: { email: ghost }, settle: true });
    expect(shape(known)).toEqual({ status: 202, text: "", type: null });
    expect(shape(unknown)).toEqual(shape(known));
    // Both got a code row and a mail: nothing on the answer's path or after it depends on the account.
    expect(await otpRow(u.email)).not.toBeNull();
    expect(await otpRow(ghost)).not.toBeNull();
    codeIn((await mailTo(u.email)).text);
    codeIn((await mailTo(ghost)).text);
  });

  it("a wrong code answers the same for an address with no code at all", async () => {
    const email = uniqueEmail("otp-enum");
    await requestCode(email);
    const withCode = await verify({ email, code: "000000" });
    const without = await verify({ email: uniqueEmail("otp-none"), code: "000000" });
    expect(without.status).toBe(withCode.status);
    expect(without.body.code).toBe(withCode.body.code);
    expect(without.body.detail).toBe(withCode.body.detail);
  });
});

describe("otp: rate limits", () => {
  it("per address: more than 5 requests a minute → 429 with Retry-After, from any client address", async () => {
    const email = uniqueEmail("otp-flood");
    const answers: number[] = [];
    let limited: Awaited<ReturnType<typeof api>> | undefined;
    // Loops on: the limiter's window may turn over once in the middle.
    for (let i = 0; i < 15 && !limited; i++) {
      const res = await api("/v1/auth/otp", { body: { email }, ip: freshIp() });
      if (res.status === 429) limited = res;
      else answers.push(res.status);
    }
    expect(answers.length).toBeGreaterThanOrEqual(5);
    expect(answers.every((s) => s === 202)).toBe(true);
    expectProblem(limited!, 429, "rate_limited");
    expect(Number(limited!.headers.get("retry-after"))).toBeGreaterThan(0);
    // Another address is not affected.
    expect((await api("/v1/auth/otp", { body: { email: uniqueEmail() } })).status).toBe(202);
  });

  it("per client address: many addresses from one client → 429", async () => {
    const ip = "203.0.113.127";
    let limited: Awaited<ReturnType<typeof api>> | undefined;
    for (let i = 0; i < 40 && !limited; i++) {
      const res = await api("/v1/auth/otp", { ip, body: { email: uniqueEmail("spray") } });
      if (res.status === 429) limited = res;
      else expect(res.status).toBe(202);
    }
    expect(limited).toBeDefined();
    expectProblem(limited!, 429, "rate_limited");
  });

  it("guessing codes for one address from many clients → 429 per address", async () => {
    const email = uniqueEmail("otp-guess");
    const answers: number[] = [];
    for (let i = 0; i < 45 && !answers.includes(429); i++) {
      answers.push((await verify({ email, code: "000000" }, freshIp())).status);
    }
    expect(answers.at(-1)).toBe(429);
    expect(answers.indexOf(429)).toBeGreaterThanOrEqual(20);
    expect(answers.slice(0, -1).every((s) => s === 401)).toBe(true);
  });
});

describe("otp: linking (v1.1 rules)", () => {
  it("an account that never verified the address: the mailbox's holder gets a new account, the old one loses it", async () => {
    const email = uniqueEmail("victim");
    const attacker = await signup({ email, password: "attacker password" });
    const res = await verify({ email, code: (await requestCode(email)).code });
    expect(res.status, res.text).toBe(200);
    expect(res.body.created).toBe(true);
    expect(res.body.user.id).not.toBe(attacker.id);
    expect(res.body.user).toMatchObject({ email, emailVerified: true });
    // The attacker's token still names the old account, which has no email now; the password opens nothing.
    const me = await api("/v1/me", { token: attacker.accessToken });
    expect(me.body).toMatchObject({ id: attacker.id, email: null });
    expectProblem(
      await api("/v1/auth/login", { body: { email, password: "attacker password" } }),
      401,
      "invalid_credentials",
    );
    // Signing in again with a code reaches the new account.
    const again = await verify({ email, code: (await requestCode(email)).code });
    expect(again.body).toMatchObject({ created: false, user: { id: res.body.user.id } });
  });

  it("a guest linked to an address it never verified does not receive the mailbox holder's sign-in", async () => {
    const guest = await api("/v1/auth/anonymous", { body: {} });
    const email = uniqueEmail("guest-victim");
    const linked = await api("/v1/auth/link", {
      token: guest.body.session.accessToken,
      body: { email, password: "guest password" },
    });
    expect(linked.status, linked.text).toBe(200);
    const res = await verify({ email, code: (await requestCode(email)).code });
    expect(res.body.user.id).not.toBe(guest.body.user.id);
  });

  it("a disabled account's holder gets 403 account_disabled", async () => {
    const email = uniqueEmail("otp-disabled");
    const first = await verify({ email, code: (await requestCode(email)).code });
    await env.DB.prepare("UPDATE users SET disabled = 1 WHERE id = ?").bind(first.body.user.id).run();
    expectProblem(await verify({ email, code: (await requestCode(email)).code }), 403, "account_disabled");
  });
});

describe("mails in the user's language", () => {
  it("the sign-in mail follows the request's locale, and the new account keeps it", async () => {
    const email = uniqueEmail("otp-fr");
    const { code, mail } = await requestCode(email, { locale: "fr-CA" });
    expect(mail.subject).toBe("Outpost : votre code de connexion");
    const res = await verify({ email, code, locale: "fr-CA" });
    expect(res.body.user.locale).toBe("fr-CA");
    // Without a locale in the request, the account's own is used.
    expect((await requestCode(email)).mail.subject).toBe("Outpost : votre code de connexion");
    // A language the app has no texts for gets English.
    expect((await requestCode(uniqueEmail(), { locale: "ja" })).mail.subject).toBe("Outpost: your sign-in code");
  });

  it("verification and reset mails come in the locale stored on the user (PATCH /v1/me)", async () => {
    const u = await signup();
    const patched = await api("/v1/me", { method: "PATCH", token: u.accessToken, body: { locale: "fr" } });
    expect(patched.status, patched.text).toBe(200);
    expect(patched.body.locale).toBe("fr");
    expect((await api("/v1/auth/verify-email", { token: u.accessToken, body: {} })).status).toBe(202);
    const verifyMail = await mailTo(u.email);
    expect(verifyMail.subject).toBe("Outpost : confirmez votre adresse e-mail");
    expect(verifyMail.text).toContain("/verify-email?token=");
    expect((await api("/v1/auth/password-reset", { body: { email: u.email }, settle: true })).status).toBe(202);
    expect((await mailTo(u.email)).subject).toBe("Outpost : réinitialisez votre mot de passe");
  });

  it("signup takes the device's locale", async () => {
    const email = uniqueEmail("signup-de");
    const res = await api("/v1/auth/signup", { body: { email, password: "correct horse battery", locale: "de" } });
    expect(res.status, res.text).toBe(201);
    expect(res.body.user.locale).toBe("de");
  });
});
