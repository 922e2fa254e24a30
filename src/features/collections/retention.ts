/**
 * Retention of the change log (cron, src/scheduled.ts). The log holds one row per record: a live
 * record's row is how `/changes` and subscriptions find it (it is the current state, never
 * pruned); a deleted record's row is its tombstone, kept `limits.changeLogRetentionDays` so that
 * clients syncing from a cursor learn about the deletion. Older tombstones are pruned in chunks,
 * and each collection's horizon (the highest seq pruned) moves up in the same batch: a `since`
 * cursor below it may have missed a deletion and gets 410 `resync_required` (socket: 4410).
 */
import { and, asc, inArray, lt, sql } from "drizzle-orm";
import { limits } from "../../config";
import type { Database } from "../../db";
import { recordChangeHorizons, recordChanges } from "../../db/schema/collections";
import type { ScheduledTask } from "../../lifecycle";

const DAY_MS = 24 * 60 * 60 * 1000;

/** The oldest tombstones before `cutoff`, one chunk (exported for the query-plan test). */
export function prunableQuery(db: Database, cutoff: string) {
  const rc = recordChanges;
  // `deleted = 1` as a literal: that is what lets SQLite use the partial index of tombstones.
  return db
    .select({ seq: rc.seq })
    .from(rc)
    .where(and(sql`${rc.deleted} = 1`, lt(rc.changedAt, cutoff)))
    .orderBy(asc(rc.changedAt), asc(rc.seq))
    .limit(limits.changeLogPruneChunk);
}

/** Prunes one chunk: raises the horizons and deletes the rows in one batch. Returns how many rows went. */
async function pruneChunk(db: Database, cutoff: string, now: string): Promise<number> {
  const rc = recordChanges;
  const h = recordChangeHorizons;
  const victims = prunableQuery(db, cutoff);
  const [, deleted] = await db.batch([
    db
      .insert(h)
      .select(
        sql`SELECT ${rc.collection}, max(${rc.seq}), ${now} FROM ${rc}
            WHERE ${rc.seq} IN (${victims}) GROUP BY ${rc.collection}`,
      )
      .onConflictDoUpdate({
        target: h.collection,
        set: { seq: sql`max(${h.seq}, excluded.seq)`, prunedAt: sql`excluded.pruned_at` },
      }),
    db.delete(rc).where(inArray(rc.seq, victims)).returning({ seq: rc.seq }),
  ]);
  return deleted.length;
}

/** Cron task: tombstones older than the retention go, at most `changeLogPruneChunksPerRun` chunks per run. */
export const changeLogRetention: ScheduledTask = async (_env, db, now) => {
  const cutoff = new Date(now.getTime() - limits.changeLogRetentionDays * DAY_MS).toISOString();
  for (let i = 0; i < limits.changeLogPruneChunksPerRun; i++) {
    if ((await pruneChunk(db, cutoff, now.toISOString())) < limits.changeLogPruneChunk) return;
  }
};
