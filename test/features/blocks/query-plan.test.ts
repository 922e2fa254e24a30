/**
 * EXPLAIN QUERY PLAN for the statements blocks, room limits and push recipients run: every table access goes
 * through an index.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createDb } from "../../../src/db";
import { blockersAmongQuery, blocksDeletionHook, listBlocksQuery } from "../../../src/features/blocks/service";
import {
  addCheckQuery,
  callerQuery,
  peopleQuery,
  recordAdds,
  rejoinCheckQuery,
  utcDay,
} from "../../../src/features/chat/add-checks";
import { deletionPlanFor } from "../../../src/features/chat/members";
import { signup } from "../../helpers/api";
import { explain } from "../../helpers/query-plan";
import { block } from "./helpers";

const db = createDb(env.DB);

type Q = { toSQL(): { sql: string; params: unknown[] } } | { getQuery(): { sql: string; params: unknown[] } };
const sqlOf = (q: Q) => ("toSQL" in q ? q.toSQL() : q.getQuery());

/** SQLite's plan for the exact statement the service runs. */
async function plan(q: Q): Promise<string> {
  const { sql, params } = sqlOf(q);
  return explain(sql, params);
}

/**
 * Every table access goes through an index (json_each is a table-valued function and CONSTANT ROW a FROM-less
 * SELECT, neither a table), and no sort after the fact.
 */
function expectIndexed(p: string, ...indexes: string[]) {
  for (const ix of indexes) expect(p).toContain(ix);
  for (const line of p.split("\n")) {
    if (
      /^SCAN /.test(line) &&
      !/^SCAN (json_each VIRTUAL TABLE|CONSTANT ROW)/.test(line) &&
      !/USING (COVERING )?INDEX/.test(line)
    )
      throw new Error(`full scan: ${line}\n${p}`);
  }
  expect(p).not.toContain("USE TEMP B-TREE");
}

describe("blocks and room limits: the queries use indexes", () => {
  it("the blocker's list, first page and after a cursor", async () => {
    const [alice, bob] = [await signup(), await signup()];
    await block(alice, bob.id);
    expectIndexed(await plan(listBlocksQuery(db, alice.id, 50, null)), "blocks_blocker_created_idx");
    const next = await plan(listBlocksQuery(db, alice.id, 50, { at: new Date().toISOString(), id: bob.id }));
    expectIndexed(next, "blocks_blocker_created_idx");
    expect(next).toMatch(/blocks_blocker_created_idx \(blocker_id=\? AND \(created_at,blocked_id\)<\(\?,\?\)\)/);
  });

  it("push: who among the recipients blocked the sender (one statement per job)", async () => {
    const p = await plan(blockersAmongQuery(db, "sender", ["a", "b", "c"]));
    expect(p).toMatch(/SEARCH blocks USING (COVERING )?INDEX (sqlite_autoindex_blocks_1|blocks_blocked_idx)/);
    expectIndexed(p);
    expect(
      sqlOf(
        blockersAmongQuery(
          db,
          "sender",
          Array.from({ length: 1000 }, (_, i) => `u${i}`),
        ),
      ).params,
    ).toHaveLength(2);
  });

  // The people named (blocks both ways, today's adds), then the caller's side.
  it("room creation: the people and caller queries use indexes and few bound parameters", async () => {
    const ids = Array.from({ length: 100 }, (_, i) => `u${i}`);
    const day = utcDay(Date.now());
    const people = await plan(peopleQuery(db, "me", ids, day));
    expectIndexed(people, "sqlite_autoindex_users_1", "sqlite_autoindex_blocks_1", "sqlite_autoindex_room_adds_1");
    expect(sqlOf(peopleQuery(db, "me", ids, day)).params.length).toBeLessThanOrEqual(10);
    const caller = await plan(callerQuery(db, "me", day, "a:b"));
    expectIndexed(
      caller,
      "sqlite_autoindex_users_1",
      "sqlite_autoindex_room_adds_1",
      "rooms_direct_key_unique",
      "sqlite_autoindex_room_members_1",
    );
  });

  it("adding a member and rejoining: one statement each, all lookups by key", async () => {
    const day = utcDay(Date.now());
    expectIndexed(
      await plan(addCheckQuery(db, "room", "me", "them", day)),
      "sqlite_autoindex_users_1",
      "sqlite_autoindex_room_members_1",
      "sqlite_autoindex_blocks_1",
      "sqlite_autoindex_room_leaves_1",
      "sqlite_autoindex_room_adds_1",
    );
    expectIndexed(
      await plan(rejoinCheckQuery(db, "room", "me")),
      "sqlite_autoindex_room_leaves_1",
      "sqlite_autoindex_room_members_1",
    );
    const [record, dropOld] = recordAdds(db, "me", day, ["a", "b"]) as unknown as [Q, Q];
    expectIndexed(await plan(record));
    expectIndexed(await plan(dropOld), "sqlite_autoindex_room_adds_1");
  });

  it("account deletion removes blocks, leave records and add counts by index", async () => {
    const [byBlocker, byBlocked] = (await blocksDeletionHook({ env, db, userId: "gone" })).statements as unknown as [
      Q,
      Q,
    ];
    const chatPlan = (await deletionPlanFor(db, "gone")).statements as unknown as Q[];
    const [leaves, adds] = chatPlan.slice(-2) as [Q, Q];
    expectIndexed(await plan(byBlocker));
    expect(await plan(byBlocker)).toMatch(/SEARCH blocks USING (COVERING )?INDEX \S+ \(blocker_id=\?\)/);
    expectIndexed(await plan(byBlocked), "blocks_blocked_idx");
    expectIndexed(await plan(leaves), "room_leaves_user_idx");
    expectIndexed(await plan(adds), "sqlite_autoindex_room_adds_1");
  });
});
