/**
 * Writes nobody listens to cost nothing extra: a create, update or delete that no open subscription
 * can show makes no Durable Object call (counted on the namespace binding the request gets), and a
 * subscriber that arrives later still finds it in its catch-up; one that is there gets it live.
 */
import { createExecutionContext, runInDurableObject, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { CollectionHub } from "../../../src/features/collections/hub";
import { app } from "../../../src/router";
import { api, freshIp, signup, type TestUser } from "../../helpers/api";
import { createTeam, listIn, memberAs } from "../teams/helpers";
import { base } from "./helpers";
import { hubStub, LiveSocket, subscribe, subscribeRequest } from "./live-helpers";

/** One request through the app, with every hub the request (and its `waitUntil` work) reaches recorded by name. */
async function counted(path: string, init: { method?: string; token: string; body?: unknown; headers?: HeadersInit }) {
  const hubs: string[] = [];
  const real = env.COLLECTION_HUB;
  const spy = {
    idFromName: (name: string) => {
      hubs.push(name);
      return real.idFromName(name);
    },
    get: (id: DurableObjectId) => real.get(id),
  };
  const headers = new Headers(init.headers);
  headers.set("cf-connecting-ip", freshIp());
  headers.set("authorization", `Bearer ${init.token}`);
  if (init.body !== undefined) headers.set("content-type", "application/json");
  const req = new Request(`https://outpost.test${path}`, {
    method: init.method ?? (init.body !== undefined ? "POST" : "GET"),
    headers,
    body: init.body !== undefined ? JSON.stringify(init.body) : undefined,
  });
  const ctx = createExecutionContext();
  const res = await app.fetch(req, { ...env, COLLECTION_HUB: spy as unknown as Env["COLLECTION_HUB"] }, ctx);
  const text = await res.text();
  await waitOnExecutionContext(ctx);
  return { status: res.status, body: text ? JSON.parse(text) : null, hubs };
}

/** The `live_hubs` rows of a collection (what writes ask). */
const openRows = async (collection: string) =>
  (
    await env.DB.prepare("SELECT kind, subject FROM live_hubs WHERE collection = ? ORDER BY kind, subject")
      .bind(collection)
      .all<{ kind: string; subject: string }>()
  ).results;

/** Waits until `check` holds (a closed socket's row goes after its close event reaches the hub). */
async function eventually(check: () => Promise<boolean>, what: string, ms = 5000) {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`still not: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const noteCrud = async (user: TestUser) => {
  const created = await counted(`${base("notes")}/records`, { token: user.accessToken, body: { title: "quiet" } });
  expect(created.status).toBe(201);
  const id = created.body.id as string;
  const updated = await counted(`${base("notes")}/records/${id}`, {
    method: "PATCH",
    token: user.accessToken,
    body: { title: "still quiet" },
  });
  expect(updated.status).toBe(200);
  const deleted = await counted(`${base("notes")}/records/${id}`, { method: "DELETE", token: user.accessToken });
  expect(deleted.status).toBe(204);
  return { id, calls: [created.hubs, updated.hubs, deleted.hubs] };
};

describe("writes no open subscription can show", () => {
  it("a create, update and delete of a note with no subscriber call no hub", async () => {
    const user = await signup();
    const { calls } = await noteCrud(user);
    expect(calls).toEqual([[], [], []]);
  });

  it("with the owner's socket open, each write notifies the owner's hub and reaches the socket live", async () => {
    const user = await signup();
    const { socket } = await subscribe(user, "notes");
    expect(await openRows("notes")).toContainEqual({ kind: "owner", subject: user.id });
    const { id, calls } = await noteCrud(user);
    expect(calls).toEqual([[`notes/owner/${user.id}`], [`notes/owner/${user.id}`], [`notes/owner/${user.id}`]]);
    const frames = await socket.changes(3);
    expect(frames.map((f) => [f.item.id, f.item.version, f.item.deleted ?? false])).toEqual([
      [id, 1, false],
      [id, 2, false],
      [id, 3, true],
    ]);
    // Another user's socket on notes is not this owner's hub: their writes stay quiet.
    const stranger = await signup();
    expect((await noteCrud(stranger)).calls).toEqual([[], [], []]);
    socket.close();
  });

  it("after the last socket leaves, writes are quiet again; a subscriber with its cursor misses nothing", async () => {
    const user = await signup();
    const first = await subscribe(user, "notes");
    first.socket.close();
    await eventually(
      async () => !(await openRows("notes")).some((r) => r.subject === user.id),
      "the hub's row is gone after its socket closed",
    );
    const created = await counted(`${base("notes")}/records`, { token: user.accessToken, body: { title: "missed?" } });
    expect(created.status).toBe(201);
    expect(created.hubs).toEqual([]);
    const again = await subscribe(user, "notes", { since: first.ready.cursor });
    expect(again.replayed.map((f) => f.item.id)).toEqual([created.body.id]);
    again.socket.close();
  });

  it("a public collection: quiet without subscribers; with one on any shard the root hub is told", async () => {
    const writer = await signup();
    const reader = await signup();
    const post = (token: string) => counted(`${base("posts")}/records`, { token, body: { text: "hello" } });
    // Other tests of this file hold no posts socket (their own storage): nothing is open.
    expect((await post(writer.accessToken)).hubs).toEqual([]);
    const { socket } = await subscribe(reader, "posts");
    const seen = await post(writer.accessToken);
    expect(seen.hubs).toContain("posts/shard/0");
    const [frame] = await socket.changes(1);
    expect(frame!.item.id).toBe(seen.body.id);
    socket.close();
  });

  it("a team-scoped collection: quiet until a member's socket (one team's, or all of theirs) is open", async () => {
    const owner = await signup();
    const team = await createTeam(owner, "Quiet");
    const viewer = await memberAs(owner, team.id, "viewer");
    const listId = await listIn(team.id);
    const add = (text: string) =>
      counted(`${base("items")}/records`, { token: owner.accessToken, body: { teamId: team.id, listId, text } });
    expect((await add("nobody")).hubs).toEqual([]);
    // The viewer's socket over every team of theirs: the team's hub is told (it nudges the member's hub).
    const all = await subscribe(viewer, "items");
    const one = await add("to all of mine");
    expect(one.hubs).toEqual([`items/team/${team.id}`]);
    expect((await all.socket.changes(1))[0]!.item.id).toBe(one.body.id);
    all.socket.close();
    await eventually(async () => (await openRows("items")).length === 0, "the member hub's row is gone");
    expect((await add("nobody again")).hubs).toEqual([]);
    // One team's socket.
    const single = await subscribe(viewer, "items", { teamId: team.id });
    const two = await add("to this team");
    expect(two.hubs).toEqual([`items/team/${team.id}`]);
    expect((await single.socket.changes(1))[0]!.item.id).toBe(two.body.id);
    single.socket.close();
  });

  it("a row left behind (sockets gone without a close) costs one call: the hub drops it", async () => {
    const user = await signup();
    await env.DB.prepare("INSERT INTO live_hubs (collection, kind, subject) VALUES ('notes', 'owner', ?)")
      .bind(user.id)
      .run();
    const first = await counted(`${base("notes")}/records`, { token: user.accessToken, body: { title: "one" } });
    expect(first.hubs).toEqual([`notes/owner/${user.id}`]);
    await eventually(async () => (await openRows("notes")).length === 0, "the stale row is dropped");
    const second = await counted(`${base("notes")}/records`, { token: user.accessToken, body: { title: "two" } });
    expect(second.hubs).toEqual([]);
    const res = await api(`${base("notes")}/changes`, { token: user.accessToken });
    expect(res.body.items.map((x: { id: string }) => x.id)).toEqual([first.body.id, second.body.id]);
  });

  it("a subscriber arriving amid writes: one before its first read is replayed, one after is live", async () => {
    const user = await signup();
    const write = (title: string) => counted(`${base("notes")}/records`, { token: user.accessToken, body: { title } });
    let before: Awaited<ReturnType<typeof write>> | undefined;
    let after: Awaited<ReturnType<typeof write>> | undefined;
    // Inside the hub: one write right before the first replay read (whose batch marks the hub
    // open), one right after it returns, before the socket is accepted.
    await runInDurableObject(hubStub(`notes/owner/${user.id}`), (hub: CollectionHub) => {
      const h = hub as unknown as { readLog: (...a: unknown[]) => Promise<unknown> };
      const original = h.readLog.bind(hub);
      h.readLog = async (...args: unknown[]) => {
        h.readLog = original;
        before = await write("before the read");
        const page = await original(...args);
        after = await write("after the read");
        return page;
      };
    });
    const res = await subscribeRequest("notes", { token: user.accessToken });
    expect(res.status).toBe(101);
    const socket = new LiveSocket(res.webSocket!);
    // The first write saw no open hub (no call) and is in the replay; the second was told to the hub.
    expect(before!.hubs).toEqual([]);
    expect(after!.hubs).toEqual([`notes/owner/${user.id}`]);
    const frames = await socket.changes(2);
    expect(frames.map((f) => f.item.id)).toEqual([before!.body.id, after!.body.id]);
    await socket.next("ready");
    await socket.roundTrip();
    expect(socket.take("change")).toEqual([]);
    socket.close();
  });
});
