/** The cron handler: housekeeping tasks from each feature, run every 15 minutes (wrangler.toml `crons`). */
import { lte } from "drizzle-orm";
import { type Database, primaryDb } from "./db";
import { socketTicketCleanup } from "./features/auth/service";
import { changeLogRetention } from "./features/collections/retention";
import { filesCleanup } from "./features/files/service";
import { uploadsCleanup } from "./features/uploads/service";
import { sessions, verificationTokens } from "./db/schema";
import { idempotencyCleanup } from "./middleware/idempotency";

export type ScheduledTask = (env: Env, db: Database, now: Date) => Promise<void>;

/** Expired sessions and one-time tokens. */
const authCleanup: ScheduledTask = async (_env, db, now) => {
  const iso = now.toISOString();
  await db.batch([
    db.delete(sessions).where(lte(sessions.expiresAt, iso)),
    db.delete(verificationTokens).where(lte(verificationTokens.expiresAt, iso)),
  ]);
};

export const scheduledTasks: ScheduledTask[] = [authCleanup, socketTicketCleanup, idempotencyCleanup, filesCleanup, uploadsCleanup, changeLogRetention];

export async function handleScheduled(controller: ScheduledController, env: Env): Promise<void> {
  const db = primaryDb(env.DB);
  const now = new Date(controller.scheduledTime);
  const results = await Promise.allSettled(scheduledTasks.map((t) => t(env, db, now)));
  for (const r of results) if (r.status === "rejected") console.error("scheduled task failed:", (r.reason as Error).message);
}
