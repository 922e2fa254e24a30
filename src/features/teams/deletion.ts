/**
 * What account deletion does to teams: the account's memberships go; each team it owned passes to
 * its longest-standing admin (the admin who joined first), or, with no admin, is deleted with its
 * memberships, invitations and everything the team deletion hooks clean up. All in the account's
 * batch, decided inside the statements themselves (so the batch acts on the roles as they are when
 * it runs), and without a read of its own unless team deletion hooks are registered.
 */
import { and, eq, ne, type SQL, sql } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import type { Database } from "../../db";
import { teamInvitations, teamMembers, teams } from "../../db/schema";
import type { DeletionHook, DeletionPlan } from "../../lifecycle";
import { membershipChanged, ownedTeamsQuery, runAfter, teamHookPlans } from "./service";

/** SQL: the teams `userId` owns with no other owner (after the hand-overs: the teams with no heir). */
const soleOwnedSql = (userId: string) =>
  sql`(SELECT m.team_id FROM team_members AS m WHERE m.user_id = ${userId} AND m.role = 'owner'
    AND NOT EXISTS (SELECT 1 FROM team_members AS x
      WHERE x.team_id = m.team_id AND x.role = 'owner' AND x.user_id <> ${userId}))`;

/** The batch statements for `userId`'s teams, in order (exported for the query-plan test). */
export function teamsDeletionStatements(db: Database, userId: string): [BatchItem<"sqlite">, ...BatchItem<"sqlite">[]] {
  const doomed = (column: SQL | typeof teamMembers.teamId) => sql`${column} IN ${soleOwnedSql(userId)}`;
  return [
    // Each team the account owns: its longest-standing other admin becomes the owner.
    db
      .update(teamMembers)
      .set({ role: "owner" })
      .where(
        and(
          eq(teamMembers.role, "admin"),
          sql`team_members.team_id IN (SELECT o.team_id FROM team_members AS o
            WHERE o.user_id = ${userId} AND o.role = 'owner')`,
          sql`team_members.user_id = (SELECT h.user_id FROM team_members AS h
            WHERE h.team_id = team_members.team_id AND h.role = 'admin' AND h.user_id <> ${userId}
            ORDER BY h.joined_at, h.user_id LIMIT 1)`,
        ),
      ),
    // The teams still owned by the account alone had no admin: they go, their rows first.
    db.delete(teamInvitations).where(doomed(sql`team_invitations.team_id`)),
    db.delete(teamMembers).where(and(ne(teamMembers.userId, userId), doomed(sql`team_members.team_id`))),
    db.delete(teams).where(doomed(sql`teams.id`)),
    db.delete(teamMembers).where(eq(teamMembers.userId, userId)),
  ];
}

export const teamsDeletionHook: DeletionHook = async ({ env, db, userId, lifecycle }) => {
  const hooks = lifecycle?.teamDeletionHooks ?? [];
  const statements: BatchItem<"sqlite">[] = [];
  const after: DeletionPlan["after"][] = [];
  // The account's teams (known before the batch): other features' data of the ones that will be
  // deleted joins the batch; the others are left, each heir becoming its team's owner.
  const teamsOf = hooks.length > 0 || lifecycle?.membershipHooks.length ? await ownedTeamsQuery(db, userId) : [];
  const deleted = teamsOf.filter((t) => t.role === "owner" && !t.heir);
  for (const { teamId } of deleted) {
    const plan = await teamHookPlans(hooks, env, db, teamId);
    statements.push(...plan.statements);
    after.push(...plan.after);
  }
  if (lifecycle?.membershipHooks.length) {
    const left = teamsOf.filter((t) => !deleted.includes(t));
    after.push(async () => {
      await Promise.all(
        left.map(({ teamId, heir }) =>
          membershipChanged(lifecycle, env, db, teamId, [
            { userId, role: null },
            ...(heir ? [{ userId: heir, role: "owner" as const }] : []),
          ]),
        ),
      );
    });
  }
  statements.push(...teamsDeletionStatements(db, userId));
  return { statements, after: after.length > 0 ? () => runAfter(after) : undefined };
};
