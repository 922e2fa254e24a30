/**
 * References (`field.ref`, API.md "Relations, counts and search"): a reference must name a record
 * the caller may read (400 naming the field otherwise), a list filters on it across owners through
 * its index, and deleting the referenced record applies `onDelete` in the same batch: `cascade`
 * (comments of a post, 1,000 of them too), `setNull` (replies of a comment), `restrict` (items of a
 * list: 409).
 */
import { env } from "cloudflare:workers";
import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { createDb } from "../../../src/db";
import { planList } from "../../../src/features/collections/reads";
import { findCollection } from "../../../src/features/collections/registry";
import { api, expectProblem, signup, type TestUser } from "../../helpers/api";
import { explain } from "../../helpers/query-plan";
import { createTeam, listIn, memberAs } from "../teams/helpers";
import { createPost, list } from "./helpers";
import { subscribe } from "./live-helpers";

const COMMENTS = "/v1/collections/comments/records";

async function comment(user: TestUser, postId: string, text = "nice", replyTo?: string) {
  const res = await api(COMMENTS, { token: user.accessToken, body: { postId, text, ...(replyTo ? { replyTo } : {}) } });
  expect(res.status, res.text).toBe(201);
  return res.body as { id: string; postId: string; replyTo: string | null; version: number };
}

const rowCount = async (table: string, where: string, ...bind: unknown[]) =>
  (await env.DB.prepare(`SELECT count(*) AS n FROM ${table} WHERE ${where}`)
    .bind(...bind)
    .first<number>("n")) ?? 0;

describe("references: what a write may point at", () => {
  it("a comment names an existing post; a missing one is a 400 naming the field, and nothing is written", async () => {
    const [author, reader] = [await signup(), await signup()];
    const post = await createPost(author);
    const c = await comment(reader, post.id);
    expect(c).toMatchObject({ postId: post.id, replyTo: null });
    const missing = await api(COMMENTS, { token: reader.accessToken, body: { postId: "no-such-post", text: "x" } });
    expectProblem(missing, 400, "validation_failed");
    expect(missing.body.errors).toEqual([{ path: "postId", message: expect.stringContaining("no such posts record") }]);
    const bad = await api(`${COMMENTS}/${c.id}`, {
      method: "PATCH",
      token: reader.accessToken,
      body: { replyTo: "no-such-comment" },
    });
    expectProblem(bad, 400, "validation_failed");
    expect(bad.body.errors[0].path).toBe("replyTo");
    expect(await rowCount("app_comments", "owner_id = ?", reader.id)).toBe(1);
  });

  it("a reference to a record the caller cannot read is refused like a missing one (another team's list)", async () => {
    const owner = await signup();
    const mine = await createTeam(owner, "Mine");
    const theirs = await createTeam(await signup(), "Theirs");
    const ok = await api("/v1/collections/items/records", {
      token: owner.accessToken,
      body: { teamId: mine.id, listId: await listIn(mine.id), text: "milk" },
    });
    expect(ok.status, ok.text).toBe(201);
    const foreign = await api("/v1/collections/items/records", {
      token: owner.accessToken,
      body: { teamId: mine.id, listId: await listIn(theirs.id), text: "milk" },
    });
    expectProblem(foreign, 400, "validation_failed");
    expect(foreign.body.errors[0].path).toBe("listId");
  });

  it("in a batch: a post made earlier in the batch may be referenced; a missing one names the operation's field", async () => {
    const user = await signup();
    const postId = crypto.randomUUID();
    const ok = await api("/v1/batch", {
      token: user.accessToken,
      body: {
        operations: [
          { op: "create", collection: "posts", id: postId, data: { text: "batched" } },
          { op: "create", collection: "comments", data: { postId, text: "first!" } },
        ],
      },
    });
    expect(ok.status, ok.text).toBe(200);
    const bad = await api("/v1/batch", {
      token: user.accessToken,
      body: {
        operations: [
          { op: "create", collection: "comments", data: { postId, text: "fine" } },
          { op: "create", collection: "comments", data: { postId: "nope", text: "not fine" } },
        ],
      },
    });
    expectProblem(bad, 400, "validation_failed");
    expect(bad.body.errors[0].path).toBe("operations.1.data.postId");
    expect(await rowCount("app_comments", "post_id = ?", postId)).toBe(1);
  });
});

describe("references: lists and deletes", () => {
  it("the comments of one post, whoever wrote them, through the reference's index", async () => {
    const post = await createPost(await signup());
    const others = [await signup(), await signup()];
    const made = [await comment(others[0]!, post.id, "a"), await comment(others[1]!, post.id, "b")];
    await comment(others[0]!, (await createPost(others[1]!)).id, "elsewhere");
    const res = await list("comments", null, { where: { postId: post.id }, sort: "createdAt" });
    expect(res.body.items.map((c: { id: string }) => c.id)).toEqual(made.map((c) => c.id));
    const col = findCollection("comments")!;
    const o = { where: { postId: post.id }, sort: "-createdAt" };
    expect(planList(col, { kind: "all" }, o).index.name).toBe("app_comments_post_id_created_idx");
    const { listQuery } = await import("../../../src/features/collections/reads");
    const q = listQuery(createDb(env.DB), col, { kind: "all" }, { ...o, limit: 20 }).toSQL();
    const p = await explain(q.sql, q.params);
    expect(p).toContain("app_comments_post_id_created_idx");
    expect(p).not.toContain("USE TEMP B-TREE");
  });

  it("deleting a post deletes its comments (tombstones in /changes and on live sockets) and nulls replies' links", async () => {
    const author = await signup();
    const reader = await signup();
    const post = await createPost(author);
    const other = await createPost(author);
    const first = await comment(reader, post.id, "first");
    const reply = await comment(author, other.id, "a reply elsewhere", first.id);
    const feed = await api("/v1/collections/comments/changes", { token: reader.accessToken });
    const live = await subscribe(reader, "comments", { since: feed.body.nextCursor });
    const del = await api(`/v1/collections/posts/records/${post.id}`, { method: "DELETE", token: author.accessToken });
    expect(del.status, del.text).toBe(204);
    expect(await rowCount("app_comments", "post_id = ?", post.id)).toBe(0);
    const after = await api(`/v1/collections/comments/changes?since=${feed.body.nextCursor}`, {
      token: reader.accessToken,
    });
    expect(after.body.items).toEqual(
      expect.arrayContaining([
        { id: first.id, deleted: true, version: 2 },
        expect.objectContaining({ id: reply.id, replyTo: null, version: 2 }),
      ]),
    );
    const frames = await live.socket.changes(2);
    expect(frames.map((f) => f.item.id).sort()).toEqual([first.id, reply.id].sort());
  });

  it("a cascade of 1,000 comments stays within D1's limits: one delete, 1,000 tombstones", async () => {
    const author = await signup();
    const post = await createPost(author);
    const now = new Date().toISOString();
    const ids = Array.from({ length: 1000 }, () => crypto.randomUUID());
    for (let i = 0; i < ids.length; i += 100)
      await env.DB.batch(
        ids
          .slice(i, i + 100)
          .flatMap((id) => [
            env.DB.prepare(
              "INSERT INTO app_comments (id, owner_id, created_at, updated_at, version, post_id, text) VALUES (?, ?, ?, ?, 1, ?, 'x')",
            ).bind(id, author.id, now, now, post.id),
            env.DB.prepare(
              "INSERT INTO record_changes (collection, record_id, owner_id, version, deleted, changed_at) VALUES ('comments', ?, ?, 1, 0, ?)",
            ).bind(id, author.id, now),
          ]),
      );
    const del = await api(`/v1/collections/posts/records/${post.id}`, { method: "DELETE", token: author.accessToken });
    expect(del.status, del.text).toBe(204);
    expect(await rowCount("app_comments", "post_id = ?", post.id)).toBe(0);
    expect(
      await rowCount("record_changes", "collection = 'comments' AND deleted = 1 AND owner_id = ?", author.id),
    ).toBe(1000);
  });

  it("restrict: a list with items cannot be deleted (409, nothing deleted); once empty it can", async () => {
    const owner = await signup();
    const team = await createTeam(owner);
    const member = await memberAs(owner, team.id, "member");
    const listRes = await api("/v1/collections/lists/records", {
      token: owner.accessToken,
      body: { teamId: team.id, title: "Weekend" },
    });
    const listId = listRes.body.id as string;
    const item = await api("/v1/collections/items/records", {
      token: member.accessToken,
      body: { teamId: team.id, listId, text: "eggs" },
    });
    expect(item.status).toBe(201);
    const refused = await api(`/v1/collections/lists/records/${listId}`, {
      method: "DELETE",
      token: owner.accessToken,
    });
    expectProblem(refused, 409, "conflict");
    expect(refused.text).toContain("items");
    expect(await rowCount("app_lists", "id = ?", listId)).toBe(1);
    // The same in a batch: the operation is named.
    const batch = await api("/v1/batch", {
      token: owner.accessToken,
      body: { operations: [{ op: "delete", collection: "lists", id: listId }] },
    });
    expectProblem(batch, 409, "conflict");
    expect(batch.body.errors[0].path).toBe("operations.0");
    await api(`/v1/collections/items/records/${item.body.id}`, { method: "DELETE", token: member.accessToken });
    const ok = await api(`/v1/collections/lists/records/${listId}`, { method: "DELETE", token: owner.accessToken });
    expect(ok.status, ok.text).toBe(204);
  });

  it("deleting an account deletes the comments on its posts (cascade), whoever wrote them", async () => {
    const author = await signup();
    const reader = await signup();
    const post = await createPost(author);
    await comment(reader, post.id);
    expect((await api("/v1/me", { method: "DELETE", token: author.accessToken })).status).toBe(204);
    expect(await rowCount("app_comments", "post_id = ?", post.id)).toBe(0);
    expect(await rowCount("app_comments", "owner_id = ?", reader.id)).toBe(0);
    // The service key can still list comments: none points at a missing post.
    const orphans = await env.DB.prepare(
      "SELECT count(*) AS n FROM app_comments c WHERE NOT EXISTS (SELECT 1 FROM app_posts p WHERE p.id = c.post_id)",
    ).first<number>("n");
    expect(orphans).toBe(0);
  });
});

describe("?expand=", () => {
  it("a comment expands its post and the reply it answers; a list with expands is one round trip", async () => {
    const author = await signup();
    const post = await createPost(author, "the post");
    const first = await comment(author, post.id, "first");
    const reply = await comment(author, post.id, "reply", first.id);
    const one = await api(`${COMMENTS}/${reply.id}?expand=postId,replyTo`, { token: author.accessToken });
    expect(one.status, one.text).toBe(200);
    expect(one.body.expand.postId).toMatchObject({ id: post.id, text: "the post" });
    expect(one.body.expand.replyTo).toMatchObject({ id: first.id, text: "first" });
    expect(one.headers.get("etag")).toBeNull();
    const page = await list("comments", null, {
      where: { postId: post.id },
      expand: "postId,replyTo",
      sort: "createdAt",
    });
    expect(
      page.body.items.map((c: { expand: Record<string, { id: string } | null> }) => c.expand.replyTo?.id ?? null),
    ).toEqual([null, first.id]);
    expect(page.body.items.every((c: { expand: { postId: { id: string } } }) => c.expand.postId.id === post.id)).toBe(
      true,
    );
    // The list walks the reference's index; each expand is a primary-key lookup of its target.
    const { listQuery } = await import("../../../src/features/collections/reads");
    const { expandColumns } = await import("../../../src/features/collections/expand");
    const col = findCollection("comments")!;
    const q = listQuery(
      createDb(env.DB),
      col,
      { kind: "all" },
      { where: { postId: post.id }, sort: "-createdAt", limit: 20 },
      expandColumns(col, null, ["postId", "replyTo"]),
    ).toSQL();
    const p = await explain(q.sql, q.params);
    expect(p).toContain("SEARCH app_comments USING INDEX app_comments_post_id_created_idx (post_id=?)");
    expect(p).toMatch(/SEARCH _x0 USING INDEX sqlite_autoindex_app_posts_1 \(id=\?\)/);
    expect(p).toMatch(/SEARCH _x1 USING INDEX sqlite_autoindex_app_comments_1 \(id=\?\)/);
    expect(p).not.toContain("TEMP B-TREE");
    // Not a reference field, or unknown: 400.
    expectProblem(await list("comments", null, { expand: "text" }), 400, "validation_failed");
  });

  it("never reveals what the caller cannot read: another user's private note, a team the caller left", async () => {
    const author = await signup();
    const note = await api("/v1/collections/notes/records", { token: author.accessToken, body: { title: "draft" } });
    const post = await api("/v1/collections/posts/records", {
      token: author.accessToken,
      body: { text: "published", fromNoteId: note.body.id },
    });
    expect(post.status, post.text).toBe(201);
    const path = `/v1/collections/posts/records/${post.body.id}?expand=fromNoteId`;
    expect((await api(path, { token: author.accessToken })).body.expand.fromNoteId).toMatchObject({ title: "draft" });
    const stranger = await signup();
    expect((await api(path, { token: stranger.accessToken })).body.expand).toEqual({ fromNoteId: null });
    expect((await api(path, { token: null })).body.expand).toEqual({ fromNoteId: null });
    // Someone else's note cannot even be referenced.
    const theft = await api("/v1/collections/posts/records", {
      token: stranger.accessToken,
      body: { text: "mine now", fromNoteId: note.body.id },
    });
    expectProblem(theft, 400, "validation_failed");

    const owner = await signup();
    const team = await createTeam(owner);
    const member = await memberAs(owner, team.id, "member");
    const listId = await listIn(team.id);
    const mine = await api("/v1/collections/notes/records", {
      token: member.accessToken,
      body: { title: "what to buy", listId },
    });
    const read = () =>
      api(`/v1/collections/notes/records/${mine.body.id}?expand=listId`, { token: member.accessToken });
    expect((await read()).body.expand.listId).toMatchObject({ id: listId, title: "Groceries" });
    await api(`/v1/teams/${team.id}/members/me`, { method: "DELETE", token: member.accessToken });
    expect((await read()).body.expand).toEqual({ listId: null });
    const listed = await list("notes", member.accessToken, { expand: "listId" });
    expect(listed.body.items[0].expand).toEqual({ listId: null });
  });

  it("a user reference expands to the public profile only", async () => {
    // The example app declares no user reference: the statement is checked directly.
    const user = await signup({ name: "Ada" });
    const { publicProfilesQuery } = await import("../../../src/features/auth");
    const rows = await publicProfilesQuery(createDb(env.DB), sql`(SELECT ${user.id})`);
    expect(rows).toEqual([{ id: user.id, name: "Ada", avatarFileId: null }]);
  });
});

describe("field.count: posts.commentCount", () => {
  const count = async (postId: string) =>
    (await api(`/v1/collections/posts/records/${postId}`, { token: null })).body as {
      commentCount: number;
      version: number;
    };

  it("follows creates, deletes, batches and moves, as new versions of the post; clients cannot set it", async () => {
    const author = await signup();
    const reader = await signup();
    const post = await createPost(author);
    const other = await createPost(author);
    expect(await count(post.id)).toMatchObject({ commentCount: 0, version: 1 });
    const c1 = await comment(reader, post.id);
    await comment(author, post.id);
    expect(await count(post.id)).toMatchObject({ commentCount: 2, version: 3 });
    const ops = Array.from({ length: 3 }, (_, i) => ({
      op: "create",
      collection: "comments",
      data: { postId: post.id, text: `b${i}` },
    }));
    expect((await api("/v1/batch", { token: reader.accessToken, body: { operations: ops } })).status).toBe(200);
    expect((await count(post.id)).commentCount).toBe(5);
    await api(`${COMMENTS}/${c1.id}`, { method: "PATCH", token: reader.accessToken, body: { postId: other.id } });
    expect((await count(post.id)).commentCount).toBe(4);
    expect((await count(other.id)).commentCount).toBe(1);
    await api(`${COMMENTS}/${c1.id}`, { method: "DELETE", token: reader.accessToken });
    expect((await count(other.id)).commentCount).toBe(0);
    // The feed carries the post's new versions.
    const feed = await api("/v1/collections/posts/changes?limit=200", { token: author.accessToken });
    const seen = feed.body.items.find((x: { id: string }) => x.id === post.id);
    expect(seen).toMatchObject({ commentCount: 4 });
    for (const body of [{ commentCount: 9 }]) {
      const res = await api(`/v1/collections/posts/records/${post.id}`, {
        method: "PATCH",
        token: author.accessToken,
        body,
      });
      expectProblem(res, 400, "validation_failed");
      expect(res.text).toContain("kept by the server");
    }
    const made = await api("/v1/collections/posts/records", {
      token: author.accessToken,
      body: { text: "x", commentCount: 3 },
    });
    expectProblem(made, 400, "validation_failed");
  });

  it("a post with comments deletes with If-Match (its count changes as the cascade runs)", async () => {
    const author = await signup();
    const post = await createPost(author);
    await comment(author, post.id);
    const now = await count(post.id);
    const stale = await api(`/v1/collections/posts/records/${post.id}`, {
      method: "DELETE",
      token: author.accessToken,
      headers: { "if-match": `"${now.version - 1}"` },
    });
    expectProblem(stale, 412, "version_conflict");
    expect(await rowCount("app_comments", "post_id = ?", post.id)).toBe(1);
    const ok = await api(`/v1/collections/posts/records/${post.id}`, {
      method: "DELETE",
      token: author.accessToken,
      headers: { "if-match": `"${now.version}"` },
    });
    expect(ok.status, ok.text).toBe(204);
    expect(await rowCount("app_comments", "post_id = ?", post.id)).toBe(0);
  });
});

describe("references: query plans of the new statements", () => {
  /** Every line of a plan reads a table through an index or its primary key (no full scan). */
  const indexedOnly = (p: string) => {
    for (const line of p.split("\n").filter((l) => /^(SCAN|SEARCH) /.test(l)))
      expect(line, p).toMatch(/USING (COVERING )?INDEX|USING INTEGER PRIMARY KEY|^SCAN CONSTANT ROW/);
  };

  it("deleting a post: the cascade finds its comments (and their replies) through the reference's index", async () => {
    const db = createDb(env.DB);
    const { onDeletePlan } = await import("../../../src/features/collections/references");
    const { logChange } = await import("../../../src/features/collections/writes");
    const posts = findCollection("posts")!;
    const plan = onDeletePlan(
      db,
      "posts",
      sql`(SELECT ${posts.table.id} FROM ${posts.table} WHERE ${posts.table.id} = ${"p"})`,
      "now",
      logChange,
    );
    expect(plan.statements.length).toBeGreaterThan(0);
    for (const s of plan.statements) {
      const q = (s as unknown as { toSQL(): { sql: string; params: unknown[] } }).toSQL();
      const p = await explain(q.sql, q.params);
      indexedOnly(p);
      if (q.sql.includes('"app_comments"') && /post_id/.test(q.sql))
        expect(p).toMatch(/app_comments_post_id_(created|updated)_idx|COVERING INDEX app_comments_post_id/);
    }
  });

  it("a read with expands: the read and each expand are primary-key lookups, in one statement", async () => {
    const db = createDb(env.DB);
    const { getQuery } = await import("../../../src/features/collections/reads");
    const { expandColumns } = await import("../../../src/features/collections/expand");
    const comments = findCollection("comments")!;
    const q = getQuery(
      db,
      comments,
      { kind: "all" },
      "c",
      expandColumns(comments, null, ["postId", "replyTo"]),
    ).toSQL();
    const p = await explain(q.sql, q.params);
    indexedOnly(p);
    expect(p).toContain("sqlite_autoindex_app_comments_1 (id=?)");
    expect(p).toMatch(/SEARCH _x0 USING INDEX sqlite_autoindex_app_posts_1 \(id=\?\)/);
    expect(p).toMatch(/SEARCH _x1 USING INDEX sqlite_autoindex_app_comments_1 \(id=\?\)/);
  });
});

describe("references: who hears of a cascade", () => {
  it("deleting a list with If-Match nulls a member's private note about it, and the note's owner sees it live", async () => {
    const owner = await signup();
    const team = await createTeam(owner);
    const list = await api("/v1/collections/lists/records", {
      token: owner.accessToken,
      body: { teamId: team.id, title: "Party" },
    });
    const note = await api("/v1/collections/notes/records", {
      token: owner.accessToken,
      body: { title: "what to bring", listId: list.body.id },
    });
    expect(note.status, note.text).toBe(201);
    const { socket } = await subscribe(owner, "notes");
    const del = await api(`/v1/collections/lists/records/${list.body.id}`, {
      method: "DELETE",
      token: owner.accessToken,
      headers: { "if-match": `"${list.body.version}"` },
    });
    expect(del.status, del.text).toBe(204);
    // The note's owner hub is told at once (not at its backstop, minutes later).
    const [frame] = await socket.changes(1);
    expect(frame!.item).toMatchObject({ id: note.body.id, listId: null, version: 2 });
  });
});
