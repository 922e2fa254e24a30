/** `/v1/me`: the caller's profile, and account deletion (everything the user owns goes with it). */
import { Hono } from "hono";
import * as v from "valibot";
import type { AppEnv } from "../../env";
import { AppError } from "../../errors";
import { describe, validate } from "../../lib/validation";
import {
  getUser,
  Locale,
  Name,
  requireAal2IfFactor,
  requireUser,
  toUser,
  UserSchema,
  updateProfile,
  userOf,
} from "../auth";
import { isOwnFile } from "../files";
import { deleteAccount } from "./service";

const PatchMeBody = v.strictObject({
  name: v.optional(v.nullable(Name)),
  avatarFileId: v.optional(v.nullable(v.pipe(v.string(), v.minLength(1), v.maxLength(64)))),
  locale: v.optional(v.nullable(Locale)),
});

export const accountRoutes = new Hono<AppEnv>()
  .get(
    "/",
    describe({
      tag: "Account",
      summary: "The calling user",
      responses: { 200: { description: "User", schema: UserSchema } },
    }),
    requireUser,
    async (c) => {
      const user = await getUser(c.get("db"), userOf(c).userId);
      if (!user) throw new AppError("unauthorized", "This account no longer exists.");
      return c.json(toUser(user));
    },
  )
  .patch(
    "/",
    describe({
      tag: "Account",
      summary: "Update name, avatar (one of the caller's own files) or locale (the device's language, for mails)",
      responses: { 200: { description: "User", schema: UserSchema } },
    }),
    requireUser,
    validate("json", PatchMeBody),
    async (c) => {
      const { userId } = userOf(c);
      const body = c.req.valid("json");
      if (body.avatarFileId) {
        if (!(await isOwnFile(c.get("db"), userId, body.avatarFileId))) {
          throw new AppError("validation_failed", "avatarFileId must be one of your own files.", {
            errors: [{ path: "avatarFileId", message: "not one of your files" }],
          });
        }
      }
      const updated = await updateProfile(c.get("db"), userId, body);
      if (!updated) throw new AppError("unauthorized", "This account no longer exists.");
      return c.json(updated);
    },
  )
  .delete(
    "/",
    describe({
      tag: "Account",
      summary: "Delete the account and everything it owns",
      description: "Sessions, records, files, devices and memberships are removed. Required by the app stores.",
      responses: {
        204: { description: "Deleted" },
        401: { description: "mfa_required: the account has a second factor and this session is aal1" },
      },
    }),
    requireUser,
    requireAal2IfFactor,
    async (c) => {
      const gone = await deleteAccount(c.get("lifecycle"), c.env, c.get("db"), userOf(c).userId);
      if (!gone.deleted) throw new AppError("unauthorized", "This account no longer exists.");
      c.executionCtx.waitUntil(gone.after());
      return c.body(null, 204);
    },
  );
