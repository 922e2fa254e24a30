/**
 * App integrity in the SDK, against a Worker in enforce mode: the provider is asked once for a
 * proof (a debug token here, what a simulator or CI uses), the token is sent on sign-up and kept
 * for later requests, renewed before it expires, and fetched again once on `app_check_failed`.
 */

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AppCheckProof } from "../src/index.js";
import { client, email, type Net, PASSWORD } from "./helpers.js";
import { SERVICE_KEY, startWorker } from "./worker.mjs";

let guarded: Awaited<ReturnType<typeof startWorker>>;
let debugToken: string;
beforeAll(async () => {
  guarded = await startWorker({ build: false, vars: { APP_CHECK_MODE: "enforce", APP_CHECK_GUARD: "all" } });
  const res = await fetch(`${guarded.url}/v1/admin/app-check/debug-tokens`, {
    method: "POST",
    headers: { authorization: `Bearer ${SERVICE_KEY}`, "content-type": "application/json" },
    body: JSON.stringify({ name: "sdk test" }),
  });
  debugToken = ((await res.json()) as { debugToken: string }).debugToken;
});
afterAll(() => guarded?.dispose());

const sent = (net: Net, path: string) => net.log.filter((e) => e.path === path);

describe("appCheck option", () => {
  it("without it, an enforcing server refuses sign-up with app_check_failed", async () => {
    const c = client({ url: guarded.url });
    await expect(c.auth.signUp({ email: email("ac"), password: PASSWORD })).rejects.toMatchObject({
      status: 401,
      code: "app_check_failed",
    });
  });

  it("asks the provider once, sends the token on every request, keeps it until near its expiry", async () => {
    const challenges: string[] = [];
    let clock = Date.now();
    const provider = async (challenge: string): Promise<AppCheckProof> => {
      challenges.push(challenge);
      return { platform: "debug", debugToken };
    };
    const c = client({ url: guarded.url, appCheck: provider, now: () => clock });
    await c.auth.signUp({ email: email("ac"), password: PASSWORD });
    await c.auth.me();
    expect(c.user?.email).toMatch(/@sdk\.test$/);
    expect(challenges).toHaveLength(1);
    expect(challenges[0]).toMatch(/^[A-Za-z0-9_-]{40,}$/);
    expect(sent(c.net, "/v1/app-check/challenge")).toHaveLength(1);
    // 56 minutes on, the 1-hour token is within the renewal margin: a new one before the next request.
    clock += 56 * 60_000;
    await c.auth.me();
    expect(challenges).toHaveLength(2);
    expect(sent(c.net, "/v1/app-check/debug").map((e) => e.status)).toEqual([200, 200]);
  });

  it("a refused proof: the request is refused, the provider asked again once, the request retried", async () => {
    let calls = 0;
    const provider = async (): Promise<AppCheckProof> => {
      calls++;
      // The first proof is refused by the server (an unknown debug token); the second is good.
      return { platform: "debug", debugToken: calls === 1 ? "opdbg_unknown" : debugToken };
    };
    const c = client({ url: guarded.url, appCheck: provider });
    await c.auth.signUp({ email: email("ac"), password: PASSWORD });
    expect(calls).toBe(2);
    const signups = sent(c.net, "/v1/auth/signup").map((e) => e.status);
    expect(signups).toEqual([401, 201]);
  });

  it("a provider that keeps failing: one retry, then the refusal reaches the app", async () => {
    let calls = 0;
    const c = client({
      url: guarded.url,
      appCheck: async () => {
        calls++;
        throw new Error("App Attest is not supported on this device");
      },
    });
    await expect(c.auth.signUp({ email: email("ac"), password: PASSWORD })).rejects.toMatchObject({
      code: "app_check_failed",
    });
    expect(calls).toBe(2);
  });
});
