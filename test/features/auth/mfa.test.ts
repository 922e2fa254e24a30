/**
 * Second factors (API.md v1.2): TOTP enrollment and confirmation, sign-ins that stop at
 * `mfaRequired`, `POST /v1/auth/mfa/verify` (clock skew, replay, recovery codes, wrong codes),
 * and the aal2 sessions it makes.
 */
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { api, expectProblem, freshIp, signup } from "../../helpers/api";
import { aal2Session, claimsOf, loginBody, mfaUser, RFC_SECRET, sessionCount, totp, verifyMfa } from "./mfa-helpers";

afterEach(() => {
  vi.useRealTimers();
});

/** Fakes the clock at the middle of a 30-second step some minutes ahead (later than any code used so far). */
function stepClock(minutesAhead = 10) {
  const t = (Math.floor((Date.now() + minutesAhead * 60_000) / 30_000) + 0.5) * 30_000;
  vi.useFakeTimers({ toFake: ["Date"], now: t });
  return t;
}

describe("mfa: the test's own TOTP", () => {
  it("matches RFC 6238's SHA-1 vector", async () => {
    // Appendix B: T = 59 s → 94287082 (8 digits); 6 digits are its last six.
    expect(await totp(RFC_SECRET, 59_000)).toBe("287082");
    expect(await totp(RFC_SECRET, 1_111_111_109_000)).toBe("081804");
  });
});

describe("mfa: enrollment", () => {
  it("a pending enrollment is replaced; confirming gives 10 codes; the secret is stored sealed", async () => {
    const u = await signup();
    const first = await api("/v1/auth/mfa/totp", { token: u.accessToken, body: {} });
    expect(first.status, first.text).toBe(201);
    expect(first.body.secret).toMatch(/^[A-Z2-7]{32}$/);
    const url = new URL(first.body.otpauthUrl);
    expect(url.protocol).toBe("otpauth:");
    expect(url.searchParams.get("secret")).toBe(first.body.secret);
    expect(decodeURIComponent(url.pathname)).toContain(u.email);
    const second = await api("/v1/auth/mfa/totp", { token: u.accessToken, body: {} });
    expect(second.status).toBe(201);
    expect(second.body.secret).not.toBe(first.body.secret);
    const row = await env.DB.prepare("SELECT * FROM mfa_totp WHERE user_id = ?").bind(u.id).first();
    expect(JSON.stringify(row)).not.toContain(second.body.secret);
    // Still no factor: login gives a session.
    expect((await loginBody(u)).session).toBeDefined();
    // The replaced secret's code is refused.
    expectProblem(
      await api("/v1/auth/mfa/totp/confirm", { token: u.accessToken, body: { code: await totp(first.body.secret) } }),
      401,
      "invalid_code",
    );
    const ok = await api("/v1/auth/mfa/totp/confirm", {
      token: u.accessToken,
      body: { code: await totp(second.body.secret) },
    });
    expect(ok.status, ok.text).toBe(200);
    const codes = ok.body.recoveryCodes as string[];
    expect(codes).toHaveLength(10);
    expect(new Set(codes).size).toBe(10);
    for (const c of codes) expect(c).toMatch(/^[a-z2-9]{5}-[a-z2-9]{5}$/);
    const stored = await env.DB.prepare("SELECT hash FROM mfa_recovery_codes WHERE user_id = ?").bind(u.id).all();
    expect(stored.results).toHaveLength(10);
    expect(JSON.stringify(stored.results)).not.toContain(codes[0]!.replace("-", ""));
    expect(JSON.stringify(stored.results)).not.toContain(codes[0]);
    // Confirmed: a new enrollment is refused (this aal1 session first meets the aal2 rule).
    expectProblem(await api("/v1/auth/mfa/totp", { token: u.accessToken, body: {} }), 401, "mfa_required");
  });

  it("confirm without an enrollment: 409; a guest cannot enroll", async () => {
    const u = await signup();
    expectProblem(
      await api("/v1/auth/mfa/totp/confirm", { token: u.accessToken, body: { code: "123456" } }),
      409,
      "conflict",
    );
    const guest = await api("/v1/auth/anonymous", { body: {} });
    expectProblem(
      await api("/v1/auth/mfa/totp", { token: guest.body.session.accessToken, body: {} }),
      403,
      "forbidden",
    );
  });
});

describe("mfa: signing in with a second factor", () => {
  it("login answers mfaRequired with no session; verify opens an aal2 session, once", async () => {
    const u = await mfaUser();
    const before = await sessionCount(u.id);
    const body = await loginBody(u);
    expect(body).toEqual({ mfaRequired: true, mfaToken: expect.any(String), methods: ["totp", "recovery"] });
    expect(await sessionCount(u.id)).toBe(before);
    // Only the hash of the mfaToken is stored.
    const rows = await env.DB.prepare("SELECT hash FROM mfa_challenges WHERE user_id = ?").bind(u.id).all();
    expect(JSON.stringify(rows.results)).not.toContain(body.mfaToken);
    const code = await totp(u.secret);
    const res = await verifyMfa(body.mfaToken, code);
    expect(res.status, res.text).toBe(200);
    expect(res.body.user.id).toBe(u.id);
    expect(claimsOf(res.body.session.accessToken).aal).toBe("aal2");
    expect(await sessionCount(u.id)).toBe(before + 1);
    const aal = await env.DB.prepare("SELECT aal FROM sessions WHERE user_id = ? ORDER BY created_at DESC")
      .bind(u.id)
      .first<{ aal: string }>();
    expect(aal?.aal).toBe("aal2");
    // The mfaToken works once.
    expectProblem(await verifyMfa(body.mfaToken, await totp(u.secret, Date.now(), 1)), 401, "invalid_code");
    // The password's own sessions stay aal1.
    expect(claimsOf(u.accessToken).aal).toBe("aal1");
  });

  it("clock skew: one step either side is accepted, two are refused; a used step is refused", async () => {
    const u = await mfaUser();
    const t = stepClock();
    for (const off of [-2, 2]) {
      const { mfaToken } = await loginBody(u);
      expectProblem(await verifyMfa(mfaToken, await totp(u.secret, t, off)), 401, "invalid_code");
    }
    const early = await loginBody(u);
    expect((await verifyMfa(early.mfaToken, await totp(u.secret, t, -1))).status).toBe(200);
    // The same code again (replay): refused.
    const replay = await loginBody(u);
    expectProblem(await verifyMfa(replay.mfaToken, await totp(u.secret, t, -1)), 401, "invalid_code");
    const late = await loginBody(u);
    expect((await verifyMfa(late.mfaToken, await totp(u.secret, t, 1))).status).toBe(200);
    // An earlier step than the last one used (the current step, after +1 was used): refused too.
    expectProblem(await verifyMfa(replay.mfaToken, await totp(u.secret, t, 0)), 401, "invalid_code");
    // Later, the next step works.
    vi.setSystemTime(t + 60_000);
    const next = await loginBody(u);
    expect((await verifyMfa(next.mfaToken, await totp(u.secret, t + 60_000, 0))).status).toBe(200);
  });

  it("recovery codes work once each, in any case and spacing", async () => {
    const u = await mfaUser();
    const [a, b] = u.recoveryCodes as [string, string];
    const first = await loginBody(u);
    const ok = await verifyMfa(first.mfaToken, a.toUpperCase());
    expect(ok.status, ok.text).toBe(200);
    expect(claimsOf(ok.body.session.accessToken).aal).toBe("aal2");
    const again = await loginBody(u);
    expectProblem(await verifyMfa(again.mfaToken, a), 401, "invalid_code");
    expect((await verifyMfa(again.mfaToken, b.replace("-", " "))).status).toBe(200);
    const left = await env.DB.prepare("SELECT count(*) AS n FROM mfa_recovery_codes WHERE user_id = ?")
      .bind(u.id)
      .first<{ n: number }>();
    expect(left?.n).toBe(8);
  });

  it("5 wrong codes end the mfaToken; it also expires after 5 minutes", async () => {
    const u = await mfaUser();
    const { mfaToken } = await loginBody(u);
    const right = await totp(u.secret);
    const wrong = String((Number(right) + 1) % 1_000_000).padStart(6, "0");
    for (let i = 0; i < 5; i++) expectProblem(await verifyMfa(mfaToken, wrong), 401, "invalid_code");
    expectProblem(await verifyMfa(mfaToken, right), 401, "invalid_code");
    // Four wrong codes leave it usable.
    const t = stepClock();
    const four = await loginBody(u);
    for (let i = 0; i < 4; i++) expectProblem(await verifyMfa(four.mfaToken, "nope-nope"), 401, "invalid_code");
    expect((await verifyMfa(four.mfaToken, await totp(u.secret, t))).status).toBe(200);
    const old = await loginBody(u);
    vi.setSystemTime(t + 5 * 60_000 + 1000);
    expectProblem(await verifyMfa(old.mfaToken, await totp(u.secret, t + 5 * 60_000 + 1000)), 401, "invalid_code");
  });

  it("a code of another user, or an unknown mfaToken, is refused", async () => {
    const alice = await mfaUser();
    const bob = await mfaUser();
    const { mfaToken } = await loginBody(alice);
    expectProblem(await verifyMfa(mfaToken, await totp(bob.secret)), 401, "invalid_code");
    expectProblem(await verifyMfa(mfaToken, bob.recoveryCodes[0]!), 401, "invalid_code");
    expectProblem(await verifyMfa(`mfa_${"A".repeat(43)}`, await totp(alice.secret)), 401, "invalid_code");
    // Bob's recovery code is still his.
    const his = await loginBody(bob);
    expect((await verifyMfa(his.mfaToken, bob.recoveryCodes[0]!)).status).toBe(200);
  });

  it("the per-user limit counts verifications of one user across client addresses", async () => {
    const u = await mfaUser();
    let refused = 0;
    // AUTH_LIMITER: 20 a minute per user.
    for (let i = 0; i < 24; i++) {
      const { mfaToken } = await loginBody(u);
      const res = await verifyMfa(mfaToken, "wrong-code", freshIp());
      if (res.status === 429) refused++;
      else expectProblem(res, 401, "invalid_code");
    }
    expect(refused).toBeGreaterThan(0);
  });

  it("a refresh keeps the session's aal", async () => {
    const u = await mfaUser();
    const s = await aal2Session(u);
    const r = await api("/v1/auth/refresh", { body: { refreshToken: s.refreshToken } });
    expect(r.status, r.text).toBe(200);
    expect(claimsOf(r.body.session.accessToken).aal).toBe("aal2");
    const plain = await api("/v1/auth/refresh", { body: { refreshToken: u.refreshToken } });
    expect(claimsOf(plain.body.session.accessToken).aal).toBe("aal1");
  });

  it("disabling TOTP needs a right code; after it, login opens a session directly", async () => {
    const u = await mfaUser();
    const s = await aal2Session(u);
    expectProblem(
      await api("/v1/auth/mfa/totp", { method: "DELETE", token: s.accessToken, body: { code: "000000x" } }),
      401,
      "invalid_code",
    );
    const del = await api("/v1/auth/mfa/totp", {
      method: "DELETE",
      token: s.accessToken,
      body: { code: u.recoveryCodes[3] },
    });
    expect(del.status, del.text).toBe(204);
    for (const t of ["mfa_totp", "mfa_recovery_codes"]) {
      const n = await env.DB.prepare(`SELECT count(*) AS n FROM ${t} WHERE user_id = ?`)
        .bind(u.id)
        .first<{ n: number }>();
      expect(n?.n).toBe(0);
    }
    expect((await loginBody(u)).session.accessToken).toBeDefined();
    expectProblem(
      await api("/v1/auth/mfa/totp", { method: "DELETE", token: s.accessToken, body: { code: "123456" } }),
      404,
      "not_found",
    );
  });
});
