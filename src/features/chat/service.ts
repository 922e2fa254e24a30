/**
 * Chat data in D1: the room index and membership (listing, access checks, unread counts) and the
 * mirror of each room's newest message. Used by the routes and by the ChatRoom Durable Object;
 * the message log itself is the object's own SQLite storage.
 */
import { and, asc, desc, eq, gt, inArray, lt, or, sql } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import { limits } from "../../config";
import { type Database, runBatch } from "../../db";
import { roomMembers, rooms, sessions, users } from "../../db/schema";
import { AppError, isConstraintError } from "../../errors";
import * as v from "valibot";
import { decodeCursor, encodeCursor } from "../../lib/cursor";
import { newId, nowIso } from "../../lib/ids";
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


/** D1 allows 100 bound parameters per statement: IN lists and multi-row inserts go in chunks. */
function chunks<T>(xs: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += size) out.push(xs.slice(i, i + size));
  return out;
}
const IN_CHUNK = 90;
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
    const rows = await db.select().from(roomMembers).where(inArray(roomMembers.roomId, ids)).orderBy(asc(roomMembers.joinedAt), asc(roomMembers.userId));
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
export async function getMembership(db: Database, roomId: string, userId: string): Promise<Membership | null> {
  const row = await db
    .select({ room: rooms, me: roomMembers, userName: users.name })
    .from(roomMembers)
    .innerJoin(rooms, eq(rooms.id, roomMembers.roomId))
    .innerJoin(users, eq(users.id, roomMembers.userId))
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

async function assertUsersExist(db: Database, ids: string[]): Promise<void> {
  const found = new Set<string>();
  for (const part of chunks(ids, IN_CHUNK)) {
    for (const u of await db.select({ id: users.id }).from(users).where(inArray(users.id, part))) found.add(u.id);
  }
  const errors = ids.flatMap((id, i) => (found.has(id) ? [] : [{ path: `memberIds.${i}`, message: "no such user" }]));
  if (errors.length) throw new AppError("validation_failed", "Some memberIds are not users.", { errors });
}

const directKey = (a: string, b: string) => (a < b ? `${a}:${b}` : `${b}:${a}`);

/**
 * Creates a room. A direct room is unique per pair of users (`direct_key`): asking again, even
 * concurrently, returns the existing room with `created: false`.
 */
export async function createRoom(db: Database, creatorId: string, input: CreateRoomInput): Promise<{ room: Room; created: boolean }> {
  const kind = input.kind ?? "group";
  const others = [...new Set(input.memberIds)].filter((id) => id !== creatorId);
  if (kind === "direct") {
    if (input.name !== undefined) throw new AppError("validation_failed", "Direct rooms have no name.", { errors: [{ path: "name", message: "not allowed for direct rooms" }] });
    if (others.length !== 1) throw new AppError("validation_failed", "A direct room is with exactly one other user.", { errors: [{ path: "memberIds", message: "must name exactly one other user" }] });
  }
  await assertUsersExist(db, others);

  const key = kind === "direct" ? directKey(creatorId, others[0]!) : null;
  if (key) {
    const existing = await findDirect(db, key, creatorId);
    if (existing) return { room: existing, created: false };
  }
  const now = nowIso();
  const id = newId();
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
      db.insert(rooms).values({ id, kind, name: input.name ?? null, createdBy: creatorId, createdAt: now, directKey: key, lastSeq: 0, lastMessage: null, lastActivityAt: now }),
      ...chunks(rows, MEMBER_ROWS_PER_INSERT).map((part) => db.insert(roomMembers).values(part)),
    ]);
  } catch (e) {
    if (key && isConstraintError(e, "UNIQUE")) {
      const existing = await findDirect(db, key, creatorId);
      if (existing) return { room: existing, created: false };
    }
    throw e;
  }
  const room = await getRoom(db, id, creatorId);
  if (!room) throw new AppError("internal");
  return { room, created: true };
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
export async function listRooms(db: Database, userId: string, limit: number, cursor?: string): Promise<{ items: Room[]; nextCursor: string | null }> {
  const after = cursor ? decodeCursor(cursor, ListCursor) : null;
  const rows = await db
    .select({ room: rooms, me: roomMembers })
    .from(roomMembers)
    .innerJoin(rooms, eq(rooms.id, roomMembers.roomId))
    .where(
      and(
        eq(roomMembers.userId, userId),
        after ? or(lt(rooms.lastActivityAt, after.at), and(eq(rooms.lastActivityAt, after.at), lt(rooms.id, after.id))) : undefined,
      ),
    )
    .orderBy(desc(rooms.lastActivityAt), desc(rooms.id))
    .limit(limit + 1);
  const page = rows.slice(0, limit);
  const members = await membersOf(db, page.map((r) => r.room.id));
  const last = page.at(-1);
  return {
    items: page.map((r) => toRoom(r.room, members.get(r.room.id) ?? [], r.me)),
    nextCursor: rows.length > limit && last ? encodeListCursor({ at: last.room.lastActivityAt, id: last.room.id }) : null,
  };
}

/** Adds a member to a group (owner only). New members start with the history already read. */
export async function addMember(db: Database, m: Membership, userId: string): Promise<void> {
  if (m.room.kind === "direct") throw new AppError("conflict", "Direct rooms always have exactly two members.");
  if (m.me.role !== "owner") throw new AppError("forbidden", "Only the room's owner can add members.");
  if (!(await db.select({ id: users.id }).from(users).where(eq(users.id, userId)).get())) throw new AppError("not_found", "No such user.");
  const [count] = await db.select({ n: sql<number>`count(*)` }).from(roomMembers).where(eq(roomMembers.roomId, m.room.id));
  if ((count?.n ?? 0) >= limits.chatGroupMembersMax) throw new AppError("conflict", `A room holds at most ${limits.chatGroupMembersMax} members.`);
  const inserted = await db
    .insert(roomMembers)
    .values({ roomId: m.room.id, userId, role: "member", lastReadSeq: sql`(SELECT last_seq FROM rooms WHERE id = ${m.room.id})`, muted: false, joinedAt: nowIso() })
    .onConflictDoNothing()
    .returning({ userId: roomMembers.userId });
  if (inserted.length === 0) throw new AppError("conflict", "This user is already a member.");
}

/**
 * Removes `userId` from the room: the owner may remove anyone, a member only themselves. When the
 * owner leaves a group, the longest-standing remaining member becomes owner (same batch).
 */
export async function removeMember(db: Database, m: Membership, userId: string): Promise<void> {
  const self = userId === m.me.userId;
  if (m.room.kind === "direct") throw new AppError("conflict", "Members cannot leave or be removed from a direct room.");
  if (!self && m.me.role !== "owner") throw new AppError("forbidden", "Only the room's owner can remove other members.");
  const target = self ? m.me : await db.select().from(roomMembers).where(and(eq(roomMembers.roomId, m.room.id), eq(roomMembers.userId, userId))).get();
  if (!target) throw new AppError("not_found", "This user is not a member of the room.");
  const statements: BatchItem<"sqlite">[] = [db.delete(roomMembers).where(and(eq(roomMembers.roomId, m.room.id), eq(roomMembers.userId, userId)))];
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
        eq(roomMembers.userId, sql`(SELECT user_id FROM room_members WHERE room_id = ${roomId} AND user_id <> ${leavingId} ORDER BY joined_at, user_id LIMIT 1)`),
      ),
    );
}

/** Mutes or unmutes the room for its member (read by push delivery). */
export async function setMuted(db: Database, roomId: string, userId: string, muted: boolean): Promise<Member & { muted: boolean }> {
  const row = await db.update(roomMembers).set({ muted }).where(and(eq(roomMembers.roomId, roomId), eq(roomMembers.userId, userId))).returning().get();
  if (!row) throw new AppError("not_found", "No such room.");
  return { ...toMember(row), muted: row.muted };
}

/**
 * True when `userId` may attach `fileId`: the file exists (fully uploaded) and is public or theirs.
 * Reads the files feature's `files` table (id, owner_id, visibility, status) directly; a missing
 * table means no file is allowed.
 */
export async function mayAttachFile(db: Database, userId: string, fileId: string): Promise<boolean> {
  try {
    const row = await db.get<{ ok: number }>(sql`SELECT 1 AS ok FROM files WHERE id = ${fileId} AND status = 'ready' AND (visibility = 'public' OR owner_id = ${userId}) LIMIT 1`);
    return row?.ok === 1;
  } catch (e) {
    if (e instanceof Error && /no such table/i.test(`${e.message} ${String(e.cause ?? "")}`)) return false;
    throw e;
  }
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
          members: sql<string | null>`CASE WHEN ${wantPush} THEN (SELECT json_group_array(user_id) FROM room_members WHERE room_id = ${f.roomId}) END`,
          names: sql<string | null>`CASE WHEN ${wantPush} THEN (SELECT json_group_object(id, name) FROM users WHERE id IN (SELECT value FROM json_each(${JSON.stringify(f.senders)}))) END`,
        }),
    );
  }
  for (const part of chunks([...f.reads], READS_PER_STATEMENT)) {
    const positions = JSON.stringify(Object.fromEntries(part));
    items.push(
      db
        .update(roomMembers)
        .set({ lastReadSeq: sql`max(${roomMembers.lastReadSeq}, (SELECT value FROM json_each(${positions}) WHERE key = ${roomMembers.userId}))` })
        .where(and(eq(roomMembers.roomId, f.roomId), inArray(roomMembers.userId, sql`(SELECT key FROM json_each(${positions}))`))),
    );
  }
  if (items.length === 0) return null;
  const results = await runBatch(db, items);
  if (!wantPush) return null;
  const row = (results[0] as { kind: "direct" | "group"; name: string | null; members: string | null; names: string | null }[])[0];
  if (!row) return { kind: "group", name: null, memberIds: [], senderNames: new Map() };
  const names = JSON.parse(row.names ?? "{}") as Record<string, string | null>;
  return { kind: row.kind, name: row.name, memberIds: JSON.parse(row.members ?? "[]") as string[], senderNames: new Map(Object.entries(names)) };
}

/**
 * What the room object checks before it accepts an upgrade, in one query: whether `userId` is a
 * member of the room now, and whether the session the socket is opened with still exists (an
 * access token outlives a logout by up to its lifetime; the socket must not).
 */
export async function upgradeCheck(db: Database, roomId: string, userId: string, sessionId: string): Promise<{ member: boolean; session: boolean }> {
  const row = await db.get<{ member: number | null; session: number | null }>(sql`SELECT
    (SELECT 1 FROM room_members WHERE room_id = ${roomId} AND user_id = ${userId}) AS member,
    (SELECT 1 FROM sessions WHERE id = ${sessionId} AND user_id = ${userId} AND expires_at > ${nowIso()}) AS session`);
  return { member: row?.member === 1, session: row?.session === 1 };
}

/**
 * The room's heartbeat re-check, in one D1 round trip: the user ids that are members of the room
 * now, and which of `sessionIds` (the sessions of the room's open sockets) still exist.
 */
export async function liveMembersAndSessions(db: Database, roomId: string, sessionIds: string[]): Promise<{ members: Set<string>; sessions: Set<string> }> {
  const [members, ...found] = await db.batch([
    db.select({ userId: roomMembers.userId }).from(roomMembers).where(eq(roomMembers.roomId, roomId)),
    ...chunks(sessionIds, IN_CHUNK).map((ids) => db.select({ id: sessions.id }).from(sessions).where(and(inArray(sessions.id, ids), gt(sessions.expiresAt, nowIso())))),
  ]);
  return { members: new Set(members.map((m) => m.userId)), sessions: new Set(found.flat().map((s) => s.id)) };
}

/** The rooms `userId` is a member of (room_members_user_idx): where their sockets can be. */
export async function roomIdsOf(db: Database, userId: string): Promise<string[]> {
  return (await db.select({ roomId: roomMembers.roomId }).from(roomMembers).where(eq(roomMembers.userId, userId))).map((r) => r.roomId);
}

/**
 * Account deletion: the user's memberships go in the deletion batch (groups they owned get a new
 * owner); afterwards every room they were in closes their sockets. Their messages stay, attributed
 * to the deleted user id.
 */
export async function deletionPlanFor(db: Database, userId: string): Promise<{ roomIds: string[]; statements: BatchItem<"sqlite">[] }> {
  const mine = await db.select({ roomId: roomMembers.roomId, role: roomMembers.role }).from(roomMembers).where(eq(roomMembers.userId, userId));
  return {
    roomIds: mine.map((m) => m.roomId),
    statements: [
      ...mine.filter((m) => m.role === "owner").map((m) => promoteOldestMember(db, m.roomId, userId)),
      db.delete(roomMembers).where(eq(roomMembers.userId, userId)),
    ],
  };
}
