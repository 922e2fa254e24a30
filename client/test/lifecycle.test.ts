import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { memoryStorage, type Snapshot, type StoredRecord } from "../src/index.js";
import { client, Net, PASSWORD, Sockets, signedIn, standIns, until } from "./helpers.js";

describe("app state", () => {
  it("background pauses sockets; foreground refreshes a due token and resumes without losing messages", async () => {
    let now = Date.now();
    const sa = new Sockets();
    const a = await signedIn({ WebSocket: sa.Ctor, now: () => now });
    const b = await signedIn();
    const room = await a.rooms.create({ memberIds: [b.user!.id] });
    const ra = a.room(room.id);
    const got = new Promise<string>((ok) => ra.on("message", (m) => ok(m.text ?? "")));
    const ready = until<void>(
      (cb) => ra.on("ready", () => cb()),
      () => true,
    );
    ra.connect();
    await ready;

    a.setAppState("background");
    expect(sa.open()).toHaveLength(0);
    await b.room(room.id).connect().send({ text: "while you were away" });
    now += 20 * 60_000; // the access token expired meanwhile

    const refreshed = until<string>(
      (cb) => a.auth.onAuthStateChange((e) => cb(e)),
      (e) => e === "TOKEN_REFRESHED",
    );
    const back = until<void>(
      (cb) => ra.on("ready", () => cb()),
      () => true,
    );
    a.setAppState("active");
    await refreshed;
    await back;
    expect(await got).toBe("while you were away");
    expect(sa.all).toHaveLength(2);
    a.close();
    b.close();
  });
});

/**
 * Live `subscribe` sockets (API v1.1) are not on the server yet: until they are, a stand-in socket
 * speaks the documented frames to the SDK (the rest is the real Worker), and the probe that tells
 * the SDK the route exists answers as the route will ("not an upgrade").
 */
describe("live subscribe feed (documented frames, stand-in socket)", () => {
  it("replays, becomes ready, applies changes, and starts over on resync_required", async () => {
    const net = new Net();
    const inner = net.fetch;
    net.fetch = async (input, init) =>
      /\/subscribe$/.test(new URL(input).pathname)
        ? new Response(JSON.stringify({ status: 400, code: "bad_request", title: "Bad request" }), {
            status: 400,
            headers: { "content-type": "application/problem+json" },
          })
        : inner(input, init);
    const { sockets, opened, StandIn } = standIns();
    const c = await signedIn({ net, WebSocket: StandIn });
    const rec = (id: string, title: string, version = 1): StoredRecord => ({
      id,
      ownerId: c.user!.id,
      createdAt: `2026-01-0${version}T00:00:00.000Z`,
      updatedAt: "2026-01-01T00:00:00.000Z",
      version,
      title,
      body: "",
      pinned: false,
      tags: [],
    });
    const watch = (cb: (s: Snapshot<StoredRecord>) => void) => c.collection("notes").watch({ sort: "title" }, cb);
    const off = watch(() => undefined);
    await opened(1);
    expect(sockets[0]!.url).toMatch(/\/v1\/collections\/notes\/subscribe\?(ticket|token)=/);

    sockets[0]!.feed({ type: "change", cursor: "c1", item: rec("r1", "one") });
    sockets[0]!.feed({ type: "change", cursor: "c2", item: rec("r2", "two") });
    sockets[0]!.feed({ type: "ready", cursor: "c2" });
    let s = await until(watch, (x) => x.synced && x.items.length === 2);
    expect(s.items.map((r) => r.title)).toEqual(["one", "two"]);
    sockets[0]!.feed({ type: "change", cursor: "c3", item: { id: "r1", deleted: true, version: 2 } });
    s = await until(watch, (x) => x.items.length === 1);
    expect(s.items[0]!.title).toBe("two");

    // A dropped socket resumes from the last cursor.
    sockets[0]!.close(1006);
    await opened(2);
    expect(sockets[1]!.url).toMatch(/subscribe\?since=c3&/);

    // Past retention: the collection is dropped locally and synced again from the start.
    sockets[1]!.feed({ type: "error", code: "resync_required" });
    sockets[1]!.close(4410);
    await until(watch, (x) => x.items.length === 0);
    await opened(3);
    expect(sockets[2]!.url).not.toMatch(/since=/);
    off();
    c.close();
  });
});

describe("package", () => {
  it("is versioned with the server and has no runtime dependency but tus-js-client", () => {
    const mine = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
    const server = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8"));
    expect(mine.version).toBe(server.version);
    expect(Object.keys(mine.dependencies)).toEqual(["tus-js-client"]);
  });

  it("a second client on the same storage needs its own storageKey", async () => {
    const storage = memoryStorage();
    const a = client({ storage, storageKey: "a." });
    const b = client({ storage, storageKey: "b." });
    await a.auth.signUp({ email: `a-${Date.now()}@sdk.test`, password: PASSWORD });
    await b.ready;
    expect(b.auth.session).toBeNull();
    a.close();
    b.close();
  });
});
