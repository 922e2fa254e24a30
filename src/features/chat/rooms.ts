/** Rooms in D1: the public Room, membership checks, creating and listing rooms, and the console's views. */
import { and, asc, desc, eq, inArray, sql } from "drizzle-orm";
import { limits } from "../../config";
import { type Database, runBatch } from "../../db";
import { roomMembers, rooms } from "../../db/schema";
import { AppError, isConstraintError } from "../../errors";
import { chunks, IN_CHUNK } from "../../lib/chunks";
import { newId, nowIso } from "../../lib/ids";
import { afterTimeId, decodeTimeIdCursor, encodeTimeIdCursor, keysetPage } from "../../lib/keyset";
import { userEmailSql, userNameSql } from "../auth";
import { assertUnderDailyCap, callerQuery, peopleQuery, recordAdds, utcDay } from "./add-checks";
import type { Message } from "./protocol";
import type { CreateRoomInput, Member, Room } from "./schemas";

export type RoomRow = typeof rooms.$inferSelect;
export type MemberRow = typeof roomMembers.$inferSelect;

/** The caller's membership of a room, with what the routes need to act on it. */
export interface Membership {
  room: RoomRow;
  me: MemberRow;
  /** The caller's display name (for push payloads). */
  userName: string | null;
}

/** room_members has 6 columns: 15 rows = 90 parameters. */
const MEMBER_ROWS_PER_INSERT = 15;

function parseLastMessage(json: string | null): Message | null {
  if (!json) return null;
  try {
    return JSON.parse(json) as Message;
  } catch {
    return null;
  }
}

export const toMember = (m: MemberRow): Member => ({ userId: m.userId, role: m.role, lastReadSeq: m.lastReadSeq });

/**
 * The public Room. Unread = messages after the caller's read position; sending advances the
 * sender's own position, so one's own messages never count as unread.
 */
export function toRoom(r: RoomRow, members: MemberRow[], me: MemberRow): Room {
  return {
    id: r.id,
    kind: r.kind,
    name: r.name,
    createdBy: r.createdBy,
    createdAt: r.createdAt,
    members: members.map(toMember),
    lastMessage: parseLastMessage(r.lastMessage),
    lastSeq: r.lastSeq,
    unreadCount: Math.max(0, r.lastSeq - me.lastReadSeq),
    muted: me.muted,
  };
}

async function membersOf(db: Database, roomIds: string[]): Promise<Map<string, MemberRow[]>> {
  const byRoom = new Map<string, MemberRow[]>();
  for (const ids of chunks(roomIds, IN_CHUNK)) {
    const rows = await db
      .select()
      .from(roomMembers)
      .where(inArray(roomMembers.roomId, ids))
      .orderBy(asc(roomMembers.joinedAt), asc(roomMembers.userId));
    for (const m of rows) {
      const list = byRoom.get(m.roomId) ?? [];
      list.push(m);
      byRoom.set(m.roomId, list);
    }
  }
  return byRoom;
}

/** The room as `userId` sees it; null when the room does not exist or the user is not a member. */
export async function getRoom(db: Database, roomId: string, userId: string): Promise<Room | null> {
  const m = await getMembership(db, roomId, userId);
  if (!m) return null;
  const members = (await membersOf(db, [roomId])).get(roomId) ?? [];
  return toRoom(m.room, members, m.me);
}

/** The caller's membership, or null (no such room, or not a member: the routes answer 404 for both). */
async function getMembership(db: Database, roomId: string, userId: string): Promise<Membership | null> {
  const row = await db
    .select({ room: rooms, me: roomMembers, userName: userNameSql(roomMembers.userId) })
    .from(roomMembers)
    .innerJoin(rooms, eq(rooms.id, roomMembers.roomId))
    .where(and(eq(roomMembers.roomId, roomId), eq(roomMembers.userId, userId)))
    .get();
  return row ?? null;
}

/** Throws `not_found` unless the user is a member: strangers learn nothing about the room. */
export async function requireMembership(db: Database, roomId: string, userId: string): Promise<Membership> {
  const m = await getMembership(db, roomId, userId);
  if (!m) throw new AppError("not_found", "No such room.");
  return m;
}

const directKey = (a: string, b: string) => (a < b ? `${a}:${b}` : `${b}:${a}`);

/** Member rows as `membersOf` orders them: by join time, then user id. */
const byJoin = (a: MemberRow, b: MemberRow) =>
  a.joinedAt < b.joinedAt ? -1 : a.joinedAt > b.joinedAt ? 1 : a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : 0;

/**
 * Creates a room. A direct room is unique per pair of users (`direct_key`): asking again, even
 * concurrently, returns the existing room with `created: false`.
 *
 * Abuse limits: nobody can name someone who blocked them (403, each such id in `errors`), and a
 * direct room is refused when either side blocked the other, even if it exists. The distinct people
 * a user puts into rooms per UTC day are capped (429). A member who left a direct room is not put
 * back by the other opening it again; only the leaver's own open brings them back.
 */
export async function createRoom(
  db: Database,
  creatorId: string,
  input: CreateRoomInput,
): Promise<{ room: Room; created: boolean }> {
  const kind = input.kind ?? "group";
  const others = [...new Set(input.memberIds)].filter((id) => id !== creatorId);
  if (kind === "direct") {
    if (input.name !== undefined)
      throw new AppError("validation_failed", "Direct rooms have no name.", {
        errors: [{ path: "name", message: "not allowed for direct rooms" }],
      });
    if (others.length !== 1)
      throw new AppError("validation_failed", "A direct room is with exactly one other user.", {
        errors: [{ path: "memberIds", message: "must name exactly one other user" }],
      });
  }
  const key = kind === "direct" ? directKey(creatorId, others[0]!) : null;
  const nowMs = Date.now();
  const day = utcDay(nowMs);
  const [people, callerRows] = await db.batch([
    peopleQuery(db, creatorId, others, day),
    callerQuery(db, creatorId, day, key),
  ]);
  const caller = callerRows[0];
  const found = new Map(people.map((p) => [p.id, p]));
  const pathOf = (id: string) => `memberIds.${input.memberIds.indexOf(id)}`;

  const unknown = others.filter((id) => !found.has(id)).map((id) => ({ path: pathOf(id), message: "no such user" }));
  if (unknown.length) throw new AppError("validation_failed", "Some memberIds are not users.", { errors: unknown });
  if (kind === "direct") {
    const other = found.get(others[0]!)!;
    if (other.blockedByMe)
      throw new AppError("forbidden", "You blocked this user; unblock them to open a direct room.", {
        errors: [{ path: pathOf(other.id), message: "you blocked this user" }],
      });
    if (other.blockedMe)
      throw new AppError("forbidden", "You cannot open a direct room with this user.", {
        errors: [{ path: pathOf(other.id), message: "does not accept rooms from you" }],
      });
  } else {
    const refusing = others
      .filter((id) => found.get(id)!.blockedMe)
      .map((id) => ({ path: pathOf(id), message: "does not accept rooms from you" }));
    if (refusing.length)
      throw new AppError("forbidden", "Some of these users cannot be added by you.", { errors: refusing });
  }

  if (key && caller?.directId)
    return { room: await reopenDirect(db, caller.directId, creatorId, caller.directMember === 1), created: false };

  const fresh = others.filter((id) => !found.get(id)!.counted);
  assertUnderDailyCap(caller?.addedToday ?? 0, fresh.length, caller?.guest, nowMs);

  const now = nowIso(nowMs);
  const id = newId(nowMs);
  const roomRow: RoomRow = {
    id,
    kind,
    name: input.name ?? null,
    createdBy: creatorId,
    createdAt: now,
    directKey: key,
    lastSeq: 0,
    lastMessage: null,
    lastActivityAt: now,
  };
  const rows: MemberRow[] = [creatorId, ...others].map((userId) => ({
    roomId: id,
    userId,
    role: kind === "group" && userId === creatorId ? "owner" : "member",
    lastReadSeq: 0,
    muted: false,
    joinedAt: now,
  }));
  try {
    await runBatch(db, [
      db.insert(rooms).values(roomRow),
      ...chunks(rows, MEMBER_ROWS_PER_INSERT).map((part) => db.insert(roomMembers).values(part)),
      ...(others.length ? recordAdds(db, creatorId, day, others) : []),
    ]);
  } catch (e) {
    if (key && isConstraintError(e, "UNIQUE")) {
      const existing = await findDirect(db, key, creatorId);
      if (existing) return { room: existing, created: false };
    }
    throw e;
  }
  // Built from what was just written: no read back.
  return { room: toRoom(roomRow, [...rows].sort(byJoin), rows[0]!), created: true };
}

/**
 * The existing direct room of the pair, for the caller. A caller who left it is a member again
 * (history read up to now); the other member is never put back by this.
 */
async function reopenDirect(db: Database, roomId: string, userId: string, isMember: boolean): Promise<Room> {
  if (!isMember) {
    await db
      .insert(roomMembers)
      .values({
        roomId,
        userId,
        role: "member",
        lastReadSeq: sql`(SELECT last_seq FROM rooms WHERE id = ${roomId})`,
        muted: false,
        joinedAt: nowIso(),
      })
      .onConflictDoNothing();
  }
  const room = await getRoom(db, roomId, userId);
  if (!room) throw new AppError("conflict", "The room changed meanwhile; try again.");
  return room;
}

async function findDirect(db: Database, key: string, userId: string): Promise<Room | null> {
  const r = await db.select({ id: rooms.id }).from(rooms).where(eq(rooms.directKey, key)).get();
  return r ? getRoom(db, r.id, userId) : null;
}

/** The user's rooms, most recent activity first (a message, or creation), keyset-paginated. */
export async function listRooms(
  db: Database,
  userId: string,
  limit: number,
  cursor?: string,
): Promise<{ items: Room[]; nextCursor: string | null }> {
  const after = cursor ? decodeTimeIdCursor(cursor) : null;
  const rows = await db
    .select({ room: rooms, me: roomMembers })
    .from(roomMembers)
    .innerJoin(rooms, eq(rooms.id, roomMembers.roomId))
    .where(and(eq(roomMembers.userId, userId), afterTimeId(rooms.lastActivityAt, rooms.id, after)))
    .orderBy(desc(rooms.lastActivityAt), desc(rooms.id))
    .limit(limit + 1);
  const { page, nextCursor } = keysetPage(rows, limit, (r) => encodeTimeIdCursor(r.room.lastActivityAt, r.room.id));
  const members = await membersOf(
    db,
    page.map((r) => r.room.id),
  );
  return { items: page.map((r) => toRoom(r.room, members.get(r.room.id) ?? [], r.me)), nextCursor };
}

/** Rooms a user is a member of (or every room), counted; one statement for the admin's batch. */
export function roomCount(db: Database, userId?: string) {
  return userId === undefined
    ? db.select({ n: sql<number>`count(*)` }).from(rooms)
    : db.select({ n: sql<number>`count(*)` }).from(roomMembers).where(eq(roomMembers.userId, userId));
}

/** A room as the admin console lists it. */
export interface AdminRoom {
  id: string;
  kind: "direct" | "group";
  name: string | null;
  createdAt: string;
  lastActivityAt: string;
  lastSeq: number;
  memberCount: number;
}

/** Every room, most recent activity first (rooms_activity_idx), keyset-paginated like `listRooms`. */
export async function listAllRooms(
  db: Database,
  limit: number,
  cursor?: string,
): Promise<{ items: AdminRoom[]; nextCursor: string | null }> {
  const after = cursor ? decodeTimeIdCursor(cursor) : null;
  const rows = await db
    .select({
      id: rooms.id,
      kind: rooms.kind,
      name: rooms.name,
      createdAt: rooms.createdAt,
      lastActivityAt: rooms.lastActivityAt,
      lastSeq: rooms.lastSeq,
      memberCount: sql<number>`(SELECT count(*) FROM room_members WHERE room_members.room_id = rooms.id)`,
    })
    .from(rooms)
    .where(afterTimeId(rooms.lastActivityAt, rooms.id, after))
    .orderBy(desc(rooms.lastActivityAt), desc(rooms.id))
    .limit(limit + 1);
  const { page, nextCursor } = keysetPage(rows, limit, (r) => encodeTimeIdCursor(r.lastActivityAt, r.id));
  return { items: page, nextCursor };
}

/** A room with its members and their names (the admin console), or null. One batch. */
export async function roomWithMembers(
  db: Database,
  roomId: string,
): Promise<{
  room: RoomRow;
  members: (Member & { email: string | null; name: string | null; joinedAt: string })[];
} | null> {
  const [room, members] = await db.batch([
    db.select().from(rooms).where(eq(rooms.id, roomId)),
    db
      .select({ member: roomMembers, email: userEmailSql(roomMembers.userId), name: userNameSql(roomMembers.userId) })
      .from(roomMembers)
      .where(eq(roomMembers.roomId, roomId))
      .orderBy(asc(roomMembers.joinedAt), asc(roomMembers.userId))
      .limit(limits.chatGroupMembersMax + 1),
  ]);
  const r = room[0];
  if (!r) return null;
  return {
    room: r,
    members: members.map((m) => ({ ...toMember(m.member), email: m.email, name: m.name, joinedAt: m.member.joinedAt })),
  };
}
