/** `/v1/blocks`: the caller's blocked users. Only ever the caller's own list: no way to name another blocker. */
import { Hono } from "hono";
import type { AppEnv } from "../../env";
import { AppError } from "../../errors";
import { describe, validate } from "../../lib/validation";
import { idempotency } from "../../middleware/idempotency";
import { requireUser, userOf } from "../auth";
import { BlockBody, BlockList, BlockParam, BlockSchema, ListQuery } from "./schemas";
import { blockUser, listBlocks, unblockUser } from "./service";

const TAG = "Blocks";

export const blockRoutes = new Hono<AppEnv>()
  .post(
    "/",
    describe({
      tag: TAG,
      summary: "Block a user",
      description:
        "The blocked user can no longer add the caller to a room or open a direct room with them (403), the " +
        "caller cannot open a direct room with them either, and the caller gets no push for their messages. " +
        "Blocking someone already blocked answers 200 with the existing block.",
      responses: {
        201: { description: "Blocked", schema: BlockSchema },
        200: { description: "Already blocked", schema: BlockSchema },
        400: { description: "Invalid body, or the caller's own id" },
        404: { description: "No such user" },
      },
    }),
    requireUser,
    idempotency,
    validate("json", BlockBody),
    async (c) => {
      const { block, created } = await blockUser(c.get("db"), userOf(c).userId, c.req.valid("json").userId);
      return c.json(block, created ? 201 : 200);
    },
  )
  .get(
    "/",
    describe({
      tag: TAG,
      summary: "The caller's blocked users, most recent first",
      responses: { 200: { description: "Blocks", schema: BlockList } },
    }),
    requireUser,
    validate("query", ListQuery),
    async (c) => {
      const q = c.req.valid("query");
      return c.json(await listBlocks(c.get("db"), userOf(c).userId, q.limit, q.cursor));
    },
  )
  .delete(
    "/:userId",
    describe({
      tag: TAG,
      summary: "Unblock a user",
      responses: { 204: { description: "Unblocked" }, 404: { description: "The caller has not blocked this user" } },
    }),
    requireUser,
    validate("param", BlockParam),
    async (c) => {
      if (!(await unblockUser(c.get("db"), userOf(c).userId, c.req.valid("param").userId)))
        throw new AppError("not_found", "You have not blocked this user.");
      return c.body(null, 204);
    },
  );
