/** A collection's records: the list, filtered with the API's own `where` and sorted like the API. */
import { Hono } from "hono";
import type { FC } from "hono/jsx";
import * as v from "valibot";
import { AppError, toAppError } from "../../../errors";
import {
  type Collection,
  collectionSchemas,
  findCollection,
  listRecords,
  type RecordRow,
  searchRecords,
} from "../../collections";
import { recordAudit } from "../service";
import type { ConsoleEnv } from "./context";
import { actor, type C, type FieldErrors, fieldErrors, limitOf, page, SERVICE } from "./page";
import { type Column, DataTable } from "./table";
import { ErrorBox, fmtDate, P, short } from "./ui";

/** A stored value as table text: lists joined, long text cut. */
const cell = (v: unknown): string => {
  if (v === null || v === undefined) return "—";
  if (Array.isArray(v)) return v.join(", ");
  const s = String(v);
  return s.length > 80 ? `${s.slice(0, 80)}…` : s;
};

/** The columns of a collection: the id, one per declared field, the owner, the last update. */
export const recordColumns = (col: Collection): Column<RecordRow>[] => [
  {
    header: "Id",
    cell: (r) => short(r.id),
    link: (r) => `${P}/collections/${col.name}/${r.id}`,
    linkClass: "strong mono",
  },
  ...Object.keys(col.fields).map((f): Column<RecordRow> => ({ header: f, cell: (r) => cell(r[f]) })),
  {
    header: "Owner",
    cell: (r) => (r.ownerId ? short(r.ownerId) : "—"),
    link: (r) => (r.ownerId ? `${P}/users/${r.ownerId}` : null),
  },
  { header: "Updated", cell: (r) => fmtDate(String(r.updatedAt)) },
];

const CollectionPage: FC<{
  col: Collection;
  where: string;
  search: string;
  sort: string;
  sortable: string[];
  items: RecordRow[];
  next: string | null;
  paged: boolean;
  error?: { message: string; errors?: FieldErrors } | undefined;
}> = (p) => {
  const base = `${P}/collections/${p.col.name}`;
  return (
    <>
      <h1>{p.col.name}</h1>
      <form method="get" action={base} class="toolbar filter">
        {p.col.search ? (
          <input
            type="search"
            name="search"
            value={p.search}
            placeholder={`search ${p.col.searchable.join(", ")}`}
            aria-label="Search"
          />
        ) : null}
        <input
          type="text"
          name="where"
          value={p.where}
          placeholder={'where, as in the API: {"pinned":true}'}
          aria-label="Filter (where)"
          class="grow mono"
        />
        <select name="sort" aria-label="Sort">
          {p.sortable
            .flatMap((k) => [k, `-${k}`])
            .map((s) => (
              <option value={s} selected={s === p.sort}>
                {s.startsWith("-") ? `${s.slice(1)} ↓` : `${s} ↑`}
              </option>
            ))}
        </select>
        <button type="submit" class="btn">
          Filter
        </button>
        {p.where || p.search ? (
          <a href={base} class="btn ghost">
            Clear
          </a>
        ) : null}
      </form>
      {p.error ? <ErrorBox message={p.error.message} errors={p.error.errors} /> : null}
      <DataTable
        rows={p.items}
        columns={recordColumns(p.col)}
        empty={p.where || p.search ? "No record matches this filter." : "No records yet."}
        pager={{
          base,
          params: { where: p.where || undefined, search: p.search || undefined, sort: p.sort },
          next: p.next,
          paged: p.paged,
        }}
      />
    </>
  );
};

/**
 * Records not everyone may read (an owner's, a team's, or the service key's only): the console's
 * viewing of them is audited.
 */
export const privateRecords = (col: Collection) => {
  const read = typeof col.rules.read === "string" ? [col.rules.read] : col.rules.read;
  return !read.includes("public") && !read.includes("authenticated");
};

/** The collection of the `:name` param, or 404. */
export function collectionOf(c: C) {
  const col = findCollection(c.req.param("name") ?? "");
  if (!col) throw new AppError("not_found", "No such collection.");
  return col;
}

/** Mounted at `/admin/collections` (a record's page is in records.tsx). */
export const collectionPages = new Hono<ConsoleEnv>();

collectionPages.get("/:name", async (c) => {
  const col = collectionOf(c);
  const where = c.req.query("where")?.trim() ?? "";
  const search = c.req.query("search")?.trim() ?? "";
  const sort = c.req.query("sort") ?? "-createdAt";
  const cursor = c.req.query("cursor");
  // The fields the API sorts on: createdAt, updatedAt and the declaration's `sortable` fields.
  const sortable = [...col.sortable];
  // The API's own query schema: the same `where`, the same errors.
  const parsed = v.safeParse(collectionSchemas(col).listQuery, {
    ...(where ? { where } : {}),
    sort,
    limit: String(limitOf()),
    ...(cursor ? { cursor } : {}),
  });
  const view = (
    items: RecordRow[],
    next: string | null,
    error?: { message: string; errors?: FieldErrors },
    status: 200 | 400 = 200,
  ) =>
    page(
      c,
      col.name,
      `collection:${col.name}`,
      <CollectionPage
        col={col}
        where={where}
        search={search}
        sort={sort}
        sortable={sortable}
        items={items}
        next={next}
        paged={cursor !== undefined}
        error={error}
      />,
      status,
    );
  if (!parsed.success)
    return view([], null, { message: "This filter is not valid.", errors: fieldErrors("where", parsed.issues) }, 400);
  try {
    // The API's search, best match first until a sort is picked.
    const res = search
      ? await searchRecords(c.get("db"), col, SERVICE, {
          ...parsed.output,
          search,
          ranked: c.req.query("sort") === undefined,
        })
      : await listRecords(c.get("db"), col, SERVICE, parsed.output);
    if (privateRecords(col))
      await recordAudit(c.get("db"), actor(c), {
        action: "records.view",
        target: `collection:${col.name}`,
        detail: { where: where || undefined, search: search || undefined, records: res.items.length },
      });
    return view(res.items, res.nextCursor);
  } catch (e) {
    const err = toAppError(e);
    if (err.status !== 400) throw e;
    return view([], null, { message: err.detail ?? "This filter is not valid.", errors: err.extra.errors }, 400);
  }
});
