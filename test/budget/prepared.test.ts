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
