/** The cron handler: every feature's housekeeping task, run every 15 minutes (wrangler.toml `crons`). */

import { primaryDb } from "./db";
import { lifecycle } from "./lifecycle-parts";

export async function handleScheduled(controller: ScheduledController, env: Env): Promise<void> {
  const db = primaryDb(env.DB);
  const now = new Date(controller.scheduledTime);
  const results = await Promise.allSettled(lifecycle.cleanupTasks.map((t) => t(env, db, now)));
  for (const r of results)
    if (r.status === "rejected") console.error("scheduled task failed:", (r.reason as Error).message);
}
