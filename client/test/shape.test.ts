import { describe, expect, it } from "vitest";
import type { Message, Snapshot, StoredRecord } from "../src/index.js";
import { PASSWORD, signedIn } from "./helpers.js";

describe("one API shape", () => {
  it("sign-up, sign-in, sign-out and account deletion are all on client.auth; no public clear()", async () => {
    const c = await signedIn();
    const events: string[] = [];
    c.auth.onAuthStateChange((e) => events.push(e));
    expect("clear" in c.auth).toBe(false);
    const mail = c.user!.email!;
    await c.auth.signOut();
    expect(c.user).toBeNull();
    expect(c.net.count("POST", "/v1/auth/logout")).toBe(1);
    await c.auth.signInWithPassword({ email: mail, password: PASSWORD });
    await c.auth.deleteAccount();
    expect(c.user).toBeNull();
    await expect(c.auth.signInWithPassword({ email: mail, password: PASSWORD })).rejects.toMatchObject({
      code: "invalid_credentials",
    });
    expect(events.filter((e) => e === "SIGNED_OUT")).toHaveLength(2);
    c.close();
  });

  it("every list is the same shape: await → first page, for await → every page, all() → every item", async () => {
    const a = await signedIn();
    const b = await signedIn();
    for (const n of [1, 2, 3]) await a.files.upload(new TextEncoder().encode(`f${n}`), { name: `f${n}.txt` });
    for (const n of [1, 2, 3]) await a.collection("notes").create({ title: `n${n}` });
    const room = await a.rooms.create({ memberIds: [b.user!.id], name: "shape" });
    const r = a.room(room.id);
    const ready = new Promise<void>((ok) => r.on("ready", () => ok()));
    r.connect({ afterSeq: 0 });
    await ready;
    for (const n of [1, 2, 3]) await r.send({ text: `m${n}` });

    const first = await a.files.list({ limit: 2 });
    expect(first.items).toHaveLength(2);
    expect(typeof first.nextCursor).toBe("string");
    expect((await a.files.list({ limit: 2 }).all()).map((f) => f.name).sort()).toEqual(["f1.txt", "f2.txt", "f3.txt"]);
    const sizes: number[] = [];
    for await (const items of a.collection("notes").list({ limit: 2, sort: "title" })) sizes.push(items.length);
    expect(sizes).toEqual([2, 1]);
    expect((await a.collection("notes").list({ limit: 2 })).items).toHaveLength(2);
    const msgs: Message[] = await r.history({ after: 0, limit: 2 }).all();
    expect(msgs.map((m) => m.text)).toEqual(["m1", "m2", "m3"]);
    expect((await a.rooms.list().all()).map((x) => x.id)).toEqual([room.id]);
    a.close();
    b.close();
  });

  it("watch() without a query watches the whole collection", async () => {
    const c = await signedIn();
    await c.collection("notes").create({ title: "one" });
    const snap = await new Promise<Snapshot<StoredRecord>>((ok) => {
      const stop = c.collection("notes").watch((s) => {
        if (s.items.length) {
          stop();
          ok(s);
        }
      });
    });
    expect(snap.items.map((n) => n.title)).toEqual(["one"]);
    c.close();
  });
});
