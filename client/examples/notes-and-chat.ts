// A tour of @outpost/client that runs against a live server (CI runs it as a smoke test):
// sign up, sync typed notes between two devices (one of them offline for a while), and chat.
//
//   OUTPOST_URL=http://127.0.0.1:8787 node examples/notes-and-chat.ts
import { createClient, memoryStorage, type OutpostClient } from "@outpost/client";
import { type Collections, defaults } from "./outpost-types.ts";

const url = process.env.OUTPOST_URL ?? "http://127.0.0.1:8787";
const stamp = Date.now().toString(36);
const password = "a long enough password";

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`example failed: ${what}`);
  console.log(`ok - ${what}`);
}

const device = () => createClient<Collections>({ url, storage: memoryStorage(), defaults, pollIntervalMs: 1000 });

// --- accounts ---------------------------------------------------------------------------
const phone = device();
const alice = await phone.auth.signUp({ email: `alice-${stamp}@example.com`, password, name: "Alice" });
const laptop = device();
await laptop.auth.signInWithPassword({ email: `alice-${stamp}@example.com`, password });
check(laptop.user?.id === alice.id, "signed up on the phone, signed in on the laptop");

// --- notes: typed, offline-first, synced --------------------------------------------------
const notes = phone.collection("notes");
const pinned = new Promise<string[]>((resolve) => {
  const stop = laptop.collection("notes").watch({ where: { pinned: true }, sort: "-updatedAt" }, (snap) => {
    if (snap.items.length === 2) {
      stop();
      resolve(snap.items.map((n) => n.title));
    }
  });
});

const groceries = await notes.create({ title: "Groceries", tags: ["home"] });
phone.setOnline(false); // the phone loses its connection; writes are queued
await notes.update(groceries.id, { body: "milk, eggs", pinned: true });
const idea = await notes.create({ title: "Startup idea", pinned: true });
check(phone.pendingWrites.length === 2 && notes.hasPendingWrites(idea.id), "two writes queued while offline");
phone.setOnline(true); // back online: the queue flushes in order
await phone.flush();
check(phone.pendingWrites.length === 0, "queue flushed when back online");
check((await pinned).join(",") === "Startup idea,Groceries", "the laptop's live query sees both pinned notes");

const homeNotes = await notes.list({ where: { tags: { $contains: "home" } }, sort: "title" }).all();
check(homeNotes.length === 1 && homeNotes[0]?.body === "milk, eggs", "server-side typed filter");

// --- chat ---------------------------------------------------------------------------------
const bobDevice = device();
const bob = await bobDevice.auth.signUp({ email: `bob-${stamp}@example.com`, password, name: "Bob" });
const info = await phone.rooms.create({ kind: "direct", memberIds: [bob.id] });

const bobRoom = bobDevice.room(info.id).connect({ afterSeq: 0 });
const aliceRoom = phone.room(info.id).connect({ afterSeq: 0 });
const bobGot = new Promise<string>((resolve) =>
  bobRoom.on("message", (m) => m.senderId === alice.id && resolve(m.text ?? "")),
);
const sent = await aliceRoom.send({ text: "Hi Bob!" });
check((await bobGot) === "Hi Bob!" && sent.seq === 1, "Bob received Alice's message");
const reply = await bobRoom.send({ text: "Hi Alice" });
check(reply.seq === 2, "Bob replied");
const history = await aliceRoom.history({ after: 0 });
check(history.items.map((m) => m.text).join(" / ") === "Hi Bob! / Hi Alice", "history in seq order");

for (const c of [phone, laptop, bobDevice] as OutpostClient<Collections>[]) await c.auth.signOut();
for (const c of [phone, laptop, bobDevice]) c.close();
console.log("example done");
