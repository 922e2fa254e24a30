/**
 * The guard: off lets everything through; enforce refuses a missing, tampered, expired or foreign
 * token on the guarded routes only (auth: sign-in and sign-up; all: every /v1 route but health,
 * app-check and the API document); monitor never refuses and counts what it saw per platform
 * and reason, flushed in coalesced batches.
 */
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { api, expectProblem, serviceKey, signup, uniqueEmail } from "../../helpers/api";
import { signWithWrongKey, tamperPayload } from "../../helpers/tokens";
import { call, type Vars } from "./fixtures";

const H = "outpost-app-check";
const enforce: Vars = { APP_CHECK_MODE: "enforce" };
const enforceAll: Vars = { APP_CHECK_MODE: "enforce", APP_CHECK_GUARD: "all" };
const monitor: Vars = { APP_CHECK_MODE: "monitor", APP_CHECK_GUARD: "all" };

async function appCheckToken(): Promise<string> {
  const made = await api("/v1/admin/app-check/debug-tokens", { body: { name: "guard test" }, token: serviceKey() });
  const ex = await api("/v1/app-check/debug", { body: { debugToken: made.body.debugToken } });
  if (ex.status !== 200) throw new Error(ex.text);
  return ex.body.token;
}
const token = await appCheckToken();

afterEach(() => vi.useRealTimers());

describe("modes", () => {
  it("off (the default): sign-up without a token works", async () => {
    expect(env.APP_CHECK_MODE).toBe("off");
    const res = await call("/v1/auth/anonymous", { body: {} });
    expect(res.status, res.text).toBe(201);
  });

  it("enforce: every sign-in and sign-up route needs a valid token", async () => {
    const email = uniqueEmail();
    const routes: [string, object][] = [
      ["/v1/auth/signup", { email, password: "correct horse battery" }],
      ["/v1/auth/login", { email, password: "correct horse battery" }],
      ["/v1/auth/anonymous", {}],
      ["/v1/auth/idtoken", { provider: "apple", idToken: "x" }],
      ["/v1/auth/link", { email: uniqueEmail(), password: "correct horse battery" }],
    ];
    for (const [path, body] of routes) {
      const res = await call(path, { body, vars: enforce });
      expect(expectProblem(res as never, 401, "app_check_failed").detail, path).toMatch(/Outpost-App-Check: missing/);
    }
    const up = await call("/v1/auth/signup", { body: routes[0]![1], vars: enforce, headers: { [H]: token } });
    expect(up.status, up.text).toBe(201);
    const login = await call("/v1/auth/login", { body: routes[1]![1], vars: enforce, headers: { [H]: token } });
    expect(login.status, login.text).toBe(200);
  });

  it("enforce guards the email-code and OAuth exchanges; OAuth's browser redirects stay open", async () => {
    const verifier = "v".repeat(43);
    const exchanges: [string, object][] = [
      ["/v1/auth/otp/verify", { email: uniqueEmail(), code: "000000" }],
      ["/v1/auth/otp/verify", { token: "no-such-link-token" }],
      ["/v1/auth/oauth/exchange", { code: "no-such-code", codeVerifier: verifier }],
    ];
    for (const [path, body] of exchanges) {
      const res = await call(path, { body, vars: enforce });
      expectProblem(res as never, 401, "app_check_failed");
      const passed = await call(path, { body, vars: enforce, headers: { [H]: token } });
      expectProblem(passed as never, 401, "invalid_code");
    }
    // A browser cannot add a header to a redirect: start and callback are open even under `all`.
    const q = new URLSearchParams({ redirectUri: "myapp://auth/callback", codeChallenge: "c".repeat(43), state: "s" });
    const start = await call(`/v1/auth/oauth/google/start?${q}`, { vars: enforceAll });
    expect(start.status, start.text).toBe(302);
    const back = await call("/v1/auth/oauth/google/callback?state=unknown&code=x", { vars: enforceAll });
    expectProblem(back as never, 400, "invalid_token");
    const posted = await call("/v1/auth/oauth/apple/callback", {
      method: "POST",
      vars: enforceAll,
      headers: { "content-type": "application/x-www-form-urlencoded" },
    });
    expectProblem(posted as never, 400, "invalid_token");
  });

  it("enforce refuses a tampered, expired, foreign or unsigned token", async () => {
    const accessToken = (await signup()).accessToken;
    const bad = [
      tamperPayload(token, { plat: "apple" }),
      await signWithWrongKey({ plat: "debug" }),
      accessToken,
      "not-a-token",
    ];
    for (const t of bad) {
      const res = await call("/v1/auth/anonymous", { body: {}, vars: enforce, headers: { [H]: t } });
      expect(expectProblem(res as never, 401, "app_check_failed").detail).toMatch(/not valid/);
    }
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.now() + 3601_000);
    const late = await call("/v1/auth/anonymous", { body: {}, vars: enforce, headers: { [H]: token } });
    expect(expectProblem(late as never, 401, "app_check_failed").detail).toMatch(/expired/);
  });

  it("guard auth leaves other routes alone; guard all covers all but health, app-check and the API doc", async () => {
    const user = await signup();
    const auth = { authorization: `Bearer ${user.accessToken}` };
    expect((await call("/v1/me", { vars: enforce, headers: auth })).status).toBe(200);
    expect((await call("/v1/auth/refresh", { body: { refreshToken: user.refreshToken }, vars: enforce })).status).toBe(
      200,
    );
    expectProblem((await call("/v1/me", { vars: enforceAll, headers: auth })) as never, 401, "app_check_failed");
    expect((await call("/v1/me", { vars: enforceAll, headers: { ...auth, [H]: token } })).status).toBe(200);
    expect((await call("/v1/health", { vars: enforceAll })).status).toBe(200);
    expect((await call("/v1/openapi.json", { vars: enforceAll })).status).toBe(200);
    expect((await call("/v1/app-check/challenge", { body: {}, vars: enforceAll })).status).toBe(201);
    // The service key is a server, not an app: never guarded.
    const service = { authorization: `Bearer ${serviceKey()}` };
    expect((await call("/v1/admin/app-check/debug-tokens", { vars: enforceAll, headers: service })).status).toBe(200);
    const preflight = await call("/v1/me", {
      method: "OPTIONS",
      vars: enforceAll,
      headers: { origin: "https://app.example.com", "access-control-request-method": "GET" },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("access-control-allow-headers")?.toLowerCase()).toContain(H);
  });

  it("a bad mode fails closed", async () => {
    const res = await call("/v1/auth/anonymous", { body: {}, vars: { APP_CHECK_MODE: "on" } });
    expectProblem(res as never, 500, "misconfigured");
  });
});

describe("monitor", () => {
  /** What D1 holds of the counts (the console's App integrity page reads the same rows). */
  async function counts(): Promise<Map<string, number>> {
    const rows = await env.DB.prepare("SELECT platform, reason, count FROM appcheck_counts").all<{
      platform: string;
      reason: string;
      count: number;
    }>();
    const out = new Map<string, number>();
    for (const r of rows.results)
      out.set(`${r.platform}:${r.reason}`, (out.get(`${r.platform}:${r.reason}`) ?? 0) + r.count);
    return out;
  }
  const base = Date.now() + 600_000;
  let shift = 0;
  /** Moves the (frozen) clock past the flush interval and makes one guarded request: it writes the isolate's counts. */
  async function flush(): Promise<void> {
    shift += 31_000;
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(base + shift);
    await call("/v1/health/none", { vars: monitor });
  }

  it("never refuses, counts pass and fail per platform and reason, and writes them in one batch later", async () => {
    await flush(); // the isolate's first count only starts its clock
    await flush();
    const before = await counts();
    for (let i = 0; i < 3; i++)
      expect((await call("/v1/auth/anonymous", { body: {}, vars: monitor })).status).toBe(201);
    const h = { [H]: token };
    for (let i = 0; i < 2; i++)
      expect((await call("/v1/auth/anonymous", { body: {}, vars: monitor, headers: h })).status).toBe(201);
    expect((await call("/v1/auth/anonymous", { body: {}, vars: monitor, headers: { [H]: "junk" } })).status).toBe(201);
    // Not written yet: counting adds no D1 write to a request.
    expect(await counts()).toEqual(before);
    await flush();
    const after = await counts();
    const diff = (k: string) => (after.get(k) ?? 0) - (before.get(k) ?? 0);
    expect(diff("none:missing")).toBe(4); // three sign-ups and the flushing request
    expect(diff("debug:ok")).toBe(2);
    expect(diff("none:invalid")).toBe(1);
    const days = await env.DB.prepare("SELECT DISTINCT day FROM appcheck_counts").all<{ day: string }>();
    expect(days.results.map((d) => d.day)).toContain(new Date().toISOString().slice(0, 10));
  });
});
