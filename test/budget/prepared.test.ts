/**
 * Issue 14 (request overhead): the hottest read (GET record) runs a query drizzle built once per
 * isolate (`prepared` in src/db), not one it builds from the query builders on every request.
 * Same SQL, same rows, run on the request's own D1 client.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { eq, sql } from "drizzle-orm";
import { SQLiteAsyncDialect } from "drizzle-orm/sqlite-core";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createDb, prepared } from "../../src/db";
import { users } from "../../src/db/schema";
import { getQuery } from "../../src/features/collections/reads";
import { findCollection } from "../../src/features/collections/registry";
import { app } from "../../src/router";
import { api, freshIp, signup } from "../helpers/api";
import { countingD1 } from "./counting-d1";

afterEach(() => {
  vi.restoreAllMocks();
});

describe("the drizzle client", () => {
  // A client is built per request: with a relational schema drizzle would build one relational
  // query builder per table on each (the largest cost of a short request's own code).
  it("builds no relational query builder per table, and its query builders work", async () => {
    const user = await signup();
    const db = createDb(env.DB);
    expect(Object.keys((db as unknown as { query: object }).query)).toEqual([]);
    const [found] = await db.select().from(users).where(eq(users.id, user.id));
    expect(found).toMatchObject({ id: user.id, email: user.email });
  });
});

describe("prepared queries", () => {
  // Each call runs on the client it is given, with that call's values.
  it("return what the builder's query returns, on each call's client with its values", async () => {
    const user = await signup();
    const created = await api("/v1/collections/notes/records", {
      token: user.accessToken,
      body: { title: "prepared", tags: ["x"] },
    });
    expect(created.status).toBe(201);
    const notes = findCollection("notes");
    if (!notes) throw new Error("the notes collection is declared in src/app/collections.ts");
    const byIdAndOwner = prepared((db) =>
      db
        .select()
        .from(notes.table)
        .where(
          sql`${notes.table.id} = ${sql.placeholder("id")} AND ${notes.table.ownerId} = ${sql.placeholder("owner")}`,
        ),
    );
    const { db, counter } = countingD1(env.DB);
    const row = await byIdAndOwner(createDb(db)).get({ id: created.body.id, owner: user.id });
    const built = await getQuery(createDb(env.DB), notes, { kind: "own", userId: user.id }, created.body.id).get();
    expect(row).toEqual(built);
    expect(row).toMatchObject({ id: created.body.id, title: "prepared", tags: ["x"], ownerId: user.id });
    expect(counter.roundTrips).toBe(1);
    // Another call, another client, other values.
    const other = countingD1(env.DB);
    expect(await byIdAndOwner(createDb(other.db)).get({ id: created.body.id, owner: "someone-else" })).toBeUndefined();
    expect(other.counter.roundTrips).toBe(1);
    expect(counter.roundTrips).toBe(1);
  });

  // `prepared` maps rows with decoders worked out once (src/db, mapRowsFast): the same objects as
  // drizzle's own mapping, for one row, many rows, and a batch's rows.
  it("map rows exactly as drizzle's builders do: get, all and batch, with JSON, boolean and null values", async () => {
    const user = await signup();
    for (const [title, pinned, tags] of [
      ["one", true, ["a", "b"]],
      ["two", false, []],
    ] as const) {
      const res = await api("/v1/collections/notes/records", {
        token: user.accessToken,
        body: { title, pinned, tags },
      });
      expect(res.status).toBe(201);
    }
    const notes = findCollection("notes");
    if (!notes) throw new Error("the notes collection is declared in src/app/collections.ts");
    const byOwner = (db: ReturnType<typeof createDb>) =>
      db
        .select()
        .from(notes.table)
        .where(sql`${notes.table.ownerId} = ${sql.placeholder("owner")}`)
        .orderBy(notes.table.createdAt);
    const fast = prepared(byOwner);
    const db = createDb(env.DB);
    const built = await byOwner(db).all({ owner: user.id });
    expect(built).toHaveLength(2);
    expect(built.every((r) => r.listId === null)).toBe(true);
    expect(await fast(db).all({ owner: user.id })).toEqual(built);
    expect(await fast(db).get({ owner: user.id })).toEqual(built[0]);
    // As a batch runs it (create-sql.ts): D1's batch answer, mapped by the query.
    const q = fast(db) as unknown as { stmt: D1PreparedStatement; mapResult(r: unknown, fromBatch: boolean): unknown };
    const [raw] = await env.DB.batch([q.stmt.bind(user.id)]);
    expect(q.mapResult(raw, true)).toEqual(built);
    // Key order too (JSON answers keep it).
    expect(Object.keys((await fast(db).all({ owner: user.id }))[0]!)).toEqual(Object.keys(built[0]!));
  });

  it("GET record builds no SQL per request once warm (drizzle's sqlToQuery is not called)", async () => {
    const user = await signup();
    const created = await api("/v1/collections/notes/records", { token: user.accessToken, body: { title: "warm" } });
    const get = async () => {
      const ctx = createExecutionContext();
      const res = await app.fetch(
        new Request(`https://outpost.test/v1/collections/notes/records/${created.body.id}`, {
          headers: { authorization: `Bearer ${user.accessToken}`, "cf-connecting-ip": freshIp() },
        }),
        env,
        ctx,
      );
      await waitOnExecutionContext(ctx);
      return res;
    };
    expect((await get()).status).toBe(200);
    const build = vi.spyOn(SQLiteAsyncDialect.prototype, "sqlToQuery");
    const res = await get();
    expect(res.status).toBe(200);
    expect((await res.json()) as { id: string }).toMatchObject({ id: created.body.id, title: "warm" });
    expect(build).not.toHaveBeenCalled();
  });
});
