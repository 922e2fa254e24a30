/**
 * Issue 24.8: the console's Teams page. The list and a team's page (members, pending invitations,
 * the team's records) render for an admin only; removing a member and revoking an invitation need
 * the form's token and a confirmation, never touch the owner, and leave their audit row; a removed
 * member's live sockets on the team close, as after the API's removal.
 */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { limits } from "../../../src/config";
import { newId } from "../../../src/lib/ids";
import { api, signup, type TestUser } from "../../helpers/api";
import { subscribe } from "../collections/live-helpers";
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

/** A record of a team-scoped collection, created through the API by `user`. */
async function createRecord(user: TestUser, name: "lists" | "items", body: Record<string, unknown>) {
  const res = await api(`/v1/collections/${name}/records`, { token: user.accessToken, body });
  expect(res.status, res.text).toBe(201);
  return res.body as { id: string; teamId: string };
}

/** The record ids of `name` a console page links to, in page order. */
const recordLinks = (html: string, name: string) =>
  [...html.matchAll(new RegExp(`href="/admin/collections/${name}/([0-9a-f-]{36})"`, "g"))].map((m) => m[1]!);

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
      for (const path of ["/admin/teams", `/admin/teams/${t.team.id}`, `/admin/teams/${t.team.id}/records/items`]) {
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

describe("a team's records", () => {
  it("shows the newest lists and items of the team, a count each, linked to their record pages", async () => {
    const t = await teamWithPeople("Shopping team");
    const other = await teamWithPeople("Other team");
    const tag = crypto.randomUUID().slice(0, 8);
    const list = await createRecord(t.member, "lists", { teamId: t.team.id, title: `Groceries ${tag}` });
    const milk = await createRecord(t.member, "items", { teamId: t.team.id, listId: list.id, text: `Milk ${tag}` });
    const bread = await createRecord(t.owner, "items", { teamId: t.team.id, listId: list.id, text: `Bread ${tag}` });
    const otherList = await createRecord(other.owner, "lists", { teamId: other.team.id, title: `Hidden ${tag}` });
    const otherItem = await createRecord(other.member, "items", {
      teamId: other.team.id,
      listId: otherList.id,
      text: `Secret ${tag}`,
    });

    const { b } = await signIn(admin);
    const page = await visit(b, `/admin/teams/${t.team.id}`);
    expect(page.status).toBe(200);
    expect(page.html).toContain("<h2>Records</h2>");
    expect(recordLinks(page.html, "lists")).toEqual([list.id]);
    expect(recordLinks(page.html, "items")).toEqual([bread.id, milk.id]); // newest first
    expect(page.html).toContain(`Groceries ${tag}`);
    expect(page.html).toContain(`Milk ${tag}`);
    expect(page.html).toContain("1 record<");
    expect(page.html).toContain("2 records<");
    expect(page.html).toContain(`href="/admin/teams/${t.team.id}/records/items"`);
    // Another team's records are not there.
    expect(page.html).not.toContain(otherList.id);
    expect(page.html).not.toContain(otherItem.id);
    expect(page.html).not.toContain(`Secret ${tag}`);
    const empty = await visit(b, `/admin/teams/${(await teamWithPeople("Empty team")).team.id}`);
    expect(empty.html).toContain("No items in this team.");
    // A team's records are private to it: the admin's look is in the audit log.
    const audited = await env.DB.prepare(
      "SELECT count(*) AS n FROM audit_log WHERE action = 'records.view' AND target = 'collection:items' AND detail LIKE ?",
    )
      .bind(`%${t.team.id}%`)
      .first<number>("n");
    expect(audited).toBeGreaterThan(0);

    // The record's page names its team; a record of an owner-scoped collection has no team.
    const record = await visit(b, `/admin/collections/items/${milk.id}`);
    expect(record.status).toBe(200);
    expect(record.html).toContain("<dt>Team</dt>");
    expect(record.html).toContain(`href="/admin/teams/${t.team.id}"`);
    const note = await api("/v1/collections/notes/records", { token: t.member.accessToken, body: { title: "n" } });
    expect(note.status).toBe(201);
    expect((await visit(b, `/admin/collections/notes/${note.body.id}`)).html).not.toContain("<dt>Team</dt>");
  });

  it("pages through one collection of the team, each record once, none of another team's", async () => {
    const t = await teamWithPeople("Big list team");
    const other = await teamWithPeople("Small list team");
    const list = await createRecord(t.owner, "lists", { teamId: t.team.id, title: "Everything" });
    const ids: string[] = [];
    for (let i = 0; i < limits.adminPageSize + 2; i++)
      ids.push((await createRecord(t.member, "items", { teamId: t.team.id, listId: list.id, text: `Item ${i}` })).id);
    const otherList = await createRecord(other.owner, "lists", { teamId: other.team.id, title: "Elsewhere" });
    const otherItem = await createRecord(other.owner, "items", {
      teamId: other.team.id,
      listId: otherList.id,
      text: "x",
    });

    const { b } = await signIn(admin);
    const teamPage = await visit(b, `/admin/teams/${t.team.id}`);
    expect(teamPage.html).toContain(`${ids.length} records<`);
    expect(teamPage.html).toContain(`All ${ids.length} »`);
    // The team's page shows the newest few.
    expect(recordLinks(teamPage.html, "items")).toEqual([...ids].reverse().slice(0, 5));

    const base = `/admin/teams/${t.team.id}/records/items`;
    const seen: string[] = [];
    let pages = 0;
    let path: string | null = base;
    for (; path && pages < 10; pages++) {
      const res = await visit(b, path);
      expect(res.status).toBe(200);
      expect(res.html).toContain(`href="/admin/teams/${t.team.id}"`); // the crumbs
      seen.push(...recordLinks(res.html, "items"));
      const next = /href="(\/admin\/teams\/[0-9a-f-]{36}\/records\/items\?cursor=[^"]+)"/.exec(res.html);
      path = next ? next[1]!.replaceAll("&amp;", "&") : null;
    }
    expect(pages).toBe(2);
    expect(seen).toEqual([...ids].reverse()); // newest first, each once
    expect(seen).not.toContain(otherItem.id);

    expect((await visit(b, `${base}?cursor=not-a-cursor`)).status).toBe(400);
    expect((await visit(b, `/admin/teams/${t.team.id}/records/notes`)).status).toBe(404); // not team-scoped
    expect((await visit(b, `/admin/teams/${t.team.id}/records/nothing`)).status).toBe(404);
    expect((await visit(b, "/admin/teams/01900000-0000-7000-8000-000000000001/records/items")).status).toBe(404);
  });

  it("removing a member from the console closes their live socket on the team (4403); others stay", async () => {
    const t = await teamWithPeople("Live team");
    const member = await subscribe(t.member, "items", { teamId: t.team.id });
    const owner = await subscribe(t.owner, "items", { teamId: t.team.id });
    const { b, csrf } = await signIn(admin);
    const done = await visit(b, `/admin/teams/${t.team.id}/members/${t.member.id}/remove`, {
      _csrf: csrf,
      confirm: "yes",
    });
    expect(done.status).toBe(303);
    expect((await member.socket.closedWithin(5000)).code).toBe(4403);
    // The owner's socket is still live: the next change reaches it.
    const list = await createRecord(t.owner, "lists", { teamId: t.team.id, title: "After" });
    const item = await createRecord(t.owner, "items", { teamId: t.team.id, listId: list.id, text: "still here" });
    expect((await owner.socket.next("change")).item.id).toBe(item.id);
    owner.socket.close();
  });
});
