/**
 * The app's schedules: `schedule("<cron>", handler)` runs `handler` each time that cron fires (UTC).
 * Every cron declared here must also be in wrangler.toml's `[triggers] crons` (beside Outpost's own,
 * every 15 minutes); `npm run check:drift` fails until they match. See docs/logic.md.
 */
import { schedule } from "../features/logic/schedule";

const DAY_MS = 24 * 60 * 60 * 1000;
/** Done items older than this are deleted. */
const KEEP_DONE_DAYS = 7;
/** At most this many deletes per run (each is its own write); the next night goes on with the rest. */
const MAX_PER_RUN = 500;

// Every night at 03:30 UTC: delete shopping-list items ticked off more than a week ago. Each delete
// goes through the routes' write path, so it reaches /changes, live data, after hooks and webhooks.
// The list walks the index ["done", "updatedAt"] declared on items (a list across all teams).
export const clearOldDoneItems = schedule(
  "30 3 * * *",
  async ({ scheduledTime, app }) => {
    const items = app.records("items");
    const before = new Date(scheduledTime.getTime() - KEEP_DONE_DAYS * DAY_MS).toISOString();
    const old = await items.list({
      where: { done: true, updatedAt: { $lt: before } },
      sort: "updatedAt",
      limit: MAX_PER_RUN,
    });
    // One failed delete (say, an item deleted meanwhile) does not stop the others; the run then fails, logged.
    const failed: string[] = [];
    for (const item of old)
      await items.delete(item.id).catch((e: unknown) => failed.push(e instanceof Error ? e.message : String(e)));
    if (failed.length) throw new Error(`${failed.length} of ${old.length} deletes failed, first: ${failed[0]}`);
  },
  { name: "clear old done items" },
);
