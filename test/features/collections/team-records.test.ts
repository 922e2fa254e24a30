/**
 * Team-scoped collections (API.md "Teams: shared data"): the example app's `items` (read/list
 * `team:viewer`, create/update `team:member`, delete `["owner", "team:admin"]`) under every actor,
 * teamId required and immutable, lists and feeds over the caller's teams or one, removal and team
 * deletion taking effect at once, and a joining member syncing the team from the start.
 */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { api, expectProblem, serviceKey, signup, type TestUser } from "../../helpers/api";
import { ACTORS, type Actor, createTeam, listIn, memberAs, teamWithActors } from "../teams/helpers";

type Team = Awaited<ReturnType<typeof teamWithActors>>;

const ITEMS = "/v1/collections/items";

async function createItem(token: string, teamId: string, text = "milk", extra: Record<string, unknown> = {}) {
  // A team that does not exist has no list: any id stands in.
  if (teamId === "no-such-team") return api(`${ITEMS}/records`, { token, body: { teamId, listId: "x", text } });
  return api(`${ITEMS}/records`, { token, body: { teamId, listId: await listIn(teamId), text, ...extra } });
}

async function itemBy(token: string, teamId: string, text = "milk") {
  const res = await createItem(token, teamId, text);
  expect(res.status, res.text).toBe(201);
  return res.body as { id: string; teamId: string; ownerId: string | null; version: number; text: string };
}

const listOf = (token: string, where?: Record<string, unknown>) =>
  api(`${ITEMS}/records${where ? `?where=${encodeURIComponent(JSON.stringify(where))}` : ""}`, { token });

const ids = (res: { body: { items: { id: string }[] } }) => res.body.items.map((x) => x.id);

let t: Team;
beforeAll(async () => {
  t = await teamWithActors();
});

describe("team-scoped records: the matrix of actions × actors", () => {
  const create: Record<Actor, number> = {
    stranger: 404,
    viewer: 403,
    member: 201,
    admin: 201,
    owner: 201,
    removed: 404,
    service: 201,
  };
  for (const a of ACTORS)
    it(`create as ${a} → ${create[a]}`, async () => {
      const res = await createItem(t.tokenOf(a), t.team.id, `by ${a}`);
      expect(res.status, res.text).toBe(create[a]);
      if (res.status === 201) {
        expect(res.body.teamId).toBe(t.team.id);
        expect(res.body.ownerId).toBe(a === "service" ? null : t.users[a as Exclude<Actor, "service">].id);
      }
      if (res.status === 404) expectProblem(res, 404, "not_found");
      if (res.status === 403) expectProblem(res, 403, "forbidden");
      // A refusal wrote nothing.
      const n = await env.DB.prepare("SELECT count(*) AS n FROM app_items WHERE text = ?").bind(`by ${a}`).first();
      expect(n?.n).toBe(res.status === 201 ? 1 : 0);
    });

  const read: Record<Actor, number> = {
    stranger: 404,
    viewer: 200,
    member: 200,
    admin: 200,
    owner: 200,
    removed: 404,
    service: 200,
  };
  for (const a of ACTORS)
    it(`read, list and feed as ${a} → ${read[a]}`, async () => {
      const item = await itemBy(t.users.member.accessToken, t.team.id, `read ${a}`);
      const got = await api(`${ITEMS}/records/${item.id}`, { token: t.tokenOf(a) });
      expect(got.status, got.text).toBe(read[a]);
      const all = await listOf(t.tokenOf(a));
      expect(all.status).toBe(200);
      expect(ids(all).includes(item.id)).toBe(read[a] === 200);
      const one = await listOf(t.tokenOf(a), { teamId: t.team.id });
      const feed = await api(`${ITEMS}/changes?teamId=${t.team.id}&limit=200`, { token: t.tokenOf(a) });
      if (read[a] === 200) {
        expect(ids(one)).toContain(item.id);
        expect(feed.status).toBe(200);
        expect(ids(feed)).toContain(item.id);
      } else {
        // A team the caller is not in: its records, its list and its feed are all 404.
        expectProblem(one, 404, "not_found");
        expectProblem(feed, 404, "not_found");
      }
    });

  const update: Record<Actor, number> = {
    stranger: 404,
    viewer: 403,
    member: 200,
    admin: 200,
    owner: 200,
    removed: 404,
    service: 200,
  };
  for (const a of ACTORS)
    it(`update as ${a} → ${update[a]}`, async () => {
      const item = await itemBy(t.users.admin.accessToken, t.team.id, `update ${a}`);
      const res = await api(`${ITEMS}/records/${item.id}`, {
        method: "PATCH",
        token: t.tokenOf(a),
        body: { done: true },
      });
      expect(res.status, res.text).toBe(update[a]);
      const row = await env.DB.prepare("SELECT version, done FROM app_items WHERE id = ?").bind(item.id).first();
      expect(row).toEqual(update[a] === 200 ? { version: 2, done: 1 } : { version: 1, done: 0 });
    });

  // Delete: the item's author (a member) or an admin and up; another member or a viewer may not.
  const remove: Record<Actor | "author", number> = {
    stranger: 404,
    viewer: 403,
    member: 403,
    author: 204,
    admin: 204,
    owner: 204,
    removed: 404,
    service: 204,
  };
  for (const a of [...ACTORS, "author"] as const)
    it(`delete (an item a member made) as ${a} → ${remove[a]}`, async () => {
      const author = a === "author" ? t.users.member : await memberAs(t.owner, t.team.id, "member");
      const item = await itemBy(author.accessToken, t.team.id, `delete ${a}`);
      const token = a === "author" ? author.accessToken : t.tokenOf(a);
      const res = await api(`${ITEMS}/records/${item.id}`, { method: "DELETE", token });
      expect(res.status, res.text).toBe(remove[a]);
      const row = await env.DB.prepare("SELECT id FROM app_items WHERE id = ?").bind(item.id).first();
      expect(row === null).toBe(remove[a] === 204);
    });
});

describe("team-scoped records: the team is chosen once", () => {
  it("teamId is required on create, and an update or replace may not name it (400)", async () => {
    const member = t.users.member.accessToken;
    const missing = await api(`${ITEMS}/records`, { token: member, body: { listId: "l", text: "x" } });
    expectProblem(missing, 400, "validation_failed");
    expect(JSON.stringify(missing.body.errors)).toContain("teamId");
    const item = await itemBy(member, t.team.id, "fixed team");
    const other = await createTeam(t.users.member);
    for (const method of ["PATCH", "PUT"]) {
      const body = method === "PATCH" ? { teamId: other.id } : { teamId: other.id, listId: "l", text: "x" };
      const res = await api(`${ITEMS}/records/${item.id}`, { method, token: member, body });
      expectProblem(res, 400, "validation_failed");
      expect(res.text).toContain("teamId is set on create and never changes");
    }
    const row = await env.DB.prepare("SELECT team_id FROM app_items WHERE id = ?").bind(item.id).first();
    expect(row?.team_id).toBe(t.team.id);
  });

  it("a team that does not exist is 404 for users and for the service key", async () => {
    for (const token of [t.users.member.accessToken, serviceKey()])
      expectProblem(await createItem(token, "no-such-team"), 404, "not_found");
  });

  it("client ids, If-Match and retries work as in any collection", async () => {
    const member = t.users.member.accessToken;
    const id = crypto.randomUUID();
    const first = await createItem(member, t.team.id, "with id", { id });
    expect(first.status).toBe(201);
    const again = await createItem(member, t.team.id, "with id", { id });
    expect(again.status, again.text).toBe(200);
    expect(again.body.version).toBe(1);
    // The same id into another team is another create: 409.
    const other = await createTeam(t.users.member);
    expectProblem(await createItem(member, other.id, "with id", { id }), 409, "conflict");
    const stale = await api(`${ITEMS}/records/${id}`, {
      method: "PATCH",
      token: member,
      headers: { "if-match": '"7"' },
      body: { done: true },
    });
    expectProblem(stale, 412, "version_conflict");
  });
});

describe("team-scoped records: lists over the caller's teams", () => {
  it("a list without teamId holds every team of the caller's and no other team's", async () => {
    const user = await signup();
    const [a, b] = [await createTeam(user, "A"), await createTeam(user, "B")];
    const elsewhere = await createTeam(await signup(), "C");
    const inA = await itemBy(user.accessToken, a.id, "in A");
    const inB = await itemBy(user.accessToken, b.id, "in B");
    const inC = await itemBy(serviceKey(), elsewhere.id, "in C");
    const mine = await listOf(user.accessToken);
    expect(ids(mine).sort()).toEqual([inA.id, inB.id].sort());
    expect(ids(await listOf(user.accessToken, { teamId: b.id }))).toEqual([inB.id]);
    // Sorted and paged across teams with a cursor, newest first.
    const first = await api(`${ITEMS}/records?limit=1`, { token: user.accessToken });
    expect(ids(first)).toEqual([inB.id]);
    const second = await api(`${ITEMS}/records?limit=1&cursor=${first.body.nextCursor}`, { token: user.accessToken });
    expect(ids(second)).toEqual([inA.id]);
    expect(ids(await listOf(serviceKey(), { teamId: elsewhere.id }))).toEqual([inC.id]);
  });

  it("a batch writes into a team under the same rules, all or nothing", async () => {
    const listId = await listIn(t.team.id);
    const ops = (teamId: string) => ({
      operations: [
        { op: "create", collection: "items", data: { teamId, listId, text: "batched 1" } },
        { op: "create", collection: "items", data: { teamId, listId, text: "batched 2" } },
      ],
    });
    const ok = await api("/v1/batch", { token: t.users.member.accessToken, body: ops(t.team.id) });
    expect(ok.status, ok.text).toBe(200);
    for (const [a, status, code] of [
      ["viewer", 403, "forbidden"],
      ["stranger", 404, "not_found"],
      ["removed", 404, "not_found"],
    ] as const) {
      const res = await api("/v1/batch", { token: t.tokenOf(a), body: ops(t.team.id) });
      expectProblem(res, status, code);
    }
    const n = await env.DB.prepare("SELECT count(*) AS n FROM app_items WHERE text = 'batched 1'").first();
    expect(n?.n).toBe(1);
  });
});

describe("team-scoped records: access changes apply at once", () => {
  it("a removed member's next read, write and feed are 404, whatever their access token says", async () => {
    const owner = await signup();
    const team = await createTeam(owner);
    const leaver = await memberAs(owner, team.id, "member");
    const item = await itemBy(leaver.accessToken, team.id, "theirs");
    const gone = await api(`/v1/teams/${team.id}/members/${leaver.id}`, { method: "DELETE", token: owner.accessToken });
    expect(gone.status).toBe(204);
    // The same access token as before the removal.
    const token = leaver.accessToken;
    expectProblem(await api(`${ITEMS}/records/${item.id}`, { token }), 404, "not_found");
    expectProblem(
      await api(`${ITEMS}/records/${item.id}`, { method: "PATCH", token, body: { done: true } }),
      404,
      "not_found",
    );
    expectProblem(await api(`${ITEMS}/records/${item.id}`, { method: "DELETE", token }), 404, "not_found");
    expectProblem(await api(`${ITEMS}/changes?teamId=${team.id}`, { token }), 404, "not_found");
    expect(ids(await listOf(token))).not.toContain(item.id);
    // The record stays the team's.
    expect((await api(`${ITEMS}/records/${item.id}`, { token: owner.accessToken })).status).toBe(200);
  });

  it("a member who joins syncs the team from the start with /changes?teamId=", async () => {
    const owner = await signup();
    const team = await createTeam(owner);
    const before = [await itemBy(owner.accessToken, team.id, "one"), await itemBy(owner.accessToken, team.id, "two")];
    const gone = await itemBy(owner.accessToken, team.id, "three");
    await api(`${ITEMS}/records/${gone.id}`, { method: "DELETE", token: owner.accessToken });
    const joiner = await memberAs(owner, team.id, "viewer");
    const feed = await api(`${ITEMS}/changes?teamId=${team.id}`, { token: joiner.accessToken });
    expect(feed.status).toBe(200);
    const live = feed.body.items.filter((x: { deleted?: boolean }) => !x.deleted).map((x: { id: string }) => x.id);
    expect(live).toEqual(before.map((x) => x.id));
    expect(feed.body.items.at(-1)).toEqual({ id: gone.id, deleted: true, version: 2 });
    // Then from its cursor: only what is new.
    const next = await itemBy(owner.accessToken, team.id, "four");
    const more = await api(`${ITEMS}/changes?teamId=${team.id}&since=${feed.body.nextCursor}`, {
      token: joiner.accessToken,
    });
    expect(ids(more)).toEqual([next.id]);
  });

  it("deleting the team leaves none of its records or change-log rows", async () => {
    const owner = await signup();
    const team = await createTeam(owner);
    const member = await memberAs(owner, team.id, "member");
    const items = [await itemBy(member.accessToken, team.id, "a"), await itemBy(owner.accessToken, team.id, "b")];
    await api(`${ITEMS}/records/${items[1]!.id}`, { method: "DELETE", token: owner.accessToken });
    const list = await api("/v1/collections/lists/records", {
      token: owner.accessToken,
      body: { teamId: team.id, title: "L" },
    });
    expect(list.status).toBe(201);
    const del = await api(`/v1/teams/${team.id}`, { method: "DELETE", token: owner.accessToken });
    expect(del.status).toBe(204);
    for (const table of ["app_items", "app_lists"]) {
      const n = await env.DB.prepare(`SELECT count(*) AS n FROM ${table} WHERE team_id = ?`).bind(team.id).first();
      expect(n?.n, table).toBe(0);
    }
    const logged = await env.DB.prepare("SELECT count(*) AS n FROM record_changes WHERE team_id = ?")
      .bind(team.id)
      .first();
    expect(logged?.n).toBe(0);
    for (const u of [owner, member]) {
      expectProblem(await api(`${ITEMS}/records/${items[0]!.id}`, { token: u.accessToken }), 404, "not_found");
      expectProblem(await api(`${ITEMS}/changes?teamId=${team.id}`, { token: u.accessToken }), 404, "not_found");
    }
  });

  it("deleting an account keeps the records it made in a team, without an owner, and the team sees the change", async () => {
    const owner = await signup();
    const team = await createTeam(owner);
    const member: TestUser = await memberAs(owner, team.id, "member");
    const item = await itemBy(member.accessToken, team.id, "stays");
    const feed = await api(`${ITEMS}/changes?teamId=${team.id}`, { token: owner.accessToken });
    const del = await api("/v1/me", { method: "DELETE", token: member.accessToken });
    expect(del.status, del.text).toBe(204);
    const got = await api(`${ITEMS}/records/${item.id}`, { token: owner.accessToken });
    expect(got.status).toBe(200);
    expect(got.body).toMatchObject({ ownerId: null, version: 2, text: "stays" });
    const after = await api(`${ITEMS}/changes?teamId=${team.id}&since=${feed.body.nextCursor}`, {
      token: owner.accessToken,
    });
    expect(after.body.items).toEqual([got.body]);
  });
});
