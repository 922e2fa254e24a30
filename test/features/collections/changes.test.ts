import { env } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { createDb } from "../../../src/db";
import { idempotencyKeys } from "../../../src/db/schema";
import { api, expectProblem, serviceKey, signup, type TestUser } from "../../helpers/api";
import { base, createNote, createPost } from "./helpers";

const notes = `${base("notes")}/records`;
const feed = (name: string, token: string | null, params: Record<string, string> = {}) =>
  api(`${base(name)}/changes?${new URLSearchParams(params)}`, { token });

/** Follows the feed from `since` to its end, page by page. */
async function drain(name: string, token: string | null, since?: string, limit = "50") {
  const items: Record<string, unknown>[] = [];
  let cursor = since;
  for (;;) {
    const res = await feed(name, token, { limit, ...(cursor ? { since: cursor } : {}) });
    expect(res.status, res.text).toBe(200);
    items.push(...res.body.items);
    cursor = res.body.nextCursor;
    if (!res.body.hasMore) return { items, cursor: cursor! };
  }
}

describe("collections: change feed", () => {
  it("lists creates, updates and deletes oldest first, each record once, deletes as tombstones", async () => {
    const user = await signup();
    const a = await createNote(user, { title: "a" });
    const b = await createNote(user, { title: "b" });
    const a2 = (await api(`${notes}/${a.id}`, { method: "PATCH", token: user.accessToken, body: { title: "a2" } }))
      .body;
    expect((await api(`${notes}/${b.id}`, { method: "DELETE", token: user.accessToken })).status).toBe(204);
    const c = await createNote(user, { title: "c" });

    const res = await feed("notes", user.accessToken);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      items: [a2, { id: b.id, deleted: true, version: 2 }, c],
      nextCursor: expect.any(String),
      hasMore: false,
    });
  });

  it("from a cursor, returns only what changed after it; an idle poll keeps the cursor", async () => {
    const user = await signup();
    const a = await createNote(user, { title: "a" });
    const first = await drain("notes", user.accessToken);
    expect(first.items).toEqual([a]);

    const idle = await feed("notes", user.accessToken, { since: first.cursor });
    expect(idle.body).toEqual({ items: [], nextCursor: first.cursor, hasMore: false });

    const b = await createNote(user, { title: "b" });
    await api(`${notes}/${a.id}`, { method: "DELETE", token: user.accessToken });
    const next = await drain("notes", user.accessToken, first.cursor);
    expect(next.items).toEqual([b, { id: a.id, deleted: true, version: 2 }]);
  });

  it("pages with hasMore and never skips a write made between pages", async () => {
    const user = await signup();
    const made = [];
    for (let i = 0; i < 5; i++) made.push(await createNote(user, { title: `n${i}` }));
    const page1 = await feed("notes", user.accessToken, { limit: "2" });
    expect(page1.body.hasMore).toBe(true);
    expect(page1.body.items.map((r: { id: string }) => r.id)).toEqual([made[0]!.id, made[1]!.id]);
    // n0 was already delivered; changing it moves it to the end of the feed
    const n0 = (
      await api(`${notes}/${made[0]!.id}`, { method: "PATCH", token: user.accessToken, body: { pinned: true } })
    ).body;
    const extra = await createNote(user, { title: "extra" });
    const rest = await drain("notes", user.accessToken, page1.body.nextCursor, "2");
    expect(rest.items.map((r) => r.id)).toEqual([made[2]!.id, made[3]!.id, made[4]!.id, n0.id, extra.id]);
    expect(rest.items.at(-2)).toEqual(n0);
  });

  it("shows a caller only what it may read: none of a stranger's notes or tombstones", async () => {
    const owner = await signup();
    const stranger = await signup();
    const note = await createNote(owner);
    await api(`${notes}/${note.id}`, { method: "DELETE", token: owner.accessToken });
    await createNote(owner);
    expect((await drain("notes", stranger.accessToken)).items).toEqual([]);
    const mine = await createNote(stranger, { title: "mine" });
    expect((await drain("notes", stranger.accessToken)).items).toEqual([mine]);
    expectProblem(await feed("notes", null), 401, "unauthorized");
  });

  it("public collections sync for anyone, tombstones included", async () => {
    const author = await signup();
    const start = (await drain("posts", null)).cursor;
    const post = await createPost(author, "hi");
    await api(`${base("posts")}/records/${post.id}`, { method: "DELETE", token: author.accessToken });
    expect((await drain("posts", null, start)).items).toEqual([{ id: post.id, deleted: true, version: 2 }]);
  });

  it("rejects a cursor it did not make", async () => {
    const user = await signup();
    for (const since of ["nope", btoa(JSON.stringify({ q: -1 })), btoa(JSON.stringify({ s: "x", v: 1, i: "y" }))]) {
      expectProblem(await feed("notes", user.accessToken, { since }), 400, "validation_failed");
    }
    expectProblem(await feed("notes", user.accessToken, { limit: "500" }), 400, "validation_failed");
  });
});

describe("collections: account deletion", () => {
  async function deleteAccount(user: TestUser) {
    const res = await api("/v1/me", { method: "DELETE", token: user.accessToken });
    expect(res.status, res.text).toBe(204);
  }

  it("removes the user's records and leaves tombstones that other readers' sync sees", async () => {
    const leaving = await signup();
    const staying = await signup();
    const reader = await signup();
    const start = (await drain("posts", reader.accessToken)).cursor;
    const note = await createNote(leaving, { title: "private" });
    const post = await createPost(leaving, "bye");
    const kept = await createPost(staying, "still here");
    const staysNote = await createNote(staying);

    await deleteAccount(leaving);

    const key = serviceKey();
    expectProblem(await api(`${notes}/${note.id}`, { token: key }), 404, "not_found");
    expectProblem(await api(`${base("posts")}/records/${post.id}`), 404, "not_found");
    expect((await api(`${base("posts")}/records/${kept.id}`)).status).toBe(200);
    expect((await api(`${notes}/${staysNote.id}`, { token: staying.accessToken })).status).toBe(200);

    const synced = await drain("posts", reader.accessToken, start);
    expect(synced.items).toEqual([kept, { id: post.id, deleted: true, version: 2 }]);
    const all = await drain("notes", key);
    expect(all.items).toContainEqual({ id: note.id, deleted: true, version: 2 });
  });

  it("an access token that outlives its account cannot leave records behind", async () => {
    const leaving = await signup();
    await deleteAccount(leaving);
    // Access tokens are checked without D1, so this one still passes for its remaining lifetime.
    expectProblem(
      await api(notes, { token: leaving.accessToken, body: { title: "after the fact" } }),
      401,
      "unauthorized",
    );
    expectProblem(
      await api(`${base("posts")}/records`, { token: leaving.accessToken, body: { text: "ghost" } }),
      401,
      "unauthorized",
    );
    for (const table of ["app_notes", "app_posts"]) {
      const n = await env.DB.prepare(`SELECT count(*) AS n FROM ${table} WHERE owner_id = ?`)
        .bind(leaving.id)
        .first<{ n: number }>();
      expect(n?.n, table).toBe(0);
    }
    const log = await env.DB.prepare("SELECT count(*) AS n FROM record_changes WHERE owner_id = ?")
      .bind(leaving.id)
      .first<{ n: number }>();
    expect(log?.n).toBe(0);
  });

  it("forgets the user's stored idempotent responses", async () => {
    const leaving = await signup();
    const created = await api(notes, {
      token: leaving.accessToken,
      body: { title: "t" },
      headers: { "idempotency-key": "k-gone" },
    });
    expect(created.status).toBe(201);
    const db = createDb(env.DB);
    const scope = eq(idempotencyKeys.scope, `user:${leaving.id}`);
    expect(await db.select().from(idempotencyKeys).where(scope)).toHaveLength(1);
    await deleteAccount(leaving);
    expect(await db.select().from(idempotencyKeys).where(scope)).toEqual([]);
  });
});
