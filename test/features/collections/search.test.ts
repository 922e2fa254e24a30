/**
 * `?search=` (API.md "Relations, counts and search"): full-text over the searchable fields with
 * diacritics folded and the last word as a prefix, best match first unless `sort` is given, with
 * `where` and the rules; anything a user types is safe (FTS5 syntax never reaches MATCH); the index
 * follows every write, in the write's own statement.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createDb } from "../../../src/db";
import { collections, findCollection } from "../../../src/features/collections/registry";
import { matchQuery, searchQuery } from "../../../src/features/collections/search";
import { createSearchSql } from "../../../src/features/collections/search-ddl";
import { api, expectProblem, signup, type TestUser } from "../../helpers/api";
import { explain } from "../../helpers/query-plan";
import { createNote, list } from "./helpers";

/** The object a CREATE statement makes. */
const nameOf = (ddl: string) => /^CREATE (?:VIRTUAL TABLE|TRIGGER) (\S+)/.exec(ddl)![1]!;

const texts = (res: { body: { items: { text?: string; title?: string }[] } }) =>
  res.body.items.map((x) => x.text ?? x.title);

async function post(user: TestUser, text: string) {
  const res = await api("/v1/collections/posts/records", { token: user.accessToken, body: { text } });
  expect(res.status, res.text).toBe(201);
  return res.body as { id: string };
}

describe("?search=", () => {
  it("diacritics folded, case folded, the last word a prefix; every word required", async () => {
    const u = await signup();
    const tag = `zq${crypto.randomUUID().slice(0, 6)}`;
    await post(u, `${tag} Crème brûlée at the café`);
    await post(u, `${tag} creme caramel`);
    await post(u, `${tag} Cafeteria food`);
    const where = { ownerId: u.id };
    expect(texts(await list("posts", null, { search: `${tag} cafe`, where })).sort()).toEqual(
      [`${tag} Cafeteria food`, `${tag} Crème brûlée at the café`].sort(),
    );
    expect(texts(await list("posts", null, { search: `${tag} CREME BRU`, where }))).toEqual([
      `${tag} Crème brûlée at the café`,
    ]);
    expect(texts(await list("posts", null, { search: `${tag} missing`, where }))).toEqual([]);
  });

  it("best match first; with sort, that order and keyset pages; count and paging agree", async () => {
    const u = await signup();
    const tag = `zr${crypto.randomUUID().slice(0, 6)}`;
    await post(u, `${tag} apple`);
    await post(u, `${tag} apple apple apple pie`);
    await post(u, `${tag} banana`);
    const ranked = await list("posts", null, { search: `${tag} apple`, count: "true" });
    expect(texts(ranked)[0]).toBe(`${tag} apple apple apple pie`);
    expect(ranked.body.total).toBe(2);
    const sorted = await list("posts", null, { search: tag, sort: "createdAt", limit: "2" });
    expect(texts(sorted)).toEqual([`${tag} apple`, `${tag} apple apple apple pie`]);
    const next = await list("posts", null, {
      search: tag,
      sort: "createdAt",
      limit: "2",
      cursor: sorted.body.nextCursor,
    });
    expect(texts(next)).toEqual([`${tag} banana`]);
    // Ranked pages go by offset: every match once.
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await list("posts", null, { search: tag, limit: "1", ...(cursor ? { cursor } : {}) });
      seen.push(...texts(page).map(String));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen.sort()).toEqual([`${tag} apple`, `${tag} apple apple apple pie`, `${tag} banana`].sort());
  });

  it("the rules hold: an owner-only collection searches the caller's own notes", async () => {
    const [me, other] = [await signup(), await signup()];
    const tag = `zs${crypto.randomUUID().slice(0, 6)}`;
    await createNote(me, { title: `${tag} mine` });
    await createNote(other, { title: `${tag} theirs` });
    expect(texts(await list("notes", me.accessToken, { search: tag }))).toEqual([`${tag} mine`]);
  });

  it("the index follows updates and deletes (in the write's own statement)", async () => {
    const u = await signup();
    const tag = `zt${crypto.randomUUID().slice(0, 6)}`;
    const p = await post(u, `${tag} before`);
    await api(`/v1/collections/posts/records/${p.id}`, {
      method: "PATCH",
      token: u.accessToken,
      body: { text: `${tag} after` },
    });
    expect(texts(await list("posts", null, { search: `${tag} before` }))).toEqual([]);
    expect(texts(await list("posts", null, { search: `${tag} after` }))).toEqual([`${tag} after`]);
    await api(`/v1/collections/posts/records/${p.id}`, { method: "DELETE", token: u.accessToken });
    expect(texts(await list("posts", null, { search: tag }))).toEqual([]);
  });

  it("whatever a user types never errors and never acts as FTS5 syntax", async () => {
    const u = await signup();
    const tag = `zu${crypto.randomUUID().slice(0, 6)}`;
    await post(u, `${tag} near the sea`);
    for (const q of [
      '"',
      '""',
      "*",
      `${tag} NEAR sea`,
      `${tag} -sea`,
      `${tag} OR x`,
      "NEAR(a b)",
      "a:b",
      "^x",
      "(",
      ")",
      "'",
      "\\",
      "ﬁ",
      "   ",
      "!!!",
    ]) {
      const res = await list("posts", null, { search: q });
      expect(res.status, `${q}: ${res.text}`).toBe(200);
    }
    // NEAR, OR and - are words here: "-sea" is the word "sea", "NEAR" is a word the post has.
    expect(texts(await list("posts", null, { search: `${tag} NEAR sea` }))).toEqual([`${tag} near the sea`]);
    expect(texts(await list("posts", null, { search: `${tag} -sea` }))).toEqual([`${tag} near the sea`]);
    expect(texts(await list("posts", null, { search: `${tag} OR x` }))).toEqual([]);
    expect(matchQuery('he said "hi"*')).toBe('"he" "said" "hi"*');
    expect(matchQuery("--- *** ")).toBeNull();
  });

  it("D1 holds exactly the full-text tables and triggers the declarations make (migrations are current)", async () => {
    const rows = await env.DB.prepare(
      "SELECT type, name, sql FROM sqlite_master WHERE name LIKE 'app_%_fts%' AND type IN ('table', 'trigger') " +
        "AND sql LIKE 'CREATE%' AND (type = 'trigger' OR sql LIKE 'CREATE VIRTUAL TABLE%') ORDER BY name",
    ).all<{ name: string; sql: string }>();
    const want = collections
      .filter((c) => c.search)
      .flatMap((c) => createSearchSql(c.search!))
      .sort((a, b) => nameOf(a).localeCompare(nameOf(b)));
    expect(rows.results.map((r) => r.sql)).toEqual(want);
  });

  it("a collection without searchable fields refuses search (400)", async () => {
    expectProblem(await list("comments", null, { search: "x" }), 400, "validation_failed");
  });

  it("query plan: the FTS5 index, then each match's record by rowid", async () => {
    const posts = findCollection("posts")!;
    const o = { search: "x", ranked: true, sort: "-createdAt", limit: 20 };
    const { query } = searchQuery(createDb(env.DB), posts, { kind: "all" }, o, '"x"*');
    const q = query.toSQL();
    const p = await explain(q.sql, q.params);
    expect(p).toMatch(/SCAN app_posts_fts VIRTUAL TABLE INDEX/);
    expect(p).toMatch(/SEARCH app_posts USING INTEGER PRIMARY KEY \(rowid=\?\)/);
  });
});
