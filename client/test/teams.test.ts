/** `client.teams` against the real Worker: create, invite by mail, join, roles, hand-over, leave, delete. */
import { describe, expect, it } from "vitest";
import { codeMailedTo, signedIn, verified } from "./helpers.js";

describe("client.teams", () => {
  it("a team from creation to deletion, through every method", async () => {
    const owner = await signedIn();
    const bob = await verified();
    const team = await owner.teams.create("Family");
    expect(team).toMatchObject({ name: "Family", role: "owner", memberCount: 1 });
    expect((await owner.teams.rename(team.id, "Fam")).name).toBe("Fam");
    expect((await owner.teams.get(team.id)).name).toBe("Fam");
    const second = await owner.teams.create("Club");
    expect((await owner.teams.list({ limit: 1 }).all()).map((t) => t.id)).toEqual([second.id, team.id]);

    const stale = await owner.teams.invite(team.id, "nobody@sdk.test", "viewer");
    expect(stale).toMatchObject({ email: "nobody@sdk.test", role: "viewer" });
    await owner.teams.revokeInvitation(team.id, stale.id);
    const inv = await owner.teams.invite(team.id, bob.user!.email!);
    expect((await owner.teams.invitations(team.id)).items).toEqual([inv]);
    const joined = await bob.teams.join(await codeMailedTo(bob.user!.email!));
    expect(joined).toMatchObject({ id: team.id, role: "member", memberCount: 2 });

    const members = await bob.teams.members(team.id, { limit: 1 }).all();
    expect(members.map((m) => [m.userId, m.role])).toEqual([
      [bob.user!.id, "member"],
      [owner.user!.id, "owner"],
    ]);
    expect((await owner.teams.setRole(team.id, bob.user!.id, "owner")).role).toBe("owner");
    expect((await owner.teams.get(team.id)).role).toBe("admin");
    await owner.teams.leave(team.id);
    await expect(owner.teams.get(team.id)).rejects.toMatchObject({ status: 404, code: "not_found" });
    await expect(bob.teams.leave(team.id)).rejects.toMatchObject({ status: 409, code: "conflict" });

    const carol = await verified();
    await bob.teams.invite(team.id, carol.user!.email!, "admin");
    await carol.teams.join(await codeMailedTo(carol.user!.email!));
    await bob.teams.remove(team.id, carol.user!.id);
    await expect(carol.teams.get(team.id)).rejects.toMatchObject({ code: "not_found" });
    await bob.teams.delete(team.id);
    await expect(bob.teams.get(team.id)).rejects.toMatchObject({ code: "not_found" });
    for (const c of [owner, bob, carol]) c.close();
  });
});

describe("client.files with teamId", () => {
  it("a member uploads a team file (in one request), a viewer lists and reads it, a stranger cannot", async () => {
    const owner = await signedIn({ largeUploadBytes: 1024 });
    const viewer = await verified();
    const stranger = await signedIn();
    const team = await owner.teams.create("Album");
    await owner.teams.invite(team.id, viewer.user!.email!, "viewer");
    await viewer.teams.join(await codeMailedTo(viewer.user!.email!));
    // Above largeUploadBytes: still one request, since resumable uploads take no team.
    const file = await owner.files.upload(new Uint8Array(4096).fill(7), {
      name: "a.bin",
      contentType: "application/octet-stream",
      teamId: team.id,
    });
    expect(file.teamId).toBe(team.id);
    expect((await viewer.files.list({ teamId: team.id }).all()).map((f) => f.id)).toEqual([file.id]);
    expect((await viewer.files.get(file.id)).id).toBe(file.id);
    expect((await owner.files.list().all()).map((f) => f.id)).not.toContain(file.id);
    await expect(stranger.files.get(file.id)).rejects.toMatchObject({ status: 404 });
    await expect(viewer.files.upload(new Uint8Array(10), { teamId: team.id })).rejects.toMatchObject({
      status: 403,
      code: "forbidden",
    });
    for (const c of [owner, viewer, stranger]) c.close();
  });
});
