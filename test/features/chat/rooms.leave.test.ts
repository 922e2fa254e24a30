/** Leaving rooms: a member can leave any room, and nobody else can pull them back in. */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { api, expectProblem, signup } from "../../helpers/api";
import { connect, createGroup, type RoomBody, sendRest } from "./helpers";

const direct = (from: { accessToken: string }, to: string) =>
  api<RoomBody>("/v1/rooms", { token: from.accessToken, body: { kind: "direct", memberIds: [to] } });
const leave = (who: { accessToken: string }, roomId: string) =>
  api(`/v1/rooms/${roomId}/members/me`, { method: "DELETE", token: who.accessToken });
const add = (by: { accessToken: string }, roomId: string, userId: string) =>
  api<RoomBody>(`/v1/rooms/${roomId}/members`, { token: by.accessToken, body: { userId } });
const roomIds = async (who: { accessToken: string }) =>
  (await api("/v1/rooms", { token: who.accessToken })).body.items.map((r: RoomBody) => r.id);

describe("leaving a direct room", () => {
  // Their socket is closed; the other member keeps the room and its history.
  it("a member leaves a direct room (204): gone for them, the other keeps it", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const room = (await direct(alice, bob.id)).body;
    await sendRest(alice, room.id, "hello?");
    const { socket } = await connect(bob, room.id);
    const res = await leave(bob, room.id);
    expect(res.status, res.text).toBe(204);
    expect((await socket.closed).code).toBe(4403);
    expectProblem(await api(`/v1/rooms/${room.id}`, { token: bob.accessToken }), 404, "not_found");
    expect(await roomIds(bob)).toEqual([]);
    const view = await api<RoomBody>(`/v1/rooms/${room.id}`, { token: alice.accessToken });
    expect(view.body.members.map((m) => m.userId)).toEqual([alice.id]);
    expect(
      (await api(`/v1/rooms/${room.id}/messages`, { token: alice.accessToken })).body.items.map(
        (m: { text: string }) => m.text,
      ),
    ).toEqual(["hello?"]);
  });

  // Opening it again returns the room without them.
  it("the one who stayed cannot pull the leaver back by opening the direct room again", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const room = (await direct(alice, bob.id)).body;
    await leave(bob, room.id);
    const again = await direct(alice, bob.id);
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(room.id);
    expect(again.body.members.map((m) => m.userId)).toEqual([alice.id]);
    expect(await roomIds(bob)).toEqual([]);
    // Alice's messages are stored, but Bob is not a member and sees nothing.
    expect((await sendRest(alice, room.id, "come back")).status).toBe(201);
    expectProblem(await api(`/v1/rooms/${room.id}/messages`, { token: bob.accessToken }), 404, "not_found");
  });

  it("the leaver comes back by opening the direct room themselves (200, same room, history read)", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const room = (await direct(alice, bob.id)).body;
    await leave(bob, room.id);
    await sendRest(alice, room.id, "while you were away");
    const back = await direct(bob, alice.id);
    expect(back.status).toBe(200);
    expect(back.body.id).toBe(room.id);
    expect(back.body.members).toEqual([
      { userId: alice.id, role: "member", lastReadSeq: 1 },
      { userId: bob.id, role: "member", lastReadSeq: 1 },
    ]);
    expect(back.body.unreadCount).toBe(0);
    expect(await roomIds(bob)).toEqual([room.id]);
  });

  it("a member cannot remove the other member of a direct room (403)", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const room = (await direct(alice, bob.id)).body;
    expectProblem(
      await api(`/v1/rooms/${room.id}/members/${bob.id}`, { method: "DELETE", token: alice.accessToken }),
      403,
      "forbidden",
    );
    expect((await api<RoomBody>(`/v1/rooms/${room.id}`, { token: bob.accessToken })).status).toBe(200);
  });
});

describe("leaving a group", () => {
  // The leaver rejoins by adding themselves.
  it("the owner cannot add back someone who left (403 on userId); they rejoin alone (201)", async () => {
    const [alice, bob, carol] = [await signup(), await signup(), await signup()];
    const room = await createGroup(alice, [bob, carol]);
    await sendRest(alice, room.id, "one");
    expect((await leave(bob, room.id)).status).toBe(204);
    const p = expectProblem(await add(alice, room.id, bob.id), 403, "forbidden");
    expect(p.errors).toEqual([{ path: "userId", message: expect.any(String) }]);
    expect(await roomIds(bob)).toEqual([]);
    // A member "rejoining" is already there (409); someone who never was a member cannot rejoin (404).
    expectProblem(await add(carol, room.id, "me"), 409, "conflict");
    const stranger = await signup();
    expectProblem(await add(stranger, room.id, stranger.id), 404, "not_found");
    // Bob rejoins on his own, by id or as "me".
    const back = await add(bob, room.id, "me");
    expect(back.status, back.text).toBe(201);
    expect(back.body.members).toContainEqual({ userId: bob.id, role: "member", lastReadSeq: 1 });
    expect(await roomIds(bob)).toEqual([room.id]);
    // Having come back, he is an ordinary member: he can leave again, and the owner still cannot re-add him.
    expect((await leave(bob, room.id)).status).toBe(204);
    expectProblem(await add(alice, room.id, bob.id), 403, "forbidden");
    expect((await add(bob, room.id, bob.id)).status).toBe(201);
  });

  it("someone the owner removed can be added back by the owner, and cannot rejoin alone", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const room = await createGroup(alice, [bob]);
    expect(
      (await api(`/v1/rooms/${room.id}/members/${bob.id}`, { method: "DELETE", token: alice.accessToken })).status,
    ).toBe(204);
    expectProblem(await add(bob, room.id, "me"), 404, "not_found");
    expect((await add(alice, room.id, bob.id)).status).toBe(201);
  });

  // The owner who leaves hands the room on, and rejoins as a member of it.
  it("an owner who leaves rejoins as a member; a last leaver who rejoins is owner again", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const room = await createGroup(alice, [bob]);
    await leave(alice, room.id);
    expectProblem(await add(bob, room.id, alice.id), 403, "forbidden");
    const back = await add(alice, room.id, "me");
    expect(back.body.members).toEqual([
      { userId: bob.id, role: "owner", lastReadSeq: 0 },
      { userId: alice.id, role: "member", lastReadSeq: 0 },
    ]);
    await leave(alice, room.id);
    await leave(bob, room.id);
    const alone = await add(bob, room.id, "me");
    expect(alone.body.members).toEqual([{ userId: bob.id, role: "owner", lastReadSeq: 0 }]);
  });

  it("the leave record goes with the account", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const room = await createGroup(alice, [bob]);
    await leave(bob, room.id);
    expect((await api("/v1/me", { method: "DELETE", token: bob.accessToken })).status).toBe(204);
    const row = await env.DB.prepare("SELECT count(*) AS n FROM room_leaves WHERE user_id = ?")
      .bind(bob.id)
      .first<{ n: number }>();
    expect(row?.n).toBe(0);
  });
});
