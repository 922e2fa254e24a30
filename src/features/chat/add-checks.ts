/** Who may be put into a room: one-statement checks (blocks, existence, membership) and the daily cap. */
import { and, eq, lt, sql } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import { limits } from "../../config";
import type { Database } from "../../db";
import { roomAdds } from "../../db/schema";
import { AppError } from "../../errors";
import { fromUser, isGuestSql, userExistsSql } from "../auth";
import { blockedSql } from "../blocks";

/** The UTC day (`YYYY-MM-DD`) the daily cap on added people counts in. */
export const utcDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);
/** Seconds until the next UTC day starts (the Retry-After of the daily cap). */
const secondsToNextDay = (ms: number) =>
  Math.max(1, Math.ceil((Date.parse(`${utcDay(ms)}T00:00:00.000Z`) + 86_400_000 - ms) / 1000));

/**
 * What room creation needs to know about each person named, in one statement (json_each keeps it
 * at 5 bound parameters however many ids there are): whether they exist (unknown ids are missing
 * from the result), blocks either way, and whether the caller already added them today.
 */
export function peopleQuery(db: Database, me: string, ids: readonly string[], day: string) {
  const uid = sql.raw("json_each.value");
  return db
    .select({
      id: sql<string>`json_each.value`,
      blockedMe: blockedSql(uid, me),
      blockedByMe: blockedSql(me, uid),
      counted: sql<number>`EXISTS (SELECT 1 FROM room_adds a
                               WHERE a.adder_id = ${me} AND a.day = ${day} AND a.added_id = ${uid})`,
    })
    .from(sql`json_each(${JSON.stringify(ids)})`)
    .where(userExistsSql(uid));
}

/**
 * The caller's side of room creation: how many people they added today, whether they are a guest,
 * and the direct room of the pair (if any) with whether they are in it.
 */
export function callerQuery(db: Database, me: string, day: string, key: string | null) {
  return fromUser(db, me, {
    addedToday: sql<number>`(SELECT count(*) FROM room_adds a WHERE a.adder_id = ${me} AND a.day = ${day})`,
    guest: isGuestSql(me),
    directId: sql<string | null>`(SELECT r.id FROM rooms r WHERE r.direct_key = ${key})`,
    directMember: sql<number>`EXISTS (SELECT 1 FROM rooms r JOIN room_members m ON m.room_id = r.id
                                      WHERE r.direct_key = ${key} AND m.user_id = ${me})`,
  });
}

/** The daily cap on distinct people one user puts into rooms: guests get fewer. */
function dailyCap(guest: boolean | number | null | undefined): number {
  return guest ? limits.chatNewPeoplePerDayGuest : limits.chatNewPeoplePerDay;
}

/** Refuses (429 until the UTC day ends) when `fresh` more people would take the caller past the daily cap. */
export function assertUnderDailyCap(
  addedToday: number,
  fresh: number,
  guest: boolean | number | null | undefined,
  now: number,
): void {
  const cap = dailyCap(guest);
  if (fresh > 0 && addedToday + fresh > cap) {
    throw new AppError(
      "rate_limited",
      `You can add at most ${cap} different people to rooms per day; try again tomorrow (UTC).`,
      {
        headers: { "retry-after": String(secondsToNextDay(now)) },
      },
    );
  }
}

/** Records today's added people (each once a day) and drops the adder's counts of earlier days. */
export function recordAdds(
  db: Database,
  adderId: string,
  day: string,
  addedIds: readonly string[],
): BatchItem<"sqlite">[] {
  return [
    db
      .insert(roomAdds)
      .select(sql`SELECT ${adderId}, ${day}, value FROM json_each(${JSON.stringify(addedIds)}) WHERE true`)
      .onConflictDoNothing(),
    db.delete(roomAdds).where(and(eq(roomAdds.adderId, adderId), lt(roomAdds.day, day))),
  ];
}

/** What adding one person to a group needs to know, read in one statement. */
interface AddCheckRow {
  userExists: number;
  isMember: number;
  blockedMe: number;
  leftRoom: number;
  members: number;
  counted: number;
  addedToday: number;
  guest: number | null;
}

export function addCheckQuery(db: Database, roomId: string, me: string, userId: string, day: string) {
  return db.get<AddCheckRow>(sql`SELECT
    ${userExistsSql(userId)} AS userExists,
    EXISTS (SELECT 1 FROM room_members WHERE room_id = ${roomId} AND user_id = ${userId}) AS isMember,
    ${blockedSql(userId, me)} AS blockedMe,
    EXISTS (SELECT 1 FROM room_leaves WHERE room_id = ${roomId} AND user_id = ${userId}) AS leftRoom,
    (SELECT count(*) FROM room_members WHERE room_id = ${roomId}) AS members,
    EXISTS (SELECT 1 FROM room_adds WHERE adder_id = ${me} AND day = ${day} AND added_id = ${userId}) AS counted,
    (SELECT count(*) FROM room_adds WHERE adder_id = ${me} AND day = ${day}) AS addedToday,
    ${isGuestSql(me)} AS guest`);
}

/** What a rejoin needs to know about the room and the caller. */
interface RejoinRow {
  leftRoom: number;
  isMember: number;
  members: number;
  /** A member of the room blocked the caller: rejoining would put the caller back beside them. */
  blockedByMember: number;
}

export function rejoinCheckQuery(db: Database, roomId: string, userId: string) {
  return db.get<RejoinRow>(sql`SELECT
    EXISTS (SELECT 1 FROM room_leaves WHERE room_id = ${roomId} AND user_id = ${userId}) AS leftRoom,
    EXISTS (SELECT 1 FROM room_members WHERE room_id = ${roomId} AND user_id = ${userId}) AS isMember,
    (SELECT count(*) FROM room_members WHERE room_id = ${roomId}) AS members,
    EXISTS (SELECT 1 FROM room_members m WHERE m.room_id = ${roomId}
            AND ${blockedSql(sql.raw("m.user_id"), userId)}) AS blockedByMember`);
}
