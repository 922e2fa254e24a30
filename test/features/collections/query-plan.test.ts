import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createDb } from "../../../src/db";
import { findCollection } from "../../../src/features/collections/registry";
import { type Access, changesQuery, getQuery, listQuery } from "../../../src/features/collections/service";
import { signup } from "../../helpers/api";
import { createNote, createPost, list } from "./helpers";

const db = createDb(env.DB);
const notes = findCollection("notes")!;
const posts = findCollection("posts")!;

/** SQLite's plan for the exact statement the service runs. */
async function plan(q: { toSQL(): { sql: string; params: unknown[] } }): Promise<string> {
  const { sql, params } = q.toSQL();
  const res = await env.DB.prepare(`EXPLAIN QUERY PLAN ${sql}`)
    .bind(...params)
    .all<{ detail: string }>();
  return res.results.map((r) => r.detail).join("\n");
}

/** Asserts every table access goes through an index and no sort happens after the fact. */
function expectIndexed(p: string, ...indexes: string[]) {
  for (const ix of indexes) expect(p).toContain(`USING INDEX ${ix}`);
  expect(p).not.toMatch(/SCAN \S+(?! USING (COVERING )?INDEX)$/m);
  expect(p).not.toContain("USE TEMP B-TREE");
}

describe("collections: the hot queries use indexes", () => {
  it("read by id", async () => {
    const user = await signup();
    const note = await createNote(user);
    const own: Access = { kind: "own", userId: user.id };
    expectIndexed(await plan(getQuery(db, notes, own, note.id)), "sqlite_autoindex_app_notes_1");
    expectIndexed(await plan(getQuery(db, posts, { kind: "all" }, note.id)), "sqlite_autoindex_app_posts_1");
  });

  it("list by owner with sort, first page and after a cursor", async () => {
    const user = await signup();
    for (let i = 0; i < 3; i++) await createNote(user, { title: `n${i}` });
    const own: Access = { kind: "own", userId: user.id };
    const first = await plan(listQuery(db, notes, own, { sort: "-createdAt", limit: 50 }));
    expectIndexed(first, "app_notes_owner_created_idx");
    expect(first).toContain("SEARCH app_notes");

    const page = await list("notes", user.accessToken, { limit: "1" });
    const next = await plan(listQuery(db, notes, own, { sort: "-createdAt", limit: 1, cursor: page.body.nextCursor }));
    expectIndexed(next, "app_notes_owner_created_idx");
    // the cursor is a range bound on the index, not a filter over the pages before it
    expect(next).toMatch(/app_notes_owner_created_idx \(owner_id=\? AND \(created_at,id\)<\(\?,\?\)\)/);

    expectIndexed(await plan(listQuery(db, notes, own, { sort: "updatedAt", limit: 50 })), "app_notes_owner_updated_idx");
  });

  it("list of a public collection, newest first", async () => {
    const user = await signup();
    await createPost(user);
    expectIndexed(await plan(listQuery(db, posts, { kind: "all" }, { sort: "-createdAt", limit: 50 })), "app_posts_created_idx");
  });

  it("changes since a cursor, for one owner and for everyone", async () => {
    const user = await signup();
    await createNote(user);
    const own = await plan(changesQuery(db, notes, { kind: "own", userId: user.id }, 0, 50));
    expectIndexed(own, "record_changes_owner_seq_idx", "sqlite_autoindex_app_notes_1");
    expect(own).toMatch(/SEARCH record_changes USING INDEX record_changes_owner_seq_idx \(collection=\? AND owner_id=\? AND seq>\?\)/);
    const all = await plan(changesQuery(db, posts, { kind: "all" }, 0, 50));
    expectIndexed(all, "record_changes_collection_seq_idx", "sqlite_autoindex_app_posts_1");
  });
});
