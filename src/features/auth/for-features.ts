/**
 * What other features may ask of the users and sessions tables. Only this feature reads or writes
 * them; where another feature's single statement must consult the account (to keep a route at one
 * D1 round trip), it embeds a fragment built here, so the SQL about these tables stays in one place.
 */
import { type AnyColumn, and, eq, getTableColumns, gt, inArray, is, SQL, sql, type Table } from "drizzle-orm";
import type { Database } from "../../db";
import { sessions, users } from "../../db/schema";
import { nowIso } from "../../lib/ids";
import { toUser } from "./users";

/**
 * The source of an INSERT ... SELECT that writes one row of `table` only while `userId`'s account
 * exists and `when` holds, both checked inside the statement (D1 runs one write at a time, so no
 * writer slips between a check and the insert). Access tokens outlive a deleted account by
 * minutes; such a late insert would escape the deletion that already ran. Values may be SQL.
 */
export function rowWhileUserExists<T extends Table>(
  db: Database,
  table: T,
  userId: string,
  values: Record<string, unknown>,
  when?: SQL,
) {
  const select = Object.fromEntries(
    Object.entries(getTableColumns(table)).map(([k, column]) => {
      const value = values[k];
      return [k, (is(value, SQL) ? sql`${value}` : sql`${sql.param(value ?? null, column)}`).as(column.name)];
    }),
  );
  return fromUser(db, userId, select, when);
}

/**
 * A one-row select of `fields` (SQL the caller builds) that has a row only while `userId`'s
 * account exists (and `when` holds): for another feature's one-statement read about a user.
 */
export function fromUser<F extends Record<string, SQL | SQL.Aliased>>(
  db: Database,
  userId: string,
  fields: F,
  when?: SQL,
) {
  return db
    .select(fields)
    .from(users)
    .where(and(eq(users.id, userId), when));
}

/** Whether the account exists. */
export async function userExists(db: Database, userId: string): Promise<boolean> {
  return (await db.select({ id: users.id }).from(users).where(eq(users.id, userId)).get()) !== undefined;
}

/** SQL: 1 when a user with id `idExpr` exists, else 0. */
export const userExistsSql = (idExpr: SQL | string) => sql<number>`EXISTS (SELECT 1 FROM users WHERE id = ${idExpr})`;
/** SQL: whether the user is a guest (null when there is no such user). */
export const isGuestSql = (idExpr: SQL | string) =>
  sql<number | null>`(SELECT anonymous FROM users WHERE id = ${idExpr})`;
/** SQL: the user's display name (null when unset or no such user). */
export const userNameSql = (idExpr: SQL | string | AnyColumn) =>
  sql<string | null>`(SELECT name FROM users WHERE id = ${idExpr})`;
/** SQL: a JSON object of user id → display name for `ids` (users that exist). */
export const userNamesJsonSql = (ids: readonly string[]) =>
  sql<
    string | null
  >`(SELECT json_group_object(id, name) FROM users WHERE id IN (SELECT value FROM json_each(${JSON.stringify(ids)})))`;
/** The public profiles (`{ id, name, avatarFileId }`) of the users whose ids `ids` selects (a subquery). */
export const publicProfilesQuery = (db: Database, ids: SQL) =>
  db
    .select({ id: users.id, name: users.name, avatarFileId: users.avatarFileId })
    .from(users)
    .where(sql`${users.id} IN ${ids}`);
/** SQL: the user's email (null when unset or no such user). */
export const userEmailSql = (idExpr: SQL | string | AnyColumn) =>
  sql<string | null>`(SELECT email FROM users WHERE id = ${idExpr})`;
/** SQL: 1 when `sessionId` is a live (unexpired) session of `userId`. */
export const sessionLiveSql = (sessionId: string, userId: string) =>
  sql<
    number | null
  >`(SELECT 1 FROM sessions WHERE id = ${sessionId} AND user_id = ${userId} AND expires_at > ${nowIso()})`;

/** Which of `ids` (at most 90) are live sessions: a statement, so callers can batch it. */
export function liveSessionsQuery(db: Database, ids: string[]) {
  return db
    .select({ id: sessions.id })
    .from(sessions)
    .where(and(inArray(sessions.id, ids), gt(sessions.expiresAt, nowIso())));
}

/** `PATCH /v1/me`: name and avatar (the avatar was checked by the caller); undefined when the account is gone. */
export async function updateProfile(
  db: Database,
  userId: string,
  patch: { name?: string | null; avatarFileId?: string | null; locale?: string | null },
) {
  const updated = await db
    .update(users)
    .set({
      ...(patch.name !== undefined ? { name: patch.name } : {}),
      ...(patch.avatarFileId !== undefined ? { avatarFileId: patch.avatarFileId } : {}),
      ...(patch.locale !== undefined ? { locale: patch.locale } : {}),
      updatedAt: nowIso(),
    })
    .where(eq(users.id, userId))
    .returning()
    .get();
  return updated ? toUser(updated) : undefined;
}

/**
 * The statement that deletes the account row (sessions, identities and tickets go by cascade); it returns the id it
 * deleted.
 */
export function deleteUserStatement(db: Database, userId: string) {
  return db.delete(users).where(eq(users.id, userId)).returning({ id: users.id });
}

/** The statement that clears avatars pointing at a deleted file. */
export function clearAvatarStatement(db: Database, fileId: string) {
  return db.update(users).set({ avatarFileId: null }).where(eq(users.avatarFileId, fileId));
}

/** The language of the account that has `email` (for a mail to it), or null. */
export async function localeOfEmail(db: Database, email: string): Promise<string | null> {
  const row = await db.select({ locale: users.locale }).from(users).where(eq(users.email, email)).get();
  return row?.locale ?? null;
}
