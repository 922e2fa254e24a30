import { env } from "cloudflare:workers";
import * as v from "valibot";
import { describe, expect, it } from "vitest";
import { createDb } from "../../../src/db";
import { AppError } from "../../../src/errors";
import { type Access, access } from "../../../src/features/collections/access";
import { countQuery, getQuery, listQuery, planList } from "../../../src/features/collections/reads";
import { type Collection, collections, findCollection } from "../../../src/features/collections/registry";
import { prunableQuery } from "../../../src/features/collections/retention";
import { collectionSchemas, operators } from "../../../src/features/collections/schemas";
import { changesQuery, logMetaQuery } from "../../../src/features/collections/service";
import { encodeCursor } from "../../../src/lib/cursor";
import { signup } from "../../helpers/api";
import { explain } from "../../helpers/query-plan";
import { createNote, createPost, list } from "./helpers";

const db = createDb(env.DB);
const notes = findCollection("notes")!;
const posts = findCollection("posts")!;

/** SQLite's plan for the exact statement the service runs. */
async function plan(q: { toSQL(): { sql: string; params: unknown[] } }): Promise<string> {
  const { sql, params } = q.toSQL();
  return explain(sql, params);
}

/** Asserts every table access goes through an index and no sort happens after the fact. */
function expectIndexed(p: string, ...indexes: string[]) {
  for (const ix of indexes) expect(p).toContain(`USING INDEX ${ix}`);
  expect(p).not.toMatch(/SCAN \S+(?! USING (COVERING )?INDEX)$/m);
  expect(p).not.toContain("USE TEMP B-TREE");
}

describe("collections: the hot queries use indexes", () => {
  it("read by id", async () => {
    const user = await signup();
    const note = await createNote(user);
    const own: Access = { kind: "own", userId: user.id };
    expectIndexed(await plan(getQuery(db, notes, own, note.id)), "sqlite_autoindex_app_notes_1");
    expectIndexed(await plan(getQuery(db, posts, { kind: "all" }, note.id)), "sqlite_autoindex_app_posts_1");
  });

  it("list by owner with sort, first page and after a cursor", async () => {
    const user = await signup();
    for (let i = 0; i < 3; i++) await createNote(user, { title: `n${i}` });
    const own: Access = { kind: "own", userId: user.id };
    const first = await plan(listQuery(db, notes, own, { sort: "-createdAt", limit: 50 }));
    expectIndexed(first, "app_notes_owner_created_idx");
    expect(first).toContain("SEARCH app_notes");

    const page = await list("notes", user.accessToken, { limit: "1" });
    const next = await plan(listQuery(db, notes, own, { sort: "-createdAt", limit: 1, cursor: page.body.nextCursor }));
    expectIndexed(next, "app_notes_owner_created_idx");
    // the cursor is a range bound on the index, not a filter over the pages before it
    expect(next).toMatch(/app_notes_owner_created_idx \(owner_id=\? AND \(created_at,id\)<\(\?,\?\)\)/);

    expectIndexed(
      await plan(listQuery(db, notes, own, { sort: "updatedAt", limit: 50 })),
      "app_notes_owner_updated_idx",
    );
  });

  it("list of a public collection, newest first", async () => {
    const user = await signup();
    await createPost(user);
    expectIndexed(
      await plan(listQuery(db, posts, { kind: "all" }, { sort: "-createdAt", limit: 50 })),
      "app_posts_created_idx",
    );
  });

  it("changes since a cursor, for one owner and for everyone", async () => {
    const user = await signup();
    await createNote(user);
    const own = await plan(changesQuery(db, notes, { kind: "own", userId: user.id }, 0, 50));
    expectIndexed(own, "record_changes_owner_seq_idx", "sqlite_autoindex_app_notes_1");
    expect(own).toMatch(
      /SEARCH record_changes USING INDEX record_changes_owner_seq_idx \(collection=\? AND owner_id=\? AND seq>\?\)/,
    );
    const all = await plan(changesQuery(db, posts, { kind: "all" }, 0, 50));
    expectIndexed(all, "record_changes_collection_seq_idx", "sqlite_autoindex_app_posts_1");
  });

  it("a team-scoped collection: a read is one statement with the membership check inside it", async () => {
    const items = findCollection("items")!;
    const team: Access = { kind: "team", userId: "u", rank: 0, ownerRank: null };
    const p = await plan(getQuery(db, items, team, "id"));
    expect(p).toMatch(/SEARCH app_items USING INDEX sqlite_autoindex_app_items_1 \(id=\?\)/);
    expect(p).toMatch(/SEARCH team_members USING (COVERING )?INDEX team_members_user_idx \(user_id=\?\)/);
    expect(p).not.toMatch(/SCAN (app_items|team_members)/);
    // A rule that gives the record's owner less to prove than everyone else: still one statement, no scan.
    const owned = await plan(getQuery(db, items, { ...team, rank: 2, ownerRank: 0 }, "id"));
    expect(owned).toMatch(/SEARCH app_items USING INDEX sqlite_autoindex_app_items_1 \(id=\?\)/);
    expect(owned).not.toMatch(/SCAN (app_items|team_members)/);
  });

  it("a team-scoped feed: one team's is a range of the team index in seq order, the caller's teams' one range each", async () => {
    const items = findCollection("items")!;
    const team: Access = { kind: "team", userId: "u", rank: 0, ownerRank: null };
    const one = await plan(changesQuery(db, items, team, 0, 50, "t1"));
    expect(one).toMatch(
      /SEARCH record_changes USING INDEX record_changes_team_seq_idx \(collection=\? AND team_id=\? AND seq>\?\)/,
    );
    expect(one).not.toContain("USE TEMP B-TREE");
    const all = await plan(changesQuery(db, items, team, 0, 50));
    expect(all).toMatch(
      /SEARCH record_changes USING INDEX record_changes_team_seq_idx \(collection=\? AND team_id=\? AND seq>\?\)/,
    );
    expect(all).not.toMatch(/SCAN record_changes|record_changes_collection_seq_idx/);
    // The team hub's last seq: one seek at the end of the team's range.
    const meta = await plan(logMetaQuery(db, items, { acc: { kind: "all" }, teamId: "t1" }));
    expect(meta).toMatch(/record_changes_team_seq_idx \(collection=\? AND team_id=\?\)/);
  });

  it("a live hub's log metadata (last seq in scope, retention horizon, session check) seeks indexes", async () => {
    const user = await signup();
    await createNote(user);
    /** Every table is searched through an index; the only scan is the one constant row the subqueries hang off. */
    const seeks = (p: string, ...lines: RegExp[]) => {
      for (const line of lines) expect(p).toMatch(line);
      expect(
        p
          .split("\n")
          .filter((l) => l.startsWith("SCAN "))
          .sort(),
      ).toEqual(["SCAN CONSTANT ROW", "SCAN one"]);
      expect(p).not.toContain("USE TEMP B-TREE");
    };
    seeks(
      await plan(
        logMetaQuery(db, notes, { acc: { kind: "own", userId: user.id } }, { userId: user.id, sessionId: "s" }),
      ),
      /SEARCH record_changes USING COVERING INDEX record_changes_owner_seq_idx \(collection=\? AND owner_id=\?\)/,
      /SEARCH record_change_horizons USING INDEX sqlite_autoindex_record_change_horizons_1 \(collection=\?\)/,
      /SEARCH sessions USING INDEX sqlite_autoindex_sessions_1 \(id=\?\)/,
    );
    seeks(
      await plan(logMetaQuery(db, posts, { acc: { kind: "all" } })),
      /SEARCH record_changes USING COVERING INDEX record_changes_collection_seq_idx \(collection=\?\)/,
    );
  });

  it("the retention task walks old tombstones through their partial index, oldest first", async () => {
    const p = await plan(prunableQuery(db, new Date().toISOString()));
    expect(p).toBe("SEARCH record_changes USING COVERING INDEX record_changes_tombstones_idx (changed_at<?)");
  });
});

// --- every list the API accepts -------------------------------------------------------------

type Kind =
  | "string"
  | "integer"
  | "number"
  | "boolean"
  | "stringArray"
  | "ownerId"
  | "teamId"
  | "ref"
  | "count"
  | "timestamp";

/** Every field a `where` or `sort` could name, with its kind, straight from the declaration. */
function fieldsOf(col: Collection): [string, Kind, boolean][] {
  return [
    ["ownerId", "ownerId", true],
    ["createdAt", "timestamp", false],
    ["updatedAt", "timestamp", false],
    ...(col.scope === "team" ? [["teamId", "teamId", false] as [string, Kind, boolean]] : []),
    ...Object.entries(col.fields).map(([k, f]): [string, Kind, boolean] => [k, f.kind, f.nullable]),
  ];
}

const sample = (kind: Kind, ownerId: string, alt = false): string | number | boolean => {
  switch (kind) {
    case "ownerId":
      return ownerId;
    case "teamId":
      return alt ? "team-b" : "team-a";
    case "timestamp":
      return alt ? "2026-01-02T00:00:00.000Z" : "2026-01-01T00:00:00.000Z";
    case "integer":
    case "number":
      return alt ? 2 : 1;
    case "boolean":
      return !alt;
    default:
      return alt ? "y" : "x";
  }
};

/** One-field conditions: bare equality, null, and every operator with a value of the field's type. */
function conditions(kind: Kind, nullable: boolean, ownerId: string): unknown[] {
  const out: unknown[] = [sample(kind, ownerId)];
  if (nullable) out.push(null, { $ne: null }, { $in: [sample(kind, ownerId), null] });
  for (const op of operators)
    out.push({ [op]: op === "$in" ? [sample(kind, ownerId), sample(kind, ownerId, true)] : sample(kind, ownerId) });
  return out;
}

/** The `where`s to try: none, each single condition, each pair of equalities, and each narrowed to one owner. */
function wheres(col: Collection, ownerId: string): Record<string, unknown>[] {
  const fields = fieldsOf(col);
  const singles = fields.flatMap(([k, kind, nullable]) => conditions(kind, nullable, ownerId).map((c) => ({ [k]: c })));
  const equalities = fields
    .filter(([, kind]) => kind !== "stringArray")
    .map(([k, kind]) => [k, sample(kind, ownerId)] as const);
  const pairs = equalities.flatMap(([a, x], i) => equalities.slice(i + 1).map(([b, y]) => ({ [a]: x, [b]: y })));
  const base = [{}, ...singles, ...pairs];
  return [...base, ...base.filter((w) => !("ownerId" in w)).map((w) => ({ ownerId, ...w }))];
}

/** Every sort string, accepted or not (the schema decides). */
const sortsOf = (col: Collection) => fieldsOf(col).flatMap(([k]) => [k, `-${k}`]);

/** Accesses a list runs under: the rules' own narrowing for users, and everything for the service key. */
const accessesOf = (col: Collection, userId: string): Access[] => {
  const user = access(col, ["list", "read"], { kind: "user", userId, sessionId: "s", anonymous: false });
  return user.kind === "all" ? [user] : [user, { kind: "all" }];
};

const describeAccess = (a: Access) => a.kind;

/**
 * Asserts the plan reads the app table only through the index the service chose and never sorts
 * after the fact. (`SCAN app_x` alone is a full table scan; `USE TEMP B-TREE` sorts every match.)
 */
function expectIndexedList(p: string, table: string, index: string, what: string, sorts = false) {
  const lines = p.split("\n").filter((l) => new RegExp(`\\b(SCAN|SEARCH) ${table}\\b`).test(l));
  expect(lines.length, `${what}\n${p}`).toBeGreaterThan(0);
  if (sorts) {
    // Over several of the caller's teams: one range of a team index per team, then a sort of those rows.
    for (const line of lines)
      expect(line, `${what}: reads ${table} beyond the caller's teams\n${p}`).toMatch(
        /^SEARCH \S+ USING (COVERING )?INDEX \S+_team_\S* \(team_id=\?/,
      );
    return;
  }
  for (const line of lines)
    expect(line, `${what}: reads ${table} without the index ${index}\n${p}`).toMatch(
      new RegExp(`USING (COVERING )?INDEX ${index}\\b`),
    );
  expect(p, `${what}: sorts after the fact\n${p}`).not.toContain("USE TEMP B-TREE");
}

/** EXPLAIN QUERY PLAN of many statements, 50 per D1 batch. */
async function plans(queries: { toSQL(): { sql: string; params: unknown[] } }[]): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < queries.length; i += 50) {
    const stmts = queries.slice(i, i + 50).map((q) => {
      const { sql, params } = q.toSQL();
      return env.DB.prepare(`EXPLAIN QUERY PLAN ${sql}`).bind(...params);
    });
    const res = await env.DB.batch<{ detail: string }>(stmts);
    out.push(...res.map((r) => r.results.map((x) => x.detail).join("\n")));
  }
  return out;
}

// Every accepted list: sort x where x access x cursor.
describe("collections: every accepted list of every declared collection is indexed", () => {
  for (const col of collections) {
    it(`${col.name}`, async () => {
      const user = await signup();
      const S = collectionSchemas(col);
      const table = `app_${col.name}`;
      const checks: {
        what: string;
        index: string;
        sorts: boolean;
        query: ReturnType<typeof listQuery>;
        count: ReturnType<typeof countQuery>;
      }[] = [];
      let refused = 0;
      for (const acc of accessesOf(col, user.id)) {
        for (const sort of sortsOf(col)) {
          for (const where of wheres(col, user.id)) {
            const query = v.safeParse(S.listQuery, { sort, where: JSON.stringify(where), limit: "50" });
            if (!query.success) {
              refused++;
              continue;
            }
            const key = sort.replace(/^-/, "");
            const kind = fieldsOf(col).find(([k]) => k === key)![1];
            for (const cursor of [
              undefined,
              encodeCursor({ s: sort, v: sample(kind, user.id), i: "01900000-0000-7000-8000-000000000000" }),
            ]) {
              const what =
                `${col.name} ${describeAccess(acc)} sort=${sort} where=${JSON.stringify(where)}` +
                (cursor ? " +cursor" : "");
              try {
                const opts = { ...query.output, cursor };
                const plan = planList(col, acc, opts);
                // Over several of the caller's teams: their index ranges, then a sort of those rows only.
                const sorts = acc.kind === "team" && !plan.served.some((t) => t.key === "teamId");
                checks.push({
                  what,
                  index: plan.index.name,
                  sorts,
                  query: listQuery(db, col, acc, opts),
                  count: countQuery(db, col, acc, opts),
                });
              } catch (e) {
                // Refused at request time (a filter that a list across all owners cannot serve from its index).
                if (e instanceof AppError && e.code === "validation_failed") {
                  refused++;
                  continue;
                }
                throw e;
              }
            }
          }
        }
      }
      const explained = await plans(checks.map((c) => c.query));
      for (const [i, c] of checks.entries()) expectIndexedList(explained[i]!, table, c.index, c.what, c.sorts);
      // `?count=true`: the same match through the same index, never the table itself.
      const counted = await plans(checks.filter((c) => !c.what.endsWith("+cursor")).map((c) => c.count));
      for (const [i, c] of checks.filter((c) => !c.what.endsWith("+cursor")).entries()) {
        const lines = counted[i]!.split("\n").filter((l) => new RegExp(`\\b(SCAN|SEARCH) ${table}\\b`).test(l));
        // Counting a whole table: SQLite counts its smallest index (the count opcode), whatever it was told.
        const whole = c.what.includes(" all ") && c.what.includes("where={}");
        for (const line of lines)
          expect(line, `count of ${c.what}\n${counted[i]}`).toMatch(
            whole ? /^SCAN \S+ USING COVERING INDEX/ : new RegExp(`INDEX ${c.index}\\b`),
          );
        expect(lines.length, c.what).toBeGreaterThan(0);
      }
      console.log(
        `${col.name}: ${checks.length} accepted list shapes checked with EXPLAIN QUERY PLAN, ${refused} refused`,
      );
      expect(checks.length).toBeGreaterThan(50);
      // Every index the declaration made serves at least one accepted list.
      expect(new Set(checks.map((c) => c.index))).toEqual(new Set(col.indexes.map((ix) => ix.name)));
    });
  }
});
