/** `/v1/admin/webhooks`: the webhooks admin API (API.md v1.2, "The app's own logic"); the service key or an admin. */
import { Hono, type MiddlewareHandler } from "hono";
import type { AppEnv, Vars } from "../../env";
import { AppError } from "../../errors";
import { describe, EmptyBody, validate } from "../../lib/validation";
import { enqueue, SERVICE_ACTOR } from "../../lifecycle";
import { idempotency } from "../../middleware/idempotency";
import type { EventJob } from "../logic";
import {
  CreatedWebhook,
  CreateWebhookBody,
  DeliveryList,
  DeliveryParam,
  ListQuery,
  PatchWebhookBody,
  RedeliveryAccepted,
  RotatedSecret,
  WebhookList,
  WebhookParam,
  WebhookSchema,
} from "./schemas";
import {
  type AuditOf,
  createWebhook,
  deleteWebhook,
  getWebhook,
  listDeliveries,
  listWebhooks,
  redeliver,
  rotateWebhookSecret,
  setWebhookEnabled,
} from "./service";
import { webhookUrlProblem } from "./url";

const TAG = "Webhooks";
const refused = {
  403: { description: "forbidden: neither an admin nor the service key (account_disabled: a disabled account)" },
};
const notFound = { 404: { description: "No such webhook" } };

type Ctx = { env: Env; get: Vars["get"] };

/** The audit row of an action on webhook `id`, by the request's admin or the service key. */
const auditOf =
  (c: Ctx, action: string, id: string, detail?: Record<string, unknown>): AuditOf =>
  (when) => {
    const p = c.get("principal");
    if (!p) throw new AppError("unauthorized");
    return c.get("lifecycle").auditStatement(
      c.get("db"),
      {
        actorId: p.kind === "service" ? SERVICE_ACTOR : p.userId,
        action,
        target: `webhook:${id}`,
        requestId: c.get("requestId"),
        clientRequestId: c.get("clientRequestId"),
        detail,
      },
      when,
    );
  };

/** Refuses a URL a webhook may not call here, as a 400 on `url`. */
function assertWebhookUrl(url: string, environment: string): void {
  const problem = webhookUrlProblem(url, environment);
  if (problem)
    throw new AppError("validation_failed", `The webhook URL ${problem}.`, {
      errors: [{ path: "url", message: problem }],
    });
}

/**
 * The routes, each behind `guard` (the admin feature's `requireAdmin`: the service key, or an enabled
 * admin's live session). The guard is handed in because the admin console imports this feature.
 */
export const webhookRoutes = (guard: MiddlewareHandler<AppEnv>) =>
  new Hono<AppEnv>()
    .post(
      "/",
      describe({
        tag: TAG,
        summary: "Create a webhook (admin)",
        auth: "service",
        description:
          "`events`: `<collection>.create|update|delete` of the declared collections, `users.create`, " +
          "`users.delete`, `files.create`, or `*`. The URL must be `https:` and must not name a private, " +
          "loopback, link-local or otherwise non-public address (development and test also allow " +
          "`http://127.0.0.1` and `http://localhost`). The answer carries the signing `secret`, shown this once. " +
          "Send `Idempotency-Key` so a retried call does not create two webhooks.",
        responses: {
          201: { description: "Created; the secret is shown this once", schema: CreatedWebhook },
          400: { description: "validation_failed: an unknown event, or a URL that is refused" },
          ...refused,
        },
      }),
      guard,
      idempotency,
      validate("json", CreateWebhookBody),
      async (c) => {
        const body = c.req.valid("json");
        assertWebhookUrl(body.url, c.env.ENVIRONMENT);
        const p = c.get("principal");
        const { webhook, secret } = await createWebhook(
          c.get("db"),
          c.get("config").jwtSecret,
          { url: body.url, events: body.events, createdBy: p?.kind === "user" ? p.userId : null },
          (id) => auditOf(c, "webhook.create", id, { url: body.url, events: body.events }),
        );
        // The secret is in this answer only: no cache keeps it.
        c.header("cache-control", "no-store");
        return c.json({ ...webhook, secret }, 201);
      },
    )
    .get(
      "/",
      describe({
        tag: TAG,
        summary: "Webhooks, newest first (admin)",
        auth: "service",
        responses: {
          200: { description: "A page of webhooks (never their secrets)", schema: WebhookList },
          ...refused,
        },
      }),
      guard,
      validate("query", ListQuery),
      async (c) => c.json(await listWebhooks(c.get("db"), c.req.valid("query"))),
    )
    .get(
      "/:id",
      describe({
        tag: TAG,
        summary: "A webhook (admin)",
        auth: "service",
        responses: { 200: { description: "The webhook", schema: WebhookSchema }, ...notFound, ...refused },
      }),
      guard,
      validate("param", WebhookParam),
      async (c) => {
        const webhook = await getWebhook(c.get("db"), c.req.valid("param").id);
        if (!webhook) throw new AppError("not_found", "No such webhook.");
        return c.json(webhook);
      },
    )
    .patch(
      "/:id",
      describe({
        tag: TAG,
        summary: "Enable or disable a webhook (admin)",
        auth: "service",
        description:
          "`{ enabled: true }` enables a webhook disabled by an admin or after 24 hours of failed deliveries " +
          "(its failure clock starts again); `{ enabled: false }` disables it and stops its waiting deliveries.",
        responses: { 200: { description: "The webhook", schema: WebhookSchema }, ...notFound, ...refused },
      }),
      guard,
      validate("param", WebhookParam),
      validate("json", PatchWebhookBody),
      async (c) => {
        const { id } = c.req.valid("param");
        const { enabled } = c.req.valid("json");
        const webhook = await setWebhookEnabled(
          c.get("db"),
          id,
          enabled,
          auditOf(c, enabled ? "webhook.enable" : "webhook.disable", id),
        );
        if (!webhook) throw new AppError("not_found", "No such webhook.");
        return c.json(webhook);
      },
    )
    .delete(
      "/:id",
      describe({
        tag: TAG,
        summary: "Delete a webhook and its deliveries (admin)",
        auth: "service",
        responses: { 204: { description: "Deleted" }, ...notFound, ...refused },
      }),
      guard,
      validate("param", WebhookParam),
      async (c) => {
        const { id } = c.req.valid("param");
        if (!(await deleteWebhook(c.get("db"), id, auditOf(c, "webhook.delete", id))))
          throw new AppError("not_found", "No such webhook.");
        return c.body(null, 204);
      },
    )
    .post(
      "/:id/rotate-secret",
      describe({
        tag: TAG,
        summary: "Rotate a webhook's signing secret (admin)",
        auth: "service",
        description:
          "The new secret is shown this once. Until `previousUntil` (24 hours) deliveries carry two `v1=` " +
          "signatures, one per secret, so the receiver can switch without missing a delivery.",
        responses: { 200: { description: "The new secret", schema: RotatedSecret }, ...notFound, ...refused },
      }),
      guard,
      validate("param", WebhookParam),
      validate("json", EmptyBody),
      async (c) => {
        const { id } = c.req.valid("param");
        const rotated = await rotateWebhookSecret(
          c.get("db"),
          c.get("config").jwtSecret,
          id,
          auditOf(c, "webhook.rotate_secret", id),
        );
        if (!rotated) throw new AppError("not_found", "No such webhook.");
        c.header("cache-control", "no-store");
        return c.json(rotated);
      },
    )
    .get(
      "/:id/deliveries",
      describe({
        tag: TAG,
        summary: "A webhook's deliveries, newest first (admin)",
        auth: "service",
        description:
          "`status`: `pending` (waiting for its next attempt), `running`, `done`, or `parked` (failed for " +
          "24 hours, or stopped when the webhook was disabled).",
        responses: { 200: { description: "A page of deliveries", schema: DeliveryList }, ...notFound, ...refused },
      }),
      guard,
      validate("param", WebhookParam),
      validate("query", ListQuery),
      async (c) => {
        const { id } = c.req.valid("param");
        if (!(await getWebhook(c.get("db"), id))) throw new AppError("not_found", "No such webhook.");
        return c.json(await listDeliveries(c.get("db"), id, c.req.valid("query")));
      },
    )
    .post(
      "/:id/deliveries/:deliveryId/redeliver",
      describe({
        tag: TAG,
        summary: "Send a delivery again (admin)",
        auth: "service",
        description:
          "Puts the delivery back to `pending`, due now, with the same `id`. 409 while an attempt is under way " +
          "or while the webhook is disabled (enable it first).",
        responses: {
          202: { description: "Queued", schema: RedeliveryAccepted },
          404: { description: "No such webhook or delivery" },
          409: { description: "conflict: an attempt is under way, or the webhook is disabled" },
          ...refused,
        },
      }),
      guard,
      validate("param", DeliveryParam),
      validate("json", EmptyBody),
      async (c) => {
        const { id, deliveryId } = c.req.valid("param");
        const webhook = await getWebhook(c.get("db"), id);
        if (!webhook) throw new AppError("not_found", "No such webhook.");
        if (!webhook.enabled) throw new AppError("conflict", "The webhook is disabled; enable it first.");
        const result = await redeliver(
          c.get("db"),
          id,
          deliveryId,
          auditOf(c, "webhook.redeliver", id, { deliveryId }),
        );
        if (result === "missing") throw new AppError("not_found", "No such delivery.");
        if (result === "running") throw new AppError("conflict", "An attempt of this delivery is under way.");
        await enqueue<EventJob>(c.env, { type: "events.run", id: deliveryId });
        return c.json({ id: deliveryId, status: "pending" as const }, 202);
      },
    );
