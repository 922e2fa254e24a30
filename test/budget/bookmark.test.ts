/**
 * Read replicas (D1 Sessions API): every request runs in one D1 session; a response that touched
 * D1 carries `Outpost-Bookmark`; a request that sends a bookmark back opens its session with it
 * (read-your-writes). Locally there is one copy of the database, so these tests check the protocol
 * through the counting binding: which constraint each session was opened with.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { app } from "../../src/router";
import { api, freshIp, signup, type TestUser } from "../helpers/api";
import { countingD1 } from "./counting-d1";

const BOOKMARK = /^[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{32}$/;

async function call(
  path: string,
  init: { method?: string; token?: string; body?: unknown; headers?: Record<string, string> } = {},
) {
  const { db, counter } = countingD1(env.DB);
  const headers = new Headers(init.headers);
  headers.set("cf-connecting-ip", freshIp());
  if (init.token) headers.set("authorization", `Bearer ${init.token}`);
  if (init.body !== undefined) headers.set("content-type", "application/json");
  const req = new Request(`https://outpost.test${path}`, {
    method: init.method ?? (init.body !== undefined ? "POST" : "GET"),
    headers,
    body: init.body !== undefined ? JSON.stringify(init.body) : undefined,
  });
  const ctx = createExecutionContext();
  const res = await app.fetch(req, { ...env, DB: db }, ctx);
  const text = await res.text();
  await waitOnExecutionContext(ctx);
  return { res, body: text ? JSON.parse(text) : null, counter, bookmark: res.headers.get("outpost-bookmark") };
}

let user: TestUser;
beforeAll(async () => {
  user = await signup();
});

describe("Outpost-Bookmark", () => {
  it("comes back on responses that touched D1 (reads, writes, errors after a query)", async () => {
    const read = await call("/v1/auth/sessions", { token: user.accessToken });
    expect(read.res.status).toBe(200);
    expect(read.bookmark).toMatch(BOOKMARK);

    const write = await call("/v1/collections/notes/records", {
      token: user.accessToken,
      body: { title: "bookmarked" },
    });
    expect(write.res.status).toBe(201);
    expect(write.bookmark).toMatch(BOOKMARK);

    const missing = await call("/v1/collections/notes/records/01900000-0000-7000-8000-000000000000", {
      token: user.accessToken,
    });
    expect(missing.res.status).toBe(404);
    expect(missing.counter.roundTrips).toBe(1);
    expect(missing.bookmark).toMatch(BOOKMARK);
  });

  it("is absent when the request never reached D1", async () => {
    const bad = await call("/v1/auth/logout", { token: user.accessToken, body: { unexpected: 1 } });
    expect(bad.res.status).toBe(400);
    expect(bad.counter.roundTrips).toBe(0);
    expect(bad.bookmark).toBeNull();
  });

  it("a request without one opens an unconstrained session (reads may go to the nearest replica)", async () => {
    const r = await call("/v1/auth/sessions", { token: user.accessToken });
    expect(r.counter.sessions).toEqual(["first-unconstrained"]);
  });

  it("a request that sends one back opens its session with exactly that bookmark (read-your-writes)", async () => {
    const created = await call("/v1/collections/notes/records", {
      token: user.accessToken,
      body: { title: "read me back" },
    });
    const bookmark = created.bookmark!;
    const read = await call(`/v1/collections/notes/records/${created.body.id}`, {
      token: user.accessToken,
      headers: { "outpost-bookmark": bookmark },
    });
    expect(read.counter.sessions).toEqual([bookmark]);
    expect(read.res.status).toBe(200);
    expect(read.body.title).toBe("read me back");
    // The session moves on from the bookmark it was given, never back.
    expect(read.bookmark! >= bookmark).toBe(true);
  });

  it("a malformed bookmark is ignored, never handed to D1 and never a 500", async () => {
    for (const junk of [
      "garbage",
      "first-primary",
      "00000000-00000003-00000000",
      "'; DROP TABLE users; --",
      `${"0".repeat(8)}-${"0".repeat(8)}-${"0".repeat(8)}-${"g".repeat(32)}`,
      "x".repeat(5000),
    ]) {
      const r = await call("/v1/auth/sessions", { token: user.accessToken, headers: { "outpost-bookmark": junk } });
      expect(r.res.status, junk).toBe(200);
      expect(r.counter.sessions, junk).toEqual(["first-unconstrained"]);
      expect(r.bookmark, junk).toMatch(BOOKMARK);
    }
  });

  it("token rotation and sign-in read from the primary, so a lagging replica cannot sign a user out", async () => {
    const fresh = await signup();
    const r = await call("/v1/auth/refresh", { body: { refreshToken: fresh.refreshToken } });
    expect(r.res.status).toBe(200);
    expect(r.counter.sessions).toEqual(["first-primary"]);
    expect(r.bookmark).toMatch(BOOKMARK);
    const login = await call("/v1/auth/login", { body: { email: fresh.email, password: fresh.password } });
    expect(login.res.status).toBe(200);
    expect(login.counter.sessions).toEqual(["first-primary"]);
  });

  it("browsers may send it and read it (CORS)", async () => {
    const pre = await api("/v1/collections/notes/records", {
      method: "OPTIONS",
      headers: {
        origin: "https://app.example",
        "access-control-request-method": "GET",
        "access-control-request-headers": "authorization, outpost-bookmark",
      },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get("access-control-allow-headers")?.toLowerCase()).toContain("outpost-bookmark");
    const res = await api("/v1/health", { headers: { origin: "https://app.example" } });
    expect(res.headers.get("access-control-expose-headers")?.toLowerCase()).toContain("outpost-bookmark");
    expect(res.headers.get("outpost-bookmark")).toMatch(BOOKMARK);
  });
});
