/**
 * Live data of team-scoped collections: a subscription to one team (`?teamId=`, on that team's hub)
 * or to every team of the caller's (on the caller's own hub, nudged by each team's hub); exactly
 * once across reconnects; a member who is removed or leaves is cut off at once (4403 for a socket
 * of that one team), and a deleted team closes every socket on it.
 */
import { describe, expect, it } from "vitest";
import { api, expectProblem, signup, type TestUser } from "../../helpers/api";
import { createTeam, invite, join, listIn, memberAs, verifyEmail } from "../teams/helpers";
import { expectCursorOrder, refusedSubscribe, subscribe } from "./live-helpers";

const ITEMS = "/v1/collections/items/records";

async function addItem(user: TestUser, teamId: string, text: string) {
  const res = await api(ITEMS, { token: user.accessToken, body: { teamId, listId: await listIn(teamId), text } });
  expect(res.status, res.text).toBe(201);
  return res.body as { id: string; teamId: string; version: number };
}

async function family() {
  const owner = await signup();
  const team = await createTeam(owner, "Family");
  return { owner, team, viewer: await memberAs(owner, team.id, "viewer") };
}

describe("live data of a team-scoped collection", () => {
  it("one team's socket replays the team from the start, then gets each change once, in order", async () => {
    const { owner, team, viewer } = await family();
    const first = await addItem(owner, team.id, "bread");
    const other = await createTeam(viewer, "Elsewhere");
    const { socket, replayed } = await subscribe(viewer, "items", { teamId: team.id });
    expect(replayed.map((f) => f.item.id)).toEqual([first.id]);
    const second = await addItem(owner, team.id, "eggs");
    await addItem(viewer, other.id, "not this team");
    const third = await addItem(owner, team.id, "jam");
    const frames = await socket.changes(2);
    expect(frames.map((f) => f.item.id)).toEqual([second.id, third.id]);
    expectCursorOrder(frames);
    await socket.roundTrip();
    expect(socket.take("change")).toEqual([]);
  });

  it("a reconnect with the last cursor misses nothing and repeats nothing", async () => {
    const { owner, team, viewer } = await family();
    const a = await subscribe(viewer, "items", { teamId: team.id });
    const one = await addItem(owner, team.id, "one");
    const [seen] = await a.socket.changes(1);
    expect(seen!.item.id).toBe(one.id);
    a.socket.ws.close(1000, "phone asleep");
    const two = await addItem(owner, team.id, "two");
    const three = await addItem(owner, team.id, "three");
    const b = await subscribe(viewer, "items", { teamId: team.id, since: seen!.cursor });
    expect(b.replayed.map((f) => f.item.id)).toEqual([two.id, three.id]);
  });

  it("a socket over every team of the caller's gets each team's changes", async () => {
    const { owner, team, viewer } = await family();
    const mine = await createTeam(viewer, "Mine");
    const { socket } = await subscribe(viewer, "items");
    const a = await addItem(owner, team.id, "from the family");
    const b = await addItem(viewer, mine.id, "from mine");
    await addItem(owner, (await createTeam(owner, "Not theirs")).id, "never");
    const frames = await socket.changes(2);
    expect(frames.map((f) => f.item.id).sort()).toEqual([a.id, b.id].sort());
    await socket.roundTrip();
    expect(socket.take("change")).toEqual([]);
  });

  it("a member who is removed: the team's socket closes with 4403, the all-teams socket stops getting that team", async () => {
    const { owner, team, viewer } = await family();
    const mine = await createTeam(viewer, "Mine");
    const one = await subscribe(viewer, "items", { teamId: team.id });
    const all = await subscribe(viewer, "items");
    const removed = await api(`/v1/teams/${team.id}/members/${viewer.id}`, {
      method: "DELETE",
      token: owner.accessToken,
    });
    expect(removed.status).toBe(204);
    expect((await one.socket.closedWithin()).code).toBe(4403);
    await addItem(owner, team.id, "after the removal");
    const still = await addItem(viewer, mine.id, "still mine");
    const [frame] = await all.socket.changes(1);
    expect(frame!.item.id).toBe(still.id);
    await all.socket.roundTrip();
    expect(all.socket.take("change")).toEqual([]);
    // Subscribing to the team again: 404 (not a member), as for any request about it.
    expectProblem(await refusedSubscribe("items", { token: viewer.accessToken, teamId: team.id }), 404, "not_found");
  });

  it("leaving the team closes that team's socket (4403); deleting a team closes every socket on it", async () => {
    const { owner, team, viewer } = await family();
    const mine = await subscribe(viewer, "items", { teamId: team.id });
    const theirs = await subscribe(owner, "items", { teamId: team.id });
    const left = await api(`/v1/teams/${team.id}/members/me`, { method: "DELETE", token: viewer.accessToken });
    expect(left.status).toBe(204);
    expect((await mine.socket.closedWithin()).code).toBe(4403);
    const del = await api(`/v1/teams/${team.id}`, { method: "DELETE", token: owner.accessToken });
    expect(del.status).toBe(204);
    expect((await theirs.socket.closedWithin()).code).toBe(4403);
  });

  it("a stranger cannot subscribe to a team (404), and a member who joins later gets the team live", async () => {
    const { owner, team } = await family();
    const stranger = await signup();
    expectProblem(await refusedSubscribe("items", { token: stranger.accessToken, teamId: team.id }), 404, "not_found");
    // Subscribed over all their teams before joining: once they join, the team's changes after the
    // socket's position arrive (each once); the team's older history is /changes?teamId=.
    const { socket } = await subscribe(stranger, "items");
    const before = await addItem(owner, team.id, "before joining");
    await verifyEmail(stranger);
    const { token } = await invite(owner, team.id, stranger.email, "viewer");
    expect((await join(stranger, token)).status).toBe(200);
    const item = await addItem(owner, team.id, "welcome");
    const frames = await socket.changes(2);
    expect(frames.map((f) => f.item.id)).toEqual([before.id, item.id]);
    expectCursorOrder(frames);
    await socket.roundTrip();
    expect(socket.take("change")).toEqual([]);
  });
});
