/**
 * App integrity costs no D1 query on a guarded request: the same request with a valid
 * `Outpost-App-Check` token under enforce (and under monitor, which counts) makes exactly the
 * D1 round trips it makes with the guard off.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { app } from "../../src/router";
import { api, freshIp, serviceKey, signup } from "../helpers/api";
import { countingD1 } from "./counting-d1";

async function roundTrips(path: string, vars: Record<string, string>, headers: Record<string, string>, body?: unknown) {
  const { db, counter } = countingD1(env.DB);
  const h = new Headers(headers);
  h.set("cf-connecting-ip", freshIp());
  if (body !== undefined) h.set("content-type", "application/json");
  const req = new Request(`https://outpost.test${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers: h,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const ctx = createExecutionContext();
  const res = await app.fetch(req, { ...env, ...vars, DB: db }, ctx);
  await res.text();
  await waitOnExecutionContext(ctx);
  expect(res.status, `${path} ${JSON.stringify(vars)}: ${counter.describe()}`).toBeLessThan(300);
  return counter.roundTrips;
}

describe("query budget: app check", () => {
  it("a guarded request with a valid token makes no D1 query of its own", async () => {
    const made = await api("/v1/admin/app-check/debug-tokens", { body: { name: "budget" }, token: serviceKey() });
    const token = (await api("/v1/app-check/debug", { body: { debugToken: made.body.debugToken } })).body.token;
    const user = await signup();
    const auth = { authorization: `Bearer ${user.accessToken}`, "outpost-app-check": token };
    const off = { APP_CHECK_MODE: "off", APP_CHECK_GUARD: "all" };
    // Warm the isolate's token caches (revocation list) first.
    await roundTrips("/v1/me", off, auth);
    const base = await roundTrips("/v1/me", off, auth);
    expect(await roundTrips("/v1/me", { APP_CHECK_MODE: "enforce", APP_CHECK_GUARD: "all" }, auth)).toBe(base);
    expect(await roundTrips("/v1/me", { APP_CHECK_MODE: "monitor", APP_CHECK_GUARD: "all" }, auth)).toBe(base);
    const signIn = await roundTrips("/v1/auth/anonymous", off, {}, {});
    expect(
      await roundTrips("/v1/auth/anonymous", { APP_CHECK_MODE: "enforce" }, { "outpost-app-check": token }, {}),
    ).toBe(signIn);
  });
});
