import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createDb } from "../../../src/db";
import type { Principal } from "../../../src/env";
import { AppError } from "../../../src/errors";
import { COLLECTION, collection, field } from "../../../src/features/collections/define";
import { getRecord, listRecords } from "../../../src/features/collections/reads";
import type { Collection } from "../../../src/features/collections/registry";
import { changesSince } from "../../../src/features/collections/service";
import {
  commitCreate as createRecord,
  commitDelete as deleteRecord,
  commitUpdate as updateRecord,
} from "../../../src/features/collections/writes";
import { api, expectProblem, signup } from "../../helpers/api";
import { base, createNote, createPost, list } from "./helpers";

const notes = `${base("notes")}/records`;
const posts = `${base("posts")}/records`;
const GARBAGE = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.not-a-signature";

describe("collections: records, security", () => {
  it("without a token: owner and authenticated rules answer 401", async () => {
    const owner = await signup();
    const note = await createNote(owner);
    const post = await createPost(owner);
    const calls = [
      api(notes, { body: { title: "t" } }),
      api(notes),
      api(`${notes}/${note.id}`),
      api(`${notes}/${note.id}`, { method: "PATCH", body: { title: "x" } }),
      api(`${notes}/${note.id}`, { method: "PUT", body: { title: "x" } }),
      api(`${notes}/${note.id}`, { method: "DELETE" }),
      api(`${base("notes")}/changes`),
      api(posts, { body: { text: "t" } }),
      api(`${posts}/${post.id}`, { method: "PATCH", body: { text: "x" } }),
      api(`${posts}/${post.id}`, { method: "DELETE" }),
    ];
    for (const res of await Promise.all(calls)) expectProblem(res, 401, "unauthorized");
    expect((await api(`${notes}/${note.id}`, { token: owner.accessToken })).body.title).toBe("a note");
  });

  it("a garbage or tampered token is a 401, even on public routes", async () => {
    const owner = await signup();
    const note = await createNote(owner);
    const post = await createPost(owner);
    for (const token of [GARBAGE, "x", `${owner.accessToken}x`]) {
      for (const res of await Promise.all([
        api(notes, { token, body: { title: "t" } }),
        api(`${notes}/${note.id}`, { token }),
        api(`${posts}/${post.id}`, { token }),
        api(`${base("posts")}/changes`, { token }),
        api(`${posts}/${post.id}`, { method: "DELETE", token }),
      ])) {
        expect(res.status).toBe(401);
        expect(res.headers.get("content-type")).toContain("application/problem+json");
      }
    }
  });

  it("a stranger cannot see or touch another user's note: 404, never 403", async () => {
    const owner = await signup();
    const stranger = await signup();
    const note = await createNote(owner, { title: "secret" });
    const t = stranger.accessToken;
    expectProblem(await api(`${notes}/${note.id}`, { token: t }), 404, "not_found");
    expectProblem(
      await api(`${notes}/${note.id}`, { token: t, method: "PATCH", body: { title: "pwned" } }),
      404,
      "not_found",
    );
    expectProblem(
      await api(`${notes}/${note.id}`, { token: t, method: "PUT", body: { title: "pwned" } }),
      404,
      "not_found",
    );
    expectProblem(await api(`${notes}/${note.id}`, { token: t, method: "DELETE" }), 404, "not_found");
    expectProblem(
      await api(`${notes}/${note.id}`, {
        token: t,
        method: "PATCH",
        body: { title: "pwned" },
        headers: { "if-match": '"9"' },
      }),
      404,
      "not_found",
    );
    expect((await list("notes", t, { where: { ownerId: owner.id } })).body.items).toEqual([]);
    expect((await list("notes", t, { where: { title: { $contains: "secret" } } })).body.items).toEqual([]);
    expect((await api(`${base("notes")}/changes`, { token: t })).body.items).toEqual([]);
    const still = await api(`${notes}/${note.id}`, { token: owner.accessToken });
    expect(still.body).toEqual(note);
  });

  it("a readable post of someone else cannot be changed or deleted: 403", async () => {
    const author = await signup();
    const other = await signup();
    const post = await createPost(author, "mine");
    expectProblem(
      await api(`${posts}/${post.id}`, { token: other.accessToken, method: "PATCH", body: { text: "edited" } }),
      403,
      "forbidden",
    );
    expectProblem(
      await api(`${posts}/${post.id}`, { token: other.accessToken, method: "PUT", body: { text: "edited" } }),
      403,
      "forbidden",
    );
    expectProblem(await api(`${posts}/${post.id}`, { token: other.accessToken, method: "DELETE" }), 403, "forbidden");
    expect((await api(`${posts}/${post.id}`)).body).toEqual(post);
  });

  it("a record cannot be created for, or moved to, another owner", async () => {
    const me = await signup();
    const victim = await signup();
    expectProblem(
      await api(notes, { token: me.accessToken, body: { title: "t", ownerId: victim.id } }),
      400,
      "validation_failed",
    );
    const note = await createNote(me);
    expectProblem(
      await api(`${notes}/${note.id}`, { token: me.accessToken, method: "PATCH", body: { ownerId: victim.id } }),
      400,
      "validation_failed",
    );
    expect((await list("notes", victim.accessToken)).body.items).toEqual([]);
  });

  it("where values are bound, never spliced into SQL", async () => {
    const me = await signup();
    await createNote(me, { title: "plain" });
    for (const where of [
      { title: "x' OR '1'='1" },
      { title: { $contains: "') OR 1=1 --" } },
      { tags: { $contains: "x' OR 1=1 --" } },
    ]) {
      const res = await list("notes", me.accessToken, { where });
      expect(res.status).toBe(200);
      expect(res.body.items).toEqual([]);
    }
    // Bound, the same kind of value matches a record that holds it literally, and only that one.
    const literal = await createNote(me, { title: "x' OR '1'='1", tags: ["x' OR 1=1 --"] });
    for (const where of [{ title: "x' OR '1'='1" }, { tags: { $contains: "x' OR 1=1 --" } }]) {
      const res = await list("notes", me.accessToken, { where });
      expect(res.status).toBe(200);
      expect(res.body.items.map((r: { id: string }) => r.id)).toEqual([literal.id]);
    }
  });
});

describe("collections: rule none (service key only)", () => {
  // A collection declared only for this test, with its table created here.
  const vaultTable = collection("vault", {
    fields: { secret: field.string({ max: 100 }) },
    rules: { create: "none", read: "none", list: "none", update: "none", delete: "none" },
  });
  const vault: Collection = { ...vaultTable[COLLECTION], table: vaultTable };
  const db = createDb(env.DB);
  const service: Principal = { kind: "service" };

  async function setup() {
    await env.DB.prepare(
      "CREATE TABLE IF NOT EXISTS app_vault (id text PRIMARY KEY NOT NULL, owner_id text, created_at text NOT NULL, " +
        "updated_at text NOT NULL, version integer NOT NULL, secret text NOT NULL)",
    ).run();
    const user = await signup();
    const p: Principal = { kind: "user", userId: user.id, sessionId: "s", anonymous: false };
    return { p, rec: (await createRecord(db, vault, service, { secret: "launch codes" })).record };
  }

  const code = async (f: () => Promise<unknown>) => {
    try {
      await f();
      return "ok";
    } catch (e) {
      if (e instanceof AppError) return e.code;
      throw e;
    }
  };

  it("users get 403 for create and list, 404 for the records; anonymous callers 401", async () => {
    const { p, rec } = await setup();
    expect(await code(() => createRecord(db, vault, p, { secret: "x" }))).toBe("forbidden");
    expect(await code(() => listRecords(db, vault, p, { sort: "-createdAt", limit: 10 }))).toBe("forbidden");
    expect(await code(() => changesSince(db, vault, p, { limit: 10 }))).toBe("forbidden");
    expect(await code(() => getRecord(db, vault, p, rec.id))).toBe("not_found");
    expect(await code(() => updateRecord(db, vault, p, rec.id, { secret: "x" }, null))).toBe("not_found");
    expect(await code(() => deleteRecord(db, vault, p, rec.id, null))).toBe("not_found");
    expect(await code(() => getRecord(db, vault, null, rec.id))).toBe("unauthorized");
    expect(await code(() => createRecord(db, vault, null, { secret: "x" }))).toBe("unauthorized");
  });

  it("the service key does everything", async () => {
    const { rec } = await setup();
    expect(rec).toMatchObject({ ownerId: null, version: 1, secret: "launch codes" });
    expect(await getRecord(db, vault, service, rec.id)).toEqual(rec);
    expect((await updateRecord(db, vault, service, rec.id, { secret: "y" }, [1])).record.version).toBe(2);
    expect((await listRecords(db, vault, service, { sort: "-createdAt", limit: 10 })).items.map((r) => r.id)).toContain(
      rec.id,
    );
    await deleteRecord(db, vault, service, rec.id, null);
    const feed = await changesSince(db, vault, service, { limit: 50 });
    expect(feed.items).toContainEqual({ id: rec.id, deleted: true, version: 3 });
  });
});
