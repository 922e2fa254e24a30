/** Request and response schemas of `/v1/teams` (validation + OpenAPI). */
import * as v from "valibot";
import { limits } from "../../config";
import { TEAM_ROLES } from "../../db/schema";
import { cursorParam, limitParam } from "../../lib/validation";

const Id = v.pipe(v.string(), v.minLength(1), v.maxLength(64));
const TeamName = v.pipe(
  v.string(),
  v.trim(),
  v.minLength(1),
  v.maxLength(limits.nameMax),
  v.description("The team's name (trimmed, 1 to 100 characters)"),
);
const Role = v.pipe(v.picklist(TEAM_ROLES), v.description("owner > admin > member > viewer"));
/** Roles an invitation may give (a team has exactly one owner: ownership is handed over, never invited). */
const InviteRole = v.pipe(v.picklist(["admin", "member", "viewer"] as const), v.description("Default member"));
const Email = v.pipe(v.string(), v.trim(), v.toLowerCase(), v.maxLength(limits.emailMax), v.email());

export const TeamBody = v.strictObject({ name: TeamName });
export const TeamParam = v.strictObject({ id: Id });
export const MemberParam = v.strictObject({
  id: Id,
  userId: v.pipe(Id, v.description("A member's user id, or `me` for the caller")),
});
export const InvitationParam = v.strictObject({ id: Id, invitationId: Id });
export const ListQuery = v.object({ limit: limitParam(limits.listDefault, limits.listMax), cursor: cursorParam });
export const InviteBody = v.strictObject({ email: Email, role: v.optional(InviteRole, "member") });
export const JoinBody = v.strictObject({
  token: v.pipe(v.string(), v.minLength(1), v.maxLength(512), v.description("The token from the invitation mail")),
});
export const RoleBody = v.strictObject({ role: Role });

export const TeamSchema = v.object({
  id: v.string(),
  name: v.string(),
  createdAt: v.string(),
  role: v.pipe(v.picklist(TEAM_ROLES), v.description("The caller's role")),
  memberCount: v.number(),
});
export type Team = v.InferOutput<typeof TeamSchema>;
export const TeamList = v.object({ items: v.array(TeamSchema), nextCursor: v.nullable(v.string()) });

export const MemberSchema = v.object({
  userId: v.string(),
  name: v.nullable(v.string()),
  role: v.picklist(TEAM_ROLES),
  joinedAt: v.string(),
});
export type Member = v.InferOutput<typeof MemberSchema>;
export const MemberList = v.object({ items: v.array(MemberSchema), nextCursor: v.nullable(v.string()) });

export const InvitationSchema = v.object({
  id: v.string(),
  email: v.string(),
  role: v.picklist(TEAM_ROLES),
  expiresAt: v.string(),
});
export type Invitation = v.InferOutput<typeof InvitationSchema>;
export const InvitationList = v.object({ items: v.array(InvitationSchema), nextCursor: v.nullable(v.string()) });
