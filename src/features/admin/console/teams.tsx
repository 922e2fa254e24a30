/** Teams: the list, a team's members and pending invitations, removing a member and revoking an invitation. */
import { Hono } from "hono";
import type { FC } from "hono/jsx";
import { AppError } from "../../../errors";
import {
  type AdminInvitation,
  type AdminTeam,
  type AdminTeamMember,
  adminRemoveMember,
  adminRevokeInvitation,
  adminTeamDetail,
  listAllTeams,
} from "../../teams";
import { auditStatement } from "../service";
import type { ConsoleEnv } from "./context";
import { actor, type C, idParam, limitOf, page, redirect, unconfirmed } from "./page";
import { type Column, DataTable } from "./table";
import { ActionForm, fmtDate, P, short } from "./ui";

const ownerCell = (t: AdminTeam) =>
  t.ownerId ? (t.ownerEmail ?? t.ownerName ?? short(t.ownerId)) : <span class="muted">—</span>;

const teamColumns: Column<AdminTeam>[] = [
  { header: "Name", cell: (t) => t.name, link: (t) => `${P}/teams/${t.id}`, linkClass: "strong" },
  { header: "Members", cell: (t) => t.memberCount },
  { header: "Owner", cell: ownerCell, link: (t) => (t.ownerId ? `${P}/users/${t.ownerId}` : null) },
  { header: "Created", cell: (t) => fmtDate(t.createdAt) },
];

const TeamsPage: FC<{ items: AdminTeam[]; next: string | null; paged: boolean }> = (p) => (
  <>
    <h1>Teams</h1>
    <DataTable
      rows={p.items}
      columns={teamColumns}
      empty="No teams yet."
      pager={{ base: `${P}/teams`, next: p.next, paged: p.paged }}
    />
  </>
);

const memberColumns = (teamId: string, csrf: string, team: string): Column<AdminTeamMember>[] => [
  {
    header: "User",
    cell: (m) => m.email ?? m.name ?? short(m.userId),
    link: (m) => `${P}/users/${m.userId}`,
    linkClass: "strong",
  },
  { header: "Role", cell: (m) => (m.role === "owner" ? <span class="pill accent">owner</span> : m.role) },
  { header: "Joined", cell: (m) => fmtDate(m.joinedAt) },
  {
    header: "",
    class: "right",
    cell: (m) =>
      m.role === "owner" ? null : (
        <ActionForm
          action={`${P}/teams/${teamId}/members/${m.userId}/remove`}
          csrf={csrf}
          confirm={`Remove ${m.email ?? m.name ?? short(m.userId)} from ${team}? They lose access to its data.`}
        >
          <button type="submit" class="btn small ghost danger-text">
            Remove
          </button>
        </ActionForm>
      ),
  },
];

const invitationColumns = (teamId: string, csrf: string): Column<AdminInvitation>[] => [
  { header: "Email", cell: (i) => i.email, class: "strong" },
  { header: "Role", cell: (i) => i.role },
  { header: "Expires", cell: (i) => fmtDate(i.expiresAt) },
  {
    header: "",
    class: "right",
    cell: (i) => (
      <ActionForm
        action={`${P}/teams/${teamId}/invitations/${i.id}/revoke`}
        csrf={csrf}
        confirm={`Revoke the invitation of ${i.email}? Its link stops working.`}
      >
        <button type="submit" class="btn small ghost danger-text">
          Revoke
        </button>
      </ActionForm>
    ),
  },
];

type Detail = NonNullable<Awaited<ReturnType<typeof adminTeamDetail>>>;

const TeamPage: FC<{ d: Detail; paged: boolean; csrf: string }> = ({ d, paged, csrf }) => {
  const t = d.team;
  return (
    <>
      <p class="crumbs">
        <a href={`${P}/teams`}>Teams</a> / {t.name}
      </p>
      <h1>{t.name}</h1>
      <section class="card">
        <dl class="facts">
          <dt>Id</dt>
          <dd>
            <code>{t.id}</code>
          </dd>
          <dt>Owner</dt>
          <dd>{t.ownerId ? <a href={`${P}/users/${t.ownerId}`}>{ownerCell(t)}</a> : ownerCell(t)}</dd>
          <dt>Members</dt>
          <dd>{t.memberCount}</dd>
          <dt>Created</dt>
          <dd>{fmtDate(t.createdAt)}</dd>
        </dl>
      </section>
      <h2>Members</h2>
      <DataTable
        rows={d.members}
        columns={memberColumns(t.id, csrf, t.name)}
        empty="No members."
        pager={{ base: `${P}/teams/${t.id}`, next: d.nextMembers, paged }}
      />
      <h2>Pending invitations</h2>
      <section class="card flush">
        <DataTable rows={d.invitations} columns={invitationColumns(t.id, csrf)} empty="No pending invitations." />
      </section>
      {d.moreInvitations ? <p class="muted small">Showing the {d.invitations.length} newest.</p> : null}
    </>
  );
};

/** Mounted at `/admin/teams`. */
export const teams = new Hono<ConsoleEnv>();

teams.get("/", async (c) => {
  const cursor = c.req.query("cursor");
  const res = await listAllTeams(c.var.db, limitOf(), cursor);
  return page(c, "Teams", "teams", <TeamsPage items={res.items} next={res.nextCursor} paged={cursor !== undefined} />);
});

teams.get("/:id", async (c) => {
  const cursor = c.req.query("cursor");
  const d = await adminTeamDetail(c.var.db, idParam(c), limitOf(), cursor);
  if (!d) throw new AppError("not_found", "No such team.");
  return page(c, d.team.name, "teams", <TeamPage d={d} paged={cursor !== undefined} csrf={c.var.csrf} />);
});

const audit =
  (c: C, action: string, target: string, detail: Record<string, unknown>) =>
  (when: Parameters<typeof auditStatement>[3]) =>
    auditStatement(c.var.db, actor(c), { action, target, detail }, when);

teams.post("/:id/members/:userId/remove", async (c) => {
  const id = idParam(c);
  const userId = idParam(c, "userId");
  const ask = await unconfirmed(
    c,
    "Remove this member from the team? They lose access to its data.",
    `${P}/teams/${id}`,
  );
  if (ask) return ask;
  await adminRemoveMember(c.var.db, id, userId, audit(c, "team.member_remove", `team:${id}`, { userId }));
  return redirect(c, `${P}/teams/${id}`, "member-removed");
});

teams.post("/:id/invitations/:invitationId/revoke", async (c) => {
  const id = idParam(c);
  const invitationId = idParam(c, "invitationId");
  const ask = await unconfirmed(c, "Revoke this invitation? Its link stops working.", `${P}/teams/${id}`);
  if (ask) return ask;
  await adminRevokeInvitation(
    c.var.db,
    id,
    invitationId,
    audit(c, "team.invitation_revoke", `team:${id}`, { invitationId }),
  );
  return redirect(c, `${P}/teams/${id}`, "invitation-revoked");
});
