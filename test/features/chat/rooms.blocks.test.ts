/** Blocks in rooms: who blocked whom decides who can pull whom into a room. */
import { describe, expect, it } from "vitest";
import { api, expectProblem, signup } from "../../helpers/api";
import { block, unblock } from "../blocks/helpers";
import { createGroup, type RoomBody } from "./helpers";

const direct = (from: { accessToken: string }, to: string) =>
  api<RoomBody>("/v1/rooms", { token: from.accessToken, body: { kind: "direct", memberIds: [to] } });

describe("chat rooms and blocks", () => {
  it("no direct room between a blocker and the one they blocked, either way (403)", async () => {
    const [alice, bob] = [await signup(), await signup()];
    expect((await block(bob, alice.id)).status).toBe(201);
    expectProblem(await direct(alice, bob.id), 403, "forbidden");
    expectProblem(await direct(bob, alice.id), 403, "forbidden");
    expect((await api("/v1/rooms", { token: alice.accessToken })).body.items).toEqual([]);
    expect((await api("/v1/rooms", { token: bob.accessToken })).body.items).toEqual([]);
    // Unblocked, either can open it.
    expect((await unblock(bob, alice.id)).status).toBe(204);
    expect((await direct(alice, bob.id)).status).toBe(201);
  });

  it("an existing direct room is not handed out again once one side blocked the other", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const room = await direct(alice, bob.id);
    expect(room.status).toBe(201);
    await block(bob, alice.id);
    expectProblem(await direct(alice, bob.id), 403, "forbidden");
    expectProblem(await direct(bob, alice.id), 403, "forbidden");
  });

  it("a group with members who blocked the caller → 403 naming each, and no room is made", async () => {
    const [alice, bob, carol, dave] = [await signup(), await signup(), await signup(), await signup()];
    await block(carol, alice.id);
    await block(dave, alice.id);
    const res = await api("/v1/rooms", {
      token: alice.accessToken,
      body: { kind: "group", name: "spam", memberIds: [bob.id, carol.id, bob.id, dave.id] },
    });
    const p = expectProblem(res, 403, "forbidden");
    expect(p.errors).toEqual([
      { path: "memberIds.1", message: expect.any(String) },
      { path: "memberIds.3", message: expect.any(String) },
    ]);
    for (const u of [alice, bob, carol, dave])
      expect((await api("/v1/rooms", { token: u.accessToken })).body.items).toEqual([]);
  });

  it("a block in the other direction does not stop the blocker from putting the blocked user in a group", async () => {
    const [alice, bob] = [await signup(), await signup()];
    await block(alice, bob.id);
    const room = await createGroup(alice, [bob]);
    expect(room.members.map((m) => m.userId)).toEqual([alice.id, bob.id]);
  });

  it("the owner cannot add someone who blocked them (403 on userId); others still can", async () => {
    const [alice, bob, carol] = [await signup(), await signup(), await signup()];
    const room = await createGroup(alice, [bob]);
    await block(carol, alice.id);
    const p = expectProblem(
      await api(`/v1/rooms/${room.id}/members`, { token: alice.accessToken, body: { userId: carol.id } }),
      403,
      "forbidden",
    );
    expect(p.errors).toEqual([{ path: "userId", message: expect.any(String) }]);
    const view = await api<RoomBody>(`/v1/rooms/${room.id}`, { token: alice.accessToken });
    expect(view.body.members.map((m) => m.userId)).toEqual([alice.id, bob.id]);
    // Bob hands the room over? No: only the owner adds. But once Carol lifts the block, Alice can.
    await unblock(carol, alice.id);
    expect(
      (await api(`/v1/rooms/${room.id}/members`, { token: alice.accessToken, body: { userId: carol.id } })).status,
    ).toBe(201);
  });

  // 403 while the block stands; they can once it is lifted.
  it("someone who left a group cannot rejoin while a member blocks them", async () => {
    const [alice, bob, carol] = [await signup(), await signup(), await signup()];
    const room = await createGroup(alice, [bob, carol]);
    const leave = await api(`/v1/rooms/${room.id}/members/me`, { method: "DELETE", token: bob.accessToken });
    expect(leave.status).toBe(204);
    // Carol, an ordinary member (not the owner), blocks Bob.
    await block(carol, bob.id);
    const rejoin = () =>
      api<RoomBody>(`/v1/rooms/${room.id}/members`, { token: bob.accessToken, body: { userId: "me" } });
    const p = expectProblem(await rejoin(), 403, "forbidden");
    expect(p.errors).toEqual([{ path: "userId", message: expect.any(String) }]);
    expect((await api<RoomBody>(`/v1/rooms/${room.id}`, { token: alice.accessToken })).body.members).toHaveLength(2);
    await unblock(carol, bob.id);
    expect((await rejoin()).status).toBe(201);
  });

  it("a leaver who blocked a member may still rejoin (as the blocker may put them in a group)", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const room = await createGroup(alice, [bob]);
    await api(`/v1/rooms/${room.id}/members/me`, { method: "DELETE", token: bob.accessToken });
    await block(bob, alice.id);
    const res = await api<RoomBody>(`/v1/rooms/${room.id}/members`, { token: bob.accessToken, body: { userId: "me" } });
    expect(res.status).toBe(201);
  });
});
