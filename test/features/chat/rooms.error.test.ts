import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { api, expectProblem, signup } from "../../helpers/api";
import { connect, createGroup, insertFile, sendRest, withSpentSendLimit } from "./helpers";

describe("chat rooms over REST: errors", () => {
  it("POST /v1/rooms rejects unknown fields, bad kinds, unknown users and malformed direct rooms", async () => {
    const [alice, bob, carol] = [await signup(), await signup(), await signup()];
    const t = alice.accessToken;
    expectProblem(
      await api("/v1/rooms", { token: t, body: { memberIds: [], color: "red" } }),
      400,
      "validation_failed",
    );
    expectProblem(
      await api("/v1/rooms", { token: t, body: { kind: "channel", memberIds: [] } }),
      400,
      "validation_failed",
    );
    expectProblem(await api("/v1/rooms", { token: t, body: { name: "no members field" } }), 400, "validation_failed");
    const unknown = expectProblem(
      await api("/v1/rooms", { token: t, body: { memberIds: [bob.id, "nobody"] } }),
      400,
      "validation_failed",
    );
    expect(unknown.errors).toEqual([{ path: "memberIds.1", message: "no such user" }]);
    expectProblem(
      await api("/v1/rooms", { token: t, body: { kind: "direct", memberIds: [bob.id, carol.id] } }),
      400,
      "validation_failed",
    );
    expectProblem(
      await api("/v1/rooms", { token: t, body: { kind: "direct", memberIds: [alice.id] } }),
      400,
      "validation_failed",
    );
    expectProblem(
      await api("/v1/rooms", { token: t, body: { kind: "direct", name: "us", memberIds: [bob.id] } }),
      400,
      "validation_failed",
    );
    expectProblem(
      await api("/v1/rooms", { token: t, body: { name: "x".repeat(101), memberIds: [] } }),
      400,
      "validation_failed",
    );
    expect((await api("/v1/rooms", { token: t })).body.items).toEqual([]);
  });

  it("GET /v1/rooms rejects a forged cursor and an out-of-range limit", async () => {
    const alice = await signup();
    expectProblem(await api("/v1/rooms?cursor=bm9wZQ", { token: alice.accessToken }), 400, "validation_failed");
    expectProblem(await api("/v1/rooms?limit=0", { token: alice.accessToken }), 400, "validation_failed");
    expectProblem(await api("/v1/rooms?limit=201", { token: alice.accessToken }), 400, "validation_failed");
  });

  it("GET /v1/rooms/:id answers 404 for a room that does not exist", async () => {
    const alice = await signup();
    expectProblem(
      await api("/v1/rooms/0190aaaa-0000-7000-8000-000000000000", { token: alice.accessToken }),
      404,
      "not_found",
    );
  });

  it("POST /v1/rooms/:id/members: unknown user 404, already a member 409, direct room 409, bad body 400", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const room = await createGroup(alice, [bob]);
    const t = alice.accessToken;
    expectProblem(await api(`/v1/rooms/${room.id}/members`, { token: t, body: { userId: "ghost" } }), 404, "not_found");
    expectProblem(await api(`/v1/rooms/${room.id}/members`, { token: t, body: { userId: bob.id } }), 409, "conflict");
    expectProblem(
      await api(`/v1/rooms/${room.id}/members`, { token: t, body: { userId: bob.id, role: "owner" } }),
      400,
      "validation_failed",
    );
    const direct = await api("/v1/rooms", { token: t, body: { kind: "direct", memberIds: [bob.id] } });
    const carol = await signup();
    expectProblem(
      await api(`/v1/rooms/${direct.body.id}/members`, { token: t, body: { userId: carol.id } }),
      409,
      "conflict",
    );
  });

  it("DELETE /v1/rooms/:id/members/:userId: not a member 404, the other member of a direct room 403", async () => {
    const [alice, bob, carol] = [await signup(), await signup(), await signup()];
    const room = await createGroup(alice, [bob]);
    expectProblem(
      await api(`/v1/rooms/${room.id}/members/${carol.id}`, { method: "DELETE", token: alice.accessToken }),
      404,
      "not_found",
    );
    const direct = await api("/v1/rooms", { token: alice.accessToken, body: { kind: "direct", memberIds: [bob.id] } });
    expectProblem(
      await api(`/v1/rooms/${direct.body.id}/members/${alice.id}`, { method: "DELETE", token: bob.accessToken }),
      403,
      "forbidden",
    );
    expectProblem(
      await api(`/v1/rooms/${direct.body.id}/members/${carol.id}`, { method: "DELETE", token: bob.accessToken }),
      403,
      "forbidden",
    );
  });

  it("PATCH /v1/rooms/:id/members/me needs a boolean `muted` and nothing else", async () => {
    const alice = await signup();
    const room = await createGroup(alice);
    expectProblem(
      await api(`/v1/rooms/${room.id}/members/me`, {
        method: "PATCH",
        token: alice.accessToken,
        body: { muted: "yes" },
      }),
      400,
      "validation_failed",
    );
    expectProblem(
      await api(`/v1/rooms/${room.id}/members/me`, {
        method: "PATCH",
        token: alice.accessToken,
        body: { muted: true, role: "owner" },
      }),
      400,
      "validation_failed",
    );
  });

  it("POST /v1/rooms/:id/messages validates clientId, text and fileId", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const room = await createGroup(alice, [bob]);
    const send = (body: unknown) => api(`/v1/rooms/${room.id}/messages`, { token: alice.accessToken, body });
    expectProblem(await send({ text: "no clientId" }), 400, "validation_failed");
    expectProblem(await send({ clientId: "c1" }), 400, "validation_failed");
    expectProblem(await send({ clientId: "c1", text: "   " }), 400, "validation_failed");
    expectProblem(await send({ clientId: "c1", text: "x".repeat(4001) }), 400, "validation_failed");
    expectProblem(await send({ clientId: "has space", text: "hi" }), 400, "validation_failed");
    expectProblem(await send({ clientId: "c1", text: "hi", senderId: bob.id }), 400, "validation_failed");
    expectProblem(
      await send({ clientId: "c1", fileId: await insertFile(bob.id, "private") }),
      400,
      "validation_failed",
    );
    expectProblem(
      await send({ clientId: "c1", fileId: await insertFile(alice.id, "public", "pending") }),
      400,
      "validation_failed",
    );
    expectProblem(await send({ clientId: "c1", fileId: "missing" }), 400, "validation_failed");
    expect((await send({ clientId: "c1", text: "x".repeat(4000) })).status).toBe(201);
  });

  it("GET /v1/rooms/:id/messages rejects bad bounds and cursors", async () => {
    const alice = await signup();
    const room = await createGroup(alice);
    expectProblem(
      await api(`/v1/rooms/${room.id}/messages?after=-1`, { token: alice.accessToken }),
      400,
      "validation_failed",
    );
    expectProblem(
      await api(`/v1/rooms/${room.id}/messages?before=abc`, { token: alice.accessToken }),
      400,
      "validation_failed",
    );
    expectProblem(
      await api(`/v1/rooms/${room.id}/messages?cursor=%7B%7D`, { token: alice.accessToken }),
      400,
      "validation_failed",
    );
    expectProblem(
      await api(`/v1/rooms/${room.id}/messages?limit=500`, { token: alice.accessToken }),
      400,
      "validation_failed",
    );
  });

  it("POST /v1/rooms/:id/read rejects a seq beyond the last message or not a whole number", async () => {
    const alice = await signup();
    const room = await createGroup(alice);
    await sendRest(alice, room.id, "one");
    expectProblem(
      await api(`/v1/rooms/${room.id}/read`, { token: alice.accessToken, body: { seq: 2 } }),
      400,
      "validation_failed",
    );
    expectProblem(
      await api(`/v1/rooms/${room.id}/read`, { token: alice.accessToken, body: { seq: 1.5 } }),
      400,
      "validation_failed",
    );
    expectProblem(
      await api(`/v1/rooms/${room.id}/read`, { token: alice.accessToken, body: {} }),
      400,
      "validation_failed",
    );
  });

  it("limits each user's send rate (429 with Retry-After), without touching other users", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const room = await createGroup(alice, [bob]);
    expect((await sendRest(alice, room.id, "before the limit")).status).toBe(201);
    const asked = await withSpentSendLimit(room.id, alice.id, async () => {
      const limited = await sendRest(alice, room.id, "over the limit");
      const p = expectProblem(limited, 429, "rate_limited");
      expect(p.detail).toBeTruthy();
      expect(limited.headers.get("retry-after")).toBe("10");
      expect((await sendRest(bob, room.id, "I can still talk")).status).toBe(201);
      // Over a socket the same budget answers with an error frame, and nothing is stored.
      const { socket } = await connect(alice, room.id);
      socket.send({ type: "send", clientId: "one-more", text: "please" });
      expect(await socket.next("error")).toMatchObject({ code: "rate_limited", clientId: "one-more" });
      socket.close();
    });
    expect(asked).toEqual([`send:${alice.id}`, `send:${bob.id}`, `send:${alice.id}`]);
    const history = await api(`/v1/rooms/${room.id}/messages`, { token: bob.accessToken });
    expect(history.body.items.map((m: { text: string }) => m.text)).toEqual(["before the limit", "I can still talk"]);
  });

  // Even while rate limited, or once its file is no longer shareable.
  it("a resend with a known clientId returns the first message (200)", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const room = await createGroup(alice, [bob]);
    const file = await insertFile(alice.id, "public");
    const first = await api(`/v1/rooms/${room.id}/messages`, {
      token: alice.accessToken,
      body: { clientId: "keep-1", text: "photo", fileId: file },
    });
    expect(first.status).toBe(201);
    // The file goes private and belongs to someone else now (say, deleted and its id reused): the
    // message was already stored with it, so the retry still gets it back.
    await env.DB.prepare("UPDATE files SET visibility = 'private', owner_id = ? WHERE id = ?").bind(bob.id, file).run();
    const again = await api(`/v1/rooms/${room.id}/messages`, {
      token: alice.accessToken,
      body: { clientId: "keep-1", text: "photo", fileId: file },
    });
    expect(again.status).toBe(200);
    expect(again.body).toEqual(first.body);
    // With the send budget spent, a retry of a stored message is still not a new send.
    await withSpentSendLimit(room.id, alice.id, async () => {
      expect((await sendRest(alice, room.id, "new one")).status).toBe(429);
      const retry = await api(`/v1/rooms/${room.id}/messages`, {
        token: alice.accessToken,
        body: { clientId: "keep-1", text: "photo", fileId: file },
      });
      expect(retry.status).toBe(200);
      expect(retry.body).toEqual(first.body);
    });
  });
});
