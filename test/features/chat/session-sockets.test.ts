/**
 * Issue 10.2: a chat socket lives no longer than the session that opened it. Logout, revoking a
 * session, a password change (the other sessions), a password reset (all sessions) and account
 * deletion close that session's sockets with 4401; a session that ended while its notification
 * was lost is caught by the room's heartbeat alarm.
 */
import { runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { limits } from "../../../src/config";
import { createDb } from "../../../src/db";
import { issueToken } from "../../../src/features/auth/accounts";
import { api, expectProblem, signup, type TestUser } from "../../helpers/api";
import { connect, createGroup, login, roomStub, upgrade } from "./helpers";

const SESSION_ENDED = 4401;

/** The id of the session `user.accessToken` belongs to. */
async function sessionIdOf(user: TestUser): Promise<string> {
  const res = await api<{ items: { id: string; current: boolean }[] }>("/v1/auth/sessions", {
    token: user.accessToken,
  });
  const current = res.body.items.find((s) => s.current);
  if (!current) throw new Error(`no current session: ${res.text}`);
  return current.id;
}

describe("chat sockets end with their session (4401)", () => {
  it("logout closes that session's sockets in every room; other sessions and users stay", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const alice2 = await login(alice);
    const room = await createGroup(alice, [bob]);
    const other = await createGroup(alice, [], "Other");
    const b = await connect(bob, room.id);
    const a1 = await connect(alice, room.id);
    const a1other = await connect(alice, other.id);
    const a2 = await connect(alice2, room.id);

    expect((await api("/v1/auth/logout", { token: alice.accessToken, body: {} })).status).toBe(204);
    expect((await a1.socket.closedWithin()).code).toBe(SESSION_ENDED);
    expect((await a1other.socket.closedWithin()).code).toBe(SESSION_ENDED);
    // Alice is still online through her other session: no presence change, and it still works.
    await a2.socket.roundTrip();
    a2.socket.send({ type: "send", clientId: "after-logout", text: "still here" });
    expect((await b.socket.messages(1))[0]).toMatchObject({ senderId: alice.id, text: "still here" });
    expect(b.socket.take("presence").filter((p) => p.userId === alice.id && !p.online)).toEqual([]);
    a2.socket.close();
    b.socket.close();
  });

  it("the last session's logout announces the user offline", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const room = await createGroup(alice, [bob]);
    const b = await connect(bob, room.id);
    const a = await connect(alice, room.id);
    expect(await b.socket.next("presence")).toEqual({ type: "presence", userId: alice.id, online: true });
    expect((await api("/v1/auth/logout", { token: alice.accessToken, body: {} })).status).toBe(204);
    expect((await a.socket.closedWithin()).code).toBe(SESSION_ENDED);
    expect(await b.socket.next("presence")).toEqual({ type: "presence", userId: alice.id, online: false });
    b.socket.close();
  });

  it("a reused refresh token revokes its session and closes that session's sockets", async () => {
    const alice = await signup();
    const room = await createGroup(alice);
    const a = await connect(alice, room.id);
    const first = await api("/v1/auth/refresh", { body: { refreshToken: alice.refreshToken } });
    expect(first.status).toBe(200);
    // The rotated token again, past its 10 s grace (set the rotation back; no sleeping): reuse.
    await env.DB.prepare("UPDATE sessions SET rotated_at = ? WHERE user_id = ?")
      .bind(new Date(Date.now() - 60_000).toISOString(), alice.id)
      .run();
    expectProblem(
      await api("/v1/auth/refresh", { body: { refreshToken: alice.refreshToken } }),
      401,
      "refresh_token_reused",
    );
    expect((await a.socket.closedWithin()).code).toBe(SESSION_ENDED);
  });

  it("DELETE /v1/auth/sessions/:id closes that session's sockets, not the caller's", async () => {
    const alice = await signup();
    const alice2 = await login(alice);
    const room = await createGroup(alice);
    const a1 = await connect(alice, room.id);
    const a2 = await connect(alice2, room.id);
    const revoked = await sessionIdOf(alice);
    expect((await api(`/v1/auth/sessions/${revoked}`, { method: "DELETE", token: alice2.accessToken })).status).toBe(
      204,
    );
    expect((await a1.socket.closedWithin()).code).toBe(SESSION_ENDED);
    await a2.socket.roundTrip();
    a2.socket.close();
  });

  it("a password change closes the other sessions' sockets; the caller's socket stays open", async () => {
    const alice = await signup();
    const alice2 = await login(alice);
    const room = await createGroup(alice);
    const a1 = await connect(alice, room.id);
    const a2 = await connect(alice2, room.id);
    const res = await api("/v1/auth/password", {
      token: alice2.accessToken,
      body: { currentPassword: alice.password, newPassword: "a brand new password" },
    });
    expect(res.status).toBe(204);
    expect((await a1.socket.closedWithin()).code).toBe(SESSION_ENDED);
    await a2.socket.roundTrip();
    a2.socket.send({ type: "send", clientId: "after-change", text: "mine still works" });
    expect((await a2.socket.messages(1))[0]).toMatchObject({ text: "mine still works" });
    a2.socket.close();
  });

  it("a password reset closes every session's sockets", async () => {
    const alice = await signup();
    const alice2 = await login(alice);
    const room = await createGroup(alice);
    const a1 = await connect(alice, room.id);
    const a2 = await connect(alice2, room.id);
    const token = await issueToken(
      createDb(env.DB),
      alice.id,
      "password_reset",
      alice.email,
      limits.passwordResetTtlSec,
    );
    expect(
      (await api("/v1/auth/password-reset/confirm", { body: { token, newPassword: "reset password 123" } })).status,
    ).toBe(204);
    expect((await a1.socket.closedWithin()).code).toBe(SESSION_ENDED);
    expect((await a2.socket.closedWithin()).code).toBe(SESSION_ENDED);
  });

  it("deleting the account closes its sockets with 4401", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const room = await createGroup(alice, [bob]);
    const b = await connect(bob, room.id);
    expect((await api("/v1/me", { method: "DELETE", token: bob.accessToken })).status).toBe(204);
    expect((await b.socket.closedWithin()).code).toBe(SESSION_ENDED);
  });

  it("backstop: a session row gone without notice (lost RPC) is cut by the next heartbeat alarm", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const room = await createGroup(alice, [bob]);
    const a = await connect(alice, room.id);
    const b = await connect(bob, room.id);
    await a.socket.next("presence");
    await env.DB.prepare("DELETE FROM sessions WHERE id = ?")
      .bind(await sessionIdOf(bob))
      .run();
    expect(await runDurableObjectAlarm(roomStub(room.id))).toBe(true);
    expect((await b.socket.closedWithin()).code).toBe(SESSION_ENDED);
    expect(await a.socket.next("presence")).toEqual({ type: "presence", userId: bob.id, online: false });
    // Alice's session is alive: her socket stays.
    await a.socket.roundTrip();
    a.socket.close();
  });

  it("an access token whose session already ended cannot open a new socket (401)", async () => {
    const alice = await signup();
    const room = await createGroup(alice);
    expect((await api("/v1/auth/logout", { token: alice.accessToken, body: {} })).status).toBe(204);
    const res = await upgrade(room.id, { token: alice.accessToken });
    expect(res.webSocket).toBeNull();
    expectProblem({ status: res.status, headers: res.headers, text: "", body: await res.json() }, 401, "unauthorized");
  });
});
