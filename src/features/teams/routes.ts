/**
 * `/v1/teams`: teams, members, roles and invitations. Only signed-in users: the service key is
 * refused (403), as on the other routes that act as the caller. A non-member gets 404 on every
 * team route, never 403, so a team's existence does not leak.
 */
import { Hono } from "hono";
import { createFactory } from "hono/factory";
import type { GenericSchema } from "valibot";
import type { Database } from "../../db";
import type { AppEnv } from "../../env";
import { describe, validate } from "../../lib/validation";
import { idempotency } from "../../middleware/idempotency";
import { checkRate } from "../../middleware/rate-limit";
import { localeOfEmail, requireUser, userOf } from "../auth";
import { createMailer, mailLinkBase, teamInvitationMail } from "../mail";
import { createInvitation, invitingRole, joinTeam, listInvitations, revokeInvitation } from "./invitations";
import * as s from "./schemas";
import {
  createTeam,
  deleteTeam,
  getTeam,
  listMembers,
  listTeams,
  membershipChanged,
  removeMember,
  renameTeam,
  setRole,
} from "./service";

const TAG = "Teams";
const NOT_MEMBER = { description: "Not a member of this team, or no such team" };
const ROLE_TOO_LOW = { description: "A member whose role does not allow this, or the service key" };

const handlers = createFactory<AppEnv>();

/** One team's list, a page at a time: the role check rides in the list's own batch. */
function teamPage<T>(
  summary: string,
  what: string,
  schema: GenericSchema,
  list: (db: Database, teamId: string, userId: string, limit: number, cursor?: string) => Promise<T>,
) {
  return handlers.createHandlers(
    describe({
      tag: TAG,
      summary,
      responses: { 200: { description: `A page of ${what}`, schema }, 403: ROLE_TOO_LOW, 404: NOT_MEMBER },
    }),
    requireUser,
    validate("param", s.TeamParam),
    validate("query", s.ListQuery),
    async (c) => {
      const q = c.req.valid("query");
      return c.json(await list(c.get("db"), c.req.valid("param").id, userOf(c).userId, q.limit, q.cursor));
    },
  );
}

/** `me` in a member path is the caller. */
const memberId = (userId: string, callerId: string) => (userId === "me" ? callerId : userId);

export const teamRoutes = new Hono<AppEnv>()
  .post(
    "/",
    describe({
      tag: TAG,
      summary: "Create a team (the caller is its owner)",
      responses: { 201: { description: "Created", schema: s.TeamSchema }, 403: ROLE_TOO_LOW },
    }),
    requireUser,
    idempotency,
    validate("json", s.TeamBody),
    async (c) => c.json(await createTeam(c.get("db"), userOf(c).userId, c.req.valid("json").name), 201),
  )
  .get(
    "/",
    describe({
      tag: TAG,
      summary: "The caller's teams, newest first",
      responses: { 200: { description: "A page of teams", schema: s.TeamList }, 403: ROLE_TOO_LOW },
    }),
    requireUser,
    validate("query", s.ListQuery),
    async (c) => {
      const q = c.req.valid("query");
      return c.json(await listTeams(c.get("db"), userOf(c).userId, q.limit, q.cursor));
    },
  )
  .post(
    "/join",
    describe({
      tag: TAG,
      summary: "Join a team with an invitation's token",
      description:
        "The caller's email must be verified and be the invitation's address (else 403). A used, revoked or " +
        "expired token is a 400. A caller who is already a member keeps their role.",
      responses: {
        200: { description: "The team joined", schema: s.TeamSchema },
        400: { description: "Invalid body, or a used, revoked or expired token" },
        403: { description: "Email not verified, or not the invitation's address; or the service key" },
      },
    }),
    requireUser,
    idempotency,
    validate("json", s.JoinBody),
    async (c) => {
      const userId = userOf(c).userId;
      const team = await joinTeam(c.get("db"), userId, c.req.valid("json").token);
      c.executionCtx.waitUntil(
        membershipChanged(c.get("lifecycle"), c.env, c.get("db"), team.id, [{ userId, role: team.role }]),
      );
      return c.json(team);
    },
  )
  .get(
    "/:id",
    describe({
      tag: TAG,
      summary: "A team, with the caller's role",
      responses: { 200: { description: "The team", schema: s.TeamSchema }, 403: ROLE_TOO_LOW, 404: NOT_MEMBER },
    }),
    requireUser,
    validate("param", s.TeamParam),
    async (c) => c.json(await getTeam(c.get("db"), c.req.valid("param").id, userOf(c).userId)),
  )
  .patch(
    "/:id",
    describe({
      tag: TAG,
      summary: "Rename a team (admin or owner)",
      responses: { 200: { description: "Renamed", schema: s.TeamSchema }, 403: ROLE_TOO_LOW, 404: NOT_MEMBER },
    }),
    requireUser,
    validate("param", s.TeamParam),
    validate("json", s.TeamBody),
    async (c) =>
      c.json(await renameTeam(c.get("db"), c.req.valid("param").id, userOf(c).userId, c.req.valid("json").name)),
  )
  .delete(
    "/:id",
    describe({
      tag: TAG,
      summary: "Delete a team (owner), with its memberships, invitations and team-scoped data",
      responses: { 204: { description: "Deleted" }, 403: ROLE_TOO_LOW, 404: NOT_MEMBER },
    }),
    requireUser,
    validate("param", s.TeamParam),
    async (c) => {
      const after = await deleteTeam(c.get("lifecycle"), c.env, c.get("db"), c.req.valid("param").id, userOf(c).userId);
      c.executionCtx.waitUntil(after());
      return c.body(null, 204);
    },
  )
  .get(
    "/:id/members",
    ...teamPage("A team's members, most recently joined first (members only)", "members", s.MemberList, listMembers),
  )
  .patch(
    "/:id/members/:userId",
    describe({
      tag: TAG,
      summary: "Change a member's role; `owner` hands ownership over",
      description:
        "Admins change members and viewers (to member or viewer); only the owner makes or unmakes admins. " +
        '`role: "owner"` (owner only) hands ownership over and makes the old owner an admin. The owner ' +
        "cannot change their own role otherwise (409).",
      responses: {
        200: { description: "The member", schema: s.MemberSchema },
        403: ROLE_TOO_LOW,
        404: { description: "Not a member of this team, or the user is not a member" },
        409: { description: "The owner's own role, or roles changed meanwhile" },
      },
    }),
    requireUser,
    validate("param", s.MemberParam),
    validate("json", s.RoleBody),
    async (c) => {
      const { id, userId } = c.req.valid("param");
      const caller = userOf(c).userId;
      const role = c.req.valid("json").role;
      const member = await setRole(c.get("db"), id, caller, memberId(userId, caller), role);
      // A hand-over also made the old owner an admin.
      const changed = [member, ...(role === "owner" ? [{ userId: caller, role: "admin" as const }] : [])];
      c.executionCtx.waitUntil(membershipChanged(c.get("lifecycle"), c.env, c.get("db"), id, changed));
      return c.json(member);
    },
  )
  .delete(
    "/:id/members/:userId",
    describe({
      tag: TAG,
      summary: "Remove a member, or leave (`me`)",
      description:
        "Admins remove members and viewers; the owner removes anyone. The owner cannot leave without handing " +
        "ownership over first (409).",
      responses: {
        204: { description: "Removed" },
        403: ROLE_TOO_LOW,
        404: { description: "Not a member of this team, or the user is not a member" },
        409: { description: "The owner leaving, or roles changed meanwhile" },
      },
    }),
    requireUser,
    validate("param", s.MemberParam),
    async (c) => {
      const { id, userId } = c.req.valid("param");
      const caller = userOf(c).userId;
      const target = memberId(userId, caller);
      await removeMember(c.get("db"), id, caller, target);
      c.executionCtx.waitUntil(
        membershipChanged(c.get("lifecycle"), c.env, c.get("db"), id, [{ userId: target, role: null }]),
      );
      return c.body(null, 204);
    },
  )
  .post(
    "/:id/invitations",
    describe({
      tag: TAG,
      summary: "Invite someone by email (admin or owner; only the owner invites admins)",
      description: "Mails the address a single-use token, valid 7 days, and a link. Rate limited per team (429).",
      rateLimited: true,
      responses: {
        201: { description: "Invited", schema: s.InvitationSchema },
        403: ROLE_TOO_LOW,
        404: NOT_MEMBER,
      },
    }),
    requireUser,
    idempotency,
    validate("param", s.TeamParam),
    validate("json", s.InviteBody),
    async (c) => {
      const db = c.get("db");
      const config = c.get("config");
      const teamId = c.req.valid("param").id;
      const { email, role } = c.req.valid("json");
      const caller = userOf(c).userId;
      const base = mailLinkBase(config, c.env, c.req.url); // before any write: a misconfigured server writes nothing
      const callerRole = await invitingRole(db, teamId, caller);
      await checkRate(c.env, "ROOMS_LIMITER", `team-invite:${teamId}`);
      const { invitation, token } = await createInvitation(db, teamId, caller, callerRole, email, role);
      const team = await getTeam(db, teamId, caller);
      const locale = await localeOfEmail(db, email);
      await createMailer(config, db).send(teamInvitationMail(config, email, team.name, token, base, locale));
      return c.json(invitation, 201);
    },
  )
  .get(
    "/:id/invitations",
    ...teamPage(
      "A team's pending invitations, newest first (admin or owner)",
      "invitations",
      s.InvitationList,
      listInvitations,
    ),
  )
  .delete(
    "/:id/invitations/:invitationId",
    describe({
      tag: TAG,
      summary: "Revoke a pending invitation (admin or owner)",
      responses: {
        204: { description: "Revoked" },
        403: ROLE_TOO_LOW,
        404: { description: "Not a member of this team, or no such pending invitation" },
      },
    }),
    requireUser,
    validate("param", s.InvitationParam),
    async (c) => {
      const { id, invitationId } = c.req.valid("param");
      await revokeInvitation(c.get("db"), id, userOf(c).userId, invitationId);
      return c.body(null, 204);
    },
  );
