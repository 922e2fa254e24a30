/** Teams: `/v1/teams` (teams, members, roles, invitations), and its part of account deletion. */
import type { FeatureParts } from "../../lifecycle";
import { teamsDeletionHook } from "./deletion";

export { atLeast, memberRoleSql, noTeam, RANK, roleQuery, teamIdsOfQuery, teamsWithRankSql } from "./access";
export { teamRoutes } from "./routes";

export const teamsParts: FeatureParts = { deletionHooks: [teamsDeletionHook] };
export * from "./for-admin";
