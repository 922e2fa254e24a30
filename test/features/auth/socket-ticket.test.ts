/**
 * `POST /v1/auth/socket-ticket`: a single-use, 30-second ticket accepted as `?ticket=` by every
 * WebSocket route (the shared `requireSocketUser` middleware), so access tokens stay out of URLs.
 */
import { env, exports } from "cloudflare:workers";
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { getConfig, limits } from "../../../src/config";
import { createDb } from "../../../src/db";
import type { AppEnv } from "../../../src/env";
import { problem, toAppError } from "../../../src/errors";
import { requireSocketUser, userOf } from "../../../src/features/auth/middleware";
import { socketTicketCleanup } from "../../../src/features/auth/sessions";
import { hashToken } from "../../../src/lib/crypto";
import { api, expectProblem, freshIp, serviceKey, signup, type TestUser } from "../../helpers/api";
import { signWithServerKey, signWithWrongKey, tamperPayload, unsignedToken } from "../../helpers/tokens";
import { createGroup, Socket } from "../chat/helpers";

async function ticketFor(token: string) {
  const res = await api("/v1/auth/socket-ticket", { token, body: {} });
  expect(res.status, res.text).toBe(201);
  return res.body as { ticket: string; expiresAt: string };
}

/** A stand-alone app with only the shared middleware: what any socket route would see as its caller. */
const probe = new Hono<AppEnv>()
  .use(async (c, next) => {
    c.set("config", getConfig(c.env));
    c.set("db", createDb(c.env.DB));
    c.set("principal", null);
    await next();
  })
  .get("/probe", requireSocketUser, (c) => c.json(userOf(c)));
probe.onError((err) => problem(toAppError(err)));

async function callProbe(query: string, headers: Record<string, string> = {}) {
  const res = await probe.request(`/probe${query}`, { headers }, env);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const claimsOf = (accessToken: string) =>
  JSON.parse(atob(accessToken.split(".")[1]!.replaceAll("-", "+").replaceAll("_", "/"))) as {
    sub: string;
    sid: string;
  };

/** A room socket upgrade authenticated only by the query string; refusals come back parsed like `api()`'s. */
async function wsUpgrade(roomId: string, query: string) {
  const res = await exports.default.fetch(
    new Request(`https://outpost.test/v1/rooms/${roomId}/ws${query}`, { headers: { upgrade: "websocket" } }),
  );
  const text = res.status === 101 ? "" : await res.text();
  return {
    status: res.status,
    headers: res.headers,
    text,
    body: text ? JSON.parse(text) : null,
    webSocket: res.webSocket,
  };
}

describe("socket tickets: the happy path", () => {
  it("201 { ticket, expiresAt } valid for 30 s; the room socket accepts it once", async () => {
    const alice = await signup();
    const room = await createGroup(alice);
    const before = Date.now();
    const { ticket, expiresAt } = await ticketFor(alice.accessToken);
    expect(ticket).toMatch(/^st_[\w-]{43}$/);
    const ttl = Date.parse(expiresAt) - before;
    expect(ttl).toBeGreaterThan((limits.socketTicketTtlSec - 5) * 1000);
    expect(ttl).toBeLessThanOrEqual(limits.socketTicketTtlSec * 1000 + 1000);

    const res = await wsUpgrade(room.id, `?ticket=${encodeURIComponent(ticket)}`);
    expect(res.status).toBe(101);
    const socket = new Socket(res.webSocket!);
    expect((await socket.next("ready")).online).toEqual([alice.id]);
    socket.close();
    // Single use: the same ticket again is refused.
    expectProblem(await wsUpgrade(room.id, `?ticket=${encodeURIComponent(ticket)}`), 401, "unauthorized");
  });

  // The Authorization header and ?token= still work beside tickets.
  it("the ticket's caller has the userId and sessionId of the token that made it", async () => {
    const u = await signup();
    const { sub, sid } = claimsOf(u.accessToken);
    const viaTicket = await callProbe(`?ticket=${(await ticketFor(u.accessToken)).ticket}`);
    expect(viaTicket).toEqual({ status: 200, body: { kind: "user", userId: sub, sessionId: sid, anonymous: false } });
    expect(await callProbe("", { authorization: `Bearer ${u.accessToken}` })).toEqual(viaTicket);
    expect(await callProbe(`?token=${u.accessToken}`)).toEqual(viaTicket);
    // A guest's ticket carries the guest flag.
    const guest = await api("/v1/auth/anonymous", { body: {} });
    const g = await callProbe(`?ticket=${(await ticketFor(guest.body.session.accessToken)).ticket}`);
    expect(g.body).toMatchObject({ userId: guest.body.user.id, anonymous: true });
  });

  it("OpenAPI documents the route and recommends ?ticket= on the socket route over ?token=", async () => {
    const { body } = await api("/v1/openapi.json");
    const route = body.paths["/v1/auth/socket-ticket"].post;
    expect(route.responses["201"]).toBeDefined();
    expect(route.security).toEqual([{ bearerAuth: [] }]);
    const ws = body.paths["/v1/rooms/{id}/ws"].get;
    const ticketParam = ws.parameters.find(
      (p: { name: string; in: string }) => p.name === "ticket" && p.in === "query",
    );
    expect(ticketParam.description).toMatch(/socket-ticket/);
    expect(ticketParam.description).toMatch(/instead of .*\?token=/i);
  });
});

describe("socket tickets: single use, expiry and storage", () => {
  it("five concurrent uses of one ticket: exactly one is accepted", async () => {
    const u = await signup();
    const { ticket } = await ticketFor(u.accessToken);
    const results = await Promise.all([1, 2, 3, 4, 5].map(() => callProbe(`?ticket=${ticket}`)));
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    for (const r of results.filter((x) => x.status !== 200))
      expect(r).toMatchObject({ status: 401, body: { code: "unauthorized" } });
  });

  it("an expired ticket is refused, and the cron removes expired tickets", async () => {
    const u = await signup();
    const { ticket } = await ticketFor(u.accessToken);
    const hash = await hashToken(ticket);
    const past = new Date(Date.now() - 1000).toISOString();
    await env.DB.prepare("UPDATE socket_tickets SET expires_at = ? WHERE hash = ?").bind(past, hash).run();
    expect((await callProbe(`?ticket=${ticket}`)).status).toBe(401);

    const stale = await ticketFor(u.accessToken);
    const fresh = await ticketFor(u.accessToken);
    await env.DB.prepare("UPDATE socket_tickets SET expires_at = ? WHERE hash = ?")
      .bind(past, await hashToken(stale.ticket))
      .run();
    await socketTicketCleanup(env, createDb(env.DB), new Date());
    const left = await env.DB.prepare("SELECT hash FROM socket_tickets").all<{ hash: string }>();
    expect(left.results.map((r) => r.hash)).toEqual([await hashToken(fresh.ticket)]);
  });

  it("tickets are stored only as hashes", async () => {
    const u = await signup();
    const { ticket } = await ticketFor(u.accessToken);
    const rows = await env.DB.prepare("SELECT * FROM socket_tickets").all();
    expect(JSON.stringify(rows.results)).not.toContain(ticket.slice(3));
    expect(rows.results.map((r) => r.hash)).toContain(await hashToken(ticket));
  });

  it("a ticket dies with its session: logout before use → 401", async () => {
    const u = await signup();
    const { ticket } = await ticketFor(u.accessToken);
    expect((await api("/v1/auth/logout", { token: u.accessToken, body: {} })).status).toBe(204);
    expect((await callProbe(`?ticket=${ticket}`)).status).toBe(401);
  });
});

describe("socket tickets: who is refused", () => {
  it("POST refuses no token, garbage, forged, alg:none, tampered and expired tokens", async () => {
    const u = await signup();
    const claims = { sub: u.id, sid: "s", anon: false };
    const bad: [string | null, string][] = [
      [null, "unauthorized"],
      ["garbage", "unauthorized"],
      [await signWithWrongKey(claims), "unauthorized"],
      [unsignedToken(claims), "unauthorized"],
      [tamperPayload(u.accessToken, { sub: "01900000-0000-7000-8000-000000000000" }), "unauthorized"],
      [await signWithServerKey(claims, { exp: Math.floor(Date.now() / 1000) - 60 }), "token_expired"],
    ];
    for (const [token, code] of bad) expectProblem(await api("/v1/auth/socket-ticket", { token, body: {} }), 401, code);
    expectProblem(await api("/v1/auth/socket-ticket", { token: serviceKey(), body: {} }), 403, "forbidden");
    expectProblem(
      await api("/v1/auth/socket-ticket", { token: u.accessToken, body: { userId: "someone" } }),
      400,
      "validation_failed",
    );
  });

  it("the access token of a revoked session (still unexpired) or a deleted account cannot mint a ticket", async () => {
    const u = await signup();
    expect((await api("/v1/auth/logout", { token: u.accessToken, body: {} })).status).toBe(204);
    expectProblem(await api("/v1/auth/socket-ticket", { token: u.accessToken, body: {} }), 401, "unauthorized");
    const gone = await signup();
    expect((await api("/v1/me", { method: "DELETE", token: gone.accessToken })).status).toBe(204);
    expectProblem(await api("/v1/auth/socket-ticket", { token: gone.accessToken, body: {} }), 401, "unauthorized");
    expect(
      (
        await env.DB.prepare("SELECT count(*) AS n FROM socket_tickets WHERE user_id IN (?, ?)")
          .bind(u.id, gone.id)
          .first<{ n: number }>()
      )?.n,
    ).toBe(0);
  });

  it("made-up, malformed and oversized tickets are refused; a ticket opens only its user's rooms", async () => {
    const alice = await signup();
    const mallory: TestUser = await signup();
    const room = await createGroup(alice);
    for (const t of ["st_made-up", "", "x".repeat(5000), `${(await ticketFor(alice.accessToken)).ticket}x`]) {
      expectProblem(await wsUpgrade(room.id, `?ticket=${encodeURIComponent(t)}`), 401, "unauthorized");
    }
    expectProblem(
      await wsUpgrade(room.id, `?ticket=${(await ticketFor(mallory.accessToken)).ticket}`),
      404,
      "not_found",
    );
  });
});

describe("socket tickets: rate limited per user", () => {
  /** Asks for a ticket through the app with `limiter` as REFRESH_LIMITER, from a fresh address each time. */
  async function ticketWith(limiter: RateLimit, token: string) {
    const { createExecutionContext, waitOnExecutionContext } = await import("cloudflare:test");
    const { app } = await import("../../../src/router");
    const req = new Request("https://outpost.test/v1/auth/socket-ticket", {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json", "cf-connecting-ip": freshIp() },
      body: "{}",
    });
    const ctx = createExecutionContext();
    const res = await app.fetch(req, { ...env, REFRESH_LIMITER: limiter }, ctx);
    const text = await res.text();
    await waitOnExecutionContext(ctx);
    return { status: res.status, headers: res.headers, text, body: text ? JSON.parse(text) : null };
  }

  // The limiter's key is the user, not the address.
  it("a user over the budget gets 429 rate_limited with Retry-After", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const asked: string[] = [];
    const limiter: RateLimit = {
      async limit({ key }) {
        asked.push(key);
        return { success: key !== `socket-ticket:${alice.id}` };
      },
    };
    expectProblem(await ticketWith(limiter, alice.accessToken), 429, "rate_limited");
    const again = await ticketWith(limiter, alice.accessToken);
    expect(again.status).toBe(429);
    expect(again.headers.get("retry-after")).toBe(String(limits.socketTicketsPeriodSec));
    expect((await ticketWith(limiter, bob.accessToken)).status).toBe(201);
    // Two different addresses, one key: Alice's id.
    expect(asked).toEqual([`socket-ticket:${alice.id}`, `socket-ticket:${alice.id}`, `socket-ticket:${bob.id}`]);
  });

  it("a socket opened with the token itself spends from the same per-user budget", async () => {
    const alice = await signup();
    const asked: string[] = [];
    const refuseAlice: RateLimit = {
      async limit({ key }) {
        asked.push(key);
        return { success: key !== `socket-ticket:${alice.id}` };
      },
    };
    const { createExecutionContext, waitOnExecutionContext } = await import("cloudflare:test");
    const { app } = await import("../../../src/router");
    const open = async (auth: Record<string, string>, query = "") => {
      const req = new Request(`https://outpost.test/v1/rooms/some-room/ws${query}`, {
        headers: { upgrade: "websocket", "cf-connecting-ip": freshIp(), ...auth },
      });
      const ctx = createExecutionContext();
      const res = await app.fetch(req, { ...env, REFRESH_LIMITER: refuseAlice }, ctx);
      const text = await res.text();
      await waitOnExecutionContext(ctx);
      return { status: res.status, headers: res.headers, text, body: text ? JSON.parse(text) : null };
    };
    expectProblem(await open({ authorization: `Bearer ${alice.accessToken}` }), 429, "rate_limited");
    expectProblem(await open({}, `?token=${alice.accessToken}`), 429, "rate_limited");
    expect(asked).toEqual([`socket-ticket:${alice.id}`, `socket-ticket:${alice.id}`]);
    // A ticket was paid for when it was made: redeeming it asks the limiter nothing.
    const { ticket } = await ticketFor(alice.accessToken);
    asked.length = 0;
    expect((await open({}, `?ticket=${ticket}`)).status).not.toBe(429);
    expect(asked).toEqual([]);
  });

  it("the real limiter refuses a user's tickets past its budget, and another user still gets one", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const statuses: number[] = [];
    // Up to two windows' worth: a window that resets mid-loop cannot hide the limit.
    for (let i = 0; i < 130 && !statuses.includes(429); i++)
      statuses.push((await api("/v1/auth/socket-ticket", { token: alice.accessToken, body: {} })).status);
    expect(statuses).toContain(429);
    expect(statuses.filter((s) => s === 201).length).toBeGreaterThanOrEqual(1);
    expect((await api("/v1/auth/socket-ticket", { token: bob.accessToken, body: {} })).status).toBe(201);
  });
});
