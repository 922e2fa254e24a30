/**
 * Request and response schemas of one collection, derived from its declared fields: the same
 * valibot schemas validate requests and describe the collection in the OpenAPI document.
 */
import * as v from "valibot";
import { limits } from "../../config";
import { cursorParam, limitParam } from "../../lib/validation";
import { type Field, TEAM_FIELD } from "./define";
import type { Collection } from "./registry";

export type Scalar = string | number | boolean | null;
export const operators = ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$contains"] as const;
type Operator = (typeof operators)[number];
/** A parsed `where`: field → value (equality) or operators (all must hold). */
export type Where = Record<string, Scalar | Partial<Record<Operator, Scalar | Scalar[]>>>;

/** Field kinds a `where` and a `sort` can name: declared fields plus the server-owned ones. */
type FilterKind = Field["kind"] | "ownerId" | "timestamp";

const Timestamp = v.pipe(
  v.string(),
  v.maxLength(40),
  v.check((s) => !Number.isNaN(Date.parse(s)), "must be an ISO 8601 time"),
  v.transform((s) => new Date(s).toISOString()),
);

/**
 * The operators one field kind supports, each with the schema of its operand (`$contains` only on
 * searchable fields).
 */
function operatorSchemas(
  kind: FilterKind,
  value: v.GenericSchema<unknown, Scalar>,
  searchable: boolean,
): v.ObjectEntries {
  const list = v.pipe(v.array(value), v.minLength(1), v.maxLength(limits.collectionsInMax));
  const eq = { $eq: v.optional(value), $ne: v.optional(value), $in: v.optional(list) };
  const range = { $gt: v.optional(value), $gte: v.optional(value), $lt: v.optional(value), $lte: v.optional(value) };
  const substring = v.pipe(v.string(), v.minLength(1), v.maxLength(limits.collectionsContainsMax));
  const contains: v.ObjectEntries = searchable ? { $contains: v.optional(substring) } : {};
  switch (kind) {
    case "boolean":
    case "ownerId":
    case "ref":
      return eq;
    case "stringArray":
      return contains;
    case "string":
      return { ...eq, ...range, ...contains };
    default:
      return { ...eq, ...range };
  }
}

/** Names the offending key: `Invalid key` issues carry it as `received`. */
const unknownKey = (what: string) => (issue: v.BaseIssue<unknown>) =>
  issue.expected === "never" ? `${issue.received} is not ${what}` : issue.message;

/**
 * An update or replace body's unknown key (a record's team is set on create and never changes; a
 * count is the server's).
 */
const notAField = (col: Collection) => (issue: v.BaseIssue<unknown>) => {
  const key = typeof issue.received === "string" ? issue.received.replace(/^"|"$/g, "") : "";
  if (issue.expected !== "never") return issue.message;
  if (key === TEAM_FIELD) return `${TEAM_FIELD} is set on create and never changes`;
  if (col.fields[key]?.count) return `${key} is kept by the server (a count of ${col.fields[key].count.of})`;
  return unknownKey("a field of this collection")(issue);
};

function conditionSchema(
  kind: FilterKind,
  value: v.GenericSchema<unknown, Scalar>,
  searchable: boolean,
  searchableFields: readonly string[],
) {
  const schemas = operatorSchemas(kind, value, searchable);
  const allowed = Object.keys(schemas).join(", ") || "none";
  const other = unknownKey(`an operator of this field (${allowed})`);
  const searchableList = searchableFields.join(", ") || "none in this collection";
  const ops = v.pipe(
    v.strictObject(schemas, (issue) =>
      issue.expected === "never" && issue.received === '"$contains"'
        ? `$contains works only on fields declared searchable (${searchableList}); ` +
          `other operators of this field: ${allowed}`
        : other(issue),
    ),
    v.check((o) => Object.keys(o).length > 0, "needs at least one operator"),
  );
  // Arrays have no equality; they are filtered by `$contains` only.
  if (kind === "stringArray") return ops;
  // An object is operators, anything else a value to equal: each path reports its own issue.
  return v.lazy((input) => (typeof input === "object" && input !== null ? ops : value));
}

/** Bound parameters a `where` needs: D1 allows 100 per statement, lists and cursors need a few. */
function whereParams(where: Where): number {
  let n = 0;
  for (const cond of Object.values(where)) {
    if (cond === null || typeof cond !== "object") n += 1;
    else for (const operand of Object.values(cond)) n += Array.isArray(operand) ? operand.length : 1;
  }
  return n;
}

type Filterable = { kind: FilterKind; value: v.GenericSchema<unknown, Scalar>; searchable: boolean };

/** What a `where` can name in this collection, and how each is typed. */
function filterableFields(col: Collection): Map<string, Filterable> {
  const m = new Map<string, Filterable>([
    ["ownerId", { kind: "ownerId", value: v.nullable(v.pipe(v.string(), v.maxLength(64))), searchable: false }],
    ["createdAt", { kind: "timestamp", value: Timestamp, searchable: false }],
    ["updatedAt", { kind: "timestamp", value: Timestamp, searchable: false }],
  ]);
  if (col.scope === "team") m.set(TEAM_FIELD, { kind: "ownerId", value: TeamId, searchable: false });
  for (const [k, f] of Object.entries(col.fields)) {
    const scalar: v.GenericSchema<unknown, Scalar> =
      f.kind === "string" || f.kind === "ref"
        ? v.pipe(v.string(), v.maxLength(limits.collectionsFilterValueMax))
        : f.kind === "boolean"
          ? v.boolean()
          : f.kind === "stringArray"
            ? v.string()
            : v.pipe(v.number(), v.finite());
    m.set(k, { kind: f.kind, value: f.nullable ? v.nullable(scalar) : scalar, searchable: f.searchable });
  }
  return m;
}

/**
 * A record id made on the device (API.md, create): a UUID of any version (1 to 8) with the RFC 9562
 * variant, in any letter case; stored lowercase, so a retry spelled in capitals is the same id.
 */
export const ClientId = v.pipe(
  v.string(),
  v.regex(
    /^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i,
    "must be a UUID (8-4-4-4-12 hex digits, version 1 to 8, RFC 9562 variant)",
  ),
  v.transform((s) => s.toLowerCase()),
);

/** A team's id, as a create body or a query names it. */
const TeamId = v.pipe(v.string(), v.minLength(1), v.maxLength(64));

/** Every schema of one collection. */
export function collectionSchemas(col: Collection) {
  const all = Object.entries(col.fields);
  // What a client may write: every field but the counts the server keeps.
  const fields = all.filter(([, f]) => !f.count);
  const filterable = filterableFields(col);

  const withDefaults = Object.fromEntries(
    fields.map(([k, f]) => {
      const d = f.default;
      return [k, d === undefined ? f.schema : v.optional(f.schema, () => structuredClone(d))];
    }),
  );
  /** A whole record's fields (PUT, and create without `id`). */
  const replace = v.strictObject(withDefaults, notAField(col)) as v.GenericSchema<unknown, Record<string, unknown>>;
  const team = col.scope === "team";
  const refs = Object.keys(col.fields).filter((k) => col.fields[k]!.ref);
  /** Create: the fields, optionally a client-made `id`, and in a team-scoped collection the record's team. */
  const create = v.strictObject({
    ...withDefaults,
    id: v.optional(ClientId),
    ...(team ? { [TEAM_FIELD]: TeamId } : {}),
  }) as v.GenericSchema<unknown, Record<string, unknown> & { id?: string; teamId?: string }>;
  /** A create's fields without the id (a `/v1/batch` create names its id beside its data). */
  const insert = (team ? v.strictObject({ ...withDefaults, [TEAM_FIELD]: TeamId }) : replace) as v.GenericSchema<
    unknown,
    Record<string, unknown> & { teamId?: string }
  >;
  const patch = v.strictObject(
    Object.fromEntries(fields.map(([k, f]) => [k, v.optional(f.schema)])),
    notAField(col),
  ) as v.GenericSchema<unknown, Record<string, unknown>>;

  const record = v.object({
    id: v.string(),
    ownerId: v.nullable(v.string()),
    createdAt: v.string(),
    updatedAt: v.string(),
    version: v.number(),
    ...Object.fromEntries([...(team ? [[TEAM_FIELD, v.string()]] : []), ...all.map(([k, f]) => [k, f.schema])]),
    // `?expand=`: the referenced records (null: missing or not readable).
    ...(refs.length ? { expand: v.optional(v.record(v.string(), v.nullable(v.looseObject({})))) } : {}),
  });
  const tombstone = v.object({ id: v.string(), deleted: v.literal(true), version: v.number() });

  const where = v.pipe(
    v.string(),
    v.maxLength(limits.collectionsWhereMaxBytes),
    v.parseJson(undefined, "where must be JSON"),
    v.strictObject(
      Object.fromEntries(
        [...filterable].map(([k, f]) => [
          k,
          v.optional(conditionSchema(f.kind, f.value, f.searchable, col.searchable)),
        ]),
      ),
      unknownKey(`a field you can filter on (${[...filterable.keys()].join(", ")})`),
    ),
    v.check(
      (w) => whereParams(w as Where) <= limits.collectionsWhereParamsMax,
      `where may hold at most ${limits.collectionsWhereParamsMax} values`,
    ),
  ) as v.GenericSchema<string, Where>;

  // `expand=a,b`: reference fields only, each once.
  const expand = v.optional(
    v.pipe(
      v.string(),
      v.maxLength(500),
      v.transform((s) => [...new Set(s.split(",").map((x) => x.trim()))]),
      v.check(
        (list) => list.every((k) => refs.includes(k)),
        `expand names reference fields of ${col.name} (${refs.join(", ") || "none"}), comma-separated`,
      ),
    ),
  );

  // Only indexed fields: a sort on anything else is a full scan and a sort of every match.
  const sortable = col.sortable;
  const sort = v.optional(
    v.picklist(
      sortable.flatMap((k) => [k, `-${k}`]),
      (issue) =>
        `${JSON.stringify(String(issue.input).replace(/^-/, ""))} is not sortable; ` +
        `sort on one of: ${sortable.join(", ")} (prefix - for descending). ` +
        "A field declared sortable: true is indexed for sorting.",
    ),
    "-createdAt",
  );

  return {
    create,
    /** PUT replaces the whole record: same shape and defaults as create, without an id (or a team). */
    replace,
    insert,
    patch,
    record,
    tombstone,
    listQuery: v.strictObject({
      where: v.optional(where),
      sort,
      limit: limitParam(limits.listDefault, limits.listMax),
      cursor: cursorParam,
      expand,
      /** Full-text search over the searchable fields (best match first unless `sort` is given). */
      search: v.optional(v.pipe(v.string(), v.maxLength(200, "search is at most 200 characters"))),
      /** `true`: the answer carries `total`, every record the caller may list that matches `where`. */
      count: v.optional(
        v.pipe(
          v.picklist(["true", "false"], "count is true or false"),
          v.transform((x) => x === "true"),
        ),
      ),
    }),
    /** `teamId`: one team's feed (a member who just joined syncs it from the start). */
    changesQuery: v.strictObject({
      since: cursorParam,
      limit: limitParam(limits.listDefault, limits.listMax),
      ...(team ? { teamId: v.optional(TeamId) } : {}),
    }) as v.GenericSchema<unknown, { since?: string; limit: number; teamId?: string }>,
    /** `ticket` / `token` are read by `requireSocketUser`; listed so the strict query accepts them. */
    subscribeQuery: v.strictObject({
      since: cursorParam,
      ticket: v.optional(v.pipe(v.string(), v.maxLength(4096))),
      token: v.optional(v.pipe(v.string(), v.maxLength(4096))),
      ...(team ? { teamId: v.optional(TeamId) } : {}),
    }) as v.GenericSchema<unknown, { since?: string; ticket?: string; token?: string; teamId?: string }>,
    /** `GET …/records/:id`: `expand`. */
    recordQuery: v.strictObject({ expand }),
    page: v.object({ items: v.array(record), nextCursor: v.nullable(v.string()), total: v.optional(v.number()) }),
    changes: v.object({ items: v.array(v.union([record, tombstone])), nextCursor: v.string(), hasMore: v.boolean() }),
  };
}
