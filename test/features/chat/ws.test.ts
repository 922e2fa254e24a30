import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { ChatRoom } from "../../../src/features/chat/room";
import { PONG_TEXT } from "../../../src/lib/sockets";
import { api, expectProblem, serviceKey, signup } from "../../helpers/api";
import { recordRoomJobs } from "../push/helpers";
import { connect, createGroup, insertFile, newClientId, roomStub, Socket, sendRest, upgrade } from "./helpers";

describe("chat over WebSockets", () => {
  it("two members exchange messages: stored with gapless seq, seen by both, sender included", async () => {
    const [alice, bob] = [await signup({ name: "Alice" }), await signup({ name: "Bob" })];
    const room = await createGroup(alice, [bob]);
    const a = await connect(alice, room.id);
    expect(a.ready).toEqual({ type: "ready", lastSeq: 0, online: [alice.id] });
    const b = await connect(bob, room.id);
    expect(b.ready.online.sort()).toEqual([alice.id, bob.id].sort());
    expect(await a.socket.next("presence")).toEqual({ type: "presence", userId: bob.id, online: true });

    a.socket.send({ type: "send", clientId: "a-1", text: "hi Bob" });
    const [atA] = await a.socket.messages(1);
    const [atB] = await b.socket.messages(1);
    expect(atA).toEqual(atB);
    expect(atB).toMatchObject({
      roomId: room.id,
      seq: 1,
      clientId: "a-1",
      senderId: alice.id,
      text: "hi Bob",
      fileId: null,
    });

    b.socket.send({ type: "send", clientId: "b-1", text: "hi Alice" });
    expect((await a.socket.messages(1))[0]).toMatchObject({ seq: 2, senderId: bob.id, text: "hi Alice" });
    expect((await b.socket.messages(1))[0]).toMatchObject({ seq: 2 });

    const history = await api(`/v1/rooms/${room.id}/messages`, { token: bob.accessToken });
    expect(history.body.items.map((m: { seq: number }) => m.seq)).toEqual([1, 2]);
    a.socket.close();
    expect(await b.socket.next("presence")).toEqual({ type: "presence", userId: alice.id, online: false });
    b.socket.close();
  });

  it("a resend with a known clientId yields the original message, not a second one", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const room = await createGroup(alice, [bob]);
    const a = await connect(alice, room.id);
    const b = await connect(bob, room.id);
    a.socket.send({ type: "send", clientId: "dup-1", text: "once" });
    const [first] = await a.socket.messages(1);
    await b.socket.messages(1);
    a.socket.send({ type: "send", clientId: "dup-1", text: "once (retry)" });
    const [again] = await a.socket.messages(1);
    expect(again).toEqual(first);
    await b.socket.expectNo("message", [a.socket]);
    const rest = await sendRest(alice, room.id, "over REST", "dup-1");
    expect(rest.status).toBe(200);
    expect(rest.body).toEqual(first);
    const history = await api(`/v1/rooms/${room.id}/messages`, { token: alice.accessToken });
    expect(history.body.items).toHaveLength(1);
    a.socket.close();
    b.socket.close();
  });

  // Both frames pass the arrival check (neither is stored yet); the store keeps the first, the
  // second gets it back, and the skipped insert uses up no seq.
  it("two sends with one clientId in flight at once store one message, and seqs stay gapless", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const room = await createGroup(alice, [bob]);
    const a = await connect(alice, room.id);
    const b = await connect(bob, room.id);
    a.socket.send({ type: "send", clientId: "race-1", text: "first" });
    a.socket.send({ type: "send", clientId: "race-1", text: "second" });
    const [first, again] = await a.socket.messages(2);
    expect(first).toMatchObject({ seq: 1, clientId: "race-1", text: "first" });
    expect(again).toEqual(first);
    a.socket.send({ type: "send", clientId: "race-2", text: "next" });
    const [next] = await a.socket.messages(1);
    expect(next).toMatchObject({ seq: 2, text: "next" });
    expect((await b.socket.messages(2)).map((m) => m.seq)).toEqual([1, 2]);
    await b.socket.expectNo("message", [a.socket]);
    const history = await api(`/v1/rooms/${room.id}/messages`, { token: alice.accessToken });
    expect(history.body.items.map((m: { seq: number; text: string }) => [m.seq, m.text])).toEqual([
      [1, "first"],
      [2, "next"],
    ]);
    a.socket.close();
    b.socket.close();
  });

  it("answers the protocol's ping with an exact pong (auto-response), and other ping forms too", async () => {
    const alice = await signup();
    const room = await createGroup(alice);
    const { socket } = await connect(alice, room.id);
    socket.send('{"type":"ping"}');
    await socket.next("pong");
    expect(socket.raw.at(-1)).toBe(PONG_TEXT);
    await runInDurableObject(roomStub(room.id), (_o: ChatRoom, state) => {
      const [ws] = state.getWebSockets();
      expect(state.getWebSocketAutoResponseTimestamp(ws!)).toBeInstanceOf(Date);
    });
    socket.send({ type: "ping" });
    socket.send('{ "type": "ping" }');
    await socket.next("pong");
    await socket.next("pong");
    socket.close();
  });

  it("a bad frame gets an error frame and the socket stays open", async () => {
    const alice = await signup();
    const room = await createGroup(alice);
    const { socket } = await connect(alice, room.id);
    socket.send("not json");
    expect(await socket.next("error")).toMatchObject({ code: "bad_frame" });
    socket.send({ type: "dance" });
    expect(await socket.next("error")).toMatchObject({ code: "validation_failed" });
    socket.send({ type: "send", clientId: "x1" });
    expect(await socket.next("error")).toMatchObject({ code: "validation_failed", clientId: "x1" });
    socket.send({ type: "send", clientId: "x2", text: "y".repeat(4001) });
    expect(await socket.next("error")).toMatchObject({ code: "validation_failed", clientId: "x2" });
    socket.send({ type: "send", clientId: "x3", text: "ok", extra: true });
    expect(await socket.next("error")).toMatchObject({ code: "validation_failed" });
    socket.send(JSON.stringify({ type: "send", clientId: "big", text: "z".repeat(40_000) }));
    expect(await socket.next("error")).toMatchObject({ code: "bad_frame" });
    socket.send({ type: "read", seq: 99 });
    expect(await socket.next("error")).toMatchObject({ code: "validation_failed" });
    socket.send({ type: "send", clientId: "x4", text: "still here" });
    expect((await socket.messages(1))[0]).toMatchObject({ seq: 1, text: "still here" });
    socket.close();
  });

  it("relays typing to the others and read receipts to everyone; reads show in the room", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const room = await createGroup(alice, [bob]);
    const a = await connect(alice, room.id);
    const b = await connect(bob, room.id);
    a.socket.send({ type: "typing" });
    expect(await b.socket.next("typing")).toEqual({ type: "typing", userId: alice.id });
    await a.socket.expectNo("typing");

    a.socket.send({ type: "send", clientId: newClientId(), text: "read me" });
    await a.socket.messages(1);
    await b.socket.messages(1);
    b.socket.send({ type: "read", seq: 1 });
    expect(await a.socket.next("read")).toEqual({ type: "read", userId: bob.id, seq: 1 });
    expect(await b.socket.next("read")).toEqual({ type: "read", userId: bob.id, seq: 1 });
    // A socket's read position reaches D1 with the room's next flush (coalesced, not one write per read).
    await runInDurableObject(roomStub(room.id), (o: ChatRoom) =>
      (o as unknown as { flushNow(): Promise<void> }).flushNow(),
    );
    const seen = await api(`/v1/rooms/${room.id}`, { token: bob.accessToken });
    expect(seen.body.unreadCount).toBe(0);
    expect(seen.body.members.find((m: { userId: string }) => m.userId === bob.id).lastReadSeq).toBe(1);
    a.socket.close();
    b.socket.close();
  });

  it("attaches only files the sender may read", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const room = await createGroup(alice, [bob]);
    const own = await insertFile(alice.id, "private");
    const bobsPublic = await insertFile(bob.id, "public");
    const bobsPrivate = await insertFile(bob.id, "private");
    const { socket } = await connect(alice, room.id);
    socket.send({ type: "send", clientId: "f1", fileId: own });
    expect((await socket.messages(1))[0]).toMatchObject({ fileId: own, text: null });
    socket.send({ type: "send", clientId: "f2", fileId: bobsPublic, text: "look" });
    expect((await socket.messages(1))[0]).toMatchObject({ fileId: bobsPublic });
    socket.send({ type: "send", clientId: "f3", fileId: bobsPrivate });
    // The same refusal as over REST (400 validation_failed): one mapper for both.
    expect(await socket.next("error")).toMatchObject({ code: "validation_failed", clientId: "f3" });
    socket.send({ type: "send", clientId: "f4", fileId: "no-such-file" });
    expect(await socket.next("error")).toMatchObject({ code: "validation_failed", clientId: "f4" });
    socket.close();
  });

  it("accepts ?token= for clients that cannot set headers", async () => {
    const alice = await signup();
    const room = await createGroup(alice);
    const { ready, socket } = await connect(alice, room.id, { via: "query" });
    expect(ready.online).toEqual([alice.id]);
    socket.close();
  });

  it("refuses a stranger (404), a bad token (401), no token (401) and a plain GET (400)", async () => {
    const [alice, mallory] = [await signup(), await signup()];
    const room = await createGroup(alice);
    const stranger = await upgrade(room.id, { token: mallory.accessToken });
    expect(stranger.status).toBe(404);
    expect(stranger.webSocket).toBeNull();
    const garbage = await upgrade(room.id, { token: "garbage.token.here" });
    expect(garbage.status).toBe(401);
    expect(garbage.webSocket).toBeNull();
    const viaQuery = await upgrade(room.id, { token: "garbage", via: "query" });
    expect(viaQuery.status).toBe(401);
    expect((await upgrade(room.id)).status).toBe(401);
    expect((await upgrade(room.id, { token: serviceKey() })).status).toBe(403);
    expect((await upgrade("no-such-room", { token: alice.accessToken })).status).toBe(404);
    expectProblem(await api(`/v1/rooms/${room.id}/ws`, { token: alice.accessToken }), 400, "bad_request");
  });

  it("a refused upgrade is still a problem+json answer with X-Request-Id", async () => {
    const [alice, mallory] = [await signup(), await signup()];
    const room = await createGroup(alice);
    const stranger = await upgrade(room.id, { token: mallory.accessToken, headers: { "x-request-id": "ws-req-1" } });
    expect(stranger.status).toBe(404);
    expect(stranger.headers.get("x-request-id")).toBe("ws-req-1");
    // The problem's instance is the server's own id (issue 23.4), never the client's.
    expect(((await stranger.json()) as { instance: string }).instance).toMatch(/^urn:request:[0-9a-f-]{36}$/);
    const anonymous = await upgrade(room.id);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get("x-request-id")).toMatch(/.+/);
  });

  it("ignores forged identity headers: the socket belongs to the token's user", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const room = await createGroup(alice, [bob]);
    const res = await upgrade(room.id, { token: bob.accessToken, headers: { "x-outpost-chat-user": alice.id } });
    expect(res.status).toBe(101);
    const socket = new Socket(res.webSocket!);
    await socket.next("ready");
    socket.send({ type: "send", clientId: "who", text: "me" });
    expect((await socket.messages(1))[0]!.senderId).toBe(bob.id);
    socket.close();
  });

  it("cuts a removed member off with 4403, and their old token cannot reconnect", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const room = await createGroup(alice, [bob]);
    const a = await connect(alice, room.id);
    const b = await connect(bob, room.id);
    await a.socket.next("presence");
    const del = await api(`/v1/rooms/${room.id}/members/${bob.id}`, { method: "DELETE", token: alice.accessToken });
    expect(del.status).toBe(204);
    expect((await b.socket.closed).code).toBe(4403);
    expect(await a.socket.next("presence")).toEqual({ type: "presence", userId: bob.id, online: false });
    expect((await upgrade(room.id, { token: bob.accessToken })).status).toBe(404);
    a.socket.close();
  });

  // The upgrade passed the Worker's membership check just before the member was removed.
  it("the room refuses an upgrade whose member was removed after the Worker's check", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const room = await createGroup(alice, [bob]);
    const a = await connect(alice, room.id);
    // The Worker checked Bob's membership; then he was removed (D1 commit + disconnect RPC, no
    // socket of his to close yet); only then does his upgrade reach the room.
    const sessions = await api(`/v1/auth/sessions`, { token: bob.accessToken });
    const sessionId = sessions.body.items[0].id as string;
    await api(`/v1/rooms/${room.id}/members/${bob.id}`, { method: "DELETE", token: alice.accessToken });
    const res = await roomStub(room.id).fetch(
      new Request("https://chat-room.internal/ws", {
        headers: {
          upgrade: "websocket",
          "x-outpost-chat-user": bob.id,
          "x-outpost-chat-session": sessionId,
          "x-outpost-chat-room": room.id,
        },
      }),
    );
    expect(res.status).toBe(404);
    expect(res.status).not.toBe(101);
    expect(res.webSocket).toBeNull();
    a.socket.send({ type: "send", clientId: newClientId(), text: "bob is gone" });
    await a.socket.messages(1);
    await a.socket.expectNo("presence");
    a.socket.close();
  });

  it("a member removed in D1 whose socket was not cut (lost RPC) is closed with 4403 by the next alarm", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const room = await createGroup(alice, [bob]);
    const a = await connect(alice, room.id);
    const b = await connect(bob, room.id);
    await a.socket.next("presence");
    await env.DB.prepare("DELETE FROM room_members WHERE room_id = ? AND user_id = ?").bind(room.id, bob.id).run();
    expect(await runDurableObjectAlarm(roomStub(room.id))).toBe(true);
    expect((await b.socket.closed).code).toBe(4403);
    expect(await a.socket.next("presence")).toEqual({ type: "presence", userId: bob.id, online: false });
    a.socket.close();
  });

  // 4401: the user's sessions have ended.
  it("deleting an account cuts its sockets with 4401 and removes the membership", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const room = await createGroup(alice, [bob]);
    await sendRest(bob, room.id, "before I go");
    const b = await connect(bob, room.id);
    expect((await api("/v1/me", { method: "DELETE", token: bob.accessToken })).status).toBe(204);
    expect((await b.socket.closed).code).toBe(4401);
    const after = await api(`/v1/rooms/${room.id}`, { token: alice.accessToken });
    expect(after.body.members.map((m: { userId: string }) => m.userId)).toEqual([alice.id]);
    const history = await api(`/v1/rooms/${room.id}/messages`, { token: alice.accessToken });
    expect(history.body.items[0]).toMatchObject({ senderId: bob.id, text: "before I go" });
  });

  it("closes a socket that went silent (no close frame) when the heartbeat alarm runs", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const room = await createGroup(alice, [bob]);
    const a = await connect(alice, room.id);
    const b = await connect(bob, room.id);
    await a.socket.next("presence");
    const stub = roomStub(room.id);
    // Make Bob's socket look silent for longer than the timeout.
    // Through the room: it keeps the attachments it wrote in memory.
    await runInDurableObject(stub, (o: ChatRoom, state) => {
      const room = o as unknown as { attachment(ws: WebSocket): object; attach(ws: WebSocket, att: object): void };
      for (const ws of state.getWebSockets(bob.id))
        room.attach(ws, { ...room.attachment(ws), lastSeenAt: Date.now() - 10 * 60 * 1000 });
    });
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect((await b.socket.closed).code).toBe(4408);
    expect(await a.socket.next("presence")).toEqual({ type: "presence", userId: bob.id, online: false });
    a.socket.send({ type: "ping" });
    await a.socket.next("pong");
    a.socket.close();
  });

  it("keeps a socket whose only sign of life is auto-answered pings", async () => {
    const alice = await signup();
    const room = await createGroup(alice);
    const { socket } = await connect(alice, room.id);
    const stub = roomStub(room.id);
    // Through the room: it keeps the attachments it wrote in memory.
    await runInDurableObject(stub, (o: ChatRoom, state) => {
      const room = o as unknown as { attachment(ws: WebSocket): object; attach(ws: WebSocket, att: object): void };
      for (const ws of state.getWebSockets())
        room.attach(ws, { ...room.attachment(ws), lastSeenAt: Date.now() - 10 * 60 * 1000 });
    });
    socket.send('{"type":"ping"}');
    await socket.next("pong");
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    socket.send({ type: "send", clientId: newClientId(), text: "still connected" });
    expect((await socket.messages(1))[0]).toMatchObject({ text: "still connected" });
    socket.close();
  });

  it("enqueues one push job per new message, for members without an open socket, never the sender", async () => {
    const [alice, bob, carol] = [await signup({ name: "Alice" }), await signup(), await signup()];
    const room = await createGroup(alice, [bob, carol], "Trip");
    const b = await connect(bob, room.id);
    // What the room sends to its JOBS queue, recorded inside the object (however it batches).
    const roomJobs = await recordRoomJobs(room.id);
    const clientId = newClientId();
    const sent = await sendRest(alice, room.id, "dinner?", clientId);
    expect((await sendRest(alice, room.id, "dinner?", clientId)).status).toBe(200);
    const next = await sendRest(alice, room.id, "or lunch?");
    // The retry made no job; the next message has its own.
    await roomJobs.chatJob(next.body.seq);
    expect(roomJobs.queued.map((q) => q.body)).toEqual([
      {
        type: "chat.message",
        roomId: room.id,
        roomName: "Trip",
        roomKind: "group",
        seq: 1,
        messageId: sent.body.id,
        senderId: alice.id,
        senderName: "Alice",
        text: "dinner?",
        hasFile: false,
        recipients: [carol.id],
      },
      expect.objectContaining({
        type: "chat.message",
        seq: 2,
        messageId: next.body.id,
        text: "or lunch?",
        recipients: [carol.id],
      }),
    ]);
    b.socket.close();
  });
});
