/** Reading runs for the console: one target's runs (the app's after hooks: `hook`), newest first, by status. */
import { and, desc, eq, lt, or, sql } from "drizzle-orm";
import * as v from "valibot";
import type { Database } from "../../db";
import { eventRuns, events } from "../../db/schema";
import { decodeCursor, encodeCursor } from "../../lib/cursor";

export const RUN_STATUSES = ["parked", "pending", "running", "done"] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

export interface RunRow {
  id: string;
  seq: number;
  event: string;
  recordId: string;
  status: RunStatus;
  attempts: number;
  lastError: string | null;
  lastStatus: number | null;
  nextAttemptAt: string;
  createdAt: string;
  finishedAt: string | null;
}

const RunCursor = v.strictObject({ at: v.string(), id: v.string() });

/** A page of `target`'s runs with `status` (all when absent), newest first. */
export async function listRuns(
  db: Database,
  o: { target: string; status?: RunStatus | undefined; limit: number; cursor?: string | undefined },
): Promise<{ items: RunRow[]; nextCursor: string | null }> {
  const after = o.cursor ? decodeCursor(o.cursor, RunCursor) : null;
  const rows = (await db
    .select({
      id: eventRuns.id,
      seq: eventRuns.seq,
      event: events.event,
      recordId: events.recordId,
      status: eventRuns.status,
      attempts: eventRuns.attempts,
      lastError: eventRuns.lastError,
      lastStatus: eventRuns.lastStatus,
      nextAttemptAt: eventRuns.nextAttemptAt,
      createdAt: eventRuns.createdAt,
      finishedAt: eventRuns.finishedAt,
    })
    .from(eventRuns)
    .innerJoin(events, eq(events.seq, eventRuns.seq))
    .where(
      and(
        eq(eventRuns.target, o.target),
        o.status ? eq(eventRuns.status, o.status) : undefined,
        after
          ? or(lt(eventRuns.createdAt, after.at), and(eq(eventRuns.createdAt, after.at), lt(eventRuns.id, after.id)))
          : undefined,
      ),
    )
    .orderBy(desc(eventRuns.createdAt), desc(eventRuns.id))
    .limit(o.limit + 1)) as RunRow[];
  const items = rows.slice(0, o.limit);
  const last = items.at(-1);
  return {
    items,
    nextCursor: rows.length > o.limit && last ? encodeCursor({ at: last.createdAt, id: last.id }) : null,
  };
}

/** How many of `target`'s runs are in each status. */
export async function runCounts(db: Database, target: string): Promise<Record<RunStatus, number>> {
  const rows = await db
    .select({ status: eventRuns.status, n: sql<number>`count(*)` })
    .from(eventRuns)
    .where(eq(eventRuns.target, target))
    .groupBy(eventRuns.status);
  const out: Record<RunStatus, number> = { parked: 0, pending: 0, running: 0, done: 0 };
  for (const r of rows) out[r.status] = r.n;
  return out;
}
