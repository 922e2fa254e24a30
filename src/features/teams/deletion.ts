/**
 * What account deletion does to teams: the account's memberships go; each team it owned passes to
 * its longest-standing admin, or, with no admin, is deleted with its memberships, invitations and
 * everything the team deletion hooks clean up. All in the account's batch.
 */
import { and, eq } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import { teamMembers } from "../../db/schema";
import type { DeletionHook, DeletionPlan } from "../../lifecycle";
import { holdsRoleSql } from "./access";
import { ownedTeamsQuery, runAfter, teamDeletionPlan } from "./service";

export const teamsDeletionHook: DeletionHook = async ({ env, db, userId, lifecycle }) => {
  const owned = await ownedTeamsQuery(db, userId);
  const statements: BatchItem<"sqlite">[] = [];
  const after: DeletionPlan["after"][] = [];
  for (const { teamId, heir } of owned) {
    if (heir) {
      // Still conditional at batch time: the heir is still an admin and the account still the owner.
      statements.push(
        db
          .update(teamMembers)
          .set({ role: "owner" })
          .where(
            and(
              eq(teamMembers.teamId, teamId),
              eq(teamMembers.userId, heir),
              eq(teamMembers.role, "admin"),
              holdsRoleSql(teamId, userId, "owner"),
            ),
          ),
      );
    } else {
      const plan = await teamDeletionPlan(lifecycle?.teamDeletionHooks ?? [], env, db, teamId);
      statements.push(...plan.statements);
      after.push(...plan.after);
    }
  }
  statements.push(db.delete(teamMembers).where(eq(teamMembers.userId, userId)));
  return { statements, after: after.length > 0 ? () => runAfter(after) : undefined };
};
