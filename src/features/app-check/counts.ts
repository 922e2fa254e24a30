/**
 * Monitor counts: what the guard saw per platform and reason, coalesced in the isolate and written
 * to D1 in one batch (in `waitUntil`) every `appCheckFlushCount` requests or `appCheckFlushSec`
 * seconds, so counting adds no D1 write to a request. An isolate that is evicted loses what it had
 * not flushed yet: at most that many requests or seconds of its traffic.
 */
import { gte, sql } from "drizzle-orm";
import { limits } from "../../config";
import { type Database, primaryDb, runBatch } from "../../db";
import { appCheckCounts } from "../../db/schema";

const pending = new Map<string, number>();
let waiting = 0;
let lastFlush = 0;

/** Counts one guarded request; returns a flush to run in `waitUntil` when one is due, else null. */
export function countRequest(platform: string, reason: string, d1: D1Database): (() => Promise<void>) | null {
  const key = `${platform}|${reason}`;
  pending.set(key, (pending.get(key) ?? 0) + 1);
  waiting++;
  const now = Date.now();
  if (lastFlush === 0) lastFlush = now;
  // (A clock that went back counts as elapsed too.)
  if (waiting < limits.appCheckFlushCount && Math.abs(now - lastFlush) < limits.appCheckFlushSec * 1000) return null;
  const batch = [...pending];
  pending.clear();
  waiting = 0;
  lastFlush = now;
  return () => writeCounts(primaryDb(d1), new Date(now).toISOString().slice(0, 10), batch);
}

async function writeCounts(db: Database, day: string, batch: [string, number][]): Promise<void> {
  const rows = batch.map(([key, count]) => {
    const [platform = "", reason = ""] = key.split("|");
    return db
      .insert(appCheckCounts)
      .values({ day, platform, reason, count })
      .onConflictDoUpdate({
        target: [appCheckCounts.day, appCheckCounts.platform, appCheckCounts.reason],
        set: { count: sql`${appCheckCounts.count} + excluded.count` },
      });
  });
  try {
    await runBatch(db, rows);
  } catch (e) {
    console.error("app check: counts not written:", String(e));
  }
}

/** Requests the guard saw with one platform and reason. */
export interface CountRow {
  platform: string;
  reason: string;
  count: number;
}

/** The counts of the last `days` UTC days, summed per platform and reason. */
export function readCounts(db: Database, days: number): Promise<CountRow[]> {
  const since = new Date(Date.now() - (days - 1) * 86_400_000).toISOString().slice(0, 10);
  const t = appCheckCounts;
  return db
    .select({ platform: t.platform, reason: t.reason, count: sql<number>`sum(${t.count})` })
    .from(t)
    .where(gte(t.day, since))
    .groupBy(t.platform, t.reason)
    .orderBy(t.platform, t.reason);
}
