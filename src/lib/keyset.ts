/** Keyset pagination: the condition that starts a page after a cursor, and the page a query read. */
import { type AnyColumn, and, eq, lt, or, type SQL } from "drizzle-orm";
import * as v from "valibot";
import { decodeCursor, encodeCursor } from "./cursor";

/** A position in a list sorted by a time, then an id, both descending. */
export interface TimeId {
  at: string;
  id: string;
}

/** Time-and-id cursors hold the last row's sort time and id. */
const TimeIdCursor = v.pipe(
  v.tuple([v.string(), v.string()]),
  v.transform(([at, id]): TimeId => ({ at, id })),
);

/** Decodes a cursor made by `encodeTimeIdCursor` (anything else is a 400). */
export const decodeTimeIdCursor = (raw: string): TimeId => decodeCursor(raw, TimeIdCursor);

/** The cursor that continues after the row at (`at`, `id`). */
export const encodeTimeIdCursor = (at: string, id: string): string => encodeCursor([at, id]);

/** Rows after `after` in (`time` DESC, `id` DESC) order; no condition without a cursor. */
export function afterTimeId(time: AnyColumn, id: AnyColumn, after: TimeId | null): SQL | undefined {
  return after ? or(lt(time, after.at), and(eq(time, after.at), lt(id, after.id))) : undefined;
}

/** Rows after the id `after` in `id` DESC order; no condition without a cursor. */
export function afterId(id: AnyColumn, after: string | null): SQL | undefined {
  return after ? lt(id, after) : undefined;
}

/**
 * The page out of the `limit + 1` rows a keyset query read (the extra row only says there is
 * more), and the cursor after its last row when there is more.
 */
export function keysetPage<R>(
  rows: R[],
  limit: number,
  cursorAfter: (last: R) => string,
): { page: R[]; nextCursor: string | null } {
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return { page, nextCursor: rows.length > limit && last !== undefined ? cursorAfter(last) : null };
}
