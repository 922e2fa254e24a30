/**
 * Role rules in detail: who may change or remove whom, the owner who cannot leave or demote
 * themselves, and concurrent hand-overs that must leave exactly one owner.
 */
import { describe, expect, it } from "vitest";
import { api, expectProblem, signup, type TestUser } from "../../helpers/api";
import { createTeam, invite, memberAs, type Role, rolesInD1 } from "./helpers";

const setRole = (caller: TestUser, teamId: string, userId: string, role: Role | string) =>
  api(`/v1/teams/${teamId}/members/${userId}`, { method: "PATCH", token: caller.accessToken, body: { role } });
const remove = (caller: TestUser, teamId: string, userId: string) =>
  api(`/v1/teams/${teamId}/members/${userId}`, { method: "DELETE", token: caller.accessToken });

async function team() {
  const owner = await signup();
  const { id } = await createTeam(owner);
  return {
    id,
    owner,
    admin: await memberAs(owner, id, "admin"),
    admin2: await memberAs(owner, id, "admin"),
    member: await memberAs(owner, id, "member"),
    viewer: await memberAs(owner, id, "viewer"),
  };
}

describe("team roles", () => {
  it("admins manage members and viewers only, never admins, the owner or ownership", async () => {
    const t = await team();
    const before = await rolesInD1(t.id);
    expectProblem(await setRole(t.admin, t.id, t.member.id, "admin"), 403, "forbidden");
    expectProblem(await setRole(t.admin, t.id, t.admin2.id, "member"), 403, "forbidden");
    expectProblem(await setRole(t.admin, t.id, t.owner.id, "member"), 403, "forbidden");
    expectProblem(await setRole(t.admin, t.id, t.member.id, "owner"), 403, "forbidden");
    expectProblem(await setRole(t.admin, t.id, "me", "member"), 403, "forbidden");
    expectProblem(await remove(t.admin, t.id, t.admin2.id), 403, "forbidden");
    expectProblem(await remove(t.admin, t.id, t.owner.id), 403, "forbidden");
    expectProblem(await setRole(t.member, t.id, t.viewer.id, "member"), 403, "forbidden");
    expectProblem(await remove(t.member, t.id, t.viewer.id), 403, "forbidden");
    expectProblem(await setRole(t.viewer, t.id, "me", "member"), 403, "forbidden");
    expect(await rolesInD1(t.id)).toEqual(before);
    expect((await setRole(t.admin, t.id, t.viewer.id, "member")).body.role).toBe("member");
    expect((await setRole(t.admin, t.id, t.viewer.id, "viewer")).body.role).toBe("viewer");
    expect((await remove(t.admin, t.id, t.viewer.id)).status).toBe(204);
  });

  it("the owner makes and unmakes admins and removes anyone", async () => {
    const t = await team();
    expect((await setRole(t.owner, t.id, t.member.id, "admin")).body.role).toBe("admin");
    expect((await setRole(t.owner, t.id, t.admin.id, "viewer")).body.role).toBe("viewer");
    expect((await remove(t.owner, t.id, t.admin2.id)).status).toBe(204);
    expect(await rolesInD1(t.id)).toEqual({
      [t.owner.id]: "owner",
      [t.admin.id]: "viewer",
      [t.member.id]: "admin",
      [t.viewer.id]: "viewer",
    });
  });

  it("the owner cannot leave or step down without handing over (409); others leave with `me`", async () => {
    const t = await team();
    expectProblem(await remove(t.owner, t.id, "me"), 409, "conflict");
    expectProblem(await remove(t.owner, t.id, t.owner.id), 409, "conflict");
    expectProblem(await setRole(t.owner, t.id, "me", "admin"), 409, "conflict");
    expect((await setRole(t.owner, t.id, "me", "owner")).body).toMatchObject({ userId: t.owner.id, role: "owner" });
    for (const u of [t.viewer, t.member, t.admin]) expect((await remove(u, t.id, "me")).status).toBe(204);
    expect(Object.keys(await rolesInD1(t.id)).sort()).toEqual([t.owner.id, t.admin2.id].sort());
    expectProblem(await api(`/v1/teams/${t.id}`, { token: t.member.accessToken }), 404, "not_found");
  });

  it("a user who is not a member → 404; a bad role or an unknown field → 400", async () => {
    const t = await team();
    const outsider = await signup();
    expectProblem(await setRole(t.owner, t.id, outsider.id, "member"), 404, "not_found");
    expectProblem(await remove(t.owner, t.id, outsider.id), 404, "not_found");
    expectProblem(await setRole(t.owner, t.id, t.member.id, "superuser"), 400, "validation_failed");
    const extra = await api(`/v1/teams/${t.id}/members/${t.member.id}`, {
      method: "PATCH",
      token: t.owner.accessToken,
      body: { role: "viewer", teamId: "x" },
    });
    expectProblem(extra, 400, "validation_failed");
    expectProblem(
      await api("/v1/teams", { token: t.owner.accessToken, body: { name: "   " } }),
      400,
      "validation_failed",
    );
    const invOwner = await api(`/v1/teams/${t.id}/invitations`, {
      token: t.owner.accessToken,
      body: { email: "x@example.com", role: "owner" },
    });
    expectProblem(invOwner, 400, "validation_failed");
  });

  it("only the owner invites admins", async () => {
    const t = await team();
    const res = await api(`/v1/teams/${t.id}/invitations`, {
      token: t.admin.accessToken,
      body: { email: "a@example.com", role: "admin" },
    });
    expectProblem(res, 403, "forbidden");
    expect((await invite(t.admin, t.id, "m@example.com", "member")).invitation.role).toBe("member");
    expect((await invite(t.owner, t.id, "a@example.com", "admin")).invitation.role).toBe("admin");
  });

  it("concurrent hand-overs to different members leave exactly one owner", async () => {
    const owner = await signup();
    const { id } = await createTeam(owner);
    const heirs = [
      await memberAs(owner, id, "admin"),
      await memberAs(owner, id, "admin"),
      await memberAs(owner, id, "member"),
      await memberAs(owner, id, "viewer"),
    ];
    const results = await Promise.all(heirs.map((h) => setRole(owner, id, h.id, "owner")));
    const statuses = results.map((r) => r.status).sort();
    expect(statuses).toEqual([200, 409, 409, 409]);
    for (const r of results) if (r.status === 409) expectProblem(r, 409, "conflict");
    const roles = await rolesInD1(id);
    const owners = Object.entries(roles).filter(([, r]) => r === "owner");
    expect(owners).toHaveLength(1);
    const winner = heirs[results.findIndex((r) => r.status === 200)]!;
    expect(owners[0]![0]).toBe(winner.id);
    expect(roles[owner.id]).toBe("admin");
    // The old owner, now an admin, cannot hand over again.
    expectProblem(await setRole(owner, id, heirs[0]!.id, "owner"), 403, "forbidden");
  });

  it("a concurrent hand-over and removal of the new owner keep one owner", async () => {
    const owner = await signup();
    const { id } = await createTeam(owner);
    const heir = await memberAs(owner, id, "admin");
    const [handed, removed] = await Promise.all([setRole(owner, id, heir.id, "owner"), remove(owner, id, heir.id)]);
    // Whichever ran first wins; the other sees the roles changed.
    expect([handed.status, removed.status]).toEqual(handed.status === 200 ? [200, 409] : [409, 204]);
    const owners = Object.values(await rolesInD1(id)).filter((r) => r === "owner");
    expect(owners).toHaveLength(1);
  });
});
