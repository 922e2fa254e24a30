/**
 * The admin console's view of teams: every team, one team's members and pending invitations, a
 * user's teams, and the console's removal and revocation (each with its audit row in its batch).
 */
import { and, asc, desc, eq, ne, type SQL, sql } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import * as v from "valibot";
import type { Database } from "../../db";
import { type TeamRole, teamInvitations, teamMembers, teams } from "../../db/schema";
import { AppError } from "../../errors";
import { decodeCursor, encodeCursor } from "../../lib/cursor";
import { nowIso } from "../../lib/ids";
import { afterId, afterTimeId, decodeTimeIdCursor, encodeTimeIdCursor, keysetPage } from "../../lib/keyset";
import type { Lifecycle } from "../../lifecycle";
import { userEmailSql, userNameSql } from "../auth";
import { pendingInvitationSql, revokePendingStatement } from "./invitations";
import { membershipChanged } from "./service";

/** The audit row of the action, for its batch: written only when `when` holds. */
type AuditOf = (when: SQL) => BatchItem<"sqlite">;

/** True right after a statement that changed at least one row. */
const WROTE = sql`changes() > 0`;

export interface AdminTeam {
  id: string;
  name: string;
  createdAt: string;
  memberCount: number;
  ownerId: string | null;
  ownerEmail: string | null;
  ownerName: string | null;
}

export interface AdminTeamMember {
  userId: string;
  role: TeamRole;
  joinedAt: string;
  email: string | null;
  name: string | null;
}

export interface AdminInvitation {
  id: string;
  email: string;
  role: TeamRole;
  expiresAt: string;
  createdAt: string;
}

const ownerIdSql = sql<string | null>`(SELECT o.user_id FROM team_members AS o
  WHERE o.team_id = ${teams.id} AND o.role = 'owner' LIMIT 1)`;

const adminTeamFields = {
  id: teams.id,
  name: teams.name,
  createdAt: teams.createdAt,
  memberCount: sql<number>`(SELECT count(*) FROM team_members AS mc WHERE mc.team_id = ${teams.id})`,
  ownerId: ownerIdSql,
  ownerEmail: userEmailSql(ownerIdSql),
  ownerName: userNameSql(ownerIdSql),
};

const IdCursor = v.pipe(
  v.tuple([v.string()]),
  v.transform(([id]) => id),
);

/** The statement behind `listAllTeams`: newest first, along the key. */
const listAllTeamsQuery = (db: Database, limit: number, after: string | null) =>
  db
    .select(adminTeamFields)
    .from(teams)
    .where(afterId(teams.id, after))
    .orderBy(desc(teams.id))
    .limit(limit + 1);

/** Every team, newest first (team ids sort by creation time). */
export async function listAllTeams(
  db: Database,
  limit: number,
  cursor?: string,
): Promise<{ items: AdminTeam[]; nextCursor: string | null }> {
  const after = cursor ? decodeCursor(cursor, IdCursor) : null;
  const { page, nextCursor } = keysetPage(await listAllTeamsQuery(db, limit, after), limit, (t) =>
    encodeCursor([t.id]),
  );
  return { items: page, nextCursor };
}

/** One team as the list shows it; null: no such team. */
export async function adminTeam(db: Database, teamId: string): Promise<AdminTeam | null> {
  const [team] = await db.select(adminTeamFields).from(teams).where(eq(teams.id, teamId));
  return team ?? null;
}

const memberFields = {
  userId: teamMembers.userId,
  role: teamMembers.role,
  joinedAt: teamMembers.joinedAt,
  email: userEmailSql(teamMembers.userId),
  name: userNameSql(teamMembers.userId),
};

/**
 * A team with a page of its members (most recently joined first; `membersCursor` continues) and its
 * newest pending invitations (`limit` of them, `moreInvitations` when there are others); null: no team.
 */
export async function adminTeamDetail(
  db: Database,
  teamId: string,
  limit: number,
  membersCursor?: string,
): Promise<{
  team: AdminTeam;
  members: AdminTeamMember[];
  nextMembers: string | null;
  invitations: AdminInvitation[];
  moreInvitations: boolean;
} | null> {
  const after = membersCursor ? decodeTimeIdCursor(membersCursor) : null;
  const [team, members, invitations] = await db.batch([
    db.select(adminTeamFields).from(teams).where(eq(teams.id, teamId)),
    db
      .select(memberFields)
      .from(teamMembers)
      .where(and(eq(teamMembers.teamId, teamId), afterTimeId(teamMembers.joinedAt, teamMembers.userId, after)))
      .orderBy(desc(teamMembers.joinedAt), desc(teamMembers.userId))
      .limit(limit + 1),
    db
      .select({
        id: teamInvitations.id,
        email: teamInvitations.email,
        role: teamInvitations.role,
        expiresAt: teamInvitations.expiresAt,
        createdAt: teamInvitations.createdAt,
      })
      .from(teamInvitations)
      .where(and(eq(teamInvitations.teamId, teamId), pendingInvitationSql(nowIso())))
      .orderBy(desc(teamInvitations.createdAt), desc(teamInvitations.id))
      .limit(limit + 1),
  ]);
  if (!team[0]) return null;
  const m = keysetPage(members, limit, (r) => encodeTimeIdCursor(r.joinedAt, r.userId));
  return {
    team: team[0],
    members: m.page,
    nextMembers: m.nextCursor,
    invitations: invitations.slice(0, limit),
    moreInvitations: invitations.length > limit,
  };
}

/** A user's teams for their console page: up to `limit`, oldest membership first; `more` when there are others. */
export async function teamsOfUser(
  db: Database,
  userId: string,
  limit: number,
): Promise<{ items: { id: string; name: string; role: TeamRole; joinedAt: string }[]; more: boolean }> {
  const rows = await db
    .select({ id: teams.id, name: teams.name, role: teamMembers.role, joinedAt: teamMembers.joinedAt })
    .from(teamMembers)
    .innerJoin(teams, eq(teams.id, teamMembers.teamId))
    .where(eq(teamMembers.userId, userId))
    .orderBy(asc(teamMembers.teamId))
    .limit(limit + 1);
  return { items: rows.slice(0, limit), more: rows.length > limit };
}

/**
 * Removes a member as an operator would: anyone but the owner (hand ownership over first, 409); 404
 * when there is no such team or member. The removal and its audit row are one batch. Returns the
 * after-work for `waitUntil`, the API's own follow-up: the member's live sockets on the team close.
 */
export async function adminRemoveMember(
  lifecycle: Lifecycle,
  env: Env,
  db: Database,
  teamId: string,
  userId: string,
  audit: AuditOf,
): Promise<() => Promise<void>> {
  const [member] = await db
    .select({ role: teamMembers.role })
    .from(teamMembers)
    .where(and(eq(teamMembers.teamId, teamId), eq(teamMembers.userId, userId)));
  if (!member) throw new AppError("not_found", "No such member.");
  if (member.role === "owner")
    throw new AppError("conflict", "The owner cannot be removed; hand ownership over first.");
  const [gone] = await db.batch([
    db
      .delete(teamMembers)
      .where(and(eq(teamMembers.teamId, teamId), eq(teamMembers.userId, userId), ne(teamMembers.role, "owner")))
      .returning({ role: teamMembers.role }),
    audit(WROTE),
  ]);
  if (!gone[0]) throw new AppError("conflict", "The team's roles changed meanwhile; try again.");
  return () => membershipChanged(lifecycle, env, db, teamId, [{ userId, role: null }]);
}

/** Revokes a pending invitation of the team, with its audit row in the same batch; 404 when none is pending. */
export async function adminRevokeInvitation(db: Database, teamId: string, invitationId: string, audit: AuditOf) {
  const [revoked] = await db.batch([revokePendingStatement(db, teamId, invitationId), audit(WROTE)]);
  if (!revoked[0]) throw new AppError("not_found", "No such pending invitation.");
  return revoked[0].email;
}
