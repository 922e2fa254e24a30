/**
 * Issue 17.2: the admin API (API.md "Administration (v1.1)"). Authorization matrix on every admin
 * route: no token 401, a user 403, a disabled user 403 account_disabled, an admin and the service
 * key allowed; every action lands in the audit log with actor, action, target and request id.
 */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { api, expectProblem, signup, type TestUser } from "../../helpers/api";
import { disable, signupAdmin } from "./helpers";

const service = () => env.SERVICE_KEY;

interface Call {
  name: string;
  method: string;
  /** Built per caller, so a destructive call gets a fresh target each time. */
  path: () => Promise<string>;
  body?: () => unknown;
  ok: number;
}

let admin: TestUser;
let user: TestUser;
let disabledUser: TestUser;
let target: TestUser;

beforeAll(async () => {
  admin = await signupAdmin();
  user = await signup();
  disabledUser = await signup();
  target = await signup({ name: "Target Person" });
  expect((await disable(disabledUser.id)).status).toBe(200);
});

const calls = (): Call[] => [
  { name: "list users", method: "GET", path: async () => "/v1/admin/users", ok: 200 },
  { name: "get user", method: "GET", path: async () => `/v1/admin/users/${target.id}`, ok: 200 },
  {
    name: "patch user",
    method: "PATCH",
    path: async () => `/v1/admin/users/${target.id}`,
    body: () => ({ name: "Renamed" }),
    ok: 200,
  },
  { name: "delete user", method: "DELETE", path: async () => `/v1/admin/users/${(await signup()).id}`, ok: 204 },
  { name: "audit log", method: "GET", path: async () => "/v1/admin/audit", ok: 200 },
  {
    name: "push",
    method: "POST",
    path: async () => "/v1/admin/push",
    body: () => ({ userIds: [target.id], title: "t", body: "b" }),
    ok: 202,
  },
];

describe("authorization matrix", () => {
  for (const call of calls()) {
    it(`${call.name}: no token 401, user 403, disabled 403, admin ${call.ok}, service key ${call.ok}`, async () => {
      const send = async (token: string | null) =>
        api(await call.path(), { method: call.method, token, ...(call.body ? { body: call.body() } : {}) });
      expectProblem(await send(null), 401, "unauthorized");
      expectProblem(await send(user.accessToken), 403, "forbidden");
      expectProblem(await send(disabledUser.accessToken), 403, "account_disabled");
      const asAdmin = await send(admin.accessToken);
      expect(asAdmin.status, asAdmin.text).toBe(call.ok);
      const asService = await send(service());
      expect(asService.status, asService.text).toBe(call.ok);
    });
  }

  it("an admin token stops working at once when its session ends or the admin is demoted", async () => {
    const a = await signupAdmin();
    expect((await api("/v1/admin/users", { token: a.accessToken })).status).toBe(200);
    expect(
      (await api(`/v1/admin/users/${a.id}`, { method: "PATCH", token: service(), body: { role: "user" } })).status,
    ).toBe(200);
    expectProblem(await api("/v1/admin/users", { token: a.accessToken }), 403, "forbidden");
    const b = await signupAdmin();
    expect((await api("/v1/auth/logout", { token: b.accessToken, body: {} })).status).toBe(204);
    expectProblem(await api("/v1/admin/users", { token: b.accessToken }), 401, "unauthorized");
  });
});

describe("users", () => {
  it("lists newest first with cursors, and q matches email or name", async () => {
    const tag = `srch${Date.now()}`;
    const made = [];
    for (let i = 0; i < 3; i++) made.push(await signup({ email: `${tag}.${i}@example.com` }));
    const named = await signup({ name: `Zed ${tag}` });
    const page1 = await api(`/v1/admin/users?q=${tag}&limit=2`, { token: service() });
    expect(page1.status, page1.text).toBe(200);
    expect(page1.body.items.map((u: { id: string }) => u.id)).toEqual([named.id, made[2]!.id]);
    expect(page1.body.items[0]).toMatchObject({ role: "user", disabled: false, name: `Zed ${tag}` });
    const page2 = await api(`/v1/admin/users?q=${tag}&limit=2&cursor=${page1.body.nextCursor}`, { token: service() });
    expect(page2.body.items.map((u: { id: string }) => u.id)).toEqual([made[1]!.id, made[0]!.id]);
    expect(page2.body.nextCursor).toBeNull();
    // Case does not matter; an email search finds the one account.
    const one = await api(`/v1/admin/users?q=${encodeURIComponent(`${tag}.1@EXAMPLE`)}`, { token: service() });
    expect(one.body.items.map((u: { id: string }) => u.id)).toEqual([made[1]!.id]);
  });

  it("shows a user with counts: sessions, records, files, bytes, rooms, devices", async () => {
    const u = await signup();
    await api("/v1/collections/notes/records", { token: u.accessToken, body: { title: "one" } });
    await api("/v1/collections/posts/records", { token: u.accessToken, body: { text: "two" } });
    await api("/v1/files?name=a.txt&visibility=private", {
      token: u.accessToken,
      raw: "12345",
      headers: { "content-type": "text/plain" },
    });
    await api("/v1/rooms", { token: u.accessToken, body: { kind: "group", name: "r", memberIds: [] } });
    await api("/v1/devices", {
      token: u.accessToken,
      body: { token: `dev-${u.id}`, platform: "android", provider: "fcm" },
    });
    const res = await api(`/v1/admin/users/${u.id}`, { token: service() });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({
      id: u.id,
      email: u.email,
      counts: { sessions: 1, records: 2, files: 1, bytes: 5, rooms: 1, devices: 1 },
    });
  });

  it("PATCH validates: unknown fields, a bad role, an empty body are 400; an unknown user is 404", async () => {
    const u = await signup();
    expectProblem(
      await api(`/v1/admin/users/${u.id}`, { method: "PATCH", token: service(), body: { email: "x@example.com" } }),
      400,
      "validation_failed",
    );
    expectProblem(
      await api(`/v1/admin/users/${u.id}`, { method: "PATCH", token: service(), body: { role: "root" } }),
      400,
      "validation_failed",
    );
    expectProblem(
      await api(`/v1/admin/users/${u.id}`, { method: "PATCH", token: service(), body: {} }),
      400,
      "validation_failed",
    );
    expectProblem(
      await api("/v1/admin/users/01900000-0000-7000-8000-000000000001", {
        method: "PATCH",
        token: service(),
        body: { name: "x" },
      }),
      404,
      "not_found",
    );
    expectProblem(
      await api("/v1/admin/users/01900000-0000-7000-8000-000000000001", { token: service() }),
      404,
      "not_found",
    );
  });

  it("an admin cannot disable or demote itself (the service key or another admin can)", async () => {
    const a = await signupAdmin();
    expectProblem(
      await api(`/v1/admin/users/${a.id}`, { method: "PATCH", token: a.accessToken, body: { disabled: true } }),
      409,
      "conflict",
    );
    expectProblem(
      await api(`/v1/admin/users/${a.id}`, { method: "PATCH", token: a.accessToken, body: { role: "user" } }),
      409,
      "conflict",
    );
    expect(
      (await api(`/v1/admin/users/${a.id}`, { method: "PATCH", token: a.accessToken, body: { name: "Me" } })).status,
    ).toBe(200);
  });

  it("DELETE removes the account and what it owns, as DELETE /v1/me does", async () => {
    const u = await signup();
    const note = await api("/v1/collections/notes/records", { token: u.accessToken, body: { title: "gone soon" } });
    expect((await api(`/v1/admin/users/${u.id}`, { method: "DELETE", token: admin.accessToken })).status).toBe(204);
    expect(await env.DB.prepare("SELECT count(*) AS n FROM users WHERE id = ?").bind(u.id).first("n")).toBe(0);
    expect(await env.DB.prepare("SELECT count(*) AS n FROM app_notes WHERE id = ?").bind(note.body.id).first("n")).toBe(
      0,
    );
    expectProblem(
      await api("/v1/auth/login", { body: { email: u.email, password: u.password } }),
      401,
      "invalid_credentials",
    );
    expectProblem(
      await api(`/v1/admin/users/${u.id}`, { method: "DELETE", token: admin.accessToken }),
      404,
      "not_found",
    );
  });
});

describe("audit log", () => {
  it("records actor, action, target and request id of every action, newest first, paged", async () => {
    const u = await signup();
    const requestId = `audit-${Date.now()}`;
    expect(
      (
        await api(`/v1/admin/users/${u.id}`, {
          method: "PATCH",
          token: admin.accessToken,
          body: { disabled: true },
          headers: { "x-request-id": requestId },
        })
      ).status,
    ).toBe(200);
    expect(
      (
        await api(`/v1/admin/users/${u.id}`, {
          method: "DELETE",
          token: service(),
          headers: { "x-request-id": `${requestId}-d` },
        })
      ).status,
    ).toBe(204);
    expect(
      (await api("/v1/admin/push", { token: admin.accessToken, body: { userIds: [admin.id], title: "t", body: "b" } }))
        .status,
    ).toBe(202);
    const page = await api("/v1/admin/audit?limit=3", { token: service() });
    expect(page.status, page.text).toBe(200);
    const [push, del, patch] = page.body.items;
    expect(patch).toEqual({
      id: expect.any(String),
      actorId: admin.id,
      action: "user.update",
      target: `user:${u.id}`,
      at: expect.any(String),
      // Issue 23.4: the server makes the request id; the client's own is kept apart.
      requestId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      clientRequestId: requestId,
      detail: { disabled: true },
    });
    expect(del).toMatchObject({
      actorId: "service",
      action: "user.delete",
      target: `user:${u.id}`,
      clientRequestId: `${requestId}-d`,
    });
    expect(push).toMatchObject({ actorId: admin.id, action: "push.send", target: `users:1` });
    expect(page.body.nextCursor).toEqual(expect.any(String));
    const next = await api(`/v1/admin/audit?limit=3&cursor=${page.body.nextCursor}`, { token: service() });
    expect(next.body.items[0].id < patch.id).toBe(true);
    // Reading users and the log is not an action: nothing recorded for it.
    expect(page.body.items.some((e: { action: string }) => e.action.startsWith("audit"))).toBe(false);
  });

  it("refuses a forged cursor with 400", async () => {
    expectProblem(await api("/v1/admin/audit?cursor=%%%", { token: service() }), 400, "validation_failed");
  });
});
