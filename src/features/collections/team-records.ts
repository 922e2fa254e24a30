/**
 * Team-scoped collections' part of a team's life: a deleted team's records and change log go in
 * its batch, and the live-data hubs follow memberships (a member who leaves is cut off at once).
 */
import { and, eq, sql } from "drizzle-orm";
import type { TeamRole } from "../../db/schema";
import { recordChanges } from "../../db/schema/collections";
import { nowIso } from "../../lib/ids";
import type { MembershipHook, TeamDeletionHook } from "../../lifecycle";
import { sendDrain } from "../logic";
import { teamColumn } from "./access";
import { type HubKey, hubStub, liveScope, settleHubCalls } from "./live";
import { onDeletePlan } from "./references";
import { collections } from "./registry";
import { logChange } from "./writes";

const teamCollections = () => collections.filter((c) => c.scope === "team");

/**
 * Tells the team's hub of each team-scoped collection that `userId`'s role changed (null: left or
 * removed, 4403 for their sockets there; `userId` null: the team is gone, 4403 for every socket), and
 * the member's own hub that their teams changed (it registers with a team just joined).
 */
async function teamHubsChanged(env: Env, teamId: string, userId: string | null, role: TeamRole | null) {
  const calls = collections
    .filter((c) => liveScope(c) === "team")
    .flatMap((c) => {
      const team: HubKey = { collection: c.name, team: teamId };
      const member: HubKey | null = userId === null ? null : { collection: c.name, member: userId };
      return [
        hubStub(env, team).memberChanged(team, userId, role),
        ...(member && role !== null ? [hubStub(env, member).teamsChanged(member)] : []),
      ];
    });
  await settleHubCalls(
    "live-data hubs following a membership change",
    calls,
    "each hub re-checks membership on its reads",
  );
}

export const liveMembershipChanged: MembershipHook = ({ env, teamId, userId, role }) =>
  teamHubsChanged(env, teamId, userId, role);

/**
 * A deleted team's records and their change-log rows, in the team's batch: nobody can read them any
 * more (memberships go in the same batch), so no tombstone is left; the team's sockets close (4403).
 * After hooks and webhooks still hear of each deleted record (`<collection>.delete`).
 */
export const deleteTeamRecords: TeamDeletionHook = async ({ env, db, teamId }) => {
  const cols = teamCollections();
  if (cols.length === 0) return {};
  const rc = recordChanges;
  return {
    statements: cols.flatMap((col) => {
      const ofTeam = eq(teamColumn(col)!, teamId);
      const t = col.table;
      // Records elsewhere that reference the team's: their onDelete (`restrict` as a cascade).
      const refs = onDeletePlan(db, col.name, sql`(SELECT ${t.id} FROM ${t} WHERE ${ofTeam})`, nowIso(), logChange, {
        force: true,
      });
      return [
        ...refs.statements,
        db.delete(rc).where(and(eq(rc.collection, col.name), eq(rc.teamId, teamId))),
        db.delete(t).where(ofTeam),
      ];
    }),
    // The team's records raised delete events (triggers) if anyone listens: drain them now, not at the cron.
    after: () => Promise.all([teamHubsChanged(env, teamId, null, null), sendDrain(env)]).then(() => undefined),
  };
};
