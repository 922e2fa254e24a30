/**
 * Team-scoped collections against the real Worker (the example app's `lists`): a member who joins
 * syncs the team from the start and follows it live; removed, their watch stops and their queued
 * writes of the team are dropped and reported; a lost delete answer still counts as done.
 */
import { describe, expect, it } from "vitest";
import type { OutpostError, PendingWrite, Snapshot, StoredRecord } from "../src/index.js";
import { codeMailedTo, signedIn, type TestClient, until, verified } from "./helpers.js";

async function teamWith(owner: TestClient, member: TestClient, name = "Shopping") {
  const team = await owner.teams.create(name);
  await owner.teams.invite(team.id, member.user!.email!);
  await member.teams.join(await codeMailedTo(member.user!.email!));
  return team;
}

describe("team-scoped collections on the server", () => {
  it("a member who joins syncs the team from the start, live; removed, the watch stops and queued writes drop", async () => {
    const reports: [OutpostError, PendingWrite][] = [];
    const owner = await signedIn();
    const bob = await verified({ onSyncError: (e, w) => reports.push([e, w]) });
    const ownerLists = owner.collection("lists");
    const lists = bob.collection("lists");
    const team = await owner.teams.create("Shopping");
    const before = await ownerLists.create({ teamId: team.id, title: "before bob" });
    expect(before.teamId).toBe(team.id);
    await owner.teams.invite(team.id, bob.user!.email!);
    await bob.teams.join(await codeMailedTo(bob.user!.email!));

    const watch = (cb: (s: Snapshot<StoredRecord>) => void) => lists.watch({ teamId: team.id, sort: "title" }, cb);
    const off = watch(() => undefined);
    let s = await until(watch, (x) => x.synced && x.items.length === 1);
    expect(s.items[0]).toMatchObject({ id: before.id, teamId: team.id, title: "before bob" });

    await ownerLists.create({ teamId: team.id, title: "live" });
    s = await until(watch, (x) => x.items.length === 2);
    expect(s.items.map((r) => r.title)).toEqual(["before bob", "live"]);

    // Offline, bob changes the team's lists; meanwhile he is removed from the team.
    bob.net.mode = "down";
    await lists.update(before.id, { title: "bob was here" });
    const made = await lists.create({ teamId: team.id, title: "made offline" });
    await owner.teams.remove(team.id, bob.user!.id);
    s = await until(watch, (x) => x.stopped !== null);
    expect(s.stopped).toMatchObject({ status: 403, code: "removed_from_team" });

    bob.net.mode = "up";
    await bob.flush();
    expect(bob.pendingWrites).toHaveLength(0);
    expect(reports.map(([e, w]) => [e.code, w.op, w.id, w.teamId])).toEqual([
      ["removed_from_team", "update", before.id, team.id],
      ["removed_from_team", "create", made.id, team.id],
    ]);
    expect(await lists.query()).toEqual([]);
    expect(await ownerLists.get(before.id)).toMatchObject({ title: "before bob", version: 1 });
    expect((await ownerLists.list({ where: { teamId: team.id } }).all()).map((r) => r.title).sort()).toEqual([
      "before bob",
      "live",
    ]);
    off();

    // Watching the team again (say after a restart): its socket is refused, and the team says why.
    s = await until(watch, (x) => x.stopped !== null);
    expect(s.stopped).toMatchObject({ status: 404, code: "removed_from_team" });
    await expect(lists.sync({ teamId: team.id })).rejects.toMatchObject({ code: "removed_from_team" });
    owner.close();
    bob.close();
  });

  it("a member's delete whose answer was lost still counts as done; a stranger's create is refused", async () => {
    const reports: OutpostError[] = [];
    const owner = await signedIn();
    const bob = await verified({ onSyncError: (e) => reports.push(e) });
    const team = await teamWith(owner, bob);
    const rec = await bob.collection("lists").create({ teamId: team.id, title: "to delete" });
    bob.net.mode = "lose";
    await bob.collection("lists").delete(rec.id);
    bob.net.mode = "up";
    await bob.flush();
    expect(bob.pendingWrites).toHaveLength(0);
    expect(reports).toEqual([]);
    await expect(owner.collection("lists").get(rec.id)).rejects.toMatchObject({ status: 404 });

    const stranger = await signedIn();
    await expect(stranger.collection("lists").create({ teamId: team.id, title: "x" })).rejects.toMatchObject({
      status: 404,
      code: "removed_from_team",
    });
    for (const c of [owner, bob, stranger]) c.close();
  });
});
