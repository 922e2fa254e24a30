/**
 * `?search=` on a list: a full-text match over the collection's `searchable` fields (SQLite FTS5,
 * see search-ddl.ts), combined with the rules and `where`, best match first (bm25) unless `sort`
 * is given. Whatever the user typed becomes quoted words, the last one a prefix: no FTS5 syntax
 * (`"`, `*`, `NEAR`, `-`, `:`, `^`...) ever reaches MATCH, so no input can fail or change the query.
 */
import { and, asc, desc, getTableColumns, type SQL, sql } from "drizzle-orm";
import { integer, real, type SQLiteColumn, sqliteTable } from "drizzle-orm/sqlite-core";
import * as v from "valibot";
import type { Database } from "../../db";
import type { Principal } from "../../env";
import { AppError } from "../../errors";
import { decodeCursor, encodeCursor } from "../../lib/cursor";
import { keysetPage } from "../../lib/keyset";
import { type Access, access, type RecordRow, recordFilter } from "./access";
import { expandColumns, liftExpanded } from "./expand";
import { ListCursor, type ListOptions, termSql, termsOf } from "./reads";
import type { Collection } from "./registry";
import type { Scalar } from "./schemas";
import { ftsTable } from "./search-ddl";

/** At most this many words of a search count (the rest is ignored). */
const MAX_WORDS = 12;

/**
 * The FTS5 query for what a user typed: its words (letters, digits, and `_`/`'` inside them, after
 * Unicode normalisation), each quoted, all required, the last matched as a prefix (search as you type).
 * Null when nothing searchable is left.
 */
export function matchQuery(text: string): string | null {
  const words =
    text
      .normalize("NFKC")
      .match(/[\p{L}\p{N}][\p{L}\p{N}\p{M}_']*/gu)
      ?.slice(0, MAX_WORDS) ?? [];
  if (words.length === 0) return null;
  return words.map((w, i) => `"${w.replaceAll('"', '""')}"${i === words.length - 1 ? "*" : ""}`).join(" ");
}

/** A collection's FTS5 table, for drizzle (its rowid and bm25 rank are all a query reads of it). */
const ftsOf = (col: Collection) =>
  sqliteTable(ftsTable(col.search!.table), { rowid: integer("rowid"), rank: real("rank") });

/** Where a ranked search page starts: an offset into the ranking (a rank is not a keyset). */
const RankCursor = v.strictObject({ s: v.literal("~rank"), o: v.pipe(v.number(), v.safeInteger(), v.minValue(0)) });

export interface SearchOptions extends ListOptions {
  search: string;
  /** Best match first (no `sort` was asked for). */
  ranked: boolean;
}

/** The search's match: the FTS5 table joined to the records, the rules and every `where` term. */
function searchFrom(
  db: Database,
  col: Collection,
  acc: Access,
  match: string,
  columns: Record<string, SQL | SQL.Aliased | SQLiteColumn>,
) {
  const t = col.table;
  const fts = ftsOf(col);
  const base = db.select(columns).from(fts).innerJoin(t, sql`${t}.rowid = ${fts.rowid}`);
  return { base, fts, conds: [sql`${fts} MATCH ${match}`, recordFilter(col, acc)] as (SQL | undefined)[] };
}

/** The search page's statement (exported for the query-plan test); `offset` for a ranked page. */
export function searchQuery(
  db: Database,
  col: Collection,
  acc: Access,
  o: SearchOptions,
  match: string,
  extra: Record<string, SQL.Aliased> = {},
) {
  const { base, fts, conds } = searchFrom(db, col, acc, match, { ...getTableColumns(col.table), ...extra });
  conds.push(...termsOf(o.where).map((x) => termSql(col, x, false)));
  const t = col.table;
  if (o.ranked) {
    const offset = o.cursor ? decodeCursor(o.cursor, RankCursor).o : 0;
    return {
      query: base
        .where(and(...conds))
        .orderBy(asc(fts.rank), asc(t.id))
        .limit(o.limit + 1)
        .offset(offset),
      offset,
    };
  }
  const descending = o.sort.startsWith("-");
  const key = o.sort.replace(/^-/, "");
  const column = t[key]!;
  if (o.cursor) {
    const cur = decodeCursor(o.cursor, ListCursor);
    if (cur.s !== o.sort)
      throw new AppError("validation_failed", "The cursor belongs to another sort order.", {
        errors: [{ path: "cursor", message: "sort changed" }],
      });
    const at = sql`(${sql.param(cur.v, column)}, ${cur.i})`;
    conds.push(descending ? sql`(${column}, ${t.id}) < ${at}` : sql`(${column}, ${t.id}) > ${at}`);
  }
  const dir = descending ? desc : asc;
  return {
    query: base
      .where(and(...conds))
      .orderBy(dir(column), dir(t.id))
      .limit(o.limit + 1),
    offset: 0,
  };
}

/** How many records the search matches for the caller (`count=true`). */
function searchCountQuery(db: Database, col: Collection, acc: Access, o: SearchOptions, match: string) {
  const { base, conds } = searchFrom(db, col, acc, match, { total: sql<number>`count(*)` });
  return base.where(and(...conds, ...termsOf(o.where).map((x) => termSql(col, x, false))));
}

/** The cursor of the next ranked page. */
const rankCursor = (offset: number) => ({ s: "~rank" as const, o: offset });

/**
 * A page of records matching `o.search` that the caller may list (the same rules as a list): one
 * statement (its expands in it), or one batch with `count`.
 */
export async function searchRecords(
  db: Database,
  col: Collection,
  p: Principal | null,
  o: SearchOptions,
): Promise<{ items: RecordRow[]; nextCursor: string | null; total?: number }> {
  if (!col.search)
    throw new AppError("validation_failed", `${col.name} has no searchable fields.`, {
      errors: [{ path: "search", message: "declare fields searchable: true to search them" }],
    });
  const acc = access(col, ["list", "read"], p);
  if (acc.kind === "denied") throw new AppError("forbidden", `Only the service key may list ${col.name}.`);
  const match = matchQuery(o.search);
  // Nothing searchable typed (only punctuation or spaces): nothing matches.
  if (match === null) return { items: [], nextCursor: null, ...(o.count ? { total: 0 } : {}) };
  const expand = o.expand ?? [];
  // Expands ride in the search's own statement; a count is one more in the same round trip.
  const { query, offset } = searchQuery(db, col, acc, o, match, expandColumns(col, p, expand));
  const [found, counted] = o.count
    ? await db.batch([query, searchCountQuery(db, col, acc, o, match)])
    : [await query, null as { total: number }[] | null];
  const key = o.sort.replace(/^-/, "");
  const { page, nextCursor } = keysetPage(found as RecordRow[], o.limit, (last) =>
    encodeCursor(o.ranked ? rankCursor(offset + o.limit) : { s: o.sort, v: (last[key] ?? null) as Scalar, i: last.id }),
  );
  liftExpanded(col, page, expand);
  return { items: page, nextCursor, ...(counted ? { total: Number(counted[0]?.total ?? 0) } : {}) };
}
