/**
 * Second factors in administration: a user's factors on their console page and support's "Reset
 * MFA" (confirmed, CSRF-checked, audited in the reset's batch, mailed); the console's sign-in with a
 * code; and CONSOLE_REQUIRE_MFA on the admin API and the console.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { api, expectProblem, freshIp, signup } from "../../helpers/api";
import { mailTo } from "../../helpers/outbox";
import { aal2Session, loginBody, type MfaUser, mfaUser, totp } from "../auth/mfa-helpers";
import { type Browser, csrfOf, signIn, visit } from "./console-helpers";
import { signupAdmin } from "./helpers";

const promote = (id: string) =>
  env.DB.prepare("UPDATE users SET role = 'admin', email_verified = 1 WHERE id = ?").bind(id).run();

/** The Worker called with CONSOLE_REQUIRE_MFA set. */
async function strictFetch(path: string, init: RequestInit & { cookies?: Browser } = {}) {
  const worker = (await import("../../../src/index")).default;
  const headers = new Headers(init.headers);
  headers.set("cf-connecting-ip", freshIp());
  if (init.cookies?.cookies.size)
    headers.set("cookie", [...init.cookies.cookies].map(([k, v]) => `${k}=${v}`).join("; "));
  const ctx = createExecutionContext();
  const res = await worker.fetch(
    new Request(`https://outpost.test${path}`, { ...init, headers, redirect: "manual" }),
    { ...env, CONSOLE_REQUIRE_MFA: "true" },
    ctx as ExecutionContext,
  );
  const text = await res.text();
  await waitOnExecutionContext(ctx);
  return { status: res.status, headers: res.headers, text };
}

const factorRows = async (userId: string) =>
  (
    await env.DB.prepare(
      "SELECT (SELECT count(*) FROM mfa_totp WHERE user_id = ?1) + " +
        "(SELECT count(*) FROM mfa_recovery_codes WHERE user_id = ?1) AS n",
    )
      .bind(userId)
      .first<{ n: number }>()
  )?.n;

describe("console: a user's second factor and Reset MFA", () => {
  it("shows the factor; the reset is confirmed, CSRF-checked, audited in its batch and mailed", async () => {
    const admin = await signupAdmin();
    const u = await mfaUser();
    const { b, csrf } = await signIn(admin);
    const pageHtml = (await visit(b, `/admin/users/${u.id}`)).html;
    expect(pageHtml).toContain("Second factor");
    expect(pageHtml).toMatch(/Recovery codes left<\/dt>\s*<dd>10<\/dd>/);
    expect(pageHtml).toContain("Reset MFA");

    const path = `/admin/users/${u.id}/mfa-reset`;
    // Without the form's token: refused. Without confirmation: the question, nothing removed.
    expect((await visit(b, path, { _csrf: "forged" })).status).toBe(403);
    const ask = await visit(b, path, { _csrf: csrf });
    expect(ask.status).toBe(200);
    expect(ask.html).toContain("Reset this user&#39;s second factor?");
    expect(await factorRows(u.id)).toBe(11);

    const done = await visit(b, path, { _csrf: csrf, confirm: "yes" });
    expect(done.status, done.html).toBe(303);
    expect(await factorRows(u.id)).toBe(0);
    const audit = await env.DB.prepare("SELECT * FROM audit_log WHERE target = ? AND action = 'user.mfa_reset'")
      .bind(`user:${u.id}`)
      .all();
    expect(audit.results).toHaveLength(1);
    expect(audit.results[0]).toMatchObject({ actor_id: admin.id });
    const mail = await mailTo(u.email);
    expect(mail.subject).toBe("Outpost: your second factor was reset");
    // Signing in no longer asks for a code.
    expect((await loginBody(u)).session).toBeDefined();
    // Nothing left to reset: 409, and no second audit row.
    expect((await visit(b, path, { _csrf: csrf, confirm: "yes" })).status).toBe(409);
    const again = await env.DB.prepare(
      "SELECT count(*) AS n FROM audit_log WHERE target = ? AND action = 'user.mfa_reset'",
    )
      .bind(`user:${u.id}`)
      .first<{ n: number }>();
    expect(again?.n).toBe(1);
  });

  it("the audit row and the reset are one batch: a failing audit insert leaves the factor in place", async () => {
    const admin = await signupAdmin();
    const u = await mfaUser();
    const { b, csrf } = await signIn(admin);
    // A trigger that fails this reset's audit insert: the whole batch must roll back.
    await env.DB.prepare(
      "CREATE TRIGGER IF NOT EXISTS test_fail_mfa_audit BEFORE INSERT ON audit_log " +
        `WHEN NEW.action = 'user.mfa_reset' AND NEW.target = 'user:${u.id}' ` +
        "BEGIN SELECT RAISE(ABORT, 'audit refused'); END",
    ).run();
    try {
      const res = await visit(b, `/admin/users/${u.id}/mfa-reset`, { _csrf: csrf, confirm: "yes" });
      expect(res.status).toBe(500);
      expect(await factorRows(u.id)).toBe(11);
    } finally {
      await env.DB.prepare("DROP TRIGGER IF EXISTS test_fail_mfa_audit").run();
    }
  });
});

describe("console: signing in with a second factor", () => {
  it("an admin with TOTP gives a code: refused without it or with a wrong one; the session is aal2", async () => {
    const a = await mfaUser();
    await promote(a.id);
    const refused = await signIn(a);
    expect(refused.res.status).toBe(401);
    expect(refused.home.status).toBe(303);
    const b: Browser = { cookies: new Map() };
    const form = await visit(b, "/admin/login");
    expect(form.html).toContain('name="code"');
    const wrong = await visit(b, "/admin/login", {
      _csrf: csrfOf(form.html),
      email: a.email,
      password: a.password,
      code: "000000",
    });
    expect(wrong.status).toBe(401);
    const ok = await visit(b, "/admin/login", {
      _csrf: csrfOf(wrong.html),
      email: a.email,
      password: a.password,
      code: await totp(a.secret),
    });
    expect(ok.status, ok.html).toBe(303);
    expect((await visit(b, "/admin")).status).toBe(200);
    const row = await env.DB.prepare(
      "SELECT aal FROM sessions WHERE user_id = ? AND user_agent LIKE 'Outpost console%' ORDER BY created_at DESC",
    )
      .bind(a.id)
      .first<{ aal: string }>();
    expect(row?.aal).toBe("aal2");
  });
});

describe("CONSOLE_REQUIRE_MFA", () => {
  it("the admin API wants an aal2 admin token; the service key and (without the setting) aal1 pass", async () => {
    const plain = await signupAdmin();
    const strong: MfaUser = await mfaUser();
    await promote(strong.id);
    const auth = (t: string) => ({ headers: { authorization: `Bearer ${t}` } });
    const r1 = await strictFetch("/v1/admin/users", auth(plain.accessToken));
    expect(r1.status).toBe(401);
    expect(JSON.parse(r1.text).code).toBe("mfa_required");
    const r2 = await strictFetch("/v1/admin/users", auth(strong.accessToken));
    expect(JSON.parse(r2.text).code).toBe("mfa_required");
    const s = await aal2Session(strong);
    expect((await strictFetch("/v1/admin/users", auth(s.accessToken))).status).toBe(200);
    expect((await strictFetch("/v1/admin/users", auth(env.SERVICE_KEY))).status).toBe(200);
    // A user who is not an admin still gets 403, whatever its aal.
    const nobody = await signup();
    expect((await strictFetch("/v1/admin/users", auth(nobody.accessToken))).status).toBe(403);
    // Without the setting, an aal1 admin token passes.
    expect((await api("/v1/admin/users", { token: plain.accessToken })).status).toBe(200);
    expectProblem(await api("/v1/admin/users", { token: "nope" }), 401, "unauthorized");
  });

  it("an admin with a factor needs aal2 on the admin API, setting or not (the enrolling session is aal1)", async () => {
    const strong: MfaUser = await mfaUser();
    await promote(strong.id);
    // strong.accessToken is the aal1 session that enrolled the factor.
    expectProblem(await api("/v1/admin/users", { token: strong.accessToken }), 401, "mfa_required");
    const s = await aal2Session(strong);
    expect((await api("/v1/admin/users", { token: s.accessToken })).status).toBe(200);
  });

  it("the console refuses an admin without a factor, and a session opened without a code", async () => {
    const plain = await signupAdmin();
    const jar: Browser = { cookies: new Map() };
    const form = await strictFetch("/admin/login", { cookies: jar });
    const loginCookie = form.headers.getSetCookie().map((c) => c.split(";")[0]!);
    for (const c of loginCookie) {
      const [k, v] = c.split("=");
      jar.cookies.set(k!, v!);
    }
    const res = await strictFetch("/admin/login", {
      method: "POST",
      cookies: jar,
      headers: { "content-type": "application/x-www-form-urlencoded", origin: "https://outpost.test" },
      body: new URLSearchParams({
        _csrf: csrfOf(form.text),
        email: plain.email,
        password: plain.password,
      }).toString(),
    });
    expect(res.status).toBe(401);
    expect(res.text).toContain("This console needs a second factor");
    // A console session opened while the setting was off (aal1) is not accepted once it is on.
    const { b } = await signIn(plain);
    expect((await visit(b, "/admin")).status).toBe(200);
    const strict = await strictFetch("/admin", { cookies: b });
    expect(strict.status).toBe(303);
    expect(strict.headers.get("location")).toBe("/admin/login");
  });
});
