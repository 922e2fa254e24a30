import { describe, expect, it } from "vitest";
import type { OutpostError } from "../src/index.js";
import { client, email, Net, PASSWORD, Sockets, signedIn } from "./helpers.js";

const refuse = (status: number, code: string) =>
  new Response(JSON.stringify({ status, code, title: code }), {
    status,
    headers: { "content-type": "application/problem+json" },
  });

describe("no access token in a URL", () => {
  for (const [status, code] of [
    [403, "forbidden"],
    [404, "not_found"],
  ] as const) {
    it(`a socket-ticket call answered ${status} is reported, never replaced by ?token=`, async () => {
      const net = new Net();
      const inner = net.fetch;
      net.fetch = async (input, init) =>
        new URL(input).pathname === "/v1/auth/socket-ticket" ? refuse(status, code) : inner(input, init);
      const sa = new Sockets();
      const a = client({ net, WebSocket: sa.Ctor });
      await a.auth.signUp({ email: email(), password: PASSWORD });
      const b = await signedIn();
      const room = await a.rooms.create({ memberIds: [b.user!.id] });
      const ra = a.room(room.id);
      const outcome = new Promise<string>((ok) => {
        ra.on("ready", () => ok("ready"));
        ra.on("stopped", (e: OutpostError) => ok(`stopped ${e.code}`));
      });
      ra.connect();
      expect(await outcome).toBe(`stopped ${code}`);
      expect(sa.all.filter((s) => /[?&]token=/.test(s.url))).toEqual([]);
      a.close();
      b.close();
    });
  }
});

describe("what a user queued stays theirs", () => {
  // Bob queues a chat message offline and signs out; Carol signs in on the same client.
  it("a message Bob queued never goes out as Carol", async () => {
    const sa = new Sockets();
    const a = client({ WebSocket: sa.Ctor });
    const bobEmail = email("bob");
    const carolEmail = email("carol");
    await a.auth.signUp({ email: bobEmail, password: PASSWORD });
    const carolOther = client();
    await carolOther.auth.signUp({ email: carolEmail, password: PASSWORD });
    const room = await a.rooms.create({ memberIds: [carolOther.user!.id] });
    const ra = a.room(room.id);
    const ready = new Promise<void>((ok) => ra.on("ready", () => ok()));
    ra.connect({ afterSeq: 0 });
    await ready;

    a.setOnline(false);
    const bobSend = ra.send({ text: "private draft by Bob" });
    const bobOutcome = bobSend.then(
      () => "sent",
      (e: OutpostError) => `rejected ${e.code}`,
    );
    await new Promise((r) => setTimeout(r, 50));
    expect(ra.pending).toBe(1);
    await a.auth.signOut();

    await a.auth.signInWithPassword({ email: carolEmail, password: PASSWORD });
    a.setOnline(true);
    const again = new Promise<void>((ok) => ra.on("ready", () => ok()));
    ra.connect({ afterSeq: 0 });
    await again;
    const mine = await ra.send({ text: "Carol's own" });
    expect(mine.senderId).toBe(carolOther.user!.id);
    expect(await bobOutcome).toBe("rejected signed_out");
    const history = await ra.history({ after: 0 });
    expect(history.items.map((m) => m.text)).toEqual(["Carol's own"]);
    expect(ra.pending).toBe(0);
    a.close();
    carolOther.close();
  });

  it("a switch of user without sign-out parks the first user's offline writes until they sign in again", async () => {
    const a = client();
    const bobEmail = email("bob");
    await a.auth.signUp({ email: bobEmail, password: PASSWORD });
    const bobId = a.user!.id;
    a.setOnline(false);
    await a.collection("notes").create({ title: "Bob's offline note" });
    expect(a.pendingWrites).toHaveLength(1);

    await a.auth.signUp({ email: email("carol"), password: PASSWORD });
    a.setOnline(true);
    await a.flush();
    expect(a.pendingWrites).toHaveLength(0);
    const asCarol = await a.request<{ items: { title: string }[] }>("/v1/collections/notes/records");
    expect(asCarol.items).toEqual([]);

    await a.auth.signInWithPassword({ email: bobEmail, password: PASSWORD });
    await a.flush();
    const asBob = await a.request<{ items: { title: string; ownerId: string }[] }>("/v1/collections/notes/records");
    expect(asBob.items.map((r) => [r.title, r.ownerId])).toEqual([["Bob's offline note", bobId]]);
    a.close();
  });
});
