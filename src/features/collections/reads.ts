/** Record reads: one record by id, planned and keyset-paginated lists, and the console's counts. */
import { and, asc, desc, eq, getTableColumns, or, type SQL, sql } from "drizzle-orm";
import type { SQLiteColumn } from "drizzle-orm/sqlite-core";
import * as v from "valibot";
import { type Database, prepared, runBatch } from "../../db";
import type { Principal } from "../../env";
import { AppError } from "../../errors";
import { decodeCursor, encodeCursor } from "../../lib/cursor";
import { keysetPage } from "../../lib/keyset";
import { noTeam, RANK, roleQuery } from "../teams";
import { type Access, access, leastRank, notFound, type RecordRow, recordFilter, teamColumn } from "./access";
import type { ListIndex } from "./define";
import { expandColumns, liftExpanded } from "./expand";
import { type Collection, collections } from "./registry";
import type { Scalar, Where } from "./schemas";

const columnOf = (col: Collection, key: string): SQLiteColumn => {
  const column = col.table[key];
  if (!column) throw new Error(`collection ${col.name} has no field ${key}`);
  return column;
};

/** Declared nullable fields and `ownerId` (null for service-made records) can hold NULL. */
const isNullable = (col: Collection, key: string) => key === "ownerId" || col.fields[key]?.nullable === true;

/** The query behind a read by id (exported for the query-plan test); `extra`: expand columns. */
export function getQuery(db: Database, col: Collection, acc: Access, id: string, extra?: Record<string, SQL.Aliased>) {
  return db
    .select(extra ? { ...getTableColumns(col.table), ...extra } : getTableColumns(col.table))
    .from(col.table)
    .where(and(eq(col.table.id, id), recordFilter(col, acc)));
}

/** `getQuery` built once per collection and access kind (`prepared`): the hottest read skips drizzle's SQL building. */
const getById = new Map<string, (db: Database) => { get(values: Record<string, unknown>): Promise<unknown> }>();
function preparedGet(col: Collection, own: boolean) {
  const key = `${col.name}:${own ? "own" : "all"}`;
  let q = getById.get(key);
  if (!q) {
    q = prepared((db) =>
      db
        .select()
        .from(col.table)
        .where(
          and(
            eq(col.table.id, sql.placeholder("id")),
            own ? eq(col.table.ownerId, sql.placeholder("owner")) : undefined,
          ),
        ),
    );
    getById.set(key, q);
  }
  return q;
}

/**
 * A record the caller may read; 404 otherwise (never 403: existence is not revealed). With `expand`,
 * the records its references name, read in the same round trip.
 */
export async function getRecord(
  db: Database,
  col: Collection,
  p: Principal | null,
  id: string,
  expand: readonly string[] = [],
): Promise<RecordRow> {
  const acc = access(col, "read", p);
  if (expand.length > 0 && acc.kind !== "denied") {
    const rec = (await getQuery(db, col, acc, id, expandColumns(col, p, expand)).get()) as RecordRow | undefined;
    if (!rec) throw notFound(col);
    liftExpanded(col, [rec], expand);
    return rec;
  }
  const row =
    acc.kind === "denied"
      ? undefined
      : acc.kind === "team"
        ? // The membership check is inside the one statement (a removed member gets 404 at once).
          ((await getQuery(db, col, acc, id).get()) as RecordRow | undefined)
        : ((await preparedGet(
            col,
            acc.kind === "own",
          )(db).get({ id, owner: acc.kind === "own" ? acc.userId : null })) as RecordRow | undefined);
  if (!row) throw notFound(col);
  return row;
}

/** Operators an index range can serve on the sort field (the rest are checked row by row). */
const RANGE_OPS = new Set(["$eq", "$gt", "$gte", "$lt", "$lte"]);

/** One term of a `where`: `field op operand` (a bare value is `$eq`). */
export interface Term {
  key: string;
  op: string;
  operand: Scalar | Scalar[];
}

export const termsOf = (where: Where | undefined): Term[] =>
  Object.entries(where ?? {}).flatMap(([key, cond]) =>
    cond === null || typeof cond !== "object"
      ? [{ key, op: "$eq", operand: cond }]
      : Object.entries(cond).map(([op, operand]) => ({ key, op, operand: operand as Scalar | Scalar[] })),
  );

/**
 * One term as SQL; every value is a bound parameter encoded like its column. A `residual` term is
 * checked on the rows the list's index walk visits: its column is written `+column`, which keeps
 * SQLite from driving the query with another index (and then sorting every match in a temp B-tree).
 */
export function termSql(col: Collection, t: Term, residual: boolean): SQL {
  const column = columnOf(col, t.key);
  const ref = residual ? sql`+${column}` : sql`${column}`;
  const p = (x: Scalar) => sql.param(x, column);
  const nullable = isNullable(col, t.key);
  if (Array.isArray(t.operand)) {
    // $in is the only operator with a list
    const values = t.operand.filter((x) => x !== null);
    const parts = [
      values.length ? sql`${ref} IN (${sql.join(values.map(p), sql`, `)})` : undefined,
      t.operand.includes(null) ? sql`${ref} IS NULL` : undefined,
    ].filter((x) => x !== undefined);
    return parts.length === 1 ? parts[0]! : or(...parts)!;
  }
  const x = t.operand;
  switch (t.op) {
    case "$eq":
      return x === null ? sql`${ref} IS NULL` : sql`${ref} = ${p(x)}`;
    case "$ne":
      return x === null
        ? sql`${ref} IS NOT NULL`
        : nullable
          ? sql`(${ref} <> ${p(x)} OR ${ref} IS NULL)`
          : sql`${ref} <> ${p(x)}`;
    case "$gt":
      return sql`${ref} > ${p(x)}`;
    case "$gte":
      return sql`${ref} >= ${p(x)}`;
    case "$lt":
      return sql`${ref} < ${p(x)}`;
    case "$lte":
      return sql`${ref} <= ${p(x)}`;
    case "$contains":
      // instr() instead of LIKE: no wildcards to escape and no 50-byte pattern limit
      return col.fields[t.key]?.kind === "stringArray"
        ? sql`EXISTS (SELECT 1 FROM json_each(${column}) WHERE json_each.value = ${x})`
        : sql`instr(${column}, ${x}) > 0`;
    default:
      throw new Error(`unknown operator ${t.op}`);
  }
}

export const ListCursor = v.strictObject({
  s: v.string(),
  v: v.union([v.string(), v.number(), v.boolean()]),
  i: v.pipe(v.string(), v.maxLength(64)),
});

export interface ListOptions {
  where?: Where | undefined;
  sort: string;
  limit: number;
  cursor?: string | undefined;
  /** Also count every record the caller may list that matches `where` (`total`). */
  count?: boolean | undefined;
  /** Reference fields whose records each item carries under `expand`. */
  expand?: readonly string[] | undefined;
}

/** How a list runs: the index it walks in sort order, and which `where` terms that index serves. */
export interface ListPlan {
  index: ListIndex;
  /** The walk stays within one owner's records (the index starts with ownerId = one user's id). */
  narrowed: boolean;
  /** Terms the index serves (equalities of its leading fields, comparisons of the sort field). */
  served: Term[];
  /** Terms checked on each row the walk visits. */
  residual: Term[];
}

/** Fields whose one value bounds a walk to one owner's, one team's or one referenced record's records. */
const bounded = (col: Collection, key: string | undefined) =>
  key === "ownerId" || key === "teamId" || (key !== undefined && col.fields[key]?.ref !== undefined);

/**
 * Picks the index a list walks: among the indexes ending with the sort field, the one whose
 * leading fields all have an equality (the access rule's owner or a `where` value), preferring one
 * that starts with the owner, then the longest. Every sort field has `(field, id)`, so there is
 * always one. A list that is not narrowed to one owner may only use terms the index serves: a
 * filter checked row by row would walk the whole table when it matches little (400 otherwise).
 */
export function planList(col: Collection, acc: Access, o: Pick<ListOptions, "where" | "sort">): ListPlan {
  const key = o.sort.replace(/^-/, "");
  const terms = termsOf(o.where);
  const equal = new Set(terms.filter((t) => t.op === "$eq" && t.key !== key).map((t) => t.key));
  if (acc.kind === "own") equal.add("ownerId");
  // A team access bounds the walk to the caller's teams: `teamId IN (their teams)` leads the index.
  if (acc.kind === "team") equal.add("teamId");
  const candidates = col.indexes
    .filter((ix) => ix.columns.at(-2) === key && ix.columns.slice(0, -2).every((k) => equal.has(k)))
    .sort(
      (a, b) =>
        Number(bounded(col, b.columns[0])) - Number(bounded(col, a.columns[0])) || b.columns.length - a.columns.length,
    );
  const index = candidates[0];
  if (!index)
    throw new AppError("validation_failed", `${col.name} cannot be sorted by ${key}.`, {
      errors: [{ path: "sort", message: `not sortable; sort on one of: ${col.sortable.join(", ")}` }],
    });
  const leading = new Set(index.columns.slice(0, -2));
  const served: Term[] = [];
  const residual: Term[] = [];
  const taken = new Set<string>();
  for (const t of terms) {
    // One equality per leading field rides the index; the sort field's comparisons are its range.
    if (leading.has(t.key) && t.op === "$eq" && !taken.has(t.key)) {
      taken.add(t.key);
      served.push(t);
    } else if (t.key === key && RANGE_OPS.has(t.op) && !Array.isArray(t.operand) && t.operand !== null) served.push(t);
    else residual.push(t);
  }
  // One owner's records bound the walk. `ownerId: null` is not one owner: it is every record the
  // service key or anonymous callers created, possibly most of the table.
  const narrowed =
    acc.kind === "own" ||
    (acc.kind === "team" && leading.has("teamId")) ||
    served.some((x) => bounded(col, x.key) && x.operand !== null && leading.has(x.key));
  if (!narrowed && residual.length) {
    const usable = new Set(
      col.indexes.filter((ix) => ix.columns.at(-2) === key).flatMap((ix) => ix.columns.slice(0, -2)),
    );
    const what = [...usable]
      .map((k) => `${k} (equality)`)
      .concat(`${key} (${[...RANGE_OPS].join(", ")})`)
      .join(", ");
    const first = residual[0]!;
    throw new AppError(
      "validation_failed",
      `A list of ${col.name} across all owners can only filter on what its index holds; add an ownerId equality ` +
        `to where to filter within one owner's records.`,
      {
        errors: [
          {
            path: `where.${first.key}`,
            message:
              `a list across all owners sorted by ${key} filters only on ${what}; add "ownerId" to where to use ` +
              `${first.key} ${first.op}`,
          },
        ],
      },
    );
  }
  return { index, narrowed, served, residual };
}

/** What a list (and its count) matches: the rules, then the terms its index serves, then the rest. */
function matchSql(col: Collection, acc: Access, plan: ListPlan): (SQL | undefined)[] {
  return [
    recordFilter(col, acc),
    ...plan.served.map((x) => termSql(col, x, false)),
    ...plan.residual.map((x) => termSql(col, x, true)),
  ];
}

/**
 * The count of a list (exported for the query-plan test): how many records the caller may list
 * match `where`, through the list's own index (no cursor, no order, no limit).
 */
export function countQuery(db: Database, col: Collection, acc: Access, o: Pick<ListOptions, "where" | "sort">) {
  const plan = planList(col, acc, o);
  return db
    .select({ total: sql<number>`count(*)` })
    .from(sql`${col.table} INDEXED BY ${sql.identifier(plan.index.name)}`)
    .where(and(...matchSql(col, acc, plan)));
}

/**
 * The list query: walks `planList`'s index in sort order with keyset pagination on (sort field,
 * id), so inserts between pages never shift rows and a page costs the same at any depth: the
 * cursor is a row-value range on the index. Sort fields are never null (see `collection()`).
 */
export function listQuery(
  db: Database,
  col: Collection,
  acc: Access,
  o: ListOptions,
  extra?: Record<string, SQL.Aliased>,
  /** The cursor's position, already decoded (`preparedList`: placeholders). */
  at?: { v: unknown; i: unknown },
) {
  const t = col.table;
  const descending = o.sort.startsWith("-");
  const key = descending ? o.sort.slice(1) : o.sort;
  const column = columnOf(col, key);
  const plan = planList(col, acc, o);
  const conds = matchSql(col, acc, plan);
  if (o.cursor) {
    const cur = at ?? cursorOf(o);
    const pos = sql`(${column}, ${t.id})`;
    const after = sql`(${sql.param(cur.v, column)}, ${cur.i})`;
    conds.push(descending ? sql`${pos} < ${after}` : sql`${pos} > ${after}`);
  }
  const dir = descending ? desc : asc;
  // Over several teams (no one-team equality), `+column` keeps SQLite from walking the sort index
  // across every team's rows to skip the sort: it reads the caller's teams' ranges and sorts those.
  const manyTeams = acc.kind === "team" && !plan.served.some((x) => x.key === "teamId");
  return db
    .select(extra ? { ...getTableColumns(t), ...extra } : getTableColumns(t))
    .from(t)
    .where(and(...conds))
    .orderBy(manyTeams ? sql`+${column} ${sql.raw(descending ? "desc" : "asc")}` : dir(column), dir(t.id))
    .limit(o.limit + 1);
}

/** A list's cursor, checked against its sort. */
function cursorOf(o: ListOptions): { v: unknown; i: unknown } {
  const cur = decodeCursor(o.cursor!, ListCursor);
  if (cur.s !== o.sort)
    throw new AppError("validation_failed", "The cursor belongs to another sort order.", {
      errors: [{ path: "cursor", message: "sort changed" }],
    });
  return cur;
}

type ListTemplate = (db: Database) => { all(values: Record<string, unknown>): Promise<unknown> };
/** Built lists by shape (see `preparedList`); bounded: a client can send many shapes. */
const listTemplates = new Map<string, ListTemplate>();

/**
 * A list without count or expand as a query built once per shape (`prepared`): the collection, the
 * access kind, `where`'s keys, operators and value types, the sort, the limit and whether there is a
 * cursor. Every value (the caller, `where`'s operands, the cursor's position) is a placeholder bound
 * per request: the same SQL drizzle builds per request, without building it.
 */
function preparedList(db: Database, col: Collection, acc: Access, o: ListOptions) {
  const values: Record<string, unknown> = {};
  const hole = (x: Scalar): Scalar => {
    if (x === null) return null;
    const name = `v${Object.keys(values).length}`;
    values[name] = x;
    return sql.placeholder(name) as unknown as Scalar;
  };
  const typeOf = (x: Scalar | Scalar[]) =>
    Array.isArray(x) ? x.map((y) => (y === null ? null : typeof y)) : x === null ? null : typeof x;
  const where: Where = {};
  const shape: unknown[] = [];
  for (const [key, cond] of Object.entries(o.where ?? {})) {
    if (cond === null || typeof cond !== "object") {
      shape.push([key, typeOf(cond)]);
      // (An operand is an object here: equality spelled out, as `termsOf` reads the shorthand.)
      where[key] = cond === null ? null : { $eq: hole(cond) };
      continue;
    }
    const ops = Object.entries(cond as Record<string, Scalar | Scalar[]>);
    shape.push([key, ops.map(([op, x]) => [op, typeOf(x)])]);
    where[key] = Object.fromEntries(ops.map(([op, x]) => [op, Array.isArray(x) ? x.map(hole) : hole(x)]));
  }
  const cur = o.cursor ? cursorOf(o) : null;
  if (cur) Object.assign(values, { $v: cur.v, $i: cur.i });
  const user = acc.kind === "own" || acc.kind === "team" ? acc.userId : null;
  if (user !== null) values.$user = user;
  const kind = acc.kind === "team" ? [acc.kind, acc.rank, acc.ownerRank] : [acc.kind];
  const key = JSON.stringify([col.name, kind, shape, o.sort, o.limit, cur !== null]);
  let template = listTemplates.get(key);
  if (!template) {
    const skeleton = (user === null ? acc : { ...acc, userId: sql.placeholder("$user") }) as Access;
    const at = cur ? { v: sql.placeholder("$v"), i: sql.placeholder("$i") } : undefined;
    template = prepared((tdb) => listQuery(tdb, col, skeleton, { ...o, where }, undefined, at));
    if (listTemplates.size >= 256) listTemplates.clear();
    listTemplates.set(key, template);
  }
  return template(db).all(values);
}

/** A page of records the caller may list (owner-only rules list the caller's own records). */
export async function listRecords(
  db: Database,
  col: Collection,
  p: Principal | null,
  o: ListOptions,
): Promise<{ items: RecordRow[]; nextCursor: string | null; total?: number }> {
  const acc = access(col, ["list", "read"], p);
  if (acc.kind === "denied") throw new AppError("forbidden", `Only the service key may list ${col.name}.`);
  // With a count or expands: more statements in the same round trip (a batch).
  // Expands ride in the list's own statement (a subselect per row and field); a count is one more
  // statement in the same round trip.
  const expand = o.expand ?? [];
  const [found, counted] =
    o.count || expand.length
      ? await (async () => {
          const q = listQuery(db, col, acc, o, expand.length ? expandColumns(col, p, expand) : undefined);
          return o.count ? await db.batch([q, countQuery(db, col, acc, o)]) : [await q, null];
        })()
      : [await preparedList(db, col, acc, o), null];
  const rows = found as RecordRow[];
  // A list of one team that came back empty: a team the caller is not in is 404, as for its records.
  const team = o.where?.teamId;
  if (rows.length === 0 && acc.kind === "team" && typeof team === "string") await requireMember(db, acc, team);
  const key = o.sort.replace(/^-/, "");
  const { page, nextCursor } = keysetPage(rows, o.limit, (last) =>
    encodeCursor({ s: o.sort, v: (last[key] ?? null) as Scalar, i: last.id }),
  );
  liftExpanded(col, page, expand);
  return { items: page, nextCursor, ...(counted ? { total: Number(counted[0]?.total ?? 0) } : {}) };
}

/** 404 unless the team access's user is in `teamId` with a role that reaches some record. */
async function requireMember(db: Database, acc: Extract<Access, { kind: "team" }>, teamId: string) {
  const m = await roleQuery(db, teamId, acc.userId).get();
  if (!m || RANK[m.role] < leastRank(acc)) throw noTeam();
}

/** Per declared collection, a count of its records (of one owner, or all): statements for one batch. */
export function recordCounts(db: Database, ownerId?: string) {
  return collections.map((col) =>
    db
      .select({ collection: sql<string>`${col.name}`, n: sql<number>`count(*)` })
      .from(col.table)
      .where(ownerId === undefined ? undefined : eq(col.table.ownerId, ownerId)),
  );
}

/** Per team-scoped collection (by name), how many records one team has: one batch, each a range of its team index. */
export async function teamRecordCounts(db: Database, teamId: string): Promise<Record<string, number>> {
  const rows = (await runBatch(
    db,
    collections
      .filter((col) => col.scope === "team")
      .map((col) =>
        db
          .select({ collection: sql<string>`${col.name}`, n: sql<number>`count(*)` })
          .from(col.table)
          .where(eq(teamColumn(col)!, teamId)),
      ),
  )) as { collection: string; n: number }[][];
  return Object.fromEntries(rows.map(([r]) => [r!.collection, r!.n]));
}
