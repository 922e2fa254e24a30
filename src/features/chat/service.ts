/**
 * What the ChatRoom object asks of D1: the mirror of its newest message and read positions, the
 * upgrade check, and the heartbeat's re-check of members and sessions. The log is the object's own.
 */
import { and, eq, inArray, sql } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import { type Database, runBatch } from "../../db";
import { roomMembers, rooms } from "../../db/schema";
import { chunks, IN_CHUNK } from "../../lib/chunks";
import { liveSessionsQuery, sessionLiveSql, userNamesJsonSql } from "../auth";
import type { Message } from "./protocol";

/** What one flush of a room writes to D1 (see `mirrorFlush`). */
export interface MirrorFlush {
  roomId: string;
  /**
   * The room's newest message as its log holds it now (a tombstone if deleted); null when the listing needs no change.
   */
  last: Message | null;
  /** Read positions to move forward (never back), by user id. */
  reads: ReadonlyMap<string, number>;
  /**
   * Senders of the messages this flush builds push jobs for (their names go in the notification); empty = no push job.
   */
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
          lastMessage: sql`CASE WHEN ${rooms.lastSeq} <= ${m.seq} THEN ${JSON.stringify(m)}
                           ELSE ${rooms.lastMessage} END`,
          lastActivityAt: sql`CASE WHEN ${rooms.lastSeq} < ${m.seq} THEN ${m.createdAt}
                              ELSE ${rooms.lastActivityAt} END`,
          lastSeq: sql`max(${rooms.lastSeq}, ${m.seq})`,
        })
        .where(eq(rooms.id, f.roomId))
        .returning({
          kind: rooms.kind,
          name: rooms.name,
          members: sql<string | null>`CASE WHEN ${wantPush}
            THEN (SELECT json_group_array(user_id) FROM room_members WHERE room_id = ${f.roomId}) END`,
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
          lastReadSeq: sql`max(${roomMembers.lastReadSeq},
            (SELECT value FROM json_each(${positions}) WHERE key = ${roomMembers.userId}))`,
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
