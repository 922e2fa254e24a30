/**
 * Teams and memberships: create, read, list, rename, delete, the member list, role changes (with
 * ownership hand-over) and removals. Every write re-checks the caller's role inside its own
 * statement, so concurrent requests cannot leave a team with no owner or two.
 */
import { and, desc, eq, sql } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import * as v from "valibot";
import { abortBatchIf, type Database, isBatchAbort, runBatch } from "../../db";
import { type TeamRole, teamInvitations, teamMembers, teams } from "../../db/schema";
import { AppError } from "../../errors";
import { decodeCursor, encodeCursor } from "../../lib/cursor";
import { newId, nowIso } from "../../lib/ids";
import { afterId, afterTimeId, decodeTimeIdCursor, encodeTimeIdCursor, keysetPage } from "../../lib/keyset";
import type { DeletionPlan, Lifecycle, TeamDeletionHook } from "../../lifecycle";
import { rowWhileUserExists, userNameSql } from "../auth";
import { holdsRoleSql, mayRemove, maySetRole, noTeam, requireRole, roleQuery } from "./access";
import type { Member, Team } from "./schemas";

type Page<T> = { items: T[]; nextCursor: string | null };

const memberCountSql = sql<number>`(SELECT count(*) FROM team_members AS mc WHERE mc.team_id = ${teams.id})`;
const teamFields = {
  id: teams.id,
  name: teams.name,
  createdAt: teams.createdAt,
  role: teamMembers.role,
  memberCount: memberCountSql,
};

/** The statement reading `teamId` as `userId` sees it (no row: not a member). */
export const teamQuery = (db: Database, teamId: string, userId: string) =>
  db
    .select(teamFields)
    .from(teamMembers)
    .innerJoin(teams, eq(teams.id, teamMembers.teamId))
    .where(and(eq(teamMembers.teamId, teamId), eq(teamMembers.userId, userId)));

/** The team as the caller sees it; 404 when the caller is not a member. */
export async function getTeam(db: Database, teamId: string, userId: string): Promise<Team> {
  const row = await teamQuery(db, teamId, userId).get();
  if (!row) throw noTeam();
  return row;
}

/** Creates a team with the caller as its owner (nothing is written if the account is gone). */
export async function createTeam(db: Database, userId: string, name: string): Promise<Team> {
  const now = nowIso();
  const id = newId();
  const [team, member] = await db.batch([
    db
      .insert(teams)
      .select(rowWhileUserExists(db, teams, userId, { id, name, createdAt: now, updatedAt: now }) as never)
      .returning(),
    db
      .insert(teamMembers)
      .select(
        rowWhileUserExists(db, teamMembers, userId, { teamId: id, userId, role: "owner", joinedAt: now }) as never,
      )
      .returning(),
  ]);
  if (!team[0] || !member[0]) throw new AppError("unauthorized", "This account no longer exists.");
  return { id, name, createdAt: now, role: "owner", memberCount: 1 };
}

/** The statement behind `listTeams` (exported for the query-plan test). */
export const listTeamsQuery = (db: Database, userId: string, limit: number, after: string | null) =>
  db
    .select(teamFields)
    .from(teamMembers)
    .innerJoin(teams, eq(teams.id, teamMembers.teamId))
    .where(and(eq(teamMembers.userId, userId), afterId(teamMembers.teamId, after)))
    .orderBy(desc(teamMembers.teamId))
    .limit(limit + 1);

const IdCursor = v.pipe(
  v.tuple([v.string()]),
  v.transform(([id]) => id),
);

/** The caller's teams, newest team first (team ids sort by creation time). */
export async function listTeams(db: Database, userId: string, limit: number, cursor?: string): Promise<Page<Team>> {
  const after = cursor ? decodeCursor(cursor, IdCursor) : null;
  const { page, nextCursor } = keysetPage(await listTeamsQuery(db, userId, limit, after), limit, (t) =>
    encodeCursor([t.id]),
  );
  return { items: page, nextCursor };
}

/** Renames the team (admin or owner). */
export async function renameTeam(db: Database, teamId: string, userId: string, name: string): Promise<Team> {
  const [role, updated, team] = await db.batch([
    roleQuery(db, teamId, userId),
    db
      .update(teams)
      .set({ name, updatedAt: nowIso() })
      .where(
        and(
          eq(teams.id, teamId),
          sql`(${holdsRoleSql(teamId, userId, "owner")} OR ${holdsRoleSql(teamId, userId, "admin")})`,
        ),
      )
      .returning({ id: teams.id }),
    teamQuery(db, teamId, userId),
  ]);
  requireRole(role[0]?.role, "admin");
  if (!updated[0] || !team[0]) throw new AppError("conflict", "Your role changed meanwhile; try again.");
  return team[0];
}

/** The team deletion hooks' part of deleting `teamId`: their statements and after-work. */
export async function teamHookPlans(
  hooks: readonly TeamDeletionHook[],
  env: Env,
  db: Database,
  teamId: string,
): Promise<{ statements: BatchItem<"sqlite">[]; after: DeletionPlan["after"][] }> {
  const plans: DeletionPlan[] = [];
  for (const hook of hooks) plans.push(await hook({ env, db, teamId }));
  return {
    statements: plans.flatMap((p) => p.statements ?? []),
    after: plans.map((p) => p.after).filter((f) => f !== undefined),
  };
}

/**
 * The statements that delete a team with everything in it: the other features' team deletion
 * hooks first (while the team row still exists), then invitations, memberships and the team.
 */
async function teamDeletionPlan(
  hooks: readonly TeamDeletionHook[],
  env: Env,
  db: Database,
  teamId: string,
): Promise<{ statements: BatchItem<"sqlite">[]; after: DeletionPlan["after"][] }> {
  const { statements, after } = await teamHookPlans(hooks, env, db, teamId);
  return {
    statements: [
      ...statements,
      db.delete(teamInvitations).where(eq(teamInvitations.teamId, teamId)),
      db.delete(teamMembers).where(eq(teamMembers.teamId, teamId)),
      db.delete(teams).where(eq(teams.id, teamId)),
    ],
    after,
  };
}

/** Runs the after-work of deleted teams (R2 objects, Durable Objects); never throws. */
export async function runAfter(after: DeletionPlan["after"][]): Promise<void> {
  await Promise.all(
    after.map((f) => f?.().catch((e: unknown) => console.error("team deletion cleanup failed:", (e as Error).message))),
  );
}

/**
 * Tells the features that follow memberships (live subscriptions of team-scoped data) what changed,
 * after the commit (for `waitUntil`); never throws.
 */
export async function membershipChanged(
  lifecycle: Lifecycle,
  env: Env,
  db: Database,
  teamId: string,
  changes: { userId: string | null; role: TeamRole | null }[],
): Promise<void> {
  const runs = lifecycle.membershipHooks.flatMap((hook) => changes.map((ch) => hook({ env, db, teamId, ...ch })));
  for (const r of await Promise.allSettled(runs))
    if (r.status === "rejected") console.error("membership change follow-up failed:", (r.reason as Error)?.message);
}

/** Deletes the team (owner only) in one batch; returns its after-work for `waitUntil`. */
export async function deleteTeam(
  lifecycle: Lifecycle,
  env: Env,
  db: Database,
  teamId: string,
  userId: string,
): Promise<() => Promise<void>> {
  requireRole((await roleQuery(db, teamId, userId).get())?.role, "owner");
  const plan = await teamDeletionPlan(lifecycle.teamDeletionHooks, env, db, teamId);
  // The batch's first statement re-checks the caller is still the owner (a hand-over may have
  // committed since the read above): otherwise it inserts NULL into batch_guards' NOT NULL column,
  // which aborts the whole batch (one transaction), so nothing is deleted.
  const stillOwner = abortBatchIf(db, sql`NOT ${holdsRoleSql(teamId, userId, "owner")}`);
  try {
    await runBatch(db, [stillOwner, ...plan.statements]);
  } catch (e) {
    if (isBatchAbort(e)) throw new AppError("conflict", "The team's ownership changed meanwhile; nothing was deleted.");
    throw e;
  }
  return () => runAfter(plan.after);
}

// --- members ------------------------------------------------------------------------------------

const memberFields = {
  userId: teamMembers.userId,
  // Qualified by hand: drizzle leaves a single table's columns unqualified, and this is a subquery.
  name: userNameSql(sql`team_members.user_id`),
  role: teamMembers.role,
  joinedAt: teamMembers.joinedAt,
};

/** The statement behind `listMembers` (exported for the query-plan test). */
export const listMembersQuery = (
  db: Database,
  teamId: string,
  limit: number,
  after: { at: string; id: string } | null,
) =>
  db
    .select(memberFields)
    .from(teamMembers)
    .where(and(eq(teamMembers.teamId, teamId), afterTimeId(teamMembers.joinedAt, teamMembers.userId, after)))
    .orderBy(desc(teamMembers.joinedAt), desc(teamMembers.userId))
    .limit(limit + 1);

/** The team's members, most recently joined first (members only). */
export async function listMembers(
  db: Database,
  teamId: string,
  userId: string,
  limit: number,
  cursor?: string,
): Promise<Page<Member>> {
  const after = cursor ? decodeTimeIdCursor(cursor) : null;
  const [role, rows] = await db.batch([roleQuery(db, teamId, userId), listMembersQuery(db, teamId, limit, after)]);
  requireRole(role[0]?.role, "viewer");
  const { page, nextCursor } = keysetPage(rows, limit, (m) => encodeTimeIdCursor(m.joinedAt, m.userId));
  return { items: page, nextCursor };
}

const memberQuery = (db: Database, teamId: string, userId: string) =>
  db
    .select(memberFields)
    .from(teamMembers)
    .where(and(eq(teamMembers.teamId, teamId), eq(teamMembers.userId, userId)));

/** Both roles in one read: the caller's (404 when not a member) and the target's (404 when not a member). */
async function rolesOf(
  db: Database,
  teamId: string,
  callerId: string,
  targetId: string,
): Promise<{ caller: TeamRole; target: TeamRole }> {
  const [caller, target] = await db.batch([roleQuery(db, teamId, callerId), roleQuery(db, teamId, targetId)]);
  const c = requireRole(caller[0]?.role, "viewer");
  if (!target[0]) throw new AppError("not_found", "No such member.");
  return { caller: c, target: target[0].role };
}

const changedMeanwhile = () => new AppError("conflict", "The team's roles changed meanwhile; try again.");

/**
 * Sets `targetId`'s role. `owner` hands ownership over (the caller must be the owner; they become an
 * admin): one batch whose statements each check the caller is still the owner, so of two concurrent
 * hand-overs the second changes nothing and the team keeps exactly one owner.
 */
export async function setRole(
  db: Database,
  teamId: string,
  callerId: string,
  targetId: string,
  to: TeamRole,
): Promise<Member> {
  const { caller, target } = await rolesOf(db, teamId, callerId, targetId);
  if (targetId === callerId) {
    if (to === caller) return (await memberQuery(db, teamId, targetId).get()) as Member;
    if (caller === "owner") throw new AppError("conflict", "Hand ownership over to another member first.");
    throw new AppError("forbidden", "You cannot change your own role.");
  }
  if (to === "owner") {
    if (caller !== "owner") throw new AppError("forbidden", "Only the owner hands ownership over.");
    const [promoted] = await db.batch([
      db
        .update(teamMembers)
        .set({ role: "owner" })
        .where(
          and(
            eq(teamMembers.teamId, teamId),
            eq(teamMembers.userId, targetId),
            holdsRoleSql(teamId, callerId, "owner"),
          ),
        )
        .returning({ userId: teamMembers.userId }),
      db
        .update(teamMembers)
        .set({ role: "admin" })
        .where(
          and(
            eq(teamMembers.teamId, teamId),
            eq(teamMembers.userId, callerId),
            eq(teamMembers.role, "owner"),
            holdsRoleSql(teamId, targetId, "owner"),
          ),
        ),
    ]);
    if (!promoted[0]) throw changedMeanwhile();
  } else {
    if (!maySetRole(caller, target, to)) {
      throw new AppError(
        "forbidden",
        caller === "admin" ? "Admins change members and viewers only." : "You cannot change roles in this team.",
      );
    }
    const updated = await db
      .update(teamMembers)
      .set({ role: to })
      .where(unchangedSince(teamId, callerId, caller, targetId, target))
      .returning({ userId: teamMembers.userId });
    if (!updated[0]) throw changedMeanwhile();
  }
  return (await memberQuery(db, teamId, targetId).get()) as Member;
}

/**
 * The target's membership row, only while both roles are still the ones the decision read: a
 * write racing another change of either role then matches nothing (409).
 */
function unchangedSince(teamId: string, callerId: string, caller: TeamRole, targetId: string, target: TeamRole) {
  return and(
    eq(teamMembers.teamId, teamId),
    eq(teamMembers.userId, targetId),
    eq(teamMembers.role, target),
    holdsRoleSql(teamId, callerId, caller),
  );
}

/** Removes `targetId` from the team, or the caller leaves (`targetId === callerId`). */
export async function removeMember(db: Database, teamId: string, callerId: string, targetId: string): Promise<void> {
  const { caller, target } = await rolesOf(db, teamId, callerId, targetId);
  if (targetId === callerId) {
    if (caller === "owner") throw new AppError("conflict", "The owner cannot leave; hand ownership over first.");
  } else if (!mayRemove(caller, target)) {
    throw new AppError("forbidden", "Admins remove members and viewers only; the owner removes anyone.");
  }
  const gone = await db
    .delete(teamMembers)
    .where(unchangedSince(teamId, callerId, caller, targetId, target))
    .returning({ userId: teamMembers.userId });
  if (!gone[0]) throw changedMeanwhile();
}

// --- account deletion ---------------------------------------------------------------------------

/**
 * Every team `userId` is in, with their role and, for the teams they own, the longest-standing other
 * admin (the heir; null: none, or not the owner).
 */
export const ownedTeamsQuery = (db: Database, userId: string) =>
  db
    .select({
      teamId: teamMembers.teamId,
      role: teamMembers.role,
      heir: sql<string | null>`CASE WHEN ${teamMembers.role} = 'owner' THEN (SELECT h.user_id FROM team_members AS h
        WHERE h.team_id = team_members.team_id AND h.role = 'admin' AND h.user_id <> ${userId}
        ORDER BY h.joined_at, h.user_id LIMIT 1) END`,
    })
    .from(teamMembers)
    .where(eq(teamMembers.userId, userId));
