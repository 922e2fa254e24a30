import { describe, expect, it } from "vitest";
import type { Conflict, OutpostError, Snapshot, StoredRecord } from "../src/index.js";
import { client, Net, PASSWORD, signedIn, until } from "./helpers.js";

const WRITE = /^(POST|PATCH|PUT|DELETE)$/;
const isRecordWrite = (e: { method: string; path: string }) =>
  WRITE.test(e.method) && e.path.startsWith("/v1/collections/notes/records");

describe("offline-first records", () => {
  // …even though every first answer is lost on the way back.
  it("a queue filled offline flushes exactly once, in order, when the network returns", async () => {
    const c = await signedIn({ defaults: { notes: { body: "", pinned: false, tags: [] } } });
    const notes = c.collection("notes");
    const a = await notes.create({ title: "a" });
    expect(a.version).toBe(1);

    c.net.mode = "down";
    const b = await notes.create({ title: "b" });
    expect(b).toMatchObject({ title: "b", version: 0 });
    await notes.update(b.id, { body: "b1" });
    await notes.update(a.id, { pinned: true });
    const gone = await notes.create({ title: "gone", tags: ["x"] });
    await notes.delete(gone.id);
    await notes.update(b.id, { title: "b2" });
    await notes.replace(a.id, { title: "a2", tags: ["t"] });
    await c.flush();
    expect(c.pendingWrites).toHaveLength(7);
    expect(notes.hasPendingWrites(b.id)).toBe(true);
    // The local view already shows every change.
    expect((await notes.query({ sort: "createdAt" })).map((r) => [r.title, r.body ?? null, r.pinned ?? null])).toEqual([
      ["a2", "", false],
      ["b2", "b1", false],
    ]);

    const order = c.pendingWrites.map((w) => w.key);
    c.net.mode = "lose";
    c.net.log.length = 0;
    for (let i = 0; i < 30 && c.pendingWrites.length; i++) await c.flush();
    expect(c.pendingWrites).toHaveLength(0);
    expect(notes.hasPendingWrites(b.id)).toBe(false);

    // The server: each record once, each version bumped once per write.
    c.net.mode = "up";
    const fresh = await client({ storage: c.storage });
    const server = await fresh.collection("notes").list({ sort: "createdAt" }).all();
    expect(server.map((r) => [r.title, r.body, r.pinned, r.tags, r.version])).toEqual([
      ["a2", "", false, ["t"], 3],
      ["b2", "b1", false, [], 3],
    ]);
    await fresh.collection("notes").sync();
    const changes = await fresh.request<{ items: { id: string; deleted?: boolean }[] }>(
      "/v1/collections/notes/changes",
    );
    expect(changes.items).toHaveLength(3);
    expect(changes.items.filter((i) => i.deleted)).toHaveLength(1);
    // Every write reached the server and lost its first answer; the retries changed nothing twice.
    const writes = c.net.log.filter(isRecordWrite);
    expect(writes.filter((e) => e.lost).map((e) => e.key)).toEqual(order);
    const firstSuccess = [...new Set(writes.filter((e) => e.status < 300).map((e) => e.key))];
    expect(firstSuccess).toEqual(order);

    c.close();
    fresh.close();
  });

  it("writes survive a restart: a new client on the same storage flushes the persisted queue", async () => {
    const c = await signedIn();
    c.net.mode = "down";
    const n = await c.collection("notes").create({ title: "written offline" });
    c.close();

    const again = client({ storage: c.storage });
    await again.ready;
    expect(again.pendingWrites).toHaveLength(1);
    await again.flush();
    expect(again.pendingWrites).toHaveLength(0);
    const rec = await again.collection("notes").get(n.id);
    expect(rec).toMatchObject({ title: "written offline", version: 1 });
    again.close();
  });

  it("a 412 reaches the conflict callback; `local` writes over the newer version", async () => {
    const conflicts: Conflict[] = [];
    const a = await signedIn({
      onConflict: (cf) => {
        conflicts.push(cf);
        return "local";
      },
    });
    const note = await a.collection("notes").create({ title: "v1", body: "mine" });

    const b = client();
    await b.auth.signInWithPassword({ email: a.user!.email!, password: PASSWORD });
    await b.collection("notes").update(note.id, { title: "from b" });

    a.net.mode = "down";
    await a.collection("notes").update(note.id, { title: "from a" });
    a.net.mode = "up";
    await a.flush();

    expect(conflicts).toHaveLength(1);
    expect(conflicts[0]).toMatchObject({ collection: "notes", id: note.id, op: "update", data: { title: "from a" } });
    expect(conflicts[0]!.server).toMatchObject({ title: "from b", version: 2 });
    expect(conflicts[0]!.local).toMatchObject({ title: "from a" });
    expect(await b.collection("notes").get(note.id)).toMatchObject({ title: "from a", body: "mine", version: 3 });
    a.close();
    b.close();
  });

  it("without a conflict callback the server's version wins and the local change is dropped", async () => {
    const a = await signedIn();
    const note = await a.collection("notes").create({ title: "v1" });
    const b = client();
    await b.auth.signInWithPassword({ email: a.user!.email!, password: PASSWORD });
    await b.collection("notes").update(note.id, { title: "from b" });
    a.net.mode = "down";
    await a.collection("notes").update(note.id, { title: "from a" });
    a.net.mode = "up";
    await a.flush();
    expect(a.pendingWrites).toHaveLength(0);
    expect((await a.collection("notes").query())[0]).toMatchObject({ title: "from b", version: 2 });
    a.close();
    b.close();
  });

  // Later refusals (no caller waiting any more) go to onSyncError.
  it("a write the server refuses is thrown to its caller and undone locally", async () => {
    const errors: OutpostError[] = [];
    const c = await signedIn({ onSyncError: (e) => errors.push(e) });
    const notes = c.collection("notes");
    await expect(notes.create({ title: "" })).rejects.toMatchObject({ status: 400, code: "validation_failed" });
    expect(await notes.query()).toHaveLength(0);

    c.net.mode = "down";
    await notes.create({ title: "x".repeat(201) });
    expect(await notes.query()).toHaveLength(1);
    c.net.mode = "up";
    await c.flush();
    expect(errors.map((e) => e.code)).toEqual(["validation_failed"]);
    expect(await notes.query()).toHaveLength(0);
    c.close();
  });

  it("watch: a live query over the local store, fed by the change feed, with hasPendingWrites", async () => {
    const a = await signedIn();
    const b = client();
    await b.auth.signInWithPassword({ email: a.user!.email!, password: PASSWORD });
    const notes = a.collection("notes");
    const snaps: Snapshot<StoredRecord>[] = [];
    const watch = (cb: (s: Snapshot<StoredRecord>) => void) =>
      notes.watch({ where: { pinned: true }, sort: "title" }, cb);
    const off = watch((s) => snaps.push(s));
    await until(watch, (s) => s.synced);

    // Another device writes; the feed brings it here (live socket, or the next poll of /changes).
    await b.collection("notes").create({ title: "b-pinned", pinned: true });
    await b.collection("notes").create({ title: "b-unpinned" });
    await notes.sync();
    let s = await until(watch, (x) => x.items.length === 1);
    expect(s.items[0]).toMatchObject({ title: "b-pinned" });

    // A local write offline: shown at once, marked pending until the server has it.
    a.net.mode = "down";
    const mine = await notes.create({ title: "a-pinned", pinned: true });
    s = await until(watch, (x) => x.items.length === 2);
    expect(s.items.map((r) => r.title)).toEqual(["a-pinned", "b-pinned"]);
    expect(s.hasPendingWrites(mine.id)).toBe(true);
    a.net.mode = "up";
    await a.flush();
    s = await until(watch, (x) => x.items.length === 2 && !x.hasPendingWrites(mine.id));
    expect(s.items[0]).toMatchObject({ title: "a-pinned", version: 1 });
    expect(snaps.length).toBeGreaterThan(2);
    off();
    a.close();
    b.close();
  });

  it("410 resync_required: the collection is dropped locally and synced again from the start", async () => {
    const net = new Net();
    let refused = 0;
    const inner = net.fetch;
    net.fetch = async (input, init) => {
      if (input.includes("/changes?since=") && refused === 0) {
        refused++;
        return new Response(
          JSON.stringify({
            type: "about:blank",
            title: "Gone",
            status: 410,
            code: "resync_required",
            detail: "cursor too old",
          }),
          {
            status: 410,
            headers: { "content-type": "application/problem+json" },
          },
        );
      }
      return inner(input, init);
    };
    const c = await signedIn({ net });
    const notes = c.collection("notes");
    await notes.create({ title: "one" });
    await notes.sync();
    await notes.create({ title: "two" });
    await notes.sync();
    expect(refused).toBe(1);
    expect((await notes.query({ sort: "title" })).map((r) => r.title)).toEqual(["one", "two"]);
    c.close();
  });

  it("list pages through the server; get uses If-None-Match", async () => {
    const c = await signedIn();
    const notes = c.collection("notes");
    for (let i = 0; i < 5; i++) await notes.create({ title: `n${i}`, pinned: i % 2 === 0 });
    const pages: number[] = [];
    for await (const page of notes.list({ where: { pinned: true }, sort: "title", limit: 2 })) pages.push(page.length);
    expect(pages).toEqual([2, 1]);
    const all = await notes.list({ where: { title: { $in: ["n1", "n3"] } }, sort: "-title" }).all();
    expect(all.map((r) => r.title)).toEqual(["n3", "n1"]);
    const counted = await notes.list({ where: { pinned: true }, limit: 1, count: true });
    expect(counted.items).toHaveLength(1);
    expect(counted.total).toBe(3);
    expect((await notes.list({ limit: 1 })).total).toBeUndefined();
    c.net.log.length = 0;
    const one = await notes.get(all[0]!.id);
    expect(one.title).toBe("n3");
    expect(c.net.log.at(-1)!.status).toBe(304);
    c.close();
  });
});
