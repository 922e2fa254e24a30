/**
 * Issue 14: the room broadcasts as soon as its own SQLite has a message and mirrors to D1 in
 * coalesced flushes, with the push jobs of a flush sent in one batch. Nothing may be lost or
 * queued twice on the way: an eviction between commit and flush (the alarm finishes it), a failed
 * D1 write, a failed queue send.
 */
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { limits } from "../../../src/config";
import { ChatRoom } from "../../../src/features/chat/room";
import type { Job } from "../../../src/jobs";
import { api, signup } from "../../helpers/api";
import { connect, createGroup, d1Room, inRoom, onTestClock, roomStub, sendRest, unflushedSeqs } from "./helpers";

const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

/** A D1 binding whose batches fail (an outage), for the room's env. */
function downD1(real: D1Database): D1Database {
  return {
    prepare: (q: string) => real.prepare(q),
    batch: async () => Promise.reject(new Error("D1 unavailable (test)")),
  } as unknown as D1Database;
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("chat: coalesced D1 mirror and push jobs", () => {
  // The flush writes the last message, seq and the sender's read position.
  it("broadcasts a socket send before D1 has it; one flush carries a burst to D1", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const room = await createGroup(alice, [bob]);
    const { socket } = await connect(alice, room.id);
    await onTestClock(room.id, { holdFlushes: true });
    for (let i = 1; i <= 5; i++) socket.send({ type: "send", clientId: `b-${i}`, text: `burst ${i}` });
    const got = await socket.messages(5);
    expect(got.map((m) => m.seq)).toEqual(range(5));
    // Delivered, and D1 has none of it yet: the flush waits for its pace.
    expect(await d1Room(room.id)).toMatchObject({ lastSeq: 0, lastMessage: null });
    await inRoom(room.id, (r) => r.flushNow());
    const d1 = await d1Room(room.id);
    expect(d1).toMatchObject({ lastSeq: 5, lastMessage: got[4] });
    expect(d1.reads).toEqual({ [alice.id]: 5, [bob.id]: 0 });
    const listed = await api(`/v1/rooms/${room.id}`, { token: bob.accessToken });
    expect(listed.body).toMatchObject({ lastSeq: 5, unreadCount: 5, lastMessage: got[4] });
    // One job per message for the member without a socket, sent together.
    const jobs = await inRoom(room.id, (r) => r.test);
    expect(jobs.batches).toBe(1);
    expect(jobs.jobs.map((j) => (j as Extract<Job, { type: "chat.message" }>).seq)).toEqual(range(5));
    socket.close();
  });

  // The room's own timer flushes it, not the retry alarm.
  it("a socket send reaches the room list on its own within the flush pace", async () => {
    const alice = await signup();
    const room = await createGroup(alice);
    const { socket } = await connect(alice, room.id);
    // The first send after a quiet spell flushes at once; the second waits for the pace.
    socket.send({ type: "send", clientId: "t-1", text: "one" });
    socket.send({ type: "send", clientId: "t-2", text: "two" });
    await socket.messages(2);
    const t0 = Date.now();
    // Nothing to await from outside: the flush timer runs inside the room. Poll D1 with a deadline.
    while ((await d1Room(room.id)).lastSeq < 2 && Date.now() - t0 < limits.chatMirrorRetrySec * 1000)
      await new Promise((r) => setTimeout(r, 25));
    expect((await d1Room(room.id)).lastSeq).toBe(2);
    expect(Date.now() - t0).toBeLessThan(limits.chatMirrorRetrySec * 1000);
    socket.close();
  });

  // Every push job is queued once, and seq stays gapless.
  it("an object restarting mid-burst loses nothing: the alarm finishes the flush", async () => {
    const [alice, bob] = [await signup({ name: "Alice" }), await signup()];
    const room = await createGroup(alice, [bob], "Burst");
    const stub = roomStub(room.id);
    // Recorded on the class, so the instance that runs after the eviction records too.
    const queued: Job[] = [];
    vi.spyOn(
      ChatRoom.prototype as unknown as { enqueueJobs(jobs: Job[]): Promise<void> },
      "enqueueJobs",
    ).mockImplementation(async (jobs) => void queued.push(...jobs));
    const { socket } = await connect(alice, room.id);
    await onTestClock(room.id, { holdFlushes: true, recordJobs: false });
    const N = 30;
    for (let i = 1; i <= N; i++) socket.send({ type: "send", clientId: `burst-${i}`, text: `burst ${i}` });
    const got = await socket.messages(N);
    expect(got.map((m) => m.seq)).toEqual(range(N));
    expect((await d1Room(room.id)).lastSeq).toBe(0);
    expect(await unflushedSeqs(room.id)).toEqual(range(N));

    // Evicted between commit and flush: the in-memory flush timer is gone; the alarm it set is not.
    await evictDurableObject(stub);
    // (Normally still pending here; had it fired by itself already, the outcome below is the same.)
    await runDurableObjectAlarm(stub);
    const d1 = await d1Room(room.id);
    expect(d1.lastSeq).toBe(N);
    expect(d1.lastMessage).toEqual(got[N - 1]);
    expect(d1.reads).toEqual({ [alice.id]: N, [bob.id]: 0 });
    expect(await unflushedSeqs(room.id)).toEqual([]);
    expect(queued.map((j) => (j as Extract<Job, { type: "chat.message" }>).seq)).toEqual(range(N));
    expect(queued[0]).toMatchObject({
      type: "chat.message",
      roomName: "Burst",
      senderName: "Alice",
      recipients: [bob.id],
      text: "burst 1",
    });

    // Another flush or alarm owes nothing: no job is queued again.
    await inRoom(room.id, (r) => r.flushNow());
    await runDurableObjectAlarm(stub);
    expect(queued).toHaveLength(N);

    // The log: every message once, gapless; a resend of a clientId from the burst is the original.
    const history = await api(`/v1/rooms/${room.id}/messages?limit=100`, { token: bob.accessToken });
    expect(history.body.items.map((m: { seq: number; text: string }) => [m.seq, m.text])).toEqual(
      range(N).map((i) => [i, `burst ${i}`]),
    );
    const again = await sendRest(alice, room.id, "burst 7", "burst-7");
    expect(again.status).toBe(200);
    expect(again.body).toEqual(got[6]);
    socket.close();
  });

  it("a push job is never queued twice across flush retries (D1 down, then the queue failing midway)", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const room = await createGroup(alice, [bob]);
    const stub = roomStub(room.id);
    const { socket } = await connect(alice, room.id);
    await onTestClock(room.id, { holdFlushes: true, jobsPerBatch: 2 });
    for (let i = 1; i <= 5; i++) socket.send({ type: "send", clientId: `r-${i}`, text: `retry ${i}` });
    await socket.messages(5);

    // D1 is down: nothing is mirrored, no job is queued, everything stays owed.
    await inRoom(room.id, (r) => {
      r.env = { ...r.env, DB: downD1(r.env.DB) };
    });
    await inRoom(room.id, (r) => r.flushNow());
    expect((await d1Room(room.id)).lastSeq).toBe(0);
    expect(await inRoom(room.id, (r) => r.test.jobs.length)).toBe(0);
    expect(await unflushedSeqs(room.id)).toEqual(range(5));

    // D1 is back; the queue takes the first batch of jobs (seq 1, 2) and fails on the second.
    await inRoom(room.id, (r) => {
      r.env = { ...r.env, DB: env.DB };
      r.test.failBatch = 2;
    });
    await inRoom(room.id, (r) => r.flushNow());
    expect((await d1Room(room.id)).lastSeq).toBe(5);
    expect(
      await inRoom(room.id, (r) => r.test.jobs.map((j) => (j as Extract<Job, { type: "chat.message" }>).seq)),
    ).toEqual([1, 2]);
    expect(await unflushedSeqs(room.id)).toEqual([3, 4, 5]);

    // The retry (the alarm) queues only what is still owed; then nothing is owed.
    await runDurableObjectAlarm(stub);
    expect(
      await inRoom(room.id, (r) => r.test.jobs.map((j) => (j as Extract<Job, { type: "chat.message" }>).seq)),
    ).toEqual([1, 2, 3, 4, 5]);
    expect(await unflushedSeqs(room.id)).toEqual([]);
    await inRoom(room.id, (r) => r.flushNow());
    expect(await inRoom(room.id, (r) => r.test.jobs.length)).toBe(5);
    socket.close();
  });

  // Each is answered after the flush that carries it, not after the pace.
  it("REST sends, reads and deletes answer after their flush; concurrent sends share flushes", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const room = await createGroup(alice, [bob]);
    await onTestClock(room.id, { holdFlushes: true });
    const sent = await sendRest(alice, room.id, "over REST");
    expect(sent.status).toBe(201);
    expect(await d1Room(room.id)).toMatchObject({ lastSeq: 1, lastMessage: sent.body });
    expect((await api(`/v1/rooms/${room.id}/read`, { token: bob.accessToken, body: { seq: 1 } })).status).toBe(204);
    expect((await d1Room(room.id)).reads[bob.id]).toBe(1);
    expect((await api(`/v1/rooms/${room.id}/messages/1`, { method: "DELETE", token: alice.accessToken })).status).toBe(
      204,
    );
    expect((await d1Room(room.id)).lastMessage).toMatchObject({ seq: 1, deleted: true, text: null });

    const before = await inRoom(room.id, (r) => (r as unknown as { flushesStarted: number }).flushesStarted);
    const burst = await Promise.all(range(20).map((i) => sendRest(i % 2 ? alice : bob, room.id, `together ${i}`)));
    expect(burst.every((r) => r.status === 201)).toBe(true);
    expect((await d1Room(room.id)).lastSeq).toBe(21);
    const flushes =
      (await inRoom(room.id, (r) => (r as unknown as { flushesStarted: number }).flushesStarted)) - before;
    expect(flushes).toBeGreaterThan(0);
    expect(flushes).toBeLessThanOrEqual(20);
  });

  // A message is one row: the sender's read position and the mirror's bookkeeping wait for the flush.
  it("a sender has read their own unflushed messages; the flush writes the position", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const room = await createGroup(alice, [bob]);
    const a = await connect(alice, room.id);
    const b = await connect(bob, room.id);
    await onTestClock(room.id, { holdFlushes: true });
    for (let i = 1; i <= 3; i++) a.socket.send({ type: "send", clientId: `own-${i}`, text: `own ${i}` });
    await b.socket.messages(3);
    expect(await unflushedSeqs(room.id)).toEqual([1, 2, 3]);
    const reads = () =>
      inRoom(room.id, (_r, state) =>
        state.storage.sql.exec<{ user_id: string; seq: number }>("SELECT user_id, seq FROM reads").toArray(),
      );
    expect(await reads()).toEqual([]);
    // Reading up to one's own last message moves nothing: nobody is told.
    a.socket.send({ type: "read", seq: 2 });
    a.socket.send({ type: "read", seq: 3 });
    await b.socket.expectNo("read", [a.socket]);
    await inRoom(room.id, (r) => r.flushNow());
    expect(await reads()).toEqual([{ user_id: alice.id, seq: 3 }]);
    expect((await d1Room(room.id)).reads).toEqual({ [alice.id]: 3, [bob.id]: 0 });
    expect(await unflushedSeqs(room.id)).toEqual([]);
    // Bob's read still moves and is told, as before.
    b.socket.send({ type: "read", seq: 2 });
    expect(await a.socket.next("read")).toEqual({ type: "read", userId: bob.id, seq: 2 });
    a.socket.close();
    b.socket.close();
  });

  it("a room that kept a table of unflushed messages starts below its first row and drops the table", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const room = await createGroup(alice, [bob]);
    const stub = roomStub(room.id);
    for (let i = 1; i <= 4; i++) expect((await sendRest(alice, room.id, `old ${i}`)).status).toBe(201);
    // The layout before the watermark: seqs 3 and 4 still owed their flush (their push jobs).
    await runInDurableObject(stub, (_o: ChatRoom, state) => {
      state.storage.sql.exec("DELETE FROM meta WHERE key = 'mirrored_seq'");
      state.storage.sql.exec("CREATE TABLE unmirrored (seq INTEGER PRIMARY KEY)");
      state.storage.sql.exec("INSERT INTO unmirrored (seq) VALUES (3), (4)");
    });
    await evictDurableObject(stub);
    const queued: Job[] = [];
    vi.spyOn(
      ChatRoom.prototype as unknown as { enqueueJobs(jobs: Job[]): Promise<void> },
      "enqueueJobs",
    ).mockImplementation(async (jobs) => void queued.push(...jobs));
    expect(await unflushedSeqs(room.id)).toEqual([3, 4]);
    const tables = await runInDurableObject(stub, (_o: ChatRoom, state) =>
      state.storage.sql.exec<{ name: string }>("SELECT name FROM sqlite_master WHERE name = 'unmirrored'").toArray(),
    );
    expect(tables).toEqual([]);
    await runInDurableObject(stub, (_o: ChatRoom, state) => state.storage.setAlarm(Date.now() + 60_000));
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(queued.map((j) => (j as Extract<Job, { type: "chat.message" }>).seq)).toEqual([3, 4]);
    expect(await unflushedSeqs(room.id)).toEqual([]);
    // The room goes on numbering from its log.
    const next = await sendRest(alice, room.id, "new");
    expect(next.body.seq).toBe(5);
  });
});
