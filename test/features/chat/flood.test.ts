/**
 * Issue 11.1 / 11.2: one small frame must not make the room send a flood. A replay sends at most
 * `chatReplayPage` messages and then `more`; `sync` frames are rate limited per user; `typing` is
 * forwarded at most once per user per `chatTypingIntervalSec`.
 */
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { limits } from "../../../src/config";
import type { ChatRoom } from "../../../src/features/chat/room";
import { signup } from "../../helpers/api";
import { connect, createGroup, roomStub } from "./helpers";

/** Fills the room's log with `n` messages straight in its storage (fast; no D1 mirror needed). */
async function fillRoom(roomId: string, senderId: string, n: number): Promise<void> {
  await runInDurableObject(roomStub(roomId), (_o: ChatRoom, state) => {
    state.storage.sql.exec("INSERT INTO meta (key, value) VALUES ('room_id', ?) ON CONFLICT (key) DO NOTHING", roomId);
    const at = new Date().toISOString();
    for (let seq = 1; seq <= n; seq++) {
      state.storage.sql.exec(
        "INSERT INTO messages (seq, id, sender_id, client_id, text, file_id, created_at) " +
          "VALUES (?, ?, ?, ?, ?, NULL, ?)",
        seq,
        crypto.randomUUID(),
        senderId,
        `fill-${seq}`,
        `message ${seq}`,
        at,
      );
    }
  });
}

describe("chat: replays are paged", () => {
  // Exactly one page first; sync then pages on to the end.
  it(`afterSeq=0 on a 1,200-message room replays ${limits.chatReplayPage} messages, then more`, async () => {
    expect(limits.chatReplayPage).toBe(500);
    const alice = await signup();
    const room = await createGroup(alice);
    await fillRoom(room.id, alice.id, 1200);

    const { socket, ready } = await connect(alice, room.id, { afterSeq: 0 });
    expect(ready.lastSeq).toBe(1200);
    expect(await socket.next("more")).toEqual({ type: "more", afterSeq: 500 });
    const first = socket.take("message").map((f) => f.message.seq);
    expect(first).toEqual(Array.from({ length: 500 }, (_, i) => i + 1));

    socket.send({ type: "sync", afterSeq: 500 });
    expect(await socket.next("more")).toEqual({ type: "more", afterSeq: 1000 });
    expect(socket.take("message").map((f) => f.message.seq)).toEqual(Array.from({ length: 500 }, (_, i) => i + 501));

    socket.send({ type: "sync", afterSeq: 1000 });
    await socket.roundTrip();
    expect(socket.take("message").map((f) => f.message.seq)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1001));
    expect(socket.take("more")).toEqual([]);
    socket.close();
  });

  it("a flood of sync frames is refused with rate_limited error frames, and the socket stays usable", async () => {
    const alice = await signup();
    const room = await createGroup(alice);
    await fillRoom(room.id, alice.id, 3);
    const { socket } = await connect(alice, room.id);
    const now = Date.now();
    await runInDurableObject(roomStub(room.id), (o: ChatRoom) => {
      (o as unknown as { now: () => number }).now = () => now;
    });
    for (let i = 0; i < 30; i++) socket.send({ type: "sync", afterSeq: 0 });
    await socket.roundTrip();
    const replayed = socket.take("message");
    const refused = socket.take("error");
    expect(refused.length).toBeGreaterThan(0);
    expect(refused.every((e) => e.code === "rate_limited")).toBe(true);
    // Only the frames within the budget replayed anything (3 messages each).
    expect(replayed.length).toBe(3 * (30 - refused.length));
    expect(30 - refused.length).toBe(limits.chatSyncBurst);
    // Other frames are not affected.
    socket.send({ type: "send", clientId: "after-flood", text: "fine" });
    expect((await socket.messages(1))[0]).toMatchObject({ seq: 4, text: "fine" });
    socket.close();
  });
});

describe("chat: a sync past the end", () => {
  it("does not silence the live messages that follow", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const room = await createGroup(alice, [bob]);
    const a = await connect(alice, room.id);
    const b = await connect(bob, room.id, { afterSeq: 1000 });
    b.socket.send({ type: "sync", afterSeq: 5000 });
    await b.socket.roundTrip();
    a.socket.send({ type: "send", clientId: "live-1", text: "can you hear me?" });
    expect((await b.socket.messages(1))[0]).toMatchObject({ seq: 1, text: "can you hear me?" });
    a.socket.close();
    b.socket.close();
  });
});

describe("chat: typing is throttled per user", () => {
  it(`50 typing frames reach another member as one; the next window lets one more through`, async () => {
    const [alice, bob] = [await signup(), await signup()];
    const room = await createGroup(alice, [bob]);
    const a = await connect(alice, room.id);
    const b = await connect(bob, room.id);
    await a.socket.next("presence");
    // A fixed clock: the whole burst lands inside one window however slow the machine is.
    let now = Date.now();
    await runInDurableObject(roomStub(room.id), (o: ChatRoom) => {
      (o as unknown as { now: () => number }).now = () => now;
    });

    for (let i = 0; i < 50; i++) a.socket.send({ type: "typing" });
    await a.socket.roundTrip(); // Alice's frames were all handled…
    await b.socket.roundTrip(); // …so whatever they caused for Bob arrived before this pong.
    expect(b.socket.take("typing")).toEqual([{ type: "typing", userId: alice.id }]);
    expect(a.socket.take("typing")).toEqual([]);

    now += limits.chatTypingIntervalSec * 1000 - 1;
    a.socket.send({ type: "typing" });
    await a.socket.roundTrip();
    await b.socket.roundTrip();
    expect(b.socket.take("typing")).toEqual([]);

    now += 1;
    for (let i = 0; i < 5; i++) a.socket.send({ type: "typing" });
    await a.socket.roundTrip();
    await b.socket.roundTrip();
    expect(b.socket.take("typing")).toEqual([{ type: "typing", userId: alice.id }]);

    // Bob's own typing has its own budget.
    b.socket.send({ type: "typing" });
    expect(await a.socket.next("typing")).toEqual({ type: "typing", userId: bob.id });
    a.socket.close();
    b.socket.close();
  });
});
