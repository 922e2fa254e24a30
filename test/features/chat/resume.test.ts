import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { ChatRoom } from "../../../src/features/chat/room";
import { api, signup } from "../../helpers/api";
import { connect, createGroup, newClientId, roomStub, sendRest, unflushedSeqs } from "./helpers";

describe("chat: nothing is lost across disconnects and evictions", () => {
  it("a client that reconnects with afterSeq receives exactly the missed messages, in order", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const room = await createGroup(alice, [bob]);
    const a = await connect(alice, room.id);
    const b1 = await connect(bob, room.id);
    a.socket.send({ type: "send", clientId: "m1", text: "one" });
    const [seen] = await b1.socket.messages(1);
    expect(seen!.seq).toBe(1);
    b1.socket.close();
    await a.socket.next("presence");

    for (const t of ["two", "three", "four"]) a.socket.send({ type: "send", clientId: `m-${t}`, text: t });
    await a.socket.messages(3);

    const b2 = await connect(bob, room.id, { afterSeq: seen!.seq });
    expect(b2.ready.lastSeq).toBe(4);
    const missed = await b2.socket.messages(3);
    expect(missed.map((m) => [m.seq, m.text])).toEqual([
      [2, "two"],
      [3, "three"],
      [4, "four"],
    ]);
    await b2.socket.expectNo("message");

    // Live messages continue after the replay.
    a.socket.send({ type: "send", clientId: "m5", text: "five" });
    expect((await b2.socket.messages(1))[0]).toMatchObject({ seq: 5, text: "five" });
    a.socket.close();
    b2.socket.close();
  });

  it("a sync frame replays every later message in order on an open socket", async () => {
    const alice = await signup();
    const room = await createGroup(alice);
    for (let i = 1; i <= 5; i++) await sendRest(alice, room.id, `msg ${i}`);
    const { socket, ready } = await connect(alice, room.id);
    expect(ready.lastSeq).toBe(5);
    socket.send({ type: "sync", afterSeq: 2 });
    expect((await socket.messages(3)).map((m) => m.seq)).toEqual([3, 4, 5]);
    socket.send({ type: "sync", afterSeq: 5 });
    await socket.expectNo("message");
    socket.close();
  });

  // Hibernated sockets keep working across the eviction.
  it("evicting the room between messages loses nothing and keeps seq gapless", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const room = await createGroup(alice, [bob]);
    const stub = roomStub(room.id);
    const a = await connect(alice, room.id);
    const b = await connect(bob, room.id);
    await a.socket.next("presence");

    a.socket.send({ type: "send", clientId: "e1", text: "before eviction" });
    await b.socket.messages(1);
    await evictDurableObject(stub);

    // The sockets survived (hibernated); identity came back from the attachment.
    b.socket.send({ type: "send", clientId: "e2", text: "after eviction" });
    const [m2] = await a.socket.messages(2).then((ms) => ms.slice(1));
    expect(m2).toMatchObject({ seq: 2, senderId: bob.id, text: "after eviction" });
    await b.socket.messages(1);

    await evictDurableObject(stub);
    expect((await sendRest(alice, room.id, "REST after eviction")).body.seq).toBe(3);
    await evictDurableObject(stub);
    const dup = await sendRest(bob, room.id, "again", "e2");
    expect(dup.status).toBe(200);
    expect(dup.body.seq).toBe(2);

    const history = await api(`/v1/rooms/${room.id}/messages`, { token: alice.accessToken });
    expect(history.body.items.map((m: { seq: number; text: string }) => [m.seq, m.text])).toEqual([
      [1, "before eviction"],
      [2, "after eviction"],
      [3, "REST after eviction"],
    ]);
    const reconnect = await connect(bob, room.id, { afterSeq: 0 });
    expect((await reconnect.socket.messages(3)).map((m) => m.seq)).toEqual([1, 2, 3]);
    a.socket.close();
    b.socket.close();
    reconnect.socket.close();
  });

  it("concurrent senders get distinct, gapless seqs, and the listing ends on the highest", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const room = await createGroup(alice, [bob]);
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => sendRest(i % 2 ? bob : alice, room.id, `burst ${i}`)),
    );
    expect(results.map((r) => r.status)).toEqual(Array(20).fill(201));
    expect(results.map((r) => r.body.seq).sort((x, y) => x - y)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    const view = await api(`/v1/rooms/${room.id}`, { token: alice.accessToken });
    expect(view.body.lastSeq).toBe(20);
    expect(view.body.lastMessage.seq).toBe(20);
  });

  // As lastMessage: a REST send as soon as it returns; a socket send once the room's next flush ran.
  it("the room list shows a REST send at once, a socket send after the next flush", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const room = await createGroup(alice, [bob]);
    const other = await createGroup(alice, [], "Quiet");
    const sent = await sendRest(bob, room.id, "fresh");
    const list = await api(`/v1/rooms`, { token: alice.accessToken });
    expect(list.body.items.map((r: { id: string }) => r.id)).toEqual([room.id, other.id]);
    expect(list.body.items[0]).toMatchObject({ lastMessage: sent.body, lastSeq: 1, unreadCount: 1 });
    const bobs = await api(`/v1/rooms`, { token: bob.accessToken });
    expect(bobs.body.items[0]).toMatchObject({ id: room.id, unreadCount: 0 });

    // A socket send is broadcast without waiting for D1; the room's next flush (at most
    // chatMirrorFlushMs later, or the alarm after an eviction) puts it in the listing.
    const { socket } = await connect(alice, room.id);
    socket.send({ type: "send", clientId: newClientId(), text: "via socket" });
    const [m] = await socket.messages(1);
    await runInDurableObject(roomStub(room.id), (o: ChatRoom) =>
      (o as unknown as { flushNow(): Promise<void> }).flushNow(),
    );
    const again = await api(`/v1/rooms`, { token: bob.accessToken });
    expect(again.body.items[0]).toMatchObject({ id: room.id, lastMessage: m, unreadCount: 1 });
    socket.close();
  });

  it("a message stored but not yet mirrored to D1 (e.g. a crash in between) is mirrored by the alarm", async () => {
    const alice = await signup();
    const room = await createGroup(alice);
    await sendRest(alice, room.id, "mirrored");
    const stub = roomStub(room.id);
    // Simulate a crash after the synchronous store, before the mirror ran.
    await runInDurableObject(stub, (_o: ChatRoom, state) => {
      state.storage.sql.exec(
        "INSERT INTO messages (seq, id, sender_id, client_id, text, file_id, created_at) " +
          "VALUES (2, ?, ?, 'crash-1', 'orphan', NULL, ?)",
        crypto.randomUUID(),
        alice.id,
        new Date().toISOString(),
      );
    });
    await evictDurableObject(stub);
    const before = await api(`/v1/rooms/${room.id}`, { token: alice.accessToken });
    expect(before.body.lastMessage.seq).toBe(1);
    await runInDurableObject(stub, (_o: ChatRoom, state) => state.storage.setAlarm(Date.now() + 60_000));
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const after = await api(`/v1/rooms/${room.id}`, { token: alice.accessToken });
    expect(after.body.lastMessage).toMatchObject({ seq: 2, text: "orphan" });
    expect(await unflushedSeqs(room.id)).toEqual([]);
  });
});
