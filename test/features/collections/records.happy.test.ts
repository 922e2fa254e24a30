import { describe, expect, it } from "vitest";
import { api, serviceKey, signup } from "../../helpers/api";
import { base, createNote, createPost, list } from "./helpers";

describe("collections: records, happy paths", () => {
  it("creates a note with defaults and server-owned fields", async () => {
    const user = await signup();
    const res = await api(`${base("notes")}/records`, { token: user.accessToken, body: { title: "Groceries" } });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      ownerId: user.id,
      createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT.*Z$/),
      updatedAt: res.body.createdAt,
      version: 1,
      title: "Groceries",
      body: "",
      pinned: false,
      tags: [],
      listId: null,
    });
    expect(Object.keys(res.body).slice(0, 5)).toEqual(["id", "ownerId", "createdAt", "updatedAt", "version"]);
    expect(res.headers.get("etag")).toBe('"1"');
    expect(res.headers.get("location")).toBe(`/v1/collections/notes/records/${res.body.id}`);
  });

  it("reads a record with an ETag and answers If-None-Match with 304", async () => {
    const user = await signup();
    const note = await createNote(user, { title: "t", tags: ["a", "b"], pinned: true });
    const res = await api(`${base("notes")}/records/${note.id}`, { token: user.accessToken });
    expect(res.status).toBe(200);
    expect(res.body).toEqual(note);
    expect(res.headers.get("etag")).toBe('"1"');
    const cached = await api(`${base("notes")}/records/${note.id}`, {
      token: user.accessToken,
      headers: { "if-none-match": '"1"' },
    });
    expect(cached.status).toBe(304);
    expect(cached.text).toBe("");
    expect(cached.headers.get("etag")).toBe('"1"');
    const weak = await api(`${base("notes")}/records/${note.id}`, {
      token: user.accessToken,
      headers: { "if-none-match": 'W/"1"' },
    });
    expect(weak.status).toBe(304);
    const stale = await api(`${base("notes")}/records/${note.id}`, {
      token: user.accessToken,
      headers: { "if-none-match": '"7"' },
    });
    expect(stale.status).toBe(200);
  });

  it("PATCH merges fields and bumps the version; a current If-Match passes", async () => {
    const user = await signup();
    const note = await createNote(user, { title: "t", body: "keep me", tags: ["x"] });
    const res = await api(`${base("notes")}/records/${note.id}`, {
      method: "PATCH",
      token: user.accessToken,
      body: { pinned: true },
      headers: { "if-match": '"1"' },
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      id: note.id,
      title: "t",
      body: "keep me",
      tags: ["x"],
      pinned: true,
      version: 2,
      createdAt: note.createdAt,
    });
    expect(res.body.updatedAt >= (note.createdAt as string)).toBe(true);
    expect(res.headers.get("etag")).toBe('"2"');
  });

  it("PUT replaces the whole record: omitted fields go back to their defaults", async () => {
    const user = await signup();
    const note = await createNote(user, { title: "t", body: "old", pinned: true, tags: ["x"] });
    const res = await api(`${base("notes")}/records/${note.id}`, {
      method: "PUT",
      token: user.accessToken,
      body: { title: "new" },
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      id: note.id,
      ownerId: user.id,
      title: "new",
      body: "",
      pinned: false,
      tags: [],
      version: 2,
    });
  });

  it("DELETE removes the record", async () => {
    const user = await signup();
    const note = await createNote(user);
    const del = await api(`${base("notes")}/records/${note.id}`, { method: "DELETE", token: user.accessToken });
    expect(del.status).toBe(204);
    expect((await api(`${base("notes")}/records/${note.id}`, { token: user.accessToken })).status).toBe(404);
  });

  it("lists only the caller's notes, newest first by default, in pages", async () => {
    const me = await signup();
    const other = await signup();
    const mine = [];
    for (let i = 0; i < 5; i++) mine.push(await createNote(me, { title: `n${i}` }));
    await createNote(other, { title: "not mine" });
    const first = await list("notes", me.accessToken, { limit: "2" });
    expect(first.status).toBe(200);
    expect(first.body.items.map((r: { title: string }) => r.title)).toEqual(["n4", "n3"]);
    expect(first.body.nextCursor).toEqual(expect.any(String));
    const second = await list("notes", me.accessToken, { limit: "2", cursor: first.body.nextCursor });
    expect(second.body.items.map((r: { title: string }) => r.title)).toEqual(["n2", "n1"]);
    const third = await list("notes", me.accessToken, { limit: "2", cursor: second.body.nextCursor });
    expect(third.body.items.map((r: { title: string }) => r.title)).toEqual(["n0"]);
    expect(third.body.nextCursor).toBeNull();
  });

  it("pages hold 50 records by default and up to 200 on request", async () => {
    const me = await signup();
    for (let i = 0; i < 51; i++) await createNote(me, { title: `n${i}` });
    const first = await list("notes", me.accessToken);
    expect(first.body.items).toHaveLength(50);
    expect(first.body.nextCursor).toEqual(expect.any(String));
    const rest = await list("notes", me.accessToken, { cursor: first.body.nextCursor });
    expect(rest.body.items.map((r: { title: string }) => r.title)).toEqual(["n0"]);
    expect(rest.body.nextCursor).toBeNull();
    const max = await list("notes", me.accessToken, { limit: "200" });
    expect(max.body.items).toHaveLength(51);
    expect(max.body.nextCursor).toBeNull();
  });

  it("cursor pages stay stable while records are inserted between them", async () => {
    const me = await signup();
    for (let i = 0; i < 4; i++) await createNote(me, { title: `old${i}` });
    const first = await list("notes", me.accessToken, { limit: "2", sort: "createdAt" });
    expect(first.body.items.map((r: { title: string }) => r.title)).toEqual(["old0", "old1"]);
    await createNote(me, { title: "new0" });
    const second = await list("notes", me.accessToken, {
      limit: "2",
      sort: "createdAt",
      cursor: first.body.nextCursor,
    });
    expect(second.body.items.map((r: { title: string }) => r.title)).toEqual(["old2", "old3"]);
    const desc1 = await list("notes", me.accessToken, { limit: "2", sort: "-createdAt" });
    await createNote(me, { title: "new1" });
    const desc2 = await list("notes", me.accessToken, {
      limit: "10",
      sort: "-createdAt",
      cursor: desc1.body.nextCursor,
    });
    const seen = [...desc1.body.items, ...desc2.body.items].map((r: { title: string }) => r.title);
    expect(seen).toEqual(["new0", "old3", "old2", "old1", "old0"]);
  });

  it("filters with where: equality, ranges, $in, $ne, $contains on text and on arrays", async () => {
    const me = await signup();
    const a = await createNote(me, { title: "Buy milk", pinned: true, tags: ["home", "food"] });
    const b = await createNote(me, { title: "Call mom", tags: ["family"] });
    const c = await createNote(me, { title: "100% done_", body: "50% off", tags: ["food"] });
    const titles = async (where: object, sort = "createdAt") =>
      (await list("notes", me.accessToken, { where, sort })).body.items.map((r: { title: string }) => r.title);
    expect(await titles({ pinned: true })).toEqual(["Buy milk"]);
    expect(await titles({ pinned: { $ne: true } })).toEqual(["Call mom", "100% done_"]);
    expect(await titles({ tags: { $contains: "food" } })).toEqual(["Buy milk", "100% done_"]);
    expect(await titles({ title: { $contains: "mil" } })).toEqual(["Buy milk"]);
    // no LIKE wildcards: % and _ are plain characters
    expect(await titles({ title: { $contains: "% done_" } })).toEqual(["100% done_"]);
    expect(await titles({ title: { $contains: "%" }, body: "50% off" })).toEqual(["100% done_"]);
    expect(await titles({ title: { $in: ["Call mom", "Buy milk", "nope"] } })).toEqual(["Buy milk", "Call mom"]);
    expect(await titles({ title: { $gte: "C" } }, "title")).toEqual(["Call mom"]);
    expect(await titles({ createdAt: { $gt: a.createdAt as string, $lte: c.createdAt as string } })).toEqual(
      [b, c].filter((r) => (r.createdAt as string) > (a.createdAt as string)).map((r) => r.title),
    );
    expect(await titles({ ownerId: me.id, pinned: false }, "-title")).toEqual(["Call mom", "100% done_"]);
  });

  it("sorts on sortable fields, descending with -, and pages through ties", async () => {
    const me = await signup();
    for (const t of ["b", "a", "b", "c", "a"]) await createNote(me, { title: t });
    const all: string[] = [];
    let cursor: string | undefined;
    do {
      const res = await list("notes", me.accessToken, { sort: "-title", limit: "2", ...(cursor ? { cursor } : {}) });
      expect(res.status).toBe(200);
      all.push(...res.body.items.map((r: { title: string }) => r.title));
      cursor = res.body.nextCursor ?? undefined;
    } while (cursor);
    expect(all).toEqual(["c", "b", "b", "a", "a"]);
    // Pinned notes, last edited first: the declared index (ownerId, pinned, updatedAt) serves it.
    const pinned: string[] = [];
    for (const t of ["c", "a"]) {
      const id = (await list("notes", me.accessToken, { where: { title: t }, limit: "1" })).body.items[0].id;
      await api(`${base("notes")}/records/${id}`, { method: "PATCH", token: me.accessToken, body: { pinned: true } });
    }
    cursor = undefined;
    do {
      const res = await list("notes", me.accessToken, {
        where: { pinned: true },
        sort: "-updatedAt",
        limit: "1",
        ...(cursor ? { cursor } : {}),
      });
      expect(res.status, res.text).toBe(200);
      pinned.push(...res.body.items.map((r: { title: string }) => r.title));
      cursor = res.body.nextCursor ?? undefined;
    } while (cursor);
    expect(pinned).toEqual(["a", "c"]);
  });

  it("filters a nullable field (null, not null) within one owner's public posts, paging by createdAt", async () => {
    const user = await signup();
    const texts = ["p0", "p1", "p2", "p3"];
    const created = [];
    for (const t of texts) created.push(await createPost(user, t));
    await api(`${base("posts")}/records/${created[1]!.id}`, {
      method: "PATCH",
      token: user.accessToken,
      body: { imageFileId: "img-b" },
    });
    await api(`${base("posts")}/records/${created[3]!.id}`, {
      method: "PATCH",
      token: user.accessToken,
      body: { imageFileId: "img-a" },
    });
    const walk = async (where: object, sort: string) => {
      const out: string[] = [];
      let cursor: string | undefined;
      do {
        const res = await list("posts", null, {
          sort,
          limit: "1",
          where: { ownerId: user.id, ...where },
          ...(cursor ? { cursor } : {}),
        });
        expect(res.status, res.text).toBe(200);
        out.push(...res.body.items.map((r: { text: string }) => r.text));
        cursor = res.body.nextCursor ?? undefined;
      } while (cursor);
      return out;
    };
    expect(await walk({ imageFileId: null }, "createdAt")).toEqual(["p0", "p2"]);
    expect(await walk({ imageFileId: { $ne: null } }, "-createdAt")).toEqual(["p3", "p1"]);
    expect(await walk({ imageFileId: { $in: ["img-a", null] } }, "createdAt")).toEqual(["p0", "p2", "p3"]);
  });

  it("posts are public to read and list, even without a token", async () => {
    const author = await signup();
    const post = await createPost(author, "public hello");
    expect(post.imageFileId).toBeNull();
    const read = await api(`${base("posts")}/records/${post.id}`);
    expect(read.status).toBe(200);
    expect(read.body).toEqual(post);
    const listed = await list("posts", null, { where: { ownerId: author.id } });
    expect(listed.body.items).toEqual([post]);
  });

  it("the service key bypasses rules: reads, changes and lists anyone's notes", async () => {
    const user = await signup();
    const note = await createNote(user, { title: "private" });
    const key = serviceKey();
    expect((await api(`${base("notes")}/records/${note.id}`, { token: key })).body).toEqual(note);
    const patched = await api(`${base("notes")}/records/${note.id}`, {
      method: "PATCH",
      token: key,
      body: { title: "moderated" },
    });
    expect(patched.body).toMatchObject({ title: "moderated", ownerId: user.id, version: 2 });
    const listed = await list("notes", key, { where: { ownerId: user.id } });
    expect(listed.body.items.map((r: { id: string }) => r.id)).toEqual([note.id]);
    const created = await api(`${base("notes")}/records`, { token: key, body: { title: "system note" } });
    expect(created.status).toBe(201);
    expect(created.body.ownerId).toBeNull();
    expect((await api(`${base("notes")}/records/${note.id}`, { method: "DELETE", token: key })).status).toBe(204);
  });

  it("the OpenAPI document lists each collection's record shape", async () => {
    const { body } = await api("/v1/openapi.json");
    const create = body.paths["/v1/collections/notes/records"].post;
    const req = create.requestBody.content["application/json"].schema;
    expect(req.additionalProperties).toBe(false);
    expect(req.required).toEqual(["title"]);
    expect(req.properties.title).toMatchObject({ type: "string", minLength: 1, maxLength: 200 });
    const rec = create.responses["201"].content["application/json"].schema;
    expect(Object.keys(rec.properties)).toEqual([
      "id",
      "ownerId",
      "createdAt",
      "updatedAt",
      "version",
      "title",
      "body",
      "pinned",
      "tags",
      "listId",
      "expand",
    ]);
    const post =
      body.paths["/v1/collections/posts/records/{id}"].get.responses["200"].content["application/json"].schema;
    expect(Object.keys(post.properties)).toEqual([
      "id",
      "ownerId",
      "createdAt",
      "updatedAt",
      "version",
      "text",
      "imageFileId",
      "fromNoteId",
      "commentCount",
      "expand",
    ]);
    expect(
      Object.keys(body.paths)
        .filter((k) => k.startsWith("/v1/collections/"))
        .sort(),
    ).toEqual([
      "/v1/collections/comments/changes",
      "/v1/collections/comments/records",
      "/v1/collections/comments/records/{id}",
      "/v1/collections/comments/subscribe",
      "/v1/collections/items/changes",
      "/v1/collections/items/records",
      "/v1/collections/items/records/{id}",
      "/v1/collections/items/subscribe",
      "/v1/collections/lists/changes",
      "/v1/collections/lists/records",
      "/v1/collections/lists/records/{id}",
      "/v1/collections/lists/subscribe",
      "/v1/collections/notes/changes",
      "/v1/collections/notes/records",
      "/v1/collections/notes/records/{id}",
      "/v1/collections/notes/subscribe",
      "/v1/collections/posts/changes",
      "/v1/collections/posts/records",
      "/v1/collections/posts/records/{id}",
      "/v1/collections/posts/subscribe",
    ]);
    expect(body.paths["/v1/collections/posts/records"].get.parameters.map((p: { name: string }) => p.name)).toEqual(
      expect.arrayContaining(["where", "sort", "limit", "cursor"]),
    );
    // A team-scoped collection: teamId is required on create, carried by every record, never in an update.
    const items = body.paths["/v1/collections/items/records"].post;
    expect(items.requestBody.content["application/json"].schema.required).toEqual(["listId", "text", "teamId"]);
    const item = items.responses["201"].content["application/json"].schema;
    expect(Object.keys(item.properties)).toContain("teamId");
    const patch = body.paths["/v1/collections/items/records/{id}"].patch.requestBody.content["application/json"].schema;
    expect(Object.keys(patch.properties)).not.toContain("teamId");
    expect(body.paths["/v1/collections/items/changes"].get.parameters.map((p: { name: string }) => p.name)).toContain(
      "teamId",
    );
  });
});
