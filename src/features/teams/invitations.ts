/**
 * Team invitations: mailed to an address with a single-use token (only its SHA-256 is stored),
 * valid 7 days, accepted by a signed-in user whose verified email is that address; revocable.
 */
import { and, desc, eq, getTableColumns, gt, isNull, sql } from "drizzle-orm";
import { limits } from "../../config";
import type { Database } from "../../db";
import { type TeamRole, teamInvitations, teamMembers } from "../../db/schema";
import { AppError } from "../../errors";
import { hashToken, randomToken } from "../../lib/crypto";
import { newId, nowIso } from "../../lib/ids";
import { afterTimeId, decodeTimeIdCursor, encodeTimeIdCursor, keysetPage } from "../../lib/keyset";
import { getUser } from "../auth";
import { requireRole, roleQuery } from "./access";
import type { Invitation, Team } from "./schemas";
import { teamQuery } from "./service";

const toInvitation = (r: typeof teamInvitations.$inferSelect): Invitation => ({
  id: r.id,
  email: r.email,
  role: r.role,
  expiresAt: r.expiresAt,
});

/** The caller's role, when it may manage invitations (admin or owner; a non-member gets 404). */
export async function invitingRole(db: Database, teamId: string, userId: string): Promise<TeamRole> {
  return requireRole((await roleQuery(db, teamId, userId).get())?.role, "admin");
}

/**
 * Stores an invitation of `email` as `role` and returns it with its token (for the mail only). Only
 * the owner invites admins. The insert re-checks the caller's role inside the statement.
 */
export async function createInvitation(
  db: Database,
  teamId: string,
  callerId: string,
  callerRole: TeamRole,
  email: string,
  role: TeamRole,
): Promise<{ invitation: Invitation; token: string }> {
  if (role === "admin" && callerRole !== "owner") throw new AppError("forbidden", "Only the owner invites admins.");
  const token = randomToken();
  const now = Date.now();
  const row = {
    id: newId(now),
    teamId,
    email,
    role,
    tokenHash: await hashToken(token),
    expiresAt: nowIso(now + limits.teamInvitationTtlSec * 1000),
    invitedBy: callerId,
    createdAt: nowIso(now),
    usedAt: null,
    usedBy: null,
    revokedAt: null,
  };
  const inserted = await db
    .insert(teamInvitations)
    .select(
      db
        .select(
          Object.fromEntries(
            Object.entries(getTableColumns(teamInvitations)).map(([k, col]) => [
              k,
              sql`${sql.param(row[k as keyof typeof row], col)}`.as(col.name),
            ]),
          ),
        )
        .from(teamMembers)
        .where(
          and(eq(teamMembers.teamId, teamId), eq(teamMembers.userId, callerId), eq(teamMembers.role, callerRole)),
        ) as never,
    )
    .returning();
  if (!inserted[0]) throw new AppError("conflict", "Your role changed meanwhile; try again.");
  return { invitation: toInvitation(inserted[0]), token };
}

/** An invitation still waiting: not used, not revoked, not expired at `now`. */
export const pendingInvitationSql = (now: string) =>
  and(isNull(teamInvitations.usedAt), isNull(teamInvitations.revokedAt), gt(teamInvitations.expiresAt, now));

/** The statement behind `listInvitations` (exported for the query-plan test). */
export const listInvitationsQuery = (
  db: Database,
  teamId: string,
  limit: number,
  after: { at: string; id: string } | null,
  now = nowIso(),
) =>
  db
    .select()
    .from(teamInvitations)
    .where(
      and(
        eq(teamInvitations.teamId, teamId),
        pendingInvitationSql(now),
        afterTimeId(teamInvitations.createdAt, teamInvitations.id, after),
      ),
    )
    .orderBy(desc(teamInvitations.createdAt), desc(teamInvitations.id))
    .limit(limit + 1);

/** The team's pending invitations, newest first (admin or owner). */
export async function listInvitations(
  db: Database,
  teamId: string,
  userId: string,
  limit: number,
  cursor?: string,
): Promise<{ items: Invitation[]; nextCursor: string | null }> {
  const after = cursor ? decodeTimeIdCursor(cursor) : null;
  const [role, rows] = await db.batch([roleQuery(db, teamId, userId), listInvitationsQuery(db, teamId, limit, after)]);
  requireRole(role[0]?.role, "admin");
  const { page, nextCursor } = keysetPage(rows, limit, (r) => encodeTimeIdCursor(r.createdAt, r.id));
  return { items: page.map(toInvitation), nextCursor };
}

/** The statement that revokes one pending invitation of the team; it returns what it revoked. */
export function revokePendingStatement(db: Database, teamId: string, invitationId: string) {
  return db
    .update(teamInvitations)
    .set({ revokedAt: nowIso() })
    .where(
      and(
        eq(teamInvitations.id, invitationId),
        eq(teamInvitations.teamId, teamId),
        isNull(teamInvitations.usedAt),
        isNull(teamInvitations.revokedAt),
      ),
    )
    .returning({ id: teamInvitations.id, email: teamInvitations.email });
}

/** Revokes a pending invitation (admin or owner); 404 when there is no such pending invitation. */
export async function revokeInvitation(db: Database, teamId: string, userId: string, invitationId: string) {
  await invitingRole(db, teamId, userId);
  const revoked = await revokePendingStatement(db, teamId, invitationId);
  if (!revoked[0]) throw new AppError("not_found", "No such pending invitation.");
}

const badToken = () =>
  new AppError("validation_failed", "This invitation is not valid: it was used, revoked or has expired.", {
    errors: [{ path: "token", message: "not a valid invitation" }],
  });

/**
 * Joins the team of the invitation `token` with its role. The caller's email must be verified and be
 * the invitation's (else 403). Marking the invitation used and adding the membership are one
 * batch, the membership conditional on this caller's use, so a token is used once. A caller who
 * is already a member keeps their role.
 */
export async function joinTeam(db: Database, userId: string, token: string): Promise<Team> {
  const tokenHash = await hashToken(token);
  const invitation = await db.select().from(teamInvitations).where(eq(teamInvitations.tokenHash, tokenHash)).get();
  const now = nowIso();
  if (!invitation || invitation.usedAt || invitation.revokedAt || invitation.expiresAt <= now) throw badToken();
  const user = await getUser(db, userId);
  if (!user) throw new AppError("unauthorized", "This account no longer exists.");
  if (!user.emailVerified || user.email?.toLowerCase() !== invitation.email) {
    throw new AppError("forbidden", "This invitation is for another email address, or yours is not verified yet.");
  }
  const [used, , team] = await db.batch([
    db
      .update(teamInvitations)
      .set({ usedAt: now, usedBy: userId })
      .where(and(eq(teamInvitations.id, invitation.id), pendingInvitationSql(now)))
      .returning({ id: teamInvitations.id }),
    db
      .insert(teamMembers)
      .select(
        db
          .select({
            teamId: teamInvitations.teamId,
            userId: sql`${userId}`.as("user_id"),
            role: teamInvitations.role,
            joinedAt: sql`${now}`.as("joined_at"),
          })
          .from(teamInvitations)
          .where(
            and(
              eq(teamInvitations.id, invitation.id),
              eq(teamInvitations.usedBy, userId),
              eq(teamInvitations.usedAt, now),
            ),
          ) as never,
      )
      .onConflictDoNothing(),
    teamQuery(db, invitation.teamId, userId),
  ]);
  if (!used[0] || !team[0]) throw badToken();
  return team[0];
}
