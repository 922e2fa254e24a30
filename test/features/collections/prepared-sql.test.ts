/**
 * Statements built once per shape: a user's plain create (`plainCreate`) and a list without count or
 * expand (`preparedList`) run the same SQL, with the same values, as drizzle builds per request, and
 * answer the same (defaults, JSON, booleans; each caller its own records).
 */
import { env } from "cloudflare:workers";
import { sql } from "drizzle-orm";
import { expect, it, vi } from "vitest";
import { createDb } from "../../../src/db";
import { recordChanges } from "../../../src/db/schema/collections";
import { userExistsSql } from "../../../src/features/auth";
import { selectValues } from "../../../src/features/collections/create-sql";
import { listQuery, listRecords } from "../../../src/features/collections/reads";
import { findCollection } from "../../../src/features/collections/registry";
import { commitCreate, logReturning } from "../../../src/features/collections/writes";
import { countingD1 } from "../../budget/counting-d1";
import { signup } from "../../helpers/api";

it("the prebuilt create binds what drizzle builds per request, and answers the same", async () => {
  const user = await signup();
  const notes = findCollection("notes")!;
  const { db: counting, counter } = countingD1(env.DB);
  const db = createDb(counting);
  const p = { kind: "user" as const, userId: user.id, sessionId: "s", anonymous: false };
  // Drizzle's own batch (which builds every statement's SQL) is not used.
  const drizzleBatch = vi.spyOn(db, "batch");
  const r = await commitCreate(db, notes, p, { title: "prebuilt", tags: ["a"] });
  expect(drizzleBatch).not.toHaveBeenCalled();
  expect(r.record).toMatchObject({ title: "prebuilt", body: "", pinned: false, tags: ["a"], ownerId: user.id });
  expect(counter.calls).toHaveLength(1);
  // What drizzle builds for the same values, per request.
  const lives = sql`${userExistsSql(user.id)} = 1`;
  const row = { ...r.record };
  const change = {
    seq: null,
    collection: "notes",
    recordId: r.record.id,
    ownerId: user.id,
    teamId: null,
    version: 1,
    deleted: false,
    changedAt: r.record.createdAt,
  };
  const built = [
    db
      .insert(notes.table)
      .select(selectValues(notes.table, { ...row, body: undefined, pinned: undefined }, lives))
      .returning()
      .toSQL(),
    db
      .insert(recordChanges)
      .select(selectValues(recordChanges, change, lives))
      .returning(logReturning(notes, "create"))
      .toSQL(),
  ];
  expect(counter.calls[0]!.sql).toBe(built.map((b) => b.sql).join(" ; "));
  const got = await db.select().from(notes.table).where(sql`id = ${r.record.id}`).get();
  expect(got).toEqual(r.record);
});

it("a list built once per shape runs drizzle's SQL for it, with each caller's own values", async () => {
  const notes = findCollection("notes")!;
  const users = [await signup(), await signup()];
  const db = createDb(env.DB);
  for (const u of users)
    for (let i = 0; i < 3; i++)
      await commitCreate(
        db,
        notes,
        { kind: "user", userId: u.id, sessionId: "s", anonymous: false },
        {
          title: `${u.id} ${i}`,
          pinned: i !== 1,
        },
      );
  const o = { where: { pinned: true }, sort: "-createdAt", limit: 1 };
  for (const u of users) {
    const acc = { kind: "own" as const, userId: u.id };
    const { db: counting, counter } = countingD1(env.DB);
    const first = await listRecords(
      createDb(counting),
      notes,
      { kind: "user", userId: u.id, sessionId: "s", anonymous: false },
      o,
    );
    const next = await listRecords(
      createDb(counting),
      notes,
      { kind: "user", userId: u.id, sessionId: "s", anonymous: false },
      { ...o, cursor: first.nextCursor! },
    );
    expect([...first.items, ...next.items].map((r) => r.title)).toEqual([`${u.id} 2`, `${u.id} 0`]);
    // The SQL drizzle builds per request for the same list.
    expect(counter.calls[0]!.sql).toBe(listQuery(db, notes, acc, o).toSQL().sql);
    expect(counter.calls[1]!.sql).toBe(listQuery(db, notes, acc, { ...o, cursor: first.nextCursor! }).toSQL().sql);
  }
});
