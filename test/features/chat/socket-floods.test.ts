/**
 * Socket floods in a room: a user's open sockets on one room are capped (the quietest goes, 4429), and
 * `sync` frames spend one budget per user however many sockets they hold.
 */
import { describe, expect, it } from "vitest";
import { limits } from "../../../src/config";
import { CLOSE_TOO_MANY_SOCKETS } from "../../../src/lib/sockets";
import { signup } from "../../helpers/api";
import { connect, createGroup, inRoom, type Socket, sendRest } from "./helpers";

describe("chat: a user's sockets in one room", () => {
  // No presence flaps for the user while it happens.
  it(`past ${limits.socketsPerUserPerObject} open sockets, the quietest closes with 4429`, async () => {
    const [alice, bob] = [await signup(), await signup()];
    const room = await createGroup(alice, [bob]);
    const watcher = (await connect(bob, room.id)).socket;
    const sockets: Socket[] = [];
    for (let i = 0; i < limits.socketsPerUserPerObject; i++) sockets.push((await connect(alice, room.id)).socket);
    // Every socket but the first has been heard from since it opened: the first is the quietest.
    for (const s of sockets.slice(1)) await s.roundTrip();
    const newest = (await connect(alice, room.id)).socket;
    expect((await sockets[0]!.closedWithin()).code).toBe(CLOSE_TOO_MANY_SOCKETS);
    const open = await inRoom(room.id, (_r, state) => state.getWebSockets(alice.id).filter((w) => w.readyState === 1));
    expect(open).toHaveLength(limits.socketsPerUserPerObject);
    // Alice stayed online throughout: Bob saw her come online once and never go offline.
    await newest.roundTrip();
    await watcher.roundTrip();
    expect(watcher.take("presence")).toEqual([{ type: "presence", userId: alice.id, online: true }]);
    // The others still work.
    expect((await sendRest(bob, room.id, "still here")).status).toBe(201);
    for (const s of [...sockets.slice(1), newest]) expect((await s.next("message")).message.text).toBe("still here");
  });
});

describe("chat: the sync budget", () => {
  it("is one per user in a room: several sockets of one user share it; another user has their own", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const room = await createGroup(alice, [bob]);
    const mine = [(await connect(alice, room.id)).socket, (await connect(alice, room.id)).socket];
    mine.push((await connect(alice, room.id)).socket);
    const theirs = (await connect(bob, room.id)).socket;
    // Time stands still in the room: no token comes back during the test.
    const now = Date.now();
    await inRoom(room.id, (r) => {
      r.now = () => now;
    });
    const perSocket = 3;
    for (let i = 0; i < perSocket; i++) for (const s of mine) s.send({ type: "sync", afterSeq: 0 });
    for (const s of mine) await s.roundTrip();
    const refused = mine.flatMap((s) => s.take("error"));
    expect(refused.every((e) => e.code === "rate_limited")).toBe(true);
    expect(mine.length * perSocket - refused.length).toBe(limits.chatSyncBurst);
    // Bob's budget is untouched.
    for (let i = 0; i < limits.chatSyncBurst; i++) theirs.send({ type: "sync", afterSeq: 0 });
    await theirs.expectNo("error");
  });
});
