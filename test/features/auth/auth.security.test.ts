import { describe, expect, it } from "vitest";
import { limits } from "../../../src/config";
import { api, expectProblem, serviceKey, signup, uniqueEmail } from "../../helpers/api";
import { latestMailTo } from "../../helpers/outbox";
import { signWithServerKey, signWithWrongKey, tamperPayload, unsignedToken } from "../../helpers/tokens";

const protectedRoutes: [string, string, unknown?][] = [
  ["GET", "/v1/me"],
  ["PATCH", "/v1/me", { name: "x" }],
  ["DELETE", "/v1/me"],
  ["GET", "/v1/auth/sessions"],
  ["DELETE", "/v1/auth/sessions/some-id"],
  ["POST", "/v1/auth/logout", {}],
  ["POST", "/v1/auth/link", { email: "a@example.com", password: "long enough" }],
  ["POST", "/v1/auth/password", { currentPassword: "x", newPassword: "long enough" }],
  ["POST", "/v1/auth/verify-email", {}],
];

describe("auth: tokens that must be refused", async () => {
  for (const [method, path, body] of protectedRoutes) {
    it(`${method} ${path} refuses no token, garbage, forged, alg:none, tampered and expired tokens`, async () => {
      const u = await signup();
      const claims = { sub: u.id, sid: "s", anon: false };
      const bad: [string | null, string][] = [
        [null, "unauthorized"],
        ["garbage", "unauthorized"],
        ["a.b.c", "unauthorized"],
        [await signWithWrongKey(claims), "unauthorized"],
        [unsignedToken(claims), "unauthorized"],
        [tamperPayload(u.accessToken, { sub: "01900000-0000-7000-8000-000000000000" }), "unauthorized"],
        [await signWithServerKey(claims, { exp: Math.floor(Date.now() / 1000) - 60 }), "token_expired"],
        [await signWithServerKey(claims, { exp: "10m", aud: "someone-else" }), "unauthorized"],
      ];
      for (const [token, code] of bad) {
        const res = await api(path, { method, token, ...(body !== undefined ? { body } : {}) });
        expectProblem(res, 401, code);
      }
    });
  }

  it("the service key cannot act as a user on /v1/me", async () => {
    expectProblem(await api("/v1/me", { token: serviceKey() }), 403, "forbidden");
  });
});

describe("auth: sessions and refresh tokens", () => {
  it("reusing a token rotated two steps back → 401 refresh_token_reused and the whole session is revoked", async () => {
    const u = await signup();
    const r1 = await api("/v1/auth/refresh", { body: { refreshToken: u.refreshToken } });
    expect(r1.status).toBe(200);
    const r2 = await api("/v1/auth/refresh", { body: { refreshToken: r1.body.session.refreshToken } });
    expect(r2.status).toBe(200);
    // u.refreshToken is no longer the token that was just rotated: no grace, even within 10 s.
    expectProblem(
      await api("/v1/auth/refresh", { body: { refreshToken: u.refreshToken } }),
      401,
      "refresh_token_reused",
    );
    // The thief's replay killed the session: the legitimate newer token is dead too.
    expect((await api("/v1/auth/refresh", { body: { refreshToken: r2.body.session.refreshToken } })).status).toBe(401);
  });

  it("a refresh retried within 10 s (the answer was lost) → 200 with the same working session, not reuse", async () => {
    const u = await signup();
    const first = await api("/v1/auth/refresh", { body: { refreshToken: u.refreshToken } });
    expect(first.status).toBe(200);
    const retry = await api("/v1/auth/refresh", { body: { refreshToken: u.refreshToken } });
    expect(retry.status, retry.text).toBe(200);
    expect(retry.body.session.refreshToken).toBe(first.body.session.refreshToken);
    expect((await api("/v1/me", { token: retry.body.session.accessToken })).body.id).toBe(u.id);
    // The session goes on: the (one) new refresh token rotates as usual.
    const next = await api("/v1/auth/refresh", { body: { refreshToken: retry.body.session.refreshToken } });
    expect(next.status).toBe(200);
    expect((await api("/v1/me", { token: next.body.session.accessToken })).status).toBe(200);
  });

  it("a rotated token used over 10 s after rotation → 401 refresh_token_reused, session revoked", async () => {
    const u = await signup();
    const first = await api("/v1/auth/refresh", { body: { refreshToken: u.refreshToken } });
    expect(first.status).toBe(200);
    const { env } = await import("cloudflare:workers");
    // The rotation happened 11 s ago (set the stored time back instead of sleeping).
    const { meta } = await env.DB.prepare("UPDATE sessions SET rotated_at = ? WHERE user_id = ?")
      .bind(new Date(Date.now() - (limits.refreshGraceSec + 1) * 1000).toISOString(), u.id)
      .run();
    expect(meta.changes).toBe(1);
    expectProblem(
      await api("/v1/auth/refresh", { body: { refreshToken: u.refreshToken } }),
      401,
      "refresh_token_reused",
    );
    expect((await api("/v1/auth/refresh", { body: { refreshToken: first.body.session.refreshToken } })).status).toBe(
      401,
    );
    expect(
      (await env.DB.prepare("SELECT count(*) AS n FROM sessions WHERE user_id = ?").bind(u.id).first<{ n: number }>())
        ?.n,
    ).toBe(0);
  });

  it("concurrent refreshes with the same token all succeed with the same new token, and it works", async () => {
    const u = await signup();
    const results = await Promise.all(
      [1, 2, 3].map(() => api("/v1/auth/refresh", { body: { refreshToken: u.refreshToken } })),
    );
    for (const r of results) expect(r.status, r.text).toBe(200);
    expect(new Set(results.map((r) => r.body.session.refreshToken)).size).toBe(1);
    const next = await api("/v1/auth/refresh", { body: { refreshToken: results[0]!.body.session.refreshToken } });
    expect(next.status).toBe(200);
    const { env } = await import("cloudflare:workers");
    expect(
      (await env.DB.prepare("SELECT count(*) AS n FROM sessions WHERE user_id = ?").bind(u.id).first<{ n: number }>())
        ?.n,
    ).toBe(1);
  });

  it("a made-up refresh token → 401 session_revoked (no session has it)", async () => {
    expectProblem(await api("/v1/auth/refresh", { body: { refreshToken: "rt_made_up" } }), 401, "session_revoked");
  });

  // Its own code (not a generic unauthorized): the app knows to sign in again.
  it("the refresh token of a signed-out or revoked session → 401 session_revoked", async () => {
    const u = await signup();
    expect((await api("/v1/auth/logout", { body: {}, token: u.accessToken })).status).toBe(204);
    expectProblem(await api("/v1/auth/refresh", { body: { refreshToken: u.refreshToken } }), 401, "session_revoked");
    const other = await signup();
    const [mine] = (await api("/v1/auth/sessions", { token: other.accessToken })).body.items;
    expect((await api(`/v1/auth/sessions/${mine.id}`, { method: "DELETE", token: other.accessToken })).status).toBe(
      204,
    );
    expectProblem(
      await api("/v1/auth/refresh", { body: { refreshToken: other.refreshToken } }),
      401,
      "session_revoked",
    );
  });

  it("another user's session id → 404, and that session survives", async () => {
    const alice = await signup();
    const bob = await signup();
    const bobs = await api("/v1/auth/sessions", { token: bob.accessToken });
    const bobSession = bobs.body.items[0].id as string;
    expectProblem(
      await api(`/v1/auth/sessions/${bobSession}`, { method: "DELETE", token: alice.accessToken }),
      404,
      "not_found",
    );
    expect((await api("/v1/auth/refresh", { body: { refreshToken: bob.refreshToken } })).status).toBe(200);
  });

  it("refresh tokens are stored only as hashes (the first one and the derived successors)", async () => {
    const u = await signup();
    const rotated = (await api("/v1/auth/refresh", { body: { refreshToken: u.refreshToken } })).body.session
      .refreshToken as string;
    const { env } = await import("cloudflare:workers");
    const rows = await env.DB.prepare("SELECT refresh_hash FROM sessions").all<{ refresh_hash: string }>();
    expect(rows.results.length).toBeGreaterThan(0);
    for (const token of [u.refreshToken, rotated]) {
      for (const r of rows.results) expect(r.refresh_hash).not.toContain(token);
      const raw = await env.DB.prepare("SELECT count(*) AS n FROM refresh_tokens WHERE hash = ?")
        .bind(token)
        .first<{ n: number }>();
      expect(raw?.n).toBe(0);
    }
    const all = JSON.stringify((await env.DB.prepare("SELECT * FROM refresh_tokens").all()).results);
    expect(all).not.toContain(rotated.slice(3));
    // What is stored is their hashes: the session holds the current one, the log both.
    const { hashToken } = await import("../../../src/lib/crypto");
    const [first, second] = [await hashToken(u.refreshToken), await hashToken(rotated)];
    expect(rows.results.map((r) => r.refresh_hash)).toContain(second);
    for (const h of [first, second]) {
      expect(
        (await env.DB.prepare("SELECT count(*) AS n FROM refresh_tokens WHERE hash = ?").bind(h).first<{ n: number }>())
          ?.n,
      ).toBe(1);
    }
  });

  it("passwords are stored as PBKDF2-SHA256 with 100,000 iterations and a per-user salt", async () => {
    const a = await signup({ password: "same password" });
    const b = await signup({ password: "same password" });
    const { env } = await import("cloudflare:workers");
    const rows = await env.DB.prepare("SELECT password_hash FROM users WHERE id IN (?, ?)")
      .bind(a.id, b.id)
      .all<{ password_hash: string }>();
    const [h1, h2] = rows.results.map((r) => r.password_hash);
    expect(h1).toMatch(/^pbkdf2-sha256\$100000\$[\w-]{22}\$[\w-]{43}$/);
    expect(h1).not.toBe(h2);
  });
});

describe("auth: no account enumeration", () => {
  it("login answers the same for an unknown email and a wrong password, in about the same time", async () => {
    const u = await signup();
    const time = async (email: string) => {
      const t0 = performance.now();
      const res = await api("/v1/auth/login", { body: { email, password: "wrong password" } });
      return { ms: performance.now() - t0, res };
    };
    const unknown: number[] = [];
    const wrong: number[] = [];
    for (let i = 0; i < 5; i++) {
      const a = await time(uniqueEmail("ghost"));
      const b = await time(u.email);
      expectProblem(a.res, 401, "invalid_credentials");
      expectProblem(b.res, 401, "invalid_credentials");
      expect(a.res.body.detail).toBe(b.res.body.detail);
      unknown.push(a.ms);
      wrong.push(b.ms);
    }
    const median = (xs: number[]) => xs.sort((x, y) => x - y)[2]!;
    // Both paths run a full 100,000-iteration PBKDF2; a skipped hash would be ~100x faster.
    const ratio = median(unknown) / median(wrong);
    expect(ratio).toBeGreaterThan(0.33);
    expect(ratio).toBeLessThan(3);
  });

  // Alike: same status, body and content type.
  it("password-reset answers 202 alike for unknown and known emails; only the known one gets mail", async () => {
    const u = await signup();
    const ghost = uniqueEmail("ghost");
    const unknown = await api("/v1/auth/password-reset", { body: { email: ghost }, settle: true });
    const known = await api("/v1/auth/password-reset", { body: { email: u.email }, settle: true });
    const shape = (r: typeof known) => ({ status: r.status, text: r.text, type: r.headers.get("content-type") });
    expect(shape(unknown)).toEqual({ status: 202, text: "", type: null });
    expect(shape(known)).toEqual(shape(unknown));
    // The difference is only in what happens after the answer (waitUntil, awaited by `settle`).
    expect(await latestMailTo(ghost)).toBeUndefined();
    expect((await latestMailTo(u.email))?.subject).toMatch(/reset/i);
  });
});

describe("auth: rate limits", () => {
  it("too many logins from one address → 429 rate_limited with Retry-After", async () => {
    const ip = "203.0.113.77";
    let limited: Awaited<ReturnType<typeof api>> | undefined;
    for (let i = 0; i < 40 && !limited; i++) {
      const res = await api("/v1/auth/login", {
        ip,
        body: { email: "nobody@example.com", password: "wrong password" },
      });
      if (res.status === 429) limited = res;
      else expect(res.status).toBe(401);
    }
    expect(limited).toBeDefined();
    expectProblem(limited!, 429, "rate_limited");
    expect(Number(limited!.headers.get("retry-after"))).toBeGreaterThan(0);
    // Another address is not affected.
    expect(
      (await api("/v1/auth/login", { body: { email: "nobody@example.com", password: "wrong password" } })).status,
    ).toBe(401);
  });
});
