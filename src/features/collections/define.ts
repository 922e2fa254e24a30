/**
 * The declaration language of `src/app/collections.ts`: a collection is a real drizzle table (one
 * column per field, so D1 can index and filter them) that also carries its fields' validation
 * and its access rules. Request schemas and OpenAPI shapes are derived from the same fields
 * (see `schemas.ts`), so nothing is written twice.
 */
import { sql } from "drizzle-orm";
import {
  customType,
  index,
  integer,
  real,
  type SQLiteColumn,
  type SQLiteColumnBuilderBase,
  type SQLiteTableWithColumns,
  sqliteTable,
  text,
} from "drizzle-orm/sqlite-core";
import * as v from "valibot";
import type { SearchSpec } from "./search-ddl";

/**
 * Who may do an action: anyone, any signed-in user, the record's owner, only the service key, or (in a
 * team-scoped collection) a member holding at least a role in the record's team.
 */
type TeamRule = "team:viewer" | "team:member" | "team:admin" | "team:owner";
export type Rule = "public" | "authenticated" | "owner" | "none" | TeamRule;
/** One rule, or a list of rules any of which allows (`["owner", "team:admin"]`). */
export type RuleSpec = Rule | readonly Rule[];
export type Action = "read" | "list" | "create" | "update" | "delete";
export type Rules = Record<Action, RuleSpec>;
/** Whose records a collection holds: each user's (the default), or each team's (`teamId` on every record). */
export type Scope = "owner" | "team";

const TEAM_RULES: readonly Rule[] = ["team:viewer", "team:member", "team:admin", "team:owner"];
/** The rules of a spec, as a list. */
export const rulesOf = (spec: RuleSpec): readonly Rule[] => (typeof spec === "string" ? [spec] : spec);

type FieldKind = "string" | "integer" | "number" | "boolean" | "stringArray" | "ref" | "count";

/** What deleting a referenced record does to the records that reference it. */
export type OnDelete = "cascade" | "setNull" | "restrict";

/** A reference field's target: a declared collection's name, or `users`. */
interface Reference {
  readonly target: string;
  readonly onDelete: OnDelete;
}

/** One declared field: its stored column, the schema of one value, and its default. */
export interface Field<T = unknown> {
  readonly kind: FieldKind;
  readonly nullable: boolean;
  /** Lists may sort on it: `collection()` indexes it (per owner and across owners). Never nullable. */
  readonly sortable: boolean;
  /** `where` may use `$contains` on it (a scan of the rows an index narrowed to, see docs/collections.md). */
  readonly searchable: boolean;
  /** Used on create and replace when the body omits the field; `undefined` = the field is required. */
  readonly default: T | undefined;
  /** Schema of one value (accepts null when the field is nullable). */
  readonly schema: v.GenericSchema<T>;
  /** A reference field (`field.ref`): the record it points at. */
  readonly ref?: Reference | undefined;
  /**
   * A count the server keeps (`field.count`): how many records of collection `of` reference this
   * one through their field `by`. Never written by a client.
   */
  readonly count?: { readonly of: string; readonly by: string } | undefined;
  /** The drizzle column, stored under `dbName`. */
  column(dbName: string): SQLiteColumnBuilderBase;
}

/** JSON array of strings in a TEXT column; `json_each` reads it for `$contains`. */
const stringArrayColumn = customType<{ data: string[]; driverData: string }>({
  dataType: () => "text",
  toDriver: (value) => JSON.stringify(value),
  fromDriver: (value) => JSON.parse(value) as string[],
});

type Nullable<T, N> = N extends true ? T | null : T;

/** How lists may use a field (both off unless declared). */
interface QueryOptions {
  sortable?: boolean | undefined;
  searchable?: boolean | undefined;
}

function make<T, N extends boolean | undefined>(
  kind: FieldKind,
  nullable: N,
  schema: v.GenericSchema<T>,
  dflt: T | undefined,
  column: (dbName: string) => SQLiteColumnBuilderBase,
  query: QueryOptions = {},
): Field<Nullable<T, N>> {
  return {
    kind,
    nullable: nullable === true,
    sortable: query.sortable === true,
    searchable: query.searchable === true,
    // A nullable field without an explicit default starts as null.
    default: (dflt === undefined && nullable ? null : dflt) as Nullable<T, N> | undefined,
    schema: (nullable ? v.nullable(schema) : schema) as v.GenericSchema<Nullable<T, N>>,
    column,
  };
}

/** Field constructors for `collection()` declarations. */
export const field = {
  /** Text of `min`..`max` characters (max defaults to 1,000). `searchable` allows `$contains`. */
  string<N extends boolean | undefined = undefined>(
    o: { min?: number; max?: number; default?: string; nullable?: N; sortable?: boolean; searchable?: boolean } = {},
  ) {
    const schema = v.pipe(v.string(), v.minLength(o.min ?? 0), v.maxLength(o.max ?? 1000));
    return make(
      "string",
      o.nullable,
      schema,
      o.default,
      (n) => {
        const c = text(n);
        const d = o.default === undefined ? c : c.default(o.default);
        return o.nullable ? d : d.notNull();
      },
      o,
    );
  },
  /** A whole number within `min`..`max` (defaults: the safe integer range). */
  integer<N extends boolean | undefined = undefined>(
    o: { min?: number; max?: number; default?: number; nullable?: N; sortable?: boolean } = {},
  ) {
    const schema = v.pipe(
      v.number(),
      v.safeInteger(),
      v.minValue(o.min ?? Number.MIN_SAFE_INTEGER),
      v.maxValue(o.max ?? Number.MAX_SAFE_INTEGER),
    );
    return make(
      "integer",
      o.nullable,
      schema,
      o.default,
      (n) => {
        const c = integer(n);
        const d = o.default === undefined ? c : c.default(o.default);
        return o.nullable ? d : d.notNull();
      },
      { sortable: o.sortable },
    );
  },
  /** A finite floating-point number. */
  number<N extends boolean | undefined = undefined>(
    o: { min?: number; max?: number; default?: number; nullable?: N; sortable?: boolean } = {},
  ) {
    const schema = v.pipe(
      v.number(),
      v.finite(),
      v.minValue(o.min ?? -Number.MAX_VALUE),
      v.maxValue(o.max ?? Number.MAX_VALUE),
    );
    return make(
      "number",
      o.nullable,
      schema,
      o.default,
      (n) => {
        const c = real(n);
        const d = o.default === undefined ? c : c.default(o.default);
        return o.nullable ? d : d.notNull();
      },
      { sortable: o.sortable },
    );
  },
  boolean<N extends boolean | undefined = undefined>(o: { default?: boolean; nullable?: N; sortable?: boolean } = {}) {
    return make(
      "boolean",
      o.nullable,
      v.boolean(),
      o.default,
      (n) => {
        const c = integer(n, { mode: "boolean" });
        const d = o.default === undefined ? c : c.default(o.default);
        return o.nullable ? d : d.notNull();
      },
      { sortable: o.sortable },
    );
  },
  /**
   * The id of a record of collection `target` (or of a user: `"users"`). On create and update the
   * record must exist and be readable by the caller; deleting it applies `onDelete` (default
   * `restrict`: refused with 409 while referenced) in the same D1 batch. Indexed: lists may filter on
   * it across owners (`where: { postId }`). `setNull` makes the field nullable.
   */
  /**
   * How many records of collection `of` name this record in their reference field `by`
   * (`field.count("comments", "postId")`), kept by the server in the same statement as each of
   * those records' writes (a D1 trigger, so cascades and batches count too). Read-only: a body
   * that sets it is refused. Each change makes a new version of this record.
   */
  count(of: string, by: string, o: { sortable?: boolean } = {}): Field<number> {
    const f = make("count", false, v.number(), undefined, (n) => integer(n).notNull().default(0), {
      sortable: o.sortable,
    });
    return { ...f, count: { of, by } };
  },
  ref<N extends boolean | undefined = undefined>(
    target: string,
    o: { onDelete?: OnDelete; nullable?: N } = {},
  ): Field<Nullable<string, N>> {
    const onDelete = o.onDelete ?? "restrict";
    const nullable = o.nullable === true || onDelete === "setNull";
    const schema = v.pipe(v.string(), v.minLength(1), v.maxLength(64));
    const f = make("ref", nullable, schema, undefined, (n) => (nullable ? text(n) : text(n).notNull()));
    return { ...f, ref: { target, onDelete } } as Field<Nullable<string, N>>;
  },
  /**
   * Up to `maxItems` strings of up to `itemMax` characters, stored as a JSON text column. Arrays
   * are filtered only by `$contains` (has this element), so only `searchable` arrays can be filtered.
   */
  stringArray(o: { maxItems?: number; itemMax?: number; default?: string[]; searchable?: boolean } = {}) {
    const schema = v.pipe(v.array(v.pipe(v.string(), v.maxLength(o.itemMax ?? 100))), v.maxLength(o.maxItems ?? 50));
    return make(
      "stringArray",
      false,
      schema,
      o.default,
      (n) => {
        const c = stringArrayColumn(n);
        return (
          o.default === undefined ? c : c.default(sql.raw(`'${JSON.stringify(o.default).replaceAll("'", "''")}'`))
        ).notNull();
      },
      { searchable: o.searchable },
    );
  },
};

/** Server-owned fields of every record, in output order. Never read from a request body. */
const systemFields = ["id", "ownerId", "createdAt", "updatedAt", "version"] as const;
type SystemField = (typeof systemFields)[number];
/** The team of a team-scoped collection's record: set on create, never changed. */
export const TEAM_FIELD = "teamId";

/**
 * An index a list can walk: `columns` are field names (system ones included), ending with the
 * sort field and `id` (the keyset tie-breaker). The fields before the sort field are equalities.
 */
export interface ListIndex {
  readonly name: string;
  readonly columns: readonly string[];
}

/** What the collections feature needs to know about a declared collection. */
export interface CollectionMeta {
  readonly name: string;
  /** `team`: every record carries `teamId` and the rules may name team roles. */
  readonly scope: Scope;
  readonly fields: Readonly<Record<string, Field>>;
  readonly rules: Readonly<Rules>;
  /** Fields a list may sort on: createdAt, updatedAt and the fields declared `sortable`. */
  readonly sortable: readonly string[];
  /** Fields `$contains` may be used on (declared `searchable`). */
  readonly searchable: readonly string[];
  /** Every index of the table that lists use (see `ListIndex`). */
  readonly indexes: readonly ListIndex[];
  /** The full-text index over the `searchable` fields (`?search=`), or null when none is declared. */
  readonly search: SearchSpec | null;
  /** The counts the server keeps (`field.count`), resolved against their child collections. */
  readonly counts: readonly { column: string; of: string; by: string }[];
}

type RecordColumns = { [K in SystemField]: SQLiteColumn } & Record<string, SQLiteColumn>;

/** A declared collection: the drizzle table itself, carrying its metadata under `meta`. */
export type CollectionTable = SQLiteTableWithColumns<{
  name: string;
  schema: undefined;
  columns: RecordColumns;
  dialect: "sqlite";
}> & { readonly [COLLECTION]: CollectionMeta };

/** A record of a collection declared with fields `F`, as the API shows it (hooks are typed with it). */
export type RecordType<F> = {
  id: string;
  ownerId: string | null;
  /** Set in team-scoped collections. */
  teamId?: string;
  createdAt: string;
  updatedAt: string;
  version: number;
} & { -readonly [K in keyof F]: F[K] extends Field<infer T> ? T : never };

/** What collection() returns: the table, and (for types only, nothing at run time) its record type. */
export type TypedCollection<F> = CollectionTable & { readonly $record: RecordType<F> };

/** Marks a drizzle table as a declared collection (a symbol, so it never clashes with a column). */
export const COLLECTION = Symbol.for("outpost.collection");

export const isCollection = (x: unknown): x is CollectionTable =>
  typeof x === "object" && x !== null && COLLECTION in x;

const NAME_RE = /^[a-z][a-z0-9_]{0,39}$/;
const FIELD_RE = /^[a-zA-Z][a-zA-Z0-9]{0,62}$/;
const RESERVED = new Set<string>([...systemFields, TEAM_FIELD, "deleted"]);

const snake = (s: string) => s.replace(/[A-Z]/g, (m) => `_${m.toLowerCase()}`);

/** Checks a collection's rules against its scope (team rules only in team-scoped collections). */
function checkRules(name: string, scope: Scope, rules: Rules): void {
  for (const [action, spec] of Object.entries(rules)) {
    const list = rulesOf(spec);
    const where = `collection "${name}", rule for ${action}`;
    if (list.length === 0) throw new Error(`${where}: an empty list allows nobody; write "none"`);
    if (list.length > 1 && list.includes("none")) throw new Error(`${where}: "none" cannot be listed with others`);
    for (const r of list) {
      if (scope === "owner" && TEAM_RULES.includes(r)) throw new Error(`${where}: "${r}" needs scope: "team"`);
      // A team's records are its members' alone: a record outside the caller's teams is 404.
      if (scope === "team" && (r === "public" || r === "authenticated"))
        throw new Error(`${where}: "${r}" would reach outside the team; use "team:viewer" (any member)`);
    }
  }
}

/**
 * Declares a collection stored in the D1 table `app_<name>`. Every table gets the indexes the
 * routes need: by id, and for each sort field (createdAt, updatedAt and every `sortable` field)
 * `(ownerId, field, id)` for one owner's lists and `(field, id)` for lists across owners; a
 * team-scoped one (`scope: "team"`) gets `(teamId, field, id)` for its lists over the caller's teams
 * instead of the owner's, and `(ownerId, createdAt, id)` for account deletion.
 * `indexes` adds more: lists of field names ending with a sort field, the ones before it being
 * equality filters the index serves, e.g. `[["ownerId", "pinned", "createdAt"]]` (`id` is appended).
 */
export function collection<F extends Record<string, Field<never> | Field>>(
  name: string,
  spec: { scope?: Scope; fields: F; rules: Rules; indexes?: string[][] },
): TypedCollection<F> {
  if (!NAME_RE.test(name)) throw new Error(`collection name "${name}" must match ${NAME_RE}`);
  const scope = spec.scope ?? "owner";
  const fields = spec.fields as Record<string, Field>;
  // An insert binds every column, and D1 allows 100 bound parameters per statement.
  if (Object.keys(fields).length > 90) throw new Error(`collection "${name}" declares more than 90 fields`);
  for (const [key, f] of Object.entries(fields)) {
    if (!FIELD_RE.test(key) || RESERVED.has(key))
      throw new Error(`collection "${name}": field name "${key}" is reserved or invalid`);
    // Keyset pages over a nullable column cannot be one index range (NULLs sit outside every range).
    if (f.sortable && f.nullable)
      throw new Error(`collection "${name}": sortable field "${key}" cannot be nullable; give it a default instead`);
  }
  checkRules(name, scope, spec.rules);
  const tableName = `app_${name}`;
  const columns: Record<string, SQLiteColumnBuilderBase> = {
    id: text("id").primaryKey(),
    // Null for records created by the service key or by anonymous callers (rule `public`).
    ownerId: text("owner_id"),
    createdAt: text("created_at").notNull(),
    updatedAt: text("updated_at").notNull(),
    version: integer("version").notNull(),
  };
  if (scope === "team") columns[TEAM_FIELD] = text("team_id").notNull();
  for (const [key, f] of Object.entries(fields)) columns[key] = f.column(snake(key));
  const known = new Set([...systemFields, ...(scope === "team" ? [TEAM_FIELD] : []), ...Object.keys(fields)]);
  const sortable = ["createdAt", "updatedAt", ...Object.keys(fields).filter((k) => fields[k]!.sortable)];
  const searchable = Object.keys(fields).filter((k) => fields[k]!.searchable);
  const listIndexes = new Map<string, ListIndex>();
  const addIndex = (ixName: string, keys: string[]) => {
    const columns = [...keys, "id"];
    const dup = [...listIndexes.values()].find((ix) => ix.columns.join() === columns.join());
    if (dup) throw new Error(`collection "${name}": index [${keys.join(", ")}] is already there (${dup.name})`);
    if (listIndexes.has(ixName))
      throw new Error(`collection "${name}": two indexes would be named ${ixName}; rename a field`);
    listIndexes.set(ixName, { name: ixName, columns });
  };
  // The first indexes keep their historical names.
  const short: Record<string, string> = { createdAt: "created", updatedAt: "updated" };
  for (const f of sortable) {
    if (scope === "team") addIndex(`${tableName}_team_${short[f] ?? snake(f)}_idx`, [TEAM_FIELD, f]);
    else addIndex(`${tableName}_owner_${short[f] ?? snake(f)}_idx`, ["ownerId", f]);
    addIndex(`${tableName}_${short[f] ?? snake(f)}_idx`, [f]);
  }
  if (scope === "team") addIndex(`${tableName}_owner_created_idx`, ["ownerId", "createdAt"]);
  // A reference: the records that name one target, newest or last changed first (`where: { postId }`,
  // across owners), and what deleting the target must find. Other sorts: declare an index.
  for (const [key, f] of Object.entries(fields))
    if (f.ref)
      for (const sf of ["createdAt", "updatedAt"]) addIndex(`${tableName}_${snake(key)}_${short[sf]}_idx`, [key, sf]);
  for (const keys of spec.indexes ?? []) {
    for (const k of keys)
      if (!known.has(k) || k === "id") throw new Error(`collection "${name}": index on unknown field "${k}"`);
    const last = keys.at(-1);
    if (!last || !sortable.includes(last))
      throw new Error(`collection "${name}": an index must end with a sort field (${sortable.join(", ")})`);
    if (new Set(keys).size !== keys.length)
      throw new Error(`collection "${name}": index [${keys.join(", ")}] repeats a field`);
    addIndex(`${tableName}_${keys.map(snake).join("_")}_idx`, keys);
  }
  const table = sqliteTable(tableName, columns, (t) =>
    [...listIndexes.values()].map((ix) => {
      const [first, ...rest] = ix.columns.map((k) => t[k]!);
      return index(ix.name).on(first!, ...rest);
    }),
  );
  const meta: CollectionMeta = {
    name,
    scope,
    fields,
    rules: { ...spec.rules },
    sortable,
    searchable,
    indexes: [...listIndexes.values()],
    search: searchable.length ? { table: tableName, columns: searchable.map(snake) } : null,
    counts: Object.entries(fields).flatMap(([k, f]) => (f.count ? [{ column: snake(k), ...f.count }] : [])),
  };
  Object.defineProperty(table, COLLECTION, { value: meta, enumerable: false });
  return table as unknown as TypedCollection<F>;
}
