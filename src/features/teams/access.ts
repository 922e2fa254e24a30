/**
 * Who may do what in a team, and the SQL the service's statements use to read and re-check a
 * caller's role inside the statement that acts on it (D1 runs one batch at a time, so a condition
 * checked inside a statement cannot be overtaken by a concurrent request).
 */
import { and, eq, type SQL, sql } from "drizzle-orm";
import type { Database } from "../../db";
import { TEAM_ROLES, type TeamRole, teamMembers } from "../../db/schema";
import { AppError } from "../../errors";

/** Ranks of the roles (viewer 0 … owner 3), for rules that name "at least" a role. */
export const RANK: Record<TeamRole, number> = { owner: 3, admin: 2, member: 1, viewer: 0 };

/** The statement reading `userId`'s role in `teamId` (no row: not a member). */
export const roleQuery = (db: Database, teamId: string, userId: string) =>
  db
    .select({ role: teamMembers.role })
    .from(teamMembers)
    .where(and(eq(teamMembers.teamId, teamId), eq(teamMembers.userId, userId)));

/** SQL: 1 while `userId` holds exactly `role` in `teamId`. */
export const holdsRoleSql = (teamId: string, userId: string, role: TeamRole) =>
  sql<number>`EXISTS (SELECT 1 FROM team_members WHERE team_id = ${teamId} AND user_id = ${userId} AND role = ${role})`;

/** Not a member: 404, whatever the team (a non-member cannot tell a team from no team). */
export const noTeam = () => new AppError("not_found", "No such team.");

/**
 * The caller's role when it is at least `min`; a non-member gets 404, a member below `min` 403.
 */
export function requireRole(role: TeamRole | undefined, min: TeamRole): TeamRole {
  if (!role) throw noTeam();
  if (RANK[role] < RANK[min]) throw new AppError("forbidden", `This needs the ${min} role in the team or higher.`);
  return role;
}

/**
 * Whether `caller` may give `target` (another member) the role `to` (not `owner`: hand-over is its own
 * path): the owner changes anyone; an admin changes members and viewers, to member or viewer only.
 */
export function maySetRole(caller: TeamRole, target: TeamRole, to: TeamRole): boolean {
  if (caller === "owner") return to !== "owner";
  if (caller === "admin") return RANK[target] < RANK.admin && RANK[to] < RANK.admin;
  return false;
}

/** Whether `caller` may remove `target` (another member): the owner anyone, an admin members and viewers. */
export function mayRemove(caller: TeamRole, target: TeamRole): boolean {
  if (caller === "owner") return true;
  return caller === "admin" && RANK[target] < RANK.admin;
}

/**
 * SQL for other features' statements: `userId`'s role in the team `teamId` names (a column or a
 * value), or NULL when not a member; one lookup of the team_members primary key.
 */
export const memberRoleSql = (teamId: SQL, userId: string) =>
  sql<TeamRole | null>`(SELECT tm.role FROM team_members AS tm
    WHERE tm.team_id = ${teamId} AND tm.user_id = ${userId})`;

/** Whether `role` is at least `min` (no role: no). */
export const atLeast = (role: TeamRole | null | undefined, min: TeamRole) => !!role && RANK[role] >= RANK[min];

/**
 * SQL for other features' statements: the teams in which `userId` holds at least rank `min`, as an
 * uncorrelated subquery (SQLite reads it once through `team_members_user_idx`), for `teamId IN (…)`.
 */
export const teamsWithRankSql = (userId: string, min: number) =>
  min <= 0
    ? sql`(SELECT team_id FROM team_members WHERE user_id = ${userId})`
    : sql`(SELECT team_id FROM team_members WHERE user_id = ${userId} AND role IN (${sql.join(
        TEAM_ROLES.filter((r) => RANK[r] >= min).map((r) => sql`${r}`),
        sql`, `,
      )}))`;

/** The ids of the teams `userId` belongs to (any role), through `team_members_user_idx`. */
export const teamIdsOfQuery = (db: Database, userId: string) =>
  db.select({ teamId: teamMembers.teamId }).from(teamMembers).where(eq(teamMembers.userId, userId));
