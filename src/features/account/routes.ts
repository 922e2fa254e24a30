/** `/v1/me`: the caller's profile, and account deletion (everything the user owns goes with it). */
import { eq } from "drizzle-orm";
import { Hono } from "hono";
import * as v from "valibot";
import type { AppEnv } from "../../env";
import { runBatch } from "../../db";
import { users } from "../../db/schema";
import { AppError } from "../../errors";
import { nowIso } from "../../lib/ids";
import { describe, validate } from "../../lib/validation";
import { requireUser, userOf } from "../../middleware/auth";
import { Name, UserSchema } from "../auth/schemas";
import { getUser, toUser } from "../auth/service";
import { avatarCheck, deletionHooks } from "./hooks";

const PatchMeBody = v.strictObject({
  name: v.optional(v.nullable(Name)),
  avatarFileId: v.optional(v.nullable(v.pipe(v.string(), v.minLength(1), v.maxLength(64)))),
});

export const accountRoutes = new Hono<AppEnv>()
  .get(
    "/",
    describe({ tag: "Account", summary: "The calling user", responses: { 200: { description: "User", schema: UserSchema } } }),
    requireUser,
    async (c) => {
      const user = await getUser(c.var.db, userOf(c).userId);
      if (!user) throw new AppError("unauthorized", "This account no longer exists.");
      return c.json(toUser(user));
    },
  )
  .patch(
    "/",
    describe({ tag: "Account", summary: "Update name or avatar (avatar: one of the caller's own files)", responses: { 200: { description: "User", schema: UserSchema } } }),
    requireUser,
    validate("json", PatchMeBody),
    async (c) => {
      const { userId } = userOf(c);
      const body = c.req.valid("json");
      if (body.avatarFileId) {
        const ok = avatarCheck.check ? await avatarCheck.check(c.var.db, userId, body.avatarFileId) : false;
        if (!ok) {
          throw new AppError("validation_failed", "avatarFileId must be one of your own files.", {
            errors: [{ path: "avatarFileId", message: "not one of your files" }],
          });
        }
      }
      const updated = await c.var.db
        .update(users)
        .set({
          ...(body.name !== undefined ? { name: body.name } : {}),
          ...(body.avatarFileId !== undefined ? { avatarFileId: body.avatarFileId } : {}),
          updatedAt: nowIso(),
        })
        .where(eq(users.id, userId))
        .returning()
        .get();
      if (!updated) throw new AppError("unauthorized", "This account no longer exists.");
      return c.json(toUser(updated));
    },
  )
  .delete(
    "/",
    describe({ tag: "Account", summary: "Delete the account and everything it owns", description: "Sessions, records, files, devices and memberships are removed. Required by the app stores.", responses: { 204: { description: "Deleted" } } }),
    requireUser,
    async (c) => {
      const { userId } = userOf(c);
      const { db } = c.var;
      const ctx = { env: c.env, db, userId };
      const plans = [];
      for (const hook of deletionHooks) plans.push(await hook(ctx));
      const res = await runBatch(db, [
        ...plans.flatMap((p) => p.statements ?? []),
        db.delete(users).where(eq(users.id, userId)).returning({ id: users.id }),
      ]);
      const deleted = res.at(-1) as { id: string }[];
      if (deleted.length === 0) throw new AppError("unauthorized", "This account no longer exists.");
      const after = plans.flatMap((p) => (p.after ? [p.after] : []));
      if (after.length) c.executionCtx.waitUntil(Promise.all(after.map((f) => f().catch((e: unknown) => console.error("account deletion cleanup failed:", (e as Error).message)))));
      return c.body(null, 204);
    },
  );
