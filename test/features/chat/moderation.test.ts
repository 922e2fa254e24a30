/**
 * Issue 11.7: `DELETE /v1/rooms/:id/messages/:seq`. The sender or the room's owner turns a message
 * into a tombstone `{ ..., text: null, fileId: null, deleted: true }` that keeps its seq; sockets get
 * `{ type: "deleted", seq }`; history, replays, the room listing and push all respect it.
 */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { Message } from "../../../src/features/chat/protocol";
import type { ChatRoom } from "../../../src/features/chat/room";
import { handleChatMessage } from "../../../src/features/push/delivery";
import type { Job } from "../../../src/jobs";
import { api, expectProblem, serviceKey, signup, type TestUser } from "../../helpers/api";
import { brokenSignature } from "../../helpers/tokens";
import { fcmToken, recordingEnv, registerDevice, requestsFor } from "../push/helpers";
import { connect, createGroup, roomStub, sendRest, unflushedSeqs } from "./helpers";

const del = (user: TestUser | null, roomId: string, seq: number | string, token = user?.accessToken) =>
  api(`/v1/rooms/${roomId}/messages/${seq}`, { method: "DELETE", token: token ?? null });

const tombstoneOf = (m: Message) => ({
  id: m.id,
  roomId: m.roomId,
  seq: m.seq,
  clientId: m.clientId,
  senderId: m.senderId,
  text: null,
  fileId: null,
  createdAt: m.createdAt,
  deleted: true,
});

describe("deleting a chat message", () => {
  // History, replay and listing show the tombstone; seq keeps no gaps.
  it("the sender deletes: 204, sockets get `deleted`, the tombstone shows everywhere", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const room = await createGroup(alice, [bob]);
    const a = await connect(alice, room.id);
    const b = await connect(bob, room.id);
    const first = (await sendRest(bob, room.id, "keep me")).body;
    const oops = (await sendRest(bob, room.id, "oops, wrong room", "oops-1")).body;
    await a.socket.messages(2);
    await b.socket.messages(2);

    expect((await del(bob, room.id, oops.seq)).status).toBe(204);
    expect(await a.socket.next("deleted")).toEqual({ type: "deleted", seq: oops.seq });
    expect(await b.socket.next("deleted")).toEqual({ type: "deleted", seq: oops.seq });

    const history = await api(`/v1/rooms/${room.id}/messages`, { token: alice.accessToken });
    expect(history.body.items).toEqual([first, tombstoneOf(oops)]);
    const listed = await api(`/v1/rooms/${room.id}`, { token: alice.accessToken });
    expect(listed.body.lastMessage).toEqual(tombstoneOf(oops));
    expect(JSON.stringify(listed.body)).not.toContain("wrong room");
    const rooms = await api("/v1/rooms", { token: alice.accessToken });
    expect(JSON.stringify(rooms.body)).not.toContain("wrong room");

    const replay = await connect(alice, room.id, { afterSeq: 0 });
    expect(await replay.socket.messages(2)).toEqual([first, tombstoneOf(oops)]);

    // A resend of the deleted message's clientId yields the tombstone, not a new message.
    const resent = await sendRest(bob, room.id, "oops, wrong room", "oops-1");
    expect(resent.status).toBe(200);
    expect(resent.body).toEqual(tombstoneOf(oops));
    b.socket.send({ type: "send", clientId: "oops-1", text: "oops, wrong room" });
    expect((await b.socket.messages(1))[0]).toEqual(tombstoneOf(oops));

    // Idempotent, and the log goes on after the tombstone.
    expect((await del(bob, room.id, oops.seq)).status).toBe(204);
    const next = await sendRest(alice, room.id, "next");
    expect(next.body.seq).toBe(oops.seq + 1);
    for (const s of [a, b, replay]) s.socket.close();
  });

  it("the owner may delete anyone's message; deleting an older message leaves lastMessage alone", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const room = await createGroup(alice, [bob]);
    const spam = (await sendRest(bob, room.id, "spam")).body;
    const last = (await sendRest(bob, room.id, "fine")).body;
    expect((await del(alice, room.id, spam.seq)).status).toBe(204);
    const view = await api(`/v1/rooms/${room.id}`, { token: bob.accessToken });
    expect(view.body.lastMessage).toEqual(last);
    const page = await api(`/v1/rooms/${room.id}/messages?after=0`, { token: bob.accessToken });
    expect(page.body.items[0]).toEqual(tombstoneOf(spam));
  });

  it("refuses others (403), unknown seqs (404) and bad seqs (400)", async () => {
    const [alice, bob, carol] = [await signup(), await signup(), await signup()];
    const room = await createGroup(alice, [bob, carol]);
    const owners = (await sendRest(alice, room.id, "owner's")).body;
    const bobs = (await sendRest(bob, room.id, "bob's")).body;
    expectProblem(await del(carol, room.id, bobs.seq), 403, "forbidden");
    expectProblem(await del(bob, room.id, owners.seq), 403, "forbidden");
    expectProblem(await del(bob, room.id, 99), 404, "not_found");
    expectProblem(await del(bob, room.id, 0), 404, "not_found");
    expectProblem(await del(bob, room.id, "abc"), 400, "validation_failed");
    expectProblem(await del(bob, room.id, "-1"), 400, "validation_failed");
    expectProblem(await del(bob, room.id, "1.5"), 400, "validation_failed");
    const history = await api(`/v1/rooms/${room.id}/messages`, { token: alice.accessToken });
    expect(history.body.items).toEqual([owners, bobs]);
  });

  it("in a direct room only the sender may delete", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const direct = await api(`/v1/rooms`, { token: alice.accessToken, body: { kind: "direct", memberIds: [bob.id] } });
    const roomId = direct.body.id as string;
    const m = (await sendRest(alice, roomId, "mine")).body;
    expectProblem(await del(bob, roomId, m.seq), 403, "forbidden");
    expect((await del(alice, roomId, m.seq)).status).toBe(204);
  });

  // Refused: no token, a tampered token, the service key. Nothing changes.
  it("security: bad tokens and the service key are refused; a stranger gets 404", async () => {
    const [alice, mallory] = [await signup(), await signup()];
    const room = await createGroup(alice);
    const m = (await sendRest(alice, room.id, "private")).body;
    expectProblem(await del(null, room.id, m.seq), 401, "unauthorized");
    expectProblem(await del(alice, room.id, m.seq, brokenSignature(alice.accessToken)), 401, "unauthorized");
    expectProblem(await del(alice, room.id, m.seq, serviceKey()), 403, "forbidden");
    expectProblem(await del(mallory, room.id, m.seq), 404, "not_found");
    expectProblem(await del(mallory, "no-such-room", 1), 404, "not_found");
    const history = await api(`/v1/rooms/${room.id}/messages`, { token: alice.accessToken });
    expect(history.body.items).toEqual([m]);
  });

  it("push: a queued chat.message job for a deleted message sends nothing", async () => {
    const [alice, bob] = [await signup({ name: "Alice" }), await signup()];
    const token = fcmToken();
    await registerDevice(bob, token, "fcm");
    const room = await createGroup(alice, [bob], "Team");
    // Bob is online while the messages are sent, so the real jobs push nothing; the test runs its own.
    const b = await connect(bob, room.id);
    const gone = (await sendRest(alice, room.id, "deleted before delivery")).body;
    const kept = (await sendRest(alice, room.id, "kept")).body;
    expect((await del(alice, room.id, gone.seq)).status).toBe(204);
    b.socket.close();
    const job = (m: Message): Extract<Job, { type: "chat.message" }> => ({
      type: "chat.message",
      roomId: room.id,
      roomName: "Team",
      roomKind: "group",
      seq: m.seq,
      messageId: m.id,
      senderId: alice.id,
      senderName: "Alice",
      text: m.text,
      hasFile: false,
      recipients: [bob.id],
    });
    const { env: e } = recordingEnv();
    expect(await handleChatMessage(e, job(gone))).toMatchObject({ sent: 0 });
    expect(await requestsFor("/fcm/v1/", token)).toEqual([]);
    expect(await handleChatMessage(e, job(kept))).toMatchObject({ sent: 1 });
    expect(await requestsFor("/fcm/v1/", token)).toHaveLength(1);
  });

  it("a message deleted before its D1 mirror is mirrored as a tombstone, with no push job", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const room = await createGroup(alice, [bob]);
    await sendRest(alice, room.id, "mirrored");
    const stub = roomStub(room.id);
    // A message stored, then a crash before its mirror and push job.
    await runInDurableObject(stub, (o: ChatRoom, state) => {
      state.storage.sql.exec(
        "INSERT INTO messages (seq, id, sender_id, client_id, text, file_id, created_at) " +
          "VALUES (2, ?, ?, 'crash-1', 'secret', NULL, ?)",
        crypto.randomUUID(),
        alice.id,
        new Date().toISOString(),
      );
      const jobs: Job[] = [];
      (o as unknown as { jobs: Job[] }).jobs = jobs;
      (o as unknown as { enqueueJobs: (js: Job[]) => Promise<void> }).enqueueJobs = async (js) => void jobs.push(...js);
    });
    expect((await del(alice, room.id, 2)).status).toBe(204);
    await runInDurableObject(stub, (_o: ChatRoom, state) => state.storage.setAlarm(Date.now() + 60_000));
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const view = await api(`/v1/rooms/${room.id}`, { token: bob.accessToken });
    expect(view.body.lastMessage).toMatchObject({ seq: 2, text: null, deleted: true });
    expect(view.body.lastSeq).toBe(2);
    const jobs = await runInDurableObject(stub, (o: ChatRoom) => (o as unknown as { jobs: Job[] }).jobs);
    expect(jobs).toEqual([]);
    expect(await unflushedSeqs(room.id)).toEqual([]);
  });

  it("a deletion whose D1 mirror failed is mirrored by the alarm", async () => {
    const alice = await signup();
    const room = await createGroup(alice);
    const m = (await sendRest(alice, room.id, "to be hidden")).body;
    const stub = roomStub(room.id);
    // The tombstone committed in the room, its D1 mirror did not (D1 was down).
    await runInDurableObject(stub, (_o: ChatRoom, state) => {
      state.storage.sql.exec("UPDATE messages SET text = NULL, deleted = 1 WHERE seq = ?", m.seq);
      state.storage.sql.exec("INSERT INTO unmirrored_deletes (seq) VALUES (?)", m.seq);
      return state.storage.setAlarm(Date.now() + 60_000);
    });
    expect((await api(`/v1/rooms/${room.id}`, { token: alice.accessToken })).body.lastMessage.text).toBe(
      "to be hidden",
    );
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect((await api(`/v1/rooms/${room.id}`, { token: alice.accessToken })).body.lastMessage).toEqual(tombstoneOf(m));
    const left = await runInDurableObject(
      stub,
      (_o: ChatRoom, state) => state.storage.sql.exec("SELECT count(*) AS n FROM unmirrored_deletes").one().n,
    );
    expect(left).toBe(0);
  });
});
