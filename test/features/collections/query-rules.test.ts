/**
 * Lists accept only what an index serves: `sort` on indexed fields (createdAt, updatedAt and fields
 * declared `sortable`), `$contains` on fields declared `searchable`, and, on lists that span every
 * owner, only filters the sort index can use; anonymous list requests are rate limited per IP.
 */
import { describe, expect, it } from "vitest";
import { COLLECTION, collection, field } from "../../../src/features/collections/define";
import { api, expectProblem, signup } from "../../helpers/api";
import { base, createNote, createPost, list } from "./helpers";

describe("collections: sort only on indexed fields", () => {
  it("a sort on a field that is not sortable is a 400 naming the field and the sortable ones", async () => {
    const user = await signup();
    await createNote(user, { title: "n", body: "b" });
    for (const sort of ["body", "-body", "ownerId", "pinned"]) {
      const p = expectProblem(await list("notes", user.accessToken, { sort }), 400, "validation_failed");
      expect(p.errors).toEqual([
        { path: "sort", message: expect.stringContaining(`"${sort.replace(/^-/, "")}" is not sortable`) },
      ]);
      expect(p.errors![0]!.message).toContain("sort on one of: createdAt, updatedAt, title (prefix - for descending)");
    }
    for (const sort of ["text", "-imageFileId"]) {
      const p = expectProblem(await list("posts", null, { sort }), 400, "validation_failed");
      expect(p.errors![0]!.message).toContain("sort on one of: createdAt, updatedAt");
    }
  });

  it("sortable fields sort and page", async () => {
    const user = await signup();
    for (const t of ["b", "a", "c"]) await createNote(user, { title: t });
    const asc = await list("notes", user.accessToken, { sort: "title" });
    expect(asc.status, asc.text).toBe(200);
    expect(asc.body.items.map((r: { title: string }) => r.title)).toEqual(["a", "b", "c"]);
    const updated = await list("posts", null, { sort: "-updatedAt", limit: "1" });
    expect(updated.status, updated.text).toBe(200);
  });
});

describe("collections: declarations", () => {
  const rules = { create: "authenticated", read: "owner", list: "owner", update: "owner", delete: "owner" } as const;
  it("sortable fields get indexes; nullable sortables and indexes serving no sort are refused", () => {
    const ok = collection("ok_decl", {
      fields: { rank: field.integer({ default: 0, sortable: true }), label: field.string({ searchable: true }) },
      rules,
      indexes: [["label", "rank"]],
    });
    const meta = ok[COLLECTION];
    expect(meta.sortable).toEqual(["createdAt", "updatedAt", "rank"]);
    expect(meta.searchable).toEqual(["label"]);
    expect(meta.indexes.map((ix) => ix.columns.join(","))).toEqual(
      expect.arrayContaining(["ownerId,rank,id", "rank,id", "label,rank,id", "updatedAt,id"]),
    );
    expect(() =>
      collection("bad1", { fields: { n: field.integer({ nullable: true, sortable: true }) }, rules }),
    ).toThrow(/cannot be nullable/);
    expect(() =>
      collection("bad2", { fields: { n: field.integer({ default: 0 }) }, rules, indexes: [["ownerId", "n"]] }),
    ).toThrow(/must end with a sort field/);
    expect(() =>
      collection("bad3", { fields: { n: field.integer({ default: 0 }) }, rules, indexes: [["ownerId", "createdAt"]] }),
    ).toThrow(/already there/);
    expect(() =>
      collection("bad4", { fields: { created: field.integer({ default: 0, sortable: true }) }, rules }),
    ).toThrow(/two indexes would be named/);
  });
});

describe("collections: $contains only on searchable fields", () => {
  it("$contains on a field not declared searchable is a 400 naming the searchable fields", async () => {
    const user = await signup();
    await createNote(user, { title: "needle", body: "needle" });
    const p = expectProblem(
      await list("notes", user.accessToken, { where: { body: { $contains: "needle" } } }),
      400,
      "validation_failed",
    );
    expect(p.errors).toEqual([{ path: "where.body.$contains", message: expect.stringContaining("searchable") }]);
    expect(p.errors![0]!.message).toContain("title, tags");
    const q = expectProblem(
      await list("posts", null, { where: { ownerId: user.id, imageFileId: { $contains: "x" } } }),
      400,
      "validation_failed",
    );
    expect(q.errors![0]!.path).toBe("where.imageFileId.$contains");
    // Searchable fields still match substrings (and array elements).
    await createNote(user, { title: "haystack", tags: ["red"] });
    const found = await list("notes", user.accessToken, { where: { title: { $contains: "eed" } } });
    expect(found.body.items.map((r: { title: string }) => r.title)).toEqual(["needle"]);
    const tagged = await list("notes", user.accessToken, { where: { tags: { $contains: "red" } } });
    expect(tagged.body.items.map((r: { title: string }) => r.title)).toEqual(["haystack"]);
  });
});

describe("collections: lists across all owners filter only on what the sort index holds", () => {
  it("posts: $contains and other filters need where.ownerId; the sort field and ownerId are fine", async () => {
    const author = await signup();
    const post = await createPost(author, "hello searchable world");
    await createPost(author, "another");

    const contains = expectProblem(
      await list("posts", null, { where: { text: { $contains: "searchable" } } }),
      400,
      "validation_failed",
    );
    expect(contains.errors).toEqual([{ path: "where.text", message: expect.stringContaining("ownerId") }]);
    expectProblem(await list("posts", null, { where: { imageFileId: null } }), 400, "validation_failed");
    // Records without an owner (made by the service key or anonymous callers) are not one owner's.
    expectProblem(
      await list("posts", null, { where: { ownerId: null, text: { $contains: "searchable" } } }),
      400,
      "validation_failed",
    );
    expect((await list("posts", null, { where: { ownerId: null } })).status).toBe(200);
    expectProblem(
      await list("posts", null, { where: { createdAt: { $gt: "2020-01-01T00:00:00Z" } }, sort: "-updatedAt" }),
      400,
      "validation_failed",
    );

    const narrowed = await list("posts", null, { where: { ownerId: author.id, text: { $contains: "searchable" } } });
    expect(narrowed.status, narrowed.text).toBe(200);
    expect(narrowed.body.items.map((r: { id: string }) => r.id)).toEqual([post.id]);
    const byImage = await list("posts", null, { where: { ownerId: author.id, imageFileId: null } });
    expect(byImage.body.items).toHaveLength(2);
    const range = await list("posts", null, {
      where: { createdAt: { $gte: post.createdAt as string } },
      sort: "-createdAt",
    });
    expect(range.status, range.text).toBe(200);
    expect(range.body.items.map((r: { id: string }) => r.id)).toContain(post.id);
  });

  it("the service key listing notes of every owner: same rule; narrowed to one owner everything works", async () => {
    const user = await signup();
    await createNote(user, { title: "mine" });
    const service = (await import("../../helpers/api")).serviceKey();
    expectProblem(await list("notes", service, { where: { title: { $contains: "mi" } } }), 400, "validation_failed");
    const ok = await list("notes", service, { where: { ownerId: user.id, title: { $contains: "mi" } } });
    expect(ok.status, ok.text).toBe(200);
    expect(ok.body.items).toHaveLength(1);
  });
});

describe("collections: anonymous list requests are rate limited per IP", () => {
  it("an IP over the limit gets 429 rate_limited with Retry-After; tokens and other IPs are not affected", async () => {
    const user = await signup();
    const ip = "203.0.113.77";
    let limitedAt = 0;
    for (let i = 1; i <= 500 && !limitedAt; i++) {
      const res = await api(`${base("posts")}/records?limit=1`, { ip });
      if (res.status === 429) {
        limitedAt = i;
        const p = expectProblem(res, 429, "rate_limited");
        expect(p.code).toBe("rate_limited");
        expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
      } else expect(res.status, res.text).toBe(200);
    }
    expect(limitedAt, "anonymous lists were never limited").toBeGreaterThan(10);
    // The change feed counts as a list too.
    expectProblem(await api(`${base("posts")}/changes`, { ip }), 429, "rate_limited");
    // A signed-in caller from the same address and an anonymous caller from another one still list.
    expect((await api(`${base("posts")}/records?limit=1`, { ip, token: user.accessToken })).status).toBe(200);
    expect((await api(`${base("posts")}/records?limit=1`, { ip: "203.0.113.78" })).status).toBe(200);
    // Reading one record is not a list.
    const post = await createPost(user);
    expect((await api(`${base("posts")}/records/${post.id}`, { ip })).status).toBe(200);
  });
});
