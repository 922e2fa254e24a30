/** Runs the app's schedules (src/app/schedules.ts, through the app registry) when their cron fires. */
import { primaryDb } from "../../db";
import { appSchedules } from "../../registry";
import { servicesFor } from "./before";
import { isSchedule, SCHEDULE, type Schedule } from "./schedule";

const declared: Schedule[] = Object.values(appSchedules).filter(isSchedule);

/**
 * Runs every declared schedule whose cron is `controller.cron`, side by side: each has its own error
 * handling and log line, so one that fails does not stop the others. Resolves once all have ended.
 */
export async function runSchedules(
  controller: ScheduledController,
  env: Env,
  ctx: { waitUntil(p: Promise<unknown>): void },
): Promise<void> {
  const due = declared.filter((s) => s[SCHEDULE].cron === controller.cron);
  if (!due.length) return;
  const scheduledTime = new Date(controller.scheduledTime);
  const db = primaryDb(env.DB);
  await Promise.all(
    due.map(async (s) => {
      const { name, handler } = s[SCHEDULE];
      const started = Date.now();
      try {
        await handler({
          cron: controller.cron,
          scheduledTime,
          app: servicesFor({ env, db, waitUntil: (p) => ctx.waitUntil(p) }),
        });
        console.log(`schedule "${name}" (${controller.cron}) done in ${Date.now() - started} ms`);
      } catch (e) {
        console.error(`schedule "${name}" (${controller.cron}) failed:`, e instanceof Error ? e.message : String(e));
      }
    }),
  );
}
