/**
 * The local store: the last server state of each synced record, and the sync cursors. The SDK
 * ships an in-memory one; a persistent one (expo-sqlite, MMKV, IndexedDB) is a small adapter of
 * this interface (see README). Queries are evaluated by the SDK over `list()`.
 */
import type { SystemFields } from "./types.js";

export type StoredRecord = SystemFields & { [field: string]: unknown };

export interface LocalStore {
  get(collection: string, id: string): Promise<StoredRecord | undefined>;
  /** Every stored record of a collection, in any order. */
  list(collection: string): Promise<StoredRecord[]>;
  /** Upserts records and removes ids, as one step. */
  write(collection: string, put: StoredRecord[], remove: string[]): Promise<void>;
  /** Removes every record of a collection (or of all collections) and its cursor. */
  clear(collection?: string): Promise<void>;
  /** A feed's cursor: keyed by the collection's name, or `<collection>@<teamId>` for one team's feed. */
  getCursor(collection: string): Promise<string | undefined>;
  setCursor(collection: string, cursor: string | undefined): Promise<void>;
}

export function memoryStore(): LocalStore {
  const data = new Map<string, Map<string, StoredRecord>>();
  const cursors = new Map<string, string>();
  const col = (c: string) => {
    let m = data.get(c);
    if (!m) {
      m = new Map();
      data.set(c, m);
    }
    return m;
  };
  return {
    get: async (c, id) => col(c).get(id),
    list: async (c) => [...col(c).values()],
    write: async (c, put, remove) => {
      const m = col(c);
      for (const r of put) m.set(r.id, r);
      for (const id of remove) m.delete(id);
    },
    clear: async (c) => {
      if (c === undefined) {
        data.clear();
        cursors.clear();
      } else {
        data.delete(c);
        cursors.delete(c);
      }
    },
    getCursor: async (c) => cursors.get(c),
    setCursor: async (c, v) => void (v === undefined ? cursors.delete(c) : cursors.set(c, v)),
  };
}

type Cond = { [op: string]: unknown };

/** Evaluates a `where` the way the server does (several keys = AND). */
export function matches(rec: { [k: string]: unknown }, where: { [k: string]: unknown } | undefined): boolean {
  for (const [k, cond] of Object.entries(where ?? {})) {
    const v = rec[k];
    if (cond === undefined) continue;
    if (cond === null || typeof cond !== "object") {
      if (v !== cond) return false;
      continue;
    }
    for (const [op, x] of Object.entries(cond as Cond)) {
      if (x === undefined) continue;
      const ok =
        op === "$eq"
          ? v === x
          : op === "$ne"
            ? v !== x
            : op === "$in"
              ? Array.isArray(x) && x.includes(v)
              : op === "$contains"
                ? Array.isArray(v)
                  ? v.includes(x)
                  : typeof v === "string" && v.includes(String(x))
                : v !== null && v !== undefined && x !== null && compare(v, x, op);
      if (!ok) return false;
    }
  }
  return true;
}

function compare(a: unknown, b: unknown, op: string): boolean {
  const c = cmp(a, b);
  return op === "$gt" ? c > 0 : op === "$gte" ? c >= 0 : op === "$lt" ? c < 0 : op === "$lte" ? c <= 0 : false;
}

/** SQLite order: null first, then numbers/booleans, then strings. */
function cmp(a: unknown, b: unknown): number {
  if (a === b) return 0;
  if (a === null || a === undefined) return -1;
  if (b === null || b === undefined) return 1;
  if (typeof a === "string" && typeof b === "string") return a < b ? -1 : 1;
  if (typeof a === "string") return 1;
  if (typeof b === "string") return -1;
  return Number(a) - Number(b);
}

/** Sorts by `field` or `-field` (default `-createdAt`), then by id in the same direction. */
export function sortRecords<R extends { id: string; [k: string]: unknown }>(recs: R[], sort = "-createdAt"): R[] {
  const desc = sort.startsWith("-");
  const f = desc ? sort.slice(1) : sort;
  const d = desc ? -1 : 1;
  return recs.sort((a, b) => d * (cmp(a[f], b[f]) || cmp(a.id, b.id)));
}
