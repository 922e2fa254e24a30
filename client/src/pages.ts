/**
 * The one shape of every list in the SDK (records, files, rooms, chat history): `await list()`
 * is the first page `{ items, nextCursor }`; `for await (const items of list())` walks every page;
 * `list().all()` collects every item.
 */
import type { Page } from "./types.js";

export interface Pages<T> extends AsyncIterable<T[]>, PromiseLike<Page<T>> {
  /** Every item of every page, in order. */
  all(): Promise<T[]>;
}

/** Pages fetched on demand: `fetch(cursor)` is called with `start` first, then each `nextCursor`. */
export function pages<T>(fetch: (cursor: string | undefined) => Promise<Page<T>>, start?: string): Pages<T> {
  let first: Promise<Page<T>> | undefined;
  const firstPage = () => {
    first ??= fetch(start);
    return first;
  };
  const self: Pages<T> = {
    // biome-ignore lint/suspicious/noThenProperty: a list awaited as is gives its first page
    then: (ok, fail) => firstPage().then(ok, fail),
    [Symbol.asyncIterator]() {
      let cursor: string | null | undefined;
      let started = false;
      return {
        async next(): Promise<IteratorResult<T[]>> {
          if (started && !cursor) return { done: true, value: undefined };
          const p = started ? await fetch(cursor ?? undefined) : await firstPage();
          started = true;
          cursor = p.nextCursor;
          return { done: false, value: p.items };
        },
      };
    },
    async all() {
      const out: T[] = [];
      for await (const items of self) out.push(...items);
      return out;
    },
  };
  return self;
}
