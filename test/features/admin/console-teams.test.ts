/**
 * Issue 24.8: the console's Teams page. The list and a team's page (members, pending invitations)
 * render for an admin only; removing a member and revoking an invitation need the form's token and
 * a confirmation, never touch the owner, and leave their audit row.
 */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { limits } from "../../../src/config";
import { newId } from "../../../src/lib/ids";
import { signup, type TestUser } from "../../helpers/api";
import { createTeam, invite, memberAs, rolesInD1, verifyEmail } from "../teams/helpers";
import { type Browser, signIn, visit } from "./console-helpers";
import { signupAdmin } from "./helpers";

let admin: TestUser;
beforeAll(async () => {
  admin = await signupAdmin();
});

async function auditOf(target: string) {
  const r = await env.DB.prepare("SELECT actor_id, action, detail FROM audit_log WHERE target = ? ORDER BY id")
    .bind(target)
    .all<{ actor_id: string; action: string; detail: string | null }>();
  return r.results.map((x) => [x.actor_id, x.action, JSON.parse(x.detail ?? "{}")]);
}

async function pendingInvitation(teamId: string, id: string) {
  const row = await env.DB.prepare("SELECT revoked_at FROM team_invitations WHERE team_id = ? AND id = ?")
    .bind(teamId, id)
    .first<{ revoked_at: string | null }>();
  return row?.revoked_at === null;
}

/** A team with its owner, one member and one pending invitation. */
async function teamWithPeople(name: string) {
  const owner = await signup();
  await verifyEmail(owner);
  const team = await createTeam(owner, name);
  const member = await memberAs(owner, team.id, "member");
  const invited = `invited-${crypto.randomUUID().slice(0, 8)}@example.com`;
  const { invitation } = await invite(owner, team.id, invited, "viewer");
  return { owner, team, member, invited, invitation };
}

describe("the Teams page", () => {
  it("lists teams (name, member count, owner) and shows a team's members and pending invitations", async () => {
    const t = await teamWithPeople("Console team");
    const { b } = await signIn(admin);
    const list = await visit(b, "/admin/teams");
    expect(list.status).toBe(200);
    expect(list.html).toContain(`href="/admin/teams"`); // the navigation entry
    expect(list.html).toContain("Console team");
    expect(list.html).toContain(`href="/admin/teams/${t.team.id}"`);
    expect(list.html).toContain(t.owner.email);
    const page = await visit(b, `/admin/teams/${t.team.id}`);
    expect(page.status).toBe(200);
    expect(page.html).toContain(`href="/admin/users/${t.member.id}"`);
    expect(page.html).toContain(t.member.email);
    expect(page.html).toContain(t.invited);
    expect(page.html).toContain(`/admin/teams/${t.team.id}/members/${t.member.id}/remove`);
    expect(page.html).toContain(`/admin/teams/${t.team.id}/invitations/${t.invitation.id}/revoke`);
    // No removal form for the owner.
    expect(page.html).not.toContain(`/members/${t.owner.id}/remove`);
    expect((await visit(b, "/admin/teams/01900000-0000-7000-8000-000000000001")).status).toBe(404);
    // The member's user page lists the team.
    const user = await visit(b, `/admin/users/${t.member.id}`);
    expect(user.html).toContain(`href="/admin/teams/${t.team.id}"`);
  });

  it("pages through every team with cursors, each team once", async () => {
    const now = new Date().toISOString();
    const ids = Array.from({ length: limits.adminPageSize + 2 }, () => newId());
    await env.DB.batch(
      ids.map((id, i) =>
        env.DB.prepare("INSERT INTO teams (id, name, created_at, updated_at) VALUES (?, ?, ?, ?)").bind(
          id,
          `Paged ${i}`,
          now,
          now,
        ),
      ),
    );
    const { b } = await signIn(admin);
    const seen: string[] = [];
    let path: string | null = "/admin/teams";
    for (let pages = 0; path && pages < 20; pages++) {
      const res = await visit(b, path);
      expect(res.status).toBe(200);
      seen.push(...[...res.html.matchAll(/href="\/admin\/teams\/([0-9a-f-]{36})"/g)].map((m) => m[1]!));
      const next = /href="(\/admin\/teams\?cursor=[^"]+)"/.exec(res.html);
      path = next ? next[1]!.replaceAll("&amp;", "&") : null;
    }
    expect(seen.filter((id) => ids.includes(id)).sort()).toEqual([...ids].sort());
    expect(new Set(seen).size).toBe(seen.length);
    expect((await visit(b, "/admin/teams?cursor=not-a-cursor")).status).toBe(400);
  });

  it("is refused to anyone not signed in as an admin: pages redirect to sign-in, actions get 403", async () => {
    const t = await teamWithPeople("Hidden team");
    const user = await signup();
    const tried = await signIn(user); // a non-admin cannot sign in
    for (const b of [tried.b, { cookies: new Map() } as Browser]) {
      for (const path of ["/admin/teams", `/admin/teams/${t.team.id}`]) {
        const res = await visit(b, path);
        expect(res.status, path).toBe(303);
        expect(res.headers.get("location")).toBe("/admin/login");
      }
      const post = await visit(b, `/admin/teams/${t.team.id}/members/${t.member.id}/remove`, {
        _csrf: tried.csrf,
        confirm: "yes",
      });
      expect(post.status).toBe(403);
    }
    expect(await rolesInD1(t.team.id)).toEqual({ [t.owner.id]: "owner", [t.member.id]: "member" });
  });
});

describe("actions on a team", () => {
  it("removing a member: confirmed, with the token; the owner stays; an audit row", async () => {
    const t = await teamWithPeople("Removal team");
    const { b, csrf } = await signIn(admin);
    const path = `/admin/teams/${t.team.id}/members/${t.member.id}/remove`;
    expect((await visit(b, path, { _csrf: "wrong", confirm: "yes" })).status).toBe(403);
    expect((await visit(b, path, { confirm: "yes" })).status).toBe(403);
    const ask = await visit(b, path, { _csrf: csrf });
    expect(ask.status).toBe(200);
    expect(ask.html).toContain("Are you sure?");
    expect(await rolesInD1(t.team.id)).toEqual({ [t.owner.id]: "owner", [t.member.id]: "member" });
    expect(await auditOf(`team:${t.team.id}`)).toEqual([]);

    const done = await visit(b, path, { _csrf: csrf, confirm: "yes" });
    expect(done.status).toBe(303);
    expect(done.headers.get("location")).toBe(`/admin/teams/${t.team.id}?done=member-removed`);
    expect(await rolesInD1(t.team.id)).toEqual({ [t.owner.id]: "owner" });
    expect(await auditOf(`team:${t.team.id}`)).toEqual([[admin.id, "team.member_remove", { userId: t.member.id }]]);
    const after = await visit(b, done.headers.get("location")!);
    expect(after.html).toContain("The member is removed from the team.");

    // Not a member any more: 404 and no second row. The owner: 409, still the owner.
    expect((await visit(b, path, { _csrf: csrf, confirm: "yes" })).status).toBe(404);
    const owner = await visit(b, `/admin/teams/${t.team.id}/members/${t.owner.id}/remove`, {
      _csrf: csrf,
      confirm: "yes",
    });
    expect(owner.status).toBe(409);
    expect(await rolesInD1(t.team.id)).toEqual({ [t.owner.id]: "owner" });
    expect(await auditOf(`team:${t.team.id}`)).toHaveLength(1);
  });

  it("revoking an invitation: confirmed, with the token; an audit row; the link stops working", async () => {
    const t = await teamWithPeople("Revoke team");
    const { b, csrf } = await signIn(admin);
    const path = `/admin/teams/${t.team.id}/invitations/${t.invitation.id}/revoke`;
    expect((await visit(b, path, { _csrf: "wrong", confirm: "yes" })).status).toBe(403);
    expect((await visit(b, path, { _csrf: csrf })).html).toContain("Are you sure?");
    expect(await pendingInvitation(t.team.id, t.invitation.id)).toBe(true);

    const done = await visit(b, path, { _csrf: csrf, confirm: "yes" });
    expect(done.status).toBe(303);
    expect(done.headers.get("location")).toBe(`/admin/teams/${t.team.id}?done=invitation-revoked`);
    expect(await pendingInvitation(t.team.id, t.invitation.id)).toBe(false);
    expect(await auditOf(`team:${t.team.id}`)).toEqual([
      [admin.id, "team.invitation_revoke", { invitationId: t.invitation.id }],
    ]);
    const page = await visit(b, `/admin/teams/${t.team.id}`);
    expect(page.html).not.toContain(t.invited);
    expect(page.html).toContain("No pending invitations.");
    // Revoked already: 404, no second row.
    expect((await visit(b, path, { _csrf: csrf, confirm: "yes" })).status).toBe(404);
    expect(await auditOf(`team:${t.team.id}`)).toHaveLength(1);
  });

  it("an audit row that cannot be written undoes the removal and the revocation (one batch)", async () => {
    const t = await teamWithPeople("Atomic team");
    await env.DB.prepare(
      `CREATE TRIGGER refuse_team_audit BEFORE INSERT ON audit_log WHEN NEW.target = 'team:${t.team.id}' ` +
        "BEGIN SELECT RAISE(ABORT, 'audit refused'); END",
    ).run();
    try {
      const { b, csrf } = await signIn(admin);
      const base = `/admin/teams/${t.team.id}`;
      const removed = await visit(b, `${base}/members/${t.member.id}/remove`, { _csrf: csrf, confirm: "yes" });
      expect(removed.status).toBe(500);
      const revoked = await visit(b, `${base}/invitations/${t.invitation.id}/revoke`, { _csrf: csrf, confirm: "yes" });
      expect(revoked.status).toBe(500);
    } finally {
      await env.DB.prepare("DROP TRIGGER IF EXISTS refuse_team_audit").run();
    }
    expect(await rolesInD1(t.team.id)).toEqual({ [t.owner.id]: "owner", [t.member.id]: "member" });
    expect(await pendingInvitation(t.team.id, t.invitation.id)).toBe(true);
  });
});
