/**
 * Issue 13.1: live data. `GET /v1/collections/:name/subscribe?since=` replays what changed after
 * the cursor, sends `ready`, then every new change once, in cursor order, and only what the caller
 * may list. Reconnecting with the last cursor seen misses nothing and repeats nothing.
 */
import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { limits } from "../../../src/config";
import { createDb } from "../../../src/db";
import type { Principal } from "../../../src/env";
import type { RecordRow } from "../../../src/features/collections/access";
import type { CollectionHub } from "../../../src/features/collections/hub";
import { hubKeyFor, hubName, rootKey, shardOf } from "../../../src/features/collections/live";
import { findCollection } from "../../../src/features/collections/registry";
import { commitCreate as createRecord } from "../../../src/features/collections/writes";
import { api, expectProblem, signup, type TestUser } from "../../helpers/api";
import { brokenSignature } from "../../helpers/tokens";
import { base, createNote, createPost } from "./helpers";
import {
  type ChangeFrame,
  expectCursorOrder,
  hubStub,
  LiveSocket,
  refusedSubscribe,
  runHeartbeat,
  seqOf,
  subscribe,
  subscribeRequest,
} from "./live-helpers";

const notes = findCollection("notes")!;
const posts = findCollection("posts")!;
const db = createDb(env.DB);
const asUser = (u: TestUser): Principal => ({ kind: "user", userId: u.id, sessionId: "test", anonymous: false });

/** The change feed from the start, as `/changes` returns it (the items a socket must match). */
async function feed(name: string, user: TestUser, since?: string) {
  const res = await api(`${base(name)}/changes?limit=200${since ? `&since=${since}` : ""}`, {
    token: user.accessToken,
  });
  expect(res.status, res.text).toBe(200);
  return res.body as { items: Record<string, unknown>[]; nextCursor: string; hasMore: boolean };
}

/** The hub a user's subscription to `name` lives on. */
const hubOf = (name: "notes" | "posts", user: TestUser) =>
  hubStub(hubName(hubKeyFor(name === "notes" ? notes : posts, user.id)));

/**
 * Runs `hook` once inside the hub, right after the next replay read returns and before that
 * socket goes live: whatever it writes lands "between the replay query and going live".
 */
async function duringNextReplay(
  stub: DurableObjectStub<CollectionHub>,
  hook: (hub: CollectionHub) => Promise<void>,
): Promise<{ readsFrom: number[] }> {
  const seen = { readsFrom: [] as number[] };
  await runInDurableObject(stub, (hub: CollectionHub) => {
    const h = hub as unknown as { readLog: (from: number, ...a: unknown[]) => Promise<unknown> };
    const original = h.readLog.bind(hub);
    let armed = true;
    h.readLog = async (from: number, ...args: unknown[]) => {
      seen.readsFrom.push(from);
      const result = await original(from, ...args);
      if (armed) {
        armed = false;
        await hook(hub);
      }
      return result;
    };
  });
  return seen;
}

describe("subscribe: replay, ready, live", () => {
  // The replay matches /changes, tombstones included.
  it("replays changes after `since`, then ready, then each new change in cursor order", async () => {
    const user = await signup();
    const a = await createNote(user, { title: "a" });
    const b = await createNote(user, { title: "b" });
    const { socket, ready, replayed } = await subscribe(user, "notes");
    const all = await feed("notes", user);
    expect(replayed.map((f) => f.item)).toEqual(all.items);
    expect(ready.cursor).toBe(all.nextCursor);
    expectCursorOrder(replayed);

    const a2 = (
      await api(`${base("notes")}/records/${a.id}`, { method: "PATCH", token: user.accessToken, body: { title: "a2" } })
    ).body;
    expect((await api(`${base("notes")}/records/${b.id}`, { method: "DELETE", token: user.accessToken })).status).toBe(
      204,
    );
    const c = await createNote(user, { title: "c" });
    const live = await socket.changes(3);
    expect(live.map((f) => f.item)).toEqual([a2, { id: b.id, deleted: true, version: 2 }, c]);
    expectCursorOrder([ready, ...live]);
    // The last cursor is where /changes continues from: nothing after it.
    expect((await feed("notes", user, live[2]!.cursor)).items).toEqual([]);
    socket.close();
  });

  it("with `since`, replays only what changed after it; an up-to-date cursor replays nothing", async () => {
    const user = await signup();
    await createNote(user, { title: "old" });
    const cursor = (await feed("notes", user)).nextCursor;
    const fresh = await createNote(user, { title: "new" });
    const first = await subscribe(user, "notes", { since: cursor });
    expect(first.replayed.map((f) => f.item)).toEqual([fresh]);
    first.socket.close();
    const second = await subscribe(user, "notes", { since: first.ready.cursor, via: "query" });
    expect(second.replayed).toEqual([]);
    expect(second.ready.cursor).toBe(first.ready.cursor);
    second.socket.close();
  });

  it("exactly once across a reconnect made in the middle of a burst of writes", async () => {
    const [writer, reader] = [await signup(), await signup()];
    const first = await subscribe(reader, "posts");
    const total = 60;
    const created: string[] = [];
    let resolveDisconnected: () => void = () => {};
    const disconnected = new Promise<void>((r) => (resolveDisconnected = r));
    let madeWhileAway = 0;
    let away = false;
    const waiters: { n: number; resolve: () => void }[] = [];
    // Four writers at a time, like a busy app.
    const burst = (async () => {
      let next = 0;
      await Promise.all(
        Array.from({ length: 4 }, async () => {
          while (next < total) {
            const i = next++;
            const post = await createPost(writer, `burst ${i}`);
            created.push(post.id);
            if (away) madeWhileAway++;
            for (const w of waiters.filter((x) => created.length >= x.n)) w.resolve();
            // Hold the writers while the socket is away until some writes have landed meanwhile.
            if (away && madeWhileAway >= 8) resolveDisconnected();
          }
        }),
      );
    })();
    const createdAtLeast = (n: number) =>
      new Promise<void>((resolve) => (created.length >= n ? resolve() : waiters.push({ n, resolve })));

    // Some changes arrive live, then the app loses its connection mid-burst.
    const before = await first.socket.changes(15, 10_000);
    first.socket.close();
    away = true;
    const seenBefore = first.socket.allChanges();
    const lastCursor = seenBefore.at(-1)!.cursor;
    await disconnected;
    expect(madeWhileAway).toBeGreaterThanOrEqual(8);
    // Reconnect with the last cursor seen while the burst goes on.
    const second = await subscribe(reader, "posts", { since: lastCursor });
    away = false;
    await createdAtLeast(total);
    await burst;
    const ids = new Set(created);
    const after = [...second.replayed];
    const got = () => new Set([...seenBefore, ...after].map((f) => f.item.id).filter((id) => ids.has(id)));
    while (got().size < total) after.push(await second.socket.next("change", 10_000));
    await second.socket.roundTrip();
    after.push(...second.socket.take("change"));

    expect(before.length).toBe(15);
    const frames: ChangeFrame[] = [...seenBefore, ...after];
    // Nothing twice (by cursor and by record), nothing missing, all in cursor order across the reconnect.
    expect(new Set(frames.map((f) => f.cursor)).size).toBe(frames.length);
    const burstIds = frames.map((f) => f.item.id).filter((id) => ids.has(id));
    expect(burstIds.length).toBe(total);
    expect(new Set(burstIds).size).toBe(total);
    expectCursorOrder(frames);
    expect(seqOf(after[0]!.cursor)).toBeGreaterThan(seqOf(lastCursor));
    second.socket.close();
  });

  // Setup: another socket on the hub was already live.
  it("a write between the replay query and going live is delivered once", async () => {
    const user = await signup();
    const stub = hubOf("notes", user);
    // A socket already live on the hub, so the hub's fan-out runs while the new socket replays.
    const live = await subscribe(user, "notes");
    let landed: RecordRow | null = null;
    const reads = await duringNextReplay(stub, async (hub) => {
      const { record, seq } = await createRecord(db, notes, asUser(user), { title: "during replay" });
      landed = record;
      // The route's notification, delivered while the new socket is still replaying.
      await hub.notify(hubKeyFor(notes, user.id), seq);
    });
    const late = await subscribe(user, "notes", { since: live.ready.cursor });
    expect(landed).not.toBeNull();
    // The replay read, the hub's fan-out read (for the live socket), then the replay read on from
    // where it stood (head had moved past it), which found the write.
    expect(reads.readsFrom).toEqual([seqOf(live.ready.cursor), seqOf(live.ready.cursor), seqOf(live.ready.cursor)]);
    const seen = [...late.replayed, ...(await late.socket.roundTrip().then(() => late.socket.take("change")))];
    expect(seen.map((f) => f.item)).toEqual([landed]);
    // The socket that was live got it once too.
    expect((await live.socket.changes(1))[0]!.item).toEqual(landed);
    await live.socket.roundTrip();
    expect(live.socket.take("change")).toEqual([]);
    // And nothing more arrives after the next write: the next frame is that write.
    const next = await createNote(user, { title: "after" });
    expect((await late.socket.changes(1))[0]!.item).toEqual(next);
    live.socket.close();
    late.socket.close();
  });

  it("a write during the replay, notified after the socket went live, is delivered once", async () => {
    const user = await signup();
    const stub = hubOf("notes", user);
    let seq = 0;
    let landed: RecordRow | null = null;
    await duringNextReplay(stub, async () => {
      const w = await createRecord(db, notes, asUser(user), { title: "notified late" });
      landed = w.record;
      seq = w.seq!;
    });
    const { socket, replayed } = await subscribe(user, "notes");
    const inReplay = replayed.filter((f) => f.item.id === landed!.id);
    // Now the notification arrives (the write's waitUntil ran late).
    await stub.notify(hubKeyFor(notes, user.id), seq);
    await socket.roundTrip();
    const afterLive = socket.take("change").filter((f) => f.item.id === landed!.id);
    expect(inReplay.length + afterLive.length).toBe(1);
    socket.close();
  });

  // By the next notification (a gap) and by the heartbeat alarm.
  it("a lost notification is repaired from the change log", async () => {
    const user = await signup();
    const { socket } = await subscribe(user, "notes");
    // Two writes whose notifications never arrive...
    const lost1 = await createRecord(db, notes, asUser(user), { title: "lost 1" });
    const lost2 = await createRecord(db, notes, asUser(user), { title: "lost 2" });
    // ...then a write through the API, whose notification carries a cursor past the gap.
    const c = await createNote(user, { title: "notified" });
    const got = await socket.changes(3);
    expect(got.map((f) => f.item)).toEqual([lost1.record, lost2.record, c]);
    expectCursorOrder(got);

    // A lost notification with no later write: the heartbeat's backstop sees the log moved and reads it.
    const lost3 = await createRecord(db, notes, asUser(user), { title: "lost 3" });
    expect(await runHeartbeat(hubOf("notes", user), { backstop: true })).toBe(true);
    expect((await socket.changes(1))[0]!.item).toEqual(lost3.record);
    await socket.roundTrip();
    expect(socket.take("change")).toEqual([]);
    socket.close();
  });
});

describe("subscribe: hibernation", () => {
  // The hub's position comes back from the sockets.
  it("after the hub is evicted, sockets stay and each new change arrives once", async () => {
    const user = await signup();
    const stub = hubOf("notes", user);
    const first = await subscribe(user, "notes");
    const a = await createNote(user, { title: "before" });
    expect((await first.socket.changes(1))[0]!.item).toEqual(a);
    // A second socket that went live further on than the first.
    const b = await createNote(user, { title: "between" });
    const second = await subscribe(user, "notes", { since: (await first.socket.changes(1))[0]!.cursor });
    expect(second.replayed).toEqual([]);
    await evictDurableObject(stub);
    const c = await createNote(user, { title: "after eviction" });
    expect((await first.socket.changes(1))[0]!.item).toEqual(c);
    expect((await second.socket.changes(1))[0]!.item).toEqual(c);
    // Evicted again; a write whose notification is lost; then one that wakes the hub.
    await evictDurableObject(stub);
    const d = await createRecord(db, notes, asUser(user), { title: "lost notification while evicted" });
    const e = await createNote(user, { title: "gap repaired" });
    for (const s of [first, second]) {
      expect((await s.socket.changes(2)).map((f) => f.item)).toEqual([d.record, e]);
      await s.socket.roundTrip();
      expect(s.socket.take("change")).toEqual([]);
      expectCursorOrder(s.socket.allChanges());
    }
    expect(b.id).toBeDefined();
    first.socket.close();
    second.socket.close();
  });
});

describe("subscribe: only what the caller may list", () => {
  it("owner rule: a stranger's socket never sees another user's notes, live or replayed", async () => {
    const [owner, stranger] = [await signup(), await signup()];
    await createNote(owner, { title: "secret before" });
    const watcher = await subscribe(stranger, "notes");
    expect(watcher.replayed).toEqual([]);
    const mine = await subscribe(owner, "notes");
    const secret = await createNote(owner, { title: "secret live" });
    expect((await mine.socket.changes(1))[0]!.item).toEqual(secret);
    const patched = await api(`${base("notes")}/records/${secret.id}`, {
      method: "PATCH",
      token: owner.accessToken,
      body: { title: "still secret" },
    });
    expect(patched.status).toBe(200);
    expect(
      (await api(`${base("notes")}/records/${secret.id}`, { method: "DELETE", token: owner.accessToken })).status,
    ).toBe(204);
    // The log keeps one row per record: the update may arrive, or only the tombstone that replaced it.
    let last = await mine.socket.next("change");
    if (!last.item.deleted) last = await mine.socket.next("change");
    expect(last.item).toEqual({ id: secret.id, deleted: true, version: 3 });
    // The stranger's own write comes after the owner's in the log: had the owner's changes been
    // visible to the stranger's socket, they would arrive first.
    const own = await createNote(stranger, { title: "mine" });
    expect((await watcher.socket.changes(1))[0]!.item).toEqual(own);
    await watcher.socket.roundTrip();
    expect(watcher.socket.allChanges().map((f) => f.item.id)).toEqual([own.id]);
    // Replaying from the start shows the stranger only their own note too.
    const again = await subscribe(stranger, "notes");
    expect(again.replayed.map((f) => f.item.id)).toEqual([own.id]);
    for (const s of [watcher, mine, again]) s.socket.close();
  });

  it("public rule: every subscriber sees everyone's posts", async () => {
    const [a, b, c] = [await signup(), await signup(), await signup()];
    const sa = await subscribe(a, "posts");
    const sb = await subscribe(b, "posts");
    const post = await createPost(c, "hello all");
    expect((await sa.socket.changes(1))[0]!.item).toEqual(post);
    expect((await sb.socket.changes(1))[0]!.item).toEqual(post);
    sa.socket.close();
    sb.socket.close();
  });
});

describe("subscribe: shards of a shared collection", () => {
  /** One signed-up user per shard of `posts`. */
  async function onePerShard(): Promise<TestUser[]> {
    const byShard = new Map<number, TestUser>();
    while (byShard.size < limits.liveHubShards) {
      const u = await signup();
      if (!byShard.has(shardOf(u.id))) byShard.set(shardOf(u.id), u);
    }
    return [...byShard.entries()].sort(([a], [b]) => a - b).map(([, u]) => u);
  }

  // The root forwards each page to the shards; posts arrive in order.
  it("the root reads each page once; a subscriber on every shard gets every post once", async () => {
    const users = await onePerShard();
    const subs = await Promise.all(users.map((u) => subscribe(u, "posts")));
    const reads = await runInDurableObject(hubStub(hubName(rootKey("posts"))), (hub: CollectionHub) => {
      const h = hub as unknown as { readLog: (...a: unknown[]) => Promise<unknown> };
      const original = h.readLog.bind(hub);
      const counter = { n: 0 };
      h.readLog = (...args: unknown[]) => {
        counter.n++;
        return original(...args);
      };
      return counter;
    });
    const made = [];
    for (let i = 0; i < 5; i++) made.push(await createPost(users[i % users.length]!, `sharded ${i}`));
    for (const s of subs) {
      const got = await s.socket.changes(made.length);
      expect(got.map((f) => f.item)).toEqual(made);
      expectCursorOrder(got);
      await s.socket.roundTrip();
      expect(s.socket.take("change")).toEqual([]);
    }
    // The shards did not read the log for those writes: the root did, at most once per write.
    expect(reads.n).toBeGreaterThan(0);
    expect(reads.n).toBeLessThanOrEqual(made.length);
    for (const s of subs) s.socket.close();
  });

  // The root lost the shard's registration. Then a forwarded page after a gap makes the shard read the log.
  it("a forgotten shard re-registers at its heartbeat and reads what it missed", async () => {
    const users = await onePerShard();
    const last = users.at(-1)!;
    const lastShard = shardOf(last.id);
    expect(lastShard).toBeGreaterThan(0);
    const s = await subscribe(last, "posts");
    const root = hubStub(hubName(rootKey("posts")));
    await runInDurableObject(root, (hub: CollectionHub) => {
      (hub as unknown as { shards: Set<number> }).shards.delete(lastShard);
    });
    const missed = await createPost(users[0]!, "not forwarded");
    // The shard's heartbeat registers again and reads the log from where it stands.
    expect(await runHeartbeat(hubOf("posts", last), { backstop: true })).toBe(true);
    expect((await s.socket.changes(1))[0]!.item).toEqual(missed);
    const registered = await runInDurableObject(root, (hub: CollectionHub) =>
      (hub as unknown as { shards: Set<number> }).shards.has(lastShard),
    );
    expect(registered).toBe(true);

    // A forwarded page that starts past the shard's position (a forward was lost): it reads the gap itself.
    const gap = await createRecord(db, posts, asUser(users[0]!), { text: "lost forward", imageFileId: null });
    const key = hubKeyFor(posts, last.id);
    expect(await hubOf("posts", last).deliver(key, gap.seq!, gap.seq!, [])).toBe(true);
    expect((await s.socket.changes(1))[0]!.item).toEqual(gap.record);
    await s.socket.roundTrip();
    expect(s.socket.take("change")).toEqual([]);
    s.socket.close();
  });
});

describe("subscribe: shard registration races", () => {
  // The shard registered again (a socket arrived) before the stale answer came in.
  it("the root keeps a shard whose stale 'no sockets' answer follows its re-registration", async () => {
    const X = limits.liveHubShards - 1;
    const kept = await runInDurableObject(hubStub(hubName(rootKey("posts"))), async (hub: CollectionHub) => {
      const h = hub as unknown as {
        env: Env;
        shards: Set<number>;
        shardLive: CollectionHub["shardLive"];
        forward: (from: number, to: number, items: unknown[]) => Promise<void>;
      };
      await h.shardLive(rootKey("posts"), X);
      const realEnv = h.env;
      // Shard X, as the root reaches it: it registers again (a socket arriving), then answers the
      // forward it got before that with "no sockets".
      const other = { deliver: async () => true };
      const shardX = {
        deliver: async () => {
          await h.shardLive(rootKey("posts"), X);
          return false;
        },
      };
      h.env = {
        ...realEnv,
        COLLECTION_HUB: {
          idFromName: (name: string) => name,
          get: (id: string) => (id.endsWith(`/shard/${X}`) ? shardX : other),
        },
      } as unknown as Env;
      try {
        await h.forward(0, 0, []);
      } finally {
        h.env = realEnv;
      }
      return h.shards.has(X);
    });
    expect(kept).toBe(true);
  });
});

describe("subscribe: the socket's life", () => {
  it('`{"type":"ping"}` is answered by the runtime without waking the hub; other pings by the hub', async () => {
    const user = await signup();
    const { socket } = await subscribe(user, "notes");
    socket.send('{"type":"ping"}');
    expect(await socket.next("pong")).toEqual({ type: "pong" });
    const answeredByRuntime = await runInDurableObject(hubOf("notes", user), (_hub: CollectionHub, state) => {
      const [ws] = state.getWebSockets();
      return state.getWebSocketAutoResponse() !== null && state.getWebSocketAutoResponseTimestamp(ws!) !== null;
    });
    expect(answeredByRuntime).toBe(true);
    await socket.roundTrip();
    socket.close();
  });

  it("a bad frame gets an error frame and the socket stays open", async () => {
    const user = await signup();
    const { socket } = await subscribe(user, "notes");
    socket.send("not json");
    expect(await socket.next("error")).toMatchObject({ type: "error", code: "bad_frame" });
    socket.send({ type: "subscribe" });
    expect(await socket.next("error")).toMatchObject({ type: "error", code: "bad_frame" });
    const n = await createNote(user, { title: "still live" });
    expect((await socket.changes(1))[0]!.item).toEqual(n);
    socket.close();
  });

  it("the heartbeat alarm closes a silent socket (4408); auto-answered pings keep one open", async () => {
    const [quiet, pinging] = [await signup(), await signup()];
    const q = await subscribe(quiet, "posts");
    const p = await subscribe(pinging, "posts");
    const long = Date.now() - 10 * 60 * 1000;
    for (const u of [quiet, pinging]) {
      await runInDurableObject(hubOf("posts", u), (hub: CollectionHub, state) => {
        for (const ws of state.getWebSockets(u.id))
          ws.serializeAttachment({ ...(ws.deserializeAttachment() as object), lastSeenAt: long });
        // The hub keeps the attachments it read in memory: forget them (as hibernation would).
        const held = hub as unknown as { held: WeakMap<WebSocket, unknown>; roster: unknown };
        held.held = new WeakMap();
        held.roster = null;
      });
    }
    p.socket.send('{"type":"ping"}');
    await p.socket.next("pong");
    for (const u of [quiet, pinging]) await runHeartbeat(hubOf("posts", u));
    expect((await q.socket.closedWithin()).code).toBe(4408);
    await p.socket.roundTrip();
    p.socket.close();
  });

  // The backstop alarm catches a session that ended without notice.
  it("logout closes that session's subscription sockets with 4401", async () => {
    const user = await signup();
    const { socket } = await subscribe(user, "notes");
    expect((await api("/v1/auth/logout", { token: user.accessToken, body: {} })).status).toBe(204);
    expect((await socket.closedWithin()).code).toBe(4401);
    // The ended session's access token cannot open a new subscription.
    expectProblem(await refusedSubscribe("notes", { token: user.accessToken }), 401, "unauthorized");

    const other = await signup();
    const s2 = await subscribe(other, "posts");
    await env.DB.prepare("DELETE FROM sessions WHERE user_id = ?").bind(other.id).run();
    expect(await runHeartbeat(hubOf("posts", other), { backstop: true })).toBe(true);
    expect((await s2.socket.closedWithin()).code).toBe(4401);
  });

  it("deleting the account closes its subscriptions (4401); others get its posts' tombstones", async () => {
    const [leaver, watcher] = [await signup(), await signup()];
    const post = await createPost(leaver, "bye");
    const w = await subscribe(watcher, "posts");
    const l = await subscribe(leaver, "posts");
    expect((await api("/v1/me", { method: "DELETE", token: leaver.accessToken })).status).toBe(204);
    expect((await l.socket.closedWithin()).code).toBe(4401);
    const tomb = await w.socket.next("change");
    expect(tomb.item).toEqual({ id: post.id, deleted: true, version: 2 });
    w.socket.close();
  });
});

describe("subscribe: refusals", () => {
  it("not an upgrade → 400; bad since → 400; unknown collection → 404", async () => {
    const user = await signup();
    const plain = await api(`${base("notes")}/subscribe`, { token: user.accessToken });
    expectProblem(plain, 400, "bad_request");
    expectProblem(
      await refusedSubscribe("notes", { token: user.accessToken, since: "not-a-cursor" }),
      400,
      "validation_failed",
    );
    expectProblem(await refusedSubscribe("nope", { token: user.accessToken }), 404, "not_found");
  });

  it("no token, a tampered token, the service key → refused before any socket", async () => {
    const user = await signup();
    expectProblem(await refusedSubscribe("notes"), 401, "unauthorized");
    expectProblem(await refusedSubscribe("notes", { token: brokenSignature(user.accessToken) }), 401, "unauthorized");
    expectProblem(await refusedSubscribe("notes", { token: env.SERVICE_KEY }), 403, "forbidden");
  });

  it("a socket ticket works once", async () => {
    const user = await signup();
    const t = await api("/v1/auth/socket-ticket", { token: user.accessToken, body: {} });
    expect(t.status).toBe(201);
    const ok = await subscribeRequest("notes", { ticket: t.body.ticket });
    expect(ok.status).toBe(101);
    const socket = new LiveSocket(ok.webSocket!);
    await socket.next("ready");
    socket.close();
    expectProblem(await refusedSubscribe("notes", { ticket: t.body.ticket }), 401, "unauthorized");
  });
});
