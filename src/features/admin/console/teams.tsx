/**
 * Teams: the list, a team's members, pending invitations and records (of each team-scoped collection),
 * removing a member and revoking an invitation.
 */
import { Hono } from "hono";
import type { FC } from "hono/jsx";
import { AppError } from "../../../errors";
import { type Collection, collections, listRecords, type RecordRow, teamRecordCounts } from "../../collections";
import {
  type AdminInvitation,
  type AdminTeam,
  type AdminTeamMember,
  adminRemoveMember,
  adminRevokeInvitation,
  adminTeam,
  adminTeamDetail,
  listAllTeams,
} from "../../teams";
import { auditStatement, recordAudit } from "../service";
import { collectionOf, privateRecords, recordColumns } from "./collections";
import type { ConsoleEnv } from "./context";
import { actor, type C, idParam, limitOf, page, redirect, SERVICE, unconfirmed } from "./page";
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

/** The team-scoped collections: the ones whose records belong to a team. */
const teamCollections = collections.filter((col) => col.scope === "team");

/** How many of its newest records of each collection a team's page shows; the rest are a link away. */
const RECORDS_SHOWN = 5;

/** A collection's newest records in one team, and how many the team has. */
interface TeamRecords {
  col: Collection;
  count: number;
  items: RecordRow[];
  more: boolean;
}

/** A page of a team's records of `col`, newest first (one range of the collection's team index). */
async function teamRecords(c: C, col: Collection, teamId: string, limit: number, cursor?: string) {
  const res = await listRecords(c.get("db"), col, SERVICE, { where: { teamId }, sort: "-createdAt", limit, cursor });
  // Records not everyone may read (a team's among them): the admin's look at them is recorded.
  if (privateRecords(col) && res.items.length)
    await recordAudit(c.get("db"), actor(c), {
      action: "records.view",
      target: `collection:${col.name}`,
      detail: { teamId, records: res.items.length },
    });
  return res;
}

async function teamRecordsShown(c: C, teamId: string): Promise<TeamRecords[]> {
  const [counts, pages] = await Promise.all([
    teamRecordCounts(c.get("db"), teamId),
    Promise.all(teamCollections.map((col) => teamRecords(c, col, teamId, RECORDS_SHOWN))),
  ]);
  return teamCollections.map((col, i) => ({
    col,
    count: counts[col.name] ?? 0,
    items: pages[i]!.items,
    more: pages[i]!.nextCursor !== null,
  }));
}

const teamRecordsPath = (teamId: string, col: Collection) => `${P}/teams/${teamId}/records/${col.name}`;

const RecordsSection: FC<{ teamId: string; records: TeamRecords[] }> = ({ teamId, records }) =>
  records.length === 0 ? null : (
    <>
      <h2>Records</h2>
      {records.map((r) => (
        <>
          <div class="title-row">
            <a href={teamRecordsPath(teamId, r.col)} class="strong">
              {r.col.name}
            </a>
            <span class="pill">
              {r.count} {r.count === 1 ? "record" : "records"}
            </span>
            {r.more ? (
              <a href={teamRecordsPath(teamId, r.col)} class="btn ghost small">
                All {r.count} »
              </a>
            ) : null}
          </div>
          <section class="card flush">
            <DataTable rows={r.items} columns={recordColumns(r.col)} empty={`No ${r.col.name} in this team.`} />
          </section>
        </>
      ))}
    </>
  );

type Detail = NonNullable<Awaited<ReturnType<typeof adminTeamDetail>>>;

const TeamPage: FC<{ d: Detail; records: TeamRecords[]; paged: boolean; csrf: string }> = ({
  d,
  records,
  paged,
  csrf,
}) => {
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
      <RecordsSection teamId={t.id} records={records} />
    </>
  );
};

const TeamRecordsPage: FC<{
  team: AdminTeam;
  col: Collection;
  items: RecordRow[];
  next: string | null;
  paged: boolean;
}> = (p) => (
  <>
    <p class="crumbs">
      <a href={`${P}/teams`}>Teams</a> / <a href={`${P}/teams/${p.team.id}`}>{p.team.name}</a> / {p.col.name}
    </p>
    <h1>
      {p.col.name} of {p.team.name}
    </h1>
    <DataTable
      rows={p.items}
      columns={recordColumns(p.col)}
      empty={`No ${p.col.name} in this team.`}
      pager={{ base: teamRecordsPath(p.team.id, p.col), next: p.next, paged: p.paged }}
    />
  </>
);

/** Mounted at `/admin/teams`. */
export const teams = new Hono<ConsoleEnv>();

teams.get("/", async (c) => {
  const cursor = c.req.query("cursor");
  const res = await listAllTeams(c.get("db"), limitOf(), cursor);
  return page(c, "Teams", "teams", <TeamsPage items={res.items} next={res.nextCursor} paged={cursor !== undefined} />);
});

teams.get("/:id", async (c) => {
  const cursor = c.req.query("cursor");
  const d = await adminTeamDetail(c.get("db"), idParam(c), limitOf(), cursor);
  if (!d) throw new AppError("not_found", "No such team.");
  const records = await teamRecordsShown(c, d.team.id);
  return page(
    c,
    d.team.name,
    "teams",
    <TeamPage d={d} records={records} paged={cursor !== undefined} csrf={c.get("csrf")} />,
  );
});

teams.get("/:id/records/:name", async (c) => {
  const col = collectionOf(c);
  if (col.scope !== "team") throw new AppError("not_found", "No such page.");
  const team = await adminTeam(c.get("db"), idParam(c));
  if (!team) throw new AppError("not_found", "No such team.");
  const cursor = c.req.query("cursor");
  const res = await teamRecords(c, col, team.id, limitOf(), cursor);
  return page(
    c,
    `${col.name} of ${team.name}`,
    "teams",
    <TeamRecordsPage team={team} col={col} items={res.items} next={res.nextCursor} paged={cursor !== undefined} />,
  );
});

const audit =
  (c: C, action: string, target: string, detail: Record<string, unknown>) =>
  (when: Parameters<typeof auditStatement>[3]) =>
    auditStatement(c.get("db"), actor(c), { action, target, detail }, when);

teams.post("/:id/members/:userId/remove", async (c) => {
  const id = idParam(c);
  const userId = idParam(c, "userId");
  const ask = await unconfirmed(
    c,
    "Remove this member from the team? They lose access to its data.",
    `${P}/teams/${id}`,
  );
  if (ask) return ask;
  const after = await adminRemoveMember(
    c.get("lifecycle"),
    c.env,
    c.get("db"),
    id,
    userId,
    audit(c, "team.member_remove", `team:${id}`, { userId }),
  );
  // As after the API's removal: the member's live sockets on this team close (4403).
  c.executionCtx.waitUntil(after());
  return redirect(c, `${P}/teams/${id}`, "member-removed");
});

teams.post("/:id/invitations/:invitationId/revoke", async (c) => {
  const id = idParam(c);
  const invitationId = idParam(c, "invitationId");
  const ask = await unconfirmed(c, "Revoke this invitation? Its link stops working.", `${P}/teams/${id}`);
  if (ask) return ask;
  await adminRevokeInvitation(
    c.get("db"),
    id,
    invitationId,
    audit(c, "team.invitation_revoke", `team:${id}`, { invitationId }),
  );
  return redirect(c, `${P}/teams/${id}`, "invitation-revoked");
});
