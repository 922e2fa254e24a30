/**
 * The cron handler, by `controller.cron`: Outpost's housekeeping (every feature's cleanup task, every
 * 15 minutes) and the app's own schedules (src/app/schedules.ts). wrangler.toml `crons` lists both.
 */

import { primaryDb } from "./db";
import { HOUSEKEEPING_CRON, runSchedules } from "./features/logic";
import { lifecycle } from "./lifecycle-parts";

/** Runs what `controller.cron` names. Without `ctx`, work deferred with waitUntil is awaited here. */
export async function handleScheduled(
  controller: ScheduledController,
  env: Env,
  ctx?: { waitUntil(p: Promise<unknown>): void },
): Promise<void> {
  const deferred: Promise<unknown>[] = [];
  await Promise.all([
    controller.cron === HOUSEKEEPING_CRON ? housekeeping(controller, env) : undefined,
    runSchedules(controller, env, ctx ?? { waitUntil: (p) => deferred.push(p) }),
  ]);
  await Promise.allSettled(deferred);
}

async function housekeeping(controller: ScheduledController, env: Env): Promise<void> {
  const db = primaryDb(env.DB);
  const now = new Date(controller.scheduledTime);
  const results = await Promise.allSettled(lifecycle.cleanupTasks.map((t) => t(env, db, now)));
  for (const r of results)
    if (r.status === "rejected") console.error("scheduled task failed:", (r.reason as Error).message);
}
