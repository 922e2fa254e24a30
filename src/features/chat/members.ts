/** Room membership: adding, rejoining, leaving and removing members, muting, and what push and deletion ask. */
import { and, asc, eq, inArray, type SQL, sql } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import { limits } from "../../config";
import { type Database, runBatch } from "../../db";
import { roomAdds, roomLeaves, roomMembers, rooms } from "../../db/schema";
import { AppError } from "../../errors";
import { chunks, IN_CHUNK } from "../../lib/chunks";
import { nowIso } from "../../lib/ids";
import { addCheckQuery, assertUnderDailyCap, recordAdds, rejoinCheckQuery, utcDay } from "./add-checks";
import { type MemberRow, type Membership, type RoomRow, toMember, toRoom } from "./rooms";
import type { Member, Room } from "./schemas";

/**
 * Inserts a member who starts with the history read, runs `extra` (bookkeeping of the same
 * change), and reads the room back as `viewerId` sees it: one batch. A concurrent insert of the
 * same member wins: 409.
 */
async function insertMember(
  db: Database,
  roomId: string,
  userId: string,
  role: MemberRow["role"] | SQL,
  extra: BatchItem<"sqlite">[],
  viewerId: string,
): Promise<Room> {
  const res = await runBatch(db, [
    db
      .insert(roomMembers)
      // `role` may be an SQL expression (a rejoin into a room without owner takes it over).
      .values({
        roomId,
        userId,
        role: role as MemberRow["role"],
        lastReadSeq: sql`(SELECT last_seq FROM rooms WHERE id = ${roomId})`,
        muted: false,
        joinedAt: nowIso(),
      })
      .onConflictDoNothing()
      .returning(),
    ...extra,
    db.select().from(rooms).where(eq(rooms.id, roomId)),
    db
      .select()
      .from(roomMembers)
      .where(eq(roomMembers.roomId, roomId))
      .orderBy(asc(roomMembers.joinedAt), asc(roomMembers.userId)),
  ]);
  const inserted = res[0] as MemberRow[];
  const room = (res.at(-2) as RoomRow[])[0];
  const members = res.at(-1) as MemberRow[];
  const viewer = members.find((x) => x.userId === viewerId);
  if (inserted.length === 0) throw new AppError("conflict", "This user is already a member.");
  if (!room || !viewer) throw new AppError("not_found", "No such room.");
  return toRoom(room, members, viewer);
}

/**
 * Adds a member to a group (owner only). New members start with the history already read.
 * Refused: someone who blocked the owner (403), someone who left this room themselves (403: only
 * they can rejoin), and a person who would take the owner past the daily cap (429).
 */
export async function addMember(db: Database, m: Membership, userId: string): Promise<Room> {
  if (m.room.kind === "direct") throw new AppError("conflict", "Direct rooms always have exactly two members.");
  if (m.me.role !== "owner") throw new AppError("forbidden", "Only the room's owner can add members.");
  const nowMs = Date.now();
  const day = utcDay(nowMs);
  const check = await addCheckQuery(db, m.room.id, m.me.userId, userId, day);
  if (!check?.userExists) throw new AppError("not_found", "No such user.");
  if (check.isMember) throw new AppError("conflict", "This user is already a member.");
  if (check.blockedMe)
    throw new AppError("forbidden", "This user cannot be added by you.", {
      errors: [{ path: "userId", message: "does not accept rooms from you" }],
    });
  if (check.leftRoom)
    throw new AppError("forbidden", "This user left the room; only they can rejoin it.", {
      errors: [{ path: "userId", message: "left this room" }],
    });
  if (check.members >= limits.chatGroupMembersMax)
    throw new AppError("conflict", `A room holds at most ${limits.chatGroupMembersMax} members.`);
  assertUnderDailyCap(check.addedToday, check.counted ? 0 : 1, check.guest, nowMs);
  return insertMember(db, m.room.id, userId, "member", recordAdds(db, m.me.userId, day, [userId]), m.me.userId);
}

/**
 * The caller rejoins a group they left themselves (`POST /v1/rooms/:id/members` with their own id
 * or `me`). Anyone else gets 404, as for any room they are not in. Refused (403) while a member of
 * the room blocks the caller. A room left without an owner (its last member left) gets the rejoiner as owner.
 */
export async function rejoinRoom(db: Database, roomId: string, userId: string): Promise<Room> {
  const check = await rejoinCheckQuery(db, roomId, userId);
  if (check?.isMember) throw new AppError("conflict", "You are already a member.");
  if (!check?.leftRoom) throw new AppError("not_found", "No such room.");
  // As when someone puts people into a room: nobody who blocked the caller gets them back beside them.
  if (check.blockedByMember)
    throw new AppError("forbidden", "Someone in this room does not accept rooms with you.", {
      errors: [{ path: "userId", message: "a member of this room blocked you" }],
    });
  if (check.members >= limits.chatGroupMembersMax)
    throw new AppError("conflict", `A room holds at most ${limits.chatGroupMembersMax} members.`);
  const role = sql`(CASE WHEN EXISTS (SELECT 1 FROM room_members WHERE room_id = ${roomId} AND role = 'owner')
                    THEN 'member' ELSE 'owner' END)`;
  return insertMember(
    db,
    roomId,
    userId,
    role,
    [db.delete(roomLeaves).where(and(eq(roomLeaves.roomId, roomId), eq(roomLeaves.userId, userId)))],
    userId,
  );
}

/**
 * Removes `userId` from the room: the owner may remove anyone from a group, a member only
 * themselves (from any room, direct ones included). When the owner leaves a group, the
 * longest-standing remaining member becomes owner (same batch). Leaving a group of one's own
 * accord is recorded, so the owner cannot add the leaver back; a removal by the owner is not.
 */
export async function removeMember(db: Database, m: Membership, userId: string): Promise<void> {
  const self = userId === m.me.userId;
  if (!self && m.room.kind === "direct")
    throw new AppError("forbidden", "In a direct room you can only leave yourself.");
  if (!self && m.me.role !== "owner")
    throw new AppError("forbidden", "Only the room's owner can remove other members.");
  const target = self
    ? m.me
    : await db
        .select()
        .from(roomMembers)
        .where(and(eq(roomMembers.roomId, m.room.id), eq(roomMembers.userId, userId)))
        .get();
  if (!target) throw new AppError("not_found", "This user is not a member of the room.");
  const statements: BatchItem<"sqlite">[] = [
    db.delete(roomMembers).where(and(eq(roomMembers.roomId, m.room.id), eq(roomMembers.userId, userId))),
  ];
  if (self && m.room.kind === "group") {
    const leftAt = nowIso();
    statements.push(
      db
        .insert(roomLeaves)
        .values({ roomId: m.room.id, userId, leftAt })
        .onConflictDoUpdate({ target: [roomLeaves.roomId, roomLeaves.userId], set: { leftAt } }),
    );
  }
  if (target.role === "owner") statements.push(promoteOldestMember(db, m.room.id, userId));
  await runBatch(db, statements);
}

/** Makes the longest-standing member other than `leavingId` the owner of the room. */
function promoteOldestMember(db: Database, roomId: string, leavingId: string): BatchItem<"sqlite"> {
  return db
    .update(roomMembers)
    .set({ role: "owner" })
    .where(
      and(
        eq(roomMembers.roomId, roomId),
        eq(
          roomMembers.userId,
          sql`(SELECT user_id FROM room_members WHERE room_id = ${roomId} AND user_id <> ${leavingId}
               ORDER BY joined_at, user_id LIMIT 1)`,
        ),
      ),
    );
}

/** Mutes or unmutes the room for its member (read by push delivery). */
export async function setMuted(
  db: Database,
  roomId: string,
  userId: string,
  muted: boolean,
): Promise<Member & { muted: boolean }> {
  const row = await db
    .update(roomMembers)
    .set({ muted })
    .where(and(eq(roomMembers.roomId, roomId), eq(roomMembers.userId, userId)))
    .returning()
    .get();
  if (!row) throw new AppError("not_found", "No such room.");
  return { ...toMember(row), muted: row.muted };
}

/** The rooms `userId` is a member of (room_members_user_idx): where their sockets can be. */
export async function roomIdsOf(db: Database, userId: string): Promise<string[]> {
  return (await db.select({ roomId: roomMembers.roomId }).from(roomMembers).where(eq(roomMembers.userId, userId))).map(
    (r) => r.roomId,
  );
}

/**
 * Account deletion: the user's memberships go in the deletion batch (groups they owned get a new
 * owner); afterwards every room they were in closes their sockets. Their messages stay, attributed
 * to the deleted user id.
 */
export async function deletionPlanFor(
  db: Database,
  userId: string,
): Promise<{ roomIds: string[]; statements: BatchItem<"sqlite">[] }> {
  const mine = await db
    .select({ roomId: roomMembers.roomId, role: roomMembers.role })
    .from(roomMembers)
    .where(eq(roomMembers.userId, userId));
  return {
    roomIds: mine.map((m) => m.roomId),
    statements: [
      ...mine.filter((m) => m.role === "owner").map((m) => promoteOldestMember(db, m.roomId, userId)),
      db.delete(roomMembers).where(eq(roomMembers.userId, userId)),
      db.delete(roomLeaves).where(eq(roomLeaves.userId, userId)),
      db.delete(roomAdds).where(eq(roomAdds.adderId, userId)),
    ],
  };
}

/** Of `userIds`, those still members of the room who have not muted it (push: who may be notified). */
export async function unmutedMembers(db: Database, roomId: string, userIds: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const ids of chunks([...new Set(userIds)], IN_CHUNK)) {
    const rows = await db
      .select({ userId: roomMembers.userId })
      .from(roomMembers)
      .where(and(eq(roomMembers.roomId, roomId), eq(roomMembers.muted, false), inArray(roomMembers.userId, ids)))
      .all();
    out.push(...rows.map((r) => r.userId));
  }
  return out;
}
