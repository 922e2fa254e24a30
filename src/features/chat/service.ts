/**
 * Chat data in D1: the room index and membership (listing, access checks, unread counts) and the
 * mirror of each room's newest message. Used by the routes and by the ChatRoom Durable Object;
 * the message log itself is the object's own SQLite storage.
 */
import { and, asc, desc, eq, inArray, lt, or, type SQL, sql } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import * as v from "valibot";
import { limits } from "../../config";
import { type Database, runBatch } from "../../db";
import { roomAdds, roomLeaves, roomMembers, rooms } from "../../db/schema";
import { AppError, isConstraintError } from "../../errors";
import { chunks, IN_CHUNK } from "../../lib/chunks";
import { decodeCursor, encodeCursor } from "../../lib/cursor";
import { newId, nowIso } from "../../lib/ids";
import {
  fromUser,
  isGuestSql,
  liveSessionsQuery,
  sessionLiveSql,
  userEmailSql,
  userExistsSql,
  userNameSql,
  userNamesJsonSql,
} from "../auth";
import { blockedSql } from "../blocks";
import type { Message } from "./protocol";
import type { CreateRoomInput, Member, Room } from "./schemas";

type RoomRow = typeof rooms.$inferSelect;
type MemberRow = typeof roomMembers.$inferSelect;

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

const toMember = (m: MemberRow): Member => ({ userId: m.userId, role: m.role, lastReadSeq: m.lastReadSeq });

/**
 * The public Room. Unread = messages after the caller's read position; sending advances the
 * sender's own position, so one's own messages never count as unread.
 */
function toRoom(r: RoomRow, members: MemberRow[], me: MemberRow): Room {
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
      counted: sql<number>`EXISTS (SELECT 1 FROM room_adds a WHERE a.adder_id = ${me} AND a.day = ${day} AND a.added_id = ${uid})`,
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
    directMember: sql<number>`EXISTS (SELECT 1 FROM rooms r JOIN room_members m ON m.room_id = r.id WHERE r.direct_key = ${key} AND m.user_id = ${me})`,
  });
}

/** The daily cap on distinct people one user puts into rooms: guests get fewer. */
function dailyCap(guest: boolean | number | null | undefined): number {
  return guest ? limits.chatNewPeoplePerDayGuest : limits.chatNewPeoplePerDay;
}

/** Refuses (429 until the UTC day ends) when `fresh` more people would take the caller past the daily cap. */
function assertUnderDailyCap(
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

/** List cursors hold the last row's sort time and id. */
const ListCursor = v.pipe(
  v.tuple([v.string(), v.string()]),
  v.transform(([at, id]) => ({ at, id })),
);
const encodeListCursor = (c: { at: string; id: string }) => encodeCursor([c.at, c.id]);

/** The user's rooms, most recent activity first (a message, or creation), keyset-paginated. */
export async function listRooms(
  db: Database,
  userId: string,
  limit: number,
  cursor?: string,
): Promise<{ items: Room[]; nextCursor: string | null }> {
  const after = cursor ? decodeCursor(cursor, ListCursor) : null;
  const rows = await db
    .select({ room: rooms, me: roomMembers })
    .from(roomMembers)
    .innerJoin(rooms, eq(rooms.id, roomMembers.roomId))
    .where(
      and(
        eq(roomMembers.userId, userId),
        after
          ? or(lt(rooms.lastActivityAt, after.at), and(eq(rooms.lastActivityAt, after.at), lt(rooms.id, after.id)))
          : undefined,
      ),
    )
    .orderBy(desc(rooms.lastActivityAt), desc(rooms.id))
    .limit(limit + 1);
  const page = rows.slice(0, limit);
  const members = await membersOf(
    db,
    page.map((r) => r.room.id),
  );
  const last = page.at(-1);
  return {
    items: page.map((r) => toRoom(r.room, members.get(r.room.id) ?? [], r.me)),
    nextCursor:
      rows.length > limit && last ? encodeListCursor({ at: last.room.lastActivityAt, id: last.room.id }) : null,
  };
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

/** What a rejoin needs to know about the room and the caller. */
interface RejoinRow {
  leftRoom: number;
  isMember: number;
  members: number;
}

export function rejoinCheckQuery(db: Database, roomId: string, userId: string) {
  return db.get<RejoinRow>(sql`SELECT
    EXISTS (SELECT 1 FROM room_leaves WHERE room_id = ${roomId} AND user_id = ${userId}) AS leftRoom,
    EXISTS (SELECT 1 FROM room_members WHERE room_id = ${roomId} AND user_id = ${userId}) AS isMember,
    (SELECT count(*) FROM room_members WHERE room_id = ${roomId}) AS members`);
}

/**
 * The caller rejoins a group they left themselves (`POST /v1/rooms/:id/members` with their own id
 * or `me`). Anyone else gets 404, as for any room they are not in. A room left without an owner
 * (its last member left) gets the rejoiner as owner.
 */
export async function rejoinRoom(db: Database, roomId: string, userId: string): Promise<Room> {
  const check = await rejoinCheckQuery(db, roomId, userId);
  if (check?.isMember) throw new AppError("conflict", "You are already a member.");
  if (!check?.leftRoom) throw new AppError("not_found", "No such room.");
  if (check.members >= limits.chatGroupMembersMax)
    throw new AppError("conflict", `A room holds at most ${limits.chatGroupMembersMax} members.`);
  const role = sql`(CASE WHEN EXISTS (SELECT 1 FROM room_members WHERE room_id = ${roomId} AND role = 'owner') THEN 'member' ELSE 'owner' END)`;
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
          sql`(SELECT user_id FROM room_members WHERE room_id = ${roomId} AND user_id <> ${leavingId} ORDER BY joined_at, user_id LIMIT 1)`,
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

/** What one flush of a room writes to D1 (see `mirrorFlush`). */
export interface MirrorFlush {
  roomId: string;
  /** The room's newest message as its log holds it now (a tombstone if deleted); null when the listing needs no change. */
  last: Message | null;
  /** Read positions to move forward (never back), by user id. */
  reads: ReadonlyMap<string, number>;
  /** Senders of the messages this flush builds push jobs for (their names go in the notification); empty = no push job. */
  senders: readonly string[];
}

/** What the room object needs for the push jobs of a flush: who to notify and how to name things. */
export interface MirrorResult {
  kind: "direct" | "group";
  name: string | null;
  memberIds: string[];
  senderNames: Map<string, string | null>;
}

/** Read positions per statement (one JSON parameter each, far below D1's 100 KB per statement). */
const READS_PER_STATEMENT = 200;

/**
 * Mirrors a room's pending changes into D1 in one round trip, however many messages they cover:
 * the room's last message, seq and activity time (one UPDATE, which also returns the room's kind,
 * name, member ids and the senders' names when push jobs need them), and the read positions that
 * moved (one UPDATE per 200 users, from a JSON object). Idempotent and monotonic (`max()`, and the
 * last message only replaces one with a lower or equal seq), so a retried or repeated flush never
 * moves the listing back. Returns null when there was nothing to write or no push data was asked.
 */
export async function mirrorFlush(db: Database, f: MirrorFlush): Promise<MirrorResult | null> {
  const items: BatchItem<"sqlite">[] = [];
  const wantPush = f.last !== null && f.senders.length > 0 ? 1 : 0;
  if (f.last) {
    const m = f.last;
    items.push(
      db
        .update(rooms)
        .set({
          // SQLite evaluates every right-hand side on the old row.
          lastMessage: sql`CASE WHEN ${rooms.lastSeq} <= ${m.seq} THEN ${JSON.stringify(m)} ELSE ${rooms.lastMessage} END`,
          lastActivityAt: sql`CASE WHEN ${rooms.lastSeq} < ${m.seq} THEN ${m.createdAt} ELSE ${rooms.lastActivityAt} END`,
          lastSeq: sql`max(${rooms.lastSeq}, ${m.seq})`,
        })
        .where(eq(rooms.id, f.roomId))
        .returning({
          kind: rooms.kind,
          name: rooms.name,
          members: sql<
            string | null
          >`CASE WHEN ${wantPush} THEN (SELECT json_group_array(user_id) FROM room_members WHERE room_id = ${f.roomId}) END`,
          names: sql<string | null>`CASE WHEN ${wantPush} THEN ${userNamesJsonSql(f.senders)} END`,
        }),
    );
  }
  for (const part of chunks([...f.reads], READS_PER_STATEMENT)) {
    const positions = JSON.stringify(Object.fromEntries(part));
    items.push(
      db
        .update(roomMembers)
        .set({
          lastReadSeq: sql`max(${roomMembers.lastReadSeq}, (SELECT value FROM json_each(${positions}) WHERE key = ${roomMembers.userId}))`,
        })
        .where(
          and(
            eq(roomMembers.roomId, f.roomId),
            inArray(roomMembers.userId, sql`(SELECT key FROM json_each(${positions}))`),
          ),
        ),
    );
  }
  if (items.length === 0) return null;
  const results = await runBatch(db, items);
  if (!wantPush) return null;
  const row = (
    results[0] as { kind: "direct" | "group"; name: string | null; members: string | null; names: string | null }[]
  )[0];
  if (!row) return { kind: "group", name: null, memberIds: [], senderNames: new Map() };
  const names = JSON.parse(row.names ?? "{}") as Record<string, string | null>;
  return {
    kind: row.kind,
    name: row.name,
    memberIds: JSON.parse(row.members ?? "[]") as string[],
    senderNames: new Map(Object.entries(names)),
  };
}

/**
 * What the room object checks before it accepts an upgrade, in one query: whether `userId` is a
 * member of the room now, and whether the session the socket is opened with still exists (an
 * access token outlives a logout by up to its lifetime; the socket must not).
 */
export async function upgradeCheck(
  db: Database,
  roomId: string,
  userId: string,
  sessionId: string,
): Promise<{ member: boolean; session: boolean }> {
  const row = await db.get<{ member: number | null; session: number | null }>(sql`SELECT
    (SELECT 1 FROM room_members WHERE room_id = ${roomId} AND user_id = ${userId}) AS member,
    ${sessionLiveSql(sessionId, userId)} AS session`);
  return { member: row?.member === 1, session: row?.session === 1 };
}

/**
 * The room's heartbeat re-check, in one D1 round trip: the user ids that are members of the room
 * now, and which of `sessionIds` (the sessions of the room's open sockets) still exist.
 */
export async function liveMembersAndSessions(
  db: Database,
  roomId: string,
  sessionIds: string[],
): Promise<{ members: Set<string>; sessions: Set<string> }> {
  const [members, ...found] = await db.batch([
    db.select({ userId: roomMembers.userId }).from(roomMembers).where(eq(roomMembers.roomId, roomId)),
    ...chunks(sessionIds, IN_CHUNK).map((ids) => liveSessionsQuery(db, ids)),
  ]);
  return { members: new Set(members.map((m) => m.userId)), sessions: new Set(found.flat().map((s) => s.id)) };
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

// --- administration ------------------------------------------------------------------------

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
  const after = cursor ? decodeCursor(cursor, ListCursor) : null;
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
    .where(
      after
        ? or(lt(rooms.lastActivityAt, after.at), and(eq(rooms.lastActivityAt, after.at), lt(rooms.id, after.id)))
        : undefined,
    )
    .orderBy(desc(rooms.lastActivityAt), desc(rooms.id))
    .limit(limit + 1);
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return {
    items: page,
    nextCursor: rows.length > limit && last ? encodeListCursor({ at: last.lastActivityAt, id: last.id }) : null,
  };
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
