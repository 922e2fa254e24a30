/**
 * Debug tokens (made, listed without their secret, exchanged, revoked; audited; admins only) and
 * the web's Turnstile exchange against the siteverify stand-in.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { primaryDb } from "../../../src/db";
import { appCheckParts } from "../../../src/features/app-check";
import { api, expectProblem, serviceKey, signup, standinRequests } from "../../helpers/api";
import { expectStrangersRefused } from "../../helpers/refusals";
import { TURNSTILE_TEST_SECRET } from "../../standins/turnstile";
import { signupAdmin } from "../admin/helpers";
import { call } from "./fixtures";

const BASE = "/v1/admin/app-check/debug-tokens";

describe("debug tokens", () => {
  it("an admin makes one (secret shown once), lists it, a device exchanges it, revoking ends exchanges", async () => {
    const admin = await signupAdmin();
    const made = await api(BASE, { body: { name: "CI simulator" }, token: admin.accessToken });
    expect(made.status, made.text).toBe(201);
    expect(made.body).toEqual({ id: expect.any(String), name: "CI simulator", debugToken: expect.any(String) });

    const list = await api(BASE, { token: serviceKey() });
    expect(list.status).toBe(200);
    const row = list.body.items.find((t: { id: string }) => t.id === made.body.id);
    expect(row).toMatchObject({ name: "CI simulator", createdBy: admin.id, lastUsedAt: null });
    expect(list.text).not.toContain(made.body.debugToken);
    expect(Object.keys(row).sort()).toEqual(["createdAt", "createdBy", "id", "lastUsedAt", "name"]);

    const ex = await api("/v1/app-check/debug", { body: { debugToken: made.body.debugToken } });
    expect(ex.status, ex.text).toBe(200);
    expect(ex.body).toEqual({ token: expect.stringMatching(/^ey/), expiresAt: expect.any(String), expiresIn: 3600 });
    const used = (await api(BASE, { token: serviceKey() })).body.items.find(
      (t: { id: string }) => t.id === made.body.id,
    );
    expect(used.lastUsedAt).not.toBeNull();

    const del = await api(`${BASE}/${made.body.id}`, { method: "DELETE", token: admin.accessToken });
    expect(del.status).toBe(204);
    expectProblem(
      await api("/v1/app-check/debug", { body: { debugToken: made.body.debugToken } }),
      401,
      "app_check_failed",
    );
    expectProblem(await api(`${BASE}/${made.body.id}`, { method: "DELETE", token: serviceKey() }), 404, "not_found");
    const after = (await api(BASE, { token: serviceKey() })).body.items;
    expect(after.some((t: { id: string }) => t.id === made.body.id)).toBe(false);

    const audit = await api("/v1/admin/audit", { token: serviceKey() });
    const actions = audit.body.items
      .filter((e: { target: string }) => e.target === `app_check_debug_token:${made.body.id}`)
      .map(
        (e: { action: string; actorId: string }) => `${e.action} by ${e.actorId === admin.id ? "admin" : e.actorId}`,
      );
    expect(actions.sort()).toEqual(["app_check.debug_token.create by admin", "app_check.debug_token.revoke by admin"]);
  });

  it("an unknown debug token is refused", async () => {
    expectProblem(await api("/v1/app-check/debug", { body: { debugToken: "opdbg_nope" } }), 401, "app_check_failed");
  });

  it("strangers and non-admins are refused on every admin route; the service key is let in", async () => {
    const user = await signup();
    const made = await api(BASE, { body: { name: "to keep" }, token: serviceKey() });
    expect(made.status).toBe(201);
    const routes = [
      { method: "POST", path: BASE, opts: { body: { name: "x" } } },
      { method: "GET", path: BASE },
      { method: "DELETE", path: `${BASE}/${made.body.id}` },
    ];
    for (const r of routes) {
      await expectStrangersRefused(r, user);
      const res = await api(r.path, { ...r.opts, method: r.method, token: user.accessToken });
      expectProblem(res, 403, "forbidden");
    }
    // Nothing was revoked by the refused calls.
    const list = (await api(BASE, { token: serviceKey() })).body.items;
    expect(list.some((t: { id: string }) => t.id === made.body.id)).toBe(true);
  });

  it("a name is required and unknown fields are refused", async () => {
    expectProblem(await api(BASE, { body: {}, token: serviceKey() }), 400, "validation_failed");
    expectProblem(await api(BASE, { body: { name: "a", secret: "x" }, token: serviceKey() }), 400, "validation_failed");
  });
});

describe("web: Turnstile", () => {
  const vars = {
    TURNSTILE_VERIFY_URL: `${env.STANDIN_URL}/turnstile/siteverify`,
    TURNSTILE_SECRET: TURNSTILE_TEST_SECRET,
  };

  it("a token siteverify accepts gets an app check token; the secret, token and address were sent", async () => {
    const res = await call("/v1/app-check/web", { body: { turnstileToken: "pass-abc-123" }, vars });
    expect(res.status, res.text).toBe(200);
    expect(res.body.token).toMatch(/^ey/);
    const sent = (await standinRequests("/turnstile")).map((r) => new URLSearchParams(r.body));
    const mine = sent.find((f) => f.get("response") === "pass-abc-123");
    expect(mine?.get("secret")).toBe(TURNSTILE_TEST_SECRET);
    expect(mine?.get("remoteip")).toMatch(/^10\./);
  });

  it("a token siteverify refuses, a wrong secret, or no secret at all: 401", async () => {
    const bad = await call("/v1/app-check/web", { body: { turnstileToken: "fail-1" }, vars });
    expectProblem(bad as never, 401, "app_check_failed");
    const wrong = await call("/v1/app-check/web", {
      body: { turnstileToken: "pass-2" },
      vars: { ...vars, TURNSTILE_SECRET: "other" },
    });
    expectProblem(wrong as never, 401, "app_check_failed");
    const none = await call("/v1/app-check/web", { body: { turnstileToken: "pass-3" } });
    expect(expectProblem(none as never, 401, "app_check_failed").detail).toMatch(/TURNSTILE_SECRET/);
  });
});

describe("challenges", () => {
  it("one address asking too often gets 429 rate_limited; another address is not affected", async () => {
    const ip = "203.0.113.91";
    let limited: Awaited<ReturnType<typeof api>> | undefined;
    for (let i = 0; i < 40 && !limited; i++) {
      const res = await api("/v1/app-check/challenge", { ip, body: {} });
      if (res.status === 429) limited = res;
      else expect(res.status).toBe(201);
    }
    expectProblem(limited!, 429, "rate_limited");
    expect(Number(limited!.headers.get("retry-after"))).toBeGreaterThan(0);
    expect((await api("/v1/app-check/challenge", { body: {} })).status).toBe(201);
  });

  it("the cron removes expired challenges and keeps live ones", async () => {
    const at = Date.now();
    await env.DB.prepare(
      "INSERT INTO appcheck_challenges (challenge, expires_at) VALUES ('old-one', ?), ('live-one', ?)",
    )
      .bind(at - 1000, at + 60_000)
      .run();
    for (const task of appCheckParts.cleanupTasks ?? []) await task(env, primaryDb(env.DB), new Date(at));
    const left = await env.DB.prepare(
      "SELECT challenge FROM appcheck_challenges WHERE challenge IN ('old-one', 'live-one')",
    ).all<{ challenge: string }>();
    expect(left.results.map((r) => r.challenge)).toEqual(["live-one"]);
  });
});
