/**
 * Team files: who may upload to, read, list and delete a team's files, decided inside the statement
 * that reads or writes the file (the caller's role rides along), and the files' part of team deletion.
 */
import { and, desc, eq, getTableColumns, sql } from "drizzle-orm";
import type { Database } from "../../db";
import type { TeamRole } from "../../db/schema";
import { files } from "../../db/schema";
import type { Principal } from "../../env";
import { AppError } from "../../errors";
import { afterTimeId, decodeTimeIdCursor, encodeTimeIdCursor, keysetPage, type TimeId } from "../../lib/keyset";
import type { TeamDeletionHook } from "../../lifecycle";
import { atLeast, memberRoleSql, noTeam } from "../teams";
import { type FileRow, filesDeletionPlan } from "./objects";

/** A ready file with the caller's role in its team (null: not a team file, or not a member). */
export type AccessRow = FileRow & { teamRole: TeamRole | null };

/** SQL: 1 while `userId` may upload to `teamId` (member, admin or owner), for the pending-row insert. */
export const mayUploadToTeamSql = (teamId: string, userId: string) =>
  sql`${memberRoleSql(sql`${teamId}`, userId)} IN ('member', 'admin', 'owner')`;

/** Why an upload to `teamId` was refused on membership (404 not a member, 403 a viewer), or null. */
export async function teamUploadRefusal(db: Database, teamId: string, userId: string): Promise<AppError | null> {
  const row = await db.get<{ role: TeamRole | null }>(sql`SELECT ${memberRoleSql(sql`${teamId}`, userId)} AS role`);
  if (!row?.role) return noTeam();
  if (!atLeast(row.role, "member"))
    return new AppError("forbidden", "Viewers cannot upload files to the team; this needs the member role.");
  return null;
}

/** The statement behind `getFileFor` (exported for the query-plan test). */
export const fileForQuery = (db: Database, id: string, userId: string | null) => {
  const role = userId === null ? sql<null>`NULL` : memberRoleSql(sql`${files.teamId}`, userId);
  return db
    .select({ ...getTableColumns(files), teamRole: sql<TeamRole | null>`${role}`.as("team_role") })
    .from(files)
    .where(and(eq(files.id, id), eq(files.status, "ready")));
};

/** A ready file by id with the caller's role in its team, in one statement. */
export async function getFileFor(db: Database, id: string, userId: string | null): Promise<AccessRow | null> {
  return (await fileForQuery(db, id, userId).get()) ?? null;
}

const userIdOf = (p: Principal | null) => (p?.kind === "user" ? p.userId : null);

/** The caller's user id, or null (anonymous, or the service key). */
export const callerId = userIdOf;

/**
 * Whether the caller may read the file without a signed URL: the service key; a team file's members
 * and viewers (a removed member, the uploader included, no longer); another file's owner.
 */
export function mayRead(p: Principal | null, row: AccessRow): boolean {
  if (p?.kind === "service") return true;
  if (row.teamId !== null) return atLeast(row.teamRole, "viewer");
  return userIdOf(p) === row.ownerId;
}

/** Whether the caller may delete the file: the service key; a team file's uploader (still a member) or admins. */
export function mayDelete(p: Principal | null, row: AccessRow): boolean {
  if (p?.kind === "service") return true;
  if (row.teamId !== null)
    return atLeast(row.teamRole, "admin") || (atLeast(row.teamRole, "viewer") && userIdOf(p) === row.ownerId);
  return userIdOf(p) === row.ownerId;
}

/** The statement behind `listTeamFiles` (exported for the query-plan test): one team's files, newest first. */
export const listTeamFilesQuery = (db: Database, teamId: string, userId: string, limit: number, after: TimeId | null) =>
  db
    .select({ ...getTableColumns(files), teamRole: sql<TeamRole | null>`${memberRoleSql(sql`${teamId}`, userId)}` })
    .from(files)
    .where(
      and(
        eq(files.teamId, teamId),
        sql`${files.status} = 'ready'`,
        afterTimeId(files.createdAt, files.id, after),
        sql`${memberRoleSql(sql`${teamId}`, userId)} IS NOT NULL`,
      ),
    )
    .orderBy(desc(files.createdAt), desc(files.id))
    .limit(limit + 1);

/**
 * A team's ready files for one of its members (any role), newest first, in one statement. 404 when
 * the caller is not a member (an empty page is told apart by a membership read on that path only).
 */
export async function listTeamFiles(
  db: Database,
  teamId: string,
  userId: string,
  limit: number,
  cursor: string | null,
): Promise<{ rows: FileRow[]; nextCursor: string | null }> {
  const rows = await listTeamFilesQuery(db, teamId, userId, limit, cursor ? decodeTimeIdCursor(cursor) : null).all();
  if (rows.length === 0) {
    const refusal = await teamUploadRefusal(db, teamId, userId);
    if (refusal?.code === "not_found") throw refusal;
  }
  const { page, nextCursor } = keysetPage(rows, limit, (r) => encodeTimeIdCursor(r.createdAt, r.id));
  return { rows: page.map(({ teamRole: _, ...r }) => r), nextCursor };
}

/** Team deletion: the team's file rows go in its batch (their keys into the trash), the objects after. */
export const teamFilesDeletionHook: TeamDeletionHook = ({ env, db, teamId }) =>
  filesDeletionPlan(env, db, eq(files.teamId, teamId));
