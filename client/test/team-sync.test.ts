/**
 * Team-scoped collections offline: a queued write of a team the user left is dropped and reported,
 * a watch follows one team on its own cursor and stops on 4403. A stand-in for the team-scoped
 * collection `lists` and `GET /v1/teams/:id` answers as the contract says (API.md, "Teams: shared
 * data"); sign-in and socket tickets are the real Worker.
 */
import { describe, expect, it } from "vitest";
import type { OutpostError, PendingWrite, Snapshot, StoredRecord } from "../src/index.js";
import { Net, signedIn, standIns, type TestClient, until } from "./helpers.js";

type Change = StoredRecord | { id: string; deleted: true; version: number; teamId: string };

const problem = (status: number, code: string) =>
  new Response(JSON.stringify({ status, code, title: code }), {
    status,
    headers: { "content-type": "application/problem+json" },
  });
const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });

/** The server side of `lists` (scope: team) and of team membership, for one user. */
function teamServer(net: Net, live: boolean) {
  const teams = new Set(["t1", "t2"]);
  const records = new Map<string, StoredRecord>();
  const log: Change[] = [];
  let owner = "";
  const change = (c: Change) => log.push(c);
  const inner = net.fetch;
  net.fetch = async (input, init) => {
    const u = new URL(input);
    const method = init?.method ?? "GET";
    const p = u.pathname;
    const team = /^\/v1\/teams\/([^/]+)$/.exec(p);
    if (team && method === "GET") {
      net.log.push({ method, path: p, status: 0, key: null, identity: p });
      return teams.has(team[1]!) ? json(200, { id: team[1], role: "member" }) : problem(404, "not_found");
    }
    if (!p.startsWith("/v1/collections/lists/")) return inner(input, init);
    net.log.push({ method, path: p + u.search, status: 0, key: null, identity: p });
    if (net.mode === "down") throw new TypeError("fetch failed: network is down");
    // A plain GET of the socket route: "not an upgrade" where live sockets exist.
    if (p.endsWith("/subscribe")) return live ? problem(400, "bad_request") : problem(404, "not_found");
    if (p.endsWith("/changes")) {
      const teamId = u.searchParams.get("teamId");
      if (teamId !== null && !teams.has(teamId)) return problem(404, "not_found");
      const since = Number(u.searchParams.get("since") ?? 0);
      const items = log
        .slice(since)
        .filter((c) => teams.has(c.teamId as string) && (teamId === null || c.teamId === teamId));
      return json(200, { items, nextCursor: String(log.length), hasMore: false });
    }
    const body = typeof init?.body === "string" ? (JSON.parse(init.body) as Record<string, unknown>) : {};
    const id = /\/records\/([^/]+)$/.exec(p)?.[1];
    if (method === "POST") {
      if (!teams.has(body.teamId as string)) return problem(404, "not_found");
      const now = new Date().toISOString();
      const rec = { ...body, ownerId: owner, createdAt: now, updatedAt: now, version: 1 } as StoredRecord;
      records.set(rec.id, rec);
      change(rec);
      return json(201, rec);
    }
    const rec = id === undefined ? undefined : records.get(id);
    if (!rec || !teams.has(rec.teamId as string)) return problem(404, "not_found");
    if (method === "DELETE") {
      records.delete(rec.id);
      change({ id: rec.id, deleted: true, version: rec.version + 1, teamId: rec.teamId as string });
      return new Response(null, { status: 204 });
    }
    if ("teamId" in body) return problem(400, "validation_failed");
    const next = { ...rec, ...body, version: rec.version + 1 } as StoredRecord;
    records.set(rec.id, next);
    change(next);
    return json(200, next);
  };
  return {
    teams,
    records,
    setOwner(id: string) {
      owner = id;
    },
    /** Another member writes into a team. */
    add(teamId: string, title: string): StoredRecord {
      const now = new Date().toISOString();
      const rec = {
        id: `r${log.length}`,
        teamId,
        title,
        ownerId: "someone",
        createdAt: now,
        updatedAt: now,
        version: 1,
      };
      records.set(rec.id, rec);
      change(rec);
      return rec;
    },
  };
}

async function setup(o: Parameters<typeof signedIn>[0] = {}) {
  const net = new Net();
  const server = teamServer(net, o.WebSocket !== undefined);
  const c = await signedIn({ net, ...o });
  server.setOwner(c.user!.id);
  return { c, net, server };
}

const lists = (c: TestClient) => c.collection("lists");

describe("team-scoped records: queued writes after a removal", () => {
  it("drops and reports every queued write of a team the user is no longer in; other teams go through", async () => {
    const reports: [OutpostError, PendingWrite][] = [];
    const { c, server } = await setup({ onSyncError: (e, w) => reports.push([e, w]) });
    const kept = await lists(c).create({ teamId: "t1", title: "kept" });
    const other = await lists(c).create({ teamId: "t2", title: "other team" });

    c.net.mode = "down";
    const made = await lists(c).create({ teamId: "t1", title: "made offline" });
    await lists(c).update(kept.id, { title: "renamed offline" });
    await lists(c).update(other.id, { title: "t2 renamed" });
    expect(c.pendingWrites.map((w) => w.teamId)).toEqual(["t1", "t1", "t2"]);

    server.teams.delete("t1"); // removed from t1 while offline
    c.net.mode = "up";
    await c.flush();

    expect(c.pendingWrites).toHaveLength(0);
    expect(reports.map(([e, w]) => [e.status, e.code, w.op, w.id, w.teamId])).toEqual([
      [404, "removed_from_team", "create", made.id, "t1"],
      [404, "removed_from_team", "update", kept.id, "t1"],
    ]);
    // Undone locally, and t1's records left the device; t2's write went through.
    expect((await lists(c).query()).map((r) => [r.title, r.teamId])).toEqual([["t2 renamed", "t2"]]);
    expect(server.records.get(other.id)).toMatchObject({ title: "t2 renamed", version: 2 });
    expect(server.records.get(kept.id)).toMatchObject({ title: "kept", version: 1 });
    expect(server.records.has(made.id)).toBe(false);
    c.close();
  });

  it("a write made online rejects with removed_from_team instead of being reported", async () => {
    const reports: OutpostError[] = [];
    const { c, server } = await setup({ onSyncError: (e) => reports.push(e) });
    const rec = await lists(c).create({ teamId: "t1", title: "a" });
    server.teams.delete("t1");
    await expect(lists(c).update(rec.id, { title: "b" })).rejects.toMatchObject({
      status: 404,
      code: "removed_from_team",
    });
    await expect(lists(c).create({ teamId: "t1", title: "c" })).rejects.toMatchObject({ code: "removed_from_team" });
    expect(reports).toEqual([]);
    expect(await lists(c).query()).toEqual([]);
    c.close();
  });

  // The 404 of a delete whose answer was lost still counts as success while the user is in the team.
  it("a 404 of a team record while still a member keeps the old meaning: gone, not removed", async () => {
    const reports: OutpostError[] = [];
    const { c, net, server } = await setup({ onSyncError: (e) => reports.push(e) });
    const a = await lists(c).create({ teamId: "t1", title: "a" });
    const b = await lists(c).create({ teamId: "t1", title: "b" });
    net.mode = "down";
    await lists(c).delete(a.id);
    await lists(c).update(b.id, { title: "b2" });
    server.records.delete(a.id); // the delete landed, its answer was lost
    server.records.delete(b.id); // someone else deleted b
    net.mode = "up";
    await c.flush();
    expect(c.pendingWrites).toHaveLength(0);
    expect(reports).toEqual([]);
    expect(net.count("GET", "/v1/teams/t1")).toBe(2);
    expect(await lists(c).query()).toEqual([]);
    c.close();
  });
});

describe("team-scoped records: watch per team", () => {
  it("polls one team's feed on its own cursor, from the start, and stops when out of the team", async () => {
    const { c, net, server } = await setup();
    server.add("t1", "one");
    server.add("t2", "elsewhere");
    // No live sockets: the feed polls /changes.
    const watch = (cb: (s: Snapshot<StoredRecord>) => void) => lists(c).watch({ teamId: "t1", sort: "title" }, cb);
    const off = watch(() => undefined);
    let s = await until(watch, (x) => x.synced);
    expect(s.items.map((r) => r.title)).toEqual(["one"]);
    expect(net.log.some((e) => e.path === "/v1/collections/lists/changes?limit=200&teamId=t1")).toBe(true);

    server.add("t1", "two");
    await lists(c).sync({ teamId: "t1" });
    s = await until(watch, (x) => x.items.length === 2);
    expect(s.stopped).toBeNull();
    const feed = net.log.filter((e) => e.path.includes("/changes"));
    expect(feed.at(-1)!.path).toMatch(/changes\?since=\d+&limit=200&teamId=t1$/);

    // The all-teams feed keeps its own cursor: it starts from the beginning.
    await lists(c).sync();
    expect(net.log.at(-1)!.path).toBe("/v1/collections/lists/changes?limit=200");
    expect((await lists(c).query()).map((r) => r.title).sort()).toEqual(["elsewhere", "one", "two"]);

    // Removed: the next poll (here on coming back online) gets 404.
    server.teams.delete("t1");
    c.setOnline(false);
    c.setOnline(true);
    s = await until(watch, (x) => x.stopped !== null);
    expect(s.stopped).toMatchObject({ status: 404, code: "removed_from_team" });
    expect(s.items).toEqual([]);
    expect((await lists(c).query()).map((r) => r.title)).toEqual(["elsewhere"]);
    await expect(lists(c).sync({ teamId: "t1" })).rejects.toMatchObject({ status: 404, code: "removed_from_team" });
    off();
    c.close();
  });

  it("a team socket closed 4403 stops the watch, reports it and drops the team's records", async () => {
    const { sockets, opened, StandIn } = standIns();
    const { c } = await setup({ WebSocket: StandIn });
    const rec = (id: string, teamId: string, title: string): StoredRecord => ({
      id,
      teamId,
      title,
      ownerId: "someone",
      createdAt: "2026-01-01T00:00:00.000Z",
      updatedAt: "2026-01-01T00:00:00.000Z",
      version: 1,
    });
    const snaps: Snapshot<StoredRecord>[] = [];
    const watch = (cb: (s: Snapshot<StoredRecord>) => void) => lists(c).watch({ teamId: "t1" }, cb);
    const off = watch((s) => snaps.push(s));
    const all = lists(c).watch(() => undefined);
    await opened(2);
    const team = sockets.find((x) => /teamId=t1/.test(x.url))!;
    const rest = sockets.find((x) => !/teamId=/.test(x.url))!;
    expect(team.url).toMatch(/\/v1\/collections\/lists\/subscribe\?teamId=t1&ticket=/);

    team.feed({ type: "change", cursor: "k1", item: rec("a", "t1", "mine") });
    team.feed({ type: "ready", cursor: "k1" });
    rest.feed({ type: "change", cursor: "m1", item: rec("b", "t2", "other") });
    rest.feed({ type: "ready", cursor: "m1" });
    let s = await until(watch, (x) => x.synced && x.items.length === 1);
    expect(s.items[0]!.title).toBe("mine");

    // A reconnect resumes the team's feed from the team's cursor.
    team.close(1006);
    await opened(3);
    expect(sockets[2]!.url).toMatch(/subscribe\?teamId=t1&since=k1&ticket=/);

    sockets[2]!.close(4403);
    s = await until(watch, (x) => x.stopped !== null);
    expect(s.stopped).toMatchObject({ status: 403, code: "removed_from_team" });
    s = await until(watch, (x) => x.items.length === 0);
    expect((await lists(c).query()).map((r) => r.id)).toEqual(["b"]);
    expect(sockets).toHaveLength(3); // no reconnect after 4403
    expect(snaps.at(-1)!.stopped?.code).toBe("removed_from_team");
    off();
    all();
    c.close();
  });
});
