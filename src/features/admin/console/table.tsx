/** The console's one table: columns declared as data, its empty state, and (on list pages) its pager. */
import type { Child } from "hono/jsx";
import { Empty, Pager, type PagerProps } from "./ui";

export interface Column<T> {
  /** The header, also the cell's `data-label` (its label on narrow screens); "" for buttons or thumbnails. */
  header: string;
  cell: (row: T) => Child;
  /** The cell's class (`strong`, `right`, …). */
  class?: string;
  /** The cell links here (no link when it returns null or undefined). */
  link?: (row: T) => string | null | undefined;
  /** The link's class. */
  linkClass?: string;
}

export interface TableProps<T> {
  rows: readonly T[];
  columns: readonly Column<T>[];
  /** Shown instead of the table when there are no rows. */
  empty: Child;
  /** A list page's table: in a flush card, followed by its forward-only pager. */
  pager?: PagerProps;
}

function Cell<T>({ col, row }: { col: Column<T>; row: T }) {
  const content = col.cell(row);
  const href = col.link?.(row);
  return (
    <td data-label={col.header || undefined} class={col.class}>
      {href ? (
        <a href={href} class={col.linkClass}>
          {content}
        </a>
      ) : (
        content
      )}
    </td>
  );
}

export function DataTable<T>(p: TableProps<T>) {
  const table = p.rows.length ? (
    <div class="table-wrap">
      <table>
        <thead>
          <tr>{p.columns.map((col) => (col.header ? <th>{col.header}</th> : <th />))}</tr>
        </thead>
        <tbody>
          {p.rows.map((row) => (
            <tr>
              {p.columns.map((col) => (
                <Cell col={col} row={row} />
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  ) : (
    <Empty>{p.empty}</Empty>
  );
  if (!p.pager) return table;
  return (
    <>
      <section class="card flush">{table}</section>
      <Pager {...p.pager} />
    </>
  );
}
