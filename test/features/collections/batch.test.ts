/**
 * Issue 13.3: `POST /v1/batch` applies up to 50 create/update/replace/delete operations across
 * collections all or nothing (one D1 batch). Each is checked against its rule, schema and `ifMatch`;
 * the first failing operation is named in `errors[0].path`, and nothing is written.
 */
import { describe, expect, it } from "vitest";
import { limits } from "../../../src/config";
import { changed, snapshot } from "../../fuzz/support";
import { api, expectProblem, serviceKey, signup, type TestUser } from "../../helpers/api";
import { brokenSignature } from "../../helpers/tokens";
import { base, createNote, createPost } from "./helpers";
import { subscribe } from "./live-helpers";

type Op = {
  op: "create" | "update" | "replace" | "delete";
  collection: string;
  id?: string;
  ifMatch?: number | string;
  data?: Record<string, unknown>;
};
const batch = (token: string | null, operations: Op[], headers: Record<string, string> = {}) =>
  api("/v1/batch", { token, body: { operations }, headers });
const read = (user: TestUser, name: string, id: string) =>
  api(`${base(name)}/records/${id}`, { token: user.accessToken });

/** Runs a batch that must fail, and checks that no table changed. */
async function refused(token: string, operations: Op[], status: number, code: string, path: string) {
  const before = await snapshot();
  const res = await batch(token, operations);
  const problem = expectProblem(res, status, code);
  expect(problem.errors?.[0]?.path, res.text).toBe(path);
  expect(changed(before, await snapshot())).toEqual([]);
  return problem;
}

describe("POST /v1/batch", () => {
  it("applies creates, updates, replaces and deletes across collections in order, returning each", async () => {
    const user = await signup();
    const n1 = await createNote(user, { title: "one", tags: ["x"] });
    const n2 = await createNote(user, { title: "two" });
    const p1 = await createPost(user, "post");
    const res = await batch(user.accessToken, [
      { op: "create", collection: "notes", data: { title: "new" } },
      { op: "update", collection: "notes", id: n1.id, ifMatch: 1, data: { pinned: true } },
      { op: "replace", collection: "posts", id: p1.id, data: { text: "replaced" } },
      { op: "delete", collection: "notes", id: n2.id, ifMatch: '"1"' },
      { op: "create", collection: "posts", data: { text: "also new", imageFileId: null } },
    ]);
    expect(res.status, res.text).toBe(200);
    const [created, updated, replaced, deleted, post] = res.body.results;
    expect(created).toMatchObject({ title: "new", body: "", pinned: false, tags: [], version: 1, ownerId: user.id });
    expect(updated).toMatchObject({ id: n1.id, title: "one", tags: ["x"], pinned: true, version: 2 });
    expect(replaced).toMatchObject({ id: p1.id, text: "replaced", imageFileId: null, version: 2 });
    expect(deleted).toEqual({ id: n2.id, deleted: true });
    expect(post).toMatchObject({ text: "also new", version: 1 });
    expect((await read(user, "notes", created.id)).body).toEqual(created);
    expect((await read(user, "notes", n1.id)).body).toEqual(updated);
    expect((await read(user, "posts", p1.id)).body).toEqual(replaced);
    expect((await read(user, "notes", n2.id)).status).toBe(404);
    // The change feed has each of them, the deletion as a tombstone.
    const feed = await api(`${base("notes")}/changes`, { token: user.accessToken });
    expect(feed.body.items).toEqual([created, updated, { id: n2.id, deleted: true, version: 2 }]);
  });

  it("an app can create records offline with its own ids and link and change them in the same batch", async () => {
    const user = await signup();
    const noteId = crypto.randomUUID();
    const postId = crypto.randomUUID();
    const res = await batch(user.accessToken, [
      { op: "create", collection: "notes", id: noteId, data: { title: "draft" } },
      { op: "create", collection: "posts", id: postId, data: { text: `see note ${noteId}` } },
      { op: "update", collection: "notes", id: noteId, ifMatch: 1, data: { body: `posted as ${postId}` } },
    ]);
    expect(res.status, res.text).toBe(200);
    expect(res.body.results.map((r: { id: string; version: number }) => [r.id, r.version])).toEqual([
      [noteId, 1],
      [postId, 1],
      [noteId, 2],
    ]);
    expect((await read(user, "notes", noteId)).body).toMatchObject({
      title: "draft",
      body: `posted as ${postId}`,
      version: 2,
    });
  });

  it("all or nothing: a stale ifMatch at index 2 → 412 naming operations.2, and no table changed", async () => {
    const user = await signup();
    const n = await createNote(user, { title: "v1" });
    await api(`${base("notes")}/records/${n.id}`, { method: "PATCH", token: user.accessToken, body: { title: "v2" } });
    await refused(
      user.accessToken,
      [
        { op: "create", collection: "notes", data: { title: "would be new" } },
        { op: "create", collection: "posts", data: { text: "would be new" } },
        { op: "update", collection: "notes", id: n.id, ifMatch: 1, data: { title: "stale" } },
        { op: "delete", collection: "notes", id: n.id },
      ],
      412,
      "version_conflict",
      "operations.2",
    );
    expect((await read(user, "notes", n.id)).body).toMatchObject({ title: "v2", version: 2 });
  });

  // Failures covered: not found, forbidden, invalid data, an earlier operation's effect.
  it("reports the first failing operation", async () => {
    const [me, other] = [await signup(), await signup()];
    const mine = await createNote(me, { title: "mine" });
    const theirNote = await createNote(other, { title: "theirs" });
    const theirPost = await createPost(other, "theirs");
    const create = { op: "create" as const, collection: "notes", data: { title: "x" } };
    // Another user's note under the owner rule: 404, as for the single route (existence not revealed).
    await refused(
      me.accessToken,
      [create, { op: "update", collection: "notes", id: theirNote.id, data: { title: "mine now" } }],
      404,
      "not_found",
      "operations.1",
    );
    // A public post that is not mine: readable, so 403.
    await refused(
      me.accessToken,
      [create, create, { op: "delete", collection: "posts", id: theirPost.id }],
      403,
      "forbidden",
      "operations.2",
    );
    // Invalid data is named down to the field.
    await refused(
      me.accessToken,
      [create, { op: "update", collection: "notes", id: mine.id, data: { title: "" } }],
      400,
      "validation_failed",
      "operations.1.data.title",
    );
    await refused(
      me.accessToken,
      [{ op: "create", collection: "notes", data: { title: "x", ownerId: other.id } }],
      400,
      "validation_failed",
      "operations.0.data.ownerId",
    );
    // An operation that fails because of an earlier one in the same batch.
    await refused(
      me.accessToken,
      [
        { op: "delete", collection: "notes", id: mine.id },
        { op: "update", collection: "notes", id: mine.id, data: { title: "gone" } },
      ],
      404,
      "not_found",
      "operations.1",
    );
    await refused(
      me.accessToken,
      [
        create,
        { op: "update", collection: "notes", id: mine.id, data: { pinned: true } },
        { op: "update", collection: "notes", id: mine.id, ifMatch: 1, data: { pinned: false } },
      ],
      412,
      "version_conflict",
      "operations.2",
    );
    // Unknown collection, missing id, data on a delete, ifMatch on a create.
    await refused(
      me.accessToken,
      [create, { op: "create", collection: "nope", data: {} }],
      400,
      "validation_failed",
      "operations.1.collection",
    );
    await refused(
      me.accessToken,
      [{ op: "update", collection: "notes", data: { title: "x" } }],
      400,
      "validation_failed",
      "operations.0.id",
    );
    await refused(
      me.accessToken,
      [{ op: "delete", collection: "notes", id: mine.id, data: {} }],
      400,
      "validation_failed",
      "operations.0.data",
    );
    await refused(
      me.accessToken,
      [{ op: "create", collection: "notes", ifMatch: 1, data: { title: "x" } }],
      400,
      "validation_failed",
      "operations.0.ifMatch",
    );
    expect((await read(me, "notes", mine.id)).body).toEqual(mine);
  });

  it("at most 50 operations; an empty batch is refused", async () => {
    const user = await signup();
    const ops: Op[] = Array.from({ length: limits.batchMaxOperations + 1 }, (_, i) => ({
      op: "create",
      collection: "notes",
      data: { title: `n${i}` },
    }));
    const before = await snapshot();
    expectProblem(await batch(user.accessToken, ops), 400, "validation_failed");
    expectProblem(await batch(user.accessToken, []), 400, "validation_failed");
    expect(changed(before, await snapshot())).toEqual([]);
    const full = await batch(user.accessToken, ops.slice(0, limits.batchMaxOperations));
    expect(full.status, full.text).toBe(200);
    expect(full.body.results).toHaveLength(limits.batchMaxOperations);
  });

  it("Idempotency-Key: a retried batch returns the first response and writes nothing twice", async () => {
    const user = await signup();
    const ops: Op[] = [{ op: "create", collection: "notes", data: { title: "once" } }];
    const first = await batch(user.accessToken, ops, { "idempotency-key": "batch-key-1" });
    expect(first.status).toBe(200);
    const before = await snapshot();
    const again = await batch(user.accessToken, ops, { "idempotency-key": "batch-key-1" });
    expect(again.status).toBe(200);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.body).toEqual(first.body);
    expect(changed(before, await snapshot())).toEqual([]);
    const list = await api(`${base("notes")}/records`, { token: user.accessToken });
    expect(list.body.items.filter((r: { title: string }) => r.title === "once")).toHaveLength(1);
  });

  it("subscribers get each change of a batch, in order", async () => {
    const user = await signup();
    const { socket } = await subscribe(user, "notes");
    const res = await batch(user.accessToken, [
      { op: "create", collection: "notes", data: { title: "b1" } },
      { op: "create", collection: "notes", data: { title: "b2" } },
    ]);
    expect(res.status).toBe(200);
    expect((await socket.changes(2)).map((f) => f.item)).toEqual(res.body.results);
    socket.close();
  });

  // No token and a tampered token get 401; strangers' records are not found.
  it("security: 401 without a valid token; the service key bypasses rules", async () => {
    const [me, other] = [await signup(), await signup()];
    const theirs = await createNote(other, { title: "theirs" });
    const ops: Op[] = [{ op: "delete", collection: "notes", id: theirs.id }];
    const before = await snapshot();
    expectProblem(await batch(null, ops), 401, "unauthorized");
    expectProblem(await batch(brokenSignature(me.accessToken), ops), 401, "unauthorized");
    expect(changed(before, await snapshot())).toEqual([]);
    await refused(me.accessToken, ops, 404, "not_found", "operations.0");
    const admin = await batch(serviceKey(), [
      ...ops,
      { op: "create", collection: "notes", data: { title: "by the service" } },
    ]);
    expect(admin.status, admin.text).toBe(200);
    expect(admin.body.results[1]).toMatchObject({ ownerId: null });
    expect((await read(other, "notes", theirs.id)).status).toBe(404);
  });
});
