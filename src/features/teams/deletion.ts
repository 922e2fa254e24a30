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
import { teamIdsOfQuery } from "./access";
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
  // Other features' team-scoped data of the teams that will be deleted (known before the batch).
  const owned = hooks.length > 0 || lifecycle?.membershipHooks.length ? await ownedTeamsQuery(db, userId) : [];
  for (const { teamId, heir } of owned) {
    if (heir) continue;
    const plan = await teamHookPlans(hooks, env, db, teamId);
    statements.push(...plan.statements);
    after.push(...plan.after);
  }
  // The account leaves every team it is in; each heir becomes its team's owner.
  if (lifecycle?.membershipHooks.length) {
    const left = await teamIdsOfQuery(db, userId);
    after.push(() =>
      Promise.all(
        left.map(({ teamId }) => {
          const heir = owned.find((o) => o.teamId === teamId)?.heir;
          return membershipChanged(lifecycle, env, db, teamId, [
            { userId, role: null },
            ...(heir ? [{ userId: heir, role: "owner" as const }] : []),
          ]);
        }),
      ).then(() => undefined),
    );
  }
  statements.push(...teamsDeletionStatements(db, userId));
  return { statements, after: after.length > 0 ? () => runAfter(after) : undefined };
};
