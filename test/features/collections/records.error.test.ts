import { describe, expect, it } from "vitest";
import { api, expectProblem, signup } from "../../helpers/api";
import { base, createNote, list } from "./helpers";

const notes = `${base("notes")}/records`;

describe("collections: records, errors", () => {
  it("rejects a body that breaks the declared fields with validation_failed", async () => {
    const user = await signup();
    const cases: [unknown, string][] = [
      [{}, "title"],
      [{ title: "" }, "title"],
      [{ title: "x".repeat(201) }, "title"],
      [{ title: "t", body: "x".repeat(10_001) }, "body"],
      [{ title: "t", pinned: "yes" }, "pinned"],
      [{ title: "t", tags: Array.from({ length: 21 }, (_, i) => `t${i}`) }, "tags"],
      [{ title: "t", tags: [1] }, "tags.0"],
      [{ title: "t", color: "red" }, "color"],
    ];
    for (const [body, path] of cases) {
      const p = expectProblem(await api(notes, { token: user.accessToken, body }), 400, "validation_failed");
      expect(
        p.errors?.map((e) => e.path),
        JSON.stringify(body),
      ).toContain(path);
    }
    expect((await list("notes", user.accessToken)).body.items).toEqual([]);
  });

  it("never takes server-owned fields from a body", async () => {
    const user = await signup();
    for (const field of ["id", "ownerId", "createdAt", "updatedAt", "version"]) {
      const p = expectProblem(
        await api(notes, { token: user.accessToken, body: { title: "t", [field]: field === "version" ? 9 : "x" } }),
        400,
        "validation_failed",
      );
      expect(p.errors?.map((e) => e.path)).toContain(field);
    }
    const note = await createNote(user);
    for (const method of ["PATCH", "PUT"]) {
      const res = await api(`${notes}/${note.id}`, {
        method,
        token: user.accessToken,
        body: { title: "t", version: 7 },
      });
      expectProblem(res, 400, "validation_failed");
    }
    expect((await api(`${notes}/${note.id}`, { token: user.accessToken })).body.version).toBe(1);
  });

  it("rejects a malformed JSON body", async () => {
    const user = await signup();
    const res = await api(notes, {
      method: "POST",
      token: user.accessToken,
      raw: "{nope",
      headers: { "content-type": "application/json" },
    });
    expect(res.status).toBe(400);
    expect(res.headers.get("content-type")).toContain("application/problem+json");
  });

  it("a body that is not a JSON object, or not sent as JSON, is refused and changes nothing", async () => {
    const user = await signup();
    const note = await createNote(user, { title: "keep" });
    const json = { "content-type": "application/json" };
    for (const method of ["PATCH", "PUT"]) {
      expectProblem(
        await api(`${notes}/${note.id}`, { method, token: user.accessToken, raw: "[]", headers: json }),
        400,
        "validation_failed",
      );
      // Without a JSON Content-Type the body would be read as {}: a silent no-op (PATCH) or a reset to defaults (PUT).
      expectProblem(
        await api(`${notes}/${note.id}`, { method, token: user.accessToken, raw: JSON.stringify({ title: "lost" }) }),
        415,
        "unsupported_media_type",
      );
      expectProblem(
        await api(`${notes}/${note.id}`, {
          method,
          token: user.accessToken,
          raw: JSON.stringify({ title: "lost" }),
          headers: { "content-type": "text/plain" },
        }),
        415,
        "unsupported_media_type",
      );
    }
    expectProblem(await api(notes, { token: user.accessToken, raw: "[]", headers: json }), 400, "validation_failed");
    expectProblem(
      await api(notes, {
        token: user.accessToken,
        raw: JSON.stringify({ title: "t" }),
        headers: { "content-type": "text/plain" },
      }),
      415,
      "unsupported_media_type",
    );
    const ok = await api(`${notes}/${note.id}`, {
      method: "PATCH",
      token: user.accessToken,
      raw: JSON.stringify({ pinned: true }),
      headers: { "content-type": "application/json; charset=utf-8" },
    });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ title: "keep", pinned: true, version: 2 });
    expect((await list("notes", user.accessToken)).body.items).toHaveLength(1);
  });

  it("where/sort on an undeclared field or an unknown operator is a 400 validation_failed", async () => {
    const user = await signup();
    await createNote(user);
    const bad: Record<string, string | object>[] = [
      { where: { color: "red" } },
      { where: { title: { $regex: "^a" } } },
      { where: { title: { $where: "1=1" } } },
      { where: { 'title" OR 1=1 --': "x" } },
      { where: { pinned: { $contains: "t" } } },
      { where: { pinned: { $gt: true } } },
      { where: { tags: "a" } },
      { where: { title: {} } },
      { where: { title: { $in: [] } } },
      { where: { title: { $in: Array.from({ length: 51 }, (_, i) => `v${i}`) } } },
      { where: { createdAt: { $gt: "not a date" } } },
      { where: { title: 5 } },
      { where: "[1,2]" },
      { where: "{not json" },
      { sort: "color" },
      { sort: "-color" },
      { sort: "tags" },
      { sort: "title,createdAt" },
      { limit: "0" },
      { limit: "201" },
      { limit: "ten" },
      { cursor: "garbage!" },
      { cursor: btoa(JSON.stringify({ s: "-createdAt", v: {}, i: "x" })) },
      { filter: "x" },
    ];
    for (const params of bad) {
      const res = await list("notes", user.accessToken, params);
      expectProblem(res, 400, "validation_failed");
    }
    const field = expectProblem(
      await list("notes", user.accessToken, { where: { color: "red" } }),
      400,
      "validation_failed",
    );
    expect(field.errors).toEqual([
      { path: "where.color", message: expect.stringContaining("is not a field you can filter on") },
    ]);
    const op = expectProblem(
      await list("notes", user.accessToken, { where: { title: { $regex: "^a" } } }),
      400,
      "validation_failed",
    );
    expect(op.errors).toEqual([
      { path: "where.title.$regex", message: expect.stringContaining("is not an operator of this field") },
    ]);
    const sort = expectProblem(await list("notes", user.accessToken, { sort: "color" }), 400, "validation_failed");
    expect(sort.errors?.[0]?.path).toBe("sort");
  });

  it("caps the values a where may bind (D1 allows 100 per statement)", async () => {
    const user = await signup();
    const fifty = Array.from({ length: 50 }, (_, i) => `v${i}`);
    const ok = await list("notes", user.accessToken, { where: { title: { $in: fifty } } });
    expect(ok.status).toBe(200);
    const res = await list("notes", user.accessToken, { where: { title: { $in: fifty }, body: { $in: fifty } } });
    expectProblem(res, 400, "validation_failed");
  });

  it("a cursor only continues the sort order it was made for", async () => {
    const user = await signup();
    for (let i = 0; i < 3; i++) await createNote(user, { title: `n${i}` });
    const page = await list("notes", user.accessToken, { limit: "1", sort: "title" });
    const res = await list("notes", user.accessToken, { limit: "1", sort: "-createdAt", cursor: page.body.nextCursor });
    expectProblem(res, 400, "validation_failed");
  });

  it("an unknown collection is a 404 not_found on every route", async () => {
    const user = await signup();
    expectProblem(
      await api(`${base("nope")}/records`, { token: user.accessToken, body: { title: "t" } }),
      404,
      "not_found",
    );
    expectProblem(await api(`${base("nope")}/records`, { token: user.accessToken }), 404, "not_found");
    expectProblem(await api(`${base("nope")}/records/abc`, { token: user.accessToken }), 404, "not_found");
    const p = expectProblem(await api(`${base("nope")}/changes`, { token: user.accessToken }), 404, "not_found");
    expect(p.detail).toBe('No collection named "nope".');
    const route = expectProblem(await api(`${base("notes")}/elsewhere`, { token: user.accessToken }), 404, "not_found");
    expect(route.detail).toContain("No route for GET");
  });

  it("a missing record is a 404 for read, change and delete", async () => {
    const user = await signup();
    const missing = `${notes}/01900000-0000-7000-8000-000000000000`;
    expectProblem(await api(missing, { token: user.accessToken }), 404, "not_found");
    expectProblem(
      await api(missing, { method: "PATCH", token: user.accessToken, body: { title: "x" } }),
      404,
      "not_found",
    );
    expectProblem(
      await api(missing, { method: "PUT", token: user.accessToken, body: { title: "x" } }),
      404,
      "not_found",
    );
    expectProblem(await api(missing, { method: "DELETE", token: user.accessToken }), 404, "not_found");
  });

  it("a stale If-Match is a 412 version_conflict carrying the current ETag, and changes nothing", async () => {
    const user = await signup();
    const note = await createNote(user, { title: "v1" });
    await api(`${notes}/${note.id}`, { method: "PATCH", token: user.accessToken, body: { title: "v2" } });
    for (const method of ["PATCH", "PUT"]) {
      const res = await api(`${notes}/${note.id}`, {
        method,
        token: user.accessToken,
        body: { title: "late" },
        headers: { "if-match": '"1"' },
      });
      expectProblem(res, 412, "version_conflict");
      expect(res.headers.get("etag")).toBe('"2"');
    }
    expectProblem(
      await api(`${notes}/${note.id}`, {
        method: "PATCH",
        token: user.accessToken,
        body: { title: "x" },
        headers: { "if-match": "garbage" },
      }),
      412,
      "version_conflict",
    );
    const manyTags = Array.from({ length: 11 }, (_, i) => `"${i + 3}"`).join(", ");
    expectProblem(
      await api(`${notes}/${note.id}`, {
        method: "PATCH",
        token: user.accessToken,
        body: { title: "x" },
        headers: { "if-match": manyTags },
      }),
      400,
      "validation_failed",
    );
    expectProblem(
      await api(`${notes}/${note.id}`, { method: "DELETE", token: user.accessToken, headers: { "if-match": '"1"' } }),
      412,
      "version_conflict",
    );
    const now = await api(`${notes}/${note.id}`, { token: user.accessToken });
    expect(now.body).toMatchObject({ title: "v2", version: 2 });
    expect(
      (await api(`${notes}/${note.id}`, { method: "DELETE", token: user.accessToken, headers: { "if-match": '"2"' } }))
        .status,
    ).toBe(204);
  });

  it("concurrent conditional PATCHes have exactly one winner", async () => {
    const user = await signup();
    const note = await createNote(user, { title: "race" });
    const attempts = 8;
    const results = await Promise.all(
      Array.from({ length: attempts }, (_, i) =>
        api(`${notes}/${note.id}`, {
          method: "PATCH",
          token: user.accessToken,
          body: { title: `writer ${i}` },
          headers: { "if-match": '"1"' },
        }),
      ),
    );
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(statuses.filter((s) => s === 412)).toHaveLength(attempts - 1);
    for (const r of results.filter((x) => x.status === 412)) expect(r.body.code).toBe("version_conflict");
    const winner = results.find((r) => r.status === 200)!;
    const final = await api(`${notes}/${note.id}`, { token: user.accessToken });
    expect(final.body).toEqual(winner.body);
    expect(final.body.version).toBe(2);
    const feed = await api(`${base("notes")}/changes`, { token: user.accessToken });
    expect(feed.body.items).toEqual([winner.body]);
  });
});
