/** The drizzle client over D1. Data access lives in each feature's service file; routes never build SQL. */
import { drizzle } from "drizzle-orm/d1";
import * as schema from "./schema";

export function createDb(d1: D1Database) {
  return drizzle(d1, { schema });
}

export type Database = ReturnType<typeof createDb>;
export { schema };

import type { BatchItem, BatchResponse } from "drizzle-orm/batch";

/**
 * Runs statements as one atomic D1 batch (D1 has no interactive transactions). Accepts a plain
 * array, so callers can assemble statements from several features.
 */
export async function runBatch(db: Database, items: BatchItem<"sqlite">[]): Promise<unknown[]> {
  if (items.length === 0) return [];
  const [first, ...rest] = items;
  return (await db.batch([first!, ...rest])) as BatchResponse<[BatchItem<"sqlite">, ...BatchItem<"sqlite">[]]> as unknown[];
}
