/**
 * A create's statements: `selectValues` (INSERT ... SELECT of a row's values), and a user's plain create
 * (no client id, no team, no reference set, no audit row) built once per collection with placeholders
 * and bound to each request's values: the same SQL and row mapping drizzle builds per request, without
 * building it (drizzle's SQL building was the largest share of a create's own CPU).
 */
import { getTableColumns, is, Param, Placeholder, SQL, sql, type Table } from "drizzle-orm";
import { type Database, prepared } from "../../db";
import { recordChanges } from "../../db/schema/collections";
import { userExistsSql } from "../auth";
import type { Collection } from "./registry";

/**
 * `SELECT <values of every column of table, in order> [WHERE where]`, for INSERT ... SELECT (`seq` = NULL: SQLite
 * assigns it).
 */
export function selectValues(table: Table, values: Record<string, unknown>, where?: SQL): SQL {
  const list = sql.join(
    Object.entries(getTableColumns(table)).map(([k, column]) => {
      // A field left out takes its declared default, as INSERT ... VALUES would give it.
      const value = values[k] !== undefined ? values[k] : column.default;
      return is(value, SQL) ? value : sql`${sql.param(value ?? null, column)}`;
    }),
    sql`, `,
  );
  return where ? sql`SELECT ${list} WHERE ${where}` : sql`SELECT ${list}`;
}

/** What is used of drizzle's prepared D1 query (drizzle-orm/d1/session.js, D1PreparedQuery). */
interface PreparedD1 {
  stmt: D1PreparedStatement;
  query: { params: unknown[] };
  mapResult(response: unknown, isFromBatch: boolean): unknown;
}

/** The owner placeholder (column keys are camelCase identifiers: no clash). */
const OWNER = "$owner";

/**
 * A table's values as placeholders, each encoded by its column (`selectValues` with `sql.param(placeholder)`);
 * the columns in `absent` are left out (`selectValues` puts their SQL default in).
 */
const placeholders = (table: Table, absent: readonly string[] = []) =>
  Object.fromEntries(
    Object.entries(getTableColumns(table)).map(([k, column]) => [
      k,
      absent.includes(k) ? undefined : sql`${sql.param(sql.placeholder(k), column)}`,
    ]),
  );

/** The columns of `table` whose default is SQL (an expression, not a value). */
const sqlDefaults = (table: Table) =>
  Object.entries(getTableColumns(table)).flatMap(([k, c]) => (is(c.default, SQL) ? [k] : []));

/** How one parameter of a prebuilt statement gets its value. */
type ParamSource = (values: Record<string, unknown>, owner: string) => unknown;

/** Each prebuilt statement's parameter sources, worked out once (drizzle's `is()` checks cost every request). */
const sourcesOf = new WeakMap<unknown[], ParamSource[]>();

function paramSources(params: unknown[], table: Table): ParamSource[] {
  const columns = getTableColumns(table);
  return params.map((p): ParamSource => {
    if (is(p, Placeholder)) {
      const name = p.name;
      return name === OWNER ? (_values, owner) => owner : (values) => values[name];
    }
    if (is(p, Param) && is(p.value, Placeholder)) {
      const k = p.value.name;
      const encoder = p.encoder;
      const fallback = columns[k]!.default;
      return (values) => {
        const v = values[k] !== undefined ? values[k] : fallback;
        return v === null || v === undefined ? null : encoder.mapToDriverValue(v);
      };
    }
    return () => p;
  });
}

/**
 * The values a statement binds: each placeholder's value, encoded by its column as drizzle encodes a
 * parameter (null stays NULL); a field left out takes its column's default, as in `selectValues`.
 */
function bind(q: PreparedD1, table: Table, values: Record<string, unknown>, owner: string): D1PreparedStatement {
  let sources = sourcesOf.get(q.query.params);
  if (!sources) {
    sources = paramSources(q.query.params, table);
    sourcesOf.set(q.query.params, sources);
  }
  return q.stmt.bind(...sources.map((source) => source(values, owner)));
}

type Plain = (db: Database) => { record: PreparedD1; log: PreparedD1 };
/** By collection and which of its SQL-default columns the row leaves out (each a different statement). */
const plains = new Map<string, Plain>();
const rowSqlDefaults = new Map<string, string[]>();
const LOG_SQL_DEFAULTS = sqlDefaults(recordChanges);

/** The plain create's two statements for `col` and a row that leaves out the SQL-default columns `absent`. */
function plainOf(col: Collection, absent: string[], logReturning: () => Record<string, unknown>): Plain {
  const key = `${col.name}:${absent.join(",")}`;
  const known = plains.get(key);
  if (known) return known;
  const lives = sql`${userExistsSql(sql`${sql.placeholder(OWNER)}`)} = 1`;
  const record = prepared((db) =>
    db
      .insert(col.table)
      .select(selectValues(col.table, placeholders(col.table, absent), lives))
      .returning(),
  );
  const log = prepared((db) =>
    db
      .insert(recordChanges)
      .select(selectValues(recordChanges, placeholders(recordChanges), lives))
      .returning(logReturning() as never),
  );
  const plain: Plain = (db) => ({ record: record(db) as unknown as PreparedD1, log: log(db) as unknown as PreparedD1 });
  plains.set(key, plain);
  return plain;
}

/**
 * Runs a user's plain create (`commitCreate` without client id, team, references or audit) as one
 * D1 batch of its prebuilt statements; returns what the batch's two statements return (null: the
 * change-log row leaves a column to an SQL default, never the case today; built per request then).
 */
export async function plainCreate(
  db: Database,
  col: Collection,
  owner: string,
  row: Record<string, unknown>,
  change: Record<string, unknown>,
  logReturning: () => Record<string, unknown>,
): Promise<[unknown, unknown] | null> {
  if (LOG_SQL_DEFAULTS.some((k) => change[k] === undefined)) return null;
  const defaults = rowSqlDefaults.get(col.name) ?? sqlDefaults(col.table);
  rowSqlDefaults.set(col.name, defaults);
  const plain = plainOf(
    col,
    defaults.filter((k) => row[k] === undefined),
    logReturning,
  )(db);
  const [record, log] = await db.$client.batch([
    bind(plain.record, col.table, row, owner),
    bind(plain.log, recordChanges, change, owner),
  ]);
  return [plain.record.mapResult(record, true), plain.log.mapResult(log, true)];
}
