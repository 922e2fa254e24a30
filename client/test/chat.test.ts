import { describe, expect, it } from "vitest";
import { type Message, memoryStorage, type OutpostError, type Room, type RoomEvents } from "../src/index.js";
import { BASE, client, PASSWORD, Sockets, signedIn, standIns, type TestClient, until } from "./helpers.js";

/** Resolves with the first event of `name` that `pred` accepts. */
function next<K extends keyof RoomEvents>(
  room: Room,
  name: K,
  pred: (...a: RoomEvents[K]) => boolean = () => true,
): Promise<RoomEvents[K]> {
  return until<RoomEvents[K]>(
    (cb) => room.on(name, (...a) => cb(a)),
    (a) => pred(...a),
  );
}

/** Collects a room's messages; `until(n)` resolves once n arrived. */
function collect(room: Room) {
  const got: Message[] = [];
  const waiters: [number, () => void][] = [];
  room.on("message", (m) => {
    got.push(m);
    for (const w of waiters.filter(([n]) => got.length >= n)) w[1]();
  });
  return {
    got,
    until: (n: number) => (got.length >= n ? Promise.resolve() : new Promise<void>((ok) => waiters.push([n, ok]))),
  };
}

async function pair(): Promise<{ a: TestClient; b: TestClient; sa: Sockets; sb: Sockets; roomId: string }> {
  const sa = new Sockets();
  const sb = new Sockets();
  const a = await signedIn({ WebSocket: sa.Ctor });
  const b = await signedIn({ WebSocket: sb.Ctor });
  const room = await a.rooms.create({ memberIds: [b.user!.id], name: "test" });
  return { a, b, sa, sb, roomId: room.id };
}

describe("chat", () => {
  it("sends across forced socket drops arrive once each, in seq order, on both sides", async () => {
    const { a, b, sa, sb, roomId } = await pair();
    const ra = a.room(roomId);
    const rb = b.room(roomId);
    const inA = collect(ra);
    const inB = collect(rb);
    const readyA = next(ra, "ready");
    ra.connect({ afterSeq: 0 });
    rb.connect({ afterSeq: 0 });
    await readyA;

    // Five sends; the socket drops as soon as the first comes back, so the others' answers are lost.
    const sends = [1, 2, 3, 4, 5].map((i) => ra.send({ text: `m${i}` }));
    await inA.until(1);
    sa.open()[0]!.cut();
    // Five more while the socket is down: they wait in the outbox.
    sends.push(...[6, 7, 8, 9, 10].map((i) => ra.send({ text: `m${i}` })));
    // The receiver drops too, midway.
    await inB.until(3);
    sb.open()[0]!.cut();

    const sent = await Promise.all(sends);
    expect(sent.map((m) => m.text)).toEqual(Array.from({ length: 10 }, (_, i) => `m${i + 1}`));
    await inA.until(10);
    await inB.until(10);
    for (const got of [inA.got, inB.got]) {
      expect(got.map((m) => m.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      expect(got.map((m) => m.text)).toEqual(sent.map((m) => m.text));
    }
    const history = await ra.history({ after: 0 });
    expect(history.items.map((m) => [m.seq, m.text])).toEqual(sent.map((m) => [m.seq, m.text]));
    expect(ra.pending).toBe(0);

    // Reconnects resumed from the last seq; sockets authenticate with a ticket where the server has them.
    expect(sa.all.length).toBeGreaterThanOrEqual(2);
    expect(sa.all[1]!.url).toMatch(/afterSeq=\d+/);
    expect(sa.all[1]!.url).toMatch(/[?&](ticket|token)=/);
    a.close();
    b.close();
  });

  it("replays a long history in order, following `more` pages", async () => {
    const { a, b, roomId } = await pair();
    const ra = a.room(roomId);
    const ready = next(ra, "ready");
    ra.connect();
    await ready;
    const N = 505;
    await Promise.all(Array.from({ length: N }, (_, i) => ra.send({ text: `h${i + 1}` })));

    const rb = b.room(roomId);
    const inB = collect(rb);
    rb.connect({ afterSeq: 0 });
    await inB.until(N);
    expect(inB.got.map((m) => m.seq)).toEqual(Array.from({ length: N }, (_, i) => i + 1));
    expect(rb.lastSeq).toBe(N);
    a.close();
    b.close();
  });

  it("typing, read and presence reach the other member", async () => {
    const { a, b, roomId } = await pair();
    const ra = a.room(roomId);
    const rb = b.room(roomId);
    const readyB = next(rb, "ready");
    rb.connect();
    await readyB;
    const online = next(rb, "presence", (p) => p.userId === a.user!.id && p.online);
    ra.connect();
    await online;
    await next(ra, "ready");
    const typing = next(rb, "typing");
    ra.typing();
    expect((await typing)[0]).toBe(a.user!.id);
    const m = await rb.send({ text: "hi" });
    const read = next(rb, "read", (r) => r.userId === a.user!.id);
    await ra.markRead(m.seq);
    expect((await read)[0].seq).toBe(m.seq);
    a.close();
    b.close();
  });

  it("4403 (removed from the room) stops the socket and tells the app", async () => {
    const { a, b, sb, roomId } = await pair();
    const rb = b.room(roomId);
    const ready = next(rb, "ready");
    rb.connect();
    await ready;
    const stopped = next(rb, "stopped");
    await a.room(roomId).removeMember(b.user!.id);
    const [err] = await stopped;
    expect((err as OutpostError).code).toBe("forbidden");
    const sockets = sb.all.length;
    await expect(rb.send({ text: "still here?" })).rejects.toMatchObject({ code: "forbidden" });
    expect(sb.all.length).toBe(sockets);
    a.close();
    b.close();
  });

  it("4429 (too many sockets of this user on the room): the quietest stops instead of fighting back", async () => {
    const { a, roomId } = await pair();
    const creds = { email: a.user!.email!, password: PASSWORD };
    const devices: TestClient[] = [];
    const rooms: Room[] = [];
    let stopped: Promise<unknown[]> | undefined;
    // One socket more than the server's per-user cap (limits.socketsPerUserPerObject = 8).
    for (let i = 0; i < 9; i++) {
      const d = client();
      await d.auth.signInWithPassword(creds);
      const r = d.room(roomId);
      stopped ??= next(r, "stopped");
      const ready = next(r, "ready");
      r.connect();
      await ready;
      devices.push(d);
      rooms.push(r);
      if (i === 0) await new Promise((res) => setTimeout(res, 50)); // the first is the quietest
    }
    const [err] = await stopped!;
    expect((err as OutpostError).code).toBe("rate_limited");
    // It stays down: the others keep their sockets and still work.
    const m = await rooms[8]!.send({ text: "still here" });
    expect(m.seq).toBeGreaterThan(0);
    for (const d of devices) d.close();
    a.close();
  });

  it("4401: refresh once and reconnect; when the session is over, stop and sign out", async () => {
    const { a, b, sa, roomId } = await pair();
    const ra = a.room(roomId);
    let ready = next(ra, "ready");
    ra.connect();
    await ready;
    a.net.log.length = 0;
    ready = next(ra, "ready");
    sa.open()[0]!.closeWith(4401);
    await ready;
    expect(a.net.count("POST", "/v1/auth/refresh")).toBe(1);

    // The session ends elsewhere (e.g. password change on another device).
    const other = client();
    await other.auth.signInWithPassword({ email: a.user!.email!, password: PASSWORD });
    const mine = (await other.auth.listSessions()).find((s) => !s.current)!;
    const stopped = next(ra, "stopped");
    // The server itself closes the socket of a revoked session with 4401; the refresh then fails.
    await other.auth.revokeSession(mine.id);
    expect((await stopped)[0].status).toBe(401);
    expect(a.auth.session).toBeNull();
    a.close();
    b.close();
    other.close();
  });

  it("a silent dead connection is found by the heartbeat and replaced", async () => {
    const sockets = new Sockets();
    const a = await signedIn({
      WebSocket: sockets.Ctor,
      reconnect: { minDelayMs: 10, maxDelayMs: 50, heartbeatMs: 100 },
    });
    const room = await a.rooms.create({ memberIds: [] });
    const ra = a.room(room.id);
    let ready = next(ra, "ready");
    ra.connect();
    await ready;
    ready = next(ra, "ready");
    sockets.all[0]!.silence();
    await ready;
    expect(sockets.all.length).toBe(2);
    const m = await ra.send({ text: "after the heartbeat" });
    expect(m.seq).toBe(1);
    a.close();
  });

  it("sends made while offline survive a restart (outbox in storage, same clientId)", async () => {
    const storage = memoryStorage();
    const set = storage.setItem;
    const saved = new Promise<void>((ok) => {
      storage.setItem = async (k, v) => {
        await set(k, v);
        if (k.startsWith("outpost.chat.")) ok();
      };
    });
    const a = await signedIn({ storage });
    const room = await a.rooms.create({ memberIds: [] });
    void a.room(room.id).send({ text: "from the outbox", clientId: "c-1" });
    await saved;
    a.close();

    const again = client({ storage: a.storage });
    await again.ready;
    const r = again.room(room.id);
    const got = collect(r);
    r.connect({ afterSeq: 0 });
    await got.until(1);
    expect(got.got[0]).toMatchObject({ text: "from the outbox", clientId: "c-1", seq: 1 });
    expect(r.pending).toBe(0);
    const res = await fetch(`${BASE}/v1/rooms/${room.id}/messages?after=0`, {
      headers: { authorization: `Bearer ${again.auth.session!.accessToken}` },
    });
    expect(((await res.json()) as { items: unknown[] }).items).toHaveLength(1);
    again.close();
  });
});

/**
 * Frames of API v1.1 the server does not send yet (`more`, `deleted`, a replay with a hole), through a stand-in
 * socket.
 */
describe("chat frames (stand-in socket)", () => {
  // Early messages wait for the gap; a hole the replay cannot fill is skipped; deleted ones too.
  it("`more` pages on with sync and fills gaps in order", async () => {
    const { sockets, opened, StandIn } = standIns();
    const a = await signedIn({ WebSocket: StandIn });
    const room = await a.rooms.create({ memberIds: [] });
    const r = a.room(room.id);
    const got: number[] = [];
    const deleted: number[] = [];
    r.on("message", (m) => got.push(m.seq));
    r.on("deleted", (s) => deleted.push(s));
    r.connect({ afterSeq: 0 });
    await opened(1);
    const s = sockets[0]!;
    const msg = (seq: number) => ({
      type: "message",
      message: {
        id: `m${seq}`,
        roomId: room.id,
        seq,
        clientId: `c${seq}`,
        senderId: "other",
        text: `t${seq}`,
        fileId: null,
        createdAt: "2026-01-01T00:00:00.000Z",
      },
    });

    s.feed({ type: "ready", lastSeq: 9, online: [] });
    s.feed(msg(1));
    s.feed(msg(2));
    s.feed({ type: "more", afterSeq: 2 });
    expect(s.sent.at(-1)).toEqual({ type: "sync", afterSeq: 2 });
    s.feed(msg(5)); // a live message overtakes the next page: it waits
    expect(got).toEqual([1, 2]);
    expect(s.sent.filter((f) => f.type === "sync")).toHaveLength(1); // already paging: no second sync
    s.feed(msg(3));
    s.feed({ type: "deleted", seq: 4 }); // a deleted message in the replay keeps its seq
    expect(got).toEqual([1, 2, 3, 5]);
    expect(deleted).toEqual([4]);

    s.feed(msg(7)); // a hole at 6: ask for it...
    expect(s.sent.at(-1)).toEqual({ type: "sync", afterSeq: 5 });
    s.feed(msg(7)); // ...the replay has nothing at 6: go on
    s.feed(msg(8));
    expect(got).toEqual([1, 2, 3, 5, 7, 8]);
    s.feed({ type: "deleted", seq: 2 }); // a live deletion of an old message
    expect(deleted).toEqual([4, 2]);
    expect(r.lastSeq).toBe(8);
    a.close();
  });
});
