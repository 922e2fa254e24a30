/** Teams: create, list, get, rename, members, invitations, join, roles, leave, delete. */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { type ApiResponse, api, expectProblem, signup } from "../../helpers/api";
import { mailTo } from "../../helpers/outbox";
import { createTeam, invite, join, memberAs, rolesInD1, verifyEmail } from "./helpers";

describe("teams: the happy path", () => {
  it("create → 201 with the caller as owner; get, list and rename", async () => {
    const owner = await signup();
    const team = await createTeam(owner, "  Family  ");
    expect(team).toMatchObject({ name: "Family", role: "owner", memberCount: 1 });
    expect(Date.parse(team.createdAt)).toBeGreaterThan(0);
    const got = await api(`/v1/teams/${team.id}`, { token: owner.accessToken });
    expect(got.status).toBe(200);
    expect(got.body).toEqual(team);
    const second = await createTeam(owner, "Club");
    const list = await api("/v1/teams?limit=1", { token: owner.accessToken });
    expect(list.body.items.map((t: { id: string }) => t.id)).toEqual([second.id]);
    const next = await api(`/v1/teams?limit=1&cursor=${list.body.nextCursor}`, { token: owner.accessToken });
    expect(next.body).toEqual({ items: [team], nextCursor: null });
    const renamed = await api(`/v1/teams/${team.id}`, {
      method: "PATCH",
      token: owner.accessToken,
      body: { name: "Fam" },
    });
    expect(renamed.status).toBe(200);
    expect(renamed.body).toMatchObject({ id: team.id, name: "Fam", role: "owner" });
  });

  it("an invitation mails a token and a link; the invitee joins with the invitation's role", async () => {
    const owner = await signup();
    const team = await createTeam(owner, "Club");
    const bob = await signup({ name: "Bob" });
    await verifyEmail(bob);
    const { invitation, token } = await invite(owner, team.id, bob.email.toUpperCase(), "viewer");
    expect(invitation).toMatchObject({ email: bob.email, role: "viewer" });
    const days = (Date.parse(invitation.expiresAt) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(6.99);
    expect(days).toBeLessThanOrEqual(7);
    const mail = await mailTo(bob.email);
    expect(mail.subject).toContain("Club");
    expect(mail.text).toContain(`https://outpost.test/teams/join?token=${token}`);
    const stored = await env.DB.prepare("SELECT token_hash FROM team_invitations WHERE id = ?")
      .bind(invitation.id)
      .first();
    expect(stored?.token_hash).not.toBe(token);
    const pending = await api(`/v1/teams/${team.id}/invitations`, { token: owner.accessToken });
    expect(pending.body).toEqual({ items: [invitation], nextCursor: null });
    const joined = await join(bob, token);
    expect(joined.status).toBe(200);
    expect(joined.body).toMatchObject({ id: team.id, name: "Club", role: "viewer", memberCount: 2 });
    const members = await api(`/v1/teams/${team.id}/members`, { token: bob.accessToken });
    expect(members.status).toBe(200);
    expect(
      members.body.items.map((m: { userId: string; name: string | null; role: string }) => [m.userId, m.name, m.role]),
    ).toEqual([
      [bob.id, "Bob", "viewer"],
      [owner.id, null, "owner"],
    ]);
    expect((await api(`/v1/teams/${team.id}/invitations`, { token: owner.accessToken })).body.items).toEqual([]);
  });

  it("members are paged with a cursor", async () => {
    const owner = await signup();
    const team = await createTeam(owner);
    const a = await memberAs(owner, team.id, "member");
    const b = await memberAs(owner, team.id, "viewer");
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res: ApiResponse = await api(`/v1/teams/${team.id}/members?limit=1${cursor ? `&cursor=${cursor}` : ""}`, {
        token: owner.accessToken,
      });
      expect(res.status).toBe(200);
      expect(res.body.items).toHaveLength(1);
      seen.push(res.body.items[0].userId);
      cursor = res.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual([b.id, a.id, owner.id]);
  });

  it("roles change; hand-over makes the old owner an admin; members leave; the owner removes", async () => {
    const owner = await signup();
    const team = await createTeam(owner);
    const m = await memberAs(owner, team.id, "member");
    const v = await memberAs(owner, team.id, "viewer");
    const up = await api(`/v1/teams/${team.id}/members/${m.id}`, {
      method: "PATCH",
      token: owner.accessToken,
      body: { role: "admin" },
    });
    expect(up.status).toBe(200);
    expect(up.body).toMatchObject({ userId: m.id, role: "admin" });
    const hand = await api(`/v1/teams/${team.id}/members/${v.id}`, {
      method: "PATCH",
      token: owner.accessToken,
      body: { role: "owner" },
    });
    expect(hand.body).toMatchObject({ userId: v.id, role: "owner" });
    expect(await rolesInD1(team.id)).toEqual({ [owner.id]: "admin", [m.id]: "admin", [v.id]: "owner" });
    expect((await api(`/v1/teams/${team.id}/members/me`, { method: "DELETE", token: owner.accessToken })).status).toBe(
      204,
    );
    expect((await api(`/v1/teams/${team.id}/members/${m.id}`, { method: "DELETE", token: v.accessToken })).status).toBe(
      204,
    );
    expect(await rolesInD1(team.id)).toEqual({ [v.id]: "owner" });
    expectProblem(await api(`/v1/teams/${team.id}`, { token: owner.accessToken }), 404, "not_found");
  });

  it("delete: the team, its memberships and invitations go in one go", async () => {
    const owner = await signup();
    const team = await createTeam(owner);
    await memberAs(owner, team.id, "member");
    await invite(owner, team.id, "someone@example.com");
    expect((await api(`/v1/teams/${team.id}`, { method: "DELETE", token: owner.accessToken })).status).toBe(204);
    for (const [table, col] of [
      ["teams", "id"],
      ["team_members", "team_id"],
      ["team_invitations", "team_id"],
    ]) {
      const n = await env.DB.prepare(`SELECT count(*) AS n FROM ${table} WHERE ${col} = ?`).bind(team.id).first("n");
      expect(n, table).toBe(0);
    }
    expectProblem(await api(`/v1/teams/${team.id}`, { token: owner.accessToken }), 404, "not_found");
  });
});
