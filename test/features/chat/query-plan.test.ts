/** The D1 queries that ending sessions and the room's heartbeat add use indexes; so do the room's own. */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { LOG_SQL } from "../../../src/features/chat/room-log";
import { signup } from "../../helpers/api";
import { createGroup, roomStub, sendRest } from "./helpers";

async function plan(sql: string, ...params: unknown[]): Promise<string> {
  const res = await env.DB.prepare(`EXPLAIN QUERY PLAN ${sql}`)
    .bind(...params)
    .all<{ detail: string }>();
  return res.results.map((r) => r.detail).join("\n");
}

/** Every table access is a SEARCH (by an index or the primary key), never a full SCAN. */
function expectSearches(p: string) {
  expect(p).toMatch(/SEARCH/);
  expect(p).not.toMatch(/^SCAN (?!CONSTANT ROW)/m);
}

describe("chat: a room's coalesced D1 flush is indexed", () => {
  it("the room's last message (with members and sender names read back) and the read positions", async () => {
    const alice = await signup();
    const room = await createGroup(alice);
    const positions = JSON.stringify({ [alice.id]: 3 });
    const update = await plan(
      `UPDATE rooms SET last_seq = max(last_seq, ?) WHERE id = ? RETURNING kind, name,
        (SELECT json_group_array(user_id) FROM room_members WHERE room_id = ?) AS members,
        (SELECT json_group_object(id, name) FROM users WHERE id IN (SELECT value FROM json_each(?))) AS names`,
      3,
      room.id,
      room.id,
      JSON.stringify([alice.id]),
    );
    expect(update).toMatch(/SEARCH rooms USING (?:INDEX sqlite_autoindex_rooms_1|INTEGER PRIMARY KEY|PRIMARY KEY)/);
    expect(update).toMatch(/SEARCH room_members/);
    expect(update).toMatch(/SEARCH users/);
    const reads = await plan(
      "UPDATE room_members SET last_read_seq = max(room_members.last_read_seq, " +
        "(SELECT value FROM json_each(?) WHERE key = room_members.user_id)) " +
        "WHERE room_members.room_id = ? " +
        "AND room_members.user_id IN (SELECT key FROM json_each(?))",
      positions,
      room.id,
      positions,
    );
    expect(reads).toMatch(/SEARCH room_members USING (COVERING INDEX|INDEX|PRIMARY KEY)/);
    expect(reads).not.toMatch(/^SCAN room_members/m);
  });
});

describe("chat: session and heartbeat queries are indexed", () => {
  it("the rooms of a user (ending a session's sockets)", async () => {
    const alice = await signup();
    await createGroup(alice);
    const p = await plan("SELECT room_id FROM room_members WHERE user_id = ?", alice.id);
    expectSearches(p);
    expect(p).toContain("room_members_user_idx");
  });

  it("which sessions of a room's sockets still exist (heartbeat) and the upgrade check", async () => {
    const ids = Array.from({ length: 90 }, () => crypto.randomUUID());
    expectSearches(
      await plan(
        `SELECT id FROM sessions WHERE id IN (${ids.map(() => "?").join(",")}) AND expires_at > ?`,
        ...ids,
        new Date().toISOString(),
      ),
    );
    expectSearches(await plan("SELECT user_id FROM room_members WHERE room_id = ?", "r"));
    expectSearches(
      await plan(
        "SELECT (SELECT 1 FROM room_members WHERE room_id = ? AND user_id = ?) AS member, " +
          "(SELECT 1 FROM sessions WHERE id = ? AND user_id = ? AND expires_at > ?) AS session",
        "r",
        "u",
        "s",
        "u",
        new Date().toISOString(),
      ),
    );
  });
});

describe("chat: the room's reads of its own log search by seq", () => {
  // The statements the mirror watermark brings: read positions with unflushed own messages, the
  // flush's range and its settling of senders' positions, the owed check.
  it("readOf, the flush's range and hasPending", async () => {
    const alice = await signup();
    const room = await createGroup(alice);
    expect((await sendRest(alice, room.id, "one")).status).toBe(201);
    const plans = await runInDurableObject(roomStub(room.id), (_o, state) => {
      const plan = (sql: string, ...params: SqlStorageValue[]) =>
        state.storage.sql
          .exec<{ detail: string }>(`EXPLAIN QUERY PLAN ${sql}`, ...params)
          .toArray()
          .map((r) => r.detail)
          .join("\n");
      return [
        plan(LOG_SQL.readOf, "u", 0),
        plan(LOG_SQL.settleSenderReads, 0),
        plan(LOG_SQL.unflushed, 0),
        plan(`SELECT ${LOG_SQL.anyUnflushed} AS p`, 0),
      ];
    });
    for (const p of plans) {
      expect(p).toMatch(/SEARCH messages USING INTEGER PRIMARY KEY \(rowid>\?\)/);
      expect(p).not.toMatch(/SCAN messages/);
    }
    expect(plans[0]).toMatch(/SEARCH reads USING INDEX sqlite_autoindex_reads_1 \(user_id=\?\)/);
  });
});
