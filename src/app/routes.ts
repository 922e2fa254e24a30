/**
 * The app's own routes, mounted at `/v1/app` (they appear in `/v1/openapi.json`). Written like
 * Outpost's: `describe()`, `validate()`, `requireUser`, `AppError`, `idempotency`, a rate limit per
 * user; writes through `appOf(c)` (the service key, through the write path: hooks, /changes, live
 * data and webhooks see them). See docs/logic.md.
 */
import { Hono } from "hono";
import * as v from "valibot";
import {
  type AppEnv,
  AppError,
  appOf,
  atLeast,
  describe,
  EmptyBody,
  IdParam,
  idempotency,
  limitPerUser,
  readAsCaller,
  requireUser,
  teamRoleOf,
  validate,
} from "../features/logic/app-kit";

const TAG = "App";
/** Deletes per call; a list with more done items than this needs another call (`deleted` says how many went). */
const CLEAR_DONE_MAX = 200;

const Cleared = v.object({ deleted: v.number() });

export const appRoutes = new Hono<AppEnv>().post(
  "/lists/:id/clear-done",
  describe({
    tag: TAG,
    summary: "Delete the done items of a shopping list",
    description:
      `For a member of the list's team with the member role or above (viewers may not), although an item's ` +
      `own delete rule is its author or an admin: the route checks the role, then deletes as the service ` +
      `key. At most ${CLEAR_DONE_MAX} items per call. Each delete reaches /changes, live data, hooks and webhooks.`,
    rateLimited: true,
    responses: {
      200: { description: "How many items were deleted", schema: Cleared },
      403: { description: "A viewer of the list's team" },
      404: { description: "No such list, or not one the caller may read" },
    },
  }),
  requireUser,
  limitPerUser("clear-done"),
  idempotency,
  validate("param", IdParam),
  validate("json", EmptyBody),
  async (c) => {
    const { id } = c.req.valid("param");
    // Read as the caller first: a list they cannot read is 404, whatever its team.
    const list = await readAsCaller(c, "lists", id);
    if (!atLeast(await teamRoleOf(c, list.teamId as string), "member"))
      throw new AppError("forbidden", "Clearing a list's done items needs the member role in its team or higher.");
    const items = appOf(c).records("items");
    const done = await items.list({ where: { listId: id, done: true }, limit: CLEAR_DONE_MAX });
    let deleted = 0;
    for (const item of done) {
      try {
        await items.delete(item.id);
        deleted++;
      } catch (e) {
        // Deleted meanwhile (by its author, say): not this call's to count.
        if (!(e instanceof AppError && e.code === "not_found")) throw e;
      }
    }
    return c.json({ deleted }, 200);
  },
);
