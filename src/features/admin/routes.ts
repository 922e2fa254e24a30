/** `/v1/admin/*`: the admin API (API.md "Administration (v1.1)"); the service key or an admin's token. */
import { Hono } from "hono";
import type { AppEnv } from "../../env";
import { AppError } from "../../errors";
import { describe, IdParam, validate } from "../../lib/validation";
import { endSessionSockets } from "../../lifecycle";
import { idempotency } from "../../middleware/idempotency";
import { AdminPushAccepted, AdminPushBody, queuePush } from "../push";
import { appCheckAdminRoutes } from "./app-check";
import { actorOf, requireAdmin } from "./middleware";
import { AdminUser, AdminUserDetail, AdminUserList, AuditList, AuditQuery, PatchUserBody, UsersQuery } from "./schemas";
import { listAudit, listUsers, recordAudit, removeUser, updateUser, userDetail } from "./service";

const TAG = "Admin";
const refused = {
  403: { description: "forbidden: neither an admin nor the service key (account_disabled: a disabled account)" },
};

export const adminRoutes = new Hono<AppEnv>()
  .get(
    "/users",
    describe({
      tag: TAG,
      summary: "Users, newest first (admin)",
      auth: "service",
      description: "`q` matches part of the email or the name, case-insensitively.",
      responses: { 200: { description: "A page of users", schema: AdminUserList }, ...refused },
    }),
    requireAdmin,
    validate("query", UsersQuery),
    async (c) => c.json(await listUsers(c.get("db"), c.req.valid("query"))),
  )
  .get(
    "/users/:id",
    describe({
      tag: TAG,
      summary: "A user with counts of what it has (admin)",
      auth: "service",
      description: "Counts: live sessions, records (all collections), files and their bytes, rooms, devices.",
      responses: {
        200: { description: "User with counts", schema: AdminUserDetail },
        404: { description: "No such user" },
        ...refused,
      },
    }),
    requireAdmin,
    validate("param", IdParam),
    async (c) => {
      const user = await userDetail(c.get("db"), c.req.valid("param").id);
      if (!user) throw new AppError("not_found", "No such user.");
      return c.json(user);
    },
  )
  .patch(
    "/users/:id",
    describe({
      tag: TAG,
      summary: "Change a user's role, name or disabled flag (admin)",
      auth: "service",
      description:
        "Disabling ends every session of the user at once (refresh tokens then get 403 `account_disabled`, " +
        "sockets close with 4401); login and provider sign-in answer 403 `account_disabled` until the user is " +
        "enabled again. Access tokens already issued are refused on every route within 60 seconds (403 " +
        "`account_disabled`). An admin cannot disable or demote itself, and the last active admin cannot be " +
        "demoted or disabled (409).",
      responses: {
        200: { description: "The user", schema: AdminUser },
        404: { description: "No such user" },
        409: { description: "conflict: an admin disabling or demoting itself" },
        ...refused,
      },
    }),
    requireAdmin,
    validate("param", IdParam),
    validate("json", PatchUserBody),
    async (c) => {
      const id = c.req.valid("param").id;
      const { user, sessionsEnded } = await updateUser(c.get("db"), actorOf(c), id, c.req.valid("json"));
      if (sessionsEnded) c.executionCtx.waitUntil(endSessionSockets(c.get("lifecycle"), c.env, id, "all"));
      return c.json(user);
    },
  )
  .delete(
    "/users/:id",
    describe({
      tag: TAG,
      summary: "Delete a user and everything it owns, as DELETE /v1/me (admin)",
      auth: "service",
      responses: {
        204: { description: "Deleted" },
        404: { description: "No such user" },
        409: { description: "conflict: an admin deleting itself (use DELETE /v1/me)" },
        ...refused,
      },
    }),
    requireAdmin,
    validate("param", IdParam),
    async (c) => {
      const after = await removeUser(c.get("lifecycle"), c.env, c.get("db"), actorOf(c), c.req.valid("param").id);
      c.executionCtx.waitUntil(after());
      return c.body(null, 204);
    },
  )
  .get(
    "/audit",
    describe({
      tag: TAG,
      summary: "The audit log of admin actions, newest first (admin)",
      auth: "service",
      description:
        "Every admin action, from the API and the console, console sign-ins and views of private data, and the " +
        "service key's writes: `{ id, actorId, action, target, at, requestId, clientRequestId?, detail? }`; " +
        "`actorId` is `service` for the service key, `requestId` is the server's, `clientRequestId` the " +
        "`X-Request-Id` the client sent.",
      responses: { 200: { description: "A page of entries", schema: AuditList }, ...refused },
    }),
    requireAdmin,
    validate("query", AuditQuery),
    async (c) => c.json(await listAudit(c.get("db"), c.req.valid("query"))),
  )
  .post(
    "/push",
    describe({
      tag: "Push",
      summary: "Push a notification to users (service key or an admin)",
      auth: "service",
      description:
        "Queued, then sent to every device of each user. `data` values are strings (FCM's data map only carries " +
        "strings). Unknown user ids are skipped. Send `Idempotency-Key` so a retried call does not push twice.",
      responses: {
        202: { description: "Queued", schema: AdminPushAccepted },
        403: { description: "forbidden: neither the service key nor an admin" },
      },
    }),
    requireAdmin,
    idempotency,
    validate("json", AdminPushBody),
    async (c) => {
      const b = c.req.valid("json");
      const userIds = [...new Set(b.userIds)];
      await queuePush(c.env, userIds, { title: b.title, body: b.body, data: b.data ?? {} });
      await recordAudit(c.get("db"), actorOf(c), {
        action: "push.send",
        target: `users:${userIds.length}`,
        detail: { title: b.title, userIds: userIds.slice(0, 20) },
      });
      return c.json({ status: "queued" as const, userCount: userIds.length }, 202);
    },
  )
  .route("/app-check", appCheckAdminRoutes);
